/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MS_GATE_FAIR: deadlock-free like the upstream gate, and also fair and
 * scalable.  What a gate must prevent is an elided start whose end would
 * miss a slot that appeared in between: a slot that newly covers the
 * range's host memory would let a fault install an entry inside the open
 * invalidation.  Removing or moving a slot cannot do that, because a start
 * that saw a slot did not elide, and its end follows its start's decision.
 *
 * So each start records itself in the caller's thread record (thread_rec.h)
 * and keeps its decision there for its end; nothing on that path is shared.
 * An update that makes new host memory covered first announces the range
 * (announce_gen odd), then waits only for open invalidations of that range
 * that elided without having seen the announcement.  A start that sees the
 * announcement overlapping its range does not elide.  Starts and ends never
 * wait; the update waits at most for the invalidations that were open when
 * it announced itself.
 *
 * Ordering, Dekker-style: a start stores its entry, then reads
 * announce_gen; the update stores announce_gen, then reads the entries.
 * Both sides pass a full barrier in between: the start's is the locked
 * exchange that opens its entry (~3 ns here), the update's a fence.  The
 * same pairing covers an end's close (also a locked exchange) against
 * update_waiting.  (An earlier version kept starts fence-free and made the
 * update call membarrier(), which costs 5-7 us on this kind of VM while
 * another thread of the process runs: most of a create's cost.)
 *
 * Locks: announce_gen and the range are written by the updater only (under
 * slots_lock); update_waiting and the futex word closes are how ends wake it.
 */
#include <sched.h>

#include "vm.h"

static void fair_init(struct ms_vm *vm)
{
	struct ms_gate_fair *g = &vm->gate.fair;

	atomic_init(&g->announce_gen, 2);
	atomic_init(&g->announce_start, 0);
	atomic_init(&g->announce_end, 0);
	atomic_init(&g->update_waiting, false);
	atomic_init(&g->closes, 0);
	ms_lockdep_init_map(&g->map, "fair gate", MS_LOCK_PSEUDO);
}

static void fair_destroy(struct ms_vm *vm)
{
}

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 < e2 && s2 < e1;
}

static enum ms_gate_entry fair_invalidate_begin(struct ms_vm *vm, struct ms_open_inv *inv,
						bool blockable)
{
	struct ms_gate_fair *g = &vm->gate.fair;
	uint64_t gen, start, end;
	bool announced;

	if (!inv)
		return MS_GATE_UNELIDED; /* untracked: nothing may wait for it */
	/* The entry was opened by ms_open_inv_push()'s locked exchange; now look. */
	gen = atomic_load_explicit(&g->announce_gen, memory_order_acquire);
	start = atomic_load_explicit(&inv->start, memory_order_relaxed);
	end = atomic_load_explicit(&inv->end, memory_order_relaxed);
	announced =
	    (gen & 1) &&
	    overlaps(start, end, atomic_load_explicit(&g->announce_start, memory_order_relaxed),
		     atomic_load_explicit(&g->announce_end, memory_order_relaxed));
	/*
	 * A range read while the announcement changed: assume the worst.  The
	 * fence keeps the range loads before the re-read, as in a seqlock.
	 */
	atomic_thread_fence(memory_order_acquire);
	if ((gen & 1) && atomic_load_explicit(&g->announce_gen, memory_order_relaxed) != gen)
		announced = true;
	/* Pairs with the acquire load in must_wait_for(). */
	atomic_store_explicit(&inv->seen_gen, gen, memory_order_release);
	return announced ? MS_GATE_UNELIDED : MS_GATE_ENTERED;
}

/* After the entry's close, a locked exchange. */
static void wake_update(struct ms_gate_fair *g)
{
	if (atomic_load_explicit(&g->update_waiting, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&g->closes, 1, memory_order_release);
		ms_futex_wake(&g->closes, 1);
	}
}

static bool fair_invalidate_end(struct ms_vm *vm)
{
	wake_update(&vm->gate.fair);
	return true;
}

/* Is inv, seen open at seq, an invalidation the update announced as gen must wait for? */
static bool must_wait_for(struct ms_open_inv *inv, uint64_t seq, uint64_t gen)
{
	return atomic_load_explicit(&inv->seq, memory_order_acquire) == seq &&
	       atomic_load_explicit(&inv->seen_gen, memory_order_acquire) < gen &&
	       atomic_load_explicit(&inv->decision, memory_order_acquire) != MS_INV_UNELIDED;
}

