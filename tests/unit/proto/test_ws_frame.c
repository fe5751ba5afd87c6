/*
 * tests/unit/proto/test_ws_frame.c - proto/ws_frame.c against RFC 6455: the examples of
 * section 5.7, every opcode, masking, fragment sequences with control frames between
 * them, each decoder error with its close code, the message size limit, UTF-8 of text
 * across fragments, the encoder, and the same events wherever the input is split.
 *
 * Decoded streams are compared as transcripts: data bytes as they come, "<T>"/"<B>" at the
 * end of a text/binary message, "<PING:..>", "<PONG:..>", "<CLOSE n:..>" and "<ERR n>".
 */
#include "proto/ws_frame.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- guarded input: the last byte sits flush against a PROT_NONE page ---- */

struct guard {
	struct guarded_buf gb;
	uint8_t *p;
};

static struct guard guard_copy(const void *src, size_t len)
{
	struct guard g;

	g.p = (uint8_t *)guarded_buf_init(&g.gb, src, len);
	return g;
}

static void guard_free(struct guard *g)
{
	guarded_buf_fini(&g->gb);
}

/* ---- building client frames ---- */

static const uint8_t rfc_mask[4] = { 0x37, 0xfa, 0x21, 0x3d };	/* RFC 6455 5.7 */

struct wire {
	uint8_t b[200000];
	size_t len;
};

static void put_raw(struct wire *w, const void *p, size_t n)
{
	cr_assert_leq(w->len + n, sizeof(w->b));
	memcpy(w->b + w->len, p, n);
	w->len += n;
}

/* A masked client frame, as a browser sends it. */
static void put_frame(struct wire *w, enum ws_opcode op, bool fin, const void *payload,
		      size_t len)
{
	ssize_t n = ws_encode_header(w->b + w->len, sizeof(w->b) - w->len, op, fin, len,
				     rfc_mask);

	cr_assert_gt(n, 0, "header for op %d len %zu", op, len);
	w->len += (size_t)n;
	put_raw(w, payload, len);
	ws_mask_apply(w->b + w->len - len, len, rfc_mask, 0);
}

#define PUT(w, op, fin, lit) put_frame((w), (op), (fin), (lit), sizeof(lit) - 1)

/* A close frame's payload: code then reason. */
static void put_close(struct wire *w, uint16_t code, const char *reason)
{
	uint8_t p[WS_CONTROL_MAX];
	size_t rlen = strlen(reason);

	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	memcpy(p + 2, reason, rlen);
	put_frame(w, WS_OP_CLOSE, true, p, 2 + rlen);
}

/* ---- decoding into a transcript ---- */

struct transcript {
	char s[300000];
	size_t len;
	int err;
	uint16_t close_code;
	size_t events;
};

