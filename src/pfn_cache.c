/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Persistent mappings: the userspace counterpart of KVM's gfn_to_pfn_cache.
 * A device backend activates a cache for a guest range within one slot,
 * checks it under the cache's read lock before each use and uses the host
 * address while it holds that lock.  An invalidation start overlapping the
 * range marks it invalid under the write lock, so it waits for readers, and
 * any memslot publish makes it stale (its generation moves).  Refresh
 * re-resolves it and retries only while an invalidation of its own pages is
 * open (found in the thread records, not the in-progress union that faults
 * use) or one ended since it began: unrelated invalidations never hold it
 * back.
 *
 * Locks: each cache's lock (a pthread rwlock) protects its mapping; the
 * VM's list of caches is under vm->pfn_caches_lock (an rwlock: starts read
 * it, activation writes it); a refresh validates under mmu_lock.  Order:
 * pfn_caches_lock, then a cache's lock, then mmu_lock.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "rcu.h"
#include "vm.h"

struct ms_pfn_cache {
	struct ms_vm *vm;
	pthread_rwlock_t lock;
	struct ms_pfn_cache *next, **pprev; /* vm->pfn_caches while active */
	/* Under lock: what is cached, and whether it may be used.  hva, len
	 * and valid are atomic so that invalidations can skip other caches
	 * without taking their locks. */
	unsigned int as_id;
	uint64_t gpa;
	_Atomic uint64_t hva;
	_Atomic size_t len;
	uint64_t generation; /* of the memslots it was resolved in */
	const struct ms_memslot *slot;
	bool active;
	_Atomic bool valid;
};

int ms_pfn_cache_create(struct ms_vm *vm, struct ms_pfn_cache **out)
{
	struct ms_pfn_cache *gpc;

	if (!vm || !out)
		return -EINVAL;
	gpc = calloc(1, sizeof(*gpc));
	if (!gpc)
		return -ENOMEM;
	gpc->vm = vm;
	pthread_rwlock_init(&gpc->lock, NULL);
	*out = gpc;
	return 0;
}

static void list_add(struct ms_pfn_cache *gpc)
{
	struct ms_vm *vm = gpc->vm;

	pthread_rwlock_wrlock(&vm->pfn_caches_lock);
	gpc->next = vm->pfn_caches;
	if (gpc->next)
		gpc->next->pprev = &gpc->next;
	gpc->pprev = &vm->pfn_caches;
	vm->pfn_caches = gpc;
	atomic_fetch_add_explicit(&vm->nr_pfn_caches, 1, memory_order_relaxed);
	pthread_rwlock_unlock(&vm->pfn_caches_lock);
}

static void list_del(struct ms_pfn_cache *gpc)
{
	struct ms_vm *vm = gpc->vm;

	pthread_rwlock_wrlock(&vm->pfn_caches_lock);
	*gpc->pprev = gpc->next;
	if (gpc->next)
		gpc->next->pprev = gpc->pprev;
	atomic_fetch_sub_explicit(&vm->nr_pfn_caches, 1, memory_order_relaxed);
	pthread_rwlock_unlock(&vm->pfn_caches_lock);
}

int ms_pfn_cache_activate(struct ms_pfn_cache *gpc, unsigned int as_id, uint64_t gpa, size_t len)
{
	if (!gpc || !len || as_id >= gpc->vm->cfg.address_spaces || gpa + len < gpa)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	if (!gpc->active)
		list_add(gpc);
	pthread_rwlock_wrlock(&gpc->lock);
	gpc->as_id = as_id;
	gpc->gpa = gpa;
	gpc->len = len;
	gpc->valid = false;
	gpc->active = true;
	pthread_rwlock_unlock(&gpc->lock);
	return ms_pfn_cache_refresh(gpc);
}

