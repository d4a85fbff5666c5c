/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What bench.c shares with the scenarios kept in files of their own: the
 * options, the figure records and text output, and the VM and thread
 * helpers, so that every scenario reports the same way.
 */
#ifndef MEMSLOTS_BENCH_H
#define MEMSLOTS_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "memslots.h"

struct bench_opt {
	bool quick, csv, json, check;
	const char *only, *plot_dir;
	/* --duration, seconds; 0: the scenario's own default. */
	double duration;
	int rows;
	/* A figure or chart that could not be produced: exit 1, result "error". */
	bool failed;
	/* Targets reported MISSED: with --check, exit 3, result "missed". */
	unsigned int missed;
};

extern struct bench_opt opt;

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

double now_ns(void);
const char *fig(char *buf, size_t size, const char *fmt, double v);
void record(const struct figure *f, double value);
void table(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void target(const char *what, double value, const char *unit, bool met);
struct ms_vm *vm_with(enum ms_gate gate, bool no_elision);
double load_avg(void);
int allowed_cpu(unsigned int i);
void pin_self(int cpu);
void create_pinned(pthread_t *t, int cpu, void *(*fn)(void *), void *arg);

/* memslot_perf.c */
void scenario_memslot_perf(void);
/* zap.c */
void scenario_zap(void);

#endif /* MEMSLOTS_BENCH_H */
