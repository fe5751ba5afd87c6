"""
tests/cluster/netns_stomp.py - the STOMP client partition_netns.sh runs inside a node's
network namespace (raw sockets, Debian's python3, no modules beyond the standard library).

  netns_stomp.py sub PORT DEST OUTFILE SECONDS   subscribe, append each body to OUTFILE
  netns_stomp.py send PORT DEST COUNT PREFIX [RECEIPTED_FILE [SECONDS]]
                                                 receipted SENDs; prints how many got one
                                                 (their bodies appended to RECEIPTED_FILE);
                                                 an ERROR ends it (a node that cannot
                                                 replicate the queue refuses)
  netns_stomp.py drain PORT DEST SECONDS         consume a queue (client-individual, ACKs);
                                                 prints the bodies received, one per line
Every client connects to 127.0.0.1:PORT as guest (loopback) and stops by its deadline.
"""
import socket
import sys
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0")
    return s, [b""]


def frames(s, buf, deadline):
    """Yields frames until the deadline."""
    while time.time() < deadline:
        while b"\0" in buf[0]:
            f, buf[0] = buf[0].split(b"\0", 1)
            f = f.lstrip(b"\r\n")
            if f:
                yield f
        s.settimeout(max(0.01, min(0.5, deadline - time.time())))
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        if not d:
            return
        buf[0] += d


def body(f):
    return f.split(b"\n\n", 1)[1]


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    s, buf = connect(port)
    if cmd == "sub":
        dest, out, secs = sys.argv[3], sys.argv[4], float(sys.argv[5])
        s.sendall(b"SUBSCRIBE\ndestination:%s\nid:1\nreceipt:ready\n\n\0" % dest.encode())
        with open(out, "ab", buffering=0) as o:
            for f in frames(s, buf, time.time() + secs):
                if f.startswith(b"RECEIPT"):
                    o.write(b"READY\n")
                elif f.startswith(b"MESSAGE"):
                    o.write(body(f) + b"\n")
    elif cmd == "send":
        dest, n, prefix = sys.argv[3], int(sys.argv[4]), sys.argv[5]
        out = open(sys.argv[6], "a") if len(sys.argv) > 6 else None
        secs = float(sys.argv[7]) if len(sys.argv) > 7 else 10.0
        for i in range(n):
            s.sendall(b"SEND\ndestination:%s\nreceipt:%d\n\n%s-%d\0" % (dest.encode(), i, prefix.encode(), i))
        got = 0
        for f in frames(s, buf, time.time() + secs):
            if f.startswith(b"ERROR"):
                break
            if f.startswith(b"RECEIPT"):
                got += 1
                rid = [l for l in f.split(b"\n") if l.startswith(b"receipt-id:")][0][11:]
                if out:
                    out.write("%s-%s\n" % (prefix, rid.decode()))
            if got == n:
                break
        if out:
            out.close()
        print(got)
    elif cmd == "drain":
        dest, secs = sys.argv[3], float(sys.argv[4])
        s.sendall(b"SUBSCRIBE\ndestination:%s\nid:1\nack:client-individual\n\n\0" % dest.encode())
        for f in frames(s, buf, time.time() + secs):
            if f.startswith(b"MESSAGE"):
                ack = [l for l in f.split(b"\n\n")[0].split(b"\n") if l.startswith(b"ack:")][0][4:]
                s.sendall(b"ACK\nid:%s\n\n\0" % ack)
                print(body(f).decode())
    s.close()


if __name__ == "__main__":
    main()
