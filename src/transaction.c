/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Memory-map transactions: several creates, deletes, moves and flag changes
 * applied as one (ms_set_memory_regions, ms_replace_memory_map).
 *
 * Planning checks each change with KVM's rules against the map as the
 * changes before it leave it, without touching a set: a slot id's state
 * during planning is its "cur" (its slot before the transaction, a slot of
 * ours, or none), and the gfn ranges of our slots sit in a private index
 * per address space for the overlap checks.  The first invalid change ends
 * it all: everything of ours is freed and nothing was published.
 *
 * The commit allocates every copy and index node first, then publishes at
 * most twice per address space: once with every slot that is deleted or
 * moved marked invalid (their accesses wait from then on, and their entries
 * are zapped together), once with the final map.  A reader sees the old map
 * or the new one, never a mix and never a hole.
 *
 * Locks: everything under slots_lock; the sets as in memslots.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vm.h"

struct txn_slot {
	unsigned int as_id, id;
	struct ms_memslot *old;	    /* before the transaction */
	struct ms_memslot *cur;	    /* as the changes so far leave it */
	struct ms_memslot *invalid; /* commit: old's invalid copy, if it needs one */
	bool deleted; /* a change deleted the slot: old's entries must go with it */
};

struct txn {
	struct ms_vm *vm;
	struct txn_slot *slots; /* the ids touched, in order of first touch */
	size_t n, cap;
	uint32_t *pos; /* as_id * slots_per_space + id -> index in slots + 1 */
	struct slot_index *ours[MS_MAX_ADDRESS_SPACES]; /* gfn ranges of our slots */
	/* The ranges to zap, allocated before anything is published. */
	unsigned int *zap_as;
	uint64_t *zap_gfn, *zap_end;
	size_t nr_zap;
};

static bool ours(const struct txn_slot *ts, const struct ms_memslot *slot)
{
	return slot && slot != ts->old;
}

/*
 * The touched slot (as_id, id), or NULL.  A short list is searched; past
 * TXN_SCAN_MAX an array over every slot number is made, once.
 */
#define TXN_SCAN_MAX 16

static struct txn_slot *txn_find(const struct txn *t, unsigned int as_id, unsigned int id)
{
	uint32_t p;

	if (!t->pos) {
		for (size_t i = 0; i < t->n; i++)
			if (t->slots[i].as_id == as_id && t->slots[i].id == id)
				return &t->slots[i];
		return NULL;
	}
	p = t->pos[as_id * t->vm->cfg.slots_per_space + id];
	return p ? &t->slots[p - 1] : NULL;
}

static int txn_index(struct txn *t)
{
	t->pos = calloc((size_t)t->vm->cfg.address_spaces * t->vm->cfg.slots_per_space,
			sizeof(*t->pos));
	if (!t->pos)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		t->pos[t->slots[i].as_id * t->vm->cfg.slots_per_space + t->slots[i].id] = i + 1;
	return 0;
}

static struct txn_slot *txn_slot(struct txn *t, unsigned int as_id, unsigned int id)
{
	struct txn_slot *ts = txn_find(t, as_id, id);

	if (ts)
		return ts;
	if (!t->pos && t->n == TXN_SCAN_MAX && txn_index(t))
		return NULL;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8;
		struct txn_slot *grown = realloc(t->slots, cap * sizeof(*grown));

		if (!grown)
			return NULL;
		t->slots = grown;
		t->cap = cap;
	}
	t->slots[t->n] = (struct txn_slot){ as_id, id, t->vm->as[as_id].id_to_slot[id],
					    t->vm->as[as_id].id_to_slot[id], NULL, false };
	if (t->pos)
		t->pos[as_id * t->vm->cfg.slots_per_space + id] = t->n + 1;
	return &t->slots[t->n++];
}

/* Free a slot of ours, and its bitmap unless its original slot has it too. */
static void free_ours(const struct txn_slot *ts, struct ms_memslot *slot)
{
	if (!ours(ts, slot))
		return;
	if (!ts->old || slot->dirty_bitmap != ts->old->dirty_bitmap)
		free(slot->dirty_bitmap);
	free(slot);
}

