"""
tests/integration/wsclient.py - WebSocket clients for the STOMP-over-WebSocket tests
(issue 4; RFC 6455; RabbitMQ Web-STOMP's shape: ws://host:15674/ws).

  WSClient   a python3-websockets (Debian, 10.x, asyncio) connection behind a blocking API:
             every call has a deadline. One event loop thread serves all clients.
  WSStomp    stompraw.RawStomp's STOMP API (connect, send_frame, recv_frame, ...) over a
             WSClient: server WebSocket messages feed the STOMP byte stream; each message's
             kind (text/binary) and payload is kept in .received.
  RawWS      the same STOMP API over a raw socket with a hand-built handshake and frames, for
             exact bytes: unmasked frames, reserved bits, bad opcodes, split headers, close
             payloads. Every server frame is checked (unmasked, RSV 0, minimal length).
  http_exchange  one raw HTTP request, the parsed response, and whether the server closed.

Fixtures: `ws` (the ws address of the `herald` fixture's server) and `wsc` (a factory for
WSStomp/RawWS/WSClient connections, all closed at teardown). Against an external server set
WS_EXTERNAL=host:port next to STOMP_EXTERNAL (RabbitMQ's Web-STOMP is on 15674).
"""

import asyncio
import base64
import hashlib
import os
import re
import socket
import struct
import threading
import time

import pytest
import websockets
import websockets.client
import websockets.exceptions

from stompraw import Closed, RawStomp, Timeout

