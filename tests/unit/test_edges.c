/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The promise at its edges: after a start returns 0 no vCPU uses a frame of
 * the range until the end, also when the range is not page aligned, when
 * another zapper already cleared the entry and is still waiting for a vCPU
 * held inside its access, and for gpas past the guest's physical width.
 * Also the index at the top of the key space, misuse that must be reported
 * instead of hanging (an end without a start, a start or an update on the
 * thread that holds an open invalidation), the non-blockable rwsem start,
 * and a child of fork().
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "../common/frames.h"
#include "../common/internal.h"
#include "../common/testutil.h"

#define GPA 0x100000ull

/*
 * Poll for about 200 ms: long enough for a wrong outcome that needs only
 * microseconds to show, while a right one (a thread that must stay blocked)
 * does not depend on it.
 */
#define wait_briefly(cond)                                                \
	({                                                                \
		int __tries = 0;                                          \
		while (!(cond) && __tries++ < 2000)                       \
			nanosleep(&(struct timespec){ 0, 100000 }, NULL); \
	})

static struct ms_vm *vm_new(enum ms_gate gate, const struct ms_frame_ops *ops, void *opaque)
{
	struct ms_config cfg;
	struct ms_vm *vm;

	assert_int_equal(ms_config_init(&cfg), 0);
	cfg.gate = gate;
	cfg.frame_ops = ops;
	cfg.frame_opaque = opaque;
	assert_int_equal(ms_vm_create(&cfg, &vm), 0);
	return vm;
}

static void set_region(struct ms_vm *vm, unsigned int id, uint64_t gpa, uint64_t size,
		       const void *hva)
{
	struct ms_region r = test_region(0, id, gpa, size, hva, 0);

	assert_int_equal(ms_set_memory_region(vm, &r), 0);
}

/* A fault into a page that an open invalidation touches by one byte retries. */
static void fault_waits_for(uint64_t start, uint64_t end, uint64_t gpa)
{
	struct test_frames frames = { 0 };
	struct ms_vm *vm;
	char *h = test_host_alloc(4);
	struct test_reader t = { .gpa = gpa };
	uint64_t s = (uintptr_t)h, retries;

	pthread_mutex_init(&frames.lock, NULL);
	vm = vm_new(MS_GATE_COUNT, &test_frame_ops, &frames);
	t.vm = vm;
	set_region(vm, 0, GPA, 4 * MS_PAGE_SIZE, h);
	assert_int_equal(ms_invalidate_range_start(vm, s + start, s + end, true), 0);
	retries = test_stats(vm).fault_retries;
	pthread_create(&t.thread, NULL, test_reader_main, &t);
	wait_briefly(test_stats(vm).fault_retries >= retries + 2 || atomic_load(&t.done));
	assert_false(atomic_load(&t.done));
	assert_false(test_spte_present(vm, 0, gpa >> MS_PAGE_SHIFT));
	ms_invalidate_range_end(vm, s + start, s + end);
	pthread_join(t.thread, NULL);
	assert_int_equal(t.result, 0);
	ms_vm_destroy(vm);
	assert_true(test_frames_balanced(&frames));
	test_host_free(h, 4);
}

static void test_unaligned_range_holds_fault(void **state)
{
	fault_waits_for(100, 200, GPA);
	fault_waits_for(MS_PAGE_SIZE - 1, MS_PAGE_SIZE, GPA);
	fault_waits_for(2 * MS_PAGE_SIZE + 4000, 3 * MS_PAGE_SIZE + 10, GPA + 2 * MS_PAGE_SIZE);
	fault_waits_for(2 * MS_PAGE_SIZE + 4000, 3 * MS_PAGE_SIZE + 10, GPA + 3 * MS_PAGE_SIZE);
}

/*
 * Trapping frames: get_frame hands out a private copy in its own mapping,
 * which the test can make inaccessible; a vCPU that touches it then waits
 * in the SIGSEGV handler, inside its access, until the test lets it go.
 */
static struct {
	char *armed; /* the frame that traps */
	atomic_bool trapped, release;
	atomic_ulong got, put;
	atomic_bool put_armed;			/* the trapped frame was put */
	atomic_bool block_puts, blocked_in_put; /* hold the next put until cleared */
} trap;

static void trap_handler(int sig, siginfo_t *si, void *uc)
{
	char *addr = si->si_addr;

	if (!trap.armed || addr < trap.armed || addr >= trap.armed + MS_PAGE_SIZE)
		abort();
	atomic_store(&trap.trapped, true);
	while (!atomic_load(&trap.release))
		sched_yield();
	mprotect(trap.armed, MS_PAGE_SIZE, PROT_READ | PROT_WRITE);
}

static int trap_get_frame(void *opaque, uint64_t hva, bool write, void **frame)
{
	char *page = test_host_alloc(1);

	if (!page)
		return -ENOMEM;
	memcpy(page, (void *)(uintptr_t)hva, MS_PAGE_SIZE);
	atomic_fetch_add(&trap.got, 1);
	*frame = page;
	return 0;
}

static void trap_put_frame(void *opaque, void *frame, bool used)
{
	while (atomic_load(&trap.block_puts)) {
		atomic_store(&trap.blocked_in_put, true);
		sched_yield();
	}
	if (frame == trap.armed)
		atomic_store(&trap.put_armed, true);
	atomic_fetch_add(&trap.put, 1);
	test_host_free(frame, 1);
}

