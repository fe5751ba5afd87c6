"""
Admin endpoint credentials (issue 14 "Changing a running node", docs/operations.md "Admin
endpoint credentials"): an endpoint bound off loopback, or started with --admin-auth always
(what these tests use, since tests bind 127.0.0.1 only), answers only an administrator user
(tag `administrator`) who gives name and password by HTTP Basic: none or wrong -> 401 with
WWW-Authenticate, a user who is not an administrator -> 403; /health and /ready stay open
for load balancers. heraldctl passes credentials from --user/--password or
HERALD_ADMIN_USER/HERALD_ADMIN_PASSWORD. A loopback endpoint without the option stays open.
"""

import base64
import http.client
import os
import signal
import subprocess
import threading
import time

import pytest

from authutil import heraldctl_path, users_line, write_users
from conftest import LISTEN_RE

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive: the admin endpoint answers with every shard's state.
pytestmark = [pytest.mark.herald_only, pytest.mark.timeout(60), pytest.mark.shard_sensitive]

TIMEOUT = 10.0


def admin_addr(srv):
    """The admin endpoint's (host, port): logged just after the STOMP port the server's
    start waits for, so wait for it here too."""
    deadline = time.monotonic() + TIMEOUT
    while "admin" not in srv.ports:
        for proto, host, port in LISTEN_RE.findall(srv.log()):
            srv.ports[proto] = (host, int(port))
        assert time.monotonic() < deadline, "no admin port logged:\n" + srv.log()[-2000:]
        time.sleep(0.01)
    return srv.ports["admin"]


