/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: the input is decoded into a VM configuration and a
 * sequence of operations -- ms_set_memory_region with small, biased values
 * (slot ids 0-29 and the last valid and first invalid one, gpas near each
 * other, now and then each kind of bad argument or limit, re-issues of a live
 * slot to reach moves, flags-only changes and no-ops), ms_gfn_to_hva on every
 * address space, read and write, ms_vcpu_read/ms_vcpu_write of up to 128
 * bytes, start/end pairs around host ranges, and dirty logging:
 * ms_get_dirty_log and ms_clear_dirty_log of slot ids as above or any 32-bit
 * slot number, clears with first_page and num_pages at and around the word
 * and slot boundaries or anything, bitmaps of all ones, single bits or input
 * bytes, ms_mark_page_dirty, and transactions of up to 8 such changes
 * through ms_set_memory_regions or ms_replace_memory_map -- and each result
 * is compared with
 * tests/ref/kvm_ref.h, the reference model of KVM's rules: every return code,
 * every hva, every byte read, every word of every dirty bitmap returned (and
 * no word written past it or on failure), a failed transaction's index and,
 * after each transaction and at the end, every address space's map; after
 * every write the whole arena must equal the model's view of it.  Before an input's slots go, each logged
 * one's bitmap is fetched and compared once more.  Frames are got through counting
 * frame_ops, which also check that each lies in the arena, that none of a
 * range is held once its invalidation started, and, when an input ends and
 * every slot is deleted, that every frame got was put.  Any difference prints
 * the operation and aborts.  MEMSLOTS_FUZZ_TRACE=1 prints every operation, to
 * follow a replayed crash; a replay runs on a new VM, where fuzzing reused
 * one emptied VM per configuration (see vm_for()).
 *
 * Slots that map host memory used by accesses point into one arena of real
 * pages.  Regions outside it (the user limit, huge slots, the large slots of
 * 60 to 196 pages that give bitmaps several words) are still created, looked
 * up, marked dirty and compared, but an access that would touch them is
 * skipped: only set_memory_region, lookups and ms_mark_page_dirty may meet
 * addresses that are not mapped.  A region of more than MAX_LOGGED_PAGES
 * pages never asks for dirty logging: the 2^31 - 1 page slot's bitmap would
 * be 256 MiB in the library, again in the model and again per harvest.
 *
 * What the dirty bitmaps can be compared on: the library marks a page only
 * when a write faults its entry writable (or ms_mark_page_dirty), and a
 * logged page's entry is writable only from such a fault until a harvest
 * clears the bit and write-protects the entry together, or, with
 * initially-set bitmaps, from before logging began while its bit is still
 * set.  So a write that marks nothing finds the bit set already, and the
 * bitmap is exactly the pages written or marked since their bit was last
 * cleared: what the model keeps.  Single-threaded, nothing is racy.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "memslots.h"
#include "../ref/kvm_ref.h"

#define P MS_PAGE_SIZE
#define ARENA_PAGES 64
#define MAX_OPS 200
#define MAX_ACCESS 128
#define SWEEP_GFNS 272 /* gpas come from one byte of pages, plus slot sizes */
#define SWEEP_WINDOW 16
#define HUGE_HVA 0x10000000ull
#define LARGE_HVA 0x20000000ull
#define MAX_LOGGED_PAGES 256
#define MAX_WORDS 8 /* a bitmap buffer, in words: 4 hold the largest logged slot */
#define POISON 0x5a5a5a5a5a5a5a5aull

static unsigned char *arena;
static unsigned char shadow[ARENA_PAGES * P]; /* what the arena must hold */
static struct kvm_ref ref;
static long frames_out;		      /* got and not yet put */
static long page_frames[ARENA_PAGES]; /* the same, per arena page */
static bool trace;
static unsigned int op_index;
static char op_desc[200];

struct input {
	const uint8_t *data;
	size_t size;
};

static uint8_t byte(struct input *in)
{
	if (!in->size)
		return 0;
	in->size--;
	return *in->data++;
}

static _Noreturn __attribute__((format(printf, 1, 2))) void mismatch(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz: op %u: %s: ", op_index, op_desc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static __attribute__((format(printf, 1, 2))) void describe(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(op_desc, sizeof(op_desc), fmt, ap);
	va_end(ap);
	if (trace)
		fprintf(stderr, "fuzz: op %u: %s\n", op_index, op_desc);
}

