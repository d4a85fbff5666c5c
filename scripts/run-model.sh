#!/usr/bin/env bash
# Model-check the MMU-notifier protocol with spin: every run and property of
# model/expected.txt (docs/model.md explains them).  pan is generated, built
# and run in a temporary directory; nothing in the repository changes unless
# --save-trails is given.  Installs nothing: scripts/install-deps.sh does.
#
#   scripts/run-model.sh                 run every check
#   scripts/run-model.sh --save-trails   also copy the counterexample trails
#                                        found into model/trails/
#   scripts/run-model.sh --only PATTERN  only the properties whose name
#                                        matches the grep pattern
#   scripts/run-model.sh --replay RUN    replay model/trails/RUN.trail
#
# One line per property, "model: <model>/<property>: proven" or "...:
# counterexample found (expected)" or "...: UNEXPECTED ...", each run's bounds
# and spin's figures on indented lines, and last "model: N passed, N failed".
# Exits non-zero when any outcome differs from the expected one.
# MODEL_RUN_TIMEOUT bounds each pan run (seconds, default 300).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
model_dir=$root/model
list=$model_dir/expected.txt
run_timeout=${MODEL_RUN_TIMEOUT:-300} # seconds, per pan run

save_trails=0
replay=
only=
while [ $# -gt 0 ]; do
	case "$1" in
	--save-trails) save_trails=1 ;;
	--replay) replay=${2:?usage: run-model.sh --replay RUN} && shift ;;
	--only) only=${2:?usage: run-model.sh --only PATTERN} && shift ;;
	*)
		echo "usage: $0 [--save-trails] [--only PATTERN] [--replay RUN]" >&2
		exit 2
		;;
	esac
	shift
done

declare -A run_mode run_defs outcome
runs=()
props=()
while read -r kind name rest; do
	case "$kind" in
	run)
		read -r mode defs <<<"$rest"
		run_mode[$name]=$mode
		run_defs[$name]=$defs
		runs+=("$name")
		;;
	prop) [ -z "$only" ] || grep -q -e "$only" <<<"$name" && props+=("$name $rest") ;;
	esac
done < <(grep -v -e '^#' -e '^[[:space:]]*$' "$list")

# The -D arguments of a run.
spin_defines() {
	local d
	for d in ${run_defs[$1]}; do
		printf -- '-D%s\n' "$d"
	done
}

for tool in spin gcc; do
	if ! command -v "$tool" >/dev/null; then
		echo "model: $tool not found (scripts/install-deps.sh installs it)"
		echo "model: 0 passed, ${#props[@]} failed"
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memslots-model.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ -n "$replay" ]; then
	[ -n "${run_mode[$replay]:-}" ] || { echo "no run named $replay in $list" >&2; exit 2; }
	cd "$tmp" && mapfile -t defs < <(spin_defines "$replay")
	spin -t -p -g -k "$model_dir/trails/$replay.trail" "${defs[@]}" "$(pml_of "$replay")"
	exit
fi

# Compiler and pan flags of each mode.
mode_cflags() {
	case $1 in
	safety | safety-E) echo "-DSAFETY" ;;
	bfs) echo "-DSAFETY -DBFS" ;;
	ltl | ltl-wf) echo "" ;;
	# Reversed process order finds a shorter cycle; the search stays exhaustive.
	np) echo "-DNP -DP_REVERSE" ;;
	esac
}

mode_panflags() {
	case $1 in
	safety) echo "-m1000000 -w25" ;;
	safety-E) echo "-m1000000 -w25 -E" ;;
	bfs) echo "-w25" ;;
	ltl) echo "-m1000000 -w25 -a" ;;
	ltl-wf) echo "-m1000000 -w25 -a -f" ;;
	np) echo "-m1000000 -w25 -l -f" ;;
	esac
}

# The value a run gives a bound, or memslots.pml's default.
define_of() {
	local d
	for d in ${run_defs[$1]}; do
		case $d in "$2="*) echo "${d#*=}" && return ;; esac
	done
	echo "$3"
}

# Does run $1 define $2?
has_define() {
	local d
	for d in ${run_defs[$1]}; do
		[ "$d" = "$2" ] && return 0
	done
	return 1
}

# The model a run checks: MODEL=NAME is model/NAME.pml, memslots.pml by default.
pml_of() {
	echo "$model_dir/$(define_of "$1" MODEL memslots).pml"
}

# count_of 2 remap remaps: "2 remaps"
count_of() {
	[ "$1" = 1 ] && echo "1 $2" || echo "$1 $3"
}

bounds() {
	local inv ops tries upd
	if [ "$(define_of "$1" MODEL memslots)" = rcu ]; then
		echo "1 reader x $(count_of "$(define_of "$1" READER_SECTIONS 2)" section sections)," \
			"1 writer, TSO store buffers"
		return
	fi
	inv=$(define_of "$1" N_INV 2)
	ops=$(define_of "$1" INV_OPS 1)
	tries=$(define_of "$1" FAULT_TRIES 2)
	upd=$(define_of "$1" UPDATES 2)
	[ "$ops" = 0 ] && ops="remaps without end" || ops=$(count_of "$ops" remap remaps)
	[ "$tries" = 0 ] && tries="no vCPU" || tries="1 vCPU x $(count_of "$tries" access accesses)"
	echo "$(count_of "$inv" invalidator invalidators) x $ops, $tries," \
		"1 updater x $(count_of "$upd" update updates)$(has_define "$1" FIFO_LOCKS && echo ", FIFO locks")"
}

