/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The secondary MMU: faulting entries in, zapping them, and the frames they
 * hold.  Locking is described in mmu.h.  A frame is got by a fault and put
 * exactly once: when the fault loses a race, when its entry is zapped (after
 * a grace period), or when the VM is destroyed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "rcu.h"
#include "vm.h"

static int get_frame(struct ms_vm *vm, uint64_t hva, bool write, void **frame)
{
	const struct ms_frame_ops *ops = vm->cfg.frame_ops;
	int r;

	if (!ops) {
		*frame = (void *)(uintptr_t)hva;
		r = 0;
	} else {
		r = ops->get_frame(vm->cfg.frame_opaque, hva, write, frame);
	}
	if (!r)
		ms_stat_inc(vm, frames_got);
	return r;
}

/* used: the frame was reachable from an entry, so a vCPU may have written it. */
static void put_frame(struct ms_vm *vm, void *frame, bool used)
{
	if (vm->cfg.frame_ops)
		vm->cfg.frame_ops->put_frame(vm->cfg.frame_opaque, frame, used);
	ms_stat_inc(vm, frames_put);
}

int ms_mmu_init(struct ms_vm *vm)
{
	ms_spin_lock_init(&vm->mmu.mmu_lock, "mmu_lock");
	for (unsigned int i = 0; i < vm->cfg.address_spaces; i++) {
		vm->mmu.roots[i] = calloc(1, sizeof(struct ms_spt));
		if (!vm->mmu.roots[i])
			return -ENOMEM;
	}
	return 0;
}

static void spt_destroy(struct ms_vm *vm, struct ms_spt *spt, int level)
{
	for (unsigned int i = 0; i < MS_SPT_ENTRIES; i++) {
		uintptr_t e = atomic_load_explicit(&spt->ent[i], memory_order_relaxed);

		if (!e)
			continue;
		if (level)
			spt_destroy(vm, (struct ms_spt *)e, level - 1);
		else
			put_frame(vm, (void *)(e & ~MS_SPTE_WRITABLE), true);
	}
	free(spt);
}

/* No vCPU runs any more: every frame still held is put here. */
void ms_mmu_destroy(struct ms_vm *vm)
{
	for (unsigned int i = 0; i < vm->cfg.address_spaces; i++)
		if (vm->mmu.roots[i])
			spt_destroy(vm, vm->mmu.roots[i], MS_SPT_LEVELS - 1);
	ms_spin_lock_destroy(&vm->mmu.mmu_lock);
}

static int mmu_topup_memory_cache(struct ms_mmu_memory_cache *cache)
{
	while (cache->nobjs < MS_SPT_LEVELS - 1) {
		struct ms_spt *spt = calloc(1, sizeof(*spt));

		if (!spt)
			return -ENOMEM;
		cache->objs[cache->nobjs++] = spt;
	}
	return 0;
}

void ms_mmu_free_memory_cache(struct ms_mmu_memory_cache *cache)
{
	while (cache->nobjs)
		free(cache->objs[--cache->nobjs]);
}

/*
 * Under mmu_lock: install spte for gfn unless an entry is there already,
 * which is returned instead.  Tables come from the vCPU's cache.
 */
static uintptr_t spte_install(struct ms_vm *vm, struct ms_mmu_memory_cache *cache,
			      unsigned int as_id, uint64_t gfn, uintptr_t spte)
{
	struct ms_spt *spt = vm->mmu.roots[as_id];
	uintptr_t old;

	for (int level = MS_SPT_LEVELS - 1; level > 0; level--) {
		_Atomic uintptr_t *ent =
		    &spt->ent[(gfn >> (level * MS_SPT_BITS)) & (MS_SPT_ENTRIES - 1)];
		uintptr_t next = atomic_load_explicit(ent, memory_order_relaxed);

		if (!next) {
			next = (uintptr_t)cache->objs[--cache->nobjs];
			/* Pairs with the acquire loads in ms_spte_lookup(). */
			atomic_store_explicit(ent, next, memory_order_release);
		}
		spt = (struct ms_spt *)next;
	}
	old = atomic_load_explicit(&spt->ent[gfn & (MS_SPT_ENTRIES - 1)], memory_order_relaxed);
	if (old)
		return old;
	atomic_store_explicit(&spt->ent[gfn & (MS_SPT_ENTRIES - 1)], spte, memory_order_release);
	ms_stat_inc(vm, entries_present);
	return 0;
}

