"""
Exact bytes on the wire (STOMP 1.2 "Frames", "Value Encoding", "Header Repetition",
"MESSAGE"): split and pipelined frames, EOLs, CRLF, content-length bodies with NULs, header
escaping per version, repeated headers, what a MESSAGE carries.
"""

import time

import pytest

from helpers import uid
from stompraw import RawStomp, frame_bytes

# One server per module; tests needing their own say herald_fresh (conftest.py).
# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# backend_sensitive: bytes split, pipelined and batched on the wire (the backend's reads and
# writes), one connection's own frames: the same on any shard count.
pytestmark = [pytest.mark.herald_shared, pytest.mark.backend_sensitive]

CONNECT = b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0"


def session(herald, raws, version="1.2"):
    r = raws(herald)
    f = r.connect(version=version)
    assert f.cmd == "CONNECTED", f
    return r


def subscribed(herald, raws, dest, version="1.2", ack="auto", sid="s1"):
    r = session(herald, raws, version)
    r.send_frame("SUBSCRIBE", [("destination", dest), ("id", sid), ("ack", ack),
                               ("receipt", "sub")])
    f = r.recv_frame()
    assert f.cmd == "RECEIPT", f
    return r


def test_connect_split_at_every_byte(herald):
    for cut in range(1, len(CONNECT)):
        with RawStomp(herald.host, herald.port) as r:
            r.send(CONNECT[:cut])
            time.sleep(0.002)
            r.send(CONNECT[cut:])
            f = r.recv_frame()
            assert f.cmd == "CONNECTED", "cut at %d: %r" % (cut, f)


def test_send_split_at_every_byte_delivers_each_message_intact(herald, raws):
    q = "/queue/" + uid("split")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    template = frame_bytes("SEND", [("destination", q), ("x-h", "v-%04d")], b"body-%04d")
    n = len(template)
    for cut in range(1, n):
        wire = template.replace(b"%04d", b"%04d" % cut)
        pub.send(wire[:cut])
        time.sleep(0.001)
        pub.send(wire[cut:])
    for cut in range(1, n):
        m = sub.recv_frame()
        assert m.cmd == "MESSAGE", m
        assert m.body == b"body-%04d" % cut, "cut at %d" % cut
        assert m["x-h"] == "v-%04d" % cut


def test_content_length_frame_split_inside_the_body(herald, raws):
    q = "/queue/" + uid("split")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    body = b"\0a\0b\0c\0"
    wire = frame_bytes("SEND", [("destination", q), ("content-length", len(body))], body)
    for cut in range(1, len(wire)):
        pub.send(wire[:cut])
        time.sleep(0.001)
        pub.send(wire[cut:])
    for cut in range(1, len(wire)):
        m = sub.recv_frame()
        assert m.body == body, "cut at %d" % cut


def split_replies(frames):
    """A session's own MESSAGEs may interleave with its RECEIPTs (delivery to a subscription
    is not ordered against receipts of later frames); split them apart."""
    return ([f for f in frames if f.cmd != "MESSAGE"], [f for f in frames if f.cmd == "MESSAGE"])


def pipelined_wire(q, n):
    return (CONNECT
            + frame_bytes("SUBSCRIBE", [("destination", q), ("id", "s"), ("receipt", "r1")])
            + b"".join(frame_bytes("SEND", [("destination", q)], b"p%d" % i) for i in range(n))
            + frame_bytes("SEND", [("destination", q), ("receipt", "r2")], b"last"))


def check_pipelined_replies(r, n):
    frames = r.recv_frames(n + 4, timeout=5.0)
    others, msgs = split_replies(frames)
    assert [f.cmd for f in others] == ["CONNECTED", "RECEIPT", "RECEIPT"], frames
    assert others[1]["receipt-id"] == "r1" and others[2]["receipt-id"] == "r2"
    assert frames.index(others[1]) < frames.index(msgs[0]), "MESSAGE before SUBSCRIBE's RECEIPT"
    assert [f.body for f in msgs] == [b"p%d" % i for i in range(n)] + [b"last"]
    r.send_frame("DISCONNECT", [("receipt", "r3")])
    frames, closed = r.recv_until_closed(5.0)
    assert [f.cmd for f in frames] == ["RECEIPT"] and closed, frames


def test_whole_session_one_byte_at_a_time(herald, raws):
    q = "/queue/" + uid("byte")
    wire = pipelined_wire(q, 1)
    r = raws(herald)
    for i in range(len(wire)):
        r.send(wire[i:i + 1])
    check_pipelined_replies(r, 1)


