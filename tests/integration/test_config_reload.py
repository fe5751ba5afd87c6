"""
SIGHUP reloads the config file (issue 14 "Changing a running node", docs/operations.md
"Reloading the configuration"): limits and the log level change at run time without dropping
a connection; settings that cannot (shards, ports, cluster name...) are logged, one line
each, as needing a restart; a file that does not parse leaves the running configuration
exactly as it was.

These servers take everything from --config FILE: flags win over the file, so the usual
test flags (conftest.Herald.base_flags) would hide what the file says.
"""

import os
import signal
import time

import pytest

from conftest import CHEAP_GUEST, HERALD_SHARDS, Herald
from helpers import Client, uid

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test):
# shard_sensitive: new limits and the log level must reach every shard.
pytestmark = [pytest.mark.herald_only, pytest.mark.timeout(40), pytest.mark.shard_sensitive]

RELOADED = "config reloaded"
FAILED = "reload failed"


class ConfigHerald(Herald):
    """A herald whose every setting but --io (HERALD_IO) comes from its config file."""

    def __init__(self, config_path, log_path):
        super().__init__([], log_path)
        self.config_path = config_path

    def base_flags(self):
        return ["--config", self.config_path]


def write_config(path, **settings):
    """Writes the INI file atomically (rename), as an operator's editor or tool would."""
    base = {
        "bind": "127.0.0.1", "stomp-port": "0", "ws-port": "0", "gossip-port": "0",
        "gossip-bind": "127.0.0.1", "admin-port": "0", "shards": str(HERALD_SHARDS),
        "log-level": "info",
        "default-user": "", "users-file": os.path.join(os.path.dirname(path), "users"),
    }
    base.update({k.replace("_", "-"): str(v) for k, v in settings.items()})
    text = "".join("%s = %s\n" % kv for kv in base.items())
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@pytest.fixture
def config_server(tmp_path):
    """start(**settings) -> (server, config path); stops it (by PID) at teardown."""
    started = []

    def start(**settings):
        (tmp_path / "users").write_text(CHEAP_GUEST)
        path = str(tmp_path / "herald.ini")
        write_config(path, **settings)
        srv = ConfigHerald(path, str(tmp_path / ("herald-%d.log" % len(started))))
        started.append(srv)
        return srv.start(), path

    yield start
    for srv in started:
        alive = srv.alive()
        srv.stop()
        assert alive, "herald died during the test:\n" + srv.log()[-4000:]


def sighup(srv, timeout=5.0):
    """SIGHUP, then waits for the outcome line: True (reloaded) or False (kept the old).
    The outcome is logged before a new log level applies, so it shows at info too."""
    text = srv.log()
    ok, failed = text.count(RELOADED), text.count(FAILED)
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = srv.log()
        if text.count(RELOADED) > ok:
            time.sleep(0.1)	# every shard takes the new limits at its next loop turn
            return True
        if text.count(FAILED) > failed:
            return False
        time.sleep(0.01)
    raise AssertionError("no reload outcome logged within %.0fs:\n%s" % (timeout,
                                                                         srv.log()[-3000:]))


def subscriber(srv):
    """A connection subscribed to a queue of its own: (client, queue)."""
    q = "/queue/" + uid()
    c = Client(srv.addr)
    c.subscribe(q)
    return c, q


def roundtrip(c, q, size, what):
    """c (subscribed to q) sends a body of `size` bytes with a receipt and gets it back."""
    before = len(c.messages)
    c.send(q, "x" * size, receipt=True)
    got = c.wait_messages(before + 1)[before]
    assert len(got.body) == size, what


def test_sighup_applies_a_smaller_body_limit_to_an_open_connection(config_server):
    srv, path = config_server(max_body_bytes=1000)
    c, q = subscriber(srv)
    roundtrip(c, q, 600, "600 bytes under the start limit of 1000")

    write_config(path, max_body_bytes=500)
    assert sighup(srv), srv.log()[-3000:]
    assert "config reload: max-body-bytes changed from 1000 to 500" in srv.log()

    # the same connection stays up and works under the new limit...
    roundtrip(c, q, 400, "400 bytes on the open connection after the reload")
    # ...and a body the old limit took is now refused
    c.send(q, "y" * 600)
    err = c.wait_error()
    assert "body" in (err.headers.get("message", "") + str(err.body)).lower(), err.headers
    # a new connection gets the new limit as well
    n = Client(srv.addr)
    n.send(q, "z" * 600)
    n.wait_error()


