"""
/topic/ destinations: broadcast to every current subscriber, nothing retained, RabbitMQ
topic-exchange patterns (`*` one dot-separated word, `#` zero or more). Issue 3 "STOMP
semantics"; RABBITMQ-REFERENCE "Destinations".

"Nothing arrived" is proved without sleeping where possible: one publisher's messages to one
destination arrive in order, so a later sentinel that arrives proves an earlier message was
not delivered.
"""

import pytest

from helpers import uid

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive and backend_sensitive: patterns and broadcast across shards, which need the
# backend's wake-up.
pytestmark = [pytest.mark.herald_shared, pytest.mark.shard_sensitive, pytest.mark.backend_sensitive]


def topic(name=None):
    return "/topic/" + (name or uid("t"))


def test_topic_message_reaches_every_subscriber(herald, clients):
    t = topic()
    subs = [clients(herald) for _ in range(3)]
    sids = [c.subscribe(t) for c in subs]
    pub = clients(herald)
    pub.send(t, "hello all", receipt=True, headers={"x-custom": "v1"}, content_type="text/plain")
    for c, sid in zip(subs, sids):
        m = c.wait_messages(1)[0]
        assert m.body == "hello all"
        assert m.headers["destination"] == t
        assert m.headers["subscription"] == sid
        assert m.headers["message-id"]
        assert m.headers["x-custom"] == "v1"
        assert m.headers["content-type"] == "text/plain"
    for c in subs:
        c.quiet(1, marker=(pub, t))


def test_topic_keeps_publisher_order(herald, clients):
    t = topic()
    subs = [clients(herald) for _ in range(2)]
    for c in subs:
        c.subscribe(t)
    pub = clients(herald)
    bodies = ["m%03d" % i for i in range(200)]
    pub.send_many(t, bodies)
    for c in subs:
        c.wait_messages(200)
        assert c.bodies() == bodies


def test_topic_message_with_no_subscriber_is_dropped_not_retained(herald, clients):
    t = topic()
    pub = clients(herald)
    pub.send(t, "nobody-listens", receipt=True)
    sub = clients(herald)
    sub.subscribe(t)
    pub.send(t, "second", receipt=True)
    assert sub.wait_messages(1)[0].body == "second"
    sub.quiet(1, marker=(pub, t))


def test_unsubscribed_topic_subscriber_gets_nothing_more(herald, clients):
    t = topic()
    a, b = clients(herald), clients(herald)
    sa = a.subscribe(t)
    b.subscribe(t)
    pub = clients(herald)
    pub.send(t, "one", receipt=True)
    a.wait_messages(1)
    a.unsubscribe(sa)
    pub.send(t, "two", receipt=True)
    assert [m.body for m in b.wait_messages(2)] == ["one", "two"]
    # The sync point comes on a new subscription of A's to the same topic: a copy of "two"
    # still sent to the old one would have come before the marker sent after it.
    a.subscribe(t)
    a.quiet(1, marker=(pub, t))
    assert a.messages[0].headers["subscription"] == sa


def test_topic_subscriber_gets_its_own_publication(herald, clients):
    t = topic()
    c = clients(herald)
    c.subscribe(t)
    c.send(t, "echo", receipt=True)
    assert c.wait_messages(1)[0].body == "echo"


def test_subscriber_that_dies_does_not_stop_delivery_to_others(herald, clients):
    t = topic()
    a, b = clients(herald), clients(herald)
    a.subscribe(t)
    b.subscribe(t)
    a.kill()
    pub = clients(herald)
    pub.send_many(t, ["x%d" % i for i in range(10)])
    b.wait_messages(10)
    assert b.bodies() == ["x%d" % i for i in range(10)]


def test_topic_and_queue_with_the_same_name_are_separate(herald, clients):
    name = uid("same")
    tsub, qsub = clients(herald), clients(herald)
    tsub.subscribe("/topic/" + name)
    qsub.subscribe("/queue/" + name)
    pub = clients(herald)
    pub.send("/topic/" + name, "to-topic", receipt=True)
    pub.send("/queue/" + name, "to-queue", receipt=True)
    assert tsub.wait_messages(1)[0].body == "to-topic"
    assert qsub.wait_messages(1)[0].body == "to-queue"
    tsub.quiet(1, 0.2, marker=(pub, "/topic/" + name))
    qsub.quiet(1, 0.2, marker=(pub, "/queue/" + name))


