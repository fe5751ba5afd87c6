/*
 * core/session.c - STOMP sessions (spec: stomp.github.io/stomp-specification-1.2.html;
 * RabbitMQ's STOMP plugin where the spec leaves room, see shared/RABBITMQ-REFERENCE.md).
 *
 * Frames in: the command table below (handler, whether CONNECT must come first).
 * Operations out: xmsgs to the destination's owner shard (itself included): PUBLISH,
 * TOPIC/PATTERN_INTEREST (a shard's 0->1 and 1->0 changes only), QUEUE_CONSUMER_ADD/DEL,
 * QUEUE_ACK; SYNC when a receipt must wait for the owner to have applied earlier ones.
 * Receipts go out strictly in the order their frames arrived, each once the operations it
 * waits for are done; so a DISCONNECT receipt means every earlier SEND is held.
 * Errors: ERROR frame (message header + text body, receipt-id when asked), then close.
 *
 * Thread: the shard owning the connection. A session is freed in session_on_close.
 */
#include "core/session.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_fmt.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"
#include "core/hmsg.h"
#include "core/mdeque.h"
#include "core/shard.h"
#include "core/topic_match.h"
#include "core/wsconn.h"
#include "net/loop.h"
#include "proto/stomp_encode.h"
#include "proto/utf8.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum sub_kind { SUB_TOPIC = 0, SUB_PATTERN, SUB_QUEUE };
enum session_state { SESSION_AWAIT_CONNECT = 0, SESSION_CONNECTED };
enum close_mode { CLOSE_NONE = 0, CLOSE_AFTER_FLUSH, CLOSE_NOW };

#define TOPIC_PREFIX "/topic/"
#define QUEUE_PREFIX "/queue/"
#define MAX_PENDING_TOPIC_ACKS 65536	/* client-ack topic deliveries not acked: slow consumer */

struct sub {
	struct session *s;
	struct sub *next;	/* in its local_topic or in the shard's pattern list */
	struct sub *prev;
	struct local_topic *lt;
	uint16_t idx;		/* session-unique, part of consumer keys and ack ids */
	uint8_t kind;
	uint8_t ack_mode;
	uint32_t prefetch;
	uint32_t owner;		/* owner shard of dest (queues and topics) */
	uint32_t credit_pending;/* queue deliveries queued on the wire, not yet credited */
	uint64_t next_tag;	/* topic client-mode deliveries */
	struct mdeque pend;	/* unacked deliveries in order (client modes); the message
				 * reference serves 1.0/1.1 ACKs by message-id */
	uint32_t dest_len;
	uint32_t id_len;
	char *dest;
	char *id;		/* client's subscription id */
};

struct local_topic {
	struct sub *head;
	uint32_t n;
	uint32_t len;
	char name[];
};

struct receipt_wait {
	struct receipt_wait *next;
	uint32_t seq;
	uint32_t waiting;	/* owner replies still to come */
	bool disconnect;
	/* an ERROR held back until the receipts owed before it are out (fail_frame) */
	bool fail;
	bool has_id;		/* fail: the failing frame asked for a receipt (id) */
	const char *fail_message;	/* fail: both point into this allocation */
	const char *fail_detail;
	char id[];
};

enum tx_op_kind { TXOP_SEND, TXOP_ACK, TXOP_NACK };

struct tx_op {
	struct tx_op *next;
	uint8_t kind;
	struct hmsg *m;		/* TXOP_SEND */
	char *ack_id;		/* TXOP_ACK/NACK: "id" (1.2) or "message-id" */
	char *ack_sub;		/* 1.1 "subscription", or NULL */
	bool requeue;
};

struct tx {
	struct tx *next;
	struct tx_op *head;
	struct tx_op *tail;
	uint32_t nops;
	char name[];
};

struct session {
	struct net_conn *conn;
	struct wsconn *ws;	/* NULL for plain TCP */
	struct stomp_parser parser;
	uint8_t state;
	uint8_t close_mode;
	bool in_data;
	bool on_hb_list;
	bool paused;		/* reading stopped while xrings are backlogged */
	bool disconnecting;	/* DISCONNECT seen or a frame refused: later input is dropped */
	bool out_full;		/* reading stopped until our output to it drains */
	bool close_after_receipts;	/* half-closed by the client: close once none are owed */
	enum stomp_version version;
	uint16_t next_sub_idx;
	uint32_t nsubs;
	struct sub **subs;
	uint32_t hb_send_ms;	/* we send an EOL after this much silence; 0: never */
	uint32_t hb_recv_ms;	/* the client promised to send this often; 0: no check */
	uint64_t last_rx_ms;
	uint64_t last_tx_ms;
	uint64_t connect_deadline_ms;
	struct session *hb_next;
	struct session *hb_prev;
	struct receipt_wait *rw_head;
	struct receipt_wait *rw_tail;
	uint32_t next_seq;
	struct tx *txs;
	char vhost[64];
	char user[64];
	/* authentication */
	struct auth_identity *id;	/* who, fixed at CONNECT */
	struct pending_connect *pc;	/* CONNECT's leftovers while its login is decided */
	uint64_t expires_ms;		/* a token's expiry (monotonic ms); 0: never */
	uint64_t deny_at_ms;		/* a refused login's ERROR goes out then (rate limit) */
	uint64_t retry_at_ms;		/* AUTH_RETRY: ask again then */
	bool auth_pending;		/* the auth thread has our job */
};

/* What CONNECT asked for beyond credentials, kept while the login is being decided. */
struct pending_connect {
	uint32_t cx;
	uint32_t cy;
	/* kept only for AUTH_RETRY; wiped when freed */
	char login[USERS_NAME_MAX + 1];
	char passcode[8193];		/* a password or a JWT */
	char host[USERS_VHOST_MAX + 1];
	uint32_t login_len;
	uint32_t passcode_len;
	uint32_t host_len;
	bool has_login;
	bool has_passcode;
	bool has_host;
	bool has_receipt;
	char receipt[128];
	const char *message;		/* a refusal waiting for deny_at_ms */
	char detail[200];
};

static uint64_t conn_ref(const struct session *s)
{
	return xmsg_conn_ref(s->conn->slot, s->conn->gen);
}

/* ---- writing ---- */

static void write_bytes(struct shard *sh, struct session *s, const char *buf, size_t len)
{
	if (s->ws)
		wsconn_write_text(&sh->loop, s->conn, buf, len);
	else
		net_conn_write_copy(&sh->loop, s->conn, buf, len);
	s->last_tx_ms = sh->now_ms;
}

static void write_frame(struct shard *sh, struct session *s, enum stomp_cmd cmd,
			const struct stomp_header *h, size_t nh, const char *body, size_t body_len)
{
	ssize_t n = stomp_encode_frame(sh->enc_buf, sh->enc_cap, s->version, cmd, h, nh, body,
				       body_len, body_len > 0);

	HD_ASSERT(n > 0);
	write_bytes(sh, s, sh->enc_buf, (size_t)n);
}

#define HDR(n, v) { { n, sizeof(n) - 1 }, { v, strlen(v) } }

/* Marks s for closing. Inside session_on_data the close happens when it returns; elsewhere
 * the shard closes it after the current batch of xmsgs or timers (session_reap_closing),
 * so no caller ever finds its session freed under its feet mid-loop. */
static void close_later(struct shard *sh, struct session *s, enum close_mode mode)
{
	if (s->close_mode)
		return;
	s->close_mode = (uint8_t)mode;
	if (s->ws && mode == CLOSE_AFTER_FLUSH)
		/* 1001 "going away" on shutdown, else a normal closure after the STOMP frames */
		wsconn_send_close(&sh->loop, s->ws, s->conn, sh->stopping ? 1001 : 1000);
	if (s->in_data)
		return;
	if (sh->nclosing == sh->closing_cap) {
		sh->closing_cap = sh->closing_cap ? sh->closing_cap * 2 : 16;
		sh->closing = hd_realloc(sh->closing, sh->closing_cap * sizeof(*sh->closing));
	}
	sh->closing[sh->nclosing++] = conn_ref(s);
}

