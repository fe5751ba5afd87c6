"""
tests/integration/test_tls.py - STOMP over TLS and over secure WebSocket (issue 14; RabbitMQ's
stomp.listeners.ssl and Web-STOMP TLS): stomp.py and python3-websockets clients against a
test CA this module makes with the openssl command line (tlscerts.py). TLS 1.2 and 1.3 only;
plaintext, unknown-CA, expired or missing client certificates and stalled handshakes are
refused with a log line while everyone else is served; client-certificate login (the CN is
the user, the rules still apply); SIGHUP serves a new certificate to new connections and
keeps the old ones.
"""

import os
import shutil
import signal
import socket
import ssl
import time

import pytest

from helpers import Client, ConnectRefused, uid
from stompraw import Closed, RawStomp, Timeout
from tlscerts import PKI
from wsclient import LISTEN_RE, WSStomp

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# backend_sensitive: TLS over the backend's reads and writes; the tests between TLS and plain
# clients and the SIGHUP reload (every shard's TLS context) are shard_sensitive too.
pytestmark = [pytest.mark.herald_only, pytest.mark.backend_sensitive]
WAIT = 5.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki"))
    p.alice_cert, p.alice_key = p.issue("alice", "alice")
    p.expired_cert, p.expired_key = p.issue("expired", "alice", expired=True)
    p.rogue_cert, p.rogue_key = p.issue("rogue", "alice", ca="rogue-ca")
    return p


def tls_args(pki, *extra, ca=True):
    args = ["--tls-cert", pki.server_cert, "--tls-key", pki.server_key,
            "--tls-port", "0", "--wss-port", "0"]
    if ca:
        args += ["--tls-ca", pki.ca_cert]
    return args + list(extra)


def port_of(srv, proto, timeout=WAIT):
    """(host, port) of a listener from its "listening proto=..." log line."""
    deadline = time.monotonic() + timeout
    while proto not in srv.ports:
        for p, host, port in LISTEN_RE.findall(srv.log()):
            srv.ports[p] = (host, int(port))
        assert time.monotonic() < deadline, "no 'listening proto=%s' line:\n%s" % (
            proto, srv.log()[-3000:])
        time.sleep(0.01)
    return srv.ports[proto]


def client_ctx(pki, cert=None, key=None, **versions):
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    for k, v in versions.items():
        setattr(ctx, k, v)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def raw_tls(addr, ctx, timeout=WAIT):
    """A RawStomp over TLS (the handshake runs here)."""
    r = RawStomp(addr[0], addr[1], timeout=timeout)
    r.sock = ctx.wrap_socket(r.sock, server_hostname="localhost")
    return r


def stomp_py(addr, pki, cert=None, key=None, login="guest", passcode="guest", connect=True):
    c = Client(addr, login=login, passcode=passcode, connect=False)
    c.conn.set_ssl(for_hosts=[addr], ca_certs=pki.ca_cert, cert_file=cert, key_file=key)
    if connect:
        c.connect()
    return c


