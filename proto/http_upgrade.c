/*
 * proto/http_upgrade.c - WebSocket opening handshake, server side (RFC 6455 section 4.2)
 * over an HTTP/1.1 request head (RFC 9112 sections 2-5), and the responses to it.
 * Pure: no I/O, no allocation, no globals beyond constant tables; libcrypto hashes the
 * accept key. The thread that owns the connection owns its parser.
 *
 * Two passes. While the head is incomplete, each call scans only the new bytes for line
 * ends, counting lines against the limits, so a slow or endless head is refused as soon
 * as it breaks one. When the blank line arrives the head (at most max_head bytes) is
 * parsed once from the start: request line, header lines, then the handshake rules in the
 * order that picks the most useful status: syntax (400/505/405/501), then "is this a
 * WebSocket request at all" (plain GET or 426), then path (404), handshake headers (400,
 * 426), Origin (403).
 */
#include "proto/http_upgrade.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"	/* RFC 6455 section 1.3 */

/* ---- small helpers over views ---- */

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static bool view_ieq(struct http_view v, const char *s)
{
	size_t n = strlen(s);

	if (v.len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(v.ptr[i]) != lower(s[i]))
			return false;
	return true;
}

static bool view_eq(struct http_view v, const char *s)
{
	size_t n = strlen(s);

	return v.len == n && memcmp(v.ptr, s, n) == 0;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(struct http_view v)
{
	if (v.len == 0)
		return false;
	for (size_t i = 0; i < v.len; i++)
		if (!is_tchar((unsigned char)v.ptr[i]))
			return false;
	return true;
}

/* RFC 9110 5.5: field-value octets are VCHAR, obs-text, SP and HTAB; CR, LF, NUL and the
 * other controls are refused outright. */
static bool is_field_value(struct http_view v)
{
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.ptr[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

static struct http_view trim(struct http_view v)
{
	while (v.len && is_ows(v.ptr[0]))
		v.ptr++, v.len--;
	while (v.len && is_ows(v.ptr[v.len - 1]))
		v.len--;
	return v;
}

/* RFC 9110 5.6.1: the next non-empty element of a comma list; false when none is left. */
static bool list_next(struct http_view *rest, struct http_view *elem)
{
	while (rest->len) {
		const char *comma = memchr(rest->ptr, ',', rest->len);
		size_t n = comma ? (size_t)(comma - rest->ptr) : rest->len;

		*elem = trim((struct http_view){ rest->ptr, n });
		rest->ptr += n;
		rest->len -= n;
		if (comma)
			rest->ptr++, rest->len--;
		if (elem->len)
			return true;
	}
	return false;
}

static bool list_has_token(struct http_view list, const char *token)
{
	struct http_view e;

	while (list_next(&list, &e))
		if (view_ieq(e, token))
			return true;
	return false;
}

/* ---- limits and parser state ---- */

void http_upgrade_config_default(struct http_upgrade_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = "/ws";
	cfg->max_request_line = 8192;
	cfg->max_headers = HTTP_HEADERS_CAP;
	cfg->max_head = 16384;
}

void http_upgrade_parser_init(struct http_upgrade_parser *p,
			      const struct http_upgrade_config *cfg)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
}

static size_t max_headers(const struct http_upgrade_config *cfg)
{
	return cfg->max_headers < HTTP_HEADERS_CAP ? cfg->max_headers : HTTP_HEADERS_CAP;
}

static ssize_t fail(struct http_upgrade_parser *p, int err, const char *reason)
{
	p->err = err;
	p->reason = reason;
	return err;
}

/* ---- request line (RFC 9112 section 3) ---- */

static const struct {
	const char *name;
	int err;		/* 0 for the one method we serve */
} methods[] = {
	{ "GET", 0 },
	{ "HEAD", HTTP_E_METHOD_NOT_ALLOWED },
	{ "POST", HTTP_E_METHOD_NOT_ALLOWED },
	{ "PUT", HTTP_E_METHOD_NOT_ALLOWED },
	{ "DELETE", HTTP_E_METHOD_NOT_ALLOWED },
	{ "CONNECT", HTTP_E_METHOD_NOT_ALLOWED },
	{ "OPTIONS", HTTP_E_METHOD_NOT_ALLOWED },
	{ "TRACE", HTTP_E_METHOD_NOT_ALLOWED },
	{ "PATCH", HTTP_E_METHOD_NOT_ALLOWED },
};

static ssize_t parse_method(struct http_upgrade_parser *p, struct http_view m)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (!view_eq(m, methods[i].name))	/* RFC 9110 9.1: case-sensitive */
			continue;
		return methods[i].err ? fail(p, methods[i].err, "only GET is served here") : 0;
	}
	return fail(p, HTTP_E_NOT_IMPLEMENTED, "unknown method");
}

