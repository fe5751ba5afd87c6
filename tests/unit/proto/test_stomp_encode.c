/*
 * tests/unit/proto/test_stomp_encode.c - the STOMP encoder: exact bytes for each writer,
 * "Value Encoding" per version, -ENOSPC at every short capacity (output flush against a
 * PROT_NONE page, so a one-byte overrun crashes), and round trips through the parser.
 */
#include "proto/stomp_encode.h"
#include "proto/stomp_parse.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#define VIEW(lit) ((struct stomp_view){ (lit), sizeof(lit) - 1 })
#define HEADER(n, v) { VIEW(n), VIEW(v) }
#define LEN(lit) (sizeof(lit) - 1)

static char out[8192];

static bool out_is(ssize_t n, const char *expect, size_t len)
{
	return n == (ssize_t)len && memcmp(out, expect, len) == 0;
}

#define OUT_IS(n, lit) out_is((n), (lit), LEN(lit))

/* ---- Value Encoding ---- */

Test(stomp_encode, v10_copies_values_verbatim)
{
	ssize_t n = stomp_escape(STOMP_V10, "a:b\\c\r", 6, out, sizeof(out));

	cr_assert(OUT_IS(n, "a:b\\c\r"));
}

Test(stomp_encode, v11_escapes_lf_colon_backslash_but_not_cr)
{
	ssize_t n = stomp_escape(STOMP_V11, "a\nb:c\\d\re", 9, out, sizeof(out));

	cr_assert(OUT_IS(n, "a\\nb\\cc\\\\d\re"));
}

Test(stomp_encode, v12_escapes_cr_too)
{
	ssize_t n = stomp_escape(STOMP_V12, "a\nb:c\\d\re", 9, out, sizeof(out));

	cr_assert(OUT_IS(n, "a\\nb\\cc\\\\d\\re"));
}

Test(stomp_encode, escape_of_nothing_is_nothing)
{
	cr_assert_eq(stomp_escape(STOMP_V12, NULL, 0, NULL, 0), 0);
}

Test(stomp_encode, escaping_at_most_doubles_the_length)
{
	ssize_t n = stomp_escape(STOMP_V12, "::::", 4, out, 8);

	cr_assert(OUT_IS(n, "\\c\\c\\c\\c"));
}

Test(stomp_encode, needs_escape_detects_each_special_byte)
{
	cr_assert_not(stomp_needs_escape("/queue/a-b_c.d", 14));
	cr_assert(stomp_needs_escape("a\nb", 3));
	cr_assert(stomp_needs_escape("a\rb", 3));
	cr_assert(stomp_needs_escape("a:b", 3));
	cr_assert(stomp_needs_escape("a\\b", 3));
	cr_assert_not(stomp_needs_escape(NULL, 0));
}

/* ---- Whole frames ("STOMP Frames") ---- */

Test(stomp_encode, writes_a_receipt_frame)
{
	struct stomp_header h[] = { HEADER("receipt-id", "77") };
	ssize_t n = stomp_encode_frame(out, sizeof(out), STOMP_V12, STOMP_CMD_RECEIPT, h, 1,
				       NULL, 0, false);

	cr_assert(OUT_IS(n, "RECEIPT\nreceipt-id:77\n\n\0"));
}

Test(stomp_encode, writes_an_error_frame_with_escaped_message_and_content_length)
{
	struct stomp_header h[] = { HEADER("message", "bad header: x\ny") };
	ssize_t n = stomp_encode_frame(out, sizeof(out), STOMP_V12, STOMP_CMD_ERROR, h, 1,
				       "details", 7, true);

	cr_assert(OUT_IS(n, "ERROR\nmessage:bad header\\c x\\ny\ncontent-length:7\n\ndetails\0"));
}

/* "Value Encoding": CONNECTED is sent before the client knows the version: never escaped. */
Test(stomp_encode, never_escapes_connected_headers)
{
	struct stomp_header h[] = { HEADER("server", "herald/0.1:x") };
	ssize_t n = stomp_encode_frame(out, sizeof(out), STOMP_V12, STOMP_CMD_CONNECTED, h, 1,
				       NULL, 0, false);

	cr_assert(OUT_IS(n, "CONNECTED\nserver:herald/0.1:x\n\n\0"));
}

Test(stomp_encode, never_escapes_connect_or_stomp_headers)
{
	struct stomp_header h[] = { HEADER("login", "a:b") };
	ssize_t n = stomp_encode_frame(out, sizeof(out), STOMP_V12, STOMP_CMD_CONNECT, h, 1,
				       NULL, 0, false);

	cr_assert(OUT_IS(n, "CONNECT\nlogin:a:b\n\n\0"));
	n = stomp_encode_frame(out, sizeof(out), STOMP_V12, STOMP_CMD_STOMP, h, 1, NULL, 0, false);
	cr_assert(OUT_IS(n, "STOMP\nlogin:a:b\n\n\0"));
}

