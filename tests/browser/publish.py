#!/usr/bin/python3
"""
tests/browser/publish.py - the back-end service of the e2e scenario: a stomp.py (Debian's
python3-stomp) client that publishes over STOMP/TCP and waits for the RECEIPT.

usage: /usr/bin/python3 publish.py HOST PORT DEST CONTENT_TYPE BODY_HEX [DEST CONTENT_TYPE BODY_HEX]...
Prints "ok N" after N receipts; exits 1 on an ERROR frame or after 15 s (SIGALRM).
"""

import sys

from stompsvc import connect


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    msgs = sys.argv[3:]
    if not msgs or len(msgs) % 3:
        raise SystemExit(__doc__)
    conn, lis = connect("publish.py", host, port)
    n = 0
    for i in range(0, len(msgs), 3):
        dest, ctype, body = msgs[i], msgs[i + 1], bytes.fromhex(msgs[i + 2])
        rid = "pub-%d" % i
        conn.send(dest, body, content_type=ctype, headers={"receipt": rid})
        lis.wait_receipt(rid)
        n += 1
    conn.disconnect()
    print("ok %d" % n)


if __name__ == "__main__":
    main()
