"""
RFC 6455 framing on the WebSocket port (issue 4 "Frames"): masks, ping/pong, the closing
handshake and its status codes, fragmentation and continuation, text vs binary client
messages, UTF-8 validation (1007), the message size limit (1009) and protocol errors (1002).
Raw sockets build the exact bytes; RawWS checks every server frame (no mask, RSV 0, minimal
length) and that the TCP connection ends after the server's close frame.
"""

import struct
import time

import pytest

from helpers import uid
from stompraw import frame_bytes
from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, WSClosed,
                      close_payload, encode_frame, ws, wsc)	# noqa: F401

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# backend_sensitive: WebSocket framing split across TCP writes, one connection each.
pytestmark = [pytest.mark.herald_shared, pytest.mark.backend_sensitive]


def connected(wsc, **kw):
    r = wsc.raw(**kw)
    f = r.connect()
    assert f.cmd == "CONNECTED", f
    return r


def expect_close_code(r, code, timeout=5.0):
    f = r.expect_close(timeout)
    assert f.close_code == code, "expected close %d, got %s %r" % (code, f.close_code, f.payload)
    f.close_reason		# the reason is UTF-8
    return f


def roundtrip(r, body="x"):
    """SUBSCRIBE + SEND with receipts over r; proves the connection still works."""
    q = "/queue/" + uid("rt")
    r.send_frame("SUBSCRIBE", [("id", uid("s")), ("destination", q), ("receipt", "r-sub")])
    assert r.recv_frame().cmd == "RECEIPT"
    r.send_frame("SEND", [("destination", q)], body)
    m = r.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == body.encode(), m
    return m


def sentinel_check(herald, clients, send_bad, bad_body=b"BAD"):
    """Subscribes a TCP client, lets send_bad() try to publish bad_body to its queue over
    WebSocket, then sends a sentinel over TCP: the first message must be the sentinel."""
    q = "/queue/" + uid("sentinel")
    tcp = clients(herald)
    tcp.subscribe(q)
    send_bad(q)
    time.sleep(0.2)
    tcp.send(q, "sentinel", receipt=True)
    first = tcp.wait_messages(1)[0]
    assert first.body == "sentinel", "a frame from a failed WebSocket connection was delivered: %r" \
        % first.body


# --- ping / pong -------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"hello", bytes(range(125))])
def test_ping_gets_pong_with_same_payload(wsc, payload):
    r = wsc.raw()
    r.send_ws(OP_PING, payload)
    f = r.recv_ws()
    assert f.opcode == OP_PONG and f.payload == payload, f


def test_ping_during_session_and_between_fragments(wsc):
    r = connected(wsc)
    q = "/queue/" + uid("q")
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    send = frame_bytes("SEND", [("destination", q)], b"fragmented-with-ping")
    r.send_ws(OP_TEXT, send[:10], fin=False)
    r.send_ws(OP_PING, b"mid")
    r.send_ws(OP_CONT, send[10:20], fin=False)
    r.send_ws(OP_PING, b"mid2")
    r.send_ws(OP_CONT, send[20:], fin=True)
    m = r.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"fragmented-with-ping", m
    assert r.pongs == [b"mid", b"mid2"]


def test_library_ping(wsc):
    c = wsc()
    c.connect()
    assert c.client.ping(b"are-you-there") < 5
    assert c.client.ping() < 5


def test_unsolicited_pong_is_ignored(wsc):
    r = wsc.raw()
    r.send_ws(OP_PONG, b"unsolicited")
    assert r.connect().cmd == "CONNECTED"
    r.send_ws(OP_PONG, b"")
    roundtrip(r)


# --- closing handshake ----------------------------------------------------------------------------

@pytest.mark.parametrize("code,reason", [(1000, "bye"), (1001, "going away"), (4000, "app"),
                                         (3000, ""), (1000, "")])
def test_close_handshake_echoes(wsc, code, reason):
    r = connected(wsc)
    r.send_ws(OP_CLOSE, close_payload(code, reason))
    f = r.expect_close()
    # RFC 6455 5.5.1: answer with a close frame, typically echoing the code
    assert f.close_code in (code, 1000), f


def test_close_without_status(wsc):
    r = connected(wsc)
    r.send_ws(OP_CLOSE, b"")
    f = r.expect_close()
    assert f.payload == b"" or f.close_code == 1000, f


