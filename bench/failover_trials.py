#!/usr/bin/python3
"""
bench/failover_trials.py - issue 13's trial script: kill -9 (or SIGSTOP) the owner of a queue
in a 3-node Herald cluster while producers send receipted messages and consumers ack them,
then prove from the clients' own records that no receipted message was lost.

    /usr/bin/python3 bench/failover_trials.py [--trials 100] [--seed S] [--fault kill9|stop]
        [--replicas R] [--fresh] [--herald build/core/herald] ...   (--help: every option)

One trial, on nodes a, b and c (127.0.0.1, ports the kernel picks; tests/cluster/clusterlib.py
starts them):
  1. a queue whose owner is a node drawn from the seed (herald-queue-pick: the server's own
     rendezvous function; checked against the owner's GET /api/queues);
  2. producers on the two other nodes send receipted SENDs at a steady rate; a message counts
     as receipted only once its RECEIPT came. On ERROR, a closed connection or no RECEIPT
     within --receipt-timeout-s a producer reconnects (to the next node that answers) and sends
     again, as a new attempt, everything not yet receipted;
  3. consumers on the two other nodes (and, with --fault stop, one on the owner) subscribe with
     ack:client-individual and ACK each message once handled (one at a time; --consume-rate
     messages/s all together, below the producers' total); on a closed connection they
     reconnect to the next node that answers and subscribe again;
  4. after a seeded delay the owner is killed (kill -9) or stopped (SIGSTOP, resumed with SIGCONT
     --stop-hold-s later); producing goes on --after-s past the first receipted SEND issued after
     the fault (the failover time), then the producers finish and the consumers drain at full
     speed (bounded: a drain still receiving at --drain-s is a problem, not a loss);
  5. the checker: LOST = receipted but never delivered; duplicates of one attempt are allowed when
     no earlier copy had been acked, or its ACK was written in the fault window (from
     --ack-grace-ms before the fault until the queue was served again), and are violations
     otherwise; copies of two attempts of one message (resends) are counted apart; a delivery
     whose id was never sent or whose body does not match its id is corruption. With --fault
     stop, deliveries the stopped node's consumer gets after SIGCONT are counted: of messages
     sent before the stop, and of those also delivered by the survivors ("both sides");
  6. the next trial gets three nodes again: the killed node is restarted with --join to a
     survivor (a stopped one is resumed; restarted if it does not rejoin), or with --fresh every
     trial starts a new cluster.

Per trial one line; then a summary (lost, duplicates, failover p50/p99/max) and a JSON file in
bench/results/<UTC time>-failover/ (with the node logs of the first failing trials). Exit status
1 when any receipted message was lost, any duplicate was a violation or any delivery corrupt;
2 when a trial could not run (the harness or the cluster failed). Each trial has a hard time
limit; every node started here is killed by PID in a finally block. A failing trial prints the
command that replays it (--seed S --only-trial K: the same queue, owner, clients and delays in a
fresh cluster).

Standard library only; STOMP goes over clusterlib's raw-socket StompConn, so every wait has an
explicit timeout and reconnecting is the script's own decision.
"""

import argparse
import contextlib
import datetime
import json
import math
import os
import pathlib
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP / "tests" / "cluster"))
import clusterlib as cl  # noqa: E402  (the cluster tests' harness)

NAMES = ("a", "b", "c")
CONNECT_TIMEOUT_S = 1.0		# TCP connect plus CONNECTED: a stopped node accepts, never answers
SUBSCRIBE_TIMEOUT_S = 3.0
LOGS_KEPT = 3			# notable trials whose node logs are copied to the results (notable())


def now():
    return time.monotonic()


# --- STOMP: clusterlib's raw-socket connection ----------------------------------------------

Closed = cl.Closed


def read(conn, timeout):
    """conn's next frame or None; an ERROR frame (the server closes after it) is Closed."""
    f = conn.recv(timeout)
    if f is not None and f.cmd == "ERROR":
        conn.close()
        raise Closed("ERROR %s" % f.get("message", "?"))
    return f


def connect_any(ports, start, stop_at):
    """A connection to the first node that answers, trying ports from index `start` round;
    (index, Stomp) or (None, None) once stop_at has passed."""
    i = start
    while now() < stop_at:
        try:
            return i % len(ports), cl.StompConn(ports[i % len(ports)], CONNECT_TIMEOUT_S)
        except (OSError, Closed):
            i += 1
            if i % len(ports) == start % len(ports):
                time.sleep(0.05)	# every node refused: wait before going round again
    return None, None


# --- the clients' records ----------------------------------------------------------------------