def test_pipelined_session_in_one_write(herald, raws):
    q = "/queue/" + uid("pipe")
    r = raws(herald)
    r.send(pipelined_wire(q, 3))
    check_pipelined_replies(r, 3)


def test_hundreds_of_frames_in_one_write_keep_order(herald, raws):
    q = "/queue/" + uid("burst")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    pub.send(b"".join(frame_bytes("SEND", [("destination", q)], b"b%04d" % i)
                      for i in range(500)))
    got = [f.body for f in sub.recv_frames(500, timeout=10)]
    assert got == [b"b%04d" % i for i in range(500)]


def test_eols_between_frames_and_after_nul_are_heart_beats(herald, raws):
    q = "/queue/" + uid("eol")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    pub.send(b"\n\n" + frame_bytes("SEND", [("destination", q)], b"a") + b"\n"
             + b"\r\n\n" + frame_bytes("SEND", [("destination", q)], b"b") + b"\r\n")
    assert [f.body for f in sub.recv_frames(2)] == [b"a", b"b"]


def test_crlf_line_endings_are_accepted(herald, raws):
    q = "/queue/" + uid("crlf")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    pub.send(frame_bytes("SEND", [("destination", q), ("x", "y")], b"crlf body", eol=b"\r\n"))
    m = sub.recv_frame()
    assert m.body == b"crlf body"
    assert m["destination"] == q
    assert m["x"] == "y"  # not "y\r"


def test_binary_body_with_nuls_is_delivered_byte_exact(herald, raws):
    q = "/queue/" + uid("bin")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    body = bytes(range(256)) * 4 + b"\0\0\0"
    pub.send_frame("SEND", [("destination", q), ("content-length", len(body)),
                            ("content-type", "application/octet-stream")], body)
    m = sub.recv_frame()
    assert m.body == body
    assert m["content-length"] == str(len(body))
    assert m["content-type"] == "application/octet-stream"


def test_message_carries_content_length(herald, raws):
    q = "/queue/" + uid("cl")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    pub.send_frame("SEND", [("destination", q)], "héllo wörld")
    m = sub.recv_frame()
    assert m.body == "héllo wörld".encode()
    assert m["content-length"] == str(len(m.body))


def test_empty_body(herald, raws):
    q = "/queue/" + uid("empty")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    pub.send_frame("SEND", [("destination", q)], b"")
    pub.send_frame("SEND", [("destination", q), ("content-length", "0")], b"")
    assert [f.body for f in sub.recv_frames(2)] == [b"", b""]


def test_half_megabyte_body(herald, raws):
    q = "/queue/" + uid("big")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    body = (b"0123456789abcdef" * 32768)  # 512 KiB
    pub.send_frame("SEND", [("destination", q), ("content-length", len(body))], body)
    assert sub.recv_frame(10).body == body


def test_message_headers(herald, raws):
    q = "/queue/" + uid("hdr")
    sub = subscribed(herald, raws, q, ack="client-individual", sid="sub-7")
    pub = session(herald, raws)
    pub.send_frame("SEND", [("destination", q), ("content-type", "text/plain"),
                            ("z-first", "1"), ("a-second", "2"), ("m-third", "3")], b"x")
    pub.send_frame("SEND", [("destination", q)], b"y")
    m, m2 = sub.recv_frames(2)
    assert m.cmd == "MESSAGE"
    assert m["subscription"] == "sub-7"
    assert m["destination"] == q
    assert m["message-id"] and m2["message-id"] and m["message-id"] != m2["message-id"]
    assert m["ack"] and m2["ack"] and m["ack"] != m2["ack"]
    assert m["content-type"] == "text/plain"
    # The publisher's own headers (RabbitMQ does not keep their order; neither need we).
    assert (m["z-first"], m["a-second"], m["m-third"]) == ("1", "2", "3")
    # Server frames carry no transaction or receipt of the SEND.
    assert "receipt" not in m.h and "transaction" not in m.h


def test_header_values_are_not_trimmed(herald, raws):
    q = "/queue/" + uid("ws")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    pub.send_frame("SEND", [("destination", q), ("padded", "  both sides  "), ("empty", "")],
                   b"x")
    m = sub.recv_frame()
    assert m["padded"] == "  both sides  "
    assert m["empty"] == ""


def test_utf8_header_values(herald, raws):
    q = "/queue/" + uid("utf8")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    pub.send_frame("SEND", [("destination", q), ("greeting", "你好, мир")], "订单")
    m = sub.recv_frame()
    assert m["greeting"] == "你好, мир"
    assert m.body == "订单".encode()


