/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lock validator's entry points.  The dependency graph is not built
 * yet: enabling it says so once, and the annotations stay one untaken
 * branch each.
 */
#include <stdatomic.h>

#include "memslots_lockdep.h"

bool ms_lockdep_active;

static FILE *lockdep_out;
static atomic_flag unavailable_said = ATOMIC_FLAG_INIT;

void ms_lockdep_set_output(FILE *out)
{
	lockdep_out = out;
}

void ms_lockdep_enable(void)
{
	if (!atomic_flag_test_and_set(&unavailable_said))
		fprintf(lockdep_out ? lockdep_out : stderr,
			"memslots: the lock validator is not built in yet\n");
}

void ms_lockdep_init_map_at(struct ms_lockdep_map *map, const char *name, enum ms_lock_kind kind,
			    const char *file, unsigned int line)
{
	*map = (struct ms_lockdep_map){ name, kind, file, line, NULL };
}

void ms_lockdep_acquire_at(struct ms_lockdep_map *map, enum ms_lock_mode mode, bool trylock,
			   struct ms_lockdep_site site)
{
}

void ms_lockdep_release_at(struct ms_lockdep_map *map, struct ms_lockdep_site site)
{
}

void ms_lockdep_might_sleep_at(const char *what, struct ms_lockdep_site site)
{
}

void ms_lockdep_forbid_nesting(struct ms_lockdep_map *outer, struct ms_lockdep_map *inner,
			       const char *rule)
{
}

unsigned long ms_lockdep_reports(void)
{
	return 0;
}
