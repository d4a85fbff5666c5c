/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Memory-map transactions: each change checked against the map the changes
 * before it leave, all or nothing with the failing index, the number of
 * publishes, the whole-map form, and the promise that matters: a vCPU
 * reading a BAR while it moves never finds a hole, where separate calls
 * leave one.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <cmocka.h>

#include "../common/testutil.h"

#define GPA 0x100000ull
#define P MS_PAGE_SIZE

static struct ms_vm *vm_new(void)
{
	struct ms_vm *vm;

	assert_int_equal(ms_vm_create(NULL, &vm), 0);
	return vm;
}

static struct ms_region reg(unsigned int id, uint64_t gpa, uint64_t pages, const char *h,
			    uint32_t flags)
{
	return test_region(0, id, gpa, pages * P, h, flags);
}

static size_t map_of(struct ms_vm *vm, struct ms_region *map, size_t max)
{
	size_t n;

	assert_int_equal(ms_get_memory_map(vm, 0, map, max, &n), 0);
	return n;
}

/* Later changes see earlier ones: a gpa freed is taken, a slot changes twice. */
static void test_sequential_rules(void **state)
{
	struct ms_vm *vm = vm_new();
	char *h = test_host_alloc(8);
	struct ms_region map[4];
	struct ms_region txn[] = {
		reg(0, GPA, 2, h, 0),			     /* create */
		reg(0, 0, 0, NULL, 0),			     /* delete it again */
		reg(1, GPA, 2, h + 2 * P, 0),		     /* its gpa, taken */
		reg(1, GPA, 2, h + 2 * P, MS_MEM_LOG_DIRTY_PAGES), /* flags */
		reg(1, 4 * GPA, 2, h + 2 * P, MS_MEM_LOG_DIRTY_PAGES), /* move */
		reg(2, GPA, 1, h + 4 * P, 0),		     /* the freed gpa again */
	};
	uint64_t gen = test_stats(vm).generation;
	size_t failed = 99;

	assert_int_equal(ms_set_memory_regions(vm, txn, 6, &failed), 0);
	assert_int_equal(failed, 99);
	assert_int_equal(map_of(vm, map, 4), 2);
	assert_int_equal(map[0].slot, 2);
	assert_int_equal(map[1].slot, 1);
	assert_int_equal(map[1].guest_phys_addr, 4 * GPA);
	assert_int_equal(map[1].flags, MS_MEM_LOG_DIRTY_PAGES);
	assert_int_equal(test_stats(vm).generation, gen + 1); /* creates only: one publish */
	assert_int_equal(test_stats(vm).memslot_updates, 2);
	ms_vm_destroy(vm);
	test_host_free(h, 8);
}

/* A bad change anywhere: KVM's errno, its index, and nothing applied. */
static void test_all_or_nothing(void **state)
{
	struct ms_vm *vm = vm_new();
	char *h = test_host_alloc(8);
	struct ms_region map[4];
	struct ms_region first = reg(0, GPA, 2, h, 0);
	struct ms_region overlap[] = { reg(5, 8 * GPA, 1, h, 0), reg(0, 0, 0, NULL, 0),
				       reg(6, 8 * GPA, 1, h, 0) };
	struct ms_region bad[] = { reg(5, 8 * GPA, 1, h, 0), reg(0, GPA + 1, 2, h, 0) };
	struct ms_region grow[] = { reg(0, GPA, 3, h, 0) };
	struct ms_region missing[] = { reg(7, 0, 0, NULL, 0) };
	uint64_t gen;
	size_t failed;

	assert_int_equal(ms_set_memory_region(vm, &first), 0);
	gen = test_stats(vm).generation;
	assert_int_equal(ms_set_memory_regions(vm, overlap, 3, &failed), -EEXIST);
	assert_int_equal(failed, 2);
	assert_int_equal(ms_set_memory_regions(vm, bad, 2, &failed), -EINVAL);
	assert_int_equal(failed, 1);
	assert_int_equal(ms_set_memory_regions(vm, grow, 1, &failed), -EINVAL);
	assert_int_equal(failed, 0);
	assert_int_equal(ms_set_memory_regions(vm, missing, 1, NULL), -EINVAL);
	assert_int_equal(ms_set_memory_regions(NULL, grow, 1, &failed), -EINVAL);
	assert_int_equal(ms_set_memory_regions(vm, NULL, 1, &failed), -EINVAL);
	assert_int_equal(ms_set_memory_regions(vm, NULL, 0, &failed), 0);
	assert_int_equal(test_stats(vm).generation, gen);
	assert_int_equal(map_of(vm, map, 4), 1);
	assert_int_equal(map[0].slot, 0);
	assert_int_equal(map[0].guest_phys_addr, GPA);
	ms_vm_destroy(vm);
	test_host_free(h, 8);
}

