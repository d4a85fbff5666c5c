/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ms_set_memory_region returns what KVM_SET_USER_MEMORY_REGION returns on
 * x86-64, rule by rule; tests/ref/kvm_ref.h lists the rules, their order and
 * the kernel code each comes from.  Table-driven: a row is a starting state,
 * one region and KVM's answer, written out by hand.  Each row of the main
 * table runs twice, as written and with address spaces 0 and 1 swapped.
 *
 * For every row the reference model must give the row's answer (the table
 * guards the model that the fuzz harness relies on) and so must the library;
 * afterwards the library's lookups at and around every slot edge, read and
 * write, on both address spaces, must equal the model's.  A failed call or a
 * no-op must change nothing: lookups, memslot_updates and generation are the
 * same before and after; a call that changes a slot counts one update and
 * moves the generation on.  Every disagreement is printed, then the test fails.
 *
 * The dirty-log table does the same for ms_get_dirty_log and
 * ms_clear_dirty_log (KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG: rules D4 and D5
 * of the model) under each dirty-log configuration, and then compares every
 * logged slot's bitmap, word for word, with the model's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <cmocka.h>

#include "../common/testutil.h"
#include "../ref/kvm_ref.h"

#define P MS_PAGE_SIZE
#define M (1ull << 20)
#define G52 (1ull << 52)
#define END KVM_REF_USER_END
#define TOP 0xfffffffffffff000ull /* the last page of the 64-bit space */
#define HVA 0x10000000ull	  /* set_memory_region and lookups never touch it */
#define S(as, id) ((uint32_t)(as) << 16 | (id))
#define RO MS_MEM_READONLY
#define DIRTY MS_MEM_LOG_DIRTY_PAGES
#define MAXP KVM_REF_MAX_NR_PAGES
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Starting states, created before the row's region is set. */
static const struct ms_region one[] = {
	{ S(0, 1), 0, 1 * M, 16 * P, HVA },
};
/* Slot 2 is READONLY; 240 free pages lie between the two. */
static const struct ms_region two[] = {
	{ S(0, 1), 0, 1 * M, 16 * P, HVA },
	{ S(0, 2), RO, 2 * M, 16 * P, HVA + 16 * P },
};
/* Slot 1 in both address spaces, over the same gfns. */
static const struct ms_region both[] = {
	{ S(0, 1), 0, 1 * M, 16 * P, HVA },
	{ S(1, 1), 0, 1 * M, 16 * P, HVA },
};
/* A slot at 8M in the other address space only. */
static const struct ms_region other[] = {
	{ S(0, 1), 0, 1 * M, 16 * P, HVA },
	{ S(1, 2), 0, 8 * M, 16 * P, HVA },
};
/* Ends exactly at 2^52, x86's largest guest physical address. */
static const struct ms_region high[] = {
	{ S(0, 3), DIRTY, G52 - 16 * P, 16 * P, HVA },
};
static const struct ms_region last_id[] = {
	{ S(0, 32763), 0, 1 * M, 16 * P, HVA },
};
/* The host range ends exactly at the end of the user address space. */
static const struct ms_region at_end[] = {
	{ S(0, 1), 0, 1 * M, 16 * P, END - 16 * P },
};

struct row {
	const char *name;
	const struct ms_region *start;
	size_t nstart;
	struct ms_region r;
	int expect;
};

#define EMPTY NULL, 0
#define FROM(s) s, ARRAY_SIZE(s)

