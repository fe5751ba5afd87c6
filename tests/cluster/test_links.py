"""
tests/cluster/test_links.py - node links with real `herald` processes on 127.0.0.1: nodes
of one cluster connect over TCP on their route port and forward topic messages by interest
(docs/cluster.md, "Node links"; NATS routes: one hop, never re-forwarded, interest sent as
changes and in full when a link comes up).

What is checked, each end to end through STOMP clients and GET /cluster/status:
  - three nodes hold three links (one per pair), each "up" in the status of both ends;
  - a SEND on one node reaches a subscriber on another, headers intact, both ways;
  - with three nodes all subscribed, each subscription gets each message exactly once;
  - RabbitMQ-style patterns (`*`, `#`) held on other nodes match as they do locally;
  - one publisher's order holds across the link, also for a wildcard subscriber on another
    node watching two topics (1,000 messages);
  - once a SUBSCRIBE's RECEIPT is in, a SEND on any node reaches it (no sleep; 20 times);
  - a topic nobody remote wants sends nothing over a link, one only b wants crosses to b
    alone, once per message however many subscriptions b has, and after b's last
    UNSUBSCRIBE it stops crossing (link_msgs_* / link_bytes_* of both ends);
  - STOMP-over-WebSocket subscribers get cluster messages like TCP ones;
  - kill -9: the others drop the link; a restart under the same name brings it back up and
    messages flow again, without duplicates;
  - a link that stays full (its node SIGSTOPped) pauses the publisher, is dropped after 5 s
    (the publisher runs again) and comes back, interest and all, once the node resumes.

"Exactly once" is proved with a sync point, not by sleeping alone: one publisher's messages
to one destination keep their order, so once a later marker from that publisher arrives
every earlier copy has too; the subscribers then watch a little longer for a duplicate that
a third node might have re-forwarded (it would come behind the marker).

Every port is 0 (each node logs `listening proto=<p> addr=127.0.0.1:<port>`), the gossip
period is 200 ms, some nodes run two shards (the cross-shard path), every wait has a
deadline, and only the processes started here are stopped, by PID.

Run: HERALD_BIN=build/core/herald /usr/bin/python3 -m pytest -q tests/cluster/test_links.py
"""

import os
import signal
import socket
import sys
import time
import uuid

import pytest

from clusterlib import HERALD, Cluster, member_of, start_mesh, status, wait_for, wait_mesh

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from stompraw import Closed, RawStomp, Timeout  # noqa: E402

WAIT = 5.0		# bound for anything expected to happen
LINK_DOWN_S = 2.0	# kill -9 closes the TCP link at once: noticed well within this
LINK_UP_S = 5.0		# a restarted node's links up again (DISTRIBUTED.md aims at <= 1 s)
DEAD_S = 10.0		# SWIM's verdict on a killed node at N = 3 (test_membership's bound + slack)
INTEREST_GONE_S = 2.0	# an UNSUBSCRIBE's 1 -> 0 reaching the publisher's node
DRAIN_S = 0.3		# watched after a sync marker for duplicates that come late
TEST_CAP_S = 60.0	# wall-clock cap per test

pytestmark = pytest.mark.skipif(not HERALD, reason="HERALD_BIN must name the herald binary")

LINK_FIELDS = ("link", "link_msgs_out", "link_bytes_out", "link_msgs_in", "link_bytes_in")


def uid(prefix="lk"):
    return "%s%s" % (prefix, uuid.uuid4().hex[:12])


# --- GET /cluster/status --------------------------------------------------------------------

def member(node, name):
    return member_of(status(node), name)


def link_of(node, name):
    m = member(node, name)
    return m.get("link") if m else None


def counters(node, name):
    m = member(node, name)
    assert m is not None, "%s does not list %s" % (node.name, name)
    for key in LINK_FIELDS:
        assert key in m, "%s's entry for %s lacks %r: %r" % (node.name, name, key, m)
    return {k: m[k] for k in LINK_FIELDS}


# --- STOMP clients ------------------------------------------------------------------------

