/*
 * auth/jwt_json.h - a small validating JSON parser (RFC 8259) for JWT headers and claim
 * sets, which arrive from the network: strict grammar, UTF-8 checked, bounded depth and
 * token count, nothing allocated. Pure: any thread; the caller provides the token array.
 *
 * The document becomes a flat array of tokens in document order (jsmn's layout): an object
 * is followed by its members as key, value, key, value...; every token records where its
 * subtree ends, so skipping a value is one step. Strings keep their raw (escaped) bytes;
 * jwt_json_string() decodes one into caller memory when it is needed.
 *
 *   {"sub":"jack","aud":["a","b"]}  ->  0 object(2)  1 "sub"  2 "jack"  3 "aud"
 *                                       4 array(2)  5 "a"  6 "b"
 */
#ifndef AUTH_JWT_JSON_H
#define AUTH_JWT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JWT_JSON_MAX_DEPTH 16		/* nested objects/arrays */
#define JWT_JSON_MAX_LEN (1u << 20)	/* document bytes */

enum jwt_json_type {
	JWT_JSON_OBJECT = 1,
	JWT_JSON_ARRAY,
	JWT_JSON_STRING,
	JWT_JSON_NUMBER,
	JWT_JSON_TRUE,
	JWT_JSON_FALSE,
	JWT_JSON_NULL,
};

enum jwt_json_err {
	JWT_JSON_E_SYNTAX = -1,		/* not JSON */
	JWT_JSON_E_DEPTH = -2,		/* nested deeper than JWT_JSON_MAX_DEPTH */
	JWT_JSON_E_TOKENS = -3,		/* more values than the token array holds */
	JWT_JSON_E_UTF8 = -4,		/* not UTF-8, or an unpaired \u surrogate */
	JWT_JSON_E_TOO_LARGE = -5,	/* over JWT_JSON_MAX_LEN */
	JWT_JSON_E_TYPE = -6,		/* (accessors) the value has another type */
	JWT_JSON_E_SPACE = -7,		/* (accessors) the decoded string does not fit */
	JWT_JSON_E_NUL = -8,		/* (accessors) the string holds \u0000 */
	JWT_JSON_E_RANGE = -9,		/* (accessors) number out of range or with an exponent */
	JWT_JSON_E_DUPLICATE = -10,	/* (jwt_json_find) the key appears twice */
};

struct jwt_json_tok {
	uint8_t type;		/* enum jwt_json_type */
	uint32_t start;		/* first byte in the source; strings: after the quote */
	uint32_t len;		/* bytes in the source; strings: between the quotes, escaped */
	uint32_t count;		/* objects: members; arrays: elements; others: 0 */
	uint32_t next;		/* index of the first token after this one's subtree */
};

struct jwt_json {
	const char *src;	/* the document; must outlive the tokens' use */
	struct jwt_json_tok *toks;
	uint32_t cap;		/* tokens in toks */
	uint32_t n;		/* tokens used; toks[0] is the root */
};

/* Parses src[0..len), one JSON value with optional whitespace around it, into toks[0..cap).
 * Returns 0 or a negative JWT_JSON_E_*; a short, static description of the first error is
 * in jwt_json_strerror(). */
int jwt_json_parse(struct jwt_json *j, struct jwt_json_tok *toks, uint32_t cap, const char *src,
		   size_t len);

const char *jwt_json_strerror(int err);

/* Index of the value of member `key` of object token obj in *val. Returns 1 when found, 0
 * when absent, JWT_JSON_E_TYPE when obj is not an object, JWT_JSON_E_DUPLICATE when two
 * members have that name (keys compare after unescaping; RFC 7519 section 4 lets a
 * consumer reject duplicates, and an ambiguous `sub` or `exp` must not be guessed). */
int jwt_json_find(const struct jwt_json *j, uint32_t obj, const char *key, uint32_t *val);

/* Decodes string token tok into out[0..cap) with a NUL. Returns the length, or
 * JWT_JSON_E_TYPE / JWT_JSON_E_SPACE / JWT_JSON_E_NUL. */
ssize_t jwt_json_string(const struct jwt_json *j, uint32_t tok, char *out, size_t cap);

/* True when token tok is a string equal to s (compared after unescaping). */
bool jwt_json_string_eq(const struct jwt_json *j, uint32_t tok, const char *s);

/* A NumericDate (RFC 7519 section 2): a number of seconds, maybe with a fraction, which is
 * dropped (round_up false) or rounds up (round_up true) so that either way the caller errs
 * on the safe side. Exponents and magnitudes over 10^15 give JWT_JSON_E_RANGE. */
int jwt_json_seconds(const struct jwt_json *j, uint32_t tok, bool round_up, int64_t *out);

#endif
