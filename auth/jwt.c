/*
 * auth/jwt.c - compact JWS verification for logins. Order matters for hostile input:
 * limits first, then the header (alg must name a configured key), then the signature over
 * the first two parts as sent, and only then the claims, so unauthenticated bytes never
 * reach the claim parser beyond the small header.
 */
#include "auth/jwt.h"

#include "auth/acl.h"
#include "auth/jwt_base64.h"
#include "auth/jwt_json.h"
#include "auth/users.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define MAX_SIG_BYTES 1024		/* RSA-8192 */
#define MAX_POLICY_STR 256
#define MAX_LEEWAY_S 3600

struct jwt_keys {
	unsigned algs;			/* enum jwt_alg bits with a key */
	uint8_t *secret;		/* HS256; wiped on destroy */
	size_t secret_len;
	EVP_PKEY *rsa;			/* RS256 */
	EVP_PKEY *ec;			/* ES256, P-256 */
	EVP_MD *sha256;			/* fetched once, not per verify */
	char audience[MAX_POLICY_STR];	/* "" when not checked */
	char issuer[MAX_POLICY_STR];
	uint32_t leeway_s;
};

struct jwt_keys *jwt_keys_create(void)
{
	struct jwt_keys *k = hd_calloc(1, sizeof(*k));

	if (sodium_init() < 0)
		HD_ASSERT(!"sodium_init failed");
	k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	HD_ASSERT(k->sha256);
	return k;
}

void jwt_keys_destroy(struct jwt_keys *k)
{
	if (!k)
		return;
	if (k->secret) {
		sodium_memzero(k->secret, k->secret_len);
		hd_free(k->secret);
	}
	EVP_PKEY_free(k->rsa);
	EVP_PKEY_free(k->ec);
	EVP_MD_free(k->sha256);
	hd_free(k);
}

static int fail(char *err, size_t cap, const char *msg)
{
	if (cap)
		snprintf(err, cap, "%s", msg);
	return -EINVAL;
}

int jwt_keys_set_hs256(struct jwt_keys *k, const void *secret, size_t len, char *err, size_t cap)
{
	if (len < JWT_MIN_HS256_SECRET)
		return fail(err, cap, "HS256 secret shorter than 32 bytes (RFC 7518 section 3.2)");
	if (k->secret) {
		sodium_memzero(k->secret, k->secret_len);
		hd_free(k->secret);
	}
	k->secret = hd_alloc(len);
	memcpy(k->secret, secret, len);
	k->secret_len = len;
	k->algs |= JWT_ALG_HS256;
	return 0;
}

/* One verify set-up on the loading (main) thread, so whatever OpenSSL caches in the key on
 * first use (its provider export) is done before shards share the key read-only. */
static void warm_up(const struct jwt_keys *k, EVP_PKEY *pkey)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx)
		(void)EVP_DigestVerifyInit(ctx, NULL, k->sha256, NULL, pkey);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
}

static EVP_PKEY *read_pem_pubkey(const char *pem, size_t len)
{
	BIO *bio;
	EVP_PKEY *pkey;

	if (len > 64 * 1024)
		return NULL;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return NULL;
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return pkey;
}

int jwt_keys_set_rs256_pem(struct jwt_keys *k, const char *pem, size_t len, char *err, size_t cap)
{
	EVP_PKEY *pkey = read_pem_pubkey(pem, len);

	if (!pkey)
		return fail(err, cap, "RS256 key: not a PEM public key");
	if (!EVP_PKEY_is_a(pkey, "RSA")) {
		EVP_PKEY_free(pkey);
		return fail(err, cap, "RS256 key: not an RSA public key");
	}
	if (EVP_PKEY_get_bits(pkey) < JWT_MIN_RSA_BITS) {
		EVP_PKEY_free(pkey);
		return fail(err, cap, "RS256 key: RSA keys under 2048 bits are refused");
	}
	warm_up(k, pkey);
	EVP_PKEY_free(k->rsa);
	k->rsa = pkey;
	k->algs |= JWT_ALG_RS256;
	return 0;
}

int jwt_keys_set_es256_pem(struct jwt_keys *k, const char *pem, size_t len, char *err, size_t cap)
{
	EVP_PKEY *pkey = read_pem_pubkey(pem, len);
	char group[64];
	size_t glen = 0;

	if (!pkey)
		return fail(err, cap, "ES256 key: not a PEM public key");
	if (!EVP_PKEY_is_a(pkey, "EC") ||
	    !EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) ||
	    (strcmp(group, "prime256v1") && strcmp(group, "P-256"))) {
		EVP_PKEY_free(pkey);
		ERR_clear_error();
		return fail(err, cap, "ES256 key: not an EC P-256 public key");
	}
	warm_up(k, pkey);
	EVP_PKEY_free(k->ec);
	k->ec = pkey;
	k->algs |= JWT_ALG_ES256;
	return 0;
}

