/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The tools' shared option wording; see cli.h. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *prog = "memslots";

void cli_init(const char *name)
{
	prog = name;
}

_Noreturn void cli_version(void)
{
	printf("%s %s\n", prog, MS_VERSION_STRING);
	exit(0);
}

_Noreturn void cli_bad_value(const char *opt, const char *value, const char *expected)
{
	fprintf(stderr, "%s: bad value for --%s: '%s' (expected %s)\n", prog, opt, value, expected);
	exit(CLI_EXIT_USAGE);
}

_Noreturn void cli_refuse(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(CLI_EXIT_USAGE);
}

_Noreturn void cli_bad_option(int c, char **argv)
{
	const char *arg = argv[optind - 1];
	size_t len = strcspn(arg, "=");

	/* getopt has already stepped past the option; "--gate=x" is named as "--gate". */
	if (c == ':')
		fprintf(stderr, "%s: option '%.*s' needs a value (see --help)\n", prog, (int)len,
			arg);
	else if (optopt && arg[0] == '-' && arg[1] != '-')
		fprintf(stderr, "%s: unknown option '-%c' (see --help)\n", prog, optopt);
	else
		fprintf(stderr, "%s: unknown option '%.*s' (see --help)\n", prog, (int)len, arg);
	exit(CLI_EXIT_USAGE);
}

_Noreturn void cli_extra_argument(const char *arg)
{
	fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, arg);
	exit(CLI_EXIT_USAGE);
}

unsigned long long cli_uint(const char *opt, const char *s, unsigned long long min,
			    unsigned long long max)
{
	char expected[96], *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || *end || errno || s[0] == '-' || v < min || v > max) {
		snprintf(expected, sizeof(expected), "an integer from %llu to %llu", min, max);
		cli_bad_value(opt, s, expected);
	}
	return v;
}

double cli_seconds(const char *opt, const char *s, double min, double max)
{
	char expected[96], *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= min && v <= max)) {
		snprintf(expected, sizeof(expected), "seconds from %g to %g", min, max);
		cli_bad_value(opt, s, expected);
	}
	return v;
}

void cli_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static const char *const gate_names[] = { "count", "rwsem", "none", "fair" };

const char *cli_gate_name(int gate)
{
	return gate >= 0 && gate < (int)(sizeof(gate_names) / sizeof(gate_names[0]))
		       ? gate_names[gate]
		       : "?";
}

int cli_gate(const char *s)
{
	for (size_t i = 0; i < sizeof(gate_names) / sizeof(gate_names[0]); i++)
		if (!strcmp(s, gate_names[i]))
			return (int)i;
	cli_bad_value("gate", s, CLI_GATES);
}
