/*
 * core/placement.h - which node owns a queue: rendezvous (highest random weight) hashing of
 * the queue's key over the nodes the route thread counts as members (this node and every
 * alive peer with a route port), each scoring xxh64(key hash, node hash). A membership
 * change moves only the queues whose top score changed. Reply queues (server-made names)
 * never move: their name carries their node's tag, and they live and die with it.
 *
 * A placement is immutable and refcounted: the route thread makes one per membership
 * change and hands a reference to every shard (XMSG_PLACEMENT), in ring order with
 * everything else it sends them.
 *
 * Thread: any (immutable once made).
 */
#ifndef CORE_PLACEMENT_H
#define CORE_PLACEMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLACEMENT_MAX_NODES 64
#define PLACEMENT_NONE (-1)		/* no member owns it (a reply queue whose node left) */

struct placement {
	_Atomic uint32_t refs;
	uint32_t n;			/* nodes; [0] is this node */
	uint64_t version;		/* grows with each placement the route makes */
	uint64_t epoch;			/* the agreed view's (0: placed by gossip) */
	bool outside_view;		/* this node is not in that view (yet, or any more) */
	bool leaving_gracefully;	/* SIGTERM or a drain: it hands everything over */
	bool leaving;			/* this node is leaving: it owns no queue (but its reply
					 * queues, which die with it) */
	uint64_t node_hash[PLACEMENT_MAX_NODES];
	int16_t peer[PLACEMENT_MAX_NODES];	/* the route's peer slot; -1 for this node */
	bool joining[PLACEMENT_MAX_NODES];	/* a member the view has not made active yet: it
						 * owns nothing, but gets copies of the queues it
						 * will hold (docs/replication.md, "Rejoin") */
};

/* A node's identity for placement: xxh64 of its name. Its low 24 bits are its reply-queue
 * tag. */
uint64_t placement_node_hash(const char *name, size_t len);
#define PLACEMENT_TAG_MASK 0xffffffu

/* A placement with this node alone (one reference). */
struct placement *placement_create(uint64_t self_hash);
/* Adds a node (the route's peer slot). */
void placement_add(struct placement *p, uint64_t node_hash, int16_t peer);

void placement_ref(struct placement *p);
void placement_unref(struct placement *p);

/* The index of the node owning queue key `key` (0: this node), or PLACEMENT_NONE. */
int placement_queue_node(const struct placement *p, const char *key, size_t len);

/* The nodes holding queue `key` (docs/replication.md): the best `want` (at most
 * PLACEMENT_MAX_REPLICAS) in rendezvous order, out[0] the owner and the rest its backups;
 * fewer when the placement has fewer nodes, one for a reply queue, none for a reply queue
 * whose node is gone. Then, room permitting, each joining node that will be among the
 * best `want` once active: it takes a copy first. Returns how many. */
#define PLACEMENT_MAX_REPLICAS 5
uint32_t placement_queue_replicas(const struct placement *p, const char *key, size_t len,
				  uint32_t want, int out[PLACEMENT_MAX_REPLICAS]);

/* The reply-queue tag written into server-made queue names ("amq.gen-" + base64url of 16
 * bytes whose first 3 are the tag), and read back from one; false when key is not one. */
bool placement_reply_tag(const char *key, size_t len, uint32_t *tag);

#endif
