/*
 * tests/unit/auth/test_jwt_json.c - auth/jwt_json.c against RFC 8259: the grammar (and
 * what it refuses), string escapes and surrogates (section 7), UTF-8 (section 8.1), the
 * depth and token limits, duplicate keys (RFC 7519 section 4), NumericDate (RFC 7519
 * section 2). Every input sits flush against a PROT_NONE page.
 */
#include "auth/jwt_json.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define NTOK 64

struct doc {
	struct guarded_buf gb;
	struct jwt_json j;
	struct jwt_json_tok toks[NTOK];
	int rc;
};

static void parse(struct doc *d, const char *s, size_t len)
{
	const char *p = guarded_buf_init(&d->gb, s, len);

	d->rc = jwt_json_parse(&d->j, d->toks, NTOK, p, len);
}

static int parse_rc_len(const char *s, size_t len)
{
	struct doc d;
	int rc;

	parse(&d, s, len);
	rc = d.rc;
	guarded_buf_fini(&d.gb);
	return rc;
}

static int parse_rc(const char *s)
{
	return parse_rc_len(s, strlen(s));
}

Test(jwt_json, flattens_an_object_in_document_order)
{
	struct doc d;
	const char *s = "{\"sub\":\"jack\",\"aud\":[\"a\",\"b\"],\"n\":1}";

	parse(&d, s, strlen(s));
	cr_assert_eq(d.rc, 0);
	cr_assert_eq(d.j.n, 9);
	cr_assert_eq(d.toks[0].type, JWT_JSON_OBJECT);
	cr_assert_eq(d.toks[0].count, 3);
	cr_assert_eq(d.toks[0].next, 9);
	cr_assert_eq(d.toks[4].type, JWT_JSON_ARRAY);
	cr_assert_eq(d.toks[4].count, 2);
	cr_assert_eq(d.toks[4].next, 7);
	cr_assert_eq(d.toks[8].type, JWT_JSON_NUMBER);
	guarded_buf_fini(&d.gb);
}

Test(jwt_json, accepts_every_value_type_and_whitespace)
{
	cr_assert_eq(parse_rc(" \t\r\n{ \"a\" : [ true , false , null , -0.5e+3 , \"\" , { } , [ ] ] } \n"), 0);
	cr_assert_eq(parse_rc("\"top-level string\""), 0);
	cr_assert_eq(parse_rc("0"), 0);
	cr_assert_eq(parse_rc("[]"), 0);
}

/* RFC 8259 section 6 */
Test(jwt_json, refuses_numbers_outside_the_grammar)
{
	static const char *bad[] = { "[01]", "[1.]", "[.5]", "[-]", "[+1]", "[1e]", "[1e+]",
				     "[0x10]", "[NaN]", "[Infinity]", "[- 1]" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse_rc(bad[i]), JWT_JSON_E_SYNTAX, "%s", bad[i]);
}

Test(jwt_json, refuses_broken_structure)
{
	static const char *bad[] = { "", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]",
				     "[1 2]", "{a:1}", "{'a':1}", "{\"a\":1}x", "{\"a\":1}{}",
				     "tru", "nul", "[true false]", "{\"a\" 1}", "[\"abc]" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(parse_rc(bad[i]), 0, "%s", bad[i]);
}

/* RFC 8259 section 7: control characters must be escaped */
Test(jwt_json, refuses_raw_control_characters_in_strings)
{
	cr_assert_eq(parse_rc("[\"a\tb\"]"), JWT_JSON_E_SYNTAX);
	cr_assert_eq(parse_rc("[\"a\nb\"]"), JWT_JSON_E_SYNTAX);
	cr_assert_eq(parse_rc_len("[\"\0\"]", 5), JWT_JSON_E_SYNTAX);
}

Test(jwt_json, refuses_unknown_escapes)
{
	cr_assert_eq(parse_rc("[\"\\x41\"]"), JWT_JSON_E_SYNTAX);
	cr_assert_eq(parse_rc("[\"\\u12\"]"), JWT_JSON_E_SYNTAX);
	cr_assert_eq(parse_rc("[\"\\u12g4\"]"), JWT_JSON_E_SYNTAX);
	cr_assert_eq(parse_rc("[\"\\\"]"), JWT_JSON_E_SYNTAX);
}

static ssize_t decode(const char *json, char *out, size_t cap)
{
	struct doc d;
	ssize_t n;

	parse(&d, json, strlen(json));
	cr_assert_eq(d.rc, 0, "%s", json);
	n = jwt_json_string(&d.j, 1, out, cap);
	guarded_buf_fini(&d.gb);
	return n;
}

