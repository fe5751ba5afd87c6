/*
 * auth/jwt.h - JSON Web Token login (RFC 7519 over a JWS compact serialization, RFC 7515):
 * HS256 with a shared secret (libsodium HMAC-SHA-256), RS256 and ES256 with a PEM public
 * key (OpenSSL 3 EVP_DigestVerify; RFC 7518 sections 3.2-3.4).
 *
 * Only algorithms with a configured key are accepted; `none` never is, and a key is tied
 * to its one algorithm (no HS256 over an RSA public key). The signature is checked before
 * the claims are parsed. Required claims: `sub` (a valid user name) and `exp`; `nbf`,
 * `aud` and `iss` are checked when present or configured. Herald's own optional claims:
 *   herald_sub     array of destination patterns the token may SUBSCRIBE to
 *   herald_send    array of destination patterns the token may SEND to
 *   herald_tags    array of tags (administrator, service, ...)
 *   herald_vhosts  array of virtual hosts the token may CONNECT to ("*": any)
 *
 * Threads: keys are built on the main thread and are then immutable; any number of threads
 * may call jwt_verify() with the same keys at once (EVP_PKEY is safe to share read-only).
 * A verify costs microseconds (tens for RS256/ES256), so shards call it inline.
 */
#ifndef AUTH_JWT_H
#define AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_TOKEN 8192		/* bytes of a compact token */
#define JWT_MAX_HEADER 1024		/* decoded header bytes */
#define JWT_MAX_CLAIMS 4096		/* decoded claim-set bytes */
#define JWT_MAX_TOKENS 256		/* JSON values in the header or the claims */
#define JWT_LIST_MAX 32			/* entries in one herald_* array */
#define JWT_ITEM_MAX 255		/* bytes of one herald_* entry */
#define JWT_POOL_BYTES 4096		/* all herald_* entries of one token, NULs included */
#define JWT_MIN_HS256_SECRET 32		/* RFC 7518 3.2: a key at least as long as the hash */
#define JWT_MIN_RSA_BITS 2048

enum jwt_alg {
	JWT_ALG_HS256 = 1 << 0,
	JWT_ALG_RS256 = 1 << 1,
	JWT_ALG_ES256 = 1 << 2,
};

enum jwt_err {
	JWT_E_MALFORMED = -1,		/* not three base64url parts of JSON objects */
	JWT_E_TOO_LARGE = -2,		/* over one of the JWT_MAX_* limits */
	JWT_E_ALG = -3,			/* alg none, unknown, or not configured; crit present */
	JWT_E_SIGNATURE = -4,		/* signature does not verify */
	JWT_E_EXPIRED = -5,		/* now >= exp + leeway */
	JWT_E_NOT_YET_VALID = -6,	/* now < nbf - leeway */
	JWT_E_CLAIMS = -7,		/* sub/exp missing or of the wrong type, aud/iss mismatch,
					 * a herald_* claim malformed */
};

/* One herald_* array: present (even if empty) or not; entries in jwt_claims.pool. */
struct jwt_list {
	bool present;
	uint8_t n;
	uint16_t off[JWT_LIST_MAX];	/* each a NUL-terminated string at pool + off[i] */
};

struct jwt_claims {
	enum jwt_alg alg;		/* the algorithm that verified it */
	char sub[64];			/* the user */
	int64_t exp;			/* Unix seconds */
	int64_t nbf;			/* Unix seconds; 0 when absent */
	struct jwt_list subscribe;	/* herald_sub */
	struct jwt_list send;		/* herald_send */
	struct jwt_list tags;		/* herald_tags */
	struct jwt_list vhosts;		/* herald_vhosts */
	uint32_t pool_len;		/* bytes used in pool */
	char pool[JWT_POOL_BYTES];
};

static inline const char *jwt_list_at(const struct jwt_claims *c, const struct jwt_list *l,
				      unsigned i)
{
	return c->pool + l->off[i];
}

struct jwt_keys;

/* An empty key set (every algorithm refused). Aborts on OOM. Main thread. */
struct jwt_keys *jwt_keys_create(void);
void jwt_keys_destroy(struct jwt_keys *k);

/* Each setter returns 0, or -EINVAL with a one-line reason in err[0..cap). */
int jwt_keys_set_hs256(struct jwt_keys *k, const void *secret, size_t len, char *err, size_t cap);
/* A PEM "PUBLIC KEY" (SubjectPublicKeyInfo): RSA of at least 2048 bits for RS256, an EC
 * P-256 key for ES256. */
int jwt_keys_set_rs256_pem(struct jwt_keys *k, const char *pem, size_t len, char *err, size_t cap);
int jwt_keys_set_es256_pem(struct jwt_keys *k, const char *pem, size_t len, char *err, size_t cap);
/* aud/iss: NULL or "" means not checked; otherwise `aud` (string or array) must contain
 * audience and `iss` must equal issuer. leeway_s widens exp and nbf for clock skew. */
int jwt_keys_set_policy(struct jwt_keys *k, const char *audience, const char *issuer,
			uint32_t leeway_s, char *err, size_t cap);

/* Bit set of enum jwt_alg with a key. */
unsigned jwt_keys_algs(const struct jwt_keys *k);
/* The configured clock-skew allowance, seconds. */
uint32_t jwt_keys_leeway(const struct jwt_keys *k);

/* True when passcode has the shape of a compact JWS whose header is a JSON object
 * ("eyJ..." and exactly two dots): how a login tells a token from a password. */
bool jwt_looks_like_token(const char *passcode, size_t len);

/* Verifies token[0..len) at Unix time now_s and fills *out. Returns 0 or a negative
 * JWT_E_*, with *reason (static, no token bytes) saying why; *out is undefined on failure.
 * Any thread. */
int jwt_verify(const struct jwt_keys *k, const char *token, size_t len, int64_t now_s,
	       struct jwt_claims *out, const char **reason);

#endif
