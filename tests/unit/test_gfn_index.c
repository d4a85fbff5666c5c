/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gfn_index against a reference model (an array of slots scanned in full):
 * find, lookup views and overlap walks at and around every boundary, random
 * and ascending insertion, removal in random order down to empty, slots
 * sharing a base gfn while a set changes, more leaves than one level of
 * fences holds, the reservation bound, and the memory of 32764 slots.
 */
#include <pthread.h>
#include <setjmp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "gfn_index.h"
#include "vm.h"

#define MAX_IDS 65535

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The slots in the index, in no order. */
struct model {
	struct ms_memslot **slot;
	unsigned int nr;
};

static const struct ms_memslot *model_find(const struct model *m, uint64_t gfn)
{
	for (unsigned int i = 0; i < m->nr; i++)
		if (gfn >= m->slot[i]->base_gfn && gfn - m->slot[i]->base_gfn < m->slot[i]->npages)
			return m->slot[i];
	return NULL;
}

static void check_gfn(const struct gfn_index *ix, const struct model *m, uint64_t gfn)
{
	const struct ms_memslot *want = model_find(m, gfn);
	struct gfn_view v;

	assert_ptr_equal(gfn_index_find(ix, gfn), want);
	assert_int_equal(gfn_index_lookup(ix, gfn, &v), want != NULL);
	if (!want)
		return;
	assert_int_equal(v.base_gfn, want->base_gfn);
	assert_int_equal(v.npages, want->npages);
	assert_int_equal(v.userspace_addr, want->userspace_addr);
	assert_int_equal(v.flags, want->flags);
	assert_int_equal(v.id, want->id);
	assert_ptr_equal(gfn_index_slot(ix, v.id), want);
}

/* Every slot's first and last gfn and the gfns on either side. */
static void check_all(const struct gfn_index *ix, const struct model *m)
{
	assert_int_equal(gfn_index_count(ix), m->nr);
	for (unsigned int i = 0; i < m->nr; i++) {
		const struct ms_memslot *s = m->slot[i];

		if (s->base_gfn)
			check_gfn(ix, m, s->base_gfn - 1);
		check_gfn(ix, m, s->base_gfn);
		check_gfn(ix, m, s->base_gfn + s->npages - 1);
		check_gfn(ix, m, s->base_gfn + s->npages);
	}
	check_gfn(ix, m, 0);
	check_gfn(ix, m, UINT64_MAX);
	check_gfn(ix, m, UINT64_MAX - 1);
}

struct walk {
	unsigned int visited, stop_after;
	uint64_t last_start;
	bool ordered;
};

static bool walk_visit(void *slot, uint64_t start, uint64_t end, void *ctx)
{
	const struct ms_memslot *s = slot;
	struct walk *w = ctx;

	w->ordered &=
	    start >= w->last_start && s->base_gfn == start && s->base_gfn + s->npages == end;
	w->last_start = start;
	return ++w->visited != w->stop_after;
}

static void check_overlaps(const struct gfn_index *ix, const struct model *m, uint64_t s,
			   uint64_t e)
{
	struct walk w = { .ordered = true };
	unsigned int expected = 0;

	for (unsigned int i = 0; i < m->nr; i++)
		expected += s < e && m->slot[i]->base_gfn < e &&
			    m->slot[i]->base_gfn + m->slot[i]->npages > s;
	gfn_index_for_each_overlap(ix, s, e, walk_visit, &w);
	assert_int_equal(w.visited, expected);
	assert_true(w.ordered);
	if (expected > 1) {
		w = (struct walk){ .ordered = true, .stop_after = 1 };
		gfn_index_for_each_overlap(ix, s, e, walk_visit, &w);
		assert_int_equal(w.visited, 1);
	}
}

/* n disjoint slots with gaps, ids 0..n-1, in slot order. */
static struct ms_memslot *slots_make(unsigned int n, uint64_t *x)
{
	struct ms_memslot *slots = calloc(n, sizeof(*slots));
	uint64_t next = 0;

	for (unsigned int i = 0; i < n; i++) {
		struct ms_memslot *s = &slots[i];

		s->base_gfn = next + rnd(x) % 3;
		s->npages = 1 + rnd(x) % 4;
		s->userspace_addr = 0x7f0000000000ull + ((uint64_t)i << 20);
		s->flags = (unsigned int)(rnd(x) % 4) |
			   (rnd(x) % 8 ? 0 : (unsigned int)MS_MEMSLOT_INVALID);
		s->id = (uint16_t)i;
		next = s->base_gfn + s->npages;
	}
	return slots;
}

