/*
 * core/route_queue.c - queues across nodes, the route thread's half (see route_state.h).
 *
 * Each queue has one owner node (core/placement.h). A shard sends every operation for a
 * queue another node owns to the route: SENDs, consumer registrations and departures,
 * ACK/NACK and credit, deliveries coming back (RETURN), held messages moving on
 * (HANDOVER). The route sends each to the owner's node as a QUEUE frame; there the route
 * hands it to the owning shard as if a local shard had sent it, marked as coming from the
 * route (so the shard applies it whatever its own view says, and moves the queue on if
 * that view disagrees, rather than bouncing it back).
 *
 * Consumers on other nodes: the owner side gives their keys the node field of the link
 * they came over (peer slot + 1), so the owning shard's deliveries for them reach the
 * route, which sends them back over that link with the field cleared. Answers to receipted
 * operations carry an origin (peer slot and shard) in the request's b, which the owning
 * shard returns in its XMSG_DONE.
 *
 * Link failures: the owner side drops the consumers of a peer whose link went down (their
 * unacked messages go back to the queue, redelivered); the client side keeps what it
 * registered there and registers it again when the link is back. Operations for a member
 * whose link is not up wait in its outbox (bounded; past it the route takes no more work
 * from the shards); when the member leaves, placement changes and they go to the new
 * owner. A receipted SEND already on a link that goes down is answered with an error (it
 * may or may not have been held): the client resends, as after any connection loss.
 */
#include "core/route_state.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/destname.h"
#include "core/hmsg.h"
#include "core/session.h"
#include "core/shard.h"

#include <string.h>

/* Owner side: a consumer on another node, by its key as our shards know it. */
struct here_consumer {
	uint64_t key;			/* node field: peer slot + 1 */
	int peer;
	uint32_t len;
	char name[];
};

/* Client side: a consumer of ours registered with another node, to register again when
 * its link comes back. */
struct there_consumer {
	uint64_t key;			/* node field 0: ours */
	int peer;
	uint16_t shard;
	struct xconsumer *xc;		/* as registered (seq cleared) */
};

static uint64_t key_with_node(uint64_t key, uint32_t node)
{
	return (key & ((1ull << 52) - 1)) | (uint64_t)(node & (XMSG_KEY_NODES - 1)) << 52;
}

/* A consumer's node as replication names it across nodes: the low 32 bits of its
 * placement hash (0: a node this one has no link to). Enough to tell a cluster's nodes
 * apart; a backup maps it onto its own links (key_node_of). */
static uint32_t node_of_key(const struct route *r, uint64_t key)
{
	uint32_t node = xmsg_key_node(key);

	if (node == XMSG_NODE_SELF)
		return (uint32_t)r->self_hash;
	if (node - 1 < ROUTE_MAX_PEERS && r->peers[node - 1].used)
		return (uint32_t)r->peers[node - 1].node_hash;
	return 0;
}

/* The node field our shards give consumers on the node node_of_key named. */
static uint32_t key_node_of(const struct route *r, uint32_t node32)
{
	if (node32 && node32 == (uint32_t)r->self_hash)
		return XMSG_NODE_SELF;
	for (int i = 0; node32 && i < ROUTE_MAX_PEERS; i++)
		if (r->peers[i].used && (uint32_t)r->peers[i].node_hash == node32)
			return (uint32_t)i + 1;
	return XMSG_NODE_UNKNOWN;
}

static uint32_t local_owner(const struct route *r, const char *name, size_t len)
{
	return (uint32_t)(hd_hash(name, len) % r->nshards);
}

static int owner_of(const struct route *r, const char *name, size_t len)
{
	return r->pl ? placement_queue_node(r->pl, name, len) : 0;
}

/* The origin a request from peer `peer`'s shard `shard` carries to our owning shard. */
static uint64_t origin(int peer, uint16_t shard)
{
	return (uint64_t)(peer + 1) | (uint64_t)shard << 8;
}

void route_queue_init(struct route *r)
{
	strmap_init(&r->consumers_here);
	strmap_init(&r->consumers_there);
}

static void map_clear(struct strmap *map, bool there)
{
	for (uint32_t i = 0; i < map->cap; i++) {
		struct strmap_slot *sl = &map->slots[i];

		if (!sl->hash || !sl->val)
			continue;
		if (there)
			hd_free(((struct there_consumer *)sl->val)->xc);
		hd_free(sl->val);
	}
	strmap_fini(map);
}

void route_queue_fini(struct route *r)
{
	map_clear(&r->consumers_here, false);
	map_clear(&r->consumers_there, true);
	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		struct xpark *o = &r->peers[i].outbox;

		for (; o->n; o->n--, o->head = (o->head + 1) % o->cap)
			xmsg_drop(&o->q[o->head]);
		hd_free(o->q);
		for (uint32_t k = 0; k < r->peers[i].nreceipts; k++)
			if (r->peers[i].receipts[k].msg)
				hmsg_unref(r->peers[i].receipts[k].msg);
		hd_free(r->peers[i].receipts);
	}
	placement_unref(r->pl);
}

/* ---- records ---- */

static void there_forget(struct route *r, uint64_t key)
{
	struct there_consumer *t = strmap_del(&r->consumers_there, (const char *)&key, sizeof(key));

	if (t) {
		hd_free(t->xc);
		hd_free(t);
	}
}

static void there_remember(struct route *r, int peer, uint16_t shard, const struct xconsumer *xc)
{
	struct there_consumer *t = hd_calloc(1, sizeof(*t));

	there_forget(r, xc->key);
	t->key = xc->key;
	t->peer = peer;
	t->shard = shard;
	t->xc = hd_alloc(sizeof(*xc) + xc->len + 1);
	memcpy(t->xc, xc, sizeof(*xc) + xc->len + 1);
	t->xc->seq = 0;
	strmap_put(&r->consumers_there, (const char *)&t->key, sizeof(t->key), t);
}

static void here_forget(struct route *r, uint64_t key)
{
	hd_free(strmap_del(&r->consumers_here, (const char *)&key, sizeof(key)));
}

static void here_remember(struct route *r, uint64_t key, int peer, const char *name, size_t len)
{
	struct here_consumer *h = hd_alloc(sizeof(*h) + len + 1);

	here_forget(r, key);
	h->key = key;
	h->peer = peer;
	h->len = (uint32_t)len;
	memcpy(h->name, name, len);
	h->name[len] = '\0';
	strmap_put(&r->consumers_here, (const char *)&h->key, sizeof(h->key), h);
}

static void receipt_track(struct peer *p, uint16_t shard, uint64_t conn, uint32_t seq,
			  struct hmsg *send)
{
	if (p->nreceipts == p->receipts_cap) {
		p->receipts_cap = p->receipts_cap ? p->receipts_cap * 2 : 64;
		p->receipts = hd_realloc(p->receipts, p->receipts_cap * sizeof(*p->receipts));
	}
	if (send)
		hmsg_ref(send, 1);
	p->receipts[p->nreceipts++] = (struct receipt_out){ .shard = shard, .is_send = send != NULL,
							     .seq = seq, .conn = conn, .msg = send };
}

static void receipt_settle(struct peer *p, uint16_t shard, uint64_t conn, uint32_t seq)
{
	/* answers come back about in the order sent: the match is near the front */
	for (uint32_t i = 0; i < p->nreceipts; i++) {
		struct receipt_out *o = &p->receipts[i];

		if (o->shard == shard && o->conn == conn && o->seq == seq) {
			if (o->msg)
				hmsg_unref(o->msg);
			memmove(o, o + 1, (p->nreceipts - i - 1) * sizeof(*o));
			p->nreceipts--;
			return;
		}
	}
}

/* ---- to a peer ---- */

static void send_frame(struct route *r, struct peer *p, const struct link_queue *q)
{
	uint8_t small[512];
	size_t need = LINK_QUEUE_HDR + q->name_len;
	uint8_t *buf = need <= sizeof(small) ? small : hd_alloc(need);

	route_link_write(r, p, p->conn, buf, link_encode_queue(buf, need, q));
	if (buf != small)
		hd_free(buf);
}

static void send_frame_message(struct route *r, struct peer *p, const struct link_queue *q,
			       struct hmsg *m)
{
	struct link_message lm;
	uint8_t head[LINK_QUEUE_MESSAGE_HDR];

	route_message_view(m, &lm);
	route_link_write_message(r, p, head, link_encode_queue_head(head, sizeof(head), q, &lm), m,
				 lm.bytes_len);
}

/* The queue an operation from a shard is for. */
static void op_name(const struct xmsg *m, const char **name, size_t *len)
{
	switch (m->kind) {
	case XMSG_QUEUE_CONSUMER_ADD: {
		const struct xconsumer *xc = m->ptr;

		*name = xc->name;
		*len = xc->len;
		return;
	}
	case XMSG_QUEUE_CONSUMER_DEL:
	case XMSG_QUEUE_ACK: {
		const struct xname *n = m->ptr;

		*name = n->name;
		*len = n->len;
		return;
	}
	default: {		/* PUBLISH, RETURN, HANDOVER: the message names it */
		const struct hmsg *h = m->ptr;

		*name = hmsg_dest(h);
		*len = h->dest_len;
		return;
	}
	}
}

/* Sends operation m (from one of our shards) to peer slot `peer`, or keeps it in the
 * peer's outbox until its link is up. Consumes m. */
static void op_to_peer(struct route *r, int peer, const struct xmsg *m)
{
	struct peer *p = &r->peers[peer];
	struct link_queue q = { .shard = m->from };

	if (p->state != PEER_UP) {
		/* a registration counts from now: a DEL for it must follow it into the outbox */
		if (m->kind == XMSG_QUEUE_CONSUMER_ADD)
			there_remember(r, peer, m->from, m->ptr);
		else if (m->kind == XMSG_QUEUE_CONSUMER_DEL)
			there_forget(r, m->a);
		xpark_push(&p->outbox, m);
		r->outboxed++;
		return;
	}
	switch (m->kind) {
	case XMSG_PUBLISH:
		q.op = LINK_Q_SEND;
		q.seq = m->u32;
		q.conn = m->a;
		q.arg = (m->b & XPUBLISH_RESENT) ? 1 : 0;
		send_frame_message(r, p, &q, m->ptr);
		if (q.seq)
			receipt_track(p, q.shard, q.conn, q.seq, m->ptr);
		hmsg_unref(m->ptr);
		return;
	case XMSG_QUEUE_RETURN:
	case XMSG_QUEUE_HANDOVER:
		q.op = m->kind == XMSG_QUEUE_RETURN ? LINK_Q_RETURN : LINK_Q_HANDOVER;
		q.key = m->a;
		q.tag = m->b;
		q.arg = m->u32;
		send_frame_message(r, p, &q, m->ptr);
		hmsg_unref(m->ptr);
		return;
	case XMSG_QUEUE_CONSUMER_ADD: {
		struct xconsumer *xc = m->ptr;

		q.op = LINK_Q_ADD;
		q.seq = xc->seq;
		q.arg = xc->prefetch;
		q.key = xc->key;
		q.conn = xc->conn_ref;
		q.tag = xc->ack_mode | (uint64_t)xc->epoch << 8;
		q.name = xc->name;
		q.name_len = xc->len;
		send_frame(r, p, &q);
		if (q.seq)
			receipt_track(p, q.shard, q.conn, q.seq, NULL);
		there_remember(r, peer, q.shard, xc);
		hd_free(xc);
		return;
	}
	case XMSG_REPL_SEND:
		q.op = LINK_Q_REPL_SEND;
		q.key = m->a;
		q.arg = m->u32;
		send_frame_message(r, p, &q, m->ptr);
		hmsg_unref(m->ptr);
		return;
	case XMSG_REPL_OP: {
		struct xrepl_op *op = m->ptr;

		q.op = LINK_Q_REPL;
		q.key = m->a;
		q.arg = m->u32;
		if (XREPL_LOW(m->u32) == XREPL_DELIVERED) {
			/* who got it, in terms the backup can map onto its own links */
			q.conn = key_with_node(op->consumer, XMSG_NODE_SELF);
			q.seq = (uint32_t)node_of_key(r, op->consumer);
			q.shard = op->reg_epoch;
			q.tag = op->tag;
		}
		q.name = op->name;
		q.name_len = op->len;
		send_frame(r, p, &q);
		hd_free(op);
		return;
	}
	case XMSG_QUEUE_CONSUMER_DEL:
	case XMSG_QUEUE_ACK: {
		struct xname *n = m->ptr;

		q.op = m->kind == XMSG_QUEUE_ACK ? LINK_Q_ACK : LINK_Q_DEL;
		q.key = key_with_node(m->a, XMSG_NODE_SELF);
		if (xmsg_key_node(m->a) != XMSG_NODE_SELF)	/* an ACK sent on (XACK_F_FORWARDED) */
			q.seq = node_of_key(r, m->a);
		q.tag = m->b;
		q.arg = m->u32;
		q.name = n->name;
		q.name_len = n->len;
		send_frame(r, p, &q);
		if (m->kind == XMSG_QUEUE_CONSUMER_DEL)
			there_forget(r, m->a);
		hd_free(n);
		return;
	}
	default:
		xmsg_drop(m);
		return;
	}
}

static bool in_view(const struct peer *p)
{
	return p->used && p->alive && p->port && !p->leaving;
}

static bool in_agreed_view(const struct route *r, uint64_t node_hash)
{
	if (!r->have_view)
		return true;
	for (uint32_t i = 0; i < r->view.n; i++)
		if (r->view.node_hash[i] == node_hash)
			return true;
	return false;
}

/* Whether the agreed view has node_hash joining (copies only, no queues yet). */
static bool view_joining(const struct route *r, uint64_t node_hash)
{
	for (uint32_t i = 0; r->have_view && i < r->view.n; i++)
		if (r->view.node_hash[i] == node_hash)
			return r->view.joining[i];
	return false;
}

/* Whether queues may be placed on peer p: by the agreed view once there is one (a member
 * gossip already calls dead stays until the view drops it, so a node cut off from the
 * rest never makes itself the owner of queues it can no longer reach), by gossip before. */
static bool peer_placed(const struct route *r, const struct peer *p)
{
	return r->have_view ? p->used && p->port && !p->leaving && in_agreed_view(r, p->node_hash)
			    : in_view(p);
}

/* A replication operation goes to the node the owner shard named (b), not where placement
 * says now: the shard numbered its stream for that backup. A node that left is past
 * streaming to (its successor gets a snapshot). */
static void repl_to_peer(struct route *r, const struct xmsg *m)
{
	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		struct peer *p = &r->peers[i];

		if (p->used && p->node_hash == m->b && p->alive && !p->leaving) {
			op_to_peer(r, i, m);
			return;
		}
	}
	xmsg_drop(m);
}

/* A consumer's registration goes where its record says it is (not where placement says
 * now): a consumer leaving, or moving to another node, leaves the one that has it. */
static bool del_registered(struct route *r, const struct xmsg *m, int to_peer)
{
	uint64_t key = m->kind == XMSG_QUEUE_CONSUMER_ADD ? ((struct xconsumer *)m->ptr)->key : m->a;
	struct there_consumer *t = strmap_get(&r->consumers_there, (const char *)&key, sizeof(key));
	struct xmsg del;

	if (!t) {
		/* no other node has it: if anyone does, it is our own owner shard (the route
		 * sent it there) */
		if (m->kind == XMSG_QUEUE_CONSUMER_DEL && (m->u32 & XDEL_MOVING)) {
			const struct xname *n = m->ptr;

			route_forward_to_shard(r, local_owner(r, n->name, n->len), m);
			return true;
		}
		return false;
	}
	if (!peer_placed(r, &r->peers[t->peer])) {
		/* registered with a member that left: nothing there to leave */
		there_forget(r, key);
		if (m->kind == XMSG_QUEUE_CONSUMER_DEL) {
			xmsg_drop(m);
			return true;
		}
		return false;
	}
	if (m->kind == XMSG_QUEUE_CONSUMER_DEL) {
		op_to_peer(r, t->peer, m);	/* forgets the record */
		return true;
	}
	if (t->peer == to_peer)
		return false;
	del = (struct xmsg){ .kind = XMSG_QUEUE_CONSUMER_DEL, .from = m->from, .a = key,
			     .ptr = xname_create(t->xc->name, t->xc->len) };
	op_to_peer(r, t->peer, &del);
	return false;
}

/* Routes operation m by this thread's placement: to our owning shard (keeping its
 * sender, which the owner answers), to the owner's node, or nowhere (a reply queue whose
 * node is gone: dropped, receipts answered, as for a reply queue that is gone here). */
static void route_op(struct route *r, const struct xmsg *m)
{
	const char *name;
	size_t len;
	int idx;

	if (m->kind == XMSG_REPL_SEND || m->kind == XMSG_REPL_OP) {
		repl_to_peer(r, m);
		return;
	}
	op_name(m, &name, &len);
	idx = owner_of(r, name, len);
	if ((m->kind == XMSG_QUEUE_CONSUMER_DEL || m->kind == XMSG_QUEUE_CONSUMER_ADD) &&
	    del_registered(r, m, idx > 0 ? r->pl->peer[idx] : -1))
		return;
	if (idx == 0) {
		route_forward_to_shard(r, local_owner(r, name, len), m);
		return;
	}
	if (idx == PLACEMENT_NONE) {
		uint32_t seq = m->kind == XMSG_PUBLISH ? m->u32 :
			       m->kind == XMSG_QUEUE_CONSUMER_ADD ? ((struct xconsumer *)m->ptr)->seq : 0;
		uint64_t conn = m->kind == XMSG_QUEUE_CONSUMER_ADD ?
				((struct xconsumer *)m->ptr)->conn_ref : m->a;

		if (seq)
			route_send_to_shard(r, m->from,
					    &(struct xmsg){ .kind = XMSG_DONE, .a = conn, .u32 = seq });
		xmsg_drop(m);
		return;
	}
	op_to_peer(r, r->pl->peer[idx], m);
}

/* A delivery (or a DROPPED notice) from our owning shard to a consumer on another node. */
static void to_consumer_node(struct route *r, const struct xmsg *m)
{
	int peer = (int)xmsg_key_node(m->a) - 1;
	struct peer *p = peer >= 0 && peer < ROUTE_MAX_PEERS ? &r->peers[peer] : NULL;
	struct link_queue q = { .key = key_with_node(m->a, XMSG_NODE_SELF), .tag = m->b,
				.arg = m->u32 };

	if (m->kind == XMSG_QUEUE_DROPPED) {
		struct xname *n = m->ptr;

		here_forget(r, m->a);
		if (p && p->state == PEER_UP) {
			q.op = LINK_Q_DROPPED;
			q.name = n->name;
			q.name_len = n->len;
			send_frame(r, p, &q);
		}
		hd_free(n);
		return;
	}
	if (p && p->state == PEER_UP) {
		q.op = LINK_Q_DELIVER;
		send_frame_message(r, p, &q, m->ptr);
		hmsg_unref(m->ptr);
		return;
	}
	/* the consumer's link is gone: the delivery goes back to its queue */
	{
		struct hmsg *h = m->ptr;
		struct xmsg back = { .kind = XMSG_QUEUE_RETURN, .ptr = h, .a = m->a, .b = m->b,
				     .u32 = (m->u32 >> XDELIVER_ACK_MODE_SHIFT) & 0xff };

		route_send_to_shard(r, local_owner(r, hmsg_dest(h), h->dest_len), &back);
	}
}

/* Our owning shard's answer to a receipted operation from another node. */
static void done_to_origin(struct route *r, const struct xmsg *m)
{
	uint64_t o = XDONE_ORIGIN(m->b);
	int peer = (int)(o & 0xff) - 1;
	struct peer *p = peer >= 0 && peer < ROUTE_MAX_PEERS ? &r->peers[peer] : NULL;
	struct link_queue q = { .op = LINK_Q_DONE, .shard = (uint16_t)(o >> 8), .seq = m->u32,
				.conn = m->a, .arg = XDONE_ERR(m->b), .name = "-", .name_len = 1 };

	/* a link that went down meanwhile: its node answered the receipt itself */
	if (p && p->state == PEER_UP)
		send_frame(r, p, &q);
}

bool route_queue_from_shard(struct route *r, const struct xmsg *m)
{
	switch (m->kind) {
	case XMSG_PUBLISH:
	case XMSG_QUEUE_RETURN:
	case XMSG_QUEUE_HANDOVER: {
		const struct hmsg *h = m->ptr;

		if (!destname_key_is_queue(hmsg_dest(h), h->dest_len))
			return false;
		route_op(r, m);
		return true;
	}
	case XMSG_QUEUE_CONSUMER_ADD:
	case XMSG_QUEUE_CONSUMER_DEL:
	case XMSG_QUEUE_ACK:
	case XMSG_REPL_SEND:
	case XMSG_REPL_OP:
		route_op(r, m);
		return true;
	case XMSG_QUEUE_DELIVER:
	case XMSG_QUEUE_DROPPED:
		to_consumer_node(r, m);
		return true;
	case XMSG_DONE:
		if (!XDONE_ORIGIN(m->b))
			return false;	/* the route's own SYNC rounds */
		done_to_origin(r, m);
		return true;
	default:
		return false;
	}
}

/* ---- from a peer ---- */

static bool queue_name_ok(const char *name, size_t len)
{
	return destname_key_is_queue(name, len);
}

bool route_queue_from_link(struct route *r, int idx, const struct link_frame *f)
{
	struct peer *p = &r->peers[idx];
	struct link_queue q;
	struct xmsg x = { 0 };
	uint32_t to;

	if (link_decode_queue(f, &q))
		return false;
	if (link_queue_op_has_message(q.op)) {
		if (!queue_name_ok((const char *)q.msg.bytes, q.msg.dest_len))
			return false;
		p->msgs_in++;
		x.ptr = route_message_from_link(r, &q.msg);
		to = local_owner(r, (const char *)q.msg.bytes, q.msg.dest_len);
	} else {
		if (q.op != LINK_Q_DONE && !queue_name_ok(q.name, q.name_len))
			return false;
		to = local_owner(r, q.name, q.name_len);
	}
	switch (q.op) {
	case LINK_Q_SEND:
		x.kind = XMSG_PUBLISH;
		x.a = q.conn;
		x.u32 = q.seq;
		x.b = origin(idx, q.shard) | ((q.arg & 1) ? XPUBLISH_RESENT : 0);
		break;
	case LINK_Q_HANDOVER:
		x.kind = XMSG_QUEUE_HANDOVER;
		x.u32 = q.arg ? 1 : 0;
		x.a = q.key;	/* its number in the stream of ... */
		x.b = q.tag;	/* ... the node handing it over (replica.h, lineage) */
		break;
	case LINK_Q_RETURN:
		x.kind = XMSG_QUEUE_RETURN;
		x.a = key_with_node(q.key, (uint32_t)idx + 1);
		x.b = q.tag;
		x.u32 = q.arg;
		break;
	case LINK_Q_DELIVER:
		to = xmsg_key_shard(q.key);
		if (to >= r->nshards) {
			hmsg_unref(x.ptr);
			return false;
		}
		x.kind = XMSG_QUEUE_DELIVER;
		x.a = key_with_node(q.key, XMSG_NODE_SELF);
		x.b = q.tag;
		x.u32 = q.arg;
		break;
	case LINK_Q_DONE:
		if (q.shard >= r->nshards)
			return false;
		receipt_settle(p, q.shard, q.conn, q.seq);
		to = q.shard;
		x.kind = XMSG_DONE;
		x.a = q.conn;
		x.u32 = q.seq;
		x.b = q.arg & 0xff;
		break;
	case LINK_Q_ADD: {
		struct xconsumer *xc;

		if ((q.tag & 0xff) > SESSION_ACK_INDIVIDUAL || q.tag >> 24)
			return false;
		xc = hd_alloc(sizeof(*xc) + q.name_len + 1);
		xc->key = key_with_node(q.key, (uint32_t)idx + 1);
		xc->conn_ref = q.conn;
		xc->seq = q.seq;
		xc->prefetch = q.arg;
		xc->ack_mode = (uint8_t)q.tag;
		xc->epoch = (uint16_t)(q.tag >> 8);
		xc->len = q.name_len;
		memcpy(xc->name, q.name, q.name_len);
		xc->name[q.name_len] = '\0';
		here_remember(r, xc->key, idx, q.name, q.name_len);
		x.kind = XMSG_QUEUE_CONSUMER_ADD;
		x.ptr = xc;
		x.b = origin(idx, q.shard);
		break;
	}
	case LINK_Q_DEL:
	case LINK_Q_ACK:
		x.kind = q.op == LINK_Q_DEL ? XMSG_QUEUE_CONSUMER_DEL : XMSG_QUEUE_ACK;
		/* seq names the consumer's node when it is not the sender (an ACK sent on) */
		x.a = key_with_node(q.key, q.seq ? key_node_of(r, q.seq) : (uint32_t)idx + 1);
		x.b = q.tag;
		x.u32 = q.arg;
		x.ptr = xname_create(q.name, q.name_len);
		if (q.op == LINK_Q_DEL)
			here_forget(r, x.a);
		break;
	case LINK_Q_REPL_SEND:
		x.kind = XMSG_REPL_SEND;
		x.a = q.key;
		x.b = p->node_hash;
		x.u32 = (q.arg & ~0xffu) | (q.arg & (XREPL_F_REDELIVERED | XREPL_F_DELIVERED));
		break;
	case LINK_Q_REPL: {
		struct xrepl_op *op;

		if (XREPL_LOW(q.arg) < XREPL_DELIVERED || XREPL_LOW(q.arg) > XREPL_PROMOTE ||
		    XREPL_LOW(q.arg) == XREPL_RESYNC)	/* ours alone */
			return false;
		op = xrepl_op_create(q.name, q.name_len);
		if (XREPL_LOW(q.arg) == XREPL_DELIVERED) {
			op->consumer = key_with_node(q.conn, key_node_of(r, q.seq));
			op->tag = q.tag;
			op->reg_epoch = q.shard;
		}
		x.kind = XMSG_REPL_OP;
		x.a = q.key;
		x.b = p->node_hash;
		x.u32 = q.arg;
		x.ptr = op;
		break;
	}
	case LINK_Q_DROPPED:
		to = xmsg_key_shard(q.key);
		if (to >= r->nshards)
			return false;
		x.kind = XMSG_QUEUE_DROPPED;
		x.a = key_with_node(q.key, XMSG_NODE_SELF);
		x.b = p->node_hash;	/* who let it go */
		x.ptr = xname_create(q.name, q.name_len);
		there_forget(r, x.a);
		break;
	default:
		if (x.ptr)
			hmsg_unref(x.ptr);
		return false;
	}
	route_send_to_shard(r, to, &x);
	return true;
}

/* ---- links and membership ---- */

void route_queue_link_up(struct route *r, int idx)
{
	struct peer *p = &r->peers[idx];
	struct xpark held = p->outbox;

	/* what our consumers had registered there, again (the peer dropped them with the
	 * link) */
	for (uint32_t i = 0; i < r->consumers_there.cap; i++) {
		struct strmap_slot *sl = &r->consumers_there.slots[i];
		struct there_consumer *t = sl->hash ? sl->val : NULL;
		struct link_queue q;

		if (!t || t->peer != idx)
			continue;
		q = (struct link_queue){ .op = LINK_Q_ADD, .shard = t->shard, .arg = t->xc->prefetch,
					 .key = t->key, .conn = t->xc->conn_ref,
					 .tag = t->xc->ack_mode | (uint64_t)t->xc->epoch << 8,
					 .name = t->xc->name,
					 .name_len = t->xc->len };
		send_frame(r, p, &q);
	}
	/* then what waited for the link, in order, routed anew (placement may have moved) */
	memset(&p->outbox, 0, sizeof(p->outbox));
	r->outboxed -= held.n;
	for (; held.n; held.n--, held.head = (held.head + 1) % held.cap)
		route_op(r, &held.q[held.head]);
	hd_free(held.q);
	/* replication streams to it may have lost their tail with the old link: the owners
	 * send their copies again (after what the outbox held) */
	for (uint32_t s = 0; s < r->nshards; s++)
		route_send_to_shard(r, s, &(struct xmsg){ .kind = XMSG_REPL_OP, .u32 = XREPL_RESYNC,
							  .b = p->node_hash });
}

void route_queue_link_down(struct route *r, int idx)
{
	struct peer *p = &r->peers[idx];
	struct here_consumer **gone = hd_alloc((r->consumers_here.count + 1) * sizeof(*gone));
	uint32_t n = 0;

	/* its consumers of our queues leave: their unacked messages go back, redelivered */
	for (uint32_t i = 0; i < r->consumers_here.cap; i++) {
		struct strmap_slot *sl = &r->consumers_here.slots[i];
		struct here_consumer *h = sl->hash ? sl->val : NULL;

		if (h && h->peer == idx)
			gone[n++] = h;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct xmsg del = { .kind = XMSG_QUEUE_CONSUMER_DEL, .a = gone[i]->key,
				    .ptr = xname_create(gone[i]->name, gone[i]->len) };

		route_send_to_shard(r, local_owner(r, gone[i]->name, gone[i]->len), &del);
		here_forget(r, gone[i]->key);
	}
	hd_free(gone);
	/* receipts it will never answer: a SEND goes again, by placement (its node's outbox
	 * now; the queue's next owner when the view drops the node, or the node itself when
	 * the link comes back), so its producer carries on without reconnecting; a copy may
	 * result when the node had taken it in before the link broke */
	for (uint32_t i = 0; i < p->nreceipts; i++) {
		const struct receipt_out *o = &p->receipts[i];

		if (o->msg) {
			route_op(r, &(struct xmsg){ .kind = XMSG_PUBLISH, .from = o->shard,
						    .a = o->conn, .u32 = o->seq, .b = XPUBLISH_RESENT,
						    .ptr = o->msg });
			continue;
		}
		route_send_to_shard(r, o->shard, &(struct xmsg){ .kind = XMSG_DONE, .a = o->conn,
								  .u32 = o->seq, .b = XERR_OK });
	}
	p->nreceipts = 0;
}

uint32_t route_queue_outboxed(const struct route *r)
{
	return r->outboxed;
}

bool route_queue_backlogged(const struct route *r)
{
	return r->outboxed > ROUTE_OUTBOX_MAX;
}

void route_queue_publish_placement(struct route *r)
{
	struct placement *pl = placement_create(r->self_hash);

	pl->joining[0] = view_joining(r, r->self_hash);
	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		if (peer_placed(r, &r->peers[i])) {
			placement_add(pl, r->peers[i].node_hash, (int16_t)i);
			pl->joining[pl->n - 1] = view_joining(r, r->peers[i].node_hash);
		}
	}
	pl->version = ++r->placement_version;
	pl->epoch = r->view.epoch;
	/* a node outside the view (not yet added, or taken out) owns nothing */
	pl->outside_view = !in_agreed_view(r, r->self_hash);
	pl->leaving_gracefully = r->leaving;
	pl->leaving = r->leaving || pl->outside_view;
	placement_unref(r->pl);
	r->pl = pl;
	/* the shards switch in ring order, before anything the route sends them after */
	for (uint32_t s = 0; s < r->nshards; s++) {
		placement_ref(pl);
		route_send_to_shard(r, s, &(struct xmsg){ .kind = XMSG_PLACEMENT, .ptr = pl });
	}
	hd_log_info("route: queues placed over %u node(s) (placement %llu, view epoch %llu%s)",
		    pl->n - (pl->leaving ? 1 : 0), (unsigned long long)pl->version,
		    (unsigned long long)pl->epoch, pl->leaving ? ", this node out" : "");
	/* operations held for members that left go where placement says now, but consumer
	 * registrations: every consumer registered there moves by placement on its own shard
	 * (a DEL and a new registration, sent before this: the shards got the placement
	 * first), and the old registration arriving at the new owner too would have it
	 * deliver, then requeue and deliver again. A SUBSCRIBE's receipt it carried is
	 * answered here, behind the new registration. */
	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		struct peer *p = &r->peers[i];
		struct xpark held = p->outbox;

		if (peer_placed(r, p) || !held.n)
			continue;
		memset(&p->outbox, 0, sizeof(p->outbox));
		r->outboxed -= held.n;
		for (; held.n; held.n--, held.head = (held.head + 1) % held.cap) {
			const struct xmsg *m = &held.q[held.head];

			if (m->kind == XMSG_QUEUE_CONSUMER_ADD && ((struct xconsumer *)m->ptr)->seq) {
				const struct xconsumer *xc = m->ptr;

				route_send_to_shard(r, m->from, &(struct xmsg){
					.kind = XMSG_DONE, .a = xc->conn_ref, .u32 = xc->seq });
			}
			if (m->kind == XMSG_QUEUE_CONSUMER_ADD || m->kind == XMSG_QUEUE_CONSUMER_DEL)
				xmsg_drop(m);
			else
				route_op(r, m);
		}
		hd_free(held.q);
	}
	/* registrations with members that left: their consumers register anew by placement */
	for (uint32_t i = 0; i < r->consumers_there.cap; i++) {
		struct strmap_slot *sl = &r->consumers_there.slots[i];
		struct there_consumer *t = sl->hash ? sl->val : NULL;

		if (t && !peer_placed(r, &r->peers[t->peer]))
			there_forget(r, t->key);
	}
}
