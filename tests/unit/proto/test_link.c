/*
 * tests/unit/proto/test_link.c - proto/link.c against proto/link.h: exact bytes of each
 * frame type, round trips, partial frames at every split point, the length limit judged on
 * the prefix alone, each decoder's refusal of truncated bodies, trailing bytes, the wrong
 * type and out-of-range fields, every MESSAGE offset rule in turn (alone and inside each
 * QUEUE op that carries a message), each QUEUE op's name rule, and encoders at every short
 * capacity.
 *
 * Decoder input and encoder output sit flush against a PROT_NONE page, so a one-byte
 * over-read or overrun crashes instead of passing. Hand-built frames use this file's own
 * big-endian writer, not the encoders, so a mistake shared by both sides still shows.
 */
#include "proto/link.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stddef.h>
#include <string.h>

#define MAX_BODY 65536
#define LEN(lit) (sizeof(lit) - 1)

/* ---- hand-built frames ---- */

struct wire {
	uint8_t b[1024];
	size_t len;
	size_t frame_start;	/* where the open frame's length prefix is */
};

static void put_n(struct wire *w, const void *p, size_t n)
{
	cr_assert_leq(w->len + n, sizeof(w->b));
	if (n)	/* an empty name may be NULL, and memcpy from NULL is undefined */
		memcpy(w->b + w->len, p, n);
	w->len += n;
}

static void put_u8(struct wire *w, uint8_t v)
{
	put_n(w, &v, 1);
}

static void put_u16(struct wire *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put_n(w, b, 2);
}

static void put_u32(struct wire *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	put_n(w, b, 4);
}

static void put_u64(struct wire *w, uint64_t v)
{
	put_u32(w, (uint32_t)(v >> 32));
	put_u32(w, (uint32_t)v);
}

/* Starts a frame whose length prefix end_frame fills in. */
static void begin_frame(struct wire *w, uint8_t type)
{
	w->frame_start = w->len;
	put_u32(w, 0);
	put_u8(w, type);
}

static void end_frame(struct wire *w)
{
	uint32_t n = (uint32_t)(w->len - w->frame_start - 4);
	size_t at = w->frame_start;

	w->b[at] = (uint8_t)(n >> 24);
	w->b[at + 1] = (uint8_t)(n >> 16);
	w->b[at + 2] = (uint8_t)(n >> 8);
	w->b[at + 3] = (uint8_t)n;
}

static const uint8_t nonce[LINK_NONCE_LEN] = {
	0,  1,	2,  3,	4,  5,	6,  7,	8,  9,	10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

static const uint8_t mac[LINK_MAC_LEN] = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
	0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5,
	0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
};

/* A HELLO with any version and name lengths, names filled with 'c' and 'n'. */
static void put_hello(struct wire *w, uint8_t version, uint16_t cluster_len, uint16_t node_len)
{
	begin_frame(w, LINK_HELLO);
	put_u8(w, version);
	put_n(w, nonce, sizeof(nonce));
	put_u16(w, cluster_len);
	for (uint16_t i = 0; i < cluster_len; i++)
		put_u8(w, 'c');
	put_u16(w, node_len);
	for (uint16_t i = 0; i < node_len; i++)
		put_u8(w, 'n');
	end_frame(w);
}

static void put_interest(struct wire *w, uint8_t op, uint8_t kind, uint32_t seq, const char *name)
{
	begin_frame(w, LINK_INTEREST);
	put_u8(w, op);
	put_u8(w, kind);
	put_u32(w, seq);
	put_u32(w, (uint32_t)strlen(name));
	put_n(w, name, strlen(name));
	end_frame(w);
}

/* ---- the sample MESSAGE, laid out as core/message.c builds one: destination, NUL,
 * message id, NUL, shared tail, 1.0 tail, 1.1 tail ---- */

#define M_DEST "/topic/a"
#define M_MSGID "m-1"
#define M_TAIL "message-id:m-1\ndestination:/topic/a\nx:a\\cb\\r\n\nhello"
#define M_TAIL10 "message-id:m-1\ndestination:/topic/a\nx:a:b\r\n\nhello"
#define M_TAIL11 "message-id:m-1\ndestination:/topic/a\nx:a\\cb\r\n\nhello"

/* sizeof a tail counts its NUL, which ends a STOMP frame; the last one ends the buffer */
static const char m_bytes[] = M_DEST "\0" M_MSGID "\0" M_TAIL "\0" M_TAIL10 "\0" M_TAIL11;

enum {
	M_DEST_LEN = LEN(M_DEST),
	M_MSGID_OFF = M_DEST_LEN + 1,
	M_MSGID_LEN = LEN(M_MSGID),
	M_TAIL_OFF = M_MSGID_OFF + M_MSGID_LEN + 1,
	M_TAIL_LEN = sizeof(M_TAIL),
	M_BODY_LEN = LEN("hello"),
	M_TAIL10_OFF = M_TAIL_OFF + M_TAIL_LEN,
	M_TAIL10_LEN = sizeof(M_TAIL10),
	M_TAIL11_OFF = M_TAIL10_OFF + M_TAIL10_LEN,
	M_TAIL11_LEN = sizeof(M_TAIL11),
	M_BYTES_LEN = sizeof(m_bytes),
};

_Static_assert(M_TAIL11_OFF + M_TAIL11_LEN == M_BYTES_LEN, "the last tail ends the bytes");

static struct link_message sample_message(void)
{
	return (struct link_message){
		.flags = 0x8001,
		.dest_len = M_DEST_LEN,
		.tail_off = M_TAIL_OFF,
		.tail_len = M_TAIL_LEN,
		.msgid_off = M_MSGID_OFF,
		.msgid_len = M_MSGID_LEN,
		.body_len = M_BODY_LEN,
		.tail10_off = M_TAIL10_OFF,
		.tail10_len = M_TAIL10_LEN,
		.tail11_off = M_TAIL11_OFF,
		.tail11_len = M_TAIL11_LEN,
		.bytes = (const uint8_t *)m_bytes,
		.bytes_len = M_BYTES_LEN,
	};
}

/* A MESSAGE frame as a sender writes it: the encoded head, then m's bytes. */
static void put_message(struct wire *w, const struct link_message *m)
{
	size_t n = link_encode_message_head(w->b + w->len, sizeof(w->b) - w->len, m);

	cr_assert_eq(n, LINK_MESSAGE_HDR);
	w->len += n;
	put_n(w, m->bytes, m->bytes_len);
}

/* ---- one valid frame of each type, built by the encoders ---- */

static const enum link_type all_types[] = {
	LINK_HELLO, LINK_AUTH, LINK_INTEREST, LINK_ACK, LINK_MESSAGE, LINK_QUEUE, LINK_BYE,
};

#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

static const struct link_interest sample_interest = {
	.op = LINK_ADD, .kind = LINK_PATTERN, .seq = 0xfedcba98, .name = "/topic/news.*",
	.name_len = LEN("/topic/news.*"),
};

/* A QUEUE without a message (its message ops are tested on their own). */
static const struct link_queue sample_queue = {
	.op = LINK_Q_ACK, .shard = 3, .seq = 7, .arg = 1, .key = 0x0102030405060708ull,
	.conn = 0x1112131415161718ull, .tag = 0x2122232425262728ull, .name = "/queue/jobs",
	.name_len = LEN("/queue/jobs"),
};

static size_t encode_sample(enum link_type t, uint8_t *out, size_t cap)
{
	struct link_message m = sample_message();
	size_t n;

	switch (t) {
	case LINK_HELLO:
		return link_encode_hello(out, cap, nonce, "prod", 4, "node-a", 6);
	case LINK_AUTH:
		return link_encode_auth(out, cap, mac);
	case LINK_INTEREST:
		return link_encode_interest(out, cap, &sample_interest);
	case LINK_ACK:
		return link_encode_ack(out, cap, 0x01020304);
	case LINK_MESSAGE:
		n = link_encode_message_head(out, cap, &m);
		if (!n || cap - n < m.bytes_len)
			return 0;
		memcpy(out + n, m.bytes, m.bytes_len);
		return n + m.bytes_len;
	case LINK_QUEUE:
		return link_encode_queue(out, cap, &sample_queue);
	case LINK_BYE:
		return link_encode_bye(out, cap);
	}
	return 0;
}

