/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memslots-stress: vCPU threads, invalidating threads and a memslot updater
 * run against the simulated host mm (hostmm.c) under one gate design, every
 * invariant checked on every operation, a watchdog for hangs.  Scenarios:
 * default (random workload, a share of it at the edges of edges.c), edges
 * (the same workload crowded onto a few pages, mostly at the edges),
 * rwsem-deadlock (the rwsem three-party interleaving, forced), imbalance (an
 * update between an elided start and its end, forced), starve (invalidations
 * of a slot's pages open at every instant while the updater works on that
 * slot), migrate (pre-copy rounds over the dirty log while vCPUs write;
 * the destination must equal the source), bar-move (a BAR moved by
 * transactions, or by separate calls with --split, while vCPUs and a device
 * with a pfn cache use it).  Exit: 0 all held, 1 invariant violated, 2 bad usage, 3 hang, 4 an
 * update starved past --starve-bound (starve only).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sched.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "histogram.h"
#include "edges.h"
#include "hostmm.h"

#define EXIT_VIOLATED 1
#define EXIT_USAGE 2
#define EXIT_HANG 3
#define EXIT_STARVED 4
#define MAX_THREADS 16
#define SLOT_PAGES 4

enum invariant {
	INV_STALE,
	INV_TORN,
	INV_HELD,
	INV_GPA_WIDTH,
	INV_NEGATIVE,
	INV_GENERATION,
	INV_FRAMES,
	INV_END_STATE,
	INV_MIGRATED,
	INV_HOLE,
	INV_CACHE,
	INV_NR
};

static const char *const invariant_names[INV_NR] = {
	"no stale frame used",
	"no frame used while its page changed",
	"no frame held past a start on its page",
	"no access beyond the guest physical address width",
	"every end finds its start's count",
	"start and end decide alike",
	"every frame got is put once",
	"at the end: count 0, nothing left",
	"no dirty page lost in migration",
	"the BAR is always mapped somewhere",
	"no page changes under a pfn cache in use",
};

/*
 * Stable keys for --json (docs/tools.md).  Designated, so that an invariant
 * added above without a key here still prints, under a key made from its name.
 */
static const char *const invariant_keys[INV_NR] = {
	[INV_STALE] = "no_stale_frame",		 [INV_TORN] = "no_torn_frame",
	[INV_HELD] = "no_frame_held_past_start", [INV_GPA_WIDTH] = "no_access_past_width",
	[INV_NEGATIVE] = "counts_balanced", [INV_GENERATION] = "one_generation",
	[INV_FRAMES] = "frames_balanced",	 [INV_END_STATE] = "end_state",
	[INV_MIGRATED] = "no_lost_dirty_page",
	[INV_HOLE] = "no_hole", [INV_CACHE] = "pfn_cache_coherent",
};

struct options {
	enum ms_gate gate;
	const char *scenario;
	double duration, watchdog, starve_bound;
	uint64_t seed;
	bool json, lockdep, no_elision, duration_set, slots_given, related_given, manual_protect;
	bool split;
	unsigned int vcpus, invalidators, slots, related_pct;
};

/* How much of the random workload is at the edges; set by the scenario. */
struct edge_mix {
	unsigned int unaligned_pct; /* invalidations of byte ranges not page aligned */
	unsigned int wide_pct;	    /* vCPU reads followed by an access beyond the width */
	unsigned int write_pct;	    /* vCPU reads followed by a write (makes frames dirty) */
	unsigned int nest_pct;	    /* invalidations with another one nested inside */
	unsigned int dawdle_gap_us; /* mean time between two dawdles; 0: no dawdler */
	unsigned int update_gap_us; /* between two memslot updates */
};

enum role {
	ROLE_VCPU,
	ROLE_INVALIDATOR,
	ROLE_UPDATER,
	ROLE_DAWDLER,
	ROLE_MIGRATOR,
	ROLE_DEVICE,
	ROLE_NR
};
static const char *const role_names[ROLE_NR] = { "vcpu",     "invalidator", "updater",
						 "dawdler",  "migrator",    "device" };

struct worker {
	pthread_t thread;
	enum role role;
	unsigned int id;
	uint64_t rng;
	atomic_ulong ops;
	/* What the thread is doing now, for the watchdog. */
	const char *_Atomic doing;
	_Atomic bool holds_hostmm;
};

static struct {
	struct options opt;
	struct edge_mix mix;
	struct hostmm mm;
	struct ms_vm *vm;
	struct worker workers[MAX_THREADS];
	unsigned int nworkers;
	atomic_bool stop;
	atomic_ulong violations[INV_NR];
	atomic_flag reported[INV_NR];
	double t0;
	/* Every update's latency, however long the run: a histogram, not samples. */
	struct hist update_ns;
	/* The scenario's own steps. */
	atomic_int step;
	atomic_ulong device_moves; /* bar-move: the device followed the BAR */
	/* starve: invalidations open now, and how long the update waited when starved. */
	atomic_long starve_open;
	double starved_s;
} S;