class Ledger:
    """Everything the clients did, with monotonic times, for the checker."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = {}	# x-id "<mid>.<attempt>" -> [t_sent, t_receipt or None, node]
        # [t, consumer, node, x-id, redelivered, body ok, t_ack or None, connection number]
        self.deliveries = []
        self.errors = {}	# ERROR message / reason -> count
        self.reconnects = 0

    def sent(self, xid, node):
        with self.lock:
            self.attempts[xid] = [now(), None, node]

    def receipted(self, xid):
        with self.lock:
            self.attempts[xid][1] = now()

    def delivered(self, who, node, xid, redelivered, body_ok, serial):
        rec = [now(), who, node, xid, redelivered, body_ok, None, serial]
        with self.lock:
            self.deliveries.append(rec)
        return rec

    def acked(self, rec):
        with self.lock:
            rec[6] = now()

    def closed(self, why):
        with self.lock:
            self.errors[why] = self.errors.get(why, 0) + 1
            self.reconnects += 1


def body_of(xid, size):
    """A message's body: its id, padded to size with a pattern the id determines."""
    head = xid.encode() + b"|"
    pad = (xid.encode() * (size // max(1, len(xid)) + 1))
    return head + pad[:max(0, size - len(head))]


class Client(threading.Thread):
    """The part producers and consumers share: a home node, reconnection round the others,
    a stop flag and a hard deadline."""

    def __init__(self, name, ports, names, home, ledger, hard_stop):
        super().__init__(daemon=True, name=name)
        self.who = name
        self.ports = ports
        self.names = names
        self.home = home
        self.ledger = ledger
        self.hard_stop = hard_stop
        self.stop = threading.Event()
        self.failure = None
        self.conn = None
        self.at = home		# index into ports of the node connected to
        self.serial = 0		# connections made so far

    def run(self):
        try:
            self.loop()
        except Exception as e:	# noqa: BLE001 - reported with the trial
            self.failure = "%s: %s: %s" % (self.who, type(e).__name__, e)
        finally:
            if self.conn:
                self.conn.close()

    def reconnect(self, why, start):
        """Drops the connection (counting why) and connects to the first node that answers
        from index start; False at the hard deadline."""
        if self.conn:
            self.conn.close()
            self.ledger.closed(why)
        self.at, self.conn = connect_any(self.ports, start, self.hard_stop)
        self.serial += 1
        return self.conn is not None


class Producer(Client):
    def __init__(self, name, ports, names, home, ledger, hard_stop, dest, rate, window,
                 receipt_timeout, body_size, settle_s):
        super().__init__(name, ports, names, home, ledger, hard_stop)
        self.dest = dest
        self.period = 1.0 / rate
        self.window = window
        self.receipt_timeout = receipt_timeout
        self.body_size = body_size
        self.settle_s = settle_s
        self.stopped_at = None

    def loop(self):
        outstanding = {}	# receipt id (= x-id) -> (mid, attempt, t_sent)
        resend = []		# (mid, attempt) to send again
        n = 0
        due = now()
        if not self.reconnect(None, self.home):
            return
        while now() < self.hard_stop:
            stopping = self.stop.is_set()
            if stopping and self.stopped_at is None:
                self.stopped_at = now()
            if stopping and (not outstanding and not resend
                             or now() > self.stopped_at + self.settle_s):
                return
            late = [t for _, _, t in outstanding.values() if now() - t > self.receipt_timeout]
            try:
                if late:
                    raise Closed("no RECEIPT within %.1fs" % self.receipt_timeout)
                while len(outstanding) < self.window and (resend or (not stopping and now() >= due)):
                    if resend:
                        mid, attempt = resend.pop(0)
                    else:
                        mid, attempt = "%s-%d" % (self.who, n), 0
                        n += 1
                        due = max(due + self.period, now() - self.period)	# no bursts after a stall
                    xid = "%s.%d" % (mid, attempt)
                    outstanding[xid] = (mid, attempt, now())
                    self.ledger.sent(xid, self.names[self.at])
                    self.conn.send("SEND", [("destination", self.dest), ("x-id", xid),
                                             ("receipt", xid)], body_of(xid, self.body_size))
                idle = stopping or len(outstanding) >= self.window
                f = read(self.conn, 0.05 if idle else min(0.05, max(0.001, due - now())))
                if f is not None and f.cmd == "RECEIPT":
                    rid = f.get("receipt-id")
                    if outstanding.pop(rid, None) is not None:
                        self.ledger.receipted(rid)
            except Closed as e:
                resend = sorted((mid, attempt + 1) for mid, attempt, _ in outstanding.values()) + resend
                outstanding = {}
                if not self.reconnect(str(e), self.at + 1):
                    return


class Consumer(Client):
    """Handles its messages one after another, each taking 1/rate s, and ACKs each one
    when it is handled: with prefetch-count P up to P deliveries are unacked at a time, and
    when the producers outpace the consumers the owner holds a backlog."""

    def __init__(self, name, ports, names, home, ledger, hard_stop, dest, prefetch, rate,
                 body_size):
        super().__init__(name, ports, names, home, ledger, hard_stop)
        self.dest = dest
        self.prefetch = prefetch
        self.handling = 1.0 / rate
        self.body_size = body_size
        self.subscribed = threading.Event()
        self.acks = []		# (due, ack id, delivery record)
        self.busy_until = 0.0	# when the messages taken so far are all handled
        self.hurry = False	# set for the drain
        self.last = now()	# time of the last MESSAGE

    def record(self, f):
        if f.cmd != "MESSAGE":
            return
        xid = f.get("x-id", "")
        rec = self.ledger.delivered(self.who, self.names[self.at], xid,
                                    f.get("redelivered") == "true",
                                    f.body == body_of(xid, self.body_size), self.serial)
        self.last = rec[0]
        # draining (the producers are done): each message is handled as it comes
        self.busy_until = rec[0] if self.hurry else max(self.busy_until, rec[0]) + self.handling
        self.acks.append((self.busy_until, f.get("ack"), rec))

    def flush_acks(self, everything=False):
        while self.acks and (everything or self.acks[0][0] <= now()):
            _, ack_id, rec = self.acks[0]
            self.conn.send("ACK", [("id", ack_id)])
            self.ledger.acked(rec)
            self.acks.pop(0)

    def subscribe(self):
        self.conn.send("SUBSCRIBE", [("destination", self.dest), ("id", "s"),
                                      ("ack", "client-individual"),
                                      ("prefetch-count", str(self.prefetch)), ("receipt", "sub")])
        until = now() + SUBSCRIBE_TIMEOUT_S
        while now() < until:
            f = read(self.conn, until - now())
            if f is None:
                break
            if f.cmd == "RECEIPT" and f.get("receipt-id") == "sub":
                self.subscribed.set()
                return
            self.record(f)
        raise Closed("no RECEIPT for SUBSCRIBE within %.1fs" % SUBSCRIBE_TIMEOUT_S)

    def loop(self):
        start = self.home
        why = None
        while now() < self.hard_stop and not self.stop.is_set():
            if not self.reconnect(why, start):
                return
            try:
                self.subscribe()
                while not self.stop.is_set() and now() < self.hard_stop:
                    wait = 0.05 if not self.acks else min(0.05, max(0.0, self.acks[0][0] - now()))
                    f = read(self.conn, wait)
                    if f is not None:
                        self.record(f)
                    self.flush_acks()
                self.flush_acks(everything=True)
                return
            except Closed as e:
                self.acks = []	# their delivery tags died with the connection
                self.busy_until = 0.0
                why, start = str(e), self.at + 1


# --- one trial ---------------------------------------------------------------------------------

class Harness:
    """The cluster (started here, killed here) and what every trial shares."""

    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.cluster = None
        self.clusters = []	# every Cluster made, for the finally block
        self.extra = []
        self.quiet = open(work / "harness.log", "a")

    def node_args(self):
        return self.extra

    @contextlib.contextmanager
    def muted(self):
        """clusterlib prints a line per start and kill: into harness.log, not the trial lines."""
        with contextlib.redirect_stdout(self.quiet):
            yield

    def fresh(self, index):
        self.stop_cluster()
        tmp = self.work / ("cluster-%d" % index)
        tmp.mkdir()
        self.cluster = cl.Cluster(tmp)
        self.clusters.append(self.cluster)
        with self.muted():
            seed = None
            for name in NAMES:
                node = self.cluster.start(name, shards=self.args.shards,
                                          join=seed.gossip if seed else None, extra=self.extra)
                seed = seed or node
            cl.wait_mesh(list(self.cluster.nodes.values()), timeout=self.args.mesh_s)

    def restore(self, victim):
        """Three nodes again after a trial that killed or stopped victim; a fresh cluster if
        that does not work within --mesh-s."""
        c = self.cluster
        try:
            with self.muted():
                if victim in c.nodes and c.nodes[victim].proc.poll() is None:
                    os.kill(c.nodes[victim].proc.pid, signal.SIGCONT)	# stopped: it may rejoin
                    try:
                        cl.wait_mesh(list(c.nodes.values()), timeout=self.args.mesh_s,
                                     departed_ok=True)
                        return "resumed"
                    except AssertionError:
                        c.kill9(victim)
                c.nodes.pop(victim, None)
                survivor = next(iter(c.nodes.values()))
                c.start(victim, shards=self.args.shards, join=survivor.gossip, extra=self.extra)
                cl.wait_mesh(list(c.nodes.values()), timeout=self.args.mesh_s, departed_ok=True)
                return "restarted"
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            print("  (cluster not whole again: %s; starting a fresh one)" % str(e)[:200])
            return None

    def stop_cluster(self):
        if self.cluster:
            for proc in self.cluster.procs:	# a SIGSTOPped node dies of SIGKILL too
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGCONT)
            self.cluster.stop_all()
            self.cluster = None

    def close(self):
        for c in self.clusters:
            for proc in c.procs:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGCONT)
            c.stop_all()
        self.quiet.close()