def test_close_before_stomp_connect(wsc):
    r = wsc.raw()
    r.send_ws(OP_CLOSE, close_payload(1000))
    assert r.expect_close().close_code == 1000


def test_library_close_handshake(wsc):
    c = wsc()
    c.connect()
    code, reason = c.client.close(1000, "done")
    assert code == 1000, (code, reason)


def test_frames_after_close_are_ignored(herald, clients, wsc):
    def send_bad(q):
        r = connected(wsc)
        r.send_raw(encode_frame(OP_CLOSE, close_payload(1000)) +
                   encode_frame(OP_TEXT, frame_bytes("SEND", [("destination", q)], b"BAD")))
        r.expect_close()
    sentinel_check(herald, clients, send_bad)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000,
                                  65535])
def test_close_with_invalid_code_is_1002(wsc, code):
    r = connected(wsc)
    r.send_ws(OP_CLOSE, struct.pack("!H", code))
    expect_close_code(r, 1002)


def test_close_with_one_byte_payload_is_1002(wsc):
    r = connected(wsc)
    r.send_ws(OP_CLOSE, b"\x03")
    expect_close_code(r, 1002)


def test_close_reason_not_utf8_is_1007(wsc):
    r = connected(wsc)
    r.send_ws(OP_CLOSE, struct.pack("!H", 1000) + b"\xff\xfe")
    expect_close_code(r, 1007)


# --- protocol errors: 1002 --------------------------------------------------------------------------

def test_unmasked_client_frame_is_1002(wsc):
    r = connected(wsc)
    r.send_ws(OP_TEXT, frame_bytes("SEND", [("destination", "/queue/x")], b"u"), mask=False)
    expect_close_code(r, 1002)


def test_unmasked_frame_before_stomp_connect_is_1002(wsc):
    r = wsc.raw()
    r.send_ws(OP_TEXT, frame_bytes("CONNECT", [("accept-version", "1.2"), ("host", "/")]),
              mask=False)
    expect_close_code(r, 1002)


def test_unmasked_ping_is_1002(wsc):
    r = wsc.raw()
    r.send_ws(OP_PING, b"p", mask=False)
    f = r.expect_close()
    assert f.close_code == 1002
    assert not r.pongs, "answered an unmasked ping"


def test_unmasked_frame_is_not_delivered(herald, clients, wsc):
    def send_bad(q):
        r = connected(wsc)
        r.send_ws(OP_TEXT, frame_bytes("SEND", [("destination", q)], b"BAD"), mask=False)
        expect_close_code(r, 1002)
    sentinel_check(herald, clients, send_bad)


@pytest.mark.parametrize("rsv", [1, 2, 4])
def test_reserved_bits_are_1002(wsc, rsv):
    r = connected(wsc)
    r.send_ws(OP_TEXT, b"\n", rsv=rsv)
    expect_close_code(r, 1002)


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
def test_unknown_opcode_is_1002(wsc, opcode):
    r = connected(wsc)
    r.send_ws(opcode, b"x")
    expect_close_code(r, 1002)


def test_control_frame_over_125_bytes_is_1002(wsc):
    r = connected(wsc)
    r.send_ws(OP_PING, b"p" * 126)
    expect_close_code(r, 1002)
    assert not r.pongs


def test_fragmented_control_frame_is_1002(wsc):
    r = connected(wsc)
    r.send_ws(OP_PING, b"p", fin=False)
    expect_close_code(r, 1002)


def test_continuation_without_message_is_1002(wsc):
    r = connected(wsc)
    r.send_ws(OP_CONT, b"\n", fin=True)
    expect_close_code(r, 1002)


@pytest.mark.parametrize("second", [OP_TEXT, OP_BINARY])
def test_new_message_inside_fragmented_one_is_1002(wsc, second):
    r = connected(wsc)
    r.send_ws(OP_TEXT, b"SEND\n", fin=False)
    r.send_ws(second, b"x", fin=True)
    expect_close_code(r, 1002)


def test_64bit_length_with_high_bit_is_1002(wsc):
    r = connected(wsc)
    head = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + b"\0\0\0\0"
    r.send_raw(head)
    expect_close_code(r, 1002)


