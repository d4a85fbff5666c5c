/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slot_index: a B+tree of half-open intervals [start, end), ordered by
 * (start, value): host ranges of many slots may share a start, and the value
 * breaks the tie so that removing one of them is O(log n) too.  Internal nodes keep, for each
 * child, its smallest start (to descend) and its largest end (to prune overlap walks). Keys sit in
 * contiguous arrays, so a node is searched by a scan over a few cache lines, and leaves keep each
 * entry's end beside its start so that a lookup never touches the value.
 *
 * Removal never allocates: an emptied node is kept as a spare, an underfull
 * one is left as it is, and a root with one child is replaced by it.
 * Insertion makes sure of every node it may need before changing anything;
 * spares are kept between calls, since malloc was most of an update's cost.
 *
 * No locking: see slot_index.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "slot_index.h"

/* Measured at 32764 random lookups: 8 beats 16 and 32 (docs/design.md). */
#define SLOT_INDEX_FANOUT 8
#define SLOT_INDEX_MAX_HEIGHT 24
/* Spares kept between updates; a transaction may reserve more for a while. */
#define SLOT_INDEX_MAX_SPARE (2 * (SLOT_INDEX_MAX_HEIGHT + 2))
/*
 * Spares a transaction's reservation leaves behind that are kept for the
 * next one (160 KiB at most): allocating and freeing them again was most
 * of a batch's cost.
 */
#define SLOT_INDEX_KEEP_SPARE 512

struct slot_index_node {
	/* Leaves: entry starts.  Internal: each child's smallest start. */
	uint64_t start[SLOT_INDEX_FANOUT];
	/* Leaves: entry ends.  Internal: each child's largest end. */
	uint64_t end[SLOT_INDEX_FANOUT];
	union {
		void *value[SLOT_INDEX_FANOUT];
		struct slot_index_node *child[SLOT_INDEX_FANOUT];
	};
	/* Internal: the value of each child's smallest entry, to break ties. */
	void *first_value[SLOT_INDEX_FANOUT];
	unsigned int nr;
	bool leaf;
} __attribute__((aligned(64)));

/* Nodes insertions may need, allocated before they change anything: a list through child[0]. */
struct node_reserve {
	unsigned long nr;
	struct slot_index_node *head;
	unsigned long unreserved; /* nodes taken past the reservation */
};

struct slot_index {
	struct slot_index_node *root;
	unsigned int height; /* 1: the root is a leaf */
	unsigned long count;
	/* Kept between insertions: most need none, and malloc is the cost. */
	struct node_reserve spare;
};

/* Unused starts hold UINT64_MAX, above every gfn and host address. */
static void node_pad(struct slot_index_node *n)
{
	for (unsigned int i = n->nr; i < SLOT_INDEX_FANOUT; i++)
		n->start[i] = UINT64_MAX;
}

static struct slot_index_node *node_alloc(void)
{
	return aligned_alloc(64, sizeof(struct slot_index_node));
}

static void node_give(struct node_reserve *res, struct slot_index_node *n)
{
	n->child[0] = res->head;
	res->head = n;
	res->nr++;
}

static struct slot_index_node *node_take(struct node_reserve *res, bool leaf)
{
	struct slot_index_node *n = res->head;

	if (!n) {
		/* Unreachable if nodes_needed() is right; better late than a crash. */
		n = node_alloc();
		if (!n)
			abort();
		res->unreserved++;
		n->child[0] = NULL;
		res->nr++;
	}
	res->head = n->child[0];
	res->nr--;
	n->nr = 0;
	n->leaf = leaf;
	node_pad(n);
	return n;
}

struct slot_index *slot_index_create(void)
{
	struct slot_index *index = calloc(1, sizeof(*index));

	if (!index)
		return NULL;
	index->root = node_alloc();
	if (!index->root) {
		free(index);
		return NULL;
	}
	index->root->nr = 0;
	index->root->leaf = true;
	node_pad(index->root);
	index->height = 1;
	return index;
}

