"""
RabbitMQ's request/reply destinations: `reply-to:/temp-queue/<name>` on a SEND, and
`/amq/queue/<name>`. Observed on RabbitMQ 3.10.8 (Debian 12's rabbitmq-server with
rabbitmq_stomp); the frames are written down in the notes that came with this file.

What RabbitMQ does, and these tests ask of herald:
- A SEND with `reply-to:/temp-queue/foo` makes a private, auto-deleted queue for that
  connection (one per temp name per connection) with a server-made name Q, and subscribes the
  connection to it in auto-ack mode under the subscription id `/temp-queue/foo`. Whoever gets
  the request sees `reply-to:/reply-queue/Q` and replies by SENDing there; the reply reaches
  the requester as a MESSAGE with `subscription:/temp-queue/foo`, `destination:/queue/Q` and no
  `ack` header. Q is `amq.gen-` and 22 base64url characters.
- The queue dies with its connection: later replies to it are dropped (the sender gets its
  RECEIPT, no ERROR). No other connection may consume from it.
- `/temp-queue/...` is valid only in `reply-to`: as a SEND or SUBSCRIBE destination it is an
  ERROR, and so is an UNSUBSCRIBE of the `/temp-queue/...` id.
- `/amq/queue/X` and `/queue/X` are one queue; MESSAGEs say `destination:/queue/X` either way.

Where herald is meant to differ (marked rabbitmq_differs): RabbitMQ's `/amq/queue/` never
creates a queue (a SEND to a missing one is dropped, a SUBSCRIBE is ERROR not_found) because
it addresses queues declared over AMQP. Herald has no AMQP and drops idle queues, so "missing"
would only mean "idle for a while", and messages would be lost; herald treats `/amq/queue/X`
as `/queue/X` instead.

After most ERRORs RabbitMQ keeps the connection open (RABBITMQ-REFERENCE "Where RabbitMQ
breaks the spec" 1); where it does, these tests check the close on herald only. ERRORs that
RabbitMQ raises as AMQP channel errors (not_found, resource_locked, access_refused) do close
the connection there too.
"""

import re

import pytest

from helpers import uid
from stompraw import Closed, Timeout

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive: reply queues and /amq/queue/ between connections, routed across shards.
pytestmark = [pytest.mark.shard_sensitive]

REPLY_QUEUE_RE = re.compile(r"^/reply-queue/(amq\.gen-[A-Za-z0-9_-]{22})$")


def queue(name=None):
    return "/queue/" + (name or uid("q"))


def reply_queue_name(reply_to):
    """The queue name in a rewritten reply-to (`/reply-queue/<name>`)."""
    assert reply_to and reply_to.startswith("/reply-queue/"), reply_to
    name = reply_to[len("/reply-queue/"):]
    assert name and "/" not in name, reply_to
    return name


def request(clients, srv, version="1.2", temp="/temp-queue/foo", body="request"):
    """A responder subscribed to a service queue, and a requester whose SEND carries
    reply-to:<temp>. Returns (requester, responder, the request as the responder got it)."""
    svc = queue(uid("svc"))
    responder = clients(srv, version=version)
    responder.subscribe(svc)
    requester = clients(srv, version=version)
    requester.send(svc, body, receipt=True, headers={"reply-to": temp})
    got = responder.wait_messages(1)[0]
    return requester, responder, got


def expect_error(r, srv, timeout=5.0):
    """An ERROR is the first frame back. Herald then closes (the spec); RabbitMQ keeps the
    connection open after most ERRORs, so the close is checked on herald only."""
    f = r.recv_frame(timeout)
    assert f.cmd == "ERROR", f
    if not srv.external:
        assert r.is_closed(2.0), "connection still open after ERROR %r" % f
    return f


# --- /temp-queue: request and reply -------------------------------------------------------

