/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reference model of KVM_SET_USER_MEMORY_REGION on x86-64 (4 KiB pages) and
 * of the lookups that follow it, shared by tests/unit/test_errno.c and
 * tests/fuzz/fuzz_memslots.c.  It is written to be obviously right, not
 * fast: a flat array of slots and linear scans, no state shared with src/.
 * Header-only so that each test still builds from its one source file.
 *
 * The rules, in the order Linux applies them, and where each comes from
 * (read in virt/kvm/kvm_main.c, kvm_set_memory_region() -- named
 * __kvm_set_memory_region() before 6.13 -- and arch/x86/kvm/x86.c,
 * kvm_arch_prepare_memory_region(), Linux 6.x):
 *
 *  1. flags other than LOG_DIRTY_PAGES | READONLY: check_memory_region_flags()
 *     runs first.  Bit 2 (KVM_MEM_GUEST_MEMFD) is valid only through
 *     KVM_SET_USER_MEMORY_REGION2 on private-memory VMs, so it is unknown here.
 *  2. memory_size not a multiple of the page.
 *  3. guest_phys_addr not page aligned.
 *  4. userspace_addr not page aligned, or !access_ok(userspace_addr,
 *     memory_size).  x86-64's access_ok() with a size that is not a
 *     compile-time constant wants the end not to wrap and to lie at or below
 *     TASK_SIZE_MAX, 0x7ffffffff000 with 4-level paging (kernels up to 6.3,
 *     and 6.12 onward where USER_PTR_MAX = TASK_SIZE_MAX; 6.4 to 6.11 only
 *     kept the end below 2^63, and LAM hardware with LASS raises the limit).
 *     It runs with size 0 too: a delete whose hva lies above the limit fails.
 *  5. address-space id >= address spaces (2 on x86, for SMM) or slot id >=
 *     slots per space.  The ioctl compares the id with KVM_USER_MEM_SLOTS
 *     (32764 on current x86) before it takes slots_lock, and
 *     kvm_set_memory_region() again with KVM_MEM_SLOTS_NUM.
 *  6. guest_phys_addr + memory_size wraps (a sum of exactly 2^64 wraps to 0).
 *  7. more than KVM_MEM_MAX_NR_PAGES = 2^31 - 1 pages (dirty bitmaps are
 *     indexed with 32 bits).
 *     1-7 all return -EINVAL, so their order among themselves cannot be
 *     observed; what can be is that all of them come before 8-11.
 *  8. memory_size 0 deletes: -EINVAL if the slot does not exist.  Because
 *     1-7 ran first, a delete with unknown flags or an unaligned or
 *     out-of-range gpa or hva fails and deletes nothing; otherwise the
 *     delete ignores gpa, hva and flags.
 *  9. An existing slot: a different userspace_addr, page count or READONLY
 *     bit -> -EINVAL; else a different base gfn is a MOVE; else different
 *     flags a FLAGS_ONLY change; else nothing to do: 0, nothing changes.
 * 10. CREATE or MOVE whose gfn range meets a slot of another id in the same
 *     address space: kvm_check_memslot_overlap() -> -EEXIST.  (CREATE also
 *     fails if the VM's total page count would wrap an unsigned long, which
 *     2 * 32764 slots of at most 2^31 - 1 pages cannot reach.)
 * 11. CREATE or MOVE, x86 only: kvm_arch_prepare_memory_region() returns
 *     -EINVAL when base_gfn + npages - 1 > kvm_mmu_max_gfn() = 2^(52-12) - 1,
 *     i.e. when the slot ends above 2^52 (shadow paging, or TDP on a host
 *     with MAXPHYADDR 52; fewer host address bits lower the limit).  It runs
 *     after the overlap check; a failed MOVE is reverted: nothing changes.
 *
 * Lookups follow kvm_vcpu_gfn_to_hva_prot() / __gfn_to_hva_many(): the slot
 * holding gfn in the vCPU's address space, none -> error, a write to a
 * READONLY slot -> error; both are -EFAULT in memslots.  Two things are the
 * library's own contract, not KVM's: an address-space id beyond the VM's is
 * -EINVAL (a KVM vCPU picks its address space from its mode), and a vCPU
 * access of len bytes at gpa fails with -EFAULT unless every page it touches
 * translates (for a write: writably), with len 0 a success and gpa + len
 * reaching 2^64 a fault.
 *
 * Dirty logging, with KVM's generic dirty bitmap (no dirty ring), read in
 * virt/kvm/kvm_main.c, Linux 6.x:
 *
 * D1. KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, kvm_vm_ioctl_enable_cap_generic():
 *     KVM_DIRTY_LOG_INITIALLY_SET is an allowed option only together with
 *     KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, else -EINVAL.  memslots takes
 *     both at VM creation (ms_config), where KVM lets them be enabled later.
 * D2. kvm_prepare_memory_region(), for every change but DELETE: without
 *     LOG_DIRTY_PAGES the new slot has no bitmap; if the old slot had one,
 *     the new one keeps it, bits and all (a MOVE keeps it, a FLAGS_ONLY
 *     change that leaves logging on too); else kvm_alloc_dirty_bitmap()
 *     makes a zeroed one, and kvm_dirty_log_manual_protect_and_init_set()
 *     sets its npages bits.  It runs before kvm_arch_prepare_memory_region()
 *     (rule 11), which frees a bitmap it allocated when it fails: a failed
 *     call changes no bitmap.  kvm_commit_memory_region() frees the old
 *     slot's bitmap when the new one does not share it: on DELETE and when
 *     the flag is turned off.
 * D3. Writes: a vCPU write makes its page's entry writable through a fault,
 *     which marks the page (mark_page_dirty_in_slot(): bit gfn - base_gfn
 *     when the slot has a bitmap).  A write through an entry that is still
 *     writable marks nothing, but such an entry exists only for a page whose
 *     bit is set (harvests clear bits and write-protect together), so the
 *     bitmap is exactly "every page written, or marked, since its bit was
 *     last cleared": kvm_ref_access() with write sets the bit of every page
 *     a successful write touches.  Reads mark nothing.
 * D4. KVM_GET_DIRTY_LOG, kvm_get_dirty_log_protect(): -EINVAL when as_id >=
 *     address spaces or id >= KVM_USER_MEM_SLOTS; then -ENOENT when the slot
 *     does not exist or has no bitmap; it copies ALIGN(npages, 64) / 8 bytes
 *     (whole 64-bit words, little-endian bit order); without manual protect
 *     each word is exchanged with 0 (and its pages write-protected), with
 *     manual protect the bitmap is only copied.
 * D5. KVM_CLEAR_DIRTY_LOG, kvm_clear_dirty_log_protect(): -EINVAL for as_id
 *     or id as in D4; then -EINVAL when first_page & 63; then -ENOENT as in
 *     D4; then -EINVAL when first_page > npages, num_pages (32 bits) >
 *     npages - first_page, or num_pages < npages - first_page and num_pages
 *     & 63.  Then for each of the DIV_ROUND_UP(num_pages, 64) words of the
 *     caller's bitmap, the slot's word first_page / 64 + i loses the bits
 *     set in it (atomic_long_fetch_andnot(); those pages are
 *     write-protected).  Bits past num_pages in the last word lie past the
 *     slot's end, where the slot's bitmap has none: no mask is needed.
 * The library's own contract, not KVM's: a NULL buffer (for clear, with
 * num_pages) is -EINVAL before everything else (KVM would fault on the copy,
 * -EFAULT, after the checks); ms_mark_page_dirty() is -EINVAL for a bad
 * as_id and -EFAULT when no slot holds gfn, and sets the bit as D3 does.
 */
