/*
 * bench/bench_worker.c - worker threads (see bench_worker.h).
 *
 * One loop pass: read the phase; start handshakes up to this worker's share of
 * --connect-concurrency; publish (RUN only); flush every connection written this pass with
 * one write(2) each; store the running totals; wait in epoll_pwait2 (ns timeout: the
 * latency workload's pacing needs better than 1 ms); handle what is ready.
 *
 * Message body: "<publisher:8 hex><seq:16 hex><scheduled:16 hex><queued:16 hex>" then 'x'
 * padding, times in CLOCK_MONOTONIC ns. Saturating workloads schedule a message when they
 * queue it; the latency workload schedules at fixed intervals, and the main latency figure
 * counts from the scheduled time, so a publisher that ran late (a busy box) is charged, not
 * hidden: the HDR way of avoiding coordinated omission. The second histogram counts from
 * the queued time: the server and network alone. `queues --rate R` paces queue SENDs the
 * same way (bench_cfg_paced).
 */
#include "bench/bench_worker.h"

#include "bench/bench_cfg.h"
#include "bench/bench_conn.h"
#include "bench/bench_nats.h"
#include "bench/bench_shared.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_time.h"
#include "proto/stomp_encode.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#define MAX_EVENTS 512
#define OUT_HIGH_BYTES (1u << 20)	/* a publisher stops filling above this backlog */
#define DEST_MAX 256

struct bench_worker {
	const struct bench_cfg *cfg;
	struct bench_shared *sh;
	struct bench_tstats *st;	/* this worker's block in sh */
	uint32_t tid;			/* global worker index */
	pthread_t thread;
	int epfd;
	struct bconn *conns;
	uint32_t nconns;
	uint32_t next_start;		/* next connection to start */
	uint32_t handshaking;		/* started, not ready nor dead */
	uint32_t handshake_cap;
	struct bconn **pubs;
	uint32_t npubs;
	struct bconn *dirty;		/* connections written this pass */
	struct bench_rbuf rb;
	uint32_t npub_total;		/* publishers over all workers */
	uint32_t fan;			/* deliveries per message */
	uint64_t interval_ns;		/* latency: between two messages of one publisher */
	uint64_t t_run;			/* 0 until the phase is RUN */
	uint64_t t_measure;		/* UINT64_MAX until the phase is RUN */
	uint64_t now;
	bool now_fresh;			/* now was read after the last read(2) */
	bool blocked;			/* the window is full */
	uint64_t next_due;		/* latency: earliest scheduled message */
	/* SEND template for the topic (body stamp patched per message) */
	char *tpl;
	size_t tpl_len;
	size_t tpl_body;		/* offset of the body in tpl */
	char *body;			/* a body to patch for queue SENDs */
	/* running totals, stored to st once per pass */
	uint64_t published, delivered, m_published, m_delivered, order_errors, acks, receipts;
	uint64_t connected, ready, stale, open;
	bool closing;			/* DISCONNECTs sent */
	uint32_t run_id;
};

static const char hexdig[] = "0123456789abcdef";

static void put_hex(char *p, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--, v >>= 4)
		p[i] = hexdig[v & 15];
}

/* Hex digit values; 0x10 marks a byte that is not one. */
static uint8_t hexval[256];

static void hexval_init(void)
{
	memset(hexval, 0x10, sizeof(hexval));
	for (unsigned i = 0; i < 10; i++)
		hexval['0' + i] = (uint8_t)i;
	for (unsigned i = 0; i < 6; i++)
		hexval['a' + i] = hexval['A' + i] = (uint8_t)(10 + i);
}

/* Branch-free: this runs three times per delivery. */
static bool get_hex(const char *p, int digits, uint64_t *out)
{
	uint64_t v = 0;
	unsigned bad = 0;

	for (int i = 0; i < digits; i++) {
		unsigned d = hexval[(unsigned char)p[i]];

		bad |= d;
		v = v << 4 | (d & 15);
	}
	*out = v;
	return !(bad & 0x10);
}

