"""
Receipts and transactions: RECEIPT for any frame with `receipt`; a SEND's receipt only once
the message is held; BEGIN/COMMIT/ABORT buffer SENDs and ACKs; a closed connection aborts
its transactions; DISCONNECT with receipt. Issue 3 "STOMP semantics"; STOMP 1.2 "RECEIPT",
"BEGIN", "COMMIT", "ABORT", "DISCONNECT"; RABBITMQ-REFERENCE "Acks" and spec breaks 2 and 3.
"""

import time

import pytest

from helpers import uid
from stompraw import Timeout, frame_bytes

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive: a SEND's receipt once the queue's owner shard holds it; transactions across
# shards.
pytestmark = [pytest.mark.herald_shared, pytest.mark.shard_sensitive]


def queue():
    return "/queue/" + uid("q")


def raw_session(herald, raws, version="1.2"):
    r = raws(herald)
    f = r.connect(version=version)
    assert f.cmd == "CONNECTED", f
    return r


def expect_receipt(r, rid):
    f = r.recv_frame()
    assert f.cmd == "RECEIPT", f
    assert f["receipt-id"] == rid, f
    return f


def test_every_client_frame_kind_gets_its_receipt_in_order(herald, raws):
    q = queue()
    r = raw_session(herald, raws)
    r.send_frame("SUBSCRIBE", [("destination", q), ("id", "s1"), ("ack", "client-individual"),
                               ("receipt", "r-sub")])
    expect_receipt(r, "r-sub")
    r.send_frame("SEND", [("destination", q), ("receipt", "r-send")], b"one")
    frames = r.recv_frames(2)
    assert sorted(f.cmd for f in frames) == ["MESSAGE", "RECEIPT"], frames
    msg = [f for f in frames if f.cmd == "MESSAGE"][0]
    assert [f for f in frames if f.cmd == "RECEIPT"][0]["receipt-id"] == "r-send"
    r.send_frame("NACK", [("id", msg["ack"]), ("receipt", "r-nack")])
    frames = r.recv_frames(2)
    assert sorted(f.cmd for f in frames) == ["MESSAGE", "RECEIPT"], frames
    again = [f for f in frames if f.cmd == "MESSAGE"][0]
    r.send_frame("ACK", [("id", again["ack"]), ("receipt", "r-ack")])
    expect_receipt(r, "r-ack")
    r.send_frame("BEGIN", [("transaction", "tx1"), ("receipt", "r-begin")])
    expect_receipt(r, "r-begin")
    r.send_frame("COMMIT", [("transaction", "tx1"), ("receipt", "r-commit")])
    expect_receipt(r, "r-commit")
    r.send_frame("BEGIN", [("transaction", "tx2"), ("receipt", "r-begin2")])
    expect_receipt(r, "r-begin2")
    r.send_frame("ABORT", [("transaction", "tx2"), ("receipt", "r-abort")])
    expect_receipt(r, "r-abort")
    r.send_frame("UNSUBSCRIBE", [("id", "s1"), ("receipt", "r-unsub")])
    expect_receipt(r, "r-unsub")
    r.send_frame("DISCONNECT", [("receipt", "r-disc")])
    expect_receipt(r, "r-disc")
    assert r.is_closed(2.0), "server kept the connection open after DISCONNECT's RECEIPT"


def test_receipt_id_with_escaped_characters_round_trips(herald, raws):
    r = raw_session(herald, raws)
    rid = "odd:id\\with\nstuff"
    r.send_frame("BEGIN", [("transaction", "t"), ("receipt", rid)], escape=True)
    f = r.recv_frame()
    assert f.cmd == "RECEIPT"
    assert f["receipt-id"] == rid  # Frame.h decodes 1.2 escapes


def test_send_receipt_means_the_message_is_held(herald, clients, raws):
    q = queue()
    r = raw_session(herald, raws)
    r.send_frame("SEND", [("destination", q), ("receipt", "held")], b"safe")
    expect_receipt(r, "held")
    r.reset()  # publisher vanishes right after the receipt
    sub = clients(herald)
    sub.subscribe(q)
    assert sub.wait_messages(1)[0].body == "safe"


