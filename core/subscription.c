/*
 * core/subscription.c - subscriptions and interest (see subscription.h). A topic
 * subscription joins this shard's local table; only the shard's first subscriber of a
 * topic (0->1) and its last (1->0) are news to the other shards, while pattern interest is
 * sent per subscription. A queue subscription is a consumer at the queue's owner.
 *
 * Thread: the session's shard.
 */
#include "core/subscription.h"

#include "core/base/hd_alloc.h"
#include "core/dest.h"
#include "core/destname.h"
#include "core/placement.h"
#include "core/receipt.h"
#include "core/session_state.h"
#include "core/shard.h"
#include "core/topic_match.h"
#include "core/xmsg.h"

#include <sodium.h>
#include <string.h>

void local_table_init(struct local_table *t)
{
	memset(t, 0, sizeof(*t));
	strmap_init(&t->topics);
}

void local_table_fini(struct local_table *t)
{
	strmap_fini(&t->topics);
}

/* Tells every shard that this shard's interest in a topic or pattern changed. Our own
 * table is updated at once, not through our xring to ourselves: this connection's next
 * SEND is routed right here, and must already see the subscription it follows. */
static void interest_broadcast(struct shard *sh, enum xmsg_kind kind, const char *name,
			       size_t len, bool add)
{
	for (uint32_t to = 0; to < sh->nendpoints; to++) {
		struct xmsg m = { .kind = kind, .u32 = add, .ptr = xname_create(name, len),
				  .from = (uint16_t)sh->id };

		if (to == sh->id)
			dest_on_topic_interest(sh, &m, kind == XMSG_PATTERN_INTEREST);
		else
			shard_send(sh, to, &m);
	}
}

static void list_insert(struct sub **head, struct sub *sub)
{
	sub->prev = NULL;
	sub->next = *head;
	if (*head)
		(*head)->prev = sub;
	*head = sub;
}

static void list_remove(struct sub **head, struct sub *sub)
{
	if (sub->prev)
		sub->prev->next = sub->next;
	else
		*head = sub->next;
	if (sub->next)
		sub->next->prev = sub->prev;
}

/* The owning node of a queue subscription, as placement says now (0: no cluster). */
static uint64_t owner_node_of(const struct shard *sh, const struct sub *sub)
{
	int i;

	/* before the route's first placement this node holds every queue: the same answer
	 * the first placement gives a node alone, so that one moves no consumer */
	if (!sh->placement)
		return placement_node_hash(sh->cfg->node_name, strlen(sh->cfg->node_name));
	i = placement_queue_node(sh->placement, sub->dest, sub->dest_len);
	return i == PLACEMENT_NONE ? 0 : sh->placement->node_hash[i];
}

/* Registers queue subscription sub as a consumer with its queue's owner (answering
 * receipt seq when non-zero). */
static void consumer_add(struct shard *sh, struct sub *sub, uint32_t seq)
{
	struct xconsumer *xc = hd_alloc(sizeof(*xc) + sub->dest_len + 1);
	struct xmsg m = { .kind = XMSG_QUEUE_CONSUMER_ADD, .ptr = xc };

	xc->key = sub_consumer_key(sh, sub);
	xc->prefetch = sub->prefetch;
	xc->ack_mode = sub->ack_mode;
	xc->epoch = (uint16_t)(sub->owner_epoch & XEPOCH_MASK);
	xc->conn_ref = session_conn_ref(sub->s);
	xc->seq = seq;
	xc->len = sub->dest_len;
	memcpy(xc->name, sub->dest, sub->dest_len + 1);
	if (sub->reply_to && sub->owner == sh->id) {
		/* a reply queue is made here, before the request that names it leaves:
		 * no reply can reach its owner first and find no queue */
		m.from = (uint16_t)sh->id;
		dest_on_consumer_add(sh, &m);
	} else {
		shard_send(sh, sub->owner, &m);
	}
}

/* The queue of sub moved (or its owner let it go): register with the owner there is now,
 * under a new epoch. What was delivered under the old one and not yet acked stays pending
 * here, and its ACKs (which name the old epoch) go to the new owner: one that took the
 * queue over from its copy of the old owner's stream applies them (docs/replication.md,
 * "ACKs after a failover"); one that did not ignores them, the old owner having requeued
 * those messages. Deliveries carry the epoch they were made under, so a late one from the
 * old owner is told apart. */