int jwt_keys_set_policy(struct jwt_keys *k, const char *audience, const char *issuer,
			uint32_t leeway_s, char *err, size_t cap)
{
	if ((audience && strlen(audience) >= MAX_POLICY_STR) ||
	    (issuer && strlen(issuer) >= MAX_POLICY_STR))
		return fail(err, cap, "JWT audience or issuer longer than 255 bytes");
	if (leeway_s > MAX_LEEWAY_S)
		return fail(err, cap, "JWT leeway over 3600 seconds");
	snprintf(k->audience, sizeof(k->audience), "%s", audience ? audience : "");
	snprintf(k->issuer, sizeof(k->issuer), "%s", issuer ? issuer : "");
	k->leeway_s = leeway_s;
	return 0;
}

unsigned jwt_keys_algs(const struct jwt_keys *k)
{
	return k->algs;
}

uint32_t jwt_keys_leeway(const struct jwt_keys *k)
{
	return k->leeway_s;
}

bool jwt_looks_like_token(const char *passcode, size_t len)
{
	size_t dots = 0;

	if (len < 3 || memcmp(passcode, "eyJ", 3))
		return false;
	for (size_t i = 0; i < len; i++)
		dots += passcode[i] == '.';
	return dots == 2;
}

/* ---- signatures ---- */

static bool verify_hs256(const struct jwt_keys *k, const char *data, size_t len,
			 const uint8_t *sig, size_t sig_len)
{
	crypto_auth_hmacsha256_state st;
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	bool ok;

	if (sig_len != sizeof(mac))
		return false;
	crypto_auth_hmacsha256_init(&st, k->secret, k->secret_len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)data, len);
	crypto_auth_hmacsha256_final(&st, mac);
	ok = sodium_memcmp(mac, sig, sizeof(mac)) == 0;
	sodium_memzero(&st, sizeof(st));
	return ok;
}

static bool verify_evp(const struct jwt_keys *k, EVP_PKEY *pkey, const char *data, size_t len,
		       const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = false;

	if (ctx && EVP_DigestVerifyInit(ctx, NULL, k->sha256, NULL, pkey) == 1)
		ok = EVP_DigestVerify(ctx, sig, sig_len, (const uint8_t *)data, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();	/* the error queue is per thread: keep the shard's clean */
	return ok;
}

/* JWS carries ECDSA as r||s, 32 bytes each (RFC 7518 3.4); OpenSSL wants DER. */
static bool verify_es256(const struct jwt_keys *k, const char *data, size_t len,
			 const uint8_t *sig, size_t sig_len)
{
	ECDSA_SIG *es;
	BIGNUM *r;
	BIGNUM *s;
	uint8_t der[80];	/* a P-256 signature is at most 72 bytes of DER */
	uint8_t *p = der;
	int n;

	if (sig_len != 64)
		return false;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		ERR_clear_error();
		return false;
	}
	n = i2d_ECDSA_SIG(es, NULL);
	if (n <= 0 || (size_t)n > sizeof(der)) {
		ECDSA_SIG_free(es);
		ERR_clear_error();
		return false;
	}
	n = i2d_ECDSA_SIG(es, &p);
	ECDSA_SIG_free(es);
	return n > 0 && verify_evp(k, k->ec, data, len, der, (size_t)n);
}

static bool verify_signature(const struct jwt_keys *k, enum jwt_alg alg, const char *data,
			     size_t len, const uint8_t *sig, size_t sig_len)
{
	switch (alg) {
	case JWT_ALG_HS256:
		return verify_hs256(k, data, len, sig, sig_len);
	case JWT_ALG_RS256:
		return sig_len == (size_t)EVP_PKEY_get_size(k->rsa) &&
		       verify_evp(k, k->rsa, data, len, sig, sig_len);
	case JWT_ALG_ES256:
		return verify_es256(k, data, len, sig, sig_len);
	}
	return false;
}

/* ---- header ---- */

/* Decodes part[0..len) (base64url JSON object, at most cap bytes) into buf and parses it. */
static int decode_object(const char *part, size_t len, char *buf, size_t cap, struct jwt_json *j,
			 struct jwt_json_tok *toks, const char **reason)
{
	ssize_t n;