static void shuffle(unsigned int *perm, unsigned int n, uint64_t *x)
{
	for (unsigned int i = 0; i < n; i++)
		perm[i] = i;
	for (unsigned int i = n - 1; i > 0; i--) {
		unsigned int j = rnd(x) % (i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
}

static void test_empty(void **state)
{
	struct gfn_index *ix = gfn_index_create(MAX_IDS);
	struct model m = { NULL, 0 };
	struct ms_memslot s = { .base_gfn = 5, .npages = 1 };

	check_all(ix, &m);
	check_overlaps(ix, &m, 0, UINT64_MAX);
	assert_false(gfn_index_remove(ix, &s));
	assert_null(gfn_index_slot(ix, 0));
	assert_null(gfn_index_slot(ix, MAX_IDS));
	gfn_index_destroy(ix);
}

/* Sizes that fill one leaf, one group of fences, and several levels. */
static void test_model_sizes(void **state)
{
	static const unsigned int sizes[] = { 1, 2, 15, 16, 31, 240, 241, 3841, 9000 };
	uint64_t x = 88172645463325252ull;

	for (unsigned int k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		unsigned int n = sizes[k], *perm = malloc(n * sizeof(*perm));
		struct ms_memslot *slots = slots_make(n, &x);
		struct model live = { calloc(n, sizeof(*live.slot)), n };
		struct gfn_index *ix = gfn_index_create(MAX_IDS);

		/* Ascending for even sizes, random for odd. */
		shuffle(perm, n, &x);
		for (unsigned int i = 0; i < n; i++) {
			unsigned int j = n % 2 ? perm[i] : i;

			assert_int_equal(gfn_index_insert(ix, &slots[j]), 0);
			live.slot[i] = &slots[i];
		}
		check_all(ix, &live);
		for (unsigned int q = 0; q < 200; q++) {
			uint64_t s = rnd(&x) % (slots[n - 1].base_gfn + 8);

			check_overlaps(ix, &live, s, s + 1 + rnd(&x) % 40);
		}
		check_overlaps(ix, &live, 0, UINT64_MAX);
		/* Remove in random order; the model keeps the survivors in front. */
		for (unsigned int i = 0; i < n; i++) {
			unsigned int j = perm[i];

			for (unsigned int p = 0; p < live.nr; p++) {
				if (live.slot[p] != &slots[j])
					continue;
				assert_true(gfn_index_remove(ix, &slots[j]));
				assert_false(gfn_index_remove(ix, &slots[j]));
				live.slot[p] = live.slot[--live.nr];
				break;
			}
			if (i % (n / 7 + 1) == 0)
				check_all(ix, &live);
		}
		check_all(ix, &live);
		assert_int_equal(gfn_index_count(ix), 0);
		gfn_index_destroy(ix);
		free(live.slot);
		free(slots);
		free(perm);
	}
}

/* Mid-change a new slot may be added before the one it replaces goes. */
static void test_shared_base(void **state)
{
	struct gfn_index *ix = gfn_index_create(MAX_IDS);
	struct ms_memslot *s = calloc(64, sizeof(*s));

	for (unsigned int i = 0; i < 32; i++)
		s[i] = (struct ms_memslot){ .base_gfn = 100, .npages = 1, .id = (uint16_t)i };
	for (unsigned int i = 32; i < 64; i++)
		s[i] =
		    (struct ms_memslot){ .base_gfn = 1000 + 2 * i, .npages = 1, .id = (uint16_t)i };
	for (unsigned int i = 0; i < 64; i++)
		assert_int_equal(gfn_index_insert(ix, &s[(i * 37) % 64]), 0);
	for (unsigned int i = 31; i > 0; i--)
		assert_true(gfn_index_remove(ix, &s[i]));
	assert_ptr_equal(gfn_index_find(ix, 100), &s[0]);
	for (unsigned int i = 32; i < 64; i++)
		assert_ptr_equal(gfn_index_find(ix, 1000 + 2 * i), &s[i]);
	gfn_index_destroy(ix);
	free(s);
}

/* The widest gfns a slot may have: ends up to 2^40 (52-bit guest addresses). */
static void test_boundaries(void **state)
{
	struct gfn_index *ix = gfn_index_create(MAX_IDS);
	struct ms_memslot s[3] = {
		{ .base_gfn = 0, .npages = 1, .userspace_addr = 0x1000, .id = 0 },
		{ .base_gfn = (1ull << 39), .npages = 1ull << 39, .id = 1 },
		{ .base_gfn = 7, .npages = 1, .flags = MS_MEM_READONLY, .id = MAX_IDS - 1 },
	};
	struct ms_memslot *p[3] = { &s[0], &s[1], &s[2] };
	struct model m = { p, 3 };

	for (int i = 0; i < 3; i++)
		assert_int_equal(gfn_index_insert(ix, &s[i]), 0);
	check_all(ix, &m);
	check_gfn(ix, &m, (1ull << 40) - 1);
	check_gfn(ix, &m, 1ull << 40);
	check_overlaps(ix, &m, (1ull << 40) - 1, UINT64_MAX);
	gfn_index_destroy(ix);
}

/*
 * A reservation for k insertions covers them, whatever the index: random
 * and ascending, any k, the insertions of reserved slots only.
 */
static void test_reservation_bound(void **state)
{
	uint64_t x = 12345;

	for (int round = 0; round < 60; round++) {
		unsigned int n = rnd(&x) % 3000, k = 1 + rnd(&x) % 600;
		struct ms_memslot *s = calloc(n + k, sizeof(*s));
		struct gfn_index *ix = gfn_index_create(MAX_IDS);
		bool ascending = round & 1;

		for (unsigned int i = 0; i < n + k; i++)
			s[i] = (struct ms_memslot){
				.base_gfn = ascending ? 16 * i : rnd(&x) % (1u << 30),
				.npages = 1,
				.id = (uint16_t)i,
			};
		for (unsigned int i = 0; i < n; i++)
			assert_int_equal(gfn_index_insert(ix, &s[i]), 0);
		assert_int_equal(gfn_index_reserve(ix, k), 0);
		for (unsigned int i = n; i < n + k; i++)
			gfn_index_insert_reserved(ix, &s[i]);
		assert_int_equal(gfn_index_unreserved(ix), 0);
		assert_int_equal(gfn_index_count(ix), n + k);
		gfn_index_trim(ix);
		gfn_index_destroy(ix);
		free(s);
	}
}

struct reader {
	const struct gfn_index *ix;
	const struct ms_memslot *slots;
	unsigned int n;
	_Atomic bool stop;
	_Atomic unsigned long wrong, lookups;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	while (!atomic_load(&r->stop)) {
		for (unsigned int i = 0; i < r->n; i++) {
			struct gfn_view v;

			if (!gfn_index_lookup(r->ix, r->slots[i].base_gfn, &v) ||
			    v.id != r->slots[i].id)
				atomic_fetch_add(&r->wrong, 1);
		}
		atomic_fetch_add(&r->lookups, r->n);
	}
	return NULL;
}

/*
 * A reservation runs on the published set too (both sets are reserved
 * before the first publish): it must not move or free what a lookup reads.
 * Under ASan, or with MALLOC_PERTURB_ (meson test sets it), a reservation
 * that reallocated the fences in place fails here.
 */
static void test_reserve_while_reading(void **state)
{
	const unsigned int n = 3000;
	struct ms_memslot *s = calloc(n, sizeof(*s));
	struct gfn_index *ix = gfn_index_create(MAX_IDS);
	struct reader r = { .ix = ix, .slots = s, .n = n };
	pthread_t t;

	for (unsigned int i = 0; i < n; i++) {
		s[i] = (struct ms_memslot){ .base_gfn = 3ull * i, .npages = 2, .id = (uint16_t)i };
		assert_int_equal(gfn_index_insert(ix, &s[i]), 0);
	}
	pthread_create(&t, NULL, reader_main, &r);
	while (atomic_load(&r.lookups) < n)
		sched_yield();
	for (unsigned int k = 1; k <= 64; k++) {
		assert_int_equal(gfn_index_reserve(ix, 500 * k), 0);
		gfn_index_trim(ix);
	}
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&r.wrong), 0);
	gfn_index_destroy(ix);
	free(s);
}

/* What issue-sized VMs cost: 32764 one-page slots, ascending, under 1 MiB. */
static void test_memory(void **state)
{
	const unsigned int n = 32764;
	struct ms_memslot *s = calloc(n, sizeof(*s));
	struct gfn_index *ix = gfn_index_create(n);

	for (unsigned int i = 0; i < n; i++) {
		s[i] = (struct ms_memslot){ .base_gfn = 2ull * i, .npages = 1, .id = (uint16_t)i };
		assert_int_equal(gfn_index_insert(ix, &s[i]), 0);
	}
	assert_true(gfn_index_bytes(ix) <= 1024 * 1024);
	gfn_index_destroy(ix);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_model_sizes),
		cmocka_unit_test(test_shared_base),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_reservation_bound),
		cmocka_unit_test(test_reserve_while_reading),
		cmocka_unit_test(test_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
