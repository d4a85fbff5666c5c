/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * For tests only: look into the secondary MMU.  A frame in transit (got by
 * a fault that will retry and put it) is never used, so "in use" is judged
 * by the entries, not by frames merely got.
 */
#ifndef MEMSLOTS_TEST_INTERNAL_H
#define MEMSLOTS_TEST_INTERNAL_H

#include "rcu.h"
#include "vm.h"

static inline bool test_spte_present(struct ms_vm *vm, unsigned int as_id, uint64_t gfn)
{
	uintptr_t spte;

	ms_spte_read_lock(vm);
	spte = ms_spte_lookup(&vm->mmu, as_id, gfn);
	ms_spte_read_unlock(vm);
	return spte != 0;
}

#endif /* MEMSLOTS_TEST_INTERNAL_H */
