/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lock validator (docs/lockdep.md): lockdep for the library's locks and
 * its embedders'.  In this order: the pools and their types; the record of
 * reported problems; the dependency graph (classes keyed by the init site,
 * edges that remember both modes, the search for a cycle a writer can close);
 * the reports, in Linux lockdep's layout; the entry points and the checks made
 * at each annotation, over the held-lock stack of each thread.
 *
 * lockdep_lock, one mutex, protects everything here.  It is a leaf: nothing
 * that takes another lock or calls back into the library runs under it, so
 * the validator cannot deadlock the program.  All state is in fixed pools;
 * when one runs out, the validator says so once and stops validating.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* gettid(), pthread_getname_np() */
#endif
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "memslots_lockdep.h"

/* The pools.  The library itself uses about a dozen classes. */
#define LOCKDEP_MAX_CLASSES 1024
#define LOCKDEP_MAX_EDGES 16384
#define LOCKDEP_MAX_DEPTH 48
#define LOCKDEP_MAX_THREADS 512
#define LOCKDEP_MAX_RULES 64
#define LOCKDEP_MAX_REPORTED 4096
#define LOCKDEP_MAX_ORPHANS 1024

/*
 * The four kinds of dependency of Linux lockdep since 5.8: how the lock
 * already held was taken (Exclusive or Shared, recursive or not), and how
 * the new one is (Non-recursive: exclusive or a read that waits behind a
 * writer; or Recursive read).  One edge may carry several.
 */
enum {
	DEP_EN = 1 << 0,
	DEP_ER = 1 << 1,
	DEP_SN = 1 << 2,
	DEP_SR = 1 << 3,
};

struct lockdep_class {
	const char *name;
	const char *file; /* where the map was initialised */
	unsigned int line;
	enum ms_lock_kind kind;
	uint32_t first_out; /* edges from here: index + 1, 0 ends the list */
	uint32_t hash_next; /* index + 1 */
};

/* A dependency: class from was held while class to was acquired. */
struct lockdep_edge {
	uint32_t from, to;
	uint8_t types; /* DEP_* seen so far; the sites are of the first */
	enum ms_lock_mode held_mode, acquired_mode;
	struct ms_lockdep_site held_site, acquired_site;
	pid_t tid;
	char thread[16];
	uint32_t next_out;  /* index + 1 */
	uint32_t hash_next; /* index + 1 */
};

struct held_lock {
	struct ms_lockdep_map *map; /* the instance, for release */
	uint32_t class;
	enum ms_lock_mode mode;
	struct ms_lockdep_site site;
};

struct lockdep_thread {
	bool used;
	pid_t tid;
	pthread_t handle;
	unsigned int depth;
	struct held_lock held[LOCKDEP_MAX_DEPTH];
};

/* A path of dependencies from the lock being acquired to one already held. */
struct lockdep_path {
	unsigned int len;
	uint32_t edge[LOCKDEP_MAX_CLASSES];
	uint8_t type[LOCKDEP_MAX_CLASSES];
};

/* State: everything below is protected by lockdep_lock. */

bool ms_lockdep_active;
/* Set when a pool ran out: from then on nothing is validated. */
static bool lockdep_stopped;
static pthread_mutex_t lockdep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lockdep_thread lockdep_threads[LOCKDEP_MAX_THREADS];

/* The record of reported problems, so that each is reported once. */

static FILE *output; /* NULL: stderr */
static unsigned long report_counts[MS_LOCKDEP_NR_REPORT_KINDS];
/* Keys of the problems reported, open addressing; 0 marks a free slot. */
static uint64_t reported[LOCKDEP_MAX_REPORTED];
static unsigned int nr_reported;

static FILE *lockdep_output(void)
{
	return output ? output : stderr;
}

static uint64_t lockdep_hash(uint64_t h, uint64_t v)
{
	return (h ^ v) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
}

/* A pool ran out: say which, once, and stop validating for good. */
static void lockdep_exhausted(const char *limit)
{
	FILE *out = lockdep_output();

	if (lockdep_stopped)
		return;
	lockdep_stopped = true;
	__atomic_store_n(&ms_lockdep_active, false, __ATOMIC_RELAXED);
	report_counts[MS_LOCKDEP_EXHAUSTED]++;
	fprintf(out, "\nBUG: %s too low!\nturning off the locking correctness validator.\n", limit);
	fflush(out);
}

/*
 * True the first time a problem is seen: then it is counted and the caller
 * prints it.  The record is kept at most half full, for short probes; when it
 * would fill, the validator stops, so that nothing is ever reported twice.
 */
static bool lockdep_report_once(enum ms_lockdep_report_kind kind, uint64_t key)
{
	unsigned int i;

	key = lockdep_hash(key, kind) | 1;
	for (i = key % LOCKDEP_MAX_REPORTED; reported[i]; i = (i + 1) % LOCKDEP_MAX_REPORTED)
		if (reported[i] == key)
			return false;
	if (nr_reported == LOCKDEP_MAX_REPORTED / 2) {
		lockdep_exhausted("LOCKDEP_MAX_REPORTED");
		return false;
	}
	reported[i] = key;
	nr_reported++;
	report_counts[kind]++;
	return true;
}

