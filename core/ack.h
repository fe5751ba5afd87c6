/*
 * core/ack.h - ACK and NACK: finding the delivery a client names (1.2 by the MESSAGE's ack
 * id, 1.0/1.1 by message-id, 1.1 with the subscription), cumulative for ack mode client,
 * one at a time for client-individual; the queue's owner is told. Spec: STOMP 1.2 "ACK",
 * "NACK"; requeue:false as RabbitMQ.
 *
 * Thread: the session's shard.
 */
#ifndef CORE_ACK_H
#define CORE_ACK_H

#include "proto/stomp_parse.h"

#include <stdbool.h>
#include <stdint.h>

struct session;
struct shard;
struct sub;

/* The frame handlers. */
void ack_on_ack(struct shard *sh, struct session *s, const struct stomp_frame *f);
void ack_on_nack(struct shard *sh, struct session *s, const struct stomp_frame *f);

/* Finds the delivery named by id (and 1.1 subscription id subid, or NULL): its
 * subscription and index in that subscription's pending list. */
bool ack_find_delivery(struct session *s, const char *id, const char *subid, struct sub **out_sub,
		       uint32_t *out_i);
/* Applies an ACK or NACK; returns the owner shard to sync with, -1 when the id is unknown. */
int ack_apply(struct shard *sh, struct session *s, bool nack, const char *id, const char *subid,
	      bool requeue);

#endif