static void sample_wire(enum link_type t, struct wire *w)
{
	w->len = encode_sample(t, w->b, sizeof(w->b));
	cr_assert_gt(w->len, 0, "type %d", t);
}

/* ---- reading through a guard page ---- */

/* wire[0..len) as exactly one frame, read from a copy that ends at a PROT_NONE page.
 * The frame's body lives as long as gb. */
static struct link_frame frame_in(struct guarded_buf *gb, const uint8_t *wire, size_t len)
{
	const uint8_t *p = (const uint8_t *)guarded_buf_init(gb, wire, len);
	struct link_frame f;

	cr_assert_eq(link_frame_next(p, len, MAX_BODY, &f), (long)len);
	return f;
}

/* A frame of type t whose body is body[0..len), ending at a PROT_NONE page. */
static struct link_frame body_in(struct guarded_buf *gb, uint8_t t, const uint8_t *body,
				 size_t len)
{
	return (struct link_frame){ t, (const uint8_t *)guarded_buf_init(gb, body, len),
				    (uint32_t)len };
}

/* Runs the decoder for type `as` over f and touches nothing it returns. */
static int decode_as(enum link_type as, const struct link_frame *f)
{
	struct link_hello h;
	const uint8_t *p;
	struct link_interest in;
	uint32_t seq;
	struct link_message m;
	struct link_queue q;

	switch (as) {
	case LINK_HELLO:
		return link_decode_hello(f, &h);
	case LINK_AUTH:
		return link_decode_auth(f, &p);
	case LINK_INTEREST:
		return link_decode_interest(f, &in);
	case LINK_ACK:
		return link_decode_ack(f, &seq);
	case LINK_MESSAGE:
		return link_decode_message(f, &m);
	case LINK_QUEUE:
		return link_decode_queue(f, &q);
	case LINK_BYE:
		return link_decode_bye(f);
	}
	return 99;
}

static int decode_wire(const struct wire *w)
{
	struct guarded_buf gb;
	struct link_frame f = frame_in(&gb, w->b, w->len);
	int rc = decode_as((enum link_type)f.type, &f);

	guarded_buf_fini(&gb);
	return rc;
}

/* ---- frames ---- */

Test(link_frame, spans_length_prefix_type_and_body)
{
	static const uint8_t wire[] = { 0, 0, 0, 4, LINK_ACK, 1, 2, 3, 0xee };
	struct link_frame f;

	cr_assert_eq(link_frame_next(wire, sizeof(wire), MAX_BODY, &f), 8);
	cr_assert_eq(f.type, LINK_ACK);
	cr_assert_eq(f.body, wire + 5);
	cr_assert_eq(f.body_len, 3);
}

Test(link_frame, needs_more_bytes_at_every_split_point)
{
	for (size_t t = 0; t < NTYPES; t++) {
		struct wire w;

		sample_wire(all_types[t], &w);
		for (size_t cut = 0; cut < w.len; cut++) {
			struct guarded_buf gb;
			const uint8_t *p = (const uint8_t *)guarded_buf_init(&gb, w.b, cut);
			struct link_frame f;

			cr_assert_eq(link_frame_next(p, cut, MAX_BODY, &f), 0, "type %d cut %zu",
				     all_types[t], cut);
			guarded_buf_fini(&gb);
		}
	}
}

Test(link_frame, reads_back_to_back_frames_in_order)
{
	uint8_t stream[4096];
	size_t len = 0;
	size_t off = 0;

	for (size_t t = 0; t < NTYPES; t++)
		len += encode_sample(all_types[t], stream + len, sizeof(stream) - len);
	for (size_t t = 0; t < NTYPES; t++) {
		struct link_frame f;
		long n = link_frame_next(stream + off, len - off, MAX_BODY, &f);

		cr_assert_gt(n, 0, "frame %zu", t);
		cr_assert_eq(f.type, all_types[t]);
		cr_assert_eq(decode_as(all_types[t], &f), 0, "frame %zu", t);
		off += (size_t)n;
	}
	cr_assert_eq(off, len);
}

Test(link_frame, refuses_length_over_max_body_before_the_body_arrives)
{
	static const uint8_t over[] = { 0, 0, 0, 102 };	/* type + 101 body bytes */
	static const uint8_t at[] = { 0, 0, 0, 101 };		/* type + 100 body bytes */
	struct link_frame f;

	cr_assert_eq(link_frame_next(over, sizeof(over), 100, &f), LINK_ERR_TOO_BIG);
	cr_assert_eq(link_frame_next(at, sizeof(at), 100, &f), 0);
}

Test(link_frame, accepts_a_body_of_exactly_max_body)
{
	uint8_t wire[4 + 1 + 100] = { 0, 0, 0, 101, 200 };

	cr_assert_eq(link_frame_next(wire, sizeof(wire), 100, &(struct link_frame){ 0 }), 105);
}

Test(link_frame, limit_holds_at_the_extremes_of_u32)
{
	static const uint8_t one[] = { 0, 0, 0, 1, LINK_ACK };
	static const uint8_t two[] = { 0, 0, 0, 2 };
	static const uint8_t max[] = { 0xff, 0xff, 0xff, 0xff };
	struct link_frame f;

	cr_assert_eq(link_frame_next(one, sizeof(one), 0, &f), 5);
	cr_assert_eq(f.body_len, 0);
	cr_assert_eq(link_frame_next(two, sizeof(two), 0, &f), LINK_ERR_TOO_BIG);
	cr_assert_eq(link_frame_next(max, sizeof(max), UINT32_MAX - 1, &f), 0);
	cr_assert_eq(link_frame_next(max, sizeof(max), UINT32_MAX - 2, &f), LINK_ERR_TOO_BIG);
}

Test(link_frame, refuses_zero_length)
{
	static const uint8_t wire[] = { 0, 0, 0, 0, LINK_ACK, 0, 0, 0, 1 };
	struct link_frame f;

	cr_assert_eq(link_frame_next(wire, 4, MAX_BODY, &f), LINK_ERR_MALFORMED);
	cr_assert_eq(link_frame_next(wire, sizeof(wire), MAX_BODY, &f), LINK_ERR_MALFORMED);
}

Test(link_frame, leaves_the_type_to_the_caller)
{
	static const uint8_t wire[] = { 0, 0, 0, 1, 0, 0, 0, 0, 1, 200 };
	struct link_frame f;

	cr_assert_eq(link_frame_next(wire, 5, MAX_BODY, &f), 5);
	cr_assert_eq(f.type, 0);
	cr_assert_eq(link_frame_next(wire + 5, 5, MAX_BODY, &f), 5);
	cr_assert_eq(f.type, 200);
}

/* ---- every decoder ---- */

Test(link_decode, refuses_a_body_truncated_at_every_byte)
{
	for (size_t t = 0; t < NTYPES; t++) {
		enum link_type type = all_types[t];
		struct wire w;

		sample_wire(type, &w);
		for (size_t k = 0; k < w.len - LINK_FRAME_HDR; k++) {
			struct guarded_buf gb;
			struct link_frame f = body_in(&gb, type, w.b + LINK_FRAME_HDR, k);

			cr_assert_eq(decode_as(type, &f), LINK_ERR_MALFORMED, "type %d, %zu bytes",
				     type, k);
			guarded_buf_fini(&gb);
		}
	}
}

Test(link_decode, refuses_trailing_bytes)
{
	for (size_t t = 0; t < NTYPES; t++) {
		enum link_type type = all_types[t];
		struct wire w;

		if (type == LINK_MESSAGE)	/* its bytes run to the frame's end */
			continue;
		sample_wire(type, &w);
		w.frame_start = 0;
		put_u8(&w, 0);
		end_frame(&w);
		cr_assert_eq(decode_wire(&w), LINK_ERR_MALFORMED, "type %d", type);
	}
}

/* A body its decoder accepts, under any other type byte (known or not), is refused. */
Test(link_decode, refuses_its_own_body_under_another_type)
{
	static const uint8_t unknown[] = { 0, 8, 255 };

	for (size_t t = 0; t < NTYPES; t++) {
		uint8_t others[NTYPES - 1 + sizeof(unknown)];
		size_t nothers = 0;
		struct wire w;
		struct guarded_buf gb;
		struct link_frame f;

		for (size_t o = 0; o < NTYPES; o++)
			if (o != t)
				others[nothers++] = all_types[o];
		memcpy(others + nothers, unknown, sizeof(unknown));
		nothers += sizeof(unknown);
		sample_wire(all_types[t], &w);
		f = frame_in(&gb, w.b, w.len);
		cr_assert_eq(decode_as(all_types[t], &f), 0, "type %d", all_types[t]);
		for (size_t o = 0; o < nothers; o++) {
			f.type = others[o];
			cr_assert_eq(decode_as(all_types[t], &f), LINK_ERR_MALFORMED,
				     "type %d body as type %d", all_types[t], others[o]);
		}
		guarded_buf_fini(&gb);
	}
}