class Stomp:
    """One STOMP connection (raw TCP, or WebSocket with ws=True) that keeps the MESSAGE
    frames it reads while it waits for other things. Every wait has a deadline."""

    def __init__(self, node, ws=False):
        self.node = node
        if ws:
            from wsclient import WSStomp, ws_url	# python3-websockets (Debian)
            self.t = WSStomp(ws_url(("127.0.0.1", node.ports["ws"])))
        else:
            self.t = RawStomp("127.0.0.1", node.ports["stomp"], timeout=WAIT)
        f = self.t.connect()
        assert f.cmd == "CONNECTED", "CONNECT to %s: %r" % (node.name, f)
        self.messages = []	# MESSAGE frames, in arrival order
        self.receipts = set()

    def __repr__(self):
        return "Stomp(%s)" % self.node.name

    # --- reading ----------------------------------------------------------------------

    def _read_one(self, deadline):
        f = self.t.recv_frame(max(0.0, deadline - time.monotonic()))
        if f.cmd == "MESSAGE":
            self.messages.append(f)
        elif f.cmd == "RECEIPT":
            self.receipts.add(f["receipt-id"])
        else:
            raise AssertionError("%s sent %r" % (self.node.name, f))

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= deadline:
                raise AssertionError("%r: timed out after %.1fs waiting for %s; %d messages, "
                                     "last %s" % (self, timeout, what, len(self.messages),
                                                  [summ(m) for m in self.messages[-5:]]))
            try:
                self._read_one(deadline)
            except Timeout:
                pass
            except Closed:
                raise AssertionError("%r: connection closed waiting for %s" % (self, what))

    def drain(self, seconds):
        """Reads whatever arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self._read_one(deadline)
            except Timeout:
                return

    def wait_receipt(self, rid, timeout=WAIT):
        self.wait(lambda: rid in self.receipts, timeout, "RECEIPT %s" % rid)

    def wait_count(self, n, timeout=WAIT, sid=None):
        self.wait(lambda: len(self.of(sid)) >= n, timeout, "%d messages" % n)
        return self.of(sid)

    def of(self, sid=None):
        return [m for m in self.messages if sid is None or m.get("subscription") == sid]

    def bodies(self, sid=None):
        return [m.body.decode() for m in self.of(sid)]

    # --- writing ----------------------------------------------------------------------

    def frame(self, cmd, headers, body=b""):
        assert self.t.send_frame(cmd, headers, body), "%r: connection closed" % self

    def subscribe(self, dest, receipt=True, sid=None):
        sid = sid or uid("sub")
        h = [("destination", dest), ("id", sid), ("ack", "auto")]
        if receipt:
            rid = uid("r")
            h.append(("receipt", rid))
        self.frame("SUBSCRIBE", h)
        if receipt:
            self.wait_receipt(rid)
        return sid

    def unsubscribe(self, sid):
        rid = uid("r")
        self.frame("UNSUBSCRIBE", [("id", sid), ("receipt", rid)])
        self.wait_receipt(rid)

    def send(self, dest, body, receipt=False, headers=()):
        body = body.encode() if isinstance(body, str) else body
        h = [("destination", dest)] + list(headers) + [("content-length", str(len(body)))]
        if receipt:
            rid = uid("r")
            h.append(("receipt", rid))
        self.frame("SEND", h, body)
        if receipt:
            self.wait_receipt(rid)

    def send_batch(self, items, timeout=WAIT):
        """items: [(dest, body)], written at once; a receipt on the last proves all were
        taken in."""
        out = bytearray()
        rid = uid("r")
        for i, (dest, body) in enumerate(items):
            body = body.encode() if isinstance(body, str) else body
            out += b"SEND\ndestination:%s\ncontent-length:%d\n" % (dest.encode(), len(body))
            if i == len(items) - 1:
                out += b"receipt:%s\n" % rid.encode()
            out += b"\n" + body + b"\0"
        assert self.t.send(bytes(out)), "%r: connection closed" % self
        self.wait_receipt(rid, timeout)

    def close(self):
        self.t.close()


def summ(f):
    return "%s %s %r" % (f.get("destination"), f.get("subscription"), f.body[:40])


@pytest.fixture
def clients():
    made = []

    def make(node, ws=False):
        c = Stomp(node, ws=ws)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def settle(pub, dest, subs, drain=DRAIN_S):
    """The sync point: pub sends a marker to dest; each (client, copies) in subs waits for
    its copies (they come behind every earlier message from pub to dest that client was
    going to get), then everyone watches `drain` seconds more for late duplicates. Exactly
    `copies` markers must have come; they are removed from .messages."""
    body = uid("marker-")
    pub.send(dest, body, receipt=True)
    for c, copies in subs:
        c.wait(lambda: sum(1 for m in c.messages if m.body.decode() == body) >= copies, WAIT,
               "%d cop%s of the marker sent to %s" % (copies, "y" if copies == 1 else "ies",
                                                    dest))
    time.sleep(drain)
    for c, copies in subs:
        c.drain(0.05)
        got = sum(1 for m in c.messages if m.body.decode() == body)
        assert got == copies, "%r got the marker %d times, expected %d" % (c, got, copies)
        c.messages[:] = [m for m in c.messages if not m.body.decode().startswith("marker-")]


def in_publisher_order(bodies, expected_by_pub):
    """bodies: what one subscription got; expected_by_pub: {prefix: [bodies in send order]}.
    Each publisher's messages must come exactly once each, in its order."""
    for prefix, expected in expected_by_pub.items():
        got = [b for b in bodies if b.startswith(prefix)]
        assert got == expected, "from %s: expected %d in order, got %d: %s" % (
            prefix, len(expected), len(got), got[:20])
    assert len(bodies) == sum(len(e) for e in expected_by_pub.values()), bodies


