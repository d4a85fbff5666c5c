/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The MMU-notifier protocol: ms_invalidate_range_start/end and ms_change_pte.
 *
 * A start first enters the gate, so no memslot set is published until its end
 * has left it.  That is what makes lock elision safe: start and end decide
 * alike whether [start, end) overlaps a slot, and only an invalidation that
 * overlaps one takes mmu_lock, raises mmu_invalidate_in_progress and zaps; its
 * end lowers the count and bumps mmu_invalidate_seq.
 *
 * These run as the embedder's invalidation callbacks: they never take
 * slots_lock (the updater waits on the gate while holding it).
 *
 * Each start is recorded in the calling thread's record (thread_rec.h) with
 * its decision, so that a vCPU access or a memslot update that would wait
 * for the calling thread's own end fails with -EDEADLK instead of hanging,
 * and so that under MS_GATE_FAIR the end follows its start's decision
 * instead of deciding again.  The hot counters live there too.
 */
#include <errno.h>
#include <stdio.h>

#include "rcu.h"
#include "vm.h"

/* Does the calling thread hold an invalidation of vm open? */
static bool open_here(struct ms_vm *vm)
{
	struct ms_thread_rec *rec = ms_thread_rec_peek(vm);

	return rec && ms_rec_holds(rec, 0, UINT64_MAX, MS_HOLD_ANY);
}

bool ms_update_waits_for_this_thread(struct ms_vm *vm)
{
	return vm->gate_ops->update_waits && open_here(vm);
}

/* Misuse is counted and said once, on stderr: never a crash, never silent. */
static void report_unmatched_end(struct ms_vm *vm, uint64_t start, uint64_t end)
{
	ms_stat_inc(vm, unmatched_ends);
	if (!atomic_flag_test_and_set(&vm->unmatched_end_warned))
		fprintf(stderr,
			"memslots: ms_invalidate_range_end(%#llx, %#llx) without a matching "
			"start; ignored\n",
			(unsigned long long)start, (unsigned long long)end);
}

static bool any_slot_visit(struct ms_vm *vm, const struct ms_memslot *slot, uint64_t gfn_start,
			   uint64_t gfn_end, void *ctx)
{
	return false;
}

/* In an RCU read side: does [start, end) overlap a slot of any address space? */
static bool range_overlaps_memslot(struct ms_vm *vm, uint64_t start, uint64_t end)
{
	return !ms_for_each_hva_slot(vm, start, end, any_slot_visit, NULL);
}

static bool populated_visit(struct ms_vm *vm, const struct ms_memslot *slot, uint64_t gfn_start,
			    uint64_t gfn_end, void *ctx)
{
	return !ms_mmu_range_populated(vm, slot->as_id, gfn_start, gfn_end);
}

static bool zap_visit(struct ms_vm *vm, const struct ms_memslot *slot, uint64_t gfn_start,
		      uint64_t gfn_end, void *batch)
{
	return ms_mmu_zap_locked(vm, slot->as_id, &gfn_start, gfn_end, batch);
}

/*
 * Zap every entry mapping a host page of [start, end) and put its frame.  A
 * full batch is finished outside RCU and the walk starts over; it ends
 * because nothing new is installed in the range meanwhile.
 */
static void zap_hva_range(struct ms_vm *vm, uint64_t start, uint64_t end)
{
	struct ms_zap_batch batch = { .nr = 0 };
	uint64_t ticket;
	bool done;

	do {
		ms_rcu_read_lock(vm);
		ms_spin_lock(&vm->mmu.mmu_lock);
		done = ms_for_each_hva_slot(vm, start, end, zap_visit, &batch);
		ticket = vm->mmu.next_zap_ticket;
		ms_spin_unlock(&vm->mmu.mmu_lock);
		ms_rcu_read_unlock(vm);
		ms_mmu_finish_zap(vm, &batch);
	} while (!done);
	/* Entries another zapper cleared are unused too once this returns. */
	ms_mmu_zap_end(vm, ticket);
}