/* ---- HELLO ---- */

Test(link_hello, encodes_exact_bytes)
{
	uint8_t out[64];
	struct wire w = { .len = 0 };

	put_n(&w, (uint8_t[]){ 0, 0, 0, 41, LINK_HELLO, LINK_VERSION }, 6);
	put_n(&w, nonce, sizeof(nonce));
	put_n(&w, "\0\1c\0\2nd", 7);
	cr_assert_eq(link_encode_hello(out, sizeof(out), nonce, "c", 1, "nd", 2), w.len);
	cr_assert_arr_eq(out, w.b, w.len);
}

Test(link_hello, round_trips)
{
	struct wire w;
	struct guarded_buf gb;
	struct link_frame f;
	struct link_hello h;

	sample_wire(LINK_HELLO, &w);
	f = frame_in(&gb, w.b, w.len);
	cr_assert_eq(link_decode_hello(&f, &h), 0);
	cr_assert_eq(h.version, LINK_VERSION);
	cr_assert_arr_eq(h.nonce, nonce, LINK_NONCE_LEN);
	cr_assert_eq(h.cluster_len, 4);
	cr_assert_arr_eq(h.cluster, "prod", 4);
	cr_assert_eq(h.node_len, 6);
	cr_assert_arr_eq(h.node, "node-a", 6);
	guarded_buf_fini(&gb);
}

Test(link_hello, refuses_another_version)
{
	static const uint8_t versions[] = { 0, LINK_VERSION + 1, 255 };

	for (size_t i = 0; i < sizeof(versions); i++) {
		struct wire w = { .len = 0 };

		put_hello(&w, versions[i], 4, 6);
		cr_assert_eq(decode_wire(&w), LINK_ERR_VERSION, "version %d", versions[i]);
	}
}

/* Another version may lay its HELLO out differently: the version byte alone decides. */
Test(link_hello, judges_the_version_before_the_rest_of_the_body)
{
	static const uint8_t body[] = { LINK_VERSION + 1 };
	struct guarded_buf gb;
	struct link_frame f = body_in(&gb, LINK_HELLO, body, sizeof(body));

	cr_assert_eq(link_decode_hello(&f, &(struct link_hello){ 0 }), LINK_ERR_VERSION);
	guarded_buf_fini(&gb);
}

Test(link_hello, refuses_an_empty_name)
{
	struct wire cluster = { .len = 0 };
	struct wire node = { .len = 0 };

	put_hello(&cluster, LINK_VERSION, 0, 6);
	put_hello(&node, LINK_VERSION, 4, 0);
	cr_assert_eq(decode_wire(&cluster), LINK_ERR_MALFORMED);
	cr_assert_eq(decode_wire(&node), LINK_ERR_MALFORMED);
}

Test(link_hello, refuses_a_name_over_name_max)
{
	struct wire cluster = { .len = 0 };
	struct wire node = { .len = 0 };
	struct wire both_at_max = { .len = 0 };

	put_hello(&cluster, LINK_VERSION, LINK_NAME_MAX + 1, 6);
	put_hello(&node, LINK_VERSION, 4, LINK_NAME_MAX + 1);
	put_hello(&both_at_max, LINK_VERSION, LINK_NAME_MAX, LINK_NAME_MAX);
	cr_assert_eq(decode_wire(&cluster), LINK_ERR_MALFORMED);
	cr_assert_eq(decode_wire(&node), LINK_ERR_MALFORMED);
	cr_assert_eq(decode_wire(&both_at_max), 0);
}

Test(link_hello, encoder_refuses_names_the_decoder_would_refuse)
{
	static const char name[LINK_NAME_MAX + 1] = { 0 };
	uint8_t out[512];

	cr_assert_eq(link_encode_hello(out, sizeof(out), nonce, "", 0, "n", 1), 0);
	cr_assert_eq(link_encode_hello(out, sizeof(out), nonce, "c", 1, "", 0), 0);
	cr_assert_eq(link_encode_hello(out, sizeof(out), nonce, name, sizeof(name), "n", 1), 0);
	cr_assert_eq(link_encode_hello(out, sizeof(out), nonce, "c", 1, name, sizeof(name)), 0);
	cr_assert_eq(link_encode_hello(out, sizeof(out), nonce, "c", 1, name, SIZE_MAX), 0);
	cr_assert_gt(link_encode_hello(out, sizeof(out), nonce, name, LINK_NAME_MAX, name,
				       LINK_NAME_MAX),
		     0);
}

/* ---- AUTH ---- */

Test(link_auth, encodes_exact_bytes_and_round_trips)
{
	struct wire w = { .len = 0 };
	uint8_t out[64];
	struct guarded_buf gb;
	struct link_frame f;
	const uint8_t *got = NULL;

	put_n(&w, (uint8_t[]){ 0, 0, 0, 33, LINK_AUTH }, 5);
	put_n(&w, mac, sizeof(mac));
	cr_assert_eq(link_encode_auth(out, sizeof(out), mac), w.len);
	cr_assert_arr_eq(out, w.b, w.len);
	f = frame_in(&gb, out, w.len);
	cr_assert_eq(link_decode_auth(&f, &got), 0);
	cr_assert_arr_eq(got, mac, LINK_MAC_LEN);
	guarded_buf_fini(&gb);
}

/* ---- INTEREST ---- */

Test(link_interest, encodes_exact_bytes)
{
	static const uint8_t want[] = {
		0, 0, 0, 13, LINK_INTEREST, LINK_ADD, LINK_PATTERN, 0x0a, 0x0b, 0x0c, 0x0d,
		0, 0, 0, 2,  'a',	    'b',
	};
	struct link_interest in = {
		.op = LINK_ADD, .kind = LINK_PATTERN, .seq = 0x0a0b0c0d,
		.name = "ab", .name_len = 2,
	};
	uint8_t out[64];

	cr_assert_eq(link_encode_interest(out, sizeof(out), &in), sizeof(want));
	cr_assert_arr_eq(out, want, sizeof(want));
}

Test(link_interest, round_trips_every_op_and_kind)
{
	static const uint8_t ops[] = { LINK_ADD, LINK_DEL };
	static const uint8_t kinds[] = { LINK_TOPIC, LINK_PATTERN };

	for (size_t o = 0; o < 2; o++) {
		for (size_t k = 0; k < 2; k++) {
			struct link_interest in = sample_interest;
			struct link_interest got;
			uint8_t out[64];
			size_t n;
			struct guarded_buf gb;
			struct link_frame f;

			in.op = ops[o];
			in.kind = kinds[k];
			n = link_encode_interest(out, sizeof(out), &in);
			cr_assert_eq(n, LINK_INTEREST_HDR + in.name_len);
			f = frame_in(&gb, out, n);
			cr_assert_eq(link_decode_interest(&f, &got), 0);
			cr_assert_eq(got.op, in.op);
			cr_assert_eq(got.kind, in.kind);
			cr_assert_eq(got.seq, in.seq);
			cr_assert_eq(got.name_len, in.name_len);
			cr_assert_arr_eq(got.name, in.name, in.name_len);
			guarded_buf_fini(&gb);
		}
	}
}

Test(link_interest, refuses_an_op_out_of_range)
{
	struct wire two = { .len = 0 };
	struct wire max = { .len = 0 };

	put_interest(&two, 2, LINK_TOPIC, 1, "/topic/a");
	put_interest(&max, 255, LINK_TOPIC, 1, "/topic/a");
	cr_assert_eq(decode_wire(&two), LINK_ERR_MALFORMED);
	cr_assert_eq(decode_wire(&max), LINK_ERR_MALFORMED);
}