#ifndef MEMSLOTS_KVM_REF_H
#define MEMSLOTS_KVM_REF_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "memslots.h"

#define KVM_REF_PAGE_SHIFT 12
#define KVM_REF_PAGE_SIZE (1ull << KVM_REF_PAGE_SHIFT)
#define KVM_REF_VALID_FLAGS (MS_MEM_LOG_DIRTY_PAGES | MS_MEM_READONLY)
#define KVM_REF_USER_END 0x7ffffffff000ull /* TASK_SIZE_MAX, 4-level paging */
#define KVM_REF_MAX_NR_PAGES ((1ull << 31) - 1)
#define KVM_REF_MAX_GFN ((1ull << (52 - KVM_REF_PAGE_SHIFT)) - 1)
#define KVM_REF_SLOTS 128 /* live slots the model holds: 3 x 32 in the fuzz harness */

enum kvm_ref_change {
	KVM_REF_NONE, /* failed, or the same arguments again */
	KVM_REF_CREATE,
	KVM_REF_DELETE,
	KVM_REF_MOVE,
	KVM_REF_FLAGS_ONLY,
};

struct kvm_ref_slot {
	unsigned int as_id, id;
	uint64_t base_gfn, npages, userspace_addr;
	uint32_t flags;
	uint64_t *dirty_bitmap; /* D2: ceil(npages / 64) words, or NULL */
};

