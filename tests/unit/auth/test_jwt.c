/*
 * tests/unit/auth/test_jwt.c - auth/jwt.c: RFC 7519 / 7515 / 7518 token verification with
 * keys generated here by OpenSSL. Valid tokens for each algorithm; expiry and nbf (with
 * leeway); bad signatures; algorithms refused (none, unconfigured, key confusion, crit);
 * malformed and oversized tokens; sub/aud/iss; Herald's herald_* claims.
 */
#include "auth/jwt.h"
#include "tests/support/guarded_buf.h"
#include "tests/unit/auth/test_jwt_helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static struct jwt_keys *hs_keys(void)
{
	struct jwt_keys *k = jwt_keys_create();
	char err[128];

	cr_assert_eq(jwt_keys_set_hs256(k, TEST_SECRET, strlen(TEST_SECRET), err, sizeof(err)), 0);
	return k;
}

static struct jwt_keys *pem_keys(EVP_PKEY *priv, bool rsa)
{
	struct jwt_keys *k = jwt_keys_create();
	char *pem = th_pubkey_pem(priv);
	char err[128];
	int rc = rsa ? jwt_keys_set_rs256_pem(k, pem, strlen(pem), err, sizeof(err))
		     : jwt_keys_set_es256_pem(k, pem, strlen(pem), err, sizeof(err));

	cr_assert_eq(rc, 0, "%s", err);
	free(pem);
	return k;
}

/* Verifies tok held flush against a guard page. */
static int verify(const struct jwt_keys *k, const char *tok, struct jwt_claims *c,
		  const char **reason)
{
	struct guarded_buf gb;
	const char *p = guarded_buf_init(&gb, tok, strlen(tok));
	int rc = jwt_verify(k, p, strlen(tok), TEST_NOW, c, reason);

	guarded_buf_fini(&gb);
	return rc;
}

static int verify_claims(const struct jwt_keys *k, const char *claims)
{
	struct jwt_claims c;
	const char *why;
	char *tok = th_hs256(claims);
	int rc = verify(k, tok, &c, &why);

	free(tok);
	return rc;
}

#define VALID_CLAIMS "{\"sub\":\"jack\",\"exp\":1700003600}"

/* RFC 7518 3.2 */
Test(jwt, hs256_token_gives_sub_and_exp)
{
	struct jwt_keys *k = hs_keys();
	struct jwt_claims c;
	const char *why = NULL;
	char *tok = th_hs256("{\"sub\":\"jack\",\"exp\":1700003600,\"iat\":1699990000}");

	cr_assert(jwt_looks_like_token(tok, strlen(tok)));
	cr_assert_eq(verify(k, tok, &c, &why), 0, "%s", why);
	cr_assert_str_eq(c.sub, "jack");
	cr_assert_eq(c.exp, 1700003600);
	cr_assert_eq(c.nbf, 0);
	cr_assert_eq(c.alg, JWT_ALG_HS256);
	cr_assert_not(c.subscribe.present);
	cr_assert_not(c.send.present);
	free(tok);
	jwt_keys_destroy(k);
}

/* RFC 7518 3.3 */
Test(jwt, rs256_token_verifies_with_the_public_key)
{
	EVP_PKEY *priv = th_rsa_key(2048);
	struct jwt_keys *k = pem_keys(priv, true);
	struct jwt_claims c;
	const char *why = NULL;
	char *tok = th_rs256(priv, VALID_CLAIMS);

	cr_assert_eq(verify(k, tok, &c, &why), 0, "%s", why);
	cr_assert_str_eq(c.sub, "jack");
	cr_assert_eq(c.alg, JWT_ALG_RS256);
	tok[strlen(tok) - 3] ^= 1;	/* a flipped bit in the signature */
	cr_assert_eq(verify(k, tok, &c, &why), JWT_E_SIGNATURE);
	free(tok);
	jwt_keys_destroy(k);
	EVP_PKEY_free(priv);
}

/* RFC 7518 3.4: r||s, 64 bytes */
Test(jwt, es256_token_verifies_with_the_public_key)
{
	EVP_PKEY *priv = th_ec_key("P-256");
	struct jwt_keys *k = pem_keys(priv, false);
	struct jwt_claims c;
	const char *why = NULL;
	char *tok = th_es256(priv, VALID_CLAIMS);

	cr_assert_eq(verify(k, tok, &c, &why), 0, "%s", why);
	cr_assert_eq(c.alg, JWT_ALG_ES256);
	tok[strlen(tok) - 5] = tok[strlen(tok) - 5] == 'A' ? 'B' : 'A';
	cr_assert_eq(verify(k, tok, &c, &why), JWT_E_SIGNATURE);
	free(tok);
	jwt_keys_destroy(k);
	EVP_PKEY_free(priv);
}