def pick_queue(args, trial_seed, owner):
    out = subprocess.run([args.queue_pick, "--nodes", ",".join(NAMES), "--owner", owner,
                          "--count", "1", "--prefix", "/queue/ft-%x-" % trial_seed],
                         capture_output=True, text=True, timeout=10, check=True)
    return out.stdout.split()[0]


def queue_listed(node, dest):
    try:
        return any(q["name"] == dest for q in cl.http_get(node, "/api/queues")["queues"])
    except (OSError, AssertionError, ValueError):
        return False


def run_trial(h, k, trial_seed):
    """One trial; returns its record (a dict)."""
    args = h.args
    rng = random.Random(trial_seed)
    owner = rng.choice(NAMES)
    others = [n for n in NAMES if n != owner]
    dest = pick_queue(args, trial_seed, owner)
    delay = rng.uniform(args.fault_after_min_s, args.fault_after_max_s)
    c = h.cluster
    names = list(NAMES)
    ports = [c.nodes[n].ports["stomp"] for n in names]
    t0 = now()
    hard_stop = t0 + args.trial_limit_s
    ledger = Ledger()
    rec = {"trial": k, "seed": trial_seed, "owner": owner, "queue": dest, "fault": args.fault,
           "fault_after_s": round(delay, 3), "problems": []}

    watching = args.fault == "stop" or args.owner_consumer
    each = args.consume_rate / (args.consumers + watching)	# the same backlog either way
    consumers = [Consumer("c%d@%s" % (i, others[i % 2]), ports, names,
                          names.index(others[i % 2]), ledger, hard_stop, dest, args.prefetch,
                          each, args.body)
                 for i in range(args.consumers)]
    watch = None
    if watching:
        watch = Consumer("w@%s" % owner, ports, names, names.index(owner), ledger, hard_stop,
                         dest, args.prefetch, each, args.body)
        consumers.append(watch)
    producers = [Producer("p%d@%s" % (i, others[i % 2]), ports, names,
                          names.index(others[i % 2]), ledger, hard_stop, dest, args.rate,
                          args.window, args.receipt_timeout_s, args.body, args.settle_s)
                 for i in range(args.producers)]
    victim = c.nodes[owner]
    t_fault = t_resume = None
    try:
        for x in consumers:
            x.start()
        if not all(x.subscribed.wait(max(0.0, SUBSCRIBE_TIMEOUT_S * 2 - (now() - t0)))
                   for x in consumers):
            raise TrialError("consumers not subscribed: %s" % [x.failure for x in consumers])
        for p in producers:
            p.start()
        if not cl.wait_for(lambda: queue_listed(victim, dest) or None, 5.0, "owner lists queue"):
            raise TrialError("%s does not list %s" % (owner, dest))
        time.sleep(max(0.0, t0 + delay - now()))
        with ledger.lock:
            before = sum(1 for a in ledger.attempts.values() if a[1]), len(ledger.deliveries)
        if not all(before):
            raise TrialError("nothing receipted or delivered before the fault: %s" % (before,))

        rec["controller_leader"] = controller_leader(c.nodes[others[0]])
        t_fault = now()
        os.kill(victim.proc.pid, signal.SIGKILL if args.fault == "kill9" else signal.SIGSTOP)
        if args.fault == "kill9":
            with h.muted():
                c.nodes.pop(owner)
                victim.proc.wait(timeout=10)
        served_by = min(hard_stop, t_fault + args.failover_limit_s)
        while now() < served_by and first_receipt_after(ledger, t_fault) is None:
            time.sleep(0.01)
        if args.fault == "stop":
            time.sleep(max(0.0, t_fault + args.stop_hold_s - now()))
            t_resume = now()
            os.kill(victim.proc.pid, signal.SIGCONT)
        time.sleep(max(0.0, min(hard_stop, now() + args.after_s) - now()))
    except (TrialError, AssertionError) as e:
        rec["problems"].append(str(e)[:500])
    finally:
        for p in producers:
            p.stop.set()
        for p in producers:
            p.join(max(0.0, hard_stop - now()) + 1)
        cut = drain(ledger, consumers, hard_stop, args)
        if cut:
            rec["problems"].append(cut)
        for x in consumers:
            x.stop.set()
        for x in consumers:
            x.join(max(0.0, hard_stop - now()) + 1)
    late = [x.who for x in producers + consumers if x.is_alive()]
    if late:
        rec["problems"].append("clients still running at the trial's limit: %s" % late)
    rec["problems"] += [x.failure for x in producers + consumers if x.failure]
    dead = [n for n, node in c.nodes.items() if n != owner and node.proc.poll() is not None]
    if dead:
        rec["problems"].append("node(s) %s died during the trial" % dead)
    rec["elapsed_s"] = round(now() - t0, 2)
    rec.update(check(ledger, t_fault, t_resume, watch.who if watch else None))
    return rec