unsigned long ms_lockdep_reports_of(enum ms_lockdep_report_kind kind)
{
	unsigned long n = 0;

	if ((unsigned int)kind >= MS_LOCKDEP_NR_REPORT_KINDS)
		return 0;
	pthread_mutex_lock(&lockdep_lock);
	n = report_counts[kind];
	pthread_mutex_unlock(&lockdep_lock);
	return n;
}

unsigned long ms_lockdep_reports(void)
{
	unsigned long n = 0;
	unsigned int k;

	pthread_mutex_lock(&lockdep_lock);
	for (k = 0; k < MS_LOCKDEP_NR_REPORT_KINDS; k++)
		n += report_counts[k];
	pthread_mutex_unlock(&lockdep_lock);
	return n;
}

/*
 * The dependency graph.  Classes and edges are never freed; lookups go
 * through chained hash tables of indices.
 */

#define CLASS_HASH_SIZE 2048
#define EDGE_HASH_SIZE 32768
#define NR_STATES (2 * LOCKDEP_MAX_CLASSES)

static struct lockdep_class lockdep_classes[LOCKDEP_MAX_CLASSES];
static struct lockdep_edge lockdep_edges[LOCKDEP_MAX_EDGES];

static uint32_t nr_classes, nr_edges;
/* Chain heads, index + 1, so that zeroed arrays are empty tables. */
static uint32_t class_hash[CLASS_HASH_SIZE];
static uint32_t edge_hash[EDGE_HASH_SIZE];

static uint64_t hash_string(uint64_t h, const char *s)
{
	while (s && *s)
		h = lockdep_hash(h, (unsigned char)*s++);
	return h;
}

static bool class_matches(const struct lockdep_class *c, const char *name, const char *file,
			  unsigned int line)
{
	return c->line == line && !strcmp(c->name, name) && !strcmp(c->file, file);
}

/* The map's class, registered on first use; false when the pool is full. */
static bool lockdep_class_of(struct ms_lockdep_map *map, uint32_t *class)
{
	const char *name = map->name ? map->name : "(unnamed)";
	const char *file = map->file ? map->file : "?";
	struct lockdep_class *c;
	uint32_t bucket, i;

	if (map->class_cache) {
		*class = (uint32_t)((struct lockdep_class *)map->class_cache - lockdep_classes);
		return true;
	}
	bucket = hash_string(hash_string(map->line, name), file) % CLASS_HASH_SIZE;
	for (i = class_hash[bucket]; i; i = lockdep_classes[i - 1].hash_next)
		if (class_matches(&lockdep_classes[i - 1], name, file, map->line))
			goto found;
	if (nr_classes == LOCKDEP_MAX_CLASSES)
		return false;
	c = &lockdep_classes[nr_classes++];
	*c = (struct lockdep_class){ name, file, map->line, map->kind, 0, class_hash[bucket] };
	i = class_hash[bucket] = nr_classes;
found:
	map->class_cache = &lockdep_classes[i - 1];
	*class = i - 1;
	return true;
}

static bool mode_is_shared(enum ms_lock_mode mode)
{
	return mode != MS_LOCK_EXCLUSIVE;
}

static bool mode_is_recursive(enum ms_lock_mode mode)
{
	return mode == MS_LOCK_SHARED_RECURSIVE;
}

static uint8_t lockdep_dep_type(enum ms_lock_mode held, enum ms_lock_mode acquired)
{
	if (mode_is_shared(held))
		return mode_is_recursive(acquired) ? DEP_SR : DEP_SN;
	return mode_is_recursive(acquired) ? DEP_ER : DEP_EN;
}

static uint32_t edge_bucket(uint32_t from, uint32_t to)
{
	return lockdep_hash(lockdep_hash(0, from), to) % EDGE_HASH_SIZE;
}

static struct lockdep_edge *lockdep_edge_find(uint32_t from, uint32_t to)
{
	uint32_t i;

	for (i = edge_hash[edge_bucket(from, to)]; i; i = lockdep_edges[i - 1].hash_next)
		if (lockdep_edges[i - 1].from == from && lockdep_edges[i - 1].to == to)
			return &lockdep_edges[i - 1];
	return NULL;
}

/* A new edge held -> next, recorded with where both were taken; NULL when full. */
static struct lockdep_edge *lockdep_edge_add(const struct held_lock *held,
					     const struct held_lock *next, const char *thread,
					     pid_t tid)
{
	uint32_t bucket = edge_bucket(held->class, next->class);
	struct lockdep_class *from = &lockdep_classes[held->class];
	struct lockdep_edge *e;

	if (nr_edges == LOCKDEP_MAX_EDGES)
		return NULL;
	e = &lockdep_edges[nr_edges++];
	*e = (struct lockdep_edge){
		.from = held->class,
		.to = next->class,
		.held_mode = held->mode,
		.acquired_mode = next->mode,
		.held_site = held->site,
		.acquired_site = next->site,
		.tid = tid,
		.next_out = from->first_out,
		.hash_next = edge_hash[bucket],
	};
	snprintf(e->thread, sizeof(e->thread), "%s", thread);
	from->first_out = edge_hash[bucket] = nr_edges;
	return e;
}

