/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MS_GATE_FAIR, property by property: starts and ends never wait for an
 * update; a start and its end make one decision even when an update lands
 * in between; an update waits only for elided invalidations of the memory
 * it newly covers that were open before it announced itself, so later
 * invalidations, overlapping ones included, never hold it; and a thread
 * cannot wait for itself.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../common/internal.h"
#include "../common/testutil.h"

#define GPA 0x100000ull

struct fixture {
	struct ms_vm *vm;
	char *h;
	uint64_t s; /* host address of h */
};

static void fixture_init(struct fixture *f, enum ms_gate gate)
{
	struct ms_config cfg;

	assert_int_equal(ms_config_init(&cfg), 0);
	cfg.gate = gate;
	assert_int_equal(ms_vm_create(&cfg, &f->vm), 0);
	f->h = test_host_alloc(16);
	f->s = (uintptr_t)f->h;
}

static void fixture_fini(struct fixture *f)
{
	ms_vm_destroy(f->vm);
	test_host_free(f->h, 16);
}

static uint64_t page(const struct fixture *f, unsigned int i)
{
	return f->s + i * MS_PAGE_SIZE;
}

struct update_thread {
	pthread_t thread;
	struct ms_vm *vm;
	struct ms_region r;
	int result;
	atomic_bool done;
};

static void *update_main(void *arg)
{
	struct update_thread *u = arg;

	u->result = ms_set_memory_region(u->vm, &u->r);
	atomic_store(&u->done, true);
	return NULL;
}

static void start_update(struct update_thread *u, struct fixture *f, unsigned int id,
			 unsigned int first_page)
{
	*u = (struct update_thread){ .vm = f->vm };
	u->r = test_region(0, id, GPA + id * 16 * MS_PAGE_SIZE, MS_PAGE_SIZE,
			   f->h + first_page * MS_PAGE_SIZE, 0);
	pthread_create(&u->thread, NULL, update_main, u);
}

static void finish_update(struct update_thread *u)
{
	pthread_join(u->thread, NULL);
	assert_int_equal(u->result, 0);
}

/*
 * A create over memory with an elided invalidation open waits for its end,
 * and only for it: invalidations that arrive later over the same memory
 * (which see the announcement and take mmu_lock), over other memory, and
 * non-blockable ones, start and end without waiting, and the update is
 * through while later ones are still open.  The count gate would wait for
 * every one of them.
 */
static void test_update_waits_only_for_older_overlapping(void **state)
{
	struct fixture f;
	struct update_thread u;
	uint64_t elided;

	fixture_init(&f, MS_GATE_FAIR);
	assert_int_equal(ms_invalidate_range_start(f.vm, page(&f, 0), page(&f, 1), true), 0);
	assert_int_equal(test_stats(f.vm).invalidation_starts_elided, 1);
	start_update(&u, &f, 1, 0);
	assert_true(test_wait_until(test_stats(f.vm).gate_waiters == 1));

	elided = test_stats(f.vm).invalidation_starts_elided;
	/* Later, overlapping: not elided, and not waited for. */
	assert_int_equal(ms_invalidate_range_start(f.vm, page(&f, 0), page(&f, 2), true), 0);
	assert_int_equal(test_stats(f.vm).invalidation_starts_elided, elided);
	assert_int_equal(test_stats(f.vm).mmu_invalidate_in_progress, 1);
	/* Unrelated ones, blockable or not, come and go. */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(ms_invalidate_range_start(f.vm, page(&f, 8), page(&f, 9), i & 1),
				 0);
		ms_invalidate_range_end(f.vm, page(&f, 8), page(&f, 9));
	}
	assert_false(atomic_load(&u.done));

	/* The first one's end releases the update; the later one is still open. */
	ms_invalidate_range_end(f.vm, page(&f, 0), page(&f, 1));
	finish_update(&u);
	assert_int_equal(test_stats(f.vm).mn_active_invalidate_count, 1);
	ms_invalidate_range_end(f.vm, page(&f, 0), page(&f, 2));
	assert_int_equal(test_stats(f.vm).mmu_invalidate_in_progress, 0);
	assert_int_equal(test_stats(f.vm).in_progress_underflows, 0);
	fixture_fini(&f);
}

