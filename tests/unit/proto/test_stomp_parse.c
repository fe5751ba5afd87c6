/*
 * tests/unit/proto/test_stomp_parse.c - the STOMP frame parser, one test per rule of the
 * spec (stomp.github.io/stomp-specification-1.2.html; sections named in comments) and per
 * limit. Every input sits flush against a PROT_NONE page (tests/support/guarded_buf.h), so
 * a one-byte over-read crashes the test.
 */
#include "proto/stomp_parse.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct guarded_buf in;
static char scratch[4096];
static struct stomp_parser parser;
static struct stomp_frame frame;

/* Parses wire with a fresh parser for version v (limits NULL: defaults); the input stays
 * mapped until the next call, so the views in `frame` can be checked. */
static ssize_t parse_with(enum stomp_version v, const struct stomp_limits *limits,
			  const char *wire, size_t len)
{
	if (in.map)
		guarded_buf_fini(&in);
	guarded_buf_init(&in, wire, len);
	stomp_parser_init(&parser, limits, scratch, sizeof(scratch));
	stomp_parser_set_version(&parser, v);
	return stomp_parse(&parser, in.ptr, len, &frame);
}

#define PARSE(lit) parse_with(STOMP_V12, NULL, (lit), sizeof(lit) - 1)
#define PARSE_V(v, lit) parse_with((v), NULL, (lit), sizeof(lit) - 1)
#define PARSE_LIMITS(l, lit) parse_with(STOMP_V12, (l), (lit), sizeof(lit) - 1)
/* bytes in a literal, without the NUL C adds (a frame's own NUL is written as \0) */
#define LEN(lit) (ssize_t)(sizeof(lit) - 1)
#define PARSES_ALL(lit) (PARSE(lit) == LEN(lit))

static bool header_is(const char *name, const char *value)
{
	const struct stomp_view *v = stomp_frame_header(&frame, name);

	return v && stomp_view_eq(*v, value, strlen(value));
}

static bool points_into_input(struct stomp_view v)
{
	return v.ptr >= in.ptr && v.ptr + v.len <= in.ptr + in.len;
}

static struct stomp_limits small_limits(void)
{
	struct stomp_limits l;

	stomp_limits_default(&l);
	l.max_frame = 256;
	l.max_headers = 3;
	l.max_header_line = 16;
	l.max_body = 32;
	l.max_command = 11;
	return l;
}

/* A heap string of `n` copies of c, with prefix and suffix around it. */
static char *repeat(const char *prefix, char c, size_t n, const char *suffix, size_t *len)
{
	size_t pl = strlen(prefix);
	size_t sl = strlen(suffix);
	char *s = malloc(pl + n + sl + 1);

	memcpy(s, prefix, pl);
	memset(s + pl, c, n);
	memcpy(s + pl + n, suffix, sl + 1);
	*len = pl + n + sl;
	return s;
}

/* ---- Commands ("Client Frames", "Server Frames") ---- */

ParameterizedTestParameters(stomp_parse, parses_each_command)
{
	static enum stomp_cmd cmds[] = {
		STOMP_CMD_CONNECT, STOMP_CMD_STOMP,	  STOMP_CMD_SEND,
		STOMP_CMD_SUBSCRIBE, STOMP_CMD_UNSUBSCRIBE, STOMP_CMD_ACK,
		STOMP_CMD_NACK,	   STOMP_CMD_BEGIN,	  STOMP_CMD_COMMIT,
		STOMP_CMD_ABORT,   STOMP_CMD_DISCONNECT,  STOMP_CMD_CONNECTED,
		STOMP_CMD_MESSAGE, STOMP_CMD_RECEIPT,	  STOMP_CMD_ERROR,
	};
	return cr_make_param_array(enum stomp_cmd, cmds, sizeof(cmds) / sizeof(cmds[0]));
}

ParameterizedTest(enum stomp_cmd *cmd, stomp_parse, parses_each_command)
{
	char wire[64];
	int n = snprintf(wire, sizeof(wire), "%s\nk:v\n\n", stomp_cmd_name(*cmd));

	/* + the NUL that ends the frame */
	cr_assert_eq(parse_with(STOMP_V12, NULL, wire, (size_t)n + 1), n + 1);
	cr_assert_eq(frame.cmd, *cmd, "%s", stomp_cmd_name(*cmd));
	cr_assert_eq(stomp_cmd_lookup(wire, strlen(stomp_cmd_name(*cmd))), *cmd);
}

/* "STOMP Frames": the command is one of the listed ones; anything else is an error. */
Test(stomp_parse, rejects_unknown_command)
{
	cr_assert_eq(PARSE("PUBLISH\n\n\0"), STOMP_E_UNKNOWN_COMMAND);
	cr_assert_str_eq(parser.reason, "unknown command");
}

/* "STOMP Frames": commands are case-sensitive. */
Test(stomp_parse, rejects_lowercase_command)
{
	cr_assert_eq(PARSE("send\n\n\0"), STOMP_E_UNKNOWN_COMMAND);
}

/* "Augmented BNF": EOL is [CR] LF; a CR before the command's LF is not part of it. */
Test(stomp_parse, strips_cr_from_command_line)
{
	cr_assert(PARSES_ALL("SEND\r\n\r\n\0"));
	cr_assert_eq(frame.cmd, STOMP_CMD_SEND);
}

/* A CR inside the command line is no EOL: "\rSEND" is no command. */
Test(stomp_parse, rejects_cr_not_followed_by_lf_before_a_command)
{
	cr_assert_eq(PARSE("\rSEND\n\n\0"), STOMP_E_UNKNOWN_COMMAND);
}

/* ---- Headers ("STOMP Frames", "Repeated Header Entries") ---- */

