/*
 * tests/unit/core/test_topic_match.c - core/topic_match.c against RabbitMQ's topic exchange
 * (www.rabbitmq.com/tutorials/amqp-concepts#exchange-topic, and rabbit_db_topic_exchange's
 * split_topic_key/trie_match as the reference): names are dot-separated words, `*` matches
 * exactly one word, `#` zero or more; a word is any run of bytes without a dot, so "a..b"
 * has an empty middle word and the empty name has no words at all.
 *
 * Both inputs sit flush against a PROT_NONE page (tests/support/guarded_buf.h): a matcher
 * that reads one byte past a name (e.g. expecting a NUL) crashes.
 */
#include "core/topic_match.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool match(const char *pattern, const char *topic)
{
	struct guarded_buf p;
	struct guarded_buf t;
	bool r;

	guarded_buf_init(&p, pattern, strlen(pattern));
	guarded_buf_init(&t, topic, strlen(topic));
	r = topic_match(p.ptr, p.len, t.ptr, t.len);
	guarded_buf_fini(&p);
	guarded_buf_fini(&t);
	return r;
}

static bool is_pattern(const char *name)
{
	struct guarded_buf g;
	bool r;

	guarded_buf_init(&g, name, strlen(name));
	r = topic_is_pattern(g.ptr, g.len);
	guarded_buf_fini(&g);
	return r;
}

#define MATCHES(p, t) cr_assert(match((p), (t)), "\"%s\" should match \"%s\"", (p), (t))
#define NO_MATCH(p, t) cr_assert_not(match((p), (t)), "\"%s\" should not match \"%s\"", (p), (t))

/* ---- literal words ---- */

Test(topic_match, literal_pattern_matches_only_the_same_name)
{
	MATCHES("news.uk", "news.uk");
	NO_MATCH("news.uk", "news.us");
	NO_MATCH("news.uk", "news");
	NO_MATCH("news.uk", "news.uk.london");
	NO_MATCH("news", "newsletter");
	NO_MATCH("newsletter", "news");
}

Test(topic_match, words_compare_as_whole_words_not_prefixes)
{
	NO_MATCH("news.u", "news.uk");
	NO_MATCH("news.uk", "news.u");
	NO_MATCH("a.b", "a.bc");
	NO_MATCH("a.bc", "a.b");
}

/* ---- `*`: exactly one word ---- */

Test(topic_match, star_matches_exactly_one_word)
{
	MATCHES("news.*", "news.uk");
	NO_MATCH("news.*", "news");
	NO_MATCH("news.*", "news.uk.london");
	MATCHES("*.uk", "news.uk");
	NO_MATCH("*.uk", "uk");
	MATCHES("a.*.c", "a.b.c");
	NO_MATCH("a.*.c", "a.c");
	NO_MATCH("a.*.c", "a.b.b.c");
}

Test(topic_match, star_star_needs_two_words)
{
	NO_MATCH("*.*", "a");
	MATCHES("*.*", "a.b");
	NO_MATCH("*.*", "a.b.c");
	MATCHES("*", "a");
	NO_MATCH("*", "a.b");
}

Test(topic_match, star_is_a_wildcard_only_as_a_whole_word)
{
	NO_MATCH("news*", "newsuk");
	NO_MATCH("news.u*", "news.uk");
	MATCHES("news.u*", "news.u*");
	NO_MATCH("*a", "ba");
}

/* ---- `#`: zero or more words ---- */

Test(topic_match, trailing_hash_matches_zero_or_more_words)
{
	MATCHES("alerts.#", "alerts");
	MATCHES("alerts.#", "alerts.a");
	MATCHES("alerts.#", "alerts.a.b");
	MATCHES("alerts.#", "alerts.a.b.c.d.e");
	NO_MATCH("alerts.#", "alert");
	NO_MATCH("alerts.#", "other.alerts");
}

Test(topic_match, leading_hash_matches_zero_or_more_words)
{
	MATCHES("#.error", "error");
	MATCHES("#.error", "db.error");
	MATCHES("#.error", "a.b.c.error");
	NO_MATCH("#.error", "error.db");
}

Test(topic_match, hash_in_the_middle_matches_zero_or_more_words)
{
	MATCHES("a.#.b", "a.b");
	MATCHES("a.#.b", "a.x.b");
	MATCHES("a.#.b", "a.x.y.b");
	NO_MATCH("a.#.b", "a");
	NO_MATCH("a.#.b", "a.x");
	NO_MATCH("a.#.b", "b");
	NO_MATCH("a.#.b", "a.b.c");
	MATCHES("a.#.b", "a.b.b");
}