static const struct row rows[] = {
	/* 1. flags */
	{ "flag bit 2 (GUEST_MEMFD)", EMPTY, { S(0, 5), 1u << 2, 4 * M, P, HVA }, -EINVAL },
	{ "flag bit 31", EMPTY, { S(0, 5), 1u << 31, 4 * M, P, HVA }, -EINVAL },
	{ "READONLY and dirty logging", EMPTY, { S(0, 5), RO | DIRTY, 4 * M, P, HVA }, 0 },
	{ "unknown flag on a delete", FROM(one), { S(0, 1), 1u << 3, 1 * M, 0, HVA }, -EINVAL },
	{ "unknown flag on the same slot",
	  FROM(one),
	  { S(0, 1), 1u << 3, 1 * M, 16 * P, HVA },
	  -EINVAL },
	/* 2. size */
	{ "size one byte over a page", EMPTY, { S(0, 5), 0, 4 * M, P + 1, HVA }, -EINVAL },
	{ "size of one byte", EMPTY, { S(0, 5), 0, 4 * M, 1, HVA }, -EINVAL },
	{ "size below a page on an existing slot",
	  FROM(one),
	  { S(0, 1), 0, 1 * M, P - 1, HVA },
	  -EINVAL },
	/* 3. gpa */
	{ "gpa unaligned", EMPTY, { S(0, 5), 0, 4 * M + 8, P, HVA }, -EINVAL },
	{ "gpa unaligned on a delete", FROM(one), { S(0, 1), 0, 1 * M + 1, 0, HVA }, -EINVAL },
	/* 4. hva: aligned, inside the user address space */
	{ "hva unaligned", EMPTY, { S(0, 5), 0, 4 * M, P, HVA + 16 }, -EINVAL },
	{ "hva unaligned on a delete", FROM(one), { S(0, 1), 0, 1 * M, 0, HVA + 8 }, -EINVAL },
	{ "hva 0", EMPTY, { S(0, 5), 0, 4 * M, P, 0 }, 0 },
	{ "host range ends at the user limit",
	  EMPTY,
	  { S(0, 5), 0, 4 * M, 16 * P, END - 16 * P },
	  0 },
	{ "host range one page past the user limit",
	  EMPTY,
	  { S(0, 5), 0, 4 * M, 17 * P, END - 16 * P },
	  -EINVAL },
	{ "hva at the user limit", EMPTY, { S(0, 5), 0, 4 * M, P, END }, -EINVAL },
	{ "hva in the kernel half",
	  EMPTY,
	  { S(0, 5), 0, 4 * M, P, 0xffff800000000000ull },
	  -EINVAL },
	{ "hva + size wraps", EMPTY, { S(0, 5), 0, 4 * M, 2 * P, TOP }, -EINVAL },
	{ "delete with hva at the user limit", FROM(one), { S(0, 1), 0, 1 * M, 0, END }, 0 },
	{ "delete with hva past the user limit",
	  FROM(one),
	  { S(0, 1), 0, 1 * M, 0, END + P },
	  -EINVAL },
	{ "same slot again at the user limit",
	  FROM(at_end),
	  { S(0, 1), 0, 1 * M, 16 * P, END - 16 * P },
	  0 },
	{ "move a slot that ends at the user limit",
	  FROM(at_end),
	  { S(0, 1), 0, 4 * M, 16 * P, END - 16 * P },
	  0 },
	/* 5. address-space and slot ids */
	{ "address space 1", EMPTY, { S(1, 5), 0, 4 * M, P, HVA }, 0 },
	{ "address space 2", EMPTY, { S(2, 5), 0, 4 * M, P, HVA }, -EINVAL },
	{ "address space 0xffff", EMPTY, { S(0xffff, 5), 0, 4 * M, P, HVA }, -EINVAL },
	{ "delete in address space 2", EMPTY, { S(2, 1), 0, 0, 0, 0 }, -EINVAL },
	{ "last slot id, 32763", EMPTY, { S(0, 32763), 0, 4 * M, P, HVA }, 0 },
	{ "slot id 32764", EMPTY, { S(0, 32764), 0, 4 * M, P, HVA }, -EINVAL },
	{ "slot id 32767, one of KVM's own", EMPTY, { S(0, 32767), 0, 4 * M, P, HVA }, -EINVAL },
	{ "slot id 65535", EMPTY, { S(0, 65535), 0, 4 * M, P, HVA }, -EINVAL },
	{ "delete slot id 32764", EMPTY, { S(0, 32764), 0, 0, 0, 0 }, -EINVAL },
	{ "delete the last slot id", FROM(last_id), { S(0, 32763), 0, 0, 0, 0 }, 0 },
	{ "move the last slot id", FROM(last_id), { S(0, 32763), 0, 4 * M, 16 * P, HVA }, 0 },
	/* 6. gpa + size wraps */
	{ "gpa + size wraps", EMPTY, { S(0, 5), 0, TOP, 2 * P, HVA }, -EINVAL },
	{ "gpa + size is exactly 2^64", EMPTY, { S(0, 5), 0, TOP, P, HVA }, -EINVAL },
	{ "move to where gpa + size wraps", FROM(one), { S(0, 1), 0, TOP, 16 * P, HVA }, -EINVAL },
	/* 7. at most 2^31 - 1 pages */
	{ "2^31 - 1 pages", EMPTY, { S(0, 5), 0, 0, MAXP *P, HVA }, 0 },
	{ "2^31 pages", EMPTY, { S(0, 5), 0, 0, (MAXP + 1) * P, HVA }, -EINVAL },
	{ "2^31 - 1 pages over a slot", FROM(one), { S(0, 5), 0, 0, MAXP *P, HVA }, -EEXIST },
	{ "2^31 pages over a slot", FROM(one), { S(0, 5), 0, 0, (MAXP + 1) * P, HVA }, -EINVAL },
	{ "2^31 - 1 pages ending at 2^52", EMPTY, { S(0, 5), 0, G52 - MAXP *P, MAXP *P, HVA }, 0 },
	/* 8. delete */
	{ "delete a slot that does not exist", EMPTY, { S(0, 9), 0, 0, 0, 0 }, -EINVAL },
	{ "delete a slot of the other address space",
	  FROM(one),
	  { S(1, 1), 0, 1 * M, 0, HVA },
	  -EINVAL },
	{ "delete", FROM(one), { S(0, 1), 0, 1 * M, 0, HVA }, 0 },
	{ "delete ignores gpa, hva and flags",
	  FROM(two),
	  { S(0, 2), DIRTY, 0x7000, 0, HVA + P },
	  0 },
	{ "delete in one address space only", FROM(both), { S(0, 1), 0, 0, 0, 0 }, 0 },
	{ "delete the slot ending at 2^52", FROM(high), { S(0, 3), 0, 0, 0, 0 }, 0 },
	/* 9. an existing slot */
	{ "same arguments again", FROM(two), { S(0, 1), 0, 1 * M, 16 * P, HVA }, 0 },
	{ "same arguments again, READONLY",
	  FROM(two),
	  { S(0, 2), RO, 2 * M, 16 * P, HVA + 16 * P },
	  0 },
	{ "shrink", FROM(two), { S(0, 1), 0, 1 * M, 8 * P, HVA }, -EINVAL },
	{ "grow into free space", FROM(two), { S(0, 1), 0, 1 * M, 17 * P, HVA }, -EINVAL },
	{ "change the hva", FROM(two), { S(0, 1), 0, 1 * M, 16 * P, HVA + P }, -EINVAL },
	{ "set READONLY", FROM(two), { S(0, 1), RO, 1 * M, 16 * P, HVA }, -EINVAL },
	{ "clear READONLY", FROM(two), { S(0, 2), 0, 2 * M, 16 * P, HVA + 16 * P }, -EINVAL },
	{ "move and shrink", FROM(two), { S(0, 1), 0, 4 * M, 8 * P, HVA }, -EINVAL },
	{ "move and set READONLY", FROM(two), { S(0, 1), RO, 4 * M, 16 * P, HVA }, -EINVAL },
	{ "flags only: dirty logging on", FROM(two), { S(0, 1), DIRTY, 1 * M, 16 * P, HVA }, 0 },
	{ "flags only: dirty logging on a READONLY slot",
	  FROM(two),
	  { S(0, 2), RO | DIRTY, 2 * M, 16 * P, HVA + 16 * P },
	  0 },
	{ "flags only: dirty logging off",
	  FROM(high),
	  { S(0, 3), 0, G52 - 16 * P, 16 * P, HVA },
	  0 },
	{ "move", FROM(two), { S(0, 1), 0, 4 * M, 16 * P, HVA }, 0 },
	{ "move down to gfn 0", FROM(two), { S(0, 1), 0, 0, 16 * P, HVA }, 0 },
	{ "move and turn dirty logging on", FROM(two), { S(0, 1), DIRTY, 4 * M, 16 * P, HVA }, 0 },
	{ "move a READONLY slot", FROM(two), { S(0, 2), RO, 4 * M, 16 * P, HVA + 16 * P }, 0 },
	{ "same id in the other address space is a create",
	  FROM(one),
	  { S(1, 1), 0, 4 * M, 8 * P, HVA + P },
	  0 },
	/* 10. overlap, on create and on move */
	{ "create over the first page", FROM(one), { S(0, 5), 0, 1 * M - P, 2 * P, HVA }, -EEXIST },
	{ "create over the last page",
	  FROM(one),
	  { S(0, 5), 0, 1 * M + 15 * P, 2 * P, HVA },
	  -EEXIST },
	{ "create touching below", FROM(one), { S(0, 5), 0, 1 * M - P, P, HVA }, 0 },
	{ "create touching above", FROM(one), { S(0, 5), 0, 1 * M + 16 * P, P, HVA }, 0 },
	{ "create filling the gap exactly",
	  FROM(two),
	  { S(0, 5), 0, 1 * M + 16 * P, 1 * M - 16 * P, HVA },
	  0 },
	{ "create one page wider than the gap",
	  FROM(two),
	  { S(0, 5), 0, 1 * M + 16 * P, 1 * M - 15 * P, HVA },
	  -EEXIST },
	{ "create inside", FROM(one), { S(0, 5), 0, 1 * M + 4 * P, P, HVA }, -EEXIST },
	{ "create over the same gfns", FROM(one), { S(0, 5), 0, 1 * M, 16 * P, HVA }, -EEXIST },
	{ "create covering two slots", FROM(two), { S(0, 5), 0, 0, 64 * M, HVA }, -EEXIST },
	{ "create over a slot of the other address space",
	  FROM(one),
	  { S(1, 5), 0, 1 * M, 16 * P, HVA },
	  0 },
	{ "same hva in two slots", FROM(one), { S(0, 5), 0, 4 * M, 16 * P, HVA }, 0 },
	{ "move over another slot's first page",
	  FROM(two),
	  { S(0, 1), 0, 2 * M - 15 * P, 16 * P, HVA },
	  -EEXIST },
	{ "move over another slot's last page",
	  FROM(two),
	  { S(0, 2), RO, 1 * M + 15 * P, 16 * P, HVA + 16 * P },
	  -EEXIST },
	{ "move touching another slot", FROM(two), { S(0, 1), 0, 2 * M - 16 * P, 16 * P, HVA }, 0 },
	{ "move over its own old place", FROM(two), { S(0, 1), 0, 1 * M + 8 * P, 16 * P, HVA }, 0 },
	{ "move over a slot of the other address space",
	  FROM(other),
	  { S(0, 1), 0, 8 * M, 16 * P, HVA },
	  0 },
	/* 11. x86: nothing above 2^52, on create and move only, after overlap */
	{ "create ending at 2^52", EMPTY, { S(0, 5), 0, G52 - P, P, HVA }, 0 },
	{ "create ending one page past 2^52", EMPTY, { S(0, 5), 0, G52 - P, 2 * P, HVA }, -EINVAL },
	{ "create at 2^52", EMPTY, { S(0, 5), 0, G52, P, HVA }, -EINVAL },
	{ "create in the last page below 2^64", EMPTY, { S(0, 5), 0, TOP - P, P, HVA }, -EINVAL },
	{ "move to end at 2^52", FROM(one), { S(0, 1), 0, G52 - 16 * P, 16 * P, HVA }, 0 },
	{ "move one page past 2^52",
	  FROM(one),
	  { S(0, 1), 0, G52 - 15 * P, 16 * P, HVA },
	  -EINVAL },
	{ "overlap comes before the 2^52 limit",
	  FROM(high),
	  { S(0, 5), 0, G52 - P, 2 * P, HVA },
	  -EEXIST },
	{ "same arguments again at 2^52",
	  FROM(high),
	  { S(0, 3), DIRTY, G52 - 16 * P, 16 * P, HVA },
	  0 },
};

