"""
tests/cluster/test_route_tls.py - node links over TLS (--route-tls; docs/cluster.md "Node
links over TLS") with real `herald` processes on 127.0.0.1 and a throwaway PKI made by
tests/integration/tlscerts.py (EC P-256 keys, the `openssl` command line).

What is checked:
  - three nodes with --route-tls and a test CA hold their three links over TLS (each end
    logs "link to X up (..., TLSv1.x, certificate CN=X)"), a topic message crosses to
    subscribers on both other nodes, and a receipted queue message crosses to a consumer
    on another node;
  - a node whose certificate comes from another CA cannot link: both ends log the refused
    handshake, its links stay down however often it re-dials (with backoff: a bounded
    number of attempts), and the nodes that can link keep theirs and carry messages;
  - a node without --route-tls cannot link to TLS nodes: each side says why (plaintext
    meeting TLS), the link stays down, the others are unaffected;
  - without --tls-ca links are up and encrypted, the certificate unchecked (the log says
    so); --route-tls without a certificate is refused at start;
  - SIGHUP re-reads the certificate files for links made afterwards: a node whose files
    now hold another CA's certificate cannot link, and links again once they are put back.

The node with the bad link is still a gossip member (gossip is not TLS): only its links
are refused. Every wait has a deadline; only the processes started here are stopped, by
PID.

Run: HERALD_BIN=build/core/herald HERALDCTL_BIN=build/tools/heraldctl \\
     /usr/bin/python3 -m pytest -q tests/cluster/test_route_tls.py
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from clusterlib import HERALD, controller, member_of, status, wait_for, wait_mesh

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from stompraw import RawStomp, Timeout  # noqa: E402
from tlscerts import PKI  # noqa: E402

WAIT = 5.0		# bound for anything expected to happen
REFUSED_S = 4.0		# watched while a refused node re-dials
# re-dials back off from 0.1 s to 2 s: over REFUSED_S that is a handful of attempts per
# link; a busy loop would log thousands
MAX_REFUSALS = 40

pytestmark = pytest.mark.skipif(not HERALD, reason="HERALD_BIN must name the herald binary")


def uid(prefix):
    return "%s%s" % (prefix, uuid.uuid4().hex[:12])


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki"))
    for name in ("a", "b", "c"):
        p.issue("node-" + name, name, server=True)
    p.issue("node-d", "d", server=True, ca="rogue-ca")
    p.issue("node-a-rogue", "a", server=True, ca="rogue-ca")
    return p


def tls_args(pki, name, ca=True):
    """--route-tls with this node's certificate (the client TLS listeners it also turns
    on get free ports)."""
    args = ["--route-tls", "--tls-cert", pki.path("node-%s.pem" % name),
            "--tls-key", pki.path("node-%s.key" % name), "--tls-port", "0", "--wss-port", "0"]
    if ca:
        args += ["--tls-ca", pki.ca_cert]
    return args


def start(cluster, name, join=None, extra=()):
    return cluster.start(name, join=join.gossip if join else None, extra=extra)


def link(node, other):
    m = member_of(status(node), other.name)
    return m.get("link") if m else None


def link_up_line(node, other):
    """The "link to X up (...)" line node logged for other, or None."""
    m = re.search(r"route: link to %s up \(([^)]*)\)" % re.escape(other.name), node.log())
    return m.group(1) if m else None


# --- STOMP ----------------------------------------------------------------------------------

class Client:
    """One raw STOMP connection; every read has a deadline."""

    def __init__(self, node):
        self.node = node
        self.t = RawStomp("127.0.0.1", node.ports["stomp"], timeout=WAIT)
        f = self.t.connect()
        assert f.cmd == "CONNECTED", "CONNECT to %s: %r" % (node.name, f)

    def frame_until(self, pred, what):
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no %s within %.0fs" % (self.node.name, what, WAIT))
            try:
                f = self.t.recv_frame(left)
            except Timeout:
                continue
            assert f.cmd in ("MESSAGE", "RECEIPT"), "%s sent %r" % (self.node.name, f)
            if pred(f):
                return f

    def request(self, cmd, headers, body=b""):
        """Sends a frame with a receipt and waits for it."""
        rid = uid("r")
        assert self.t.send_frame(cmd, list(headers) + [("receipt", rid)], body)
        self.frame_until(lambda f: f.cmd == "RECEIPT" and f.get("receipt-id") == rid,
                         "RECEIPT for %s" % cmd)

    def subscribe(self, dest):
        self.request("SUBSCRIBE", [("destination", dest), ("id", uid("s")), ("ack", "auto")])

    def expect_message(self, dest, body):
        f = self.frame_until(lambda f: f.cmd == "MESSAGE", "MESSAGE on %s" % dest)
        assert f.get("destination") == dest and f.body == body, (f, dest, body)

    def close(self):
        self.t.close()


@pytest.fixture
def clients():
    made = []

    def make(node):
        c = Client(node)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def topic_crosses(clients, sender, receivers):
    dest = "/topic/" + uid("rt.")
    subs = [clients(n) for n in receivers]
    for s in subs:
        s.subscribe(dest)	# the receipt: the interest is in force on every linked node
    body = b"over tls " + dest.encode()
    clients(sender).request("SEND", [("destination", dest)], body)
    for s in subs:
        s.expect_message(dest, body)


def watch_refused(cluster, nodes, bad, pattern):
    """For REFUSED_S: bad's links to nodes stay down while they keep re-dialling, nobody
    dies; the refusals logged (pattern, across all logs) stay few. Returns that count."""
    deadline = time.monotonic() + REFUSED_S
    while time.monotonic() < deadline:
        cluster.check_alive()
        for n in nodes:
            assert link(n, bad) != "up", "%s linked to %s" % (n.name, bad.name)
            assert link(bad, n) != "up", "%s linked to %s" % (bad.name, n.name)
        time.sleep(0.2)
    count = sum(len(re.findall(pattern, n.log())) for n in nodes + [bad])
    assert count <= MAX_REFUSALS, "%d refusals in %.0fs: a busy re-dial?" % (count, REFUSED_S)
    return count


# --- tests ----------------------------------------------------------------------------------

def test_three_tls_nodes_link_and_carry_topics_and_receipted_queue_messages(cluster, clients,
                                                                             pki):
    a = start(cluster, "a", extra=tls_args(pki, "a"))
    b = start(cluster, "b", join=a, extra=tls_args(pki, "b"))
    c = start(cluster, "c", join=a, extra=tls_args(pki, "c"))
    nodes = [a, b, c]
    wait_mesh(nodes)
    for n in nodes:
        assert "listening proto=route addr=" in n.log() and " tls" in re.search(
            r"listening proto=route [^\n]*", n.log()).group(0)
        for other in nodes:
            if other is n:
                continue
            how = wait_for(lambda: link_up_line(n, other), WAIT, "%s's link line" % n.name)
            assert re.search(r"TLSv1\.[23], certificate CN=%s$" % other.name, how), how
    topic_crosses(clients, a, [b, c])
    topic_crosses(clients, c, [a])
    dest = "/queue/" + uid("rtq")
    consumer = clients(c)
    consumer.subscribe(dest)
    clients(a).request("SEND", [("destination", dest)], b"receipted over tls")
    consumer.expect_message(dest, b"receipted over tls")
    cluster.check_alive()


def not_in_view(node, name):
    """node's controller view (cluster/controller.h) leaves `name` out."""
    return name not in {m["name"] for m in controller(node)["view"]}


