/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The edges memslots-stress pushes the library to (edges.c): host ranges
 * that are not page aligned, guest addresses beyond the guest physical
 * address width, and vCPUs that dawdle inside an access.
 */
#ifndef MEMSLOTS_STRESS_EDGES_H
#define MEMSLOTS_STRESS_EDGES_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostmm.h"

/* x86's guest physical address width: no guest memory at or above 2^52. */
#define GPA_WIDTH_BITS 52

/* xorshift64: each thread its own state, so a seed replays its choices. */
static inline uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Host bytes [start, end), and the pages [first, first + n) they overlap. */
struct hrange {
	uint64_t start, end;
	unsigned int first, n;
};

/*
 * A byte range over exactly the pages [first, first + n): page aligned, or
 * with its ends at random bytes inside the first and last page (then, for
 * one page, smaller than the page; for more, across page boundaries).
 */
struct hrange edge_range(const struct hostmm *mm, unsigned int first, unsigned int n,
			 bool unaligned, uint64_t *rng);

/*
 * A guest address at or beyond 2^GPA_WIDTH_BITS, near gpa or at the top of
 * the 64-bit space, and the length of an access there (*len <= 8).  Every
 * access it names must fail with -EFAULT; some wrap around 2^64, some start
 * below the width and end above it.
 */
uint64_t edge_wide_gpa(uint64_t gpa, uint64_t *rng, size_t *len);

/* Make SIGUSR1 a dawdle: the thread it lands on sleeps for the microseconds it carries. */
void dawdle_setup(void);
/* Interrupt thread, wherever it is (inside a vCPU access, maybe), for us microseconds. */
int dawdle_poke(pthread_t thread, unsigned int us);

#endif /* MEMSLOTS_STRESS_EDGES_H */
