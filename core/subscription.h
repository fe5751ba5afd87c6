/*
 * core/subscription.h - a session's subscriptions and the interest they stand for: the
 * connection-side half of topics and patterns (this shard's local table, whose 0->1 and
 * 1->0 changes every shard hears) and of queues (a consumer registered with the queue's
 * owner). SUBSCRIBE and UNSUBSCRIBE. Spec: STOMP 1.2 "SUBSCRIBE", "UNSUBSCRIBE".
 *
 * Thread: the session's shard.
 */
#ifndef CORE_SUBSCRIPTION_H
#define CORE_SUBSCRIPTION_H

#include "core/mdeque.h"
#include "proto/stomp_parse.h"

#include <stdint.h>

struct session;
struct shard;

struct sub {
	struct session *s;
	struct sub *next;	/* in its local_topic or in the shard's pattern list */
	struct sub *prev;
	struct local_topic *lt;
	uint16_t idx;		/* session-unique, part of consumer keys and ack ids */
	uint8_t kind;		/* enum sub_kind */
	uint8_t ack_mode;	/* enum session_ack_mode */
	uint32_t prefetch;
	uint32_t owner;		/* owner endpoint of dest (queues and topics): a shard, or the
				 * route for a queue another node owns */
	uint64_t owner_node;	/* queues: placement hash of the owning node (0: no cluster) */
	uint32_t owner_epoch;	/* queues: bumped each time the consumer registers anew */
	uint32_t credit_pending;/* queue deliveries queued on the wire, not yet credited */
	uint64_t next_tag;	/* topic client-mode deliveries */
	struct mdeque pend;	/* unacked deliveries in order (client modes); the message
				 * reference serves 1.0/1.1 ACKs by message-id */
	uint32_t dest_len;
	uint32_t id_len;
	char *dest;		/* internal key (destname_key) */
	char *id;		/* client's subscription id */
	char *reply_to;		/* a reply queue's: "/reply-queue/<name>"; else NULL */
	uint32_t reply_to_len;
};

/* This shard's subscribers of one topic. */
struct local_topic {
	struct sub *head;
	uint32_t n;
	uint32_t len;
	char name[];
};

/* The shard's local table (struct local_table, core/session.h): set up and freed with the
 * shard's session state. */
struct local_table;
void local_table_init(struct local_table *t);
void local_table_fini(struct local_table *t);

/* The frame handlers. */
void sub_on_subscribe(struct shard *sh, struct session *s, const struct stomp_frame *f);
void sub_on_unsubscribe(struct shard *sh, struct session *s, const struct stomp_frame *f);

/* The reply queue a SEND's `reply-to:/temp-queue/<name>` (temp) stands for: made on first
 * use (a private queue with a server-made name, auto-ack, subscription id temp, gone with
 * the connection), the same one after. NULL after refusing f (too many subscriptions). */
struct sub *sub_reply_queue(struct shard *sh, struct session *s, const struct stomp_frame *f,
			    struct stomp_view temp);

/* The subscription with client id `id` (and its index in s->subs), or NULL. */
struct sub *sub_by_id(struct session *s, struct stomp_view id, uint32_t *index);
/* The subscription with session-unique index idx (from a consumer key or ack id), or NULL. */
struct sub *sub_by_idx(struct session *s, uint32_t idx);
/* The consumer key (xmsg.h) of queue subscription sub on this shard. */
uint64_t sub_consumer_key(const struct shard *sh, const struct sub *sub);
/* Removes s->subs[i]: interest withdrawn, a queue's owner requeues its unacked messages. */
void sub_remove(struct shard *sh, struct session *s, uint32_t i);

#endif