@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_request_reply_through_a_temp_queue(herald, clients, version):
    requester, responder, req = request(clients, herald, version, body="what time is it")
    assert req.body == "what time is it"
    reply_to = req.headers.get("reply-to")
    name = reply_queue_name(reply_to)
    assert "foo" not in name, "the reply queue's name is opaque: %r" % reply_to

    responder.send(reply_to, "noon", receipt=True, headers={"correlation-id": "c-1"})
    rep = requester.wait_messages(1)[0]
    assert rep.body == "noon"
    assert rep.headers["subscription"] == "/temp-queue/foo"
    assert rep.headers["destination"] == "/queue/" + name
    assert rep.headers.get("message-id")
    assert "ack" not in rep.headers, "the temp subscription is auto-ack: %r" % rep.headers
    assert rep.headers.get("correlation-id") == "c-1"
    requester.quiet(1)
    responder.quiet(1)


def test_generated_reply_queue_name_has_rabbitmqs_shape(herald, clients):
    """RabbitMQ names reply queues like AMQP server-named queues: amq.gen-<22 base64url>."""
    _, _, req = request(clients, herald)
    assert REPLY_QUEUE_RE.match(req.headers.get("reply-to", "")), req.headers


def test_reply_to_is_rewritten_on_a_send_to_a_topic_too(herald, clients):
    t = "/topic/" + uid("rpc")
    responder = clients(herald)
    responder.subscribe(t)
    requester = clients(herald)
    requester.send(t, "ping", receipt=True, headers={"reply-to": "/temp-queue/t1"})
    req = responder.wait_messages(1)[0]
    assert req.headers["destination"] == t
    name = reply_queue_name(req.headers.get("reply-to"))
    responder.send(req.headers["reply-to"], "pong", receipt=True)
    rep = requester.wait_messages(1)[0]
    assert rep.body == "pong"
    assert rep.headers["subscription"] == "/temp-queue/t1"
    assert rep.headers["destination"] == "/queue/" + name


def test_a_reply_to_that_is_not_a_temp_queue_is_passed_on_unchanged(herald, clients):
    svc = queue()
    responder = clients(herald)
    responder.subscribe(svc)
    requester = clients(herald)
    requester.send(svc, "x", receipt=True, headers={"reply-to": "/queue/my-replies"})
    assert responder.wait_messages(1)[0].headers.get("reply-to") == "/queue/my-replies"


def test_one_temp_name_on_one_connection_is_one_queue(herald, clients):
    svc = queue()
    responder = clients(herald)
    responder.subscribe(svc)
    requester = clients(herald)
    requester.send(svc, "1", headers={"reply-to": "/temp-queue/foo"})
    requester.send(svc, "2", headers={"reply-to": "/temp-queue/foo"})
    requester.send(svc, "3", receipt=True, headers={"reply-to": "/temp-queue/bar"})
    reqs = responder.wait_messages(3)
    assert [m.body for m in reqs] == ["1", "2", "3"]
    foo, foo2, bar = (m.headers.get("reply-to") for m in reqs)
    reply_queue_name(foo)
    reply_queue_name(bar)
    assert foo == foo2, "the same temp name on one connection is the same queue"
    assert foo != bar, "another temp name is another queue"

    for i in range(5):
        responder.send(foo, "foo-%d" % i)
    responder.send(bar, "bar-0", receipt=True)
    reps = requester.wait_messages(6)
    by_sub = {}
    for m in reps:
        by_sub.setdefault(m.headers["subscription"], []).append(m.body)
    assert by_sub == {"/temp-queue/foo": ["foo-%d" % i for i in range(5)],
                      "/temp-queue/bar": ["bar-0"]}
    requester.quiet(6)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_two_requesters_with_the_same_temp_name_get_distinct_queues(herald, clients, version):
    svc = queue()
    responder = clients(herald, version=version)
    responder.subscribe(svc)
    a = clients(herald, version=version)
    b = clients(herald, version=version)
    a.send(svc, "from-a", receipt=True, headers={"reply-to": "/temp-queue/same"})
    b.send(svc, "from-b", receipt=True, headers={"reply-to": "/temp-queue/same"})
    reqs = responder.wait_messages(2)
    rt = {m.body: m.headers.get("reply-to") for m in reqs}
    reply_queue_name(rt["from-a"])
    reply_queue_name(rt["from-b"])
    assert rt["from-a"] != rt["from-b"]

    responder.send(rt["from-b"], "for-b")
    responder.send(rt["from-a"], "for-a", receipt=True)
    ma = a.wait_messages(1)[0]
    mb = b.wait_messages(1)[0]
    assert (ma.body, mb.body) == ("for-a", "for-b")
    assert ma.headers["subscription"] == mb.headers["subscription"] == "/temp-queue/same"
    assert ma.headers["destination"] == "/queue/" + reply_queue_name(rt["from-a"])
    assert mb.headers["destination"] == "/queue/" + reply_queue_name(rt["from-b"])
    a.quiet(1)
    b.quiet(1)