/* The last-level table holding gfn, or NULL and *span: gfns it would cover. */
static struct ms_spt *spt_leaf(struct ms_spt *root, uint64_t gfn, uint64_t *span)
{
	struct ms_spt *spt = root;

	for (int level = MS_SPT_LEVELS - 1; level > 0; level--) {
		unsigned int idx = (gfn >> (level * MS_SPT_BITS)) & (MS_SPT_ENTRIES - 1);

		spt = (struct ms_spt *)atomic_load_explicit(&spt->ent[idx], memory_order_relaxed);
		if (!spt) {
			*span = 1ull << (level * MS_SPT_BITS);
			return NULL;
		}
	}
	return spt;
}

/* Under mmu_lock: gfn's place in its last-level table, NULL if there is none. */
static _Atomic uintptr_t *spte_ptr(struct ms_spt *root, uint64_t gfn)
{
	uint64_t span;
	struct ms_spt *leaf = spt_leaf(root, gfn, &span);

	return leaf ? &leaf->ent[gfn & (MS_SPT_ENTRIES - 1)] : NULL;
}

/* Under mmu_lock; a vCPU sees either value, both with the same frame. */
static void spte_make_writable(struct ms_spt *root, uint64_t gfn)
{
	_Atomic uintptr_t *ent = spte_ptr(root, gfn);

	atomic_fetch_or_explicit(ent, MS_SPTE_WRITABLE, memory_order_release);
}

bool ms_mmu_write_protect_locked(struct ms_vm *vm, unsigned int as_id, uint64_t gfn)
{
	_Atomic uintptr_t *ent = spte_ptr(vm->mmu.roots[as_id], gfn);

	return ent && (atomic_fetch_and_explicit(ent, ~MS_SPTE_WRITABLE, memory_order_relaxed) &
		       MS_SPTE_WRITABLE);
}

enum fault_retry { FAULT_GO, FAULT_RETRY, FAULT_RETRY_IN_RANGE };

/*
 * Under mmu_lock: must a fault that snapshotted seq and maps the page at hva
 * start over?  Yes while an invalidation overlapping the page, by as little
 * as a byte, is between start and end, or when one ended since the snapshot
 * (KVM's mmu_invalidate_retry_hva).  KVM compares with the union of the open
 * ranges, which a stream of overlapping unrelated invalidations can keep
 * over the page for ever; the thread records say which really touch it.
 */
static enum fault_retry mmu_invalidate_retry_hva(struct ms_vm *vm, uint64_t seq, uint64_t hva)
{
	if (ms_pages_invalidated(vm, hva, hva + MS_PAGE_SIZE))
		return FAULT_RETRY_IN_RANGE;
	if (atomic_load_explicit(&vm->mmu.mmu_invalidate_seq, memory_order_relaxed) != seq)
		return FAULT_RETRY;
	return FAULT_GO;
}

