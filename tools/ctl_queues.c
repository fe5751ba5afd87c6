/*
 * tools/ctl_queues.c - `heraldctl queues` (see ctl_queues.h). The table is sorted by vhost
 * and name; --json prints {"queues": [{"name", "vhost", "owner", "messages",
 * "consumers", "backups", "in_sync"}, ...]} in the same order.
 */
#include "tools/ctl_queues.h"

#include "core/base/hd_alloc.h"
#include "tools/ctl_http.h"
#include "tools/ctl_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct row {
	const char *name, *vhost, *owner;
	uint64_t messages, consumers;
	char backups[256];		/* comma-separated; "-" for none */
	const char *in_sync;		/* "yes", "no", or "-" without backups */
	const struct ctl_json *backup_list;
};

struct rows {
	struct row *r;
	size_t n, cap;
	struct ctl_json **docs;		/* the answers the rows point into */
	size_t ndocs;
};

static struct ctl_json *get_json(const char *node, const char *path, int timeout_ms)
{
	struct ctl_http_reply reply;
	struct ctl_json *doc = NULL;
	char err[256];

	if (ctl_http_get(node, path, timeout_ms, &reply, err, sizeof(err))) {
		fprintf(stderr, "heraldctl: %s: %s\n", node, err);
		return NULL;
	}
	if (reply.status == 200)
		doc = ctl_json_parse(reply.body, reply.body_len, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "HTTP %d", reply.status);
	if (!doc)
		fprintf(stderr, "heraldctl: %s%s answered: %s\n", node, path, err);
	ctl_http_reply_free(&reply);
	return doc;
}

/* A row's BACKUPS and IN SYNC cells from the owner's answer. */
static void describe_backups(struct row *row, const struct ctl_json *q)
{
	const struct ctl_json *b = ctl_json_get(q, "backups");
	const struct ctl_json *sync = ctl_json_get(q, "in_sync");
	size_t off = 0;

	row->backup_list = b;
	row->backups[0] = '\0';
	for (size_t i = 0; b && b->type == CTL_JSON_ARRAY && i < b->n; i++) {
		const char *name = b->items[i]->type == CTL_JSON_STRING ? b->items[i]->str : "?";
		int w = snprintf(row->backups + off, sizeof(row->backups) - off, "%s%s",
				 i ? "," : "", name);

		if (w < 0 || (size_t)w >= sizeof(row->backups) - off)
			break;
		off += (size_t)w;
	}
	if (!row->backups[0]) {
		snprintf(row->backups, sizeof(row->backups), "-");
		row->in_sync = "-";
	} else {
		row->in_sync = sync && sync->type == CTL_JSON_BOOL && sync->boolean ? "yes" : "no";
	}
}

static void add_rows(struct rows *rs, struct ctl_json *doc)
{
	const struct ctl_json *qs = ctl_json_get(doc, "queues");

	rs->docs = hd_realloc(rs->docs, (rs->ndocs + 1) * sizeof(*rs->docs));
	rs->docs[rs->ndocs++] = doc;
	for (size_t i = 0; qs && qs->type == CTL_JSON_ARRAY && i < qs->n; i++) {
		const struct ctl_json *q = qs->items[i];

		if (rs->n == rs->cap) {
			rs->cap = rs->cap ? rs->cap * 2 : 64;
			rs->r = hd_realloc(rs->r, rs->cap * sizeof(*rs->r));
		}
		rs->r[rs->n++] = (struct row){
			.name = ctl_json_get_str(q, "name", "?"),
			.vhost = ctl_json_get_str(q, "vhost", "/"),
			.owner = ctl_json_get_str(q, "owner", "?"),
			.messages = ctl_json_get_u64(q, "messages", 0),
			.consumers = ctl_json_get_u64(q, "consumers", 0),
		};
		describe_backups(&rs->r[rs->n - 1], q);
	}
}

static int by_vhost_name(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int c = strcmp(x->vhost, y->vhost);

	return c ? c : strcmp(x->name, y->name);
}