WAIT = 5.0
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STOMP_SUBPROTOCOLS = ("v12.stomp", "v11.stomp", "v10.stomp")	# @stomp/stompjs's offer
WS_EXTERNAL = os.environ.get("WS_EXTERNAL", "")
LISTEN_RE = re.compile(r"listening proto=(\w+) addr=([0-9.]+):(\d+)")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key):
    """RFC 6455 4.2.2: base64(SHA-1(key + GUID))."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def ws_addr(srv, timeout=WAIT):
    """(host, port) of the server's WebSocket listener, from its log line
    "listening proto=ws addr=...", waited for with a deadline."""
    if srv.external:
        if not WS_EXTERNAL:
            pytest.skip("STOMP_EXTERNAL without WS_EXTERNAL: no WebSocket endpoint to test")
        host, _, port = WS_EXTERNAL.rpartition(":")
        return host, int(port)
    deadline = time.monotonic() + timeout
    while "ws" not in srv.ports:
        for proto, host, port in LISTEN_RE.findall(srv.log()):
            srv.ports[proto] = (host, int(port))
        if "ws" in srv.ports:
            break
        if time.monotonic() > deadline:
            raise AssertionError("herald logged no 'listening proto=ws' line within %.0fs:\n%s"
                                 % (timeout, srv.log()[-4000:]))
        time.sleep(0.01)
    return srv.ports["ws"]


def ws_url(addr, path="/ws"):
    return "ws://%s:%d%s" % (addr[0], addr[1], path)


# --- python3-websockets behind a blocking API ---------------------------------------------

_loop = None
_loop_lock = threading.Lock()


def _get_loop():
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            t = threading.Thread(target=_loop.run_forever, name="ws-loop", daemon=True)
            t.start()
        return _loop


def _run(coro, timeout):
    """Runs coro on the shared loop; gives up (and cancels it) after timeout seconds."""
    fut = asyncio.run_coroutine_threadsafe(coro, _get_loop())
    try:
        return fut.result(timeout)
    except TimeoutError:
        fut.cancel()
        raise


class WSClosed(Exception):
    """The WebSocket connection is closed; .code/.reason are the server's close frame
    (None when it sent none: TCP just ended), .sent_code ours."""

    def __init__(self, exc):
        rcvd = getattr(exc, "rcvd", None)
        sent = getattr(exc, "sent", None)
        self.code = rcvd.code if rcvd is not None else None
        self.reason = rcvd.reason if rcvd is not None else None
        self.sent_code = sent.code if sent is not None else None
        super().__init__("closed: server close frame %s %r, ours %s"
                         % (self.code, self.reason, self.sent_code))


class WSClient:
    """A python3-websockets client connection with blocking, bounded calls.

    By default it offers what @stomp/stompjs offers (v12/v11/v10.stomp) and, like browsers,
    permessage-deflate (the server must decline it). recv() returns str for a text message
    and bytes for a binary one."""

    def __init__(self, url, subprotocols=STOMP_SUBPROTOCOLS, timeout=WAIT, max_size=None,
                 compression="deflate", extra_headers=None, origin=None, ssl=None):
        self.url = url
        self.timeout = timeout
        tls = {"ssl": ssl} if ssl is not None else {}	# wss:// with a test CA

        async def open_():
            return await websockets.client.connect(
                url, subprotocols=list(subprotocols) if subprotocols else None,
                compression=compression, extra_headers=extra_headers, origin=origin, **tls,
                ping_interval=None, open_timeout=timeout, close_timeout=timeout,
                max_size=max_size, max_queue=None)
        self.ws = _run(open_(), timeout + 1)

    @property
    def subprotocol(self):
        return self.ws.subprotocol

    @property
    def response_headers(self):
        return self.ws.response_headers

    def send(self, data, timeout=None):
        """str: one text message; bytes: one binary message; a list of str or of bytes: one
        fragmented message, one frame per element."""
        t = self.timeout if timeout is None else timeout
        try:
            _run(self.ws.send(data), t)
        except websockets.exceptions.ConnectionClosed as e:
            raise WSClosed(e)

    def recv(self, timeout=None):
        """Next message (str or bytes). Raises stompraw.Timeout or WSClosed."""
        t = max(self.timeout if timeout is None else timeout, 0.01)
        try:
            return _run(asyncio.wait_for(self.ws.recv(), t), t + 2)
        except (asyncio.TimeoutError, TimeoutError):
            raise Timeout()
        except websockets.exceptions.ConnectionClosed as e:
            raise WSClosed(e)

    def ping(self, data=b"", timeout=None):
        """Sends a ping and waits for its pong; returns the round-trip seconds."""
        t = self.timeout if timeout is None else timeout

        async def go():
            start = time.monotonic()
            waiter = await self.ws.ping(data)
            await asyncio.wait_for(waiter, t)
            return time.monotonic() - start
        try:
            return _run(go(), t + 2)
        except (asyncio.TimeoutError, TimeoutError):
            raise AssertionError("no pong within %.1fs" % t)
        except websockets.exceptions.ConnectionClosed as e:
            raise WSClosed(e)

    def close(self, code=1000, reason="", timeout=None):
        """The closing handshake; returns (code, reason) of the server's close frame, or
        (None, None) when it sent none."""
        t = self.timeout if timeout is None else timeout
        _run(self.ws.close(code, reason), t + 2)
        rcvd = getattr(self.ws, "close_rcvd", None)
        if rcvd is None:
            return None, None
        return rcvd.code, rcvd.reason

    def wait_closed(self, timeout=None):
        """Waits until the connection is closed; returns the server's (code, reason)."""
        t = self.timeout if timeout is None else timeout
        try:
            _run(asyncio.wait_for(self.ws.wait_closed(), t), t + 2)
        except (asyncio.TimeoutError, TimeoutError):
            raise AssertionError("connection still open after %.1fs" % t)
        rcvd = getattr(self.ws, "close_rcvd", None)
        return (rcvd.code, rcvd.reason) if rcvd is not None else (None, None)

    @property
    def closed(self):
        return self.ws.closed

    def abort(self):
        """Drops the TCP connection without a closing handshake."""
        loop = _get_loop()
        tr = self.ws.transport
        if tr is not None:
            loop.call_soon_threadsafe(tr.abort)

    def kill(self):
        if not self.ws.closed:
            self.abort()
            deadline = time.monotonic() + 2
            while not self.ws.closed and time.monotonic() < deadline:
                time.sleep(0.01)


