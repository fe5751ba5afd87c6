"""
STOMP over WebSocket (issue 4): a WebSocket connection is a STOMP connection like any other.
The seed's browser flow (login/passcode/host, /queue/<user>, JSON with content-type
text/plain), frames split across messages and several frames per message, heart-beat EOLs
over WebSocket, ERROR/DISCONNECT ending with a closing handshake, and cross-transport
delivery (TCP <-> WebSocket, topics and queues, acks). Outgoing MESSAGE frames whose body is
not UTF-8 go as binary WebSocket messages, UTF-8 ones as text (decided once per message).
The client is python3-websockets (WSStomp) unless exact bytes are needed (RawWS).
"""

import json
import signal
import time

import pytest

from helpers import uid
from stompraw import Timeout, frame_bytes
from wsclient import ws, ws_addr, wsc	# noqa: F401

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive and backend_sensitive: WebSocket connections, and deliveries between TCP and
# WebSocket clients.
pytestmark = [pytest.mark.herald_shared, pytest.mark.shard_sensitive, pytest.mark.backend_sensitive]


def only_eols(b):
    return b.strip(b"\r\n") == b""


def stomp_connect(c, **kw):
    f = c.connect(**kw)
    assert f.cmd == "CONNECTED", f
    return f


def subscribe(c, dest, ack="auto", sid=None, receipt=True, extra=()):
    sid = sid or uid("sub")
    h = [("id", sid), ("destination", dest), ("ack", ack)] + list(extra)
    if receipt:
        rid = uid("r")
        h.append(("receipt", rid))
    c.send_frame("SUBSCRIBE", h)
    if receipt:
        f = c.recv_frame()
        assert f.cmd == "RECEIPT" and f["receipt-id"] == rid, f
    return sid


def send(c, dest, body, headers=(), receipt=False):
    h = [("destination", dest)] + list(headers)
    if isinstance(body, str):
        body = body.encode("utf-8")
    if receipt:
        rid = uid("r")
        h.append(("receipt", rid))
    h.append(("content-length", str(len(body))))
    c.send_frame("SEND", h, body)
    if receipt:
        f = c.recv_frame()
        assert f.cmd == "RECEIPT" and f["receipt-id"] == rid, f


def recv_message(c, timeout=None):
    f = c.recv_frame(timeout)
    assert f.cmd == "MESSAGE", f
    return f


def assert_nothing(c, period=0.3):
    try:
        f = c.recv_frame(period)
    except Timeout:
        return
    raise AssertionError("unexpected frame %r" % f)


def tcp(herald, raws):
    r = raws(herald)
    f = r.connect()
    assert f.cmd == "CONNECTED", f
    return r


def message_kinds(c):
    """(kind, payload) of each server message that carries a MESSAGE frame."""
    return [(k, p) for k, p in c.received if p.lstrip(b"\r\n").startswith(b"MESSAGE\n")]


# --- the seed's page ---------------------------------------------------------------------------

def test_seed_page_flow(wsc):
    # Stomp.client(url) of the seed's stomp.js: subprotocols v11/v10.stomp, STOMP 1.1
    c = wsc(subprotocols=["v11.stomp", "v10.stomp"])
    f = c.connect(version="1.1,1.0", login="guest", passcode="guest", host="/",
                  heart_beat=(10000, 10000))
    assert f.cmd == "CONNECTED" and f["version"] == "1.1", f
    assert c.client.subprotocol == "v11.stomp"
    user = uid("jack")
    q = "/queue/" + user
    sid = subscribe(c, q)
    body = json.dumps({"username": user, "message": "hello,world!"})
    send(c, q, body, headers=[("content-type", "text/plain")])
    m = recv_message(c)
    assert json.loads(m.body) == {"username": user, "message": "hello,world!"}
    assert m["destination"] == q and m["subscription"] == sid
    assert m["content-type"] == "text/plain"
    assert m["message-id"]
    # every server frame is one text message (RABBITMQ-REFERENCE "Web-STOMP")
    kinds = message_kinds(c)
    assert [k for k, _ in kinds] == ["text"]
    assert only_eols(kinds[0][1][kinds[0][1].index(b"\0") + 1:])


