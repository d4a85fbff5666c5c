#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the seed corpus of fuzz_memslots into tests/fuzz/corpus/, one
scenario a file, named for what it exercises.  The encoding is the decoder's
in fuzz_memslots.c (change both together): a configuration byte, then
operations.  Usage: tests/fuzz/seeds.py [DIR]"""
import os
import sys

PAGE = 4096


MANUAL, INITIALLY_SET = 1, 2
LOG, READONLY = 1, 2


def config(spaces=0, ids=0, destroy=False, dirty=0):
    """spaces 0: two address spaces, 2: one, 3: three; ids 0: 32764, 2: 8, 3: 7;
    dirty: MANUAL (manual protect) | INITIALLY_SET, which alone must make
    ms_vm_create fail; destroy: destroy the VM at the end, slots and all,
    instead of emptying it."""
    return bytes([spaces | ids << 2 | dirty << 4 | (0x40 if destroy else 0)])


def put(id=0, as_=0, hpage=0, npages=1, gpage=16, flags=0, mode=0, large=False):
    """id 0-29 as given, 30 the last valid id, 31 the first invalid one;
    mode 0: as given; 12 + k: bad or boundary variant k; 24 + k: re-issue.
    large: 60 + 17 * npages pages (npages 0-8) outside the arena, at host page
    hpage of its own range: accesses skip it, marks and bitmaps do not."""
    return bytes([0, flags | (4 if large else 0) | mode << 3, id, as_, hpage, npages, gpage])


def mutate(how, **kw):
    return put(mode=12 + how, **kw)


def reissue(how, **kw):
    """how & 1 keeps the gpa; how >> 1: 0 same, 1 dirty logging flipped,
    2 READONLY flipped, 3 one page longer."""
    return put(mode=24 + how, **kw)


def delete(id=0, as_=0, gpage=0):
    return put(id=id, as_=as_, npages=0, gpage=gpage)


def lookup(gfn, as_=0, write=False, high=False, region=0, any_gfn=0):
    """region 0: gfn as given; 4 (high): just below 2^40, the top of the 52-bit
    width; 5: from 2^40 up; 6: just below 2^64; 7: any_gfn, all 64 bits."""
    region = 4 if high else region
    tail = any_gfn.to_bytes(8, "big") if region == 7 else b""
    return bytes([3, as_ | (0x80 if write else 0) | region << 4, gfn]) + tail


def read(gpage, off=0, length=64, as_=0, beyond=None):
    """off counts 16-byte steps into the page; beyond k: the gpa plus
    2^52 + k * 2^57, past the guest's physical width."""
    return bytes([4, as_, gpage, off, length, 0, 0 if beyond is None else 0x80 | beyond])


def write(gpage, off=0, length=64, as_=0, seed=1, beyond=None):
    return bytes([5, as_, gpage, off, length, seed, 0 if beyond is None else 0x80 | beyond])


def sweep(first=0):
    return bytes([7, first])


def _slot_nr(sel, id, as_, slot):
    if slot is not None:
        return bytes([sel | 0x80]) + slot.to_bytes(4, "big")
    return bytes([sel, id, as_])


def get_log(id=0, as_=0, slot=None, null=False):
    """ms_get_dirty_log of id in as_ (ids as in put), or of any 32-bit slot
    number; null: a NULL buffer."""
    return bytes([16]) + _slot_nr(0x7f if null else 0, id, as_, slot)


def clear_log(id=0, as_=0, slot=None, first=0, first_unaligned=None, first_last_word=None,
              first_any=None, words=1, to_end=None, small=None, num_any=None, bits="ones",
              data=()):
    """ms_clear_dirty_log.  first_page: first * 64 (0-7); first_unaligned (0-63);
    first_last_word 0: the start of the slot's last word, 1: the word after it;
    first_any: any 64 bits.  num_pages: words * 64 (0-7); to_end: the pages up
    to the slot's end plus to_end (-4..3); small (0-63); num_any: any 32 bits.
    bits: "ones", "data" (the words of data), ("bit", b) one bit a word, "none"
    or "null" (a NULL buffer)."""
    tail = b""
    if first_unaligned is not None:
        fb = 0x40 | first_unaligned
    elif first_last_word is not None:
        fb = 0x80 | first_last_word
    elif first_any is not None:
        fb = 0xc0
        tail += first_any.to_bytes(8, "big")
    else:
        fb = first
    if to_end is not None:
        nb = 0x40 | (to_end + 4)
    elif small is not None:
        nb = 0x80 | small
    elif num_any is not None:
        nb = 0xc0
        tail += num_any.to_bytes(4, "big")
    else:
        nb = words
    if bits == "ones":
        mb = 0
    elif bits == "data":
        mb = 1
        tail += b"".join(w.to_bytes(8, "big") for w in data)
    elif bits == "none":
        mb = 3
    elif bits == "null":
        mb = 0xff
    else:
        mb = 2 | bits[1] << 2
    return bytes([19]) + _slot_nr(0, id, as_, slot) + bytes([fb, nb, mb]) + tail


