"""
tests/integration/conftest.py - starts the real `herald` binary for each test.

Environment:
  HERALD_BIN      path to the binary (default: <repo>/build/core/herald)
  HERALD_SHARDS   --shards value (default 1)
  STOMP_EXTERNAL  host:port of an already running STOMP server (e.g. a private RabbitMQ with
                  rabbitmq_stomp) to run the suite against instead; tests that need herald's
                  flags, signals or logs are skipped then.
  HERALD_TEST_TIMEOUT  per-test wall-clock cap in seconds (default 60)
  HERALD_IO       --io value for every server whose test does not choose one (CI runs the
                  suite once more with HERALD_IO=epoll); the server must log that backend

Servers run on free loopback ports (port 0, parsed from the log line
"listening proto=stomp addr=127.0.0.1:<port>"), with extra flags from the
@pytest.mark.herald_args(...) marker, under the launcher named by
@pytest.mark.herald_wrapper(path, ...) if any (tests/support/no_uring.c, say). A server is
stopped by PID (SIGTERM, then SIGKILL after a timeout); only processes started here are ever
signalled. Its stderr is attached to the report of a failing test. A server that died during
a test fails that test's teardown: no input may take the node down.

Shared servers: a module marked `pytestmark = pytest.mark.herald_shared` gives its tests one
`herald` per module (starting a server and the first argon2id login cost ~0.5 s each; a
shared server's shards remember the verified login). A test of such a module still gets a
fresh server of its own when it has @pytest.mark.herald_args(...) or
@pytest.mark.herald_fresh("why"): it sends signals, stops or kills the server, reads the
log for its own lines, tests limits/shutdown, makes failed logins (the failed-login delay
per source address is server state) or otherwise needs a pristine server. Tests on a
shared server must use destination names of their own (helpers.uid()). After each test the
shared server must still be alive, else that test fails (as with a fresh one) and the next
test starts a new one. Modules without the marker get a fresh server per test, as before.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
HERALD_BIN = os.environ.get("HERALD_BIN", os.path.join(REPO, "build", "core", "herald"))
HERALD_SHARDS = int(os.environ.get("HERALD_SHARDS", "1"))
STOMP_EXTERNAL = os.environ.get("STOMP_EXTERNAL", "")
TEST_TIMEOUT = float(os.environ.get("HERALD_TEST_TIMEOUT", "60"))
HERALD_IO = os.environ.get("HERALD_IO", "")

# Fresh servers of the non-auth modules log `guest` in from a users file whose hash has
# argon2id's minimum cost (m=8 KiB, t=1; docs/auth.md accepts m >= 8, t >= 1) instead of the
# built-in default user, which is hashed at start-up and verified at the interactive cost
# (64 MiB, 2 passes: ~0.15 s a server on an idle box, more under load). Tests that are about
# users, passwords or their cost (test_auth_*, or any auth flag) keep the real default user,
# and so do shared servers (they verify it once per shard).
CHEAP_GUEST = ("guest:$argon2id$v=19$m=8,t=1,p=1$t4EDY2nbszKafh7eueHTzA$"
               "iyylR5GBnXz0JJXQA5I4DL/RqQxEGzxRoN3u70qpHzw:administrator:*\n")
AUTH_FLAGS = ("--user", "--users-file", "--default-user", "--default-pass", "--rules-file",
              "--jwt", "--config")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
LISTEN_RE = re.compile(r"listening proto=(\w+) addr=([0-9.]+):(\d+)")


def pytest_configure(config):
    config.addinivalue_line("markers", "herald_args(*flags): extra command-line flags for herald")
    config.addinivalue_line("markers", "herald_only: needs herald itself (flags, signals, logs)")
    config.addinivalue_line(
        "markers", "herald_wrapper(*argv): run herald as argv + [herald, flags...] (a launcher)")
    config.addinivalue_line(
        "markers", "herald_shared: (module) tests share one `herald` per module (conftest.py)")
    config.addinivalue_line(
        "markers", "herald_fresh(reason): this test needs a `herald` of its own in a "
        "herald_shared module")
    config.addinivalue_line(
        "markers",
        "rabbitmq_differs(reason): herald follows the spec where RabbitMQ does not "
        "(RABBITMQ-REFERENCE.md); expected to fail against STOMP_EXTERNAL=rabbitmq")
    config.addinivalue_line("markers", "timeout(seconds): per-test wall-clock cap")
    # CTest runs the whole suite once (1 shard, default backend) and, on top, only the tests
    # whose outcome can depend on what a variant changes (tests/integration/CMakeLists.txt);
    # each module says why it is marked, or why not, next to its pytestmark
    config.addinivalue_line(
        "markers", "shard_sensitive: can behave differently on 2 shards than on 1 (deliveries "
        "between connections, queue owners, state every shard must see); run again with "
        "HERALD_SHARDS=2")
    config.addinivalue_line(
        "markers", "backend_sensitive: exercises the I/O backend's own work (accept, reads, "
        "writes, closes, resets, timers, wake-ups, large frames, WebSocket, TLS, slow "
        "consumers); run again with HERALD_IO=epoll")


def pytest_collection_modifyitems(config, items):
    if not STOMP_EXTERNAL:
        return
    for item in items:
        m = item.get_closest_marker("rabbitmq_differs")
        if m:
            item.add_marker(pytest.mark.xfail(reason="known RabbitMQ difference: %s"
                                              % (m.args[0] if m.args else ""), strict=False))


class Herald:
    """One herald process started by this test run."""

    def __init__(self, args, log_path, wrapper=()):
        self.args = list(args)
        self.wrapper = list(wrapper)
        self.log_path = log_path
        self.proc = None
        self.ports = {}
        self.host = "127.0.0.1"
        self.port = None
        self.expect_exit = False	# set by tests that stop the server themselves
        self.external = False
        self.shared = False
        self.test_log_start = 0		# a shared server's log offset where this test began

    @property
    def addr(self):
        return (self.host, self.port)

    def base_flags(self):
        """Flags every test server gets before its own (flags win over --config's file,
        so a test of the file itself overrides this: see test_config_reload.py)."""
        return ["--bind", "127.0.0.1", "--stomp-port", "0", "--ws-port", "0",
                "--gossip-port", "0", "--gossip-bind", "127.0.0.1", "--admin-port", "0",
                "--shards", str(HERALD_SHARDS), "--log-level", "info"]

    def start(self):
        if not os.access(HERALD_BIN, os.X_OK):
            pytest.fail("herald binary not found at %s (set HERALD_BIN)" % HERALD_BIN)
        io = ["--io", HERALD_IO] if HERALD_IO and "--io" not in self.args else []
        cmd = self.wrapper + [HERALD_BIN] + self.base_flags() + io + self.args
        self.cmd = cmd
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, close_fds=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for proto, host, port in LISTEN_RE.findall(self.log()):
                self.ports[proto] = (host, int(port))
            if "stomp" in self.ports:
                self.host, self.port = self.ports["stomp"]
                if io and "io backend: " + HERALD_IO not in self.log():
                    self.kill()
                    pytest.fail("herald did not log 'io backend: %s' (HERALD_IO)\n%s"
                                % (HERALD_IO, self.log()))
                return self
            if self.proc.poll() is not None:
                pytest.fail("herald exited with %s before listening\ncmd: %s\n%s"
                            % (self.proc.returncode, " ".join(cmd), self.log()))
            time.sleep(0.01)
        self.kill()
        pytest.fail("herald logged no 'listening proto=stomp' line within %.0fs\ncmd: %s\n%s"
                    % (START_TIMEOUT, " ".join(cmd), self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Exit status, or None if still running after timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT. Returns the exit status."""
        if self.proc is None:
            return None
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            if self.wait(STOP_TIMEOUT) is None:
                self.kill()
        self.log_file.close()
        return self.proc.returncode


