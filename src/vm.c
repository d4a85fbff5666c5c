/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VM lifecycle, configuration and statistics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "rcu.h"
#include "vm.h"

int ms_config_init(struct ms_config *cfg)
{
	if (!cfg)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	*cfg = (struct ms_config){
		.address_spaces = 2,
		.slots_per_space = MS_MAX_SLOTS_PER_SPACE,
		.gate = MS_GATE_FAIR,
		.guest_phys_bits = MS_GUEST_PHYS_BITS_MAX,
	};
	return 0;
}

static _Atomic uint64_t vm_serials;

static int check_config(const struct ms_config *cfg)
{
	if (cfg->address_spaces < 1 || cfg->address_spaces > MS_MAX_ADDRESS_SPACES)
		return -EINVAL;
	if (cfg->slots_per_space < 1 || cfg->slots_per_space > MS_MAX_SLOTS_PER_SPACE)
		return -EINVAL;
	if (!ms_gate_ops_for(cfg->gate))
		return -EINVAL;
	if (cfg->dirty_log_initially_set && !cfg->manual_dirty_log_protect)
		return -EINVAL;
	if (cfg->guest_phys_bits < MS_GUEST_PHYS_BITS_MIN ||
	    cfg->guest_phys_bits > MS_GUEST_PHYS_BITS_MAX)
		return -EINVAL;
	if (cfg->frame_ops && (!cfg->frame_ops->get_frame || !cfg->frame_ops->put_frame))
		return -EINVAL;
	return 0;
}

int ms_vm_create(const struct ms_config *cfg, struct ms_vm **out)
{
	struct ms_config defaults;
	struct ms_vm *vm;
	int r;

	if (!out)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	if (!cfg) {
		ms_config_init(&defaults);
		cfg = &defaults;
	}
	r = check_config(cfg);
	if (r)
		return r;
	if (cfg->lockdep)
		ms_lockdep_enable();
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->cfg = *cfg;
	vm->serial = atomic_fetch_add_explicit(&vm_serials, 1, memory_order_relaxed);
	vm->max_gfn_end = 1ull << (cfg->guest_phys_bits - MS_PAGE_SHIFT);
	ms_mutex_init(&vm->slots_lock, "slots_lock");
	pthread_rwlock_init(&vm->pfn_caches_lock, NULL);
	ms_lockdep_init_map(&vm->mn_callback_map, "invalidate_range callback", MS_LOCK_PSEUDO);
	ms_lockdep_init_map(&vm->nonblock_callback_map, "non-blockable invalidate callback",
			    MS_LOCK_SPINLOCK);
	ms_lockdep_forbid_nesting(&vm->mn_callback_map, &vm->slots_lock.map,
				  "invalidation callbacks must not take slots_lock");
	vm->gate_ops = ms_gate_ops_for(cfg->gate);
	vm->gate_ops->init(vm);
	r = ms_thread_recs_init(vm);
	if (!r)
		r = ms_memslots_init(vm);
	if (!r)
		r = ms_mmu_init(vm);
	if (r) {
		ms_vm_destroy(vm);
		return r;
	}
	*out = vm;
	return 0;
}

void ms_vm_destroy(struct ms_vm *vm)
{
	/* A child of fork() cannot wait for grace periods: the VM is leaked. */
	if (!vm || ms_in_forked_child())
		return;
	long open = vm->gate_ops->active_invalidations(vm);

	/* Misuse, said once (this VM is gone after this), never a crash. */
	if (open > 0)
		fprintf(stderr, "memslots: VM destroyed with %ld invalidation(s) still open\n",
			open);
	/*
	 * Invalidations still open leave the gate's count unbalanced, as in
	 * KVM's kvm_destroy_vm; nobody can be waiting on it, so it is dropped.
	 * Readers may have seen memslots or entries a moment ago: let them finish.
	 */
	ms_synchronize_rcu(vm);
	ms_synchronize_spte_readers(vm);
	ms_mmu_destroy(vm);
	ms_memslots_destroy(vm);
	vm->gate_ops->destroy(vm);
	ms_thread_recs_destroy(vm);
	ms_mutex_destroy(&vm->slots_lock);
	/* Holds of open invalidations die with the VM, not with a later one here. */
	ms_lockdep_free_range(vm, sizeof(*vm));
	free(vm);
}

#define LOAD(field) atomic_load_explicit(&vm->stats.field, memory_order_relaxed)
#define REC_LOAD(field) atomic_load_explicit(&rec->field, memory_order_relaxed)

int ms_vm_stats(struct ms_vm *vm, struct ms_stats *out)
{
	if (!vm || !out)
		return -EINVAL;
	/* The gate's lock may have been held by a thread lost in the fork. */
	if (ms_in_forked_child())
		return -ECHILD;
	*out = (struct ms_stats){
		.invalidations_refused = LOAD(invalidations_refused),
		.faults = LOAD(faults),
		.fault_retries = LOAD(fault_retries),
		.entries_zapped = LOAD(entries_zapped),
		.entries_present = LOAD(entries_present),
		.frames_got = LOAD(frames_got),
		.frames_put = LOAD(frames_put),
		.memslot_updates = LOAD(memslot_updates),
		.gate_wait_ns_total = LOAD(gate_wait_ns_total),
		.gate_wait_ns_max = LOAD(gate_wait_ns_max),
		.generation = atomic_load_explicit(&vm->generation, memory_order_relaxed),
		.mmu_invalidate_seq =
		    atomic_load_explicit(&vm->mmu.mmu_invalidate_seq, memory_order_relaxed),
		.mmu_invalidate_in_progress =
		    atomic_load_explicit(&vm->mmu.mmu_invalidate_in_progress, memory_order_relaxed),
		.in_progress_underflows = LOAD(in_progress_underflows),
		.mn_active_invalidate_count = vm->gate_ops->active_invalidations(vm),
		.change_pte_misuses = LOAD(change_pte_misuses),
		.unmatched_ends = LOAD(unmatched_ends),
		.pfn_cache_refreshes = LOAD(pfn_cache_refreshes),
		.pfn_cache_retries = LOAD(pfn_cache_retries),
		.gate_waiters = vm->gate_ops->waiters(vm),
	};
	out->invalidations_ended = LOAD(ends_without_record);
	out->invalidation_ends_elided = LOAD(elided_ends_without_record);
	ms_for_each_thread_rec(vm, rec) {
		out->invalidations_started += REC_LOAD(invalidations_started);
		out->invalidations_ended += REC_LOAD(invalidations_ended);
		out->invalidation_starts_elided += REC_LOAD(invalidation_starts_elided);
		out->invalidation_ends_elided += REC_LOAD(invalidation_ends_elided);
	}
	return 0;
}