static void tr_add(struct transcript *t, const void *p, size_t n)
{
	cr_assert_lt(t->len + n, sizeof(t->s));
	memcpy(t->s + t->len, p, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void tr_control(struct transcript *t, const char *tag, const struct ws_event *ev)
{
	char head[32];

	if (ev->kind == WS_EV_CLOSE)
		snprintf(head, sizeof(head), "<CLOSE %u:", ev->close_code);
	else
		snprintf(head, sizeof(head), "<%s:", tag);
	tr_add(t, head, strlen(head));
	tr_add(t, ev->data, ev->len);
	tr_add(t, ">", 1);
}

/* Feeds buf[0..len) through d as a receive loop would; stops at the first error. */
static void feed(struct ws_decoder *d, uint8_t *buf, size_t len, struct transcript *t)
{
	size_t off = 0;

	while (off < len && !t->err) {
		struct ws_event ev;
		ssize_t n = ws_decode(d, buf + off, len - off, &ev);

		if (n < 0) {
			char e[32];

			t->err = (int)n;
			t->close_code = d->close_code;
			snprintf(e, sizeof(e), "<ERR %d>", (int)n);
			tr_add(t, e, strlen(e));
			return;
		}
		cr_assert_leq((size_t)n, len - off);
		off += (size_t)n;
		switch (ev.kind) {
		case WS_EV_NONE:
			cr_assert_eq(off, len, "NONE must mean all consumed");
			break;
		case WS_EV_DATA:
			t->events++;
			cr_assert(ev.data >= buf && ev.data + ev.len <= buf + len,
				  "data must point into the input");
			cr_assert(ev.len > 0 || ev.is_final, "empty span only at message end");
			tr_add(t, ev.data, ev.len);
			if (ev.is_final)
				tr_add(t, ev.is_text ? "<T>" : "<B>", 3);
			break;
		case WS_EV_PING:
			t->events++;
			tr_control(t, "PING", &ev);
			break;
		case WS_EV_PONG:
			t->events++;
			tr_control(t, "PONG", &ev);
			break;
		case WS_EV_CLOSE:
			t->events++;
			tr_control(t, "CLOSE", &ev);
			break;
		}
	}
}

/* Decodes the whole wire in one piece (guarded) with a message limit. */
static void decode_limit(const struct wire *w, uint64_t max_message, struct transcript *t)
{
	struct ws_decoder d;
	struct guard g = guard_copy(w->b, w->len);

	memset(t, 0, sizeof(*t));
	ws_decoder_init(&d, max_message);
	feed(&d, g.p, w->len, t);
	guard_free(&g);
}

static void decode(const struct wire *w, struct transcript *t)
{
	decode_limit(w, 0, t);
}

/* Decodes the wire cut in pieces at the given offsets, each piece in its own guarded page. */
static void decode_cuts(const struct wire *w, const size_t *cuts, size_t ncuts,
			struct transcript *t)
{
	struct ws_decoder d;
	size_t from = 0;

	memset(t, 0, sizeof(*t));
	ws_decoder_init(&d, 0);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : w->len;
		struct guard g = guard_copy(w->b + from, to - from);

		feed(&d, g.p, to - from, t);
		guard_free(&g);
		from = to;
	}
}

#define assert_transcript(t, lit) \
	cr_assert(((t)->len == sizeof(lit) - 1 && !memcmp((t)->s, (lit), sizeof(lit) - 1)), \
		  "got \"%s\", want \"%s\"", (t)->s, (lit))

static struct wire w;		/* big: kept off the stack */
static struct transcript t;
static struct transcript t2;

/* ================= decoding: single frames ================= */

/* RFC 6455 5.7: "A single-frame masked text message" containing "Hello". */
Test(ws_frame, decodes_rfc_example_masked_text_hello)
{
	static const uint8_t rfc[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
				       0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	w.len = 0;
	put_raw(&w, rfc, sizeof(rfc));
	decode(&w, &t);
	assert_transcript(&t, "Hello<T>");
}

/* RFC 6455 5.6: binary data is whatever the application says; no UTF-8 check. */
Test(ws_frame, decodes_binary_message_without_utf8_check)
{
	w.len = 0;
	PUT(&w, WS_OP_BINARY, true, "\xff\x00\xfe");
	decode(&w, &t);
	cr_assert_eq(t.err, 0);
	cr_assert_eq(t.len, 6);
	cr_assert(!memcmp(t.s, "\xff\x00\xfe<B>", 6));
}

/* RFC 6455 5.6: a data frame may carry no payload at all. */
Test(ws_frame, decodes_empty_text_message)
{
	w.len = 0;
	put_frame(&w, WS_OP_TEXT, true, "", 0);
	decode(&w, &t);
	assert_transcript(&t, "<T>");
}

/* RFC 6455 5.2: payload length 126 means a 16-bit length follows. */
Test(ws_frame, decodes_16_bit_payload_length)
{
	char p[300];

	memset(p, 'a', sizeof(p));
	w.len = 0;
	put_frame(&w, WS_OP_TEXT, true, p, sizeof(p));
	cr_assert_eq(w.b[1] & 0x7f, 126);
	decode(&w, &t);
	cr_assert_eq(t.err, 0);
	cr_assert_eq(t.len, sizeof(p) + 3);
}

/* RFC 6455 5.2: payload length 127 means a 64-bit length follows. */
Test(ws_frame, decodes_64_bit_payload_length)
{
	static char p[70000];

	memset(p, 'b', sizeof(p));
	w.len = 0;
	put_frame(&w, WS_OP_BINARY, true, p, sizeof(p));
	cr_assert_eq(w.b[1] & 0x7f, 127);
	decode(&w, &t);
	cr_assert_eq(t.err, 0);
	cr_assert_eq(t.len, sizeof(p) + 3);
	cr_assert_eq(t.s[sizeof(p) - 1], 'b');
}

/* RFC 6455 5.2 asks senders for the minimal length encoding; a receiver loses nothing by
 * accepting a longer one, and browsers never send it. */
Test(ws_frame, accepts_non_minimal_length_encoding)
{
	static const uint8_t frame[] = { 0x81, 0xfe, 0x00, 0x02, 0, 0, 0, 0, 'h', 'i' };

	w.len = 0;
	put_raw(&w, frame, sizeof(frame));
	decode(&w, &t);
	assert_transcript(&t, "hi<T>");
}

/* RFC 6455 5.3: the payload is unmasked in the caller's buffer, not copied. */
Test(ws_frame, unmasks_payload_in_place)
{
	struct ws_decoder d;
	struct ws_event ev;
	ssize_t n;

	w.len = 0;
	PUT(&w, WS_OP_TEXT, true, "in place");
	ws_decoder_init(&d, 0);
	n = ws_decode(&d, w.b, w.len, &ev);
	cr_assert_eq(n, (ssize_t)w.len);
	cr_assert_eq(ev.kind, WS_EV_DATA);
	cr_assert_eq(ev.data, w.b + 6);
	cr_assert(!memcmp(w.b + 6, "in place", 8));
}

/* ================= control frames ================= */

/* RFC 6455 5.5.2: a ping's payload comes back so the caller can pong it. */
Test(ws_frame, reports_ping_with_its_payload_for_the_pong)
{
	w.len = 0;
	PUT(&w, WS_OP_PING, true, "Hello");
	decode(&w, &t);
	assert_transcript(&t, "<PING:Hello>");
}

/* RFC 6455 5.5.2: a ping may be empty. */
Test(ws_frame, reports_empty_ping)
{
	w.len = 0;
	put_frame(&w, WS_OP_PING, true, "", 0);
	decode(&w, &t);
	assert_transcript(&t, "<PING:>");
}

/* RFC 6455 5.5.2: the largest ping, 125 bytes, arriving one byte at a time. */
Test(ws_frame, gathers_125_byte_ping_across_pieces)
{
	char p[WS_CONTROL_MAX];
	size_t cuts[WS_CONTROL_MAX + 6];

	memset(p, 'p', sizeof(p));
	w.len = 0;
	put_frame(&w, WS_OP_PING, true, p, sizeof(p));
	for (size_t i = 0; i + 1 < w.len; i++)
		cuts[i] = i + 1;
	decode_cuts(&w, cuts, w.len - 1, &t);
	cr_assert_eq(t.err, 0);
	cr_assert_eq(t.len, 6 + sizeof(p) + 1);
	cr_assert_eq(t.events, 1);
}

/* RFC 6455 5.5.3: a pong is reported and needs no answer. */
Test(ws_frame, reports_pong)
{
	w.len = 0;
	PUT(&w, WS_OP_PONG, true, "Hello");
	decode(&w, &t);
	assert_transcript(&t, "<PONG:Hello>");
}

/* RFC 6455 5.5.1: a close carries a 2-byte code, then a UTF-8 reason. */
Test(ws_frame, reports_close_with_code_and_reason)
{
	w.len = 0;
	put_close(&w, 1001, "going away");
	decode(&w, &t);
	assert_transcript(&t, "<CLOSE 1001:going away>");
}

/* RFC 6455 7.1.5: a close with no payload has status 1005 "no status received". */
Test(ws_frame, reports_close_without_code_as_1005)
{
	w.len = 0;
	put_frame(&w, WS_OP_CLOSE, true, "", 0);
	decode(&w, &t);
	assert_transcript(&t, "<CLOSE 1005:>");
}

/* RFC 6455 5.5.1: "the endpoint MUST NOT send any more data frames" after a close, so
 * whatever follows is ignored rather than delivered. */
Test(ws_frame, ignores_everything_after_close)
{
	w.len = 0;
	put_close(&w, 1000, "");
	PUT(&w, WS_OP_TEXT, true, "late");
	put_raw(&w, "\x00\x00garbage", 9);
	decode(&w, &t);
	assert_transcript(&t, "<CLOSE 1000:>");
}

/* ================= fragmentation (5.4) ================= */

/* RFC 6455 5.4: a text message in two fragments ("Hel", "lo" as in 5.7). */
Test(ws_frame, joins_text_message_in_two_fragments)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "Hel");
	PUT(&w, WS_OP_CONTINUATION, true, "lo");
	decode(&w, &t);
	assert_transcript(&t, "Hello<T>");
}

