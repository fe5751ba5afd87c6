/*
 * auth/jwt_base64.c - table-driven base64url (RFC 4648 section 5), no padding.
 * A quantum of 4 characters gives 3 bytes; a tail of 2 or 3 characters gives 1 or 2 bytes
 * and leaves 4 or 2 low bits that must be zero (RFC 4648 section 3.5, canonical encoding).
 */
#include "auth/jwt_base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* value + 1; 0: not in the alphabet (so the zero fill needs no override) */
static const uint8_t value_of[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
	['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
	['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
	['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
	['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
	['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
	['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

ssize_t jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	if (len % 4 == 1)
		return JWT_B64_E_INVALID;
	if (jwt_b64url_decoded_max(len) > cap)
		return JWT_B64_E_SPACE;
	for (size_t i = 0; i < len; i++) {
		uint8_t v = value_of[s[i]];

		if (v == 0)
			return JWT_B64_E_INVALID;
		acc = acc << 6 | (uint32_t)(v - 1);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* leftover bits (2 or 4) belong to no byte: a second spelling if they are not zero */
	if (acc != 0)
		return JWT_B64_E_INVALID;
	return (ssize_t)o;
}

ssize_t jwt_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	size_t o = 0;
	size_t i = 0;

	if (cap < jwt_b64url_encoded_len(len) + 1)
		return JWT_B64_E_SPACE;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		out[o++] = alphabet[v & 63];
	}
	if (len - i == 1) {
		out[o++] = alphabet[in[i] >> 2];
		out[o++] = alphabet[(in[i] & 3) << 4];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

		out[o++] = alphabet[v >> 10];
		out[o++] = alphabet[v >> 4 & 63];
		out[o++] = alphabet[(v & 15) << 2];
	}
	out[o] = '\0';
	return (ssize_t)o;
}