class TrialError(Exception):
    pass


def controller_leader(node):
    """The controller's leader as node sees it (servers with a Raft controller), or None."""
    try:
        return cl.status(node).get("controller", {}).get("leader") or None
    except (OSError, AssertionError, ValueError):
        return None


def first_receipt_after(ledger, t):
    """The earliest RECEIPT time of a SEND issued at or after t, or None."""
    with ledger.lock:
        times = [r for s, r, _ in ledger.attempts.values() if r is not None and s >= t]
    return min(times) if times else None


def drain(ledger, consumers, hard_stop, args):
    """Lets the consumers take what is left, at full speed: until every receipted message
    came and then 0.3 s of quiet, or --idle-s of quiet. A problem (not a loss) if messages
    were still coming at --drain-s."""
    for x in consumers:
        x.hurry = True
    until = min(hard_stop, now() + args.drain_s)
    while now() < until:
        with ledger.lock:
            wanted = {x.rpartition(".")[0] for x, a in ledger.attempts.items() if a[1]}
            got = {d[3].rpartition(".")[0] for d in ledger.deliveries}
        quiet = now() - max(x.last for x in consumers)
        if quiet >= (0.3 if wanted <= got else args.idle_s):
            return None
        time.sleep(0.05)
    return "drain cut off at --drain-s %.0f s with messages still arriving" % args.drain_s