/*
 * Breadth-first search over states (class, whether the edge that led there
 * acquired it as a recursive read), so that the path found is the shortest
 * strong one: no -(xR)-> edge followed by an -(Sx)-> edge.  A recursive read
 * does not wait for a waiting writer, so a thread that got there by one and
 * holds the lock shared blocks nobody; the cycle is broken at that point.
 */
static uint32_t state_gen[NR_STATES], gen;
static uint32_t state_parent[NR_STATES], state_edge[NR_STATES];
static uint8_t state_type[NR_STATES];
static uint32_t queue[NR_STATES];

static void visit(uint32_t state, uint32_t parent, uint32_t edge, uint8_t type, uint32_t *tail)
{
	if (state_gen[state] == gen)
		return;
	state_gen[state] = gen;
	state_parent[state] = parent;
	state_edge[state] = edge;
	state_type[state] = type;
	queue[(*tail)++] = state;
}

static void expand(uint32_t state, uint32_t *tail)
{
	/* After -(xR)->, only a lock held exclusively can make anyone wait. */
	uint8_t allowed = state & 1 ? DEP_EN | DEP_ER : DEP_EN | DEP_ER | DEP_SN | DEP_SR;
	uint32_t i;

	for (i = lockdep_classes[state / 2].first_out; i; i = lockdep_edges[i - 1].next_out) {
		const struct lockdep_edge *e = &lockdep_edges[i - 1];
		uint8_t m = e->types & allowed;

		if (m & (DEP_EN | DEP_SN))
			visit(e->to * 2, state, i - 1, m & DEP_EN ? DEP_EN : DEP_SN, tail);
		if (m & (DEP_ER | DEP_SR))
			visit(e->to * 2 + 1, state, i - 1, m & DEP_ER ? DEP_ER : DEP_SR, tail);
	}
}

static void build_path(uint32_t start, uint32_t state, struct lockdep_path *path)
{
	uint32_t n = 0, s, i;

	for (s = state; s != start; s = state_parent[s])
		n++;
	path->len = n;
	for (s = state, i = n; s != start; s = state_parent[s]) {
		i--;
		path->edge[i] = state_edge[s];
		path->type[i] = state_type[s];
	}
}

/*
 * Is there a strong path from class from, just acquired in from_mode, to
 * class to, held in to_mode?  Together with the edge to -> from that would
 * close it, it makes a cycle whose every junction a writer can block.
 */
static bool lockdep_find_path(uint32_t from, enum ms_lock_mode from_mode, uint32_t to,
			      enum ms_lock_mode to_mode, struct lockdep_path *path)
{
	uint32_t start = from * 2 + mode_is_recursive(from_mode);
	uint32_t head = 0, tail = 0, s;

	if (++gen == 0) {
		memset(state_gen, 0, sizeof(state_gen));
		gen = 1;
	}
	visit(start, start, 0, 0, &tail);
	while (head < tail) {
		s = queue[head++];
		/* Reached by a recursive read, a shared hold of to waits for nobody. */
		if (s / 2 == to && !(s & 1 && mode_is_shared(to_mode))) {
			build_path(start, s, path);
			return true;
		}
		expand(s, &tail);
	}
	return false;
}

/* Reports, in the layout of Linux lockdep's; sites stand in for its stack traces. */

static void lockdep_task_name(pthread_t handle, pid_t tid, char *buf, size_t size)
{
	char name[16] = "?";

	pthread_getname_np(handle, name, sizeof(name));
	snprintf(buf, size, "%s/%d", name, (int)tid);
}

static const char *kind_name(enum ms_lock_kind kind)
{
	static const char *const names[] = {
		[MS_LOCK_SPINLOCK] = "spinlock", [MS_LOCK_MUTEX] = "mutex",
		[MS_LOCK_RWSEM] = "rwsem",	 [MS_LOCK_RWLOCK] = "rwlock",
		[MS_LOCK_RCU] = "rcu",		 [MS_LOCK_PSEUDO] = "pseudo",
	};

	return (unsigned int)kind <= MS_LOCK_PSEUDO ? names[kind] : "?";
}

/* How a lock was taken, as a phrase to follow "acquired" or "holding X". */
static const char *mode_phrase(enum ms_lock_mode mode)
{
	switch (mode) {
	case MS_LOCK_SHARED:
		return " for read";
	case MS_LOCK_SHARED_RECURSIVE:
		return " for recursive read";
	default:
		return "";
	}
}

static const char *dep_name(uint8_t type)
{
	switch (type) {
	case DEP_EN:
		return "EN";
	case DEP_ER:
		return "ER";
	case DEP_SN:
		return "SN";
	default:
		return "SR";
	}
}

static const char *str(const char *s)
{
	return s ? s : "?";
}

static void print_site(FILE *out, struct ms_lockdep_site site)
{
	fprintf(out, "%s (%s:%u)", str(site.func), str(site.file), site.line);
}

static void print_class(FILE *out, uint32_t class)
{
	const struct lockdep_class *c = &lockdep_classes[class];

	fprintf(out, "(%s){%s}", c->name, kind_name(c->kind));
}

