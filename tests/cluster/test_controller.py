"""
tests/cluster/test_controller.py - the view agreed through C-Raft (cluster/controller.h,
docs/replication.md): real nodes on 127.0.0.1 agree on one view, a killed member leaves it,
a killed leader is replaced, a restarted process comes back as a new member, a hung one is
taken out once gossip declares it dead, and the Raft port refuses whoever cannot prove
the cluster key.
"""

import os
import signal
import socket
import time

from clusterlib import controller, start_mesh, status, wait_view

ABC = ("a", "b", "c")


def test_three_nodes_agree_on_one_view(cluster):
    nodes = start_mesh(cluster, [(n, 1) for n in ABC])
    docs, _ = wait_view(nodes, ABC)
    leader = next(iter(docs.values()))["leader"]
    roles = sorted(d["role"] for d in docs.values())
    assert roles == ["follower", "follower", "leader"], docs
    assert docs[leader]["role"] == "leader"
    assert all(d["voters"] == 3 for d in docs.values()), docs
    cluster.check_alive()


def test_killed_follower_leaves_the_view(cluster):
    nodes = start_mesh(cluster, [(n, 1) for n in ABC])
    docs, _ = wait_view(nodes, ABC)
    leader = docs["a"]["leader"]
    epoch = docs["a"]["epoch"]
    victim = next(n for n in ABC if n != leader)
    cluster.kill9(victim)
    rest = [cluster.nodes[n] for n in ABC if n in cluster.nodes]
    docs, took = wait_view(rest, [n.name for n in rest])
    print("%s out of the view %.2fs after kill -9" % (victim, took))
    assert all(d["epoch"] > epoch for d in docs.values())
    # the group shrinks too: two voters, so the next failure is survivable only after a
    # new member joins
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and \
            any(controller(n)["voters"] != 2 for n in rest):
        time.sleep(0.05)
    assert all(controller(n)["voters"] == 2 for n in rest)
    cluster.check_alive()


def test_killed_leader_is_replaced(cluster):
    nodes = start_mesh(cluster, [(n, 1) for n in ABC])
    docs, _ = wait_view(nodes, ABC)
    leader = docs["a"]["leader"]
    cluster.kill9(leader)
    rest = [cluster.nodes[n] for n in ABC if n in cluster.nodes]
    docs, took = wait_view(rest, [n.name for n in rest])
    print("leader %s replaced and out of the view %.2fs after kill -9" % (leader, took))
    assert next(iter(docs.values()))["leader"] != leader
    cluster.check_alive()


def test_restarted_process_is_a_new_member(cluster):
    nodes = start_mesh(cluster, [(n, 1) for n in ABC])
    docs, _ = wait_view(nodes, ABC)
    victim = next(n for n in ABC if n != docs["a"]["leader"])
    cluster.kill9(victim)
    rest = [cluster.nodes[n] for n in ABC if n in cluster.nodes]
    wait_view(rest, [n.name for n in rest])
    epoch = controller(rest[0])["epoch"]
    back = cluster.start(victim, join=rest[0].gossip)
    docs, took = wait_view(rest + [back], ABC, timeout=15)
    print("%s back in the view %.2fs after its restart" % (victim, took))
    assert docs[victim]["epoch"] > epoch
    assert all(d["voters"] == 3 for d in docs.values()), docs
    cluster.check_alive()


def test_hung_member_is_taken_out_and_comes_back(cluster):
    nodes = start_mesh(cluster, [(n, 1) for n in ABC])
    docs, _ = wait_view(nodes, ABC)
    victim = next(n for n in ABC if n != docs["a"]["leader"])
    pid = cluster.nodes[victim].proc.pid
    rest = [cluster.nodes[n] for n in ABC if n != victim]
    os.kill(pid, signal.SIGSTOP)
    try:
        _, took = wait_view(rest, [n.name for n in rest], timeout=20)
        print("hung %s out of the view %.2fs after SIGSTOP" % (victim, took))
    finally:
        os.kill(pid, signal.SIGCONT)
    # the same process, resumed: gossip calls it alive again and the leader adds it back
    docs, took = wait_view(list(cluster.nodes.values()), ABC, timeout=20)
    print("%s back %.2fs after SIGCONT" % (victim, took))
    cluster.check_alive()


def test_raft_port_refuses_strangers(cluster):
    nodes = start_mesh(cluster, [(n, 1) for n in ABC])
    docs, _ = wait_view(nodes, ABC)
    port = nodes[0].ports["raft"]
    # garbage, then a well-formed HELLO that cannot prove the key: both closed by the node
    for payload in (b"GET / HTTP/1.0\r\n\r\n" + b"x" * 200,
                    b"HRFT\x01\x09\x00\x00" + (7).to_bytes(8, "big") + b"n" * 16
                    + b"127.0.0.1:1".ljust(96, b"\0") + b"p" * 32):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(payload)
            s.settimeout(5)
            got = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except ConnectionResetError:
                pass
            # a stranger may see our HELLO, never our proof
            assert len(got) <= 128, got
    assert "raft connection from" in nodes[0].log() and "refused" in nodes[0].log()
    # the view is untouched
    again, _ = wait_view(nodes, ABC)
    assert again["a"]["epoch"] == docs["a"]["epoch"]
    assert status(nodes[0])["members"]
    cluster.check_alive()