/* RFC 9112 3.2: origin-form "/path?query", or absolute-form "http://host/path?query"
 * (which a server MUST accept). Anything else is a bad request for a GET. */
static int split_target(struct http_request *req)
{
	struct http_view t = req->target;
	const char *q;

	for (size_t i = 0; i < t.len; i++) {
		unsigned char c = (unsigned char)t.ptr[i];

		if (c <= 0x20 || c >= 0x7f)
			return -1;
	}
	if (t.len >= 7 && (view_ieq((struct http_view){ t.ptr, 7 }, "http://") ||
			   (t.len >= 8 && view_ieq((struct http_view){ t.ptr, 8 }, "https://")))) {
		size_t skip = lower(t.ptr[4]) == 's' ? 8 : 7;

		while (skip < t.len && t.ptr[skip] != '/' && t.ptr[skip] != '?')
			skip++;
		t.ptr += skip;
		t.len -= skip;
		if (t.len == 0 || t.ptr[0] == '?') {
			/* "http://host" means "/"; the only view not into the caller's buffer */
			req->path = (struct http_view){ "/", 1 };
			req->query = t.len ? (struct http_view){ t.ptr + 1, t.len - 1 }
					   : (struct http_view){ t.ptr, 0 };
			return 0;
		}
	}
	if (t.len == 0 || t.ptr[0] != '/')
		return -1;
	q = memchr(t.ptr, '?', t.len);
	req->path = (struct http_view){ t.ptr, q ? (size_t)(q - t.ptr) : t.len };
	req->query = q ? (struct http_view){ q + 1, t.len - req->path.len - 1 }
		       : (struct http_view){ t.ptr + t.len, 0 };
	return 0;
}

static ssize_t parse_request_line(struct http_upgrade_parser *p, struct http_view line,
				  struct http_request *req)
{
	const char *sp1 = memchr(line.ptr, ' ', line.len);
	const char *sp2 = sp1 ? memrchr(line.ptr, ' ', line.len) : NULL;
	struct http_view v;

	if (!sp1 || sp2 == sp1)
		return fail(p, HTTP_E_BAD_REQUEST, "malformed request line");
	req->method = (struct http_view){ line.ptr, (size_t)(sp1 - line.ptr) };
	req->target = (struct http_view){ sp1 + 1, (size_t)(sp2 - sp1 - 1) };
	v = (struct http_view){ sp2 + 1, (size_t)(line.ptr + line.len - sp2 - 1) };
	/* RFC 9112 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive */
	if (v.len != 8 || memcmp(v.ptr, "HTTP/", 5) || v.ptr[6] != '.' ||
	    v.ptr[5] < '0' || v.ptr[5] > '9' || v.ptr[7] < '0' || v.ptr[7] > '9')
		return fail(p, HTTP_E_BAD_REQUEST, "malformed HTTP version");
	if (v.ptr[5] != '1')
		return fail(p, HTTP_E_VERSION, "only HTTP/1.x is spoken here");
	req->minor_version = (uint8_t)(v.ptr[7] - '0');
	if (!is_token(req->method))
		return fail(p, HTTP_E_BAD_REQUEST, "malformed method");
	if (parse_method(p, req->method))
		return p->err;
	if (split_target(req))
		return fail(p, HTTP_E_BAD_REQUEST, "malformed request target");
	return 0;
}

