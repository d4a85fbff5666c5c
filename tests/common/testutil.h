/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the unit tests: host memory, regions, stats, waiting. */
#ifndef MEMSLOTS_TESTUTIL_H
#define MEMSLOTS_TESTUTIL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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

/* A thread that reads one byte of gpa on a vCPU of its own (result: the read's). */
struct test_reader {
	pthread_t thread;
	struct ms_vm *vm;
	uint64_t gpa;
	int result;
	atomic_bool done;
};

static inline void *test_reader_main(void *arg)
{
	struct test_reader *t = arg;
	struct ms_vcpu *vcpu;
	char c;
	int r = ms_vcpu_create(t->vm, &vcpu);

	if (!r) {
		r = ms_vcpu_read(vcpu, 0, t->gpa, &c, 1);
		ms_vcpu_destroy(vcpu);
	}
	t->result = r;
	atomic_store(&t->done, true);
	return NULL;
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
