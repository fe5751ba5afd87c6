/*
 * bench/bench_ws.h - the client side of STOMP over WebSocket (RFC 6455) for herald-bench:
 * the upgrade request (subprotocol v12.stomp), the check of the server's 101, and a
 * decoder for server frames (unmasked, 5.1) that turns them back into the STOMP byte
 * stream in place. Client frames are written with proto/ws_frame.h (masked).
 * Pure: no I/O, no allocation. One decoder per connection, used by its worker thread.
 */
#ifndef BENCH_WS_H
#define BENCH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_WS_KEY_LEN 24	/* base64 of 16 bytes */

/* Writes the GET upgrade request for path on host:port asking for v12.stomp, with key
 * (BENCH_WS_KEY_LEN base64 chars). Returns bytes written or -ENOSPC. */
ssize_t bench_ws_request(char *out, size_t cap, const char *host, unsigned port, const char *path,
			 const char *key);

/* Writes a fresh random key (base64 of 16 random bytes, NUL-terminated) into key. */
void bench_ws_make_key(char key[BENCH_WS_KEY_LEN + 1], uint64_t seed);

/* Checks the response head at buf[0..len). Returns the head's length (through the blank
 * line) when it is a 101 whose Sec-WebSocket-Accept matches key; 0 when the head is not
 * complete yet; -1 with *why set when the server refused or answered wrongly. */
ssize_t bench_ws_response(const char *buf, size_t len, const char *key, const char **why);

/* Control frames seen by bench_ws_strip, as bits. */
#define BENCH_WS_EV_PING 1u	/* d->ctl[0..ctl_len) holds the payload to pong */
#define BENCH_WS_EV_CLOSE 2u	/* the server closed the WebSocket */

struct bench_wsdec {
	uint8_t hdr[10];	/* a server header is at most 10 bytes (no mask) */
	uint8_t hdr_len;	/* bytes of it gathered */
	uint8_t opcode;		/* of the frame being read */
	bool in_payload;	/* header done, payload bytes follow */
	uint8_t ctl_len;
	uint64_t remaining;	/* payload bytes of the current frame not seen yet */
	uint8_t ctl[125];
};

void bench_wsdec_init(struct bench_wsdec *d);

/* Removes frame headers from buf[0..len) in place, keeping the payload bytes of data frames
 * (text, binary, continuation) in order at the front of buf: that is the STOMP stream.
 * Control frames are consumed and reported through *events. Returns the payload bytes
 * kept (<= len), or -1 when the server sent a masked or malformed frame. */
ssize_t bench_ws_strip(struct bench_wsdec *d, uint8_t *buf, size_t len, unsigned *events);

#endif
