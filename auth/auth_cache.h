/*
 * auth/auth_cache.h - verified-credentials cache: remembers that a (user, password) pair
 * passed the slow argon2id check, so the next login with it costs one keyed BLAKE2b on the
 * shard instead of tens of milliseconds on the auth thread (reconnect storms stay cheap).
 *
 * What is stored: 32-byte keyed BLAKE2b digests of user || password || binding, where the
 * key is random per cache (never leaves the process) and binding is the stored argon2id
 * string the password was checked against. So an entry can only ever say "this password
 * matched this exact hash": after a reload that changes a user's password (or removes the
 * user) the old entry no longer matches anything, with no flush needed; auth_cache_clear()
 * drops everything when a reload should (as auth_db reloads do, see auth.h). Entries also
 * expire after ttl_ms. Lookups compare digests with sodium_memcmp (constant time).
 *
 * Threads: one cache per shard, caller storage, used by its owner thread only (no locks).
 * Fixed memory: capacity slots of 40 bytes, 4-way set associative, oldest entry evicted.
 */
#ifndef AUTH_AUTH_CACHE_H
#define AUTH_AUTH_CACHE_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_CACHE_WAYS 4
#define AUTH_CACHE_DEFAULT_SLOTS 4096
#define AUTH_CACHE_DEFAULT_TTL_MS (15ull * 60 * 1000)

struct auth_cache_slot {
	uint8_t digest[crypto_generichash_BYTES];
	uint64_t expires_ms;		/* 0: empty */
};

struct auth_cache {
	uint8_t key[crypto_generichash_KEYBYTES];	/* random; wiped by fini */
	struct auth_cache_slot *slots;
	uint32_t nsets;			/* power of two; slots = nsets * AUTH_CACHE_WAYS */
	uint64_t ttl_ms;
	uint64_t hits;
	uint64_t misses;
};

/* One credential: all three byte strings go into the digest, lengths included. */
struct auth_cache_cred {
	const char *user;
	size_t user_len;
	const char *pass;
	size_t pass_len;
	const char *binding;		/* the argon2id string checked against */
	size_t binding_len;
};

/* Sets up an empty cache of about `slots` entries (rounded up to a power of two, at least
 * AUTH_CACHE_WAYS) whose entries live ttl_ms. Aborts on OOM. */
void auth_cache_init(struct auth_cache *c, uint32_t slots, uint64_t ttl_ms);
void auth_cache_fini(struct auth_cache *c);

/* True when cred was remembered less than ttl_ms ago (monotonic now_ms). */
bool auth_cache_check(struct auth_cache *c, const struct auth_cache_cred *cred, uint64_t now_ms);

/* auth_cache_check for a digest the caller already has (auth_cache_digest). */
bool auth_cache_check_digest(struct auth_cache *c, const uint8_t d[crypto_generichash_BYTES],
			     uint64_t now_ms);

/* Remembers cred, which the caller has just verified the slow way. */
void auth_cache_remember(struct auth_cache *c, const struct auth_cache_cred *cred,
			 uint64_t now_ms);

/* The keyed digest an entry for cred is stored under (for callers that track credentials
 * in flight without storing the password). */
void auth_cache_digest(const struct auth_cache *c, const struct auth_cache_cred *cred,
		       uint8_t out[crypto_generichash_BYTES]);

/* Forgets every entry. */
void auth_cache_clear(struct auth_cache *c);

#endif