static void node_destroy(struct slot_index_node *n)
{
	if (!n->leaf)
		for (unsigned int i = 0; i < n->nr; i++)
			node_destroy(n->child[i]);
	free(n);
}

void slot_index_destroy(struct slot_index *index)
{
	while (index->spare.nr)
		free(node_take(&index->spare, true));
	node_destroy(index->root);
	free(index);
}

unsigned long slot_index_count(const struct slot_index *index)
{
	return index->count;
}

unsigned long slot_index_unreserved(const struct slot_index *index)
{
	return index->spare.unreserved;
}

/*
 * How many of the node's starts are <= key.  Unused slots hold UINT64_MAX,
 * so the scan has a fixed length: unrolled, no branch on the node's size,
 * every compare independent of the others.  The key must be below
 * UINT64_MAX, which the padding would match.
 */
static unsigned int node_rank(const struct slot_index_node *n, uint64_t key)
{
	unsigned int rank = 0;

	for (unsigned int i = 0; i < SLOT_INDEX_FANOUT; i++)
		rank += n->start[i] <= key;
	return rank;
}

static bool entry_le(uint64_t start_a, const void *value_a, uint64_t start_b, const void *value_b)
{
	return start_a < start_b ||
	       (start_a == start_b && (uintptr_t)value_a <= (uintptr_t)value_b);
}

/* How many of the node's (start, value) pairs are <= (start, value). */
static unsigned int node_rank_entry(const struct slot_index_node *n, uint64_t start,
				    const void *value)
{
	void *const *values = n->leaf ? n->value : n->first_value;
	unsigned int rank = 0;

	for (unsigned int i = 0; i < n->nr; i++)
		rank += entry_le(n->start[i], values[i], start, value);
	return rank;
}

void *slot_index_find(const struct slot_index *index, uint64_t key)
{
	const struct slot_index_node *n = index->root;
	unsigned int rank;

	/*
	 * No interval holds UINT64_MAX (ends are exclusive), and only it would
	 * match the padding: one compare here instead of a clamp at every level.
	 */
	if (__builtin_expect(key == UINT64_MAX, 0))
		return NULL;
	/* By height, not by the leaf flag: that flag is one cache line more per level. */
	for (unsigned int level = index->height; level > 1; level--) {
		rank = node_rank(n, key);
		if (!rank)
			return NULL;
		n = n->child[rank - 1];
	}
	rank = node_rank(n, key);
	if (!rank || key >= n->end[rank - 1])
		return NULL;
	return n->value[rank - 1];
}

static bool node_visit_overlap(const struct slot_index_node *n, uint64_t start, uint64_t end,
			       slot_index_visit_fn fn, void *ctx)
{
	for (unsigned int i = 0; i < n->nr && n->start[i] < end; i++) {
		if (n->end[i] <= start)
			continue;
		if (n->leaf ? !fn(n->value[i], n->start[i], n->end[i], ctx)
			    : !node_visit_overlap(n->child[i], start, end, fn, ctx))
			return false;
	}
	return true;
}

void slot_index_for_each_overlap(const struct slot_index *index, uint64_t start, uint64_t end,
				 slot_index_visit_fn fn, void *ctx)
{
	node_visit_overlap(index->root, start, end, fn, ctx);
}

/* Refresh the summary (smallest start, largest end) of child i of n. */
static void node_update_child(struct slot_index_node *n, unsigned int i)
{
	const struct slot_index_node *c = n->child[i];
	uint64_t max = 0;

	for (unsigned int j = 0; j < c->nr; j++)
		max = c->end[j] > max ? c->end[j] : max;
	n->start[i] = c->start[0];
	n->end[i] = max;
	n->first_value[i] = c->leaf ? c->value[0] : c->first_value[0];
}

static void node_insert_at(struct slot_index_node *n, unsigned int i, uint64_t start, uint64_t end,
			   void *ptr)
{
	unsigned int tail = n->nr - i;

	memmove(&n->start[i + 1], &n->start[i], tail * sizeof(n->start[0]));
	memmove(&n->end[i + 1], &n->end[i], tail * sizeof(n->end[0]));
	memmove(&n->value[i + 1], &n->value[i], tail * sizeof(n->value[0]));
	memmove(&n->first_value[i + 1], &n->first_value[i], tail * sizeof(n->first_value[0]));
	n->start[i] = start;
	n->end[i] = end;
	n->value[i] = ptr;
	n->nr++;
}

