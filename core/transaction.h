/*
 * core/transaction.h - BEGIN, COMMIT, ABORT: a transaction holds its SENDs, ACKs and NACKs
 * until COMMIT applies them in order (ABORT, or the connection closing, drops them).
 * Spec: STOMP 1.2 "BEGIN", "COMMIT", "ABORT".
 *
 * Thread: the session's shard.
 */
#ifndef CORE_TRANSACTION_H
#define CORE_TRANSACTION_H

#include "proto/stomp_parse.h"

#include <stdbool.h>
#include <stdint.h>

struct hmsg;
struct session;
struct shard;

enum tx_op_kind { TXOP_SEND, TXOP_ACK, TXOP_NACK };

/* One frame held in a transaction. */
struct tx_op {
	struct tx_op *next;
	uint8_t kind;		/* enum tx_op_kind */
	struct hmsg *m;		/* TXOP_SEND */
	char *ack_id;		/* TXOP_ACK/NACK: "id" (1.2) or "message-id" */
	char *ack_sub;		/* 1.1 "subscription", or NULL */
	bool requeue;
};

struct tx {
	struct tx *next;
	struct tx_op *head;
	struct tx_op *tail;
	uint32_t nops;
	char name[];
};

/* The frame handlers. */
void tx_on_begin(struct shard *sh, struct session *s, const struct stomp_frame *f);
void tx_on_commit(struct shard *sh, struct session *s, const struct stomp_frame *f);
void tx_on_abort(struct shard *sh, struct session *s, const struct stomp_frame *f);

/* The transaction frame f names, or NULL (no header). On an unknown name or a full
 * transaction: the frame is refused (ERROR) and *bad is set. */
struct tx *tx_of_frame(struct shard *sh, struct session *s, const struct stomp_frame *f, bool *bad);
/* Appends op (taking it) to tx. */
void tx_append(struct tx *tx, struct tx_op *op);
/* Drops every open transaction of s (the connection closed: they abort). */
void tx_abort_all(struct session *s);

#endif
