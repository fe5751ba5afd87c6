"""
tests/cluster/test_membership.py - cluster membership with real `herald` processes on
127.0.0.1 (issue 6): five nodes form a cluster and `heraldctl cluster status` shows them
alive; kill -9 one and the rest mark it dead within the bound; restart it and it is alive
again with a higher incarnation; SIGTERM one and it is `left`, never dead; a wrong gossip
key or cluster name keeps a node out; heraldctl exits non-zero for an unreachable node.

Every port is 0 (the node picks one and logs `listening proto=<p> addr=127.0.0.1:<port>`),
the protocol period is 200 ms to keep the run short, every wait has a deadline, and only
the processes started here are stopped, by PID.

Run: HERALD_BIN=build/core/herald HERALDCTL_BIN=build/tools/heraldctl \
     /usr/bin/python3 -m pytest -q tests/cluster/test_membership.py
"""

import json
import os
import re
import subprocess
import time

import pytest

from clusterlib import HERALD, HERALDCTL, PERIOD_MS, member_of, wait_for, wait_ports

N = 5

# Detection bound at N = 5 (cluster/swim.c, suspicion.h): one period to probe the crashed
# node, the suspicion timeout at its maximum (6 x 4 periods, used when no other node
# confirms in time), and 5 periods for the verdict to reach everyone.
DEAD_BOUND_S = (1 + 6 * 4 + 5) * PERIOD_MS / 1000.0

pytestmark = pytest.mark.skipif(not HERALD or not HERALDCTL,
                                reason="HERALD_BIN and HERALDCTL_BIN must name the binaries")


