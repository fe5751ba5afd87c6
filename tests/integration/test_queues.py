"""
/queue/ destinations: point to point, exact round robin across subscribers, FIFO, messages
held in order while nobody is subscribed. Issue 3 "STOMP semantics"; RABBITMQ-REFERENCE
"Destinations".
"""

import json
import time

import pytest

from helpers import MARKER, is_marker, summ, uid
from stompraw import Timeout, frame_bytes

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive and backend_sensitive: queues have owner shards; deliveries across shards need
# the backend's wake-up.
pytestmark = [pytest.mark.herald_shared, pytest.mark.shard_sensitive, pytest.mark.backend_sensitive]


def queue(name=None):
    return "/queue/" + (name or uid("q"))


def test_messages_sent_with_no_subscriber_are_held_and_delivered_in_order(herald, clients):
    q = queue()
    pub = clients(herald)
    bodies = ["held-%d" % i for i in range(10)]
    pub.send_many(q, bodies)
    sub = clients(herald)
    sid = sub.subscribe(q)
    msgs = sub.wait_messages(10)
    assert [m.body for m in msgs] == bodies
    for m in msgs:
        assert m.headers["destination"] == q
        assert m.headers["subscription"] == sid
    sub.quiet(10, marker=(pub, q))


def test_held_messages_survive_the_publisher_leaving(herald, clients):
    q = queue()
    pub = clients(herald)
    pub.send_many(q, ["a", "b", "c"])
    pub.disconnect()
    sub = clients(herald)
    sub.subscribe(q)
    sub.wait_messages(3)
    assert sub.bodies() == ["a", "b", "c"]


def test_round_robin_across_three_consumers(herald, clients):
    q = queue()
    consumers = [clients(herald) for _ in range(3)]
    for c in consumers:
        c.subscribe(q)
    pub = clients(herald)
    pub.send_many(q, [str(i) for i in range(30)])
    got = []
    for c in consumers:
        c.wait_messages(10)
    # Sync point: three markers after the 30. Exact round robin gives each consumer one,
    # behind its 10, so an 11th message on its way to a consumer comes before its marker.
    time.sleep(0.2)
    pub.send_many(q, [MARKER + "rr%d" % i for i in range(3)])
    for c in consumers:
        msgs = c.wait_messages(11)
        assert is_marker(msgs[10]), [summ(m) for m in c.messages]
    for c in consumers:
        assert len(c.messages) == 11, [summ(m) for m in c.messages]
        idx = [int(b) for b in c.bodies()[:10]]
        assert idx == sorted(idx), "FIFO per consumer"
        got.append(idx)
    # Exact round robin: consumer k gets every third message.
    residues = [{i % 3 for i in idx} for idx in got]
    assert all(len(r) == 1 for r in residues), got
    assert sorted(r.pop() for r in residues) == [0, 1, 2], got


def test_each_queue_message_goes_to_exactly_one_consumer(herald, clients):
    q = queue()
    consumers = [clients(herald) for _ in range(2)]
    for c in consumers:
        c.subscribe(q)
    pub = clients(herald)
    pub.send_many(q, [str(i) for i in range(100)])
    # wait until all 100 have arrived somewhere
    import time
    deadline = time.monotonic() + 5
    while sum(len(c.messages) for c in consumers) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    allb = [b for c in consumers for b in c.bodies()]
    assert sorted(allb, key=int) == [str(i) for i in range(100)]
    assert all(len(c.messages) > 0 for c in consumers)


def test_fifo_for_a_single_consumer(herald, clients):
    q = queue()
    sub = clients(herald)
    sub.subscribe(q)
    pub = clients(herald)
    bodies = ["%04d" % i for i in range(300)]
    pub.send_many(q, bodies)
    sub.wait_messages(300)
    assert sub.bodies() == bodies


def test_queue_created_by_subscribe_receives_later_sends(herald, clients):
    q = queue()
    sub = clients(herald)
    sub.subscribe(q)
    pub = clients(herald)
    pub.send(q, "after-subscribe", receipt=True)
    assert sub.wait_messages(1)[0].body == "after-subscribe"


def test_messages_after_unsubscribe_are_held_for_the_next_subscriber(herald, clients):
    q = queue()
    a = clients(herald)
    sa = a.subscribe(q)
    a.unsubscribe(sa)
    pub = clients(herald)
    pub.send_many(q, ["1", "2", "3"])
    a.quiet(0, 0.2)
    b = clients(herald)
    b.subscribe(q)
    b.wait_messages(3)
    assert b.bodies() == ["1", "2", "3"]