int ms_mmu_fault(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gfn, bool write)
{
	struct ms_vm *vm = vcpu->vm;
	struct ms_mmu *mmu = &vm->mmu;
	const struct ms_memslot *slot;
	enum fault_retry retry;
	uintptr_t spte, old;
	uint64_t seq, hva;
	bool writable, installed;
	void *frame;
	int r;

	/* Pairs with the bump in ms_invalidate_range_end(): read before translating. */
	seq = atomic_load_explicit(&mmu->mmu_invalidate_seq, memory_order_acquire);
	slot = ms_vcpu_gfn_to_memslot(vcpu, as_id, gfn);
	if (!slot)
		return -EFAULT;
	/* Going away: retry until the update is over, unless that is us. */
	if (slot->flags & MS_MEMSLOT_INVALID)
		return ms_update_waits_for_this_thread(vm) ? -EDEADLK : -EAGAIN;
	if (write && (slot->flags & MS_MEM_READONLY))
		return -EFAULT;
	/*
	 * Like KVM, map writable whenever the slot allows, not only on writes;
	 * but a logged slot's page becomes writable only by a write, which
	 * marks it dirty.
	 */
	writable = !(slot->flags & MS_MEM_READONLY) && (write || !slot->dirty_bitmap);
	r = mmu_topup_memory_cache(&vcpu->spt_cache);
	if (r)
		return r;
	ms_stat_inc(vm, faults);
	hva = ms_memslot_gfn_to_hva(slot, gfn);
	r = get_frame(vm, hva, writable, &frame);
	if (r)
		return r;
	if ((uintptr_t)frame & MS_SPTE_WRITABLE) {
		put_frame(vm, frame, false);
		return -EINVAL;
	}

	ms_spin_lock(&mmu->mmu_lock);
	retry = mmu_invalidate_retry_hva(vm, seq, hva);
	if (retry != FAULT_GO) {
		ms_spin_unlock(&mmu->mmu_lock);
		put_frame(vm, frame, false); /* never reachable from an entry */
		ms_stat_inc(vm, fault_retries);
		/* Only this thread's own end could let the retry through. */
		if (retry == FAULT_RETRY_IN_RANGE &&
		    ms_pages_invalidated_here(vm, hva, hva + MS_PAGE_SIZE))
			return -EDEADLK;
		return -EAGAIN;
	}
	spte = (uintptr_t)frame | (writable ? MS_SPTE_WRITABLE : 0);
	old = spte_install(vm, &vcpu->spt_cache, as_id, gfn, spte);
	installed = !old;
	/* A write to a write-protected entry of a logged slot: upgrade it. */
	if (old && writable && !(old & MS_SPTE_WRITABLE))
		spte_make_writable(mmu->roots[as_id], gfn);
	/* Marked in the same critical section as a harvest clears and protects. */
	if (writable && slot->dirty_bitmap)
		ms_mark_dirty_locked(slot, gfn);
	ms_spin_unlock(&mmu->mmu_lock);

	if (!installed)
		put_frame(vm, frame, false); /* another vCPU won the race; its entry serves */
	return 0;
}

/*
 * Visit the present entries of [*gfn, end) in order; stop, leaving *gfn on
 * the entry, when visit returns false.
 */
static bool spte_walk(struct ms_vm *vm, unsigned int as_id, uint64_t *gfn, uint64_t end,
		      bool (*visit)(struct ms_vm *vm, _Atomic uintptr_t *ent, void *ctx), void *ctx)
{
	uint64_t span;

	while (*gfn < end) {
		struct ms_spt *leaf = spt_leaf(vm->mmu.roots[as_id], *gfn, &span);

		if (!leaf) {
			*gfn = (*gfn & ~(span - 1)) + span;
			continue;
		}
		for (unsigned int i = *gfn & (MS_SPT_ENTRIES - 1); i < MS_SPT_ENTRIES && *gfn < end;
		     i++, (*gfn)++) {
			if (atomic_load_explicit(&leaf->ent[i], memory_order_relaxed) &&
			    !visit(vm, &leaf->ent[i], ctx))
				return false;
		}
	}
	return true;
}

/* Under mmu_lock: the batch is the newest in flight. */
static void zap_batch_link(struct ms_mmu *mmu, struct ms_zap_batch *batch)
{
	batch->ticket = mmu->next_zap_ticket++;
	batch->next = NULL;
	batch->prev = mmu->zaps_newest;
	if (mmu->zaps_newest)
		mmu->zaps_newest->next = batch;
	else
		mmu->zaps_oldest = batch;
	mmu->zaps_newest = batch;
}

static void zap_batch_unlink(struct ms_mmu *mmu, struct ms_zap_batch *batch)
{
	if (batch->prev)
		batch->prev->next = batch->next;
	else
		mmu->zaps_oldest = batch->next;
	if (batch->next)
		batch->next->prev = batch->prev;
	else
		mmu->zaps_newest = batch->prev;
}

static bool zap_visit(struct ms_vm *vm, _Atomic uintptr_t *ent, void *ctx)
{
	struct ms_zap_batch *batch = ctx;
	uintptr_t spte;

	if (batch->nr == MS_ZAP_BATCH)
		return false;
	spte = atomic_exchange_explicit(ent, 0, memory_order_relaxed);
	/* Leaves the list in ms_mmu_finish_zap(). */
	if (!batch->nr)
		zap_batch_link(&vm->mmu, batch);
	batch->frames[batch->nr++] = (void *)(spte & ~MS_SPTE_WRITABLE);
	ms_stat_inc(vm, entries_zapped);
	atomic_fetch_sub_explicit(&vm->stats.entries_present, 1, memory_order_relaxed);
	return true;
}

