/*
 * tests/fuzz/fuzz_link.c - libFuzzer target for proto/link.c (the node-link wire codec):
 * a route connection's bytes come from another node, which may be broken or hostile, so
 * any input must be split into frames and decoded or refused without an over-read.
 *
 * Input: a stream of link frames, cut with link_frame_next (body limit FUZZ_MAX_BODY)
 * until it needs more bytes or refuses; each frame goes to the decoder of its type (an
 * unknown type is skipped, where a receiver would close the link, so later frames still
 * get fuzzed). Checked: every frame lies inside the input; every decoded view lies inside
 * its frame's body; the regions a decoded MESSAGE or QUEUE claims (a QUEUE's name, and the
 * message of a QUEUE op that carries one) are read byte by byte, so ASan sees any
 * over-read (the input is an exact-size heap block under libFuzzer and replay_main.c);
 * and every decoded frame re-encodes to exactly its own bytes.
 */
#include "proto/link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_BODY 65536

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_link: check failed at line %d: %s\n",        \
				__LINE__, #cond);                                          \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* Written so the compiler cannot drop the reads that feed it. */
static volatile uint8_t sink;

static uint8_t reencoded[LINK_FRAME_HDR + FUZZ_MAX_BODY];

static bool inside(const void *p, size_t len, const struct link_frame *f)
{
	const uint8_t *b = p;

	return b >= f->body && len <= f->body_len && (size_t)(b - f->body) <= f->body_len - len;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	for (size_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* Whether reencoded[0..n) is exactly f's frame, from its length prefix on (the prefix
 * sits right before f->body in the input). */
static bool is_frame(const struct link_frame *f, size_t n)
{
	return n == LINK_FRAME_HDR + (size_t)f->body_len &&
	       memcmp(reencoded, f->body - LINK_FRAME_HDR, n) == 0;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void check_hello(const struct link_frame *f)
{
	struct link_hello h;
	int rc = link_decode_hello(f, &h);
	size_t n;

	CHECK(rc == 0 || rc == LINK_ERR_MALFORMED || rc == LINK_ERR_VERSION);
	if (rc)
		return;
	CHECK(inside(h.nonce, LINK_NONCE_LEN, f));
	CHECK(inside(h.cluster, h.cluster_len, f) && inside(h.node, h.node_len, f));
	CHECK(h.cluster_len >= 1 && h.cluster_len <= LINK_NAME_MAX);
	CHECK(h.node_len >= 1 && h.node_len <= LINK_NAME_MAX);
	n = link_encode_hello(reencoded, sizeof(reencoded), h.nonce, h.cluster, h.cluster_len,
			      h.node, h.node_len);
	CHECK(is_frame(f, n));
}

static void check_auth(const struct link_frame *f)
{
	const uint8_t *mac;
	int rc = link_decode_auth(f, &mac);

	CHECK(rc == 0 || rc == LINK_ERR_MALFORMED);
	if (rc)
		return;
	CHECK(inside(mac, LINK_MAC_LEN, f));
	CHECK(is_frame(f, link_encode_auth(reencoded, sizeof(reencoded), mac)));
}

static void check_interest(const struct link_frame *f)
{
	struct link_interest in;
	int rc = link_decode_interest(f, &in);

	CHECK(rc == 0 || rc == LINK_ERR_MALFORMED);
	if (rc)
		return;
	CHECK(in.op == LINK_ADD || in.op == LINK_DEL);
	CHECK(in.kind == LINK_TOPIC || in.kind == LINK_PATTERN);
	CHECK(inside(in.name, in.name_len, f));
	CHECK(is_frame(f, link_encode_interest(reencoded, sizeof(reencoded), &in)));
}

static void check_ack(const struct link_frame *f)
{
	uint32_t seq;
	int rc = link_decode_ack(f, &seq);

	CHECK(rc == 0 || rc == LINK_ERR_MALFORMED);
	if (rc)
		return;
	CHECK(is_frame(f, link_encode_ack(reencoded, sizeof(reencoded), seq)));
}

/* A decoded message (of a MESSAGE, or of a QUEUE op that carries one): its bytes run to the
 * end of f's body, and every region a reader will be handed is read to its last byte. */
static void check_message_regions(const struct link_message *m, const struct link_frame *f)
{
	uint8_t s;

	CHECK(inside(m->bytes, m->bytes_len, f));
	CHECK(m->bytes + m->bytes_len == f->body + f->body_len);
	CHECK(m->bytes[m->dest_len] == 0);
	/* the body is inside the tail: body_len <= tail_len is all link.h promises about it */
	s = sum(m->bytes, m->dest_len + 1);
	s = (uint8_t)(s + sum(m->bytes + m->tail_off, m->tail_len));
	s = (uint8_t)(s + sum(m->bytes + m->msgid_off, m->msgid_len));
	if (m->tail10_len)
		s = (uint8_t)(s + sum(m->bytes + m->tail10_off, m->tail10_len));
	if (m->tail11_len)
		s = (uint8_t)(s + sum(m->bytes + m->tail11_off, m->tail11_len));
	sink = s;
	CHECK(m->body_len <= m->tail_len);
	CHECK(m->tail_off > m->dest_len && m->msgid_off > m->dest_len);
	CHECK(!m->tail10_len || m->tail10_off > m->dest_len);
	CHECK(!m->tail11_len || m->tail11_off > m->dest_len);
}

/* Whether the frame written to reencoded[0..head) followed by m's bytes is exactly f's. */
static bool is_frame_with_bytes(const struct link_frame *f, size_t head,
				const struct link_message *m)
{
	if (head + m->bytes_len > sizeof(reencoded))
		return false;
	memcpy(reencoded + head, m->bytes, m->bytes_len);
	return is_frame(f, head + m->bytes_len);
}

static void check_message(const struct link_frame *f)
{
	struct link_message m;
	int rc = link_decode_message(f, &m);
	size_t n;

	CHECK(rc == 0 || rc == LINK_ERR_MALFORMED);
	if (rc)
		return;
	check_message_regions(&m, f);
	n = link_encode_message_head(reencoded, sizeof(reencoded), &m);
	CHECK(n == LINK_MESSAGE_HDR);
	CHECK(is_frame_with_bytes(f, n, &m));
}

static void check_queue(const struct link_frame *f)
{
	struct link_queue q;
	int rc = link_decode_queue(f, &q);
	size_t n;

	CHECK(rc == 0 || rc == LINK_ERR_MALFORMED);
	if (rc)
		return;
	CHECK(q.op >= LINK_Q_SEND && q.op <= LINK_Q_REPL);	/* the last op, for now */
	CHECK(inside(q.name, q.name_len, f));
	sink = sum((const uint8_t *)q.name, q.name_len);
	if (!link_queue_op_has_message(q.op)) {
		CHECK(q.name_len >= 1);
		/* the name is the body's last part: nothing may follow it */
		CHECK((const uint8_t *)q.name + q.name_len == f->body + f->body_len);
		n = link_encode_queue(reencoded, sizeof(reencoded), &q);
		CHECK(n == LINK_QUEUE_HDR + q.name_len);
		CHECK(is_frame(f, n));
		return;
	}
	CHECK(q.name_len == 0);
	CHECK(q.msg.bytes == f->body + (LINK_QUEUE_MESSAGE_HDR - LINK_FRAME_HDR));
	check_message_regions(&q.msg, f);
	n = link_encode_queue_head(reencoded, sizeof(reencoded), &q, &q.msg);
	CHECK(n == LINK_QUEUE_MESSAGE_HDR);
	CHECK(is_frame_with_bytes(f, n, &q.msg));
}

static void check_frame(const struct link_frame *f)
{
	switch (f->type) {
	case LINK_HELLO:
		check_hello(f);
		break;
	case LINK_AUTH:
		check_auth(f);
		break;
	case LINK_INTEREST:
		check_interest(f);
		break;
	case LINK_ACK:
		check_ack(f);
		break;
	case LINK_MESSAGE:
		check_message(f);
		break;
	case LINK_QUEUE:
		check_queue(f);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	long n;
	struct link_frame f;

	while ((n = link_frame_next(data + off, size - off, FUZZ_MAX_BODY, &f)) > 0) {
		CHECK((size_t)n <= size - off && (size_t)n == LINK_FRAME_HDR + (size_t)f.body_len);
		CHECK(f.body == data + off + LINK_FRAME_HDR);
		CHECK(f.body_len <= FUZZ_MAX_BODY);
		check_frame(&f);
		off += (size_t)n;
	}
	CHECK(n == 0 || n == LINK_ERR_TOO_BIG || n == LINK_ERR_MALFORMED);
	/* "need more" only when the prefix, or the frame it announces, is not all there */
	CHECK(n != 0 || size - off < 4 || size - off < 4 + (uint64_t)get_u32(data + off));
	return 0;
}
