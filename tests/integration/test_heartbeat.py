"""
Heart-beats (STOMP 1.2 "Heart-beating"): negotiated both ways from CONNECT's and
CONNECTED's heart-beat headers; the server sends on time (every max(sx, cy) ms); a client
that promised beats and falls silent is dropped after about twice its interval; any bytes
count as a beat. Herald may honour sub-second values; RabbitMQ rounds up to whole seconds,
so bounds here allow periods up to 1000 ms.
"""

import threading
import time

import pytest

from helpers import assert_server_works, uid
from stompraw import Closed

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# backend_sensitive: the loop's timers and silence detection, one connection each; heart-beats
# while other connections are busy is shard_sensitive too.
pytestmark = [pytest.mark.herald_shared, pytest.mark.backend_sensitive]

MAX_PERIOD_MS = 1000	# RabbitMQ's floor; herald should honour the smaller asks below


def LATE_OK(period_ms):
    """Longest gap between server beats accepted as on time, in seconds. Generous: other
    work shares this machine, and timing belongs to bench/, not to tests."""
    return 2 * period_ms / 1000.0 + 0.25


def parse_hb(f):
    sx, sy = (int(x) for x in f["heart-beat"].split(","))
    return sx, sy


def test_server_sends_heart_beats_on_time(herald, raws):
    cy = 300
    r = raws(herald)
    f = r.connect(heart_beat=(0, cy))
    assert f.cmd == "CONNECTED", f
    sx, _ = parse_hb(f)
    assert sx > 0, "server offers no heart-beats though the client asked for them: %s" % f
    period = max(sx, cy)
    assert period <= MAX_PERIOD_MS, "server heart-beat period %d ms, asked %d" % (period, cy)
    start = time.monotonic()
    window = min(5 * period / 1000.0, 4.0)
    frames = r.pump(window)
    assert frames == []
    times = [start] + r.heartbeat_times
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(r.heartbeat_times) >= int(window * 1000 / period) // 2, (period, gaps)
    # "on time": allow one missed beat's worth of lateness for a loaded 2-core box; a
    # server that beats at whole seconds or not at all still fails.
    assert max(gaps) <= LATE_OK(period), (period, gaps)


@pytest.mark.shard_sensitive
def test_server_heart_beats_keep_coming_while_other_connections_are_busy(herald, raws):
    cy = 300
    idle = raws(herald)
    f = idle.connect(heart_beat=(0, cy))
    sx, _ = parse_hb(f)
    assert sx > 0
    period = max(sx, cy)
    assert period <= MAX_PERIOD_MS
    # Load: a publisher floods a topic nobody subscribes to (parsed and routed, then
    # dropped, so memory stays flat).
    t = "/topic/" + uid("busy")
    pub = raws(herald)
    assert pub.connect().cmd == "CONNECTED"
    frame = b"SEND\ndestination:" + t.encode() + b"\n\n" + b"x" * 1000 + b"\0"
    start = time.monotonic()
    end = start + min(5 * period / 1000.0, 3.0)
    sent = [0]

    def publish():  # its own thread, so a blocked sendall never delays reading beats
        # Steady traffic (~20 MB/s), not a CPU-saturating flood: on a 2-core box a flood
        # starves the shard threads of CPU and measures the scheduler, not herald.
        batch = frame * 50
        while time.monotonic() < end and sent[0] < 100_000:
            if not pub.send(batch):
                return
            sent[0] += 50
            time.sleep(0.0025)

    th = threading.Thread(target=publish, daemon=True)
    th.start()
    try:
        idle.pump(end - start)
    except Closed:
        pytest.fail("idle heart-beating connection was closed")
    th.join(5)
    sent = sent[0]
    times = [start] + [t for t in idle.heartbeat_times if t >= start]
    gaps = [b - a for a, b in zip(times, times[1:])] + [time.monotonic() - times[-1]]
    assert len(times) >= 3, gaps
    assert max(gaps) <= LATE_OK(period), (period, gaps, sent)
    # The publisher was served meanwhile.
    pub.send_frame("SEND", [("destination", t), ("receipt", "done")], b"x")
    assert pub.recv_frame(10).cmd == "RECEIPT"


def test_no_heart_beats_when_the_client_wants_none(herald, raws):
    r = raws(herald)
    f = r.connect(heart_beat=(0, 0))
    assert f.cmd == "CONNECTED"
    r.pump(0.1)  # a server frame may be followed by an EOL; that is not a heart-beat
    r.heartbeats = 0
    r.pump(1.2)
    assert r.heartbeats == 0


