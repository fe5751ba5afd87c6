/*
 * cluster/suspicion.c - see suspicion.h. The deadline is recomputed from the start time on
 * each confirmation, so the total wait follows the formula however late they arrive.
 */
#include "cluster/suspicion.h"

#include <math.h>
#include <string.h>

uint64_t suspicion_min_ms(uint32_t mult, uint32_t n, uint64_t interval_ms)
{
	double scale = log10(n > 1 ? (double)n : 1.0);

	if (scale < 1.0)
		scale = 1.0;
	return (uint64_t)((double)mult * scale * (double)interval_ms);
}

uint64_t suspicion_timeout_ms(uint32_t n, uint32_t k, uint64_t min_ms, uint64_t max_ms)
{
	double frac;
	double raw;

	if (k == 0 || n >= k)
		return min_ms;
	frac = log((double)n + 1.0) / log((double)k + 1.0);
	raw = (double)max_ms - frac * (double)(max_ms - min_ms);
	return raw < (double)min_ms ? min_ms : (uint64_t)floor(raw);
}

void suspicion_init(struct suspicion *s, uint64_t from_hash, uint32_t k, uint64_t min_ms,
		    uint64_t max_ms, uint64_t now_ms)
{
	memset(s, 0, sizeof(*s));
	s->start_ms = now_ms;
	s->min_ms = min_ms;
	s->max_ms = max_ms > min_ms ? max_ms : min_ms;
	s->k = k < SUSPICION_MAX_CONFIRM ? k : SUSPICION_MAX_CONFIRM;
	s->seen[s->nseen++] = from_hash;
	s->deadline_ms = now_ms + suspicion_timeout_ms(0, s->k, s->min_ms, s->max_ms);
}

bool suspicion_confirm(struct suspicion *s, uint64_t from_hash)
{
	if (s->n >= s->k)
		return false;
	for (uint32_t i = 0; i < s->nseen; i++)
		if (s->seen[i] == from_hash)
			return false;
	s->seen[s->nseen++] = from_hash;
	s->n++;
	s->deadline_ms = s->start_ms + suspicion_timeout_ms(s->n, s->k, s->min_ms, s->max_ms);
	return true;
}
