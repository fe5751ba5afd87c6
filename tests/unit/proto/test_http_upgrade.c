/*
 * tests/unit/proto/test_http_upgrade.c - proto/http_upgrade.c against RFC 6455 section 4
 * (opening handshake) and RFC 9112/9110 (request syntax, status codes): every handshake
 * header rule and its status, subprotocol choice, path, Origin, limits, the incremental
 * contract at every split point, and the exact responses.
 */
#include "proto/http_upgrade.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- guarded input: the last byte sits flush against a PROT_NONE page ---- */

struct guard {
	struct guarded_buf gb;
	char *p;
};

static struct guard guard_copy(const void *src, size_t len)
{
	struct guard g;

	g.p = (char *)guarded_buf_init(&g.gb, src, len);
	return g;
}

static void guard_free(struct guard *g)
{
	guarded_buf_fini(&g->gb);
}

/* ---- helpers ---- */

#define CRLF "\r\n"

/* RFC 6455 section 1.3's sample handshake, with the Host our tests use. */
#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define HS_HEAD "GET /ws HTTP/1.1" CRLF "Host: localhost:15674" CRLF
#define HS_WS                                                                 \
	"Upgrade: websocket" CRLF "Connection: Upgrade" CRLF                  \
	"Sec-WebSocket-Key: " RFC_KEY CRLF "Sec-WebSocket-Version: 13" CRLF
/* A complete, valid handshake; EXTRA goes before the blank line. */
#define HANDSHAKE(EXTRA) HS_HEAD HS_WS EXTRA CRLF

static struct http_upgrade_config cfg;
static struct http_upgrade_parser parser;
static struct http_request req;
static char keep[65536];	/* the parsed bytes, so views stay readable after the guard */

static void setup(void)
{
	http_upgrade_config_default(&cfg);
}

/* Parses s in one call from guarded memory; views in req point into `keep`. */
static ssize_t parse_n(const char *s, size_t len)
{
	struct guard g = guard_copy(s, len);
	ssize_t n;

	http_upgrade_parser_init(&parser, &cfg);
	n = http_upgrade_parse(&parser, g.p, len, &req);
	guard_free(&g);
	/* parse again over stable memory so tests can read the views */
	cr_assert_lt(len, sizeof(keep));
	memcpy(keep, s, len);
	http_upgrade_parser_init(&parser, &cfg);
	cr_assert_eq(http_upgrade_parse(&parser, keep, len, &req), n);
	return n;
}

static ssize_t parse(const char *s)
{
	return parse_n(s, strlen(s));
}

static bool view_is(struct http_view v, const char *s)
{
	return v.len == strlen(s) && !memcmp(v.ptr, s, v.len);
}

#define assert_view(v, s) cr_assert(view_is((v), (s)), "got \"%.*s\", want \"%s\"", \
				    (int)(v).len, (v).ptr, (s))

#define assert_upgrade(s)                                                       \
	do {                                                                    \
		ssize_t n_ = parse(s);                                          \
		cr_assert_eq(n_, (ssize_t)strlen(s), "got %zd (%s)", n_,        \
			     n_ < 0 ? parser.reason : "");                      \
		cr_assert_eq(req.kind, HTTP_KIND_UPGRADE);                      \
	} while (0)

#define assert_refused(s, status)                                               \
	do {                                                                    \
		ssize_t n_ = parse(s);                                          \
		cr_assert_eq(n_, -(status), "got %zd, want -%d", n_, (status)); \
		cr_assert(parser.reason && *parser.reason);                     \
	} while (0)

TestSuite(http_upgrade, .init = setup);

/* ================= the handshake (RFC 6455 4.1, 4.2.1) ================= */

/* RFC 6455 1.3: the sample client handshake, as a browser sends it. */
Test(http_upgrade, accepts_rfc_sample_handshake)
{
	static const char hs[] = "GET /ws?room=1 HTTP/1.1" CRLF "Host: server.example.com" CRLF
				 "Upgrade: websocket" CRLF "Connection: Upgrade" CRLF
				 "Sec-WebSocket-Key: " RFC_KEY CRLF
				 "Origin: http://example.com" CRLF
				 "Sec-WebSocket-Protocol: chat, superchat" CRLF
				 "Sec-WebSocket-Version: 13" CRLF CRLF;

	assert_upgrade(hs);
	assert_view(req.method, "GET");
	assert_view(req.target, "/ws?room=1");
	assert_view(req.path, "/ws");
	assert_view(req.query, "room=1");
	assert_view(req.host, "server.example.com");
	assert_view(req.key, RFC_KEY);
	assert_view(req.origin, "http://example.com");
	cr_assert_eq(req.proto, HTTP_WS_PROTO_NONE);
	cr_assert_eq(req.minor_version, 1);
	cr_assert_eq(req.nheaders, 7);
}

