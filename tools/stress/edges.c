/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The edges of the MMU-notifier protocol (edges.h).
 *
 * The kernel's mm passes byte ranges to invalidate_range_start, not pages:
 * the library must treat every page a range touches as invalidated, and the
 * host changes those whole pages.  vCPU accesses are not instantaneous: a
 * vCPU can be preempted half way through copying a frame, and a start must
 * still wait for it, whoever zapped the entry.  And a guest address is only
 * 52 bits wide: an address above that reaches no guest memory, whatever its
 * low bits.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "edges.h"

struct hrange edge_range(const struct hostmm *mm, unsigned int first, unsigned int n,
			 bool unaligned, uint64_t *rng)
{
	struct hrange r = { hostmm_addr(mm, first), hostmm_addr(mm, first + n), first, n };
	uint64_t head, tail;

	if (!unaligned)
		return r;
	/* Bytes cut off the first page and the last; either may stay whole. */
	head = rnd(rng) % 4 ? rnd(rng) % MS_PAGE_SIZE : 0;
	tail = rnd(rng) % 4 ? rnd(rng) % MS_PAGE_SIZE : 0;
	if (n == 1 && head + tail >= MS_PAGE_SIZE) {
		/* One page: keep at least one byte, somewhere inside it. */
		head = rnd(rng) % MS_PAGE_SIZE;
		tail = MS_PAGE_SIZE - head - 1 - rnd(rng) % (MS_PAGE_SIZE - head);
	}
	r.start += head;
	r.end -= tail;
	return r;
}

uint64_t edge_wide_gpa(uint64_t gpa, uint64_t *rng, size_t *len)
{
	const uint64_t width = 1ull << GPA_WIDTH_BITS;

	*len = 8;
	switch (rnd(rng) % 5) {
	case 0: /* the first alias of gpa */
		return gpa + width;
	case 1: /* any alias: some of the 12 bits above the width set */
		return gpa | (1 + rnd(rng) % 4095) << GPA_WIDTH_BITS;
	case 2: /* the top page of the 64-bit space, at gpa's offset */
		return ~(MS_PAGE_SIZE - 1) | (gpa & (MS_PAGE_SIZE - 1) & ~7ull);
	case 3: /* ends at or wraps around 2^64 */
		*len = 1 + rnd(rng) % 8;
		return UINT64_MAX - rnd(rng) % 8;
	default: /* starts below the width, ends above it */
		*len = 2 + rnd(rng) % 7;
		return width - 1 - rnd(rng) % (*len - 1);
	}
}

static void dawdle(int sig, siginfo_t *info, void *ucontext)
{
	int saved_errno = errno; /* nanosleep may set it under the interrupted code */
	struct timespec ts = { 0, (long)info->si_value.sival_int * 1000 };

	nanosleep(&ts, NULL);
	errno = saved_errno;
}

void dawdle_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = dawdle;
	/* Restarted: the interrupted thread's own waits must not see EINTR. */
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

int dawdle_poke(pthread_t thread, unsigned int us)
{
	return pthread_sigqueue(thread, SIGUSR1, (union sigval){ .sival_int = (int)us });
}
