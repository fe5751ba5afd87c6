/*
 * core/base/hd_time.h - monotonic clock in the units the code names (ns, ms).
 */
#ifndef HD_TIME_H
#define HD_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t hd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t hd_now_ms(void)
{
	return hd_now_ns() / 1000000ull;
}

/* Wall-clock Unix time in ms (token exp/nbf are wall-clock). */
static inline int64_t hd_now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