static void stamp(char *body, uint32_t pub, uint64_t seq, uint64_t sched, uint64_t sent)
{
	put_hex(body, pub, 8);
	put_hex(body + 8, seq, 16);
	put_hex(body + 24, sched, 16);
	put_hex(body + 40, sent, 16);
}

/* ---- set-up ---- */

static void mark_dirty(struct bench_worker *w, struct bconn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = w->dirty;
	w->dirty = c;
}

static void close_conn(struct bench_worker *w, struct bconn *c)
{
	if (c->state < BC_READY && c->state != BC_IDLE)
		w->handshaking--;
	if (c->state != BC_IDLE)
		w->open--;
	bconn_kill(c);
}

static void fail(struct bench_worker *w, struct bconn *c, const char *why)
{
	if (c->state == BC_DEAD)
		return;
	if (c->state == BC_CLOSING) {
		close_conn(w, c);	/* the server closed first: that ends it too */
		return;
	}
	bench_tstats_error(w->st, "%s %u: %s", c->role == BC_PUB ? "publisher" : "subscriber",
			   c->idx, why);
	close_conn(w, c);
}

static int sub_dest(const struct bench_worker *w, const struct bconn *c, char *out)
{
	if (w->cfg->workload == BENCH_FANOUT || w->cfg->workload == BENCH_LATENCY)
		return snprintf(out, DEST_MAX, "%s", w->cfg->topic);
	return bench_cfg_queue_name(w->cfg, c->idx, out, DEST_MAX);
}

/* NATS: SUB then PING; the PONG stands for the RECEIPT. */
static void send_nats_sub(struct bench_worker *w, struct bconn *c)
{
	char dest[DEST_MAX];
	char *p = bconn_out_reserve(c, DEST_MAX + 64);
	ssize_t n;

	sub_dest(w, c, dest);
	n = bench_nats_sub(p, DEST_MAX + 64, dest, c->idx + 1);
	if (n > 0)
		bconn_out_commit(c, (size_t)n);
	c->state = BC_SUBSCRIBING;
	mark_dirty(w, c);
}

static void send_subscribe(struct bench_worker *w, struct bconn *c)
{
	const struct bench_cfg *cfg = w->cfg;
	char dest[DEST_MAX];
	char id[32];
	char receipt[32];
	char prefetch[16];
	bool indiv = cfg->ack == BENCH_ACK_CLIENT_INDIVIDUAL;
	struct stomp_header h[5] = {
		{ { "id", 2 }, { id, (size_t)snprintf(id, sizeof(id), "s%u", c->idx) } },
		{ { "destination", 11 }, { dest, (size_t)sub_dest(w, c, dest) } },
		{ { "ack", 3 }, { indiv ? "client-individual" : "auto", indiv ? 17 : 4 } },
		{ { "receipt", 7 }, { receipt, (size_t)snprintf(receipt, sizeof(receipt), "sub-%u", c->idx) } },
		{ { "prefetch-count", 14 }, { prefetch, (size_t)snprintf(prefetch, sizeof(prefetch), "%u", cfg->prefetch) } },
	};
	char *p;
	ssize_t n;

	if (cfg->nats) {
		send_nats_sub(w, c);
		return;
	}
	p = bconn_out_reserve(c, 1024);
	n = stomp_encode_frame(p, 1024, STOMP_V12, STOMP_CMD_SUBSCRIBE, h, cfg->prefetch ? 5 : 4,
			       NULL, 0, false);
	if (n > 0)
		bconn_out_commit(c, (size_t)n);
	c->state = BC_SUBSCRIBING;
	mark_dirty(w, c);
}

static void mark_ready(struct bench_worker *w, struct bconn *c)
{
	c->state = BC_READY;
	w->handshaking--;
	w->ready++;
	atomic_store_explicit(&w->st->last_ready_ns, hd_now_ns(), memory_order_relaxed);
}

