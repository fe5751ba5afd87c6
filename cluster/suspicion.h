/*
 * cluster/suspicion.h - Lifeguard's dynamic suspicion timer (Lifeguard, section IV-B;
 * memberlist's suspicion.go). A suspicion starts at max and shrinks toward min as k
 * independent confirmations arrive, on a log scale:
 *
 *   timeout(c) = max(min, max - (max - min) * log(c + 1) / log(k + 1))
 *
 * so one slow accuser cannot kill a node quickly, while a node many peers fail to reach
 * dies after min. Pure arithmetic over caller storage; time is passed in. Owned by the
 * swim instance that holds the suspected member.
 */
#ifndef CLUSTER_SUSPICION_H
#define CLUSTER_SUSPICION_H

#include <stdbool.h>
#include <stdint.h>

#define SUSPICION_MAX_CONFIRM 16	/* k is capped here (k = suspicion_mult - 2) */

struct suspicion {
	uint64_t start_ms;		/* when this node began suspecting */
	uint64_t min_ms;		/* timeout with k confirmations */
	uint64_t max_ms;		/* timeout with none */
	uint64_t deadline_ms;		/* start + timeout(n) */
	uint32_t k;			/* confirmations wanted to reach min */
	uint32_t n;			/* independent confirmations so far */
	uint64_t seen[SUSPICION_MAX_CONFIRM + 1];	/* name hashes: first accuser + confirmers */
	uint32_t nseen;
	bool rechecked;			/* swim probed the suspect itself once (see swim.c) */
};

/* Suspicion timeout floor for a cluster of n nodes:
 * mult * max(1, log10(n)) * interval_ms (memberlist's suspicionTimeout). */
uint64_t suspicion_min_ms(uint32_t mult, uint32_t n, uint64_t interval_ms);

/* Starts a suspicion raised by the node whose name hashes to from_hash. With k == 0 the
 * timer starts at min (nobody is expected to confirm). */
void suspicion_init(struct suspicion *s, uint64_t from_hash, uint32_t k, uint64_t min_ms,
		    uint64_t max_ms, uint64_t now_ms);

/* Counts a confirmation from another accuser. Returns true when it was new and moved the
 * deadline (the caller re-gossips it), false for a repeat or once k are in. */
bool suspicion_confirm(struct suspicion *s, uint64_t from_hash);

/* The timeout after n of k confirmations (the formula above), in ms. */
uint64_t suspicion_timeout_ms(uint32_t n, uint32_t k, uint64_t min_ms, uint64_t max_ms);

#endif
