#!/usr/bin/env bash
# bench/compare.sh - Herald and RabbitMQ measured side by side on this machine, with the
# raw ceiling, by herald-bench. See bench/README.md. Run by hand (minutes, not CI):
#
#   bash bench/compare.sh                 # everything, 3 runs each, medians
#   QUICK=1 bash bench/compare.sh         # 1 run, short durations: check the set-up
#   CASES="fanout-100 latency" bash bench/compare.sh
#   CASES=cluster bash bench/compare.sh   # two-node Herald beside two-node NATS (cluster.sh)
#
# What it does: installs rabbitmq-server and gnuplot-nox from Debian when missing; builds
# herald and herald-bench into $BUILD; starts a private RabbitMQ node (bench/rabbitmq_node.sh:
# own node name, dirs and ports, STOMP on 127.0.0.1:61700, Web-STOMP on 127.0.0.1:15700),
# a Herald (--shards $SHARDS, ports picked by the kernel) and the raw-ceiling relay; runs
# each workload against each, alternating, $RUNS times; writes every result's JSON, the
# exact commands, a markdown summary (medians, Herald/RabbitMQ and Herald/raw ratios) and
# a latency-vs-load PNG under bench/results/<UTC time>/. The `cluster` case (not in the
# default set) hands over to bench/cluster.sh, results in <that dir>/cluster/. Every run is bounded by
# herald-bench's own timeouts and `timeout`; only the processes started here are stopped,
# by PID, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

QUICK=${QUICK:-0}
RUNS=${RUNS:-$([ "$QUICK" = 1 ] && echo 1 || echo 3)}
DURATION=${DURATION:-$([ "$QUICK" = 1 ] && echo 3 || echo 10)}
LAT_DURATION=${LAT_DURATION:-$([ "$QUICK" = 1 ] && echo 2 || echo 5)}
WARMUP=${WARMUP:-$([ "$QUICK" = 1 ] && echo 1 || echo 2)}
SHARDS=${SHARDS:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-19000}
CASES=${CASES:-"connections fanout-100 fanout-1000 fanout-100-ws queues-1000 queues-10000 queues-1000-ack latency"}
# latency: messages/s offered to one topic with 10 subscribers (deliveries/s = 10x)
LAT_RATES=${LAT_RATES:-"500 1000 2000 5000 10000 20000 50000"}
# saturating cases run at each window (deliveries in flight); each server is reported at
# the one that gives it the most deliveries per CPU-second (bench/README.md says why)
WINDOWS=${WINDOWS:-"5000 100000"}
BUILD=${BUILD:-$top/build-bench}
HERALD_BIN=${HERALD_BIN:-$BUILD/core/herald}
HB=$BUILD/bench/herald-bench
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${OUT:-$top/bench/results/$stamp}
work=$(mktemp -d /tmp/herald-compare.XXXXXX)

herald_pid=
raw_pid=
# shellcheck source=bench/rabbitmq_node.sh
source "$top/bench/rabbitmq_node.sh"

log() { echo "compare: $*" >&2; }

cleanup() {
	set +e
	[ -n "$herald_pid" ] && stop_pid "$herald_pid"
	[ -n "$raw_pid" ] && stop_pid "$raw_pid"
	rmq_stop
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 100); do
		kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null || true
}

install_missing() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" ||
		{ $sudo apt-get update -q && $sudo env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q "${missing[@]}"; }
}

build() {
	cmake -S "$top" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_TESTS=OFF >/dev/null
	cmake --build "$BUILD" -j2 --target herald-bench
	cmake --build "$BUILD" -j2 --target herald 2>/dev/null || true
	if [ ! -x "$HERALD_BIN" ]; then
		log "no herald binary at $HERALD_BIN (set HERALD_BIN)"
		exit 1
	fi
}

# port_of LOG PROTO: the port from "listening proto=PROTO addr=IP:PORT" (waits 10 s)
port_of() {
	for _ in $(seq 100); do
		local line
		line=$(grep -o "listening proto=$2 addr=[0-9.]*:[0-9]*" "$1" 2>/dev/null | head -1 || true)
		[ -n "$line" ] && { echo "${line##*:}"; return 0; }
		sleep 0.1
	done
	log "no 'listening proto=$2' in $1"
	return 1
}

start_herald() {
	[ -n "$herald_pid" ] && stop_pid "$herald_pid"
	"$HERALD_BIN" --bind 127.0.0.1 --stomp-port 0 --ws-port 0 --shards "$SHARDS" \
		--cluster false --log-level info >"$work/herald.log" 2>&1 &
	herald_pid=$!
	herald_stomp=$(port_of "$work/herald.log" stomp)
	herald_ws=$(port_of "$work/herald.log" ws)
	log "herald pid $herald_pid stomp $herald_stomp ws $herald_ws"
}

start_raw() {
	"$HB" raw-server --port 0 --threads "$SHARDS" >"$work/raw.log" 2>&1 &
	raw_pid=$!
	raw_stomp=$(port_of "$work/raw.log" stomp)
	log "raw ceiling pid $raw_pid port $raw_stomp"
}

start_rabbit() {
	rmq_stop
	rm -rf "$work/rmq"
	rmq_start "$work/rmq" >&2
}

# url_of TARGET ws|stomp
url_of() {
	case $1.$2 in
	herald.stomp) echo "stomp://127.0.0.1:$herald_stomp" ;;
	herald.ws) echo "ws://127.0.0.1:$herald_ws/ws" ;;
	rabbitmq.stomp) echo "stomp://127.0.0.1:$RMQ_STOMP_PORT" ;;
	rabbitmq.ws) echo "ws://127.0.0.1:$RMQ_WS_PORT/ws" ;;
	raw.stomp) echo "stomp://127.0.0.1:$raw_stomp" ;;
	esac
}

