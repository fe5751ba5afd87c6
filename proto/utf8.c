/*
 * proto/utf8.c - UTF-8 validation as a byte-class DFA with an ASCII fast path.
 * Pure: no I/O, no allocation; the tables are constant. Any thread.
 *
 * Each byte maps to one of 12 classes and each (state, class) pair to the next state;
 * the states are exactly the rows of the Unicode Standard's table 3-7, so overlongs,
 * surrogates and code points past U+10FFFF fail at the first byte that proves it.
 * While at a code point boundary, runs of ASCII are skipped eight bytes at a time: that is
 * what STOMP headers and JSON bodies mostly are.
 */
#include "proto/utf8.h"

#include <string.h>

enum {
	C_ASCII,	/* 00..7F */
	C_80,		/* 80..8F: continuation */
	C_90,		/* 90..9F: continuation */
	C_A0,		/* A0..BF: continuation */
	C_BAD,		/* C0 C1 F5..FF: never in UTF-8 */
	C_L2,		/* C2..DF: lead of 2 */
	C_E0,		/* E0: lead of 3, next A0..BF (no overlongs) */
	C_L3,		/* E1..EC EE EF: lead of 3 */
	C_ED,		/* ED: lead of 3, next 80..9F (no surrogates) */
	C_F0,		/* F0: lead of 4, next 90..BF (no overlongs) */
	C_L4,		/* F1..F3: lead of 4 */
	C_F4,		/* F4: lead of 4, next 80..8F (nothing past U+10FFFF) */
	C_COUNT
};

enum {
	S_ACCEPT,	/* at a code point boundary: must stay 0 (struct utf8_stream says so) */
	S_REJECT,
	S_NEED1,	/* one continuation byte to go */
	S_NEED2,
	S_NEED3,
	S_E0,
	S_ED,
	S_F0,
	S_F4,
	S_COUNT
};

static const uint8_t byte_class[256] = {
	[0x00 ... 0x7f] = C_ASCII,
	[0x80 ... 0x8f] = C_80,
	[0x90 ... 0x9f] = C_90,
	[0xa0 ... 0xbf] = C_A0,
	[0xc0 ... 0xc1] = C_BAD,
	[0xc2 ... 0xdf] = C_L2,
	[0xe0] = C_E0,
	[0xe1 ... 0xec] = C_L3,
	[0xed] = C_ED,
	[0xee ... 0xef] = C_L3,
	[0xf0] = C_F0,
	[0xf1 ... 0xf3] = C_L4,
	[0xf4] = C_F4,
	[0xf5 ... 0xff] = C_BAD,
};

/* Missing entries are 0 == S_ACCEPT, so every row spells out all its classes. */
static const uint8_t next_state[S_COUNT][C_COUNT] = {
	[S_ACCEPT] = { S_ACCEPT, S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_NEED1,
		       S_E0, S_NEED2, S_ED, S_F0, S_NEED3, S_F4 },
	[S_REJECT] = { S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT,
		       S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT },
	[S_NEED1] = { S_REJECT, S_ACCEPT, S_ACCEPT, S_ACCEPT, S_REJECT, S_REJECT,
		      S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT },
	[S_NEED2] = { S_REJECT, S_NEED1, S_NEED1, S_NEED1, S_REJECT, S_REJECT,
		      S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT },
	[S_NEED3] = { S_REJECT, S_NEED2, S_NEED2, S_NEED2, S_REJECT, S_REJECT,
		      S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT },
	[S_E0] = { S_REJECT, S_REJECT, S_REJECT, S_NEED1, S_REJECT, S_REJECT,
		   S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT },
	[S_ED] = { S_REJECT, S_NEED1, S_NEED1, S_REJECT, S_REJECT, S_REJECT,
		   S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT },
	[S_F0] = { S_REJECT, S_REJECT, S_NEED2, S_NEED2, S_REJECT, S_REJECT,
		   S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT },
	[S_F4] = { S_REJECT, S_NEED2, S_REJECT, S_REJECT, S_REJECT, S_REJECT,
		   S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT, S_REJECT },
};

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
	size_t i = 0;

	while (i < len) {
		if (state == S_ACCEPT) {
			uint64_t w;

			/* memcpy: p has no alignment; compilers emit one unaligned load */
			while (len - i >= 8) {
				memcpy(&w, p + i, 8);
				if (w & HIGH_BITS)
					break;
				i += 8;
			}
			while (i < len && p[i] < 0x80)
				i++;
			if (i == len)
				break;
		}
		state = next_state[state][byte_class[p[i]]];
		if (state == S_REJECT)
			break;
		i++;
	}
	return state;
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
