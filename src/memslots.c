/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Memory slots: ms_set_memory_region with KVM's rules, the two memslot sets
 * of each address space, and lookups by gfn and by host range.
 *
 * Each address space has two sets.  Readers see the active one under RCU and
 * never lock.  An update (under slots_lock) changes the inactive set, makes
 * it active through the gate (install_new_memslots), waits a grace period,
 * and applies the same change to the set that is now inactive: every update
 * is O(log n), nothing is copied.  Delete and move first publish the old slot
 * marked invalid and zap its entries, so that no vCPU installs an entry for a
 * slot that is going away; then they publish the final state.
 *
 * Locks: slots_lock for the inactive sets, id_to_slot and vm->generation;
 * the gate around each publish; RCU for readers of the active set.
 */
#include <errno.h>
#include <stdlib.h>

#include "rcu.h"
#include "slot_index.h"
#include "vm.h"

/* x86-64: the end of the user address space (TASK_SIZE_MAX). */
#define MS_USER_ADDR_END 0x7ffffffff000ull
/* KVM_MEM_MAX_NR_PAGES */
#define MS_MEM_MAX_NR_PAGES ((1ull << 31) - 1)

uint64_t ms_memslot_gfn_to_hva(const struct ms_memslot *slot, uint64_t gfn)
{
	return slot->userspace_addr + ((gfn - slot->base_gfn) << MS_PAGE_SHIFT);
}

uint64_t ms_memslot_hva_end(const struct ms_memslot *slot)
{
	return slot->userspace_addr + (slot->npages << MS_PAGE_SHIFT);
}

struct ms_memslots *ms_inactive_memslots(struct ms_vm *vm, unsigned int as_id)
{
	struct ms_address_space *as = &vm->as[as_id];

	return ms_active_memslots(vm, as_id) == &as->sets[0] ? &as->sets[1] : &as->sets[0];
}

struct hva_walk {
	struct ms_vm *vm;
	uint64_t start, end;
	ms_hva_slot_fn fn;
	void *ctx;
	bool stopped;
};

static bool hva_walk_visit(void *value, uint64_t start, uint64_t end, void *ctx)
{
	struct hva_walk *w = ctx;
	const struct ms_memslot *slot = value;
	uint64_t lo = w->start > start ? w->start : start;
	uint64_t hi = w->end < end ? w->end : end;
	uint64_t gfn_start = slot->base_gfn + ((lo - start) >> MS_PAGE_SHIFT);
	uint64_t gfn_end = slot->base_gfn + ((hi - start + MS_PAGE_SIZE - 1) >> MS_PAGE_SHIFT);

	if (!w->fn(w->vm, slot, gfn_start, gfn_end, w->ctx)) {
		w->stopped = true;
		return false;
	}
	return true;
}

/*
 * Call fn for every slot, in every address space, whose host range overlaps
 * [start, end), with the gfns of the overlap.  Caller is in an RCU read side.
 * False if fn stopped the walk.
 */
bool ms_for_each_hva_slot(struct ms_vm *vm, uint64_t start, uint64_t end, ms_hva_slot_fn fn,
			  void *ctx)
{
	struct hva_walk w = { vm, start, end, fn, ctx, false };

	for (unsigned int i = 0; i < vm->cfg.address_spaces && !w.stopped; i++)
		slot_index_for_each_overlap(ms_active_memslots(vm, i)->hva_index, start, end,
					    hva_walk_visit, &w);
	return !w.stopped;
}

int ms_memslots_init(struct ms_vm *vm)
{
	for (unsigned int i = 0; i < vm->cfg.address_spaces; i++) {
		struct ms_address_space *as = &vm->as[i];

		as->id_to_slot = calloc(vm->cfg.slots_per_space, sizeof(*as->id_to_slot));
		if (!as->id_to_slot)
			return -ENOMEM;
		for (int s = 0; s < 2; s++) {
			as->sets[s].gfn_index = gfn_index_create(vm->cfg.slots_per_space);
			as->sets[s].hva_index = slot_index_create();
			if (!as->sets[s].gfn_index || !as->sets[s].hva_index)
				return -ENOMEM;
			/* KVM's scheme: generations of address spaces never collide. */
			atomic_init(&as->sets[s].generation, i);
		}
		atomic_init(&as->active, &as->sets[0]);
	}
	return 0;
}