/* RFC 7518 3.4: a DER signature (OpenSSL's native form) is not a JWS ES256 signature */
Test(jwt, es256_refuses_a_der_signature)
{
	EVP_PKEY *priv = th_ec_key("P-256");
	struct jwt_keys *k = pem_keys(priv, false);
	char *good = th_es256(priv, VALID_CLAIMS);
	char *h = th_b64("{\"alg\":\"ES256\"}", 15);
	char *cl = th_b64(VALID_CLAIMS, strlen(VALID_CLAIMS));
	char in[512];
	uint8_t der[128];
	size_t n = sizeof(der);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct jwt_claims c;
	const char *why;
	char *sig;
	char tok[1024];

	snprintf(in, sizeof(in), "%s.%s", h, cl);
	cr_assert_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, priv), 1);
	cr_assert_eq(EVP_DigestSign(ctx, der, &n, (uint8_t *)in, strlen(in)), 1);
	sig = th_b64(der, n);
	snprintf(tok, sizeof(tok), "%s.%s", in, sig);
	cr_assert_eq(verify(k, tok, &c, &why), JWT_E_SIGNATURE);
	EVP_MD_CTX_free(ctx);
	free(sig);
	free(h);
	free(cl);
	free(good);
	jwt_keys_destroy(k);
	EVP_PKEY_free(priv);
}

Test(jwt, hs256_refuses_a_wrong_secret_or_tampered_claims)
{
	struct jwt_keys *k = hs_keys();
	struct jwt_claims c;
	const char *why;
	char *tok = th_token_raw("{\"alg\":\"HS256\"}", VALID_CLAIMS,
				 "another secret of at least thirty-two bytes", NULL, NULL);
	char *good = th_hs256(VALID_CLAIMS);
	char *forged = th_hs256("{\"sub\":\"rose\",\"exp\":1700003600}");
	char mixed[1024];

	cr_assert_eq(verify(k, tok, &c, &why), JWT_E_SIGNATURE);
	/* jack's signature on rose's claims */
	snprintf(mixed, sizeof(mixed), "%.*s%s", (int)(strrchr(forged, '.') - forged), forged,
		 strrchr(good, '.'));
	cr_assert_eq(verify(k, mixed, &c, &why), JWT_E_SIGNATURE);
	free(tok);
	free(good);
	free(forged);
	jwt_keys_destroy(k);
}

/* RFC 7519 4.1.4: exp must be after now */
Test(jwt, refuses_an_expired_token)
{
	struct jwt_keys *k = hs_keys();

	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1699999999}"), JWT_E_EXPIRED);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700000000}"), JWT_E_EXPIRED);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700000001}"), 0);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700000000.9}"), JWT_E_EXPIRED);
	jwt_keys_destroy(k);
}

Test(jwt, leeway_widens_exp_and_nbf)
{
	struct jwt_keys *k = hs_keys();
	char err[64];

	cr_assert_eq(jwt_keys_set_policy(k, NULL, NULL, 30, err, sizeof(err)), 0);
	cr_assert_eq(jwt_keys_leeway(k), 30);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1699999980}"), 0);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1699999970}"), JWT_E_EXPIRED);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"nbf\":1700000020}"), 0);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"nbf\":1700000031}"),
		     JWT_E_NOT_YET_VALID);
	cr_assert_neq(jwt_keys_set_policy(k, NULL, NULL, 3601, err, sizeof(err)), 0);
	jwt_keys_destroy(k);
}

/* RFC 7519 4.1.5 */
Test(jwt, refuses_a_token_before_nbf)
{
	struct jwt_keys *k = hs_keys();

	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"nbf\":1700000001}"),
		     JWT_E_NOT_YET_VALID);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"nbf\":1700000000}"), 0);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"nbf\":1699999999.5}"), 0);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"nbf\":1700000000.1}"),
		     JWT_E_NOT_YET_VALID);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"nbf\":\"0\"}"),
		     JWT_E_CLAIMS);
	jwt_keys_destroy(k);
}