def test_1_2_header_escapes_round_trip(herald, raws):
    q = "/queue/" + uid("esc")
    sub = subscribed(herald, raws, q)
    pub = session(herald, raws)
    value = "a:b\nc\\d\re"
    pub.send_frame("SEND", [("destination", q), ("tricky", value)], b"x", escape=True)
    m = sub.recv_frame()
    raw = dict(m.headers)["tricky"]
    assert raw == "a\\cb\\nc\\\\d\\re", raw
    assert m["tricky"] == value


def test_1_1_header_escapes_round_trip(herald, raws):
    q = "/queue/" + uid("esc")
    sub = subscribed(herald, raws, q, version="1.1")
    pub = session(herald, raws, version="1.1")
    pub.send(b"SEND\ndestination:" + q.encode() + b"\ntricky:a\\cb\\nc\\\\d\n\nx\0")
    m = sub.recv_frame()
    assert dict(m.headers)["tricky"] == "a\\cb\\nc\\\\d"


def test_1_1_reader_gets_a_carriage_return_raw_not_the_1_2_escape(herald, raws):
    """STOMP 1.1 has no \\r escape (an undefined escape is fatal there): a CR sent by a
    1.2 publisher reaches a 1.1 reader as the raw byte, a 1.2 reader as \\r."""
    t = "/topic/" + uid("cr")
    sub11 = subscribed(herald, raws, t, version="1.1")
    sub12 = subscribed(herald, raws, t, version="1.2")
    pub = session(herald, raws, version="1.2")
    pub.send(b"SEND\ndestination:" + t.encode() + b"\nx:a\\rb\\cc\n\nbody\0")
    m11 = sub11.recv_frame()
    assert b"\nx:a\rb\\cc\n" in m11.raw, m11.raw
    assert m11.body == b"body"
    m12 = sub12.recv_frame()
    assert b"\nx:a\\rb\\cc\n" in m12.raw, m12.raw


@pytest.mark.rabbitmq_differs("RabbitMQ unescapes headers in STOMP 1.0 sessions too")
def test_1_0_headers_are_not_unescaped(herald, raws):
    q = "/queue/" + uid("esc10")
    t = "/topic/" + uid("esc10")
    sub = subscribed(herald, raws, t, version="1.0")
    sub12 = subscribed(herald, raws, t, version="1.2")
    pub = session(herald, raws, version="1.0")
    pub.send(b"SEND\ndestination:" + t.encode() + b"\nliteral:a\\nb\\c\n\nx\0")
    m = sub.recv_frame()
    assert dict(m.headers)["literal"] == "a\\nb\\c"
    # A 1.2 subscriber sees the same literal backslashes, escaped for its version.
    m12 = sub12.recv_frame()
    assert m12["literal"] == "a\\nb\\c", m12


def test_repeated_header_first_value_wins(herald, raws):
    q1, q2 = "/queue/" + uid("first"), "/queue/" + uid("second")
    sub = subscribed(herald, raws, q1)
    pub = session(herald, raws)
    pub.send_frame("SEND", [("destination", q1), ("destination", q2), ("x", "first"),
                            ("x", "second")], b"dup")
    pub.send_frame("SEND", [("destination", q2), ("receipt", "r")], b"to-q2")
    m = sub.recv_frame()
    assert m.body == b"dup"
    assert m["destination"] == q1
    assert m["x"] == "first"
    # and nothing went to q2 but the second SEND
    other = subscribed(herald, raws, q2)
    assert other.recv_frame().body == b"to-q2"
    assert other.pump(0.3) == []


def test_server_frames_are_well_formed(herald, raws):
    """Every server frame ends with NUL right after content-length bytes (checked by the
    parser) and the command is one of the spec's server commands."""
    q = "/queue/" + uid("wf")
    r = session(herald, raws)
    r.send_frame("SUBSCRIBE", [("destination", q), ("id", "s"), ("receipt", "a")])
    r.send_frame("SEND", [("destination", q), ("receipt", "b")], b"x")
    frames = r.recv_frames(3)
    r.send_frame("DISCONNECT", [("receipt", "c")])
    more, closed = r.recv_until_closed(5)
    assert closed
    frames += more
    assert sorted(f.cmd for f in frames) == ["MESSAGE", "RECEIPT", "RECEIPT", "RECEIPT"]
    for f in frames:
        assert f.raw.endswith(b"\0")

