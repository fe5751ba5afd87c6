/*
 * net/loop.h - one I/O loop per thread: listeners, connections (input offered to the user,
 * output as queued iovecs sent in one sendmsg per connection per turn), an eventfd for
 * cross-thread wake-ups. Two backends behind one interface, chosen at init: io_uring
 * (multishot accept and recv into a provided buffer ring) and epoll (for where io_uring is
 * blocked: containers' seccomp profiles, kernel.io_uring_disabled). Knows no STOMP, no
 * WebSocket, no destinations: bytes go up through the callback table it was given, bytes
 * come down through net_conn_out_*.
 *
 * Threading: a loop and all its connections belong to the thread that created the loop;
 * every function here must be called on that thread.
 */
#ifndef NET_LOOP_H
#define NET_LOOP_H

#include "core/base/hd_compiler.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define NET_OUT_HEAD_CAP 104	/* inline bytes per queued write (per-subscriber head) */
#define NET_OUTBLOCK_N 15	/* queued writes per block: a block is ~2 KiB */
#define NET_SEND_IOV_MAX 128	/* iovecs in one sendmsg */
#define NET_BLOCK_POOL_MAX 1024	/* spare outbound blocks a loop keeps (~2 MiB) */

/* One queued write: an inline head (copied) and an optional tail that is NOT copied; the
 * tail's owner is told through release(release_arg) once it was written or dropped. */
struct net_out {
	uint16_t head_len;
	uint16_t flags;		/* NET_OUT_* */
	uint32_t tail_len;
	const char *tail;
	void (*release)(void *arg);
	void *release_arg;
	char head[NET_OUT_HEAD_CAP];
};

/* net_out.flags */
enum {
	/* the next entry belongs to the same message (a head queued apart from its tail):
	 * net_conn_drop_unsent never cuts between the two */
	NET_OUT_CONTINUES = 1,
};

struct net_outblock {
	struct net_outblock *next;
	uint32_t rd;		/* next entry to send */
	uint32_t wr;		/* next entry to fill */
	struct net_out e[NET_OUTBLOCK_N];
};

enum net_conn_state {
	NET_CONN_OPEN = 0,
	NET_CONN_DRAINING,	/* no more reading; close once the queue is written */
	NET_CONN_CLOSING,	/* closed for the user; waiting for in-flight ops */
};

struct net_send_ctx;
struct net_tls;
struct net_tls_ctx;

struct net_conn {
	int fd;
	uint32_t slot;
	uint32_t gen;		/* bumped when the slot is reused */
	uint64_t id;		/* process-unique, for logs */
	uint8_t kind;		/* listener kind it came from */
	uint8_t state;		/* enum net_conn_state */
	bool recv_armed;
	bool recv_paused;	/* user asked to stop reading */
	bool dirty;		/* on the loop's pending-flush list */
	bool peer_closed;
	uint32_t poll_events;	/* epoll: events registered for fd; 0: not registered */
	uint32_t close_deadline_ms;	/* draining/lingering: hard close after this (ms clock) */
	uint32_t drain_limit_ms;	/* draining: no later than this, however it progresses */
	uint64_t drain_acked;		/* draining: bytes the peer had acknowledged at the last look */
	uint64_t rx_total;		/* bytes received on it */
	uint64_t tx_total;		/* bytes written to it */
	struct sockaddr_in peer;
	/* partial input kept between receives (only a partial frame is copied here) */
	char *rx;
	uint32_t rx_len;
	uint32_t rx_cap;
	/* outbound queue, in blocks that never move while the kernel reads them */
	struct net_outblock *out_head;
	struct net_outblock *out_tail;
	uint32_t out_head_off;	/* bytes of out_head->e[rd] already written */
	uint64_t out_bytes;	/* queued, not yet written */
	struct net_send_ctx *send;	/* in-flight sendmsg, or NULL */
	struct net_tls *tls;		/* TLS state (net/tls.h); NULL: plain TCP */
	struct net_conn *dirty_next;
	void *user;		/* the layer above (a session) */
};

