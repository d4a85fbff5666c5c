/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memslots-bench: what users of the library care about, each figure beside
 * its competitor in the same run.  Scenarios: translate (lookups against the
 * peers' lookups), update (memslot updates against the kernel's KVM when
 * /dev/kvm opens), invalidate (start+end pairs per gate, elision on and off),
 * update-under-load (the upstream commit's admitted unfairness), gate-wait,
 * transaction (one batch against separate updates), pfn-cache (use, check and
 * refresh under load), dirty-log (write and harvest costs), zap (an
 * invalidation that zaps a running vCPU's entry, in zap.c), memslot-perf
 * (upstream's memslot_perf_test, in memslot_perf.c), lockdep (validator off
 * and on).  Prints figures, never judges time; targets are reported as met
 * or missed with the figure.  --csv and --json print every figure with all
 * its parameters (docs/tools.md).  Exit: 0 done, 1 a figure or chart could
 * not be produced, 2 bad usage, 3 with --check a target was missed.
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "histogram.h"
#include "locks.h"
#include "memslots.h"
#include "memslots_lockdep.h"
#include "gfn_index.h"
#include "slot_index.h"
#include "vm.h"

#include "bench.h"

struct bench_opt opt;

static char *arena; /* one host page all slots may share */

double now_ns(void)
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
const char *fig(char *buf, size_t size, const char *fmt, double v)
{
	if (isnan(v))
		return "n/a";
	snprintf(buf, size, fmt, v);
	return buf;
}

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
void record(const struct figure *f, double value)
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

/* One figure of f's parameters with its own unit and statistic. */
static void record_as(struct figure *f, const char *unit, const char *stat, double value)
{
	f->unit = unit;
	f->stat = stat;
	record(f, value);
}

void table(const char *fmt, ...)
{
	va_list ap;

	if (opt.csv || opt.json)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

void target(const char *what, double value, const char *unit, bool met)
{
	char buf[16];

	table("  target %-46s %10s %-3s %s\n", what, fig(buf, sizeof(buf), "%.2f", value), unit,
	      met ? "MET" : "MISSED");
	opt.missed += !met;
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

struct ms_vm *vm_with(enum ms_gate gate, bool no_elision)
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

/* A peer's region table, in gfns: what libvhost-user and vm-memory keep. */
struct region {
	uint64_t gfn, npages, hva;
};

/*
 * Everything one slot count's lookups need.  The region table, the compact
 * arrays and the memslots VM all hold the same n one-page slots.
 */
struct tctx {
	struct ms_vcpu *vcpu;
	const struct gfn_index *index;
	const struct region *table;
	/* The branchless peer: start keys alone, so a cache line holds 8 of them. */
	const uint64_t *start, *end, *hva;
	unsigned int n;
	/* Random slots' gfns, uniform over all n slots. */
	const uint32_t *gfns;
	uint64_t sink;
};

/*
 * Always 0, but the compiler cannot know it: `gfn + (prev & chain_zero)`
 * makes each lookup of the latency mode wait for the one before it.
 */
static volatile uint64_t chain_zero_src;

/* The last-used slot: gfn is always the slot used just before. */
static inline uint64_t lk_hit(struct tctx *c, uint64_t gfn)
{
	uint64_t hva = 0;

	ms_gfn_to_hva(c->vcpu, 0, gfn, false, &hva);
	return hva;
}

/* ms_gfn_to_hva with its last-used slot dropped first, as a miss finds it. */
static inline uint64_t lk_miss(struct tctx *c, uint64_t gfn)
{
	uint64_t hva = 0;

	/* With 1 slot every random gfn would hit the cache otherwise. */
	c->vcpu->last_used_slot[0].view.npages = 0;
	ms_gfn_to_hva(c->vcpu, 0, gfn, false, &hva);
	return hva;
}

/* The miss path's search alone: no RCU section, no cache, no checks. */
static inline uint64_t lk_index(struct tctx *c, uint64_t gfn)
{
	struct gfn_view v;

	if (!gfn_index_lookup(c->index, gfn, &v))
		return 0;
	return v.userspace_addr + ((gfn - v.base_gfn) << MS_PAGE_SHIFT);
}

/* libvhost-user's way: a linear scan of the region table. */
static inline uint64_t lk_linear(struct tctx *c, uint64_t gfn)
{
	for (unsigned int i = 0; i < c->n; i++)
		if (gfn - c->table[i].gfn < c->table[i].npages)
			return c->table[i].hva + ((gfn - c->table[i].gfn) << MS_PAGE_SHIFT);
	return 0;
}

/* rust-vmm vm-memory's way: binary search of regions sorted by address. */
static inline uint64_t lk_bsearch(struct tctx *c, uint64_t gfn)
{
	const struct region *t = c->table;
	unsigned int lo = 0, hi = c->n;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (t[mid].gfn <= gfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || gfn - t[lo - 1].gfn >= t[lo - 1].npages)
		return 0;
	return t[lo - 1].hva + ((gfn - t[lo - 1].gfn) << MS_PAGE_SHIFT);
}

/*
 * The strongest simple peer: the range halves by a conditional move, never a
 * branch the predictor could miss on random keys, over 8-byte keys only.
 */
static inline uint64_t lk_branchless(struct tctx *c, uint64_t gfn)
{
	const uint64_t *base = c->start;
	unsigned int len = c->n, i;

	/* The greatest start <= gfn stays inside [base, base + len). */
	while (len > 1) {
		unsigned int half = len / 2;

		base += base[half] <= gfn ? half : 0;
		len -= half;
	}
	i = base - c->start;
	if (gfn < c->start[i] || gfn >= c->end[i])
		return 0;
	return c->hva[i] + ((gfn - c->start[i]) << MS_PAGE_SHIFT);
}

typedef uint64_t (*lookup_fn)(struct tctx *c, uint64_t gfn);

/*
 * ns per lookup over count gfns (stride 0: gfns[0] every time).  Inlined
 * with fn a constant, so the peers' lookups are inlined as a user's would be.
 */
static inline __attribute__((always_inline)) double
lookup_pass(struct tctx *c, lookup_fn fn, bool chain, unsigned int stride, unsigned int count)
{
	uint64_t zero = chain_zero_src, prev = 0, sink = 0;
	double t = now_ns();

	if (chain) {
		for (unsigned int i = 0; i < count; i++)
			prev = fn(c, c->gfns[i * stride] + (prev & zero));
		sink = prev;
	} else {
		for (unsigned int i = 0; i < count; i++)
			sink += fn(c, c->gfns[i * stride]);
	}
	t = now_ns() - t;
	c->sink += sink;
	return t / count;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of passes, after one pass unmeasured to warm caches and predictors. */
static inline __attribute__((always_inline)) double
lookup_median(struct tctx *c, lookup_fn fn, bool chain, unsigned int stride, unsigned int count)
{
	const unsigned int passes = opt.quick ? 3 : 9;
	double ns[9];

	lookup_pass(c, fn, chain, stride, count);
	for (unsigned int p = 0; p < passes; p++)
		ns[p] = lookup_pass(c, fn, chain, stride, count);
	qsort(ns, passes, sizeof(ns[0]), cmp_double);
	return ns[passes / 2];
}

enum { T_HIT, T_MISS, T_INDEX, T_LINEAR, T_BSEARCH, T_BRANCHLESS, T_SERIES };
static const char *const translate_series[T_SERIES] = {
	"hit", "miss", "index", "peer-linear", "peer-bsearch", "peer-bsearch-branchless"
};

/* Every series of one mode into ns[]; the linear scan over fewer lookups past 64 slots. */
static void translate_mode(struct tctx *c, bool chain, unsigned int queries, double ns[T_SERIES])
{
	/* A scan of 32764 slots takes microseconds: bound its pass to ~1M compares. */
	unsigned int lin = c->n > 64 ? (1u << 20) / c->n : queries;

	lin = lin < 64 ? 64 : lin > queries ? queries : lin;
	ns[T_HIT] = lookup_median(c, lk_hit, chain, 0, queries);
	ns[T_MISS] = lookup_median(c, lk_miss, chain, 1, queries);
	ns[T_INDEX] = lookup_median(c, lk_index, chain, 1, queries);
	ns[T_LINEAR] = lookup_median(c, lk_linear, chain, 1, lin);
	ns[T_BSEARCH] = lookup_median(c, lk_bsearch, chain, 1, queries);
	ns[T_BRANCHLESS] = lookup_median(c, lk_branchless, chain, 1, queries);
}

static void scenario_translate(void)
{
	static const unsigned int sizes[] = { 1, 8, 64, 509, 4096, 32764 };
	static const char *const modes[2] = { "throughput", "latency" };
	const unsigned int queries = opt.quick ? 4096 : 65536;
	const unsigned int nsizes = sizeof(sizes) / sizeof(sizes[0]);
	uint32_t *gfns = malloc(queries * sizeof(*gfns));
	uint64_t x = 88172645463325252ull;
	FILE *dat[2] = { plot_data("translate"), plot_data("translate-latency") };
	double ns[2][sizeof(sizes) / sizeof(sizes[0])][T_SERIES];
	double hit_worst = 0, *big, index_kib = 0;
	uint64_t sink = 0;
	char load[16];

	snprintf(load, sizeof(load), "%.2f", load_avg());
	table("\n== translate: ns per lookup, median of %u passes over %u random gfns of all "
	      "slots (load %s)\n",
	      opt.quick ? 3 : 9, queries, load);
	table("  throughput: independent lookups; latency: each gfn depends on the previous "
	      "result\n");
	table("  %-10s %6s %7s %7s %7s %9s %8s %8s %9s\n", "mode", "slots", "hit", "miss",
	      "index", "linear", "bsearch", "bs-bless", "bless/miss");
	for (unsigned int s = 0; s < nsizes; s++) {
		unsigned int n = sizes[s];
		struct ms_vm *vm = vm_with(MS_GATE_COUNT, false);
		struct region *t = malloc(n * sizeof(*t));
		uint64_t *arrays = malloc(3 * n * sizeof(*arrays));
		struct tctx c = { .table = t,
				  .start = arrays,
				  .end = arrays + n,
				  .hva = arrays + 2 * n,
				  .n = n,
				  .gfns = gfns };

		add_slots(vm, 0, n);
		ms_vcpu_create(vm, &c.vcpu);
		c.index = ms_active_memslots(vm, 0)->gfn_index;
		index_kib = gfn_index_bytes(c.index) / 1024.0;
		for (unsigned int i = 0; i < n; i++) {
			t[i] = (struct region){ 2ull * i, 1, (uintptr_t)arena };
			arrays[i] = 2ull * i;
			arrays[n + i] = 2ull * i + 1;
			arrays[2 * n + i] = (uintptr_t)arena;
		}
		/* Fresh for every count: each lookup a slot drawn from all n. */
		for (unsigned int i = 0; i < queries; i++)
			gfns[i] = (uint32_t)(((rnd(&x) >> 32) * n) >> 32) * 2;
		for (int m = 0; m < 2; m++) {
			double *v = ns[m][s];
			struct figure f = { .scenario = "translate",
					    .kase = modes[m],
					    .stat = "median",
					    .unit = "ns",
					    .slots = n,
					    .threads = 1,
					    .elision = ELISION_NA };

			translate_mode(&c, m, queries, v);
			table("  %-10s %6u %7.1f %7.1f %7.1f %9.1f %8.1f %8.1f %8.2fx\n", modes[m],
			      n, v[T_HIT], v[T_MISS], v[T_INDEX], v[T_LINEAR], v[T_BSEARCH],
			      v[T_BRANCHLESS], v[T_BRANCHLESS] / v[T_MISS]);
			for (int k = 0; k < T_SERIES; k++) {
				f.series = translate_series[k];
				record(&f, v[k]);
			}
			if (dat[m]) {
				fprintf(dat[m], "%u", n);
				for (int k = 0; k < T_SERIES; k++)
					fprintf(dat[m], " %.2f", v[k]);
				fprintf(dat[m], "\n");
			}
			if (!m && v[T_HIT] > hit_worst)
				hit_worst = v[T_HIT];
		}
		sink += c.sink;
		ms_vcpu_destroy(c.vcpu);
		ms_vm_destroy(vm);
		free(arrays);
		free(t);
	}
	/* Sentences for BENCHMARKS.md, from this run's figures only. */
	for (int m = 0; m < 2; m++) {
		big = ns[m][nsizes - 1];
		table("  verdict: %s at %u slots: a miss takes %.1f ns, %.2fx the branchless "
		      "binary search's %.1f ns (%s), %.2fx the binary search's and %.0fx the "
		      "linear scan's\n",
		      modes[m], sizes[nsizes - 1], big[T_MISS], big[T_BRANCHLESS] / big[T_MISS],
		      big[T_BRANCHLESS],
		      big[T_MISS] < big[T_BRANCHLESS] ? "the miss is faster" : "the peer is faster",
		      big[T_BSEARCH] / big[T_MISS], big[T_LINEAR] / big[T_MISS]);
	}
	big = ns[0][nsizes - 1];
	target("miss at 32764 slots <= 35 ns (throughput)", big[T_MISS], "ns",
	       big[T_MISS] <= 35);
	target("miss at 32764 >= 1.3x faster than branchless bsearch (throughput)",
	       big[T_BRANCHLESS] / big[T_MISS], "x", big[T_BRANCHLESS] / big[T_MISS] >= 1.3);
	target("miss at 32764 >= 1.5x faster than branchless bsearch (latency)",
	       ns[1][nsizes - 1][T_BRANCHLESS] / ns[1][nsizes - 1][T_MISS], "x",
	       ns[1][nsizes - 1][T_BRANCHLESS] / ns[1][nsizes - 1][T_MISS] >= 1.5);
	target("index alone at 32764 slots <= 25 ns (throughput)", big[T_INDEX], "ns",
	       big[T_INDEX] <= 25);
	target("hit <= 4 ns (throughput, worst over slot counts)", hit_worst, "ns",
	       hit_worst <= 4);
	{
		/*
		 * The gfn index of one set; its id table (8 bytes a slot id) aside.
		 * Its own scenario name: translate's records are all lookups.
		 */
		struct figure f = { .scenario = "memory",
				    .kase = "gfn_index",
				    .series = "memslots",
				    .stat = "bytes",
				    .unit = "KiB",
				    .slots = sizes[nsizes - 1],
				    .threads = 1,
				    .elision = ELISION_NA };

		record(&f, index_kib);
		table("  memory: the gfn index of one set at %u slots takes %.0f KiB\n",
		      sizes[nsizes - 1], index_kib);
		target("gfn index of one set at 32764 slots <= 1 MiB", index_kib, "KiB",
		       index_kib <= 1024);
	}
	for (int m = 0; m < 2; m++)
		if (dat[m])
			fclose(dat[m]);
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
 * p99 in p99[] (NAN where the iterations are too few for it).  The same
 * rounds for ours and the kernel's, the first ones untimed: a fresh VM's
 * first updates allocate (the kernel's memslot arrays, our spare nodes), and
 * that is no update's steady cost.
 */
static bool measure_updates(set_fn set, void *ctx, unsigned int n, double p50[4], double p99[4])
{
	const int iters = opt.quick ? 20 : 300, warm = opt.quick ? 2 : 20;
	static struct hist lat[4];
	bool ok = true;

	for (int k = 0; k < 4; k++)
		hist_init(&lat[k]);
	for (unsigned int i = 1; i < n && ok; i++) {
		struct ms_region r = { i, 0, (uint64_t)i * 2 * MS_PAGE_SIZE, MS_PAGE_SIZE,
				       (uintptr_t)arena };

		ok = !set(ctx, &r);
	}
	for (int it = -warm; it < iters && ok; it++) {
		struct ms_region r = { 0, 0, 1ull << 36, MS_PAGE_SIZE, (uintptr_t)arena };
		double ns[4], t = now_ns();

		ok &= !set(ctx, &r); /* create */
		ns[0] = now_ns() - t;
		r.guest_phys_addr += MS_PAGE_SIZE;
		t = now_ns();
		ok &= !set(ctx, &r); /* move */
		ns[1] = now_ns() - t;
		r.flags = MS_MEM_LOG_DIRTY_PAGES;
		t = now_ns();
		ok &= !set(ctx, &r); /* flags */
		ns[2] = now_ns() - t;
		r.memory_size = 0;
		t = now_ns();
		ok &= !set(ctx, &r); /* delete */
		ns[3] = now_ns() - t;
		for (int k = 0; it >= 0 && k < 4; k++)
			hist_record(&lat[k], ns[k]);
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
	double worst_ratio = 1e9, best_ratio = 0, reader_lo = 1e9, reader_hi = 0;
	double worst_reader_ratio = 1e9, worst_reader = 0, worst_big = 0;
	FILE *dat = plot_data("update");
	bool have_kvm = true;

	table("\n== update: latency of one slot's update beside N others, p50 (p99) in us\n");
	table("  %6s %-7s %18s %18s %18s %10s\n", "N", "op", "memslots", "with a reader",
	      "kernel KVM", "vs kernel");
	for (unsigned int s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		unsigned int n = sizes[s];
		/* The default gate: what a user's update costs. */
		struct ms_vm *vm = vm_with(MS_GATE_FAIR, false),
			     *vm2 = vm_with(MS_GATE_FAIR, false);
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
			double r;

			if (kvm_ok) {
				snprintf(kern, sizeof(kern), "%.2f (%s)", p50[2][o],
					 fig(b[0], sizeof(b[0]), "%.2f", p99[2][o]));
				/* Like for like: the kernel VM runs no vCPU either. */
				snprintf(ratio, sizeof(ratio), "%.1fx", p50[2][o] / p50[0][o]);
				worst_ratio = p50[2][o] / p50[0][o] < worst_ratio
						  ? p50[2][o] / p50[0][o]
						  : worst_ratio;
				best_ratio = p50[2][o] / p50[0][o] > best_ratio
						 ? p50[2][o] / p50[0][o]
						 : best_ratio;
				if (p50[2][o] / p50[1][o] < worst_reader_ratio)
					worst_reader_ratio = p50[2][o] / p50[1][o];
			}
			worst_reader = p50[1][o] > worst_reader ? p50[1][o] : worst_reader;
			if (n == sizes[sizeof(sizes) / sizeof(sizes[0]) - 1] && p50[0][o] > worst_big)
				worst_big = p50[0][o];
			r = p50[1][o] / p50[0][o];
			reader_lo = r < reader_lo ? r : reader_lo;
			reader_hi = r > reader_hi ? r : reader_hi;
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
						    .gate = c < 2 ? "fair" : NULL,
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
		/* Per op: with a reader, without, the kernel ('?': gnuplot's missing). */
		if (dat) {
			static const int col[3] = { 1, 0, 2 };

			fprintf(dat, "%u", n);
			for (int c = 0; c < 3; c++)
				for (int o = 0; o < 4; o++)
					if (col[c] < 2 || kvm_ok)
						fprintf(dat, " %.3f", p50[col[c]][o]);
					else
						fprintf(dat, " ?");
			fprintf(dat, "\n");
		}
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
	/* Sentences for BENCHMARKS.md, from this run's figures only. */
	if (worst_ratio < 1e9)
		table("  verdict: without a vCPU, our update's p50 is %.1fx to %.1fx faster than "
		      "the kernel's ioctl over every N and op\n",
		      worst_ratio, best_ratio);
	table("  verdict: with a vCPU reading, an update's p50 is %.1fx to %.1fx its p50 "
	      "without one over every N and op\n",
	      reader_lo, reader_hi);
	target("update, no reader, at 32764 slots <= 2 us p50 (worst op)", worst_big, "us",
	       worst_big <= 2);
	target("update with a vCPU reading <= 5 us p50 (worst N and op)", worst_reader, "us",
	       worst_reader <= 5);
	if (worst_ratio < 1e9) {
		target(">= 5x faster than the kernel, no vCPU (worst)", worst_ratio, "x",
		       worst_ratio >= 5);
		target(">= 2x faster than the kernel with a vCPU reading (worst N and op)",
		       worst_reader_ratio, "x", worst_reader_ratio >= 2);
	} else
		table("  kernel KVM: /dev/kvm could not be used; its column is n/a\n");
	if (dat)
		fclose(dat);
}

/* --- invalidate ---------------------------------------------------------- */

/* Back-to-back pairs until *stop: the load of update-under-load. */
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

/* The 1-minute load average, for the tables: timings of a shared machine. */
double load_avg(void)
{
	double l[1];

	return getloadavg(l, 1) == 1 ? l[0] : NAN;
}

/* Involuntary context switches of the calling thread so far. */
static long thread_nivcsw(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		return -1;
	return ru.ru_nivcsw;
}

/* The i-th CPU this process may run on; -1 if it may run on fewer. */
int allowed_cpu(unsigned int i)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set) && i-- == 0)
			return cpu;
	return -1;
}

/*
 * Keep the calling thread on one CPU (none: leave it free).  The scheduler
 * may otherwise put two threads of ours on one core beside another
 * tenant's load, and they would take turns instead of running at once.
 */
void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* A thread that starts on that CPU and stays there. */
void create_pinned(pthread_t *t, int cpu, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	cpu_set_t set;

	pthread_attr_init(&attr);
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	if (pthread_create(t, &attr, fn, arg))
		abort();
	pthread_attr_destroy(&attr);
}

/*
 * Pairs per batch: long enough (~10-100 us) that the rusage read between
 * batches costs a few percent of the thread's time, short enough that a
 * preemption throws little away.
 */
#define PAIR_BATCH 1024

/* One batch of PAIR_BATCH pairs on one thread. */
struct pair_batch {
	double t0, t1;	 /* timed: the pairs only */
	bool preempted;	 /* an involuntary switch between the reads around it */
};

struct pair_thread {
	struct ms_vm *vm;
	uint64_t start, end;
	atomic_bool *stop;
	atomic_uint *ready;
	unsigned int nthreads;
	struct pair_batch *b;
	size_t nb, cap;
	pthread_t thread;
};

static void *pair_main(void *arg)
{
	struct pair_thread *t = arg;
	long cs;

	/* A start line, so that the threads' batches overlap from the first. */
	atomic_fetch_add(t->ready, 1);
	while (atomic_load(t->ready) < t->nthreads)
		sched_yield();
	cs = thread_nivcsw();
	while (!atomic_load_explicit(t->stop, memory_order_relaxed) && t->nb < t->cap) {
		struct pair_batch *b = &t->b[t->nb++];
		long now_cs;

		b->t0 = now_ns();
		for (int i = 0; i < PAIR_BATCH; i++)
			if (ms_invalidate_range_start(t->vm, t->start, t->end, true) == 0)
				ms_invalidate_range_end(t->vm, t->start, t->end);
		b->t1 = now_ns();
		now_cs = thread_nivcsw();
		/* Covers the whole batch: cs was read before its t0. */
		b->preempted = now_cs != cs || now_cs < 0;
		cs = now_cs;
	}
	return NULL;
}

/* Stretches of time in which t ran unpreempted batches back to back. */
struct span {
	double t0, t1;
};

static size_t running_spans(const struct pair_thread *t, struct span *s)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nb; i++) {
		if (t->b[i].preempted)
			continue;
		/* Adjacent unpreempted batches: only our own rusage read lies between. */
		if (n && i && !t->b[i - 1].preempted)
			s[n - 1].t1 = t->b[i].t1;
		else
			s[n++] = (struct span){ t->b[i].t0, t->b[i].t1 };
	}
	return n;
}

struct pair_result {
	double ns; /* per pair per thread over the kept batches; NAN if none */
	unsigned long kept, discarded;
};

/*
 * ns per start+end pair per thread, counting only batches during which every
 * thread ran: the batch itself unpreempted and, for two threads, lying
 * wholly inside a stretch of the other thread's unpreempted batches.  On a
 * shared machine a thread left off its core would otherwise make the other
 * one look uncontended.  No vCPU runs: threads never outnumber cores.
 */
static struct pair_result run_pairs(enum ms_gate gate, bool no_elision, bool related,
				    unsigned int nthreads, double seconds)
{
	struct ms_vm *vm = vm_with(gate, no_elision);
	/* No pair is quicker than 2 ns: room for every batch of the run. */
	size_t cap = (size_t)(seconds * 1e9 / (PAIR_BATCH * 2.0)) + 16;
	struct pair_result res = { NAN, 0, 0 };
	uint64_t base = related ? (uintptr_t)arena : 0x10000000000ull;
	struct pair_thread t[2];
	struct span *spans[2] = { NULL, NULL };
	size_t nspans[2] = { 0, 0 };
	atomic_bool stop = false;
	atomic_uint ready = 0;
	double ns = 0, pairs = 0;

	add_slots(vm, 1, 9);
	for (unsigned int i = 0; i < nthreads; i++) {
		t[i] = (struct pair_thread){ .vm = vm,
					     .start = base,
					     .end = base + MS_PAGE_SIZE,
					     .stop = &stop,
					     .ready = &ready,
					     .nthreads = nthreads,
					     .b = calloc(cap, sizeof(struct pair_batch)),
					     .cap = cap };
		if (!t[i].b)
			abort();
		create_pinned(&t[i].thread, allowed_cpu(i), pair_main, &t[i]);
	}
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&stop, true);
	for (unsigned int i = 0; i < nthreads; i++) {
		pthread_join(t[i].thread, NULL);
		spans[i] = malloc((t[i].nb + 1) * sizeof(struct span));
		if (!spans[i])
			abort();
		nspans[i] = running_spans(&t[i], spans[i]);
	}
	for (unsigned int i = 0; i < nthreads; i++) {
		const struct span *o = spans[nthreads - 1 - i];
		size_t no = nspans[nthreads - 1 - i], k = 0;

		for (size_t j = 0; j < t[i].nb; j++) {
			const struct pair_batch *b = &t[i].b[j];
			bool keep = !b->preempted;

			if (keep && nthreads > 1) {
				/* Spans are disjoint and in order: only the first ending after b can hold it. */
				while (k < no && o[k].t1 < b->t1)
					k++;
				keep = k < no && o[k].t0 <= b->t0;
			}
			if (!keep) {
				res.discarded++;
				continue;
			}
			res.kept++;
			ns += b->t1 - b->t0;
			pairs += PAIR_BATCH;
		}
	}
	if (pairs)
		res.ns = ns / pairs;
	for (unsigned int i = 0; i < nthreads; i++) {
		free(t[i].b);
		free(spans[i]);
	}
	ms_vm_destroy(vm);
	return res;
}

static void scenario_invalidate(void)
{
	const double secs = opt.duration ? opt.duration : opt.quick ? 0.05 : 0.5;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	/* Never more invalidating threads than cores, and no other thread runs. */
	unsigned int maxthr = online >= 2 ? 2 : 1;
	double pairs_per_us[4][2][2][2] = { { { { 0 } } } };
	double fair_ns[2] = { NAN, NAN };
	FILE *dat = plot_data("invalidate");

	table("\n== invalidate: ns per start+end pair per thread, batches of %d pairs in which\n"
	      "   all threads ran unpreempted (others discarded); one thread pinned per core, no\n"
	      "   vCPU runs; load %.2f\n",
	      PAIR_BATCH, load_avg());
	table("  %-6s %-8s %-10s %9s %9s %7s %17s\n", "gate", "elision", "range", "1 thr",
	      maxthr > 1 ? "2 thr" : "", maxthr > 1 ? "2/1" : "", "discarded 1t / 2t");
	for (int g = MS_GATE_COUNT; g <= MS_GATE_FAIR; g++)
		for (int off = 0; off < 2; off++)
			for (int related = 0; related < 2; related++) {
				/* Slots 1..8 exist: run_pairs adds them. */
				struct figure f = { .scenario = "invalidate",
						    .kase = "pair",
						    .series = related ? "range_in_slot"
								      : "range_no_slot",
						    .gate = cli_gate_name(g),
						    .slots = 8,
						    .elision = off ? ELISION_OFF : ELISION_ON };
				struct pair_result r[2];
				char b[3][16], disc[2][32];

				for (unsigned int n = 1; n <= maxthr; n++) {
					r[n - 1] = run_pairs(g, off, related, n, secs);
					f.threads = n;
					f.stat = "mean";
					f.unit = "ns";
					record(&f, r[n - 1].ns);
					f.stat = "batches_kept";
					f.unit = "batches";
					record(&f, r[n - 1].kept);
					f.stat = "batches_discarded";
					record(&f, r[n - 1].discarded);
					snprintf(disc[n - 1], sizeof(disc[n - 1]), "%lu/%lu",
						 r[n - 1].discarded,
						 r[n - 1].kept + r[n - 1].discarded);
					pairs_per_us[g][off][related][n - 1] =
					    1e3 / r[n - 1].ns * n;
				}
				if (maxthr > 1) {
					f.threads = 2;
					f.stat = "ratio_2_to_1";
					f.unit = "x";
					record(&f, r[1].ns / r[0].ns);
				}
				table("  %-6s %-8s %-10s %9s %9s %7s %8s %8s\n", cli_gate_name(g),
				      off ? "off" : "on", related ? "in a slot" : "no slot",
				      fig(b[0], sizeof(b[0]), "%.1f", r[0].ns),
				      maxthr > 1 ? fig(b[1], sizeof(b[1]), "%.1f", r[1].ns) : "",
				      maxthr > 1
					  ? fig(b[2], sizeof(b[2]), "%.2fx", r[1].ns / r[0].ns)
					  : "",
				      disc[0], maxthr > 1 ? disc[1] : "");
				if (g == MS_GATE_FAIR && !off && !related) {
					fair_ns[0] = r[0].ns;
					fair_ns[1] = maxthr > 1 ? r[1].ns : NAN;
				}
			}
	/* NAN (nothing kept, or one core) compares false: missed, as it is not shown met. */
	target("fair elided pair <= 20 ns, 1 thread", fair_ns[0], "ns", fair_ns[0] <= 20);
	target("fair elided pair <= 20 ns, 2 threads", fair_ns[1], "ns", fair_ns[1] <= 20);
	target("fair elided pair 2 thr / 1 thr <= 1.2", fair_ns[1] / fair_ns[0], "x",
	       fair_ns[1] / fair_ns[0] <= 1.2);
	/*
	 * Chart: unrelated ranges, elision on, total pairs per us against threads;
	 * '?' (gnuplot's missing) where no batch was kept, not a throughput of 0.
	 */
	for (unsigned int n = 1; dat && n <= maxthr; n++) {
		const double *col[5] = { pairs_per_us[0][0][0], pairs_per_us[0][1][0],
					 pairs_per_us[1][0][0], pairs_per_us[2][0][0],
					 pairs_per_us[3][0][0] };

		fprintf(dat, "%u", n);
		for (int c = 0; c < 5; c++)
			if (isnan(col[c][n - 1]))
				fprintf(dat, " ?");
			else
				fprintf(dat, " %.3f", col[c][n - 1]);
		fprintf(dat, "\n");
	}
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
	double p99[MS_GATE_FAIR + 1];
	int lo = MS_GATE_COUNT, hi = MS_GATE_COUNT;

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
		p99[g] = pct_of(&lat, 99, 1e3);
		lo = p99[g] < p99[lo] ? g : lo;
		hi = p99[g] > p99[hi] ? g : hi;
		ms_vm_destroy(vm);
	}
	/* A sentence for BENCHMARKS.md, from this run's figures only. */
	if (!isnan(p99[lo]) && !isnan(p99[hi]))
		table("  verdict: the lowest p99 is the %s gate's (%.1f us), the highest the %s "
		      "gate's (%.1f us)\n",
		      cli_gate_name(lo), p99[lo], cli_gate_name(hi), p99[hi]);
	if (dat)
		fclose(dat);
}

/* --- gate wait ------------------------------------------------------------- */

/*
 * The memslot update's wait on the gate alone (ms_stats.gate_wait_ns_total
 * across one ms_set_memory_region; updates run on this thread only), while
 * one other thread invalidates: threads never outnumber two cores.
 */
struct gw_load {
	struct ms_vm *vm;
	uint64_t slot_hva, other_hva;
	double hold_ns;
	unsigned int overlap_pct;
	/* Two nested invalidations of the slot's page: one is open at every instant. */
	bool starve;
	double bound_ns;
	atomic_bool stop, running;
	/* When the update now waiting began (0: none), to stop a load that starves it. */
	_Atomic uint64_t update_t0;
	/* The load stopped itself because an update waited past bound_ns. */
	atomic_bool bounded;
	/* The load thread's involuntary switches: it shared its core for a while. */
	long preempted;
	int cpu; /* where the load runs: not the updater's CPU; -1 anywhere */
	pthread_t thread;
};

static void spin_for(double ns)
{
	double until = now_ns() + ns;

	while (now_ns() < until)
		;
}

/* Whether the load must stop now: asked to, or starving an update past the bound. */
static bool gw_stopping(struct gw_load *l)
{
	uint64_t t0 = atomic_load_explicit(&l->update_t0, memory_order_relaxed);

	if (t0 && now_ns() - t0 > l->bound_ns) {
		atomic_store(&l->bounded, true);
		return true;
	}
	return atomic_load_explicit(&l->stop, memory_order_relaxed);
}

/* start A, hold, start B, hold, end A, hold, start A, hold, end B, ...: never none open. */
static void gw_starve(struct gw_load *l)
{
	const uint64_t a = l->slot_hva, b_end = l->slot_hva + 2 * MS_PAGE_SIZE;
	const uint64_t a_end = l->slot_hva + MS_PAGE_SIZE;

	if (ms_invalidate_range_start(l->vm, a, a_end, true))
		abort();
	atomic_store(&l->running, true);
	for (;;) {
		spin_for(l->hold_ns);
		if (ms_invalidate_range_start(l->vm, a, b_end, true))
			abort();
		spin_for(l->hold_ns);
		ms_invalidate_range_end(l->vm, a, a_end);
		if (gw_stopping(l)) {
			ms_invalidate_range_end(l->vm, a, b_end);
			return;
		}
		spin_for(l->hold_ns);
		if (ms_invalidate_range_start(l->vm, a, a_end, true))
			abort();
		spin_for(l->hold_ns);
		ms_invalidate_range_end(l->vm, a, b_end);
		if (gw_stopping(l)) {
			ms_invalidate_range_end(l->vm, a, a_end);
			return;
		}
	}
}

/*
 * Each invalidation is held hold_ns, then none is open for as long (at
 * least 1 us): back to back, the count gate's update would wait for ever
 * even at hold 0, which is the starvation case's point, not the sweep's.
 */
static void gw_sweep_load(struct gw_load *l)
{
	const double gap = l->hold_ns > 1e3 ? l->hold_ns : 1e3;
	uint64_t x = 0x2545f4914f6cdd1dull;

	atomic_store(&l->running, true);
	while (!gw_stopping(l)) {
		uint64_t hva = rnd(&x) % 100 < l->overlap_pct ? l->slot_hva : l->other_hva;

		if (ms_invalidate_range_start(l->vm, hva, hva + MS_PAGE_SIZE, true) == 0) {
			spin_for(l->hold_ns);
			ms_invalidate_range_end(l->vm, hva, hva + MS_PAGE_SIZE);
		}
		spin_for(gap);
	}
}

static void *gw_load_main(void *arg)
{
	struct gw_load *l = arg;
	long cs = thread_nivcsw();

	if (l->starve)
		gw_starve(l);
	else
		gw_sweep_load(l);
	l->preempted += thread_nivcsw() - cs;
	return NULL;
}

static void gw_load_start(struct gw_load *l)
{
	atomic_store(&l->stop, false);
	atomic_store(&l->running, false);
	atomic_store(&l->bounded, false);
	/* The updater (this thread) is on the first: one core each. */
	create_pinned(&l->thread, l->cpu, gw_load_main, l);
	while (!atomic_load(&l->running))
		sched_yield();
}

static void gw_load_stop(struct gw_load *l)
{
	atomic_store(&l->stop, true);
	pthread_join(l->thread, NULL);
}

struct gw_result {
	/* Gate wait in ns: create, delete, and the creates not preempted. */
	struct hist wait[3];
	unsigned long preempted[2], bounded[2];
	long load_preempted;
	/* The load's invalidations, and those that elided: only these can hold a create. */
	uint64_t started, elided;
};

/*
 * Create and delete a one-page slot over l->slot_hva until seconds have
 * passed (or, when iters is not 0, that many times): each update's gate
 * wait, whether it was preempted, whether the load had to be stopped for it.
 */
static void gw_run(struct gw_load *l, double seconds, int iters, struct gw_result *res)
{
	struct ms_stats st0, st1;
	double t_end;

	ms_vm_stats(l->vm, &st0);
	for (int k = 0; k < 3; k++)
		hist_init(&res->wait[k]);
	for (int k = 0; k < 2; k++)
		res->preempted[k] = res->bounded[k] = 0;
	l->preempted = 0;
	gw_load_start(l);
	/* After the start: on a busy machine a new thread may take a while to run. */
	t_end = now_ns() + seconds * 1e9;
	for (int it = 0; iters ? it < iters : now_ns() < t_end; it++) {
		for (int k = 0; k < 2; k++) {
			struct ms_region r = { 0, 0, 1ull << 36, k ? 0 : MS_PAGE_SIZE,
					       l->slot_hva };
			struct ms_stats s0, s1;
			long cs0, cs1;

			/* A load stopped by the bound starts again: every update meets it. */
			if (atomic_load(&l->bounded)) {
				gw_load_stop(l);
				gw_load_start(l);
			}
			ms_vm_stats(l->vm, &s0);
			cs0 = thread_nivcsw();
			atomic_store(&l->update_t0, (uint64_t)now_ns());
			if (ms_set_memory_region(l->vm, &r))
				abort();
			atomic_store(&l->update_t0, 0);
			cs1 = thread_nivcsw();
			ms_vm_stats(l->vm, &s1);
			hist_record(&res->wait[k], s1.gate_wait_ns_total - s0.gate_wait_ns_total);
			/* Waits of the gate alone, not of a machine that ran something else. */
			if (!k && cs1 == cs0)
				hist_record(&res->wait[2],
					    s1.gate_wait_ns_total - s0.gate_wait_ns_total);
			res->preempted[k] += cs1 != cs0;
			res->bounded[k] += atomic_load(&l->bounded);
		}
	}
	gw_load_stop(l);
	ms_vm_stats(l->vm, &st1);
	res->started = st1.invalidations_started - st0.invalidations_started;
	res->elided = st1.invalidation_starts_elided - st0.invalidation_starts_elided;
	res->load_preempted = l->preempted;
}

static void gw_record(const char *kase, const char *series, enum ms_gate g,
		      const struct gw_result *res, int k)
{
	static const double pcts[] = { 50, 99, 99.9, 100 };
	static const char *const keys[] = { "p50", "p99", "p99_9", "max" };
	struct figure f = { .scenario = "gate-wait",
			    .kase = kase,
			    .series = series,
			    .gate = cli_gate_name(g),
			    .slots = 1,
			    .threads = 2,
			    .elision = ELISION_ON };

	f.unit = "us";
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		f.stat = keys[i];
		record(&f, pct_of(&res->wait[k], pcts[i], 1e3));
	}
	record_as(&f, "updates", "count", hist_count(&res->wait[k]));
	if (k == 2)
		return;
	f.stat = "preempted";
	record(&f, res->preempted[k]);
	f.stat = "bounded";
	record(&f, res->bounded[k]);
	f.stat = "load_preempted";
	f.unit = "switches";
	record(&f, res->load_preempted);
	f.stat = "load_elided_pct";
	f.unit = "pct";
	record(&f, res->started ? 100.0 * res->elided / res->started : NAN);
}

/* Keep the worst of the figures; NAN (too few samples) sticks, to show as missed. */
static void worst(double *acc, double v)
{
	if (isnan(v) || v > *acc)
		*acc = v;
}

static void scenario_gate_wait(void)
{
	static const double holds_us[] = { 0, 1, 10, 100 };
	static const unsigned int overlaps[] = { 0, 10, 100 };
	static const enum ms_gate gates[] = { MS_GATE_COUNT, MS_GATE_FAIR, MS_GATE_NONE };
	const double secs = opt.duration ? opt.duration : opt.quick ? 0.02 : 0.25;
	const double bound_ms = opt.quick ? 20 : 200;
	/* Two host pages no slot maps: the slot's, and one the others invalidate. */
	char *pages = mmap(NULL, 2 * MS_PAGE_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double fair_p99 = 0, fair_p999 = 0, calm_p99 = 0, calm_p999 = 0;
	double count_starved = NAN, fair_starved = NAN;
	static struct gw_result res;
	/* Asked before this thread is pinned: afterwards it may only use one. */
	const int cpu[2] = { allowed_cpu(0), allowed_cpu(1) };
	cpu_set_t was;

	if (pages == MAP_FAILED)
		abort();
	/* Back to where it may run at the end: the scenarios after it are not pinned. */
	sched_getaffinity(0, sizeof(was), &was);
	if (cpu[1] >= 0)
		pin_self(cpu[0]);
	table("\n== gate-wait: an update's wait on the gate alone, us; one thread creates and\n"
	      "   deletes a one-page slot, one invalidates (held H, then none open for max(H, 1 "
	      "us));\n   a share of the invalidations covers the slot's page; each thread pinned to "
	      "a core;\n   load %.2f\n",
	      load_avg());
	table("  %-5s %5s %7s %7s %8s %8s %8s %8s %9s %8s %8s %7s %5s\n", "gate", "H us",
	      "overlap", "creates", "p50", "p99", "p99.9", "max", "preempted", "unpr p99",
	      "del max", "elided", "ldpre");
	for (size_t g = 0; g < sizeof(gates) / sizeof(gates[0]); g++)
		for (size_t h = 0; h < sizeof(holds_us) / sizeof(holds_us[0]); h++)
			for (size_t o = 0; o < sizeof(overlaps) / sizeof(overlaps[0]); o++) {
				struct ms_vm *vm = vm_with(gates[g], false);
				struct gw_load l = { .vm = vm,
						     .slot_hva = (uintptr_t)pages,
						     .other_hva = (uintptr_t)pages + MS_PAGE_SIZE,
						     .hold_ns = holds_us[h] * 1e3,
						     .overlap_pct = overlaps[o],
						     .bound_ns = bound_ms * 1e6,
						     .cpu = cpu[1] };
				char b[6][16], series[48];

				gw_run(&l, secs, 0, &res);
				table("  %-5s %5g %6u%% %7llu %8s %8s %8s %8s %9lu %8s %8s %6.1f%% "
				      "%5ld\n",
				      cli_gate_name(gates[g]), holds_us[h], overlaps[o],
				      (unsigned long long)hist_count(&res.wait[0]),
				      fig(b[0], sizeof(b[0]), "%.2f", pct_of(&res.wait[0], 50, 1e3)),
				      fig(b[1], sizeof(b[1]), "%.2f", pct_of(&res.wait[0], 99, 1e3)),
				      fig(b[2], sizeof(b[2]), "%.2f",
					  pct_of(&res.wait[0], 99.9, 1e3)),
				      fig(b[3], sizeof(b[3]), "%.2f", pct_of(&res.wait[0], 100, 1e3)),
				      res.preempted[0],
				      fig(b[5], sizeof(b[5]), "%.2f", pct_of(&res.wait[2], 99, 1e3)),
				      fig(b[4], sizeof(b[4]), "%.2f", pct_of(&res.wait[1], 100, 1e3)),
				      res.started ? 100.0 * res.elided / res.started : 0.0,
				      res.load_preempted);
				if (res.bounded[0] + res.bounded[1])
					table("        %lu updates waited past %.0f ms: load stopped\n",
					      res.bounded[0] + res.bounded[1], bound_ms);
				/* The sweep's parameters ride in the series. */
				snprintf(series, sizeof(series), "hold_%gus_overlap_%upct",
					 holds_us[h], overlaps[o]);
				gw_record("create", series, gates[g], &res, 0);
				gw_record("delete", series, gates[g], &res, 1);
				gw_record("create_unpreempted", series, gates[g], &res, 2);
				if (gates[g] == MS_GATE_FAIR && overlaps[o] == 0) {
					worst(&fair_p99, pct_of(&res.wait[0], 99, 1e3));
					worst(&fair_p999, pct_of(&res.wait[0], 99.9, 1e3));
					worst(&calm_p99, pct_of(&res.wait[2], 99, 1e3));
					worst(&calm_p999, pct_of(&res.wait[2], 99.9, 1e3));
				}
				ms_vm_destroy(vm);
			}

	table("\n  starvation load: two nested invalidations of the slot's page, one always "
	      "open\n  (held 1 us each); the load stops once an update has waited %.0f ms\n",
	      bound_ms);
	table("  %-5s %7s %9s %9s %9s %9s %9s %9s %9s %5s\n", "gate", "creates", "p50", "p99",
	      "max", "bounded", "preempted", "unpr max", "del max", "ldpre");
	for (size_t g = 0; g < sizeof(gates) / sizeof(gates[0]); g++) {
		struct ms_vm *vm = vm_with(gates[g], false);
		struct gw_load l = { .vm = vm,
				     .slot_hva = (uintptr_t)pages,
				     .hold_ns = 1e3,
				     .starve = true,
				     .bound_ns = bound_ms * 1e6,
				     .cpu = cpu[1] };
		/* The count gate meets the bound every update: a few say it. */
		int iters = gates[g] == MS_GATE_COUNT ? (opt.quick ? 1 : 3) : 0;
		double max, calm_max;
		char b[5][16];

		gw_run(&l, secs, iters, &res);
		max = pct_of(&res.wait[0], 100, 1e3);
		calm_max = pct_of(&res.wait[2], 100, 1e3);
		table("  %-5s %7llu %9s %9s %9s %9lu %9lu %9s %9s %5ld%s\n", cli_gate_name(gates[g]),
		      (unsigned long long)hist_count(&res.wait[0]),
		      fig(b[0], sizeof(b[0]), "%.2f", pct_of(&res.wait[0], 50, 1e3)),
		      fig(b[1], sizeof(b[1]), "%.2f", pct_of(&res.wait[0], 99, 1e3)),
		      fig(b[2], sizeof(b[2]), "%.0f", max), res.bounded[0], res.preempted[0],
		      fig(b[4], sizeof(b[4]), "%.0f", calm_max),
		      fig(b[3], sizeof(b[3]), "%.0f", pct_of(&res.wait[1], 100, 1e3)),
		      res.load_preempted, res.bounded[0] ? "  >= bound: unbounded under this load" : "");
		gw_record("create", "starvation_load", gates[g], &res, 0);
		gw_record("delete", "starvation_load", gates[g], &res, 1);
		gw_record("create_unpreempted", "starvation_load", gates[g], &res, 2);
		if (gates[g] == MS_GATE_COUNT)
			count_starved = max;
		else if (gates[g] == MS_GATE_FAIR)
			fair_starved = calm_max;
		ms_vm_destroy(vm);
	}
	target("fair wait p99 <= 10 us, 0% overlap (worst H)", fair_p99, "us", fair_p99 <= 10);
	target("fair wait p99.9 <= 100 us, 0% overlap (worst H)", fair_p999, "us",
	       fair_p999 <= 100);
	target("  same, unpreempted creates only: p99", calm_p99, "us", calm_p99 <= 10);
	target("  same, unpreempted creates only: p99.9", calm_p999, "us", calm_p999 <= 100);
	target("count wait >= bound under starvation load", count_starved / 1e3, "ms",
	       count_starved >= bound_ms * 1e3);
	table("  fair under starvation load: unpreempted max %.1f us, %.4f of the bound\n",
	      fair_starved, fair_starved / (bound_ms * 1e3));
	sched_setaffinity(0, sizeof(was), &was);
	munmap(pages, 2 * MS_PAGE_SIZE);
}

/* --- transaction ------------------------------------------------------------ */

/*
 * A vCPU reading a slot no batch touches, so that every publish's grace
 * period has a reader to wait for, as a running guest would give it.
 */
struct txn_reader {
	struct ms_vm *vm;
	uint64_t gpa;
	atomic_bool stop, started;
	int cpu;
	pthread_t thread;
};

static void *txn_reader_main(void *arg)
{
	struct txn_reader *rd = arg;
	struct ms_vcpu *vcpu;
	uint64_t sink = 0;

	if (ms_vcpu_create(rd->vm, &vcpu))
		abort();
	while (!atomic_load_explicit(&rd->stop, memory_order_relaxed)) {
		uint64_t v = 0;

		sink += ms_vcpu_read(vcpu, 0, rd->gpa, &v, sizeof(v)) + v;
		atomic_store_explicit(&rd->started, true, memory_order_relaxed);
	}
	ms_vcpu_destroy(vcpu);
	return (void *)(uintptr_t)sink;
}

static uint64_t vm_generation(struct ms_vm *vm)
{
	struct ms_stats st;

	ms_vm_stats(vm, &st);
	return st.generation;
}

/* Slots 0..k-1, one page each at base + 2i pages, all over the arena page. */
static void txn_batch(struct ms_region *r, unsigned int k, uint64_t base, uint64_t size)
{
	for (unsigned int i = 0; i < k; i++)
		r[i] = (struct ms_region){ i, 0, base + (uint64_t)i * 2 * MS_PAGE_SIZE, size,
					   (uintptr_t)arena };
}

/* r[0..k) as one transaction or as k calls: ns, and publishes in *pub. */
static double txn_apply(struct ms_vm *vm, const struct ms_region *r, unsigned int k, bool one,
			uint64_t *pub)
{
	uint64_t g0 = vm_generation(vm);
	double t = now_ns();

	if (one) {
		if (ms_set_memory_regions(vm, r, k, NULL))
			abort();
	} else {
		for (unsigned int i = 0; i < k; i++)
			if (ms_set_memory_region(vm, &r[i]))
				abort();
	}
	t = now_ns() - t;
	/* Each publish moves the generation by one: the count of grace periods. */
	*pub = vm_generation(vm) - g0;
	return t;
}

struct txn_cell {
	struct hist lat;
	uint64_t publishes;
	unsigned long batches;
};

#define TXN_READER_SLOT 600u /* above every k: the reader's slot stays put */
#define TXN_GPA_A (1ull << 36)
#define TXN_GPA_B (1ull << 37)

/*
 * Batches of k creates (deleted again untimed) or k moves (between two gpa
 * ranges, back and forth) until secs have passed, at least 2 of them.
 */
static void txn_run(unsigned int k, bool move, bool vcpu, bool one, double secs,
		    int reader_cpu, struct txn_cell *c)
{
	struct ms_vm *vm = vm_with(MS_GATE_FAIR, false);
	struct ms_region *r = malloc(k * sizeof(*r));
	struct ms_region rs = { TXN_READER_SLOT, 0, 1ull << 40, MS_PAGE_SIZE, (uintptr_t)arena };
	struct txn_reader rd = { .vm = vm, .gpa = 1ull << 40 };
	double t_end;
	uint64_t pub;

	if (!r || ms_set_memory_region(vm, &rs))
		abort();
	hist_init(&c->lat);
	c->publishes = 0;
	c->batches = 0;
	if (move) {
		txn_batch(r, k, TXN_GPA_A, MS_PAGE_SIZE);
		txn_apply(vm, r, k, true, &pub);
	}
	if (vcpu) {
		create_pinned(&rd.thread, reader_cpu, txn_reader_main, &rd);
		while (!atomic_load(&rd.started))
			sched_yield();
	}
	t_end = now_ns() + secs * 1e9;
	while (c->batches < 2 || (now_ns() < t_end && c->batches < 100000)) {
		uint64_t gpa = move && !(c->batches & 1) ? TXN_GPA_B : TXN_GPA_A;

		txn_batch(r, k, gpa, MS_PAGE_SIZE);
		hist_record(&c->lat, (uint64_t)txn_apply(vm, r, k, one, &pub));
		c->publishes += pub;
		c->batches++;
		if (!move) {
			txn_batch(r, k, gpa, 0);
			txn_apply(vm, r, k, true, &pub);
		}
	}
	if (vcpu) {
		atomic_store(&rd.stop, true);
		pthread_join(rd.thread, NULL);
	}
	ms_vm_destroy(vm);
	free(r);
}

static void scenario_transaction(void)
{
	static const unsigned int ks[] = { 1, 8, 64, 509 };
	static const char *const ops[] = { "create", "move" };
	static struct txn_cell cell[2];
	const double secs = opt.duration ? opt.duration : opt.quick ? 0.005 : 0.1;
	const int cpu[2] = { allowed_cpu(0), allowed_cpu(1) };
	double worst_pub = 0;
	cpu_set_t was;

	sched_getaffinity(0, sizeof(was), &was);
	/* With one CPU the reader would take turns with the updater: no vCPU rows. */
	if (cpu[1] >= 0)
		pin_self(cpu[0]);
	table("\n== transaction: k changes as one ms_set_memory_regions or as k ms_set_memory_region\n"
	      "   calls; us per whole batch p50 (p99); publishes (memslot grace periods) per\n"
	      "   batch; with no vCPU or one pinned vCPU thread reading another slot; load %.2f\n",
	      load_avg());
	table("  %-6s %-4s %4s %7s %21s %21s %6s %6s %8s\n", "op", "vCPU", "k", "batches",
	      "transaction", "separate", "pub tx", "pub sep", "sep/tx");
	for (int o = 0; o < 2; o++)
		for (int v = 0; v < (cpu[1] >= 0 ? 2 : 1); v++) {
			char verdict[256] = "", *w = verdict;
			bool any[2] = { false, false };

			for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
				double p50[2], p99[2], pubs[2], ratio;
				char b[4][16], cellt[2][80];

				for (int one = 0; one < 2; one++) {
					struct txn_cell *c = &cell[one];
					struct figure f = { .scenario = "transaction",
							    .kase = ops[o],
							    .series = one ? "transaction" : "separate",
							    .slots = ks[i] + 1,
							    .threads = v ? 2 : 1,
							    .gate = cli_gate_name(MS_GATE_FAIR),
							    .elision = ELISION_NA };

					txn_run(ks[i], o, v, one, secs, cpu[1], c);
					p50[one] = pct_of(&c->lat, 50, 1e3);
					p99[one] = pct_of(&c->lat, 99, 1e3);
					pubs[one] = (double)c->publishes / c->batches;
					record_as(&f, "us", "p50", p50[one]);
					f.stat = "p99";
					record(&f, p99[one]);
					record_as(&f, "publishes", "publishes_per_batch", pubs[one]);
					record_as(&f, "batches", "count", c->batches);
					snprintf(cellt[one], sizeof(cellt[one]), "%s (%s)",
						 fig(b[2 * one], sizeof(b[0]), "%.1f", p50[one]),
						 fig(b[2 * one + 1], sizeof(b[0]), "%.1f", p99[one]));
				}
				ratio = p50[0] / p50[1];
				{
					struct figure f = { .scenario = "transaction",
							    .kase = ops[o],
							    .series = "separate_over_transaction",
							    .stat = "ratio_p50",
							    .unit = "x",
							    .slots = ks[i] + 1,
							    .threads = v ? 2 : 1,
							    .gate = cli_gate_name(MS_GATE_FAIR),
							    .elision = ELISION_NA };

					record(&f, ratio);
				}
				worst(&worst_pub, pubs[1]);
				table("  %-6s %-4s %4u %3lu/%-3lu %21s %21s %6.1f %7.1f %7.2fx\n",
				      ops[o], v ? "1" : "none", ks[i], cell[1].batches,
				      cell[0].batches, cellt[1], cellt[0], pubs[1], pubs[0], ratio);
				/* Which one won at this k, for the sentence below the rows. */
				any[ratio > 1] = true;
				w += snprintf(w, verdict + sizeof(verdict) - w, "%s k=%u: %s %.2fx",
					      i ? "," : "", ks[i],
					      ratio > 1 ? "transaction" : "separate",
					      ratio > 1 ? ratio : 1 / ratio);
			}
			table("  verdict: %s, %s: %s (%s)\n", ops[o],
			      v ? "one vCPU reading" : "no vCPU",
			      any[0] && any[1] ? "neither is faster at every k"
			      : any[1]	       ? "the transaction is faster at every k"
					       : "separate calls are faster at every k",
			      verdict + 1);
		}
	target("transaction publishes per batch <= 2 (worst)", worst_pub, "", worst_pub <= 2);
	sched_setaffinity(0, sizeof(was), &was);
}

/* --- pfn cache ---------------------------------------------------------------- */

/*
 * Invalidations of one host page, pinned to their own core: back to back
 * (period 0) or one held hold_ns every period_ns.
 */
struct pc_load {
	struct ms_vm *vm;
	uint64_t hva;
	double hold_ns, period_ns;
	atomic_bool stop, running;
	unsigned long pairs;
	pthread_t thread;
};

static void *pc_load_main(void *arg)
{
	struct pc_load *l = arg;

	atomic_store(&l->running, true);
	while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
		double t0 = now_ns();

		if (ms_invalidate_range_start(l->vm, l->hva, l->hva + MS_PAGE_SIZE, true) == 0) {
			spin_for(l->hold_ns);
			ms_invalidate_range_end(l->vm, l->hva, l->hva + MS_PAGE_SIZE);
		}
		l->pairs++;
		spin_for(l->period_ns - (now_ns() - t0));
	}
	return NULL;
}