/* Config limits instead of KVM's: one address space of five slot ids. */
static const struct row small_rows[] = {
	{ "address space 0 of 1", EMPTY, { S(0, 0), 0, 4 * M, P, HVA }, 0 },
	{ "address space 1 of 1", EMPTY, { S(1, 0), 0, 4 * M, P, HVA }, -EINVAL },
	{ "slot id 4 of 5", EMPTY, { S(0, 4), 0, 4 * M, P, HVA }, 0 },
	{ "slot id 5 of 5", EMPTY, { S(0, 5), 0, 4 * M, P, HVA }, -EINVAL },
	{ "delete slot id 5 of 5", EMPTY, { S(0, 5), 0, 0, 0, 0 }, -EINVAL },
};

/* Each slot edge is looked up from both sides. */
#define MAX_PROBES 32

struct snapshot {
	uint64_t updates, generation;
	int rc[MAX_PROBES][2][2];
	uint64_t hva[MAX_PROBES][2][2];
};

struct world {
	struct ms_vm *vm;
	struct ms_vcpu *vcpu;
	struct kvm_ref ref;
	uint64_t probe[MAX_PROBES];
	size_t nprobes;
	const char *row; /* for messages */
	bool mirrored;
	unsigned int failures;
};

static struct ms_region mirror(struct ms_region r, bool mirrored)
{
	if (mirrored && r.slot >> 16 < 2)
		r.slot ^= 1u << 16;
	return r;
}