Test(stomp_parse, parses_headers_in_wire_order)
{
	cr_assert(PARSES_ALL("SEND\ndestination:/queue/a\nreceipt:r1\nx:\n\n\0"));
	cr_assert_eq(frame.nheaders, 3);
	cr_assert(STOMP_VIEW_EQ_LIT(frame.headers[0].name, "destination"));
	cr_assert(STOMP_VIEW_EQ_LIT(frame.headers[0].value, "/queue/a"));
	cr_assert(STOMP_VIEW_EQ_LIT(frame.headers[1].name, "receipt"));
	cr_assert(STOMP_VIEW_EQ_LIT(frame.headers[1].value, "r1"));
	cr_assert(STOMP_VIEW_EQ_LIT(frame.headers[2].name, "x"));
	cr_assert_eq(frame.headers[2].value.len, 0, "an empty value is a value");
}

/* Values are split at the first ':'; later ones belong to the value (lenient, as brokers
 * are: 1.0 has no escape for ':'). */
Test(stomp_parse, keeps_later_colons_in_the_value)
{
	cr_assert_gt(PARSE("SEND\ndestination:/queue/a:b\n\n\0"), 0);
	cr_assert(header_is("destination", "/queue/a:b"));
}

/* STOMP 1.2 "STOMP Frames": values are not trimmed of white space. */
Test(stomp_parse, keeps_white_space_around_values)
{
	cr_assert_gt(PARSE("SEND\n key : v \n\n\0"), 0);
	cr_assert(STOMP_VIEW_EQ_LIT(frame.headers[0].name, " key "));
	cr_assert(STOMP_VIEW_EQ_LIT(frame.headers[0].value, " v "));
}

/* "Augmented BNF": header = header-name ":" header-value. */
Test(stomp_parse, rejects_header_line_without_colon)
{
	cr_assert_eq(PARSE("SEND\ndestination\n\n\0"), STOMP_E_BAD_HEADER);
	cr_assert_str_eq(parser.reason, "malformed header line (no ':' or empty header name)");
}

/* "Augmented BNF": header-name = 1*<octet>: a name is never empty. */
Test(stomp_parse, rejects_header_with_empty_name)
{
	cr_assert_eq(PARSE("SEND\n:value\n\n\0"), STOMP_E_BAD_HEADER);
}

/* A NUL in a header would end the frame for every reader it is passed on to: refused, in
 * the value, in the name, and in every version (no escape exists for it). */
Test(stomp_parse, rejects_nul_in_a_header_line)
{
	static const char value[] = "SEND\ndestination:/topic/a\nx:hel\0lo\n\nbody\0";
	static const char name[] = "SEND\ndestination:/topic/a\nx\0y:1\n\nbody\0";
	enum stomp_version vs[] = { STOMP_V10, STOMP_V11, STOMP_V12 };

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(parse_with(vs[i], NULL, value, sizeof(value) - 1), STOMP_E_NUL_IN_HEADER);
		cr_assert_eq(parse_with(vs[i], NULL, name, sizeof(name) - 1), STOMP_E_NUL_IN_HEADER);
	}
	cr_assert_str_eq(stomp_parse_strerror(STOMP_E_NUL_IN_HEADER), "NUL byte in a header line");
}

/* "Repeated Header Entries": only the first entry is used; all stay in the list. */
Test(stomp_parse, first_repeated_header_wins)
{
	cr_assert_gt(PARSE("SEND\nfoo:World\nfoo:Hello\n\n\0"), 0);
	cr_assert(header_is("foo", "World"));
	cr_assert_eq(frame.nheaders, 2);
	cr_assert(STOMP_VIEW_EQ_LIT(frame.headers[1].value, "Hello"));
}

Test(stomp_parse, frame_header_is_null_when_absent)
{
	cr_assert_gt(PARSE("SEND\nfoo:1\n\n\0"), 0);
	cr_assert_null(stomp_frame_header(&frame, "fo"));
	cr_assert_null(stomp_frame_header(&frame, "foo1"));
}

/* "Augmented BNF": EOL = [CR] LF on every line, including the blank one. */
Test(stomp_parse, accepts_crlf_line_endings)
{
	cr_assert(PARSES_ALL("SEND\r\ndestination:/q\r\nk:v\r\n\r\nbody\0"));
	cr_assert(header_is("destination", "/q"));
	cr_assert(header_is("k", "v"));
	cr_assert(STOMP_VIEW_EQ_LIT(frame.body, "body"));
}

/* 1.0 and 1.1 only name LF, but clients send CR LF anyway: the CR is stripped there too. */
Test(stomp_parse, strips_cr_before_lf_in_every_version)
{
	cr_assert_gt(PARSE_V(STOMP_V10, "SEND\r\nk:v\r\n\r\n\0"), 0);
	cr_assert(header_is("k", "v"));
	cr_assert_gt(PARSE_V(STOMP_V11, "SEND\r\nk:v\r\n\r\n\0"), 0);
	cr_assert(header_is("k", "v"));
}

/* Only the CR right before LF is an EOL; one earlier in the value is data. */
Test(stomp_parse, keeps_cr_inside_a_value)
{
	cr_assert_gt(PARSE("SEND\nk:a\rb\r\n\n\0"), 0);
	cr_assert(header_is("k", "a\rb"));
}

/* picohttpparser's rule: names and values not unescaped point into the input. */
Test(stomp_parse, header_and_body_views_point_into_the_input)
{
	cr_assert_gt(PARSE("SEND\ndestination:/queue/a\n\nhello\0"), 0);
	cr_assert(points_into_input(frame.headers[0].name));
	cr_assert(points_into_input(frame.headers[0].value));
	cr_assert(points_into_input(frame.body));
}

/* ---- Value Encoding ---- */

