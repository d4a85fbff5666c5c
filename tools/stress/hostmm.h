/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated host mm of memslots-stress: real pages, each with a version
 * stamped into its first bytes and near its end, and a remap that does to
 * the library what the kernel's mm does to KVM.  Its lock stands for the
 * kernel's pseudo-lock "mmu_notifier_invalidate_range_start": held around the
 * call of start and around the call of end, never in between.
 *
 * A frame is the host's copy of its page.  When a page changes, the host
 * reclaims the frames of that page the library has not put yet: their stamp
 * is overwritten with STAMP_RECLAIMED.  That is the host's right, because a
 * page only changes after a start covering it returned, and from then on no
 * vCPU may use a frame of it; a vCPU that does reads the reclaimed stamp.
 */
#ifndef MEMSLOTS_STRESS_HOSTMM_H
#define MEMSLOTS_STRESS_HOSTMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "memslots.h"
#include "memslots_lockdep.h"

/* The first bytes of every page, and of every frame copied from one. */
struct page_stamp {
	uint64_t page, version, check;
};

/*
 * vCPU i writes its word at FRAME_WRITES_OFFSET + 8 * i, at the end of the
 * page (a frame with any of them set is dirty); nothing else writes there.
 */
#define FRAME_WRITERS 16
#define FRAME_WRITES_OFFSET (MS_PAGE_SIZE - FRAME_WRITERS * sizeof(uint64_t))
/*
 * The stamp's last word, just before the vCPUs' words.  A vCPU reads the
 * page up to it, STAMP_COPY_SIZE bytes: a copy long enough to be interrupted
 * between head and tail, and clear of what other vCPUs write meanwhile.
 */
#define STAMP_TAIL_OFFSET (FRAME_WRITES_OFFSET - sizeof(uint64_t))
#define STAMP_COPY_SIZE FRAME_WRITES_OFFSET
/* Written over every word of a reclaimed frame's stamp. */
#define STAMP_RECLAIMED 0x646d69616c636572ull /* "reclaimd" */

/* A stamp as read by a vCPU: the three head words and the tail. */
struct stamp_view {
	uint64_t page, version, check, tail;
};

enum stamp_state {
	STAMP_OK,
	STAMP_TORN,		/* words of two versions */
	STAMP_RECLAIMED_ALL,	/* read after the host reclaimed the frame */
	STAMP_RECLAIMED_PART,	/* reclaimed in the middle of the read */
};

struct hframe;

struct hostmm {
	pthread_mutex_t lock;
	/*
	 * The page-table lock: pages change one remap at a time, versions in
	 * order; it also guards the lists of frames not yet put.
	 */
	pthread_mutex_t ptl;
	struct ms_lockdep_map map;
	char *base;
	unsigned int npages;
	_Atomic uint64_t *version;
	struct hframe **frames; /* per page; ptl */
	struct ms_vm *vm;
	/* Frames: got and put counts, puts of frames never got. */
	atomic_ulong frames_got, frames_put, bad_puts;
	/*
	 * Called when a frame a vCPU wrote to is put after its page changed:
	 * the library held it past a start on that page (a write-back of it
	 * would clobber the new page).  Set before the VM runs.
	 */
	void (*frame_held)(unsigned int page, uint64_t frame_version, uint64_t page_version);
};

enum remap_kind { REMAP_REPLACE, REMAP_DISCARD, REMAP_CHANGE_PTE };

int hostmm_init(struct hostmm *mm, unsigned int npages);
void hostmm_destroy(struct hostmm *mm);
uint64_t hostmm_addr(const struct hostmm *mm, unsigned int page);
void hostmm_lock(struct hostmm *mm);
void hostmm_unlock(struct hostmm *mm);
/* Between start and end: pages [first, first + n) get a new version. */
void hostmm_remap_change(struct hostmm *mm, unsigned int first, unsigned int n,
			 enum remap_kind kind);
/* Decode the stamp of a copy of a frame's first STAMP_COPY_SIZE bytes, and judge it. */
enum stamp_state stamp_read(const void *page_copy, struct stamp_view *out);

extern const struct ms_frame_ops hostmm_frame_ops;

#endif /* MEMSLOTS_STRESS_HOSTMM_H */
