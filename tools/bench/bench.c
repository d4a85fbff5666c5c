/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memslots-bench: what users of the library care about, each figure beside
 * its competitor in the same run.  Scenarios: translate (lookups against the
 * peers' lookups), update (memslot updates against the kernel's KVM when
 * /dev/kvm opens), invalidate (start+end pairs per gate, elision on and off),
 * update-under-load (the upstream commit's admitted unfairness), lockdep (validator off
 * and on).  Prints figures, never judges time; targets are reported as met
 * or missed with the figure.  --csv and --json print every figure with all
 * its parameters (docs/tools.md).  Exit: 0 done, 1 a figure or chart could
 * not be produced, 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/kvm.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "histogram.h"
#include "locks.h"
#include "memslots.h"
#include "memslots_lockdep.h"

static struct {
	bool quick, csv, json;
	const char *only, *plot_dir;
	/* --duration, seconds; 0: the scenario's own default. */
	double duration;
	int rows;
	/* A figure or chart that could not be produced: exit 1, result "error". */
	bool failed;
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

/* A percentile of h in ns, divided by scale; NAN when h has too few samples for it. */
static double pct_of(const struct hist *h, double pct, double scale)
{
	uint64_t v;

	return hist_percentile(h, pct, &v) ? v / scale : NAN;
}

/* A figure for the tables: "n/a" for NAN (a percentile the samples do not support). */
static const char *fig(char *buf, size_t size, const char *fmt, double v)
{
	if (isnan(v))
		return "n/a";
	snprintf(buf, size, fmt, v);
	return buf;
}

/*
 * One figure's parameters, each a column of --csv and a key of --json.
 * NULL, -1 (numbers) or ELISION_NA where a parameter does not apply.
 */
enum { ELISION_NA = -1, ELISION_OFF, ELISION_ON };
struct figure {
	const char *scenario, *kase, *series, *stat, *unit, *gate;
	long slots, threads;
	int elision;
};

static const char *const csv_header =
    "scenario,case,slots,threads,gate,elision,series,stat,value,unit";

static void csv_field(const char *s, bool last)
{
	printf("%s%s", s ? s : "", last ? "\n" : ",");
}

static void json_field(const char *key, const char *s)
{
	printf(",\"%s\":", key);
	if (s)
		cli_json_string(stdout, s);
	else
		printf("null");
}

/* One figure (NAN: not supported by the samples): kept for --csv / --json. */
static void record(const struct figure *f, double value)
{
	static const char *const elision[] = { "false", "true" };
	char num[3][32];

	if (!opt.csv && !opt.json)
		return;
	snprintf(num[0], sizeof(num[0]), "%ld", f->slots);
	snprintf(num[1], sizeof(num[1]), "%ld", f->threads);
	snprintf(num[2], sizeof(num[2]), "%.3f", value);
	if (opt.csv) {
		csv_field(f->scenario, false);
		csv_field(f->kase, false);
		csv_field(f->slots < 0 ? NULL : num[0], false);
		csv_field(f->threads < 0 ? NULL : num[1], false);
		csv_field(f->gate, false);
		csv_field(f->elision == ELISION_NA ? NULL : elision[f->elision], false);
		csv_field(f->series, false);
		csv_field(f->stat, false);
		csv_field(isnan(value) ? NULL : num[2], false);
		csv_field(f->unit, true);
	} else {
		printf("%s{\"scenario\":", opt.rows ? ",\n  " : "\n  ");
		cli_json_string(stdout, f->scenario);
		json_field("case", f->kase);
		printf(",\"slots\":%s,\"threads\":%s", f->slots < 0 ? "null" : num[0],
		       f->threads < 0 ? "null" : num[1]);
		json_field("gate", f->gate);
		printf(",\"elision\":%s", f->elision == ELISION_NA ? "null" : elision[f->elision]);
		json_field("series", f->series);
		json_field("stat", f->stat);
		printf(",\"value\":%s", isnan(value) ? "null" : num[2]);
		json_field("unit", f->unit);
		printf("}");
	}
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
	FILE *f;

	if (!opt.plot_dir)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s.dat", opt.plot_dir, name);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "memslots-bench: cannot write %s: %s\n", path, strerror(errno));
		opt.failed = true;
	}
	return f;
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
		{
			/* The peers' random lookups are misses of the last-used slot too. */
			struct figure f = { .scenario = "translate",
					    .kase = "hit",
					    .series = "memslots",
					    .stat = "mean",
					    .unit = "ns",
					    .slots = n,
					    .threads = 1,
					    .elision = ELISION_NA };

			record(&f, hit);
			f.kase = "miss";
			record(&f, miss);
			f.kase = "read8";
			record(&f, read8);
			f.kase = "miss";
			f.series = "linear_scan";
			record(&f, lin);
			f.series = "binary_search";
			record(&f, bs);
		}
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

/*
 * p50 of create, move, flags, delete of slot 0 beside n-1 others, in us;
 * p99 in p99[] (NAN where the iterations are too few for it).
 */
static bool measure_updates(set_fn set, void *ctx, unsigned int n, double p50[4], double p99[4])
{
	const int iters = opt.quick ? 20 : 300;
	static struct hist lat[4];
	bool ok = true;

	for (int k = 0; k < 4; k++)
		hist_init(&lat[k]);
	for (unsigned int i = 1; i < n && ok; i++) {
		struct ms_region r = { i, 0, (uint64_t)i * 2 * MS_PAGE_SIZE, MS_PAGE_SIZE,
				       (uintptr_t)arena };

		ok = !set(ctx, &r);
	}
	for (int it = 0; it < iters && ok; it++) {
		struct ms_region r = { 0, 0, 1ull << 36, MS_PAGE_SIZE, (uintptr_t)arena };
		double t = now_ns();

		ok &= !set(ctx, &r); /* create */
		hist_record(&lat[0], now_ns() - t);
		r.guest_phys_addr += MS_PAGE_SIZE;
		t = now_ns();
		ok &= !set(ctx, &r); /* move */
		hist_record(&lat[1], now_ns() - t);
		r.flags = MS_MEM_LOG_DIRTY_PAGES;
		t = now_ns();
		ok &= !set(ctx, &r); /* flags */
		hist_record(&lat[2], now_ns() - t);
		r.memory_size = 0;
		t = now_ns();
		ok &= !set(ctx, &r); /* delete */
		hist_record(&lat[3], now_ns() - t);
	}
	for (int k = 0; k < 4; k++) {
		p99[k] = ok ? pct_of(&lat[k], 99, 1e3) : 0;
		p50[k] = ok ? pct_of(&lat[k], 50, 1e3) : 0;
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
			static const char *const series[3] = { "memslots", "memslots_with_reader",
							       "kernel_kvm" };
			char kern[32] = "n/a", ratio[16] = "n/a", b[4][16];

			if (kvm_ok) {
				snprintf(kern, sizeof(kern), "%.2f (%s)", p50[2][o],
					 fig(b[0], sizeof(b[0]), "%.2f", p99[2][o]));
				/* Like for like: the kernel VM runs no vCPU either. */
				snprintf(ratio, sizeof(ratio), "%.1fx", p50[2][o] / p50[0][o]);
				worst_ratio = p50[2][o] / p50[0][o] < worst_ratio
						  ? p50[2][o] / p50[0][o]
						  : worst_ratio;
			}
			table("  %6u %-7s %9.2f (%6s) %9.2f (%6s) %18s %10s\n", n, ops[o],
			      p50[0][o], fig(b[1], sizeof(b[1]), "%.2f", p99[0][o]), p50[1][o],
			      fig(b[2], sizeof(b[2]), "%.2f", p99[1][o]), kern, ratio);
			for (int c = 0; c < (kvm_ok ? 3 : 2); c++) {
				/* The kernel's VM has no gate or elision of ours. */
				struct figure f = { .scenario = "update",
						    .kase = ops[o],
						    .series = series[c],
						    .stat = "p50",
						    .unit = "us",
						    .gate = c < 2 ? "count" : NULL,
						    .slots = c == 1 && n < 3 ? 3 : n,
						    .threads = c == 1 ? 2 : 1,
						    .elision = c < 2 ? ELISION_ON : ELISION_NA };

				record(&f, p50[c][o]);
				f.stat = "p99";
				record(&f, p99[c][o]);
			}
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


static void scenario_invalidate(void)
{
	const double secs = opt.duration ? opt.duration : opt.quick ? 0.05 : 0.5;
	unsigned int nproc = sysconf(_SC_NPROCESSORS_ONLN) > 4 ? 4 : sysconf(_SC_NPROCESSORS_ONLN);
	double pairs_per_us[3][2][2][4] = { { { { 0 } } } };
	FILE *dat = plot_data("invalidate");

	table("\n== invalidate: ns per start+end pair per thread (one vCPU reading meanwhile)\n");
	table("  %-6s %-8s %-10s", "gate", "elision", "range");
	for (unsigned int n = 1; n <= nproc; n++)
		table(" %9u thr", n);
	table("\n");
	for (int g = MS_GATE_COUNT; g <= MS_GATE_FAIR; g++)
		for (int off = 0; off < 2; off++)
			for (int related = 0; related < 2; related++) {
				table("  %-6s %-8s %-10s", cli_gate_name(g), off ? "off" : "on",
				      related ? "in a slot" : "no slot");
				for (unsigned int n = 1; n <= nproc; n++) {
					double ns = run_invalidations(g, off, related, n, secs);
					/* Slots 1..8 exist: run_invalidations adds them. */
					struct figure f = { .scenario = "invalidate",
							    .kase = "pair",
							    .series = related ? "range_in_slot"
									      : "range_no_slot",
							    .stat = "mean",
							    .unit = "ns",
							    .gate = cli_gate_name(g),
							    .slots = 8,
							    .threads = n,
							    .elision =
								off ? ELISION_OFF : ELISION_ON };

					table(" %13.1f", ns);
					record(&f, ns);
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
	const double run_s = opt.duration ? opt.duration : opt.quick ? 0.2 : 2;
	const double starved_ms = opt.quick ? 50 : 200;
	static const double pcts[] = { 50, 99, 99.9, 100 };
	static const char *const pct_keys[] = { "p50", "p99", "p99_9", "max" };
	FILE *dat = plot_data("update-under-load");
	static struct hist lat;

	table("\n== update-under-load: update latency while 2 threads invalidate unrelated ranges "
	      "back to back\n");
	table("  %-6s %8s %12s %12s %12s %s\n", "gate", "updates", "p50 us", "p99 us", "max us",
	      "starved");
	for (int g = MS_GATE_COUNT; g <= MS_GATE_FAIR; g++) {
		struct ms_vm *vm = vm_with(g, false);
		struct inval_thread t[2];
		atomic_bool stop = false;
		double t0 = now_ns();
		uint64_t seen = 0;
		int n = 0, starved = 0;
		char b[3][16];

		hist_init(&lat);
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
		while (now_ns() - t0 < run_s * 0.8e9) {
			struct ms_region r = { 0, 0, 1ull << 36, n & 1 ? 0 : MS_PAGE_SIZE,
					       (uintptr_t)arena };
			double t1 = now_ns(), ns;

			if (now_ns() - t0 > run_s * 1e9)
				atomic_store(&stop, true);
			ms_set_memory_region(vm, &r);
			ns = now_ns() - t1;
			hist_record(&lat, ns);
			starved += ns > starved_ms * 1e6;
			n++;
		}
		atomic_store(&stop, true);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i].thread, NULL);
		/* The CDF, one point per bucket the updates fell in. */
		for (size_t i = 0; dat && i < HIST_BUCKETS; i++) {
			uint64_t c = hist_bucket_count(&lat, i);

			if (!c)
				continue;
			seen += c;
			fprintf(dat, "%s %.3f %.4f\n", cli_gate_name(g),
				hist_bucket_high(&lat, i) / 1e3, (double)seen / n);
		}
		if (dat)
			fprintf(dat, "\n\n");
		table("  %-6s %8d %12s %12s %12s %d over %.0f ms\n", cli_gate_name(g), n,
		      fig(b[0], sizeof(b[0]), "%.1f", pct_of(&lat, 50, 1e3)),
		      fig(b[1], sizeof(b[1]), "%.1f", pct_of(&lat, 99, 1e3)),
		      fig(b[2], sizeof(b[2]), "%.1f", pct_of(&lat, 100, 1e3)), starved, starved_ms);
		for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
			/* Slot 0 comes and goes beside slots 1..8; two threads invalidate. */
			struct figure f = { .scenario = "update-under-load",
					    .kase = "update",
					    .series = "memslots",
					    .stat = pct_keys[i],
					    .unit = "us",
					    .gate = cli_gate_name(g),
					    .slots = 9,
					    .threads = 2,
					    .elision = ELISION_ON };

			record(&f, pct_of(&lat, pcts[i], 1e3));
		}
		{
			struct figure f = { .scenario = "update-under-load",
					    .kase = "update",
					    .series = "memslots",
					    .stat = "count",
					    .unit = "updates",
					    .gate = cli_gate_name(g),
					    .slots = 9,
					    .threads = 2,
					    .elision = ELISION_ON };

			record(&f, n);
			f.stat = "starved";
			record(&f, starved);
		}
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
	{
		struct figure f = { .scenario = "lockdep",
				    .kase = "spinlock_pair",
				    .series = "validator_off",
				    .stat = "mean",
				    .unit = "ns",
				    .slots = -1,
				    .threads = 1,
				    .elision = ELISION_NA };

		record(&f, lock_off);
		f.series = "validator_on";
		record(&f, lock_on);
		/* The pair's range is in no slot of a VM that has none: elided. */
		f.kase = "invalidate_pair";
		f.series = "validator_off";
		f.gate = "count";
		f.slots = 0;
		f.elision = ELISION_ON;
		record(&f, inval_off);
		f.series = "validator_on";
		record(&f, inval_on);
	}
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

/* A program of that name on $PATH: popen would only say so by a SIGPIPE. */
static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t len = strcspn(p, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, len ? p : ".", prog);
		if (!access(buf, X_OK))
			return true;
		p += len + (p[len] == ':');
	}
	return false;
}

/* One PNG per data file this run wrote; false when gnuplot failed. */
static bool plot(void)
{
	bool ok = true;

	/* A gnuplot that dies early must fail its chart, not kill us by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(charts) / sizeof(charts[0]); i++) {
		char path[512], png[512];
		bool werr;
		FILE *gp;
		int st;

		snprintf(path, sizeof(path), "%s/%s.dat", opt.plot_dir, charts[i].name);
		if (access(path, R_OK))
			continue;
		/* Gone unless gnuplot draws it again: an old chart is no success. */
		snprintf(png, sizeof(png), "%s/%s.png", opt.plot_dir, charts[i].name);
		unlink(png);
		gp = popen("gnuplot", "w");
		if (!gp) {
			fprintf(stderr, "memslots-bench: cannot run gnuplot: %s\n",
				strerror(errno));
			return false;
		}
		fprintf(gp,
			"set terminal pngcairo size 900,540 noenhanced\ncd '%s'\n"
			"set key left top; set grid\nset output '%s.png'\n%s",
			opt.plot_dir, charts[i].name, charts[i].gnuplot);
		werr = fflush(gp) || ferror(gp);
		st = pclose(gp);
		if (werr || st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) || access(png, R_OK)) {
			fprintf(stderr, "memslots-bench: gnuplot failed to draw %s/%s.png\n",
				opt.plot_dir, charts[i].name);
			ok = false;
		}
	}
	return ok;
}