static void on_connected(struct bench_worker *w, struct bconn *c, const struct stomp_frame *f)
{
	const struct stomp_view *v = stomp_frame_header(f, "version");

	if (c->state != BC_STOMP_CONNECT)
		return;
	if (v && STOMP_VIEW_EQ_LIT(*v, "1.1"))
		stomp_parser_set_version(&c->parser, STOMP_V11);
	else if (v && STOMP_VIEW_EQ_LIT(*v, "1.2"))
		stomp_parser_set_version(&c->parser, STOMP_V12);
	else
		stomp_parser_set_version(&c->parser, STOMP_V10);
	w->connected++;
	atomic_store_explicit(&w->st->last_connected_ns, hd_now_ns(), memory_order_relaxed);
	if (c->role == BC_SUB)
		send_subscribe(w, c);
	else
		mark_ready(w, c);
}

static void on_error_frame(struct bench_worker *w, struct bconn *c, const struct stomp_frame *f)
{
	const struct stomp_view *m = stomp_frame_header(f, "message");
	char why[160];

	snprintf(why, sizeof(why), "ERROR frame: %.*s: %.*s", m ? (int)m->len : 0, m ? m->ptr : "",
		 (int)(f->body.len > 80 ? 80 : f->body.len), f->body.ptr ? f->body.ptr : "");
	fail(w, c, why);
}

/* ---- receiving ---- */

static void send_ack(struct bench_worker *w, struct bconn *c, const struct stomp_view *ack)
{
	struct stomp_header h[1] = { { { "id", 2 }, *ack } };
	size_t cap = 64 + 2 * ack->len;
	char *p = bconn_out_reserve(c, cap);
	ssize_t n = stomp_encode_frame(p, cap, STOMP_V12, STOMP_CMD_ACK, h, 1, NULL, 0, false);

	if (n > 0) {
		bconn_out_commit(c, (size_t)n);
		w->acks++;
		mark_dirty(w, c);
	}
}

static void maybe_ack(struct bench_worker *w, struct bconn *c, const struct stomp_frame *f)
{
	const struct stomp_view *a;

	if (w->cfg->ack != BENCH_ACK_CLIENT_INDIVIDUAL)
		return;
	a = stomp_frame_header(f, "ack");
	if (!a)
		a = stomp_frame_header(f, "message-id");
	if (a)
		send_ack(w, c, a);
}

static void on_message(struct bench_worker *w, struct bconn *c, const struct stomp_frame *f)
{
	uint64_t pub;
	uint64_t seq;
	uint64_t ts;
	uint64_t sent;

	if (f->body.len < BENCH_BODY_MIN || !get_hex(f->body.ptr, 8, &pub) ||
	    !get_hex(f->body.ptr + 8, 16, &seq) || !get_hex(f->body.ptr + 24, 16, &ts) ||
	    !get_hex(f->body.ptr + 40, 16, &sent)) {
		bench_tstats_error(w->st, "subscriber %u: MESSAGE without a bench stamp", c->idx);
		return;
	}
	if (pub >> 16 != w->run_id) {
		/* an earlier run's message still in a queue: take it off, do not count it */
		w->stale++;
		maybe_ack(w, c, f);
		return;
	}
	pub &= 0xffff;
	w->delivered++;
	if (pub < w->npub_total && c->last_seq) {
		if (seq <= c->last_seq[pub])
			w->order_errors++;
		else
			c->last_seq[pub] = seq;
	}
	if (ts >= w->t_measure) {
		if (!w->now_fresh) {
			w->now = hd_now_ns();
			w->now_fresh = true;
		}
		w->m_delivered++;
		bench_hist_record(&w->st->hist, w->now > ts ? w->now - ts : 0);
		bench_hist_record(&w->st->hist_sent, w->now > sent ? w->now - sent : 0);
	}
	maybe_ack(w, c, f);
}

/* --receipts: a SEND's RECEIPT; its receipt-id is the message's scheduled send time (ns,
 * decimal), so the latency needs no table of what is outstanding. */
static void on_send_receipt(struct bench_worker *w, const struct stomp_frame *f)
{
	const struct stomp_view *id = stomp_frame_header(f, "receipt-id");
	uint64_t ts = 0;

	for (size_t i = 0; id && i < id->len && id->ptr[i] >= '0' && id->ptr[i] <= '9'; i++)
		ts = ts * 10 + (uint64_t)(id->ptr[i] - '0');
	w->receipts++;
	if (ts < w->t_measure)
		return;
	if (!w->now_fresh) {
		w->now = hd_now_ns();
		w->now_fresh = true;
	}
	bench_hist_record(&w->st->hist_receipt, w->now > ts ? w->now - ts : 0);
}

