/*
 * core/wsconn.c - WebSocket transport for sessions (RFC 6455; RabbitMQ Web-STOMP's shape:
 * ws://host:15674/ws, subprotocols v10/v11/v12.stomp or none, every server frame one
 * message). The STOMP bytes of client messages form one stream: a frame may span several
 * WebSocket messages and one message may hold several frames, so unwrapped payload goes to
 * the session parser as it comes; only an incomplete STOMP frame is copied (into srx).
 */
#include "core/wsconn.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/hmsg.h"
#include "core/session.h"
#include "core/shard.h"
#include "core/webpage.h"
#include "net/loop.h"
#include "proto/http_upgrade.h"
#include "proto/ws_frame.h"

#include <string.h>

enum ws_phase { WS_PHASE_HTTP = 0, WS_PHASE_OPEN, WS_PHASE_CLOSED };

struct wsconn {
	uint8_t phase;
	struct http_upgrade_parser hp;
	struct ws_decoder dec;
	char *srx;		/* STOMP bytes unwrapped, not yet consumed by the parser */
	uint32_t srx_len;
	uint32_t srx_cap;
};

static _Thread_local struct http_request http_req;	/* ~2.5 KiB: one per shard */

struct wsconn *wsconn_create(const struct http_upgrade_config *cfg)
{
	struct wsconn *ws = hd_calloc(1, sizeof(*ws));

	ws->phase = WS_PHASE_HTTP;
	http_upgrade_parser_init(&ws->hp, cfg);
	return ws;
}

/* A WebSocket message carries one STOMP frame plus some slack (EOL heart-beats). */
static uint64_t ws_max_message(uint64_t max_frame_bytes)
{
	return max_frame_bytes + 1024;
}

void wsconn_set_max_frame(struct wsconn *ws, uint64_t max_frame_bytes)
{
	/* the decoder exists once the handshake is done; before, the new value is read then */
	if (ws->phase == WS_PHASE_OPEN)
		ws->dec.max_message = ws_max_message(max_frame_bytes);
}

void wsconn_destroy(struct wsconn *ws)
{
	hd_free(ws->srx);
	hd_free(ws);
}

static void write_frame_of(struct net_loop *l, struct net_conn *c, enum ws_opcode op,
			   const char *buf, size_t len)
{
	uint8_t hdr[WS_HEADER_MAX];
	ssize_t hl = ws_encode_header(hdr, sizeof(hdr), op, true, len, NULL);
	struct net_out *o;

	HD_ASSERT(hl > 0);
	if ((size_t)hl + len <= NET_OUT_HEAD_CAP) {
		o = net_conn_out_reserve(l, c);
		memcpy(o->head, hdr, (size_t)hl);
		memcpy(o->head + hl, buf, len);
		o->head_len = (uint16_t)(hl + (ssize_t)len);
		net_conn_out_commit(l, c, o);
		return;
	}
	/* the WebSocket header and its payload are one message: never cut between them */
	net_conn_write_copy(l, c, (const char *)hdr, (size_t)hl)->flags |= NET_OUT_CONTINUES;
	net_conn_write_copy(l, c, buf, len);
}

void wsconn_write_text(struct net_loop *l, struct net_conn *c, const char *buf, size_t len)
{
	write_frame_of(l, c, WS_OP_TEXT, buf, len);
}

size_t wsconn_prefix_head(char *head, size_t room, size_t head_len, const struct hmsg *m,
			  size_t tail_len)
{
	uint8_t hdr[WS_HEADER_MAX];
	enum ws_opcode op = (m->flags & HMSG_NOT_UTF8) ? WS_OP_BINARY : WS_OP_TEXT;
	ssize_t hl = ws_encode_header(hdr, sizeof(hdr), op, true, head_len + tail_len, NULL);

	HD_ASSERT(hl > 0 && (size_t)hl <= room);
	memcpy(head, hdr, (size_t)hl);
	memmove(head + hl, head + room, head_len);
	return (size_t)hl + head_len;
}

void wsconn_send_close(struct net_loop *l, struct wsconn *ws, struct net_conn *c, uint16_t code)
{
	uint8_t frame[WS_HEADER_MAX + 2];
	ssize_t n;

	if (ws->phase != WS_PHASE_OPEN)
		return;
	n = ws_encode_close(frame, sizeof(frame), code, NULL, 0);
	if (n > 0)
		net_conn_write_copy(l, c, (const char *)frame, (size_t)n);
	ws->phase = WS_PHASE_CLOSED;
}

static void close_with(struct shard *sh, struct wsconn *ws, struct net_conn *c, struct session *s,
		       uint16_t code, const char *reason)
{
	uint8_t frame[WS_CONTROL_MAX + WS_HEADER_MAX];
	ssize_t n = ws_encode_close(frame, sizeof(frame), code, reason, reason ? strlen(reason) : 0);

	if (n > 0)
		net_conn_write_copy(&sh->loop, c, (const char *)frame, (size_t)n);
	ws->phase = WS_PHASE_CLOSED;
	session_ws_closed(sh, s, false);
}

static void http_reply(struct shard *sh, struct net_conn *c, struct session *s, const char *buf,
		       ssize_t n, struct wsconn *ws)
{
	net_conn_write_copy(&sh->loop, c, buf, (size_t)n);
	ws->phase = WS_PHASE_CLOSED;
	session_ws_closed(sh, s, false);
}

