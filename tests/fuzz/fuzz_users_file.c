/*
 * tests/fuzz/fuzz_users_file.c - libFuzzer target for the auth files: the users file
 * (auth/users.c) and the rules file (auth/acl.c), both parsed from a memory buffer. Built
 * with clang -fsanitize=fuzzer,address,undefined, and as a replay binary under gcc +
 * ASan/UBSan over corpus/fuzz_users_file/.
 *
 * Byte 0 picks the file: even, a users file; odd, a rules file. The rest is its text, in an
 * exact-size allocation so ASan sees any over-read. Checked:
 *   users: success means every entry is valid, found by its name, and written back by
 *     users_format_line() parses to the same entry; failure has a reason and a line no
 *     later than the text has; lists are normalized.
 *   rules: success means a bounded rule count and acl_check() answering for destinations
 *     cut from the input, for plain, service and administrator subjects (the latter always
 *     allowed); failure has a reason and a plausible line.
 */
#include "auth/acl.h"
#include "auth/users.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_users_file: check failed at line %d: %s\n",    \
				__LINE__, #cond);                                          \
			abort();                                                           \
		}                                                                          \
	} while (0)

static uint32_t count_lines(const char *s, size_t len)
{
	uint32_t n = 1;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

static void check_entry(const struct users_table *t, const struct users_entry *e)
{
	struct users_table *back = users_table_create();
	struct users_error err;
	const struct users_entry *b;
	char line[4 * USERS_LINE_MAX];
	int n;

	CHECK(users_name_is_valid(e->name, strlen(e->name)));
	CHECK(users_hash_is_valid(e->hash, strlen(e->hash)));
	CHECK(users_table_find(t, e->name, strlen(e->name)) == e);
	CHECK(e->vhosts[0]);
	CHECK(e->tag_bits == users_tag_bits(e->tags));
	n = users_format_line(e, line, sizeof(line));
	CHECK(n > 0);
	CHECK(users_table_parse(back, line, (size_t)n, &err) == 0);
	b = users_table_at(back, 0);
	CHECK(b && users_table_count(back) == 1);
	CHECK(!strcmp(b->name, e->name) && !strcmp(b->hash, e->hash));
	CHECK(!strcmp(b->tags, e->tags) && !strcmp(b->vhosts, e->vhosts));
	users_table_destroy(back);
}

static void fuzz_users(const char *text, size_t len)
{
	struct users_table *t = users_table_create();
	struct users_error err = { 0 };
	int rc = users_table_parse(t, text, len, &err);

	CHECK(rc == 0 || rc == -EINVAL || rc == -EEXIST);
	if (rc) {
		CHECK(err.msg[0]);
		CHECK(err.line <= count_lines(text, len));
	} else {
		CHECK(users_table_count(t) <= USERS_MAX);
		for (size_t i = 0; i < users_table_count(t); i++)
			check_entry(t, users_table_at(t, i));
	}
	users_table_destroy(t);
}

static void decide(const struct acl_rules *r, const char *dest, size_t len)
{
	static const struct acl_subject who[] = { { "jack", "" }, { "svc", "service" },
						  { "root", "administrator" } };
	static const char *vhosts[] = { "/", "prod" };

	for (size_t w = 0; w < 3; w++) {
		for (size_t v = 0; v < 2; v++) {
			struct acl_decision d;

			acl_check(r, vhosts[v], &who[w], ACL_SUBSCRIBE, dest, len, &d);
			CHECK(d.why && d.why[0]);
			CHECK(w != 2 || d.allowed);
			acl_check(r, vhosts[v], &who[w], ACL_SEND, dest, len, &d);
			CHECK(d.why && d.why[0]);
		}
	}
}

static void fuzz_rules(const char *text, size_t len)
{
	struct acl_rules *r = NULL;
	struct acl_error err = { 0 };
	int rc = acl_rules_parse(text, len, &r, &err);

	CHECK(rc == 0 || rc == -EINVAL);
	if (rc) {
		CHECK(!r && err.msg[0]);
		CHECK(err.line <= count_lines(text, len));
		return;
	}
	CHECK(acl_rules_count(r) <= ACL_RULES_MAX);
	/* destinations: fixed ones, and every whitespace-free run of the input */
	decide(r, "/queue/jack", 11);
	decide(r, "/topic/a.b", 10);
	for (size_t i = 0; i < len;) {
		size_t j = i;

		while (j < len && text[j] != ' ' && text[j] != '\n')
			j++;
		if (j > i && text[i] == '/')
			decide(r, text + i, j - i);
		i = j + 1;
	}
	acl_rules_destroy(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	text = malloc(len ? len : 1);
	CHECK(text);
	memcpy(text, data + 1, len);
	if (data[0] & 1)
		fuzz_rules(text, len);
	else
		fuzz_users(text, len);
	free(text);
	return 0;
}