static void print_lock(FILE *out, const struct held_lock *h)
{
	fprintf(out, "%p ", (void *)h->map);
	print_class(out, h->class);
	fprintf(out, ", at: ");
	print_site(out, h->site);
	if (h->mode == MS_LOCK_SHARED)
		fprintf(out, " [read]");
	if (h->mode == MS_LOCK_SHARED_RECURSIVE)
		fprintf(out, " [recursive read]");
	fprintf(out, "\n");
}

static void lockdep_print_held_locks(FILE *out, const struct lockdep_thread *t)
{
	char task[48];
	unsigned int i;

	lockdep_task_name(t->handle, t->tid, task, sizeof(task));
	if (!t->depth) {
		fprintf(out, "no locks held by %s.\n", task);
		return;
	}
	fprintf(out, "%u lock%s held by %s:\n", t->depth, t->depth > 1 ? "s" : "", task);
	for (i = 0; i < t->depth; i++) {
		fprintf(out, " #%u: ", i);
		print_lock(out, &t->held[i]);
	}
}

static void print_header(FILE *out, const char *title)
{
	size_t n = strlen(title) + 9, i;

	fprintf(out, "\n");
	for (i = 0; i < n; i++)
		fputc('=', out);
	fprintf(out, "\nWARNING: %s\nmemslots lock validator\n", title);
	for (i = 0; i < n; i++)
		fputc('-', out);
	fprintf(out, "\n");
}

static void print_trying(FILE *out, const struct lockdep_thread *t, const struct held_lock *held,
			 const struct held_lock *next)
{
	char task[48];

	lockdep_task_name(t->handle, t->tid, task, sizeof(task));
	fprintf(out, "%s is trying to acquire lock:\n", task);
	print_lock(out, next);
	fprintf(out, "\nbut task is already holding lock:\n");
	print_lock(out, held);
}

static void print_footer(FILE *out, const struct lockdep_thread *t)
{
	fprintf(out, "\n");
	lockdep_print_held_locks(out, t);
	fprintf(out, "\n");
	fflush(out);
}

/* One link of the chain: the edge into a class and where it was first seen. */
static void print_link(FILE *out, unsigned int n, const struct lockdep_edge *e, uint8_t type)
{
	fprintf(out, "\n-> #%u ", n);
	print_class(out, e->to);
	fprintf(out, ":\n       -(%s)-> first recorded by %s/%d:\n       acquired%s at ",
		dep_name(type), e->thread, (int)e->tid, mode_phrase(e->acquired_mode));
	print_site(out, e->acquired_site);
	fprintf(out, "\n       while holding %s%s, taken at ", lockdep_classes[e->from].name,
		mode_phrase(e->held_mode));
	print_site(out, e->held_site);
	fprintf(out, "\n");
}

static void print_new_link(FILE *out, const struct lockdep_thread *t, const struct held_lock *held,
			   const struct held_lock *next)
{
	char task[48];

	lockdep_task_name(t->handle, t->tid, task, sizeof(task));
	fprintf(out, "\n-> #0 ");
	print_class(out, next->class);
	fprintf(out, ":\n       -(%s)-> now, by %s:\n       acquired%s at ",
		dep_name(lockdep_dep_type(held->mode, next->mode)), task, mode_phrase(next->mode));
	print_site(out, next->site);
	fprintf(out, "\n       while holding %s%s, taken at ", lockdep_classes[held->class].name,
		mode_phrase(held->mode));
	print_site(out, held->site);
	fprintf(out, "\n");
}

static void print_lock_call(FILE *out, const char *indent, enum ms_lock_mode mode, uint32_t class)
{
	fprintf(out, "%s%s(%s);\n", indent, mode == MS_LOCK_EXCLUSIVE ? "lock" : "rlock",
		lockdep_classes[class].name);
}

/*
 * CPU0 holds the lock this thread holds and wants the new one; CPU1 got to
 * the held lock's predecessor in the chain and wants the held lock.
 */
static void print_scenario(FILE *out, const struct held_lock *held, const struct held_lock *next,
			   const struct lockdep_edge *last)
{
	static const char cpu1[] = "                               ";

	if (last->from != next->class)
		fprintf(out, "Chain exists of:\n  %s --> %s --> %s\n\n",
			lockdep_classes[next->class].name, lockdep_classes[last->from].name,
			lockdep_classes[held->class].name);
	fprintf(out, " Possible unsafe locking scenario:\n\n"
		     "       CPU0                    CPU1\n"
		     "       ----                    ----\n");
	print_lock_call(out, "  ", held->mode, held->class);
	print_lock_call(out, cpu1, last->held_mode, last->from);
	print_lock_call(out, cpu1, last->acquired_mode, held->class);
	print_lock_call(out, "  ", next->mode, next->class);
	fprintf(out, "\n *** DEADLOCK ***\n");
}