/* RFC 7518 3.6 / RFC 8725 3.1: alg none is never accepted */
Test(jwt, refuses_alg_none)
{
	struct jwt_keys *k = hs_keys();
	struct jwt_claims c;
	const char *why = NULL;
	char *tok = th_token_raw("{\"alg\":\"none\",\"typ\":\"JWT\"}", VALID_CLAIMS, NULL, NULL, "");
	char *tok2 = th_token_raw("{\"alg\":\"None\"}", VALID_CLAIMS, NULL, NULL, "");

	cr_assert_eq(verify(k, tok, &c, &why), JWT_E_ALG);
	cr_assert_str_eq(why, "token alg none refused");
	cr_assert_eq(verify(k, tok2, &c, &why), JWT_E_ALG);
	free(tok);
	free(tok2);
	jwt_keys_destroy(k);
}

/* RFC 8725 3.1: only algorithms with a configured key */
Test(jwt, refuses_an_algorithm_without_a_key)
{
	EVP_PKEY *priv = th_rsa_key(2048);
	struct jwt_keys *k = hs_keys();
	struct jwt_claims c;
	const char *why = NULL;
	char *tok = th_rs256(priv, VALID_CLAIMS);
	char *hs512 = th_token_raw("{\"alg\":\"HS512\"}", VALID_CLAIMS, TEST_SECRET, NULL, NULL);

	cr_assert_eq(verify(k, tok, &c, &why), JWT_E_ALG);
	cr_assert_str_eq(why, "token alg not accepted by this server");
	cr_assert_eq(verify(k, hs512, &c, &why), JWT_E_ALG);
	free(tok);
	free(hs512);
	jwt_keys_destroy(k);
	EVP_PKEY_free(priv);
}

/* RFC 8725 2.1: HS256 keyed with the RSA public key must not verify */
Test(jwt, refuses_hs256_signed_with_the_rsa_public_key)
{
	EVP_PKEY *priv = th_rsa_key(2048);
	struct jwt_keys *k = pem_keys(priv, true);
	char *pem = th_pubkey_pem(priv);
	struct jwt_claims c;
	const char *why;
	char *tok = th_token_raw("{\"alg\":\"HS256\"}", VALID_CLAIMS, pem, NULL, NULL);

	cr_assert_eq(verify(k, tok, &c, &why), JWT_E_ALG);
	free(tok);
	free(pem);
	jwt_keys_destroy(k);
	EVP_PKEY_free(priv);
}

/* RFC 7515 4.1.11: we understand no extension, so crit means refuse */
Test(jwt, refuses_crit_headers)
{
	struct jwt_keys *k = hs_keys();
	struct jwt_claims c;
	const char *why;
	char *tok = th_token_raw("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}",
				 VALID_CLAIMS, TEST_SECRET, NULL, NULL);

	cr_assert_eq(verify(k, tok, &c, &why), JWT_E_ALG);
	free(tok);
	jwt_keys_destroy(k);
}

Test(jwt, refuses_malformed_tokens)
{
	struct jwt_keys *k = hs_keys();
	struct jwt_claims c;
	const char *why;
	char *good = th_hs256(VALID_CLAIMS);
	char buf[1024];
	static const char *bad[] = {
		"", ".", "..", "...", "eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9.e30",
		"eyJhbGciOiJIUzI1NiJ9.e30.AAAA.AAAA", "eyJhbGciOiJIUzI1NiJ9=.e30.AAAA",
		"!!!.e30.AAAA", "W10.e30.AAAA" /* header [] */, "bnVsbA.e30.AAAA" /* null */,
		"e30.e30.AAAA" /* {} no alg */, "eyJhbGciOjF9.e30.AAAA" /* alg 1 */,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(verify(k, bad[i], &c, &why), 0, "%s", bad[i]);
	/* the right signature, but a header with a duplicate alg */
	free(good);
	good = th_token_raw("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", VALID_CLAIMS, TEST_SECRET,
			    NULL, NULL);
	cr_assert_eq(verify(k, good, &c, &why), JWT_E_MALFORMED);
	free(good);
	/* a signed payload that is not an object, or not JSON */
	good = th_token_raw("{\"alg\":\"HS256\"}", "[1]", TEST_SECRET, NULL, NULL);
	cr_assert_eq(verify(k, good, &c, &why), JWT_E_MALFORMED);
	free(good);
	good = th_token_raw("{\"alg\":\"HS256\"}", "{\"sub\":", TEST_SECRET, NULL, NULL);
	cr_assert_eq(verify(k, good, &c, &why), JWT_E_MALFORMED);
	free(good);
	snprintf(buf, sizeof(buf), "%s", "eyJhbGciOiJIUzI1NiJ9.e30.");
	cr_assert_eq(verify(k, buf, &c, &why), JWT_E_SIGNATURE);
	jwt_keys_destroy(k);
}

Test(jwt, refuses_oversized_tokens_and_parts)
{
	struct jwt_keys *k = hs_keys();
	struct jwt_claims c;
	const char *why;
	static char huge[JWT_MAX_TOKEN + 2];
	char claims[JWT_MAX_CLAIMS + 64];
	char header[JWT_MAX_HEADER + 64];
	char *tok;

	memset(huge, 'A', sizeof(huge) - 1);
	huge[10] = '.';
	huge[20] = '.';
	cr_assert_eq(jwt_verify(k, huge, JWT_MAX_TOKEN + 1, TEST_NOW, &c, &why), JWT_E_TOO_LARGE);
	/* claims exactly at their decoded limit, then one byte over (inside the token limit) */
	snprintf(claims, sizeof(claims), "{\"sub\":\"jack\",\"exp\":1700003600,\"pad\":\"%0*d\"}",
		 JWT_MAX_CLAIMS - 40, 0);
	cr_assert_eq(strlen(claims), JWT_MAX_CLAIMS);
	tok = th_hs256(claims);
	cr_assert_eq(verify(k, tok, &c, &why), 0, "%s", why);
	free(tok);
	snprintf(claims, sizeof(claims), "{\"sub\":\"jack\",\"exp\":1700003600,\"pad\":\"%0*d\"}",
		 JWT_MAX_CLAIMS - 39, 0);
	tok = th_hs256(claims);
	cr_assert_eq(verify(k, tok, &c, &why), JWT_E_TOO_LARGE);
	free(tok);
	snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"pad\":\"%0*d\"}", JWT_MAX_HEADER, 0);
	tok = th_token_raw(header, VALID_CLAIMS, TEST_SECRET, NULL, NULL);
	cr_assert_eq(verify(k, tok, &c, &why), JWT_E_TOO_LARGE);
	free(tok);
	jwt_keys_destroy(k);
}