def check_pattern(herald, clients, pattern, matching, not_matching):
    """Subscribes to pattern, publishes to every key (non-matching first), then a matching
    sentinel; expects exactly the matching keys. Keys live under a unique prefix so tests
    never see each other's traffic."""
    p = uid("p").replace("-", "")
    sub = clients(herald)
    sid = sub.subscribe("/topic/" + pattern.format(p=p))
    pub = clients(herald)
    for key in not_matching:
        pub.send("/topic/" + key.format(p=p), "no:" + key)
    for key in matching:
        pub.send("/topic/" + key.format(p=p), "yes:" + key)
    pub.send("/topic/" + matching[0].format(p=p), "sentinel", receipt=True)
    n = len(matching) + 1
    msgs = sub.wait_messages(n)
    sub.quiet(n, marker=(pub, "/topic/" + matching[0].format(p=p)))
    got = sorted(m.body for m in msgs if m.body != "sentinel")
    assert got == sorted("yes:" + k for k in matching)
    for m in msgs:
        assert m.headers["subscription"] == sid
    # The destination header names the topic published to, not the pattern.
    dests = {m.headers["destination"] for m in msgs}
    assert dests == {"/topic/" + k.format(p=p) for k in matching}


def test_star_matches_exactly_one_word(herald, clients):
    check_pattern(herald, clients, "{p}.news.*",
                  matching=["{p}.news.uk", "{p}.news.fr", "{p}.news.a-b_c"],
                  not_matching=["{p}.news", "{p}.news.uk.london", "{p}.newsx.uk",
                                "{p}.sport.uk", "{p}x.news.uk"])


def test_hash_matches_zero_or_more_words(herald, clients):
    check_pattern(herald, clients, "{p}.alerts.#",
                  matching=["{p}.alerts.disk", "{p}.alerts.disk.full", "{p}.alerts",
                            "{p}.alerts.a.b.c.d"],
                  not_matching=["{p}.alertsx", "{p}.alert.disk", "{p}.x.alerts", "{p}"])


def test_star_in_the_middle(herald, clients):
    check_pattern(herald, clients, "{p}.a.*.c",
                  matching=["{p}.a.b.c", "{p}.a.zz.c"],
                  not_matching=["{p}.a.c", "{p}.a.b.b.c", "{p}.a.b.c.d", "{p}.a.b.cc"])


def test_hash_in_the_middle(herald, clients):
    check_pattern(herald, clients, "{p}.a.#.c",
                  matching=["{p}.a.c", "{p}.a.b.c", "{p}.a.b.d.c"],
                  not_matching=["{p}.a.b", "{p}.a.c.d", "{p}.b.c"])


def test_star_and_hash_together(herald, clients):
    check_pattern(herald, clients, "{p}.*.logs.#",
                  matching=["{p}.web.logs", "{p}.db.logs.error", "{p}.db.logs.a.b"],
                  not_matching=["{p}.logs", "{p}.a.b.logs", "{p}.web.log"])


@pytest.mark.herald_fresh("subscribes to /topic/#: every topic on the server")
def test_lone_hash_matches_every_topic(herald, clients):
    sub = clients(herald)
    sub.subscribe("/topic/#")
    pub = clients(herald)
    keys = [uid("k"), uid("k") + ".two", uid("k") + ".a.b.c"]
    for k in keys:
        pub.send("/topic/" + k, k)
    pub.send("/topic/" + keys[0], "sentinel", receipt=True)
    # Different topics may live on different shards: no order across them, so wait for all.
    sub.wait_messages(4)
    sub.quiet(4, 0.2, marker=(pub, "/topic/" + keys[0]))
    assert sorted(b for b in sub.bodies() if b != "sentinel") == sorted(keys)