def mark(gfn, as_=0):
    """ms_mark_page_dirty of gfn 0-511 (256 and up through region 1)."""
    return bytes([23, as_ | (0x10 if gfn >= 256 else 0), gfn % 256])


def invalidate(first_page, npages=1, blockable=True, change_pte=False, outside=False):
    """start/end around arena pages, or (outside) pages of the huge slot's range."""
    how = (0 if blockable else 1) | (2 if change_pte else 0) | (4 if outside else 0)
    return bytes([14, first_page, npages - 1, how])


def txn(*changes, replace=False, null=False):
    """ms_set_memory_regions (replace: ms_replace_memory_map) of up to 8
    changes made with put, mutate, reissue or delete; a re-issue reads the
    slot as the changes before it leave it.  null: failed is NULL."""
    assert len(changes) <= 8 and all(c[0] == 0 and len(c) == 7 for c in changes)
    nb = len(changes) | (0x30 if replace else 0) | (0x40 if null else 0)
    return bytes([15, nb]) + b"".join(c[1:] for c in changes)


SEEDS = {
    "create-write-read": config() + put(npages=4) + write(17, 3, 100) + read(17, 3, 100)
    + lookup(17) + lookup(17, write=True),
    "write-across-pages": config() + put(npages=2) + write(16, 250, 128) + read(16, 250, 128),
    "write-into-a-gap": config() + put(id=0, npages=2, gpage=16) + put(id=1, hpage=8, gpage=19)
    + write(17, 250, 128) + read(17, 250, 128) + sweep(14),
    "write-across-two-slots": config() + put(id=0, hpage=0, npages=2, gpage=16)
    + put(id=1, hpage=9, npages=2, gpage=18) + write(17, 250, 128) + read(17, 250, 128),
    "move-then-read": config() + put(npages=2) + write(16) + read(16)
    + reissue(0, gpage=40) + read(40) + read(16) + lookup(16) + lookup(40),
    "delete-then-read": config() + put() + write(16) + read(16) + delete() + read(16)
    + lookup(16) + write(16),
    "delete-and-recreate-elsewhere": config() + put(hpage=3) + write(16) + delete()
    + put(hpage=5, gpage=16) + read(16) + write(16, seed=9) + read(16),
    "readonly-write": config() + put(id=0, hpage=2, flags=2) + read(16) + write(16)
    + put(id=1, hpage=2, gpage=30) + write(30, seed=7) + read(16) + lookup(16, write=True),
    "flags-only-dirty-logging": config() + put(npages=3) + read(16) + reissue(3, gpage=16)
    + write(17) + read(17) + reissue(3, gpage=16) + read(17),
    "same-arguments-again": config() + put(npages=3, flags=1) + read(16) + reissue(1)
    + read(16) + write(18) + read(18),
    "reissue-flip-readonly": config() + put(npages=3) + write(16) + reissue(5) + reissue(4)
    + write(16) + read(16),
    "reissue-grow": config() + put(npages=3) + reissue(7) + reissue(6, gpage=100) + read(16),
    "overlap-on-create": config() + put(id=0, npages=4, gpage=16)
    + put(id=1, hpage=8, npages=4, gpage=18) + put(id=1, hpage=8, npages=4, gpage=20)
    + put(id=2, hpage=16, npages=1, gpage=15) + put(id=3, hpage=20, npages=8, gpage=12)
    + sweep(10),
    "overlap-on-move": config() + put(id=0, npages=4, gpage=16)
    + put(id=1, hpage=8, npages=4, gpage=24) + reissue(0, id=1, gpage=18)
    + reissue(0, id=1, gpage=20) + reissue(0, id=1, gpage=14) + sweep(12),
    "two-address-spaces": config() + put(as_=0, hpage=0) + put(as_=1, hpage=4)
    + write(16, as_=0, seed=3) + write(16, as_=1, seed=5) + read(16, as_=0) + read(16, as_=1)
    + delete(as_=1) + read(16, as_=1) + read(16, as_=0),
    "two-slots-one-hva": config() + put(id=0, hpage=6, gpage=16) + put(id=1, hpage=6, gpage=32)
    + write(16, 10, 40) + read(32, 10, 40) + write(32, 0, 16, seed=4) + read(16),
    "bad-arguments": config() + mutate(0) + mutate(1) + mutate(2) + mutate(3) + mutate(4)
    + mutate(6) + mutate(8, npages=2) + mutate(10) + sweep(14) + read(16),
    "bad-arguments-on-delete": config() + put(id=2) + mutate(0, id=2, npages=0)
    + mutate(2, id=2, npages=0) + mutate(3, id=2, npages=0) + mutate(6, id=2, npages=0)
    + read(16) + delete(id=2) + delete(id=2),
    "hva-at-the-user-limit": config() + mutate(5, npages=4) + lookup(16) + lookup(19)
    + read(16) + mutate(5, id=1, npages=0) + sweep(14),
    "gpa-at-2^52": config() + mutate(7, gpage=1, npages=1) + lookup(0, high=True)
    + mutate(7, id=1, as_=1, gpage=1, npages=2) + mutate(7, id=2, gpage=4, npages=3)
    + lookup(3, high=True) + reissue(0, id=2, gpage=40) + lookup(40),
    "gpa-wraps": config() + mutate(8, gpage=0, npages=1) + mutate(8, gpage=1, npages=3)
    + mutate(8, gpage=3, npages=3),
    "2^31-1-pages": config() + mutate(9, gpage=0) + lookup(200) + lookup(16, write=True)
    + put(id=1, gpage=16) + sweep(0) + delete() + put(id=1, gpage=16) + read(16),
    "2^31-pages": config() + mutate(10, gpage=0) + lookup(0) + put(id=1) + read(16),
    "slot-ids-of-8": config(ids=2) + put(id=30) + put(id=31, gpage=40) + put(id=7, gpage=50)
    + lookup(16) + lookup(40) + delete(id=31) + delete(id=30),
    "slot-ids-of-32764": config() + put(id=30) + put(id=31, gpage=40) + delete(id=31)
    + reissue(0, id=30, gpage=50) + read(50),
    "one-address-space": config(spaces=2) + put(as_=1) + put(as_=0) + read(16, as_=1)
    + lookup(16, as_=1) + write(16, as_=0) + read(16),
    "three-address-spaces": config(spaces=3, ids=3) + put(as_=2, hpage=1) + put(as_=3)
    + write(16, as_=2) + read(16, as_=2) + read(16, as_=1) + put(id=6, as_=1),
    "delete-missing": config() + delete(id=3) + delete(id=3, as_=1) + put(id=3, as_=1)
    + delete(id=3) + read(16, as_=1),
    "move-and-flip-dirty-logging": config() + put(npages=2, flags=1) + write(17)
    + reissue(2, gpage=60) + read(61) + reissue(3, gpage=60) + reissue(2, gpage=16)
    + read(17),
    "cached-slot-after-move": config() + put(npages=2) + put(id=1, hpage=4, gpage=20)
    + lookup(16) + lookup(17) + reissue(0, gpage=30) + lookup(16) + lookup(30)
    + reissue(0, gpage=16) + read(16) + lookup(31),
    "zero-length-access": config() + read(16, length=0) + write(16, length=0) + put()
    + read(16, length=0) + read(16, 255, 128),
    "thirty-slots-one-space": config() + b"".join(put(id=i, hpage=2 * i, npages=1 + i % 3,
                                                      gpage=8 * i) for i in range(30))
    + sweep(0) + b"".join(delete(id=i) for i in range(0, 30, 3))
    + b"".join(reissue(0, id=i, gpage=8 * i + 4) for i in range(1, 30, 3)) + sweep(40)
    + write(57, 0, 128) + read(57, 0, 128),
    "invalidate-mapped-pages": config() + put(hpage=4, npages=4) + write(16) + read(17)
    + invalidate(4, 2) + read(16) + write(17) + invalidate(5, 1, blockable=False)
    + invalidate(7, 1, change_pte=True) + read(19) + invalidate(20, 4) + read(16),
    "invalidate-unmapped-range": config() + mutate(9, gpage=0) + invalidate(0, 8, outside=True)
    + invalidate(30, 2) + lookup(3),
    "destroy-a-populated-vm": config(spaces=3, destroy=True) + put(hpage=1, npages=3)
    + put(id=1, as_=2, hpage=10, npages=2, gpage=40) + write(16, 0, 128) + read(41)
    + invalidate(1, 1),
    "many-slots": config() + b"".join(put(id=i, as_=a, hpage=8 * i + 4 * a, npages=4,
                                           gpage=16 + 5 * i)
                                       for a in (0, 1) for i in range(6))
    + write(16, 0, 128) + write(37, 128, 128, as_=1) + sweep(14) + sweep(30)
    + b"".join(delete(id=i, as_=a) for a in (1, 0) for i in (5, 0, 3)) + sweep(14),
    "gpa-past-the-width": config() + put(npages=2) + write(16) + read(16, beyond=0)
    + write(16, beyond=0, seed=9) + read(17, beyond=127) + write(17, beyond=5) + read(16),
    "top-gfns-with-many-slots": config() + b"".join(put(id=i, hpage=i, gpage=16 + 2 * i)
                                                   for i in range(12))
    + lookup(0, region=6) + lookup(1, region=6) + lookup(0, region=5) + lookup(255, high=True)
    + lookup(0, region=7, any_gfn=2**64 - 1) + lookup(0, region=7, any_gfn=2**63)
    + lookup(0, region=7, any_gfn=16 + 2 * 11) + sweep(14),

    # Dirty logging: every bitmap is compared word for word with the model.
    "dirty-log-get-clears": config() + put(npages=4, flags=LOG) + read(17) + write(16)
    + write(18, 250, 128) + get_log() + get_log() + write(16, seed=5) + read(19) + get_log()
    + write(19) + write(19, seed=3),
    "dirty-log-manual-clear": config(dirty=MANUAL) + put(npages=4, flags=LOG) + write(16)
    + write(17) + write(19) + get_log() + get_log()
    + clear_log(small=4, bits="data", data=[0b0101]) + write(16, seed=2) + write(17, seed=2)
    + get_log() + clear_log(to_end=0) + get_log() + write(18) + clear_log(words=0) + get_log(),
    "dirty-log-initially-set": config(dirty=MANUAL | INITIALLY_SET) + put(npages=3) + write(16)
    + reissue(3) + write(16, seed=4) + write(17) + get_log() + clear_log(to_end=0, bits=("bit", 0))
    + get_log() + write(16, seed=6) + get_log()
    + put(id=1, npages=1, gpage=100, flags=LOG, large=True)
    + get_log(id=1) + clear_log(id=1, first=1, to_end=0, bits=("bit", 12)) + get_log(id=1),
    "dirty-log-initially-set-without-manual": config(dirty=INITIALLY_SET) + put(flags=LOG)
    + get_log(),
    "dirty-log-move-keeps-bits": config() + put(npages=3, flags=LOG) + write(17) + mark(18)
    + reissue(0, gpage=40) + read(41) + get_log() + write(40) + reissue(2, gpage=60)
    + write(61) + reissue(3, gpage=60) + get_log() + write(62) + get_log(),
    "dirty-log-flag-off-frees": config(dirty=MANUAL) + put(npages=3, flags=LOG) + write(16)
    + reissue(3) + get_log() + clear_log() + write(17) + reissue(3) + get_log() + write(18)
    + get_log() + delete() + get_log() + put(npages=3, flags=LOG, hpage=5) + get_log(),
    "dirty-log-bad-clear-ranges": config(dirty=MANUAL)
    + put(npages=1, gpage=100, flags=LOG, large=True)
    + put(id=1, npages=2, flags=LOG) + put(id=2, npages=1, gpage=30)
    + b"".join(mark(g) for g in (100, 163, 164, 176, 177))
    + clear_log(first_unaligned=5) + clear_log(first=2, words=0)
    + clear_log(first_last_word=1, words=0)
    + clear_log(first=1, small=10) + clear_log(first=1, to_end=-1) + clear_log(first=1, to_end=1)
    + clear_log(first_any=2**64 - 64, num_any=64) + clear_log(num_any=2**32 - 1)
    + clear_log(id=31) + clear_log(id=31, first_unaligned=3) + clear_log(as_=2)
    + clear_log(slot=0xffffffff) + clear_log(id=5) + clear_log(id=5, first_unaligned=1)
    + clear_log(id=2) + clear_log(bits="null") + clear_log(words=0, bits="null")
    + clear_log(first=1, to_end=0, bits=("bit", 35)) + get_log()
    + clear_log(first_last_word=0, to_end=0, bits="data", data=[1 << 36 | 1 << 63]) + get_log()
    + clear_log(id=1, to_end=0) + get_log(id=1) + clear_log(id=1, first_last_word=1, words=0)
    + clear_log(words=1) + get_log() + clear_log(first=1, to_end=0) + get_log(),
    "dirty-log-turned-on-protects": config() + put(npages=3) + write(16) + read(17)
    + reissue(3) + write(16, seed=8) + write(17, seed=8) + get_log() + reissue(3) + write(18)
    + reissue(2, gpage=40) + write(42) + get_log(),
    "dirty-log-clear-at-the-end": config(dirty=MANUAL)
    + put(npages=4, gpage=0, flags=LOG, large=True) + mark(0) + mark(64) + mark(127)
    + clear_log(first=2, words=0) + clear_log(first_last_word=1, words=0)
    + clear_log(first=2, small=1) + clear_log(first=1, to_end=0, bits=("bit", 63)) + get_log()
    + clear_log(first=1, words=1) + clear_log(to_end=0, bits="data", data=[1, 0]) + get_log(),
    "dirty-log-bad-slots": config(spaces=3, ids=3, dirty=MANUAL) + put(as_=2, flags=LOG)
    + put(id=1, as_=1) + write(16, as_=2) + get_log(as_=2) + get_log(as_=3) + get_log(id=31)
    + get_log(id=30) + get_log(id=6, as_=2) + get_log(id=1, as_=1) + get_log(as_=2, null=True)
    + get_log(slot=0xffff0000) + get_log(slot=0x0002ffff) + get_log(slot=2 << 16 | 0x10000),
    "dirty-log-mark-page": config() + put(npages=2, flags=LOG) + put(id=1, hpage=4, gpage=20)
    + put(id=2, npages=3, gpage=230, flags=LOG, large=True) + mark(16) + mark(17) + mark(18)
    + mark(20) + mark(16, as_=1) + mark(16, as_=2) + mark(300) + mark(420) + get_log()
    + get_log(id=2) + get_log(id=1),
    "dirty-log-readonly": config(dirty=MANUAL) + put(npages=2, flags=LOG | READONLY) + write(16)
    + read(16) + get_log() + mark(17) + get_log() + clear_log(to_end=0) + get_log(),
    "dirty-log-invalidate": config() + put(hpage=4, npages=3, flags=LOG) + write(16)
    + invalidate(4, 2) + write(16) + get_log() + write(17) + invalidate(5, 1) + get_log()
    + write(17) + invalidate(5, 1, change_pte=True) + write(17) + get_log(),
    "dirty-log-two-address-spaces": config(dirty=MANUAL) + put(as_=0, npages=2, flags=LOG)
    + put(as_=1, hpage=0, npages=2, flags=LOG) + write(16, as_=0) + write(17, as_=1)
    + get_log(as_=0) + get_log(as_=1) + clear_log(as_=1, to_end=0) + get_log(as_=0)
    + get_log(as_=1) + write(17, as_=0) + get_log(as_=1),
    "dirty-log-destroy-logged": config(destroy=True, dirty=MANUAL | INITIALLY_SET)
    + put(npages=4, flags=LOG) + put(id=1, npages=2, gpage=120, flags=LOG, large=True) + write(17),
    # Transactions: return code, failing index, maps and bitmaps against the model.
    "txn-delete-then-create-same-gpa": config() + put(npages=2, flags=LOG) + write(16)
    + txn(delete(), put(id=1, hpage=4, npages=2, gpage=16)) + read(16) + write(17, seed=3)
    + read(17) + get_log() + get_log(id=1) + sweep(14),
    "txn-delete-then-recreate-logged": config() + put(npages=2, flags=LOG) + write(16)
    + write(17) + txn(delete(), put(npages=2, flags=LOG)) + write(16, seed=2) + get_log()
    + write(17, seed=3) + get_log(),
    "txn-delete-then-recreate-readonly": config() + put(npages=2) + write(16)
    + txn(delete(), put(npages=2, flags=READONLY)) + write(16, seed=2) + read(16)
    + lookup(16, write=True),
    "txn-delete-then-recreate-manual": config(dirty=MANUAL) + put(npages=2, flags=LOG)
    + write(16) + txn(delete(), put(npages=2, flags=LOG)) + write(16, seed=2) + get_log(),
    "txn-log-off-then-on": config() + put(npages=2, flags=LOG) + write(16) + write(17)
    + txn(reissue(3), reissue(3)) + write(16, seed=2) + get_log() + write(17, seed=3) + get_log(),
    "txn-overlap-with-earlier-create": config() + txn(put(id=0, npages=2, gpage=16),
                                                      put(id=1, hpage=4, gpage=17))
    + txn(put(id=0, npages=2, gpage=16), put(id=1, hpage=4, gpage=18)) + sweep(14)
    + txn(put(id=2, hpage=8, gpage=40), reissue(0, id=1, gpage=40)),
    "txn-move-then-flags": config() + put(npages=2, flags=LOG) + write(16) + write(17)
    + txn(reissue(0, gpage=40), reissue(3)) + write(41) + txn(reissue(3), reissue(0, gpage=50))
    + write(51) + get_log() + read(50),
    "txn-move-keeps-bits": config(dirty=MANUAL) + put(npages=3, flags=LOG) + write(16)
    + mark(18) + txn(reissue(0, gpage=40), reissue(0, gpage=60)) + write(61) + get_log()
    + txn(reissue(0, gpage=16), put(id=1, hpage=8, gpage=60)) + get_log(),
    "txn-invalid-last-change-applies-nothing": config() + put(npages=2) + write(16)
    + txn(delete(), put(id=1, hpage=8, gpage=16), put(id=2, hpage=12, gpage=30),
          mutate(2, id=3, gpage=50)) + read(16) + lookup(30) + sweep(14)
    + txn(delete(), delete(id=0)) + txn(put(id=4, gpage=20), mutate(0, id=5))
    + txn(reissue(7), put(id=6, gpage=90)),
    "txn-same-slot-twice": config() + txn(put(npages=2), put(npages=2)) + write(16)
    + txn(put(id=1, hpage=4, gpage=20), reissue(0, id=1, gpage=24), reissue(0, id=1, gpage=28),
          delete(id=1), put(id=1, hpage=6, gpage=20), reissue(2, id=1, gpage=20))
    + write(20) + read(20) + sweep(14),
    "txn-failed-null": config() + put() + txn(put(id=1, gpage=16), null=True)
    + txn(put(id=1, gpage=17), null=True) + read(17),
    "txn-two-address-spaces": config() + put(as_=0) + put(as_=1, hpage=4)
    + txn(delete(as_=0), put(id=1, as_=1, hpage=8, gpage=20), reissue(0, as_=1, gpage=30),
          put(id=2, as_=2)) + txn(delete(as_=0), put(id=1, as_=1, hpage=8, gpage=16))
    + read(16, as_=0) + read(16, as_=1) + sweep(14),
    "txn-large-logged": config(dirty=MANUAL | INITIALLY_SET)
    + txn(put(npages=2, gpage=0, flags=LOG, large=True), put(id=1, npages=2, gpage=200))
    + mark(3) + txn(reissue(0, gpage=100), reissue(2), reissue(3)) + get_log(),
    "txn-empty": config() + put() + txn() + read(16),
    "replace-map-keeps-named": config() + put(npages=2) + put(id=1, as_=1, hpage=4)
    + put(id=2, hpage=8, gpage=30) + write(16) + txn(reissue(1), put(id=3, hpage=12, gpage=40),
                                                    replace=True)
    + read(16) + lookup(30) + lookup(16, as_=1) + sweep(14),
    "replace-map-bad-entry": config() + put(npages=2) + put(id=1, hpage=4, gpage=30)
    + txn(reissue(1), put(id=5, hpage=8, gpage=17), replace=True)
    + txn(reissue(1), put(id=5, hpage=8, gpage=30), replace=True) + lookup(30) + sweep(14)
    + txn(put(id=2, as_=2), replace=True),
    "replace-map-empty-deletes-all": config() + put() + put(id=1, as_=1, hpage=2) + write(16)
    + txn(replace=True) + read(16) + lookup(16, as_=1) + put(hpage=5) + read(16),
    "replace-map-logged": config(dirty=MANUAL) + put(npages=2, flags=LOG) + put(id=1, hpage=4)
    + write(16) + txn(reissue(0, gpage=40), reissue(3, id=1), replace=True) + write(41)
    + get_log() + txn(delete(), put(npages=2, flags=LOG), replace=True) + get_log(),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                           "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds written to {out}")


if __name__ == "__main__":
    main()
