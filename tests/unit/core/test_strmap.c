/*
 * tests/unit/core/test_strmap.c - core/strmap.c: the open-addressing map from byte strings
 * to pointers that holds every shard's topics, patterns and queues. Keys are borrowed (the
 * tests keep them alive); keys are bytes, not C strings, so NULs and high bytes count.
 */
#include "core/strmap.h"
#include "tests/support/leak_check.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct strmap m;

static void map_setup(void)
{
	strmap_init(&m);
}

static void map_teardown(void)
{
	strmap_fini(&m);
}

TestSuite(strmap, .init = map_setup, .fini = map_teardown);

#define KEY(lit) (lit), (sizeof(lit) - 1)
#define VAL(n) ((void *)(uintptr_t)(n))

/* The load rule the header comment promises: live entries plus tombstones stay under 70%. */
static void assert_load_ok(void)
{
	cr_assert(m.cap && (m.cap & (m.cap - 1)) == 0, "cap %u is a power of two", m.cap);
	cr_assert((uint64_t)(m.count + m.tombs) * 10 < (uint64_t)m.cap * 7,
		  "count %u + tombs %u in cap %u", m.count, m.tombs, m.cap);
}

/* Heap keys "k<i>", kept alive for the map; freed by free_keys. */
static char **make_keys(uint32_t n, const char *prefix)
{
	char **keys = calloc(n, sizeof(*keys));

	for (uint32_t i = 0; i < n; i++) {
		keys[i] = malloc(32);
		snprintf(keys[i], 32, "%s%u", prefix, i);
	}
	return keys;
}