/* ---- header fields (RFC 9112 section 5, RFC 6455 section 4.2.1) ---- */

/* What the handshake needs from the header lines, gathered in one pass. */
struct seen {
	bool upgrade_websocket;		/* Upgrade lists "websocket" */
	bool connection_upgrade;	/* Connection lists "upgrade" */
	bool has_host;
	bool has_key;
	bool has_version;
	bool has_origin;
	struct http_view version;
};

typedef const char *(*header_rule_fn)(struct seen *s, struct http_request *req,
				      struct http_view value);

static const char *on_host(struct seen *s, struct http_request *req, struct http_view value)
{
	if (s->has_host)	/* RFC 9112 3.2: more than one Host is a 400 */
		return "more than one Host header";
	s->has_host = true;
	req->host = value;
	return NULL;
}

static const char *on_upgrade(struct seen *s, struct http_request *req, struct http_view value)
{
	(void)req;
	s->upgrade_websocket |= list_has_token(value, "websocket");
	return NULL;
}

static const char *on_connection(struct seen *s, struct http_request *req,
				 struct http_view value)
{
	(void)req;
	s->connection_upgrade |= list_has_token(value, "upgrade");
	return NULL;
}

static const char *on_key(struct seen *s, struct http_request *req, struct http_view value)
{
	if (s->has_key)
		return "more than one Sec-WebSocket-Key header";
	s->has_key = true;
	req->key = value;
	return NULL;
}

static const char *on_version(struct seen *s, struct http_request *req, struct http_view value)
{
	(void)req;
	if (s->has_version)
		return "more than one Sec-WebSocket-Version header";
	s->has_version = true;
	s->version = value;
	return NULL;
}

static const char *on_origin(struct seen *s, struct http_request *req, struct http_view value)
{
	if (s->has_origin)	/* RFC 6454 7.3: "MUST NOT contain more than one Origin" */
		return "more than one Origin header";
	s->has_origin = true;
	req->origin = value;
	return NULL;
}

/* Subprotocol names, indexed by enum http_ws_proto; matched case-sensitively (RFC 6455
 * 4.1 makes them tokens the client compares to its own list byte for byte). */
static const char *const proto_names[] = {
	[HTTP_WS_PROTO_NONE] = "",
	[HTTP_WS_PROTO_STOMP] = "stomp",
	[HTTP_WS_PROTO_V10] = "v10.stomp",
	[HTTP_WS_PROTO_V11] = "v11.stomp",
	[HTTP_WS_PROTO_V12] = "v12.stomp",
};

/* RFC 6455 4.2.2: the server picks one of the client's subprotocols. We pick the highest
 * STOMP version offered (across all Sec-WebSocket-Protocol lines), not the client's first:
 * stomp.js offers "v10.stomp, v11.stomp, v12.stomp" in that order. */
static const char *on_protocol(struct seen *s, struct http_request *req,
			       struct http_view value)
{
	struct http_view e;

	(void)s;
	while (list_next(&value, &e))
		for (int i = HTTP_WS_PROTO_V12; i > (int)req->proto; i--)
			if (view_eq(e, proto_names[i]))
				req->proto = (enum http_ws_proto)i;
	return NULL;
}

static const char *on_content_length(struct seen *s, struct http_request *req,
				     struct http_view value)
{
	(void)s;
	(void)req;
	/* a GET with a body would leave bytes we cannot tell from WebSocket frames */
	return view_eq(value, "0") ? NULL : "request body not supported";
}

static const struct {
	const char *name;
	header_rule_fn on;
} header_rules[] = {
	{ "host", on_host },
	{ "upgrade", on_upgrade },
	{ "connection", on_connection },
	{ "sec-websocket-key", on_key },
	{ "sec-websocket-version", on_version },
	{ "sec-websocket-protocol", on_protocol },
	{ "origin", on_origin },
	{ "content-length", on_content_length },
};

static ssize_t parse_header_line(struct http_upgrade_parser *p, struct http_view line,
				 struct http_request *req, struct seen *s)
{
	const char *colon = memchr(line.ptr, ':', line.len);
	struct http_header h;