bool ms_mmu_zap_locked(struct ms_vm *vm, unsigned int as_id, uint64_t *gfn, uint64_t end,
		       struct ms_zap_batch *batch)
{
	return spte_walk(vm, as_id, gfn, end, zap_visit, batch);
}

static bool found_visit(struct ms_vm *vm, _Atomic uintptr_t *ent, void *ctx)
{
	return false;
}

static bool write_protect_visit(struct ms_vm *vm, _Atomic uintptr_t *ent, void *protected)
{
	*(bool *)protected |=
	    atomic_fetch_and_explicit(ent, ~MS_SPTE_WRITABLE, memory_order_relaxed) &
	    MS_SPTE_WRITABLE;
	return true;
}

bool ms_mmu_write_protect_range_locked(struct ms_vm *vm, unsigned int as_id, uint64_t gfn,
				       uint64_t end)
{
	bool protected = false;

	spte_walk(vm, as_id, &gfn, end, write_protect_visit, &protected);
	return protected;
}

bool ms_mmu_range_populated(struct ms_vm *vm, unsigned int as_id, uint64_t gfn, uint64_t end)
{
	return !spte_walk(vm, as_id, &gfn, end, found_visit, NULL);
}

void ms_mmu_finish_zap(struct ms_vm *vm, struct ms_zap_batch *batch)
{
	struct ms_mmu *mmu = &vm->mmu;
	bool wake;

	if (!batch->nr)
		return;
	/* A vCPU that read a zapped entry is done with its frame after this. */
	ms_synchronize_spte_readers(vm);
	for (unsigned int i = 0; i < batch->nr; i++)
		put_frame(vm, batch->frames[i], true);
	batch->nr = 0;
	ms_spin_lock(&mmu->mmu_lock);
	zap_batch_unlink(mmu, batch);
	wake = mmu->zap_waiters;
	/* Pairs with the acquire load in ms_mmu_zap_end(). */
	atomic_fetch_add_explicit(&mmu->zaps_done, 1, memory_order_release);
	ms_spin_unlock(&mmu->mmu_lock);
	if (wake)
		ms_futex_wake(&mmu->zaps_done, INT32_MAX);
}

/* Under mmu_lock: is a batch older than ticket still in flight? */
static bool older_zaps_in_flight(const struct ms_mmu *mmu, uint64_t ticket)
{
	return mmu->zaps_oldest && mmu->zaps_oldest->ticket < ticket;
}

void ms_mmu_zap_end(struct ms_vm *vm, uint64_t ticket)
{
	struct ms_mmu *mmu = &vm->mmu;
	uint32_t done;

	ms_might_sleep("wait for older zaps");
	ms_spin_lock(&mmu->mmu_lock);
	while (older_zaps_in_flight(mmu, ticket)) {
		mmu->zap_waiters++;
		done = atomic_load_explicit(&mmu->zaps_done, memory_order_acquire);
		ms_spin_unlock(&mmu->mmu_lock);
		ms_futex_wait(&mmu->zaps_done, done);
		ms_spin_lock(&mmu->mmu_lock);
		mmu->zap_waiters--;
	}
	ms_spin_unlock(&mmu->mmu_lock);
}

void ms_mmu_zap_gfn_ranges(struct ms_vm *vm, const unsigned int *as_id, const uint64_t *gfn,
			   const uint64_t *end, size_t n)
{
	struct ms_zap_batch batch = { .nr = 0 };
	uint64_t ticket = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t next = gfn[i];
		bool done;

		do {
			ms_spin_lock(&vm->mmu.mmu_lock);
			done = ms_mmu_zap_locked(vm, as_id[i], &next, end[i], &batch);
			ticket = vm->mmu.next_zap_ticket;
			ms_spin_unlock(&vm->mmu.mmu_lock);
			if (!done)
				ms_mmu_finish_zap(vm, &batch); /* full: one grace period per batch */
		} while (!done);
	}
	ms_mmu_finish_zap(vm, &batch);
	ms_mmu_zap_end(vm, ticket);
}

void ms_mmu_zap_gfn_range(struct ms_vm *vm, unsigned int as_id, uint64_t gfn, uint64_t end)
{
	ms_mmu_zap_gfn_ranges(vm, &as_id, &gfn, &end, 1);
}
