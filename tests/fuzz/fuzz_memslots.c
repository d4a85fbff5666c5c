/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: a sequence of ms_set_memory_region calls, lookups and
 * vCPU reads and writes, each checked against a small reference model of
 * KVM's rules (x86-64, 4 KiB pages; the order of checks is kvm_main.c's
 * __kvm_set_memory_region, then x86's kvm_arch_prepare_memory_region).
 * Any difference aborts.  Valid regions always map into one arena of host
 * memory, so the library's copies are compared byte for byte with a shadow.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memslots.h"

#define ARENA_PAGES 64
#define MODEL_SLOTS 8
#define P MS_PAGE_SIZE

struct model_slot {
	bool present;
	uint64_t base_gfn, npages, hva;
	uint32_t flags;
};

static struct model_slot model[2][MODEL_SLOTS];
static unsigned char *arena, shadow[ARENA_PAGES * P];

struct input {
	const uint8_t *data;
	size_t size;
};

static uint8_t byte(struct input *in)
{
	uint8_t b = in->size ? *in->data : 0;

	if (in->size) {
		in->data++;
		in->size--;
	}
	return b;
}

static _Noreturn void mismatch(const char *what, long got, long want)
{
	fprintf(stderr, "fuzz: %s: library %ld, reference %ld\n", what, got, want);
	abort();
}

static bool overlaps(unsigned int as, unsigned int id, uint64_t gfn, uint64_t npages)
{
	for (unsigned int i = 0; i < MODEL_SLOTS; i++) {
		const struct model_slot *s = &model[as][i];

		if (i != id && s->present && gfn < s->base_gfn + s->npages &&
		    s->base_gfn < gfn + npages)
			return true;
	}
	return false;
}

/* KVM's answer for r, applied to the model when it is 0. */
static int model_set(const struct ms_region *r)
{
	unsigned int as = r->slot >> 16, id = r->slot & 0xffff;
	uint64_t gfn = r->guest_phys_addr / P, npages = r->memory_size / P;
	struct model_slot *old;

	if (r->flags & ~3u || r->memory_size % P || r->guest_phys_addr % P || r->userspace_addr % P)
		return -EINVAL;
	if (r->userspace_addr > 0x7ffffffff000ull ||
	    r->memory_size > 0x7ffffffff000ull - r->userspace_addr)
		return -EINVAL;
	if (as >= 2 || id >= 32764)
		return -EINVAL;
	if (r->guest_phys_addr + r->memory_size < r->guest_phys_addr || npages > (1ull << 31) - 1)
		return -EINVAL;
	old = id < MODEL_SLOTS ? &model[as][id] : NULL;
	if (!npages) {
		if (!old || !old->present)
			return -EINVAL;
		old->present = false;
		return 0;
	}
	if (old && old->present) {
		if (r->userspace_addr != old->hva || npages != old->npages ||
		    ((r->flags ^ old->flags) & MS_MEM_READONLY))
			return -EINVAL;
		if (gfn == old->base_gfn) {
			old->flags = r->flags;
			return 0;
		}
	}
	if (overlaps(as, id, gfn, npages))
		return -EEXIST;
	if (gfn + npages > 1ull << 40)
		return -EINVAL;
	*old = (struct model_slot){ true, gfn, npages, r->userspace_addr, r->flags };
	return 0;
}

static const struct model_slot *model_find(unsigned int as, uint64_t gfn)
{
	for (unsigned int i = 0; as < 2 && i < MODEL_SLOTS; i++) {
		const struct model_slot *s = &model[as][i];

		if (s->present && gfn >= s->base_gfn && gfn < s->base_gfn + s->npages)
			return s;
	}
	return NULL;
}

static int model_gfn_to_hva(unsigned int as, uint64_t gfn, bool write, uint64_t *hva)
{
	const struct model_slot *s = model_find(as, gfn);

	if (as >= 2)
		return -EINVAL;
	if (!s || (write && (s->flags & MS_MEM_READONLY)))
		return -EFAULT;
	*hva = s->hva + (gfn - s->base_gfn) * P;
	return 0;
}

static uint64_t arena_addr(unsigned int page)
{
	return (uint64_t)(uintptr_t)arena + (uint64_t)page * P;
}

