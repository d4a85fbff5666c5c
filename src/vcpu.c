/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vCPUs: memslot lookups through the last-used-slot cache, and guest memory
 * access through the secondary MMU.  A vCPU belongs to one thread at a time,
 * so its cache needs no lock.  Memslots are read under memslot RCU, entries
 * and frames under entry RCU (rcu.h).  A hit takes no lock and no atomic
 * read-modify-write.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rcu.h"
#include "vm.h"

int ms_vcpu_create(struct ms_vm *vm, struct ms_vcpu **out)
{
	struct ms_vcpu *vcpu;

	if (!vm || !out)
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	vcpu = calloc(1, sizeof(*vcpu));
	if (!vcpu)
		return -ENOMEM;
	vcpu->vm = vm;
	*out = vcpu;
	return 0;
}

void ms_vcpu_destroy(struct ms_vcpu *vcpu)
{
	if (!vcpu)
		return;
	ms_mmu_free_memory_cache(&vcpu->spt_cache);
	free(vcpu);
}

static int view_to_hva(const struct gfn_view *view, uint64_t gfn, bool write, uint64_t *hva)
{
	if (view->flags & (MS_MEMSLOT_INVALID | (write ? MS_MEM_READONLY : 0)))
		return -EFAULT;
	*hva = view->userspace_addr + ((gfn - view->base_gfn) << MS_PAGE_SHIFT);
	return 0;
}

/* Out of line, so that a hit saves no registers and sets up no frame. */
static __attribute__((noinline)) int gfn_to_hva_miss(struct ms_vcpu *vcpu, unsigned int as_id,
						     uint64_t gfn, bool write, uint64_t *hva)
{
	struct ms_memslots *slots;

	if (as_id >= vcpu->vm->cfg.address_spaces)
		return -EINVAL;
	/* The index of a set that stops being active is reused after a grace period. */
	ms_rcu_read_lock(vcpu->vm);
	slots = ms_vcpu_slot_lookup(vcpu, as_id, gfn);
	ms_rcu_read_unlock(vcpu->vm);
	return slots ? view_to_hva(&vcpu->last_used_slot[as_id].view, gfn, write, hva) : -EFAULT;
}

int ms_gfn_to_hva(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gfn, bool write, uint64_t *hva)
{
	const struct gfn_view *view;

	/* Address spaces past the VM's have empty caches: their check can wait for a miss. */
	if (!vcpu || !hva || as_id >= MS_MAX_ADDRESS_SPACES)
		return -EINVAL;
	if (ms_in_forked_child()) /* arguments first, as everywhere */
		return as_id >= vcpu->vm->cfg.address_spaces ? -EINVAL : -ECHILD;
	view = ms_vcpu_hit(vcpu, as_id, gfn);
	if (__builtin_expect(!view, 0))
		return gfn_to_hva_miss(vcpu, as_id, gfn, write, hva);
	return view_to_hva(view, gfn, write, hva);
}

/* A vCPU re-faulting while an invalidation or update is open: back off. */
static void fault_backoff(unsigned int attempt)
{
	if (attempt < 64) {
		sched_yield();
	} else {
		struct timespec ts = { 0, 20000 };

		nanosleep(&ts, NULL);
	}
}

struct access {
	unsigned int as_id;
	bool write;
	void *buf; /* const for reads from guest memory's point of view */
};

/* Use the entry of gfn if it allows the access: the hit path. */
static bool access_entry(struct ms_vcpu *vcpu, const struct access *a, uint64_t gpa, char *buf,
			 size_t len)
{
	uint64_t gfn = gpa >> MS_PAGE_SHIFT;
	uintptr_t spte;
	char *frame;
	bool hit;

	ms_spte_read_lock(vcpu->vm);
	spte = ms_spte_lookup(&vcpu->vm->mmu, a->as_id, gfn);
	hit = spte && (!a->write || (spte & MS_SPTE_WRITABLE));
	if (hit) {
		/* A zap puts the frame only after this section ends. */
		frame = (char *)(spte & ~MS_SPTE_WRITABLE) + (gpa & (MS_PAGE_SIZE - 1));
		if (a->write)
			memcpy(frame, buf, len);
		else
			memcpy(buf, frame, len);
	}
	ms_spte_read_unlock(vcpu->vm);
	return hit;
}

/* Copy one piece that lies within a page, faulting its entry in as needed. */
static int access_page(struct ms_vcpu *vcpu, const struct access *a, uint64_t gpa, char *buf,
		       size_t len)
{
	unsigned int attempt = 0;
	int r;

	while (!access_entry(vcpu, a, gpa, buf, len)) {
		ms_rcu_read_lock(vcpu->vm);
		r = ms_mmu_fault(vcpu, a->as_id, gpa >> MS_PAGE_SHIFT, a->write);
		ms_rcu_read_unlock(vcpu->vm);
		if (r == -EAGAIN)
			fault_backoff(attempt++);
		else if (r)
			return r;
	}
	return 0;
}

/* A write that would fail on a later page must change nothing. */
static int check_writable(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gpa, size_t len)
{
	uint64_t hva;

	for (uint64_t gfn = gpa >> MS_PAGE_SHIFT; gfn <= (gpa + len - 1) >> MS_PAGE_SHIFT; gfn++) {
		int r = ms_gfn_to_hva(vcpu, as_id, gfn, true, &hva);

		if (r)
			return r;
	}
	return 0;
}

static int vcpu_access(struct ms_vcpu *vcpu, const struct access *a, uint64_t gpa, size_t len)
{
	char *buf = a->buf;
	int r;

	if (!vcpu || a->as_id >= vcpu->vm->cfg.address_spaces || (!buf && len))
		return -EINVAL;
	if (ms_in_forked_child())
		return -ECHILD;
	/* Past the width no slot maps anything, and the entry table would alias. */
	if (gpa + len < gpa || (len && (gpa + len - 1) >> MS_PAGE_SHIFT >= vcpu->vm->max_gfn_end))
		return -EFAULT;
	if (a->write && (gpa & (MS_PAGE_SIZE - 1)) + len > MS_PAGE_SIZE) {
		r = check_writable(vcpu, a->as_id, gpa, len);
		if (r)
			return r;
	}
	while (len) {
		size_t piece = MS_PAGE_SIZE - (gpa & (MS_PAGE_SIZE - 1));

		if (piece > len)
			piece = len;
		r = access_page(vcpu, a, gpa, buf, piece);
		if (r)
			return r;
		gpa += piece;
		buf += piece;
		len -= piece;
	}
	return 0;
}

int ms_vcpu_read(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gpa, void *buf, size_t len)
{
	struct access a = { as_id, false, buf };

	return vcpu_access(vcpu, &a, gpa, len);
}

int ms_vcpu_write(struct ms_vcpu *vcpu, unsigned int as_id, uint64_t gpa, const void *buf,
		  size_t len)
{
	struct access a = { as_id, true, (void *)buf };

	return vcpu_access(vcpu, &a, gpa, len);
}
