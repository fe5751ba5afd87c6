"""
tests/cluster/test_queues_cluster.py - queues across nodes with real `herald` processes on
127.0.0.1 (core/route_queue.c: each /queue/<name> has one owner node, rendezvous hashing
over the alive nodes; producers and consumers may be on any node).

What is checked, end to end through raw-socket STOMP clients:
  1. producer on one node, consumer on another, 16 queues, 500 receipted SENDs: each
     message received exactly once (and in order per queue);
  2. one queue, client-individual consumers with prefetch-count 10 on two other nodes:
     each of 600 messages once; one at a time they alternate exactly, pipelined both get
     a share;
  3. messages held with no consumer, consumed later from another node: all, in order;
  4. a 4th node joins while a producer sends and consumers on two nodes consume and ack:
     every receipted message arrives, duplicates only with redelivered:true, and once all
     is acked the owners hold nothing (no ACK lost in the move); queues held with no
     consumer that now hash to the new node move there whole and in order;
  5. SIGTERM of a non-seed node while producers and consumers run elsewhere: it hands its
     queues over ("queues handed over to the other nodes"), no receipted message missing,
     the same checks as in 4;
  6. kill -9 of a consumer's node: what it had unacked (prefetch-count bounds it across
     nodes) goes to a consumer on another node, redelivered:true;
  7. request/reply across nodes through reply-to:/temp-queue/...;
  8. kill -9 of a queue's owner: once the others declare it dead, receipted SENDs to the
     queue through a survivor succeed and are consumed within 10 s, by the consumer that
     subscribed before the kill and by a new one (what the dead owner held is
     test_replication.py's).

A checker, not eyeballs: producers record every message whose RECEIPT came (a SEND whose
link dropped may get ERROR "queue owner unreachable": the producer reconnects and sends it
again as a new attempt), consumers record what they got; the assertions run at the end.
Each message carries `x-id:<id>.<attempt>`; of the copies of one attempt at most one may
lack redelivered:true (which came first cannot be told across two client connections).
Which node owns a queue is computed here as core/placement.c does (xxh64, rendezvous), so
a test can pick queues on a given node; HERALD_TEST_SEED replays a run's queue names.

Every port is 0 (each node logs `listening proto=<p> addr=127.0.0.1:<port>`), the gossip
period is 200 ms, some nodes run two shards, every wait has a deadline, and only the
processes started here are stopped, by PID. Node logs stay in pytest's tmp dir.

Run: HERALD_BIN=build/core/herald /usr/bin/python3 -m pytest -q tests/cluster/test_queues_cluster.py
"""

import os
import random
import re
import struct
import threading
import time

import pytest

from clusterlib import (HERALD, Closed, StompConn, http_get, start_mesh, wait_for,
                        wait_mesh)

WAIT = 10.0		# bound for anything expected to happen
DRAIN_S = 0.5		# watched after the last expected message for late duplicates
OWNER_BACK_S = 10.0	# kill -9 of an owner to its queue working again through the others

pytestmark = pytest.mark.skipif(not HERALD, reason="HERALD_BIN must name the herald binary")

HANDED_OVER = "queues handed over to the other nodes"

# Queue names (so which node owns which queue) come from this seed: HERALD_TEST_SEED=<n>
# replays a run's placement.
SEED = int(os.environ.get("HERALD_TEST_SEED") or random.SystemRandom().randrange(1 << 32))
RNG = random.Random(SEED)


def uid(prefix="q"):
    return "%s%010x" % (prefix, RNG.getrandbits(40))


# --- placement, as core/placement.c computes it ------------------------------------------

_M64 = (1 << 64) - 1
_P1, _P2, _P3 = 11400714785074694791, 14029467366897019727, 1609587929392839161
_P4, _P5 = 9650029242287828579, 2870177450012600261
HD_HASH_SEED = 0x68657261	# core/strmap.h


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc, lane):
    return (_rotl((acc + lane * _P2) & _M64, 31) * _P1) & _M64