class External:
    """A server we did not start (STOMP_EXTERNAL)."""
    external = True
    expect_exit = False

    def __init__(self, spec):
        host, _, port = spec.rpartition(":")
        self.host, self.port = host, int(port)
        self.ports = {"stomp": (self.host, self.port)}

    @property
    def addr(self):
        return (self.host, self.port)

    def log(self):
        return ""

    def alive(self):
        return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in getattr(item, "_heralds", []) + getattr(item, "_shared_heralds", []):
            if srv.external:
                continue
            text = srv.log()
            what = " ".join(getattr(srv, "cmd", [])[-6:])
            if srv.shared:
                # the lines logged while this test ran (the server served earlier tests)
                text = text[srv.test_log_start:]
                what = "shared by the module, since this test began: " + what
            if len(text) > 20000:
                text = "...\n" + text[-20000:]
            rep.sections.append(("herald stderr (%s)" % what, text))


@pytest.fixture
def herald_factory(request, tmp_path):
    """Starts herald processes with the given extra flags; stops them all at teardown."""
    started = []
    request.node._heralds = started

    def start(*args):
        if STOMP_EXTERNAL:
            if args or request.node.get_closest_marker("herald_only"):
                pytest.skip("needs herald itself (STOMP_EXTERNAL is set)")
            srv = External(STOMP_EXTERNAL)
            started.append(srv)
            return srv
        n = len(started)
        if _cheap_guest_ok(request.node, args):
            users = tmp_path / ("herald-%d.users" % n)
            users.write_text(CHEAP_GUEST)
            args = ("--default-user", "", "--users-file", str(users)) + tuple(args)
        wrapper = request.node.get_closest_marker("herald_wrapper")
        srv = Herald(args, str(tmp_path / ("herald-%d.log" % n)),
                     [str(a) for a in wrapper.args] if wrapper else ())
        started.append(srv)
        return srv.start()

    yield start

    died = []
    for srv in started:
        if srv.external:
            continue
        if not srv.alive() and not srv.expect_exit:
            died.append(srv)
        srv.stop()
    if died:
        srv = died[0]
        pytest.fail("herald died during the test (exit status %s)\n%s"
                    % (srv.proc.returncode, srv.log()[-8000:]), pytrace=False)