Test(link_interest, refuses_a_kind_out_of_range)
{
	struct wire two = { .len = 0 };
	struct wire max = { .len = 0 };

	put_interest(&two, LINK_ADD, 2, 1, "/topic/a");
	put_interest(&max, LINK_ADD, 255, 1, "/topic/a");
	cr_assert_eq(decode_wire(&two), LINK_ERR_MALFORMED);
	cr_assert_eq(decode_wire(&max), LINK_ERR_MALFORMED);
}

Test(link_interest, refuses_a_name_length_past_the_body)
{
	struct wire w = { .len = 0 };

	begin_frame(&w, LINK_INTEREST);
	put_n(&w, (uint8_t[]){ LINK_ADD, LINK_TOPIC, 0, 0, 0, 1 }, 6);
	put_u32(&w, UINT32_MAX);
	put_n(&w, "ab", 2);
	end_frame(&w);
	cr_assert_eq(decode_wire(&w), LINK_ERR_MALFORMED);
}

Test(link_interest, encoder_refuses_what_the_decoder_would_refuse)
{
	struct link_interest bad_op = sample_interest;
	struct link_interest bad_kind = sample_interest;
	struct link_interest huge = sample_interest;
	uint8_t out[64];

	bad_op.op = 2;
	bad_kind.kind = 2;
	huge.name_len = UINT32_MAX - (LINK_INTEREST_HDR - LINK_FRAME_HDR);	/* length wraps */
	cr_assert_eq(link_encode_interest(out, sizeof(out), &bad_op), 0);
	cr_assert_eq(link_encode_interest(out, sizeof(out), &bad_kind), 0);
	cr_assert_eq(link_encode_interest(out, SIZE_MAX, &huge), 0);
}

/* ---- ACK ---- */

Test(link_ack, encodes_exact_bytes_and_round_trips)
{
	static const uint8_t want[] = { 0, 0, 0, 5, LINK_ACK, 1, 2, 3, 4 };
	uint8_t out[16];
	struct guarded_buf gb;
	struct link_frame f;
	uint32_t seq = 0;

	cr_assert_eq(link_encode_ack(out, sizeof(out), 0x01020304), sizeof(want));
	cr_assert_arr_eq(out, want, sizeof(want));
	f = frame_in(&gb, out, sizeof(want));
	cr_assert_eq(link_decode_ack(&f, &seq), 0);
	cr_assert_eq(seq, 0x01020304);
	guarded_buf_fini(&gb);
}

/* ---- MESSAGE ---- */

Test(link_message, head_encodes_exact_bytes)
{
	struct link_message m = {
		.flags = 0xa1b2, .dest_len = 1, .tail_off = 2, .tail_len = 3, .msgid_off = 4,
		.msgid_len = 5, .body_len = 6, .tail10_off = 7, .tail10_len = 8, .tail11_off = 9,
		.tail11_len = 10, .bytes_len = 20,
	};
	struct wire w = { .len = 0 };
	uint8_t out[LINK_MESSAGE_HDR];

	put_n(&w, (uint8_t[]){ 0, 0, 0, 63, LINK_MESSAGE, 0xa1, 0xb2 }, 7);	/* 1 + 42 + 20 */
	for (uint32_t v = 1; v <= 10; v++)
		put_u32(&w, v);
	cr_assert_eq(w.len, LINK_MESSAGE_HDR);
	cr_assert_eq(link_encode_message_head(out, sizeof(out), &m), LINK_MESSAGE_HDR);
	cr_assert_arr_eq(out, w.b, LINK_MESSAGE_HDR);
}

Test(link_message, round_trips)
{
	struct link_message m = sample_message();
	struct link_message got;
	struct wire w = { .len = 0 };
	struct guarded_buf gb;
	struct link_frame f;

	put_message(&w, &m);
	f = frame_in(&gb, w.b, w.len);
	cr_assert_eq(link_decode_message(&f, &got), 0);
	cr_assert_eq(got.flags, m.flags);
	cr_assert_eq(got.dest_len, m.dest_len);
	cr_assert_eq(got.tail_off, m.tail_off);
	cr_assert_eq(got.tail_len, m.tail_len);
	cr_assert_eq(got.msgid_off, m.msgid_off);
	cr_assert_eq(got.msgid_len, m.msgid_len);
	cr_assert_eq(got.body_len, m.body_len);
	cr_assert_eq(got.tail10_off, m.tail10_off);
	cr_assert_eq(got.tail10_len, m.tail10_len);
	cr_assert_eq(got.tail11_off, m.tail11_off);
	cr_assert_eq(got.tail11_len, m.tail11_len);
	cr_assert_eq(got.bytes, f.body + LINK_MESSAGE_HDR - LINK_FRAME_HDR);
	cr_assert_eq(got.bytes_len, m.bytes_len);
	cr_assert_arr_eq(got.bytes, m_bytes, M_BYTES_LEN);
	cr_assert_arr_eq(got.bytes + got.msgid_off, "m-1", 3);
	guarded_buf_fini(&gb);
}

Test(link_message, bytes_run_to_the_end_of_the_frame)
{
	struct link_message m = sample_message();
	struct link_message got;
	struct wire w = { .len = 0 };
	struct guarded_buf gb;
	struct link_frame f;

	put_message(&w, &m);
	w.frame_start = 0;
	put_n(&w, "xyz", 3);	/* more bytes than the head counted: the prefix says so */
	end_frame(&w);
	f = frame_in(&gb, w.b, w.len);
	cr_assert_eq(link_decode_message(&f, &got), 0);
	cr_assert_eq(got.bytes_len, M_BYTES_LEN + 3);
	guarded_buf_fini(&gb);
}

/* One field of the sample message set to a value that breaks the rule named. By value,
 * since Criterion may run the test in a fresh process. */
struct field_case {
	char rule[64];
	size_t field;		/* offsetof(struct link_message, ...) */
	uint32_t value;
};

#define FIELD(name) offsetof(struct link_message, name)

/* The sample message with c's field set to c's value. */
static struct link_message message_with(const struct field_case *c)
{
	struct link_message m = sample_message();

	memcpy((char *)&m + c->field, &c->value, sizeof(c->value));
	return m;
}

static int decode_with(const struct field_case *c)
{
	struct link_message m = message_with(c);
	struct wire w = { .len = 0 };

	put_message(&w, &m);
	return decode_wire(&w);
}

/* Shared with the QUEUE tests, whose message ops carry a MESSAGE part. */
static struct field_case bad_message_fields[] = {
	{ "destination fills the bytes", FIELD(dest_len), M_BYTES_LEN },
	{ "destination past the bytes", FIELD(dest_len), UINT32_MAX },
	{ "no NUL after the destination", FIELD(dest_len), M_DEST_LEN - 1 },
	{ "tail starts inside the destination", FIELD(tail_off), 0 },
	{ "tail starts on the destination's NUL", FIELD(tail_off), M_DEST_LEN },
	{ "tail ends past the bytes", FIELD(tail_len), M_BYTES_LEN - M_TAIL_OFF + 1 },
	{ "tail end wraps in 32 bits", FIELD(tail_len), UINT32_MAX - M_TAIL_OFF + 2 },
	{ "message id starts inside the destination", FIELD(msgid_off), 0 },
	{ "message id starts on the destination's NUL", FIELD(msgid_off), M_DEST_LEN },
	{ "message id ends past the bytes", FIELD(msgid_len), M_BYTES_LEN - M_MSGID_OFF + 1 },
	{ "message id end wraps in 32 bits", FIELD(msgid_len), UINT32_MAX - M_MSGID_OFF + 2 },
	{ "body longer than the tail", FIELD(body_len), M_TAIL_LEN + 1 },
	{ "1.0 tail starts on the destination's NUL", FIELD(tail10_off), M_DEST_LEN },
	{ "1.0 tail ends past the bytes", FIELD(tail10_len), M_BYTES_LEN - M_TAIL10_OFF + 1 },
	{ "1.0 tail end wraps in 32 bits", FIELD(tail10_len), UINT32_MAX - M_TAIL10_OFF + 2 },
	{ "1.1 tail starts on the destination's NUL", FIELD(tail11_off), M_DEST_LEN },
	{ "1.1 tail ends past the bytes", FIELD(tail11_len), M_BYTES_LEN - M_TAIL11_OFF + 1 },
	{ "1.1 tail end wraps in 32 bits", FIELD(tail11_len), UINT32_MAX - M_TAIL11_OFF + 2 },
};

#define NBAD_MESSAGE_FIELDS (sizeof(bad_message_fields) / sizeof(bad_message_fields[0]))

