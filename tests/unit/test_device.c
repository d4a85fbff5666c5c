/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a device backend uses: pfn caches (valid until an invalidation of
 * their pages or a memslot publish; starts wait for their readers; refresh
 * waits only for invalidations of its own pages; writes count as dirty),
 * the embedder's invalidation callbacks, and zero-copy translation with a
 * clamped length.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>
#include <cmocka.h>

#include "../common/testutil.h"
#include "memslots_lockdep.h"

#define GPA 0x100000ull
#define P MS_PAGE_SIZE

#define wait_briefly(cond)                                                \
	({                                                                \
		int __tries = 0;                                          \
		while (!(cond) && __tries++ < 2000)                       \
			nanosleep(&(struct timespec){ 0, 100000 }, NULL); \
	})

struct calls {
	int n;
	unsigned int as_id;
	uint64_t start, end;
	bool blockable;
};

static void record_invalidate(void *opaque, unsigned int as_id, uint64_t start, uint64_t end,
			      bool blockable)
{
	struct calls *c = opaque;

	c->n++;
	c->as_id = as_id;
	c->start = start;
	c->end = end;
	c->blockable = blockable;
}

static const struct ms_invalidate_ops record_ops = { record_invalidate };

struct fixture {
	struct ms_vm *vm;
	char *h;
	uint64_t s;
	struct calls calls;
};

static void fixture_init(struct fixture *f, uint32_t flags)
{
	struct ms_config cfg;
	struct ms_region r;

	*f = (struct fixture){ .h = test_host_alloc(8) };
	f->s = (uintptr_t)f->h;
	assert_int_equal(ms_config_init(&cfg), 0);
	cfg.invalidate_ops = &record_ops;
	cfg.invalidate_opaque = &f->calls;
	assert_int_equal(ms_vm_create(&cfg, &f->vm), 0);
	r = test_region(0, 0, GPA, 4 * P, f->h, flags);
	assert_int_equal(ms_set_memory_region(f->vm, &r), 0);
}

static void fixture_fini(struct fixture *f)
{
	ms_vm_destroy(f->vm);
	test_host_free(f->h, 8);
}

static void *use(struct ms_pfn_cache *gpc)
{
	void *p;

	ms_pfn_cache_read_lock(gpc);
	p = ms_pfn_cache_check(gpc);
	ms_pfn_cache_read_unlock(gpc, false);
	return p;
}

struct refresher {
	pthread_t thread;
	struct ms_pfn_cache *gpc;
	int result;
	atomic_bool done;
};

static void *refresh_main(void *arg)
{
	struct refresher *t = arg;

	t->result = ms_pfn_cache_refresh(t->gpc);
	atomic_store(&t->done, true);
	return NULL;
}

/* Valid until its pages are invalidated or the memslots change. */
static void test_pfn_cache_lifecycle(void **state)
{
	struct fixture f;
	struct ms_pfn_cache *gpc;
	struct refresher t = { 0 };
	struct ms_region r;

	fixture_init(&f, 0);
	assert_int_equal(ms_pfn_cache_create(f.vm, &gpc), 0);
	assert_int_equal(ms_pfn_cache_activate(gpc, 0, GPA + P + 16, 64), 0);
	assert_ptr_equal(use(gpc), f.h + P + 16);

	/* Another page's invalidation leaves it alone, and does not hold a refresh. */
	assert_int_equal(ms_invalidate_range_start(f.vm, f.s + 3 * P, f.s + 4 * P, true), 0);
	assert_ptr_equal(use(gpc), f.h + P + 16);
	assert_int_equal(ms_pfn_cache_refresh(gpc), 0);

	/* Its own page's: invalid, and a refresh waits for the end. */
	assert_int_equal(ms_invalidate_range_start(f.vm, f.s + P + 100, f.s + P + 101, true), 0);
	assert_null(use(gpc));
	t.gpc = gpc;
	pthread_create(&t.thread, NULL, refresh_main, &t);
	wait_briefly(atomic_load(&t.done));
	assert_false(atomic_load(&t.done));
	assert_true(test_stats(f.vm).pfn_cache_retries > 0);
	ms_invalidate_range_end(f.vm, f.s + P + 100, f.s + P + 101);
	pthread_join(t.thread, NULL);
	assert_int_equal(t.result, 0);
	assert_ptr_equal(use(gpc), f.h + P + 16);
	ms_invalidate_range_end(f.vm, f.s + 3 * P, f.s + 4 * P);

	/* Any publish makes it stale. */
	r = test_region(0, 1, 8 * GPA, P, f.h + 5 * P, 0);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0);
	assert_null(use(gpc));
	assert_int_equal(ms_pfn_cache_refresh(gpc), 0);
	assert_non_null(use(gpc));

	/* Ranges not within one valid slot; the caller's own invalidation. */
	assert_int_equal(ms_pfn_cache_activate(gpc, 0, GPA + 3 * P, 2 * P), -EFAULT);
	assert_int_equal(ms_pfn_cache_activate(gpc, 0, 2 * GPA, 8), -EFAULT);
	assert_int_equal(ms_pfn_cache_activate(gpc, 0, GPA, 0), -EINVAL);
	assert_int_equal(ms_invalidate_range_start(f.vm, f.s, f.s + P, true), 0);
	assert_int_equal(ms_pfn_cache_activate(gpc, 0, GPA, 8), -EDEADLK);
	ms_invalidate_range_end(f.vm, f.s, f.s + P);
	assert_int_equal(ms_pfn_cache_refresh(gpc), 0);
	ms_pfn_cache_destroy(gpc);
	fixture_fini(&f);
}

