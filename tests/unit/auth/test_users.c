/*
 * tests/unit/auth/test_users.c - auth/users.c: the users-file format of docs/auth.md
 * (fields, comments, limits, errors with line numbers), name/tag/vhost/hash validation,
 * argon2id hashing and verification, the lookup index, loading from a path.
 */
#include "auth/users.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* crypto_pwhash_str output for "secret" at the minimum cost, made once per process. */
static const char *hash_of_secret(void)
{
	static char h[USERS_HASH_MAX + 1];

	if (!h[0])
		cr_assert_eq(users_hash_password("secret", 6, USERS_COST_MIN, h), 0);
	return h;
}

static const char FIXED_HASH[] = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$"
				 "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

static int parse_text(struct users_table *t, const char *text, struct users_error *err)
{
	struct guarded_buf gb;
	const char *p = guarded_buf_init(&gb, text, strlen(text));
	int rc = users_table_parse(t, p, strlen(text), err);

	guarded_buf_fini(&gb);
	return rc;
}

/* Parses one line "NAME:FIXED_HASH<rest>" and returns the rc. */
static int parse_user_line(const char *name, const char *rest, struct users_error *err)
{
	struct users_table *t = users_table_create();
	char line[2048];
	int rc;

	snprintf(line, sizeof(line), "%s:%s%s\n", name, FIXED_HASH, rest);
	rc = parse_text(t, line, err);
	users_table_destroy(t);
	return rc;
}

Test(users, parses_the_documented_format)
{
	struct users_table *t = users_table_create();
	struct users_error err = { 0 };
	const struct users_entry *e;
	char text[2048];

	snprintf(text, sizeof(text),
		 "# Herald users\n"
		 "\n"
		 "jack:%s\n"
		 "  billing:%s:service:/,prod  \r\n"
		 "\t# indented comment\n"
		 "ops:%s:administrator,service:*\n"
		 "rose:%s::",
		 FIXED_HASH, FIXED_HASH, FIXED_HASH, FIXED_HASH);
	cr_assert_eq(parse_text(t, text, &err), 0, "line %u: %s", err.line, err.msg);
	cr_assert_eq(users_table_count(t), 4);
	e = users_table_find(t, "jack", 4);
	cr_assert_not_null(e);
	cr_assert_str_eq(e->tags, "");
	cr_assert_str_eq(e->vhosts, "/");
	cr_assert_eq(e->line, 3);
	cr_assert_eq(e->source, USERS_SRC_FILE);
	cr_assert_eq(e->tag_bits, 0);
	e = users_table_find(t, "billing", 7);
	cr_assert_str_eq(e->tags, "service");
	cr_assert_str_eq(e->vhosts, "/,prod");
	cr_assert_eq(e->tag_bits, USERS_TAG_SERVICE);
	cr_assert(users_entry_allows_vhost(e, "prod", 4));
	cr_assert_not(users_entry_allows_vhost(e, "dev", 3));
	e = users_table_find(t, "ops", 3);
	cr_assert_eq(e->tag_bits, USERS_TAG_ADMINISTRATOR | USERS_TAG_SERVICE);
	cr_assert(users_entry_allows_vhost(e, "anything", 8));
	cr_assert_str_eq(users_table_at(t, 3)->name, "rose");
	cr_assert_str_eq(users_table_at(t, 3)->vhosts, "/");
	cr_assert_null(users_table_find(t, "nobody", 6));
	cr_assert_null(users_table_find(t, "jac", 3));
	users_table_destroy(t);
}

Test(users, reports_a_duplicate_user_with_both_lines)
{
	struct users_table *t = users_table_create();
	struct users_error err = { 0 };
	char text[1024];

	snprintf(text, sizeof(text), "jack:%s\n#\nrose:%s\njack:%s\n", FIXED_HASH, FIXED_HASH,
		 FIXED_HASH);
	cr_assert_eq(parse_text(t, text, &err), -EEXIST);
	cr_assert_eq(err.line, 4);
	cr_assert(strstr(err.msg, "line 1"), "%s", err.msg);
	users_table_destroy(t);
}

Test(users, reports_field_errors_with_line_numbers)
{
	struct users_table *t = users_table_create();
	struct users_error err = { 0 };

	cr_assert_eq(parse_text(t, "# c\n\njack\n", &err), -EINVAL);
	cr_assert_eq(err.line, 3);
	cr_assert_eq(parse_user_line("jack", ":::", &err), -EINVAL);
	cr_assert(strstr(err.msg, "too many"), "%s", err.msg);
	cr_assert_eq(parse_user_line("ja ck", "", &err), -EINVAL);
	cr_assert_eq(parse_user_line("-jack", "", &err), -EINVAL);
	cr_assert_eq(parse_user_line("jack", ":Admin", &err), -EINVAL);
	cr_assert_eq(parse_user_line("jack", ":a,,b", &err), -EINVAL);
	cr_assert_eq(parse_user_line("jack", ":a,", &err), -EINVAL);
	cr_assert_eq(parse_user_line("jack", ":a,a", &err), -EINVAL);
	cr_assert_eq(parse_user_line("jack", "::/,*", &err), -EINVAL);
	cr_assert_eq(parse_user_line("jack", "::a b", &err), -EINVAL);
	cr_assert_eq(parse_user_line("jack", "::/,/", &err), -EINVAL);
	cr_assert_eq(parse_text(t, "jack:plaintext-password\n", &err), -EINVAL);
	cr_assert(strstr(err.msg, "argon2id"), "%s", err.msg);
	users_table_destroy(t);
}

