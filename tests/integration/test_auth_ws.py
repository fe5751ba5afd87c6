"""
Authentication and authorization over STOMP-over-WebSocket (issue 5 "works over WebSocket"):
the seed's browser page with per-user logins (jack reads /queue/jack, is refused
/queue/rose with an ERROR and a closing handshake), the page unchanged with
`--user admin:admin:administrator`, browser token logins with scope claims, and a token's
expiry closing the WebSocket with an ERROR.
"""

import json
import time

import pytest

from authutil import claims, hs256_token
from wsclient import RawWS, WSStomp, ws_addr, ws_url

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# backend_sensitive: WebSocket connections and their closing handshake, one login each.
pytestmark = [pytest.mark.herald_only, pytest.mark.backend_sensitive]

SECRET = "websocket-test-secret-0123456789abcdefghij"


@pytest.fixture
def browser(herald_factory, tmp_path):
    """start(*flags) -> (server, open) where open() gives a WSStomp on its /ws; every
    connection is closed at teardown. The HS256 secret is always configured."""
    made = []
    sf = tmp_path / "secret"
    sf.write_text(SECRET)

    def start(*flags):
        srv = herald_factory("--jwt-hs256-secret-file", str(sf), *flags)
        addr = ws_addr(srv)

        def open_(raw=False):
            c = RawWS(addr) if raw else WSStomp(ws_url(addr))
            made.append(c)
            return c
        return srv, open_

    yield start
    for c in made:
        try:
            c.close()
        except Exception:
            pass


def _connect(c, login, passcode, **kw):
    f = c.connect(login=login, passcode=passcode, host="/", **kw)
    assert f.cmd == "CONNECTED", "%s: %r" % (login, f)
    return f


def _sub(c, dest, sid="s", rid="r"):
    c.send_frame("SUBSCRIBE", [("id", sid), ("destination", dest), ("ack", "auto"),
                               ("receipt", rid)])
    return c.recv_frame()


def _denied_then_ws_close(r, dest, action):
    frames, closed = r.recv_until_closed(5)
    errors = [f for f in frames if f.cmd == "ERROR"]
    assert errors and frames[-1].cmd == "ERROR", frames
    err = errors[0]
    assert err.get("message") == "Access refused", err
    assert dest.encode() in err.body and ("may not %s" % action).encode() in err.body, err
    assert closed, "still open after the denial"
    assert r.close_frame is not None, "TCP closed without a WebSocket close frame"
    return err


def test_seed_page_with_per_user_logins(browser):
    srv, open_ = browser("--user", "jack:jackpw", "--user", "rose:rosepw")
    jack = open_()
    _connect(jack, "jack", "jackpw", version="1.1,1.0", heart_beat=(10000, 10000))
    f = _sub(jack, "/queue/jack")
    assert f.cmd == "RECEIPT", f
    body = json.dumps({"username": "jack", "message": "hello,world!"})
    jack.send_frame("SEND", [("destination", "/queue/jack"), ("content-type", "text/plain")],
                    body)
    m = jack.recv_frame()
    assert m.cmd == "MESSAGE" and json.loads(m.body) == json.loads(body), m


def test_jack_over_websocket_cannot_subscribe_to_roses_queue(browser):
    srv, open_ = browser("--user", "jack:jackpw", "--user", "rose:rosepw")
    r = open_(raw=True)
    f = r.connect(login="jack", passcode="jackpw", host="/")
    assert f.cmd == "CONNECTED", f
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", "/queue/rose"), ("ack", "auto")])
    _denied_then_ws_close(r, "/queue/rose", "subscribe")


def test_seed_page_unchanged_with_the_shared_admin_login(browser):
    srv, open_ = browser("--user", "admin:admin:administrator")
    for name in ("jack", "rose"):
        c = open_()
        _connect(c, "admin", "admin", version="1.1,1.0")
        f = _sub(c, "/queue/" + name)
        assert f.cmd == "RECEIPT", "the shared admin reading /queue/%s: %r" % (name, f)


def test_browser_token_login_with_scope_claims(browser):
    srv, open_ = browser()
    tok = hs256_token(SECRET, claims("jack", herald_sub=["/queue/{user}", "/topic/news.#"],
                                     herald_send=["/queue/{user}"]))
    c = open_()
    f = c.connect(passcode=tok, login=None, host="/")	# stompjs: login may be left out
    assert f.cmd == "CONNECTED" and f.get("user-name") == "jack", f
    assert _sub(c, "/queue/jack", "a", "r1").cmd == "RECEIPT"
    assert _sub(c, "/topic/news.uk", "b", "r2").cmd == "RECEIPT"
    r = open_(raw=True)
    assert r.connect(login="", passcode=tok, host="/").cmd == "CONNECTED"
    r.send_frame("SUBSCRIBE", [("id", "s"), ("destination", "/queue/rose"), ("ack", "auto")])
    _denied_then_ws_close(r, "/queue/rose", "subscribe")


def test_bad_token_over_websocket_is_refused(browser):
    srv, open_ = browser()
    for what, tok in (("expired", hs256_token(SECRET, claims("jack", ttl=-5))),
                      ("other secret", hs256_token("x" * 40, claims("jack")))):
        c = open_()
        f = c.connect(passcode=tok, login=None, host="/")
        assert f.cmd == "ERROR" and f.get("message") == "Access refused", (what, f)
        frames, closed = c.recv_until_closed(3)
        assert closed and not frames, (what, frames)


@pytest.mark.timeout(20)
def test_token_expiry_closes_the_websocket_with_an_error(browser):
    srv, open_ = browser()
    exp = int(time.time()) + 2
    r = open_(raw=True)
    f = r.connect(login=None, passcode=hs256_token(SECRET, {"sub": "jack", "exp": exp}),
                  host="/")
    assert f.cmd == "CONNECTED", f
    frames, closed = r.recv_until_closed(exp - time.time() + 3)
    now = time.time()
    errors = [x for x in frames if x.cmd == "ERROR"]
    assert errors and "expired" in errors[0].get("message", "").lower(), frames
    assert closed and r.close_frame is not None, "no closing handshake after the expiry ERROR"
    assert exp - 0.1 <= now <= exp + 1.5, "closed at exp%+.2fs" % (now - exp)