/* ns per iteration of lock + check + unlock, and of check alone in one held lock. */
static void pc_check_cost(struct ms_pfn_cache *gpc, double *use_ns, double *check_ns)
{
	const long iters = opt.quick ? 200000 : 20000000;
	uintptr_t sink = 0;
	double t;

	t = now_ns();
	for (long i = 0; i < iters / 4; i++) {
		ms_pfn_cache_read_lock(gpc);
		sink += (uintptr_t)ms_pfn_cache_check(gpc);
		ms_pfn_cache_read_unlock(gpc, false);
	}
	*use_ns = (now_ns() - t) / (iters / 4);
	ms_pfn_cache_read_lock(gpc);
	t = now_ns();
	for (long i = 0; i < iters; i++)
		sink += (uintptr_t)ms_pfn_cache_check(gpc);
	*check_ns = (now_ns() - t) / iters;
	ms_pfn_cache_read_unlock(gpc, false);
	if (!sink)
		opt.failed = true; /* the cache was never valid: the figures mean nothing */
}

static void scenario_pfn_cache(void)
{
	static const char *const loads[] = { "no_load", "unrelated_load", "related_load" };
	static const char *const load_text[] = { "no load", "unrelated load", "related load" };
	const double secs = opt.duration ? opt.duration : opt.quick ? 0.02 : 0.3;
	const int cpu[2] = { allowed_cpu(0), allowed_cpu(1) };
	/* The cache's page and another slot's page; their own pages, not the arena. */
	char *pages = mmap(NULL, 2 * MS_PAGE_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct ms_region cache_slot = { 0, 0, 0, MS_PAGE_SIZE, (uintptr_t)pages };
	struct ms_region other_slot = { 1, 0, 1ull << 30, MS_PAGE_SIZE,
					(uintptr_t)pages + MS_PAGE_SIZE };
	struct ms_vm *vm = vm_with(MS_GATE_FAIR, false);
	static struct hist lat[3];
	double use_ns, check_ns, p50[3], p99[3], retries[3];
	struct ms_pfn_cache *gpc;
	cpu_set_t was;
	int nloads = cpu[1] >= 0 ? 3 : 1;

	if (pages == MAP_FAILED || ms_set_memory_region(vm, &cache_slot) ||
	    ms_set_memory_region(vm, &other_slot) || ms_pfn_cache_create(vm, &gpc) ||
	    ms_pfn_cache_activate(gpc, 0, 0, 8) || ms_pfn_cache_refresh(gpc))
		abort();
	sched_getaffinity(0, sizeof(was), &was);
	if (cpu[1] >= 0)
		pin_self(cpu[0]);
	table("\n== pfn-cache: a device's use of a valid cache, and its refresh once an invalidation\n"
	      "   of its page made it invalid; load threads pinned to the other core; load %.2f\n",
	      load_avg());
	pc_check_cost(gpc, &use_ns, &check_ns);
	table("  use: read_lock + check + read_unlock(false)  %8.2f ns\n", use_ns);
	table("  check alone, inside one held read lock       %8.2f ns\n", check_ns);
	{
		struct figure f = { .scenario = "pfn-cache",
				    .kase = "use",
				    .series = "memslots",
				    .stat = "mean",
				    .unit = "ns",
				    .slots = 2,
				    .threads = 1,
				    .gate = cli_gate_name(MS_GATE_FAIR),
				    .elision = ELISION_NA };

		record(&f, use_ns);
		f.kase = "check";
		record(&f, check_ns);
	}
	table("  %-15s %9s %10s %10s %16s %12s\n", "refresh under", "refreshes", "p50 us",
	      "p99 us", "retries/refresh", "load pairs");
	for (int ld = 0; ld < nloads; ld++) {
		/* Unrelated: the other slot's page back to back; related: ours, 10 us in 100. */
		struct pc_load l = { .vm = vm,
				     .hva = ld == 2 ? (uintptr_t)pages
						    : (uintptr_t)pages + MS_PAGE_SIZE,
				     .hold_ns = ld == 2 ? 10e3 : 0,
				     .period_ns = ld == 2 ? 100e3 : 0 };
		struct figure f = { .scenario = "pfn-cache",
				    .kase = "refresh",
				    .series = loads[ld],
				    .slots = 2,
				    .threads = ld ? 2 : 1,
				    .gate = cli_gate_name(MS_GATE_FAIR),
				    .elision = ELISION_ON };
		struct ms_stats s0, s1;
		double t_end;
		char b[2][16];

		hist_init(&lat[ld]);
		if (ld) {
			create_pinned(&l.thread, cpu[1], pc_load_main, &l);
			while (!atomic_load(&l.running))
				sched_yield();
		}
		ms_vm_stats(vm, &s0);
		t_end = now_ns() + secs * 1e9;
		while (hist_count(&lat[ld]) < 2 || now_ns() < t_end) {
			uintptr_t p = (uintptr_t)pages;
			double t;

			/* An invalidation of its page leaves the cache to refresh. */
			if (ms_invalidate_range_start(vm, p, p + MS_PAGE_SIZE, true))
				abort();
			ms_invalidate_range_end(vm, p, p + MS_PAGE_SIZE);
			t = now_ns();
			if (ms_pfn_cache_refresh(gpc))
				abort();
			hist_record(&lat[ld], (uint64_t)(now_ns() - t));
		}
		ms_vm_stats(vm, &s1);
		if (ld) {
			atomic_store(&l.stop, true);
			pthread_join(l.thread, NULL);
		}
		p50[ld] = pct_of(&lat[ld], 50, 1e3);
		p99[ld] = pct_of(&lat[ld], 99, 1e3);
		retries[ld] = (double)(s1.pfn_cache_retries - s0.pfn_cache_retries) /
			      hist_count(&lat[ld]);
		table("  %-15s %9llu %10s %10s %16.2f %12lu\n", load_text[ld],
		      (unsigned long long)hist_count(&lat[ld]),
		      fig(b[0], sizeof(b[0]), "%.2f", p50[ld]),
		      fig(b[1], sizeof(b[1]), "%.2f", p99[ld]), retries[ld], l.pairs);
		record_as(&f, "us", "p50", p50[ld]);
		f.stat = "p99";
		record(&f, p99[ld]);
		record_as(&f, "retries", "retries_per_refresh", retries[ld]);
		record_as(&f, "refreshes", "count", hist_count(&lat[ld]));
	}
	if (nloads > 1) {
		struct figure f = { .scenario = "pfn-cache",
				    .kase = "refresh",
				    .series = "unrelated_over_no_load",
				    .unit = "x",
				    .slots = 2,
				    .threads = 2,
				    .gate = cli_gate_name(MS_GATE_FAIR),
				    .elision = ELISION_ON };

		f.stat = "ratio_p50";
		record(&f, p50[1] / p50[0]);
		f.stat = "ratio_p99";
		record(&f, p99[1] / p99[0]);
		table("  unrelated load / no load: p50 %.2fx, p99 %.2fx\n", p50[1] / p50[0],
		      p99[1] / p99[0]);
		table("  verdict: a refresh under unrelated load is %s than with none (p50 %.2fx)\n",
		      p50[1] > p50[0] ? "slower" : "as fast or faster", p50[1] / p50[0]);
	}
	target("check alone <= 3 ns", check_ns, "ns", check_ns <= 3);
	if (nloads > 1)
		target("refresh p99 unrelated load / no load <= 2", p99[1] / p99[0], "x",
		       p99[1] / p99[0] <= 2);
	sched_setaffinity(0, sizeof(was), &was);
	ms_pfn_cache_destroy(gpc);
	ms_vm_destroy(vm);
	munmap(pages, 2 * MS_PAGE_SIZE);
}

/* --- dirty log ------------------------------------------------------------------ */

static struct ms_vm *vm_dirty(bool manual)
{
	struct ms_config cfg;
	struct ms_vm *vm;

	ms_config_init(&cfg);
	cfg.manual_dirty_log_protect = manual;
	if (ms_vm_create(&cfg, &vm))
		abort();
	return vm;
}

/* Host memory only backed where written: a GiB of slot costs what is dirtied. */
static char *map_noreserve(uint64_t size)
{
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		abort();
	return p;
}

static void vcpu_write8(struct ms_vcpu *vcpu, uint64_t gpa)
{
	uint64_t v = gpa;

	if (ms_vcpu_write(vcpu, 0, gpa, &v, sizeof(v)))
		abort();
}

#define DL_WRITE_PAGES 4096u

/*
 * ns per 8-byte write: the same page again and again (hit), each of
 * DL_WRITE_PAGES pages in turn (hit, other entries), and each page once
 * right after a harvest write-protected it (a write fault that re-marks;
 * logging on only).
 */
static void dl_write_cost(bool logged, double ns[3])
{
	const int rounds = opt.quick ? 2 : 20;
	const long iters = opt.quick ? 200000 : 5000000;
	uint64_t size = (uint64_t)DL_WRITE_PAGES * MS_PAGE_SIZE;
	char *mem = map_noreserve(size);
	struct ms_region r = { 0, logged ? MS_MEM_LOG_DIRTY_PAGES : 0, 0, size, (uintptr_t)mem };
	uint64_t *bitmap = calloc(DL_WRITE_PAGES / 64, sizeof(*bitmap));
	struct ms_vm *vm = vm_dirty(false);
	struct ms_vcpu *vcpu;
	double t, after = 0, distinct = 0;

	if (!bitmap || ms_set_memory_region(vm, &r) || ms_vcpu_create(vm, &vcpu))
		abort();
	for (unsigned int p = 0; p < DL_WRITE_PAGES; p++)
		vcpu_write8(vcpu, (uint64_t)p * MS_PAGE_SIZE);
	t = now_ns();
	for (long i = 0; i < iters; i++)
		vcpu_write8(vcpu, 64);
	ns[0] = (now_ns() - t) / iters;
	for (int k = 0; k < rounds; k++) {
		if (logged) {
			if (ms_get_dirty_log(vm, 0, bitmap))
				abort();
			t = now_ns();
			for (unsigned int p = 0; p < DL_WRITE_PAGES; p++)
				vcpu_write8(vcpu, (uint64_t)p * MS_PAGE_SIZE);
			after += now_ns() - t;
		}
		t = now_ns();
		for (unsigned int p = 0; p < DL_WRITE_PAGES; p++)
			vcpu_write8(vcpu, (uint64_t)p * MS_PAGE_SIZE);
		distinct += now_ns() - t;
	}
	ns[1] = distinct / rounds / DL_WRITE_PAGES;
	ns[2] = logged ? after / rounds / DL_WRITE_PAGES : NAN;
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
	free(bitmap);
	munmap(mem, size);
}

/* Write page i of the slot for every i whose (i % 100) < pct: spread over all words. */
static void dl_dirty(struct ms_vcpu *vcpu, uint64_t npages, unsigned int pct)
{
	for (uint64_t i = 0; i < npages; i++)
		if (i % 100 < pct)
			vcpu_write8(vcpu, i * MS_PAGE_SIZE);
}

static uint64_t popcount_words(const uint64_t *w, uint64_t n)
{
	uint64_t c = 0;

	for (uint64_t i = 0; i < n; i++)
		c += __builtin_popcountll(w[i]);
	return c;
}

/* us per harvest of a clean slot of size bytes by KVM_GET_DIRTY_LOG; NAN without /dev/kvm. */
static double kvm_harvest_us(char *mem, uint64_t size, int rounds)
{
	struct ms_region r = { 0, KVM_MEM_LOG_DIRTY_PAGES, 0, size, (uintptr_t)mem };
	uint64_t *bitmap = calloc(size / MS_PAGE_SIZE / 64 + 1, sizeof(*bitmap));
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = bitmap };
	struct kvm_vm k;
	double t, us = NAN;

	if (!bitmap || !kvm_open(&k)) {
		free(bitmap);
		return NAN;
	}
	if (!kvm_set(&k, &r)) {
		bool ok = true;

		t = now_ns();
		for (int i = 0; i < rounds && ok; i++)
			ok = !ioctl(k.vm, KVM_GET_DIRTY_LOG, &log);
		if (ok)
			us = (now_ns() - t) / rounds / 1e3;
	}
	kvm_close(&k);
	free(bitmap);
	return us;
}

