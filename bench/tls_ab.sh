#!/bin/bash
# bench/tls_ab.sh - the same herald-bench workload over plain TCP and over TLS against ONE
# server (its STOMP port and its TLS port), alternating, side by side: deliveries/s and the
# server's CPU-seconds per million deliveries. Makes a throwaway EC P-256 certificate with
# the openssl command line. Usage: bench/tls_ab.sh <herald-bench workload and args>
#   HERALD=path (build/core/herald)  BENCH=path  SHARDS=2  AB_ROUNDS="1 2"  WS=1 (ws:// and wss://)
set -u
here=$(dirname "$0")
H=${HERALD:-$here/../build/core/herald}
B=${BENCH:-$here/../build/bench/herald-bench}
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null || exit 1
$H --bind 127.0.0.1 --stomp-port 0 --ws-port 0 --tls-port 0 --wss-port 0 --gossip-port 0 \
  --admin-port 0 --shards "${SHARDS:-2}" --cluster false \
  --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "proto=wss" "$dir/log" && break; sleep 0.05; done
port() { grep -oP "proto=$1 addr=[^:]+:\K\d+" "$dir/log"; }
if [ -n "${WS:-}" ]; then
  plain="ws://127.0.0.1:$(port ws)/ws"; tls="ws://127.0.0.1:$(port wss)/ws"
else
  plain="stomp://127.0.0.1:$(port stomp)"; tls="stomp://127.0.0.1:$(port stomps)"
fi
run() { # label url [--tls ...] then the workload
  local label=$1 url=$2; shift 2
  timeout 180 "$B" "$@" --url "$url" --server-pid $pid --quiet --json - 2>/dev/null |
    /usr/bin/python3 -c "
import json,sys
d=json.load(sys.stdin)
def g(k):
    for src in [d]+[v for v in d.values() if isinstance(v,dict)]:
        if k in src: return src[k]
print('$label', {k:g(k) for k in ['del_rate','cpu_s_per_million','lost','duplicated']})
" || echo "$label failed"
}
for _ in ${AB_ROUNDS:-1 2}; do
  run plain "$plain" "$@"
  run tls "$tls" "$@" --tls --tls-ca "$dir/cert.pem"
done