/* RFC 6455 1.3: the server's answer to the sample key. */
Test(http_upgrade, computes_accept_key_of_rfc_sample)
{
	char accept[29];

	cr_assert_eq(http_ws_accept_key(RFC_KEY, strlen(RFC_KEY), accept), 0);
	cr_assert_str_eq(accept, RFC_ACCEPT);
}

/* RFC 6455 4.2.2: 101 with Upgrade, Connection and Sec-WebSocket-Accept, nothing else
 * when no subprotocol was chosen (RabbitMQ accepts clients that offer none). */
Test(http_upgrade, builds_101_without_protocol_when_client_offers_none)
{
	char out[256];
	ssize_t n;

	assert_upgrade(HANDSHAKE(""));
	n = http_response_101(out, sizeof(out), &req);
	cr_assert_gt(n, 0);
	out[n] = '\0';
	cr_assert_str_eq(out, "HTTP/1.1 101 Switching Protocols" CRLF "Upgrade: websocket" CRLF
			      "Connection: Upgrade" CRLF "Sec-WebSocket-Accept: " RFC_ACCEPT CRLF
			      CRLF);
}

/* RFC 6455 4.2.2: the chosen subprotocol is named in the 101. */
Test(http_upgrade, builds_101_naming_the_chosen_protocol)
{
	char out[256];
	ssize_t n;

	assert_upgrade(HANDSHAKE("Sec-WebSocket-Protocol: v10.stomp, v11.stomp, v12.stomp" CRLF));
	n = http_response_101(out, sizeof(out), &req);
	cr_assert_gt(n, 0);
	out[n] = '\0';
	cr_assert_str_eq(out, "HTTP/1.1 101 Switching Protocols" CRLF "Upgrade: websocket" CRLF
			      "Connection: Upgrade" CRLF "Sec-WebSocket-Accept: " RFC_ACCEPT CRLF
			      "Sec-WebSocket-Protocol: v12.stomp" CRLF CRLF);
}

/* RFC 6455 4.2.1 item 3: the Upgrade value is compared case-insensitively. */
Test(http_upgrade, accepts_upgrade_token_in_any_case)
{
	assert_upgrade(HS_HEAD "Upgrade: WebSocket" CRLF "Connection: Upgrade" CRLF
		       "Sec-WebSocket-Key: " RFC_KEY CRLF "Sec-WebSocket-Version: 13" CRLF CRLF);
}

/* RFC 6455 4.2.1 item 4: Connection "includes" the upgrade token (Firefox sends
 * "keep-alive, Upgrade"), case-insensitively, possibly over several lines. */
Test(http_upgrade, finds_upgrade_among_connection_tokens)
{
	assert_upgrade("GET /ws HTTP/1.1" CRLF "Host: h" CRLF "Upgrade: websocket" CRLF
		       "Connection: keep-alive, Upgrade" CRLF "Sec-WebSocket-Key: " RFC_KEY CRLF
		       "Sec-WebSocket-Version: 13" CRLF CRLF);
	assert_upgrade("GET /ws HTTP/1.1" CRLF "Host: h" CRLF "Upgrade: websocket" CRLF
		       "Connection: keep-alive" CRLF "Connection: ,upgrade ," CRLF
		       "Sec-WebSocket-Key: " RFC_KEY CRLF "Sec-WebSocket-Version: 13" CRLF CRLF);
}

/* RFC 6455 4.2.1 item 4: without "upgrade" in Connection the request is not a handshake. */
Test(http_upgrade, rejects_connection_without_upgrade_token_with_400)
{
	assert_refused("GET /ws HTTP/1.1" CRLF "Host: h" CRLF "Upgrade: websocket" CRLF
		       "Connection: keep-alive, upgraded" CRLF "Sec-WebSocket-Key: " RFC_KEY CRLF
		       "Sec-WebSocket-Version: 13" CRLF CRLF, 400);
	assert_refused("GET /ws HTTP/1.1" CRLF "Host: h" CRLF "Upgrade: websocket" CRLF
		       "Sec-WebSocket-Key: " RFC_KEY CRLF "Sec-WebSocket-Version: 13" CRLF CRLF,
		       400);
}

/* RFC 6455 4.2.1 item 5: Sec-WebSocket-Key is required. */
Test(http_upgrade, rejects_missing_key_with_400)
{
	assert_refused(HS_HEAD "Upgrade: websocket" CRLF "Connection: Upgrade" CRLF
		       "Sec-WebSocket-Version: 13" CRLF CRLF, 400);
}

