"""
Failed-login rate limiting (docs/auth.md "Failed logins", issue 5): repeated failures from one
address get their ERROR later and later, never faster; closing early does not reset the
count; after 10 failures the address gets no password check at all, while a remembered
password or a valid token still logs in and other addresses are unaffected. Plus the timing
rule: an unknown user takes as long to refuse as a wrong password.

The counters are per source address and per shard, and SO_REUSEPORT spreads connections over
the shards, so every server here runs with --shards 1 (later flags override conftest's).
Client source addresses are picked from 127.0.0.0/8 (all local on Linux) so that one test
can be several "addresses".
"""

import http.client
import json
import re
import time

import pytest

from authutil import (Conn, assert_connected, assert_refused, claims, hs256_token, logins,  # noqa
                      refusal_gaps, write_users)
from stompraw import Closed, Timeout

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test): neither
# variant: every server here runs with --shards 1 (below), so a 2-shard run only repeats it; the
# delayed ERROR and a close during it are backend_sensitive.
pytestmark = [pytest.mark.herald_only, pytest.mark.timeout(40)]

SECRET = "ratelimit-test-secret-0123456789abcdefghij"
ONE_SHARD = ("--shards", "1")
BASE_MS, FREE, BLOCK_AFTER, MAX_MS = 250, 3, 10, 10000


def expected_delay(n):
    """The ERROR delay of the address's n-th failure (1-based), per docs/auth.md."""
    if n <= FREE:
        return 0.0
    return min(BASE_MS * 2 ** (n - FREE - 1), MAX_MS) / 1000.0


def _refusals(srv, reason="wrong password"):
    return srv.log().count("login refused: " + reason)


def _wait_log(srv, pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.005)
    raise AssertionError("timed out waiting for %s:\n%s" % (what, srv.log()[-3000:]))


@pytest.mark.herald_args("--user", "jack:jackpw", *ONE_SHARD)
def test_failures_are_answered_later_and_later_never_faster(herald, logins):
    took = []
    for n in range(1, 8):
        r, f, t = logins(herald, "jack", "wrong-%d" % n, timeout=5.0)
        assert_refused(r, f, "failure %d" % n)
        took.append(t)
    gaps = [g for _, _, g in refusal_gaps(herald, "wrong password")]
    assert len(gaps) == 7, gaps
    report = ", ".join("#%d client %.3fs server %.3fs (want %.2f)"
                       % (i + 1, t, g, expected_delay(i + 1))
                       for i, (t, g) in enumerate(zip(took, gaps)))
    for i, (t, g) in enumerate(zip(took, gaps)):
        want = expected_delay(i + 1)
        # the server's hold-back, from its log: exact, whatever the machine's load
        if want == 0:
            assert g < 0.05, "failure %d held back: %s" % (i + 1, report)
        else:
            assert g >= want - 0.025, "failure %d answered early: %s" % (i + 1, report)
            assert g <= want + 0.5, "failure %d answered far too late: %s" % (i + 1, report)
        # and what the client saw: never earlier than the delay
        assert t >= want - 0.03, "failure %d reached the client early: %s" % (i + 1, report)
    # later and later, never faster
    assert all(b >= a - 0.025 for a, b in zip(gaps, gaps[1:])), report


@pytest.mark.herald_args("--user", "jack:jackpw", *ONE_SHARD)
def test_right_password_still_logs_in_below_the_block(herald, logins):
    for n in range(1, 6):
        r, f, _ = logins(herald, "jack", "wrong", timeout=5.0)
        assert_refused(r, f, "failure %d" % n)
    r, f, t = logins(herald, "jack", "jackpw")
    assert_connected(f, "jack")
    assert t < 1.0, "a right password after 5 failures took %.2fs" % t


@pytest.mark.herald_args("--user", "jack:jackpw", *ONE_SHARD)
@pytest.mark.backend_sensitive
def test_closing_before_the_error_does_not_reset_the_delay(herald, logins):
    for n in range(1, 4):
        r, f, _ = logins(herald, "jack", "wrong", timeout=5.0)
        assert_refused(r, f, "free failure %d" % n)
    # failures 4, 5, 6: counted as soon as they are decided; the client leaves early
    for n in range(4, 7):
        before = _refusals(herald)
        c = Conn(*herald.addr)
        c.send_frame("CONNECT", [("accept-version", "1.2"), ("host", "/"), ("login", "jack"),
                                 ("passcode", "wrong")])
        _wait_log(herald, lambda: _refusals(herald) > before, 5.0, "refusal %d logged" % n)
        with pytest.raises(Timeout):
            c.recv_frame(0.05)	# held back, as it should be
        c.reset()
    r, f, t = logins(herald, "jack", "wrong", timeout=6.0)
    assert_refused(r, f, "failure 7")
    assert t >= expected_delay(7) - 0.03, (
        "failure 7 answered after %.2fs: leaving early lowered the delay (want %.2fs)"
        % (t, expected_delay(7)))