static void add_probes(struct world *w, const struct ms_region *r)
{
	uint64_t gfn = r->guest_phys_addr / P, npages = r->memory_size / P;
	const uint64_t edges[4] = { gfn - 1, gfn, gfn + npages - 1, gfn + npages };

	if (!npages)
		return;
	for (size_t i = 0; i < 4 && w->nprobes < MAX_PROBES; i++)
		w->probe[w->nprobes++] = edges[i];
}

/* The library's view (ref false) or the model's of every probe, and stats. */
static void take(struct world *w, bool ref, struct snapshot *s)
{
	*s = (struct snapshot){ 0 };
	if (!ref) {
		struct ms_stats st = test_stats(w->vm);

		s->updates = st.memslot_updates;
		s->generation = st.generation;
	}
	for (size_t i = 0; i < w->nprobes; i++)
		for (unsigned int as = 0; as < 2; as++)
			for (int write = 0; write < 2; write++) {
				uint64_t *hva = &s->hva[i][as][write];

				s->rc[i][as][write] =
				    ref ? kvm_ref_gfn_to_hva(&w->ref, as, w->probe[i], write, hva)
					: ms_gfn_to_hva(w->vcpu, as, w->probe[i], write, hva);
			}
}

static void disagree(struct world *w, const char *what)
{
	print_error("%s%s: %s\n", w->row, w->mirrored ? " (address spaces swapped)" : "", what);
	w->failures++;
}

