/*
 * tests/unit/core/test_interest.c - core/interest.c: per topic and pattern, a count per
 * column and the mask of columns with any; matching a topic key against the exact entry and
 * every pattern; dropping a whole column (a peer that went away).
 */
#include "core/interest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define T(s) (s), strlen(s)

static struct interest_table t;

static void setup(void)
{
	interest_table_init(&t, 8);
}

static void teardown(void)
{
	interest_table_fini(&t);
}

TestSuite(interest, .init = setup, .fini = teardown);

Test(interest, counts_per_column_and_reports_the_masks)
{
	uint64_t before;

	cr_assert_eq(interest_apply(&t, false, T("/topic/a"), 2, +1, &before), 1u << 2);
	cr_assert_eq(before, 0, "0 -> 1 is visible to the caller");
	cr_assert_eq(interest_apply(&t, false, T("/topic/a"), 2, +1, &before), 1u << 2);
	cr_assert_eq(interest_apply(&t, false, T("/topic/a"), 5, +1, &before), 1u << 2 | 1u << 5);
	cr_assert_eq(interest_apply(&t, false, T("/topic/a"), 2, -1, &before), 1u << 2 | 1u << 5,
		     "column 2 still has one");
	cr_assert_eq(interest_apply(&t, false, T("/topic/a"), 2, -1, NULL), 1u << 5);
	cr_assert_eq(interest_apply(&t, false, T("/topic/a"), 5, -1, &before), 0);
	cr_assert_eq(before, 1u << 5, "1 -> 0 is visible to the caller");
	cr_assert_null(strmap_get(&t.topics, T("/topic/a")), "a name nobody wants is forgotten");
}

Test(interest, a_removal_without_an_entry_changes_nothing)
{
	uint64_t before = 99;

	cr_assert_eq(interest_apply(&t, false, T("/topic/none"), 1, -1, &before), 0);
	cr_assert_eq(before, 0);
	cr_assert_eq(t.topics.count, 0);
}

Test(interest, match_takes_the_exact_topic_and_every_matching_pattern)
{
	interest_apply(&t, false, T("/topic/a.b"), 0, +1, NULL);
	interest_apply(&t, true, T("a.*"), 1, +1, NULL);
	interest_apply(&t, true, T("#"), 2, +1, NULL);
	interest_apply(&t, true, T("x.*"), 3, +1, NULL);
	cr_assert_eq(interest_match(&t, T("/topic/a.b")), 0x7);
	cr_assert_eq(interest_match(&t, T("/topic/a.c")), 0x6);
	cr_assert_eq(interest_match(&t, T("/topic/x.y")), 0xc);
	cr_assert_eq(interest_match(&t, T("/topic/q")), 0x4);
}

Test(interest, patterns_match_within_their_virtual_host_only)
{
	interest_apply(&t, true, T("a.*\x1fv1"), 1, +1, NULL);
	cr_assert_eq(interest_match(&t, T("/topic/a.b\x1fv1")), 0x2);
	cr_assert_eq(interest_match(&t, T("/topic/a.b")), 0, "another vhost");
	cr_assert_eq(interest_match(&t, T("/topic/a.b\x1fv2")), 0);
}

Test(interest, has_is_per_column_and_per_kind)
{
	interest_apply(&t, true, T("a.*"), 4, +1, NULL);
	cr_assert(interest_has(&t, true, T("a.*"), 4));
	cr_assert_not(interest_has(&t, true, T("a.*"), 3));
	cr_assert_not(interest_has(&t, false, T("a.*"), 4), "a pattern is not a topic");
}

struct seen {
	int topics, patterns;
	char last[64];
};

static void count(void *arg, bool pattern, const char *name, size_t len)
{
	struct seen *s = arg;

	if (pattern)
		s->patterns++;
	else
		s->topics++;
	memcpy(s->last, name, len < 63 ? len : 63);
	s->last[len < 63 ? len : 63] = '\0';
}

Test(interest, each_visits_the_names_a_column_set_wants)
{
	struct seen s = { 0 };

	interest_apply(&t, false, T("/topic/a"), 0, +1, NULL);
	interest_apply(&t, false, T("/topic/b"), 1, +1, NULL);
	interest_apply(&t, true, T("c.#"), 1, +1, NULL);
	interest_each(&t, 1u << 1, count, &s);
	cr_assert_eq(s.topics, 1);
	cr_assert_eq(s.patterns, 1);
	memset(&s, 0, sizeof(s));
	interest_each(&t, ~0ull, count, &s);
	cr_assert_eq(s.topics, 2);
}

/* A peer that went away: its column goes everywhere; the names only it wanted are reported
 * (the route then tells its shards) and forgotten, the others keep their other columns. */
Test(interest, drop_column_reports_only_the_names_left_unwanted)
{
	struct seen s = { 0 };

	interest_apply(&t, false, T("/topic/only3"), 3, +1, NULL);
	interest_apply(&t, false, T("/topic/only3"), 3, +1, NULL);
	interest_apply(&t, false, T("/topic/shared"), 3, +1, NULL);
	interest_apply(&t, false, T("/topic/shared"), 6, +1, NULL);
	for (int i = 0; i < 40; i++) {
		char p[16];

		snprintf(p, sizeof(p), "p%d.*", i);
		interest_apply(&t, true, p, strlen(p), 3, +1, NULL);
	}
	interest_apply(&t, true, T("keep.*"), 6, +1, NULL);
	interest_drop_column(&t, 3, count, &s);
	cr_assert_eq(s.topics, 1);
	cr_assert_eq(s.patterns, 40);
	cr_assert_null(strmap_get(&t.topics, T("/topic/only3")));
	cr_assert_eq(interest_match(&t, T("/topic/shared")), 1u << 6);
	cr_assert_eq(t.npatterns, 1);
	cr_assert_eq(interest_match(&t, T("/topic/keep.x")), 1u << 6);
	cr_assert_eq(interest_match(&t, T("/topic/p7.x")), 0);
}
