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
# And the data path over node links (issue 12) and its replication (issue 13): a topic
# subscriber on n4 gets what n1 publishes before the partition and again after the heal
# (links re-dialled, interest exchanged anew). Neither half of a 2 | 2 split is a majority,
# so the view cannot change: each side receipts SENDs to a queue only if it holds both the
# queue's owner and its backup, and refuses (ERROR) or never answers the rest; after the
# heal every receipted message is there. Then a 3 | 1 split: the majority takes the queues
# of the node cut off (its backups hold every receipted message) and keeps taking SENDs,
# the node cut off delivers nothing (its lease ran out) and receipts nothing; after the heal
# every receipted message is there once.
# Needs root and iproute2; exits 77 (CTest: skipped) without them. Every wait is bounded;
# cleanup kills only the PIDs started here and deletes only the namespaces made here.
set -euo pipefail

herald=${1:?usage: partition_netns.sh <herald> <heraldctl> <herald-queue-pick>}
ctl=${2:?usage: partition_netns.sh <herald> <heraldctl> <herald-queue-pick>}
pick=${3:?usage: partition_netns.sh <herald> <heraldctl> <herald-queue-pick>}
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
	# clients connect from inside the namespace to 127.0.0.1:61613 (the loopback guest)
	ip netns exec "$tag-n$i" "$herald" --bind 0.0.0.0 --stomp-port 61613 --ws-port 0 \
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

view_is() {	# view_is <i> <python test on v, the member names of node i's view>
	ip netns exec "$tag-n$1" "$ctl" --timeout 2000 cluster status --json 2> /dev/null |
		/usr/bin/python3 -c 'import json, sys
c = json.load(sys.stdin)["controller"]
v = sorted(m["name"] for m in c["view"] if m["state"] == "active")
sys.exit(0 if c["leader"] and '"$2"' else 1)'
}
view_of_four() { view_is "$1" 'v == ["n1", "n2", "n3", "n4"]'; }
view_without_n4() { view_is "$1" 'v == ["n1", "n2", "n3"]'; }

links_up() {	# links_up <i>: node i has its link to every other member up
	ip netns exec "$tag-n$1" "$ctl" --timeout 2000 cluster status --json 2> /dev/null |
		/usr/bin/python3 -c 'import json, sys
d = json.load(sys.stdin)
others = [m for m in d["members"] if m["name"] != d["self"]]
sys.exit(0 if len(others) == 3 and all(m.get("link") == "up" for m in others) else 1)'
}

stomp() {	# stomp <i> <netns_stomp.py args...>: a client inside node i's namespace
	local i=$1
	shift
	ip netns exec "$tag-n$i" /usr/bin/python3 "$(dirname "$0")/netns_stomp.py" "$@"
}

lines() {	# lines <file> <pattern>: how many lines of file match
	grep -c -- "$2" "$1" 2> /dev/null || true
}

has_lines() {	# has_lines <file> <pattern> <n>
	[ "$(lines "$1" "$2")" -ge "$3" ]
}

all_alive="n1=alive n2=alive n3=alive n4=alive"
start 1
sleep 0.5
for i in 2 3 4; do start "$i" --join 10.99.0.1:7946; done
for i in 1 2 3 4; do wait_for 15 "n$i sees four alive" sees "$i" "$all_alive"; done
for i in 1 2 3 4; do wait_for 15 "n$i has its three links up" links_up "$i"; done

# a topic subscriber on n4 for the whole test; n1 publishes before the partition
stomp 4 sub 61613 /topic/part "$work/topic.out" 120 &
pids+=($!)
wait_for 10 "the subscriber on n4 is ready" has_lines "$work/topic.out" READY 1
[ "$(stomp 1 send 61613 /topic/part 10 before)" = 10 ] || { echo "partition_netns: FAIL: sends on n1"; exit 1; }
wait_for 10 "n4 got n1's 10 topic messages" has_lines "$work/topic.out" "^before-" 10

t0=$SECONDS
in_hub ip link set "h${tag}3" master br1
in_hub ip link set "h${tag}4" master br1
for i in 1 2; do wait_for 30 "n$i marks n3, n4 dead" sees "$i" "n1=alive n2=alive n3=dead n4=dead"; done
for i in 3 4; do wait_for 30 "n$i marks n1, n2 dead" sees "$i" "n1=dead n2=dead n3=alive n4=alive"; done
echo "partition_netns: partition seen on both sides after $((SECONDS - t0))s"