/* Under MEMSLOTS_FUZZ_TRACE, what the library returned (and the model agreed to). */
static void traced(int got)
{
	if (trace)
		fprintf(stderr, "fuzz: op %u:   returns %d\n", op_index, got);
}

static uint64_t arena_hva(uint64_t page)
{
	return (uint64_t)(uintptr_t)arena + page * P;
}

static bool in_arena(uint64_t hva)
{
	return hva >= arena_hva(0) && hva < arena_hva(ARENA_PAGES);
}

static int get_frame(void *opaque, uint64_t hva, bool write, void **frame)
{
	if (hva % P || !in_arena(hva))
		mismatch("get_frame(%#llx): not an arena page the access touches",
			 (unsigned long long)hva);
	frames_out++;
	page_frames[(hva - arena_hva(0)) / P]++;
	*frame = (void *)(uintptr_t)hva;
	return 0;
}

static void put_frame(void *opaque, void *frame, bool used)
{
	uint64_t hva = (uint64_t)(uintptr_t)frame;

	if (!in_arena(hva) || --page_frames[(hva - arena_hva(0)) / P] < 0 || --frames_out < 0)
		mismatch("put_frame(%p): a frame never got, or put twice", frame);
}

static const struct ms_frame_ops frame_ops = { get_frame, put_frame };

static uint64_t bytes(struct input *in, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | byte(in);
	return v;
}

/*
 * Re-issue the live slot s: how & 1 keeps its gpa (else r's new one: a move),
 * how >> 1 changes nothing, dirty logging (flags-only), READONLY or the size.
 */
static void reissue(struct ms_region *r, const struct kvm_ref_slot *s, unsigned int how)
{
	r->flags = s->flags;
	r->memory_size = s->npages * P;
	r->userspace_addr = s->userspace_addr;
	if (how & 1)
		r->guest_phys_addr = s->base_gfn * P;
	if (how >> 1 == 1)
		r->flags ^= MS_MEM_LOG_DIRTY_PAGES;
	else if (how >> 1 == 2)
		r->flags ^= MS_MEM_READONLY;
	else if (how >> 1 == 3)
		r->memory_size += P;
}

/* Turn a valid-looking region into each kind of bad or boundary one. */
static void mutate(struct ms_region *r, unsigned int how, uint8_t gpage)
{
	uint64_t size = r->memory_size;

	switch (how) {
	case 0:
		r->flags |= 1u << (2 + gpage % 30);
		break;
	case 1:
		r->memory_size |= 0x800;
		break;
	case 2:
		r->guest_phys_addr += 0x10;
		break;
	case 3:
		r->userspace_addr += 0x20;
		break;
	case 4:
		r->userspace_addr = 0xffff800000000000ull;
		break;
	case 5: /* ends exactly at the user limit: valid, outside the arena */
		r->userspace_addr = KVM_REF_USER_END - size;
		break;
	case 6:
		r->userspace_addr = KVM_REF_USER_END - size + P;
		break;
	case 7:
		r->guest_phys_addr = (1ull << 52) - (gpage % 8) * P;
		break;
	case 8:
		r->guest_phys_addr = 0 - (gpage % 4 + 1) * P;
		break;
	case 9:
		r->memory_size = KVM_REF_MAX_NR_PAGES * P;
		r->userspace_addr = HUGE_HVA;
		break;
	case 10:
		r->memory_size = (KVM_REF_MAX_NR_PAGES + 1) * P;
		r->userspace_addr = HUGE_HVA;
		break;
	default: /* delete with whatever aligned gpa and hva */
		r->memory_size = 0;
		break;
	}
}

/*
 * Ids 0-29, enough for the slot index to split its nodes, then the last
 * valid id and the first invalid one.
 */
static unsigned int fuzz_id(uint8_t idb)
{
	return idb % 32 < 30 ? idb % 32 : ref.slots_per_space - 31 + idb % 32;
}

/*
 * Six bytes to a region.  kind: bits 0-1 the flags, bit 2 a large slot
 * (outside the arena), bits 3-7 the mode: as given, mutated (12 + k) or a
 * re-issue (24 + k) of the slot as model (the map the region applies to)
 * holds it.
 */
static struct ms_region decode_region(struct input *in, struct kvm_ref *model)
{
	uint8_t kind = byte(in), idb = byte(in), asb = byte(in);
	uint8_t hpage = byte(in) % ARENA_PAGES, npages = byte(in) % 9, gpage = byte(in);
	unsigned int as = asb % (ref.address_spaces + 1), id;
	struct kvm_ref_slot *live;
	struct ms_region r;

