#!/usr/bin/env bash
# tests/cluster/partition_netns.sh <herald> <heraldctl> - a real network partition (issue 6).
#
# Four herald nodes, each in its own network namespace, joined by veth pairs to bridges in
# a fifth "hub" namespace (nothing is added to the host's own network). The test:
#   1. all four join one cluster (10.99.0.1-4, gossip period 200 ms);
#   2. moving n3's and n4's links to a second bridge splits {n1,n2} from {n3,n4}: each side
#      marks the other dead;
#   3. moving them back heals it: every node sees all four alive again, with the
#      incarnations raised by the refutations, through gossip to the recently dead and
#      push-pull with dead members (swim.h).
# Needs root and iproute2; exits 77 (CTest: skipped) without them. Every wait is bounded;
# cleanup kills only the PIDs started here and deletes only the namespaces made here.
set -euo pipefail

herald=${1:?usage: partition_netns.sh <herald> <heraldctl>}
ctl=${2:?usage: partition_netns.sh <herald> <heraldctl>}
period_ms=200
tag=hd$$
hub=$tag-hub
work=$(mktemp -d "/tmp/herald-partition.XXXXXX")
pids=()

skip() {
	echo "partition_netns: skipped: $*"
	exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root"
command -v ip > /dev/null || skip "needs iproute2"
ip netns add "$tag-probe" 2> /dev/null || skip "cannot create network namespaces"
ip netns del "$tag-probe"

cleanup() {
	for pid in "${pids[@]}"; do
		kill -9 "$pid" 2> /dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2> /dev/null || true
	done
	for i in 1 2 3 4; do
		ip netns del "$tag-n$i" 2> /dev/null || true
	done
	ip netns del "$hub" 2> /dev/null || true
	echo "partition_netns: logs in $work"
}
trap cleanup EXIT

in_hub() { ip netns exec "$hub" "$@"; }

ip netns add "$hub"
in_hub ip link add br0 type bridge
in_hub ip link add br1 type bridge
in_hub ip link set br0 up
in_hub ip link set br1 up
for i in 1 2 3 4; do
	ns=$tag-n$i
	ip netns add "$ns"
	ip link add "v$tag$i" type veth peer name "h$tag$i"
	ip link set "v$tag$i" netns "$ns"
	ip link set "h$tag$i" netns "$hub"
	ip netns exec "$ns" ip link set lo up
	ip netns exec "$ns" ip addr add "10.99.0.$i/24" dev "v$tag$i"
	ip netns exec "$ns" ip link set "v$tag$i" up
	in_hub ip link set "h$tag$i" master br0
	in_hub ip link set "h$tag$i" up
done

# gossip between machines (here: namespaces) needs the shared cluster key
"$ctl" cluster keygen > "$work/cluster.key"
chmod 600 "$work/cluster.key"

# start <i> [join]: herald in namespace i; its admin endpoint is 127.0.0.1:15672 there
start() {
	local i=$1
	shift
	ip netns exec "$tag-n$i" "$herald" --bind "10.99.0.$i" --stomp-port 0 --ws-port 0 \
		--shards 1 --node-name "n$i" --gossip-bind "10.99.0.$i" --gossip-port 7946 \
		--gossip-key "$work/cluster.key" \
		--admin-bind 127.0.0.1 --admin-port 15672 --gossip-interval $period_ms "$@" \
		> "$work/n$i.log" 2>&1 &
	pids+=($!)
}

# states <i>: "n1=alive n2=dead ..." as node i sees the cluster
states() {
	ip netns exec "$tag-n$1" "$ctl" --timeout 2000 cluster status --json 2> /dev/null |
		/usr/bin/python3 -c 'import json, sys
d = json.load(sys.stdin)
print(" ".join("%s=%s" % (m["name"], m["state"]) for m in d["members"]))'
}

# wait_for <seconds> <what> <command...>: retry until the command succeeds
wait_for() {
	local secs=$1 what=$2
	shift 2
	local deadline=$((SECONDS + secs))
	while ! "$@" > /dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			echo "partition_netns: FAIL: $what within ${secs}s"
			for i in 1 2 3 4; do echo "  n$i sees: $(states "$i" || true)"; done
			exit 1
		fi
		sleep 0.2
	done
	echo "partition_netns: ok: $what"
}

sees() {	# sees <i> <expected states>
	[ "$(states "$1")" = "$2" ]
}

all_alive="n1=alive n2=alive n3=alive n4=alive"
start 1
sleep 0.5
for i in 2 3 4; do start "$i" --join 10.99.0.1:7946; done
for i in 1 2 3 4; do wait_for 15 "n$i sees four alive" sees "$i" "$all_alive"; done

t0=$SECONDS
in_hub ip link set "h${tag}3" master br1
in_hub ip link set "h${tag}4" master br1
for i in 1 2; do wait_for 30 "n$i marks n3, n4 dead" sees "$i" "n1=alive n2=alive n3=dead n4=dead"; done
for i in 3 4; do wait_for 30 "n$i marks n1, n2 dead" sees "$i" "n1=dead n2=dead n3=alive n4=alive"; done
echo "partition_netns: partition seen on both sides after $((SECONDS - t0))s"

t0=$SECONDS
in_hub ip link set "h${tag}3" master br0
in_hub ip link set "h${tag}4" master br0
for i in 1 2 3 4; do wait_for 60 "n$i sees four alive after the heal" sees "$i" "$all_alive"; done
echo "partition_netns: healed after $((SECONDS - t0))s"
echo "partition_netns: PASS"
