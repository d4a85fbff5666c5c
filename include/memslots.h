/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memslots: the guest-memory core of Linux KVM in userspace.
 *
 * Memory slots map guest frame numbers (gfn) to host addresses (hva); a
 * secondary MMU caches gfn -> frame translations for vCPUs; the MMU-notifier
 * protocol (ms_invalidate_range_start/end) keeps that cache coherent while the
 * embedder changes its host mappings.  Every call returns 0 or a negative errno
 * and never prints to stdout.  See docs/design.md for how the pieces fit.
 */
#ifndef MEMSLOTS_H
#define MEMSLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MS_PAGE_SHIFT 12
#define MS_PAGE_SIZE (1ull << MS_PAGE_SHIFT)

/* Flags of struct ms_region, as KVM_MEM_LOG_DIRTY_PAGES and KVM_MEM_READONLY. */
#define MS_MEM_LOG_DIRTY_PAGES (1u << 0)
#define MS_MEM_READONLY (1u << 1)

/* Limits of struct ms_config. */
#define MS_MAX_ADDRESS_SPACES 16
#define MS_MAX_SLOTS_PER_SPACE 32764

/* Same fields and meaning as struct kvm_userspace_memory_region. */
struct ms_region {
	uint32_t slot; /* address-space id << 16 | slot id */
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;	 /* bytes; 0 deletes the slot */
	uint64_t userspace_addr; /* host address of the first byte */
};

/*
 * How memslot updates are kept from landing between an invalidation's start
 * and its end (docs/design.md, "The gate").
 */
enum ms_gate {
	MS_GATE_COUNT, /* the seed: counter under a spinlock, one waiter */
	MS_GATE_RWSEM, /* rejected: fair rwsem held for read start..end */
	MS_GATE_NONE,  /* no gate: shows the imbalance the gate prevents */
};

struct ms_frame_ops {
	/*
	 * Map the host page at hva (page aligned) for the secondary MMU: 0 and,
	 * in *frame, the address through which that page's bytes are read and
	 * written; or -errno, which the vCPU access then returns.  A frame must
	 * be at least 2-byte aligned.  Runs inside an RCU read-side section: it
	 * may block, but must not call back into the library.
	 */
	int (*get_frame)(void *opaque, uint64_t hva, bool write, void **frame);
	/* The entry holding frame is gone: release it.  Exactly once per frame got. */
	void (*put_frame)(void *opaque, void *frame);
};

/*
 * Observation points for tools and tests.  Each runs on the calling thread,
 * inside the library, and must not call back into it.
 */
struct ms_trace_ops {
	/*
	 * An invalidation start (end) decided whether [start, end) overlaps a
	 * memslot (elided: it does not, mmu_lock skipped) while the memslots of
	 * generation were published.  With a gate, a start and its end see the
	 * same generation.
	 */
	void (*invalidate_start)(void *opaque, uint64_t start, uint64_t end, bool elided,
				 uint64_t generation);
	void (*invalidate_end)(void *opaque, uint64_t start, uint64_t end, bool elided,
			       uint64_t generation);
};

struct ms_config {
	unsigned int address_spaces;  /* default 2 (x86 KVM with SMM), 1..16 */
	unsigned int slots_per_space; /* default 32764, 1..32764 */
	enum ms_gate gate;	      /* default MS_GATE_COUNT */
	bool no_elision;	      /* default false: unrelated ranges skip mmu_lock */
	bool lockdep;		      /* default false: turn the lock validator on (process-wide) */
	const struct ms_frame_ops *frame_ops; /* default NULL: a frame is the hva */
	void *frame_opaque;
	const struct ms_trace_ops *trace_ops; /* default NULL */
	void *trace_opaque;
};

struct ms_stats {
	uint64_t invalidations_started; /* starts that returned 0 */
	uint64_t invalidations_ended;
	uint64_t invalidation_starts_elided; /* starts that skipped mmu_lock */
	uint64_t invalidation_ends_elided;   /* ends that skipped mmu_lock */
	uint64_t invalidations_refused;	     /* non-blockable starts that returned -EAGAIN */
	uint64_t faults;
	uint64_t fault_retries;
	uint64_t entries_zapped;
	uint64_t entries_present;
	uint64_t frames_got;
	uint64_t frames_put;
	uint64_t memslot_updates;    /* ms_set_memory_region calls that changed something */
	uint64_t gate_wait_ns_total; /* time updates waited on the gate */
	uint64_t gate_wait_ns_max;
	uint64_t generation; /* of the most recently published memslot set */
	uint64_t mmu_invalidate_seq;
	int64_t mmu_invalidate_in_progress; /* negative only without a gate */
	uint64_t in_progress_underflows;    /* ends that took the count below 0 */
	int64_t mn_active_invalidate_count; /* starts without their end yet */
	uint32_t gate_waiters;		    /* memslot updates waiting on the gate now */
	uint64_t change_pte_misuses;	    /* ms_change_pte outside a start/end pair */
};

struct ms_vm;
struct ms_vcpu;

void ms_config_init(struct ms_config *cfg);
int ms_vm_create(const struct ms_config *cfg, struct ms_vm **out);
/* No other call on vm may run or follow; open invalidations are dropped. */
void ms_vm_destroy(struct ms_vm *vm);

/* KVM_SET_USER_MEMORY_REGION: create, delete, move or change flags of a slot. */
int ms_set_memory_region(struct ms_vm *vm, const struct ms_region *r);

/* A vCPU is used by one thread at a time; any number run at once. */
int ms_vcpu_create(struct ms_vm *vm, struct ms_vcpu **out);
void ms_vcpu_destroy(struct ms_vcpu *vcpu);
/* Memslot lookup only: -EFAULT outside every valid slot or writing a READONLY one. */
int ms_gfn_to_hva(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gfn, bool write,
		  uint64_t *hva);
/* Copy through the secondary MMU, faulting entries in; waits out open invalidations. */
int ms_vcpu_read(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gpa, void *buf, size_t len);
int ms_vcpu_write(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gpa, const void *buf,
		  size_t len);

/*
 * The embedder brackets every change to its host mappings of [start, end)
 * with these, as the kernel's mm does for KVM.  After start returns 0, no
 * vCPU uses a frame of the range until the matching end.  A non-blockable
 * start that would have to wait for vCPUs returns -EAGAIN, changes nothing,
 * and must not be followed by an end.
 */
int ms_invalidate_range_start(struct ms_vm *vm, uint64_t start, uint64_t end, bool blockable);
void ms_invalidate_range_end(struct ms_vm *vm, uint64_t start, uint64_t end);
/* The page at hva changed in place; only legal inside a start/end pair. */
void ms_change_pte(struct ms_vm *vm, uint64_t hva);

int ms_vm_stats(struct ms_vm *vm, struct ms_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* MEMSLOTS_H */