/* 1.2: \r \n \c \\ decode to CR, LF, ':' and '\'. */
Test(stomp_parse, v12_unescapes_cr_lf_colon_backslash)
{
	cr_assert_gt(PARSE_V(STOMP_V12, "SEND\nk:a\\rb\\nc\\cd\\\\e\n\n\0"), 0);
	cr_assert(header_is("k", "a\rb\nc:d\\e"));
}

/* 1.1: \n \c \\ decode; \r is not defined there. */
Test(stomp_parse, v11_unescapes_lf_colon_backslash)
{
	cr_assert_gt(PARSE_V(STOMP_V11, "SEND\nk:b\\nc\\cd\\\\e\n\n\0"), 0);
	cr_assert(header_is("k", "b\nc:d\\e"));
}

Test(stomp_parse, v11_rejects_cr_escape)
{
	cr_assert_eq(PARSE_V(STOMP_V11, "SEND\nk:a\\rb\n\n\0"), STOMP_E_BAD_ESCAPE);
	cr_assert_str_eq(parser.reason,
			 "undefined escape sequence in header (STOMP 1.1 allows \\n \\c \\\\)");
}

/* 1.0 has no escaping: backslashes are data. */
Test(stomp_parse, v10_keeps_backslashes_verbatim)
{
	cr_assert_gt(PARSE_V(STOMP_V10, "SEND\nk:a\\tb\\c\n\n\0"), 0);
	cr_assert(header_is("k", "a\\tb\\c"));
}

/* "Value Encoding": undefined escapes such as \t are a fatal protocol error. */
Test(stomp_parse, rejects_undefined_escape)
{
	cr_assert_eq(PARSE_V(STOMP_V12, "SEND\nk:a\\tb\n\n\0"), STOMP_E_BAD_ESCAPE);
	cr_assert_str_eq(parser.reason,
			 "undefined escape sequence in header (STOMP 1.2 allows \\r \\n \\c \\\\)");
}

Test(stomp_parse, rejects_backslash_at_end_of_value)
{
	cr_assert_eq(PARSE("SEND\nk:ab\\\n\n\0"), STOMP_E_BAD_ESCAPE);
}

Test(stomp_parse, rejects_backslash_at_end_of_name)
{
	cr_assert_eq(PARSE("SEND\nk\\:v\n\n\0"), STOMP_E_BAD_ESCAPE);
}

/* "Value Encoding" applies to names as well as values. */
Test(stomp_parse, unescapes_header_names)
{
	cr_assert_gt(PARSE("SEND\na\\cb:v\n\n\0"), 0);
	cr_assert(header_is("a:b", "v"));
}

/* "Value Encoding": CONNECT and CONNECTED headers are never escaped. */
Test(stomp_parse, never_unescapes_connect_headers)
{
	cr_assert_gt(PARSE("CONNECT\nlogin:a\\cb\\t\npasscode:x\\\\\n\n\0"), 0);
	cr_assert(header_is("login", "a\\cb\\t"));
	cr_assert(header_is("passcode", "x\\\\"));
}

Test(stomp_parse, never_unescapes_connected_headers)
{
	cr_assert_gt(PARSE("CONNECTED\nserver:h\\c1\n\n\0"), 0);
	cr_assert(header_is("server", "h\\c1"));
}

/* STOMP is CONNECT under its 1.1+ name and comes before a version is agreed. */
Test(stomp_parse, never_unescapes_stomp_frame_headers)
{
	cr_assert_gt(PARSE("STOMP\nlogin:a\\cb\n\n\0"), 0);
	cr_assert(header_is("login", "a\\cb"));
}

Test(stomp_parse, unescaped_values_live_in_scratch)
{
	cr_assert_gt(PARSE("SEND\nk:a\\cb\nplain:v\n\n\0"), 0);
	cr_assert(frame.headers[0].value.ptr >= scratch);
	cr_assert(frame.headers[0].value.ptr < scratch + sizeof(scratch));
	cr_assert(points_into_input(frame.headers[0].name), "only the escaped field is copied");
	cr_assert(points_into_input(frame.headers[1].value));
}

Test(stomp_parse, rejects_escapes_that_outgrow_scratch)
{
	static const char wire[] = "SEND\nk:0123456789\\c\n\n";
	char small[8];

	guarded_buf_init(&in, wire, sizeof(wire));
	stomp_parser_init(&parser, NULL, small, sizeof(small));
	cr_assert_eq(stomp_parse(&parser, in.ptr, sizeof(wire), &frame), STOMP_E_SCRATCH_FULL);
	cr_assert_str_eq(parser.reason,
			 "unescaped headers too large for the parser's buffer (limit 8 bytes)");
}

Test(stomp_parse, scratch_is_reused_by_each_frame)
{
	static const char one[] = "SEND\nk:0123\\c\n\n";	/* 5 scratch bytes a frame */
	char wire[3 * sizeof(one)];
	char small[8];
	size_t off = 0;

	for (int i = 0; i < 3; i++)
		memcpy(wire + i * sizeof(one), one, sizeof(one));
	guarded_buf_init(&in, wire, sizeof(wire));
	stomp_parser_init(&parser, NULL, small, sizeof(small));
	for (int i = 0; i < 3; i++) {
		ssize_t r = stomp_parse(&parser, in.ptr + off, sizeof(wire) - off, &frame);

		cr_assert_eq(r, (ssize_t)sizeof(one), "frame %d", i);
		cr_assert(header_is("k", "0123:"));
		off += (size_t)r;
	}
}

/* The session switches the version after CONNECT; the next frame follows it. */
Test(stomp_parse, version_change_applies_to_the_next_frame)
{
	static const char wire[] = "SEND\nk:a\\cb\n\n\0SEND\nk:a\\cb\n\n";
	ssize_t r;

	guarded_buf_init(&in, wire, sizeof(wire));
	stomp_parser_init(&parser, NULL, scratch, sizeof(scratch));
	stomp_parser_set_version(&parser, STOMP_V10);
	r = stomp_parse(&parser, in.ptr, sizeof(wire), &frame);
	cr_assert_eq(r, 14);
	cr_assert(header_is("k", "a\\cb"));
	stomp_parser_set_version(&parser, STOMP_V11);
	cr_assert_eq(stomp_parse(&parser, in.ptr + r, sizeof(wire) - (size_t)r, &frame), 14);
	cr_assert(header_is("k", "a:b"));
}

