/*
 * core/dest.c - owner side of topics and queues.
 *
 * Topics: per topic a count of subscriptions per shard and a bitmask of shards with any;
 * every shard keeps this table for all topics (interest changes are broadcast), so the
 * publisher's own shard routes a publish: one XMSG_TOPIC_DELIVER per interested shard
 * (exact topic and every matching pattern), never one per subscriber; each shard then fans
 * out to its own connections.
 *
 * Queues: ready messages in FIFO order; consumers served round robin, each limited by a
 * credit window (deliveries not yet taken onto its connection's wire queue; a slow consumer
 * stops getting credit back, so the queue keeps its messages) and by prefetch-count
 * (unacked deliveries). A NACK, or a consumer that goes away, puts its unacked messages back
 * at the front, marked redelivered, ahead of newer ones (RabbitMQ's behaviour).
 */
#include "core/dest.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/destname.h"
#include "core/hmsg.h"
#include "core/mdeque.h"
#include "core/session.h"
#include "core/shard.h"

#include <string.h>

struct qconsumer {
	uint64_t key;
	uint8_t ack_mode;
	uint32_t prefetch;	/* 0: unlimited */
	uint32_t inflight;	/* deliveries not yet credited back */
	struct mdeque unacked;	/* client modes: in tag order */
};

struct dest_queue {
	struct mdeque ready;
	struct qconsumer **consumers;
	uint32_t nconsumers;
	uint32_t rr;		/* next consumer to try */
	uint64_t next_tag;
	uint32_t len;
	char name[];
};

uint32_t dest_owner(const struct shard *sh, const char *name, size_t len)
{
	return (uint32_t)(hd_hash(name, len) % sh->nshards);
}

void dest_table_init(struct dest_table *t, uint32_t ncolumns)
{
	memset(t, 0, sizeof(*t));
	interest_table_init(&t->interest, ncolumns);
	strmap_init(&t->queues);
}

/* ---- topics ---- */

void dest_on_topic_interest(struct shard *sh, const struct xmsg *m, int pattern)
{
	struct xname *n = m->ptr;

	/* a pattern's name comes without "/topic/" */
	interest_apply(&sh->dests.interest, pattern, n->name, n->len, m->from, m->u32 ? 1 : -1, NULL);
	hd_free(n);
}

static void topic_publish(struct shard *sh, struct hmsg *m)
{
	uint64_t mask = interest_match(&sh->dests.interest, hmsg_dest(m), m->dest_len);

	if (mask)
		hmsg_ref(m, (uint32_t)__builtin_popcountll(mask));
	for (uint32_t s = 0; mask; s++, mask >>= 1) {
		if (mask & 1) {
			struct xmsg d = { .kind = XMSG_TOPIC_DELIVER, .ptr = m };

			shard_send(sh, s, &d);
		}
	}
	sh->stats.published++;
	hmsg_unref(m);
}

/* ---- queues ---- */

static struct dest_queue *queue_get(struct shard *sh, const char *name, size_t len, bool create)
{
	struct dest_queue *q = strmap_get(&sh->dests.queues, name, len);

	if (q || !create)
		return q;
	q = hd_calloc(1, sizeof(*q) + len + 1);
	q->len = (uint32_t)len;
	memcpy(q->name, name, len);
	strmap_put(&sh->dests.queues, q->name, len, q);
	return q;
}

/* An idle queue (no consumers, no messages) holds no memory. A reply queue (a server-made
 * name) dies with its one consumer, messages and all: nobody else may ever read them. */
static void queue_maybe_drop(struct shard *sh, struct dest_queue *q)
{
	if (q->nconsumers)
		return;
	if (q->ready.n && !destname_key_is_server_queue(q->name, q->len))
		return;
	sh->dests.queued_msgs -= q->ready.n;
	while (q->ready.n)
		hmsg_unref(mdeque_pop_front(&q->ready).m);
	strmap_del(&sh->dests.queues, q->name, q->len);
	mdeque_free(&q->ready);
	hd_free(q->consumers);
	hd_free(q);
}

static bool consumer_has_room(const struct qconsumer *c)
{
	if (c->inflight >= DEST_CREDIT_WINDOW)
		return false;
	return !c->prefetch || c->ack_mode == SESSION_ACK_AUTO || c->unacked.n < c->prefetch;
}

static struct qconsumer *pick_consumer(struct dest_queue *q)
{
	for (uint32_t i = 0; i < q->nconsumers; i++) {
		uint32_t idx = (q->rr + i) % q->nconsumers;

		if (consumer_has_room(q->consumers[idx])) {
			q->rr = idx + 1;
			return q->consumers[idx];
		}
	}
	return NULL;
}