struct txn_overlap {
	struct txn *t;
	const struct txn_slot *self;
	bool from_sets; /* visiting the published sets, not our index */
	bool found;
};

static bool txn_overlap_visit(void *value, uint64_t start, uint64_t end, void *ctx)
{
	struct txn_overlap *o = ctx;
	const struct ms_memslot *slot = value;
	const struct txn_slot *ts = txn_find(o->t, slot->as_id, slot->id);

	if (ts == o->self)
		return true;
	/* A slot of the sets still counts while its id is untouched or unchanged. */
	if (o->from_sets && ts && ts->cur != ts->old)
		return true;
	o->found = true;
	return false;
}

/* Does [gfn, gfn + npages) overlap another slot of the map as planned so far? */
static bool txn_overlaps(struct txn *t, const struct txn_slot *self, uint64_t gfn, uint64_t npages)
{
	struct txn_overlap o = { t, self, true, false };

	gfn_index_for_each_overlap(ms_inactive_memslots(t->vm, self->as_id)->gfn_index, gfn,
				    gfn + npages, txn_overlap_visit, &o);
	o.from_sets = false;
	if (!o.found && t->ours[self->as_id])
		slot_index_for_each_overlap(t->ours[self->as_id], gfn, gfn + npages,
					    txn_overlap_visit, &o);
	return o.found;
}

/* Replace ts->cur by slot (ours, or NULL) in the plan. */
static int txn_set(struct txn *t, struct txn_slot *ts, struct ms_memslot *slot)
{
	struct slot_index **index = &t->ours[ts->as_id];

	if (slot) {
		if (!*index && !(*index = slot_index_create()))
			return -ENOMEM;
		if (slot_index_insert(*index, slot->base_gfn, slot->base_gfn + slot->npages, slot))
			return -ENOMEM;
	}
	if (ours(ts, ts->cur)) {
		slot_index_remove(*index, ts->cur->base_gfn, ts->cur);
		if (!slot || slot->dirty_bitmap != ts->cur->dirty_bitmap)
			free_ours(ts, ts->cur);
		else
			free(ts->cur);
	}
	ts->cur = slot;
	return 0;
}

/* One change against the plan: KVM's rules, in KVM's order. */
static int txn_plan(struct txn *t, const struct ms_region *r)
{
	unsigned int as_id = r->slot >> 16, id = r->slot & 0xffff;
	uint64_t base_gfn = r->guest_phys_addr >> MS_PAGE_SHIFT;
	uint64_t npages = r->memory_size >> MS_PAGE_SHIFT;
	enum ms_mr_change change;
	struct txn_slot *ts;
	struct ms_memslot *slot = NULL;
	int ret = ms_check_memory_region(t->vm, r);

	if (ret)
		return ret;
	ts = txn_slot(t, as_id, id);
	if (!ts)
		return -ENOMEM;
	ret = ms_classify_change(ts->cur, r, &change);
	if (ret)
		return ret > 0 ? 0 : ret;
	ret = ms_check_placement(t->vm, r, change,
				 (change == MS_MR_CREATE || change == MS_MR_MOVE) &&
				     txn_overlaps(t, ts, base_gfn, npages));
	if (!ret && change != MS_MR_DELETE)
		ret = ms_memslot_new(t->vm, r, ts->cur, &slot);
	if (ret)
		return ret;
	ret = txn_set(t, ts, slot);
	if (ret)
		free_ours(ts, slot);
	else if (change == MS_MR_DELETE)
		ts->deleted = true;
	return ret;
}

/*
 * Does old leave its place (deleted, moved, or replaced by another slot)?
 * A slot deleted and created again in its place goes too: its entries may be
 * writable where the new slot is READONLY or logs with a new bitmap.
 */
static bool goes_away(const struct txn_slot *ts)
{
	return ts->old && (ts->deleted || !ts->cur || ts->cur->base_gfn != ts->old->base_gfn ||
			   ts->cur->npages != ts->old->npages ||
			   ts->cur->userspace_addr != ts->old->userspace_addr);
}