def xxh64(data, seed):
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M64, (seed + _P2) & _M64, seed, (seed - _P1) & _M64]
        while i + 32 <= n:
            lanes = struct.unpack_from("<4Q", data, i)
            v = [_round(a, b) for a, b in zip(v, lanes)]
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M64
        for x in v:
            h = ((h ^ _round(0, x)) * _P1 + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while i + 8 <= n:
        h ^= _round(0, struct.unpack_from("<Q", data, i)[0])
        h = (_rotl(h, 27) * _P1 + _P4) & _M64
        i += 8
    if i + 4 <= n:
        h ^= (struct.unpack_from("<I", data, i)[0] * _P1) & _M64
        h = (_rotl(h, 23) * _P2 + _P3) & _M64
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _M64
        h = (_rotl(h, 11) * _P1) & _M64
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    return h ^ (h >> 32)


def hd_hash(data):
    return xxh64(data, HD_HASH_SEED) or 1


def owner_of(dest, names):
    """The node owning queue `dest` (e.g. /queue/x in vhost /) among node `names`."""
    k = hd_hash(dest.encode())
    best, best_score = None, -1
    for name in names:
        nh = hd_hash(name.encode())
        score = hd_hash(struct.pack("<QQ", k, nh))
        if best is None or score > best_score or (score == best_score and nh > best[1]):
            best, best_score = (name, nh), score
    return best[0]


def queues_owned_by(owner, names, n, prefix="q"):
    """n fresh queue destinations that `owner` owns among `names`."""
    out = []
    while len(out) < n:
        d = "/queue/" + uid(prefix)
        if owner_of(d, names) == owner:
            out.append(d)
    return out


def queues_not_owned_by(node, names, n, prefix="q"):
    out = []
    while len(out) < n:
        d = "/queue/" + uid(prefix)
        if owner_of(d, names) != node:
            out.append(d)
    return out


@pytest.fixture(autouse=True)
def _seed_and_logs(tmp_path):
    print("HERALD_TEST_SEED=%d; node logs in %s" % (SEED, tmp_path))


def queues_on(node):
    """{queue name: messages} this node owns (GET /api/queues)."""
    return {q["name"]: q["messages"] for q in http_get(node, "/api/queues")["queues"]}


# --- STOMP over a raw socket --------------------------------------------------------------

class Conn(StompConn):
    """A StompConn to a node, with the waits these tests use."""

    def __init__(self, node, timeout=WAIT):
        self.node = node
        super().__init__(node.ports["stomp"], timeout)

    def __repr__(self):
        return "Conn(%s)" % self.node.name

    def expect(self, pred, timeout, what):
        """Reads until a frame satisfies pred; MESSAGEs and RECEIPTs that do not are
        returned in a list alongside it."""
        deadline = time.monotonic() + timeout
        other = []
        while True:
            f = self.recv(max(0.0, deadline - time.monotonic()))
            if f is None:
                raise AssertionError("%r: timed out after %.1fs waiting for %s"
                                     % (self, timeout, what))
            if pred(f):
                return f, other
            if f.cmd == "ERROR":
                raise AssertionError("%r: ERROR while waiting for %s: %r" % (self, what, f))
            other.append(f)

    def subscribe(self, dest, ack="auto", prefetch=None, sid=None):
        sid = sid or uid("sub")
        rid = uid("r")
        h = [("destination", dest), ("id", sid), ("ack", ack), ("receipt", rid)]
        if prefetch is not None:
            h.append(("prefetch-count", str(prefetch)))
        self.send("SUBSCRIBE", h)
        _, other = self.expect(lambda f: f.cmd == "RECEIPT" and f.get("receipt-id") == rid,
                               WAIT, "the SUBSCRIBE receipt for %s" % dest)
        return sid, other


# --- clients that run on their own thread -------------------------------------------------

class Ledger:
    """What every producer had receipted and every consumer received, for the checker."""

    def __init__(self):
        self.lock = threading.Lock()
        self.receipted = {}	# id -> dest
        self.attempts = 0
        self.errors = []	# ERROR frames producers saw (message header)
        self.received = []	# (id, attempt, dest, redelivered, consumer name)

    def got(self, xid, dest, redelivered, who):
        mid, _, attempt = xid.partition(".")
        with self.lock:
            self.received.append((mid, attempt, dest, redelivered, who))

    def ids_received(self):
        with self.lock:
            return {r[0] for r in self.received}

    def missing(self):
        with self.lock:
            got = {r[0] for r in self.received}
            return sorted(set(self.receipted) - got)

    def check(self, what):
        """Every receipted message received; of the copies of one attempt, at most one
        without redelivered:true. Returns the report line."""
        with self.lock:
            received = list(self.received)
            receipted = dict(self.receipted)
        copies = {}	# (id, attempt) -> [(arrival index, consumer, redelivered)]
        for i, (mid, attempt, dest, redelivered, who) in enumerate(received):
            copies.setdefault((mid, attempt), []).append((i, who, redelivered))
        # every copy but one of an attempt must say redelivered:true. Which copy came first
        # cannot be told across connections (each client thread reads its own socket in its
        # own time), so the rule is "at most one copy without it"
        bad = [(key, receipted.get(key[0]), c) for key, c in copies.items()
               if sum(1 for _, _, r in c if not r) > 1]
        got = {mid for mid, _ in copies}
        missing = sorted(set(receipted) - got)
        dups = sum(len(c) - 1 for c in copies.values())
        resend_copies = len(copies) - len(got)	# ids received under two attempts
        redelivered = sum(1 for r in received if r[3])
        report = ("%s: %d receipted, %d received (%d distinct), %d missing, %d duplicate "
                  "copies of one attempt (%d redelivered:true in all), %d extra copies from "
                  "resends, %d ERRORs seen by producers %s"
                  % (what, len(receipted), len(received), len(got), len(missing), dups,
                     redelivered, resend_copies, len(self.errors),
                     sorted(set(self.errors))))
        print(report)
        assert not missing, "%s; missing (first 20): %s" % (report, [
            (m, receipted[m]) for m in missing[:20]])
        assert not bad, ("%s; copies without redelivered:true more than once (first 20: (id, "
                         "attempt), queue, [(arrival, consumer, redelivered)]): %s"
                         % (report, bad[:20]))
        return report


class Producer(threading.Thread):
    """Sends messages to dests round robin, each with a receipt, keeping at most `window`
    unanswered. Runs until `count` are receipted, or (count None) until stop is set.
    An ERROR or a closed connection: reconnect (to the same node) and send again what was
    not receipted, as a new attempt."""

    def __init__(self, node, dests, ledger, count=None, window=32, prefix="m", pace_s=0.0):
        super().__init__(daemon=True)
        self.node = node
        self.dests = dests
        self.ledger = ledger
        self.count = count
        self.window = window
        self.prefix = prefix
        self.pace_s = pace_s
        self.stop = threading.Event()
        self.failure = None
        self.sent_ok = 0
        self.reconnects = 0

    def run(self):
        try:
            self._run()
        except BaseException as e:	# reported by finish()
            self.failure = e

    def _run(self):
        outstanding = {}	# receipt id -> (id, dest, attempt)
        retry = []		# (id, dest, attempt) to send again
        n = 0
        conn = Conn(self.node)
        deadline_idle = None
        while True:
            more = (self.count is None and not self.stop.is_set()) or \
                   (self.count is not None and n < self.count)
            if not more and not outstanding and not retry:
                break
            try:
                while (retry or more) and len(outstanding) < self.window:
                    if retry:
                        mid, dest, attempt = retry.pop(0)
                    else:
                        mid = "%s%d" % (self.prefix, n)
                        dest = self.dests[n % len(self.dests)]
                        attempt = 0
                        n += 1
                        more = (self.count is None and not self.stop.is_set()) or \
                               (self.count is not None and n < self.count)
                    rid = "%s-%d" % (mid, attempt)
                    outstanding[rid] = (mid, dest, attempt)
                    with self.ledger.lock:
                        self.ledger.attempts += 1
                    body = ("%s.%d" % (mid, attempt)).encode()
                    conn.send("SEND", [("destination", dest), ("x-id", "%s.%d" % (mid, attempt)),
                                       ("receipt", rid)], body)
                    if self.pace_s:
                        time.sleep(self.pace_s)
                f = conn.recv(0.05 if (more and len(outstanding) < self.window) else 1.0)
                if f is None:
                    if deadline_idle is None:
                        deadline_idle = time.monotonic() + WAIT * 2
                    elif time.monotonic() > deadline_idle:
                        raise AssertionError("%s: no RECEIPT for %.0fs; %d outstanding"
                                             % (self.node.name, WAIT * 2, len(outstanding)))
                    continue
                deadline_idle = None
                if f.cmd == "RECEIPT":
                    rid = f.get("receipt-id")
                    if rid in outstanding:
                        mid, dest, _ = outstanding.pop(rid)
                        with self.ledger.lock:
                            self.ledger.receipted[mid] = dest
                        self.sent_ok += 1
                    continue
                if f.cmd == "ERROR":
                    with self.ledger.lock:
                        self.ledger.errors.append(f.get("message"))
                    raise Closed("ERROR %s" % f.get("message"))
                raise AssertionError("%s: producer got %r" % (self.node.name, f))
            except Closed:
                conn.close()
                self.reconnects += 1
                if self.reconnects > 20:
                    raise
                retry = sorted(((mid, dest, attempt + 1)
                                for mid, dest, attempt in outstanding.values()),
                               key=lambda t: int(t[0][len(self.prefix):])) + retry
                outstanding = {}
                time.sleep(0.1)
                conn = Conn(self.node)
        conn.close()

    def finish(self, timeout=WAIT * 3):
        self.stop.set()
        self.join(timeout)
        assert not self.is_alive(), "producer on %s did not finish" % self.node.name
        if self.failure:
            raise self.failure


class Consumer(threading.Thread):
    """Subscribes to dests (each with a receipt) and records every MESSAGE; acks each one
    in client modes unless hold=True (then it never acks)."""

    def __init__(self, node, dests, ledger, name, ack="client-individual", prefetch=None,
                 hold=False, ack_delay_s=0.0):
        super().__init__(daemon=True)
        self.node = node
        self.dests = dests
        self.ledger = ledger
        self.name = name
        self.ack = ack
        self.prefetch = prefetch
        self.hold = hold
        self.ack_delay_s = ack_delay_s
        self.acks = []		# (due, ack id): ACKs held back ack_delay_s
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.failure = None
        self.closed = False
        self.messages = []	# (x-id, dest, redelivered)
        self.lock = threading.Lock()

    def run(self):
        try:
            self._run()
        except BaseException as e:
            self.failure = e
            self.ready.set()

    def _record(self, f):
        if f.cmd != "MESSAGE":
            raise AssertionError("%s: consumer got %r" % (self.name, f))
        xid = f.get("x-id")
        dest = f.get("destination")
        redelivered = f.get("redelivered") == "true"
        with self.lock:
            self.messages.append((xid, dest, redelivered))
        self.ledger.got(xid, dest, redelivered, self.name)
        if self.ack != "auto" and not self.hold:
            self.acks.append((time.monotonic() + self.ack_delay_s, f.get("ack")))
            self._flush_acks()

    def _flush_acks(self):
        now = time.monotonic()
        while self.acks and self.acks[0][0] <= now:
            self.conn.send("ACK", [("id", self.acks.pop(0)[1])])

    def _run(self):
        self.conn = Conn(self.node)
        for d in self.dests:
            _, early = self.conn.subscribe(d, ack=self.ack, prefetch=self.prefetch)
            for f in early:
                self._record(f)
        self.ready.set()
        while not self.stop.is_set():
            wait = 0.1 if not self.acks else max(0.0, min(0.1, self.acks[0][0] - time.monotonic()))
            try:
                f = self.conn.recv(wait)
                if f is not None:
                    self._record(f)
                self._flush_acks()
            except Closed:
                self.closed = True
                return
        self.conn.close()

    def count(self):
        with self.lock:
            return len(self.messages)

    def got(self):
        with self.lock:
            return list(self.messages)

    def started(self):
        self.start()
        assert self.ready.wait(WAIT * 2), "%s did not subscribe" % self.name
        if self.failure:
            raise self.failure
        return self

    def finish(self, timeout=WAIT):
        self.stop.set()
        self.join(timeout)
        assert not self.is_alive(), "%s did not stop" % self.name
        if self.failure:
            raise self.failure


def wait_all_received(ledger, cluster, timeout, what, consumers=()):
    """Waits until every receipted message was received at least once, then DRAIN_S more
    for late duplicates."""
    deadline = time.monotonic() + timeout
    while True:
        missing = ledger.missing()
        if not missing:
            break
        for c in consumers:
            if c.failure:
                raise c.failure
        if time.monotonic() > deadline:
            raise AssertionError("%s: after %.1fs %d receipted messages not received "
                                 "(first: %s)" % (what, timeout, len(missing), missing[:10]))
        cluster.check_alive()
        time.sleep(0.05)
    time.sleep(DRAIN_S)


def wait_owners_empty(nodes, dests, consumers, what):
    """Once every message was received and every ACK sent, the owners hold nothing for
    these queues: no ready message, no delivery left unacked (an ACK that never reached the
    owner would keep a message there, to come again when its consumer leaves)."""
    wait_for(lambda: all(not c.acks for c in consumers), WAIT, "the consumers' ACKs sent")

    def held():
        out = {}
        for n in nodes:
            for q, k in queues_on(n).items():
                if q in dests and k:
                    out["%s@%s" % (q, n.name)] = k
        return out
    deadline = time.monotonic() + WAIT
    left = held()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = held()
    detail = {n.name: [q for q in http_get(n, "/api/queues")["queues"] if q["name"] in dests
                       and q["messages"]] for n in nodes} if left else {}
    assert not left, "%s: after every message was received and acked, owners still hold " \
        "(ready + unacked): %s; queues as their owners list them: %s" % (what, left, detail)


def send_one_at_a_time(node, dest, ledger, n, prefix):
    """n receipted SENDs from node, each sent once the one before was received (so no
    consumer is ever at its prefetch-count: the queue's round robin alone picks)."""
    conn = Conn(node)
    try:
        for i in range(n):
            mid = "%s%d" % (prefix, i)
            before = len(ledger.received)
            conn.send("SEND", [("destination", dest), ("x-id", mid + ".0"), ("receipt", mid)],
                      mid.encode())
            conn.expect(lambda f: f.cmd == "RECEIPT" and f.get("receipt-id") == mid, WAIT,
                        "RECEIPT %s" % mid)
            with ledger.lock:
                ledger.receipted[mid] = dest
            wait_for(lambda: len(ledger.received) > before, WAIT, "%s received" % mid)
    finally:
        conn.close()


def in_order_per_queue(msgs, expected):
    """msgs: [(x-id, dest, redelivered)]; expected: {dest: [x-id in send order]}."""
    by_dest = {}
    for xid, dest, _ in msgs:
        by_dest.setdefault(dest, []).append(xid)
    for dest, want in expected.items():
        got = by_dest.get(dest, [])
        first = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y),
                     min(len(got), len(want)))
        assert got == want, "%s: expected %d in order, got %d; first difference at %s" % (
            dest, len(want), len(got), first)


