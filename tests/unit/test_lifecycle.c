/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Memslot lifecycle: create, flags change, move, delete; lookups at slot
 * boundaries and gaps; address spaces kept apart; generation numbers; the
 * last-used-slot cache; a full address space of 32764 slots.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../common/testutil.h"

#define PAGES 16

struct fixture {
	struct ms_vm *vm;
	struct ms_vcpu *vcpu;
	char *host;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_int_equal(ms_vm_create(NULL, &f->vm), 0);
	assert_int_equal(ms_vcpu_create(f->vm, &f->vcpu), 0);
	f->host = test_host_alloc(PAGES);
	assert_non_null(f->host);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ms_vcpu_destroy(f->vcpu);
	ms_vm_destroy(f->vm);
	test_host_free(f->host, PAGES);
	free(f);
	return 0;
}

static int lookup(struct fixture *f, unsigned int as_id, uint64_t gfn, bool write, uint64_t *hva)
{
	return ms_gfn_to_hva(f->vcpu, as_id, gfn, write, hva);
}

static void set_ok(struct fixture *f, struct ms_region r)
{
	assert_int_equal(ms_set_memory_region(f->vm, &r), 0);
}

static void test_boundaries(void **state)
{
	struct fixture *f = *state;
	uint64_t hva;

	set_ok(f, test_region(0, 3, 0x10000, 4 * MS_PAGE_SIZE, f->host, 0));
	assert_int_equal(lookup(f, 0, 0x10, false, &hva), 0);
	assert_int_equal(hva, (uintptr_t)f->host);
	assert_int_equal(lookup(f, 0, 0x13, true, &hva), 0);
	assert_int_equal(hva, (uintptr_t)f->host + 3 * MS_PAGE_SIZE);
	assert_int_equal(lookup(f, 0, 0x0f, false, &hva), -EFAULT);
	assert_int_equal(lookup(f, 0, 0x14, false, &hva), -EFAULT);
	/* The other address space does not see it. */
	assert_int_equal(lookup(f, 1, 0x10, false, &hva), -EFAULT);
	assert_int_equal(lookup(f, 2, 0x10, false, &hva), -EINVAL);
}

static void test_gaps_and_spaces(void **state)
{
	struct fixture *f = *state;
	uint64_t hva;

	set_ok(f, test_region(0, 0, 0x0, 2 * MS_PAGE_SIZE, f->host, 0));
	set_ok(f, test_region(0, 1, 0x4000, 2 * MS_PAGE_SIZE, f->host + 2 * MS_PAGE_SIZE, 0));
	set_ok(f, test_region(1, 0, 0x0, 2 * MS_PAGE_SIZE, f->host + 8 * MS_PAGE_SIZE, 0));
	assert_int_equal(lookup(f, 0, 1, false, &hva), 0);
	assert_int_equal(hva, (uintptr_t)f->host + MS_PAGE_SIZE);
	assert_int_equal(lookup(f, 0, 2, false, &hva), -EFAULT);
	assert_int_equal(lookup(f, 0, 3, false, &hva), -EFAULT);
	assert_int_equal(lookup(f, 0, 4, false, &hva), 0);
	assert_int_equal(hva, (uintptr_t)f->host + 2 * MS_PAGE_SIZE);
	assert_int_equal(lookup(f, 1, 1, false, &hva), 0);
	assert_int_equal(hva, (uintptr_t)f->host + 9 * MS_PAGE_SIZE);
}

static void test_readonly_lookup(void **state)
{
	struct fixture *f = *state;
	uint64_t hva;

	set_ok(f, test_region(0, 0, 0x0, MS_PAGE_SIZE, f->host, MS_MEM_READONLY));
	assert_int_equal(lookup(f, 0, 0, false, &hva), 0);
	assert_int_equal(lookup(f, 0, 0, true, &hva), -EFAULT);
}