def test_a_node_with_a_certificate_from_another_ca_cannot_link(cluster, clients, pki):
    a = start(cluster, "a", extra=tls_args(pki, "a"))
    b = start(cluster, "b", join=a, extra=tls_args(pki, "b"))
    wait_for(lambda: link(a, b) == "up" and link(b, a) == "up", WAIT * 2, "a-b link up")
    # d's certificate is the rogue CA's; d checks against the test CA like everyone
    d = start(cluster, "d", join=a, extra=tls_args(pki, "d"))
    wait_for(lambda: (member_of(status(a), "d") or {}).get("state") == "alive", WAIT * 2,
             "d alive in a's gossip")
    # a and b dial d (lower names dial): d refuses their certificates' CA as they refuse
    # its own
    wait_for(lambda: "TLS handshake" in d.log() and "TLS handshake to" in a.log(), WAIT,
             "the refused handshakes logged")
    assert re.search(r"TLS handshake to 127\.0\.0\.1:\d+ failed: server certificate: "
                     r"unable to get local issuer certificate", a.log()), a.log()[-3000:]
    watch_refused(cluster, [a, b], d, r"TLS handshake (?:to|from) ")
    assert link(a, b) == "up" and link(b, a) == "up"
    # alive in gossip but unreachable: the controller leaves it out of the view, so it
    # owns no queue nobody could send to
    assert not_in_view(a, "d") and not_in_view(b, "d")
    topic_crosses(clients, a, [b])
    topic_crosses(clients, b, [a])


