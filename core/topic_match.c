/*
 * core/topic_match.c - word-wise matcher with backtracking only at `#` (bounded by the
 * number of words, so a hostile pattern costs at most words(pattern) * words(topic)).
 */
#include "core/topic_match.h"

#include <string.h>

static size_t word_end(const char *s, size_t len, size_t i)
{
	const char *dot = memchr(s + i, '.', len - i);

	return dot ? (size_t)(dot - s) : len;
}

bool topic_is_pattern(const char *name, size_t len)
{
	for (size_t i = 0; i <= len;) {
		size_t e = word_end(name, len, i);

		if (e - i == 1 && (name[i] == '*' || name[i] == '#'))
			return true;
		i = e + 1;
	}
	return false;
}

/* pi/ti: start of the current word; a position past the end means "no words left". */
static bool match_from(const char *p, size_t plen, size_t pi, const char *t, size_t tlen, size_t ti)
{
	while (pi <= plen) {
		size_t pe = word_end(p, plen, pi);

		if (pe - pi == 1 && p[pi] == '#') {
			/* zero words, or one more word and try again */
			if (match_from(p, plen, pe + 1, t, tlen, ti))
				return true;
			while (ti <= tlen) {
				ti = word_end(t, tlen, ti) + 1;
				if (match_from(p, plen, pe + 1, t, tlen, ti))
					return true;
			}
			return false;
		}
		if (ti > tlen)
			return false;
		{
			size_t te = word_end(t, tlen, ti);
			bool star = pe - pi == 1 && p[pi] == '*';

			if (!star && (pe - pi != te - ti || memcmp(p + pi, t + ti, pe - pi)))
				return false;
			ti = te + 1;
		}
		pi = pe + 1;
	}
	return ti > tlen;
}

bool topic_match(const char *pattern, size_t plen, const char *topic, size_t tlen)
{
	return match_from(pattern, plen, 0, topic, tlen, 0);
}
