/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lock validator: each kind of report on a minimal scenario, each only
 * once, the read-lock rules (the upstream commit's rwsem cycle is reported, the count
 * gate's recursive read is not), and the report text.  The graph is
 * process-wide, so every test makes its own classes: each map is initialised
 * at its own line, under a name no other test uses.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "memslots_lockdep.h"

/* cmocka's and pthread's signatures: most tests use neither state nor arg. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

#define X MS_LOCK_EXCLUSIVE
#define S MS_LOCK_SHARED
#define SR MS_LOCK_SHARED_RECURSIVE

static char *out_buf;
static size_t out_len;
static FILE *out;
static unsigned long base[MS_LOCKDEP_NR_REPORT_KINDS];

static int setup(void **state)
{
	unsigned int k;

	out = open_memstream(&out_buf, &out_len);
	ms_lockdep_set_output(out);
	for (k = 0; k < MS_LOCKDEP_NR_REPORT_KINDS; k++)
		base[k] = ms_lockdep_reports_of(k);
	return 0;
}

static int teardown(void **state)
{
	/* A failed test may leave locks held: forget them, so that the next test starts clean. */
	ms_lockdep_thread_exit();
	ms_lockdep_set_output(NULL);
	fclose(out);
	free(out_buf);
	return 0;
}

static const char *captured(void)
{
	fflush(out);
	return out_buf ? out_buf : "";
}

/* Reports of one kind since the test began. */
static unsigned long reported(enum ms_lockdep_report_kind kind)
{
	return ms_lockdep_reports_of(kind) - base[kind];
}

static unsigned long reported_all(void)
{
	unsigned long n = 0;
	unsigned int k;

	for (k = 0; k < MS_LOCKDEP_NR_REPORT_KINDS; k++)
		n += reported(k);
	return n;
}

static void assert_captured(const char *text)
{
	if (!strstr(captured(), text))
		fail_msg("report lacks \"%s\"; it is:\n%s", text, captured());
}

static void assert_captured_site(const char *func, int line)
{
	char site[160];

	snprintf(site, sizeof(site), "%s (%s:%d)", func, __FILE__, line);
	assert_captured(site);
}

static void run_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static void lock_pair(struct ms_lockdep_map *outer, struct ms_lockdep_map *inner)
{
	ms_lock_acquire(outer, X);
	ms_lock_acquire(inner, X);
	ms_lock_release(inner);
	ms_lock_release(outer);
}

