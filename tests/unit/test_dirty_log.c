/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dirty logging with KVM's API: which writes set bits, what a harvest
 * clears and write-protects, manual protect and initially-set bitmaps, the
 * flag turned on and off, moves and deletes, and KVM's errno for every bad
 * argument.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../common/internal.h"
#include "../common/testutil.h"

#define GPA 0x100000ull
#define PAGES 130 /* three bitmap words, the last one partial */
#define LOG MS_MEM_LOG_DIRTY_PAGES

struct fixture {
	struct ms_vm *vm;
	struct ms_vcpu *vcpu;
	char *h;
};

static void fixture_init(struct fixture *f, bool manual, bool initially_set, uint32_t flags)
{
	struct ms_config cfg;
	struct ms_region r;

	assert_int_equal(ms_config_init(&cfg), 0);
	cfg.manual_dirty_log_protect = manual;
	cfg.dirty_log_initially_set = initially_set;
	assert_int_equal(ms_vm_create(&cfg, &f->vm), 0);
	assert_int_equal(ms_vcpu_create(f->vm, &f->vcpu), 0);
	f->h = test_host_alloc(2 * PAGES);
	r = test_region(0, 0, GPA, PAGES * MS_PAGE_SIZE, f->h, flags);
	assert_int_equal(ms_set_memory_region(f->vm, &r), 0);
}

static void fixture_fini(struct fixture *f)
{
	ms_vcpu_destroy(f->vcpu);
	ms_vm_destroy(f->vm);
	test_host_free(f->h, 2 * PAGES);
}

static void write_page(struct fixture *f, uint64_t page)
{
	assert_int_equal(ms_vcpu_write(f->vcpu, 0, GPA + page * MS_PAGE_SIZE + 8, "x", 1), 0);
}

static void read_page(struct fixture *f, uint64_t page)
{
	char c;

	assert_int_equal(ms_vcpu_read(f->vcpu, 0, GPA + page * MS_PAGE_SIZE, &c, 1), 0);
}

static bool bit(const uint64_t *bitmap, uint64_t page)
{
	return bitmap[page / 64] >> (page % 64) & 1;
}

static unsigned int popcount(const uint64_t *bitmap)
{
	unsigned int n = 0;

	for (int i = 0; i < 3; i++)
		n += __builtin_popcountll(bitmap[i]);
	return n;
}

static bool writable(struct fixture *f, uint64_t page)
{
	uintptr_t spte;

	ms_spte_read_lock(f->vm);
	spte = ms_spte_lookup(&f->vm->mmu, 0, (GPA >> MS_PAGE_SHIFT) + page);
	ms_spte_read_unlock(f->vm);
	return spte & MS_SPTE_WRITABLE;
}

/* Writes set bits, reads do not; a harvest clears, reports and protects. */
static void test_get_clears_and_protects(void **state)
{
	struct fixture f;
	uint64_t bitmap[3] = { 0 };
	uint64_t faults;

	fixture_init(&f, false, false, LOG);
	read_page(&f, 1);
	write_page(&f, 0);
	write_page(&f, 63);
	write_page(&f, 64);
	write_page(&f, 129);
	assert_false(writable(&f, 1)); /* read: mapped read-only, to see the first write */
	assert_true(writable(&f, 0));
	faults = test_stats(f.vm).faults;
	write_page(&f, 0); /* a dirty page's write stays a hit */
	read_page(&f, 1);
	assert_int_equal(test_stats(f.vm).faults, faults);

	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 4);
	assert_true(bit(bitmap, 0) && bit(bitmap, 63) && bit(bitmap, 64) && bit(bitmap, 129));
	assert_false(writable(&f, 0));
	assert_true(test_spte_present(f.vm, 0, (GPA >> MS_PAGE_SHIFT) + 0));

	/* Clean now; the next write faults once and marks again. */
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 0);
	write_page(&f, 0);
	assert_int_equal(test_stats(f.vm).faults, faults + 1);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 1);
	assert_true(bit(bitmap, 0));
	fixture_fini(&f);
}

