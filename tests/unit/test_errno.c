/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ms_set_memory_region returns what Linux KVM's KVM_SET_USER_MEMORY_REGION
 * returns on x86-64 for the same arguments, table-driven: every -EINVAL of
 * the arguments alone (flags, alignment of size, gpa and hva, the user
 * address space, address-space and slot ids, gpa wrap, 2^31-1 pages), then
 * the overlap check (-EEXIST), then x86's 52-bit limit on create and move;
 * deleting a missing slot, changing size, hva or READONLY of an existing
 * one (-EINVAL); the same arguments again (0, nothing changes).  A failed
 * call changes nothing: lookups, generation and update count are compared.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../common/testutil.h"

#define P MS_PAGE_SIZE
#define USER_END 0x7ffffffff000ull
#define HVA 0x10000000ull /* the library never touches slot memory here */
#define S(as, id) ((as) << 16 | (id))

struct row {
	const char *name;
	struct ms_region r;
	int expect;
};

/*
 * Before each row: slot 1 at gpa 0x100000 and slot 2 (READONLY) at 0x200000,
 * 16 pages each; slot 1 of address space 1; slot 3 just below 2^52.
 */
static const struct ms_region base[] = {
	{ S(0, 1), 0, 0x100000, 16 * P, HVA },
	{ S(0, 2), MS_MEM_READONLY, 0x200000, 16 * P, HVA + 16 * P },
	{ S(1, 1), 0, 0x100000, 16 * P, HVA },
	{ S(0, 3), 0, (1ull << 52) - 64 * P, 16 * P, HVA },
};

static const struct row rows[] = {
	/* -EINVAL for the arguments alone */
	{ "unknown flag", { S(0, 5), 1u << 2, 0x400000, P, HVA }, -EINVAL },
	{ "high flag", { S(0, 5), 1u << 31, 0x400000, P, HVA }, -EINVAL },
	{ "size unaligned", { S(0, 5), 0, 0x400000, P + 1, HVA }, -EINVAL },
	{ "gpa unaligned", { S(0, 5), 0, 0x400001, P, HVA }, -EINVAL },
	{ "hva unaligned", { S(0, 5), 0, 0x400000, P, HVA + 8 }, -EINVAL },
	{ "hva ends at the user limit", { S(0, 5), 0, 0x400000, P, USER_END - P }, 0 },
	{ "hva one page past the user limit",
	  { S(0, 5), 0, 0x400000, 2 * P, USER_END - P },
	  -EINVAL },
	{ "hva in the kernel half", { S(0, 5), 0, 0x400000, P, 0xffff800000000000ull }, -EINVAL },
	{ "hva + size wraps", { S(0, 5), 0, 0x400000, 2 * P, 0xfffffffffffff000ull }, -EINVAL },
	{ "address space 2 of 2", { S(2, 5), 0, 0x400000, P, HVA }, -EINVAL },
	{ "last slot id", { S(0, 32763), 0, 0x400000, P, HVA }, 0 },
	{ "slot id 32764", { S(0, 32764), 0, 0x400000, P, HVA }, -EINVAL },
	{ "slot id 65535", { S(0, 65535), 0, 0x400000, P, HVA }, -EINVAL },
	{ "gpa + size wraps", { S(0, 5), 0, 0xfffffffffffff000ull, 2 * P, HVA }, -EINVAL },
	{ "2^31 pages", { S(0, 5), 0, 0, 1ull << 43, HVA }, -EINVAL },
	{ "2^31 - 1 pages", { S(0, 5), 0, 0, (1ull << 43) - P, HVA }, -EEXIST },
	{ "unaligned size of 0 still checked", { S(0, 1), 0, 0x100001, 0, HVA }, -EINVAL },
	/* delete */
	{ "delete a slot that does not exist", { S(0, 9), 0, 0, 0, 0 }, -EINVAL },
	{ "delete", { S(0, 1), 0, 0, 0, 0 }, 0 },
	{ "delete ignores the other fields", { S(0, 1), 0, 0x7000, 0, HVA + P }, 0 },
	/* changes to an existing slot */
	{ "same arguments again", { S(0, 1), 0, 0x100000, 16 * P, HVA }, 0 },
	{ "change the size", { S(0, 1), 0, 0x100000, 8 * P, HVA }, -EINVAL },
	{ "change the hva", { S(0, 1), 0, 0x100000, 16 * P, HVA + P }, -EINVAL },
	{ "set READONLY", { S(0, 1), MS_MEM_READONLY, 0x100000, 16 * P, HVA }, -EINVAL },
	{ "clear READONLY", { S(0, 2), 0, 0x200000, 16 * P, HVA + 16 * P }, -EINVAL },
	{ "flags only: dirty logging",
	  { S(0, 1), MS_MEM_LOG_DIRTY_PAGES, 0x100000, 16 * P, HVA },
	  0 },
	{ "move", { S(0, 1), 0, 0x800000, 16 * P, HVA }, 0 },
	/* overlap, on create and move */
	{ "create overlapping by one page at the end",
	  { S(0, 5), 0, 0x100000 - P, 2 * P, HVA },
	  -EEXIST },
	{ "create overlapping by one page at the start",
	  { S(0, 5), 0, 0x10f000, 2 * P, HVA },
	  -EEXIST },
	{ "create touching below", { S(0, 5), 0, 0x100000 - P, P, HVA }, 0 },
	{ "create touching above", { S(0, 5), 0, 0x110000, P, HVA }, 0 },
	{ "create inside", { S(0, 5), 0, 0x104000, P, HVA }, -EEXIST },
	{ "create covering", { S(0, 5), 0, 0, 64 * P * 1024, HVA }, -EEXIST },
	{ "move onto another slot", { S(0, 1), 0, 0x1ff000, 16 * P, HVA }, -EEXIST },
	{ "move onto itself, shifted", { S(0, 1), 0, 0x108000, 16 * P, HVA }, 0 },
	{ "overlap in the other address space is fine", { S(1, 5), 0, 0x200000, P, HVA }, 0 },
	{ "same hva in two slots is fine", { S(0, 5), 0, 0x400000, 16 * P, HVA }, 0 },
	/* x86: 52-bit guest physical addresses, after the overlap check */
	{ "create ending at 2^52", { S(0, 5), 0, (1ull << 52) - P, P, HVA }, 0 },
	{ "create ending one page past 2^52", { S(0, 5), 0, 1ull << 52, P, HVA }, -EINVAL },
	{ "move past 2^52", { S(0, 1), 0, 1ull << 52, 16 * P, HVA }, -EINVAL },
	{ "overlap comes before the 2^52 limit",
	  { S(0, 5), 0, (1ull << 52) - 50 * P, 60 * P, HVA },
	  -EEXIST },
	{ "flags change is not held to 2^52",
	  { S(0, 1), MS_MEM_LOG_DIRTY_PAGES, 0x100000, 16 * P, HVA },
	  0 },
};

