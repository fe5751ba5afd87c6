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

import time

from clusterlib import start_mesh, status, wait_for
from test_queues_cluster import (WAIT, Consumer, Ledger, Producer, consume_held, fill_held,
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
    nodes = start_mesh(cluster, [("ra", 1), ("rb", 1), ("rc", 1)])
    a, b, c = nodes
    queues = [q for q in queues_owned_by("ra", NAMES, 40, "bk")
              if owner_of(q, ["rb", "rc"]) == "rb"][:3]	# backup rb
    ledger = fill_held(c, queues, 30)
    cluster.kill9("rb")		# the backup: ra makes rc its new backup and copies to it
    # once rc is ra's backup, a receipted SEND to each queue means rc holds it, and the
    # copy went ahead of it
    wait_for(lambda: "dead" in [m["state"] for m in status(a)["members"] if m["name"] == "rb"],
             FAILOVER_S, "ra to declare rb dead")
    more = Producer(c, queues, ledger, count=len(queues), prefix="y")
    more.start()
    more.finish()
    cluster.kill9("ra")		# now the owner: rc took a copy, so rc serves everything
    cons = Consumer(c, queues, ledger, "held@rc").started()
    wait_all_received(ledger, cluster, FAILOVER_S + WAIT, "backup, then owner killed", [cons])
    cons.finish()
    ledger.check("after the backup and then the owner died")
    assert len(ledger.received) == len(queues) * 31, "held messages are never duplicated"
    cluster.check_alive()