/* RFC 6455 4.1: the key is 16 random bytes in base64: 22 characters and "==". */
Test(http_upgrade, rejects_key_that_is_not_16_bytes_of_base64_with_400)
{
	static const char *const bad[] = {
		"dGhlIHNhbXBsZSBub25jZQ=",	/* too short */
		"dGhlIHNhbXBsZSBub25jZQ===",	/* too long */
		"dGhlIHNhbXBsZSBub25jZQ",	/* no padding */
		"dGhlIHNhbXBsZSBub25jZ==",	/* 15 bytes */
		"dGhlIHNhbXBsZSBub25j*Q==",	/* not base64 */
		"dGhlIHNhbXBsZSBub25jZQ=A",
		"",
	};
	char hs[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(hs, sizeof(hs), HS_HEAD "Upgrade: websocket" CRLF "Connection: Upgrade" CRLF
			 "Sec-WebSocket-Key: %s" CRLF "Sec-WebSocket-Version: 13" CRLF CRLF, bad[i]);
		cr_assert_eq(parse(hs), HTTP_E_BAD_REQUEST, "key \"%s\"", bad[i]);
	}
}

/* A second key makes the accept value ambiguous. */
Test(http_upgrade, rejects_duplicate_key_with_400)
{
	assert_refused(HANDSHAKE("Sec-WebSocket-Key: " RFC_KEY CRLF), 400);
}

/* RFC 6455 4.4: a version we do not speak gets 426 and "Sec-WebSocket-Version: 13". */
Test(http_upgrade, rejects_other_version_with_426)
{
	assert_refused(HS_HEAD "Upgrade: websocket" CRLF "Connection: Upgrade" CRLF
		       "Sec-WebSocket-Key: " RFC_KEY CRLF "Sec-WebSocket-Version: 8" CRLF CRLF, 426);
}

/* RFC 6455 4.2.1 item 6: the version header is required; without it, the same 426. */
Test(http_upgrade, rejects_missing_version_with_426)
{
	assert_refused(HS_HEAD "Upgrade: websocket" CRLF "Connection: Upgrade" CRLF
		       "Sec-WebSocket-Key: " RFC_KEY CRLF CRLF, 426);
}

/* RFC 6455 4.2.1 item 2 and RFC 9112 3.2: Host is required in HTTP/1.1. */
Test(http_upgrade, rejects_missing_host_with_400)
{
	assert_refused("GET /ws HTTP/1.1" CRLF HS_WS CRLF, 400);
	assert_refused("GET / HTTP/1.1" CRLF CRLF, 400);
}

/* RFC 9112 3.2: "more than one Host header field line" is a 400. */
Test(http_upgrade, rejects_duplicate_host_with_400)
{
	assert_refused(HANDSHAKE("Host: other" CRLF), 400);
}

/* RFC 6454 7.3: a request carries at most one Origin. */
Test(http_upgrade, rejects_duplicate_origin_with_400)
{
	assert_refused(HANDSHAKE("Origin: http://a" CRLF "Origin: http://b" CRLF), 400);
}

/* RFC 6455 4.1: "The method of the request MUST be GET, and the HTTP version MUST be at
 * least 1.1." */
Test(http_upgrade, rejects_http_1_0_upgrade_with_400)
{
	assert_refused("GET /ws HTTP/1.0" CRLF "Host: h" CRLF HS_WS CRLF, 400);
}

/* RFC 9112 2.3: any HTTP/1.x minor version is HTTP/1.1-compatible. */
Test(http_upgrade, accepts_later_http_1_minor_version)
{
	assert_upgrade("GET /ws HTTP/1.2" CRLF "Host: h" CRLF HS_WS CRLF);
	cr_assert_eq(req.minor_version, 2);
}

/* ================= subprotocols (RFC 6455 4.2.2 item 5.4, 11.3.4) ================= */

/* stomp.js offers "v10.stomp, v11.stomp, v12.stomp": we take the highest STOMP version. */
Test(http_upgrade, picks_v12_stomp_from_stompjs_offer)
{
	assert_upgrade(HANDSHAKE("Sec-WebSocket-Protocol: v10.stomp, v11.stomp, v12.stomp" CRLF));
	cr_assert_eq(req.proto, HTTP_WS_PROTO_V12);
	cr_assert_str_eq(http_ws_proto_name(req.proto), "v12.stomp");
}

/* The choice is by STOMP version, not by position in the client's list. */
Test(http_upgrade, picks_highest_version_whatever_the_order)
{
	assert_upgrade(HANDSHAKE("Sec-WebSocket-Protocol: v11.stomp,stomp,v10.stomp" CRLF));
	cr_assert_eq(req.proto, HTTP_WS_PROTO_V11);
}

/* RFC 6455 4.1: the header may be repeated; its lists are one list. */
Test(http_upgrade, picks_across_several_protocol_lines)
{
	assert_upgrade(HANDSHAKE("Sec-WebSocket-Protocol: stomp" CRLF
				 "Sec-WebSocket-Protocol: mqtt, v10.stomp" CRLF));
	cr_assert_eq(req.proto, HTTP_WS_PROTO_V10);
}

/* Plain "stomp" is accepted when it is all the client offers. */
Test(http_upgrade, picks_plain_stomp_when_only_offered)
{
	assert_upgrade(HANDSHAKE("Sec-WebSocket-Protocol: stomp" CRLF));
	cr_assert_eq(req.proto, HTTP_WS_PROTO_STOMP);
}

