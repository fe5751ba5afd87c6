/*
 * core/base/hd_fmt.h - number formatting for hot paths (message ids, ack ids), where
 * snprintf's format parsing showed in profiles. Leaf header.
 */
#ifndef HD_FMT_H
#define HD_FMT_H

#include <stddef.h>
#include <stdint.h>

/* Writes v in decimal at out (no NUL); returns the digits written (1..20). */
static inline size_t hd_fmt_u64(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/* Writes v as 8 lower-case hex digits (no NUL); returns 8. */
static inline size_t hd_fmt_hex32(char *out, uint32_t v)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 7; i >= 0; i--, v >>= 4)
		out[i] = digits[v & 15];
	return 8;
}

#endif
