/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memslots-bench: what users of the library care about, each figure beside
 * its competitor in the same run.  Scenarios: translate (lookups against the
 * peers' lookups), update (memslot updates against the kernel's KVM when
 * /dev/kvm opens), invalidate (start+end pairs per gate, elision on and off),
 * update-under-load (the upstream commit's admitted unfairness), lockdep (validator off
 * and on).  Prints figures, never judges time; targets are reported as met
 * or missed with the figure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "locks.h"
#include "memslots.h"
#include "memslots_lockdep.h"

static struct {
	bool quick, csv, json;
	const char *only, *plot_dir;
	int rows;
} opt;

static char *arena; /* one host page all slots may share */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double percentile(double *v, int n, int pct)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(n - 1) * pct / 100];
}

/* One figure: printed in the table, and kept for --csv / --json. */
static void record(const char *scenario, const char *what, double value, const char *unit)
{
	if (opt.csv)
		printf("%s,%s,%.2f,%s\n", scenario, what, value, unit);
	else if (opt.json)
		printf("%s{\"scenario\":\"%s\",\"case\":\"%s\",\"value\":%.2f,\"unit\":\"%s\"}",
		       opt.rows ? ",\n" : "[", scenario, what, value, unit);
	opt.rows++;
}

static void table(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void table(const char *fmt, ...)
{
	va_list ap;

	if (opt.csv || opt.json)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void target(const char *what, double value, const char *unit, bool met)
{
	table("  target %-46s %10.1f %-3s %s\n", what, value, unit, met ? "met" : "MISSED");
}

static FILE *plot_data(const char *name)
{
	char path[512];

	if (!opt.plot_dir)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s.dat", opt.plot_dir, name);
	return fopen(path, "w");
}

static struct ms_vm *vm_with(enum ms_gate gate, bool no_elision)
{
	struct ms_config cfg;
	struct ms_vm *vm;

	ms_config_init(&cfg);
	cfg.gate = gate;
	cfg.no_elision = no_elision;
	if (ms_vm_create(&cfg, &vm))
		abort();
	return vm;
}

/* Slot i: one page at gpa 2i pages, all mapping the arena page. */
static void add_slots(struct ms_vm *vm, unsigned int from, unsigned int to)
{
	for (unsigned int i = from; i < to; i++) {
		struct ms_region r = { i, 0, (uint64_t)i * 2 * MS_PAGE_SIZE, MS_PAGE_SIZE,
				       (uintptr_t)arena };

		if (ms_set_memory_region(vm, &r))
			abort();
	}
}

/* --- translate ------------------------------------------------------- */

struct region {
	uint64_t gpa, size, hva;
};

/* libvhost-user's way: a linear scan of the region table. */
static uint64_t peer_linear(const struct region *t, unsigned int n, uint64_t gpa)
{
	for (unsigned int i = 0; i < n; i++)
		if (gpa - t[i].gpa < t[i].size)
			return t[i].hva + gpa - t[i].gpa;
	return 0;
}

/* rust-vmm vm-memory's way: binary search of regions sorted by address. */
static uint64_t peer_bsearch(const struct region *t, unsigned int n, uint64_t gpa)
{
	unsigned int lo = 0, hi = n;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (t[mid].gpa <= gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && gpa - t[lo - 1].gpa < t[lo - 1].size ? t[lo - 1].hva + gpa - t[lo - 1].gpa : 0;
}

static void scenario_translate(void)
{
	static const unsigned int sizes[] = { 1, 8, 64, 509, 4096, 32764 };
	const unsigned int queries = 4096, reps = opt.quick ? 20 : 400;
	uint64_t *gfns = malloc(queries * sizeof(*gfns)), x = 88172645463325252ull, sink = 0;
	FILE *dat = plot_data("translate");
	double miss32764 = 0, bs32764 = 0, hit_worst = 0;

	table("\n== translate: ns per lookup (random gfns for miss and peers)\n");
	table("  %6s %8s %8s %8s %10s %10s %9s %9s\n", "slots", "hit", "miss", "read8", "linear",
	      "bsearch", "vs linear", "vs bsearch");
	for (unsigned int s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		unsigned int n = sizes[s];
		struct ms_vm *vm = vm_with(MS_GATE_COUNT, false);
		struct region *table_ = malloc(n * sizeof(*table_));
		struct ms_vcpu *vcpu;
		double t, hit, miss, read8, lin, bs;
		uint64_t hva;
		char buf[8];

		add_slots(vm, 0, n);
		ms_vcpu_create(vm, &vcpu);
		for (unsigned int i = 0; i < n; i++)
			table_[i] = (struct region){ (uint64_t)i * 2 * MS_PAGE_SIZE, MS_PAGE_SIZE,
						     (uintptr_t)arena };
		for (unsigned int i = 0; i < queries; i++)
			gfns[i] = (rnd(&x) % n) * 2;
		t = now_ns();
		for (unsigned int r = 0; r < reps; r++)
			for (unsigned int i = 0; i < queries; i++)
				sink += ms_gfn_to_hva(vcpu, 0, gfns[0], false, &hva) + hva;
		hit = (now_ns() - t) / reps / queries;
		t = now_ns();
		for (unsigned int r = 0; r < reps; r++)
			for (unsigned int i = 0; i < queries; i++)
				sink += ms_gfn_to_hva(vcpu, 0, gfns[i] + (r & 1) * 0, false, &hva) +
					hva;
		miss = (now_ns() - t) / reps / queries;
		ms_vcpu_read(vcpu, 0, 0, buf, 8);
		t = now_ns();
		for (unsigned int r = 0; r < reps; r++)
			for (unsigned int i = 0; i < queries; i++)
				sink += ms_vcpu_read(vcpu, 0, 0, buf, 8) + buf[0];
		read8 = (now_ns() - t) / reps / queries;
		t = now_ns();
		for (unsigned int r = 0; r < (n > 509 ? 1 : reps); r++)
			for (unsigned int i = 0; i < queries; i++)
				sink += peer_linear(table_, n, gfns[i] * MS_PAGE_SIZE);
		lin = (now_ns() - t) / (n > 509 ? 1 : reps) / queries;
		t = now_ns();
		for (unsigned int r = 0; r < reps; r++)
			for (unsigned int i = 0; i < queries; i++)
				sink += peer_bsearch(table_, n, gfns[i] * MS_PAGE_SIZE);
		bs = (now_ns() - t) / reps / queries;
		table("  %6u %8.1f %8.1f %8.1f %10.1f %10.1f %8.2fx %8.2fx\n", n, hit, miss, read8,
		      lin, bs, lin / miss, bs / miss);
		record("translate", "hit", hit, "ns");
		record("translate", "miss", miss, "ns");
		if (dat)
			fprintf(dat, "%u %.2f %.2f %.2f %.2f %.2f\n", n, hit, miss, read8, lin, bs);
		hit_worst = hit > hit_worst ? hit : hit_worst;
		miss32764 = miss;
		bs32764 = bs;
		ms_vcpu_destroy(vcpu);
		ms_vm_destroy(vm);
		free(table_);
	}
	target("hit <= 5 ns (worst over slot counts)", hit_worst, "ns", hit_worst <= 5);
	target("miss at 32764 slots <= 50 ns", miss32764, "ns", miss32764 <= 50);
	target("miss at 32764 >= 1.8x faster than bsearch", bs32764 / miss32764, "x",
	       bs32764 / miss32764 >= 1.8);
	if (dat)
		fclose(dat);
	free(gfns);
	if (sink == 42)
		putchar(' ');
}

/* --- update ------------------------------------------------------------ */

typedef int (*set_fn)(void *ctx, struct ms_region *r);

static int ms_set(void *ctx, struct ms_region *r)
{
	return ms_set_memory_region(ctx, r);
}

struct kvm_vm {
	int kvm, vm;
	unsigned int max_slots;
};

static int kvm_set(void *ctx, struct ms_region *r)
{
	struct kvm_vm *k = ctx;
	struct kvm_userspace_memory_region m = { r->slot, r->flags, r->guest_phys_addr,
						 r->memory_size, r->userspace_addr };

	return ioctl(k->vm, KVM_SET_USER_MEMORY_REGION, &m) ? -errno : 0;
}

static bool kvm_open(struct kvm_vm *k)
{
	k->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm < 0)
		return false;
	k->vm = ioctl(k->kvm, KVM_CREATE_VM, 0);
	if (k->vm < 0) {
		close(k->kvm);
		return false;
	}
	k->max_slots = ioctl(k->kvm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	return true;
}

static void kvm_close(struct kvm_vm *k)
{
	close(k->vm);
	close(k->kvm);
}

/* p50 of create, move, flags, delete of slot 0 beside n-1 others; p99 in p99[]. */
static bool measure_updates(set_fn set, void *ctx, unsigned int n, double p50[4], double p99[4])
{
	const int iters = opt.quick ? 20 : 300;
	double *lat[4];
	bool ok = true;

	for (int k = 0; k < 4; k++)
		lat[k] = malloc(iters * sizeof(double));
	for (unsigned int i = 1; i < n && ok; i++) {
		struct ms_region r = { i, 0, (uint64_t)i * 2 * MS_PAGE_SIZE, MS_PAGE_SIZE,
				       (uintptr_t)arena };

		ok = !set(ctx, &r);
	}
	for (int it = 0; it < iters && ok; it++) {
		struct ms_region r = { 0, 0, 1ull << 36, MS_PAGE_SIZE, (uintptr_t)arena };
		double t = now_ns();

		ok &= !set(ctx, &r); /* create */
		lat[0][it] = now_ns() - t;
		r.guest_phys_addr += MS_PAGE_SIZE;
		t = now_ns();
		ok &= !set(ctx, &r); /* move */
		lat[1][it] = now_ns() - t;
		r.flags = MS_MEM_LOG_DIRTY_PAGES;
		t = now_ns();
		ok &= !set(ctx, &r); /* flags */
		lat[2][it] = now_ns() - t;
		r.memory_size = 0;
		t = now_ns();
		ok &= !set(ctx, &r); /* delete */
		lat[3][it] = now_ns() - t;
	}
	for (int k = 0; k < 4; k++) {
		p99[k] = ok ? percentile(lat[k], iters, 99) / 1e3 : 0;
		p50[k] = ok ? percentile(lat[k], iters, 50) / 1e3 : 0;
		free(lat[k]);
	}
	return ok;
}

struct reader {
	struct ms_vm *vm;
	atomic_bool stop, started;
	pthread_t thread;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct ms_vcpu *vcpu;
	uint64_t hva, sink = 0;

	ms_vcpu_create(rd->vm, &vcpu);
	while (!atomic_load_explicit(&rd->stop, memory_order_relaxed)) {
		char c;

		sink += ms_vcpu_read(vcpu, 0, 2 * MS_PAGE_SIZE, &c, 1) + c;
		sink += ms_gfn_to_hva(vcpu, 0, 2, false, &hva);
		atomic_store_explicit(&rd->started, true, memory_order_relaxed);
	}
	ms_vcpu_destroy(vcpu);
	return (void *)(uintptr_t)sink;
}

static void scenario_update(void)
{
	static const unsigned int sizes[] = { 1, 64, 512, 4096, 32764 };
	static const char *const ops[4] = { "create", "move", "flags", "delete" };
	double p50[3][4], p99[3][4], first[2][4] = { { 0 } }, last[2][4] = { { 0 } };
	double worst_ratio = 1e9;
	FILE *dat = plot_data("update");
	bool have_kvm = true;

	table("\n== update: latency of one slot's update beside N others, p50 (p99) in us\n");
	table("  %6s %-7s %18s %18s %18s %10s\n", "N", "op", "memslots", "with a reader",
	      "kernel KVM", "vs kernel");
	for (unsigned int s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		unsigned int n = sizes[s];
		struct ms_vm *vm = vm_with(MS_GATE_COUNT, false),
			     *vm2 = vm_with(MS_GATE_COUNT, false);
		struct reader rd = { .vm = vm2 };
		struct kvm_vm k;
		bool kvm_ok;

		measure_updates(ms_set, vm, n, p50[0], p99[0]);
		add_slots(vm2, 1, n > 2 ? 3 : 2);
		pthread_create(&rd.thread, NULL, reader_main, &rd);
		while (!atomic_load(&rd.started))
			sched_yield();
		measure_updates(ms_set, vm2, n > 3 ? n : 3, p50[1], p99[1]);
		atomic_store(&rd.stop, true);
		pthread_join(rd.thread, NULL);
		kvm_ok = have_kvm && kvm_open(&k);
		if (kvm_ok) {
			kvm_ok =
			    n <= k.max_slots && measure_updates(kvm_set, &k, n, p50[2], p99[2]);
			kvm_close(&k);
		}
		have_kvm &= kvm_ok || n > 4096;
		for (int o = 0; o < 4; o++) {
			char kern[32] = "n/a", ratio[16] = "n/a";

			if (kvm_ok) {
				snprintf(kern, sizeof(kern), "%.2f (%.2f)", p50[2][o], p99[2][o]);
				/* Like for like: the kernel VM runs no vCPU either. */
				snprintf(ratio, sizeof(ratio), "%.1fx", p50[2][o] / p50[0][o]);
				worst_ratio = p50[2][o] / p50[0][o] < worst_ratio
						  ? p50[2][o] / p50[0][o]
						  : worst_ratio;
				record("update", ops[o], p50[2][o], "us kernel");
			}
			table("  %6u %-7s %9.2f (%6.2f) %9.2f (%6.2f) %18s %10s\n", n, ops[o],
			      p50[0][o], p99[0][o], p50[1][o], p99[1][o], kern, ratio);
			record("update", ops[o], p50[1][o], "us");
			for (int c = 0; c < 2; c++) {
				if (s == 0)
					first[c][o] = p50[c][o];
				last[c][o] = p50[c][o];
			}
		}
		if (dat)
			fprintf(dat, "%u %.3f %.3f %.3f %.3f\n", n, p50[1][0], p50[1][1], p50[1][2],
				p50[1][3]);
		ms_vm_destroy(vm);
		ms_vm_destroy(vm2);
	}
	for (int c = 0; c < 2; c++)
		for (int o = 0; o < 4; o++) {
			char what[64];

			snprintf(what, sizeof(what), "%s flat%s: 32764 within 2x of 1", ops[o],
				 c ? " with a reader" : "");
			target(what, last[c][o] / first[c][o], "x", last[c][o] <= 2 * first[c][o]);
		}
	if (worst_ratio < 1e9)
		target(">= 5x faster than the kernel, no vCPU (worst)", worst_ratio, "x",
		       worst_ratio >= 5);
	else
		table("  kernel KVM: /dev/kvm could not be used; its column is n/a\n");
	if (dat)
		fclose(dat);
}

/* --- invalidate ---------------------------------------------------------- */

struct inval_thread {
	struct ms_vm *vm;
	uint64_t start, end;
	atomic_bool *stop;
	unsigned long pairs;
	pthread_t thread;
};

static void *inval_main(void *arg)
{
	struct inval_thread *t = arg;

	while (!atomic_load_explicit(t->stop, memory_order_relaxed)) {
		if (ms_invalidate_range_start(t->vm, t->start, t->end, true) == 0)
			ms_invalidate_range_end(t->vm, t->start, t->end);
		t->pairs++;
	}
	return NULL;
}

/* ns per start+end pair per thread; a reader faults in the slots meanwhile. */
static double run_invalidations(enum ms_gate gate, bool no_elision, bool related,
				unsigned int nthreads, double seconds)
{
	struct ms_vm *vm = vm_with(gate, no_elision);
	struct inval_thread t[4];
	struct reader rd = { .vm = vm };
	atomic_bool stop = false;
	unsigned long pairs = 0;
	uint64_t base = related ? (uintptr_t)arena : 0x10000000000ull;

	add_slots(vm, 1, 9);
	pthread_create(&rd.thread, NULL, reader_main, &rd);
	for (unsigned int i = 0; i < nthreads; i++) {
		t[i] = (struct inval_thread){
			.vm = vm, .start = base, .end = base + MS_PAGE_SIZE, .stop = &stop
		};
		pthread_create(&t[i].thread, NULL, inval_main, &t[i]);
	}
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&stop, true);
	for (unsigned int i = 0; i < nthreads; i++) {
		pthread_join(t[i].thread, NULL);
		pairs += t[i].pairs;
	}
	atomic_store(&rd.stop, true);
	pthread_join(rd.thread, NULL);
	ms_vm_destroy(vm);
	return seconds * 1e9 * nthreads / (pairs ? pairs : 1);
}

static const char *gate_name(enum ms_gate g)
{
	return g == MS_GATE_COUNT ? "count" : g == MS_GATE_RWSEM ? "rwsem" : "none";
}

static void scenario_invalidate(void)
{
	const double secs = opt.quick ? 0.05 : 0.5;
	unsigned int nproc = sysconf(_SC_NPROCESSORS_ONLN) > 4 ? 4 : sysconf(_SC_NPROCESSORS_ONLN);
	double pairs_per_us[3][2][2][4] = { { { { 0 } } } };
	FILE *dat = plot_data("invalidate");

	table("\n== invalidate: ns per start+end pair per thread (one vCPU reading meanwhile)\n");
	table("  %-6s %-8s %-10s", "gate", "elision", "range");
	for (unsigned int n = 1; n <= nproc; n++)
		table(" %9u thr", n);
	table("\n");
	for (int g = MS_GATE_COUNT; g <= MS_GATE_NONE; g++)
		for (int off = 0; off < 2; off++)
			for (int related = 0; related < 2; related++) {
				table("  %-6s %-8s %-10s", gate_name(g), off ? "off" : "on",
				      related ? "in a slot" : "no slot");
				for (unsigned int n = 1; n <= nproc; n++) {
					double ns = run_invalidations(g, off, related, n, secs);

					table(" %13.1f", ns);
					record("invalidate", "pair", ns, "ns");
					pairs_per_us[g][off][related][n - 1] = 1e3 / ns * n;
				}
				table("\n");
			}
	/* Chart: unrelated ranges, total pairs per us against threads. */
	for (unsigned int n = 1; dat && n <= nproc; n++)
		fprintf(dat, "%u %.3f %.3f %.3f %.3f\n", n, pairs_per_us[0][0][0][n - 1],
			pairs_per_us[0][1][0][n - 1], pairs_per_us[1][0][0][n - 1],
			pairs_per_us[2][0][0][n - 1]);
	if (dat)
		fclose(dat);
}

/* --- update under load ---------------------------------------------------- */

static void scenario_update_under_load(void)
{
	const double run_s = opt.quick ? 0.2 : 2, starved_ms = opt.quick ? 50 : 200;
	FILE *dat = plot_data("update-under-load");

	table("\n== update-under-load: update latency while 2 threads invalidate unrelated ranges "
	      "back to back\n");
	table("  %-6s %8s %12s %12s %12s %s\n", "gate", "updates", "p50 us", "p99 us", "max us",
	      "starved");
	for (int g = MS_GATE_COUNT; g <= MS_GATE_NONE; g++) {
		struct ms_vm *vm = vm_with(g, false);
		struct inval_thread t[2];
		atomic_bool stop = false;
		double *lat = malloc(100000 * sizeof(double)), t0 = now_ns();
		int n = 0, starved = 0;

		add_slots(vm, 1, 9);
		for (int i = 0; i < 2; i++) {
			t[i] = (struct inval_thread){ .vm = vm,
						      .start = 0x10000000000ull,
						      .end = 0x10000001000ull,
						      .stop = &stop };
			pthread_create(&t[i].thread, NULL, inval_main, &t[i]);
		}
		/* Updates for 80% of the run; the invalidators stop at its end, so a
		 * starved update still finishes and is counted as such. */
		while (n < 100000 && now_ns() - t0 < run_s * 0.8e9) {
			struct ms_region r = { 0, 0, 1ull << 36, n & 1 ? 0 : MS_PAGE_SIZE,
					       (uintptr_t)arena };
			double t1 = now_ns();

			if (now_ns() - t0 > run_s * 1e9)
				atomic_store(&stop, true);
			ms_set_memory_region(vm, &r);
			lat[n] = (now_ns() - t1) / 1e3;
			starved += lat[n] > starved_ms * 1e3;
			n++;
		}
		atomic_store(&stop, true);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i].thread, NULL);
		if (dat) {
			qsort(lat, n, sizeof(*lat), cmp_double);
			for (int i = 0; i < n; i += n / 200 + 1)
				fprintf(dat, "%s %.3f %.4f\n", gate_name(g), lat[i], (double)i / n);
			fprintf(dat, "\n\n");
		}
		table("  %-6s %8d %12.1f %12.1f %12.1f %d over %.0f ms\n", gate_name(g), n,
		      percentile(lat, n, 50), percentile(lat, n, 99), percentile(lat, n, 100),
		      starved, starved_ms);
		record("update-under-load", gate_name(g), percentile(lat, n, 99), "us p99");
		free(lat);
		ms_vm_destroy(vm);
	}
	if (dat)
		fclose(dat);
}

