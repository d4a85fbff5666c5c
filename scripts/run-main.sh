#!/bin/sh
# make run: the default workload under the three gates, then one table.
# Usage: run-main.sh BUILD_DIR [SECONDS_PER_GATE]
set -u
stress=$1/tools/stress/memslots-stress
secs=${2:-10}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

for gate in count rwsem none; do
	echo "=== memslots-stress --gate $gate --duration $secs"
	"$stress" --gate "$gate" --duration "$secs" >"$dir/$gate.out" 2>"$dir/$gate.err"
	echo $? >"$dir/$gate.rc"
	cat "$dir/$gate.err" "$dir/$gate.out"
	echo
done

field() { # field GATE PATTERN AWK-PROGRAM
	grep -m1 -- "$2" "$dir/$1.out" 2>/dev/null | awk "$3"
}

echo "=== the upstream argument (Linux 52ac8b358b0c), one gate per line"
printf '%-6s %-52s %5s %15s %8s %22s\n' gate outcome exit "invalidations/s" elided "update p50 / p99 (us)"
for gate in count rwsem none; do
	rc=$(cat "$dir/$gate.rc")
	# The first invariant violated, by its name: "VIOLATED after T s: NAME: ...".
	first=$(sed -n 's/^memslots-stress: VIOLATED after [0-9.]* s: \([^:]*\):.*/\1/p' \
		"$dir/$gate.err" | head -n 1)
	case $rc in
	0) what="clean: every invariant held" ;;
	3) if [ -n "$first" ]; then what="HANG after: $first"
	   else what="HANG: the rwsem deadlock (watchdog report)"; fi ;;
	1) what="VIOLATED: ${first:-an invariant}" ;;
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
	printf '%-6s %-52s %5s %15s %8s %22s\n' "$gate" "$what" "$rc" "${rate:--}" "${elided:--}" "${lat:--}"
done
