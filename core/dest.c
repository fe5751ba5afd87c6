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
#include "core/dest_state.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/destname.h"
#include "core/hmsg.h"
#include "core/mdeque.h"
#include "core/placement.h"
#include "core/replica.h"
#include "core/session.h"
#include "core/shard.h"

#include <string.h>

uint32_t dest_owner(const struct shard *sh, const char *name, size_t len)
{
	if (sh->placement && destname_key_is_queue(name, len) &&
	    placement_queue_node(sh->placement, name, len) != 0)
		return shard_route_endpoint(sh);
	return (uint32_t)(hd_hash(name, len) % sh->nshards);
}

/* Whether this shard owns queue `name` now. */
static bool owns(const struct shard *sh, const char *name, size_t len)
{
	return dest_owner(sh, name, len) == sh->id;
}

/* An operation that came through the route thread was sent here because another node
 * believes this one owns the queue: it is applied here whatever our own view says (so
 * nothing bounces between nodes whose views differ for a moment), and a queue this node
 * does not own moves on to its owner right after. */
static bool from_route(const struct shard *sh, const struct xmsg *m)
{
	return m->from == shard_route_endpoint(sh);
}

/* Where deliveries to consumer `key` go: its shard here, or the route for another node's. */
static uint32_t consumer_endpoint(const struct shard *sh, uint64_t key)
{
	return xmsg_key_node(key) != XMSG_NODE_SELF ? shard_route_endpoint(sh) : xmsg_key_shard(key);
}

void dest_table_init(struct dest_table *t, uint32_t ncolumns)
{
	memset(t, 0, sizeof(*t));
	interest_table_init(&t->interest, ncolumns);
	strmap_init(&t->queues);
	strmap_init(&t->replicas);
	pthread_mutex_init(&t->snapshot.mu, NULL);
}

void dest_snapshot_take(struct shard *sh)
{
	struct strmap *map = &sh->dests.queues;
	size_t bytes = (map->count + 1) * sizeof(struct dest_queue_info);
	struct dest_queue_info *q;
	char *keys;
	uint32_t n = 0;

	for (uint32_t i = 0; i < map->cap; i++) {
		const struct strmap_slot *sl = &map->slots[i];

		if (sl->hash && sl->val)
			bytes += ((const struct dest_queue *)sl->val)->len;
	}
	q = hd_alloc(bytes);
	keys = (char *)(q + map->count + 1);
	for (uint32_t i = 0; i < map->cap; i++) {
		const struct strmap_slot *sl = &map->slots[i];
		const struct dest_queue *dq = sl->hash ? sl->val : NULL;
		uint64_t messages;

		if (!dq)
			continue;
		messages = dq->ready.n;
		for (uint32_t k = 0; k < dq->nconsumers; k++)
			messages += dq->consumers[k]->unacked.n + dq->consumers[k]->adopted.n;
		memcpy(keys, dq->name, dq->len);
		q[n] = (struct dest_queue_info){ .key = keys, .key_len = dq->len,
						 .consumers = dq->nconsumers, .messages = messages,
						 .ready = dq->ready.n, .unacked = messages - dq->ready.n };
		q[n].nbackups = repl_describe(dq, q[n].backup, &q[n].in_sync);
		n++;
		keys += dq->len;
	}
	pthread_mutex_lock(&sh->dests.snapshot.mu);
	hd_free(sh->dests.snapshot.q);
	sh->dests.snapshot.q = q;
	sh->dests.snapshot.n = n;
	pthread_mutex_unlock(&sh->dests.snapshot.mu);
}

