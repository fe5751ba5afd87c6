# bench/cluster_lib.sh - start and stop an N-node Herald cluster on 127.0.0.1 for the
# cluster benchmarks (cluster.sh, queues_cluster.sh, scaleout.sh). Sourced, not run.
# Kernel-picked ports read from each node's log, --join to the first node's gossip port,
# a bounded wait for every link to be "up" in GET /cluster/status, for any number of nodes.
#
# Caller sets top and SHARDS and calls cl_setup NAME (HERALD_BIN, cl_work - scratch dir for
# logs -, cl_cmds - the file command lines are appended to -, cl_tag, out, the EXIT trap);
# optionally cl_node_args (an array of
# extra herald options for every node, e.g. (--queue-replicas 1)). After cl_start_cluster N:
# cl_names[i], cl_pid[i], cl_stomp[i], cl_admin[i] (i = 0..N-1); cl_why says why it
# failed. cl_cleanup stops only the PIDs started here (TERM, then KILL after 10 s).
# A second cl_start_cluster starts a second, separate cluster (its nodes join its own first
# node), appended to the same arrays; cl_node_args (an array, empty by default) is added
# to every node's command line started while it is set (cluster.sh: --route-tls;
# replication.sh: --queue-replicas).
# The run helpers at the end (cl_build, cl_rounds, cl_bench_run, ...) also read top, BUILD,
# ROUNDS, MODES, CASES, BUDGET, t_start, HB, SETTLE, WARMUP and out, as queues_cluster.sh,
# scaleout.sh and replication.sh set them.
#
# shellcheck shell=bash disable=SC2034,SC2154  # cl_work, cl_cmds in; cl_why, arrays out

cl_names=() cl_pid=() cl_stomp=() cl_admin=() cl_gossip=()
[ -n "${cl_node_args+set}" ] || cl_node_args=()
cl_why=

cl_log() { echo "${cl_tag:-cluster}: $*" >&2; }

# cl_setup NAME: what every cluster benchmark starts with - BUILD and the binaries in it
# (each overridable), the results dir out (bench/results/NAME-<UTC time>, or $OUT), a
# scratch cl_work, cl_cmds, cl_tag, t_start - and the EXIT trap that stops only what the
# run started: the caller's cl_extra_cleanup when it defines one, then cl_cleanup.
cl_setup() {
	BUILD=${BUILD:-$top/build-bench}
	HERALD_BIN=${HERALD_BIN:-$BUILD/core/herald}
	HB=${HB:-$BUILD/bench/herald-bench}
	PICK=${PICK:-$BUILD/bench/herald-queue-pick}
	CTL=${CTL:-$BUILD/tools/heraldctl}
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	out=${OUT:-$top/bench/results/$1-$stamp}
	cl_work=$(mktemp -d "/tmp/herald-$1.XXXXXX")
	cl_cmds=$out/commands.txt
	cl_tag=$1
	t_start=$SECONDS
	trap cl_exit EXIT
	trap 'exit 130' INT TERM
}

cl_exit() {
	set +e
	if declare -F cl_extra_cleanup >/dev/null; then cl_extra_cleanup; fi
	cl_cleanup
	rm -rf "$cl_work"
}

cl_stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 100); do
		kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

cl_cleanup() {
	local p
	for p in "${cl_pid[@]}"; do cl_stop_pid "$p"; done
	cl_pid=()
}