/* The DISCONNECT's RECEIPT (receipt-id "bye", close_frame), not a SEND's. */
static bool is_bye(const struct stomp_frame *f)
{
	const struct stomp_view *id = stomp_frame_header(f, "receipt-id");

	return !id || (id->len == 3 && !memcmp(id->ptr, "bye", 3));
}

static int on_frame(void *arg, struct bconn *c, const struct stomp_frame *f)
{
	struct bench_worker *w = arg;

	switch (f->cmd) {
	case STOMP_CMD_MESSAGE:
		on_message(w, c, f);
		break;
	case STOMP_CMD_CONNECTED:
		on_connected(w, c, f);
		mark_dirty(w, c);
		break;
	case STOMP_CMD_RECEIPT:
		if (c->state == BC_SUBSCRIBING) {
			mark_ready(w, c);
		} else if (c->state == BC_CLOSING && is_bye(f)) {
			close_conn(w, c);
			return 1;
		} else {
			on_send_receipt(w, f);	/* --receipts: may still come after DISCONNECT */
		}
		break;
	case STOMP_CMD_ERROR:
		on_error_frame(w, c, f);
		return 1;
	default:
		break;
	}
	return 0;
}

/* ---- publishing ---- */

/* NATS: "PUB <subject> <len>\r\n<body>\r\n". */
static ssize_t nats_template(struct bench_worker *w, size_t cap)
{
	const struct bench_cfg *cfg = w->cfg;
	ssize_t n = bench_nats_pub_line(w->tpl, cap, cfg->topic, cfg->body);

	if (n < 0 || (size_t)n + cfg->body + 2 > cap)
		return 0;
	memcpy(w->tpl + n, w->body, cfg->body);
	memcpy(w->tpl + n + cfg->body, "\r\n", 2);
	w->tpl_body = (size_t)n;
	return n + cfg->body + 2;
}

static void build_template(struct bench_worker *w)
{
	const struct bench_cfg *cfg = w->cfg;
	struct stomp_header h[1] = { { { "destination", 11 }, { cfg->topic, strlen(cfg->topic) } } };
	size_t cap = cfg->body + 256 + strlen(cfg->topic) * 2;
	ssize_t n;

	w->body = hd_alloc(cfg->body);
	memset(w->body, 'x', cfg->body);
	w->tpl = hd_alloc(cap);
	if (cfg->nats) {
		w->tpl_len = (size_t)nats_template(w, cap);
		return;
	}
	n = stomp_encode_frame(w->tpl, cap, STOMP_V12, STOMP_CMD_SEND, h, 1, w->body, cfg->body, true);
	if (n <= 0)
		n = 0;
	w->tpl_len = (size_t)n;
	w->tpl_body = (size_t)n - 1 - cfg->body;	/* the body ends just before the NUL */
}

static void emit(struct bench_worker *w, struct bconn *c, uint64_t ts, uint64_t now)
{
	const struct bench_cfg *cfg = w->cfg;
	uint64_t seq = ++c->seq;

	if (cfg->workload == BENCH_QUEUES) {
		char dest[DEST_MAX], rid[24];
		int dlen = bench_cfg_queue_name(cfg, c->next_dest, dest, sizeof(dest));
		struct stomp_header h[2] = {
			{ { "destination", 11 }, { dest, (size_t)dlen } },
			{ { "receipt", 7 }, { rid, (size_t)snprintf(rid, sizeof(rid), "%" PRIu64, ts) } },
		};
		size_t cap = cfg->body + 128 + 2 * (size_t)dlen;
		char *p = bconn_out_reserve(c, cap);
		ssize_t n;

		if (++c->next_dest == cfg->users)
			c->next_dest = 0;
		stamp(w->body, w->run_id << 16 | c->idx, seq, ts, now);
		n = stomp_encode_frame(p, cap, STOMP_V12, STOMP_CMD_SEND, h, cfg->receipts ? 2 : 1,
				       w->body, cfg->body, true);
		if (n > 0)
			bconn_out_commit(c, (size_t)n);
	} else {
		char *p = bconn_out_reserve(c, w->tpl_len);

		memcpy(p, w->tpl, w->tpl_len);
		stamp(p + w->tpl_body, w->run_id << 16 | c->idx, seq, ts, now);
		bconn_out_commit(c, w->tpl_len);
	}
	w->published++;
	if (ts >= w->t_measure)
		w->m_published++;
}