def test_stompjs_connect_shape(wsc):
    c = wsc()
    f = c.connect(version="1.2,1.1,1.0", heart_beat=(10000, 10000))
    assert f["version"] == "1.2"
    sx, sy = (int(x) for x in f["heart-beat"].split(","))
    assert sx == 10000 and sy == 10000, f
    assert f["server"].startswith("Herald/")
    assert c.received[0][0] == "text"
    assert c.received[0][1].startswith(b"CONNECTED\n") and c.received[0][1].count(b"\0") == 1


def test_connect_with_stomp_command(wsc):
    c = wsc()
    f = c.connect(cmd="STOMP")
    assert f.cmd == "CONNECTED"


# --- refusals end with ERROR and a closing handshake ----------------------------------------------

def expect_error_then_ws_close(r):
    """ERROR, then the server's close frame, then TCP close (RawWS)."""
    frames, closed = r.recv_until_closed(5)
    errors = [f for f in frames if f.cmd == "ERROR"]
    assert errors and frames[-1].cmd == "ERROR", frames
    assert closed, "still open 5 s after ERROR"
    assert r.close_frame is not None, (
        "TCP closed after ERROR without a WebSocket close frame: a browser reports close code "
        "1006 (abnormal closure) - RFC 6455 7.1.2 closing handshake")
    code = r.close_frame.close_code
    assert code is None or code in (1000, 1002, 1003, 1007, 1008, 1009, 1011), r.close_frame
    assert r.wait_tcp_close(2.0), "socket still open after the close frame"
    return errors[0]


@pytest.mark.herald_fresh("a refused login: the per-address failed-login delay is server state")
def test_bad_login_is_error(wsc):
    c = wsc()
    f = c.connect(login="guest", passcode="wrong")
    assert f.cmd == "ERROR", f
    frames, closed = c.recv_until_closed(5)
    assert closed and not frames, (frames, closed)


@pytest.mark.herald_fresh("a refused login: the per-address failed-login delay is server state")
@pytest.mark.rabbitmq_differs("Web-STOMP never closes after ERROR")
def test_bad_login_error_then_close_frame(wsc):
    r = wsc.raw()
    f = r.connect(login="nobody", passcode="nothing")
    assert f.cmd == "ERROR"
    r.buf[:0] = f.raw	# recv_until_closed sees it again
    expect_error_then_ws_close(r)


@pytest.mark.herald_fresh("a refused login: the per-address failed-login delay is server state")
@pytest.mark.rabbitmq_differs("Web-STOMP never closes after ERROR")
def test_unknown_vhost_is_error(wsc):
    r = wsc.raw()
    f = r.connect(host="/other-vhost")
    assert f.cmd == "ERROR", f
    r.buf[:0] = f.raw
    expect_error_then_ws_close(r)


@pytest.mark.rabbitmq_differs("Web-STOMP never closes after ERROR")
def test_frame_before_connect_is_error(wsc):
    r = wsc.raw()
    r.send_frame("SEND", [("destination", "/queue/x")], b"early")
    expect_error_then_ws_close(r)


@pytest.mark.rabbitmq_differs("Web-STOMP never closes after ERROR")
def test_stomp_syntax_error_over_ws(wsc):
    r = wsc.raw()
    stomp_connect(r)
    r.send(b"NOT-A-COMMAND\n\n\0")
    expect_error_then_ws_close(r)


@pytest.mark.herald_args("--max-body-bytes", "1000")
def test_stomp_limits_apply_over_ws(wsc):
    r = wsc.raw()
    stomp_connect(r)
    r.send_frame("SEND", [("destination", "/queue/" + uid("big")), ("content-length", "2000")],
                 b"x" * 2000)
    e = expect_error_then_ws_close(r)
    assert e["message"], e