def test_pattern_spans_topics_on_every_shard(herald, clients):
    """Many topic names hash to every shard; a pattern must see all of them."""
    p = uid("fan").replace("-", "")
    sub = clients(herald)
    sub.subscribe("/topic/%s.*" % p)
    pub = clients(herald)
    keys = ["%s.k%02d" % (p, i) for i in range(40)]
    for k in keys:
        pub.send("/topic/" + k, k)
    pub.send("/topic/" + keys[0], "sentinel", receipt=True)
    sub.wait_messages(41)
    got = sub.bodies()
    assert sorted(b for b in got if b != "sentinel") == sorted(keys)


def test_pattern_subscribed_before_the_topic_exists(herald, clients):
    p = uid("late").replace("-", "")
    sub = clients(herald)
    sub.subscribe("/topic/%s.#" % p)
    pub = clients(herald)
    pub.send("/topic/%s.brand.new.topic" % p, "first ever", receipt=True)
    assert sub.wait_messages(1)[0].body == "first ever"


def test_overlapping_subscriptions_on_one_connection_each_get_a_copy(herald, clients):
    p = uid("ov").replace("-", "")
    c = clients(herald)
    exact = c.subscribe("/topic/%s.a.b" % p)
    pattern = c.subscribe("/topic/%s.a.*" % p)
    pub = clients(herald)
    pub.send("/topic/%s.a.b" % p, "both", receipt=True)
    msgs = c.wait_messages(2)
    c.quiet(2, marker=(pub, "/topic/%s.a.b" % p, 2))  # one marker per subscription
    assert sorted(m.headers["subscription"] for m in msgs) == sorted([exact, pattern])
    assert all(m.body == "both" for m in msgs)


def test_pattern_unsubscribe_stops_delivery(herald, clients):
    p = uid("un").replace("-", "")
    a, b = clients(herald), clients(herald)
    sa = a.subscribe("/topic/%s.*" % p)
    b.subscribe("/topic/%s.*" % p)
    a.unsubscribe(sa)
    pub = clients(herald)
    for i in range(5):
        pub.send("/topic/%s.k%d" % (p, i), "m%d" % i)
    pub.send("/topic/%s.k0" % p, "sentinel", receipt=True)
    b.wait_messages(6)
    # The sync point comes on a new subscription of A's to the same pattern: copies still
    # sent to the old one would have come before the marker sent after them.
    a.subscribe("/topic/%s.*" % p)
    a.quiet(0, marker=(pub, "/topic/%s.k0" % p))


def test_fanout_to_many_subscribers_on_one_connection_and_many_connections(herald, clients):
    t = topic()
    conns = [clients(herald) for _ in range(5)]
    per_conn = 4
    for c in conns:
        for _ in range(per_conn):
            c.subscribe(t)
    pub = clients(herald)
    pub.send_many(t, ["f%d" % i for i in range(20)])
    for c in conns:
        msgs = c.wait_messages(20 * per_conn)
        by_sub = {}
        for m in msgs:
            by_sub.setdefault(m.headers["subscription"], []).append(m.body)
        assert len(by_sub) == per_conn
        for bodies in by_sub.values():
            assert bodies == ["f%d" % i for i in range(20)]


def test_one_publishers_order_holds_across_topics_for_a_pattern_subscriber(herald, raws):
    """RabbitMQ gives each subscription one queue, so a wildcard subscriber sees a
    publisher's messages to different topics in the order sent. Topics hash to different
    shards; Herald routes on the publisher's shard, so the order must hold here too."""
    base = uid("ord").replace("-", "")
    sub = raws(herald)
    assert sub.connect().cmd == "CONNECTED"
    sub.send_frame("SUBSCRIBE", [("destination", "/topic/%s.#" % base), ("id", "s"),
                                 ("receipt", "r")])
    assert sub.recv_frame().cmd == "RECEIPT"
    pub = raws(herald)
    assert pub.connect().cmd == "CONNECTED"
    n = 600
    pub.send(b"".join(b"SEND\ndestination:/topic/%s.%d\n\n%d\0" % (base.encode(), i % 23, i)
                      for i in range(n)))
    got = [int(sub.recv_frame().body) for _ in range(n)]
    assert got == list(range(n))
