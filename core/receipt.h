/*
 * core/receipt.h - receipts and refusals of one session. Receipts go out strictly in the
 * order their frames arrived, each once the owner replies it waits for (XMSG_DONE) are in,
 * so a RECEIPT for SEND means the owner holds the message and a DISCONNECT receipt means
 * every earlier SEND is held. A refused frame gets an ERROR (with receipt-id when it asked
 * for one) after the receipts owed before it, then the connection closes.
 * Spec: STOMP 1.2 "RECEIPT", "ERROR".
 *
 * Thread: the session's shard.
 */
#ifndef CORE_RECEIPT_H
#define CORE_RECEIPT_H

#include "proto/stomp_parse.h"

#include <stdbool.h>
#include <stdint.h>

struct net_conn;
struct session;
struct shard;

/* The frame's receipt header, or NULL. */
const struct stomp_view *receipt_header(const struct stomp_frame *f);

/* Queues a receipt for frame f (if it asked for one) that waits for `waiting` owner
 * replies; returns the seq those replies carry (0 when no receipt was asked). A
 * `disconnect` receipt closes the connection once written. */
uint32_t receipt_begin(struct session *s, const struct stomp_frame *f, uint32_t waiting,
		       bool disconnect);
/* One more owner reply to wait for before receipt `seq` goes out. */
void receipt_add_wait(struct session *s, uint32_t seq);
/* Asks shard `to` to answer (XMSG_SYNC -> XMSG_DONE) once it has applied everything this
 * shard sent it so far; receipt `seq` waits for the answer. No-op when seq is 0. */
void receipt_sync_with(struct shard *sh, struct session *s, uint32_t to, uint32_t seq);
/* receipt_sync_with for every shard in `mask` (bit i: shard i). */
void receipt_sync_mask(struct shard *sh, struct session *s, uint64_t mask, uint32_t seq);
/* Writes every receipt at the head of the line whose waits are over. */
void receipt_flush(struct shard *sh, struct session *s);
/* Frees the receipts still owed (the connection is gone). */
void receipt_free_all(struct session *s);

/* ERROR frame now (`detail` is the body; receipt-id when given), then close after flush. */
void session_fail(struct shard *sh, struct session *s, const char *message, const char *detail,
		  const struct stomp_view *receipt);
/* ERROR once the receipts owed for earlier frames are out; nothing more is read. */
void session_fail_after_receipts(struct shard *sh, struct session *s, const char *message,
				 const char *detail, const struct stomp_view *receipt);
/* Refuses frame f: session_fail_after_receipts with f's receipt header. */
void session_fail_frame(struct shard *sh, struct session *s, const struct stomp_frame *f,
			const char *message, const char *detail);

#endif