@pytest.mark.rabbitmq_differs("Web-STOMP closes on DISCONNECT without the RECEIPT")
def test_disconnect_receipt_then_close(wsc):
    r = wsc.raw()
    stomp_connect(r)
    r.send_frame("DISCONNECT", [("receipt", "bye-1")])
    f = r.recv_frame()
    assert f.cmd == "RECEIPT" and f["receipt-id"] == "bye-1", f
    frames, closed = r.recv_until_closed(5)
    assert closed and not frames, frames
    assert r.close_frame is not None and r.close_frame.close_code in (None, 1000), (
        "after DISCONNECT the server closed TCP without a close frame (browser: 1006) %r"
        % r.close_frame)


@pytest.mark.rabbitmq_differs("Web-STOMP closes on DISCONNECT without the RECEIPT")
def test_library_sees_clean_close_after_disconnect(wsc):
    c = wsc()
    stomp_connect(c)
    c.send_frame("DISCONNECT", [("receipt", "d")])
    assert c.recv_frame().cmd == "RECEIPT"
    code, reason = c.client.wait_closed(5)
    assert code == 1000, "server close frame after DISCONNECT: %s %r (None: none sent)" % (code, reason)


def test_connect_timeout_over_ws(herald_factory):
    srv = herald_factory("--connect-timeout-ms", "300")
    from wsclient import RawWS
    r = RawWS(ws_addr(srv))
    try:
        frames, closed = r.recv_until_closed(3)
        assert closed, "no CONNECT for 3 s and still open"
    finally:
        r.close()


@pytest.mark.herald_only
def test_server_shutdown_closes_ws_clients(herald_factory):
    srv = herald_factory()
    from wsclient import RawWS
    r = RawWS(ws_addr(srv))
    try:
        stomp_connect(r)
        srv.expect_exit = True
        srv.signal(signal.SIGTERM)
        frames, closed = r.recv_until_closed(10)
        assert closed
        assert r.close_frame is not None, "shutdown dropped WebSocket clients without a close frame"
        assert r.close_frame.close_code in (1000, 1001, 1012), r.close_frame
    finally:
        r.close()


# --- the byte stream: splitting and batching ------------------------------------------------------

def test_several_frames_in_one_message(wsc):
    c = wsc()
    q = "/queue/" + uid("batch")
    batch = (frame_bytes("CONNECT", [("accept-version", "1.2"), ("host", "/"), ("login", "guest"),
                                     ("passcode", "guest")]) +
             frame_bytes("SUBSCRIBE", [("id", "s1"), ("destination", q)]) +
             b"\n" +
             frame_bytes("SEND", [("destination", q)], b"one") +
             b"\r\n\n" +
             frame_bytes("SEND", [("destination", q), ("receipt", "r2")], b"two"))
    c.send(batch)
    got = c.recv_frames(4)
    assert got[0].cmd == "CONNECTED"
    rest = sorted((f.cmd, f.body) for f in got[1:])
    assert rest == [("MESSAGE", b"one"), ("MESSAGE", b"two"), ("RECEIPT", b"")], got


def test_one_frame_split_over_many_messages(wsc):
    c = wsc()
    stomp_connect(c)
    q = "/queue/" + uid("split")
    subscribe(c, q)
    frame = frame_bytes("SEND", [("destination", q), ("content-type", "text/plain"),
                                 ("x-h", "v")], "byte by byte é".encode())
    # one WebSocket message per byte that keeps the UTF-8 intact (é is two bytes: keep whole)
    pieces = []
    i = 0
    while i < len(frame):
        n = 2 if frame[i] == 0xC3 else 1
        pieces.append(frame[i:i + n])
        i += n
    for p in pieces:
        c.send(p)
    m = recv_message(c)
    assert m.body == "byte by byte é".encode() and m["x-h"] == "v"


@pytest.mark.parametrize("cut", ["command", "header", "blank", "body", "before-nul"])
def test_frame_split_at_interesting_points(wsc, cut):
    c = wsc(binary=True)
    stomp_connect(c)
    q = "/queue/" + uid("cut")
    subscribe(c, q)
    body = b"\x00binary\x00body\x00"
    frame = frame_bytes("SEND", [("destination", q), ("content-length", str(len(body)))], body)
    pos = {"command": 2, "header": frame.index(b"destination") + 5,
           "blank": frame.index(b"\n\n") + 1, "body": frame.index(b"binary"),
           "before-nul": len(frame) - 1}[cut]
    c.send(frame[:pos])
    time.sleep(0.05)
    c.send(frame[pos:])
    assert recv_message(c).body == body