	if (jwt_b64url_decoded_max(len) > cap) {
		*reason = "token part too large";
		return JWT_E_TOO_LARGE;
	}
	n = jwt_b64url_decode(part, len, (uint8_t *)buf, cap);
	if (n < 0) {
		*reason = "token part is not base64url";
		return JWT_E_MALFORMED;
	}
	if (jwt_json_parse(j, toks, JWT_MAX_TOKENS, buf, (size_t)n) ||
	    toks[0].type != JWT_JSON_OBJECT) {
		*reason = "token part is not a JSON object";
		return JWT_E_MALFORMED;
	}
	return 0;
}

static int read_alg(const struct jwt_keys *k, const struct jwt_json *j, enum jwt_alg *alg,
		    const char **reason)
{
	static const struct {
		const char *name;
		enum jwt_alg alg;
	} algs[] = { { "HS256", JWT_ALG_HS256 }, { "RS256", JWT_ALG_RS256 }, { "ES256", JWT_ALG_ES256 } };
	uint32_t v;
	uint32_t crit;

	if (jwt_json_find(j, 0, "crit", &crit) != 0) {
		*reason = "token header has crit extensions (not supported)";
		return JWT_E_ALG;
	}
	if (jwt_json_find(j, 0, "alg", &v) != 1 || j->toks[v].type != JWT_JSON_STRING) {
		*reason = "token header has no alg";
		return JWT_E_MALFORMED;
	}
	for (size_t i = 0; i < HD_ARRAY_LEN(algs); i++) {
		if (!jwt_json_string_eq(j, v, algs[i].name))
			continue;
		if (!(k->algs & algs[i].alg))
			break;
		*alg = algs[i].alg;
		return 0;
	}
	*reason = jwt_json_string_eq(j, v, "none") ? "token alg none refused"
						   : "token alg not accepted by this server";
	return JWT_E_ALG;
}

/* ---- claims ---- */

static int claim_error(const char **reason, const char *why)
{
	*reason = why;
	return JWT_E_CLAIMS;
}

static bool valid_vhost_item(const char *s, size_t len)
{
	return (len == 1 && s[0] == '*') || users_vhost_is_valid(s, len);
}

static int read_list(const struct jwt_json *j, const char *name, struct jwt_claims *c,
		     struct jwt_list *l, bool (*valid)(const char *, size_t), const char **reason)
{
	uint32_t arr;
	uint32_t t;
	int found = jwt_json_find(j, 0, name, &arr);

	l->present = false;
	l->n = 0;
	if (found < 0)
		return claim_error(reason, "token has a duplicate claim");
	if (!found)
		return 0;
	if (j->toks[arr].type != JWT_JSON_ARRAY)
		return claim_error(reason, "token herald_* claim is not an array");
	if (j->toks[arr].count > JWT_LIST_MAX)
		return claim_error(reason, "token herald_* claim has too many entries");
	l->present = true;
	for (t = arr + 1; t < j->toks[arr].next; t = j->toks[t].next) {
		size_t room = HD_MIN((size_t)JWT_ITEM_MAX + 1, sizeof(c->pool) - c->pool_len);
		ssize_t n = jwt_json_string(j, t, c->pool + c->pool_len, room);

		if (n < 0)
			return claim_error(reason, "token herald_* entry is not a short string");
		if (!valid(c->pool + c->pool_len, (size_t)n))
			return claim_error(reason, "token herald_* entry is not valid");
		l->off[l->n++] = (uint16_t)c->pool_len;
		c->pool_len += (uint32_t)n + 1;
	}
	return 0;
}

static int read_times(const struct jwt_keys *k, const struct jwt_json *j, int64_t now_s,
		      struct jwt_claims *c, const char **reason)
{
	uint32_t v;
	int found;

	if (jwt_json_find(j, 0, "exp", &v) != 1 || jwt_json_seconds(j, v, false, &c->exp))
		return claim_error(reason, "token has no numeric exp");
	if (now_s >= c->exp + (int64_t)k->leeway_s) {
		*reason = "token expired";
		return JWT_E_EXPIRED;
	}
	c->nbf = 0;
	found = jwt_json_find(j, 0, "nbf", &v);
	if (found < 0 || (found && jwt_json_seconds(j, v, true, &c->nbf)))
		return claim_error(reason, "token nbf is not a number");
	if (found && now_s + (int64_t)k->leeway_s < c->nbf) {
		*reason = "token not valid yet (nbf)";
		return JWT_E_NOT_YET_VALID;
	}
	return 0;
}