/* --- lockdep ----------------------------------------------------------------- */

static void lockdep_pass(const char *label, double *lock_ns, double *inval_ns)
{
	const long iters = opt.quick ? 200000 : 5000000;
	struct ms_vm *vm = vm_with(MS_GATE_COUNT, false);
	struct ms_spinlock l;
	double t;

	ms_spin_lock_init(&l, "bench_lock");
	t = now_ns();
	for (long i = 0; i < iters; i++) {
		ms_spin_lock(&l);
		ms_spin_unlock(&l);
	}
	*lock_ns = (now_ns() - t) / iters;
	t = now_ns();
	for (long i = 0; i < iters / 10; i++) {
		ms_invalidate_range_start(vm, 0x10000000000ull, 0x10000001000ull, true);
		ms_invalidate_range_end(vm, 0x10000000000ull, 0x10000001000ull);
	}
	*inval_ns = (now_ns() - t) / (iters / 10);
	table("  %-10s %22.2f %26.2f\n", label, *lock_ns, *inval_ns);
	ms_vm_destroy(vm);
}

static void scenario_lockdep(void)
{
	double lock_off, inval_off, lock_on, inval_on;

	table("\n== lockdep: the validator off (one branch per annotation) and on, ns\n");
	table("  %-10s %22s %26s\n", "validator", "spinlock lock+unlock",
	      "unrelated start+end pair");
	lockdep_pass("off", &lock_off, &inval_off);
	ms_lockdep_enable();
	lockdep_pass("on", &lock_on, &inval_on);
	table("  %-10s %21.1fx %25.1fx\n", "on / off", lock_on / lock_off, inval_on / inval_off);
	record("lockdep", "lock off", lock_off, "ns");
	record("lockdep", "lock on", lock_on, "ns");
}