class WSStomp(RawStomp):
    """RawStomp's API (connect, send_frame, recv_frame, expect_error_then_close, ...) over a
    WSClient. Outgoing STOMP bytes go as one text message per send() (binary=True: binary
    messages); incoming messages of either kind feed one STOMP byte stream. .received lists
    (kind, payload bytes) per server message, kind "text" or "binary"; .closed_by holds the
    WSClosed once the connection ended."""

    def __init__(self, url, binary=False, timeout=WAIT, **kw):
        self.client = WSClient(url, timeout=timeout, **kw)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.heartbeats = 0
        self.heartbeat_times = []
        self.version = "1.2"
        self.binary = binary
        self.received = []
        self.closed_by = None

    def send(self, data):
        """Sends STOMP bytes as one message (text unless binary mode or data is not UTF-8
        and binary is None). False when the connection is already closed."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            if self.binary:
                self.client.send(bytes(data))
            else:
                self.client.send(bytes(data).decode("utf-8"))
            return True
        except WSClosed as e:
            self.closed_by = e
            return False

    def send_text(self, text):
        self.client.send(text)

    def send_binary(self, data):
        self.client.send(bytes(data))

    def _fill(self, deadline):
        if self.eof:
            raise Closed()
        try:
            msg = self.client.recv(deadline - time.monotonic())
        except WSClosed as e:
            self.eof = True
            self.closed_by = e
            raise Closed()
        if isinstance(msg, str):
            data = msg.encode("utf-8")
            self.received.append(("text", data))
        else:
            data = bytes(msg)
            self.received.append(("binary", data))
        self.buf += data

    def close(self):
        self.client.kill()

    def reset(self):
        self.client.abort()


# --- raw sockets ----------------------------------------------------------------------------

class HttpResponse:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers		# [(name, value)] in wire order
        self.body = body
        self.raw_head = raw_head
        self.closed = None		# set by http_exchange: the server closed afterwards

    def get(self, name, default=None):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return default

    def get_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self):
        return "HttpResponse(%d %s, %r, body=%r)" % (self.status, self.reason, self.headers,
                                                     self.body[:200])


def parse_http_head(head):
    """head: bytes up to (not including) the blank line."""
    text = head.decode("iso-8859-1")
    lines = text.split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ?(.*)$", lines[0])
    assert m, "bad status line %r" % lines[0]
    headers = []
    for line in lines[1:]:
        assert ":" in line, "bad header line %r in %r" % (line, text)
        n, _, v = line.partition(":")
        assert n == n.strip() and n, "bad header name in %r" % line
        headers.append((n, v.strip()))
    return HttpResponse(int(m.group(1)), m.group(2), headers, b"", head)


def read_http_response(sock, buf, deadline):
    """Reads one response head (and its Content-Length body) from sock; buf (bytearray)
    holds bytes already read and keeps what follows the response."""
    while b"\r\n\r\n" not in buf:
        _recv_into(sock, buf, deadline, "an HTTP response head")
    end = buf.index(b"\r\n\r\n")
    resp = parse_http_head(bytes(buf[:end]))
    del buf[:end + 4]
    if resp.status != 101:
        clen = resp.get("Content-Length")
        if clen is not None:
            n = int(clen)
            while len(buf) < n:
                _recv_into(sock, buf, deadline, "a %d-byte HTTP body" % n)
            resp.body = bytes(buf[:n])
            del buf[:n]
    return resp


def _recv_into(sock, buf, deadline, what):
    left = deadline - time.monotonic()
    if left <= 0:
        raise Timeout("timed out waiting for %s; have %r" % (what, bytes(buf[:300])))
    sock.settimeout(left)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        raise Timeout("timed out waiting for %s; have %r" % (what, bytes(buf[:300])))
    except (ConnectionResetError, ConnectionAbortedError):
        data = b""
    if not data:
        raise Closed("connection closed while waiting for %s; have %r" % (what, bytes(buf[:300])))
    buf += data


def wait_eof(sock, timeout):
    """True when the peer closes within timeout (data meanwhile is discarded)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, ConnectionAbortedError):
            return True
        if not data:
            return True


