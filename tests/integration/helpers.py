"""
tests/integration/helpers.py - stomp.py (Debian's python3-stomp) clients with bounded waits.

stomp.py's own waits (connect(wait=True), disconnect receipts) have no deadline, so this
wrapper never uses them: every wait below polls a Condition with a timeout and fails the
test with what it saw instead of hanging.
"""

import socket
import struct
import threading
import time
import uuid

import stomp

WAIT = 5.0	# default bound for anything expected to happen
QUIET = 0.3	# how long "nothing more arrives" is watched before its sync point
MARKER = "quiet-marker-"	# body prefix of Client.quiet's marker messages


def uid(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class Listener(stomp.ConnectionListener):
    def __init__(self):
        self.cond = threading.Condition()
        self.connected = None
        self.messages = []
        self.errors = []
        self.receipts = []
        self.disconnected = False
        self.heartbeats = 0

    def _add(self, fn):
        with self.cond:
            fn()
            self.cond.notify_all()

    def on_connected(self, frame):
        self._add(lambda: setattr(self, "connected", frame))

    def on_message(self, frame):
        self._add(lambda: self.messages.append(frame))

    def on_error(self, frame):
        self._add(lambda: self.errors.append(frame))

    def on_receipt(self, frame):
        self._add(lambda: self.receipts.append(frame.headers.get("receipt-id")))

    def on_disconnected(self):
        self._add(lambda: setattr(self, "disconnected", True))

    def on_heartbeat(self):
        self._add(lambda: setattr(self, "heartbeats", self.heartbeats + 1))

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.1fs waiting for %s; messages=%s errors=%s "
                                         "receipts=%s disconnected=%s"
                                         % (timeout, what, [summ(m) for m in self.messages],
                                            [summ(e) for e in self.errors], self.receipts,
                                            self.disconnected))
                self.cond.wait(min(left, 0.05))


def summ(frame):
    body = frame.body
    if isinstance(body, bytes):
        body = body[:60]
    elif isinstance(body, str):
        body = body[:60]
    return "%s%r %r" % (frame.cmd, {k: v for k, v in frame.headers.items()
                                    if k not in ("content-length",)}, body)


class ConnectRefused(Exception):
    def __init__(self, error):
        super().__init__("CONNECT refused: %r" % (error.headers if error is not None else None))
        self.error = error