/* A non-recursive read in the cycle: say why it counts, since it is no exclusion by itself. */
static void print_read_note(FILE *out, const struct held_lock *next, const struct lockdep_path *p)
{
	const char *name = NULL;
	unsigned int i;

	if (next->mode == MS_LOCK_SHARED)
		name = lockdep_classes[next->class].name;
	for (i = 0; i < p->len && !name; i++)
		if (lockdep_edges[p->edge[i]].acquired_mode == MS_LOCK_SHARED)
			name = lockdep_classes[lockdep_edges[p->edge[i]].to].name;
	if (name)
		fprintf(out,
			"\n rlock(%s) is a non-recursive read: it waits behind a waiting writer,\n"
			" so a third thread that waits to write-lock %s completes the deadlock.\n",
			name, name);
}

static void lockdep_print_circular(const struct lockdep_thread *t, const struct held_lock *held,
				   const struct held_lock *next, const struct lockdep_path *path)
{
	FILE *out = lockdep_output();
	unsigned int i;

	print_header(out, "possible circular locking dependency detected");
	print_trying(out, t, held, next);
	fprintf(out, "\nwhich lock already depends on the new lock.\n\n"
		     "\nthe existing dependency chain (in reverse order) is:\n");
	for (i = path->len; i > 0; i--)
		print_link(out, i, &lockdep_edges[path->edge[i - 1]], path->type[i - 1]);
	print_new_link(out, t, held, next);
	fprintf(out, "\nother info that might help us debug this:\n\n");
	print_scenario(out, held, next, &lockdep_edges[path->edge[path->len - 1]]);
	print_read_note(out, next, path);
	print_footer(out, t);
}

static void lockdep_print_recursive(const struct lockdep_thread *t, const struct held_lock *held,
				    const struct held_lock *next)
{
	FILE *out = lockdep_output();

	print_header(out, "possible recursive locking detected");
	print_trying(out, t, held, next);
	fprintf(out, "\nother info that might help us debug this:\n"
		     " Possible unsafe locking scenario:\n\n"
		     "       CPU0\n"
		     "       ----\n");
	print_lock_call(out, "  ", held->mode, held->class);
	print_lock_call(out, "  ", next->mode, next->class);
	fprintf(out, "\n *** DEADLOCK ***\n\n May be due to missing lock nesting notation\n");
	if (next->mode == MS_LOCK_SHARED)
		fprintf(out, " (a non-recursive read waits behind a writer that waits for the "
			     "first hold)\n");
	print_footer(out, t);
}

static void lockdep_print_forbidden(const struct lockdep_thread *t, const struct held_lock *held,
				    const struct held_lock *next, const char *rule)
{
	FILE *out = lockdep_output();

	print_header(out, "forbidden lock nesting detected");
	fprintf(out, "rule: %s\n\n", str(rule));
	print_trying(out, t, held, next);
	print_footer(out, t);
}

static void lockdep_print_bad_unlock(const struct lockdep_thread *t, struct ms_lockdep_map *map,
				     struct ms_lockdep_site site)
{
	FILE *out = lockdep_output();
	char task[48];

	lockdep_task_name(t->handle, t->tid, task, sizeof(task));
	print_header(out, "bad unlock balance detected!");
	fprintf(out, "%s is trying to release lock (%s) at:\n", task, str(map->name));
	print_site(out, site);
	fprintf(out, "\nbut there are no more locks to release!\n\n"
		     "other info that might help us debug this:\n");
	lockdep_print_held_locks(out, t);
	fprintf(out, "\n");
	fflush(out);
}

static void lockdep_print_held_at_exit(const struct lockdep_thread *t)
{
	FILE *out = lockdep_output();
	char task[48], title[80];

	lockdep_task_name(t->handle, t->tid, task, sizeof(task));
	snprintf(title, sizeof(title), "%s still has locks held!", task);
	print_header(out, title);
	fprintf(out, "the thread is exiting.\n");
	print_footer(out, t);
}

static void lockdep_print_held_lock_freed(const struct lockdep_thread *t, const struct held_lock *h,
					  const void *addr, size_t size,
					  struct ms_lockdep_site site)
{
	FILE *out = lockdep_output();
	char task[48];

	lockdep_task_name(pthread_self(), gettid(), task, sizeof(task));
	print_header(out, "held lock freed!");
	fprintf(out, "%s is freeing memory %p-%p, at: ", task, addr,
		(void *)((uintptr_t)addr + size - 1));
	print_site(out, site);
	fprintf(out, ", with a lock still held there!\n");
	print_lock(out, h);
	print_footer(out, t);
}

static void lockdep_print_sleep(const struct lockdep_thread *t, const char *what,
				struct ms_lockdep_site site, unsigned int spinlocks,
				unsigned int rcu)
{
	FILE *out = lockdep_output();
	char task[48];

	lockdep_task_name(t->handle, t->tid, task, sizeof(task));
	fprintf(out,
		"\nBUG: sleeping function called from invalid context at %s:%u\n"
		"in_atomic(): %d, spinlocks held: %u, RCU nest depth: %u, expected: 0, task: %s\n"
		"%s() is about to sleep: %s\n",
		str(site.file), site.line, spinlocks > 0, spinlocks, rcu, task, str(site.func),
		str(what));
	print_footer(out, t);
}

/* Entry points, the held-lock stacks and the checks made at each annotation. */

