#!/bin/sh
# Build and run every unit test under AddressSanitizer+UBSan, then
# ThreadSanitizer, with clang; then short memslots-stress runs under the
# count gate (the stress suite's clean cases, 3 s each), which must end
# clean.  Any sanitizer report fails the run.
set -eu
kinds=${*:-"address,undefined thread"}
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
failed=0

# stress DIR ARGS...: one run; a sanitizer report makes it exit non-zero.
stress() {
	sdir=$1
	shift
	log=$sdir/sanitize-stress.log
	if "$sdir/tools/stress/memslots-stress" --gate count "$@" >"$log" 2>&1 &&
		grep -q "result: clean" "$log" && ! grep -q "Sanitizer" "$log"; then
		echo "sanitize: $sdir: memslots-stress $*: clean"
	else
		echo "sanitize: $sdir: memslots-stress $*: FAILED"
		tail -n 40 "$log" | sed 's/^/    /'
		failed=1
	fi
}

for kind in $kinds; do
	dir=build-$(echo "$kind" | cut -d, -f1 | sed 's/address/asan/; s/thread/tsan/')
	[ -f "$dir/build.ninja" ] || CC=clang meson setup "$dir" -Db_sanitize="$kind" -Db_lundef=false \
		--buildtype=debugoptimized >/dev/null
	ninja -C "$dir" >/dev/null
	meson test -C "$dir" --print-errorlogs --suite unit
	stress "$dir" --duration 3 --seed 7
	stress "$dir" --scenario edges --duration 3 --seed 5
	stress "$dir" --scenario rwsem-deadlock --watchdog 2
	stress "$dir" --scenario imbalance --watchdog 2
	stress "$dir" --gate fair --duration 3 --seed 7
	stress "$dir" --gate fair --scenario edges --duration 3 --seed 5
	stress "$dir" --gate fair --scenario starve --duration 3
	# The migrator copies pages while vCPUs write them, as a live migration
	# does; that race is the scenario's subject, so not a TSan run.
	[ "$dir" = build-tsan ] || stress "$dir" --scenario migrate --duration 3
	stress "$dir" --gate fair --scenario bar-move --duration 3
done
exit $failed