def test_message_ending_one_frame_and_starting_the_next(wsc):
    c = wsc()
    stomp_connect(c)
    q = "/queue/" + uid("overlap")
    subscribe(c, q)
    stream = b"".join(frame_bytes("SEND", [("destination", q)], b"f%d" % i) for i in range(10))
    step = 17
    for i in range(0, len(stream), step):
        c.send(stream[i:i + step])
    assert [recv_message(c).body for _ in range(10)] == [b"f%d" % i for i in range(10)]


# --- heart-beats over WebSocket --------------------------------------------------------------------

def test_client_eol_messages_are_heartbeats(wsc):
    c = wsc()
    c.send(b"\n")			# before CONNECT too
    stomp_connect(c)
    q = "/queue/" + uid("hb")
    subscribe(c, q)
    for eol in (b"\n", b"\r\n", b"\n\n\n"):
        c.send(eol)
    send(c, q, "after-eols")
    assert recv_message(c).body == b"after-eols"


def test_server_sends_heartbeat_eols_as_ws_messages(wsc):
    c = wsc()
    f = stomp_connect(c, heart_beat=(0, 100))
    assert f["heart-beat"].split(",")[0] != "0", f
    period = int(f["heart-beat"].split(",")[0])
    time.sleep(1.0)
    try:
        c.recv_frame(0.05)
    except Timeout:
        pass
    assert c.heartbeats >= int(1000 / period) // 2, \
        "only %d heart-beats in 1 s at %d ms" % (c.heartbeats, period)
    beats = [(k, p) for k, p in c.received[1:]]
    assert beats and all(k == "text" and only_eols(p) for k, p in beats), beats[:5]


def test_client_heartbeats_keep_the_ws_session_alive_and_silence_drops_it(wsc):
    c = wsc()
    f = stomp_connect(c, heart_beat=(300, 0))
    expect = int(f["heart-beat"].split(",")[1])
    assert expect >= 300, f
    q = "/queue/" + uid("hb")
    subscribe(c, q)
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        c.send(b"\n")
        time.sleep(expect / 1000 / 4)
    send(c, q, "still-here")
    assert recv_message(c).body == b"still-here"
    # silence: dropped after a few periods
    t0 = time.monotonic()
    frames, closed = c.recv_until_closed(expect / 1000 * 10 + 2)
    assert closed, "silent client kept for %.1fs" % (time.monotonic() - t0)
    assert any(fr.cmd == "ERROR" for fr in frames), frames


def test_ws_ping_counts_as_client_activity(wsc):
    # any bytes from the client are activity; a browser stack may only ping
    c = wsc()
    f = stomp_connect(c, heart_beat=(300, 0))
    expect = int(f["heart-beat"].split(",")[1])
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        c.client.ping(b"k")
        time.sleep(expect / 1000 / 4)
    q = "/queue/" + uid("p")
    subscribe(c, q)


# --- cross-transport ---------------------------------------------------------------------------------

def test_tcp_publisher_to_ws_subscriber_queue(herald, raws, wsc):
    w = wsc()
    stomp_connect(w)
    q = "/queue/" + uid("jack")
    subscribe(w, q)
    t = tcp(herald, raws)
    send(t, q, '{"from":"backend"}', headers=[("content-type", "text/plain"), ("x-app", "1")],
         receipt=True)
    m = recv_message(w)
    assert m.body == b'{"from":"backend"}' and m["x-app"] == "1" and m["content-type"] == "text/plain"


def test_ws_publisher_to_tcp_subscriber_queue(herald, raws, wsc):
    t = tcp(herald, raws)
    q = "/queue/" + uid("svc")
    subscribe(t, q)
    w = wsc()
    stomp_connect(w)
    send(w, q, "from the browser", headers=[("content-type", "text/plain")], receipt=True)
    m = recv_message(t)
    assert m.body == b"from the browser" and m["content-type"] == "text/plain"


