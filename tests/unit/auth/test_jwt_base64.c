/*
 * tests/unit/auth/test_jwt_base64.c - auth/jwt_base64.c against RFC 4648 section 5 (and
 * 3.5, canonical encoding) and against libsodium's URL-safe, no-padding codec.
 */
#include "auth/jwt_base64.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

static ssize_t decode_guarded(const char *s, uint8_t *out, size_t cap)
{
	struct guarded_buf gb;
	const char *p = guarded_buf_init(&gb, s, strlen(s));
	ssize_t n = jwt_b64url_decode(p, strlen(s), out, cap);

	guarded_buf_fini(&gb);
	return n;
}

/* RFC 4648 section 10 test vectors (URL-safe alphabet, padding dropped) */
Test(jwt_base64, decodes_rfc4648_vectors)
{
	static const char *enc[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
	static const char *dec[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	uint8_t out[16];

	for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++) {
		ssize_t n = decode_guarded(enc[i], out, sizeof(out));

		cr_assert_eq(n, (ssize_t)strlen(dec[i]), "vector %zu", i);
		cr_assert(!memcmp(out, dec[i], (size_t)n), "vector %zu", i);
	}
}

/* RFC 4648 section 5: '-' and '_' replace '+' and '/' */
Test(jwt_base64, uses_the_url_safe_alphabet)
{
	uint8_t out[4];

	cr_assert_eq(decode_guarded("-_-_", out, sizeof(out)), 3);
	cr_assert_eq(out[0], 0xfb);
	cr_assert_eq(out[1], 0xff);
	cr_assert_eq(out[2], 0xbf);
	cr_assert_eq(decode_guarded("+/+/", out, sizeof(out)), JWT_B64_E_INVALID);
}

/* RFC 7515 section 2: no padding in JWS */
Test(jwt_base64, rejects_padding_and_whitespace)
{
	uint8_t out[8];

	cr_assert_eq(decode_guarded("Zg==", out, sizeof(out)), JWT_B64_E_INVALID);
	cr_assert_eq(decode_guarded("Zm8=", out, sizeof(out)), JWT_B64_E_INVALID);
	cr_assert_eq(decode_guarded("Zm9v\n", out, sizeof(out)), JWT_B64_E_INVALID);
	cr_assert_eq(decode_guarded(" Zm9v", out, sizeof(out)), JWT_B64_E_INVALID);
}

Test(jwt_base64, rejects_a_length_of_one_mod_four)
{
	uint8_t out[8];

	cr_assert_eq(decode_guarded("Z", out, sizeof(out)), JWT_B64_E_INVALID);
	cr_assert_eq(decode_guarded("Zm9vY", out, sizeof(out)), JWT_B64_E_INVALID);
}

/* RFC 4648 section 3.5: the unused bits must be zero, or one value has two spellings */
Test(jwt_base64, rejects_nonzero_trailing_bits)
{
	uint8_t out[8];

	cr_assert_eq(decode_guarded("Zh", out, sizeof(out)), JWT_B64_E_INVALID);	/* Zg */
	cr_assert_eq(decode_guarded("Zm9", out, sizeof(out)), JWT_B64_E_INVALID);	/* Zm8 */
}

Test(jwt_base64, reports_a_small_output_buffer)
{
	uint8_t out[2];

	cr_assert_eq(decode_guarded("Zm9v", out, sizeof(out)), JWT_B64_E_SPACE);
	cr_assert_eq(jwt_b64url_encode((const uint8_t *)"foo", 3, (char *)out, sizeof(out)),
		     JWT_B64_E_SPACE);
}

Test(jwt_base64, rejects_every_byte_outside_the_alphabet)
{
	static const char ok[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t out[8];

	for (int c = 0; c < 256; c++) {
		char s[5] = { 'A', 'A', 'A', (char)c, 0 };
		ssize_t n = jwt_b64url_decode(s, 4, out, sizeof(out));
		bool valid = c != 0 && strchr(ok, c);

		cr_assert_eq(n >= 0, valid, "byte %d", c);
	}
}

/* Property: encode then decode is the identity, and both agree with libsodium. */
Test(jwt_base64, round_trips_and_matches_libsodium_for_every_length_to_200)
{
	uint8_t in[200];
	uint8_t back[200];
	char mine[300];
	char theirs[300];

	cr_assert(sodium_init() >= 0);
	randombytes_buf(in, sizeof(in));
	for (size_t len = 0; len <= sizeof(in); len++) {
		ssize_t n = jwt_b64url_encode(in, len, mine, sizeof(mine));

		sodium_bin2base64(theirs, sizeof(theirs), in, len,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		cr_assert_eq(n, (ssize_t)jwt_b64url_encoded_len(len));
		cr_assert_str_eq(mine, theirs, "len %zu", len);
		cr_assert_eq(decode_guarded(mine, back, sizeof(back)), (ssize_t)len);
		cr_assert(!memcmp(in, back, len), "len %zu", len);
	}
}
