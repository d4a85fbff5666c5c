/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A log-linear histogram of non-negative integer samples (latencies in ns),
 * shared by memslots-stress and memslots-bench so that both report the same
 * percentiles however long they run.  Fixed size (about 15 KiB), no
 * allocation, recording is one relaxed atomic add: safe from any thread.
 *
 * Buckets: values below 32 each have their own bucket; from 32 on, every
 * power-of-two range [2^k, 2^(k+1)) is split into 32 equal sub-buckets.  A
 * value is reported as the highest value its bucket can hold, clamped to
 * the exact minimum and maximum recorded, so a reported percentile is never
 * below the true sample and at most 1/32 (3.125 %) above it.
 *
 * Percentiles are nearest-rank: the p-th percentile of n samples is the
 * sample of rank ceil(p / 100 * n) in increasing order (rank 1 at least).
 * A percentile is only given when n supports it: at least one sample must
 * lie above it, i.e. n * (100 - p) / 100 >= 1 (p50 needs 2 samples, p99
 * 100, p99.9 1000); p100 (the maximum) needs one.
 */
#ifndef MEMSLOTS_TOOLS_HISTOGRAM_H
#define MEMSLOTS_TOOLS_HISTOGRAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
/* Exact buckets below HIST_SUB, then HIST_SUB per power of two up to 2^63. */
#define HIST_BUCKETS (HIST_SUB + (64 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	atomic_ullong count[HIST_BUCKETS];
	atomic_ullong n, min, max;
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t value);
uint64_t hist_count(const struct hist *h);
/* Exact extremes; 0 when empty. */
uint64_t hist_min(const struct hist *h);
uint64_t hist_max(const struct hist *h);
/* false (and *out untouched) when the sample count does not support pct. */
bool hist_supports(const struct hist *h, double pct);
bool hist_percentile(const struct hist *h, double pct, uint64_t *out);

/* For walking the distribution (a CDF): bucket i's count and highest value. */
uint64_t hist_bucket_count(const struct hist *h, size_t i);
uint64_t hist_bucket_high(const struct hist *h, size_t i);

#endif