Test(users, refuses_long_lines_and_nul_bytes)
{
	struct users_table *t = users_table_create();
	struct users_error err = { 0 };
	char text[USERS_LINE_MAX + 16];
	char nul[] = "# ok\n#\0\n";

	memset(text, '#', USERS_LINE_MAX + 1);
	text[USERS_LINE_MAX + 1] = '\n';
	text[USERS_LINE_MAX + 2] = '\0';
	cr_assert_eq(parse_text(t, text, &err), -EINVAL);
	cr_assert_eq(err.line, 1);
	text[USERS_LINE_MAX] = '\n';	/* exactly the limit is fine */
	text[USERS_LINE_MAX + 1] = '\0';
	cr_assert_eq(parse_text(t, text, &err), 0);
	cr_assert_eq(users_table_parse(t, nul, sizeof(nul) - 1, &err), -EINVAL);
	cr_assert_eq(err.line, 2);
	users_table_destroy(t);
}

Test(users, validates_names)
{
	cr_assert(users_name_is_valid("jack", 4));
	cr_assert(users_name_is_valid("j.smith+x@example.com", 21));
	cr_assert(users_name_is_valid("A_b-9", 5));
	cr_assert_not(users_name_is_valid("", 0));
	cr_assert_not(users_name_is_valid(".hidden", 7));
	cr_assert_not(users_name_is_valid("-x", 2));
	for (const char *c = "*#/{}: ,\t\n\\%"; *c; c++) {
		char n[4] = { 'a', *c, 'b', 0 };

		cr_assert_not(users_name_is_valid(n, 3), "'%c'", *c);
	}
	cr_assert(users_name_is_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 63));
	cr_assert_not(users_name_is_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 64));
}

Test(users, validates_hash_strings)
{
	char h[256];

	cr_assert(users_hash_is_valid(FIXED_HASH, strlen(FIXED_HASH)));
	cr_assert(users_hash_is_valid(hash_of_secret(), strlen(hash_of_secret())));
	/* argon2i, other versions, p != 1, huge or tiny cost, junk */
	strcpy(h, FIXED_HASH);
	memcpy(h, "$argon2i$", 9);
	cr_assert_not(users_hash_is_valid(h, strlen(h)));
	snprintf(h, sizeof(h), "$argon2id$v=16$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$%s",
		 "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g");
	cr_assert_not(users_hash_is_valid(h, strlen(h)));
	snprintf(h, sizeof(h), "$argon2id$v=19$m=65536,t=2,p=2$c2FsdHNhbHRzYWx0$%s",
		 "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g");
	cr_assert_not(users_hash_is_valid(h, strlen(h)));
	snprintf(h, sizeof(h), "$argon2id$v=19$m=2097152,t=2,p=1$c2FsdHNhbHRzYWx0$%s",
		 "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g");
	cr_assert_not(users_hash_is_valid(h, strlen(h)));
	snprintf(h, sizeof(h), "$argon2id$v=19$m=65536,t=99,p=1$c2FsdHNhbHRzYWx0$%s",
		 "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g");
	cr_assert_not(users_hash_is_valid(h, strlen(h)));
	snprintf(h, sizeof(h), "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$%s",
		 "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g");
	cr_assert_not(users_hash_is_valid(h, strlen(h)));	/* 4-byte salt */
	snprintf(h, sizeof(h), "%s$", FIXED_HASH);
	cr_assert_not(users_hash_is_valid(h, strlen(h)));
	cr_assert_not(users_hash_is_valid("", 0));
}

Test(users, hashes_with_argon2id_and_verifies)
{
	char h[USERS_HASH_MAX + 1];
	char h2[USERS_HASH_MAX + 1];

	cr_assert_eq(users_hash_password("pa:ss word", 10, USERS_COST_MIN, h), 0);
	cr_assert_eq(strncmp(h, "$argon2id$", 10), 0);
	cr_assert(users_verify_password(h, "pa:ss word", 10));
	cr_assert_not(users_verify_password(h, "pa:ss Word", 10));
	cr_assert_not(users_verify_password(h, "pa:ss wor", 9));
	cr_assert_not(users_verify_password(h, "", 0));
	/* a random salt: the same password hashes differently */
	cr_assert_eq(users_hash_password("pa:ss word", 10, USERS_COST_MIN, h2), 0);
	cr_assert_str_neq(h, h2);
	cr_assert_eq(users_hash_password("", 0, USERS_COST_MIN, h), -EINVAL);
	cr_assert_not(users_verify_password("plain", "plain", 5));
}

