#!/usr/bin/env bash
# bench/scaleout.sh - scale out on one box: five Herald nodes, 18,000 subscribed
# connections on each (90,000 in all, every node under the 20,000 open-files limit), one
# publisher on node A, one topic; beside one node (A) holding 18,000 alone, the other four
# up and idle. Every message must reach every subscriber.
#
#	bash bench/scaleout.sh                        # 1 round: ~2 min
#	ROUNDS=2 DURATION=10 bash bench/scaleout.sh
#
# One herald-bench run per case: it forks a worker process per --conns-per-proc (18,000)
# connections, each under its own open-files limit, and sums their counts in shared memory,
# so 90,000 subscribers are one run with one coordinator. Subscribers go round-robin over
# --sub-url (subscriber i to node i mod 5); they connect from 127.0.0.2, .3, ... (2,000
# each); --settle $SETTLE s for interest to reach A. Two modes per case: "sat", saturating
# fan-out with $WINDOW_MSGS messages in flight per subscriber (--window = WINDOW_MSGS x
# subscribers): the most deliveries/s the box gives; "paced", herald-bench latency at
# $DELIVERIES deliveries/s over all subscribers (--rate = DELIVERIES / subscribers
# messages/s, so both cases do the same work per second): CPU per delivery and latency at
# a modest load.
#
# Figures: deliveries/s, server CPU-seconds of all five nodes per million deliveries,
# loss (expected = published x subscribers), node A's link messages out (one per message
# per node with subscribers), memory (MemAvailable and kernel Slab every second, the nodes'
# RSS). Builds into $BUILD unless NO_BUILD=1; every wait is bounded; no run starts after
# $BUDGET s; only the PIDs started here are stopped. Results under $OUT
# (bench/results/scaleout-<UTC time>/).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

ROUNDS=${ROUNDS:-1}
NODES=${NODES:-5}
PER_NODE=${PER_NODE:-18000}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
SETTLE=${SETTLE:-2}
BODY=${BODY:-100}
WINDOW_MSGS=${WINDOW_MSGS:-16}	# sat: messages in flight, window = WINDOW_MSGS x subscribers
DELIVERIES=${DELIVERIES:-180000}	# paced: deliveries/s over all subscribers
MODES=${MODES:-"sat paced"}
SHARDS=${SHARDS:-2}
THREADS=${THREADS:-2}
CASES=${CASES:-"one all"}
BUDGET=${BUDGET:-600}
# shellcheck source=bench/cluster_lib.sh
. "$top/bench/cluster_lib.sh"
cl_setup scaleout
sampler=

cl_extra_cleanup() {
	[ -n "$sampler" ] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
}

# links_out: node A's link messages sent, summed over its peers
links_out() {
	cl_status "${cl_admin[0]}" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(m.get("link_msgs_out", 0) for m in s["members"] if m["name"] != s["self"]))' 2>/dev/null || echo -1
}

# memory FILE: every second, "time MemAvailable_kB Slab_kB rss_kB(node...)" until killed
memory() {
	while :; do
		local line
		line="$(date +%s) $(awk '/^MemAvailable:/ { a = $2 } /^Slab:/ { s = $2 } END { print a, s }' /proc/meminfo)"
		for p in "${cl_pid[@]}"; do
			line+=" $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)"
		done
		echo "$line" >>"$1"
		sleep 1
	done
}