/* RFC 6455 5.4: fragments may be empty, the final one too. */
Test(ws_frame, accepts_empty_fragments)
{
	w.len = 0;
	put_frame(&w, WS_OP_BINARY, false, "", 0);
	PUT(&w, WS_OP_CONTINUATION, false, "ab");
	put_frame(&w, WS_OP_CONTINUATION, false, "", 0);
	put_frame(&w, WS_OP_CONTINUATION, true, "", 0);
	decode(&w, &t);
	assert_transcript(&t, "ab<B>");
}

/* RFC 6455 5.4: "Control frames MAY be injected in the middle of a fragmented message." */
Test(ws_frame, delivers_ping_between_fragments)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "frag1 ");
	PUT(&w, WS_OP_PING, true, "are you there");
	PUT(&w, WS_OP_PONG, true, "");
	PUT(&w, WS_OP_CONTINUATION, true, "frag2");
	decode(&w, &t);
	assert_transcript(&t, "frag1 <PING:are you there><PONG:>frag2<T>");
}

/* RFC 6455 5.4: a close may also arrive mid-message; the message is abandoned. */
Test(ws_frame, delivers_close_between_fragments)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "half");
	put_close(&w, 1000, "bye");
	PUT(&w, WS_OP_CONTINUATION, true, "never");
	decode(&w, &t);
	assert_transcript(&t, "half<CLOSE 1000:bye>");
}

/* RFC 6455 5.4: messages follow one another once FIN closed the previous one. */
Test(ws_frame, starts_next_message_after_fin)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "a");
	PUT(&w, WS_OP_CONTINUATION, true, "b");
	PUT(&w, WS_OP_BINARY, true, "c");
	PUT(&w, WS_OP_TEXT, true, "d");
	decode(&w, &t);
	assert_transcript(&t, "ab<T>c<B>d<T>");
}

/* RFC 6455 5.4: a continuation frame with no message open is a protocol error. */
Test(ws_frame, rejects_continuation_without_message_with_1002)
{
	w.len = 0;
	PUT(&w, WS_OP_CONTINUATION, true, "orphan");
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_UNEXPECTED_CONTINUATION);
	cr_assert_eq(t.close_code, 1002);
}

/* RFC 6455 5.4: a continuation after a finished message is an error too. */
Test(ws_frame, rejects_continuation_after_final_frame_with_1002)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, true, "done");
	PUT(&w, WS_OP_CONTINUATION, true, "more");
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_UNEXPECTED_CONTINUATION);
	cr_assert_eq(t.close_code, 1002);
	assert_transcript(&t, "done<T><ERR -7>");
}

/* RFC 6455 5.4: a new text frame while a message is open is a protocol error. */
Test(ws_frame, rejects_text_frame_mid_message_with_1002)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "a");
	PUT(&w, WS_OP_TEXT, true, "b");
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_EXPECTED_CONTINUATION);
	cr_assert_eq(t.close_code, 1002);
}

/* RFC 6455 5.4: the same for a binary frame. */
Test(ws_frame, rejects_binary_frame_mid_message_with_1002)
{
	w.len = 0;
	PUT(&w, WS_OP_BINARY, false, "a");
	PUT(&w, WS_OP_BINARY, false, "b");
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_EXPECTED_CONTINUATION);
	cr_assert_eq(t.close_code, 1002);
}

/* ================= header rules ================= */

/* RFC 6455 5.1: "The server MUST close the connection upon receiving a frame that is not
 * masked" - here the unmasked fragment example of 5.7. */