class Client:
    """A stomp.py connection. version: "1.0", "1.1" or "1.2"."""

    def __init__(self, addr, version="1.2", login="guest", passcode="guest", vhost="/",
                 heartbeats=(0, 0), headers=None, connect=True, timeout=WAIT,
                 receive_scale=1.5):
        self.version = version
        self.listener = Listener()
        # No socket timeout: stomp.py applies it to every recv and treats an idle period as
        # a dead connection. Connecting on loopback never blocks long anyway.
        kw = dict(host_and_ports=[addr], reconnect_attempts_max=1, auto_content_length=True)
        if version == "1.0":
            self.conn = stomp.Connection10(**kw)
        elif version == "1.1":
            self.conn = stomp.Connection11(heartbeats=heartbeats, vhost=vhost,
                                           heart_beat_receive_scale=receive_scale, **kw)
        else:
            self.conn = stomp.Connection12(heartbeats=heartbeats, vhost=vhost,
                                           heart_beat_receive_scale=receive_scale, **kw)
        self.conn.set_listener("t", self.listener)
        self.login, self.passcode, self.headers = login, passcode, headers or {}
        self.subs = {}
        self.ack_modes = {}
        if connect:
            self.connect()

    # --- session --------------------------------------------------------------

    def connect(self, timeout=WAIT):
        """Sends CONNECT (stomp.py 1.1/1.2 send STOMP) and waits for CONNECTED or ERROR."""
        self.conn.connect(self.login, self.passcode, wait=False, headers=dict(self.headers))
        L = self.listener
        L.wait_for(lambda: L.connected is not None or L.errors or L.disconnected, timeout,
                   "CONNECTED")
        if L.connected is None:
            raise ConnectRefused(L.errors[0] if L.errors else None)
        return L.connected

    @property
    def messages(self):
        return self.listener.messages

    @property
    def errors(self):
        return self.listener.errors

    def sock(self):
        return self.conn.transport.socket

    def kill(self, rst=False):
        """Drops the TCP connection without DISCONNECT (FIN, or RST when rst=True)."""
        t = self.conn.transport
        t.running = False
        s = getattr(t, "socket", None)
        if s is None:
            return
        # shutdown wakes stomp.py's receiver thread, which is blocked in recv() and holds the
        # socket open in the kernel; only then does close() really release it. With
        # SO_LINGER 0 that final release sends RST instead of FIN.
        try:
            if rst:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RD)
            else:
                s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass

    def disconnect(self, timeout=WAIT):
        """DISCONNECT with a receipt; waits for the RECEIPT and for the server to close."""
        rid = uid("disc")
        self.conn.send_frame("DISCONNECT", {"receipt": rid})
        self.wait_receipt(rid, timeout)
        self.listener.wait_for(lambda: self.listener.disconnected, timeout,
                               "connection close after DISCONNECT receipt")

    # --- frames ---------------------------------------------------------------

    def wait_receipt(self, rid, timeout=WAIT):
        L = self.listener
        L.wait_for(lambda: rid in L.receipts, timeout, "RECEIPT %s" % rid)

    def subscribe(self, dest, ack="auto", id=None, receipt=True, headers=None):
        sid = id or uid("sub")
        h = dict(headers or {})
        rid = None
        if receipt:
            rid = uid("r")
            h["receipt"] = rid
        if self.version == "1.0":
            h["id"] = sid
            self.conn.subscribe(dest, ack=ack, headers=h)
        else:
            self.conn.subscribe(dest, sid, ack=ack, headers=h)
        if rid:
            self.wait_receipt(rid)
        self.subs[sid] = dest
        self.ack_modes[sid] = ack
        return sid

    def unsubscribe(self, sid, receipt=True):
        h = {}
        rid = None
        if receipt:
            rid = uid("r")
            h["receipt"] = rid
        if self.version == "1.0":
            self.conn.unsubscribe(destination=self.subs.get(sid), id=sid, headers=h)
        else:
            self.conn.unsubscribe(sid, headers=h)
        if rid:
            self.wait_receipt(rid)

    def send(self, dest, body, receipt=False, headers=None, **kw):
        h = dict(headers or {})
        rid = None
        if receipt:
            rid = uid("r")
            h["receipt"] = rid
        self.conn.send(dest, body, headers=h, **kw)
        if rid:
            self.wait_receipt(rid)
        return rid

    def send_many(self, dest, bodies, headers=None):
        """Sends each body; a receipt on the last one proves all were taken in."""
        bodies = list(bodies)
        for b in bodies[:-1]:
            self.send(dest, b, headers=headers)
        if bodies:
            self.send(dest, bodies[-1], receipt=True, headers=headers)

    def ack(self, msg, transaction=None, receipt=None):
        h = msg.headers
        if self.version == "1.2":
            self.conn.ack(h["ack"], transaction=transaction, receipt=receipt)
        elif self.version == "1.1":
            self.conn.ack(h["message-id"], h["subscription"], transaction=transaction,
                          receipt=receipt)
        else:
            self.conn.ack(h["message-id"], transaction=transaction, receipt=receipt)
        if receipt:
            self.wait_receipt(receipt)

    def nack(self, msg, transaction=None, receipt=None, **extra):
        h = msg.headers
        if self.version == "1.2":
            self.conn.nack(h["ack"], transaction=transaction, receipt=receipt, **extra)
        else:
            self.conn.nack(h["message-id"], h["subscription"], transaction=transaction,
                           receipt=receipt, **extra)
        if receipt:
            self.wait_receipt(receipt)

    # --- waiting --------------------------------------------------------------

    def wait_messages(self, n, timeout=WAIT):
        """Waits until at least n MESSAGE frames arrived; returns the first n."""
        L = self.listener
        L.wait_for(lambda: len(L.messages) >= n, timeout, "%d messages" % n)
        return list(L.messages[:n])

    def wait_error(self, timeout=WAIT):
        L = self.listener
        L.wait_for(lambda: L.errors, timeout, "an ERROR frame")
        return L.errors[0]

    def wait_disconnected(self, timeout=WAIT):
        L = self.listener
        L.wait_for(lambda: L.disconnected, timeout, "the server to close the connection")

    def quiet(self, n, period=QUIET, marker=None):
        """Asserts that exactly n messages arrived and that no more come.

        Watching for a while proves little on its own (a redelivery or a message from
        another shard may just be late), so the watch ends with a sync point, and whatever
        the server was going to deliver before it must have arrived by then:

        marker=(client, dest) or (client, dest, copies): after period, `client` SENDs a
          marker message to `dest`, which must reach this client behind anything already on
          its way here: the same queue with this client its only consumer (requeued messages
          go ahead of newer ones; FIFO), or the same topic from the same publisher as the
          messages in question (one publisher's order holds per subscriber). copies: how
          many subscriptions of this client get it (default 1). The marker is waited for,
          ACKed on a client-individual subscription, and removed from .messages, as are
          other clients' markers this one received (a topic's other subscribers). Not for a
          subscription whose prefetch window is full (the marker could not come) or in
          `client` mode (its ACK would acknowledge everything before it).
        marker=None: a RECEIPT on this connection (BEGIN/ABORT of a throwaway
          transaction): whatever the server had queued for this connection before reading
          that frame arrives first. That covers the connection's own shard only, so pass a
          marker wherever one can come.
        """
        time.sleep(period)
        L = self.listener
        if marker is None:
            if L.disconnected:	# closed: nothing more can come
                return self._assert_count(n)
            tx = uid("quiet-tx")
            rid = uid("quiet")
            self.conn.begin(transaction=tx)
            self.conn.abort(tx, headers={"receipt": rid})
            self.wait_receipt(rid)
        else:
            pub, dest = marker[0], marker[1]
            copies = marker[2] if len(marker) > 2 else 1
            body = MARKER + uid("m")
            pub.send(dest, body, receipt=True)
            L.wait_for(lambda: sum(1 for m in L.messages if m.body == body) >= copies, WAIT,
                       "%d cop%s of the marker %s sent to %s after the quiet period"
                       % (copies, "y" if copies == 1 else "ies", body, dest))
            with L.cond:
                marks = [m for m in L.messages if is_marker(m)]
                L.messages[:] = [m for m in L.messages if not is_marker(m)]
            for m in marks:
                mode = self.ack_modes.get(m.headers.get("subscription"), "auto")
                assert mode != "client", "a marker on a client-mode subscription: %s" % summ(m)
                if mode == "client-individual":
                    self.ack(m)
        self._assert_count(n)

    def _assert_count(self, n):
        got = self.listener.messages
        assert len(got) == n, "expected %d messages, got %d: %s" % (n, len(got),
                                                                    [summ(m) for m in got])

    def bodies(self):
        return [m.body for m in self.listener.messages]


def is_marker(m):
    return isinstance(m.body, str) and m.body.startswith(MARKER)


def assert_server_works(addr, version="1.2"):
    """A fresh client can connect, subscribe, send and receive: nothing was disturbed."""
    c = Client(addr, version=version)
    try:
        q = "/queue/" + uid("alive")
        c.subscribe(q)
        c.send(q, "still-alive", receipt=True)
        msgs = c.wait_messages(1)
        assert msgs[0].body == "still-alive"
    finally:
        c.kill()