/* Mostly valid regions into the arena; now and then each kind of bad one. */
static void op_set(struct ms_vm *vm, struct input *in)
{
	uint8_t kind = byte(in), id = byte(in) % MODEL_SLOTS, as = byte(in) % 2;
	uint8_t hpage = byte(in) % ARENA_PAGES, npages = byte(in) % 9, gpage = byte(in);
	struct ms_region r = { .slot = (uint32_t)as << 16 | id,
			       .flags = kind & 3,
			       .guest_phys_addr = (uint64_t)gpage * P,
			       .userspace_addr = arena_addr(hpage) };
	int got, want;

	if (hpage + npages > ARENA_PAGES)
		npages = ARENA_PAGES - hpage;
	r.memory_size = (uint64_t)npages * P;
	switch (kind >> 4) {
	case 1:
		r.flags |= 4;
		break;
	case 2:
		r.memory_size += 1;
		break;
	case 3:
		r.guest_phys_addr += 8;
		break;
	case 4:
		r.userspace_addr += 16;
		break;
	case 5:
		r.userspace_addr = 0xffff800000000000ull;
		break;
	case 6:
		r.slot = 2u << 16 | id;
		break;
	case 7:
		r.slot = 32764;
		break;
	case 8:
		r.guest_phys_addr = (1ull << 52) - P * (kind & 7);
		break;
	case 9:
		r.guest_phys_addr = UINT64_MAX & ~(P - 1);
		break;
	default:
		break;
	}
	got = ms_set_memory_region(vm, &r);
	want = model_set(&r);
	if (got != want)
		mismatch("ms_set_memory_region", got, want);
}

static void op_lookup(struct ms_vcpu *vcpu, struct input *in)
{
	uint8_t b = byte(in);
	unsigned int as = b % 3;
	uint64_t gfn = byte(in), hva = 0, want_hva = 0;
	int got = ms_gfn_to_hva(vcpu, as, gfn, b & 8, &hva);
	int want = model_gfn_to_hva(as, gfn, b & 8, &want_hva);

	if (got != want)
		mismatch("ms_gfn_to_hva", got, want);
	if (!got && hva != want_hva)
		mismatch("ms_gfn_to_hva address", (long)hva, (long)want_hva);
}

/* The reference's result of an access: -EFAULT if any page is not reachable. */
static int model_access(unsigned int as, uint64_t gpa, size_t len, bool write)
{
	uint64_t hva;

	for (uint64_t gfn = gpa / P; gfn <= (gpa + len - 1) / P; gfn++) {
		int r = model_gfn_to_hva(as, gfn, write, &hva);

		if (r)
			return r;
	}
	return 0;
}

static void op_access(struct ms_vcpu *vcpu, struct input *in, bool write)
{
	unsigned int as = byte(in) % 2;
	uint64_t gpa = (uint64_t)byte(in) * P + byte(in) * 16u;
	size_t len = 1 + byte(in) % 96;
	unsigned char buf[96];
	uint64_t hva;
	int got, want;

	for (size_t i = 0; i < len; i++)
		buf[i] = byte(in);
	want = model_access(as, gpa, len, write);
	got =
	    write ? ms_vcpu_write(vcpu, as, gpa, buf, len) : ms_vcpu_read(vcpu, as, gpa, buf, len);
	if (got != want)
		mismatch(write ? "ms_vcpu_write" : "ms_vcpu_read", got, want);
	for (size_t done = 0; !got && done < len;) {
		uint64_t at = gpa + done, piece = P - at % P;

		if (piece > len - done)
			piece = len - done;
		model_gfn_to_hva(as, at / P, false, &hva);
		hva += at % P;
		if (write)
			memcpy(shadow + (hva - arena_addr(0)), buf + done, piece);
		else if (memcmp(shadow + (hva - arena_addr(0)), buf + done, piece))
			mismatch("bytes read", 0, 1);
		done += piece;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct ms_vm *vm;
	struct ms_vcpu *vcpu;

	if (!arena) {
		arena = mmap(NULL, ARENA_PAGES * P, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (arena == MAP_FAILED)
			abort();
	}
	memset(arena, 0, ARENA_PAGES * P);
	memset(shadow, 0, sizeof(shadow));
	memset(model, 0, sizeof(model));
	if (ms_vm_create(NULL, &vm) || ms_vcpu_create(vm, &vcpu))
		abort();
	for (unsigned int ops = 0; in.size && ops < 256; ops++) {
		switch (byte(&in) % 4) {
		case 0:
			op_set(vm, &in);
			break;
		case 1:
			op_lookup(vcpu, &in);
			break;
		case 2:
			op_access(vcpu, &in, false);
			break;
		case 3:
			op_access(vcpu, &in, true);
			break;
		}
	}
	ms_vcpu_destroy(vcpu);
	ms_vm_destroy(vm);
	return 0;
}