# --- fixtures -------------------------------------------------------------------------------

class _TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _wall_clock_cap():
    def on_alarm(signum, frame):
        raise _TestTimeout("test exceeded its %.0fs wall-clock cap" % TEST_CAP_S)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, TEST_CAP_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def _trio(tmp_path_factory):
    """One 3-node cluster for the tests that only add subscriptions and traffic of their
    own (fresh destination names): a (2 shards), b (1 shard), c (2 shards)."""
    c = Cluster(tmp_path_factory.mktemp("links-trio"))
    try:
        nodes = start_mesh(c, [("a", 2), ("b", 1), ("c", 2)])
        yield c, nodes
    finally:
        c.stop_all()


@pytest.fixture
def trio(_trio):
    c, nodes = _trio
    c.check_alive()
    for n in nodes:
        print("%s: %s" % (n.name, n.log_path))
    yield nodes
    c.check_alive()


# --- tests ----------------------------------------------------------------------------------

def route_connections(nodes):
    """Established TCP connections to any of the nodes' route ports, from /proc/net/tcp:
    each link is one connection, seen once at its dialling end (remote port a route port);
    the accepting end's socket has the route port as its local port instead."""
    ports = {n.ports["route"] for n in nodes}
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.split(":")[1], 16) in ports:
                n += 1
    return n


def test_each_pair_of_members_holds_one_link(trio):
    """Three nodes, three links: a pair that dialled each other at once keeps only one."""
    deadline = time.monotonic() + 2.0
    while route_connections(trio) != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    n = route_connections(trio)
    assert n == 3, "%d route connections between 3 nodes, expected 3" % n
    for node in trio:
        for m in status(node)["members"]:
            if m["name"] == node.name:
                assert not any(k in m for k in LINK_FIELDS), ("self has link fields", m)
            else:
                assert m["link"] == "up", (node.name, m)
                for k in LINK_FIELDS[1:]:
                    assert isinstance(m[k], int) and m[k] >= 0, (node.name, k, m)


