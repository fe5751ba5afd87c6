/*
 * cluster/awareness.h - Lifeguard's local health multiplier (LHM). A node that misses its
 * own acks and nacks is more likely slow itself than surrounded by dead peers, so it widens
 * its probe timeout and interval by (score + 1) instead of accusing healthy nodes
 * (Lifeguard, section IV-A; memberlist's awareness.go). Owned by one swim instance; called
 * only on that instance's thread.
 */
#ifndef CLUSTER_AWARENESS_H
#define CLUSTER_AWARENESS_H

#include <stdint.h>

struct awareness {
	int score;	/* 0 (healthy) .. max - 1 */
	int max;	/* the multiplier never exceeds max */
};

void awareness_init(struct awareness *a, int max);

/* Adds delta (negative after a successful probe) and clamps to [0, max - 1]. */
void awareness_apply_delta(struct awareness *a, int delta);

int awareness_score(const struct awareness *a);

/* timeout_ms * (score + 1). */
uint64_t awareness_scale_ms(const struct awareness *a, uint64_t timeout_ms);

#endif
