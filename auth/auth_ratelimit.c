/*
 * auth/auth_ratelimit.c - per-address failure counters with linear decay.
 */
#include "auth/auth_ratelimit.h"

#include "core/base/hd_compiler.h"

#include <netinet/in.h>
#include <string.h>

void auth_ratelimit_init(struct auth_ratelimit *rl)
{
	HD_ASSERT(sodium_init() >= 0);
	memset(rl, 0, sizeof(*rl));
	rl->p = (struct auth_rl_params){
		.free_failures = 3,
		.base_delay_ms = 250,
		.max_delay_ms = 10000,
		.block_after = 10,
		.max_pending = 8,
		.decay_ms = 30000,
	};
	randombytes_buf(rl->key, sizeof(rl->key));
}

/* The table key of peer: ::ffff:a.b.c.d for IPv4, the /64 for IPv6, zeros otherwise. */
static void addr_key(const struct sockaddr *peer, uint8_t out[16])
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(out, 0, 16);
	if (peer && peer->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)peer;

		memcpy(out, v4mapped, 12);
		memcpy(out + 12, &in->sin_addr, 4);
	} else if (peer && peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;

		if (!memcmp(&in6->sin6_addr, v4mapped, 12))
			memcpy(out, &in6->sin6_addr, 16);
		else
			memcpy(out, &in6->sin6_addr, 8);
	}
}

/* Forgives the failures of the periods that have passed since e->last_ms. */
static void decay(const struct auth_ratelimit *rl, struct auth_rl_entry *e, uint64_t now_ms)
{
	uint64_t periods;

	if (now_ms <= e->last_ms)
		return;
	periods = (now_ms - e->last_ms) / rl->p.decay_ms;
	if (periods >= e->failures) {
		e->failures = 0;
		e->last_ms = now_ms;
		return;
	}
	e->failures = (uint16_t)(e->failures - periods);
	e->last_ms += periods * rl->p.decay_ms;
}

static bool is_free(const struct auth_rl_entry *e)
{
	return e->failures == 0 && e->pending == 0;
}

/* Eviction order: free entries first, then the fewest failures and checks in flight. */
static uint32_t weight(const struct auth_rl_entry *e)
{
	return is_free(e) ? 0 : 1u + e->failures + e->pending;
}

/* The entry of peer; with create, a fresh one (evicting the least failed) when absent. */
static struct auth_rl_entry *lookup(struct auth_ratelimit *rl, const struct sockaddr *peer,
				    uint64_t now_ms, bool create)
{
	uint8_t key[16];
	uint8_t h[crypto_shorthash_BYTES];
	struct auth_rl_entry *set;
	struct auth_rl_entry *victim = NULL;
	uint32_t idx;

	addr_key(peer, key);
	crypto_shorthash(h, key, sizeof(key), rl->key);
	memcpy(&idx, h, sizeof(idx));
	set = &rl->e[(idx % AUTH_RL_SETS) * AUTH_RL_WAYS];
	for (unsigned w = 0; w < AUTH_RL_WAYS; w++) {
		struct auth_rl_entry *e = &set[w];

		decay(rl, e, now_ms);
		if (!is_free(e) && !memcmp(e->addr, key, 16))
			return e;
		if (!victim || weight(e) < weight(victim))
			victim = e;
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	memcpy(victim->addr, key, 16);
	victim->last_ms = now_ms;
	return victim;
}

static uint32_t delay_for(const struct auth_ratelimit *rl, uint32_t failures)
{
	uint32_t over;

	if (failures <= rl->p.free_failures)
		return 0;
	over = failures - rl->p.free_failures - 1;
	if (over >= 31 || (rl->p.base_delay_ms << over) >> over != rl->p.base_delay_ms)
		return rl->p.max_delay_ms;
	return HD_MIN(rl->p.base_delay_ms << over, rl->p.max_delay_ms);
}

uint32_t auth_ratelimit_on_failure(struct auth_ratelimit *rl, const struct sockaddr *peer,
				   uint64_t now_ms)
{
	struct auth_rl_entry *e = lookup(rl, peer, now_ms, true);

	if (e->failures < UINT16_MAX)
		e->failures++;
	return delay_for(rl, e->failures);
}

uint32_t auth_ratelimit_delay_ms(struct auth_ratelimit *rl, const struct sockaddr *peer,
				 uint64_t now_ms)
{
	struct auth_rl_entry *e = lookup(rl, peer, now_ms, false);

	return e ? delay_for(rl, e->failures) : 0;
}

bool auth_ratelimit_is_blocked(struct auth_ratelimit *rl, const struct sockaddr *peer,
			       uint64_t now_ms)
{
	struct auth_rl_entry *e = lookup(rl, peer, now_ms, false);

	return e && (e->failures >= rl->p.block_after || e->pending >= rl->p.max_pending);
}

bool auth_ratelimit_has_failed_too_often(struct auth_ratelimit *rl, const struct sockaddr *peer,
					 uint64_t now_ms)
{
	struct auth_rl_entry *e = lookup(rl, peer, now_ms, false);

	return e && e->failures >= rl->p.block_after;
}

void auth_ratelimit_begin(struct auth_ratelimit *rl, const struct sockaddr *peer, uint64_t now_ms)
{
	struct auth_rl_entry *e = lookup(rl, peer, now_ms, true);

	if (e->pending < UINT16_MAX)
		e->pending++;
	rl->pending_max = HD_MAX(rl->pending_max, e->pending);
}

void auth_ratelimit_end(struct auth_ratelimit *rl, const struct sockaddr *peer, uint64_t now_ms)
{
	struct auth_rl_entry *e = lookup(rl, peer, now_ms, false);

	if (e && e->pending)
		e->pending--;
}