struct kvm_ref {
	unsigned int address_spaces, slots_per_space;
	bool manual_protect, initially_set; /* D1 */
	enum kvm_ref_change last_change; /* of the last kvm_ref_set_memory_region */
	unsigned int nslots;		 /* slot[0..nslots) are live, in no order */
	struct kvm_ref_slot slot[KVM_REF_SLOTS];
};

/* An empty VM; a model that held slots must go through kvm_ref_fini() first. */
static inline void kvm_ref_init(struct kvm_ref *ref, unsigned int address_spaces,
				unsigned int slots_per_space)
{
	*ref = (struct kvm_ref){ .address_spaces = address_spaces,
				 .slots_per_space = slots_per_space };
}

/* Frees the bitmaps; the model is then empty, with the same configuration. */
static inline void kvm_ref_fini(struct kvm_ref *ref)
{
	for (unsigned int i = 0; i < ref->nslots; i++)
		free(ref->slot[i].dirty_bitmap);
	ref->nslots = 0;
}

/* D1: enable KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with these options (or none). */
static inline int kvm_ref_dirty_log_caps(struct kvm_ref *ref, bool manual_protect,
					 bool initially_set)
{
	if (initially_set && !manual_protect)
		return -EINVAL;
	ref->manual_protect = manual_protect;
	ref->initially_set = initially_set;
	return 0;
}

static inline uint64_t kvm_ref_bitmap_words(uint64_t npages)
{
	return (npages + 63) / 64;
}

/* Rules 1-7: what KVM rejects from the arguments alone. */
static inline int kvm_ref_check_args(const struct kvm_ref *ref, const struct ms_region *r)
{
	uint64_t mask = KVM_REF_PAGE_SIZE - 1;
	unsigned int as_id = r->slot >> 16, id = r->slot & 0xffff;

	if (r->flags & ~KVM_REF_VALID_FLAGS)
		return -EINVAL;
	if (r->memory_size & mask)
		return -EINVAL;
	if (r->guest_phys_addr & mask)
		return -EINVAL;
	if (r->userspace_addr & mask)
		return -EINVAL;
	if (r->userspace_addr + r->memory_size < r->userspace_addr ||
	    r->userspace_addr + r->memory_size > KVM_REF_USER_END)
		return -EINVAL;
	if (as_id >= ref->address_spaces || id >= ref->slots_per_space)
		return -EINVAL;
	if (r->guest_phys_addr + r->memory_size < r->guest_phys_addr)
		return -EINVAL;
	if (r->memory_size >> KVM_REF_PAGE_SHIFT > KVM_REF_MAX_NR_PAGES)
		return -EINVAL;
	return 0;
}

static inline struct kvm_ref_slot *kvm_ref_find(struct kvm_ref *ref, unsigned int as_id,
						unsigned int id)
{
	for (unsigned int i = 0; i < ref->nslots; i++) {
		struct kvm_ref_slot *s = &ref->slot[i];

		if (s->as_id == as_id && s->id == id)
			return s;
	}
	return NULL;
}

/* Rule 10: does [gfn, gfn + npages) meet a slot of another id in as_id? */
static inline bool kvm_ref_overlaps(const struct kvm_ref *ref, unsigned int as_id, unsigned int id,
				    uint64_t gfn, uint64_t npages)
{
	for (unsigned int i = 0; i < ref->nslots; i++) {
		const struct kvm_ref_slot *s = &ref->slot[i];

		if (s->as_id == as_id && s->id != id && gfn < s->base_gfn + s->npages &&
		    s->base_gfn < gfn + npages)
			return true;
	}
	return false;
}

