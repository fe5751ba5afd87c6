/*
 * tests/unit/auth/test_acl.c - auth/acl.c: destination patterns (RabbitMQ topic words,
 * {user}), containment of wildcard subscriptions, the built-in defaults of issue 5, and the
 * rules-file format of docs/auth.md (sections, first match wins, deny, defaults, errors).
 * Properties: for literal destinations the matcher agrees with core/topic_match.c; a
 * pattern said to cover a wildcard subscription matches every topic that subscription can.
 */
#include "auth/acl.h"
#include "core/topic_match.h"
#include "tests/support/guarded_buf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool covers(const char *pattern, const char *user, const char *dest)
{
	struct guarded_buf gb;
	const char *p = guarded_buf_init(&gb, dest, strlen(dest));
	bool r = acl_pattern_covers(pattern, strlen(pattern), user, p, strlen(dest));

	guarded_buf_fini(&gb);
	return r;
}

static struct acl_rules *rules_from(const char *text)
{
	struct acl_rules *r = NULL;
	struct acl_error err = { 0 };

	cr_assert_eq(acl_rules_parse(text, strlen(text), &r, &err), 0, "line %u: %s", err.line,
		     err.msg);
	return r;
}

static bool may(const struct acl_rules *r, const char *vhost, const char *user, const char *tags,
		enum acl_action a, const char *dest)
{
	struct acl_subject s = { user, tags };
	struct acl_decision d;

	acl_check(r, vhost, &s, a, dest, strlen(dest), &d);
	cr_assert_not_null(d.why);
	return d.allowed;
}

