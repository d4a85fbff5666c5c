/*
 * memslots.pml: the MMU-notifier protocol of memslots, for spin.
 *
 * One guest page G, mapped by one memslot to one host page P.  Processes:
 *   N_INV invalidators  the host mm remapping P: host-mm lock, start, unlock,
 *                       change P, host-mm lock, end, unlock (src/notifier.c)
 *   one fault           a vCPU faulting G in (src/mmu.c, ms_mmu_fault)
 *   one updater         creates and deletes the slot (src/memslots.c)
 * The gate is chosen with -DGATE=GATE_COUNT|GATE_RWSEM|GATE_NONE|GATE_FAIR;
 * each design is one file, as in src/.  Under GATE_FAIR the end follows its
 * start's decision (src/notifier.c, end_decision) instead of deciding again,
 * and only a create tells the gate it covers new host memory.  The bounds are N_INV, INV_OPS, FAULT_TRIES and
 * UPDATES below.  The assertions a run checks are chosen with
 *   CHECK_END_FINDS_COUNT  every end that takes mmu_lock finds a count its
 *                          start raised (the code never lowers it below 0)
 *   CHECK_NOT_LEFT_RAISED  nor above 0 once every process has finished
 *   CHECK_SAME_MEMSLOTS    an end sees the memslots its start saw
 *   CHECK_STALE            no entry for P installed, used or present while
 *                          an invalidation of P is open
 *   CHECK_SAME_DECISION    GATE_FAIR: an end whose start elided finds no slot
 *                          (an end deciding again would decide the same)
 * and LTL_PUBLISH adds the claim update_publishes.  FIFO_LOCKS makes the
 * host-mm lock and mmu_lock FIFO (ticket) locks, for the liveness runs.
 * Deadlocks are invalid end
 * states.  scripts/run-model.sh runs every check of model/expected.txt.
 *
 * Locks are bytes holding the owner's _pid (FREE when not held).  mmu_lock
 * stands for both mmu_lock sections of the code; memslot RCU is modelled
 * exactly for the one reader (the fault).  docs/model.md maps every step to
 * the code.
 */

#define GATE_COUNT 1
#define GATE_RWSEM 2
#define GATE_NONE 3
#define GATE_FAIR 4

#ifndef GATE
#define GATE GATE_COUNT
#endif
#ifndef N_INV
#define N_INV 2		/* invalidating processes */
#endif
#ifndef INV_OPS
#define INV_OPS 1	/* remaps per invalidator; 0: forever, until the updates are done */
#endif
#ifndef FAULT_TRIES
#define FAULT_TRIES 2	/* accesses by the vCPU; 0: no fault process */
#endif
#ifndef UPDATES
#define UPDATES 2	/* memslot updates (create or delete) */
#endif
#ifndef VER_MOD
#define VER_MOD 256	/* 1 when no fault reads mmu_invalidate_seq or the page */
#endif

#define FREE 255
#define lock(l) atomic { l == FREE -> l = _pid }
#define unlock(l) d_step { assert(l == _pid); l = FREE }

/*
 * The locks processes contend for.  With FIFO_LOCKS the host-mm lock and
 * mmu_lock are ticket locks (tickets modulo the number of processes that
 * take the lock, each holding at most one ticket), so that under weak
 * fairness no process waits for a lock forever while others take it: a
 * liveness run then blames the gate only.  Without it they are plain locks,
 * which a waiter may lose every time, as pthread_spin_lock() may.
 */
#define NPROC (N_INV + 1 + (FAULT_TRIES > 0))
#ifdef FIFO_LOCKS
byte hostmm_next, hostmm_serving, mmu_next, mmu_serving;
#define fifo_lock(l, next, serving, n) \
	d_step { ticket = next; next = (next + 1) % (n) }; \
	d_step { serving == ticket -> assert(l == FREE); l = _pid; ticket = 0 }
#define fifo_unlock(l, serving, n) \
	d_step { assert(l == _pid); l = FREE; serving = (serving + 1) % (n) }
#define hostmm_lock_take() fifo_lock(hostmm_lock, hostmm_next, hostmm_serving, N_INV)
#define hostmm_lock_give() fifo_unlock(hostmm_lock, hostmm_serving, N_INV)
#define mmu_lock_take() fifo_lock(mmu_lock, mmu_next, mmu_serving, NPROC)
#define mmu_lock_give() fifo_unlock(mmu_lock, mmu_serving, NPROC)
#else
#define hostmm_lock_take() lock(hostmm_lock)
#define hostmm_lock_give() unlock(hostmm_lock)
#define mmu_lock_take() lock(mmu_lock)
#define mmu_lock_give() unlock(mmu_lock)
#endif

