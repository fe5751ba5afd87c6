"""
Virtual hosts (docs/auth.md "Virtual hosts", issue 5): separate namespaces for queues and
topics, an unknown or not-allowed vhost refused at CONNECT after the credentials (so it tells
a stranger nothing and does not count as a failed login), the users file's vhost field.
"""

import pytest

from authutil import (assert_connected, assert_receipt, assert_refused, logins,  # noqa: F401
                      send, subscribe, users_line, write_users)

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive: vhost namespaces of queues and topics, routed across shards.
pytestmark = [pytest.mark.herald_only, pytest.mark.shard_sensitive]

VH = ("--vhosts", "/,prod", "--user", "jack:jackpw", "--user", "billing:billpw:service",
      "--user", "ops:opspw:administrator")
PW = {"jack": "jackpw", "billing": "billpw", "ops": "opspw", "guest": "guest"}


@pytest.fixture
def as_user(logins):
    def connect(srv, user, host="/"):
        r, f, _ = logins(srv, user, PW[user], host=host)
        assert_connected(f, user, "login %s to %s" % (user, host))
        return r
    return connect


def _no_frames(r, seconds=0.3):
    frames = r.pump(seconds)
    assert not frames, "unexpected frames: %r" % frames


@pytest.mark.herald_args(*VH)
def test_same_queue_name_in_two_vhosts_is_two_queues(herald, as_user):
    root = as_user(herald, "jack", "/")
    prod = as_user(herald, "jack", "prod")
    assert_receipt(subscribe(root, "/queue/jack", "s", "a"), "a")
    assert_receipt(subscribe(prod, "/queue/jack", "s", "b"), "b")
    svc_prod = as_user(herald, "billing", "prod")
    svc_root = as_user(herald, "billing", "/")
    assert_receipt(send(svc_prod, "/queue/jack", "in prod", "c"), "c")
    assert_receipt(send(svc_root, "/queue/jack", "in root", "d"), "d")
    mp, mr = prod.recv_frame(), root.recv_frame()
    assert mp.cmd == "MESSAGE" and mp.body == b"in prod", mp
    assert mr.cmd == "MESSAGE" and mr.body == b"in root", mr
    _no_frames(prod)
    _no_frames(root)


@pytest.mark.herald_args(*VH)
def test_held_queue_message_stays_in_its_vhost(herald, as_user):
    ops_root = as_user(herald, "ops", "/")
    assert_receipt(send(ops_root, "/queue/a", "held in /", "s1"), "s1")
    ops_prod = as_user(herald, "ops", "prod")
    assert_receipt(subscribe(ops_prod, "/queue/a", "s", "s2"), "s2")
    _no_frames(ops_prod)
    ops_root2 = as_user(herald, "ops", "/")
    assert_receipt(subscribe(ops_root2, "/queue/a", "s", "s3"), "s3")
    m = ops_root2.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"held in /", m


@pytest.mark.herald_args(*VH)
def test_topics_are_per_vhost(herald, as_user):
    root = as_user(herald, "jack", "/")
    prod = as_user(herald, "jack", "prod")
    assert_receipt(subscribe(root, "/topic/news.#", "s", "a"), "a")
    assert_receipt(subscribe(prod, "/topic/news.#", "s", "b"), "b")
    pub = as_user(herald, "billing", "prod")
    assert_receipt(send(pub, "/topic/news.uk", "prod news", "c"), "c")
    m = prod.recv_frame()
    assert m.cmd == "MESSAGE" and m.body == b"prod news", m
    _no_frames(root)


@pytest.mark.herald_args(*VH)
def test_unknown_vhost_is_refused_at_connect(herald, logins):
    for user in ("jack", "ops", "guest"):
        r, f, _ = logins(herald, user, PW[user], host="staging")
        assert_refused(r, f, "%s to vhost staging" % user)
        assert f.body.decode() == ("Virtual host 'staging' does not exist or access to it is "
                                   "denied"), f


