/*
 * core/ack.c - ACK and NACK (see ack.h).
 *
 * Thread: the session's shard.
 */
#include "core/ack.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"
#include "core/destname.h"
#include "core/hmsg.h"
#include "core/mdeque.h"
#include "core/receipt.h"
#include "core/session.h"
#include "core/session_state.h"
#include "core/shard.h"
#include "core/subscription.h"
#include "core/transaction.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finds the delivery an ACK/NACK names: (sub, index in its pending list). */
bool ack_find_delivery(struct session *s, const char *id, const char *subid, struct sub **out_sub,
			  uint32_t *out_i)
{
	if (s->version == STOMP_V12) {
		char *dot;
		unsigned long idx = strtoul(id, &dot, 10);
		unsigned long long tag;
		struct sub *sub;

		if (*dot != '.')
			return false;
		tag = strtoull(dot + 1, NULL, 10);
		sub = sub_by_idx(s, (uint32_t)idx);
		if (sub) {
			int64_t i = mdeque_find_tag(&sub->pend, tag);	/* tags ascend ... */

			/* ... per owner: a queue that moved mixes two owners' tags */
			for (uint32_t k = 0; i < 0 && k < sub->pend.n; k++)
				if (mdeque_at(&sub->pend, k)->tag == tag)
					i = k;
			if (i >= 0) {
				*out_sub = sub;
				*out_i = (uint32_t)i;
				return true;
			}
		}
		return false;
	}
	/* 1.0 and 1.1 name the message-id (1.1 also the subscription) */
	for (uint32_t k = 0; k < s->nsubs; k++) {
		struct sub *sub = s->subs[k];

		if (subid && strcmp(sub->id, subid))
			continue;
		for (uint32_t i = 0; i < sub->pend.n; i++) {
			struct stomp_view mid = hmsg_msgid(mdeque_at(&sub->pend, i)->m);

			if (mid.len == strlen(id) && !memcmp(mid.ptr, id, mid.len)) {
				*out_sub = sub;
				*out_i = i;
				return true;
			}
		}
	}
	return false;
}

/* The ACK names the registration the delivery came under (its epoch): an owner applies it
 * only to that registration, so an ACK of a delivery the queue's previous owner made (and
 * requeued when the queue moved) can never acknowledge another message. */
static void ack_to_owner(struct shard *sh, struct sub *sub, uint32_t mode, uint64_t tag,
			 uint32_t epoch)
{
	struct xmsg m = {
		.kind = XMSG_QUEUE_ACK,
		.u32 = mode | epoch << XDELIVER_EPOCH_SHIFT,
		.a = sub_consumer_key(sh, sub),
		.b = tag,
		.ptr = xname_create(sub->dest, sub->dest_len),
	};

	shard_send(sh, sub->owner, &m);
}

/* Applies an ACK or NACK; returns the owner shard to sync with, -1 when the id is unknown. */
int ack_apply(struct shard *sh, struct session *s, bool nack, const char *id, const char *subid,
		     bool requeue)
{
	struct sub *sub;
	uint32_t i;
	uint64_t tag;
	bool upto;
	uint32_t epoch;

	if (!ack_find_delivery(s, id, subid, &sub, &i))
		return -1;
	tag = mdeque_at(&sub->pend, i)->tag;
	epoch = mdeque_at(&sub->pend, i)->epoch;
	upto = sub->ack_mode == SESSION_ACK_CLIENT;
	if (upto) {
		/* client mode is cumulative: this delivery and all before it */
		for (uint32_t k = 0; k <= i; k++)
			hmsg_unref(mdeque_pop_front(&sub->pend).m);
	} else {
		hmsg_unref(mdeque_at(&sub->pend, i)->m);
		mdeque_remove_at(&sub->pend, i);
	}
	if (sub->kind != SUB_QUEUE)
		return (int)sh->id;	/* topics: nothing is kept, nothing to requeue */
	if (!nack)
		ack_to_owner(sh, sub, upto ? XACK_UPTO : XACK_ONE, tag, epoch);
	else if (!requeue)
		ack_to_owner(sh, sub, upto ? XACK_UPTO : XNACK_DROP_ONE, tag, epoch);
	else
		ack_to_owner(sh, sub, upto ? XNACK_UPTO : XNACK_ONE, tag, epoch);
	return (int)sub->owner;
}

static void fail_unknown_ack_id(struct shard *sh, struct session *s, const struct stomp_frame *f,
				const char *id)
{
	char detail[256];

	snprintf(detail, sizeof(detail), "No unacknowledged message has the id '%s'", id);
	session_fail_frame(sh, s, f, "unknown ack id", detail);
}

static void on_ack_nack(struct shard *sh, struct session *s, const struct stomp_frame *f, bool nack)
{
	const struct stomp_view *id = stomp_frame_header(f, s->version == STOMP_V12 ? "id" : "message-id");
	const struct stomp_view *subv = stomp_frame_header(f, "subscription");
	const struct stomp_view *rq = stomp_frame_header(f, "requeue");
	bool requeue = !(rq && STOMP_VIEW_EQ_LIT(*rq, "false"));
	char idbuf[128];
	char subbuf[256];
	const char *ack_sub;
	struct tx *tx;
	bool bad;
	int owner;

	if (!id) {
		session_fail_frame(sh, s, f, "missing id header",
			   s->version == STOMP_V12 ? "ACK and NACK require an 'id' header"
						   : "ACK and NACK require a 'message-id' header");
		return;
	}
	if (s->version == STOMP_V11 && !subv) {
		session_fail_frame(sh, s, f, "missing subscription header",
			   "STOMP 1.1 ACK and NACK require a 'subscription' header");
		return;
	}
	snprintf(idbuf, sizeof(idbuf), "%.*s", (int)HD_MIN(id->len, sizeof(idbuf) - 1), id->ptr);
	if (subv)
		snprintf(subbuf, sizeof(subbuf), "%.*s", (int)HD_MIN(subv->len, sizeof(subbuf) - 1), subv->ptr);
	ack_sub = subv && s->version == STOMP_V11 ? subbuf : NULL;	/* 1.1 names the sub */
	tx = tx_of_frame(sh, s, f, &bad);
	if (bad)
		return;
	if (tx) {
		struct tx_op *op;
		struct sub *dsub;
		uint32_t di;

		/* refused now, as outside a transaction, not lost silently at COMMIT */
		if (!ack_find_delivery(s, idbuf, ack_sub, &dsub, &di)) {
			fail_unknown_ack_id(sh, s, f, idbuf);
			return;
		}
		op = hd_calloc(1, sizeof(*op));
		op->kind = nack ? TXOP_NACK : TXOP_ACK;
		op->ack_id = hd_strndup(idbuf, strlen(idbuf));
		op->ack_sub = ack_sub ? hd_strndup(ack_sub, strlen(ack_sub)) : NULL;
		op->requeue = requeue;
		tx_append(tx, op);
		if (receipt_begin(s, f, 0, false))
			receipt_flush(sh, s);
		return;
	}
	owner = ack_apply(sh, s, nack, idbuf, ack_sub, requeue);
	if (owner < 0) {
		fail_unknown_ack_id(sh, s, f, idbuf);
		return;
	}
	receipt_sync_with(sh, s, (uint32_t)owner, receipt_begin(s, f, 0, false));
	receipt_flush(sh, s);
}

void ack_on_ack(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	on_ack_nack(sh, s, f, false);
}

void ack_on_nack(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	on_ack_nack(sh, s, f, true);
}
