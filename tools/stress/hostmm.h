/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated host mm of memslots-stress: real pages, each with a version
 * stamped into its first bytes, and a remap that does to the library what
 * the kernel's mm does to KVM.  Its lock stands for the seed's pseudo-lock
 * "mmu_notifier_invalidate_range_start": held around the call of start and
 * around the call of end, never in between.
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
	uint64_t page, version, check, tail;
};

struct hostmm {
	pthread_mutex_t lock;
	/* The page-table lock: pages change one remap at a time, versions in order. */
	pthread_mutex_t ptl;
	struct ms_lockdep_map map;
	char *base;
	unsigned int npages;
	_Atomic uint64_t *version;
	struct ms_vm *vm;
	/* Frames: got and put counts, puts of frames never got. */
	atomic_ulong frames_got, frames_put, bad_puts;
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
bool stamp_consistent(const struct page_stamp *s);

extern const struct ms_frame_ops hostmm_frame_ops;

#endif /* MEMSLOTS_STRESS_HOSTMM_H */
