/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memslots-example: a VM with real memory in two slots, two vCPU threads
 * reading and writing guest memory, while the main thread moves a slot and
 * brackets a remap of host memory with invalidate_range_start/end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "memslots.h"

#define SLOT_PAGES 16
#define SLOT_BYTES (SLOT_PAGES * MS_PAGE_SIZE)

static struct ms_vm *vm;
static atomic_bool stop;

struct vcpu_thread {
	pthread_t thread;
	int id;
	unsigned long reads, writes, faults;
};

static void *vcpu_main(void *arg)
{
	struct vcpu_thread *t = arg;
	struct ms_vcpu *vcpu;
	uint64_t gpa = 0x100000 + (uint64_t)t->id * 64;
	char buf[32];

	if (ms_vcpu_create(vm, &vcpu))
		return NULL;
	while (!atomic_load(&stop)) {
		snprintf(buf, sizeof(buf), "vcpu%d write %lu", t->id, t->writes);
		if (ms_vcpu_write(vcpu, 0, gpa, buf, sizeof(buf)) == 0)
			t->writes++;
		else
			t->faults++;
		if (ms_vcpu_read(vcpu, 0, gpa, buf, sizeof(buf)) == 0)
			t->reads++;
	}
	ms_vcpu_destroy(vcpu);
	return NULL;
}

static char *map_host(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int main(void)
{
	char *ram = map_host(SLOT_BYTES), *rom = map_host(SLOT_BYTES);
	struct ms_region low = { .slot = 0,
				 .guest_phys_addr = 0x100000,
				 .memory_size = SLOT_BYTES,
				 .userspace_addr = (uintptr_t)ram };
	struct ms_region high = { .slot = 1,
				  .flags = MS_MEM_READONLY,
				  .guest_phys_addr = 0x400000,
				  .memory_size = SLOT_BYTES,
				  .userspace_addr = (uintptr_t)rom };
	struct vcpu_thread vcpus[2] = { { .id = 0 }, { .id = 1 } };
	struct ms_stats st;
	int r;

	if (!ram || !rom || ms_vm_create(NULL, &vm))
		return 1;
	if (ms_set_memory_region(vm, &low) || ms_set_memory_region(vm, &high))
		return 1;
	for (int i = 0; i < 2; i++)
		pthread_create(&vcpus[i].thread, NULL, vcpu_main, &vcpus[i]);

	for (int i = 0; i < 200; i++) {
		/* The host remaps the first page of guest RAM: bracket it. */
		ms_invalidate_range_start(vm, (uintptr_t)ram, (uintptr_t)ram + MS_PAGE_SIZE, true);
		madvise(ram, MS_PAGE_SIZE, MADV_DONTNEED);
		ms_invalidate_range_end(vm, (uintptr_t)ram, (uintptr_t)ram + MS_PAGE_SIZE);
		/* The ROM slot moves around; vCPUs never notice, as they do not use it. */
		high.guest_phys_addr = i & 1 ? 0x800000 : 0x400000;
		ms_set_memory_region(vm, &high);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++) {
		pthread_join(vcpus[i].thread, NULL);
		printf("vcpu%d: %lu writes, %lu reads, %lu faults\n", i, vcpus[i].writes,
		       vcpus[i].reads, vcpus[i].faults);
	}
	r = ms_vcpu_write(NULL, 0, 0, "", 1);
	printf("bad call: %s\n", r == -EINVAL ? "-EINVAL, as expected" : "unexpected");
	ms_vm_stats(vm, &st);
	printf(
	    "invalidations: %lu started, %lu ended; %lu entries zapped; %lu faults, %lu retries\n",
	    st.invalidations_started, st.invalidations_ended, st.entries_zapped, st.faults,
	    st.fault_retries);
	printf("memslot updates: %lu, generation %lu, longest gate wait %lu ns\n",
	       st.memslot_updates, st.generation, st.gate_wait_ns_max);
	printf("frames: %lu got, %lu put so far\n", st.frames_got, st.frames_put);
	ms_vm_destroy(vm);
	return 0;
}