def test_the_responder_may_also_reply_through_amq_queue(herald, clients):
    requester, responder, req = request(clients, herald)
    name = reply_queue_name(req.headers.get("reply-to"))
    responder.send("/amq/queue/" + name, "via-amq-queue", receipt=True)
    rep = requester.wait_messages(1)[0]
    assert rep.body == "via-amq-queue"
    assert rep.headers["subscription"] == "/temp-queue/foo"
    assert rep.headers["destination"] == "/queue/" + name


# --- /temp-queue: privacy and lifetime ----------------------------------------------------

def test_no_other_connection_may_consume_from_a_reply_queue(herald, clients, raws):
    """RabbitMQ: ERROR resource_locked (the queue is exclusive), and the connection closes."""
    requester, responder, req = request(clients, herald)
    name = reply_queue_name(req.headers.get("reply-to"))
    thief = raws(herald)
    assert thief.connect().cmd == "CONNECTED"
    thief.send_frame("SUBSCRIBE", [("destination", "/amq/queue/" + name), ("id", "s")])
    thief.expect_error_then_close()
    responder.send(req.headers["reply-to"], "still-mine", receipt=True)
    assert requester.wait_messages(1)[0].body == "still-mine"


@pytest.mark.parametrize("how", ["disconnect", "drop"])
def test_the_reply_queue_goes_away_with_the_requester(herald, clients, raws, how):
    """Replies sent after the requester left are dropped: the responder gets its RECEIPT and
    no ERROR, and the queue cannot be subscribed to (RabbitMQ: ERROR not_found)."""
    requester, responder, req = request(clients, herald)
    reply_to = req.headers.get("reply-to")
    name = reply_queue_name(reply_to)
    if how == "disconnect":
        requester.disconnect()
    else:
        requester.kill()
    # The queue goes once the server has seen the connection end; a subscribe attempt that
    # still finds it is refused as well (private), so either way: ERROR.
    responder.send(reply_to, "too-late", receipt=True)
    responder.send(reply_to, "too-late-2", receipt=True)
    assert not responder.errors, responder.errors
    probe = raws(herald)
    assert probe.connect().cmd == "CONNECTED"
    probe.send_frame("SUBSCRIBE", [("destination", "/amq/queue/" + name), ("id", "s")])
    err = probe.expect_error_then_close()
    assert err.cmd == "ERROR"
    # The responder is unharmed.
    q = queue()
    responder.send(q, "after", receipt=True)
    assert not responder.errors, responder.errors
    responder.quiet(1)


def test_a_reply_queue_name_is_refused_under_queue(herald, clients, raws):
    """`amq.` queue names are reserved for the server (RabbitMQ: ERROR access_refused, and the
    connection closes); so /queue/<reply queue> never aliases a reply queue."""
    requester, responder, req = request(clients, herald)
    name = reply_queue_name(req.headers.get("reply-to"))
    for frame in (("SEND", [("destination", "/queue/" + name)], b"x"),
                  ("SUBSCRIBE", [("destination", "/queue/" + name), ("id", "s")], b"")):
        r = raws(herald)
        assert r.connect().cmd == "CONNECTED"
        r.send_frame(*frame)
        r.expect_error_then_close()
    requester.quiet(0)


