"""
tests/cluster/test_drain.py - a graceful drain with real processes on 127.0.0.1 (issue 14,
"Changing a running node"): `heraldctl drain` on node b of a two-node cluster makes b stop
being ready, hand its queues to a, tell its STOMP clients to reconnect elsewhere (an ERROR
saying so) and its WebSocket clients to come back (close code 1012, service restart), and
exit 0; every message b's queues held is then consumed from a.

Run: HERALD_BIN=build/core/herald HERALDCTL_BIN=build/tools/heraldctl \
     /usr/bin/python3 -m pytest -q tests/cluster/test_drain.py
"""

import os
import subprocess
import sys
import time

from clusterlib import HERALDCTL, start_mesh

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from stompraw import RawStomp  # noqa: E402
from wsclient import RawWS  # noqa: E402

QUEUES = 16
PER_QUEUE = 10
WAIT = 15.0


def test_heraldctl_drain_hands_over_and_sends_clients_elsewhere(cluster):
    a, b = start_mesh(cluster, [("a", 2), ("b", 1)])
    # messages held in queues spread over both owners
    prod = RawStomp("127.0.0.1", b.ports["stomp"])
    assert prod.connect().cmd == "CONNECTED"
    for i in range(QUEUES * PER_QUEUE):
        prod.send_frame("SEND", [("destination", "/queue/drain-%d" % (i % QUEUES))],
                        b"m%d" % i)
    prod.send_frame("DISCONNECT", [("receipt", "bye")])
    assert prod.recv_frame().cmd == "RECEIPT"

    stomp = RawStomp("127.0.0.1", b.ports["stomp"])
    assert stomp.connect().cmd == "CONNECTED"
    ws = RawWS(("127.0.0.1", b.ports["ws"]))
    ws.send(b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0")
    assert ws.recv_frame().cmd == "CONNECTED"

    out = subprocess.run([HERALDCTL, "--node", b.admin, "drain"], capture_output=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    assert b"draining" in out.stdout

    err = stomp.recv_frame(timeout=WAIT)
    assert err.cmd == "ERROR", err
    assert err.get("message") == "server shutting down"
    assert b"reconnect" in err.body, err.body
    close = ws.expect_close(timeout=WAIT)
    assert close.close_code == 1012, "close code %r, expected 1012 (service restart)" % (
        close.close_code,)

    node, rc = cluster.terminate_wait("b", timeout=WAIT)
    assert rc == 0, "b exited with %r" % rc
    assert "queues handed over to the other nodes (" in node.log()
    assert "TIMED OUT" not in node.log()

    # everything b's queues held is on a now
    cons = RawStomp("127.0.0.1", a.ports["stomp"])
    assert cons.connect().cmd == "CONNECTED"
    for q in range(QUEUES):
        cons.send_frame("SUBSCRIBE", [("destination", "/queue/drain-%d" % q), ("id", str(q))])
    bodies = set()
    deadline = time.monotonic() + WAIT
    while len(bodies) < QUEUES * PER_QUEUE and time.monotonic() < deadline:
        f = cons.recv_frame(timeout=max(0.1, deadline - time.monotonic()))
        if f.cmd == "MESSAGE":
            bodies.add(f.body)
    assert len(bodies) == QUEUES * PER_QUEUE, "%d of %d held messages on a after the drain" % (
        len(bodies), QUEUES * PER_QUEUE)
    cluster.check_alive()