/* ---- Body ("Body", "Header content-length") ---- */

Test(stomp_parse, body_ends_at_the_first_nul_without_content_length)
{
	cr_assert_eq(PARSE("SEND\n\nab\0cd\0"), 9);
	cr_assert(STOMP_VIEW_EQ_LIT(frame.body, "ab"));
	cr_assert_not(frame.has_content_length);
}

Test(stomp_parse, content_length_body_may_contain_nuls)
{
	cr_assert(PARSES_ALL("SEND\ncontent-length:5\n\na\0b\0c\0"));
	cr_assert(frame.has_content_length);
	cr_assert(STOMP_VIEW_EQ_LIT(frame.body, "a\0b\0c"));
}

Test(stomp_parse, content_length_zero_gives_an_empty_body)
{
	cr_assert(PARSES_ALL("SEND\ncontent-length:0\n\n\0"));
	cr_assert_eq(frame.body.len, 0);
}

Test(stomp_parse, accepts_leading_zeros_in_content_length)
{
	cr_assert_gt(PARSE("SEND\ncontent-length:003\n\nabc\0"), 0);
	cr_assert(STOMP_VIEW_EQ_LIT(frame.body, "abc"));
}

/* "Repeated Header Entries" applied to content-length: the first one sizes the body. */
Test(stomp_parse, first_content_length_wins)
{
	cr_assert_gt(PARSE("SEND\ncontent-length:2\ncontent-length:x\n\nab\0"), 0);
	cr_assert(STOMP_VIEW_EQ_LIT(frame.body, "ab"));
}

/* "Header content-length": the body is followed by a NUL all the same. */
Test(stomp_parse, rejects_content_length_body_not_followed_by_nul)
{
	cr_assert_eq(PARSE("SEND\ncontent-length:3\n\nabcd\0"), STOMP_E_MISSING_NUL);
	cr_assert_str_eq(parser.reason,
			 "frame body not terminated by NUL after content-length bytes");
}

/* Parameters are copied into the test process by value (Criterion may re-exec the binary,
 * so pointers to literals would not survive). */
struct text_param {
	char text[16];
};

ParameterizedTestParameters(stomp_parse, rejects_content_length_not_a_decimal)
{
	static struct text_param values[] = {
		{ "" },	  { "-1" }, { "+1" },	{ " 1" },
		{ "1 " }, { "1a" }, { "0x10" }, { "\xd9\xa1" },	/* Arabic-Indic one */
	};

	return cr_make_param_array(struct text_param, values, sizeof(values) / sizeof(values[0]));
}

ParameterizedTest(struct text_param *value, stomp_parse, rejects_content_length_not_a_decimal)
{
	char wire[64];
	int n = snprintf(wire, sizeof(wire), "SEND\ncontent-length:%s\n\n", value->text);

	cr_assert_eq(parse_with(STOMP_V12, NULL, wire, (size_t)n + 1), STOMP_E_BAD_CONTENT_LENGTH,
		     "value \"%s\"", value->text);
	cr_assert_str_eq(parser.reason, "content-length is not a non-negative decimal number");
}

/* ---- Size limits ("Size Limits"), each with its own code and reason ---- */

Test(stomp_parse, default_limits_are_as_documented)
{
	struct stomp_limits l;

	stomp_limits_default(&l);
	cr_assert_eq(l.max_frame, 1u << 20);
	cr_assert_eq(l.max_body, 1u << 20);
	cr_assert_eq(l.max_headers, 64);
	cr_assert_eq(l.max_header_line, 8192);
	cr_assert_eq(l.max_command, 16);
}

Test(stomp_parse, accepts_header_line_at_limit)
{
	size_t len;
	char *wire = repeat("SEND\nk:", 'x', 8190, "\r\n\n", &len);	/* 8192 + CR */

	cr_assert_gt(parse_with(STOMP_V12, NULL, wire, len + 1), 0);
	cr_assert_eq(frame.headers[0].value.len, 8190);
	free(wire);
}

Test(stomp_parse, rejects_header_line_over_limit)
{
	size_t len;
	char *wire = repeat("SEND\nk:", 'x', 8191, "\n\n", &len);

	cr_assert_eq(parse_with(STOMP_V12, NULL, wire, len + 1), STOMP_E_HEADER_LINE_TOO_LONG);
	cr_assert_str_eq(parser.reason, "header line too long (limit 8192 bytes)");
	free(wire);
}

/* A client streaming one endless header line is refused before any LF arrives. */
Test(stomp_parse, rejects_endless_header_line_before_its_lf)
{
	size_t len;
	char *wire = repeat("SEND\nk:", 'x', 9000, "", &len);

	cr_assert_eq(parse_with(STOMP_V12, NULL, wire, len), STOMP_E_HEADER_LINE_TOO_LONG);
	free(wire);
}

/* The limit counts escapes raw, as they arrive. */
Test(stomp_parse, counts_header_line_length_before_unescaping)
{
	struct stomp_limits l = small_limits();

	cr_assert_gt(PARSE_LIMITS(&l, "SEND\nk:\\c\\c\\c\\c\\c\\c\\c\n\n\0"), 0);	/* 16 */
	cr_assert_eq(PARSE_LIMITS(&l, "SEND\nk:\\c\\c\\c\\c\\c\\c\\cx\n\n\0"),
		     STOMP_E_HEADER_LINE_TOO_LONG);
}