/* Creates elsewhere, deletes, moves and flag changes wait for no invalidation. */
static void test_unrelated_updates_do_not_wait(void **state)
{
	struct fixture f;
	struct ms_region r;

	fixture_init(&f, MS_GATE_FAIR);
	r = test_region(0, 0, GPA, MS_PAGE_SIZE, f.h, 0);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	/* One elided invalidation elsewhere, one that locked over slot 0's page. */
	assert_int_equal(ms_invalidate_range_start(f.vm, page(&f, 4), page(&f, 5), true), 0);
	assert_int_equal(ms_invalidate_range_start(f.vm, page(&f, 0), page(&f, 1), true), 0);
	assert_int_equal(test_stats(f.vm).mmu_invalidate_in_progress, 1);

	/* This thread holds both; an update that waited would hang here. */
	r = test_region(0, 1, 2 * GPA, MS_PAGE_SIZE, f.h + 8 * MS_PAGE_SIZE, 0);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0); /* create elsewhere */
	r = test_region(0, 0, GPA, MS_PAGE_SIZE, f.h, MS_MEM_LOG_DIRTY_PAGES);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0); /* flags */
	r.guest_phys_addr = 3 * GPA;
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0); /* move */
	r.memory_size = 0;
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0); /* delete */
	assert_int_equal(test_stats(f.vm).memslot_updates, 5);

	/* The end follows its start: it locks though the slot is gone. */
	ms_invalidate_range_end(f.vm, page(&f, 0), page(&f, 1));
	ms_invalidate_range_end(f.vm, page(&f, 4), page(&f, 5));
	assert_int_equal(test_stats(f.vm).mmu_invalidate_in_progress, 0);
	assert_int_equal(test_stats(f.vm).in_progress_underflows, 0);
	assert_int_equal(test_stats(f.vm).invalidation_ends_elided, 1);
	fixture_fini(&f);
}

/* The same order under the upstream gate: the delete waits for both ends. */
static void test_count_gate_delete_waits(void **state)
{
	struct fixture f;
	struct update_thread u;
	struct ms_region r;

	fixture_init(&f, MS_GATE_COUNT);
	r = test_region(0, 0, GPA, MS_PAGE_SIZE, f.h, 0);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	assert_int_equal(ms_invalidate_range_start(f.vm, page(&f, 4), page(&f, 5), true), 0);
	u = (struct update_thread){ .vm = f.vm, .r = test_region(0, 0, 0, 0, NULL, 0) };
	pthread_create(&u.thread, NULL, update_main, &u);
	assert_true(test_wait_until(test_stats(f.vm).gate_waiters == 1));
	assert_false(atomic_load(&u.done));
	ms_invalidate_range_end(f.vm, page(&f, 4), page(&f, 5));
	finish_update(&u);
	fixture_fini(&f);
}

/* A create over memory this thread invalidates (elided) would wait for itself. */
static void test_own_elided_invalidation(void **state)
{
	struct fixture f;
	struct ms_region r;

	fixture_init(&f, MS_GATE_FAIR);
	assert_int_equal(ms_invalidate_range_start(f.vm, page(&f, 0) + 100, page(&f, 0) + 200, true),
			 0);
	r = test_region(0, 0, GPA, 2 * MS_PAGE_SIZE, f.h, 0);
	assert_int_equal(ms_set_memory_region(f.vm, &r), -EDEADLK);
	assert_int_equal(test_stats(f.vm).memslot_updates, 0);
	r.userspace_addr = page(&f, 1);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	ms_invalidate_range_end(f.vm, page(&f, 0) + 100, page(&f, 0) + 200);
	assert_int_equal(test_stats(f.vm).unmatched_ends, 0);
	fixture_fini(&f);
}

/* Deeper than the records: untracked starts lock, and their ends match them. */
static void test_deep_nesting(void **state)
{
	struct fixture f;
	enum { DEPTH = 20 };

	fixture_init(&f, MS_GATE_FAIR);
	for (int i = 0; i < DEPTH; i++)
		assert_int_equal(ms_invalidate_range_start(f.vm, page(&f, 3), page(&f, 4), true),
				 0);
	assert_int_equal(test_stats(f.vm).mn_active_invalidate_count, DEPTH);
	assert_true(test_stats(f.vm).mmu_invalidate_in_progress > 0);
	for (int i = 0; i < DEPTH; i++)
		ms_invalidate_range_end(f.vm, page(&f, 3), page(&f, 4));
	assert_int_equal(test_stats(f.vm).mn_active_invalidate_count, 0);
	assert_int_equal(test_stats(f.vm).mmu_invalidate_in_progress, 0);
	assert_int_equal(test_stats(f.vm).unmatched_ends, 0);
	ms_invalidate_range_end(f.vm, page(&f, 3), page(&f, 4));
	assert_int_equal(test_stats(f.vm).unmatched_ends, 1);
	fixture_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_update_waits_only_for_older_overlapping),
		cmocka_unit_test(test_unrelated_updates_do_not_wait),
		cmocka_unit_test(test_count_gate_delete_waits),
		cmocka_unit_test(test_own_elided_invalidation),
		cmocka_unit_test(test_deep_nesting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
