"""
The built-in default user is accepted only from loopback (docs/auth.md "Built-in default
user", issue 5 "Defaults": RabbitMQ's guest rule).

A server bound to 127.0.0.1 only ever sees loopback peers, so the non-loopback cases use
  - a network namespace joined to this one by a veth pair (needs root and `ip netns`; the
    namespace and the link are created here and removed at teardown), and
  - this host's own non-loopback address (a connection from this host to it carries that
    address as its source, which is not loopback), when the host has one.
Each is skipped, with the reason, where it cannot run.
"""

import json
import os
import shutil
import subprocess

import pytest

from authutil import assert_connected, assert_refused, logins, users_line, write_users  # noqa

# CI variants (tests/integration/CMakeLists.txt; the full 1-shard run has every test): neither
# variant: the peer address seen at accept, one connection at a time: neither shard- nor backend-
# specific.
pytestmark = pytest.mark.herald_only

HERE = os.path.dirname(os.path.abspath(__file__))

# Runs inside the namespace: one CONNECT, prints the reply (or "closed") as JSON.
CLIENT = r"""
import json, socket, sys
host, port, login, passcode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((host, port), timeout=5)
s.sendall(("CONNECT\naccept-version:1.2\nhost:/\nlogin:%s\npasscode:%s\n\n\0"
           % (login, passcode)).encode())
buf = b""
while b"\0" not in buf:
    d = s.recv(65536)
    if not d:
        break
    buf += d
if b"\0" not in buf:
    print(json.dumps({"cmd": "closed"}))
    sys.exit(0)
head, _, rest = buf.partition(b"\n\n")
lines = head.decode().split("\n")
hdrs = dict(l.split(":", 1) for l in lines[1:] if ":" in l)
body = rest.split(b"\0", 1)[0].decode()
closed = False
if lines[0] == "ERROR":
    try:
        s.settimeout(2)
        closed = s.recv(1) == b""
    except OSError:
        closed = True
print(json.dumps({"cmd": lines[0], "headers": hdrs, "body": body, "closed": closed,
                  "src": s.getsockname()[0]}))
"""


def _run(cmd, check=True):
    return subprocess.run(cmd, capture_output=True, timeout=15, check=check)


class Netns:
    """A namespace with a veth pair: this side HOST_IP, the namespace side PEER_IP."""

    def __init__(self):
        tag = os.getpid() % 100000
        self.name = "herald-authit-%d" % os.getpid()
        self.veth_out, self.veth_in = "hat%da" % tag, "hat%db" % tag
        used = _run(["ip", "-4", "-o", "addr", "show"]).stdout.decode()
        for third in [tag % 250] + list(range(250)):
            net = "10.254.%d." % third
            if net not in used:
                break
        else:
            pytest.skip("no free 10.254.x.0/30 for the veth pair")
        self.host_ip, self.peer_ip = net + "1", net + "2"
        self.made = []
        try:
            _run(["ip", "netns", "add", self.name])
            self.made.append("ns")
            _run(["ip", "link", "add", self.veth_out, "type", "veth", "peer", "name",
                  self.veth_in])
            self.made.append("link")
            _run(["ip", "link", "set", self.veth_in, "netns", self.name])
            _run(["ip", "addr", "add", self.host_ip + "/30", "dev", self.veth_out])
            _run(["ip", "link", "set", self.veth_out, "up"])
            self.exec_(["ip", "addr", "add", self.peer_ip + "/30", "dev", self.veth_in])
            self.exec_(["ip", "link", "set", self.veth_in, "up"])
            self.exec_(["ip", "link", "set", "lo", "up"])
        except subprocess.CalledProcessError as e:
            self.remove()
            pytest.skip("cannot set up a network namespace: %s %s"
                        % (" ".join(e.cmd), e.stderr.decode().strip()))

    def exec_(self, cmd):
        return _run(["ip", "netns", "exec", self.name] + cmd)

    def connect(self, port, login, passcode):
        p = _run(["ip", "netns", "exec", self.name, "/usr/bin/python3", "-c", CLIENT,
                  self.host_ip, str(port), login, passcode], check=False)
        assert p.returncode == 0, p.stderr.decode()
        return json.loads(p.stdout.decode())

    def remove(self):
        if "link" in self.made:
            _run(["ip", "link", "del", self.veth_out], check=False)
        if "ns" in self.made:
            _run(["ip", "netns", "del", self.name], check=False)
        self.made = []