/* Lookups of a and b differ somewhere: name the first difference. */
static bool lookups_differ(struct world *w, const struct snapshot *a, const struct snapshot *b,
			   const char *what)
{
	char msg[200];

	for (size_t i = 0; i < w->nprobes; i++)
		for (unsigned int as = 0; as < 2; as++)
			for (int wr = 0; wr < 2; wr++) {
				if (a->rc[i][as][wr] == b->rc[i][as][wr] &&
				    (a->rc[i][as][wr] || a->hva[i][as][wr] == b->hva[i][as][wr]))
					continue;
				snprintf(msg, sizeof(msg),
					 "%s: gfn %#llx as %u %s: %d hva %#llx vs %d hva %#llx",
					 what, (unsigned long long)w->probe[i], as,
					 wr ? "write" : "read", a->rc[i][as][wr],
					 (unsigned long long)a->hva[i][as][wr], b->rc[i][as][wr],
					 (unsigned long long)b->hva[i][as][wr]);
				disagree(w, msg);
				return true;
			}
	return false;
}

static void check_stats(struct world *w, const struct snapshot *before,
			const struct snapshot *after, bool changed)
{
	char msg[160];

	if (changed
		? after->updates == before->updates + 1 && after->generation > before->generation
		: after->updates == before->updates && after->generation == before->generation)
		return;
	snprintf(msg, sizeof(msg), "%s, yet memslot_updates %llu -> %llu, generation %llu -> %llu",
		 changed ? "a slot changed" : "nothing may change",
		 (unsigned long long)before->updates, (unsigned long long)after->updates,
		 (unsigned long long)before->generation, (unsigned long long)after->generation);
	disagree(w, msg);
}

static void set_up(struct world *w, const struct row *row, const struct ms_config *cfg)
{
	assert_int_equal(ms_vm_create(cfg, &w->vm), 0);
	assert_int_equal(ms_vcpu_create(w->vm, &w->vcpu), 0);
	kvm_ref_init(&w->ref, cfg ? cfg->address_spaces : 2,
		     cfg ? cfg->slots_per_space : MS_MAX_SLOTS_PER_SPACE);
	w->nprobes = 0;
	for (size_t i = 0; i < row->nstart; i++) {
		struct ms_region r = mirror(row->start[i], w->mirrored);

		assert_int_equal(kvm_ref_set_memory_region(&w->ref, &r), 0);
		assert_int_equal(ms_set_memory_region(w->vm, &r), 0);
		add_probes(w, &r);
	}
}

static void run_row(struct world *w, const struct row *row, const struct ms_config *cfg)
{
	struct ms_region r = mirror(row->r, w->mirrored);
	struct snapshot lib_before, lib_after, model;
	char msg[200];
	int got, want;

	w->row = row->name;
	set_up(w, row, cfg);
	add_probes(w, &r);
	take(w, false, &lib_before);
	take(w, true, &model);
	lookups_differ(w, &lib_before, &model, "starting state: library vs model");

	want = kvm_ref_set_memory_region(&w->ref, &r);
	got = ms_set_memory_region(w->vm, &r);
	if (want != row->expect) {
		snprintf(msg, sizeof(msg), "model returns %d, the table (KVM) %d", want,
			 row->expect);
		disagree(w, msg);
	}
	if (got != row->expect) {
		snprintf(msg, sizeof(msg),
			 "library returns %d, KVM %d, for slot %#x flags %#x gpa %#llx size %#llx "
			 "hva %#llx",
			 got, row->expect, r.slot, r.flags, (unsigned long long)r.guest_phys_addr,
			 (unsigned long long)r.memory_size, (unsigned long long)r.userspace_addr);
		disagree(w, msg);
	}
	take(w, false, &lib_after);
	take(w, true, &model);
	lookups_differ(w, &lib_after, &model, "after the call: library vs model");
	if (w->ref.last_change == KVM_REF_NONE)
		lookups_differ(w, &lib_before, &lib_after,
			       "changed by a call that changes nothing");
	check_stats(w, &lib_before, &lib_after, w->ref.last_change != KVM_REF_NONE);
	ms_vcpu_destroy(w->vcpu);
	ms_vm_destroy(w->vm);
	kvm_ref_fini(&w->ref);
}

static void test_kvm_rules(void **state)
{
	struct world w = { 0 };

	for (int mirrored = 0; mirrored < 2; mirrored++) {
		w.mirrored = mirrored;
		for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
			run_row(&w, &rows[i], NULL);
	}
	assert_int_equal(w.failures, 0);
}

/*
 * The same rows as one transaction on an empty VM: the row's starting slots,
 * an unrelated create, then the row's change, so that every rule is met by a
 * change that is not the first, against slots made earlier in the same call.
 * KVM's answer must come with *failed the change's index (nstart + 1), and a
 * failure must apply nothing: no lookup, update or generation changes.
 */