static const struct ms_frame_ops trap_frame_ops = { trap_get_frame, trap_put_frame };

struct zapper {
	pthread_t thread;
	struct ms_vm *vm;
	uint64_t start, end;
	struct ms_region delete; /* memory_size 0: delete instead of invalidating */
	int result;
	bool put_armed_before_return;
	atomic_bool done;
};

static void *zapper_main(void *arg)
{
	struct zapper *z = arg;

	if (z->delete.slot || z->delete.userspace_addr)
		z->result = ms_set_memory_region(z->vm, &z->delete);
	else
		z->result = ms_invalidate_range_start(z->vm, z->start, z->end, true);
	z->put_armed_before_return = atomic_load(&trap.put_armed);
	atomic_store(&z->done, true);
	return NULL;
}

/*
 * A vCPU is held inside its read of the page's frame; a first zapper clears
 * the entry and waits for it; a second start of the same page has nothing
 * left to zap, and must still not return before the frame is put.
 */
static void second_start_waits(bool first_is_delete)
{
	char *h = test_host_alloc(2);
	uint64_t s = (uintptr_t)h;
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, &trap_frame_ops, NULL);
	struct test_reader vcpu_thread = { .vm = vm, .gpa = GPA };
	struct zapper z1 = { .vm = vm, .start = s + 8, .end = s + 16 };
	struct zapper z2 = { .vm = vm, .start = s, .end = s + MS_PAGE_SIZE };
	struct sigaction sa = { .sa_sigaction = trap_handler, .sa_flags = SA_SIGINFO };
	struct ms_vcpu *vcpu;
	uintptr_t spte;
	char c;

	memset(&trap, 0, sizeof(trap));
	sigaction(SIGSEGV, &sa, NULL);
	set_region(vm, 0, GPA, MS_PAGE_SIZE, h);
	if (first_is_delete)
		z1.delete = test_region(0, 0, GPA, 0, h, 0);
	assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA, &c, 1), 0);
	ms_spte_read_lock(vm);
	spte = ms_spte_lookup(&vm->mmu, 0, GPA >> MS_PAGE_SHIFT);
	ms_spte_read_unlock(vm);
	trap.armed = (char *)(spte & ~MS_SPTE_WRITABLE);
	assert_int_equal(mprotect(trap.armed, MS_PAGE_SIZE, PROT_NONE), 0);

	pthread_create(&vcpu_thread.thread, NULL, test_reader_main, &vcpu_thread);
	assert_true(test_wait_until(atomic_load(&trap.trapped)));
	pthread_create(&z1.thread, NULL, zapper_main, &z1);
	assert_true(test_wait_until(!test_spte_present(vm, 0, GPA >> MS_PAGE_SHIFT)));
	assert_false(atomic_load(&z1.done));

	pthread_create(&z2.thread, NULL, zapper_main, &z2);
	wait_briefly(atomic_load(&z2.done));
	assert_false(atomic_load(&z2.done));
	assert_false(atomic_load(&trap.put_armed));

	atomic_store(&trap.release, true);
	pthread_join(vcpu_thread.thread, NULL);
	pthread_join(z2.thread, NULL);
	assert_int_equal(z2.result, 0);
	assert_true(z2.put_armed_before_return);
	ms_invalidate_range_end(vm, z2.start, z2.end);
	pthread_join(z1.thread, NULL);
	assert_int_equal(z1.result, 0);
	if (!first_is_delete)
		ms_invalidate_range_end(vm, z1.start, z1.end);
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
	assert_int_equal(atomic_load(&trap.got), atomic_load(&trap.put));
	signal(SIGSEGV, SIG_DFL);
	test_host_free(h, 2);
}

static void test_second_start_waits_for_invalidation_zap(void **state)
{
	second_start_waits(false);
}

static void test_second_start_waits_for_delete_zap(void **state)
{
	second_start_waits(true);
}

static uintptr_t frame_of(struct ms_vm *vm, uint64_t gpa)
{
	uintptr_t spte;

	ms_spte_read_lock(vm);
	spte = ms_spte_lookup(&vm->mmu, 0, gpa >> MS_PAGE_SHIFT);
	ms_spte_read_unlock(vm);
	return spte & ~MS_SPTE_WRITABLE;
}

/*
 * A zapper that is still putting its first batch when a second zapper
 * clears an entry of its range must wait for that entry's batch too: its
 * next walk finds the entry gone.  A full batch is 256 entries, so the
 * range has one page more; the vCPU is held inside that last page's frame.
 */
