"""
tests/cluster/clusterlib.py - the harness the cluster tests share: start real `herald`
processes on 127.0.0.1, read their ports from their logs, wait (always with a deadline)
for membership and node links, read their admin JSON, stop them by PID, and talk STOMP to
them over a raw socket (StompConn: every wait has a timeout; reconnecting is the caller's).

Every port is 0: a node picks its own and logs `listening proto=<p> addr=127.0.0.1:<port>`.
The gossip period is PERIOD_MS, to keep the runs short. Only the processes a Cluster
started are stopped, by PID. Standard library only (/usr/bin/python3); the binaries come
from HERALD_BIN and HERALDCTL_BIN. tests/cluster/conftest.py makes this importable and
gives each test a `cluster` fixture.
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time

HERALD = os.environ.get("HERALD_BIN")
HERALDCTL = os.environ.get("HERALDCTL_BIN")
PERIOD_MS = 200
FORM_S = 10.0		# a fresh cluster: everyone alive, every link up
HTTP_TIMEOUT_S = 10.0	# one GET from a node's admin port

LISTEN_RE = re.compile(r"listening proto=(\w+) addr=([0-9.]+):(\d+)")
PROTOS = ("stomp", "ws", "gossip", "admin", "route", "raft")	# every listener a node opens

# `guest` at argon2id's minimum cost (tests/integration/conftest.py's CHEAP_GUEST): the
# built-in default user is hashed and checked at the interactive cost (~0.15 s per CONNECT).
CHEAP_GUEST = ("guest:$argon2id$v=19$m=8,t=1,p=1$t4EDY2nbszKafh7eueHTzA$"
               "iyylR5GBnXz0JJXQA5I4DL/RqQxEGzxRoN3u70qpHzw:administrator:*\n")


def wait_for(pred, timeout, what):
    """pred's first true value, polled every 50 ms; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                         % (timeout, what, last))