static __thread uint64_t trace_gen[8];
static __thread bool trace_elided[8];
static __thread unsigned int trace_depth;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void violated(enum invariant inv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void violated(enum invariant inv, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	atomic_fetch_add(&S.violations[inv], 1);
	if (atomic_flag_test_and_set(&S.reported[inv]))
		return;
	/* One write per report: two threads' first violations land together. */
	n = snprintf(line, sizeof(line), "memslots-stress: VIOLATED after %.2f s: %s: ",
		     now_s() - S.t0, invariant_names[inv]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

/*
 * Invariant 3, through the library's trace hooks (on the calling thread).
 * The count and rwsem gates keep the memslots still from start to end, so
 * both see one generation; the fair gate lets unrelated updates land and
 * promises the same decision instead.
 */
static void trace_start(void *opaque, uint64_t s, uint64_t e, bool elided, uint64_t gen)
{
	if (trace_depth < 8) {
		trace_gen[trace_depth] = gen;
		trace_elided[trace_depth] = elided;
	}
	trace_depth++;
}

static void trace_end(void *opaque, uint64_t s, uint64_t e, bool elided, uint64_t gen)
{
	if (!trace_depth || --trace_depth >= 8)
		return;
	if (S.opt.gate == MS_GATE_FAIR ? trace_elided[trace_depth] != elided
				       : trace_gen[trace_depth] != gen)
		violated(INV_GENERATION,
			 "start saw generation %" PRIu64 " (%s), end %" PRIu64 " (%s)",
			 trace_gen[trace_depth], trace_elided[trace_depth] ? "elided" : "locked",
			 gen, elided ? "elided" : "locked");
}

static const struct ms_trace_ops trace_ops = { trace_start, trace_end };

static void check_count(void)
{
	struct ms_stats st;

	ms_vm_stats(S.vm, &st);
	if (st.mmu_invalidate_in_progress < 0 || st.in_progress_underflows)
		violated(INV_NEGATIVE,
			 "%" PRIu64 " end(s) found mmu_invalidate_in_progress at 0 (now %" PRId64 ")",
			 st.in_progress_underflows, st.mmu_invalidate_in_progress);
}

static void finish(struct worker *w)
{
	atomic_store(&w->doing, "done");
	atomic_fetch_add(&w->ops, 1);
}

/* Slot i maps host pages [i * SLOT_PAGES, (i + 1) * SLOT_PAGES). */
static uint64_t slot_gpa(unsigned int i, bool moved)
{
	return 0x100000000ull + (uint64_t)i * 0x100000 + (moved ? 0x80000 : 0);
}

static struct ms_region slot_region(unsigned int i, bool moved, uint32_t flags, bool exists)
{
	return (struct ms_region){ .slot = i,
				   .flags = flags,
				   .guest_phys_addr = slot_gpa(i, moved),
				   .memory_size = exists ? SLOT_PAGES * MS_PAGE_SIZE : 0,
				   .userspace_addr = hostmm_addr(&S.mm, i * SLOT_PAGES) };
}

/*
 * A copy of the stamped part of host page hpage, which had version before when the
 * read began.  The host reclaims a frame when its page changes, which it
 * does only after a start covering the page returned: a reclaimed stamp is
 * a frame used after that start, from the beginning of the copy (stale) or
 * from the middle (used while its page changed).
 */
static void check_read(const struct worker *w, const char *copy, unsigned int hpage,
		       uint64_t before)
{
	struct stamp_view st;

	switch (stamp_read(copy, &st)) {
	case STAMP_RECLAIMED_ALL:
		violated(INV_STALE,
			 "vcpu%u read a frame of page %u that the host had reclaimed: the page "
			 "changed after a start covering it returned",
			 w->id, hpage);
		break;
	case STAMP_RECLAIMED_PART:
		violated(INV_TORN,
			 "vcpu%u was still copying a frame of page %u when the host reclaimed "
			 "it: a start covering the page returned during the access",
			 w->id, hpage);
		break;
	case STAMP_TORN:
		violated(INV_TORN, "vcpu%u read page %u torn", w->id, hpage);
		break;
	case STAMP_OK:
		if (st.version < before)
			violated(INV_STALE,
				 "vcpu%u read version %" PRIu64 " of page %u, which had version %" PRIu64
				 " before the read",
				 w->id, st.version, hpage, before);
		break;
	}
}

/*
 * An access beyond the guest physical address width, near gpa (which the
 * vCPU has just read, so an entry that a truncated gfn would alias is
 * likely present): nothing is there, so -EFAULT and nothing else.
 */
static void access_wide(struct worker *w, struct ms_vcpu *vcpu, uint64_t gpa, uint64_t word)
{
	size_t len;
	uint64_t wide = edge_wide_gpa(gpa, &w->rng, &len), hva;
	bool write = rnd(&w->rng) & 1;
	int r;

	atomic_store(&w->doing, write ? "ms_vcpu_write beyond the guest physical address width"
				      : "ms_vcpu_read beyond the guest physical address width");
	if (write)
		r = ms_vcpu_write(vcpu, 0, wide, &word, len);
	else
		r = ms_vcpu_read(vcpu, 0, wide, &word, len);
	if (r != -EFAULT)
		violated(INV_GPA_WIDTH,
			 "vcpu%u: ms_vcpu_%s(gpa %#" PRIx64 ", %zu bytes) returned %d (%s), not "
			 "-EFAULT",
			 w->id, write ? "write" : "read", wide, len, r,
			 r ? strerror(-r) : "reached guest memory");
	r = ms_gfn_to_hva(vcpu, 0, wide >> MS_PAGE_SHIFT, false, &hva);
	if (r != -EFAULT)
		violated(INV_GPA_WIDTH, "vcpu%u: ms_gfn_to_hva(gfn %#" PRIx64 ") returned %d",
			 w->id, wide >> MS_PAGE_SHIFT, r);
}

static void *vcpu_main(void *arg)
{
	struct worker *w = arg;
	struct ms_vcpu *vcpu;
	/* Most of a page per read: long enough to be interrupted half way. */
	static __thread char copy[STAMP_COPY_SIZE];

	if (ms_vcpu_create(S.vm, &vcpu))
		return NULL;
	while (!atomic_load(&S.stop)) {
		unsigned int slot = rnd(&w->rng) % S.opt.slots, page = rnd(&w->rng) % SLOT_PAGES;
		bool moved = rnd(&w->rng) & 1;
		uint64_t gpa = slot_gpa(slot, moved) + (uint64_t)page * MS_PAGE_SIZE;
		/* Only this vCPU writes this word: the rest of the page stays the host's. */
		uint64_t mine = gpa + FRAME_WRITES_OFFSET + w->id * sizeof(uint64_t);
		unsigned int hpage = slot * SLOT_PAGES + page;
		uint64_t before = atomic_load(&S.mm.version[hpage]);

		atomic_store(
		    &w->doing,
		    "ms_vcpu_read (waits while an invalidation or update covers the page)");
		if (ms_vcpu_read(vcpu, 0, gpa, copy, sizeof(copy)) == 0) {
			check_read(w, copy, hpage, before);
			if (rnd(&w->rng) % 100 < S.mix.wide_pct)
				access_wide(w, vcpu, mine, before);
		}
		if (rnd(&w->rng) % 100 < S.mix.write_pct) {
			atomic_store(&w->doing, "ms_vcpu_write");
			ms_vcpu_write(vcpu, 0, mine, &before, sizeof(before));
		}
		atomic_store(&w->doing, "running");
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
	}
	ms_vcpu_destroy(vcpu);
	finish(w);
	return NULL;
}

/*
 * A range of host memory: inside the slots' pages, or in the pages no slot
 * maps; in bytes, which need not be page aligned.
 */
static struct hrange pick_range(struct worker *w)
{
	unsigned int mapped = S.opt.slots * SLOT_PAGES, spare = S.mm.npages - mapped;
	unsigned int first, n = 1 + rnd(&w->rng) % 3;

	if (rnd(&w->rng) % 100 < S.opt.related_pct)
		first = rnd(&w->rng) % (mapped - n + 1);
	else
		first = mapped + rnd(&w->rng) % (spare - n + 1);
	return edge_range(&S.mm, first, n, rnd(&w->rng) % 100 < S.mix.unaligned_pct, &w->rng);
}

/* Start or end of [s, e) under the host-mm lock, as the kernel's mm calls KVM. */
static int locked_call(struct worker *w, bool start, uint64_t s, uint64_t e, bool blockable)
{
	int r = 0;

	atomic_store(&w->doing, start ? "waiting for the host-mm lock, to start an invalidation"
				      : "waiting for the host-mm lock, to end its invalidation");
	hostmm_lock(&S.mm);
	atomic_store(&w->holds_hostmm, true);
	atomic_store(&w->doing,
		     start ? "in ms_invalidate_range_start" : "in ms_invalidate_range_end");
	if (start)
		r = ms_invalidate_range_start(S.vm, s, e, blockable);
	else
		ms_invalidate_range_end(S.vm, s, e);
	atomic_store(&w->holds_hostmm, false);
	hostmm_unlock(&S.mm);
	return r;
}

/* The host changes whole pages: every page the byte range touches. */
static void remap(struct worker *w, struct hrange r, int depth)
{
	bool blockable = rnd(&w->rng) % 4 != 0;
	unsigned int kind = rnd(&w->rng) % 3;

	if (locked_call(w, true, r.start, r.end, blockable))
		return; /* non-blockable and refused: nothing to end */
	check_count();
	atomic_store(&w->doing, "changing pages between start and end");
	hostmm_remap_change(&S.mm, r.first, r.n, (enum remap_kind)kind);
	if (depth == 0 && rnd(&w->rng) % 100 < S.mix.nest_pct)
		remap(w, pick_range(w), 1); /* nested, maybe overlapping */
	locked_call(w, false, r.start, r.end, true);
	check_count();
}

static void *invalidator_main(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load(&S.stop)) {
		remap(w, pick_range(w), 0);
		atomic_store(&w->doing, "running");
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
		sched_yield();
	}
	finish(w);
	return NULL;
}

static void record_update(double seconds)
{
	hist_record(&S.update_ns, (uint64_t)(seconds * 1e9));
}

static int update(struct worker *w, struct ms_region r)
{
	double t = now_s();
	int ret;

	atomic_store(&w->doing, "in ms_set_memory_region (holds slots_lock; waits on the gate)");
	ret = ms_set_memory_region(S.vm, &r);
	record_update(now_s() - t);
	atomic_store(&w->doing, "running");
	return ret;
}

/* Create, move, flip flags, delete: slots come and go over pages being remapped. */
static void *updater_main(void *arg)
{
	struct worker *w = arg;
	struct {
		bool exists, moved;
		uint32_t flags;
	} state[64] = { { false } };

	while (!atomic_load(&S.stop)) {
		unsigned int i = rnd(&w->rng) % S.opt.slots;
		unsigned int op = rnd(&w->rng) % 3;

		if (!state[i].exists) {
			state[i].exists = true;
		} else if (op == 0) {
			state[i].moved = !state[i].moved;
		} else if (op == 1) {
			state[i].flags ^= MS_MEM_LOG_DIRTY_PAGES;
		} else {
			state[i].exists = false;
		}
		if (update(w, slot_region(i, state[i].moved, state[i].flags, state[i].exists)))
			violated(INV_END_STATE, "ms_set_memory_region failed on a valid update");
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
		usleep(S.mix.update_gap_us);
	}
	finish(w);
	return NULL;
}

/*
 * The starve scenario: two threads invalidate the first slot's pages so that
 * one is open at every instant.  A thread ends its invalidation only while
 * the other's is open too (the counter goes from 2 to 1, never to 0); so the
 * count gate's update, which waits for a moment with none open, never gets
 * one, while an update that waits only for what was open when it began does.
 */
static void *starve_main(void *arg)
{
	struct worker *w = arg;
	struct hrange r = edge_range(&S.mm, 0, SLOT_PAGES, false, &w->rng);

	while (!atomic_load(&S.stop)) {
		long open;

		if (locked_call(w, true, r.start, r.end, true))
			continue;
		atomic_fetch_add(&S.starve_open, 1);
		atomic_store(&w->doing, "changing pages between start and end");
		hostmm_remap_change(&S.mm, r.first, r.n, REMAP_REPLACE);
		atomic_store(&w->doing, "holding its invalidation until the other opens one");
		do {
			open = atomic_load(&S.starve_open);
		} while (!atomic_load(&S.stop) &&
			 (open < 2 || !atomic_compare_exchange_weak(&S.starve_open, &open, open - 1)));
		if (atomic_load(&S.stop))
			atomic_fetch_sub(&S.starve_open, 1);
		locked_call(w, false, r.start, r.end, true);
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
	}
	finish(w);
	return NULL;
}

/*
 * The migrate scenario: live migration by pre-copy.  vCPUs write words into
 * the logged slots' pages (directly: no frame_ops, so the host pages are the
 * source); a migrator harvests each slot's dirty log and copies the dirty
 * pages to a destination, round after round, while invalidations and slot
 * moves (which keep the bits) and logging flips of a scratch slot go on.
 * After the vCPUs stop, a final round; then every page of every logged slot
 * must be equal at the source and the destination.
 */
static char *migrate_dest;
static _Atomic bool migrate_moved[32];

static void *migrate_vcpu_main(void *arg)
{
	struct worker *w = arg;
	struct ms_vcpu *vcpu;
	uint64_t n = 0;

	if (ms_vcpu_create(S.vm, &vcpu))
		return NULL;
	while (!atomic_load(&S.stop)) {
		unsigned int slot = rnd(&w->rng) % S.opt.slots, page = rnd(&w->rng) % SLOT_PAGES;
		uint64_t off = rnd(&w->rng) % (MS_PAGE_SIZE / 8) * 8, word = (uint64_t)w->id << 56 | ++n;
		uint64_t gpa = slot_gpa(slot, atomic_load(&migrate_moved[slot])) +
			       page * MS_PAGE_SIZE + off;

		atomic_store(&w->doing, "ms_vcpu_write into a logged slot");
		/* -EFAULT while the slot moves: the next write goes to its new place. */
		ms_vcpu_write(vcpu, 0, gpa, &word, sizeof(word));
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
	}
	ms_vcpu_destroy(vcpu);
	finish(w);
	return NULL;
}

static void migrate_copy(unsigned int hpage)
{
	memcpy(migrate_dest + (size_t)hpage * MS_PAGE_SIZE,
	       (const void *)(uintptr_t)hostmm_addr(&S.mm, hpage), MS_PAGE_SIZE);
}

/* One pre-copy round: harvest each logged slot, copy what it reports. */
static void migrate_round(void)
{
	for (unsigned int i = 0; i < S.opt.slots; i++) {
		uint64_t bits = 0;
		int r = ms_get_dirty_log(S.vm, i, &bits);

		if (!r && S.opt.manual_protect)
			r = ms_clear_dirty_log(S.vm, i, 0, SLOT_PAGES, &bits);
		if (r)
			violated(INV_MIGRATED, "harvesting slot %u failed: %s", i, strerror(-r));
		for (unsigned int p = 0; p < SLOT_PAGES; p++)
			if (bits >> p & 1)
				migrate_copy(i * SLOT_PAGES + p);
	}
}

static void *migrator_main(void *arg)
{
	struct worker *w = arg;

	/* Everything once: the bitmaps know only what changed since logging began. */
	for (unsigned int p = 0; p < S.opt.slots * SLOT_PAGES; p++)
		migrate_copy(p);
	while (!atomic_load(&S.stop)) {
		atomic_store(&w->doing, "a pre-copy round");
		migrate_round();
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
	}
	finish(w);
	return NULL;
}

/* Moves keep a slot's bits; the scratch slot past the logged ones flips logging. */
static void *migrate_updater_main(void *arg)
{
	struct worker *w = arg;
	unsigned int scratch = S.opt.slots;
	bool scratch_logged = false;

	while (!atomic_load(&S.stop)) {
		unsigned int i = rnd(&w->rng) % S.opt.slots;
		bool moved = !atomic_load(&migrate_moved[i]);
		int r;

		if (rnd(&w->rng) & 1) {
			r = update(w, slot_region(i, moved, MS_MEM_LOG_DIRTY_PAGES, true));
			atomic_store(&migrate_moved[i], moved);
		} else {
			scratch_logged = !scratch_logged;
			r = update(w, slot_region(scratch, false,
						  scratch_logged ? MS_MEM_LOG_DIRTY_PAGES : 0, true));
		}
		if (r)
			violated(INV_END_STATE, "ms_set_memory_region failed on a valid update");
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
		usleep(S.mix.update_gap_us);
	}
	finish(w);
	return NULL;
}

/* Invalidations that zap the logged slots' entries but change no byte. */
static void *migrate_invalidator_main(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load(&S.stop)) {
		struct hrange r = edge_range(&S.mm, rnd(&w->rng) % (S.opt.slots * SLOT_PAGES), 1,
					     rnd(&w->rng) & 1, &w->rng);

		if (!locked_call(w, true, r.start, r.end, true))
			locked_call(w, false, r.start, r.end, true);
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
		usleep(20);
	}
	finish(w);
	return NULL;
}

static void migrate_check(void)
{
	for (unsigned int p = 0; p < S.opt.slots * SLOT_PAGES; p++) {
		if (!memcmp(migrate_dest + (size_t)p * MS_PAGE_SIZE,
			    (const void *)(uintptr_t)hostmm_addr(&S.mm, p), MS_PAGE_SIZE))
			continue;
		violated(INV_MIGRATED,
			 "page %u of slot %u differs at the destination: a write the dirty log "
			 "never reported",
			 p % SLOT_PAGES, p / SLOT_PAGES);
		return;
	}
}

/*
 * The bar-move scenario: a device BAR (SLOT_PAGES pages, slot 0 or 1 by
 * turns) moves between two guest addresses, deleted and re-created under
 * the other slot number, while vCPUs read it where a snapshot of the map
 * says it is, a device thread serves its first page through a pfn cache,
 * and the host remaps its pages.  As transactions the BAR is always in one
 * place or the other; with --split (two separate calls) there are moments
 * when it is nowhere: the hole.
 */
static uint64_t bar_gpa(unsigned int turn)
{
	return slot_gpa(0, turn & 1);
}

static struct ms_region bar_region(unsigned int turn, bool exists)
{
	struct ms_region r = slot_region(0, turn & 1, 0, exists);

	r.slot = turn & 1;
	r.guest_phys_addr = bar_gpa(turn);
	return r;
}

static void *bar_updater_main(void *arg)
{
	struct worker *w = arg;

	for (unsigned int turn = 0; !atomic_load(&S.stop); turn++) {
		struct ms_region txn[] = { bar_region(turn, false), bar_region(turn + 1, true) };
		int r;

		atomic_store(&w->doing, "moving the BAR");
		if (S.opt.split) {
			r = ms_set_memory_region(S.vm, &txn[0]);
			if (!r)
				r = ms_set_memory_region(S.vm, &txn[1]);
		} else {
			r = ms_set_memory_regions(S.vm, txn, 2, NULL);
		}
		if (r)
			violated(INV_END_STATE, "moving the BAR failed: %s", strerror(-r));
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
		usleep(S.mix.update_gap_us);
	}
	finish(w);
	return NULL;
}

static void *bar_vcpu_main(void *arg)
{
	struct worker *w = arg;
	static __thread char copy[STAMP_COPY_SIZE];
	struct ms_vcpu *vcpu;

	if (ms_vcpu_create(S.vm, &vcpu))
		return NULL;
	while (!atomic_load(&S.stop)) {
		unsigned int page = rnd(&w->rng) % SLOT_PAGES;
		struct ms_region map[2];
		uint64_t before;
		size_t n;

		atomic_store(&w->doing, "reading the BAR where the map says it is");
		if (ms_get_memory_map(S.vm, 0, map, 2, &n) || n != 1) {
			violated(INV_HOLE, "vcpu%u found %zu BARs in the map", w->id, n);
			continue;
		}
		before = atomic_load(&S.mm.version[page]);
		/* -EFAULT: it moved since the snapshot; the next round looks again. */
		if (!ms_vcpu_read(vcpu, 0, map[0].guest_phys_addr + page * MS_PAGE_SIZE, copy,
				  sizeof(copy)))
			check_read(w, copy, page, before);
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
	}
	ms_vcpu_destroy(vcpu);
	finish(w);
	return NULL;
}

/* Use the cache once: its page must not change while the read lock is held. */
static void device_use(struct worker *w, struct ms_pfn_cache *gpc)
{
	static __thread char copy[STAMP_COPY_SIZE];
	struct stamp_view st;
	uint64_t before, after;
	char *p;

	ms_pfn_cache_read_lock(gpc);
	p = ms_pfn_cache_check(gpc);
	if (p) {
		before = atomic_load(&S.mm.version[0]);
		memcpy(copy, p, sizeof(copy));
		after = atomic_load(&S.mm.version[0]);
		if (before != after || stamp_read(copy, &st) != STAMP_OK || st.version != before)
			violated(INV_CACHE,
				 "device: page 0 went from version %" PRIu64 " to %" PRIu64
				 " while its pfn cache was in use",
				 before, after);
	}
	ms_pfn_cache_read_unlock(gpc, false);
	if (!p && ms_pfn_cache_refresh(gpc) == -EFAULT) {
		struct ms_region map[2];
		size_t n;

		/* The BAR moved: follow it. */
		if (!ms_get_memory_map(S.vm, 0, map, 2, &n) && n == 1)
			ms_pfn_cache_activate(gpc, 0, map[0].guest_phys_addr, 64);
		atomic_fetch_add_explicit(&S.device_moves, 1, memory_order_relaxed);
	}
}

static void *device_main(void *arg)
{
	struct worker *w = arg;
	struct ms_pfn_cache *gpc;

	if (ms_pfn_cache_create(S.vm, &gpc))
		return NULL;
	ms_pfn_cache_activate(gpc, 0, bar_gpa(0), 64);
	while (!atomic_load(&S.stop)) {
		atomic_store(&w->doing, "serving the BAR through a pfn cache");
		device_use(w, gpc);
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
	}
	ms_pfn_cache_destroy(gpc);
	finish(w);
	return NULL;
}

/* The host remaps the BAR's pages, as in the default workload. */
static void *bar_invalidator_main(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load(&S.stop)) {
		remap(w, edge_range(&S.mm, rnd(&w->rng) % SLOT_PAGES, 1, false, &w->rng), 1);
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
		usleep(50);
	}
	finish(w);
	return NULL;
}