static void node_remove_at(struct slot_index_node *n, unsigned int i)
{
	unsigned int tail = n->nr - i - 1;

	memmove(&n->start[i], &n->start[i + 1], tail * sizeof(n->start[0]));
	memmove(&n->end[i], &n->end[i + 1], tail * sizeof(n->end[0]));
	memmove(&n->value[i], &n->value[i + 1], tail * sizeof(n->value[0]));
	memmove(&n->first_value[i], &n->first_value[i + 1], tail * sizeof(n->first_value[0]));
	n->nr--;
	n->start[n->nr] = UINT64_MAX;
}

/*
 * Move the upper half of a full node into a new right sibling; for an
 * append to the right edge (ascending insertions), move nothing, so that
 * the node stays full and the new one takes the entry.
 */
static struct slot_index_node *node_split(struct slot_index_node *n, struct node_reserve *res,
					  bool append)
{
	struct slot_index_node *right = node_take(res, n->leaf);
	unsigned int half = append ? n->nr : n->nr / 2;

	right->nr = n->nr - half;
	memcpy(right->start, &n->start[half], right->nr * sizeof(n->start[0]));
	memcpy(right->end, &n->end[half], right->nr * sizeof(n->end[0]));
	memcpy(right->value, &n->value[half], right->nr * sizeof(n->value[0]));
	memcpy(right->first_value, &n->first_value[half], right->nr * sizeof(n->first_value[0]));
	n->nr = half;
	node_pad(n);
	return right;
}

/*
 * Insert below n; returns the new right sibling if n had to split.
 * rightmost: n is the last node of its level.
 */
static struct slot_index_node *node_insert(struct slot_index_node *n, uint64_t start, uint64_t end,
					   void *value, struct node_reserve *res, bool rightmost)
{
	unsigned int rank = node_rank_entry(n, start, value), i;
	struct slot_index_node *split;

	if (n->leaf) {
		i = rank;
		split = n->nr == SLOT_INDEX_FANOUT
			    ? node_split(n, res, rightmost && i == SLOT_INDEX_FANOUT)
			    : NULL;
		if (split && i >= n->nr && (i > n->nr || !split->nr))
			node_insert_at(split, i - n->nr, start, end, value);
		else
			node_insert_at(n, i, start, end, value);
		return split;
	}
	i = rank ? rank - 1 : 0;
	split = node_insert(n->child[i], start, end, value, res, rightmost && i == n->nr - 1);
	node_update_child(n, i);
	if (!split)
		return NULL;
	if (n->nr < SLOT_INDEX_FANOUT) {
		node_insert_at(n, i + 1, 0, 0, split);
		node_update_child(n, i + 1);
		return NULL;
	}
	{
		struct slot_index_node *right =
		    node_split(n, res, rightmost && i + 1 == SLOT_INDEX_FANOUT);
		struct slot_index_node *into = i + 1 > n->nr || !right->nr ? right : n;
		unsigned int at = into == right ? i + 1 - n->nr : i + 1;

		node_insert_at(into, at, 0, 0, split);
		node_update_child(into, at);
		return right;
	}
}

/*
 * The tallest the tree can grow in k more insertions.  Only a root split
 * adds a level, and it needs a full root; after one, the new root has two
 * children and needs six more splits below it to split again, and each of
 * those levels in turn needs at least twice as many insertions as the one
 * above: k insertions add at most 2 + log2(k) levels.
 */
static unsigned long height_bound(const struct slot_index *index, unsigned long k)
{
	unsigned long h = index->height + 2;

	for (; k >= 2; k /= 2)
		h++;
	return h;
}

