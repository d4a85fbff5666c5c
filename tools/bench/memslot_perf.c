/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memslot-perf: the tests of Linux KVM's selftest memslot_perf_test
 * (tools/testing/selftests/kvm/memslot_perf_test.c) run against memslots,
 * with upstream's sizes, addresses and slot counts, so that our figures can
 * stand beside the kernel's.  A vCPU thread plays the guest: a guest load or
 * store is an 8-byte ms_vcpu_read or ms_vcpu_write, and a store where no
 * slot is (upstream's MMIO exit) fails with -EFAULT and the guest goes on.
 * The host's madvise(MADV_DONTNEED) is bracketed by
 * ms_invalidate_range_start and _end, as the kernel's mm brackets it for
 * KVM.  The kernel's figures are constants (kvm_ref below), not measured in
 * the run.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "cli.h"
#include "memslots.h"

#define PAGE MS_PAGE_SIZE
/* Upstream's aux area before the test area: its sync flags (ours are host variables). */
#define MEM_EXTRA (64ull << 10)
#define MEM_GPA (256ull << 20)
#define MEM_SIZE ((512ull << 20) + MEM_EXTRA)
#define MEM_TEST_GPA (MEM_GPA + MEM_EXTRA)
#define MEM_TEST_SIZE (MEM_SIZE - MEM_EXTRA)
#define MAP_TEST_SIZE (32ull << 20)
#define UNMAP_TEST_SIZE (128ull << 20)
#define UNMAP_CHUNK_PAGES ((2ull << 20) / PAGE)
/* Half in the moved (last) slot, half before it, for the active test. */
#define MOVE_TEST_SIZE (3 * (64ull << 10))
#define MOVE_DEST_GPA (MEM_GPA + MEM_SIZE)
#define VAL_1 0x1122334455667788ull
#define VAL_2 0x99aabbccddeeff00ull

/* Even a tiny budget times the second iteration: the first faults entries in. */
#define MIN_ITERS 2

#define KVM_LABEL \
	"kernel KVM, measured on this kind of machine (upstream memslot_perf_test, 2026-11)"

/*
 * KVM_LABEL: the kvm_pvm software hypervisor running the selftest built
 * from Linux 6.12, best ms per iteration (setup: ms to create the slots).
 * A dated measurement, not remeasured by this tool.
 */
static const struct kvm_ref {
	const char *kase;
	unsigned int slots;
	double ms;
} kvm_ref[] = {
	{ "setup", 509, 25.3 },
	{ "setup", 32763, 2237 },
	{ "map", 509, 151 },
	{ "map", 8194, 159 },
	{ "unmap", 509, 131 },
	{ "unmap", 32763, 129 },
	{ "unmap-chunked", 509, 5.27 },
	{ "unmap-chunked", 32763, 88.4 },
	{ "move-active", 509, 0.179 },
	{ "move-active", 32763, 0.791 },
	{ "move-inactive", 509, 0.161 },
	{ "move-inactive", 32763, 0.160 },
	{ "rw", 509, 1919 },
	{ "rw", 32763, 1889 },
};

struct mp_case;

/* One test's VM: slot 0, then nslots test slots over one host mapping. */
struct mp_vm {
	const struct mp_case *c;
	struct ms_vm *vm;
	struct ms_vcpu *vcpu;
	char *host; /* slot 0's page, then the test slots' memory */
	char *mem;  /* the test slots' memory, from MEM_GPA on */
	uint64_t npages, per_slot;
	unsigned int nslots;
	/* Where a guest store may find no slot: the moved slot's part of the area. */
	uint64_t mmio_lo, mmio_hi;
	uint64_t move_gpa;
	/* Upstream keeps these in guest memory; our guest is a host thread. */
	atomic_bool start, exit, sync;
	sem_t ready;
	/* Failed accesses and wrong values, guest's and host's. */
	atomic_ulong errors;
	pthread_t thread;
};

struct mp_result {
	double best, sum; /* ns */
	unsigned long n;
};

struct mp_case {
	const char *name;
	uint64_t mem_size; /* of the test slots; 0: MEM_SIZE */
	unsigned int slots[2];
	/* Against KVM's figure: its setup is the best of several, its loops a run's mean. */
	bool ratio_of_best;
	/* For the records: memslot updates pass the gate; invalidations may elide. */
	bool updates, invalidates;
	bool (*run)(const struct mp_case *c, unsigned int nslots, double budget,
		    struct mp_result *res);
	void (*guest)(struct mp_vm *v);
	bool (*prepare)(struct mp_vm *v);
	void (*loop)(struct mp_vm *v);
};

/* The host thread's and the guest thread's CPUs (-1: not pinned). */
static int mp_cpu[2];
/*
 * Slot 0's page, then MEM_SIZE for the test slots: one mapping for every
 * case, as mapping and populating 512 MiB anew for each would add seconds
 * to every run.
 */
static char *mp_host;

static double kvm_ms(const char *kase, unsigned int slots)
{
	for (size_t i = 0; i < sizeof(kvm_ref) / sizeof(kvm_ref[0]); i++)
		if (!strcmp(kvm_ref[i].kase, kase) && kvm_ref[i].slots == slots)
			return kvm_ref[i].ms;
	return NAN;
}

static void mp_error(struct mp_vm *v)
{
	atomic_fetch_add_explicit(&v->errors, 1, memory_order_relaxed);
}

/* --- memory and slots, laid out as upstream's prepare_vm() lays them ------ */

static struct ms_region slot_region(const struct mp_vm *v, unsigned int i)
{
	uint64_t first = (uint64_t)i * v->per_slot;
	uint64_t pages = i == v->nslots - 1 ? v->npages - first : v->per_slot;

	return (struct ms_region){ i + 1, 0, MEM_GPA + first * PAGE, pages * PAGE,
				   (uintptr_t)(v->mem + first * PAGE) };
}

/* Pages from page (counted from MEM_GPA) to the end of its slot: madvise never spans two. */
static uint64_t pages_left_in_slot(const struct mp_vm *v, uint64_t page)
{
	uint64_t slot = page / v->per_slot;

	if (slot >= v->nslots - 1)
		return v->npages - page;
	return (slot + 1) * v->per_slot - page;
}

static bool mp_layout(struct mp_vm *v, unsigned int nslots, uint64_t size)
{
	v->nslots = nslots;
	v->npages = size / PAGE;
	v->per_slot = v->npages / nslots;
	v->host = mp_host;
	v->mem = mp_host + PAGE;
	return v->per_slot != 0;
}

/* Upstream's VM has slot 0 for the guest's code: one page here, so the sets are as large. */
static void mp_vm_new(struct mp_vm *v)
{
	struct ms_region r = { 0, 0, 0, PAGE, (uintptr_t)v->host };

	v->vm = vm_with(MS_GATE_FAIR, false);
	if (ms_set_memory_region(v->vm, &r) || ms_vcpu_create(v->vm, &v->vcpu))
		abort();
}

static void mp_vm_free(struct mp_vm *v)
{
	ms_vcpu_destroy(v->vcpu);
	ms_vm_destroy(v->vm);
}

static bool add_test_slots(struct mp_vm *v)
{
	for (unsigned int i = 0; i < v->nslots; i++) {
		struct ms_region r = slot_region(v, i);

		if (ms_set_memory_region(v->vm, &r))
			return false;
	}
	return true;
}

/* --- host and guest synchronisation, upstream's ---------------------------- */

/* Both sides spin, as upstream's do; a yield now and then in case they share a core. */
static void relax(unsigned int *spins)
{
	if (++*spins % 256 == 0)
		sched_yield();
}

static void host_sync(struct mp_vm *v)
{
	unsigned int spins = 0;

	atomic_store_explicit(&v->sync, true, memory_order_release);
	while (atomic_load_explicit(&v->sync, memory_order_acquire))
		relax(&spins);
}

static bool guest_should_exit(struct mp_vm *v)
{
	return atomic_load_explicit(&v->exit, memory_order_acquire);
}

/* False once the host has told the guest to stop. */
static bool guest_sync(struct mp_vm *v)
{
	unsigned int spins = 0;
	bool expected;

	do {
		if (guest_should_exit(v))
			return false;
		expected = true;
		relax(&spins);
	} while (!atomic_compare_exchange_weak_explicit(&v->sync, &expected, false,
							memory_order_acq_rel,
							memory_order_relaxed));
	return true;
}

/* --- the guest ---------------------------------------------------------------- */

static void guest_store(struct mp_vm *v, uint64_t gpa, uint64_t val)
{
	int r = ms_vcpu_write(v->vcpu, 0, gpa, &val, sizeof(val));

	if (r && (r != -EFAULT || gpa < v->mmio_lo || gpa >= v->mmio_hi))
		mp_error(v);
}

static uint64_t guest_load(struct mp_vm *v, uint64_t gpa)
{
	uint64_t val = 0;

	if (ms_vcpu_read(v->vcpu, 0, gpa, &val, sizeof(val)))
		mp_error(v);
	return val;
}

/* The first 8 bytes of every page of [gpa, gpa + len). */
static void guest_fill(struct mp_vm *v, uint64_t gpa, uint64_t len, uint64_t val)
{
	for (uint64_t p = gpa; p < gpa + len; p += PAGE)
		guest_store(v, p, val);
}

static void guest_map(struct mp_vm *v)
{
	const uint64_t half = MAP_TEST_SIZE / 2;

	do {
		guest_fill(v, MEM_TEST_GPA, half, VAL_1);
		if (!guest_sync(v))
			break;
		guest_fill(v, MEM_TEST_GPA + half, half, VAL_2);
	} while (guest_sync(v));
}

/* One page per sync: more, and the host would wait for the guest, not unmap. */
static void guest_unmap(struct mp_vm *v)
{
	do {
		guest_store(v, MEM_TEST_GPA, VAL_1);
		if (!guest_sync(v))
			break;
		guest_store(v, MEM_TEST_GPA + UNMAP_TEST_SIZE / 2, VAL_2);
	} while (guest_sync(v));
}

/* No sync: the host would measure the guest's MMIO exits, not the moves. */
static void guest_move(struct mp_vm *v)
{
	while (!guest_should_exit(v))
		guest_fill(v, v->move_gpa, MOVE_TEST_SIZE, VAL_1);
}

static void guest_rw(struct mp_vm *v)
{
	do {
		guest_fill(v, MEM_TEST_GPA, MEM_TEST_SIZE, VAL_1);
		if (!guest_sync(v))
			break;
		for (uint64_t p = MEM_TEST_GPA + PAGE / 2; p < MEM_TEST_GPA + MEM_TEST_SIZE;
		     p += PAGE) {
			if (guest_load(v, p) != VAL_2)
				mp_error(v);
			guest_store(v, p, 0);
		}
	} while (guest_sync(v));
}

static void *guest_main(void *arg)
{
	struct mp_vm *v = arg;
	unsigned int spins = 0;

	/* Upstream's GUEST_SYNC(0): the host starts the clock only after it. */
	sem_post(&v->ready);
	while (!atomic_load_explicit(&v->start, memory_order_acquire))
		relax(&spins);
	v->c->guest(v);
	return NULL;
}

/* --- the host ------------------------------------------------------------------ */

/* Host address of the test area's byte off: upstream's vm_gpa2hva(). */
static uint64_t *test_hva(struct mp_vm *v, uint64_t off)
{
	return (uint64_t *)(v->mem + MEM_EXTRA + off);
}

/*
 * Upstream's test_memslot_do_unmap: count pages from test page first, one
 * madvise per slot they cross, each bracketed as the kernel's mm does.
 */
static void zap(struct mp_vm *v, uint64_t first, uint64_t count)
{
	uint64_t page = MEM_EXTRA / PAGE + first;

	while (count) {
		uint64_t n = pages_left_in_slot(v, page);
		char *hva = v->mem + page * PAGE;
		uint64_t start = (uintptr_t)hva, end;

		n = n < count ? n : count;
		end = start + n * PAGE;
		if (ms_invalidate_range_start(v->vm, start, end, true)) {
			mp_error(v);
			return;
		}
		if (madvise(hva, n * PAGE, MADV_DONTNEED))
			mp_error(v);
		ms_invalidate_range_end(v->vm, start, end);
		page += n;
		count -= n;
	}
}

/* Upstream's -d check, on by default here: a lost guest write must not look fast. */
static void host_check(struct mp_vm *v, uint64_t page, uint64_t want)
{
	uint64_t *p = test_hva(v, page * PAGE);

	if (*p != want)
		mp_error(v);
	*p = 0;
}

static void loop_map(struct mp_vm *v)
{
	const uint64_t half = MAP_TEST_SIZE / PAGE / 2;

	/* The guest writes the first half meanwhile, then the second. */
	zap(v, half, half);
	host_sync(v);
	host_check(v, 0, VAL_1);
	host_check(v, half - 1, VAL_1);
	zap(v, 0, half);
	host_sync(v);
	host_check(v, half, VAL_2);
	host_check(v, 2 * half - 1, VAL_2);
}

static void loop_unmap_chunks(struct mp_vm *v, uint64_t chunk)
{
	const uint64_t half = UNMAP_TEST_SIZE / PAGE / 2;

	host_sync(v);
	host_check(v, 0, VAL_1);
	for (uint64_t p = 0; p < half; p += chunk)
		zap(v, p, chunk);
	host_sync(v);
	host_check(v, half, VAL_2);
	for (uint64_t p = half; p < 2 * half; p += chunk)
		zap(v, p, chunk);
}

static void loop_unmap(struct mp_vm *v)
{
	loop_unmap_chunks(v, 1);
}

static void loop_unmap_chunked(struct mp_vm *v)
{
	loop_unmap_chunks(v, UNMAP_CHUNK_PAGES);
}

static void move_last_slot(struct mp_vm *v, uint64_t gpa)
{
	struct ms_region r = slot_region(v, v->nslots - 1);

	r.guest_phys_addr = gpa;
	if (ms_set_memory_region(v->vm, &r))
		mp_error(v);
}

static void loop_move(struct mp_vm *v)
{
	move_last_slot(v, MOVE_DEST_GPA);
	move_last_slot(v, slot_region(v, v->nslots - 1).guest_phys_addr);
}

/* The area the guest writes: half in the last slot (active) or just before it. */
static bool prepare_move(struct mp_vm *v, bool active)
{
	struct ms_region last = slot_region(v, v->nslots - 1);

	if (active && last.memory_size < MOVE_TEST_SIZE / 2)
		return false;
	v->move_gpa = last.guest_phys_addr - (active ? MOVE_TEST_SIZE / 2 : MOVE_TEST_SIZE);
	if (active) {
		v->mmio_lo = last.guest_phys_addr;
		v->mmio_hi = last.guest_phys_addr + MOVE_TEST_SIZE / 2;
	}
	return true;
}

static bool prepare_move_active(struct mp_vm *v)
{
	return prepare_move(v, true);
}

static bool prepare_move_inactive(struct mp_vm *v)
{
	return prepare_move(v, false);
}

static void loop_rw(struct mp_vm *v)
{
	for (uint64_t off = PAGE / 2; off < MEM_TEST_SIZE; off += PAGE)
		*test_hva(v, off) = VAL_2;
	host_sync(v);
	for (uint64_t off = 0; off < MEM_TEST_SIZE; off += PAGE) {
		uint64_t *p = test_hva(v, off);

		if (*p != VAL_1)
			mp_error(v);
		*p = 0;
	}
	host_sync(v);
}

/* --- running a case ---------------------------------------------------------- */

static bool more_iterations(const struct mp_result *res, double t0, double budget)
{
	return res->n < MIN_ITERS || now_ns() - t0 < budget * 1e9;
}

static void add_iteration(struct mp_result *res, double ns)
{
	res->best = res->n && res->best < ns ? res->best : ns;
	res->sum += ns;
	res->n++;
}

/* Always false: a case that could not be measured. */
static bool mp_fail(const struct mp_case *c, unsigned int nslots, const char *why)
{
	fprintf(stderr, "memslots-bench: memslot-perf %s at %u slots: %s\n", c->name, nslots, why);
	return false;
}

/* Upstream's test_execute: iterations of the host's loop while the guest runs. */
static void run_iterations(struct mp_vm *v, double budget, struct mp_result *res)
{
	double t0;

	create_pinned(&v->thread, mp_cpu[1], guest_main, v);
	sem_wait(&v->ready);
	t0 = now_ns();
	atomic_store_explicit(&v->start, true, memory_order_release);
	while (more_iterations(res, t0, budget)) {
		double t = now_ns();

		v->c->loop(v);
		add_iteration(res, now_ns() - t);
	}
	atomic_store_explicit(&v->exit, true, memory_order_release);
	pthread_join(v->thread, NULL);
}

static bool run_test(const struct mp_case *c, unsigned int nslots, double budget,
		     struct mp_result *res)
{
	struct mp_vm v = { .c = c };
	bool ok;

	if (!mp_layout(&v, nslots, c->mem_size ? c->mem_size : MEM_SIZE))
		return mp_fail(c, nslots, "fewer pages than slots");
	/*
	 * As upstream's memset: no iteration pays for the host's first touch of
	 * a page.  Not for a smoke run: zapping the pages it touched would
	 * take most of the run's time.
	 */
	if (!opt.quick)
		memset(v.mem, 0, v.npages * PAGE);
	sem_init(&v.ready, 0, 0);
	mp_vm_new(&v);
	ok = add_test_slots(&v) && (!c->prepare || c->prepare(&v));
	if (!ok)
		mp_fail(c, nslots, "the VM could not be set up");
	else
		run_iterations(&v, budget, res);
	if (ok && atomic_load(&v.errors))
		ok = mp_fail(c, nslots, "failed accesses or wrong values, figures dropped");
	mp_vm_free(&v);
	sem_destroy(&v.ready);
	return ok;
}

/* Upstream's slot setup time: the test slots' creation alone, in a fresh VM each time. */
static bool run_setup(const struct mp_case *c, unsigned int nslots, double budget,
		      struct mp_result *res)
{
	struct mp_vm v = { .c = c };
	double t0 = now_ns();
	bool ok = true;

	if (!mp_layout(&v, nslots, MEM_SIZE))
		return mp_fail(c, nslots, "fewer pages than slots");
	while (ok && more_iterations(res, t0, budget)) {
		double t;

		mp_vm_new(&v);
		t = now_ns();
		ok = add_test_slots(&v);
		add_iteration(res, now_ns() - t);
		mp_vm_free(&v);
	}
	return ok || mp_fail(c, nslots, "a slot could not be created");
}

static const struct mp_case cases[] = {
	{ .name = "map",
	  .mem_size = MAP_TEST_SIZE + MEM_EXTRA,
	  .slots = { 509, 8194 },
	  .invalidates = true,
	  .run = run_test,
	  .guest = guest_map,
	  .loop = loop_map },
	{ .name = "unmap",
	  .mem_size = UNMAP_TEST_SIZE + MEM_EXTRA,
	  .slots = { 509, 32763 },
	  .invalidates = true,
	  .run = run_test,
	  .guest = guest_unmap,
	  .loop = loop_unmap },
	{ .name = "unmap-chunked",
	  .mem_size = UNMAP_TEST_SIZE + MEM_EXTRA,
	  .slots = { 509, 32763 },
	  .invalidates = true,
	  .run = run_test,
	  .guest = guest_unmap,
	  .loop = loop_unmap_chunked },
	{ .name = "move-active",
	  .slots = { 509, 32763 },
	  .updates = true,
	  .run = run_test,
	  .guest = guest_move,
	  .prepare = prepare_move_active,
	  .loop = loop_move },
	{ .name = "move-inactive",
	  .slots = { 509, 32763 },
	  .updates = true,
	  .run = run_test,
	  .guest = guest_move,
	  .prepare = prepare_move_inactive,
	  .loop = loop_move },
	{ .name = "rw",
	  .slots = { 509, 32763 },
	  .run = run_test,
	  .guest = guest_rw,
	  .loop = loop_rw },
	{ .name = "setup",
	  .slots = { 509, 32763 },
	  .ratio_of_best = true,
	  .updates = true,
	  .run = run_setup },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* --- the report -------------------------------------------------------------- */

/* Ours over KVM's for one case and slot count; NAN if it could not run. */
struct mp_row {
	double ratio;
	const char *kase;
	unsigned int slots;
};

static void mp_record(const struct mp_case *c, unsigned int nslots, const struct mp_result *res,
		      bool ok)
{
	struct figure f = { .scenario = "memslot-perf",
			    .kase = c->name,
			    .series = "memslots",
			    .unit = "ms",
			    .gate =
				c->updates || c->invalidates ? cli_gate_name(MS_GATE_FAIR) : NULL,
			    .slots = nslots,
			    .threads = c->guest ? 2 : 1,
			    .elision = c->invalidates ? ELISION_ON : ELISION_NA };

	f.stat = "best";
	record(&f, ok ? res->best / 1e6 : NAN);
	f.stat = "mean";
	record(&f, ok ? res->sum / res->n / 1e6 : NAN);
}

static struct mp_row mp_report(const struct mp_case *c, unsigned int nslots,
			       const struct mp_result *res, bool ok)
{
	double best = ok ? res->best / 1e6 : NAN, mean = ok ? res->sum / res->n / 1e6 : NAN;
	double kvm = kvm_ms(c->name, nslots);
	struct mp_row row = { (c->ratio_of_best ? best : mean) / kvm, c->name, nslots };
	char b[4][24];

	table("  %-14s %6u %6lu %10s %10s %11s %9s\n", c->name, nslots, ok ? res->n : 0,
	      fig(b[0], sizeof(b[0]), "%.3f", best), fig(b[1], sizeof(b[1]), "%.3f", mean),
	      fig(b[2], sizeof(b[2]), "%.3f", kvm), fig(b[3], sizeof(b[3]), "%.3fx", row.ratio));
	mp_record(c, nslots, res, ok);
	return row;
}

static void mp_heading(double budget)
{
	table("\n== memslot-perf: upstream memslot_perf_test's tests with its parameters, ms per "
	      "iteration,\n   best and mean over %.2f s (at least %d iterations); a vCPU thread "
	      "plays the guest,\n   host and guest pinned to a core each; load %.2f%s\n",
	      budget, MIN_ITERS, load_avg(), opt.quick ? "; --quick: memory not prefaulted" : "");
	table("   " KVM_LABEL ":\n   best ms per iteration, a constant from that dated "
	      "measurement, not measured in this run\n");
	table("   ours/KVM: our mean over it (upstream's figure is a run's time over its "
	      "iterations);\n   setup: our best over it (upstream keeps its best setup), no vCPU "
	      "running\n");
	table("  %-14s %6s %6s %10s %10s %11s %9s\n", "case", "slots", "iters", "best", "mean",
	      "kernel KVM", "ours/KVM");
}

static void mp_verdict(const struct mp_row *rows, size_t n)
{
	const struct mp_row *lo = NULL, *hi = NULL;
	unsigned int half = 0, ran = 0;

	for (size_t i = 0; i < n; i++) {
		if (isnan(rows[i].ratio))
			continue;
		ran++;
		half += rows[i].ratio <= 0.5;
		lo = !lo || rows[i].ratio < lo->ratio ? &rows[i] : lo;
		hi = !hi || rows[i].ratio > hi->ratio ? &rows[i] : hi;
	}
	if (!ran)
		return;
	table("  verdict: against the " KVM_LABEL ", a constant, ours takes %.3fx (%s at %u "
	      "slots) to %.3fx (%s at %u slots) of its time; %u of %u figures at most half\n",
	      lo->ratio, lo->kase, lo->slots, hi->ratio, hi->kase, hi->slots, half, ran);
}

static void mp_targets(const struct mp_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char what[96];

		snprintf(what, sizeof(what), "memslot-perf %s at %u slots <= half of kernel KVM",
			 rows[i].kase, rows[i].slots);
		target(what, rows[i].ratio, "x", rows[i].ratio <= 0.5);
	}
}

void scenario_memslot_perf(void)
{
	const double budget = opt.duration ? opt.duration : opt.quick ? 0.01 : 2;
	struct mp_row rows[2 * NCASES];
	size_t nrows = 0;
	cpu_set_t was;

	mp_host = mmap(NULL, MEM_SIZE + PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | (opt.quick ? 0 : MAP_POPULATE), -1, 0);
	if (mp_host == MAP_FAILED)
		abort();
	/* Asked before this thread is pinned: afterwards it may only use one. */
	mp_cpu[0] = allowed_cpu(0);
	mp_cpu[1] = allowed_cpu(1);
	/* Back to where it may run at the end: the scenarios after it are not pinned. */
	sched_getaffinity(0, sizeof(was), &was);
	if (mp_cpu[1] >= 0)
		pin_self(mp_cpu[0]);
	mp_heading(budget);
	for (size_t i = 0; i < NCASES; i++)
		for (int k = 0; k < 2; k++) {
			const struct mp_case *c = &cases[i];
			struct mp_result res = { 0 };
			bool ok = c->run(c, c->slots[k], budget, &res);

			opt.failed |= !ok;
			rows[nrows++] = mp_report(c, c->slots[k], &res, ok);
		}
	mp_verdict(rows, nrows);
	mp_targets(rows, nrows);
	sched_setaffinity(0, sizeof(was), &was);
	munmap(mp_host, MEM_SIZE + PAGE);
}