struct forbidden_nesting {
	uint32_t outer, inner;
	const char *rule;
};

static struct forbidden_nesting rules[LOCKDEP_MAX_RULES];
static unsigned int nr_rules;

/*
 * Shared holds of pseudo-locks and rwsems whose thread exited: an
 * invalidation started there may still be ended by another thread.  The
 * oldest is dropped when the array is full.
 */
static struct held_lock orphans[LOCKDEP_MAX_ORPHANS];
static unsigned int nr_orphans;

/* Its destructor checks a thread's stack when the thread exits. */
static pthread_key_t thread_key;
static __thread struct lockdep_thread *lockdep_self;

static void forget_thread(struct lockdep_thread *t);

static void thread_destructor(void *p)
{
	pthread_mutex_lock(&lockdep_lock);
	forget_thread(p);
	pthread_mutex_unlock(&lockdep_lock);
}

/* The key is made before main, so that it is one of the first and never allocates. */
__attribute__((constructor)) static void lockdep_init(void)
{
	const char *env = getenv("MEMSLOTS_LOCKDEP");

	pthread_key_create(&thread_key, thread_destructor);
	if (env && !strcmp(env, "1"))
		ms_lockdep_enable();
}

void ms_lockdep_enable(void)
{
	pthread_mutex_lock(&lockdep_lock);
	if (!lockdep_stopped)
		__atomic_store_n(&ms_lockdep_active, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&lockdep_lock);
}

bool ms_lockdep_validating(void)
{
	bool on;

	pthread_mutex_lock(&lockdep_lock);
	on = __atomic_load_n(&ms_lockdep_active, __ATOMIC_RELAXED) && !lockdep_stopped;
	pthread_mutex_unlock(&lockdep_lock);
	return on;
}

void ms_lockdep_set_output(FILE *out)
{
	pthread_mutex_lock(&lockdep_lock);
	output = out;
	pthread_mutex_unlock(&lockdep_lock);
}

void ms_lockdep_init_map_at(struct ms_lockdep_map *map, const char *name, enum ms_lock_kind kind,
			    const char *file, unsigned int line)
{
	*map = (struct ms_lockdep_map){ name, kind, file, line, NULL };
}

static struct lockdep_thread *current_thread(void)
{
	struct lockdep_thread *t;
	unsigned int i;

	if (lockdep_self)
		return lockdep_self;
	for (i = 0; i < LOCKDEP_MAX_THREADS && lockdep_threads[i].used; i++)
		;
	if (i == LOCKDEP_MAX_THREADS) {
		lockdep_exhausted("LOCKDEP_MAX_THREADS");
		return NULL;
	}
	t = &lockdep_threads[i];
	*t = (struct lockdep_thread){ .used = true, .tid = gettid(), .handle = pthread_self() };
	lockdep_self = t;
	pthread_setspecific(thread_key, t);
	return t;
}

static uint64_t hash_site(uint64_t h, struct ms_lockdep_site site)
{
	return lockdep_hash(hash_string(h, site.file), site.line);
}

/*
 * A shared hold of a pseudo-lock or an rwsem belongs to no thread: an
 * invalidation may start on one thread and end on another (the kernel's
 * up_read_non_owner()).
 */
static bool hold_is_ownerless(const struct held_lock *h)
{
	enum ms_lock_kind kind = lockdep_classes[h->class].kind;

	return h->mode != MS_LOCK_EXCLUSIVE && (kind == MS_LOCK_PSEUDO || kind == MS_LOCK_RWSEM);
}

static void orphan(const struct held_lock *h)
{
	if (nr_orphans == LOCKDEP_MAX_ORPHANS)
		memmove(&orphans[0], &orphans[1], --nr_orphans * sizeof(orphans[0]));
	orphans[nr_orphans++] = *h;
}

static void remove_held(struct held_lock *held, unsigned int *depth, unsigned int i)
{
	memmove(&held[i], &held[i + 1], (*depth - i - 1) * sizeof(held[0]));
	(*depth)--;
}

/* Ownerless holds outlive the thread; any other is reported. */
static void check_held_at_exit(struct lockdep_thread *t)
{
	uint64_t key = 0;
	unsigned int i;

	for (i = t->depth; i-- > 0;) {
		if (hold_is_ownerless(&t->held[i])) {
			orphan(&t->held[i]);
			remove_held(t->held, &t->depth, i);
		}
	}
	if (lockdep_stopped || !t->depth)
		return;
	for (i = 0; i < t->depth; i++)
		key = hash_site(lockdep_hash(key, t->held[i].class), t->held[i].site);
	if (lockdep_report_once(MS_LOCKDEP_HELD_AT_EXIT, key))
		lockdep_print_held_at_exit(t);
}

static void forget_thread(struct lockdep_thread *t)
{
	check_held_at_exit(t);
	t->used = false;
	t->depth = 0;
	lockdep_self = NULL;
}

void ms_lockdep_thread_exit(void)
{
	pthread_mutex_lock(&lockdep_lock);
	if (lockdep_self)
		forget_thread(lockdep_self);
	pthread_mutex_unlock(&lockdep_lock);
	pthread_setspecific(thread_key, NULL);
}