	id = fuzz_id(idb);
	if (hpage + npages > ARENA_PAGES)
		npages = ARENA_PAGES - hpage;
	r = (struct ms_region){ .slot = as << 16 | id,
				.flags = kind & 3,
				.guest_phys_addr = (uint64_t)gpage * P,
				.memory_size = (uint64_t)npages * P,
				.userspace_addr = arena_hva(hpage) };
	if (kind & 4) {
		r.memory_size = (60 + 17 * (uint64_t)npages) * P;
		r.userspace_addr = LARGE_HVA + hpage * P;
	}
	live = kvm_ref_find(model, as, id);
	if (kind >> 3 >= 24) {
		if (live)
			reissue(&r, live, (kind >> 3) - 24);
	} else if (kind >> 3 >= 12) {
		mutate(&r, (kind >> 3) - 12, gpage);
	}
	if (r.memory_size > MAX_LOGGED_PAGES * P)
		r.flags &= ~MS_MEM_LOG_DIRTY_PAGES;
	return r;
}

static void op_set(struct ms_vm *vm, struct input *in)
{
	struct ms_region r = decode_region(in, &ref);
	int got, want;

	describe("set slot %#x flags %#x gpa %#llx size %#llx hva %#llx", r.slot, r.flags,
		 (unsigned long long)r.guest_phys_addr, (unsigned long long)r.memory_size,
		 (unsigned long long)r.userspace_addr);
	want = kvm_ref_set_memory_region(&ref, &r);
	got = ms_set_memory_region(vm, &r);
	if (got != want)
		mismatch("library returns %d, reference %d", got, want);
}

static void check_lookup(struct ms_vcpu *vcpu, unsigned int as, uint64_t gfn, bool write)
{
	uint64_t hva = 0, want_hva = 0;
	int want = kvm_ref_gfn_to_hva(&ref, as, gfn, write, &want_hva);
	int got = ms_gfn_to_hva(vcpu, as, gfn, write, &hva);

	if (got != want)
		mismatch("gfn_to_hva(as %u, gfn %#llx, %s) returns %d, reference %d", as,
			 (unsigned long long)gfn, write ? "write" : "read", got, want);
	if (!got && hva != want_hva)
		mismatch("gfn_to_hva(as %u, gfn %#llx) gives hva %#llx, reference %#llx", as,
			 (unsigned long long)gfn, (unsigned long long)hva,
			 (unsigned long long)want_hva);
}

/* All 64 bits: near 0, either side of 2^40 (the 52-bit width), the top, anywhere. */
static uint64_t fuzz_gfn(unsigned int region, uint8_t g, struct input *in)
{
	uint64_t any = 0;

	switch (region) {
	case 4:
		return KVM_REF_MAX_GFN - g;
	case 5:
		return KVM_REF_MAX_GFN + 1 + g;
	case 6:
		return UINT64_MAX - g;
	case 7:
		for (int i = 0; i < 8; i++)
			any = any << 8 | byte(in);
		return any;
	default:
		return g;
	}
}

static void op_lookup(struct ms_vcpu *vcpu, struct input *in)
{
	uint8_t b = byte(in), g = byte(in);
	unsigned int as = (b & 15) % (ref.address_spaces + 1);
	uint64_t gfn = fuzz_gfn((b >> 4) & 7, g, in);

	describe("lookup as %u gfn %#llx %s", as, (unsigned long long)gfn,
		 b & 0x80 ? "write" : "read");
	check_lookup(vcpu, as, gfn, b & 0x80);
}

/* gfns [first, first + n) on every address space, both ways. */
static void sweep(struct ms_vcpu *vcpu, uint64_t first, uint64_t n)
{
	describe("sweep of gfns %#llx..%#llx", (unsigned long long)first,
		 (unsigned long long)(first + n - 1));
	for (unsigned int as = 0; as <= ref.address_spaces; as++)
		for (uint64_t gfn = first; gfn < first + n; gfn++) {
			check_lookup(vcpu, as, gfn, false);
			check_lookup(vcpu, as, gfn, true);
		}
}

/* An access through a page mapped outside the arena would fault the harness. */
static bool touches_outside_arena(unsigned int as, uint64_t gpa, size_t len)
{
	uint64_t hva;

	for (uint64_t gfn = gpa / P; gfn <= (gpa + len - 1) / P; gfn++)
		if (!kvm_ref_gfn_to_hva(&ref, as, gfn, false, &hva) && !in_arena(hva))
			return true;
	return false;
}

