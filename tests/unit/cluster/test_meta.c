/*
 * tests/unit/cluster/test_meta.c - cluster/meta.c (node metadata) and cluster/admin.c
 * (status JSON and HTTP framing).
 */
#include "cluster/admin.h"
#include "cluster/meta.h"
#include "cluster/swim.h"
#include "core/base/hd_alloc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

static const struct node_meta sample = {
	.addr = "10.1.2.3",
	.stomp_port = 61613,
	.ws_port = 15674,
	.nshards = 8,
	.connections = 123456789012ull,
	.subscriptions = 42,
	.msgs_per_s = 7,
	.route_port = 7947,
	.admin_port = 15672,
	.raft_port = 7948,
	.raft_id = 0x0123456789abcdefull,
};

Test(meta, round_trips)
{
	uint8_t buf[WIRE_META_MAX];
	struct node_meta got;
	size_t n = meta_encode(&sample, buf, sizeof(buf));

	cr_assert(n > 0 && n <= WIRE_META_MAX);
	cr_assert_eq(meta_decode(buf, n, &got), 0);
	cr_assert_str_eq(got.addr, "10.1.2.3");
	cr_assert_eq(got.stomp_port, 61613);
	cr_assert_eq(got.ws_port, 15674);
	cr_assert_eq(got.nshards, 8);
	cr_assert_eq(got.connections, 123456789012ull);
	cr_assert_eq(got.subscriptions, 42);
	cr_assert_eq(got.msgs_per_s, 7);
}

Test(meta, every_truncation_is_refused)
{
	uint8_t buf[WIRE_META_MAX];
	struct node_meta got;
	size_t n = meta_encode(&sample, buf, sizeof(buf));

	/* the route, admin and raft fields are appended: without them (an older node) the rest
	 * still decodes */
	size_t base = n - 14;

	for (size_t cut = 0; cut < base; cut++)
		cr_assert_eq(meta_decode(buf, cut, &got), -EINVAL, "cut at %zu", cut);
	cr_assert_eq(meta_decode(buf, base, &got), 0);
	cr_assert_eq(got.route_port, 0, "a node without links advertises none");
	cr_assert_eq(meta_decode(buf, base + 2, &got), 0);
	cr_assert_eq(got.route_port, sample.route_port);
	cr_assert_eq(got.admin_port, 0);
	cr_assert_eq(meta_decode(buf, base + 4, &got), 0);
	cr_assert_eq(got.admin_port, sample.admin_port);
	cr_assert_eq(got.raft_id, 0, "a node without a controller advertises none");
	cr_assert_eq(meta_decode(buf, n, &got), 0);
	cr_assert_eq(got.raft_port, sample.raft_port);
	cr_assert_eq(got.raft_id, sample.raft_id);
}

Test(meta, unknown_version_is_refused_and_zeroed)
{
	uint8_t buf[WIRE_META_MAX];
	struct node_meta got;
	size_t n = meta_encode(&sample, buf, sizeof(buf));

	buf[0] = 99;
	cr_assert_eq(meta_decode(buf, n, &got), -EINVAL);
	cr_assert_eq(got.connections, 0);
}

static void no_send(void *arg, const struct wire_addr *to, const uint8_t *buf, size_t len)
{
	(void)arg;
	(void)to;
	(void)buf;
	(void)len;
}

static struct swim *one_node(void)
{
	struct swim_config cfg;
	struct swim_io io = { .send = no_send };
	struct swim *s;

	swim_config_defaults(&cfg);
	strcpy(cfg.name, "b-self");
	strcpy(cfg.cluster, "c");
	cfg.addr = (struct wire_addr){ .family = 4, .ip = { 127, 0, 0, 1 }, .port = 7946 };
	cfg.meta_len = meta_encode(&sample, cfg.meta, sizeof(cfg.meta));
	s = swim_create(&cfg, &io, 1000);
	cr_assert(s);
	swim_seed_member(s, 1000, "a-peer", &(struct wire_addr){ .family = 4, .port = 1 }, NULL,
			 0);
	return s;
}