/* Many deletes and moves: two publishes in all, and the map as asked. */
static void test_two_publishes(void **state)
{
	enum { K = 64 };
	struct ms_vm *vm = vm_new();
	char *h = test_host_alloc(K);
	struct ms_region txn[K];
	struct ms_region map[K];
	uint64_t gen;

	for (int i = 0; i < K; i++) {
		txn[i] = reg(i, GPA + i * P, 1, h + i * P, 0);
		assert_int_equal(ms_set_memory_region(vm, &txn[i]), 0);
	}
	gen = test_stats(vm).generation;
	for (int i = 0; i < K; i++)
		txn[i] = i & 1 ? reg(i, 0, 0, NULL, 0) : reg(i, 16 * GPA + i * P, 1, h + i * P, 0);
	assert_int_equal(ms_set_memory_regions(vm, txn, K, NULL), 0);
	assert_int_equal(test_stats(vm).generation, gen + 2);
	assert_int_equal(map_of(vm, map, K), K / 2);
	for (int i = 0; i < K / 2; i++)
		assert_int_equal(map[i].guest_phys_addr, 16 * GPA + 2 * i * P);
	ms_vm_destroy(vm);
	test_host_free(h, K);
}

/* The map becomes exactly the list; a bad entry's index is the list's. */
static void test_replace_memory_map(void **state)
{
	struct ms_vm *vm = vm_new();
	char *h = test_host_alloc(8);
	struct ms_region map[4];
	struct ms_region old[] = { reg(0, GPA, 1, h, 0), reg(1, 2 * GPA, 1, h + P, 0) };
	struct ms_region table[] = { reg(1, 2 * GPA, 1, h + P, 0), reg(3, GPA, 2, h + 4 * P, 0) };
	struct ms_region bad[] = { reg(3, GPA, 2, h + 4 * P, 0), reg(4, GPA, 1, h, 0) };
	size_t failed;

	assert_int_equal(ms_set_memory_regions(vm, old, 2, NULL), 0);
	assert_int_equal(ms_replace_memory_map(vm, table, 2, &failed), 0);
	assert_int_equal(map_of(vm, map, 4), 2);
	assert_int_equal(map[0].slot, 3); /* slot 0's gpa, taken once it was deleted */
	assert_int_equal(map[1].slot, 1);
	assert_int_equal(ms_replace_memory_map(vm, bad, 2, &failed), -EEXIST);
	assert_int_equal(failed, 1);
	assert_int_equal(map_of(vm, map, 4), 2);
	assert_int_equal(ms_replace_memory_map(vm, NULL, 0, &failed), 0);
	assert_int_equal(map_of(vm, map, 4), 0);
	ms_vm_destroy(vm);
	test_host_free(h, 8);
}

struct bar_reader {
	pthread_t thread;
	struct ms_vm *vm;
	atomic_bool stop;
	atomic_ulong reads, holes;
};

/*
 * The BAR is at GPA or at 8 * GPA.  A snapshot of the map shows it in one
 * place or the other (no hole), and a vCPU reads it where the snapshot
 * says, or waits and finds it gone only if it moved meanwhile.
 */
static void *bar_reader_main(void *arg)
{
	struct bar_reader *b = arg;
	struct ms_vcpu *vcpu;
	struct ms_region map[2];
	uint64_t word;
	size_t n;

	assert_int_equal(ms_vcpu_create(b->vm, &vcpu), 0);
	while (!atomic_load(&b->stop)) {
		if (ms_get_memory_map(b->vm, 0, map, 2, &n) || n != 1) {
			atomic_fetch_add(&b->holes, 1);
			continue;
		}
		ms_vcpu_read(vcpu, 0, map[0].guest_phys_addr, &word, sizeof(word));
		atomic_fetch_add(&b->reads, 1);
	}
	ms_vcpu_destroy(vcpu);
	return NULL;
}

static unsigned long bar_holes(bool split)
{
	struct ms_vm *vm = vm_new();
	char *h = test_host_alloc(4);
	struct bar_reader b = { .vm = vm };
	struct ms_region bar = reg(0, GPA, 2, h, 0);
	unsigned long holes;

	assert_int_equal(ms_set_memory_region(vm, &bar), 0);
	pthread_create(&b.thread, NULL, bar_reader_main, &b);
	/* 2000 moves, and on (split) until the reader has looked in a gap. */
	for (int i = 0; i < 2000 || (split && !atomic_load(&b.holes) && i < 200000); i++) {
		/* Delete and re-create elsewhere under another slot number. */
		struct ms_region txn[] = { reg(i & 1, 0, 0, NULL, 0),
					   reg(!(i & 1), i & 1 ? GPA : 8 * GPA, 2, h, 0) };

		if (split) {
			assert_int_equal(ms_set_memory_region(vm, &txn[0]), 0);
			assert_int_equal(ms_set_memory_region(vm, &txn[1]), 0);
		} else {
			assert_int_equal(ms_set_memory_regions(vm, txn, 2, NULL), 0);
		}
	}
	atomic_store(&b.stop, true);
	pthread_join(b.thread, NULL);
	holes = atomic_load(&b.holes);
	ms_vm_destroy(vm);
	test_host_free(h, 4);
	return holes;
}

static void test_bar_move_has_no_hole(void **state)
{
	assert_int_equal(bar_holes(false), 0);
}

/* The check above can see a hole: separate calls leave one. */
static void test_split_bar_move_has_holes(void **state)
{
	assert_true(bar_holes(true) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequential_rules),
		cmocka_unit_test(test_all_or_nothing),
		cmocka_unit_test(test_two_publishes),
		cmocka_unit_test(test_replace_memory_map),
		cmocka_unit_test(test_bar_move_has_no_hole),
		cmocka_unit_test(test_split_bar_move_has_holes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