def check(ledger, t_fault, t_resume, watcher):
    """The trial's figures from the clients' records."""
    with ledger.lock:
        attempts = dict(ledger.attempts)
        deliveries = sorted(ledger.deliveries)
        errors = dict(ledger.errors)
        reconnects = ledger.reconnects
    receipted = {x.rpartition(".")[0] for x, a in attempts.items() if a[1] is not None}
    copies = {}		# x-id -> its deliveries, in arrival order
    corrupt = 0
    for d in deliveries:
        if d[3] not in attempts or not d[5]:
            corrupt += 1
        else:
            copies.setdefault(d[3], []).append(d)
    delivered_mids = {x.rpartition(".")[0] for x in copies}
    first_sent = {}	# message id -> when its first attempt was sent
    for x, a in attempts.items():
        m = x.rpartition(".")[0]
        first_sent[m] = min(a[0], first_sent.get(m, a[0]))
    lost = sorted(receipted - delivered_mids)

    t_fault = t_fault if t_fault is not None else float("inf")
    after_sent = [d[0] for d in deliveries if d[3] in attempts and attempts[d[3]][0] >= t_fault
                  and d[1] != watcher]
    t_served = min(after_sent) if after_sent else float("inf")	# a survivor delivered anew
    grace = ledger_grace[0]

    def rel(t):	# seconds after the fault, for the report
        return None if t is None or t_fault == float("inf") else round(t - t_fault, 3)
    dup_unacked = dup_in_flight = dup_violating = dup_no_flag = dup_same_conn = 0
    dup_violating_resumed = 0	# --fault stop: the later copy came after SIGCONT
    violations, allowed = [], []	# a few of each, for the report

    def example(xid, cs):
        return {"x-id": xid, "sent": rel(attempts[xid][0]), "copies": [
            {"t": rel(e[0]), "consumer": e[1], "node": e[2], "redelivered": e[4],
             "acked": rel(e[6])} for e in cs]}
    for xid, cs in copies.items():
        for i, later in enumerate(cs[1:], 1):
            acks = [e[6] for e in cs[:i] if e[6] is not None and e[6] < later[0]]
            if not later[4]:
                dup_no_flag += 1
            if any(e[1] == later[1] and e[7] == later[7] for e in cs[:i]):
                dup_same_conn += 1	# no reconnect between: the server sent it twice
            if acks and not all(t_fault - grace <= t < t_served for t in acks):
                dup_violating += 1
                if t_resume is not None and later[0] >= t_resume:
                    dup_violating_resumed += 1
                if len(violations) < 5:
                    violations.append(example(xid, cs))
                continue
            if acks:
                dup_in_flight += 1
            else:
                dup_unacked += 1
            if len(allowed) < 3:
                allowed.append(example(xid, cs))
    by_mid = {}
    for xid in copies:
        by_mid.setdefault(xid.rpartition(".")[0], set()).add(xid)
    dup_resend = sum(len(v) - 1 for v in by_mid.values())

    fr = first_receipt_after(ledger, t_fault)
    # the longest pause in deliveries once the queue was served again (a stall, not a loss,
    # when the drain outlasts it)
    served = [d[0] for d in deliveries if d[0] >= t_served]
    stall = max((b - a for a, b in zip(served, served[1:])), default=0.0)
    out = {"sent": len({x.rpartition(".")[0] for x in attempts}), "attempts": len(attempts),
           "receipted": len(receipted), "deliveries": len(deliveries),
           "delivered": len(delivered_mids), "lost": len(lost), "lost_ids": lost[:20],
           # receipted after the queue had failed over: no replication excuses these
           "lost_sent_after_fault": sum(1 for m in lost if first_sent[m] >= t_fault),
           "dup_unacked": dup_unacked, "dup_ack_in_flight": dup_in_flight,
           "dup_violating": dup_violating, "dup_without_redelivered": dup_no_flag,
           "dup_same_connection": dup_same_conn,
           "dup_resend": dup_resend, "corrupt": corrupt, "violations": violations,
           "allowed_examples": allowed,
           "failover_ms": None if fr is None else round((fr - t_fault) * 1e3, 1),
           "first_delivery_ms": None if t_served == float("inf")
           else round((t_served - t_fault) * 1e3, 1),
           "longest_stall_ms": round(stall * 1e3, 1),
           "unreceipted_sends_after_fault": sum(1 for s, r, _ in attempts.values()
                                                 if s >= t_fault and r is None),
           "reconnects": reconnects, "closes": errors}
    if t_resume is not None:
        late = [d for d in deliveries if d[1] == watcher and d[0] >= t_resume]
        old = [d for d in late if d[3] in attempts and attempts[d[3]][0] < t_fault]
        elsewhere = {d[3] for d in deliveries if d[1] != watcher and d[0] >= t_fault}
        out.update({"resumed_deliveries": len(late), "resumed_pre_stop": len(old),
                    "resumed_both_sides": sum(1 for d in old if d[3] in elsewhere),
                    "dup_violating_after_resume": dup_violating_resumed,
                    "resume_s": rel(t_resume)})
    return out


