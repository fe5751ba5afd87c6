/*
 * net/loop_backend.h - what net/loop.c (connections, outbound queues, close and drain, the
 * callbacks) asks of an I/O backend, and what a backend hands back. Two backends implement
 * it: loop_uring.c (io_uring: multishot accept and receive, sendmsg completions) and
 * loop_epoll.c (level-triggered epoll: accept4, recv, sendmsg, for where io_uring is
 * blocked). Only net/ includes this; core sees net/loop.h alone.
 *
 * Thread: the loop's own.
 */
#ifndef NET_LOOP_BACKEND_H
#define NET_LOOP_BACKEND_H

#include "net/loop.h"

#include <sys/socket.h>

/* One sendmsg of a connection's queued output. */
struct net_send_ctx {
	struct net_send_ctx *next;
	struct msghdr msg;
	struct iovec iov[NET_SEND_IOV_MAX];
	/* the last queued entry this sendmsg points into: the kernel may read it until the
	 * completion, so nothing up to it may be released before then */
	struct net_outblock *last_block;
	uint32_t last_index;
	int res;			/* epoll: the sendmsg's result, handed back next turn */
	bool waiting;			/* epoll: blocked (EAGAIN), retried when writable */
};

struct net_backend {
	const char *name;
	int (*init)(struct net_loop *l);
	void (*fini)(struct net_loop *l);
	void (*add_listener)(struct net_loop *l, int idx);
	void (*stop_accepting)(struct net_loop *l);
	int (*watch_eventfd)(struct net_loop *l);
	/* start delivering input of c (sets c->recv_armed); stop (clears it, now or when the
	 * kernel says the receive ended) */
	void (*arm_recv)(struct net_loop *l, struct net_conn *c);
	void (*cancel_recv)(struct net_loop *l, struct net_conn *c);
	/* sends s (filled by net_send_fill) for c; the result comes back through
	 * net_loop_sent, never inside this call */
	void (*start_send)(struct net_loop *l, struct net_conn *c, struct net_send_ctx *s);
	/* waits up to timeout_ms for events and dispatches them; returns how many */
	unsigned (*run_once)(struct net_loop *l, uint32_t timeout_ms);
};

extern const struct net_backend net_backend_uring;
extern const struct net_backend net_backend_epoll;

/* ---- loop.c, for the backends ---- */

/* A listener (index idx) accepted fd: a new connection, offered to the user. */
void net_loop_accepted(struct net_loop *l, int idx, int fd);
/* Bytes arrived on c. */
void net_loop_input(struct net_loop *l, struct net_conn *c, const char *buf, size_t len);
/* c's receive ended: res 0 is the peer's FIN, < 0 an error (-ECANCELED: we stopped it).
 * The backend has cleared c->recv_armed when no receive is left in the kernel. */
void net_loop_recv_ended(struct net_loop *l, struct net_conn *c, int res);
/* A connection whose receive is over may be freed now if nothing else is in flight. */
void net_loop_maybe_free(struct net_loop *l, struct net_conn *c);
/* c's sendmsg finished with res (bytes, or a negative errno). */
void net_loop_sent(struct net_loop *l, struct net_conn *c, int res);
/* Fills s->iov from c's queue (at most NET_SEND_IOV_MAX - 1 entries). */
void net_send_fill(struct net_conn *c, struct net_send_ctx *s);
/* The connection in slot with generation gen, in any state; else NULL. */
struct net_conn *net_loop_conn_any(struct net_loop *l, uint32_t slot, uint32_t gen);

/* Offers plaintext to the user, keeping what it did not consume (the input path after any
 * decryption; counts nothing). */
void net_loop_deliver(struct net_loop *l, struct net_conn *c, const char *buf, size_t len);
/* Puts c on the list of connections to send for at the next flush. */
void net_loop_mark_dirty(struct net_loop *l, struct net_conn *c);
/* Drops `n` bytes of whole entries from the front of c's queue, releasing them. */
void net_loop_out_consume(struct net_loop *l, struct net_conn *c, size_t n);

/* ---- tls.c, for loop.c (a connection with c->tls) ---- */

/* A TLS state for a connection starting now, on the loop's current context: the server
 * side for an accepted one, the client side (is_client) for a dialled one; NULL when the
 * loop has none or OpenSSL failed (the caller refuses the connection). */
struct net_tls *net_tls_create(struct net_loop *l, bool is_client);
/* c's TLS is set up and its user told: a client sends its ClientHello now (a server waits
 * for the peer's). */
void net_tls_start(struct net_loop *l, struct net_conn *c);
void net_tls_destroy(struct net_tls *t);
/* Received ciphertext: handshake or decrypt, plaintext to net_loop_deliver. A failure is
 * logged and closes c after the alert is written. */
void net_tls_input(struct net_loop *l, struct net_conn *c, const char *buf, size_t len);
/* Fills s with ciphertext to write (encrypting queued plaintext first when none is left);
 * false when there is nothing to write yet (handshake under way). */
bool net_tls_fill(struct net_loop *l, struct net_conn *c, struct net_send_ctx *s);
/* n bytes of the send net_tls_fill prepared were written. */
void net_tls_sent(struct net_conn *c, size_t n);
/* Queues close_notify once c's plaintext is all written; true when there is now something
 * more to send before the connection's FIN. */
bool net_tls_close_notify(struct net_loop *l, struct net_conn *c);
/* Handshake not finished by its deadline. */
bool net_tls_handshake_expired(const struct net_conn *c, uint64_t now_ms);
void net_tls_log_timeout(const struct net_conn *c);
/* The handshake is done and no alert or close_notify went out: plaintext can be sent. */
bool net_tls_can_send_plain(const struct net_conn *c);

#endif
