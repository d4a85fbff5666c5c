/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Concurrency, with the interleavings forced where the claim is about one:
 * (a) readers racing slot moves, deletes and re-creates see the old or the
 *     new mapping, never a mix and never freed memory (run it under ASan);
 * (b) after start returns, a concurrent fault into the range installs
 *     nothing until the end;
 * (c) with MS_GATE_COUNT an update issued between a start and its end is
 *     not published before the end, while other starts and ends go on; with
 *     MS_GATE_RWSEM a start behind the waiting update blocks;
 * (e) under vCPUs, invalidations and updates at once, no entry of a range is
 *     present once its start returned, and every frame got is put once;
 * (g) a start does not wait for a fault blocked in get_frame on a lock the
 *     invalidating thread holds (the embedder's host-mm lock).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../common/frames.h"
#include "../common/internal.h"
#include "../common/testutil.h"

static struct ms_vm *vm_new(enum ms_gate gate, struct test_frames *frames)
{
	struct ms_config cfg;
	struct ms_vm *vm;

	ms_config_init(&cfg);
	cfg.gate = gate;
	if (frames) {
		pthread_mutex_init(&frames->lock, NULL);
		cfg.frame_ops = &test_frame_ops;
		cfg.frame_opaque = frames;
	}
	assert_int_equal(ms_vm_create(&cfg, &vm), 0);
	return vm;
}

static void set_region(struct ms_vm *vm, unsigned int id, uint64_t gpa, uint64_t size,
		       const void *hva)
{
	struct ms_region r = test_region(0, id, gpa, size, hva, 0);

	assert_int_equal(ms_set_memory_region(vm, &r), 0);
}

/* (a) */

#define GPA_A 0x100000
#define GPA_B 0x200000

struct reader {
	pthread_t thread;
	struct ms_vm *vm;
	const char *h1, *h2;
	atomic_bool *stop;
	atomic_ulong seen_h1, seen_h2;
	unsigned long faults, mixed;
};

static void check_bytes(struct reader *rd, const unsigned char *buf, size_t len)
{
	bool all1 = true, all2 = true;

	for (size_t i = 0; i < len; i++) {
		all1 &= buf[i] == 0x11;
		all2 &= buf[i] == 0x22;
	}
	rd->seen_h1 += all1;
	rd->seen_h2 += all2;
	rd->mixed += !all1 && !all2;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct ms_vcpu *vcpu;
	unsigned char buf[256];
	uint64_t hva;

	assert_int_equal(ms_vcpu_create(rd->vm, &vcpu), 0);
	while (!atomic_load(rd->stop)) {
		uint64_t gpa = (rd->seen_h1 + rd->faults) & 1 ? GPA_A : GPA_B;

		if (ms_vcpu_read(vcpu, 0, gpa + 64, buf, sizeof(buf)) == 0)
			check_bytes(rd, buf, sizeof(buf));
		else
			rd->faults++;
		if (ms_gfn_to_hva(vcpu, 0, gpa >> MS_PAGE_SHIFT, false, &hva) == 0)
			rd->mixed += hva != (uintptr_t)rd->h1 && hva != (uintptr_t)rd->h2;
	}
	ms_vcpu_destroy(vcpu);
	return NULL;
}

static void test_readers_see_old_or_new(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, NULL);
	char *h1 = test_host_alloc(1), *h2 = test_host_alloc(1);
	struct reader rd[2];
	atomic_bool stop = false;
	unsigned long h1_seen = 0, h2_seen = 0;

	memset(h1, 0x11, MS_PAGE_SIZE);
	memset(h2, 0x22, MS_PAGE_SIZE);
	for (int i = 0; i < 2; i++) {
		rd[i] = (struct reader){ .vm = vm, .h1 = h1, .h2 = h2, .stop = &stop };
		pthread_create(&rd[i].thread, NULL, reader_main, &rd[i]);
	}
	/* At least 2000 rounds, and on until both mappings were read. */
	for (int i = 0; i < 2000 || !atomic_load(&rd[0].seen_h1) || !atomic_load(&rd[0].seen_h2);
	     i++) {
		const char *h = i & 1 ? h2 : h1;

		if (i == 1000000)
			break;

		set_region(vm, 0, GPA_A, MS_PAGE_SIZE, h); /* create */
		set_region(vm, 0, GPA_B, MS_PAGE_SIZE, h); /* move */
		set_region(vm, 0, GPA_A, MS_PAGE_SIZE, h); /* move back */
		set_region(vm, 0, GPA_A, 0, h);		   /* delete */
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++) {
		pthread_join(rd[i].thread, NULL);
		assert_int_equal(rd[i].mixed, 0);
		h1_seen += rd[i].seen_h1;
		h2_seen += rd[i].seen_h2;
	}
	/* The race was really run: both mappings were seen. */
	assert_true(h1_seen > 0 && h2_seen > 0);
	ms_vm_destroy(vm);
	test_host_free(h1, 1);
	test_host_free(h2, 1);
}

