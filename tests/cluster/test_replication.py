"""
tests/cluster/test_replication.py - queue replication and failover (docs/replication.md,
core/replica.c) with real `herald` processes on 127.0.0.1: each queue's owner streams its
messages to a backup (the next node in the queue's rendezvous order, --queue-replicas 2 by
default), a SEND's RECEIPT means both hold it, and when the owner dies the backup takes the
queue over with what it held.

The clients, the ledger (every receipted message must be received; copies of one attempt
beyond the first must say redelivered:true) and the placement arithmetic are
test_queues_cluster.py's.

Run: HERALD_BIN=build/core/herald /usr/bin/python3 -m pytest -q tests/cluster/test_replication.py
"""

import json
import os
import signal
import subprocess
import time

from clusterlib import HERALDCTL, controller, start_mesh, wait_for, wait_view
from test_queues_cluster import (WAIT, Conn, Consumer, Ledger, Producer, consume_held, fill_held,
                                 owner_of, queues_on, queues_owned_by, wait_all_received)

NAMES = ["ra", "rb", "rc"]
FAILOVER_S = 10.0	# kill -9 of an owner to its queues served again by a backup


def test_held_messages_survive_kill9_of_their_owner(cluster):
    nodes = start_mesh(cluster, [("ra", 2), ("rb", 1), ("rc", 1)])
    a, b, c = nodes
    queues = queues_owned_by("ra", NAMES, 4, "held")
    ledger = fill_held(b, queues, 50)
    assert len(ledger.receipted) == 200
    wait_for(lambda: all(queues_on(a).get(q) == 50 for q in queues), WAIT,
             "ra to hold 50 messages in each queue")
    cluster.kill9("ra")
    killed = time.monotonic()
    # each queue's backup takes it over; a consumer on the third node gets everything,
    # once, in the order sent
    consume_held(cluster, c, queues, ledger, 50, "held queues after kill -9 of their owner")
    print("200 held messages consumed %.1fs after kill -9 of their owner"
          % (time.monotonic() - killed))
    for q in queues:
        new_owner = owner_of(q, ["rb", "rc"])
        assert new_owner in ("rb", "rc")
    cluster.check_alive()


def test_owner_killed_under_load_loses_no_receipted_message(cluster):
    nodes = start_mesh(cluster, [("ra", 1), ("rb", 2), ("rc", 1)])
    a, b, c = nodes
    queues = queues_owned_by("ra", NAMES, 3, "busy")
    ledger = Ledger()
    consumers = [Consumer(n, queues, ledger, "consumer@" + n.name, prefetch=20).started()
                 for n in (b, c)]
    producers = [Producer(n, queues, ledger, count=900, window=16, prefix="p%s" % n.name)
                 for n in (b, c)]
    for p in producers:
        p.start()
    wait_for(lambda: len(ledger.receipted) >= 300, WAIT, "300 receipted before the kill")
    cluster.kill9("ra")
    for p in producers:
        p.finish(timeout=FAILOVER_S + WAIT * 3)
    wait_all_received(ledger, cluster, FAILOVER_S + WAIT, "owner killed under load", consumers)
    for cons in consumers:
        cons.finish()
    report = ledger.check("owner killed under load")
    assert len(ledger.receipted) == 1800, report
    cluster.check_alive()


def test_backup_killed_loses_nothing_and_a_new_backup_gets_a_copy(cluster):
    # four nodes: after two deaths the other two still make a majority of the controller's
    # group (of three, once the first death is out of it), so the view can change again
    four = NAMES + ["rd"]
    nodes = start_mesh(cluster, [(n, 1) for n in four])
    a, b, c, d = nodes
    queues = [q for q in queues_owned_by("ra", four, 60, "bk")
              if owner_of(q, ["rb", "rc", "rd"]) == "rb"][:3]	# backup rb
    ledger = fill_held(d, queues, 30)
    cluster.kill9("rb")		# the backup: ra copies each queue to its next node
    wait_view(nodes_but(cluster, ()), ["ra", "rc", "rd"], timeout=FAILOVER_S)
    # and out of the controller's group too: only then is the next death one of three
    wait_for(lambda: all(controller(n)["voters"] == 3 for n in nodes_but(cluster, ())),
             FAILOVER_S, "the controller's group to shrink to three voters")
    # a receipted SEND to each queue now means the new backup holds it, and the copy went
    # ahead of it on the same link
    more = Producer(d, queues, ledger, count=len(queues), prefix="y")
    more.start()
    more.finish()
    cluster.kill9("ra")		# now the owner: the new backup serves everything
    cons = Consumer(d, queues, ledger, "held@rd").started()
    wait_all_received(ledger, cluster, FAILOVER_S + WAIT, "backup, then owner killed", [cons])
    cons.finish()
    ledger.check("after the backup and then the owner died")
    assert len(ledger.received) == len(queues) * 31, "held messages are never duplicated"
    cluster.check_alive()