Test(topic_match, lone_hash_matches_every_name)
{
	MATCHES("#", "a");
	MATCHES("#", "a.b.c");
	MATCHES("#", "a..b");
	MATCHES("#", "");
}

Test(topic_match, hash_is_a_wildcard_only_as_a_whole_word)
{
	NO_MATCH("alerts#", "alerts.a");
	NO_MATCH("a.#b", "a.x.b");
	MATCHES("a.#b", "a.#b");
}

Test(topic_match, hash_and_star_combine)
{
	MATCHES("*.#", "a");
	MATCHES("*.#", "a.b.c");
	MATCHES("#.*", "a");
	MATCHES("#.*", "a.b");
	MATCHES("*.#.*", "a.b");
	NO_MATCH("*.#.*", "a");
	MATCHES("#.*.#", "x");
	MATCHES("a.*.#", "a.b");
	NO_MATCH("a.*.#", "a");
	MATCHES("#.b.*", "a.b.c");
	NO_MATCH("#.b.*", "a.b");
}

Test(topic_match, consecutive_hashes_still_match_zero_words)
{
	MATCHES("#.#", "a");
	MATCHES("a.#.#.b", "a.b");
	MATCHES("a.#.#.b", "a.x.y.z.b");
	MATCHES("#.#.#", "a.b");
}

/* ---- empty words ---- */

Test(topic_match, empty_words_are_words)
{
	MATCHES("a..b", "a..b");
	NO_MATCH("a..b", "a.b");
	NO_MATCH("a.b", "a..b");
	MATCHES("a.*.b", "a..b");
	MATCHES("a.#.b", "a..b");
	MATCHES("a.#", "a.");
	MATCHES("a.*", "a.");
	MATCHES("*.a", ".a");
	NO_MATCH("a", "a.");
	NO_MATCH("a.", "a");
	MATCHES("*.*", ".");
}

Test(topic_match, empty_pattern_matches_only_the_empty_name)
{
	MATCHES("", "");
	NO_MATCH("", "a");
	NO_MATCH("a", "");
}

/* RabbitMQ's split_topic_key(<<>>) is [] (no words), so a pattern that needs a word cannot
 * match the empty name. */
Test(topic_match, empty_name_has_no_word_for_star)
{
	NO_MATCH("*", "");
	NO_MATCH("*.#", "");
	NO_MATCH("#.*", "");
	MATCHES("#", "");
}

/* ---- bytes ---- */

Test(topic_match, words_are_compared_as_bytes)
{
	MATCHES("caf\xc3\xa9.*", "caf\xc3\xa9.x");
	NO_MATCH("caf\xc3\xa9.*", "cafe.x");
	MATCHES("a b.*", "a b.c");
	NO_MATCH("News.*", "news.uk");
}

Test(topic_match, names_are_bounded_by_length_not_nul)
{
	static const char pattern[] = "a.*\0junk";
	static const char topic[] = "a.b\0c.d";

	cr_assert(topic_match(pattern, 3, topic, 3));
	cr_assert_not(topic_match(pattern, 3, topic, sizeof(topic) - 1), "the NUL is a byte");
	cr_assert(topic_match("a.\0", 3, "a.\0", 3));
	cr_assert_not(topic_match("a.\0", 3, "a.x", 3));
}

/* ---- topic_is_pattern ---- */

Test(topic_match, is_pattern_when_some_word_is_a_wildcard)
{
	cr_assert(is_pattern("*"));
	cr_assert(is_pattern("#"));
	cr_assert(is_pattern("news.*"));
	cr_assert(is_pattern("alerts.#"));
	cr_assert(is_pattern("*.uk"));
	cr_assert(is_pattern("a.#.b"));
	cr_assert(is_pattern("a..*"));
}

Test(topic_match, is_not_a_pattern_when_wildcards_are_inside_words)
{
	cr_assert_not(is_pattern(""));
	cr_assert_not(is_pattern("news"));
	cr_assert_not(is_pattern("news.uk"));
	cr_assert_not(is_pattern("news*"));
	cr_assert_not(is_pattern("a.b#"));
	cr_assert_not(is_pattern("**"));
	cr_assert_not(is_pattern("a.##.b"));
	cr_assert_not(is_pattern("a..b"));
	cr_assert_not(is_pattern("."));
}

/* ---- against a reference ---- */

/* The definition over word lists, the slow way (RabbitMQ's match_words): what the matcher
 * must agree with on every small input. */
