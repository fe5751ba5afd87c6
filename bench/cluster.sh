#!/usr/bin/env bash
# bench/cluster.sh - a two-node Herald cluster (node links) and a two-node nats-server
# cluster (routes) measured side by side by herald-bench on this machine. See
# bench/README.md, "Clusters". Run by hand (under 4 minutes), or as compare.sh's `cluster`
# case:
#
#   bash bench/cluster.sh                  # 5 rounds, Herald and NATS, ~3.5 min
#   ROUNDS=1 DURATION=2 bash bench/cluster.sh
#   ROUNDS=3 WINDOWS="5000 100000" bash bench/cluster.sh
#   TARGETS=nats bash bench/cluster.sh     # one side only
#   TARGETS="herald herald-tls" bash bench/cluster.sh   # node links plain vs --route-tls
#
# Fan-out of 100-byte messages from one publisher on node A to $SUBS subscribers:
#   a  subscribers on A (one node does the work; B is up and idle)
#   b  subscribers on B (every message crosses the link once)
#   c  subscribers split over A and B, round-robin
# Figure: server CPU-seconds of both nodes together (utime + stime from /proc, summed by
# herald-bench over --server-pid A,B) per million deliveries; reported as b/a and c/a for
# each server, medians of per-round ratios (a round runs a, b, c against Herald and NATS
# within seconds, so each ratio's runs share the box's noise). For Herald it also reads
# node A's link counters (GET /cluster/status: link_msgs_out, link_bytes_out, ... for B)
# around every run, and twice while case a is publishing: a topic no remote node wants
# must put nothing on the link.
#
# herald-tls is a second Herald pair (hbt-a, hbt-b) whose links run --route-tls with a
# throwaway EC P-256 certificate (openssl command line) that is also their --tls-ca, so the
# links are mutual TLS; its runs are reported beside herald's, with herald-tls/herald per
# case (medians of per-round ratios). Each pair idles while the other is measured.
#
# Installs Debian's nats-server when missing; builds herald and herald-bench into $BUILD
# (configured only when it has no CMakeCache.txt). Everything listens on 127.0.0.1 on ports
# the kernel picks; every wait is bounded; runs stop starting after $BUDGET seconds; only
# the PIDs started here are stopped (TERM, then KILL) on exit. Results under $OUT
# (bench/results/cluster-<UTC time>/): one JSON per run, link snapshots, commands.txt,
# summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-4}
WARMUP=${WARMUP:-1}
SETTLE=${SETTLE:-1}	# after set-up: remote interest must reach A before publishing
SUBS=${SUBS:-100}
BODY=${BODY:-100}
WINDOWS=${WINDOWS:-100000}	# deliveries in flight, one set of runs each (README: why not 5,000)
SHARDS=${SHARDS:-2}
THREADS=${THREADS:-2}
TARGETS=${TARGETS:-"herald nats"}
CASES=${CASES:-"a b c"}
BUDGET=${BUDGET:-240}	# seconds after which no further run starts (script < 5 min)
# shellcheck source=bench/cluster_lib.sh
. "$top/bench/cluster_lib.sh"
cl_setup cluster
NATS_BIN=${NATS_BIN:-nats-server}

pids=()		# the nats-servers started here (the Herald nodes are cl_pid)
herald_a='' herald_b='' nats_a='' nats_b='' hbt_a='' hbt_b=''
herald_why=	# why the Herald side did not run, if it did not
tls_why=	# ... and the herald-tls side

cl_extra_cleanup() {
	for p in "${pids[@]}"; do cl_stop_pid "$p"; done
}

install_missing() {
	command -v "$NATS_BIN" >/dev/null && return 0
	cl_log "installing nats-server"
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server >&2 ||
		{ $sudo apt-get update -q >&2 && $sudo env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q nats-server >&2; }
}

build() {
	[ -f "$BUILD/CMakeCache.txt" ] ||
		cmake -S "$top" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_TESTS=OFF >/dev/null
	cmake --build "$BUILD" -j2 --target herald-bench >&2
	cmake --build "$BUILD" -j2 --target herald >&2 || cl_log "herald did not build; using $HERALD_BIN if present"
}

# ---- Herald: two nodes joined by gossip, linked on their route ports ----

# link_of ADMIN_PORT: "state msgs_out bytes_out msgs_in bytes_in" of its link to the other node
link_of() {
	cl_status "$1" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
for m in s["members"]:
    if m["name"] != s["self"]:
        print(m.get("link", "none"), m.get("link_msgs_out", 0), m.get("link_bytes_out", 0),
              m.get("link_msgs_in", 0), m.get("link_bytes_in", 0))
        break
else:
    print("alone 0 0 0 0")' 2>/dev/null || echo "unreachable 0 0 0 0"
}