void dest_snapshot_each(struct dest_table *t,
			void (*fn)(void *ctx, const struct dest_queue_info *q), void *ctx)
{
	pthread_mutex_lock(&t->snapshot.mu);
	for (uint32_t i = 0; i < t->snapshot.n; i++)
		fn(ctx, &t->snapshot.q[i]);
	pthread_mutex_unlock(&t->snapshot.mu);
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

struct dest_queue *dest_queue_get(struct shard *sh, const char *name, size_t len, bool create)
{
	struct dest_queue *q = strmap_get(&sh->dests.queues, name, len);

	if (q || !create)
		return q;
	q = hd_calloc(1, sizeof(*q) + len + 1);
	/* tags differ from any an earlier owner of this queue gave (ACKs of those may still
	 * come): they start at the clock, ms << 20 */
	q->next_tag = (uint64_t)sh->now_ms << 20;
	q->len = (uint32_t)len;
	memcpy(q->name, name, len);
	strmap_put(&sh->dests.queues, q->name, len, q);
	return q;
}

/* An idle queue (no consumers, no messages) holds no memory. A reply queue (a server-made
 * name) dies with its one consumer, messages and all: nobody else may ever read them. */
void dest_queue_maybe_drop(struct shard *sh, struct dest_queue *q)
{
	if (q->nconsumers || repl_waiting(sh, q))
		return;
	if (q->ready.n && !destname_key_is_server_queue(q->name, q->len))
		return;
	repl_queue_gone(sh, q, XERR_OK);
	sh->dests.queued_msgs -= q->ready.n;
	while (q->ready.n)
		hmsg_unref(mdeque_pop_front(&q->ready).m);
	strmap_del(&sh->dests.queues, q->name, q->len);
	mdeque_free(&q->ready);
	hd_free(q->consumers);
	hd_free(q);
}

/* Puts e back at the front (requeued: older than anything ready), keeping the hand-over
 * boundary after it. */
static void ready_push_front(struct dest_queue *q, struct mentry e)
{
	mdeque_push_front(&q->ready, e);
	if (q->handed_in)
		q->handed_in++;
}

static bool consumer_has_room(const struct qconsumer *c)
{
	if (c->absent || c->inflight >= DEST_CREDIT_WINDOW)
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

/* Whether this node may deliver from q now: a replicated queue only while the controller's
 * lease holds - a node cut off from the controller (hung, or on a minority side) may have
 * been replaced as q's owner, and the new owner delivers from its copy
 * (docs/replication.md, invariant 5). Reply queues and unreplicated ones need none. */
static bool may_deliver(struct shard *sh, const struct dest_queue *q)
{
	if (sh->cfg->queue_replicas <= 1 || destname_key_is_server_queue(q->name, q->len))
		return true;
	/* outside the agreed view (not yet added, or taken out) a node holds what others send
	 * it, and delivers nothing: the owner by the view may be delivering the same queue */
	if (!(sh->placement && sh->placement->outside_view) &&
	    sh->now_ms < atomic_load_explicit(&shard_queue_lease_until_ms, memory_order_relaxed))
		return true;
	sh->dests.lease_blocked = true;
	return false;
}

void dest_lease_check(struct shard *sh)
{
	struct strmap *map = &sh->dests.queues;

	if (sh->now_ms >= atomic_load_explicit(&shard_queue_lease_until_ms, memory_order_relaxed))
		return;
	sh->dests.lease_blocked = false;
	for (uint32_t i = 0; i < map->cap; i++) {
		struct strmap_slot *sl = &map->slots[i];
		struct dest_queue *q = sl->hash ? sl->val : NULL;

		if (q && q->ready.n && q->nconsumers)
			dest_queue_dispatch(sh, q);
	}
}

void dest_queue_dispatch(struct shard *sh, struct dest_queue *q)
{
	if (q->ready.n && q->nconsumers && !may_deliver(sh, q))
		return;
	while (q->ready.n && q->nconsumers) {
		struct qconsumer *c = pick_consumer(q);
		struct mentry e;
		struct xmsg d;

		if (!c)
			break;
		e = mdeque_pop_front(&q->ready);
		e.tag = ++q->next_tag;
		c->inflight++;
		repl_delivered(sh, q, &e, c->key, c->epoch, c->ack_mode == SESSION_ACK_AUTO);
		if (c->ack_mode != SESSION_ACK_AUTO) {
			hmsg_ref(e.m, 1);	/* kept until acked */
			mdeque_push_back(&c->unacked, e);
		} else {
			sh->dests.queued_msgs--;
		}
		d = (struct xmsg){ .kind = XMSG_QUEUE_DELIVER, .ptr = e.m, .a = c->key, .b = e.tag,
				   .u32 = (e.redelivered ? XDELIVER_REDELIVERED : 0) |
					  (uint32_t)c->ack_mode << XDELIVER_ACK_MODE_SHIFT |
					  (uint32_t)c->epoch << XDELIVER_EPOCH_SHIFT };
		shard_send(sh, consumer_endpoint(sh, c->key), &d);
		if (q->handed_in)
			q->handed_in--;
	}
}

static void reply_done(struct shard *sh, const struct xmsg *m, int err)
{
	struct xmsg r = { .kind = XMSG_DONE, .a = m->a, .u32 = m->u32,
			  .b = (uint64_t)err | m->b << 8 };

	shard_send(sh, m->from, &r);
}

/* Puts unacked[from..) back at the front of the ready queue, in order, redelivered. */
static void requeue_tail(struct dest_queue *q, struct mdeque *unacked, uint32_t keep)
{
	while (unacked->n > keep) {
		struct mentry e = *mdeque_at(unacked, unacked->n - 1);

		unacked->n--;
		e.redelivered = 1;
		ready_push_front(q, e);
	}
}

/* ---- adopted deliveries (dest_state.h) ---- */

static struct qconsumer *consumer_find(struct dest_queue *q, uint64_t key, uint32_t *idx);

/* Adds e (its epoch: the registration it was delivered under) to c's adopted, in tag
 * order (appended, unless an older owner's tags come after newer ones). */
static void adopted_add(struct shard *sh, struct qconsumer *c, struct mentry e)
{
	uint32_t at = c->adopted.n;

	while (at > 0 && mdeque_at(&c->adopted, at - 1)->tag > e.tag)
		at--;
	if (!c->adopted.n)
		sh->dests.adopting++;
	mdeque_insert_at(&c->adopted, at, e);
	c->adopted_ms = sh->now_ms;
}

/* Everything c holds goes back to the front of q, redelivered: the older adopted ahead of
 * its own unacked. */
static void give_back(struct shard *sh, struct dest_queue *q, struct qconsumer *c)
{
	requeue_tail(q, &c->unacked, 0);
	if (c->adopted.n)
		sh->dests.adopting--;
	requeue_tail(q, &c->adopted, 0);
}

static void consumer_free(struct shard *sh, struct dest_queue *q, uint32_t idx)
{
	struct qconsumer *c = q->consumers[idx];

	give_back(sh, q, c);
	mdeque_free(&c->unacked);
	mdeque_free(&c->adopted);
	q->consumers[idx] = q->consumers[--q->nconsumers];
	hd_free(c);
	if (q->rr >= q->nconsumers)
		q->rr = 0;
}

/* Whether registration epoch e is older than `than` (16-bit serial numbers). */
static bool epoch_older(uint32_t e, uint32_t than)
{
	return (int16_t)(uint16_t)(e - than) < 0;
}

/* An ACK or NACK naming registration `epoch` of c that is not its current one: applied to
 * the adopted deliveries it names. True when it named any. Cumulative modes (STOMP's
 * client mode) cover every adopted delivery up to the tag, and all of older registrations
 * (the consumer got those first). */
static bool adopted_settle(struct shard *sh, struct dest_queue *q, struct qconsumer *c,
			   uint32_t mode, uint64_t tag, uint32_t epoch, bool all)
{
	bool upto = mode == XACK_UPTO || mode == XNACK_UPTO;
	bool requeue = mode == XNACK_ONE || mode == XNACK_UPTO;
	uint32_t found = 0;

	for (uint32_t i = c->adopted.n; i-- > 0;) {
		struct mentry e = *mdeque_at(&c->adopted, i);
		bool named = all || (e.epoch == epoch && (upto ? e.tag <= tag : e.tag == tag)) ||
			     (upto && epoch_older(e.epoch, epoch));

		if (!named)
			continue;
		mdeque_remove_at(&c->adopted, i);
		found++;
		if (requeue) {
			e.redelivered = 1;
			ready_push_front(q, e);
		} else {
			repl_removed(sh, q, e.rseq);
			hmsg_unref(e.m);
			sh->dests.queued_msgs--;
		}
	}
	if (found && !c->adopted.n)
		sh->dests.adopting--;
	return found;
}

void dest_queue_adopt(struct shard *sh, struct dest_queue *q, uint64_t key, uint16_t reg_epoch,
		      struct mentry e)
{
	struct qconsumer *c = consumer_find(q, key, NULL);

	if (!c) {
		c = hd_calloc(1, sizeof(*c));
		c->key = key;
		c->absent = true;
		c->epoch = (uint16_t)(reg_epoch + 1);	/* whatever it registers with next */
		q->consumers = hd_realloc(q->consumers, (q->nconsumers + 1) * sizeof(c));
		q->consumers[q->nconsumers++] = c;
	}
	e.epoch = reg_epoch;
	adopted_add(sh, c, e);
}

bool dest_consumer_node_present(const struct shard *sh, uint64_t key)
{
	uint32_t node = xmsg_key_node(key);

	if (node == XMSG_NODE_SELF)
		return true;
	for (uint32_t i = 1; sh->placement && i < sh->placement->n; i++)
		if (sh->placement->peer[i] == (int)node - 1)
			return true;
	return false;
}

/* Absent consumers whose node is no longer a member will never register: what was
 * adopted for them goes back to the queue now. */
static void drop_absent_gone(struct shard *sh, struct dest_queue *q)
{
	bool gave = false;

	for (uint32_t k = q->nconsumers; k-- > 0;) {
		if (q->consumers[k]->absent && !dest_consumer_node_present(sh, q->consumers[k]->key)) {
			consumer_free(sh, q, k);
			gave = true;
		}
	}
	if (gave)
		dest_queue_dispatch(sh, q);
}

void dest_adopted_tick(struct shard *sh)
{
	struct strmap *map = &sh->dests.queues;

	if (!sh->dests.adopting || sh->now_ms - sh->dests.adopted_scan_ms < 1000)
		return;
	sh->dests.adopted_scan_ms = sh->now_ms;
	for (uint32_t i = 0; i < map->cap; i++) {
		struct strmap_slot *sl = &map->slots[i];
		struct dest_queue *q = sl->hash ? sl->val : NULL;
		bool gave = false;

		for (uint32_t k = q ? q->nconsumers : 0; k-- > 0;) {
			struct qconsumer *c = q->consumers[k];
			uint64_t keep = c->absent ? DEST_ADOPTED_ABSENT_MS : DEST_ADOPTED_KEEP_MS;

			if (!c->adopted.n || sh->now_ms - c->adopted_ms < keep)
				continue;
			gave = true;
			if (c->absent) {
				consumer_free(sh, q, k);
			} else {
				sh->dests.adopting--;
				requeue_tail(q, &c->adopted, 0);
			}
		}
		if (gave)
			dest_queue_dispatch(sh, q);
	}
}

/* Sends an operation for a queue this shard does not own on to its owner (the route, for
 * another node's), unless it came from the route. True when it went on. */
static bool forwarded(struct shard *sh, const struct xmsg *m, const char *name, size_t len)
{
	uint32_t to = dest_owner(sh, name, len);

	if (to == sh->id || from_route(sh, m))
		return false;
	shard_forward(sh, to, m);
	return true;
}

/* The queue moves to its new owner: each consumer is told to register there (its unacked
 * messages go back to the front first, redelivered), then every held message leaves in
 * order through the route, which sends them on to the owner. */
static void queue_move_away(struct shard *sh, struct dest_queue *q)
{
	const uint32_t route = shard_route_endpoint(sh);
	/* leaving, with copies on the backups: the new owner is one of them and takes its copy
	 * over when it sees this node gone; handing the messages over as well would deliver
	 * them twice */
	const bool copies_take_over = repl_new_owner_has_copy(sh, q);

	HD_ASSERT(route != UINT32_MAX);
	/* receipts still waiting for backups are answered with an error below (the client
	 * resends, as after a lost connection), and their messages are not handed over: the
	 * new owner would deliver them besides the resent copy - which, from a node that hung,
	 * the route of the SEND's node has sent there already, seeing its link to us break */
	repl_drop_unreceipted(sh, q);
	if (!copies_take_over)
		repl_hand_over(sh, q);	/* the copy is taken over before the hand-over */
	while (q->nconsumers) {
		struct qconsumer *c = q->consumers[q->nconsumers - 1];

		if (!c->absent) {
			struct xmsg d = { .kind = XMSG_QUEUE_DROPPED, .a = c->key,
					  .b = sh->placement ? sh->placement->node_hash[0] : 0,
					  .ptr = xname_create(q->name, q->len) };

			shard_send(sh, consumer_endpoint(sh, c->key), &d);
		}
		consumer_free(sh, q, q->nconsumers - 1);
	}
	q->rr = 0;
	repl_queue_gone(sh, q, XERR_UNAVAILABLE);
	while (q->ready.n) {
		struct mentry e = mdeque_pop_front(&q->ready);
		struct xmsg h = { .kind = XMSG_QUEUE_HANDOVER, .ptr = e.m, .u32 = e.redelivered,
				  .a = e.rseq,
				  .b = sh->placement ? sh->placement->node_hash[0] : 0 };

		sh->dests.queued_msgs--;
		if (copies_take_over)
			hmsg_unref(e.m);
		else
			shard_send(sh, route, &h);
	}
	q->handed_in = 0;
	dest_queue_maybe_drop(sh, q);
}

/* After an operation another node sent: a queue this node does not own moves on - unless
 * this node is outside the agreed view: others sent it here because their view, newer
 * than ours, has this node in it (it was just added), so it stays for our view to catch up
 * (moving it back would bounce it between us and reorder it). */
static void queue_settle(struct shard *sh, struct dest_queue *q)
{
	if (!owns(sh, q->name, q->len) &&
	    !(sh->placement && sh->placement->outside_view && !sh->placement->leaving_gracefully))
		queue_move_away(sh, q);
}

/* A message enters q at the back: numbered and streamed to the backups. */
static void enqueue_back(struct shard *sh, struct dest_queue *q, struct mentry e)
{
	repl_enqueued(sh, q, &e);
	mdeque_push_back(&q->ready, e);
	sh->dests.queued_msgs++;
}

/* Whether q holds a message with m's message-id: ready, or delivered and not acked. */
static bool queue_holds(struct dest_queue *q, const struct hmsg *m)
{
	for (uint32_t i = 0; i < q->ready.n; i++)
		if (hmsg_same_id(mdeque_at(&q->ready, i)->m, m))
			return true;
	for (uint32_t c = 0; c < q->nconsumers; c++) {
		struct qconsumer *qc = q->consumers[c];

		for (uint32_t i = 0; i < qc->unacked.n; i++)
			if (hmsg_same_id(mdeque_at(&qc->unacked, i)->m, m))
				return true;
		for (uint32_t i = 0; i < qc->adopted.n; i++)
			if (hmsg_same_id(mdeque_at(&qc->adopted, i)->m, m))
				return true;
	}
	return false;
}

static void queue_publish(struct shard *sh, const struct xmsg *xm, struct hmsg *m)
{
	/* a reply queue is made only by its consumer: a reply for one that is gone is dropped
	 * (its sender still gets the RECEIPT, as on RabbitMQ) */
	struct dest_queue *q = dest_queue_get(sh, hmsg_dest(m), m->dest_len,
					 !destname_key_is_server_queue(hmsg_dest(m), m->dest_len));

	if (!q) {
		hmsg_unref(m);
		if (xm->u32)
			reply_done(sh, xm, XERR_OK);
		return;
	}

	if (q->ready.n >= sh->limits.max_queue_length) {
		hmsg_unref(m);
		reply_done(sh, xm, XERR_QUEUE_FULL);
		return;
	}
	if ((xm->b & XPUBLISH_RESENT) && queue_holds(q, m)) {
		/* the route sent it again when its link to the old owner broke, and the copy
		 * this node took the queue over from has it: one is enough */
		hmsg_unref(m);
		if (xm->u32 && !repl_hold_receipt(sh, q, xm, true))
			reply_done(sh, xm, XERR_OK);
		queue_settle(sh, q);
		return;
	}
	enqueue_back(sh, q, (struct mentry){ .m = m,
					     .redelivered = (xm->b & XPUBLISH_RESENT) ? 1 : 0 });
	sh->stats.published++;
	/* the RECEIPT means every holder has it: it may wait for the backups */
	if (xm->u32 && !repl_hold_receipt(sh, q, xm, false))
		reply_done(sh, xm, XERR_OK);
	dest_queue_dispatch(sh, q);
	queue_settle(sh, q);
}

void dest_on_publish(struct shard *sh, const struct xmsg *xm)
{
	struct hmsg *m = xm->ptr;

	if (destname_key_is_queue(hmsg_dest(m), m->dest_len)) {
		if (forwarded(sh, xm, hmsg_dest(m), m->dest_len))
			return;
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
	struct dest_queue *q;
	struct qconsumer *c;

	if (forwarded(sh, m, xc->name, xc->len))
		return;
	q = dest_queue_get(sh, xc->name, xc->len, true);
	/* registering again (a node link came back) is harmless */
	c = consumer_find(q, xc->key, NULL);
	if (!c) {
		c = hd_calloc(1, sizeof(*c));
		c->key = xc->key;
		q->consumers = hd_realloc(q->consumers, (q->nconsumers + 1) * sizeof(c));
		q->consumers[q->nconsumers++] = c;
	} else if (!c->absent && c->epoch != xc->epoch) {
		/* registered anew (its queue moved and came back, or placement changed twice):
		 * what it got under the old registration it still holds, and its ACKs name that
		 * registration - kept as adopted, not delivered again */
		while (c->unacked.n) {
			struct mentry e = mdeque_pop_front(&c->unacked);

			e.epoch = c->epoch;
			adopted_add(sh, c, e);
		}
		c->inflight = 0;
	}
	c->absent = false;	/* adopted deliveries wait for it no longer than a consumer's */
	c->ack_mode = xc->ack_mode;
	c->prefetch = xc->prefetch;
	c->epoch = xc->epoch;
	if (xc->seq) {
		/* the RECEIPT goes out before the first MESSAGE of the new subscription */
		struct xmsg r = { .kind = XMSG_DONE, .a = xc->conn_ref, .u32 = xc->seq,
				  .b = m->b << 8 };

		shard_send(sh, m->from, &r);
	}
	hd_free(xc);
	dest_queue_dispatch(sh, q);
	queue_settle(sh, q);
}

void dest_on_consumer_del(struct shard *sh, const struct xmsg *m)
{
	struct xname *n = m->ptr;
	struct dest_queue *q;
	struct qconsumer *c;
	uint32_t idx;

	/* a consumer moving on leaves only the owner that has it (this shard or none) */
	if (!m->u32 && forwarded(sh, m, n->name, n->len))
		return;
	q = dest_queue_get(sh, n->name, n->len, false);
	hd_free(n);
	if (!q || !(c = consumer_find(q, m->a, &idx)))
		return;
	if ((m->u32 & XDEL_MOVING) && (c->absent || c->epoch != (m->u32 >> XDELIVER_EPOCH_SHIFT)))
		return;	/* it registered here again since: that registration stays */
	consumer_free(sh, q, idx);
	dest_queue_dispatch(sh, q);
	dest_queue_maybe_drop(sh, q);
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
			ready_push_front(q, e);
			return;
		}
		repl_removed(sh, q, mdeque_at(&c->unacked, (uint32_t)i)->rseq);
		hmsg_unref(mdeque_at(&c->unacked, (uint32_t)i)->m);
		mdeque_remove_at(&c->unacked, (uint32_t)i);
		sh->dests.queued_msgs--;
		return;
	case XACK_UPTO:
		/* cumulative: what it got under earlier registrations came before */
		adopted_settle(sh, q, c, mode, 0, 0, true);
		while (c->unacked.n && mdeque_at(&c->unacked, 0)->tag <= tag) {
			struct mentry e = mdeque_pop_front(&c->unacked);

			repl_removed(sh, q, e.rseq);
			hmsg_unref(e.m);
			sh->dests.queued_msgs--;
		}
		return;
	case XNACK_UPTO: {
		uint32_t n = 0;

		adopted_settle(sh, q, c, mode, 0, 0, true);
		while (n < c->unacked.n && mdeque_at(&c->unacked, n)->tag <= tag)
			n++;
		/* requeue the first n, keeping their order, ahead of everything ready */
		for (uint32_t k = n; k > 0; k--) {
			struct mentry e = *mdeque_at(&c->unacked, k - 1);

			e.redelivered = 1;
			ready_push_front(q, e);
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
	struct dest_queue *q;
	struct qconsumer *c;
	uint32_t mode, epoch;

	if (forwarded(sh, m, n->name, n->len))
		return;
	mode = m->u32 & 0xff;
	epoch = m->u32 >> XDELIVER_EPOCH_SHIFT;

	q = dest_queue_get(sh, n->name, n->len, false);
	c = q ? consumer_find(q, m->a, NULL) : NULL;
	if (mode != XACK_CREDIT && (!c || c->absent || c->epoch != epoch) &&
	    !(c && adopted_settle(sh, q, c, mode, m->b, epoch, false))) {
		/* a delivery another node made: when this node holds a copy of its stream, the
		 * copy remembers the ACK (this node may take it over: the consumer's node saw
		 * the new view first) ... */
		replica_early_ack(sh, n->name, n->len, m->a, mode, m->b, epoch);
		/* ... and when our view says another node owns the queue (it moved on from
		 * here while the ACK was on its way), the ACK goes on to it, once: it holds
		 * what the ACK names (it took a copy over, or got it handed over) */
		if (from_route(sh, m) && !(m->u32 & XACK_F_FORWARDED) &&
		    dest_owner(sh, n->name, n->len) != sh->id) {
			struct xmsg on = *m;

			on.u32 |= XACK_F_FORWARDED;
			shard_send(sh, dest_owner(sh, n->name, n->len), &on);
			return;
		}
	}
	hd_free(n);
	if (!c)
		return;
	if (mode == XACK_CREDIT || (!c->absent && c->epoch == epoch))
		ack_apply(sh, q, c, mode, m->b);
	dest_queue_dispatch(sh, q);
}

void dest_on_return(struct shard *sh, const struct xmsg *m)
{
	struct hmsg *msg = m->ptr;
	struct dest_queue *q;
	struct qconsumer *c;

	if (forwarded(sh, m, hmsg_dest(msg), msg->dest_len))
		return;
	if (m->u32 != SESSION_ACK_AUTO) {
		/* client modes: the consumer's removal already requeued it from unacked */
		hmsg_unref(msg);
		return;
	}
	q = dest_queue_get(sh, hmsg_dest(msg), msg->dest_len,
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
	struct mentry e = { .m = msg, .tag = m->b, .redelivered = 0 };

	repl_enqueued(sh, q, &e);	/* auto ack: its copies went at delivery */
	mdeque_insert_at(&q->ready, at, e);
	if (at < q->handed_in || (at == q->handed_in && q->handed_in))
		q->handed_in++;
	sh->dests.queued_msgs++;
	dest_queue_dispatch(sh, q);
	queue_settle(sh, q);
}

void dest_on_handover(struct shard *sh, const struct xmsg *m)
{
	struct hmsg *msg = m->ptr;
	struct dest_queue *q;

	if (forwarded(sh, m, hmsg_dest(msg), msg->dest_len))
		return;
	if (replica_take_handover(sh, m))
		return;		/* a copy being handed to us: it joins the copy */
	q = dest_queue_get(sh, hmsg_dest(msg), msg->dest_len,
		      !destname_key_is_server_queue(hmsg_dest(msg), msg->dest_len));
	if (!q) {
		hmsg_unref(msg);	/* a reply queue that is gone */
		return;
	}
	if (repl_had_it(q, m->b, m->a)) {
		/* this node took the queue over from its copy of the sender's stream, which
		 * held this message: it is here, or was delivered and acked since */
		hmsg_unref(msg);
		dest_queue_maybe_drop(sh, q);
		return;
	}
	/* older than anything sent here directly, after what was handed over before it; never
	 * refused for max-queue-length: it was accepted once already */
	struct mentry e = { .m = msg, .redelivered = m->u32 };

	repl_enqueued(sh, q, &e);
	mdeque_insert_at(&q->ready, q->handed_in++, e);
	sh->dests.queued_msgs++;
	dest_queue_dispatch(sh, q);
	queue_settle(sh, q);
}

void dest_on_placement(struct shard *sh)
{
	struct strmap *map = &sh->dests.queues;
	struct dest_queue **moving = hd_alloc((map->count + 1) * sizeof(*moving));
	uint32_t n = 0;

	/* copies this node now owns become queues first (a failover), then: collected first,
	 * as moving one deletes it from the map being walked */
	replica_on_placement(sh);
	for (uint32_t i = 0; i < map->cap; i++) {
		struct strmap_slot *sl = &map->slots[i];
		struct dest_queue *q = sl->hash ? sl->val : NULL;

		if (q && !owns(sh, q->name, q->len)) {
			moving[n++] = q;
		} else if (q) {
			repl_queue_placed(sh, q);	/* its backups may have changed */
			if (sh->dests.adopting)
				drop_absent_gone(sh, q);
		}
	}
	for (uint32_t i = 0; i < n; i++)
		queue_move_away(sh, moving[i]);
	hd_free(moving);
}

void dest_table_fini(struct dest_table *t)
{
	interest_table_fini(&t->interest);
	hd_free(t->snapshot.q);
	pthread_mutex_destroy(&t->snapshot.mu);
	for (uint32_t i = 0; i < t->queues.cap; i++) {
		struct strmap_slot *s = &t->queues.slots[i];

		if (s->hash && s->val) {
			struct dest_queue *q = s->val;

			mdeque_free(&q->ready);
			for (uint32_t k = 0; k < q->nconsumers; k++) {
				mdeque_free(&q->consumers[k]->unacked);
				mdeque_free(&q->consumers[k]->adopted);
				hd_free(q->consumers[k]);
			}
			hd_free(q->consumers);
			repl_queue_free(q);
			hd_free(q);
		}
	}
	strmap_fini(&t->queues);
	replica_table_fini(t);
}
