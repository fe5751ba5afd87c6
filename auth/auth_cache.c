/*
 * auth/auth_cache.c - set-associative table of keyed digests. The set index comes from the
 * digest itself, which nobody outside the process can predict (the key is secret), so a
 * client can neither aim collisions at one set nor learn anything from which set it hits.
 */
#include "auth/auth_cache.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"

#include <string.h>

void auth_cache_init(struct auth_cache *c, uint32_t slots, uint64_t ttl_ms)
{
	uint32_t sets = 1;

	HD_ASSERT(sodium_init() >= 0);
	while (sets * AUTH_CACHE_WAYS < slots && sets < (1u << 24))
		sets <<= 1;
	memset(c, 0, sizeof(*c));
	randombytes_buf(c->key, sizeof(c->key));
	c->nsets = sets;
	c->ttl_ms = ttl_ms;
	c->slots = hd_calloc((size_t)sets * AUTH_CACHE_WAYS, sizeof(*c->slots));
}

void auth_cache_fini(struct auth_cache *c)
{
	sodium_memzero(c->key, sizeof(c->key));
	hd_free(c->slots);
	c->slots = NULL;
}

static void update_len(crypto_generichash_state *st, size_t len)
{
	uint64_t v = len;

	crypto_generichash_update(st, (const uint8_t *)&v, sizeof(v));
}

/* Length-prefixed fields, so ("ab","c") and ("a","bc") differ. */
static void digest_of(const struct auth_cache *c, const struct auth_cache_cred *cred,
		      uint8_t out[crypto_generichash_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, c->key, sizeof(c->key), crypto_generichash_BYTES);
	update_len(&st, cred->user_len);
	crypto_generichash_update(&st, (const uint8_t *)cred->user, cred->user_len);
	update_len(&st, cred->pass_len);
	crypto_generichash_update(&st, (const uint8_t *)cred->pass, cred->pass_len);
	update_len(&st, cred->binding_len);
	crypto_generichash_update(&st, (const uint8_t *)cred->binding, cred->binding_len);
	crypto_generichash_final(&st, out, crypto_generichash_BYTES);
	sodium_memzero(&st, sizeof(st));	/* it absorbed the password */
}

void auth_cache_digest(const struct auth_cache *c, const struct auth_cache_cred *cred,
		       uint8_t out[crypto_generichash_BYTES])
{
	digest_of(c, cred, out);
}

static struct auth_cache_slot *set_of(const struct auth_cache *c, const uint8_t *digest)
{
	uint32_t h;

	memcpy(&h, digest, sizeof(h));
	return &c->slots[(size_t)(h & (c->nsets - 1)) * AUTH_CACHE_WAYS];
}

bool auth_cache_check_digest(struct auth_cache *c, const uint8_t d[crypto_generichash_BYTES],
			     uint64_t now_ms)
{
	struct auth_cache_slot *set = set_of(c, d);
	bool hit = false;

	/* every way compared, so the time does not say which one matched */
	for (unsigned w = 0; w < AUTH_CACHE_WAYS; w++) {
		bool same = sodium_memcmp(set[w].digest, d, crypto_generichash_BYTES) == 0;

		hit |= same && set[w].expires_ms > now_ms;
	}
	if (hit)
		c->hits++;
	else
		c->misses++;
	return hit;
}

bool auth_cache_check(struct auth_cache *c, const struct auth_cache_cred *cred, uint64_t now_ms)
{
	uint8_t d[crypto_generichash_BYTES];
	bool hit;

	digest_of(c, cred, d);
	hit = auth_cache_check_digest(c, d, now_ms);
	sodium_memzero(d, sizeof(d));
	return hit;
}

void auth_cache_remember(struct auth_cache *c, const struct auth_cache_cred *cred,
			 uint64_t now_ms)
{
	uint8_t d[crypto_generichash_BYTES];
	struct auth_cache_slot *set;
	struct auth_cache_slot *victim;

	digest_of(c, cred, d);
	set = set_of(c, d);
	victim = &set[0];
	for (unsigned w = 0; w < AUTH_CACHE_WAYS; w++) {
		if (sodium_memcmp(set[w].digest, d, sizeof(d)) == 0) {
			victim = &set[w];	/* refresh in place: never two copies */
			break;
		}
		if (set[w].expires_ms < victim->expires_ms)
			victim = &set[w];	/* empty (0) or soonest to expire */
	}
	memcpy(victim->digest, d, sizeof(d));
	victim->expires_ms = now_ms + c->ttl_ms;
	sodium_memzero(d, sizeof(d));
}

void auth_cache_clear(struct auth_cache *c)
{
	memset(c->slots, 0, (size_t)c->nsets * AUTH_CACHE_WAYS * sizeof(*c->slots));
}