static void consumer_move(struct shard *sh, struct sub *sub)
{
	/* leave the owner it was registered with first: one whose own view still says it
	 * owns the queue would keep delivering to it, ACKs of which now stay here */
	struct xmsg del = { .kind = XMSG_QUEUE_CONSUMER_DEL, .a = sub_consumer_key(sh, sub),
			    .u32 = XDEL_MOVING | (sub->owner_epoch & XEPOCH_MASK) << XDELIVER_EPOCH_SHIFT,
			    .ptr = xname_create(sub->dest, sub->dest_len) };

	shard_send(sh, sub->owner, &del);
	sub->owner = dest_owner(sh, sub->dest, sub->dest_len);
	sub->owner_node = owner_node_of(sh, sub);
	sub->owner_epoch++;
	sub->credit_pending = 0;
	consumer_add(sh, sub, 0);
}

void session_on_placement(struct shard *sh)
{
	for (uint32_t i = 0; i < sh->loop.nconns_cap; i++) {
		struct net_conn *c = sh->loop.conns[i];
		struct session *s = c && c->state == NET_CONN_OPEN ? c->user : NULL;

		for (uint32_t k = 0; s && k < s->nsubs; k++) {
			struct sub *sub = s->subs[k];

			/* a reply queue stays with its connection's node for life */
			if (sub->kind == SUB_QUEUE && !sub->reply_to &&
			    owner_node_of(sh, sub) != sub->owner_node)
				consumer_move(sh, sub);
		}
	}
}

/* How long a consumer its owner let go waits before registering again when this node's
 * view says that owner still owns the queue: long enough for views to settle (a join
 * spreads in milliseconds), short enough that a consumer is never idle for long. */
#define CONSUMER_RETRY_MS 50

struct consumer_retry {
	uint64_t key;
	uint64_t due_ms;
	uint32_t owner_epoch;	/* the registration that was let go */
};

static void retry_later(struct shard *sh, uint64_t key, uint32_t owner_epoch)
{
	struct session_shard *ss = &sh->sessions;

	for (uint32_t i = 0; i < ss->nretry; i++)
		if (ss->retry[i].key == key)
			return;
	if (ss->nretry == ss->retry_cap) {
		ss->retry_cap = ss->retry_cap ? ss->retry_cap * 2 : 16;
		ss->retry = hd_realloc(ss->retry, ss->retry_cap * sizeof(*ss->retry));
	}
	ss->retry[ss->nretry++] = (struct consumer_retry){ key, sh->now_ms + CONSUMER_RETRY_MS,
							   owner_epoch };
}

void session_on_consumer_dropped(struct shard *sh, const struct xmsg *m)
{
	struct xname *n = m->ptr;
	struct session *s = session_by_key(sh, m->a);
	struct sub *sub = s ? sub_by_idx(s, xmsg_key_sub(m->a)) : NULL;

	/* only the owner it is registered with can let it go: an old owner's notice comes
	 * after the subscription already moved on its own (placement changed here too) */
	if (sub && sub->kind == SUB_QUEUE && sub->dest_len == n->len &&
	    !memcmp(sub->dest, n->name, n->len) && m->b == sub->owner_node) {
		if (owner_node_of(sh, sub) == sub->owner_node)
			retry_later(sh, m->a, sub->owner_epoch);	/* our view and its own differ:
									 * let them settle */
		else
			consumer_move(sh, sub);
	}
	hd_free(n);
}

void session_retry_consumers(struct shard *sh, uint64_t now_ms)
{
	struct session_shard *ss = &sh->sessions;
	uint32_t kept = 0;

	for (uint32_t i = 0; i < ss->nretry; i++) {
		struct consumer_retry r = ss->retry[i];
		struct session *s;
		struct sub *sub;

		if (now_ms < r.due_ms) {
			ss->retry[kept++] = r;
			continue;
		}
		s = session_by_key(sh, r.key);
		sub = s ? sub_by_idx(s, xmsg_key_sub(r.key)) : NULL;
		/* unless it moved meanwhile (our placement changed): that registration stays */
		if (sub && sub->kind == SUB_QUEUE && sub->owner_epoch == r.owner_epoch)
			consumer_move(sh, sub);
	}
	ss->nretry = kept;
}

/* Registers sub with the local table and the owner(s); returns shards to SYNC with
 * (a bitmask) for receipt `seq` (a queue's owner answers it directly). */