def http_exchange(addr, request, timeout=WAIT, pieces=None, close_wait=2.0):
    """Sends request (bytes; or pieces: a list of bytes sent one by one with a short pause)
    and returns the HttpResponse, with .closed: the server closed within close_wait after
    the response, and .extra: bytes that followed the response."""
    sock = socket.create_connection(addr, timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for p in (pieces or [request]):
            sock.sendall(p)
            if pieces:
                time.sleep(0.02)
        buf = bytearray()
        resp = read_http_response(sock, buf, time.monotonic() + timeout)
        resp.extra = bytes(buf)
        resp.closed = wait_eof(sock, close_wait)
        return resp
    finally:
        sock.close()


def upgrade_request(path="/ws", host="127.0.0.1", key=None, version="13", protocols=None,
                    extra=(), method="GET", http="HTTP/1.1", upgrade="websocket",
                    connection="Upgrade", omit=()):
    """A WebSocket opening handshake as bytes. protocols: list of names for one
    Sec-WebSocket-Protocol line (or a list of lists for several lines); omit: header names
    to leave out."""
    key = key if key is not None else new_key()
    lines = ["%s %s %s" % (method, path, http)]
    hdrs = [("Host", host), ("Upgrade", upgrade), ("Connection", connection),
            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    for n, v in hdrs:
        if n not in omit and v is not None:
            lines.append("%s: %s" % (n, v))
    if protocols:
        groups = protocols if isinstance(protocols[0], (list, tuple)) else [protocols]
        for g in groups:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(g))
    for n, v in extra:
        lines.append("%s: %s" % (n, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


def encode_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None, length=None):
    """A client frame. length overrides the encoded payload length (for lying headers)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload)) if len(payload) < 4096 \
        else _xor(payload, key)
    return head + key + masked


def _xor(payload, key):
    n = len(payload)
    k = (key * ((n + 3) // 4))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class WSFrame:
    def __init__(self, fin, rsv, opcode, payload, header):
        self.fin, self.rsv, self.opcode, self.payload, self.header = fin, rsv, opcode, payload, header

    @property
    def close_code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self):
        return self.payload[2:].decode("utf-8")

    def __repr__(self):
        return "WSFrame(fin=%d op=%#x len=%d %r)" % (self.fin, self.opcode, len(self.payload),
                                                     self.payload[:80])


class RawWS(RawStomp):
    """A raw-socket WebSocket client with RawStomp's STOMP API on top.

    The handshake is checked (101, Upgrade, Connection, Sec-WebSocket-Accept); every frame
    the server sends is checked (no mask, RSV 0, minimal length, control frames <= 125
    bytes, FIN on control frames). Data messages feed the STOMP stream; .messages lists
    (opcode, payload) per complete server message; control frames go to .pongs / .pings /
    .close_frame. send() wraps STOMP bytes in one masked text frame."""

    def __init__(self, addr, path="/ws", protocols=("v12.stomp",), extra=(), timeout=WAIT,
                 handshake=True, opcode=OP_TEXT):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.addr = addr
        self.timeout = timeout
        self.buf = bytearray()		# STOMP bytes
        self.wbuf = bytearray()		# raw bytes from the socket not yet framed
        self.eof = False
        self.heartbeats = 0
        self.heartbeat_times = []
        self.version = "1.2"
        self.messages = []
        self.frames = []		# every frame received, in order
        self.pongs = []
        self.pings = []
        self.close_frame = None
        self.tcp_closed = False
        self.opcode = opcode
        self._msg_op = None
        self._msg = bytearray()
        self.response = None
        if handshake:
            self.handshake(path, protocols, extra)

    def handshake(self, path="/ws", protocols=("v12.stomp",), extra=(), timeout=None):
        req, key = upgrade_request(path=path, host="%s:%d" % self.addr, protocols=list(protocols)
                                   if protocols else None, extra=extra)
        self.sock.sendall(req)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        resp = read_http_response(self.sock, self.wbuf, deadline)
        self.response = resp
        assert resp.status == 101, "handshake refused: %r" % resp
        assert resp.get("Upgrade", "").lower() == "websocket", resp
        assert "upgrade" in [t.strip().lower() for t in resp.get("Connection", "").split(",")], resp
        assert resp.get("Sec-WebSocket-Accept") == accept_key(key), resp
        return resp

    # --- sending ----------------------------------------------------------------

    def send_raw(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def send_ws(self, opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
        return self.send_raw(encode_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv,
                                          length=length))

    def send(self, data):
        """STOMP bytes as one masked data message (text by default)."""
        return self.send_ws(self.opcode, data)

    def send_fragments(self, pieces, opcode=OP_TEXT):
        """One message in len(pieces) frames."""
        ok = True
        for i, p in enumerate(pieces):
            ok = self.send_ws(opcode if i == 0 else OP_CONT, p, fin=(i == len(pieces) - 1)) and ok
        return ok

    # --- receiving --------------------------------------------------------------

    def _read_more(self, deadline):
        if self.tcp_closed:
            raise Closed()
        left = deadline - time.monotonic()
        self.sock.settimeout(max(left, 0.0))
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, BlockingIOError):
            raise Timeout()
        except (ConnectionResetError, ConnectionAbortedError):
            data = b""
        if not data:
            self.tcp_closed = True
            raise Closed()
        self.wbuf += data

    def _parse_ws(self):
        b = self.wbuf
        if len(b) < 2:
            return None
        b0, b1 = b[0], b[1]
        fin, rsv, op = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF
        assert not (b1 & 0x80), "server frame is masked (RFC 6455 5.1): %r" % bytes(b[:14])
        n = b1 & 0x7F
        hl = 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack("!H", b[2:4])[0]
            hl = 4
            assert n >= 126, "server frame length %d not minimally encoded (16-bit)" % n
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack("!Q", b[2:10])[0]
            hl = 10
            assert n >= 65536 and n < (1 << 63), \
                "server frame length %d not minimally encoded (64-bit)" % n
        if len(b) < hl + n:
            return None
        f = WSFrame(fin, rsv, op, bytes(b[hl:hl + n]), bytes(b[:hl]))
        del b[:hl + n]
        assert rsv == 0, "server frame with RSV bits %d: %r" % (rsv, f)
        assert op in (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG), f
        if op >= 8:
            assert fin and n <= 125, "bad server control frame %r" % f
        return f

    def recv_ws(self, timeout=None):
        """Next raw frame from the server. Raises Timeout, or Closed on TCP EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self._parse_ws()
            if f is not None:
                self.frames.append(f)
                return f
            self._read_more(deadline)

    def _fill(self, deadline):
        """Adds the next data message's payload to the STOMP stream (RawStomp's hook)."""
        if self.eof:
            raise Closed()
        while True:
            try:
                f = self.recv_ws(max(0.0, deadline - time.monotonic()))
            except Closed:
                self.eof = True
                raise
            if f.opcode == OP_PING:
                self.pings.append(f.payload)
                continue
            if f.opcode == OP_PONG:
                self.pongs.append(f.payload)
                continue
            if f.opcode == OP_CLOSE:
                self.close_frame = f
                self.eof = True
                raise Closed()
            if f.opcode == OP_CONT:
                assert self._msg_op is not None, "server continuation without a message"
            else:
                assert self._msg_op is None, "server started a message inside another"
                self._msg_op = f.opcode
            self._msg += f.payload
            if f.fin:
                data = bytes(self._msg)
                if self._msg_op == OP_TEXT:
                    data.decode("utf-8")	# a text message must be UTF-8 (RFC 6455 8.1)
                self.messages.append((self._msg_op, data))
                self._msg_op = None
                self._msg = bytearray()
                self.buf += data
                return

    def expect_close(self, timeout=None):
        """Reads until the server's close frame and then TCP EOF. Returns the close frame;
        raises AssertionError when the server sent none or kept the socket open."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while self.close_frame is None:
            try:
                self._fill(deadline)
            except Closed:
                break
            except Timeout:
                raise AssertionError("no close frame within %.1fs; frames %r"
                                     % (self.timeout if timeout is None else timeout,
                                        self.frames[-5:]))
        assert self.close_frame is not None, \
            "TCP closed without a close frame (client sees 1006); last frames %r" % self.frames[-5:]
        assert self.wait_tcp_close(max(0.0, deadline - time.monotonic()) + 0.5), \
            "socket still open after the server's close frame %r" % self.close_frame
        return self.close_frame

    def wait_tcp_close(self, timeout):
        """True once the server closes the TCP connection within timeout."""
        if self.tcp_closed:
            return True
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self.recv_ws(max(0.0, deadline - time.monotonic()))
                if f.opcode == OP_CLOSE and self.close_frame is None:
                    self.close_frame = f
            except Closed:
                return True
            except Timeout:
                return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def ws(herald):
    """(host, port) of the `herald` fixture's WebSocket listener."""
    return ws_addr(herald)


@pytest.fixture
def wsc(ws):
    """Factory: wsc() -> WSStomp on the default server (kw passed on); wsc.raw() -> RawWS;
    wsc.client() -> WSClient; wsc.url(path). Everything is closed at teardown."""
    made = []

    class Factory:
        addr = ws

        def __call__(self, path="/ws", **kw):
            c = WSStomp(ws_url(ws, path), **kw)
            made.append(c)
            return c

        def raw(self, **kw):
            c = RawWS(ws, **kw)
            made.append(c)
            return c

        def client(self, path="/ws", **kw):
            c = WSClient(ws_url(ws, path), **kw)
            made.append(c)
            return c

        def url(self, path="/ws"):
            return ws_url(ws, path)

    yield Factory()
    for c in made:
        try:
            c.kill() if isinstance(c, WSClient) else c.close()
        except Exception:
            pass