Test(stomp_parse, accepts_max_headers)
{
	struct stomp_limits l = small_limits();

	cr_assert_gt(PARSE_LIMITS(&l, "SEND\na:1\nb:2\nc:3\n\n\0"), 0);
	cr_assert_eq(frame.nheaders, 3);
}

Test(stomp_parse, rejects_too_many_headers)
{
	struct stomp_limits l = small_limits();

	cr_assert_eq(PARSE_LIMITS(&l, "SEND\na:1\nb:2\nc:3\nd:4\n\n\0"), STOMP_E_TOO_MANY_HEADERS);
	cr_assert_str_eq(parser.reason, "too many headers (limit 3)");
}

/* The frame struct holds STOMP_HEADERS_CAP headers; a higher limit is clamped to it. */
Test(stomp_parse, clamps_max_headers_to_the_frame_capacity)
{
	struct stomp_limits l;

	stomp_limits_default(&l);
	l.max_headers = 100000;
	stomp_parser_init(&parser, &l, NULL, 0);
	cr_assert_eq(parser.limits.max_headers, STOMP_HEADERS_CAP);
}

Test(stomp_parse, rejects_command_over_limit)
{
	cr_assert_eq(PARSE("SUBSCRIBESUBSCRIBE\n\n\0"), STOMP_E_COMMAND_TOO_LONG);
	cr_assert_str_eq(parser.reason, "command too long (limit 16 bytes)");
}

/* The command limit does not count the CR of a CR LF. */
Test(stomp_parse, accepts_command_at_limit_before_crlf)
{
	struct stomp_limits l = small_limits();

	cr_assert_gt(PARSE_LIMITS(&l, "UNSUBSCRIBE\r\n\n\0"), 0);
	l.max_command = 10;
	cr_assert_eq(PARSE_LIMITS(&l, "UNSUBSCRIBE\r\n\n\0"), STOMP_E_COMMAND_TOO_LONG);
}

Test(stomp_parse, rejects_endless_command_line_before_its_lf)
{
	size_t len;
	char *wire = repeat("", 'S', 100, "", &len);

	cr_assert_eq(parse_with(STOMP_V12, NULL, wire, len), STOMP_E_COMMAND_TOO_LONG);
	free(wire);
}

Test(stomp_parse, accepts_body_at_limit)
{
	struct stomp_limits l = small_limits();
	size_t len;
	char *wire = repeat("SEND\n\n", 'b', 32, "", &len);

	cr_assert_eq(parse_with(STOMP_V12, &l, wire, len + 1), (ssize_t)len + 1);
	cr_assert_eq(frame.body.len, 32);
	free(wire);
}

Test(stomp_parse, rejects_nul_terminated_body_over_limit)
{
	struct stomp_limits l = small_limits();
	size_t len;
	char *wire = repeat("SEND\n\n", 'b', 33, "", &len);

	cr_assert_eq(parse_with(STOMP_V12, &l, wire, len + 1), STOMP_E_BODY_TOO_LARGE);
	cr_assert_str_eq(parser.reason, "body too large (limit 32 bytes)");
	free(wire);
}

/* A content-length over max_body fails at its header, before the body is sent. */
Test(stomp_parse, rejects_content_length_over_body_limit_at_its_header)
{
	struct stomp_limits l = small_limits();

	l.max_header_line = 64;
	cr_assert_eq(PARSE_LIMITS(&l, "SEND\ncontent-length:33\n"), STOMP_E_BODY_TOO_LARGE);
	cr_assert_eq(PARSE("SEND\ncontent-length:99999999999999999999999999\n"),
		     STOMP_E_BODY_TOO_LARGE, "an overflowing number is too large, not malformed");
}

/* A content-length whose body cannot fit in max_frame fails at its header too. */
Test(stomp_parse, rejects_content_length_over_frame_limit_at_its_header)
{
	struct stomp_limits l = small_limits();

	l.max_body = 1000;
	l.max_header_line = 64;
	cr_assert_eq(PARSE_LIMITS(&l, "SEND\ncontent-length:300\n"), STOMP_E_FRAME_TOO_LARGE);
	cr_assert_str_eq(parser.reason, "frame too large (limit 256 bytes)");
}

Test(stomp_parse, accepts_frame_of_exactly_max_frame)
{
	struct stomp_limits l = small_limits();
	size_t len;
	char *wire = repeat("SEND\n\n", 'b', 256 - 7, "", &len);	/* + NUL = 256 */

	l.max_body = 1000;
	cr_assert_eq(parse_with(STOMP_V12, &l, wire, len + 1), 256);
	free(wire);
}

Test(stomp_parse, rejects_frame_over_limit)
{
	struct stomp_limits l = small_limits();
	size_t len;
	char *wire = repeat("SEND\n\n", 'b', 256 - 6, "", &len);

	l.max_body = 1000;
	cr_assert_eq(parse_with(STOMP_V12, &l, wire, len + 1), STOMP_E_FRAME_TOO_LARGE);
	cr_assert_str_eq(parser.reason, "frame too large (limit 256 bytes)");
	free(wire);
}

Test(stomp_parse, rejects_frame_over_limit_by_content_length)
{
	struct stomp_limits l = small_limits();
	char wire[300];
	int n;

	/* fits at its header; the header after it pushes the body past the limit */
	l.max_body = 1000;
	l.max_header_line = 1000;
	n = snprintf(wire, sizeof(wire), "SEND\ncontent-length:50\nx:%0181d\n\n", 0);
	cr_assert_eq(parse_with(STOMP_V12, &l, wire, (size_t)n), STOMP_E_FRAME_TOO_LARGE);
}