static void check_forbidden(const struct lockdep_thread *t, const struct held_lock *next)
{
	unsigned int r, i;

	for (r = 0; r < nr_rules; r++) {
		if (rules[r].inner != next->class)
			continue;
		for (i = t->depth; i-- > 0;) {
			if (t->held[i].class != rules[r].outer)
				continue;
			if (lockdep_report_once(MS_LOCKDEP_FORBIDDEN_NESTING, r))
				lockdep_print_forbidden(t, &t->held[i], next, rules[r].rule);
			break;
		}
	}
}

/* AA: only a recursive read may be taken again over a shared hold of its class. */
static void check_recursive(const struct lockdep_thread *t, const struct held_lock *next)
{
	unsigned int i;

	for (i = t->depth; i-- > 0;) {
		const struct held_lock *h = &t->held[i];

		if (h->class != next->class)
			continue;
		if (next->mode == MS_LOCK_SHARED_RECURSIVE && h->mode != MS_LOCK_EXCLUSIVE)
			return;
		if (lockdep_report_once(MS_LOCKDEP_RECURSIVE, h->class))
			lockdep_print_recursive(t, h, next);
		return;
	}
}

static int compare_classes(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* A cycle is the same problem whichever of its edges closes it: key it by its classes. */
static uint64_t cycle_key(uint32_t next, const struct lockdep_path *path)
{
	static uint32_t classes[LOCKDEP_MAX_CLASSES + 1];
	uint64_t key = 0;
	unsigned int i;

	classes[0] = next;
	for (i = 0; i < path->len; i++)
		classes[i + 1] = lockdep_edges[path->edge[i]].to;
	qsort(classes, path->len + 1, sizeof(classes[0]), compare_classes);
	for (i = 0; i <= path->len; i++)
		key = lockdep_hash(key, classes[i]);
	return key;
}

/*
 * held -> next.  A kind of dependency already known was checked when it was
 * first recorded; a new one is checked for a cycle through the graph and then
 * added even when it closes one, so that the cycle is not found again.
 */
static void add_dependency(const struct lockdep_thread *t, const struct held_lock *held,
			   const struct held_lock *next)
{
	static struct lockdep_path path;
	uint8_t type = lockdep_dep_type(held->mode, next->mode);
	struct lockdep_edge *e = lockdep_edge_find(held->class, next->class);
	char name[16] = "?";

	if (e && e->types & type)
		return;
	if (lockdep_find_path(next->class, next->mode, held->class, held->mode, &path) &&
	    lockdep_report_once(MS_LOCKDEP_CIRCULAR, cycle_key(next->class, &path)))
		lockdep_print_circular(t, held, next, &path);
	if (!e) {
		pthread_getname_np(pthread_self(), name, sizeof(name));
		e = lockdep_edge_add(held, next, name, t->tid);
	}
	if (!e) {
		lockdep_exhausted("LOCKDEP_MAX_EDGES");
		return;
	}
	e->types |= type;
}

/*
 * Every lock held now was held while next was waited for.  Linux records only
 * the edge from the newest lock and relies on the chain through the others;
 * recording all of them keeps dependencies that a recursive read in the
 * middle of the stack would otherwise hide from the cycle search.
 */
static void check_dependencies(const struct lockdep_thread *t, const struct held_lock *next)
{
	unsigned int i;

	for (i = 0; i < t->depth && !lockdep_stopped; i++)
		if (t->held[i].class != next->class)
			add_dependency(t, &t->held[i], next);
}

void ms_lockdep_acquire_at(struct ms_lockdep_map *map, enum ms_lock_mode mode, bool trylock,
			   struct ms_lockdep_site site)
{
	struct held_lock next = { map, 0, mode, site };
	struct lockdep_thread *t;

	pthread_mutex_lock(&lockdep_lock);
	if (lockdep_stopped || !(t = current_thread()))
		goto out;
	if (!lockdep_class_of(map, &next.class)) {
		lockdep_exhausted("LOCKDEP_MAX_CLASSES");
		goto out;
	}
	check_forbidden(t, &next);
	/* A trylock does not wait, so it cannot close a cycle. */
	if (!trylock) {
		check_recursive(t, &next);
		check_dependencies(t, &next);
	}
	if (t->depth == LOCKDEP_MAX_DEPTH)
		lockdep_exhausted("LOCKDEP_MAX_DEPTH");
	else if (!lockdep_stopped)
		t->held[t->depth++] = next;
out:
	pthread_mutex_unlock(&lockdep_lock);
}

static bool pop_held(struct held_lock *held, unsigned int *depth, const struct ms_lockdep_map *map,
		     bool ownerless_only)
{
	unsigned int i;

	for (i = *depth; i-- > 0;) {
		if (held[i].map != map)
			continue;
		if (ownerless_only && !hold_is_ownerless(&held[i]))
			return false;
		remove_held(held, depth, i);
		return true;
	}
	return false;
}

/* An ownerless hold may be released by any thread: look for it everywhere. */
static bool pop_held_elsewhere(const struct lockdep_thread *self, struct ms_lockdep_map *map)
{
	struct lockdep_thread *t;

	for (t = lockdep_threads; t < lockdep_threads + LOCKDEP_MAX_THREADS; t++)
		if (t != self && t->used && pop_held(t->held, &t->depth, map, true))
			return true;
	return pop_held(orphans, &nr_orphans, map, true);
}

void ms_lockdep_release_at(struct ms_lockdep_map *map, struct ms_lockdep_site site)
{
	struct lockdep_thread *t;
	uint32_t class;

	pthread_mutex_lock(&lockdep_lock);
	if (lockdep_stopped || !(t = current_thread()))
		goto out;
	if (pop_held(t->held, &t->depth, map, false) || pop_held_elsewhere(t, map))
		goto out;
	if (!lockdep_class_of(map, &class)) {
		lockdep_exhausted("LOCKDEP_MAX_CLASSES");
		goto out;
	}
	if (lockdep_report_once(MS_LOCKDEP_BAD_UNLOCK, hash_site(class, site)))
		lockdep_print_bad_unlock(t, map, site);
out:
	pthread_mutex_unlock(&lockdep_lock);
}

void ms_lockdep_might_sleep_at(const char *what, struct ms_lockdep_site site)
{
	const struct held_lock *culprit = NULL;
	unsigned int spinlocks = 0, rcu = 0, i;
	struct lockdep_thread *t = lockdep_self;
	enum ms_lockdep_report_kind kind;

	pthread_mutex_lock(&lockdep_lock);
	if (lockdep_stopped || !t)
		goto out;
	for (i = 0; i < t->depth; i++) {
		enum ms_lock_kind k = lockdep_classes[t->held[i].class].kind;

		if (k == MS_LOCK_SPINLOCK && !spinlocks++)
			culprit = &t->held[i];
		if (k == MS_LOCK_RCU && !rcu++ && !spinlocks)
			culprit = &t->held[i];
	}
	if (!culprit)
		goto out;
	kind = spinlocks ? MS_LOCKDEP_SLEEP_IN_ATOMIC : MS_LOCKDEP_SLEEP_IN_RCU;
	if (lockdep_report_once(kind, hash_site(culprit->class, site)))
		lockdep_print_sleep(t, what, site, spinlocks, rcu);
out:
	pthread_mutex_unlock(&lockdep_lock);
}

void ms_lockdep_forbid_nesting(struct ms_lockdep_map *outer, struct ms_lockdep_map *inner,
			       const char *rule)
{
	uint32_t o, i;
	unsigned int r;

	pthread_mutex_lock(&lockdep_lock);
	if (lockdep_stopped)
		goto out;
	if (!lockdep_class_of(outer, &o) || !lockdep_class_of(inner, &i)) {
		lockdep_exhausted("LOCKDEP_MAX_CLASSES");
		goto out;
	}
	for (r = 0; r < nr_rules; r++)
		if (rules[r].outer == o && rules[r].inner == i)
			goto out;
	if (nr_rules == LOCKDEP_MAX_RULES)
		lockdep_exhausted("LOCKDEP_MAX_RULES");
	else
		rules[nr_rules++] = (struct forbidden_nesting){ o, i, rule };
out:
	pthread_mutex_unlock(&lockdep_lock);
}

static bool in_range(const struct held_lock *h, const void *addr, size_t size)
{
	return (uintptr_t)h->map - (uintptr_t)addr < size;
}

static void forget_freed(struct lockdep_thread *t, const void *addr, size_t size,
			 struct ms_lockdep_site site)
{
	unsigned int i;

	for (i = t->depth; i-- > 0;) {
		if (!in_range(&t->held[i], addr, size))
			continue;
		if (!hold_is_ownerless(&t->held[i]) &&
		    lockdep_report_once(MS_LOCKDEP_HELD_LOCK_FREED,
					hash_site(t->held[i].class, t->held[i].site)))
			lockdep_print_held_lock_freed(t, &t->held[i], addr, size, site);
		remove_held(t->held, &t->depth, i);
	}
}

void ms_lockdep_free_range_at(const void *addr, size_t size, struct ms_lockdep_site site)
{
	unsigned int i;

	pthread_mutex_lock(&lockdep_lock);
	if (lockdep_stopped)
		goto out;
	for (i = 0; i < LOCKDEP_MAX_THREADS; i++)
		if (lockdep_threads[i].used)
			forget_freed(&lockdep_threads[i], addr, size, site);
	for (i = nr_orphans; i-- > 0;)
		if (in_range(&orphans[i], addr, size))
			remove_held(orphans, &nr_orphans, i);
out:
	pthread_mutex_unlock(&lockdep_lock);
}

void ms_lockdep_show_all_locks(FILE *out)
{
	unsigned int i;

	pthread_mutex_lock(&lockdep_lock);
	fprintf(out, "\nShowing all locks held in the system:\n");
	for (i = 0; i < LOCKDEP_MAX_THREADS; i++)
		if (lockdep_threads[i].used && lockdep_threads[i].depth)
			lockdep_print_held_locks(out, &lockdep_threads[i]);
	fprintf(out, "\n=============================================\n\n");
	fflush(out);
	pthread_mutex_unlock(&lockdep_lock);
}