void session_reap_closing(struct shard *sh)
{
	for (uint32_t i = 0; i < sh->nclosing; i++) {
		struct net_conn *c = net_loop_conn(&sh->loop, (uint32_t)(sh->closing[i] >> 32),
						   (uint32_t)sh->closing[i]);
		struct session *s = c ? c->user : NULL;

		if (!s)
			continue;
		if (s->close_mode == CLOSE_NOW)
			net_conn_close(&sh->loop, c);
		else
			net_conn_close_after_flush(&sh->loop, c);
	}
	sh->nclosing = 0;
}

/* ERROR frame, then close once it is written. `detail` becomes the body. */
static void session_fail(struct shard *sh, struct session *s, const char *message,
			 const char *detail, const struct stomp_view *receipt)
{
	struct stomp_header h[4] = { HDR("message", message), HDR("content-type", "text/plain") };
	size_t nh = 2;

	if (s->close_mode)
		return;
	if (receipt) {
		h[nh].name = (struct stomp_view){ "receipt-id", 10 };
		h[nh++].value = *receipt;
	}
	hd_log_conn(HD_LOG_INFO, s->conn->id, "ERROR %s", message);
	write_frame(sh, s, STOMP_CMD_ERROR, h, nh, detail ? detail : message,
		    strlen(detail ? detail : message));
	close_later(sh, s, CLOSE_AFTER_FLUSH);
}

static const struct stomp_view *frame_receipt(const struct stomp_frame *f)
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

static void receipts_flush(struct shard *sh, struct session *s);

/*
 * A frame is refused: ERROR, then close. Receipts for earlier frames that still wait for
 * owner replies (a SEND's, a SUBSCRIBE's) go out first, in order, or a client would think
 * those frames failed too and send them again; meanwhile nothing more is read.
 */