static void test_start_waits_for_zap_begun_during_its_puts(void **state)
{
	enum { N = MS_ZAP_BATCH + 1 };
	char *h = test_host_alloc(N);
	uint64_t s = (uintptr_t)h, last = GPA + (N - 1) * MS_PAGE_SIZE;
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, &trap_frame_ops, NULL);
	struct test_reader vcpu_thread = { .vm = vm, .gpa = last };
	struct zapper a = { .vm = vm, .start = s, .end = s + N * MS_PAGE_SIZE };
	struct zapper b = { .vm = vm, .start = s + (N - 1) * MS_PAGE_SIZE, .end = a.end };
	struct sigaction sa = { .sa_sigaction = trap_handler, .sa_flags = SA_SIGINFO };
	struct ms_vcpu *vcpu;
	char c;

	memset(&trap, 0, sizeof(trap));
	sigaction(SIGSEGV, &sa, NULL);
	set_region(vm, 0, GPA, N * MS_PAGE_SIZE, h);
	assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(ms_vcpu_read(vcpu, 0, GPA + i * MS_PAGE_SIZE, &c, 1), 0);
	atomic_store(&trap.block_puts, true);
	pthread_create(&a.thread, NULL, zapper_main, &a);
	assert_true(test_wait_until(atomic_load(&trap.blocked_in_put)));

	trap.armed = (char *)frame_of(vm, last);
	assert_int_equal(mprotect(trap.armed, MS_PAGE_SIZE, PROT_NONE), 0);
	pthread_create(&vcpu_thread.thread, NULL, test_reader_main, &vcpu_thread);
	assert_true(test_wait_until(atomic_load(&trap.trapped)));
	pthread_create(&b.thread, NULL, zapper_main, &b);
	assert_true(test_wait_until(!test_spte_present(vm, 0, last >> MS_PAGE_SHIFT)));

	atomic_store(&trap.block_puts, false);
	wait_briefly(atomic_load(&a.done));
	assert_false(atomic_load(&a.done));
	assert_false(atomic_load(&b.done));

	atomic_store(&trap.release, true);
	pthread_join(vcpu_thread.thread, NULL);
	pthread_join(a.thread, NULL);
	pthread_join(b.thread, NULL);
	assert_true(a.put_armed_before_return);
	assert_true(b.put_armed_before_return);
	ms_invalidate_range_end(vm, b.start, b.end);
	ms_invalidate_range_end(vm, a.start, a.end);
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
	assert_int_equal(atomic_load(&trap.got), atomic_load(&trap.put));
	signal(SIGSEGV, SIG_DFL);
	test_host_free(h, N);
}

/* gpas at and past 2^52 never reach guest memory, even with an entry below. */
static void test_gpa_beyond_width(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, NULL, NULL);
	char *h = test_host_alloc(1);
	static const uint64_t far[] = { 1ull << 52, (1ull << 52) + GPA, (1ull << 63) + GPA,
					UINT64_MAX - MS_PAGE_SIZE + 1 + (GPA & 0xfff), UINT64_MAX };
	struct ms_vcpu *vcpu;
	uint64_t hva;
	char buf[8] = "written";

	memset(h, 0x5a, MS_PAGE_SIZE);
	set_region(vm, 0, GPA, MS_PAGE_SIZE, h);
	set_region(vm, 1, 0, MS_PAGE_SIZE, h);
	assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA, buf, 1), 0);
	assert_int_equal(ms_vcpu_read(vcpu, 0, 0, buf, 1), 0);
	for (size_t i = 0; i < sizeof(far) / sizeof(far[0]); i++) {
		assert_int_equal(ms_vcpu_read(vcpu, 0, far[i], buf, 1), -EFAULT);
		assert_int_equal(ms_vcpu_write(vcpu, 0, far[i], "x", 1), -EFAULT);
		assert_int_equal(ms_gfn_to_hva(vcpu, 0, far[i] >> MS_PAGE_SHIFT, false, &hva),
				 -EFAULT);
	}
	/* The last byte below 2^52 is inside the width but in no slot. */
	assert_int_equal(ms_vcpu_read(vcpu, 0, (1ull << 52) - 1, buf, 1), -EFAULT);
	assert_int_equal(ms_vcpu_read(vcpu, 0, (1ull << 52) - 1, buf, 2), -EFAULT);
	for (unsigned int i = 0; i < MS_PAGE_SIZE; i++)
		assert_int_equal(h[i], 0x5a);
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
	test_host_free(h, 1);
}

/* A narrower configured width: slots and accesses past it are refused. */
static void test_configured_width(void **state)
{
	struct ms_config cfg;
	struct ms_vm *vm;
	struct ms_vcpu *vcpu;
	char *h = test_host_alloc(1);
	struct ms_region r = test_region(0, 0, 1ull << 36, MS_PAGE_SIZE, h, 0);
	char c;

	assert_int_equal(ms_config_init(&cfg), 0);
	assert_int_equal(cfg.guest_phys_bits, 52);
	cfg.guest_phys_bits = 11;
	assert_int_equal(ms_vm_create(&cfg, &vm), -EINVAL);
	cfg.guest_phys_bits = 53;
	assert_int_equal(ms_vm_create(&cfg, &vm), -EINVAL);
	cfg.guest_phys_bits = 36;
	assert_int_equal(ms_vm_create(&cfg, &vm), 0);
	assert_int_equal(ms_set_memory_region(vm, &r), -EINVAL);
	r.guest_phys_addr = (1ull << 36) - MS_PAGE_SIZE;
	assert_int_equal(ms_set_memory_region(vm, &r), 0);
	assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
	assert_int_equal(ms_vcpu_read(vcpu, 0, r.guest_phys_addr, &c, 1), 0);
	assert_int_equal(ms_vcpu_read(vcpu, 0, r.guest_phys_addr + MS_PAGE_SIZE, &c, 1), -EFAULT);
	assert_int_equal(ms_vcpu_read(vcpu, 0, r.guest_phys_addr + (1ull << 36), &c, 1), -EFAULT);
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
	test_host_free(h, 1);
}