/* Under mmu_lock (KVM's kvm_mmu_invalidate_begin). */
static void mmu_invalidate_begin(struct ms_mmu *mmu, uint64_t start, uint64_t end)
{
	/* Pairs with the decrement in mmu_invalidate_end(). */
	long was =
	    atomic_fetch_add_explicit(&mmu->mmu_invalidate_in_progress, 1, memory_order_relaxed);

	if (was <= 0) {
		mmu->mmu_invalidate_range_start = start;
		mmu->mmu_invalidate_range_end = end;
		return;
	}
	if (start < mmu->mmu_invalidate_range_start)
		mmu->mmu_invalidate_range_start = start;
	if (end > mmu->mmu_invalidate_range_end)
		mmu->mmu_invalidate_range_end = end;
}

/*
 * Under mmu_lock (KVM's kvm_mmu_invalidate_end).  An end that finds nothing
 * in progress leaves the count at zero and is counted: only the missing gate
 * lets a start and its end decide differently.
 */
static void mmu_invalidate_end(struct ms_vm *vm)
{
	struct ms_mmu *mmu = &vm->mmu;

	/* Faults that snapshotted the old value will retry. */
	atomic_fetch_add_explicit(&mmu->mmu_invalidate_seq, 1, memory_order_release);
	if (atomic_load_explicit(&mmu->mmu_invalidate_in_progress, memory_order_relaxed) <= 0) {
		ms_stat_inc(vm, in_progress_underflows);
		return;
	}
	atomic_fetch_sub_explicit(&mmu->mmu_invalidate_in_progress, 1, memory_order_relaxed);
}

static void trace_start(struct ms_vm *vm, uint64_t start, uint64_t end, bool elided, uint64_t gen)
{
	if (vm->cfg.trace_ops && vm->cfg.trace_ops->invalidate_start)
		vm->cfg.trace_ops->invalidate_start(vm->cfg.trace_opaque, start, end, elided, gen);
}

static void trace_end(struct ms_vm *vm, uint64_t start, uint64_t end, bool elided, uint64_t gen)
{
	if (vm->cfg.trace_ops && vm->cfg.trace_ops->invalidate_end)
		vm->cfg.trace_ops->invalidate_end(vm->cfg.trace_opaque, start, end, elided, gen);
}

/* Whether [start, end) overlaps no memslot, so mmu_lock can be skipped. */
/* *gen: the memslot generation the decision was made on, for the trace hooks. */
static bool invalidate_elided(struct ms_vm *vm, uint64_t start, uint64_t end, uint64_t *gen)
{
	bool elided;

	ms_rcu_read_lock(vm);
	elided = !vm->cfg.no_elision && !range_overlaps_memslot(vm, start, end);
	*gen = atomic_load_explicit(&vm->generation, memory_order_acquire);
	ms_rcu_read_unlock(vm);
	return elided;
}

/*
 * A non-blockable start may not wait for a grace period, so it raises the
 * count only if nothing in the range is, or may still be, in use.
 */
static bool mmu_invalidate_begin_nonblock(struct ms_vm *vm, uint64_t start, uint64_t end)
{
	bool would_block;

	ms_rcu_read_lock(vm);
	ms_spin_lock(&vm->mmu.mmu_lock);
	would_block = ms_mmu_zaps_in_flight(&vm->mmu) ||
		      !ms_for_each_hva_slot(vm, start, end, populated_visit, NULL);
	if (!would_block)
		mmu_invalidate_begin(&vm->mmu, start, end);
	ms_spin_unlock(&vm->mmu.mmu_lock);
	ms_rcu_read_unlock(vm);
	return !would_block;
}

/* Tell the embedder's own caches that [gfn, end) of as_id is taken away. */
static void notify_gfns(struct ms_vm *vm, unsigned int as_id, uint64_t gfn, uint64_t end,
			bool blockable)
{
	if (!vm->cfg.invalidate_ops)
		return;
	/* What a non-blockable callback does that may sleep, the validator reports. */
	if (!blockable)
		ms_lock_acquire(&vm->nonblock_callback_map, MS_LOCK_EXCLUSIVE);
	vm->cfg.invalidate_ops->invalidate(vm->cfg.invalidate_opaque, as_id, gfn << MS_PAGE_SHIFT,
					   end << MS_PAGE_SHIFT, blockable);
	if (!blockable)
		ms_lock_release(&vm->nonblock_callback_map);
}

