/*
 * tests/fuzz/fuzz_jwt.c - libFuzzer target for the token login path: auth/jwt.c,
 * auth/jwt_json.c, auth/jwt_base64.c, and the destination patterns a token's herald_sub /
 * herald_send claims hold (auth/acl.c). Built with clang -fsanitize=fuzzer,address,undefined,
 * and as a replay binary under gcc + ASan/UBSan over corpus/fuzz_jwt/.
 *
 * Byte 0 picks the mode (low 3 bits), byte 1 a parameter; the rest is the input:
 *   0 raw token   -> jwt_verify with HS256, RS256 and ES256 keys configured
 *   1 signed      -> "header JSON \n claims JSON", signed here (byte 1: HS256 / RS256 /
 *                    ES256 / a wrong key) so the claim parser is reached, then verified
 *   2 JSON        -> jwt_json_parse with byte 1 tokens; every accessor on every token
 *   3 base64url   -> jwt_b64url_decode, compared with libsodium's decoder (on ASCII:
 *                    libsodium 1.0.18 takes bytes >= 0x80 for '_'), re-encoded
 *   4 patterns    -> "pattern \n destination": acl_pattern_covers against topic_match
 * Checked: results within their documented ranges, claims well formed on success, the
 * token parser never reads outside the token, the base64 decoder agrees with libsodium
 * and is canonical, and pattern matching agrees with the topic matcher on literal topics.
 */
#include "auth/acl.h"
#include "auth/jwt.h"
#include "auth/jwt_base64.h"
#include "auth/jwt_json.h"
#include "auth/users.h"
#include "core/topic_match.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_jwt: check failed at line %d: %s\n", __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret!"
#define NOW 1700000000ll

struct fixture {
	struct jwt_keys *keys;
	EVP_PKEY *rsa;
	EVP_PKEY *ec;
	EVP_PKEY *other_ec;	/* signs tokens that must not verify */
};

static char *pubkey_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	char *out;

	CHECK(b && PEM_write_bio_PUBKEY(b, k));
	n = BIO_get_mem_data(b, &data);
	out = malloc((size_t)n + 1);
	CHECK(out);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	BIO_free(b);
	return out;
}

static struct fixture *fixture(void)
{
	static struct fixture f;
	char err[128];
	char *pem;

	if (f.keys)
		return &f;
	CHECK(sodium_init() >= 0);
	f.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	f.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	f.other_ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	CHECK(f.rsa && f.ec && f.other_ec);
	f.keys = jwt_keys_create();
	CHECK(!jwt_keys_set_hs256(f.keys, SECRET, strlen(SECRET), err, sizeof(err)));
	pem = pubkey_pem(f.rsa);
	CHECK(!jwt_keys_set_rs256_pem(f.keys, pem, strlen(pem), err, sizeof(err)));
	free(pem);
	pem = pubkey_pem(f.ec);
	CHECK(!jwt_keys_set_es256_pem(f.keys, pem, strlen(pem), err, sizeof(err)));
	free(pem);
	return &f;
}

static void check_list(const struct jwt_claims *c, const struct jwt_list *l)
{
	CHECK(l->n <= JWT_LIST_MAX);
	CHECK(l->present || l->n == 0);
	for (unsigned i = 0; i < l->n; i++) {
		const char *s = jwt_list_at(c, l, i);

		CHECK(l->off[i] < c->pool_len);
		CHECK(memchr(s, '\0', c->pool_len - l->off[i]));
		CHECK(strlen(s) <= JWT_ITEM_MAX);
	}
}

static void check_result(int rc, const struct jwt_claims *c, const char *reason, int64_t now)
{
	CHECK(rc <= 0 && rc >= JWT_E_CLAIMS);
	CHECK(rc == 0 || (reason && reason[0]));
	if (rc)
		return;
	CHECK(users_name_is_valid(c->sub, strlen(c->sub)));
	CHECK(now < c->exp);
	CHECK(c->nbf <= now);
	CHECK(c->pool_len <= JWT_POOL_BYTES);
	check_list(c, &c->subscribe);
	check_list(c, &c->send);
	check_list(c, &c->tags);
	check_list(c, &c->vhosts);
	for (unsigned i = 0; i < c->subscribe.n; i++) {
		const char *p = jwt_list_at(c, &c->subscribe, i);

		CHECK(acl_pattern_is_valid(p, strlen(p)));
	}
}

