/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slot_index: an ordered map of half-open intervals [start, end) to values,
 * kept as a B+tree whose nodes are laid out for cache-friendly search.  One
 * index is used for the gfn ranges of a memslot set (never overlapping: find
 * by gfn) and one for its hva ranges (overlapping: visit all that overlap).
 *
 * No locking: an index is changed only while no reader can see it (the
 * inactive memslot set, under slots_lock); readers of a published index only
 * read.
 */
#ifndef MEMSLOTS_SLOT_INDEX_H
#define MEMSLOTS_SLOT_INDEX_H

#include <stdbool.h>
#include <stdint.h>

struct slot_index;

struct slot_index *slot_index_create(void);
void slot_index_destroy(struct slot_index *index);

/* 0, or -ENOMEM with the index unchanged.  Intervals may overlap; end > start. */
int slot_index_insert(struct slot_index *index, uint64_t start, uint64_t end, void *value);
/*
 * Allocate now what the next `inserts` insertions need, so that
 * slot_index_insert_reserved() cannot fail: a memslot update reserves before
 * it publishes anything.  0 or -ENOMEM.
 */
int slot_index_reserve(struct slot_index *index, unsigned long inserts);
/* Free the spares past what single updates keep, after a large transaction. */
void slot_index_trim(struct slot_index *index);
void slot_index_insert_reserved(struct slot_index *index, uint64_t start, uint64_t end,
				void *value);
/* Remove the entry (start, value); false if there is none. */
bool slot_index_remove(struct slot_index *index, uint64_t start, void *value);

/* The value of the entry with the greatest start <= key if key < its end, else NULL. */
void *slot_index_find(const struct slot_index *index, uint64_t key);

/*
 * Call fn for every entry overlapping [start, end), in order of start, in
 * O(log n + k); stop early when fn returns false.
 */
typedef bool (*slot_index_visit_fn)(void *value, uint64_t start, uint64_t end, void *ctx);
void slot_index_for_each_overlap(const struct slot_index *index, uint64_t start, uint64_t end,
				 slot_index_visit_fn fn, void *ctx);

unsigned long slot_index_count(const struct slot_index *index);
/* Nodes insertions had to allocate past a reservation: 0 unless the bound is wrong. */
unsigned long slot_index_unreserved(const struct slot_index *index);

#endif /* MEMSLOTS_SLOT_INDEX_H */