bool wsconn_http_timeout(struct shard *sh, struct wsconn *ws, struct net_conn *c,
			 struct session *s)
{
	char out[256];
	ssize_t w;

	if (ws->phase != WS_PHASE_HTTP)
		return false;
	w = http_response_error(out, sizeof(out), 408, "The WebSocket upgrade request did not "
				"arrive in time");
	HD_ASSERT(w > 0);
	http_reply(sh, c, s, out, w, ws);
	return true;
}

/* The HTTP phase: returns bytes consumed (the head), 0 for more, or len when done. */
static size_t http_input(struct shard *sh, struct wsconn *ws, struct net_conn *c, const char *buf,
			 size_t len, struct session *s)
{
	char out[1024];
	ssize_t n = http_upgrade_parse(&ws->hp, buf, len, &http_req);
	ssize_t w;

	if (n == 0)
		return 0;
	if (n < 0) {
		w = http_response_error(out, sizeof(out), (int)-n, ws->hp.reason);
		HD_ASSERT(w > 0);
		http_reply(sh, c, s, out, w, ws);
		return len;
	}
	if (http_req.kind == HTTP_KIND_PLAIN_GET) {
		if (http_req.path.len == 1 && http_req.path.ptr[0] == '/') {
			w = http_response_200(out, sizeof(out), "text/html; charset=utf-8", NULL,
					      herald_page_len);
			HD_ASSERT(w > 0);
			net_conn_write_copy(&sh->loop, c, out, (size_t)w);
			net_conn_write_copy(&sh->loop, c, herald_page_html, herald_page_len);
			ws->phase = WS_PHASE_CLOSED;
			session_ws_closed(sh, s, false);
			return len;
		}
		w = http_response_error(out, sizeof(out), 404, "Not Found: the STOMP endpoint is the "
				       "WebSocket path; the page is /");
		HD_ASSERT(w > 0);
		http_reply(sh, c, s, out, w, ws);
		return len;
	}
	w = http_response_101(out, sizeof(out), &http_req);
	if (w < 0) {
		w = http_response_error(out, sizeof(out), 500, "handshake failed");
		http_reply(sh, c, s, out, w, ws);
		return len;
	}
	net_conn_write_copy(&sh->loop, c, out, (size_t)w);
	ws->phase = WS_PHASE_OPEN;
	ws_decoder_init(&ws->dec, ws_max_message(sh->limits.max_frame_bytes));
	return (size_t)n;
}

static void srx_append(struct wsconn *ws, const uint8_t *p, size_t len)
{
	hd_bytes_append(&ws->srx, &ws->srx_len, &ws->srx_cap, p, len);
}

/* STOMP bytes out of a data frame: straight to the parser unless a partial frame waits. */
static void stomp_feed(struct shard *sh, struct wsconn *ws, struct session *s, const uint8_t *p,
		       size_t len)
{
	size_t used;

	if (!ws->srx_len && len) {
		used = session_stomp_input(sh, s, (const char *)p, len);
		if (used < len)
			srx_append(ws, p + used, len - used);
		return;
	}
	if (len)
		srx_append(ws, p, len);
	if (!ws->srx_len)
		return;
	used = session_stomp_input(sh, s, ws->srx, ws->srx_len);
	memmove(ws->srx, ws->srx + used, ws->srx_len - used);
	ws->srx_len -= (uint32_t)used;
	if (!ws->srx_len && ws->srx_cap > 65536) {
		hd_free(ws->srx);
		ws->srx = NULL;
		ws->srx_cap = 0;
	}
}

size_t wsconn_input(struct shard *sh, struct wsconn *ws, struct net_conn *c, const char *buf,
		    size_t len, struct session *s)
{
	uint8_t *p = (uint8_t *)buf;	/* net's receive memory is writable: unmask in place */
	size_t off = 0;

	if (ws->phase == WS_PHASE_HTTP) {
		off = http_input(sh, ws, c, buf, len, s);
		if (ws->phase != WS_PHASE_OPEN)
			return off;
	}
	if (!len)
		stomp_feed(sh, ws, s, NULL, 0);
	while (off < len && ws->phase == WS_PHASE_OPEN) {
		struct ws_event ev;
		ssize_t n;
		uint8_t ctl[WS_CONTROL_MAX + WS_HEADER_MAX];
		ssize_t cn;

		if (session_output_full(sh, s))
			return off;	/* the rest is offered again once our output drains */
		n = ws_decode(&ws->dec, p + off, len - off, &ev);
		if (n < 0) {
			hd_log_conn(HD_LOG_INFO, c->id, "websocket close %u: %s", ws->dec.close_code,
				    ws->dec.reason);
			close_with(sh, ws, c, s, ws->dec.close_code, ws->dec.reason);
			return len;
		}
		off += (size_t)n;
		switch (ev.kind) {
		case WS_EV_NONE:
		case WS_EV_PONG:
			break;
		case WS_EV_DATA:
			stomp_feed(sh, ws, s, ev.data, ev.len);
			break;
		case WS_EV_PING:
			cn = ws_encode_pong(ctl, sizeof(ctl), ev.data, ev.len);
			if (cn > 0)
				net_conn_write_copy(&sh->loop, c, (const char *)ctl, (size_t)cn);
			break;
		case WS_EV_CLOSE:
			close_with(sh, ws, c, s, ev.close_code == WS_CLOSE_NO_STATUS ? 0 : ev.close_code,
				   NULL);
			return len;
		}
	}
	return ws->phase == WS_PHASE_OPEN ? len : off;
}