static uint64_t sub_attach(struct shard *sh, struct sub *sub, uint32_t seq)
{
	struct local_table *lt = &sh->sessions.local;
	const size_t plen = DESTNAME_TOPIC_LEN;

	if (sub->kind == SUB_QUEUE) {
		if (seq)
			receipt_add_wait(sub->s, seq);
		consumer_add(sh, sub, seq);
		return 0;
	}
	if (sub->kind == SUB_PATTERN) {
		list_insert(&lt->patterns, sub);
		lt->npatterns++;
		interest_broadcast(sh, XMSG_PATTERN_INTEREST, sub->dest + plen, sub->dest_len - plen, true);
		return shard_all_endpoints(sh);
	}
	sub->lt = strmap_get(&lt->topics, sub->dest, sub->dest_len);
	if (!sub->lt) {
		sub->lt = hd_calloc(1, sizeof(*sub->lt) + sub->dest_len + 1);
		sub->lt->len = sub->dest_len;
		memcpy(sub->lt->name, sub->dest, sub->dest_len);
		strmap_put(&lt->topics, sub->lt->name, sub->lt->len, sub->lt);
		/* only this shard's first subscriber is news; every shard routes publishes, so
		 * every shard hears it */
		interest_broadcast(sh, XMSG_TOPIC_INTEREST, sub->dest, sub->dest_len, true);
	}
	list_insert(&sub->lt->head, sub);
	sub->lt->n++;
	/* an earlier 0->1 may still be on its way to some shards; the route endpoint answers
	 * once every linked node has it in force (a RECEIPT means cluster-wide) */
	return shard_all_endpoints(sh);
}

/* Undoes sub_attach and frees sub; a queue's owner requeues the unacked messages. */
static void sub_detach(struct shard *sh, struct sub *sub)
{
	struct local_table *lt = &sh->sessions.local;
	const size_t plen = DESTNAME_TOPIC_LEN;

	if (sub->kind == SUB_QUEUE) {
		struct xmsg m = {
			.kind = XMSG_QUEUE_CONSUMER_DEL,
			.a = sub_consumer_key(sh, sub),
			.ptr = xname_create(sub->dest, sub->dest_len),
		};

		shard_send(sh, sub->owner, &m);
	} else if (sub->kind == SUB_PATTERN) {
		list_remove(&lt->patterns, sub);
		lt->npatterns--;
		interest_broadcast(sh, XMSG_PATTERN_INTEREST, sub->dest + plen, sub->dest_len - plen, false);
	} else {
		list_remove(&sub->lt->head, sub);
		if (--sub->lt->n == 0) {
			strmap_del(&lt->topics, sub->lt->name, sub->lt->len);
			interest_broadcast(sh, XMSG_TOPIC_INTEREST, sub->dest, sub->dest_len, false);
			hd_free(sub->lt);
		}
	}
	mdeque_free(&sub->pend);
	sh->stats.subscriptions--;
	hd_free(sub->reply_to);
	hd_free(sub->dest);
	hd_free(sub->id);
	hd_free(sub);
}

void sub_remove(struct shard *sh, struct session *s, uint32_t i)
{
	struct sub *sub = s->subs[i];

	s->subs[i] = s->subs[--s->nsubs];
	sub_detach(sh, sub);
}

struct sub *sub_by_id(struct session *s, struct stomp_view id, uint32_t *index)
{
	for (uint32_t i = 0; i < s->nsubs; i++) {
		if (stomp_view_eq(id, s->subs[i]->id, s->subs[i]->id_len)) {
			if (index)
				*index = i;
			return s->subs[i];
		}
	}
	return NULL;
}

struct sub *sub_by_idx(struct session *s, uint32_t idx)
{
	for (uint32_t i = 0; i < s->nsubs; i++)
		if (s->subs[i]->idx == idx)
			return s->subs[i];
	return NULL;
}

uint64_t sub_consumer_key(const struct shard *sh, const struct sub *sub)
{
	return xmsg_consumer_key(XMSG_NODE_SELF, sh->id, sub->s->conn->slot, sub->s->conn->gen,
				 sub->idx);
}

/* An index no live subscription of s has: keys and ack ids carry XMSG_KEY_SUBS of them,
 * and max-subscriptions stays below that, so the walk ends. */
