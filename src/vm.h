/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * struct ms_vm and struct ms_vcpu, the library's counterpart of struct kvm
 * and struct kvm_vcpu, and the declarations the src/ files share.
 *
 * Who protects what:
 *  - slots_lock (mutex) serialises memslot updates: the inactive sets,
 *    id_to_slot and generation are written only under it.
 *  - the gate (gate.h) keeps publishes of a memslot set out of every
 *    invalidation's start..end.
 *  - address_space.active is published under the gate and read under RCU.
 *  - the secondary MMU has its own lock, mmu_lock (mmu.h).
 *  - stats are relaxed atomics, written anywhere, read by ms_vm_stats; the
 *    invalidation hot path's are per thread (thread_rec.h), summed there.
 */
#ifndef MEMSLOTS_VM_H
#define MEMSLOTS_VM_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "memslots.h"
#include "gate.h"
#include "locks.h"
#include "mmu.h"
#include "gfn_index.h"
#include "slot_index.h"
#include "thread_rec.h"

/* Set on a published set until the grace period after its publish ended. */
#define MS_MEMSLOT_GEN_UPDATE_IN_PROGRESS (1ull << 63)
/* Internal flag: the slot is being deleted or moved; faults on it retry. */
#define MS_MEMSLOT_INVALID (1u << 16)

/* Immutable once reachable from a set; replaced, never changed. */
struct ms_memslot {
	uint64_t base_gfn;
	uint64_t npages;
	uint64_t userspace_addr;
	uint32_t flags;
	uint16_t id;
	uint16_t as_id;
	/* With MS_MEM_LOG_DIRTY_PAGES: a bit per page, shared by the copies
	 * of the slot an update makes (dirty_log.c); its words change. */
	_Atomic uint64_t *dirty_bitmap;
};

/* One memslot set; an address space has two and publishes one at a time. */
struct ms_memslots {
	struct gfn_index *gfn_index;  /* by base gfn: slots never overlap */
	struct slot_index *hva_index; /* hva ranges, may overlap */
	_Atomic uint64_t generation;
};

struct ms_address_space {
	struct ms_memslots *_Atomic active; /* published under the gate, read under RCU */
	struct ms_memslots sets[2];
	struct ms_memslot **id_to_slot; /* the latest state; slots_lock */
};

/* The slow-path counters; the invalidation hot path counts in thread records. */
struct ms_vm_stats {
	_Atomic uint64_t invalidations_refused;
	_Atomic uint64_t faults;
	_Atomic uint64_t fault_retries;
	_Atomic uint64_t entries_zapped;
	_Atomic uint64_t entries_present;
	_Atomic uint64_t frames_got;
	_Atomic uint64_t frames_put;
	_Atomic uint64_t memslot_updates;
	_Atomic uint64_t gate_wait_ns_total;
	_Atomic uint64_t gate_wait_ns_max;
	_Atomic uint64_t in_progress_underflows;
	_Atomic uint64_t change_pte_misuses;
	_Atomic uint64_t unmatched_ends;
	/* Ends on threads with no record for the VM (records count the others). */
	_Atomic uint64_t ends_without_record;
	_Atomic uint64_t elided_ends_without_record;
	_Atomic uint64_t pfn_cache_refreshes;
	_Atomic uint64_t pfn_cache_retries;
};

struct ms_vm {
	struct ms_config cfg;
	struct ms_address_space as[MS_MAX_ADDRESS_SPACES];

	struct ms_mutex slots_lock;
	/* Last generation published in any address space; slots_lock to write. */
	_Atomic uint64_t generation;

	const struct ms_gate_ops *gate_ops;
	union ms_gate_state gate;
	/* Held (pseudo, recursive) for the body of each invalidation callback. */
	struct ms_lockdep_map mn_callback_map;
	/* Held (pseudo, spinlock-like) around a non-blockable invalidate_ops call:
	 * anything in it that may sleep is reported. */
	struct ms_lockdep_map nonblock_callback_map;
	atomic_flag change_pte_warned;
	atomic_flag unmatched_end_warned;
	/* Unique in the process, unlike the address of a destroyed VM. */
	uint64_t serial;
	/* No slot maps a gfn at or past this (cfg.guest_phys_bits). */
	uint64_t max_gfn_end;

	struct ms_mmu mmu;
	struct ms_vm_stats stats;