static bool aud_matches(const struct jwt_json *j, uint32_t v, const char *want)
{
	if (j->toks[v].type == JWT_JSON_STRING)
		return jwt_json_string_eq(j, v, want);
	if (j->toks[v].type != JWT_JSON_ARRAY)
		return false;
	for (uint32_t t = v + 1; t < j->toks[v].next; t = j->toks[t].next) {
		if (jwt_json_string_eq(j, t, want))
			return true;
	}
	return false;
}

static int read_identity(const struct jwt_keys *k, const struct jwt_json *j, struct jwt_claims *c,
			 const char **reason)
{
	uint32_t v;
	ssize_t n;

	if (jwt_json_find(j, 0, "sub", &v) != 1)
		return claim_error(reason, "token has no sub");
	n = jwt_json_string(j, v, c->sub, sizeof(c->sub));
	if (n < 0 || !users_name_is_valid(c->sub, (size_t)n))
		return claim_error(reason, "token sub is not a valid user name");
	if (k->audience[0] &&
	    (jwt_json_find(j, 0, "aud", &v) != 1 || !aud_matches(j, v, k->audience)))
		return claim_error(reason, "token aud does not name this server");
	if (k->issuer[0] &&
	    (jwt_json_find(j, 0, "iss", &v) != 1 || !jwt_json_string_eq(j, v, k->issuer)))
		return claim_error(reason, "token iss is not the configured issuer");
	return 0;
}

static int read_claims(const struct jwt_keys *k, const struct jwt_json *j, int64_t now_s,
		       struct jwt_claims *c, const char **reason)
{
	int err = read_times(k, j, now_s, c, reason);

	if (!err)
		err = read_identity(k, j, c, reason);
	c->pool_len = 0;
	if (!err)
		err = read_list(j, "herald_sub", c, &c->subscribe, acl_pattern_is_valid, reason);
	if (!err)
		err = read_list(j, "herald_send", c, &c->send, acl_pattern_is_valid, reason);
	if (!err)
		err = read_list(j, "herald_tags", c, &c->tags, users_tag_is_valid, reason);
	if (!err)
		err = read_list(j, "herald_vhosts", c, &c->vhosts, valid_vhost_item, reason);
	return err;
}

/* ---- the whole token ---- */

struct parts {
	const char *header;
	size_t header_len;
	const char *payload;
	size_t payload_len;
	const char *sig;
	size_t sig_len;
};

static int split(const char *token, size_t len, struct parts *p, const char **reason)
{
	const char *end = token + len;
	const char *d1 = memchr(token, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;

	if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1))) {
		*reason = "token is not three dot-separated parts";
		return JWT_E_MALFORMED;
	}
	*p = (struct parts){ token, (size_t)(d1 - token), d1 + 1, (size_t)(d2 - d1 - 1), d2 + 1,
			     (size_t)(end - d2 - 1) };
	return 0;
}

int jwt_verify(const struct jwt_keys *k, const char *token, size_t len, int64_t now_s,
	       struct jwt_claims *out, const char **reason)
{
	struct jwt_json_tok toks[JWT_MAX_TOKENS];
	char json[JWT_MAX_CLAIMS];
	uint8_t sig[MAX_SIG_BYTES];
	struct jwt_json j;
	struct parts p;
	enum jwt_alg alg = JWT_ALG_HS256;
	ssize_t sig_len;
	int err;

	if (len > JWT_MAX_TOKEN) {
		*reason = "token too large";
		return JWT_E_TOO_LARGE;
	}
	err = split(token, len, &p, reason);
	if (!err)
		err = decode_object(p.header, p.header_len, json, JWT_MAX_HEADER, &j, toks, reason);
	if (!err)
		err = read_alg(k, &j, &alg, reason);
	if (err)
		return err;
	sig_len = jwt_b64url_decode(p.sig, p.sig_len, sig, sizeof(sig));
	if (sig_len < 0 ||
	    !verify_signature(k, alg, token, (size_t)(p.sig - 1 - token), sig, (size_t)sig_len)) {
		*reason = "token signature does not verify";
		return JWT_E_SIGNATURE;
	}
	err = decode_object(p.payload, p.payload_len, json, sizeof(json), &j, toks, reason);
	if (err)
		return err;
	out->alg = alg;
	return read_claims(k, &j, now_s, out, reason);
}
