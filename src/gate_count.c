/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MS_GATE_COUNT, the upstream gate (Linux 5.15, commit 52ac8b358b0c, "KVM:
 * Block memslot updates across range_start() and range_end()"): mn_active_invalidate_count counts the
 * invalidations between start and end, under mn_invalidate_lock.  Start and
 * end never block.  The memslot updater is the single waiter (it holds
 * slots_lock): it sleeps on a futex until the count reaches zero and then
 * publishes while still holding mn_invalidate_lock, so no start can slip in
 * between its check and its publish.
 *
 * The cost, as that commit says: no fairness.  Invalidations that keep coming
 * can keep the count above zero and starve the update forever.
 */
#include "vm.h"

static void count_init(struct ms_vm *vm)
{
	struct ms_gate_count *g = &vm->gate.count;

	ms_spin_lock_init(&g->mn_invalidate_lock, "mn_invalidate_lock");
	ms_lockdep_init_map(&g->map, "mn_active_invalidate_count", MS_LOCK_PSEUDO);
	g->mn_active_invalidate_count = 0;
	g->update_waiting = false;
	atomic_init(&g->wake_seq, 0);
}

static void count_destroy(struct ms_vm *vm)
{
	/* Open invalidations may leave the count unbalanced; nobody waits. */
	ms_spin_lock_destroy(&vm->gate.count.mn_invalidate_lock);
}

static enum ms_gate_entry count_invalidate_begin(struct ms_vm *vm, struct ms_open_inv *inv,
						  bool blockable)
{
	struct ms_gate_count *g = &vm->gate.count;

	ms_lock_acquire(&g->map, MS_LOCK_SHARED_RECURSIVE);
	/* Pairs with the decrement in count_invalidate_end(). */
	ms_spin_lock(&g->mn_invalidate_lock);
	g->mn_active_invalidate_count++;
	ms_spin_unlock(&g->mn_invalidate_lock);
	return MS_GATE_ENTERED;
}

static bool count_invalidate_end(struct ms_vm *vm)
{
	struct ms_gate_count *g = &vm->gate.count;
	bool open, wake;

	/* Pairs with the increment in count_invalidate_begin(). */
	ms_spin_lock(&g->mn_invalidate_lock);
	open = g->mn_active_invalidate_count > 0;
	g->mn_active_invalidate_count -= open;
	wake = open && g->mn_active_invalidate_count == 0 && g->update_waiting;
	ms_spin_unlock(&g->mn_invalidate_lock);
	if (!open)
		return false;
	ms_lock_release(&g->map);

	/*
	 * One waiter at most, since it waits under slots_lock.  The bump pairs
	 * with the read of wake_seq in count_update_begin(): a wake that lands
	 * before the waiter sleeps changes the word and the sleep returns.
	 */
	if (wake) {
		atomic_fetch_add_explicit(&g->wake_seq, 1, memory_order_release);
		ms_futex_wake(&g->wake_seq, 1);
	}
	return true;
}

static void count_update_begin(struct ms_vm *vm, const struct ms_hva_change *change)
{
	struct ms_gate_count *g = &vm->gate.count;
	uint32_t seq;

	ms_might_sleep("wait for mn_active_invalidate_count");
	ms_lock_acquire(&g->map, MS_LOCK_EXCLUSIVE);
	ms_spin_lock(&g->mn_invalidate_lock);
	while (g->mn_active_invalidate_count) {
		g->update_waiting = true;
		seq = atomic_load_explicit(&g->wake_seq, memory_order_acquire);
		ms_spin_unlock(&g->mn_invalidate_lock);
		ms_futex_wait(&g->wake_seq, seq);
		ms_spin_lock(&g->mn_invalidate_lock);
	}
	g->update_waiting = false;
	/* Returns holding mn_invalidate_lock: the publish happens under it. */
}

static void count_update_end(struct ms_vm *vm)
{
	struct ms_gate_count *g = &vm->gate.count;

	ms_spin_unlock(&g->mn_invalidate_lock);
	ms_lock_release(&g->map);
}

static long count_active_invalidations(struct ms_vm *vm)
{
	struct ms_gate_count *g = &vm->gate.count;
	long n;

	ms_spin_lock(&g->mn_invalidate_lock);
	n = g->mn_active_invalidate_count;
	ms_spin_unlock(&g->mn_invalidate_lock);
	return n;
}

static unsigned int count_waiters(struct ms_vm *vm)
{
	struct ms_gate_count *g = &vm->gate.count;
	bool waiting;

	ms_spin_lock(&g->mn_invalidate_lock);
	waiting = g->update_waiting;
	ms_spin_unlock(&g->mn_invalidate_lock);
	return waiting;
}

const struct ms_gate_ops ms_gate_count_ops = {
	.name = "count",
	.update_waits = true,
	.init = count_init,
	.destroy = count_destroy,
	.invalidate_begin = count_invalidate_begin,
	.invalidate_end = count_invalidate_end,
	.update_begin = count_update_begin,
	.update_end = count_update_end,
	.active_invalidations = count_active_invalidations,
	.waiters = count_waiters,
};
