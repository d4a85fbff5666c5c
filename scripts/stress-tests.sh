#!/bin/sh
# Short memslots-stress runs with their expected outcomes, for `make test`.
# Usage: stress-tests.sh PATH/TO/memslots-stress
set -u
stress=$1
passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# report OK: count the run named $name, exit $rc against $want, output in $out.
report() {
	if [ "$1" -eq 1 ]; then
		echo "stress: $name: ok"
		passed=$((passed + 1))
	else
		echo "stress: $name: FAILED (exit $rc, wanted $want)"
		sed 's/^/    /' "$out" | tail -n 30
		failed=$((failed + 1))
	fi
}

# check NAME EXPECTED_EXIT PATTERN|"" NEGATIVE_PATTERN|"" -- ARGS...
check() {
	name=$1 want=$2 pattern=$3 absent=$4
	shift 5
	timeout 120 "$stress" "$@" >"$out" 2>&1
	rc=$?
	ok=1
	[ "$rc" -eq "$want" ] || ok=0
	[ -z "$pattern" ] || grep -q -- "$pattern" "$out" || ok=0
	[ -z "$absent" ] || ! grep -q -- "$absent" "$out" || ok=0
	report $ok
}

check "count gate, default workload: clean" 0 "result: clean" "VIOLATED" -- \
	--gate count --duration 3 --seed 7
# The edges (tools/stress/edges.c): unaligned and sub-page ranges, overlapping
# zappers on two slots' pages, vCPUs preempted inside accesses, accesses
# beyond the guest physical address width.
check "count gate, edges scenario: clean" 0 "result: clean" "VIOLATED" -- \
	--gate count --scenario edges --duration 3 --seed 5
check "count gate, edges scenario, four vCPUs: clean" 0 "result: clean" "VIOLATED" -- \
	--gate count --scenario edges --duration 3 --seed 11 --vcpus 4 --invalidators 3
check "fair gate, default workload: clean" 0 "result: clean" "VIOLATED" -- \
	--gate fair --duration 3 --seed 7
check "fair gate, edges scenario: clean" 0 "result: clean" "VIOLATED" -- \
	--gate fair --scenario edges --duration 3 --seed 5
check "count gate, invalidations open at every instant: update starved" 4 \
	"STARVED: an update waited over 2.0 s on the gate (bound 2 s)" "VIOLATED" -- \
	--gate count --scenario starve --duration 6 --starve-bound 2
check "fair gate, invalidations open at every instant: updates flow" 0 "result: clean" \
	"STARVED" -- --gate fair --scenario starve --duration 3 --starve-bound 2
check "fair gate, upstream interleaving: no deadlock" 0 "result: clean" "" -- \
	--gate fair --scenario rwsem-deadlock --watchdog 2
check "migration over the dirty log: no page lost" 0 "result: clean" "VIOLATED" -- \
	--scenario migrate --duration 3 --seed 3
check "migration with manual protect, fair gate: no page lost" 0 "result: clean" "VIOLATED" -- \
	--scenario migrate --manual-protect --gate fair --duration 3 --seed 4
check "BAR moved by transactions, device on a pfn cache: no hole, nothing stale" 0 \
	"result: clean" "VIOLATED" -- --scenario bar-move --duration 3 --seed 2
check "BAR moved by separate calls: the hole is seen" 1 \
	"VIOLATED after [0-9.]* s: the BAR is always mapped somewhere" "" -- \
	--scenario bar-move --split --duration 3 --seed 2
check "count gate, upstream interleaving: no deadlock" 0 "result: clean" "" -- \
	--gate count --scenario rwsem-deadlock --watchdog 2
check "rwsem gate, upstream interleaving: hang detected" 3 "HANG: no progress" "" -- \
	--gate rwsem --scenario rwsem-deadlock --watchdog 1
check "no gate, update inside an invalidation: imbalance detected" 1 \
	"every end finds its start's count: 1 end(s) found mmu_invalidate_in_progress at 0" "" -- \
	--gate none --scenario imbalance --watchdog 2
check "count gate, update inside an invalidation: balanced" 0 "result: clean" "" -- \
	--gate count --scenario imbalance --watchdog 2
check "rwsem gate --lockdep: the rwsem circular dependency" 3 \
	"possible circular locking dependency" "" -- \
	--gate rwsem --scenario rwsem-deadlock --lockdep --watchdog 1
check "count gate --lockdep, default workload: no report" 0 "lock validator: 0 report(s)" \
	"WARNING" -- --gate count --lockdep --duration 3 --seed 3
check "bad option: one line, exit 2" 2 \
	"memslots-stress: bad value for --gate: 'rcu' (expected count, rwsem, none or fair)" "" -- \
	--gate rcu
check "unknown option: one line, exit 2" 2 "memslots-stress: unknown option '--foo' (see --help)" \
	"" -- --foo
check "forced scenario refuses --duration, exit 2" 2 "takes no duration" "" -- \
	--scenario imbalance --duration 3
check "--version: the project's version, exit 0" 0 "^memslots-stress [0-9][0-9.]*$" "" -- --version

# check_json NAME EXPECTED_EXIT EXPECTED_RESULT -- ARGS...: stdout alone must be
# one JSON document of schema memslots-stress/1 with that result and exit code.
check_json() {
	name=$1 want=$2 result=$3
	shift 4
	timeout 120 "$stress" "$@" >"$out" 2>/dev/null
	rc=$?
	ok=0
	[ "$rc" -eq "$want" ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "memslots-stress/1", d["schema"]
assert d["result"] == sys.argv[2], d["result"]
assert d["exit_code"] == int(sys.argv[3]), d["exit_code"]
' "$out" "$result" "$want" && ok=1
	report $ok
}

check_json "--json, clean run: result clean" 0 clean -- --gate count --duration 2 --json
check_json "--json on the forced hang: result hang" 3 hang -- \
	--gate rwsem --scenario rwsem-deadlock --watchdog 1 --json
check_json "--json on the violation: result violated" 1 violated -- \
	--gate none --scenario imbalance --watchdog 2 --json

echo "stress: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