Test(admin, status_json_lists_members_sorted_with_their_load)
{
	struct swim *s = one_node();
	struct admin_buf out = { 0 };
	const char *a;
	const char *b;

	admin_render_status(s, 1500, "c", NULL, &out);
	cr_assert(strstr(out.ptr, "\"self\": \"b-self\""), "%s", out.ptr);
	a = strstr(out.ptr, "\"name\": \"a-peer\"");
	b = strstr(out.ptr, "\"name\": \"b-self\"");
	cr_assert(a && b && a < b, "%s", out.ptr);
	cr_assert(strstr(b, "\"state\": \"alive\", \"incarnation\": 0, \"last_seen_ms\": 0, "
			    "\"connections\": 123456789012, \"subscriptions\": 42, "
			    "\"msgs_per_s\": 7"), "%s", out.ptr);
	cr_assert(strstr(a, "\"last_seen_ms\": 500"), "%s", out.ptr);
	cr_assert(strstr(b, "\"address\": \"127.0.0.1:7946\""), "%s", out.ptr);
	cr_assert(strstr(out.ptr, "], \"gossip\": {\"packets_in\": 0, "), "%s", out.ptr);
	cr_assert(strstr(out.ptr, "\"dropped_bad_mac\": 0"), "%s", out.ptr);
	admin_buf_free(&out);
	swim_destroy(s);
}

Test(admin, fresher_self_load_replaces_the_gossiped_one)
{
	struct swim *s = one_node();
	struct admin_buf out = { 0 };
	struct node_meta fresh = { .connections = 5, .subscriptions = 6, .msgs_per_s = 9 };

	admin_render_status(s, 1500, "c", &(struct admin_local){ .self_load = &fresh }, &out);
	cr_assert(strstr(out.ptr, "\"connections\": 5, \"subscriptions\": 6, \"msgs_per_s\": 9"),
		  "%s", out.ptr);
	admin_buf_free(&out);
	swim_destroy(s);
}

Test(admin, auth_counters_follow_the_gossip_counters_when_given)
{
	struct swim *s = one_node();
	struct admin_buf out = { 0 };
	struct admin_auth auth = { .slow_checks = 20, .checks_in_flight_max = 8, .check_waits = 3 };

	admin_render_status(s, 1500, "c", &(struct admin_local){ .auth = &auth }, &out);
	cr_assert(strstr(out.ptr, "\"name_conflicts\": 0}, \"auth\": {\"slow_checks\": 20, "
			  "\"checks_in_flight_max\": 8, \"check_waits\": 3}}\n"), "%s", out.ptr);
	admin_buf_free(&out);
	admin_render_status(s, 1500, "c", NULL, &out);
	cr_assert_null(strstr(out.ptr, "\"auth\""), "%s", out.ptr);
	admin_buf_free(&out);
	swim_destroy(s);
}

static int respond(const char *req, struct admin_buf *out)
{
	struct swim *s = one_node();
	int code = admin_respond(req, strlen(req), s, 1500, "c", NULL, out);

	swim_destroy(s);
	return code;
}

Test(admin, get_status_answers_json)
{
	struct admin_buf out = { 0 };

	cr_assert_eq(respond("GET /cluster/status HTTP/1.1\r\nHost: x\r\n\r\n", &out), 200);
	cr_assert(!strncmp(out.ptr, "HTTP/1.1 200 OK\r\n", 17));
	cr_assert(strstr(out.ptr, "Content-Type: application/json\r\n"));
	cr_assert(strstr(out.ptr, "\r\n\r\n{\"self\""));
	admin_buf_free(&out);
	cr_assert_eq(respond("GET /api/cluster/status?x=1 HTTP/1.0\r\n\r\n", &out), 200);
	admin_buf_free(&out);
}

Test(admin, health_ready_and_the_dashboard)
{
	struct admin_buf out = { 0 };

	cr_assert_eq(respond("GET /health HTTP/1.1\r\n\r\n", &out), 200);
	admin_buf_free(&out);
	cr_assert_eq(respond("GET /ready HTTP/1.1\r\n\r\n", &out), 200);
	admin_buf_free(&out);
	cr_assert_eq(respond("GET / HTTP/1.1\r\n\r\n", &out), 200);
	cr_assert(strstr(out.ptr, "Content-Type: text/html"));
	admin_buf_free(&out);
	cr_assert_eq(respond("GET /metrics HTTP/1.1\r\n\r\n", &out), 200);
	cr_assert(strstr(out.ptr, "Content-Type: text/plain; version=0.0.4"));
	cr_assert(strstr(out.ptr, "herald_cluster_members{state=\"alive\"}"));
	admin_buf_free(&out);
}

Test(admin, other_paths_and_methods_are_refused)
{
	struct admin_buf out = { 0 };

	cr_assert_eq(respond("GET /nope HTTP/1.1\r\n\r\n", &out), 404);
	admin_buf_free(&out);
	cr_assert_eq(respond("POST /cluster/status HTTP/1.1\r\n\r\n", &out), 405);
	admin_buf_free(&out);
	/* a drain needs the node's hook: without one it is just another POST */
	cr_assert_eq(respond("POST /api/drain HTTP/1.1\r\n\r\n", &out), 405);
	admin_buf_free(&out);
	cr_assert_eq(respond("garbage\r\n\r\n", &out), 400);
	admin_buf_free(&out);
}