/* (b) */

static void test_fault_waits_for_end(void **state)
{
	struct test_frames frames = { 0 };
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, &frames);
	char *h = test_host_alloc(2);
	uint64_t s = (uintptr_t)h, e = s + MS_PAGE_SIZE;
	struct test_reader t = { .vm = vm, .gpa = GPA_A };
	uint64_t retries;

	set_region(vm, 0, GPA_A, 2 * MS_PAGE_SIZE, h);
	assert_int_equal(ms_invalidate_range_start(vm, s, e, true), 0);
	retries = test_stats(vm).fault_retries;
	pthread_create(&t.thread, NULL, test_reader_main, &t);
	/* The vCPU has faulted and been turned back at least twice. */
	assert_true(test_wait_until(test_stats(vm).fault_retries >= retries + 2));
	assert_false(atomic_load(&t.done));
	assert_int_equal(test_stats(vm).entries_present, 0);
	assert_false(test_spte_present(vm, 0, GPA_A >> MS_PAGE_SHIFT));
	ms_invalidate_range_end(vm, s, e);
	pthread_join(t.thread, NULL);
	assert_int_equal(t.result, 0);
	assert_int_equal(test_stats(vm).entries_present, 1);
	ms_vm_destroy(vm);
	assert_int_equal(frames.got, frames.put);
	test_host_free(h, 2);
}

/* (c) */

struct update_thread {
	pthread_t thread;
	struct ms_vm *vm;
	struct ms_region region;
	int result;
	atomic_bool done;
};

static void *update_main(void *arg)
{
	struct update_thread *u = arg;

	u->result = ms_set_memory_region(u->vm, &u->region);
	atomic_store(&u->done, true);
	return NULL;
}

static void *start_main(void *arg)
{
	struct test_reader *t = arg;

	t->result = ms_invalidate_range_start(t->vm, t->gpa, t->gpa + MS_PAGE_SIZE, true);
	atomic_store(&t->done, true);
	return NULL;
}

static void test_count_gate_holds_update(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, NULL);
	char *h = test_host_alloc(4);
	uint64_t s = (uintptr_t)h, gen;
	struct update_thread u = { .vm = vm };

	set_region(vm, 0, GPA_A, MS_PAGE_SIZE, h);
	u.region = test_region(0, 1, GPA_B, MS_PAGE_SIZE, h + 2 * MS_PAGE_SIZE, 0);
	gen = test_stats(vm).generation;
	assert_int_equal(ms_invalidate_range_start(vm, s, s + MS_PAGE_SIZE, true), 0);
	pthread_create(&u.thread, NULL, update_main, &u);
	assert_true(test_wait_until(test_stats(vm).gate_waiters == 1));
	/* Starts and ends go on, related or not, while the update waits. */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(ms_invalidate_range_start(vm, s, s + MS_PAGE_SIZE, true), 0);
		assert_int_equal(ms_invalidate_range_start(vm, 0x1000, 0x2000, false), 0);
		ms_invalidate_range_end(vm, 0x1000, 0x2000);
		ms_invalidate_range_end(vm, s, s + MS_PAGE_SIZE);
	}
	assert_false(atomic_load(&u.done));
	assert_int_equal(test_stats(vm).generation, gen);
	ms_invalidate_range_end(vm, s, s + MS_PAGE_SIZE);
	pthread_join(u.thread, NULL);
	assert_int_equal(u.result, 0);
	assert_int_equal(test_stats(vm).generation, gen + 1);
	assert_true(test_stats(vm).gate_wait_ns_max > 0);
	ms_vm_destroy(vm);
	test_host_free(h, 4);
}

