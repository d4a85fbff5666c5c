/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The gate keeps memslot publishes out of every invalidation's start..end,
 * so that start and end decide alike whether their range overlaps a slot
 * (and so take mmu_lock alike).  Each design is one file behind these ops:
 *
 *   invalidate_begin  start of ms_invalidate_range_start, with the caller's
 *                     open entry (NULL if untracked), before deciding:
 *                     MS_GATE_REFUSED (nothing changed) if !blockable and it
 *                     would sleep, MS_GATE_UNELIDED if the start must not
 *                     elide whatever the memslots say
 *   invalidate_end    end of ms_invalidate_range_end, after its work; false
 *                     (nothing changed) if no invalidation was open
 *   update_begin      the memslot updater, under slots_lock, before a publish
 *                     that makes [change) of host memory covered by a slot
 *                     (NULL: it covers nothing new): wait until no open
 *                     invalidation can decide wrongly, return with publishes
 *                     allowed
 *   update_end        after the publish
 *
 * A gate whose ends_follow_starts is set keeps each start's decision for its
 * end; the others make the end decide again, as upstream KVM does, and keep
 * the memslots still in between.
 */
#ifndef MEMSLOTS_GATE_H
#define MEMSLOTS_GATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "locks.h"
#include "rwsem.h"
#include "thread_rec.h"

struct ms_vm;

enum ms_gate_entry { MS_GATE_REFUSED, MS_GATE_ENTERED, MS_GATE_UNELIDED };

/* Host memory a publish makes covered by a slot that did not cover it. */
struct ms_hva_change {
	uint64_t start, end;
};

/* MS_GATE_COUNT: the upstream design (Linux 52ac8b358b0c). */
struct ms_gate_count {
	/* Used to wait for completion of invalidations (mn_invalidate_lock). */
	struct ms_spinlock mn_invalidate_lock;
	long mn_active_invalidate_count; /* mn_invalidate_lock */
	bool update_waiting;		 /* mn_invalidate_lock; one waiter: slots_lock */
	_Atomic uint32_t wake_seq;	 /* futex word the waiter sleeps on */
	/* The count seen as a lock: shared-recursive by invalidations,
	 * exclusive by the waiting update (docs/lockdep.md). */
	struct ms_lockdep_map map;
};

/* MS_GATE_RWSEM: the rejected design. */
struct ms_gate_rwsem {
	struct ms_rwsem mn_slots_rwsem;
};

/* MS_GATE_NONE: counts open invalidations only for ms_change_pte. */
struct ms_gate_none {
	_Atomic long open;
};

/*
 * MS_GATE_FAIR: no shared state on the elided path.  An update that covers
 * new host memory announces it (announce_gen odd, the range beside it) and
 * waits only for open, elided invalidations of that memory which started
 * before they could see the announcement; see gate_fair.c.
 */
struct ms_gate_fair {
	_Atomic uint64_t announce_gen; /* odd while an announcement stands */
	_Atomic uint64_t announce_start, announce_end;
	_Atomic bool update_waiting;
	_Atomic uint32_t closes; /* futex word: bumped by ends while an update waits */
	struct ms_lockdep_map map;
};

union ms_gate_state {
	struct ms_gate_count count;
	struct ms_gate_rwsem rwsem;
	struct ms_gate_none none;
	struct ms_gate_fair fair;
};

struct ms_gate_ops {
	const char *name;
	/* Whether update_begin waits for every open invalidation. */
	bool update_waits;
	bool ends_follow_starts;
	void (*init)(struct ms_vm *vm);
	void (*destroy)(struct ms_vm *vm);
	enum ms_gate_entry (*invalidate_begin)(struct ms_vm *vm, struct ms_open_inv *inv,
					       bool blockable);
	bool (*invalidate_end)(struct ms_vm *vm);
	void (*update_begin)(struct ms_vm *vm, const struct ms_hva_change *change);
	void (*update_end)(struct ms_vm *vm);
	long (*active_invalidations)(struct ms_vm *vm);
	unsigned int (*waiters)(struct ms_vm *vm);
};

extern const struct ms_gate_ops ms_gate_count_ops;
extern const struct ms_gate_ops ms_gate_rwsem_ops;
extern const struct ms_gate_ops ms_gate_none_ops;
extern const struct ms_gate_ops ms_gate_fair_ops;

const struct ms_gate_ops *ms_gate_ops_for(int gate);
/* update_begin, timed into the stats. */
void ms_gate_update_begin(struct ms_vm *vm, const struct ms_hva_change *change);
/* MS_GATE_FAIR: would creating a slot over [start, end) wait for the caller? */
bool ms_gate_fair_waits_for_caller(struct ms_vm *vm, uint64_t start, uint64_t end);

#endif /* MEMSLOTS_GATE_H */