struct net_loop;

struct net_callbacks {
	/* A new connection from listener `kind`. The user sets c->user. */
	void (*on_accept)(void *ctx, struct net_conn *c);
	/* Bytes arrived (buf is valid only during the call). Returns bytes consumed; the
	 * rest is kept and offered again, prefixed, with the next bytes. */
	size_t (*on_data)(void *ctx, struct net_conn *c, const char *buf, size_t len);
	/* The connection is gone for the user (peer closed, error, or net_conn_close). Called
	 * once; the user must drop c->user and never touch c again. */
	void (*on_close)(void *ctx, struct net_conn *c);
	/* The outbound queue of c fell to zero after being above the user's mark. */
	void (*on_drain)(void *ctx, struct net_conn *c);
	/* The peer finished sending (FIN) while c is open. Returns true to keep c open for
	 * writing (the user closes it once it has written what it owes), false (or no
	 * callback) to close it now. */
	bool (*on_eof)(void *ctx, struct net_conn *c);
	/* The loop's eventfd fired (another thread pushed work). */
	void (*on_wake)(void *ctx);
};

/* The I/O backend a loop runs on. */
enum net_io {
	NET_IO_URING = 0,
	NET_IO_EPOLL = 1,
};

struct net_loop_config {
	enum net_io io;
	uint32_t ring_entries;		/* io_uring: SQ size */
	uint32_t buf_count;		/* provided receive buffers, power of two */
	uint32_t buf_size;		/* bytes each */
	uint32_t max_rx_partial;	/* cap on a kept partial input (bigger: close) */
	uint32_t tls_handshake_ms;	/* TLS connections: time to finish the handshake
					 * (0: NET_TLS_HANDSHAKE_MS) */
};

struct net_backend;
struct net_uring;
struct net_epoll;

struct net_loop {
	const struct net_backend *be;	/* io_uring or epoll */
	union {				/* the backend's own state */
		struct net_uring *uring;
		struct net_epoll *epoll;
	};
	struct net_callbacks cb;
	void *ctx;
	struct net_loop_config cfg;
	/* connections by slot */
	struct net_conn **conns;
	uint32_t nconns_cap;
	uint32_t *free_slots;
	uint32_t nfree;
	uint32_t nopen;			/* connections not yet freed */
	uint64_t next_id;
	uint64_t bytes_in;		/* received and offered to the user (counters for /metrics) */
	uint64_t bytes_out;		/* written by sendmsg */
	struct net_conn *dirty;		/* pending-flush list */
	struct net_send_ctx *send_pool;
	struct net_outblock *block_pool;	/* spare outbound blocks, at most NET_BLOCK_POOL_MAX */
	uint32_t nblock_pool;
	/* listeners */
	int listen_fd[8];
	uint8_t listen_kind[8];
	bool listen_tls[8];		/* its connections run TLS (net/tls.h) */
	int nlisten;
	bool accepting;
	/* TLS: the context new TLS connections get (NULL: they are refused), and a record-sized
	 * scratch buffer for decrypted input and gathered output */
	struct net_tls_ctx *tls_ctx;
	char *tls_scratch;
	/* wake-up */
	int eventfd;
	uint64_t now_ms;		/* monotonic clock read when the last wait returned */
};

/* Sets up the loop on the backend cfg->io names (io_uring: the ring and its buffer ring;
 * epoll: the epoll instance). Returns 0 or a negative errno. */
HD_MUST_CHECK int net_loop_init(struct net_loop *l, const struct net_loop_config *cfg,
				const struct net_callbacks *cb, void *ctx);
/* "io_uring" or "epoll". */
const char *net_loop_backend_name(const struct net_loop *l);
/* 0 when this process may use io_uring (a small ring can be set up), else the negative
 * errno io_uring_setup gave (-EPERM: seccomp or kernel.io_uring_disabled; -ENOSYS: a kernel
 * without it). Any thread. */