/* the default cost that heraldctl writes: libsodium's interactive limits */
Test(users, default_cost_is_libsodium_interactive)
{
	char h[USERS_HASH_MAX + 1];

	cr_assert_eq(users_hash_password("x", 1, USERS_COST_INTERACTIVE, h), 0);
	cr_assert(strstr(h, "$m=65536,t=2,p=1$"), "%s", h);
	cr_assert(users_hash_is_valid(h, strlen(h)));
}

Test(users, add_validates_and_replaces_only_when_asked)
{
	struct users_table *t = users_table_create();
	struct users_error err;
	struct users_entry e = { .name = "guest", .hash = hash_of_secret(), .tags = "administrator",
				 .vhosts = "*", .source = USERS_SRC_DEFAULT, .loopback_only = true };
	const struct users_entry *got;

	cr_assert_eq(users_table_add(t, &e, false, &err), 0);
	got = users_table_find(t, "guest", 5);
	cr_assert(got->loopback_only);
	cr_assert_eq(got->tag_bits, USERS_TAG_ADMINISTRATOR);
	e.loopback_only = false;
	e.tags = NULL;
	cr_assert_eq(users_table_add(t, &e, false, &err), -EEXIST);
	cr_assert_eq(users_table_add(t, &e, true, &err), 0);
	got = users_table_find(t, "guest", 5);
	cr_assert_not(got->loopback_only);
	cr_assert_str_eq(got->tags, "");
	cr_assert_eq(users_table_count(t), 1);
	e.name = "bad name";
	cr_assert_eq(users_table_add(t, &e, true, &err), -EINVAL);
	users_table_destroy(t);
}

Test(users, index_finds_every_user_of_a_large_table)
{
	struct users_table *t = users_table_create();
	struct users_error err;
	char name[32];

	for (int i = 0; i < 5000; i++) {
		struct users_entry e = { .name = name, .hash = FIXED_HASH };

		snprintf(name, sizeof(name), "user%d", i);
		cr_assert_eq(users_table_add(t, &e, false, &err), 0);
	}
	for (int i = 0; i < 5000; i++) {
		const struct users_entry *e;

		snprintf(name, sizeof(name), "user%d", i);
		e = users_table_find(t, name, strlen(name));
		cr_assert_not_null(e, "%s", name);
		cr_assert_str_eq(e->name, name);
		cr_assert_eq(users_table_at(t, (size_t)i), e);
	}
	cr_assert_null(users_table_find(t, "user5000", 8));
	users_table_destroy(t);
}

Test(users, format_line_round_trips_through_the_parser)
{
	struct users_entry e = { .name = "billing", .hash = FIXED_HASH, .tags = "service",
				 .vhosts = "/,prod" };
	struct users_table *t = users_table_create();
	struct users_error err;
	char line[USERS_LINE_MAX];
	int n = users_format_line(&e, line, sizeof(line));
	const struct users_entry *back;

	cr_assert_gt(n, 0);
	cr_assert_eq(line[n - 1], '\n');
	cr_assert_eq(parse_text(t, line, &err), 0, "%s", err.msg);
	back = users_table_find(t, "billing", 7);
	cr_assert_str_eq(back->hash, FIXED_HASH);
	cr_assert_str_eq(back->tags, "service");
	cr_assert_str_eq(back->vhosts, "/,prod");
	cr_assert_eq(users_format_line(&e, line, 10), -ENOSPC);
	users_table_destroy(t);
}

Test(users, normalizes_lists)
{
	char out[256];
	const char *why;

	cr_assert_eq(users_normalize_list("a,b", 3, false, out, sizeof(out), &why), 3);
	cr_assert_str_eq(out, "a,b");
	cr_assert_eq(users_normalize_list("", 0, false, out, sizeof(out), &why), 0);
	cr_assert_eq(users_normalize_list("*", 1, true, out, sizeof(out), &why), 1);
	cr_assert_eq(users_normalize_list("*", 1, false, out, sizeof(out), &why), -EINVAL);
	cr_assert_eq(users_normalize_list("/,prod", 6, true, out, sizeof(out), &why), 6);
	cr_assert(users_list_has(out, "prod", 4));
	cr_assert_not(users_list_has(out, "pro", 3));
	cr_assert_eq(users_normalize_list("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", 33, false, out,
					  sizeof(out), &why), -EINVAL);
}

Test(users, loads_a_file_and_names_it_in_errors)
{
	char path[] = "/tmp/herald-test-users-XXXXXX";
	int fd = mkstemp(path);
	struct users_table *t = users_table_create();
	struct users_error err = { 0 };
	char text[512];
	int n = snprintf(text, sizeof(text), "jack:%s:service\n", FIXED_HASH);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, (size_t)n), n);
	close(fd);
	cr_assert_eq(users_table_load(t, path, &err), 0, "%s", err.msg);
	cr_assert_not_null(users_table_find(t, "jack", 4));
	unlink(path);
	cr_assert_eq(users_table_load(t, path, &err), -ENOENT);
	cr_assert(strstr(err.msg, path), "%s", err.msg);
	cr_assert_eq(users_table_load(t, "/tmp", &err), -EINVAL);
	users_table_destroy(t);
}
