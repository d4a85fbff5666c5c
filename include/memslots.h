/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memslots: the guest-memory core of Linux KVM in userspace.
 *
 * Memory slots map guest frame numbers (gfn) to host addresses (hva); a
 * secondary MMU caches gfn -> frame translations for vCPUs; the MMU-notifier
 * protocol (ms_invalidate_range_start/end) keeps that cache coherent while the
 * embedder changes its host mappings.  See docs/design.md for how the pieces
 * fit and docs/locking.md for what may be called from where.
 *
 * Conventions for every call below:
 *  - Returns 0 or a negative errno; a call that fails changes nothing unless
 *    its comment says otherwise.  -EINVAL for a NULL pointer argument.
 *  - Never prints to stdout.  Misuse of the protocol is counted in ms_stats
 *    and reported once per VM on stderr, never a crash.
 *  - fork(): a child of a process that used the library cannot use it (a
 *    parent thread caught inside an RCU read side would never leave it in the
 *    child).  In the child every call returns -ECHILD (void calls do
 *    nothing, ms_vm_destroy leaks); exec, or keep using it in the parent.
 *  - "May sleep": the call may block on a futex or a grace period.  Such calls
 *    must not be made from inside the frame_ops or trace_ops callbacks.
 *
 * ABI: only the ms_ functions declared in memslots.h and memslots_lockdep.h
 * are exported.  struct ms_config and struct ms_stats may grow at their end
 * in a minor release; fill ms_config with ms_config_init() before setting
 * fields.  While the major version is 0 the soname carries the minor version
 * too, so a program built against one release never runs with a later one
 * whose structs are larger.
 */
#ifndef MEMSLOTS_H
#define MEMSLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MS_VERSION_MAJOR 0
#define MS_VERSION_MINOR 2
#define MS_VERSION_PATCH 0
#define MS_VERSION "0.2.0"

#define MS_PAGE_SHIFT 12
#define MS_PAGE_SIZE (1ull << MS_PAGE_SHIFT)

/* Flags of struct ms_region, as KVM_MEM_LOG_DIRTY_PAGES and KVM_MEM_READONLY. */
#define MS_MEM_LOG_DIRTY_PAGES (1u << 0)
#define MS_MEM_READONLY (1u << 1)

/* Limits of struct ms_config. */
#define MS_MAX_ADDRESS_SPACES 16
#define MS_MAX_SLOTS_PER_SPACE 32764
/* Bounds of ms_config.guest_phys_bits; x86-64's widest is the default. */
#define MS_GUEST_PHYS_BITS_MIN 32
#define MS_GUEST_PHYS_BITS_MAX 52

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
	/*
	 * Linux 5.15's gate (commit 52ac8b358b0c, "KVM: Block memslot updates
	 * across range_start() and range_end()"): a count under a spinlock and
	 * one waiting update.  Starts and ends never block on it; an update may
	 * wait for ever while invalidations keep coming.
	 */
	MS_GATE_COUNT,
	/*
	 * The rwsem that commit replaced: held for read from start to end.  It
	 * deadlocks when a start queued behind a waiting update holds a lock
	 * that an open invalidation's end needs.  For study, not for use.
	 */
	MS_GATE_RWSEM,
	/*
	 * No gate.  An update may land between a start and its end, which then
	 * decide differently whether to take mmu_lock: the end finds no count
	 * to lower (counted in in_progress_underflows, the count stays at 0),
	 * or the count stays raised and faults on that range retry for good,
	 * and a fault may use a frame of an open invalidation.  No coherence
	 * guarantee; it exists to show what the gate prevents.
	 */
	MS_GATE_NONE,
	/*
	 * Deadlock-free like MS_GATE_COUNT, and also fair and scalable: starts
	 * and ends never wait and share no cache line; an update waits only
	 * for invalidations that were already open when it announced itself,
	 * that overlap the host memory it newly covers with a slot, and that
	 * elided.  Deletes, moves and flag changes wait for none.  A start and
	 * its end make the same decision (the end follows its start's, found
	 * by range on the calling thread first, then on any thread).
	 */
	MS_GATE_FAIR,
};