Test(stomp_encode, writes_content_length_zero_for_an_empty_body)
{
	ssize_t n = stomp_encode_frame(out, sizeof(out), STOMP_V12, STOMP_CMD_SEND, NULL, 0,
				       NULL, 0, true);

	cr_assert(OUT_IS(n, "SEND\ncontent-length:0\n\n\0"));
}

Test(stomp_encode, rejects_the_none_command)
{
	cr_assert_eq(stomp_encode_frame(out, sizeof(out), STOMP_V12, STOMP_CMD_NONE, NULL, 0,
					NULL, 0, false),
		     -EINVAL);
	cr_assert_eq(stomp_encode_frame(out, sizeof(out), STOMP_V12, STOMP_CMD_COUNT, NULL, 0,
					NULL, 0, false),
		     -EINVAL);
}

/* ---- MESSAGE head and shared tail ---- */

Test(stomp_encode, writes_a_message_head)
{
	ssize_t n = stomp_encode_message_head(out, sizeof(out), STOMP_V12, VIEW("sub-0"),
					      VIEW("m-12"), VIEW("a-12"), true);

	cr_assert(OUT_IS(n, "MESSAGE\nsubscription:sub-0\nmessage-id:m-12\nack:a-12\n"
			    "redelivered:true\n"));
}

Test(stomp_encode, message_head_omits_empty_ack_and_redelivered)
{
	ssize_t n = stomp_encode_message_head(out, sizeof(out), STOMP_V12, VIEW("0"), VIEW("1"),
					      VIEW(""), false);

	cr_assert(OUT_IS(n, "MESSAGE\nsubscription:0\nmessage-id:1\n"));
}

/* A queue delivery says redelivered:false rather than nothing (RabbitMQ, ActiveMQ, Artemis) */
Test(stomp_encode, message_head_says_redelivered_false_when_asked)
{
	ssize_t n = stomp_encode_message_head(out, sizeof(out), STOMP_V12, VIEW("0"), VIEW("1"),
					      VIEW(""), STOMP_REDELIVERED_FALSE);

	cr_assert(OUT_IS(n, "MESSAGE\nsubscription:0\nmessage-id:1\nredelivered:false\n"));
}

Test(stomp_encode, message_head_escapes_values_per_version)
{
	ssize_t n = stomp_encode_message_head(out, sizeof(out), STOMP_V11, VIEW("a:b"),
					      VIEW("c\nd"), VIEW(""), false);

	cr_assert(OUT_IS(n, "MESSAGE\nsubscription:a\\cb\nmessage-id:c\\nd\n"));
	n = stomp_encode_message_head(out, sizeof(out), STOMP_V10, VIEW("a:b"), VIEW("c"),
				      VIEW(""), false);
	cr_assert(OUT_IS(n, "MESSAGE\nsubscription:a:b\nmessage-id:c\n"));
}

/* STOMP_MESSAGE_HEAD_MAX holds even when every value byte needs escaping. */
Test(stomp_encode, message_head_fits_its_documented_bound)
{
	char ids[3][40];
	ssize_t n;

	memset(ids, ':', sizeof(ids));
	n = stomp_encode_message_head(out, sizeof(out), STOMP_V12,
				      (struct stomp_view){ ids[0], 40 },
				      (struct stomp_view){ ids[1], 40 },
				      (struct stomp_view){ ids[2], 40 }, true);
	cr_assert_gt(n, 0);
	cr_assert_leq(n, STOMP_MESSAGE_HEAD_MAX(40, 40, 40));
}

Test(stomp_encode, writes_a_message_tail)
{
	struct stomp_header h[] = { HEADER("content-type", "text/plain"), HEADER("k", "a:b") };
	ssize_t n = stomp_encode_message_tail(out, sizeof(out), STOMP_V12, VIEW("/queue/a"), h, 2,
					      "hello", 5);

	cr_assert(OUT_IS(n, "destination:/queue/a\ncontent-type:text/plain\nk:a\\cb\n"
			    "content-length:5\n\nhello\0"));
}

Test(stomp_encode, message_iov_points_at_head_then_tail)
{
	struct iovec iov[2];

	cr_assert_eq(stomp_message_iov(iov, "head", 4, "tail", 5), 2);
	cr_assert_str_eq(iov[0].iov_base, "head");
	cr_assert_eq(iov[0].iov_len, 4);
	cr_assert_str_eq(iov[1].iov_base, "tail");
	cr_assert_eq(iov[1].iov_len, 5);
}

/* ---- Short output: -ENOSPC, never a byte past cap ---- */

typedef ssize_t (*encode_fn)(char *out, size_t cap);

