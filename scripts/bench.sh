#!/bin/sh
# make bench: run every scenario of memslots-bench, draw the charts and
# rewrite BENCHMARKS.md.  Usage: bench.sh BUILD_DIR
set -eu
bench=$1/tools/bench/memslots-bench
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$top/docs/bench"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bench" --plot "$top/docs/bench" | tee "$out"
# The verdict and target lines of one section as sentences: written by
# the bench from this run's figures, so the prose cannot contradict them.
# Usage: sentences HEADING [END], END a regex (default: the first blank line).
sentences() {
	sed -n "/^== $1/,/${2:-^\$}/p" "$out" | awk '
		/^  verdict: / {
			sub(/^  verdict: /, "")
			print "- " toupper(substr($0, 1, 1)) substr($0, 2) "."
		}
		/^  target / {
			st = $NF
			if ($(NF - 1) ~ /^[0-9.na\/-]+$/) { v = $(NF - 1); u = ""; n = NF - 2 }
			else { v = $(NF - 2); u = " " $(NF - 1); n = NF - 3 }
			w = $2
			for (i = 3; i <= n; i++) w = w " " $i
			print "- Target " w ": **" st "** (" v u " in this run)."
		}'
}
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
	echo "# memslots benchmarks"
	echo
	echo "Rewritten by \`make bench\` ($(date -u +%Y-%m-%d)). Machine: $cpu, $(nproc) cores,"
	echo "Linux $(uname -r). Command: \`$bench --plot docs/bench\`. One run; this"
	echo "machine is shared and noisy, so compare figures within a table, not across runs."
	echo
	echo "## Translation"
	echo
	echo "Guest frame number to host address. A hit is the vCPU's last-used slot; a miss is \`ms_gfn_to_hva\`"
	echo "with that cache dropped first, so it searches the set's index; the index row is that"
	echo "search alone. The peers: a linear scan of a region table (libvhost-user), a binary"
	echo "search of it (rust-vmm vm-memory), and a branchless binary search over an array of"
	echo "8-byte start keys. Throughput: independent lookups of random gfns over every slot;"
	echo "latency: each gfn depends on the previous result. In this run:"
	echo
	sentences translate
	echo
	echo '```'
	sed -n '/^== translate/,/^$/p' "$out"
	echo '```'
	echo
	echo '![translation throughput](docs/bench/translate.png)'
	echo
	echo '![translation latency](docs/bench/translate-latency.png)'
	echo
	echo "## Memslot updates"
	echo
	echo "One slot created, moved, its flags changed, deleted beside N others, after untimed"
	echo "warm-up rounds; the kernel's KVM_SET_USER_MEMORY_REGION gets the same rounds, in a VM"
	echo "that runs no vCPU, and is compared with ours without one (n/a where /dev/kvm cannot be"
	echo "used). With a vCPU thread reading, each update's grace period waits for it. In this run:"
	echo
	sentences update:
	echo
	echo '```'
	sed -n '/^== update:/,/^$/p' "$out"
	echo '```'
	echo
	echo '![updates](docs/bench/update.png)'
	echo
	echo "## Invalidations"
	echo
	echo "An elided pair (no slot in range, elision on) costs the count gate's counter under its"
	echo "spinlock, shared by all threads; the fair gate's per-thread record, shared by none."
	echo "One that touches a slot takes mmu_lock. Only batches in which every thread ran"
	echo "unpreempted count (docs/tools.md), so 2 threads means 2 threads at the same time."
	echo "In this run:"
	echo
	sentences invalidate
	echo
	echo '```'
	sed -n '/^== invalidate/,/^$/p' "$out"
	echo '```'
	echo
	echo '![invalidations](docs/bench/invalidate.png)'
	echo
	echo "## Updates under invalidation load"
	echo
	echo "The upstream commit admits that invalidations can starve the update: under the count"
	echo "gate it waits for a moment when no invalidation is open; under the rwsem gate, starts"
	echo "queue behind a waiting update (which can deadlock); without a gate it never waits; the"
	echo "fair gate waits only for the invalidations open when it announced itself. In this run:"
	echo
	sentences update-under-load
	echo
	echo '```'
	sed -n '/^== update-under-load/,/^$/p' "$out"
	echo '```'
	echo
	echo '![update latency under load](docs/bench/update-under-load.png)'
	echo
	echo "## Gate wait"
	echo
	echo "An update's wait on the gate alone (ms_stats.gate_wait_ns_total), one thread"
	echo "invalidating, swept over how long each invalidation is held and how many cover the"
	echo "slot's page. The count gate waits for every open invalidation and, under a load that"
	echo "keeps one open at every instant, until the load is stopped; the fair gate waits only"
	echo "for those of the new slot's pages that were open when it announced itself. In this run:"
	echo
	sentences gate-wait '^  fair under starvation'
	echo
	echo '```'
	sed -n '/^== gate-wait/,/^  fair under starvation/p' "$out"
	echo '```'
	echo
	echo "## Memory-map transactions"
	echo
	echo "k creates, or k moves, as one \`ms_set_memory_regions\` against k \`ms_set_memory_region\`"
	echo "calls, with no vCPU and with one vCPU thread reading another slot. Publishes are counted"
	echo "from \`ms_stats.generation\`; each is one memslot grace period. In this run:"
	echo
	sentences transaction
	echo
	echo '```'
	sed -n '/^== transaction/,/^$/p' "$out"
	echo '```'
	echo
	echo "## pfn caches"
	echo
	echo "A device's use of a valid cache (read lock, check, unlock), the check alone, and a refresh"
	echo "after an invalidation of the cache's page, with no load, with another thread invalidating"
	echo "another slot's page back to back (unrelated), and with invalidations of the cache's own"
	echo "page held 10 us every 100 us (related). In this run:"
	echo
	sentences pfn-cache
	echo
	echo '```'
	sed -n '/^== pfn-cache/,/^$/p' "$out"
	echo '```'
	echo
	echo "## Dirty logging"
	echo
	echo "An 8-byte vCPU write with logging off and on, and the harvest of a logged slot per GiB"
	echo "at 0, 1, 10 and 100 % dirty pages: \`ms_get_dirty_log\` alone, and with manual protect"
	echo "\`ms_get_dirty_log\` then \`ms_clear_dirty_log\` over the whole slot; beside it the"
	echo "kernel's KVM_GET_DIRTY_LOG of a clean slot of the same size. In this run:"
	echo
	sentences dirty-log
	echo
	echo '```'
	sed -n '/^== dirty-log/,/^$/p' "$out"
	echo '```'
	echo
	echo "## Zaps with a vCPU running"
	echo
	echo "A blockable invalidation start over a page whose entry a vCPU on the other core is reading"
	echo "through: it zaps the entry, waits until no access of that vCPU can still use the frame, and"
	echo "puts the frame (KVM's TLB flush with a vCPU in guest mode); beside it, the same start with no"
	echo "vCPU running. No kernel column: timing KVM's flush needs a guest. In this run:"
	echo
	sentences zap
	echo
	echo '```'
	sed -n '/^== zap/,/^$/p' "$out"
	echo '```'
	echo
	echo "## memslot_perf_test"
	echo
	echo "The tests of Linux KVM's selftest memslot_perf_test run against memslots with upstream's"
	echo "parameters, a vCPU thread playing the guest: map, unmap in 4 KiB pieces and in 2 MiB chunks,"
	echo "moving the last slot while the guest writes into it (active) or beside it (inactive), reading"
	echo "and writing the whole 512 MiB area, and creating the slots, at 509 and 32763 slots (map: 8194)."
	echo "The kernel KVM column is not measured by this run: it is a constant, from a dated measurement"
	echo "of the upstream selftest on this kind of machine (kvm_pvm, built from Linux 6.12, 2026-11), so"
	echo "ours/KVM sets this run beside that one. In this run:"
	echo
	sentences memslot-perf
	echo
	echo '```'
	sed -n '/^== memslot-perf/,/^$/p' "$out"
	echo '```'
	echo
	echo "## Lock validator"
	echo
	echo "Off, each annotation is one load and an untaken branch; on, every acquisition walks the"
	echo "dependency graph."
	echo
	echo '```'
	sed -n '/^== lockdep/,$p' "$out"
	echo '```'
} >"$top/BENCHMARKS.md"
echo "bench: BENCHMARKS.md rewritten"
