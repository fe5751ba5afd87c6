/*
 * tools/ctl_cluster.c - `heraldctl cluster status` (see ctl_cluster.h). The table has one
 * row per member, sorted as the node sent them (by name), ours marked with '*', then
 * "N alive, N suspect, N dead, N left". LINK is this node's link to the member ("-" for
 * itself, or a node without links); OUT and IN are messages (and bytes) over it.
 */
#include "tools/ctl_cluster.h"

#include "core/base/hd_alloc.h"
#include "tools/ctl_http.h"
#include "tools/ctl_json.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define NCOLS 11

static const char *const headers[NCOLS] = {
	"NAME", "ADDRESS", "STATE", "INCARNATION", "LAST SEEN", "CONNECTIONS", "SUBSCRIPTIONS",
	"MSGS/S", "LINK", "OUT", "IN",
};

static void format_age(uint64_t ms, char *out, size_t cap)
{
	if (ms < 1000)
		snprintf(out, cap, "%" PRIu64 "ms", ms);
	else if (ms < 60000)
		snprintf(out, cap, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(out, cap, "%" PRIu64 "m%02" PRIu64 "s", ms / 60000, ms / 1000 % 60);
	else
		snprintf(out, cap, "%" PRIu64 "h%02" PRIu64 "m", ms / 3600000, ms / 60000 % 60);
}

/* The cells of one member row. */
static void row_cells(const struct ctl_json *m, const char *self, char cells[NCOLS][160])
{
	const char *name = ctl_json_get_str(m, "name", "?");

	snprintf(cells[0], 160, "%s%s", name, strcmp(name, self) ? "" : " *");
	snprintf(cells[1], 160, "%s", ctl_json_get_str(m, "address", "-"));
	snprintf(cells[2], 160, "%s", ctl_json_get_str(m, "state", "?"));
	snprintf(cells[3], 160, "%" PRIu64, ctl_json_get_u64(m, "incarnation", 0));
	format_age(ctl_json_get_u64(m, "last_seen_ms", 0), cells[4], 160);
	snprintf(cells[5], 160, "%" PRIu64, ctl_json_get_u64(m, "connections", 0));
	snprintf(cells[6], 160, "%" PRIu64, ctl_json_get_u64(m, "subscriptions", 0));
	snprintf(cells[7], 160, "%" PRIu64, ctl_json_get_u64(m, "msgs_per_s", 0));
	snprintf(cells[8], 160, "%s", ctl_json_get_str(m, "link", "-"));
	if (strcmp(cells[8], "-")) {
		snprintf(cells[9], 160, "%" PRIu64 " (%" PRIu64 " B)",
			 ctl_json_get_u64(m, "link_msgs_out", 0), ctl_json_get_u64(m, "link_bytes_out", 0));
		snprintf(cells[10], 160, "%" PRIu64 " (%" PRIu64 " B)",
			 ctl_json_get_u64(m, "link_msgs_in", 0), ctl_json_get_u64(m, "link_bytes_in", 0));
	} else {
		snprintf(cells[9], 160, "-");
		snprintf(cells[10], 160, "-");
	}
}

static void print_row(char cells[NCOLS][160], const int *width)
{
	for (int c = 0; c < NCOLS - 1; c++)
		printf("%-*s  ", width[c], cells[c]);
	printf("%s\n", cells[NCOLS - 1]);
}

static void print_table(const struct ctl_json *members, const char *self)
{
	char cells[NCOLS][160];
	int width[NCOLS];
	size_t count[4] = { 0 };
	static const char *const states[4] = { "alive", "suspect", "dead", "left" };

	for (int c = 0; c < NCOLS; c++)
		width[c] = (int)strlen(headers[c]);
	for (size_t i = 0; i < members->n; i++) {
		row_cells(members->items[i], self, cells);
		for (int c = 0; c < NCOLS; c++)
			width[c] = (int)strlen(cells[c]) > width[c] ? (int)strlen(cells[c]) : width[c];
	}
	for (int c = 0; c < NCOLS; c++)
		snprintf(cells[c], 160, "%s", headers[c]);
	print_row(cells, width);
	for (size_t i = 0; i < members->n; i++) {
		const char *st = ctl_json_get_str(members->items[i], "state", "");

		row_cells(members->items[i], self, cells);
		print_row(cells, width);
		for (int s = 0; s < 4; s++)
			count[s] += !strcmp(st, states[s]);
	}
	printf("%zu alive, %zu suspect, %zu dead, %zu left\n", count[0], count[1], count[2],
	       count[3]);
}

/* The controller's line: the agreed view (docs/replication.md) as this node sees it. */
static void print_controller(const struct ctl_json *ctl)
{
	const struct ctl_json *view = ctl_json_get(ctl, "view");
	const char *leader = ctl_json_get_str(ctl, "leader", "");

	printf("view epoch %" PRIu64 ", leader %s (this node: %s), %" PRIu64 " voter(s):",
	       ctl_json_get_u64(ctl, "epoch", 0), leader[0] ? leader : "none",
	       ctl_json_get_str(ctl, "role", "?"), ctl_json_get_u64(ctl, "voters", 0));
	for (size_t i = 0; view && view->type == CTL_JSON_ARRAY && i < view->n; i++)
		printf(" %s(%s)", ctl_json_get_str(view->items[i], "name", "?"),
		       ctl_json_get_str(view->items[i], "state", "?"));
	printf("\n");
}

int ctl_cluster_status(const struct ctl_opts *o)
{
	struct ctl_http_reply reply;
	struct ctl_json *doc;
	const struct ctl_json *members;
	char err[256];

	if (ctl_http_get(o->node, "/cluster/status", o->timeout_ms, &reply, err, sizeof(err))) {
		fprintf(stderr, "heraldctl: %s\n", err);
		return 1;
	}
	if (reply.status != 200) {
		fprintf(stderr, "heraldctl: %s answered HTTP %d\n", o->node, reply.status);
		ctl_http_reply_free(&reply);
		return 1;
	}
	doc = ctl_json_parse(reply.body, reply.body_len, err, sizeof(err));
	members = ctl_json_get(doc, "members");
	if (!doc || !members || members->type != CTL_JSON_ARRAY) {
		fprintf(stderr, "heraldctl: %s sent an unexpected status document: %s\n", o->node,
			doc ? "no members array" : err);
		ctl_json_free(doc);
		ctl_http_reply_free(&reply);
		return 1;
	}
	if (o->json)
		fwrite(reply.body, 1, reply.body_len, stdout);
	else
		print_table(members, ctl_json_get_str(doc, "self", ""));
	if (!o->json && ctl_json_get(doc, "controller"))
		print_controller(ctl_json_get(doc, "controller"));
	ctl_json_free(doc);
	ctl_http_reply_free(&reply);
	return fflush(stdout) ? 1 : 0;
}

int ctl_drain(const struct ctl_opts *o)
{
	struct ctl_http_reply reply;
	char err[256];
	int code;

	if (ctl_http_request("POST", o->node, "/api/drain", o->timeout_ms, &reply, err,
			     sizeof(err))) {
		fprintf(stderr, "heraldctl: %s\n", err);
		return 1;
	}
	code = reply.status;
	ctl_http_reply_free(&reply);
	if (code != 202) {
		fprintf(stderr, "heraldctl: %s answered HTTP %d to the drain\n", o->node, code);
		return 1;
	}
	printf("%s is draining: it hands its queues over, tells its clients to reconnect "
	       "elsewhere, then exits\n", o->node);
	return fflush(stdout) ? 1 : 0;
}

#define CLUSTER_KEY_BYTES 32

int ctl_cluster_keygen(const struct ctl_opts *o)
{
	unsigned char key[CLUSTER_KEY_BYTES];
	char b64[sodium_base64_ENCODED_LEN(CLUSTER_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];

	(void)o;
	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(b64, sizeof(b64), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(key, sizeof(key));
	if (printf("%s\n", b64) < 0 || fflush(stdout)) {
		sodium_memzero(b64, sizeof(b64));
		return 1;
	}
	sodium_memzero(b64, sizeof(b64));
	return 0;
}