void ms_pfn_cache_deactivate(struct ms_pfn_cache *gpc)
{
	if (!gpc || !gpc->active || ms_in_forked_child())
		return;
	list_del(gpc);
	pthread_rwlock_wrlock(&gpc->lock);
	gpc->active = false;
	gpc->valid = false;
	pthread_rwlock_unlock(&gpc->lock);
}

void ms_pfn_cache_destroy(struct ms_pfn_cache *gpc)
{
	if (!gpc)
		return;
	ms_pfn_cache_deactivate(gpc);
	pthread_rwlock_destroy(&gpc->lock);
	free(gpc);
}

void ms_pfn_cache_read_lock(struct ms_pfn_cache *gpc)
{
	pthread_rwlock_rdlock(&gpc->lock);
}

void ms_pfn_cache_read_unlock(struct ms_pfn_cache *gpc, bool wrote)
{
	/* After the write: a harvest between would miss it, one after sees the bit. */
	if (wrote && gpc->valid && gpc->slot->dirty_bitmap) {
		ms_spin_lock(&gpc->vm->mmu.mmu_lock);
		for (uint64_t gfn = gpc->gpa >> MS_PAGE_SHIFT;
		     gfn <= (gpc->gpa + gpc->len - 1) >> MS_PAGE_SHIFT; gfn++)
			ms_mark_dirty_locked(gpc->slot, gfn);
		ms_spin_unlock(&gpc->vm->mmu.mmu_lock);
	}
	pthread_rwlock_unlock(&gpc->lock);
}

void *ms_pfn_cache_check(struct ms_pfn_cache *gpc)
{
	struct ms_memslots *slots;

	if (!gpc->valid)
		return NULL;
	slots = ms_active_memslots(gpc->vm, gpc->as_id);
	/* The update-in-progress bit makes a set being published differ too. */
	if (atomic_load_explicit(&slots->generation, memory_order_acquire) != gpc->generation)
		return NULL;
	return (void *)(uintptr_t)gpc->hva;
}

/* Resolve under memslot RCU: 0, -EAGAIN (a slot going away) or -EFAULT. */
static int resolve(struct ms_pfn_cache *gpc, const struct ms_memslot **slot, uint64_t *hva,
		   uint64_t *gen)
{
	struct ms_memslots *slots = ms_active_memslots(gpc->vm, gpc->as_id);
	uint64_t gfn = gpc->gpa >> MS_PAGE_SHIFT, last = (gpc->gpa + gpc->len - 1) >> MS_PAGE_SHIFT;

	*gen = atomic_load_explicit(&slots->generation, memory_order_acquire);
	*slot = gfn_index_find(slots->gfn_index, gfn);
	if (!*slot || last - (*slot)->base_gfn >= (*slot)->npages)
		return -EFAULT;
	if ((*slot)->flags & MS_MEMSLOT_INVALID)
		return -EAGAIN;
	*hva = ms_memslot_gfn_to_hva(*slot, gfn) + (gpc->gpa & (MS_PAGE_SIZE - 1));
	return 0;
}

/*
 * Under mmu_lock: is an invalidation of the pages [lo, hi) open?  Each open
 * one is in its thread's record, so unlike the in-progress union (which a
 * stream of unrelated invalidations can keep over our pages for ever) this
 * sees only those that really touch them.  Starts deeper than the records
 * fall back on the union.
 */

/*
 * Under mmu_lock: must the refresh start over?  -EBUSY while an
 * invalidation of its pages is open.  One that began and ended since the
 * resolve needs no retry, unlike a fault's (which caches a frame): the cache
 * holds a host address, still right after the host changed the page, and a
 * memslot change in between shows in the generation its check compares.
 */
static int refresh_retry(struct ms_vm *vm, uint64_t hva, size_t len)
{
	uint64_t lo = hva & ~(MS_PAGE_SIZE - 1);
	uint64_t hi = (hva + len + MS_PAGE_SIZE - 1) & ~(MS_PAGE_SIZE - 1);

	return ms_pages_invalidated(vm, lo, hi) ? -EBUSY : 0;
}