/* Verifies data[0..len) copied to an exact-size allocation, so ASan sees any over-read. */
static int verify_exact(const char *data, size_t len, int64_t now, struct jwt_claims *c,
			const char **reason)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	CHECK(copy);
	memcpy(copy, data, len);
	*reason = NULL;
	rc = jwt_verify(fixture()->keys, copy, len, now, c, reason);
	free(copy);
	return rc;
}

static void mode_raw(const char *data, size_t len, uint8_t param)
{
	struct jwt_claims c;
	const char *reason;
	int64_t now = NOW + (int64_t)(param - 128) * 1000;
	int rc = verify_exact(data, len, now, &c, &reason);

	check_result(rc, &c, reason, now);
	CHECK(jwt_looks_like_token(data, len) || rc < 0);
}

static size_t sign(uint8_t how, const char *in, size_t len, uint8_t *sig)
{
	struct fixture *f = fixture();
	EVP_PKEY *k = how == 1 ? f->rsa : how == 2 ? f->ec : f->other_ec;
	EVP_MD_CTX *ctx;
	uint8_t der[512];
	size_t n = sizeof(der);

	if (how == 0) {
		crypto_auth_hmacsha256_state st;

		crypto_auth_hmacsha256_init(&st, (const uint8_t *)SECRET, strlen(SECRET));
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)in, len);
		crypto_auth_hmacsha256_final(&st, sig);
		return 32;
	}
	ctx = EVP_MD_CTX_new();
	CHECK(ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1);
	CHECK(EVP_DigestSign(ctx, der, &n, (const uint8_t *)in, len) == 1);
	EVP_MD_CTX_free(ctx);
	if (how == 1) {
		memcpy(sig, der, n);
		return n;
	}
	{
		const uint8_t *p = der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);

		CHECK(es);
		BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
		ECDSA_SIG_free(es);
	}
	return 64;
}

/* "header\nclaims": both encoded, signed as byte 1 says, verified. */
static void mode_signed(const char *data, size_t len, uint8_t param)
{
	const char *nl = memchr(data, '\n', len);
	size_t hlen = nl ? (size_t)(nl - data) : len;
	size_t clen = nl ? len - hlen - 1 : 0;
	size_t cap = jwt_b64url_encoded_len(hlen) + jwt_b64url_encoded_len(clen) + 700;
	char *tok = malloc(cap);
	uint8_t sig[512];
	size_t n;
	size_t sig_len;
	struct jwt_claims c;
	const char *reason;
	int64_t now = NOW + (int64_t)(param >> 2) * 97;
	int rc;

	CHECK(tok);
	n = (size_t)jwt_b64url_encode((const uint8_t *)data, hlen, tok, cap);
	tok[n++] = '.';
	n += (size_t)jwt_b64url_encode((const uint8_t *)(nl ? nl + 1 : ""), clen, tok + n, cap - n);
	sig_len = sign(param & 3, tok, n, sig);
	tok[n++] = '.';
	n += (size_t)jwt_b64url_encode(sig, sig_len, tok + n, cap - n);
	rc = verify_exact(tok, n, now, &c, &reason);
	check_result(rc, &c, reason, now);
	if ((param & 3) == 3)
		CHECK(rc != 0);	/* signed by a key we do not trust */
	free(tok);
}

static void check_tokens(const struct jwt_json *j, size_t len)
{
	for (uint32_t i = 0; i < j->n; i++) {
		const struct jwt_json_tok *t = &j->toks[i];
		char buf[64];
		int64_t v;
		uint32_t val;

		CHECK(t->type >= JWT_JSON_OBJECT && t->type <= JWT_JSON_NULL);
		CHECK(t->start <= len && t->len <= len - t->start);
		CHECK(t->next > i && t->next <= j->n);
		if (t->type != JWT_JSON_OBJECT && t->type != JWT_JSON_ARRAY)
			CHECK(t->next == i + 1 && t->count == 0);
		if (t->type == JWT_JSON_STRING) {
			ssize_t n = jwt_json_string(j, i, buf, sizeof(buf));

			CHECK(n >= JWT_JSON_E_NUL || n == JWT_JSON_E_SPACE);
			if (n >= 0)
				CHECK((size_t)n < sizeof(buf) && buf[n] == '\0' && (size_t)n <= 3 * t->len);
		}
		if (t->type == JWT_JSON_NUMBER) {
			int r = jwt_json_seconds(j, i, i & 1, &v);

			CHECK(r == 0 || r == JWT_JSON_E_RANGE);
		}
		if (t->type == JWT_JSON_OBJECT) {
			int r = jwt_json_find(j, i, "sub", &val);

			CHECK(r == 0 || r == JWT_JSON_E_DUPLICATE || (r == 1 && val > i && val < t->next));
		}
	}
}

