#!/usr/bin/env bash
# bench/queues_cluster.sh - queues across nodes: what a queue message costs when its
# producer, owner and consumer are three different nodes, beside the same queues on one
# node, on one three-node Herald cluster (127.0.0.1, ports the kernel picks).
#
#	bash bench/queues_cluster.sh                     # 3 rounds: ~3 min
#	ROUNDS=1 DURATION=3 bash bench/queues_cluster.sh # a quick look
#
# Cases (producers always on node A, herald-bench --pub-url):
#   one    queues owned by A, consumers on A          one node's queue path
#   three  queues owned by B, consumers on C          producer, owner, consumer all differ
#   mixed  /queue/user-<i> (owners spread over A, B, C), consumers round-robin on A, B, C
# The queue names for "one" and "three" come from herald-queue-pick (bench/queue_pick.c:
# the server's own rendezvous function) and go to herald-bench --queue-file; every run's
# owners are checked against the running cluster (heraldctl queues --json, sampled while
# the consumers are subscribed).
#
# Each case runs twice per round: saturating (--window $WINDOW deliveries in flight), for
# server CPU-seconds of all three nodes per million messages; and paced at --rate $RATE
# messages/s, for latency p50/p99 (from each message's scheduled send time). Ratios
# three/one and mixed/one are medians of per-round ratios (a round's runs are seconds
# apart and share the box's noise).
#
# Builds herald, herald-bench, herald-queue-pick and heraldctl into $BUILD (configured
# Release when it has no CMakeCache.txt; NO_BUILD=1 skips). Every wait is bounded; no run
# starts after $BUDGET s; only the PIDs started here are stopped (TERM, then KILL). Results
# under $OUT (bench/results/queues-cluster-<UTC time>/): one JSON per run, owner samples,
# commands.txt, tables.txt, node logs, summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SETTLE=${SETTLE:-0.5}
USERS=${USERS:-1000}
PRODUCERS=${PRODUCERS:-4}
BODY=${BODY:-100}
WINDOW=${WINDOW:-5000}		# saturating runs: deliveries in flight (README: why 5,000)
RATE=${RATE:-10000}		# paced runs: messages/s over all producers
SHARDS=${SHARDS:-2}
THREADS=${THREADS:-2}
CASES=${CASES:-"one three mixed"}
MODES=${MODES:-"sat paced"}
BUDGET=${BUDGET:-300}
# shellcheck source=bench/cluster_lib.sh
. "$top/bench/cluster_lib.sh"
cl_setup queues-cluster

# owners FILE: heraldctl's view of every queue with a consumer: "owner count" lines
owners() {
	"$CTL" --node "127.0.0.1:${cl_admin[0]}" queues --json 2>/dev/null | /usr/bin/python3 -c '
import collections, json, sys
c = collections.Counter(q["owner"] for q in json.load(sys.stdin)["queues"] if q["consumers"])
print(" ".join(f"{o}={n}" for o, n in sorted(c.items())) or "none")' >>"$1" 2>/dev/null || echo "unreadable" >>"$1"
}

run_one() {	# run_one CASE MODE ROUND
	local c=$1 m=$2 r=$3 json sub qargs=() margs=()
	case $c in
	one) sub=$(cl_url 0) qargs=(--queue-file "$out/owned-by-a.txt") ;;
	three) sub=$(cl_url 2) qargs=(--queue-file "$out/owned-by-b.txt") ;;
	mixed) sub="$(cl_url 0),$(cl_url 1),$(cl_url 2)" qargs=(--users "$USERS") ;;
	esac
	case $m in
	sat) margs=(--window "$WINDOW") ;;
	paced) margs=(--rate "$RATE") ;;
	esac
	json="$out/$c.$m.$r.json"
	local cmd=("$HB" queues --pub-url "$(cl_url 0)" --sub-url "$sub" "${qargs[@]}"
		--producers "$PRODUCERS" --body "$BODY" "${margs[@]}" --settle "$SETTLE"
		--warmup "$WARMUP" --duration "$DURATION" --threads "$THREADS"
		--server-pid "$(cl_pids_csv)" --label "$c-$m" --json "$json" --quiet)
	cl_bench_run "" "round $r case $c $m" owners "$out/$c.$m.$r.owners" "${cmd[@]}"
}

