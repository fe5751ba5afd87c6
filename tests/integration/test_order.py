"""
tests/integration/test_order.py - frames of one connection take effect in the order sent.

A client that writes SUBSCRIBE and then SEND to the same destination in one TCP write (no
receipt in between) must get its own message, as RabbitMQ delivers it: for topics, patterns
and queues, for STOMP 1.0 (SUBSCRIBE without id) as for 1.2, and on any shard count,
including more shards than a 32-bit mask could name.
"""

import pytest

from helpers import uid
from stompraw import RawStomp, frame_bytes

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive and backend_sensitive: frames of one TCP write take effect in order, on any
# shard count.
pytestmark = [pytest.mark.shard_sensitive, pytest.mark.backend_sensitive]

TRIES = 10


def subscribe_then_send(server, sub_dest, send_dest, version="1.2", with_id=True):
    """One write: SUBSCRIBE sub_dest, SEND send_dest; returns the MESSAGE frame received."""
    with RawStomp(*server.addr) as c:
        assert c.connect(version=version).cmd == "CONNECTED"
        sub = [("destination", sub_dest)] + ([("id", "s1")] if with_id else [])
        c.send(frame_bytes("SUBSCRIBE", sub) +
               frame_bytes("SEND", [("destination", send_dest)], b"own message"))
        f = c.recv_frame(timeout=5)
        assert f.cmd == "MESSAGE", f
        assert f.body == b"own message"
        assert f["destination"] == send_dest
        return f


@pytest.mark.parametrize("kind", ["topic", "pattern", "queue"])
def test_subscribe_then_send_in_one_write_delivers_own_message(herald, kind):
    for i in range(TRIES):
        name = "%s.%d" % (uid("order"), i)
        send = ("/queue/" if kind == "queue" else "/topic/") + name
        sub = "/topic/%s.*" % name.rsplit(".", 1)[0] if kind == "pattern" else send
        subscribe_then_send(herald, sub, send)


@pytest.mark.parametrize("kind", ["topic", "queue"])
def test_stomp10_subscribe_without_id_then_send_delivers(herald, kind):
    for i in range(TRIES):
        dest = "/%s/%s.%d" % (kind, uid("order10"), i)
        f = subscribe_then_send(herald, dest, dest, version="1.0", with_id=False)
        assert f["destination"] == dest


def test_unsubscribe_then_send_in_one_write_delivers_nothing(herald):
    """The other direction: after UNSUBSCRIBE (same write) the SEND is not delivered; a
    receipted marker on a second subscription proves the server got past it."""
    dest = "/topic/" + uid("unsub")
    marker = "/topic/" + uid("marker")
    with RawStomp(*herald.addr) as c:
        assert c.connect().cmd == "CONNECTED"
        c.send(frame_bytes("SUBSCRIBE", [("destination", dest), ("id", "a")]) +
               frame_bytes("SUBSCRIBE", [("destination", marker), ("id", "m")]) +
               frame_bytes("UNSUBSCRIBE", [("id", "a")]) +
               frame_bytes("SEND", [("destination", dest)], b"not for us") +
               frame_bytes("SEND", [("destination", marker)], b"marker"))
        f = c.recv_frame(timeout=5)
        assert f.cmd == "MESSAGE" and f.body == b"marker", f


@pytest.mark.herald_args("--shards", "40")
def test_more_than_32_shards_route_every_destination(herald):
    """Shard masks are 64 bits wide: receipts of UNSUBSCRIBE and COMMIT wait for the
    right owner shards past 32, and every queue and topic works."""
    with RawStomp(*herald.addr) as c:
        assert c.connect().cmd == "CONNECTED"
        for i in range(64):	# names spread over all 40 owners
            dest = "/queue/%s.%d" % (uid("wide"), i)
            c.send(frame_bytes("SUBSCRIBE", [("destination", dest), ("id", "q%d" % i)]) +
                   frame_bytes("SEND", [("destination", dest)], b"m%d" % i))
            f = c.recv_frame(timeout=5)
            assert f.cmd == "MESSAGE" and f.body == b"m%d" % i, f
            c.send_frame("UNSUBSCRIBE", [("id", "q%d" % i), ("receipt", "u%d" % i)])
            f = c.recv_frame(timeout=5)
            assert f.cmd == "RECEIPT" and f["receipt-id"] == "u%d" % i, f
        c.send_frame("BEGIN", [("transaction", "t")])
        for i in range(64):
            c.send_frame("SEND", [("destination", "/queue/%s.%d" % (uid("txw"), i)),
                                  ("transaction", "t")], b"x")
        c.send_frame("COMMIT", [("transaction", "t"), ("receipt", "c")])
        f = c.recv_frame(timeout=5)
        assert f.cmd == "RECEIPT" and f["receipt-id"] == "c", f


def test_a_long_lived_subscription_survives_thousands_of_others_coming_and_going(herald):
    """Subscription indexes (in consumer keys and ack ids) are reused only when free: after
    5,000 SUBSCRIBE/UNSUBSCRIBE pairs the first subscription still gets its messages and its
    ACKs still name them."""
    q = "/queue/" + uid("longlived")
    with RawStomp(*herald.addr, timeout=30) as c:
        assert c.connect().cmd == "CONNECTED"
        c.send_frame("SUBSCRIBE", [("destination", q), ("id", "keep"), ("ack", "client-individual")])
        churn = b"".join(
            frame_bytes("SUBSCRIBE", [("destination", "/topic/churn.%d" % i), ("id", "c%d" % i)]) +
            frame_bytes("UNSUBSCRIBE", [("id", "c%d" % i)]) for i in range(5000))
        c.send(churn + frame_bytes("SEND", [("destination", q)], b"after churn"))
        f = c.recv_frame(timeout=30)
        assert f.cmd == "MESSAGE" and f["subscription"] == "keep" and f.body == b"after churn", f
        c.send_frame("ACK", [("id", f["ack"]), ("receipt", "a")])
        f = c.recv_frame(timeout=10)
        assert f.cmd == "RECEIPT" and f["receipt-id"] == "a", f
