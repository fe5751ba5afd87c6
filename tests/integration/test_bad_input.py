"""
Bad input over raw sockets: each kind gets an ERROR frame with a clear `message` header, the
connection then closes, and a fresh client still works (issue 3 "Errors"; STOMP 1.2
"ERROR": the server MUST close the connection just after sending it). RabbitMQ keeps
connections open after ERROR, so these are marked rabbitmq_differs.
"""

import socket
import time

import pytest

from helpers import assert_server_works, uid
from stompraw import RawStomp

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# backend_sensitive: resets, half-closes and the close after an ERROR are connection handling; the
# tests where other clients' deliveries are watched are shard_sensitive too.
pytestmark = [pytest.mark.herald_shared, pytest.mark.backend_sensitive]

keeps_open = pytest.mark.rabbitmq_differs("RabbitMQ keeps the connection open after an ERROR")

# (id, bytes sent after a 1.2 CONNECT)
BAD_FRAMES = [
    ("unknown-command", b"FROBNICATE\n\n\0"),
    ("lowercase-command", b"send\ndestination:/queue/a\n\nx\0"),
    ("server-command-MESSAGE", b"MESSAGE\ndestination:/queue/a\nmessage-id:1\n\nx\0"),
    ("server-command-CONNECTED", b"CONNECTED\nversion:1.2\n\n\0"),
    ("server-command-RECEIPT", b"RECEIPT\nreceipt-id:1\n\n\0"),
    ("server-command-ERROR", b"ERROR\nmessage:hi\n\n\0"),
    ("send-without-destination", b"SEND\n\nx\0"),
    ("subscribe-without-destination", b"SUBSCRIBE\nid:1\n\n\0"),
    ("subscribe-without-id", b"SUBSCRIBE\ndestination:/queue/a\n\n\0"),
    ("unsubscribe-without-id", b"UNSUBSCRIBE\n\n\0"),
    ("ack-without-id", b"ACK\n\n\0"),
    ("nack-without-id", b"NACK\n\n\0"),
    ("ack-unknown-id", b"ACK\nid:does-not-exist\n\n\0"),
    ("begin-without-transaction", b"BEGIN\n\n\0"),
    ("commit-without-transaction", b"COMMIT\n\n\0"),
    ("abort-without-transaction", b"ABORT\n\n\0"),
    ("commit-unknown-transaction", b"COMMIT\ntransaction:nope\n\n\0"),
    ("send-unknown-transaction", b"SEND\ndestination:/queue/a\ntransaction:nope\n\nx\0"),
    ("header-without-colon", b"SEND\ndestination:/queue/a\nthis-line-has-no-colon\n\nx\0"),
    ("undefined-escape", b"SEND\ndestination:/queue/a\nx:a\\tb\n\nx\0"),
    ("trailing-backslash", b"SEND\ndestination:/queue/a\nx:ab\\\n\nx\0"),
    ("escape-in-name", b"SEND\ndestination:/queue/a\nx\\q:v\n\nx\0"),
    ("content-length-not-a-number", b"SEND\ndestination:/queue/a\ncontent-length:abc\n\nx\0"),
    ("content-length-negative", b"SEND\ndestination:/queue/a\ncontent-length:-1\n\nx\0"),
    ("content-length-overflow",
     b"SEND\ndestination:/queue/a\ncontent-length:99999999999999999999999\n\nx\0"),
    ("content-length-too-short", b"SEND\ndestination:/queue/a\ncontent-length:2\n\nhello\0"),
    ("unknown-destination-prefix-send", b"SEND\ndestination:/bogus/a\n\nx\0"),
    ("unknown-destination-prefix-subscribe", b"SUBSCRIBE\ndestination:/bogus/a\nid:1\n\n\0"),
    ("destination-without-prefix", b"SEND\ndestination:plainname\n\nx\0"),
    ("empty-destination", b"SEND\ndestination:\n\nx\0"),
    ("duplicate-subscription-id",
     b"SUBSCRIBE\ndestination:/queue/a\nid:1\n\n\0SUBSCRIBE\ndestination:/queue/b\nid:1\n\n\0"),
    # RABBITMQ-REFERENCE "MESSAGE frames": a SEND may not set message-id (RabbitMQ:
    # ERROR "'message-id' is not allowed on 'SEND'").
    ("send-with-message-id", b"SEND\ndestination:/queue/a\nmessage-id:client-chosen\n\nx\0"),
    ("bad-ack-mode", b"SUBSCRIBE\ndestination:/queue/a\nid:1\nack:sometimes\n\n\0"),
    ("binary-garbage", b"\x00\x01\x02\xff\xfe\n\n\0"),
    ("nul-in-command", b"SE\0ND\ndestination:/queue/a\n\nx\0"),
    ("second-connect", b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0"),
]


@keeps_open
@pytest.mark.parametrize("bad", [b for _, b in BAD_FRAMES], ids=[i for i, _ in BAD_FRAMES])
def test_bad_frame_gets_error_then_close_and_server_lives(herald, raws, bad):
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send(bad)
    err = r.expect_error_then_close()
    assert err.get("message"), "ERROR without a message header: %r" % err
    assert_server_works(herald.addr)


@keeps_open
@pytest.mark.parametrize("bad", [
    b"SEND\ndestination:/queue/a\n\nx\0",          # before CONNECT
    b"FROB\n\n\0",
    b"\xff\xfe\xfd\n\n\0",
], ids=["send", "unknown", "garbage"])
def test_bad_input_before_connect(herald, raws, bad):
    r = raws(herald)
    r.send(bad)
    err = r.expect_error_then_close()
    assert err.get("message")
    assert_server_works(herald.addr)


@keeps_open
@pytest.mark.parametrize("connect_first", [False, True])
def test_http_request_on_the_stomp_port_is_refused_without_waiting_for_a_nul(herald, raws,
                                                                             connect_first):
    """An HTTP client (a browser pointed at the wrong port) never sends NUL; the command
    line alone already shows this is no STOMP frame."""
    r = raws(herald)
    if connect_first:
        assert r.connect().cmd == "CONNECTED"
    r.send(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n")
    err = r.expect_error_then_close(timeout=3.0)
    assert err.get("message")
    assert_server_works(herald.addr)


@keeps_open
def test_subscribe_without_id_is_an_error_in_1_1(herald, raws):
    r = raws(herald)
    assert r.connect(version="1.1").cmd == "CONNECTED"
    r.send(b"SUBSCRIBE\ndestination:/queue/a\n\n\0")
    assert r.expect_error_then_close().get("message")


def test_subscribe_without_id_is_fine_in_1_0(herald, raws):
    q = "/queue/" + uid("noid")
    r = raws(herald)
    assert r.connect(version="1.0").cmd == "CONNECTED"
    r.send(b"SUBSCRIBE\ndestination:" + q.encode() + b"\nreceipt:s\n\n\0")
    f = r.recv_frame()
    assert f.cmd == "RECEIPT", f
    r.send(b"SEND\ndestination:" + q.encode() + b"\n\nhello\0")
    m = r.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"hello"


@keeps_open
@pytest.mark.parametrize("bad", [
    b"SEND\ndestination:/bogus/x\nreceipt:rcpt-7\n\nx\0",
    b"SUBSCRIBE\ndestination:/queue/x\nreceipt:rcpt-7\n\n\0",
    b"ACK\nid:nope\nreceipt:rcpt-7\n\n\0",
    b"FROB\nreceipt:rcpt-7\n\n\0",
    b"BEGIN\nreceipt:rcpt-7\n\n\0",
    b"UNSUBSCRIBE\nid:never-subscribed\nreceipt:rcpt-7\n\n\0",
], ids=["unknown-dest", "sub-no-id", "ack-unknown", "unknown-cmd", "begin-no-tx", "unsub-unknown"])
def test_error_names_the_receipt_of_the_bad_frame(herald, raws, bad):
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send(bad)
    err = r.expect_error_then_close()
    assert err.get("receipt-id") == "rcpt-7", err


@keeps_open
def test_unsubscribe_of_an_unknown_id_is_an_error(herald, raws):
    """RabbitMQ: "No subscription found"; a client that thinks it unsubscribed learns it
    never was subscribed under that id."""
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send(b"UNSUBSCRIBE\nid:nope\n\n\0")
    err = r.expect_error_then_close()
    assert err["message"] == "No subscription found", err
    assert_server_works(herald.addr)


@keeps_open
def test_unknown_destination_error_names_the_valid_prefixes(herald, raws):
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send(b"SEND\ndestination:/nowhere/x\n\nx\0")
    err = r.expect_error_then_close()
    text = err["message"] + err.body.decode("utf-8", "replace")
    assert "/queue/" in text and "/topic/" in text, err


@keeps_open
def test_long_unknown_destination_is_cut_at_a_character_boundary_in_the_error(herald, raws):
    """The ERROR quotes at most 256 bytes of the name; over WebSocket it is a text frame, so
    the cut must not split a character (a browser closes 1007 on invalid UTF-8)."""
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send(("SEND\ndestination:/nowhere/" + "é" * 200 + "\n\nx\0").encode("utf-8"))
    err = r.expect_error_then_close()
    err.body.decode("utf-8")  # raises on a split character
    assert "/nowhere/é" in err.body.decode("utf-8"), err


@pytest.mark.shard_sensitive
def test_nul_in_a_header_is_refused_and_never_reaches_subscribers(herald, raws):
    """Passed on, a NUL would split a subscriber's MESSAGE into a cut frame and a forged
    one; STOMP cannot escape it, so the SEND is refused."""
    t = "/topic/" + uid("nul")
    sub = raws(herald)
    assert sub.connect().cmd == "CONNECTED"
    sub.send(b"SUBSCRIBE\ndestination:" + t.encode() + b"\nid:s\nreceipt:r\n\n\0")
    assert sub.recv_frame().cmd == "RECEIPT"
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send(b"SEND\ndestination:" + t.encode() + b"\nx-a:hello\0MESSAGE\nx-b:1\nreceipt:x\n\n"
           b"real\0")
    err = r.expect_error_then_close()
    assert "NUL" in err["message"], err
    with pytest.raises(Exception):
        sub.recv_frame(0.5)


@keeps_open
def test_error_frame_is_well_formed(herald, raws):
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send(b"FROB\n\n\0")
    err = r.expect_error_then_close()
    assert err.raw.startswith(b"ERROR\n")
    if "content-length" in err.h:
        assert int(err["content-length"]) == len(err.body)


@keeps_open
def test_frames_after_the_bad_one_are_not_processed(herald, raws, clients):
    q = "/queue/" + uid("after-bad")
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send(b"FROB\n\n\0SEND\ndestination:" + q.encode() + b"\n\nmust-not-arrive\0")
    r.expect_error_then_close()
    c = clients(herald)
    c.subscribe(q)
    c.send(q, "sentinel", receipt=True)
    assert c.wait_messages(1)[0].body == "sentinel"
    c.quiet(1, marker=(c, q))


@pytest.mark.shard_sensitive
def test_other_sessions_are_undisturbed_by_bad_input(herald, raws, clients):
    q = "/queue/" + uid("undisturbed")
    c = clients(herald)
    c.subscribe(q)
    for _, bad in BAD_FRAMES[:10]:
        r = raws(herald)
        assert r.connect().cmd == "CONNECTED"
        r.send(bad)
        r.recv_until_closed(2.0)
    c.send(q, "fine", receipt=True)
    assert c.wait_messages(1)[0].body == "fine"


# --- connections that end badly: no ERROR is possible, but the server must survive -----

def test_peer_resets_mid_frame(herald):
    for cut in (1, 5, 20):
        r = RawStomp(herald.host, herald.port)
        wire = (b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0"
                b"SEND\ndestination:/queue/a\ncontent-length:100\n\nabc")
        r.send(wire[:len(wire) - cut])
        r.reset()
    assert_server_works(herald.addr)


def test_peer_half_closes_mid_frame(herald):
    r = RawStomp(herald.host, herald.port)
    assert r.connect().cmd == "CONNECTED"
    r.send(b"SEND\ndestination:/queue/a\n\npartial")
    r.sock.shutdown(socket.SHUT_WR)
    frames, closed = r.recv_until_closed(5.0)
    assert closed, "server kept a half-closed connection open"
    r.close()
    assert_server_works(herald.addr)


def test_connections_that_say_nothing(herald):
    socks = []
    for _ in range(50):
        s = socket.create_connection(herald.addr, timeout=5)
        socks.append(s)
    for s in socks:
        s.close()
    assert_server_works(herald.addr)


@pytest.mark.shard_sensitive
def test_peer_vanishes_with_unread_messages_pending(herald, clients):
    t = "/topic/" + uid("pending")
    r = RawStomp(herald.host, herald.port, rcvbuf=4096)
    assert r.connect().cmd == "CONNECTED"
    r.send_frame("SUBSCRIBE", [("destination", t), ("id", "s"), ("receipt", "x")])
    assert r.recv_frame().cmd == "RECEIPT"
    pub = clients(herald)
    pub.send_many(t, ["y" * 10000] * 50)
    r.reset()
    time.sleep(0.2)
    assert_server_works(herald.addr)


def test_random_garbage_never_takes_the_node_down(herald):
    import random
    rnd = random.Random(1234)
    for i in range(40):
        n = rnd.randint(1, 400)
        junk = bytes(rnd.getrandbits(8) for _ in range(n))
        r = RawStomp(herald.host, herald.port, timeout=2.0)
        if i % 2:
            assert r.connect().cmd == "CONNECTED"
        r.send(junk + b"\0\n\n\0")
        r.recv_until_closed(0.3)
        r.close()
    assert_server_works(herald.addr)