ParameterizedTestParameters(link_message, refuses_each_out_of_bounds_field)
{
	return cr_make_param_array(struct field_case, bad_message_fields, NBAD_MESSAGE_FIELDS);
}

ParameterizedTest(struct field_case *c, link_message, refuses_each_out_of_bounds_field)
{
	cr_assert_eq(decode_with(c), LINK_ERR_MALFORMED, "%s", c->rule);
}

/* The same rules at their edges, so the checks above are not simply too strict. */
static struct field_case good_message_fields[] = {
	{ "tail runs to the end of the bytes", FIELD(tail_len), M_BYTES_LEN - M_TAIL_OFF },
	{ "tail as short as the body", FIELD(tail_len), M_BODY_LEN },
	{ "message id runs to the end of the bytes", FIELD(msgid_len), M_BYTES_LEN - M_MSGID_OFF },
	{ "message id inside the tail", FIELD(msgid_off), M_TAIL_OFF + LEN("message-id:") },
	{ "body as long as the tail", FIELD(body_len), M_TAIL_LEN },
	{ "1.0 tail right after the NUL", FIELD(tail10_off), M_DEST_LEN + 1 },
	{ "1.0 tail runs to the end of the bytes", FIELD(tail10_len), M_BYTES_LEN - M_TAIL10_OFF },
};

#define NGOOD_MESSAGE_FIELDS (sizeof(good_message_fields) / sizeof(good_message_fields[0]))

ParameterizedTestParameters(link_message, accepts_each_field_at_its_bound)
{
	return cr_make_param_array(struct field_case, good_message_fields, NGOOD_MESSAGE_FIELDS);
}

ParameterizedTest(struct field_case *c, link_message, accepts_each_field_at_its_bound)
{
	cr_assert_eq(decode_with(c), 0, "%s", c->rule);
}

Test(link_message, ignores_the_offset_of_an_absent_tail_but_keeps_it)
{
	struct link_message m = sample_message();
	struct link_message got;
	struct wire w = { .len = 0 };
	struct guarded_buf gb;
	struct link_frame f;

	m.tail10_off = UINT32_MAX;
	m.tail10_len = 0;
	m.tail11_off = 0;
	m.tail11_len = 0;
	put_message(&w, &m);
	f = frame_in(&gb, w.b, w.len);
	cr_assert_eq(link_decode_message(&f, &got), 0);
	cr_assert_eq(got.tail10_off, UINT32_MAX);
	cr_assert_eq(got.tail11_off, 0);
	guarded_buf_fini(&gb);
}

Test(link_message, refuses_a_destination_with_no_bytes)
{
	struct link_message m = { .dest_len = 0, .bytes = (const uint8_t *)"", .bytes_len = 0 };
	struct wire w = { .len = 0 };

	put_message(&w, &m);
	cr_assert_eq(decode_wire(&w), LINK_ERR_MALFORMED);
}

Test(link_message, head_encoder_refuses_bytes_too_long_for_the_length_prefix)
{
	struct link_message m = sample_message();
	uint8_t out[LINK_MESSAGE_HDR];

	m.bytes_len = UINT32_MAX - (LINK_MESSAGE_HDR - 4) + 1;
	cr_assert_eq(link_encode_message_head(out, sizeof(out), &m), 0);
	m.bytes_len--;
	cr_assert_eq(link_encode_message_head(out, sizeof(out), &m), LINK_MESSAGE_HDR);
	cr_assert_arr_eq(out, ((uint8_t[]){ 0xff, 0xff, 0xff, 0xff, LINK_MESSAGE }), 5);
}

/* ---- QUEUE ---- */

/* Which ops carry a message, written down here rather than asked of the codec. */
static const uint8_t plain_ops[] = {
	LINK_Q_DONE, LINK_Q_ADD, LINK_Q_DEL, LINK_Q_ACK, LINK_Q_DROPPED, LINK_Q_REPL,
};
static const uint8_t message_ops[] = {
	LINK_Q_SEND, LINK_Q_DELIVER, LINK_Q_RETURN, LINK_Q_HANDOVER, LINK_Q_REPL_SEND,
};
/* below the first op, past the last (LINK_Q_REPL: move this when an op is appended) */
static const uint8_t bad_ops[] = { 0, LINK_Q_REPL + 1, 255 };

#define NPLAIN_OPS sizeof(plain_ops)
#define NMESSAGE_OPS sizeof(message_ops)
#define Q_NAME "/queue/jobs"

/* Field values a round trip must keep: every 64-bit field with its high word set (so a
 * lost or swapped half shows), every field at its maximum, and every field at zero. */
static const struct link_queue queue_values[] = {
	{ .shard = 0xfedc, .seq = 0x89abcdef, .arg = 0x80000001, .key = 0xf1e2d3c4b5a69788ull,
	  .conn = 0x8000000000000001ull, .tag = 0xc0ffee00deadbeefull },
	{ .shard = UINT16_MAX, .seq = UINT32_MAX, .arg = UINT32_MAX, .key = UINT64_MAX,
	  .conn = UINT64_MAX, .tag = UINT64_MAX },
	{ .shard = 0 },
};

#define NQUEUE_VALUES (sizeof(queue_values) / sizeof(queue_values[0]))

/* queue_values[0] as op, named Q_NAME when op carries no message (as the codec wants). */
static struct link_queue queue_of(uint8_t op, bool has_message)
{
	struct link_queue q = queue_values[0];

	q.op = op;
	q.name = has_message ? "" : Q_NAME;
	q.name_len = has_message ? 0 : LEN(Q_NAME);
	return q;
}

/* A QUEUE's fields written by hand, name_len and name as q has them, so any op can be
 * paired with any name. */
static void put_queue_fields(struct wire *w, const struct link_queue *q)
{
	put_u8(w, q->op);
	put_u16(w, q->shard);
	put_u32(w, q->seq);
	put_u32(w, q->arg);
	put_u64(w, q->key);
	put_u64(w, q->conn);
	put_u64(w, q->tag);
	put_u32(w, q->name_len);
	put_n(w, q->name, q->name_len);
}

static void put_message_fields(struct wire *w, const struct link_message *m)
{
	put_u16(w, m->flags);
	put_u32(w, m->dest_len);
	put_u32(w, m->tail_off);
	put_u32(w, m->tail_len);
	put_u32(w, m->msgid_off);
	put_u32(w, m->msgid_len);
	put_u32(w, m->body_len);
	put_u32(w, m->tail10_off);
	put_u32(w, m->tail10_len);
	put_u32(w, m->tail11_off);
	put_u32(w, m->tail11_len);
}

/* A QUEUE frame by hand: q's fields and name, then m's fields and bytes unless m is NULL. */
static void put_queue(struct wire *w, const struct link_queue *q, const struct link_message *m)
{
	begin_frame(w, LINK_QUEUE);
	put_queue_fields(w, q);
	if (m) {
		put_message_fields(w, m);
		put_n(w, m->bytes, m->bytes_len);
	}
	end_frame(w);
}

/* A QUEUE frame as a sender writes it: whole for a plain op; for a message op, the
 * encoded head, then m's bytes. */
static void encode_queue(struct wire *w, const struct link_queue *q, const struct link_message *m)
{
	size_t n;

	w->len = 0;
	if (!m) {
		w->len = link_encode_queue(w->b, sizeof(w->b), q);
		cr_assert_eq(w->len, LINK_QUEUE_HDR + q->name_len, "op %d", q->op);
		return;
	}
	n = link_encode_queue_head(w->b, sizeof(w->b), q, m);
	cr_assert_eq(n, LINK_QUEUE_MESSAGE_HDR, "op %d", q->op);
	w->len = n;
	put_n(w, m->bytes, m->bytes_len);
}

/* Decodes w's frame from gb; the views in *out die with gb (guarded_buf_fini). */
static int decode_queue_wire(struct guarded_buf *gb, const struct wire *w,
			     struct link_queue *out)
{
	struct link_frame f = frame_in(gb, w->b, w->len);

	return link_decode_queue(&f, out);
}

