/*
 * tests/unit/cluster/test_suspicion.c - cluster/suspicion.c and cluster/awareness.c
 * (Lifeguard sections IV-A and IV-B): the timeout starts at max, falls on a log scale with
 * independent confirmations to min, ignores repeats; min scales with log10 N; the local
 * health score clamps and scales timeouts.
 */
#include "cluster/awareness.h"
#include "cluster/suspicion.h"

#include <criterion/criterion.h>

Test(suspicion, min_timeout_scales_with_log10_n)
{
	cr_assert_eq(suspicion_min_ms(4, 1, 1000), 4000);
	cr_assert_eq(suspicion_min_ms(4, 5, 1000), 4000);	/* log10 under 1 counts as 1 */
	cr_assert_eq(suspicion_min_ms(4, 100, 1000), 8000);
	cr_assert_eq(suspicion_min_ms(4, 1000, 1000), 12000);
}

Test(suspicion, starts_at_max_without_confirmations)
{
	struct suspicion s;

	suspicion_init(&s, 1, 2, 4000, 24000, 100);
	cr_assert_eq(s.deadline_ms, 100 + 24000);
}

Test(suspicion, starts_at_min_when_no_confirmations_are_expected)
{
	struct suspicion s;

	suspicion_init(&s, 1, 0, 4000, 24000, 100);
	cr_assert_eq(s.deadline_ms, 100 + 4000);
}

Test(suspicion, confirmations_shorten_it_on_a_log_scale_to_min)
{
	struct suspicion s;

	suspicion_init(&s, 1, 3, 4000, 24000, 0);
	cr_assert(suspicion_confirm(&s, 2));
	/* 24000 - 20000 * log(2)/log(4) = 14000 */
	cr_assert_eq(s.deadline_ms, 14000);
	cr_assert(suspicion_confirm(&s, 3));
	cr_assert(s.deadline_ms > 4000 && s.deadline_ms < 14000);
	cr_assert(suspicion_confirm(&s, 4));
	cr_assert_eq(s.deadline_ms, 4000);
	cr_assert_not(suspicion_confirm(&s, 5), "past k nothing changes");
}

Test(suspicion, the_same_accuser_counts_once)
{
	struct suspicion s;

	suspicion_init(&s, 1, 3, 4000, 24000, 0);
	cr_assert_not(suspicion_confirm(&s, 1), "the first accuser is no confirmation");
	cr_assert(suspicion_confirm(&s, 2));
	cr_assert_not(suspicion_confirm(&s, 2));
	cr_assert_eq(s.n, 1);
}

Test(suspicion, deadline_counts_from_the_start_however_late_confirmations_come)
{
	struct suspicion s;

	suspicion_init(&s, 1, 1, 4000, 24000, 1000);
	cr_assert(suspicion_confirm(&s, 2));
	cr_assert_eq(s.deadline_ms, 1000 + 4000);
}

Test(awareness, score_clamps_between_zero_and_max_minus_one)
{
	struct awareness a;

	awareness_init(&a, 8);
	awareness_apply_delta(&a, -1);
	cr_assert_eq(awareness_score(&a), 0);
	awareness_apply_delta(&a, 100);
	cr_assert_eq(awareness_score(&a), 7);
	awareness_apply_delta(&a, -3);
	cr_assert_eq(awareness_score(&a), 4);
}

Test(awareness, timeouts_scale_by_score_plus_one)
{
	struct awareness a;

	awareness_init(&a, 8);
	cr_assert_eq(awareness_scale_ms(&a, 500), 500);
	awareness_apply_delta(&a, 2);
	cr_assert_eq(awareness_scale_ms(&a, 500), 1500);
}