def test_a_topic_message_crosses_to_a_subscriber_on_another_node(trio, clients):
    a, b, _ = trio
    for pub_node, sub_node in ((a, b), (b, a)):
        t = "/topic/" + uid()
        sub = clients(sub_node)
        sid = sub.subscribe(t)
        pub = clients(pub_node)
        pub.send(t, "hello", receipt=True, headers=[("x-custom", "v1"),
                                                     ("content-type", "text/plain")])
        m = sub.wait_count(1)[0]
        assert m.body == b"hello"
        assert m["destination"] == t
        assert m["subscription"] == sid
        assert m.get("message-id")
        assert m["x-custom"] == "v1"
        assert m["content-type"] == "text/plain"
        bodies = ["m%03d" % i for i in range(50)]
        pub.send_batch([(t, x) for x in bodies])
        sub.wait_count(51)
        settle(pub, t, [(sub, 1)])
        assert sub.bodies() == ["hello"] + bodies, "%s -> %s" % (pub_node.name, sub_node.name)


def test_three_nodes_all_subscribed_get_each_message_once(trio, clients):
    t = "/topic/" + uid()
    subs = [clients(n) for n in trio] + [clients(trio[0])]	# two subscribers on a
    for s in subs:
        s.subscribe(t)
    pubs = {n.name: clients(n) for n in trio}
    expected = {}
    for name, pub in pubs.items():
        expected[name + "-"] = ["%s-%02d" % (name, i) for i in range(30)]
        pub.send_batch([(t, x) for x in expected[name + "-"]])
    for s in subs:
        s.wait_count(30 * len(pubs))
    for pub in pubs.values():
        settle(pub, t, [(s, 1) for s in subs])
    for s in subs:
        in_publisher_order(s.bodies(), expected)


def test_pattern_subscribers_on_other_nodes(trio, clients):
    a, b, c = trio
    p = uid("p")
    star = clients(b)
    star_sid = star.subscribe("/topic/%s.news.*" % p)
    hashed = clients(c)
    hash_sid = hashed.subscribe("/topic/%s.alerts.#" % p)
    mid = clients(c)
    mid.subscribe("/topic/%s.*.logs.#" % p)
    local = clients(a)
    local.subscribe("/topic/%s.#" % p)
    keys = ["news.uk", "news", "news.uk.london", "newsx.uk", "alerts", "alerts.disk",
            "alerts.disk.full", "alertsx", "web.logs", "db.logs.error", "a.b.logs", "logs"]
    want = {
        star: ["news.uk"],
        hashed: ["alerts", "alerts.disk", "alerts.disk.full"],
        mid: ["web.logs", "db.logs.error"],
        local: keys,
    }
    for pub_node in (a, b):
        pub = clients(pub_node)
        for s in want:
            s.messages.clear()
        pub.send_batch([("/topic/%s.%s" % (p, k), k) for k in keys])
        for s, ks in want.items():
            s.wait_count(len(ks))
        settle(pub, "/topic/%s.news.uk" % p, [(star, 1), (local, 1)])
        settle(pub, "/topic/%s.alerts" % p, [(hashed, 1), (local, 1)])
        settle(pub, "/topic/%s.web.logs" % p, [(mid, 1), (local, 1)])
        for s, ks in want.items():
            assert s.bodies() == ks, "%r subscribed on %s, published on %s" % (
                s, s.node.name, pub_node.name)
            # The destination header names the topic published to, not the pattern.
            assert [m["destination"] for m in s.messages] == \
                ["/topic/%s.%s" % (p, k) for k in ks]
        assert {m["subscription"] for m in star.messages} == {star_sid}
        assert {m["subscription"] for m in hashed.messages} == {hash_sid}