@pytest.mark.parametrize("cmd", ["SEND", "SUBSCRIBE"])
def test_a_temp_queue_is_no_destination(herald, raws, cmd):
    """RabbitMQ: ERROR "Invalid destination", "'/temp-queue/x' is not a valid destination for
    'SEND'" (or 'SUBSCRIBE'); /temp-queue/ is for reply-to only."""
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    headers = [("destination", "/temp-queue/x")] + ([("id", "s")] if cmd == "SUBSCRIBE" else [])
    r.send_frame(cmd, headers, b"x" if cmd == "SEND" else b"")
    err = expect_error(r, herald)
    assert "/temp-queue/x" in err.get("message", "") + err.body.decode("utf-8", "replace"), err


@pytest.mark.parametrize("reply_to", ["/temp-queue/", "/temp-queue/a/b"],
                         ids=["empty-name", "slash-in-name"])
def test_a_bad_temp_queue_name_in_reply_to_is_refused(herald, raws, reply_to):
    """RabbitMQ: ERROR "Processing error"; the SEND is not delivered."""
    svc = queue()
    sub = raws(herald)
    assert sub.connect().cmd == "CONNECTED"
    sub.send_frame("SUBSCRIBE", [("destination", svc), ("id", "s"), ("receipt", "r")])
    assert sub.recv_frame().cmd == "RECEIPT"
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send_frame("SEND", [("destination", svc), ("reply-to", reply_to)], b"x")
    expect_error(r, herald)
    assert sub.pump(0.3) == []


def test_the_temp_subscription_cannot_be_unsubscribed(herald, clients, raws):
    """RabbitMQ: ERROR "Invalid id", "UNSUBSCRIBE 'id' may not start with /temp-queue/"."""
    svc = queue()
    responder = clients(herald)
    responder.subscribe(svc)
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send_frame("SEND", [("destination", svc), ("reply-to", "/temp-queue/foo"),
                          ("receipt", "sent")], b"x")
    assert r.recv_frame().cmd == "RECEIPT"
    r.send_frame("UNSUBSCRIBE", [("id", "/temp-queue/foo")])
    expect_error(r, herald)


def test_a_reply_needs_no_ack_and_acking_it_is_an_error(herald, clients, raws):
    """The temp subscription is auto-ack; RabbitMQ answers an ACK of a reply with ERROR
    precondition_failed "unknown delivery tag 1" and closes."""
    svc = queue()
    responder = clients(herald, version="1.1")
    responder.subscribe(svc)
    r = raws(herald)
    assert r.connect(version="1.1").cmd == "CONNECTED"
    r.send_frame("SEND", [("destination", svc), ("reply-to", "/temp-queue/foo")], b"x")
    req = responder.wait_messages(1)[0]
    responder.send(req.headers["reply-to"], "reply", receipt=True)
    rep = r.recv_frame()
    assert rep.cmd == "MESSAGE" and rep.body == b"reply", rep
    assert rep["subscription"] == "/temp-queue/foo"
    r.send_frame("ACK", [("message-id", rep["message-id"]), ("subscription", rep["subscription"])])
    r.expect_error_then_close()


# --- /amq/queue ---------------------------------------------------------------------------

