/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Invalidations, single-threaded: lock elision, the in-progress count and
 * sequence, zapping, non-blockable starts, ms_change_pte misuse, the
 * imbalance that only the missing gate allows, and destroy with open starts.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "../common/frames.h"
#include "../common/testutil.h"

#define PAGES 8

struct fixture {
	struct ms_vm *vm;
	struct ms_vcpu *vcpu;
	char *host;
	uint64_t h; /* host address of the slot, as a number */
	struct test_frames frames;
};

static struct fixture *fixture_new(enum ms_gate gate, bool no_elision)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ms_config cfg;
	struct ms_region r;

	ms_config_init(&cfg);
	cfg.gate = gate;
	cfg.no_elision = no_elision;
	cfg.frame_ops = &test_frame_ops;
	cfg.frame_opaque = &f->frames;
	pthread_mutex_init(&f->frames.lock, NULL);
	assert_int_equal(ms_vm_create(&cfg, &f->vm), 0);
	assert_int_equal(ms_vcpu_create(f->vm, &f->vcpu), 0);
	f->host = test_host_alloc(PAGES);
	f->h = (uintptr_t)f->host;
	/* Slot 0 maps the first 4 host pages; the last 4 are in no slot. */
	r = test_region(0, 0, 0x10000, 4 * MS_PAGE_SIZE, f->host, 0);
	assert_int_equal(ms_set_memory_region(f->vm, &r), 0);
	return f;
}

static void fixture_free(struct fixture *f)
{
	ms_vcpu_destroy(f->vcpu);
	ms_vm_destroy(f->vm);
	assert_true(test_frames_balanced(&f->frames));
	test_host_free(f->host, PAGES);
	free(f);
}

static void touch(struct fixture *f, uint64_t gpa)
{
	char c;

	assert_int_equal(ms_vcpu_read(f->vcpu, 0, gpa, &c, 1), 0);
}

static void test_unrelated_range_is_elided(void **state)
{
	struct fixture *f = fixture_new(MS_GATE_COUNT, false);
	uint64_t seq = test_stats(f->vm).mmu_invalidate_seq;

	assert_int_equal(ms_invalidate_range_start(f->vm, f->h + 4 * MS_PAGE_SIZE,
						   f->h + 8 * MS_PAGE_SIZE, true),
			 0);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_in_progress, 0);
	assert_int_equal(test_stats(f->vm).mn_active_invalidate_count, 1);
	ms_invalidate_range_end(f->vm, f->h + 4 * MS_PAGE_SIZE, f->h + 8 * MS_PAGE_SIZE);
	assert_int_equal(test_stats(f->vm).invalidation_starts_elided, 1);
	assert_int_equal(test_stats(f->vm).invalidation_ends_elided, 1);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_seq, seq);
	assert_int_equal(test_stats(f->vm).mn_active_invalidate_count, 0);
	fixture_free(f);
}

static void test_no_elision_takes_the_lock(void **state)
{
	struct fixture *f = fixture_new(MS_GATE_COUNT, true);

	assert_int_equal(ms_invalidate_range_start(f->vm, 0x1000, 0x2000, true), 0);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_in_progress, 1);
	ms_invalidate_range_end(f->vm, 0x1000, 0x2000);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_in_progress, 0);
	assert_int_equal(test_stats(f->vm).invalidation_starts_elided, 0);
	fixture_free(f);
}

static void test_related_range_zaps(void **state)
{
	struct fixture *f = fixture_new(MS_GATE_COUNT, false);
	struct ms_stats st;

	for (int i = 0; i < 4; i++)
		touch(f, 0x10000 + i * MS_PAGE_SIZE);
	assert_int_equal(test_stats(f->vm).entries_present, 4);
	/* Pages 1 and 2, with a range that is not page aligned. */
	assert_int_equal(ms_invalidate_range_start(f->vm, f->h + MS_PAGE_SIZE + 8,
						   f->h + 3 * MS_PAGE_SIZE - 8, true),
			 0);
	st = test_stats(f->vm);
	assert_int_equal(st.mmu_invalidate_in_progress, 1);
	assert_int_equal(st.entries_zapped, 2);
	assert_int_equal(st.entries_present, 2);
	assert_false(test_frames_live_in(&f->frames, f->h + MS_PAGE_SIZE, f->h + 3 * MS_PAGE_SIZE));
	assert_true(test_frames_live_in(&f->frames, f->h, f->h + MS_PAGE_SIZE));
	ms_invalidate_range_end(f->vm, f->h + MS_PAGE_SIZE + 8, f->h + 3 * MS_PAGE_SIZE - 8);
	st = test_stats(f->vm);
	assert_int_equal(st.mmu_invalidate_in_progress, 0);
	assert_int_equal(st.mmu_invalidate_seq, 1);
	assert_int_equal(st.invalidations_started, 1);
	assert_int_equal(st.invalidations_ended, 1);
	fixture_free(f);
}

static void test_nested_overlapping(void **state)
{
	struct fixture *f = fixture_new(MS_GATE_COUNT, false);

	assert_int_equal(ms_invalidate_range_start(f->vm, f->h, f->h + 2 * MS_PAGE_SIZE, true), 0);
	assert_int_equal(
	    ms_invalidate_range_start(f->vm, f->h + MS_PAGE_SIZE, f->h + 3 * MS_PAGE_SIZE, false),
	    0);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_in_progress, 2);
	ms_invalidate_range_end(f->vm, f->h, f->h + 2 * MS_PAGE_SIZE);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_in_progress, 1);
	ms_invalidate_range_end(f->vm, f->h + MS_PAGE_SIZE, f->h + 3 * MS_PAGE_SIZE);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_in_progress, 0);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_seq, 2);
	fixture_free(f);
}

