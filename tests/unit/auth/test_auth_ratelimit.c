/*
 * tests/unit/auth/test_auth_ratelimit.c - auth/auth_ratelimit.c: free failures, then
 * doubling delays to a cap; blocking after the threshold and on too many checks in flight
 * (and the most one address had); decay over time; address keys (IPv4 /32, IPv6 /64,
 * mapped IPv4); a flood of addresses.
 */
#include "auth/auth_ratelimit.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(1234) };

	cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return a;
}

static struct sockaddr_in6 v6(const char *ip)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(1234) };

	cr_assert_eq(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return a;
}

#define SA(x) ((const struct sockaddr *)&(x))

Test(auth_ratelimit, delays_double_after_the_free_failures_up_to_the_cap)
{
	static const uint32_t want[] = { 0, 0, 0, 250, 500, 1000, 2000, 4000, 8000, 10000, 10000 };
	struct auth_ratelimit rl;
	struct sockaddr_in a = v4("192.0.2.1");

	auth_ratelimit_init(&rl);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_eq(auth_ratelimit_on_failure(&rl, SA(a), 0), want[i], "failure %zu", i + 1);
	cr_assert_eq(auth_ratelimit_delay_ms(&rl, SA(a), 0), 10000);
}

Test(auth_ratelimit, blocks_slow_checks_after_the_threshold)
{
	struct auth_ratelimit rl;
	struct sockaddr_in a = v4("192.0.2.1");

	auth_ratelimit_init(&rl);
	for (int i = 0; i < 9; i++)
		auth_ratelimit_on_failure(&rl, SA(a), 0);
	cr_assert_not(auth_ratelimit_is_blocked(&rl, SA(a), 0));
	cr_assert_not(auth_ratelimit_has_failed_too_often(&rl, SA(a), 0));
	auth_ratelimit_on_failure(&rl, SA(a), 0);
	cr_assert(auth_ratelimit_is_blocked(&rl, SA(a), 0));
	cr_assert(auth_ratelimit_has_failed_too_often(&rl, SA(a), 0));
}

Test(auth_ratelimit, failures_decay_one_per_period)
{
	struct auth_ratelimit rl;
	struct sockaddr_in a = v4("192.0.2.1");

	auth_ratelimit_init(&rl);
	for (int i = 0; i < 10; i++)
		auth_ratelimit_on_failure(&rl, SA(a), 1000);
	cr_assert(auth_ratelimit_is_blocked(&rl, SA(a), 1000));
	cr_assert_not(auth_ratelimit_is_blocked(&rl, SA(a), 1000 + 30000));	/* 9 left */
	cr_assert_eq(auth_ratelimit_delay_ms(&rl, SA(a), 1000 + 30000), 8000);
	cr_assert_eq(auth_ratelimit_delay_ms(&rl, SA(a), 1000 + 6 * 30000 - 1), 500);	/* 5 */
	cr_assert_eq(auth_ratelimit_delay_ms(&rl, SA(a), 1000 + 6 * 30000), 250);	/* 4 */
	cr_assert_eq(auth_ratelimit_delay_ms(&rl, SA(a), 1000 + 7 * 30000), 0);		/* 3 */
	cr_assert_eq(auth_ratelimit_delay_ms(&rl, SA(a), 1000 + 100 * 30000), 0);
	/* time going backwards (another thread's clock) changes nothing */
	cr_assert_eq(auth_ratelimit_delay_ms(&rl, SA(a), 0), 0);
}

Test(auth_ratelimit, addresses_are_independent)
{
	struct auth_ratelimit rl;
	struct sockaddr_in a = v4("192.0.2.1");
	struct sockaddr_in b = v4("192.0.2.2");

	auth_ratelimit_init(&rl);
	for (int i = 0; i < 10; i++)
		auth_ratelimit_on_failure(&rl, SA(a), 0);
	cr_assert(auth_ratelimit_is_blocked(&rl, SA(a), 0));
	cr_assert_not(auth_ratelimit_is_blocked(&rl, SA(b), 0));
	cr_assert_eq(auth_ratelimit_on_failure(&rl, SA(b), 0), 0);
}