# Run one check; sets outcome[run] to proven, invalid-end-state,
# non-progress, acceptance, assertion=TEXT, or "error: why".
do_run() {
	local name=$1 dir=$tmp/$1 mode=${run_mode[$1]} got err states depth secs mem rc
	local -a defs
	mkdir -p "$dir"
	mapfile -t defs < <(spin_defines "$name")
	if ! (cd "$dir" && spin -a "${defs[@]}" "$(pml_of "$name")") >"$dir/spin.out" 2>&1; then
		outcome[$name]="error: spin -a failed: $(tail -n 1 "$dir/spin.out")"
		return
	fi
	# shellcheck disable=SC2046
	if ! (cd "$dir" && gcc -O2 $(mode_cflags "$mode") -o pan pan.c) >"$dir/cc.out" 2>&1; then
		outcome[$name]="error: pan does not compile: $(head -n 1 "$dir/cc.out")"
		return
	fi
	# shellcheck disable=SC2046
	(cd "$dir" && timeout "$run_timeout" ./pan $(mode_panflags "$mode")) >"$dir/pan.out" 2>&1
	rc=$?
	states=$(awk '/states, stored/ { print $1; exit }' "$dir/pan.out")
	depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$dir/pan.out" | tail -n 1)
	secs=$(sed -n 's/^pan: elapsed time \([0-9.e+-]*\) seconds.*/\1/p' "$dir/pan.out")
	mem=$(awk '/total actual memory usage/ { printf "%.0f", $1 }' "$dir/pan.out")
	err=$(grep -m 1 '^pan:1: ' "$dir/pan.out")
	case "$err" in
	*"invalid end state"*) got=invalid-end-state ;;
	*"non-progress cycle"*) got=non-progress ;;
	*"acceptance cycle"*) got=acceptance ;;
	*"assertion violated"*)
		got=${err#*assertion violated }
		got="assertion=${got% (at depth*}"
		;;
	"") got=proven ;;
	*) got="error: $err" ;;
	esac
	if [ "$rc" -eq 124 ]; then
		got="error: no result within ${run_timeout} s"
	elif [ "$got" = proven ] && ! grep -q '^State-vector .* errors: 0' "$dir/pan.out"; then
		got="error: pan ended without a verdict (exit $rc)"
	elif [ "$got" = proven ] &&
		grep -q -e 'max search depth too small' -e 'out of memory' -e 'Search not completed' \
			"$dir/pan.out"; then
		got="error: search incomplete: $(grep -m 1 -e 'too small' -e 'out of memory' \
			-e 'not completed' "$dir/pan.out")"
	fi
	outcome[$name]=$got
	printf '  run %s (%s): %s\n' "$name" "$mode" "$(bounds "$name")"
	printf '    spin: %s states stored, depth %s, %s s, %s MB; %s\n' "${states:-?}" \
		"${depth:-?}" "${secs:-?}" "${mem:-?}" "$got"
	[ -f "$dir/$(basename "$(pml_of "$name")").trail" ] && keep_trail "$name"
	return 0
}

keep_trail() {
	local fresh kept=$model_dir/trails/$1.trail
	fresh=$tmp/$1/$(basename "$(pml_of "$1")").trail
	if [ "$save_trails" = 1 ]; then
		mkdir -p "$model_dir/trails" && cp "$fresh" "$kept"
		echo "    trail: saved as model/trails/$1.trail"
	elif [ ! -f "$kept" ]; then
		echo "    trail: not kept in model/trails/ (--save-trails keeps it)"
	elif cmp -s "$fresh" "$kept"; then
		echo "    trail: same as model/trails/$1.trail"
	else
		echo "    trail: differs from model/trails/$1.trail (--save-trails updates it)"
	fi
}

# Does outcome $1 meet expectation $2?
meets() {
	case $2 in
	assertion=*) [[ $1 == assertion=* && ${1#assertion=} == *"${2#assertion=}"* ]] ;;
	*) [ "$1" = "$2" ] ;;
	esac
}

echo "  spin $(spin -V | sed -n 's/^Spin Version \([^ ]*\).*/\1/p'), every search exhaustive (no bitstate," \
	"no compression); a counterexample run stops at its first counterexample"
passed=0
failed=0
for p in "${props[@]}"; do
	read -r name expect prop_runs <<<"$p"
	bad=
	for r in $prop_runs; do
		if [ -z "${run_mode[$r]:-}" ]; then
			bad="$bad; no run named $r"
			continue
		fi
		[ -n "${outcome[$r]:-}" ] || do_run "$r"
		meets "${outcome[$r]}" "$expect" || bad="$bad; $r gave ${outcome[$r]}"
	done
	if [ -n "$bad" ]; then
		echo "model: $name: UNEXPECTED (expected $expect${bad})"
		failed=$((failed + 1))
	elif [ "$expect" = proven ]; then
		echo "model: $name: proven"
		passed=$((passed + 1))
	else
		echo "model: $name: counterexample found (expected)"
		passed=$((passed + 1))
	fi
done

echo "  total: ${SECONDS} s"
echo "model: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
