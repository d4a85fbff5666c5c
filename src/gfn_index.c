/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gfn_index: memslots keyed by base gfn in sorted leaves of fifteen, found
 * through one sorted array of fences (each leaf's first key) with a
 * pointer to the leaf beside it, and above the fences a pyramid of sampled
 * copies: each level holds every sixteenth key of the level below.  A B+tree
 * whose inner nodes are all full and laid out so that a child's place is
 * computed, not loaded.
 *
 * Why this shape: on these machines a random access to a working set past
 * ~2 MiB costs ~200 ns and one within 1 MiB ~15 ns, so a lookup must touch
 * few lines, none far away, and wait for few loads in a row.  Each level
 * costs one group of sixteen keys (two lines) counted at or below the gfn by
 * independent compares (no branch to mispredict on random gfns); at 32764
 * slots that is three levels in 18 KiB, then one leaf: two lines of keys and
 * one 16-byte entry with the slot's end gfn, flags, id and host address.
 * A translation never reads the slot, which on a large VM is far memory.
 * (A tree of 256-byte nodes needed four levels of three lines each there, a
 * pointer load between each; a binary search of the fences, eleven loads in
 * a row.)
 *
 * Updates: an insertion that splits a leaf inserts a fence, a memmove of at
 * most 16 bytes per leaf (35 KiB at 32764 slots, well under a microsecond),
 * and resamples the levels above from there (a sixteenth as many);
 * ascending creates append at the right edge, where a full last leaf stays
 * full and a new one starts, so they build full leaves and move nothing.
 * Removal never allocates: an emptied leaf is dropped with its fence, an
 * underfull one is left as it is.  Insertion takes leaves and fence room
 * reserved beforehand, so that an update fails before it publishes or not
 * at all.
 *
 * No locking: see gfn_index.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gfn_index.h"
#include "vm.h"

#define LEAF_KEYS 15
#define GROUP 16 /* keys per group of a fence level: two cache lines */
/* Levels of fences: 16^6 leaves is far past any slot count. */
#define MAX_LEVELS 6
/* An entry's info word: the end gfn below bit 44 (guest_phys_bits <= 52
 * keeps gfns below 2^40), flags, and the slot id in the top 16 bits. */
#define END_MASK ((1ull << 44) - 1)
#define INFO_LOG (1ull << 44)
#define INFO_READONLY (1ull << 45)
#define INFO_INVALID (1ull << 46)
#define ID_SHIFT 48
/* Spare leaves kept between updates; a transaction may reserve more for a while. */
#define MAX_SPARE 4
/* What a transaction's reservation leaves behind, kept for the next (48 KiB at most). */
#define KEEP_SPARE 128

struct gfn_entry {
	uint64_t info, hva;
};

struct gfn_leaf {
	/* Base gfns; unused keys hold UINT64_MAX, above every gfn. */
	uint64_t key[LEAF_KEYS];
	uint64_t nr;
	union {
		struct gfn_entry entry[LEAF_KEYS];
		struct gfn_leaf *spare_next;
	};
} __attribute__((aligned(64)));

struct gfn_index {
	/*
	 * level[0][i] is leaf[i]->key[0], level[k][i] is level[k - 1][GROUP * i];
	 * each level is padded with UINT64_MAX to whole groups, and the top one
	 * is a single group.  One leaf at least.
	 */
	uint64_t *level[MAX_LEVELS];
	unsigned int levels;
	struct gfn_leaf **leaf;
	unsigned long nr_leaves, capacity;
	/* Arrays a reservation grew, for the next insertion to adopt. */
	uint64_t *grown_level[MAX_LEVELS];
	struct gfn_leaf **grown_leaf;
	unsigned long grown_capacity;
	unsigned long count;
	struct gfn_leaf *spares;
	unsigned long nr_spares;
	unsigned long unreserved; /* leaves taken past the reservation */
	unsigned int max_ids;
	const struct ms_memslot **by_id;
};

static struct gfn_entry entry_of(const struct ms_memslot *slot)
{
	uint64_t info = (slot->base_gfn + slot->npages) | (uint64_t)slot->id << ID_SHIFT;

	info |= slot->flags & MS_MEM_LOG_DIRTY_PAGES ? INFO_LOG : 0;
	info |= slot->flags & MS_MEM_READONLY ? INFO_READONLY : 0;
	info |= slot->flags & MS_MEMSLOT_INVALID ? INFO_INVALID : 0;
	return (struct gfn_entry){ info, slot->userspace_addr };
}

static uint16_t entry_id(const struct gfn_entry *e)
{
	return e->info >> ID_SHIFT;
}

static struct gfn_leaf *leaf_take(struct gfn_index *index)
{
	struct gfn_leaf *l = index->spares;

	if (l) {
		index->spares = l->spare_next;
		index->nr_spares--;
	} else {
		/* Unreachable if the reservation is right; better late than a crash. */
		l = aligned_alloc(64, sizeof(*l));
		if (!l)
			abort();
		index->unreserved++;
	}
	l->nr = 0;
	for (unsigned int i = 0; i < LEAF_KEYS; i++)
		l->key[i] = UINT64_MAX;
	return l;
}

static void leaf_give(struct gfn_index *index, struct gfn_leaf *l)
{
	l->spare_next = index->spares;
	index->spares = l;
	index->nr_spares++;
}

static unsigned long groups_of(unsigned long n)
{
	return (n + GROUP - 1) / GROUP;
}

/* Entries allocated for level k when level 0 has room for cap. */
static unsigned long level_size(unsigned long cap, unsigned int k)
{
	for (unsigned int i = 0; i < k; i++)
		cap = groups_of(cap);
	return groups_of(cap) * GROUP;
}

static void free_arrays(uint64_t **level, struct gfn_leaf ***leaf)
{
	for (unsigned int k = 0; k < MAX_LEVELS; k++) {
		free(level[k]);
		level[k] = NULL;
	}
	free(*leaf);
	*leaf = NULL;
}

/*
 * Bigger arrays for a level 0 of cap entries, set aside: a reservation
 * runs on the active set too, whose arrays readers may be using, so the
 * next insertion adopts them (only the inactive set is ever changed).
 */
static int arrays_grow(struct gfn_index *index, unsigned long cap)
{
	free_arrays(index->grown_level, &index->grown_leaf);
	index->grown_capacity = 0;
	index->grown_leaf = malloc(cap * sizeof(*index->grown_leaf));
	if (!index->grown_leaf)
		return -ENOMEM;
	for (unsigned int k = 0; k < MAX_LEVELS; k++) {
		unsigned long n = level_size(cap, k);

		index->grown_level[k] = aligned_alloc(64, n * sizeof(uint64_t));
		if (!index->grown_level[k]) {
			free_arrays(index->grown_level, &index->grown_leaf);
			return -ENOMEM;
		}
	}
	index->grown_capacity = cap;
	return 0;
}

/* Move to the arrays a reservation grew, if any: no reader sees the index. */
static void arrays_adopt(struct gfn_index *index)
{
	unsigned long cap = index->grown_capacity;

	if (!cap)
		return;
	for (unsigned int k = 0; k < MAX_LEVELS; k++) {
		unsigned long old = index->level[k] ? level_size(index->capacity, k) : 0;
		unsigned long n = level_size(cap, k);

		if (old)
			memcpy(index->grown_level[k], index->level[k], old * sizeof(uint64_t));
		for (unsigned long i = old; i < n; i++)
			index->grown_level[k][i] = UINT64_MAX;
	}
	if (index->nr_leaves)
		memcpy(index->grown_leaf, index->leaf, index->nr_leaves * sizeof(*index->leaf));
	free_arrays(index->level, &index->leaf);
	memcpy(index->level, index->grown_level, sizeof(index->level));
	index->leaf = index->grown_leaf;
	index->capacity = cap;
	memset(index->grown_level, 0, sizeof(index->grown_level));
	index->grown_leaf = NULL;
	index->grown_capacity = 0;
}

/* Room for `leaves` more leaves and their fences.  0 or -ENOMEM. */
static int reserve_leaves(struct gfn_index *index, unsigned long leaves)
{
	unsigned long need = index->nr_leaves + leaves;

	if (need > index->capacity && need > index->grown_capacity) {
		unsigned long cap = need > 2 * index->capacity ? need : 2 * index->capacity;

		if (arrays_grow(index, cap))
			return -ENOMEM;
	}
	while (index->nr_spares < leaves) {
		struct gfn_leaf *l = aligned_alloc(64, sizeof(*l));

		if (!l)
			return -ENOMEM;
		leaf_give(index, l);
	}
	return 0;
}

struct gfn_index *gfn_index_create(unsigned int max_ids)
{
	struct gfn_index *index = calloc(1, sizeof(*index));

	if (!index)
		return NULL;
	index->max_ids = max_ids;
	index->by_id = calloc(max_ids, sizeof(*index->by_id));
	if (!index->by_id || reserve_leaves(index, 1)) {
		gfn_index_destroy(index);
		return NULL;
	}
	arrays_adopt(index);
	index->leaf[0] = leaf_take(index);
	index->nr_leaves = 1;
	index->levels = 1;
	return index;
}

void gfn_index_destroy(struct gfn_index *index)
{
	for (unsigned long i = 0; i < index->nr_leaves; i++)
		free(index->leaf[i]);
	gfn_index_trim(index);
	while (index->spares)
		free(leaf_take(index));
	free_arrays(index->level, &index->leaf);
	free_arrays(index->grown_level, &index->grown_leaf);
	free(index->by_id);
	free(index);
}

/*
 * Leaves that k insertions can need.  An insertion splits at most one leaf
 * (nothing cascades up), so k; for many insertions that is far too many.
 * A leaf full now splits on its first arrival, any other needs two at
 * least (one to fill it, one to split it); the halves of a split hold at
 * most nine entries and need seven more each; an append split leaves a
 * full leaf behind (one more split on one arrival) and a new leaf that
 * needs fifteen arrivals before the next append split.
 */
static unsigned long leaves_needed(const struct gfn_index *index, unsigned long k)
{
	unsigned long full = 0, others, need;

	if (k <= 2)
		return k;
	for (unsigned long li = 0; li < index->nr_leaves; li++)
		full += index->leaf[li]->nr == LEAF_KEYS;
	others = index->nr_leaves - full;
	need = full + (others < k / 2 ? others : k / 2) + k / 7 + 2 * (k / LEAF_KEYS + 1);
	return need < k ? need : k;
}

int gfn_index_reserve(struct gfn_index *index, unsigned long inserts)
{
	return reserve_leaves(index, leaves_needed(index, inserts));
}

void gfn_index_trim(struct gfn_index *index)
{
	while (index->nr_spares > KEEP_SPARE)
		free(leaf_take(index));
}

unsigned long gfn_index_count(const struct gfn_index *index)
{
	return index->count;
}

unsigned long gfn_index_bytes(const struct gfn_index *index)
{
	unsigned long bytes = index->nr_leaves * sizeof(struct gfn_leaf);

	bytes += index->capacity * sizeof(*index->leaf);
	for (unsigned long n = index->capacity, k = 0; k < MAX_LEVELS; k++, n = groups_of(n))
		bytes += groups_of(n) * GROUP * sizeof(uint64_t);
	return bytes;
}

unsigned long gfn_index_table_bytes(const struct gfn_index *index)
{
	return index->max_ids * sizeof(*index->by_id);
}

unsigned long gfn_index_unreserved(const struct gfn_index *index)
{
	return index->unreserved;
}

/*
 * How many of n sorted keys are <= gfn: every compare independent of the
 * others, summed in four chains.  gfn must be below UINT64_MAX, which the
 * padding would match.
 */
static inline __attribute__((always_inline)) unsigned int count_le(const uint64_t *key,
								   unsigned int n, uint64_t gfn)
{
	unsigned int c[4] = { 0 };

#pragma GCC unroll 16
	for (unsigned int i = 0; i < n; i++) {
		c[i % 4] += key[i] <= gfn;
		/* Or the compiler folds the four chains back into one. */
		__asm__("" : "+r"(c[i % 4]));
	}
	return (c[0] + c[1]) + (c[2] + c[3]);
}

/* The leaf whose fence is the last one <= gfn, for gfn >= the first fence. */
static inline unsigned long leaf_rank_of(const struct gfn_index *index, uint64_t gfn)
{
	unsigned long i = 0;

	for (int k = index->levels - 1; k >= 0; k--)
		i = i * GROUP + count_le(index->level[k] + i * GROUP, GROUP, gfn) - 1;
	return i;
}

/* The same for any gfn: the first leaf if gfn is below every fence. */
static unsigned long fence_rank(const struct gfn_index *index, uint64_t gfn)
{
	return gfn < index->level[0][0] ? 0 : leaf_rank_of(index, gfn);
}

static inline unsigned int leaf_rank(const struct gfn_leaf *l, uint64_t gfn)
{
	return count_le(l->key, LEAF_KEYS, gfn);
}

/* After level 0 changed at and past leaf i: the levels above, from there. */
static void levels_sync(struct gfn_index *index, unsigned long i)
{
	unsigned long n = index->nr_leaves;
	unsigned int k;

	for (k = 1; n > GROUP; k++) {
		unsigned long m = groups_of(n);

		i /= GROUP;
		for (unsigned long j = i; j < m; j++)
			index->level[k][j] = index->level[k - 1][GROUP * j];
		for (unsigned long j = m; j < groups_of(m) * GROUP; j++)
			index->level[k][j] = UINT64_MAX;
		n = m;
	}
	index->levels = k;
}

static void fence_set(struct gfn_index *index, unsigned long li)
{
	index->level[0][li] = index->leaf[li]->key[0];
	levels_sync(index, li);
}

/* The entry holding gfn, and its key in *base; NULL if none does. */
static inline const struct gfn_entry *entry_find(const struct gfn_index *index, uint64_t gfn,
						 uint64_t *base)
{
	const struct gfn_leaf *l;
	unsigned int i;

	/* Below every slot, in an empty index, or the one gfn the padding holds. */
	if (gfn < index->level[0][0] || __builtin_expect(gfn == UINT64_MAX, 0))
		return NULL;
	/* Small VMs (up to fifteen slots) have one leaf and no fences to search. */
	l = index->leaf[index->nr_leaves == 1 ? 0 : leaf_rank_of(index, gfn)];
	/* The entry lines load while the keys are counted, not after. */
	for (i = 0; i < LEAF_KEYS; i += 4)
		__builtin_prefetch(&l->entry[i]);
	i = leaf_rank(l, gfn) - 1;
	*base = l->key[i];
	return gfn < (l->entry[i].info & END_MASK) ? &l->entry[i] : NULL;
}

bool gfn_index_lookup(const struct gfn_index *index, uint64_t gfn, struct gfn_view *view)
{
	uint64_t base;
	const struct gfn_entry *e = entry_find(index, gfn, &base);

	if (!e)
		return false;
	view->base_gfn = base;
	view->npages = (e->info & END_MASK) - base;
	view->userspace_addr = e->hva;
	view->flags = (e->info & INFO_LOG ? MS_MEM_LOG_DIRTY_PAGES : 0) |
		      (e->info & INFO_READONLY ? MS_MEM_READONLY : 0) |
		      (e->info & INFO_INVALID ? MS_MEMSLOT_INVALID : 0);
	view->id = entry_id(e);
	return true;
}

const struct ms_memslot *gfn_index_slot(const struct gfn_index *index, uint16_t id)
{
	return id < index->max_ids ? index->by_id[id] : NULL;
}

const struct ms_memslot *gfn_index_find(const struct gfn_index *index, uint64_t gfn)
{
	uint64_t base;
	const struct gfn_entry *e = entry_find(index, gfn, &base);

	return e ? index->by_id[entry_id(e)] : NULL;
}

void gfn_index_for_each_overlap(const struct gfn_index *index, uint64_t start, uint64_t end,
				gfn_index_visit_fn fn, void *ctx)
{
	unsigned long li;
	unsigned int i;

	if (start >= end || start == UINT64_MAX)
		return;
	li = fence_rank(index, start);
	/* Only the entry before the first start above `start` can reach into it. */
	i = leaf_rank(index->leaf[li], start);
	i = i ? i - 1 : 0;
	for (; li < index->nr_leaves; li++, i = 0) {
		const struct gfn_leaf *l = index->leaf[li];

		for (; i < l->nr; i++) {
			uint64_t slot_end = l->entry[i].info & END_MASK;

			if (l->key[i] >= end)
				return;
			if (slot_end > start && !fn((void *)index->by_id[entry_id(&l->entry[i])],
						    l->key[i], slot_end, ctx))
				return;
		}
	}
}

static void leaf_insert_at(struct gfn_leaf *l, unsigned int i, uint64_t key,
			   const struct gfn_entry *e)
{
	unsigned int tail = l->nr - i;

	memmove(&l->key[i + 1], &l->key[i], tail * sizeof(l->key[0]));
	memmove(&l->entry[i + 1], &l->entry[i], tail * sizeof(l->entry[0]));
	l->key[i] = key;
	l->entry[i] = *e;
	l->nr++;
}

static void leaf_remove_at(struct gfn_leaf *l, unsigned int i)
{
	unsigned int tail = l->nr - i - 1;

	memmove(&l->key[i], &l->key[i + 1], tail * sizeof(l->key[0]));
	memmove(&l->entry[i], &l->entry[i + 1], tail * sizeof(l->entry[0]));
	l->nr--;
	l->key[l->nr] = UINT64_MAX;
}

/* Make room for a leaf after leaf li, with its fence (set by fence_set). */
static void fence_insert(struct gfn_index *index, unsigned long li, struct gfn_leaf *l)
{
	unsigned long tail = index->nr_leaves - li - 1;
	uint64_t *fence = index->level[0];

	memmove(&fence[li + 2], &fence[li + 1], tail * sizeof(fence[0]));
	memmove(&index->leaf[li + 2], &index->leaf[li + 1], tail * sizeof(index->leaf[0]));
	index->leaf[li + 1] = l;
	index->nr_leaves++;
}

static void fence_remove(struct gfn_index *index, unsigned long li)
{
	unsigned long tail = index->nr_leaves - li - 1;
	uint64_t *fence = index->level[0];

	memmove(&fence[li], &fence[li + 1], tail * sizeof(fence[0]));
	memmove(&index->leaf[li], &index->leaf[li + 1], tail * sizeof(index->leaf[0]));
	index->nr_leaves--;
	fence[index->nr_leaves] = UINT64_MAX;
	levels_sync(index, li);
}

/*
 * Split the full leaf li for an insertion at i: halves, except an append to
 * the last leaf, which keeps it full.  Returns the leaf and position to use.
 */
static struct gfn_leaf *leaf_split(struct gfn_index *index, unsigned long li, unsigned int *i)
{
	struct gfn_leaf *l = index->leaf[li], *right;

	/* Unreachable if the reservation is right; then grow here, as no reader sees us. */
	if (index->nr_leaves == index->capacity) {
		if (arrays_grow(index, 2 * index->capacity))
			abort();
		arrays_adopt(index);
		index->unreserved++;
	}
	right = leaf_take(index);
	bool append = li == index->nr_leaves - 1 && *i == LEAF_KEYS;
	unsigned int keep = append ? LEAF_KEYS : (LEAF_KEYS + 1) / 2;

	right->nr = LEAF_KEYS - keep;
	memcpy(right->key, &l->key[keep], right->nr * sizeof(l->key[0]));
	memcpy(right->entry, &l->entry[keep], right->nr * sizeof(l->entry[0]));
	for (unsigned int j = keep; j < LEAF_KEYS; j++)
		l->key[j] = UINT64_MAX;
	l->nr = keep;
	/* The new leaf's fence is set by the caller, with its entry. */
	fence_insert(index, li, right);
	if (*i < keep)
		return l;
	*i -= keep;
	return right;
}

void gfn_index_insert_reserved(struct gfn_index *index, const struct ms_memslot *slot)
{
	uint64_t gfn = slot->base_gfn;
	struct gfn_entry e = entry_of(slot);
	unsigned long li;
	struct gfn_leaf *l;
	unsigned int i;
	bool split;

	arrays_adopt(index);
	li = fence_rank(index, gfn);
	l = index->leaf[li];
	i = leaf_rank(l, gfn);
	split = l->nr == LEAF_KEYS;
	if (split)
		l = leaf_split(index, li, &i);
	leaf_insert_at(l, i, gfn, &e);
	/* The fences change only with a split or a new first key. */
	if (split) {
		index->level[0][li] = index->leaf[li]->key[0];
		index->level[0][li + 1] = index->leaf[li + 1]->key[0];
		levels_sync(index, li);
	} else if (!i) {
		fence_set(index, li);
	}
	index->by_id[slot->id] = slot;
	index->count++;
}

int gfn_index_insert(struct gfn_index *index, const struct ms_memslot *slot)
{
	int r = gfn_index_reserve(index, 1);

	if (!r)
		gfn_index_insert_reserved(index, slot);
	return r;
}

/* Remove slot from leaf li; false if it is not there. */
static bool leaf_remove(struct gfn_index *index, unsigned long li, const struct ms_memslot *slot)
{
	struct gfn_leaf *l = index->leaf[li];

	for (unsigned int i = 0; i < l->nr; i++) {
		if (l->key[i] != slot->base_gfn || entry_id(&l->entry[i]) != slot->id)
			continue;
		leaf_remove_at(l, i);
		if (l->nr || index->nr_leaves == 1) {
			if (!i) /* a new first key, or none */
				fence_set(index, li);
		} else {
			fence_remove(index, li);
			if (index->nr_spares < MAX_SPARE)
				leaf_give(index, l);
			else
				free(l);
		}
		return true;
	}
	return false;
}

bool gfn_index_remove(struct gfn_index *index, const struct ms_memslot *slot)
{
	uint64_t gfn = slot->base_gfn;
	unsigned long li;

	if (gfn == UINT64_MAX)
		return false;
	/* Slots sharing a base gfn (only mid-change) may span leaves. */
	for (li = fence_rank(index, gfn); li > 0 && index->level[0][li] == gfn; li--)
		;
	for (; li < index->nr_leaves && index->level[0][li] <= gfn; li++) {
		if (!leaf_remove(index, li, slot))
			continue;
		if (index->by_id[slot->id] == slot)
			index->by_id[slot->id] = NULL;
		index->count--;
		return true;
	}
	return false;
}
