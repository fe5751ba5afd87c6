#!/usr/bin/env bash
# tools/package-test.sh - the Debian package, built here and installed on a fresh Debian 12
# (CTest: package_deb, label package):
#   bash tools/package-test.sh [BUILD_DIR]       (default build-package/; run as root)
# 1. configures a Release build with the prefix /usr in BUILD_DIR, builds it and makes
#    herald_<version>_<arch>.deb with `cpack -G DEB`;
# 2. unpacks a clean Debian 12 minbase chroot (debootstrap, from the mirror this machine's
#    apt uses, read from its sources at run time). The clean tree is cached as a tarball in
#    /var/cache/herald-package-test/ (made again when missing) and the .debs apt downloads
#    in archives/ beside it, so a repeat run takes seconds; the chroot itself is new each run;
# 3. `apt-get update && apt-get install ./herald_*.deb` in it, which pulls the Depends from
#    the archive, and checks what the package did: files in place (binaries, man pages,
#    conffile, unit), the herald user, /etc/herald root:herald 2750, and that nothing was
#    started (no systemd runs in a chroot);
# 4. adds a user with heraldctl (root's file in /etc/herald must be readable by herald), runs
#    herald as the unit would (its ExecStart line, as user herald, its LimitNOFILE if this
#    machine allows it) on loopback with every port 0 (a chroot shares this machine's
#    network) and that users file, asks it with heraldctl from inside the chroot and with
#    that user's STOMP CONNECT, and stops it with SIGTERM by PID: it must exit 0;
# 5. purges the package (the maintainer scripts' other half), unmounts, removes the chroot.
# Exits 77 (CTest's skip) when not root or without debootstrap; every step is bounded.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$src/build-package}")
cache=${HERALD_PACKAGE_CACHE:-/var/cache/herald-package-test}
suite=bookworm
started=$SECONDS

say() { echo "package-test: $*"; }
die() { echo "package-test: FAIL: $*" >&2; exit 1; }
skip() { echo "package-test: SKIP: $*"; exit 77; }
step() { say "$* ($((SECONDS - started)) s)"; }

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, mounts)"
command -v debootstrap >/dev/null || skip "no debootstrap (apt-get install debootstrap)"
for tool in cpack dpkg-deb tar flock mountpoint; do
	command -v "$tool" >/dev/null || skip "no $tool"
done
arch=$(dpkg --print-architecture)

# The archive this machine installs from: the first "deb" source for the suite itself (not
# -updates or -security), deb822 .sources first, then one-line .list files. Read here, at run
# time, so no host name is written into the repository. HERALD_DEBIAN_MIRROR overrides.
find_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$suite" '
			function flush() {
				if (!found && types ~ /(^| )deb( |$)/ && suites ~ "(^| )" suite "( |$)" &&
				    enabled != "no" && uris != "") { split(uris, u, " "); print u[1]; found = 1 }
				types = suites = uris = ""; enabled = "yes"
			}
			BEGIN { enabled = "yes" }
			/^[ \t]*$/ { flush(); next }
			/^#/ { next }
			tolower($1) == "types:" { $1 = ""; types = $0 }
			tolower($1) == "uris:" { $1 = ""; uris = $0 }
			tolower($1) == "suites:" { $1 = ""; suites = $0 }
			tolower($1) == "enabled:" { enabled = tolower($2) }
			END { flush() }' "$f"
	done
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		sed -e 's/#.*//' -e 's/\[[^]]*\]//' |
		awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2 }' || true
}
mirror=${HERALD_DEBIAN_MIRROR:-$(find_mirror | sed -n 1p)}
[ -n "$mirror" ] || skip "no apt source for $suite on this machine to debootstrap from"

# --- 1. the package
step "building the .deb in $build"
timeout 300 cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
	-DHERALD_TESTS=OFF -DHERALD_WERROR=OFF >/dev/null || die "cmake configure failed"
timeout 600 cmake --build "$build" -j"$(nproc)" >/dev/null || die "build failed"
rm -f "$build"/herald_*.deb
(cd "$build" && timeout 120 cpack -G DEB >/dev/null) || die "cpack -G DEB failed"
debs=("$build"/herald_*_"$arch".deb)
[ -f "${debs[0]}" ] || die "cpack made no herald_*_$arch.deb in $build"
deb=${debs[0]}
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
for f in ./usr/bin/herald ./usr/bin/heraldctl ./usr/bin/herald-bench \
	./usr/share/man/man8/herald.8.gz ./usr/share/man/man8/heraldctl.8.gz \
	./usr/share/man/man1/herald-bench.1.gz ./etc/herald/herald.conf \
	./usr/share/doc/herald/examples/herald.conf ./lib/systemd/system/herald.service; do
	grep -qxF "$f" <<<"$contents" || die "$(basename "$deb") has no $f"
done
say "made $(basename "$deb") ($(stat -c %s "$deb") bytes): $(dpkg-deb -f "$deb" Depends)"

