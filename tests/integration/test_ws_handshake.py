"""
The WebSocket port's HTTP side (issue 4 "WebSocket server"; RFC 6455 section 4, RFC 9110,
RFC 9112): the opening handshake (101, Sec-WebSocket-Accept, subprotocols v12/v11/v10.stomp,
stomp or none), the built-in page on GET /, 404 elsewhere, and a proper 4xx (never a hang)
for every bad upgrade. Raw sockets give exact bytes; python3-websockets is the real client.
"""

import socket
import time

import pytest

from wsclient import (WSClient, accept_key, http_exchange, new_key, read_http_response,
                      upgrade_request, ws, ws_url, wsc, RawWS, OP_TEXT)	# noqa: F401
from stompraw import frame_bytes
from helpers import uid

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# backend_sensitive: the WebSocket port's HTTP side, one connection each.
pytestmark = [pytest.mark.herald_shared, pytest.mark.backend_sensitive]


def check_error_response(resp, statuses):
    """A refusal: one of statuses, a correct Content-Length body, `Connection: close`, the
    socket closed afterwards, and no upgrade."""
    assert resp.status in statuses, resp
    assert resp.get("Sec-WebSocket-Accept") is None, resp
    assert resp.get("Content-Length") is not None, "error response without Content-Length: %r" % resp
    assert len(resp.body) == int(resp.get("Content-Length")), resp
    assert "close" in resp.get("Connection", "").lower(), resp
    assert resp.closed, "server kept the socket open after %d" % resp.status
    if resp.status == 426:
        # RFC 9110 15.5.22: a 426 MUST carry Upgrade; RFC 6455 4.4: the versions we speak
        assert resp.get("Upgrade", "").lower() == "websocket", resp
        assert resp.get("Sec-WebSocket-Version") == "13", resp
    if resp.status == 405:
        assert "GET" in resp.get("Allow", ""), resp


# --- the 101 -------------------------------------------------------------------------------

