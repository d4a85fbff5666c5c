/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated host mm (hostmm.h).  A frame is a private copy of its page
 * taken by get_frame, so a vCPU that uses a frame after its page changed
 * reads an older version than the page has, or the stamp the host wrote
 * over the frame when it reclaimed it: that is how a stale frame is seen.
 * Versions only grow; a page's stamp is consistent unless torn.
 *
 * A fault may copy a page while a remap rewrites it (the library then throws
 * the copy away), so the stamp's words are read and written with relaxed
 * atomics: each word is whole, the stamp as a whole may still be torn, which
 * is what a frame used while its page changed looks like.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hostmm.h"

/* A frame, and what the host knows of it until the library puts it. */
struct hframe {
	struct hframe *next, **pprev; /* on its page's list; ptl */
	unsigned int page;
	uint64_t version;	 /* of the page when the copy began */
	bool reclaimed;		 /* the page changed since; ptl */
	_Alignas(16) char data[MS_PAGE_SIZE]; /* what the library gets */
};

static void stamp_word_set(void *w, uint64_t v)
{
	__atomic_store_n((uint64_t *)w, v, __ATOMIC_RELAXED);
}

static uint64_t stamp_word_get(const void *w)
{
	return __atomic_load_n((const uint64_t *)w, __ATOMIC_RELAXED);
}

static char *page_bytes(const struct hostmm *mm, unsigned int page)
{
	return mm->base + (uint64_t)page * MS_PAGE_SIZE;
}

static void stamp_page(struct hostmm *mm, unsigned int page, uint64_t version, bool discard)
{
	char *p = page_bytes(mm, page);
	struct page_stamp *s = (struct page_stamp *)p;

	/* Nothing copies the bytes between head and tail: they may be cleared plainly. */
	if (discard)
		memset(s + 1, 0, STAMP_TAIL_OFFSET - sizeof(*s));
	/* Written in two halves, so a use during the change can be caught torn. */
	stamp_word_set(&s->page, page);
	stamp_word_set(&s->version, version);
	atomic_signal_fence(memory_order_seq_cst);
	stamp_word_set(&s->check, ~version);
	stamp_word_set(p + STAMP_TAIL_OFFSET, version);
}

enum stamp_state stamp_read(const void *page_copy, struct stamp_view *out)
{
	const char *p = page_copy;
	unsigned int reclaimed;

	memcpy(out, p, sizeof(struct page_stamp));
	memcpy(&out->tail, p + STAMP_TAIL_OFFSET, sizeof(out->tail));
	reclaimed = (out->page == STAMP_RECLAIMED) + (out->version == STAMP_RECLAIMED) +
		    (out->check == STAMP_RECLAIMED) + (out->tail == STAMP_RECLAIMED);
	if (reclaimed == 4)
		return STAMP_RECLAIMED_ALL;
	if (reclaimed)
		return STAMP_RECLAIMED_PART;
	if (out->check != ~out->version || out->tail != out->version)
		return STAMP_TORN;
	return STAMP_OK;
}