pid_of() {
	case $1 in
	herald) echo "$herald_pid" ;;
	rabbitmq) echo "$RMQ_PID" ;;
	raw) echo "$raw_pid" ;;
	esac
}

# args_of CASE RUN: the workload's herald-bench arguments (transport decided by the case,
# window by its "@w<N>" suffix)
args_of() {
	local run=$2
	local sat=(--duration "$DURATION" --warmup "$WARMUP" --threads "$THREADS")
	if [[ $1 == *@w* ]]; then
		sat+=(--window "${1##*@w}")
	fi
	case ${1%@w*} in
	connections) echo connections --connections "$CONNS" --hold 3 --queue-prefix "/queue/conn-r$run-" ;;
	fanout-100 | fanout-100-ws) echo fanout --subscribers 100 "${sat[@]}" ;;
	fanout-1000) echo fanout --subscribers 1000 "${sat[@]}" ;;
	queues-1000) echo queues --users 1000 --producers 4 "${sat[@]}" ;;
	queues-10000) echo queues --users 10000 --producers 4 "${sat[@]}" ;;
	queues-1000-ack) echo queues --users 1000 --producers 4 --ack client-individual "${sat[@]}" ;;
	latency-*) echo latency --subscribers 10 --rate "${1#latency-}" --duration "$LAT_DURATION" \
		--warmup 1 --threads "$THREADS" ;;
	esac
}

targets_of() {
	case ${1%@w*} in
	fanout-100 | fanout-1000 | queues-1000 | queues-10000 | latency-*) echo herald rabbitmq raw ;;
	*) echo herald rabbitmq ;;
	esac
}

run_one() {	# run_one CASE TARGET RUN
	local c=$1 t=$2 run=$3
	local transport=stomp
	[[ ${c%@w*} == *-ws ]] && transport=ws
	local url pid json
	url=$(url_of "$t" "$transport")
	pid=$(pid_of "$t")
	json="$out/$c.$t.$run.json"
	# shellcheck disable=SC2046
	local cmd=("$HB" $(args_of "$c" "$run") --url "$url" --server-pid "$pid" --label "$t" --json "$json" --quiet)
	echo "${cmd[*]}  # load $(cut -d' ' -f1 /proc/loadavg)" | sed "s|$HB|herald-bench|" >>"$out/commands.txt"
	log "$c $t run $run"
	timeout 300 "${cmd[@]}" >>"$out/tables.txt" 2>>"$out/stderr.txt" || log "$c $t run $run: exit $?"
}

# The cluster case: bench/cluster.sh with this script's build and settings.
run_cluster() {
	log "cluster: bench/cluster.sh"
	OUT="$out/cluster" BUILD="$BUILD" HERALD_BIN="$HERALD_BIN" HB="$HB" NO_BUILD=1 \
		ROUNDS="$RUNS" DURATION=$([ "$QUICK" = 1 ] && echo 2 || echo 4) THREADS="$THREADS" \
		SHARDS="$SHARDS" bash "$top/bench/cluster.sh" || log "cluster: exit $?"
}

main() {
	local cluster=0
	local rest=
	for c in $CASES; do
		if [ "$c" = cluster ]; then cluster=1; else rest+=" $c"; fi
	done
	CASES=$rest
	[ -n "$CASES" ] || { build; mkdir -p "$out"; run_cluster; return; }
	install_missing rabbitmq-server gnuplot-nox
	build
	mkdir -p "$out"
	{
		echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "commit: ${COMMIT:-$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
		echo "kernel: $(uname -r)"
		echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
		echo "memory: $(free -g | awk '/Mem:/{print $2}') GiB"
		echo "rabbitmq: $(dpkg-query -W -f='${Version}' rabbitmq-server), erlang $(dpkg-query -W -f='${Version}' erlang-base)"
		echo "herald: --shards $SHARDS; herald-bench --threads $THREADS"
		echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	} >"$out/machine.txt"
	start_raw
	local cases=()
	for c in $CASES; do
		if [ "$c" = latency ]; then
			for r in $LAT_RATES; do cases+=("latency-$r"); done
		elif [ "$c" = connections ]; then
			cases+=(connections)
		else
			for win in $WINDOWS; do cases+=("$c@w$win"); done
		fi
	done
	local fresh=0
	for c in "${cases[@]}"; do
		for run in $(seq "$RUNS"); do
			# connections: fresh servers, so RSS per connection is not hidden by memory
			# an earlier run freed; other cases keep the servers running
			if [ "$c" = connections ] || [ $fresh = 0 ]; then
				start_herald
				start_rabbit
				fresh=$([ "$c" = connections ] && echo 0 || echo 1)
			fi
			for t in $(targets_of "$c"); do
				run_one "$c" "$t" "$run"
			done
		done
	done
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
	/usr/bin/python3 "$top/bench/summarize.py" "$out"
	if command -v gnuplot >/dev/null && [ -s "$out/latency.dat" ]; then
		gnuplot -e "datafile='$out/latency.dat'; outfile='$out/latency.png'" "$top/bench/latency.gp"
	fi
	cat "$out/summary.md"
	[ "$cluster" = 1 ] && run_cluster
	log "results in ${out#"$top"/}"
}

main "$@"
