/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Thread records (thread_rec.h).  Each thread keeps a small list of
 * (VM serial, record) references, the most recently used first, so finding
 * the caller's record is one thread-local load and one compare.  When the
 * thread exits, its records are handed back for reuse, but only for VMs
 * that still exist: live_vms (under live_lock) lists their serials.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "vm.h"

__thread struct ms_rec_ref *ms_recs_here;

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *live_vms; /* live_lock */
static size_t nr_live_vms, live_vms_cap;
static pthread_key_t recs_key;
static pthread_once_t recs_once = PTHREAD_ONCE_INIT;

static bool vm_live_locked(uint64_t serial)
{
	for (size_t i = 0; i < nr_live_vms; i++)
		if (live_vms[i] == serial)
			return true;
	return false;
}

/* Thread exit: records of VMs still alive go back for reuse. */
static void recs_thread_exit(void *unused)
{
	struct ms_rec_ref *ref, *next;

	pthread_mutex_lock(&live_lock);
	for (ref = ms_recs_here; ref; ref = next) {
		next = ref->next;
		if (vm_live_locked(ref->vm_serial))
			atomic_store_explicit(&ref->rec->in_use, false, memory_order_release);
		free(ref);
	}
	ms_recs_here = NULL;
	pthread_mutex_unlock(&live_lock);
}

static void recs_init_once(void)
{
	pthread_key_create(&recs_key, recs_thread_exit);
}

int ms_thread_recs_init(struct ms_vm *vm)
{
	int r = 0;

	pthread_once(&recs_once, recs_init_once);
	ms_mutex_init(&vm->thread_recs_lock, "thread_recs_lock");
	atomic_init(&vm->thread_recs, NULL);
	pthread_mutex_lock(&live_lock);
	if (nr_live_vms == live_vms_cap) {
		size_t cap = live_vms_cap ? 2 * live_vms_cap : 16;
		uint64_t *grown = realloc(live_vms, cap * sizeof(*grown));

		if (grown) {
			live_vms = grown;
			live_vms_cap = cap;
		} else {
			r = -ENOMEM;
		}
	}
	if (!r)
		live_vms[nr_live_vms++] = vm->serial;
	pthread_mutex_unlock(&live_lock);
	return r;
}

/* No thread uses vm any more; threads that did may still exit later. */
void ms_thread_recs_destroy(struct ms_vm *vm)
{
	struct ms_thread_rec *rec, *next;

	pthread_mutex_lock(&live_lock);
	for (size_t i = 0; i < nr_live_vms; i++) {
		if (live_vms[i] == vm->serial) {
			live_vms[i] = live_vms[--nr_live_vms];
			break;
		}
	}
	pthread_mutex_unlock(&live_lock);
	for (rec = atomic_load_explicit(&vm->thread_recs, memory_order_relaxed); rec; rec = next) {
		next = rec->next;
		free(rec);
	}
	ms_mutex_destroy(&vm->thread_recs_lock);
}

/*
 * Nothing of a previous owner is left open in rec: a thread that exited
 * with an invalidation open (its end may come from another thread) leaves
 * the record to nobody until that end, or the new owner would be taken for
 * its holder (-EDEADLK on its own accesses and updates).  Only the owner
 * opens entries, so an unowned record that is idle stays idle.
 */
static bool rec_idle(const struct ms_thread_rec *rec)
{
	if (atomic_load_explicit(&rec->untracked_open, memory_order_acquire) ||
	    atomic_load_explicit(&rec->untracked_ending, memory_order_acquire))
		return false;
	for (unsigned int i = 0; i < MS_THREAD_REC_ENTRIES; i++)
		if (ms_open_inv_is_open(&rec->inv[i]))
			return false;
	return true;
}

/* A record of vm no thread owns and none holds open, or a new one; NULL without memory. */
static struct ms_thread_rec *rec_claim(struct ms_vm *vm)
{
	struct ms_thread_rec *rec;