ledger_grace = [0.1]	# --ack-grace-ms, in seconds (check() reads it)


# --- the run -----------------------------------------------------------------------------------

def percentile(xs, p):
    """Nearest rank: the smallest value at least p% of xs are not above."""
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)] if xs else None


def trial_line(r):
    dup = "%d/%d/%d" % (r["dup_unacked"] + r["dup_ack_in_flight"], r["dup_violating"],
                        r["dup_resend"])
    line = ("trial %3d seed %-10d owner %s sent %5d receipted %5d delivered %5d lost %4d "
            "dup ok/bad/resend %-9s failover %s ms" %
            (r["trial"], r["seed"], r["owner"], r["sent"], r["receipted"], r["delivered"],
             r["lost"], dup, "%.0f" % r["failover_ms"] if r["failover_ms"] is not None else "none"))
    if "resumed_deliveries" in r:
        line += " | after SIGCONT %d (pre-stop %d, both sides %d)" % (
            r["resumed_deliveries"], r["resumed_pre_stop"], r["resumed_both_sides"])
    if r.get("controller_leader") == r["owner"]:
        line += " (the controller's leader)"
    if r["lost_sent_after_fault"]:
        line += " (%d of the lost sent after the fault)" % r["lost_sent_after_fault"]
    if r["corrupt"]:
        line += " CORRUPT %d" % r["corrupt"]
    if r["problems"]:
        line += " PROBLEM " + "; ".join(p for p in r["problems"] if p)[:300]
    return line


def failed(r):
    return r["lost"] or r["dup_violating"] or r["corrupt"]


def notable(r):
    """More than the loss an unreplicated owner's death explains: worth its node logs."""
    return (r["dup_violating"] or r["corrupt"] or r["problems"] or r["lost_sent_after_fault"]
            or any(why.startswith("no RECEIPT") for why in r["closes"]))