void ms_memslots_destroy(struct ms_vm *vm)
{
	for (unsigned int i = 0; i < vm->cfg.address_spaces; i++) {
		struct ms_address_space *as = &vm->as[i];

		for (int s = 0; s < 2; s++) {
			if (as->sets[s].gfn_index)
				gfn_index_destroy(as->sets[s].gfn_index);
			if (as->sets[s].hva_index)
				slot_index_destroy(as->sets[s].hva_index);
		}
		if (as->id_to_slot)
			for (unsigned int id = 0; id < vm->cfg.slots_per_space; id++) {
				if (as->id_to_slot[id])
					free(as->id_to_slot[id]->dirty_bitmap);
				free(as->id_to_slot[id]);
			}
		free(as->id_to_slot);
	}
}

/*
 * Everything an update may allocate in the indexes of as_id, before it
 * publishes anything: a half-published update cannot be undone, so running
 * out of memory must happen here or not at all.
 */
int ms_memslots_reserve(struct ms_vm *vm, unsigned int as_id, unsigned long inserts)
{
	for (int s = 0; s < 2; s++) {
		struct ms_memslots *slots = &vm->as[as_id].sets[s];
		int r = gfn_index_reserve(slots->gfn_index, inserts);

		if (!r)
			r = slot_index_reserve(slots->hva_index, inserts);
		if (r)
			return r;
	}
	return 0;
}

/* Replace old by new (either may be NULL) in one set.  Reserved: cannot fail. */
void ms_memslots_replace(struct ms_memslots *slots, struct ms_memslot *old, struct ms_memslot *new)
{
	if (old) {
		gfn_index_remove(slots->gfn_index, old);
		slot_index_remove(slots->hva_index, old->userspace_addr, old);
	}
	if (new) {
		gfn_index_insert_reserved(slots->gfn_index, new);
		slot_index_insert_reserved(slots->hva_index, new->userspace_addr,
					   ms_memslot_hva_end(new), new);
	}
}

/*
 * Publish slots as the active set of as_id.  The gate keeps the publish out
 * of every open invalidation, so that each start and its end see the same
 * memslots (KVM's install_new_memslots).
 */
void ms_install_new_memslots(struct ms_vm *vm, unsigned int as_id, struct ms_memslots *slots,
			     const struct ms_hva_change *change)
{
	uint64_t gen = atomic_load_explicit(&vm->generation, memory_order_relaxed) + 1;

	atomic_store_explicit(&slots->generation, gen | MS_MEMSLOT_GEN_UPDATE_IN_PROGRESS,
			      memory_order_relaxed);
	ms_gate_update_begin(vm, change);
	/* Pairs with the acquire load in ms_active_memslots(). */
	atomic_store_explicit(&vm->as[as_id].active, slots, memory_order_release);
	atomic_store_explicit(&vm->generation, gen, memory_order_release);
	vm->gate_ops->update_end(vm);

	/* No reader still sees the old set once this returns. */
	ms_synchronize_rcu(vm);
	atomic_store_explicit(&slots->generation, gen, memory_order_relaxed);
}

/* Replace old by new in both sets of as_id, publishing once. */
static void swap_memslot(struct ms_vm *vm, unsigned int as_id, struct ms_memslot *old,
			 struct ms_memslot *new)
{
	/* Only a new slot covers host memory no slot covered: moves keep theirs. */
	struct ms_hva_change change = { new ? new->userspace_addr : 0,
					new ? ms_memslot_hva_end(new) : 0 };

	ms_memslots_replace(ms_inactive_memslots(vm, as_id), old, new);
	ms_install_new_memslots(vm, as_id, ms_inactive_memslots(vm, as_id),
				new && !old ? &change : NULL);
	ms_memslots_replace(ms_inactive_memslots(vm, as_id), old, new);
}

/* Publish old as invalid, then zap what the secondary MMU holds for it. */
static void invalidate_memslot(struct ms_vm *vm, struct ms_memslot *old, struct ms_memslot *invalid)
{
	*invalid = *old;
	invalid->flags |= MS_MEMSLOT_INVALID;
	swap_memslot(vm, old->as_id, old, invalid);
	/* Faults that saw old valid are over (grace period); new ones retry. */
	ms_mmu_zap_gfn_range(vm, old->as_id, old->base_gfn, old->base_gfn + old->npages);
	ms_notify_gfn_range(vm, old->as_id, old->base_gfn, old->base_gfn + old->npages);
}