/* The model's view of the arena for [gpa, gpa + len), piece by piece. */
static unsigned char *shadow_at(unsigned int as, uint64_t gpa)
{
	uint64_t hva;

	kvm_ref_gfn_to_hva(&ref, as, gpa / P, false, &hva);
	return shadow + (hva - arena_hva(0)) + gpa % P;
}

static void compare_read(unsigned int as, uint64_t gpa, const unsigned char *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		size_t piece = P - (gpa + done) % P;

		if (piece > len - done)
			piece = len - done;
		if (memcmp(buf + done, shadow_at(as, gpa + done), piece))
			mismatch("bytes read at gpa %#llx differ from what was written",
				 (unsigned long long)(gpa + done));
		done += piece;
	}
}

static void apply_write(unsigned int as, uint64_t gpa, const unsigned char *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		size_t piece = P - (gpa + done) % P;

		if (piece > len - done)
			piece = len - done;
		memcpy(shadow_at(as, gpa + done), buf + done, piece);
		done += piece;
	}
}

static void op_access(struct ms_vcpu *vcpu, struct input *in, bool write)
{
	uint8_t b = byte(in), gpage = byte(in), off = byte(in), lenb = byte(in), seed = byte(in);
	uint8_t high = byte(in);
	unsigned int as = b % (ref.address_spaces + 1);
	/* A set top bit puts the gpa past the width, where it must alias nothing. */
	uint64_t gpa = (uint64_t)gpage * P + off * 16u +
		       (high & 0x80 ? 1ull << 52 | (uint64_t)(high & 0x7f) << 57 : 0);
	size_t len = lenb % (MAX_ACCESS + 1);
	unsigned char buf[MAX_ACCESS];
	int got, want;

	if (len && touches_outside_arena(as, gpa, len))
		return;
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed + i * 31);
	describe("%s as %u gpa %#llx len %zu", write ? "write" : "read", as,
		 (unsigned long long)gpa, len);
	want = kvm_ref_access(&ref, as, gpa, len, write);
	got =
	    write ? ms_vcpu_write(vcpu, as, gpa, buf, len) : ms_vcpu_read(vcpu, as, gpa, buf, len);
	if (got != want)
		mismatch("library returns %d, reference %d", got, want);
	if (!got && !write)
		compare_read(as, gpa, buf, len);
	if (!got && write)
		apply_write(as, gpa, buf, len);
	if (write && memcmp(arena, shadow, sizeof(shadow)))
		mismatch("the arena differs from the model after the write");
}

/*
 * A dirty-log slot number: sel bit 7, any 32 bits; else an address space
 * (one past the last too) and an id as op_set picks them.
 */
static uint32_t fuzz_slot_nr(uint8_t sel, struct input *in)
{
	uint8_t idb, asb;

	if (sel & 0x80)
		return (uint32_t)bytes(in, 4);
	idb = byte(in);
	asb = byte(in);
	return (asb % (ref.address_spaces + 1)) << 16 | fuzz_id(idb);
}

/* The model's logged slot named by slot_nr, or NULL. */
static const struct kvm_ref_slot *logged(uint32_t slot_nr)
{
	struct kvm_ref_slot *s;

	if (!kvm_ref_slot_nr_valid(&ref, slot_nr) || kvm_ref_logged_slot(&ref, slot_nr, &s))
		return NULL;
	return s;
}

/*
 * Get slot_nr's bitmap from both (null: the library gets a NULL buffer) and
 * compare the return codes and every word; the buffer is exactly as long as
 * the slot's bitmap, so that ASan catches a word written past it, and must be
 * left alone on failure.
 */
static void check_get(struct ms_vm *vm, uint32_t slot_nr, bool null)
{
	const struct kvm_ref_slot *s = logged(slot_nr);
	uint64_t words = s ? kvm_ref_bitmap_words(s->npages) : 1, want_bits[MAX_WORDS];
	uint64_t *buf;
	int got, want;

	if (words > MAX_WORDS)
		mismatch("harness: a logged slot of %llu pages", (unsigned long long)s->npages);
	buf = malloc(words * sizeof(*buf));
	if (!buf)
		abort();
	for (uint64_t i = 0; i < words; i++)
		buf[i] = POISON;
	want = kvm_ref_get_dirty_log(&ref, slot_nr, null ? NULL : want_bits);
	got = ms_get_dirty_log(vm, slot_nr, null ? NULL : buf);
	if (got != want)
		mismatch("library returns %d, reference %d", got, want);
	traced(got);
	for (uint64_t i = 0; trace && !got && !null && i < words; i++)
		fprintf(stderr, "fuzz: op %u:   word %llu: %#llx\n", op_index,
			(unsigned long long)i, (unsigned long long)buf[i]);
	for (uint64_t i = 0; i < words; i++) {
		uint64_t expect = got || null ? POISON : want_bits[i];

		if (buf[i] != expect)
			mismatch("bitmap word %llu is %#llx, reference %#llx",
				 (unsigned long long)i, (unsigned long long)buf[i],
				 (unsigned long long)expect);
	}
	free(buf);
}

