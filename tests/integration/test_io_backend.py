"""
The I/O backend (issue 15): `--io auto|io_uring|epoll`, default auto. Before its first
"listening" line herald logs exactly one `io backend: ...` line: `io_uring`, `epoll` when
asked for it, or `epoll (io_uring unavailable: <why>)` when auto falls back. `--io io_uring`
where io_uring is blocked exits 1 before listening, naming the cause and `--io epoll`.

io_uring is blocked for one server only by tests/support/no_uring.c (`no-uring PROGRAM
ARGS...`: a seccomp filter makes the io_uring system calls fail with EPERM, as Docker's
default profile does); CTest passes its path as HERALD_NO_URING. Without it (libseccomp-dev
missing) those tests are skipped. The rest of the suite runs on epoll too: CTest's
integration_epoll sets HERALD_IO=epoll (conftest.py).
"""

import ctypes
import os
import re
import subprocess

import pytest

from conftest import HERALD_IO, HERALD_SHARDS, REPO
from helpers import uid
from stompraw import frame_bytes
from wsclient import ws, wsc	# noqa: F401

# Every test reads the server's own log or starts it with flags of its own.
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive and backend_sensitive: the backends themselves; their serving checks deliver
# across shards.
pytestmark = [pytest.mark.herald_only, pytest.mark.shard_sensitive, pytest.mark.backend_sensitive]

NO_URING = os.environ.get("HERALD_NO_URING", os.path.join(REPO, "build", "tests", "no-uring"))
needs_no_uring = pytest.mark.skipif(
    not os.access(NO_URING, os.X_OK),
    reason="no-uring launcher not built at %s (libseccomp-dev; set HERALD_NO_URING)" % NO_URING)
under_no_uring = pytest.mark.herald_wrapper(NO_URING)

BACKEND_RE = re.compile(r"io backend: ([^\n]*)")
LISTEN_MARK = "listening proto="
START_TIMEOUT = 10.0


def io_uring_works():
    """Whether this process may create an io_uring (io_uring_setup(2), x86-64/arm64 number
    425): the default backend can only be io_uring where it can."""
    params = ctypes.create_string_buffer(120)	# struct io_uring_params
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(ctypes.c_long(425), ctypes.c_long(1), params)
    if fd < 0:
        return False
    os.close(fd)
    return True


uring_ok = pytest.mark.skipif(not io_uring_works(),
                              reason="io_uring is not available to this process")


def backend_line(srv):
    """The text after `io backend: `, checked to be logged once and before any listener."""
    log = srv.log()
    found = BACKEND_RE.findall(log)
    assert len(found) == 1, "expected one 'io backend:' line, got %d:\n%s" % (len(found), log)
    listen_at = log.find(LISTEN_MARK)
    assert 0 <= log.find("io backend: ") < listen_at, \
        "'io backend:' not logged before the first listener:\n%s" % log
    return found[0].strip()


def assert_serves_stomp(srv, clients):
    """Subscribe, send, receive over TCP, on queues and a topic spread over every shard (so
    deliveries cross shards, which needs the wake-up between them)."""
    sub = clients(srv)
    pub = clients(srv)
    dests = ["/queue/" + uid("io") for _ in range(4 * HERALD_SHARDS)]
    dests.append("/topic/" + uid("io"))
    for d in dests:
        sub.subscribe(d)
    for i, d in enumerate(dests):
        pub.send(d, "m%d" % i, receipt=(i == len(dests) - 1))
    msgs = sub.wait_messages(len(dests))
    got = {m.headers["destination"]: m.body for m in msgs}
    assert got == {d: "m%d" % i for i, d in enumerate(dests)}


def assert_serves_ws(srv, clients, wsc):
    """A STOMP-over-WebSocket client receives what a TCP client publishes, and back."""
    w = wsc()
    f = w.connect()
    assert f.cmd == "CONNECTED", f
    topic, queue = "/topic/" + uid("iows"), "/queue/" + uid("iows")
    w.send_frame("SUBSCRIBE", [("id", "s1"), ("destination", topic), ("receipt", "r1")])
    f = w.recv_frame()
    assert f.cmd == "RECEIPT" and f["receipt-id"] == "r1", f
    tcp = clients(srv)
    tcp.subscribe(queue)
    tcp.send(topic, "to-ws", receipt=True)
    f = w.recv_frame()
    assert f.cmd == "MESSAGE" and f.body == b"to-ws", f
    w.send(frame_bytes("SEND", [("destination", queue), ("content-length", "5")], b"to-tc"))
    assert tcp.wait_messages(1)[0].body == "to-tc"


def assert_heart_beats(srv, raws):
    """The timers run: a client asking for beats every 300 ms gets some within 2 s."""
    r = raws(srv)
    f = r.connect(heart_beat=(0, 300))
    assert f.cmd == "CONNECTED", f
    assert r.pump(2.0) == []
    assert r.heartbeats >= 2, "%d heart-beats in 2 s at 300 ms" % r.heartbeats


@needs_no_uring
@under_no_uring
@pytest.mark.herald_args("--io", "auto")
def test_auto_falls_back_to_epoll_where_io_uring_is_denied_and_serves(herald, clients, raws,
                                                                    wsc):
    line = backend_line(herald)
    # strerror(EPERM), then whatever hint herald adds about where the block comes from
    assert re.fullmatch(r"epoll \(io_uring unavailable: Operation not permitted\b.*\)", line), line
    assert "io_uring setup failed" not in herald.log()
    assert_serves_stomp(herald, clients)
    assert_serves_ws(herald, clients, wsc)
    assert_heart_beats(herald, raws)


@needs_no_uring
def test_io_uring_asked_for_where_it_is_denied_exits_naming_the_way_out(herald_bin):
    cmd = [NO_URING, herald_bin, "--bind", "127.0.0.1", "--stomp-port", "0", "--ws-port", "0",
           "--gossip-port", "0", "--gossip-bind", "127.0.0.1", "--admin-port", "0",
           "--shards", str(HERALD_SHARDS), "--io", "io_uring"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail("herald --io io_uring kept running with io_uring denied:\n%s"
                    % out.decode("utf-8", "replace"))
    log = out.decode("utf-8", "replace")
    assert proc.returncode == 1, log
    assert LISTEN_MARK not in log, log
    errs = [ln for ln in log.splitlines()
            if "io_uring is not available" in ln and "--io epoll" in ln]
    assert errs, "no error line naming the cause and '--io epoll':\n%s" % log


@pytest.mark.parametrize("want", [
    pytest.param("epoll", marks=pytest.mark.herald_args("--io", "epoll"), id="epoll"),
    # epoll must not need io_uring at all (no probe that fails under Docker's profile)
    pytest.param("epoll", id="epoll-io_uring-denied", marks=[
        needs_no_uring, under_no_uring, pytest.mark.herald_args("--io", "epoll")]),
    pytest.param("io_uring", id="io_uring", marks=[
        uring_ok, pytest.mark.herald_args("--io", "io_uring")]),
])
def test_backend_asked_for_is_the_one_used_and_serves(herald, clients, wsc, want):
    assert backend_line(herald) == want
    assert_serves_stomp(herald, clients)
    assert_serves_ws(herald, clients, wsc)


@uring_ok
@pytest.mark.skipif(HERALD_IO != "", reason="HERALD_IO chooses the backend of every server")
def test_default_is_io_uring_where_it_works(herald):
    assert backend_line(herald) == "io_uring"