static _Noreturn void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: memslots-bench [options]\n"
		"  --scenario NAME     translate | update | invalidate | update-under-load |\n"
		"                      lockdep (default: all)\n"
		"  --quick             tiny counts: a smoke run of seconds\n"
		"  --duration SECONDS  per measurement of invalidate and update-under-load;\n"
		"                      the other scenarios count iterations and refuse it\n"
		"  --csv               each figure a CSV row with its parameters, header first\n"
		"  --json              one JSON document of every figure (docs/tools.md)\n"
		"  --plot DIR          draw PNG charts there with gnuplot (DIR must exist)\n"
		"  --version           print the version\n"
		"  -h, --help          this text\n"
		"exit: 0 done, 1 a figure or chart could not be produced, 2 bad usage\n");
	exit(code);
}

/* Checked before minutes of measuring, not after. */
static void check_plot_dir(void)
{
	char probe[512];
	struct stat st;
	int fd = -1;

	/* By creating a file: access() says yes to root on a read-only mount. */
	snprintf(probe, sizeof(probe), "%s/.memslots-bench-XXXXXX", opt.plot_dir);
	if (!stat(opt.plot_dir, &st) && S_ISDIR(st.st_mode))
		fd = mkstemp(probe);
	if (fd < 0)
		cli_bad_value("plot", opt.plot_dir, "a writable directory");
	close(fd);
	unlink(probe);
	if (!on_path("gnuplot")) {
		fprintf(stderr, "memslots-bench: --plot needs gnuplot, which is not on PATH "
				"(scripts/install-deps.sh bench installs it)\n");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "csv", no_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "scenario", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "plot", required_argument, NULL, 'p' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct {
		const char *name;
		void (*run)(void);
		/* Runs for a time, so --duration means something to it. */
		bool timed;
	} scenarios[] = {
		{ "translate", scenario_translate, false },
		{ "update", scenario_update, false },
		{ "invalidate", scenario_invalidate, true },
		{ "update-under-load", scenario_update_under_load, true },
		{ "lockdep", scenario_lockdep, false },
	};
	bool found = false;
	int c, code;

	cli_init("memslots-bench");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
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
		case 'd':
			opt.duration = cli_seconds("duration", optarg, 0.01, 3600);
			break;
		case 'p':
			opt.plot_dir = optarg;
			break;
		case 'V':
			cli_version();
		case 'h':
			usage(0);
		default:
			cli_bad_option(c, argv);
		}
	}
	if (optind < argc)
		cli_extra_argument(argv[optind]);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (opt.only && strcmp(opt.only, scenarios[i].name))
			continue;
		found = true;
		if (opt.duration && !scenarios[i].timed)
			cli_refuse(
			    "--duration: scenario %s counts iterations and takes no duration "
			    "(only invalidate and update-under-load do)",
			    scenarios[i].name);
	}
	if (!found)
		cli_bad_value("scenario", opt.only,
			      "translate, update, invalidate, update-under-load or lockdep");
	if (opt.csv && opt.json)
		cli_refuse("--csv and --json: choose one");
	if (opt.plot_dir)
		check_plot_dir();
	arena =
	    mmap(NULL, MS_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (opt.csv)
		printf("%s\n", csv_header);
	if (opt.json) {
		/* Options first, figures as they come, the outcome last. */
		printf("{\"schema\":\"memslots-bench/1\",\"version\":\"%s\",\n "
		       "\"options\":{\"quick\":%s",
		       MS_VERSION_STRING, opt.quick ? "true" : "false");
		json_field("scenario", opt.only);
		if (opt.duration)
			printf(",\"duration_s\":%g", opt.duration);
		else
			printf(",\"duration_s\":null");
		json_field("plot_dir", opt.plot_dir);
		printf("},\n \"records\":[");
		fflush(stdout);
	}
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (opt.only && strcmp(opt.only, scenarios[i].name))
			continue;
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "memslots-bench: running %s...\n", scenarios[i].name);
		scenarios[i].run();
	}
	if (opt.plot_dir && !plot())
		opt.failed = true;
	code = opt.failed ? 1 : 0;
	if (opt.json)
		printf("\n ],\n \"result\":\"%s\",\"exit_code\":%d}\n",
		       opt.failed ? "error" : "clean", code);
	return code;
}
