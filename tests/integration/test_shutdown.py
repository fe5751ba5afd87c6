"""
SIGTERM (issue 3 "Protecting the node"): stop accepting, finish writing what is queued,
close cleanly, exit 0. And the command line: --help, --version, bad flags, port 0.
"""

import re
import signal
import socket
import subprocess
import time

import pytest

from helpers import uid
from stompraw import RawStomp, frame_bytes

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive and backend_sensitive: SIGTERM stops accepting and drains every shard's
# connections.
pytestmark = [pytest.mark.herald_only, pytest.mark.shard_sensitive, pytest.mark.backend_sensitive]

EXIT_WITHIN = 5.0


def sigterm(herald):
    herald.expect_exit = True
    t0 = time.monotonic()
    herald.signal(signal.SIGTERM)
    rc = herald.wait(EXIT_WITHIN + 5)
    took = time.monotonic() - t0
    assert rc is not None, "herald still running %.0fs after SIGTERM" % (EXIT_WITHIN + 5)
    return rc, took


def test_sigterm_idle_server_exits_0(herald):
    rc, took = sigterm(herald)
    assert rc == 0, herald.log()
    assert took < EXIT_WITHIN


def test_sigterm_closes_connected_clients_and_exits_0(herald, raws):
    rs = []
    for _ in range(5):
        r = raws(herald)
        assert r.connect().cmd == "CONNECTED"
        rs.append(r)
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send(b"SEND\ndestination:/queue/half\n\npart")  # one client mid-frame
    rs.append(r)
    rc, took = sigterm(herald)
    assert rc == 0, herald.log()
    assert took < EXIT_WITHIN
    for r in rs:
        frames, closed = r.recv_until_closed(2.0)
        assert closed
        # Nothing but (optionally) an ERROR telling the client why.
        assert all(f.cmd == "ERROR" for f in frames), frames


def test_no_new_connections_after_sigterm(herald):
    addr = herald.addr
    sigterm(herald)
    with pytest.raises(OSError):
        s = socket.create_connection(addr, timeout=2)
        try:
            # accepted by a stale backlog? then it must be closed at once
            s.settimeout(2)
            if s.recv(1) == b"":
                raise ConnectionRefusedError("closed")
        finally:
            s.close()


@pytest.mark.timeout(60)
@pytest.mark.herald_args("--max-outbound-bytes", str(256 << 20))
def test_sigterm_finishes_writing_queued_messages(herald, raws):
    t = "/topic/" + uid("drain")
    sub = RawStomp(herald.host, herald.port, rcvbuf=4096, timeout=20)
    assert sub.connect().cmd == "CONNECTED"
    sub.send_frame("SUBSCRIBE", [("destination", t), ("id", "s"), ("receipt", "sub")])
    assert sub.recv_frame().cmd == "RECEIPT"
    body = b"d" * 16384
    n = 300  # ~4.8 MiB, far more than the socket buffers hold: most waits in herald
    pub = raws(herald)
    assert pub.connect().cmd == "CONNECTED"
    one = frame_bytes("SEND", [("destination", t), ("content-length", len(body))], body)
    for i in range(n - 1):
        assert pub.send(one)
    pub.send_frame("SEND", [("destination", t), ("content-length", len(body)),
                            ("receipt", "done")], body)
    assert pub.recv_frame(20).cmd == "RECEIPT"
    first = sub.recv_frame()  # delivery is under way
    assert first.cmd == "MESSAGE"
    time.sleep(0.3)
    herald.expect_exit = True
    herald.signal(signal.SIGTERM)
    frames, closed = sub.recv_until_closed(20)
    msgs = [first] + [f for f in frames if f.cmd == "MESSAGE"]
    assert closed
    assert len(msgs) == n, "got %d of %d messages before the close" % (len(msgs), n)
    assert all(m.body == body for m in msgs)
    rc = herald.wait(10)
    assert rc == 0, herald.log()


def test_sigterm_with_held_queue_messages_exits_0(herald, clients):
    c = clients(herald)
    c.send_many("/queue/" + uid(), ["x"] * 100)
    rc, _ = sigterm(herald)
    assert rc == 0


def test_stomp_port_0_picks_a_free_port_and_logs_it(herald):
    assert herald.port and herald.port != 61613
    assert re.search(r"listening proto=stomp addr=127\.0\.0\.1:%d" % herald.port, herald.log())


def test_two_servers_on_port_0_get_different_ports(herald_factory):
    a = herald_factory()
    b = herald_factory()
    assert a.port != b.port


def run_cli(binary, *args):
    return subprocess.run([binary] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=10)


def test_help_lists_flags_with_defaults(herald_bin):
    p = run_cli(herald_bin, "--help")
    assert p.returncode == 0
    out = (p.stdout + p.stderr).decode()
    for flag in ("--config", "--bind", "--stomp-port", "--shards", "--node-name", "--log-level",
                 "--max-frame-bytes", "--max-outbound-bytes", "--max-queue-length",
                 "--max-connections", "--memory-high-water", "--version"):
        assert flag in out, "--help does not mention %s" % flag
    assert "61613" in out, "--help does not show the default STOMP port"


def test_version_prints_a_version(herald_bin):
    p = run_cli(herald_bin, "--version")
    assert p.returncode == 0
    assert re.search(r"\d+\.\d+", (p.stdout + p.stderr).decode())


def test_unknown_flag_fails_with_a_message(herald_bin):
    p = run_cli(herald_bin, "--no-such-flag")
    assert p.returncode != 0
    assert (p.stdout + p.stderr).strip()
