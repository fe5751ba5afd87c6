#!/usr/bin/env bash
# bench/smoke.sh - seconds-long smoke of one herald-bench workload against a herald it
# starts itself on free loopback ports (CTest, label "bench"). Tool and server must work;
# the figures are printed, not asserted. Usage:
#   bench/smoke.sh HERALD_BIN HERALD_BENCH_BIN fanout|fanout-ws|fanout-tls|fanout-wss|queues|queues-receipts|queues-ws|latency|connections|raw
# (the -tls and -wss cases make a throwaway certificate with openssl and use herald-bench --tls)
# Only the processes started here are stopped, by PID.
set -euo pipefail
herald=$1
hb=$2
what=$3
dir=$(mktemp -d /tmp/herald-bench-smoke.XXXXXX)
server_pid=
raw_pid=

cleanup() {
	for p in $server_pid $raw_pid; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $server_pid $raw_pid; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT

# port_of LOG PROTO: waits up to 10 s for "listening proto=PROTO addr=IP:PORT"
port_of() {
	for _ in $(seq 100); do
		local line
		line=$(grep -o "listening proto=$2 addr=[0-9.]*:[0-9]*" "$1" 2>/dev/null | head -1 || true)
		if [ -n "$line" ]; then
			echo "${line##*:}"
			return 0
		fi
		sleep 0.1
	done
	echo "smoke: no 'listening proto=$2' line in $1:" >&2
	cat "$1" >&2
	return 1
}

tls_flags=()
case $what in
*-tls | *-wss)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
	tls_flags=(--tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" --tls-port 0 --wss-port 0)
	;;
esac
"$herald" --bind 127.0.0.1 --stomp-port 0 --ws-port 0 --shards 2 --cluster false \
	--log-level info "${tls_flags[@]}" >"$dir/herald.log" 2>&1 &
server_pid=$!
stomp=$(port_of "$dir/herald.log" stomp)
ws=$(port_of "$dir/herald.log" ws)
url=stomp://127.0.0.1:$stomp
short=(--warmup 0.2 --duration 1 --quiet --server-pid "$server_pid" --json "$dir/out.json")

case $what in
fanout) args=(fanout --url "$url" --subscribers 50) ;;
fanout-ws) args=(fanout --url "ws://127.0.0.1:$ws/ws" --subscribers 20) ;;
fanout-tls)
	args=(fanout --url "stomp://127.0.0.1:$(port_of "$dir/herald.log" stomps)" --subscribers 50
	      --tls --tls-ca "$dir/cert.pem") ;;
fanout-wss)
	args=(fanout --url "ws://127.0.0.1:$(port_of "$dir/herald.log" wss)/ws" --subscribers 20
	      --tls --tls-ca "$dir/cert.pem") ;;
queues) args=(queues --url "$url" --users 200 --ack client-individual) ;;
queues-receipts) args=(queues --url "$url" --users 100 --receipts --rate 2000) ;;
queues-ws) args=(queues --url "ws://127.0.0.1:$ws/ws" --users 50) ;;
latency) args=(latency --url "$url" --rate 2000 --subscribers 5) ;;
connections) args=(connections --url "$url" --connections 500 --hold 0.5) ;;
raw)
	"$hb" raw-server --port 0 >"$dir/raw.log" 2>&1 &
	raw_pid=$!
	rport=$(port_of "$dir/raw.log" stomp)
	args=(fanout --url "stomp://127.0.0.1:$rport" --subscribers 20)
	short=(--warmup 0.2 --duration 1 --quiet --server-pid "$raw_pid" --json "$dir/out.json")
	;;
*) echo "smoke: unknown case $what" >&2; exit 2 ;;
esac

timeout 60 "$hb" "${args[@]}" "${short[@]}"
grep -q '"aborted":0,' "$dir/out.json"
grep -q '"errors":0,' "$dir/out.json" || { echo "smoke: errors reported" >&2; exit 1; }
if [ "$what" = queues-receipts ]; then	# every SEND got its RECEIPT
	grep -qE '"published":([0-9]+),.*"receipts":\1,' "$dir/out.json" || { echo "smoke: receipts missing" >&2; exit 1; }
fi
kill -0 "$server_pid" || { echo "smoke: herald died" >&2; cat "$dir/herald.log" >&2; exit 1; }
echo "smoke $what: ok"