static void test_rwsem_gate_blocks_start(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_RWSEM, NULL);
	char *h = test_host_alloc(4);
	uint64_t s = (uintptr_t)h;
	struct update_thread u = { .vm = vm };
	struct test_reader t = { .vm = vm, .gpa = 0x1000 };

	set_region(vm, 0, GPA_A, MS_PAGE_SIZE, h);
	u.region = test_region(0, 1, GPA_B, MS_PAGE_SIZE, h + 2 * MS_PAGE_SIZE, 0);
	assert_int_equal(ms_invalidate_range_start(vm, s, s + MS_PAGE_SIZE, true), 0);
	pthread_create(&u.thread, NULL, update_main, &u);
	assert_true(test_wait_until(test_stats(vm).gate_waiters == 1));
	pthread_create(&t.thread, NULL, start_main, &t);
	/* Fairness: the new start queues behind the waiting writer. */
	nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	assert_false(atomic_load(&t.done));
	assert_int_equal(test_stats(vm).mn_active_invalidate_count, 1);
	ms_invalidate_range_end(vm, s, s + MS_PAGE_SIZE);
	pthread_join(u.thread, NULL);
	pthread_join(t.thread, NULL);
	assert_int_equal(t.result, 0);
	ms_invalidate_range_end(vm, 0x1000, 0x2000);
	ms_vm_destroy(vm);
	test_host_free(h, 4);
}

/* (e) */

#define MIX_PAGES 16

struct mix {
	struct ms_vm *vm;
	struct test_frames *frames;
	char *host;
	atomic_bool stop;
	atomic_ulong live_after_start, starts, vcpu_ops;
};

struct mix_vcpu {
	struct mix *m;
	unsigned int id;
};

static uint64_t mix_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Each vCPU keeps to its own half of every page: guests that race on the
 * same bytes are racy by their own doing, not the library's. */
static void *mix_vcpu(void *arg)
{
	struct mix_vcpu *v = arg;
	struct ms_vcpu *vcpu;
	uint64_t x = v->id + 2463534242ull;
	char buf[16];

	assert_int_equal(ms_vcpu_create(v->m->vm, &vcpu), 0);
	while (!atomic_load(&v->m->stop)) {
		uint64_t page = mix_rand(&x) % MIX_PAGES;
		uint64_t offset =
		    v->id * MS_PAGE_SIZE / 2 + mix_rand(&x) % (MS_PAGE_SIZE / 2 - sizeof(buf));
		uint64_t gpa = GPA_A + page * MS_PAGE_SIZE + offset;

		if (x & 2)
			ms_vcpu_write(vcpu, 0, gpa, "0123456789abcdef", sizeof(buf));
		else
			ms_vcpu_read(vcpu, 0, gpa, buf, sizeof(buf));
		atomic_fetch_add_explicit(&v->m->vcpu_ops, 1, memory_order_relaxed);
	}
	ms_vcpu_destroy(vcpu);
	return NULL;
}

/* Is an entry present for host pages [first, last) wherever they are mapped? */
static bool mix_entries_in(struct mix *m, uint64_t first, uint64_t last)
{
	const uint64_t half = MIX_PAGES / 2,
		       bases[] = { GPA_A >> MS_PAGE_SHIFT, GPA_B >> MS_PAGE_SHIFT };
	bool found = false;

	for (uint64_t page = first; page < last && page < MIX_PAGES; page++) {
		found |= test_spte_present(m->vm, 0, bases[0] + page);
		if (page >= half)
			found |= test_spte_present(m->vm, 0, bases[1] + page - half);
	}
	return found;
}

static void *mix_invalidator(void *arg)
{
	struct mix *m = arg;
	uint64_t x = 88172645463325252ull;

	while (!atomic_load(&m->stop)) {
		uint64_t first = mix_rand(&x) % MIX_PAGES, n = 1 + mix_rand(&x) % 3;
		uint64_t s = (uintptr_t)m->host + first * MS_PAGE_SIZE, e = s + n * MS_PAGE_SIZE;

		if (ms_invalidate_range_start(m->vm, s, e, x & 1))
			continue; /* non-blockable and refused */
		atomic_fetch_add(&m->starts, 1);
		if (mix_entries_in(m, first, first + n))
			atomic_fetch_add(&m->live_after_start, 1);
		ms_invalidate_range_end(m->vm, s, e);
	}
	return NULL;
}

