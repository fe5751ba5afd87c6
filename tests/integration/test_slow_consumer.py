"""
tests/integration/test_slow_consumer.py - a topic subscriber too slow to drain its backlog
before the close deadline still reads why it is closed: the unsent backlog is cut at a
frame boundary and the ERROR "slow consumer" is the next thing after what was already on
its way (kernel buffers), not behind max-outbound-bytes it would never get through.
"""

import re
import time

import pytest

from helpers import uid
from stompraw import RawStomp, frame_bytes

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive and backend_sensitive: a slow consumer (outbound bytes, drain deadline), fed
# from another shard.
pytestmark = [pytest.mark.shard_sensitive, pytest.mark.backend_sensitive]

BODY = b"s" * 16384
READ_CHUNK = 8192
READ_PAUSE = 0.05	# ~160 KiB/s: 4 MiB would take ~25 s, past the server's 5 s drain limit
TCP_ESTABLISHED = "01"	# /proc/net/tcp's state column


def server_still_has_it(server_port, client_port):
    """True while the server's end of our connection (127.0.0.1:server_port to
    127.0.0.1:client_port) is still ESTABLISHED, i.e. herald has not closed it yet: once it
    has, every byte the client will ever read (up to the FIN) is fixed in the kernel, and
    reading it slowly checks nothing more."""
    local = "0100007F:%04X" % server_port
    remote = "0100007F:%04X" % client_port
    with open("/proc/net/tcp") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 3 and fields[1] == local and fields[2] == remote:
                return fields[3] == TCP_ESTABLISHED
    return False


def parse_frames(data):
    """(command, headers dict, body) of each whole frame in data (bodies here hold no NUL)."""
    frames = []
    for raw in data.split(b"\0"):
        raw = raw.lstrip(b"\r\n")
        if not raw:
            continue
        head, _, body = raw.partition(b"\n\n")
        lines = head.decode("utf-8", "replace").split("\n")
        hdrs = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        frames.append((lines[0], hdrs, body))
    return frames


@pytest.mark.timeout(90)
@pytest.mark.herald_args("--max-outbound-bytes", str(4 << 20))
def test_very_slow_topic_subscriber_reads_the_slow_consumer_error(herald):
    topic = "/topic/" + uid("veryslow")
    slow = RawStomp(herald.host, herald.port, rcvbuf=4096, timeout=30)
    assert slow.connect().cmd == "CONNECTED"
    slow.send_frame("SUBSCRIBE", [("destination", topic), ("id", "s"), ("receipt", "sub")])
    assert slow.recv_frame().cmd == "RECEIPT"

    pub = RawStomp(herald.host, herald.port, timeout=30)
    assert pub.connect().cmd == "CONNECTED"
    one = frame_bytes("SEND", [("destination", topic)], BODY)
    for batch in range(24):	# 12 MiB: 4 MiB past the limit, then more to trip it
        last = frame_bytes("SEND", [("destination", topic), ("receipt", "b%d" % batch)], BODY)
        assert pub.send(one * 31 + last)
        f = pub.recv_frame(30)
        assert f.cmd == "RECEIPT", f

    # Read slowly, as a client on a poor link would, until the server closes. Slowly while
    # herald holds the connection (its cut, its ERROR and its close deadline all happen
    # then); once herald has closed it, the rest is what its kernel already holds (a few
    # MiB on loopback, ~20 s at READ_PAUSE), read at full speed: a bounded poll instead of
    # a fixed ~25 s.
    s = slow.sock
    client_port = s.getsockname()[1]
    data = bytearray(slow.buf)
    deadline = time.monotonic() + 60
    closed = False
    server_closed = False
    while time.monotonic() < deadline:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = s.recv(READ_CHUNK)
        except ConnectionResetError:
            break
        if not chunk:
            closed = True
            break
        data += chunk
        if not server_closed:
            server_closed = not server_still_has_it(herald.port, client_port)
        if not server_closed:
            time.sleep(READ_PAUSE)
    frames = parse_frames(bytes(data))
    assert closed, "still connected after %d frames" % len(frames)
    assert frames, "nothing arrived"
    cmd, hdrs, _ = frames[-1]
    assert cmd == "ERROR", "closed without an ERROR after %d frames (last %s)" % (
        len(frames), cmd)
    assert re.search(r"slow consumer", hdrs.get("message", ""), re.I), hdrs
    messages = [f for f in frames if f[0] == "MESSAGE"]
    assert all(len(b) == len(BODY) for _, _, b in messages), "a MESSAGE was cut short"
    assert len(messages) < 24 * 32
    pub.close()
    slow.close()