def wait_log(srv, text, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while text not in srv.log():
        assert time.monotonic() < deadline, "no %r in the log:\n%s" % (text, srv.log()[-3000:])
        time.sleep(0.02)


def refused_after_handshake(addr, ctx):
    """True when the server refuses this client: at the handshake (TLS 1.2, or a refused
    protocol) or, with TLS 1.3, where the client learns of it: its first read."""
    try:
        r = raw_tls(addr, ctx)
    except (ssl.SSLError, ConnectionResetError, OSError):
        return True
    try:
        r.send_frame("CONNECT", [("accept-version", "1.2"), ("host", "/"),
                                 ("login", "guest"), ("passcode", "guest")])
        f = r.recv_frame(timeout=WAIT)
        return f.cmd != "CONNECTED"
    except (ssl.SSLError, Closed, ConnectionResetError, OSError):
        return True
    finally:
        r.close()


def still_serves(srv, pki):
    """A good TLS client and a plain client both still get through."""
    c = stomp_py(port_of(srv, "stomps"), pki)
    c.disconnect()
    p = Client(srv.addr)
    p.disconnect()


# ---- STOMP over TLS ------------------------------------------------------------------------

def test_stomp_py_sends_and_receives_over_tls(herald_factory, pki):
    srv = herald_factory(*tls_args(pki))
    addr = port_of(srv, "stomps")
    sub = stomp_py(addr, pki)
    pub = stomp_py(addr, pki)
    dest = "/topic/" + uid()
    sub.subscribe(dest)
    big = "x" * (1 << 20)	# many records, bigger than the send budget
    bodies = ["m%d" % i for i in range(300)] + [big, "last"]
    for b in bodies:
        pub.conn.send(dest, b)
    L = sub.listener
    L.wait_for(lambda: len(L.messages) >= len(bodies), 10, "all messages")
    got = [m.body for m in L.messages]
    assert got == bodies
    assert sub.conn.transport.socket.version() in ("TLSv1.3", "TLSv1.2")
    sub.disconnect()
    pub.disconnect()


@pytest.mark.shard_sensitive
def test_queue_roundtrip_with_a_plain_client(herald_factory, pki):
    """TLS and plain TCP clients share destinations."""
    srv = herald_factory(*tls_args(pki))
    t = stomp_py(port_of(srv, "stomps"), pki)
    p = Client(srv.addr)
    q = "/queue/" + uid()
    t.subscribe(q)
    p.conn.send(q, "from plain")
    t.listener.wait_for(lambda: t.messages, WAIT, "message")
    assert t.messages[0].body == "from plain"


def test_tls_1_2_is_served_and_older_versions_are_refused(herald_factory, pki):
    srv = herald_factory(*tls_args(pki))
    addr = port_of(srv, "stomps")
    r = raw_tls(addr, client_ctx(pki, maximum_version=ssl.TLSVersion.TLSv1_2))
    assert r.sock.version() == "TLSv1.2"
    assert r.connect().cmd == "CONNECTED"
    r.close()
    old = client_ctx(pki)
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    assert refused_after_handshake(addr, old)
    still_serves(srv, pki)


def test_plaintext_on_the_tls_port_is_refused_cleanly(herald_factory, pki):
    srv = herald_factory(*tls_args(pki))
    host, port = port_of(srv, "stomps")
    r = RawStomp(host, port)
    r.send_frame("CONNECT", [("accept-version", "1.2"), ("login", "guest"),
                             ("passcode", "guest")])
    assert r.is_closed(WAIT), "the TLS port kept a plaintext client open"
    r.close()
    wait_log(srv, "TLS handshake from 127.0.0.1")
    still_serves(srv, pki)


def test_a_stalled_handshake_is_cut_off(herald_factory, pki):
    srv = herald_factory(*tls_args(pki, "--connect-timeout-ms", "1000"))
    host, port = port_of(srv, "stomps")
    r = RawStomp(host, port)
    r.send(b"\x16\x03\x01\x02\x00\x01")	# the start of a ClientHello, then nothing
    t0 = time.monotonic()
    assert r.is_closed(5.0), "a half-done handshake stayed open"
    assert time.monotonic() - t0 < 4.5
    r.close()
    still_serves(srv, pki)


# ---- client certificates -------------------------------------------------------------------

@pytest.mark.parametrize("which", ["rogue", "expired"])
def test_bad_client_certificates_are_refused(herald_factory, pki, which):
    srv = herald_factory(*tls_args(pki))
    cert, key = getattr(pki, which + "_cert"), getattr(pki, which + "_key")
    assert refused_after_handshake(port_of(srv, "stomps"), client_ctx(pki, cert, key))
    wait_log(srv, "client certificate: ")
    still_serves(srv, pki)


def test_client_certificate_is_optional_unless_required(herald_factory, pki):
    srv = herald_factory(*tls_args(pki))
    addr = port_of(srv, "stomps")
    r = raw_tls(addr, client_ctx(pki))
    assert r.connect().cmd == "CONNECTED"	# no certificate, a password: fine
    r.close()
    srv2 = herald_factory(*tls_args(pki, "--tls-require-client-cert"))
    addr2 = port_of(srv2, "stomps")
    assert refused_after_handshake(addr2, client_ctx(pki))
    r = raw_tls(addr2, client_ctx(pki, pki.alice_cert, pki.alice_key))
    assert r.connect().cmd == "CONNECTED"
    r.close()


def test_certificate_login_uses_the_cn_and_the_rules_still_apply(herald_factory, pki):
    srv = herald_factory(*tls_args(pki, "--tls-cert-login", "--user", "alice:alicepw"))
    addr = port_of(srv, "stomps")
    r = raw_tls(addr, client_ctx(pki, pki.alice_cert, pki.alice_key))
    f = r.connect(login=None, passcode=None)
    assert f.cmd == "CONNECTED", f
    assert f["user-name"] == "alice"
    # the built-in rules: alice may use /queue/alice, not someone else's queue
    q = "/queue/alice"
    r.send_frame("SUBSCRIBE", [("id", "1"), ("destination", q), ("receipt", "s1")])
    assert r.recv_frame().cmd == "RECEIPT"
    r.send_frame("SEND", [("destination", q)], b"hello")
    m = r.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"hello"
    r.send_frame("SEND", [("destination", "/queue/bob"), ("receipt", "s2")], b"no")
    err = r.expect_error_then_close()
    assert "alice" in err.body.decode() and "/queue/bob" in err.body.decode()
    # no certificate and no login: nobody to log in as
    r = raw_tls(addr, client_ctx(pki))
    assert r.connect(login=None, passcode=None).cmd == "ERROR"
    r.close()
    # a login header means a password login, certificate or not
    r = raw_tls(addr, client_ctx(pki, pki.alice_cert, pki.alice_key))
    assert r.connect(login="alice", passcode="wrong").cmd == "ERROR"
    r.close()


def test_without_certificate_login_the_cn_logs_nobody_in(herald_factory, pki):
    srv = herald_factory(*tls_args(pki, "--user", "alice:alicepw"))
    r = raw_tls(port_of(srv, "stomps"), client_ctx(pki, pki.alice_cert, pki.alice_key))
    assert r.connect(login=None, passcode=None).cmd == "ERROR"
    r.close()


# ---- secure WebSocket ----------------------------------------------------------------------

@pytest.mark.shard_sensitive
def test_stomp_over_wss(herald_factory, pki):
    srv = herald_factory(*tls_args(pki))
    host, port = port_of(srv, "wss")
    ctx = client_ctx(pki)
    ws = WSStomp("wss://localhost:%d/ws" % port, ssl=ctx)
    assert ws.connect().cmd == "CONNECTED"
    dest = "/topic/" + uid()
    ws.send_frame("SUBSCRIBE", [("id", "1"), ("destination", dest), ("receipt", "r1")])
    assert ws.recv_frame().cmd == "RECEIPT"
    p = stomp_py(port_of(srv, "stomps"), pki)
    p.conn.send(dest, "via tls to wss")
    m = ws.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"via tls to wss"
    ws.client.close()


# ---- reload --------------------------------------------------------------------------------

@pytest.mark.shard_sensitive
def test_sighup_serves_a_new_certificate_and_keeps_connections(herald_factory, pki, tmp_path):
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    srv = herald_factory("--tls-cert", cert, "--tls-key", key, "--tls-port", "0",
                         "--wss-port", "0")
    addr = port_of(srv, "stomps")
    old = stomp_py(addr, pki)
    assert peer_cn(old.conn.transport.socket) == "localhost"
    dest = "/topic/" + uid()
    old.subscribe(dest)
    shutil.copy(pki.server2_cert, cert + ".new")
    shutil.copy(pki.server2_key, key + ".new")
    os.replace(key + ".new", key)
    os.replace(cert + ".new", cert)
    n = srv.log().count("tls: certificate")
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT
    while srv.log().count("tls: certificate") <= n:
        assert time.monotonic() < deadline, srv.log()[-2000:]
        time.sleep(0.02)
    new = None
    for _ in range(50):	# each shard takes the new context at its next loop turn
        new = stomp_py(addr, pki)
        if peer_cn(new.conn.transport.socket) == "localhost-reloaded":
            break
        new.disconnect()
        time.sleep(0.05)
    assert peer_cn(new.conn.transport.socket) == "localhost-reloaded"
    new.conn.send(dest, "after reload")
    old.listener.wait_for(lambda: old.messages, WAIT, "message on the old connection")
    assert old.messages[0].body == "after reload"
    # a broken file keeps the certificate in force
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    srv.signal(signal.SIGHUP)
    wait_log(srv, "tls reload failed")
    c = stomp_py(addr, pki)
    assert peer_cn(c.conn.transport.socket) == "localhost-reloaded"
    c.disconnect()


def peer_cn(sock):
    subject = dict(x[0] for x in sock.getpeercert()["subject"])
    return subject["commonName"]


# ---- configuration -------------------------------------------------------------------------

def test_tls_is_off_without_certificate_and_key(herald_factory):
    srv = herald_factory()
    time.sleep(0.2)
    assert "proto=stomps" not in srv.log() and "proto=wss" not in srv.log()


def test_a_certificate_without_key_is_refused_at_start(herald_bin, pki, tmp_path):
    import subprocess
    p = subprocess.run([herald_bin, "--bind", "127.0.0.1", "--stomp-port", "0", "--ws-port", "0",
                        "--tls-port", "0", "--wss-port", "0", "--gossip-port", "0",
                        "--admin-port", "0", "--tls-cert", pki.server_cert],
                       capture_output=True, timeout=20)
    assert p.returncode != 0
    assert b"--tls-key" in p.stderr + p.stdout