	/* RFC 9112 5.2: obs-fold (a line starting with whitespace) is refused with 400 */
	if (is_ows(line.ptr[0]))
		return fail(p, HTTP_E_BAD_REQUEST, "folded header line");
	if (!colon)
		return fail(p, HTTP_E_BAD_REQUEST, "header line without a colon");
	h.name = (struct http_view){ line.ptr, (size_t)(colon - line.ptr) };
	h.value = trim((struct http_view){ colon + 1, line.len - h.name.len - 1 });
	/* RFC 9112 5.1: no whitespace between the name and the colon */
	if (!is_token(h.name))
		return fail(p, HTTP_E_BAD_REQUEST, "malformed header name");
	if (!is_field_value(h.value))
		return fail(p, HTTP_E_BAD_REQUEST, "control character in header value");
	if (view_ieq(h.name, "transfer-encoding"))
		return fail(p, HTTP_E_NOT_IMPLEMENTED, "Transfer-Encoding not supported");
	req->headers[req->nheaders++] = h;
	for (size_t i = 0; i < sizeof(header_rules) / sizeof(header_rules[0]); i++) {
		const char *why;

		if (!view_ieq(h.name, header_rules[i].name))
			continue;
		why = header_rules[i].on(s, req, h.value);
		if (why)
			return fail(p, HTTP_E_BAD_REQUEST, why);
	}
	return 0;
}

/* ---- the handshake (RFC 6455 section 4.2.1) ---- */

/* RFC 6455 4.1: "a randomly selected 16-byte value that has been base64-encoded" -
 * 22 base64 characters and "==". */
static bool is_ws_key(struct http_view k)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (k.len != 24 || k.ptr[22] != '=' || k.ptr[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++)
		if (!memchr(b64, k.ptr[i], sizeof(b64) - 1))
			return false;
	return true;
}

/* RFC 6455 4.2.2 and 10.2: an Origin outside a non-empty allow-list is refused. A request
 * without Origin comes from a non-browser client, which Origin checks cannot stop anyway. */
static bool origin_allowed(const struct http_upgrade_config *cfg, const struct seen *s,
			   struct http_view origin)
{
	if (!cfg->norigins || !s->has_origin)
		return true;
	for (size_t i = 0; i < cfg->norigins; i++)
		if (view_ieq(origin, cfg->origins[i]))
			return true;
	return false;
}

static ssize_t check_handshake(struct http_upgrade_parser *p, struct http_request *req,
			       const struct seen *s)
{
	const struct http_upgrade_config *cfg = p->cfg;
	bool on_ws_path = view_eq(req->path, cfg->path);

	if (!s->upgrade_websocket) {
		/* RFC 9110 15.5.22: 426 tells a plain client this path needs an upgrade */
		if (on_ws_path)
			return fail(p, HTTP_E_UPGRADE_REQUIRED, "this path speaks WebSocket only");
		req->kind = HTTP_KIND_PLAIN_GET;
		return 0;
	}
	if (req->minor_version < 1)	/* RFC 6455 4.1: "at least 1.1" */
		return fail(p, HTTP_E_BAD_REQUEST, "WebSocket needs HTTP/1.1");
	if (!on_ws_path)
		return fail(p, HTTP_E_NOT_FOUND, "no WebSocket endpoint at this path");
	if (!s->connection_upgrade)
		return fail(p, HTTP_E_BAD_REQUEST, "Connection header lacks upgrade");
	/* RFC 6455 4.4: an unknown (or missing) version gets 426 and the one we speak */
	if (!s->has_version || !view_eq(s->version, "13"))
		return fail(p, HTTP_E_UPGRADE_REQUIRED, "Sec-WebSocket-Version must be 13");
	if (!s->has_key || !is_ws_key(req->key))
		return fail(p, HTTP_E_BAD_REQUEST, "bad Sec-WebSocket-Key");
	if (!origin_allowed(cfg, s, req->origin))
		return fail(p, HTTP_E_FORBIDDEN, "origin not allowed");
	req->kind = HTTP_KIND_UPGRADE;
	return 0;
}