struct starter {
	pthread_t thread;
	struct ms_vm *vm;
	uint64_t start, end;
	bool blockable;
	int result;
	atomic_bool done;
};

static void *start_main(void *arg)
{
	struct starter *t = arg;

	t->result = ms_invalidate_range_start(t->vm, t->start, t->end, t->blockable);
	atomic_store(&t->done, true);
	return NULL;
}

/* A start over a cache in use waits for its reader; a non-blockable one refuses. */
static void test_start_waits_for_reader(void **state)
{
	struct fixture f;
	struct ms_pfn_cache *gpc;
	struct starter t;

	fixture_init(&f, 0);
	assert_int_equal(ms_pfn_cache_create(f.vm, &gpc), 0);
	assert_int_equal(ms_pfn_cache_activate(gpc, 0, GPA, 16), 0);
	ms_pfn_cache_read_lock(gpc);
	assert_non_null(ms_pfn_cache_check(gpc));

	t = (struct starter){ .vm = f.vm, .start = f.s, .end = f.s + P, .blockable = false };
	pthread_create(&t.thread, NULL, start_main, &t);
	pthread_join(t.thread, NULL);
	assert_int_equal(t.result, -EAGAIN);
	assert_int_equal(test_stats(f.vm).mmu_invalidate_in_progress, 0);

	t = (struct starter){ .vm = f.vm, .start = f.s, .end = f.s + P, .blockable = true };
	pthread_create(&t.thread, NULL, start_main, &t);
	wait_briefly(atomic_load(&t.done));
	assert_false(atomic_load(&t.done));
	assert_non_null(ms_pfn_cache_check(gpc)); /* still ours while we hold it */
	ms_pfn_cache_read_unlock(gpc, false);
	pthread_join(t.thread, NULL);
	assert_int_equal(t.result, 0);
	assert_null(use(gpc));
	ms_invalidate_range_end(f.vm, f.s, f.s + P);
	ms_pfn_cache_destroy(gpc);
	fixture_fini(&f);
}

/* Writes through a cache are dirty-logged. */
static void test_pfn_cache_dirty(void **state)
{
	struct fixture f;
	struct ms_pfn_cache *gpc;
	uint64_t bitmap = 0;
	char *p;

	fixture_init(&f, MS_MEM_LOG_DIRTY_PAGES);
	assert_int_equal(ms_pfn_cache_create(f.vm, &gpc), 0);
	assert_int_equal(ms_pfn_cache_activate(gpc, 0, GPA + 2 * P - 4, 8), 0);
	ms_pfn_cache_read_lock(gpc);
	p = ms_pfn_cache_check(gpc);
	assert_non_null(p);
	p[0] = 1;
	ms_pfn_cache_read_unlock(gpc, true);
	assert_int_equal(ms_get_dirty_log(f.vm, 0, &bitmap), 0);
	assert_int_equal(bitmap, 0x6); /* the two pages it spans */
	ms_pfn_cache_destroy(gpc);
	fixture_fini(&f);
}