static void assert_queue_fields_eq(const struct link_queue *got, const struct link_queue *want)
{
	cr_assert_eq(got->op, want->op);
	cr_assert_eq(got->shard, want->shard, "op %d", want->op);
	cr_assert_eq(got->seq, want->seq, "op %d", want->op);
	cr_assert_eq(got->arg, want->arg, "op %d", want->op);
	cr_assert_eq(got->key, want->key, "op %d: key %#jx", want->op, (uintmax_t)got->key);
	cr_assert_eq(got->conn, want->conn, "op %d: conn %#jx", want->op, (uintmax_t)got->conn);
	cr_assert_eq(got->tag, want->tag, "op %d: tag %#jx", want->op, (uintmax_t)got->tag);
	cr_assert_eq(got->name_len, want->name_len, "op %d", want->op);
	if (want->name_len)	/* an empty name may be NULL, which memcmp must not see */
		cr_assert_arr_eq(got->name, want->name, want->name_len, "op %d", want->op);
}

static void assert_message_eq(const struct link_message *got, const struct link_message *want)
{
	cr_assert_eq(got->flags, want->flags);
	cr_assert_eq(got->dest_len, want->dest_len);
	cr_assert_eq(got->tail_off, want->tail_off);
	cr_assert_eq(got->tail_len, want->tail_len);
	cr_assert_eq(got->msgid_off, want->msgid_off);
	cr_assert_eq(got->msgid_len, want->msgid_len);
	cr_assert_eq(got->body_len, want->body_len);
	cr_assert_eq(got->tail10_off, want->tail10_off);
	cr_assert_eq(got->tail10_len, want->tail10_len);
	cr_assert_eq(got->tail11_off, want->tail11_off);
	cr_assert_eq(got->tail11_len, want->tail11_len);
	cr_assert_eq(got->bytes_len, want->bytes_len);
	cr_assert_arr_eq(got->bytes, want->bytes, want->bytes_len);
}

Test(link_queue, op_has_message_for_send_deliver_return_handover_and_copies_only)
{
	for (unsigned op = 0; op <= UINT8_MAX; op++) {
		bool want = op == LINK_Q_SEND || op == LINK_Q_DELIVER || op == LINK_Q_RETURN ||
			    op == LINK_Q_HANDOVER || op == LINK_Q_REPL_SEND;

		cr_assert_eq(link_queue_op_has_message((uint8_t)op), want, "op %u", op);
	}
}

Test(link_queue, encodes_exact_bytes)
{
	struct link_queue q = queue_of(LINK_Q_ADD, false);
	struct wire w = { .len = 0 };
	uint8_t out[128];

	put_n(&w, (uint8_t[]){ 0, 0, 0, 40 + LEN(Q_NAME), LINK_QUEUE, LINK_Q_ADD, 0xfe, 0xdc,
			       0x89, 0xab, 0xcd, 0xef, 0x80, 0, 0, 1 },
	      16);
	put_n(&w, (uint8_t[]){ 0xf1, 0xe2, 0xd3, 0xc4, 0xb5, 0xa6, 0x97, 0x88 }, 8);
	put_n(&w, (uint8_t[]){ 0x80, 0, 0, 0, 0, 0, 0, 1 }, 8);
	put_n(&w, (uint8_t[]){ 0xc0, 0xff, 0xee, 0, 0xde, 0xad, 0xbe, 0xef }, 8);
	put_n(&w, (uint8_t[]){ 0, 0, 0, LEN(Q_NAME) }, 4);
	cr_assert_eq(w.len, LINK_QUEUE_HDR);
	put_n(&w, Q_NAME, LEN(Q_NAME));
	cr_assert_eq(link_encode_queue(out, sizeof(out), &q), w.len);
	cr_assert_arr_eq(out, w.b, w.len);
}

/* The head counts m's bytes in its length prefix but writes none of them, and it reads
 * neither m->bytes nor the offsets (as link_encode_message_head). */
Test(link_queue, head_encodes_exact_bytes)
{
	struct link_queue q = queue_of(LINK_Q_DELIVER, true);
	struct link_message m = {
		.flags = 0xa1b2, .dest_len = 1, .tail_off = 2, .tail_len = 3, .msgid_off = 4,
		.msgid_len = 5, .body_len = 6, .tail10_off = 7, .tail10_len = 8, .tail11_off = 9,
		.tail11_len = 10, .bytes_len = 20,
	};
	struct wire w = { .len = 0 };
	uint8_t out[LINK_QUEUE_MESSAGE_HDR];

	put_u32(&w, 1 + (LINK_QUEUE_MESSAGE_HDR - LINK_FRAME_HDR) + 20);
	put_u8(&w, LINK_QUEUE);
	put_n(&w, (uint8_t[]){ LINK_Q_DELIVER, 0xfe, 0xdc, 0x89, 0xab, 0xcd, 0xef, 0x80, 0, 0, 1 },
	      11);
	put_n(&w, (uint8_t[]){ 0xf1, 0xe2, 0xd3, 0xc4, 0xb5, 0xa6, 0x97, 0x88 }, 8);
	put_n(&w, (uint8_t[]){ 0x80, 0, 0, 0, 0, 0, 0, 1 }, 8);
	put_n(&w, (uint8_t[]){ 0xc0, 0xff, 0xee, 0, 0xde, 0xad, 0xbe, 0xef }, 8);
	put_u32(&w, 0);	/* the message names the queue */
	cr_assert_eq(w.len, LINK_QUEUE_HDR);
	put_n(&w, (uint8_t[]){ 0xa1, 0xb2 }, 2);
	for (uint32_t v = 1; v <= 10; v++)
		put_u32(&w, v);
	cr_assert_eq(w.len, LINK_QUEUE_MESSAGE_HDR);
	cr_assert_eq(link_encode_queue_head(out, sizeof(out), &q, &m), LINK_QUEUE_MESSAGE_HDR);
	cr_assert_arr_eq(out, w.b, LINK_QUEUE_MESSAGE_HDR);
}

Test(link_queue, round_trips_every_op_without_a_message)
{
	for (size_t o = 0; o < NPLAIN_OPS; o++) {
		for (size_t v = 0; v < NQUEUE_VALUES; v++) {
			struct link_queue q = queue_values[v];
			struct link_queue got;
			struct wire w;
			struct guarded_buf gb;

			q.op = plain_ops[o];
			q.name = Q_NAME;
			q.name_len = LEN(Q_NAME);
			encode_queue(&w, &q, NULL);
			cr_assert_eq(decode_queue_wire(&gb, &w, &got), 0, "op %d values %zu", q.op,
				     v);
			assert_queue_fields_eq(&got, &q);
			guarded_buf_fini(&gb);
		}
	}
}

/* A one-byte name is the shortest the codec allows. */
Test(link_queue, round_trips_a_one_byte_name)
{
	struct link_queue q = queue_of(LINK_Q_DEL, false);
	struct link_queue got;
	struct wire w;
	struct guarded_buf gb;

	q.name = "q";
	q.name_len = 1;
	encode_queue(&w, &q, NULL);
	cr_assert_eq(decode_queue_wire(&gb, &w, &got), 0);
	assert_queue_fields_eq(&got, &q);
	guarded_buf_fini(&gb);
}

Test(link_queue, round_trips_every_op_with_a_message)
{
	struct link_message m = sample_message();

	for (size_t o = 0; o < NMESSAGE_OPS; o++) {
		for (size_t v = 0; v < NQUEUE_VALUES; v++) {
			struct link_queue q = queue_values[v];
			struct link_queue got;
			struct wire w;
			struct guarded_buf gb;
			struct link_frame f;

			q.op = message_ops[o];
			encode_queue(&w, &q, &m);
			f = frame_in(&gb, w.b, w.len);
			cr_assert_eq(link_decode_queue(&f, &got), 0, "op %d values %zu", q.op, v);
			assert_queue_fields_eq(&got, &q);
			assert_message_eq(&got.msg, &m);
			cr_assert_eq(got.msg.bytes,
				     f.body + (LINK_QUEUE_MESSAGE_HDR - LINK_FRAME_HDR));
			cr_assert_arr_eq(got.msg.bytes + got.msg.msgid_off, M_MSGID, M_MSGID_LEN);
			guarded_buf_fini(&gb);
		}
	}
}