/* Writes s as a JSON string. */
static void put_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void print_json(const struct rows *rs)
{
	printf("{\"queues\": [");
	for (size_t i = 0; i < rs->n; i++) {
		printf(i ? ", {\"name\": " : "{\"name\": ");
		put_json_str(rs->r[i].name);
		printf(", \"vhost\": ");
		put_json_str(rs->r[i].vhost);
		printf(", \"owner\": ");
		put_json_str(rs->r[i].owner);
		printf(", \"messages\": %" PRIu64 ", \"consumers\": %" PRIu64 ", \"backups\": [",
		       rs->r[i].messages, rs->r[i].consumers);
		for (size_t k = 0; rs->r[i].backup_list && rs->r[i].backup_list->type == CTL_JSON_ARRAY &&
				   k < rs->r[i].backup_list->n; k++) {
			const struct ctl_json *b = rs->r[i].backup_list->items[k];

			printf(k ? ", " : "");
			put_json_str(b->type == CTL_JSON_STRING ? b->str : "?");
		}
		printf("], \"in_sync\": %s}", strcmp(rs->r[i].in_sync, "no") ? "true" : "false");
	}
	printf("]}\n");
}

static void print_table(const struct rows *rs)
{
	int w[4] = { 4, 5, 5, 7 };	/* NAME, VHOST, OWNER, BACKUPS */

	for (size_t i = 0; i < rs->n; i++) {
		const char *cells[4] = { rs->r[i].name, rs->r[i].vhost, rs->r[i].owner,
					 rs->r[i].backups };

		for (int c = 0; c < 4; c++)
			if (strlen(cells[c]) > (size_t)w[c])
				w[c] = (int)strlen(cells[c]);
	}
	printf("%-*s  %-*s  %-*s  %-*s  %7s  %8s  %9s\n", w[0], "NAME", w[1], "VHOST", w[2],
	       "OWNER", w[3], "BACKUPS", "IN SYNC", "MESSAGES", "CONSUMERS");
	for (size_t i = 0; i < rs->n; i++)
		printf("%-*s  %-*s  %-*s  %-*s  %7s  %8" PRIu64 "  %9" PRIu64 "\n", w[0],
		       rs->r[i].name, w[1], rs->r[i].vhost, w[2], rs->r[i].owner, w[3],
		       rs->r[i].backups, rs->r[i].in_sync, rs->r[i].messages, rs->r[i].consumers);
	printf("%zu queue%s\n", rs->n, rs->n == 1 ? "" : "s");
}

/* "host:admin_port" of a member from its status entry ("address" is its gossip host:port). */
static bool member_admin(const struct ctl_json *m, char *out, size_t cap)
{
	const char *addr = ctl_json_get_str(m, "address", "");
	const char *colon = strrchr(addr, ':');
	uint64_t port = ctl_json_get_u64(m, "admin_port", 0);

	if (!colon || !port)
		return false;
	snprintf(out, cap, "%.*s:%" PRIu64, (int)(colon - addr), addr, port);
	return true;
}

int ctl_queues(const struct ctl_opts *o)
{
	struct ctl_json *status = get_json(o->node, "/cluster/status", o->timeout_ms);
	const struct ctl_json *members = ctl_json_get(status, "members");
	const char *self = ctl_json_get_str(status, "self", "");
	struct rows rs = { 0 };
	struct ctl_json *mine;

	if (!status || !members || members->type != CTL_JSON_ARRAY) {
		ctl_json_free(status);
		return 1;
	}
	mine = get_json(o->node, "/api/queues", o->timeout_ms);
	if (!mine) {
		ctl_json_free(status);
		return 1;
	}
	add_rows(&rs, mine);
	for (size_t i = 0; i < members->n; i++) {
		const struct ctl_json *m = members->items[i];
		const char *state = ctl_json_get_str(m, "state", "");
		char node[160];
		struct ctl_json *doc;

		if (!strcmp(ctl_json_get_str(m, "name", ""), self) ||
		    (strcmp(state, "alive") && strcmp(state, "suspect")))
			continue;
		if (!member_admin(m, node, sizeof(node))) {
			fprintf(stderr, "heraldctl: member %s advertises no admin endpoint; its queues "
					"are not listed\n", ctl_json_get_str(m, "name", "?"));
			continue;
		}
		doc = get_json(node, "/api/queues", o->timeout_ms);
		if (doc)
			add_rows(&rs, doc);
	}
	if (rs.n)
		qsort(rs.r, rs.n, sizeof(*rs.r), by_vhost_name);
	if (o->json)
		print_json(&rs);
	else
		print_table(&rs);
	for (size_t i = 0; i < rs.ndocs; i++)
		ctl_json_free(rs.docs[i]);
	hd_free(rs.docs);
	hd_free(rs.r);
	ctl_json_free(status);
	return fflush(stdout) ? 1 : 0;
}
