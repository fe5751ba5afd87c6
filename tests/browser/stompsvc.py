"""
tests/browser/stompsvc.py - what the e2e scenario's back-end services (publish.py,
respond.py) share: a stomp.py (Debian's python3-stomp) connection over STOMP/TCP as guest,
a listener that records CONNECTED, RECEIPTs, ERRORs and MESSAGEs, bounded waits, and a hard
15 s cap on the whole process (SIGALRM).
"""

import queue
import signal
import sys
import threading

import stomp

CAP_S = 15


class Listener(stomp.ConnectionListener):
    def __init__(self, name):
        self.name = name
        self.cond = threading.Condition()
        self.connected = False
        self.receipts = set()
        self.errors = []
        self.messages = queue.Queue()	# MESSAGE frames; None after an ERROR

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
        self.messages.put(None)

    def on_message(self, frame):
        # handled on the main thread: waiting for a RECEIPT here would block the receiver
        self.messages.put(frame)

    def wait(self, pred, what, timeout=10):
        with self.cond:
            if not self.cond.wait_for(lambda: pred() or self.errors, timeout):
                raise SystemExit("%s: timed out waiting for %s" % (self.name, what))
            if self.errors:
                raise SystemExit("%s: ERROR frame: %s" % (self.name, self.errors))

    def wait_receipt(self, rid):
        self.wait(lambda: rid in self.receipts, "RECEIPT %s" % rid)


def connect(name, host, port):
    """Caps the process at CAP_S seconds, connects as guest; returns (connection, listener)."""
    signal.signal(signal.SIGALRM, lambda *a: (print("%s: %d s cap" % (name, CAP_S),
                                                    file=sys.stderr),
                                              sys.stderr.flush(), sys.exit(1)))
    signal.alarm(CAP_S)
    conn = stomp.Connection12(host_and_ports=[(host, port)], reconnect_attempts_max=1,
                              auto_content_length=True, vhost="/")
    lis = Listener(name)
    conn.set_listener("e2e", lis)
    conn.connect("guest", "guest", wait=False)
    lis.wait(lambda: lis.connected, "CONNECTED")
    return conn, lis