def test_disconnect_receipt_comes_after_earlier_frames_took_effect(herald, clients, raws):
    q = queue()
    r = raw_session(herald, raws)
    for i in range(20):
        r.send_frame("SEND", [("destination", q)], b"m%d" % i)
    r.send_frame("DISCONNECT", [("receipt", "bye")])
    expect_receipt(r, "bye")
    sub = clients(herald)
    sub.subscribe(q)
    sub.wait_messages(20)
    assert sub.bodies() == ["m%d" % i for i in range(20)]


def test_stomp_py_disconnect_with_receipt(herald, clients):
    c = clients(herald)
    c.subscribe(queue())
    c.disconnect()
    assert c.listener.disconnected


def sentinel_check(sub, expect_bodies, pub, dest):
    """sub got exactly expect_bodies; a marker from pub to dest (sub's subscription) comes
    after the quiet period, so anything still on its way would have come before it."""
    sub.wait_messages(len(expect_bodies))
    sub.quiet(len(expect_bodies), marker=(pub, dest))
    assert sub.bodies() == expect_bodies


def test_transaction_sends_are_held_until_commit(herald, clients):
    q = queue()
    sub = clients(herald)
    sub.subscribe(q)
    pub = clients(herald)
    tx = pub.conn.begin()
    pub.send(q, "t1", headers={"transaction": tx})
    pub.send(q, "t2", headers={"transaction": tx})
    pub.send(q, "outside", receipt=True)
    sentinel_check(sub, ["outside"], pub, q)
    rid = uid("commit")
    pub.conn.commit(tx, headers={"receipt": rid})
    pub.wait_receipt(rid)
    sub.wait_messages(3)
    assert sub.bodies() == ["outside", "t1", "t2"]


def test_aborted_transaction_sends_are_discarded(herald, clients):
    q = queue()
    sub = clients(herald)
    sub.subscribe(q)
    pub = clients(herald)
    tx = pub.conn.begin()
    pub.send(q, "t1", headers={"transaction": tx})
    pub.send(q, "t2", headers={"transaction": tx})
    rid = uid("abort")
    pub.conn.abort(tx, headers={"receipt": rid})
    pub.wait_receipt(rid)
    pub.send(q, "after", receipt=True)
    sentinel_check(sub, ["after"], pub, q)


def test_transaction_on_a_topic(herald, clients):
    t = "/topic/" + uid("t")
    sub = clients(herald)
    sub.subscribe(t)
    pub = clients(herald)
    tx = pub.conn.begin()
    for i in range(3):
        pub.send(t, "t%d" % i, headers={"transaction": tx})
    pub.send(t, "outside", receipt=True)
    sentinel_check(sub, ["outside"], pub, t)
    rid = uid("commit")
    pub.conn.commit(tx, headers={"receipt": rid})
    pub.wait_receipt(rid)
    sub.wait_messages(4)
    assert sub.bodies() == ["outside", "t0", "t1", "t2"]


def test_two_transactions_on_one_connection_are_independent(herald, clients):
    q = queue()
    sub = clients(herald)
    sub.subscribe(q)
    pub = clients(herald)
    ta = pub.conn.begin()
    tb = pub.conn.begin()
    pub.send(q, "a1", headers={"transaction": ta})
    pub.send(q, "b1", headers={"transaction": tb})
    pub.send(q, "a2", headers={"transaction": ta})
    rid = uid("r")
    pub.conn.abort(ta)
    pub.conn.commit(tb, headers={"receipt": rid})
    pub.wait_receipt(rid)
    pub.send(q, "end", receipt=True)
    sentinel_check(sub, ["b1", "end"], pub, q)


def test_closed_connection_aborts_its_transaction(herald, clients, raws):
    q = queue()
    sub = clients(herald)
    sub.subscribe(q)
    r = raw_session(herald, raws)
    r.send_frame("BEGIN", [("transaction", "tx"), ("receipt", "b")])
    expect_receipt(r, "b")
    r.send_frame("SEND", [("destination", q), ("transaction", "tx")], b"ghost")
    time.sleep(0.1)
    r.close()
    time.sleep(0.3)
    other = clients(herald)
    other.send(q, "real", receipt=True)
    sentinel_check(sub, ["real"], other, q)


