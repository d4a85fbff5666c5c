/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The secondary MMU seen through vCPU accesses: reads and writes across
 * pages, READONLY, gpas outside every slot, errors from get_frame, and every
 * frame got being put exactly once.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../common/frames.h"
#include "../common/testutil.h"

#define PAGES 8

struct fixture {
	struct ms_vm *vm;
	struct ms_vcpu *vcpu;
	char *host;
	struct test_frames frames;
};

static int setup_with(void **state, bool bounce)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct ms_config cfg;

	ms_config_init(&cfg);
	pthread_mutex_init(&f->frames.lock, NULL);
	if (bounce) {
		cfg.frame_ops = &test_frame_ops;
		cfg.frame_opaque = &f->frames;
	}
	assert_int_equal(ms_vm_create(&cfg, &f->vm), 0);
	assert_int_equal(ms_vcpu_create(f->vm, &f->vcpu), 0);
	f->host = test_host_alloc(PAGES);
	for (unsigned int i = 0; i < PAGES * MS_PAGE_SIZE; i++)
		f->host[i] = (char)(i / MS_PAGE_SIZE + 'a');
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, false);
}

static int setup_bounce(void **state)
{
	return setup_with(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ms_vcpu_destroy(f->vcpu);
	ms_vm_destroy(f->vm);
	assert_true(test_frames_balanced(&f->frames));
	test_host_free(f->host, PAGES);
	free(f);
	return 0;
}

static void map(struct fixture *f, unsigned int id, uint64_t gpa, unsigned int first_page,
		unsigned int pages, uint32_t flags)
{
	struct ms_region r = test_region(0, id, gpa, pages * MS_PAGE_SIZE,
					 f->host + first_page * MS_PAGE_SIZE, flags);

	assert_int_equal(ms_set_memory_region(f->vm, &r), 0);
}

static void test_read_write_across_pages(void **state)
{
	struct fixture *f = *state;
	char buf[64];

	map(f, 0, 0x10000, 0, 4, 0);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x10ff8, buf, 16), 0);
	assert_memory_equal(buf, "aaaaaaaabbbbbbbb", 16);
	assert_int_equal(ms_vcpu_write(f->vcpu, 0, 0x11ffc, "wxyz1234", 8), 0);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x11ffc, buf, 8), 0);
	assert_memory_equal(buf, "wxyz1234", 8);
	/* Second access hits the entries the first faulted in. */
	assert_int_equal(test_stats(f->vm).faults, 3);
	assert_int_equal(test_stats(f->vm).entries_present, 3);
}

static void test_default_frame_is_host_memory(void **state)
{
	struct fixture *f = *state;

	map(f, 0, 0x10000, 0, 1, 0);
	assert_int_equal(ms_vcpu_write(f->vcpu, 0, 0x10010, "host", 4), 0);
	assert_memory_equal(f->host + 0x10, "host", 4);
}

static void test_readonly(void **state)
{
	struct fixture *f = *state;
	char buf[8];

	map(f, 0, 0x10000, 0, 1, 0);
	map(f, 1, 0x11000, 1, 1, MS_MEM_READONLY);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x11000, buf, 4), 0);
	assert_memory_equal(buf, "bbbb", 4);
	assert_int_equal(ms_vcpu_write(f->vcpu, 0, 0x11000, "XXXX", 4), -EFAULT);
	/* Spanning a writable and a READONLY page: nothing is written. */
	assert_int_equal(ms_vcpu_write(f->vcpu, 0, 0x10ffe, "XXXX", 4), -EFAULT);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x10ffe, buf, 4), 0);
	assert_memory_equal(buf, "aabb", 4);
}

static void test_outside_slots(void **state)
{
	struct fixture *f = *state;
	char buf[8];

	map(f, 0, 0x10000, 0, 1, 0);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x20000, buf, 4), -EFAULT);
	assert_int_equal(ms_vcpu_write(f->vcpu, 0, 0x20000, buf, 4), -EFAULT);
	assert_int_equal(ms_vcpu_read(f->vcpu, 1, 0x10000, buf, 4), -EFAULT);
	assert_int_equal(ms_vcpu_read(f->vcpu, 2, 0x10000, buf, 4), -EINVAL);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, UINT64_MAX - 1, buf, 4), -EFAULT);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x10000, NULL, 4), -EINVAL);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x10000, buf, 0), 0);
	assert_int_equal(test_stats(f->vm).entries_present, 0);
}

static void test_bounce_frames(void **state)
{
	struct fixture *f = *state;
	char buf[8];

	map(f, 0, 0x10000, 0, 4, 0);
	assert_int_equal(ms_vcpu_write(f->vcpu, 0, 0x10100, "bnce", 4), 0);
	/* Written to the frame, not to the host page, until the frame is put. */
	assert_memory_equal(f->host + 0x100, "aaaa", 4);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x10100, buf, 4), 0);
	assert_memory_equal(buf, "bnce", 4);
	assert_int_equal(f->frames.got, 1);
	assert_int_equal(ms_invalidate_range_start(f->vm, (uintptr_t)f->host,
						   (uintptr_t)f->host + MS_PAGE_SIZE, true),
			 0);
	assert_int_equal(f->frames.put, 1);
	assert_memory_equal(f->host + 0x100, "bnce", 4);
	ms_invalidate_range_end(f->vm, (uintptr_t)f->host, (uintptr_t)f->host + MS_PAGE_SIZE);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x11000, buf, 4), 0);
	assert_int_equal(f->frames.got, 2); /* put by teardown's destroy */
}

static void test_get_frame_errors(void **state)
{
	struct fixture *f = *state;
	char buf[8];

	map(f, 0, 0x10000, 0, 1, 0);
	f->frames.fail_with = -EIO;
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x10000, buf, 4), -EIO);
	f->frames.fail_with = 0;
	f->frames.misalign = true;
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x10000, buf, 4), -EINVAL);
	f->frames.misalign = false;
	assert_int_equal(test_stats(f->vm).entries_present, 0);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x10000, buf, 4), 0);
	assert_memory_equal(buf, "aaaa", 4);
}

static void test_move_and_delete_zap(void **state)
{
	struct fixture *f = *state;
	struct ms_region r = test_region(0, 0, 0x10000, 2 * MS_PAGE_SIZE, f->host, 0);
	char buf[8];

	assert_int_equal(ms_set_memory_region(f->vm, &r), 0);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x10000, buf, 4), 0);
	r.guest_phys_addr = 0x40000;
	assert_int_equal(ms_set_memory_region(f->vm, &r), 0);
	/* The move zapped the entry of the old place and put its frame. */
	assert_int_equal(test_stats(f->vm).entries_present, 0);
	assert_int_equal(f->frames.put, 1);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x10000, buf, 4), -EFAULT);
	assert_int_equal(ms_vcpu_read(f->vcpu, 0, 0x41000, buf, 4), 0);
	assert_memory_equal(buf, "bbbb", 4);
	r.memory_size = 0;
	assert_int_equal(ms_set_memory_region(f->vm, &r), 0);
	assert_int_equal(test_stats(f->vm).entries_present, 0);
	assert_int_equal(f->frames.put, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_write_across_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_frame_is_host_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outside_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounce_frames, setup_bounce, teardown),
		cmocka_unit_test_setup_teardown(test_get_frame_errors, setup_bounce, teardown),
		cmocka_unit_test_setup_teardown(test_move_and_delete_zap, setup_bounce, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