run_one() {	# run_one CASE MODE ROUND
	local c=$1 m=$2 r=$3 subs sub i json wl margs
	case $c in
	one) subs=$PER_NODE sub=$(cl_url 0) ;;
	all)
		subs=$((PER_NODE * NODES)) sub=$(cl_url 0)
		for ((i = 1; i < NODES; i++)); do sub+=",$(cl_url "$i")"; done
		;;
	esac
	case $m in
	sat) wl=fanout margs=(--window "$((WINDOW_MSGS * subs))") ;;
	paced) wl=latency margs=(--rate "$(awk "BEGIN { print $DELIVERIES / $subs }")") ;;
	esac
	json="$out/$c-$m.$r.json"
	local cmd=("$HB" "$wl" --pub-url "$(cl_url 0)" --sub-url "$sub" --subscribers "$subs"
		--body "$BODY" "${margs[@]}" --settle "$SETTLE"
		--warmup "$WARMUP" --duration "$DURATION" --threads "$THREADS"
		--setup-timeout 180 --drain-timeout 20
		--server-pid "$(cl_pids_csv)" --label "scaleout-$c-$m" --json "$json" --quiet)
	echo "${cmd[*]}  # load $(cut -d' ' -f1 /proc/loadavg)" | sed "s|$HB|herald-bench|; s|$out/||g" >>"$cl_cmds"
	cl_log "round $r case $c $m: $subs subscribers"
	echo "before $(links_out)" >"$out/$c-$m.$r.links"
	memory "$out/$c-$m.$r.memory" &
	sampler=$!
	timeout 400 "${cmd[@]}" >>"$out/tables.txt" 2>>"$out/stderr.txt" || cl_log "round $r case $c $m: exit $?"
	kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
	sampler=
	sleep 0.3	# the route publishes its counters every 100 ms
	echo "after $(links_out)" >>"$out/$c-$m.$r.links"
	# let the closed connections' server side go before the next run connects again
	sleep 3
}

summarize() {
	/usr/bin/python3 - "$out" "$NODES" <<'EOF'
import glob, json, os, sys
out, nodes = sys.argv[1], int(sys.argv[2])
L = ["# Scale out on one box: one publisher, one topic", "",
     "| case | round | subscribers | published | expected | delivered | lost | deliveries/s | "
     "CPU-s per million deliveries (all nodes) | latency p50 / p99 ms | A's link msgs out | "
     "nodes' RSS peak | MemAvailable min | Slab max |",
     "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
bad = []
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    c, r = os.path.basename(f)[:-5].split(".")	# c is CASE-MODE
    try:
        j = json.load(open(f))
    except ValueError:
        continue
    links = dict(l.split() for l in open(os.path.join(out, f"{c}.{r}.links")))
    lo = int(links.get("after", -1)) - int(links.get("before", 0))
    mem = [list(map(int, l.split())) for l in open(os.path.join(out, f"{c}.{r}.memory")) if l.strip()]
    avail = min(m[1] for m in mem) / 1048576 if mem else 0
    slab = max(m[2] for m in mem) / 1048576 if mem else 0
    rss = max(sum(m[3:]) for m in mem) / 1024 if mem else 0
    cpu = j.get("cpu_s_per_million") or 0
    L.append(f"| {c} | {r} | {j['subscribers']:,} | {j['published']:,} | {j['expected']:,} | "
             f"{j['delivered']:,} | {j['lost']:,} | {j['del_rate'] / 1e6:.2f} M | {cpu:.3f} | "
             f"{j['latency_us']['p50'] / 1e3:.1f} / {j['latency_us']['p99'] / 1e3:.1f} | {lo:,} | "
             f"{rss:.0f} MiB | {avail:.1f} GiB | {slab:.2f} GiB |")
    if j["lost"] or j["duplicates"] or j["errors"] or j["aborted"] or j["order_violations"]:
        bad.append(f"{c} round {r}: lost {j['lost']}, duplicates {j['duplicates']}, errors {j['errors']}, "
                   f"order {j['order_violations']}, aborted {j['aborted']} {j['first_error']}")
L += [""] + (["**Runs with problems:**", ""] + [f"- {x}" for x in bad] if bad else
             ["No run lost, duplicated or reordered a message, or saw an error."])
open(os.path.join(out, "summary.md"), "w").write("\n".join(L) + "\n")
print("\n".join(L))
EOF
}

main() {
	[ -n "${NO_BUILD:-}" ] || cl_build herald herald-bench
	mkdir -p "$out"
	{
		echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		cl_commit_line
		echo "kernel: $(uname -r); cpus: $(nproc); open files: $(ulimit -Sn) soft, $(ulimit -Hn) hard"
		echo "herald: $HERALD_BIN, --shards $SHARDS per node, $NODES nodes; herald-bench --threads $THREADS"
		echo "memory at start: $(awk '/^MemAvailable:/ { printf "%.1f GiB available", $2 / 1048576 }' /proc/meminfo)"
		echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	} >"$out/machine.txt"
	cl_start_or_exit "$NODES" "$out"
	cl_rounds run_one
	cl_finish "$out"
	summarize
	cl_log "results in ${out#"$top"/}"
}

main "$@"
