/*
 * core/route_state.h - the route thread's state, shared by its two halves: route.c (links,
 * handshake, topic interest, the thread) and route_queue.c (queue operations between a
 * client's node and a queue's owner). Private to them.
 *
 * Thread: the route thread.
 */
#ifndef CORE_ROUTE_STATE_H
#define CORE_ROUTE_STATE_H

#include "core/interest.h"
#include "core/placement.h"
#include "core/route.h"
#include "core/strmap.h"
#include "core/xring.h"
#include "net/loop.h"
#include "proto/link.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct hmsg;
struct xmsg;

#define MAX_UPDATES 256		/* membership news queued for the route thread */
#define ROUTE_OUTBOX_MAX 65536	/* queue operations held for peers whose link is not up */

enum peer_state { PEER_DOWN = 0, PEER_CONNECTING, PEER_UP };

struct peer {
	bool used;
	bool alive;			/* per membership */
	char name[LINK_NAME_MAX + 1];
	char host[64];
	uint16_t port;
	enum peer_state state;
	struct net_conn *conn;		/* the authenticated link (PEER_UP) */
	uint32_t link_gen;		/* bumped per link: stale ACK rounds are dropped */
	int dial_fd;			/* -1: not dialling */
	int probe_fd;			/* -1: none; a connect to see whether it still listens
					 * after its link closed (refused: its process is gone) */
	uint64_t probe_deadline_ms;
	uint64_t probe_again_ms;	/* 0, or when to probe once more (an accepted probe) */
	uint8_t probes_left;
	uint64_t dial_deadline_ms;
	uint64_t next_dial_ms;
	uint32_t backoff_ms;
	uint32_t seq_sent;		/* INTEREST frames sent on this link */
	uint32_t seq_acked;		/* ... acknowledged by the peer */
	uint32_t seq_in;		/* its INTEREST frames applied here, to acknowledge */
	bool ack_due;
	uint64_t full_since_ms;		/* over LINK_HIGH_WATER since (0: not) */
	uint64_t msgs_out, bytes_out, msgs_in, bytes_in;
	uint64_t node_hash;		/* placement identity (xxh64 of the name) */
	bool leaving;			/* it said BYE: it owns no queue any more */
	struct xpark outbox;		/* queue operations for it while its link is not up */
	struct receipt_out *receipts;	/* receipted operations sent, not yet answered */
	uint32_t nreceipts, receipts_cap;
};

/* A connection before and after its handshake (net_conn.user). */
struct link {
	struct route *r;
	struct net_conn *c;
	int peer;			/* slot, once the peer's HELLO named it; -1 before */
	bool authed;			/* the peer proved the key */
	uint8_t nonce[LINK_NONCE_LEN];	/* ours */
	uint8_t peer_nonce[LINK_NONCE_LEN];
	bool got_hello;
	uint64_t deadline_ms;		/* handshake */
};

/* A shard's SUBSCRIBE receipt waiting for peers to acknowledge interest sent before it. */
struct pending_sync {
	struct pending_sync *next;
	uint16_t from;
	uint32_t seq;
	uint64_t conn_ref;
	uint32_t need[ROUTE_MAX_PEERS];	/* seq_sent at the time, 0: nothing to wait for */
	uint32_t gen[ROUTE_MAX_PEERS];
};

/* A SYNC round through our shards before acknowledging a peer's interest. */
struct ack_round {
	struct ack_round *next;
	uint64_t id;
	uint32_t remaining;		/* shards yet to answer */
	int peer;
	uint32_t link_gen;
	uint32_t seq;
};

struct member_update {
	char name[LINK_NAME_MAX + 1];
	char host[64];
	uint16_t port;
	bool alive;
};

struct published_link {
	char name[LINK_NAME_MAX + 1];
	uint64_t node_hash;
	struct route_link_stats st;
};

#define ROUTE_VIEWS_PENDING 16

struct route {
	struct route_config cfg;
	uint32_t endpoint;		/* our xring endpoint id: nshards */
	uint32_t nshards;
	struct xring **in;		/* from each shard */
	struct xring **out;		/* to each shard */
	struct xpark *parked;
	uint32_t nparked;
	struct xwake wake;
	struct net_loop loop;
	int listen_fd;
	uint16_t port;
	pthread_t thread;
	_Atomic bool stop;
	uint64_t now_ms;

	struct peer peers[ROUTE_MAX_PEERS];
	int adopting;			/* the peer slot a dialled fd being adopted is for */
	struct interest_table local;	/* columns: our shards */
	struct interest_table remote;	/* columns: peer slots */
	struct pending_sync *syncs;
	struct ack_round *rounds_head, *rounds_tail;
	uint64_t next_round;

