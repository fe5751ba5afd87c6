/*
 * bench/bench_hist.h - HDR-style latency histogram: log-linear buckets, 64 linear
 * sub-buckets per power of two, so any recorded value is known within 1/64 (1.6%) and
 * recording is a shift and an add. Values are nanoseconds up to 2^40 (~18 min).
 * Plain memory, no allocation: one histogram per worker thread, merged at the end.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 6
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)	/* 64 */
#define BENCH_HIST_MAX_BITS 40
#define BENCH_HIST_BUCKETS ((BENCH_HIST_MAX_BITS - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t count;
	uint64_t min_ns;
	uint64_t max_ns;
	uint64_t sum_ns;
	uint64_t b[BENCH_HIST_BUCKETS];
};

void bench_hist_init(struct bench_hist *h);

/* Records one value; values past 2^40 ns land in the last bucket (max_ns stays exact). */
static inline void bench_hist_record(struct bench_hist *h, uint64_t ns)
{
	unsigned idx;

	if (ns < 2 * BENCH_HIST_SUB) {
		idx = (unsigned)ns;
	} else {
		unsigned e = 63u - (unsigned)__builtin_clzll(ns);	/* >= SUB_BITS + 1 */
		unsigned shift = e - BENCH_HIST_SUB_BITS;

		idx = shift * BENCH_HIST_SUB + (unsigned)(ns >> shift);
		if (idx >= BENCH_HIST_BUCKETS)
			idx = BENCH_HIST_BUCKETS - 1;
	}
	h->b[idx]++;
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
}

/* Adds every bucket of src into dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/* The value at quantile q (0..1): the middle of the bucket holding the q-th value, clamped
 * to [min, max]; 0 when empty. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

#endif