def fill_held(node, queues, per_queue):
    """per_queue receipted messages (x-id h<n>.0, round robin) in each of queues, sent on
    node while nobody consumes them; returns their Ledger."""
    ledger = Ledger()
    prod = Producer(node, queues, ledger, count=len(queues) * per_queue, prefix="h")
    prod.start()
    prod.finish()
    return ledger


def check_once_in_order(cluster, cons, ledger, dests, n, prefix, what):
    """cons, the one consumer of dests, gets each of the n messages a Producer sent round
    robin over dests (x-id <prefix><i>.0) exactly once, each queue's in the order sent;
    then it is stopped."""
    wait_all_received(ledger, cluster, WAIT, what, [cons])
    cons.finish()
    ledger.check(what)
    assert len(ledger.received) == n, "%s: %d MESSAGEs for %d sent" % (
        what, len(ledger.received), n)
    expected = {d: ["%s%d.0" % (prefix, i) for i in range(n) if i % len(dests) == k]
                for k, d in enumerate(dests)}
    in_order_per_queue(cons.got(), expected)


def consume_held(cluster, node, queues, ledger, per_queue, what):
    """Consumes what fill_held put in queues from node: every receipted message once (held
    messages are never duplicated), each queue in the order it was sent."""
    cons = Consumer(node, queues, ledger, "held@" + node.name).started()
    check_once_in_order(cluster, cons, ledger, queues, len(queues) * per_queue, "h", what)