static void run_txn_row(struct world *w, const struct row *row)
{
	const struct ms_region filler = { S(0, 100), 0, 1ull << 51, P, HVA };
	struct ms_region txn[8];
	struct snapshot lib_before, lib_after, model;
	size_t n = 0, failed = SIZE_MAX, want_failed = SIZE_MAX;
	char msg[200];
	int got, want;

	w->row = row->name;
	set_up(w, &(struct row){ 0 }, NULL);
	assert_true(row->nstart + 2 <= ARRAY_SIZE(txn));
	for (size_t i = 0; i < row->nstart; i++)
		txn[n++] = mirror(row->start[i], w->mirrored);
	txn[n++] = filler;
	txn[n++] = mirror(row->r, w->mirrored);
	for (size_t i = 0; i < n; i++)
		add_probes(w, &txn[i]);
	take(w, false, &lib_before);

	want = kvm_ref_transaction(&w->ref, txn, n, false, &want_failed);
	got = ms_set_memory_regions(w->vm, txn, n, &failed);
	if (want != row->expect || (want && want_failed != n - 1)) {
		snprintf(msg, sizeof(msg), "transaction: model returns %d at %zd, KVM %d at %zu",
			 want, (ssize_t)want_failed, row->expect, n - 1);
		disagree(w, msg);
	}
	if (got != row->expect || (got && failed != n - 1)) {
		snprintf(msg, sizeof(msg), "transaction: library returns %d at %zd, KVM %d at %zu",
			 got, (ssize_t)failed, row->expect, n - 1);
		disagree(w, msg);
	}
	take(w, false, &lib_after);
	take(w, true, &model);
	lookups_differ(w, &lib_after, &model, "after the transaction: library vs model");
	if (got)
		check_stats(w, &lib_before, &lib_after, false);
	ms_vcpu_destroy(w->vcpu);
	ms_vm_destroy(w->vm);
	kvm_ref_fini(&w->ref);
}

static void test_kvm_rules_in_transactions(void **state)
{
	struct world w = { 0 };

	for (int mirrored = 0; mirrored < 2; mirrored++) {
		w.mirrored = mirrored;
		for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
			run_txn_row(&w, &rows[i]);
	}
	assert_int_equal(w.failures, 0);
}

static void test_config_limits(void **state)
{
	struct world w = { 0 };
	struct ms_config cfg;

	ms_config_init(&cfg);
	cfg.address_spaces = 1;
	cfg.slots_per_space = 5;
	for (size_t i = 0; i < ARRAY_SIZE(small_rows); i++)
		run_row(&w, &small_rows[i], &cfg);
	assert_int_equal(w.failures, 0);
}

/*
 * Dirty logging.  Slot 1: 130 pages, three bitmap words, the last partial;
 * slot 3: 64 pages, one whole word; slot 2 is not logged.
 */
static const struct ms_region logged[] = {
	{ S(0, 1), DIRTY, 1 * M, 130 * P, HVA },
	{ S(0, 2), 0, 2 * M, 16 * P, HVA },
	{ S(0, 3), DIRTY, 3 * M, 64 * P, HVA },
};

#define GET true
#define CLEAR false
#define ANY_NUM 0xffffffffu

struct dirty_row {
	const char *name;
	bool get; /* else clear */
	uint32_t slot;
	uint64_t first_page; /* clear only */
	uint32_t num_pages;
	bool null; /* a NULL buffer: the library's -EINVAL, not KVM's */
	int expect;
};

