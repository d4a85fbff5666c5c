#!/bin/sh
# The shared library exports exactly the API its public headers declare, and
# the header's version is the project's.
# Usage: check-abi.sh LIBMEMSLOTS.so INCLUDE_DIR PROJECT_VERSION
set -u
lib=$1 inc=$2 version=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

{
	grep -hoE '^(const |unsigned |struct |enum )*[a-z_0-9]+ \**ms_[a-z0-9_]+\(' "$inc"/*.h |
		grep -oE 'ms_[a-z0-9_]+'
	grep -hoE '^extern [a-z_0-9 ]+ \**ms_[a-z0-9_]+;' "$inc"/*.h | grep -oE 'ms_[a-z0-9_]+'
} | sort -u >"$tmp/declared"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRV]$/ {sub(/@.*/, "", $3); print $3}' |
	sort -u >"$tmp/exported"

status=0
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
[ -z "$extra" ] || { echo "exported but not in the headers:" $extra; status=1; }
[ -z "$missing" ] || { echo "declared but not exported:" $missing; status=1; }
hdr=$(sed -n 's/^#define MS_VERSION "\(.*\)"$/\1/p' "$inc/memslots.h")
[ "$hdr" = "$version" ] || { echo "MS_VERSION is '$hdr', the project is '$version'"; status=1; }
[ $status -eq 0 ] && echo "abi: $(wc -l <"$tmp/exported") symbols, all declared in the headers"
exit $status