Test(jwt, refuses_claims_deeper_or_wider_than_the_limits)
{
	struct jwt_keys *k = hs_keys();
	char claims[2048];
	size_t n;

	n = (size_t)snprintf(claims, sizeof(claims), "{\"sub\":\"jack\",\"exp\":1700003600,\"x\":");
	for (int i = 0; i < 40; i++)
		claims[n++] = '[';
	for (int i = 0; i < 40; i++)
		claims[n++] = ']';
	strcpy(claims + n, "}");
	cr_assert_eq(verify_claims(k, claims), JWT_E_MALFORMED);
	n = (size_t)snprintf(claims, sizeof(claims), "{\"sub\":\"jack\",\"exp\":1700003600,\"x\":[0");
	for (int i = 0; i < JWT_MAX_TOKENS; i++)
		n += (size_t)snprintf(claims + n, sizeof(claims) - n, ",0");
	strcpy(claims + n, "]}");
	cr_assert_eq(verify_claims(k, claims), JWT_E_MALFORMED);
	jwt_keys_destroy(k);
}

/* RFC 7519 4.1.2 sub, 4.1.4 exp: both required here; sub must be a user name */
Test(jwt, requires_a_valid_sub_and_a_numeric_exp)
{
	struct jwt_keys *k = hs_keys();

	cr_assert_eq(verify_claims(k, "{\"exp\":1700003600}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\"}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":\"1700003600\"}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1.7e9}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":7,\"exp\":1700003600}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"\",\"exp\":1700003600}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"#\",\"exp\":1700003600}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"a/b\",\"exp\":1700003600}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"a\\u0000b\",\"exp\":1700003600}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"sub\":\"rose\",\"exp\":1700003600}"),
		     JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"exp\":1800000000}"),
		     JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"j\\u0061ck\",\"exp\":1700003600}"), 0);
	jwt_keys_destroy(k);
}

/* RFC 7519 4.1.1 iss, 4.1.3 aud */
Test(jwt, checks_audience_and_issuer_when_configured)
{
	struct jwt_keys *k = hs_keys();
	char err[64];

	cr_assert_eq(jwt_keys_set_policy(k, "herald", "https://idp", 0, err, sizeof(err)), 0);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"aud\":\"herald\","
				      "\"iss\":\"https://idp\"}"), 0);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"aud\":[\"x\","
				      "\"herald\"],\"iss\":\"https://idp\"}"), 0);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"aud\":\"other\","
				      "\"iss\":\"https://idp\"}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,"
				      "\"iss\":\"https://idp\"}"), JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"aud\":\"herald\","
				      "\"iss\":\"https://evil\"}"), JWT_E_CLAIMS);
	jwt_keys_destroy(k);
}

