"""
bench/repl_check.py - the correctness step of bench/replication.sh: messages held in
queues, then consumed (raw sockets, the standard library only; Debian's python3).

  repl_check.py hold PORT QUEUEFILE QUEUES COUNT   COUNT receipted SENDs to each of the
      first QUEUES destinations of QUEUEFILE, one at a time (each waits for its RECEIPT, 5 s
      at most); prints JSON: sent, receipted, errors, receipt round trip p50/p99/max in ms
  repl_check.py drain PORT QUEUEFILE QUEUES COUNT SECONDS   subscribes to the same
      destinations (client-individual, every MESSAGE acked) until every expected body came
      or SECONDS passed; prints JSON: expected, received, missing, duplicates, redelivered

Connects to 127.0.0.1:PORT as guest. Every wait is bounded.
"""
import json
import socket
import sys
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0")
    return s


class Frames:
    """Frames read from s, one at a time, each before a deadline."""

    def __init__(self, s):
        self.s, self.buf = s, b""

    def next(self, deadline):
        while time.time() < deadline:
            if b"\0" in self.buf:
                f, self.buf = self.buf.split(b"\0", 1)
                f = f.lstrip(b"\r\n")
                if f:
                    return f
                continue
            self.s.settimeout(max(0.01, min(0.5, deadline - time.time())))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                continue
            if not d:
                return None
            self.buf += d
        return None


def header(f, name):
    for line in f.split(b"\n\n", 1)[0].split(b"\n")[1:]:
        k, _, v = line.partition(b":")
        if k == name:
            return v
    return None


def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 3) if xs else None


def hold(port, dests, count):
    s = connect(port)
    fr = Frames(s)
    fr.next(time.time() + 5)    # CONNECTED
    rtt, errors, first_error, sent = [], 0, None, 0
    for d in dests:
        for i in range(count):
            t0 = time.perf_counter()
            s.sendall(b"SEND\ndestination:%s\nreceipt:%d\n\n%s#%d\0" % (d, sent, d, i))
            sent += 1
            f = fr.next(time.time() + 5)
            if f and f.startswith(b"RECEIPT"):
                rtt.append((time.perf_counter() - t0) * 1e3)
            else:
                errors += 1
                first_error = first_error or (f or b"timeout")[:200].decode(errors="replace")
    s.close()
    return {"sent": sent, "receipted": len(rtt), "errors": errors, "first_error": first_error,
            "receipt_ms": {"p50": pct(rtt, 0.5), "p99": pct(rtt, 0.99),
                           "max": round(max(rtt), 3) if rtt else None}}


def drain(port, dests, count, secs):
    s = connect(port)
    fr = Frames(s)
    fr.next(time.time() + 5)
    for n, d in enumerate(dests):
        s.sendall(b"SUBSCRIBE\ndestination:%s\nid:%d\nack:client-individual\n\n\0" % (d, n))
    want = {b"%s#%d" % (d, i) for d in dests for i in range(count)}
    seen, dups, redelivered, deadline = set(), 0, 0, time.time() + secs
    while len(seen) < len(want):
        f = fr.next(deadline)
        if f is None:
            break
        if not f.startswith(b"MESSAGE"):
            continue
        body = f.split(b"\n\n", 1)[1]
        dups += body in seen
        seen.add(body)
        redelivered += header(f, b"redelivered") == b"true"
        s.sendall(b"ACK\nid:%s\n\n\0" % header(f, b"ack"))
    s.sendall(b"DISCONNECT\nreceipt:bye\n\n\0")
    fr.next(time.time() + 2)
    s.close()
    return {"expected": len(want), "received": len(seen & want), "missing": len(want - seen),
            "unexpected": len(seen - want), "duplicates": dups, "redelivered": redelivered}


def main():
    cmd, port, qfile, nq, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    dests = [l.strip().encode() for l in open(qfile) if l.strip()][:nq]
    if cmd == "hold":
        r = hold(port, dests, count)
    else:
        r = drain(port, dests, count, float(sys.argv[6]))
    print(json.dumps(r))


main()