/* A client streaming endless short header lines is refused once it passes max_frame. */
Test(stomp_parse, rejects_frame_over_limit_while_headers_are_incomplete)
{
	struct stomp_limits l;
	char wire[4096];
	size_t len = 5;

	stomp_limits_default(&l);
	l.max_frame = 1024;
	memcpy(wire, "SEND\n", 5);
	while (len < 2000) {
		memcpy(wire + len, "h:0123456789abcdef0123456789\n", 29);
		len += 29;
	}
	cr_assert_eq(parse_with(STOMP_V12, &l, wire, len), STOMP_E_FRAME_TOO_LARGE);
}

/* Every code has its own reason, fit for an ERROR frame's message header. */
Test(stomp_parse, each_error_code_has_its_own_reason)
{
	for (int a = STOMP_E_NUL_IN_HEADER; a <= STOMP_E_FRAME_TOO_LARGE; a++) {
		cr_assert_neq(strlen(stomp_parse_strerror(a)), 0);
		cr_assert_null(strchr(stomp_parse_strerror(a), '\n'), "one line: %d", a);
		for (int b = a + 1; b <= STOMP_E_FRAME_TOO_LARGE; b++)
			cr_assert_str_neq(stomp_parse_strerror(a), stomp_parse_strerror(b));
	}
	cr_assert_str_eq(stomp_parse_strerror(-99), "unknown parse error");
	cr_assert_str_eq(stomp_parse_strerror(0), "unknown parse error");
}

/* After an error the connection is closing; the parser keeps saying why. */
Test(stomp_parse, repeats_an_error_on_later_calls)
{
	cr_assert_eq(PARSE("NOPE\n\n\0"), STOMP_E_UNKNOWN_COMMAND);
	cr_assert_eq(stomp_parse(&parser, "SEND\n\n", 7, &frame), STOMP_E_UNKNOWN_COMMAND);
	cr_assert_str_eq(parser.reason, "unknown command");
}

/* ---- Heart-beating ---- */

Test(stomp_parse, reports_heartbeats_alone_as_a_none_frame)
{
	cr_assert_eq(PARSE("\n\r\n\n"), 4);
	cr_assert_eq(frame.cmd, STOMP_CMD_NONE);
	cr_assert_eq(frame.heartbeats, 3, "CR LF counts once");
}

Test(stomp_parse, consumes_heartbeats_with_the_frame_after_them)
{
	cr_assert_eq(PARSE("\n\r\nSEND\n\n\0"), 10);
	cr_assert_eq(frame.cmd, STOMP_CMD_SEND);
	cr_assert_eq(frame.heartbeats, 2);
}

/* Liveness is reported at once even when the next frame is still arriving. */
Test(stomp_parse, returns_heartbeats_first_when_the_next_frame_is_incomplete)
{
	cr_assert_eq(PARSE("\n\nSEND\nk:"), 2);
	cr_assert_eq(frame.cmd, STOMP_CMD_NONE);
	cr_assert_eq(frame.heartbeats, 2);
}

Test(stomp_parse, waits_for_the_lf_after_a_lone_cr)
{
	cr_assert_eq(PARSE("\r"), 0);
	cr_assert_eq(PARSE("\n\r"), 1);
	cr_assert_eq(frame.heartbeats, 1);
}

Test(stomp_parse, returns_zero_for_empty_input)
{
	cr_assert_eq(parse_with(STOMP_V12, NULL, "", 0), 0);
}

/* "STOMP Frames": NULL *(EOL): EOLs after a frame are the next call's heart-beats. */
Test(stomp_parse, counts_heartbeats_between_frames)
{
	static const char wire[] = "SEND\n\n\0\n\r\nSEND\n\n";
	ssize_t r;

	guarded_buf_init(&in, wire, sizeof(wire));
	stomp_parser_init(&parser, NULL, scratch, sizeof(scratch));
	r = stomp_parse(&parser, in.ptr, sizeof(wire), &frame);
	cr_assert_eq(r, 7);
	cr_assert_eq(frame.heartbeats, 0);
	cr_assert_eq(stomp_parse(&parser, in.ptr + r, sizeof(wire) - 7, &frame), 10);
	cr_assert_eq(frame.cmd, STOMP_CMD_SEND);
	cr_assert_eq(frame.heartbeats, 2);
}

/* ---- Incremental parsing ---- */

/* A sample stream: frames of each kind, heart-beats, escapes, binary bodies; some end in
 * an error so that errors are split-invariant too. */
struct sample {
	const char *wire;
	size_t len;
	enum stomp_version version;
};

#define SAMPLE(v, lit) { (lit), sizeof(lit) - 1, (v) }
static const struct sample samples[] = {
	SAMPLE(STOMP_V12, "SEND\ndestination:/queue/a\n\nhi\0"),
	SAMPLE(STOMP_V12, "\n\r\n\nSUBSCRIBE\r\nid:0\r\ndestination:/topic/x\r\n"
			  "ack:client\r\n\r\n\0\n"),
	SAMPLE(STOMP_V12, "SEND\ndestination:/q\ncontent-length:5\n\na\0b\0c\0\n\nACK\nid:7\n\n\0"),
	SAMPLE(STOMP_V12, "MESSAGE\nsubscription:1\nmessage-id:m\\c1\ndestination:/a\\nb\n"
			  "x:y\\\\z\\r\n\nbody\0"),
	SAMPLE(STOMP_V11, "SEND\nk\\c:v\\n\\\\\n\nb\0"),
	SAMPLE(STOMP_V10, "SEND\nk:v\\t\n\nb\0SEND\n\n\0"),
	SAMPLE(STOMP_V12, "CONNECT\naccept-version:1.1,1.2\nhost:a\\c\nlogin:x\n\n\0"),
	SAMPLE(STOMP_V12, "DISCONNECT\nreceipt:77\n\n\0\r\n"),
	SAMPLE(STOMP_V12, "SEND\ndestination:/q\ncontent-length:0\ncontent-length:9\n\n\0"),
	SAMPLE(STOMP_V12, "BEGIN\ntransaction:t\n\n\0COMMIT\ntransaction:t\n\n\0ABORT\n\n\0"),
	SAMPLE(STOMP_V12, "SEND\n\n\0SEND\nbad\n\n\0"),
	SAMPLE(STOMP_V12, "\nFOO\n\n\0"),
	SAMPLE(STOMP_V12, "SEND\ncontent-length:3\n\nabcd\0"),
	SAMPLE(STOMP_V12, "SEND\nk:\\t\n\n\0"),
	SAMPLE(STOMP_V12, "SEND\ncontent-length:1x\n\n\0"),
	SAMPLE(STOMP_V12, "SEND\nk:v\n\nunterminated"),
	SAMPLE(STOMP_V12, "\rSEND\n\n\0"),
	SAMPLE(STOMP_V12, "\n\n\n\r"),
};

