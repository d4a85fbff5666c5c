/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * RCU for the library, in two independent liburcu domains, read sides
 * inlined:
 *
 *  - memslot RCU (urcu-memb): lookups of the active memslot set, and faults
 *    from translation to install, get_frame included.  Memslot updates wait
 *    for its grace periods, as KVM's wait for kvm->srcu.
 *  - entry RCU (urcu-bp): a vCPU using a secondary-MMU entry and its frame.
 *    A zap waits for its grace periods before putting frames, as KVM's zap
 *    waits for vCPUs to leave guest mode.  Its sections never block, so an
 *    invalidation never waits for a fault blocked in get_frame, which may
 *    need a lock the invalidating thread holds.
 *
 * Threads register on their first section and unregister when they exit,
 * so embedders never call liburcu.
 *
 * ThreadSanitizer does not see liburcu's ordering (docs/design.md): published
 * pointers go through C11 release/acquire atomics, and in TSan builds each
 * read-side unlock releases a token that synchronize_rcu acquires, which is
 * what the grace period guarantees.  Sanitizer builds call liburcu's read
 * side out of line (MS_RCU_OUT_OF_LINE, implied under TSan): its inlined code
 * uses volatile accesses that TSan misreports, and urcu-bp 0.13 hands out
 * reader records less aligned than their type, which UBSan reports.
 */
#ifndef MEMSLOTS_RCU_H
#define MEMSLOTS_RCU_H

#if defined(__SANITIZE_THREAD__)
#define MS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MS_TSAN 1
#endif
#endif

#if !defined(MS_TSAN) && !defined(MS_RCU_OUT_OF_LINE)
#define _LGPL_SOURCE
#endif
#include <stdbool.h>
#include <urcu/urcu-bp.h>
#include <urcu/urcu-memb.h>

#include "memslots_lockdep.h"

#ifdef MS_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char ms_rcu_tsan_token;
extern char ms_spte_rcu_tsan_token;
#endif

extern __thread bool ms_rcu_registered;
extern struct ms_lockdep_map ms_rcu_map;
extern struct ms_lockdep_map ms_spte_rcu_map;

void ms_rcu_register_thread(void);
void ms_synchronize_rcu(void);
void ms_synchronize_spte_readers(void);

static inline void ms_rcu_read_lock(void)
{
	if (__builtin_expect(!ms_rcu_registered, 0))
		ms_rcu_register_thread();
	urcu_memb_read_lock();
	ms_lock_acquire(&ms_rcu_map, MS_LOCK_SHARED_RECURSIVE);
}

static inline void ms_rcu_read_unlock(void)
{
	ms_lock_release(&ms_rcu_map);
#ifdef MS_TSAN
	__tsan_release(&ms_rcu_tsan_token);
#endif
	urcu_memb_read_unlock();
}

static inline void ms_spte_read_lock(void)
{
	urcu_bp_read_lock();
	ms_lock_acquire(&ms_spte_rcu_map, MS_LOCK_SHARED_RECURSIVE);
}

static inline void ms_spte_read_unlock(void)
{
	ms_lock_release(&ms_spte_rcu_map);
#ifdef MS_TSAN
	__tsan_release(&ms_spte_rcu_tsan_token);
#endif
	urcu_bp_read_unlock();
}

#endif /* MEMSLOTS_RCU_H */