static void test_nonblockable(void **state)
{
	struct fixture *f = fixture_new(MS_GATE_COUNT, false);

	touch(f, 0x10000);
	/* An entry to zap means waiting for vCPUs: refused, nothing changed. */
	assert_int_equal(ms_invalidate_range_start(f->vm, f->h, f->h + MS_PAGE_SIZE, false),
			 -EAGAIN);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_in_progress, 0);
	assert_int_equal(test_stats(f->vm).mn_active_invalidate_count, 0);
	assert_int_equal(test_stats(f->vm).entries_present, 1);
	assert_int_equal(test_stats(f->vm).invalidations_refused, 1);
	/* Nothing there: it proceeds without blocking. */
	assert_int_equal(
	    ms_invalidate_range_start(f->vm, f->h + MS_PAGE_SIZE, f->h + 2 * MS_PAGE_SIZE, false),
	    0);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_in_progress, 1);
	ms_invalidate_range_end(f->vm, f->h + MS_PAGE_SIZE, f->h + 2 * MS_PAGE_SIZE);
	fixture_free(f);
}

static void test_bad_ranges(void **state)
{
	struct fixture *f = fixture_new(MS_GATE_COUNT, false);

	assert_int_equal(ms_invalidate_range_start(f->vm, 0x2000, 0x2000, true), -EINVAL);
	assert_int_equal(ms_invalidate_range_start(f->vm, 0x3000, 0x2000, true), -EINVAL);
	assert_int_equal(ms_invalidate_range_start(NULL, 0x1000, 0x2000, true), -EINVAL);
	assert_int_equal(test_stats(f->vm).mn_active_invalidate_count, 0);
	fixture_free(f);
}

static void test_change_pte_misuse(void **state)
{
	struct fixture *f = fixture_new(MS_GATE_COUNT, false);

	touch(f, 0x10000);
	ms_change_pte(f->vm, f->h);
	ms_change_pte(f->vm, f->h);
	assert_int_equal(test_stats(f->vm).change_pte_misuses, 2);
	assert_int_equal(ms_invalidate_range_start(f->vm, f->h, f->h + MS_PAGE_SIZE, true), 0);
	ms_change_pte(f->vm, f->h);
	ms_invalidate_range_end(f->vm, f->h, f->h + MS_PAGE_SIZE);
	assert_int_equal(test_stats(f->vm).change_pte_misuses, 2);
	fixture_free(f);
}

static void create_over(struct fixture *f, unsigned int id, uint64_t gpa, unsigned int page)
{
	struct ms_region r =
	    test_region(0, id, gpa, MS_PAGE_SIZE, f->host + page * MS_PAGE_SIZE, 0);

	assert_int_equal(ms_set_memory_region(f->vm, &r), 0);
}

/*
 * Without a gate, an update between start and end makes them decide
 * differently.  Created slot: the elided start raised nothing, the end
 * finds nothing to lower: counted, and the count stays at zero.
 */
static void test_no_gate_imbalance_negative(void **state)
{
	struct fixture *f = fixture_new(MS_GATE_NONE, false);
	uint64_t s = f->h + 5 * MS_PAGE_SIZE, e = s + MS_PAGE_SIZE;

	assert_int_equal(ms_invalidate_range_start(f->vm, s, e, true), 0);
	create_over(f, 1, 0x80000, 5);
	ms_invalidate_range_end(f->vm, s, e);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_in_progress, 0);
	assert_int_equal(test_stats(f->vm).in_progress_underflows, 1);
	fixture_free(f);
}

/* Deleted slot: the start raised the count, the elided end never lowers it. */
static void test_no_gate_imbalance_stuck(void **state)
{
	struct fixture *f = fixture_new(MS_GATE_NONE, false);
	struct ms_region del = test_region(0, 0, 0, 0, NULL, 0);

	assert_int_equal(ms_invalidate_range_start(f->vm, f->h, f->h + MS_PAGE_SIZE, true), 0);
	assert_int_equal(ms_set_memory_region(f->vm, &del), 0);
	ms_invalidate_range_end(f->vm, f->h, f->h + MS_PAGE_SIZE);
	assert_int_equal(test_stats(f->vm).mmu_invalidate_in_progress, 1);
	assert_int_equal(test_stats(f->vm).mn_active_invalidate_count, 0);
	fixture_free(f);
}

static void test_destroy_with_open_start(void **state)
{
	enum ms_gate gates[] = { MS_GATE_COUNT, MS_GATE_RWSEM, MS_GATE_NONE };

	for (unsigned int i = 0; i < 3; i++) {
		struct fixture *f = fixture_new(gates[i], false);

		touch(f, 0x10000);
		touch(f, 0x11000);
		assert_int_equal(ms_invalidate_range_start(f->vm, f->h, f->h + MS_PAGE_SIZE, true),
				 0);
		assert_int_equal(ms_invalidate_range_start(f->vm, 0x1000, 0x2000, true), 0);
		assert_int_equal(test_stats(f->vm).mn_active_invalidate_count, 2);
		fixture_free(f); /* returns; frames balanced; ASan sees no leak */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unrelated_range_is_elided),
		cmocka_unit_test(test_no_elision_takes_the_lock),
		cmocka_unit_test(test_related_range_zaps),
		cmocka_unit_test(test_nested_overlapping),
		cmocka_unit_test(test_nonblockable),
		cmocka_unit_test(test_bad_ranges),
		cmocka_unit_test(test_change_pte_misuse),
		cmocka_unit_test(test_no_gate_imbalance_negative),
		cmocka_unit_test(test_no_gate_imbalance_stuck),
		cmocka_unit_test(test_destroy_with_open_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