static bool may_publish(const struct bench_worker *w, const struct bconn *c)
{
	return c->state == BC_READY && bconn_out_pending(c) < OUT_HIGH_BYTES &&
	       (!w->cfg->count || c->seq < w->cfg->count);
}

/* Saturating: as many messages as the window of in-flight deliveries allows (this worker's
 * publishers' share of it), at most --batch per publisher. */
static void publish_window(struct bench_worker *w)
{
	struct bench_sums s;
	uint64_t cap = w->cfg->window;
	uint64_t inflight;
	uint64_t budget;

	bench_shared_sum(w->sh, &s);
	inflight = s.published * w->fan > s.delivered ? s.published * w->fan - s.delivered : 0;
	w->blocked = inflight >= cap;
	if (w->blocked)
		return;
	budget = (cap - inflight) / w->fan * w->npubs / w->npub_total + 1;
	for (uint32_t i = 0; i < w->npubs && budget; i++) {
		struct bconn *c = w->pubs[i];
		uint64_t n = w->cfg->batch < budget ? w->cfg->batch : budget;
		uint64_t now = hd_now_ns();

		if (!may_publish(w, c))
			continue;
		for (uint64_t k = 0; k < n && may_publish(w, c); k++)
			emit(w, c, now, now);
		budget -= n;
		mark_dirty(w, c);
	}
}

/* Latency: every message whose scheduled time has come, stamped with that time. */
static void publish_paced(struct bench_worker *w)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < w->npubs; i++) {
		struct bconn *c = w->pubs[i];
		bool wrote = false;

		if (!c->sched_ns)
			c->sched_ns = w->t_run + w->interval_ns * c->idx / w->npub_total;
		while (c->sched_ns <= w->now && may_publish(w, c)) {
			emit(w, c, c->sched_ns, w->now);
			c->sched_ns += w->interval_ns;
			wrote = true;
		}
		if (wrote)
			mark_dirty(w, c);
		if (c->state == BC_READY && c->sched_ns < next)
			next = c->sched_ns;
	}
	w->next_due = next;
}

/* ---- the loop ---- */

static void start_connects(struct bench_worker *w)
{
	while (w->next_start < w->nconns && w->handshaking < w->handshake_cap) {
		struct bconn *c = &w->conns[w->next_start++];
		unsigned src = 1 + c->gid / w->cfg->conns_per_addr;
		int err = bconn_start(c, w->epfd, src);

		w->handshaking++;
		w->open++;
		if (err) {
			char why[96];

			snprintf(why, sizeof(why), "connect from 127.0.0.%u: %s", src, strerror(-err));
			c->state = BC_TCP;
			fail(w, c, why);
		}
	}
}

static void flush_dirty(struct bench_worker *w)
{
	while (w->dirty) {
		struct bconn *c = w->dirty;
		int err;

		w->dirty = c->dirty_next;
		c->dirty = false;
		if (c->state == BC_DEAD)
			continue;
		err = bconn_flush(c, w->epfd);
		if (err)
			fail(w, c, strerror(-err));
	}
}

#define STORE(field) atomic_store_explicit(&w->st->field, w->field, memory_order_relaxed)

static void store_stats(struct bench_worker *w)
{
	STORE(published);
	STORE(delivered);
	STORE(m_published);
	STORE(m_delivered);
	STORE(order_errors);
	STORE(acks);
	STORE(receipts);
	STORE(connected);
	STORE(ready);
	STORE(stale);
	STORE(open);
}

