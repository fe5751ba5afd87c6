#!/bin/bash
# bench/ab.sh - A/B of two herald binaries, alternating, same workload (deliveries/s, server
# CPU-s per million, RSS per connection). Usage: BEFORE=path AFTER=path bench/ab.sh <herald-bench args>
B=${BENCH:-$(dirname "$0")/../build/bench/herald-bench}
run() { # bin label args...
  local bin=$1; shift; local label=$1; shift
  rm -f "${TMPDIR:-/tmp}/herald-ab.log"; $bin --bind 127.0.0.1 --stomp-port 0 --ws-port 0 --gossip-port 0 --admin-port 0 --shards 2 --cluster false > "${TMPDIR:-/tmp}/herald-ab.log" 2>&1 &
  local pid=$!
  for i in $(seq 100); do grep -q "proto=stomp" "${TMPDIR:-/tmp}/herald-ab.log" && break; sleep 0.05; done
  local port=$(grep -oP 'proto=stomp addr=[^:]+:\K\d+' "${TMPDIR:-/tmp}/herald-ab.log")
  timeout 120 $B "$@" --url stomp://127.0.0.1:$port --server-pid $pid --quiet --json - 2>/dev/null | /usr/bin/python3 -c "
import json,sys
d=json.load(sys.stdin); s=d.get('server',{}) ; r=d.get('results',d)
def g(*ks):
    for k in ks:
        for src in [d]+[v for v in d.values() if isinstance(v,dict)]:
            if isinstance(src,dict) and k in src: return src[k]
    return None
print('$label', {k:g(k) for k in ['del_rate','cpu_s_per_million','rss_per_conn','connect_rate']})
" || echo "$label parse failed"
  kill $pid; wait $pid 2>/dev/null
}
for i in ${AB_ROUNDS:-1 2}; do
  run "$BEFORE" before "$@"
  run "$AFTER" after "$@"
done