# --- 2. a fresh Debian 12: the cached minbase tarball, made once
mkdir -p "$cache/archives/partial"
tarball=$cache/$suite-minbase-$arch.tar
exec 9>"$cache/lock"	# one run at a time uses the cache (apt locks archives/ and would fail)
flock -w 900 9 || die "another package-test holds $cache/lock for 15 min"
if [ ! -s "$tarball" ]; then
	step "no $tarball: debootstrap --variant=minbase $suite (a minute or more, once)"
	boot=$(mktemp -d /var/tmp/herald-debootstrap.XXXXXX)
	if ! timeout 900 debootstrap --variant=minbase "$suite" "$boot" "$mirror" \
		>"$cache/debootstrap.log" 2>&1; then
		tail -20 "$cache/debootstrap.log" >&2
		for m in proc sys dev/pts dev; do	# what debootstrap may have left mounted
			mountpoint -q "$boot/$m" && umount -l "$boot/$m"
		done
		rm -rf --one-file-system "$boot"
		die "debootstrap failed (log: $cache/debootstrap.log)"
	fi
	rm -f "$boot"/var/cache/apt/archives/*.deb
	chmod 0755 "$boot"
	timeout 300 tar -C "$boot" --numeric-owner -cf "$tarball.tmp" . || die "tar of the chroot failed"
	mv "$tarball.tmp" "$tarball"
	rm -rf --one-file-system "$boot"
fi

root=$(mktemp -d /var/tmp/herald-package-test.XXXXXX)
pid=
log=$root.herald.log	# beside the chroot, like $root.apt.log and $root.ctl
mounts=(proc sys var/cache/apt/archives)
cleanup() {
	local m left
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
	for m in "${mounts[@]}"; do
		if mountpoint -q "$root/$m"; then
			umount "$root/$m" 2>/dev/null || umount -l "$root/$m" || true
		fi
	done
	# never delete through a mount that is still there (a bind mount is this machine's)
	left=$(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts)
	if [ -n "$left" ]; then
		echo "package-test: still mounted, $root left in place: $left" >&2
	else
		rm -rf --one-file-system "$root"
	fi
	rm -f "$log" "$root.apt.log" "$root.ctl"
}
trap cleanup EXIT
step "unpacking $tarball in $root"
timeout 120 tar -C "$root" --numeric-owner -xf "$tarball" || die "cannot unpack $tarball"
chmod 0755 "$root"	# mktemp's 0700 would keep user herald out of its own /
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
# downloaded .debs are kept between runs (the chroot stays fresh: nothing is installed)
mount --bind "$cache/archives" "$root/var/cache/apt/archives"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# this machine's apt settings that decide whether the archive can be reached at all
apt-config dump | grep -E '^Acquire::(https?::Proxy|Check-Valid-Until|Check-Date) ' \
	>"$root/etc/apt/apt.conf.d/99host" || true
# a command in the chroot, with a clean environment (an array, so `timeout` can run it)
in_root=(chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
	DEBIAN_FRONTEND=noninteractive)

# --- 3. install, as on a new machine: debootstrap leaves no package lists
cp "$deb" "$root/tmp/"
pkg=/tmp/$(basename "$deb")
step "apt-get update; apt-get install $pkg in the chroot"
if ! { timeout 300 "${in_root[@]}" apt-get update -q &&
	timeout 300 "${in_root[@]}" apt-get install -y -q "$pkg"; } >"$root.apt.log" 2>&1; then
	tail -30 "$root.apt.log" >&2
	rm -f "$root.apt.log"
	die "apt-get install $pkg failed in a fresh $suite"
fi
grep -E '^(Setting up|Unpacking) ' "$root.apt.log" | sed 's/^/  /' || true
rm -f "$root.apt.log"
step "installed"

# shellcheck disable=SC2016 # dpkg-query's ${fields}
status=$("${in_root[@]}" dpkg-query -W -f='${Status}' herald)
[ "$status" = "install ok installed" ] || die "dpkg lists herald as '$status'"
for f in /usr/bin/herald /usr/bin/heraldctl /usr/bin/herald-bench; do
	[ -x "$root$f" ] || die "no executable $f"
done
for f in /usr/share/man/man8/herald.8.gz /usr/share/man/man8/heraldctl.8.gz \
	/usr/share/man/man1/herald-bench.1.gz /lib/systemd/system/herald.service \
	/usr/share/doc/herald/examples/herald.conf; do
	[ -s "$root$f" ] || die "no $f"
done
# shellcheck disable=SC2016
conffiles=$("${in_root[@]}" dpkg-query -W -f='${Conffiles}\n' herald)
grep -q '^ /etc/herald/herald.conf ' <<<"$conffiles" ||
	die "/etc/herald/herald.conf is not a conffile"
"${in_root[@]}" getent passwd herald >/dev/null || die "the postinst made no user herald"
etc_mode=$("${in_root[@]}" stat -c '%a %U %G' /etc/herald)	# the chroot's names
[ "$etc_mode" = "2750 root herald" ] || die "/etc/herald is $etc_mode, not 2750 root herald"
if [ -x "$root/usr/bin/deb-systemd-helper" ]; then
	[ -L "$root/etc/systemd/system/multi-user.target.wants/herald.service" ] ||
		die "the postinst did not enable herald.service"
fi
in_chroot_pids() {	# processes whose root is the chroot
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && echo "${p#/proc/}"
	done
	return 0
}
[ -z "$(in_chroot_pids)" ] || die "something runs in the chroot after the install (no systemd \
here: the postinst must not start herald): $(in_chroot_pids | tr '\n' ' ')"
say "files, conffile, user herald, /etc/herald 2750 root:herald; nothing started"

# --- 4. run it as the unit would
execstart=$(sed -n 's/^ExecStart=//p' "$root/lib/systemd/system/herald.service")
nofile=$(sed -n 's/^LimitNOFILE=//p' "$root/lib/systemd/system/herald.service")
read -ra cmd <<<"$execstart"
[ "${cmd[0]:-}" = /usr/bin/herald ] || die "unexpected ExecStart: $execstart"
# a users file made by root with heraldctl, as docs/operations.md says: the setgid
# /etc/herald must make it readable by the server's user
echo secret | timeout 30 "${in_root[@]}" heraldctl user add jack --tags service \
	--file /etc/herald/users --password-stdin >/dev/null || die "heraldctl user add failed"
users_mode=$("${in_root[@]}" stat -c '%a %U %G' /etc/herald/users)
[ "$users_mode" = "640 root herald" ] || die "/etc/herald/users is $users_mode, not 640 root herald"
uid=$("${in_root[@]}" id -u herald)
gid=$("${in_root[@]}" id -g herald)
step "starting as uid $uid: $execstart + loopback, ports 0, the users file"
(
	# the unit's LimitNOFILE where this machine allows it (herald logs what it got)
	ulimit -n "$nofile" 2>/dev/null || true
	exec 9>&-	# the cache lock stays with this script
	exec chroot --userspec="$uid:$gid" "$root" /usr/bin/env -i LC_ALL=C.UTF-8 "${cmd[@]}" \
		--bind 127.0.0.1 --stomp-port 0 --ws-port 0 --gossip-bind 127.0.0.1 --gossip-port 0 \
		--admin-port 0 --shards 2 --users-file /etc/herald/users
) >"$log" 2>&1 &
pid=$!
fail() {
	sed 's/^/  herald: /' "$log" >&2
	die "$*"
}
for _ in $(seq 100); do	# 10 s at most
	grep -q 'listening proto=admin' "$log" && break
	kill -0 "$pid" 2>/dev/null || fail "herald exited at start"
	sleep 0.1
done
admin=$(sed -n 's/.*listening proto=admin addr=\([0-9.:]*\).*/\1/p' "$log" | head -1)
stomp=$(sed -n 's/.*listening proto=stomp addr=[0-9.]*:\([0-9]*\).*/\1/p' "$log" | head -1)
if [ -z "$admin" ] || [ -z "$stomp" ]; then
	fail "no 'listening proto=admin' and 'proto=stomp' lines in 10 s"
