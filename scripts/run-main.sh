#!/bin/sh
# make run: the default workload under each of the four gates, then the
# starve scenario under the upstream gate and the fair one, and a live
# migration over the dirty log, and a BAR moved by transactions and by
# separate calls; one table.
# Usage: run-main.sh BUILD_DIR [SECONDS_PER_GATE]
set -u
stress=$1/tools/stress/memslots-stress
secs=${2:-10}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# run NAME ARGS...: one run, its output kept under NAME
run() {
	name=$1
	shift
	echo "=== memslots-stress $*"
	"$stress" "$@" >"$dir/$name.out" 2>"$dir/$name.err"
	echo $? >"$dir/$name.rc"
	cat "$dir/$name.err" "$dir/$name.out"
	echo
}

rows="count rwsem none fair starve-count starve-fair migrate bar-move bar-move-split"
for gate in count rwsem none fair; do
	run "$gate" --gate "$gate" --duration "$secs"
done
for gate in count fair; do
	run "starve-$gate" --gate "$gate" --scenario starve --duration "$secs" --starve-bound 2
done
run migrate --scenario migrate --duration "$secs"
run bar-move --scenario bar-move --duration "$secs"
run bar-move-split --scenario bar-move --split --duration "$secs"

field() { # field GATE PATTERN AWK-PROGRAM
	grep -m1 -- "$2" "$dir/$1.out" 2>/dev/null | awk "$3"
}

echo "=== the upstream argument (Linux 52ac8b358b0c) and beyond it, one run per line"
printf '%-14s %-51s %5s %15s %8s %22s\n' run outcome exit "invalidations/s" elided "update p50 / p99 (us)"
for gate in $rows; do
	rc=$(cat "$dir/$gate.rc")
	# The first invariant violated, by its name: "VIOLATED after T s: NAME: ...".
	first=$(sed -n 's/^memslots-stress: VIOLATED after [0-9.]* s: \([^:]*\):.*/\1/p' \
		"$dir/$gate.err" | head -n 1)
	case $rc in
	0) what="clean: every invariant held" ;;
	3) if [ -n "$first" ]; then what="HANG after: $first"
	   else what="HANG: the rwsem deadlock (watchdog report)"; fi ;;
	1) what="VIOLATED: ${first:-an invariant}" ;;
	4) what="STARVED: an update waited past 2 s" ;;
	*) what="exit $rc" ;;
	esac
	# A hung run reports its figures up to the hang; they say nothing here.
	rate= elided= lat=
	if [ "$rc" -ne 3 ]; then
		rate=$(field "$gate" "^  invalidator " '{print $3}')
		elided=$(field "$gate" "^  invalidations " '{print $4}' | tr -d ',')
		# "p50 X us, p99 Y us, ..." where a figure may be "n/a,".
		lat=$(field "$gate" "update latency" \
			'{for (i = 1; i < NF; i++) { v = $(i + 1); sub(/,$/, "", v);
			  if ($i == "p50") p50 = v; if ($i == "p99") p99 = v }
			  print p50 " / " p99}')
	fi
	printf '%-14s %-51s %5s %15s %8s %22s\n' "$gate" "$what" "$rc" "${rate:--}" "${elided:--}" "${lat:--}"
done
