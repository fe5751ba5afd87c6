/*
 * core/route.h - node links: the route thread, one more xring endpoint (id nshards) next to
 * the shards, holding one authenticated TCP link to every other alive member of the
 * cluster (NATS's routes are the model: full mesh, one hop, interest-based).
 *
 * What it owns:
 *  - the links (its own I/O loop: the route port's listener, dialled connections), their
 *    handshake (HMAC over both sides' nonces with the cluster key), framing (proto/link.h),
 *    counters;
 *  - this node's topic and pattern interest as the shards report it (their 0->1 and 1->0
 *    per topic, every pattern subscription), told to each peer as ADD/DEL when the node's
 *    own count goes 0->1 / 1->0, and in full when a link comes up;
 *  - each peer's interest, from which the shards learn only "some other node wants this"
 *    (the route endpoint's column of their interest tables goes 0->1 / 1->0).
 *
 * A publish routed on a shard reaches the route once (XMSG_TOPIC_DELIVER) if any peer wants
 * it, and crosses each wanting peer's link once. What arrives over a link is handed to the
 * local shards that want it and never forwarded again. A SUBSCRIBE's RECEIPT waits for the
 * route's XMSG_DONE, which it sends once every linked peer has acknowledged the interest
 * changes sent before it (the peer acknowledges after its own shards have applied them).
 *
 * Threads: the route thread owns everything here; route_member and route_link_stats are
 * the only calls made from other threads (the cluster thread), through a mutex.
 */
#ifndef CORE_ROUTE_H
#define CORE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_tls_ctx;
struct shard;
struct xwake;

#define ROUTE_MAX_PEERS 63	/* a full mesh; past ~50 nodes see docs/cluster.md */
#define ROUTE_KEY_LEN 32

struct route_config {
	char node_name[128];		/* set by route_start */
	char cluster_name[64];
	char bind_addr[64];		/* numeric IPv4 */
	uint16_t port;			/* 0: pick a free one */
	uint8_t key[ROUTE_KEY_LEN];	/* proves cluster membership in the handshake */
	int io_backend;			/* enum net_io */
	uint32_t max_frame_bytes;	/* largest message a link carries */
	/* --route-tls: every link runs TLS on this context (net/tls.h; the accepting end is
	 * the server, the dialling end the client) and the HELLO/AUTH handshake runs inside
	 * it; NULL: plain TCP. route_create takes over the reference, also when it fails. */
	struct net_tls_ctx *tls_ctx;
};

/* One link as the admin endpoint shows it. */
struct route_link_stats {
	const char *state;		/* "up", "connecting" or "down" (static strings) */
	uint64_t msgs_out, bytes_out;
	uint64_t msgs_in, bytes_in;
};

struct route;

/* Opens the route listener (logs "listening proto=route addr=A:P") and the route's wake-up.
 * Returns 0, or a negative errno. Main thread. */
int route_create(struct route **out, const struct route_config *cfg);
/* The port the listener got (for the membership metadata). */
uint16_t route_port(const struct route *r);
/* The wake-up the route thread sleeps on, for shard_create_all. */
struct xwake *route_xwake(struct route *r);
/* Takes the shards' ends of their route rings; before route_start. */
void route_attach(struct route *r, struct shard **shards, uint32_t nshards);
/* Starts the route thread for this node (its name, known once the listeners are open).
 * 0 or a negative errno. */
int route_start(struct route *r, const char *node_name);
/* Closes every link, stops the thread, frees. Call after the shards stopped. */
void route_stop_and_destroy(struct route *r);

/* Graceful leave (main thread, before the cluster leaves): every queue this node holds
 * moves to the node that owns it without us, and the call returns once they are all on
 * the wire to their new owners (true), or after timeout_ms (false). A node alone keeps
 * them (there is nobody to hand them to). */
bool route_hand_over(struct route *r, uint32_t timeout_ms);

/* The cluster's agreed view (cluster/controller.h; docs/replication.md): once one came, queues
 * are placed over its members only (those the route has a link port for), this node
 * included only while it is in it. Before the first, placement follows gossip. */
#define ROUTE_VIEW_MAX 64
struct route_view {
	uint64_t epoch;
	uint32_t n;
	uint64_t node_hash[ROUTE_VIEW_MAX];	/* placement_node_hash of each member's name */
	bool joining[ROUTE_VIEW_MAX];		/* not active yet: copies only, no queues */
};

/* A new view (any thread). */
void route_view(struct route *r, const struct route_view *v);

/* When a link closes while its member is alive, the route connects to the member's route
 * port once more: refused means nothing listens there (its process is gone, whatever
 * gossip still thinks), accepted means it runs. fn(arg, name, gone) is told either way,
 * on the route thread; timeouts (a partition, a dead host) say nothing. Main thread, any
 * time (also before route_start). */
typedef void (*route_probe_fn)(void *arg, const char *name, bool gone);
void route_set_probe_hook(struct route *r, route_probe_fn fn, void *arg);

/* The name of the peer whose placement hash is node_hash (any thread); false when the
 * route knows none. */
bool route_peer_name(struct route *r, uint64_t node_hash, char *out, size_t cap);

/* New certificates for links made from now on (SIGHUP; any thread): takes over the
 * reference to ctx; live links keep theirs. Only for a route started with a tls_ctx. */
void route_set_tls_ctx(struct route *r, struct net_tls_ctx *ctx);

/* Membership news (any thread): member `name` is alive at host:port (its route port), or
 * no longer (dead or left). Repeats are harmless. */
void route_member(struct route *r, const char *name, const char *host, uint16_t port, bool alive);
/* The link to member `name` (any thread): false when the route has never heard of it. */
bool route_link_stats(struct route *r, const char *name, struct route_link_stats *out);

#endif