	/* Active pfn caches (pfn_cache.c). */
	pthread_rwlock_t pfn_caches_lock;
	struct ms_pfn_cache *pfn_caches; /* pfn_caches_lock */
	_Atomic unsigned int nr_pfn_caches;

	/* rcu.h: sections of threads that could not get a record. */
	_Atomic unsigned long rcu_anon_readers[MS_RCU_DOMAINS];

	/* Every thread's record of its invalidations on this VM (thread_rec.h). */
	struct ms_thread_rec *_Atomic thread_recs;
	struct ms_mutex thread_recs_lock;
};

/*
 * A vCPU's last-used slot, as a copy of what translating through it needs,
 * labelled with the VM's generation read before the set it came from: valid
 * while no publish has happened since, in any address space.  Read without
 * RCU, since it points at nothing an update could free.
 */
struct ms_slot_cache {
	uint64_t generation;
	struct gfn_view view; /* npages 0: empty */
};

struct ms_vcpu {
	struct ms_vm *vm;
	struct ms_slot_cache last_used_slot[MS_MAX_ADDRESS_SPACES];
	struct ms_mmu_memory_cache spt_cache;
};

#define ms_stat_inc(vm, field) \
	atomic_fetch_add_explicit(&(vm)->stats.field, 1, memory_order_relaxed)
#define ms_stat_add(vm, field, n) \
	atomic_fetch_add_explicit(&(vm)->stats.field, (n), memory_order_relaxed)

/* notifier.c: the calling thread's own open invalidations. */
bool ms_update_waits_for_this_thread(struct ms_vm *vm);
/* A memslot update took [gfn, end) of as_id away: tell the embedder's caches. */
void ms_notify_gfn_range(struct ms_vm *vm, unsigned int as_id, uint64_t gfn, uint64_t end);

/* rcu.c: in a child of fork() records of lost threads may stay inside sections. */
extern bool ms_forked;
static inline bool ms_in_forked_child(void)
{
	return __builtin_expect(__atomic_load_n(&ms_forked, __ATOMIC_RELAXED), 0);
}

/* pfn_cache.c */
bool ms_pfn_caches_invalidate(struct ms_vm *vm, uint64_t start, uint64_t end, bool blockable);

/* dirty_log.c */
uint64_t ms_dirty_bitmap_words(uint64_t npages);
_Atomic uint64_t *ms_dirty_bitmap_alloc(const struct ms_vm *vm, uint64_t npages);
void ms_mark_dirty_locked(const struct ms_memslot *slot, uint64_t gfn);
void ms_mark_dirty(struct ms_vm *vm, const struct ms_memslot *slot, uint64_t gfn);
void ms_dirty_log_protect_slot(struct ms_vm *vm, const struct ms_memslot *slot);

/* memslots.c: KVM's rules and the steps of an update, shared with transaction.c. */
enum ms_mr_change { MS_MR_CREATE, MS_MR_DELETE, MS_MR_MOVE, MS_MR_FLAGS_ONLY };
int ms_check_memory_region(const struct ms_vm *vm, const struct ms_region *r);
/* 0 and *change, 1 if r changes nothing, or KVM's -EINVAL. */
int ms_classify_change(const struct ms_memslot *old, const struct ms_region *r,
		       enum ms_mr_change *change);
int ms_new_dirty_bitmap(const struct ms_vm *vm, const struct ms_memslot *old,
			struct ms_memslot *new);
/* After old's final publish: protect new's new bitmap, free old and its own. */
void ms_memslot_replaced(struct ms_vm *vm, struct ms_memslot *old, struct ms_memslot *new);
/* Where a create or move may go: -EEXIST, -EINVAL past the width, -EDEADLK. */
int ms_check_placement(struct ms_vm *vm, const struct ms_region *r, enum ms_mr_change change,
		       bool overlaps);
/* The slot r describes, with its bitmap (cur's, if it logs too); 0 or -ENOMEM. */
int ms_memslot_new(const struct ms_vm *vm, const struct ms_region *r, const struct ms_memslot *cur,
		   struct ms_memslot **out);
uint64_t ms_memslot_hva_end(const struct ms_memslot *slot);
struct ms_memslots *ms_inactive_memslots(struct ms_vm *vm, unsigned int as_id);
/* Both sets of as_id: nodes for inserts more insertions, before any publish. */
int ms_memslots_reserve(struct ms_vm *vm, unsigned int as_id, unsigned long inserts);
void ms_memslots_replace(struct ms_memslots *slots, struct ms_memslot *old, struct ms_memslot *new);
void ms_install_new_memslots(struct ms_vm *vm, unsigned int as_id, struct ms_memslots *slots,
			     const struct ms_hva_change *change);