/*
 * Preempt random vCPUs for 50 to 500 us wherever they are: sometimes half
 * way through copying a frame, so that zaps wait for them and other starts
 * on the same pages run meanwhile.  Spawned after the vCPUs, joined first.
 */
static void *dawdler_main(void *arg)
{
	struct worker *w = arg;
	unsigned int gap = S.mix.dawdle_gap_us;

	while (!atomic_load(&S.stop)) {
		struct worker *v = &S.workers[rnd(&w->rng) % S.opt.vcpus];

		atomic_store(&w->doing, "poking a vCPU");
		dawdle_poke(v->thread, 50 + rnd(&w->rng) % 451);
		atomic_store(&w->doing, "running");
		atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
		usleep(gap / 2 + rnd(&w->rng) % gap);
	}
	finish(w);
	return NULL;
}

static struct worker *spawn(enum role role, void *(*fn)(void *))
{
	struct worker *w = &S.workers[S.nworkers];

	w->role = role;
	w->id = S.nworkers++;
	w->rng = S.opt.seed * 2654435761u + w->id + 1;
	atomic_store(&w->doing, "starting");
	pthread_create(&w->thread, NULL, fn, w);
	return w;
}

static void wait_step(int step)
{
	while (atomic_load(&S.step) < step)
		usleep(100);
}