def probe_replicas(args):
    """'--queue-replicas R' for the nodes if asked for and the server knows it."""
    if args.replicas is None:
        return [], "not asked (server default)"
    helptext = subprocess.run([args.herald, "--help"], capture_output=True, text=True,
                              timeout=10).stdout
    if "--queue-replicas" not in helptext:
        return [], "asked for %d, but this herald has no --queue-replicas: run without it" % (
            args.replicas)
    return ["--queue-replicas", str(args.replicas)], "--queue-replicas %d" % args.replicas


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, help="run seed (random when not given; always printed)")
    ap.add_argument("--only-trial", type=int, help="replay just trial K of --seed, in a fresh cluster")
    ap.add_argument("--fault", choices=("kill9", "stop"), default="kill9")
    ap.add_argument("--replicas", type=int, help="--queue-replicas R for every node, if herald knows it")
    ap.add_argument("--fresh", action="store_true", help="a new cluster every trial "
                    "(otherwise the killed node is restarted with --join)")
    ap.add_argument("--herald", default=os.environ.get("HERALD_BIN") or str(TOP / "build/core/herald"))
    ap.add_argument("--queue-pick", default=str(TOP / "build/bench/herald-queue-pick"))
    ap.add_argument("--shards", type=int, default=1, help="shards per node")
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--consumers", type=int, default=2)
    ap.add_argument("--owner-consumer", action="store_true",
                    help="also a consumer on the owner (always with --fault stop)")
    ap.add_argument("--rate", type=float, default=100.0, help="SENDs/s per producer")
    ap.add_argument("--window", type=int, default=50, help="SENDs awaiting a RECEIPT per producer")
    ap.add_argument("--body", type=int, default=64, help="body bytes")
    ap.add_argument("--prefetch", type=int, default=20, help="consumers' prefetch-count")
    ap.add_argument("--consume-rate", type=float, default=120.0,
                    help="messages/s the consumers handle (and ACK) all together, split evenly; "
                    "below the producers' total, so the owner holds a backlog and unacked "
                    "deliveries at the fault")
    ap.add_argument("--violating-dups-ok", action="store_true",
                    help="exit 0 despite violating duplicates (still counted and printed): "
                         "CI's check of the guarantee the server keeps today, no receipted "
                         "message lost, while ACKs written after a failover for the dead "
                         "owner's deliveries are not applied yet (docs/replication.md)")
    ap.add_argument("--ack-grace-ms", type=float, default=100.0,
                    help="an ACK written this long before the fault may not have reached the owner")
    ap.add_argument("--receipt-timeout-s", type=float, default=3.0)
    ap.add_argument("--fault-after-min-s", type=float, default=0.8)
    ap.add_argument("--fault-after-max-s", type=float, default=1.6)
    ap.add_argument("--failover-limit-s", type=float, default=10.0,
                    help="longest wait for the first receipted SEND after the fault")
    ap.add_argument("--stop-hold-s", type=float, default=6.0, help="SIGSTOP to SIGCONT")
    ap.add_argument("--after-s", type=float, default=1.0, help="producing after failover (or SIGCONT)")
    ap.add_argument("--settle-s", type=float, default=4.0,
                    help="producers' wait for their last RECEIPTs once told to stop")
    ap.add_argument("--drain-s", type=float, default=5.0)
    ap.add_argument("--idle-s", type=float, default=1.5,
                    help="drain: quiet that ends it while receipted messages are missing")
    ap.add_argument("--mesh-s", type=float, default=10.0, help="bound for three nodes to mesh")
    ap.add_argument("--trial-limit-s", type=float, default=40.0, help="hard limit per trial")
    ap.add_argument("--out", help="results directory (bench/results/<UTC time>-failover when not given)")
    ap.add_argument("--keep-work", action="store_true", help="keep the node logs' temp dir")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    if args.only_trial is not None:
        if not 1 <= args.only_trial <= args.trials:
            ap.error("--only-trial %d is not in 1..--trials %d" % (args.only_trial, args.trials))
        args.fresh = True
    return args


def interrupted(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, interrupted)	# the finally blocks stop the nodes
    ledger_grace[0] = args.ack_grace_ms / 1e3
    cl.HERALD = args.herald
    for path in (args.herald, args.queue_pick):
        if not os.access(path, os.X_OK):
            sys.exit("failover_trials: %s is not an executable (build it, or pass --herald/"
                     "--queue-pick)" % path)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = pathlib.Path(args.out) if args.out else TOP / "bench/results" / (stamp + "-failover")
    work = pathlib.Path(tempfile.mkdtemp(prefix="herald-failover."))
    h = Harness(args, work)
    h.extra, replicas_note = probe_replicas(args)
    commit = subprocess.run(["git", "-C", str(TOP), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    print("failover trials: --seed %d, %s trials, --fault %s, replicas: %s; herald %s (%s); "
          "work dir %s" % (args.seed, args.trials if args.only_trial is None else "1 (replay)",
                           args.fault, replicas_note, args.herald, commit, work))
    master = random.Random(args.seed)
    seeds = [master.randrange(1 << 31) for _ in range(args.trials)]
    todo = [args.only_trial] if args.only_trial is not None else range(1, args.trials + 1)
    records = []
    harness_failures = 0
    started = now()
    victim = None
    try:
        for k in todo:
            trial_seed = seeds[k - 1]
            if h.cluster is None or args.fresh or not h.restore(victim):
                h.fresh(k)
            victim = None
            try:
                r = run_trial(h, k, trial_seed)
                victim = r["owner"]
            except (OSError, AssertionError, subprocess.SubprocessError) as e:
                r = None
                print("trial %3d seed %d: could not run: %s" % (k, trial_seed, str(e)[:300]))
                harness_failures += 1
                h.stop_cluster()
            if r is None:
                continue
            records.append(r)
            if r["problems"]:
                harness_failures += 1
            print(trial_line(r), flush=True)
            if failed(r) or r["problems"]:
                print("  replay: /usr/bin/python3 bench/failover_trials.py --seed %d --trials %d "
                      "--only-trial %d --fault %s%s" % (
                          args.seed, args.trials, k, args.fault,
                          "" if args.replicas is None else " --replicas %d" % args.replicas))
                for v in r["violations"][:2]:
                    print("  violation: %s" % json.dumps(v))
                if notable(r) and sum(1 for x in records if notable(x)) <= LOGS_KEPT or \
                        sum(1 for x in records if failed(x)) == 1:
                    keep_logs(h, out / ("trial-%d-logs" % k))
    except KeyboardInterrupt:
        print("interrupted")
        harness_failures += 1
    finally:
        h.stop_cluster()
        h.close()
    summary = summarize(args, records, harness_failures, now() - started, replicas_note, commit)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"summary": summary, "trials": records}, indent=1))
    print_summary(summary)
    print("results: %s" % out)
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    if summary["lost"] or summary["corrupt"] or (summary["dup_violating"] and
                                                 not args.violating_dups_ok):
        return 1
    return 2 if harness_failures else 0


