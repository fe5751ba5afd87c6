/*
 * core/delivery.c - MESSAGE frames out (see delivery.h). Each delivery queues a small
 * per-subscriber head (subscription, message-id, ack, redelivered) inline and the shared
 * tail by reference: one sendmsg iovec pair, no copy of the tail.
 *
 * Thread: the session's shard.
 */
#include "core/delivery.h"

#include "core/base/hd_fmt.h"
#include "core/dest.h"
#include "core/destname.h"
#include "core/hmsg.h"
#include "core/receipt.h"
#include "core/session.h"
#include "core/session_state.h"
#include "core/shard.h"
#include "core/subscription.h"
#include "core/topic_match.h"
#include "core/wsconn.h"
#include "net/loop.h"
#include "proto/stomp_encode.h"

#include <string.h>

#define MAX_PENDING_TOPIC_ACKS 65536	/* client-ack topic deliveries not acked: slow consumer */
/* Credit goes back to a queue's owner at once while the socket keeps up (less than this
 * many bytes wait to be written); past it, when the connection's output drains. */
#define CREDIT_EAGER_OUT_BYTES 65536

/* ack id: "<subscription index>.<tag>", unique within the session */
static size_t format_ack_id(char *out, uint32_t idx, uint64_t tag)
{
	size_t n = hd_fmt_u64(out, idx);

	out[n++] = '.';
	return n + hd_fmt_u64(out + n, tag);
}

/* Queues one MESSAGE: per-subscriber head inline, shared tail by reference. */
static void deliver(struct shard *sh, struct sub *sub, struct hmsg *m, uint64_t tag,
		    enum stomp_redelivered redelivered, uint32_t epoch)
{
	struct session *s = sub->s;
	struct net_out *o = net_conn_out_reserve(&sh->loop, s->conn);
	char ack[48];
	struct stomp_view ackv = { ack, 0 };
	size_t room = s->ws ? WSCONN_HEAD_ROOM : 0;
	uint32_t tail_len;
	const char *tail = hmsg_tail_for(m, s->version, &tail_len);
	ssize_t n;

	if (sub->ack_mode != SESSION_ACK_AUTO) {
		ackv.len = format_ack_id(ack, sub->idx, tag);
		hmsg_ref(m, 1);
		mdeque_push_back(&sub->pend, (struct mentry){ .m = m, .tag = tag, .epoch = epoch });
	}
	n = stomp_encode_message_head(o->head + room, NET_OUT_HEAD_CAP - room, s->version,
				      (struct stomp_view){ sub->id, sub->id_len }, hmsg_msgid(m),
				      s->version == STOMP_V12 ? ackv : (struct stomp_view){ 0 },
				      redelivered);
	if (n >= 0) {
		size_t len = s->ws ? wsconn_prefix_head(o->head, room, (size_t)n, m, tail_len) : (size_t)n;

		o->head_len = (uint16_t)len;
	} else {
		/* a long subscription id: the head goes out as its own copied entry */
		n = stomp_encode_message_head(sh->sessions.enc_buf + room, sh->sessions.enc_cap - room, s->version,
					      (struct stomp_view){ sub->id, sub->id_len }, hmsg_msgid(m),
					      s->version == STOMP_V12 ? ackv : (struct stomp_view){ 0 },
					      redelivered);
		HD_ASSERT(n > 0);
		net_conn_write_copy(&sh->loop, s->conn, sh->sessions.enc_buf,
				    s->ws ? wsconn_prefix_head(sh->sessions.enc_buf, room, (size_t)n, m, tail_len) :
					    (size_t)n)->flags |= NET_OUT_CONTINUES;
		o = net_conn_out_reserve(&sh->loop, s->conn);
	}
	hmsg_ref(m, 1);
	o->tail = tail;
	o->tail_len = tail_len;
	o->release = hmsg_release_cb;
	o->release_arg = m;
	net_conn_out_commit(&sh->loop, s->conn, o);
	s->last_tx_ms = sh->now_ms;
	sh->stats.delivered++;
}

static bool is_slow(struct shard *sh, struct session *s)
{
	return s->conn->out_bytes > sh->limits.max_outbound_bytes;
}