Test(auth_ratelimit, ipv6_counts_per_64_and_mapped_ipv4_as_ipv4)
{
	struct auth_ratelimit rl;
	struct sockaddr_in6 a1 = v6("2001:db8:1:2::1");
	struct sockaddr_in6 a2 = v6("2001:db8:1:2:ffff::9");
	struct sockaddr_in6 other = v6("2001:db8:1:3::1");
	struct sockaddr_in6 mapped = v6("::ffff:192.0.2.1");
	struct sockaddr_in plain = v4("192.0.2.1");

	auth_ratelimit_init(&rl);
	for (int i = 0; i < 5; i++)
		auth_ratelimit_on_failure(&rl, SA(a1), 0);
	for (int i = 0; i < 5; i++)
		auth_ratelimit_on_failure(&rl, SA(a2), 0);
	cr_assert(auth_ratelimit_is_blocked(&rl, SA(a1), 0));
	cr_assert_not(auth_ratelimit_is_blocked(&rl, SA(other), 0));
	for (int i = 0; i < 10; i++)
		auth_ratelimit_on_failure(&rl, SA(mapped), 0);
	cr_assert(auth_ratelimit_is_blocked(&rl, SA(plain), 0));
}

Test(auth_ratelimit, limits_slow_checks_in_flight)
{
	struct auth_ratelimit rl;
	struct sockaddr_in a = v4("192.0.2.1");

	auth_ratelimit_init(&rl);
	for (int i = 0; i < 8; i++) {
		cr_assert_not(auth_ratelimit_is_blocked(&rl, SA(a), 0), "check %d", i);
		auth_ratelimit_begin(&rl, SA(a), 0);
	}
	cr_assert(auth_ratelimit_is_blocked(&rl, SA(a), 0));
	cr_assert_not(auth_ratelimit_has_failed_too_often(&rl, SA(a), 0), "busy is not failed");
	auth_ratelimit_end(&rl, SA(a), 0);
	cr_assert_not(auth_ratelimit_is_blocked(&rl, SA(a), 0));
	for (int i = 0; i < 7; i++)
		auth_ratelimit_end(&rl, SA(a), 0);
	auth_ratelimit_end(&rl, SA(a), 0);	/* unpaired: ignored */
	cr_assert_eq(auth_ratelimit_delay_ms(&rl, SA(a), 0), 0);
}

/* The high-water mark the admin endpoint shows: the most checks one address had in flight
 * at once, not the total begun, and not lowered when they end. */
Test(auth_ratelimit, remembers_the_most_checks_one_address_had_in_flight)
{
	struct auth_ratelimit rl;
	struct sockaddr_in a = v4("192.0.2.1");
	struct sockaddr_in b = v4("192.0.2.2");

	auth_ratelimit_init(&rl);
	cr_assert_eq(rl.pending_max, 0);
	for (int i = 0; i < 3; i++)
		auth_ratelimit_begin(&rl, SA(a), 0);
	auth_ratelimit_begin(&rl, SA(b), 0);
	auth_ratelimit_begin(&rl, SA(b), 0);
	cr_assert_eq(rl.pending_max, 3, "per address, not the total of 5");
	for (int i = 0; i < 3; i++)
		auth_ratelimit_end(&rl, SA(a), 0);
	cr_assert_eq(rl.pending_max, 3, "kept after the checks end");
	auth_ratelimit_begin(&rl, SA(a), 0);
	auth_ratelimit_begin(&rl, SA(b), 0);
	cr_assert_eq(rl.pending_max, 3, "neither address passed 3 again");
	auth_ratelimit_begin(&rl, SA(b), 0);
	cr_assert_eq(rl.pending_max, 4);
}

/* More addresses than slots: the table keeps working, and a heavy offender survives a
 * flood of one-failure addresses (the least failed are evicted first). */
Test(auth_ratelimit, survives_a_flood_of_addresses)
{
	struct auth_ratelimit rl;
	struct sockaddr_in bad = v4("198.51.100.7");

	auth_ratelimit_init(&rl);
	for (int i = 0; i < 12; i++)
		auth_ratelimit_on_failure(&rl, SA(bad), 0);
	for (uint32_t i = 0; i < 100000; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000 + i) };

		auth_ratelimit_on_failure(&rl, SA(a), 0);
	}
	cr_assert(auth_ratelimit_is_blocked(&rl, SA(bad), 0));
}

Test(auth_ratelimit, unknown_families_share_one_entry)
{
	struct auth_ratelimit rl;
	struct sockaddr un = { .sa_family = AF_UNIX };

	auth_ratelimit_init(&rl);
	for (int i = 0; i < 10; i++)
		auth_ratelimit_on_failure(&rl, &un, 0);
	cr_assert(auth_ratelimit_is_blocked(&rl, &un, 0));
	cr_assert(auth_ratelimit_is_blocked(&rl, NULL, 0));
}