struct ms_frame_ops {
	/*
	 * Map the host page at hva (page aligned) for the secondary MMU: 0 and,
	 * in *frame, the address through which that page's bytes are read and
	 * written; or -errno, which the vCPU access then returns.  A frame must
	 * be at least 2-byte aligned (else the access fails with -EINVAL).
	 * Runs on the vCPU's thread inside a memslot RCU read side: it may
	 * block (even on a lock held around an invalidation start), but must
	 * not call back into the library.
	 */
	int (*get_frame)(void *opaque, uint64_t hva, bool write, void **frame);
	/*
	 * Release a frame (unpin it; write it back if used).  Exactly once per
	 * frame got.  used: the frame was in an entry, so vCPUs may have read
	 * or written it; no vCPU uses it any more.  Runs on the thread of
	 * whoever zapped the entry (an invalidation start, a memslot update,
	 * ms_change_pte) or destroyed the VM, before that call returns.
	 * !used: a fault got it but never installed it (it had to retry, or
	 * lost a race to another vCPU); it is put at once on the vCPU's thread,
	 * possibly while an invalidation of its page is open, and must not be
	 * written back (as KVM releases such a page clean).  Must not block on
	 * a lock that a zapper's caller may hold, and must not call back into
	 * the library.
	 */
	void (*put_frame)(void *opaque, void *frame, bool used);
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

/* Append-only: see "ABI" above. */
/*
 * The embedder's own caches of guest memory (an IOTLB, a vhost-user
 * region table): told which guest ranges an invalidation or a memslot
 * update takes away.  Called once the library's own entries for the range
 * are gone, before the start (or the update) returns, so the embedder drops
 * its pointers then.  Runs on the invalidating or updating thread; may sleep
 * only when blockable is true; must not call back into the library (the
 * lock validator reports an update from here as a forbidden nesting).
 */
struct ms_invalidate_ops {
	void (*invalidate)(void *opaque, unsigned int as_id, uint64_t gpa_start, uint64_t gpa_end,
			   bool blockable);
};

struct ms_config {
	unsigned int address_spaces;  /* default 2 (x86 KVM with SMM), 1..16 */
	unsigned int slots_per_space; /* default 32764, 1..32764 */
	enum ms_gate gate;	      /* default MS_GATE_FAIR (since 0.2) */
	bool no_elision;	      /* default false: unrelated ranges skip mmu_lock */
	bool lockdep;		      /* default false: turn the lock validator on (process-wide) */
	const struct ms_frame_ops *frame_ops; /* default NULL: a frame is the hva */
	void *frame_opaque;
	const struct ms_trace_ops *trace_ops; /* default NULL */
	void *trace_opaque;
	/*
	 * Guest physical address width, 32..52, default 52 (x86-64).  No slot
	 * may reach past it (-EINVAL) and no access past it reaches memory
	 * (-EFAULT).
	 */
	unsigned int guest_phys_bits;
	/*
	 * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: ms_get_dirty_log only reads the
	 * bitmap; ms_clear_dirty_log clears and write-protects.  Default off.
	 */
	bool manual_dirty_log_protect;
	/*
	 * KVM_DIRTY_LOG_INITIALLY_SET, with manual protect only (-EINVAL
	 * without): a slot's bitmap starts all set and nothing is
	 * write-protected when logging is turned on.  Default off.
	 */
	bool dirty_log_initially_set;
	const struct ms_invalidate_ops *invalidate_ops; /* default NULL */
	void *invalidate_opaque;
};

/* Append-only: see "ABI" above.  Counters only grow; others are snapshots. */
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
	/* Ends that found the in-progress count at 0, which stays 0: the
	 * no-gate design's imbalance, or an unmatched end racing a matched one. */
	uint64_t in_progress_underflows;
	int64_t mn_active_invalidate_count; /* starts without their end yet */
	uint32_t gate_waiters;		    /* memslot updates waiting on the gate now */
	uint64_t change_pte_misuses;	    /* ms_change_pte outside a start/end pair */
	uint64_t unmatched_ends;	    /* ends with no invalidation open: ignored */
	uint64_t pfn_cache_refreshes;	    /* refreshes that made a cache valid */
	uint64_t pfn_cache_retries;	    /* refresh attempts turned back by an invalidation */
};

struct ms_vm;
struct ms_vcpu;

/* The defaults above.  -EINVAL if cfg is NULL.  Any thread. */
int ms_config_init(struct ms_config *cfg);

