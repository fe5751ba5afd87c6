#!/usr/bin/env bash
# tools/dev.sh - the README's two commands.
#   bash tools/dev.sh run [herald flags]   install what is missing, build, start a node
#   bash tools/dev.sh test                 install what is missing, build, run every test
# Both are safe to rerun: installs are skipped when present, builds are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
jobs=2

build_pkgs=(build-essential cmake pkg-config clang liburing-dev libxxhash-dev libjemalloc-dev
	libcriterion-dev libssl-dev libsodium-dev libinih-dev)
test_pkgs=(python3 python3-stomp python3-pytest python3-websockets libclang-rt-14-dev chromium)

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

build() {	# build <dir> [cmake args...]
	local dir=$1
	shift
	cmake -S "$top" -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j"$jobs"
}

cmd_run() {
	install_missing "${build_pkgs[@]}"
	build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_TESTS=OFF
	if [ -x build/core/herald ]; then
		exec build/core/herald "$@"
	fi
	echo "dev.sh: the server binary is not built yet (see the README's status)"
	exit 1
}

cmd_test() {
	install_missing "${build_pkgs[@]}" "${test_pkgs[@]}"
	# the browser test: playwright-core drives Debian's chromium; @stomp/stompjs from npm
	command -v npm >/dev/null || install_missing nodejs npm
	(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
	# 1. release build: every test (units, fuzz corpus replays, integration suites)
	build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
	ctest --test-dir build --output-on-failure -j"$jobs"
	# 2. ASan + UBSan build: units and fuzz replays
	build build-asan -DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=ON
	ctest --test-dir build-asan --output-on-failure -j"$jobs" -L 'unit|fuzz'
	# 3. ThreadSanitizer: the cross-thread pieces (xring, hmsg)
	cmake -S "$top" -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_TSAN=ON >/dev/null
	cmake --build build-tsan -j"$jobs" --target unit_core_test_xring unit_core_test_hmsg
	ctest --test-dir build-tsan --output-on-failure -R 'unit_core_test_(xring|hmsg)'
	# 4. libFuzzer, briefly (bounded): clang builds each target and runs it
	if [ -x tests/fuzz/run.sh ]; then
		CC=clang build build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_FUZZ=ON
		tests/fuzz/run.sh build-fuzz "${FUZZ_SECONDS:-20}"
	fi
	echo "dev.sh: all tests passed"
}

case "${1:-}" in
run) shift; cmd_run "$@" ;;
test) shift; cmd_test "$@" ;;
*) echo "usage: bash tools/dev.sh run [herald flags] | test" >&2; exit 2 ;;
esac
