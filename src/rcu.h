/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Read-side sections of one VM, in two domains, and the waits for them:
 *
 *  - memslot RCU (KVM's kvm->srcu): lookups of the active memslot set,
 *    faults from translation to install (get_frame included), the
 *    notifier's walks.  Memslot updates wait for it.
 *  - entry RCU (KVM's vCPUs in guest mode): a vCPU using a secondary-MMU
 *    entry and its frame.  A zap waits for it before putting frames, as
 *    KVM's TLB flush waits for vCPUs to leave guest mode.  Its sections
 *    never block, so an invalidation never waits for a fault blocked in
 *    get_frame, which may need a lock the invalidating thread holds.
 *
 * A reader is the calling thread's record for the VM (thread_rec.h).  Its
 * outermost section makes the domain's sequence odd with one locked
 * exchange, the full barrier between that store and the section's loads,
 * and ends it even with a release store.  A wait is a full barrier, then,
 * for every record of the VM that is odd, a wait until it changes.  So a
 * wait costs no IPI and no signal and waits for this VM's readers only,
 * and only for those inside a section when it looked.  Why not liburcu
 * (docs/design.md): its flavours either send membarrier() IPIs on every
 * grace period (5-7 us each on this kind of VM while another thread of the
 * process runs) or put two mfences in every section (~64 ns), and they wait
 * for every reader in the process.
 *
 * A thread that cannot get a record (no memory, first section on the VM)
 * counts itself in the VM's anonymous readers instead, which waits also
 * wait for.
 */
#ifndef MEMSLOTS_RCU_H
#define MEMSLOTS_RCU_H

#include <stdbool.h>

#include "memslots_lockdep.h"
#include "vm.h"

extern struct ms_lockdep_map ms_rcu_map;
extern struct ms_lockdep_map ms_spte_rcu_map;

void ms_rcu_anon_enter(struct ms_vm *vm, enum ms_rcu_domain d);
void ms_rcu_anon_exit(struct ms_vm *vm, enum ms_rcu_domain d);
void ms_rcu_wait_for_readers(struct ms_vm *vm, enum ms_rcu_domain d);

static inline void ms_rcu_enter(struct ms_vm *vm, enum ms_rcu_domain d)
{
	struct ms_thread_rec *rec = ms_thread_rec_get(vm);

	if (__builtin_expect(!rec, 0)) {
		ms_rcu_anon_enter(vm, d);
		return;
	}
	if (!rec->rcu_nesting[d]++) {
		uint32_t seq = atomic_load_explicit(&rec->rcu_seq[d], memory_order_relaxed);

		/* Locked, so the section's loads cannot pass it: pairs with the waiter's fence. */
		atomic_exchange_explicit(&rec->rcu_seq[d], seq + 1, memory_order_seq_cst);
		ms_exchange_barrier();
	}
}

/*
 * The record exists and is inside a section if and only if this section
 * used it: once a thread has a record every section uses it, and sections
 * opened before (anonymous) close after those.
 */
static inline void ms_rcu_exit(struct ms_vm *vm, enum ms_rcu_domain d)
{
	struct ms_thread_rec *rec = ms_thread_rec_peek(vm);

	if (__builtin_expect(!rec || !rec->rcu_nesting[d], 0)) {
		ms_rcu_anon_exit(vm, d);
		return;
	}
	if (!--rec->rcu_nesting[d])
		atomic_store_explicit(&rec->rcu_seq[d],
				      atomic_load_explicit(&rec->rcu_seq[d], memory_order_relaxed) +
					  1,
				      memory_order_release);
}

static inline void ms_rcu_read_lock(struct ms_vm *vm)
{
	ms_rcu_enter(vm, MS_RCU_MEMSLOTS);
	ms_lock_acquire(&ms_rcu_map, MS_LOCK_SHARED_RECURSIVE);
}

static inline void ms_rcu_read_unlock(struct ms_vm *vm)
{
	ms_lock_release(&ms_rcu_map);
	ms_rcu_exit(vm, MS_RCU_MEMSLOTS);
}

static inline void ms_spte_read_lock(struct ms_vm *vm)
{
	ms_rcu_enter(vm, MS_RCU_ENTRIES);
	ms_lock_acquire(&ms_spte_rcu_map, MS_LOCK_SHARED_RECURSIVE);
}

static inline void ms_spte_read_unlock(struct ms_vm *vm)
{
	ms_lock_release(&ms_spte_rcu_map);
	ms_rcu_exit(vm, MS_RCU_ENTRIES);
}

/* Wait until every memslot-RCU section of vm that began before has ended. */
void ms_synchronize_rcu(struct ms_vm *vm);
/* The same for entry RCU. */
void ms_synchronize_spte_readers(struct ms_vm *vm);

#endif /* MEMSLOTS_RCU_H */
