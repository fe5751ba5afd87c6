/*
 * bench/bench_nats.h - the few NATS client-protocol operations herald-bench needs to drive
 * nats-server with the same workloads, connections and figures as a STOMP broker: CONNECT,
 * SUB, PUB and PING out; MSG, PING, PONG, +OK, -ERR and INFO in (NATS "Client Protocol").
 *
 * Pure: no I/O, no allocation. A PONG is the NATS way to learn that everything sent before
 * its PING was processed, so it stands in for STOMP's CONNECTED and RECEIPT (bench_conn.c).
 */
#ifndef BENCH_NATS_H
#define BENCH_NATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum bench_nats_op {
	BENCH_NATS_MSG = 1,	/* a delivery: payload set */
	BENCH_NATS_PING,	/* the server checks we are alive: answer PONG */
	BENCH_NATS_PONG,	/* everything before our PING was processed */
	BENCH_NATS_OK,		/* +OK (verbose mode only) */
	BENCH_NATS_ERR,		/* -ERR 'reason': arg set */
	BENCH_NATS_INFO,	/* server information, ignored */
};

struct bench_nats_msg {
	enum bench_nats_op op;
	const char *arg;	/* -ERR: the reason; points into the input */
	size_t arg_len;
	const char *payload;	/* MSG: the body; points into the input */
	size_t payload_len;
};

/* Parses one operation from buf[0..len), buf starting at an operation. Returns the bytes
 * consumed (the MSG's payload and its CRLF included); 0 when more input is needed; -1 for
 * input that is not NATS, with *why set. Views in *out point into buf. */
ssize_t bench_nats_parse(const char *buf, size_t len, struct bench_nats_msg *out, const char **why);

/* Each writes one or more operations into out[0..cap) and returns their length, or -1
 * when cap is too small. CONNECT (non-verbose) then PING: */
ssize_t bench_nats_connect(char *out, size_t cap);
/* SUB subject sid, then PING (its PONG says the subscription is in place): */
ssize_t bench_nats_sub(char *out, size_t cap, const char *subject, uint32_t sid);
/* PUB's line for a body of body_len bytes; the body and "\r\n" follow it: */
ssize_t bench_nats_pub_line(char *out, size_t cap, const char *subject, size_t body_len);

#define BENCH_NATS_PING_CMD "PING\r\n"
#define BENCH_NATS_PONG_CMD "PONG\r\n"

#endif
