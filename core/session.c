/*
 * core/session.c - one STOMP session's connection life: accept, input (frames parsed one at a
 * time and dispatched by the command table below), pausing and resuming reads, close.
 * Each command's handling lives in a file named after its concern: connect.c, publish.c,
 * subscription.c, ack.c, transaction.c; receipts and ERRORs in receipt.c, MESSAGEs in
 * delivery.c. Spec: stomp.github.io/stomp-specification-1.2.html; RabbitMQ's STOMP plugin
 * where the spec leaves room (shared/RABBITMQ-REFERENCE.md).
 *
 * Operations go out as xmsgs to a destination's owner shard (itself included); a receipt
 * that must wait for an owner to apply earlier ones asks it with XMSG_SYNC.
 *
 * Thread: the shard owning the connection. A session is freed in session_on_close.
 */
#include "core/session.h"

#include "core/ack.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/config.h"
#include "core/connect.h"
#include "core/message.h"
#include "core/publish.h"
#include "core/receipt.h"
#include "core/session_state.h"
#include "core/shard.h"
#include "core/subscription.h"
#include "core/transaction.h"
#include "core/wsconn.h"
#include "net/loop.h"
#include "proto/stomp_encode.h"
#include "proto/ws_frame.h"

#include <stdio.h>
#include <string.h>

#define PARSE_SCRATCH_SLACK 65536	/* parse scratch beyond 4 header lines' worth */
#define ENCODE_SCRATCH 65536		/* server frames (ERROR, RECEIPT, CONNECTED) */

static size_t parse_scratch_need(const struct hd_limits *limits)
{
	return (size_t)limits->max_header_line * 4 + PARSE_SCRATCH_SLACK;
}

void session_shard_init(struct session_shard *ss, const struct hd_limits *limits)
{
	memset(ss, 0, sizeof(*ss));
	local_table_init(&ss->local);
	ss->frame = hd_alloc(sizeof(*ss->frame));
	ss->parse_scratch_cap = parse_scratch_need(limits);
	ss->parse_scratch = hd_alloc(ss->parse_scratch_cap);
	ss->header_set = message_header_set_create();
	ss->enc_cap = ENCODE_SCRATCH;
	ss->enc_buf = hd_alloc(ss->enc_cap);
}

void session_shard_fini(struct session_shard *ss)
{
	local_table_fini(&ss->local);
	hd_free(ss->frame);
	hd_free(ss->parse_scratch);
	hd_free(ss->header_set);
	hd_free(ss->enc_buf);
	hd_free(ss->closing);
	hd_free(ss->retry);
	hd_free(ss->key_buf);
	hd_free(ss->name_buf);
}

void session_write_bytes(struct shard *sh, struct session *s, const char *buf, size_t len)
{
	if (s->ws)
		wsconn_write_text(&sh->loop, s->conn, buf, len);
	else
		net_conn_write_copy(&sh->loop, s->conn, buf, len);
	s->last_tx_ms = sh->now_ms;
}

void session_write_frame(struct shard *sh, struct session *s, enum stomp_cmd cmd,
			const struct stomp_header *h, size_t nh, const char *body, size_t body_len)
{
	ssize_t n = stomp_encode_frame(sh->sessions.enc_buf, sh->sessions.enc_cap, s->version, cmd, h, nh, body,
				       body_len, body_len > 0);

	HD_ASSERT(n > 0);
	session_write_bytes(sh, s, sh->sessions.enc_buf, (size_t)n);
}

/* Marks s for closing. Inside session_on_data the close happens when it returns; elsewhere
 * the shard closes it after the current batch of xmsgs or timers (session_reap_closing),
 * so no caller ever finds its session freed under its feet mid-loop. */
void session_close_later(struct shard *sh, struct session *s, enum close_mode mode)
{
	if (s->close_mode)
		return;
	s->close_mode = (uint8_t)mode;
	if (s->ws && mode == CLOSE_AFTER_FLUSH)
		/* 1012 "service restart" on shutdown (reconnect: to this address, or another
		 * node of the cluster), else a normal closure after the STOMP frames */
		wsconn_send_close(&sh->loop, s->ws, s->conn,
				  sh->stopping ? WS_CLOSE_SERVICE_RESTART : 1000);
	if (s->in_data)
		return;
	if (sh->sessions.nclosing == sh->sessions.closing_cap) {
		sh->sessions.closing_cap = sh->sessions.closing_cap ? sh->sessions.closing_cap * 2 : 16;
		sh->sessions.closing = hd_realloc(sh->sessions.closing, sh->sessions.closing_cap * sizeof(*sh->sessions.closing));
	}
	sh->sessions.closing[sh->sessions.nclosing++] = session_conn_ref(s);
}

