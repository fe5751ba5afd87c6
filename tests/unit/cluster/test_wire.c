/*
 * tests/unit/cluster/test_wire.c - cluster/wire.c: every message type survives encode then
 * decode; the header rules (magic, version, cluster name, MAC) drop what they must; every
 * truncation of a valid packet is refused without reading past the end (input flush
 * against a PROT_NONE page); unknown types are skipped; limits hold.
 */
#include "cluster/wire.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#define STR(lit) ((struct wire_str){ (lit), sizeof(lit) - 1 })

static const uint8_t key[WIRE_KEY_LEN] = "0123456789abcdef0123456789abcdef";

static struct wire_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
	return (struct wire_addr){ .family = 4, .ip = { a, b, c, d }, .port = port };
}

static bool str_eq(struct wire_str a, struct wire_str b)
{
	return a.len == b.len && (!a.len || !memcmp(a.ptr, b.ptr, a.len));
}

/* One of each type, every field set. */
static const struct wire_msg samples[] = {
	{ .type = WIRE_PING, .seq = 7, .node = STR("n1"), .from = STR("n2") },
	{ .type = WIRE_PING_REQ, .seq = 0xfffffffe, .node = STR("target"), .from = STR("me"),
	  .flag = true, .addr = { .family = 4, .ip = { 10, 0, 0, 9 }, .port = 7946 } },
	{ .type = WIRE_ACK, .seq = 1 },
	{ .type = WIRE_NACK, .seq = 2 },
	{ .type = WIRE_ALIVE, .incarnation = 3, .node = STR("n3"), .meta = STR("meta\0bytes"),
	  .addr = { .family = 6, .ip = { 0x20, 0x01, [15] = 1 }, .port = 1 } },
	{ .type = WIRE_SUSPECT, .incarnation = 4, .node = STR("n4"), .from = STR("n5") },
	{ .type = WIRE_DEAD, .incarnation = 5, .node = STR("n6"), .from = STR("n7") },
	{ .type = WIRE_LEFT, .incarnation = 6, .node = STR("n8") },
	{ .type = WIRE_PUSH_PULL, .count = 42, .flag = true, .from = STR("n9") },
	{ .type = WIRE_STATE, .incarnation = 8, .state = WIRE_ST_DEAD, .node = STR("n10"),
	  .meta = STR(""), .addr = { .family = 4, .ip = { 127, 0, 0, 1 }, .port = 65535 } },
};

static void assert_same(const struct wire_msg *a, const struct wire_msg *b)
{
	cr_assert_eq(a->type, b->type);
	cr_assert_eq(a->seq, b->seq, "type %d", a->type);
	cr_assert_eq(a->incarnation, b->incarnation, "type %d", a->type);
	cr_assert_eq(a->count, b->count, "type %d", a->type);
	cr_assert_eq(a->flag, b->flag, "type %d", a->type);
	cr_assert_eq(a->state, b->state, "type %d", a->type);
	cr_assert(str_eq(a->node, b->node), "type %d", a->type);
	cr_assert(str_eq(a->from, b->from), "type %d", a->type);
	cr_assert(str_eq(a->meta, b->meta), "type %d", a->type);
	if (a->addr.family)
		cr_assert(wire_addr_eq(&a->addr, &b->addr), "type %d", a->type);
}

static size_t build(uint8_t *buf, size_t cap, const char *cluster, const uint8_t *k)
{
	struct wire_writer w;

	cr_assert_eq(wire_begin(&w, buf, cap, cluster, k != NULL), 0);
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		cr_assert_eq(wire_put(&w, &samples[i]), 0, "sample %zu", i);
	return wire_finish(&w, k);
}

/* Opens and decodes every message of a packet; returns the count or a negative code. */
static int decode_all(const uint8_t *buf, size_t len, const char *cluster, const uint8_t *k,
		      struct wire_msg *out, int cap)
{
	const uint8_t *body;
	const uint8_t *pos;
	size_t blen;
	int n = 0;
	int rc = wire_open(buf, len, cluster, k, &body, &blen);

	if (rc)
		return rc;
	pos = body;
	while (n < cap && (rc = wire_next(&pos, body + blen, &out[n])) > 0)
		n++;
	return rc < 0 ? rc : n;
}

Test(wire, every_message_type_round_trips)
{
	uint8_t buf[WIRE_UDP_MAX];
	struct wire_msg got[16];
	size_t len = build(buf, sizeof(buf), "herald", NULL);
	int n = decode_all(buf, len, "herald", NULL, got, 16);

	cr_assert_eq(n, (int)(sizeof(samples) / sizeof(samples[0])));
	for (int i = 0; i < n; i++)
		assert_same(&samples[i], &got[i]);
}