/*
 * A VM: cfg NULL means the defaults.  -EINVAL for a bad field, -ENOMEM.
 * Any thread.  cfg->lockdep turns the validator on for the whole process.
 */
int ms_vm_create(const struct ms_config *cfg, struct ms_vm **out);

/*
 * Frees the VM, putting every frame still held.  No other call on vm may run
 * concurrently or follow; vCPUs must be destroyed first or never used again.
 * Open invalidations are dropped and reported on stderr.  May sleep (two
 * grace periods).
 */
void ms_vm_destroy(struct ms_vm *vm);

/*
 * KVM_SET_USER_MEMORY_REGION: create, delete, move or change the flags of a
 * slot, with KVM's rules and errnos (docs/design.md lists them):
 * -EINVAL for bad flags, sizes, alignment, ids, a change of size or host
 * address or READONLY of an existing slot, a delete of a missing slot, a
 * range past guest_phys_bits; -EEXIST for an overlap with another slot;
 * -ENOMEM (nothing changed: all memory is taken before the first publish).
 * -EDEADLK if the calling thread holds an invalidation of this VM open (the
 * update would wait for its end) under MS_GATE_COUNT or MS_GATE_RWSEM.
 * Repeating a slot's current state changes nothing and returns 0.
 * May sleep: waits on the gate for open invalidations (docs/design.md), for
 * memslot grace periods, and, for a delete or move, for vCPUs using the
 * slot's entries.  Updates are serialised; any thread may call it.  A vCPU
 * access to a slot being deleted or moved waits until the update is over.
 */
int ms_set_memory_region(struct ms_vm *vm, const struct ms_region *r);

/*
 * A vCPU is used by one thread at a time; any number run at once.  The
 * vCPU calls below never take a lock on a hit and never sleep except while
 * retrying a fault (see ms_vcpu_read).
 */
int ms_vcpu_create(struct ms_vm *vm, struct ms_vcpu **out);
void ms_vcpu_destroy(struct ms_vcpu *vcpu);

/*
 * Memslot lookup only: the host address of gfn.  -EFAULT outside every
 * valid slot (including a slot being deleted or moved, and any gfn past
 * guest_phys_bits) or for a write to a READONLY slot; -EINVAL for a bad
 * as_id.  The address is a snapshot: it stays meaningful only until the
 * embedder's next memslot update of that slot or invalidation of that
 * host page, which this library cannot see the end of.
 */
int ms_gfn_to_hva(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gfn, bool write,
		  uint64_t *hva);

/*
 * Copy between buf and guest memory through the secondary MMU, faulting
 * entries in.  -EFAULT if a byte lies outside every valid slot or past
 * guest_phys_bits, or for a write to a READONLY slot; -EINVAL for a bad
 * as_id or a NULL buf with len; get_frame's errno; -EDEADLK if it would
 * wait for an invalidation that the calling thread holds open (see below),
 * or for an update that waits for one.
 * Waits (yielding, then sleeping 20 us per retry) while a slot is being
 * deleted or moved, and while an open invalidation touches one of the pages
 * (unlike KVM, which waits while the union of the open ranges covers the
 * page: a page between two open invalidations does not wait here).
 * Partial effects: a read that fails on a later page has filled buf up to
 * that page.  A write first checks that every page is writable, so a write
 * that fails that check writes nothing; a concurrent delete or invalidation
 * between the check and the copy can still stop it part-way, and a write is
 * never atomic with respect to concurrent readers of the same bytes.
 */
int ms_vcpu_read(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gpa, void *buf, size_t len);
int ms_vcpu_write(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gpa, const void *buf,
		  size_t len);

/*
 * The embedder brackets every change to its host mappings of [start, end)
 * (bytes, any alignment: every page it touches counts) with these, as the
 * kernel's mm does for KVM.  After start returns 0, no vCPU uses a frame of
 * those pages until the matching end: entries are zapped, frames put, and
 * every zap that another caller began earlier is finished too.
 * Start: -EINVAL if start >= end.  Blockable: may sleep (grace periods of
 * vCPUs using the range's entries, and zaps in flight), never on the gate,
 * except under MS_GATE_RWSEM behind a waiting update.  Non-blockable: never
 * sleeps; returns -EAGAIN and changes nothing if it would have to wait
 * (entries present, a zap in flight, or under MS_GATE_RWSEM an update
 * waiting), and must then not be followed by an end.
 * End: never sleeps on the gate.  An end is matched to a start by the range
 * only in the counts; start and end may run on different threads.  An end
 * when no invalidation is open is ignored, counted in unmatched_ends and
 * reported once; an unmatched end while others are open cannot be told from
 * theirs and closes one of them early.
 * Must not be called from frame_ops or trace_ops callbacks.  While a thread
 * holds an invalidation open, its own vCPU accesses to those pages and its
 * own memslot updates fail with -EDEADLK instead of waiting for ever (any
 * depth of nesting; the first 16 per thread and VM by range).
 */
