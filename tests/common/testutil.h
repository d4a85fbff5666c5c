/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the unit tests: host memory, regions, stats, waiting. */
#ifndef MEMSLOTS_TESTUTIL_H
#define MEMSLOTS_TESTUTIL_H

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "memslots.h"

static inline void *test_host_alloc(size_t pages)
{
	void *p = mmap(NULL, pages * MS_PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static inline void test_host_free(void *p, size_t pages)
{
	munmap(p, pages * MS_PAGE_SIZE);
}

static inline struct ms_region test_region(unsigned int as_id, unsigned int id, uint64_t gpa,
					   uint64_t size, const void *hva, uint32_t flags)
{
	return (struct ms_region){ .slot = as_id << 16 | id,
				   .flags = flags,
				   .guest_phys_addr = gpa,
				   .memory_size = size,
				   .userspace_addr = (uint64_t)(uintptr_t)hva };
}

static inline struct ms_stats test_stats(struct ms_vm *vm)
{
	struct ms_stats st;

	ms_vm_stats(vm, &st);
	return st;
}

/* Poll a condition another thread makes true; give up after about 10 s. */
#define test_wait_until(cond)                                            \
	({                                                               \
		int __tries = 0;                                         \
		while (!(cond) && __tries++ < 1000000)                   \
			nanosleep(&(struct timespec){ 0, 10000 }, NULL); \
		(cond);                                                  \
	})

#endif /* MEMSLOTS_TESTUTIL_H */
