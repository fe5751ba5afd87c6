/*
 * core/receipt.c - receipts in frame order, and ERROR frames (see receipt.h).
 *
 * Thread: the session's shard.
 */
#include "core/receipt.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/session_state.h"
#include "core/shard.h"
#include "net/loop.h"

#include <string.h>

struct receipt_wait {
	struct receipt_wait *next;
	uint32_t seq;
	uint32_t waiting;	/* owner replies still to come */
	bool disconnect;
	/* an ERROR held back until the receipts owed before it are out (session_fail_frame) */
	bool fail;
	bool has_id;		/* fail: the failing frame asked for a receipt (id) */
	const char *fail_message;	/* fail: both point into this allocation */
	const char *fail_detail;
	char id[];
};

/* ERROR frame, then close once it is written. `detail` becomes the body. */
void session_fail(struct shard *sh, struct session *s, const char *message,
			 const char *detail, const struct stomp_view *receipt)
{
	struct stomp_header h[4] = { HEADER_LIT("message", message), HEADER_LIT("content-type", "text/plain") };
	size_t nh = 2;

	if (s->close_mode)
		return;
	sh->stats.errors_sent++;
	if (receipt) {
		h[nh].name = (struct stomp_view){ "receipt-id", 10 };
		h[nh++].value = *receipt;
	}
	hd_log_conn(HD_LOG_INFO, s->conn->id, "ERROR %s", message);
	session_write_frame(sh, s, STOMP_CMD_ERROR, h, nh, detail ? detail : message,
		    strlen(detail ? detail : message));
	session_close_later(sh, s, CLOSE_AFTER_FLUSH);
}

const struct stomp_view *receipt_header(const struct stomp_frame *f)
{
	return stomp_frame_header(f, "receipt");
}

static void receipt_append(struct session *s, struct receipt_wait *w)
{
	if (s->rw_tail)
		s->rw_tail->next = w;
	else
		s->rw_head = w;
	s->rw_tail = w;
}

/*
 * A frame is refused: ERROR, then close. Receipts for earlier frames that still wait for
 * owner replies (a SEND's, a SUBSCRIBE's) go out first, in order, or a client would think
 * those frames failed too and send them again; meanwhile nothing more is read.
 */
void session_fail_after_receipts(struct shard *sh, struct session *s, const char *message,
				const char *detail, const struct stomp_view *receipt)
{
	size_t rlen = receipt ? receipt->len : 0;
	size_t mlen = strlen(message);
	size_t dlen = strlen(detail ? detail : message);
	struct receipt_wait *w;
	char *p;

	if (!s->rw_head || s->close_mode) {
		session_fail(sh, s, message, detail, receipt);
		return;
	}
	w = hd_alloc(sizeof(*w) + rlen + 1 + mlen + 1 + dlen + 1);
	memset(w, 0, sizeof(*w));
	w->fail = true;
	w->has_id = receipt != NULL;
	if (rlen)
		memcpy(w->id, receipt->ptr, rlen);
	w->id[rlen] = '\0';
	p = w->id + rlen + 1;
	memcpy(p, message, mlen + 1);
	w->fail_message = p;
	p += mlen + 1;
	memcpy(p, detail ? detail : message, dlen + 1);
	w->fail_detail = p;
	receipt_append(s, w);
	s->disconnecting = true;	/* later input is dropped unread */
	net_conn_pause_recv(&sh->loop, s->conn);
}

void session_fail_frame(struct shard *sh, struct session *s, const struct stomp_frame *f,
		       const char *message, const char *detail)
{
	session_fail_after_receipts(sh, s, message, detail, receipt_header(f));
}

void receipt_flush(struct shard *sh, struct session *s)
{
	while (s->rw_head && !s->rw_head->waiting && !s->close_mode) {
		struct receipt_wait *w = s->rw_head;
		struct stomp_header h[1] = { { { "receipt-id", 10 }, { w->id, strlen(w->id) } } };

		s->rw_head = w->next;
		if (!s->rw_head)
			s->rw_tail = NULL;
		if (w->fail) {
			struct stomp_view rid = { w->id, strlen(w->id) };

			session_fail(sh, s, w->fail_message, w->fail_detail, w->has_id ? &rid : NULL);
		} else {
			session_write_frame(sh, s, STOMP_CMD_RECEIPT, h, 1, NULL, 0);
			if (w->disconnect)
				session_close_later(sh, s, CLOSE_AFTER_FLUSH);
		}
		hd_free(w);
	}
	if (s->close_after_receipts && !s->rw_head)
		session_close_later(sh, s, CLOSE_AFTER_FLUSH);
}