def test_silent_client_that_promised_heart_beats_is_disconnected(herald, raws):
    cx = 200
    r = raws(herald)
    f = r.connect(heart_beat=(cx, 0))
    assert f.cmd == "CONNECTED", f
    _, sy = parse_hb(f)
    assert sy > 0, "server does not watch the client's heart-beats: %s" % f
    period = max(cx, sy)
    assert period <= MAX_PERIOD_MS, period
    start = time.monotonic()
    frames, closed = r.recv_until_closed(timeout=3 * period / 1000.0 + 1.0)
    took = time.monotonic() - start
    assert closed, "silent client still connected after %.2fs (period %d ms)" % (took, period)
    # Not before the client is actually late.
    assert took >= period / 1000.0, "dropped after %.2fs, period %d ms" % (took, period)
    assert all(fr.cmd == "ERROR" for fr in frames), frames
    assert_server_works(herald.addr)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_client_that_sends_heart_beats_stays_connected(herald, raws, eol):
    cx = 300
    r = raws(herald)
    f = r.connect(heart_beat=(cx, 0))
    _, sy = parse_hb(f)
    period = max(cx, sy)
    deadline = time.monotonic() + max(1.5, 4 * period / 1000.0)
    while time.monotonic() < deadline:
        assert r.send(eol)
        try:
            r.pump(cx / 3000.0)
        except Closed:
            pytest.fail("server closed a client that sent heart-beats every %d ms" % (cx // 3))
    q = "/queue/" + uid("hb")
    r.send_frame("SUBSCRIBE", [("destination", q), ("id", "s")])
    r.send_frame("SEND", [("destination", q)], b"alive")
    m = r.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"alive"


def test_any_frame_counts_as_a_heart_beat(herald, raws):
    cx = 300
    r = raws(herald)
    f = r.connect(heart_beat=(cx, 0))
    _, sy = parse_hb(f)
    period = max(cx, sy)
    q = "/queue/" + uid("hb")
    deadline = time.monotonic() + max(1.5, 4 * period / 1000.0)
    n = 0
    while time.monotonic() < deadline:
        assert r.send_frame("SEND", [("destination", q)], b"beat")
        n += 1
        try:
            r.pump(cx / 3000.0)
        except Closed:
            pytest.fail("server closed a client that sent a frame every %d ms" % (cx // 3))
    r.send_frame("DISCONNECT", [("receipt", "d")])
    assert r.recv_frame().cmd == "RECEIPT"


def test_client_that_promised_nothing_is_not_dropped_for_silence(herald, raws):
    r = raws(herald)
    f = r.connect(heart_beat=(0, 0))
    assert f.cmd == "CONNECTED"
    try:
        r.pump(1.5)
    except Closed:
        pytest.fail("server dropped a client that never promised heart-beats")
    r.send_frame("BEGIN", [("transaction", "t"), ("receipt", "r")])
    assert r.recv_frame().cmd == "RECEIPT"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_stomp_py_with_heart_beats_both_ways(herald, clients, version):
    # stomp.py beats exactly on its interval (as stomp.js does), with no slack of its own.
    # Its own check of the server's beats gets slack for a loaded machine (receive_scale).
    c = clients(herald, version=version, heartbeats=(300, 300), receive_scale=3.0)
    sx, sy = (int(x) for x in c.listener.connected.headers["heart-beat"].split(","))
    assert sx > 0 and sy > 0
    period = max(sx, 300)
    time.sleep(min(4 * period / 1000.0, 3.0))
    assert not c.listener.disconnected
    assert c.listener.heartbeats >= 2
    q = "/queue/" + uid("hb")
    c.subscribe(q)
    c.send(q, "ok", receipt=True)
    assert c.wait_messages(1)[0].body == "ok"


@pytest.mark.rabbitmq_differs("RabbitMQ keeps the connection open after an ERROR")
def test_bad_heart_beat_header_is_an_error(herald, raws):
    r = raws(herald)
    r.send_frame("CONNECT", [("accept-version", "1.2"), ("host", "/"), ("login", "guest"),
                             ("passcode", "guest"), ("heart-beat", "soon,later")])
    err = r.expect_error_then_close()
    assert err["message"]
    assert_server_works(herald.addr)