/* sel: bit 7 any slot number; 0x7f in bits 0-6, a NULL buffer. */
static void op_get_dirty_log(struct ms_vm *vm, struct input *in)
{
	uint8_t sel = byte(in);
	uint32_t slot_nr = fuzz_slot_nr(sel, in);
	bool null = (sel & 0x7f) == 0x7f;

	describe("get dirty log of slot %#x%s", slot_nr, null ? " into NULL" : "");
	check_get(vm, slot_nr, null);
}

/*
 * first_page by fb >> 6: a word boundary 0..448; fb & 63, unaligned but for
 * 0; the start of the slot's last word or the word after it; any 64 bits.
 * num_pages by nb >> 6: whole words 0..448; the pages up to the slot's end,
 * -4..+3; nb & 63; any 32 bits.  The caller's bitmap by mb & 3: all ones,
 * input bytes, one bit per word (bit mb >> 2), none; mb 0xff: NULL.
 */
static void op_clear_dirty_log(struct ms_vm *vm, struct input *in)
{
	uint8_t sel = byte(in);
	uint32_t slot_nr = fuzz_slot_nr(sel, in);
	uint8_t fb = byte(in), nb = byte(in), mb = byte(in);
	const struct kvm_ref_slot *s = kvm_ref_find(&ref, slot_nr >> 16, slot_nr & 0xffff);
	uint64_t npages = s ? s->npages : 0, first_page, words, *bits = NULL;
	uint32_t num_pages;
	int got, want;

	switch (fb >> 6) {
	case 0:
		first_page = 64 * (fb & 7);
		break;
	case 1:
		first_page = fb & 63;
		break;
	case 2:
		first_page = (npages ? (npages - 1) & ~63ull : 0) + 64 * (fb & 1);
		break;
	default:
		first_page = bytes(in, 8);
		break;
	}
	switch (nb >> 6) {
	case 0:
		num_pages = 64 * (nb & 7);
		break;
	case 1:
		num_pages = (uint32_t)(npages - first_page + (nb & 7) - 4);
		break;
	case 2:
		num_pages = nb & 63;
		break;
	default:
		num_pages = (uint32_t)bytes(in, 4);
		break;
	}
	/* A valid range fits MAX_WORDS; an invalid one must not be read. */
	words = kvm_ref_bitmap_words(num_pages);
	if (words > MAX_WORDS)
		words = MAX_WORDS;
	if (mb != 0xff) {
		bits = malloc((words ? words : 1) * sizeof(*bits));
		if (!bits)
			abort();
		for (uint64_t i = 0; i < words; i++) {
			switch (mb & 3) {
			case 0:
				bits[i] = UINT64_MAX;
				break;
			case 1:
				bits[i] = bytes(in, 8);
				break;
			case 2:
				bits[i] = 1ull << (mb >> 2);
				break;
			default:
				bits[i] = 0;
				break;
			}
		}
	}
	describe("clear dirty log of slot %#x pages %#llx + %#x, bitmap %s%#llx", slot_nr,
		 (unsigned long long)first_page, num_pages, bits ? "" : "NULL ",
		 (unsigned long long)(bits && words ? bits[0] : 0));
	want = kvm_ref_clear_dirty_log(&ref, slot_nr, first_page, num_pages, bits);
	got = ms_clear_dirty_log(vm, slot_nr, first_page, num_pages, bits);
	if (got != want)
		mismatch("library returns %d, reference %d", got, want);
	traced(got);
	free(bits);
	/* With manual protect a get only reads: look at the result now. */
	if (ref.manual_protect && logged(slot_nr)) {
		describe("get dirty log of slot %#x after the clear", slot_nr);
		check_get(vm, slot_nr, false);
	}
}