summarize() {
	/usr/bin/python3 - "$out" "$RATE" "$WINDOW" <<'EOF'
import glob, json, os, statistics, sys
out, rate, window = sys.argv[1], float(sys.argv[2]), sys.argv[3]
runs = {}
for f in glob.glob(os.path.join(out, "*.json")):
    c, m, r = os.path.basename(f)[:-5].split(".")
    try:
        runs[(c, m, int(r))] = json.load(open(f))
    except ValueError:
        pass
rounds = sorted({k[2] for k in runs})
cases = [c for c in ("one", "three", "mixed") if any(k[0] == c for k in runs)]
names = {"one": "one: producers, owner A, consumers on A",
         "three": "three: producers on A, owner B, consumers on C",
         "mixed": "mixed: producers on A, owners A/B/C, consumers on A/B/C"}
def get(c, m, r, *path):
    j = runs.get((c, m, r))
    for p in path:
        j = j.get(p) if isinstance(j, dict) else None
    return j
def med(xs):
    return statistics.median(xs) if xs else None
def fmt(xs, spec):
    return (f"{med(xs):{spec}}" + (f" ({', '.join(format(x, spec) for x in xs)})" if len(xs) > 1 else "")) if xs else "—"
def owners(c, m, r):
    p = os.path.join(out, f"{c}.{m}.{r}.owners")
    return open(p).read().strip() if os.path.exists(p) else "—"
L = ["# Queues across nodes: one node against producer, owner and consumer on three", ""]
L += [f"Saturating (window {window}): server CPU-seconds of all three nodes per million queue "
      "messages, median (each round); messages/s median.", "",
      "| case | CPU-s per million | messages/s |", "|---|---:|---:|"]
bad = []
for c in cases:
    cpu = [get(c, "sat", r, "cpu_s_per_million") for r in rounds if get(c, "sat", r, "cpu_s_per_million")]
    rt = [get(c, "sat", r, "del_rate") / 1e3 for r in rounds if get(c, "sat", r, "del_rate")]
    L.append(f"| {names[c]} | {fmt(cpu, '.2f')} | {fmt(rt, '.0f')} k |")
L += ["", "| ratio (per-round, median) | CPU per message | goal |", "|---|---:|---:|"]
for c in ("three", "mixed"):
    rs = [get(c, "sat", r, "cpu_s_per_million") / get("one", "sat", r, "cpu_s_per_million")
          for r in rounds if get(c, "sat", r, "cpu_s_per_million") and get("one", "sat", r, "cpu_s_per_million")]
    if rs:
        L.append(f"| {c}/one | {fmt(rs, '.2f')}× | {'≤ 3×' if c == 'three' else '—'} |")
if any(k[1] == "paced" for k in runs):
    L += ["", f"Paced at {rate:.0f} messages/s: latency from the scheduled send time, ms, median "
          "(each round); CPU-s per million at that rate.", "",
          "| case | p50 | p99 | p99.9 | max | CPU-s/M |", "|---|---:|---:|---:|---:|---:|"]
for c in cases if any(k[1] == "paced" for k in runs) else []:
    q = {k: [get(c, "paced", r, "latency_us", k) / 1e3 for r in rounds if get(c, "paced", r, "latency_us", k) is not None]
         for k in ("p50", "p99", "p999", "max")}
    cpu = [get(c, "paced", r, "cpu_s_per_million") for r in rounds if get(c, "paced", r, "cpu_s_per_million")]
    L.append(f"| {c} | {fmt(q['p50'], '.2f')} | {fmt(q['p99'], '.2f')} | {fmt(q['p999'], '.1f')} | "
             f"{fmt(q['max'], '.1f')} | {fmt(cpu, '.1f')} |")
L += ["", "Owners seen by `heraldctl queues --json` while each run's consumers were subscribed:", "",
      "| case | mode | round | owners (queues with a consumer) |", "|---|---|---:|---|"]
for (c, m, r) in sorted(runs):
    L.append(f"| {c} | {m} | {r} | {owners(c, m, r)} |")
    j = runs[(c, m, r)]
    if j["lost"] or j["duplicates"] or j["errors"] or j["aborted"] or j["order_violations"]:
        bad.append(f"{c} {m} round {r}: lost {j['lost']}, duplicates {j['duplicates']}, errors {j['errors']}, "
                   f"order {j['order_violations']}, aborted {j['aborted']} {j['first_error']}")
L += [""] + (["**Runs with problems:**", ""] + [f"- {x}" for x in bad] if bad else
             ["No run lost, duplicated or reordered a message, or saw an error."])
open(os.path.join(out, "summary.md"), "w").write("\n".join(L) + "\n")
print("\n".join(L))
EOF
}

main() {
	[ -n "${NO_BUILD:-}" ] || cl_build herald herald-bench herald-queue-pick heraldctl
	mkdir -p "$out"
	{
		echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		cl_commit_line
		echo "kernel: $(uname -r); cpus: $(nproc)"
		echo "herald: $HERALD_BIN, --shards $SHARDS per node, 3 nodes; herald-bench --threads $THREADS"
		echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	} >"$out/machine.txt"
	cl_start_or_exit 3 "$out"
	local nodes
	nodes=$(IFS=,; echo "${cl_names[*]}")
	"$PICK" --nodes "$nodes" --owner "${cl_names[0]}" --count "$USERS" >"$out/owned-by-a.txt"
	"$PICK" --nodes "$nodes" --owner "${cl_names[1]}" --count "$USERS" >"$out/owned-by-b.txt"
	echo "herald-queue-pick --nodes $nodes --owner ${cl_names[0]} --count $USERS > owned-by-a.txt" >>"$cl_cmds"
	echo "herald-queue-pick --nodes $nodes --owner ${cl_names[1]} --count $USERS > owned-by-b.txt" >>"$cl_cmds"
	cl_rounds run_one
	cl_finish "$out"
	summarize
	cl_log "results in ${out#"$top"/}"
}

main "$@"
