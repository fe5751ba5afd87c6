/*
 * tests/fuzz/fuzz_http_upgrade.c - libFuzzer target for proto/http_upgrade.c.
 *
 * Input: byte 0 picks the configuration (Origin allow-list, tight limits, path), byte 1
 * seeds up to eight cut points, the rest is what a client sent. The head is parsed once
 * whole and once incrementally (growing prefixes, each copied to a heap block of its exact
 * size so ASan sees any read past it), and both must agree. On success every view lies in
 * the input and the 101 (or nothing) builds; on failure the error response builds.
 */
#include "proto/http_upgrade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const origins[] = { "http://localhost:15674", "https://app.example" };

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_http_upgrade: %s\n", what);
		abort();
	}
}

static void config_from(uint8_t b, struct http_upgrade_config *cfg)
{
	http_upgrade_config_default(cfg);
	if (b & 1) {
		cfg->origins = origins;
		cfg->norigins = 2;
	}
	if (b & 2) {
		cfg->max_request_line = 64;
		cfg->max_headers = 8;
		cfg->max_head = 512;
	}
	if (b & 4)
		cfg->path = "/";
}

static void check_view(struct http_view v, const char *buf, size_t n, const char *what)
{
	if (v.len == 0)
		return;
	check(v.ptr >= buf && v.ptr + v.len <= buf + n, what);
}

static void check_success(const struct http_request *req, const char *buf, size_t n)
{
	char out[256];
	ssize_t r;

	check_view(req->method, buf, n, "method outside the head");
	check_view(req->target, buf, n, "target outside the head");
	check_view(req->query, buf, n, "query outside the head");
	check_view(req->host, buf, n, "host outside the head");
	check_view(req->origin, buf, n, "origin outside the head");
	check_view(req->key, buf, n, "key outside the head");
	check(req->path.len > 0 && req->path.ptr[0] == '/', "path without a slash");
	check(req->nheaders <= HTTP_HEADERS_CAP, "too many headers kept");
	for (uint32_t i = 0; i < req->nheaders; i++) {
		check_view(req->headers[i].name, buf, n, "header name outside the head");
		check_view(req->headers[i].value, buf, n, "header value outside the head");
	}
	check(req->proto <= HTTP_WS_PROTO_V12, "unknown protocol chosen");
	if (req->kind == HTTP_KIND_PLAIN_GET)
		return;
	check(req->kind == HTTP_KIND_UPGRADE, "unknown kind");
	check(req->key.len == 24, "accepted a key that is not 24 bytes");
	r = http_response_101(out, sizeof(out), req);
	check(r > 0, "101 does not build");
}

static ssize_t parse_whole(const struct http_upgrade_config *cfg, const uint8_t *data,
			   size_t len, struct http_request *req, char **keep)
{
	struct http_upgrade_parser p;
	char *buf = malloc(len ? len : 1);
	ssize_t n;

	memcpy(buf, data, len);
	http_upgrade_parser_init(&p, cfg);
	n = http_upgrade_parse(&p, buf, len, req);
	check(n <= (ssize_t)len, "consumed more than given");
	if (n < 0) {
		char out[512];

		check(p.reason && *p.reason, "error without a reason");
		check(http_response_error(out, sizeof(out), (int)-n, p.reason) > 0,
		      "error response does not build");
	}
	*keep = buf;
	return n;
}

/* The same bytes, given in growing prefixes: the caller's side of the contract. */
static ssize_t parse_pieces(const struct http_upgrade_config *cfg, const uint8_t *data,
			    size_t len, uint32_t seed, struct http_request *req)
{
	struct http_upgrade_parser p;
	ssize_t n = 0;
	size_t have = 0;

	http_upgrade_parser_init(&p, cfg);
	for (int call = 0; call < 8 && n == 0 && have < len; call++) {
		char *buf;

		seed = seed * 1103515245u + 12345u;
		have += 1 + (seed >> 8) % (call == 7 ? len : len / 4 + 1);
		if (have > len || call == 7)
			have = len;
		buf = malloc(have);
		memcpy(buf, data, have);
		n = http_upgrade_parse(&p, buf, have, req);
		free(buf);
	}
	if (n == 0 && have < len) {
		char *buf = malloc(len);

		memcpy(buf, data, len);
		n = http_upgrade_parse(&p, buf, len, req);
		free(buf);
	}
	return n;
}

static bool is_limit(ssize_t n)
{
	return n == HTTP_E_URI_TOO_LONG || n == HTTP_E_HEADERS_TOO_LARGE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_request whole_req;
	static struct http_request piece_req;
	struct http_upgrade_config cfg;
	ssize_t whole;
	ssize_t pieces;
	char *keep;

	if (size < 2)
		return 0;
	config_from(data[0], &cfg);
	whole = parse_whole(&cfg, data + 2, size - 2, &whole_req, &keep);
	if (whole > 0)
		check_success(&whole_req, keep, (size_t)whole);
	free(keep);
	if (size - 2 == 0)
		return 0;
	pieces = parse_pieces(&cfg, data + 2, size - 2, data[1] * 2654435761u, &piece_req);
	/* A limit may trip on an open line before an earlier-ordered one would on the
	 * whole line, only with contrived configurations; both remain refusals. */
	if (!(is_limit(whole) && is_limit(pieces)))
		check(whole == pieces, "split changes the result");
	if (whole > 0) {
		check(whole_req.kind == piece_req.kind, "split changes the kind");
		check(whole_req.proto == piece_req.proto, "split changes the protocol");
		check(whole_req.nheaders == piece_req.nheaders, "split changes the headers");
	}
	return 0;
}
