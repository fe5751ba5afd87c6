/*
 * bench/bench_conn.h - one client connection of herald-bench: non-blocking TCP connect
 * (from a chosen 127.0.0.x source address) to its target server, the WebSocket upgrade for
 * ws://, an output buffer flushed with one write(2) per loop pass, and input split into
 * STOMP frames. Over nats:// the NATS operations are handed on as the STOMP frames the
 * worker already handles: MSG as MESSAGE, -ERR as ERROR, the PONG that answers the
 * CONNECT's PING as CONNECTED and any later PONG as RECEIPT (SUB and the closing both end
 * with a PING); the server's PINGs are answered here.
 *
 * Thread: the worker that owns it; nothing here locks. Output is batched: callers append
 * frames with bconn_out_reserve/commit and the worker calls bconn_flush once per pass
 * for connections on its dirty list. Over ws://, every flush wraps what was appended
 * since the last flush in one masked WebSocket frame (RFC 6455 5.3), so the server sees
 * many STOMP frames per WebSocket frame, as it would from a busy browser tab.
 */
#ifndef BENCH_CONN_H
#define BENCH_CONN_H

#include "bench/bench_ws.h"
#include "proto/stomp_parse.h"

#include <stdbool.h>
#include <sys/types.h>
#include <stdint.h>

struct bench_cfg;
struct bench_target;
struct ssl_st;

enum bconn_state {
	BC_IDLE = 0,		/* not started */
	BC_TCP,			/* connect(2) in progress */
	BC_WS_UPGRADE,		/* upgrade request sent, waiting for 101 */
	BC_STOMP_CONNECT,	/* CONNECT sent, waiting for CONNECTED */
	BC_SUBSCRIBING,		/* SUBSCRIBE with receipt sent, waiting for RECEIPT */
	BC_READY,		/* set-up done */
	BC_CLOSING,		/* DISCONNECT with receipt sent */
	BC_DEAD,		/* closed */
};

enum bconn_role { BC_PUB = 0, BC_SUB };

#define BCONN_SCRATCH 256	/* unescaped header bytes of one frame */

struct bconn {
	const struct bench_cfg *cfg;
	const struct bench_target *tgt;	/* the server it connects to */
	int fd;
	struct ssl_st *tls;	/* --tls: the connection's TLS state, after the handshake */
	uint32_t gid;		/* global index: publishers 0..P-1, then subscribers */
	uint32_t idx;		/* index within its role */
	uint8_t role;		/* enum bconn_role */
	uint8_t state;		/* enum bconn_state */
	bool ws;
	bool nats;
	bool out_armed;		/* EPOLLOUT is registered */
	bool dirty;		/* on the worker's flush list */
	bool ws_binary;
	uint8_t mask[4];	/* ws:// masking key */
	/* input: a partial frame carried between reads (STOMP bytes, WS headers removed) */
	char *part;
	uint32_t part_len;
	uint32_t part_cap;
	struct stomp_parser parser;
	char scratch[BCONN_SCRATCH];
	struct bench_wsdec *wsdec;	/* ws:// only */
	char *ws_key;			/* ws:// only, until the 101 */
	/* output: bytes [out_off, out_len) not yet written */
	char *out;
	uint32_t out_off;
	uint32_t out_len;
	uint32_t out_cap;
	uint32_t ws_open;	/* start of the WS frame being filled, or UINT32_MAX */
	struct bconn *dirty_next;
	/* publisher */
	uint64_t seq;		/* last sequence number sent */
	uint32_t next_dest;	/* queues: next user to send to */
	uint64_t sched_ns;	/* latency: scheduled time of the next message */
	/* subscriber */
	uint64_t *last_seq;	/* per publisher: highest sequence number seen */
};

/* A worker's read buffer, shared by all its connections (one read at a time). */
struct bench_rbuf {
	char *buf;
	size_t cap;
	struct stomp_frame frame;
};

/* Prepares c (zeroed storage) for global index gid, connecting to tgt (cfg's). */
void bconn_init(struct bconn *c, const struct bench_cfg *cfg, const struct bench_target *tgt,
		uint32_t gid);

/* Starts connecting to c->tgt from source address 127.0.0.<src_host> (1: the default
 * route) and registers the socket with epfd (data.ptr = c). Returns 0 or a negative errno. */
int bconn_start(struct bconn *c, int epfd, unsigned src_host);

/* Called on EPOLLOUT while c->state is BC_TCP: finishes the connect and queues the
 * upgrade request or CONNECT. Returns 0 or a negative errno (c is then to be killed). */
int bconn_connected(struct bconn *c, const struct bench_cfg *cfg);

/* Queues the CONNECT frame (after TCP connect or the 101). */
void bconn_send_connect(struct bconn *c, const struct bench_cfg *cfg);

/* Room for n more bytes of STOMP output; commit what was written. Over ws:// the bytes
 * become the payload of the frame closed at the next flush. */
char *bconn_out_reserve(struct bconn *c, size_t n);
static inline void bconn_out_commit(struct bconn *c, size_t n)
{
	c->out_len += (uint32_t)n;
}

/* Bytes queued and not yet written. */
static inline uint32_t bconn_out_pending(const struct bconn *c)
{
	return c->out_len - c->out_off;
}

/* True when something waits for bconn_flush (queued bytes or an open WS frame). */
static inline bool bconn_has_output(const struct bconn *c)
{
	return c->out_len != c->out_off || c->ws_open != UINT32_MAX;
}

/* Writes what is queued (one write(2)). Returns 0 when all or part of it went out (the
 * rest waits for EPOLLOUT, armed here), or a negative errno when the connection broke. */
int bconn_flush(struct bconn *c, int epfd);

/* Called for each complete frame; return non-zero to stop reading c (it was killed). */
typedef int (*bconn_frame_fn)(void *arg, struct bconn *c, const struct stomp_frame *f);

/* Reads what the socket holds (a few reads at most) and hands every complete frame to fn.
 * Returns 0, or a negative value with *why set when the connection ended or broke. */
int bconn_read(struct bconn *c, struct bench_rbuf *rb, bconn_frame_fn fn, void *arg,
	       const char **why);

/* Closes the socket and frees the buffers; c->state becomes BC_DEAD. */
void bconn_kill(struct bconn *c);

#endif