int net_io_uring_probe(void);
void net_loop_fini(struct net_loop *l);

/* Starts multishot accept on a listening socket; connections get c->kind = kind. */
HD_MUST_CHECK int net_loop_add_listener(struct net_loop *l, int fd, uint8_t kind);
/* As net_loop_add_listener, for connections that run TLS under the user (net/tls.h) with
 * the context net_loop_set_tls_ctx gave. */
HD_MUST_CHECK int net_loop_add_tls_listener(struct net_loop *l, int fd, uint8_t kind);
/* The context TLS connections accepted or adopted from now on get; takes a reference and
 * drops the previous one (connections keep theirs). */
void net_loop_set_tls_ctx(struct net_loop *l, struct net_tls_ctx *ctx);
/* Takes a connected non-blocking socket (a finished outbound connect) as if a listener had
 * accepted it: on_accept runs with c->kind = kind, then input is delivered. */
void net_loop_adopt(struct net_loop *l, int fd, uint8_t kind);
/* As net_loop_adopt, for a connection that runs TLS as the client (net/tls.h) with the
 * context net_loop_set_tls_ctx gave: the handshake starts once on_accept returned (what
 * the user queued meanwhile waits for it). Returns 0, or -ENOMEM when no TLS state could
 * be made (no context, OpenSSL out of memory): the socket is closed then and on_accept
 * never runs. */
HD_MUST_CHECK int net_loop_adopt_tls(struct net_loop *l, int fd, uint8_t kind);
/* Stops accepting (cancels the accepts, closes the listening sockets). */
void net_loop_stop_accepting(struct net_loop *l);

/* Watches an eventfd; on_wake fires each time it is written. */
HD_MUST_CHECK int net_loop_watch_eventfd(struct net_loop *l, int efd);

/* Submits what is queued (sends included: call net_loop_flush first) and waits up to
 * timeout_ms (0 = don't wait) for completions, then dispatches them to the callbacks.
 * Returns how many completions it dispatched. */
unsigned net_loop_run_once(struct net_loop *l, uint32_t timeout_ms);

/* Starts a sendmsg for every connection written since the last flush. */
void net_loop_flush(struct net_loop *l);

/* Returns an entry at the end of c's outbound queue for the caller to fill (head_len,
 * head bytes, tail, release), then net_conn_out_commit. */
struct net_out *net_conn_out_reserve(struct net_loop *l, struct net_conn *c);
void net_conn_out_commit(struct net_loop *l, struct net_conn *c, struct net_out *o);
/* Queues a copy of `len` bytes as one entry; returns it (its flags may still be set) until
 * the next entry is reserved. */
struct net_out *net_conn_write_copy(struct net_loop *l, struct net_conn *c, const char *buf,
				    size_t len);

/* Drops c's queued output that the kernel has not started on, at an entry boundary: the
 * entry being written (and those an in-flight sendmsg holds, and any entry continuing one
 * of them) stay, so the peer never sees half a message; what is queued next is the next
 * thing it reads. For telling a peer that fell too far behind why it is being closed. */
void net_conn_drop_unsent(struct net_loop *l, struct net_conn *c);

/* Stops reading from c (backpressure) or resumes. */
void net_conn_pause_recv(struct net_loop *l, struct net_conn *c);
void net_conn_resume_recv(struct net_loop *l, struct net_conn *c);

/* Closes c now: on_close runs at once, queued output is dropped. */
void net_conn_close(struct net_loop *l, struct net_conn *c);
/* Stops reading, writes what is queued (bounded by the caller's timers), then closes;
 * on_close runs at once. */
void net_conn_close_after_flush(struct net_loop *l, struct net_conn *c);

/* Hard-closes connections whose draining or lingering close passed its deadline
 * (call about once a second). */
void net_loop_reap_lingering(struct net_loop *l);

/* The connection in slot with generation gen, if it is still open; else NULL. */
struct net_conn *net_loop_conn(struct net_loop *l, uint32_t slot, uint32_t gen);

#endif
