/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memslots-bench --scenario zap: what a blockable invalidation costs when
 * it zaps an entry that a running vCPU uses, KVM's TLB flush with a vCPU in
 * guest mode.  A vCPU thread on the other core reads its page back to back,
 * faulting the entry in again after each zap; the host thread waits until
 * the vCPU has read through a new entry, then times ms_invalidate_range_start
 * over the page, which zaps the entry, waits for the vCPU to be out of any
 * access to it and puts its frame.  Beside it, the same start with no vCPU
 * running (the host thread faults the entry in itself).  Only starts that
 * zapped an entry are counted.
 */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bench.h"
#include "cli.h"
#include "histogram.h"

struct zap_vcpu {
	struct ms_vm *vm;
	pthread_t thread;
	atomic_bool stop;
	_Atomic uint64_t reads;
};

static void *zap_vcpu_main(void *arg)
{
	struct zap_vcpu *z = arg;
	struct ms_vcpu *vcpu;
	char c;

	if (ms_vcpu_create(z->vm, &vcpu))
		abort();
	while (!atomic_load_explicit(&z->stop, memory_order_relaxed))
		if (!ms_vcpu_read(vcpu, 0, 0, &c, 1))
			atomic_fetch_add_explicit(&z->reads, 1, memory_order_release);
	ms_vcpu_destroy(vcpu);
	return NULL;
}

/* Until the vCPU has read twice since: the second read went through a new entry. */
static void wait_for_reads(struct zap_vcpu *z)
{
	uint64_t from = atomic_load_explicit(&z->reads, memory_order_acquire);

	while (atomic_load_explicit(&z->reads, memory_order_acquire) < from + 2)
		sched_yield();
}

/* Starts that zapped an entry, in ns, until secs have passed (2 at least). */
static void zap_run(struct ms_vm *vm, uintptr_t page, struct zap_vcpu *z, double secs,
		    struct hist *h)
{
	double t_end = now_ns() + secs * 1e9;
	struct ms_vcpu *own = NULL;
	char c;

	if (!z && ms_vcpu_create(vm, &own))
		abort();
	while (hist_count(h) < 2 || now_ns() < t_end) {
		struct ms_stats s0, s1;
		double t;

		if (z)
			wait_for_reads(z);
		else if (ms_vcpu_read(own, 0, 0, &c, 1))
			abort();
		ms_vm_stats(vm, &s0);
		t = now_ns();
		if (ms_invalidate_range_start(vm, page, page + MS_PAGE_SIZE, true))
			abort();
		t = now_ns() - t;
		ms_invalidate_range_end(vm, page, page + MS_PAGE_SIZE);
		ms_vm_stats(vm, &s1);
		if (s1.entries_zapped > s0.entries_zapped)
			hist_record(h, (uint64_t)t);
	}
	if (own)
		ms_vcpu_destroy(own);
}

static double pct_us(const struct hist *h, double pct)
{
	uint64_t v;

	return hist_percentile(h, pct, &v) ? v / 1e3 : NAN;
}

void scenario_zap(void)
{
	static const char *const cases[2] = { "no_vcpu", "running_vcpu" };
	const double secs = opt.duration ? opt.duration : opt.quick ? 0.02 : 0.5;
	const int cpu[2] = { allowed_cpu(0), allowed_cpu(1) };
	char *page =
	    mmap(NULL, MS_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct ms_region slot = { 0, 0, 0, MS_PAGE_SIZE, (uintptr_t)page };
	struct ms_vm *vm = vm_with(MS_GATE_FAIR, false);
	static struct hist lat[2];
	double p50[2] = { NAN, NAN };
	cpu_set_t was;
	int ncases = cpu[1] >= 0 ? 2 : 1;

	if (page == MAP_FAILED || ms_set_memory_region(vm, &slot))
		abort();
	sched_getaffinity(0, sizeof(was), &was);
	if (cpu[1] >= 0)
		pin_self(cpu[0]);
	table("\n== zap: a blockable invalidation start that zaps an entry a vCPU uses, in us\n"
	      "   (the vCPU reads its page back to back on the other core; load %.2f)\n",
	      load_avg());
	table("  %-14s %8s %9s %9s %9s\n", "case", "zaps", "p50", "p99", "max");
	for (int c = 0; c < ncases; c++) {
		struct zap_vcpu z = { .vm = vm };
		struct figure f = { .scenario = "zap",
				    .kase = cases[c],
				    .series = "memslots",
				    .unit = "us",
				    .slots = 1,
				    .threads = c ? 2 : 1,
				    .gate = cli_gate_name(MS_GATE_FAIR),
				    .elision = ELISION_ON };
		char b[2][16];

		hist_init(&lat[c]);
		if (c)
			create_pinned(&z.thread, cpu[1], zap_vcpu_main, &z);
		zap_run(vm, (uintptr_t)page, c ? &z : NULL, secs, &lat[c]);
		if (c) {
			atomic_store(&z.stop, true);
			pthread_join(z.thread, NULL);
		}
		p50[c] = pct_us(&lat[c], 50);
		table("  %-14s %8llu %9.2f %9s %9.2f\n", cases[c],
		      (unsigned long long)hist_count(&lat[c]), p50[c],
		      fig(b[0], sizeof(b[0]), "%.2f", pct_us(&lat[c], 99)),
		      hist_max(&lat[c]) / 1e3);
		f.stat = "p50";
		record(&f, p50[c]);
		f.stat = "p99";
		record(&f, pct_us(&lat[c], 99));
	}
	sched_setaffinity(0, sizeof(was), &was);
	if (ncases == 2) {
		table(
		    "  verdict: with a vCPU running, a start that zaps its entry takes %.2f us at "
		    "the median, %.1fx the %.2f us it takes with no vCPU\n",
		    p50[1], p50[1] / p50[0], p50[0]);
		target("zap of an entry a running vCPU uses <= 5 us p50", p50[1], "us",
		       p50[1] <= 5);
	} else {
		table("  one CPU: no vCPU can run beside the host thread; running_vcpu skipped\n");
	}
	ms_vm_destroy(vm);
	munmap(page, MS_PAGE_SIZE);
}