	/* membership news from the cluster thread, and stats for it */
	pthread_mutex_t mu;
	struct member_update updates[MAX_UPDATES];
	uint32_t nupdates;
	struct published_link published[ROUTE_MAX_PEERS];
	uint32_t npublished;
	route_probe_fn on_probe;	/* what probes found (main: the controller) */
	void *on_probe_arg;
	/* views not yet applied, oldest first: each is placed in turn (a node taken out and
	 * added back must see itself out in between, and drop what it held) */
	struct route_view views_pending[ROUTE_VIEWS_PENDING];
	uint32_t nviews_pending;

	/* queues across nodes (route_queue.c) */
	uint64_t self_hash;
	bool have_view;			/* placement follows the agreed view (else gossip) */
	struct route_view view;		/* the last one applied */
	struct placement *pl;		/* who owns queues, as this thread routes them */
	uint64_t placement_version;
	uint32_t outboxed;		/* queue operations in all outboxes */
	_Atomic int leave;		/* LEAVE_*: a graceful hand-over main asked for */
	bool leaving;			/* placements leave this node out */
	bool leave_synced;		/* every shard has moved its queues out */
	struct strmap consumers_here;	/* owner side: other nodes' consumers of our queues */
	struct strmap consumers_there;	/* client side: our consumers registered elsewhere */
	struct net_tls_ctx *tls_pending;	/* under mu: certificates a SIGHUP reloaded */
};

enum { LEAVE_NONE = 0, LEAVE_ASKED, LEAVE_DONE };

/* A receipted queue operation sent to a peer: answered with its Q_DONE; if the link goes
 * down first, a SEND is sent again (it keeps a reference to its message for that: to the
 * queue's owner once placement settles, maybe the same node when the link comes back)
 * and any other operation is answered by the route. */
struct receipt_out {
	uint16_t shard;
	bool is_send;
	uint32_t seq;
	uint64_t conn;
	struct hmsg *msg;	/* a SEND's message (one reference), else NULL */
};

/* ---- route.c, for route_queue.c ---- */

/* Sends m to shard `to` (parking when its ring is full); m->from becomes the route. */
void route_send_to_shard(struct route *r, uint32_t to, const struct xmsg *m);
/* Passes m on to shard `to` keeping its sender (an operation the route re-routed). */
void route_forward_to_shard(struct route *r, uint32_t to, const struct xmsg *m);
/* Queues a copy of buf on link c (counted against p when non-NULL). */
void route_link_write(struct route *r, struct peer *p, struct net_conn *c, const uint8_t *buf,
		      size_t len);
/* Queues a frame head (copied) and the message's own bytes (referenced) on p's link. */
void route_link_write_message(struct route *r, struct peer *p, const uint8_t *head,
			      size_t head_len, struct hmsg *m, uint32_t bytes_len);
/* A message as a link carries it (link_message over m's buffer). */
void route_message_view(const struct hmsg *m, struct link_message *out);
/* A new message buffer holding what a link carried (one reference). */
struct hmsg *route_message_from_link(struct route *r, const struct link_message *lm);

/* ---- route_queue.c ---- */

void route_queue_init(struct route *r);
void route_queue_fini(struct route *r);
/* Membership changed: a new placement for the route and every shard; operations held for
 * peers that left are routed again. */
void route_queue_publish_placement(struct route *r);
/* Queue xmsgs from the shards (PUBLISH of a queue message, CONSUMER_ADD/DEL, ACK, RETURN,
 * HANDOVER, QUEUE_DELIVER and QUEUE_DROPPED for consumers on other nodes, and DONE answers
 * to requests from other nodes). False when m is not one of them. */
bool route_queue_from_shard(struct route *r, const struct xmsg *m);
/* A QUEUE frame from peer idx. False when it was malformed (the caller closes the link). */
bool route_queue_from_link(struct route *r, int idx, const struct link_frame *f);
/* Peer idx's link came up: its consumers registered here again, held operations sent. */
void route_queue_link_up(struct route *r, int idx);
/* Peer idx's link went down: its consumers of our queues leave (their unacked messages go
 * back), receipts waiting on it are answered. */
void route_queue_link_down(struct route *r, int idx);
/* True while the outboxes are too full to take more from the shards. */
bool route_queue_backlogged(const struct route *r);
/* Operations waiting in outboxes. */
uint32_t route_queue_outboxed(const struct route *r);

#endif
