/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MS_GATE_NONE: no gate.  A memslot update can land between a start and its
 * end, so with lock elision the two can decide differently and leave
 * mmu_invalidate_in_progress unbalanced.  It exists to show that imbalance.
 * The counter serves only ms_change_pte's misuse check and the stats.
 */
#include "vm.h"

static void none_init(struct ms_vm *vm)
{
	atomic_init(&vm->gate.none.open, 0);
}

static void none_nop(struct ms_vm *vm)
{
}

static void none_update_begin(struct ms_vm *vm, const struct ms_hva_change *change)
{
}

static enum ms_gate_entry none_invalidate_begin(struct ms_vm *vm, struct ms_open_inv *inv,
						 bool blockable)
{
	/* Pairs with the decrement in none_invalidate_end(). */
	atomic_fetch_add_explicit(&vm->gate.none.open, 1, memory_order_relaxed);
	return MS_GATE_ENTERED;
}

/* Never below zero, even when ends race with an unmatched one. */
static bool none_invalidate_end(struct ms_vm *vm)
{
	long open = atomic_load_explicit(&vm->gate.none.open, memory_order_relaxed);

	do {
		if (open <= 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&vm->gate.none.open, &open, open - 1,
							memory_order_relaxed, memory_order_relaxed));
	return true;
}

static long none_active_invalidations(struct ms_vm *vm)
{
	return atomic_load_explicit(&vm->gate.none.open, memory_order_relaxed);
}

static unsigned int none_waiters(struct ms_vm *vm)
{
	return 0;
}

const struct ms_gate_ops ms_gate_none_ops = {
	.name = "none",
	.init = none_init,
	.destroy = none_nop,
	.invalidate_begin = none_invalidate_begin,
	.invalidate_end = none_invalidate_end,
	.update_begin = none_update_begin,
	.update_end = none_nop,
	.active_invalidations = none_active_invalidations,
	.waiters = none_waiters,
};
