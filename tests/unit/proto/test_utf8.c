/*
 * tests/unit/proto/test_utf8.c - proto/utf8.c against RFC 3629 section 4 (and the Unicode
 * Standard's table 3-7): boundaries of each sequence length, overlongs, surrogates, the
 * U+10FFFF ceiling, streams split anywhere, and an exhaustive comparison with a naive
 * decoder over every input of up to three bytes.
 */
#include "proto/utf8.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

/* Input flush against a PROT_NONE page, so a one-byte over-read faults. */

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

static bool valid_str(const char *s, size_t len)
{
	struct guard g = guard_copy(s, len);
	bool ok = utf8_is_valid(g.p, len);

	guard_free(&g);
	return ok;
}

#define VALID(lit) valid_str((lit), sizeof(lit) - 1)

/* The definition, decoded the slow way: what the DFA must agree with. */
static bool naive_valid(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t b = p[i];
		uint32_t cp;
		uint32_t min;
		size_t n;

		if (b < 0x80) {
			i++;
			continue;
		}
		if ((b & 0xe0) == 0xc0) {
			n = 1, cp = b & 0x1f, min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			n = 2, cp = b & 0x0f, min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			n = 3, cp = b & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* RFC 3629 section 4: the empty string is a valid UTF8-octets production. */
Test(utf8, accepts_empty_input)
{
	cr_assert(utf8_is_valid("", 0));
	cr_assert(utf8_is_valid(NULL, 0));
}

/* RFC 3629 section 4: UTF8-1 = %x00-7F, NUL included (a STOMP frame ends with one). */
Test(utf8, accepts_every_ascii_byte_including_nul)
{
	uint8_t all[128];

	for (int i = 0; i < 128; i++)
		all[i] = (uint8_t)i;
	cr_assert(valid_str((const char *)all, sizeof(all)));
}

/* RFC 3629 section 3: the first and last code point of each sequence length. */
Test(utf8, accepts_first_and_last_code_point_of_each_length)
{
	cr_assert(VALID("\xc2\x80"));		/* U+0080 */
	cr_assert(VALID("\xdf\xbf"));		/* U+07FF */
	cr_assert(VALID("\xe0\xa0\x80"));	/* U+0800 */
	cr_assert(VALID("\xef\xbf\xbf"));	/* U+FFFF */
	cr_assert(VALID("\xf0\x90\x80\x80"));	/* U+10000 */
	cr_assert(VALID("\xf4\x8f\xbf\xbf"));	/* U+10FFFF */
}

/* RFC 3629 section 4: mixed text, as a JSON body with non-Latin text would be. */
Test(utf8, accepts_mixed_text)
{
	cr_assert(VALID("{\"msg\":\"h\xc3\xa9llo \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 "
			"\xf0\x9f\x98\x80\"}"));
}

/* RFC 3629 section 3: "it is prohibited to decode an invalid sequence" - overlongs. */
Test(utf8, rejects_overlong_two_byte_forms)
{
	cr_assert_not(VALID("\xc0\x80"));	/* U+0000 the long way (Java's modified UTF-8) */
	cr_assert_not(VALID("\xc0\xaf"));	/* '/' - the classic path traversal trick */
	cr_assert_not(VALID("\xc1\xbf"));	/* U+007F */
}

/* RFC 3629 section 4: UTF8-3 starting E0 needs A0..BF next. */
Test(utf8, rejects_overlong_three_byte_forms)
{
	cr_assert_not(VALID("\xe0\x80\x80"));
	cr_assert_not(VALID("\xe0\x9f\xbf"));	/* U+07FF the long way */
}

/* RFC 3629 section 4: UTF8-4 starting F0 needs 90..BF next. */
Test(utf8, rejects_overlong_four_byte_forms)
{
	cr_assert_not(VALID("\xf0\x80\x80\x80"));
	cr_assert_not(VALID("\xf0\x8f\xbf\xbf"));	/* U+FFFF the long way */
}

/* RFC 3629 section 3: U+D800..U+DFFF are UTF-16 surrogates, never characters. */
Test(utf8, rejects_surrogates)
{
	cr_assert_not(VALID("\xed\xa0\x80"));		/* U+D800 */
	cr_assert_not(VALID("\xed\xbf\xbf"));		/* U+DFFF */
	cr_assert_not(VALID("\xed\xa0\xbd\xed\xb8\x80"));	/* CESU-8 pair for U+1F600 */
}

/* RFC 3629 section 4: the neighbours of the surrogate block are fine. */
Test(utf8, accepts_code_points_next_to_surrogates)
{
	cr_assert(VALID("\xed\x9f\xbf"));	/* U+D7FF */
	cr_assert(VALID("\xee\x80\x80"));	/* U+E000 */
}

/* RFC 3629 section 3: UTF-8 stops at U+10FFFF. */
Test(utf8, rejects_code_points_above_10ffff)
{
	cr_assert_not(VALID("\xf4\x90\x80\x80"));	/* U+110000 */
	cr_assert_not(VALID("\xf5\x80\x80\x80"));
	cr_assert_not(VALID("\xf7\xbf\xbf\xbf"));
	cr_assert_not(VALID("\xf8\x88\x80\x80\x80"));	/* old 5-byte form */
	cr_assert_not(VALID("\xfc\x84\x80\x80\x80\x80"));	/* old 6-byte form */
}

/* RFC 3629 section 1: octets C0, C1, F5..FF never appear. */
Test(utf8, rejects_bytes_that_never_appear)
{
	static const uint8_t never[] = { 0xc0, 0xc1, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
					 0xfb, 0xfc, 0xfd, 0xfe, 0xff };

	for (size_t i = 0; i < sizeof(never); i++)
		cr_assert_not(valid_str((const char *)&never[i], 1), "byte %02x", never[i]);
}

/* RFC 3629 section 4: a continuation byte must follow a lead byte. */
Test(utf8, rejects_stray_continuation_bytes)
{
	cr_assert_not(VALID("\x80"));
	cr_assert_not(VALID("a\xbf"));
	cr_assert_not(VALID("\xc3\xa9\xa9"));	/* one continuation too many */
}

/* RFC 3629 section 4: a sequence cut short by the end of input. */
Test(utf8, rejects_sequence_truncated_at_end)
{
	cr_assert_not(VALID("\xc3"));
	cr_assert_not(VALID("\xe2\x82"));
	cr_assert_not(VALID("\xf0\x9f\x98"));
}

/* RFC 3629 section 4: a sequence interrupted by an ASCII byte or a new lead byte. */
Test(utf8, rejects_sequence_interrupted_by_another_byte)
{
	cr_assert_not(VALID("\xe2\x82" "a"));
	cr_assert_not(VALID("\xe2\xc3\xa9"));
}

/* The ASCII fast path must still see a bad byte wherever it sits in a word. */
Test(utf8, finds_bad_byte_at_every_offset_of_long_ascii)
{
	char buf[100];

	for (size_t at = 0; at < sizeof(buf); at++) {
		memset(buf, 'x', sizeof(buf));
		buf[at] = (char)0xff;
		cr_assert_not(valid_str(buf, sizeof(buf)), "bad byte at %zu", at);
		buf[at] = (char)0xc3;
		cr_assert_not(valid_str(buf, at + 1), "truncated lead at %zu", at);
	}
}

/* The DFA agrees with the definition on every input of one, two and three bytes. */
Test(utf8, agrees_with_naive_decoder_on_all_short_inputs, .timeout = 60)
{
	uint8_t b[3];

	for (uint32_t v = 0; v < 1u << 24; v++) {
		b[0] = (uint8_t)(v >> 16);
		b[1] = (uint8_t)(v >> 8);
		b[2] = (uint8_t)v;
		if (utf8_is_valid(b, 3) != naive_valid(b, 3))
			cr_assert_fail("3 bytes %02x %02x %02x", b[0], b[1], b[2]);
		if ((v & 0xff) == 0 && utf8_is_valid(b, 2) != naive_valid(b, 2))
			cr_assert_fail("2 bytes %02x %02x", b[0], b[1]);
	}
}

/* Four-byte inputs: every lead F0..FF against a spread of the other three bytes. */
Test(utf8, agrees_with_naive_decoder_on_four_byte_inputs, .timeout = 60)
{
	static const uint8_t tail[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
					0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff };
	uint8_t b[4];

	for (int lead = 0xe0; lead <= 0xff; lead++)
		for (size_t i = 0; i < sizeof(tail); i++)
			for (size_t j = 0; j < sizeof(tail); j++)
				for (size_t k = 0; k < sizeof(tail); k++) {
					b[0] = (uint8_t)lead;
					b[1] = tail[i];
					b[2] = tail[j];
					b[3] = tail[k];
					cr_assert_eq(utf8_is_valid(b, 4), naive_valid(b, 4),
						     "%02x %02x %02x %02x", b[0], b[1], b[2],
						     b[3]);
				}
}

/* RFC 6455 section 8.1 reads text across fragments: a stream reports PARTIAL mid-sequence. */
Test(utf8, stream_reports_partial_inside_a_sequence)
{
	struct utf8_stream s;

	utf8_stream_init(&s);
	cr_assert_eq(utf8_stream_feed(&s, "ab\xf0\x9f", 4), UTF8_PARTIAL);
	cr_assert_eq(utf8_stream_status(&s), UTF8_PARTIAL);
	cr_assert_eq(utf8_stream_feed(&s, "\x98", 1), UTF8_PARTIAL);
	cr_assert_eq(utf8_stream_feed(&s, "\x80", 1), UTF8_COMPLETE);
	cr_assert_eq(utf8_stream_feed(&s, NULL, 0), UTF8_COMPLETE);
}

/* A stream gives the whole-buffer verdict wherever the input is cut. */
Test(utf8, stream_gives_same_verdict_at_every_split_point)
{
	static const char *const cases[] = {
		"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",	/* Autobahn 6.2 "kosme" */
		"\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf",
		"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64ited",
		"abc\xf4\x90\x80\x80",
		"\xe0\x80\xaf",
		"\xc3",
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t len = strlen(cases[c]);
		bool whole = utf8_is_valid(cases[c], len);

		for (size_t cut = 0; cut <= len; cut++) {
			struct utf8_stream s;
			enum utf8_status st;

			utf8_stream_init(&s);
			utf8_stream_feed(&s, cases[c], cut);
			st = utf8_stream_feed(&s, cases[c] + cut, len - cut);
			cr_assert_eq(st == UTF8_COMPLETE, whole, "case %zu cut %zu", c, cut);
		}
	}
}

/* RFC 6455 section 8.1 lets an endpoint fail as soon as the bytes cannot be UTF-8
 * (Autobahn 6.4 "fail fast"): the verdict comes at the bad byte, not at the end. */
Test(utf8, stream_fails_at_first_impossible_byte)
{
	struct utf8_stream s;

	utf8_stream_init(&s);
	cr_assert_eq(utf8_stream_feed(&s, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11),
		     UTF8_COMPLETE);
	cr_assert_eq(utf8_stream_feed(&s, "\xf4\x90", 2), UTF8_INVALID);
}

/* Once invalid, a stream never recovers, whatever follows. */
Test(utf8, stream_stays_invalid)
{
	struct utf8_stream s;

	utf8_stream_init(&s);
	cr_assert_eq(utf8_stream_feed(&s, "\xff", 1), UTF8_INVALID);
	cr_assert_eq(utf8_stream_feed(&s, "abc", 3), UTF8_INVALID);
	cr_assert_eq(utf8_stream_status(&s), UTF8_INVALID);
}

/* Cutting a reason string to fit a close frame must not split a character. */
Test(utf8, trim_partial_drops_only_an_incomplete_last_character)
{
	static const char s[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";	/* a é € 😀 */

	cr_assert_eq(utf8_trim_partial(s, 0), 0);
	cr_assert_eq(utf8_trim_partial(s, 1), 1);
	cr_assert_eq(utf8_trim_partial(s, 2), 1);
	cr_assert_eq(utf8_trim_partial(s, 3), 3);
	cr_assert_eq(utf8_trim_partial(s, 4), 3);
	cr_assert_eq(utf8_trim_partial(s, 5), 3);
	cr_assert_eq(utf8_trim_partial(s, 6), 6);
	cr_assert_eq(utf8_trim_partial(s, 9), 6);
	cr_assert_eq(utf8_trim_partial(s, 10), 10);
}
