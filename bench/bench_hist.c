/*
 * bench/bench_hist.c - HDR-style histogram (see bench_hist.h for the bucket layout).
 * Bucket idx < 128 holds exactly the value idx; above, idx = shift * 64 + (v >> shift)
 * with (v >> shift) in [64, 128), so each bucket spans 2^shift values.
 */
#include "bench/bench_hist.h"

#include <string.h>

void bench_hist_init(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
	if (src->min_ns < dst->min_ns)
		dst->min_ns = src->min_ns;
}

static uint64_t bucket_mid(unsigned idx)
{
	unsigned shift;
	uint64_t lo;

	if (idx < 2 * BENCH_HIST_SUB)
		return idx;
	shift = idx / BENCH_HIST_SUB - 1;
	lo = (uint64_t)(idx % BENCH_HIST_SUB + BENCH_HIST_SUB) << shift;
	return lo + ((1ull << shift) >> 1);
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t rank;
	uint64_t seen = 0;

	if (!h->count)
		return 0;
	if (q >= 1.0)
		return h->max_ns;
	rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > rank) {
			uint64_t v = bucket_mid(i);

			if (v < h->min_ns)
				v = h->min_ns;
			return v > h->max_ns ? h->max_ns : v;
		}
	}
	return h->max_ns;
}
