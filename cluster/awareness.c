/*
 * cluster/awareness.c - the local health score: +1 for each nack missing from a failed
 * probe (or for any failed probe when no nacks were expected), +1 for each time we must
 * refute a suspicion of ourselves, -1 for each successful probe. See awareness.h.
 */
#include "cluster/awareness.h"

void awareness_init(struct awareness *a, int max)
{
	a->score = 0;
	a->max = max > 0 ? max : 1;
}

void awareness_apply_delta(struct awareness *a, int delta)
{
	int s = a->score + delta;

	if (s < 0)
		s = 0;
	if (s > a->max - 1)
		s = a->max - 1;
	a->score = s;
}

int awareness_score(const struct awareness *a)
{
	return a->score;
}

uint64_t awareness_scale_ms(const struct awareness *a, uint64_t timeout_ms)
{
	return timeout_ms * (uint64_t)(a->score + 1);
}