Test(wire, authenticated_packet_round_trips)
{
	uint8_t buf[WIRE_UDP_MAX];
	struct wire_msg got[16];
	size_t len = build(buf, sizeof(buf), "herald", key);

	cr_assert_eq(buf[3] & WIRE_F_MAC, WIRE_F_MAC);
	cr_assert_eq(decode_all(buf, len, "herald", key, got, 16), 10);
}

Test(wire, any_flipped_bit_fails_the_mac)
{
	uint8_t buf[WIRE_UDP_MAX];
	const uint8_t *body;
	size_t blen;
	size_t len = build(buf, sizeof(buf), "herald", key);

	for (size_t i = 5 + 6; i < len; i++) {
		buf[i] ^= 0x10;
		cr_assert_eq(wire_open(buf, len, "herald", key, &body, &blen), -WIRE_E_MAC,
			     "byte %zu", i);
		buf[i] ^= 0x10;
	}
}

Test(wire, wrong_key_is_refused)
{
	uint8_t buf[WIRE_UDP_MAX];
	uint8_t other[WIRE_KEY_LEN] = { 1 };
	const uint8_t *body;
	size_t blen;
	size_t len = build(buf, sizeof(buf), "herald", key);

	cr_assert_eq(wire_open(buf, len, "herald", other, &body, &blen), -WIRE_E_MAC);
}

Test(wire, unauthenticated_packet_is_refused_when_we_have_a_key)
{
	uint8_t buf[WIRE_UDP_MAX];
	const uint8_t *body;
	size_t blen;
	size_t len = build(buf, sizeof(buf), "herald", NULL);

	cr_assert_eq(wire_open(buf, len, "herald", key, &body, &blen), -WIRE_E_MAC);
}

Test(wire, authenticated_packet_is_refused_without_a_key)
{
	uint8_t buf[WIRE_UDP_MAX];
	const uint8_t *body;
	size_t blen;
	size_t len = build(buf, sizeof(buf), "herald", key);

	cr_assert_eq(wire_open(buf, len, "herald", NULL, &body, &blen), -WIRE_E_MAC);
}

Test(wire, other_cluster_is_refused)
{
	uint8_t buf[WIRE_UDP_MAX];
	const uint8_t *body;
	size_t blen;
	size_t len = build(buf, sizeof(buf), "herald", NULL);

	cr_assert_eq(wire_open(buf, len, "heral", NULL, &body, &blen), -WIRE_E_CLUSTER);
	cr_assert_eq(wire_open(buf, len, "herald2", NULL, &body, &blen), -WIRE_E_CLUSTER);
	cr_assert_eq(wire_open(buf, len, "HERALD", NULL, &body, &blen), -WIRE_E_CLUSTER);
}

Test(wire, bad_magic_and_version_are_refused)
{
	uint8_t buf[WIRE_UDP_MAX];
	const uint8_t *body;
	size_t blen;
	size_t len = build(buf, sizeof(buf), "herald", NULL);

	buf[0] = 'X';
	cr_assert_eq(wire_open(buf, len, "herald", NULL, &body, &blen), -WIRE_E_MAGIC);
	buf[0] = 'H';
	buf[2] = WIRE_VERSION + 1;
	cr_assert_eq(wire_open(buf, len, "herald", NULL, &body, &blen), -WIRE_E_VERSION);
	cr_assert_eq(wire_open(buf, 3, "herald", NULL, &body, &blen), -WIRE_E_SHORT);
}

/* A cut anywhere yields an error or fewer messages, never a read past the end. */
Test(wire, every_truncation_is_refused_without_overread)
{
	uint8_t buf[WIRE_UDP_MAX];
	size_t len = build(buf, sizeof(buf), "herald", NULL);

	for (size_t cut = 0; cut < len; cut++) {
		struct guarded_buf g;
		struct wire_msg got[16];
		const uint8_t *p = (const uint8_t *)guarded_buf_init(&g, buf, cut);
		int n = decode_all(p, cut, "herald", NULL, got, 16);

		cr_assert(n < 10, "cut at %zu decoded everything", cut);
		guarded_buf_fini(&g);
	}
}