static const struct dirty_row dirty_rows[] = {
	/* D4: kvm_get_dirty_log_protect() */
	{ "get: logged slot", GET, S(0, 1), 0, 0, false, 0 },
	{ "get: one-word slot", GET, S(0, 3), 0, 0, false, 0 },
	{ "get: slot without logging", GET, S(0, 2), 0, 0, false, -ENOENT },
	{ "get: missing slot", GET, S(0, 5), 0, 0, false, -ENOENT },
	{ "get: missing slot in address space 1", GET, S(1, 1), 0, 0, false, -ENOENT },
	{ "get: last slot id, missing", GET, S(0, 32763), 0, 0, false, -ENOENT },
	{ "get: slot id 32764", GET, S(0, 32764), 0, 0, false, -EINVAL },
	{ "get: slot id 0xffff", GET, S(0, 0xffff), 0, 0, false, -EINVAL },
	{ "get: address space 2 of 2", GET, S(2, 1), 0, 0, false, -EINVAL },
	{ "get: address space 0xffff", GET, S(0xffff, 1), 0, 0, false, -EINVAL },
	{ "get: NULL buffer", GET, S(0, 1), 0, 0, true, -EINVAL },
	{ "get: NULL buffer, missing slot", GET, S(0, 5), 0, 0, true, -EINVAL },
	/* D5: kvm_clear_dirty_log_protect(); ids first */
	{ "clear: slot id 32764", CLEAR, S(0, 32764), 0, 64, false, -EINVAL },
	{ "clear: address space 2 of 2", CLEAR, S(2, 1), 0, 64, false, -EINVAL },
	/* then first_page & 63, before the slot is looked up */
	{ "clear: first_page 1", CLEAR, S(0, 1), 1, 64, false, -EINVAL },
	{ "clear: first_page 63", CLEAR, S(0, 1), 63, 64, false, -EINVAL },
	{ "clear: first_page 65", CLEAR, S(0, 1), 65, 1, false, -EINVAL },
	{ "clear: first_page 1 of a missing slot", CLEAR, S(0, 5), 1, 64, false, -EINVAL },
	{ "clear: first_page 1 of an unlogged slot", CLEAR, S(0, 2), 1, 64, false, -EINVAL },
	/* then the slot, before the range */
	{ "clear: missing slot", CLEAR, S(0, 5), 0, 64, false, -ENOENT },
	{ "clear: unlogged slot", CLEAR, S(0, 2), 0, 64, false, -ENOENT },
	{ "clear: unlogged slot, range past its end", CLEAR, S(0, 2), 1024, ANY_NUM, false,
	  -ENOENT },
	/* then the range */
	{ "clear: whole slot", CLEAR, S(0, 1), 0, 130, false, 0 },
	{ "clear: first word", CLEAR, S(0, 1), 0, 64, false, 0 },
	{ "clear: two words", CLEAR, S(0, 1), 0, 128, false, 0 },
	{ "clear: middle word", CLEAR, S(0, 1), 64, 64, false, 0 },
	{ "clear: the partial last word", CLEAR, S(0, 1), 128, 2, false, 0 },
	{ "clear: from 64 to the end", CLEAR, S(0, 1), 64, 66, false, 0 },
	{ "clear: no pages", CLEAR, S(0, 1), 0, 0, false, 0 },
	{ "clear: no pages in the last word", CLEAR, S(0, 1), 128, 0, false, 0 },
	{ "clear: first_page past the end", CLEAR, S(0, 1), 192, 0, false, -EINVAL },
	{ "clear: first_page 2^64 - 64", CLEAR, S(0, 1), 0ull - 64, 64, false, -EINVAL },
	{ "clear: one page past the end", CLEAR, S(0, 1), 64, 67, false, -EINVAL },
	{ "clear: one page past the end from 0", CLEAR, S(0, 1), 0, 131, false, -EINVAL },
	{ "clear: not whole words, short of the end", CLEAR, S(0, 1), 64, 65, false, -EINVAL },
	{ "clear: 63 pages", CLEAR, S(0, 1), 0, 63, false, -EINVAL },
	{ "clear: 129 pages", CLEAR, S(0, 1), 0, 129, false, -EINVAL },
	{ "clear: 2^32 - 1 pages", CLEAR, S(0, 1), 0, ANY_NUM, false, -EINVAL },
	{ "clear: one-word slot, first_page at its end", CLEAR, S(0, 3), 64, 0, false, 0 },
	{ "clear: one-word slot, a page past its end", CLEAR, S(0, 3), 64, 1, false, -EINVAL },
	{ "clear: one-word slot, the next word", CLEAR, S(0, 3), 128, 0, false, -EINVAL },
	{ "clear: NULL bitmap", CLEAR, S(0, 1), 0, 64, true, -EINVAL },
	{ "clear: NULL bitmap, bad slot id", CLEAR, S(0, 32764), 0, 64, true, -EINVAL },
	{ "clear: NULL bitmap, no pages", CLEAR, S(0, 1), 0, 0, true, 0 },
};

#define DIRTY_WORDS 3

/* Every logged slot's bitmap: the library's and the model's, word by word. */
static unsigned int compare_bitmaps(struct ms_vm *vm, struct kvm_ref *ref, const char *row,
				    const char *cfg)
{
	unsigned int failures = 0;

	for (size_t i = 0; i < ARRAY_SIZE(logged); i++) {
		uint64_t got[DIRTY_WORDS] = { 0 }, want[DIRTY_WORDS] = { 0 };
		int rg = ms_get_dirty_log(vm, logged[i].slot, got);
		int rw = kvm_ref_get_dirty_log(ref, logged[i].slot, want);

		if (rg != rw) {
			print_error("%s (%s): final get of slot %#x: library %d, model %d\n", row,
				    cfg, logged[i].slot, rg, rw);
			failures++;
		}
		for (int w = 0; w < DIRTY_WORDS && !rg; w++) {
			if (got[w] == want[w])
				continue;
			print_error("%s (%s): slot %#x word %d: library %#llx, model %#llx\n", row,
				    cfg, logged[i].slot, w, (unsigned long long)got[w],
				    (unsigned long long)want[w]);
			failures++;
		}
	}
	return failures;
}

