/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MS_GATE_RWSEM, the design that Linux commit 52ac8b358b0c replaced: mn_slots_rwsem is held for
 * read from each start to its end and for write by the memslot updater.
 * Because the rwsem is fair, a start that arrives while the updater waits
 * blocks behind it; if that start holds the embedder's host-mm lock while
 * another invalidation's end needs that lock, nobody moves again.  It exists
 * to show that deadlock (docs/design.md, "Why not an rwsem").
 */
#include "vm.h"

static void rwsem_gate_init(struct ms_vm *vm)
{
	ms_rwsem_init(&vm->gate.rwsem.mn_slots_rwsem, "mn_slots_rwsem");
}

static void rwsem_gate_destroy(struct ms_vm *vm)
{
	/* Readers of open invalidations may still hold it; nobody waits. */
	ms_rwsem_destroy(&vm->gate.rwsem.mn_slots_rwsem);
}

static enum ms_gate_entry rwsem_invalidate_begin(struct ms_vm *vm, struct ms_open_inv *inv,
						  bool blockable)
{
	/* Pairs with ms_up_read() in rwsem_invalidate_end(). */
	if (!blockable)
		return ms_down_read_trylock(&vm->gate.rwsem.mn_slots_rwsem) ? MS_GATE_ENTERED
									     : MS_GATE_REFUSED;
	ms_down_read(&vm->gate.rwsem.mn_slots_rwsem);
	return MS_GATE_ENTERED;
}

static bool rwsem_invalidate_end(struct ms_vm *vm)
{
	return ms_up_read(&vm->gate.rwsem.mn_slots_rwsem);
}

static void rwsem_update_begin(struct ms_vm *vm, const struct ms_hva_change *change)
{
	ms_down_write(&vm->gate.rwsem.mn_slots_rwsem);
}

static void rwsem_update_end(struct ms_vm *vm)
{
	ms_up_write(&vm->gate.rwsem.mn_slots_rwsem);
}

static long rwsem_active_invalidations(struct ms_vm *vm)
{
	return ms_rwsem_readers(&vm->gate.rwsem.mn_slots_rwsem);
}

static unsigned int rwsem_waiters(struct ms_vm *vm)
{
	return ms_rwsem_writers_waiting(&vm->gate.rwsem.mn_slots_rwsem);
}

const struct ms_gate_ops ms_gate_rwsem_ops = {
	.name = "rwsem",
	.update_waits = true,
	.init = rwsem_gate_init,
	.destroy = rwsem_gate_destroy,
	.invalidate_begin = rwsem_invalidate_begin,
	.invalidate_end = rwsem_invalidate_end,
	.update_begin = rwsem_update_begin,
	.update_end = rwsem_update_end,
	.active_invalidations = rwsem_active_invalidations,
	.waiters = rwsem_waiters,
};
