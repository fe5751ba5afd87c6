#!/usr/bin/env bash
# ad-hoc: receipted saturating runs on queues whose backup is A vs C
set -euo pipefail
top=/work/wt-rbench; BUILD=$top/build-bench; HERALD_BIN=$BUILD/core/herald; HB=$BUILD/bench/herald-bench
SHARDS=2; out=/tmp/rexp/out; mkdir -p $out; cl_work=$(mktemp -d); cl_cmds=$out/cmds; cl_tag=rexp
. $top/bench/cluster_lib.sh
trap 'cl_cleanup' EXIT
cl_node_args=(--queue-replicas 2)
cl_start_cluster 3 hb
$BUILD/bench/herald-queue-pick --nodes hb-a,hb-b,hb-c --owner hb-b --count 1000 > $out/b.txt
# subscribe all briefly so the queues exist with backups, then read backups
$HB queues --pub-url $(cl_url 0) --sub-url $(cl_url 2) --queue-file $out/b.txt --rate 2000 --duration 3 --warmup 0 --quiet >/dev/null &
sleep 2.5
$BUILD/tools/heraldctl --node 127.0.0.1:${cl_admin[0]} queues --json > $out/q.json
wait $!
/usr/bin/python3 -c "
import json
qs=json.load(open('$out/q.json'))['queues']
for n in ('hb-a','hb-c'):
    open('$out/backup-'+n+'.txt','w').write(''.join(q['name']+'\n' for q in qs if q['backups']==[n] and q['name'].startswith('/queue/q-'))[:])
"
wc -l $out/backup-*.txt
for f in hb-a hb-c hb-a hb-c; do for rc in "" --receipts; do
  $HB queues --pub-url $(cl_url 0) --sub-url $(cl_url 2) --queue-file $out/backup-$f.txt $rc --window 5000 --duration 3 --warmup 1 --quiet --server-pid $(cl_pids_csv) --json $out/sat-$f.json | grep -E "receipt|checks|delivered "
  echo "^ backup $f $rc"; done
done