def test_acks_in_a_transaction_apply_at_commit(herald, clients):
    q = queue()
    pub = clients(herald)
    pub.send_many(q, ["m1", "m2"])
    a = clients(herald)
    a.subscribe(q, ack="client-individual")
    msgs = a.wait_messages(2)
    tx = a.conn.begin()
    a.ack(msgs[0], transaction=tx)
    a.ack(msgs[1], transaction=tx)
    rid = uid("commit")
    a.conn.commit(tx, headers={"receipt": rid})
    a.wait_receipt(rid)
    a.kill()
    b = clients(herald)
    b.subscribe(q)
    pub.send(q, "sentinel", receipt=True)
    sentinel_check(b, ["sentinel"], pub, q)


def test_acks_in_an_aborted_transaction_vanish(herald, clients):
    q = queue()
    pub = clients(herald)
    pub.send_many(q, ["m1", "m2"])
    a = clients(herald)
    a.subscribe(q, ack="client-individual")
    msgs = a.wait_messages(2)
    tx = a.conn.begin()
    a.ack(msgs[0], transaction=tx)
    rid = uid("abort")
    a.conn.abort(tx, headers={"receipt": rid})
    a.wait_receipt(rid)
    a.kill()
    b = clients(herald)
    b.subscribe(q)
    got = b.wait_messages(2)
    assert [m.body for m in got] == ["m1", "m2"]
    assert all(m.headers.get("redelivered") == "true" for m in got)


def test_ack_in_an_uncommitted_transaction_is_not_applied_when_the_connection_dies(
        herald, clients):
    q = queue()
    pub = clients(herald)
    pub.send_many(q, ["m1"])
    a = clients(herald)
    a.subscribe(q, ack="client-individual")
    m = a.wait_messages(1)[0]
    tx = a.conn.begin()
    a.ack(m, transaction=tx, receipt=uid("ack"))
    a.kill()
    b = clients(herald)
    b.subscribe(q)
    got = b.wait_messages(1)[0]
    assert got.body == "m1" and got.headers.get("redelivered") == "true"


@pytest.mark.rabbitmq_differs("RabbitMQ holds a transactional SEND's RECEIPT until COMMIT")
def test_receipt_of_a_send_in_a_transaction_comes_before_commit(herald, raws):
    q = queue()
    r = raw_session(herald, raws)
    r.send_frame("BEGIN", [("transaction", "tx")])
    r.send_frame("SEND", [("destination", q), ("transaction", "tx"), ("receipt", "staged")],
                 b"x")
    f = r.recv_frame(2.0)
    assert f.cmd == "RECEIPT" and f["receipt-id"] == "staged", f


@pytest.mark.rabbitmq_differs("RabbitMQ keeps the connection open after an ERROR")
@pytest.mark.parametrize("cmd", ["COMMIT", "ABORT"])
def test_commit_or_abort_of_an_unknown_transaction_is_an_error(herald, raws, cmd):
    r = raw_session(herald, raws)
    r.send_frame(cmd, [("transaction", "never-begun")])
    err = r.expect_error_then_close()
    assert err["message"]


@pytest.mark.rabbitmq_differs("RabbitMQ's ERROR frames never carry receipt-id")
@pytest.mark.parametrize("frame", [
    [("SEND", [("destination", "/nowhere/x"), ("receipt", "bad-1")], b"x")],
    [("SUBSCRIBE", [("destination", "/queue/x"), ("receipt", "bad-1")], b"")],
    [("COMMIT", [("transaction", "nope"), ("receipt", "bad-1")], b"")],
    [("ACK", [("id", "no-such-ack"), ("receipt", "bad-1")], b"")],
])
def test_error_carries_receipt_id_of_the_offending_frame(herald, raws, frame):
    r = raw_session(herald, raws)
    for cmd, headers, body in frame:
        r.send_frame(cmd, headers, body)
    err = r.expect_error_then_close()
    assert err["message"]
    assert err.get("receipt-id") == "bad-1", err


