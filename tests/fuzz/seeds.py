#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the seed corpus of fuzz_memslots into tests/fuzz/corpus/, one
scenario a file, named for what it exercises.  The encoding is the decoder's
in fuzz_memslots.c (change both together): a configuration byte, then
operations.  Usage: tests/fuzz/seeds.py [DIR]"""
import os
import sys

PAGE = 4096


def config(spaces=0, ids=0, destroy=False):
    """spaces 0: two address spaces, 2: one, 3: three; ids 0: 32764, 2: 8, 3: 7;
    destroy: destroy the VM at the end, slots and all, instead of emptying it."""
    return bytes([spaces | ids << 2 | (0x50 if destroy else 0)])


def put(id=0, as_=0, hpage=0, npages=1, gpage=16, flags=0, mode=0):
    """id 0-29 as given, 30 the last valid id, 31 the first invalid one;
    mode 0: as given; 12 + k: bad or boundary variant k; 24 + k: re-issue."""
    return bytes([0, flags | mode << 3, id, as_, hpage, npages, gpage])


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


def invalidate(first_page, npages=1, blockable=True, change_pte=False, outside=False):
    """start/end around arena pages, or (outside) pages of the huge slot's range."""
    how = (0 if blockable else 1) | (2 if change_pte else 0) | (4 if outside else 0)
    return bytes([14, first_page, npages - 1, how])


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
