"""
SIGHUP reload (docs/auth.md "Threads, cost and reload", issue 5): the users file, rules file
and JWT keys are re-read; a new user can log in, a removed one cannot, a changed password
replaces the old one at once (even a remembered one), open connections stay up and keep
working, an invalid file keeps the old snapshot, and new rules apply to open sessions from
their next SUBSCRIBE/SEND. Also `heraldctl user` writing the file the server reloads.
"""

import os
import subprocess

import pytest

from authutil import (assert_connected, assert_denied, assert_receipt, assert_refused,  # noqa
                      claims, heraldctl_path, hs256_token, logins,
                      reload, send, subscribe, users_line, write_atomic, write_users)

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive: SIGHUP must reach every shard's snapshot of users, rules and keys.
pytestmark = [pytest.mark.herald_only, pytest.mark.timeout(30), pytest.mark.shard_sensitive]


def _start(herald_factory, tmp_path, lines, *extra):
    path = str(tmp_path / "users")
    write_users(path, lines)
    return herald_factory("--users-file", path, "--user", "billing:billpw:service", *extra), path


def _roundtrip(srv, logins, r, queue, body, what):
    """The open session r, subscribed to queue, still receives what a service sends there."""
    svc, f, _ = logins(srv, "billing", "billpw")
    assert_connected(f, "billing")
    assert_receipt(send(svc, queue, body, "rt"), "rt")
    m = r.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == body.encode(), "%s: %r" % (what, m)


def test_sighup_adds_and_removes_users_and_keeps_connections(herald_factory, tmp_path, logins):
    jack_line, rose_line = users_line("jack", "jackpw"), users_line("rose", "rosepw")
    srv, path = _start(herald_factory, tmp_path, [jack_line, rose_line])
    jack, f, _ = logins(srv, "jack", "jackpw")
    assert_connected(f, "jack")
    assert_receipt(subscribe(jack, "/queue/jack", "s", "j1"), "j1")
    rose, f, _ = logins(srv, "rose", "rosepw")
    assert_connected(f, "rose")
    assert_receipt(subscribe(rose, "/queue/rose", "s", "r1"), "r1")
    r, f, _ = logins(srv, "kim", "kimpw")
    assert_refused(r, f, "kim before she is added")

    # remove jack, add kim
    write_users(path, [rose_line, users_line("kim", "kimpw")])
    assert reload(srv), srv.log()[-2000:]

    r, f, _ = logins(srv, "kim", "kimpw")
    assert_connected(f, "kim", "kim after the reload")
    r, f, _ = logins(srv, "jack", "jackpw")
    assert_refused(r, f, "jack after his removal (his password was remembered before)")
    r, f, _ = logins(srv, "rose", "rosepw")
    assert_connected(f, "rose", "rose, unchanged")

    # both open connections stayed up and keep working, the removed user's included
    _roundtrip(srv, logins, jack, "/queue/jack", "to removed jack", "jack's open session")
    _roundtrip(srv, logins, rose, "/queue/rose", "to rose", "rose's open session")
    assert_receipt(subscribe(jack, "/topic/x", "t", "j2"), "j2")


def test_sighup_changed_password_replaces_a_remembered_one(herald_factory, tmp_path, logins):
    srv, path = _start(herald_factory, tmp_path, [users_line("jack", "old-pw")])
    for _ in range(3):	# verified once, then remembered by the shard(s)
        r, f, _ = logins(srv, "jack", "old-pw")
        assert_connected(f, "jack")
    keep = r
    write_users(path, [users_line("jack", "new-pw")])
    assert reload(srv)
    for i in range(3):
        r, f, _ = logins(srv, "jack", "old-pw")
        assert_refused(r, f, "old password after the change (try %d)" % i)
    r, f, _ = logins(srv, "jack", "new-pw")
    assert_connected(f, "jack", "new password")
    assert_receipt(subscribe(keep, "/queue/jack", "s", "k1"), "k1")