/*
 * The new slot's bitmap: its old one while logging stays on (a move or a
 * flags change keeps the bits, as KVM does), a new one when it is turned on.
 */
int ms_new_dirty_bitmap(const struct ms_vm *vm, const struct ms_memslot *old,
			struct ms_memslot *new)
{
	if (!(new->flags & MS_MEM_LOG_DIRTY_PAGES))
		return 0;
	if (old && old->dirty_bitmap) {
		new->dirty_bitmap = old->dirty_bitmap;
		return 0;
	}
	new->dirty_bitmap = ms_dirty_bitmap_alloc(vm, new->npages);
	return new->dirty_bitmap ? 0 : -ENOMEM;
}

void ms_memslot_replaced(struct ms_vm *vm, struct ms_memslot *old, struct ms_memslot *new)
{
	/*
	 * A new bitmap (logging turned on, also off and on again): faults that
	 * saw the slot without it are over, so its entries lose write access.
	 */
	if (new && new->dirty_bitmap && (!old || new->dirty_bitmap != old->dirty_bitmap) &&
	    !vm->cfg.dirty_log_initially_set)
		ms_dirty_log_protect_slot(vm, new);
	/* Unreachable from both sets, and a grace period has passed. */
	if (old && (!new || new->dirty_bitmap != old->dirty_bitmap))
		free(old->dirty_bitmap);
	free(old);
}

static int set_memslot(struct ms_vm *vm, struct ms_memslot *old, struct ms_memslot *new,
		       enum ms_mr_change change)
{
	const struct ms_memslot *any = old ? old : new;
	unsigned int as_id = any->as_id, id = any->id;
	struct ms_memslot *invalid = NULL;
	int r;

	if (change == MS_MR_DELETE || change == MS_MR_MOVE) {
		invalid = malloc(sizeof(*invalid));
		if (!invalid)
			return -ENOMEM;
	}
	/* Delete and move insert twice: the invalid slot, then the new one. */
	r = ms_memslots_reserve(vm, as_id, 2);
	if (r) {
		free(invalid);
		return r;
	}
	if (invalid) {
		invalidate_memslot(vm, old, invalid);
		swap_memslot(vm, as_id, invalid, new);
		free(invalid);
	} else {
		swap_memslot(vm, as_id, old, new);
	}
	vm->as[as_id].id_to_slot[id] = new;
	ms_memslot_replaced(vm, old, new);
	ms_stat_inc(vm, memslot_updates);
	return 0;
}

struct overlap_probe {
	const struct ms_memslot *self; /* the slot being moved, or NULL */
	bool found;
};

static bool overlap_visit(void *value, uint64_t start, uint64_t end, void *ctx)
{
	struct overlap_probe *probe = ctx;

	if (value == probe->self)
		return true;
	probe->found = true;
	return false;
}

/* At rest both sets hold the same slots; the inactive one is ours to read. */
static bool memslot_overlaps(struct ms_vm *vm, unsigned int as_id, const struct ms_memslot *self,
			     uint64_t base_gfn, uint64_t npages)
{
	struct overlap_probe probe = { self, false };

	gfn_index_for_each_overlap(ms_inactive_memslots(vm, as_id)->gfn_index, base_gfn,
				   base_gfn + npages, overlap_visit, &probe);
	return probe.found;
}

/* Every -EINVAL that KVM returns for the arguments alone, in KVM's order. */
int ms_check_memory_region(const struct ms_vm *vm, const struct ms_region *r)
{
	unsigned int as_id = r->slot >> 16, id = r->slot & 0xffff;

	if (r->flags & ~(MS_MEM_LOG_DIRTY_PAGES | MS_MEM_READONLY))
		return -EINVAL;
	if (r->memory_size & (MS_PAGE_SIZE - 1))
		return -EINVAL;
	if (r->guest_phys_addr & (MS_PAGE_SIZE - 1))
		return -EINVAL;
	if (r->userspace_addr & (MS_PAGE_SIZE - 1))
		return -EINVAL;
	/* access_ok(): the host range lies in the user address space. */
	if (r->userspace_addr > MS_USER_ADDR_END ||
	    r->memory_size > MS_USER_ADDR_END - r->userspace_addr)
		return -EINVAL;
	if (as_id >= vm->cfg.address_spaces || id >= vm->cfg.slots_per_space)
		return -EINVAL;
	if (r->guest_phys_addr + r->memory_size < r->guest_phys_addr)
		return -EINVAL;
	if ((r->memory_size >> MS_PAGE_SHIFT) > MS_MEM_MAX_NR_PAGES)
		return -EINVAL;
	return 0;
}

