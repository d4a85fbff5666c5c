/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Thread registration with liburcu and the grace-period waits of both
 * domains (rcu.h).  A memslot-RCU registration lives until the thread exits
 * (a pthread key destructor undoes it); urcu-bp registers by itself.  A
 * fork() handler marks the child, where the library refuses to run.
 */
#include <pthread.h>

#include "rcu.h"

__thread bool ms_rcu_registered;
struct ms_lockdep_map ms_rcu_map;
struct ms_lockdep_map ms_spte_rcu_map;
#ifdef MS_TSAN
char ms_rcu_tsan_token;
char ms_spte_rcu_tsan_token;
#endif

static pthread_key_t rcu_thread_key;
static pthread_once_t rcu_once = PTHREAD_ONCE_INIT;

bool ms_forked;

static void rcu_thread_exit(void *unused)
{
	/* In a forked child the registry's lock may be held by a lost thread. */
	if (!ms_forked)
		urcu_memb_unregister_thread();
	ms_rcu_registered = false;
}

/*
 * A parent thread that was inside a read-side section when another forked
 * stays inside it forever in the child, so the child's first grace period
 * never ends.  The library refuses work in the child instead (-ECHILD).
 */
static void rcu_after_fork_child(void)
{
	__atomic_store_n(&ms_forked, true, __ATOMIC_RELAXED);
}

static void rcu_init_once(void)
{
	pthread_atfork(NULL, NULL, rcu_after_fork_child);
	pthread_key_create(&rcu_thread_key, rcu_thread_exit);
	ms_lockdep_init_map(&ms_rcu_map, "rcu_read_lock", MS_LOCK_RCU);
	ms_lockdep_init_map(&ms_spte_rcu_map, "spte_read_lock", MS_LOCK_RCU);
}

/* Entry readers may run before any memslot reader: name their map early. */
__attribute__((constructor)) static void rcu_init(void)
{
	pthread_once(&rcu_once, rcu_init_once);
}

void ms_rcu_register_thread(void)
{
	pthread_once(&rcu_once, rcu_init_once);
	urcu_memb_register_thread();
	/* Any non-NULL value makes the destructor run at thread exit. */
	pthread_setspecific(rcu_thread_key, &ms_rcu_registered);
	ms_rcu_registered = true;
}

void ms_synchronize_rcu(void)
{
	ms_might_sleep("synchronize_rcu");
	urcu_memb_synchronize_rcu();
#ifdef MS_TSAN
	__tsan_acquire(&ms_rcu_tsan_token);
#endif
}

void ms_synchronize_spte_readers(void)
{
	ms_might_sleep("synchronize_rcu (entries)");
	urcu_bp_synchronize_rcu();
#ifdef MS_TSAN
	__tsan_acquire(&ms_spte_rcu_tsan_token);
#endif
}