def _cheap_guest_ok(node, args):
    return (not node.module.__name__.startswith("test_auth")
            and not any(str(a).startswith(AUTH_FLAGS) for a in args))


@pytest.fixture
def herald_bin():
    """The binary itself, for command-line tests."""
    if STOMP_EXTERNAL:
        pytest.skip("needs herald itself (STOMP_EXTERNAL is set)")
    if not os.access(HERALD_BIN, os.X_OK):
        pytest.fail("herald binary not found at %s (set HERALD_BIN)" % HERALD_BIN)
    return HERALD_BIN


def _log_size(srv):
    try:
        return os.path.getsize(srv.log_path)
    except OSError:
        return 0


@pytest.fixture(scope="module")
def _shared_herald(request, tmp_path_factory):
    """Holder of the module's shared server (started on first use by `herald`)."""
    holder = {"srv": None, "n": 0, "last": None,
              "dir": tmp_path_factory.mktemp("herald-" + request.module.__name__)}
    yield holder
    if holder["srv"] is not None:
        holder["srv"].stop()


def _wants_fresh(node):
    return (STOMP_EXTERNAL or node.get_closest_marker("herald_shared") is None
            or node.get_closest_marker("herald_fresh") is not None
            or node.get_closest_marker("herald_wrapper") is not None
            or node.get_closest_marker("herald_args") is not None)


@pytest.fixture
def herald(request, herald_factory):
    """A running server; flags from @pytest.mark.herald_args(...). Shared by the module's
    tests when the module is marked herald_shared (see the top of this file)."""
    marker = request.node.get_closest_marker("herald_args")
    args = [str(a) for a in marker.args] if marker else []
    if _wants_fresh(request.node):
        yield herald_factory(*args)
        return
    holder = request.getfixturevalue("_shared_herald")
    srv = holder["srv"]
    if srv is not None and not srv.alive():
        # It passed the check after the previous test but died later (while that test's
        # connections closed, say): still a crash, reported here rather than lost.
        holder["srv"] = None
        status = srv.stop()
        pytest.fail("herald (shared by the module) died after %s had passed (exit status %s)"
                    "\n%s" % (holder["last"], status, srv.log()[-8000:]), pytrace=False)
    if srv is None:
        holder["n"] += 1
        srv = Herald([], str(holder["dir"] / ("herald-%d.log" % holder["n"])))
        srv.shared = True
        holder["srv"] = srv
        srv.start()
    srv.expect_exit = False
    srv.test_log_start = _log_size(srv)
    request.node._shared_heralds = [srv]
    holder["last"] = request.node.nodeid
    yield srv
    # Teardown runs after the test's own clients were closed (they were set up later).
    if not srv.alive():
        holder["srv"] = None
        status = srv.stop()
        if not srv.expect_exit:
            pytest.fail("herald (shared by the module) died during the test (exit status %s)"
                        "\n%s" % (status, srv.log()[srv.test_log_start:][-8000:]),
                        pytrace=False)


@pytest.fixture
def clients(request):
    """Factory for stomp.py clients; every client is closed at teardown."""
    from helpers import Client
    made = []

    def make(srv, **kw):
        c = Client(srv.addr, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.kill()


@pytest.fixture
def raws(request):
    """Factory for raw-socket clients; every socket is closed at teardown."""
    from stompraw import RawStomp
    made = []

    def make(srv, **kw):
        r = RawStomp(srv.host, srv.port, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


class _TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _wall_clock_cap(request):
    """Bounds every test: SIGALRM interrupts the main thread after the cap."""
    marker = request.node.get_closest_marker("timeout")
    cap = float(marker.args[0]) if marker else TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise _TestTimeout("test exceeded its %.0fs wall-clock cap" % cap)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, cap)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