	ms_for_each_thread_rec(vm, free_rec) {
		bool unused = false;

		if (atomic_load_explicit(&free_rec->in_use, memory_order_relaxed) ||
		    !rec_idle(free_rec))
			continue;
		if (atomic_compare_exchange_strong(&free_rec->in_use, &unused, true))
			return free_rec;
	}
	rec = aligned_alloc(64, sizeof(*rec));
	if (!rec)
		return NULL;
	*rec = (struct ms_thread_rec){ .in_use = true };
	ms_mutex_lock(&vm->thread_recs_lock);
	rec->next = atomic_load_explicit(&vm->thread_recs, memory_order_relaxed);
	/* Pairs with the acquire load in ms_for_each_thread_rec(). */
	atomic_store_explicit(&vm->thread_recs, rec, memory_order_release);
	ms_mutex_unlock(&vm->thread_recs_lock);
	return rec;
}

/* The caller's reference for vm, moved to the front; NULL if it has none. */
static struct ms_rec_ref *ref_find(const struct ms_vm *vm)
{
	struct ms_rec_ref **link, *ref;

	for (link = &ms_recs_here; (ref = *link); link = &ref->next) {
		if (ref->vm_serial != vm->serial)
			continue;
		*link = ref->next; /* most recently used first */
		ref->next = ms_recs_here;
		ms_recs_here = ref;
		return ref;
	}
	return NULL;
}

struct ms_thread_rec *ms_thread_rec_peek_slow(const struct ms_vm *vm)
{
	struct ms_rec_ref *ref = ref_find(vm);

	return ref ? ref->rec : NULL;
}

struct ms_thread_rec *ms_thread_rec_get_slow(struct ms_vm *vm)
{
	struct ms_rec_ref *ref = ref_find(vm);

	if (ref)
		return ref->rec;
	ref = malloc(sizeof(*ref));
	if (!ref)
		return NULL;
	ref->rec = rec_claim(vm);
	if (!ref->rec) {
		free(ref);
		return NULL;
	}
	ref->vm_serial = vm->serial;
	ref->next = ms_recs_here;
	ms_recs_here = ref;
	/* Any non-NULL value makes the destructor run at thread exit. */
	pthread_setspecific(recs_key, ref);
	return ref->rec;
}

struct ms_open_inv *ms_open_inv_push(struct ms_thread_rec *rec, uint64_t start, uint64_t end)
{
	for (unsigned int i = 0; i < MS_THREAD_REC_ENTRIES; i++) {
		struct ms_open_inv *inv = &rec->inv[i];
		uint64_t seq = atomic_load_explicit(&inv->seq, memory_order_relaxed);

		if (seq & 1)
			continue;
		atomic_store_explicit(&inv->start, start, memory_order_relaxed);
		atomic_store_explicit(&inv->end, end, memory_order_relaxed);
		atomic_store_explicit(&inv->seen_gen, 0, memory_order_relaxed);
		atomic_store_explicit(&inv->decision, MS_INV_UNDECIDED, memory_order_relaxed);
		atomic_store_explicit(&inv->claimed, 1, memory_order_relaxed);
		atomic_store_explicit(&inv->opened, ++rec->opens, memory_order_relaxed);
		atomic_store_explicit(&rec->last, i, memory_order_relaxed);
		/*
		 * Readers that see it open see its range.  Locked: the full barrier
		 * between this store and the start's reads of the fair gate's
		 * announcement, whose updater pairs it with a fence (gate_fair.c).
		 */
		atomic_exchange_explicit(&inv->seq, seq + 1, memory_order_seq_cst);
		ms_exchange_barrier();
		return inv;
	}
	return NULL;
}

/* Open, of exactly [start, end), and free for an end to claim. */
static bool inv_matches(struct ms_open_inv *inv, uint64_t start, uint64_t end)
{
	return ms_open_inv_is_open(inv) &&
	       !atomic_load_explicit(&inv->claimed, memory_order_acquire) &&
	       atomic_load_explicit(&inv->start, memory_order_relaxed) == start &&
	       atomic_load_explicit(&inv->end, memory_order_relaxed) == end;
}

