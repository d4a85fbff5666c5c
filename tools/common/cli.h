/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Option handling shared by memslots-stress and memslots-bench, so that
 * both word a bad option the same way (one line on stderr, exit 2) and
 * print the same --version.  A program reading their output can then rely
 * on exit 2 meaning "not run: fix the command line".
 */
#ifndef MEMSLOTS_TOOLS_CLI_H
#define MEMSLOTS_TOOLS_CLI_H

#include <stdio.h>

#define CLI_EXIT_USAGE 2

/* The tool's name for messages, e.g. "memslots-stress". */
void cli_init(const char *prog);
/* "PROG VERSION" on stdout, exit 0. */
_Noreturn void cli_version(void);
/* "PROG: bad value for --OPT: 'VALUE' (expected EXPECTED)", exit 2. */
_Noreturn void cli_bad_value(const char *opt, const char *value, const char *expected);
/* "PROG: MESSAGE", exit 2: a combination of options that cannot be honoured. */
_Noreturn void cli_refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * What getopt_long (optstring starting with ':') returned for a bad option,
 * 'c' being '?' or ':': unknown option, or option missing its value; exit 2.
 */
_Noreturn void cli_bad_option(int c, char **argv);
/* An operand where none is taken; exit 2. */
_Noreturn void cli_extra_argument(const char *arg);
/* Decimal integer in [min, max], else cli_bad_value. */
unsigned long long cli_uint(const char *opt, const char *s, unsigned long long min,
			    unsigned long long max);
/* Seconds (a decimal number) in [min, max], else cli_bad_value. */
double cli_seconds(const char *opt, const char *s, double min, double max);
/* The gate designs by their option names, in enum ms_gate's order. */
#define CLI_GATES "count, rwsem, none or fair"
const char *cli_gate_name(int gate);
/* --gate's value, else cli_bad_value. */
int cli_gate(const char *s);
/* A JSON string literal for s: quotes, backslashes and control bytes escaped. */
void cli_json_string(FILE *f, const char *s);

#endif