def test_sighup_changed_tags_and_vhosts_apply_from_the_next_connect(herald_factory, tmp_path,
                                                                    logins):
    srv, path = _start(herald_factory, tmp_path, [users_line("jack", "pw")],
                       "--vhosts", "/,prod")
    old, f, _ = logins(srv, "jack", "pw")
    assert_connected(f, "jack")
    r, f, _ = logins(srv, "jack", "pw", host="prod")
    assert_refused(r, f, "prod before the change")
    write_users(path, [users_line("jack", "pw", tags="administrator", vhosts="/,prod")])
    assert reload(srv)
    new, f, _ = logins(srv, "jack", "pw", host="prod")
    assert_connected(f, "jack", "prod after the change")
    assert_receipt(subscribe(new, "/queue/rose", "s", "n1"), "n1")
    # the session opened before keeps the identity it logged in with
    assert_denied(old, subscribe(old, "/queue/rose", "s", "o1"), "/queue/rose", "subscribe")


@pytest.mark.parametrize("bad", ["jack:not-a-hash::/\n", "jack:%s::/\n" % ("$argon2id$" + "x"),
                                 None])
def test_sighup_with_an_invalid_users_file_keeps_the_old_users(herald_factory, tmp_path, logins,
                                                               bad):
    srv, path = _start(herald_factory, tmp_path, [users_line("jack", "jackpw")])
    r0, f, _ = logins(srv, "jack", "jackpw")
    assert_connected(f)
    if bad is None:
        os.unlink(path)		# the file went away
    else:
        write_atomic(path, users_line("kim", "kimpw") + "\n" + bad)
    assert reload(srv) is False, "reload of an invalid users file was accepted:\n" + srv.log()
    if bad is not None:
        assert "line 2" in srv.log(), "the reload error does not name the line:\n" + srv.log()
    r, f, _ = logins(srv, "jack", "jackpw")
    assert_connected(f, "jack", "old users kept")
    r, f, _ = logins(srv, "kim", "kimpw")
    assert_refused(r, f, "the bad file's other user was not loaded")
    assert_receipt(subscribe(r0, "/queue/jack", "s", "x"), "x")


def test_sighup_new_rules_apply_to_open_sessions_from_the_next_frame(herald_factory, tmp_path,
                                                                     logins):
    rules = tmp_path / "rules"
    rules.write_text("[vhost /]\nallow subscribe * /topic/a.#\nallow send tag:service #\n")
    srv = herald_factory("--rules-file", str(rules), "--user", "jack:jackpw",
                         "--user", "billing:billpw:service")
    jack, f, _ = logins(srv, "jack", "jackpw")
    assert_connected(f)
    assert_receipt(subscribe(jack, "/topic/a.x", "s1", "r1"), "r1")
    write_atomic(str(rules), "[vhost /]\nallow subscribe * /topic/b.#\n"
                             "allow send tag:service #\n")
    assert reload(srv)
    assert_receipt(subscribe(jack, "/topic/b.x", "s2", "r2"), "r2")	# newly allowed
    f = subscribe(jack, "/topic/a.y", "s3", "r3")		# no longer allowed
    assert_denied(jack, f, "/topic/a.y", "subscribe", "open session after the rules changed")


def test_sighup_with_an_invalid_rules_file_keeps_the_old_rules(herald_factory, tmp_path, logins):
    rules = tmp_path / "rules"
    rules.write_text("[vhost /]\nallow subscribe * /topic/a.#\n")
    srv = herald_factory("--rules-file", str(rules), "--user", "jack:jackpw")
    jack, f, _ = logins(srv, "jack", "jackpw")
    assert_connected(f)
    write_atomic(str(rules), "[vhost /]\nallow subscribe * /topic/b.#\nbogus line\n")
    assert reload(srv) is False
    assert "line 3" in srv.log(), srv.log()
    assert_receipt(subscribe(jack, "/topic/a.x", "s1", "r1"), "r1")
    assert_denied(jack, subscribe(jack, "/topic/b.x", "s2", "r2"), "/topic/b.x", "subscribe")


