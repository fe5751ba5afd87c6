#!/usr/bin/env bash
# bench/replication.sh - what queue replication costs (issue 13's target: R=2 at most 1.5x
# the server CPU per queue message of R=1, p99 at most 2 ms at 10,000 messages/s), R=1 and
# R=2 side by side on the per-user queues workload, three nodes on 127.0.0.1.
#
#	bash bench/replication.sh                       # 4 rounds, both modes: ~4 min
#	AB_ROUNDS=1 DURATION=3 bash bench/replication.sh # a quick look
#
# Each round starts the same three-node cluster twice, once per value in $REPLICAS
# (herald --queue-replicas R; the order alternates from round to round, so drift in the
# box's load falls on both), and runs queues_cluster.sh's "three" case against it:
# producers on A (--pub-url), 1,000 queues B owns (herald-queue-pick), consumers on C.
# With R=2 each queue's backup is the second node of its rendezvous order, A or C: the
# script counts which from heraldctl queues --json while the consumers are subscribed, and
# checks, after the runs, that queues holding receipted messages (nobody subscribed) each
# have one backup in sync, and give back every message once (bench/repl_check.py).
#
# Modes per cluster: saturating (--window $WINDOW), for server CPU-seconds of all three
# nodes per million messages; and paced (--rate $RATE messages/s), for latency p50/p99 from
# each message's scheduled send time. The R2/R1 ratios are medians of per-round ratios.
#
# Builds as queues_cluster.sh does ($BUILD, NO_BUILD=1). Every wait is bounded; no cluster
# starts after $BUDGET s; only the PIDs started here are stopped (TERM, then KILL).
# Results under $OUT (bench/results/replication-<UTC time>/): one JSON per run
# (<mode>.r<R>.<round>.json), the queue samples (*.queues), commands.txt, tables.txt, node
# logs per cluster (r<R>.<round>/), summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

