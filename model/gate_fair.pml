/*
 * GATE_FAIR (src/gate_fair.c, over the per-thread entries of
 * src/thread_rec.c; src/notifier.c makes the end follow its start).
 *
 * Each invalidator has one entry in its thread record (it never has two
 * invalidations open): open while seq is odd, the start's seen_gen and
 * decision.  A start opens its entry, reads announce_gen (odd: an update
 * that covers new host memory has announced itself; the one range of the
 * model always overlaps) and records what it read in seen_gen; a start that
 * saw an announcement does not elide.  The decision is stored once the start
 * has done its unelided work (memslots.pml), and the end follows it.  Only a
 * create announces: it then scans the entries and waits for each open one,
 * seen at seq s, while it is still open at s, has not seen this
 * announcement, and has not decided to be unelided; an undecided entry by
 * yielding, a decided-elided one asleep on the futex word closes, which ends
 * bump while update_waiting is set.  Then it publishes and withdraws the
 * announcement.  Deletes neither announce nor wait.
 *
 * seq is modelled by what the updater compares it with, as the futex words
 * are: inv_seq_moved[i] is "entry i's seq differs from the value the updater
 * last read", exact for the 64-bit counter of the code.  closes_moved is the
 * same for the futex word closes.
 *
 * Memory ordering: the code pairs a start's entry store with its load of
 * announce_gen, and the update's store of announce_gen with its loads of the
 * entries, Dekker-style (the locked exchange that opens the entry on the
 * start's side, a fence on the update's); the same for an end's close, also
 * a locked exchange, against update_waiting.  The
 * model's interleavings are sequentially consistent, which is what that
 * pairing provides; it is not itself checked here.
 *
 * FAIR_BUG, for the mutation checks only: 1 the start records the
 * announcement it read (seen_gen) but still elides from the memslots; 2 the
 * updater waits only for decided-elided entries, not for undecided ones.
 */
#define MS_INV_UNDECIDED 0	/* enum of src/thread_rec.h */
#define MS_INV_ELIDED 1
#define MS_INV_UNELIDED 2

/* The invalidator's entry: processes 2 .. N_INV + 1 (init runs the updater first). */
#define ME (_pid - 2)

byte announce_gen = 2;	/* odd while an announcement stands */
bool update_waiting;
bool closes_moved;	/* closes != the value the waiter read */
bool futex_queued;	/* the updater sleeps in FUTEX_WAIT on closes */

bool inv_open[N_INV];		/* seq odd */
bool inv_seq_moved[N_INV];	/* seq != the value the updater read */
byte inv_seen_gen[N_INV];
byte inv_decision[N_INV];

inline gate_invalidate_begin()
{
	/* ms_open_inv_push(): range, seen_gen 0, undecided; then seq odd */
	d_step {
		assert(ME >= 0 && ME < N_INV);
		inv_seen_gen[ME] = 0;
		inv_decision[ME] = MS_INV_UNDECIDED;
		inv_open[ME] = true;
		inv_seq_moved[ME] = true
	};
	/* fair_invalidate_begin(): gen = load(announce_gen), after the locked open */
	seen = announce_gen;
	d_step {
#if FAIR_BUG == 1
		announced = false;
#else
		announced = (seen % 2 == 1);	/* the range overlaps */
#endif
		inv_seen_gen[ME] = seen;	/* store(seen_gen, gen) */
		seen = 0
	}
}

/* Called where the start has decided and done its unelided work. */
inline gate_invalidate_decided()
{
	d_step {
		if
		:: overlaps -> inv_decision[ME] = MS_INV_UNELIDED
		:: else -> inv_decision[ME] = MS_INV_ELIDED
		fi
	}
}

inline gate_invalidate_end()
{
	/* ms_open_inv_close(): seq even */
	d_step { inv_open[ME] = false; inv_seq_moved[ME] = true };
	/* wake_update(): if (load(update_waiting)), after the locked close */
	wake = update_waiting;
	if
	:: wake ->
		closes_moved = true;	/* atomic_fetch_add(&closes, 1) */
		d_step { futex_queued = false; wake = false }	/* ms_futex_wake() */
	:: else
	fi
}

/* must_wait_for(): three loads, as in the code; the result in mw. */
inline must_wait_for(i)
{
	mw = !inv_seq_moved[i];	/* load(seq) == seq */
	if
	:: mw -> mw = (inv_seen_gen[i] < announce_gen)	/* seen_gen < gen */
	:: else
	fi;
	if
	:: mw ->
#if FAIR_BUG == 2
		mw = (inv_decision[i] == MS_INV_ELIDED)
#else
		mw = (inv_decision[i] != MS_INV_UNELIDED)
#endif
	:: else
	fi
}

inline futex_wait()
{
	d_step {
		if
		:: !closes_moved -> futex_queued = true
		:: else		/* the word moved: return at once */
		fi
	};
	!futex_queued	/* asleep until ms_futex_wake() */
}

/* wait_for() */
inline wait_for(i)
{
	do
	:: true ->
		must_wait_for(i);
		if
		:: !mw -> break
		:: else
		fi;
		if
		:: inv_decision[i] == MS_INV_UNDECIDED -> skip	/* sched_yield() */
		:: else ->
			closes_moved = false;	/* closes = load(closes) */
			must_wait_for(i);
			if
			:: mw -> futex_wait()
			:: else
			fi
		fi
	od;
	mw = false
}

/* change: the publish makes new host memory covered (a create). */
inline gate_update_begin(change)
{
	if
	:: change ->
		announce_gen++;		/* store(announce_gen, gen, release) */
		update_waiting = true;
		/* fence; for each entry of each record: */
		do
		:: wi < N_INV ->
			d_step {	/* seq = load(seq) */
				wopen = inv_open[wi];
				if
				:: wopen -> inv_seq_moved[wi] = false
				:: else
				fi
			};
			if
			:: wopen -> wait_for(wi)	/* (seq & 1) && overlaps */
			:: else
			fi;
			/* the copy of seq is dead: forget it (true, as after a push) */
			d_step { inv_seq_moved[wi] = true; wopen = false; wi++ }
		:: else -> wi = 0; break
		od;
		update_waiting = false
	:: else		/* covers nothing new: no decision can go stale */
	fi
}

inline gate_update_end()
{
	/* fair_update_end(): withdraw a standing announcement */
	if
	:: announce_gen % 2 == 1 -> announce_gen++
	:: else
	fi
}