/* --- main ----------------------------------------------------------------- */

static const struct chart {
	const char *name, *gnuplot;
} charts[] = {
	{ "translate",
	  "set logscale xy; set xlabel 'slots'; set ylabel 'ns per lookup'\n"
	  "set title 'Translation: memslots against peer lookups'\n"
	  "plot 'translate.dat' u 1:2 w lp t 'memslots hit', '' u 1:3 w lp t 'memslots miss',"
	  " '' u 1:4 w lp t 'memslots vcpu_read 8 B', '' u 1:5 w lp t 'linear scan "
	  "(libvhost-user)',"
	  " '' u 1:6 w lp t 'binary search (vm-memory)'\n" },
	{ "update", "set logscale x; set xlabel 'slots'; set ylabel 'us (p50)'\n"
		    "set title 'Memslot update latency with a vCPU reading'\n"
		    "plot 'update.dat' u 1:2 w lp t 'create', '' u 1:3 w lp t 'move', '' u 1:4 w "
		    "lp t 'flags',"
		    " '' u 1:5 w lp t 'delete'\n" },
	{ "invalidate",
	  "set xlabel 'invalidating threads'; set ylabel 'start+end pairs per us, all threads'\n"
	  "set xtics 1; set title 'Invalidations of ranges that touch no slot'\n"
	  "plot 'invalidate.dat' u 1:2 w lp t 'count gate, elision on',"
	  " '' u 1:3 w lp t 'count gate, elision off', '' u 1:4 w lp t 'rwsem gate, elision on',"
	  " '' u 1:5 w lp t 'no gate, elision on'\n" },
	{ "update-under-load",
	  "set logscale x; set xlabel 'update latency (us)'; set ylabel 'fraction of updates'\n"
	  "set title 'Update latency while invalidations run back to back'\n"
	  "plot 'update-under-load.dat' index 0 u 2:3 w l t 'count (upstream)', '' index 1 u 2:3 w l t"
	  " 'rwsem', '' index 2 u 2:3 w l t 'none'\n" },
};

