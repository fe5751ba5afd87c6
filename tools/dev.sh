#!/usr/bin/env bash
# tools/dev.sh - the README's two commands.
#   bash tools/dev.sh run [herald flags]   install what is missing, build, start a node
#   bash tools/dev.sh test                 install what is missing, build, run every test
# Both are safe to rerun: installs are skipped when present, builds are incremental.
# Every build here passes -DHERALD_WERROR=ON (warnings are errors) but build-container/'s
# (the image's recipe, a packager's build); `run` builds in build-run/, `test` in build/,
# build-asan/, build-tsan/, build-fuzz/, build-types/ and build-container/.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
jobs=2

# build_pkgs: one list with tools/container-build.sh and the Dockerfile (tools/packages.sh)
. tools/packages.sh
read -ra build_pkgs <<<"$herald_build_pkgs"
test_pkgs=(python3 python3-stomp python3-pytest python3-websockets libclang-rt-14-dev chromium
	prometheus
	libseccomp-dev
	debootstrap
	openssl
	ccache)

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_missing() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "dev.sh: installing ${missing[*]}"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" ||
			{ as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -q "${missing[@]}"; }
	fi
}

configure() {	# configure <dir> [cmake args...]: warnings are errors in every build here
	local dir=$1 launcher=()
	shift
	# ccache (when installed; `test` installs it): a clean clone on a machine that ran this
	# before, wherever it is cloned, compiles only what changed, in each of the dozen build
	# directories (paths under the tree hashed relative to it; the build directory left out
	# of the hash, so it only names the debug info's compile directory). A compile that
	# fails (a warning, with -Werror) is never cached: every build still proves it builds.
	if command -v ccache >/dev/null; then
		launcher=("-DCMAKE_C_COMPILER_LAUNCHER=env;CCACHE_BASEDIR=$top;CCACHE_NOHASHDIR=true;ccache")
	fi
	cmake -S "$top" -B "$dir" -DHERALD_WERROR=ON "${launcher[@]}" "$@" >/dev/null
}

build() {	# build <dir> [cmake args...]
	configure "$@"
	cmake --build "$1" -j"$jobs"
}

# Every standard build type builds with gcc and with clang: the binaries and the libraries
# under them, no tests, one directory each (about a minute on 2 cores, from scratch).
build_types() {
	local cc type dir

	for cc in gcc clang; do
		for type in Debug Release RelWithDebInfo MinSizeRel; do
			dir=build-types/$cc-$type
			CC=$cc configure "$dir" -DCMAKE_BUILD_TYPE="$type" -DHERALD_TESTS=OFF
			cmake --build "$dir" -j"$jobs" --target herald heraldctl >/dev/null ||
				{ echo "dev.sh: $cc $type does not build" >&2; return 1; }
		done
	done
}

cmd_run() {
	install_missing "${build_pkgs[@]}"
	# its own directory: a test build's cache (HERALD_TESTS=ON) and this one never mix
	build build-run -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_TESTS=OFF
	if [ -x build-run/core/herald ]; then
		exec build-run/core/herald "$@"
	fi
	echo "dev.sh: the server binary is not built yet (see the README's status)"
	exit 1
}

cmd_test() {
	install_missing "${build_pkgs[@]}" "${test_pkgs[@]}"
	# the browser test: playwright-core drives Debian's chromium; @stomp/stompjs from npm
	command -v npm >/dev/null || install_missing nodejs npm
	(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
	# 0. every build type builds with gcc and clang (binaries only)
	build_types
	# 1. release build: every test (units, fuzz corpus replays, integration suites);
	# HERALD_TESTS=ON said explicitly, so a cache that turned it off cannot hide them
	build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_TESTS=ON
	ctest --test-dir build --output-on-failure --no-tests=error -j"$jobs"
	# 2. ASan + UBSan build: units, fuzz replays, and the shard-routing integration cases
	build build-asan -DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=ON -DHERALD_TESTS=ON
	ctest --test-dir build-asan --output-on-failure --no-tests=error -j"$jobs" -L 'unit|fuzz|sanitized'
	# 3. ThreadSanitizer: the cross-thread pieces (xring, hmsg)
	configure build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_TSAN=ON -DHERALD_TESTS=ON
	cmake --build build-tsan -j"$jobs" --target unit_core_test_xring unit_core_test_hmsg
	ctest --test-dir build-tsan --output-on-failure --no-tests=error -R 'unit_core_test_(xring|hmsg)'
	# 4. libFuzzer, briefly (bounded): clang builds each target and runs it, FUZZ_SECONDS
	# (20) each on a core of its own, $jobs targets at a time
	if [ -x tests/fuzz/run.sh ]; then
		CC=clang build build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_FUZZ=ON
		tests/fuzz/run.sh build-fuzz "${FUZZ_SECONDS:-20}" "$jobs"
	fi
	# 5. the Dockerfile's build stage, here where no container engine runs (about 15 s): a
	# Release build installed in build-container/prefix, the runtime package list checked
	# against ldd, the installed herald started once and stopped
	bash tools/container-build.sh build-container/build build-container/prefix
	echo "dev.sh: all tests passed"
}

case "${1:-}" in
run) shift; cmd_run "$@" ;;
test) shift; cmd_test "$@" ;;
*) echo "usage: bash tools/dev.sh run [herald flags] | test" >&2; exit 2 ;;
esac