def test_sighup_applies_a_larger_body_limit_to_an_open_connection(config_server):
    srv, path = config_server(max_body_bytes=500)
    c, q = subscriber(srv)
    roundtrip(c, q, 400, "under the start limit")
    write_config(path, max_body_bytes=100000, max_header_line=100000)
    assert sighup(srv)
    roundtrip(c, q, 50000, "50,000 bytes on the open connection once the limit is 100,000")
    # a header line longer than the old limit (10 KiB), escaped so the shard's parse
    # scratch must have grown with max-header-line
    c.send(q, "h", receipt=True, headers={"long": "a:b" * 6000})
    got = c.wait_messages(3)[2]
    assert got.headers.get("long") == "a:b" * 6000


def test_sighup_changes_the_log_level(config_server):
    srv, path = config_server()
    c = Client(srv.addr)
    write_config(path, log_level="warn")
    assert sighup(srv)
    assert "config reload: log-level changed from info to warn" in srv.log()

    # at warn, a reload's info lines are gone; its restart warnings still show
    mark = len(srv.log())
    write_config(path, log_level="warn", max_body_bytes=777, shards=HERALD_SHARDS + 1)
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "shards changed" not in srv.log()[mark:] and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    after = srv.log()[mark:]
    assert ("WRN config reload: shards changed from %d to %d: needs a restart"
            % (HERALD_SHARDS, HERALD_SHARDS + 1)) in after, after
    assert " INF " not in after, after
    c.send("/queue/" + uid(), "x" * 700, receipt=True)	# the limit did change: 777


def test_sighup_logs_each_setting_that_needs_a_restart(config_server):
    srv, path = config_server()
    c, q = subscriber(srv)
    write_config(path, shards=HERALD_SHARDS + 1, ws_path="/stomp", cluster_name="other",
                 max_subscriptions=10)
    assert sighup(srv)
    text = srv.log()
    for key in ("shards", "ws-path", "cluster-name"):
        lines = [ln for ln in text.splitlines() if "config reload: %s changed" % key in ln]
        assert len(lines) == 1, (key, lines)
        assert "needs a restart" in lines[0] and " WRN " in lines[0], lines[0]
    assert "config reload: max-subscriptions changed from 1024 to 10" in text
    assert "needs a restart" not in [ln for ln in text.splitlines()
                                     if "max-subscriptions" in ln][0]
    roundtrip(c, q, 10, "the open connection after the reload")
    # asked again, it says so again: the running value is still the old one
    assert sighup(srv)
    assert srv.log().count("config reload: shards changed") == 2


@pytest.mark.parametrize("broken", ["max-body-bytes = 10\nthis is not a setting\n",
                                    "max-body-bytes = ten\n",
                                    "no-such-setting = 1\nmax-body-bytes = 10\n"])
def test_a_file_that_does_not_parse_keeps_the_running_configuration(config_server, broken):
    srv, path = config_server(max_body_bytes=1000)
    c, q = subscriber(srv)
    with open(path, "a") as f:
        f.write(broken)
    assert not sighup(srv), "a broken file was applied:\n" + srv.log()[-3000:]
    assert "config reload failed" in srv.log()
    assert "max-body-bytes changed" not in srv.log()
    roundtrip(c, q, 900, "the old limit (1000) still holds on the open connection")
    Client(srv.addr).send("/queue/" + uid(), "n" * 900, receipt=True)	# and a new one
    # once the file is fixed, the next SIGHUP applies it
    write_config(path, max_body_bytes=100)
    assert sighup(srv)
    roundtrip(c, q, 50, "under the new limit")


def test_users_file_is_still_reloaded(config_server, tmp_path):
    """The users reload of docs/auth.md goes through the same SIGHUP."""
    srv, path = config_server()
    c = Client(srv.addr)
    from authutil import users_line
    (tmp_path / "users").write_text(CHEAP_GUEST + users_line("kim", "kimpw") + "\n")
    assert sighup(srv)
    k = Client(srv.addr, login="kim", passcode="kimpw")
    k.send("/queue/kim", "hi", receipt=True)	# the default rules: her own queue
    c.send("/queue/" + uid(), "still here", receipt=True)