def busy_consumers(nodes, dests, ledger):
    """A consumer of every dest on each of nodes: prefetch-count 20, ACKs 50 ms late."""
    return [Consumer(n, dests, ledger, "consumer@" + n.name, prefetch=20,
                     ack_delay_s=0.05).started() for n in nodes]


def check_busy(cluster, owners, dests, ledger, consumers, what):
    """Once the producers are done: every receipted message received, and the owners hold
    nothing more for dests (wait_owners_empty); then stops the consumers."""
    wait_all_received(ledger, cluster, WAIT, what, consumers)
    ledger.check(what + " (busy queues)")
    wait_owners_empty(owners, dests, consumers, what)
    for c in consumers:
        c.finish()


# --- 1. producer and consumer on different nodes --------------------------------------------

def test_every_message_reaches_a_consumer_on_another_node_exactly_once(cluster):
    a, b, c = start_mesh(cluster, [("qa", 2), ("qb", 1), ("qc", 2)])
    dests = ["/queue/" + uid("one%02d-" % i) for i in range(16)]
    owners = {owner_of(d, ["qa", "qb", "qc"]) for d in dests}
    print("owners of the 16 queues: %s" % sorted(owners))
    ledger = Ledger()
    cons = Consumer(c, dests, ledger, "consumer@qc", ack="auto").started()
    prod = Producer(a, dests, ledger, count=500)
    prod.start()
    prod.finish()
    check_once_in_order(cluster, cons, ledger, dests, 500, "m", "case 1")
    cluster.check_alive()