/* Every allocation of the commit: invalid copies, zap ranges, index nodes. */
static int txn_prepare(struct txn *t)
{
	unsigned long inserts[MS_MAX_ADDRESS_SPACES] = { 0 };

	t->zap_as = malloc(t->n * sizeof(*t->zap_as) + 1);
	t->zap_gfn = malloc(t->n * sizeof(*t->zap_gfn) + 1);
	t->zap_end = malloc(t->n * sizeof(*t->zap_end) + 1);
	if (!t->zap_as || !t->zap_gfn || !t->zap_end)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		struct txn_slot *ts = &t->slots[i];

		if (goes_away(ts)) {
			ts->invalid = malloc(sizeof(*ts->invalid));
			if (!ts->invalid)
				return -ENOMEM;
			*ts->invalid = *ts->old;
			ts->invalid->flags |= MS_MEMSLOT_INVALID;
			inserts[ts->as_id]++;
			t->zap_as[t->nr_zap] = ts->as_id;
			t->zap_gfn[t->nr_zap] = ts->old->base_gfn;
			t->zap_end[t->nr_zap++] = ts->old->base_gfn + ts->old->npages;
		}
		inserts[ts->as_id] += ts->cur != NULL && ts->cur != ts->old;
	}
	for (unsigned int as = 0; as < t->vm->cfg.address_spaces; as++) {
		int r = inserts[as] ? ms_memslots_reserve(t->vm, as, inserts[as]) : 0;

		if (r)
			return r;
	}
	return 0;
}

/* Publish, in each address space it touches, the slots that step gives. */
static void txn_publish(struct txn *t, bool final)
{
	for (unsigned int as = 0; as < t->vm->cfg.address_spaces; as++) {
		struct ms_hva_change hull = { UINT64_MAX, 0 };
		bool any = false;

		for (int pass = 0; pass < 2; pass++) {
			for (size_t i = 0; i < t->n; i++) {
				struct txn_slot *ts = &t->slots[i];
				struct ms_memslot *from = final && ts->invalid ? ts->invalid : ts->old;
				struct ms_memslot *to = final ? ts->cur : ts->invalid;

				if (ts->as_id != as || from == to || (!final && !to))
					continue;
				ms_memslots_replace(ms_inactive_memslots(t->vm, as), from, to);
				any = true;
				/* Host memory a slot newly covers: the fair gate announces it. */
				if (!pass && final && to &&
				    (!ts->old || to->userspace_addr != ts->old->userspace_addr ||
				     to->npages != ts->old->npages)) {
					hull.start = hull.start < to->userspace_addr
							 ? hull.start
							 : to->userspace_addr;
					hull.end = hull.end > ms_memslot_hva_end(to)
						       ? hull.end
						       : ms_memslot_hva_end(to);
				}
			}
			if (!any)
				break;
			if (!pass)
				ms_install_new_memslots(t->vm, as, ms_inactive_memslots(t->vm, as),
							hull.end ? &hull : NULL);
		}
	}
}

static void txn_finish(struct txn *t)
{
	size_t changed = 0;

	for (size_t i = 0; i < t->n; i++) {
		struct txn_slot *ts = &t->slots[i];

		if (ts->cur == ts->old)
			continue;
		changed++;
		t->vm->as[ts->as_id].id_to_slot[ts->id] = ts->cur;
		ms_memslot_replaced(t->vm, ts->old, ts->cur);
		free(ts->invalid);
		ts->invalid = NULL;
		ts->old = ts->cur; /* ours no more: txn_destroy must not free it */
	}
	for (unsigned int as = 0; as < t->vm->cfg.address_spaces; as++)
		for (int s = 0; s < 2; s++) {
			gfn_index_trim(t->vm->as[as].sets[s].gfn_index);
			slot_index_trim(t->vm->as[as].sets[s].hva_index);
		}
	ms_stat_add(t->vm, memslot_updates, changed);
}

static void txn_destroy(struct txn *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free_ours(&t->slots[i], t->slots[i].cur);
		free(t->slots[i].invalid);
	}
	for (unsigned int as = 0; as < MS_MAX_ADDRESS_SPACES; as++)
		if (t->ours[as])
			slot_index_destroy(t->ours[as]);
	free(t->slots);
	free(t->pos);
	free(t->zap_as);
	free(t->zap_gfn);
	free(t->zap_end);
}