struct snapshot {
	uint64_t generation, updates;
	int lookups[6];
	uint64_t hvas[6];
};

static void take(struct ms_vm *vm, struct ms_vcpu *vcpu, struct snapshot *s)
{
	static const struct {
		unsigned int as;
		uint64_t gfn;
	} probes[6] = {
		{ 0, 0x100 }, { 0, 0x10f }, { 0, 0x200 }, { 0, 0x400 }, { 0, 0x800 }, { 1, 0x100 },
	};
	struct ms_stats st = test_stats(vm);

	s->generation = st.generation;
	s->updates = st.memslot_updates;
	for (int i = 0; i < 6; i++) {
		s->hvas[i] = 0;
		s->lookups[i] =
		    ms_gfn_to_hva(vcpu, probes[i].as, probes[i].gfn, false, &s->hvas[i]);
	}
}

static void test_errno_table(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct ms_vm *vm;
		struct ms_vcpu *vcpu;
		struct snapshot before, after;
		int r;

		assert_int_equal(ms_vm_create(NULL, &vm), 0);
		assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
		for (size_t b = 0; b < sizeof(base) / sizeof(base[0]); b++)
			assert_int_equal(ms_set_memory_region(vm, &base[b]), 0);
		take(vm, vcpu, &before);
		r = ms_set_memory_region(vm, &rows[i].r);
		if (r != rows[i].expect)
			fail_msg("%s: got %d, KVM returns %d", rows[i].name, r, rows[i].expect);
		take(vm, vcpu, &after);
		if (r)
			assert_memory_equal(&before, &after, sizeof(before));
		ms_vcpu_destroy(vcpu);
		ms_vm_destroy(vm);
	}
}

/* The same arguments again changes nothing at all. */
static void test_noop_changes_nothing(void **state)
{
	struct ms_vm *vm;
	struct ms_vcpu *vcpu;
	struct snapshot before, after;

	assert_int_equal(ms_vm_create(NULL, &vm), 0);
	assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
	assert_int_equal(ms_set_memory_region(vm, &base[0]), 0);
	take(vm, vcpu, &before);
	assert_int_equal(ms_set_memory_region(vm, &base[0]), 0);
	take(vm, vcpu, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errno_table),
		cmocka_unit_test(test_noop_changes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