Test(ws_frame, rejects_unmasked_client_frame_with_1002)
{
	static const uint8_t rfc[] = { 0x01, 0x03, 0x48, 0x65, 0x6c };

	w.len = 0;
	put_raw(&w, rfc, sizeof(rfc));
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_UNMASKED);
	cr_assert_eq(t.close_code, 1002);
	assert_transcript(&t, "<ERR -1>");
}

/* RFC 6455 5.1: unmasked control frames are refused as well (5.7's unmasked ping). */
Test(ws_frame, rejects_unmasked_ping_with_1002)
{
	static const uint8_t rfc[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };

	w.len = 0;
	put_raw(&w, rfc, sizeof(rfc));
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_UNMASKED);
	cr_assert_eq(t.close_code, 1002);
}

/* RFC 6455 5.2: RSV1-3 "MUST be 0 unless an extension is negotiated"; none is. */
Test(ws_frame, rejects_each_reserved_bit_with_1002)
{
	static const uint8_t rsv[] = { 0x40, 0x20, 0x10 };

	for (size_t i = 0; i < sizeof(rsv); i++) {
		w.len = 0;
		PUT(&w, WS_OP_TEXT, true, "x");
		w.b[0] |= rsv[i];
		decode(&w, &t);
		cr_assert_eq(t.err, WS_E_RESERVED_BITS, "rsv %02x", rsv[i]);
		cr_assert_eq(t.close_code, 1002);
	}
}

/* RFC 6455 5.2: opcodes 3-7 and B-F are reserved; receiving one fails the connection. */
Test(ws_frame, rejects_every_reserved_opcode_with_1002)
{
	static const uint8_t ops[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };

	for (size_t i = 0; i < sizeof(ops); i++) {
		const uint8_t frame[] = { (uint8_t)(0x80 | ops[i]), 0x80, 1, 2, 3, 4 };

		w.len = 0;
		put_raw(&w, frame, sizeof(frame));
		decode(&w, &t);
		cr_assert_eq(t.err, WS_E_BAD_OPCODE, "opcode %x", ops[i]);
		cr_assert_eq(t.close_code, 1002);
	}
}

/* RFC 6455 5.2: every defined opcode decodes (0 inside a message). */
Test(ws_frame, accepts_every_defined_opcode)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "1");
	PUT(&w, WS_OP_CONTINUATION, true, "0");
	PUT(&w, WS_OP_BINARY, true, "2");
	PUT(&w, WS_OP_PING, true, "9");
	PUT(&w, WS_OP_PONG, true, "A");
	put_close(&w, 1000, "8");
	decode(&w, &t);
	assert_transcript(&t, "10<T>2<B><PING:9><PONG:A><CLOSE 1000:8>");
}

/* RFC 6455 5.5: "All control frames MUST have a payload length of 125 bytes or less." */
Test(ws_frame, rejects_control_frame_over_125_bytes_with_1002)
{
	static const uint8_t ops[] = { 0x88, 0x89, 0x8a };

	for (size_t i = 0; i < sizeof(ops); i++) {
		/* 7-bit length 126 and 127 both announce more than 125 bytes */
		const uint8_t f16[] = { ops[i], 0x80 | 126, 0, 126, 1, 2, 3, 4 };
		const uint8_t f64[] = { ops[i], 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 126, 1, 2, 3, 4 };

		w.len = 0;
		put_raw(&w, f16, sizeof(f16));
		decode(&w, &t);
		cr_assert_eq(t.err, WS_E_CONTROL_TOO_LONG, "op %02x", ops[i]);
		cr_assert_eq(t.close_code, 1002);
		w.len = 0;
		put_raw(&w, f64, sizeof(f64));
		decode(&w, &t);
		cr_assert_eq(t.err, WS_E_CONTROL_TOO_LONG, "op %02x", ops[i]);
	}
}

/* RFC 6455 5.5: "All control frames ... MUST NOT be fragmented." */
Test(ws_frame, rejects_fragmented_control_frame_with_1002)
{
	static const uint8_t ops[] = { 0x08, 0x09, 0x0a };

	for (size_t i = 0; i < sizeof(ops); i++) {
		const uint8_t frame[] = { ops[i], 0x80, 1, 2, 3, 4 };

		w.len = 0;
		put_raw(&w, frame, sizeof(frame));
		decode(&w, &t);
		cr_assert_eq(t.err, WS_E_CONTROL_FRAGMENTED, "op %02x", ops[i]);
		cr_assert_eq(t.close_code, 1002);
	}
}

/* RFC 6455 5.2: in the 64-bit length "the most significant bit MUST be 0". */
Test(ws_frame, rejects_64_bit_length_with_high_bit_set_with_1002)
{
	static const uint8_t frame[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4 };

	w.len = 0;
	put_raw(&w, frame, sizeof(frame));
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_BAD_LENGTH);
	cr_assert_eq(t.close_code, 1002);
}

/* RFC 6455 5.2: the largest legal length passes the header checks (no limit set). */
Test(ws_frame, accepts_largest_legal_64_bit_length_header)
{
	static const uint8_t frame[] = { 0x82, 0xff, 0x7f, 0xff, 0xff, 0xff,
					 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 0xaa };
	w.len = 0;
	put_raw(&w, frame, sizeof(frame));
	decode(&w, &t);
	cr_assert_eq(t.err, 0);
	cr_assert_eq(t.len, 1);
}

/* ================= message size limit (10.4, close code 1009 in 7.4.1) ================= */