bool session_on_eof(struct shard *sh, struct net_conn *c)
{
	struct session *s = c->user;

	(void)sh;
	if (!s || s->close_mode || !s->rw_head)
		return false;
	/* A client may send a receipted SEND and shut its side down: it must still learn
	 * that the SEND is held, or it will send it again */
	s->disconnecting = true;
	s->close_after_receipts = true;
	return true;
}

/* Queues a receipt for frame f (if it asked for one) that waits for `waiting` owner
 * replies; returns the seq those replies must carry (0 when no receipt was asked). */
uint32_t receipt_begin(struct session *s, const struct stomp_frame *f, uint32_t waiting,
			      bool disconnect)
{
	const struct stomp_view *r = receipt_header(f);
	struct receipt_wait *w;

	if (!r)
		return 0;
	w = hd_alloc(sizeof(*w) + r->len + 1);
	memset(w, 0, sizeof(*w));
	if (++s->next_seq == 0)
		s->next_seq = 1;
	w->seq = s->next_seq;
	w->waiting = waiting;
	w->disconnect = disconnect;
	memcpy(w->id, r->ptr, r->len);
	w->id[r->len] = '\0';
	receipt_append(s, w);
	return w->seq;
}

void receipt_add_wait(struct session *s, uint32_t seq)
{
	/* the receipt being waited for is nearly always the one just added, at the tail: a
	 * walk from the head made every receipted SEND cost the number of receipts pending
	 * (with copies on a backup, hundreds - bench/README.md, "Replication") */
	if (s->rw_tail && s->rw_tail->seq == seq) {
		s->rw_tail->waiting++;
		return;
	}
	for (struct receipt_wait *w = s->rw_head; w; w = w->next) {
		if (w->seq == seq) {
			w->waiting++;
			return;
		}
	}
}

/* Asks shard `to` to answer once it has applied everything we sent it so far. */
void receipt_sync_with(struct shard *sh, struct session *s, uint32_t to, uint32_t seq)
{
	struct xmsg m = { .kind = XMSG_SYNC, .a = session_conn_ref(s), .u32 = seq };

	if (!seq)
		return;
	receipt_add_wait(s, seq);
	shard_send(sh, to, &m);
}

void session_on_done(struct shard *sh, const struct xmsg *m)
{
	struct session *s = session_by_ref(sh, m->a);

	if (!s)
		return;
	if (XDONE_ERR(m->b) == XERR_QUEUE_FULL || XDONE_ERR(m->b) == XERR_UNAVAILABLE ||
	    XDONE_ERR(m->b) == XERR_UNREPLICATED) {
		struct stomp_view rid = { 0 };
		bool full = XDONE_ERR(m->b) == XERR_QUEUE_FULL;

		for (struct receipt_wait *w = s->rw_head; w && m->u32; w = w->next)
			if (w->seq == m->u32)
				rid = (struct stomp_view){ w->id, strlen(w->id) };
		sh->stats.refused_sends++;
		if (full)
			session_fail(sh, s, "queue is full",
				     "The destination queue reached max-queue-length; the message was "
				     "not accepted", rid.ptr ? &rid : NULL);
		else if (XDONE_ERR(m->b) == XERR_UNREPLICATED)
			session_fail(sh, s, "queue cannot be replicated",
				     "The nodes that hold the queue's copies did not confirm the "
				     "message in time (this node may be cut off from the rest of the "
				     "cluster); it may or may not have been accepted: send it again, "
				     "through another node if this one stays cut off",
				     rid.ptr ? &rid : NULL);
		else
			session_fail(sh, s, "queue owner unreachable",
				     "The node that owns the queue went away or handed it on before "
				     "it confirmed the message; it may or may not have been accepted: "
				     "reconnect and send it again", rid.ptr ? &rid : NULL);
		return;
	}
	for (struct receipt_wait *w = s->rw_head; w; w = w->next) {
		if (w->seq == m->u32) {
			if (w->waiting)
				w->waiting--;
			break;
		}
	}
	receipt_flush(sh, s);
}

void receipt_sync_mask(struct shard *sh, struct session *s, uint64_t mask, uint32_t seq)
{
	for (uint32_t i = 0; mask && i < sh->nendpoints; i++, mask >>= 1)
		if (mask & 1)
			receipt_sync_with(sh, s, i, seq);
}

void receipt_free_all(struct session *s)
{
	while (s->rw_head) {
		struct receipt_wait *w = s->rw_head;

		s->rw_head = w->next;
		hd_free(w);
	}
	s->rw_tail = NULL;
}