static void test_frames_under_load(void **state)
{
	struct test_frames *frames = calloc(1, sizeof(*frames));
	struct mix m = { .frames = frames };
	struct mix_vcpu vcpus[2] = { { &m, 0 }, { &m, 1 } };
	pthread_t threads[3];

	m.vm = vm_new(MS_GATE_COUNT, frames);
	m.host = test_host_alloc(MIX_PAGES);
	set_region(m.vm, 0, GPA_A, MIX_PAGES / 2 * MS_PAGE_SIZE, m.host);
	pthread_create(&threads[0], NULL, mix_vcpu, &vcpus[0]);
	pthread_create(&threads[1], NULL, mix_vcpu, &vcpus[1]);
	pthread_create(&threads[2], NULL, mix_invalidator, &m);
	/* At least 300 rounds, and on until the other threads have run too. */
	for (int i = 0; i < 300 || atomic_load(&m.starts) < 100 || atomic_load(&m.vcpu_ops) < 100;
	     i++) {
		char *half = m.host + MIX_PAGES / 2 * MS_PAGE_SIZE;

		if (i == 1000000)
			break;
		set_region(m.vm, 1, GPA_A + MIX_PAGES / 2 * MS_PAGE_SIZE,
			   MIX_PAGES / 2 * MS_PAGE_SIZE, half);
		set_region(m.vm, 1, GPA_B, MIX_PAGES / 2 * MS_PAGE_SIZE, half);
		set_region(m.vm, 1, 0, 0, half);
	}
	atomic_store(&m.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(threads[i], NULL);
	assert_true(atomic_load(&m.starts) >= 100);
	assert_true(atomic_load(&m.vcpu_ops) >= 100);
	assert_int_equal(atomic_load(&m.live_after_start), 0);
	ms_vm_destroy(m.vm);
	assert_true(frames->got > 0);
	assert_true(test_frames_balanced(frames));
	test_host_free(m.host, MIX_PAGES);
	free(frames);
}

/* (g) */

struct blocking_frames {
	pthread_mutex_t host_mm_lock;
	atomic_bool in_get_frame;
};

static int blocking_get_frame(void *opaque, uint64_t hva, bool write, void **frame)
{
	struct blocking_frames *bf = opaque;

	atomic_store(&bf->in_get_frame, true);
	pthread_mutex_lock(&bf->host_mm_lock);
	pthread_mutex_unlock(&bf->host_mm_lock);
	*frame = (void *)(uintptr_t)hva;
	return 0;
}

static void blocking_put_frame(void *opaque, void *frame, bool used)
{
}

static void test_start_does_not_wait_for_get_frame(void **state)
{
	static const struct ms_frame_ops ops = { blocking_get_frame, blocking_put_frame };
	struct blocking_frames bf = { .in_get_frame = false };
	struct test_reader t = { .gpa = GPA_A + MS_PAGE_SIZE };
	char *h = test_host_alloc(2);
	uint64_t s = (uintptr_t)h;
	struct ms_vcpu *vcpu;
	struct ms_config cfg;
	char c;

	pthread_mutex_init(&bf.host_mm_lock, NULL);
	ms_config_init(&cfg);
	cfg.frame_ops = &ops;
	cfg.frame_opaque = &bf;
	assert_int_equal(ms_vm_create(&cfg, &t.vm), 0);
	set_region(t.vm, 0, GPA_A, 2 * MS_PAGE_SIZE, h);
	assert_int_equal(ms_vcpu_create(t.vm, &vcpu), 0);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA_A, &c, 1), 0); /* an entry to zap */

	pthread_mutex_lock(&bf.host_mm_lock);
	atomic_store(&bf.in_get_frame, false);
	pthread_create(&t.thread, NULL, test_reader_main, &t);
	assert_true(test_wait_until(atomic_load(&bf.in_get_frame)));
	/* Zapping page 0 waits for vCPUs using entries, not for that fault. */
	assert_int_equal(ms_invalidate_range_start(t.vm, s, s + MS_PAGE_SIZE, true), 0);
	assert_int_equal(test_stats(t.vm).entries_zapped, 1);
	ms_invalidate_range_end(t.vm, s, s + MS_PAGE_SIZE);
	pthread_mutex_unlock(&bf.host_mm_lock);
	pthread_join(t.thread, NULL);
	assert_int_equal(t.result, 0);
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(t.vm);
	test_host_free(h, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readers_see_old_or_new),
		cmocka_unit_test(test_fault_waits_for_end),
		cmocka_unit_test(test_count_gate_holds_update),
		cmocka_unit_test(test_rwsem_gate_blocks_start),
		cmocka_unit_test(test_frames_under_load),
		cmocka_unit_test(test_start_does_not_wait_for_get_frame),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