static void deliver_topic(struct shard *sh, struct sub *sub, struct hmsg *m)
{
	struct session *s = sub->s;

	if (s->close_mode)
		return;
	if (is_slow(sh, s) || sub->pend.n >= MAX_PENDING_TOPIC_ACKS) {
		sh->stats.slow_consumers++;
		/* its backlog is dropped, so the ERROR is the next thing it reads (not behind
		 * max-outbound-bytes it may never drain before the close deadline), and a
		 * consumer that cannot keep up holds no memory */
		net_conn_drop_unsent(&sh->loop, s->conn);
		session_fail(sh, s, "slow consumer",
			     "The connection fell too far behind its topic subscriptions "
			     "(max-outbound-bytes); it is closed", NULL);
		return;
	}
	deliver(sh, sub, m, ++sub->next_tag, STOMP_REDELIVERED_OMIT, sub->owner_epoch & XEPOCH_MASK);
}

void session_on_topic_deliver(struct shard *sh, const struct xmsg *xm)
{
	struct hmsg *m = xm->ptr;
	struct local_topic *lt = strmap_get(&sh->sessions.local.topics, hmsg_dest(m), m->dest_len);
	const size_t plen = DESTNAME_TOPIC_LEN;

	if (lt) {
		for (struct sub *sub = lt->head, *next; sub; sub = next) {
			next = sub->next;
			deliver_topic(sh, sub, m);
		}
	}
	for (struct sub *sub = sh->sessions.local.patterns, *next; sub; sub = next) {
		next = sub->next;
		if (topic_match_scoped(sub->dest + plen, sub->dest_len - plen, hmsg_dest(m) + plen,
				       m->dest_len - plen))
			deliver_topic(sh, sub, m);
	}
	hmsg_unref(m);
}

void session_on_queue_deliver(struct shard *sh, const struct xmsg *xm)
{
	struct hmsg *m = xm->ptr;
	uint64_t key = xm->a;
	struct session *s = session_by_key(sh, key);
	struct sub *sub = s ? sub_by_idx(s, xmsg_key_sub(key)) : NULL;

	if (!sub) {
		/* the consumer left while this was on its way: back to the queue */
		struct xmsg r = { .kind = XMSG_QUEUE_RETURN, .ptr = m, .a = key, .b = xm->b,
				  .u32 = (xm->u32 >> XDELIVER_ACK_MODE_SHIFT) & 0xff };

		shard_send(sh, dest_owner(sh, hmsg_dest(m), m->dest_len), &r);
		return;
	}
	deliver(sh, sub, m, xm->b,
		(xm->u32 & XDELIVER_REDELIVERED) ? STOMP_REDELIVERED_TRUE : STOMP_REDELIVERED_FALSE,
		xm->u32 >> XDELIVER_EPOCH_SHIFT);
	hmsg_unref(m);
	sub->credit_pending++;
	/* credit flows back at once while the socket keeps up; else when it drains */
	if (sub->credit_pending >= DEST_CREDIT_WINDOW / 4 && s->conn->out_bytes < CREDIT_EAGER_OUT_BYTES)
		delivery_credit_return(sh, sub);
}

void delivery_credit_return(struct shard *sh, struct sub *sub)
{
	struct xmsg m;

	if (!sub->credit_pending)
		return;
	m = (struct xmsg){
		.kind = XMSG_QUEUE_ACK,
		.u32 = XACK_CREDIT,
		.a = sub_consumer_key(sh, sub),
		.b = sub->credit_pending,
		.ptr = xname_create(sub->dest, sub->dest_len),
	};
	sub->credit_pending = 0;
	shard_send(sh, sub->owner, &m);
}

bool session_output_full(struct shard *sh, struct session *s)
{
	if (s->conn->out_bytes <= sh->limits.max_outbound_bytes)
		return false;
	if (!s->out_full)
		net_conn_pause_recv(&sh->loop, s->conn);
	s->out_full = true;
	return true;
}

void session_on_drain(struct shard *sh, struct net_conn *c)
{
	struct session *s = c->user;

	if (!s)
		return;
	if (s->out_full && !s->close_mode) {
		s->out_full = false;	/* all written: read what waited */
		if (!s->auth_pending && !s->deny_at_ms && !s->retry_at_ms)
			session_read_again(sh, s);
		if (c->state != NET_CONN_OPEN || c->user != s)
			return;
	}
	for (uint32_t i = 0; i < s->nsubs; i++)
		if (s->subs[i]->kind == SUB_QUEUE)
			delivery_credit_return(sh, s->subs[i]);
}