static void free_keys(char **keys, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

/* ---- basics ---- */

Test(strmap, empty_map_finds_and_deletes_nothing)
{
	cr_assert_null(strmap_get(&m, KEY("a")));
	cr_assert_null(strmap_del(&m, KEY("a")));
	cr_assert_null(strmap_get(&m, KEY("")));
	cr_assert_eq(m.count, 0);
}

Test(strmap, get_returns_what_put_stored)
{
	strmap_put(&m, KEY("/topic/a"), VAL(1));
	strmap_put(&m, KEY("/topic/b"), VAL(2));
	cr_assert_eq(strmap_get(&m, KEY("/topic/a")), VAL(1));
	cr_assert_eq(strmap_get(&m, KEY("/topic/b")), VAL(2));
	cr_assert_null(strmap_get(&m, KEY("/topic/c")));
	cr_assert_eq(m.count, 2);
}

Test(strmap, put_of_an_existing_key_replaces_its_value)
{
	strmap_put(&m, KEY("q"), VAL(1));
	strmap_put(&m, KEY("q"), VAL(2));
	cr_assert_eq(strmap_get(&m, KEY("q")), VAL(2));
	cr_assert_eq(m.count, 1);
}

Test(strmap, lookup_compares_bytes_not_key_pointers)
{
	char stored[] = "/queue/x";
	char probe[] = "/queue/x";

	strmap_put(&m, stored, 8, VAL(7));
	cr_assert_eq(strmap_get(&m, probe, 8), VAL(7));
	cr_assert_eq(strmap_del(&m, probe, 8), VAL(7));
}

Test(strmap, del_returns_the_value_and_removes_the_key)
{
	strmap_put(&m, KEY("a"), VAL(1));
	strmap_put(&m, KEY("b"), VAL(2));
	cr_assert_eq(strmap_del(&m, KEY("a")), VAL(1));
	cr_assert_null(strmap_get(&m, KEY("a")));
	cr_assert_null(strmap_del(&m, KEY("a")), "a second delete finds nothing");
	cr_assert_eq(strmap_get(&m, KEY("b")), VAL(2));
	cr_assert_eq(m.count, 1);
}

Test(strmap, del_of_a_missing_key_changes_nothing)
{
	strmap_put(&m, KEY("a"), VAL(1));
	cr_assert_null(strmap_del(&m, KEY("zz")));
	cr_assert_eq(m.count, 1);
	cr_assert_eq(m.tombs, 0);
	cr_assert_eq(strmap_get(&m, KEY("a")), VAL(1));
}

Test(strmap, key_can_be_reinserted_after_delete)
{
	strmap_put(&m, KEY("a"), VAL(1));
	cr_assert_eq(strmap_del(&m, KEY("a")), VAL(1));
	cr_assert_eq(m.count, 0);
	strmap_put(&m, KEY("a"), VAL(2));
	cr_assert_eq(strmap_get(&m, KEY("a")), VAL(2));
	cr_assert_eq(m.count, 1);
	cr_assert_eq(strmap_del(&m, KEY("a")), VAL(2));
	cr_assert_null(strmap_get(&m, KEY("a")));
}

/* A reinserted key must not exist twice: a later delete would leave a stale copy behind. */
Test(strmap, reinsert_among_other_keys_leaves_no_duplicate)
{
	char **keys = make_keys(40, "k");

	for (uint32_t i = 0; i < 40; i++)
		strmap_put(&m, keys[i], strlen(keys[i]), VAL(i + 1));
	for (uint32_t i = 0; i < 40; i += 2)
		cr_assert_eq(strmap_del(&m, keys[i], strlen(keys[i])), VAL(i + 1));
	for (uint32_t i = 0; i < 40; i++)
		strmap_put(&m, keys[i], strlen(keys[i]), VAL(i + 100));
	cr_assert_eq(m.count, 40);
	for (uint32_t i = 0; i < 40; i++) {
		cr_assert_eq(strmap_del(&m, keys[i], strlen(keys[i])), VAL(i + 100), "key %u", i);
		cr_assert_null(strmap_get(&m, keys[i], strlen(keys[i])), "key %u left a copy", i);
	}
	cr_assert_eq(m.count, 0);
	free_keys(keys, 40);
}

/* ---- bytes, not strings ---- */

Test(strmap, keys_with_nul_bytes_are_distinct)
{
	strmap_put(&m, KEY("a\0b"), VAL(1));
	strmap_put(&m, KEY("a\0c"), VAL(2));
	strmap_put(&m, KEY("a"), VAL(3));
	strmap_put(&m, KEY("a\0"), VAL(4));
	cr_assert_eq(m.count, 4);
	cr_assert_eq(strmap_get(&m, KEY("a\0b")), VAL(1));
	cr_assert_eq(strmap_get(&m, KEY("a\0c")), VAL(2));
	cr_assert_eq(strmap_get(&m, KEY("a")), VAL(3));
	cr_assert_eq(strmap_get(&m, KEY("a\0")), VAL(4));
	cr_assert_null(strmap_get(&m, KEY("a\0d")));
}

Test(strmap, keys_differing_only_in_length_are_distinct)
{
	static const char buf[] = "abcdef";

	for (size_t len = 0; len <= 6; len++)
		strmap_put(&m, buf, len, VAL(len + 1));
	cr_assert_eq(m.count, 7);
	for (size_t len = 0; len <= 6; len++)
		cr_assert_eq(strmap_get(&m, buf, len), VAL(len + 1), "prefix of %zu bytes", len);
}

Test(strmap, empty_key_is_a_key)
{
	strmap_put(&m, "", 0, VAL(9));
	cr_assert_eq(strmap_get(&m, "", 0), VAL(9));
	cr_assert_eq(strmap_del(&m, "", 0), VAL(9));
	cr_assert_null(strmap_get(&m, "", 0));
}

Test(strmap, binary_keys_of_every_byte_value_are_found)
{
	static unsigned char keys[256][3];

	for (uint32_t b = 0; b < 256; b++) {
		keys[b][0] = (unsigned char)b;
		keys[b][1] = 0xff;
		keys[b][2] = (unsigned char)~b;
		strmap_put(&m, (const char *)keys[b], 3, VAL(b + 1));
	}
	cr_assert_eq(m.count, 256);
	for (uint32_t b = 0; b < 256; b++)
		cr_assert_eq(strmap_get(&m, (const char *)keys[b], 3), VAL(b + 1), "byte %u", b);
}

/* ---- tombstones and growth ---- */

Test(strmap, keys_past_a_tombstone_are_still_found)
{
	char **keys = make_keys(6, "t");

	/* cap 8 holds 5 keys; their probe chains overlap often enough to cross the deleted ones */
	for (uint32_t i = 0; i < 5; i++)
		strmap_put(&m, keys[i], strlen(keys[i]), VAL(i + 1));
	cr_assert_eq(m.cap, 8);
	for (uint32_t i = 0; i < 5; i += 2)
		strmap_del(&m, keys[i], strlen(keys[i]));
	cr_assert_eq(m.tombs, 3);
	for (uint32_t i = 1; i < 5; i += 2)
		cr_assert_eq(strmap_get(&m, keys[i], strlen(keys[i])), VAL(i + 1), "key %u", i);
	for (uint32_t i = 0; i < 5; i += 2)
		cr_assert_null(strmap_get(&m, keys[i], strlen(keys[i])), "deleted key %u", i);
	free_keys(keys, 6);
}

Test(strmap, grows_keeping_every_key)
{
	const uint32_t n = 100000;
	char **keys = make_keys(n, "/topic/news.");

	for (uint32_t i = 0; i < n; i++) {
		strmap_put(&m, keys[i], strlen(keys[i]), VAL(i + 1));
		if ((i & (i + 1)) == 0)
			assert_load_ok();
	}
	cr_assert_eq(m.count, n);
	assert_load_ok();
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(strmap_get(&m, keys[i], strlen(keys[i])), VAL(i + 1), "key %u", i);
	free_keys(keys, n);
}

Test(strmap, every_other_key_deleted_from_many_leaves_the_rest)
{
	const uint32_t n = 20000;
	char **keys = make_keys(n, "q");

	for (uint32_t i = 0; i < n; i++)
		strmap_put(&m, keys[i], strlen(keys[i]), VAL(i + 1));
	for (uint32_t i = 0; i < n; i += 2)
		cr_assert_eq(strmap_del(&m, keys[i], strlen(keys[i])), VAL(i + 1));
	cr_assert_eq(m.count, n / 2);
	for (uint32_t i = 0; i < n; i++) {
		void *want = i % 2 ? VAL(i + 1) : NULL;

		cr_assert_eq(strmap_get(&m, keys[i], strlen(keys[i])), want, "key %u", i);
	}
	free_keys(keys, n);
}

/* Subscribe/unsubscribe churn on new names: tombstones are cleared by rehashing in place,
 * so the table neither grows without bound nor fills with tombstones (which would make a
 * probe for a missing key loop forever). */
Test(strmap, churn_of_new_keys_keeps_the_table_small, .timeout = 20)
{
	const uint32_t live = 10;
	const uint32_t churn = 100000;
	char **keys = make_keys(live + churn, "c");

	for (uint32_t i = 0; i < live; i++)
		strmap_put(&m, keys[i], strlen(keys[i]), VAL(i + 1));
	for (uint32_t i = live; i < live + churn; i++) {
		strmap_put(&m, keys[i], strlen(keys[i]), VAL(i + 1));
		cr_assert_eq(strmap_del(&m, keys[i], strlen(keys[i])), VAL(i + 1));
		cr_assert_null(strmap_get(&m, KEY("never-inserted")));
	}
	cr_assert_eq(m.count, live);
	cr_assert_leq(m.cap, 32, "cap %u after churn with %u live keys", m.cap, live);
	assert_load_ok();
	for (uint32_t i = 0; i < live; i++)
		cr_assert_eq(strmap_get(&m, keys[i], strlen(keys[i])), VAL(i + 1));
	free_keys(keys, live + churn);
}

Test(strmap, deleting_everything_then_refilling_works)
{
	const uint32_t n = 1000;
	char **keys = make_keys(n, "r");

	for (uint32_t round = 0; round < 3; round++) {
		for (uint32_t i = 0; i < n; i++)
			strmap_put(&m, keys[i], strlen(keys[i]), VAL(round * n + i + 1));
		cr_assert_eq(m.count, n);
		assert_load_ok();
		for (uint32_t i = 0; i < n; i++)
			cr_assert_eq(strmap_del(&m, keys[i], strlen(keys[i])), VAL(round * n + i + 1));
		cr_assert_eq(m.count, 0);
		cr_assert_null(strmap_get(&m, keys[0], strlen(keys[0])));
	}
	free_keys(keys, n);
}

Test(strmap, fini_frees_the_table_and_leaves_an_empty_map)
{
	char **keys = make_keys(100, "f");

	for (uint32_t i = 0; i < 100; i++)
		strmap_put(&m, keys[i], strlen(keys[i]), VAL(i + 1));
	strmap_fini(&m);
	cr_assert_null(m.slots);
	cr_assert_eq(m.count, 0);
	cr_assert_null(strmap_get(&m, keys[0], strlen(keys[0])));
	strmap_put(&m, keys[0], strlen(keys[0]), VAL(5));
	cr_assert_eq(strmap_get(&m, keys[0], strlen(keys[0])), VAL(5), "usable again");
	strmap_fini(&m);
	free_keys(keys, 100);
	cr_assert(leak_check_clean());
}

/* ---- the hash ---- */

Test(strmap, hash_is_never_zero_and_depends_on_every_byte)
{
	cr_assert_neq(hd_hash("", 0), 0);
	cr_assert_neq(hd_hash(KEY("a\0b")), hd_hash(KEY("a\0c")));
	cr_assert_neq(hd_hash(KEY("a")), hd_hash(KEY("a\0")));
	cr_assert_eq(hd_hash(KEY("/queue/x")), hd_hash(KEY("/queue/x")));
}
