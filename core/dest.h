/*
 * core/dest.h - the destination table of one shard.
 *
 * Topics: every shard keeps, for every topic and pattern with subscribers anywhere, a
 * subscription count per shard (interest changes are broadcast: a shard's 0->1 and 1->0
 * only). A publish is routed on the publisher's own shard: one xmsg per interested shard,
 * never one per subscriber, and one publisher's messages to any topics reach each shard in
 * order over the same xring.
 * Queues: owned by dest_owner(name); the owner holds the ready messages,
 * consumers and unacked deliveries.
 *
 * Thread: its shard only; everything else arrives as xmsgs (shard.c dispatches them here).
 */
#ifndef CORE_DEST_H
#define CORE_DEST_H

#include "core/interest.h"
#include "core/strmap.h"
#include "core/xmsg.h"

#include <pthread.h>
#include <stdint.h>

struct shard;

/* The queues a shard holds, as other threads may read them (the admin endpoint's
 * /api/queues): rebuilt about once a second by the shard, swapped under the mutex. */
struct dest_queue_info {
	const char *key;		/* internal key, in the snapshot's own memory */
	uint32_t key_len;
	uint32_t consumers;
	uint64_t messages;		/* ready + delivered, not yet acknowledged */
	uint64_t ready;
	uint64_t unacked;
	uint32_t nbackups;		/* nodes holding a copy (core/replica.h) */
	uint64_t backup[4];		/* their placement hashes */
	bool in_sync;			/* every backup acknowledged everything sent to it */
};

struct dest_snapshot {
	pthread_mutex_t mu;
	struct dest_queue_info *q;	/* one allocation with the keys after the array */
	uint32_t n;
};

struct dest_table {
	struct interest_table interest;	/* topics and patterns: which shards (and the route
					 * endpoint: other nodes) want them */
	struct strmap queues;		/* name -> struct dest_queue */
	uint64_t queued_msgs;		/* ready + unacked, for stats */
	struct strmap replicas;		/* name -> struct replica: copies held as a backup */
	uint64_t replica_msgs;		/* messages in them */
	bool lease_blocked;		/* a dispatch waited for the controller's lease */
	uint32_t repl_waits;		/* receipts waiting for backups, all queues */
	uint32_t repl_awaiting;		/* copies waiting for their old owner's PROMOTE */
	uint64_t repl_scan_ms;		/* the last look for ones waiting too long */
	uint32_t adopting;		/* consumers holding adopted deliveries, all queues */
	uint64_t adopted_scan_ms;	/* the last look for ones kept too long */
	struct dest_snapshot snapshot;
};

/* ncolumns: the shards, plus the route endpoint when the node has links. */
void dest_table_init(struct dest_table *t, uint32_t ncolumns);
void dest_table_fini(struct dest_table *t);

/* Owner-side handlers for the xmsg kinds addressed to destinations. Each consumes the
 * xmsg's ptr (hmsg reference or xname/xconsumer allocation). */
void dest_on_publish(struct shard *sh, const struct xmsg *m);
void dest_on_topic_interest(struct shard *sh, const struct xmsg *m, int pattern);
void dest_on_consumer_add(struct shard *sh, const struct xmsg *m);
void dest_on_consumer_del(struct shard *sh, const struct xmsg *m);
void dest_on_ack(struct shard *sh, const struct xmsg *m);
void dest_on_return(struct shard *sh, const struct xmsg *m);
void dest_on_handover(struct shard *sh, const struct xmsg *m);
/* The controller's lease is back (or not yet): queues that waited for it dispatch. */
void dest_lease_check(struct shard *sh);
/* Gives back adopted deliveries kept too long (dest_state.h); costs nothing while there are
 * none. Called every shard tick. */
void dest_adopted_tick(struct shard *sh);
/* Rebuilds the shard's queue snapshot (its thread). */
void dest_snapshot_take(struct shard *sh);
/* Calls fn for each queue in t's snapshot (any thread). */
void dest_snapshot_each(struct dest_table *t,
			void (*fn)(void *ctx, const struct dest_queue_info *q), void *ctx);

/* The shard's placement changed: every queue it holds that another node owns now moves
 * there (consumers told to register anew, held messages handed over in order). */
void dest_on_placement(struct shard *sh);

/* Where destination `name` (an internal key) lives: the xring endpoint to send its xmsgs
 * to. The one place that decides it: today one of this node's shards, xxh64(name) %
 * nshards; with node links it becomes "which node (rendezvous hashing), then which shard",
 * answering the route endpoint (SHARD_COLUMNS) for a name another node owns. */
uint32_t dest_owner(const struct shard *sh, const char *name, size_t len);

#define DEST_CREDIT_WINDOW 256	/* deliveries in flight to one consumer before waiting */

#endif