@pytest.fixture(scope="module")
def netns():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace (guest's loopback-only rule "
                    "cannot be tested from a non-loopback peer otherwise)")
    if not shutil.which("ip"):
        pytest.skip("no `ip` command (iproute2) to create a network namespace")
    ns = Netns()
    yield ns
    ns.remove()


def _remote_refused(reply, what):
    assert reply["cmd"] == "ERROR", "%s: %r" % (what, reply)
    assert reply["headers"].get("message") == "Access refused", "%s: %r" % (what, reply)
    assert reply["closed"], "%s: connection stayed open: %r" % (what, reply)


# ---- loopback ----------------------------------------------------------------------------

def test_guest_from_any_loopback_address_connects(herald, logins):
    for src in ("127.0.0.1", "127.0.0.2", "127.1.2.3"):
        r, f, _ = logins(herald, "guest", "guest", src=src)
        assert_connected(f, "guest", "guest from %s" % src)


# ---- a peer in another network namespace --------------------------------------------------

def test_guest_from_a_remote_address_is_refused(herald_factory, netns):
    srv = herald_factory("--bind", netns.host_ip, "--user", "jack:jackpw")
    port = srv.port
    reply = netns.connect(port, "guest", "guest")
    assert reply.get("src") == netns.peer_ip, reply
    _remote_refused(reply, "guest/guest from %s" % netns.peer_ip)
    # the same refusal as a wrong password: nothing tells that guest exists
    wrong = netns.connect(port, "guest", "not-the-password")
    _remote_refused(wrong, "guest with a wrong password")
    assert reply["body"] == wrong["body"], (reply, wrong)
    # --user users may connect from anywhere
    ok = netns.connect(port, "jack", "jackpw")
    assert ok["cmd"] == "CONNECTED" and ok["headers"].get("user-name") == "jack", ok


def test_changed_default_password_is_still_loopback_only(herald_factory, netns, logins):
    srv = herald_factory("--bind", netns.host_ip, "--default-pass", "longer-secret")
    _remote_refused(netns.connect(srv.port, "guest", "longer-secret"), "guest from remote")


def test_renamed_default_user_is_still_loopback_only(herald_factory, netns):
    srv = herald_factory("--bind", netns.host_ip, "--default-user", "admin",
                         "--default-pass", "admin")
    _remote_refused(netns.connect(srv.port, "admin", "admin"), "admin (default user) from remote")
    _remote_refused(netns.connect(srv.port, "guest", "guest"), "guest after renaming")


def test_guest_from_the_users_file_may_connect_from_anywhere(herald_factory, netns, tmp_path):
    """The users file replaces the default user; its users are not loopback-only."""
    path = str(tmp_path / "users")
    write_users(path, [users_line("guest", "file-guest-pw")])
    srv = herald_factory("--bind", netns.host_ip, "--users-file", path)
    ok = netns.connect(srv.port, "guest", "file-guest-pw")
    assert ok["cmd"] == "CONNECTED", ok


def test_cli_user_named_guest_may_connect_from_anywhere(herald_factory, netns):
    srv = herald_factory("--bind", netns.host_ip, "--user", "guest:cli-guest-pw")
    ok = netns.connect(srv.port, "guest", "cli-guest-pw")
    assert ok["cmd"] == "CONNECTED", ok


# ---- this host's own non-loopback address -------------------------------------------------

def _host_address():
    if not shutil.which("ip"):
        return None
    out = _run(["ip", "-4", "-o", "addr", "show", "scope", "global"], check=False).stdout
    for line in out.decode().splitlines():
        parts = line.split()
        if "inet" in parts:
            addr = parts[parts.index("inet") + 1].split("/")[0]
            if not addr.startswith("127.") and not addr.startswith("10.254."):
                return addr
    return None


def test_guest_via_this_hosts_own_non_loopback_address_is_refused(herald_factory, logins):
    addr = _host_address()
    if addr is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    srv = herald_factory("--bind", addr, "--user", "jack:jackpw")
    r, f, _ = logins(srv, "guest", "guest", src=addr)
    assert r.sock.getsockname()[0] == addr
    assert_refused(r, f, "guest from %s" % addr)
    r, f, _ = logins(srv, "jack", "jackpw", src=addr)
    assert_connected(f, "jack")
