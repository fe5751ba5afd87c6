"""
Connecting: CONNECT/STOMP, version negotiation, CONNECTED headers, login, virtual hosts,
frames before CONNECT (STOMP 1.2 "Connecting", "Protocol Negotiation"; RABBITMQ-REFERENCE
"Connecting").
"""

import re

import pytest

from helpers import Client, ConnectRefused, assert_server_works, uid

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# backend_sensitive: accept and a connection's first frames; the tests with deliveries between
# connections (vhosts kept apart, frames before CONNECT) are shard_sensitive too.
pytestmark = [pytest.mark.herald_shared, pytest.mark.backend_sensitive]

rabbit_keeps_open = pytest.mark.rabbitmq_differs(
    "RabbitMQ keeps the connection open after an ERROR; the spec closes it")


def test_connect_1_2_gets_connected_with_version_heart_beat_server_session(herald, raws):
    r = raws(herald)
    f = r.connect(version="1.2")
    assert f.cmd == "CONNECTED", f
    assert f["version"] == "1.2"
    assert re.fullmatch(r"\d+,\d+", f["heart-beat"]), f["heart-beat"]
    # server: name/version (STOMP 1.2 "CONNECTED Frame": server-name ["/" version])
    assert re.fullmatch(r"[^/\s]+/\S+.*", f["server"]), f["server"]
    assert f["session"], f


def test_stomp_command_connects_like_connect(herald, raws):
    r = raws(herald)
    f = r.connect(version="1.2", cmd="STOMP")
    assert f.cmd == "CONNECTED", f
    assert f["version"] == "1.2"


@pytest.mark.parametrize("accept,expected", [
    ("1.0,1.1,1.2", "1.2"),
    ("1.2,1.1,1.0", "1.2"),
    ("1.1,1.2", "1.2"),
    ("1.0,1.1", "1.1"),
    ("1.1", "1.1"),
    ("1.0", "1.0"),
    ("1.2", "1.2"),
    ("1.0,1.1,1.2,2.0", "1.2"),
    (" 1.1 , 1.2 ", "1.2"),
    ("1.25,1.1", "1.1"),
])
def test_highest_common_version_is_chosen(herald, raws, accept, expected):
    r = raws(herald)
    f = r.connect(version=accept)
    assert f.cmd == "CONNECTED", f
    assert f.get("version", "1.0") == expected


def test_no_accept_version_means_1_0(herald, raws):
    r = raws(herald)
    f = r.connect(version=None, host=None)
    assert f.cmd == "CONNECTED", f
    assert f.get("version", "1.0") == "1.0"
    assert f["session"]


@rabbit_keeps_open
def test_no_common_version_gets_error_listing_supported_versions_then_close(herald, raws):
    r = raws(herald)
    f = r.connect(version="2.0,3.1")
    assert f.cmd == "ERROR", f
    assert f["message"]
    versions = [v.strip() for v in f["version"].split(",")]
    assert {"1.0", "1.1", "1.2"} <= set(versions), f["version"]
    assert r.is_closed(2.0), "still open after refusing CONNECT"
    assert_server_works(herald.addr)


def test_a_version_is_matched_as_a_whole_token(herald, raws):
    """1.25 is not 1.2: with nothing else offered there is no common version."""
    r = raws(herald)
    f = r.connect(version="1.25")
    assert f.cmd == "ERROR", f


def test_no_common_version_error_carries_the_receipt_id(herald, raws):
    r = raws(herald)
    f = r.connect(version="2.0", extra=[("receipt", "c1")])
    assert f.cmd == "ERROR", f
    assert f["receipt-id"] == "c1", f
    assert r.is_closed(2.0)


def test_sessions_get_distinct_ids(herald, raws):
    a, b = raws(herald), raws(herald)
    fa, fb = a.connect(), b.connect()
    assert fa["session"] != fb["session"]


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_stomp_py_connects_with_each_version(herald, clients, version):
    c = clients(herald, version=version)
    got = c.listener.connected.headers
    assert got.get("version", "1.0") == version


@pytest.mark.herald_fresh("a refused login: the per-address failed-login delay is server state")
@rabbit_keeps_open
@pytest.mark.parametrize("login,passcode", [
    ("guest", "wrong"),
    ("nobody", "guest"),
    ("guest", ""),
])
def test_bad_login_gets_error_then_close(herald, raws, login, passcode):
    r = raws(herald)
    f = r.connect(login=login, passcode=passcode)
    assert f.cmd == "ERROR", f
    assert f["message"]
    assert r.is_closed(2.0)
    assert_server_works(herald.addr)


@pytest.mark.herald_fresh("a refused login: the per-address failed-login delay is server state")
@pytest.mark.rabbitmq_differs("RabbitMQ logs a client with no login in as its default user")
def test_missing_login_is_refused_like_a_wrong_one(herald, raws):
    r = raws(herald)
    f = r.connect(login=None, passcode=None)
    assert f.cmd == "ERROR", f
    assert f["message"]
    assert r.is_closed(2.0)