static void fail_after_receipts(struct shard *sh, struct session *s, const char *message,
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

static void fail_frame(struct shard *sh, struct session *s, const struct stomp_frame *f,
		       const char *message, const char *detail)
{
	fail_after_receipts(sh, s, message, detail, frame_receipt(f));
}

/* ---- receipts ---- */

static void receipts_flush(struct shard *sh, struct session *s)
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
			write_frame(sh, s, STOMP_CMD_RECEIPT, h, 1, NULL, 0);
			if (w->disconnect)
				close_later(sh, s, CLOSE_AFTER_FLUSH);
		}
		hd_free(w);
	}
	if (s->close_after_receipts && !s->rw_head)
		close_later(sh, s, CLOSE_AFTER_FLUSH);
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
static uint32_t receipt_begin(struct session *s, const struct stomp_frame *f, uint32_t waiting,
			      bool disconnect)
{
	const struct stomp_view *r = frame_receipt(f);
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

static void receipt_add_wait(struct session *s, uint32_t seq)
{
	for (struct receipt_wait *w = s->rw_head; w; w = w->next)
		if (w->seq == seq)
			w->waiting++;
}

/* Asks shard `to` to answer once it has applied everything we sent it so far. */
static void sync_with(struct shard *sh, struct session *s, uint32_t to, uint32_t seq)
{
	struct xmsg m = { .kind = XMSG_SYNC, .a = conn_ref(s), .u32 = seq };

	if (!seq)
		return;
	receipt_add_wait(s, seq);
	shard_send(sh, to, &m);
}

static struct session *session_by_ref(struct shard *sh, uint64_t ref)
{
	struct net_conn *c = net_loop_conn(&sh->loop, (uint32_t)(ref >> 32), (uint32_t)ref);

	return c ? c->user : NULL;
}

void session_on_done(struct shard *sh, const struct xmsg *m)
{
	struct session *s = session_by_ref(sh, m->a);

	if (!s)
		return;
	if (m->b == XERR_QUEUE_FULL) {
		struct stomp_view rid = { 0 };

		for (struct receipt_wait *w = s->rw_head; w && m->u32; w = w->next)
			if (w->seq == m->u32)
				rid = (struct stomp_view){ w->id, strlen(w->id) };
		sh->stats.refused_sends++;
		session_fail(sh, s, "queue is full",
			     "The destination queue reached max-queue-length; the message was not accepted",
			     rid.ptr ? &rid : NULL);
		return;
	}
	for (struct receipt_wait *w = s->rw_head; w; w = w->next) {
		if (w->seq == m->u32) {
			if (w->waiting)
				w->waiting--;
			break;
		}
	}
	receipts_flush(sh, s);
}

/* ---- names ---- */

static bool has_prefix(struct stomp_view v, const char *prefix, size_t plen)
{
	return v.len > plen && !memcmp(v.ptr, prefix, plen);
}

static bool dest_is_queue(struct stomp_view v)
{
	return has_prefix(v, QUEUE_PREFIX, sizeof(QUEUE_PREFIX) - 1);
}

static bool dest_is_topic(struct stomp_view v)
{
	return has_prefix(v, TOPIC_PREFIX, sizeof(TOPIC_PREFIX) - 1);
}

/* Validates a destination header; on failure sends ERROR and returns false. */
static bool check_dest(struct shard *sh, struct session *s, const struct stomp_frame *f,
		       const struct stomp_view *d)
{
	char detail[512];

	if (!d) {
		fail_frame(sh, s, f, "missing destination header",
			   "This frame requires a 'destination' header");
		return false;
	}
	if (memchr(d->ptr, TOPIC_SCOPE_SEP, d->len)) {
		fail_frame(sh, s, f, "invalid destination", "Destination names may not hold control bytes");
		return false;
	}
	if (!dest_is_queue(*d) && !dest_is_topic(*d)) {
		snprintf(detail, sizeof(detail),
			 "Unknown destination '%.*s'. Valid destinations are /queue/<name> and "
			 "/topic/<name>",
			 (int)utf8_trim_partial(d->ptr, HD_MIN(d->len, 256)), d->ptr);
		fail_frame(sh, s, f, "unknown destination", detail);
		return false;
	}
	if (d->len > sh->cfg->limits.max_destination_bytes) {
		/* topic patterns are matched word by word against every published name: long
		 * names with thousands of words would let one SEND stall every shard */
		snprintf(detail, sizeof(detail),
			 "Destination names may be at most %u bytes long (max-destination-bytes)",
			 sh->cfg->limits.max_destination_bytes);
		fail_frame(sh, s, f, "destination too long", detail);
		return false;
	}
	return true;
}

/* The internal key of a destination: the name itself in the default virtual host,
 * "<name>\x1f<vhost>" in any other, so each vhost is its own namespace. Valid until the
 * next call on this shard. */
static struct stomp_view dest_key(struct shard *sh, const struct session *s, struct stomp_view d)
{
	size_t vlen;

	if (s->vhost[0] == '/' && !s->vhost[1])
		return d;
	vlen = strlen(s->vhost);
	if (d.len + 1 + vlen > sh->key_cap) {
		sh->key_cap = d.len + 1 + vlen;
		sh->key_buf = hd_realloc(sh->key_buf, sh->key_cap);
	}
	memcpy(sh->key_buf, d.ptr, d.len);
	sh->key_buf[d.len] = TOPIC_SCOPE_SEP;
	memcpy(sh->key_buf + d.len + 1, s->vhost, vlen);
	return (struct stomp_view){ sh->key_buf, d.len + 1 + vlen };
}

static struct xname *xname_create(const char *name, size_t len)
{
	struct xname *n = hd_alloc(sizeof(*n) + len + 1);

	n->len = (uint32_t)len;
	memcpy(n->name, name, len);
	n->name[len] = '\0';
	return n;
}

/* ---- subscriptions: the local (connection-side) half ---- */

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
	for (uint32_t to = 0; to < sh->nshards; to++) {
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

static uint64_t all_shards(const struct shard *sh)
{
	return sh->nshards >= 64 ? ~0ull : (1ull << sh->nshards) - 1;
}

/* Registers sub with the local table and the owner(s); returns shards to SYNC with
 * (a bitmask) for receipt `seq` (a queue's owner answers it directly). */
static uint64_t sub_attach(struct shard *sh, struct sub *sub, uint32_t seq)
{
	struct local_table *lt = &sh->local;
	const size_t plen = sizeof(TOPIC_PREFIX) - 1;

	if (sub->kind == SUB_QUEUE) {
		struct xconsumer *xc = hd_alloc(sizeof(*xc) + sub->dest_len + 1);
		struct xmsg m = { .kind = XMSG_QUEUE_CONSUMER_ADD, .ptr = xc };
		struct session *s = sub->s;

		xc->key = xmsg_consumer_key(sh->id, s->conn->slot, s->conn->gen, sub->idx);
		xc->prefetch = sub->prefetch;
		xc->ack_mode = sub->ack_mode;
		xc->conn_ref = conn_ref(s);
		xc->seq = seq;
		if (seq)
			receipt_add_wait(s, seq);
		xc->len = sub->dest_len;
		memcpy(xc->name, sub->dest, sub->dest_len + 1);
		shard_send(sh, sub->owner, &m);
		return 0;
	}
	if (sub->kind == SUB_PATTERN) {
		list_insert(&lt->patterns, sub);
		lt->npatterns++;
		interest_broadcast(sh, XMSG_PATTERN_INTEREST, sub->dest + plen, sub->dest_len - plen, true);
		return all_shards(sh);
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
	return all_shards(sh);	/* an earlier 0->1 may still be on its way to some */
}

static void credit_return(struct shard *sh, struct sub *sub);

/* Undoes sub_attach and frees sub; a queue's owner requeues the unacked messages. */
static void sub_detach(struct shard *sh, struct sub *sub)
{
	struct local_table *lt = &sh->local;
	const size_t plen = sizeof(TOPIC_PREFIX) - 1;

	if (sub->kind == SUB_QUEUE) {
		struct session *s = sub->s;
		struct xmsg m = {
			.kind = XMSG_QUEUE_CONSUMER_DEL,
			.a = xmsg_consumer_key(sh->id, s->conn->slot, s->conn->gen, sub->idx),
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
	hd_free(sub->dest);
	hd_free(sub->id);
	hd_free(sub);
}

static void session_remove_sub(struct shard *sh, struct session *s, uint32_t i)
{
	struct sub *sub = s->subs[i];

	s->subs[i] = s->subs[--s->nsubs];
	sub_detach(sh, sub);
}

static struct sub *sub_by_id(struct session *s, struct stomp_view id, uint32_t *index)
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

static struct sub *sub_by_idx(struct session *s, uint32_t idx)
{
	for (uint32_t i = 0; i < s->nsubs; i++)
		if (s->subs[i]->idx == idx)
			return s->subs[i];
	return NULL;
}

/* ---- delivery ---- */

/* ack id: "<subscription index>.<tag>", unique within the session */
static size_t format_ack_id(char *out, uint32_t idx, uint64_t tag)
{
	size_t n = hd_fmt_u64(out, idx);

	out[n++] = '.';
	return n + hd_fmt_u64(out + n, tag);
}

/* Queues one MESSAGE: per-subscriber head inline, shared tail by reference. */
static void deliver(struct shard *sh, struct sub *sub, struct hmsg *m, uint64_t tag,
		    enum stomp_redelivered redelivered)
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
		mdeque_push_back(&sub->pend, (struct mentry){ .m = m, .tag = tag });
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
		n = stomp_encode_message_head(sh->enc_buf + room, sh->enc_cap - room, s->version,
					      (struct stomp_view){ sub->id, sub->id_len }, hmsg_msgid(m),
					      s->version == STOMP_V12 ? ackv : (struct stomp_view){ 0 },
					      redelivered);
		HD_ASSERT(n > 0);
		net_conn_write_copy(&sh->loop, s->conn, sh->enc_buf,
				    s->ws ? wsconn_prefix_head(sh->enc_buf, room, (size_t)n, m, tail_len) :
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
	return s->conn->out_bytes > sh->cfg->limits.max_outbound_bytes;
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
	deliver(sh, sub, m, ++sub->next_tag, STOMP_REDELIVERED_OMIT);
}

void session_on_topic_deliver(struct shard *sh, const struct xmsg *xm)
{
	struct hmsg *m = xm->ptr;
	struct local_topic *lt = strmap_get(&sh->local.topics, hmsg_dest(m), m->dest_len);
	const size_t plen = sizeof(TOPIC_PREFIX) - 1;

	if (lt) {
		for (struct sub *sub = lt->head, *next; sub; sub = next) {
			next = sub->next;
			deliver_topic(sh, sub, m);
		}
	}
	for (struct sub *sub = sh->local.patterns, *next; sub; sub = next) {
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
	struct net_conn *c = NULL;
	struct session *s = NULL;
	struct sub *sub = NULL;
	uint32_t slot = xmsg_key_slot(key);

	if (slot < sh->loop.nconns_cap)
		c = sh->loop.conns[slot];
	if (c && (c->gen & 0xffff) == xmsg_key_gen(key) && c->state == NET_CONN_OPEN)
		s = c->user;
	if (s && !s->close_mode)
		sub = sub_by_idx(s, xmsg_key_sub(key));
	if (!sub) {
		/* the consumer left while this was on its way: back to the queue */
		struct xmsg r = { .kind = XMSG_QUEUE_RETURN, .ptr = m, .a = key, .b = xm->b,
				  .u32 = (xm->u32 >> XDELIVER_ACK_MODE_SHIFT) & 0xff };

		shard_send(sh, dest_owner(hmsg_dest(m), m->dest_len, sh->nshards), &r);
		return;
	}
	deliver(sh, sub, m, xm->b,
		(xm->u32 & XDELIVER_REDELIVERED) ? STOMP_REDELIVERED_TRUE : STOMP_REDELIVERED_FALSE);
	hmsg_unref(m);
	sub->credit_pending++;
	/* credit flows back at once while the socket keeps up; else when it drains */
	if (sub->credit_pending >= DEST_CREDIT_WINDOW / 4 && s->conn->out_bytes < 65536)
		credit_return(sh, sub);
}

static void credit_return(struct shard *sh, struct sub *sub)
{
	struct xmsg m;

	if (!sub->credit_pending)
		return;
	m = (struct xmsg){
		.kind = XMSG_QUEUE_ACK,
		.u32 = XACK_CREDIT,
		.a = xmsg_consumer_key(sh->id, sub->s->conn->slot, sub->s->conn->gen, sub->idx),
		.b = sub->credit_pending,
		.ptr = xname_create(sub->dest, sub->dest_len),
	};
	sub->credit_pending = 0;
	shard_send(sh, sub->owner, &m);
}

static void session_read_again(struct shard *sh, struct session *s);

bool session_output_full(struct shard *sh, struct session *s)
{
	if (s->conn->out_bytes <= sh->cfg->limits.max_outbound_bytes)
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
			credit_return(sh, s->subs[i]);
}


/* ---- CONNECT ---- */

static int pick_version(const struct stomp_view *accept, enum stomp_version *out)
{
	static const char *const names[] = { "1.0", "1.1", "1.2" };
	int best = -1;
	size_t i = 0;

	if (!accept) {
		*out = STOMP_V10;	/* no accept-version: a 1.0 client */
		return 0;
	}
	while (i <= accept->len) {
		size_t j = i;

		while (j < accept->len && accept->ptr[j] != ',')
			j++;
		size_t k = i;
		size_t end = j;

		while (k < end && accept->ptr[k] == ' ')
			k++;
		while (end > k && accept->ptr[end - 1] == ' ')
			end--;
		for (int v = 0; v < 3; v++)	/* the whole token: "1.25" is not 1.2 */
			if (end - k == 3 && !memcmp(accept->ptr + k, names[v], 3) && v > best)
				best = v;
		i = j + 1;
	}
	if (best < 0)
		return -1;
	*out = (enum stomp_version)best;
	return 0;
}

static int parse_heartbeat(const struct stomp_view *hb, uint32_t *cx, uint32_t *cy)
{
	char buf[48];
	char *end;
	unsigned long x, y;

	*cx = *cy = 0;
	if (!hb)
		return 0;
	if (hb->len >= sizeof(buf))
		return -1;
	memcpy(buf, hb->ptr, hb->len);
	buf[hb->len] = '\0';
	x = strtoul(buf, &end, 10);
	if (end == buf || *end != ',')
		return -1;
	y = strtoul(end + 1, &end, 10);
	if (*end || x > UINT32_MAX || y > UINT32_MAX)
		return -1;
	*cx = (uint32_t)x;
	*cy = (uint32_t)y;
	return 0;
}

static void hb_list_add(struct shard *sh, struct session *s)
{
	if (s->on_hb_list)
		return;
	s->on_hb_list = true;
	s->hb_prev = NULL;
	s->hb_next = sh->hb_list;
	if (sh->hb_list)
		sh->hb_list->hb_prev = s;
	sh->hb_list = s;
}

static void hb_list_remove(struct shard *sh, struct session *s)
{
	if (!s->on_hb_list)
		return;
	s->on_hb_list = false;
	if (s->hb_prev)
		s->hb_prev->hb_next = s->hb_next;
	else
		sh->hb_list = s->hb_next;
	if (s->hb_next)
		s->hb_next->hb_prev = s->hb_prev;
}

static void connect_decided(struct shard *sh, struct session *s, struct auth_result *r);

static void pc_free(struct session *s)
{
	if (!s->pc)
		return;
	sodium_memzero(s->pc, sizeof(*s->pc));	/* it held a password */
	hd_free(s->pc);
	s->pc = NULL;
}

/* Runs auth_connect on what CONNECT carried (again, after AUTH_RETRY). */
static void pc_authenticate(struct shard *sh, struct session *s)
{
	struct pending_connect *pc = s->pc;
	struct auth_request rq = {
		.login = pc->has_login ? pc->login : NULL,
		.login_len = pc->login_len,
		.passcode = pc->has_passcode ? pc->passcode : NULL,
		.passcode_len = pc->passcode_len,
		.vhost = pc->has_host ? pc->host : NULL,
		.vhost_len = pc->host_len,
		.peer = (const struct sockaddr *)&s->conn->peer,
		.now_ms = sh->now_ms,
		.now_unix_ms = hd_now_unix_ms(),
	};
	struct auth_result r;

	auth_connect(sh->auth_db, &sh->auth, &rq, &r);
	connect_decided(sh, s, &r);
}

static void pc_fail(struct shard *sh, struct session *s, const char *message, const char *detail)
{
	struct stomp_view rid = { s->pc->receipt, strlen(s->pc->receipt) };

	session_fail(sh, s, message, detail, s->pc->has_receipt ? &rid : NULL);
}

/* The login succeeded: CONNECTED, heart-beats, token expiry, then frames flow again. */
static void connect_complete(struct shard *sh, struct session *s)
{
	uint32_t min = sh->cfg->limits.heartbeat_min_ms;
	struct pending_connect *pc = s->pc;
	int64_t left = auth_identity_ms_left(s->id, hd_now_unix_ms());
	char hb[32];
	char sess[48];

	snprintf(s->user, sizeof(s->user), "%s", s->id->user);
	snprintf(s->vhost, sizeof(s->vhost), "%s", s->id->vhost);
	/* we send as often as the client asks (cy), and expect what it offers (cx) */
	s->hb_send_ms = pc->cy ? HD_MAX(pc->cy, min) : 0;
	s->hb_recv_ms = pc->cx ? HD_MAX(pc->cx, min) : 0;
	s->expires_ms = left >= 0 ? sh->now_ms + (uint64_t)left : 0;
	s->state = SESSION_CONNECTED;
	hb_list_remove(sh, s);
	if (s->hb_send_ms || s->hb_recv_ms || s->expires_ms)
		hb_list_add(sh, s);
	snprintf(hb, sizeof(hb), "%u,%u", s->hb_send_ms, s->hb_recv_ms);
	snprintf(sess, sizeof(sess), "session-%08x-%u-%llu", shard_node_epoch, sh->id,
		 (unsigned long long)s->conn->id);
	{
		struct stomp_header h[5] = { HDR("version", stomp_version_name(s->version)),
					     HDR("heart-beat", hb), HDR("server", "Herald/" HERALD_VERSION),
					     HDR("session", sess), HDR("user-name", s->user) };

		write_frame(sh, s, STOMP_CMD_CONNECTED, h, 5, NULL, 0);
	}
	if (pc->has_receipt) {
		struct stomp_header h[1] = { HDR("receipt-id", pc->receipt) };

		write_frame(sh, s, STOMP_CMD_RECEIPT, h, 1, NULL, 0);
	}
	pc_free(s);
}

/* Who failed, from where, and why: what an operator (or fail2ban) needs. A login that is
 * not a valid user name is not echoed into the log (it could hold control bytes). */
static void log_login_refused(const struct session *s, const char *why)
{
	const struct pending_connect *pc = s->pc;
	char addr[INET_ADDRSTRLEN] = "?";
	bool named = pc->has_login && users_name_is_valid(pc->login, pc->login_len);

	inet_ntop(AF_INET, &s->conn->peer.sin_addr, addr, sizeof(addr));
	hd_log_conn(HD_LOG_WARN, s->conn->id, "login refused: %s (user '%.*s' from %s:%u)", why,
		    named ? (int)pc->login_len : 1, named ? pc->login : "?", addr,
		    ntohs(s->conn->peer.sin_port));
}

/* Acts on auth_connect's or auth_job_finish's answer. */
static void connect_decided(struct shard *sh, struct session *s, struct auth_result *r)
{
	switch (r->status) {
	case AUTH_OK:
		s->id = r->identity;
		connect_complete(sh, s);
		return;
	case AUTH_DENIED:
		log_login_refused(s, r->log_reason);
		if (!r->delay_ms) {
			pc_fail(sh, s, r->message, r->detail);
			return;
		}
		/* repeated failures from this address: answer later, never faster */
		s->pc->message = r->message;
		snprintf(s->pc->detail, sizeof(s->pc->detail), "%s", r->detail);
		s->deny_at_ms = sh->now_ms + r->delay_ms;
		return;
	case AUTH_RETRY:
		s->retry_at_ms = sh->now_ms + HD_MAX(r->delay_ms, 1u);
		return;
	case AUTH_SLOW: {
		struct xmsg m = { .kind = XMSG_AUTH_JOB, .ptr = r->job, .a = conn_ref(s) };

		auth_job_set_cookie(r->job, conn_ref(s));
		if (!shard_send_auth(sh, &m)) {
			auth_job_destroy(r->job, &sh->auth, sh->now_ms);
			pc_fail(sh, s, "server busy", "Too many logins in progress; try again");
			return;
		}
		s->auth_pending = true;
		return;
	}
	}
}

void session_on_auth_done(struct shard *sh, const struct xmsg *m)
{
	struct session *s = session_by_ref(sh, auth_job_cookie(m->ptr));
	struct auth_result r;

	if (!s || !s->auth_pending) {
		auth_job_destroy(m->ptr, &sh->auth, sh->now_ms);	/* the client left */
		return;
	}
	s->auth_pending = false;
	auth_job_finish(m->ptr, &sh->auth, sh->now_ms, &r);
	connect_decided(sh, s, &r);
	if (!s->close_mode && !s->deny_at_ms && s->state == SESSION_CONNECTED)
		session_read_again(sh, s);	/* frames the client sent behind CONNECT */
}

/* Copies a CONNECT header into pending_connect storage; false when it does not fit. */
static bool pc_keep(char *dst, size_t cap, const struct stomp_view *v, uint32_t *len, bool *has)
{
	*has = v != NULL;
	*len = 0;
	if (!v)
		return true;
	if (v->len >= cap)
		return false;
	memcpy(dst, v->ptr, v->len);
	dst[v->len] = '\0';
	*len = (uint32_t)v->len;
	return true;
}

static void on_connect(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *host = stomp_frame_header(f, "host");
	const struct stomp_view *login = stomp_frame_header(f, "login");
	const struct stomp_view *pass = stomp_frame_header(f, "passcode");
	const struct stomp_view *receipt = frame_receipt(f);
	uint32_t cx, cy;

	if (s->state != SESSION_AWAIT_CONNECT || s->pc) {
		fail_frame(sh, s, f, "already connected", "CONNECT was sent twice");
		return;
	}
	if (pick_version(stomp_frame_header(f, "accept-version"), &s->version)) {
		struct stomp_header h[4] = { HDR("message", "unsupported protocol version"),
					     HDR("version", "1.0,1.1,1.2"), HDR("content-type", "text/plain") };
		const char *body = "Supported protocol versions are 1.0,1.1,1.2";
		size_t nh = 3;

		if (receipt)
			h[nh++] = (struct stomp_header){ { "receipt-id", 10 }, *receipt };
		s->version = STOMP_V12;
		write_frame(sh, s, STOMP_CMD_ERROR, h, nh, body, strlen(body));
		close_later(sh, s, CLOSE_AFTER_FLUSH);
		return;
	}
	stomp_parser_set_version(&s->parser, s->version);
	if (parse_heartbeat(stomp_frame_header(f, "heart-beat"), &cx, &cy)) {
		fail_frame(sh, s, f, "invalid heart-beat header", "heart-beat must be '<cx>,<cy>'");
		return;
	}
	s->pc = hd_calloc(1, sizeof(*s->pc));
	s->pc->cx = cx;
	s->pc->cy = cy;
	if (receipt) {
		s->pc->has_receipt = true;
		snprintf(s->pc->receipt, sizeof(s->pc->receipt), "%.*s", (int)HD_MIN(receipt->len, 127),
			 receipt->ptr);
	}
	if (!pc_keep(s->pc->login, sizeof(s->pc->login), login, &s->pc->login_len, &s->pc->has_login) ||
	    !pc_keep(s->pc->passcode, sizeof(s->pc->passcode), pass, &s->pc->passcode_len,
		     &s->pc->has_passcode) ||
	    !pc_keep(s->pc->host, sizeof(s->pc->host), host, &s->pc->host_len, &s->pc->has_host)) {
		pc_fail(sh, s, "Access refused", "Login failed: login, passcode or host too long");
		return;
	}
	pc_authenticate(sh, s);
}

/* Is the session allowed to act on d? On a denial: ERROR naming it, then close. */
static bool authorized(struct shard *sh, struct session *s, const struct stomp_frame *f,
		       enum acl_action a, const struct stomp_view *d)
{
	struct auth_verdict v;
	char detail[400];

	if (auth_authorize(sh->auth_db, s->id, a, d->ptr, d->len, &v))
		return true;
	auth_verdict_format(&v, s->id, a, d->ptr, d->len, detail, sizeof(detail));
	hd_log_conn(HD_LOG_INFO, s->conn->id, "denied: %s", detail);
	fail_frame(sh, s, f, "Access refused", detail);
	return false;
}

/* ---- SEND ---- */

#define VIEW_LIT(s) { s, sizeof(s) - 1 }

/* Headers the server sets on MESSAGE (or that only mean something on SEND). */
static bool header_is_servers(struct stomp_view name)
{
	static const struct stomp_view owned[] = {
		VIEW_LIT("destination"), VIEW_LIT("receipt"), VIEW_LIT("transaction"),
		VIEW_LIT("content-length"), VIEW_LIT("message-id"), VIEW_LIT("subscription"),
		VIEW_LIT("ack"), VIEW_LIT("redelivered"),
	};

	for (size_t i = 0; i < HD_ARRAY_LEN(owned); i++)
		if (name.len == owned[i].len && !memcmp(name.ptr, owned[i].ptr, name.len))
			return true;
	return false;
}

/* The headers a MESSAGE keeps, deduplicated by name (the first occurrence wins). A frame may
 * carry up to STOMP_HEADERS_CAP headers, so names are found through a small hash table, not
 * by comparing each with every other (a million comparisons of long names per frame). */
struct header_set {
	struct stomp_header keep[STOMP_HEADERS_CAP];
	uint16_t slots[2 * STOMP_HEADERS_CAP];	/* index + 1 into keep; 0 = empty */
	size_t n;
};

struct header_set *session_header_set_create(void)
{
	return hd_alloc(sizeof(struct header_set));
}

#define HEADER_SET_LINEAR 16	/* up to this many headers, comparing is cheaper than hashing */

static void header_set_reset(struct header_set *hs, size_t nheaders)
{
	hs->n = 0;
	if (nheaders > HEADER_SET_LINEAR)
		memset(hs->slots, 0, sizeof(hs->slots));
}

static bool header_set_add(struct header_set *hs, const struct stomp_header *h, size_t nheaders)
{
	const size_t mask = HD_ARRAY_LEN(hs->slots) - 1;
	size_t i;

	if (nheaders <= HEADER_SET_LINEAR) {
		for (i = 0; i < hs->n; i++)
			if (stomp_view_eq(hs->keep[i].name, h->name.ptr, h->name.len))
				return false;
		hs->keep[hs->n++] = *h;
		return true;
	}
	for (i = hd_hash(h->name.ptr, h->name.len) & mask; hs->slots[i]; i = (i + 1) & mask) {
		const struct stomp_view *seen = &hs->keep[hs->slots[i] - 1].name;

		if (stomp_view_eq(*seen, h->name.ptr, h->name.len))
			return false;
	}
	hs->keep[hs->n] = *h;
	hs->slots[i] = (uint16_t)++hs->n;
	return true;
}

/* Encodes the message once: id, destination, the publisher's headers, body. `key` is the
 * internal destination (dest_key), `dest` the name subscribers see. */
static struct hmsg *message_build(struct shard *sh, const struct stomp_frame *f, struct stomp_view dest,
				  struct stomp_view key)
{
	struct header_set *hs = sh->header_set;
	size_t cap = dest.len * 2 + f->body.len + 64;
	char id[40];
	size_t id_len;
	struct hmsg *m;
	ssize_t n;

	bool escaped = false;
	bool raw_ok = true;
	/* a CR has an escape only in 1.2; 1.1 carries it raw (its lines end at LF alone) */
	bool has_cr = memchr(dest.ptr, '\r', dest.len) != NULL;
	size_t total;
	size_t used;

	header_set_reset(hs, f->nheaders);
	for (uint32_t i = 0; i < f->nheaders; i++) {
		const struct stomp_header *h = &f->headers[i];

		if (header_is_servers(h->name) || !header_set_add(hs, h, f->nheaders))
			continue;	/* a repeated header: the first one wins */
		cap += 2 * (h->name.len + h->value.len) + 2;
		if (stomp_needs_escape(h->name.ptr, h->name.len) ||
		    stomp_needs_escape(h->value.ptr, h->value.len)) {
			/* a CR needs an escape, so it is looked for only here, off the common path */
			bool cr = memchr(h->value.ptr, '\r', h->value.len) ||
				  memchr(h->name.ptr, '\r', h->name.len);

			escaped = true;
			has_cr = has_cr || cr;
			raw_ok = raw_ok && !cr && !memchr(h->value.ptr, '\n', h->value.len) &&
				 !memchr(h->name.ptr, ':', h->name.len) &&
				 !memchr(h->name.ptr, '\n', h->name.len);
		}
	}
	/* room for the 1.0 and the 1.1 tails beside the shared one, when they differ */
	total = cap * (1 + (escaped && raw_ok) + has_cr);
	/* "<node epoch>-<shard>-<seq>": unique per node run */
	id_len = hd_fmt_hex32(id, shard_node_epoch);
	id[id_len++] = '-';
	id_len += hd_fmt_u64(id + id_len, sh->id);
	id[id_len++] = '-';
	id_len += hd_fmt_u64(id + id_len, ++sh->msg_seq);
	id[id_len] = '\0';
	m = hmsg_create((uint16_t)sh->id, key.ptr, key.len, id_len + 1 + total);
	m->msgid_off = m->tail_off;
	m->msgid_len = (uint32_t)id_len;
	memcpy(m->bytes + m->msgid_off, id, id_len + 1);
	m->tail_off = m->msgid_off + (uint32_t)id_len + 1;
	n = stomp_encode_message_tail(hmsg_tail_mut(m), total, STOMP_V12, dest, hs->keep, hs->n,
				      f->body.ptr, f->body.len);
	HD_ASSERT(n > 0);
	m->tail_len = (uint32_t)n;
	used = m->tail_len;
	if (escaped && raw_ok) {
		/* 1.0 readers get the values as sent, unescaped (spec 1.0 has no escaping) */
		m->tail10_off = m->tail_off + (uint32_t)used;
		n = stomp_encode_message_tail(m->bytes + m->tail10_off, total - used, STOMP_V10,
					      dest, hs->keep, hs->n, f->body.ptr, f->body.len);
		HD_ASSERT(n > 0);
		m->tail10_len = (uint32_t)n;
		used += m->tail10_len;
	}
	if (has_cr) {
		m->tail11_off = m->tail_off + (uint32_t)used;
		n = stomp_encode_message_tail(m->bytes + m->tail11_off, total - used, STOMP_V11,
					      dest, hs->keep, hs->n, f->body.ptr, f->body.len);
		HD_ASSERT(n > 0);
		m->tail11_len = (uint32_t)n;
	}
	m->body_len = (uint32_t)f->body.len;
	/* the whole tail, not just the body: a header value with bytes that are not UTF-8 in a
	 * text frame makes a browser close the socket (1007) just as a body would */
	if (!utf8_is_valid(hmsg_tail(m), m->tail_len))
		m->flags |= HMSG_NOT_UTF8;
	return m;
}

/* A queue message goes to its owner shard. A topic message is routed right here: every
 * shard knows which shards have subscribers for every topic, so the fan-out costs one xmsg
 * per interested shard straight from the publisher's shard, and one publisher's messages
 * reach a subscriber in the order sent, across topics too (as with RabbitMQ's one queue
 * per subscription), because they all travel the same xring. */
static void publish(struct shard *sh, struct session *s, struct hmsg *m, uint32_t seq)
{
	struct xmsg x = { .kind = XMSG_PUBLISH, .ptr = m, .a = conn_ref(s), .u32 = seq,
			  .from = (uint16_t)sh->id };

	if (seq)
		receipt_add_wait(s, seq);
	if (m->dest_len > 7 && !memcmp(hmsg_dest(m), QUEUE_PREFIX, 7))
		shard_send(sh, dest_owner(hmsg_dest(m), m->dest_len, sh->nshards), &x);
	else
		dest_on_publish(sh, &x);
}

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
static struct tx *frame_tx(struct shard *sh, struct session *s, const struct stomp_frame *f, bool *bad)
{
	const struct stomp_view *t = stomp_frame_header(f, "transaction");
	struct tx *tx;

	*bad = false;
	if (!t)
		return NULL;
	tx = tx_find(s, t, NULL);
	if (!tx) {
		*bad = true;
		fail_frame(sh, s, f, "unknown transaction", "The transaction header names no open transaction");
	} else if (tx->nops >= sh->cfg->limits.max_tx_frames) {
		*bad = true;
		fail_frame(sh, s, f, "transaction too large", "The transaction holds max-tx-frames frames");
	}
	return tx;
}

static void tx_append(struct tx *tx, struct tx_op *op)
{
	op->next = NULL;
	if (tx->tail)
		tx->tail->next = op;
	else
		tx->head = op;
	tx->tail = op;
	tx->nops++;
}

static void mem_check(struct shard *sh)
{
	if (sh->now_ms - sh->mem_checked_ms < 100)
		return;
	sh->mem_checked_ms = sh->now_ms;
	sh->mem_over = hd_alloc_allocated_bytes() > sh->cfg->limits.memory_high_water;
}

/* A SEND's user-id header, if any, names the logged-in user (or the user may impersonate). */
static bool user_id_is_own(const struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *uid = stomp_frame_header(f, "user-id");

	return !uid || stomp_view_eq(*uid, s->user, strlen(s->user)) ||
	       users_list_has(s->id->tags, "impersonator", 12);
}

static void on_send(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *d = stomp_frame_header(f, "destination");
	struct tx *tx;
	bool bad;
	struct hmsg *m;

	if (!check_dest(sh, s, f, d) || !authorized(sh, s, f, ACL_SEND, d))
		return;
	if (stomp_frame_header(f, "message-id")) {
		/* the server names messages (RabbitMQ refuses this header too) */
		fail_frame(sh, s, f, "'message-id' is not allowed on 'SEND'",
			   "The server assigns message-id; remove the header from SEND");
		return;
	}
	if (!user_id_is_own(s, f)) {
		/* receivers may trust user-id: RabbitMQ validates it the same way */
		fail_frame(sh, s, f, "user-id does not match the login",
			   "A SEND's 'user-id' header must name the user who logged in "
			   "(only the tag 'impersonator' may set another)");
		return;
	}
	tx = frame_tx(sh, s, f, &bad);
	if (bad)
		return;
	mem_check(sh);
	if (sh->mem_over) {
		sh->stats.refused_sends++;
		fail_frame(sh, s, f, "memory high-water mark reached",
			   "The server holds too much data (memory-high-water); the message was not accepted");
		return;
	}
	m = message_build(sh, f, *d, dest_key(sh, s, *d));
	if (tx) {
		struct tx_op *op = hd_calloc(1, sizeof(*op));

		op->kind = TXOP_SEND;
		op->m = m;
		tx_append(tx, op);
		if (receipt_begin(s, f, 0, false))
			receipts_flush(sh, s);
		return;
	}
	publish(sh, s, m, receipt_begin(s, f, 0, false));
	receipts_flush(sh, s);
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

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

static void sync_mask(struct shard *sh, struct session *s, uint64_t mask, uint32_t seq)
{
	for (uint32_t i = 0; mask && i < sh->nshards; i++, mask >>= 1)
		if (mask & 1)
			sync_with(sh, s, i, seq);
}

static void on_subscribe(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *d = stomp_frame_header(f, "destination");
	const struct stomp_view *id = stomp_frame_header(f, "id");
	const struct stomp_view *pf = stomp_frame_header(f, "prefetch-count");
	int ack = parse_ack_mode(stomp_frame_header(f, "ack"));
	struct stomp_view idv;
	struct sub *sub;
	uint32_t prefetch = 0;

	if (!check_dest(sh, s, f, d) || !authorized(sh, s, f, ACL_SUBSCRIBE, d))
		return;
	if (!id && s->version != STOMP_V10) {
		fail_frame(sh, s, f, "missing id header", "SUBSCRIBE requires an 'id' header");
		return;
	}
	idv = id ? *id : *d;	/* STOMP 1.0: the destination names the subscription */
	if (ack < 0) {
		fail_frame(sh, s, f, "invalid ack mode", "ack must be auto, client or client-individual");
		return;
	}
	if (pf && parse_u32_view(pf, &prefetch)) {
		fail_frame(sh, s, f, "invalid prefetch-count", "prefetch-count must be a number");
		return;
	}
	if (sub_by_id(s, idv, NULL)) {
		fail_frame(sh, s, f, "duplicate subscription id", "A subscription with this id exists");
		return;
	}
	if (s->nsubs >= sh->cfg->limits.max_subscriptions) {
		fail_frame(sh, s, f, "too many subscriptions", "The connection reached max-subscriptions");
		return;
	}
	sub = hd_calloc(1, sizeof(*sub));
	sub->s = s;
	sub->idx = s->next_sub_idx++;
	sub->ack_mode = (uint8_t)ack;
	sub->prefetch = prefetch;
	{
		struct stomp_view key = dest_key(sh, s, *d);

		sub->dest = hd_strndup(key.ptr, key.len);
		sub->dest_len = (uint32_t)key.len;
	}
	sub->id = hd_strndup(idv.ptr, idv.len);
	sub->id_len = (uint32_t)idv.len;
	sub->owner = dest_owner(sub->dest, sub->dest_len, sh->nshards);
	if (dest_is_queue(*d))
		sub->kind = SUB_QUEUE;
	else if (topic_is_pattern(d->ptr + 7, d->len - 7))
		sub->kind = SUB_PATTERN;
	else
		sub->kind = SUB_TOPIC;
	s->subs = hd_realloc(s->subs, (s->nsubs + 1) * sizeof(*s->subs));
	s->subs[s->nsubs++] = sub;
	sh->stats.subscriptions++;
	{
		uint32_t seq = receipt_begin(s, f, 0, false);

		sync_mask(sh, s, sub_attach(sh, sub, seq), seq);
	}
	receipts_flush(sh, s);
}

static void on_unsubscribe(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *id = stomp_frame_header(f, "id");
	uint32_t i;
	struct sub *sub;
	uint64_t owner_mask;

	if (!id && s->version == STOMP_V10)
		id = stomp_frame_header(f, "destination");
	if (!id) {
		fail_frame(sh, s, f, "missing id header", "UNSUBSCRIBE requires an 'id' header");
		return;
	}
	sub = sub_by_id(s, *id, &i);
	if (!sub) {
		/* RabbitMQ answers so too: a client that thinks it unsubscribed is told it never was */
		fail_frame(sh, s, f, "No subscription found",
			   "UNSUBSCRIBE must refer to an existing subscription");
		return;
	}
	owner_mask = 1ull << sub->owner;
	session_remove_sub(sh, s, i);
	sync_mask(sh, s, owner_mask, receipt_begin(s, f, 0, false));
	receipts_flush(sh, s);
}

/* ---- ACK / NACK ---- */

/* Finds the delivery an ACK/NACK names: (sub, index in its pending list). */
static bool find_delivery(struct session *s, const char *id, const char *subid, struct sub **out_sub,
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
			int64_t i = mdeque_find_tag(&sub->pend, tag);	/* tags ascend */

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

static void ack_to_owner(struct shard *sh, struct sub *sub, uint32_t mode, uint64_t tag)
{
	struct xmsg m = {
		.kind = XMSG_QUEUE_ACK,
		.u32 = mode,
		.a = xmsg_consumer_key(sh->id, sub->s->conn->slot, sub->s->conn->gen, sub->idx),
		.b = tag,
		.ptr = xname_create(sub->dest, sub->dest_len),
	};

	shard_send(sh, sub->owner, &m);
}

/* Applies an ACK or NACK; returns the owner shard to sync with, -1 when the id is unknown. */
static int apply_ack(struct shard *sh, struct session *s, bool nack, const char *id, const char *subid,
		     bool requeue)
{
	struct sub *sub;
	uint32_t i;
	uint64_t tag;
	bool upto;

	if (!find_delivery(s, id, subid, &sub, &i))
		return -1;
	tag = mdeque_at(&sub->pend, i)->tag;
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
		ack_to_owner(sh, sub, upto ? XACK_UPTO : XACK_ONE, tag);
	else if (!requeue)
		ack_to_owner(sh, sub, upto ? XACK_UPTO : XNACK_DROP_ONE, tag);
	else
		ack_to_owner(sh, sub, upto ? XNACK_UPTO : XNACK_ONE, tag);
	return (int)sub->owner;
}

static void fail_unknown_ack_id(struct shard *sh, struct session *s, const struct stomp_frame *f,
				const char *id)
{
	char detail[256];

	snprintf(detail, sizeof(detail), "No unacknowledged message has the id '%s'", id);
	fail_frame(sh, s, f, "unknown ack id", detail);
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
		fail_frame(sh, s, f, "missing id header",
			   s->version == STOMP_V12 ? "ACK and NACK require an 'id' header"
						   : "ACK and NACK require a 'message-id' header");
		return;
	}
	if (s->version == STOMP_V11 && !subv) {
		fail_frame(sh, s, f, "missing subscription header",
			   "STOMP 1.1 ACK and NACK require a 'subscription' header");
		return;
	}
	snprintf(idbuf, sizeof(idbuf), "%.*s", (int)HD_MIN(id->len, sizeof(idbuf) - 1), id->ptr);
	if (subv)
		snprintf(subbuf, sizeof(subbuf), "%.*s", (int)HD_MIN(subv->len, sizeof(subbuf) - 1), subv->ptr);
	ack_sub = subv && s->version == STOMP_V11 ? subbuf : NULL;	/* 1.1 names the sub */
	tx = frame_tx(sh, s, f, &bad);
	if (bad)
		return;
	if (tx) {
		struct tx_op *op;
		struct sub *dsub;
		uint32_t di;

		/* refused now, as outside a transaction, not lost silently at COMMIT */
		if (!find_delivery(s, idbuf, ack_sub, &dsub, &di)) {
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
			receipts_flush(sh, s);
		return;
	}
	owner = apply_ack(sh, s, nack, idbuf, ack_sub, requeue);
	if (owner < 0) {
		fail_unknown_ack_id(sh, s, f, idbuf);
		return;
	}
	sync_with(sh, s, (uint32_t)owner, receipt_begin(s, f, 0, false));
	receipts_flush(sh, s);
}

static void on_ack(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	on_ack_nack(sh, s, f, false);
}

static void on_nack(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	on_ack_nack(sh, s, f, true);
}

/* ---- transactions ---- */

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

static void on_begin(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *t = stomp_frame_header(f, "transaction");
	struct tx *tx;

	if (!t) {
		fail_frame(sh, s, f, "missing transaction header", "BEGIN requires a 'transaction' header");
		return;
	}
	if (tx_find(s, t, NULL)) {
		fail_frame(sh, s, f, "transaction already started", "The transaction name is in use");
		return;
	}
	if (tx_count(s) >= sh->cfg->limits.max_transactions) {
		/* each open one is looked up by a walk: unbounded, they would stall the shard */
		fail_frame(sh, s, f, "too many transactions",
			   "This connection has max-transactions open; COMMIT or ABORT some first");
		return;
	}
	tx = hd_calloc(1, sizeof(*tx) + t->len + 1);
	memcpy(tx->name, t->ptr, t->len);
	tx->next = s->txs;
	s->txs = tx;
	if (receipt_begin(s, f, 0, false))
		receipts_flush(sh, s);
}

static struct tx *tx_take(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *t = stomp_frame_header(f, "transaction");
	struct tx **link;
	struct tx *tx;

	if (!t) {
		fail_frame(sh, s, f, "missing transaction header", "This frame requires a 'transaction' header");
		return NULL;
	}
	tx = tx_find(s, t, &link);
	if (!tx) {
		fail_frame(sh, s, f, "unknown transaction", "The transaction header names no open transaction");
		return NULL;
	}
	*link = tx->next;
	return tx;
}

static void on_commit(struct shard *sh, struct session *s, const struct stomp_frame *f)
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
			publish(sh, s, op->m, seq);
			op->m = NULL;	/* the owner has it now */
			continue;
		}
		owner = apply_ack(sh, s, op->kind == TXOP_NACK, op->ack_id, op->ack_sub, op->requeue);
		if (owner >= 0)
			touched |= 1ull << owner;
	}
	tx_free(tx);
	sync_mask(sh, s, touched, seq);
	receipts_flush(sh, s);
}

static void on_abort(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	struct tx *tx = tx_take(sh, s, f);

	if (!tx)
		return;
	tx_free(tx);
	if (receipt_begin(s, f, 0, false))
		receipts_flush(sh, s);
}

static void on_disconnect(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	s->disconnecting = true;
	if (receipt_begin(s, f, 0, true)) {
		receipts_flush(sh, s);	/* after every earlier receipt; then close */
		if (!s->close_mode)
			net_conn_pause_recv(&sh->loop, s->conn);
		return;
	}
	close_later(sh, s, CLOSE_AFTER_FLUSH);
}

/* ---- the command table ---- */

typedef void (*frame_handler)(struct shard *sh, struct session *s, const struct stomp_frame *f);

struct command {
	frame_handler handler;
	bool before_connect;	/* allowed before CONNECT (only CONNECT and STOMP) */
};

static const struct command commands[STOMP_CMD_COUNT] = {
	[STOMP_CMD_CONNECT] = { on_connect, true },
	[STOMP_CMD_STOMP] = { on_connect, true },
	[STOMP_CMD_SEND] = { on_send, false },
	[STOMP_CMD_SUBSCRIBE] = { on_subscribe, false },
	[STOMP_CMD_UNSUBSCRIBE] = { on_unsubscribe, false },
	[STOMP_CMD_ACK] = { on_ack, false },
	[STOMP_CMD_NACK] = { on_nack, false },
	[STOMP_CMD_BEGIN] = { on_begin, false },
	[STOMP_CMD_COMMIT] = { on_commit, false },
	[STOMP_CMD_ABORT] = { on_abort, false },
	[STOMP_CMD_DISCONNECT] = { on_disconnect, false },
};

static void handle_frame(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct command *cmd = &commands[f->cmd];

	if (f->cmd == STOMP_CMD_UNKNOWN) {
		fail_frame(sh, s, f, "unknown command",
			   "The frame's command is not a STOMP client command");
		return;
	}
	if (!cmd->handler) {
		char detail[96];

		snprintf(detail, sizeof(detail), "%s is a server frame; a client may not send it",
			 stomp_cmd_name(f->cmd));
		fail_frame(sh, s, f, "unexpected frame", detail);
		return;
	}
	if (s->state == SESSION_AWAIT_CONNECT && !cmd->before_connect) {
		fail_frame(sh, s, f, "not connected", "The first frame must be CONNECT or STOMP");
		return;
	}
	if (s->version == STOMP_V10 && f->cmd == STOMP_CMD_NACK) {
		fail_frame(sh, s, f, "unexpected frame", "NACK does not exist in STOMP 1.0");
		return;
	}
	cmd->handler(sh, s, f);
}

/* ---- connection life ---- */

void session_on_accept(struct shard *sh, struct net_conn *c)
{
	struct session *s = hd_calloc(1, sizeof(*s));
	const struct hd_limits *lim = &sh->cfg->limits;
	struct stomp_limits sl = {
		.max_frame = lim->max_frame_bytes,
		.max_headers = HD_MIN(lim->max_headers, STOMP_HEADERS_CAP),
		.max_header_line = lim->max_header_line,
		.max_body = lim->max_body_bytes,
		.max_command = 16,
	};

	s->conn = c;
	c->user = s;
	s->version = STOMP_V12;
	stomp_parser_init(&s->parser, &sl, sh->parse_scratch, sh->parse_scratch_cap);
	s->parser.report_unknown = true;
	s->last_rx_ms = s->last_tx_ms = sh->now_ms;
	s->connect_deadline_ms = sh->now_ms + lim->connect_timeout_ms;
	sh->stats.connections++;
	hb_list_add(sh, s);
	if (atomic_fetch_add_explicit(&shard_total_connections, 1, memory_order_relaxed) >=
	    lim->max_connections) {
		session_fail(sh, s, "too many connections", "The server reached max-connections", NULL);
		return;
	}
	if (c->kind == CONN_KIND_WS)
		s->ws = wsconn_create(&sh->http_cfg);
}

static size_t stomp_input(struct shard *sh, struct session *s, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len && !s->close_mode && !s->disconnecting) {
		ssize_t n;

		if (s->auth_pending || s->deny_at_ms || s->retry_at_ms) {
			/* the login is being decided: later frames wait, unread */
			net_conn_pause_recv(&sh->loop, s->conn);
			break;
		}
		if (session_output_full(sh, s))
			break;
		if (shard_is_backlogged(sh)) {
			/* other shards cannot take more now: stop reading until they can */
			net_conn_pause_recv(&sh->loop, s->conn);
			if (!s->paused)
				sh->npaused++;
			s->paused = true;
			break;
		}
		n = stomp_parse(&s->parser, buf + off, len - off, sh->frame);
		if (n == 0)
			break;
		if (n < 0) {
			fail_after_receipts(sh, s, s->parser.reason, s->parser.reason, NULL);
			break;
		}
		off += (size_t)n;
		if (sh->frame->cmd != STOMP_CMD_NONE)
			handle_frame(sh, s, sh->frame);
	}
	/* frames after DISCONNECT (or a refused frame) are dropped unread, as RabbitMQ does */
	return s->disconnecting ? len : off;
}

static void apply_close(struct shard *sh, struct session *s)
{
	if (s->close_mode == CLOSE_AFTER_FLUSH)
		net_conn_close_after_flush(&sh->loop, s->conn);
	else if (s->close_mode == CLOSE_NOW)
		net_conn_close(&sh->loop, s->conn);
}

size_t session_on_data(struct shard *sh, struct net_conn *c, const char *buf, size_t len)
{
	struct session *s = c->user;
	size_t used;

	s->last_rx_ms = sh->now_ms;
	s->in_data = true;
	if (s->ws)
		used = wsconn_input(sh, s->ws, c, buf, len, s);
	else
		used = stomp_input(sh, s, buf, len);
	s->in_data = false;
	if (s->close_mode)
		apply_close(sh, s);
	return used;
}

size_t session_stomp_input(struct shard *sh, struct session *s, const char *buf, size_t len)
{
	return stomp_input(sh, s, buf, len);
}

void session_ws_closed(struct shard *sh, struct session *s, bool now)
{
	close_later(sh, s, now ? CLOSE_NOW : CLOSE_AFTER_FLUSH);
}

void session_on_close(struct shard *sh, struct net_conn *c)
{
	struct session *s = c->user;

	if (!s)
		return;
	while (s->nsubs)
		session_remove_sub(sh, s, s->nsubs - 1);
	hd_free(s->subs);
	while (s->txs) {
		struct tx *tx = s->txs;

		s->txs = tx->next;
		tx_free(tx);	/* a closed connection aborts its transactions */
	}
	while (s->rw_head) {
		struct receipt_wait *w = s->rw_head;

		s->rw_head = w->next;
		hd_free(w);
	}
	hb_list_remove(sh, s);
	if (s->paused)
		sh->npaused--;
	auth_identity_destroy(s->id);
	pc_free(s);
	if (s->ws)
		wsconn_destroy(s->ws);
	atomic_fetch_sub_explicit(&shard_total_connections, 1, memory_order_relaxed);
	sh->stats.connections--;
	c->user = NULL;
	hd_free(s);
}

void session_tick(struct shard *sh, uint64_t now_ms)
{
	for (struct session *s = sh->hb_list, *next; s; s = next) {
		next = s->hb_next;
		if (s->close_mode)
			continue;
		if (s->deny_at_ms) {
			if (now_ms >= s->deny_at_ms)
				pc_fail(sh, s, s->pc->message, s->pc->detail);
			continue;
		}
		if (s->retry_at_ms) {
			if (now_ms >= s->retry_at_ms) {
				s->retry_at_ms = 0;
				pc_authenticate(sh, s);
				if (!s->close_mode && !s->deny_at_ms && s->state == SESSION_CONNECTED)
					session_read_again(sh, s);
			}
			continue;
		}
		if (s->expires_ms && now_ms >= s->expires_ms) {
			session_fail(sh, s, "Token expired", "The login token expired; connect again", NULL);
			continue;
		}
		if (s->state == SESSION_AWAIT_CONNECT) {
			if (s->auth_pending)
				continue;	/* the auth thread answers; the job is bounded */
			if (now_ms > s->connect_deadline_ms &&
			    !(s->ws && wsconn_http_timeout(sh, s->ws, s->conn, s)))
				session_fail(sh, s, "connect timeout", "No CONNECT frame in time", NULL);
			continue;
		}
		/* about twice the promised interval, plus a grace for a loaded box (RabbitMQ
		 * allows three periods) */
		if (s->hb_recv_ms && now_ms - s->last_rx_ms > 2ull * s->hb_recv_ms +
							      HD_MAX(s->hb_recv_ms / 2, 250u)) {
			session_fail(sh, s, "heart-beat timeout",
				     "No data or heart-beat from the client within twice its interval", NULL);
			continue;
		}
		/* a little early rather than late: the tick is coarse and the client counts */
		if (s->hb_send_ms && now_ms - s->last_tx_ms >= s->hb_send_ms - s->hb_send_ms / 10)
			write_bytes(sh, s, "\n", 1);
	}
}

/* Reading stopped (login decided, backlog gone): take what the client sent meanwhile. */
static void session_read_again(struct shard *sh, struct session *s)
{
	struct net_conn *c = s->conn;

	net_conn_resume_recv(&sh->loop, c);	/* re-offers the bytes it kept */
	if (c->state != NET_CONN_OPEN || c->user != s)
		return;
	if (s->ws && !s->close_mode)
		wsconn_input(sh, s->ws, c, NULL, 0, s);	/* STOMP bytes it kept */
}

void session_resume_paused(struct shard *sh)
{
	for (uint32_t i = 0; sh->npaused && !sh->nparked && i < sh->loop.nconns_cap; i++) {
		struct net_conn *c = sh->loop.conns[i];
		struct session *s = c ? c->user : NULL;

		if (s && s->paused && c->state == NET_CONN_OPEN) {
			s->paused = false;
			sh->npaused--;
			if (!s->auth_pending && !s->deny_at_ms && !s->retry_at_ms)
				session_read_again(sh, s);
		}
	}
}

void session_close_all(struct shard *sh)
{
	for (uint32_t i = 0; i < sh->loop.nconns_cap; i++) {
		struct net_conn *c = sh->loop.conns[i];

		if (c && c->user && c->state == NET_CONN_OPEN)
			session_fail(sh, c->user, "server shutting down", "The server is shutting down", NULL);
	}
}