/* A write across two slots marks a page in each. */
static void test_write_across_slots(void **state)
{
	struct fixture f;
	uint64_t bitmap[3] = { 0 }, next[1] = { 0 };
	struct ms_region r;
	char buf[64] = { 0 };

	fixture_init(&f, false, false, LOG);
	r = test_region(0, 1, GPA + PAGES * MS_PAGE_SIZE, MS_PAGE_SIZE, f.h + PAGES * MS_PAGE_SIZE,
			LOG);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	assert_int_equal(ms_vcpu_write(f.vcpu, 0, GPA + PAGES * MS_PAGE_SIZE - 32, buf, 64), 0);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(ms_get_dirty_log(f.vm, 1, next), 0);
	assert_int_equal(popcount(bitmap), 1);
	assert_true(bit(bitmap, PAGES - 1));
	assert_int_equal(next[0], 1);
	fixture_fini(&f);
}

/* Manual protect: get only reads; clear clears and protects what it is given. */
static void test_manual_protect(void **state)
{
	struct fixture f;
	uint64_t bitmap[3] = { 0 }, clear[3] = { 0 };

	fixture_init(&f, true, false, LOG);
	write_page(&f, 2);
	write_page(&f, 3);
	write_page(&f, 70);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 3);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 3);
	assert_true(writable(&f, 2));

	clear[0] = 1ull << 2;
	assert_int_equal(ms_clear_dirty_log(f.vm, 0, 0, 64, clear), 0);
	assert_false(writable(&f, 2));
	assert_true(writable(&f, 3));
	clear[0] = 1ull << (70 - 64);
	assert_int_equal(ms_clear_dirty_log(f.vm, 0, 64, PAGES - 64, clear), 0);
	assert_false(writable(&f, 70));
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 1);
	assert_true(bit(bitmap, 3));
	fixture_fini(&f);
}

/* Initially set: every bit, and entries stay writable when logging starts. */
static void test_initially_set(void **state)
{
	struct fixture f;
	uint64_t bitmap[3] = { 0 }, all[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX };
	struct ms_region r;

	fixture_init(&f, true, true, 0);
	write_page(&f, 5);
	r = test_region(0, 0, GPA, PAGES * MS_PAGE_SIZE, f.h, LOG);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	assert_true(writable(&f, 5));
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), PAGES);
	assert_int_equal(bitmap[2], 3); /* nothing past the last page */
	assert_int_equal(ms_clear_dirty_log(f.vm, 0, 0, PAGES, all), 0);
	assert_false(writable(&f, 5));
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 0);
	fixture_fini(&f);
}

/* On: entries lose write access; a move keeps the bits; off and delete free them. */
static void test_flag_lifecycle(void **state)
{
	struct fixture f;
	uint64_t bitmap[3] = { 0 };
	struct ms_region r;

	fixture_init(&f, false, false, 0);
	write_page(&f, 9);
	assert_true(writable(&f, 9));
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), -ENOENT);
	r = test_region(0, 0, GPA, PAGES * MS_PAGE_SIZE, f.h, LOG);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	assert_false(writable(&f, 9));
	write_page(&f, 9);
	write_page(&f, 10);

	r.guest_phys_addr = 4 * GPA; /* move: bits kept */
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 2);
	assert_true(bit(bitmap, 9) && bit(bitmap, 10));

	r.flags = 0; /* off */
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), -ENOENT);
	r.flags = LOG; /* on again: a fresh bitmap */
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 0);
	r.memory_size = 0;
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), -ENOENT);
	fixture_fini(&f);
}