/* Hand-built frames decode too, so the encoders and decoder cannot share a mistake. */
Test(link_queue, decodes_hand_built_frames_of_every_op)
{
	struct link_message m = sample_message();

	for (size_t o = 0; o < NPLAIN_OPS + NMESSAGE_OPS; o++) {
		bool has_message = o >= NPLAIN_OPS;
		uint8_t op = has_message ? message_ops[o - NPLAIN_OPS] : plain_ops[o];
		struct link_queue q = queue_of(op, has_message);
		struct link_queue got;
		struct wire w = { .len = 0 };
		struct guarded_buf gb;

		put_queue(&w, &q, has_message ? &m : NULL);
		cr_assert_eq(decode_queue_wire(&gb, &w, &got), 0, "op %d", op);
		assert_queue_fields_eq(&got, &q);
		if (has_message)
			assert_message_eq(&got.msg, &m);
		guarded_buf_fini(&gb);
	}
}

Test(link_queue, refuses_an_op_out_of_range)
{
	struct link_message m = sample_message();

	for (size_t i = 0; i < sizeof(bad_ops); i++) {
		struct link_queue named = queue_of(bad_ops[i], false);
		struct link_queue unnamed = queue_of(bad_ops[i], true);
		struct wire plain = { .len = 0 };
		struct wire with_message = { .len = 0 };

		put_queue(&plain, &named, NULL);
		put_queue(&with_message, &unnamed, &m);
		cr_assert_eq(decode_wire(&plain), LINK_ERR_MALFORMED, "op %d", bad_ops[i]);
		cr_assert_eq(decode_wire(&with_message), LINK_ERR_MALFORMED, "op %d", bad_ops[i]);
	}
}

/* An op without a message names its queue; nothing else does. */
Test(link_queue, refuses_an_empty_name_for_an_op_without_a_message)
{
	struct link_message m = sample_message();

	for (size_t o = 0; o < NPLAIN_OPS; o++) {
		struct link_queue q = queue_of(plain_ops[o], true);
		struct wire alone = { .len = 0 };
		struct wire with_message = { .len = 0 };

		put_queue(&alone, &q, NULL);
		put_queue(&with_message, &q, &m);
		cr_assert_eq(decode_wire(&alone), LINK_ERR_MALFORMED, "op %d", q.op);
		cr_assert_eq(decode_wire(&with_message), LINK_ERR_MALFORMED, "op %d", q.op);
	}
}

/* A message op's message names the queue, so the name must be empty. */
Test(link_queue, refuses_a_name_for_an_op_with_a_message)
{
	struct link_message m = sample_message();

	for (size_t o = 0; o < NMESSAGE_OPS; o++) {
		struct link_queue q = queue_of(message_ops[o], false);
		struct link_queue one = q;
		struct wire named = { .len = 0 };
		struct wire one_byte = { .len = 0 };

		one.name_len = 1;
		put_queue(&named, &q, &m);
		put_queue(&one_byte, &one, &m);
		cr_assert_eq(decode_wire(&named), LINK_ERR_MALFORMED, "op %d", q.op);
		cr_assert_eq(decode_wire(&one_byte), LINK_ERR_MALFORMED, "op %d", q.op);
	}
}

/* A message op with only its queue fields, or a plain op with a message after its name. */
Test(link_queue, refuses_a_message_part_missing_or_unasked_for)
{
	struct link_message m = sample_message();

	for (size_t o = 0; o < NMESSAGE_OPS; o++) {
		struct link_queue q = queue_of(message_ops[o], true);
		struct wire w = { .len = 0 };

		put_queue(&w, &q, NULL);
		cr_assert_eq(decode_wire(&w), LINK_ERR_MALFORMED, "op %d", q.op);
	}
	for (size_t o = 0; o < NPLAIN_OPS; o++) {
		struct link_queue q = queue_of(plain_ops[o], false);
		struct wire w = { .len = 0 };

		put_queue(&w, &q, &m);
		cr_assert_eq(decode_wire(&w), LINK_ERR_MALFORMED, "op %d", q.op);
	}
}

Test(link_queue, refuses_a_name_length_past_the_body)
{
	static const uint8_t ops[] = { LINK_Q_ACK, LINK_Q_SEND };

	for (size_t i = 0; i < sizeof(ops); i++) {
		struct link_queue q = queue_of(ops[i], false);
		struct wire w = { .len = 0 };

		begin_frame(&w, LINK_QUEUE);
		put_queue_fields(&w, &q);
		w.len -= LEN(Q_NAME) + 4;	/* back over the name and its length */
		put_u32(&w, UINT32_MAX);
		put_n(&w, Q_NAME, LEN(Q_NAME));
		end_frame(&w);
		cr_assert_eq(decode_wire(&w), LINK_ERR_MALFORMED, "op %d", ops[i]);
	}
}

Test(link_queue, refuses_trailing_bytes_after_the_name)
{
	for (size_t o = 0; o < NPLAIN_OPS; o++) {
		struct link_queue q = queue_of(plain_ops[o], false);
		struct wire w;

		encode_queue(&w, &q, NULL);
		w.frame_start = 0;
		put_u8(&w, 0);
		end_frame(&w);
		cr_assert_eq(decode_wire(&w), LINK_ERR_MALFORMED, "op %d", q.op);
	}
}

/* As in a MESSAGE, the message's bytes run to the frame's end. */
Test(link_queue, message_bytes_run_to_the_end_of_the_frame)
{
	struct link_message m = sample_message();

	for (size_t o = 0; o < NMESSAGE_OPS; o++) {
		struct link_queue q = queue_of(message_ops[o], true);
		struct link_queue got;
		struct wire w;
		struct guarded_buf gb;

		encode_queue(&w, &q, &m);
		w.frame_start = 0;
		put_n(&w, "xyz", 3);
		end_frame(&w);
		cr_assert_eq(decode_queue_wire(&gb, &w, &got), 0, "op %d", q.op);
		cr_assert_eq(got.msg.bytes_len, M_BYTES_LEN + 3, "op %d", q.op);
		cr_assert_arr_eq(got.msg.bytes + M_BYTES_LEN, "xyz", 3, "op %d", q.op);
		guarded_buf_fini(&gb);
	}
}

/* Each op cut short at every byte of its body; the sample message's last tail ends its
 * bytes, so even a cut inside the bytes breaks a rule. */
Test(link_queue, refuses_every_op_truncated_at_every_byte)
{
	struct link_message m = sample_message();

	for (size_t o = 0; o < NPLAIN_OPS + NMESSAGE_OPS; o++) {
		bool has_message = o >= NPLAIN_OPS;
		uint8_t op = has_message ? message_ops[o - NPLAIN_OPS] : plain_ops[o];
		struct link_queue q = queue_of(op, has_message);
		struct wire w;

		encode_queue(&w, &q, has_message ? &m : NULL);
		for (size_t k = 0; k < w.len - LINK_FRAME_HDR; k++) {
			struct guarded_buf gb;
			struct link_frame f = body_in(&gb, LINK_QUEUE, w.b + LINK_FRAME_HDR, k);

			cr_assert_eq(link_decode_queue(&f, &(struct link_queue){ 0 }),
				     LINK_ERR_MALFORMED, "op %d, %zu bytes", op, k);
			guarded_buf_fini(&gb);
		}
	}
}

/* The message part of each message op obeys every MESSAGE rule (link_message tests). */
static int decode_queue_with(const struct field_case *c, uint8_t op)
{
	struct link_message m = message_with(c);
	struct link_queue q = queue_of(op, true);
	struct wire w = { .len = 0 };

	put_queue(&w, &q, &m);
	return decode_wire(&w);
}

ParameterizedTestParameters(link_queue, refuses_each_out_of_bounds_message_field)
{
	return cr_make_param_array(struct field_case, bad_message_fields, NBAD_MESSAGE_FIELDS);
}

ParameterizedTest(struct field_case *c, link_queue, refuses_each_out_of_bounds_message_field)
{
	for (size_t o = 0; o < NMESSAGE_OPS; o++)
		cr_assert_eq(decode_queue_with(c, message_ops[o]), LINK_ERR_MALFORMED, "op %d: %s",
			     message_ops[o], c->rule);
}

ParameterizedTestParameters(link_queue, accepts_each_message_field_at_its_bound)
{
	return cr_make_param_array(struct field_case, good_message_fields, NGOOD_MESSAGE_FIELDS);
}

ParameterizedTest(struct field_case *c, link_queue, accepts_each_message_field_at_its_bound)
{
	for (size_t o = 0; o < NMESSAGE_OPS; o++)
		cr_assert_eq(decode_queue_with(c, message_ops[o]), 0, "op %d: %s", message_ops[o],
			     c->rule);
}