mtype = { NO_SLOT, SLOT_VALID, SLOT_INVALID };

/* Memslots: the published set (does it hold the slot mapping G to P?). */
mtype memslots = NO_SLOT;
byte gen;		/* the set's identity: every publish makes a new one */
byte slots_lock = FREE;
bool updates_done;

/* Memslot RCU, with the fault as its one reader. */
bool rcu_reader;	/* the fault is inside ms_rcu_read_lock() */
bool gp_waiting;	/* synchronize_rcu() is waiting for that section */
bool gp_done;

/* Secondary MMU (src/mmu.h), all under mmu_lock. */
byte mmu_lock = FREE;
short mmu_invalidate_in_progress;
byte mmu_invalidate_seq;
bool spte;		/* the entry G -> frame of P is present */

/* The host mm (the embedder). */
byte hostmm_lock = FREE;	/* the upstream commit's pseudo-lock, as a mutex */
byte page_ver;		/* bumped by every change of P */

/* Ghosts: for the assertions only, no process decides on them. */
byte open_inv;		/* start returned, end not yet called */
byte finished;		/* processes that ran to their end */

#if GATE == GATE_COUNT
#include "gate_count.pml"
#elif GATE == GATE_RWSEM
#include "gate_rwsem.pml"
#elif GATE == GATE_NONE
#include "gate_none.pml"
#elif GATE == GATE_FAIR
#include "gate_fair.pml"
#else
#error "GATE must be GATE_COUNT, GATE_RWSEM, GATE_NONE or GATE_FAIR"
#endif

inline bump(v) { v = (v + 1) % VER_MOD }

inline rcu_read_lock() { rcu_reader = true }

inline rcu_read_unlock()
{
	d_step {
		rcu_reader = false;
		if
		:: gp_waiting -> gp_done = true
		:: else
		fi
	}
}

/* Waits for the reader section open when it is called, not for later ones. */
inline synchronize_rcu()
{
	d_step { gp_waiting = true; gp_done = !rcu_reader };
	d_step { gp_done -> gp_waiting = false; gp_done = false }
}

/* Zap the entry of G and (not modelled) put its frame: ms_mmu_zap_gfn_range. */
inline zap()
{
	mmu_lock_take();
	spte = false;
	mmu_lock_give()
}

/* Zap what maps P through the current memslots: zap_hva_range. */
inline zap_hva()
{
	mmu_lock_take();
	if
	:: memslots != NO_SLOT -> spte = false
	:: else
	fi;
	mmu_lock_give()
}

/*
 * ms_invalidate_range_start then ms_invalidate_range_end of [P, P + 1), as the
 * host mm calls them around a change of P.
 */
proctype invalidator()
{
	byte ops, start_gen;
	bool overlaps, wake;
#if GATE == GATE_FAIR
	byte seen;
	bool announced;
#endif
#ifdef FIFO_LOCKS
	byte ticket;
#endif

	do
	:: (INV_OPS == 0 && !updates_done) || (INV_OPS > 0 && ops < INV_OPS) ->
		hostmm_lock_take();
		/* invalidate_range_start() */
		gate_invalidate_begin();
#if GATE == GATE_FAIR
		/* elided = entry != MS_GATE_UNELIDED && invalidate_elided() */
		d_step {
			if
			:: announced -> overlaps = true
			:: else -> overlaps = (memslots != NO_SLOT)
			fi;
			announced = false
		};
#else
		d_step { overlaps = (memslots != NO_SLOT); start_gen = gen };
#endif
		if
		:: overlaps ->
			mmu_lock_take();
			mmu_invalidate_in_progress++;
			mmu_lock_give();
			zap_hva()
		:: else		/* elided: no mmu_lock */
		fi;
#if GATE == GATE_FAIR
		gate_invalidate_decided();
#endif
		open_inv++;
		hostmm_lock_give();

		/* The host changes P: no entry may map it now. */
		d_step {
#ifdef CHECK_STALE
			assert(!spte);
#endif
			bump(page_ver)
		};

		hostmm_lock_take();
		/* invalidate_range_end() */
		open_inv--;
#if GATE == GATE_FAIR
		/* end_decision(): the start's, from its entry */
		d_step { overlaps = (inv_decision[ME] == MS_INV_UNELIDED);
#ifdef CHECK_SAME_DECISION
			assert(overlaps || memslots == NO_SLOT);
#endif
#ifdef CHECK_SAME_MEMSLOTS
#error "CHECK_SAME_MEMSLOTS does not hold for GATE_FAIR, by design"
#endif
		};
#else
		d_step { overlaps = (memslots != NO_SLOT);
#ifdef CHECK_SAME_MEMSLOTS
			assert(gen == start_gen);
#endif
			start_gen = 0 };
#endif
		if
		:: overlaps ->
			mmu_lock_take();
			bump(mmu_invalidate_seq);
#ifdef CHECK_END_FINDS_COUNT
			assert(mmu_invalidate_in_progress > 0);
#endif
			if	/* an underflow is counted, never made */
			:: mmu_invalidate_in_progress > 0 -> mmu_invalidate_in_progress--
			:: else
			fi;
			mmu_lock_give()
		:: else
		fi;
		gate_invalidate_end();
		hostmm_lock_give();
		if
		:: INV_OPS > 0 -> ops++
		:: else
		fi
	:: else -> break
	od;
	finished++
}

