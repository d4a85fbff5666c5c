/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dirty logging, with KVM's dirty-log API: KVM_GET_DIRTY_LOG and
 * KVM_CLEAR_DIRTY_LOG, with or without manual protect.
 *
 * A slot with MS_MEM_LOG_DIRTY_PAGES has a bitmap, one bit per page in
 * 64-bit words.  Its entries are installed read-only on reads and writable
 * only by a write fault, which sets the page's bit under mmu_lock in the same
 * critical section.  A harvest clears bits under mmu_lock and write-protects
 * those pages' entries, then waits for an entry-RCU grace period (KVM's TLB
 * flush): a write through an entry that was writable before the harvest is
 * over before the harvest returns, so the caller's copy of the page that
 * follows sees it; any later write faults and sets the bit again.  A hit on
 * a writable entry sets nothing: its page is dirty already.
 *
 * Locks: bitmaps change only by atomic word operations; slots_lock
 * serialises harvests with memslot updates (a bitmap is freed by the update
 * that deletes its slot or turns logging off, after a grace period);
 * mmu_lock orders bit changes against write faults.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rcu.h"
#include "vm.h"

#define WORD_BITS 64

uint64_t ms_dirty_bitmap_words(uint64_t npages)
{
	return (npages + WORD_BITS - 1) / WORD_BITS;
}

_Atomic uint64_t *ms_dirty_bitmap_alloc(const struct ms_vm *vm, uint64_t npages)
{
	uint64_t words = ms_dirty_bitmap_words(npages);
	_Atomic uint64_t *bitmap = calloc(words ? words : 1, sizeof(*bitmap));

	if (bitmap && vm->cfg.dirty_log_initially_set) {
		for (uint64_t i = 0; i < words; i++) {
			uint64_t bits = npages - i * WORD_BITS;

			atomic_init(&bitmap[i], bits >= WORD_BITS ? UINT64_MAX : (1ull << bits) - 1);
		}
	}
	return bitmap;
}

/* Under mmu_lock. */
void ms_mark_dirty_locked(const struct ms_memslot *slot, uint64_t gfn)
{
	uint64_t rel = gfn - slot->base_gfn;

	atomic_fetch_or_explicit(&slot->dirty_bitmap[rel / WORD_BITS], 1ull << (rel % WORD_BITS),
				 memory_order_relaxed);
}

/* Under mmu_lock: the entries of the pages in mask, from gfn on, lose write access. */
static bool write_protect_masked(struct ms_vm *vm, const struct ms_memslot *slot, uint64_t gfn,
				 uint64_t mask)
{
	bool protected = false;

	for (; mask; mask &= mask - 1)
		protected |=
		    ms_mmu_write_protect_locked(vm, slot->as_id, gfn + __builtin_ctzll(mask));
	return protected;
}

/* The logged slot named by a dirty-log call's slot number, under slots_lock. */
static int logged_slot(struct ms_vm *vm, uint32_t slot, const struct ms_memslot **out)
{
	unsigned int as_id = slot >> 16, id = slot & 0xffff;

	if (as_id >= vm->cfg.address_spaces || id >= vm->cfg.slots_per_space)
		return -EINVAL;
	*out = vm->as[as_id].id_to_slot[id];
	if (!*out || !(*out)->dirty_bitmap)
		return -ENOENT;
	return 0;
}

/* A vCPU that wrote through a just-protected entry is done once this returns. */
static void flush_protected(struct ms_vm *vm, bool protected)
{
	if (protected)
		ms_synchronize_spte_readers(vm);
}

/* Clear the bits of mask in word i of slot's bitmap and protect what was set. */
static bool harvest_word(struct ms_vm *vm, const struct ms_memslot *slot, uint64_t i,
			 uint64_t mask, uint64_t *was)
{
	/* Most words of a large slot are clean: a plain load, no locked op. */
	if (!(atomic_load_explicit(&slot->dirty_bitmap[i], memory_order_relaxed) & mask)) {
		*was = 0;
		return false;
	}
	*was = atomic_fetch_and_explicit(&slot->dirty_bitmap[i], ~mask, memory_order_relaxed) &
	       mask;
	return *was && write_protect_masked(vm, slot, slot->base_gfn + i * WORD_BITS, *was);
}

