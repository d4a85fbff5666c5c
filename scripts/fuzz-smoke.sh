#!/bin/sh
# Fuzz smoke: build tests/fuzz/fuzz_memslots with clang (libFuzzer, ASan and
# UBSan; the library compiled into it again, with a direct clang command line,
# so that it needs neither meson nor the fuzz option), replay the committed
# corpus, then fuzz for a bounded time.  Any crash, sanitizer report or
# difference from the reference model fails the run and leaves the input and
# a replay command behind.  Last line: "fuzz: N passed, N failed".
#
# Exit 77 (skipped) when clang or its libFuzzer runtime is missing.
#
# Usage: scripts/fuzz-smoke.sh [SECONDS]   (default 60)
# FUZZ_BUILD_DIR overrides where it builds and works (default build-fuzz/).
set -u
secs=${1:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_BUILD_DIR:-$top/build-fuzz}
bin=$out/fuzz_memslots

finish() {
	if [ "$1" -eq 0 ]; then
		echo "fuzz: 1 passed, 0 failed"
	else
		echo "fuzz: 0 passed, 1 failed"
	fi
	exit "$1"
}

case $secs in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac
# Without clang and its libFuzzer runtime there is nothing to run: skipped
# (exit 77, which meson counts as a skip), not failed, so that `make test`
# passes on a machine where clang cannot be installed.
skip() {
	echo "fuzz: skipped: $1 (scripts/install-deps.sh fuzz installs it)"
	exit 77
}
command -v clang >/dev/null || skip "clang not found"
mkdir -p "$out/corpus" || finish 1
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' \
	>"$out/probe.c"
clang -fsanitize=fuzzer "$out/probe.c" -o "$out/probe" >/dev/null 2>&1 ||
	skip "clang cannot link libFuzzer (libclang-rt-dev missing)"
clang -std=gnu11 -D_GNU_SOURCE -g -O1 -Wall -Wextra \
	-Wno-unused-parameter -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -I"$top/include" -I"$top/src" \
	"$top"/src/*.c "$top/tests/fuzz/fuzz_memslots.c" -o "$bin" \
	-lpthread || finish 1

# Every committed seed once (named as files, so that nothing is written back
# into tests/), then the timed run from the seeds and what earlier runs here
# added to the working corpus.
run() {
	log=$1
	shift
	if "$bin" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/" \
		-print_final_stats=1 "$@" >"$log" 2>&1; then
		return 0
	fi
	grep -E '^fuzz: op|ERROR|SUMMARY|Test unit written' "$log" | head -n 20
	crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | head -n 1)
	[ -n "$crash" ] || crash=$(sed -n 's/^Running: \(.*\)$/\1/p' "$log" | tail -n 1)
	[ -n "$crash" ] &&
		echo "fuzz: replay with: MEMSLOTS_FUZZ_TRACE=1 $bin $crash"
	echo "fuzz: full log in $log"
	return 1
}

run "$out/replay.log" "$top"/tests/fuzz/corpus/* || finish 1
cp "$top"/tests/fuzz/corpus/* "$out/corpus/" || finish 1
run "$out/fuzz.log" -max_total_time="$secs" "$out/corpus" || finish 1
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$out/fuzz.log"
grep -E '^#[0-9]+[[:space:]]+DONE' "$out/fuzz.log"
finish 0