/*
 * The rwsem deadlock of Linux commit 52ac8b358b0c, forced.  A opens an invalidation of page 0; the
 * updater then waits on the gate; B takes the host-mm lock and starts on
 * page 1 (the rwsem queues it behind the waiting writer, the host-mm lock
 * still held); A's end needs the host-mm lock.  The count gate never makes
 * B wait, so everyone finishes.
 */
static void *rwsem_a_main(void *arg)
{
	struct worker *w = arg;

	locked_call(w, true, hostmm_addr(&S.mm, 0), hostmm_addr(&S.mm, 1), true);
	atomic_store(&S.step, 1);
	wait_step(3);
	locked_call(w, false, hostmm_addr(&S.mm, 0), hostmm_addr(&S.mm, 1), true);
	finish(w);
	return NULL;
}

static void *rwsem_b_main(void *arg)
{
	struct worker *w = arg;

	wait_step(2);
	hostmm_lock(&S.mm);
	atomic_store(&w->holds_hostmm, true);
	atomic_store(&S.step, 3);
	atomic_store(&w->doing, "in ms_invalidate_range_start");
	ms_invalidate_range_start(S.vm, hostmm_addr(&S.mm, 1), hostmm_addr(&S.mm, 2), true);
	atomic_store(&w->holds_hostmm, false);
	hostmm_unlock(&S.mm);
	locked_call(w, false, hostmm_addr(&S.mm, 1), hostmm_addr(&S.mm, 2), true);
	finish(w);
	return NULL;
}

