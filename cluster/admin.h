/*
 * cluster/admin.h - the admin endpoint's content: the membership table as JSON, and the
 * HTTP/1.1 request line parsing and response framing around it. Pure: the cluster thread
 * owns the sockets (cluster.c) and calls these with its swim instance.
 *
 * GET /cluster/status (also /api/cluster/status) answers
 *   {"self": "<name>", "cluster": "<cluster>", "health_score": 0,
 *    "members": [{"name", "address", "state", "incarnation", "last_seen_ms",
 *                 "connections", "subscriptions", "msgs_per_s",
 *                 "client_address", "stomp_port", "ws_port", "shards", "route_port",
 *                 "admin_port",
 *                 and for every member but self, when the node has links: "link" ("up",
 *                 "connecting", "down"), "link_msgs_out", "link_bytes_out",
 *                 "link_msgs_in", "link_bytes_in"}, ...],
 *    "gossip": {"packets_in", "bytes_in", "packets_out", "bytes_out",
 *               "dropped_other_cluster", "dropped_bad_mac", "dropped_malformed",
 *               "dropped_version", "dropped_not_gossip", "probes", "probes_failed",
 *               "suspicions", "refutes", "declared_dead", "push_pulls", "name_conflicts"},
 *    "auth": {"slow_checks", "checks_in_flight_max", "check_waits"},
 *    "controller": {"role", "leader", "epoch", "voters", "view": [{"name", "state"}]}}
 * GET /metrics answers Prometheus text (format 0.0.4): client connections, frames, bytes,
 * messages, refusals, logins, queues, memory, node links, members (docs/operations.md).
 * GET /health answers 200 while the admin thread runs; GET /ready 200, or 503 while the
 * node drains (SIGTERM or heraldctl drain), for load balancers.
 * POST /api/drain starts a graceful stop (as SIGTERM: not ready, queues handed over, clients
 * told to reconnect elsewhere, exit) and answers 202 {"draining": true}.
 * GET /api/connections answers {"node", "fresh": bool, "connections": [{"id", "user",
 * "vhost", "address", "protocol", "subscriptions", "bytes_in", "bytes_out",
 * "connected_s"}]}; "fresh" false means the shards were only just asked (ask again in a
 * second). POST /api/connections/<id>/close closes one (202; 404 when no list has it).
 * GET /api/queues answers {"node": "<self>", "queues": [{"name", "vhost", "owner",
 *   "messages", "consumers", "backups": [names], "in_sync"}, ...]}: the queues this node
 * owns, the nodes holding their copies and whether those acknowledged everything sent
 * (heraldctl queues asks every member and merges).
 * members sorted by name; "state" is "alive", "suspect", "dead" or "left"; last_seen_ms is
 * the age of the last direct contact (ack or ping; 0 for self; since the last state change
 * when there was none). "auth" is this node's alone (struct admin_auth; absent when the
 * caller has none). `heraldctl cluster status` and monitoring parse it.
 */
#ifndef CLUSTER_ADMIN_H
#define CLUSTER_ADMIN_H

#include "cluster/meta.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct swim;

/* A growable output buffer (hd_alloc'd). */
struct admin_buf {
	char *ptr;
	size_t len;
	size_t cap;
};

void admin_buf_free(struct admin_buf *b);

/* This node's password-check counters (docs/auth.md "Failed logins"), not gossiped. */
struct admin_auth {
	uint64_t slow_checks;		/* argon2id checks handed to the auth thread */
	uint64_t checks_in_flight_max;	/* most one address had in flight at once, any shard */
	uint64_t check_waits;		/* logins told to wait: their address was at that limit */
};

/* This node's link to one member (core/route.h keeps them; main adapts). */
struct admin_link {
	const char *state;		/* "up", "connecting", "down" */
	uint64_t msgs_out, bytes_out;
	uint64_t msgs_in, bytes_in;
};

/* Where the admin endpoint reads links from: get() fills *out for member `name` (false:
 * no link known, shown as "down"). Called on the cluster thread; must be thread-safe. */
struct admin_links {
	bool (*get)(void *arg, const char *name, struct admin_link *out);
	void *arg;
};

/* One queue this node owns, for GET /api/queues. */
struct admin_queue {
	const char *name;		/* as clients write it, "/queue/jobs" */
	size_t name_len;
	const char *vhost;
	size_t vhost_len;
	uint64_t messages;		/* held: ready and delivered-unacknowledged */
	uint32_t consumers;		/* on every node */
	const char *backups[4];		/* the nodes holding a copy (docs/replication.md) */
	uint32_t nbackups;
	bool in_sync;			/* every backup holds everything sent to it */
};

/* Lists this node's queues through emit (called on the cluster thread; thread-safe). */
typedef void (*admin_queues_fn)(void *arg, void (*emit)(void *ctx, const struct admin_queue *q),
				void *ctx);

/* This node's counters for GET /metrics (Prometheus text), per shard where they are kept. */
#define ADMIN_MAX_SHARDS 64
struct admin_metrics_shard {
	uint64_t connections, connections_ws;	/* open now; _ws: STOMP over WebSocket */
	uint64_t connections_total;		/* accepted since start */
	uint64_t subscriptions;
	uint64_t frames_in, bytes_in, bytes_out;
	uint64_t published, delivered;
	uint64_t slow_consumers, refused_sends, errors_sent;
	uint64_t logins_ok, logins_failed;
};

