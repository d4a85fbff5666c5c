/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slot_index against a reference model (an unsorted array scanned in full):
 * find at and around every boundary, overlap walks in order with early stop,
 * equal starts, random insertion and removal orders, 32764 entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "slot_index.h"

struct entry {
	uint64_t start, end;
	void *value;
};

struct model {
	struct entry *e;
	unsigned int nr;
};

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

struct walk {
	unsigned int visited, stop_after;
	uint64_t last_start;
	bool ordered;
};

static bool walk_visit(void *value, uint64_t start, uint64_t end, void *ctx)
{
	struct walk *w = ctx;

	w->ordered &= start >= w->last_start;
	w->last_start = start;
	return ++w->visited != w->stop_after;
}

static void check_overlaps(struct slot_index *ix, const struct model *m, uint64_t s, uint64_t e)
{
	struct walk w = { .ordered = true };
	unsigned int expected = 0;

	for (unsigned int i = 0; i < m->nr; i++)
		expected += m->e[i].start < e && m->e[i].end > s;
	slot_index_for_each_overlap(ix, s, e, walk_visit, &w);
	assert_int_equal(w.visited, expected);
	assert_true(w.ordered);
	if (expected > 1) {
		w = (struct walk){ .ordered = true, .stop_after = 1 };
		slot_index_for_each_overlap(ix, s, e, walk_visit, &w);
		assert_int_equal(w.visited, 1);
	}
}

static void *model_find(const struct model *m, uint64_t key)
{
	for (unsigned int i = 0; i < m->nr; i++)
		if (m->e[i].start <= key && key < m->e[i].end)
			return m->e[i].value;
	return NULL;
}

static void test_empty(void **state)
{
	struct slot_index *ix = slot_index_create();
	struct walk w = { .ordered = true };

	assert_null(slot_index_find(ix, 0));
	assert_null(slot_index_find(ix, UINT64_MAX - 1));
	slot_index_for_each_overlap(ix, 0, UINT64_MAX, walk_visit, &w);
	assert_int_equal(w.visited, 0);
	assert_false(slot_index_remove(ix, 0, NULL));
	assert_int_equal(slot_index_count(ix), 0);
	slot_index_destroy(ix);
}

static void test_single_entry_boundaries(void **state)
{
	struct slot_index *ix = slot_index_create();
	int v;

	assert_int_equal(slot_index_insert(ix, 100, 110, &v), 0);
	assert_null(slot_index_find(ix, 99));
	assert_ptr_equal(slot_index_find(ix, 100), &v);
	assert_ptr_equal(slot_index_find(ix, 109), &v);
	assert_null(slot_index_find(ix, 110));
	assert_false(slot_index_remove(ix, 100, NULL));
	assert_true(slot_index_remove(ix, 100, &v));
	assert_null(slot_index_find(ix, 100));
	slot_index_destroy(ix);
}