int ms_invalidate_range_start(struct ms_vm *vm, uint64_t start, uint64_t end, bool blockable);
void ms_invalidate_range_end(struct ms_vm *vm, uint64_t start, uint64_t end);

/*
 * The page at hva changed in place; only legal inside a start/end pair of
 * that page (outside one it is counted in change_pte_misuses, reported once,
 * and the page is zapped anyway).  May sleep like a blockable start.
 */
void ms_change_pte(struct ms_vm *vm, uint64_t hva);

/*
 * Memory-map transactions.  ms_set_memory_regions applies regions[0..n) as
 * one update: each change follows KVM_SET_USER_MEMORY_REGION's rules against
 * the map as the changes before it leave it (a gpa freed by an earlier
 * delete or move may be taken by a later create; a slot may change several
 * times).  If any is invalid, nothing is applied: the return is KVM's errno
 * for that change and *failed (if not NULL) its index; -ENOMEM and -EDEADLK
 * as for ms_set_memory_region, with nothing applied either.  Within each
 * address space, vCPUs and every reader see the old map or the new one,
 * never a mix and never a hole: an access to a slot being deleted or moved
 * waits, as for a single update, and then sees the new map.  Cost: at most
 * two publishes per address space touched (one if nothing is deleted or
 * moved), so two memslot grace periods and one entry grace period per zap
 * batch, whatever n is.  May sleep; updates are serialised.
 *
 * ms_replace_memory_map: the same, with every existing slot whose number
 * regions does not name deleted first: the map becomes exactly regions
 * (vhost-user's SET_MEM_TABLE).  *failed indexes regions.
 */
int ms_set_memory_regions(struct ms_vm *vm, const struct ms_region *regions, size_t n,
			  size_t *failed);
int ms_replace_memory_map(struct ms_vm *vm, const struct ms_region *regions, size_t n,
			  size_t *failed);

/*
 * Persistent mappings: pfn caches, KVM's gfn_to_pfn_cache for a device
 * backend.  Activate a cache for [gpa, gpa + len) within one slot; before
 * each use take its read lock and check it:
 *
 *	ms_pfn_cache_read_lock(gpc);
 *	while (!(p = ms_pfn_cache_check(gpc))) {
 *		ms_pfn_cache_read_unlock(gpc, false);
 *		if ((r = ms_pfn_cache_refresh(gpc)))
 *			return r;
 *		ms_pfn_cache_read_lock(gpc);
 *	}
 *	... use p, the host address of gpa, for len bytes ...
 *	ms_pfn_cache_read_unlock(gpc, wrote);
 *
 * The pointer stays valid while the read lock is held: an invalidation
 * start over the range marks the cache invalid and waits for its readers
 * (a non-blockable start returns -EAGAIN instead); any memslot publish makes
 * check fail until a refresh.  wrote: the range was written, so a logged
 * slot's pages are marked dirty (after the write, as a harvest needs).
 * Refresh waits only for open invalidations of the cache's own pages, never
 * for unrelated ones.  Errors:
 * -EINVAL (bad arguments, not activated), -EFAULT (the range is not within
 * one valid slot), -EDEADLK (it would wait for the caller's own
 * invalidation), -ENOMEM.  The read lock is a reader lock: hold it briefly,
 * never across an invalidation or memslot update of the same VM.
 */
struct ms_pfn_cache;
int ms_pfn_cache_create(struct ms_vm *vm, struct ms_pfn_cache **out);
int ms_pfn_cache_activate(struct ms_pfn_cache *gpc, unsigned int as_id, uint64_t gpa, size_t len);
void ms_pfn_cache_read_lock(struct ms_pfn_cache *gpc);
void *ms_pfn_cache_check(struct ms_pfn_cache *gpc);
void ms_pfn_cache_read_unlock(struct ms_pfn_cache *gpc, bool wrote);
int ms_pfn_cache_refresh(struct ms_pfn_cache *gpc);
void ms_pfn_cache_deactivate(struct ms_pfn_cache *gpc);
/* Deactivates it first; before ms_vm_destroy. */
void ms_pfn_cache_destroy(struct ms_pfn_cache *gpc);