def _parallel_failures(srv, n, src):
    """n wrong-password logins at once from src; returns when all n have been decided."""
    before = _refusals(srv)
    conns = []
    for i in range(n):
        c = Conn(*srv.addr, src=src)
        c.send_frame("CONNECT", [("accept-version", "1.2"), ("host", "/"), ("login", "jack"),
                                 ("passcode", "guess-%d" % i)])
        conns.append(c)
    _wait_log(srv, lambda: _refusals(srv) >= before + n, 10.0, "%d refusals logged" % n)
    return conns


def _no_answer_within(c, seconds):
    try:
        f = c.recv_frame(seconds)
    except Timeout:
        return None
    except Closed:
        return "closed"
    return f


def test_blocked_address_gets_no_check_but_remembered_password_and_token_work(
        herald_factory, tmp_path, logins):
    sf = tmp_path / "secret"
    sf.write_text(SECRET)
    srv = herald_factory("--user", "jack:jackpw", "--user", "rose:rosepw",
                         "--jwt-hs256-secret-file", str(sf), *ONE_SHARD)
    src = "127.0.0.1"
    # jack's password is verified (and remembered) before the attack
    r, f, _ = logins(srv, "jack", "jackpw", src=src)
    assert_connected(f, "jack")
    r.close()

    held = _parallel_failures(srv, BLOCK_AFTER, src)	# the address is now blocked

    # a wrong password, and rose's right but never-verified password: no check, refusal late
    blocked_before = _refusals(srv, "address blocked after repeated failures")
    probes = []
    for user, pw in (("jack", "another-guess"), ("rose", "rosepw")):
        c = Conn(*srv.addr, src=src)
        c.send_frame("CONNECT", [("accept-version", "1.2"), ("host", "/"), ("login", user),
                                 ("passcode", pw)])
        probes.append(c)
    _wait_log(srv, lambda: _refusals(srv, "address blocked after repeated failures")
              >= blocked_before + 2, 5.0, "two 'address blocked' refusals")

    # a remembered password still logs in, at once
    r, f, t = logins(srv, "jack", "jackpw", src=src)
    assert_connected(f, "jack", "remembered password from a blocked address")
    assert t < 2.0, "remembered password took %.2fs from a blocked address" % t
    # so does a valid token
    r, f, t = logins(srv, None, hs256_token(SECRET, claims("alice")), src=src)
    assert_connected(f, "alice", "token from a blocked address")
    assert t < 2.0, "token took %.2fs from a blocked address" % t
    # another address is not blocked: its first failure is answered at once
    r, f, t = logins(srv, "jack", "wrong", src="127.0.0.2")
    assert_refused(r, f, "first failure from 127.0.0.2")
    assert t < 1.0, "another address's first failure held back %.2fs" % t
    r, f, _ = logins(srv, "rose", "rosepw", src="127.0.0.3")
    assert_connected(f, "rose", "rose from another address")

    # the blocked ones are still waiting (10 s); none got CONNECTED
    for c, what in zip(probes, ("wrong password", "rose's right password")):
        got = _no_answer_within(c, 0.2)
        assert got is None, "blocked address, %s: answered early with %r" % (what, got)
    for c in probes + held:
        c.close()


ADMIN_RE = re.compile(r"listening proto=admin addr=([0-9.]+):(\d+)")


def _admin_auth(srv, pred, timeout=5.0):
    """The "auth" object of the admin endpoint's /cluster/status JSON once pred(it) holds
    (the cluster thread samples the shards' counters once a second). The admin port is
    read from the server's log line "listening proto=admin addr=A:P"."""
    deadline = time.monotonic() + timeout
    auth = None
    while time.monotonic() < deadline:
        m = ADMIN_RE.search(srv.log())
        if m:
            c = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=2.0)
            try:
                c.request("GET", "/cluster/status")
                r = c.getresponse()
                assert r.status == 200, r.status
                auth = json.loads(r.read())["auth"]
            finally:
                c.close()
            if pred(auth):
                return auth
        time.sleep(0.1)
    raise AssertionError("admin JSON's auth counters never got there: %r" % (auth,))


