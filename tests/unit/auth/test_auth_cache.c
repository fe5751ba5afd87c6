/*
 * tests/unit/auth/test_auth_cache.c - auth/auth_cache.c: a remembered credential is found
 * again, and only with the same user, password and binding (the stored hash); entries
 * expire; clear forgets; a full set evicts without losing the newest entries.
 */
#include "auth/auth_cache.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static struct auth_cache_cred cred(const char *u, const char *p, const char *b)
{
	return (struct auth_cache_cred){ u, strlen(u), p, strlen(p), b, strlen(b) };
}

Test(auth_cache, remembers_a_verified_credential)
{
	struct auth_cache c;
	struct auth_cache_cred jack = cred("jack", "pw", "$argon2id$hash1");

	auth_cache_init(&c, 64, 1000);
	cr_assert_not(auth_cache_check(&c, &jack, 0));
	auth_cache_remember(&c, &jack, 0);
	cr_assert(auth_cache_check(&c, &jack, 1));
	cr_assert_eq(c.hits, 1);
	cr_assert_eq(c.misses, 1);
	auth_cache_fini(&c);
}

Test(auth_cache, any_difference_misses)
{
	struct auth_cache c;
	struct auth_cache_cred jack = cred("jack", "pw", "$argon2id$hash1");
	struct auth_cache_cred wrong_pw = cred("jack", "pW", "$argon2id$hash1");
	struct auth_cache_cred other_user = cred("rose", "pw", "$argon2id$hash1");
	struct auth_cache_cred new_hash = cred("jack", "pw", "$argon2id$hash2");

	auth_cache_init(&c, 64, 1000);
	auth_cache_remember(&c, &jack, 0);
	cr_assert_not(auth_cache_check(&c, &wrong_pw, 0));
	cr_assert_not(auth_cache_check(&c, &other_user, 0));
	/* a reload that changed the password changes the hash: the entry is dead */
	cr_assert_not(auth_cache_check(&c, &new_hash, 0));
	auth_cache_fini(&c);
}

/* Fields are length-prefixed: moving a byte across a boundary is another credential. */
Test(auth_cache, field_boundaries_matter)
{
	struct auth_cache c;
	struct auth_cache_cred a = cred("ab", "c", "h");
	struct auth_cache_cred b = cred("a", "bc", "h");
	struct auth_cache_cred d = cred("ab", "ch", "");

	auth_cache_init(&c, 64, 1000);
	auth_cache_remember(&c, &a, 0);
	cr_assert_not(auth_cache_check(&c, &b, 0));
	cr_assert_not(auth_cache_check(&c, &d, 0));
	auth_cache_fini(&c);
}

Test(auth_cache, entries_expire_after_the_ttl)
{
	struct auth_cache c;
	struct auth_cache_cred jack = cred("jack", "pw", "h");

	auth_cache_init(&c, 64, 1000);
	auth_cache_remember(&c, &jack, 5000);
	cr_assert(auth_cache_check(&c, &jack, 5999));
	cr_assert_not(auth_cache_check(&c, &jack, 6000));
	auth_cache_remember(&c, &jack, 6000);	/* refreshed in place */
	cr_assert(auth_cache_check(&c, &jack, 6999));
	auth_cache_fini(&c);
}

Test(auth_cache, clear_forgets_everything)
{
	struct auth_cache c;
	struct auth_cache_cred jack = cred("jack", "pw", "h");

	auth_cache_init(&c, 64, 1000);
	auth_cache_remember(&c, &jack, 0);
	auth_cache_clear(&c);
	cr_assert_not(auth_cache_check(&c, &jack, 0));
	auth_cache_fini(&c);
}

/* A tiny cache (one set) keeps the newest AUTH_CACHE_WAYS credentials. */
Test(auth_cache, full_set_evicts_the_oldest)
{
	struct auth_cache c;
	char names[8][8];

	auth_cache_init(&c, 1, 1000);
	cr_assert_eq(c.nsets, 1);
	for (int i = 0; i < 8; i++) {
		struct auth_cache_cred k;

		snprintf(names[i], sizeof(names[i]), "u%d", i);
		k = cred(names[i], "pw", "h");
		auth_cache_remember(&c, &k, (uint64_t)i);
	}
	for (int i = 0; i < 8; i++) {
		struct auth_cache_cred k = cred(names[i], "pw", "h");

		cr_assert_eq(auth_cache_check(&c, &k, 8), i >= 8 - AUTH_CACHE_WAYS, "u%d", i);
	}
	auth_cache_fini(&c);
}

Test(auth_cache, sizes_round_up_to_whole_sets)
{
	struct auth_cache c;

	auth_cache_init(&c, 4096, 1);
	cr_assert_eq(c.nsets * AUTH_CACHE_WAYS, 4096);
	auth_cache_fini(&c);
	auth_cache_init(&c, 4097, 1);
	cr_assert_eq(c.nsets * AUTH_CACHE_WAYS, 8192);
	auth_cache_fini(&c);
}