/* The embedder hears of every guest range taken away, in whole pages. */
static void test_invalidate_callbacks(void **state)
{
	struct fixture f;
	struct ms_region r = test_region(0, 0, 0, 0, NULL, 0);

	fixture_init(&f, 0);
	assert_int_equal(ms_invalidate_range_start(f.vm, f.s + P + 5, f.s + 2 * P + 5, true), 0);
	assert_int_equal(f.calls.n, 1);
	assert_int_equal(f.calls.start, GPA + P);
	assert_int_equal(f.calls.end, GPA + 3 * P);
	assert_true(f.calls.blockable);
	ms_invalidate_range_end(f.vm, f.s + P + 5, f.s + 2 * P + 5);
	assert_int_equal(ms_invalidate_range_start(f.vm, f.s + 6 * P, f.s + 7 * P, true), 0);
	assert_int_equal(f.calls.n, 1); /* no slot there */
	ms_invalidate_range_end(f.vm, f.s + 6 * P, f.s + 7 * P);
	assert_int_equal(ms_invalidate_range_start(f.vm, f.s, f.s + P, false), 0);
	assert_int_equal(f.calls.n, 2);
	assert_false(f.calls.blockable);
	ms_invalidate_range_end(f.vm, f.s, f.s + P);
	assert_int_equal(ms_set_memory_region(f.vm, &r), 0); /* delete slot 0 */
	assert_int_equal(f.calls.n, 3);
	assert_int_equal(f.calls.start, GPA);
	assert_int_equal(f.calls.end, GPA + 4 * P);
	fixture_fini(&f);
}

static void test_gpa_to_hva(void **state)
{
	struct fixture f;
	struct ms_region ro;
	uint64_t hva;
	size_t len;

	fixture_init(&f, 0);
	ro = test_region(0, 1, 8 * GPA, P, f.h + 5 * P, MS_MEM_READONLY);
	assert_int_equal(ms_set_memory_region(f.vm, &ro), 0);
	len = 16 * P;
	assert_int_equal(ms_gpa_to_hva(f.vm, 0, GPA + 3 * P + 10, &len, true, &hva), 0);
	assert_int_equal(hva, f.s + 3 * P + 10);
	assert_int_equal(len, P - 10);
	len = 5;
	assert_int_equal(ms_gpa_to_hva(f.vm, 0, GPA, &len, false, &hva), 0);
	assert_int_equal(len, 5);
	assert_int_equal(ms_gpa_to_hva(f.vm, 0, 2 * GPA, &len, false, &hva), -EFAULT);
	assert_int_equal(ms_gpa_to_hva(f.vm, 0, 8 * GPA, &len, true, &hva), -EFAULT);
	assert_int_equal(ms_gpa_to_hva(f.vm, 0, 8 * GPA, &len, false, &hva), 0);
	assert_int_equal(ms_gpa_to_hva(f.vm, 0, GPA, NULL, false, &hva), -EINVAL);
	assert_int_equal(ms_gpa_to_hva(f.vm, 5, GPA, &len, false, &hva), -EINVAL);
	fixture_fini(&f);
}

static struct ms_vm *sleeper_vm;

/* A callback that calls back in: the lock validator reports it. */
static void sleeping_invalidate(void *opaque, unsigned int as_id, uint64_t start, uint64_t end,
				bool blockable)
{
	uint64_t bitmap;

	ms_get_dirty_log(sleeper_vm, 0, &bitmap); /* takes slots_lock: may sleep */
}

static const struct ms_invalidate_ops sleeping_ops = { sleeping_invalidate };

static void test_callback_rules_validated(void **state)
{
	struct ms_config cfg;
	char *h = test_host_alloc(1);
	struct ms_region r = test_region(0, 0, GPA, P, h, 0);
	unsigned long atomic_before, nesting_before;

	assert_int_equal(ms_config_init(&cfg), 0);
	cfg.lockdep = true;
	cfg.invalidate_ops = &sleeping_ops;
	assert_int_equal(ms_vm_create(&cfg, &sleeper_vm), 0);
	ms_lockdep_set_output(fopen("/dev/null", "w"));
	atomic_before = ms_lockdep_reports_of(MS_LOCKDEP_SLEEP_IN_ATOMIC);
	nesting_before = ms_lockdep_reports_of(MS_LOCKDEP_FORBIDDEN_NESTING);
	assert_int_equal(ms_set_memory_region(sleeper_vm, &r), 0);
	assert_int_equal(ms_invalidate_range_start(sleeper_vm, (uintptr_t)h, (uintptr_t)h + P,
						   false),
			 0);
	ms_invalidate_range_end(sleeper_vm, (uintptr_t)h, (uintptr_t)h + P);
	assert_true(ms_lockdep_reports_of(MS_LOCKDEP_SLEEP_IN_ATOMIC) > atomic_before);
	assert_true(ms_lockdep_reports_of(MS_LOCKDEP_FORBIDDEN_NESTING) > nesting_before);
	ms_vm_destroy(sleeper_vm);
	test_host_free(h, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pfn_cache_lifecycle),
		cmocka_unit_test(test_start_waits_for_reader),
		cmocka_unit_test(test_pfn_cache_dirty),
		cmocka_unit_test(test_invalidate_callbacks),
		cmocka_unit_test(test_gpa_to_hva),
		/* Last: it turns the validator on for the whole process. */
		cmocka_unit_test(test_callback_rules_validated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