Test(jwt_json, decodes_escapes_into_utf8)
{
	char out[64];

	cr_assert_eq(decode("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"]", out, sizeof(out)), 12);
	cr_assert_str_eq(out, "a\"b\\c/d\b\f\n\r\t");
	cr_assert_eq(decode("[\"\\u00e9\\u20AC\"]", out, sizeof(out)), 5);
	cr_assert_str_eq(out, "\xc3\xa9\xe2\x82\xac");
	/* U+1F600 as a surrogate pair */
	cr_assert_eq(decode("[\"\\ud83d\\ude00\"]", out, sizeof(out)), 4);
	cr_assert_str_eq(out, "\xf0\x9f\x98\x80");
}

/* RFC 8259 section 8.2: unpaired surrogates are refused here */
Test(jwt_json, refuses_unpaired_surrogates)
{
	cr_assert_eq(parse_rc("[\"\\ud83d\"]"), JWT_JSON_E_UTF8);
	cr_assert_eq(parse_rc("[\"\\ude00\"]"), JWT_JSON_E_UTF8);
	cr_assert_eq(parse_rc("[\"\\ud83d\\u0041\"]"), JWT_JSON_E_UTF8);
	cr_assert_eq(parse_rc("[\"\\ud83dx\"]"), JWT_JSON_E_UTF8);
}

/* RFC 8259 section 8.1 */
Test(jwt_json, refuses_invalid_utf8)
{
	cr_assert_eq(parse_rc("[\"\xc0\xaf\"]"), JWT_JSON_E_UTF8);
	cr_assert_eq(parse_rc("[\"\xed\xa0\x80\"]"), JWT_JSON_E_UTF8);
	cr_assert_eq(parse_rc("[\"\xff\"]"), JWT_JSON_E_UTF8);
	cr_assert_eq(parse_rc("[\"\xc3\xa9\"]"), 0);
}

Test(jwt_json, string_decoding_refuses_nul_and_reports_space)
{
	char out[4];

	cr_assert_eq(decode("[\"a\\u0000b\"]", out, sizeof(out)), JWT_JSON_E_NUL);
	cr_assert_eq(decode("[\"abcd\"]", out, sizeof(out)), JWT_JSON_E_SPACE);
	cr_assert_eq(decode("[\"abc\"]", out, sizeof(out)), 3);
	cr_assert_eq(decode("[\"\"]", out, 0), JWT_JSON_E_SPACE);
	cr_assert_eq(decode("[1]", out, sizeof(out)), JWT_JSON_E_TYPE);
}

Test(jwt_json, limits_nesting_depth)
{
	char deep[2 * JWT_JSON_MAX_DEPTH + 3];
	size_t n = 0;

	for (int i = 0; i < JWT_JSON_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < JWT_JSON_MAX_DEPTH; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	cr_assert_eq(parse_rc(deep), 0);
	memmove(deep + 1, deep, n + 1);
	deep[0] = '[';
	deep[n + 1] = ']';
	deep[n + 2] = '\0';
	cr_assert_eq(parse_rc(deep), JWT_JSON_E_DEPTH);
}

Test(jwt_json, limits_the_token_count)
{
	char s[4 * NTOK];
	size_t n = 0;

	s[n++] = '[';
	for (int i = 0; i < NTOK - 1; i++)
		n += (size_t)sprintf(s + n, "%s1", i ? "," : "");
	s[n++] = ']';
	s[n] = '\0';
	cr_assert_eq(parse_rc(s), 0);	/* NTOK tokens exactly */
	memcpy(s + n - 1, ",1]", 4);
	cr_assert_eq(parse_rc(s), JWT_JSON_E_TOKENS);
}

Test(jwt_json, finds_keys_after_unescaping_and_reports_duplicates)
{
	struct doc d;
	uint32_t v = 0;
	const char *s = "{\"sub\":\"a\",\"\\u0065xp\":5,\"x\":{\"sub\":1},\"s\\u0075b\":\"b\"}";

	parse(&d, s, strlen(s));
	cr_assert_eq(d.rc, 0);
	cr_assert_eq(jwt_json_find(&d.j, 0, "exp", &v), 1);
	cr_assert_eq(d.toks[v].type, JWT_JSON_NUMBER);
	cr_assert_eq(jwt_json_find(&d.j, 0, "sub", &v), JWT_JSON_E_DUPLICATE);
	cr_assert_eq(jwt_json_find(&d.j, 0, "nope", &v), 0);
	cr_assert_eq(jwt_json_find(&d.j, 2, "sub", &v), JWT_JSON_E_TYPE);
	guarded_buf_fini(&d.gb);
}

static int seconds(const char *num, bool up, int64_t *out)
{
	char s[64];
	struct doc d;
	int rc;

	snprintf(s, sizeof(s), "[%s]", num);
	parse(&d, s, strlen(s));
	cr_assert_eq(d.rc, 0, "%s", s);
	rc = jwt_json_seconds(&d.j, 1, up, out);
	guarded_buf_fini(&d.gb);
	return rc;
}

/* RFC 7519 section 2 NumericDate: fractions round toward the safe side */
Test(jwt_json, reads_numeric_dates)
{
	int64_t v;

	cr_assert_eq(seconds("1700000000", false, &v), 0);
	cr_assert_eq(v, 1700000000);
	cr_assert_eq(seconds("1700000000.7", false, &v), 0);
	cr_assert_eq(v, 1700000000);
	cr_assert_eq(seconds("1700000000.2", true, &v), 0);
	cr_assert_eq(v, 1700000001);
	cr_assert_eq(seconds("1700000000.000", true, &v), 0);
	cr_assert_eq(v, 1700000000);
	cr_assert_eq(seconds("-1.5", false, &v), 0);
	cr_assert_eq(v, -2);
	cr_assert_eq(seconds("999999999999999", false, &v), 0);
	cr_assert_eq(seconds("1000000000000000", false, &v), JWT_JSON_E_RANGE);
	cr_assert_eq(seconds("1.7e9", false, &v), JWT_JSON_E_RANGE);
}

Test(jwt_json, refuses_documents_over_the_size_limit)
{
	static char big[JWT_JSON_MAX_LEN + 2];
	struct jwt_json j;
	struct jwt_json_tok t[2];

	memset(big, ' ', sizeof(big));
	big[0] = '0';
	cr_assert_eq(jwt_json_parse(&j, t, 2, big, sizeof(big)), JWT_JSON_E_TOO_LARGE);
	cr_assert_eq(jwt_json_parse(&j, t, 2, big, JWT_JSON_MAX_LEN), 0);
}

Test(jwt_json, names_every_error)
{
	for (int e = 0; e >= JWT_JSON_E_DUPLICATE; e--)
		cr_assert_neq(strcmp(jwt_json_strerror(e), "JSON error"), 0, "%d", e);
}