/* Line i of head[0..len): each ends in LF, with an optional CR before it. */
static struct http_view next_line(const char *head, size_t len, size_t *off)
{
	const char *nl = memchr(head + *off, '\n', len - *off);
	struct http_view line = { head + *off, (size_t)(nl - (head + *off)) };

	*off = (size_t)(nl - head) + 1;
	if (line.len && line.ptr[line.len - 1] == '\r')
		line.len--;
	return line;
}

/* The whole head is in head[0..len), blank line included: parse and check it. */
static ssize_t parse_head(struct http_upgrade_parser *p, const char *head, size_t len,
			  struct http_request *req)
{
	struct seen s = { 0 };
	size_t off = 0;
	struct http_view line;

	memset(req, 0, sizeof(*req));
	if (parse_request_line(p, next_line(head, len, &off), req))
		return p->err;
	while ((line = next_line(head, len, &off)).len)
		if (parse_header_line(p, line, req, &s))
			return p->err;
	/* RFC 9112 3.2: "MUST respond with a 400 ... to any HTTP/1.1 request ... that lacks
	 * a Host header field" */
	if (req->minor_version >= 1 && !s.has_host)
		return fail(p, HTTP_E_BAD_REQUEST, "missing Host header");
	return check_handshake(p, req, &s);
}

ssize_t http_upgrade_parse(struct http_upgrade_parser *p, const char *buf, size_t len,
			   struct http_request *req)
{
	const struct http_upgrade_config *cfg = p->cfg;
	size_t i = p->scan_off;

	if (p->err)
		return p->err;
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t end;
		size_t line_len;

		if (!nl)
			break;
		end = (size_t)(nl - buf);
		line_len = end - p->line_start;
		if (line_len && buf[end - 1] == '\r')
			line_len--;
		i = end + 1;
		if (line_len == 0 && p->lines == 0) {
			/* RFC 9112 2.2: ignore empty lines before the request line */
			p->head_start = p->line_start = i;
			continue;
		}
		/* same checks, same order as for the open line below, so a head gets the
		 * same answer however it was split */
		if (p->lines == 0 && line_len > cfg->max_request_line)
			return fail(p, HTTP_E_URI_TOO_LONG, "request line too long");
		if (i > cfg->max_head)
			return fail(p, HTTP_E_HEADERS_TOO_LARGE, "request head too large");
		if (line_len == 0) {
			ssize_t err = parse_head(p, buf + p->head_start, i - p->head_start, req);

			return err ? err : (ssize_t)i;
		}
		if (p->lines++ > max_headers(cfg))
			return fail(p, HTTP_E_HEADERS_TOO_LARGE, "too many header lines");
		p->line_start = i;
	}
	p->scan_off = len;
	/* the line still open may carry a CR whose LF has not arrived */
	if (p->lines == 0 && len - p->line_start > cfg->max_request_line + 1)
		return fail(p, HTTP_E_URI_TOO_LONG, "request line too long");
	if (len > cfg->max_head)
		return fail(p, HTTP_E_HEADERS_TOO_LARGE, "request head too large");
	return 0;
}

const struct http_view *http_request_header(const struct http_request *req, const char *name)
{
	for (uint32_t i = 0; i < req->nheaders; i++)
		if (view_ieq(req->headers[i].name, name))
			return &req->headers[i].value;
	return NULL;
}

const char *http_ws_proto_name(enum http_ws_proto proto)
{
	if ((unsigned)proto >= sizeof(proto_names) / sizeof(proto_names[0]))
		return "";
	return proto_names[proto];
}

/* ---- responses ---- */

int http_ws_accept_key(const char *key, size_t key_len, char out[29])
{
	char in[64 + sizeof(WS_GUID)];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;

	if (key_len > 64)
		return -EINVAL;
	memcpy(in, key, key_len);
	memcpy(in + key_len, WS_GUID, sizeof(WS_GUID) - 1);
	if (!EVP_Digest(in, key_len + sizeof(WS_GUID) - 1, md, &md_len, EVP_sha1(), NULL) ||
	    md_len != 20)
		return -EIO;
	/* 20 bytes are 28 base64 characters; EVP_EncodeBlock adds the NUL */
	EVP_EncodeBlock((unsigned char *)out, md, 20);
	return 0;
}