static void test_abba_mutexes(void **state)
{
	struct ms_lockdep_map a, b;
	int line_a, line_b;

	ms_lockdep_init_map(&a, "abba_a", MS_LOCK_MUTEX);
	ms_lockdep_init_map(&b, "abba_b", MS_LOCK_MUTEX);
	ms_lock_acquire(&a, X);
	line_b = __LINE__ + 1;
	ms_lock_acquire(&b, X);
	ms_lock_release(&b);
	ms_lock_release(&a);
	assert_int_equal(reported_all(), 0);

	ms_lock_acquire(&b, X);
	line_a = __LINE__ + 1;
	ms_lock_acquire(&a, X);
	assert_int_equal(reported(MS_LOCKDEP_CIRCULAR), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("WARNING: possible circular locking dependency detected\n");
	assert_captured(" is trying to acquire lock:\n");
	assert_captured(" (abba_a){mutex}, at: ");
	assert_captured("\nbut task is already holding lock:\n");
	assert_captured("\nwhich lock already depends on the new lock.\n");
	assert_captured("the existing dependency chain (in reverse order) is:\n");
	assert_captured("\n-> #1 (abba_b){mutex}:\n       -(EN)-> first recorded by ");
	assert_captured("\n-> #0 (abba_a){mutex}:\n       -(EN)-> now, by ");
	assert_captured_site("test_abba_mutexes", line_a);
	assert_captured_site("test_abba_mutexes", line_b);
	assert_captured(" Possible unsafe locking scenario:\n\n"
			"       CPU0                    CPU1\n"
			"       ----                    ----\n"
			"  lock(abba_b);\n"
			"                               lock(abba_a);\n"
			"                               lock(abba_b);\n"
			"  lock(abba_a);\n\n"
			" *** DEADLOCK ***\n");
	assert_captured("\n1 lock held by ");
	ms_lock_release(&a);
	ms_lock_release(&b);

	/* The same problem, met again: once is enough. */
	lock_pair(&b, &a);
	lock_pair(&a, &b);
	assert_int_equal(reported_all(), 1);

	/* The same cycle closed by a new kind of edge, b -(ER)-> a: still the same problem. */
	ms_lock_acquire(&b, X);
	ms_lock_acquire(&a, SR);
	ms_lock_release(&a);
	ms_lock_release(&b);
	assert_int_equal(reported_all(), 1);
}

static struct ms_lockdep_map threads_a, threads_b;

static void *abba_first(void *arg)
{
	pthread_setname_np(pthread_self(), "abba-first");
	lock_pair(&threads_a, &threads_b);
	return NULL;
}

static void *abba_second(void *arg)
{
	pthread_setname_np(pthread_self(), "abba-second");
	lock_pair(&threads_b, &threads_a);
	return NULL;
}

/* The two orders on two threads that never overlap: the graph remembers the first. */
static void test_abba_two_threads(void **state)
{
	ms_lockdep_init_map(&threads_a, "threads_a", MS_LOCK_MUTEX);
	ms_lockdep_init_map(&threads_b, "threads_b", MS_LOCK_MUTEX);
	run_thread(abba_first, NULL);
	run_thread(abba_second, NULL);
	assert_int_equal(reported(MS_LOCKDEP_CIRCULAR), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("abba-second/");
	assert_captured("first recorded by abba-first/");
}

static void test_abc_chain(void **state)
{
	struct ms_lockdep_map a, b, c;

	ms_lockdep_init_map(&a, "chain_a", MS_LOCK_MUTEX);
	ms_lockdep_init_map(&b, "chain_b", MS_LOCK_SPINLOCK);
	ms_lockdep_init_map(&c, "chain_c", MS_LOCK_MUTEX);
	lock_pair(&a, &b);
	lock_pair(&b, &c);
	assert_int_equal(reported_all(), 0);
	lock_pair(&c, &a);
	assert_int_equal(reported(MS_LOCKDEP_CIRCULAR), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("Chain exists of:\n  chain_a --> chain_b --> chain_c\n");
	assert_captured("\n-> #2 (chain_c){mutex}:");
	assert_captured("\n-> #1 (chain_b){spinlock}:");
	assert_captured("\n-> #0 (chain_a){mutex}:");
	assert_captured("  lock(chain_c);\n"
			"                               lock(chain_b);\n"
			"                               lock(chain_c);\n"
			"  lock(chain_a);\n");
}

static void test_aa(void **state)
{
	struct ms_lockdep_map m;
	int line;

	ms_lockdep_init_map(&m, "aa_mutex", MS_LOCK_MUTEX);
	ms_lock_acquire(&m, X);
	line = __LINE__ + 1;
	ms_lock_acquire(&m, X);
	assert_int_equal(reported(MS_LOCKDEP_RECURSIVE), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("WARNING: possible recursive locking detected\n");
	assert_captured(" (aa_mutex){mutex}, at: ");
	assert_captured_site("test_aa", line);
	assert_captured("       CPU0\n       ----\n  lock(aa_mutex);\n  lock(aa_mutex);\n");
	ms_lock_release(&m);
	ms_lock_release(&m);

	lock_pair(&m, &m);
	assert_int_equal(reported_all(), 1);
}

/* A recursive read over a read is fine; any other mix on one class is AA. */
static void test_aa_read_modes(void **state)
{
	struct ms_lockdep_map rw, sem, w;

	ms_lockdep_init_map(&rw, "aa_rwlock", MS_LOCK_RWLOCK);
	ms_lockdep_init_map(&sem, "aa_rwsem", MS_LOCK_RWSEM);
	ms_lockdep_init_map(&w, "aa_write_then_read", MS_LOCK_RWLOCK);
	ms_lock_acquire(&rw, SR);
	ms_lock_acquire(&rw, SR);
	ms_lock_release(&rw);
	ms_lock_release(&rw);
	assert_int_equal(reported_all(), 0);

	/* Behind a waiting writer the second down_read never returns. */
	ms_lock_acquire(&sem, S);
	ms_lock_acquire(&sem, S);
	ms_lock_release(&sem);
	ms_lock_release(&sem);
	assert_int_equal(reported(MS_LOCKDEP_RECURSIVE), 1);
	assert_captured("  rlock(aa_rwsem);\n  rlock(aa_rwsem);\n");

	ms_lock_acquire(&w, X);
	ms_lock_acquire(&w, SR);
	ms_lock_release(&w);
	ms_lock_release(&w);
	assert_int_equal(reported(MS_LOCKDEP_RECURSIVE), 2);
	assert_int_equal(reported_all(), 2);
}

/* M -(ER)-> R -(SN)-> M: a reader that got R recursively waits for no writer. */
static void test_recursive_read_cycle(void **state)
{
	struct ms_lockdep_map r, m;

	ms_lockdep_init_map(&r, "rr_rwlock", MS_LOCK_RWLOCK);
	ms_lockdep_init_map(&m, "rr_mutex", MS_LOCK_MUTEX);
	ms_lock_acquire(&r, SR);
	ms_lock_acquire(&m, X);
	ms_lock_release(&m);
	ms_lock_release(&r);
	ms_lock_acquire(&m, X);
	ms_lock_acquire(&r, SR);
	ms_lock_release(&r);
	ms_lock_release(&m);
	assert_int_equal(reported_all(), 0);
}

/* h -(EN)-> n -(ER)-> r -(SN)-> h: the junction that breaks the cycle is mid-path. */
static void test_recursive_read_mid_path(void **state)
{
	struct ms_lockdep_map n, r, h;

	ms_lockdep_init_map(&n, "mid_n", MS_LOCK_MUTEX);
	ms_lockdep_init_map(&r, "mid_r", MS_LOCK_RWLOCK);
	ms_lockdep_init_map(&h, "mid_h", MS_LOCK_MUTEX);
	ms_lock_acquire(&n, X);
	ms_lock_acquire(&r, SR);
	ms_lock_release(&r);
	ms_lock_release(&n);
	ms_lock_acquire(&r, SR);
	ms_lock_acquire(&h, X);
	ms_lock_release(&h);
	ms_lock_release(&r);
	lock_pair(&h, &n);
	assert_int_equal(reported_all(), 0);

	/* With r taken non-recursively on the way, the same shape deadlocks. */
	ms_lock_acquire(&n, X);
	ms_lock_acquire(&r, S);
	ms_lock_release(&r);
	ms_lock_release(&n);
	assert_int_equal(reported(MS_LOCKDEP_CIRCULAR), 1);
	assert_captured("Chain exists of:\n  mid_r --> mid_h --> mid_n\n");
}

/* The same recursive read closes a cycle when the other side holds R to write. */
static void test_recursive_read_against_writer(void **state)
{
	struct ms_lockdep_map r, m;

	ms_lockdep_init_map(&r, "rw_rwlock", MS_LOCK_RWLOCK);
	ms_lockdep_init_map(&m, "rw_mutex", MS_LOCK_MUTEX);
	lock_pair(&r, &m);
	ms_lock_acquire(&m, X);
	ms_lock_acquire(&r, SR);
	ms_lock_release(&r);
	ms_lock_release(&m);
	assert_int_equal(reported(MS_LOCKDEP_CIRCULAR), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("-(ER)-> now, by ");
	assert_captured("  rlock(rw_rwlock);\n");
}

/*
 * The upstream commit's scenario under MS_GATE_RWSEM, on one thread and with no hang:
 * the host mm's pseudo-lock is held around start (which takes the rwsem for
 * read) and around end (which releases it), and an update takes the rwsem to
 * write under slots_lock.
 */
static void test_upstream_rwsem_cycle(void **state)
{
	struct ms_lockdep_map mm, sem, slots;

	ms_lockdep_init_map(&mm, "mm_invalidate_range_start", MS_LOCK_PSEUDO);
	ms_lockdep_init_map(&sem, "mm_mn_slots_rwsem", MS_LOCK_RWSEM);
	ms_lockdep_init_map(&slots, "mm_slots_lock", MS_LOCK_MUTEX);
	lock_pair(&slots, &sem);

	ms_lock_acquire(&mm, X); /* invalidate_range_start */
	ms_lock_acquire(&sem, S);
	ms_lock_release(&mm);
	assert_int_equal(reported_all(), 0);
	ms_lock_acquire(&mm, X); /* invalidate_range_end */
	ms_lock_release(&sem);
	ms_lock_release(&mm);

	assert_int_equal(reported(MS_LOCKDEP_CIRCULAR), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("\n-> #1 (mm_mn_slots_rwsem){rwsem}:\n       -(EN)-> first recorded by ");
	assert_captured("while holding mm_invalidate_range_start, taken at ");
	assert_captured("acquired for read at test_upstream_rwsem_cycle (");
	assert_captured("\n-> #0 (mm_invalidate_range_start){pseudo}:\n       -(SN)-> now, by ");
	assert_captured("  rlock(mm_mn_slots_rwsem);\n"
			"                               lock(mm_invalidate_range_start);\n"
			"                               rlock(mm_mn_slots_rwsem);\n"
			"  lock(mm_invalidate_range_start);\n");
	assert_captured(" rlock(mm_mn_slots_rwsem) is a non-recursive read");
}

/* The upstream fix: the count gate is a recursive read, so the same pattern is no cycle. */
static void test_upstream_count_gate(void **state)
{
	struct ms_lockdep_map mm, gate, slots, spin, callback;

	ms_lockdep_init_map(&mm, "count_invalidate_range_start", MS_LOCK_PSEUDO);
	ms_lockdep_init_map(&gate, "count_mn_active_invalidate", MS_LOCK_PSEUDO);
	ms_lockdep_init_map(&slots, "count_slots_lock", MS_LOCK_MUTEX);
	ms_lockdep_init_map(&spin, "count_mn_invalidate_lock", MS_LOCK_SPINLOCK);
	ms_lockdep_init_map(&callback, "count_callback", MS_LOCK_PSEUDO);
	ms_lockdep_forbid_nesting(&callback, &slots, "count: callbacks must not take slots_lock");

	ms_lock_acquire(&slots, X); /* the update */
	ms_might_sleep("wait for the gate");
	ms_lock_acquire(&gate, X);
	ms_lock_acquire(&spin, X); /* the publish */
	ms_lock_release(&spin);
	ms_lock_release(&gate);
	ms_lock_release(&slots);

	ms_lock_acquire(&mm, X); /* invalidate_range_start */
	ms_lock_acquire(&callback, SR);
	ms_lock_acquire(&gate, SR);
	ms_lock_acquire(&spin, X);
	ms_lock_release(&spin);
	ms_lock_release(&callback);
	ms_lock_release(&mm);

	ms_lock_acquire(&mm, X); /* invalidate_range_end */
	ms_lock_acquire(&callback, SR);
	ms_lock_acquire(&spin, X);
	ms_lock_release(&spin);
	ms_lock_release(&gate);
	ms_lock_release(&callback);
	ms_lock_release(&mm);

	assert_int_equal(reported_all(), 0);
	assert_string_equal(captured(), "");
}

static void test_bad_unlock(void **state)
{
	struct ms_lockdep_map m, other;
	int line = 0;

	ms_lockdep_init_map(&m, "unlocked_mutex", MS_LOCK_MUTEX);
	ms_lockdep_init_map(&other, "unlock_bystander", MS_LOCK_SPINLOCK);
	ms_lock_acquire(&other, X);
	for (int i = 0; i < 3; i++) {
		line = __LINE__ + 1;
		ms_lock_release(&m);
	}
	ms_lock_release(&other);
	assert_int_equal(reported(MS_LOCKDEP_BAD_UNLOCK), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("WARNING: bad unlock balance detected!\n");
	assert_captured(" is trying to release lock (unlocked_mutex) at:\n");
	assert_captured_site("test_bad_unlock", line);
	assert_captured("but there are no more locks to release!\n");
	assert_captured("1 lock held by ");
	assert_captured(" (unlock_bystander){spinlock}");

	/* Another site is another bug. */
	ms_lock_release(&m);
	assert_int_equal(reported(MS_LOCKDEP_BAD_UNLOCK), 2);
}

/* A shared hold of a pseudo-lock or rwsem may end on another thread. */
static struct ms_lockdep_map handoff;

static void *release_handoff(void *arg)
{
	ms_lock_release(&handoff);
	return NULL;
}

static void test_non_owner_release(void **state)
{
	ms_lockdep_init_map(&handoff, "handoff_pseudo", MS_LOCK_PSEUDO);
	ms_lock_acquire(&handoff, SR);
	run_thread(release_handoff, NULL);
	ms_lock_release(&handoff);
	assert_int_equal(reported(MS_LOCKDEP_BAD_UNLOCK), 1);
	assert_int_equal(reported_all(), 1);
}

/* An invalidation started on a thread that exits may be ended by another. */
static void *start_and_exit(void *map)
{
	ms_lock_acquire(map, SR);
	return NULL;
}

static void test_orphaned_hold(void **state)
{
	struct ms_lockdep_map gate, sem;

	ms_lockdep_init_map(&gate, "orphan_gate", MS_LOCK_PSEUDO);
	ms_lockdep_init_map(&sem, "orphan_rwsem", MS_LOCK_RWSEM);
	run_thread(start_and_exit, &gate);
	run_thread(start_and_exit, &sem);
	assert_int_equal(reported_all(), 0);
	ms_lock_release(&sem);
	ms_lock_release(&gate);
	assert_int_equal(reported_all(), 0);
	ms_lock_release(&gate);
	assert_int_equal(reported(MS_LOCKDEP_BAD_UNLOCK), 1);
	assert_int_equal(reported_all(), 1);
}

/* A VM destroyed with an invalidation open: its maps' holds go with it. */
static void test_free_range(void **state)
{
	struct freed {
		struct ms_lockdep_map gate, lock, orphaned;
	} *f = calloc(1, sizeof(*f));
	struct ms_lockdep_map outside;

	ms_lockdep_init_map(&f->gate, "freed_gate", MS_LOCK_PSEUDO);
	ms_lockdep_init_map(&f->lock, "freed_mutex", MS_LOCK_MUTEX);
	ms_lockdep_init_map(&f->orphaned, "freed_orphan", MS_LOCK_PSEUDO);
	ms_lockdep_init_map(&outside, "freed_outside", MS_LOCK_MUTEX);
	run_thread(start_and_exit, &f->orphaned);
	ms_lock_acquire(&outside, X);
	ms_lock_acquire(&f->gate, SR);
	ms_lockdep_free_range(f, sizeof(*f));
	assert_int_equal(reported_all(), 0);

	ms_lock_acquire(&f->lock, X);
	ms_lockdep_free_range(f, sizeof(*f));
	assert_int_equal(reported(MS_LOCKDEP_HELD_LOCK_FREED), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("WARNING: held lock freed!\n");
	assert_captured(", with a lock still held there!\n");
	assert_captured(" (freed_mutex){mutex}, at: test_free_range (");
	assert_captured(" (freed_outside){mutex}");

	/* Forgotten: releasing them now is a bad unlock, the outside lock is still held. */
	ms_lock_release(&f->orphaned);
	assert_int_equal(reported(MS_LOCKDEP_BAD_UNLOCK), 1);
	ms_lock_release(&outside);
	assert_int_equal(reported_all(), 2);
	free(f);
}

static struct ms_lockdep_map exit_lock, exit_rcu;

static void *exit_holding(void *arg)
{
	pthread_setname_np(pthread_self(), "ld-exiter");
	ms_lock_acquire(&exit_lock, X);
	ms_lock_acquire(&exit_rcu, SR);
	if (arg)
		ms_lockdep_thread_exit();
	return NULL;
}

static void test_held_at_exit(void **state)
{
	ms_lockdep_init_map(&exit_lock, "exit_mutex", MS_LOCK_MUTEX);
	ms_lockdep_init_map(&exit_rcu, "exit_rcu", MS_LOCK_RCU);
	run_thread(exit_holding, NULL);
	assert_int_equal(reported(MS_LOCKDEP_HELD_AT_EXIT), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("WARNING: ld-exiter/");
	assert_captured(" still has locks held!\n");
	assert_captured("2 locks held by ld-exiter/");
	assert_captured(" #0: ");
	assert_captured(" (exit_mutex){mutex}, at: exit_holding (");
	assert_captured(" (exit_rcu){rcu}, at: exit_holding (");

	/* The explicit hook reports the same problem, which is not new, and the destructor is
	 * quiet. */
	run_thread(exit_holding, (void *)1);
	run_thread(exit_holding, NULL);
	assert_int_equal(reported_all(), 1);
}

static void test_sleep_in_atomic(void **state)
{
	struct ms_lockdep_map spin, mutex;
	char head[200];
	int line = 0;

	ms_lockdep_init_map(&spin, "sleepy_spinlock", MS_LOCK_SPINLOCK);
	ms_lockdep_init_map(&mutex, "sleepy_mutex", MS_LOCK_MUTEX);
	ms_lock_acquire(&mutex, X);
	ms_might_sleep("fine under a mutex");
	ms_lock_release(&mutex);
	assert_int_equal(reported_all(), 0);

	for (int i = 0; i < 3; i++) {
		ms_lock_acquire(&spin, X);
		line = __LINE__ + 1;
		ms_might_sleep("wait for the gate");
		ms_lock_release(&spin);
	}
	assert_int_equal(reported(MS_LOCKDEP_SLEEP_IN_ATOMIC), 1);
	assert_int_equal(reported_all(), 1);
	snprintf(head, sizeof(head),
		 "BUG: sleeping function called from invalid context at %s:%d\n", __FILE__, line);
	assert_captured(head);
	assert_captured("in_atomic(): 1, spinlocks held: 1, RCU nest depth: 0");
	assert_captured("test_sleep_in_atomic() is about to sleep: wait for the gate\n");
	assert_captured(" (sleepy_spinlock){spinlock}");
}

static void test_sleep_in_rcu(void **state)
{
	struct ms_lockdep_map rcu;

	ms_lockdep_init_map(&rcu, "sleepy_rcu_read", MS_LOCK_RCU);
	for (int i = 0; i < 3; i++) {
		ms_lock_acquire(&rcu, SR);
		ms_lock_acquire(&rcu, SR);
		ms_might_sleep("synchronize_rcu");
		ms_lock_release(&rcu);
		ms_lock_release(&rcu);
	}
	assert_int_equal(reported(MS_LOCKDEP_SLEEP_IN_RCU), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("in_atomic(): 0, spinlocks held: 0, RCU nest depth: 2");
	assert_captured("is about to sleep: synchronize_rcu\n");
}

static void test_forbid_nesting(void **state)
{
	struct ms_lockdep_map callback, slots;
	int line;

	ms_lockdep_init_map(&callback, "rule_callback", MS_LOCK_PSEUDO);
	ms_lockdep_init_map(&slots, "rule_slots_lock", MS_LOCK_MUTEX);
	ms_lockdep_forbid_nesting(&callback, &slots, "rule: callbacks must not take slots_lock");
	ms_lockdep_forbid_nesting(&callback, &slots, "rule: callbacks must not take slots_lock");
	lock_pair(&slots, &callback);
	assert_int_equal(reported_all(), 0);

	for (int i = 0; i < 3; i++) {
		ms_lock_acquire(&callback, SR);
		line = __LINE__ + 1;
		ms_lock_acquire_try(&slots, X);
		ms_lock_release(&slots);
		ms_lock_release(&callback);
	}
	assert_int_equal(reported(MS_LOCKDEP_FORBIDDEN_NESTING), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("WARNING: forbidden lock nesting detected\n");
	assert_captured("rule: rule: callbacks must not take slots_lock\n");
	assert_captured(" (rule_slots_lock){mutex}, at: ");
	assert_captured_site("test_forbid_nesting", line);
	assert_captured(" (rule_callback){pseudo}, at: ");
}

/* A trylock does not wait: taking it against the known order is no cycle. */
static void test_trylock(void **state)
{
	struct ms_lockdep_map a, b;

	ms_lockdep_init_map(&a, "try_a", MS_LOCK_MUTEX);
	ms_lockdep_init_map(&b, "try_b", MS_LOCK_MUTEX);
	lock_pair(&a, &b);
	ms_lock_acquire(&b, X);
	ms_lock_acquire_try(&a, X);
	ms_lock_release(&a);
	ms_lock_release(&b);
	assert_int_equal(reported_all(), 0);
}

static void test_show_all_locks(void **state)
{
	struct ms_lockdep_map m;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ms_lockdep_init_map(&m, "shown_mutex", MS_LOCK_MUTEX);
	ms_lock_acquire(&m, X);
	ms_lockdep_show_all_locks(f);
	ms_lock_release(&m);
	fclose(f);
	assert_non_null(strstr(buf, "Showing all locks held in the system:\n"));
	assert_non_null(strstr(buf, " (shown_mutex){mutex}, at: test_show_all_locks ("));
	free(buf);
}

/* By default reports go to stderr, and never to stdout. */
static void test_default_output(void **state)
{
	struct ms_lockdep_map m;
	FILE *err = tmpfile();
	char text[4096] = "";
	int saved = dup(STDERR_FILENO);
	long at = ftell(stdout);

	ms_lockdep_init_map(&m, "stderr_mutex", MS_LOCK_MUTEX);
	ms_lockdep_set_output(NULL);
	fflush(stderr);
	dup2(fileno(err), STDERR_FILENO);
	ms_lock_release(&m);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(err);
	assert_true(fread(text, 1, sizeof(text) - 1, err) > 0);
	fclose(err);
	assert_non_null(strstr(text, "WARNING: bad unlock balance detected!"));
	assert_int_equal(ftell(stdout), at);
	assert_string_equal(captured(), "");
}

/* Threads taking the same order concurrently: nothing to report, nothing lost. */
#define ORDER_THREADS 4
#define ORDER_ROUNDS 2000

static struct ms_lockdep_map order_a, order_b, order_c, order_rcu;

static void *take_in_order(void *arg)
{
	for (int i = 0; i < ORDER_ROUNDS; i++) {
		ms_lock_acquire(&order_rcu, SR);
		ms_lock_acquire(&order_a, X);
		ms_lock_acquire(&order_b, i & 1 ? X : SR);
		ms_lock_acquire(&order_c, X);
		ms_lock_release(&order_c);
		ms_lock_release(&order_b);
		ms_lock_release(&order_a);
		ms_lock_release(&order_rcu);
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	pthread_t t[ORDER_THREADS];

	ms_lockdep_init_map(&order_a, "order_a", MS_LOCK_MUTEX);
	ms_lockdep_init_map(&order_b, "order_b", MS_LOCK_RWLOCK);
	ms_lockdep_init_map(&order_c, "order_c", MS_LOCK_SPINLOCK);
	ms_lockdep_init_map(&order_rcu, "order_rcu", MS_LOCK_RCU);
	for (int i = 0; i < ORDER_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, take_in_order, NULL), 0);
	for (int i = 0; i < ORDER_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(reported_all(), 0);
	assert_true(ms_lockdep_validating());
}

/* Last: running out of classes stops the validator for the rest of the process. */
static void test_exhausted(void **state)
{
	static char names[1100][24];
	static struct ms_lockdep_map maps[1100];

	for (int i = 0; i < 1100; i++) {
		snprintf(names[i], sizeof(names[i]), "exhaust_%d", i);
		ms_lockdep_init_map(&maps[i], names[i], MS_LOCK_MUTEX);
		ms_lock_acquire(&maps[i], X);
		ms_lock_release(&maps[i]);
	}
	assert_int_equal(reported(MS_LOCKDEP_EXHAUSTED), 1);
	assert_int_equal(reported_all(), 1);
	assert_captured("BUG: LOCKDEP_MAX_CLASSES too low!\n"
			"turning off the locking correctness validator.\n");
	assert_false(ms_lockdep_validating());
	assert_false(ms_lockdep_active);
	ms_lockdep_enable();
	assert_false(ms_lockdep_validating());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_abba_mutexes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abba_two_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abc_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aa_read_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recursive_read_cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recursive_read_mid_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recursive_read_against_writer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_upstream_rwsem_cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_count_gate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_unlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_owner_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphaned_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_at_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sleep_in_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sleep_in_rcu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forbid_nesting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trylock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_show_all_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exhausted, setup, teardown),
	};

	ms_lockdep_enable();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
