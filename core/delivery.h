/*
 * core/delivery.h - MESSAGE frames to a session's subscriptions: topic fan-out on this
 * shard (a slow consumer is cut off with an ERROR), queue deliveries and the credit that
 * flows back to a queue's owner as the connection's wire queue drains.
 * Spec: STOMP 1.2 "MESSAGE".
 *
 * Thread: the session's shard. The xmsg handlers are in core/session.h.
 */
#ifndef CORE_DELIVERY_H
#define CORE_DELIVERY_H

struct shard;
struct sub;

/* Tells the queue's owner how many deliveries left the wire queue since the last time. */
void delivery_credit_return(struct shard *sh, struct sub *sub);

#endif