/* b: address space (one past the last too) and fuzz_gfn()'s region; 1 adds 256. */
static void op_mark_page_dirty(struct ms_vm *vm, struct input *in)
{
	uint8_t b = byte(in), g = byte(in);
	unsigned int as = (b & 15) % (ref.address_spaces + 1), region = (b >> 4) & 7;
	uint64_t gfn = fuzz_gfn(region, g, in) + (region == 1 ? 256 : 0);
	int got, want;

	describe("mark page dirty as %u gfn %#llx", as, (unsigned long long)gfn);
	want = kvm_ref_mark_page_dirty(&ref, as, gfn);
	got = ms_mark_page_dirty(vm, as, gfn);
	if (got != want)
		mismatch("library returns %d, reference %d", got, want);
	traced(got);
}

/*
 * Each address space's map, as ms_get_memory_map gives it, must be the
 * model's slots in gpa order, with their sizes, hvas and flags.
 */
static void check_map(struct ms_vm *vm)
{
	static struct ms_region map[KVM_REF_SLOTS + 1];

	for (unsigned int as = 0; as < ref.address_spaces; as++) {
		unsigned int want_n = 0;
		size_t n = 0;
		int got = ms_get_memory_map(vm, as, map, KVM_REF_SLOTS + 1, &n);

		if (got)
			mismatch("get_memory_map(as %u) returns %d", as, got);
		for (unsigned int i = 0; i < ref.nslots; i++)
			want_n += ref.slot[i].as_id == as;
		if (n != want_n)
			mismatch("as %u holds %zu slots, reference %u", as, n, want_n);
		for (size_t i = 0; i < n; i++) {
			const struct ms_region *r = &map[i];
			const struct kvm_ref_slot *s = kvm_ref_find(&ref, as, r->slot & 0xffff);

			if (r->slot >> 16 != as || !s)
				mismatch("as %u: map entry %zu is slot %#x, not in the reference",
					 as, i, r->slot);
			if (r->guest_phys_addr != s->base_gfn * P ||
			    r->memory_size != s->npages * P ||
			    r->userspace_addr != s->userspace_addr || r->flags != s->flags)
				mismatch("slot %#x is gpa %#llx size %#llx hva %#llx flags %#x, "
					 "reference %#llx %#llx %#llx %#x",
					 r->slot, (unsigned long long)r->guest_phys_addr,
					 (unsigned long long)r->memory_size,
					 (unsigned long long)r->userspace_addr, r->flags,
					 (unsigned long long)(s->base_gfn * P),
					 (unsigned long long)(s->npages * P),
					 (unsigned long long)s->userspace_addr, s->flags);
			if (i && r->guest_phys_addr <= map[i - 1].guest_phys_addr)
				mismatch("as %u: map entry %zu is out of gpa order", as, i);
		}
	}
}

#define MAX_TXN 8

static void print_regions(const struct ms_region *regions, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(stderr,
			"fuzz: op %u:   change %zu: slot %#x flags %#x gpa %#llx size %#llx "
			"hva %#llx\n",
			op_index, i, regions[i].slot, regions[i].flags,
			(unsigned long long)regions[i].guest_phys_addr,
			(unsigned long long)regions[i].memory_size,
			(unsigned long long)regions[i].userspace_addr);
}

/*
 * A transaction of (nb & 15) % 9 changes, each decoded as op_set's against
 * the map the changes before it leave (a scratch copy of the model, so that
 * re-issues reach slots that earlier changes create, move or re-flag).  nb
 * bits 4-5 both set: ms_replace_memory_map; bit 6: failed is NULL.  The
 * return code, the failing index, then the maps and the bitmaps of the slots
 * it names (of every logged slot with manual protect, where a get only
 * reads; without, only those the model does not log, so that no harvest
 * write-protects what a later write should find) are compared.
 */