/* Appends to caller memory; remembers running out instead of checking at each step. */
struct out {
	char *p;
	size_t len;
	size_t cap;
	bool full;
};

static void put(struct out *o, const void *s, size_t n)
{
	if (o->full || o->cap - o->len < n) {
		o->full = true;
		return;
	}
	if (n)
		memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_uint(struct out *o, size_t v)
{
	char digits[24];
	size_t n = sizeof(digits);

	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, digits + n, sizeof(digits) - n);
}

static ssize_t out_result(const struct out *o)
{
	return o->full ? -ENOSPC : (ssize_t)o->len;
}

ssize_t http_response_101(char *out, size_t cap, const struct http_request *req)
{
	struct out o = { out, 0, cap, false };
	char accept[29];

	if (http_ws_accept_key(req->key.ptr, req->key.len, accept))
		return -EIO;
	put_str(&o, "HTTP/1.1 101 Switching Protocols\r\n"
		    "Upgrade: websocket\r\n"
		    "Connection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: ");
	put_str(&o, accept);
	put_str(&o, "\r\n");
	if (req->proto != HTTP_WS_PROTO_NONE) {
		put_str(&o, "Sec-WebSocket-Protocol: ");
		put_str(&o, http_ws_proto_name(req->proto));
		put_str(&o, "\r\n");
	}
	put_str(&o, "\r\n");
	return out_result(&o);
}

static const struct {
	int status;
	const char *text;	/* RFC 9110 section 15 reason phrases */
	const char *extra;	/* header lines this status needs */
} statuses[] = {
	{ 400, "Bad Request", "Connection: close\r\n" },
	{ 403, "Forbidden", "Connection: close\r\n" },
	{ 404, "Not Found", "Connection: close\r\n" },
	{ 405, "Method Not Allowed", "Allow: GET\r\nConnection: close\r\n" },
	{ 408, "Request Timeout", "Connection: close\r\n" },
	{ 414, "URI Too Long", "Connection: close\r\n" },
	/* RFC 9110 15.5.22: 426 MUST send Upgrade, and 7.8 wants "upgrade" in Connection */
	{ 426, "Upgrade Required",
	  "Upgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Version: 13\r\n" },
	{ 431, "Request Header Fields Too Large", "Connection: close\r\n" },
	{ 500, "Internal Server Error", "Connection: close\r\n" },
	{ 501, "Not Implemented", "Connection: close\r\n" },
	{ 503, "Service Unavailable", "Connection: close\r\n" },
	{ 505, "HTTP Version Not Supported", "Connection: close\r\n" },
};

ssize_t http_response_error(char *out, size_t cap, int status, const char *reason)
{
	struct out o = { out, 0, cap, false };

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		if (statuses[i].status != status)
			continue;
		if (!reason || !*reason)
			reason = statuses[i].text;
		put_str(&o, "HTTP/1.1 ");
		put_uint(&o, (size_t)status);
		put_str(&o, " ");
		put_str(&o, statuses[i].text);
		put_str(&o, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
		put_uint(&o, strlen(reason) + 1);
		put_str(&o, "\r\n");
		put_str(&o, statuses[i].extra);
		put_str(&o, "\r\n");
		put_str(&o, reason);
		put_str(&o, "\n");
		return out_result(&o);
	}
	return -EINVAL;
}

ssize_t http_response_200(char *out, size_t cap, const char *content_type, const void *body,
			  size_t body_len)
{
	struct out o = { out, 0, cap, false };

	put_str(&o, "HTTP/1.1 200 OK\r\nContent-Type: ");
	put_str(&o, content_type);
	put_str(&o, "\r\nContent-Length: ");
	put_uint(&o, body_len);
	put_str(&o, "\r\nConnection: close\r\n\r\n");
	if (body)
		put(&o, body, body_len);
	return out_result(&o);
}