Test(acl, validates_patterns)
{
	static const char *good[] = { "#", "/queue/{user}", "/topic/#", "/topic/news.*.uk",
				      "/queue/{user}.inbox", "/exchange/x/y", "/topic/a{user}b" };
	static const char *bad[] = { "", "queue/a", "/queue", "//a", "/*/a", "/#/a",
				     "/queue/{usr}", "/queue/{user", "/queue/a}", "/queue/a b",
				     "/queue/\x01", "*", "##" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert(acl_pattern_is_valid(good[i], strlen(good[i])), "%s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(acl_pattern_is_valid(bad[i], strlen(bad[i])), "%s", bad[i]);
}

/* RabbitMQ topic semantics, per word */
Test(acl, matches_words_like_rabbitmq_topics)
{
	cr_assert(covers("/topic/news.*", "u", "/topic/news.uk"));
	cr_assert_not(covers("/topic/news.*", "u", "/topic/news"));
	cr_assert_not(covers("/topic/news.*", "u", "/topic/news.uk.london"));
	cr_assert(covers("/topic/alerts.#", "u", "/topic/alerts"));
	cr_assert(covers("/topic/alerts.#", "u", "/topic/alerts.a.b"));
	cr_assert(covers("/topic/#.b", "u", "/topic/a.x.b"));
	cr_assert_not(covers("/topic/#.b", "u", "/topic/a.x.c"));
	cr_assert(covers("/topic/#", "u", "/topic/"));
	cr_assert_not(covers("/topic/*", "u", "/topic/"));	/* an empty name has no words */
	cr_assert(covers("/topic/a.*.b", "u", "/topic/a..b"));
	cr_assert(covers("#", "u", "/anything/at.all"));
	cr_assert(covers("#", "u", ""));
}

Test(acl, kind_prefix_must_be_equal)
{
	cr_assert(covers("/queue/jack", "u", "/queue/jack"));
	cr_assert_not(covers("/queue/jack", "u", "/topic/jack"));
	cr_assert_not(covers("/queue/#", "u", "/queues/jack"));
	cr_assert_not(covers("/queue/#", "u", "/queue"));
	cr_assert_not(covers("/topic/#", "u", "queue/x"));
}

Test(acl, substitutes_user_literally)
{
	cr_assert(covers("/queue/{user}", "jack", "/queue/jack"));
	cr_assert_not(covers("/queue/{user}", "jack", "/queue/rose"));
	cr_assert_not(covers("/queue/{user}", "jack", "/queue/jackx"));
	cr_assert(covers("/queue/{user}.inbox", "j.smith", "/queue/j.smith.inbox"));
	cr_assert(covers("/topic/user-{user}.#", "jack", "/topic/user-jack.a"));
	cr_assert_not(covers("/queue/{user}", "jack", "/queue/jack.more"));
}

/* A wildcard SUBSCRIBE is allowed only inside the pattern */
Test(acl, wildcard_subscriptions_need_a_covering_pattern)
{
	cr_assert(covers("/topic/news.#", "u", "/topic/news.*"));
	cr_assert(covers("/topic/news.#", "u", "/topic/news.#"));
	cr_assert(covers("/topic/#", "u", "/topic/#"));
	cr_assert(covers("/topic/news.*", "u", "/topic/news.*"));
	cr_assert_not(covers("/topic/news.*", "u", "/topic/news.#"));
	cr_assert_not(covers("/topic/*", "u", "/topic/#"));
	cr_assert_not(covers("/topic/news.uk", "u", "/topic/news.*"));
	cr_assert_not(covers("/topic/*.uk", "u", "/topic/#.uk"));
	cr_assert_not(covers("/queue/{user}", "jack", "/queue/#"));
	cr_assert_not(covers("/queue/{user}", "jack", "/queue/*"));
}

Test(acl, refuses_destinations_over_the_limit)
{
	char *d = malloc(ACL_DEST_MAX + 2);

	memcpy(d, "/topic/", 7);
	memset(d + 7, 'a', ACL_DEST_MAX - 6);
	d[ACL_DEST_MAX + 1] = '\0';
	cr_assert_not(covers("#", "u", d));
	cr_assert_not(covers("/topic/#", "u", d));
	d[ACL_DEST_MAX] = '\0';
	cr_assert(covers("/topic/#", "u", d));
	free(d);
}

/* Hostile shapes finish quickly and correctly (no exponential backtracking). */
Test(acl, many_hash_words_against_many_words_is_polynomial)
{
	char pat[ACL_PATTERN_MAX + 1] = "/topic/";
	char dest[ACL_DEST_MAX + 1] = "/topic/";
	size_t n = 7;

	while (n + 2 < 200) {
		memcpy(pat + n, "#.", 2);
		n += 2;
	}
	strcpy(pat + n, "z");
	for (n = 7; n + 2 < ACL_DEST_MAX - 2; n += 2)
		memcpy(dest + n, "a.", 2);
	strcpy(dest + n, "y");
	cr_assert_not(covers(pat, "u", dest));
	dest[n] = 'z';
	cr_assert(covers(pat, "u", dest));
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* words from a small alphabet, so that matches happen often */
static void random_words(uint32_t *s, char *out, bool wild)
{
	static const char *lit[] = { "a", "b", "", "ab" };
	int n = 1 + (int)(rnd(s) % 5);

	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		uint32_t r = rnd(s) % 8;
		const char *w = wild && r == 6 ? "*" : wild && r == 7 ? "#" : lit[r % 4];

		if (i)
			strcat(out, ".");
		strcat(out, w);
	}
}

Test(acl, agrees_with_topic_match_on_literal_destinations)
{
	uint32_t s = 0x9e3779b9;

	for (int i = 0; i < 100000; i++) {
		char p[64];
		char t[64];
		char pat[80];
		char dest[80];

		random_words(&s, p, true);
		random_words(&s, t, false);
		snprintf(pat, sizeof(pat), "/topic/%s", p);
		snprintf(dest, sizeof(dest), "/topic/%s", t);
		cr_assert_eq(acl_pattern_covers(pat, strlen(pat), "u", dest, strlen(dest)),
			     topic_match(p, strlen(p), t, strlen(t)), "pattern %s topic %s", p, t);
	}
}

/* Soundness of containment: covers(P, S) and S matches T imply P matches T. */
Test(acl, containment_is_sound)
{
	uint32_t s = 12345;
	int checked = 0;

	for (int i = 0; i < 20000; i++) {
		char p[64];
		char sub[64];
		char pat[80];
		char dest[80];

		random_words(&s, p, true);
		random_words(&s, sub, true);
		snprintf(pat, sizeof(pat), "/topic/%s", p);
		snprintf(dest, sizeof(dest), "/topic/%s", sub);
		if (!acl_pattern_covers(pat, strlen(pat), "u", dest, strlen(dest)))
			continue;
		for (int k = 0; k < 50; k++) {
			char t[64];

			random_words(&s, t, false);
			if (topic_match(sub, strlen(sub), t, strlen(t))) {
				checked++;
				cr_assert(topic_match(p, strlen(p), t, strlen(t)),
					  "%s covers %s, which matches %s, which %s does not", p,
					  sub, t, p);
			}
		}
	}
	cr_assert_gt(checked, 1000);
}

/* acl_pattern_overlaps is exact on random patterns: true iff some name matches both. */
Test(acl, overlap_agrees_with_a_shared_matching_name)
{
	uint32_t s = 777;
	int both = 0, neither = 0;

	for (int i = 0; i < 20000; i++) {
		char a[64], b[64], pa[80], pb[80];
		bool witness = false;

		random_words(&s, a, true);
		random_words(&s, b, true);
		snprintf(pa, sizeof(pa), "/topic/%s", a);
		snprintf(pb, sizeof(pb), "/topic/%s", b);
		for (int k = 0; k < 200 && !witness; k++) {
			char t[64];

			random_words(&s, t, false);
			witness = topic_match(a, strlen(a), t, strlen(t)) &&
				  topic_match(b, strlen(b), t, strlen(t));
		}
		if (witness) {
			both++;
			cr_assert(acl_pattern_overlaps(pa, strlen(pa), "u", pb, strlen(pb)),
				  "%s and %s share a name but do not overlap", a, b);
		} else if (!acl_pattern_overlaps(pa, strlen(pa), "u", pb, strlen(pb))) {
			neither++;
		}
		cr_assert_eq(acl_pattern_overlaps(pa, strlen(pa), "u", pb, strlen(pb)),
			     acl_pattern_overlaps(pb, strlen(pb), "u", pa, strlen(pa)),
			     "overlap of %s and %s is not symmetric", a, b);
	}
	cr_assert_gt(both, 1000);
	cr_assert_gt(neither, 1000);
}

Test(acl, overlap_cases)
{
	const char *yes[][2] = {
		{ "/topic/secret.#", "/topic/#" }, { "/topic/secret.#", "/topic/*.a" },
		{ "/topic/secret", "/topic/*" }, { "/topic/a.*.c", "/topic/a.b.*" },
		{ "/topic/#", "/topic/x" }, { "#", "/queue/q" }, { "/topic/a.#.z", "/topic/#.z" },
		{ "/topic/secret.#", "/topic/secret" },
	};
	const char *no[][2] = {
		{ "/topic/secret.#", "/topic/public.#" }, { "/topic/secret", "/topic/*.*" },
		{ "/topic/a.*", "/topic/b.#" }, { "/queue/secret", "/topic/secret" },
		{ "/topic/a.b", "/topic/a.c" },
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert(acl_pattern_overlaps(yes[i][0], strlen(yes[i][0]), "u", yes[i][1],
					       strlen(yes[i][1])), "%s / %s", yes[i][0], yes[i][1]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_assert_not(acl_pattern_overlaps(no[i][0], strlen(no[i][0]), "u", no[i][1],
						   strlen(no[i][1])), "%s / %s", no[i][0], no[i][1]);
}

/* A deny rule refuses any subscription that could receive what it denies: with only
 * "covers", rose's /topic/# slipped past `deny subscribe user:rose /topic/secret.#`. */
Test(acl, a_wildcard_subscription_cannot_reach_past_a_deny)
{
	struct acl_rules *r = rules_from("[vhost /]\n"
					 "deny  subscribe user:rose /topic/secret.#\n"
					 "allow subscribe *         /topic/#\n");

	cr_assert_not(may(r, "/", "rose", "", ACL_SUBSCRIBE, "/topic/#"));
	cr_assert_not(may(r, "/", "rose", "", ACL_SUBSCRIBE, "/topic/*.a"));
	cr_assert_not(may(r, "/", "rose", "", ACL_SUBSCRIBE, "/topic/secret"));
	cr_assert_not(may(r, "/", "rose", "", ACL_SUBSCRIBE, "/topic/*"), "would get /topic/secret");
	cr_assert(may(r, "/", "rose", "", ACL_SUBSCRIBE, "/topic/public.#"));
	cr_assert(may(r, "/", "rose", "", ACL_SUBSCRIBE, "/topic/public.*.x"));
	cr_assert(may(r, "/", "jack", "", ACL_SUBSCRIBE, "/topic/#"));
	acl_rules_destroy(r);
}

/* Issue 5: the defaults when no rules are configured */
Test(acl, defaults_give_a_plain_user_its_own_queue_and_all_topics_to_read)
{
	struct acl_rules *r = acl_rules_create_defaults();

	cr_assert_eq(acl_rules_count(r), 3);
	cr_assert(may(r, "/", "jack", "", ACL_SUBSCRIBE, "/queue/jack"));
	cr_assert(may(r, "/", "jack", "", ACL_SEND, "/queue/jack"));
	cr_assert_not(may(r, "/", "jack", "", ACL_SUBSCRIBE, "/queue/rose"));
	cr_assert_not(may(r, "/", "jack", "", ACL_SEND, "/queue/rose"));
	cr_assert(may(r, "/", "jack", "", ACL_SUBSCRIBE, "/topic/news.uk"));
	cr_assert(may(r, "/", "jack", "", ACL_SUBSCRIBE, "/topic/#"));
	cr_assert_not(may(r, "/", "jack", "", ACL_SEND, "/topic/news.uk"));
	cr_assert_not(may(r, "prod", "jack", "", ACL_SUBSCRIBE, "/queue/rose"));
	cr_assert(may(r, "prod", "jack", "", ACL_SUBSCRIBE, "/queue/jack"));
	acl_rules_destroy(r);
}

Test(acl, defaults_let_a_service_send_anywhere_but_not_read_others)
{
	struct acl_rules *r = acl_rules_create_defaults();

	cr_assert(may(r, "/", "billing", "service", ACL_SEND, "/queue/jack"));
	cr_assert(may(r, "/", "billing", "service", ACL_SEND, "/queue/rose"));
	cr_assert(may(r, "/", "billing", "service", ACL_SEND, "/topic/news.uk"));
	cr_assert_not(may(r, "/", "billing", "service", ACL_SUBSCRIBE, "/queue/rose"));
	cr_assert(may(r, "/", "billing", "x,service", ACL_SEND, "/queue/rose"));
	acl_rules_destroy(r);
}

Test(acl, administrator_may_do_everything)
{
	struct acl_rules *r = rules_from("[vhost /]\ndeny all * #\n");
	struct acl_subject s = { "ops", "administrator" };
	struct acl_decision d;

	cr_assert(may(r, "/", "ops", "administrator", ACL_SUBSCRIBE, "/queue/rose"));
	cr_assert(may(r, "other", "ops", "service,administrator", ACL_SEND, "/topic/x"));
	acl_check(r, "/", &s, ACL_SEND, "/queue/x", 8, &d);
	cr_assert_str_eq(d.why, "administrator");
	cr_assert_not(may(r, "/", "jack", "", ACL_SUBSCRIBE, "/queue/jack"));
	acl_rules_destroy(r);
}

Test(acl, rules_file_first_match_wins_and_no_match_denies)
{
	struct acl_rules *r = rules_from("# comment\n"
					 "[vhost /]\n"
					 "deny  subscribe user:rose /topic/secret.#\n"
					 "allow subscribe *         /topic/#\n"
					 "allow all       tag:ops   /queue/ops.*  /topic/ops.#\n"
					 "  allow send   *  /queue/{user}   \r\n");
	struct acl_subject s = { "rose", "" };
	struct acl_decision d;

	cr_assert_eq(acl_rules_count(r), 4);
	acl_check(r, "/", &s, ACL_SUBSCRIBE, "/topic/secret.x", 15, &d);
	cr_assert_not(d.allowed);
	cr_assert_eq(d.line, 3);
	cr_assert_str_eq(d.why, "denied by rule");
	acl_check(r, "/", &s, ACL_SUBSCRIBE, "/topic/public", 13, &d);
	cr_assert(d.allowed);
	cr_assert_eq(d.line, 4);
	cr_assert(may(r, "/", "jack", "", ACL_SUBSCRIBE, "/topic/secret.x"));
	cr_assert(may(r, "/", "jack", "", ACL_SEND, "/queue/jack"));
	cr_assert_not(may(r, "/", "jack", "", ACL_SUBSCRIBE, "/queue/jack"));
	cr_assert(may(r, "/", "bob", "ops", ACL_SEND, "/queue/ops.a"));
	cr_assert(may(r, "/", "bob", "ops", ACL_SUBSCRIBE, "/topic/ops.a.b"));
	acl_check(r, "/", &s, ACL_SEND, "/topic/x", 8, &d);
	cr_assert_not(d.allowed);
	cr_assert_eq(d.line, 0);
	cr_assert_str_eq(d.why, "no rule allows it");
	acl_rules_destroy(r);
}

Test(acl, rules_apply_per_vhost)
{
	struct acl_rules *r = rules_from("[vhost prod]\n"
					 "allow all * /queue/{user}\n"
					 "[vhost *]\n"
					 "allow subscribe * /topic/#\n"
					 "[vhost dev]\n"
					 "allow all * #\n");

	cr_assert(may(r, "prod", "jack", "", ACL_SEND, "/queue/jack"));
	cr_assert_not(may(r, "/", "jack", "", ACL_SEND, "/queue/jack"));
	cr_assert(may(r, "/", "jack", "", ACL_SUBSCRIBE, "/topic/a"));
	cr_assert(may(r, "prod", "jack", "", ACL_SUBSCRIBE, "/topic/a"));
	cr_assert(may(r, "dev", "jack", "", ACL_SEND, "/queue/rose"));
	cr_assert_not(may(r, "prod", "jack", "", ACL_SEND, "/queue/rose"));
	acl_rules_destroy(r);
}

Test(acl, defaults_keyword_inserts_the_builtin_rules_in_place)
{
	struct acl_rules *r = rules_from("[vhost /]\n"
					 "deny send * /queue/{user}\n"
					 "defaults\n"
					 "[vhost locked]\n"
					 "allow subscribe user:jack /queue/jack\n");
	struct acl_subject s = { "jack", "" };
	struct acl_decision d;

	cr_assert_eq(acl_rules_count(r), 5);
	cr_assert_not(may(r, "/", "jack", "", ACL_SEND, "/queue/jack"));
	acl_check(r, "/", &s, ACL_SUBSCRIBE, "/queue/jack", 11, &d);
	cr_assert(d.allowed);
	cr_assert_eq(d.line, 3);
	cr_assert(may(r, "/", "svc", "service", ACL_SEND, "/queue/jack"));
	cr_assert_not(may(r, "locked", "jack", "", ACL_SUBSCRIBE, "/topic/x"));
	cr_assert(may(r, "locked", "jack", "", ACL_SUBSCRIBE, "/queue/jack"));
	acl_rules_destroy(r);
}

static void expect_error_len(const char *text, size_t len, uint32_t line, const char *needle)
{
	struct acl_rules *r = NULL;
	struct acl_error err = { 0 };

	cr_assert_eq(acl_rules_parse(text, len, &r, &err), -EINVAL, "%s", text);
	cr_assert_null(r);
	cr_assert_eq(err.line, line, "%s: line %u", text, err.line);
	cr_assert(strstr(err.msg, needle), "%s: %s", text, err.msg);
}

static void expect_error(const char *text, uint32_t line, const char *needle)
{
	expect_error_len(text, strlen(text), line, needle);
}

Test(acl, rules_file_errors_name_the_line)
{
	expect_error("allow all * #\n", 1, "before any");
	expect_error("[vhost /]\nallow all *\n", 2, "expected");
	expect_error("[vhost /]\npermit all * #\n", 2, "allow or deny");
	expect_error("[vhost /]\nallow read * #\n", 2, "unknown action");
	expect_error("[vhost /]\nallow all bob #\n", 2, "unknown subject");
	expect_error("[vhost /]\nallow all user:a/b #\n", 2, "unknown subject");
	expect_error("[vhost /]\n\nallow all * queue/x\n", 3, "invalid pattern");
	expect_error("[vhost /]\nallow all * /queue/{usr}\n", 2, "invalid pattern");
	expect_error("[host /]\n", 1, "section");
	expect_error("[vhost a,b]\n", 1, "invalid virtual host");
	expect_error("[vhost /\n", 1, "section");
	expect_error_len("[vhost /]\nallow all * #\x00\n", 25, 2, "NUL");
	expect_error("[vhost /]\nallow all * # # # # # # # # # # # # # # # # #\n", 2, "16 patterns");
}

Test(acl, rules_file_limits_line_length)
{
	char *text = malloc(ACL_LINE_MAX + 32);

	strcpy(text, "[vhost /]\n#");
	memset(text + 11, 'x', ACL_LINE_MAX);
	strcpy(text + 11 + ACL_LINE_MAX, "\n");
	expect_error(text, 2, "longer");
	free(text);
}

Test(acl, loads_a_rules_file)
{
	char path[] = "/tmp/herald-test-rules-XXXXXX";
	int fd = mkstemp(path);
	const char text[] = "[vhost /]\nallow all * #\n";
	struct acl_rules *r = NULL;
	struct acl_error err = { 0 };

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	cr_assert_eq(acl_rules_load(path, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(acl_rules_count(r), 1);
	acl_rules_destroy(r);
	unlink(path);
	cr_assert_eq(acl_rules_load(path, &r, &err), -ENOENT);
	cr_assert(strstr(err.msg, path));
}
