/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bounce frames for tests: get_frame hands out a private copy of the host
 * page and remembers it; put_frame writes a used one back and checks it was got and
 * not yet put.  A double or stray put, or a frame never put, is counted.
 */
#ifndef MEMSLOTS_TEST_FRAMES_H
#define MEMSLOTS_TEST_FRAMES_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "memslots.h"

#define TEST_FRAMES_MAX 4096

struct test_frames {
	pthread_mutex_t lock;
	struct {
		void *frame;
		uint64_t hva;
	} live[TEST_FRAMES_MAX];
	unsigned int nr_live;
	unsigned long got, put, bad_puts;
	int fail_with; /* get_frame returns this when non-zero */
	bool misalign; /* hand out a frame with bit 0 set */
};

static inline int test_get_frame(void *opaque, uint64_t hva, bool write, void **frame)
{
	struct test_frames *tf = opaque;
	char *page;

	if (tf->fail_with)
		return tf->fail_with;
	if (tf->misalign) {
		*frame = (void *)(uintptr_t)(hva | 1);
		return 0;
	}
	page = aligned_alloc(MS_PAGE_SIZE, MS_PAGE_SIZE);
	if (!page)
		return -ENOMEM;
	/* Copies in and out under the lock: they race on the host page otherwise. */
	pthread_mutex_lock(&tf->lock);
	memcpy(page, (void *)(uintptr_t)hva, MS_PAGE_SIZE);
	tf->live[tf->nr_live].frame = page;
	tf->live[tf->nr_live++].hva = hva;
	tf->got++;
	pthread_mutex_unlock(&tf->lock);
	*frame = page;
	return 0;
}

static inline void test_put_frame(void *opaque, void *frame, bool used)
{
	struct test_frames *tf = opaque;

	if ((uintptr_t)frame & 1)
		return;
	pthread_mutex_lock(&tf->lock);
	for (unsigned int i = 0; i < tf->nr_live; i++) {
		if (tf->live[i].frame != frame)
			continue;
		if (used)
			memcpy((void *)(uintptr_t)tf->live[i].hva, frame, MS_PAGE_SIZE);
		tf->live[i] = tf->live[--tf->nr_live];
		tf->put++;
		pthread_mutex_unlock(&tf->lock);
		free(frame);
		return;
	}
	tf->bad_puts++;
	pthread_mutex_unlock(&tf->lock);
}

/* Is a frame of a host page in [start, end) live (got and not put)? */
static inline bool test_frames_live_in(struct test_frames *tf, uint64_t start, uint64_t end)
{
	bool live = false;

	pthread_mutex_lock(&tf->lock);
	for (unsigned int i = 0; i < tf->nr_live; i++)
		live |= tf->live[i].hva >= start && tf->live[i].hva < end;
	pthread_mutex_unlock(&tf->lock);
	return live;
}

/* Every frame got was put exactly once, and nothing else was put. */
static inline bool test_frames_balanced(const struct test_frames *tf)
{
	return tf->got == tf->put && tf->bad_puts == 0;
}

static const struct ms_frame_ops test_frame_ops = {
	.get_frame = test_get_frame,
	.put_frame = test_put_frame,
};

#endif /* MEMSLOTS_TEST_FRAMES_H */