def take_unacked(conn, n, what, got=()):
    """Reads MESSAGE frames (not acking them) until n, counting those in got; returns all."""
    got = [f for f in got if f.cmd == "MESSAGE"]
    while len(got) < n:
        f, other = conn.expect(lambda f: f.cmd == "MESSAGE", WAIT, what)
        got += [x for x in other if x.cmd == "MESSAGE"] + [f]
    return got


def queue_with(owner, backup, names, prefix):
    for q in queues_owned_by(owner, names, 200, prefix):
        if owner_of(q, [n for n in names if n != owner]) == backup:
            return q
    raise AssertionError("no queue with owner %s and backup %s" % (owner, backup))


def unacked_on_rc(cluster, prefix, prefetch=None):
    """Three nodes; a queue ra owns with its copy on rb, 20 messages in it, and a consumer
    on rc (client-individual) holding `prefetch` (all 20 by default) unacked deliveries.
    Returns (nodes, queue, consumer connection, the deliveries it holds)."""
    nodes = start_mesh(cluster, [("ra", 1), ("rb", 1), ("rc", 1)])
    q = queue_with("ra", "rb", NAMES, prefix)
    fill_held(nodes[2], [q], 20)
    cons = Conn(nodes[2])
    held = take_unacked(cons, prefetch or 20, "deliveries from ra",
                        cons.subscribe(q, ack="client-individual", prefetch=prefetch)[1])
    return nodes, q, cons, held


def test_acks_written_after_a_failover_are_applied_by_the_new_owner(cluster):
    # docs/replication.md, "ACKs after a failover": a consumer on a surviving node holds
    # deliveries the dead owner made; its ACKs, written after the backup took the queue
    # over, must settle them there - nothing comes again
    (a, b, c), q, cons, held = unacked_on_rc(cluster, "adopt")
    # the DELIVERED marks travel to the backup on the link after the messages
    wait_for(lambda: heraldctl_queues(a).get(q, {}).get("messages") == 20, WAIT,
             "ra to list 20 unacked")
    time.sleep(0.5)
    cluster.kill9("ra")
    wait_view([b, c], ["rb", "rc"], timeout=FAILOVER_S)
    for f in held[:15]:
        cons.send("ACK", [("id", f.get("ack"))])
    rid = "after-acks"
    cons.send("ACK", [("id", held[15].get("ack")), ("receipt", rid)])
    _, again = cons.expect(lambda f: f.cmd == "RECEIPT" and f.get("receipt-id") == rid, WAIT,
                           "the receipt of the 16th ACK")
    # the 4 still unacked stay with this consumer; none of the 20 is delivered again
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        f = cons.recv(0.2)
        if f is not None:
            again.append(f)
    assert not again, "delivered again after their ACKs reached the new owner: %r" % again
    wait_for(lambda: heraldctl_queues(b).get(q, {}).get("messages") == 4, WAIT,
             "rb to hold the 4 messages not acked")
    for f in held[16:]:
        cons.send("ACK", [("id", f.get("ack"))])
    wait_for(lambda: heraldctl_queues(b).get(q, {}).get("messages", 0) == 0, WAIT,
             "rb to hold nothing once every delivery was acked")
    cons.close()
    cluster.check_alive()


def test_unacked_deliveries_of_a_consumer_that_died_with_the_owner_go_to_another(cluster):
    # the consumer was on the owner's node: nobody will ACK what it held, so the new owner
    # delivers it again at once (marked), not after the adopted deliveries' wait
    nodes = start_mesh(cluster, [("ra", 1), ("rb", 1), ("rc", 1)])
    a, b, c = nodes
    q = queue_with("ra", "rb", NAMES, "gone")
    fill_held(c, [q], 10)
    doomed = Conn(a)
    take_unacked(doomed, 10, "10 from ra", doomed.subscribe(q, ack="client-individual")[1])
    time.sleep(0.5)
    cluster.kill9("ra")
    wait_view([b, c], ["rb", "rc"], timeout=FAILOVER_S)
    killed = time.monotonic()
    other = Conn(c)
    got = take_unacked(other, 10, "the 10 the dead consumer held", other.subscribe(q)[1])
    assert all(f.get("redelivered") == "true" for f in got), got
    assert time.monotonic() - killed < 3.0, "redelivered only after the adopted wait"
    other.close()
    cluster.check_alive()


