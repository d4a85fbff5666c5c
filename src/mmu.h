/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The secondary MMU: per address space, a radix table from gfn to an entry
 * (spte) that holds the frame and whether it may be written.
 *
 * mmu_lock protects every change to the tables, mmu_invalidate_in_progress,
 * the invalidated range and the zap batches in flight, and orders the bump
 * of mmu_invalidate_seq against faults.  Entries are read without a lock
 * inside an entry-RCU read-side section (rcu.h): a zapped entry's frame is
 * put only after a grace period, so a vCPU that read the entry before the zap
 * has finished with it.
 *
 * KVM flushes TLBs before it drops mmu_lock, so whoever takes the lock next
 * finds every cleared entry unused.  Here a zap's grace period and puts run
 * after the lock is dropped, so each zapper instead waits, before it returns,
 * for the batches that were in flight when its last walk found nothing left
 * (ms_mmu_zap_end): the state it leaves is as fully flushed as KVM's.
 * Table pages are never freed before the VM is destroyed.
 */
#ifndef MEMSLOTS_MMU_H
#define MEMSLOTS_MMU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "locks.h"
#include "memslots.h"

#define MS_SPT_BITS 10
#define MS_SPT_ENTRIES (1u << MS_SPT_BITS)
/* 4 x 10 bits: every gfn below 2^40 (x86's 52-bit guest physical space).
 * Callers never look up a gfn past the VM's width, which would alias. */
#define MS_SPT_LEVELS 4
#define MS_SPTE_WRITABLE ((uintptr_t)1)
/* At most one zap batch is waited for at a time; it lives on the stack. */
#define MS_ZAP_BATCH 256

struct ms_vm;
struct ms_vcpu;

/* Entries are tables, above the last level, or sptes (frame | WRITABLE). */
struct ms_spt {
	_Atomic uintptr_t ent[MS_SPT_ENTRIES];
};

/* Tables a fault may need, allocated before mmu_lock is taken. */
struct ms_mmu_memory_cache {
	unsigned int nobjs;
	struct ms_spt *objs[MS_SPT_LEVELS - 1];
};

struct ms_mmu {
	struct ms_spinlock mmu_lock;
	struct ms_spt *roots[MS_MAX_ADDRESS_SPACES];
	/* Bumped under mmu_lock by every invalidation end; faults snapshot it. */
	_Atomic uint64_t mmu_invalidate_seq;
	/* Invalidations between start and end that took mmu_lock. */
	_Atomic long mmu_invalidate_in_progress;
	/* Union of their host ranges while in progress; mmu_lock. */
	uint64_t mmu_invalidate_range_start;
	uint64_t mmu_invalidate_range_end;
	/* Zapped batches whose frames are not yet put, oldest first; mmu_lock. */
	struct ms_zap_batch *zaps_oldest, *zaps_newest;
	uint64_t next_zap_ticket; /* mmu_lock */
	unsigned int zap_waiters; /* mmu_lock */
	/* Bumped when a batch is finished; zappers waiting for older ones sleep on it. */
	_Atomic uint32_t zaps_done;
};

/* Lives on the zapper's stack; in the in-flight list while it holds frames. */
struct ms_zap_batch {
	unsigned int nr;
	uint64_t ticket;
	struct ms_zap_batch *prev, *next;
	void *frames[MS_ZAP_BATCH];
};

int ms_mmu_init(struct ms_vm *vm);
void ms_mmu_destroy(struct ms_vm *vm);
void ms_mmu_free_memory_cache(struct ms_mmu_memory_cache *cache);

/* The spte of gfn, 0 if none; caller is in an entry-RCU read side. */
static inline uintptr_t ms_spte_lookup(struct ms_mmu *mmu, unsigned int as_id, uint64_t gfn)
{
	struct ms_spt *spt = mmu->roots[as_id];

	for (int level = MS_SPT_LEVELS - 1; level > 0; level--) {
		unsigned int idx = (gfn >> (level * MS_SPT_BITS)) & (MS_SPT_ENTRIES - 1);

		/* Pairs with the release store in spte_install(). */
		spt = (struct ms_spt *)atomic_load_explicit(&spt->ent[idx], memory_order_acquire);
		if (!spt)
			return 0;
	}
	return atomic_load_explicit(&spt->ent[gfn & (MS_SPT_ENTRIES - 1)], memory_order_acquire);
}

/*
 * Install an entry for gfn: 0, -EAGAIN to retry outside RCU, -EDEADLK when
 * the retry would wait for an invalidation the calling thread holds open, or
 * -errno.  In memslot RCU.
 */
int ms_mmu_fault(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gfn, bool write);

/*
 * Under mmu_lock: zap the entries of [*gfn, end) into batch, advancing *gfn;
 * false when the batch filled up first.
 */
bool ms_mmu_zap_locked(struct ms_vm *vm, unsigned int as_id, uint64_t *gfn, uint64_t end,
		       struct ms_zap_batch *batch);
/* Under mmu_lock: take write access from gfn's entry; true if it had it. */
bool ms_mmu_write_protect_locked(struct ms_vm *vm, unsigned int as_id, uint64_t gfn);
/* Under mmu_lock: the same for every entry of [gfn, end). */
bool ms_mmu_write_protect_range_locked(struct ms_vm *vm, unsigned int as_id, uint64_t gfn,
				       uint64_t end);
/* Under mmu_lock: whether any entry of [gfn, end) is present. */
bool ms_mmu_range_populated(struct ms_vm *vm, unsigned int as_id, uint64_t gfn, uint64_t end);
/* Under mmu_lock: whether some zapped frame is still to be put. */
static inline bool ms_mmu_zaps_in_flight(const struct ms_mmu *mmu)
{
	return mmu->zaps_oldest != NULL;
}
/* Outside locks and RCU: wait until no vCPU uses the batch's frames, put them. */
void ms_mmu_finish_zap(struct ms_vm *vm, struct ms_zap_batch *batch);
/*
 * A zapper reads next_zap_ticket under mmu_lock in the walk that finds
 * nothing more to zap and, once its own batches are finished, waits for
 * every batch older than that: any entry of its range that another zapper
 * cleared sits in one of them.  Outside locks.
 */
void ms_mmu_zap_end(struct ms_vm *vm, uint64_t ticket);
/* Blockable zap of [gfn, end), batch by batch. */
void ms_mmu_zap_gfn_range(struct ms_vm *vm, unsigned int as_id, uint64_t gfn, uint64_t end);
/* The same for the n ranges [gfn[i], end[i]) of as_id[i], batched together. */
void ms_mmu_zap_gfn_ranges(struct ms_vm *vm, const unsigned int *as_id, const uint64_t *gfn,
			   const uint64_t *end, size_t n);

#endif /* MEMSLOTS_MMU_H */