void ms_notify_gfn_range(struct ms_vm *vm, unsigned int as_id, uint64_t gfn, uint64_t end)
{
	notify_gfns(vm, as_id, gfn, end, true);
}

static bool notify_visit(struct ms_vm *vm, const struct ms_memslot *slot, uint64_t gfn_start,
			 uint64_t gfn_end, void *blockable)
{
	notify_gfns(vm, slot->as_id, gfn_start, gfn_end, *(bool *)blockable);
	return true;
}

/*
 * Tell the embedder's own caches which guest ranges the host range
 * [start, end) takes away.  Inside memslot RCU, as KVM runs its notifier
 * handlers inside kvm->srcu: a blockable callback may sleep (it holds back
 * memslot updates meanwhile).
 */
static void notify_embedder(struct ms_vm *vm, uint64_t start, uint64_t end, bool blockable)
{
	if (!vm->cfg.invalidate_ops)
		return;
	ms_rcu_read_lock(vm);
	ms_for_each_hva_slot(vm, start, end, notify_visit, &blockable);
	ms_rcu_read_unlock(vm);
}

/*
 * Raise the count, zap, invalidate pfn caches and tell the embedder's
 * caches; false: refused (non-blockable, it would wait), nothing changed.
 */
static bool invalidate_begin_unelided(struct ms_vm *vm, uint64_t start, uint64_t end,
				      bool blockable)
{
	if (!blockable) {
		if (!mmu_invalidate_begin_nonblock(vm, start, end))
			return false;
		if (!ms_pfn_caches_invalidate(vm, start, end, false)) {
			ms_spin_lock(&vm->mmu.mmu_lock);
			mmu_invalidate_end(vm);
			ms_spin_unlock(&vm->mmu.mmu_lock);
			return false;
		}
	} else {
		ms_spin_lock(&vm->mmu.mmu_lock);
		mmu_invalidate_begin(&vm->mmu, start, end);
		ms_spin_unlock(&vm->mmu.mmu_lock);
		zap_hva_range(vm, start, end);
		ms_pfn_caches_invalidate(vm, start, end, true);
	}
	notify_embedder(vm, start, end, blockable);
	return true;
}

static int invalidate_range_start(struct ms_vm *vm, struct ms_thread_rec *rec, uint64_t start,
				  uint64_t end, bool blockable)
{
	struct ms_open_inv *inv = ms_open_inv_push(rec, start, end);
	enum ms_gate_entry entry;
	uint64_t gen;
	bool elided;

	if (!inv)
		ms_untracked_open(rec);
	/* Pairs with invalidate_end in ms_invalidate_range_end(). */
	entry = vm->gate_ops->invalidate_begin(vm, inv, blockable);
	gen = atomic_load_explicit(&vm->generation, memory_order_acquire);

	if (entry == MS_GATE_REFUSED)
		goto refused;
	elided = entry != MS_GATE_UNELIDED && invalidate_elided(vm, start, end, &gen);
	/*
	 * Decided: said before the zap, so that an update never waits for one;
	 * a fault on a slot published meanwhile installs nothing the zap after
	 * the count is raised will not find.  Pairs with the acquire in the fair
	 * gate's must_wait_for().
	 */
	if (inv)
		atomic_store_explicit(&inv->decision, elided ? MS_INV_ELIDED : MS_INV_UNELIDED,
				      memory_order_release);
	if (!elided && !invalidate_begin_unelided(vm, start, end, blockable)) {
		vm->gate_ops->invalidate_end(vm);
		goto refused;
	}
	/* Only a start that will have an end is traced. */
	trace_start(vm, start, end, elided, gen);
	if (elided)
		ms_rec_inc(rec, invalidation_starts_elided);
	if (inv)
		ms_open_inv_started(inv);
	return 0;
refused:
	if (inv)
		ms_open_inv_close(inv);
	else
		ms_untracked_refused(rec);
	ms_stat_inc(vm, invalidations_refused);
	return -EAGAIN;
}