int ms_classify_change(const struct ms_memslot *old, const struct ms_region *r,
		       enum ms_mr_change *change)
{
	uint64_t npages = r->memory_size >> MS_PAGE_SHIFT;

	if (!r->memory_size) {
		*change = MS_MR_DELETE;
		return old ? 0 : -EINVAL;
	}
	if (!old) {
		*change = MS_MR_CREATE;
		return 0;
	}
	if (r->userspace_addr != old->userspace_addr || npages != old->npages ||
	    ((r->flags ^ old->flags) & MS_MEM_READONLY))
		return -EINVAL;
	if (r->guest_phys_addr >> MS_PAGE_SHIFT != old->base_gfn)
		*change = MS_MR_MOVE;
	else if (r->flags != old->flags)
		*change = MS_MR_FLAGS_ONLY;
	else
		return 1; /* nothing to change */
	return 0;
}

int ms_check_placement(struct ms_vm *vm, const struct ms_region *r, enum ms_mr_change change,
		       bool overlaps)
{
	uint64_t gfn_end = (r->guest_phys_addr + r->memory_size) >> MS_PAGE_SHIFT;

	if (change == MS_MR_CREATE || change == MS_MR_MOVE) {
		if (overlaps)
			return -EEXIST;
		if (gfn_end > vm->max_gfn_end)
			return -EINVAL;
	}
	/* The fair gate would wait for an invalidation this thread holds. */
	if (change == MS_MR_CREATE && vm->gate_ops == &ms_gate_fair_ops &&
	    ms_gate_fair_waits_for_caller(vm, r->userspace_addr,
					  r->userspace_addr + r->memory_size))
		return -EDEADLK;
	return 0;
}

int ms_memslot_new(const struct ms_vm *vm, const struct ms_region *r, const struct ms_memslot *cur,
		   struct ms_memslot **out)
{
	struct ms_memslot *slot = malloc(sizeof(*slot));
	int ret;

	if (!slot)
		return -ENOMEM;
	*slot = (struct ms_memslot){ .base_gfn = r->guest_phys_addr >> MS_PAGE_SHIFT,
				     .npages = r->memory_size >> MS_PAGE_SHIFT,
				     .userspace_addr = r->userspace_addr,
				     .flags = r->flags,
				     .id = r->slot & 0xffff,
				     .as_id = r->slot >> 16 };
	ret = ms_new_dirty_bitmap(vm, cur, slot);
	if (ret) {
		free(slot);
		return ret;
	}
	*out = slot;
	return 0;
}

static int set_memory_region_locked(struct ms_vm *vm, const struct ms_region *r)
{
	unsigned int as_id = r->slot >> 16, id = r->slot & 0xffff;
	struct ms_memslot *old = vm->as[as_id].id_to_slot[id], *new = NULL;
	uint64_t base_gfn = r->guest_phys_addr >> MS_PAGE_SHIFT;
	uint64_t npages = r->memory_size >> MS_PAGE_SHIFT;
	enum ms_mr_change change;
	int ret = ms_classify_change(old, r, &change);

	if (ret)
		return ret > 0 ? 0 : ret;
	ret = ms_check_placement(vm, r, change,
				 (change == MS_MR_CREATE || change == MS_MR_MOVE) &&
				     memslot_overlaps(vm, as_id, old, base_gfn, npages));
	if (!ret && change != MS_MR_DELETE)
		ret = ms_memslot_new(vm, r, old, &new);
	if (ret)
		return ret;
	ret = set_memslot(vm, old, new, change);
	if (ret) {
		if (new && (!old || new->dirty_bitmap != old->dirty_bitmap))
			free(new->dirty_bitmap);
		free(new);
	}
	return ret;
}

int ms_set_memory_region(struct ms_vm *vm, const struct ms_region *r)
{
	int ret;

	if (!vm || !r)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	ret = ms_check_memory_region(vm, r);
	if (ret)
		return ret;
	/* The gate would wait for this thread's own end. */
	if (ms_update_waits_for_this_thread(vm))
		return -EDEADLK;
	ms_mutex_lock(&vm->slots_lock);
	ret = set_memory_region_locked(vm, r);
	ms_mutex_unlock(&vm->slots_lock);
	return ret;
}