int ms_memslots_init(struct ms_vm *vm);
void ms_memslots_destroy(struct ms_vm *vm);
typedef bool (*ms_hva_slot_fn)(struct ms_vm *vm, const struct ms_memslot *slot, uint64_t gfn_start,
			       uint64_t gfn_end, void *ctx);
bool ms_for_each_hva_slot(struct ms_vm *vm, uint64_t start, uint64_t end, ms_hva_slot_fn fn,
			  void *ctx);
uint64_t ms_memslot_gfn_to_hva(const struct ms_memslot *slot, uint64_t gfn);

/* The calling thread's record for vm, made on first use; NULL only without memory. May sleep. */
static inline struct ms_thread_rec *ms_thread_rec_get(struct ms_vm *vm)
{
	struct ms_rec_ref *ref = ms_recs_here;

	if (__builtin_expect(ref && ref->vm_serial == vm->serial, 1))
		return ref->rec;
	return ms_thread_rec_get_slow(vm);
}

/* The calling thread's record for vm if it has one: never sleeps, never allocates. */
static inline struct ms_thread_rec *ms_thread_rec_peek(const struct ms_vm *vm)
{
	struct ms_rec_ref *ref = ms_recs_here;

	if (__builtin_expect(ref && ref->vm_serial == vm->serial, 1))
		return ref->rec;
	return ms_thread_rec_peek_slow(vm);
}

static inline struct ms_memslots *ms_active_memslots(struct ms_vm *vm, unsigned int as_id)
{
	/* Pairs with the release store in install_new_memslots(). */
	return atomic_load_explicit(&vm->as[as_id].active, memory_order_acquire);
}

/*
 * The vCPU's last-used slot of as_id if it holds gfn and nothing was
 * published since it was copied.  Needs no RCU: the copy was labelled with
 * the generation read before the set was, and every publish stores the set
 * before the generation, so an unchanged generation means the set the copy
 * came from is still the active one.
 */
static inline const struct gfn_view *ms_vcpu_hit(const struct ms_vcpu *vcpu, unsigned int as_id,
						 uint64_t gfn)
{
	const struct ms_slot_cache *c = &vcpu->last_used_slot[as_id];

	if (c->generation == atomic_load_explicit(&vcpu->vm->generation, memory_order_acquire) &&
	    gfn - c->view.base_gfn < c->view.npages)
		return &c->view;
	return NULL;
}

/*
 * Look gfn up in the active set of as_id and make it the last-used slot;
 * caller is in an RCU read side.  The set, or NULL if no slot holds gfn.
 */
static inline struct ms_memslots *ms_vcpu_slot_lookup(struct ms_vcpu *vcpu, unsigned int as_id,
						      uint64_t gfn)
{
	struct ms_slot_cache *c = &vcpu->last_used_slot[as_id];
	uint64_t gen = atomic_load_explicit(&vcpu->vm->generation, memory_order_acquire);
	struct ms_memslots *slots = ms_active_memslots(vcpu->vm, as_id);

	/* Straight into the cache: a copy read back wider than it was written stalls. */
	c->generation = gen;
	if (!gfn_index_lookup(slots->gfn_index, gfn, &c->view)) {
		c->view.npages = 0;
		return NULL;
	}
	return slots;
}

/*
 * The slot holding gfn, invalid ones included; caller is in an RCU read
 * side.  Inline: a last-used-slot hit is the hot path of every fault.
 */
static inline const struct ms_memslot *ms_vcpu_gfn_to_memslot(struct ms_vcpu *vcpu,
							      unsigned int as_id, uint64_t gfn)
{
	const struct gfn_view *view = ms_vcpu_hit(vcpu, as_id, gfn);
	struct ms_memslots *slots = ms_active_memslots(vcpu->vm, as_id);
	const struct ms_memslot *slot;

	/* A publish after the hit's check may have replaced the slot: then look again. */
	if (view) {
		slot = gfn_index_slot(slots->gfn_index, view->id);
		if (slot && gfn - slot->base_gfn < slot->npages)
			return slot;
	}
	slots = ms_vcpu_slot_lookup(vcpu, as_id, gfn);
	return slots ? gfn_index_slot(slots->gfn_index, vcpu->last_used_slot[as_id].view.id) : NULL;
}

static inline uint64_t ms_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* MEMSLOTS_VM_H */
