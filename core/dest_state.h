/*
 * core/dest_state.h - a shard's queues as dest.c and replica.c both see them (private to
 * those two: nothing else reaches into a queue).
 *
 * Thread: the owning shard.
 */
#ifndef CORE_DEST_STATE_H
#define CORE_DEST_STATE_H

#include "core/mdeque.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shard;
struct repl_owner;

struct qconsumer {
	uint64_t key;
	uint8_t ack_mode;
	uint16_t epoch;		/* of the registration: deliveries carry it back */
	uint32_t prefetch;	/* 0: unlimited */
	uint32_t inflight;	/* deliveries not yet credited back */
	struct mdeque unacked;	/* client modes: in tag order */
	/* Deliveries made under an earlier registration - by the queue's previous owner,
	 * whose copy this node took over, or here before the consumer registered again -
	 * which the consumer still holds and may ACK: each entry's epoch is the registration
	 * its ACK names; in tag order. Not counted against prefetch (the consumer got them
	 * before); given back to the queue, redelivered, when it leaves, or after
	 * DEST_ADOPTED_KEEP_MS (an ACK lost with the old owner would keep them for ever). */
	struct mdeque adopted;
	uint64_t adopted_ms;	/* when the newest entry was adopted */
	bool absent;		/* known only from adopted deliveries: not registered here
				 * (yet), so nothing is delivered to it */
};

/* How long adopted deliveries wait for their ACK: a consumer that registers (its node
 * moved it here) keeps them this long; one that does not register (it went with the old
 * owner, or unsubscribed) gives them back after the shorter wait. */
#define DEST_ADOPTED_KEEP_MS 60000
#define DEST_ADOPTED_ABSENT_MS 5000

struct dest_queue {
	struct mdeque ready;
	uint32_t handed_in;	/* ready's first entries that older owners handed over (and
				 * requeues ahead of them): a hand-over lands after them, before
				 * what was sent here directly */
	struct qconsumer **consumers;
	uint32_t nconsumers;
	uint32_t rr;		/* next consumer to try */
	uint64_t next_tag;
	struct repl_owner *repl;	/* its copies on backups (replica.h); NULL: none */
	uint32_t len;
	char name[];
};

/* The queue named `name` on this shard, made when `create` (NULL otherwise). */
struct dest_queue *dest_queue_get(struct shard *sh, const char *name, size_t len, bool create);
/* Hands ready messages to consumers with room. */
void dest_queue_dispatch(struct shard *sh, struct dest_queue *q);
/* Consumer `key` (as this node numbers consumers) got e (e.tag) under its registration
 * epoch reg_epoch at the queue's previous owner: keeps it unacked for that consumer, which
 * is made, absent, when q does not know it (replica.c, promotion). */
void dest_queue_adopt(struct shard *sh, struct dest_queue *q, uint64_t key, uint16_t reg_epoch,
		      struct mentry e);
/* Whether consumer `key`'s node is this one or a member in the shard's placement. */
bool dest_consumer_node_present(const struct shard *sh, uint64_t key);
/* Frees an idle queue (no consumers, no messages, nothing waiting on its backups). */
void dest_queue_maybe_drop(struct shard *sh, struct dest_queue *q);

#endif
