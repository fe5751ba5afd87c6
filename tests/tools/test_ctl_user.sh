#!/usr/bin/env bash
# tests/tools/test_ctl_user.sh <heraldctl> - `heraldctl user` against the users-file format
# of docs/auth.md, in a scratch directory: add/passwd/set/remove/list, exit codes, the
# line-preserving rewrite (comments and order kept, mode kept, 0640 for a new file), an
# invalid file never rewritten, no terminal without --password-stdin, $HERALD_USERS_FILE,
# and concurrent adds (the directory lock) all landing. Exits 77 (CTest skip) when the
# heraldctl given has no `user` command yet.
set -u

ctl=${1:-build/tools/heraldctl}
fails=0
work=$(mktemp -d /tmp/herald-ctl-user.XXXXXX)
trap 'rm -rf "$work"' EXIT
f=$work/users

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# expect <exit code> <description> -- command...
expect() {
	local want=$1 what=$2
	shift 3
	"$@" >"$work/out" 2>"$work/err" </dev/null
	local got=$?
	[ "$got" = "$want" ] || fail "$what: exit $got, want $want ($(head -c 300 "$work/err"))"
}

# add_user <name> <password> [args...]: the password on stdin
add_user() {
	local name=$1 pw=$2
	shift 2
	printf '%s\n' "$pw" | "$ctl" user add "$name" --password-stdin --file "$f" "$@" \
		>"$work/out" 2>"$work/err"
}

if ! [ -x "$ctl" ]; then
	echo "no heraldctl at $ctl" >&2
	exit 2
fi
if ! "$ctl" user --help 2>&1 | grep -q 'heraldctl user <verb>'; then
	echo "SKIP: $ctl has no 'user' command (tools/heraldctl.c dispatch missing)"
	exit 77
fi

# --- add, list ---
add_user jack pw-jack || fail "add jack: $(cat "$work/err")"
[ "$(stat -c %a "$f")" = 640 ] || fail "new file mode $(stat -c %a "$f"), want 640"
grep -Eq '^jack:\$argon2id\$v=19\$m=65536,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+::/$' "$f" ||
	fail "jack's line: $(cat "$f")"
grep -q pw-jack "$f" && fail "the plaintext password is in the file"
add_user billing pw-b --tags service --vhosts /,prod || fail "add billing"
grep -q '^billing:\$argon2id\$.*:service:/,prod$' "$f" || fail "billing's line: $(cat "$f")"
add_user jack other
[ $? = 1 ] || fail "adding jack twice should exit 1"
grep -q "already exists" "$work/err" || fail "duplicate add message: $(cat "$work/err")"
expect 0 "list" -- "$ctl" user list --file "$f"
grep -Eq '^jack +- +/$' "$work/out" || fail "list jack: $(cat "$work/out")"
grep -Eq '^billing +service +/,prod$' "$work/out" || fail "list billing: $(cat "$work/out")"
grep -q argon2id "$work/out" && fail "list shows hashes"

# --- line edits keep everything else ---
printf '# a comment the tool must keep\n' >>"$f"
chmod 600 "$f"
before_jack=$(grep '^jack:' "$f")
printf 'new-pw\n' | "$ctl" user passwd jack --password-stdin --file "$f" >/dev/null 2>&1 ||
	fail "passwd jack"
after_jack=$(grep '^jack:' "$f")
[ "$before_jack" != "$after_jack" ] || fail "passwd did not change the hash"
[ "$(sed -n 1p "$f" | cut -d: -f1)" = jack ] || fail "passwd moved jack's line"
grep -q '^# a comment the tool must keep$' "$f" || fail "comment lost"
[ "$(stat -c %a "$f")" = 600 ] || fail "mode not kept: $(stat -c %a "$f")"
expect 0 "set tags" -- "$ctl" user set billing --tags administrator,service --file "$f"
grep -q '^billing:\$argon2id\$.*:administrator,service:/,prod$' "$f" || fail "set: $(cat "$f")"
expect 0 "set vhosts" -- "$ctl" user set billing --vhosts '*' --file "$f"
grep -q ':administrator,service:\*$' "$f" || fail "set vhosts: $(cat "$f")"
expect 2 "set without changes" -- "$ctl" user set billing --file "$f"
expect 0 "remove" -- "$ctl" user remove billing --file "$f"
grep -q '^billing:' "$f" && fail "billing still there"
[ "$(wc -l <"$f")" = 2 ] || fail "remove left $(wc -l <"$f") lines, want 2"

# --- errors ---
expect 1 "remove missing" -- "$ctl" user remove nobody --file "$f"
expect 1 "passwd missing" -- "$ctl" user passwd nobody --password-stdin --file "$f"
expect 2 "bad name" -- "$ctl" user add 'ja/ck' --password-stdin --file "$f"
expect 2 "bad tag" -- "$ctl" user add rose --tags Admin --password-stdin --file "$f"
expect 2 "bad vhost" -- "$ctl" user add rose --vhosts 'a b' --password-stdin --file "$f"
expect 2 "no verb" -- "$ctl" user
expect 2 "unknown verb" -- "$ctl" user frobnicate
expect 2 "add without name" -- "$ctl" user add --file "$f"
expect 2 "unknown option" -- "$ctl" user list --bogus --file "$f"
expect 1 "empty password" -- "$ctl" user add rose --password-stdin --file "$f"
# no terminal (setsid: no controlling tty) and no --password-stdin
if command -v setsid >/dev/null; then
	setsid "$ctl" user add rose --file "$f" </dev/null >/dev/null 2>"$work/err"
	[ $? = 1 ] || fail "add without a terminal should exit 1"
	grep -q -- --password-stdin "$work/err" || fail "no-terminal message: $(cat "$work/err")"
fi
grep -q '^rose:' "$f" && fail "a failed add wrote rose"
expect 1 "missing directory" -- "$ctl" user list --file "$work/nodir/users"

# an invalid file is reported with its line and never rewritten
cp "$f" "$work/good"
printf 'broken line\n' >>"$f"
cp "$f" "$work/broken"
add_user rose pw
[ $? = 1 ] || fail "add into a broken file should exit 1"
grep -q 'line 3' "$work/err" || fail "broken file message: $(cat "$work/err")"
cmp -s "$f" "$work/broken" || fail "a broken file was rewritten"
cp "$work/good" "$f"

# --- $HERALD_USERS_FILE ---
HERALD_USERS_FILE=$f "$ctl" user list >"$work/out" 2>&1 || fail "list via HERALD_USERS_FILE"
grep -q '^jack ' "$work/out" || fail "HERALD_USERS_FILE not used: $(cat "$work/out")"

# --- concurrent adds all land (the directory lock) ---
for i in 1 2 3 4; do
	printf 'pw%s\n' "$i" | "$ctl" user add "u$i" --password-stdin --file "$f" >/dev/null 2>&1 &
done
wait
for i in 1 2 3 4; do
	grep -q "^u$i:" "$f" || fail "concurrent add u$i lost"
done
ls "$work" | grep -q '\.tmp\.' && fail "temporary files left behind"

if [ $fails -ne 0 ]; then
	echo "test_ctl_user: $fails failure(s)" >&2
	exit 1
fi
echo "test_ctl_user: all passed"
