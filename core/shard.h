/*
 * core/shard.h - one thread per core: its I/O loop (io_uring or epoll, net/) and every
 * connection it accepted, the destinations it owns (dest_owner() == id), its local
 * subscriber table, its jemalloc arena and counters. Shards talk only through xrings (one
 * per ordered pair).
 *
 * Loop order per turn: flush sends, publish xrings, sleep in the loop's wait until a
 * completion, a wake-up or the next timer; dispatch completions; drain inbound xrings (bounded batch);
 * fire due timers.
 */
#ifndef CORE_SHARD_H
#define CORE_SHARD_H

#include "auth/auth.h"
#include "core/config.h"
#include "core/connlist.h"
#include "core/dest.h"
#include "core/session.h"
#include "core/xring.h"
#include "net/loop.h"
#include "proto/http_upgrade.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Shard masks (topic interest) are 64 bits, and each keeps one column past the shards for
 * the route endpoint that node links will add: 63 shards at most. */
#define SHARD_MAX 63
#define SHARD_COLUMNS(nshards) ((nshards) + 1)	/* per-shard counts: the shards + the route */
#define SHARD_XRING_SLOTS 8192

enum conn_kind { CONN_KIND_STOMP = 1, CONN_KIND_WS = 2 };
/* shard_add_listener: the listener's connections run TLS (never set in net_conn.kind) */
#define CONN_KIND_TLS 0x80

/* Counters the shard alone writes; published to `pub` for other threads about every 100 ms. */
struct shard_stats {
	uint64_t connections;
	uint64_t connections_ws;	/* of which STOMP over WebSocket */
	uint64_t connections_total;	/* accepted since start */
	uint64_t frames_in;		/* client frames handled */
	uint64_t errors_sent;		/* ERROR frames (each closes its connection) */
	uint64_t subscriptions;
	uint64_t published;	/* messages accepted by destinations this shard owns */
	uint64_t delivered;	/* MESSAGE frames queued to this shard's connections */
	uint64_t slow_consumers;
	uint64_t refused_sends;
};

struct shard_stats_pub {
	_Atomic uint64_t connections;
	_Atomic uint64_t connections_ws;
	_Atomic uint64_t connections_total;
	_Atomic uint64_t frames_in;
	_Atomic uint64_t errors_sent;
	_Atomic uint64_t slow_consumers;
	_Atomic uint64_t refused_sends;
	_Atomic uint64_t bytes_in;
	_Atomic uint64_t bytes_out;
	_Atomic uint64_t logins_ok;
	_Atomic uint64_t logins_failed;
	_Atomic uint64_t subscriptions;
	_Atomic uint64_t published;
	_Atomic uint64_t delivered;
	/* from auth (struct auth_shard), for the admin endpoint */
	_Atomic uint64_t auth_slow_checks;
	_Atomic uint64_t auth_check_waits;
	_Atomic uint64_t auth_checks_in_flight_max;	/* one address, on this shard */
};

struct session;

struct shard {
	uint32_t id;
	uint32_t nshards;
	uint32_t nendpoints;		/* xring endpoints: the shards, plus the route thread
					 * (id nshards) when the node has links */
	const struct herald_config *cfg;	/* as at start; its limits are not read after */
	/* limits: this shard's copy, read on its thread only; SIGHUP hands a new one over
	 * through limits_next (shard_publish_limits), taken at the next loop turn */
	struct hd_limits limits;
	_Atomic(struct hd_limits *) limits_next;
	struct net_loop loop;
	struct xwake wake;
	struct xring **in;		/* in[from]: written by endpoint `from`, read by us */
	struct xring **out;		/* out[to]: written by us */
	struct xpark *parked;		/* parked[to] */
	uint32_t nparked;		/* total parked xmsgs */
	struct dest_table dests;
	struct placement *placement;	/* who owns queues (from the route); NULL: this node alone */
	struct session_shard sessions;	/* the session layer's own per-shard state */
	struct conn_snapshot conns_snap;	/* its connections, for an administrator */
	/* authentication: the db checked against (refcounted, swapped on SIGHUP through
	 * auth_db_next), this shard's credential cache and rate limiter, the auth thread's rings */
	struct auth_db *auth_db;
	_Atomic(struct auth_db *) auth_db_next;
	/* the TLS context for new TLS connections, handed over like auth_db_next */
	_Atomic(struct net_tls_ctx *) tls_ctx_next;
	struct auth_shard auth;
	struct xring *auth_out;		/* to the auth thread (we produce) */
	struct xring *auth_in;		/* from the auth thread (we consume) */
	struct shard_stats stats;
	struct shard_stats_pub pub;
	struct http_upgrade_config http_cfg;	/* WebSocket path, Origin allow-list, limits */
	uint64_t now_ms;
	_Atomic uint32_t stop_requested;
	bool stopping;
	uint64_t stop_deadline_ms;
	int listen_fds[4];
	uint8_t listen_kinds[4];
	int nlisten;
	pthread_t thread;
	int start_err;			/* how its loop setup went (shard_start_all reads it) */
};

