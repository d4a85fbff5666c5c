/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The memslots lock validator: lockdep for userspace.  The library annotates
 * its own locks with it; an embedder annotates its locks and pseudo-locks the
 * same way so that dependencies through them are seen.  Off by default; on
 * through ms_config.lockdep, MEMSLOTS_LOCKDEP=1 or ms_lockdep_enable().  When
 * off, every annotation costs one predictable branch.  See docs/lockdep.md.
 */
#ifndef MEMSLOTS_LOCKDEP_H
#define MEMSLOTS_LOCKDEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ms_lock_kind {
	MS_LOCK_SPINLOCK, /* must not sleep while held */
	MS_LOCK_MUTEX,
	MS_LOCK_RWSEM,	/* writer-preferring: a read is a non-recursive shared hold */
	MS_LOCK_RWLOCK, /* reads are recursive */
	MS_LOCK_RCU,	/* RCU read side: recursive read, must not sleep */
	MS_LOCK_PSEUDO, /* a named map, no real lock behind it */
};

enum ms_lock_mode {
	MS_LOCK_EXCLUSIVE,
	MS_LOCK_SHARED,		  /* non-recursive read: blocks behind a waiting writer */
	MS_LOCK_SHARED_RECURSIVE, /* recursive read: never blocks behind a writer */
};

/* One per lock instance; its class is (name, file, line) of the init site. */
struct ms_lockdep_map {
	const char *name;
	enum ms_lock_kind kind;
	const char *file;
	unsigned int line;
	void *class_cache; /* owned by the validator */
};

/* Where an annotation was made, for reports. */
struct ms_lockdep_site {
	const char *func;
	const char *file;
	unsigned int line;
};

#define MS_LOCKDEP_SITE ((struct ms_lockdep_site){ __func__, __FILE__, __LINE__ })

/*
 * True while the validator is on.  Read by every annotation (a relaxed load:
 * one plain move and one predictable branch); written only by the validator.
 */
extern bool ms_lockdep_active;

void ms_lockdep_enable(void);
void ms_lockdep_init_map_at(struct ms_lockdep_map *map, const char *name, enum ms_lock_kind kind,
			    const char *file, unsigned int line);
void ms_lockdep_acquire_at(struct ms_lockdep_map *map, enum ms_lock_mode mode, bool trylock,
			   struct ms_lockdep_site site);
void ms_lockdep_release_at(struct ms_lockdep_map *map, struct ms_lockdep_site site);
void ms_lockdep_might_sleep_at(const char *what, struct ms_lockdep_site site);
/*
 * Acquiring a lock of class inner while one of class outer is held is a bug
 * by rule (the upstream change's: invalidation callbacks must not take the slots lock).
 */
void ms_lockdep_forbid_nesting(struct ms_lockdep_map *outer, struct ms_lockdep_map *inner,
			       const char *rule);
/* Distinct problems reported so far (each is reported once). */
unsigned long ms_lockdep_reports(void);
/* Where reports go; default stderr. */
void ms_lockdep_set_output(FILE *out);

/* What a report is about. */
enum ms_lockdep_report_kind {
	MS_LOCKDEP_CIRCULAR,	    /* possible circular locking dependency */
	MS_LOCKDEP_RECURSIVE,	    /* AA: a lock the thread already holds, not a recursive read */
	MS_LOCKDEP_BAD_UNLOCK,	    /* release of a lock that is not held */
	MS_LOCKDEP_HELD_AT_EXIT,    /* a thread exited holding locks */
	MS_LOCKDEP_SLEEP_IN_ATOMIC, /* might_sleep with a spinlock held */
	MS_LOCKDEP_SLEEP_IN_RCU,    /* might_sleep inside an RCU read side */
	MS_LOCKDEP_FORBIDDEN_NESTING, /* a ms_lockdep_forbid_nesting() rule broken */
	MS_LOCKDEP_HELD_LOCK_FREED,   /* ms_lockdep_free_range() over a lock still held */
	MS_LOCKDEP_EXHAUSTED,	      /* a fixed pool ran out: validation stopped */
	MS_LOCKDEP_NR_REPORT_KINDS,
};

/* Distinct problems of one kind reported so far; they sum to ms_lockdep_reports(). */
unsigned long ms_lockdep_reports_of(enum ms_lockdep_report_kind kind);
/* On, and not stopped by an exhausted pool. */
bool ms_lockdep_validating(void);
/*
 * Reports the locks the calling thread still holds, then forgets the thread.
 * Threads created with pthread_create get this check when they exit; the main
 * thread, which leaves through exit(), must call it itself.
 */
void ms_lockdep_thread_exit(void);
/*
 * The memory at [addr, addr + size) that holds maps is about to be freed (a
 * VM destroyed with invalidations still open): forget every hold of a map in
 * it.  A shared hold of a pseudo-lock or an rwsem (an invalidation left open)
 * is forgotten quietly; any other is reported as a held lock freed.
 */
void ms_lockdep_free_range_at(const void *addr, size_t size, struct ms_lockdep_site site);
/*
 * Every thread's held locks, for a watchdog.  The newest lock of a thread may
 * be one it is still waiting for: acquisitions are annotated before blocking.
 */
void ms_lockdep_show_all_locks(FILE *out);

/* The one branch an annotation costs while the validator is off. */
#define ms_lockdep_on() __builtin_expect(__atomic_load_n(&ms_lockdep_active, __ATOMIC_RELAXED), 0)

#define ms_lockdep_init_map(map, name, kind) \
	ms_lockdep_init_map_at((map), (name), (kind), __FILE__, __LINE__)

#define ms_lock_acquire(map, mode)                                                    \
	do {                                                                          \
		if (ms_lockdep_on())                                                  \
			ms_lockdep_acquire_at((map), (mode), false, MS_LOCKDEP_SITE); \
	} while (0)

#define ms_lock_acquire_try(map, mode)                                               \
	do {                                                                         \
		if (ms_lockdep_on())                                                 \
			ms_lockdep_acquire_at((map), (mode), true, MS_LOCKDEP_SITE); \
	} while (0)

#define ms_lock_release(map)                                           \
	do {                                                           \
		if (ms_lockdep_on())                                   \
			ms_lockdep_release_at((map), MS_LOCKDEP_SITE); \
	} while (0)

#define ms_might_sleep(what)                                                \
	do {                                                                \
		if (ms_lockdep_on())                                        \
			ms_lockdep_might_sleep_at((what), MS_LOCKDEP_SITE); \
	} while (0)

#define ms_lockdep_free_range(addr, size)                                          \
	do {                                                                       \
		if (ms_lockdep_on())                                               \
			ms_lockdep_free_range_at((addr), (size), MS_LOCKDEP_SITE); \
	} while (0)

#ifdef __cplusplus
}
#endif

#endif /* MEMSLOTS_LOCKDEP_H */
