#!/usr/bin/env bash
# tests/fuzz/run.sh <builddir> <seconds> [jobs] - runs every libFuzzer target built in
# <builddir>/tests/fuzz (cmake -DHERALD_FUZZ=ON with clang) for <seconds> each, <jobs>
# targets at a time (default 2, the cores of the CI box), each on one core: the budget that
# matters is a target's own seconds of fuzzing, and the step takes targets / jobs x seconds.
# Each run works on a copy of tests/fuzz/corpus/<name>/ in a scratch directory under /tmp,
# so the repository's corpus is never touched, and uses tests/fuzz/<name>.dict when present.
# Bounded: libFuzzer stops itself after -max_total_time, and `timeout` kills it if it does
# not. Exits non-zero if any target crashes, hangs or finds a leak; the scratch directory
# with the crash input and the log is kept and named (add the input to the corpus once the
# bug is fixed).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ] || ! [[ $2 =~ ^[0-9]+$ ]] || ! [[ ${3:-2} =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: tests/fuzz/run.sh <builddir> <seconds per target> [jobs]" >&2
	exit 2
fi
builddir=$1
seconds=$2
jobs=${3:-2}
here=$(cd "$(dirname "$0")" && pwd)
results=$(mktemp -d /tmp/herald-fuzz-results.XXXXXX)
trap 'rm -rf "$results"' EXIT

# fuzz_one <binary>: one target for $seconds; its report goes to $results/<name>.out (printed
# whole once it is done, so parallel targets do not interleave) and $results/<name>.rc
fuzz_one() {
	local bin=$1 name work rc=0
	name=$(basename "$bin")
	work=$(mktemp -d "/tmp/herald-fuzz-$name.XXXXXX")
	mkdir "$work/corpus"
	if [ -d "$here/corpus/$name" ]; then
		cp -R "$here/corpus/$name/." "$work/corpus/"
	fi
	local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
		-artifact_prefix="$work/")
	if [ -f "$here/$name.dict" ]; then
		args+=(-dict="$here/$name.dict")
	fi
	{
		echo "fuzz: $name for ${seconds}s (work dir $work)"
		timeout --kill-after=30 $((seconds + 120)) "$bin" "${args[@]}" "$work/corpus" \
			>"$work/log" 2>&1 || rc=$?
		grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' \
			"$work/log" | sed "s/^/fuzz: $name /" || true
		grep -E '^#[0-9]+[[:space:]]+DONE' "$work/log" | tail -1 | sed "s/^/fuzz: $name /" || true
		if [ $rc -ne 0 ]; then
			echo "fuzz: $name FAILED (exit $rc); log and inputs kept in $work"
			tail -n 40 "$work/log"
			ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' |
				sed "s|^|fuzz: finding $work/|" || true
		else
			rm -rf "$work"
		fi
	} >"$results/$name.out" 2>&1
	echo "$rc" >"$results/$name.rc"
}

found=0
running=0
for bin in "$builddir"/tests/fuzz/fuzz_*; do
	name=$(basename "$bin")
	case $name in *_replay | *.*) continue ;; esac
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	found=$((found + 1))
	if [ $running -ge "$jobs" ]; then
		wait -n || true		# a slot frees up (each job's result is in $results)
		running=$((running - 1))
	fi
	fuzz_one "$bin" &
	running=$((running + 1))
done
wait || true

if [ $found -eq 0 ]; then
	echo "fuzz: no libFuzzer binaries in $builddir/tests/fuzz (configure with CC=clang -DHERALD_FUZZ=ON)" >&2
	exit 1
fi
failed=0
done_n=0
for out in "$results"/*.out; do
	name=$(basename "$out" .out)
	rc=$(cat "$results/$name.rc" 2>/dev/null || echo missing)
	done_n=$((done_n + 1))
	if [ "$rc" = 0 ]; then
		cat "$out"
	else
		cat "$out" >&2
		failed=$((failed + 1))
	fi
done
if [ $done_n -ne $found ]; then
	echo "fuzz: $found targets started, $done_n reported" >&2
	exit 1
fi
if [ $failed -ne 0 ]; then
	echo "fuzz: $failed of $found targets failed" >&2
	exit 1
fi
echo "fuzz: $found targets ran ${seconds}s each, $jobs at a time, without findings"
