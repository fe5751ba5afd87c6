"""
tests/cluster/test_metrics.py - the admin endpoint's operator paths with real processes on
127.0.0.1 (issue 14, "Metrics and health"): GET /health and /ready; GET /metrics in the
Prometheus text format, checked by Debian's `promtool check metrics` and scraped by a real
Prometheus (Debian's `prometheus`) whose query API must return the expected counters after
known traffic: messages published on node a, their copies over a's link to b, logins.

Prometheus runs with its own temporary config and storage on a free 127.0.0.1 port, is
stopped by PID, and every wait is bounded.

Run: HERALD_BIN=build/core/herald /usr/bin/python3 -m pytest -q tests/cluster/test_metrics.py
"""

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from clusterlib import start_mesh, wait_for

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
SCRAPE_S = 1
WAIT = 30.0


def get(node, path):
    """(status, content type, body) of GET path on node's admin port."""
    try:
        with urllib.request.urlopen("http://%s%s" % (node.admin, path), timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def stomp_session(node):
    s = socket.create_connection(("127.0.0.1", node.ports["stomp"]), timeout=5)
    s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0")
    return s


def read_frames(s, n, timeout=WAIT):
    buf, out, deadline = b"", [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
        while b"\0" in buf:
            f, buf = buf.split(b"\0", 1)
            f = f.lstrip(b"\r\n")
            if f:
                out.append(f)
    return out


def series(text, name, **labels):
    """Sum of the samples of metric `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        if all('%s="%s"' % (k, v) in rest for k, v in labels.items()):
            total += float(value)
    return total


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def traffic(cluster):
    """a (2 shards) and b linked; 25 messages published on a to a topic b's subscriber
    wants (each crosses a's link once), 10 to a queue; returns (a, b)."""
    a, b = start_mesh(cluster, [("a", 2), ("b", 1)])
    sub = stomp_session(b)
    sub.sendall(b"SUBSCRIBE\ndestination:/topic/metrics\nid:1\nreceipt:r\n\n\0")
    assert [f for f in read_frames(sub, 2) if f.startswith(b"RECEIPT")], "subscribe receipt"
    pub = stomp_session(a)
    for i in range(25):
        pub.sendall(b"SEND\ndestination:/topic/metrics\n\nm%d\0" % i)
    for i in range(10):
        pub.sendall(b"SEND\ndestination:/queue/metrics\n\nq%d\0" % i)
    pub.sendall(b"DISCONNECT\nreceipt:bye\n\n\0")
    assert any(f.startswith(b"RECEIPT") for f in read_frames(pub, 2))
    got = [f for f in read_frames(sub, 25) if f.startswith(b"MESSAGE")]
    assert len(got) == 25, "b's subscriber got %d of 25" % len(got)
    pub.close()
    yield a, b
    sub.close()


def test_health_and_ready(cluster):
    (a,) = start_mesh(cluster, [("a", 1)])
    status, ctype, body = get(a, "/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, _, body = get(a, "/ready")
    assert status == 200 and json.loads(body)["ready"] is True
    assert get(a, "/nope")[0] == 404


def test_metrics_text_is_valid_and_counts_the_traffic(traffic):
    a, b = traffic

    def snapshot():
        status, ctype, body = get(a, "/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
        return body
    # the route publishes its link counters every 100 ms, an idle shard its own within a
    # second (at its next loop turn)
    # over the link to b: the 25 topic messages, and the 10 queue messages - as SENDs when
    # b owns /queue/metrics, as copies for b (its backup) when a owns it
    def counted(t):
        return (series(t, "herald_link_messages_sent_total", peer="b") >= 35 and
                series(t, "herald_logins_total", result="ok") >= 1 and
                series(t, "herald_frames_received_total") >= 25 + 10 + 2)
    wait_for(lambda: counted(snapshot()), WAIT, "a's counters to show the traffic")
    text = snapshot()
    assert series(text, "herald_link_messages_sent_total", peer="b") == 35
    assert series(text, "herald_link_up", peer="b") == 1
    assert series(text, "herald_logins_total", result="ok") >= 1
    assert series(text, "herald_frames_received_total") >= 25 + 10 + 2
    assert series(text, "herald_messages_published_total") >= 25
    assert series(text, "herald_cluster_members", state="alive") == 2
    assert series(text, "herald_ready") == 1
    assert series(text, "process_resident_memory_bytes") > 0
    if PROMTOOL:
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                               capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    else:
        pytest.fail("promtool (Debian's prometheus package) is not installed")


def test_a_real_prometheus_scrapes_the_node(traffic, tmp_path):
    a, b = traffic
    if not PROMETHEUS:
        pytest.fail("prometheus (Debian's package) is not installed")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: %ds\n  evaluation_interval: %ds\n"
        "scrape_configs:\n  - job_name: herald\n    metrics_path: /metrics\n"
        "    static_configs:\n      - targets: ['%s']\n" % (SCRAPE_S, SCRAPE_S, a.admin))
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen([PROMETHEUS, "--config.file", str(config),
                             "--storage.tsdb.path", str(tmp_path / "tsdb"),
                             "--web.listen-address", "127.0.0.1:%d" % port],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        def query(q):
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    doc = json.loads(r.read())
            except OSError:
                return None
            res = doc.get("data", {}).get("result", [])
            return float(res[0]["value"][1]) if res else None

        wait_for(lambda: query('up{job="herald"}') == 1, WAIT,
                 "Prometheus to scrape the node (up == 1)")
        wait_for(lambda: query('sum(herald_link_messages_sent_total{peer="b"})') == 35, WAIT,
                 "Prometheus to report the 35 messages a sent over its link to b")
        assert query('sum(herald_logins_total{result="ok"})') >= 1
        assert query('sum(herald_connections_accepted_total)') >= 1
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