/* RFC 6455 7.4.1: 1009 "a message that is too big for it to process". */
Test(ws_frame, rejects_message_over_limit_with_1009)
{
	char p[101];

	memset(p, 'x', sizeof(p));
	w.len = 0;
	put_frame(&w, WS_OP_BINARY, true, p, sizeof(p));
	decode_limit(&w, 100, &t);
	cr_assert_eq(t.err, WS_E_TOO_BIG);
	cr_assert_eq(t.close_code, 1009);
	cr_assert_eq(t.events, 0, "nothing of an oversized frame is delivered");
}

/* RFC 6455 10.4: the limit is per message, over all of its fragments. */
Test(ws_frame, rejects_fragmented_message_over_limit_with_1009)
{
	char p[40];

	memset(p, 'x', sizeof(p));
	w.len = 0;
	put_frame(&w, WS_OP_TEXT, false, p, sizeof(p));
	put_frame(&w, WS_OP_CONTINUATION, false, p, sizeof(p));
	put_frame(&w, WS_OP_CONTINUATION, true, p, 21);
	decode_limit(&w, 100, &t);
	cr_assert_eq(t.err, WS_E_TOO_BIG);
	cr_assert_eq(t.close_code, 1009);
}

/* RFC 6455 10.4: a message of exactly the limit is fine; the next message starts at 0. */
Test(ws_frame, accepts_messages_exactly_at_limit)
{
	char p[50];

	memset(p, 'y', sizeof(p));
	w.len = 0;
	put_frame(&w, WS_OP_TEXT, false, p, sizeof(p));
	put_frame(&w, WS_OP_CONTINUATION, true, p, sizeof(p));
	put_frame(&w, WS_OP_BINARY, false, p, sizeof(p));
	put_frame(&w, WS_OP_CONTINUATION, true, p, sizeof(p));
	decode_limit(&w, 100, &t);
	cr_assert_eq(t.err, 0);
	cr_assert_eq(t.len, 200 + 6);
}

/* RFC 6455 5.5: control frames do not count toward the open message's size. */
Test(ws_frame, control_frames_do_not_count_toward_message_limit)
{
	char p[100];

	memset(p, 'z', sizeof(p));
	w.len = 0;
	put_frame(&w, WS_OP_TEXT, false, p, 60);
	put_frame(&w, WS_OP_PING, true, p, 100);
	put_frame(&w, WS_OP_CONTINUATION, true, p, 40);
	decode_limit(&w, 100, &t);
	cr_assert_eq(t.err, 0);
}

/* The size check uses the header alone: an oversized frame fails before its payload. */
Test(ws_frame, refuses_oversized_frame_from_its_header_alone)
{
	static const uint8_t hdr[] = { 0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4 };

	w.len = 0;
	put_raw(&w, hdr, sizeof(hdr));
	decode_limit(&w, 1 << 20, &t);
	cr_assert_eq(t.err, WS_E_TOO_BIG);
}

/* ================= UTF-8 of text (8.1, close code 1007) ================= */

/* RFC 6455 8.1: invalid UTF-8 in a text message fails the connection with 1007. */
Test(ws_frame, rejects_invalid_utf8_text_with_1007)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, true, "ab\xc0\xaf");
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_BAD_UTF8);
	cr_assert_eq(t.close_code, 1007);
}

/* RFC 6455 8.1: the message must be whole characters at FIN. */
Test(ws_frame, rejects_text_message_ending_mid_character_with_1007)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "ok ");
	PUT(&w, WS_OP_CONTINUATION, true, "\xe2\x82");
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_BAD_UTF8);
	cr_assert_eq(t.close_code, 1007);
	assert_transcript(&t, "ok <ERR -12>");
}

/* RFC 6455 8.1: a character may be split between fragments (Autobahn 6.2.3). */
Test(ws_frame, accepts_character_split_across_fragments)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "\xce\xba\xe1");
	PUT(&w, WS_OP_PING, true, "");
	PUT(&w, WS_OP_CONTINUATION, false, "\xbd");
	PUT(&w, WS_OP_CONTINUATION, true, "\xb9\xcf\x83\xce\xbc\xce\xb5");
	decode(&w, &t);
	assert_transcript(&t, "\xce\xba\xe1<PING:>\xbd\xb9\xcf\x83\xce\xbc\xce\xb5<T>");
}

/* RFC 6455 8.1 and Autobahn 6.4 "fail fast": a fragment that cannot be UTF-8 fails at
 * once, before the message's FIN arrives. */
Test(ws_frame, fails_fast_on_invalid_utf8_before_fin)
{
	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80");
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_BAD_UTF8);
	cr_assert_eq(t.close_code, 1007);
}

/* RFC 6455 5.5.1: a close reason is UTF-8 too; invalid → 1007. */
Test(ws_frame, rejects_close_reason_not_utf8_with_1007)
{
	w.len = 0;
	put_close(&w, 1000, "\xed\xa0\x80");
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_BAD_CLOSE_REASON);
	cr_assert_eq(t.close_code, 1007);
}

/* ================= close codes (5.5.1, 7.4) ================= */

/* RFC 6455 5.5.1: a body, if present, starts with a 2-byte code; one byte is malformed. */
Test(ws_frame, rejects_close_with_one_byte_payload_with_1002)
{
	w.len = 0;
	PUT(&w, WS_OP_CLOSE, true, "\x03");
	decode(&w, &t);
	cr_assert_eq(t.err, WS_E_BAD_CLOSE_PAYLOAD);
	cr_assert_eq(t.close_code, 1002);
}

/* RFC 6455 7.4.1/7.4.2: codes below 1000, 1004-1006, 1015, unassigned 1016-2999 and
 * anything from 5000 must not be sent (Autobahn 7.9). */