static void op_txn(struct ms_vm *vm, struct input *in)
{
	uint8_t nb = byte(in);
	size_t n = (nb & 15) % (MAX_TXN + 1), failed = SIZE_MAX, want_failed = SIZE_MAX;
	bool replace = (nb & 0x30) == 0x30, null = nb & 0x40;
	struct ms_region regions[MAX_TXN];
	static struct kvm_ref scratch;
	int got, want;

	kvm_ref_copy(&scratch, &ref);
	for (size_t i = 0; i < n; i++) {
		regions[i] = decode_region(in, &scratch);
		kvm_ref_set_memory_region(&scratch, &regions[i]);
	}
	kvm_ref_fini(&scratch);
	describe("%s of %zu changes%s", replace ? "replace_memory_map" : "set_memory_regions", n,
		 null ? ", failed NULL" : "");
	if (trace)
		print_regions(regions, n);
	want = kvm_ref_transaction(&ref, regions, n, replace, &want_failed);
	got = replace ? ms_replace_memory_map(vm, regions, n, null ? NULL : &failed)
		      : ms_set_memory_regions(vm, regions, n, null ? NULL : &failed);
	if ((got != want || (got && !null && failed != want_failed)) && !trace)
		print_regions(regions, n);
	if (got != want)
		mismatch("library returns %d, reference %d (change %zd)", got, want,
			 (ssize_t)want_failed);
	if (got && !null && failed != want_failed)
		mismatch("library fails change %zd, reference change %zu", (ssize_t)failed,
			 want_failed);
	traced(got);
	check_map(vm);
	for (size_t i = 0; i < n; i++) {
		if (!kvm_ref_slot_nr_valid(&ref, regions[i].slot))
			continue;
		if (!ref.manual_protect && logged(regions[i].slot))
			continue;
		describe("get dirty log of slot %#x after the transaction", regions[i].slot);
		check_get(vm, regions[i].slot, false);
	}
	for (unsigned int i = 0; ref.manual_protect && i < ref.nslots; i++) {
		const struct kvm_ref_slot *s = &ref.slot[i];

		if (!s->dirty_bitmap)
			continue;
		describe("get dirty log of slot %#x after the transaction", s->as_id << 16 | s->id);
		check_get(vm, s->as_id << 16 | s->id, false);
	}
}

/* Frames held for arena pages of [start, end). */
static long frames_in(uint64_t start, uint64_t end)
{
	long n = 0;

	for (uint64_t hva = start; hva < end; hva += P)
		if (in_arena(hva))
			n += page_frames[(hva - arena_hva(0)) / P];
	return n;
}

/*
 * The embedder's remap of host pages, bracketed as the kernel's mm does: once
 * start returns, no frame of the range may be held (the header's promise).  A non-blockable
 * start refuses with -EAGAIN exactly when it would have to zap, i.e. wait a
 * grace period to put frames, and then changes nothing and takes no end.
 * Ranges in the huge slot's part of the host address space hold no frames.
 */
static void op_invalidate(struct ms_vm *vm, struct input *in)
{
	uint8_t first = byte(in) % ARENA_PAGES, n = 1 + byte(in) % 8, how = byte(in);
	uint64_t start = (how & 4 ? HUGE_HVA : arena_hva(0)) + first * P, end = start + n * P;
	long held = frames_in(start, end);
	struct ms_stats st;
	int r;

	describe("invalidate %#llx..%#llx%s%s", (unsigned long long)start, (unsigned long long)end,
		 how & 1 ? " non-blockable" : "", how & 2 ? " with change_pte" : "");
	r = ms_invalidate_range_start(vm, start, end, !(how & 1));
	if (r && !(r == -EAGAIN && (how & 1) && held))
		mismatch("start returns %d with %ld frames held in the range", r, held);
	if (!r && frames_in(start, end))
		mismatch("%ld frames of the range still held once start returned",
			 frames_in(start, end));
	if (r && frames_in(start, end) != held)
		mismatch("a refused start put frames");
	if (!r && (how & 2))
		ms_change_pte(vm, start);
	if (!r)
		ms_invalidate_range_end(vm, start, end);
	ms_vm_stats(vm, &st);
	if (st.mmu_invalidate_in_progress || st.mn_active_invalidate_count || st.change_pte_misuses)
		mismatch("after the end: in progress %lld, active %lld, change_pte misuses %llu",
			 (long long)st.mmu_invalidate_in_progress,
			 (long long)st.mn_active_invalidate_count,
			 (unsigned long long)st.change_pte_misuses);
}

/*
 * The first byte picks address spaces (bits 0-1) and slot ids (bits 2-3),
 * KVM's defaults most often, and dirty logging (bits 4-5): bit 4 manual
 * protect, bit 5 initially set, which without manual protect is -EINVAL
 * (D1): ms_vm_create must fail, and the input ends there.  Creating a VM
 * costs about 2 ms under ASan, ten times the rest of an input, so each
 * configuration's VM is made once and emptied after use, unless bits 6-7 are
 * 01: then it is destroyed with its slots.
 */
#define CONFIG_DESTROY(b) ((b) >> 6 == 1)

static struct ms_vm *vms[64];

static struct ms_vm *vm_for(uint8_t b)
{
	static const unsigned int spaces[4] = { 2, 2, 1, 3 };
	static const unsigned int ids[4] = { MS_MAX_SLOTS_PER_SPACE, MS_MAX_SLOTS_PER_SPACE, 8, 7 };
	struct ms_config cfg;
	int got, want;

