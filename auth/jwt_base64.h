/*
 * auth/jwt_base64.h - base64url without padding, the encoding of every JWS segment
 * (RFC 7515 section 2, RFC 4648 section 5). Pure: no allocation, no globals, any thread.
 *
 * Decoding is strict, because a token is hostile input and should have one spelling only:
 * the 64 URL-safe characters and nothing else (no '=', no whitespace, no '+' or '/'), a
 * length that is not 1 mod 4, and zero bits in the unused low bits of the last character.
 */
#ifndef AUTH_JWT_BASE64_H
#define AUTH_JWT_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JWT_B64_E_INVALID (-1)	/* not canonical base64url */
#define JWT_B64_E_SPACE (-2)	/* out is too small */

/* Bytes that decoding len characters can produce at most. */
static inline size_t jwt_b64url_decoded_max(size_t len)
{
	return len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
}

/* Characters that encoding len bytes produces (no NUL counted). */
static inline size_t jwt_b64url_encoded_len(size_t len)
{
	return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

/* Decodes in[0..len) into out[0..cap). Returns the decoded length, JWT_B64_E_INVALID or
 * JWT_B64_E_SPACE; out may be partly written on failure. */
ssize_t jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Encodes in[0..len) into out[0..cap) and adds a NUL. Returns the characters written (no
 * NUL counted) or JWT_B64_E_SPACE when cap < jwt_b64url_encoded_len(len) + 1. */
ssize_t jwt_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);

#endif