# --- 2. one queue, consumers on two other nodes ---------------------------------------------

def test_one_queue_round_robins_over_consumers_on_two_other_nodes(cluster):
    a, b, c = start_mesh(cluster, [("qa", 1), ("qb", 2), ("qc", 1)])
    dest = "/queue/" + uid("rr")
    print("owner of %s: %s" % (dest, owner_of(dest, ["qa", "qb", "qc"])))
    ledger = Ledger()
    cb = Consumer(b, [dest], ledger, "consumer@qb", prefetch=10).started()
    cc = Consumer(c, [dest], ledger, "consumer@qc", prefetch=10).started()
    # one at a time, each received before the next is sent: every SEND finds both
    # consumers with room, so they alternate exactly
    send_one_at_a_time(a, dest, ledger, 40, "s")
    wait_all_received(ledger, cluster, WAIT, "case 2 (one at a time)", [cb, cc])
    sb = [x for x, _, _ in cb.got() if x.startswith("s")]
    sc = [x for x, _, _ in cc.got() if x.startswith("s")]
    print("one at a time: qb %d, qc %d" % (len(sb), len(sc)))
    assert len(sb) == len(sc) == 20, "round robin one at a time: qb %s, qc %s" % (sb, sc)
    # pipelined: a backlog at the owner; each ACK frees room for one more, so a consumer
    # whose ACKs travel further gets a smaller share (prefetch-count's nature, as on
    # RabbitMQ), but both get one
    fast = Producer(a, [dest], ledger, count=560)
    fast.start()
    fast.finish()
    wait_all_received(ledger, cluster, WAIT, "case 2", [cb, cc])
    cb.finish()
    cc.finish()
    ledger.check("case 2")
    assert len(ledger.received) == 600, "%d MESSAGEs for 600 sent" % len(ledger.received)
    assert not any(r[3] for r in ledger.received), "nothing should be redelivered"
    nb, nc = cb.count(), cc.count()
    print("split: qb %d, qc %d" % (nb, nc))
    assert nb >= 60 and nc >= 60, "both get a share: qb got %d, qc got %d of 600" % (nb, nc)
    cluster.check_alive()