static void queue_dispatch(struct shard *sh, struct dest_queue *q)
{
	while (q->ready.n && q->nconsumers) {
		struct qconsumer *c = pick_consumer(q);
		struct mentry e;
		struct xmsg d;

		if (!c)
			break;
		e = mdeque_pop_front(&q->ready);
		e.tag = ++q->next_tag;
		c->inflight++;
		if (c->ack_mode != SESSION_ACK_AUTO) {
			hmsg_ref(e.m, 1);	/* kept until acked */
			mdeque_push_back(&c->unacked, e);
		} else {
			sh->dests.queued_msgs--;
		}
		d = (struct xmsg){ .kind = XMSG_QUEUE_DELIVER, .ptr = e.m, .a = c->key, .b = e.tag,
				   .u32 = (e.redelivered ? XDELIVER_REDELIVERED : 0) |
					  (uint32_t)c->ack_mode << XDELIVER_ACK_MODE_SHIFT };
		shard_send(sh, xmsg_key_shard(c->key), &d);
	}
}

static void reply_done(struct shard *sh, const struct xmsg *m, int err)
{
	struct xmsg r = { .kind = XMSG_DONE, .a = m->a, .u32 = m->u32, .b = (uint64_t)err };

	shard_send(sh, m->from, &r);
}

static void queue_publish(struct shard *sh, const struct xmsg *xm, struct hmsg *m)
{
	/* a reply queue is made only by its consumer: a reply for one that is gone is dropped
	 * (its sender still gets the RECEIPT, as on RabbitMQ) */
	struct dest_queue *q = queue_get(sh, hmsg_dest(m), m->dest_len,
					 !destname_key_is_server_queue(hmsg_dest(m), m->dest_len));

	if (!q) {
		hmsg_unref(m);
		if (xm->u32)
			reply_done(sh, xm, XERR_OK);
		return;
	}

	if (q->ready.n >= sh->cfg->limits.max_queue_length) {
		hmsg_unref(m);
		reply_done(sh, xm, XERR_QUEUE_FULL);
		return;
	}
	mdeque_push_back(&q->ready, (struct mentry){ .m = m });
	sh->dests.queued_msgs++;
	sh->stats.published++;
	queue_dispatch(sh, q);
	if (xm->u32)
		reply_done(sh, xm, XERR_OK);
}

void dest_on_publish(struct shard *sh, const struct xmsg *xm)
{
	struct hmsg *m = xm->ptr;

	if (destname_key_is_queue(hmsg_dest(m), m->dest_len)) {
		queue_publish(sh, xm, m);
		return;
	}
	topic_publish(sh, m);
	if (xm->u32)
		reply_done(sh, xm, XERR_OK);
}

static struct qconsumer *consumer_find(struct dest_queue *q, uint64_t key, uint32_t *idx)
{
	for (uint32_t i = 0; i < q->nconsumers; i++) {
		if (q->consumers[i]->key == key) {
			if (idx)
				*idx = i;
			return q->consumers[i];
		}
	}
	return NULL;
}

void dest_on_consumer_add(struct shard *sh, const struct xmsg *m)
{
	struct xconsumer *xc = m->ptr;
	struct dest_queue *q = queue_get(sh, xc->name, xc->len, true);
	struct qconsumer *c = hd_calloc(1, sizeof(*c));

	c->key = xc->key;
	c->ack_mode = xc->ack_mode;
	c->prefetch = xc->prefetch;
	q->consumers = hd_realloc(q->consumers, (q->nconsumers + 1) * sizeof(c));
	q->consumers[q->nconsumers++] = c;
	if (xc->seq) {
		/* the RECEIPT goes out before the first MESSAGE of the new subscription */
		struct xmsg r = { .kind = XMSG_DONE, .a = xc->conn_ref, .u32 = xc->seq };

		shard_send(sh, m->from, &r);
	}
	hd_free(xc);
	queue_dispatch(sh, q);
}

/* Puts unacked[from..) back at the front of the ready queue, in order, redelivered. */
static void requeue_tail(struct dest_queue *q, struct mdeque *unacked, uint32_t keep)
{
	while (unacked->n > keep) {
		struct mentry e = *mdeque_at(unacked, unacked->n - 1);

		unacked->n--;
		e.redelivered = 1;
		mdeque_push_front(&q->ready, e);
	}
}

void dest_on_consumer_del(struct shard *sh, const struct xmsg *m)
{
	struct xname *n = m->ptr;
	struct dest_queue *q = queue_get(sh, n->name, n->len, false);
	struct qconsumer *c;
	uint32_t idx;

	hd_free(n);
	if (!q || !(c = consumer_find(q, m->a, &idx)))
		return;
	requeue_tail(q, &c->unacked, 0);
	mdeque_free(&c->unacked);
	q->consumers[idx] = q->consumers[--q->nconsumers];
	hd_free(c);
	if (q->rr >= q->nconsumers)
		q->rr = 0;
	queue_dispatch(sh, q);
	queue_maybe_drop(sh, q);
}