/* A write through ms_gfn_to_hva's address, marked by the embedder. */
static void test_mark_page_dirty(void **state)
{
	struct fixture f;
	uint64_t bitmap[3] = { 0 }, hva;

	fixture_init(&f, false, false, LOG);
	assert_int_equal(ms_gfn_to_hva(f.vcpu, 0, (GPA >> MS_PAGE_SHIFT) + 7, true, &hva), 0);
	*(char *)(uintptr_t)hva = 1;
	assert_int_equal(ms_mark_page_dirty(f.vm, 0, (GPA >> MS_PAGE_SHIFT) + 7), 0);
	assert_int_equal(ms_mark_page_dirty(f.vm, 0, GPA >> MS_PAGE_SHIFT >> 1), -EFAULT);
	assert_int_equal(ms_mark_page_dirty(f.vm, 9, 0), -EINVAL);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 1);
	assert_true(bit(bitmap, 7));
	fixture_fini(&f);
}

/* KVM's errno for every bad argument, and nothing changes. */
static void test_errnos(void **state)
{
	struct fixture f;
	uint64_t bitmap[3] = { 0 }, ones[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX };
	struct ms_config cfg;
	struct ms_vm *vm;
	struct ms_region r;

	assert_int_equal(ms_config_init(&cfg), 0);
	cfg.dirty_log_initially_set = true;
	assert_int_equal(ms_vm_create(&cfg, &vm), -EINVAL);

	fixture_init(&f, true, false, LOG);
	r = test_region(0, 1, 8 * GPA, MS_PAGE_SIZE, f.h + PAGES * MS_PAGE_SIZE, 0);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	write_page(&f, 0);
	assert_int_equal(ms_get_dirty_log(NULL, 0, bitmap), -EINVAL);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, NULL), -EINVAL);
	assert_int_equal(ms_get_dirty_log(f.vm, 2 << 16, bitmap), -EINVAL);
	assert_int_equal(ms_get_dirty_log(f.vm, MS_MAX_SLOTS_PER_SPACE, bitmap), -EINVAL);
	assert_int_equal(ms_get_dirty_log(f.vm, 5, bitmap), -ENOENT); /* no such slot */
	assert_int_equal(ms_get_dirty_log(f.vm, 1, bitmap), -ENOENT); /* not logged */
	assert_int_equal(ms_get_dirty_log(f.vm, 1 << 16, bitmap), -ENOENT);

	assert_int_equal(ms_clear_dirty_log(f.vm, 0, 0, 64, NULL), -EINVAL);
	assert_int_equal(ms_clear_dirty_log(f.vm, 2 << 16, 0, 64, ones), -EINVAL);
	assert_int_equal(ms_clear_dirty_log(f.vm, 0, 1, 63, ones), -EINVAL);
	assert_int_equal(ms_clear_dirty_log(f.vm, 5, 0, 64, ones), -ENOENT);
	assert_int_equal(ms_clear_dirty_log(f.vm, 1, 0, 1, ones), -ENOENT);
	assert_int_equal(ms_clear_dirty_log(f.vm, 0, 192, 0, ones), -EINVAL); /* past the end */
	assert_int_equal(ms_clear_dirty_log(f.vm, 0, 64, PAGES, ones), -EINVAL);
	assert_int_equal(ms_clear_dirty_log(f.vm, 0, 0, 65, ones), -EINVAL); /* not to the end */
	assert_int_equal(ms_clear_dirty_log(f.vm, 0, 128, PAGES - 128, ones), 0);
	assert_int_equal(ms_clear_dirty_log(f.vm, 0, 128, 0, NULL), 0);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, bitmap), 0);
	assert_int_equal(popcount(bitmap), 1); /* none of the refused calls cleared page 0 */
	fixture_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_clears_and_protects),
		cmocka_unit_test(test_write_across_slots),
		cmocka_unit_test(test_manual_protect),
		cmocka_unit_test(test_initially_set),
		cmocka_unit_test(test_flag_lifecycle),
		cmocka_unit_test(test_mark_page_dirty),
		cmocka_unit_test(test_errnos),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
