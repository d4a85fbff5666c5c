/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Thread records: for each (thread, VM) pair, the invalidations the thread
 * has open on that VM and the counters of the invalidation hot path.  Only
 * the owning thread writes a record (an end on another thread closes an
 * entry with one compare-and-swap), so the elided path shares no cache line
 * with other threads; memslot updates and ms_vm_stats read every record.
 *
 * Locks: records are linked into vm->thread_recs under thread_recs_lock
 * (a mutex, taken once per thread and VM) and never unlinked before the VM
 * is destroyed; a record whose thread exited is reused by the next thread.
 * An entry is open while its seq is odd.
 */
#ifndef MEMSLOTS_THREAD_REC_H
#define MEMSLOTS_THREAD_REC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ms_vm;

/* Open invalidations tracked per thread and VM; deeper nesting is forced unelided. */
#define MS_THREAD_REC_ENTRIES 16

/* One open invalidation. */
struct ms_open_inv {
	_Atomic uint64_t seq; /* odd while open */
	_Atomic uint64_t start, end;
	/* MS_GATE_FAIR: the update announcement the start saw (0: not yet looked). */
	_Atomic uint64_t seen_gen;
	/* The record's open counter at start: the newest matches first. */
	_Atomic uint64_t opened;
	/* The start's decision, published after seen_gen. */
	_Atomic uint8_t decision;
	/*
	 * Set while the start runs and once an end has claimed it: an end
	 * claims (compare-and-swap from 0) before it closes, so that two ends
	 * never take the same start and an end never takes one not yet begun.
	 */
	_Atomic uint8_t claimed;
};

enum { MS_INV_UNDECIDED, MS_INV_ELIDED, MS_INV_UNELIDED };

/* The read-side domains of rcu.h. */
enum ms_rcu_domain { MS_RCU_MEMSLOTS, MS_RCU_ENTRIES, MS_RCU_DOMAINS };

struct ms_thread_rec {
	struct ms_thread_rec *next; /* vm->thread_recs, never unlinked */
	_Atomic bool in_use;	    /* a live thread owns it */
	/* rcu.h: odd while the owner is inside a section of the domain. */
	_Atomic uint32_t rcu_seq[MS_RCU_DOMAINS];
	uint32_t rcu_nesting[MS_RCU_DOMAINS]; /* owner only */
	uint64_t opens;			      /* owner only */
	/* The entry opened last: where the matching end usually is. */
	_Atomic unsigned int last;
	/*
	 * Starts past MS_THREAD_REC_ENTRIES deep, with no range: counted when
	 * they begin, until an end (of this thread or any) takes one, and that
	 * end counts itself in untracked_ending until its work is done, so that
	 * the record holds every range meanwhile.
	 */
	_Atomic uint64_t untracked_open;
	_Atomic uint64_t untracked_ending;
	/* Counters of the hot path: owner-written, summed by ms_vm_stats. */
	_Atomic uint64_t invalidations_started;
	_Atomic uint64_t invalidations_ended;
	_Atomic uint64_t invalidation_starts_elided;
	_Atomic uint64_t invalidation_ends_elided;
	struct ms_open_inv inv[MS_THREAD_REC_ENTRIES];
} __attribute__((aligned(64)));

/*
 * The calling thread's references to its records, the most recently used
 * first, so finding the caller's record is one thread-local load and one
 * compare (vm.h: ms_thread_rec_get, ms_thread_rec_peek).
 */
struct ms_rec_ref {
	uint64_t vm_serial;
	struct ms_thread_rec *rec;
	struct ms_rec_ref *next;
};
extern __thread struct ms_rec_ref *ms_recs_here;
struct ms_thread_rec *ms_thread_rec_get_slow(struct ms_vm *vm);
struct ms_thread_rec *ms_thread_rec_peek_slow(const struct ms_vm *vm);
/* Visit every record of vm (racy snapshot of live ones). */
#define ms_for_each_thread_rec(vm, rec)                                          \
	for (struct ms_thread_rec *rec =                                         \
		 atomic_load_explicit(&(vm)->thread_recs, memory_order_acquire); \
	     rec; rec = rec->next)
int ms_thread_recs_init(struct ms_vm *vm);
void ms_thread_recs_destroy(struct ms_vm *vm);

/*
 * After a locked exchange that must keep the caller's later loads after its
 * store (rcu.h, the fair gate's entries).  On x86 the exchange is that full
 * barrier by itself; elsewhere (AArch64's exclusive pairs) later loads may
 * pass the store, and C11 promises nothing for non-seq_cst loads: fence.
 */
static inline void ms_exchange_barrier(void)
{
#if !defined(__x86_64__) && !defined(__i386__)
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

/* Owner-only increment: no locked instruction, readers see whole values. */
#define ms_rec_inc(rec, field)                                                               \
	atomic_store_explicit(&(rec)->field,                                                 \
			      atomic_load_explicit(&(rec)->field, memory_order_relaxed) + 1, \
			      memory_order_relaxed)

/* Open an entry for [start, end) in the caller's record; NULL if all are in use. */
struct ms_open_inv *ms_open_inv_push(struct ms_thread_rec *rec, uint64_t start, uint64_t end);
/*
 * A start past MS_THREAD_REC_ENTRIES deep counts itself before it raises
 * anything, so that its pages are held from then on; a refused one drops
 * the count again.
 */
void ms_untracked_open(struct ms_thread_rec *rec);
void ms_untracked_refused(struct ms_thread_rec *rec);
/* The start of inv has returned: ends may claim it now. */
void ms_open_inv_started(struct ms_open_inv *inv);
/*
 * What an end of [start, end) ends: an open entry of exactly that range,
 * the caller's own newest first, then any thread's (claimed, *untracked
 * NULL); else an untracked start, the caller's own first, then any
 * thread's (*untracked its record, counted in untracked_ending); else
 * nothing (NULL, *untracked NULL).
 */
struct ms_open_inv *ms_end_match(struct ms_vm *vm, struct ms_thread_rec *rec, uint64_t start,
				 uint64_t end, struct ms_thread_rec **untracked);
/* Give back what ms_end_match took, for an end that does not go on. */
void ms_end_unmatch(struct ms_open_inv *inv, struct ms_thread_rec *untracked);
/* The end's work is done: close the claimed entry, or the untracked end. */
void ms_end_done(struct ms_open_inv *inv, struct ms_thread_rec *untracked);
/* A refused start closes its own entry (still claimed by it). */
void ms_open_inv_close(struct ms_open_inv *inv);

/*
 * Does rec hold an open invalidation overlapping [lo, hi): any, one that
 * elided, or one that took mmu_lock (or has not decided yet)?
 */
enum ms_hold { MS_HOLD_ANY, MS_HOLD_ELIDED, MS_HOLD_LOCKED };
bool ms_rec_holds(const struct ms_thread_rec *rec, uint64_t lo, uint64_t hi, enum ms_hold which);
/* Under mmu_lock: is an open invalidation (the caller's own) over the pages [lo, hi)? */
bool ms_pages_invalidated(struct ms_vm *vm, uint64_t lo, uint64_t hi);
bool ms_pages_invalidated_here(struct ms_vm *vm, uint64_t lo, uint64_t hi);

static inline bool ms_open_inv_is_open(const struct ms_open_inv *inv)
{
	return atomic_load_explicit(&inv->seq, memory_order_acquire) & 1;
}

#endif /* MEMSLOTS_THREAD_REC_H */