static void mode_json(const char *data, size_t len, uint8_t param)
{
	uint32_t cap = 1 + param % 64;
	struct jwt_json_tok toks[64];
	struct jwt_json j;
	char *copy = malloc(len ? len : 1);
	int rc;

	CHECK(copy);
	memcpy(copy, data, len);
	rc = jwt_json_parse(&j, toks, cap, copy, len);
	CHECK(rc <= 0 && rc >= JWT_JSON_E_TOO_LARGE);
	CHECK(jwt_json_strerror(rc)[0]);
	if (rc == 0) {
		CHECK(j.n >= 1 && j.n <= cap && toks[0].next == j.n);
		check_tokens(&j, len);
	}
	free(copy);
}

static void mode_base64(const char *data, size_t len)
{
	size_t cap = jwt_b64url_decoded_max(len) + 1;
	uint8_t *mine = malloc(cap);
	uint8_t *theirs = malloc(cap);
	char *copy = malloc(len ? len : 1);
	char *again = malloc(len + 2);
	size_t theirs_len = 0;
	ssize_t n;
	int rc;

	CHECK(mine && theirs && copy && again);
	memcpy(copy, data, len);
	n = jwt_b64url_decode(copy, len, mine, cap);
	rc = sodium_base642bin(theirs, cap, copy, len, NULL, &theirs_len, NULL,
			       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	/* libsodium 1.0.18 (Debian 12) decodes any byte >= 0x80 as '_' in the URL-safe
	 * alphabet (found by this target); we refuse them, so compare on ASCII only */
	for (size_t i = 0; i < len; i++) {
		if ((uint8_t)data[i] >= 0x80) {
			CHECK(n == JWT_B64_E_INVALID);
			rc = -1;
		}
	}
	CHECK((n >= 0) == (rc == 0));
	if (n >= 0) {
		CHECK((size_t)n == theirs_len && !memcmp(mine, theirs, theirs_len));
		CHECK(jwt_b64url_encode(mine, (size_t)n, again, len + 2) == (ssize_t)len);
		CHECK(!memcmp(again, data, len));	/* canonical: one spelling */
		if (n > 0)
			CHECK(jwt_b64url_decode(copy, len, mine, (size_t)n - 1) == JWT_B64_E_SPACE);
	}
	free(mine);
	free(theirs);
	free(copy);
	free(again);
}

static bool has_wild_word(const char *s, size_t len)
{
	return topic_is_pattern(s, len);
}

static void mode_patterns(const char *data, size_t len)
{
	const char *nl = memchr(data, '\n', len);
	size_t plen = nl ? (size_t)(nl - data) : len;
	size_t dlen = nl ? len - plen - 1 : 0;
	char *p = malloc(plen ? plen : 1);
	char *d = malloc(dlen ? dlen : 1);
	bool valid;
	bool covered;

	CHECK(p && d);
	memcpy(p, data, plen);
	memcpy(d, nl ? nl + 1 : "", dlen);
	valid = acl_pattern_is_valid(p, plen);
	covered = acl_pattern_covers(p, plen, "jack", d, dlen);
	/* literal topics under /topic/: the same answer as the topic-exchange matcher */
	if (valid && plen > 7 && dlen > 7 && !memcmp(p, "/topic/", 7) && !memcmp(d, "/topic/", 7) &&
	    !has_wild_word(d + 7, dlen - 7) && !memchr(p, '{', plen) && dlen <= ACL_DEST_MAX)
		CHECK(covered == topic_match(p + 7, plen - 7, d + 7, dlen - 7));
	if (valid && plen == dlen && !memcmp(p, d, plen) && !memchr(p, '{', plen))
		CHECK(covered);	/* every valid pattern covers itself */
	free(p);
	free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + 2;
	size_t len;

	if (size < 2)
		return 0;
	len = size - 2;
	switch (data[0] & 7) {
	case 0:
		mode_raw(in, len, data[1]);
		break;
	case 1:
		mode_signed(in, len, data[1]);
		break;
	case 2:
		mode_json(in, len, data[1]);
		break;
	case 3:
		mode_base64(in, len);
		break;
	case 4:
		mode_patterns(in, len);
		break;
	default:
		break;
	}
	return 0;
}