def test_sighup_reloads_the_jwt_secret(herald_factory, tmp_path, logins):
    old_secret = "first-secret-0123456789abcdef-0123456789"
    new_secret = "second-secret-0123456789abcdef-012345678"
    sf = tmp_path / "secret"
    sf.write_text(old_secret)
    srv = herald_factory("--jwt-hs256-secret-file", str(sf))
    open_sess, f, _ = logins(srv, None, hs256_token(old_secret, claims("alice")))
    assert_connected(f, "alice")
    write_atomic(str(sf), new_secret + "\n")
    assert reload(srv)
    r, f, _ = logins(srv, None, hs256_token(old_secret, claims("alice")))
    assert_refused(r, f, "token signed with the replaced secret")
    r, f, _ = logins(srv, None, hs256_token(new_secret, claims("alice")))
    assert_connected(f, "alice", "token signed with the new secret")
    assert_receipt(subscribe(open_sess, "/queue/alice", "s", "o1"), "o1")


def test_many_sighups_with_traffic_keep_sessions_and_server_up(herald_factory, tmp_path, logins):
    srv, path = _start(herald_factory, tmp_path, [users_line("jack", "jackpw")])
    jack, f, _ = logins(srv, "jack", "jackpw")
    assert_connected(f)
    assert_receipt(subscribe(jack, "/queue/jack", "s", "j1"), "j1")
    svc, f, _ = logins(srv, "billing", "billpw")
    assert_connected(f)
    import signal
    for i in range(30):
        srv.signal(signal.SIGHUP)
        assert_receipt(send(svc, "/queue/jack", "m%d" % i, "s%d" % i), "s%d" % i)
    got = [jack.recv_frame() for _ in range(30)]
    assert [m.body for m in got] == [b"m%d" % i for i in range(30)]
    assert reload(srv)
    r, f, _ = logins(srv, "jack", "jackpw")
    assert_connected(f, "jack")


# ---- heraldctl user -----------------------------------------------------------------------

def _ctl(*args, password=None):
    ctl = heraldctl_path()
    return subprocess.run([ctl, "user"] + list(args), capture_output=True, timeout=30,
                          input=(password + "\n").encode() if password is not None else None)


_CTL = heraldctl_path()


@pytest.mark.skipif(_CTL is None, reason="no heraldctl beside HERALD_BIN (build/tools/heraldctl)")
def test_heraldctl_user_add_remove_passwd_then_sighup(herald_factory, tmp_path, logins):
    path = str(tmp_path / "users")
    p = _ctl("add", "jack", "--password-stdin", "--file", path, password="jack pw 1")
    assert p.returncode == 0, p.stderr.decode()
    p = _ctl("add", "rose", "--password-stdin", "--tags", "service", "--vhosts", "/,prod",
             "--file", path, password="rose-pw")
    assert p.returncode == 0, p.stderr.decode()
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    srv = herald_factory("--users-file", path, "--vhosts", "/,prod")
    r, f, _ = logins(srv, "jack", "jack pw 1")
    assert_connected(f, "jack")
    r, f, _ = logins(srv, "rose", "rose-pw", host="prod")
    assert_connected(f, "rose")
    keep = r

    p = _ctl("add", "kim", "--password-stdin", "--file", path, password="kim-pw")
    assert p.returncode == 0, p.stderr.decode()
    p = _ctl("remove", "rose", "--file", path)
    assert p.returncode == 0, p.stderr.decode()
    p = _ctl("passwd", "jack", "--password-stdin", "--file", path, password="jack pw 2")
    assert p.returncode == 0, p.stderr.decode()
    listing = _ctl("list", "--file", path)
    assert listing.returncode == 0 and b"argon2id" not in listing.stdout, listing
    assert b"kim" in listing.stdout and b"rose" not in listing.stdout, listing.stdout

    assert reload(srv)
    r, f, _ = logins(srv, "kim", "kim-pw")
    assert_connected(f, "kim", "added by heraldctl")
    r, f, _ = logins(srv, "rose", "rose-pw", host="prod")
    assert_refused(r, f, "removed by heraldctl")
    r, f, _ = logins(srv, "jack", "jack pw 1")
    assert_refused(r, f, "jack's old password")
    r, f, _ = logins(srv, "jack", "jack pw 2")
    assert_connected(f, "jack", "jack's new password")
    assert_receipt(send(keep, "/queue/jack", "still up", "k1"), "k1")