static ssize_t encode_error(char *o, size_t cap)
{
	struct stomp_header h[] = { HEADER("message", "a:b\nc"), HEADER("x", "\\") };

	return stomp_encode_frame(o, cap, STOMP_V12, STOMP_CMD_ERROR, h, 2, "body", 4, true);
}

static ssize_t encode_head(char *o, size_t cap)
{
	return stomp_encode_message_head(o, cap, STOMP_V12, VIEW("s:1"), VIEW("m\n2"),
					 VIEW("a\\3"), true);
}

static ssize_t encode_tail(char *o, size_t cap)
{
	struct stomp_header h[] = { HEADER("k\r", "v:") };

	return stomp_encode_message_tail(o, cap, STOMP_V12, VIEW("/q:x"), h, 1, "12345", 5);
}

static ssize_t encode_escape(char *o, size_t cap)
{
	return stomp_escape(STOMP_V12, "a:b\\c\nd\re", 9, o, cap);
}

static void assert_enospc_below_size(encode_fn fn, const char *name)
{
	ssize_t full = fn(out, sizeof(out));
	struct guarded_buf g;

	cr_assert_gt(full, 0, "%s", name);
	for (size_t cap = 0; cap < (size_t)full; cap++) {
		guarded_buf_init(&g, NULL, cap);
		cr_assert_eq(fn(g.ptr, cap), -ENOSPC, "%s with cap %zu", name, cap);
		guarded_buf_fini(&g);
	}
	guarded_buf_init(&g, NULL, (size_t)full);
	cr_assert_eq(fn(g.ptr, (size_t)full), full, "%s with exact cap", name);
	cr_assert_arr_eq(g.ptr, out, (size_t)full, "%s", name);
	guarded_buf_fini(&g);
}

Test(stomp_encode, reports_enospc_at_every_short_capacity)
{
	assert_enospc_below_size(encode_error, "frame");
	assert_enospc_below_size(encode_head, "message head");
	assert_enospc_below_size(encode_tail, "message tail");
	assert_enospc_below_size(encode_escape, "escape");
}

Test(stomp_encode, reports_enospc_for_a_null_buffer)
{
	cr_assert_eq(encode_error(NULL, 0), -ENOSPC);
	cr_assert_eq(encode_head(NULL, 0), -ENOSPC);
	cr_assert_eq(encode_tail(NULL, 0), -ENOSPC);
	cr_assert_eq(encode_escape(NULL, 0), -ENOSPC);
}

/* ---- Round trips: encode, then parse ---- */

static struct stomp_parser parser;
static struct stomp_frame frame;
static char scratch[8192];

/* Parses out[0..n) (copied flush against a guard page, which stays mapped) as version v. */
static ssize_t parse_out(enum stomp_version v, ssize_t n)
{
	static struct guarded_buf in;

	if (in.map)
		guarded_buf_fini(&in);
	guarded_buf_init(&in, out, (size_t)n);
	stomp_parser_init(&parser, NULL, scratch, sizeof(scratch));
	stomp_parser_set_version(&parser, v);
	return stomp_parse(&parser, in.ptr, (size_t)n, &frame);
}

static bool view_is(struct stomp_view v, struct stomp_view want)
{
	return stomp_view_eq(v, want.ptr, want.len);
}

static void assert_headers(const struct stomp_header *h, size_t n, uint32_t first)
{
	cr_assert_geq(frame.nheaders, first + n);
	for (size_t i = 0; i < n; i++) {
		cr_assert(view_is(frame.headers[first + i].name, h[i].name), "header %zu name", i);
		cr_assert(view_is(frame.headers[first + i].value, h[i].value), "header %zu value",
			  i);
	}
}

ParameterizedTestParameters(stomp_encode, frame_round_trips_with_escapes_and_binary_body)
{
	static enum stomp_version versions[] = { STOMP_V10, STOMP_V11, STOMP_V12 };

	return cr_make_param_array(enum stomp_version, versions, 3);
}

/* What each version can carry: 1.0 no LF, 1.0/1.1 no trailing CR (see stomp_escape). */
ParameterizedTest(enum stomp_version *v, stomp_encode,
		  frame_round_trips_with_escapes_and_binary_body)
{
	static const char body[] = "\0\1\2bin\0ary\n\r\0\xff";
	struct stomp_header all[] = {
		HEADER("destination", "/queue/a:b"), HEADER("back\\slash", "x\\y"),
		HEADER("colon:name", "v"),	     HEADER("lf", "a\nb"),
		HEADER("cr", "a\rb\r"),		     HEADER("empty", ""),
	};
	struct stomp_header v10[] = {
		HEADER("destination", "/queue/a:b"), HEADER("back\\slash", "x\\y"),
		HEADER("cr", "a\rb"),		     HEADER("empty", ""),
	};
	struct stomp_header v11[] = {
		HEADER("destination", "/queue/a:b"), HEADER("back\\slash", "x\\y"),
		HEADER("colon:name", "v"),	     HEADER("lf", "a\nb"),
		HEADER("cr", "a\rb"),		     HEADER("empty", ""),
	};
	struct stomp_header *h = *v == STOMP_V10 ? v10 : *v == STOMP_V11 ? v11 : all;
	size_t nh = *v == STOMP_V10 ? 4 : 6;
	ssize_t n = stomp_encode_frame(out, sizeof(out), *v, STOMP_CMD_SEND, h, nh, body,
				       sizeof(body), true);

	cr_assert_gt(n, 0);
	cr_assert_eq(parse_out(*v, n), n);
	cr_assert_eq(frame.cmd, STOMP_CMD_SEND);
	assert_headers(h, nh, 0);
	cr_assert(view_is(frame.body, (struct stomp_view){ body, sizeof(body) }));
}