/* Rules 8 and 9: which change r asks of the existing slot old (or none). */
static inline int kvm_ref_classify(const struct kvm_ref_slot *old, const struct ms_region *r,
				   enum kvm_ref_change *change)
{
	uint64_t gfn = r->guest_phys_addr >> KVM_REF_PAGE_SHIFT;
	uint64_t npages = r->memory_size >> KVM_REF_PAGE_SHIFT;

	*change = KVM_REF_NONE;
	if (!npages) {
		if (!old)
			return -EINVAL;
		*change = KVM_REF_DELETE;
	} else if (!old) {
		*change = KVM_REF_CREATE;
	} else if (r->userspace_addr != old->userspace_addr || npages != old->npages ||
		   ((r->flags ^ old->flags) & MS_MEM_READONLY)) {
		return -EINVAL;
	} else if (gfn != old->base_gfn) {
		*change = KVM_REF_MOVE;
	} else if (r->flags != old->flags) {
		*change = KVM_REF_FLAGS_ONLY;
	}
	return 0;
}

/* D2: the bitmap of a slot that has flags and npages after the change from old. */
static inline uint64_t *kvm_ref_new_bitmap(const struct kvm_ref *ref,
					   const struct kvm_ref_slot *old, uint32_t flags,
					   uint64_t npages)
{
	uint64_t words = kvm_ref_bitmap_words(npages), *bitmap;

	if (!(flags & MS_MEM_LOG_DIRTY_PAGES))
		return NULL;
	if (old && old->dirty_bitmap)
		return old->dirty_bitmap;
	bitmap = calloc(words ? words : 1, sizeof(*bitmap));
	if (!bitmap)
		abort();
	if (ref->manual_protect && ref->initially_set)
		for (uint64_t i = 0; i < words; i++)
			bitmap[i] = npages - 64 * i >= 64 ? UINT64_MAX
							  : (1ull << (npages - 64 * i)) - 1;
	return bitmap;
}

static inline struct kvm_ref_slot *kvm_ref_new_slot(struct kvm_ref *ref)
{
	if (ref->nslots == KVM_REF_SLOTS)
		abort(); /* a test outgrew the model: raise KVM_REF_SLOTS */
	return &ref->slot[ref->nslots++];
}

/* KVM's answer for r; on success r is applied to the model. */
static inline int kvm_ref_set_memory_region(struct kvm_ref *ref, const struct ms_region *r)
{
	unsigned int as_id = r->slot >> 16, id = r->slot & 0xffff;
	uint64_t gfn = r->guest_phys_addr >> KVM_REF_PAGE_SHIFT;
	uint64_t npages = r->memory_size >> KVM_REF_PAGE_SHIFT;
	struct kvm_ref_slot *old;
	enum kvm_ref_change change;
	int ret;

	ref->last_change = KVM_REF_NONE;
	ret = kvm_ref_check_args(ref, r);
	if (ret)
		return ret;
	old = kvm_ref_find(ref, as_id, id);
	ret = kvm_ref_classify(old, r, &change);
	if (ret || change == KVM_REF_NONE)
		return ret;
	if (change == KVM_REF_CREATE || change == KVM_REF_MOVE) {
		if (kvm_ref_overlaps(ref, as_id, id, gfn, npages))
			return -EEXIST;
		if (gfn + npages - 1 > KVM_REF_MAX_GFN)
			return -EINVAL;
	}
	if (change == KVM_REF_DELETE) {
		free(old->dirty_bitmap);
		*old = ref->slot[--ref->nslots];
	} else {
		uint64_t *bitmap = kvm_ref_new_bitmap(ref, old, r->flags, npages);

		if (!old)
			old = kvm_ref_new_slot(ref);
		else if (old->dirty_bitmap != bitmap)
			free(old->dirty_bitmap); /* logging turned off */
		*old = (struct kvm_ref_slot){ .as_id = as_id,
					      .id = id,
					      .base_gfn = gfn,
					      .npages = npages,
					      .userspace_addr = r->userspace_addr,
					      .flags = r->flags,
					      .dirty_bitmap = bitmap };
	}
	ref->last_change = change;
	return 0;
}

