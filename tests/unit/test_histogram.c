/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tools' latency histogram (tools/common/histogram.h): what it promises
 * is what the tools print, so each promise is checked against a sorted copy
 * of the same samples: reported values at most 1/32 above the true
 * nearest-rank percentile and never below it, exact extremes, and no
 * percentile that the sample count does not support.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "histogram.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void test_small_values_exact(void **state)
{
	static struct hist h;
	uint64_t v;

	hist_init(&h);
	for (uint64_t i = 1; i <= 20; i++)
		hist_record(&h, i);
	assert_int_equal(hist_count(&h), 20);
	assert_int_equal(hist_min(&h), 1);
	assert_int_equal(hist_max(&h), 20);
	/* Nearest rank: ceil(0.5 * 20) = 10th sample; ceil(0.9 * 20) = 18th. */
	assert_true(hist_percentile(&h, 50, &v));
	assert_int_equal(v, 10);
	assert_true(hist_percentile(&h, 90, &v));
	assert_int_equal(v, 18);
	assert_true(hist_percentile(&h, 100, &v));
	assert_int_equal(v, 20);
	/* 20 samples support p95 (one sample above it) but not p99. */
	assert_true(hist_supports(&h, 95));
	assert_false(hist_supports(&h, 99));
	assert_false(hist_percentile(&h, 99, &v));
}

static void test_supported_counts(void **state)
{
	static struct hist h;

	hist_init(&h);
	assert_false(hist_supports(&h, 100));
	assert_false(hist_supports(&h, 50));
	hist_record(&h, 5);
	assert_true(hist_supports(&h, 100));
	assert_false(hist_supports(&h, 50));
	for (int i = 1; i < 999; i++)
		hist_record(&h, 5);
	assert_true(hist_supports(&h, 99));
	assert_false(hist_supports(&h, 99.9));
	hist_record(&h, 5);
	assert_true(hist_supports(&h, 99.9));
	assert_false(hist_supports(&h, 99.99));
}

static void test_relative_error(void **state)
{
	static const double pcts[] = { 0, 1, 10, 50, 90, 99, 99.9, 100 };
	static struct hist h;
	static uint64_t v[100000];
	const uint64_t n = sizeof(v) / sizeof(v[0]);
	uint64_t x = 88172645463325252ull;

	hist_init(&h);
	for (uint64_t i = 0; i < n; i++) {
		/* Spread over every power of two, the top bucket included. */
		v[i] = i == n - 1 ? UINT64_MAX : rnd(&x) >> (rnd(&x) % 64);
		hist_record(&h, v[i]);
	}
	qsort(v, n, sizeof(v[0]), cmp_u64);
	assert_int_equal(hist_min(&h), v[0]);
	assert_int_equal(hist_max(&h), UINT64_MAX);
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		/* Nearest rank, in parts per million as histogram.c computes it. */
		uint64_t ppm = (uint64_t)(pcts[i] * 10000 + 0.5),
			 rank = (n * ppm + 999999) / 1000000;
		uint64_t want = v[(rank ? rank : 1) - 1], got;

		assert_true(hist_percentile(&h, pcts[i], &got));
		assert_true(got >= want);
		assert_true(got - want <= want / 32);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_values_exact),
		cmocka_unit_test(test_supported_counts),
		cmocka_unit_test(test_relative_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