/* What a whole stream parsed to: the real frames flattened into `dump`, the heart-beats
 * counted, and how it ended (error code, or 0 with `consumed` bytes used). */
struct outcome {
	char dump[4096];
	size_t dump_len;
	uint32_t heartbeats;
	int err;
	size_t consumed;
};

static void dump_bytes(struct outcome *o, const void *p, size_t len)
{
	cr_assert_leq(o->dump_len + sizeof(len) + len, sizeof(o->dump));
	memcpy(o->dump + o->dump_len, &len, sizeof(len));
	if (len)
		memcpy(o->dump + o->dump_len + sizeof(len), p, len);
	o->dump_len += sizeof(len) + len;
}

static void dump_frame(struct outcome *o, const struct stomp_frame *f)
{
	const char *name = stomp_cmd_name(f->cmd);

	o->heartbeats += f->heartbeats;
	if (f->cmd == STOMP_CMD_NONE)
		return;
	dump_bytes(o, name, strlen(name));
	for (uint32_t i = 0; i < f->nheaders; i++) {
		dump_bytes(o, f->headers[i].name.ptr, f->headers[i].name.len);
		dump_bytes(o, f->headers[i].value.ptr, f->headers[i].value.len);
	}
	dump_bytes(o, f->body.ptr, f->body.len);
}

/*
 * Feeds s the way a connection does: the bytes arrive in pieces ending at each offset of
 * ends[] (ascending; the last is s->len); each call sees the unconsumed bytes copied to a
 * fresh spot flush against a guard page, so the partial frame moves between calls.
 */
static void feed(const struct sample *s, const size_t *ends, size_t nends, struct outcome *o)
{
	struct stomp_parser p;
	struct stomp_frame f;
	struct guarded_buf g;
	char sc[256];
	ssize_t r;

	memset(o, 0, sizeof(*o));
	stomp_parser_init(&p, NULL, sc, sizeof(sc));
	stomp_parser_set_version(&p, s->version);
	for (size_t i = 0; i < nends; i++) {
		do {
			size_t n = ends[i] - o->consumed;

			guarded_buf_init(&g, s->wire + o->consumed, n);
			r = stomp_parse(&p, g.ptr, n, &f);
			cr_assert_leq(r, (ssize_t)n);
			if (r > 0) {
				dump_frame(o, &f);
				o->consumed += (size_t)r;
			}
			guarded_buf_fini(&g);
			if (r < 0) {
				o->err = (int)r;
				return;
			}
		} while (r > 0 && o->consumed < ends[i]);
	}
}

static void feed_whole(const struct sample *s, struct outcome *o)
{
	feed(s, &s->len, 1, o);
}

static void assert_same(const struct outcome *a, const struct outcome *b, const char *what,
			size_t sample, size_t at)
{
	cr_assert_eq(a->err, b->err, "sample %zu, %s %zu: error", sample, what, at);
	cr_assert_eq(a->dump_len, b->dump_len, "sample %zu, %s %zu: frames", sample, what, at);
	cr_assert_arr_eq(a->dump, b->dump, a->dump_len, "sample %zu, %s %zu", sample, what, at);
	if (!a->err) {
		cr_assert_eq(a->heartbeats, b->heartbeats, "sample %zu, %s %zu", sample, what, at);
		cr_assert_eq(a->consumed, b->consumed, "sample %zu, %s %zu", sample, what, at);
	}
}

Test(stomp_parse, samples_parse_as_expected_whole)
{
	struct outcome o;

	feed_whole(&samples[2], &o);
	cr_assert_eq(o.err, 0);
	cr_assert_eq(o.consumed, samples[2].len);
	cr_assert_eq(o.heartbeats, 2);
	feed_whole(&samples[10], &o);
	cr_assert_eq(o.err, STOMP_E_BAD_HEADER);
	feed_whole(&samples[15], &o);
	cr_assert_eq(o.err, 0);
	cr_assert_eq(o.consumed, 0, "an unterminated frame is never returned");
	feed_whole(&samples[17], &o);
	cr_assert_eq(o.consumed, 3, "the lone CR waits");
	cr_assert_eq(o.heartbeats, 3);
}

/* NATS's parser property: a stream cut anywhere parses the same. */
Test(stomp_parse, same_frames_at_every_split_point)
{
	for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
		struct outcome whole;
		struct outcome split;

		feed_whole(&samples[s], &whole);
		for (size_t cut = 0; cut <= samples[s].len; cut++) {
			size_t ends[2] = { cut, samples[s].len };

			feed(&samples[s], ends, 2, &split);
			assert_same(&whole, &split, "cut", s, cut);
		}
	}
}

Test(stomp_parse, same_frames_at_every_pair_of_split_points)
{
	for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
		struct outcome whole;
		struct outcome split;

		feed_whole(&samples[s], &whole);
		for (size_t a = 1; a < samples[s].len; a++) {
			for (size_t b = a + 1; b < samples[s].len; b++) {
				size_t ends[3] = { a, b, samples[s].len };

				feed(&samples[s], ends, 3, &split);
				assert_same(&whole, &split, "cuts", s, a * 1000 + b);
			}
		}
	}
}

