/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The gate keeps memslot publishes out of every invalidation's start..end,
 * so that start and end decide alike whether their range overlaps a slot
 * (and so take mmu_lock alike).  Each design is one file behind these ops:
 *
 *   invalidate_begin  start of ms_invalidate_range_start, before deciding;
 *                     false (nothing changed) if !blockable and it would sleep
 *   invalidate_end    end of ms_invalidate_range_end, after its work; false
 *                     (nothing changed) if no invalidation was open
 *   update_begin      the memslot updater, under slots_lock: wait until no
 *                     invalidation is open, return with publishes allowed
 *   update_end        after the publish
 */
#ifndef MEMSLOTS_GATE_H
#define MEMSLOTS_GATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "locks.h"
#include "rwsem.h"

struct ms_vm;

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

union ms_gate_state {
	struct ms_gate_count count;
	struct ms_gate_rwsem rwsem;
	struct ms_gate_none none;
};

struct ms_gate_ops {
	const char *name;
	/* Whether update_begin waits for open invalidations. */
	bool update_waits;
	void (*init)(struct ms_vm *vm);
	void (*destroy)(struct ms_vm *vm);
	bool (*invalidate_begin)(struct ms_vm *vm, bool blockable);
	bool (*invalidate_end)(struct ms_vm *vm);
	void (*update_begin)(struct ms_vm *vm);
	void (*update_end)(struct ms_vm *vm);
	long (*active_invalidations)(struct ms_vm *vm);
	unsigned int (*waiters)(struct ms_vm *vm);
};

extern const struct ms_gate_ops ms_gate_count_ops;
extern const struct ms_gate_ops ms_gate_rwsem_ops;
extern const struct ms_gate_ops ms_gate_none_ops;

const struct ms_gate_ops *ms_gate_ops_for(int gate);
/* update_begin, timed into the stats. */
void ms_gate_update_begin(struct ms_vm *vm);

#endif /* MEMSLOTS_GATE_H */