void session_reap_closing(struct shard *sh)
{
	for (uint32_t i = 0; i < sh->sessions.nclosing; i++) {
		struct net_conn *c = net_loop_conn(&sh->loop, (uint32_t)(sh->sessions.closing[i] >> 32),
						   (uint32_t)sh->sessions.closing[i]);
		struct session *s = c ? c->user : NULL;

		if (!s)
			continue;
		if (s->close_mode == CLOSE_NOW)
			net_conn_close(&sh->loop, c);
		else
			net_conn_close_after_flush(&sh->loop, c);
	}
	sh->sessions.nclosing = 0;
}

struct session *session_by_ref(struct shard *sh, uint64_t ref)
{
	struct net_conn *c = net_loop_conn(&sh->loop, (uint32_t)(ref >> 32), (uint32_t)ref);

	return c ? c->user : NULL;
}

struct session *session_by_key(struct shard *sh, uint64_t key)
{
	uint32_t slot = xmsg_key_slot(key);
	struct net_conn *c = slot < sh->loop.nconns_cap ? sh->loop.conns[slot] : NULL;
	struct session *s;

	/* keys carry 12 bits of the generation: enough to tell a reused slot */
	if (!c || (c->gen & XMSG_KEY_GEN_MASK) != xmsg_key_gen(key) || c->state != NET_CONN_OPEN)
		return NULL;
	s = c->user;
	return s && !s->close_mode ? s : NULL;
}

/* Is the session allowed to act on d? On a denial: ERROR naming it, then close. */
bool session_authorized(struct shard *sh, struct session *s, const struct stomp_frame *f,
		       enum acl_action a, const struct stomp_view *d)
{
	struct auth_verdict v;
	char detail[400];

	if (auth_authorize(sh->auth_db, s->id, a, d->ptr, d->len, &v))
		return true;
	auth_verdict_format(&v, s->id, a, d->ptr, d->len, detail, sizeof(detail));
	hd_log_conn(HD_LOG_INFO, s->conn->id, "denied: %s", detail);
	session_fail_frame(sh, s, f, "Access refused", detail);
	return false;
}

static void on_disconnect(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	s->disconnecting = true;
	if (receipt_begin(s, f, 0, true)) {
		receipt_flush(sh, s);	/* after every earlier receipt; then close */
		if (!s->close_mode)
			net_conn_pause_recv(&sh->loop, s->conn);
		return;
	}
	session_close_later(sh, s, CLOSE_AFTER_FLUSH);
}

typedef void (*frame_handler)(struct shard *sh, struct session *s, const struct stomp_frame *f);

struct command {
	frame_handler handler;
	bool before_connect;	/* allowed before CONNECT (only CONNECT and STOMP) */
};

static const struct command commands[STOMP_CMD_COUNT] = {
	[STOMP_CMD_CONNECT] = { connect_on_connect, true },
	[STOMP_CMD_STOMP] = { connect_on_connect, true },
	[STOMP_CMD_SEND] = { publish_on_send, false },
	[STOMP_CMD_SUBSCRIBE] = { sub_on_subscribe, false },
	[STOMP_CMD_UNSUBSCRIBE] = { sub_on_unsubscribe, false },
	[STOMP_CMD_ACK] = { ack_on_ack, false },
	[STOMP_CMD_NACK] = { ack_on_nack, false },
	[STOMP_CMD_BEGIN] = { tx_on_begin, false },
	[STOMP_CMD_COMMIT] = { tx_on_commit, false },
	[STOMP_CMD_ABORT] = { tx_on_abort, false },
	[STOMP_CMD_DISCONNECT] = { on_disconnect, false },
};

static void handle_frame(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct command *cmd = &commands[f->cmd];

	sh->stats.frames_in++;
	if (f->cmd == STOMP_CMD_UNKNOWN) {
		session_fail_frame(sh, s, f, "unknown command",
			   "The frame's command is not a STOMP client command");
		return;
	}
	if (!cmd->handler) {
		char detail[96];

		snprintf(detail, sizeof(detail), "%s is a server frame; a client may not send it",
			 stomp_cmd_name(f->cmd));
		session_fail_frame(sh, s, f, "unexpected frame", detail);
		return;
	}
	if (s->state == SESSION_AWAIT_CONNECT && !cmd->before_connect) {
		session_fail_frame(sh, s, f, "not connected", "The first frame must be CONNECT or STOMP");
		return;
	}
	if (s->version == STOMP_V10 && f->cmd == STOMP_CMD_NACK) {
		session_fail_frame(sh, s, f, "unexpected frame", "NACK does not exist in STOMP 1.0");
		return;
	}
	cmd->handler(sh, s, f);
}

static struct stomp_limits stomp_limits_of(const struct hd_limits *lim)
{
	return (struct stomp_limits){
		.max_frame = lim->max_frame_bytes,
		.max_headers = HD_MIN(lim->max_headers, STOMP_HEADERS_CAP),
		.max_header_line = lim->max_header_line,
		.max_body = lim->max_body_bytes,
		.max_command = 16,
	};
}