/* Past one index node's worth of slots, lookups at the top of the key space. */
static void test_lookup_at_key_space_edges(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, NULL, NULL);
	char *h = test_host_alloc(64);
	static const uint64_t gfns[] = { 1ull << 40, (1ull << 40) - 1, 1ull << 52, UINT64_MAX - 1,
					 UINT64_MAX };
	struct ms_vcpu *vcpu;
	uint64_t hva;

	for (unsigned int i = 0; i < 64; i++)
		set_region(vm, i, GPA + i * 2 * MS_PAGE_SIZE, MS_PAGE_SIZE, h + i * MS_PAGE_SIZE);
	assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
	for (size_t i = 0; i < sizeof(gfns) / sizeof(gfns[0]); i++)
		assert_int_equal(ms_gfn_to_hva(vcpu, 0, gfns[i], false, &hva), -EFAULT);
	assert_int_equal(ms_gfn_to_hva(vcpu, 0, (GPA >> MS_PAGE_SHIFT) + 126, false, &hva), 0);
	assert_int_equal(hva, (uintptr_t)h + 63 * MS_PAGE_SIZE);
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
	test_host_free(h, 64);
}

/* An end without its start changes no count and is reported, under every gate. */
static void test_unmatched_end(void **state)
{
	static const enum ms_gate gates[] = { MS_GATE_COUNT, MS_GATE_RWSEM, MS_GATE_NONE };

	for (size_t i = 0; i < sizeof(gates) / sizeof(gates[0]); i++) {
		struct ms_vm *vm = vm_new(gates[i], NULL, NULL);
		char *h = test_host_alloc(2);
		uint64_t s = (uintptr_t)h;
		struct ms_stats st;
		char c;
		struct ms_vcpu *vcpu;

		set_region(vm, 0, GPA, MS_PAGE_SIZE, h);
		ms_invalidate_range_end(vm, s, s + MS_PAGE_SIZE);
		ms_invalidate_range_end(vm, s + MS_PAGE_SIZE, s + 2 * MS_PAGE_SIZE);
		st = test_stats(vm);
		assert_int_equal(st.unmatched_ends, 2);
		assert_int_equal(st.mmu_invalidate_in_progress, 0);
		assert_int_equal(st.mn_active_invalidate_count, 0);
		assert_int_equal(st.invalidations_ended, 0);
		/* Nothing hangs afterwards: an update and an access go through. */
		set_region(vm, 1, 2 * GPA, MS_PAGE_SIZE, h + MS_PAGE_SIZE);
		assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
		assert_int_equal(ms_vcpu_read(vcpu, 0, GPA, &c, 1), 0);
		ms_vcpu_destroy(vcpu);
		ms_vm_destroy(vm);
		test_host_free(h, 2);
	}
}

/* What would wait for the calling thread's own open invalidation fails instead. */
static void test_own_invalidation_deadlock(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, NULL, NULL);
	char *h = test_host_alloc(4);
	uint64_t s = (uintptr_t)h;
	struct ms_region r = test_region(0, 1, 2 * GPA, MS_PAGE_SIZE, h + 3 * MS_PAGE_SIZE, 0);
	struct ms_vcpu *vcpu;
	char c;

	set_region(vm, 0, GPA, 2 * MS_PAGE_SIZE, h);
	assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
	assert_int_equal(ms_invalidate_range_start(vm, s + 10, s + 20, true), 0);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA, &c, 1), -EDEADLK);
	assert_int_equal(ms_vcpu_write(vcpu, 0, GPA + 5, "x", 1), -EDEADLK);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA + MS_PAGE_SIZE, &c, 1), 0);
	assert_int_equal(ms_set_memory_region(vm, &r), -EDEADLK);
	assert_int_equal(test_stats(vm).memslot_updates, 1);
	ms_invalidate_range_end(vm, s + 10, s + 20);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA, &c, 1), 0);
	assert_int_equal(ms_set_memory_region(vm, &r), 0);
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
	test_host_free(h, 4);
}

/*
 * KVM would hold a page between this thread's open invalidation and one it
 * already ended (the in-progress union lasts until all end); here only open
 * invalidations of the page itself hold a fault: those pages are readable,
 * and the page this thread invalidates fails instead of hanging.
 */
static void test_own_invalidation_union(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, NULL, NULL);
	char *h = test_host_alloc(16);
	uint64_t s = (uintptr_t)h;
	struct ms_vcpu *vcpu;
	char c;

	set_region(vm, 0, GPA, 16 * MS_PAGE_SIZE, h);
	assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
	assert_int_equal(ms_invalidate_range_start(vm, s, s + MS_PAGE_SIZE, true), 0);
	assert_int_equal(
	    ms_invalidate_range_start(vm, s + 10 * MS_PAGE_SIZE, s + 11 * MS_PAGE_SIZE, true), 0);
	/* Between two open invalidations, in their union: no wait here. */
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA + 5 * MS_PAGE_SIZE, &c, 1), 0);
	ms_invalidate_range_end(vm, s + 10 * MS_PAGE_SIZE, s + 11 * MS_PAGE_SIZE);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA + 10 * MS_PAGE_SIZE, &c, 1), 0);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA + 5 * MS_PAGE_SIZE, &c, 1), 0);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA + 12 * MS_PAGE_SIZE, &c, 1), 0);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA, &c, 1), -EDEADLK);
	ms_invalidate_range_end(vm, s, s + MS_PAGE_SIZE);
	assert_int_equal(ms_vcpu_read(vcpu, 0, GPA + 5 * MS_PAGE_SIZE, &c, 1), 0);
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
	test_host_free(h, 16);
}

