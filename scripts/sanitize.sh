#!/bin/sh
# Build and run every test under AddressSanitizer+UBSan, then ThreadSanitizer,
# with clang.  Any sanitizer report fails the run.
set -eu
kinds=${*:-"address,undefined thread"}
for kind in $kinds; do
	dir=build-$(echo "$kind" | cut -d, -f1 | sed 's/address/asan/; s/thread/tsan/')
	[ -f "$dir/build.ninja" ] || CC=clang meson setup "$dir" -Db_sanitize="$kind" -Db_lundef=false \
		-Dc_args=-DMS_RCU_OUT_OF_LINE \
		--buildtype=debugoptimized >/dev/null
	ninja -C "$dir" >/dev/null
	ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		meson test -C "$dir" --print-errorlogs --suite unit
done
