/*
 * GATE_COUNT, the upstream gate (src/gate_count.c): mn_active_invalidate_count
 * under mn_invalidate_lock; the updater is the single waiter and sleeps on a
 * futex word (wake_seq) until the count is zero, then publishes while still
 * holding mn_invalidate_lock.
 *
 * The futex is modelled by what its word tells the sleeper: wake_seq_moved
 * is "wake_seq differs from the value the waiter read", so FUTEX_WAIT sleeps
 * only if it is false, exactly as with the real 32-bit word short of 2^32
 * wakes between the read and the sleep.
 *
 * PROGRESS_WAKE marks waking up as progress too, so that a non-progress
 * cycle is one in which the updater sleeps throughout.
 *
 * COUNT_BUG, for the mutation checks only: 1 sleeps without checking the word
 * (a lost wakeup), 2 drops mn_invalidate_lock before publishing.
 */
byte mn_invalidate_lock = FREE;
short mn_active_invalidate_count;
bool update_waiting;
bool wake_seq_moved;	/* wake_seq != the value the waiter read */
bool futex_queued;	/* the waiter sleeps in FUTEX_WAIT */

inline gate_invalidate_begin()
{
	lock(mn_invalidate_lock);
	mn_active_invalidate_count++;
	unlock(mn_invalidate_lock)
}

inline gate_invalidate_end()
{
	lock(mn_invalidate_lock);
	d_step {
		mn_active_invalidate_count--;
		assert(mn_active_invalidate_count >= 0);
		wake = (mn_active_invalidate_count == 0 && update_waiting)
	};
	unlock(mn_invalidate_lock);
	if
	:: wake ->
		wake_seq_moved = true;	/* atomic_fetch_add(&wake_seq, 1) */
		d_step { futex_queued = false; wake = false }	/* futex_wake() */
	:: else
	fi
}

inline futex_wait()
{
#if COUNT_BUG == 1
	futex_queued = true;
#else
	d_step {
		if
		:: !wake_seq_moved -> futex_queued = true
		:: else		/* the word moved: return at once */
		fi
	};
#endif
	!futex_queued	/* asleep until futex_wake() */
}

inline gate_update_begin(change)
{
	lock(mn_invalidate_lock);
	do
	:: mn_active_invalidate_count != 0 ->
		d_step {
			update_waiting = true;
			wake_seq_moved = false	/* seq = atomic_load(&wake_seq) */
		};
		unlock(mn_invalidate_lock);
		futex_wait();
#ifdef PROGRESS_WAKE
progress_woken:
#endif
		lock(mn_invalidate_lock)
	:: else -> break
	od;
	update_waiting = false;
#if COUNT_BUG == 2
	unlock(mn_invalidate_lock)
#else
	skip	/* returns holding mn_invalidate_lock */
#endif
}

inline gate_update_end()
{
#if COUNT_BUG == 2
	skip
#else
	unlock(mn_invalidate_lock)
#endif
}