def test_handshake_101_with_accept_key(ws):
    key = "dGhlIHNhbXBsZSBub25jZQ=="	# RFC 6455 section 1.3's example
    req, _ = upgrade_request(key=key, host="%s:%d" % ws)
    sock = socket.create_connection(ws, timeout=5)
    try:
        sock.sendall(req)
        buf = bytearray()
        resp = read_http_response(sock, buf, time.monotonic() + 5)
    finally:
        sock.close()
    assert resp.raw_head.startswith(b"HTTP/1.1 101 "), resp.raw_head
    assert resp.get("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert accept_key(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert resp.get("Upgrade").lower() == "websocket"
    assert "upgrade" in resp.get("Connection").lower()
    assert resp.get("Sec-WebSocket-Protocol") is None, "no subprotocol offered, none may be chosen"
    assert resp.get("Sec-WebSocket-Extensions") is None
    assert buf == b"", "bytes after the 101 before any client frame: %r" % bytes(buf)


def test_library_client_connects_and_declines_compression(wsc):
    # websockets offers permessage-deflate like browsers do; no extension was negotiated
    c = wsc.client()
    assert c.response_headers.get("Sec-WebSocket-Extensions") is None
    assert c.ws.extensions == []
    assert c.subprotocol == "v12.stomp"


@pytest.mark.parametrize("offer,chosen", [
    (["v12.stomp"], "v12.stomp"),
    (["v11.stomp"], "v11.stomp"),
    (["v10.stomp"], "v10.stomp"),
    (["stomp"], "stomp"),
    (["v12.stomp", "v11.stomp", "v10.stomp"], "v12.stomp"),	# @stomp/stompjs
    (["v11.stomp", "v10.stomp"], "v11.stomp"),			# old stomp.js
    (["mqtt", "v11.stomp"], "v11.stomp"),
    (["mqtt"], None),
    (None, None),
])
def test_subprotocol_negotiation(wsc, offer, chosen):
    c = wsc.client(subprotocols=offer)
    assert c.subprotocol == chosen
    headers = c.response_headers.get_all("Sec-WebSocket-Protocol")
    assert headers == ([chosen] if chosen else []), headers
    # the connection speaks STOMP whatever was chosen
    c.send(frame_bytes("CONNECT", [("accept-version", "1.2"), ("host", "/"), ("login", "guest"),
                                   ("passcode", "guest")]).decode())
    msg = c.recv()
    assert isinstance(msg, str) and msg.startswith("CONNECTED\n"), msg


def test_subprotocol_offer_over_several_header_lines(ws):
    # RFC 6455 11.3.4: several Sec-WebSocket-Protocol lines are one comma-separated list
    req, key = upgrade_request(host="%s:%d" % ws, protocols=[["mqtt"], ["v11.stomp"]])
    sock = socket.create_connection(ws, timeout=5)
    try:
        sock.sendall(req)
        resp = read_http_response(sock, bytearray(), time.monotonic() + 5)
    finally:
        sock.close()
    assert resp.status == 101, resp
    assert resp.get("Sec-WebSocket-Accept") == accept_key(key)
    assert resp.get_all("Sec-WebSocket-Protocol") == ["v11.stomp"], resp


@pytest.mark.parametrize("subproto", ["v10.stomp", "v11.stomp"])
def test_subprotocol_does_not_cap_stomp_version(wsc, subproto):
    # RABBITMQ-REFERENCE "Web-STOMP": accept-version decides the STOMP version
    c = wsc(subprotocols=[subproto])
    f = c.connect(version="1.0,1.1,1.2")
    assert f.cmd == "CONNECTED" and f["version"] == "1.2", f


def test_handshake_header_names_and_tokens_case_insensitive(ws):
    key = new_key()
    req = ("GET /ws HTTP/1.1\r\nhost: %s:%d\r\nUPGRADE: WebSocket\r\n"
           "connection: keep-alive, upgrade\r\nsec-websocket-key: %s\r\n"
           "SEC-WEBSOCKET-VERSION: 13\r\nsec-websocket-protocol: v12.stomp\r\n"
           "User-Agent: test\r\nCookie: a=b\r\n\r\n" % (ws[0], ws[1], key)).encode()
    sock = socket.create_connection(ws, timeout=5)
    try:
        sock.sendall(req)
        resp = read_http_response(sock, bytearray(), time.monotonic() + 5)
    finally:
        sock.close()
    assert resp.status == 101, resp
    assert resp.get("Sec-WebSocket-Accept") == accept_key(key)
    assert resp.get("Sec-WebSocket-Protocol") == "v12.stomp"


def test_handshake_sent_byte_by_byte(ws):
    req, key = upgrade_request(host="%s:%d" % ws, protocols=["v12.stomp"])
    sock = socket.create_connection(ws, timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i in range(len(req)):
            sock.send(req[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.001)
        resp = read_http_response(sock, bytearray(), time.monotonic() + 5)
    finally:
        sock.close()
    assert resp.status == 101, resp
    assert resp.get("Sec-WebSocket-Accept") == accept_key(key)


def test_first_frame_in_the_same_packet_as_the_handshake(ws):
    # a client may send its first frame right behind the request head
    from wsclient import encode_frame
    req, key = upgrade_request(host="%s:%d" % ws, protocols=["v12.stomp"])
    connect = frame_bytes("CONNECT", [("accept-version", "1.2"), ("host", "/"),
                                      ("login", "guest"), ("passcode", "guest")])
    r = RawWS(ws, handshake=False)
    try:
        r.sock.sendall(req + encode_frame(OP_TEXT, connect))
        resp = read_http_response(r.sock, r.wbuf, time.monotonic() + 5)
        assert resp.status == 101 and resp.get("Sec-WebSocket-Accept") == accept_key(key)
        f = r.recv_frame()
        assert f.cmd == "CONNECTED", f
    finally:
        r.close()


def test_websocket_path_flag(herald_factory):
    from wsclient import ws_addr
    srv = herald_factory("--ws-path", "/stomp-endpoint")
    addr = ws_addr(srv)
    c = WSClient(ws_url(addr, "/stomp-endpoint"))
    try:
        assert c.subprotocol == "v12.stomp"
    finally:
        c.kill()
    req, _ = upgrade_request(path="/ws", host="%s:%d" % addr)
    check_error_response(http_exchange(addr, req), (404,))


def test_query_string_on_ws_path_is_accepted(ws):
    # the path is compared without the query (SockJS-style clients add ?...)
    req, key = upgrade_request(path="/ws?token=abc", host="%s:%d" % ws)
    sock = socket.create_connection(ws, timeout=5)
    try:
        sock.sendall(req)
        resp = read_http_response(sock, bytearray(), time.monotonic() + 5)
    finally:
        sock.close()
    assert resp.status == 101, resp


# --- plain HTTP ------------------------------------------------------------------------------

@pytest.mark.herald_only
def test_get_root_serves_the_page(ws):
    resp = http_exchange(ws, b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n\r\n")
    assert resp.status == 200, resp
    assert resp.get("Content-Type", "").startswith("text/html"), resp
    assert int(resp.get("Content-Length")) == len(resp.body) > 0
    body = resp.body.decode("utf-8")
    assert "<html" in body.lower() and "</html>" in body.lower()
    for elem in ('id="user"', 'id="pass"', 'id="vhost"', 'id="name"', 'id="connect"',
                 'id="send"', 'id="to"', 'id="text"', 'id="log"'):
        assert elem in body, "page lacks %s" % elem
    assert resp.closed, "GET / must not leave the connection hanging"


def test_get_root_http10_and_query(ws):
    resp = http_exchange(ws, b"GET /?x=1 HTTP/1.0\r\n\r\n")
    assert resp.status == 200, resp
    assert resp.closed


@pytest.mark.parametrize("path", ["/other", "/index.html", "/ws/", "/wsx", "/favicon.ico"])
def test_get_other_path_is_404(ws, path):
    resp = http_exchange(ws, ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
    check_error_response(resp, (404,))


def test_plain_get_on_ws_path_needs_upgrade(ws):
    resp = http_exchange(ws, b"GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n")
    check_error_response(resp, (400, 426))


def test_head_request_is_never_left_hanging(ws):
    resp = http_exchange(ws, b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert resp.closed
    assert resp.status in (200, 405, 501), resp


# --- bad upgrades ----------------------------------------------------------------------------

def bad(ws, **kw):
    kw.setdefault("host", "%s:%d" % ws)
    req, _ = upgrade_request(**kw)
    return http_exchange(ws, req)


def test_upgrade_without_key_is_400(ws):
    check_error_response(bad(ws, omit=("Sec-WebSocket-Key",)), (400,))


@pytest.mark.parametrize("key", ["", "short", "dGhlIHNhbXBsZSBub25jZQ", "!!!!!!!!!!!!!!!!!!!!!!==",
                                 "dGhlIHNhbXBsZSBub25jZQ==x", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_upgrade_with_bad_key_is_400(ws, key):
    # RFC 6455 4.2.1: the key must decode to 16 bytes
    check_error_response(bad(ws, key=key), (400,))


def test_upgrade_with_two_keys_is_400(ws):
    check_error_response(bad(ws, extra=[("Sec-WebSocket-Key", new_key())]), (400,))


@pytest.mark.parametrize("version", ["8", "12", "14", "", "13x"])
def test_upgrade_with_other_version_is_426(ws, version):
    # RFC 6455 4.2.2 / 4.4: refuse, naming the version we speak
    check_error_response(bad(ws, version=version), (400, 426))
    if version in ("8", "12", "14"):
        check_error_response(bad(ws, version=version), (426,))


def test_upgrade_without_version_is_refused(ws):
    check_error_response(bad(ws, omit=("Sec-WebSocket-Version",)), (400, 426))


def test_upgrade_header_not_websocket_is_refused(ws):
    check_error_response(bad(ws, upgrade="h2c"), (400, 426))


def test_connection_header_without_upgrade_token_is_refused(ws):
    check_error_response(bad(ws, connection="keep-alive"), (400, 426))


def test_upgrade_without_host_is_400(ws):
    # RFC 9112 3.2: an HTTP/1.1 request without Host gets 400
    check_error_response(bad(ws, omit=("Host",)), (400,))


def test_upgrade_over_http10_is_refused(ws):
    # RFC 6455 4.1: the handshake is HTTP/1.1 or later
    check_error_response(bad(ws, http="HTTP/1.0"), (400, 426, 505))


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_upgrade_with_other_method_is_refused(ws, method):
    check_error_response(bad(ws, method=method), (400, 405))


def test_upgrade_on_other_path_is_404(ws):
    check_error_response(bad(ws, path="/other"), (404,))


@pytest.mark.parametrize("req", [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /ws\r\nHost: x\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET /ws HTTP/1.1\r\n: empty-name\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost : x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32) + b"\r\n\r\n",	# TLS hello
])
def test_malformed_request_is_refused(ws, req):
    resp = http_exchange(ws, req)
    assert 400 <= resp.status < 600, resp
    assert resp.closed


def test_request_line_too_long_is_refused(ws):
    path = "/ws?" + "a" * 20000
    resp = bad(ws, path=path)
    assert resp.status in (400, 414, 431), resp
    assert resp.closed


def test_too_many_headers_is_431(ws):
    resp = bad(ws, extra=[("X-H%d" % i, "v") for i in range(200)])
    check_error_response(resp, (431,))


def test_head_too_large_is_431(ws):
    resp = bad(ws, extra=[("Cookie", "c" * 7000), ("X-Big", "b" * 7000), ("X-Big2", "b" * 7000)])
    check_error_response(resp, (431,))


def test_endless_header_is_refused_before_it_ends(ws):
    # limits hold before the head completes: a header that never ends gets its answer
    sock = socket.create_connection(ws, timeout=5)
    try:
        sock.sendall(b"GET /ws HTTP/1.1\r\nX-Endless: ")
        buf = bytearray()
        for _ in range(64):
            try:
                sock.sendall(b"x" * 1024)
            except (BrokenPipeError, ConnectionResetError):
                break
        resp = read_http_response(sock, buf, time.monotonic() + 5)
        assert resp.status in (400, 431), resp
    finally:
        sock.close()


def test_silent_http_client_is_dropped(herald_factory):
    # a connection that never completes its request must not be held forever
    from wsclient import ws_addr, wait_eof
    srv = herald_factory("--connect-timeout-ms", "300")
    addr = ws_addr(srv)
    sock = socket.create_connection(addr, timeout=5)
    try:
        sock.sendall(b"GET /ws HTTP/1.1\r\n")
        assert wait_eof(sock, 3.0), "half a request held open for 3 s"
    finally:
        sock.close()


def test_silent_http_client_gets_408_not_a_websocket_frame(herald_factory):
    """It never got a 101, so it speaks HTTP: the timeout answer is HTTP too."""
    from wsclient import ws_addr
    srv = herald_factory("--connect-timeout-ms", "300")
    sock = socket.create_connection(ws_addr(srv), timeout=5)
    try:
        sock.sendall(b"GET /ws HTTP/1.1\r\n")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    finally:
        sock.close()


def test_refused_upgrades_leave_the_server_working(ws, wsc):
    for req in (b"GET /ws HTTP/1.1\r\n\r\n", b"\0\0\0\0\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"):
        http_exchange(ws, req)
    c = wsc()
    assert c.connect().cmd == "CONNECTED"
    q = "/queue/" + uid("alive")
    c.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    c.send_frame("SEND", [("destination", q)], b"ok")
    assert c.recv_frame().body == b"ok"
