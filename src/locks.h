/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The library's lock types: each is a real lock plus its lock-validator map,
 * annotated before blocking so that a cycle is reported before it hangs.
 * ms_spinlock may not be held across anything that sleeps; ms_mutex may.
 */
#ifndef MEMSLOTS_LOCKS_H
#define MEMSLOTS_LOCKS_H

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "memslots_lockdep.h"

struct ms_spinlock {
	pthread_spinlock_t lock;
	struct ms_lockdep_map map;
};

struct ms_mutex {
	pthread_mutex_t lock;
	struct ms_lockdep_map map;
};

#define ms_spin_lock_init(l, name)                                        \
	do {                                                              \
		pthread_spin_init(&(l)->lock, PTHREAD_PROCESS_PRIVATE);   \
		ms_lockdep_init_map(&(l)->map, (name), MS_LOCK_SPINLOCK); \
	} while (0)

#define ms_spin_lock(l)                                        \
	do {                                                   \
		ms_lock_acquire(&(l)->map, MS_LOCK_EXCLUSIVE); \
		pthread_spin_lock(&(l)->lock);                 \
	} while (0)

#define ms_spin_unlock(l)                        \
	do {                                     \
		pthread_spin_unlock(&(l)->lock); \
		ms_lock_release(&(l)->map);      \
	} while (0)

#define ms_mutex_init(l, name)                                         \
	do {                                                           \
		pthread_mutex_init(&(l)->lock, NULL);                  \
		ms_lockdep_init_map(&(l)->map, (name), MS_LOCK_MUTEX); \
	} while (0)

#define ms_mutex_lock(l)                                       \
	do {                                                   \
		ms_might_sleep("mutex_lock");                  \
		ms_lock_acquire(&(l)->map, MS_LOCK_EXCLUSIVE); \
		pthread_mutex_lock(&(l)->lock);                \
	} while (0)

#define ms_mutex_unlock(l)                        \
	do {                                      \
		pthread_mutex_unlock(&(l)->lock); \
		ms_lock_release(&(l)->map);       \
	} while (0)

static inline void ms_spin_lock_destroy(struct ms_spinlock *l)
{
	pthread_spin_destroy(&l->lock);
}

static inline void ms_mutex_destroy(struct ms_mutex *l)
{
	pthread_mutex_destroy(&l->lock);
}

/* Sleep while *word == val; a change of the word before the call wakes it. */
static inline void ms_futex_wait(_Atomic uint32_t *word, uint32_t val)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static inline void ms_futex_wake(_Atomic uint32_t *word, int waiters)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, waiters, NULL, NULL, 0);
}

#endif /* MEMSLOTS_LOCKS_H */