# --- 3. held messages, consumed from another node ---------------------------------------------

def test_held_messages_are_consumed_from_another_node_in_order(cluster):
    nodes = start_mesh(cluster, [("qa", 2), ("qb", 1), ("qc", 1)])
    a, c = nodes[0], nodes[2]
    names = [n.name for n in nodes]
    # queues on every node, the producer's included
    dests = (queues_owned_by("qa", names, 3, "held") + queues_owned_by("qb", names, 3, "held") +
             queues_owned_by("qc", names, 2, "held"))
    ledger = Ledger()
    prod = Producer(a, dests, ledger, count=8 * 40)
    prod.start()
    prod.finish()
    # a RECEIPT means the owner holds it
    want = {n.name: {d: 40 for d in dests if owner_of(d, names) == n.name} for n in nodes}

    def held_as_expected():
        return all({d: q for d, q in queues_on(n).items() if d in dests} == want[n.name]
                   for n in nodes)
    wait_for(held_as_expected, WAIT, "each owner to list its queues with 40 messages")

    cons = Consumer(c, dests, ledger, "consumer@qc").started()
    check_once_in_order(cluster, cons, ledger, dests, 320, "m", "case 3")
    cluster.check_alive()


# --- 4. a node joins under load -------------------------------------------------------------

def test_a_node_joining_under_load_loses_nothing_and_takes_its_queues_whole(cluster):
    nodes = start_mesh(cluster, [("qa", 2), ("qb", 1), ("qc", 2)])
    a, b, c = nodes
    three = ["qa", "qb", "qc"]
    four = three + ["qd"]
    dests = ["/queue/" + uid("join%02d-" % i) for i in range(16)]
    moving = sum(1 for d in dests if owner_of(d, four) == "qd")
    print("%d of the 16 busy queues move to qd" % moving)
    # queues held with no consumer, some of which move to qd when it joins
    held = ([d for d in queues_owned_by("qd", four, 4, "hjoin")] +
            queues_not_owned_by("qd", four, 2, "hjoin"))
    held_ledger = fill_held(b, held, 50)

    ledger = Ledger()
    cb, cc = busy_consumers([b, c], dests, ledger)
    prod = Producer(a, dests, ledger, window=16, pace_s=0.001)
    prod.start()
    wait_for(lambda: prod.sent_ok >= 300 or prod.failure, WAIT, "300 receipted before the join")
    d = cluster.start("qd", shards=2, join=a.gossip)
    wait_mesh([a, b, c, d], departed_ok=True)
    print("qd joined with %d receipted so far" % prod.sent_ok)
    joined_at = prod.sent_ok
    wait_for(lambda: prod.sent_ok >= joined_at + 300 or prod.failure, WAIT,
             "300 more receipted after the join")
    prod.finish()
    check_busy(cluster, [a, b, c, d], dests, ledger, [cb, cc], "case 4")
    assert cb.count() and cc.count(), (cb.count(), cc.count())

    # the held queues: at their owner now, whole and in order
    held_by = {n: {q: 50 for q in held if owner_of(q, four) == n} for n in four}
    wait_for(lambda: all({q: k for q, k in queues_on(n).items() if q in held} == held_by[n.name]
                         for n in [a, b, c, d]),
             WAIT, "each held queue listed by its owner now, with its 50 messages")
    consume_held(cluster, c, held, held_ledger, 50, "case 4 (held queues)")
    cluster.check_alive()


# --- 5. SIGTERM of a node under load --------------------------------------------------------