struct end_thread {
	pthread_t thread;
	struct ms_vm *vm;
	uint64_t start, end;
};

static void *end_main(void *arg)
{
	struct end_thread *t = arg;

	ms_invalidate_range_end(t->vm, t->start, t->end);
	return NULL;
}

/* An end on another thread closes the start's record: nothing stays "held". */
static void test_end_on_another_thread(void **state)
{
	static const enum ms_gate gates[] = { MS_GATE_COUNT, MS_GATE_RWSEM, MS_GATE_FAIR };

	for (size_t i = 0; i < sizeof(gates) / sizeof(gates[0]); i++) {
		struct ms_vm *vm = vm_new(gates[i], NULL, NULL);
		char *h = test_host_alloc(4);
		uint64_t s = (uintptr_t)h;
		struct end_thread t = { .vm = vm, .start = s, .end = s + MS_PAGE_SIZE };
		struct ms_region r =
		    test_region(0, 1, 2 * GPA, MS_PAGE_SIZE, h + 2 * MS_PAGE_SIZE, 0);
		struct ms_vcpu *vcpu;
		char c;

		set_region(vm, 0, GPA, MS_PAGE_SIZE, h);
		assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
		assert_int_equal(ms_invalidate_range_start(vm, t.start, t.end, true), 0);
		pthread_create(&t.thread, NULL, end_main, &t);
		pthread_join(t.thread, NULL);
		assert_int_equal(test_stats(vm).mn_active_invalidate_count, 0);
		assert_int_equal(test_stats(vm).mmu_invalidate_in_progress, 0);
		assert_int_equal(test_stats(vm).unmatched_ends, 0);
		assert_int_equal(ms_set_memory_region(vm, &r), 0);
		assert_int_equal(ms_vcpu_read(vcpu, 0, GPA, &c, 1), 0);
		ms_vcpu_destroy(vcpu);
		ms_vm_destroy(vm);
		test_host_free(h, 4);
	}
}

/* A thread that runs one call for a test, its result and whether it returned. */
struct helper_thread {
	pthread_t thread;
	struct ms_vm *vm;
	uint64_t start;
	int result;
	atomic_bool done;
};

/* Starts an invalidation of its page and returns (the thread may exit with it open). */
static void *open_and_exit_main(void *arg)
{
	struct helper_thread *t = arg;

	t->result = ms_invalidate_range_start(t->vm, t->start, t->start + MS_PAGE_SIZE, true);
	return NULL;
}

static void *access_main(void *arg)
{
	struct helper_thread *t = arg;
	struct ms_vcpu *vcpu;
	char c;

	t->result = ms_vcpu_create(t->vm, &vcpu);
	if (!t->result) {
		t->result = ms_vcpu_read(vcpu, 0, GPA, &c, 1);
		ms_vcpu_destroy(vcpu);
	}
	atomic_store(&t->done, true);
	return NULL;
}

/*
 * A thread that exits with an invalidation open (its end comes from
 * another thread) hands its record to nobody: a new thread taking it would
 * be taken for the holder and get -EDEADLK instead of waiting for the end.
 */
static void test_start_left_open_by_exited_thread(void **state)
{
	static const enum ms_gate gates[] = { MS_GATE_COUNT, MS_GATE_FAIR };

	for (size_t i = 0; i < sizeof(gates) / sizeof(gates[0]); i++) {
		struct ms_vm *vm = vm_new(gates[i], NULL, NULL);
		char *h = test_host_alloc(1);
		struct helper_thread opener = { .vm = vm, .start = (uintptr_t)h };
		struct helper_thread reader = { .vm = vm };

		set_region(vm, 0, GPA, MS_PAGE_SIZE, h);
		pthread_create(&opener.thread, NULL, open_and_exit_main, &opener);
		pthread_join(opener.thread, NULL);
		assert_int_equal(opener.result, 0);
		pthread_create(&reader.thread, NULL, access_main, &reader);
		usleep(50000);
		assert_false(atomic_load(&reader.done));
		ms_invalidate_range_end(vm, opener.start, opener.start + MS_PAGE_SIZE);
		pthread_join(reader.thread, NULL);
		assert_int_equal(reader.result, 0);
		assert_int_equal(test_stats(vm).unmatched_ends, 0);
		ms_vm_destroy(vm);
		test_host_free(h, 1);
	}
}

/* Ends each page of [start, start + n pages) on its own thread, in order. */
struct ender {
	pthread_t thread;
	struct ms_vm *vm;
	uint64_t start;
	unsigned int n;
};

static void *ender_main(void *arg)
{
	struct ender *e = arg;

	for (unsigned int i = 0; i < e->n; i++)
		ms_invalidate_range_end(e->vm, e->start + i * MS_PAGE_SIZE,
					e->start + (i + 1) * MS_PAGE_SIZE);
	return NULL;
}