void session_shard_limits_changed(struct shard *sh)
{
	struct session_shard *ss = &sh->sessions;
	size_t need = parse_scratch_need(&sh->limits);

	if (need > ss->parse_scratch_cap) {
		char *grown = hd_alloc(need);

		/* every parser points at the shard's scratch: move them all before freeing it
		 * (each keeps its own limits until it takes the new ones between frames) */
		for (uint32_t i = 0; i < sh->loop.nconns_cap; i++) {
			struct net_conn *nc = sh->loop.conns[i];
			struct session *s = nc ? nc->user : NULL;

			if (s)
				stomp_parser_set_limits(&s->parser, &s->parser.limits, grown, need);
		}
		hd_free(ss->parse_scratch);
		ss->parse_scratch = grown;
		ss->parse_scratch_cap = need;
	}
	ss->limits_gen++;
}

/* A session takes the shard's limits after a reload between two frames, so one frame is
 * never judged by two sets of limits. */
static void take_limits(struct shard *sh, struct session *s)
{
	struct stomp_limits sl = stomp_limits_of(&sh->limits);

	stomp_parser_set_limits(&s->parser, &sl, sh->sessions.parse_scratch,
				sh->sessions.parse_scratch_cap);
	if (s->ws)
		wsconn_set_max_frame(s->ws, sh->limits.max_frame_bytes);
	s->limits_gen = sh->sessions.limits_gen;
}

void session_on_accept(struct shard *sh, struct net_conn *c)
{
	struct session *s = hd_calloc(1, sizeof(*s));
	const struct hd_limits *lim = &sh->limits;
	struct stomp_limits sl = stomp_limits_of(lim);

	s->conn = c;
	c->user = s;
	s->version = STOMP_V12;
	stomp_parser_init(&s->parser, &sl, sh->sessions.parse_scratch, sh->sessions.parse_scratch_cap);
	s->limits_gen = sh->sessions.limits_gen;
	s->parser.report_unknown = true;
	s->last_rx_ms = s->last_tx_ms = s->accepted_ms = sh->now_ms;
	s->connect_deadline_ms = sh->now_ms + lim->connect_timeout_ms;
	sh->stats.connections++;
	sh->stats.connections_total++;
	session_hb_list_add(sh, s);
	if (atomic_fetch_add_explicit(&shard_total_connections, 1, memory_order_relaxed) >=
	    lim->max_connections) {
		session_fail(sh, s, "too many connections", "The server reached max-connections", NULL);
		return;
	}
	if (c->kind == CONN_KIND_WS) {
		s->ws = wsconn_create(&sh->http_cfg);
		sh->stats.connections_ws++;
	}
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
				sh->sessions.npaused++;
			s->paused = true;
			break;
		}
		if (s->limits_gen != sh->sessions.limits_gen &&
		    stomp_parser_is_between_frames(&s->parser))
			take_limits(sh, s);
		n = stomp_parse(&s->parser, buf + off, len - off, sh->sessions.frame);
		if (n == 0)
			break;
		if (n < 0) {
			session_fail_after_receipts(sh, s, s->parser.reason, s->parser.reason, NULL);
			break;
		}
		off += (size_t)n;
		if (sh->sessions.frame->cmd != STOMP_CMD_NONE)
			handle_frame(sh, s, sh->sessions.frame);
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
	session_close_later(sh, s, now ? CLOSE_NOW : CLOSE_AFTER_FLUSH);
}

void session_on_close(struct shard *sh, struct net_conn *c)
{
	struct session *s = c->user;

	if (!s)
		return;
	while (s->nsubs)
		sub_remove(sh, s, s->nsubs - 1);
	hd_free(s->subs);
	tx_abort_all(s);	/* a closed connection aborts its transactions */
	receipt_free_all(s);
	session_hb_list_remove(sh, s);
	if (s->paused)
		sh->sessions.npaused--;
	auth_identity_destroy(s->id);
	connect_pending_free(s);
	if (s->ws) {
		wsconn_destroy(s->ws);
		sh->stats.connections_ws--;
	}
	atomic_fetch_sub_explicit(&shard_total_connections, 1, memory_order_relaxed);
	sh->stats.connections--;
	c->user = NULL;
	hd_free(s);
}

/* Reading stopped (login decided, backlog gone): take what the client sent meanwhile. */
void session_read_again(struct shard *sh, struct session *s)
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
	for (uint32_t i = 0; sh->sessions.npaused && !sh->nparked && i < sh->loop.nconns_cap; i++) {
		struct net_conn *c = sh->loop.conns[i];
		struct session *s = c ? c->user : NULL;

		if (s && s->paused && c->state == NET_CONN_OPEN) {
			s->paused = false;
			sh->sessions.npaused--;
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
			session_fail(sh, c->user, "server shutting down",
				     "This node is stopping (a restart or a drain): reconnect, to this "
				     "address or to another node of the cluster; queues and topics are "
				     "the same there", NULL);
	}
}