	ms_config_init(&cfg);
	cfg.address_spaces = spaces[b & 3];
	cfg.slots_per_space = ids[b >> 2 & 3];
	cfg.frame_ops = &frame_ops;
	cfg.manual_dirty_log_protect = b & 0x10;
	cfg.dirty_log_initially_set = b & 0x20;
	kvm_ref_init(&ref, cfg.address_spaces, cfg.slots_per_space);
	want = kvm_ref_dirty_log_caps(&ref, cfg.manual_dirty_log_protect,
				      cfg.dirty_log_initially_set);
	if (vms[b & 63])
		return vms[b & 63];
	describe("create a VM, config %#x", b);
	got = ms_vm_create(&cfg, &vms[b & 63]);
	if (got != want)
		mismatch("library returns %d, reference %d", got, want);
	return got ? NULL : vms[b & 63];
}

static void run(struct ms_vm *vm, struct ms_vcpu *vcpu, struct input *in)
{
	for (op_index = 0; in->size && op_index < MAX_OPS; op_index++) {
		switch (byte(in) % 32) {
		case 0:
		case 1:
		case 2:
		case 8:
		case 9:
		case 25:
			op_set(vm, in);
			break;
		case 3:
		case 10:
		case 26:
			op_lookup(vcpu, in);
			break;
		case 4:
		case 11:
		case 27:
			op_access(vcpu, in, false);
			break;
		case 5:
		case 6:
		case 12:
		case 28:
			op_access(vcpu, in, true);
			break;
		case 13:
		case 14:
		case 29:
			op_invalidate(vm, in);
			break;
		case 16:
		case 17:
		case 18:
			op_get_dirty_log(vm, in);
			break;
		case 19:
		case 20:
		case 21:
		case 22:
			op_clear_dirty_log(vm, in);
			break;
		case 23:
		case 24:
			op_mark_page_dirty(vm, in);
			break;
		case 15:
		case 30:
			op_txn(vm, in);
			break;
		default:
			sweep(vcpu, byte(in), SWEEP_WINDOW);
			break;
		}
	}
	describe("the map at the end");
	check_map(vm);
	sweep(vcpu, 0, SWEEP_GFNS);
}

/* Every logged slot's bitmap, a last time. */
static void final_harvest(struct ms_vm *vm)
{
	for (unsigned int i = 0; i < ref.nslots; i++) {
		const struct kvm_ref_slot *s = &ref.slot[i];

		if (!s->dirty_bitmap)
			continue;
		describe("final get dirty log of slot %#x", s->as_id << 16 | s->id);
		check_get(vm, s->as_id << 16 | s->id, false);
	}
}

/* Delete what the model holds; the library must then hold no frame either. */
static void empty(struct ms_vm *vm)
{
	while (ref.nslots) {
		const struct kvm_ref_slot *s = &ref.slot[ref.nslots - 1];
		struct ms_region r = { .slot = s->as_id << 16 | s->id };
		int got;

		describe("empty: delete slot %#x", r.slot);
		kvm_ref_set_memory_region(&ref, &r);
		got = ms_set_memory_region(vm, &r);
		if (got)
			mismatch("library returns %d, reference 0", got);
	}
	if (frames_out)
		mismatch("%ld frames still got with every slot deleted", frames_out);
}

static void destroy(uint8_t b)
{
	describe("destroy the VM with %u slots", ref.nslots);
	ms_vm_destroy(vms[b & 63]);
	vms[b & 63] = NULL;
	kvm_ref_fini(&ref);
	if (frames_out)
		mismatch("%ld frames got and never put", frames_out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct ms_vm *vm;
	struct ms_vcpu *vcpu;
	uint8_t b;

	if (!arena) {
		arena = mmap(NULL, ARENA_PAGES * P, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (arena == MAP_FAILED)
			abort();
		trace = getenv("MEMSLOTS_FUZZ_TRACE");
	}
	memset(arena, 0, ARENA_PAGES * P);
	memset(shadow, 0, sizeof(shadow));
	b = byte(&in);
	op_index = 0;
	vm = vm_for(b);
	if (!vm)
		return 0;
	if (ms_vcpu_create(vm, &vcpu))
		abort();
	run(vm, vcpu, &in);
	ms_vcpu_destroy(vcpu);
	final_harvest(vm);
	if (CONFIG_DESTROY(b))
		destroy(b);
	else
		empty(vm);
	return 0;
}