/*
 * Zero-copy access, the equivalent of libvhost-user's vu_gpa_to_va: the
 * host address of gpa, with *len clamped to what one slot maps contiguously
 * from there.  -EFAULT outside every valid slot (or a write to a READONLY
 * one).  The address is a snapshot with ms_gfn_to_hva's lifetime; for one
 * that invalidations respect, use a pfn cache.
 */
int ms_gpa_to_hva(struct ms_vm *vm, unsigned int as_id, uint64_t gpa, size_t *len, bool write,
		  uint64_t *hva);

/*
 * Region queries, for device backends and VMMs.  Each answer comes from one
 * published memslot set (a snapshot of one generation: a concurrent update
 * is wholly in it or not at all); a slot being deleted or moved is reported
 * as it was until the update publishes its final state.  Lock-free, never
 * sleep, any thread; -EINVAL for a bad address space, slot id or pointer.
 *
 * ms_find_region: the slot holding gpa; -ENOENT in a gap.
 * ms_get_region: slot number (address space << 16 | id) to its region;
 *   -ENOENT if it does not exist.  O(slots of the address space).
 * ms_get_memory_map: the address space's slots in gpa order, at most max of
 *   them into out, and in *n how many there are; -ENOSPC (out filled with the
 *   first max) if max is too small.
 */
int ms_find_region(struct ms_vm *vm, unsigned int as_id, uint64_t gpa, struct ms_region *out);
int ms_get_region(struct ms_vm *vm, uint32_t slot, struct ms_region *out);
int ms_get_memory_map(struct ms_vm *vm, unsigned int as_id, struct ms_region *out, size_t max,
		      size_t *n);

/*
 * Dirty logging (KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG).  For a slot with
 * MS_MEM_LOG_DIRTY_PAGES every vCPU write sets its page's bit: one bit per
 * page from the slot's first, in 64-bit words, bit i of word w for page
 * 64w + i (KVM's little-endian layout); the caller's buffer holds
 * ceil(npages / 64) words.  Turning the flag on (create or flags update)
 * allocates a zeroed bitmap (all set with dirty_log_initially_set) and,
 * unless initially set, write-protects the slot's entries; turning it off
 * frees it; a move keeps it and its bits; a delete frees it.
 *
 * ms_get_dirty_log: copy the slot's bitmap to dirty_bitmap.  Without manual
 * protect it also clears it and write-protects the pages that were dirty,
 * waiting until no vCPU can still write through their old entries, so a
 * copy of those pages made after it returns holds every write it reported.
 * ms_clear_dirty_log: for the pages of [first_page, first_page + num_pages)
 * whose bit is set in dirty_bitmap (bit 0 is first_page), clear the slot's
 * bit and write-protect the page, waiting likewise.  first_page must be a
 * multiple of 64 and num_pages too unless the range reaches the slot's end.
 * Both: -EINVAL for a bad address space or slot id, a NULL buffer, or (clear)
 * a bad range; -ENOENT if the slot does not exist or is not logged.  May
 * sleep (slots_lock, a grace period); any thread, not from callbacks.
 *
 * ms_mark_page_dirty: the embedder wrote the page of gfn through the address
 * ms_gfn_to_hva gave (as KVM's mark_page_dirty after kvm_write_guest): set
 * its bit if its slot is logged.  -EFAULT outside every valid slot.  Call
 * it after the write: a harvest between the mark and the write would lose it.
 */
int ms_get_dirty_log(struct ms_vm *vm, uint32_t slot, void *dirty_bitmap);
int ms_clear_dirty_log(struct ms_vm *vm, uint32_t slot, uint64_t first_page, uint32_t num_pages,
		       const void *dirty_bitmap);
int ms_mark_page_dirty(struct ms_vm *vm, unsigned int as_id, uint64_t gfn);

/* A snapshot of the counters; each is exact, together they are not atomic. */
int ms_vm_stats(struct ms_vm *vm, struct ms_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* MEMSLOTS_H */