/* The node-wide connection count (all shards), for max-connections. */
extern _Atomic uint64_t shard_total_connections;
/* Random per-process prefix of message ids and session ids. */
extern uint32_t shard_node_epoch;
/* Until when (hd_now_ms) this node may deliver from the queues it owns: its controller's
 * lease (cluster/controller.h; docs/replication.md, invariant 5). A node without a
 * cluster keeps UINT64_MAX. Main writes it, shards read it (relaxed: a stale read is off by
 * one loop turn, well inside the lease's margin). */
extern _Atomic uint64_t shard_queue_lease_until_ms;
/* This node's reply-queue tag (placement.h): the low 24 bits of its placement hash. */
extern uint32_t shard_node_tag;

/* Creates n shards sharing cfg and all xrings between them; not started. With route_wake,
 * each shard also gets a ring pair with the route endpoint (id n, core/route.h), whose
 * thread sleeps on route_wake. Main thread. */
struct shard **shard_create_all(uint32_t n, const struct herald_config *cfg, struct xwake *route_wake);
/* The route endpoint's end of shard i's rings: it reads *from_shard, writes *to_shard. */
void shard_route_rings(struct shard *sh, struct xring **from_shard, struct xring **to_shard);
/* Gives shard sh a listening socket (each shard gets its own SO_REUSEPORT member). */
void shard_add_listener(struct shard *sh, int fd, uint8_t kind);
/* Hands every shard a reference to db (at start, and on SIGHUP): each swaps it in at its
 * next loop turn and drops the one it had. Main thread; the caller keeps its own ref. */
void shard_publish_auth_db(struct shard **shards, uint32_t n, struct auth_db *db);
/* Hands every shard a reference to ctx (at start and on SIGHUP): each takes it at its next
 * loop turn for the TLS connections it accepts from then on. Main thread; the caller keeps
 * its own reference. */
void shard_publish_tls_ctx(struct shard **shards, uint32_t n, struct net_tls_ctx *ctx);

/* Hands every shard its own copy of *limits (SIGHUP): each takes it at its next loop turn
 * (session_shard_limits_changed) and frees it. Main thread; the caller keeps *limits. */
void shard_publish_limits(struct shard **shards, uint32_t n, const struct hd_limits *limits);

/* Starts the threads (each pins itself to CPU id % online CPUs) and waits until each has
 * set up its loop. Returns 0, or the first error (negative errno) once every shard that did
 * start has been stopped again: the caller logs and exits. */
int shard_start_all(struct shard **shards, uint32_t n);
/* Asks every shard to stop accepting, flush, close sessions, and exit; joins them. */
void shard_stop_all(struct shard **shards, uint32_t n);
void shard_destroy_all(struct shard **shards, uint32_t n);

/* The calling thread's shard (NULL off-shard). */
struct shard *shard_self(void);

/* The route endpoint's id, or UINT32_MAX when the node has no links. */
static inline uint32_t shard_route_endpoint(const struct shard *sh)
{
	return sh->nendpoints > sh->nshards ? sh->nshards : UINT32_MAX;
}

/* Every endpoint as a mask: the shards, and the route endpoint when there is one. */
static inline uint64_t shard_all_endpoints(const struct shard *sh)
{
	return sh->nendpoints >= 64 ? ~0ull : (1ull << sh->nendpoints) - 1;
}

/* Sends an xmsg to endpoint `to` (itself included). Never fails: a full xring parks it and
 * the shard stops reading its sockets until the park drains. Shard thread only. */
void shard_send(struct shard *sh, uint32_t to, const struct xmsg *m);

/* Passes xmsg m on to endpoint `to` as it came, keeping its sender: whoever answers it
 * answers the original sender (an owner that is no longer one forwards). */
void shard_forward(struct shard *sh, uint32_t to, const struct xmsg *m);

/* Frees what an xmsg that will never be handled carries (its hmsg, name or placement). */
void xmsg_drop(const struct xmsg *m);

/* Sends an auth job to the auth thread; false when its ring is full (refuse the login). */
bool shard_send_auth(struct shard *sh, const struct xmsg *m);

/* True when parked xmsgs are waiting: sessions should not read more input. */
static inline bool shard_is_backlogged(const struct shard *sh)
{
	return sh->nparked > 0;
}

#define SHARD_OWNS(sh) HD_ASSERT((sh) == shard_self())

#endif