def test_queues_are_independent(herald, clients):
    q1, q2 = queue(), queue()
    s1, s2 = clients(herald), clients(herald)
    s1.subscribe(q1)
    s2.subscribe(q2)
    pub = clients(herald)
    pub.send(q1, "for-1")
    pub.send(q2, "for-2", receipt=True)
    assert s1.wait_messages(1)[0].body == "for-1"
    assert s2.wait_messages(1)[0].body == "for-2"
    s1.quiet(1, 0.2, marker=(pub, q1))
    s2.quiet(1, 0.2, marker=(pub, q2))


def test_many_queues_across_shards(herald, clients):
    names = [queue() for _ in range(24)]
    sub = clients(herald)
    sids = {sub.subscribe(q): q for q in names}
    pub = clients(herald)
    for q in names:
        pub.send(q, q)
    pub.send(names[0], "sentinel", receipt=True)
    msgs = sub.wait_messages(25)
    for m in msgs:
        assert sids[m.headers["subscription"]] == m.headers["destination"]
    assert sorted(m.body for m in msgs if m.body != "sentinel") == sorted(names)


def test_held_messages_are_split_between_consumers_that_arrive_later(herald, clients):
    q = queue()
    pub = clients(herald)
    pub.send_many(q, [str(i) for i in range(6)])
    a = clients(herald)
    a.subscribe(q)
    a.wait_messages(6)  # a single subscriber takes the whole backlog (auto ack)
    b = clients(herald)
    b.subscribe(q)
    pub.send_many(q, [str(i) for i in range(6, 10)])
    import time
    deadline = time.monotonic() + 5
    while len(a.messages) + len(b.messages) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(int(x) for x in a.bodies() + b.bodies()) == list(range(10))
    assert len(b.messages) == 2 and len(a.messages) == 8


def test_seed_style_per_user_queue_with_json(herald, clients):
    """The seed's page: send('/queue/' + username, {content-type: text/plain}, JSON)."""
    user = uid("user")
    q = "/queue/" + user
    browser = clients(herald, version="1.1")
    browser.subscribe(q)
    backend = clients(herald)
    payload = json.dumps({"to": user, "text": "订单已发货", "n": 1}, ensure_ascii=False)
    backend.send(q, payload, content_type="text/plain", receipt=True)
    m = browser.wait_messages(1)[0]
    assert json.loads(m.body) == json.loads(payload)
    assert m.headers["content-type"].startswith("text/plain")


def test_queue_subscriber_on_1_0_connection(herald, clients):
    q = queue()
    sub = clients(herald, version="1.0")
    sub.subscribe(q)
    pub = clients(herald)
    pub.send(q, "for-1.0", receipt=True)
    m = sub.wait_messages(1)[0]
    assert m.body == "for-1.0"
    assert m.headers["message-id"]


def test_held_messages_keep_their_order_after_an_auto_ack_consumer_leaves(herald, raws):
    """A consumer subscribes and disconnects at once, with the held messages on their way to
    it: they come back to the queue one by one and must be held in their original order
    (issue 3: held "in order, until one is [subscribed]")."""
    q = queue()
    bodies = [b"m%d" % i for i in range(6)]
    pub = raws(herald)
    assert pub.connect().cmd == "CONNECTED"
    for i, b in enumerate(bodies):
        headers = [("destination", q)] + ([("receipt", "last")] if i == len(bodies) - 1 else [])
        pub.send_frame("SEND", headers, b)
    f = pub.recv_frame()
    assert f.cmd == "RECEIPT", f
    gone = raws(herald)
    assert gone.connect().cmd == "CONNECTED"
    gone.send(frame_bytes("SUBSCRIBE", [("destination", q), ("id", "s")])
              + frame_bytes("DISCONNECT"))
    assert gone.is_closed(2.0)
    sub = raws(herald)
    assert sub.connect().cmd == "CONNECTED"
    sub.send_frame("SUBSCRIBE", [("destination", q), ("id", "s")])
    got = []
    while True:
        try:
            got.append(sub.recv_frame(0.5).body)
        except Timeout:
            break
    # the first consumer may have been written some (auto ack: those are its own); what
    # comes back must be the rest, in order
    assert got and got == bodies[len(bodies) - len(got):], got
