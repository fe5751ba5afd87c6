/*
 * cluster/admin.c - status JSON and the minimal HTTP around it (see admin.h). Called on the
 * cluster thread, which owns the swim instance it reads.
 */
#include "cluster/admin.h"

#include "cluster/swim.h"
#include "core/base/hd_alloc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQ_MAX 8192	/* request head limit, bytes */

void admin_buf_free(struct admin_buf *b)
{
	hd_free(b->ptr);
	memset(b, 0, sizeof(*b));
}

static void reserve(struct admin_buf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	while (b->len + more + 1 > b->cap)
		b->cap = b->cap ? b->cap * 2 : 1024;
	b->ptr = hd_realloc(b->ptr, b->cap);
}

static void HD_PRINTF(2, 3) append(struct admin_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Names are printable ASCII (wire.c checks), but escape as if they were not. */
static void append_json_str(struct admin_buf *b, const char *s)
{
	append(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			append(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			append(b, "\\u%04x", c);
		else
			append(b, "%c", c);
	}
	append(b, "\"");
}

static int by_name(const void *a, const void *b)
{
	const struct swim_member *x = *(const struct swim_member *const *)a;
	const struct swim_member *y = *(const struct swim_member *const *)b;

	return strcmp(x->name, y->name);
}

static uint64_t last_seen_ms(const struct swim *s, const struct swim_member *m, uint64_t now_ms)
{
	uint64_t t = m->last_contact_ms ? m->last_contact_ms : m->state_change_ms;

	if (m == swim_self(s))
		return 0;
	return now_ms > t ? now_ms - t : 0;
}

static void render_member(const struct swim *s, const struct swim_member *m, uint64_t now_ms,
			  const struct admin_local *local, struct admin_buf *out)
{
	struct node_meta meta;
	char addr[64];

	meta_decode(m->meta, m->meta_len, &meta);
	if (m == swim_self(s) && local && local->self_load) {
		meta.connections = local->self_load->connections;
		meta.subscriptions = local->self_load->subscriptions;
		meta.msgs_per_s = local->self_load->msgs_per_s;
	}
	append(out, "{\"name\": ");
	append_json_str(out, m->name);
	append(out, ", \"address\": \"%s\", \"state\": \"%s\", \"incarnation\": %u, "
	       "\"last_seen_ms\": %" PRIu64 ", \"connections\": %" PRIu64 ", "
	       "\"subscriptions\": %" PRIu64 ", \"msgs_per_s\": %" PRIu64 ", \"client_address\": ",
	       wire_addr_format(&m->addr, addr, sizeof(addr)), swim_state_name(m->state),
	       m->incarnation, last_seen_ms(s, m, now_ms), meta.connections, meta.subscriptions,
	       meta.msgs_per_s);
	append_json_str(out, meta.addr);
	append(out, ", \"stomp_port\": %u, \"ws_port\": %u, \"shards\": %u, \"route_port\": %u, "
	       "\"admin_port\": %u", meta.stomp_port, meta.ws_port, meta.nshards, meta.route_port,
	       meta.admin_port);
	if (m != swim_self(s) && local && local->links) {
		struct admin_link l = { .state = "down" };

		if (!local->links->get(local->links->arg, m->name, &l))
			l = (struct admin_link){ .state = "down" };
		append(out, ", \"link\": \"%s\", \"link_msgs_out\": %" PRIu64
		       ", \"link_bytes_out\": %" PRIu64 ", \"link_msgs_in\": %" PRIu64
		       ", \"link_bytes_in\": %" PRIu64, l.state, l.msgs_out, l.bytes_out, l.msgs_in,
		       l.bytes_in);
	}
	append(out, "}");
}

/* Gossip counters: how much went out and in, and what was dropped and why. */
static void render_stats(const struct swim_stats *st, struct admin_buf *out)
{
	append(out, "\"gossip\": {\"packets_in\": %" PRIu64 ", \"bytes_in\": %" PRIu64
	       ", \"packets_out\": %" PRIu64 ", \"bytes_out\": %" PRIu64
	       ", \"dropped_other_cluster\": %" PRIu64 ", \"dropped_bad_mac\": %" PRIu64
	       ", \"dropped_malformed\": %" PRIu64 ", \"dropped_version\": %" PRIu64
	       ", \"dropped_not_gossip\": %" PRIu64 ", \"probes\": %" PRIu64
	       ", \"probes_failed\": %" PRIu64 ", \"suspicions\": %" PRIu64
	       ", \"refutes\": %" PRIu64 ", \"declared_dead\": %" PRIu64
	       ", \"push_pulls\": %" PRIu64 ", \"name_conflicts\": %" PRIu64 "}",
	       st->pkts_in, st->bytes_in, st->pkts_out, st->bytes_out,
	       st->dropped[WIRE_E_CLUSTER], st->dropped[WIRE_E_MAC], st->dropped[WIRE_E_MSG],
	       st->dropped[WIRE_E_VERSION], st->dropped[WIRE_E_MAGIC] + st->dropped[WIRE_E_SHORT],
	       st->probes, st->probes_failed, st->suspicions, st->refutes, st->declared_dead,
	       st->push_pulls, st->conflicts);
}

static void render_auth(const struct admin_auth *a, struct admin_buf *out)
{
	append(out, ", \"auth\": {\"slow_checks\": %" PRIu64 ", \"checks_in_flight_max\": %" PRIu64
	       ", \"check_waits\": %" PRIu64 "}", a->slow_checks, a->checks_in_flight_max,
	       a->check_waits);
}

void admin_render_status(const struct swim *s, uint64_t now_ms, const char *cluster,
			 const struct admin_local *local, struct admin_buf *out)
{
	size_t n = swim_member_count(s);
	const struct swim_member **sorted = hd_alloc((n ? n : 1) * sizeof(*sorted));

	for (size_t i = 0; i < n; i++)
		sorted[i] = swim_member_at(s, i);
	qsort(sorted, n, sizeof(*sorted), by_name);
	append(out, "{\"self\": ");
	append_json_str(out, swim_self(s)->name);
	append(out, ", \"cluster\": ");
	append_json_str(out, cluster);
	append(out, ", \"health_score\": %d, \"members\": [", swim_health_score(s));
	for (size_t i = 0; i < n; i++) {
		append(out, i ? ", " : "");
		render_member(s, sorted[i], now_ms, local, out);
	}
	append(out, "], ");
	render_stats(swim_get_stats(s), out);
	if (local && local->auth)
		render_auth(local->auth, out);
	append(out, "}\n");
	hd_free(sorted);
}

static void respond(struct admin_buf *out, int code, const char *reason, const char *body,
		    size_t body_len)
{
	append(out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	       "Cache-Control: no-store\r\nConnection: close\r\n\r\n", code, reason, body_len);
	reserve(out, body_len);
	memcpy(out->ptr + out->len, body, body_len);
	out->len += body_len;
	out->ptr[out->len] = '\0';
}

static void respond_error(struct admin_buf *out, int code, const char *reason)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "{\"error\": \"%s\"}\n", reason);

	respond(out, code, reason, body, (size_t)n);
}

