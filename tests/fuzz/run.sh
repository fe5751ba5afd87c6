#!/usr/bin/env bash
# tests/fuzz/run.sh <builddir> <seconds> - runs every libFuzzer target built in
# <builddir>/tests/fuzz (cmake -DHERALD_FUZZ=ON with clang) for <seconds> each, one at a
# time on one core. Each run works on a copy of tests/fuzz/corpus/<name>/ in a scratch
# directory under /tmp, so the repository's corpus is never touched, and uses
# tests/fuzz/<name>.dict when present. Bounded: libFuzzer stops itself after
# -max_total_time, and `timeout` kills it if it does not. Exits non-zero if any target
# crashes, hangs or finds a leak; the scratch directory with the crash input and the
# log is kept and named (add the input to the corpus once the bug is fixed).
set -euo pipefail

if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
	echo "usage: tests/fuzz/run.sh <builddir> <seconds per target>" >&2
	exit 2
fi
builddir=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
found=0
failed=0

for bin in "$builddir"/tests/fuzz/fuzz_*; do
	name=$(basename "$bin")
	case $name in *_replay | *.*) continue ;; esac
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	found=$((found + 1))
	work=$(mktemp -d "/tmp/herald-fuzz-$name.XXXXXX")
	mkdir "$work/corpus"
	if [ -d "$here/corpus/$name" ]; then
		cp -R "$here/corpus/$name/." "$work/corpus/"
	fi
	args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
		-artifact_prefix="$work/")
	if [ -f "$here/$name.dict" ]; then
		args+=(-dict="$here/$name.dict")
	fi
	echo "fuzz: $name for ${seconds}s (work dir $work)"
	rc=0
	timeout --kill-after=30 $((seconds + 120)) "$bin" "${args[@]}" "$work/corpus" \
		>"$work/log" 2>&1 || rc=$?
	grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' \
		"$work/log" | sed "s/^/fuzz: $name /" || true
	grep -E '^#[0-9]+[[:space:]]+DONE' "$work/log" | tail -1 | sed "s/^/fuzz: $name /" || true
	if [ $rc -ne 0 ]; then
		failed=$((failed + 1))
		echo "fuzz: $name FAILED (exit $rc); log and inputs kept in $work" >&2
		tail -n 40 "$work/log" >&2
		ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sed "s|^|fuzz: finding $work/|" >&2 || true
	else
		rm -rf "$work"
	fi
done

if [ $found -eq 0 ]; then
	echo "fuzz: no libFuzzer binaries in $builddir/tests/fuzz (configure with CC=clang -DHERALD_FUZZ=ON)" >&2
	exit 1
fi
if [ $failed -ne 0 ]; then
	echo "fuzz: $failed of $found targets failed" >&2
	exit 1
fi
echo "fuzz: $found targets ran ${seconds}s each without findings"
