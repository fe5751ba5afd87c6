"""
tests/integration/authutil.py - helpers for the auth integration tests (test_auth_*.py):
JWTs built by hand (HS256 with hmac/hashlib, RS256/ES256 with Debian's python3-cryptography,
or the `openssl` CLI when that is missing), argon2id users-file lines through libsodium
(ctypes; the server's own library), SIGHUP reloads that wait for the server's log line, and
raw logins that time how long the answer took.

Nothing here starts or stops a server; conftest.py does that.
"""

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from stompraw import Closed, RawStomp, Timeout

HERALD_BIN = os.environ.get("HERALD_BIN", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "core", "herald"))


# ---- base64url / JWT -------------------------------------------------------------------------

def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims(sub, ttl=300, **extra):
    """A claim set for sub that expires ttl seconds from now (negative: in the past)."""
    c = {"sub": sub, "exp": int(time.time()) + ttl}
    c.update(extra)
    return c


def hs256_token(secret, payload, header=None):
    h = {"alg": "HS256", "typ": "JWT"} if header is None else header
    signing_input = b64url_json(h) + "." + b64url_json(payload)
    key = secret.encode() if isinstance(secret, str) else secret
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def unsigned_token(payload, alg="none", sig=""):
    """alg none (or any alg) with the given signature part (default: empty)."""
    return b64url_json({"alg": alg, "typ": "JWT"}) + "." + b64url_json(payload) + "." + sig


def flip_signature(token):
    """The same token with one signature byte changed (still canonical base64url)."""
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return head + "." + payload + "." + b64url(bytes(raw))


try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    HAVE_CRYPTOGRAPHY = True
except ImportError:	# Debian without python3-cryptography: the openssl CLI below
    HAVE_CRYPTOGRAPHY = False


class AsymKey:
    """An RSA-2048 or P-256 key pair: the public PEM for herald, sign() for tokens."""

    def __init__(self, kind, workdir):
        assert kind in ("rsa", "ec")
        self.kind = kind
        self.alg = "RS256" if kind == "rsa" else "ES256"
        self.priv_path = os.path.join(workdir, "%s-priv.pem" % kind)
        self.pub_path = os.path.join(workdir, "%s-pub.pem" % kind)
        if HAVE_CRYPTOGRAPHY:
            if kind == "rsa":
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            else:
                self._key = ec.generate_private_key(ec.SECP256R1())
            with open(self.priv_path, "wb") as f:
                f.write(self._key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
            with open(self.pub_path, "wb") as f:
                f.write(self._key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        else:
            if not shutil.which("openssl"):
                pytest.skip("neither python3-cryptography nor the openssl CLI is available")
            if kind == "rsa":
                gen = ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
            else:
                gen = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
            subprocess.run(gen + ["-out", self.priv_path], check=True, capture_output=True,
                           timeout=30)
            subprocess.run(["openssl", "pkey", "-in", self.priv_path, "-pubout", "-out",
                            self.pub_path], check=True, capture_output=True, timeout=10)
        with open(self.pub_path, "rb") as f:
            self.pub_pem = f.read()

    def _sign_raw(self, data):
        if HAVE_CRYPTOGRAPHY:
            if self.kind == "rsa":
                return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
            der = self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        else:
            der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.priv_path],
                                 input=data, check=True, capture_output=True, timeout=10).stdout
            if self.kind == "rsa":
                return der
        return der_to_raw_rs(der)

    def token(self, payload, header=None):
        h = {"alg": self.alg, "typ": "JWT"} if header is None else header
        signing_input = b64url_json(h) + "." + b64url_json(payload)
        return signing_input + "." + b64url(self._sign_raw(signing_input.encode()))


def der_to_raw_rs(der):
    """ECDSA DER signature (SEQUENCE { INTEGER r, INTEGER s }) -> r||s, 32 bytes each."""
    if HAVE_CRYPTOGRAPHY:
        r, s = decode_dss_signature(der)
    else:
        def read_int(buf, i):
            assert buf[i] == 0x02
            n = buf[i + 1]
            return int.from_bytes(buf[i + 2:i + 2 + n], "big"), i + 2 + n
        assert der[0] == 0x30
        i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7f)
        r, i = read_int(der, i)
        s, _ = read_int(der, i)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


# ---- users files ---------------------------------------------------------------------------

_sodium = None


def _libsodium():
    global _sodium
    if _sodium is None:
        name = ctypes.util.find_library("sodium")
        if not name:
            pytest.skip("libsodium not found for hashing users-file passwords")
        lib = ctypes.CDLL(name)
        if lib.sodium_init() < 0:
            pytest.skip("sodium_init failed")
        lib.crypto_pwhash_str.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong,
                                          ctypes.c_ulonglong, ctypes.c_size_t]
        _sodium = lib
    return _sodium


def argon2id_hash(password, opslimit=1, memlimit=64 * 1024):
    """crypto_pwhash_str at a deliberately small cost (tests only): argon2id, v=19, p=1."""
    lib = _libsodium()
    out = ctypes.create_string_buffer(128)
    pw = password.encode()
    if lib.crypto_pwhash_str(out, pw, len(pw), opslimit, memlimit) != 0:
        raise RuntimeError("crypto_pwhash_str failed")
    h = out.value.decode()
    assert h.startswith("$argon2id$v=19$"), h
    return h


def users_line(name, password, tags="", vhosts="/"):
    return "%s:%s:%s:%s" % (name, argon2id_hash(password), tags, vhosts)


def write_atomic(path, text):
    """Replaces path in one rename, as heraldctl does, so a reload never sees half a file."""
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def write_users(path, lines):
    write_atomic(path, "# written by tests/integration/authutil.py\n" + "\n".join(lines) + "\n")