# cl_wait_port LOG REGEX PID: the port at the end of the first match of REGEX (10 s at most)
cl_wait_port() {
	local line
	for _ in $(seq 100); do
		line=$(grep -oE "$2" "$1" 2>/dev/null | head -1 || true)
		[ -n "$line" ] && { echo "${line##*:}"; return 0; }
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

cl_listening() { echo "listening proto=$1 addr=[0-9.]*:[0-9]+"; }

# cl_start_node NAME [JOIN_GOSSIP_PORT]: appends to cl_names/cl_pid/cl_stomp/cl_admin/cl_gossip
cl_start_node() {
	local name=$1 join=${2:-} pid stomp admin gossip
	local args=(--bind 127.0.0.1 --stomp-port 0 --ws-port 0 --shards "$SHARDS"
		--node-name "$name" --gossip-bind 127.0.0.1 --gossip-port 0 --route-port 0
		--admin-port 0 --log-level info)
	[ -n "$join" ] && args+=(--join "127.0.0.1:$join")
	args+=("${cl_node_args[@]}")
	echo "herald ${args[*]}" >>"$cl_cmds"
	"$HERALD_BIN" "${args[@]}" >"$cl_work/$name.log" 2>&1 &
	pid=$!
	cl_pid+=("$pid")
	if ! stomp=$(cl_wait_port "$cl_work/$name.log" "$(cl_listening stomp)" "$pid") ||
		! admin=$(cl_wait_port "$cl_work/$name.log" "$(cl_listening admin)" "$pid") ||
		! gossip=$(cl_wait_port "$cl_work/$name.log" "$(cl_listening gossip)" "$pid") ||
		! cl_wait_port "$cl_work/$name.log" "$(cl_listening route)" "$pid" >/dev/null; then
		cl_why="node $name did not start: $(grep -m1 -iE 'err|unknown|refus' "$cl_work/$name.log" || tail -1 "$cl_work/$name.log")"
		return 1
	fi
	cl_names+=("$name") cl_stomp+=("$stomp") cl_admin+=("$admin") cl_gossip+=("$gossip")
}

# cl_status ADMIN_PORT: the node's /cluster/status JSON (2 s at most)
cl_status() { curl -s --max-time 2 "http://127.0.0.1:$1/cluster/status"; }

# cl_links_up ADMIN_PORT N: how many other members this node sees with "link": "up"
cl_links_up() {
	cl_status "$1" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(1 for m in s["members"] if m["name"] != s["self"] and m.get("link") == "up"))' 2>/dev/null || echo 0
}

# cl_view_active ADMIN_PORT: how many members this node's controller view has, all active
# (docs/replication.md: a joining member owns nothing yet); "-" when it runs no controller
cl_view_active() {
	cl_status "$1" | /usr/bin/python3 -c '
import json, sys
c = json.load(sys.stdin).get("controller")
print("-" if c is None else
      sum(1 for m in c["view"] if m["state"] == "active") if all(m["state"] == "active" for m in c["view"]) else 0)' 2>/dev/null || echo 0
}

# cl_start_cluster N [PREFIX]: nodes PREFIX-a, PREFIX-b, ... joined to the first; waits
# (20 s at most) until every node has a link up to every other and, with the controller,
# every node's view has all N active (queues are placed by it: a benchmark that starts
# earlier measures queues moving)
cl_start_cluster() {
	local n=$1 prefix=${2:-hb} i a
	local first=${#cl_names[@]}	# a second cluster starts after the first one's nodes
	local letters=(a b c d e f g h i j k l m n o p)
	cl_start_node "$prefix-a" || return 1
	for ((i = 1; i < n; i++)); do
		cl_start_node "$prefix-${letters[$i]}" "${cl_gossip[$first]}" || return 1
	done
	for _ in $(seq 200); do
		local all=1
		for a in "${cl_admin[@]:$first}"; do
			[ "$(cl_links_up "$a")" = $((n - 1)) ] || { all=0; break; }
			case "$(cl_view_active "$a")" in -|"$n") ;; *) all=0; break ;; esac
		done
		[ $all = 1 ] && break
		sleep 0.1
	done
	for ((i = first; i < first + n; i++)); do
		a=$(cl_links_up "${cl_admin[$i]}")
		if [ "$a" != $((n - 1)) ]; then
			cl_why="${cl_names[$i]} has $a of $((n - 1)) links up after 20 s"
			return 1
		fi
	done
	cl_log "$n nodes up, full mesh: $(for ((i = first; i < first + n; i++)); do printf '%s pid %s stomp %s admin %s; ' "${cl_names[$i]}" "${cl_pid[$i]}" "${cl_stomp[$i]}" "${cl_admin[$i]}"; done)"
}

