/*
 * auth/auth_ratelimit.h - failed-login rate limiting per source address. Repeated
 * failures from one address make its ERROR answers come later and later (the server holds
 * the ERROR for the returned delay, on a timer, never blocking), and past a threshold the
 * address gets no slow password check at all until it cools down, so a guessing client
 * cannot keep the auth thread busy. A remembered credential (auth_cache) or a valid JWT
 * still logs in from a blocked address: both prove knowledge guessing cannot produce.
 *
 * Addresses: IPv4 by /32, IPv6 by /64 (one host usually owns a /64), IPv4-mapped IPv6 as
 * IPv4. Failures decay: one is forgiven every decay_ms. Table: fixed size, 4-way set
 * associative, indexed by SipHash under a random key; a full set evicts the entry with
 * the fewest failures, so a flood of fresh addresses cannot evict a busy attacker first.
 *
 * Threads: one table per shard, caller storage, used by its owner only; times are the
 * caller's monotonic now_ms.
 */
#ifndef AUTH_AUTH_RATELIMIT_H
#define AUTH_AUTH_RATELIMIT_H

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define AUTH_RL_SETS 256
#define AUTH_RL_WAYS 4

struct auth_rl_entry {
	uint8_t addr[16];	/* IPv4 mapped into ::ffff:0:0/96; IPv6 /64 with zero low half */
	uint16_t failures;	/* after decay up to last_ms */
	uint16_t pending;	/* slow checks in flight */
	uint64_t last_ms;	/* decay accounted up to here */
};

struct auth_rl_params {
	uint16_t free_failures;		/* answered without delay (3) */
	uint32_t base_delay_ms;		/* first delay; doubles per failure (250) */
	uint32_t max_delay_ms;		/* cap (10000) */
	uint16_t block_after;		/* failures after which no slow check runs (10) */
	uint16_t max_pending;		/* slow checks in flight per address (8) */
	uint32_t decay_ms;		/* one failure forgiven per this long (30000) */
};

struct auth_ratelimit {
	struct auth_rl_params p;
	uint8_t key[crypto_shorthash_KEYBYTES];
	uint16_t pending_max;		/* most slow checks one address ever had in flight */
	struct auth_rl_entry e[AUTH_RL_SETS * AUTH_RL_WAYS];
};

/* Empty table with the defaults above. */
void auth_ratelimit_init(struct auth_ratelimit *rl);

/* Records one failed login from peer and returns how long to hold the ERROR back, in ms:
 * 0 for the first free_failures, then base_delay_ms doubling up to max_delay_ms. */
uint32_t auth_ratelimit_on_failure(struct auth_ratelimit *rl, const struct sockaddr *peer,
				   uint64_t now_ms);

/* Delay an answer to peer would get now without recording anything (0 when unknown). */
uint32_t auth_ratelimit_delay_ms(struct auth_ratelimit *rl, const struct sockaddr *peer,
				 uint64_t now_ms);

/* True when peer may not start a slow password check now: too many recent failures, or
 * max_pending checks already in flight. */
bool auth_ratelimit_is_blocked(struct auth_ratelimit *rl, const struct sockaddr *peer,
			       uint64_t now_ms);

/* True when peer is blocked for its failures alone (not merely for checks in flight): a
 * login then is refused; at the in-flight cap it should only wait (AUTH_RETRY). */
bool auth_ratelimit_has_failed_too_often(struct auth_ratelimit *rl, const struct sockaddr *peer,
					 uint64_t now_ms);
/* A slow check for peer starts / ends (pair them; an evicted entry is simply forgotten).
 * begin raises rl->pending_max to the address's new count in flight when that is higher. */
void auth_ratelimit_begin(struct auth_ratelimit *rl, const struct sockaddr *peer, uint64_t now_ms);
void auth_ratelimit_end(struct auth_ratelimit *rl, const struct sockaddr *peer, uint64_t now_ms);

#endif
