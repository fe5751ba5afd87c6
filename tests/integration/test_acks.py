"""
Acknowledgements: auto, client (cumulative), client-individual; each version's ACK form
(1.2 `id` = the MESSAGE's `ack`; 1.1 `message-id` + `subscription`; 1.0 `message-id`);
NACK and closed connections requeue unacked queue messages, marked redelivered:true, ahead of
newer ones; prefetch-count. Issue 3 "Acks"; RABBITMQ-REFERENCE "Acks"; STOMP 1.2 "ACK",
"NACK", "SUBSCRIBE ack Header".
"""

import time

import pytest

from helpers import uid

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive: messages go from publishers to consumers on other connections (on 2 shards,
# often another shard); requeue and redelivery go through the queue's owner shard. The tests of a
# connection that dies (FIN, RST) are backend_sensitive too.
pytestmark = [pytest.mark.herald_shared, pytest.mark.shard_sensitive]

# Time allowed for the server to notice a dropped TCP connection before the next consumer
# subscribes; there is no frame that could confirm it.
DEATH_SETTLE = 0.5


def queue():
    return "/queue/" + uid("q")


def redelivered(m):
    return m.headers.get("redelivered") == "true"


def held(herald, clients, q, bodies):
    pub = clients(herald)
    pub.send_many(q, bodies)
    return pub


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.backend_sensitive
def test_unacked_messages_go_to_the_next_consumer_when_the_connection_dies(herald, clients, how):
    q = queue()
    pub = held(herald, clients, q, ["m1", "m2", "m3"])
    a = clients(herald)
    a.subscribe(q, ack="client-individual")
    first = a.wait_messages(3)
    assert not any(redelivered(m) for m in first)
    b = clients(herald)
    b.subscribe(q, ack="client-individual")
    # A still owns them: not given to anyone else (no marker: it could go to A; a copy
    # given to B now would show below as a fourth message or one not marked redelivered)
    b.quiet(0, 0.2)
    a.kill(rst=(how == "rst"))
    msgs = b.wait_messages(3)
    assert [m.body for m in msgs] == ["m1", "m2", "m3"]
    assert all(redelivered(m) for m in msgs), [m.headers for m in msgs]
    b.quiet(3, marker=(pub, q))


def test_unacked_messages_are_requeued_on_disconnect(herald, clients):
    q = queue()
    held(herald, clients, q, ["m1", "m2"])
    a = clients(herald)
    a.subscribe(q, ack="client")
    a.wait_messages(2)
    a.disconnect()
    b = clients(herald)
    b.subscribe(q)
    msgs = b.wait_messages(2)
    assert [m.body for m in msgs] == ["m1", "m2"]
    assert all(redelivered(m) for m in msgs)


def test_requeued_messages_come_before_newer_ones(herald, clients):
    q = queue()
    held(herald, clients, q, ["m1", "m2", "m3", "m4", "m5"])
    a = clients(herald)
    a.subscribe(q, ack="client-individual", headers={"prefetch-count": "2"})
    assert [m.body for m in a.wait_messages(2)] == ["m1", "m2"]
    a.quiet(2, 0.2)  # prefetch window full: no marker could come; B's flags show a third
    a.kill()
    time.sleep(DEATH_SETTLE)
    b = clients(herald)
    b.subscribe(q)
    msgs = b.wait_messages(5)
    assert [m.body for m in msgs] == ["m1", "m2", "m3", "m4", "m5"]
    assert [redelivered(m) for m in msgs] == [True, True, False, False, False]


def test_unacked_message_is_not_given_to_another_consumer_while_its_owner_is_connected(
        herald, clients):
    q = queue()
    a = clients(herald)
    a.subscribe(q, ack="client-individual", headers={"prefetch-count": "1"})
    b = clients(herald)
    b.subscribe(q, ack="auto")
    pub = clients(herald)
    pub.send_many(q, ["m1", "m2", "m3", "m4"])
    a.wait_messages(1)
    deadline = time.monotonic() + 5
    while len(a.messages) + len(b.messages) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    ab = a.bodies()
    bb = b.bodies()
    assert len(ab) == 1, (ab, bb)
    assert sorted(ab + bb) == ["m1", "m2", "m3", "m4"]
    held_by_a = ab[0]
    a.kill()
    m = b.wait_messages(4)[3]
    assert m.body == held_by_a
    assert redelivered(m)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_client_individual_ack_removes_only_that_message(herald, clients, version):
    q = queue()
    held(herald, clients, q, ["m1", "m2", "m3"])
    a = clients(herald, version=version)
    a.subscribe(q, ack="client-individual")
    msgs = a.wait_messages(3)
    a.ack(msgs[1], receipt=uid("ack"))
    a.kill()
    b = clients(herald)
    b.subscribe(q)
    got = b.wait_messages(2)
    assert [m.body for m in got] == ["m1", "m3"]
    b.quiet(2, marker=(b, q))  # an acked m2 coming back would come before the marker


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_client_ack_is_cumulative(herald, clients, version):
    q = queue()
    held(herald, clients, q, ["m1", "m2", "m3"])
    a = clients(herald, version=version)
    a.subscribe(q, ack="client")
    msgs = a.wait_messages(3)
    a.ack(msgs[1], receipt=uid("ack"))  # acknowledges m1 and m2
    a.kill()
    b = clients(herald)
    b.subscribe(q)
    got = b.wait_messages(1)
    assert got[0].body == "m3"
    assert redelivered(got[0])
    b.quiet(1, marker=(b, q))


@pytest.mark.parametrize("version,mode", [
    ("1.0", "client"), ("1.1", "client"), ("1.1", "client-individual"),
    ("1.2", "client"), ("1.2", "client-individual"),
])
def test_acked_messages_are_gone_for_good(herald, clients, version, mode):
    q = queue()
    held(herald, clients, q, ["m1", "m2", "m3"])
    a = clients(herald, version=version)
    a.subscribe(q, ack=mode)
    for m in a.wait_messages(3):
        a.ack(m, receipt=uid("ack"))
    a.kill()
    b = clients(herald)
    b.subscribe(q)
    pub = clients(herald)
    pub.send(q, "sentinel", receipt=True)
    assert b.wait_messages(1)[0].body == "sentinel"
    b.quiet(1, marker=(pub, q))


def test_1_2_message_in_client_mode_carries_an_ack_header(herald, clients):
    q = queue()
    held(herald, clients, q, ["m1", "m2"])
    a = clients(herald)
    a.subscribe(q, ack="client-individual")
    msgs = a.wait_messages(2)
    acks = [m.headers.get("ack") for m in msgs]
    assert all(acks), [m.headers for m in msgs]
    assert acks[0] != acks[1]


def test_1_1_ack_by_message_id_and_subscription_raw(herald, raws, clients):
    """Exact 1.1 ACK frame: message-id + subscription (what old stomp.js sends)."""
    q = queue()
    held(herald, clients, q, ["only"])
    r = raws(herald)
    assert r.connect(version="1.1").cmd == "CONNECTED"
    r.send_frame("SUBSCRIBE", [("destination", q), ("id", "s1"), ("ack", "client")])
    m = r.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"only"
    r.send_frame("ACK", [("message-id", m["message-id"]), ("subscription", "s1"),
                         ("receipt", "ack-1")])
    rc = r.recv_frame()
    assert rc.cmd == "RECEIPT" and rc["receipt-id"] == "ack-1", rc
    r.close()
    b = clients(herald)
    b.subscribe(q)
    b.quiet(0, marker=(b, q))


def test_1_0_ack_by_message_id_raw(herald, raws, clients):
    q = queue()
    held(herald, clients, q, ["only"])
    r = raws(herald)
    assert r.connect(version="1.0").cmd == "CONNECTED"
    r.send_frame("SUBSCRIBE", [("destination", q), ("ack", "client")])
    m = r.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"only"
    r.send_frame("ACK", [("message-id", m["message-id"]), ("receipt", "ack-1")])
    rc = r.recv_frame()
    assert rc.cmd == "RECEIPT" and rc["receipt-id"] == "ack-1", rc
    r.close()
    b = clients(herald)
    b.subscribe(q)
    b.quiet(0, marker=(b, q))


def test_auto_ack_messages_are_not_redelivered(herald, clients):
    q = queue()
    held(herald, clients, q, ["m1", "m2"])
    a = clients(herald)
    a.subscribe(q, ack="auto")
    a.wait_messages(2)
    a.kill()
    time.sleep(DEATH_SETTLE)
    b = clients(herald)
    b.subscribe(q)
    b.quiet(0, marker=(b, q))


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_nack_redelivers_with_redelivered_true(herald, clients, version):
    q = queue()
    held(herald, clients, q, ["m1"])
    a = clients(herald, version=version)
    a.subscribe(q, ack="client-individual")
    first = a.wait_messages(1)[0]
    assert not redelivered(first)
    a.nack(first)
    again = a.wait_messages(2)[1]
    assert again.body == "m1"
    assert redelivered(again)
    a.ack(again, receipt=uid("ack"))
    a.kill()
    b = clients(herald)
    b.subscribe(q)
    b.quiet(0, marker=(b, q))


def test_nacked_message_is_requeued_ahead_of_newer_ones(herald, clients):
    q = queue()
    held(herald, clients, q, ["m1", "m2", "m3"])
    a = clients(herald)
    a.subscribe(q, ack="client-individual", headers={"prefetch-count": "1"})
    m1 = a.wait_messages(1)[0]
    a.nack(m1)
    m1r = a.wait_messages(2)[1]
    assert (m1r.body, redelivered(m1r)) == ("m1", True)
    a.ack(m1r)
    m2 = a.wait_messages(3)[2]
    assert (m2.body, redelivered(m2)) == ("m2", False)
    a.ack(m2)
    m3 = a.wait_messages(4)[3]
    assert m3.body == "m3"


def test_nack_goes_to_another_consumer_round_robin(herald, clients):
    q = queue()
    a = clients(herald)
    a.subscribe(q, ack="client-individual", headers={"prefetch-count": "1"})
    b = clients(herald)
    b.subscribe(q, ack="client-individual", headers={"prefetch-count": "1"})
    pub = clients(herald)
    pub.send_many(q, ["m1", "m2"])
    ma = a.wait_messages(1)[0]
    mb = b.wait_messages(1)[0]
    assert sorted([ma.body, mb.body]) == ["m1", "m2"]
    b.ack(mb)
    a.nack(ma)
    # Either consumer may get it next, but it comes back once, marked redelivered.
    deadline = time.monotonic() + 5
    while len(a.messages) + len(b.messages) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    again = (a.messages[1:] + b.messages[1:])
    assert len(again) == 1, [m.headers for m in again]
    assert again[0].body == ma.body and redelivered(again[0])


def test_nack_with_requeue_false_drops_the_message(herald, clients):
    """RabbitMQ's extension: NACK requeue:false discards (dead-letters) the message."""
    q = queue()
    held(herald, clients, q, ["m1", "m2"])
    a = clients(herald)
    a.subscribe(q, ack="client-individual", headers={"prefetch-count": "1"})
    m1 = a.wait_messages(1)[0]
    a.nack(m1, requeue="false")
    m2 = a.wait_messages(2)[1]
    assert m2.body == "m2"
    a.ack(m2, receipt=uid("ack"))
    a.quiet(2, marker=(a, q))  # a dropped m1 requeued would come before the marker


def test_prefetch_count_caps_unacked_messages(herald, clients):
    q = queue()
    held(herald, clients, q, ["m%d" % i for i in range(5)])
    a = clients(herald)
    a.subscribe(q, ack="client-individual", headers={"prefetch-count": "2"})
    msgs = a.wait_messages(2)
    a.quiet(2)  # prefetch window full: no marker could come (the receipt sync only)
    a.ack(msgs[0])
    a.wait_messages(3)
    a.quiet(3)
    a.ack(msgs[1])
    a.ack(a.messages[2])
    a.wait_messages(5)
    assert a.bodies() == ["m%d" % i for i in range(5)]


def test_prefetch_with_cumulative_client_ack(herald, clients):
    q = queue()
    held(herald, clients, q, ["m%d" % i for i in range(6)])
    a = clients(herald)
    a.subscribe(q, ack="client", headers={"prefetch-count": "3"})
    msgs = a.wait_messages(3)
    a.quiet(3)
    a.ack(msgs[2])  # frees all three slots
    a.wait_messages(6)
    assert a.bodies() == ["m%d" % i for i in range(6)]


def test_prefetch_sends_the_rest_to_a_consumer_with_room(herald, clients):
    q = queue()
    a = clients(herald)
    a.subscribe(q, ack="client-individual", headers={"prefetch-count": "1"})
    b = clients(herald)
    b.subscribe(q, ack="client-individual", headers={"prefetch-count": "1"})
    pub = clients(herald)
    pub.send_many(q, ["m1", "m2", "m3"])
    a.wait_messages(1)
    b.wait_messages(1)
    time.sleep(0.2)
    assert len(a.messages) == 1 and len(b.messages) == 1
    b.ack(b.messages[0])
    b.wait_messages(2)
    assert sorted(a.bodies() + b.bodies()) == ["m1", "m2", "m3"]
    b.ack(b.messages[1])
    a.quiet(1, 0.1)  # A's window stays full: nothing more may come
    b.quiet(2, marker=(pub, q))  # B, now the only consumer with room, gets the marker


def test_redelivered_message_can_be_acked_by_its_new_consumer(herald, clients):
    q = queue()
    held(herald, clients, q, ["m1"])
    a = clients(herald)
    a.subscribe(q, ack="client-individual")
    a.wait_messages(1)
    b = clients(herald)
    b.subscribe(q, ack="client-individual")
    a.kill()
    m = b.wait_messages(1)[0]
    assert redelivered(m)
    b.ack(m, receipt=uid("ack"))
    b.kill()
    c = clients(herald)
    c.subscribe(q)
    c.quiet(0, marker=(c, q))


def test_ack_on_a_topic_subscription_in_client_mode(herald, clients):
    t = "/topic/" + uid("t")
    a = clients(herald)
    a.subscribe(t, ack="client-individual")
    pub = clients(herald)
    pub.send(t, "x", receipt=True)
    m = a.wait_messages(1)[0]
    assert m.headers.get("ack")
    a.ack(m, receipt=uid("ack"))
    assert not a.errors


@pytest.mark.rabbitmq_differs("RabbitMQ keeps the connection open after an ERROR")
def test_ack_of_an_unknown_id_is_an_error(herald, raws):
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send_frame("ACK", [("id", "no-such-ack-id-42"), ("receipt", "r-ack")])
    err = r.expect_error_then_close()
    assert err["message"]
