#!/usr/bin/python3
"""
tests/browser/respond.py - the request/reply service of the e2e scenario: a stomp.py (Debian's
python3-stomp) client that subscribes to a service queue and answers each request at its
`reply-to`, the way a RabbitMQ RPC server does.

usage: /usr/bin/python3 respond.py HOST PORT SERVICE_DEST VIA [VIA]...
One VIA per request to answer, in order:
  verbatim  reply to the request's reply-to exactly as received (/reply-queue/amq.gen-...)
  amq       reply to /amq/queue/<the queue named in that reply-to>
The reply's body is "pong: " + the request's body; correlation-id is copied back.
Prints "ready" once its SUBSCRIBE has its RECEIPT, then one JSON line per request answered
({"reply_to", "sent_to", "body", "destination"}) once the reply has its RECEIPT, then "ok N".
Exits 1 on an ERROR frame or after 15 s (SIGALRM).
"""

import json
import queue
import sys

from stompsvc import connect


def main():
    if len(sys.argv) < 5 or any(v not in ("verbatim", "amq") for v in sys.argv[4:]):
        raise SystemExit(__doc__)
    host, port, service, vias = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    conn, lis = connect("respond.py", host, port)
    conn.subscribe(service, id="svc", ack="auto", headers={"receipt": "sub"})
    lis.wait_receipt("sub")
    print("ready", flush=True)
    for n, via in enumerate(vias):
        try:
            frame = lis.messages.get(timeout=10)
        except queue.Empty:
            raise SystemExit("respond.py: no request %d in 10 s" % (n + 1))
        if frame is None:
            raise SystemExit("respond.py: ERROR frame: %s" % lis.errors)
        reply_to = frame.headers.get("reply-to", "")
        if via == "verbatim":
            dest = reply_to
        else:
            prefix = "/reply-queue/"
            if not reply_to.startswith(prefix):
                raise SystemExit("respond.py: reply-to %r is not %s..." % (reply_to, prefix))
            dest = "/amq/queue/" + reply_to[len(prefix):]
        body = frame.body if isinstance(frame.body, str) else frame.body.decode("utf-8")
        rid = "reply-%d" % n
        headers = {"receipt": rid}
        if "correlation-id" in frame.headers:
            headers["correlation-id"] = frame.headers["correlation-id"]
        conn.send(dest, "pong: " + body, content_type="text/plain", headers=headers)
        lis.wait_receipt(rid)
        print(json.dumps({"reply_to": reply_to, "sent_to": dest, "body": body,
                          "destination": frame.headers.get("destination")}), flush=True)
    conn.disconnect()
    print("ok %d" % len(vias), flush=True)


if __name__ == "__main__":
    main()