Test(ws_frame, rejects_each_invalid_close_code_with_1002)
{
	static const uint16_t bad[] = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016,
					1100, 2000, 2999, 5000, 65535 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		w.len = 0;
		put_close(&w, bad[i], "");
		decode(&w, &t);
		cr_assert_eq(t.err, WS_E_BAD_CLOSE_CODE, "code %u", bad[i]);
		cr_assert_eq(t.close_code, 1002);
	}
}

/* RFC 6455 7.4.1/7.4.2: the defined codes and the 3000-4999 ranges (Autobahn 7.7). */
Test(ws_frame, accepts_each_valid_close_code)
{
	static const uint16_t good[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
					 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999 };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char want[32];

		w.len = 0;
		put_close(&w, good[i], "r");
		decode(&w, &t);
		snprintf(want, sizeof(want), "<CLOSE %u:r>", good[i]);
		cr_assert_str_eq(t.s, want);
	}
}

/* ================= masking (5.3) ================= */

/* RFC 6455 5.3: octet i of the payload is XORed with octet i mod 4 of the key; the wide
 * loop must agree with that byte rule at every length and starting phase. */
Test(ws_frame, mask_matches_bytewise_rule_at_every_length_and_phase)
{
	uint8_t a[80];
	uint8_t b[80];
	const uint8_t key[4] = { 0x01, 0x80, 0x7f, 0xfe };

	for (unsigned off = 0; off < 8; off++) {
		for (size_t len = 0; len <= sizeof(a); len++) {
			unsigned end;

			for (size_t i = 0; i < len; i++)
				a[i] = b[i] = (uint8_t)(i * 7 + len);
			end = ws_mask_apply(a, len, key, off);
			for (size_t i = 0; i < len; i++)
				b[i] ^= key[(off + i) % 4];
			cr_assert(!memcmp(a, b, len), "off %u len %zu", off, len);
			cr_assert_eq(end, (off + len) % 4);
		}
	}
}

/* RFC 6455 5.3: unmasking in pieces resumes at the right key byte. */
Test(ws_frame, mask_resumes_at_the_right_key_byte_across_pieces)
{
	uint8_t a[37];
	uint8_t b[37];

	for (size_t cut = 0; cut <= sizeof(a); cut++) {
		unsigned off;

		for (size_t i = 0; i < sizeof(a); i++)
			a[i] = b[i] = (uint8_t)i;
		ws_mask_apply(a, sizeof(a), rfc_mask, 0);
		off = ws_mask_apply(b, cut, rfc_mask, 0);
		ws_mask_apply(b + cut, sizeof(b) - cut, rfc_mask, off);
		cr_assert(!memcmp(a, b, sizeof(a)), "cut %zu", cut);
	}
}

/* ================= split invariance ================= */

/* Builds a stream that uses every feature: fragments, controls between them, a character
 * split across fragments, each length encoding, and a final close. */
static void build_busy_stream(struct wire *bw)
{
	static char big[70000];
	char mid[300];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	memset(mid, 'm', sizeof(mid));
	bw->len = 0;
	PUT(bw, WS_OP_TEXT, true, "SEND\ndestination:/queue/a\n\nhi\0");
	PUT(bw, WS_OP_TEXT, false, "CONNECT\nhost:\xce");
	PUT(bw, WS_OP_PING, true, "ping!");
	put_frame(bw, WS_OP_CONTINUATION, false, "", 0);
	PUT(bw, WS_OP_CONTINUATION, true, "\xba\n\n\0");
	put_frame(bw, WS_OP_BINARY, true, mid, sizeof(mid));
	PUT(bw, WS_OP_PONG, true, "");
	put_frame(bw, WS_OP_BINARY, false, big, sizeof(big));
	put_frame(bw, WS_OP_CONTINUATION, true, "", 0);
	put_close(bw, 1000, "done");
}

/* The decoder gives the same bytes and events wherever a read splits the stream. */
Test(ws_frame, same_events_at_every_split_point)
{
	build_busy_stream(&w);
	decode(&w, &t2);
	cr_assert_eq(t2.err, 0);
	/* every cut within the small frames, then a sample through the big one */
	for (size_t cut = 1; cut < w.len; cut += cut < 600 ? 1 : 997) {
		decode_cuts(&w, &cut, 1, &t);
		cr_assert_eq(t.len, t2.len, "cut at %zu", cut);
		cr_assert(!memcmp(t.s, t2.s, t.len), "cut at %zu", cut);
	}
}

/* Reads of one byte each: every header byte, mask byte and payload byte on its own. */
Test(ws_frame, same_events_in_one_byte_reads)
{
	static size_t cuts[sizeof(w.b)];

	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "f\xc3");
	PUT(&w, WS_OP_PING, true, "xyz");
	PUT(&w, WS_OP_CONTINUATION, true, "\xa9!");
	put_frame(&w, WS_OP_TEXT, true, "", 0);
	put_close(&w, 4000, "app");
	for (size_t i = 0; i + 1 < w.len; i++)
		cuts[i] = i + 1;
	decode_cuts(&w, cuts, w.len - 1, &t);
	assert_transcript(&t, "f\xc3<PING:xyz>\xa9!<T><T><CLOSE 4000:app>");
}

/* An error is found in the same frame and with the same code however the input is cut.
 * Only the failing frame's valid prefix may differ: a cut inside it lets that prefix out
 * first (the design: STOMP may see it, the connection closes with 1007 anyway). */