# --- UTF-8: 1007 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    b"\xff",
    b"\xc0\xaf",			# overlong '/'
    b"\xe0\x80\xaf",			# overlong, 3 bytes
    b"\xed\xa0\x80",			# UTF-16 surrogate
    b"\xf4\x90\x80\x80",		# above U+10FFFF
    b"\x80",				# lone continuation byte
    b"ok \xe4\xb8",			# truncated at the end of the message
])
def test_invalid_utf8_text_message_is_1007(wsc, bad):
    r = connected(wsc)
    r.send_ws(OP_TEXT, b"\n" + bad)
    expect_close_code(r, 1007)


def test_invalid_utf8_before_stomp_connect_is_1007(wsc):
    r = wsc.raw()
    r.send_ws(OP_TEXT, b"CONNECT\n\xff\n\n\0")
    expect_close_code(r, 1007)


def test_invalid_utf8_across_fragments_is_1007(wsc):
    r = connected(wsc)
    r.send_ws(OP_TEXT, b"\n\xe4", fin=False)
    r.send_ws(OP_CONT, b"A", fin=True)
    expect_close_code(r, 1007)


def test_truncated_utf8_at_final_fragment_is_1007(wsc):
    r = connected(wsc)
    r.send_ws(OP_TEXT, b"\n", fin=False)
    r.send_ws(OP_CONT, b"\xf0\x9f", fin=False)
    r.send_ws(OP_CONT, b"\x98", fin=True)
    expect_close_code(r, 1007)


def test_invalid_utf8_send_is_not_delivered(herald, clients, wsc):
    def send_bad(q):
        r = connected(wsc)
        r.send_ws(OP_TEXT, frame_bytes("SEND", [("destination", q)], b"BAD\xff"))
        expect_close_code(r, 1007)
    sentinel_check(herald, clients, send_bad)


def test_utf8_character_split_across_fragments_is_fine(wsc):
    r = connected(wsc)
    q = "/queue/" + uid("u")
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    body = "中文 😀 é".encode("utf-8")
    send = frame_bytes("SEND", [("destination", q)], body)
    cut = send.index(body) + 1		# inside the first 3-byte character
    cut2 = send.index("😀".encode()) + 2
    r.send_fragments([send[:cut], send[cut:cut2], send[cut2:]])
    m = r.recv_frame()
    assert m.body == body, m
    assert r.messages[-1][0] == OP_TEXT


def test_binary_message_is_not_utf8_checked(wsc):
    r = connected(wsc)
    q = "/queue/" + uid("b")
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    body = b"\xff\xfe\x00\x80 binary"
    r.send_ws(OP_BINARY, frame_bytes("SEND", [("destination", q),
                                             ("content-length", str(len(body)))], body))
    m = r.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == body, m


# --- size limit: 1009 ----------------------------------------------------------------------------

@pytest.mark.herald_args("--max-frame-bytes", "4096", "--max-body-bytes", "4096")
def test_oversize_frame_header_is_1009_before_payload(wsc):
    r = connected(wsc)
    # announces 1 GiB and sends nothing more: the header alone must trip the limit
    r.send_raw(bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 30) + b"\1\2\3\4")
    expect_close_code(r, 1009, timeout=3)


@pytest.mark.herald_args("--max-frame-bytes", "4096", "--max-body-bytes", "4096")
def test_oversize_message_is_1009(wsc):
    r = connected(wsc)
    r.send_ws(OP_TEXT, b"\n" * 200000)
    expect_close_code(r, 1009)


@pytest.mark.herald_args("--max-frame-bytes", "4096", "--max-body-bytes", "4096")
def test_oversize_fragmented_message_is_1009(wsc):
    # every fragment is small; the message over all of them is not
    r = connected(wsc)
    for _ in range(100):
        if not r.send_ws(OP_TEXT if _ == 0 else OP_CONT, b"\n" * 2000, fin=False):
            break
        if r.tcp_closed:
            break
    expect_close_code(r, 1009)


@pytest.mark.herald_args("--max-frame-bytes", "4096", "--max-body-bytes", "4096")
def test_library_oversize_message_is_1009(wsc):
    c = wsc()
    c.connect()
    try:
        c.client.send("\n" * 100000)
    except WSClosed:
        pass
    with pytest.raises(WSClosed) as ei:
        while True:
            c.client.recv(5)
    assert ei.value.code == 1009, ei.value


@pytest.mark.herald_args("--max-frame-bytes", "4096", "--max-body-bytes", "4096")
def test_message_within_limit_is_fine(wsc):
    r = connected(wsc)
    roundtrip(r, "b" * 3500)


