#!/usr/bin/python3
"""
tests/browser/publish.py - the back-end service of the e2e scenario: a stomp.py (Debian's
python3-stomp) client that publishes over STOMP/TCP and waits for the RECEIPT.

usage: /usr/bin/python3 publish.py HOST PORT DEST CONTENT_TYPE BODY_HEX [DEST CONTENT_TYPE BODY_HEX]...
Prints "ok N" after N receipts; exits 1 on an ERROR frame or after 15 s (SIGALRM).
"""

import signal
import sys
import threading

import stomp


class Listener(stomp.ConnectionListener):
    def __init__(self):
        self.cond = threading.Condition()
        self.connected = False
        self.receipts = set()
        self.errors = []

    def on_connected(self, frame):
        with self.cond:
            self.connected = True
            self.cond.notify_all()

    def on_receipt(self, frame):
        with self.cond:
            self.receipts.add(frame.headers.get("receipt-id"))
            self.cond.notify_all()

    def on_error(self, frame):
        with self.cond:
            self.errors.append("%s %s" % (frame.headers.get("message"), frame.body))
            self.cond.notify_all()

    def wait(self, pred, what, timeout=10):
        with self.cond:
            if not self.cond.wait_for(lambda: pred() or self.errors, timeout):
                raise SystemExit("publish.py: timed out waiting for %s" % what)
            if self.errors:
                raise SystemExit("publish.py: ERROR frame: %s" % self.errors)


def main():
    signal.signal(signal.SIGALRM, lambda *a: (print("publish.py: 15 s cap", file=sys.stderr),
                                              sys.stderr.flush(), sys.exit(1)))
    signal.alarm(15)
    host, port = sys.argv[1], int(sys.argv[2])
    msgs = sys.argv[3:]
    if not msgs or len(msgs) % 3:
        raise SystemExit(__doc__)
    conn = stomp.Connection12(host_and_ports=[(host, port)], reconnect_attempts_max=1,
                              auto_content_length=True, vhost="/")
    lis = Listener()
    conn.set_listener("e2e", lis)
    conn.connect("guest", "guest", wait=False)
    lis.wait(lambda: lis.connected, "CONNECTED")
    n = 0
    for i in range(0, len(msgs), 3):
        dest, ctype, body = msgs[i], msgs[i + 1], bytes.fromhex(msgs[i + 2])
        rid = "pub-%d" % i
        conn.send(dest, body, content_type=ctype, headers={"receipt": rid})
        lis.wait(lambda: rid in lis.receipts, "RECEIPT %s" % rid)
        n += 1
    conn.disconnect()
    print("ok %d" % n)


if __name__ == "__main__":
    main()