Test(ws_frame, same_error_at_every_split_point)
{
	static const char before[] = "abc<PING:p>";

	w.len = 0;
	PUT(&w, WS_OP_TEXT, false, "abc");
	PUT(&w, WS_OP_PING, true, "p");
	PUT(&w, WS_OP_CONTINUATION, true, "\xed\xa0\x80");
	decode(&w, &t2);
	assert_transcript(&t2, "abc<PING:p><ERR -12>");
	for (size_t cut = 1; cut < w.len; cut++) {
		decode_cuts(&w, &cut, 1, &t);
		cr_assert_eq(t.err, WS_E_BAD_UTF8, "cut at %zu", cut);
		cr_assert(!strncmp(t.s, before, sizeof(before) - 1), "cut at %zu", cut);
		cr_assert(t.len <= t2.len + 1, "at most one byte (\\xed) more, cut at %zu", cut);
	}
}

/* ================= failure state ================= */

/* After an error the decoder keeps returning it: no half-valid state can be resumed. */
Test(ws_frame, keeps_failing_after_an_error)
{
	struct ws_decoder d;
	struct ws_event ev;
	uint8_t good[16];
	ssize_t n;

	w.len = 0;
	PUT(&w, WS_OP_CONTINUATION, true, "x");
	ws_decoder_init(&d, 0);
	cr_assert_eq(ws_decode(&d, w.b, w.len, &ev), WS_E_UNEXPECTED_CONTINUATION);
	n = ws_encode_header(good, sizeof(good), WS_OP_PING, true, 0, rfc_mask);
	cr_assert_eq(ws_decode(&d, good, (size_t)n, &ev), WS_E_UNEXPECTED_CONTINUATION);
	cr_assert_eq(d.close_code, 1002);
	cr_assert_str_eq(d.reason, "continuation frame without a message");
}

/* Each error names a close code and a reason that fits a close frame. */
Test(ws_frame, every_error_has_a_close_code_and_short_reason)
{
	for (int e = WS_E_UNMASKED; e >= WS_E_TOO_BIG; e--) {
		uint16_t code = ws_close_code_of(e);

		cr_assert(code == 1002 || code == 1007 || code == 1009, "err %d", e);
		cr_assert_gt(strlen(ws_strerror(e)), 0, "err %d", e);
		cr_assert_leq(strlen(ws_strerror(e)), WS_CLOSE_REASON_MAX, "err %d", e);
	}
	cr_assert_eq(ws_close_code_of(0), 1011);
	cr_assert_eq(ws_close_code_of(-99), 1011);
	cr_assert_str_eq(ws_strerror(-99), "");
}

/* An empty read reports nothing, whatever state the decoder is in. */
Test(ws_frame, empty_read_reports_nothing)
{
	struct ws_decoder d;
	struct ws_event ev;

	ws_decoder_init(&d, 0);
	cr_assert_eq(ws_decode(&d, NULL, 0, &ev), 0);
	cr_assert_eq(ev.kind, WS_EV_NONE);
}

/* ================= encoder ================= */

/* RFC 6455 5.2: payloads up to 125 bytes take a 2-byte header. */
Test(ws_frame, encodes_7_bit_length_in_two_bytes)
{
	uint8_t h[WS_HEADER_MAX];

	cr_assert_eq(ws_encode_header(h, sizeof(h), WS_OP_TEXT, true, 5, NULL), 2);
	cr_assert_eq(h[0], 0x81);
	cr_assert_eq(h[1], 0x05);
	cr_assert_eq(ws_encode_header(h, sizeof(h), WS_OP_BINARY, false, 125, NULL), 2);
	cr_assert_eq(h[0], 0x02);
	cr_assert_eq(h[1], 125);
}

/* RFC 6455 5.7: "256 bytes binary message in a single unmasked frame". */
Test(ws_frame, encodes_16_bit_length_as_rfc_256_byte_example)
{
	static const uint8_t rfc[] = { 0x82, 0x7e, 0x01, 0x00 };
	uint8_t h[WS_HEADER_MAX];

	cr_assert_eq(ws_encode_header(h, sizeof(h), WS_OP_BINARY, true, 256, NULL), 4);
	cr_assert(!memcmp(h, rfc, sizeof(rfc)));
}

/* RFC 6455 5.7: "64KiB binary message in a single unmasked frame". */
Test(ws_frame, encodes_64_bit_length_as_rfc_64k_example)
{
	static const uint8_t rfc[] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 };
	uint8_t h[WS_HEADER_MAX];

	cr_assert_eq(ws_encode_header(h, sizeof(h), WS_OP_BINARY, true, 65536, NULL), 10);
	cr_assert(!memcmp(h, rfc, sizeof(rfc)));
}

/* RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length". */
Test(ws_frame, header_length_changes_exactly_at_126_and_65536)
{
	cr_assert_eq(ws_header_len(0, false), 2);
	cr_assert_eq(ws_header_len(125, false), 2);
	cr_assert_eq(ws_header_len(126, false), 4);
	cr_assert_eq(ws_header_len(65535, false), 4);
	cr_assert_eq(ws_header_len(65536, false), 10);
	cr_assert_eq(ws_header_len(125, true), 6);
	cr_assert_eq(ws_header_len(65536, true), 14);
}