static void assert_balanced(struct ms_vm *vm)
{
	struct ms_stats st = test_stats(vm);

	assert_int_equal(st.unmatched_ends, 0);
	assert_int_equal(st.mn_active_invalidate_count, 0);
	assert_int_equal(st.mmu_invalidate_in_progress, 0);
	assert_int_equal(st.invalidations_ended, st.invalidations_started);
	assert_int_equal(st.invalidation_ends_elided, st.invalidation_starts_elided);
}

/*
 * Opens past the sixteen a thread's record tracks are matched by ends on
 * another thread too, and counted; afterwards the opener holds nothing.
 */
static void test_untracked_end_on_another_thread(void **state)
{
	static const enum ms_gate gates[] = { MS_GATE_COUNT, MS_GATE_FAIR };
	const unsigned int n = 20;

	for (size_t g = 0; g < sizeof(gates) / sizeof(gates[0]); g++) {
		struct ms_vm *vm = vm_new(gates[g], NULL, NULL);
		char *h = test_host_alloc(n);
		struct ender e = { .vm = vm, .start = (uintptr_t)h, .n = n };
		struct ms_region r = test_region(0, 1, 2 * GPA, MS_PAGE_SIZE, h, 0);
		struct ms_vcpu *vcpu;
		char c;

		set_region(vm, 0, GPA, n * MS_PAGE_SIZE, h);
		assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
		for (unsigned int i = 0; i < n; i++)
			assert_int_equal(ms_invalidate_range_start(vm, e.start + i * MS_PAGE_SIZE,
								   e.start + (i + 1) * MS_PAGE_SIZE,
								   true),
					 0);
		pthread_create(&e.thread, NULL, ender_main, &e);
		pthread_join(e.thread, NULL);
		assert_balanced(vm);
		assert_int_equal(ms_vcpu_read(vcpu, 0, GPA + (n - 1) * MS_PAGE_SIZE, &c, 1), 0);
		assert_int_equal(ms_set_memory_region(vm, &r), 0);
		ms_vcpu_destroy(vcpu);
		ms_vm_destroy(vm);
		test_host_free(h, n);
	}
}

static void *end_page_main(void *arg)
{
	struct helper_thread *t = arg;

	ms_invalidate_range_end(t->vm, t->start, t->start + MS_PAGE_SIZE);
	return NULL;
}

static void *start_end_page_main(void *arg)
{
	struct helper_thread *t = arg;

	if (!ms_invalidate_range_start(t->vm, t->start, t->start + MS_PAGE_SIZE, true))
		ms_invalidate_range_end(t->vm, t->start, t->start + MS_PAGE_SIZE);
	return NULL;
}

/*
 * A thread with an untracked start open ends another thread's range: the
 * end is that range's, not its own untracked start's, which its own last
 * end then finds.
 */
static void test_end_of_other_range_with_untracked_open(void **state)
{
	static const enum ms_gate gates[] = { MS_GATE_COUNT, MS_GATE_FAIR };
	const unsigned int n = 17;

	for (size_t g = 0; g < sizeof(gates) / sizeof(gates[0]); g++) {
		struct ms_vm *vm = vm_new(gates[g], NULL, NULL);
		char *h = test_host_alloc(n + 1);
		struct helper_thread b = { .vm = vm, .start = (uintptr_t)h + n * MS_PAGE_SIZE };
		struct ms_region r = test_region(0, 1, 4 * GPA, MS_PAGE_SIZE, h, 0);
		struct ms_vcpu *vcpu;
		char c;

		set_region(vm, 0, GPA, (n + 1) * MS_PAGE_SIZE, h);
		for (unsigned int i = 0; i < n; i++)
			assert_int_equal(
			    ms_invalidate_range_start(vm, (uintptr_t)h + i * MS_PAGE_SIZE,
						      (uintptr_t)h + (i + 1) * MS_PAGE_SIZE, true),
			    0);
		pthread_create(&b.thread, NULL, open_and_exit_main, &b);
		pthread_join(b.thread, NULL);
		assert_int_equal(b.result, 0);
		ms_invalidate_range_end(vm, b.start, b.start + MS_PAGE_SIZE);
		for (unsigned int i = n; i-- > 0;)
			ms_invalidate_range_end(vm, (uintptr_t)h + i * MS_PAGE_SIZE,
						(uintptr_t)h + (i + 1) * MS_PAGE_SIZE);
		assert_balanced(vm);
		assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
		assert_int_equal(ms_vcpu_read(vcpu, 0, GPA + n * MS_PAGE_SIZE, &c, 1), 0);
		assert_int_equal(ms_set_memory_region(vm, &r), 0);
		ms_vcpu_destroy(vcpu);
		ms_vm_destroy(vm);
		test_host_free(h, n + 1);
	}
}

/*
 * Two ends racing for the same range, one from a thread whose own start of
 * it is open and one from a thread with no record: each takes one start,
 * never both the same, so every round ends balanced.
 */