/* Disjoint intervals with gaps, inserted and removed in random order. */
static void test_disjoint_random(void **state)
{
	const unsigned int n = 32764;
	struct slot_index *ix = slot_index_create();
	unsigned int *perm = malloc(n * sizeof(*perm));
	uint64_t x = 88172645463325252ull;

	for (unsigned int i = 0; i < n; i++)
		perm[i] = i;
	for (unsigned int i = n - 1; i > 0; i--) {
		unsigned int j = rnd(&x) % (i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (unsigned int k = 0; k < n; k++)
		assert_int_equal(slot_index_insert(ix, perm[k] * 4ull, perm[k] * 4ull + 2,
						   (void *)(uintptr_t)(perm[k] + 1)),
				 0);
	assert_int_equal(slot_index_count(ix), n);
	for (unsigned int i = 0; i < n; i++) {
		assert_ptr_equal(slot_index_find(ix, i * 4ull), (void *)(uintptr_t)(i + 1));
		assert_ptr_equal(slot_index_find(ix, i * 4ull + 1), (void *)(uintptr_t)(i + 1));
		assert_null(slot_index_find(ix, i * 4ull + 2));
		assert_null(slot_index_find(ix, i * 4ull + 3));
	}
	for (unsigned int k = 0; k < n; k += 2)
		assert_true(
		    slot_index_remove(ix, perm[k] * 4ull, (void *)(uintptr_t)(perm[k] + 1)));
	for (unsigned int k = 0; k < n; k++) {
		void *expect = k % 2 ? (void *)(uintptr_t)(perm[k] + 1) : NULL;

		assert_ptr_equal(slot_index_find(ix, perm[k] * 4ull + 1), expect);
	}
	for (unsigned int k = 1; k < n; k += 2)
		assert_true(
		    slot_index_remove(ix, perm[k] * 4ull, (void *)(uintptr_t)(perm[k] + 1)));
	assert_int_equal(slot_index_count(ix), 0);
	assert_null(slot_index_find(ix, 5));
	free(perm);
	slot_index_destroy(ix);
}

/* Overlapping intervals, many with equal starts, against the model. */
static void test_overlapping_model(void **state)
{
	struct model m = { calloc(4000, sizeof(struct entry)), 0 };
	struct slot_index *ix = slot_index_create();
	uint64_t x = 2463534242ull;

	for (unsigned int i = 0; i < 4000; i++) {
		uint64_t s = rnd(&x) % 3000, e = s + 1 + rnd(&x) % 60;

		m.e[m.nr] = (struct entry){ s, e, (void *)(uintptr_t)(i + 1) };
		assert_int_equal(slot_index_insert(ix, s, e, m.e[m.nr].value), 0);
		m.nr++;
		if (i % 97 == 0)
			check_overlaps(ix, &m, rnd(&x) % 3100, 3100);
	}
	for (unsigned int q = 0; q < 1000; q++) {
		uint64_t s = rnd(&x) % 3100;

		check_overlaps(ix, &m, s, s + 1 + rnd(&x) % 80);
	}
	while (m.nr) {
		unsigned int i = rnd(&x) % m.nr;

		assert_true(slot_index_remove(ix, m.e[i].start, m.e[i].value));
		m.e[i] = m.e[--m.nr];
		if (m.nr % 89 == 0) {
			uint64_t s = rnd(&x) % 3100;

			check_overlaps(ix, &m, s, s + 1 + rnd(&x) % 200);
		}
	}
	assert_int_equal(slot_index_count(ix), 0);
	free(m.e);
	slot_index_destroy(ix);
}

/* Disjoint intervals of random sizes: find agrees with the model everywhere. */
static void test_find_model(void **state)
{
	struct model m = { calloc(600, sizeof(struct entry)), 0 };
	struct slot_index *ix = slot_index_create();
	uint64_t x = 977, next = 0;

	for (unsigned int i = 0; i < 600; i++) {
		uint64_t s = next + rnd(&x) % 3, e = s + 1 + rnd(&x) % 5;

		m.e[m.nr] = (struct entry){ s, e, (void *)(uintptr_t)(i + 1) };
		m.nr++;
		next = e;
	}
	for (unsigned int i = 0; i < m.nr; i++) {
		unsigned int j = rnd(&x) % m.nr;
		struct entry t = m.e[i];

		m.e[i] = m.e[j];
		m.e[j] = t;
	}
	for (unsigned int i = 0; i < m.nr; i++)
		assert_int_equal(slot_index_insert(ix, m.e[i].start, m.e[i].end, m.e[i].value), 0);
	for (uint64_t key = 0; key <= next + 1; key++)
		assert_ptr_equal(slot_index_find(ix, key), model_find(&m, key));
	free(m.e);
	slot_index_destroy(ix);
}

/*
 * A reservation for k insertions covers them, whatever the tree: random
 * and ascending trees, any k, the insertions of reserved entries only.
 */
static void test_reservation_bound(void **state)
{
	uint64_t x = 12345;

	for (int round = 0; round < 60; round++) {
		struct slot_index *ix = slot_index_create();
		unsigned int n = rnd(&x) % 3000, k = 1 + rnd(&x) % 600;
		bool ascending = round & 1;

		for (unsigned int i = 0; i < n; i++) {
			uint64_t s = ascending ? 16 * i : rnd(&x) % (1u << 30);

			assert_int_equal(slot_index_insert(ix, s, s + 1, (void *)(uintptr_t)(i + 1)), 0);
		}
		assert_int_equal(slot_index_reserve(ix, k), 0);
		for (unsigned int i = 0; i < k; i++) {
			uint64_t s = ascending ? 16 * (n + i) : rnd(&x) % (1u << 30);

			slot_index_insert_reserved(ix, s, s + 1, (void *)(uintptr_t)(n + i + 1));
		}
		assert_int_equal(slot_index_unreserved(ix), 0);
		assert_int_equal(slot_index_count(ix), n + k);
		slot_index_destroy(ix);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_single_entry_boundaries),
		cmocka_unit_test(test_disjoint_random),
		cmocka_unit_test(test_overlapping_model),
		cmocka_unit_test(test_find_model),
		cmocka_unit_test(test_reservation_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