def test_a_rejoining_node_takes_its_queue_back_whole_without_duplicates(cluster):
    # docs/replication.md, "Rejoin": ra dies, rb takes its queue over (with a consumer on rc
    # holding 10 unacked deliveries); a new ra joins, gets a copy while joining, and when
    # active takes the queue back from that copy - the 10 stay unacked with their consumer
    # (its ACKs are applied at ra), the other 10 are delivered once
    (a, b, c), q, cons, held = unacked_on_rc(cluster, "back", prefetch=10)
    time.sleep(0.5)
    cluster.kill9("ra")
    wait_view([b, c], ["rb", "rc"], timeout=FAILOVER_S)
    a2 = cluster.start("ra", join=b.gossip)
    wait_view([a2, b, c], NAMES, timeout=FAILOVER_S)
    wait_for(lambda: heraldctl_queues(a2).get(q, {}).get("messages") == 20, WAIT,
             "ra, active again, to hold the queue's 20 messages (10 of them unacked)")
    for f in held:
        cons.send("ACK", [("id", f.get("ack"))])
    rest = take_unacked(cons, 10, "the 10 not delivered before")
    bodies = [f.body for f in held + rest]
    assert len(set(bodies)) == 20, "a message came twice: %r" % sorted(bodies)
    assert not any(f.get("redelivered") == "true" for f in rest), rest
    for f in rest:
        cons.send("ACK", [("id", f.get("ack"))])
    extra = cons.recv(1.0)
    assert extra is None, "delivered again: %r" % extra
    wait_for(lambda: heraldctl_queues(a2).get(q, {}).get("messages", 0) == 0, WAIT,
             "ra to hold nothing once all 20 were acked")
    cons.close()
    cluster.check_alive()


def nodes_but(cluster, names):
    return [n for n in cluster.nodes.values() if n.name not in names]


def heraldctl_queues(node):
    out = subprocess.run([HERALDCTL, "--node", node.admin, "queues", "--json"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return {q["name"]: q for q in json.loads(out)["queues"]}


def test_heraldctl_queues_shows_each_queues_backup_and_whether_it_is_in_sync(cluster):
    nodes = start_mesh(cluster, [("ra", 1), ("rb", 1), ("rc", 1)])
    a, b, c = nodes
    queues = queues_owned_by("ra", NAMES, 2, "show")
    fill_held(c, queues, 5)
    # each node lists its queues from snapshots its shards take about once a second
    wait_for(lambda: all(heraldctl_queues(b).get(q, {}).get("messages") == 5 for q in queues),
             WAIT, "heraldctl queues to list both queues with 5 messages")
    got = heraldctl_queues(b)
    for q in queues:
        row = got[q]
        assert row["owner"] == "ra" and row["messages"] == 5, row
        assert row["backups"] == [owner_of(q, ["rb", "rc"])], row
        assert row["in_sync"] is True, row
    table = subprocess.run([HERALDCTL, "--node", c.admin, "queues"], capture_output=True,
                           text=True, timeout=30, check=True).stdout
    print(table)
    assert "BACKUPS" in table and "IN SYNC" in table
    cluster.check_alive()


def test_a_hung_owner_resumed_delivers_nothing_it_no_longer_owns(cluster):
    nodes = start_mesh(cluster, [("ra", 1), ("rb", 1), ("rc", 1)])
    a, b, c = nodes
    queues = queues_owned_by("ra", NAMES, 2, "hung")
    ledger = fill_held(c, queues, 20)
    pid = a.proc.pid
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        wait_view([b, c], ["rb", "rc"], timeout=FAILOVER_S)
        print("hung owner out of the view %.1fs after SIGSTOP" % (time.monotonic() - stopped))
        # the backups took the queues over: a consumer on a survivor gets and acks all
        fresh = Consumer(b, queues, ledger, "fresh@rb").started()
        deadline = time.monotonic() + FAILOVER_S
        while fresh.count() < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        print("served by a backup %.1fs after SIGSTOP" % (time.monotonic() - stopped))
        assert fresh.count() == 40, "the backups served %d of 40" % fresh.count()
        # a client of the hung node: its CONNECT and SUBSCRIBEs wait in the kernel, and are
        # the first things the node reads when it resumes - before it has heard that it
        # was taken out of the view
        stale = Consumer(a, queues, ledger, "stale@ra")
        stale.start()
        time.sleep(0.3)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert stale.ready.wait(WAIT), "the resumed node did not take its client's SUBSCRIBEs"
    # resumed, the old owner must deliver nothing of what it held: its lease ran out while
    # it was stopped, and it learns it was taken out before it may act again
    wait_view(list(cluster.nodes.values()), NAMES, timeout=FAILOVER_S * 2)
    time.sleep(1.0)
    assert stale.count() == 0, "the resumed old owner delivered %d acked messages again: %s" % (
        stale.count(), stale.got()[:5])
    assert fresh.count() == 40, "nothing delivered twice after the resume: %d" % fresh.count()
    stale.finish()
    fresh.finish()
    ledger.check("hung owner")
    cluster.check_alive()