static unsigned int run_dirty_row(const struct dirty_row *row, bool manual, bool initially_set)
{
	/* Bits 0, 63, 64 and 129 (the last page of slot 1) set in the caller's bitmap. */
	static const uint64_t mask[DIRTY_WORDS] = { 1ull | 1ull << 63, 1, 1ull << 1 };
	const char *cfg = !manual ? "get clears" : initially_set ? "manual, initially set" : "manual";
	uint64_t lib_buf[DIRTY_WORDS] = { 0 }, ref_buf[DIRTY_WORDS] = { 0 };
	unsigned int failures = 0;
	struct ms_config config;
	struct ms_vcpu *vcpu;
	struct kvm_ref ref;
	struct ms_vm *vm;
	int got, want;

	ms_config_init(&config);
	config.manual_dirty_log_protect = manual;
	config.dirty_log_initially_set = initially_set;
	assert_int_equal(ms_vm_create(&config, &vm), 0);
	assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
	kvm_ref_init(&ref, 2, MS_MAX_SLOTS_PER_SPACE);
	assert_int_equal(kvm_ref_dirty_log_caps(&ref, manual, initially_set), 0);
	for (size_t i = 0; i < ARRAY_SIZE(logged); i++) {
		assert_int_equal(kvm_ref_set_memory_region(&ref, &logged[i]), 0);
		assert_int_equal(ms_set_memory_region(vm, &logged[i]), 0);
	}
	/* Pages 0, 1, 64, 127 and 129 of slot 1 and 63 of slot 3 dirty (D3). */
	for (size_t i = 0; i < 6; i++) {
		static const uint64_t gpa[6] = { 1 * M, 1 * M + P, 1 * M + 64 * P,
						 1 * M + 127 * P, 1 * M + 129 * P, 3 * M + 63 * P };

		assert_int_equal(kvm_ref_mark_page_dirty(&ref, 0, gpa[i] / P), 0);
		assert_int_equal(ms_mark_page_dirty(vm, 0, gpa[i] / P), 0);
	}

	if (row->get) {
		want = kvm_ref_get_dirty_log(&ref, row->slot, row->null ? NULL : ref_buf);
		got = ms_get_dirty_log(vm, row->slot, row->null ? NULL : lib_buf);
	} else {
		want = kvm_ref_clear_dirty_log(&ref, row->slot, row->first_page, row->num_pages,
					       row->null ? NULL : mask);
		got = ms_clear_dirty_log(vm, row->slot, row->first_page, row->num_pages,
					 row->null ? NULL : mask);
	}
	if (want != row->expect) {
		print_error("%s (%s): model returns %d, the table (KVM) %d\n", row->name, cfg,
			    want, row->expect);
		failures++;
	}
	if (got != row->expect) {
		print_error("%s (%s): library returns %d, KVM %d\n", row->name, cfg, got,
			    row->expect);
		failures++;
	}
	for (int w = 0; w < DIRTY_WORDS; w++) {
		if (lib_buf[w] == ref_buf[w])
			continue;
		print_error("%s (%s): word %d returned: library %#llx, model %#llx\n", row->name,
			    cfg, w, (unsigned long long)lib_buf[w], (unsigned long long)ref_buf[w]);
		failures++;
	}
	failures += compare_bitmaps(vm, &ref, row->name, cfg);
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
	kvm_ref_fini(&ref);
	return failures;
}

static void test_dirty_log_rules(void **state)
{
	unsigned int failures = 0;

	for (size_t i = 0; i < ARRAY_SIZE(dirty_rows); i++) {
		failures += run_dirty_row(&dirty_rows[i], false, false);
		failures += run_dirty_row(&dirty_rows[i], true, false);
		failures += run_dirty_row(&dirty_rows[i], true, true);
	}
	assert_int_equal(failures, 0);
}

/* D1: initially set only with manual protect. */
static void test_dirty_log_caps(void **state)
{
	static const struct {
		bool manual, initially_set;
		int expect;
	} caps[] = {
		{ false, false, 0 },
		{ true, false, 0 },
		{ false, true, -EINVAL },
		{ true, true, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(caps); i++) {
		struct ms_config cfg;
		struct kvm_ref ref;
		struct ms_vm *vm = NULL;

		ms_config_init(&cfg);
		cfg.manual_dirty_log_protect = caps[i].manual;
		cfg.dirty_log_initially_set = caps[i].initially_set;
		kvm_ref_init(&ref, 2, MS_MAX_SLOTS_PER_SPACE);
		assert_int_equal(kvm_ref_dirty_log_caps(&ref, caps[i].manual, caps[i].initially_set),
				 caps[i].expect);
		assert_int_equal(ms_vm_create(&cfg, &vm), caps[i].expect);
		if (vm)
			ms_vm_destroy(vm);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kvm_rules),
		cmocka_unit_test(test_kvm_rules_in_transactions),
		cmocka_unit_test(test_config_limits),
		cmocka_unit_test(test_dirty_log_rules),
		cmocka_unit_test(test_dirty_log_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