struct admin_metrics {
	uint32_t nshards;
	struct admin_metrics_shard shard[ADMIN_MAX_SHARDS];
	uint64_t queues, queue_ready, queue_unacked, queue_consumers;
	uint64_t memory_allocated;	/* the allocator's live bytes */
	uint64_t memory_resident;	/* the process's RSS */
};

/* Fills *out (called on the cluster thread; thread-safe). */
typedef void (*admin_metrics_fn)(void *arg, struct admin_metrics *out);

/* One client connection, for GET /api/connections. */
struct admin_conn {
	uint64_t id;
	const char *user, *vhost, *address;
	bool websocket;
	uint32_t subscriptions;
	uint64_t bytes_in, bytes_out, connected_ms;
};

/* The connections hook: list() asks for fresh snapshots and emits what there is (returns
 * whether it was fresh); close() asks for one to be closed (false: no such id). */
struct admin_conns {
	bool (*list)(void *arg, void (*emit)(void *ctx, const struct admin_conn *c), void *ctx);
	bool (*close)(void *arg, uint64_t id);
	void *arg;
};

/* What this node adds to the membership table: self_load, when non-NULL, replaces the load
 * our own metadata last gossiped (it is fresher); auth, when non-NULL, is rendered as
 * "auth"; links, when non-NULL, gives each other member's link fields. */
struct admin_local {
	const struct node_meta *self_load;
	const struct admin_auth *auth;
	const struct admin_links *links;
	admin_queues_fn queues;		/* NULL: /api/queues answers an empty list */
	void *queues_arg;
	admin_metrics_fn metrics;	/* NULL: /metrics has the cluster's series only */
	void *metrics_arg;
	bool not_ready;			/* /ready answers 503: the node is draining */
	void (*drain)(void *arg);	/* POST /api/drain: start the graceful stop; NULL: 404 */
	void *drain_arg;
	const struct admin_conns *conns;	/* /api/connections; NULL: none */
	const char *controller_json;	/* the controller's state, a JSON object; NULL: none */
};

/* ---- credentials (docs/operations.md "Admin endpoint credentials") ----
 * When the endpoint asks for credentials (bound off loopback, or --admin-auth always),
 * every path but /health and /ready needs HTTP Basic credentials of an administrator user
 * (tag `administrator`): 401 with WWW-Authenticate when they are missing or wrong, 403 for
 * a user who is not an administrator, 503 with Retry-After while too many different logins
 * are being checked. */

enum admin_login {
	ADMIN_LOGIN_OK = 0,
	ADMIN_LOGIN_FORBIDDEN,		/* a user, not an administrator */
	ADMIN_LOGIN_DENIED,		/* missing, malformed, unknown user or wrong password */
	ADMIN_LOGIN_PENDING,		/* being checked elsewhere: ask again shortly */
	ADMIN_LOGIN_BUSY,		/* too many logins being checked */
};

/* Decides a login without blocking (password checks run elsewhere: PENDING until done).
 * Called on the cluster thread. */
struct admin_login_hook {
	enum admin_login (*check)(void *arg, const char *user, size_t user_len, const char *pass,
				  size_t pass_len, bool from_loopback, uint64_t now_ms);
	void *arg;
};

/* True when the request head req[0..len) asks for a path served without credentials:
 * /health and /ready, for load balancers and orchestrators (as RabbitMQ's). */
bool admin_path_is_open(const char *req, size_t len);

/* The credentials of the head's "Authorization: Basic ..." header, decoded into
 * buf[0..cap): *user and *pass point into buf. Returns 0, -ENOENT (no such header), or
 * -EINVAL (not Basic, bad base64, no ':'). The caller wipes buf. */
int admin_basic_credentials(const char *req, size_t len, char *buf, size_t cap,
			    const char **user, size_t *user_len, const char **pass,
			    size_t *pass_len);

/* Writes the response for a refused login (FORBIDDEN, DENIED or BUSY). Returns the
 * status code. */
int admin_respond_refused(enum admin_login v, struct admin_buf *out);

/* Renders the status JSON of s at now_ms into *out (appended); local may be NULL. */
void admin_render_status(const struct swim *s, uint64_t now_ms, const char *cluster,
			 const struct admin_local *local, struct admin_buf *out);

/* Renders GET /metrics into *out. */
void admin_render_metrics(const struct swim *s, const struct admin_local *local,
			  struct admin_buf *out);

/* Renders GET /api/queues (this node's queues) into *out. */
void admin_render_queues(const struct swim *s, const struct admin_local *local,
			 struct admin_buf *out);

/* Given a complete request head (through the blank line), writes the whole HTTP response
 * to *out. Returns the status code. Only GET of the paths above is served. */
int admin_respond(const char *req, size_t len, const struct swim *s, uint64_t now_ms,
		  const char *cluster, const struct admin_local *local, struct admin_buf *out);

#endif