Test(wire, unknown_message_type_is_skipped)
{
	uint8_t buf[WIRE_UDP_MAX];
	struct wire_writer w;
	static const uint8_t future[] = { 200, 0, 3, 'x', 'y', 'z' };
	struct wire_msg ack = { .type = WIRE_ACK, .seq = 99 };
	struct wire_msg got[4];
	size_t len;

	cr_assert_eq(wire_begin(&w, buf, sizeof(buf), "c", false), 0);
	cr_assert_eq(wire_put_raw(&w, future, sizeof(future)), 0);
	cr_assert_eq(wire_put(&w, &ack), 0);
	len = wire_finish(&w, NULL);
	cr_assert_eq(decode_all(buf, len, "c", NULL, got, 4), 1);
	cr_assert_eq(got[0].type, WIRE_ACK);
	cr_assert_eq(got[0].seq, 99);
}

Test(wire, body_may_carry_trailing_fields_of_a_later_version)
{
	uint8_t buf[WIRE_UDP_MAX];
	struct wire_writer w;
	/* ACK body: seq 5, then 2 bytes a later version added */
	static const uint8_t ack[] = { WIRE_ACK, 0, 6, 0, 0, 0, 5, 0xaa, 0xbb };
	struct wire_msg got[2];
	size_t len;

	cr_assert_eq(wire_begin(&w, buf, sizeof(buf), "c", false), 0);
	cr_assert_eq(wire_put_raw(&w, ack, sizeof(ack)), 0);
	len = wire_finish(&w, NULL);
	cr_assert_eq(decode_all(buf, len, "c", NULL, got, 2), 1);
	cr_assert_eq(got[0].seq, 5);
}

Test(wire, names_must_be_printable_ascii)
{
	uint8_t buf[64];
	uint8_t pkt[WIRE_UDP_MAX];
	struct wire_writer w;
	struct wire_msg m = { .type = WIRE_LEFT, .incarnation = 1, .node = STR("a b") };
	struct wire_msg got[2];
	size_t n = wire_encode_msg(&m, buf, sizeof(buf));
	size_t len;

	cr_assert(n > 0);
	cr_assert_eq(wire_begin(&w, pkt, sizeof(pkt), "c", false), 0);
	cr_assert_eq(wire_put_raw(&w, buf, n), 0);
	len = wire_finish(&w, NULL);
	cr_assert_eq(decode_all(pkt, len, "c", NULL, got, 2), -WIRE_E_MSG);
}

Test(wire, empty_name_is_malformed)
{
	uint8_t pkt[WIRE_UDP_MAX];
	struct wire_writer w;
	static const uint8_t left[] = { WIRE_LEFT, 0, 5, 0, 0, 0, 1, 0 };
	struct wire_msg got[2];
	size_t len;

	cr_assert_eq(wire_begin(&w, pkt, sizeof(pkt), "c", false), 0);
	cr_assert_eq(wire_put_raw(&w, left, sizeof(left)), 0);
	len = wire_finish(&w, NULL);
	cr_assert_eq(decode_all(pkt, len, "c", NULL, got, 2), -WIRE_E_MSG);
}

Test(wire, oversized_fields_are_not_encoded)
{
	char name[WIRE_NAME_MAX + 2];
	uint8_t buf[WIRE_UDP_MAX];
	struct wire_msg m = { .type = WIRE_LEFT };

	memset(name, 'a', sizeof(name));
	m.node = (struct wire_str){ name, WIRE_NAME_MAX + 1 };
	cr_assert_eq(wire_encode_msg(&m, buf, sizeof(buf)), 0);
	m.node.len = WIRE_NAME_MAX;
	cr_assert(wire_encode_msg(&m, buf, sizeof(buf)) > 0);
}

Test(wire, writer_refuses_what_does_not_fit_and_keeps_room_for_the_mac)
{
	uint8_t buf[40];
	struct wire_writer w;
	struct wire_msg ack = { .type = WIRE_ACK, .seq = 1 };
	size_t len;

	cr_assert_eq(wire_begin(&w, buf, sizeof(buf), "c", true), 0);
	cr_assert_eq(wire_room(&w), sizeof(buf) - 6 - WIRE_MAC_LEN);
	cr_assert_eq(wire_put(&w, &ack), -EMSGSIZE);	/* 7 bytes, 2 free */
	len = wire_finish(&w, key);
	cr_assert_eq(len, 6 + WIRE_MAC_LEN);
	cr_assert_eq(wire_begin(&w, buf, 10, "a-long-cluster-name", false), -EMSGSIZE);
}

Test(wire, addresses_format_for_logs)
{
	char out[64];
	struct wire_addr a = v4(127, 0, 0, 1, 7946);
	struct wire_addr b = { .family = 6, .ip = { [15] = 1 }, .port = 80 };

	cr_assert_str_eq(wire_addr_format(&a, out, sizeof(out)), "127.0.0.1:7946");
	cr_assert_str_eq(wire_addr_format(&b, out, sizeof(out)), "[0:0:0:0:0:0:0:1]:80");
}