def test_queue_message_waits_for_ws_consumer(herald, raws, wsc):
    q = "/queue/" + uid("later")
    t = tcp(herald, raws)
    send(t, q, "held", receipt=True)
    w = wsc()
    stomp_connect(w)
    subscribe(w, q, receipt=False)
    assert recv_message(w).body == b"held"


def test_topic_reaches_ws_and_tcp_subscribers(herald, raws, wsc):
    topic = "/topic/" + uid("news")
    ws_subs = [wsc() for _ in range(2)]
    for w in ws_subs:
        stomp_connect(w)
        subscribe(w, topic)
    t_sub = tcp(herald, raws)
    subscribe(t_sub, topic)
    t_pub = tcp(herald, raws)
    send(t_pub, topic, "tcp-to-all", receipt=True)
    w_pub = wsc()
    stomp_connect(w_pub)
    send(w_pub, topic, "ws-to-all", receipt=True)
    for c in ws_subs + [t_sub]:
        assert [recv_message(c).body for _ in range(2)] == [b"tcp-to-all", b"ws-to-all"]


def test_topic_wildcards_over_ws(herald, raws, wsc):
    base = uid("t")
    w = wsc()
    stomp_connect(w)
    subscribe(w, "/topic/%s.*.x" % base)
    t = tcp(herald, raws)
    send(t, "/topic/%s.a.b" % base, "no")
    send(t, "/topic/%s.a.x" % base, "yes", receipt=True)
    m = recv_message(w)
    assert m.body == b"yes" and m["destination"] == "/topic/%s.a.x" % base


def test_queue_round_robin_between_ws_and_tcp(herald, raws, wsc):
    q = "/queue/" + uid("rr")
    w = wsc()
    stomp_connect(w)
    subscribe(w, q)
    t = tcp(herald, raws)
    subscribe(t, q)
    pub = tcp(herald, raws)
    for i in range(20):
        send(pub, q, "m%02d" % i)
    send(pub, q, "m20", receipt=True)
    got_w, got_t = [], []
    deadline = time.monotonic() + 5
    while len(got_w) + len(got_t) < 21 and time.monotonic() < deadline:
        for c, got in ((w, got_w), (t, got_t)):
            try:
                got.append(recv_message(c, 0.05).body)
            except Timeout:
                pass
    assert sorted(got_w + got_t) == [b"m%02d" % i for i in range(21)]
    assert abs(len(got_w) - len(got_t)) <= 1, (got_w, got_t)
    assert got_w == sorted(got_w) and got_t == sorted(got_t)


def test_many_messages_tcp_to_ws_in_order(herald, raws, wsc):
    q = "/queue/" + uid("order")
    w = wsc()
    stomp_connect(w)
    subscribe(w, q)
    pub = tcp(herald, raws)
    n = 1000
    pub.send(b"".join(frame_bytes("SEND", [("destination", q)], b"%04d" % i) for i in range(n)))
    bodies = [recv_message(w).body for _ in range(n)]
    assert bodies == [b"%04d" % i for i in range(n)]


@pytest.mark.parametrize("direction", ["tcp->ws", "ws->tcp"])
def test_large_message_across_transports(herald, raws, wsc, direction):
    q = "/queue/" + uid("big")
    body = (b"0123456789abcdef" * 65536)		# 1 MiB
    w = wsc()
    stomp_connect(w)
    t = tcp(herald, raws)
    if direction == "tcp->ws":
        subscribe(w, q)
        send(t, q, body, receipt=True)
        assert recv_message(w, 10).body == body
    else:
        subscribe(t, q)
        send(w, q, body, receipt=True)
        assert recv_message(t, 10).body == body