/* The slot of as_id that holds gfn, or NULL. */
static inline struct kvm_ref_slot *kvm_ref_slot_at(const struct kvm_ref *ref, unsigned int as_id,
						   uint64_t gfn)
{
	for (unsigned int i = 0; i < ref->nslots; i++) {
		const struct kvm_ref_slot *s = &ref->slot[i];

		if (s->as_id == as_id && gfn >= s->base_gfn && gfn - s->base_gfn < s->npages)
			return (struct kvm_ref_slot *)s;
	}
	return NULL;
}

static inline int kvm_ref_gfn_to_hva(const struct kvm_ref *ref, unsigned int as_id, uint64_t gfn,
				     bool write, uint64_t *hva)
{
	const struct kvm_ref_slot *s;

	if (as_id >= ref->address_spaces)
		return -EINVAL;
	s = kvm_ref_slot_at(ref, as_id, gfn);
	if (!s)
		return -EFAULT;
	if (write && (s->flags & MS_MEM_READONLY))
		return -EFAULT;
	*hva = s->userspace_addr + ((gfn - s->base_gfn) << KVM_REF_PAGE_SHIFT);
	return 0;
}

/* D3, mark_page_dirty_in_slot(): set gfn's bit if its slot is logged. */
static inline void kvm_ref_mark(struct kvm_ref_slot *s, uint64_t gfn)
{
	uint64_t rel = gfn - s->base_gfn;

	if (s->dirty_bitmap)
		s->dirty_bitmap[rel / 64] |= 1ull << (rel % 64);
}

/*
 * What ms_vcpu_read (write false) or ms_vcpu_write returns for the range; a
 * successful write marks every page it touched (D3).
 */
static inline int kvm_ref_access(struct kvm_ref *ref, unsigned int as_id, uint64_t gpa,
				 size_t len, bool write)
{
	uint64_t hva, first = gpa >> KVM_REF_PAGE_SHIFT, last;

	if (as_id >= ref->address_spaces)
		return -EINVAL;
	if (!len)
		return 0;
	if (gpa + len < gpa)
		return -EFAULT;
	last = (gpa + len - 1) >> KVM_REF_PAGE_SHIFT;
	for (uint64_t gfn = first; gfn <= last; gfn++) {
		int ret = kvm_ref_gfn_to_hva(ref, as_id, gfn, write, &hva);

		if (ret)
			return ret;
	}
	for (uint64_t gfn = first; write && gfn <= last; gfn++)
		kvm_ref_mark(kvm_ref_slot_at(ref, as_id, gfn), gfn);
	return 0;
}

/* ms_mark_page_dirty: the library's errnos, then D3. */
static inline int kvm_ref_mark_page_dirty(struct kvm_ref *ref, unsigned int as_id, uint64_t gfn)
{
	struct kvm_ref_slot *s;

	if (as_id >= ref->address_spaces)
		return -EINVAL;
	s = kvm_ref_slot_at(ref, as_id, gfn);
	if (!s)
		return -EFAULT;
	kvm_ref_mark(s, gfn);
	return 0;
}

/* D4 and D5: the logged slot that a dirty-log call's slot number names. */
static inline int kvm_ref_logged_slot(struct kvm_ref *ref, uint32_t slot,
				      struct kvm_ref_slot **out)
{
	*out = kvm_ref_find(ref, slot >> 16, slot & 0xffff);
	return *out && (*out)->dirty_bitmap ? 0 : -ENOENT;
}

static inline bool kvm_ref_slot_nr_valid(const struct kvm_ref *ref, uint32_t slot)
{
	return slot >> 16 < ref->address_spaces && (slot & 0xffff) < ref->slots_per_space;
}

/*
 * D4: ms_get_dirty_log; on success bitmap holds ceil(npages / 64) words of
 * the slot's npages and the words past them are not written.
 */