def wait_ports(proc, log_path, protos=PROTOS, timeout=10.0):
    """{proto: port} once proc's log names every one of protos. A process that exits or
    stays silent fails the test (and is killed, by PID)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ports = {m.group(1): int(m.group(3))
                 for m in LISTEN_RE.finditer(log_path.read_text(errors="replace"))}
        if all(p in ports for p in protos):
            return ports
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    raise AssertionError("%s did not log all of %s (exit status %s); log:\n%s"
                         % (log_path.name, protos, proc.returncode,
                            log_path.read_text(errors="replace")[-4000:]))


class Node:
    def __init__(self, name, shards, proc, log_path, ports):
        self.name = name
        self.shards = shards
        self.proc = proc
        self.log_path = log_path
        self.ports = ports	# proto -> port

    @property
    def gossip(self):
        return "127.0.0.1:%d" % self.ports["gossip"]

    @property
    def admin(self):
        return "127.0.0.1:%d" % self.ports["admin"]

    def log(self):
        return self.log_path.read_text(errors="replace")

    def __repr__(self):
        return "Node(%s, pid %d)" % (self.name, self.proc.pid)


class Cluster:
    """Starts and stops herald processes; remembers every PID it started."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.nodes = {}
        self.procs = []
        self.starts = 0
        self.users = tmp_path / "guest.users"
        self.users.write_text(CHEAP_GUEST)

    def spawn(self, args, log_path):
        """Runs HERALD with args, output to log_path; its PID is stopped by stop_all."""
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([HERALD] + list(args), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start(self, name, shards=1, join=None, gossip_port=0, route_port=0, extra=()):
        """A node named `name`, joined to the gossip address `join` if given; returns once
        it has logged every port."""
        self.starts += 1
        log_path = self.tmp / ("%s.%d.log" % (name, self.starts))
        args = ["--bind", "127.0.0.1", "--stomp-port", "0", "--ws-port", "0",
                "--shards", str(shards), "--node-name", name, "--log-level", "info",
                "--gossip-bind", "127.0.0.1", "--gossip-port", str(gossip_port),
                "--route-port", str(route_port),
                "--admin-bind", "127.0.0.1", "--admin-port", "0",
                "--gossip-interval", str(PERIOD_MS),
                "--default-user", "", "--users-file", str(self.users)]
        if join:
            args += ["--join", join]
        proc = self.spawn(args + list(extra), log_path)
        print("started %s (pid %d, %d shard(s)): %s" % (name, proc.pid, shards, log_path))
        node = Node(name, shards, proc, log_path, wait_ports(proc, log_path))
        self.nodes[name] = node
        return node

    def kill9(self, name):
        node = self.nodes.pop(name)
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait(timeout=10)
        print("kill -9 %s" % name)
        return node

    def terminate(self, name, timeout=20.0):
        """SIGTERM; returns (node, exit status)."""
        node = self.nodes.pop(name)
        os.kill(node.proc.pid, signal.SIGTERM)
        print("SIGTERM %s" % name)
        return node, node.proc.wait(timeout=timeout)

    def terminate_wait(self, name, timeout=20.0):
        """Waits for a node told to stop some other way (heraldctl drain) to exit; returns
        (node, exit status)."""
        node = self.nodes.pop(name)
        return node, node.proc.wait(timeout=timeout)

    def check_alive(self):
        """No node may die on its own: a crash fails the test that saw it."""
        for node in self.nodes.values():
            if node.proc.poll() is not None:
                raise AssertionError("%s died during the test (exit status %s); log:\n%s"
                                     % (node.name, node.proc.returncode, node.log()[-6000:]))

    def stop_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass


# --- the admin port's JSON --------------------------------------------------------------------

def http_get(node, path):
    conn = http.client.HTTPConnection("127.0.0.1", node.ports["admin"], timeout=HTTP_TIMEOUT_S)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, (path, resp.status, body[:300])
    return json.loads(body)


def status(node):
    """GET /cluster/status."""
    return http_get(node, "/cluster/status")


def member_of(doc, name):
    """The entry for `name` in a cluster status document, or None."""
    for m in doc["members"]:
        if m["name"] == name:
            return m
    return None


# --- meshes: every node alive at every other, every link up ----------------------------------

def mesh_view(nodes):
    return {n.name: {m["name"]: (m["state"], m.get("link")) for m in status(n)["members"]}
            for n in nodes}


def mesh_ready(nodes, departed_ok=False):
    """Every node sees exactly these nodes alive, with its link to each other one up. Other
    members may still be listed (dead or left) only with departed_ok."""
    names = {n.name for n in nodes}
    for name, seen in mesh_view(nodes).items():
        alive = {m for m, (state, _) in seen.items() if state == "alive"}
        if alive != names or (not departed_ok and set(seen) != names):
            return False
        if any(seen[m][1] != "up" for m in alive if m != name):
            return False
    return True


def wait_mesh(nodes, timeout=FORM_S, departed_ok=False):
    """Every node alive at every other with its link up, and (when the nodes run the
    controller) one agreed view of exactly these nodes: queues are placed by it."""
    deadline = time.monotonic() + timeout
    names = [n.name for n in nodes]
    while time.monotonic() < deadline:
        if mesh_ready(nodes, departed_ok) and \
                ("raft" not in nodes[0].ports or view_agreed(nodes, names)):
            return
        time.sleep(0.05)
    raise AssertionError("after %.1fs not every node sees every other alive with link up: %r"
                         % (timeout, mesh_view(nodes)))


# --- the controller's view (cluster/controller.h) ---------------------------------------------

def controller(node):
    """This node's controller state: role, leader, epoch, voters, view."""
    return status(node)["controller"]


def view_agreed(nodes, names):
    """Every node's view is exactly `names`, all active, at one epoch, with one leader known
    to all; returns the controller documents, or None."""
    docs = {n.name: controller(n) for n in nodes}
    epochs = {d["epoch"] for d in docs.values()}
    leaders = {d["leader"] for d in docs.values()}
    for d in docs.values():
        if {m["name"] for m in d["view"]} != set(names) or \
                any(m["state"] != "active" for m in d["view"]):
            return None
    if len(epochs) != 1 or len(leaders) != 1 or "" in leaders:
        return None
    return docs


def wait_view(nodes, names, timeout=FORM_S):
    """Waits until view_agreed(nodes, names); returns (docs, seconds waited)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        docs = view_agreed(nodes, names)
        if docs:
            return docs, time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError("after %.1fs the nodes do not agree on the view %s: %r"
                         % (timeout, sorted(names), {n.name: controller(n) for n in nodes}))


def start_mesh(cluster, spec):
    """spec: [(name, shards)]; the first is the seed the others join."""
    seed = None
    for name, shards in spec:
        node = cluster.start(name, shards=shards, join=seed.gossip if seed else None)
        seed = seed or node
    nodes = [cluster.nodes[name] for name, _ in spec]
    wait_mesh(nodes)
    return nodes


# --- STOMP 1.2 over a raw socket --------------------------------------------------------------

class Closed(Exception):
    """The connection ended (EOF or a socket error), or CONNECT was not answered."""


class Frame:
    def __init__(self, cmd, headers, body):
        self.cmd = cmd
        self.headers = headers	# first occurrence wins (the spec), raw (escaped) values
        self.body = body

    def get(self, name, default=None):
        return self.headers.get(name, default)

    def __repr__(self):
        return "Frame(%s %r %r)" % (self.cmd, self.headers, self.body[:60])


class StompConn:
    """One STOMP 1.2 connection to 127.0.0.1:port as guest, heart-beats off, used by one
    thread. recv() returns a Frame (ERROR frames too), None when nothing whole arrived within
    the timeout, or raises Closed; so does a CONNECT not answered by CONNECTED in time."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()
        try:
            self.send("CONNECT", [("accept-version", "1.2"), ("host", "/"), ("login", "guest"),
                                  ("passcode", "guest"), ("heart-beat", "0,0")])
            f = self.recv(timeout)
        except Closed:
            self.close()
            raise
        if f is None or f.cmd != "CONNECTED":
            self.close()
            raise Closed("CONNECT to port %d answered by %r" % (port, f))

    def send(self, cmd, headers, body=b""):
        out = bytearray(cmd.encode() + b"\n")
        for k, v in headers:
            out += ("%s:%s\n" % (k, v)).encode()
        if body:
            out += b"content-length:%d\n" % len(body)
        out += b"\n" + body + b"\0"
        try:
            self.sock.sendall(out)
        except OSError as e:
            raise Closed(str(e))

    def _parse(self):
        while self.buf[:1] in (b"\n", b"\r"):
            del self.buf[0]
        end = self.buf.find(b"\n\n")
        if end < 0:
            return None
        lines = self.buf[:end].decode().replace("\r", "").split("\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k, v)
        start = end + 2
        if "content-length" in headers:
            stop = start + int(headers["content-length"])
            if len(self.buf) < stop + 1:
                return None
        else:
            stop = self.buf.find(b"\0", start)
            if stop < 0:
                return None
        body = bytes(self.buf[start:stop])
        del self.buf[:stop + 1]
        return Frame(lines[0], headers, body)

    def recv(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            f = self._parse()
            if f is not None:
                return f
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError as e:
                raise Closed(str(e))
            if not data:
                raise Closed("EOF")
            self.buf += data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