fi
grep -h 'open files limit' "$log" | sed 's/^/  /' || true
timeout 10 "${in_root[@]}" heraldctl --node "$admin" --timeout 3000 cluster status \
	>"$root.ctl" 2>&1 ||
	{ cat "$root.ctl" >&2; rm -f "$root.ctl"; fail "heraldctl cluster status failed"; }
sed 's/^/  /' "$root.ctl"
rm -f "$root.ctl"
# a STOMP client's first exchange, as the users file's jack
# shellcheck disable=SC2016 # $1 is the inner shell's
answer=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
	printf "CONNECT\naccept-version:1.2\nhost:/\nlogin:jack\npasscode:secret\n\n\0" >&3
	head -c 9 <&3' _ "$stomp") || true
[ "$answer" = CONNECTED ] || fail "STOMP CONNECT on 127.0.0.1:$stomp answered '$answer'"
say "heraldctl answered on $admin; jack's STOMP CONNECT on :$stomp got CONNECTED"
kill -TERM "$pid"
for _ in $(seq 300); do	# 30 s at most: the unit's TimeoutStopSec
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "herald still running 30 s after SIGTERM"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "herald exited $rc after SIGTERM"
grep -q 'stopped' "$log" || fail "no 'stopped' line after SIGTERM"
step "herald stopped on SIGTERM with status 0"

# --- 5. the maintainer scripts' other half
timeout 120 "${in_root[@]}" apt-get purge -y -q herald >"$root.apt.log" 2>&1 ||
	{ tail -20 "$root.apt.log" >&2; rm -f "$root.apt.log"; die "apt-get purge herald failed"; }
rm -f "$root.apt.log"
if [ -e "$root/usr/bin/herald" ] || [ -e "$root/etc/herald/herald.conf" ]; then
	die "files left after apt-get purge herald"
fi
"${in_root[@]}" dpkg-statoverride --list /etc/herald >/dev/null &&
	die "the /etc/herald statoverride is left after purge"
say "ok: $(basename "$deb") installed, ran, stopped and purged on a fresh $suite" \
	"($((SECONDS - started)) s)"