def heraldctl_path():
    """build/tools/heraldctl beside HERALD_BIN's build/core/herald, or None."""
    build = os.path.dirname(os.path.dirname(os.path.abspath(HERALD_BIN)))
    p = os.path.join(build, "tools", "heraldctl")
    return p if os.access(p, os.X_OK) else None


# ---- server control ------------------------------------------------------------------------

RELOAD_LINE = "INF auth: "


def reload(srv, timeout=5.0):
    """SIGHUP, then waits until the server logs the outcome: True when the new snapshot was
    published ("auth: N password users"), False when the reload failed (old one kept)."""
    before_ok = srv.log().count(RELOAD_LINE)
    before_fail = srv.log().count("reload failed")
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = srv.log()
        if text.count(RELOAD_LINE) > before_ok:
            # published to every shard; each takes it the next time it wakes (at once)
            time.sleep(0.1)
            return True
        if text.count("reload failed") > before_fail:
            return False
        time.sleep(0.01)
    raise AssertionError("no reload outcome logged within %.0fs after SIGHUP:\n%s"
                         % (timeout, srv.log()[-3000:]))


_LOG_RE = None


def refusal_gaps(srv, reason=None):
    """From the server log: for each refused login, in order, (connection, reason, seconds
    between the refusal being decided and its ERROR being written). The log's millisecond
    timestamps measure the server's own hold-back, whatever the load on the test machine."""
    import datetime
    import re
    global _LOG_RE
    if _LOG_RE is None:
        _LOG_RE = re.compile(r"^(\S+Z) \w+ (s\d+ c\d+) "
                             r"(login refused: (.*?)(?: \(user '.*' from \S+\))?|ERROR (.*))$")
    decided, out = {}, []
    for line in srv.log().splitlines():
        m = _LOG_RE.match(line)
        if not m:
            continue
        ts = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
        conn = m.group(2)
        if m.group(4) is not None:
            decided[conn] = (ts, m.group(4))
        elif conn in decided and m.group(5).startswith("Access refused"):
            t0, why = decided.pop(conn)
            if reason is None or why == reason:
                out.append((conn, why, ts - t0))
    return out


# ---- logins --------------------------------------------------------------------------------

class Conn(RawStomp):
    """RawStomp that may bind its local address first (src) before connecting."""

    def __init__(self, host, port, src=None, timeout=5.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if src:
            self.sock.bind((src, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.heartbeats = 0
        self.heartbeat_times = []
        self.version = "1.2"


def login(srv, user, passcode, host="/", timeout=5.0, src=None, dst=None, extra=(),
          track=None):
    """Opens a connection and sends CONNECT. Returns (conn, reply frame, seconds to the reply).
    src: local address to bind; dst: (host, port) to connect to (default srv.addr);
    track: a list the connection is appended to (closed by the `logins` fixture)."""
    h, p = dst or srv.addr
    r = Conn(h, p, src=src, timeout=timeout)
    if track is not None:
        track.append(r)
    t0 = time.monotonic()
    f = r.connect(login=user, passcode=passcode, host=host, timeout=timeout, extra=extra)
    return r, f, time.monotonic() - t0


@pytest.fixture
def logins():
    """login(srv, user, passcode, ...) whose connections are all closed at teardown."""
    made = []

    def make(srv, user, passcode, **kw):
        return login(srv, user, passcode, track=made, **kw)

    yield make
    for r in made:
        r.close()


def assert_refused(r, f, what=""):
    """A refused login: ERROR message:Access refused, then the connection closes."""
    assert f.cmd == "ERROR", "%s: expected a refusal, got %r" % (what, f)
    assert f.get("message") == "Access refused", "%s: %r" % (what, f)
    assert r.is_closed(2.0), "%s: connection still open after the refusal %r" % (what, f)


def assert_connected(f, user=None, what=""):
    assert f.cmd == "CONNECTED", "%s: expected CONNECTED, got %r" % (what, f)
    if user is not None:
        assert f.get("user-name") == user, "%s: %r" % (what, f)


def subscribe(r, dest, sid="s1", receipt="r-sub"):
    """SUBSCRIBE with a receipt; returns the reply frame (RECEIPT or ERROR)."""
    r.send_frame("SUBSCRIBE", [("destination", dest), ("id", sid), ("ack", "auto"),
                               ("receipt", receipt)])
    return r.recv_frame()


def send(r, dest, body, receipt="r-send"):
    """SEND with a receipt; returns the reply frame (RECEIPT or ERROR)."""
    r.send_frame("SEND", [("destination", dest), ("content-type", "text/plain"),
                          ("receipt", receipt)], body)
    return r.recv_frame()


def assert_receipt(f, rid, what=""):
    assert f.cmd == "RECEIPT" and f.get("receipt-id") == rid, "%s: %r" % (what, f)


def assert_denied(r, f, dest, action, what=""):
    """A refused SUBSCRIBE/SEND: ERROR naming the destination and the reason, then close."""
    assert f.cmd == "ERROR", "%s: expected ERROR for %s %s, got %r" % (what, action, dest, f)
    assert f.get("message") == "Access refused", "%s: %r" % (what, f)
    body = f.body.decode("utf-8", "replace")
    assert dest in body, "%s: ERROR body does not name %s: %r" % (what, dest, body)
    assert ("may not %s" % action) in body, "%s: ERROR body does not give the reason: %r" % (
        what, body)
    assert r.is_closed(2.0), "%s: connection still open after the denial %r" % (what, f)


__all__ = ["Closed", "Timeout"]