@pytest.mark.backend_sensitive
def test_at_most_8_checks_in_flight_the_rest_wait_not_refused(herald_factory, tmp_path):
    """20 right-password logins at once from one address all log in, while the server's own
    high-water mark (admin JSON "auth") shows exactly 8 password checks in flight for the
    address at most and the rest told to wait. Each login is another user: the same
    credentials twice would share one check (auth.c's in-flight list), never reaching 8."""
    from authutil import argon2id_hash
    n = 20
    users = ["burst%02d" % i for i in range(n)]
    hashed = argon2id_hash("burstpw", opslimit=2, memlimit=64 * 1024 * 1024)	# ~50 ms each
    path = str(tmp_path / "users")
    write_users(path, ["%s:%s::/" % (u, hashed) for u in users])
    srv = herald_factory("--users-file", path, *ONE_SHARD)
    conns = [Conn(*srv.addr, src="127.0.0.1", timeout=15.0) for _ in users]
    try:
        # all CONNECTs go out within a few ms; the checks take ~50 ms each, one at a time
        for c, user in zip(conns, users):
            c.send_frame("CONNECT", [("accept-version", "1.2"), ("host", "/"),
                                     ("login", user), ("passcode", "burstpw")])
        replies = []
        for c in conns:
            try:
                replies.append(c.recv_frame(15.0))
            except (Closed, Timeout) as e:	# reported below
                replies.append(repr(e))
    finally:
        for c in conns:
            c.close()
    assert all(getattr(f, "cmd", None) == "CONNECTED" for f in replies), replies

    auth = _admin_auth(srv, lambda a: a["slow_checks"] >= n)
    assert auth["slow_checks"] == n, auth
    assert auth["checks_in_flight_max"] <= 8, "the limit did not hold: %r" % auth
    assert auth["checks_in_flight_max"] == 8, "the checks never reached the limit: %r" % auth
    assert auth["check_waits"] > 0, "no login had to wait: %r" % auth


# ---- timing does not reveal names ----------------------------------------------------------

def _compare_refusal_times(srv, logins, known, unknown, net, rounds=5):
    """Alternates wrong-password logins for a known and an unknown name, each from a fresh
    source address (no rate-limit delay in the measurement), and compares the fastest of
    each: machine load only ever adds time, so the minimum shows the real cost."""
    times = {known: [], unknown: []}
    for i in range(rounds):
        for k, user in enumerate((known, unknown)):
            r, f, t = logins(srv, user, "wrong-password", src="127.%d.%d.%d" % (net, k, i + 1))
            assert_refused(r, f, user)
            times[user].append(t)
    mk, mu = min(times[known]), min(times[unknown])
    detail = "seconds to refuse: known user, wrong password %s; unknown user %s" % (
        ["%.4f" % t for t in times[known]], ["%.4f" % t for t in times[unknown]])
    slack = 0.02
    assert mu <= 4 * mk + slack and mk <= 4 * mu + slack, (
        "refusal time tells whether a name exists: " + detail)


def test_unknown_user_takes_as_long_as_a_wrong_password_users_file(herald_factory, tmp_path,
                                                                   logins):
    """Users-file users hashed at libsodium's interactive cost, as heraldctl writes them."""
    from authutil import argon2id_hash
    path = str(tmp_path / "users")
    write_users(path, ["jack:%s::/" % argon2id_hash("jackpw", opslimit=2,
                                                    memlimit=64 * 1024 * 1024)])
    srv = herald_factory("--users-file", path, *ONE_SHARD)
    _compare_refusal_times(srv, logins, "jack", "nobody", 10, rounds=3)


@pytest.mark.herald_args("--user", "jack:jackpw", *ONE_SHARD)
def test_unknown_user_takes_as_long_as_a_wrong_password_cli_user(herald, logins):
    _compare_refusal_times(herald, logins, "jack", "nobody", 20)


def test_bad_tokens_count_as_failures_too(herald_factory, tmp_path, logins):
    sf = tmp_path / "secret"
    sf.write_text(SECRET)
    srv = herald_factory("--jwt-hs256-secret-file", str(sf), *ONE_SHARD)
    bad = hs256_token("not-the-secret-but-32-bytes-long!!", claims("alice"))
    for n in range(1, 6):
        r, f, _ = logins(srv, None, bad, timeout=5.0)
        assert_refused(r, f, "bad token %d" % n)
    gaps = [g for _, _, g in refusal_gaps(srv, "token signature does not verify")]
    assert len(gaps) == 5, gaps
    for i, g in enumerate(gaps):
        want = expected_delay(i + 1)
        assert (g < 0.05) if want == 0 else (want - 0.025 <= g <= want + 0.5), (i + 1, gaps)
    # a valid token is not held back by the bad ones
    r, f, t = logins(srv, None, hs256_token(SECRET, claims("alice")))
    assert_connected(f, "alice")
    assert t < 1.0, t