# --- receipts owed when a later frame is refused; frames after DISCONNECT ----------------------

def test_receipts_owed_go_out_before_the_error_of_a_later_frame(herald, raws):
    """A SEND's and a SUBSCRIBE's receipts wait for their owner shard; a bad frame pipelined
    after them must not swallow them, or the client would think those frames failed too and
    send them again (STOMP 1.2 "RECEIPT": every processed frame with `receipt` gets one)."""
    q = queue()
    r = raw_session(herald, raws)
    r.send(frame_bytes("SEND", [("destination", q), ("receipt", "r1")], b"body1")
           + frame_bytes("SUBSCRIBE", [("destination", queue()), ("id", "s"),
                                       ("receipt", "r2")])
           + frame_bytes("FOO", [("receipt", "r3")]))
    expect_receipt(r, "r1")
    expect_receipt(r, "r2")
    f = r.recv_frame()
    assert f.cmd == "ERROR" and f["receipt-id"] == "r3", f
    assert r.is_closed(2.0)
    sub = raw_session(herald, raws)
    sub.send_frame("SUBSCRIBE", [("destination", q), ("id", "s")])
    m = sub.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"body1", m


def test_frames_after_disconnect_are_not_processed(herald, raws):
    """The client MUST NOT send frames after DISCONNECT (STOMP 1.2); RabbitMQ stops there.
    A SEND and a SUBSCRIBE pipelined after it are dropped."""
    q = queue()
    r = raw_session(herald, raws)
    r.send(frame_bytes("SEND", [("destination", q), ("receipt", "r1")], b"before")
           + frame_bytes("DISCONNECT", [("receipt", "d")])
           + frame_bytes("SEND", [("destination", q)], b"after")
           + frame_bytes("SUBSCRIBE", [("destination", q), ("id", "late")]))
    expect_receipt(r, "r1")
    expect_receipt(r, "d")
    assert r.is_closed(2.0)
    sub = raw_session(herald, raws)
    sub.send_frame("SUBSCRIBE", [("destination", q), ("id", "s"), ("receipt", "rs")])
    frames = sub.recv_frames(2)
    bodies = [f.body for f in frames if f.cmd == "MESSAGE"]
    assert bodies == [b"before"], frames
    with pytest.raises(Timeout):
        sub.recv_frame(0.5)


def test_ack_of_an_unknown_id_inside_a_transaction_is_an_error(herald, raws):
    """As outside a transaction (RABBITMQ-REFERENCE "Acks"): refused when sent, not dropped
    silently at COMMIT."""
    r = raw_session(herald, raws)
    r.send_frame("BEGIN", [("transaction", "t"), ("receipt", "b")])
    expect_receipt(r, "b")
    r.send_frame("ACK", [("id", "bogus"), ("transaction", "t"), ("receipt", "a")])
    f = r.recv_frame()
    assert f.cmd == "ERROR" and f["receipt-id"] == "a", f
    assert "bogus" in f.body.decode()
    assert r.is_closed(2.0)


@pytest.mark.parametrize("with_disconnect", [False, True])
def test_half_close_after_a_receipted_send_still_gets_the_receipt(herald, raws, with_disconnect):
    """shutdown(SHUT_WR) right after SEND: the SEND is held, so its RECEIPT must still come,
    or the client resends it and the queue holds it twice."""
    import socket
    q = queue()
    r = raw_session(herald, raws)
    data = frame_bytes("SEND", [("destination", q), ("receipt", "r")], b"once")
    if with_disconnect:
        data += frame_bytes("DISCONNECT", [("receipt", "bye")])
    r.send(data)
    r.sock.shutdown(socket.SHUT_WR)
    expect_receipt(r, "r")
    if with_disconnect:
        expect_receipt(r, "bye")
    assert r.is_closed(2.0)
    sub = raw_session(herald, raws)
    sub.send_frame("SUBSCRIBE", [("destination", q), ("id", "s")])
    assert sub.recv_frame().body == b"once"
    with pytest.raises(Timeout):
        sub.recv_frame(0.3)