static struct ms_open_inv *rec_find(struct ms_thread_rec *rec, uint64_t start, uint64_t end)
{
	struct ms_open_inv *best =
	    &rec->inv[atomic_load_explicit(&rec->last, memory_order_relaxed)];
	uint64_t best_opened = 0;

	/* The entry opened last is the newest: if it matches, it is the one. */
	if (inv_matches(best, start, end))
		return best;
	best = NULL;
	for (unsigned int i = 0; i < MS_THREAD_REC_ENTRIES; i++) {
		struct ms_open_inv *inv = &rec->inv[i];
		uint64_t opened = atomic_load_explicit(&inv->opened, memory_order_relaxed);

		if (inv_matches(inv, start, end) && (!best || opened > best_opened)) {
			best = inv;
			best_opened = opened;
		}
	}
	return best;
}

/*
 * Claim inv for an end of [start, end): false if another end got it first,
 * or if it was closed and opened again (for another range, perhaps) since
 * it was found.
 */
static bool inv_claim(struct ms_open_inv *inv, uint64_t start, uint64_t end)
{
	uint64_t seq = atomic_load_explicit(&inv->seq, memory_order_acquire);
	uint8_t unclaimed = 0;

	if (!(seq & 1) ||
	    !atomic_compare_exchange_strong_explicit(&inv->claimed, &unclaimed, 1,
						     memory_order_acq_rel, memory_order_relaxed))
		return false;
	if (atomic_load_explicit(&inv->seq, memory_order_acquire) == seq &&
	    atomic_load_explicit(&inv->start, memory_order_relaxed) == start &&
	    atomic_load_explicit(&inv->end, memory_order_relaxed) == end)
		return true;
	atomic_store_explicit(&inv->claimed, 0, memory_order_release);
	return false;
}

/* The newest entry of [start, end), own record first, claimed; NULL if there is none. */
static struct ms_open_inv *claim_tracked(struct ms_vm *vm, struct ms_thread_rec *rec,
					 uint64_t start, uint64_t end)
{
	struct ms_open_inv *inv;

	while (rec && (inv = rec_find(rec, start, end)))
		if (inv_claim(inv, start, end))
			return inv;
	ms_for_each_thread_rec(vm, other) {
		while (other != rec && (inv = rec_find(other, start, end)))
			if (inv_claim(inv, start, end))
				return inv;
	}
	return NULL;
}

void ms_untracked_open(struct ms_thread_rec *rec)
{
	/* Locked: the full barrier before the start's reads, as for an entry's open. */
	atomic_fetch_add_explicit(&rec->untracked_open, 1, memory_order_seq_cst);
	ms_exchange_barrier();
}

/* Down by one unless an end took it already (a racing end of another start). */
static bool untracked_dec(struct ms_thread_rec *rec)
{
	uint64_t n = atomic_load_explicit(&rec->untracked_open, memory_order_relaxed);

	while (n &&
	       !atomic_compare_exchange_weak_explicit(&rec->untracked_open, &n, n - 1,
						      memory_order_acq_rel, memory_order_relaxed))
		;
	return n;
}

void ms_untracked_refused(struct ms_thread_rec *rec)
{
	untracked_dec(rec);
}

/* One untracked start of rec taken by an end, which holds on (untracked_ending) until done. */
static bool untracked_take(struct ms_thread_rec *rec)
{
	atomic_fetch_add_explicit(&rec->untracked_ending, 1, memory_order_acq_rel);
	if (untracked_dec(rec))
		return true;
	atomic_fetch_sub_explicit(&rec->untracked_ending, 1, memory_order_acq_rel);
	return false;
}

struct ms_open_inv *ms_end_match(struct ms_vm *vm, struct ms_thread_rec *rec, uint64_t start,
				 uint64_t end, struct ms_thread_rec **untracked)
{
	struct ms_open_inv *inv = claim_tracked(vm, rec, start, end);

	*untracked = NULL;
	if (inv)
		return inv;
	/* An untracked start has no range: only after every exact match. */
	if (rec && untracked_take(rec)) {
		*untracked = rec;
		return NULL;
	}
	ms_for_each_thread_rec(vm, other) {
		if (other != rec && untracked_take(other)) {
			*untracked = other;
			return NULL;
		}
	}
	return NULL;
}