/* RFC 6455 4.2.2: protocols we do not speak are not chosen; the handshake still
 * succeeds without the header and the client decides (RabbitMQ does the same). */
Test(http_upgrade, chooses_none_when_no_offered_protocol_is_known)
{
	assert_upgrade(HANDSHAKE("Sec-WebSocket-Protocol: mqtt, chat" CRLF));
	cr_assert_eq(req.proto, HTTP_WS_PROTO_NONE);
	cr_assert_str_eq(http_ws_proto_name(req.proto), "");
}

/* RFC 6455 4.1: the client checks our choice against its list byte for byte, so we match
 * byte for byte too: "V12.STOMP" is not "v12.stomp". */
Test(http_upgrade, matches_protocol_names_case_sensitively)
{
	assert_upgrade(HANDSHAKE("Sec-WebSocket-Protocol: V12.STOMP" CRLF));
	cr_assert_eq(req.proto, HTTP_WS_PROTO_NONE);
}

/* ================= path (RFC 6455 4.2.1 item 1) ================= */

/* A handshake for another path has no endpoint: 404. */
Test(http_upgrade, rejects_upgrade_for_other_path_with_404)
{
	assert_refused("GET /stomp HTTP/1.1" CRLF "Host: h" CRLF HS_WS CRLF, 404);
	assert_refused("GET /ws/ HTTP/1.1" CRLF "Host: h" CRLF HS_WS CRLF, 404);
	assert_refused("GET /WS HTTP/1.1" CRLF "Host: h" CRLF HS_WS CRLF, 404);
}

/* The query string is not part of the path. */
Test(http_upgrade, ignores_query_string_when_matching_path)
{
	assert_upgrade("GET /ws?token=abc&x=1 HTTP/1.1" CRLF "Host: h" CRLF HS_WS CRLF);
	assert_view(req.path, "/ws");
	assert_view(req.query, "token=abc&x=1");
	assert_upgrade("GET /ws? HTTP/1.1" CRLF "Host: h" CRLF HS_WS CRLF);
	assert_view(req.query, "");
}

/* --ws-path changes the endpoint. */
Test(http_upgrade, honours_configured_path)
{
	cfg.path = "/stomp";
	assert_upgrade("GET /stomp HTTP/1.1" CRLF "Host: h" CRLF HS_WS CRLF);
	assert_refused("GET /ws HTTP/1.1" CRLF "Host: h" CRLF HS_WS CRLF, 404);
}

/* RFC 9112 3.2.2: "a server MUST accept the absolute-form in requests". */
Test(http_upgrade, accepts_absolute_form_target)
{
	assert_upgrade("GET http://localhost:15674/ws?a HTTP/1.1" CRLF "Host: h" CRLF HS_WS CRLF);
	assert_view(req.path, "/ws");
	assert_view(req.query, "a");
	cr_assert_eq(parse("GET HTTPS://example.com HTTP/1.1" CRLF "Host: h" CRLF CRLF),
		     (ssize_t)strlen("GET HTTPS://example.com HTTP/1.1" CRLF "Host: h" CRLF CRLF));
	assert_view(req.path, "/");
}

/* RFC 9112 3.2: a GET target is origin-form or absolute-form; nothing else. */
Test(http_upgrade, rejects_malformed_target_with_400)
{
	assert_refused("GET ws HTTP/1.1" CRLF "Host: h" CRLF HS_WS CRLF, 400);
	assert_refused("GET * HTTP/1.1" CRLF "Host: h" CRLF CRLF, 400);
	assert_refused("GET /w\x01s HTTP/1.1" CRLF "Host: h" CRLF CRLF, 400);
	assert_refused("GET /w\xc3\xa9 HTTP/1.1" CRLF "Host: h" CRLF CRLF, 400);
}

/* ================= Origin (RFC 6455 4.2.2 item 4, 10.2) ================= */

static const char *const allowed[] = { "http://localhost:15674", "https://app.example" };

/* An Origin outside the configured list gets 403. */
Test(http_upgrade, rejects_origin_not_in_allow_list_with_403)
{
	cfg.origins = allowed;
	cfg.norigins = 2;
	assert_refused(HANDSHAKE("Origin: http://evil.example" CRLF), 403);
	assert_refused(HANDSHAKE("Origin: http://localhost:15675" CRLF), 403);
	assert_refused(HANDSHAKE("Origin: null" CRLF), 403);
}

/* Origins in the list pass; scheme and host compare case-insensitively (RFC 6454 4). */
Test(http_upgrade, accepts_origin_in_allow_list)
{
	cfg.origins = allowed;
	cfg.norigins = 2;
	assert_upgrade(HANDSHAKE("Origin: http://localhost:15674" CRLF));
	assert_upgrade(HANDSHAKE("Origin: HTTPS://App.Example" CRLF));
}

/* RFC 6455 10.2: Origin protects browsers; a client without one is not a browser and
 * could claim any origin anyway, so it is let in. */