/* One attempt; *hva: the address it resolved, for the caller's checks. */
static int refresh_once(struct ms_pfn_cache *gpc, uint64_t *hva)
{
	struct ms_mmu *mmu = &gpc->vm->mmu;
	const struct ms_memslot *slot;
	uint64_t gen;
	int r;

	ms_rcu_read_lock(gpc->vm);
	r = resolve(gpc, &slot, hva, &gen);
	if (r) {
		ms_rcu_read_unlock(gpc->vm);
		return r;
	}
	pthread_rwlock_wrlock(&gpc->lock);
	ms_spin_lock(&mmu->mmu_lock);
	r = refresh_retry(gpc->vm, *hva, gpc->len);
	if (!r) {
		gpc->slot = slot;
		gpc->hva = *hva;
		gpc->generation = gen;
		gpc->valid = true;
	}
	ms_spin_unlock(&mmu->mmu_lock);
	pthread_rwlock_unlock(&gpc->lock);
	ms_rcu_read_unlock(gpc->vm);
	return r;
}

int ms_pfn_cache_refresh(struct ms_pfn_cache *gpc)
{
	unsigned int attempt = 0;
	uint64_t hva;
	int r;

	if (!gpc || !gpc->active)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	/* -EAGAIN: its slot is being deleted or moved; -EBUSY: its pages are invalidated. */
	while ((r = refresh_once(gpc, &hva)) == -EAGAIN || r == -EBUSY) {
		/* Only this thread's own end could let it through. */
		if (r == -EBUSY &&
		    ms_pages_invalidated_here(gpc->vm, hva & ~(MS_PAGE_SIZE - 1), hva + gpc->len))
			return -EDEADLK;
		ms_stat_inc(gpc->vm, pfn_cache_retries);
		if (attempt++ < 64)
			sched_yield();
		else
			nanosleep(&(struct timespec){ 0, 20000 }, NULL);
	}
	if (!r)
		ms_stat_inc(gpc->vm, pfn_cache_refreshes);
	return r;
}

/*
 * From an invalidation start, once its count is raised: caches over
 * [start, end) are invalid from now on, and no reader uses one any more.
 * Not blockable: false, nothing changed, if a reader holds one.
 */
bool ms_pfn_caches_invalidate(struct ms_vm *vm, uint64_t start, uint64_t end, bool blockable)
{
	bool done = true;

	if (!atomic_load_explicit(&vm->nr_pfn_caches, memory_order_relaxed))
		return true;
	/* The host changes whole pages: a byte of a page takes the page. */
	start &= ~(MS_PAGE_SIZE - 1);
	end = end > UINT64_MAX - MS_PAGE_SIZE ? UINT64_MAX
					       : (end + MS_PAGE_SIZE - 1) & ~(MS_PAGE_SIZE - 1);
	pthread_rwlock_rdlock(&vm->pfn_caches_lock);
	for (struct ms_pfn_cache *gpc = vm->pfn_caches; gpc && done; gpc = gpc->next) {
		uint64_t hva = atomic_load_explicit(&gpc->hva, memory_order_relaxed);

		/*
		 * Acquire: a cache its owner made invalid (re-activating it) is
		 * skipped, and the owner's reads before that happen before ours.
		 */
		if (!atomic_load_explicit(&gpc->valid, memory_order_acquire) || hva >= end ||
		    hva + atomic_load_explicit(&gpc->len, memory_order_relaxed) <= start)
			continue;
		if (!blockable && pthread_rwlock_trywrlock(&gpc->lock)) {
			done = false;
			break;
		}
		if (blockable)
			pthread_rwlock_wrlock(&gpc->lock);
		gpc->valid = false;
		pthread_rwlock_unlock(&gpc->lock);
	}
	pthread_rwlock_unlock(&vm->pfn_caches_lock);
	return done;
}
