/*
 * GATE_RWSEM, the design Linux commit 52ac8b358b0c replaced (src/gate_rwsem.c over
 * src/rwsem.c): mn_slots_rwsem held for read from start to end and for write
 * by the updater.  Writer-preferring: a reader waits while a writer holds it
 * or waits for it.  Each rwsem operation is one step under the rwsem's
 * internal mutex; a condition-variable wait is a blocking guard.
 */
byte rw_readers;
byte rw_writers_waiting;
bool rw_writer;

inline gate_invalidate_begin()
{
	/* ms_down_read() */
	d_step { !rw_writer && rw_writers_waiting == 0 -> rw_readers++ }
}

inline gate_invalidate_end()
{
	/* ms_up_read() */
	d_step { assert(rw_readers > 0); rw_readers--; wake = false }
}

inline gate_update_begin(change)
{
	/* ms_down_write() */
	rw_writers_waiting++;
	d_step {
		!rw_writer && rw_readers == 0 ->
		rw_writers_waiting--;
		rw_writer = true
	}
}

inline gate_update_end()
{
	/* ms_up_write() */
	rw_writer = false
}