Test(jwt, reads_herald_claims)
{
	struct jwt_keys *k = hs_keys();
	struct jwt_claims c;
	const char *why = NULL;
	char *tok = th_hs256("{\"sub\":\"jack\",\"exp\":1700003600,"
			     "\"herald_sub\":[\"/queue/{user}\",\"/topic/news.#\"],"
			     "\"herald_send\":[],\"herald_tags\":[\"service\"],"
			     "\"herald_vhosts\":[\"/\",\"prod\"]}");

	cr_assert_eq(verify(k, tok, &c, &why), 0, "%s", why);
	cr_assert(c.subscribe.present);
	cr_assert_eq(c.subscribe.n, 2);
	cr_assert_str_eq(jwt_list_at(&c, &c.subscribe, 0), "/queue/{user}");
	cr_assert_str_eq(jwt_list_at(&c, &c.subscribe, 1), "/topic/news.#");
	cr_assert(c.send.present);
	cr_assert_eq(c.send.n, 0);
	cr_assert_eq(c.tags.n, 1);
	cr_assert_str_eq(jwt_list_at(&c, &c.tags, 0), "service");
	cr_assert_eq(c.vhosts.n, 2);
	cr_assert_str_eq(jwt_list_at(&c, &c.vhosts, 1), "prod");
	free(tok);
	jwt_keys_destroy(k);
}

Test(jwt, refuses_malformed_herald_claims)
{
	struct jwt_keys *k = hs_keys();
	char claims[4096];
	size_t n;

	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"herald_sub\":\"/queue/a\"}"),
		     JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"herald_sub\":[1]}"),
		     JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"herald_send\":[\"queue/a\"]}"),
		     JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"herald_send\":[\"/queue/{usr}\"]}"),
		     JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"herald_tags\":[\"Admin\"]}"),
		     JWT_E_CLAIMS);
	cr_assert_eq(verify_claims(k, "{\"sub\":\"jack\",\"exp\":1700003600,\"herald_vhosts\":[\"a,b\"]}"),
		     JWT_E_CLAIMS);
	n = (size_t)snprintf(claims, sizeof(claims),
			     "{\"sub\":\"jack\",\"exp\":1700003600,\"herald_sub\":[\"/topic/a\"");
	for (int i = 0; i < JWT_LIST_MAX; i++)
		n += (size_t)snprintf(claims + n, sizeof(claims) - n, ",\"/topic/a\"");
	strcpy(claims + n, "]}");
	cr_assert_eq(verify_claims(k, claims), JWT_E_CLAIMS);
	jwt_keys_destroy(k);
}

Test(jwt, refuses_weak_or_mismatched_keys)
{
	EVP_PKEY *small = th_rsa_key(1024);
	EVP_PKEY *p384 = th_ec_key("P-384");
	EVP_PKEY *p256 = th_ec_key("P-256");
	struct jwt_keys *k = jwt_keys_create();
	char *pem;
	char err[128];

	cr_assert_neq(jwt_keys_set_hs256(k, "short", 5, err, sizeof(err)), 0);
	pem = th_pubkey_pem(small);
	cr_assert_neq(jwt_keys_set_rs256_pem(k, pem, strlen(pem), err, sizeof(err)), 0);
	free(pem);
	pem = th_pubkey_pem(p384);
	cr_assert_neq(jwt_keys_set_es256_pem(k, pem, strlen(pem), err, sizeof(err)), 0);
	free(pem);
	pem = th_pubkey_pem(p256);
	cr_assert_neq(jwt_keys_set_rs256_pem(k, pem, strlen(pem), err, sizeof(err)), 0);
	cr_assert_eq(jwt_keys_set_es256_pem(k, pem, strlen(pem), err, sizeof(err)), 0);
	free(pem);
	cr_assert_neq(jwt_keys_set_es256_pem(k, "not pem", 7, err, sizeof(err)), 0);
	cr_assert_eq(jwt_keys_algs(k), JWT_ALG_ES256);
	jwt_keys_destroy(k);
	EVP_PKEY_free(small);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(p256);
}

Test(jwt, tells_tokens_from_passwords)
{
	cr_assert(jwt_looks_like_token("eyJa.b.c", 8));
	cr_assert_not(jwt_looks_like_token("guest", 5));
	cr_assert_not(jwt_looks_like_token("eyJa.b", 6));
	cr_assert_not(jwt_looks_like_token("eyJa.b.c.d", 10));
	cr_assert_not(jwt_looks_like_token("xyJa.b.c", 8));
	cr_assert_not(jwt_looks_like_token("ey", 2));
}
