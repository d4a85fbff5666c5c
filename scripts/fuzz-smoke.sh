#!/bin/sh
# Build the libFuzzer harness (clang, ASan+UBSan) and run it over the corpus,
# then for a bounded time.  Usage: fuzz-smoke.sh [SECONDS]   (default 60)
set -u
secs=${1:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build-fuzz
mkdir -p "$out/corpus"
clang -std=gnu11 -D_GNU_SOURCE -DMS_RCU_OUT_OF_LINE -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I"$top/include" -I"$top/src" "$top"/src/*.c "$top/tests/fuzz/fuzz_memslots.c" \
	-o "$out/fuzz_memslots" -lurcu-memb -lurcu-bp -lpthread || {
	echo "fuzz: 0 passed, 1 failed"
	exit 1
}
cp "$top"/tests/fuzz/corpus/* "$out/corpus/" 2>/dev/null
if "$out/fuzz_memslots" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
	-artifact_prefix="$out/" "$out/corpus" >"$out/log" 2>&1; then
	tail -n 3 "$out/log"
	echo "fuzz: 1 passed, 0 failed"
else
	tail -n 40 "$out/log"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi
