/*
 * core/replica.c - queue replication on the shards (what and why in replica.h).
 */
#include "core/replica.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/dest_state.h"
#include "core/destname.h"
#include "core/hmsg.h"
#include "core/placement.h"
#include "core/shard.h"

#include <stdlib.h>
#include <string.h>

#define REPL_SCAN_MS 250

/* A SEND's RECEIPT waiting for the backups (in rseq order). */
struct repl_wait {
	uint64_t rseq;
	uint64_t conn;
	uint64_t origin;	/* the request's b, returned in the DONE */
	uint64_t since_ms;
	uint32_t seq;
	uint16_t from;
	bool of_held;		/* a resent SEND whose message q held already: nothing of it
				 * to drop if refused */
};

/* Owner side, per queue. */
/* A stream this queue was taken over from: the messages of it the copy held came here
 * with it (a hand-over of one of them later is a duplicate; one the copy missed - its
 * link lost a tail - is not). */
struct repl_lineage {
	uint64_t node;
	uint64_t *rseqs;	/* the copy's, ascending */
	uint32_t nrseqs;
	uint64_t since_ms;
};
#define REPL_LINEAGE_MAX 4
#define REPL_LINEAGE_KEEP_MS 60000	/* how long a hand-back is expected after a take-over */

struct repl_owner {
	uint64_t next_rseq;
	struct repl_lineage lineage[REPL_LINEAGE_MAX];
	uint32_t nlineage;
	bool unplaced;		/* our placement does not make us its owner (yet): receipts
				 * wait for one that does, or fail when it moves on */
	uint32_t nbackups;
	uint64_t backup[REPL_MAX_BACKUPS];	/* node hashes the stream goes to */
	uint64_t acked[REPL_MAX_BACKUPS];	/* the highest rseq each acknowledged */
	struct repl_wait *wait;			/* ring */
	uint32_t wait_head, nwait, wait_cap;
};

/* Backup side, per queue: what its owner streamed. */
struct replica {
	uint64_t owner;		/* node hash of the streaming owner */
	uint64_t max_rseq;	/* highest seen (promotion numbers on from it) */
	struct mdeque msgs;	/* rseq ascending; epoch field: 1 when delivered */
	struct strmap deliveries;	/* rseq -> struct replica_delivery: who holds the
					 * delivered ones */
	uint64_t await_promote_ms;	/* 0, or (a planned move made this node the owner)
					 * until when its owner's PROMOTE may come */
	bool promote_asked;		/* PROMOTE came before placement made us the owner */
	uint32_t len;
	char name[];
};

/* A delivered, unacked message of a replica: its consumer (numbered as this node numbers
 * consumers), the delivery tag and the registration its ACK will name. */
struct replica_delivery {
	uint64_t rseq;		/* the map's key */
	uint64_t consumer;
	uint64_t tag;
	uint16_t reg_epoch;
	uint8_t settled;	/* 0, or 1 + the XACK_* / XNACK_* mode of an ACK that reached
				 * this node before it took the queue over */
};

static void replica_free(struct shard *sh, struct replica *r);
static void lineage_free(struct repl_owner *o);

/* The backups of queue `name` under the shard's placement (node hashes); *ours false when
 * this node does not own it there (an operation applied here on another node's word). */
static uint32_t backups_of(const struct shard *sh, const char *name, size_t len,
			   uint64_t out[REPL_MAX_BACKUPS], bool *ours)
{
	int idx[PLACEMENT_MAX_REPLICAS];
	uint32_t want = sh->cfg->queue_replicas, n;

	*ours = true;
	if (!sh->placement || want <= 1 || destname_key_is_server_queue(name, len))
		return 0;
	if (want > REPL_MAX_BACKUPS + 1)
		want = REPL_MAX_BACKUPS + 1;
	n = placement_queue_replicas(sh->placement, name, len, want, idx);
	if (n == 0 || idx[0] != 0) {
		*ours = false;
		return 0;
	}
	for (uint32_t i = 1; i < n; i++)
		out[i - 1] = sh->placement->node_hash[idx[i]];
	return n - 1;
}

/* ---- sending ---- */

/* The low 24 bits of the view epoch this shard places by, for XREPL_EPOCH. */
static uint32_t my_epoch(const struct shard *sh)
{
	return sh->placement ? (uint32_t)(sh->placement->epoch & 0xffffffu) : 0;
}

static void send_op_with(struct shard *sh, uint64_t to, struct xrepl_op *op, uint32_t code,
			 uint64_t rseq)
{
	struct xmsg x = { .kind = XMSG_REPL_OP, .a = rseq, .b = to,
			  .u32 = code | my_epoch(sh) << XREPL_EPOCH_SHIFT, .ptr = op };

	shard_send(sh, shard_route_endpoint(sh), &x);
}

static void send_op(struct shard *sh, uint64_t to, const char *name, size_t len, uint32_t code,
		    uint64_t rseq)
{
	send_op_with(sh, to, xrepl_op_create(name, len), code, rseq);
}

/* DELIVERED, naming the consumer (so a backup that takes over applies its ACK). */
static void send_delivered(struct shard *sh, uint64_t to, const struct dest_queue *q,
			   const struct mentry *e, uint64_t consumer, uint16_t reg_epoch)
{
	struct xrepl_op *op = xrepl_op_create(q->name, q->len);

	op->consumer = consumer;
	op->tag = e->tag;
	op->reg_epoch = reg_epoch;
	send_op_with(sh, to, op, XREPL_DELIVERED, e->rseq);
}

static void send_message(struct shard *sh, uint64_t to, const struct mentry *e, uint32_t flags)
{
	struct xmsg x = { .kind = XMSG_REPL_SEND, .a = e->rseq, .b = to,
			  .u32 = flags | my_epoch(sh) << XREPL_EPOCH_SHIFT,
			  .ptr = e->m };

	hmsg_ref(e->m, 1);
	shard_send(sh, shard_route_endpoint(sh), &x);
}

static void op_to_backups(struct shard *sh, struct dest_queue *q, uint32_t op, uint64_t rseq)
{
	for (uint32_t i = 0; q->repl && i < q->repl->nbackups; i++)
		send_op(sh, q->repl->backup[i], q->name, q->len, op, rseq);
}

/* ---- owner side ---- */

static struct repl_owner *owner_state(struct shard *sh, struct dest_queue *q)
{
	bool ours;

	if (!q->repl) {
		q->repl = hd_calloc(1, sizeof(*q->repl));
		/* numbers never reused by an earlier life of this queue here: acknowledgements
		 * of those may still be on their way */
		q->repl->next_rseq = (uint64_t)sh->now_ms << 20;
		q->repl->nbackups = backups_of(sh, q->name, q->len, q->repl->backup,
					       &ours);
		q->repl->unplaced = !ours;
		/* a stream starts clean: whatever a backup kept of an earlier life goes */
		for (uint32_t i = 0; i < q->repl->nbackups; i++)
			send_op(sh, q->repl->backup[i], q->name, q->len, XREPL_RESET, 0);
	}
	return q->repl;
}

void repl_enqueued(struct shard *sh, struct dest_queue *q, struct mentry *e)
{
	struct repl_owner *o = owner_state(sh, q);

	e->rseq = ++o->next_rseq;
	for (uint32_t i = 0; i < o->nbackups; i++)
		send_message(sh, o->backup[i], e, e->redelivered ? XREPL_F_REDELIVERED : 0);
}

static uint64_t min_acked(const struct repl_owner *o)
{
	uint64_t m = UINT64_MAX;

	for (uint32_t i = 0; i < o->nbackups; i++)
		if (o->acked[i] < m)
			m = o->acked[i];
	return m;
}

static void answer(struct shard *sh, const struct repl_wait *w, int err)
{
	struct xmsg r = { .kind = XMSG_DONE, .a = w->conn, .u32 = w->seq,
			  .b = (uint64_t)err | w->origin << 8 };

	shard_send(sh, w->from, &r);
}

/* Answers the receipts every backup now covers. */
static void release(struct shard *sh, struct repl_owner *o)
{
	uint64_t upto = min_acked(o);

	while (o->nwait && o->wait[o->wait_head].rseq <= upto) {
		answer(sh, &o->wait[o->wait_head], XERR_OK);
		o->wait_head = (o->wait_head + 1) % o->wait_cap;
		o->nwait--;
		sh->dests.repl_waits--;
	}
}

bool repl_hold_receipt(struct shard *sh, struct dest_queue *q, const struct xmsg *xm, bool of_held)
{
	struct repl_owner *o = q->repl;

	if (!o || (!o->nbackups && !o->unplaced))
		return false;
	if (o->nwait == o->wait_cap) {
		uint32_t cap = o->wait_cap ? o->wait_cap * 2 : 16;
		struct repl_wait *w = hd_alloc(cap * sizeof(*w));

		for (uint32_t i = 0; i < o->nwait; i++)
			w[i] = o->wait[(o->wait_head + i) % o->wait_cap];
		hd_free(o->wait);
		o->wait = w;
		o->wait_cap = cap;
		o->wait_head = 0;
	}
	o->wait[(o->wait_head + o->nwait++) % o->wait_cap] = (struct repl_wait){
		.rseq = o->next_rseq, .conn = xm->a, .origin = xm->b, .since_ms = sh->now_ms,
		.seq = xm->u32, .from = xm->from, .of_held = of_held };
	sh->dests.repl_waits++;
	return true;
}

/* Copies whose planned move's PROMOTE never came go (the hand-over brought it all). */
static void awaiting_tick(struct shard *sh)
{
	struct strmap *map = &sh->dests.replicas;

	for (uint32_t i = 0; i < map->cap && sh->dests.repl_awaiting; i++) {
		struct replica *r = map->slots[i].hash ? map->slots[i].val : NULL;

		if (r && r->await_promote_ms && sh->now_ms >= r->await_promote_ms)
			replica_free(sh, r);
	}
}

/* The SEND of the message numbered rseq was refused (its RECEIPT waited too long): it
 * leaves q, unless a consumer has it already. Its sender resends it; kept, it would come
 * twice - from here, or from the node this one hands q over to. */
static void drop_refused(struct shard *sh, struct dest_queue *q, uint64_t rseq)
{
	for (uint32_t i = q->ready.n; i-- > 0;) {	/* the newest are at the back */
		struct mentry *e = mdeque_at(&q->ready, i);

		if (e->rseq != rseq)
			continue;
		op_to_backups(sh, q, XREPL_REMOVE, rseq);
		hmsg_unref(e->m);
		mdeque_remove_at(&q->ready, i);
		sh->dests.queued_msgs--;
		if (i < q->handed_in)
			q->handed_in--;
		return;
	}
}

void repl_tick(struct shard *sh)
{
	struct strmap *map = &sh->dests.queues;

	if (sh->dests.repl_awaiting && sh->now_ms - sh->dests.repl_scan_ms >= REPL_SCAN_MS) {
		awaiting_tick(sh);
		if (!sh->dests.repl_waits)
			sh->dests.repl_scan_ms = sh->now_ms;
	}

	/* a scan of every queue, so at most every REPL_SCAN_MS: refusals come that much late */
	if (!sh->dests.repl_waits || sh->now_ms - sh->dests.repl_scan_ms < REPL_SCAN_MS)
		return;
	sh->dests.repl_scan_ms = sh->now_ms;
	for (uint32_t i = 0; i < map->cap; i++) {
		struct strmap_slot *sl = &map->slots[i];
		struct dest_queue *q = sl->hash ? sl->val : NULL;
		struct repl_owner *o = q ? q->repl : NULL;

		/* oldest first: a receipt its backups left waiting this long is refused (a
		 * minority side never gets their acknowledgement, nor a view without them) */
		while (o && o->nwait &&
		       sh->now_ms - o->wait[o->wait_head].since_ms >= REPL_RECEIPT_WAIT_MS) {
			answer(sh, &o->wait[o->wait_head], XERR_UNREPLICATED);
			if (!o->wait[o->wait_head].of_held)
				drop_refused(sh, q, o->wait[o->wait_head].rseq);
			o->wait_head = (o->wait_head + 1) % o->wait_cap;
			o->nwait--;
			sh->dests.repl_waits--;
		}
	}
}

void repl_delivered(struct shard *sh, struct dest_queue *q, const struct mentry *e,
		    uint64_t consumer, uint16_t reg_epoch, bool gone)
{
	if (gone) {
		op_to_backups(sh, q, XREPL_REMOVE, e->rseq);
		return;
	}
	for (uint32_t i = 0; q->repl && i < q->repl->nbackups; i++)
		send_delivered(sh, q->repl->backup[i], q, e, consumer, reg_epoch);
}

void repl_removed(struct shard *sh, struct dest_queue *q, uint64_t rseq)
{
	op_to_backups(sh, q, XREPL_REMOVE, rseq);
}

void repl_hand_over(struct shard *sh, struct dest_queue *q)
{
	int owner = sh->placement ? placement_queue_node(sh->placement, q->name, q->len) : -1;

	if (!q->repl || owner <= 0)
		return;
	for (uint32_t i = 0; i < q->repl->nbackups; i++)
		if (q->repl->backup[i] == sh->placement->node_hash[owner])
			send_op(sh, q->repl->backup[i], q->name, q->len, XREPL_PROMOTE,
				q->repl->next_rseq);
}

bool repl_new_owner_has_copy(const struct shard *sh, const struct dest_queue *q)
{
	int owner;

	if (!sh->placement || !sh->placement->leaving || !q->repl)
		return false;
	owner = placement_queue_node(sh->placement, q->name, q->len);
	if (owner <= 0)
		return false;
	/* a backup that acknowledged everything sent to it: one that was placed but never
	 * got its snapshot (cut by a partition) holds nothing to take over (repl-sim, finding
	 * 1), so the messages go over instead - duplicates rather than losses */
	for (uint32_t i = 0; i < q->repl->nbackups; i++)
		if (q->repl->backup[i] == sh->placement->node_hash[owner])
			return q->repl->acked[i] >= q->repl->next_rseq;
	return false;
}

uint32_t repl_describe(const struct dest_queue *q, uint64_t out[4], bool *in_sync)
{
	const struct repl_owner *o = q->repl;

	*in_sync = true;
	if (!o)
		return 0;
	for (uint32_t i = 0; i < o->nbackups && i < 4; i++)
		out[i] = o->backup[i];
	*in_sync = !o->unplaced && !o->nwait && min_acked(o) >= o->next_rseq;
	return o->nbackups < 4 ? o->nbackups : 4;
}

bool repl_waiting(const struct shard *sh, const struct dest_queue *q)
{
	if (!q->repl)
		return false;
	for (uint32_t i = 0; i < q->repl->nlineage; i++)
		if (sh->now_ms - q->repl->lineage[i].since_ms < REPL_LINEAGE_KEEP_MS)
			return true;	/* a hand-back may still come: keep what filters it */
	return q->repl->nwait;
}

/* Whether the message numbered rseq still waits for its backups' acknowledgement (the
 * wait ring is in rseq order). */
static bool unreceipted(const struct repl_owner *o, uint64_t rseq)
{
	uint32_t lo = 0, hi = o->nwait;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint64_t v = o->wait[(o->wait_head + mid) % o->wait_cap].rseq;

		if (v == rseq)
			return true;
		if (v < rseq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void repl_drop_unreceipted(struct shard *sh, struct dest_queue *q)
{
	struct repl_owner *o = q->repl;
	uint32_t kept = 0, n;

	if (!o || !o->nwait)
		return;
	n = q->ready.n;
	for (uint32_t i = 0; i < n; i++) {
		struct mentry e = *mdeque_at(&q->ready, i);

		if (unreceipted(o, e.rseq)) {
			op_to_backups(sh, q, XREPL_REMOVE, e.rseq);	/* before any PROMOTE */
			hmsg_unref(e.m);
			sh->dests.queued_msgs--;
			if (i < q->handed_in)
				q->handed_in--;
		} else {
			*mdeque_at(&q->ready, kept++) = e;
		}
	}
	q->ready.n = kept;
}

void repl_queue_gone(struct shard *sh, struct dest_queue *q, int err)
{
	struct repl_owner *o = q->repl;

	if (!o)
		return;
	for (; o->nwait; o->nwait--, o->wait_head = (o->wait_head + 1) % o->wait_cap) {
		answer(sh, &o->wait[o->wait_head], err);
		sh->dests.repl_waits--;
	}
	hd_free(o->wait);
	lineage_free(o);
	hd_free(o);
	q->repl = NULL;
}

struct snap_entry {
	const struct mentry *e;
	const struct qconsumer *holder;	/* delivered to, unacked; NULL: ready */
	uint16_t reg_epoch;
};

static int by_rseq(const void *a, const void *b)
{
	uint64_t x = ((const struct snap_entry *)a)->e->rseq, y = ((const struct snap_entry *)b)->e->rseq;

	return x < y ? -1 : x > y;
}

/* Streams everything q holds to backup `to`, in rseq order, between RESET and MARK. */
static void snapshot_to(struct shard *sh, struct dest_queue *q, uint64_t to)
{
	uint32_t n = q->ready.n, k = 0;
	struct snap_entry *all;

	for (uint32_t c = 0; c < q->nconsumers; c++)
		n += q->consumers[c]->unacked.n;
	for (uint32_t c = 0; c < q->nconsumers; c++)
		n += q->consumers[c]->adopted.n;
	all = hd_alloc((n + 1) * sizeof(*all));
	for (uint32_t i = 0; i < q->ready.n; i++)
		all[k++] = (struct snap_entry){ mdeque_at(&q->ready, i), NULL, 0 };
	for (uint32_t c = 0; c < q->nconsumers; c++) {
		struct qconsumer *qc = q->consumers[c];

		for (uint32_t i = 0; i < qc->unacked.n; i++)
			all[k++] = (struct snap_entry){ mdeque_at(&qc->unacked, i), qc, qc->epoch };
		for (uint32_t i = 0; i < qc->adopted.n; i++)
			all[k++] = (struct snap_entry){ mdeque_at(&qc->adopted, i), qc,
							(uint16_t)mdeque_at(&qc->adopted, i)->epoch };
	}
	qsort(all, k, sizeof(*all), by_rseq);
	send_op(sh, to, q->name, q->len, XREPL_RESET, 0);
	for (uint32_t i = 0; i < k; i++) {
		send_message(sh, to, all[i].e,
			     (all[i].e->redelivered ? XREPL_F_REDELIVERED : 0) |
			     (all[i].holder ? XREPL_F_DELIVERED : 0));
		if (all[i].holder)
			send_delivered(sh, to, q, all[i].e, all[i].holder->key, all[i].reg_epoch);
	}
	send_op(sh, to, q->name, q->len, XREPL_MARK, q->repl->next_rseq);
	hd_free(all);
}

void repl_queue_placed(struct shard *sh, struct dest_queue *q)
{
	struct repl_owner *o = owner_state(sh, q);
	uint64_t now[REPL_MAX_BACKUPS], acked[REPL_MAX_BACKUPS];
	bool ours;
	uint32_t n = backups_of(sh, q->name, q->len, now, &ours);

	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = 0;

		while (j < o->nbackups && o->backup[j] != now[i])
			j++;
		if (j < o->nbackups) {
			acked[i] = o->acked[j];		/* kept: its stream goes on */
		} else {
			acked[i] = 0;
			snapshot_to(sh, q, now[i]);
		}
	}
	memcpy(o->backup, now, n * sizeof(now[0]));
	memcpy(o->acked, acked, n * sizeof(acked[0]));
	o->nbackups = n;
	o->unplaced = !ours;
	if (!o->unplaced)
		release(sh, o);
}

/* ---- backup side ---- */

static void deliveries_clear(struct replica *r)
{
	for (uint32_t i = 0; i < r->deliveries.cap; i++)
		if (r->deliveries.slots[i].hash)
			hd_free(r->deliveries.slots[i].val);
	strmap_fini(&r->deliveries);
}

static void delivery_forget(struct replica *r, uint64_t rseq)
{
	if (r->deliveries.count)
		hd_free(strmap_del(&r->deliveries, (const char *)&rseq, sizeof(rseq)));
}

static void delivery_note(struct replica *r, const struct xrepl_op *op, uint64_t rseq)
{
	struct replica_delivery *d = strmap_get(&r->deliveries, (const char *)&rseq, sizeof(rseq));

	if (!d) {
		d = hd_alloc(sizeof(*d));
		d->rseq = rseq;
		strmap_put(&r->deliveries, (const char *)&d->rseq, sizeof(d->rseq), d);
	}
	d->consumer = op->consumer;
	d->tag = op->tag;
	d->reg_epoch = op->reg_epoch;
	d->settled = 0;	/* delivered again (after a NACK): a new delivery */
}

static struct replica *replica_get(struct shard *sh, const char *name, size_t len, uint64_t owner,
				   bool create)
{
	struct replica *r = strmap_get(&sh->dests.replicas, name, len);

	if (r && r->owner != owner && create) {
		/* another node streams it now: what the old one sent is superseded */
		sh->dests.replica_msgs -= r->msgs.n;
		mdeque_free(&r->msgs);
		deliveries_clear(r);
		r->owner = owner;
		r->max_rseq = 0;
	}
	if (r || !create)
		return r && r->owner == owner ? r : NULL;
	r = hd_calloc(1, sizeof(*r) + len + 1);
	r->owner = owner;
	r->len = (uint32_t)len;
	memcpy(r->name, name, len);
	strmap_put(&sh->dests.replicas, r->name, len, r);
	return r;
}

static void replica_free(struct shard *sh, struct replica *r)
{
	if (r->await_promote_ms)
		sh->dests.repl_awaiting--;
	sh->dests.replica_msgs -= r->msgs.n;
	strmap_del(&sh->dests.replicas, r->name, r->len);
	mdeque_free(&r->msgs);
	deliveries_clear(r);
	hd_free(r);
}

static void ack_to_owner(struct shard *sh, const char *name, size_t len, uint64_t owner,
			 uint64_t rseq)
{
	send_op(sh, owner, name, len, XREPL_ACK, rseq);
}

/* Whether a stream from node `sender`, which placed by the view epoch in u32, is one to
 * keep: yes when its view is at least as new as ours (we may lag), or when ours, newer,
 * still calls it the owner; no from an owner our newer view has deposed (it was hung, or
 * cut off): what it sends is acknowledged by nobody, so it can receipt nothing. */
static bool from_owner(const struct shard *sh, const char *name, size_t len, uint64_t sender,
		       uint32_t u32)
{
	int owner;

	if (XREPL_EPOCH(u32) >= my_epoch(sh))
		return true;
	owner = placement_queue_node(sh->placement, name, len);
	return owner >= 0 && !(owner == 0 && sh->placement->leaving) &&
	       sh->placement->node_hash[owner] == sender;
}

void replica_on_send(struct shard *sh, const struct xmsg *m)
{
	struct hmsg *msg = m->ptr;
	struct replica *r;

	if (!from_owner(sh, hmsg_dest(msg), msg->dest_len, m->b, m->u32)) {
		hmsg_unref(msg);
		return;
	}
	r = replica_get(sh, hmsg_dest(msg), msg->dest_len, m->b, true);
	struct mentry e = { .m = msg, .rseq = m->a,
			    .redelivered = (m->u32 & XREPL_F_REDELIVERED) ? 1 : 0,
			    .epoch = (m->u32 & XREPL_F_DELIVERED) ? 1 : 0 };
	uint32_t at = r->msgs.n;

	/* in rseq order (a stream is, but a queue made anew numbers on from the clock) */
	while (at > 0 && mdeque_at(&r->msgs, at - 1)->rseq > e.rseq)
		at--;
	mdeque_insert_at(&r->msgs, at, e);
	sh->dests.replica_msgs++;
	if (e.rseq > r->max_rseq)
		r->max_rseq = e.rseq;
	ack_to_owner(sh, r->name, r->len, r->owner, e.rseq);
}

static int64_t find_rseq(struct mdeque *d, uint64_t rseq)
{
	uint32_t lo = 0, hi = d->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint64_t v = mdeque_at(d, mid)->rseq;

		if (v == rseq)
			return mid;
		if (v < rseq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* An acknowledgement from backup `from` for queue q that this shard owns. */
static void owner_on_ack(struct shard *sh, const struct xrepl_op *n, uint64_t from, uint64_t rseq)
{
	struct dest_queue *q = dest_queue_get(sh, n->name, n->len, false);
	struct repl_owner *o = q ? q->repl : NULL;

	if (!o)
		return;
	for (uint32_t i = 0; i < o->nbackups; i++)
		if (o->backup[i] == from && rseq > o->acked[i])
			o->acked[i] = rseq;
	if (!o->unplaced)
		release(sh, o);
	if (!o->nwait)
		dest_queue_maybe_drop(sh, q);
}

/* The link to `node` came up again: what it holds of our queues may lack the tail the old
 * link lost, so each queue it backs streams it a snapshot. */
static void resync(struct shard *sh, uint64_t node)
{
	struct strmap *map = &sh->dests.queues;

	for (uint32_t i = 0; i < map->cap; i++) {
		struct strmap_slot *sl = &map->slots[i];
		struct dest_queue *q = sl->hash ? sl->val : NULL;

		for (uint32_t b = 0; q && q->repl && b < q->repl->nbackups; b++)
			if (q->repl->backup[b] == node)
				snapshot_to(sh, q, node);
	}
}

static void promote(struct shard *sh, struct replica *r);

/* Whether placement makes this node the owner of r's queue. */
static bool owner_here(const struct shard *sh, const struct replica *r)
{
	return sh->placement && !sh->placement->leaving &&
	       placement_queue_node(sh->placement, r->name, r->len) == 0;
}

/* The old owner of a queue this node holds a copy of stopped delivering it (it moved
 * here): the copy becomes the queue, now or once our placement agrees. */
static void on_promote(struct shard *sh, const struct xrepl_op *n, uint64_t from)
{
	struct replica *r = replica_get(sh, n->name, n->len, from, false);

	if (!r)
		return;		/* no copy: the hand-over that follows brings everything */
	if (owner_here(sh, r))
		promote(sh, r);
	else
		r->promote_asked = true;
}

bool replica_take_handover(struct shard *sh, const struct xmsg *m)
{
	struct hmsg *msg = m->ptr;
	struct replica *r = strmap_get(&sh->dests.replicas, hmsg_dest(msg), msg->dest_len);
	int64_t i;
	uint32_t at;

	if (!r || !r->promote_asked || r->owner != m->b)
		return false;
	if (!m->a || (i = find_rseq(&r->msgs, m->a)) >= 0) {
		hmsg_unref(msg);	/* the copy has it (or it has no number to tell) */
		return true;
	}
	/* one the copy missed (its link lost a tail): it joins the copy, in order */
	at = r->msgs.n;
	while (at > 0 && mdeque_at(&r->msgs, at - 1)->rseq > m->a)
		at--;
	mdeque_insert_at(&r->msgs, at, (struct mentry){ .m = msg, .rseq = m->a,
							.redelivered = m->u32 ? 1 : 0 });
	sh->dests.replica_msgs++;
	if (m->a > r->max_rseq)
		r->max_rseq = m->a;
	return true;
}

void replica_on_op(struct shard *sh, const struct xmsg *m)
{
	struct xrepl_op *n = m->ptr;
	struct replica *r;
	int64_t i;

	if (XREPL_LOW(m->u32) == XREPL_RESYNC) {
		resync(sh, m->b);
		return;
	}
	if (XREPL_LOW(m->u32) == XREPL_PROMOTE) {
		on_promote(sh, n, m->b);
		hd_free(n);
		return;
	}
	if (XREPL_LOW(m->u32) != XREPL_ACK && !from_owner(sh, n->name, n->len, m->b, m->u32)) {
		hd_free(n);
		return;
	}
	switch (XREPL_LOW(m->u32)) {
	case XREPL_ACK:
		owner_on_ack(sh, n, m->b, m->a);
		break;
	case XREPL_RESET:
		r = replica_get(sh, n->name, n->len, m->b, true);
		sh->dests.replica_msgs -= r->msgs.n;
		mdeque_free(&r->msgs);
		deliveries_clear(r);
		break;
	case XREPL_MARK:
		r = replica_get(sh, n->name, n->len, m->b, true);
		if (m->a > r->max_rseq)
			r->max_rseq = m->a;
		ack_to_owner(sh, r->name, r->len, r->owner, m->a);
		if (!r->msgs.n)
			replica_free(sh, r);	/* an empty queue holds nothing here either */
		break;
	case XREPL_DELIVERED:
	case XREPL_REMOVE:
		r = replica_get(sh, n->name, n->len, m->b, false);
		if (!r || (i = find_rseq(&r->msgs, m->a)) < 0)
			break;
		if (XREPL_LOW(m->u32) == XREPL_DELIVERED) {
			mdeque_at(&r->msgs, (uint32_t)i)->epoch = 1;
			delivery_note(r, n, m->a);
			break;
		}
		delivery_forget(r, m->a);
		hmsg_unref(mdeque_at(&r->msgs, (uint32_t)i)->m);
		mdeque_remove_at(&r->msgs, (uint32_t)i);
		sh->dests.replica_msgs--;
		if (!r->msgs.n)
			replica_free(sh, r);
		break;
	default:
		break;
	}
	hd_free(n);
}

static void lineage_free(struct repl_owner *o)
{
	for (uint32_t i = 0; i < o->nlineage; i++)
		hd_free(o->lineage[i].rseqs);
	o->nlineage = 0;
}

/* Remembers the rseqs of r's messages: the copy q was taken over from. */
static void remember_lineage(struct shard *sh, struct repl_owner *o, const struct replica *r)
{
	struct repl_lineage *l;

	if (o->nlineage == REPL_LINEAGE_MAX) {	/* the oldest goes */
		hd_free(o->lineage[0].rseqs);
		memmove(&o->lineage[0], &o->lineage[1], (REPL_LINEAGE_MAX - 1) * sizeof(o->lineage[0]));
		o->nlineage--;
	}
	l = &o->lineage[o->nlineage++];
	*l = (struct repl_lineage){ .node = r->owner, .since_ms = sh->now_ms, .nrseqs = r->msgs.n,
				    .rseqs = hd_alloc((r->msgs.n + 1) * sizeof(uint64_t)) };
	for (uint32_t i = 0; i < r->msgs.n; i++)
		l->rseqs[i] = mdeque_at((struct mdeque *)&r->msgs, i)->rseq;
}

bool repl_had_it(const struct dest_queue *q, uint64_t node, uint64_t rseq)
{
	for (uint32_t i = 0; q->repl && rseq && i < q->repl->nlineage; i++) {
		const struct repl_lineage *l = &q->repl->lineage[i];
		uint32_t lo = 0, hi = l->nrseqs;

		if (l->node != node)
			continue;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (l->rseqs[mid] == rseq)
				return true;
			if (l->rseqs[mid] < rseq)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return false;
}

bool replica_early_ack(struct shard *sh, const char *name, size_t len, uint64_t consumer,
		       uint32_t mode, uint64_t tag, uint32_t reg_epoch)
{
	struct replica *r = strmap_get(&sh->dests.replicas, name, len);
	bool upto = mode == XACK_UPTO || mode == XNACK_UPTO;

	if (!r || mode == XACK_CREDIT)
		return r;
	for (uint32_t i = 0; i < r->deliveries.cap; i++) {
		struct replica_delivery *d = r->deliveries.slots[i].hash ? r->deliveries.slots[i].val : NULL;

		if (d && d->consumer == consumer &&
		    (d->reg_epoch == reg_epoch ? (upto ? d->tag <= tag : d->tag == tag) :
		     upto && (int16_t)(uint16_t)(d->reg_epoch - reg_epoch) < 0))
			d->settled = (uint8_t)(1 + mode);
	}
	return true;
}

/* Where a delivered message of a replica being promoted goes: dropped (its consumer acked
 * it here already), back to the queue (it was NACKed, its consumer's node is gone, or the
 * stream never said who got it), or kept unacked for its consumer, whose ACK will name
 * the old owner's delivery (dest_queue_adopt). */
static void promote_delivered(struct shard *sh, struct dest_queue *q, struct replica *r,
			      struct mentry e, uint32_t *front)
{
	struct replica_delivery *d = strmap_get(&r->deliveries, (const char *)&e.rseq,
						sizeof(e.rseq));

	e.epoch = 0;
	if (d && (d->settled == 1 + XACK_ONE || d->settled == 1 + XACK_UPTO ||
		  d->settled == 1 + XNACK_DROP_ONE)) {
		hmsg_unref(e.m);	/* no backup of the new stream has it: nothing to say */
		return;
	}
	sh->dests.queued_msgs++;
	if (d && !d->settled && dest_consumer_node_present(sh, d->consumer)) {
		e.tag = d->tag;
		dest_queue_adopt(sh, q, d->consumer, d->reg_epoch, e);
		return;
	}
	e.redelivered = 1;
	mdeque_insert_at(&q->ready, (*front)++, e);
}

/* The replica becomes the queue: delivered-unacked messages kept for their consumers
 * (or first in line, marked redelivered, when theirs is gone), then the rest, in rseq
 * order. */
/* Whether r holds a message with m's message-id. */
static bool replica_has(struct replica *r, const struct hmsg *m)
{
	for (uint32_t i = 0; i < r->msgs.n; i++)
		if (hmsg_same_id(mdeque_at(&r->msgs, i)->m, m))
			return true;
	return false;
}

static void promote(struct shard *sh, struct replica *r)
{
	struct dest_queue *q = dest_queue_get(sh, r->name, r->len, true);
	struct mdeque direct = { 0 };
	uint32_t front = 0;

	hd_log_info("replication: queue %.*s taken over with %u message(s) from a backup copy",
		    (int)r->len, r->name, r->msgs.n);
	owner_state(sh, q);
	remember_lineage(sh, q->repl, r);
	/* older than anything sent here directly while the copy waited to be taken over:
	 * those step aside and come back after it */
	while (q->ready.n > q->handed_in)
		mdeque_push_front(&direct, *mdeque_at(&q->ready, --q->ready.n));
	for (uint32_t i = 0; i < r->msgs.n; i++) {
		struct mentry e = *mdeque_at(&r->msgs, i);

		if (e.epoch) {
			promote_delivered(sh, q, r, e, &front);
		} else {
			e.epoch = 0;
			mdeque_push_back(&q->ready, e);
			sh->dests.queued_msgs++;
		}
	}
	q->handed_in = q->ready.n;
	while (direct.n) {
		struct mentry e = mdeque_pop_front(&direct);

		if (e.redelivered && replica_has(r, e.m)) {
			/* a SEND the route resent when its link to the old owner broke, which
			 * had taken it in and streamed it here: the copy's is the one */
			hmsg_unref(e.m);
			sh->dests.queued_msgs--;
			continue;
		}
		mdeque_push_back(&q->ready, e);
	}
	mdeque_free(&direct);
	sh->dests.replica_msgs -= r->msgs.n;
	r->msgs.n = 0;
	if (q->repl->next_rseq < r->max_rseq)
		q->repl->next_rseq = r->max_rseq;
	q->repl->nbackups = 0;	/* repl_queue_placed streams it to its backups */
	replica_free(sh, r);
	if (sh->placement && placement_queue_node(sh->placement, q->name, q->len) != 0)
		return;		/* not ours (replica_on_placement): it moves on, undelivered */
	repl_queue_placed(sh, q);
	dest_queue_dispatch(sh, q);
}

static bool in_placement(const struct placement *p, uint64_t node)
{
	for (uint32_t i = 0; i < p->n; i++)
		if (p->node_hash[i] == node && !(i == 0 && p->leaving))
			return true;
	return false;
}

void replica_on_placement(struct shard *sh)
{
	struct strmap *map = &sh->dests.replicas;
	struct replica **all = hd_alloc((map->count + 1) * sizeof(*all));
	uint32_t n = 0;

	for (uint32_t i = 0; i < map->cap; i++) {
		struct strmap_slot *sl = &map->slots[i];

		if (sl->hash && sl->val)
			all[n++] = sl->val;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct replica *r = all[i];
		int idx[PLACEMENT_MAX_REPLICAS];
		uint32_t want = sh->cfg->queue_replicas, k;
		bool holder = false;

		if (!sh->placement) {
			replica_free(sh, r);
			continue;
		}
		k = placement_queue_replicas(sh->placement, r->name, r->len,
					     want > PLACEMENT_MAX_REPLICAS ? PLACEMENT_MAX_REPLICAS : want,
					     idx);
		for (uint32_t j = 0; j < k; j++)
			holder |= idx[j] == 0;
		if (r->promote_asked) {
			/* its old owner gave it to us (and what it handed over joined it): a
			 * queue now, which dest.c moves on at once if we are not its owner */
			promote(sh, r);
		} else if (k && idx[0] == 0 && !sh->placement->leaving) {
			if (!in_placement(sh->placement, r->owner)) {
				promote(sh, r);
			} else if (!r->await_promote_ms) {
				/* a planned move: the owner says PROMOTE once it stopped (or, if it
				 * had no copy here in mind, hands everything over) */
				r->await_promote_ms = sh->now_ms + REPL_PROMOTE_WAIT_MS;
				sh->dests.repl_awaiting++;
			}
		} else if (!holder || sh->placement->leaving) {
			replica_free(sh, r);
		} else if (r->await_promote_ms) {
			/* a backup again (placement moved on before the PROMOTE came): a copy */
			r->await_promote_ms = 0;
			sh->dests.repl_awaiting--;
		}
	}
	hd_free(all);
}

void repl_queue_free(struct dest_queue *q)
{
	if (q->repl) {
		hd_free(q->repl->wait);
		lineage_free(q->repl);
	}
	hd_free(q->repl);
	q->repl = NULL;
}

void replica_table_fini(struct dest_table *t)
{
	struct strmap *map = &t->replicas;

	for (uint32_t i = 0; i < map->cap; i++) {
		struct strmap_slot *sl = &map->slots[i];
		struct replica *r = sl->hash ? sl->val : NULL;

		if (r) {
			mdeque_free(&r->msgs);
			deliveries_clear(r);
			hd_free(r);
		}
	}
	strmap_fini(map);
}

