"""
tests/integration/stompraw.py - a tiny raw-socket STOMP client for exact-byte tests.

Builds frames byte for byte (no escaping unless asked), reads server frames with a timeout,
counts heart-beat EOLs between frames, and tells a closed connection from a quiet one.
Every read has a deadline; nothing here loops without a bound.
"""

import socket
import time

DEFAULT_TIMEOUT = 5.0


class Closed(Exception):
    """The peer closed the connection (EOF or reset) before a whole frame arrived."""


class Timeout(Exception):
    """No whole frame arrived before the deadline."""


def escape12(value):
    """STOMP 1.2 header escaping (1.1 is the same minus \\r)."""
    return (value.replace("\\", "\\\\").replace("\r", "\\r")
            .replace("\n", "\\n").replace(":", "\\c"))


def unescape12(value):
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            n = value[i + 1]
            out.append({"\\": "\\", "n": "\n", "r": "\r", "c": ":"}.get(n, "\\" + n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def frame_bytes(cmd, headers=(), body=b"", escape=False, eol=b"\n"):
    """Encodes a frame. headers: list of (name, value) pairs or a dict; str or bytes.
    With escape=False names and values go out exactly as given."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    if isinstance(body, str):
        body = body.encode("utf-8")
    out = bytearray(cmd.encode() if isinstance(cmd, str) else cmd)
    out += eol
    for name, value in headers:
        if isinstance(name, str):
            name = (escape12(name) if escape else name).encode("utf-8")
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str):
            value = (escape12(value) if escape else value).encode("utf-8")
        out += name + b":" + value + eol
    out += eol
    out += body
    out += b"\0"
    return bytes(out)


class Frame:
    """A received frame. headers keeps every line in order (raw, undecoded text);
    h maps a name to its first value (the spec: the first occurrence wins), decoded per 1.2
    unless the session is 1.0."""

    def __init__(self, cmd, headers, body, raw, decode=True):
        self.cmd = cmd
        self.headers = headers
        self.body = body
        self.raw = raw
        self.h = {}
        for name, value in headers:
            if decode:
                name, value = unescape12(name), unescape12(value)
            self.h.setdefault(name, value)

    def __getitem__(self, name):
        return self.h[name]

    def get(self, name, default=None):
        return self.h.get(name, default)

    def names(self):
        return [n for n, _ in self.headers]

    def __repr__(self):
        return "Frame(%s, %r, body=%r)" % (self.cmd, self.headers, self.body[:200])


class RawStomp:
    """One TCP connection speaking raw STOMP bytes."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT, rcvbuf=None, nodelay=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect, so the advertised window is small from the start.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.heartbeats = 0	# EOLs seen between frames
        self.heartbeat_times = []	# time.monotonic() of each EOL run seen
        self.version = "1.2"

    # --- sending ---------------------------------------------------------------

    def send(self, data):
        """Sends raw bytes; False when the peer has already gone away."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def send_frame(self, cmd, headers=(), body=b"", **kw):
        return self.send(frame_bytes(cmd, headers, body, **kw))

    def connect(self, login="guest", passcode="guest", version="1.2", host="/",
                heart_beat=None, extra=(), cmd="CONNECT", timeout=None):
        """Sends CONNECT and returns the reply frame (CONNECTED or ERROR)."""
        headers = []
        if version is not None:
            headers.append(("accept-version", version))
        if host is not None:
            headers.append(("host", host))
        if login is not None:
            headers.append(("login", login))
        if passcode is not None:
            headers.append(("passcode", passcode))
        if heart_beat is not None:
            headers.append(("heart-beat", "%d,%d" % heart_beat))
        headers.extend(extra)
        self.send_frame(cmd, headers)
        f = self.recv_frame(timeout)
        if f.cmd == "CONNECTED":
            self.version = f.get("version", "1.0")
        return f

    # --- receiving -------------------------------------------------------------

    def _fill(self, deadline):
        """Reads more bytes into buf. Raises Closed on EOF/reset, Timeout past deadline."""
        if self.eof:
            raise Closed()
        remaining = deadline - time.monotonic()
        # Past the deadline, still take what is already there (non-blocking), so a zero
        # timeout means "poll".
        self.sock.settimeout(max(remaining, 0.0))
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, BlockingIOError):
            raise Timeout()
        except (ConnectionResetError, ConnectionAbortedError):
            self.eof = True
            raise Closed()
        if not data:
            self.eof = True
            raise Closed()
        self.buf += data

    def _skip_eols(self):
        n = 0
        while True:
            if self.buf[:1] == b"\n":
                del self.buf[:1]
                n += 1
            elif self.buf[:2] == b"\r\n":
                del self.buf[:2]
                n += 1
            else:
                break
        if n:
            self.heartbeats += n
            self.heartbeat_times.append(time.monotonic())
        return n

    def _try_parse(self):
        """Returns a Frame when buf holds a whole one (consumed from buf), else None."""
        self._skip_eols()
        if not self.buf or self.buf == b"\r":
            return None
        end_hdr = self.buf.find(b"\n\n")
        end_hdr_crlf = self.buf.find(b"\r\n\r\n")
        # Headers end at the first blank line, whichever line ending it uses.
        cands = []
        if end_hdr >= 0:
            cands.append((end_hdr, 2))
        if end_hdr_crlf >= 0:
            cands.append((end_hdr_crlf, 4))
        # A CRLF then bare LF mix ("\r\n\n") is also a blank line.
        mix = self.buf.find(b"\r\n\n")
        if mix >= 0:
            cands.append((mix, 3))
        if not cands:
            return None
        pos, seplen = min(cands)
        head = bytes(self.buf[:pos]).decode("utf-8", "replace")
        lines = head.replace("\r\n", "\n").split("\n")
        cmd = lines[0]
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            headers.append((name, value))
        body_start = pos + seplen
        clen = None
        for name, value in headers:
            if name == "content-length":
                try:
                    clen = int(value)
                except ValueError:
                    clen = None
                break
        if clen is not None:
            if len(self.buf) < body_start + clen + 1:
                return None
            body = bytes(self.buf[body_start:body_start + clen])
            if self.buf[body_start + clen] != 0:
                raise AssertionError("server frame %s: byte after content-length body is %r, not NUL"
                                     % (cmd, bytes(self.buf[body_start + clen:body_start + clen + 1])))
            end = body_start + clen + 1
        else:
            nul = self.buf.find(b"\0", body_start)
            if nul < 0:
                return None
            body = bytes(self.buf[body_start:nul])
            end = nul + 1
        raw = bytes(self.buf[:end])
        del self.buf[:end]
        return Frame(cmd, headers, body, raw, decode=(self.version != "1.0"))

    def recv_frame(self, timeout=None):
        """Next whole frame, skipping heart-beats. Raises Timeout or Closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self._try_parse()
            if f is not None:
                return f
            self._fill(deadline)

    def recv_frames(self, n, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out = []
        while len(out) < n:
            out.append(self.recv_frame(max(0.0, deadline - time.monotonic())))
        return out

    def pump(self, seconds):
        """Reads whatever arrives for `seconds` and returns those frames. Raises Closed when
        the server closes meanwhile (frames read so far are in the exception's .frames)."""
        deadline = time.monotonic() + seconds
        frames = []
        while True:
            try:
                frames.append(self.recv_frame(max(0.0, deadline - time.monotonic())))
            except Timeout:
                return frames
            except Closed as e:
                e.frames = frames
                raise

    def recv_until_closed(self, timeout=None, max_frames=1_000_000):
        """Reads frames until the server closes. Returns (frames, closed: bool)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        frames = []
        while len(frames) < max_frames:
            try:
                frames.append(self.recv_frame(max(0.0, deadline - time.monotonic())))
            except Closed:
                return frames, True
            except Timeout:
                return frames, False
        return frames, False

    def expect_error_then_close(self, timeout=None):
        """The spec's reaction to bad input: an ERROR frame, then the connection closes.
        Returns the ERROR frame; raises AssertionError otherwise."""
        frames, closed = self.recv_until_closed(timeout)
        errors = [f for f in frames if f.cmd == "ERROR"]
        assert errors, "expected an ERROR frame, got %r (closed=%s)" % (frames, closed)
        assert frames[-1].cmd == "ERROR", "frames after ERROR: %r" % frames
        assert closed, "connection still open %.1fs after ERROR %r" % (
            self.timeout if timeout is None else timeout, errors[0])
        return errors[0]

    def is_closed(self, timeout=0.5):
        """True once the server has closed (EOF/reset) within timeout; frames read meanwhile
        are discarded."""
        _, closed = self.recv_until_closed(timeout)
        return closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Closes with RST instead of FIN."""
        import struct
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
