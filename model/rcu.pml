/*
 * The read-side sections of src/rcu.h and their wait, under x86's memory
 * model (TSO): each thread's stores go to its own FIFO store buffer and
 * reach memory later, in order, and a thread's loads see its own buffered
 * stores first; a locked instruction or a fence drains the buffer.
 * memslots.pml models a section as a flag and a wait as "until the flag
 * is clear", which is what this protocol must provide: the check here is
 * that it does, with the buffers.
 *
 * A reader, in each of READER_SECTIONS sections: makes its sequence odd
 * with a locked exchange (ms_rcu_enter), loads the published object, uses
 * it, makes the sequence even with a plain store (ms_rcu_exit).  A writer:
 * publishes object 1 in place of object 0, fences, then, if the reader's
 * sequence is odd, waits for it to change (ms_rcu_wait_for_readers), and
 * frees object 0.  Property: no use of a freed object.
 *
 * RCU_BUG=1 opens the section with a plain store instead of the locked
 * exchange; RCU_BUG=2 drops the writer's fence.  Each must break the
 * property, to show the model sees both barriers.
 */
#ifndef READER_SECTIONS
#define READER_SECTIONS 2
#endif
#ifndef RCU_BUG
#define RCU_BUG 0
#endif

/* Memory. */
byte seq;		/* the reader's record sequence: odd inside a section */
byte published;		/* which object readers find */
bool freed[2];

/* The reader's store buffer, big enough for all its stores: only seq is stored by it. */
#define R_BUF (2 * READER_SECTIONS)
byte r_buf[R_BUF];
byte r_n;
byte r_k;
/* The writer's: only published. */
byte w_buf;
bool w_full;

/* Drain one store of the reader's buffer, oldest first (blocks while empty). */
inline r_drain_one()
{
	d_step {
		r_n > 0;
		seq = r_buf[0];
		for (r_k : 1 .. R_BUF - 1) {
			r_buf[r_k - 1] = r_buf[r_k]
		}
		r_n--
	}
}

inline r_drain_all()
{
	do
	:: r_drain_one()
	:: r_n == 0 -> break
	od
}

inline r_store_seq(v)
{
	d_step { r_buf[r_n] = v; r_n++ }
}

inline w_drain()
{
	d_step { if :: w_full -> published = w_buf; w_full = false :: else fi }
}

/* Memory takes buffered stores in its own time. */
active proctype memory_system()
{
end:	do
	:: r_drain_one()
	:: d_step { w_full -> published = w_buf; w_full = false }
	od
}

active proctype reader()
{
	byte s = 0, obj;
	byte i = 0;

	do
	:: i < READER_SECTIONS ->
		s++;
#if RCU_BUG == 1
		r_store_seq(s);
#else
		/* atomic_exchange: the store, and the buffer drained. */
		atomic { r_store_seq(s); r_drain_all() };
#endif
		obj = published;	/* the reader stores no published: memory */
		assert(!freed[obj]);	/* use */
		s++;
		r_store_seq(s);		/* release store */
		i++
	:: else -> break
	od
}

active proctype writer()
{
	byte s;

	d_step { w_buf = 1; w_full = true };	/* publish object 1 */
#if RCU_BUG != 2
	w_drain();				/* atomic_thread_fence(seq_cst) */
#endif
	s = seq;
	if
	:: s % 2 == 1 -> (seq != s)		/* wait for the section to end */
	:: else
	fi;
	freed[0] = true
}