# --- fragmentation, continuation, binary and mixed messages -----------------------------------------

def test_fragmented_text_message(wsc):
    r = connected(wsc)
    q = "/queue/" + uid("f")
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    send = frame_bytes("SEND", [("destination", q), ("content-type", "text/plain")],
                       b"in three fragments")
    r.send_fragments([send[:7], send[7:30], send[30:]])
    m = r.recv_frame()
    assert m.body == b"in three fragments", m


def test_fragmented_with_empty_fragments(wsc):
    r = connected(wsc)
    q = "/queue/" + uid("f")
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    send = frame_bytes("SEND", [("destination", q)], b"empties")
    r.send_fragments([b"", send[:5], b"", send[5:], b""])
    assert r.recv_frame().body == b"empties"


def test_fragmented_binary_message(wsc):
    r = connected(wsc)
    q = "/queue/" + uid("f")
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    body = bytes(range(256))
    send = frame_bytes("SEND", [("destination", q), ("content-length", "256")], body)
    r.send_fragments([send[i:i + 33] for i in range(0, len(send), 33)], opcode=OP_BINARY)
    m = r.recv_frame()
    assert m.body == body


def test_library_fragmented_message(wsc):
    c = wsc()
    c.connect()
    q = "/queue/" + uid("f")
    c.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    send = frame_bytes("SEND", [("destination", q)], "fragmenté".encode()).decode()
    c.client.send([send[:3], send[3:20], send[20:]])
    assert c.recv_frame().body == "fragmenté".encode()


def test_binary_client_messages(wsc):
    c = wsc(binary=True)
    f = c.connect()
    assert f.cmd == "CONNECTED"
    roundtrip(c, "sent as binary")
    assert all(kind == "text" for kind, _ in c.received), c.received


def test_text_and_binary_messages_form_one_stomp_stream(wsc):
    # RABBITMQ-REFERENCE "Web-STOMP": client frames may be text or binary, a byte stream
    r = connected(wsc)
    q = "/queue/" + uid("mix")
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    send = frame_bytes("SEND", [("destination", q)], b"mixed")
    r.send_ws(OP_TEXT, send[:12])
    r.send_ws(OP_BINARY, send[12:])
    assert r.recv_frame().body == b"mixed"


def test_frame_header_and_payload_split_across_tcp_writes(wsc):
    r = connected(wsc)
    q = "/queue/" + uid("split")
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    body = b"z" * 300		# 16-bit length
    wire = encode_frame(OP_TEXT, frame_bytes("SEND", [("destination", q)], body))
    for i in range(0, 20):
        r.send_raw(wire[i:i + 1])
        time.sleep(0.002)
    for i in range(20, len(wire), 7):
        r.send_raw(wire[i:i + 7])
    assert r.recv_frame().body == body


def test_many_frames_in_one_tcp_write(wsc):
    r = connected(wsc)
    q = "/queue/" + uid("burst")
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    wire = b"".join(encode_frame(OP_TEXT, frame_bytes("SEND", [("destination", q)], b"m%d" % i))
                    for i in range(100))
    wire += encode_frame(OP_PING, b"end")
    r.send_raw(wire)
    got = [f.body for f in r.recv_frames(100)]
    assert got == [b"m%d" % i for i in range(100)]


def test_server_frames_are_unmasked_minimal_and_one_message_per_stomp_frame(wsc):
    r = connected(wsc)
    q = "/queue/" + uid("sizes")
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", q)])
    sizes = [0, 1, 60, 125, 126, 200, 65535, 65536, 70000]
    for n in sizes:
        r.send_frame("SEND", [("destination", q)], b"a" * n)
    for n in sizes:
        m = r.recv_frame()
        assert m.body == b"a" * n
    # RawWS asserted unmasked frames, RSV 0 and minimal lengths; each MESSAGE is a message
    msgs = [p for op, p in r.messages if p.startswith(b"MESSAGE")]
    assert len(msgs) == len(sizes)
    for p in msgs:
        assert p.rstrip(b"\n").endswith(b"\0") and p.count(b"\0") == 1, p[:100]


def test_protocol_error_leaves_the_server_working(herald, wsc):
    from helpers import assert_server_works
    for _ in range(3):
        r = connected(wsc)
        r.send_ws(OP_TEXT, b"x", mask=False)
        expect_close_code(r, 1002)
    assert_server_works(herald.addr)
    r = connected(wsc)
    roundtrip(r)