static void handle(struct bench_worker *w, struct bconn *c, uint32_t events)
{
	const char *why = NULL;

	if (c->state == BC_DEAD)
		return;
	if (c->state == BC_TCP) {
		int err = bconn_connected(c, w->cfg);

		if (err) {
			fail(w, c, strerror(-err));
			return;
		}
		mark_dirty(w, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		w->now_fresh = false;
		if (bconn_read(c, &w->rb, on_frame, w, &why) < 0 && c->state != BC_DEAD)
			fail(w, c, why ? why : "read failed");
		if (c->state == BC_DEAD)
			return;
		if (bconn_has_output(c))
			mark_dirty(w, c);	/* CONNECT after the 101, a pong, ACKs */
	}
	if ((events & EPOLLOUT) && !c->dirty && bconn_flush(c, w->epfd))
		fail(w, c, "write failed");
}

/* The closing frame: DISCONNECT with a receipt, or for NATS a PING (its PONG is the
 * receipt; NATS has no goodbye). */
static ssize_t encode_goodbye(const struct bench_worker *w, char *p, size_t cap)
{
	static const struct stomp_header h[1] = { { { "receipt", 7 }, { "bye", 3 } } };

	if (w->cfg->nats) {
		memcpy(p, BENCH_NATS_PING_CMD, sizeof(BENCH_NATS_PING_CMD) - 1);
		return sizeof(BENCH_NATS_PING_CMD) - 1;
	}
	return stomp_encode_frame(p, cap, STOMP_V12, STOMP_CMD_DISCONNECT, h, 1, NULL, 0, false);
}

/* Ends every session politely: DISCONNECT with a receipt, so a server has processed every
 * ACK before the connection goes (an unacked message would be requeued for the next run). */
static void send_disconnects(struct bench_worker *w)
{
	w->closing = true;
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct bconn *c = &w->conns[i];
		char *p;
		ssize_t n;

		if (c->state == BC_IDLE || c->state == BC_DEAD)
			continue;
		if (c->state < BC_READY) {
			close_conn(w, c);
			continue;
		}
		p = bconn_out_reserve(c, 64);
		n = encode_goodbye(w, p, 64);
		if (n > 0)
			bconn_out_commit(c, (size_t)n);
		c->state = BC_CLOSING;
		mark_dirty(w, c);
	}
}

/* How long to wait in epoll: not at all while publishing flat out; until the next
 * scheduled message when paced; briefly otherwise, to see phase changes. */
static int64_t wait_ns(const struct bench_worker *w, int phase)
{
	if (phase == BENCH_PH_RUN && w->npubs) {
		if (bench_cfg_paced(w->cfg))
			return w->next_due == UINT64_MAX ? 2000000 :
			       w->next_due > w->now ? (int64_t)(w->next_due - w->now) : 0;
		return w->blocked ? 100000 : 0;
	}
	return phase == BENCH_PH_SETUP ? 1000000 : 5000000;
}

static void loop(struct bench_worker *w)
{
	struct epoll_event ev[MAX_EVENTS];

	for (;;) {
		int phase = atomic_load_explicit(&w->sh->phase, memory_order_acquire);
		int64_t wait;
		struct timespec ts;
		int n;

		if (phase >= BENCH_PH_DONE)
			break;
		w->now = hd_now_ns();
		if (phase >= BENCH_PH_RUN && !w->t_run) {
			w->t_run = atomic_load_explicit(&w->sh->t_run_ns, memory_order_relaxed);
			w->t_measure = atomic_load_explicit(&w->sh->t_measure_ns, memory_order_relaxed);
		}
		if (phase == BENCH_PH_CLOSE && !w->closing)
			send_disconnects(w);
		if (phase < BENCH_PH_CLOSE)
			start_connects(w);
		store_stats(w);
		if (phase == BENCH_PH_RUN && w->npubs) {
			if (bench_cfg_paced(w->cfg))
				publish_paced(w);
			else
				publish_window(w);
		}
		flush_dirty(w);
		store_stats(w);
		wait = wait_ns(w, phase);
		ts.tv_sec = wait / 1000000000;
		ts.tv_nsec = wait % 1000000000;
		n = epoll_pwait2(w->epfd, ev, MAX_EVENTS, &ts, NULL);
		for (int i = 0; i < n; i++)
			handle(w, ev[i].data.ptr, ev[i].events);
		flush_dirty(w);
	}
}