/* One PNG per data file this run wrote. */
static void plot(void)
{
	for (size_t i = 0; i < sizeof(charts) / sizeof(charts[0]); i++) {
		char path[512];
		FILE *gp;

		snprintf(path, sizeof(path), "%s/%s.dat", opt.plot_dir, charts[i].name);
		if (access(path, R_OK))
			continue;
		gp = popen("gnuplot", "w");
		if (!gp) {
			fprintf(stderr, "memslots-bench: gnuplot not found\n");
			return;
		}
		fprintf(gp,
			"set terminal pngcairo size 900,540 noenhanced\ncd '%s'\n"
			"set key left top; set grid\nset output '%s.png'\n%s",
			opt.plot_dir, charts[i].name, charts[i].gnuplot);
		pclose(gp);
	}
}

static _Noreturn void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: memslots-bench [--quick] [--scenario NAME] [--csv|--json] [--plot DIR]\n"
		"  --scenario NAME  translate | update | invalidate | update-under-load | lockdep\n"
		"  --quick          tiny counts: a smoke run of seconds\n"
		"  --csv, --json    figures as CSV rows or one JSON array instead of tables\n"
		"  --plot DIR       write PNG charts there with gnuplot\n");
	exit(code);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "csv", no_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "scenario", required_argument, NULL, 's' },
		{ "plot", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct {
		const char *name;
		void (*run)(void);
	} scenarios[] = {
		{ "translate", scenario_translate },
		{ "update", scenario_update },
		{ "invalidate", scenario_invalidate },
		{ "update-under-load", scenario_update_under_load },
		{ "lockdep", scenario_lockdep },
	};
	bool found = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			opt.quick = true;
			break;
		case 'c':
			opt.csv = true;
			break;
		case 'j':
			opt.json = true;
			break;
		case 's':
			opt.only = optarg;
			break;
		case 'p':
			opt.plot_dir = optarg;
			break;
		case 'h':
			usage(0);
		default:
			fprintf(stderr, "memslots-bench: bad option %s (see --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		found |= !opt.only || !strcmp(opt.only, scenarios[i].name);
	if (!found || optind < argc) {
		fprintf(stderr, "memslots-bench: bad scenario or argument (see --help)\n");
		return 2;
	}
	arena =
	    mmap(NULL, MS_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (opt.only && strcmp(opt.only, scenarios[i].name))
			continue;
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "memslots-bench: running %s...\n", scenarios[i].name);
		scenarios[i].run();
	}
	if (opt.json)
		printf("%s]\n", opt.rows ? "" : "[");
	if (opt.plot_dir)
		plot();
	return 0;
}