def ctl(*args, timeout=10):
    return subprocess.run([HERALDCTL] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def status(node):
    """What this file checks: heraldctl's view (not GET /cluster/status directly)."""
    r = ctl("cluster", "status", "--node", node.admin, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def states(node):
    return {m["name"]: m["state"] for m in status(node)["members"]}


def member(node, name):
    return member_of(status(node), name)


def start_five(cluster, extra=()):
    seed = cluster.start("n1", extra=extra)
    for i in range(2, N + 1):
        cluster.start("n%d" % i, join=seed.gossip, extra=extra)
    names = {"n%d" % i for i in range(1, N + 1)}
    for node in list(cluster.nodes.values()):
        wait_for(lambda: {n for n, s in states(node).items() if s == "alive"} == names,
                 10, "%s to see 5 alive" % node.name)
    return seed


def test_five_nodes_form_a_cluster_and_heraldctl_shows_them(cluster):
    start_five(cluster)
    for node in cluster.nodes.values():
        r = ctl("cluster", "status", "--node", node.admin)
        assert r.returncode == 0, r.stderr
        assert "5 alive, 0 suspect, 0 dead" in r.stdout, r.stdout
        assert r.stdout.splitlines()[0].split()[:3] == ["NAME", "ADDRESS", "STATE"]
        doc = status(node)
        assert doc["self"] == node.name
        for m in doc["members"]:
            for key in ("name", "address", "state", "incarnation", "last_seen_ms",
                        "connections", "subscriptions", "msgs_per_s"):
                assert key in m, (key, m)
            assert m["address"].startswith("127.0.0.1:")


def test_kill9_is_dead_within_the_bound_and_a_restart_is_alive_again(cluster):
    seed = start_five(cluster)
    before = member(seed, "n5")["incarnation"]
    cluster.kill9("n5")
    killed = time.monotonic()
    for node in cluster.nodes.values():
        wait_for(lambda: states(node)["n5"] == "dead", DEAD_BOUND_S + 5,
                 "%s to mark n5 dead" % node.name)
    took = time.monotonic() - killed
    print("n5 dead on every live node %.2fs after kill -9 (bound %.2fs)" % (took, DEAD_BOUND_S))
    assert took <= DEAD_BOUND_S, "dead after %.2fs, bound %.2fs" % (took, DEAD_BOUND_S)

    cluster.start("n5", join=seed.gossip)
    for node in cluster.nodes.values():
        wait_for(lambda: (member(node, "n5")["state"] == "alive"
                          and member(node, "n5")["incarnation"] > before),
                 10, "%s to see n5 alive at an incarnation above %d" % (node.name, before))


def test_sigterm_leaves_and_is_never_counted_dead(cluster):
    start_five(cluster)
    node, rc = cluster.terminate("n4", timeout=10.0)
    assert rc == 0
    assert "cluster: left (announced)" in node.log()
    for node in cluster.nodes.values():
        wait_for(lambda: states(node)["n4"] == "left", 5, "%s to mark n4 left" % node.name)
    # Stays left: no one's suspicion timer turns a departed node into a failure.
    deadline = time.monotonic() + DEAD_BOUND_S
    while time.monotonic() < deadline:
        for node in cluster.nodes.values():
            assert states(node)["n4"] == "left"
        time.sleep(0.2)
    r = ctl("cluster", "status", "--node", cluster.nodes["n1"].admin)
    assert "4 alive, 0 suspect, 0 dead, 1 left" in r.stdout, r.stdout


def test_shared_key_admits_and_a_wrong_key_keeps_out(cluster, tmp_path):
    good = tmp_path / "good.key"
    bad = tmp_path / "bad.key"
    good.write_text("correct horse battery staple 0123456789\n")
    bad.write_text("another secret altogether 9876543210\n")
    os.chmod(good, 0o600)
    os.chmod(bad, 0o600)
    a = cluster.start("a", extra=("--gossip-key", str(good)))
    b = cluster.start("b", join=a.gossip, extra=("--gossip-key", str(good)))
    intruder = cluster.start("x", join=a.gossip, extra=("--gossip-key", str(bad)))
    plain = cluster.start("p", join=a.gossip)
    wait_for(lambda: states(a).get("b") == "alive" and states(b).get("a") == "alive", 10,
             "a and b to see each other")
    time.sleep(10 * PERIOD_MS / 1000.0)
    for node in (a, b):
        assert set(states(node)) == {"a", "b"}, states(node)
    assert set(states(intruder)) == {"x"}
    assert set(states(plain)) == {"p"}
    assert "bad mac" in a.log_path.read_text(errors="replace")


# A node with no key and no --gossip-bind or --node-name: the defaults under test.
KEYLESS = ["--bind", "127.0.0.1", "--stomp-port", "0", "--ws-port", "0", "--shards", "1",
           "--gossip-port", "0", "--admin-port", "0"]


@pytest.mark.parametrize("flags, where", [
    (("--gossip-bind", "0.0.0.0"), "gossip bound to 0.0.0.0"),
    (("--join", "192.0.2.1:7946"), "joining 192.0.2.1:7946"),
], ids=["gossip-on-every-interface", "join-another-machine"])
def test_without_a_key_cluster_traffic_stays_on_loopback(tmp_path, flags, where):
    """As RabbitMQ with its Erlang cookie: a keyless node refuses to gossip beyond loopback
    (checked before any socket is bound or any packet sent), saying how to make a key."""
    log = tmp_path / "refused.log"
    with open(log, "wb") as f:
        rc = subprocess.run([HERALD] + KEYLESS + list(flags), stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                            timeout=10).returncode
    text = log.read_text(errors="replace")
    assert rc == 1, text
    assert where in text and "heraldctl cluster keygen" in text and "--gossip-key" in text, text
    assert "listening proto=gossip" not in text, text


def test_a_keyless_node_gossips_on_loopback_by_default(cluster, tmp_path):
    """No --gossip-bind, no key: gossip binds 127.0.0.1, whatever the client bind is."""
    log = tmp_path / "default.log"
    proc = cluster.spawn(KEYLESS, log)
    ports = wait_ports(proc, log, ("gossip",))
    assert ports["gossip"], ports
    assert re.search(r"listening proto=gossip addr=127\.0\.0\.1:", log.read_text()), \
        log.read_text()


def test_a_keygen_key_admits_nodes(cluster, tmp_path):
    key = tmp_path / "cluster.key"
    out = subprocess.run([HERALDCTL, "cluster", "keygen"], capture_output=True, timeout=10)
    assert out.returncode == 0 and len(out.stdout.strip()) == 44, out
    key.write_bytes(out.stdout)
    os.chmod(key, 0o600)
    a = cluster.start("a", extra=("--gossip-key", str(key)))
    b = cluster.start("b", join=a.gossip, extra=("--gossip-key", str(key)))
    wait_for(lambda: states(a).get("b") == "alive" and states(b).get("a") == "alive", 10,
             "a and b to see each other")


def test_other_cluster_name_is_refused(cluster):
    a = cluster.start("a")
    other = cluster.start("o", join=a.gossip, extra=("--cluster-name", "elsewhere"))
    time.sleep(10 * PERIOD_MS / 1000.0)
    assert set(states(a)) == {"a"}
    assert set(states(other)) == {"o"}
    assert "other cluster" in a.log_path.read_text(errors="replace")


def test_heraldctl_fails_for_an_unreachable_node(cluster):
    a = cluster.start("a")
    port = a.ports["admin"]
    cluster.terminate("a", timeout=10.0)
    r = ctl("cluster", "status", "--node", "127.0.0.1:%d" % port, "--timeout", "2000")
    assert r.returncode == 1
    assert "cannot connect" in r.stderr
    assert ctl("cluster").returncode == 2
    for bad in ("nohost", "127.0.0.1:", ":15672", "127.0.0.1:99999", "h:12x"):
        r = ctl("cluster", "status", "--node", bad)
        assert r.returncode == 2, (bad, r.returncode, r.stderr)	# usage, not unreachable


def test_a_second_node_with_a_taken_name_is_reported(cluster):
    """Two live nodes with one --node-name: the one known first is kept; the clash is
    logged and counted (gossip.name_conflicts) so the operator can find it."""
    a = cluster.start("a")
    cluster.start("b", join=a.gossip)
    wait_for(lambda: states(a).get("b") == "alive", 10, "b alive at a")
    cluster.start("b", join=a.gossip)	# an impostor: same name, other ports
    wait_for(lambda: status(a)["gossip"]["name_conflicts"] > 0, 10, "a name conflict counted")
    wait_for(lambda: "claims the name of a live member" in a.log_path.read_text(errors="replace"),
             10, "the conflict logged")
    assert states(a)["b"] == "alive"
