/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memslots-device-example: a device backend serving a ring in guest memory.
 * The device thread reads requests from a ring through a pfn cache and
 * writes completions back; meanwhile the VMM thread hot-plugs and unplugs a
 * memory region and moves the device's BAR with transactions (no moment
 * where guest memory has a hole), and remaps the ring's host page, bracketed
 * by an invalidation as the kernel's mm does.  The cache tells the device
 * when to look again; the device never uses a stale pointer.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "memslots.h"

#define RAM_GPA 0x100000ull
#define RING_GPA RAM_GPA /* the ring lives in the first page of RAM */
#define RAM_PAGES 16
#define HOTPLUG_GPA 0x4000000ull
#define BAR_GPA_A 0x80000000ull
#define BAR_GPA_B 0x90000000ull

struct ring {
	_Atomic uint64_t requested, completed;
};

static struct ms_vm *vm;
static atomic_bool stop;

/* The device: complete every request it finds, through the cache. */
static void *device_main(void *arg)
{
	unsigned long served = 0, refreshes = 0;
	struct ms_pfn_cache *gpc;
	struct ring *ring;

	if (ms_pfn_cache_create(vm, &gpc) || ms_pfn_cache_activate(gpc, 0, RING_GPA, sizeof(*ring)))
		return NULL;
	while (!atomic_load(&stop)) {
		ms_pfn_cache_read_lock(gpc);
		while (!(ring = ms_pfn_cache_check(gpc))) {
			ms_pfn_cache_read_unlock(gpc, false);
			if (ms_pfn_cache_refresh(gpc))
				goto out;
			refreshes++;
			ms_pfn_cache_read_lock(gpc);
		}
		if (atomic_load(&ring->completed) < atomic_load(&ring->requested)) {
			atomic_fetch_add(&ring->completed, 1);
			served++;
		}
		ms_pfn_cache_read_unlock(gpc, true);
	}
out:
	ms_pfn_cache_destroy(gpc);
	printf("device: served %lu requests, refreshed its cache %lu times\n", served, refreshes);
	return NULL;
}

static struct ms_region region(unsigned int id, uint64_t gpa, size_t pages, const void *hva)
{
	return (struct ms_region){ .slot = id,
				   .guest_phys_addr = gpa,
				   .memory_size = pages * MS_PAGE_SIZE,
				   .userspace_addr = (uintptr_t)hva };
}

int main(void)
{
	char *ram = mmap(NULL, RAM_PAGES * MS_PAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *extra = mmap(NULL, 4 * MS_PAGE_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct ring *ring = (struct ring *)ram;
	struct ms_region r = region(0, RAM_GPA, RAM_PAGES, ram);
	pthread_t device;
	uint64_t ring_hva = (uintptr_t)ram;
	size_t failed;
	int err;

	if (ram == MAP_FAILED || extra == MAP_FAILED || ms_vm_create(NULL, &vm) ||
	    ms_set_memory_region(vm, &r))
		return 1;
	pthread_create(&device, NULL, device_main, NULL);
	for (int round = 0; round < 2000; round++) {
		/* The guest's driver posts a request. */
		atomic_fetch_add(&ring->requested, 1);
		/* Hot-plug a region and move the BAR in one step, then unplug. */
		struct ms_region plug[] = { region(1, HOTPLUG_GPA, 4, extra),
					    region(2, round & 1 ? BAR_GPA_B : BAR_GPA_A, 1,
						   extra + 3 * MS_PAGE_SIZE) };
		struct ms_region unplug[] = { region(1, 0, 0, NULL) };

		err = ms_set_memory_regions(vm, plug, 2, &failed);
		if (!err)
			err = ms_set_memory_regions(vm, unplug, 1, &failed);
		if (err) {
			fprintf(stderr, "memory map change %zu: %s\n", failed, strerror(-err));
			break;
		}
		/* The host remaps the ring's page (say, migrates it): bracket it. */
		if (round % 100 == 0) {
			ms_invalidate_range_start(vm, ring_hva, ring_hva + MS_PAGE_SIZE, true);
			madvise(ram, MS_PAGE_SIZE, MADV_WILLNEED);
			ms_invalidate_range_end(vm, ring_hva, ring_hva + MS_PAGE_SIZE);
		}
	}
	while (atomic_load(&ring->completed) < atomic_load(&ring->requested))
		sched_yield();
	atomic_store(&stop, true);
	pthread_join(device, NULL);
	printf("vmm: %lu requests posted, %lu completed; the map changed 4000 times\n",
	       (unsigned long)atomic_load(&ring->requested),
	       (unsigned long)atomic_load(&ring->completed));
	ms_vm_destroy(vm);
	return 0;
}
