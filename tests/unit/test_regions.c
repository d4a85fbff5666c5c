/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Region queries: the slot holding a gpa, one slot by number, the map in
 * gpa order with -ENOSPC when it does not fit, bad arguments, and snapshots
 * that a concurrent update never tears.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../common/testutil.h"

#define GPA 0x100000ull

static void set_region(struct ms_vm *vm, uint32_t slot, uint64_t gpa, uint64_t pages,
		       const char *hva, uint32_t flags)
{
	struct ms_region r = test_region(slot >> 16, slot & 0xffff, gpa, pages * MS_PAGE_SIZE,
					 hva, flags);

	assert_int_equal(ms_set_memory_region(vm, &r), 0);
}

static void test_queries(void **state)
{
	struct ms_vm *vm;
	char *h = test_host_alloc(16);
	struct ms_region r, map[4];
	size_t n;

	assert_int_equal(ms_vm_create(NULL, &vm), 0);
	/* Created out of gpa order; the map comes back in it. */
	set_region(vm, 7, 4 * GPA, 2, h + 2 * MS_PAGE_SIZE, MS_MEM_READONLY);
	set_region(vm, 3, GPA, 1, h, MS_MEM_LOG_DIRTY_PAGES);
	set_region(vm, 1 << 16 | 3, GPA, 1, h, 0);

	assert_int_equal(ms_find_region(vm, 0, 4 * GPA + MS_PAGE_SIZE + 5, &r), 0);
	assert_int_equal(r.slot, 7);
	assert_int_equal(r.flags, MS_MEM_READONLY);
	assert_int_equal(r.guest_phys_addr, 4 * GPA);
	assert_int_equal(r.memory_size, 2 * MS_PAGE_SIZE);
	assert_int_equal(r.userspace_addr, (uintptr_t)h + 2 * MS_PAGE_SIZE);
	assert_int_equal(ms_find_region(vm, 0, 4 * GPA + 2 * MS_PAGE_SIZE, &r), -ENOENT);
	assert_int_equal(ms_find_region(vm, 0, UINT64_MAX, &r), -ENOENT);
	assert_int_equal(ms_find_region(vm, 1, GPA, &r), 0);
	assert_int_equal(r.slot, 1 << 16 | 3);

	assert_int_equal(ms_get_region(vm, 3, &r), 0);
	assert_int_equal(r.guest_phys_addr, GPA);
	assert_int_equal(r.flags, MS_MEM_LOG_DIRTY_PAGES);
	assert_int_equal(ms_get_region(vm, 4, &r), -ENOENT);

	assert_int_equal(ms_get_memory_map(vm, 0, map, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(map[0].slot, 3);
	assert_int_equal(map[1].slot, 7);
	assert_int_equal(ms_get_memory_map(vm, 0, map, 1, &n), -ENOSPC);
	assert_int_equal(n, 2);
	assert_int_equal(map[0].slot, 3);
	assert_int_equal(ms_get_memory_map(vm, 0, NULL, 0, &n), -ENOSPC);
	assert_int_equal(n, 2);

	assert_int_equal(ms_find_region(vm, 2, GPA, &r), -EINVAL);
	assert_int_equal(ms_find_region(vm, 0, GPA, NULL), -EINVAL);
	assert_int_equal(ms_get_region(vm, 2 << 16, &r), -EINVAL);
	assert_int_equal(ms_get_region(vm, MS_MAX_SLOTS_PER_SPACE, &r), -EINVAL);
	assert_int_equal(ms_get_memory_map(vm, 0, NULL, 1, &n), -EINVAL);
	assert_int_equal(ms_get_memory_map(vm, 0, map, 4, NULL), -EINVAL);
	assert_int_equal(ms_get_memory_map(NULL, 0, map, 4, &n), -EINVAL);
	ms_vm_destroy(vm);
	test_host_free(h, 16);
}

struct mover {
	pthread_t thread;
	struct ms_vm *vm;
	char *h;
	atomic_bool stop;
};

/* Slot 1 moves between two places; slot 2 is created and deleted. */
static void *mover_main(void *arg)
{
	struct mover *m = arg;

	for (unsigned int i = 0; !atomic_load(&m->stop); i++) {
		struct ms_region r = test_region(0, 1, (i & 1 ? 8 : 2) * GPA, MS_PAGE_SIZE, m->h, 0);

		assert_int_equal(ms_set_memory_region(m->vm, &r), 0);
		r = test_region(0, 2, 16 * GPA, i & 1 ? 0 : MS_PAGE_SIZE, m->h + MS_PAGE_SIZE, 0);
		assert_int_equal(ms_set_memory_region(m->vm, &r), 0);
	}
	return NULL;
}

/* Every map read during updates is one of the states the updates go through. */
static void test_snapshots_under_updates(void **state)
{
	struct mover m = { .h = test_host_alloc(2) };
	struct ms_region map[4];
	size_t n;

	assert_int_equal(ms_vm_create(NULL, &m.vm), 0);
	set_region(m.vm, 0, GPA, 1, m.h, 0);
	pthread_create(&m.thread, NULL, mover_main, &m);
	for (int i = 0; i < 20000; i++) {
		assert_int_equal(ms_get_memory_map(m.vm, 0, map, 4, &n), 0);
		assert_true(n >= 1 && n <= 3);
		assert_int_equal(map[0].slot, 0);
		for (size_t k = 1; k < n; k++) {
			assert_true(map[k].guest_phys_addr > map[k - 1].guest_phys_addr);
			assert_true(map[k].slot == 1 || map[k].slot == 2);
		}
	}
	atomic_store(&m.stop, true);
	pthread_join(m.thread, NULL);
	ms_vm_destroy(m.vm);
	test_host_free(m.h, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queries),
		cmocka_unit_test(test_snapshots_under_updates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