/* Until inv closes, decides not to elide, or sees the announcement. */
static void wait_for(struct ms_gate_fair *g, struct ms_open_inv *inv, uint64_t seq, uint64_t gen)
{
	uint32_t closes;

	while (must_wait_for(inv, seq, gen)) {
		/* Between its open and its decision a start only walks the memslots. */
		if (atomic_load_explicit(&inv->decision, memory_order_acquire) ==
		    MS_INV_UNDECIDED) {
			sched_yield();
			continue;
		}
		closes = atomic_load_explicit(&g->closes, memory_order_acquire);
		if (must_wait_for(inv, seq, gen))
			ms_futex_wait(&g->closes, closes);
	}
}

static void fair_update_begin(struct ms_vm *vm, const struct ms_hva_change *change)
{
	struct ms_gate_fair *g = &vm->gate.fair;
	uint64_t gen;

	if (!change)
		return; /* covers nothing new: no decision can go stale */
	ms_might_sleep("wait for open elided invalidations");
	ms_lock_acquire(&g->map, MS_LOCK_EXCLUSIVE);
	gen = atomic_load_explicit(&g->announce_gen, memory_order_relaxed) + 1;
	atomic_store_explicit(&g->announce_start, change->start, memory_order_relaxed);
	atomic_store_explicit(&g->announce_end, change->end, memory_order_relaxed);
	/* Pairs with the acquire load in fair_invalidate_begin(). */
	atomic_store_explicit(&g->announce_gen, gen, memory_order_release);
	atomic_store_explicit(&g->update_waiting, true, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	ms_for_each_thread_rec(vm, rec) {
		for (unsigned int i = 0; i < MS_THREAD_REC_ENTRIES; i++) {
			struct ms_open_inv *inv = &rec->inv[i];
			uint64_t seq = atomic_load_explicit(&inv->seq, memory_order_acquire);

			if ((seq & 1) &&
			    overlaps(change->start, change->end,
				     atomic_load_explicit(&inv->start, memory_order_relaxed),
				     atomic_load_explicit(&inv->end, memory_order_relaxed)))
				wait_for(g, inv, seq, gen);
		}
	}
	atomic_store_explicit(&g->update_waiting, false, memory_order_relaxed);
}

static void fair_update_end(struct ms_vm *vm)
{
	struct ms_gate_fair *g = &vm->gate.fair;
	uint64_t gen = atomic_load_explicit(&g->announce_gen, memory_order_relaxed);

	if (!(gen & 1))
		return;
	/* Starts that see the announcement withdrawn see the new memslots. */
	atomic_store_explicit(&g->announce_gen, gen + 1, memory_order_release);
	ms_lock_release(&g->map);
}

static long fair_active_invalidations(struct ms_vm *vm)
{
	long n = 0;

	ms_for_each_thread_rec(vm, rec) {
		n += atomic_load_explicit(&rec->untracked_open, memory_order_relaxed);
		for (unsigned int i = 0; i < MS_THREAD_REC_ENTRIES; i++)
			n += ms_open_inv_is_open(&rec->inv[i]);
	}
	return n;
}

static unsigned int fair_waiters(struct ms_vm *vm)
{
	return atomic_load_explicit(&vm->gate.fair.update_waiting, memory_order_relaxed);
}

bool ms_gate_fair_waits_for_caller(struct ms_vm *vm, uint64_t start, uint64_t end)
{
	struct ms_thread_rec *rec = ms_thread_rec_peek(vm);

	return rec && ms_rec_holds(rec, start, end, MS_HOLD_ELIDED);
}

const struct ms_gate_ops ms_gate_fair_ops = {
	.name = "fair",
	.update_waits = false,
	.ends_follow_starts = true,
	.init = fair_init,
	.destroy = fair_destroy,
	.invalidate_begin = fair_invalidate_begin,
	.invalidate_end = fair_invalidate_end,
	.update_begin = fair_update_begin,
	.update_end = fair_update_end,
	.active_invalidations = fair_active_invalidations,
	.waiters = fair_waiters,
};