@pytest.mark.herald_args(*VH)
def test_wrong_password_to_unknown_vhost_says_only_login_failed(herald, logins):
    """Credentials are checked first: a stranger learns nothing about which vhosts exist."""
    r1, f1, _ = logins(herald, "jack", "wrong", host="staging")
    r2, f2, _ = logins(herald, "jack", "wrong", host="prod")
    assert_refused(r1, f1)
    assert_refused(r2, f2)
    assert b"Virtual host" not in f1.body and f1.body == f2.body, (f1, f2)


@pytest.mark.herald_args("--vhosts", "/,prod,staging")
def test_default_user_may_use_every_vhost(herald, logins):
    for vh in ("/", "prod", "staging"):
        r, f, _ = logins(herald, "guest", "guest", host=vh)
        assert_connected(f, "guest", vh)


def test_users_file_vhost_field(herald_factory, tmp_path, logins):
    path = str(tmp_path / "users")
    write_users(path, [users_line("onlyprod", "pw1", vhosts="prod"),
                       users_line("both", "pw2", vhosts="/,prod"),
                       users_line("every", "pw3", vhosts="*"),
                       users_line("dflt", "pw4", vhosts="")])
    srv = herald_factory("--vhosts", "/,prod,staging", "--users-file", path)
    cases = [("onlyprod", "pw1", "prod", True), ("onlyprod", "pw1", "/", False),
             ("both", "pw2", "/", True), ("both", "pw2", "prod", True),
             ("both", "pw2", "staging", False),
             ("every", "pw3", "/", True), ("every", "pw3", "staging", True),
             ("every", "pw3", "nope", False),
             ("dflt", "pw4", "/", True), ("dflt", "pw4", "prod", False)]
    for user, pw, vh, ok in cases:
        r, f, _ = logins(srv, user, pw, host=vh)
        if ok:
            assert_connected(f, user, "%s to %s" % (user, vh))
        else:
            assert_refused(r, f, "%s to %s" % (user, vh))
            assert ("Virtual host '%s'" % vh).encode() in f.body, f


@pytest.mark.timeout(30)
@pytest.mark.herald_args(*(VH + ("--shards", "1")))	# failure counters are per shard
def test_vhost_refusals_do_not_count_as_failed_logins(herald, logins):
    for i in range(6):
        r, f, t = logins(herald, "jack", "jackpw", host="nope")
        assert_refused(r, f, "vhost refusal %d" % i)
        assert t < 1.0, "vhost refusal %d took %.2fs" % (i, t)
    # a wrong password now is the address's first failure: answered at once
    r, f, t = logins(herald, "jack", "wrong")
    assert_refused(r, f)
    # (had the 6 refusals counted, this would be failure 7: held back 2 s)
    assert t < 1.0, "first real failure held back %.2fs after vhost refusals" % t


@pytest.mark.herald_args(*VH)
def test_wildcard_topic_subscription_does_not_cross_vhosts(herald, as_user):
    pub_prod = as_user(herald, "billing", "prod")
    pub_root = as_user(herald, "billing", "/")
    for i, pattern in enumerate(("/topic/#", "/topic/*", "/topic/x.#")):
        root = as_user(herald, "ops", "/")
        prod = as_user(herald, "ops", "prod")
        assert_receipt(subscribe(root, pattern, "s", "a"), "a")
        assert_receipt(subscribe(prod, pattern, "s", "b"), "b")
        assert_receipt(send(pub_prod, "/topic/x", "from prod", "c%d" % i), "c%d" % i)
        assert_receipt(send(pub_root, "/topic/x", "from root", "d%d" % i), "d%d" % i)
        mp, mr = prod.recv_frame(), root.recv_frame()
        assert mp.body == b"from prod" and mr.body == b"from root", (pattern, mp, mr)
        _no_frames(prod)
        _no_frames(root)
        root.close()
        prod.close()