static uint16_t sub_idx_alloc(struct session *s)
{
	for (;;) {
		uint16_t idx = (uint16_t)(s->next_sub_idx++ % XMSG_KEY_SUBS);

		if (!sub_by_idx(s, idx))
			return idx;
	}
}

static int parse_ack_mode(const struct stomp_view *v)
{
	if (!v || STOMP_VIEW_EQ_LIT(*v, "auto"))
		return SESSION_ACK_AUTO;
	if (STOMP_VIEW_EQ_LIT(*v, "client"))
		return SESSION_ACK_CLIENT;
	if (STOMP_VIEW_EQ_LIT(*v, "client-individual"))
		return SESSION_ACK_INDIVIDUAL;
	return -1;
}

static int parse_u32_view(const struct stomp_view *v, uint32_t *out)
{
	uint64_t x = 0;

	if (!v->len || v->len > 10)
		return -1;
	for (size_t i = 0; i < v->len; i++) {
		if (v->ptr[i] < '0' || v->ptr[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v->ptr[i] - '0');
	}
	if (x > UINT32_MAX)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

/* A new subscription of s to internal key `key` under client id `id`, in s->subs (not yet
 * attached). */
static struct sub *sub_create(struct shard *sh, struct session *s, struct stomp_view key,
			      struct stomp_view id, enum sub_kind kind, int ack, uint32_t prefetch)
{
	struct sub *sub = hd_calloc(1, sizeof(*sub));

	sub->s = s;
	sub->idx = sub_idx_alloc(s);
	sub->kind = (uint8_t)kind;
	sub->ack_mode = (uint8_t)ack;
	sub->prefetch = prefetch;
	sub->dest = hd_strndup(key.ptr, key.len);
	sub->dest_len = (uint32_t)key.len;
	sub->id = hd_strndup(id.ptr, id.len);
	sub->id_len = (uint32_t)id.len;
	sub->owner = dest_owner(sh, sub->dest, sub->dest_len);
	sub->owner_node = kind == SUB_QUEUE ? owner_node_of(sh, sub) : 0;
	s->subs = hd_realloc(s->subs, (s->nsubs + 1) * sizeof(*s->subs));
	s->subs[s->nsubs++] = sub;
	sh->stats.subscriptions++;
	return sub;
}

static bool has_room(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	if (s->nsubs < HD_MIN(sh->limits.max_subscriptions, XMSG_KEY_SUBS - 1))
		return true;
	session_fail_frame(sh, s, f, "too many subscriptions", "The connection reached max-subscriptions");
	return false;
}

/* The internal subscription ids of reply queues: a client may not take or drop them. */
static bool is_temp_queue_id(struct shard *sh, struct session *s, const struct stomp_frame *f,
			     struct stomp_view id)
{
	struct stomp_view name;

	if (!destname_temp_queue_name(id, &name))
		return false;
	session_fail_frame(sh, s, f, "Invalid id",
			   "Subscription ids starting with /temp-queue/ belong to the reply queues "
			   "a SEND's reply-to makes: they cannot be subscribed or unsubscribed");
	return true;
}

void sub_on_subscribe(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *d = stomp_frame_header(f, "destination");
	const struct stomp_view *id = stomp_frame_header(f, "id");
	const struct stomp_view *pf = stomp_frame_header(f, "prefetch-count");
	int ack = parse_ack_mode(stomp_frame_header(f, "ack"));
	struct destname dn;
	struct stomp_view idv;
	struct sub *sub;
	uint32_t prefetch = 0;
	enum sub_kind kind = SUB_TOPIC;

	if (!destname_check(sh, s, f, d, &dn) ||
	    !session_authorized(sh, s, f, ACL_SUBSCRIBE, &dn.name))
		return;
	if (!id && s->version != STOMP_V10) {
		session_fail_frame(sh, s, f, "missing id header", "SUBSCRIBE requires an 'id' header");
		return;
	}
	idv = id ? *id : *d;	/* STOMP 1.0: the destination names the subscription */
	if (ack < 0) {
		session_fail_frame(sh, s, f, "invalid ack mode", "ack must be auto, client or client-individual");
		return;
	}
	if (pf && parse_u32_view(pf, &prefetch)) {
		session_fail_frame(sh, s, f, "invalid prefetch-count", "prefetch-count must be a number");
		return;
	}
	if (is_temp_queue_id(sh, s, f, idv))
		return;
	if (sub_by_id(s, idv, NULL)) {
		session_fail_frame(sh, s, f, "duplicate subscription id", "A subscription with this id exists");
		return;
	}
	if (!has_room(sh, s, f))
		return;
	if (destname_is_queue(dn.name))
		kind = SUB_QUEUE;
	else if (topic_is_pattern(dn.name.ptr + DESTNAME_TOPIC_LEN, dn.name.len - DESTNAME_TOPIC_LEN))
		kind = SUB_PATTERN;
	sub = sub_create(sh, s, destname_key(sh, s, dn.name), idv, kind, ack, prefetch);
	{
		uint32_t seq = receipt_begin(s, f, 0, false);

		receipt_sync_mask(sh, s, sub_attach(sh, sub, seq), seq);
	}
	receipt_flush(sh, s);
}

/* "amq.gen-" and 22 base64url characters of 16 random bytes, as RabbitMQ names them; the
 * first 3 bytes are this node's tag, so every node knows where the queue lives (the other
 * 13, 104 bits, keep the name unguessable). */
static size_t reply_queue_name(char *out, size_t cap)
{
	unsigned char rnd[16];
	size_t n = DESTNAME_QUEUE_LEN + sizeof("amq.gen-") - 1;

	randombytes_buf(rnd, sizeof(rnd));
	rnd[0] = (unsigned char)(shard_node_tag >> 16);
	rnd[1] = (unsigned char)(shard_node_tag >> 8);
	rnd[2] = (unsigned char)shard_node_tag;
	memcpy(out, DESTNAME_QUEUE "amq.gen-", n);
	sodium_bin2base64(out + n, cap - n, rnd, sizeof(rnd), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return strlen(out);
}

#define REPLY_QUEUE_NAME_CAP 64
#define REPLY_QUEUE_TRIES 4096	/* names drawn to find one this shard owns (~nshards) */

struct sub *sub_reply_queue(struct shard *sh, struct session *s, const struct stomp_frame *f,
			    struct stomp_view temp)
{
	struct sub *sub = sub_by_id(s, temp, NULL);
	char name[REPLY_QUEUE_NAME_CAP];
	struct stomp_view key;
	size_t len;

	if (sub)
		return sub;
	if (!has_room(sh, s, f))
		return NULL;
	/* a name this shard owns, so the queue is made right here, in order (sub_attach) */
	for (int i = 0; i < REPLY_QUEUE_TRIES; i++) {
		len = reply_queue_name(name, sizeof(name));
		key = destname_key(sh, s, (struct stomp_view){ name, len });
		if (dest_owner(sh, key.ptr, key.len) == sh->id)
			break;
	}
	sub = sub_create(sh, s, key, temp, SUB_QUEUE, SESSION_ACK_AUTO, 0);
	sub->reply_to_len = (uint32_t)(DESTNAME_REPLY_QUEUE_LEN + len - DESTNAME_QUEUE_LEN);
	sub->reply_to = hd_alloc(sub->reply_to_len + 1);
	memcpy(sub->reply_to, DESTNAME_REPLY_QUEUE, DESTNAME_REPLY_QUEUE_LEN);
	memcpy(sub->reply_to + DESTNAME_REPLY_QUEUE_LEN, name + DESTNAME_QUEUE_LEN,
	       len - DESTNAME_QUEUE_LEN + 1);
	sub_attach(sh, sub, 0);
	return sub;
}

void sub_on_unsubscribe(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *id = stomp_frame_header(f, "id");
	uint32_t i;
	struct sub *sub;
	uint64_t owner_mask;

	if (!id && s->version == STOMP_V10)
		id = stomp_frame_header(f, "destination");
	if (!id) {
		session_fail_frame(sh, s, f, "missing id header", "UNSUBSCRIBE requires an 'id' header");
		return;
	}
	if (is_temp_queue_id(sh, s, f, *id))
		return;
	sub = sub_by_id(s, *id, &i);
	if (!sub) {
		/* RabbitMQ answers so too: a client that thinks it unsubscribed is told it never was */
		session_fail_frame(sh, s, f, "No subscription found",
			   "UNSUBSCRIBE must refer to an existing subscription");
		return;
	}
	owner_mask = 1ull << sub->owner;
	sub_remove(sh, s, i);
	receipt_sync_mask(sh, s, owner_mask, receipt_begin(s, f, 0, false));
	receipt_flush(sh, s);
}