Test(stomp_encode, connect_round_trips_without_unescaping)
{
	struct stomp_header h[] = { HEADER("login", "a\\cb"), HEADER("passcode", "p:q") };
	ssize_t n = stomp_encode_frame(out, sizeof(out), STOMP_V12, STOMP_CMD_CONNECT, h, 2,
				       NULL, 0, false);

	cr_assert_eq(parse_out(STOMP_V12, n), n);
	assert_headers(h, 2, 0);
}

ParameterizedTestParameters(stomp_encode, message_head_and_tail_parse_as_one_frame)
{
	static enum stomp_version versions[] = { STOMP_V11, STOMP_V12 };

	return cr_make_param_array(enum stomp_version, versions, 2);
}

/* The iovec pair, written back to back, is one MESSAGE frame. */
ParameterizedTest(enum stomp_version *v, stomp_encode, message_head_and_tail_parse_as_one_frame)
{
	struct stomp_header pub[] = { HEADER("content-type", "application/octet-stream"),
				      HEADER("x-trace", "t:1") };
	struct stomp_header head[] = { HEADER("subscription", "sub:0"),
				       HEADER("message-id", "m\\1"), HEADER("ack", "a-1"),
				       HEADER("redelivered", "true") };
	static const char body[] = "\0payload\0";
	char tail[512];
	ssize_t tn = stomp_encode_message_tail(tail, sizeof(tail), *v, VIEW("/topic/t"), pub, 2,
					       body, sizeof(body));
	ssize_t hn = stomp_encode_message_head(out, sizeof(out), *v, head[0].value,
					       head[1].value, head[2].value, true);

	cr_assert_gt(tn, 0);
	cr_assert_gt(hn, 0);
	memcpy(out + hn, tail, (size_t)tn);
	cr_assert_eq(parse_out(*v, hn + tn), hn + tn);
	cr_assert_eq(frame.cmd, STOMP_CMD_MESSAGE);
	assert_headers(head, 4, 0);
	cr_assert(STOMP_VIEW_EQ_LIT(frame.headers[4].value, "/topic/t"));
	assert_headers(pub, 2, 5);
	cr_assert(frame.has_content_length);
	cr_assert(view_is(frame.body, (struct stomp_view){ body, sizeof(body) }));
}

/* Property: any header bytes but NUL (which has no escape; the parser refuses it) and any
 * body survive 1.2 encoding (xorshift, fixed seed). */
Test(stomp_encode, random_frames_round_trip_in_v12)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char bytes[2048];
	struct stomp_header h[8];

	for (int round = 0; round < 2000; round++) {
		size_t used = 0;
		size_t nh = 0;
		size_t body_len;
		ssize_t n;

		for (size_t i = 0; i < sizeof(bytes); i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* mostly the bytes that matter: \n \r : \\ NUL and letters */
			bytes[i] = "\n\r:\\\0ab"[x % 7];
			if (x % 11 == 0)
				bytes[i] = (char)(x >> 24);
		}
		nh = x % 8;
		for (size_t i = 0; i < nh; i++) {
			size_t nl = 1 + (x >> (i * 3)) % 12;
			size_t vl = (x >> (i * 5)) % 20;

			h[i].name = (struct stomp_view){ bytes + used, nl };
			h[i].value = (struct stomp_view){ bytes + used + nl, vl };
			used += nl + vl;
		}
		for (size_t i = 0; i < used; i++)
			if (!bytes[i])
				bytes[i] = 'z';
		body_len = (x >> 40) % 200;
		n = stomp_encode_frame(out, sizeof(out), STOMP_V12, STOMP_CMD_SEND, h, nh,
				       bytes + used, body_len, true);
		cr_assert_gt(n, 0);
		cr_assert_eq(parse_out(STOMP_V12, n), n, "round %d: %s", round, parser.reason);
		assert_headers(h, nh, 0);
		cr_assert(view_is(frame.body, (struct stomp_view){ bytes + used, body_len }));
	}
}
