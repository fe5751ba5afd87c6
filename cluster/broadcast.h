/*
 * cluster/broadcast.h - the piggyback queue: membership updates waiting to ride on outgoing
 * gossip packets (SWIM section 4.1, "infection-style dissemination"; memberlist's
 * TransmitLimitedQueue). Each update is sent at most `limit` times, limit = mult *
 * ceil(log10(n + 1)) for n members; packets take the least-sent updates first and, among
 * equals, the newest, skipping any that no longer fit the packet's budget. A newer update
 * about the same node (same key) replaces the queued one.
 *
 * Owned by one swim instance; not thread-safe. Items are copies: the caller's buffers may
 * go away after broadcast_push returns.
 */
#ifndef CLUSTER_BROADCAST_H
#define CLUSTER_BROADCAST_H

#include <stddef.h>
#include <stdint.h>

#define BROADCAST_MAX_TRANSMITS 64	/* transmit counts are tracked up to here */
#define BROADCAST_MAX_ITEMS 4096	/* past this the most-sent, oldest item is dropped */
#define BROADCAST_MAX_MISSES 16		/* items tried that did not fit before a packet is full */

struct broadcast_item;
struct wire_writer;

struct broadcast_queue {
	struct broadcast_item *bucket[BROADCAST_MAX_TRANSMITS];	/* by transmits, newest first */
	struct broadcast_item **table;	/* key hash -> items (chained) */
	size_t table_cap;		/* power of two */
	size_t count;			/* items queued */
	uint64_t next_id;		/* insertion order; higher is newer */
	uint64_t dropped;		/* items dropped at BROADCAST_MAX_ITEMS */
};

void broadcast_init(struct broadcast_queue *q);
void broadcast_fini(struct broadcast_queue *q);

/* Queues msg[0..len) (one encoded wire message) under key (a node name); replaces any item
 * with the same key. */
void broadcast_push(struct broadcast_queue *q, const char *key, const uint8_t *msg, size_t len);

/* Appends as many queued messages as fit into w (least sent, then newest first), counts a
 * transmit for each and drops those that reach `limit`. Returns the number appended. */
size_t broadcast_fill(struct broadcast_queue *q, struct wire_writer *w, uint32_t limit);

/* Times the item under key has been sent, or -1 when none is queued. */
int broadcast_transmits(const struct broadcast_queue *q, const char *key);

/* Forgets every queued item. */
void broadcast_clear(struct broadcast_queue *q);

/* mult * ceil(log10(n + 1)), at least 1, at most BROADCAST_MAX_TRANSMITS. */
uint32_t broadcast_limit(uint32_t mult, uint32_t n);

#endif