# cl_pids_csv: every node's PID, comma-separated (herald-bench --server-pid)
cl_pids_csv() { local IFS=,; echo "${cl_pid[*]}"; }

# cl_alive: false (and says which) if a node died
cl_alive() {
	local i ok=0
	for i in "${!cl_pid[@]}"; do
		kill -0 "${cl_pid[$i]}" 2>/dev/null || { cl_log "${cl_names[$i]} (pid ${cl_pid[$i]}) died"; ok=1; }
	done
	return $ok
}

# cl_url I: node I's STOMP URL
cl_url() { echo "stomp://127.0.0.1:${cl_stomp[$1]}"; }

# cl_commit_line: "commit: <COMMIT, or HEAD's short hash and whether the tree has changes>"
cl_commit_line() {
	if [ -n "${COMMIT:-}" ]; then
		echo "commit: $COMMIT"
	else
		echo "commit: $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$top" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
	fi
}

# cl_build TARGET...: a Release build into $BUILD (configured when it has no CMakeCache.txt)
cl_build() {
	[ -f "$BUILD/CMakeCache.txt" ] ||
		cmake -S "$top" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHERALD_TESTS=OFF >/dev/null
	cmake --build "$BUILD" -j2 --target "$@" >&2
}

# cl_start_or_exit N OUT: cl_start_cluster N hb, or the node logs copied to OUT and exit 1
cl_start_or_exit() {
	cl_start_cluster "$1" hb && return 0
	cl_log "cluster did not start: $cl_why"
	cp "$cl_work"/*.log "$2/" 2>/dev/null || true
	exit 1
}

# cl_rounds RUN: RUN CASE MODE ROUND for each of $ROUNDS rounds, $MODES, $CASES; none
# starts after $BUDGET s (from $t_start) or once a node has died
cl_rounds() {
	local r m c
	for r in $(seq "$ROUNDS"); do
		for m in $MODES; do
			for c in $CASES; do
				if [ $((SECONDS - t_start)) -gt "$BUDGET" ]; then
					cl_log "budget of $BUDGET s spent: stopping before round $r case $c $m"
					return 0
				fi
				cl_alive || return 0
				"$1" "$c" "$m" "$r"
			done
		done
	done
}

# cl_bench_run NOTE LOGNAME SAMPLER SAMPLE_FILE HERALD-BENCH-COMMAND...: appends the command
# (herald-bench and $out/ shortened, "# NOTE, load ...") to cl_cmds, runs it (120 s at
# most; tables to $out/tables.txt), and while it publishes - after set-up (a second at most
# here), settle and warm-up - runs SAMPLER SAMPLE_FILE once in the background
cl_bench_run() {
	local note=$1 what=$2 sampler=$3 sample=$4 bg
	shift 4
	echo "$*  # ${note:+$note, }load $(cut -d' ' -f1 /proc/loadavg)" | sed "s|$HB|herald-bench|; s|$out/||g" >>"$cl_cmds"
	cl_log "$what"
	( sleep "$(awk "BEGIN { print 1.5 + $SETTLE + $WARMUP }")"; "$sampler" "$sample" ) &
	bg=$!
	timeout 120 "$@" >>"$out/tables.txt" 2>>"$out/stderr.txt" || cl_log "$what: exit $?"
	wait "$bg" || true
}

# cl_finish OUT: the end's load average into OUT/machine.txt, a word on any node that died,
# the node logs copied to OUT
cl_finish() {
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$1/machine.txt"
	cl_alive || true
	cp "$cl_work"/*.log "$1/" 2>/dev/null || true
}