static void scenario_dirty_log(void)
{
	static const unsigned int pcts[] = { 0, 1, 10, 100 };
	static const char *const wcase[] = { "write_hit_same_page", "write_hit_other_pages",
					     "write_after_harvest" };
	const double secs = opt.duration ? opt.duration : opt.quick ? 0.02 : 0.3;
	/* 1 GiB of address space; 64 MiB for the smoke, scaled to a GiB alike. */
	const uint64_t size = opt.quick ? 64ull << 20 : 1ull << 30, npages = size / MS_PAGE_SIZE;
	const double per_gib = (double)(1ull << 30) / size;
	char *mem = map_noreserve(size);
	uint64_t *bitmap = calloc(npages / 64, sizeof(*bitmap));
	struct ms_vm *vm[2] = { vm_dirty(false), vm_dirty(true) };
	struct ms_vcpu *vcpu[2];
	double wns[2][3], kvm_us, clean_us = NAN;
	char b[4][16];

	if (!bitmap)
		abort();
	table("\n== dirty-log: 8-byte ms_vcpu_write with logging off and on, ns; harvest of a slot of\n"
	      "   %llu MiB (host memory MAP_NORESERVE, touched only where dirtied), us per GiB%s;\n"
	      "   load %.2f\n",
	      (unsigned long long)(size >> 20), per_gib > 1 ? " (scaled)" : "", load_avg());
	dl_write_cost(false, wns[0]);
	dl_write_cost(true, wns[1]);
	table("  %-34s %10s %10s\n", "write", "log off", "log on");
	for (int c = 0; c < 3; c++) {
		static const char *const text[] = { "hit, same page",
						    "hit, 4096 pages in turn",
						    "first write after a harvest" };
		struct figure f = { .scenario = "dirty-log",
				    .kase = wcase[c],
				    .stat = "mean",
				    .unit = "ns",
				    .slots = 1,
				    .threads = 1,
				    .elision = ELISION_NA };

		table("  %-34s %10s %10s\n", text[c], fig(b[0], sizeof(b[0]), "%.1f", wns[0][c]),
		      fig(b[1], sizeof(b[1]), "%.1f", wns[1][c]));
		f.series = "log_off";
		if (c < 2)
			record(&f, wns[0][c]);
		f.series = "log_on";
		record(&f, wns[1][c]);
	}
	for (int m = 0; m < 2; m++) {
		struct ms_region r = { 0, MS_MEM_LOG_DIRTY_PAGES, 0, size, (uintptr_t)mem };

		if (ms_set_memory_region(vm[m], &r) || ms_vcpu_create(vm[m], &vcpu[m]))
			abort();
	}
	kvm_us = kvm_harvest_us(mem, size, opt.quick ? 5 : 50);
	table("  %-6s %7s %16s %16s %16s %16s\n", "dirty", "rounds", "get (protects)",
	      "manual: get", "manual: clear", "kernel get");
	for (size_t p = 0; p < sizeof(pcts) / sizeof(pcts[0]); p++) {
		double sum[3] = { 0, 0, 0 }, us[3], t_end = now_ns() + secs * 1e9;
		uint64_t want = 0, found[2] = { 0, 0 };
		int rounds = 0;

		for (uint64_t i = 0; i < npages; i++)
			want += i % 100 < pcts[p];
		while (rounds < 2 || (now_ns() < t_end && rounds < 1000)) {
			double t;

			/* Without manual protect: one call reads, clears and protects. */
			dl_dirty(vcpu[0], npages, pcts[p]);
			t = now_ns();
			if (ms_get_dirty_log(vm[0], 0, bitmap))
				abort();
			sum[0] += now_ns() - t;
			found[0] = popcount_words(bitmap, npages / 64);
			/* Manual protect: get only reads; clear over the whole slot protects. */
			dl_dirty(vcpu[1], npages, pcts[p]);
			t = now_ns();
			if (ms_get_dirty_log(vm[1], 0, bitmap))
				abort();
			sum[1] += now_ns() - t;
			found[1] = popcount_words(bitmap, npages / 64);
			t = now_ns();
			if (ms_clear_dirty_log(vm[1], 0, 0, (uint32_t)npages, bitmap))
				abort();
			sum[2] += now_ns() - t;
			rounds++;
		}
		/* A harvest that missed or invented pages would make the timing moot. */
		if (found[0] != want || found[1] != want) {
			fprintf(stderr,
				"memslots-bench: dirty-log at %u%%: %llu and %llu pages reported, "
				"%llu written\n",
				pcts[p], (unsigned long long)found[0],
				(unsigned long long)found[1], (unsigned long long)want);
			opt.failed = true;
		}
		for (int c = 0; c < 3; c++)
			us[c] = sum[c] / rounds / 1e3 * per_gib;
		if (pcts[p] == 0)
			clean_us = us[0];
		table("  %5u%% %7d %16.1f %16.1f %16.1f %16s\n", pcts[p], rounds, us[0], us[1],
		      us[2], pcts[p] ? "" : fig(b[2], sizeof(b[2]), "%.1f", kvm_us * per_gib));
		{
			static const char *const kase[] = { "get", "manual_get", "manual_clear" };
			struct figure f = { .scenario = "dirty-log",
					    .series = "memslots",
					    .stat = "mean",
					    .unit = "us_per_gib",
					    .slots = 1,
					    .threads = 1,
					    .elision = ELISION_NA };
			char series[32];

			snprintf(series, sizeof(series), "dirty_%upct", pcts[p]);
			f.series = series;
			for (int c = 0; c < 3; c++) {
				f.kase = kase[c];
				record(&f, us[c]);
			}
			if (pcts[p] == 0 && !isnan(kvm_us)) {
				f.kase = "get";
				f.series = "kernel_kvm_clean";
				record(&f, kvm_us * per_gib);
			}
		}
	}
	table("  verdict: logging on makes a hit write %.1f ns %s; a clean GiB's harvest: ",
	      fabs(wns[1][0] - wns[0][0]), wns[1][0] >= wns[0][0] ? "slower" : "faster");
	if (isnan(kvm_us))
		table("kernel KVM n/a (/dev/kvm could not be used)\n");
	else
		table("%s (%.1f us here, %.1f us the kernel)\n",
		      clean_us < kvm_us * per_gib ? "memslots is faster" : "the kernel is faster",
		      clean_us, kvm_us * per_gib);
	for (int m = 0; m < 2; m++) {
		ms_vcpu_destroy(vcpu[m]);
		ms_vm_destroy(vm[m]);
	}
	free(bitmap);
	munmap(mem, size);
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
	  "set logscale xy; set xlabel 'slots (log scale)'\n"
	  "set ylabel 'ns per lookup, median (log scale)'\n"
	  "set title 'Translation throughput: independent lookups of random gfns'\n"
	  "plot 'translate.dat' u 1:2 w lp t 'hit (last-used slot)', '' u 1:3 w lp t 'miss',"
	  " '' u 1:4 w lp t 'slot index alone', '' u 1:5 w lp t 'peer: linear scan',"
	  " '' u 1:6 w lp t 'peer: binary search', '' u 1:7 w lp t 'peer: branchless bsearch'\n" },
	{ "translate-latency",
	  "set logscale xy; set xlabel 'slots (log scale)'\n"
	  "set ylabel 'ns per lookup, median (log scale)'\n"
	  "set title 'Translation latency: each gfn depends on the previous result'\n"
	  "plot 'translate-latency.dat' u 1:2 w lp t 'hit (last-used slot)', '' u 1:3 w lp t 'miss',"
	  " '' u 1:4 w lp t 'slot index alone', '' u 1:5 w lp t 'peer: linear scan',"
	  " '' u 1:6 w lp t 'peer: binary search', '' u 1:7 w lp t 'peer: branchless bsearch'\n" },
	{ "update",
	  "set logscale xy; set xlabel 'slots (log scale)'; set ylabel 'us, p50 (log scale)'\n"
	  "set title 'Memslot update latency: ours with and without a vCPU reading, the kernel'\n"
	  "plot for [o=0:3] 'update.dat' u 1:(column(6+o)) w lp lc 1 pt o+4 dt 1"
	  " t 'memslots, no vCPU: '.word('create move flags delete', o+1),"
	  " for [o=0:3] '' u 1:(column(2+o)) w lp lc 2 pt o+4 dt 2"
	  " t 'memslots, vCPU reading: '.word('create move flags delete', o+1),"
	  " for [o=0:3] '' u 1:(column(10+o)) w lp lc 7 pt o+4 dt 3"
	  " t 'kernel KVM, no vCPU: '.word('create move flags delete', o+1)\n" },
	{ "invalidate",
	  "set xlabel 'invalidating threads'; set ylabel 'start+end pairs per us, all threads'\n"
	  "set xrange [0:2.5]; set yrange [0:*]; set xtics 1\n"
	  "set title 'Invalidations of ranges that touch no slot'\n"
	  "plot 'invalidate.dat' u 1:2 w lp t 'count gate, elision on',"
	  " '' u 1:3 w lp t 'count gate, elision off', '' u 1:4 w lp t 'rwsem gate, elision on',"
	  " '' u 1:5 w lp t 'no gate, elision on', '' u 1:6 w lp t 'fair gate, elision on'\n" },
	{ "update-under-load",
	  "set logscale x; set xlabel 'update latency, us (log scale)'\n"
	  "set ylabel 'fraction of updates'; set yrange [0:1]\n"
	  "set title 'Update latency while invalidations run back to back'\n"
	  "plot 'update-under-load.dat' index 0 u 2:3 w l t 'count (upstream)', '' index 1 u 2:3 w l t"
	  " 'rwsem', '' index 2 u 2:3 w l t 'none', '' index 3 u 2:3 w l t 'fair'\n" },
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
			/* The key outside the plot: inside, it covered lines. */
			"set terminal pngcairo size 1100,540 noenhanced\ncd '%s'\n"
			"set key outside right top; set grid\nset output '%s.png'\n%s",
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
		"                      gate-wait | transaction | pfn-cache | dirty-log |\n"
		"                      zap | memslot-perf | lockdep (default: all)\n"
		"  --quick             tiny counts: a smoke run of seconds\n"
		"  --duration SECONDS  per measurement of invalidate, update-under-load,\n"
		"                      gate-wait, transaction, pfn-cache, dirty-log, zap\n"
		"                      and memslot-perf;\n"
		"                      the other scenarios count iterations and refuse it\n"
		"  --csv               each figure a CSV row with its parameters, header first\n"
		"  --json              one JSON document of every figure (docs/tools.md)\n"
		"  --plot DIR          draw PNG charts there with gnuplot (DIR must exist)\n"
		"  --check             exit 3 when a target printed in the run is MISSED\n"
		"  --version           print the version\n"
		"  -h, --help          this text\n"
		"exit: 0 done, 1 a figure or chart could not be produced, 2 bad usage,\n"
		"      3 a target MISSED (with --check only)\n");
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
		{ "check", no_argument, NULL, 'k' },
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
		{ "gate-wait", scenario_gate_wait, true },
		{ "transaction", scenario_transaction, true },
		{ "pfn-cache", scenario_pfn_cache, true },
		{ "dirty-log", scenario_dirty_log, true },
		{ "zap", scenario_zap, true },
		{ "memslot-perf", scenario_memslot_perf, true },
		/* Last: it turns the validator on for the whole process. */
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
		case 'k':
			opt.check = true;
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
			    "(only invalidate, update-under-load, gate-wait, transaction, pfn-cache, "
			    "dirty-log, zap and memslot-perf do)",
			    scenarios[i].name);
	}
	if (!found)
		cli_bad_value("scenario", opt.only,
			      "translate, update, invalidate, update-under-load, gate-wait, "
			      "transaction, pfn-cache, dirty-log, zap, memslot-perf or lockdep");
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
		printf(",\"check\":%s", opt.check ? "true" : "false");
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
	/* An error outranks a miss: its figures may be the reason. */
	code = opt.failed ? 1 : opt.check && opt.missed ? 3 : 0;
	if (opt.check)
		table("\ncheck: %u target%s MISSED\n", opt.missed, opt.missed == 1 ? "" : "s");
	if (opt.json)
		printf("\n ],\n \"result\":\"%s\",\"exit_code\":%d}\n",
		       code == 1 ? "error" : code == 3 ? "missed" : "clean", code);
	return code;
}