def test_sigterm_of_a_node_hands_its_queues_over_under_load(cluster):
    nodes = start_mesh(cluster, [("qa", 2), ("qb", 2), ("qc", 1)])
    a, b, c = nodes
    three = ["qa", "qb", "qc"]
    dests = ["/queue/" + uid("term%02d-" % i) for i in range(16)]
    print("qc owns %d of the 16 busy queues" % sum(1 for d in dests
                                                  if owner_of(d, three) == "qc"))
    held = queues_owned_by("qc", three, 3, "hterm")
    held_ledger = fill_held(a, held, 40)

    ledger = Ledger()
    ca, cb = busy_consumers([a, b], dests, ledger)
    pa = Producer(a, dests, ledger, window=16, prefix="a", pace_s=0.001)
    pb = Producer(b, dests, ledger, window=16, prefix="b", pace_s=0.001)
    pa.start()
    pb.start()
    wait_for(lambda: pa.sent_ok + pb.sent_ok >= 400 or pa.failure or pb.failure, WAIT,
             "400 receipted before the SIGTERM")
    node, rc = cluster.terminate("qc")
    assert rc == 0, "qc exited with %s" % rc
    log = node.log()
    assert HANDED_OVER in log, "qc's log lacks %r:\n%s" % (HANDED_OVER, log[-3000:])
    print([l for l in log.splitlines() if HANDED_OVER in l])
    wait_mesh([a, b], timeout=WAIT, departed_ok=True)
    at = pa.sent_ok + pb.sent_ok
    wait_for(lambda: pa.sent_ok + pb.sent_ok >= at + 300 or pa.failure or pb.failure, WAIT,
             "300 more receipted after qc left")
    pa.finish()
    pb.finish()
    check_busy(cluster, [a, b], dests, ledger, [ca, cb], "case 5")
    consume_held(cluster, b, held, held_ledger, 40, "case 5 (held queues)")
    cluster.check_alive()


# --- 6. kill -9 of a consumer's node ---------------------------------------------------------

def test_kill9_of_a_consumers_node_redelivers_its_unacked_messages_elsewhere(cluster):
    nodes = start_mesh(cluster, [("qa", 1), ("qb", 2), ("qc", 1)])
    a, b, c = nodes
    # the queue lives on a survivor: what it holds must outlive qc
    dest = queues_not_owned_by("qc", ["qa", "qb", "qc"], 1, "k9c")[0]
    print("owner of %s: %s" % (dest, owner_of(dest, ["qa", "qb", "qc"])))
    ledger = Ledger()
    # qc's consumer never acks: prefetch-count 10 holds it to 10 unacked
    cc = Consumer(c, [dest], ledger, "holder@qc", prefetch=10, hold=True).started()
    cb = Consumer(b, [dest], ledger, "consumer@qb", prefetch=10).started()
    prod = Producer(a, [dest], ledger, count=40)
    prod.start()
    prod.finish()
    wait_all_received(ledger, cluster, WAIT, "case 6 (before the kill)", [cb, cc])
    held_at_c = [x for x, _, _ in cc.got()]
    print("qc's consumer holds %d unacked, qb's got %d" % (len(held_at_c), cb.count()))
    assert len(held_at_c) == 10, "prefetch-count 10 across nodes: qc got %d" % len(held_at_c)
    assert cb.count() == 30, cb.count()

    cluster.kill9("qc")
    wait_for(lambda: {x for x, _, r in cb.got() if r} >= set(held_at_c) or cb.failure, WAIT,
             "qc's 10 unacked messages at qb, redelivered")
    time.sleep(DRAIN_S)
    cb.finish()
    again = [(x, r) for x, _, r in cb.got()[30:]]
    assert sorted(again) == sorted((x, True) for x in held_at_c), again
    ledger.check("case 6")
    cluster.check_alive()


# --- 7. request/reply across nodes --------------------------------------------------------

REPLY_QUEUE_RE = re.compile(r"^/reply-queue/(amq\.gen-[A-Za-z0-9_-]{22})$")