def test_amq_queue_and_queue_are_one_queue(herald, clients):
    name = uid("aq")
    pub = clients(herald)
    sub = clients(herald)
    # Held on /queue/X, consumed through /amq/queue/X.
    pub.send("/queue/" + name, "held", receipt=True)
    sa = sub.subscribe("/amq/queue/" + name)
    m = sub.wait_messages(1)[0]
    assert (m.body, m.headers["destination"], m.headers["subscription"]) == \
        ("held", "/queue/" + name, sa)
    # Sent to /amq/queue/X, to the same subscription.
    pub.send("/amq/queue/" + name, "direct", receipt=True)
    m = sub.wait_messages(2)[1]
    assert (m.body, m.headers["destination"]) == ("direct", "/queue/" + name)
    # Sent to /amq/queue/X, consumed through /queue/X.
    sub.unsubscribe(sa)
    sq = sub.subscribe("/queue/" + name)
    pub.send("/amq/queue/" + name, "to-queue-sub", receipt=True)
    m = sub.wait_messages(3)[2]
    assert (m.body, m.headers["destination"], m.headers["subscription"]) == \
        ("to-queue-sub", "/queue/" + name, sq)
    sub.quiet(3)


def test_amq_queue_subscribers_share_round_robin_with_queue_subscribers(herald, clients):
    name = uid("aq")
    a = clients(herald)
    b = clients(herald)
    a.subscribe("/queue/" + name)
    b.subscribe("/amq/queue/" + name)
    pub = clients(herald)
    pub.send_many("/queue/" + name, [str(i) for i in range(10)])
    a.wait_messages(5)
    b.wait_messages(5)
    a.quiet(5)
    b.quiet(5)
    assert sorted(a.bodies() + b.bodies(), key=int) == [str(i) for i in range(10)]


@pytest.mark.rabbitmq_differs("RabbitMQ refuses to SUBSCRIBE to a missing /amq/queue/ "
                              "(ERROR not_found, connection closed); herald has no queues "
                              "declared outside STOMP and treats /amq/queue/X as /queue/X")
def test_subscribe_to_an_unused_amq_queue_makes_it(herald, clients):
    name = uid("aq")
    sub = clients(herald)
    sid = sub.subscribe("/amq/queue/" + name)
    pub = clients(herald)
    pub.send("/queue/" + name, "first", receipt=True)
    m = sub.wait_messages(1)[0]
    assert (m.body, m.headers["destination"], m.headers["subscription"]) == \
        ("first", "/queue/" + name, sid)


@pytest.mark.rabbitmq_differs("RabbitMQ drops a SEND to a missing /amq/queue/ (RECEIPT, no "
                              "ERROR); herald keeps it, as /queue/X would, so no message is lost")
def test_send_to_an_unused_amq_queue_is_held(herald, clients):
    name = uid("aq")
    pub = clients(herald)
    pub.send("/amq/queue/" + name, "kept", receipt=True)
    sub = clients(herald)
    sub.subscribe("/queue/" + name)
    m = sub.wait_messages(1)[0]
    assert (m.body, m.headers["destination"]) == ("kept", "/queue/" + name)


def test_a_missing_reply_queue_cannot_be_subscribed_through_amq_queue(herald, raws):
    """`amq.` names belong to the server: one that names no live reply queue is ERROR (RabbitMQ:
    not_found, connection closed), never a new queue."""
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    r.send_frame("SUBSCRIBE", [("destination", "/amq/queue/amq.gen-AAAAAAAAAAAAAAAAAAAAAA"),
                               ("id", "s")])
    r.expect_error_then_close()


@pytest.mark.parametrize("cmd", ["SEND", "SUBSCRIBE"])
@pytest.mark.parametrize("dest", ["/amq/queue/", "/amq/queue", "/amq/queue/a/b"],
                         ids=["empty", "no-slash", "slash-in-name"])
def test_a_bad_amq_queue_name_is_refused(herald, raws, cmd, dest):
    """RabbitMQ: ERROR "Invalid destination", "'/a/b' is not a valid amqqueue destination"."""
    r = raws(herald)
    assert r.connect().cmd == "CONNECTED"
    headers = [("destination", dest)] + ([("id", "s")] if cmd == "SUBSCRIBE" else [])
    r.send_frame(cmd, headers, b"x" if cmd == "SEND" else b"")
    expect_error(r, herald)