# start_herald_cluster: hb-a and hb-b with their link up (cluster_lib.sh), or herald_why
start_herald_cluster() {
	cl_start_cluster 2 hb || { herald_why=$cl_why; return 1; }
	herald_a=${cl_pid[0]} herald_a_stomp=${cl_stomp[0]} herald_a_admin=${cl_admin[0]}
	herald_b=${cl_pid[1]} herald_b_stomp=${cl_stomp[1]}
}

# start_herald_tls_cluster: hbt-a and hbt-b, links over mutual TLS (--route-tls), or tls_why
start_herald_tls_cluster() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=herald-bench-node -keyout "$cl_work/node.key" -out "$cl_work/node.pem" \
		2>/dev/null || { tls_why="openssl could not make a certificate"; return 1; }
	cl_node_args=(--route-tls --tls-cert "$cl_work/node.pem" --tls-key "$cl_work/node.key"
		--tls-ca "$cl_work/node.pem" --tls-port 0 --wss-port 0)
	cl_start_cluster 2 hbt || { tls_why=$cl_why; cl_node_args=(); return 1; }
	cl_node_args=()
	local n=${#cl_pid[@]}
	hbt_a=${cl_pid[$((n - 2))]} hbt_a_stomp=${cl_stomp[$((n - 2))]}
	hbt_b=${cl_pid[$((n - 1))]} hbt_b_stomp=${cl_stomp[$((n - 1))]}
	grep -q "route: link to hbt-b up (dialled, TLSv1" "$cl_work/hbt-a.log" ||
		{ tls_why="hbt-a's link is not TLS"; return 1; }
}

# ---- NATS: two nats-servers joined by a route ----

start_nats() {	# start_nats NAME [ROUTE_PORT]: sets n_pid n_port n_route
	local name=$1 route=${2:-}
	local args=(-a 127.0.0.1 -p -1 -n "$name" --cluster_name herald-bench
		-cluster nats://127.0.0.1:-1)
	[ -n "$route" ] && args+=(-routes "nats://127.0.0.1:$route")
	echo "$NATS_BIN ${args[*]}" >>"$cl_cmds"
	"$NATS_BIN" "${args[@]}" >"$cl_work/$name.log" 2>&1 &
	n_pid=$!
	pids+=("$n_pid")
	n_port=$(cl_wait_port "$cl_work/$name.log" "client connections on [0-9.]+:[0-9]+" "$n_pid") &&
		n_route=$(cl_wait_port "$cl_work/$name.log" "route connections on [0-9.]+:[0-9]+" "$n_pid")
}

start_nats_cluster() {
	start_nats nats-a || return 1
	nats_a=$n_pid nats_a_port=$n_port
	start_nats nats-b "$n_route" || return 1
	nats_b=$n_pid nats_b_port=$n_port
	for _ in $(seq 100); do
		grep -q "Route connection created" "$cl_work/nats-a.log" &&
			grep -q "Route connection created" "$cl_work/nats-b.log" && break
		sleep 0.1
	done
	grep -q "Route connection created" "$cl_work/nats-a.log" || { cl_log "NATS route did not come up"; return 1; }
	cl_log "nats A pid $nats_a port $nats_a_port; B pid $nats_b port $nats_b_port"
}

# ---- runs ----

# urls TARGET CASE: "PUB_URL SUB_URLS"
urls() {
	local a b
	case $1 in
	herald) a=stomp://127.0.0.1:$herald_a_stomp b=stomp://127.0.0.1:$herald_b_stomp ;;
	herald-tls) a=stomp://127.0.0.1:$hbt_a_stomp b=stomp://127.0.0.1:$hbt_b_stomp ;;
	nats) a=nats://127.0.0.1:$nats_a_port b=nats://127.0.0.1:$nats_b_port ;;
	esac
	case $2 in
	a) echo "$a $a" ;;
	b) echo "$a $b" ;;
	c) echo "$a $a,$b" ;;
	esac
}

server_pids() {
	case $1 in
	herald) echo "$herald_a,$herald_b" ;;
	herald-tls) echo "$hbt_a,$hbt_b" ;;
	nats) echo "$nats_a,$nats_b" ;;
	esac
}

# snap FILE: A's link counters, appended with a label (Herald only)
snap() { echo "$2 $(link_of "$herald_a_admin")" >>"$1"; }