void ms_end_unmatch(struct ms_open_inv *inv, struct ms_thread_rec *untracked)
{
	if (inv)
		atomic_store_explicit(&inv->claimed, 0, memory_order_release);
	if (untracked) {
		atomic_fetch_add_explicit(&untracked->untracked_open, 1, memory_order_acq_rel);
		atomic_fetch_sub_explicit(&untracked->untracked_ending, 1, memory_order_acq_rel);
	}
}

/*
 * An updater that sees it closed sees the end's work done; locked, so the
 * end's read of the fair gate's update_waiting comes after it.
 */
void ms_open_inv_close(struct ms_open_inv *inv)
{
	atomic_exchange_explicit(&inv->seq,
				 atomic_load_explicit(&inv->seq, memory_order_relaxed) + 1,
				 memory_order_seq_cst);
	ms_exchange_barrier();
}

void ms_open_inv_started(struct ms_open_inv *inv)
{
	atomic_store_explicit(&inv->claimed, 0, memory_order_release);
}

void ms_end_done(struct ms_open_inv *inv, struct ms_thread_rec *untracked)
{
	if (inv)
		ms_open_inv_close(inv);
	if (untracked) {
		atomic_fetch_sub_explicit(&untracked->untracked_ending, 1, memory_order_seq_cst);
		ms_exchange_barrier();
	}
}

bool ms_rec_holds(const struct ms_thread_rec *rec, uint64_t lo, uint64_t hi, enum ms_hold which)
{
	/* Untracked starts never elide under the fair gate, the only one that asks. */
	if (which != MS_HOLD_ELIDED &&
	    (atomic_load_explicit(&rec->untracked_open, memory_order_relaxed) ||
	     atomic_load_explicit(&rec->untracked_ending, memory_order_relaxed)))
		return true;
	for (unsigned int i = 0; i < MS_THREAD_REC_ENTRIES; i++) {
		const struct ms_open_inv *inv = &rec->inv[i];
		bool elided =
		    atomic_load_explicit(&inv->decision, memory_order_relaxed) == MS_INV_ELIDED;

		if (ms_open_inv_is_open(inv) &&
		    (which == MS_HOLD_ANY || elided == (which == MS_HOLD_ELIDED)) &&
		    atomic_load_explicit(&inv->start, memory_order_relaxed) < hi &&
		    atomic_load_explicit(&inv->end, memory_order_relaxed) > lo)
			return true;
	}
	return false;
}

/*
 * Under mmu_lock: is an invalidation of the host pages [lo, hi) open, one
 * that took mmu_lock?  The in-progress union is a quick filter; the thread
 * records then say whether an open invalidation really touches them, so a
 * stream of unrelated ones cannot hold the caller back.  Starts deeper than
 * the records fall back on the union.
 */
bool ms_pages_invalidated(struct ms_vm *vm, uint64_t lo, uint64_t hi)
{
	struct ms_mmu *mmu = &vm->mmu;
	bool in_union =
	    atomic_load_explicit(&mmu->mmu_invalidate_in_progress, memory_order_relaxed) &&
	    lo < mmu->mmu_invalidate_range_end && hi > mmu->mmu_invalidate_range_start;

	if (!in_union)
		return false;
	ms_for_each_thread_rec(vm, rec) {
		if (ms_rec_holds(rec, lo, hi, MS_HOLD_LOCKED))
			return true;
	}
	return false;
}

/* The same for the calling thread's own invalidations only. */
bool ms_pages_invalidated_here(struct ms_vm *vm, uint64_t lo, uint64_t hi)
{
	struct ms_thread_rec *rec = ms_thread_rec_peek(vm);

	return rec && ms_rec_holds(rec, lo, hi, MS_HOLD_LOCKED);
}