def test_one_publishers_order_holds_for_a_wildcard_subscriber_on_another_node(trio, clients):
    a, b, c = trio
    base = uid("ord")
    topics = ["/topic/%s.x" % base, "/topic/%s.y" % base]
    subs = [clients(b), clients(c)]
    for s in subs:
        s.subscribe("/topic/%s.*" % base)
    pub = clients(a)
    n = 1000
    pub.send_batch([(topics[i % 2], str(i)) for i in range(n)], timeout=30)
    for s in subs:
        s.wait_count(n, timeout=30)
        got = [int(x) for x in s.bodies()]
        first_bad = next((i for i, v in enumerate(got) if v != i), None)
        assert got == list(range(n)), "%r: first out of order at %s: %s" % (
            s, first_bad, got[first_bad:first_bad + 10] if first_bad is not None else None)
        assert [m["destination"] for m in s.messages] == [topics[i % 2] for i in range(n)]
    for t in topics:
        settle(pub, t, [(s, 1) for s in subs])
    for s in subs:
        assert len(s.messages) == n, "%r: duplicates: %d messages" % (s, len(s.messages))


@pytest.mark.parametrize("kind", ["topic", "pattern"])
def test_a_send_after_the_subscribe_receipt_reaches_the_subscriber(trio, clients, kind):
    """No sleep between the RECEIPT on one node and the SEND on another, 20 times, each on
    a destination never used before (so the interest is new every time)."""
    a, b, c = trio
    subs = {n.name: clients(n) for n in trio}
    pubs = {n.name: clients(n) for n in trio}
    pairs = [(b, a), (c, a), (a, b), (c, b), (a, c), (b, c)]
    for i in range(20):
        sub_node, pub_node = pairs[i % len(pairs)]
        name = uid("rs")
        topic = "/topic/%s.k" % name
        dest = topic if kind == "topic" else "/topic/%s.*" % name
        sub = subs[sub_node.name]
        sid = sub.subscribe(dest)
        pubs[pub_node.name].send(topic, "n%d" % i)
        sub.wait(lambda: any(m.get("subscription") == sid for m in sub.messages), WAIT,
                 "round %d: the message sent on %s right after SUBSCRIBE %s's receipt on %s"
                 % (i, pub_node.name, dest, sub_node.name))
        got = sub.of(sid)
        assert [m.body for m in got] == [b"n%d" % i], got
    time.sleep(DRAIN_S)
    for name, sub in subs.items():	# and nothing twice
        sub.drain(0.05)
        assert len(sub.messages) == sum(1 for i in range(20)
                                        if pairs[i % len(pairs)][0].name == name), \
            [summ(m) for m in sub.messages]


def crossing_to(pub, dest, n, sync_dest, src, dsts):
    """Sends n messages (1 KB bodies) to dest on pub (a client of src), then one to
    sync_dest, which each (node, sync_sub) of dsts has a subscriber of: once the sync
    message is in at every one, whatever src was going to forward before it has gone over
    the links. Returns {node name: (msgs out, msgs in, bytes out, bytes in)}: the n's share
    of src's counters for that node's link and of that node's for src's, the sync message's
    own count taken off the message counts (the byte counts keep it: ~1 KB of frame)."""
    before = {d.name: (counters(src, d.name), counters(d, src.name)) for d, _ in dsts}
    if n:
        pub.send_batch([(dest, b"x" * 1000)] * n)
    seen = {d.name: len(s.messages) for d, s in dsts}
    pub.send(sync_dest, "sync", receipt=True)
    out = {}
    for d, s in dsts:
        s.wait_count(seen[d.name] + 1)
    for d, _ in dsts:
        b_out, b_in = before[d.name]
        wait_for(lambda: counters(src, d.name)["link_msgs_out"] > b_out["link_msgs_out"],
                 WAIT, "%s's link_msgs_out to %s to count the sync message" % (src.name, d.name))
        wait_for(lambda: counters(d, src.name)["link_msgs_in"] > b_in["link_msgs_in"],
                 WAIT, "%s's link_msgs_in from %s to count the sync message" % (d.name, src.name))
    time.sleep(0.1)	# in case a counter is bumped on a send's completion, not its start
    for d, _ in dsts:
        b_out, b_in = before[d.name]
        c_out, c_in = counters(src, d.name), counters(d, src.name)
        out[d.name] = (c_out["link_msgs_out"] - b_out["link_msgs_out"] - 1,
                       c_in["link_msgs_in"] - b_in["link_msgs_in"] - 1,
                       c_out["link_bytes_out"] - b_out["link_bytes_out"],
                       c_in["link_bytes_in"] - b_in["link_bytes_in"])
    return out