/* Plan regions [0, n) in order; commit all or nothing.  Under slots_lock. */
static int txn_run(struct txn *t, const struct ms_region *regions, size_t n, size_t *failed)
{
	int r = 0;

	for (size_t i = 0; i < n && !r; i++) {
		r = txn_plan(t, &regions[i]);
		if (r && failed)
			*failed = i;
	}
	if (!r)
		r = txn_prepare(t);
	if (r)
		return r;
	if (t->nr_zap) {
		txn_publish(t, false);
		/* Faults that saw the slots valid are over; new ones wait. */
		ms_mmu_zap_gfn_ranges(t->vm, t->zap_as, t->zap_gfn, t->zap_end, t->nr_zap);
		for (size_t i = 0; i < t->nr_zap; i++)
			ms_notify_gfn_range(t->vm, t->zap_as[i], t->zap_gfn[i], t->zap_end[i]);
	}
	txn_publish(t, true);
	txn_finish(t);
	return 0;
}

static int txn_check_caller(struct ms_vm *vm, const struct ms_region *regions, size_t n)
{
	if (!vm || (!regions && n))
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	if (ms_update_waits_for_this_thread(vm))
		return -EDEADLK;
	return 0;
}

int ms_set_memory_regions(struct ms_vm *vm, const struct ms_region *regions, size_t n,
			  size_t *failed)
{
	struct txn t;
	int r = txn_check_caller(vm, regions, n);

	if (r)
		return r;
	ms_mutex_lock(&vm->slots_lock);
	t = (struct txn){ .vm = vm };
	r = txn_run(&t, regions, n, failed);
	txn_destroy(&t);
	ms_mutex_unlock(&vm->slots_lock);
	return r;
}

/* The deletes that make way for a map: every slot the map does not name. */
static int deletes_for(struct ms_vm *vm, const struct ms_region *regions, size_t n,
		       struct ms_region **out, size_t *nr)
{
	size_t total = (size_t)vm->cfg.address_spaces * vm->cfg.slots_per_space;
	bool *named = calloc(total, sizeof(*named));
	struct ms_region *del;

	*nr = 0;
	for (unsigned int as = 0; as < vm->cfg.address_spaces; as++)
		for (unsigned int id = 0; id < vm->cfg.slots_per_space; id++)
			*nr += vm->as[as].id_to_slot[id] != NULL;
	del = malloc((*nr + n) * sizeof(*del));
	if (!named || !del) {
		free(named);
		free(del);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if ((regions[i].slot >> 16) < vm->cfg.address_spaces &&
		    (regions[i].slot & 0xffff) < vm->cfg.slots_per_space)
			named[(regions[i].slot >> 16) * vm->cfg.slots_per_space +
			      (regions[i].slot & 0xffff)] = true;
	*nr = 0;
	for (unsigned int as = 0; as < vm->cfg.address_spaces; as++)
		for (unsigned int id = 0; id < vm->cfg.slots_per_space; id++)
			if (vm->as[as].id_to_slot[id] && !named[as * vm->cfg.slots_per_space + id])
				del[(*nr)++] = (struct ms_region){ .slot = as << 16 | id };
	free(named);
	*out = del;
	return 0;
}

int ms_replace_memory_map(struct ms_vm *vm, const struct ms_region *regions, size_t n,
			  size_t *failed)
{
	struct ms_region *all = NULL;
	size_t nr_del = 0, at = 0;
	struct txn t;
	int r = txn_check_caller(vm, regions, n);

	if (r)
		return r;
	ms_mutex_lock(&vm->slots_lock);
	r = deletes_for(vm, regions, n, &all, &nr_del);
	if (!r) {
		if (n)
			memcpy(all + nr_del, regions, n * sizeof(*regions));
		t = (struct txn){ .vm = vm };
		r = txn_run(&t, all, nr_del + n, &at);
		txn_destroy(&t);
		/* The deletes cannot fail: a failure is the caller's region's. */
		if (r && failed && at >= nr_del)
			*failed = at - nr_del;
	}
	free(all);
	ms_mutex_unlock(&vm->slots_lock);
	return r;
}