run_one() {	# run_one TARGET CASE ROUND WINDOW
	local t=$1 c=$2 r=$3 w=$4
	local u json links bg=
	read -r -a u <<<"$(urls "$t" "$c")"
	json="$out/$c@w$w.$t.$r.json"
	local cmd=("$HB" fanout --pub-url "${u[0]}" --sub-url "${u[1]}" --subscribers "$SUBS"
		--body "$BODY" --window "$w" --settle "$SETTLE" --warmup "$WARMUP"
		--duration "$DURATION" --threads "$THREADS" --server-pid "$(server_pids "$t")"
		--label "$t-$c" --json "$json" --quiet)
	echo "${cmd[*]}  # load $(cut -d' ' -f1 /proc/loadavg)" | sed "s|$HB|herald-bench|" >>"$cl_cmds"
	cl_log "round $r window $w case $c $t"
	if [ "$t" = herald ]; then
		links="$out/$c@w$w.$t.$r.links"
		snap "$links" before
		if [ "$c" = a ]; then	# two samples while publishing, well after set-up
			(
				sleep "$(awk "BEGIN { print $SETTLE + $WARMUP + 0.3 }")"
				snap "$links" publishing-1
				sleep "$(awk "BEGIN { print $DURATION * 0.6 }")"
				snap "$links" publishing-2
			) &
			bg=$!
		fi
	fi
	timeout 90 "${cmd[@]}" >>"$out/tables.txt" 2>>"$out/stderr.txt" || cl_log "round $r case $c $t: exit $?"
	[ -n "$bg" ] && wait "$bg"
	# the route thread publishes its counters every 100 ms: let the last ones land
	[ "$t" = herald ] && sleep 0.3 && snap "$links" after
	return 0
}

summarize() {
	/usr/bin/python3 - "$out" "$herald_why" "$DURATION" <<'EOF'
import glob, json, os, statistics, sys
out, herald_why, gap = sys.argv[1], sys.argv[2], 0.6 * float(sys.argv[3])
runs = {}	# (target, case, window, round) -> result
for f in glob.glob(os.path.join(out, "*.json")):
    cw, t, r = os.path.basename(f)[:-5].split(".")
    c, w = cw.split("@w")
    try:
        runs[(t, c, int(w), int(r))] = json.load(open(f))
    except ValueError:
        pass
def links(t, c, w, r):
    d = {}
    p = os.path.join(out, f"{c}@w{w}.{t}.{r}.links")
    for line in open(p) if os.path.exists(p) else []:
        k, state, *v = line.split()
        d[k] = [int(x) for x in v]
    return d
def cpu_of(t, c, w, r):
    j = runs.get((t, c, w, r))
    return (j.get("cpu_s_per_million") or None) if j and j["measured_delivered"] else None
def med(xs):
    return statistics.median(xs) if xs else None
def listed(xs, spec):
    return f" ({', '.join(format(x, spec) for x in xs)})" if len(xs) > 1 else ""
targets = [t for t in ("herald", "herald-tls", "nats") if any(k[0] == t for k in runs)]
windows = sorted({k[2] for k in runs})
rounds = sorted({k[3] for k in runs})
names = {"a": "a: pub + subs on A", "b": "b: pub on A, subs on B", "c": "c: pub on A, subs 50/50"}
goal = {"b": "≤ 1.05×", "c": "≤ 1.25×"}	# Herald's goals (shared/DISTRIBUTED.md)
lines = ["# Cluster fan-out: Herald node links and NATS routes, side by side", ""]
if herald_why:
    lines += [f"**The Herald side did not run:** {herald_why}", ""]
bad = []
for w in windows:
    lines += [f"## {w} deliveries in flight", "",
              "Server CPU-seconds of both nodes per million deliveries: median (each round); "
              "ratios are medians of per-round ratios.", "",
              "| case | " + " | ".join(f"{t} CPU-s/M | {t} deliveries/s" for t in targets) + " |",
              "|---|" + "---:|---:|" * len(targets)]
    for c in "abc":
        row = [names[c]]
        for t in targets:
            cpu = [cpu_of(t, c, w, r) for r in rounds if cpu_of(t, c, w, r)]
            rate = [runs[(t, c, w, r)]["del_rate"] / 1e6 for r in rounds if (t, c, w, r) in runs]
            row += [f"{med(cpu):.3f}{listed(cpu, '.3f')}" if cpu else "—",
                    f"{med(rate):.2f} M" if rate else "—"]
            for r in rounds:
                j = runs.get((t, c, w, r))
                if j and (j["lost"] or j["duplicates"] or j["errors"] or j["aborted"] or j["order_violations"]):
                    bad.append(f"{t} {c} window {w} round {r}: lost {j['lost']}, duplicates {j['duplicates']}, errors {j['errors']}, "
                               f"order {j['order_violations']}, aborted {j['aborted']} {j['first_error']}")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| ratio | " + " | ".join(targets) + " | Herald goal |",
              "|---|" + "---:|" * (len(targets) + 1)]
    for c in "bc":
        row = [f"{c}/a"]
        for t in targets:
            rs = [cpu_of(t, c, w, r) / cpu_of(t, "a", w, r) for r in rounds
                  if cpu_of(t, c, w, r) and cpu_of(t, "a", w, r)]
            row.append(f"{med(rs):.2f}×{listed(rs, '.2f')}" if rs else "—")
        lines.append("| " + " | ".join(row + [goal[c]]) + " |")
    if "herald" in targets and "herald-tls" in targets:
        lines += ["", "Node links over TLS (--route-tls, mutual) against plain, server CPU per "
                  "delivery of both nodes:", "", "| case | herald-tls / herald |", "|---|---:|"]
        for c in "abc":
            rs = [cpu_of("herald-tls", c, w, r) / cpu_of("herald", c, w, r) for r in rounds
                  if cpu_of("herald-tls", c, w, r) and cpu_of("herald", c, w, r)]
            lines.append(f"| {names[c]} | {med(rs):.2f}×{listed(rs, '.2f')} |" if rs else
                         f"| {names[c]} | — |")
    if "herald" not in targets:
        lines.append("")
        continue
    lines += ["", "Herald: node A's link to B over each run, messages / bytes; for case a also "
              f"between two samples {gap:g} s apart while A was publishing:", "",
              "| case | round | published | link A→B | link B→A | A→B / B→A while publishing |",
              "|---|---:|---:|---:|---:|---:|"]
    for c in "abc":
        for r in rounds:
            d, j = links("herald", c, w, r), runs.get(("herald", c, w, r))
            if "before" not in d or "after" not in d or not j:
                continue
            b, a = d["before"], d["after"]
            during = "—"
            if "publishing-1" in d and "publishing-2" in d:
                p1, p2 = d["publishing-1"], d["publishing-2"]
                during = f"{p2[0]-p1[0]} / {p2[1]-p1[1]} B, {p2[2]-p1[2]} / {p2[3]-p1[3]} B"
            lines.append(f"| {c} | {r} | {j['published']} | {a[0]-b[0]} / {a[1]-b[1]} B | "
                         f"{a[2]-b[2]} / {a[3]-b[3]} B | {during} |")
    lines.append("")