@pytest.mark.herald_fresh("a refused login: the per-address failed-login delay is server state")
def test_stomp_py_bad_login_is_refused(herald, clients):
    with pytest.raises(ConnectRefused) as exc:
        clients(herald, passcode="not-the-password")
    assert exc.value.error is not None and exc.value.error.headers.get("message")


@pytest.mark.herald_fresh("a refused login: the per-address failed-login delay is server state")
@rabbit_keeps_open
def test_unknown_virtual_host_is_refused(herald, raws):
    r = raws(herald)
    f = r.connect(host="no-such-vhost-" + uid())
    assert f.cmd == "ERROR", f
    assert f["message"]
    assert r.is_closed(2.0)
    assert_server_works(herald.addr)


@pytest.mark.parametrize("host", ["/", None])
def test_slash_or_absent_host_is_the_default_virtual_host(herald, raws, host):
    r = raws(herald)
    f = r.connect(host=host)
    assert f.cmd == "CONNECTED", f


@rabbit_keeps_open
@pytest.mark.parametrize("frame", [
    b"SEND\ndestination:/queue/early\n\nhello\0",
    b"SUBSCRIBE\ndestination:/queue/early\nid:1\n\n\0",
    b"BEGIN\ntransaction:t1\n\n\0",
])
def test_frame_before_connect_gets_error_then_close(herald, raws, frame):
    r = raws(herald)
    r.send(frame)
    err = r.expect_error_then_close()
    assert err["message"]
    assert_server_works(herald.addr)


@pytest.mark.shard_sensitive
def test_message_sent_before_connect_is_not_delivered(herald, raws, clients):
    q = "/queue/" + uid("early")
    r = raws(herald)
    r.send(b"SEND\ndestination:" + q.encode() + b"\n\nsneaky\0")
    r.recv_until_closed(2.0)
    c = clients(herald)
    c.subscribe(q)
    c.send(q, "legit", receipt=True)
    assert c.wait_messages(1)[0].body == "legit"
    c.quiet(1, marker=(c, q))


def test_connect_with_crlf_line_endings(herald, raws):
    r = raws(herald)
    r.send(b"CONNECT\r\naccept-version:1.2\r\nhost:/\r\nlogin:guest\r\npasscode:guest\r\n\r\n\0")
    f = r.recv_frame()
    assert f.cmd == "CONNECTED", f
    assert f["version"] == "1.2"


def test_connect_preceded_by_eols_is_accepted(herald, raws):
    r = raws(herald)
    r.send(b"\n\r\n\n")
    f = r.connect()
    assert f.cmd == "CONNECTED", f


@pytest.mark.herald_fresh("a refused login: the per-address failed-login delay is server state")
def test_refused_login_does_not_disturb_a_connected_client(herald, raws, clients):
    c = clients(herald)
    q = "/queue/" + uid()
    c.subscribe(q)
    r = raws(herald)
    assert r.connect(passcode="bad").cmd == "ERROR"
    c.send(q, "after", receipt=True)
    assert c.wait_messages(1)[0].body == "after"


def test_disconnect_with_receipt_gets_receipt_then_close(herald, clients):
    c = clients(herald)
    c.disconnect()


def test_many_sequential_connections(herald, raws):
    for i in range(50):
        r = raws(herald)
        assert r.connect().cmd == "CONNECTED"
        r.close()
    assert_server_works(herald.addr)


# --- configured users and virtual hosts (herald flags) ---------------------------------

@pytest.mark.herald_args("--default-user", "admin", "--default-pass", "admin")
def test_configured_default_user_as_in_the_seed(herald, raws):
    """The seed's page logs in with admin/admin."""
    r = raws(herald)
    assert r.connect(login="admin", passcode="admin").cmd == "CONNECTED"
    g = raws(herald)
    f = g.connect(login="guest", passcode="guest")
    assert f.cmd == "ERROR", f
    assert g.is_closed(2.0)


@pytest.mark.herald_args("--vhosts", "/,tenant-a")
@pytest.mark.shard_sensitive
def test_configured_virtual_hosts_are_accepted_and_kept_apart(herald, raws):
    q = "/queue/" + uid("vh")
    a = raws(herald)
    assert a.connect(host="tenant-a").cmd == "CONNECTED"
    d = raws(herald)
    assert d.connect(host="/").cmd == "CONNECTED"
    # The same queue name in two virtual hosts is two queues.
    d.send_frame("SEND", [("destination", q), ("receipt", "d")], b"default-vhost")
    assert d.recv_frame().cmd == "RECEIPT"
    a.send_frame("SUBSCRIBE", [("destination", q), ("id", "s"), ("receipt", "s")])
    assert a.recv_frame().cmd == "RECEIPT"
    a.send_frame("SEND", [("destination", q)], b"tenant-a")
    m = a.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"tenant-a", m
    assert a.pump(0.3) == []
    x = raws(herald)
    f = x.connect(host="tenant-b")
    assert f.cmd == "ERROR", f