/* A vCPU accessing G: a hit uses the entry, a miss faults it in. */
proctype fault()
{
	byte tries, seq, frame_ver;
	mtype slot;
#ifdef FIFO_LOCKS
	byte ticket;
#endif

	do
	:: tries < FAULT_TRIES ->
		if
		:: d_step {
			spte ->	/* hit: use the entry's frame */
#ifdef CHECK_STALE
			assert(open_inv == 0)
#else
			skip
#endif
		   }
		:: else ->
			rcu_read_lock();
			seq = mmu_invalidate_seq;
			slot = memslots;
			if
			:: slot == SLOT_VALID ->
				frame_ver = page_ver;	/* get_frame */
				mmu_lock_take();
				if
				:: mmu_invalidate_in_progress > 0 ||	/* its range holds P */
				   mmu_invalidate_seq != seq	/* retry: put the frame */
				:: else ->
#ifdef CHECK_STALE
					assert(open_inv == 0 && frame_ver == page_ver);
#endif
					spte = true
				fi;
				mmu_lock_give()
			:: else		/* no slot: -EFAULT; invalid: -EAGAIN */
			fi;
			d_step { seq = 0; frame_ver = 0; slot = 0 };
			rcu_read_unlock()
		fi;
		tries++
	:: else -> break
	od;
	finished++
}

/* install_new_memslots(): publish through the gate, then a grace period. */
inline install_new_memslots(target)
{
	gate_update_begin(target == SLOT_VALID);	/* a create covers new host memory */
progress_publish:
	d_step { memslots = target; gen++ };
	gate_update_end();
	synchronize_rcu()
}

/*
 * ms_set_memory_region() creating the slot (one publish) or deleting it
 * (publish it invalid, zap, publish the set without it).
 */
proctype updater()
{
	byte n;
	mtype target;
#if GATE == GATE_FAIR
	byte wi;
	bool wopen, mw;
#endif
#ifdef FIFO_LOCKS
	byte ticket;
#endif

	do
	:: n < UPDATES ->
		lock(slots_lock);
		if
		:: memslots == NO_SLOT -> target = SLOT_VALID
		:: else -> target = SLOT_INVALID
		fi;
publish:
		install_new_memslots(target);
		if
		:: target == SLOT_INVALID ->
			zap();
			target = NO_SLOT;
			goto publish
		:: else
		fi;
		unlock(slots_lock);
		n++
	:: else -> break
	od;
	updates_done = true;
	finished++
}

init {
	byte i;

	atomic {
		if
		:: memslots = NO_SLOT
		:: memslots = SLOT_VALID
		:: memslots = SLOT_VALID; spte = true
		fi;
		run updater();
		for (i : 1 .. N_INV) {
			run invalidator()
		}
		i = 0;
		if
		:: FAULT_TRIES > 0 -> run fault()
		:: else
		fi
	}
	finished == NPROC;
#ifdef CHECK_NOT_LEFT_RAISED
	assert(mmu_invalidate_in_progress <= 0);
#endif
	skip
}

#ifdef LTL_PUBLISH
/* With invalidators that stop, every update gets published. */
ltl update_publishes { <> updates_done }
#endif
