#!/usr/bin/env bash
# tools/container-build.sh - the Dockerfile's build stage, runnable on any Debian 12 host too
# (as root or with sudo):
#   bash tools/container-build.sh BUILD_DIR PREFIX
#   bash tools/container-build.sh --packages     step 1 only (the Dockerfile's cached layer)
# 1. installs the build packages that are missing (tools/packages.sh, the list dev.sh uses);
# 2. builds herald and heraldctl (Release, no tests) in BUILD_DIR and installs them in
#    PREFIX/bin;
# 3. checks what it installed: both binaries answer --help; the libraries they link are
#    exactly what tools/packages.sh's runtime list (the image's runtime stage) provides; the
#    installed herald starts on loopback, logs its listening lines, answers heraldctl (the
#    image's HEALTHCHECK) and stops on SIGTERM with status 0.
# tools/dev.sh test runs it, so the recipe is exercised where no container engine runs.
# Exits non-zero on any failure; every wait is bounded.
set -euo pipefail
if [ $# -ne 2 ] && [ "$*" != --packages ]; then
	echo "usage: bash tools/container-build.sh BUILD_DIR PREFIX | --packages" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tools/packages.sh
. "$src/tools/packages.sh"
read -ra build_pkgs <<<"$herald_build_pkgs"
read -ra runtime_pkgs <<<"$herald_runtime_pkgs"
started=$SECONDS

say() { echo "container-build: $*"; }
die() { echo "container-build: $*" >&2; exit 1; }
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# 1. build packages: a fresh debian:12 image has no package lists, so update before installing
missing=()
for p in "${build_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	as_root apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}"
fi
[ "$1" != --packages ] || exit 0
build=$(realpath -m "$1")
prefix=$(realpath -m "$2")

# 2. build and install. Warnings are not errors here (a packager's build): CI's build_types
# builds Release with -Werror already.
say "building in $build"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHERALD_TESTS=OFF -DHERALD_WERROR=OFF \
	>/dev/null
cmake --build "$build" -j2 --target herald heraldctl >/dev/null
cmake --install "$build" --prefix "$prefix" >/dev/null
herald=$prefix/bin/herald
heraldctl=$prefix/bin/heraldctl
if [ ! -x "$herald" ] || [ ! -x "$heraldctl" ]; then
	die "cmake --install put no herald and heraldctl in $prefix/bin"
fi
say "installed $herald and $heraldctl"

# 3a. both binaries run and answer
"$herald" --version
"$herald" --help >/dev/null || die "herald --help failed"
"$heraldctl" --help >/dev/null || die "heraldctl --help failed"

# 3b. the runtime list is exact: every linked library's package is a runtime package or one
# apt installs with them, and every runtime package provides a linked library
deps=$(ldd "$herald" "$heraldctl")
if grep -q 'not found' <<<"$deps"; then
	die "unresolved libraries: $(grep 'not found' <<<"$deps" | tr -s ' \t\n' ' ')"
fi
closure=" $(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
	--no-breaks --no-replaces --no-enhances "${runtime_pkgs[@]}" | grep -v '^[ <]' | sort -u |
	tr '\n' ' ')"
linked=" "
while read -r lib; do
	real=$(readlink -f "$lib")
	# merged /usr: dpkg knows each file under one of its two names
	owner=$(dpkg -S "$lib" "$real" "${real#/usr}" 2>/dev/null | head -1 | cut -d: -f1) ||
		true
	[ -n "$owner" ] || die "no Debian package owns $lib"
	case "$closure" in
	*" $owner "*) linked+="$owner " ;;
	*) die "$lib is in $owner, which tools/packages.sh's runtime list does not install" ;;
	esac
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$deps" | sort -u)
for p in "${runtime_pkgs[@]}"; do
	case "$linked" in
	*" $p "*) ;;
	*) die "runtime package $p provides none of the linked libraries (ldd): drop it" ;;
	esac
done
say "runtime packages match ldd: ${runtime_pkgs[*]}"

# 3c. the installed server starts on loopback, answers its admin endpoint, stops on SIGTERM
log=$(mktemp)
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
	rm -f "$log"
}
trap cleanup EXIT
smoke_fail() {
	sed 's/^/  herald: /' "$log" >&2
	die "$*"
}
"$herald" --bind 127.0.0.1 --stomp-port 0 --ws-port 0 --gossip-bind 127.0.0.1 --gossip-port 0 \
	--admin-port 0 --shards 2 >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do	# 10 s at most
	grep -q 'listening proto=admin' "$log" && break
	kill -0 "$pid" 2>/dev/null || smoke_fail "herald exited at start"
	sleep 0.1
done
grep -q 'listening proto=stomp' "$log" || smoke_fail "no 'listening proto=stomp' line in 10 s"
admin=$(sed -n 's/.*listening proto=admin addr=\([0-9.:]*\).*/\1/p' "$log" | head -1)
[ -n "$admin" ] || smoke_fail "no 'listening proto=admin' line in 10 s"
"$heraldctl" --node "$admin" --timeout 3000 cluster status >/dev/null ||
	smoke_fail "heraldctl cluster status (the HEALTHCHECK) failed"
kill -TERM "$pid"
for _ in $(seq 100); do	# 10 s at most
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null && smoke_fail "herald still running 10 s after SIGTERM"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || smoke_fail "herald exited $rc after SIGTERM"
grep 'io backend' "$log" || true	# which backend ran (once the server logs it)
say "ok: herald started, answered heraldctl and stopped cleanly ($((SECONDS - started)) s)"
