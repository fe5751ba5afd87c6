/*
 * core/connect.c - CONNECT/STOMP, the login and heart-beats (see connect.h). A password
 * check (argon2id, tens of ms) goes to the auth thread while the session stops reading;
 * JWTs and recently verified credentials are checked right here.
 *
 * Thread: the session's shard.
 */
#include "core/connect.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"
#include "core/receipt.h"
#include "core/session_state.h"
#include "core/shard.h"
#include "core/wsconn.h"
#include "net/loop.h"
#include "net/tls.h"
#include "proto/stomp_encode.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void session_hb_list_add(struct shard *sh, struct session *s)
{
	if (s->on_hb_list)
		return;
	s->on_hb_list = true;
	s->hb_prev = NULL;
	s->hb_next = sh->sessions.hb_list;
	if (sh->sessions.hb_list)
		sh->sessions.hb_list->hb_prev = s;
	sh->sessions.hb_list = s;
}

void session_hb_list_remove(struct shard *sh, struct session *s)
{
	if (!s->on_hb_list)
		return;
	s->on_hb_list = false;
	if (s->hb_prev)
		s->hb_prev->hb_next = s->hb_next;
	else
		sh->sessions.hb_list = s->hb_next;
	if (s->hb_next)
		s->hb_next->hb_prev = s->hb_prev;
}

static void connect_decided(struct shard *sh, struct session *s, struct auth_result *r);

void connect_pending_free(struct session *s)
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
		.cert_name = sh->cfg->tls_cert_login ? net_conn_tls_peer_name(s->conn) : NULL,
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
	uint32_t min = sh->limits.heartbeat_min_ms;
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
	session_hb_list_remove(sh, s);
	if (s->hb_send_ms || s->hb_recv_ms || s->expires_ms)
		session_hb_list_add(sh, s);
	snprintf(hb, sizeof(hb), "%u,%u", s->hb_send_ms, s->hb_recv_ms);
	snprintf(sess, sizeof(sess), "session-%08x-%u-%llu", shard_node_epoch, sh->id,
		 (unsigned long long)s->conn->id);
	{
		struct stomp_header h[5] = { HEADER_LIT("version", stomp_version_name(s->version)),
					     HEADER_LIT("heart-beat", hb), HEADER_LIT("server", "Herald/" HERALD_VERSION),
					     HEADER_LIT("session", sess), HEADER_LIT("user-name", s->user) };

		session_write_frame(sh, s, STOMP_CMD_CONNECTED, h, 5, NULL, 0);
	}
	if (pc->has_receipt) {
		struct stomp_header h[1] = { HEADER_LIT("receipt-id", pc->receipt) };

		session_write_frame(sh, s, STOMP_CMD_RECEIPT, h, 1, NULL, 0);
	}
	connect_pending_free(s);
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
		/* from now, not the loop's clock of this turn (which a busy turn makes stale):
		 * the hold-back is never shorter than the delay */
		s->deny_at_ms = hd_now_ms() + r->delay_ms;
		return;
	case AUTH_RETRY:
		s->retry_at_ms = sh->now_ms + HD_MAX(r->delay_ms, 1u);
		return;
	case AUTH_SLOW: {
		struct xmsg m = { .kind = XMSG_AUTH_JOB, .ptr = r->job, .a = session_conn_ref(s) };

		auth_job_set_cookie(r->job, session_conn_ref(s));
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

void connect_on_connect(struct shard *sh, struct session *s, const struct stomp_frame *f)
{
	const struct stomp_view *host = stomp_frame_header(f, "host");
	const struct stomp_view *login = stomp_frame_header(f, "login");
	const struct stomp_view *pass = stomp_frame_header(f, "passcode");
	const struct stomp_view *receipt = receipt_header(f);
	uint32_t cx, cy;

	if (s->state != SESSION_AWAIT_CONNECT || s->pc) {
		session_fail_frame(sh, s, f, "already connected", "CONNECT was sent twice");
		return;
	}
	if (pick_version(stomp_frame_header(f, "accept-version"), &s->version)) {
		struct stomp_header h[4] = { HEADER_LIT("message", "unsupported protocol version"),
					     HEADER_LIT("version", "1.0,1.1,1.2"), HEADER_LIT("content-type", "text/plain") };
		const char *body = "Supported protocol versions are 1.0,1.1,1.2";
		size_t nh = 3;

		if (receipt)
			h[nh++] = (struct stomp_header){ { "receipt-id", 10 }, *receipt };
		s->version = STOMP_V12;
		session_write_frame(sh, s, STOMP_CMD_ERROR, h, nh, body, strlen(body));
		session_close_later(sh, s, CLOSE_AFTER_FLUSH);
		return;
	}
	stomp_parser_set_version(&s->parser, s->version);
	if (parse_heartbeat(stomp_frame_header(f, "heart-beat"), &cx, &cy)) {
		session_fail_frame(sh, s, f, "invalid heart-beat header", "heart-beat must be '<cx>,<cy>'");
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

void session_tick(struct shard *sh, uint64_t now_ms)
{
	for (struct session *s = sh->sessions.hb_list, *next; s; s = next) {
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
			session_write_bytes(sh, s, "\n", 1);
	}
}
