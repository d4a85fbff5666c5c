/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fair, writer-preferring read-write semaphore, as the kernel's rwsem:
 * once a writer waits, new readers wait behind it.  Written here rather than
 * taken from pthread_rwlock because the read side is released by whichever
 * thread calls ms_invalidate_range_end, which POSIX does not allow.
 * All fields are protected by lock.
 */
#ifndef MEMSLOTS_RWSEM_H
#define MEMSLOTS_RWSEM_H

#include <pthread.h>
#include <stdbool.h>

#include "memslots_lockdep.h"

struct ms_rwsem {
	pthread_mutex_t lock;
	pthread_cond_t readers_wait;
	pthread_cond_t writer_wait;
	long readers;
	unsigned int writers_waiting;
	bool writer;
	struct ms_lockdep_map map;
};

#define ms_rwsem_init(s, name)                                         \
	do {                                                           \
		ms_rwsem_init_locks(s);                                \
		ms_lockdep_init_map(&(s)->map, (name), MS_LOCK_RWSEM); \
	} while (0)

#define ms_down_read(s)                                     \
	do {                                                \
		ms_might_sleep("down_read");                \
		ms_lock_acquire(&(s)->map, MS_LOCK_SHARED); \
		ms_rwsem_down_read(s);                      \
	} while (0)

/* Never sleeps: false if a writer holds or waits for it. */
#define ms_down_read_trylock(s)                                          \
	({                                                               \
		bool __got = ms_rwsem_down_read_trylock(s);              \
		if (__got)                                               \
			ms_lock_acquire_try(&(s)->map, MS_LOCK_SHARED); \
		__got;                                                   \
	})

#define ms_up_read(s)                                 \
	({                                            \
		bool __held = ms_rwsem_up_read(s);    \
		if (__held)                           \
			ms_lock_release(&(s)->map);   \
		__held;                               \
	})

#define ms_down_write(s)                                       \
	do {                                                   \
		ms_might_sleep("down_write");                  \
		ms_lock_acquire(&(s)->map, MS_LOCK_EXCLUSIVE); \
		ms_rwsem_down_write(s);                        \
	} while (0)

#define ms_up_write(s)                      \
	do {                                \
		ms_rwsem_up_write(s);       \
		ms_lock_release(&(s)->map); \
	} while (0)

void ms_rwsem_init_locks(struct ms_rwsem *s);
void ms_rwsem_destroy(struct ms_rwsem *s);
void ms_rwsem_down_read(struct ms_rwsem *s);
bool ms_rwsem_down_read_trylock(struct ms_rwsem *s);
bool ms_rwsem_up_read(struct ms_rwsem *s);
void ms_rwsem_down_write(struct ms_rwsem *s);
void ms_rwsem_up_write(struct ms_rwsem *s);
long ms_rwsem_readers(struct ms_rwsem *s);
unsigned int ms_rwsem_writers_waiting(struct ms_rwsem *s);

#endif /* MEMSLOTS_RWSEM_H */
