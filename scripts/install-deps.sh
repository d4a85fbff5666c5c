#!/bin/sh
# Make sure what a make target needs is here; install only what is missing.
#
# Usage: scripts/install-deps.sh [TARGET...]    (default: build)
#   build, run  a C compiler, meson, ninja, pkg-config
#   test        build's, plus cmocka and python3; clang with its runtime
#               libraries (libFuzzer) for the fuzz smoke, which is skipped
#               when clang cannot be had
#   fuzz        clang with its runtime libraries
#   sanitize    build's, plus cmocka and clang with its runtime libraries
#   model       gcc and spin
#   bench       build's, plus gnuplot
#   all         everything above (what CI runs)
#
# What is present is found by what it provides (command -v, pkg-config
# --exists), not by asking dpkg, so a machine that got the tools some other
# way needs neither dpkg nor apt.  What is missing is installed with apt-get
# (as root, or through sudo) where apt-get exists; otherwise one line names
# it and the exit status is 1.
set -u

need=
want=

# add LIST VAR: append the items not there yet.
add() {
	for item in $1; do
		case " $need $want " in
		*" $item "*) ;;
		*) eval "$2=\"\$$2 $item\"" ;;
		esac
	done
}

base="cc meson ninja pkg-config"
clang_items="clang libclang-rt"
[ $# -gt 0 ] || set -- build
for target in "$@"; do
	case $target in
	build | run) add "$base" need ;;
	test) add "$base cmocka python3" need ;;
	fuzz) add "$clang_items" need ;;
	sanitize) add "$base cmocka $clang_items" need ;;
	model) add "gcc spin" need ;;
	bench) add "$base gnuplot" need ;;
	all) add "$base cmocka python3 $clang_items gcc spin gnuplot" need ;;
	*)
		echo "install-deps: unknown target '$target' (build, run, test, fuzz, sanitize, model, bench or all)" >&2
		exit 2
		;;
	esac
done
# Only test takes clang as a wish: its fuzz smoke skips without it.  Added
# after the loop so that "test fuzz" still requires it.
for target in "$@"; do
	[ "$target" = test ] && add "$clang_items" want
done

present() {
	case $1 in
	cmocka) pkg-config --exists cmocka 2>/dev/null ;;
	libclang-rt)
		# libFuzzer and the sanitizers' runtimes, where this clang looks for them.
		command -v clang >/dev/null &&
			ls "$(clang -print-runtime-dir 2>/dev/null)"/libclang_rt.fuzzer*.a >/dev/null 2>&1
		;;
	*) command -v "$1" >/dev/null ;;
	esac
}

package() {
	case $1 in
	cc) echo build-essential ;;
	gcc) echo gcc ;;
	ninja) echo ninja-build ;;
	cmocka) echo libcmocka-dev ;;
	libclang-rt) echo libclang-rt-dev ;;
	gnuplot) echo gnuplot-nox ;;
	*) echo "$1" ;;
	esac
}

missing() {
	out=
	for item in $1; do
		present "$item" || out="$out $item"
	done
	echo "$out"
}

packages() {
	out=
	for item in $1; do
		out="$out $(package "$item")"
	done
	echo "$out"
}

apt_install() {
	# shellcheck disable=SC2086
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		$(packages "$1") >/dev/null
}

miss_need=$(missing "$need")
miss_want=$(missing "$want")
[ -z "$miss_need$miss_want" ] && exit 0

sudo=
can_apt=0
if command -v apt-get >/dev/null; then
	if [ "$(id -u)" -eq 0 ]; then
		can_apt=1
	elif command -v sudo >/dev/null; then
		sudo=sudo
		can_apt=1
	fi
fi

if [ $can_apt -eq 1 ]; then
	echo "install-deps: installing:$(packages "$miss_need$miss_want")"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	[ -z "$miss_need" ] || apt_install "$miss_need"
	# A wish that cannot be installed is not an error.
	[ -z "$miss_want" ] || apt_install "$miss_want" 2>/dev/null
	miss_need=$(missing "$need")
	miss_want=$(missing "$want")
fi

if [ -n "$miss_want" ]; then
	echo "install-deps: not found:$miss_want; the fuzz smoke test will be skipped"
fi
if [ -n "$miss_need" ]; then
	if [ $can_apt -eq 1 ]; then
		how="apt-get could not install them"
	elif command -v apt-get >/dev/null; then
		how="apt-get needs root or sudo"
	else
		how="no apt-get here: install them some other way"
	fi
	echo "install-deps: missing for make $*:$miss_need ($how)" >&2
	exit 1
fi
exit 0
