/*
 * proto/utf8.c - UTF-8 validation as a shift-based DFA with an ASCII fast path.
 * Pure: no I/O, no allocation; the tables are constant. Any thread.
 *
 * Bytes fall in 12 classes (the row macros below) and each (state, class) pair has a next
 * state; the states are exactly the rows of the Unicode Standard's table 3-7, so
 * overlongs, surrogates and code points past U+10FFFF fail at the first byte that proves
 * it.
 * While at a code point boundary, runs of ASCII are skipped eight bytes at a time: that is
 * what STOMP headers and JSON bodies mostly are.
 */
#include "proto/utf8.h"

#include <string.h>

/* DFA states, one per row of table 3-7's "bytes still expected". A state is stored as
 * six times its index: the bit offset of its next state inside a row (below). */
enum {
	S_ACCEPT = 0 * 6,	/* at a code point boundary: must stay 0 (utf8_stream says so) */
	S_REJECT = 1 * 6,	/* absorbing */
	S_NEED1 = 2 * 6,	/* one continuation byte to go */
	S_NEED2 = 3 * 6,
	S_NEED3 = 4 * 6,
	S_E0 = 5 * 6,		/* after E0: A0..BF, then one more (no overlongs) */
	S_ED = 6 * 6,		/* after ED: 80..9F, then one more (no surrogates) */
	S_F0 = 7 * 6,		/* after F0: 90..BF, then two more (no overlongs) */
	S_F4 = 8 * 6,		/* after F4: 80..8F, then two more (nothing past U+10FFFF) */
};

/* Shift-based DFA: row[byte] packs, for every state, the state that byte leads to, at the
 * state's own bit offset; so a step is one load that does not depend on the state, a
 * shift and a mask. ROW lists the next state for each current state, in enum order. */
#define NEXT_AT(state, next) ((uint64_t)(next) << (state))
#define ROW(acc, need1, need2, need3, e0, ed, f0, f4)                                      \
	(NEXT_AT(S_ACCEPT, acc) | NEXT_AT(S_REJECT, S_REJECT) | NEXT_AT(S_NEED1, need1) |  \
	 NEXT_AT(S_NEED2, need2) | NEXT_AT(S_NEED3, need3) | NEXT_AT(S_E0, e0) |           \
	 NEXT_AT(S_ED, ed) | NEXT_AT(S_F0, f0) | NEXT_AT(S_F4, f4))
#define R S_REJECT
/*                          ACCEPT    NEED1     NEED2    NEED3    E0       ED       F0       F4 */
#define ROW_ASCII	ROW(S_ACCEPT, R,        R,       R,       R,       R,       R,       R)
#define ROW_80_8F	ROW(R,        S_ACCEPT, S_NEED1, S_NEED2, R,       S_NEED1, R,       S_NEED2)
#define ROW_90_9F	ROW(R,        S_ACCEPT, S_NEED1, S_NEED2, R,       S_NEED1, S_NEED2, R)
#define ROW_A0_BF	ROW(R,        S_ACCEPT, S_NEED1, S_NEED2, S_NEED1, R,       S_NEED2, R)
#define ROW_BAD		ROW(R,        R,        R,       R,       R,       R,       R,       R)
#define ROW_LEAD(next)	ROW(next,     R,        R,       R,       R,       R,       R,       R)

static const uint64_t row[256] = {
	[0x00 ... 0x7f] = ROW_ASCII,
	[0x80 ... 0x8f] = ROW_80_8F,
	[0x90 ... 0x9f] = ROW_90_9F,
	[0xa0 ... 0xbf] = ROW_A0_BF,
	[0xc0 ... 0xc1] = ROW_BAD,		/* overlong 2-byte leads */
	[0xc2 ... 0xdf] = ROW_LEAD(S_NEED1),
	[0xe0] = ROW_LEAD(S_E0),
	[0xe1 ... 0xec] = ROW_LEAD(S_NEED2),
	[0xed] = ROW_LEAD(S_ED),
	[0xee ... 0xef] = ROW_LEAD(S_NEED2),
	[0xf0] = ROW_LEAD(S_F0),
	[0xf1 ... 0xf3] = ROW_LEAD(S_NEED3),
	[0xf4] = ROW_LEAD(S_F4),
	[0xf5 ... 0xff] = ROW_BAD,		/* past U+10FFFF, or not UTF-8 at all */
};

#undef R

#define HIGH_BITS 0x8080808080808080ull

static enum utf8_status status_of(uint8_t state)
{
	if (state == S_ACCEPT)
		return UTF8_COMPLETE;
	return state == S_REJECT ? UTF8_INVALID : UTF8_PARTIAL;
}

/* Runs the DFA over p[0..len) from `state`; returns the state after the last byte. */
static uint8_t run(uint8_t state, const uint8_t *p, size_t len)
{
	uint64_t st = state;
	size_t i = 0;

	while (i < len) {
		size_t stop;

		if (st == S_ACCEPT) {
			uint64_t w;

			/* memcpy: p has no alignment; compilers emit one unaligned load */
			while (len - i >= 8) {
				memcpy(&w, p + i, 8);
				if (w & HIGH_BITS)
					break;
				i += 8;
			}
		}
		/* Non-ASCII text is runs of multi-byte characters: stay in the plain DFA for a
		 * stretch instead of probing for ASCII words at every boundary. REJECT absorbs,
		 * so checking for it once per stretch is enough. */
		stop = len - i > 16 ? i + 16 : len;
		for (; i < stop; i++)
			st = (row[p[i]] >> st) & 63;
		if (st == S_REJECT)
			break;
	}
	return (uint8_t)st;
}

enum utf8_status utf8_stream_feed(struct utf8_stream *s, const void *p, size_t len)
{
	if (s->state != S_REJECT)
		s->state = run(s->state, p, len);
	return status_of(s->state);
}

enum utf8_status utf8_stream_status(const struct utf8_stream *s)
{
	return status_of(s->state);
}

bool utf8_is_valid(const void *p, size_t len)
{
	return run(S_ACCEPT, p, len) == S_ACCEPT;
}

size_t utf8_trim_partial(const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t lead;
	size_t need;

	if (len == 0)
		return 0;
	lead = len - 1;
	while (lead > 0 && (b[lead] & 0xc0) == 0x80 && len - lead < 4)
		lead--;
	if (b[lead] >= 0xf0)
		need = 4;
	else if (b[lead] >= 0xe0)
		need = 3;
	else if (b[lead] >= 0xc0)
		need = 2;
	else
		need = 1;
	return lead + need > len ? lead : len;
}