def keep_logs(h, dest):
    if h.cluster is None:
        return
    dest.mkdir(parents=True, exist_ok=True)
    for f in h.cluster.tmp.glob("*.log"):
        shutil.copy(f, dest / f.name)


def summarize(args, records, harness_failures, elapsed, replicas_note, commit):
    fo = [r["failover_ms"] for r in records if r["failover_ms"] is not None]
    fd = [r["first_delivery_ms"] for r in records if r["first_delivery_ms"] is not None]
    tot = lambda key: sum(r.get(key, 0) for r in records)	# noqa: E731
    s = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
         "commit": commit, "command": " ".join([sys.executable] + sys.argv), "seed": args.seed,
         "fault": args.fault, "replicas": replicas_note, "fresh": args.fresh,
         "trials": len(records), "trials_not_run_or_with_problems": harness_failures,
         "elapsed_s": round(elapsed, 1), "sent": tot("sent"), "receipted": tot("receipted"),
         "delivered": tot("delivered"), "lost": tot("lost"),
         "lost_sent_after_fault": tot("lost_sent_after_fault"),
         "trials_with_loss": sum(1 for r in records if r["lost"]),
         "dup_unacked": tot("dup_unacked"), "dup_ack_in_flight": tot("dup_ack_in_flight"),
         "dup_violating": tot("dup_violating"), "dup_resend": tot("dup_resend"),
         "dup_without_redelivered": tot("dup_without_redelivered"),
         "dup_same_connection": tot("dup_same_connection"), "corrupt": tot("corrupt"),
         "failover_trials": len(fo), "no_failover": len(records) - len(fo)}
    for name, xs in (("failover_ms", fo), ("first_delivery_ms", fd)):
        s[name] = {"p50": percentile(xs, 50), "p99": percentile(xs, 99),
                   "max": max(xs) if xs else None,
                   "mean": round(statistics.mean(xs), 1) if xs else None}
    if args.fault == "stop":
        s["resumed_deliveries"] = tot("resumed_deliveries")
        s["resumed_pre_stop"] = tot("resumed_pre_stop")
        s["resumed_both_sides"] = tot("resumed_both_sides")
        s["dup_violating_after_resume"] = tot("dup_violating_after_resume")
    return s


def print_summary(s):
    print("summary: %d trials (%d not run or with problems) in %.0fs, seed %d, --fault %s, "
          "replicas: %s" % (s["trials"], s["trials_not_run_or_with_problems"], s["elapsed_s"],
                            s["seed"], s["fault"], s["replicas"]))
    print("  sent %d, receipted %d, delivered %d, LOST %d (in %d trials; %d of them first sent "
          "after the fault), corrupt %d" % (s["sent"], s["receipted"], s["delivered"], s["lost"],
                                           s["trials_with_loss"], s["lost_sent_after_fault"],
                                           s["corrupt"]))
    print("  duplicates: %d of unacked deliveries, %d acked in the fault window (allowed), "
          "%d VIOLATING (acked before), %d from resends; of the later copies %d without "
          "redelivered:true, %d to the connection that had the earlier one" % (
              s["dup_unacked"], s["dup_ack_in_flight"], s["dup_violating"], s["dup_resend"],
              s["dup_without_redelivered"], s["dup_same_connection"]))
    for name, what in (("failover_ms", "fault -> first receipted SEND issued after it"),
                       ("first_delivery_ms", "fault -> first delivery of a message sent after it")):
        f = s[name]
        print("  %s: p50 %s ms, p99 %s ms, max %s ms (%d trials, %d with none)" % (
            what, f["p50"], f["p99"], f["max"], s["failover_trials"], s["no_failover"]))
    if "resumed_deliveries" in s:
        print("  after SIGCONT the stopped node's consumer got %d (%d sent before the stop, %d "
              "also delivered by the survivors); %d of the violating duplicates came after "
              "SIGCONT" % (s["resumed_deliveries"], s["resumed_pre_stop"],
                           s["resumed_both_sides"], s["dup_violating_after_resume"]))


if __name__ == "__main__":
    sys.exit(main())
