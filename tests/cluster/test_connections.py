"""
tests/cluster/test_connections.py - `heraldctl connections [--json]` and `heraldctl
connections close ID` against a real node (issue 14): a STOMP and a WebSocket client are
listed with user, vhost, address, protocol, subscriptions and bytes; closing one sends it an
ERROR saying an administrator closed it and leaves the other alone; an unknown id fails.

Run: HERALD_BIN=build/core/herald HERALDCTL_BIN=build/tools/heraldctl \
     /usr/bin/python3 -m pytest -q tests/cluster/test_connections.py
"""

import json
import os
import subprocess
import sys

from clusterlib import HERALDCTL, start_mesh

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from stompraw import RawStomp  # noqa: E402
from wsclient import RawWS  # noqa: E402


def ctl(node, *args):
    return subprocess.run([HERALDCTL, "--node", node.admin] + list(args), capture_output=True,
                          timeout=30)


def test_list_and_close_connections(cluster):
    (a,) = start_mesh(cluster, [("a", 2)])
    stomp = RawStomp("127.0.0.1", a.ports["stomp"])
    assert stomp.connect().cmd == "CONNECTED"
    stomp.send_frame("SUBSCRIBE", [("destination", "/topic/t1"), ("id", "1")])
    stomp.send_frame("SUBSCRIBE", [("destination", "/queue/q1"), ("id", "2"),
                                   ("receipt", "r")])
    assert stomp.recv_frame().cmd == "RECEIPT"
    ws = RawWS(("127.0.0.1", a.ports["ws"]))
    ws.send(b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0")
    assert ws.recv_frame().cmd == "CONNECTED"

    out = ctl(a, "connections", "--json")
    assert out.returncode == 0, out.stderr.decode()
    doc = json.loads(out.stdout)
    assert doc["fresh"] is True
    conns = {c["protocol"]: c for c in doc["connections"]}
    assert set(conns) == {"stomp", "websocket"}, doc
    assert conns["stomp"]["user"] == "guest" and conns["stomp"]["vhost"] == "/"
    assert conns["stomp"]["subscriptions"] == 2
    assert conns["stomp"]["address"].startswith("127.0.0.1:")
    assert conns["stomp"]["bytes_in"] > 0 and conns["stomp"]["bytes_out"] > 0
    table = ctl(a, "connections")
    assert table.returncode == 0 and b"2 connections" in table.stdout, table.stdout

    out = ctl(a, "connections", "close", str(conns["stomp"]["id"]))
    assert out.returncode == 0, out.stderr.decode()
    err = stomp.recv_frame(timeout=10)
    assert err.cmd == "ERROR" and err.get("message") == "closed by an administrator", err
    # the other client stays
    ws.send(b"SUBSCRIBE\ndestination:/topic/t2\nid:9\nreceipt:still\n\n\0")
    assert ws.recv_frame().cmd == "RECEIPT"
    assert ctl(a, "connections", "close", "999999999").returncode == 1
    assert ctl(a, "connections", "close", "x1").returncode == 2
    cluster.check_alive()
