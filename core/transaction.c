/*
 * core/transaction.c - BEGIN, COMMIT, ABORT (see transaction.h).
 *
 * Thread: the session's shard.
 */
#include "core/transaction.h"

#include "core/ack.h"
#include "core/base/hd_alloc.h"
#include "core/hmsg.h"
#include "core/publish.h"
#include "core/receipt.h"
#include "core/session_state.h"
#include "core/shard.h"

#include <string.h>

static struct tx *tx_find(struct session *s, const struct stomp_view *name, struct tx ***link)
{
	struct tx **pp = &s->txs;

	for (; *pp; pp = &(*pp)->next) {
		if (stomp_view_eq(*name, (*pp)->name, strlen((*pp)->name))) {
			if (link)
				*link = pp;
			return *pp;
		}
	}
	return NULL;
}

/* The transaction a frame names, or NULL (no header). On an unknown name: ERROR, *bad. */
struct tx *tx_of_frame(struct shard *sh, struct session *s, const struct stomp_frame *f, bool *bad)
{
	const struct stomp_view *t = stomp_frame_header(f, "transaction");
	struct tx *tx;

	*bad = false;
	if (!t)
		return NULL;
	tx = tx_find(s, t, NULL);
	if (!tx) {
		*bad = true;
		session_fail_frame(sh, s, f, "unknown transaction", "The transaction header names no open transaction");
	} else if (tx->nops >= sh->limits.max_tx_frames) {
		*bad = true;
		session_fail_frame(sh, s, f, "transaction too large", "The transaction holds max-tx-frames frames");
	}
	return tx;
}

void tx_append(struct tx *tx, struct tx_op *op)
{
	op->next = NULL;
	if (tx->tail)
		tx->tail->next = op;
	else
		tx->head = op;
	tx->tail = op;
	tx->nops++;
}

static void tx_free(struct tx *tx)
{
	for (struct tx_op *op = tx->head, *next; op; op = next) {
		next = op->next;
		if (op->m)
			hmsg_unref(op->m);
		hd_free(op->ack_id);
		hd_free(op->ack_sub);
		hd_free(op);
	}
	hd_free(tx);
}

static uint32_t tx_count(const struct session *s)
{
	uint32_t n = 0;

	for (const struct tx *tx = s->txs; tx; tx = tx->next)
		n++;
	return n;
}

void tx_on_begin(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *t = stomp_frame_header(f, "transaction");
	struct tx *tx;

	if (!t) {
		session_fail_frame(sh, s, f, "missing transaction header", "BEGIN requires a 'transaction' header");
		return;
	}
	if (tx_find(s, t, NULL)) {
		session_fail_frame(sh, s, f, "transaction already started", "The transaction name is in use");
		return;
	}
	if (tx_count(s) >= sh->limits.max_transactions) {
		/* each open one is looked up by a walk: unbounded, they would stall the shard */
		session_fail_frame(sh, s, f, "too many transactions",
			   "This connection has max-transactions open; COMMIT or ABORT some first");
		return;
	}
	tx = hd_calloc(1, sizeof(*tx) + t->len + 1);
	memcpy(tx->name, t->ptr, t->len);
	tx->next = s->txs;
	s->txs = tx;
	if (receipt_begin(s, f, 0, false))
		receipt_flush(sh, s);
}

static struct tx *tx_take(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *t = stomp_frame_header(f, "transaction");
	struct tx **link;
	struct tx *tx;

	if (!t) {
		session_fail_frame(sh, s, f, "missing transaction header", "This frame requires a 'transaction' header");
		return NULL;
	}
	tx = tx_find(s, t, &link);
	if (!tx) {
		session_fail_frame(sh, s, f, "unknown transaction", "The transaction header names no open transaction");
		return NULL;
	}
	*link = tx->next;
	return tx;
}

void tx_on_commit(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	struct tx *tx = tx_take(sh, s, f);
	uint64_t touched = 0;
	uint32_t seq;

	if (!tx)
		return;
	seq = receipt_begin(s, f, 0, false);
	for (struct tx_op *op = tx->head; op; op = op->next) {
		int owner;

		if (op->kind == TXOP_SEND) {
			publish_route(sh, s, op->m, seq);
			op->m = NULL;	/* the owner has it now */
			continue;
		}
		owner = ack_apply(sh, s, op->kind == TXOP_NACK, op->ack_id, op->ack_sub, op->requeue);
		if (owner >= 0)
			touched |= 1ull << owner;
	}
	tx_free(tx);
	receipt_sync_mask(sh, s, touched, seq);
	receipt_flush(sh, s);
}

void tx_on_abort(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	struct tx *tx = tx_take(sh, s, f);

	if (!tx)
		return;
	tx_free(tx);
	if (receipt_begin(s, f, 0, false))
		receipt_flush(sh, s);
}

void tx_abort_all(struct session *s)
{
	while (s->txs) {
		struct tx *tx = s->txs;

		s->txs = tx->next;
		tx_free(tx);
	}
}