int ms_invalidate_range_start(struct ms_vm *vm, uint64_t start, uint64_t end, bool blockable)
{
	struct ms_thread_rec *rec;
	int r;

	if (!vm || start >= end)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	rec = ms_thread_rec_get(vm);
	if (!rec)
		return -ENOMEM;
	ms_lock_acquire(&vm->mn_callback_map, MS_LOCK_SHARED_RECURSIVE);
	r = invalidate_range_start(vm, rec, start, end, blockable);
	ms_lock_release(&vm->mn_callback_map);
	if (!r)
		ms_rec_inc(rec, invalidations_started);
	return r;
}

/*
 * The end's decision: its start's where the gate keeps it (found in the
 * records, or an untracked start of this thread), else decided again.
 * False: there is no start to end.
 */
static bool end_decision(struct ms_vm *vm, struct ms_open_inv *inv, bool untracked, uint64_t start,
			 uint64_t end, bool *elided)
{
	uint64_t gen = atomic_load_explicit(&vm->generation, memory_order_acquire);

	if (!vm->gate_ops->ends_follow_starts) {
		if (vm->gate_ops->active_invalidations(vm) <= 0)
			return false;
		*elided = invalidate_elided(vm, start, end, &gen);
	} else if (inv) {
		*elided =
		    atomic_load_explicit(&inv->decision, memory_order_relaxed) == MS_INV_ELIDED;
	} else if (untracked) {
		*elided = false;
	} else {
		return false;
	}
	trace_end(vm, start, end, *elided, gen);
	return true;
}

void ms_invalidate_range_end(struct ms_vm *vm, uint64_t start, uint64_t end)
{
	struct ms_thread_rec *rec, *untracked = NULL;
	struct ms_open_inv *inv = NULL;
	bool elided;

	if (!vm || ms_in_forked_child())
		return;
	/* No record here: the start ran on another thread, or never. */
	rec = ms_thread_rec_peek(vm);
	if (start < end)
		inv = ms_end_match(vm, rec, start, end, &untracked);
	/* Detected where it is certain: nothing is open that this could end. */
	if (start >= end || !end_decision(vm, inv, untracked != NULL, start, end, &elided)) {
		ms_end_unmatch(inv, untracked);
		report_unmatched_end(vm, start, end);
		return;
	}
	ms_lock_acquire(&vm->mn_callback_map, MS_LOCK_SHARED_RECURSIVE);
	if (elided) {
		if (rec)
			ms_rec_inc(rec, invalidation_ends_elided);
		else
			ms_stat_inc(vm, elided_ends_without_record);
	} else {
		ms_spin_lock(&vm->mmu.mmu_lock);
		mmu_invalidate_end(vm);
		ms_spin_unlock(&vm->mmu.mmu_lock);
	}
	/* After the count is down: the record holds the pages until then. */
	ms_end_done(inv, untracked);
	/* Pairs with invalidate_begin in ms_invalidate_range_start(). */
	if (!vm->gate_ops->invalidate_end(vm))
		report_unmatched_end(vm, start, end); /* raced with another unmatched end */
	else if (rec)
		ms_rec_inc(rec, invalidations_ended);
	else
		ms_stat_inc(vm, ends_without_record);
	ms_lock_release(&vm->mn_callback_map);
}

void ms_change_pte(struct ms_vm *vm, uint64_t hva)
{
	uint64_t page = hva & ~(MS_PAGE_SIZE - 1);

	if (!vm || ms_in_forked_child())
		return;
	/* KVM's WARN_ON_ONCE: change_pte must be inside start..end. */
	if (vm->gate_ops->active_invalidations(vm) <= 0) {
		ms_stat_inc(vm, change_pte_misuses);
		if (!atomic_flag_test_and_set(&vm->change_pte_warned))
			fprintf(stderr,
				"memslots: ms_change_pte(%#llx) outside an "
				"invalidate_range_start/end pair\n",
				(unsigned long long)hva);
	}
	/* Inside a pair the start zapped the page already; this finds nothing. */
	zap_hva_range(vm, page, page + MS_PAGE_SIZE);
}