ROUNDS=${AB_ROUNDS:-${ROUNDS:-4}}
REPLICAS=${REPLICAS:-"1 2"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SETTLE=${SETTLE:-0.5}
USERS=${USERS:-1000}
PRODUCERS=${PRODUCERS:-4}
BODY=${BODY:-100}
WINDOW=${WINDOW:-5000}
RATE=${RATE:-10000}
CHECK_QUEUES=${CHECK_QUEUES:-50}	# the correctness step: queues, receipted SENDs each
CHECK_COUNT=${CHECK_COUNT:-20}
ACK=${ACK:-auto}
RECEIPTS=${RECEIPTS:-}		# 1: every SEND asks for a RECEIPT (R=2: after the backup has it)
PERF_FREQ=${PERF_FREQ:-999}	# PERF=1: profile the saturating runs		# or client-individual: one more replication op per message
SHARDS=${SHARDS:-2}
THREADS=${THREADS:-2}
MODES=${MODES:-"sat paced"}
BUDGET=${BUDGET:-400}
# shellcheck source=bench/cluster_lib.sh
. "$top/bench/cluster_lib.sh"
cl_setup replication

# queues FILE: heraldctl's view of the queues with a consumer, one line:
# "queues N owners a=N backups c=N,a=N nbackups 1=N in_sync yes=N"
queues() {
	"$CTL" --node "127.0.0.1:${cl_admin[0]}" queues --json 2>/dev/null | /usr/bin/python3 -c '
import collections, json, sys
qs = [q for q in json.load(sys.stdin)["queues"] if q["name"].startswith("/queue/q-")]
def count(f):
    c = collections.Counter(f(q) for q in qs)
    return ",".join(f"{k}={n}" for k, n in sorted(c.items())) or "-"
print("queues", len(qs), "owners", count(lambda q: q["owner"]),
      "backups", count(lambda q: "+".join(q.get("backups") or []) or "none"),
      "nbackups", count(lambda q: len(q.get("backups") or [])),
      "in_sync", count(lambda q: "yes" if q.get("in_sync") else "no"),
      "messages", sum(q.get("messages", 0) for q in qs))' >>"$1" 2>/dev/null || echo "unreadable" >>"$1"
}

# links FILE: one line, every node's link counters: {"hb-a": {"hb-b": [msgs_out, bytes_out],
# ...}, ...} (read before and after each run: frames and bytes per message on each link)
links() {
	local i
	for i in 0 1 2; do cl_status "${cl_admin[$i]}"; echo; done | /usr/bin/python3 -c '
import json, sys
r = {}
for line in sys.stdin:
    try:
        s = json.loads(line)
    except ValueError:
        continue
    r[s["self"]] = {m["name"]: [m.get("link_msgs_out", 0), m.get("link_bytes_out", 0)]
                    for m in s["members"] if m["name"] != s["self"]}
print(json.dumps(r))' >>"$1" 2>/dev/null || echo "{}" >>"$1"
}

# held R ROUND: the correctness step on a cluster whose runs are over: $CHECK_COUNT
# receipted SENDs (one at a time, from A) to each of the first $CHECK_QUEUES B-owned queues
# (nobody subscribed), heraldctl's view once every one of them is in sync (5 s at most),
# then all of them consumed from C (client-individual acks): lost, duplicated?
held() {
	local rr=$1 r=$2 f=$out/check.r$1.$2 line
	timeout 60 /usr/bin/python3 "$top/bench/repl_check.py" hold "${cl_stomp[0]}" "$out/owned-by-b.txt" \
		"$CHECK_QUEUES" "$CHECK_COUNT" >"$f.hold" 2>>"$out/stderr.txt" || cl_log "round $r R=$rr: hold exit $?"
	for _ in $(seq 25); do
		line=$(queues /dev/stdout)
		case $line in *"in_sync yes=$CHECK_QUEUES "*) break ;; esac
		sleep 0.2
	done
	echo "$line" >"$f.queues"
	timeout 60 /usr/bin/python3 "$top/bench/repl_check.py" drain "${cl_stomp[2]}" "$out/owned-by-b.txt" \
		"$CHECK_QUEUES" "$CHECK_COUNT" 20 >"$f.drain" 2>>"$out/stderr.txt" || cl_log "round $r R=$rr: drain exit $?"
	echo "repl_check.py hold <A's STOMP port> owned-by-b.txt $CHECK_QUEUES $CHECK_COUNT; heraldctl queues --json;" \
		"repl_check.py drain <C's STOMP port> owned-by-b.txt $CHECK_QUEUES $CHECK_COUNT 20  # --queue-replicas $rr" >>"$cl_cmds"
}

run_one() {	# run_one R MODE ROUND
	local rr=$1 m=$2 r=$3 json margs=()
	case $m in
	sat) margs=(--window "$WINDOW") ;;
	paced) margs=(--rate "$RATE") ;;
	esac
	json="$out/$m.r$rr.$r.json"
	local cmd=("$HB" queues --pub-url "$(cl_url 0)" --sub-url "$(cl_url 2)"
		--queue-file "$out/owned-by-b.txt" --ack "$ACK" ${RECEIPTS:+--receipts}
		--producers "$PRODUCERS" --body "$BODY" "${margs[@]}" --settle "$SETTLE"
		--warmup "$WARMUP" --duration "$DURATION" --threads "$THREADS"
		--server-pid "$(cl_pids_csv)" --label "r$rr-$m" --json "$json" --quiet)
	profile "$rr" "$m" "$r"
	links "$out/$m.r$rr.$r.links"
	cl_bench_run "--queue-replicas $rr" "round $r R=$rr $m" queues "$out/$m.r$rr.$r.queues" "${cmd[@]}"
	links "$out/$m.r$rr.$r.links"
	[ -z "$perf_pid" ] || wait "$perf_pid" || true
}

# profile R MODE ROUND: with PERF=1, perf record -g of every node over the measured window of
# the saturating runs (perf's own cost inflates the CPU figures of those runs: profile only)
perf_pid=
profile() {
	perf_pid=
	[ -n "${PERF:-}" ] && [ "$2" = sat ] || return 0
	echo "perf record -F $PERF_FREQ -g -p $(cl_pids_csv) -o perf.r$1.$3.data -- sleep $((DURATION - 1))" >>"$cl_cmds"
	( sleep "$(awk "BEGIN { print 1.5 + $SETTLE + $WARMUP }")"
	  perf record -q -F "$PERF_FREQ" -g -p "$(cl_pids_csv)" -o "$out/perf.r$1.$3.data" \
		-- sleep $((DURATION - 1)) >/dev/null 2>>"$out/stderr.txt" ) &
	perf_pid=$!
}