struct words {
	const char *w[16];
	size_t len[16];
	size_t n;
};

static void split(const char *s, struct words *out)
{
	size_t len = strlen(s);
	size_t i = 0;

	out->n = 0;
	if (!len)
		return;	/* RabbitMQ: the empty name has no words */
	for (;;) {
		const char *dot = memchr(s + i, '.', len - i);
		size_t e = dot ? (size_t)(dot - s) : len;

		out->w[out->n] = s + i;
		out->len[out->n++] = e - i;
		if (!dot)
			return;
		i = e + 1;
	}
}

static bool ref_match(const struct words *p, size_t pi, const struct words *t, size_t ti)
{
	if (pi == p->n)
		return ti == t->n;
	if (p->len[pi] == 1 && p->w[pi][0] == '#') {
		for (size_t k = ti; k <= t->n; k++)
			if (ref_match(p, pi + 1, t, k))
				return true;
		return false;
	}
	if (ti == t->n)
		return false;
	if (!(p->len[pi] == 1 && p->w[pi][0] == '*') &&
	    (p->len[pi] != t->len[ti] || memcmp(p->w[pi], t->w[ti], p->len[pi])))
		return false;
	return ref_match(p, pi + 1, t, ti + 1);
}

/* Every name of up to `max` words over the alphabet, written into out[]; returns the count. */
static size_t all_names(const char *const *alphabet, size_t nalpha, size_t max, char (*out)[32])
{
	size_t n = 0;
	size_t total = 1;

	for (size_t words = 1; words <= max; words++) {
		total *= nalpha;
		for (size_t code = 0; code < total; code++) {
			size_t c = code;

			out[n][0] = '\0';
			for (size_t k = 0; k < words; k++, c /= nalpha) {
				if (k)
					strcat(out[n], ".");
				strcat(out[n], alphabet[c % nalpha]);
			}
			n++;
		}
	}
	return n;
}

Test(topic_match, agrees_with_the_word_list_definition_on_all_small_inputs)
{
	static const char *const palpha[] = { "a", "b", "*", "#", "" };
	static const char *const talpha[] = { "a", "b", "" };
	static char pats[5 + 25 + 125 + 625][32];
	static char tops[3 + 9 + 27 + 81][32];
	static struct guarded_buf gtops[3 + 9 + 27 + 81];
	size_t np = all_names(palpha, 5, 4, pats);
	size_t nt = all_names(talpha, 3, 4, tops);
	size_t checked = 0;

	for (size_t j = 0; j < nt; j++)
		guarded_buf_init(&gtops[j], tops[j], strlen(tops[j]));
	for (size_t i = 0; i < np; i++) {
		struct guarded_buf gp;
		struct words pw;

		/* the empty name is left to empty_name_has_no_word_for_star */
		if (!pats[i][0])
			continue;
		split(pats[i], &pw);
		guarded_buf_init(&gp, pats[i], strlen(pats[i]));
		for (size_t j = 0; j < nt; j++) {
			struct words tw;

			if (!tops[j][0])
				continue;
			split(tops[j], &tw);
			cr_assert_eq(topic_match(gp.ptr, gp.len, gtops[j].ptr, gtops[j].len),
				     ref_match(&pw, 0, &tw, 0), "pattern \"%s\" topic \"%s\"", pats[i],
				     tops[j]);
			checked++;
		}
		guarded_buf_fini(&gp);
	}
	for (size_t j = 0; j < nt; j++)
		guarded_buf_fini(&gtops[j]);
	cr_assert_gt(checked, 50000);
}

/* ---- cost ---- */

/* A hostile pattern ("#.a.#.a.#.a.#.a.#.a.#.a.#.a.#.a.z", 33 bytes, a legal SUBSCRIBE)
 * against a 60-word topic must cost at most words(pattern) * words(topic): backtracking at
 * every `#` was exponential (over 20 s here, on the owner shard's thread, for every SEND).
 * The timeout is a termination bound, not a speed assertion: the answer takes microseconds. */
Test(topic_match, hostile_pattern_costs_at_most_words_squared, .timeout = 10)
{
	char pattern[256] = "";
	char topic[256] = "";

	for (int i = 0; i < 12; i++)
		strcat(pattern, "#.a.");
	strcat(pattern, "z");
	for (int i = 0; i < 100; i++)
		strcat(topic, i ? ".a" : "a");
	NO_MATCH(pattern, topic);
	strcpy(topic + strlen(topic) - 1, "z");
	MATCHES(pattern, topic);
}
