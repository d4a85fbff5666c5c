/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Choosing a gate design, and the timing of updates that wait on it. */
#include "vm.h"

const struct ms_gate_ops *ms_gate_ops_for(int gate)
{
	switch (gate) {
	case MS_GATE_COUNT:
		return &ms_gate_count_ops;
	case MS_GATE_RWSEM:
		return &ms_gate_rwsem_ops;
	case MS_GATE_NONE:
		return &ms_gate_none_ops;
	case MS_GATE_FAIR:
		return &ms_gate_fair_ops;
	}
	return NULL;
}

void ms_gate_update_begin(struct ms_vm *vm, const struct ms_hva_change *change)
{
	uint64_t t0 = ms_now_ns(), waited, max;

	vm->gate_ops->update_begin(vm, change);
	waited = ms_now_ns() - t0;
	ms_stat_add(vm, gate_wait_ns_total, waited);
	/* Only the slots_lock holder writes max, so load-then-store is enough. */
	max = atomic_load_explicit(&vm->stats.gate_wait_ns_max, memory_order_relaxed);
	if (waited > max)
		atomic_store_explicit(&vm->stats.gate_wait_ns_max, waited, memory_order_relaxed);
}