/* Index of `tag` in the consumer's unacked list (tags ascend in dispatch order), or -1. */
static int64_t unacked_find(struct qconsumer *c, uint64_t tag)
{
	return mdeque_find_tag(&c->unacked, tag);
}

static void ack_apply(struct shard *sh, struct dest_queue *q, struct qconsumer *c, uint32_t mode,
		      uint64_t tag)
{
	int64_t i;

	switch (mode) {
	case XACK_CREDIT:
		c->inflight = c->inflight > tag ? c->inflight - (uint32_t)tag : 0;
		return;
	case XACK_ONE:
	case XNACK_DROP_ONE:
	case XNACK_ONE:
		i = unacked_find(c, tag);
		if (i < 0)
			return;
		if (mode == XNACK_ONE) {
			struct mentry e = *mdeque_at(&c->unacked, (uint32_t)i);

			e.redelivered = 1;
			mdeque_remove_at(&c->unacked, (uint32_t)i);
			mdeque_push_front(&q->ready, e);
			return;
		}
		hmsg_unref(mdeque_at(&c->unacked, (uint32_t)i)->m);
		mdeque_remove_at(&c->unacked, (uint32_t)i);
		sh->dests.queued_msgs--;
		return;
	case XACK_UPTO:
		while (c->unacked.n && mdeque_at(&c->unacked, 0)->tag <= tag) {
			hmsg_unref(mdeque_pop_front(&c->unacked).m);
			sh->dests.queued_msgs--;
		}
		return;
	case XNACK_UPTO: {
		uint32_t n = 0;

		while (n < c->unacked.n && mdeque_at(&c->unacked, n)->tag <= tag)
			n++;
		/* requeue the first n, keeping their order, ahead of everything ready */
		for (uint32_t k = n; k > 0; k--) {
			struct mentry e = *mdeque_at(&c->unacked, k - 1);

			e.redelivered = 1;
			mdeque_push_front(&q->ready, e);
		}
		for (uint32_t k = 0; k < n; k++)
			mdeque_pop_front(&c->unacked);
		return;
	}
	}
}

void dest_on_ack(struct shard *sh, const struct xmsg *m)
{
	struct xname *n = m->ptr;
	struct dest_queue *q = queue_get(sh, n->name, n->len, false);
	struct qconsumer *c;

	hd_free(n);
	if (!q || !(c = consumer_find(q, m->a, NULL)))
		return;
	ack_apply(sh, q, c, m->u32, m->b);
	queue_dispatch(sh, q);
}

void dest_on_return(struct shard *sh, const struct xmsg *m)
{
	struct hmsg *msg = m->ptr;
	struct dest_queue *q;
	struct qconsumer *c;

	if (m->u32 != SESSION_ACK_AUTO) {
		/* client modes: the consumer's removal already requeued it from unacked */
		hmsg_unref(msg);
		return;
	}
	q = queue_get(sh, hmsg_dest(msg), msg->dest_len,
		      !destname_key_is_server_queue(hmsg_dest(msg), msg->dest_len));
	if (!q) {
		hmsg_unref(msg);	/* its reply queue is gone */
		return;
	}
	c = consumer_find(q, m->a, NULL);
	if (c && c->inflight)
		c->inflight--;
	/* Back at the front, but in delivery order: a departed consumer's in-flight messages
	 * return one xmsg each, oldest first, and tags grow with each dispatch, so each goes
	 * after the returned or requeued entries (tag != 0) that were delivered before it. */
	uint32_t at = 0;

	while (at < q->ready.n && mdeque_at(&q->ready, at)->tag &&
	       mdeque_at(&q->ready, at)->tag < m->b)
		at++;
	mdeque_insert_at(&q->ready, at, (struct mentry){ .m = msg, .tag = m->b, .redelivered = 0 });
	sh->dests.queued_msgs++;
	queue_dispatch(sh, q);
}

void dest_table_fini(struct dest_table *t)
{
	interest_table_fini(&t->interest);
	for (uint32_t i = 0; i < t->queues.cap; i++) {
		struct strmap_slot *s = &t->queues.slots[i];

		if (s->hash && s->val) {
			struct dest_queue *q = s->val;

			mdeque_free(&q->ready);
			for (uint32_t k = 0; k < q->nconsumers; k++) {
				mdeque_free(&q->consumers[k]->unacked);
				hd_free(q->consumers[k]);
			}
			hd_free(q->consumers);
			hd_free(q);
		}
	}
	strmap_fini(&t->queues);
}