static void *rwsem_updater_main(void *arg)
{
	struct worker *w = arg;

	wait_step(1);
	update(w, slot_region(1, true, 0, true));
	finish(w);
	return NULL;
}

/*
 * The imbalance, forced: an invalidation of a page no slot maps starts
 * (elided), a slot over that page is created, the invalidation ends.  Without
 * a gate the end takes mmu_lock and lowers a count the start never raised.
 */
static void *imbalance_a_main(void *arg)
{
	struct worker *w = arg;
	unsigned int page = S.opt.slots * SLOT_PAGES;
	uint64_t s = hostmm_addr(&S.mm, page), e = hostmm_addr(&S.mm, page + 1);

	locked_call(w, true, s, e, true);
	check_count();
	atomic_store(&S.step, 1);
	wait_step(2);
	locked_call(w, false, s, e, true);
	check_count();
	finish(w);
	return NULL;
}

static void *imbalance_updater_main(void *arg)
{
	struct worker *w = arg;
	unsigned int id = S.opt.slots, page = S.opt.slots * SLOT_PAGES;
	struct ms_region r = { .slot = id,
			       .guest_phys_addr = 0x200000000ull,
			       .memory_size = MS_PAGE_SIZE,
			       .userspace_addr = hostmm_addr(&S.mm, page) };

	wait_step(1);
	update(w, r);
	finish(w);
	return NULL;
}

static void wait_for_gate_waiter_then(int step, const struct worker *updater)
{
	struct ms_stats st;

	for (;;) {
		ms_vm_stats(S.vm, &st);
		if (st.gate_waiters || !strcmp(atomic_load(&updater->doing), "done"))
			break;
		usleep(100);
	}
	atomic_store(&S.step, step);
}


static void hang_report(void)
{
	struct ms_stats st;

	ms_vm_stats(S.vm, &st);
	fprintf(stderr, "\nmemslots-stress: HANG: no progress for %.1f s (gate %s)\n",
		S.opt.watchdog, cli_gate_name(S.opt.gate));
	for (unsigned int i = 0; i < S.nworkers; i++) {
		struct worker *w = &S.workers[i];

		fprintf(stderr, "  %-11s %u: %s%s\n", role_names[w->role], w->id,
			atomic_load(&w->doing),
			atomic_load(&w->holds_hostmm) ? " [holds the host-mm lock]" : "");
	}
	if (S.opt.gate == MS_GATE_RWSEM)
		fprintf(stderr,
			"  mn_slots_rwsem: held for read by %" PRId64
			" invalidation(s), %u writer(s) waiting\n",
			st.mn_active_invalidate_count, st.gate_waiters);
	else
		fprintf(stderr, "  gate: %" PRId64 " invalidation(s) open, %u update(s) waiting\n",
			st.mn_active_invalidate_count, st.gate_waiters);
	if (ms_lockdep_validating())
		ms_lockdep_show_all_locks(stderr);
	fflush(stderr);
}

static void report(const struct ms_stats *st, double elapsed, int code, bool hung);

/*
 * A hang that follows a violated invariant (the missing gate's) is that
 * violation's.  The hung threads cannot be joined, so the report (and the
 * JSON document a program waits for) is printed from here, then _exit.
 */
static _Noreturn void hang_exit(void)
{
	bool violated_before = false;
	struct ms_stats st;
	int code;

	hang_report();
	for (int i = 0; i < INV_NR; i++)
		violated_before |= atomic_load(&S.violations[i]) != 0;
	if (violated_before)
		fprintf(stderr, "memslots-stress: the hang follows a violated invariant\n");
	code = violated_before ? EXIT_VIOLATED : EXIT_HANG;
	ms_vm_stats(S.vm, &st);
	report(&st, now_s() - S.t0, code, true);
	fflush(stdout);
	_exit(code);
}

static unsigned long role_ops(enum role r)
{
	unsigned long n = 0;

	for (unsigned int i = 0; i < S.nworkers; i++)
		if (S.workers[i].role == r)
			n += atomic_load(&S.workers[i].ops);
	return n;
}

static bool role_active(enum role r)
{
	for (unsigned int i = 0; i < S.nworkers; i++)
		if (S.workers[i].role == r && strcmp(atomic_load(&S.workers[i].doing), "done"))
			return true;
	return false;
}

#define WATCH_TICK_S 0.02

/*
 * Runs on the main thread until the run ends; _exit on a hang.  Progress is
 * timed on a clock of the time the process ran, not wall time: each tick
 * adds what it measured but at most two ticks, so a SIGSTOP (or a loaded
 * machine that leaves us off the CPU) counts as one tick and is no hang,
 * while a real hang, whose ticks keep coming, still adds up to --watchdog.
 * --duration stays wall time, what a caller's own timeout counts in.
 */
static void watch(bool timed)
{
	unsigned long last[ROLE_NR] = { 0 };
	double since[ROLE_NR] = { 0 }, ran = 0, prev = now_s(), next_line = 0;
	bool tty = isatty(STDERR_FILENO) && !S.opt.json;

	for (;;) {
		double t = now_s(), step = t - prev;
		bool any = false;

		prev = t;
		ran += step < 2 * WATCH_TICK_S ? step : 2 * WATCH_TICK_S;
		if (timed && t - S.t0 >= S.opt.duration)
			return;
		/* starve: an update held past the bound while invalidations keep flowing. */
		if (!strcmp(S.opt.scenario, "starve") && role_active(ROLE_UPDATER) &&
		    ran - since[ROLE_UPDATER] > S.opt.starve_bound) {
			S.starved_s = ran - since[ROLE_UPDATER];
			return;
		}
		for (int r = 0; r < ROLE_NR; r++) {
			unsigned long ops = role_ops(r);

			if (!role_active(r) || ops != last[r]) {
				last[r] = ops;
				since[r] = ran;
			}
			any |= role_active(r);
			if (ran - since[r] > S.opt.watchdog)
				hang_exit();
		}
		if (!timed && !any)
			return;

		if (tty && t >= next_line) {
			fprintf(stderr,
				"\r[%s] %5.1fs  vcpu %lu  invalidator %lu  updater %lu ops  ",
				cli_gate_name(S.opt.gate), t - S.t0, last[0], last[1], last[2]);
			next_line = t + 0.5;
		}
		usleep(WATCH_TICK_S * 1e6);
	}
}

