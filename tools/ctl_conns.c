/*
 * tools/ctl_conns.c - `heraldctl connections` (see ctl_conns.h). The table lists ID, USER,
 * VHOST, ADDRESS, PROTOCOL, SUBS, IN and OUT (bytes) and AGE; --json prints the node's
 * document as is.
 */
#include "tools/ctl_conns.h"

#include "tools/ctl_http.h"
#include "tools/ctl_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FRESH_TRIES 4		/* the node builds its list within a second of being asked */

/* GET /api/connections until its answer is fresh (bounded). The caller frees both. */
static struct ctl_json *fetch(const struct ctl_opts *o, struct ctl_http_reply *reply)
{
	char err[256];

	for (int i = 0; i < FRESH_TRIES; i++) {
		struct ctl_json *doc;
		const struct ctl_json *fresh;

		if (i)
			usleep(600 * 1000);
		if (ctl_http_get(o->node, "/api/connections", o->timeout_ms, reply, err,
				 sizeof(err))) {
			fprintf(stderr, "heraldctl: %s\n", err);
			return NULL;
		}
		doc = reply->status == 200 ?
		      ctl_json_parse(reply->body, reply->body_len, err, sizeof(err)) : NULL;
		if (!doc || !ctl_json_get(doc, "connections")) {
			fprintf(stderr, "heraldctl: %s did not answer a connections list (HTTP %d)\n",
				o->node, reply->status);
			ctl_json_free(doc);
			ctl_http_reply_free(reply);
			return NULL;
		}
		fresh = ctl_json_get(doc, "fresh");
		if ((fresh && fresh->type == CTL_JSON_BOOL && fresh->boolean) || i == FRESH_TRIES - 1)
			return doc;
		ctl_json_free(doc);
		ctl_http_reply_free(reply);
	}
	return NULL;
}

int ctl_connections(const struct ctl_opts *o)
{
	struct ctl_http_reply reply;
	struct ctl_json *doc = fetch(o, &reply);
	const struct ctl_json *cs;

	if (!doc)
		return 1;
	cs = ctl_json_get(doc, "connections");
	if (o->json) {
		fwrite(reply.body, 1, reply.body_len, stdout);
	} else {
		printf("%-16s  %-16s  %-8s  %-21s  %-9s  %4s  %12s  %12s  %6s\n", "ID", "USER",
		       "VHOST", "ADDRESS", "PROTOCOL", "SUBS", "IN", "OUT", "AGE");
		for (size_t i = 0; cs->type == CTL_JSON_ARRAY && i < cs->n; i++) {
			const struct ctl_json *c = cs->items[i];

			printf("%-16" PRIu64 "  %-16s  %-8s  %-21s  %-9s  %4" PRIu64 "  %12" PRIu64
			       "  %12" PRIu64 "  %5" PRIu64 "s\n", ctl_json_get_u64(c, "id", 0),
			       ctl_json_get_str(c, "user", ""), ctl_json_get_str(c, "vhost", ""),
			       ctl_json_get_str(c, "address", ""), ctl_json_get_str(c, "protocol", ""),
			       ctl_json_get_u64(c, "subscriptions", 0), ctl_json_get_u64(c, "bytes_in", 0),
			       ctl_json_get_u64(c, "bytes_out", 0), ctl_json_get_u64(c, "connected_s", 0));
		}
		printf("%zu connection%s\n", cs->n, cs->n == 1 ? "" : "s");
	}
	ctl_json_free(doc);
	ctl_http_reply_free(&reply);
	return fflush(stdout) ? 1 : 0;
}

int ctl_connections_close(const struct ctl_opts *o, const char *id)
{
	struct ctl_http_reply reply;
	char path[96];
	char err[256];
	int code;

	if (!*id || strspn(id, "0123456789") != strlen(id) || strlen(id) > 20) {
		fprintf(stderr, "heraldctl: a connection id is a number (heraldctl connections)\n");
		return 2;
	}
	/* the node closes only what its list shows: make sure it has one */
	if (ctl_http_get(o->node, "/api/connections", o->timeout_ms, &reply, err, sizeof(err)) == 0)
		ctl_http_reply_free(&reply);
	snprintf(path, sizeof(path), "/api/connections/%s/close", id);
	for (int i = 0; i < FRESH_TRIES; i++) {
		if (i)
			usleep(600 * 1000);
		if (ctl_http_request("POST", o->node, path, o->timeout_ms, &reply, err, sizeof(err))) {
			fprintf(stderr, "heraldctl: %s\n", err);
			return 1;
		}
		code = reply.status;
		ctl_http_reply_free(&reply);
		if (code == 202) {
			printf("connection %s is being closed\n", id);
			return fflush(stdout) ? 1 : 0;
		}
	}
	fprintf(stderr, "heraldctl: %s has no connection %s\n", o->node, id);
	return 1;
}
