/*
 * core/base/hd_bytes.h - big-endian integers in byte buffers, for the wire and log formats
 * that write them by hand.
 */
#ifndef HD_BYTES_H
#define HD_BYTES_H

#include <stdint.h>

static inline void hd_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
}

static inline uint64_t hd_get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

#endif
