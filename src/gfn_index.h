/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gfn_index: the memslots of one set ordered by base gfn, for the lookup
 * every guest access starts with (KVM's gfn_to_memslot).  Slots of a set
 * never overlap, so unlike slot_index it keeps no overlap summaries, and its
 * leaves carry what a translation needs (end, flags, host address), so that
 * gfn to host address never reads the slot: at 32764 slots it takes under
 * 1 MiB.  A table by slot id gives the slot itself (KVM's id_hash) to the
 * callers that need more than a translation.
 *
 * No locking: an index is changed only while no reader can see it (the
 * inactive memslot set, under slots_lock); readers of a published index only
 * read.
 */
#ifndef MEMSLOTS_GFN_INDEX_H
#define MEMSLOTS_GFN_INDEX_H

#include <stdbool.h>
#include <stdint.h>

struct gfn_index;
struct ms_memslot;

/* What a translation needs of a slot: a copy, valid as long as its set is. */
struct gfn_view {
	uint64_t base_gfn, npages, userspace_addr;
	uint32_t flags; /* MS_MEM_* and MS_MEMSLOT_INVALID */
	uint16_t id;
};

/* For slots with ids below max_ids. */
struct gfn_index *gfn_index_create(unsigned int max_ids);
void gfn_index_destroy(struct gfn_index *index);

/*
 * Allocate now what the next `inserts` insertions need, so that
 * gfn_index_insert_reserved() cannot fail: a memslot update reserves before
 * it publishes anything.  0 or -ENOMEM.
 */
int gfn_index_reserve(struct gfn_index *index, unsigned long inserts);
/* Free the spares past what single updates keep, after a large transaction. */
void gfn_index_trim(struct gfn_index *index);
/*
 * Slots may share a base gfn only while a set is being changed (a
 * transaction may add a slot before it removes the one it replaces); a
 * published set never has two.
 */
void gfn_index_insert_reserved(struct gfn_index *index, const struct ms_memslot *slot);
/* 0 or -ENOMEM with the index unchanged. */
int gfn_index_insert(struct gfn_index *index, const struct ms_memslot *slot);
/* False if slot is not in the index. */
bool gfn_index_remove(struct gfn_index *index, const struct ms_memslot *slot);

/* The slot holding gfn, or NULL. */
const struct ms_memslot *gfn_index_find(const struct gfn_index *index, uint64_t gfn);
/* The view of the slot holding gfn, from the index alone; false if none does. */
bool gfn_index_lookup(const struct gfn_index *index, uint64_t gfn, struct gfn_view *view);
/* The slot with this id, or NULL. */
const struct ms_memslot *gfn_index_slot(const struct gfn_index *index, uint16_t id);

/*
 * Call fn for every slot overlapping [start, end), in order of base gfn,
 * with that slot's range; stop early when fn returns false.
 */
typedef bool (*gfn_index_visit_fn)(void *slot, uint64_t start, uint64_t end, void *ctx);
void gfn_index_for_each_overlap(const struct gfn_index *index, uint64_t start, uint64_t end,
				gfn_index_visit_fn fn, void *ctx);

unsigned long gfn_index_count(const struct gfn_index *index);
/* Bytes of nodes in the tree, spares and the id table excluded. */
unsigned long gfn_index_bytes(const struct gfn_index *index);
unsigned long gfn_index_table_bytes(const struct gfn_index *index);
/* Nodes insertions had to allocate past a reservation: 0 unless the bound is wrong. */
unsigned long gfn_index_unreserved(const struct gfn_index *index);

#endif /* MEMSLOTS_GFN_INDEX_H */