def test_request_reply_through_a_temp_queue_across_nodes(cluster):
    a, b, c = start_mesh(cluster, [("qa", 2), ("qb", 1), ("qc", 1)])
    svc = "/queue/" + uid("svc")
    responder = Conn(b)
    try:
        responder.subscribe(svc)
        requesters = {"qa": Conn(a), "qc": Conn(c)}
        for who, r in requesters.items():
            for i in range(3):
                rid = uid("r")
                r.send("SEND", [("destination", svc), ("reply-to", "/temp-queue/r1"),
                                ("x-id", "%s-%d" % (who, i)), ("receipt", rid)],
                       ("request %s %d" % (who, i)).encode())
                f, other = r.expect(lambda f: f.cmd == "RECEIPT", WAIT, "RECEIPT")
                assert f.get("receipt-id") == rid and not other, (f, other)
        # the responder answers each request where its reply-to says
        reply_to = {}
        backlog = []	# requests that came while the responder waited for a RECEIPT
        for _ in range(6):
            if backlog:
                req = backlog.pop(0)
            else:
                req, _ = responder.expect(lambda f: f.cmd == "MESSAGE", WAIT, "a request")
            rt = req.get("reply-to")
            assert REPLY_QUEUE_RE.match(rt or ""), req
            xid = req.get("x-id")
            reply_to.setdefault(xid.split("-")[0], set()).add(rt)
            rid = uid("r")
            responder.send("SEND", [("destination", rt), ("correlation-id", xid),
                                    ("receipt", rid)], ("reply to " + xid).encode())
            _, other = responder.expect(
                lambda f: f.cmd == "RECEIPT" and f.get("receipt-id") == rid, WAIT,
                "the reply's RECEIPT")
            backlog += other
        # one reply queue per requester connection, distinct between them
        assert len(reply_to["qa"]) == 1 and len(reply_to["qc"]) == 1, reply_to
        assert reply_to["qa"] != reply_to["qc"], reply_to
        for who, r in requesters.items():
            got = []
            for i in range(3):
                m, _ = r.expect(lambda f: f.cmd == "MESSAGE", WAIT, "reply %d at %s" % (i, who))
                assert m.get("subscription") == "/temp-queue/r1", m
                name = REPLY_QUEUE_RE.match(next(iter(reply_to[who]))).group(1)
                assert m.get("destination") == "/queue/" + name, m
                assert "ack" not in m.headers, m
                got.append((m.get("correlation-id"), m.body.decode()))
            assert got == [("%s-%d" % (who, i), "reply to %s-%d" % (who, i)) for i in range(3)]
            assert r.recv(0.3) is None, "a reply too many at %s" % who
            r.close()
    finally:
        responder.close()
    cluster.check_alive()


# --- 8. kill -9 of a queue's owner ---------------------------------------------------------

def test_after_kill9_of_its_owner_a_queue_works_again_through_the_survivors(cluster):
    nodes = start_mesh(cluster, [("qa", 2), ("qb", 1), ("qc", 1)])
    a, b, c = nodes
    dest = queues_owned_by("qc", ["qa", "qb", "qc"], 1, "k9o")[0]
    new_owner = owner_of(dest, ["qa", "qb"])
    ledger = Ledger()
    cb = Consumer(b, [dest], ledger, "consumer@qb").started()
    warm = Producer(a, [dest], ledger, count=5, prefix="w")
    warm.start()
    warm.finish()
    wait_all_received(ledger, cluster, WAIT, "case 8 (before the kill)", [cb])
    wait_for(lambda: dest in queues_on(c), WAIT, "qc to list %s" % dest)

    cluster.kill9("qc")
    killed = time.monotonic()
    # receipted SENDs through a survivor: they wait for the verdict, then go to the new owner
    prod = Producer(a, [dest], ledger, count=20, window=4, prefix="k")
    prod.start()
    wait_for(lambda: all(m["state"] == "dead" for n in (a, b)
                         for m in http_get(n, "/cluster/status")["members"] if m["name"] == "qc"),
             OWNER_BACK_S, "qa and qb to declare qc dead")
    print("qc dead on qa and qb %.1fs after kill -9" % (time.monotonic() - killed))
    prod.finish(timeout=OWNER_BACK_S)
    left = OWNER_BACK_S - (time.monotonic() - killed)
    wait_all_received(ledger, cluster, max(left, 0.1), "case 8 (after the kill)", [cb])
    took = time.monotonic() - killed - DRAIN_S
    print("queue back %.1fs after kill -9 (owner now %s; producer reconnects %d)"
          % (took, new_owner, prod.reconnects))
    # a consumer subscribing now, and a producer on the other survivor: one at a time, so
    # the two consumers alternate
    ca = Consumer(a, [dest], ledger, "consumer@qa").started()
    send_one_at_a_time(b, dest, ledger, 10, "n")
    wait_all_received(ledger, cluster, WAIT, "case 8 (a new consumer)", [cb, ca])
    # the new owner holds the queue (its consumers keep it alive)
    wait_for(lambda: dest in queues_on(cluster.nodes[new_owner]), WAIT,
             "%s to list %s" % (new_owner, dest))
    ca.finish()
    cb.finish()
    ledger.check("case 8")
    # distinct: a message the dead owner had delivered and not seen acked comes again from
    # the backup that took the queue over, redelivered (the ledger checked the marks)
    after = {x.partition(".")[0] for x, _, _ in cb.got() if x.startswith("k")}
    print("after the kill: consumer@qb got %d + %d, consumer@qa got %d"
          % (len(after), sum(1 for x, _, _ in cb.got() if x.startswith("n")), ca.count()))
    assert len(after) == 20, "qb's consumer, subscribed before the kill, is registered " \
        "with the new owner: it got %d of 20" % len(after)
    assert ca.count() == 5, "one at a time, two consumers alternate: qa's got %d of 10" % (
        ca.count())
    cluster.check_alive()