static void end_checks(void)
{
	struct ms_stats st;

	ms_vm_stats(S.vm, &st);
	if (st.mmu_invalidate_in_progress || st.mn_active_invalidate_count)
		violated(INV_END_STATE,
			 "after the run: mmu_invalidate_in_progress %" PRId64
			 ", open invalidations %" PRId64,
			 st.mmu_invalidate_in_progress, st.mn_active_invalidate_count);
}

/* The result word of docs/tools.md for an exit code; "starved" is reserved. */
static const char *result_name(int code)
{
	return code == 0		? "clean"
	       : code == EXIT_HANG	? "hang"
	       : code == EXIT_STARVED ? "starved"
				      : "violated";
}

/* An invariant's --json key: its own, or one made from its name. */
static void print_invariant_key(int i)
{
	const char *k = invariant_keys[i] ? invariant_keys[i] : invariant_names[i];
	bool sep = false;

	putchar('"');
	for (; *k; k++) {
		if ((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9')) {
			if (sep)
				putchar('_');
			putchar(*k);
			sep = false;
		} else {
			sep = !invariant_keys[i] || *k == '_';
		}
	}
	putchar('"');
}

static const double report_pcts[] = { 50, 90, 99, 99.9 };
static const char *const report_pct_keys[] = { "p50", "p90", "p99", "p99_9" };

static void print_json(const struct ms_stats *st, double elapsed, int code, bool hung)
{
	const struct options *o = &S.opt;
	bool timed = strcmp(o->scenario, "rwsem-deadlock") && strcmp(o->scenario, "imbalance");
	uint64_t v;

	printf("{\"schema\":\"memslots-stress/1\",\"version\":\"%s\",\"result\":\"%s\","
	       "\"exit_code\":%d,\n",
	       MS_VERSION_STRING, result_name(code), code);
	printf(" \"options\":{\"gate\":\"%s\",\"scenario\":", cli_gate_name(o->gate));
	cli_json_string(stdout, o->scenario);
	if (timed)
		printf(",\"duration_s\":%g", o->duration);
	else
		printf(",\"duration_s\":null");
	printf(",\"watchdog_s\":%g,\"seed\":%" PRIu64 ",\"vcpus\":%u,\"invalidators\":%u,"
	       "\"slots\":%u,\"related_pct\":%u,\"elision\":%s,\"lockdep\":%s},\n",
	       o->watchdog, o->seed, o->vcpus, o->invalidators, o->slots, o->related_pct,
	       o->no_elision ? "false" : "true", o->lockdep ? "true" : "false");
	printf(" \"elapsed_s\":%.3f,\"end_checks_run\":%s,\"hang\":", elapsed,
	       hung ? "false" : "true");
	if (hung) {
		/* What the text mode's watchdog report says, for a program to read. */
		printf("{\"no_progress_s\":%g,\"threads\":[", o->watchdog);
		for (unsigned int i = 0; i < S.nworkers; i++) {
			struct worker *w = &S.workers[i];

			printf("%s{\"role\":\"%s\",\"id\":%u,\"doing\":", i ? "," : "",
			       role_names[w->role], w->id);
			cli_json_string(stdout, atomic_load(&w->doing));
			printf(",\"holds_hostmm_lock\":%s}",
			       atomic_load(&w->holds_hostmm) ? "true" : "false");
		}
		printf("]},\n");
	} else {
		printf("null,\n");
	}
	printf(" \"roles\":{");
	for (int r = 0; r < ROLE_NR; r++) {
		unsigned int threads = 0;

		for (unsigned int i = 0; i < S.nworkers; i++)
			threads += S.workers[i].role == (enum role)r;
		printf("%s\"%s\":{\"threads\":%u,\"ops\":%lu,\"ops_per_s\":%.1f}", r ? "," : "",
		       role_names[r], threads, role_ops(r),
		       elapsed > 0 ? role_ops(r) / elapsed : 0);
	}
	printf("},\n \"invalidations\":{\"started\":%" PRIu64 ",\"elided\":%" PRIu64
	       ",\"refused\":%" PRIu64 "},\n",
	       st->invalidations_started, st->invalidation_starts_elided,
	       st->invalidations_refused);
	printf(" \"faults\":%" PRIu64 ",\"fault_retries\":%" PRIu64 ",\"entries_zapped\":%" PRIu64
	       ",\n",
	       st->faults, st->fault_retries, st->entries_zapped);
	printf(" \"update_latency_ns\":{\"count\":%" PRIu64, hist_count(&S.update_ns));
	if (hist_count(&S.update_ns))
		printf(",\"min\":%" PRIu64, hist_min(&S.update_ns));
	else
		printf(",\"min\":null");
	for (size_t i = 0; i < sizeof(report_pcts) / sizeof(report_pcts[0]); i++)
		if (hist_percentile(&S.update_ns, report_pcts[i], &v))
			printf(",\"%s\":%" PRIu64, report_pct_keys[i], v);
		else
			printf(",\"%s\":null", report_pct_keys[i]);
	if (hist_count(&S.update_ns))
		printf(",\"max\":%" PRIu64 "},\n", hist_max(&S.update_ns));
	else
		printf(",\"max\":null},\n");
	if (o->lockdep)
		printf(" \"lockdep_reports\":%lu,\n", ms_lockdep_reports());
	else
		printf(" \"lockdep_reports\":null,\n");
	printf(" \"invariants\":{");
	for (int i = 0; i < INV_NR; i++) {
		printf("%s", i ? ",\n  " : "\n  ");
		print_invariant_key(i);
		printf(":{\"description\":");
		cli_json_string(stdout, invariant_names[i]);
		printf(",\"violations\":%lu}", atomic_load(&S.violations[i]));
	}
	printf("}}\n");
}

/* One value of the text report's latency line: microseconds, or n/a. */
static void print_pct_us(const char *label, double pct, const char *sep)
{
	uint64_t v;

	if (hist_percentile(&S.update_ns, pct, &v))
		printf("%s %.1f us%s", label, v / 1e3, sep);
	else
		printf("%s n/a%s", label, sep);
}

static void report(const struct ms_stats *st, double elapsed, int code, bool hung)
{
	double elided = st->invalidations_started
			    ? 100.0 * st->invalidation_starts_elided / st->invalidations_started
			    : 0;

	if (S.opt.json) {
		print_json(st, elapsed, code, hung);
		return;
	}
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
	printf("memslots-stress: gate %s, scenario %s, %.1f s\n", cli_gate_name(S.opt.gate),
	       S.opt.scenario, elapsed);
	printf("  %-12s %12s %12s\n", "role", "ops", "ops/s");
	for (int r = 0; r < ROLE_NR; r++)
		printf("  %-12s %12lu %12.0f\n", role_names[r], role_ops(r), role_ops(r) / elapsed);
	printf("  invalidations %" PRIu64 ", elided %.1f%%, refused (non-blockable) %" PRIu64 "\n",
	       st->invalidations_started, elided, st->invalidations_refused);
	printf("  faults %" PRIu64 ", fault retries %" PRIu64 ", entries zapped %" PRIu64 "\n",
	       st->faults, st->fault_retries, st->entries_zapped);
	printf("  update latency ");
	print_pct_us("p50", 50, ", ");
	print_pct_us("p99", 99, ", ");
	print_pct_us("p99.9", 99.9, ", ");
	print_pct_us("max", 100, " ");
	printf("(%" PRIu64 " updates)\n", hist_count(&S.update_ns));
	if (S.opt.lockdep)
		printf("  lock validator: %lu report(s)\n", ms_lockdep_reports());
	for (int i = 0; i < INV_NR; i++) {
		unsigned long v = atomic_load(&S.violations[i]);

		if (v)
			printf("  invariant %-50s violated x%lu\n", invariant_names[i], v);
		else
			printf("  invariant %-50s held%s\n", invariant_names[i],
			       hung ? " so far (hung: no end checks)" : "");
	}
	printf("  result: %s\n", result_name(code));
}

static _Noreturn void usage(int code)
{
	FILE *out = code ? stderr : stdout;

	fprintf(out,
		"usage: memslots-stress [options]\n"
		"  --gate NAME               count | rwsem | none | fair (default fair, as the\n"
		"                            library)\n"
		"  --scenario NAME           default | edges | starve | migrate | bar-move |\n"
		"                            rwsem-deadlock | imbalance\n"
		"  --duration SECONDS        length of the default and edges scenarios (default\n"
		"                            10); the forced scenarios run to their end and\n"
		"                            refuse it\n"
		"  --seed N                  seed of the random choices (default 1)\n"
		"  --vcpus N                 vCPU threads (default 2, max 6)\n"
		"  --invalidators N          invalidating threads (default 2, max 6)\n"
		"  --slots N                 memslots the updater plays with (default 8, edges 2;\n"
		"                            max 32)\n"
		"  --related PERCENT         invalidations that touch slot pages (default 50,\n"
		"                            edges 90)\n"
		"  --no-elision              take mmu_lock for every invalidation\n"
		"  --watchdog SECONDS        no progress for this long (time the process ran,\n"
		"                            not stopped time) is a hang (default 5)\n"
		"  --manual-protect          migrate: harvest with manual protect (get, then clear)\n"
		"  --split                   bar-move: move with two calls, not a transaction\n"
		"  --starve-bound SECONDS    starve: an update waiting longer is starved,\n"
		"                            exit 4 (default 2; keep it below --watchdog)\n"
		"  --lockdep                 run the lock validator\n"
		"  --json                    one JSON document (docs/tools.md), also on a hang\n"
		"                            or a violated invariant\n"
		"  --version                 print the version\n"
		"  -h, --help                this text\n"
		"exit: 0 every invariant held, 1 an invariant violated, 2 bad usage, 3 hang\n");
	exit(code);
}

/*
 * The default workload keeps a share of each edge, so that every run looks
 * at them; edges crowds two invalidators, the updater and the vCPUs onto
 * two slots' pages, so that zaps of the same entries overlap, and makes
 * most of the work edges.
 */
static void choose_mix(void)
{
	/* starve: the updater works on the one slot whose pages are never free. */
	if (!strcmp(S.opt.scenario, "starve") && !S.opt.slots_given)
		S.opt.slots = 1;
	if (strcmp(S.opt.scenario, "edges")) {
		S.mix = (struct edge_mix){ .unaligned_pct = 20,
					   .wide_pct = 2,
					   .write_pct = 25,
					   .nest_pct = 12,
					   .dawdle_gap_us = 2000,
					   .update_gap_us = 200 };
		return;
	}
	S.mix = (struct edge_mix){ .unaligned_pct = 50,
				   .wide_pct = 5,
				   .write_pct = 50,
				   .nest_pct = 25,
				   .dawdle_gap_us = 200,
				   .update_gap_us = 50 };
	if (!S.opt.slots_given)
		S.opt.slots = 2;
	if (!S.opt.related_given)
		S.opt.related_pct = 90;
}

static void parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "gate", required_argument, NULL, 'g' },
		{ "scenario", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 'S' },
		{ "vcpus", required_argument, NULL, 'v' },
		{ "invalidators", required_argument, NULL, 'i' },
		{ "slots", required_argument, NULL, 'n' },
		{ "related", required_argument, NULL, 'r' },
		{ "no-elision", no_argument, NULL, 'E' },
		{ "watchdog", required_argument, NULL, 'w' },
		{ "starve-bound", required_argument, NULL, 'B' },
		{ "manual-protect", no_argument, NULL, 'M' },
		{ "split", no_argument, NULL, 'X' },
		{ "lockdep", no_argument, NULL, 'L' },
		{ "json", no_argument, NULL, 'j' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	cli_init("memslots-stress");
	S.opt = (struct options){ .gate = MS_GATE_FAIR,
				  .scenario = "default",
				  .duration = 10,
				  .watchdog = 5,
				  .starve_bound = 2,
				  .seed = 1,
				  .vcpus = 2,
				  .invalidators = 2,
				  .slots = 8,
				  .related_pct = 50 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'g':
			S.opt.gate = cli_gate(optarg);
			break;
		case 's':
			if (strcmp(optarg, "default") && strcmp(optarg, "edges") &&
			    strcmp(optarg, "rwsem-deadlock") && strcmp(optarg, "imbalance") &&
			    strcmp(optarg, "starve") && strcmp(optarg, "migrate") &&
			    strcmp(optarg, "bar-move"))
				cli_bad_value("scenario", optarg,
					      "default, edges, starve, migrate, bar-move, "
					      "rwsem-deadlock or imbalance");
			S.opt.scenario = optarg;
			break;
		case 'd':
			S.opt.duration = cli_seconds("duration", optarg, 0.01, 86400);
			S.opt.duration_set = true;
			break;
		case 'S':
			S.opt.seed = cli_uint("seed", optarg, 0, UINT64_MAX);
			break;
		case 'v':
			S.opt.vcpus = cli_uint("vcpus", optarg, 0, 6);
			break;
		case 'i':
			S.opt.invalidators = cli_uint("invalidators", optarg, 0, 6);
			break;
		case 'n':
			S.opt.slots = cli_uint("slots", optarg, 1, 32);
			S.opt.slots_given = true;
			break;
		case 'r':
			S.opt.related_pct = cli_uint("related", optarg, 0, 100);
			S.opt.related_given = true;
			break;
		case 'E':
			S.opt.no_elision = true;
			break;
		case 'w':
			S.opt.watchdog = cli_seconds("watchdog", optarg, 0.1, 3600);
			break;
		case 'B':
			S.opt.starve_bound = cli_seconds("starve-bound", optarg, 0.01, 3600);
			break;
		case 'M':
			S.opt.manual_protect = true;
			break;
		case 'X':
			S.opt.split = true;
			break;
		case 'L':
			S.opt.lockdep = true;
			break;
		case 'j':
			S.opt.json = true;
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
	/* The forced scenarios run their steps to the end; a length would be a lie. */
	if (S.opt.duration_set && strcmp(S.opt.scenario, "default") &&
	    strcmp(S.opt.scenario, "edges") && strcmp(S.opt.scenario, "starve") &&
	    strcmp(S.opt.scenario, "migrate") && strcmp(S.opt.scenario, "bar-move"))
		cli_refuse("--duration: scenario %s runs to its end and takes no duration",
			   S.opt.scenario);
	choose_mix();
}

/* From the host mm's put_frame: see hostmm.h. */
static void frame_held(unsigned int page, uint64_t frame_version, uint64_t page_version)
{
	violated(INV_HELD,
		 "a frame of page %u (version %" PRIu64 ") that a vCPU wrote was put after the "
		 "page changed (version %" PRIu64 "): the library held it past a start "
		 "covering the page that had returned",
		 page, frame_version, page_version);
}

static void setup(void)
{
	struct ms_config cfg;
	int r;

	if (hostmm_init(&S.mm, S.opt.slots * SLOT_PAGES + 16)) {
		fprintf(stderr, "memslots-stress: out of memory\n");
		exit(EXIT_USAGE);
	}
	ms_config_init(&cfg);
	cfg.address_spaces = 1;
	cfg.gate = S.opt.gate;
	cfg.no_elision = S.opt.no_elision;
	cfg.lockdep = S.opt.lockdep;
	/* migrate: vCPUs write the host pages themselves, the migration's source. */
	if (strcmp(S.opt.scenario, "migrate")) {
		cfg.frame_ops = &hostmm_frame_ops;
		cfg.frame_opaque = &S.mm;
	}
	cfg.manual_dirty_log_protect = S.opt.manual_protect;
	cfg.trace_ops = &trace_ops;
	r = ms_vm_create(&cfg, &S.vm);
	if (r) {
		fprintf(stderr, "memslots-stress: ms_vm_create: %s\n", strerror(-r));
		exit(EXIT_USAGE);
	}
	S.mm.vm = S.vm;
	S.mm.frame_held = frame_held;
	dawdle_setup();
	hist_init(&S.update_ns);
}

static void run_migrate(void)
{
	migrate_dest = calloc((size_t)S.opt.slots * SLOT_PAGES, MS_PAGE_SIZE);
	if (!migrate_dest) {
		fprintf(stderr, "memslots-stress: out of memory\n");
		exit(EXIT_USAGE);
	}
	for (unsigned int i = 0; i < S.opt.slots; i++)
		if (update(&(struct worker){ 0 }, slot_region(i, false, MS_MEM_LOG_DIRTY_PAGES, true)))
			violated(INV_END_STATE, "creating logged slot %u failed", i);
	for (unsigned int i = 0; i < S.opt.vcpus; i++)
		spawn(ROLE_VCPU, migrate_vcpu_main);
	for (unsigned int i = 0; i < S.opt.invalidators; i++)
		spawn(ROLE_INVALIDATOR, migrate_invalidator_main);
	spawn(ROLE_UPDATER, migrate_updater_main);
	spawn(ROLE_MIGRATOR, migrator_main);
	watch(true);
	atomic_store(&S.stop, true);
	watch(false);
	for (unsigned int i = S.nworkers; i-- > 0;)
		pthread_join(S.workers[i].thread, NULL);
	migrate_round(); /* the vCPUs have stopped: the last round */
	migrate_check();
	free(migrate_dest);
}

static void run_scenario(void)
{
	if (!strcmp(S.opt.scenario, "rwsem-deadlock")) {
		struct worker *u;

		update(&(struct worker){ 0 }, slot_region(0, false, 0, true));
		spawn(ROLE_INVALIDATOR, rwsem_a_main);
		spawn(ROLE_INVALIDATOR, rwsem_b_main);
		u = spawn(ROLE_UPDATER, rwsem_updater_main);
		wait_step(1);
		wait_for_gate_waiter_then(2, u);
		watch(false);
	} else if (!strcmp(S.opt.scenario, "imbalance")) {
		struct worker *u;

		spawn(ROLE_INVALIDATOR, imbalance_a_main);
		u = spawn(ROLE_UPDATER, imbalance_updater_main);
		wait_step(1);
		wait_for_gate_waiter_then(2, u);
		watch(false);
	} else if (!strcmp(S.opt.scenario, "migrate")) {
		run_migrate(); /* joins its threads before its last round */
		return;
	} else if (!strcmp(S.opt.scenario, "bar-move")) {
		update(&(struct worker){ 0 }, bar_region(0, true));
		for (unsigned int i = 0; i < S.opt.vcpus; i++)
			spawn(ROLE_VCPU, bar_vcpu_main);
		spawn(ROLE_INVALIDATOR, bar_invalidator_main);
		spawn(ROLE_DEVICE, device_main);
		spawn(ROLE_UPDATER, bar_updater_main);
		watch(true);
		atomic_store(&S.stop, true);
		watch(false);
	} else if (!strcmp(S.opt.scenario, "starve")) {
		for (unsigned int i = 0; i < S.opt.vcpus; i++)
			spawn(ROLE_VCPU, vcpu_main);
		spawn(ROLE_INVALIDATOR, starve_main);
		spawn(ROLE_INVALIDATOR, starve_main);
		spawn(ROLE_UPDATER, updater_main);
		watch(true);
		atomic_store(&S.stop, true);
		watch(false);
	} else {
		/* vCPUs first: the dawdler picks them by index. */
		for (unsigned int i = 0; i < S.opt.vcpus; i++)
			spawn(ROLE_VCPU, vcpu_main);
		for (unsigned int i = 0; i < S.opt.invalidators; i++)
			spawn(ROLE_INVALIDATOR, invalidator_main);
		spawn(ROLE_UPDATER, updater_main);
		if (S.opt.vcpus && S.mix.dawdle_gap_us)
			spawn(ROLE_DAWDLER, dawdler_main);
		watch(true);
		atomic_store(&S.stop, true);
		watch(false); /* a thread that cannot stop is hung too */
	}
	/* Last spawned first: the dawdler must not poke a vCPU already joined. */
	for (unsigned int i = S.nworkers; i-- > 0;)
		pthread_join(S.workers[i].thread, NULL);
}

int main(int argc, char **argv)
{
	struct ms_stats st;
	double elapsed;
	int result;

	parse_options(argc, argv);
	setup();
	S.t0 = now_s();
	run_scenario();
	elapsed = now_s() - S.t0;
	end_checks();
	ms_vm_stats(S.vm, &st);
	ms_vm_destroy(S.vm);
	if (atomic_load(&S.mm.frames_got) != atomic_load(&S.mm.frames_put) ||
	    atomic_load(&S.mm.bad_puts))
		violated(INV_FRAMES, "%lu frames got, %lu put, %lu bad puts",
			 atomic_load(&S.mm.frames_got), atomic_load(&S.mm.frames_put),
			 atomic_load(&S.mm.bad_puts));
	result = 0;
	if (S.starved_s > 0) {
		fprintf(stderr,
			"memslots-stress: STARVED: an update waited over %.1f s on the gate "
			"(bound %g s) while invalidations of its pages were open at every instant\n",
			S.starved_s, S.opt.starve_bound);
		result = EXIT_STARVED;
	}
	for (int i = 0; i < INV_NR; i++)
		if (atomic_load(&S.violations[i]))
			result = EXIT_VIOLATED;
	report(&st, elapsed, result, false);
	hostmm_destroy(&S.mm);
	ms_lockdep_thread_exit();
	return result;
}