def crossing(pub, dest, n, sync_dest, sync_sub, src, dst):
    return crossing_to(pub, dest, n, sync_dest, src, [(dst, sync_sub)])[dst.name]


def test_no_link_traffic_for_a_topic_nobody_remote_wants(cluster, clients):
    """a publishes; b wants some names, c none of them: what nobody remote wants crosses no
    link, and what only b wants crosses only a's link to b."""
    a, b, c = start_mesh(cluster, [("a", 2), ("b", 1), ("c", 2)])
    p = uid("nt")
    sync_topic = "/topic/%s.sync" % p
    syncs = []
    for node in (b, c):
        s = clients(node)
        s.subscribe(sync_topic)
        syncs.append((node, s))
    remote = clients(b)
    remote.subscribe("/topic/%s.wanted.*" % p)	# a pattern b holds that must not match
    remote.subscribe("/topic/%s.exact" % p)
    local = clients(a)
    local.subscribe("/topic/%s.unwanted" % p)
    local.subscribe("/topic/%s.wanted" % p)
    pub = clients(a)
    for dest in ("/topic/%s.unwanted" % p, "/topic/%s.wanted" % p,
                 "/topic/%s.unwanted.x" % p):
        for name, (d_out, d_in, db_out, db_in) in crossing_to(pub, dest, 100, sync_topic, a,
                                                              syncs).items():
            assert (d_out, d_in) == (0, 0), \
                "100 messages to %s (no subscriber off a) crossed to %s: a counted %d out, " \
                "%s %d in" % (dest, name, d_out, name, d_in)
            # 100 KB of bodies did not go either: only the sync message (~1 KB of frame)
            assert db_out < 5000 and db_in < 5000, (dest, name, db_out, db_in)
    local.wait_count(200)
    remote.drain(0.1)
    assert remote.messages == []
    # What b wants, by pattern or by name, crosses once per message to b and never to c.
    for dest in ("/topic/%s.wanted.x" % p, "/topic/%s.exact" % p):
        got = crossing_to(pub, dest, 100, sync_topic, a, syncs)
        assert got["b"][:2] == (100, 100), (dest, got)
        assert got["b"][2] >= 100 * 1000 and got["b"][3] >= 100 * 1000, (dest, got)
        assert got["c"][:2] == (0, 0), \
            "100 messages to %s, wanted by b alone, crossed to c: %r" % (dest, got)
        assert got["c"][2] < 5000 and got["c"][3] < 5000, (dest, got)
    remote.wait_count(200)


def test_unsubscribe_stops_link_traffic(cluster, clients):
    a, b = start_mesh(cluster, [("a", 2), ("b", 1)])
    p = uid("un")
    topic = "/topic/%s.data.t" % p
    sync_topic = "/topic/%s.sync" % p
    sync_sub = clients(b)
    sync_sub.subscribe(sync_topic)
    sub = clients(b)
    exact = sub.subscribe(topic)
    pattern = sub.subscribe("/topic/%s.data.*" % p)
    pub = clients(a)

    # Two subscriptions on b, one copy over the link: b fans out itself.
    d_out, d_in, _, _ = crossing(pub, topic, 10, sync_topic, sync_sub, a, b)
    assert (d_out, d_in) == (10, 10), \
        "10 messages for 2 subscriptions on b: a counted %d out, b %d in" % (d_out, d_in)
    sub.wait_count(10, sid=exact)
    sub.wait_count(10, sid=pattern)

    # One of two gone: b still wants the topic.
    sub.unsubscribe(exact)
    d_out, d_in, _, _ = crossing(pub, topic, 10, sync_topic, sync_sub, a, b)
    assert (d_out, d_in) == (10, 10)
    sub.wait_count(20, sid=pattern)

    # The last one gone: within a bounded time nothing more crosses.
    sub.unsubscribe(pattern)
    deadline = time.monotonic() + INTEREST_GONE_S
    while True:
        d_out, d_in, _, _ = crossing(pub, topic, 1, sync_topic, sync_sub, a, b)
        if (d_out, d_in) == (0, 0):
            break
        assert time.monotonic() < deadline, \
            "still crossing %.1fs after b's last UNSUBSCRIBE receipt (%d out, %d in)" \
            % (INTEREST_GONE_S, d_out, d_in)
    d_out, d_in, db_out, db_in = crossing(pub, topic, 100, sync_topic, sync_sub, a, b)
    assert (d_out, d_in) == (0, 0), \
        "100 sends after unsubscribe: a counted %d out, b %d in" % (d_out, d_in)
    assert db_out < 5000 and db_in < 5000, (db_out, db_in)
    sub.drain(0.1)
    assert len(sub.of(exact)) == 10 and len(sub.of(pattern)) == 20, \
        [summ(m) for m in sub.messages]