def test_client_ack_over_ws_and_redelivery_to_tcp_after_close_handshake(herald, raws, wsc):
    q = "/queue/" + uid("ack")
    w = wsc()
    stomp_connect(w)
    subscribe(w, q, ack="client-individual")
    pub = tcp(herald, raws)
    send(pub, q, "acked")
    send(pub, q, "unacked", receipt=True)
    m1, m2 = recv_message(w), recv_message(w)
    assert (m1.body, m2.body) == (b"acked", b"unacked")
    w.send_frame("ACK", [("id", m1["ack"]), ("receipt", "a1")])
    assert w.recv_frame().cmd == "RECEIPT"
    other = tcp(herald, raws)
    subscribe(other, q, ack="client-individual")
    assert_nothing(other, 0.3)		# still held by its connected owner
    w.client.close(1000, "tab closed")
    m = recv_message(other)
    assert m.body == b"unacked" and m.get("redelivered") == "true", m
    assert_nothing(other, 0.3)


def test_unacked_redelivered_after_ws_connection_drops(herald, raws, wsc):
    q = "/queue/" + uid("drop")
    w = wsc()
    stomp_connect(w)
    subscribe(w, q, ack="client")
    pub = tcp(herald, raws)
    send(pub, q, "in-flight", receipt=True)
    assert recv_message(w).body == b"in-flight"
    w.client.abort()		# no closing handshake: the browser tab crashed
    other = wsc()
    stomp_connect(other)
    subscribe(other, q, ack="auto")
    m = recv_message(other)
    assert m.body == b"in-flight" and m.get("redelivered") == "true", m


def test_nack_over_ws_requeues(herald, raws, wsc):
    q = "/queue/" + uid("nack")
    w = wsc()
    stomp_connect(w)
    subscribe(w, q, ack="client-individual")
    pub = tcp(herald, raws)
    send(pub, q, "retry", receipt=True)
    m = recv_message(w)
    w.send_frame("NACK", [("id", m["ack"])])
    m2 = recv_message(w)
    assert m2.body == b"retry" and m2.get("redelivered") == "true", m2


def test_transaction_over_ws(herald, raws, wsc):
    q = "/queue/" + uid("tx")
    t = tcp(herald, raws)
    subscribe(t, q)
    w = wsc()
    stomp_connect(w)
    w.send_frame("BEGIN", [("transaction", "tx1")])
    send(w, q, "in-tx", headers=[("transaction", "tx1")])
    assert_nothing(t, 0.3)
    w.send_frame("COMMIT", [("transaction", "tx1"), ("receipt", "c1")])
    assert w.recv_frame().cmd == "RECEIPT"
    assert recv_message(t).body == b"in-tx"


# --- text or binary: decided by the body --------------------------------------------------------------

NON_UTF8 = [b"\xff\xfe\xfd", b"\x89PNG\r\n\x1a\n\x00\x00", b"ok until \xe4\xb8", b"\xed\xa0\x80"]


@pytest.mark.rabbitmq_differs("every server frame is a text message")
@pytest.mark.parametrize("body", NON_UTF8)
def test_non_utf8_body_arrives_as_binary_message(herald, raws, wsc, body):
    q = "/queue/" + uid("bin")
    w = wsc()
    stomp_connect(w)
    subscribe(w, q)
    send(tcp(herald, raws), q, body, headers=[("content-type", "application/octet-stream")],
         receipt=True)
    m = recv_message(w)
    assert m.body == body
    kinds = message_kinds(w)
    assert len(kinds) == 1 and kinds[0][0] == "binary", \
        "non-UTF-8 body sent as a %s message (browsers close text with invalid UTF-8: 1007)" \
        % kinds[0][0]
    assert kinds[0][1].count(b"MESSAGE\n") == 1


@pytest.mark.parametrize("body", ["plain ascii", "中文 ünïcödé 😀", "", '{"json":true}',
                                  "x" * 70000])
def test_utf8_body_arrives_as_text_message(herald, raws, wsc, body):
    q = "/queue/" + uid("txt")
    w = wsc()
    stomp_connect(w)
    subscribe(w, q)
    send(tcp(herald, raws), q, body, headers=[("content-type", "text/plain")], receipt=True)
    m = recv_message(w)
    assert m.body == body.encode("utf-8")
    kinds = message_kinds(w)
    assert [k for k, _ in kinds] == ["text"]