Test(link_queue, refuses_a_message_with_no_bytes)
{
	struct link_message m = { .dest_len = 0, .bytes = (const uint8_t *)"", .bytes_len = 0 };

	for (size_t o = 0; o < NMESSAGE_OPS; o++) {
		struct link_queue q = queue_of(message_ops[o], true);
		struct wire w = { .len = 0 };

		put_queue(&w, &q, &m);
		cr_assert_eq(decode_wire(&w), LINK_ERR_MALFORMED, "op %d", q.op);
	}
}

/* Encoder output into a 0xaa-filled buffer: 0 and not a byte written, or its length. */
static size_t encode_into_filled(uint8_t *out, size_t cap, const struct link_queue *q,
				 const struct link_message *m)
{
	size_t n;

	memset(out, 0xaa, cap);
	n = m ? link_encode_queue_head(out, cap, q, m) : link_encode_queue(out, cap, q);
	if (!n)
		for (size_t i = 0; i < cap; i++)
			cr_assert_eq(out[i], 0xaa, "op %d: byte %zu written", q->op, i);
	return n;
}

Test(link_queue, encoder_refuses_message_ops_bad_ops_and_empty_names)
{
	uint8_t out[256];

	for (size_t o = 0; o < NMESSAGE_OPS; o++) {
		struct link_queue named = queue_of(message_ops[o], false);
		struct link_queue unnamed = queue_of(message_ops[o], true);

		cr_assert_eq(encode_into_filled(out, sizeof(out), &named, NULL), 0, "op %d",
			     named.op);
		cr_assert_eq(encode_into_filled(out, sizeof(out), &unnamed, NULL), 0, "op %d",
			     unnamed.op);
	}
	for (size_t i = 0; i < sizeof(bad_ops); i++) {
		struct link_queue q = queue_of(bad_ops[i], false);

		cr_assert_eq(encode_into_filled(out, sizeof(out), &q, NULL), 0, "op %d", q.op);
	}
	for (size_t o = 0; o < NPLAIN_OPS; o++) {
		struct link_queue q = queue_of(plain_ops[o], true);

		cr_assert_eq(encode_into_filled(out, sizeof(out), &q, NULL), 0, "op %d", q.op);
	}
}

Test(link_queue, encoder_refuses_a_name_too_long_for_the_length_prefix)
{
	struct link_queue q = queue_of(LINK_Q_ADD, false);
	uint8_t out[LINK_QUEUE_HDR];

	q.name_len = UINT32_MAX - (LINK_QUEUE_HDR - 4) + 1;
	cr_assert_eq(link_encode_queue(out, SIZE_MAX, &q), 0);
	q.name_len = UINT32_MAX;	/* the body's length wraps in 32 bits */
	cr_assert_eq(link_encode_queue(out, SIZE_MAX, &q), 0);
}

Test(link_queue, head_encoder_refuses_ops_without_a_message)
{
	struct link_message m = sample_message();
	uint8_t out[LINK_QUEUE_MESSAGE_HDR];

	for (size_t o = 0; o < NPLAIN_OPS; o++) {
		struct link_queue named = queue_of(plain_ops[o], false);
		struct link_queue unnamed = queue_of(plain_ops[o], true);

		cr_assert_eq(encode_into_filled(out, sizeof(out), &named, &m), 0, "op %d",
			     named.op);
		cr_assert_eq(encode_into_filled(out, sizeof(out), &unnamed, &m), 0, "op %d",
			     unnamed.op);
	}
	for (size_t i = 0; i < sizeof(bad_ops); i++) {
		struct link_queue q = queue_of(bad_ops[i], true);

		cr_assert_eq(encode_into_filled(out, sizeof(out), &q, &m), 0, "op %d", q.op);
	}
}

/* The head writes no name bytes, so a name on q must not reach its length field either
 * (a peer would refuse the frame): either it is refused, or the field says 0. */
Test(link_queue, head_encoder_never_writes_a_name_length)
{
	struct link_message m = sample_message();
	uint8_t out[LINK_QUEUE_MESSAGE_HDR];

	for (size_t o = 0; o < NMESSAGE_OPS; o++) {
		struct link_queue q = queue_of(message_ops[o], false);
		size_t n = encode_into_filled(out, sizeof(out), &q, &m);

		cr_assert(n == 0 || n == LINK_QUEUE_MESSAGE_HDR, "op %d", q.op);
		if (n)
			cr_assert_arr_eq(out + LINK_QUEUE_HDR - 4, ((uint8_t[]){ 0, 0, 0, 0 }), 4,
					 "op %d", q.op);
	}
}

Test(link_queue, head_encoder_refuses_bytes_too_long_for_the_length_prefix)
{
	struct link_queue q = queue_of(LINK_Q_SEND, true);
	struct link_message m = sample_message();
	uint8_t out[LINK_QUEUE_MESSAGE_HDR];

	m.bytes_len = UINT32_MAX - (LINK_QUEUE_MESSAGE_HDR - 4) + 1;
	cr_assert_eq(encode_into_filled(out, sizeof(out), &q, &m), 0);
	m.bytes_len = UINT32_MAX;
	cr_assert_eq(encode_into_filled(out, sizeof(out), &q, &m), 0);
	m.bytes_len = UINT32_MAX - (LINK_QUEUE_MESSAGE_HDR - 4);
	cr_assert_eq(link_encode_queue_head(out, sizeof(out), &q, &m), LINK_QUEUE_MESSAGE_HDR);
	cr_assert_arr_eq(out, ((uint8_t[]){ 0xff, 0xff, 0xff, 0xff, LINK_QUEUE }), 5);
}

/* Every op, every capacity up to what it needs (the whole frame, or a head): nothing
 * written below it; at it, exactly the hand-built bytes. */
Test(link_queue, encoders_write_nothing_when_cap_is_short)
{
	struct link_message m = sample_message();

	for (size_t o = 0; o < NPLAIN_OPS + NMESSAGE_OPS; o++) {
		bool has_message = o >= NPLAIN_OPS;
		uint8_t op = has_message ? message_ops[o - NPLAIN_OPS] : plain_ops[o];
		struct link_queue q = queue_of(op, has_message);
		const struct link_message *mp = has_message ? &m : NULL;
		struct wire want = { .len = 0 };
		size_t need;

		put_queue(&want, &q, mp);
		need = has_message ? LINK_QUEUE_MESSAGE_HDR : want.len;
		for (size_t cap = 0; cap <= need; cap++) {
			struct guarded_buf gb;
			uint8_t *out = (uint8_t *)guarded_buf_init(&gb, NULL, cap);
			size_t n = encode_into_filled(out, cap, &q, mp);

			if (cap < need) {
				cr_assert_eq(n, 0, "op %d cap %zu", op, cap);
			} else {
				cr_assert_eq(n, need, "op %d", op);
				cr_assert_arr_eq(out, want.b, need, "op %d", op);
			}
			guarded_buf_fini(&gb);
		}
	}
}

/* ---- encoders at every short capacity ---- */

Test(link_encode, writes_nothing_and_returns_zero_when_cap_is_short)
{
	for (size_t t = 0; t < NTYPES; t++) {
		enum link_type type = all_types[t];
		struct wire w;
		/* a MESSAGE head fits once cap reaches it; its bytes are the caller's to send */
		size_t need;

		sample_wire(type, &w);
		need = type == LINK_MESSAGE ? LINK_MESSAGE_HDR : w.len;
		for (size_t cap = 0; cap <= need; cap++) {
			struct guarded_buf gb;
			uint8_t *out = (uint8_t *)guarded_buf_init(&gb, NULL, cap);
			size_t n;

			memset(out, 0xaa, cap);
			n = encode_sample(type, out, cap);
			if (cap < need) {
				cr_assert_eq(n, 0, "type %d cap %zu", type, cap);
				for (size_t i = 0; i < cap; i++)
					cr_assert_eq(out[i], 0xaa, "type %d cap %zu", type, cap);
			} else if (type != LINK_MESSAGE) {
				cr_assert_eq(n, need, "type %d", type);
				cr_assert_arr_eq(out, w.b, need);
			} else {
				cr_assert_eq(link_encode_message_head(
						     out, cap, &(struct link_message){ 0 }),
					     LINK_MESSAGE_HDR);
			}
			guarded_buf_fini(&gb);
		}
	}
}