def test_websocket_subscribers_get_cluster_messages(trio, clients):
    a, b, c = trio
    p = uid("ws")
    topic = "/topic/%s.t" % p
    wsub = clients(b, ws=True)
    wsub.subscribe(topic)
    wpat = clients(c, ws=True)
    wpat.subscribe("/topic/%s.*" % p)
    tsub = clients(a)
    tsub.subscribe(topic)
    pub = clients(a)
    bodies = ["w%02d" % i for i in range(20)]
    pub.send_batch([(topic, x) for x in bodies])
    wsub.wait_count(20)
    wpat.wait_count(20)
    settle(pub, topic, [(wsub, 1), (wpat, 1), (tsub, 1)])
    for s in (wsub, wpat, tsub):
        assert s.bodies() == bodies, s
        s.messages.clear()
    # A WebSocket publisher on another node: TCP and WebSocket subscribers elsewhere.
    wpub = clients(b, ws=True)
    wpub.send_batch([(topic, x) for x in bodies])
    for s in (wsub, wpat, tsub):
        s.wait_count(20)
    settle(wpub, topic, [(wsub, 1), (wpat, 1), (tsub, 1)])
    for s in (wsub, wpat, tsub):
        assert s.bodies() == bodies, s


@pytest.mark.parametrize("restart", ["same-ports-at-once", "new-ports-once-dead"])
def test_kill9_drops_the_link_and_a_restart_brings_it_back(cluster, clients, restart):
    """same-ports-at-once: c comes back on its old gossip and route ports before SWIM has
    declared it dead (a supervisor's restart). new-ports-once-dead: the others first mark
    it dead, then it comes back on new ports."""
    a, b, c = start_mesh(cluster, [("a", 2), ("b", 1), ("c", 2)])
    topic = "/topic/" + uid("kr")
    sa, sb, sc = clients(a), clients(b), clients(c)
    for s in (sa, sb, sc):
        s.subscribe(topic)
    pa = clients(a)
    pa.send_batch([(topic, "pre-%d" % i) for i in range(10)])
    for s in (sa, sb, sc):
        s.wait_count(10)
    c_ports = dict(c.ports)

    cluster.kill9("c")
    killed = time.monotonic()
    for node in (a, b):
        wait_for(lambda: link_of(node, "c") in ("down", "connecting"), LINK_DOWN_S,
                 "%s to drop its link to c" % node.name)
    print("links to c down %.2fs after kill -9" % (time.monotonic() - killed))
    # Sending while c is gone: accepted at once, delivered to those still there.
    pa.send_batch([(topic, "gone-%d" % i) for i in range(10)])
    for s in (sa, sb):
        s.wait_count(20)
    if restart == "new-ports-once-dead":
        for node in (a, b):
            wait_for(lambda: member(node, "c")["state"] == "dead", DEAD_S,
                     "%s to mark c dead" % node.name)
        c = cluster.start("c", shards=2, join=a.gossip)
    else:
        c = cluster.start("c", shards=2, join=a.gossip, gossip_port=c_ports["gossip"],
                          route_port=c_ports["route"])
    started = time.monotonic()
    wait_mesh([a, b, c], timeout=LINK_UP_S)
    print("c alive with links up %.2fs after its restart" % (time.monotonic() - started))

    sc2 = clients(c)
    sc2.subscribe(topic)
    pc = clients(c)
    expected = {"pre-": ["pre-%d" % i for i in range(10)],
                "gone-": ["gone-%d" % i for i in range(10)],
                "a-": ["a-%d" % i for i in range(20)],
                "c-": ["c-%d" % i for i in range(20)]}
    pa.send_batch([(topic, x) for x in expected["a-"]])
    pc.send_batch([(topic, x) for x in expected["c-"]])
    for s in (sa, sb):
        s.wait_count(60)
    sc2.wait_count(40)
    for pub in (pa, pc):
        settle(pub, topic, [(sa, 1), (sb, 1), (sc2, 1)])
    for s in (sa, sb):
        in_publisher_order(s.bodies(), expected)
    in_publisher_order(sc2.bodies(), {"a-": expected["a-"], "c-": expected["c-"]})
    # The old subscriber on the killed c got the first ten and nothing else.
    assert sc.bodies() == expected["pre-"]
    cluster.check_alive()