def request(srv, path, user=None, password=None, method="GET", headers=None):
    """(status, headers dict, body bytes) of one request to srv's admin endpoint."""
    host, port = admin_addr(srv)
    h = dict(headers or {})
    if user is not None:
        h["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % (user, password)).encode()).decode()
    c = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        c.request(method, path, headers=h)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


@pytest.fixture
def admin_server(herald_factory, tmp_path):
    """A server asking for credentials on loopback; ops is an administrator, jack is not."""
    path = str(tmp_path / "users")
    write_users(path, [users_line("ops", "opspw", "administrator"),
                       users_line("jack", "jackpw")])
    srv = herald_factory("--users-file", path, "--admin-auth", "always")
    srv.users_path = path
    return srv


PATHS = ["/api/queues", "/api/connections", "/cluster/status", "/metrics", "/", "/dashboard"]


@pytest.mark.parametrize("path", PATHS)
def test_no_credentials_get_401_with_a_basic_challenge(admin_server, path):
    status, headers, _ = request(admin_server, path)
    assert status == 401, path
    assert headers.get("WWW-Authenticate", "").startswith("Basic realm="), headers


@pytest.mark.parametrize("user,password", [("ops", "wrong"), ("nobody", "opspw"),
                                           ("ops", ""), ("", "")])
def test_wrong_credentials_get_401(admin_server, user, password):
    status, headers, _ = request(admin_server, "/api/queues", user, password)
    assert status == 401
    assert "WWW-Authenticate" in headers


def test_malformed_authorization_gets_401(admin_server):
    for value in ["Basic !!!", "Bearer abc", "Basic " + base64.b64encode(b"nocolon").decode()]:
        status, _, _ = request(admin_server, "/api/queues", headers={"Authorization": value})
        assert status == 401, value


def test_a_user_who_is_not_an_administrator_gets_403(admin_server):
    status, _, body = request(admin_server, "/api/queues", "jack", "jackpw")
    assert status == 403, body
    assert b"administrator" in body


@pytest.mark.parametrize("path", PATHS)
def test_an_administrator_gets_200(admin_server, path):
    status, _, body = request(admin_server, path, "ops", "opspw")
    assert status == 200, (path, body[:200])


def test_a_remembered_login_is_still_checked_against_the_password(admin_server):
    assert request(admin_server, "/api/queues", "ops", "opspw")[0] == 200
    assert request(admin_server, "/api/queues", "ops", "opspw")[0] == 200
    assert request(admin_server, "/api/queues", "ops", "opspw!")[0] == 401


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_health_and_ready_stay_open_for_load_balancers(admin_server, path):
    status, _, _ = request(admin_server, path)
    assert status == 200


def test_prometheus_scrape_needs_credentials_and_works_with_them(admin_server):
    assert request(admin_server, "/metrics")[0] == 401
    status, headers, body = request(admin_server, "/metrics", "ops", "opspw")
    assert status == 200 and b"herald_connections" in body
    assert headers["Content-Type"].startswith("text/plain")


def test_the_default_user_is_an_administrator_from_loopback(herald_factory):
    """guest (the built-in default user, tag administrator) may log in from loopback only,
    as for STOMP; the test client is on loopback."""
    srv = herald_factory("--admin-auth", "always")
    assert request(srv, "/api/queues", "guest", "guest")[0] == 200
    assert request(srv, "/api/queues")[0] == 401


def test_a_loopback_endpoint_without_the_option_stays_open(herald_factory):
    srv = herald_factory()
    assert request(srv, "/api/queues")[0] == 200
    assert "admin endpoint: open to loopback clients" in srv.log()


def test_a_cross_origin_post_is_refused(admin_server):
    """A page of another site could make the browser POST with remembered credentials."""
    status, _, _ = request(admin_server, "/api/drain", "ops", "opspw", method="POST",
                           headers={"Origin": "http://evil.example"})
    assert status == 403
    assert admin_server.alive()


def test_many_logins_at_once_are_refused_or_queued_and_health_still_answers(admin_server):
    """Each new password costs an argon2id check on the admin checker's thread, never on the
    cluster thread: a burst of guesses gets 401s (or 503 while the checker is full) and the
    endpoint keeps answering meanwhile."""
    results = []

    def guess(i):
        results.append(request(admin_server, "/api/queues", "ops", "guess-%d" % i)[0])

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    assert request(admin_server, "/health")[0] == 200
    for t in threads:
        t.join(TIMEOUT)
    assert len(results) == 24 and set(results) <= {401, 503}, results
    assert request(admin_server, "/api/queues", "ops", "opspw")[0] == 200


def test_sighup_reloads_administrators(admin_server):
    assert request(admin_server, "/api/queues", "ops", "opspw")[0] == 200
    write_users(admin_server.users_path, [users_line("kim", "kimpw", "administrator"),
                                          users_line("jack", "jackpw")])
    before = admin_server.log().count("config reloaded")
    admin_server.signal(signal.SIGHUP)
    deadline = time.monotonic() + TIMEOUT
    while admin_server.log().count("config reloaded") == before:
        assert time.monotonic() < deadline, admin_server.log()[-2000:]
        time.sleep(0.01)
    assert request(admin_server, "/api/queues", "kim", "kimpw")[0] == 200
    # ops was removed: the login remembered before the reload no longer counts
    assert request(admin_server, "/api/queues", "ops", "opspw")[0] == 401


# ---- heraldctl ---------------------------------------------------------------------------

def heraldctl(srv, *args, env=None):
    exe = heraldctl_path()
    if not exe:
        pytest.skip("heraldctl not built")
    host, port = admin_addr(srv)
    e = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_ADMIN_")}
    e.update(env or {})
    return subprocess.run([exe, "--node", "%s:%d" % (host, port)] + list(args), env=e,
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_heraldctl_without_credentials_says_how_to_give_them(admin_server):
    r = heraldctl(admin_server, "cluster", "status")
    assert r.returncode == 1
    assert "HERALD_ADMIN_USER" in r.stderr and "401" in r.stderr, r.stderr


def test_heraldctl_with_flags(admin_server):
    r = heraldctl(admin_server, "--user", "ops", "--password", "opspw", "cluster", "status",
                  "--json")
    assert r.returncode == 0, r.stderr
    assert '"members"' in r.stdout


def test_heraldctl_with_environment(admin_server):
    env = {"HERALD_ADMIN_USER": "ops", "HERALD_ADMIN_PASSWORD": "opspw"}
    for cmd in (["cluster", "status"], ["queues"], ["connections"]):
        r = heraldctl(admin_server, *cmd, env=env)
        assert r.returncode == 0, (cmd, r.stderr)


def test_heraldctl_as_a_user_who_is_not_an_administrator(admin_server):
    env = {"HERALD_ADMIN_USER": "jack", "HERALD_ADMIN_PASSWORD": "jackpw"}
    r = heraldctl(admin_server, "queues", env=env)
    assert r.returncode == 1
    assert "not an administrator" in r.stderr, r.stderr


def test_heraldctl_drain_with_credentials(admin_server):
    env = {"HERALD_ADMIN_USER": "ops", "HERALD_ADMIN_PASSWORD": "opspw"}
    admin_server.expect_exit = True
    r = heraldctl(admin_server, "drain", env=env)
    assert r.returncode == 0, r.stderr
    assert admin_server.wait(TIMEOUT) == 0
