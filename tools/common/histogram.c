/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The tools' log-linear histogram; histogram.h states its error and percentile. */
#include "histogram.h"

#define PPM 1000000ull

static size_t bucket_of(uint64_t v)
{
	unsigned int shift;

	if (v < HIST_SUB)
		return v;
	shift = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
	return HIST_SUB + (size_t)shift * HIST_SUB + ((v >> shift) - HIST_SUB);
}

static uint64_t bucket_high(size_t i)
{
	unsigned int shift, sub;

	if (i < HIST_SUB)
		return i;
	shift = (i - HIST_SUB) / HIST_SUB;
	sub = (i - HIST_SUB) % HIST_SUB;
	/* Written so that the last bucket ends at UINT64_MAX without overflowing. */
	return ((uint64_t)(HIST_SUB + sub) << shift) + (((uint64_t)1 << shift) - 1);
}

void hist_init(struct hist *h)
{
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		atomic_init(&h->count[i], 0);
	atomic_init(&h->n, 0);
	atomic_init(&h->min, UINT64_MAX);
	atomic_init(&h->max, 0);
}

void hist_record(struct hist *h, uint64_t value)
{
	unsigned long long cur;

	atomic_fetch_add_explicit(&h->count[bucket_of(value)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->n, 1, memory_order_relaxed);
	cur = atomic_load_explicit(&h->min, memory_order_relaxed);
	while (value < cur && !atomic_compare_exchange_weak_explicit(
				  &h->min, &cur, value, memory_order_relaxed, memory_order_relaxed))
		;
	cur = atomic_load_explicit(&h->max, memory_order_relaxed);
	while (value > cur && !atomic_compare_exchange_weak_explicit(
				  &h->max, &cur, value, memory_order_relaxed, memory_order_relaxed))
		;
}

uint64_t hist_count(const struct hist *h)
{
	return atomic_load_explicit(&h->n, memory_order_relaxed);
}

uint64_t hist_min(const struct hist *h)
{
	return hist_count(h) ? atomic_load_explicit(&h->min, memory_order_relaxed) : 0;
}

uint64_t hist_max(const struct hist *h)
{
	return atomic_load_explicit(&h->max, memory_order_relaxed);
}

static uint64_t to_ppm(double pct)
{
	if (!(pct > 0))
		return 0;
	if (pct >= 100)
		return PPM;
	return (uint64_t)(pct * (PPM / 100) + 0.5);
}

bool hist_supports(const struct hist *h, double pct)
{
	uint64_t n = hist_count(h), ppm = to_ppm(pct);

	if (ppm == PPM)
		return n >= 1;
	/* Integer arithmetic: n * (100 - p) / 100 >= 1 exactly, p99.9 at n = 1000 too. */
	return n * (PPM - ppm) >= PPM;
}

bool hist_percentile(const struct hist *h, double pct, uint64_t *out)
{
	uint64_t n = 0, rank, seen = 0, ppm = to_ppm(pct), v;

	if (!hist_supports(h, pct))
		return false;
	/*
	 * Count what the buckets hold rather than trusting h->n: a recorder
	 * still running bumps the two separately.
	 */
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		n += atomic_load_explicit(&h->count[i], memory_order_relaxed);
	rank = (n * ppm + PPM - 1) / PPM;
	if (rank < 1)
		rank = 1;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += atomic_load_explicit(&h->count[i], memory_order_relaxed);
		if (seen >= rank) {
			v = bucket_high(i);
			if (v > hist_max(h))
				v = hist_max(h);
			if (v < hist_min(h))
				v = hist_min(h);
			*out = v;
			return true;
		}
	}
	*out = hist_max(h);
	return true;
}

uint64_t hist_bucket_count(const struct hist *h, size_t i)
{
	return i < HIST_BUCKETS ? atomic_load_explicit(&h->count[i], memory_order_relaxed) : 0;
}

uint64_t hist_bucket_high(const struct hist *h, size_t i)
{
	uint64_t v = bucket_high(i);

	return v > hist_max(h) ? hist_max(h) : v;
}
