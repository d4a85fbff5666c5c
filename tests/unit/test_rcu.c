/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The read-side sections of src/rcu.h, with a thread held inside one: a
 * wait waits for the outermost section to end, nested or not; the two
 * domains do not wait for each other; a wait of one VM does not wait for
 * another VM's readers; anonymous readers (threads without a record) are
 * waited for too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <cmocka.h>

#include "../common/testutil.h"
#include "rcu.h"

enum hold { HOLD_MEMSLOTS, HOLD_NESTED, HOLD_ENTRIES, HOLD_ANON };

struct holder {
	pthread_t thread;
	struct ms_vm *vm;
	enum hold how;
	atomic_bool inside, release;
};

static void hold_until_released(struct holder *h)
{
	atomic_store(&h->inside, true);
	while (!atomic_load(&h->release))
		sched_yield();
}

static void *holder_main(void *arg)
{
	struct holder *h = arg;

	switch (h->how) {
	case HOLD_MEMSLOTS:
		ms_rcu_read_lock(h->vm);
		hold_until_released(h);
		ms_rcu_read_unlock(h->vm);
		break;
	case HOLD_NESTED:
		/* The inner unlock comes first: the wait must go on. */
		ms_rcu_read_lock(h->vm);
		ms_rcu_read_lock(h->vm);
		ms_rcu_read_unlock(h->vm);
		hold_until_released(h);
		ms_rcu_read_unlock(h->vm);
		break;
	case HOLD_ENTRIES:
		ms_spte_read_lock(h->vm);
		hold_until_released(h);
		ms_spte_read_unlock(h->vm);
		break;
	case HOLD_ANON:
		ms_rcu_anon_enter(h->vm, MS_RCU_MEMSLOTS);
		hold_until_released(h);
		ms_rcu_anon_exit(h->vm, MS_RCU_MEMSLOTS);
		break;
	}
	return NULL;
}

struct waiter {
	pthread_t thread;
	struct ms_vm *vm;
	bool entries;
	atomic_bool done;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	if (w->entries)
		ms_synchronize_spte_readers(w->vm);
	else
		ms_synchronize_rcu(w->vm);
	atomic_store(&w->done, true);
	return NULL;
}

static struct ms_vm *vm_make(void)
{
	struct ms_config cfg;
	struct ms_vm *vm;

	assert_int_equal(ms_config_init(&cfg), 0);
	assert_int_equal(ms_vm_create(&cfg, &vm), 0);
	return vm;
}

/*
 * A holder of kind how inside a section of holder_vm; a wait of waiter_vm's
 * domain (entries or memslots) returns at once if must_wait is false, else
 * only once the holder is released.
 */
static void check_wait(enum hold how, bool entries, bool other_vm, bool must_wait)
{
	struct ms_vm *vm = vm_make(), *other = other_vm ? vm_make() : vm;
	struct holder h = { .vm = vm, .how = how };
	struct waiter w = { .vm = other, .entries = entries };

	pthread_create(&h.thread, NULL, holder_main, &h);
	while (!atomic_load(&h.inside))
		sched_yield();
	pthread_create(&w.thread, NULL, waiter_main, &w);
	if (must_wait) {
		usleep(50000);
		assert_false(atomic_load(&w.done));
		atomic_store(&h.release, true);
	}
	pthread_join(w.thread, NULL);
	assert_true(atomic_load(&w.done));
	atomic_store(&h.release, true);
	pthread_join(h.thread, NULL);
	if (other != vm)
		ms_vm_destroy(other);
	ms_vm_destroy(vm);
}

static void test_wait_for_reader(void **state)
{
	check_wait(HOLD_MEMSLOTS, false, false, true);
	check_wait(HOLD_ENTRIES, true, false, true);
}

static void test_wait_for_outermost_section(void **state)
{
	check_wait(HOLD_NESTED, false, false, true);
}

static void test_domains_independent(void **state)
{
	check_wait(HOLD_MEMSLOTS, true, false, false);
	check_wait(HOLD_ENTRIES, false, false, false);
}

static void test_other_vm_not_waited_for(void **state)
{
	check_wait(HOLD_MEMSLOTS, false, true, false);
	check_wait(HOLD_ENTRIES, true, true, false);
}

static void test_wait_for_anonymous_reader(void **state)
{
	check_wait(HOLD_ANON, false, false, true);
	check_wait(HOLD_ANON, true, false, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_for_reader),
		cmocka_unit_test(test_wait_for_outermost_section),
		cmocka_unit_test(test_domains_independent),
		cmocka_unit_test(test_other_vm_not_waited_for),
		cmocka_unit_test(test_wait_for_anonymous_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
