/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Region queries for device backends and VMMs: the slot holding a gpa, one
 * slot by number, and the whole map of an address space in gpa order.  Each
 * reads one published memslot set under memslot RCU, so every answer is a
 * snapshot of one generation: a concurrent update is wholly in it or wholly
 * out.  A slot an update is deleting or moving is reported as it was until
 * the update publishes its final state.  No lock is taken.
 */
#include <errno.h>

#include "rcu.h"
#include "vm.h"

static void region_of(const struct ms_memslot *slot, struct ms_region *out)
{
	*out = (struct ms_region){
		.slot = (uint32_t)slot->as_id << 16 | slot->id,
		.flags = slot->flags & (MS_MEM_LOG_DIRTY_PAGES | MS_MEM_READONLY),
		.guest_phys_addr = slot->base_gfn << MS_PAGE_SHIFT,
		.memory_size = slot->npages << MS_PAGE_SHIFT,
		.userspace_addr = slot->userspace_addr,
	};
}

int ms_gpa_to_hva(struct ms_vm *vm, unsigned int as_id, uint64_t gpa, size_t *len, bool write,
		  uint64_t *hva)
{
	const struct ms_memslot *slot;
	uint64_t room;
	int r = -EFAULT;

	if (!vm || !len || !hva || as_id >= vm->cfg.address_spaces)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	ms_rcu_read_lock(vm);
	slot = gfn_index_find(ms_active_memslots(vm, as_id)->gfn_index, gpa >> MS_PAGE_SHIFT);
	if (slot && !(slot->flags & MS_MEMSLOT_INVALID) &&
	    !(write && (slot->flags & MS_MEM_READONLY))) {
		*hva = ms_memslot_gfn_to_hva(slot, gpa >> MS_PAGE_SHIFT) + (gpa & (MS_PAGE_SIZE - 1));
		room = ((slot->base_gfn + slot->npages) << MS_PAGE_SHIFT) - gpa;
		*len = *len < room ? *len : room;
		r = 0;
	}
	ms_rcu_read_unlock(vm);
	return r;
}

int ms_find_region(struct ms_vm *vm, unsigned int as_id, uint64_t gpa, struct ms_region *out)
{
	const struct ms_memslot *slot;

	if (!vm || !out || as_id >= vm->cfg.address_spaces)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	ms_rcu_read_lock(vm);
	slot = gfn_index_find(ms_active_memslots(vm, as_id)->gfn_index, gpa >> MS_PAGE_SHIFT);
	if (slot)
		region_of(slot, out);
	ms_rcu_read_unlock(vm);
	return slot ? 0 : -ENOENT;
}

struct map_copy {
	struct ms_region *out;
	size_t max, n;
	uint32_t slot; /* ms_get_region: the slot wanted */
	bool found;
};

static bool copy_visit(void *value, uint64_t start, uint64_t end, void *ctx)
{
	struct map_copy *c = ctx;

	if (c->n < c->max)
		region_of(value, &c->out[c->n]);
	c->n++;
	return true;
}

int ms_get_memory_map(struct ms_vm *vm, unsigned int as_id, struct ms_region *out, size_t max,
		      size_t *n)
{
	struct map_copy c = { .out = out, .max = max };

	if (!vm || !n || (!out && max) || as_id >= vm->cfg.address_spaces)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	ms_rcu_read_lock(vm);
	gfn_index_for_each_overlap(ms_active_memslots(vm, as_id)->gfn_index, 0, UINT64_MAX,
				    copy_visit, &c);
	ms_rcu_read_unlock(vm);
	*n = c.n;
	return c.n > max ? -ENOSPC : 0;
}

static bool id_visit(void *value, uint64_t start, uint64_t end, void *ctx)
{
	const struct ms_memslot *slot = value;
	struct map_copy *c = ctx;

	if (slot->id != (c->slot & 0xffff))
		return true;
	region_of(slot, c->out);
	c->found = true;
	return false;
}

int ms_get_region(struct ms_vm *vm, uint32_t slot, struct ms_region *out)
{
	struct map_copy c = { .out = out, .slot = slot };
	unsigned int as_id = slot >> 16;

	if (!vm || !out || as_id >= vm->cfg.address_spaces ||
	    (slot & 0xffff) >= vm->cfg.slots_per_space)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	/* A walk of the published set: id_to_slot belongs to the updater. */
	ms_rcu_read_lock(vm);
	gfn_index_for_each_overlap(ms_active_memslots(vm, as_id)->gfn_index, 0, UINT64_MAX,
				    id_visit, &c);
	ms_rcu_read_unlock(vm);
	return c.found ? 0 : -ENOENT;
}
