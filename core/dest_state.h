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
};

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
/* Frees an idle queue (no consumers, no messages, nothing waiting on its backups). */
void dest_queue_maybe_drop(struct shard *sh, struct dest_queue *q);

#endif
