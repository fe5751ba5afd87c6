/*
 * tests/unit/auth/test_jwt_helpers.h - test-side token minting for the JWT and auth tests:
 * keys generated with OpenSSL at run time (RSA-2048, EC P-256), PEM export of the public
 * halves, and compact tokens signed HS256 / RS256 / ES256 (ES256 converted from OpenSSL's
 * DER to JWS's raw r||s). Header-only; tests only.
 */
#ifndef TESTS_UNIT_CORE_TEST_JWT_HELPERS_H
#define TESTS_UNIT_CORE_TEST_JWT_HELPERS_H

#include "auth/jwt_base64.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_NOW 1700000000ll	/* the tests' Unix time, seconds */
#define TEST_SECRET "0123456789abcdef0123456789abcdef-herald-test"

static inline char *th_b64(const void *p, size_t n)
{
	size_t cap = jwt_b64url_encoded_len(n) + 1;
	char *s = malloc(cap);

	if (!s || jwt_b64url_encode(p, n, s, cap) < 0)
		abort();
	return s;
}

static inline EVP_PKEY *th_rsa_key(unsigned bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);

	if (!k)
		abort();
	return k;
}

static inline EVP_PKEY *th_ec_key(const char *curve)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);

	if (!k)
		abort();
	return k;
}

/* The PEM SubjectPublicKeyInfo of k; malloc'd, NUL-terminated. */
static inline char *th_pubkey_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	char *out;

	if (!b || !PEM_write_bio_PUBKEY(b, k))
		abort();
	n = BIO_get_mem_data(b, &data);
	out = malloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	BIO_free(b);
	return out;
}

/* Signature over data with k (SHA-256), JWS form: RSA as is, ECDSA as r||s (64 bytes). */
static inline size_t th_sign_pkey(EVP_PKEY *k, const char *data, size_t len, uint8_t *sig)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[512];
	size_t n = sizeof(der);

	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(ctx, der, &n, (const uint8_t *)data, len) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	if (EVP_PKEY_is_a(k, "EC")) {
		const uint8_t *p = der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);

		if (!es)
			abort();
		BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
		ECDSA_SIG_free(es);
		return 64;
	}
	memcpy(sig, der, n);
	return n;
}

/* "b64(header).b64(claims).b64(sig)" signed with the secret (key NULL) or the private key
 * k; sig_override (when not NULL) replaces the encoded signature verbatim. malloc'd. */
static inline char *th_token_raw(const char *header, const char *claims, const char *secret,
				 EVP_PKEY *k, const char *sig_override)
{
	char *h = th_b64(header, strlen(header));
	char *c = th_b64(claims, strlen(claims));
	size_t in_len = strlen(h) + 1 + strlen(c);
	char *in = malloc(in_len + 1);
	uint8_t sig[512];
	size_t sig_len = 0;
	char *s;
	char *tok;

	snprintf(in, in_len + 1, "%s.%s", h, c);
	if (k) {
		sig_len = th_sign_pkey(k, in, in_len, sig);
	} else if (secret) {
		crypto_auth_hmacsha256_state st;

		crypto_auth_hmacsha256_init(&st, (const uint8_t *)secret, strlen(secret));
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)in, in_len);
		crypto_auth_hmacsha256_final(&st, sig);
		sig_len = 32;
	}
	s = sig_override ? strdup(sig_override) : th_b64(sig, sig_len);
	tok = malloc(in_len + 2 + strlen(s));
	sprintf(tok, "%s.%s", in, s);
	free(h);
	free(c);
	free(in);
	free(s);
	return tok;
}

static inline char *th_hs256(const char *claims)
{
	return th_token_raw("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, TEST_SECRET, NULL, NULL);
}

static inline char *th_rs256(EVP_PKEY *k, const char *claims)
{
	return th_token_raw("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims, NULL, k, NULL);
}

static inline char *th_es256(EVP_PKEY *k, const char *claims)
{
	return th_token_raw("{\"alg\":\"ES256\",\"typ\":\"JWT\"}", claims, NULL, k, NULL);
}

#endif