static inline int kvm_ref_get_dirty_log(struct kvm_ref *ref, uint32_t slot, uint64_t *bitmap)
{
	struct kvm_ref_slot *s;
	int ret;

	if (!bitmap)
		return -EINVAL; /* the library's */
	if (!kvm_ref_slot_nr_valid(ref, slot))
		return -EINVAL;
	ret = kvm_ref_logged_slot(ref, slot, &s);
	if (ret)
		return ret;
	for (uint64_t i = 0; i < kvm_ref_bitmap_words(s->npages); i++) {
		bitmap[i] = s->dirty_bitmap[i];
		if (!ref->manual_protect)
			s->dirty_bitmap[i] = 0;
	}
	return 0;
}

/* D5: ms_clear_dirty_log; bitmap holds DIV_ROUND_UP(num_pages, 64) words. */
static inline int kvm_ref_clear_dirty_log(struct kvm_ref *ref, uint32_t slot, uint64_t first_page,
					  uint32_t num_pages, const uint64_t *bitmap)
{
	struct kvm_ref_slot *s;
	int ret;

	if (!bitmap && num_pages)
		return -EINVAL; /* the library's */
	if (!kvm_ref_slot_nr_valid(ref, slot))
		return -EINVAL;
	if (first_page & 63)
		return -EINVAL;
	ret = kvm_ref_logged_slot(ref, slot, &s);
	if (ret)
		return ret;
	if (first_page > s->npages || num_pages > s->npages - first_page ||
	    (num_pages < s->npages - first_page && (num_pages & 63)))
		return -EINVAL;
	for (uint64_t i = 0; i < kvm_ref_bitmap_words(num_pages); i++)
		s->dirty_bitmap[first_page / 64 + i] &= ~bitmap[i];
	return 0;
}

/* A copy of src that shares nothing with it: each bitmap is duplicated. */
static inline void kvm_ref_copy(struct kvm_ref *dst, const struct kvm_ref *src)
{
	*dst = *src;
	for (unsigned int i = 0; i < dst->nslots; i++) {
		struct kvm_ref_slot *s = &dst->slot[i];
		uint64_t words = kvm_ref_bitmap_words(s->npages);
		uint64_t *bitmap;

		if (!s->dirty_bitmap)
			continue;
		bitmap = calloc(words ? words : 1, sizeof(*bitmap));
		if (!bitmap)
			abort();
		for (uint64_t w = 0; w < words; w++)
			bitmap[w] = s->dirty_bitmap[w];
		s->dirty_bitmap = bitmap;
	}
}

/* Does any of regions[0..n) name slot number nr? */
static inline bool kvm_ref_named(const struct ms_region *regions, size_t n, uint32_t nr)
{
	for (size_t i = 0; i < n; i++)
		if (regions[i].slot == nr)
			return true;
	return false;
}

/*
 * ms_set_memory_regions (replace false) or ms_replace_memory_map (replace
 * true): regions[0..n) one by one on a copy, committed only if all succeed.
 * On failure *failed is the failing change's index and the model is as it was.
 */
static inline int kvm_ref_transaction(struct kvm_ref *ref, const struct ms_region *regions,
				      size_t n, bool replace, size_t *failed)
{
	struct kvm_ref copy;
	int ret;

	kvm_ref_copy(&copy, ref);
	for (unsigned int i = copy.nslots; replace && i-- > 0;) {
		const struct kvm_ref_slot *s = &copy.slot[i];
		struct ms_region del = { .slot = s->as_id << 16 | s->id };

		if (kvm_ref_named(regions, n, del.slot))
			continue;
		if (kvm_ref_set_memory_region(&copy, &del))
			abort(); /* a delete of a live slot cannot fail */
	}
	for (size_t i = 0; i < n; i++) {
		ret = kvm_ref_set_memory_region(&copy, &regions[i]);
		if (ret) {
			*failed = i;
			kvm_ref_fini(&copy);
			ref->last_change = KVM_REF_NONE;
			return ret;
		}
	}
	kvm_ref_fini(ref);
	*ref = copy;
	ref->last_change = KVM_REF_NONE;
	return 0;
}

#endif /* MEMSLOTS_KVM_REF_H */