def test_a_node_without_route_tls_cannot_link_to_tls_nodes(cluster, clients, pki):
    b = start(cluster, "b", extra=tls_args(pki, "b"))
    c = start(cluster, "c", join=b, extra=tls_args(pki, "c"))
    wait_for(lambda: link(b, c) == "up" and link(c, b) == "up", WAIT * 2, "b-c link up")
    # plain `a` dials b and c (lower name): they refuse plaintext, a is told nothing on the
    # wire but sees the close before any HELLO
    a = start(cluster, "a", join=b)
    wait_for(lambda: "does not speak TLS" in b.log() and "before its HELLO" in a.log(), WAIT,
             "both ends of a refused plaintext link logging why")
    assert re.search(r"TLS handshake from 127\.0\.0\.1:\d+ refused: the peer does not speak "
                     r"TLS", c.log() + b.log())
    assert "does it run --route-tls? every node must agree" in a.log()
    watch_refused(cluster, [b, c], a, r"does not speak TLS|before its HELLO")
    assert link(b, c) == "up" and link(c, b) == "up"
    assert not_in_view(b, "a") and not_in_view(c, "a")
    topic_crosses(clients, b, [c])


def test_a_plaintext_acceptor_says_its_tls_dialler_speaks_tls(cluster, pki):
    # the other direction: TLS `a` dials plain `b`
    b = start(cluster, "b")
    a = start(cluster, "a", join=b, extra=tls_args(pki, "a"))
    wait_for(lambda: "--route-tls is on there and off here" in b.log() and
             "TLS handshake to" in a.log(), WAIT, "both ends logging why")
    watch_refused(cluster, [a], b, r"TLS handshake to|--route-tls is on there")


def test_without_a_ca_links_are_encrypted_and_the_cluster_key_authenticates(cluster, clients,
                                                                             pki):
    a = start(cluster, "a", extra=tls_args(pki, "a", ca=False))
    b = start(cluster, "b", join=a, extra=tls_args(pki, "b", ca=False))
    wait_mesh([a, b])
    assert "peers' certificates not checked" in a.log()
    how = wait_for(lambda: link_up_line(a, b), WAIT, "a's link line")
    assert re.search(r"TLSv1\.[23], certificate not checked$", how), how
    topic_crosses(clients, a, [b])


def test_route_tls_without_a_certificate_is_refused_at_start(tmp_path):
    log = tmp_path / "refused.log"
    with open(log, "wb") as out:
        proc = subprocess.run([HERALD, "--bind", "127.0.0.1", "--stomp-port", "0",
                               "--ws-port", "0", "--gossip-bind", "127.0.0.1",
                               "--gossip-port", "0", "--route-port", "0", "--admin-port", "0",
                               "--route-tls"], stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=20)
    assert proc.returncode != 0
    assert "--route-tls needs this node's certificate" in log.read_text(), log.read_text()


def test_sighup_rereads_the_link_certificate_for_new_links(cluster, clients, pki, tmp_path):
    cert, key = str(tmp_path / "a.pem"), str(tmp_path / "a.key")

    def put(name):
        shutil.copyfile(pki.path("%s.pem" % name), cert)
        shutil.copyfile(pki.path("%s.key" % name), key)

    put("node-a-rogue")
    a = start(cluster, "a", extra=["--route-tls", "--tls-cert", cert, "--tls-key", key,
                                   "--tls-ca", pki.ca_cert, "--tls-port", "0",
                                   "--wss-port", "0"])
    put("node-a")
    os.kill(a.proc.pid, signal.SIGHUP)
    wait_for(lambda: a.log().count("route tls: certificate") == 2, WAIT, "a's reload")
    b = start(cluster, "b", join=a, extra=tls_args(pki, "b"))
    wait_for(lambda: link(a, b) == "up" and link(b, a) == "up", WAIT * 2, "a-b link up")
    topic_crosses(clients, a, [b])
    # the rogue certificate again: b's next link to a (a restart of b) is refused by b
    put("node-a-rogue")
    os.kill(a.proc.pid, signal.SIGHUP)
    wait_for(lambda: a.log().count("route tls: certificate") == 3, WAIT, "a's second reload")
    assert link(a, b) == "up", "a live link keeps the certificate it started with"
    cluster.kill9("b")
    b2 = start(cluster, "b", join=a, extra=tls_args(pki, "b"))
    wait_for(lambda: "alert unknown ca" in a.log() or "unknown ca" in a.log(), WAIT * 2,
             "b refusing a's new certificate")
    assert link(b2, a) != "up"
    cluster.check_alive()