static void test_lifecycle_generations(void **state)
{
	struct fixture *f = *state;
	struct ms_region r = test_region(0, 7, 0x100000, 2 * MS_PAGE_SIZE, f->host, 0);
	uint64_t gen = test_stats(f->vm).generation, hva;

	set_ok(f, r); /* create: one publish */
	assert_int_equal(test_stats(f->vm).generation, gen + 1);
	assert_int_equal(lookup(f, 0, 0x100, false, &hva), 0); /* fills the cache */

	r.flags = MS_MEM_LOG_DIRTY_PAGES; /* flags only: one publish */
	set_ok(f, r);
	assert_int_equal(test_stats(f->vm).generation, gen + 2);

	set_ok(f, r); /* the same again: nothing */
	assert_int_equal(test_stats(f->vm).generation, gen + 2);
	assert_int_equal(test_stats(f->vm).memslot_updates, 2);

	r.guest_phys_addr = 0x200000; /* move: invalid, then final */
	set_ok(f, r);
	assert_int_equal(test_stats(f->vm).generation, gen + 4);
	/* A stale last-used slot would still answer for the old place. */
	assert_int_equal(lookup(f, 0, 0x100, false, &hva), -EFAULT);
	assert_int_equal(lookup(f, 0, 0x201, false, &hva), 0);
	assert_int_equal(hva, (uintptr_t)f->host + MS_PAGE_SIZE);

	r.memory_size = 0; /* delete: invalid, then gone */
	set_ok(f, r);
	assert_int_equal(test_stats(f->vm).generation, gen + 6);
	assert_int_equal(lookup(f, 0, 0x201, false, &hva), -EFAULT);
	assert_int_equal(ms_set_memory_region(f->vm, &r), -EINVAL);
	assert_int_equal(test_stats(f->vm).memslot_updates, 4);
}

static void test_full_address_space(void **state)
{
	struct fixture *f = *state;
	uint64_t hva;

	for (unsigned int id = 0; id < MS_MAX_SLOTS_PER_SPACE; id++)
		set_ok(f, test_region(0, id, (uint64_t)id * 2 * MS_PAGE_SIZE, MS_PAGE_SIZE,
				      f->host + (id % PAGES) * MS_PAGE_SIZE, 0));
	for (unsigned int id = 0; id < MS_MAX_SLOTS_PER_SPACE; id++) {
		assert_int_equal(lookup(f, 0, (uint64_t)id * 2, false, &hva), 0);
		assert_int_equal(hva, (uintptr_t)f->host + (id % PAGES) * MS_PAGE_SIZE);
		assert_int_equal(lookup(f, 0, (uint64_t)id * 2 + 1, false, &hva), -EFAULT);
	}
	for (unsigned int id = 0; id < MS_MAX_SLOTS_PER_SPACE; id++)
		set_ok(f, test_region(0, id, 0, 0, NULL, 0));
	for (unsigned int id = 0; id < MS_MAX_SLOTS_PER_SPACE; id += 97)
		assert_int_equal(lookup(f, 0, (uint64_t)id * 2, false, &hva), -EFAULT);
	assert_int_equal(test_stats(f->vm).memslot_updates, 2 * MS_MAX_SLOTS_PER_SPACE);
}

static void test_config(void **state)
{
	struct ms_config cfg;
	struct ms_vm *vm;

	ms_config_init(&cfg);
	assert_int_equal(cfg.address_spaces, 2);
	assert_int_equal(cfg.slots_per_space, 32764);
	assert_int_equal(cfg.gate, MS_GATE_FAIR);
	assert_false(cfg.no_elision);
	assert_null(cfg.frame_ops);
	cfg.address_spaces = 0;
	assert_int_equal(ms_vm_create(&cfg, &vm), -EINVAL);
	cfg.address_spaces = 1;
	cfg.slots_per_space = MS_MAX_SLOTS_PER_SPACE + 1;
	assert_int_equal(ms_vm_create(&cfg, &vm), -EINVAL);
	cfg.slots_per_space = 8;
	cfg.gate = (enum ms_gate)7;
	assert_int_equal(ms_vm_create(&cfg, &vm), -EINVAL);
	cfg.gate = MS_GATE_RWSEM;
	assert_int_equal(ms_vm_create(&cfg, &vm), 0);
	ms_vm_destroy(vm);
	assert_int_equal(ms_vm_create(&cfg, NULL), -EINVAL);
	assert_int_equal(ms_set_memory_region(NULL, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_boundaries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gaps_and_spaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lifecycle_generations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_address_space, setup, teardown),
		cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