Test(http_upgrade, accepts_request_without_origin_despite_allow_list)
{
	cfg.origins = allowed;
	cfg.norigins = 2;
	assert_upgrade(HANDSHAKE(""));
	cr_assert_eq(req.origin.len, 0);
}

/* An empty allow-list lets every Origin in. */
Test(http_upgrade, accepts_any_origin_without_allow_list)
{
	assert_upgrade(HANDSHAKE("Origin: http://anything.example" CRLF));
}

/* ================= plain GET (the page on port 15674) ================= */

/* A GET without Upgrade is handed to the server with its path: "/" serves the page. */
Test(http_upgrade, reports_plain_get_of_root_with_its_path)
{
	static const char get[] = "GET / HTTP/1.1" CRLF "Host: localhost:15674" CRLF
				  "Accept: text/html" CRLF CRLF;

	cr_assert_eq(parse(get), (ssize_t)strlen(get));
	cr_assert_eq(req.kind, HTTP_KIND_PLAIN_GET);
	assert_view(req.path, "/");
	assert_view(*http_request_header(&req, "ACCEPT"), "text/html");
}

/* Other paths are plain GETs too; the server answers 404 for what it does not serve. */
Test(http_upgrade, reports_plain_get_of_other_path)
{
	cr_assert_gt(parse("GET /favicon.ico?v=2 HTTP/1.1" CRLF "Host: h" CRLF CRLF), 0);
	cr_assert_eq(req.kind, HTTP_KIND_PLAIN_GET);
	assert_view(req.path, "/favicon.ico");
}

/* RFC 9110 15.5.22: a plain GET of the WebSocket path is told to upgrade. */
Test(http_upgrade, answers_plain_get_of_ws_path_with_426)
{
	assert_refused("GET /ws HTTP/1.1" CRLF "Host: h" CRLF CRLF, 426);
}

/* RFC 9110 7.8: an upgrade to something else is ignored; the GET stays plain. */
Test(http_upgrade, treats_non_websocket_upgrade_as_plain_get)
{
	cr_assert_gt(parse("GET / HTTP/1.1" CRLF "Host: h" CRLF "Upgrade: h2c" CRLF
			   "Connection: Upgrade, HTTP2-Settings" CRLF CRLF), 0);
	cr_assert_eq(req.kind, HTTP_KIND_PLAIN_GET);
}

/* RFC 9112 3.2: HTTP/1.0 needs no Host; a curl --http1.0 of the page works. */
Test(http_upgrade, accepts_http_1_0_plain_get_without_host)
{
	cr_assert_gt(parse("GET / HTTP/1.0" CRLF CRLF), 0);
	cr_assert_eq(req.kind, HTTP_KIND_PLAIN_GET);
	cr_assert_eq(req.minor_version, 0);
}

/* ================= request line (RFC 9112 section 3) ================= */

/* RFC 9110 15.5.6: a method the resource does not allow is 405 (with Allow). */
Test(http_upgrade, rejects_known_non_get_methods_with_405)
{
	static const char *const m[] = { "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
					 "TRACE", "CONNECT" };
	char hs[256];

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		snprintf(hs, sizeof(hs), "%s / HTTP/1.1" CRLF "Host: h" CRLF CRLF, m[i]);
		cr_assert_eq(parse(hs), HTTP_E_METHOD_NOT_ALLOWED, "%s", m[i]);
	}
}

/* RFC 9110 9.1: an unknown method is 501; methods are case-sensitive, so "get" is one. */
Test(http_upgrade, rejects_unknown_method_with_501)
{
	assert_refused("BREW / HTTP/1.1" CRLF "Host: h" CRLF CRLF, 501);
	assert_refused("get / HTTP/1.1" CRLF "Host: h" CRLF CRLF, 501);
}

/* RFC 9110 15.6.6: 505 for a major version we do not speak. */
Test(http_upgrade, rejects_other_major_version_with_505)
{
	assert_refused("GET / HTTP/2.0" CRLF "Host: h" CRLF CRLF, 505);
	assert_refused("GET / HTTP/0.9" CRLF "Host: h" CRLF CRLF, 505);
}

/* RFC 9112 3: method SP request-target SP HTTP-version, nothing else. */
Test(http_upgrade, rejects_malformed_request_line_with_400)
{
	static const char *const bad[] = {
		"GET" CRLF CRLF,
		"GET /" CRLF CRLF,
		"GET / HTTP/1.1 extra" CRLF CRLF,
		"GET  / HTTP/1.1" CRLF CRLF,
		"GET / http/1.1" CRLF CRLF,
		"GET / HTTP/1" CRLF CRLF,
		"GET / HTTP/1.1x" CRLF CRLF,
		" / HTTP/1.1" CRLF CRLF,
		"G(T / HTTP/1.1" CRLF CRLF,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i]), HTTP_E_BAD_REQUEST, "\"%s\"", bad[i]);
}

/* ================= header lines (RFC 9112 section 5) ================= */

