/*
 * core/topic_match.c - word-wise glob matcher: `#` backtracks only to the latest `#`, so a
 * hostile pattern costs at most words(pattern) * words(topic).
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

/*
 * Word cursor over a dot-separated name. An empty name has no words (RabbitMQ: the empty
 * routing key is zero words), so `*` does not match it while `#` does.
 */
struct words {
	const char *s;
	size_t len;
	size_t at;	/* start of the current word; > len when no word is left */
	size_t end;	/* end of the current word */
};

static void words_init(struct words *w, const char *s, size_t len)
{
	w->s = s;
	w->len = len;
	w->at = len ? 0 : 1;
	w->end = len ? word_end(s, len, 0) : 0;
}

static bool words_left(const struct words *w)
{
	return w->at <= w->len;
}

static void words_next(struct words *w)
{
	w->at = w->end + 1;
	if (w->at <= w->len)
		w->end = word_end(w->s, w->len, w->at);
}

static bool word_is(const struct words *w, char c)
{
	return w->end - w->at == 1 && w->s[w->at] == c;
}

/*
 * Glob matching over words: `#` is glob's `*`, `*` is glob's `?`. On a mismatch only the
 * most recent `#` is retried one word further (an earlier `#` can never do better), so a
 * hostile pattern costs at most words(pattern) * words(topic) word comparisons.
 */
bool topic_match(const char *pattern, size_t plen, const char *topic, size_t tlen)
{
	struct words p, t, star_p, star_t;
	bool have_star = false;

	words_init(&p, pattern, plen);
	words_init(&t, topic, tlen);
	while (words_left(&t)) {
		if (words_left(&p) && word_is(&p, '#')) {
			words_next(&p);
			star_p = p;	/* `#` first tries to match zero words */
			star_t = t;
			have_star = true;
			continue;
		}
		if (words_left(&p) && (word_is(&p, '*') ||
				       (p.end - p.at == t.end - t.at &&
					!memcmp(pattern + p.at, topic + t.at, p.end - p.at)))) {
			words_next(&p);
			words_next(&t);
			continue;
		}
		if (!have_star)
			return false;
		words_next(&star_t);	/* the last `#` swallows one more word */
		t = star_t;
		p = star_p;
	}
	while (words_left(&p) && word_is(&p, '#'))
		words_next(&p);
	return !words_left(&p);
}

static size_t scope_start(const char *s, size_t len)
{
	const char *sep = memrchr(s, TOPIC_SCOPE_SEP, len);

	return sep ? (size_t)(sep - s) : len;
}

bool topic_match_scoped(const char *pattern, size_t plen, const char *topic, size_t tlen)
{
	size_t pn = scope_start(pattern, plen);
	size_t tn = scope_start(topic, tlen);

	if (plen - pn != tlen - tn || memcmp(pattern + pn, topic + tn, plen - pn))
		return false;
	return topic_match(pattern, pn, topic, tn);
}