static unsigned long count_full(const struct slot_index_node *n, unsigned int height)
{
	unsigned long full = n->nr == SLOT_INDEX_FANOUT;

	if (height > 1)
		for (unsigned int i = 0; i < n->nr; i++)
			full += count_full(n->child[i], height - 1);
	return full;
}

/*
 * Nodes that k insertions can need.  One insertion splits at most one node
 * per level and may add a root: k * (height + 1).  For many insertions that
 * is far too many.  Count the splits of one level instead: a node full at
 * the start splits on one arrival; any other needs two at least (one to
 * fill it, one to split it), and the halves of a split need four more; an
 * append split leaves a full node behind (one more split on one arrival),
 * but its new node needs eight arrivals before the next append split.  So
 * a level's splits are at most its full nodes + 1 + (1/2 + 1/7) of the
 * entries arriving from below, and summed over the levels at most
 * 2.8 * (full nodes + levels) + 1.8 * k: 3 * (full + height + 1) + 2k.
 */
static unsigned long nodes_needed(const struct slot_index *index, unsigned long k,
				  unsigned long height)
{
	unsigned long naive = k * (height + 1), counted;

	if (k <= 2)
		return naive;
	counted = 3 * (count_full(index->root, index->height) + height + 1) + 2 * k;
	return counted < naive ? counted : naive;
}

int slot_index_reserve(struct slot_index *index, unsigned long inserts)
{
	struct node_reserve *res = &index->spare;
	unsigned long h = height_bound(index, inserts), need;

	if (h > SLOT_INDEX_MAX_HEIGHT)
		return -ENOMEM;
	need = nodes_needed(index, inserts, h);
	while (res->nr < need) {
		struct slot_index_node *n = node_alloc();

		if (!n)
			return -ENOMEM;
		node_give(res, n);
	}
	return 0;
}

void slot_index_trim(struct slot_index *index)
{
	while (index->spare.nr > SLOT_INDEX_KEEP_SPARE)
		free(node_take(&index->spare, true));
}

int slot_index_insert(struct slot_index *index, uint64_t start, uint64_t end, void *value)
{
	int r = slot_index_reserve(index, 1);

	if (!r)
		slot_index_insert_reserved(index, start, end, value);
	return r;
}

void slot_index_insert_reserved(struct slot_index *index, uint64_t start, uint64_t end, void *value)
{
	struct node_reserve *res = &index->spare;
	struct slot_index_node *split, *root;

	split = node_insert(index->root, start, end, value, res, true);
	if (split) {
		root = node_take(res, false);
		root->child[0] = index->root;
		root->child[1] = split;
		root->nr = 2;
		node_update_child(root, 0);
		node_update_child(root, 1);
		index->root = root;
		index->height++;
	}
	index->count++;
}

/* An emptied node goes back to the spares, or to malloc if they are full. */
static void node_release(struct slot_index *index, struct slot_index_node *n)
{
	if (index->spare.nr < SLOT_INDEX_MAX_SPARE)
		node_give(&index->spare, n);
	else
		free(n);
}

/* Remove (start, value) below n; false if it is not there. */
static bool node_remove(struct slot_index *index, struct slot_index_node *n, uint64_t start,
			void *value)
{
	unsigned int rank = node_rank_entry(n, start, value), i = rank - 1;

	if (!rank)
		return false;
	if (n->leaf) {
		if (n->start[i] != start || n->value[i] != value)
			return false;
		node_remove_at(n, i);
		return true;
	}
	if (!node_remove(index, n->child[i], start, value))
		return false;
	if (n->child[i]->nr) {
		node_update_child(n, i);
	} else {
		node_release(index, n->child[i]);
		node_remove_at(n, i);
	}
	return true;
}

bool slot_index_remove(struct slot_index *index, uint64_t start, void *value)
{
	struct slot_index_node *root = index->root;

	if (!node_remove(index, root, start, value))
		return false;
	index->count--;
	while (!root->leaf && root->nr == 1) {
		index->root = root->child[0];
		node_release(index, root);
		root = index->root;
		index->height--;
	}
	if (!root->nr) {
		root->leaf = true;
		index->height = 1;
	}
	return true;
}