/* RFC 9112 5.2: obs-fold is refused with 400 (not unfolded). */
Test(http_upgrade, rejects_folded_header_line_with_400)
{
	assert_refused(HANDSHAKE("X-Long: part one" CRLF " part two" CRLF), 400);
}

/* RFC 9112 5.1: "No whitespace is allowed between the field name and colon"; a server
 * MUST reject it with 400 (request smuggling). */
Test(http_upgrade, rejects_whitespace_before_colon_with_400)
{
	assert_refused("GET / HTTP/1.1" CRLF "Host : h" CRLF CRLF, 400);
}

/* RFC 9112 5: a header line needs a colon and a token name. */
Test(http_upgrade, rejects_header_line_without_colon_or_name_with_400)
{
	assert_refused(HANDSHAKE("NoColonHere" CRLF), 400);
	assert_refused(HANDSHAKE(": value" CRLF), 400);
	assert_refused(HANDSHAKE("Bad(Name): value" CRLF), 400);
}

/* RFC 9110 5.5: CR, LF and NUL inside a value are refused. */
Test(http_upgrade, rejects_control_characters_in_header_value_with_400)
{
	static const char nul[] = HANDSHAKE("X-A: a\0b" CRLF);
	static const char cr[] = HANDSHAKE("X-A: a\rb" CRLF);

	cr_assert_eq(parse_n(nul, sizeof(nul) - 1), HTTP_E_BAD_REQUEST);
	cr_assert_eq(parse_n(cr, sizeof(cr) - 1), HTTP_E_BAD_REQUEST);
}

/* RFC 9110 5.5: whitespace around a value is not part of it; obs-text is allowed. */
Test(http_upgrade, trims_whitespace_around_header_values)
{
	assert_upgrade("GET /ws HTTP/1.1" CRLF "Host:\t  h:1 \t" CRLF HS_WS
		       "User-Agent: caf\xc3\xa9 " CRLF CRLF);
	assert_view(req.host, "h:1");
	assert_view(*http_request_header(&req, "user-agent"), "caf\xc3\xa9");
	cr_assert_null(http_request_header(&req, "cookie"));
}

/* A GET with a body would leave bytes that look like WebSocket frames: refuse it. */
Test(http_upgrade, rejects_request_with_body_with_400)
{
	assert_refused(HANDSHAKE("Content-Length: 5" CRLF), 400);
	assert_upgrade(HANDSHAKE("Content-Length: 0" CRLF));
}

/* RFC 9112 6.1: we implement no transfer coding, so Transfer-Encoding is 501. */
Test(http_upgrade, rejects_transfer_encoding_with_501)
{
	assert_refused(HANDSHAKE("Transfer-Encoding: chunked" CRLF), 501);
}

/* RFC 9112 2.2: a recipient MAY accept a bare LF as line terminator. */
Test(http_upgrade, accepts_bare_lf_line_ends)
{
	assert_upgrade("GET /ws HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: Upgrade\n"
		       "Sec-WebSocket-Key: " RFC_KEY "\nSec-WebSocket-Version: 13\n\n");
}

/* RFC 9112 2.2: a server SHOULD ignore empty lines before the request line. */
Test(http_upgrade, skips_empty_lines_before_request_line)
{
	assert_upgrade(CRLF CRLF HANDSHAKE(""));
	assert_view(req.method, "GET");
}

/* ================= incremental parsing and limits ================= */

/* Until the blank line arrives there is nothing to say, and the parser says so. */
Test(http_upgrade, needs_more_bytes_until_the_blank_line)
{
	static const char hs[] = HANDSHAKE("");

	for (size_t len = 0; len < sizeof(hs) - 1; len++) {
		http_upgrade_parser_init(&parser, &cfg);
		cr_assert_eq(http_upgrade_parse(&parser, hs, len, &req), 0, "len %zu", len);
	}
}

/* The contract: call again with the same start and more bytes; any split gives the
 * same result as one call. */
Test(http_upgrade, same_result_at_every_split_point)
{
	static const char hs[] = HANDSHAKE("Origin: http://o" CRLF
					   "Sec-WebSocket-Protocol: v11.stomp" CRLF);
	size_t len = sizeof(hs) - 1;

	for (size_t cut = 0; cut < len; cut++) {
		/* the second call may see the bytes moved, as after a buffer compaction */
		struct guard a = guard_copy(hs, cut);
		struct guard b = guard_copy(hs, len);
		ssize_t n;

		http_upgrade_parser_init(&parser, &cfg);
		n = http_upgrade_parse(&parser, a.p, cut, &req);
		cr_assert_eq(n, 0, "cut %zu", cut);
		n = http_upgrade_parse(&parser, b.p, len, &req);
		cr_assert_eq(n, (ssize_t)len, "cut %zu", cut);
		cr_assert_eq(req.proto, HTTP_WS_PROTO_V11);
		cr_assert_eq(req.origin.len, 8);
		cr_assert_eq(req.origin.ptr, b.p + (strstr(hs, "http://o") - hs));
		guard_free(&a);
		guard_free(&b);
	}
}

