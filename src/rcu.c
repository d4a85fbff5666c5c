/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The waits of both read-side domains (rcu.h), the anonymous readers'
 * counters, and the fork() handler that marks a child, where the library
 * refuses to run: a thread of the parent that was inside a section is
 * inside it forever in the child, so a wait there would never end.
 */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "rcu.h"
#include "vm.h"

struct ms_lockdep_map ms_rcu_map;
struct ms_lockdep_map ms_spte_rcu_map;

bool ms_forked;

static void rcu_after_fork_child(void)
{
	__atomic_store_n(&ms_forked, true, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void rcu_init(void)
{
	pthread_atfork(NULL, NULL, rcu_after_fork_child);
	ms_lockdep_init_map(&ms_rcu_map, "rcu_read_lock", MS_LOCK_RCU);
	ms_lockdep_init_map(&ms_spte_rcu_map, "spte_read_lock", MS_LOCK_RCU);
}

void ms_rcu_anon_enter(struct ms_vm *vm, enum ms_rcu_domain d)
{
	atomic_fetch_add_explicit(&vm->rcu_anon_readers[d], 1, memory_order_seq_cst);
}

void ms_rcu_anon_exit(struct ms_vm *vm, enum ms_rcu_domain d)
{
	atomic_fetch_sub_explicit(&vm->rcu_anon_readers[d], 1, memory_order_release);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/*
 * Sections are short (a copy, a walk) but may be preempted or, for memslot
 * RCU, block in get_frame: spin a little, then give the CPU away, then
 * sleep in short steps.
 */
static void backoff(unsigned int *attempt)
{
	unsigned int i = (*attempt)++;

	if (i < 256) {
		cpu_relax();
	} else if (i < 320) {
		sched_yield();
	} else {
		struct timespec ts = { 0, 20000 };

		nanosleep(&ts, NULL);
	}
}

void ms_rcu_wait_for_readers(struct ms_vm *vm, enum ms_rcu_domain d)
{
	unsigned int attempt = 0;

	/* What the caller unpublished is seen by any section that this misses. */
	atomic_thread_fence(memory_order_seq_cst);
	ms_for_each_thread_rec(vm, rec) {
		uint32_t seq = atomic_load_explicit(&rec->rcu_seq[d], memory_order_acquire);

		if (!(seq & 1))
			continue;
		while (atomic_load_explicit(&rec->rcu_seq[d], memory_order_acquire) == seq)
			backoff(&attempt);
	}
	while (atomic_load_explicit(&vm->rcu_anon_readers[d], memory_order_acquire))
		backoff(&attempt);
}

void ms_synchronize_rcu(struct ms_vm *vm)
{
	ms_might_sleep("synchronize_rcu");
	ms_rcu_wait_for_readers(vm, MS_RCU_MEMSLOTS);
}

void ms_synchronize_spte_readers(struct ms_vm *vm)
{
	ms_might_sleep("synchronize_rcu (entries)");
	ms_rcu_wait_for_readers(vm, MS_RCU_ENTRIES);
}