/* RFC 6455 5.7: "Unmasked Ping request and masked Ping response" - our ping and pong. */
Test(ws_frame, encodes_ping_as_rfc_example)
{
	static const uint8_t rfc[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
	uint8_t out[2 + WS_CONTROL_MAX];

	cr_assert_eq(ws_encode_ping(out, sizeof(out), (const uint8_t *)"Hello", 5), 7);
	cr_assert(!memcmp(out, rfc, sizeof(rfc)));
}

/* RFC 6455 5.5.3: a pong carries the ping's application data. */
Test(ws_frame, encodes_pong_with_the_ping_payload)
{
	uint8_t out[2 + WS_CONTROL_MAX];

	cr_assert_eq(ws_encode_pong(out, sizeof(out), (const uint8_t *)"Hello", 5), 7);
	cr_assert(!memcmp(out, "\x8a\x05Hello", 7));
	cr_assert_eq(ws_encode_pong(out, sizeof(out), NULL, 0), 2);
	cr_assert(!memcmp(out, "\x8a\x00", 2));
}

/* RFC 6455 5.5.1: close = code in network order, then the reason. */
Test(ws_frame, encodes_close_with_code_and_reason)
{
	uint8_t out[2 + WS_CONTROL_MAX];

	cr_assert_eq(ws_encode_close(out, sizeof(out), 1002, "bad", 3), 7);
	cr_assert(!memcmp(out, "\x88\x05\x03\xea" "bad", 7));
}

/* RFC 6455 5.5.1: a close may have no body (our reply to a close without a code). */
Test(ws_frame, encodes_empty_close_for_code_zero)
{
	uint8_t out[2];

	cr_assert_eq(ws_encode_close(out, sizeof(out), 0, "ignored", 7), 2);
	cr_assert(!memcmp(out, "\x88\x00", 2));
}

/* RFC 6455 5.5: the reason is cut to fit 125 bytes, never inside a character. */
Test(ws_frame, cuts_long_close_reason_at_a_character_boundary)
{
	char reason[200];
	uint8_t out[2 + WS_CONTROL_MAX];
	ssize_t n;

	memset(reason, 'r', 122);
	memcpy(reason + 122, "\xe2\x82\xac", 3);	/* '€' straddles byte 123 */
	n = ws_encode_close(out, sizeof(out), 1000, reason, 125);
	cr_assert_eq(n, 2 + 2 + 122);
	cr_assert_eq(out[1], 124);
	cr_assert(utf8_is_valid(out + 4, (size_t)n - 4));
}

/* RFC 6455 7.4.1: 1005, 1006 and 1015 are never sent; the encoder refuses them. */
Test(ws_frame, encoder_refuses_close_codes_that_never_go_on_the_wire)
{
	uint8_t out[16];

	cr_assert_eq(ws_encode_close(out, sizeof(out), 1005, NULL, 0), -EINVAL);
	cr_assert_eq(ws_encode_close(out, sizeof(out), 1006, NULL, 0), -EINVAL);
	cr_assert_eq(ws_encode_close(out, sizeof(out), 1015, NULL, 0), -EINVAL);
}

/* RFC 6455 5.5: the encoder will not write an illegal control frame. */
Test(ws_frame, encoder_refuses_fragmented_or_long_control_frames)
{
	uint8_t out[200];
	uint8_t p[126] = { 0 };

	cr_assert_eq(ws_encode_header(out, sizeof(out), WS_OP_PING, false, 1, NULL), -EINVAL);
	cr_assert_eq(ws_encode_header(out, sizeof(out), WS_OP_CLOSE, true, 126, NULL), -EINVAL);
	cr_assert_eq(ws_encode_ping(out, sizeof(out), p, sizeof(p)), -EINVAL);
	cr_assert_eq(ws_encode_header(out, sizeof(out), (enum ws_opcode)3, true, 1, NULL),
		     -EINVAL);
	cr_assert_eq(ws_encode_header(out, sizeof(out), WS_OP_BINARY, true, 1ull << 63, NULL),
		     -EINVAL);
}

/* Every encoder says -ENOSPC rather than write past the caller's buffer. */
Test(ws_frame, encoder_refuses_short_buffer_with_enospc)
{
	uint8_t out[16];

	cr_assert_eq(ws_encode_header(out, 1, WS_OP_TEXT, true, 1, NULL), -ENOSPC);
	cr_assert_eq(ws_encode_header(out, 3, WS_OP_TEXT, true, 200, NULL), -ENOSPC);
	cr_assert_eq(ws_encode_header(out, 9, WS_OP_TEXT, true, 70000, NULL), -ENOSPC);
	cr_assert_eq(ws_encode_header(out, 7, WS_OP_TEXT, true, 200, rfc_mask), -ENOSPC);
	cr_assert_eq(ws_encode_close(out, 5, 1000, "abcd", 4), -ENOSPC);
	cr_assert_eq(ws_encode_pong(out, 6, (const uint8_t *)"Hello", 5), -ENOSPC);
}

/* Encoding a masked frame and decoding it gives back the payload, at each length
 * boundary and for each data opcode. */
Test(ws_frame, decode_of_encoded_frame_returns_the_payload)
{
	static const size_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536, 65537 };
	static char p[65537];

	for (size_t i = 0; i < sizeof(p); i++)
		p[i] = (char)('A' + i % 26);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int op = WS_OP_TEXT; op <= WS_OP_BINARY; op++) {
			w.len = 0;
			put_frame(&w, (enum ws_opcode)op, true, p, lens[i]);
			cr_assert_eq(w.len, ws_header_len(lens[i], true) + lens[i]);
			decode(&w, &t);
			cr_assert_eq(t.err, 0);
			cr_assert_eq(t.len, lens[i] + 3, "len %zu", lens[i]);
			cr_assert(!memcmp(t.s, p, lens[i]), "len %zu", lens[i]);
		}
	}
}
