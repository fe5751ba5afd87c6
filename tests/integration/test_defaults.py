"""
tests/integration/test_defaults.py - what the default limits accept, as RabbitMQ and
ActiveMQ do: 500 application headers on one SEND, header lines of 10 KiB, 16 MiB bodies;
and every queue MESSAGE says redelivered:false or redelivered:true.
"""

import pytest

from helpers import uid
from stompraw import RawStomp, frame_bytes

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive and backend_sensitive: 16 MiB bodies and 10 KiB header lines (large frames),
# routed across shards.
pytestmark = [pytest.mark.shard_sensitive, pytest.mark.backend_sensitive]


def roundtrip(server, headers, body, timeout=30):
    dest = "/queue/" + uid("defaults")
    with RawStomp(*server.addr, timeout=timeout) as c:
        assert c.connect().cmd == "CONNECTED"
        c.send(frame_bytes("SUBSCRIBE", [("destination", dest), ("id", "s")]) +
               frame_bytes("SEND", [("destination", dest)] + headers, body))
        f = c.recv_frame(timeout=timeout)
        assert f.cmd == "MESSAGE", f
        return f


def test_send_with_500_application_headers_is_delivered_with_all_of_them(herald):
    headers = [("x-h%d" % i, "v%d" % i) for i in range(500)]
    f = roundtrip(herald, headers, b"many headers")
    for name, value in headers:
        assert f.get(name) == value, name
    assert f.body == b"many headers"


def test_repeated_headers_keep_the_first_value_among_many(herald):
    headers = [("x-h%d" % i, "first") for i in range(300)] + \
        [("x-h%d" % i, "second") for i in range(300)]
    f = roundtrip(herald, headers, b"")
    names = [n for n, _ in f.headers if n.startswith("x-h")]
    assert len(names) == 300 and len(set(names)) == 300
    assert all(f.get("x-h%d" % i) == "first" for i in range(300))


def test_header_line_of_10_kib_is_accepted(herald):
    value = "v" * (10 * 1024 - len("x-long:") - 1)
    f = roundtrip(herald, [("x-long", value)], b"long header")
    assert f.get("x-long") == value


def test_16_mib_body_is_accepted_and_delivered_whole(herald):
    body = bytes(range(256)) * (16 * 1024 * 1024 // 256)
    f = roundtrip(herald, [("content-length", str(len(body)))], body, timeout=60)
    assert len(f.body) == len(body) and f.body == body


def test_first_delivery_of_a_queue_message_says_redelivered_false(herald):
    f = roundtrip(herald, [], b"fresh")
    assert f.get("redelivered") == "false", f


def test_topic_message_carries_no_redelivered_header(herald):
    dest = "/topic/" + uid("defaults")
    with RawStomp(*herald.addr) as c:
        assert c.connect().cmd == "CONNECTED"
        c.send(frame_bytes("SUBSCRIBE", [("destination", dest), ("id", "s")]) +
               frame_bytes("SEND", [("destination", dest)], b"t"))
        f = c.recv_frame(timeout=5)
        assert f.cmd == "MESSAGE" and "redelivered" not in f.names(), f