# no majority on either side: what one side receipts, it holds twice (owner and backup)
: > "$work/split.receipted"
for side in 1 3; do
	got=$(stomp $side send 61613 /queue/split 30 "side$side" "$work/split.receipted" 5)
	echo "partition_netns: ok: n$side got $got of 30 SENDs to /queue/split receipted"
done

t0=$SECONDS
in_hub ip link set "h${tag}3" master br0
in_hub ip link set "h${tag}4" master br0
for i in 1 2 3 4; do wait_for 60 "n$i sees four alive after the heal" sees "$i" "$all_alive"; done
echo "partition_netns: healed after $((SECONDS - t0))s"
for i in 1 2 3 4; do wait_for 30 "n$i has its links up again" links_up "$i"; done

stomp 2 drain 61613 /queue/split 6 > "$work/split.out"
missing=$(comm -23 <(sort -u "$work/split.receipted") <(sort -u "$work/split.out") | wc -l)
if [ "$missing" != 0 ]; then
	echo "partition_netns: FAIL: /queue/split lost $missing of $(wc -l < "$work/split.receipted") receipted messages"
	exit 1
fi
echo "partition_netns: ok: /queue/split after the heal: all $(wc -l < "$work/split.receipted") receipted messages there ($(wc -l < "$work/split.out") deliveries)"
[ "$(stomp 1 send 61613 /topic/part 10 after)" = 10 ] || { echo "partition_netns: FAIL: sends on n1 after the heal"; exit 1; }
wait_for 15 "n4 gets n1's topic messages again after the heal" has_lines "$work/topic.out" "^after-" 10

# 3 | 1: a queue n4 owns, 20 receipted messages in it, then n4 cut off
maj=$("$pick" --nodes n1,n2,n3,n4 --owner n4 --count 1 --prefix /queue/maj-)
: > "$work/maj.receipted"
[ "$(stomp 1 send 61613 "$maj" 20 before "$work/maj.receipted")" = 20 ] ||
	{ echo "partition_netns: FAIL: SENDs to $maj before the split"; exit 1; }
for i in 1 2 3 4; do wait_for 15 "n$i agrees on the view of four" view_of_four "$i"; done
t0=$SECONDS
in_hub ip link set "h${tag}4" master br1
for i in 1 2 3; do wait_for 30 "n$i's view without n4" view_without_n4 "$i"; done
echo "partition_netns: majority took over after $((SECONDS - t0))s"
# the node cut off: a consumer there gets nothing, its SENDs get no RECEIPT
stomp 4 drain 61613 "$maj" 4 > "$work/maj.minority" &
minority_drain=$!
pids+=($minority_drain)
got4=$(stomp 4 send 61613 "$maj" 10 minority "$work/maj.receipted" 4)
got1=$(stomp 1 send 61613 "$maj" 20 majority "$work/maj.receipted" 10)
wait "$minority_drain" || true
echo "partition_netns: ok: cut off, n4 receipted $got4 of 10; the majority $got1 of 20"
[ "$got4" = 0 ] || { echo "partition_netns: FAIL: n4, cut off, receipted $got4 SENDs"; exit 1; }
[ "$got1" = 20 ] || { echo "partition_netns: FAIL: the majority receipted $got1 of 20"; exit 1; }
if [ -s "$work/maj.minority" ]; then
	echo "partition_netns: FAIL: n4, cut off, delivered $(wc -l < "$work/maj.minority") messages"
	exit 1
fi
echo "partition_netns: ok: n4, cut off, delivered nothing"
in_hub ip link set "h${tag}4" master br0
for i in 1 2 3 4; do wait_for 60 "n$i agrees on the view of four again" view_of_four "$i"; done
stomp 2 drain 61613 "$maj" 6 > "$work/maj.out"
missing=$(comm -23 <(sort -u "$work/maj.receipted") <(sort -u "$work/maj.out") | wc -l)
dups=$(($(wc -l < "$work/maj.out") - $(sort -u "$work/maj.out" | wc -l)))
if [ "$missing" != 0 ]; then
	echo "partition_netns: FAIL: $maj lost $missing of $(wc -l < "$work/maj.receipted") receipted messages"
	exit 1
fi
echo "partition_netns: ok: $maj after the heal: all $(wc -l < "$work/maj.receipted") receipted messages there, $dups delivered twice"
echo "partition_netns: PASS"