static int get_dirty_log_locked(struct ms_vm *vm, uint32_t slot_nr, uint64_t *out)
{
	const struct ms_memslot *slot;
	uint64_t words;
	bool protected = false;
	int r = logged_slot(vm, slot_nr, &slot);

	if (r)
		return r;
	words = ms_dirty_bitmap_words(slot->npages);
	if (vm->cfg.manual_dirty_log_protect) {
		/* Protection waits for ms_clear_dirty_log. */
		for (uint64_t i = 0; i < words; i++)
			out[i] = atomic_load_explicit(&slot->dirty_bitmap[i], memory_order_relaxed);
		return 0;
	}
	ms_spin_lock(&vm->mmu.mmu_lock);
	for (uint64_t i = 0; i < words; i++)
		protected |= harvest_word(vm, slot, i, UINT64_MAX, &out[i]);
	ms_spin_unlock(&vm->mmu.mmu_lock);
	flush_protected(vm, protected);
	return 0;
}

int ms_get_dirty_log(struct ms_vm *vm, uint32_t slot, void *dirty_bitmap)
{
	int r;

	if (!vm || !dirty_bitmap)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	ms_mutex_lock(&vm->slots_lock);
	r = get_dirty_log_locked(vm, slot, dirty_bitmap);
	ms_mutex_unlock(&vm->slots_lock);
	return r;
}

/* KVM's rules for first_page and num_pages, against the slot's size. */
static bool clear_range_valid(const struct ms_memslot *slot, uint64_t first, uint32_t num)
{
	if (first > slot->npages || num > slot->npages - first)
		return false;
	return num == slot->npages - first || !(num % WORD_BITS);
}

static int clear_dirty_log_locked(struct ms_vm *vm, uint32_t slot_nr, uint64_t first_page,
				  uint32_t num_pages, const uint64_t *bits)
{
	const struct ms_memslot *slot;
	uint64_t words = ms_dirty_bitmap_words(num_pages), was;
	bool protected = false;
	int r;

	if ((slot_nr >> 16) >= vm->cfg.address_spaces ||
	    (slot_nr & 0xffff) >= vm->cfg.slots_per_space || first_page % WORD_BITS)
		return -EINVAL;
	r = logged_slot(vm, slot_nr, &slot);
	if (r)
		return r;
	if (!clear_range_valid(slot, first_page, num_pages))
		return -EINVAL;
	ms_spin_lock(&vm->mmu.mmu_lock);
	for (uint64_t i = 0; i < words; i++) {
		uint64_t mask = bits[i];

		/* Bits past num_pages in the last word are not the caller's. */
		if (i == words - 1 && num_pages % WORD_BITS)
			mask &= (1ull << (num_pages % WORD_BITS)) - 1;
		if (mask)
			protected |= harvest_word(vm, slot, first_page / WORD_BITS + i, mask, &was);
	}
	ms_spin_unlock(&vm->mmu.mmu_lock);
	flush_protected(vm, protected);
	return 0;
}

int ms_clear_dirty_log(struct ms_vm *vm, uint32_t slot, uint64_t first_page, uint32_t num_pages,
		       const void *dirty_bitmap)
{
	int r;

	if (!vm || (!dirty_bitmap && num_pages))
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	ms_mutex_lock(&vm->slots_lock);
	r = clear_dirty_log_locked(vm, slot, first_page, num_pages, dirty_bitmap);
	ms_mutex_unlock(&vm->slots_lock);
	return r;
}

int ms_mark_page_dirty(struct ms_vm *vm, unsigned int as_id, uint64_t gfn)
{
	const struct ms_memslot *slot;
	int r = 0;

	if (!vm || as_id >= vm->cfg.address_spaces)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	ms_rcu_read_lock(vm);
	slot = gfn_index_find(ms_active_memslots(vm, as_id)->gfn_index, gfn);
	if (!slot || (slot->flags & MS_MEMSLOT_INVALID))
		r = -EFAULT;
	else if (slot->dirty_bitmap)
		ms_mark_dirty(vm, slot, gfn);
	ms_rcu_read_unlock(vm);
	return r;
}

void ms_mark_dirty(struct ms_vm *vm, const struct ms_memslot *slot, uint64_t gfn)
{
	ms_spin_lock(&vm->mmu.mmu_lock);
	ms_mark_dirty_locked(slot, gfn);
	ms_spin_unlock(&vm->mmu.mmu_lock);
}

/* Turning logging on without initially-set bits: every entry loses write access. */
void ms_dirty_log_protect_slot(struct ms_vm *vm, const struct ms_memslot *slot)
{
	bool protected;

	ms_spin_lock(&vm->mmu.mmu_lock);
	protected = ms_mmu_write_protect_range_locked(vm, slot->as_id, slot->base_gfn,
						      slot->base_gfn + slot->npages);
	ms_spin_unlock(&vm->mmu.mmu_lock);
	flush_protected(vm, protected);
}
