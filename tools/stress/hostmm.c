/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulated host mm (hostmm.h).  A frame is a private copy of its page
 * taken by get_frame, so a vCPU that uses a frame after its page changed
 * reads an older version than the page has: that is how a stale frame is
 * seen.  Versions only grow; a page's stamp is consistent unless torn.
 *
 * A fault may copy a page while a remap rewrites it (the library then throws
 * the copy away), so the stamp's words are read and written with relaxed
 * atomics: each word is whole, the stamp as a whole may still be torn, which
 * is what a frame used while its page changed looks like.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hostmm.h"

bool stamp_consistent(const struct page_stamp *s)
{
	return s->check == ~s->version && s->tail == s->version;
}

static void stamp_word_set(uint64_t *w, uint64_t v)
{
	__atomic_store_n(w, v, __ATOMIC_RELAXED);
}

static uint64_t stamp_word_get(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_RELAXED);
}

static void stamp_page(struct hostmm *mm, unsigned int page, uint64_t version, bool discard)
{
	struct page_stamp *s = (struct page_stamp *)(mm->base + (uint64_t)page * MS_PAGE_SIZE);

	/* Nothing copies the bytes after the stamp: they may be cleared plainly. */
	if (discard)
		memset(s + 1, 0, MS_PAGE_SIZE - sizeof(*s));
	/* Written in two halves, so a use during the change can be caught torn. */
	stamp_word_set(&s->page, page);
	stamp_word_set(&s->version, version);
	atomic_signal_fence(memory_order_seq_cst);
	stamp_word_set(&s->check, ~version);
	stamp_word_set(&s->tail, version);
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
	if (!mm->version)
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

void hostmm_destroy(struct hostmm *mm)
{
	munmap(mm->base, (size_t)mm->npages * MS_PAGE_SIZE);
	free(mm->version);
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
		pthread_mutex_unlock(&mm->ptl);
		if (kind == REMAP_CHANGE_PTE)
			ms_change_pte(mm->vm, hostmm_addr(mm, i));
	}
}

static int hostmm_get_frame(void *opaque, uint64_t hva, bool write, void **frame)
{
	struct hostmm *mm = opaque;
	void *copy = aligned_alloc(MS_PAGE_SIZE, MS_PAGE_SIZE);
	const struct page_stamp *from = (const struct page_stamp *)(uintptr_t)hva;
	struct page_stamp *to = copy;

	if (!copy)
		return -ENOMEM;
	/* Word by word, in the order the stamp is written: a copy may tear between words. */
	to->page = stamp_word_get(&from->page);
	to->version = stamp_word_get(&from->version);
	to->check = stamp_word_get(&from->check);
	to->tail = stamp_word_get(&from->tail);
	atomic_fetch_add(&mm->frames_got, 1);
	*frame = copy;
	return 0;
}

static void hostmm_put_frame(void *opaque, void *frame)
{
	struct hostmm *mm = opaque;

	if (!frame)
		atomic_fetch_add(&mm->bad_puts, 1);
	atomic_fetch_add(&mm->frames_put, 1);
	free(frame);
}

const struct ms_frame_ops hostmm_frame_ops = {
	.get_frame = hostmm_get_frame,
	.put_frame = hostmm_put_frame,
};