def test_a_link_that_stays_full_is_dropped_and_resynced(cluster, clients):
    """b is stopped (SIGSTOP: its link stays open, nothing is read) while a publisher on a
    floods a topic b wants: a's link to b fills, a's route stops taking work and the
    publisher is paused (backpressure, not unbounded buffers); after 5 s full the link is
    dropped, the publisher runs again, and once b resumes the link comes back with its
    interest: b's subscriber gets new messages. Gossip runs slowly here (5 s period) so the
    membership does not declare b dead first."""
    slow = ("--gossip-interval", "5000")
    a = cluster.start("a", extra=slow)
    b = cluster.start("b", join=a.gossip, extra=slow)
    wait_mesh([a, b], timeout=15)
    topic = "/topic/" + uid("full")
    sb = clients(b)
    sb.subscribe(topic)
    frame = b"SEND\ndestination:" + topic.encode() + b"\n\n" + b"x" * 1000 + b"\0"
    pub = socket.create_connection(("127.0.0.1", a.ports["stomp"]), timeout=5)
    pub.sendall(b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0")
    assert pub.recv(4096).startswith(b"CONNECTED")
    pub.setblocking(False)
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        pending, sent, dropped_at, paused = b"", [], None, False
        while time.monotonic() - stopped < 15:
            if dropped_at is None and "stayed over" in a.log():
                dropped_at = time.monotonic()
            if dropped_at is not None and time.monotonic() - dropped_at > 1.0:
                break
            if not pending:
                pending = frame * 64
            try:
                n = pub.send(pending)
                pending = pending[n:]
                sent.append((time.monotonic(), n))
            except BlockingIOError:
                time.sleep(0.01)
        assert dropped_at, "the full link was not dropped within 15 s; a's log:\n" + a.log()[-3000:]
        waited = dropped_at - stopped
        assert 4.5 < waited < 10, "dropped %.1fs after b stopped, expected about 5 s" % waited
        # Backpressure: the publisher could not push for most of the time the link was full.
        before = sum(n for t, n in sent if stopped + 2 < t < dropped_at - 0.5)
        after = sum(n for t, n in sent if t > dropped_at)
        print("bytes accepted: while full %d, in the second after the drop %d" % (before, after))
        assert before < 64 << 20, "the publisher kept going while the link was full: %d bytes" % before
        assert after > 0, "the publisher stayed paused after the link was dropped"
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
        pub.close()
    # b reads again: the link comes back, with its interest
    wait_mesh([a, b], timeout=15)
    sb.drain(1.0)
    sb.messages.clear()
    pa = clients(a)
    marker = uid("after-")
    wait_for(lambda: (pa.send(topic, marker, receipt=True), sb.drain(0.3),
                      any(m.body.decode() == marker for m in sb.messages))[-1], 10,
             "b's subscriber to get messages again once the link is back")
    cluster.check_alive()