@pytest.mark.rabbitmq_differs("every server frame is a text message")
def test_text_and_binary_interleaved_in_order(herald, raws, wsc):
    q = "/queue/" + uid("mix")
    w = wsc()
    stomp_connect(w)
    subscribe(w, q)
    t = tcp(herald, raws)
    bodies = [b"text-1", b"\xff bin-1", "text-2 é".encode(), b"\x80 bin-2", b"text-3"]
    for b in bodies[:-1]:
        send(t, q, b)
    send(t, q, bodies[-1], receipt=True)
    assert [recv_message(w).body for _ in bodies] == bodies
    assert [k for k, _ in message_kinds(w)] == ["text", "binary", "text", "binary", "text"]


@pytest.mark.rabbitmq_differs("every server frame is a text message")
def test_binary_body_on_topic_is_binary_for_every_ws_subscriber(herald, raws, wsc):
    topic = "/topic/" + uid("bin")
    subs = [wsc() for _ in range(3)]
    for w in subs:
        stomp_connect(w)
        subscribe(w, topic)
    t_sub = tcp(herald, raws)
    subscribe(t_sub, topic)
    body = bytes(range(256))
    send(tcp(herald, raws), topic, body, receipt=True)
    for w in subs:
        assert recv_message(w).body == body
        assert [k for k, _ in message_kinds(w)] == ["binary"]
    assert recv_message(t_sub).body == body


@pytest.mark.rabbitmq_differs("every server frame is a text message")
def test_binary_ws_publisher_reaches_tcp_and_ws(herald, raws, wsc):
    q = "/topic/" + uid("wsbin")
    t = tcp(herald, raws)
    subscribe(t, q)
    w_sub = wsc()
    stomp_connect(w_sub)
    subscribe(w_sub, q)
    w_pub = wsc(binary=True)
    stomp_connect(w_pub)
    body = b"\x00\x01\xfe\xff"
    send(w_pub, q, body, receipt=True)
    assert recv_message(t).body == body
    assert recv_message(w_sub).body == body
    assert [k for k, _ in message_kinds(w_sub)] == ["binary"]


def test_nul_in_utf8_body_arrives_intact(herald, raws, wsc):
    q = "/queue/" + uid("nul")
    w = wsc()
    stomp_connect(w)
    subscribe(w, q)
    body = b"a\x00b\x00c"
    send(tcp(herald, raws), q, body, receipt=True)
    assert recv_message(w).body == body


@pytest.mark.rabbitmq_differs("every server frame is a text message")
def test_non_utf8_header_value_arrives_as_binary_message(herald, raws, wsc):
    """Not only the body: a text message with a header whose bytes are not UTF-8 makes a
    browser close the socket (1007) just the same."""
    q = "/queue/" + uid("hbin")
    w = wsc()
    stomp_connect(w)
    subscribe(w, q)
    send(tcp(herald, raws), q, "ok", headers=[("x-h", b"\xff\xfe")], receipt=True)
    m = recv_message(w)
    assert m.body == b"ok"
    assert [k for k, _ in message_kinds(w)] == ["binary"]


def test_stomp_1_0_ws_subscriber_gets_whole_messages_when_headers_had_escapes(herald, raws, wsc):
    """A 1.0 reader gets its own tail with the escapes undone, shorter than the shared one;
    every WebSocket message must announce that length, or it runs into the next one."""
    q = "/queue/" + uid("v10")
    w = wsc(subprotocols=["v10.stomp"])
    f = w.connect(version=None)
    assert f.cmd == "CONNECTED" and f.get("version", "1.0") == "1.0", f
    subscribe(w, q)
    t = tcp(herald, raws)
    for i in range(3):
        send(t, q, "m%d" % i, headers=[("x", "a\\cb\\cc\\cd")], receipt=(i == 2))
    assert [recv_message(w).body for _ in range(3)] == [b"m0", b"m1", b"m2"]
    kinds = message_kinds(w)
    assert len(kinds) == 3, kinds
    for _, payload in kinds:
        assert payload.count(b"MESSAGE\n") == 1 and payload.endswith(b"\x00"), payload
        assert b"\nx:a:b:c:d\n" in payload, payload