static void test_racing_ends_of_one_range(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_FAIR, NULL, NULL);
	char *h = test_host_alloc(1);
	uint64_t p = (uintptr_t)h;

	set_region(vm, 0, GPA, MS_PAGE_SIZE, h);
	for (int round = 0; round < 1500; round++) {
		struct helper_thread own = { .vm = vm, .start = p },
				     other = { .vm = vm, .start = p };

		assert_int_equal(ms_invalidate_range_start(vm, p, p + MS_PAGE_SIZE, true), 0);
		pthread_create(&own.thread, NULL, start_end_page_main, &own);
		pthread_create(&other.thread, NULL, end_page_main, &other);
		pthread_join(own.thread, NULL);
		pthread_join(other.thread, NULL);
		assert_balanced(vm);
	}
	ms_vm_destroy(vm);
	test_host_free(h, 1);
}

static void *open_page_main(void *arg)
{
	struct helper_thread *t = arg;

	t->result = ms_invalidate_range_start(t->vm, t->start, t->start + MS_PAGE_SIZE, true);
	atomic_store(&t->done, true);
	while (atomic_load(&t->done))
		sched_yield();
	ms_invalidate_range_end(t->vm, t->start, t->start + MS_PAGE_SIZE);
	return NULL;
}

/*
 * A thread's untracked start and another thread's tracked start of the same
 * range: an end takes the exact range first, the other end the untracked
 * start, and every count comes back down.
 */
static void test_untracked_and_tracked_of_one_range(void **state)
{
	const unsigned int n = 17;
	struct ms_vm *vm = vm_new(MS_GATE_FAIR, NULL, NULL);
	char *h = test_host_alloc(n + 1);
	uint64_t p = (uintptr_t)h + n * MS_PAGE_SIZE;
	struct helper_thread b = { .vm = vm, .start = p };

	set_region(vm, 0, GPA, (n + 1) * MS_PAGE_SIZE, h);
	pthread_create(&b.thread, NULL, open_page_main, &b);
	while (!atomic_load(&b.done))
		sched_yield();
	assert_int_equal(b.result, 0);
	for (unsigned int i = 0; i < n - 1; i++)
		assert_int_equal(ms_invalidate_range_start(vm, (uintptr_t)h + i * MS_PAGE_SIZE,
							   (uintptr_t)h + (i + 1) * MS_PAGE_SIZE,
							   true),
				 0);
	assert_int_equal(ms_invalidate_range_start(vm, p, p + MS_PAGE_SIZE, true), 0);
	ms_invalidate_range_end(vm, p, p + MS_PAGE_SIZE);
	for (unsigned int i = 0; i < n - 1; i++)
		ms_invalidate_range_end(vm, (uintptr_t)h + i * MS_PAGE_SIZE,
					(uintptr_t)h + (i + 1) * MS_PAGE_SIZE);
	atomic_store(&b.done, false);
	pthread_join(b.thread, NULL);
	assert_balanced(vm);
	ms_vm_destroy(vm);
	test_host_free(h, n + 1);
}

static void *nonblock_main(void *arg)
{
	struct helper_thread *t = arg;

	t->result = ms_invalidate_range_start(t->vm, t->start, t->start + MS_PAGE_SIZE, false);
	atomic_store(&t->done, true);
	return NULL;
}

static void *update_main(void *arg)
{
	struct zapper *z = arg;

	z->result = ms_set_memory_region(z->vm, &z->delete);
	atomic_store(&z->done, true);
	return NULL;
}

/* MS_GATE_RWSEM: a non-blockable start behind a waiting update refuses. */
static void test_rwsem_nonblockable_refuses(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_RWSEM, NULL, NULL);
	char *h = test_host_alloc(4);
	uint64_t s = (uintptr_t)h;
	struct zapper u = { .vm = vm };
	struct helper_thread t = { .vm = vm, .start = s + 3 * MS_PAGE_SIZE };
	struct ms_stats before;

	set_region(vm, 0, GPA, MS_PAGE_SIZE, h);
	u.delete = test_region(0, 1, 2 * GPA, MS_PAGE_SIZE, h + 2 * MS_PAGE_SIZE, 0);
	assert_int_equal(ms_invalidate_range_start(vm, s, s + MS_PAGE_SIZE, true), 0);
	pthread_create(&u.thread, NULL, update_main, &u);
	assert_true(test_wait_until(test_stats(vm).gate_waiters == 1));
	before = test_stats(vm);
	pthread_create(&t.thread, NULL, nonblock_main, &t);
	assert_true(test_wait_until(atomic_load(&t.done)));
	pthread_join(t.thread, NULL);
	assert_int_equal(t.result, -EAGAIN);
	assert_int_equal(test_stats(vm).mn_active_invalidate_count,
			 before.mn_active_invalidate_count);
	assert_int_equal(test_stats(vm).invalidations_refused, before.invalidations_refused + 1);
	ms_invalidate_range_end(vm, s, s + MS_PAGE_SIZE);
	pthread_join(u.thread, NULL);
	assert_int_equal(u.result, 0);
	ms_vm_destroy(vm);
	test_host_free(h, 4);
}

static void *spin_reader_main(void *arg)
{
	struct test_reader *t = arg;
	struct ms_vcpu *vcpu;
	char c;

	assert_int_equal(ms_vcpu_create(t->vm, &vcpu), 0);
	while (!atomic_load(&t->done))
		ms_vcpu_read(vcpu, 0, t->gpa, &c, 1);
	ms_vcpu_destroy(vcpu);
	return NULL;
}