# cluster_round R ROUND: a fresh cluster with --queue-replicas R, every mode, stopped
cluster_round() {
	local rr=$1 r=$2 m
	cl_names=() cl_pid=() cl_stomp=() cl_admin=() cl_gossip=()
	cl_node_args=(--queue-replicas "$rr")
	echo "# round $r: --queue-replicas $rr" >>"$cl_cmds"
	cl_start_or_exit 3 "$out"
	for m in $MODES; do
		cl_alive || break
		run_one "$rr" "$m" "$r"
	done
	cl_alive && held "$rr" "$r"
	cl_alive || true
	cl_cleanup
	mkdir -p "$out/r$rr.$r"
	cp "$cl_work"/*.log "$out/r$rr.$r/" 2>/dev/null || true
}

summarize() {
	CHECK_COUNT=$CHECK_COUNT /usr/bin/python3 - "$out" "$RATE" "$WINDOW" "$ACK" <<'EOF'
import glob, json, os, re, statistics, sys
out, rate, window, ack = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = {}
for f in glob.glob(os.path.join(out, "*.json")):
    m, rr, r = os.path.basename(f)[:-5].split(".")
    try:
        runs[(m, int(rr[1:]), int(r))] = json.load(open(f))
    except ValueError:
        pass
rounds = sorted({k[2] for k in runs})
def get(m, rr, r, *path):
    j = runs.get((m, rr, r))
    for p in path:
        j = j.get(p) if isinstance(j, dict) else None
    return j
def med(xs):
    return statistics.median(xs) if xs else None
def fmt(xs, spec):
    xs = [x for x in xs if x is not None]
    return (f"{med(xs):{spec}}" + (f" ({', '.join(format(x, spec) for x in xs)})" if len(xs) > 1 else "")) if xs else "—"
def ratio(m, *path):
    return [get(m, 2, r, *path) / get(m, 1, r, *path) for r in rounds
            if get(m, 2, r, *path) and get(m, 1, r, *path)]
receipted = any("receipt_latency_us" in j for j in runs.values())
L = ["# Queue replication: R=2 against R=1", "",
     f"Producers on A, 1,000 queues owned by B, consumers on C (ack {ack}"
     f"{', every SEND receipted' if receipted else ''}); one fresh cluster "
     "per R per round, R order alternating. Figures: median (each round).", ""]
if any(k[0] == "sat" for k in runs):
    L += [f"Saturating (window {window}): server CPU-seconds of all three nodes per million messages.", "",
          "| R | CPU-s per million | messages/s |", "|---|---:|---:|"]
    for rr in (1, 2):
        cpu = [get("sat", rr, r, "cpu_s_per_million") for r in rounds]
        rt = [get("sat", rr, r, "del_rate") / 1e3 for r in rounds if get("sat", rr, r, "del_rate")]
        L.append(f"| {rr} | {fmt(cpu, '.2f')} | {fmt(rt, '.0f')} k |")
    L += ["", f"**R2/R1 CPU per message (per-round ratios): {fmt(ratio('sat', 'cpu_s_per_million'), '.2f')}×** (goal ≤ 1.5×)", ""]
if receipted:
    L += ["RECEIPT latency (SEND's scheduled time to its RECEIPT), ms:", "",
          "| mode | R | p50 | p99 | p99.9 | max |", "|---|---:|---:|---:|---:|---:|"]
    for m in ("sat", "paced"):
        for rr in (1, 2):
            q = {k: [get(m, rr, r, "receipt_latency_us", k) / 1e3 for r in rounds
                     if get(m, rr, r, "receipt_latency_us", k) is not None] for k in ("p50", "p99", "p999", "max")}
            if q["p50"]:
                L.append(f"| {m} | {rr} | {fmt(q['p50'], '.2f')} | {fmt(q['p99'], '.2f')} | "
                         f"{fmt(q['p999'], '.1f')} | {fmt(q['max'], '.1f')} |")
    L += [""]
if any(k[0] == "paced" for k in runs):
    L += [f"Paced at {rate:.0f} messages/s: latency from the scheduled send time, ms; CPU-s per million at that rate.", "",
          "| R | p50 | p99 | p99.9 | max | CPU-s/M |", "|---|---:|---:|---:|---:|---:|"]
    for rr in (1, 2):
        q = {k: [get("paced", rr, r, "latency_us", k) / 1e3 for r in rounds if get("paced", rr, r, "latency_us", k) is not None]
             for k in ("p50", "p99", "p999", "max")}
        cpu = [get("paced", rr, r, "cpu_s_per_million") for r in rounds]
        L.append(f"| {rr} | {fmt(q['p50'], '.2f')} | {fmt(q['p99'], '.2f')} | {fmt(q['p999'], '.1f')} | "
                 f"{fmt(q['max'], '.1f')} | {fmt(cpu, '.1f')} |")
    L += ["", f"R2/R1 at {rate:.0f}/s (per-round ratios): CPU {fmt(ratio('paced', 'cpu_s_per_million'), '.2f')}×, "
          f"p50 {fmt(ratio('paced', 'latency_us', 'p50'), '.2f')}×, p99 {fmt(ratio('paced', 'latency_us', 'p99'), '.2f')}×", ""]
def link_rates(k):
    p = os.path.join(out, f"{k[0]}.r{k[1]}.{k[2]}.links")
    try:
        a, b = [json.loads(x) for x in open(p).read().split("\n")[:2]]
    except (OSError, ValueError):
        return {}
    n = runs[k]["published"] or 1
    return {f"{x[-1]}→{y[-1]}": ((b[x][y][0] - a[x][y][0]) / n, (b[x][y][1] - a[x][y][1]) / n)
            for x in sorted(b) for y in sorted(b[x]) if x in a and y in a[x]}
if any(k[0] == "sat" for k in runs):
    L += ["Link frames and bytes per published message (saturating runs, whole run), median over rounds:", "",
          "| link | R=1 frames | R=1 bytes | R=2 frames | R=2 bytes |", "|---|---:|---:|---:|---:|"]
    per = {rr: [link_rates(("sat", rr, r)) for r in rounds if ("sat", rr, r) in runs] for rr in (1, 2)}
    names = sorted({l for rr in per for d in per[rr] for l in d})
    for l in names + ["all"]:
        cells = []
        for rr in (1, 2):
            for i in (0, 1):
                xs = [sum(v[i] for v in d.values()) if l == "all" else d[l][i] for d in per[rr] if d and (l == "all" or l in d)]
                cells.append(f"{med(xs):.2f}" if xs else "—")
        L.append(f"| {l} | " + " | ".join(cells) + " |")
    L += [""]
L += ["Queues seen by `heraldctl queues --json` (queues /queue/q-*: owners, backups, in_sync) "
      "while each run published:", "",
      "| mode | R | round | while publishing |", "|---|---:|---:|---|"]
bad = []
def text(name):
    p = os.path.join(out, name)
    return open(p).read().strip().replace("\n", "; ") if os.path.exists(p) else "—"
for k in sorted(runs):
    L.append(f"| {k[0]} | {k[1]} | {k[2]} | {text(f'{k[0]}.r{k[1]}.{k[2]}.queues')} |")
    j = runs[k]
    if receipted and j.get("receipts") != j["published"]:
        bad.append(f"{k}: {j.get('receipts')} RECEIPTs for {j['published']} SENDs")
    if j["lost"] or j["duplicates"] or j["errors"] or j["aborted"] or j["order_violations"]:
        bad.append(f"{k}: lost {j['lost']}, duplicates {j['duplicates']}, errors {j['errors']}, "
                   f"order {j['order_violations']}, aborted {j['aborted']} {j['first_error']}")
checks = sorted({tuple(int(x) for x in re.match(r"check\.r(\d+)\.(\d+)\.hold$", os.path.basename(f)).groups())
                 for f in glob.glob(os.path.join(out, "check.r*.*.hold"))}, key=lambda t: (t[1], t[0]))
if checks:
    L += ["", "Held messages, after the runs (receipted SENDs one at a time from A to queues nobody "
          "consumes, heraldctl once in sync, then consumed from C with client-individual acks):", "",
          "| R | round | receipted / sent | receipt round trip p50 / p99 / max, ms | heraldctl, held | "
          "received / expected, missing, duplicates |", "|---:|---:|---|---|---|---|"]
    for rr, r in checks:
        try:
            h = json.loads(text(f"check.r{rr}.{r}.hold"))
            d = json.loads(text(f"check.r{rr}.{r}.drain"))
        except ValueError:
            bad.append(f"check R={rr} round {r}: unreadable")
            continue
        q = text(f"check.r{rr}.{r}.queues")
        rt = h["receipt_ms"]
        L.append(f"| {rr} | {r} | {h['receipted']} / {h['sent']} | {rt['p50']} / {rt['p99']} / {rt['max']} | {q} | "
                 f"{d['received']} / {d['expected']}, {d['missing']}, {d['duplicates']} |")
        if h["errors"] or d["missing"] or d["duplicates"] or d["unexpected"]:
            bad.append(f"check R={rr} round {r}: {h['errors']} SEND errors ({h['first_error']}), "
                       f"{d['missing']} missing, {d['duplicates']} duplicates, {d['unexpected']} unexpected")
        n = h["sent"] // max(1, int(os.environ.get("CHECK_COUNT", "20")))
        if rr == 2 and (f"nbackups 1={n} " not in q or f"in_sync yes={n} " not in q):
            bad.append(f"check R=2 round {r}: not every held queue had one backup in sync: {q}")
warn = []
for log in sorted(glob.glob(os.path.join(out, "r*.*", "*.log"))):
    for line in open(log, errors="replace"):
        if re.search(r"\b(warn|warning|error|err|crit)\b", line, re.I):
            warn.append(f"{os.path.relpath(log, out)}: {line.strip()}")
L += [""] + (["**Runs with problems:**", ""] + [f"- {x}" for x in bad] if bad else
             ["No run lost, duplicated or reordered a message, or saw an error; every held R=2 "
              "queue had one backup, in sync, and gave back every message once."])
L += [""] + ([f"**Node log lines at warn or worse ({len(warn)}):**", ""] + [f"- {x}" for x in warn[:30]]
             if warn else ["No node logged a warning or an error."])
open(os.path.join(out, "summary.md"), "w").write("\n".join(L) + "\n")
print("\n".join(L))
EOF
}

main() {
	local r rr order
	[ -n "${NO_BUILD:-}" ] || cl_build herald herald-bench herald-queue-pick heraldctl
	mkdir -p "$out"
	{
		echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		cl_commit_line
		echo "kernel: $(uname -r); cpus: $(nproc)"
		echo "herald: $HERALD_BIN, --shards $SHARDS per node, 3 nodes, --queue-replicas in ($REPLICAS); herald-bench --threads $THREADS"
		echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	} >"$out/machine.txt"
	"$PICK" --nodes hb-a,hb-b,hb-c --owner hb-b --count "$USERS" >"$out/owned-by-b.txt"
	echo "herald-queue-pick --nodes hb-a,hb-b,hb-c --owner hb-b --count $USERS > owned-by-b.txt" >>"$cl_cmds"
	for r in $(seq "$ROUNDS"); do
		order=$REPLICAS
		[ $((r % 2)) = 0 ] && order=$(echo "$REPLICAS" | tr ' ' '\n' | tac | tr '\n' ' ')
		for rr in $order; do
			if [ $((SECONDS - t_start)) -gt "$BUDGET" ]; then
				cl_log "budget of $BUDGET s spent: stopping before round $r R=$rr"
				break 2
			fi
			cluster_round "$rr" "$r"
		done
	done
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
	summarize
	cl_log "results in ${out#"$top"/}"
}

main "$@"