if bad:
    lines += ["**Runs with problems:**", ""] + [f"- {x}" for x in bad]
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
}

main() {
	install_missing
	[ -n "${NO_BUILD:-}" ] || build
	mkdir -p "$out"
	{
		echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		cl_commit_line
		echo "kernel: $(uname -r); cpus: $(nproc)"
		echo "nats-server: $("$NATS_BIN" --version 2>&1 | head -1)"
		echo "herald: $HERALD_BIN, --shards $SHARDS per node; herald-bench --threads $THREADS"
		echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	} >"$out/machine.txt"
	local targets=()
	for t in $TARGETS; do
		case $t in
		herald)
			if [ ! -x "$HERALD_BIN" ]; then
				herald_why="no herald binary at $HERALD_BIN"
			elif start_herald_cluster; then
				targets+=(herald)
				continue
			fi
			cl_log "Herald side skipped: $herald_why"
			;;
		herald-tls)
			if [ -x "$HERALD_BIN" ] && start_herald_tls_cluster; then
				targets+=(herald-tls)
				continue
			fi
			cl_log "Herald TLS side skipped: ${tls_why:-no herald binary at $HERALD_BIN}"
			;;
		nats) start_nats_cluster && targets+=(nats) ;;
		esac
	done
	[ ${#targets[@]} -gt 0 ] || { cl_log "nothing to run"; exit 1; }
	for r in $(seq "$ROUNDS"); do
		for w in $WINDOWS; do
			for c in $CASES; do
				for t in "${targets[@]}"; do
					if [ $((SECONDS - t_start)) -gt "$BUDGET" ]; then
						cl_log "budget of $BUDGET s spent: stopping before round $r case $c $t"
						break 4
					fi
					run_one "$t" "$c" "$r" "$w"
				done
			done
		done
	done
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
	for p in herald_a herald_b hbt_a hbt_b nats_a nats_b; do	# did every server survive?
		[ -n "${!p}" ] && ! kill -0 "${!p}" 2>/dev/null && cl_log "$p (pid ${!p}) died during the runs"
	done
	cp "$cl_work"/*.log "$out/" 2>/dev/null || true
	summarize
	cl_log "results in ${out#"$top"/}"
}

main "$@"