/* The child of a fork() gets -ECHILD from every call instead of hanging. */
static void test_fork_child_fails_cleanly(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, NULL, NULL);
	char *h = test_host_alloc(2);
	struct test_reader reader = { .vm = vm, .gpa = GPA };
	int status = -1;
	pid_t pid;

	struct ms_vcpu *parent_vcpu;
	uint64_t hva;

	set_region(vm, 0, GPA, MS_PAGE_SIZE, h);
	assert_int_equal(ms_vcpu_create(vm, &parent_vcpu), 0);
	assert_int_equal(ms_gfn_to_hva(parent_vcpu, 0, GPA >> MS_PAGE_SHIFT, false, &hva), 0);
	pthread_create(&reader.thread, NULL, spin_reader_main, &reader);
	assert_true(test_wait_until(test_stats(vm).entries_present == 1));
	pid = fork();
	if (pid == 0) {
		struct ms_region r = test_region(0, 1, 2 * GPA, MS_PAGE_SIZE, h + MS_PAGE_SIZE, 0);
		struct ms_vcpu *vcpu;
		struct ms_vm *other;

		alarm(20);
		/* Even a cached translation: and bad arguments are still -EINVAL first. */
		if (ms_gfn_to_hva(parent_vcpu, 0, GPA >> MS_PAGE_SHIFT, false, &hva) != -ECHILD ||
		    ms_gfn_to_hva(parent_vcpu, vm->cfg.address_spaces, 0, false, &hva) != -EINVAL)
			_exit(1);
		if (ms_set_memory_region(vm, &r) != -ECHILD ||
		    ms_invalidate_range_start(vm, (uintptr_t)h, (uintptr_t)h + 1, true) !=
			-ECHILD ||
		    ms_vcpu_create(vm, &vcpu) != -ECHILD || ms_vm_create(NULL, &other) != -ECHILD)
			_exit(1);
		ms_vm_destroy(vm);
		_exit(0);
	}
	assert_true(pid > 0);
	for (int i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) != pid; i++)
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	atomic_store(&reader.done, true);
	pthread_join(reader.thread, NULL);
	ms_vcpu_destroy(parent_vcpu);
	ms_vm_destroy(vm);
	test_host_free(h, 2);
}

static void test_null_arguments(void **state)
{
	struct ms_vm *vm = vm_new(MS_GATE_COUNT, NULL, NULL);
	struct ms_vcpu *vcpu;
	uint64_t hva;
	char c;

	assert_int_equal(ms_config_init(NULL), -EINVAL);
	assert_int_equal(ms_vm_create(NULL, NULL), -EINVAL);
	assert_int_equal(ms_set_memory_region(NULL, NULL), -EINVAL);
	assert_int_equal(ms_set_memory_region(vm, NULL), -EINVAL);
	assert_int_equal(ms_vcpu_create(NULL, &vcpu), -EINVAL);
	assert_int_equal(ms_vcpu_create(vm, NULL), -EINVAL);
	assert_int_equal(ms_gfn_to_hva(NULL, 0, 0, false, &hva), -EINVAL);
	assert_int_equal(ms_vcpu_read(NULL, 0, 0, &c, 1), -EINVAL);
	assert_int_equal(ms_vcpu_write(NULL, 0, 0, &c, 1), -EINVAL);
	assert_int_equal(ms_invalidate_range_start(NULL, 0, 1, true), -EINVAL);
	assert_int_equal(ms_vm_stats(NULL, NULL), -EINVAL);
	ms_invalidate_range_end(NULL, 0, 1);
	ms_change_pte(NULL, 0);
	ms_vcpu_destroy(NULL);
	ms_vm_destroy(NULL);
	assert_int_equal(ms_vcpu_create(vm, &vcpu), 0);
	assert_int_equal(ms_gfn_to_hva(vcpu, 0, 0, false, NULL), -EINVAL);
	assert_int_equal(ms_vcpu_read(vcpu, 0, 0, NULL, 1), -EINVAL);
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unaligned_range_holds_fault),
		cmocka_unit_test(test_second_start_waits_for_invalidation_zap),
		cmocka_unit_test(test_second_start_waits_for_delete_zap),
		cmocka_unit_test(test_start_waits_for_zap_begun_during_its_puts),
		cmocka_unit_test(test_gpa_beyond_width),
		cmocka_unit_test(test_configured_width),
		cmocka_unit_test(test_lookup_at_key_space_edges),
		cmocka_unit_test(test_unmatched_end),
		cmocka_unit_test(test_own_invalidation_deadlock),
		cmocka_unit_test(test_own_invalidation_union),
		cmocka_unit_test(test_end_on_another_thread),
		cmocka_unit_test(test_start_left_open_by_exited_thread),
		cmocka_unit_test(test_untracked_end_on_another_thread),
		cmocka_unit_test(test_untracked_and_tracked_of_one_range),
		cmocka_unit_test(test_end_of_other_range_with_untracked_open),
		cmocka_unit_test(test_racing_ends_of_one_range),
		cmocka_unit_test(test_rwsem_nonblockable_refuses),
		cmocka_unit_test(test_fork_child_fails_cleanly),
		cmocka_unit_test(test_null_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