/* One byte per call, as a slow client might send it. */
Test(http_upgrade, same_result_fed_one_byte_at_a_time)
{
	static const char hs[] = HANDSHAKE("Sec-WebSocket-Protocol: v10.stomp" CRLF);
	size_t len = sizeof(hs) - 1;
	ssize_t n = 0;

	http_upgrade_parser_init(&parser, &cfg);
	for (size_t have = 1; have <= len; have++) {
		n = http_upgrade_parse(&parser, hs, have, &req);
		cr_assert_eq(n, have == len ? (ssize_t)len : 0, "have %zu", have);
	}
	cr_assert_eq(req.kind, HTTP_KIND_UPGRADE);
	cr_assert_eq(req.proto, HTTP_WS_PROTO_V10);
}

/* Bytes after the head belong to the WebSocket layer: the head's length is returned. */
Test(http_upgrade, returns_head_length_leaving_later_bytes_alone)
{
	static const char hs[] = HANDSHAKE("") "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

	cr_assert_eq(parse_n(hs, sizeof(hs) - 1), (ssize_t)strlen(HANDSHAKE("")));
}

/* An endless request line is refused before its end arrives. */
Test(http_upgrade, rejects_long_request_line_with_414_before_it_ends)
{
	static char line[200];

	cfg.max_request_line = 100;
	memcpy(line, "GET /", 5);
	memset(line + 5, 'a', sizeof(line) - 5);
	http_upgrade_parser_init(&parser, &cfg);
	cr_assert_eq(http_upgrade_parse(&parser, line, 101, &req), 0);
	cr_assert_eq(http_upgrade_parse(&parser, line, 102, &req), HTTP_E_URI_TOO_LONG);
}

/* A complete request line over the limit is refused too; one at the limit is fine. */
Test(http_upgrade, request_line_limit_counts_bytes_without_crlf)
{
	static const char ok[] = "GET /ws HTTP/1.1" CRLF "Host: h" CRLF HS_WS CRLF;

	cfg.max_request_line = strlen("GET /ws HTTP/1.1");
	assert_upgrade(ok);
	cfg.max_request_line--;
	assert_refused(ok, 414);
}

/* Too many header lines: 431, as soon as one too many has arrived. */
Test(http_upgrade, rejects_too_many_header_lines_with_431)
{
	char hs[4096];
	size_t len = 0;

	cfg.max_headers = 6;
	len += (size_t)sprintf(hs + len, HS_HEAD HS_WS);	/* 5 headers */
	len += (size_t)sprintf(hs + len, "X-6: 6" CRLF CRLF);
	assert_upgrade(hs);
	len -= 2;
	len += (size_t)sprintf(hs + len, "X-7: 7" CRLF);	/* no blank line yet */
	http_upgrade_parser_init(&parser, &cfg);
	cr_assert_eq(http_upgrade_parse(&parser, hs, len, &req), HTTP_E_HEADERS_TOO_LARGE);
}

/* The cap holds even when the configured count is larger. */
Test(http_upgrade, never_keeps_more_than_headers_cap)
{
	char hs[8192];
	size_t len = 0;

	cfg.max_headers = 1000;
	len += (size_t)sprintf(hs + len, HS_HEAD HS_WS);
	for (int i = 0; i < HTTP_HEADERS_CAP; i++)
		len += (size_t)sprintf(hs + len, "X-%d: v" CRLF, i);
	sprintf(hs + len, CRLF);
	assert_refused(hs, 431);
}

/* A head over max_head is refused, complete or not (431). */
Test(http_upgrade, rejects_head_over_size_limit_with_431)
{
	static char hs[1024];

	cfg.max_head = 300;
	snprintf(hs, sizeof(hs), HANDSHAKE("Cookie: %0200d" CRLF), 0);
	assert_refused(hs, 431);
	hs[310] = '\0';		/* the same head, its end not arrived yet */
	assert_refused(hs, 431);
	cfg.max_head = strlen(HANDSHAKE(""));
	assert_upgrade(HANDSHAKE(""));
}

/* Once refused, the parser keeps its answer (the server closes after the response). */
Test(http_upgrade, keeps_returning_its_error)
{
	static const char bad[] = "BREW / HTTP/1.1" CRLF "Host: h" CRLF CRLF;

	http_upgrade_parser_init(&parser, &cfg);
	cr_assert_eq(http_upgrade_parse(&parser, bad, sizeof(bad) - 1, &req),
		     HTTP_E_NOT_IMPLEMENTED);
	cr_assert_eq(http_upgrade_parse(&parser, bad, sizeof(bad) - 1, &req),
		     HTTP_E_NOT_IMPLEMENTED);
	cr_assert_str_eq(parser.reason, "unknown method");
}

/* ================= responses ================= */

