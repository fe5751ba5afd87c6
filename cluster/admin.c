/*
 * cluster/admin.c - status JSON and the minimal HTTP around it (see admin.h). Called on the
 * cluster thread, which owns the swim instance it reads.
 */
#include "cluster/admin.h"

#include "cluster/dashboard.h"
#include "cluster/swim.h"
#include "core/base/hd_alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	if (local && local->controller_json)
		append(out, ", \"controller\": %s", local->controller_json);
	append(out, "}\n");
	hd_free(sorted);
}

/* extra: more header lines, each ending in CRLF ("" for none) */
static void respond_with(struct admin_buf *out, int code, const char *reason, const char *extra,
			 const char *type, const char *body, size_t body_len)
{
	append(out, "HTTP/1.1 %d %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n"
	       "Cache-Control: no-store\r\nConnection: close\r\n\r\n", code, reason, extra, type,
	       body_len);
	reserve(out, body_len);
	memcpy(out->ptr + out->len, body, body_len);
	out->len += body_len;
	out->ptr[out->len] = '\0';
}

static void respond_typed(struct admin_buf *out, int code, const char *reason,
			  const char *type, const char *body, size_t body_len)
{
	respond_with(out, code, reason, "", type, body, body_len);
}

static void respond(struct admin_buf *out, int code, const char *reason, const char *body,
		    size_t body_len)
{
	respond_typed(out, code, reason, "application/json", body, body_len);
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

/* ---- request head: path and headers ---- */

/* The request line's path (up to '?' or a space), or false when there is none. */
static bool request_path(const char *req, size_t len, const char **path, size_t *plen)
{
	const char *sp1 = memchr(req, ' ', len);

	if (!sp1)
		return false;
	*path = sp1 + 1;
	*plen = strcspn(*path, " ?\r\n");
	return true;
}

/* The value of header `name` (first of that name, leading blanks skipped), or NULL. */
static const char *header_value(const char *req, size_t len, const char *name, size_t *vlen)
{
	const size_t nlen = strlen(name);
	const char *end = req + len;
	const char *line = memchr(req, '\n', len);

	while (line && ++line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		size_t llen = (size_t)((eol ? eol : end) - line);

		if (llen > nlen && line[nlen] == ':' && !strncasecmp(line, name, nlen)) {
			const char *v = line + nlen + 1;

			while (v < line + llen && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(line + llen - v);
			if (*vlen && v[*vlen - 1] == '\r')
				(*vlen)--;
			return v;
		}
		line = eol;
	}
	return NULL;
}

bool admin_path_is_open(const char *req, size_t len)
{
	const char *path;
	size_t plen;

	return request_path(req, len, &path, &plen) &&
	       (path_is(path, plen, "/health") || path_is(path, plen, "/ready"));
}

int admin_basic_credentials(const char *req, size_t len, char *buf, size_t cap,
			    const char **user, size_t *user_len, const char **pass,
			    size_t *pass_len)
{
	size_t vlen, n;
	const char *v = header_value(req, len, "Authorization", &vlen);
	const char *colon;

	if (!v)
		return -ENOENT;
	if (vlen < 6 || strncasecmp(v, "Basic ", 6) || cap < 1)
		return -EINVAL;
	if (sodium_base642bin((unsigned char *)buf, cap - 1, v + 6, vlen - 6, " ", &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL))
		return -EINVAL;
	buf[n] = '\0';
	colon = memchr(buf, ':', n);
	if (!colon)
		return -EINVAL;
	*user = buf;
	*user_len = (size_t)(colon - buf);
	*pass = colon + 1;
	*pass_len = n - *user_len - 1;
	return 0;
}

int admin_respond_refused(enum admin_login v, struct admin_buf *out)
{
	static const char denied[] = "{\"error\": \"Unauthorized\", \"reason\": \"the admin "
				     "endpoint needs the name and password of an administrator "
				     "user (HTTP Basic)\"}\n";
	static const char forbidden[] = "{\"error\": \"Forbidden\", \"reason\": \"this user is "
					"not an administrator (tag administrator)\"}\n";
	static const char busy[] = "{\"error\": \"Service Unavailable\", \"reason\": \"too many "
				   "logins being checked; try again\"}\n";

	switch (v) {
	case ADMIN_LOGIN_FORBIDDEN:
		respond(out, 403, "Forbidden", forbidden, sizeof(forbidden) - 1);
		return 403;
	case ADMIN_LOGIN_BUSY:
		respond_with(out, 503, "Service Unavailable", "Retry-After: 1\r\n",
			     "application/json", busy, sizeof(busy) - 1);
		return 503;
	default:
		respond_with(out, 401, "Unauthorized",
			     "WWW-Authenticate: Basic realm=\"herald admin\", charset=\"UTF-8\"\r\n",
			     "application/json", denied, sizeof(denied) - 1);
		return 401;
	}
}

/* A POST from a page of another site (a form, which needs no CORS preflight) would carry
 * the browser's remembered Basic credentials, or reach a loopback endpoint from the
 * operator's own browser: a POST naming an Origin other than this endpoint is refused.
 * heraldctl and curl send no Origin. */
static bool post_is_cross_origin(const char *req, size_t len)
{
	size_t olen, hlen;
	const char *origin = header_value(req, len, "Origin", &olen);
	const char *host = header_value(req, len, "Host", &hlen);

	if (!origin)
		return false;
	if (!host || olen < 7 || strncmp(origin, "http://", 7))
		return true;
	return olen - 7 != hlen || memcmp(origin + 7, host, hlen);
}

/* ---- /metrics: Prometheus text exposition format 0.0.4 ---- */

static void family(struct admin_buf *out, const char *name, const char *type, const char *help)
{
	append(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One series per shard of field `off` in struct admin_metrics_shard. */
static void per_shard(struct admin_buf *out, const struct admin_metrics *m, const char *name,
		      const char *type, const char *help, size_t off, const char *extra_label)
{
	family(out, name, type, help);
	for (uint32_t i = 0; i < m->nshards; i++) {
		uint64_t v;

		memcpy(&v, (const char *)&m->shard[i] + off, sizeof(v));
		append(out, "%s{shard=\"%u\"%s} %" PRIu64 "\n", name, i, extra_label, v);
	}
}

/* A label value: backslash, quote and newline escaped (node names are printable ASCII). */
static void append_label(struct admin_buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			append(out, "\\%c", *v);
		else if (*v == '\n')
			append(out, "\\n");
		else
			append(out, "%c", *v);
	}
}

static void render_links(const struct swim *s, const struct admin_local *local,
			 struct admin_buf *out)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} fams[] = {
		{ "herald_link_messages_sent_total", "counter", "Messages sent to the peer over its link.",
		  offsetof(struct admin_link, msgs_out) },
		{ "herald_link_messages_received_total", "counter", "Messages received over the link.",
		  offsetof(struct admin_link, msgs_in) },
		{ "herald_link_sent_bytes_total", "counter", "Bytes (all frames) sent over the link.",
		  offsetof(struct admin_link, bytes_out) },
		{ "herald_link_received_bytes_total", "counter", "Bytes received over the link.",
		  offsetof(struct admin_link, bytes_in) },
	};
	size_t n = swim_member_count(s);

	family(out, "herald_link_up", "gauge", "1 while the link to the peer is up, else 0.");
	for (size_t i = 0; i < n; i++) {
		const struct swim_member *m = swim_member_at(s, i);
		struct admin_link l = { .state = "down" };

		if (m == swim_self(s))
			continue;
		local->links->get(local->links->arg, m->name, &l);
		append(out, "herald_link_up{peer=\"");
		append_label(out, m->name);
		append(out, "\"} %d\n", !strcmp(l.state, "up"));
	}
	for (size_t f = 0; f < HD_ARRAY_LEN(fams); f++) {
		family(out, fams[f].name, fams[f].type, fams[f].help);
		for (size_t i = 0; i < n; i++) {
			const struct swim_member *m = swim_member_at(s, i);
			struct admin_link l = { .state = "down" };
			uint64_t v;

			if (m == swim_self(s) || !local->links->get(local->links->arg, m->name, &l))
				continue;
			memcpy(&v, (const char *)&l + fams[f].off, sizeof(v));
			append(out, "%s{peer=\"", fams[f].name);
			append_label(out, m->name);
			append(out, "\"} %" PRIu64 "\n", v);
		}
	}
}

void admin_render_metrics(const struct swim *s, const struct admin_local *local,
			  struct admin_buf *out)
{
	static const char *const states[] = { "alive", "suspect", "dead", "left" };
	struct admin_metrics *m = hd_calloc(1, sizeof(*m));
	const struct swim_stats *st = swim_get_stats(s);
	size_t count[4] = { 0 };

#define F(field) offsetof(struct admin_metrics_shard, field)
	if (local && local->metrics) {
		local->metrics(local->metrics_arg, m);
		family(out, "herald_connections", "gauge", "Open client connections, by protocol.");
		for (uint32_t i = 0; i < m->nshards; i++)
			append(out, "herald_connections{shard=\"%u\",protocol=\"stomp\"} %" PRIu64 "\n"
			       "herald_connections{shard=\"%u\",protocol=\"websocket\"} %" PRIu64 "\n",
			       i, m->shard[i].connections - m->shard[i].connections_ws, i,
			       m->shard[i].connections_ws);
		per_shard(out, m, "herald_connections_accepted_total", "counter",
			  "Client connections accepted since start.", F(connections_total), "");
		per_shard(out, m, "herald_subscriptions", "gauge", "Live subscriptions.",
			  F(subscriptions), "");
		per_shard(out, m, "herald_frames_received_total", "counter",
			  "STOMP frames received from clients.", F(frames_in), "");
		per_shard(out, m, "herald_received_bytes_total", "counter",
			  "Bytes read from client sockets.", F(bytes_in), "");
		per_shard(out, m, "herald_sent_bytes_total", "counter",
			  "Bytes written to client sockets.", F(bytes_out), "");
		per_shard(out, m, "herald_messages_published_total", "counter",
			  "Messages accepted by the destinations a shard owns.", F(published), "");
		per_shard(out, m, "herald_messages_delivered_total", "counter",
			  "MESSAGE frames queued to clients.", F(delivered), "");
		per_shard(out, m, "herald_slow_consumer_disconnects_total", "counter",
			  "Subscribers disconnected for falling too far behind (max-outbound-bytes).",
			  F(slow_consumers), "");
		per_shard(out, m, "herald_sends_refused_total", "counter",
			  "SENDs refused: queue full (max-queue-length) or memory high-water mark.",
			  F(refused_sends), "");
		per_shard(out, m, "herald_errors_sent_total", "counter",
			  "ERROR frames sent (each closes its connection).", F(errors_sent), "");
		family(out, "herald_logins_total", "counter", "CONNECT logins checked, by result.");
		for (uint32_t i = 0; i < m->nshards; i++)
			append(out, "herald_logins_total{shard=\"%u\",result=\"ok\"} %" PRIu64 "\n"
			       "herald_logins_total{shard=\"%u\",result=\"failed\"} %" PRIu64 "\n",
			       i, m->shard[i].logins_ok, i, m->shard[i].logins_failed);
		family(out, "herald_queues", "gauge", "Queues this node owns.");
		append(out, "herald_queues %" PRIu64 "\n", m->queues);
		family(out, "herald_queue_messages_ready", "gauge",
		       "Messages waiting in this node's queues.");
		append(out, "herald_queue_messages_ready %" PRIu64 "\n", m->queue_ready);
		family(out, "herald_queue_messages_unacked", "gauge",
		       "Messages delivered from this node's queues, not yet acknowledged.");
		append(out, "herald_queue_messages_unacked %" PRIu64 "\n", m->queue_unacked);
		family(out, "herald_queue_consumers", "gauge", "Consumers of this node's queues.");
		append(out, "herald_queue_consumers %" PRIu64 "\n", m->queue_consumers);
		family(out, "herald_memory_allocated_bytes", "gauge",
		       "Bytes the allocator holds for live objects.");
		append(out, "herald_memory_allocated_bytes %" PRIu64 "\n", m->memory_allocated);
		family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
		append(out, "process_resident_memory_bytes %" PRIu64 "\n", m->memory_resident);
	}
#undef F
	if (local && local->links)
		render_links(s, local, out);
	for (size_t i = 0; i < swim_member_count(s); i++) {
		const char *st_name = swim_state_name(swim_member_at(s, i)->state);

		for (int k = 0; k < 4; k++)
			count[k] += !strcmp(st_name, states[k]);
	}
	family(out, "herald_cluster_members", "gauge", "Cluster members as this node sees them.");
	for (int k = 0; k < 4; k++)
		append(out, "herald_cluster_members{state=\"%s\"} %zu\n", states[k], count[k]);
	family(out, "herald_gossip_packets_total", "counter", "Gossip packets, by direction.");
	append(out, "herald_gossip_packets_total{direction=\"in\"} %" PRIu64 "\n"
	       "herald_gossip_packets_total{direction=\"out\"} %" PRIu64 "\n", st->pkts_in,
	       st->pkts_out);
	family(out, "herald_ready", "gauge", "1 while the node accepts clients (see /ready).");
	append(out, "herald_ready %d\n", !(local && local->not_ready));
	hd_free(m);
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
	append(qc->out, ", \"messages\": %" PRIu64 ", \"consumers\": %u, \"backups\": [",
	       q->messages, q->consumers);
	for (uint32_t i = 0; i < q->nbackups; i++) {
		append(qc->out, i ? ", " : "");
		append_json_str(qc->out, q->backups[i]);
	}
	append(qc->out, "], \"in_sync\": %s}", q->in_sync ? "true" : "false");
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

static void emit_conn(void *arg, const struct admin_conn *c)
{
	struct queues_ctx *qc = arg;

	append(qc->out, qc->n++ ? ", {\"id\": %" PRIu64 ", \"user\": " : "{\"id\": %" PRIu64
	       ", \"user\": ", c->id);
	append_json_str(qc->out, c->user);
	append(qc->out, ", \"vhost\": ");
	append_json_str(qc->out, c->vhost);
	append(qc->out, ", \"address\": ");
	append_json_str(qc->out, c->address);
	append(qc->out, ", \"protocol\": \"%s\", \"subscriptions\": %u, \"bytes_in\": %" PRIu64
	       ", \"bytes_out\": %" PRIu64 ", \"connected_s\": %" PRIu64 "}",
	       c->websocket ? "websocket" : "stomp", c->subscriptions, c->bytes_in, c->bytes_out,
	       c->connected_ms / 1000);
}

static void render_connections(const struct swim *s, const struct admin_local *local,
			       struct admin_buf *out)
{
	struct queues_ctx qc = { .out = out, .self = swim_self(s)->name };
	struct admin_buf list = { 0 };
	bool fresh = true;

	qc.out = &list;
	if (local && local->conns)
		fresh = local->conns->list(local->conns->arg, emit_conn, &qc);
	append(out, "{\"node\": ");
	append_json_str(out, qc.self);
	append(out, ", \"fresh\": %s, \"connections\": [%s]}\n", fresh ? "true" : "false",
	       list.ptr ? list.ptr : "");
	admin_buf_free(&list);
}

/* POST /api/connections/<id>/close */
static int close_connection(const char *path, size_t plen, const struct admin_local *local,
			    struct admin_buf *out)
{
	static const char prefix[] = "/api/connections/";
	static const char suffix[] = "/close";
	const size_t pl = sizeof(prefix) - 1, sl = sizeof(suffix) - 1;
	uint64_t id = 0;
	size_t i;

	if (plen <= pl + sl || memcmp(path, prefix, pl) || memcmp(path + plen - sl, suffix, sl))
		return 0;
	for (i = pl; i < plen - sl; i++) {
		if (path[i] < '0' || path[i] > '9' || id > UINT64_MAX / 10)
			return 0;
		id = id * 10 + (uint64_t)(path[i] - '0');
	}
	if (!local || !local->conns || !local->conns->close(local->conns->arg, id)) {
		respond_error(out, 404, "Not Found");
		return 404;
	}
	respond(out, 202, "Accepted", "{\"closing\": true}\n", 19);
	return 202;
}

int admin_respond(const char *req, size_t len, const struct swim *s, uint64_t now_ms,
		  const char *cluster, const struct admin_local *local, struct admin_buf *out)
{
	const char *sp1 = memchr(req, ' ', len);
	const char *path;
	size_t plen;
	struct admin_buf body = { 0 };

	if (!sp1 || len > REQ_MAX || !request_path(req, len, &path, &plen)) {
		respond_error(out, 400, "Bad Request");
		return 400;
	}
	if (sp1 - req == 4 && !memcmp(req, "POST", 4) && post_is_cross_origin(req, len)) {
		respond_error(out, 403, "Forbidden");
		return 403;
	}
	if (sp1 - req == 4 && !memcmp(req, "POST", 4)) {
		int code = close_connection(path, plen, local, out);

		if (code)
			return code;
	}
	if (sp1 - req == 4 && !memcmp(req, "POST", 4) && path_is(path, plen, "/api/drain") &&
	    local && local->drain) {
		static const char yes[] = "{\"draining\": true}\n";

		local->drain(local->drain_arg);
		respond(out, 202, "Accepted", yes, sizeof(yes) - 1);
		return 202;
	}
	if (sp1 - req != 3 || memcmp(req, "GET", 3)) {
		respond_error(out, 405, "Method Not Allowed");
		return 405;
	}
	if (path_is(path, plen, "/metrics")) {
		admin_render_metrics(s, local, &body);
		respond_typed(out, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body.ptr,
			      body.len);
		admin_buf_free(&body);
		return 200;
	}
	if (path_is(path, plen, "/") || path_is(path, plen, "/dashboard")) {
		respond_typed(out, 200, "OK", "text/html; charset=utf-8", admin_dashboard_html,
			      admin_dashboard_html_len);
		return 200;
	}
	if (path_is(path, plen, "/health")) {
		static const char ok[] = "{\"status\": \"ok\"}\n";

		respond(out, 200, "OK", ok, sizeof(ok) - 1);
		return 200;
	}
	if (path_is(path, plen, "/ready")) {
		static const char yes[] = "{\"ready\": true}\n";
		static const char no[] = "{\"ready\": false, \"reason\": \"draining\"}\n";

		if (local && local->not_ready) {
			respond(out, 503, "Service Unavailable", no, sizeof(no) - 1);
			return 503;
		}
		respond(out, 200, "OK", yes, sizeof(yes) - 1);
		return 200;
	}
	if (path_is(path, plen, "/api/connections")) {
		render_connections(s, local, &body);
	} else if (path_is(path, plen, "/api/queues")) {
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