static bool path_is(const char *path, size_t len, const char *want)
{
	return strlen(want) == len && !memcmp(path, want, len);
}

struct queues_ctx {
	struct admin_buf *out;
	const char *self;
	size_t n;
};

static void append_json_strn(struct admin_buf *b, const char *s, size_t len)
{
	char *tmp = hd_alloc(len + 1);

	memcpy(tmp, s, len);
	tmp[len] = '\0';
	append_json_str(b, tmp);
	hd_free(tmp);
}

static void emit_queue(void *arg, const struct admin_queue *q)
{
	struct queues_ctx *qc = arg;

	append(qc->out, qc->n++ ? ", {\"name\": " : "{\"name\": ");
	append_json_strn(qc->out, q->name, q->name_len);
	append(qc->out, ", \"vhost\": ");
	append_json_strn(qc->out, q->vhost, q->vhost_len);
	append(qc->out, ", \"owner\": ");
	append_json_str(qc->out, qc->self);
	append(qc->out, ", \"messages\": %" PRIu64 ", \"consumers\": %u}", q->messages,
	       q->consumers);
}

void admin_render_queues(const struct swim *s, const struct admin_local *local,
			 struct admin_buf *out)
{
	struct queues_ctx qc = { .out = out, .self = swim_self(s)->name };

	append(out, "{\"node\": ");
	append_json_str(out, qc.self);
	append(out, ", \"queues\": [");
	if (local && local->queues)
		local->queues(local->queues_arg, emit_queue, &qc);
	append(out, "]}\n");
}

int admin_respond(const char *req, size_t len, const struct swim *s, uint64_t now_ms,
		  const char *cluster, const struct admin_local *local, struct admin_buf *out)
{
	const char *sp1 = memchr(req, ' ', len);
	const char *path;
	size_t plen;
	struct admin_buf body = { 0 };

	if (!sp1 || len > REQ_MAX) {
		respond_error(out, 400, "Bad Request");
		return 400;
	}
	path = sp1 + 1;
	plen = strcspn(path, " ?\r\n");
	if (sp1 - req != 3 || memcmp(req, "GET", 3)) {
		respond_error(out, 405, "Method Not Allowed");
		return 405;
	}
	if (path_is(path, plen, "/api/queues")) {
		admin_render_queues(s, local, &body);
	} else if (path_is(path, plen, "/cluster/status") ||
		   path_is(path, plen, "/api/cluster/status")) {
		admin_render_status(s, now_ms, cluster, local, &body);
	} else {
		respond_error(out, 404, "Not Found");
		return 404;
	}
	respond(out, 200, "OK", body.ptr, body.len);
	admin_buf_free(&body);
	return 200;
}