Test(stomp_parse, same_frames_fed_one_byte_at_a_time)
{
	for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++) {
		struct outcome whole;
		struct outcome bytewise;
		size_t ends[512];

		cr_assert_leq(samples[s].len, sizeof(ends) / sizeof(ends[0]));
		for (size_t i = 0; i < samples[s].len; i++)
			ends[i] = i + 1;
		feed_whole(&samples[s], &whole);
		feed(&samples[s], ends, samples[s].len, &bytewise);
		assert_same(&whole, &bytewise, "bytewise", s, 0);
	}
}

Test(stomp_parse, returns_zero_until_the_frame_is_complete)
{
	static const char wire[] = "SEND\ndestination:/q\ncontent-length:2\n\nhi";	/* + NUL */

	for (size_t n = 0; n < sizeof(wire); n++)
		cr_assert_eq(parse_with(STOMP_V12, NULL, wire, n), 0, "prefix %zu", n);
	cr_assert_eq(parse_with(STOMP_V12, NULL, wire, sizeof(wire)), (ssize_t)sizeof(wire));
}

/* The scan position survives the call, in every state, so no byte is scanned twice and
 * feeding a frame one byte at a time is linear. */
Test(stomp_parse, remembers_its_scan_position_between_calls)
{
	static const char wire[] = "SEND\ndestination:/q\n\nbody-without-length";	/* + NUL */
	struct stomp_parser p;
	struct stomp_frame f;

	stomp_parser_init(&p, NULL, scratch, sizeof(scratch));
	for (size_t n = 1; n < sizeof(wire); n++) {
		guarded_buf_init(&in, wire, n);
		cr_assert_eq(stomp_parse(&p, in.ptr, n, &f), 0, "prefix %zu", n);
		cr_assert_eq(p.scan_off, n, "prefix %zu", n);
		guarded_buf_fini(&in);
	}
}

/* A long frame fed one byte at a time: quadratic rescanning would take minutes here. */
Test(stomp_parse, parses_a_large_frame_fed_bytewise_in_linear_time)
{
	size_t len;
	char *wire = repeat("SEND\nk:v\n\n", 'x', 1000000, "", &len);
	struct stomp_parser p;
	struct stomp_frame f;
	struct stomp_limits l;
	ssize_t r = 0;

	stomp_limits_default(&l);
	l.max_frame = l.max_body = 2000000;
	stomp_parser_init(&p, &l, scratch, sizeof(scratch));
	for (size_t n = 1; n <= len + 1 && r == 0; n++)
		r = stomp_parse(&p, wire, n, &f);
	cr_assert_eq(r, (ssize_t)len + 1);
	cr_assert_eq(f.body.len, 1000000);
	cr_assert(STOMP_VIEW_EQ_LIT(f.headers[0].value, "v"));
	free(wire);
}

/* Header views of a frame completed over several calls point into the last call's buffer. */
Test(stomp_parse, views_of_a_resumed_frame_point_into_the_last_buffer)
{
	static const char wire[] = "SEND\nk:v\ne:a\\cb\n\nbody";
	struct stomp_parser p;
	struct stomp_frame f;
	struct guarded_buf first;

	stomp_parser_init(&p, NULL, scratch, sizeof(scratch));
	guarded_buf_init(&first, wire, 9);
	cr_assert_eq(stomp_parse(&p, first.ptr, 9, &f), 0);
	guarded_buf_fini(&first);	/* the session moved the partial frame */
	guarded_buf_init(&in, wire, sizeof(wire));
	cr_assert_eq(stomp_parse(&p, in.ptr, sizeof(wire), &f), (ssize_t)sizeof(wire));
	cr_assert_eq(f.nheaders, 2);
	cr_assert(points_into_input(f.headers[0].value));
	cr_assert(stomp_view_eq(f.headers[1].value, "a:b", 3));
	cr_assert(points_into_input(f.body));
}

/* ---- limits replaced between frames (SIGHUP reload, docs/operations.md) ---- */

Test(stomp_parse, new_limits_apply_to_the_next_frame)
{
	static const char wire[] = "SEND\ndestination:/q\n\n0123456789\0";
	struct stomp_limits l = small_limits();

	cr_assert_eq(PARSE_LIMITS(&l, wire), LEN(wire));
	cr_assert(stomp_parser_is_between_frames(&parser));
	l.max_body = 5;
	stomp_parser_set_limits(&parser, &l, scratch, sizeof(scratch));
	cr_assert_eq(stomp_parse(&parser, in.ptr, (size_t)LEN(wire), &frame), STOMP_E_BODY_TOO_LARGE);
}

Test(stomp_parse, is_not_between_frames_inside_a_partial_frame)
{
	static const char wire[] = "SEND\ndestination:/q\n\n0123";

	cr_assert_eq(PARSE(wire), 0);
	cr_assert_not(stomp_parser_is_between_frames(&parser));
}

Test(stomp_parse, moving_the_scratch_mid_frame_keeps_unescaped_headers)
{
	static const char head[] = "SEND\ndestination:/q\nk:a\\cb\n";
	static const char wire[] = "SEND\ndestination:/q\nk:a\\cb\n\nbody\0";
	static char moved[4096];

	cr_assert_eq(PARSE(head), 0);
	memset(scratch, 'X', sizeof(scratch));	/* the old scratch is gone */
	stomp_parser_set_limits(&parser, &parser.limits, moved, sizeof(moved));
	guarded_buf_fini(&in);
	guarded_buf_init(&in, wire, (size_t)LEN(wire));
	cr_assert_eq(stomp_parse(&parser, in.ptr, (size_t)LEN(wire), &frame), LEN(wire));
	cr_assert(header_is("k", "a:b"));
}