/* ---- threads ---- */

static void *worker_main(void *arg)
{
	struct bench_worker *w = arg;

	if (bench_cfg_paced(w->cfg))
		prctl(PR_SET_TIMERSLACK, 1000UL);	/* 1 us: pacing wants precise wake-ups */
	loop(w);
	store_stats(w);
	for (uint32_t i = 0; i < w->nconns; i++) {
		if (w->conns[i].state != BC_DEAD && w->conns[i].state != BC_IDLE)
			bconn_kill(&w->conns[i]);
		hd_free(w->conns[i].last_seq);
	}
	return NULL;
}

static void worker_init(struct bench_worker *w, const struct bench_cfg *cfg, struct bench_shared *sh,
			uint32_t tid, uint32_t lo, uint32_t hi, uint32_t stride)
{
	uint32_t npub = bench_cfg_npub(cfg);

	memset(w, 0, sizeof(*w));
	w->cfg = cfg;
	w->sh = sh;
	w->tid = tid;
	w->st = &sh->t[tid];
	w->npub_total = npub;
	w->fan = bench_cfg_fan(cfg);
	w->t_measure = UINT64_MAX;
	w->run_id = sh->run_id;
	w->handshake_cap = cfg->connect_concurrency / sh->nthreads;
	w->handshake_cap = w->handshake_cap ? w->handshake_cap : 1;
	if (bench_cfg_paced(cfg))
		w->interval_ns = (uint64_t)(1e9 * npub / cfg->rate);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->rb.cap = (1u << 20) + 4 * (size_t)cfg->body;
	w->rb.buf = hd_alloc(w->rb.cap);
	w->nconns = hi > lo ? (hi - lo + stride - 1) / stride : 0;
	w->conns = hd_calloc(w->nconns ? w->nconns : 1, sizeof(*w->conns));
	w->pubs = hd_calloc(w->nconns ? w->nconns : 1, sizeof(*w->pubs));
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct bconn *c = &w->conns[i];
		uint32_t gid = lo + i * stride;
		bool is_sub = gid >= npub;

		bconn_init(c, cfg, bench_cfg_target(cfg, is_sub, is_sub ? gid - npub : gid), gid);
		if (gid < npub) {
			c->role = BC_PUB;
			c->idx = gid;
			c->next_dest = cfg->users ? (uint32_t)((uint64_t)gid * cfg->users / npub) : 0;
			w->pubs[w->npubs++] = c;
		} else {
			c->role = BC_SUB;
			c->idx = gid - npub;
			if (npub)
				c->last_seq = hd_calloc(npub, sizeof(uint64_t));
		}
	}
	if (w->npubs)
		build_template(w);
}

static void worker_fini(struct bench_worker *w)
{
	close(w->epfd);
	hd_free(w->rb.buf);
	hd_free(w->conns);
	hd_free(w->pubs);
	hd_free(w->tpl);
	hd_free(w->body);
}

int bench_worker_run_process(const struct bench_cfg *cfg, struct bench_shared *sh, uint32_t proc,
			     uint32_t lo, uint32_t hi)
{
	uint32_t nt = cfg->threads;
	struct bench_worker *w = hd_calloc(nt, sizeof(*w));
	uint32_t started = 0;
	int rc = 0;

	hexval_init();
	for (uint32_t i = 0; i < nt; i++)
		worker_init(&w[i], cfg, sh, proc * nt + i, lo + i, hi, nt);
	for (; started < nt; started++) {
		if (pthread_create(&w[started].thread, NULL, worker_main, &w[started])) {
			rc = -1;
			atomic_store(&sh->phase, BENCH_PH_ABORT);
			break;
		}
	}
	for (uint32_t i = 0; i < started; i++)
		pthread_join(w[i].thread, NULL);
	for (uint32_t i = 0; i < nt; i++)
		worker_fini(&w[i]);
	hd_free(w);
	return rc;
}