/* RFC 9110 8.6 and 9.6: an error has a length-delimited body and closes the connection. */
Test(http_upgrade, error_response_has_length_body_and_closes)
{
	char out[512];
	ssize_t n = http_response_error(out, sizeof(out), 404, "no WebSocket endpoint here");

	cr_assert_gt(n, 0);
	out[n] = '\0';
	cr_assert_str_eq(out, "HTTP/1.1 404 Not Found" CRLF
			      "Content-Type: text/plain; charset=utf-8" CRLF
			      "Content-Length: 27" CRLF "Connection: close" CRLF CRLF
			      "no WebSocket endpoint here\n");
}

/* RFC 6455 4.4 and RFC 9110 15.5.22: 426 names the protocol and version to use. */
Test(http_upgrade, response_426_carries_upgrade_and_version_13)
{
	char out[512];
	ssize_t n = http_response_error(out, sizeof(out), 426, NULL);

	cr_assert_gt(n, 0);
	out[n] = '\0';
	cr_assert(strstr(out, CRLF "Upgrade: websocket" CRLF));
	cr_assert(strstr(out, CRLF "Sec-WebSocket-Version: 13" CRLF));
	cr_assert(strstr(out, CRLF "Connection: Upgrade, close" CRLF));
	cr_assert(strstr(out, CRLF CRLF "Upgrade Required\n"));
}

/* RFC 9110 15.5.6: "The origin server MUST generate an Allow header field in a 405". */
Test(http_upgrade, response_405_carries_allow_get)
{
	char out[512];
	ssize_t n = http_response_error(out, sizeof(out), 405, "");

	cr_assert_gt(n, 0);
	out[n] = '\0';
	cr_assert(strstr(out, CRLF "Allow: GET" CRLF));
}

/* Every status the parser can return has a response. */
Test(http_upgrade, every_parse_error_has_a_response)
{
	static const int errs[] = { HTTP_E_BAD_REQUEST, HTTP_E_FORBIDDEN, HTTP_E_NOT_FOUND,
				    HTTP_E_METHOD_NOT_ALLOWED, HTTP_E_URI_TOO_LONG,
				    HTTP_E_UPGRADE_REQUIRED, HTTP_E_HEADERS_TOO_LARGE,
				    HTTP_E_NOT_IMPLEMENTED, HTTP_E_VERSION };
	char out[512];
	char status[32];

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		ssize_t n = http_response_error(out, sizeof(out), -errs[i], "why");

		cr_assert_gt(n, 0, "status %d", -errs[i]);
		snprintf(status, sizeof(status), "HTTP/1.1 %d ", -errs[i]);
		cr_assert(!memcmp(out, status, strlen(status)));
	}
	cr_assert_eq(http_response_error(out, sizeof(out), 200, "x"), -EINVAL);
	cr_assert_eq(http_response_error(out, sizeof(out), 0, "x"), -EINVAL);
}

/* The page: a 200 head alone (body sent as a second iovec) or head and body together. */
Test(http_upgrade, builds_200_with_or_without_body)
{
	static const char head[] = "HTTP/1.1 200 OK" CRLF "Content-Type: text/html; charset=utf-8"
				   CRLF "Content-Length: 12" CRLF "Connection: close" CRLF CRLF;
	char out[256];
	ssize_t n;

	n = http_response_200(out, sizeof(out), "text/html; charset=utf-8", NULL, 12);
	cr_assert_eq(n, (ssize_t)strlen(head));
	cr_assert(!memcmp(out, head, (size_t)n));
	n = http_response_200(out, sizeof(out), "text/html; charset=utf-8", "<p>hello</p>", 12);
	cr_assert_eq(n, (ssize_t)strlen(head) + 12);
	cr_assert(!memcmp(out + strlen(head), "<p>hello</p>", 12));
}

/* No response writes past the caller's buffer; each says -ENOSPC instead. */
Test(http_upgrade, responses_refuse_short_buffers_with_enospc)
{
	char out[256];
	ssize_t full;
	ssize_t err_full;

	assert_upgrade(HANDSHAKE("Sec-WebSocket-Protocol: v12.stomp" CRLF));
	full = http_response_101(out, sizeof(out), &req);
	err_full = http_response_error(out, sizeof(out), 426, "bad");
	cr_assert_gt(full, 0);
	cr_assert_gt(err_full, 0);
	for (size_t cap = 0; cap < (size_t)full || cap < (size_t)err_full; cap++) {
		struct guard g = guard_copy(NULL, cap);

		if (cap < (size_t)full)
			cr_assert_eq(http_response_101(g.p, cap, &req), -ENOSPC, "cap %zu", cap);
		if (cap < (size_t)err_full)
			cr_assert_eq(http_response_error(g.p, cap, 426, "bad"), -ENOSPC,
				     "cap %zu", cap);
		guard_free(&g);
	}
	cr_assert_eq(http_response_200(out, 10, "text/plain", NULL, 0), -ENOSPC);
	cr_assert_eq(http_response_101(out, (size_t)full, &req), full);
}