int hostmm_init(struct hostmm *mm, unsigned int npages)
{
	void *p = mmap(NULL, (size_t)npages * MS_PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	mm->base = p;
	mm->npages = npages;
	mm->version = calloc(npages, sizeof(*mm->version));
	mm->frames = calloc(npages, sizeof(*mm->frames));
	if (!mm->version || !mm->frames)
		return -ENOMEM;
	pthread_mutex_init(&mm->lock, NULL);
	pthread_mutex_init(&mm->ptl, NULL);
	ms_lockdep_init_map(&mm->map, "mmu_notifier_invalidate_range_start", MS_LOCK_PSEUDO);
	for (unsigned int i = 0; i < npages; i++)
		stamp_page(mm, i, 1, false);
	for (unsigned int i = 0; i < npages; i++)
		atomic_store(&mm->version[i], 1);
	return 0;
}

/* Every frame has been put: the VM is destroyed. */
void hostmm_destroy(struct hostmm *mm)
{
	munmap(mm->base, (size_t)mm->npages * MS_PAGE_SIZE);
	free(mm->version);
	free(mm->frames);
}

uint64_t hostmm_addr(const struct hostmm *mm, unsigned int page)
{
	return (uint64_t)(uintptr_t)mm->base + (uint64_t)page * MS_PAGE_SIZE;
}

void hostmm_lock(struct hostmm *mm)
{
	ms_lock_acquire(&mm->map, MS_LOCK_EXCLUSIVE);
	pthread_mutex_lock(&mm->lock);
}

void hostmm_unlock(struct hostmm *mm)
{
	pthread_mutex_unlock(&mm->lock);
	ms_lock_release(&mm->map);
}

/* Under ptl: the frame's page changed, so the host takes the frame back. */
static void frame_reclaim(struct hframe *f)
{
	for (unsigned int i = 0; i < sizeof(struct page_stamp); i += sizeof(uint64_t))
		stamp_word_set(f->data + i, STAMP_RECLAIMED);
	stamp_word_set(f->data + STAMP_TAIL_OFFSET, STAMP_RECLAIMED);
	f->reclaimed = true;
}

void hostmm_remap_change(struct hostmm *mm, unsigned int first, unsigned int n,
			 enum remap_kind kind)
{
	for (unsigned int i = first; i < first + n; i++) {
		uint64_t v;

		pthread_mutex_lock(&mm->ptl);
		v = atomic_load(&mm->version[i]) + 1;
		/* Published before the page changes: a reader that sees v must not get less. */
		atomic_store(&mm->version[i], v);
		stamp_page(mm, i, v, kind == REMAP_DISCARD);
		for (struct hframe *f = mm->frames[i]; f; f = f->next)
			frame_reclaim(f);
		pthread_mutex_unlock(&mm->ptl);
		if (kind == REMAP_CHANGE_PTE)
			ms_change_pte(mm->vm, hostmm_addr(mm, i));
	}
}

/* Only vCPU writes through an entry set these words: the frame was in use. */
static bool frame_dirty(const struct hframe *f)
{
	for (unsigned int i = 0; i < FRAME_WRITERS; i++)
		if (stamp_word_get(f->data + FRAME_WRITES_OFFSET + i * sizeof(uint64_t)))
			return true;
	return false;
}

static int hostmm_get_frame(void *opaque, uint64_t hva, bool write, void **frame)
{
	struct hostmm *mm = opaque;
	uint64_t off = hva - (uint64_t)(uintptr_t)mm->base;
	unsigned int page = off / MS_PAGE_SIZE;
	const char *from;
	struct hframe *f;

	if (off >= (uint64_t)mm->npages * MS_PAGE_SIZE || off % MS_PAGE_SIZE)
		return -EFAULT;
	from = page_bytes(mm, page);
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->page = page;
	f->version = atomic_load(&mm->version[page]);
	/* Word by word, in the order the stamp is written: a copy may tear between words. */
	for (unsigned int i = 0; i < sizeof(struct page_stamp); i += sizeof(uint64_t))
		stamp_word_set(f->data + i, stamp_word_get(from + i));
	stamp_word_set(f->data + STAMP_TAIL_OFFSET, stamp_word_get(from + STAMP_TAIL_OFFSET));
	pthread_mutex_lock(&mm->ptl);
	/* The page changed during the copy: no fault may install it, reclaim it now. */
	if (atomic_load(&mm->version[page]) != f->version)
		frame_reclaim(f);
	f->next = mm->frames[page];
	if (f->next)
		f->next->pprev = &f->next;
	f->pprev = &mm->frames[page];
	mm->frames[page] = f;
	pthread_mutex_unlock(&mm->ptl);
	atomic_fetch_add(&mm->frames_got, 1);
	*frame = f->data;
	return 0;
}

static void hostmm_put_frame(void *opaque, void *frame, bool used)
{
	struct hostmm *mm = opaque;
	struct hframe *f;
	uint64_t now;
	bool reclaimed;

	atomic_fetch_add(&mm->frames_put, 1);
	if (!frame) {
		atomic_fetch_add(&mm->bad_puts, 1);
		return;
	}
	f = (struct hframe *)((char *)frame - offsetof(struct hframe, data));
	pthread_mutex_lock(&mm->ptl);
	*f->pprev = f->next;
	if (f->next)
		f->next->pprev = f->pprev;
	reclaimed = f->reclaimed;
	now = atomic_load(&mm->version[f->page]);
	pthread_mutex_unlock(&mm->ptl);
	if (reclaimed && frame_dirty(f) && mm->frame_held)
		mm->frame_held(f->page, f->version, now);
	free(f);
}

const struct ms_frame_ops hostmm_frame_ops = {
	.get_frame = hostmm_get_frame,
	.put_frame = hostmm_put_frame,
};
