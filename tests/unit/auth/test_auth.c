/*
 * tests/unit/auth/test_auth.c - auth/auth.c end to end, as a shard and the auth thread
 * would drive it: issue 5's defaults (guest from loopback only, --user, tags), the slow
 * path and the credentials cache, vhosts, rate limiting, reloads, JWT logins, and the
 * SUBSCRIBE/SEND decisions with their ERROR text.
 */
#include "auth/auth.h"
#include "tests/unit/auth/test_jwt_helpers.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct sockaddr_in addr4(const char *ip)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(40000) };

	cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return a;
}

static struct sockaddr_in LOOPBACK;
static struct sockaddr_in REMOTE;

static void init_addrs(void)
{
	LOOPBACK = addr4("127.0.0.1");
	REMOTE = addr4("192.0.2.10");
}

TestSuite(auth, .init = init_addrs);

/* A temporary file holding text; the returned path is malloc'd (unlink and free it). */
static char *temp_file(const char *text)
{
	char *path = strdup("/tmp/herald-test-auth-XXXXXX");
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void drop_file(char *path)
{
	unlink(path);
	free(path);
}

static struct users_table *static_users(const char *const *specs, size_t n)
{
	struct users_table *t = NULL;
	char err[256];

	cr_assert_eq(auth_static_users_create(specs, n, "guest", "guest", true, USERS_COST_MIN, &t,
					      err, sizeof(err)), 0, "%s", err);
	return t;
}

static struct auth_db *db_with(const struct auth_settings *s)
{
	struct auth_db *db = NULL;
	char err[256] = "";

	cr_assert_eq(auth_db_create(s, &db, err, sizeof(err)), 0, "%s", err);
	return db;
}

static struct auth_request req(const char *login, const char *pass, const char *vhost,
			       const struct sockaddr_in *peer, uint64_t now_ms)
{
	return (struct auth_request){
		.login = login, .login_len = login ? strlen(login) : 0,
		.passcode = pass, .passcode_len = pass ? strlen(pass) : 0,
		.vhost = vhost, .vhost_len = vhost ? strlen(vhost) : 0,
		.peer = (const struct sockaddr *)peer,
		.now_ms = now_ms, .now_unix_ms = TEST_NOW * 1000,
	};
}

/* auth_connect, and when it says AUTH_SLOW, the auth thread's run and the shard's finish. */
static enum auth_status login(const struct auth_db *db, struct auth_shard *as,
			      const struct auth_request *rq, struct auth_result *out, bool *slow)
{
	auth_connect(db, as, rq, out);
	*slow = out->status == AUTH_SLOW;
	if (*slow) {
		cr_assert_not_null(out->job);
		auth_job_run(out->job);
		auth_job_finish(out->job, as, rq->now_ms, out);
	}
	cr_assert_neq(out->status, AUTH_SLOW);
	if (out->status == AUTH_OK)
		cr_assert_not_null(out->identity);
	else
		cr_assert(out->message && out->detail[0] && out->log_reason);
	return out->status;
}

struct fx {
	struct users_table *st;
	struct auth_db *db;
	struct auth_shard as;
};

static void fx_init(struct fx *f, const char *const *specs, size_t n, struct auth_settings *s)
{
	struct auth_settings def = { 0 };

	f->st = static_users(specs, n);
	if (!s)
		s = &def;
	s->static_users = f->st;
	f->db = db_with(s);
	auth_shard_init(&f->as);
}

static void fx_fini(struct fx *f)
{
	auth_shard_fini(&f->as);
	auth_db_unref(f->db);
	users_table_destroy(f->st);
}

/* ---- issue 5: authentication defaults ---- */

Test(auth, guest_logs_in_from_loopback_only_and_is_administrator)
{
	struct fx f;
	struct auth_result r;
	struct auth_request rq = req("guest", "guest", "/", &LOOPBACK, 0);
	bool slow;

	fx_init(&f, NULL, 0, NULL);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK, "%s", r.detail);
	cr_assert(slow);
	cr_assert_str_eq(r.identity->user, "guest");
	cr_assert_str_eq(r.identity->vhost, "/");
	cr_assert_eq(r.identity->tag_bits, USERS_TAG_ADMINISTRATOR);
	cr_assert_eq(r.identity->method, AUTH_METHOD_PASSWORD);
	cr_assert_eq(auth_identity_ms_left(r.identity, TEST_NOW * 1000), -1);
	auth_identity_destroy(r.identity);
	rq = req("guest", "guest", "/", &REMOTE, 0);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_DENIED);	/* at once: no slow check for it */
	cr_assert_str_eq(r.message, "Access refused");
	fx_fini(&f);
}

Test(auth, cli_user_logs_in_from_anywhere_with_its_tags)
{
	const char *specs[] = { "jack:pw", "billing:s3cret:service", "colon:pa:ss:" };
	struct fx f;
	struct auth_result r;
	struct auth_request rq = req("billing", "s3cret", "/", &REMOTE, 0);
	bool slow;

	fx_init(&f, specs, 3, NULL);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK, "%s", r.detail);
	cr_assert_str_eq(r.identity->tags, "service");
	cr_assert_eq(r.identity->tag_bits, USERS_TAG_SERVICE);
	auth_identity_destroy(r.identity);
	rq = req("colon", "pa:ss", "/", &REMOTE, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK, "%s", r.detail);
	cr_assert_str_eq(r.identity->tags, "");
	auth_identity_destroy(r.identity);
	cr_assert_eq(auth_db_user_count(f.db), 4);
	fx_fini(&f);
}

Test(auth, wrong_password_is_refused_after_the_slow_check)
{
	const char *specs[] = { "jack:pw" };
	struct fx f;
	struct auth_result r;
	struct auth_request rq = req("jack", "PW", "/", &REMOTE, 0);
	bool slow;

	fx_init(&f, specs, 1, NULL);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	cr_assert(slow);
	cr_assert_str_eq(r.log_reason, "wrong password");
	cr_assert(strstr(r.detail, "Login failed"));
	cr_assert_eq(r.delay_ms, 0);	/* the first failures are free */
	cr_assert_eq(f.as.logins_failed, 1);
	fx_fini(&f);
}

Test(auth, unknown_user_is_checked_against_a_dummy_hash_and_refused)
{
	struct fx f;
	struct auth_result r;
	struct auth_request rq = req("nobody", "guest", "/", &LOOPBACK, 0);
	bool slow;

	fx_init(&f, NULL, 0, NULL);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	cr_assert(slow, "an unknown user must cost as much as a known one");
	cr_assert_str_eq(r.log_reason, "unknown user");
	fx_fini(&f);
}

Test(auth, malformed_logins_are_refused_without_a_slow_check)
{
	static char big[USERS_PASSWORD_MAX + 2];
	const char *cases[][2] = { { NULL, "guest" }, { "guest", NULL }, { "", "guest" },
				   { "guest", "" }, { "gu est", "guest" }, { "guest", big } };
	struct fx f;
	struct auth_result r;
	struct auth_request rq;

	memset(big, 'x', sizeof(big) - 1);
	fx_init(&f, NULL, 0, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rq = req(cases[i][0], cases[i][1], "/", &LOOPBACK, 0);
		auth_connect(f.db, &f.as, &rq, &r);
		cr_assert_eq(r.status, AUTH_DENIED, "case %zu", i);
		cr_assert_null(r.job);
	}
	fx_fini(&f);
}

/* ---- the fast path ---- */

Test(auth, second_login_is_answered_from_the_cache)
{
	const char *specs[] = { "jack:pw" };
	struct fx f;
	struct auth_result r;
	struct auth_request rq = req("jack", "pw", "/", &REMOTE, 0);
	bool slow;

	fx_init(&f, specs, 1, NULL);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK);
	cr_assert(slow);
	auth_identity_destroy(r.identity);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_OK);
	cr_assert_eq(f.as.cache_hits, 1);
	cr_assert_eq(f.as.slow_checks, 1);
	auth_identity_destroy(r.identity);
	/* a wrong password is not helped by the cache */
	rq = req("jack", "pw2", "/", &REMOTE, 0);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_SLOW);
	auth_job_destroy(r.job, &f.as, 0);
	fx_fini(&f);
}

Test(auth, reload_with_a_new_password_refuses_the_old_one)
{
	const char *specs[] = { "jack:old" };
	const char *specs2[] = { "jack:new" };
	struct fx f;
	struct users_table *st2;
	struct auth_settings s = { 0 };
	struct auth_db *db2;
	struct auth_result r;
	struct auth_request rq = req("jack", "old", "/", &REMOTE, 0);
	bool slow;

	fx_init(&f, specs, 1, NULL);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK);
	auth_identity_destroy(r.identity);
	st2 = static_users(specs2, 1);
	s.static_users = st2;
	db2 = db_with(&s);
	cr_assert_gt(auth_db_generation(db2), auth_db_generation(f.db));
	/* the shard swaps to the new db; the old cached (jack, old) no longer matches */
	auth_connect(db2, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_SLOW);
	auth_job_run(r.job);
	auth_job_finish(r.job, &f.as, 0, &r);
	cr_assert_eq(r.status, AUTH_DENIED);
	rq = req("jack", "new", "/", &REMOTE, 0);
	cr_assert_eq(login(db2, &f.as, &rq, &r, &slow), AUTH_OK);
	auth_identity_destroy(r.identity);
	auth_db_unref(db2);
	users_table_destroy(st2);
	fx_fini(&f);
}

/* The job owns a reference: the shard may swap and drop the db while it runs. */
Test(auth, a_job_keeps_its_db_alive)
{
	const char *specs[] = { "jack:pw" };
	struct users_table *st = static_users(specs, 1);
	struct auth_settings s = { .static_users = st };
	struct auth_db *db = db_with(&s);
	struct auth_shard as;
	struct auth_result r;
	struct auth_request rq = req("jack", "pw", "/", &REMOTE, 0);

	auth_shard_init(&as);
	auth_connect(db, &as, &rq, &r);
	cr_assert_eq(r.status, AUTH_SLOW);
	auth_job_set_cookie(r.job, 42);
	cr_assert_eq(auth_job_cookie(r.job), 42);
	auth_db_unref(db);	/* the shard's reference, gone */
	auth_job_run(r.job);
	auth_job_finish(r.job, &as, 0, &r);
	cr_assert_eq(r.status, AUTH_OK);
	auth_identity_destroy(r.identity);
	auth_shard_fini(&as);
	users_table_destroy(st);
}

/* ---- rate limiting ---- */

Test(auth, repeated_failures_are_delayed_then_blocked_but_known_credentials_pass)
{
	const char *specs[] = { "jack:pw" };
	struct fx f;
	struct auth_result r;
	struct auth_request good = req("jack", "pw", "/", &REMOTE, 0);
	struct auth_request bad = req("jack", "nope", "/", &REMOTE, 0);
	uint32_t last = 0;
	bool slow;

	fx_init(&f, specs, 1, NULL);
	cr_assert_eq(login(f.db, &f.as, &good, &r, &slow), AUTH_OK);
	auth_identity_destroy(r.identity);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(login(f.db, &f.as, &bad, &r, &slow), AUTH_DENIED);
		cr_assert(slow, "failure %d", i + 1);
		cr_assert_geq(r.delay_ms, last, "delays never shrink");
		last = r.delay_ms;
	}
	cr_assert_gt(last, 0);
	/* blocked: no slow check, the longest delay */
	auth_connect(f.db, &f.as, &bad, &r);
	cr_assert_eq(r.status, AUTH_DENIED);
	cr_assert_str_eq(r.log_reason, "address blocked after repeated failures");
	cr_assert_eq(r.delay_ms, 10000);
	/* a credential this shard verified before still works from there */
	auth_connect(f.db, &f.as, &good, &r);
	cr_assert_eq(r.status, AUTH_OK);
	auth_identity_destroy(r.identity);
	/* another address is not affected */
	bad.peer = (const struct sockaddr *)&LOOPBACK;
	auth_connect(f.db, &f.as, &bad, &r);
	cr_assert_eq(r.status, AUTH_SLOW);
	auth_job_destroy(r.job, &f.as, 0);
	fx_fini(&f);
}

/* A burst of real logins from one address (NAT, a load test) waits, it is not refused. */
Test(auth, a_busy_address_is_asked_to_retry_not_refused)
{
	const char *specs[] = { "u0:pw", "u1:pw", "u2:pw", "u3:pw", "u4:pw", "u5:pw", "u6:pw",
				"u7:pw", "u8:pw" };
	struct fx f;
	struct auth_result r;
	struct auth_job *jobs[8];
	char name[4];
	struct auth_request rq = req("u0", "pw", "/", &REMOTE, 0);

	fx_init(&f, specs, 9, NULL);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		rq.login = name;
		auth_connect(f.db, &f.as, &rq, &r);
		cr_assert_eq(r.status, AUTH_SLOW, "login %d", i);
		jobs[i] = r.job;
	}
	rq.login = "u8";
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_RETRY);
	cr_assert_gt(r.delay_ms, 0);
	cr_assert_null(r.job);
	cr_assert_null(r.identity);
	cr_assert_eq(f.as.logins_failed, 0, "waiting is not failing");
	cr_assert_eq(f.as.check_waits, 1);
	cr_assert_eq(f.as.rl.pending_max, 8);
	/* one check comes back: the next attempt gets its turn */
	auth_job_run(jobs[0]);
	auth_job_finish(jobs[0], &f.as, 0, &r);
	cr_assert_eq(r.status, AUTH_OK);
	auth_identity_destroy(r.identity);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_SLOW, "u8's turn");
	jobs[0] = r.job;
	rq.login = "u0";
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_OK, "u0 answered from the cache");
	auth_identity_destroy(r.identity);
	for (int i = 0; i < 8; i++)
		auth_job_destroy(jobs[i], &f.as, 0);
	fx_fini(&f);
}

/* A reconnect storm of one login pays argon2id once per shard: while its check runs, the
 * same credentials wait for that answer; other credentials are not held up. */
Test(auth, the_same_login_in_flight_is_checked_once)
{
	const char *specs[] = { "jack:pw" };
	struct fx f;
	struct auth_result r;
	struct auth_job *job;
	struct auth_request rq = req("jack", "pw", "/", &REMOTE, 0);
	struct auth_request other = req("jack", "wrong", "/", &LOOPBACK, 0);

	fx_init(&f, specs, 1, NULL);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_SLOW);
	job = r.job;
	rq.peer = (const struct sockaddr *)&LOOPBACK;	/* another address: not the rate limit */
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_RETRY, "the same credentials wait for the check in flight");
	cr_assert_null(r.job);
	cr_assert_eq(f.as.check_waits, 0, "waiting for one's own answer is not the address limit");
	auth_connect(f.db, &f.as, &other, &r);
	cr_assert_eq(r.status, AUTH_SLOW, "a different password is checked on its own");
	auth_job_destroy(r.job, &f.as, 0);
	auth_job_run(job);
	auth_job_finish(job, &f.as, 0, &r);
	cr_assert_eq(r.status, AUTH_OK);
	auth_identity_destroy(r.identity);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_OK, "the waiter finds the answer in the cache");
	auth_identity_destroy(r.identity);
	cr_assert_eq(f.as.slow_checks, 2);
	cr_assert_eq(f.as.ninflight, 0);
	fx_fini(&f);
}

Test(auth, destroying_a_job_settles_the_in_flight_count)
{
	const char *specs[] = { "jack:pw" };
	struct fx f;
	struct auth_result r;
	struct auth_request rq = req("jack", "x", "/", &REMOTE, 0);

	fx_init(&f, specs, 1, NULL);
	for (int i = 0; i < 100; i++) {
		auth_connect(f.db, &f.as, &rq, &r);
		cr_assert_eq(r.status, AUTH_SLOW, "attempt %d", i);
		auth_job_destroy(r.job, &f.as, 0);	/* its connection closed */
	}
	fx_fini(&f);
}

/* ---- virtual hosts ---- */

Test(auth, unknown_or_forbidden_vhost_is_refused_after_login_without_delay)
{
	const char *hash_line_fmt = "prodonly:%s::prod\n";
	char hash[USERS_HASH_MAX + 1];
	char text[512];
	char *users;
	struct fx f;
	struct auth_settings s = { .vhosts = "/,prod" };
	struct auth_result r;
	struct auth_request rq;
	bool slow;

	cr_assert_eq(users_hash_password("pw", 2, USERS_COST_MIN, hash), 0);
	snprintf(text, sizeof(text), hash_line_fmt, hash);
	users = temp_file(text);
	s.users_file = users;
	fx_init(&f, NULL, 0, &s);
	cr_assert(auth_db_has_vhost(f.db, "prod", 4));
	cr_assert_str_eq(auth_db_vhosts(f.db), "/,prod");
	rq = req("prodonly", "pw", "prod", &REMOTE, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK, "%s", r.detail);
	cr_assert_str_eq(r.identity->vhost, "prod");
	auth_identity_destroy(r.identity);
	rq = req("prodonly", "pw", NULL, &REMOTE, 0);	/* no host header: "/" */
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	cr_assert_eq(r.delay_ms, 0);
	cr_assert(strstr(r.detail, "Virtual host '/'"), "%s", r.detail);
	rq = req("guest", "guest", "staging", &LOOPBACK, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	cr_assert(strstr(r.detail, "'staging'"), "%s", r.detail);
	rq = req("guest", "guest", "a\nb", &LOOPBACK, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	cr_assert_null(strchr(r.detail, '\n'));
	cr_assert_eq(f.as.logins_failed, 0, "vhost refusals are not password failures");
	fx_fini(&f);
	drop_file(users);
}

/* ---- users file and precedence ---- */

Test(auth, users_file_replaces_the_default_user_and_cli_replaces_the_file)
{
	const char *specs[] = { "ops:cli-pw:administrator" };
	char h1[USERS_HASH_MAX + 1];
	char h2[USERS_HASH_MAX + 1];
	char text[512];
	char *users;
	struct fx f;
	struct auth_settings s = { 0 };
	struct auth_result r;
	struct auth_request rq;
	bool slow;

	cr_assert_eq(users_hash_password("file-guest", 10, USERS_COST_MIN, h1), 0);
	cr_assert_eq(users_hash_password("file-ops", 8, USERS_COST_MIN, h2), 0);
	snprintf(text, sizeof(text), "guest:%s\nops:%s\n", h1, h2);
	users = temp_file(text);
	s.users_file = users;
	fx_init(&f, specs, 1, &s);
	rq = req("guest", "guest", "/", &LOOPBACK, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	rq = req("guest", "file-guest", "/", &REMOTE, 0);	/* no longer loopback-only */
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK);
	cr_assert_eq(r.identity->tag_bits, 0);
	auth_identity_destroy(r.identity);
	rq = req("ops", "file-ops", "/", &REMOTE, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	rq = req("ops", "cli-pw", "/", &REMOTE, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK);
	auth_identity_destroy(r.identity);
	fx_fini(&f);
	drop_file(users);
}

Test(auth, static_user_specs_are_checked)
{
	struct users_table *t = NULL;
	char err[256];
	const char *no_colon[] = { "jack" };
	const char *twice[] = { "jack:a", "jack:b" };
	const char *empty[] = { "jack:" };
	const char *bad_tag[] = { "jack:pw:Admin" };
	const char *bad_name[] = { "ja/ck:pw" };

	cr_assert_neq(auth_static_users_create(no_colon, 1, NULL, NULL, false, USERS_COST_MIN, &t,
					       err, sizeof(err)), 0);
	cr_assert_neq(auth_static_users_create(twice, 2, NULL, NULL, false, USERS_COST_MIN, &t, err,
					       sizeof(err)), 0);
	cr_assert(strstr(err, "twice"), "%s", err);
	cr_assert_neq(auth_static_users_create(empty, 1, NULL, NULL, false, USERS_COST_MIN, &t, err,
					       sizeof(err)), 0);
	cr_assert_neq(auth_static_users_create(bad_tag, 1, NULL, NULL, false, USERS_COST_MIN, &t,
					       err, sizeof(err)), 0);
	cr_assert_neq(auth_static_users_create(bad_name, 1, NULL, NULL, false, USERS_COST_MIN, &t,
					       err, sizeof(err)), 0);
	cr_assert_null(strstr(err, "pw"), "the password must not appear: %s", err);
	/* --user may replace the default user */
	cr_assert_eq(auth_static_users_create((const char *[]){ "guest:other" }, 1, "guest",
					      "guest", true, USERS_COST_MIN, &t, err, sizeof(err)), 0);
	cr_assert_not(users_table_find(t, "guest", 5)->loopback_only);
	users_table_destroy(t);
	cr_assert_eq(auth_static_users_create(NULL, 0, "", NULL, true, USERS_COST_MIN, &t, err,
					      sizeof(err)), 0);
	cr_assert_eq(users_table_count(t), 0);
	users_table_destroy(t);
}

Test(auth, db_errors_name_the_file_and_line)
{
	struct auth_settings s = { 0 };
	struct auth_db *db = NULL;
	char err[256];
	char *bad_users = temp_file("# users\njack:not-a-hash\n");
	char *bad_rules = temp_file("[vhost /]\nallow all * #\nallow\n");
	char *short_secret = temp_file("too short\n");

	s.users_file = "/nonexistent/herald-users";
	cr_assert_eq(auth_db_create(&s, &db, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/herald-users"), "%s", err);
	s.users_file = bad_users;
	cr_assert_eq(auth_db_create(&s, &db, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "line 2"), "%s", err);
	s.users_file = NULL;
	s.rules_file = bad_rules;
	cr_assert_eq(auth_db_create(&s, &db, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "line 3"), "%s", err);
	s.rules_file = NULL;
	s.vhosts = "/,a b";
	cr_assert_eq(auth_db_create(&s, &db, err, sizeof(err)), -EINVAL);
	s.vhosts = "*";
	cr_assert_eq(auth_db_create(&s, &db, err, sizeof(err)), -EINVAL);
	s.vhosts = NULL;
	s.jwt_hs256_secret_file = short_secret;
	cr_assert_eq(auth_db_create(&s, &db, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "32 bytes"), "%s", err);
	s.jwt_hs256_secret_file = NULL;
	s.jwt_rs256_key_file = "/nonexistent/key.pem";
	cr_assert_eq(auth_db_create(&s, &db, err, sizeof(err)), -ENOENT);
	cr_assert_null(db);
	drop_file(bad_users);
	drop_file(bad_rules);
	drop_file(short_secret);
}

/* ---- JWT logins ---- */

Test(auth, jwt_login_gives_an_identity_that_expires)
{
	struct fx f;
	struct auth_settings s = { .jwt_hs256_secret = TEST_SECRET, .jwt_leeway_s = 5 };
	struct auth_result r;
	char *tok = th_hs256("{\"sub\":\"jack\",\"exp\":1700000060,\"herald_tags\":[\"service\"]}");
	struct auth_request rq = req(NULL, tok, "/", &REMOTE, 0);
	bool slow;

	fx_init(&f, NULL, 0, &s);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK, "%s", r.detail);
	cr_assert_not(slow, "tokens are verified on the shard");
	cr_assert_str_eq(r.identity->user, "jack");
	cr_assert_eq(r.identity->method, AUTH_METHOD_JWT);
	cr_assert_eq(r.identity->tag_bits, USERS_TAG_SERVICE);
	cr_assert_eq(auth_identity_ms_left(r.identity, TEST_NOW * 1000), 65000);
	cr_assert_eq(auth_identity_ms_left(r.identity, TEST_NOW * 1000 + 99000), 0);
	auth_identity_destroy(r.identity);
	/* login may repeat the sub, not differ from it */
	rq.login = "jack";
	rq.login_len = 4;
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK);
	auth_identity_destroy(r.identity);
	rq.login = "rose";
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	cr_assert(strstr(r.detail, "sub"), "%s", r.detail);
	free(tok);
	fx_fini(&f);
}

Test(auth, jwt_refusals_are_counted_and_explained)
{
	struct fx f;
	struct auth_settings s = { .jwt_hs256_secret = TEST_SECRET };
	struct auth_result r;
	char *expired = th_hs256("{\"sub\":\"jack\",\"exp\":1699999000}");
	char *none = th_token_raw("{\"alg\":\"none\"}", "{\"sub\":\"jack\",\"exp\":1800000000}",
				  NULL, NULL, "");
	struct auth_request rq = req(NULL, expired, "/", &REMOTE, 0);
	bool slow;

	fx_init(&f, NULL, 0, &s);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	cr_assert_str_eq(r.detail, "Login failed: token expired");
	rq = req(NULL, none, "/", &REMOTE, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	cr_assert_str_eq(r.detail, "Login failed: token alg none refused");
	cr_assert_eq(f.as.logins_failed, 2);
	free(expired);
	free(none);
	fx_fini(&f);
}

Test(auth, jwt_vhosts_claim_limits_the_vhost)
{
	struct fx f;
	struct auth_settings s = { .vhosts = "/,prod", .jwt_hs256_secret = TEST_SECRET };
	struct auth_result r;
	char *plain = th_hs256("{\"sub\":\"jack\",\"exp\":1800000000}");
	char *prod = th_hs256("{\"sub\":\"jack\",\"exp\":1800000000,\"herald_vhosts\":[\"prod\"]}");
	char *any = th_hs256("{\"sub\":\"jack\",\"exp\":1800000000,\"herald_vhosts\":[\"*\"]}");
	struct auth_request rq = req(NULL, plain, "prod", &REMOTE, 0);
	bool slow;

	fx_init(&f, NULL, 0, &s);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	rq = req(NULL, prod, "prod", &REMOTE, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK);
	auth_identity_destroy(r.identity);
	rq = req(NULL, prod, "/", &REMOTE, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	rq = req(NULL, any, "prod", &REMOTE, 0);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK);
	auth_identity_destroy(r.identity);
	rq = req(NULL, any, "dev", &REMOTE, 0);	/* not configured */
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	free(plain);
	free(prod);
	free(any);
	fx_fini(&f);
}

Test(auth, jwt_keys_load_from_files)
{
	EVP_PKEY *rsa = th_rsa_key(2048);
	EVP_PKEY *ec = th_ec_key("P-256");
	char *rsa_pem = th_pubkey_pem(rsa);
	char *ec_pem = th_pubkey_pem(ec);
	char *rsa_file = temp_file(rsa_pem);
	char *ec_file = temp_file(ec_pem);
	char *secret_file = temp_file(TEST_SECRET "\n");
	struct fx f;
	struct auth_settings s = { .jwt_hs256_secret_file = secret_file,
				   .jwt_rs256_key_file = rsa_file, .jwt_es256_key_file = ec_file };
	const char *claims = "{\"sub\":\"jack\",\"exp\":1800000000}";
	char *toks[3] = { th_hs256(claims), th_rs256(rsa, claims), th_es256(ec, claims) };
	struct auth_result r;
	bool slow;

	fx_init(&f, NULL, 0, &s);
	for (int i = 0; i < 3; i++) {
		struct auth_request rq = req("jack", toks[i], "/", &REMOTE, 0);

		cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK, "token %d: %s", i, r.detail);
		auth_identity_destroy(r.identity);
		free(toks[i]);
	}
	fx_fini(&f);
	drop_file(rsa_file);
	drop_file(ec_file);
	drop_file(secret_file);
	free(rsa_pem);
	free(ec_pem);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
}

/* Without a JWT key, a token-shaped passcode is just a (wrong) password. */
Test(auth, tokens_are_passwords_when_no_key_is_configured)
{
	struct fx f;
	struct auth_result r;
	char *tok = th_hs256("{\"sub\":\"guest\",\"exp\":1800000000}");
	struct auth_request rq = req("guest", tok, "/", &LOOPBACK, 0);
	bool slow;

	fx_init(&f, NULL, 0, NULL);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	cr_assert(slow);
	free(tok);
	fx_fini(&f);
}

/* ---- authorization ---- */

static struct auth_identity *password_identity(struct fx *f, const char *user, const char *pw)
{
	struct auth_result r;
	struct auth_request rq = req(user, pw, "/", &REMOTE, 0);
	bool slow;

	cr_assert_eq(login(f->db, &f->as, &rq, &r, &slow), AUTH_OK, "%s: %s", user, r.detail);
	return r.identity;
}

static bool may(const struct auth_db *db, const struct auth_identity *id, enum acl_action a,
		const char *dest)
{
	struct auth_verdict v;
	bool ok = auth_authorize(db, id, a, dest, strlen(dest), &v);

	cr_assert_eq(ok, v.allowed);
	cr_assert_not_null(v.why);
	return ok;
}

/* Issue 5: --user jack:pw reads /queue/jack and is refused /queue/rose; a service sends to
 * both; an administrator does anything. */
Test(auth, default_rules_from_issue_5)
{
	const char *specs[] = { "jack:pw", "svc:pw:service", "root:pw:administrator" };
	struct fx f;
	struct auth_identity *jack;
	struct auth_identity *svc;
	struct auth_identity *root;

	fx_init(&f, specs, 3, NULL);
	jack = password_identity(&f, "jack", "pw");
	svc = password_identity(&f, "svc", "pw");
	root = password_identity(&f, "root", "pw");
	cr_assert(may(f.db, jack, ACL_SUBSCRIBE, "/queue/jack"));
	cr_assert(may(f.db, jack, ACL_SEND, "/queue/jack"));
	cr_assert_not(may(f.db, jack, ACL_SUBSCRIBE, "/queue/rose"));
	cr_assert_not(may(f.db, jack, ACL_SEND, "/queue/rose"));
	cr_assert(may(f.db, jack, ACL_SUBSCRIBE, "/topic/news.uk"));
	cr_assert_not(may(f.db, jack, ACL_SEND, "/topic/news.uk"));
	cr_assert(may(f.db, svc, ACL_SEND, "/queue/jack"));
	cr_assert(may(f.db, svc, ACL_SEND, "/queue/rose"));
	cr_assert_not(may(f.db, svc, ACL_SUBSCRIBE, "/queue/rose"));
	cr_assert(may(f.db, root, ACL_SUBSCRIBE, "/queue/rose"));
	cr_assert(may(f.db, root, ACL_SEND, "/anything"));
	auth_identity_destroy(jack);
	auth_identity_destroy(svc);
	auth_identity_destroy(root);
	fx_fini(&f);
}

Test(auth, denial_text_names_user_destination_vhost_and_reason)
{
	const char *specs[] = { "jack:pw" };
	struct fx f;
	struct auth_identity *jack;
	struct auth_verdict v;
	char msg[512];
	char dest[400];

	fx_init(&f, specs, 1, NULL);
	jack = password_identity(&f, "jack", "pw");
	cr_assert_not(auth_authorize(f.db, jack, ACL_SUBSCRIBE, "/queue/rose", 11, &v));
	auth_verdict_format(&v, jack, ACL_SUBSCRIBE, "/queue/rose", 11, msg, sizeof(msg));
	cr_assert_str_eq(msg, "user 'jack' may not subscribe to '/queue/rose' in virtual host '/' "
			      "(no rule allows it)");
	/* control characters never reach a header; long names are cut */
	memset(dest, 'x', sizeof(dest));
	memcpy(dest, "/queue/a\nb\r", 11);
	auth_authorize(f.db, jack, ACL_SEND, dest, sizeof(dest), &v);
	auth_verdict_format(&v, jack, ACL_SEND, dest, sizeof(dest), msg, sizeof(msg));
	cr_assert_null(strchr(msg, '\n'));
	cr_assert_null(strchr(msg, '\r'));
	cr_assert(strstr(msg, "/queue/a?b?xxx"), "%s", msg);
	cr_assert(strstr(msg, "xxx...' in virtual host"), "%s", msg);
	cr_assert_eq(auth_verdict_format(&v, jack, ACL_SEND, dest, sizeof(dest), msg, 10), 9);
	auth_identity_destroy(jack);
	fx_fini(&f);
}

Test(auth, rules_file_with_user_template)
{
	const char *specs[] = { "jack:pw", "rose:pw:auditor" };
	char *rules = temp_file("[vhost /]\n"
				"allow all       *           /queue/{user}.#\n"
				"allow subscribe tag:auditor /queue/#\n");
	struct fx f;
	struct auth_settings s = { .rules_file = rules };
	struct auth_identity *jack;
	struct auth_identity *rose;
	struct auth_verdict v;

	fx_init(&f, specs, 2, &s);
	jack = password_identity(&f, "jack", "pw");
	rose = password_identity(&f, "rose", "pw");
	cr_assert(may(f.db, jack, ACL_SEND, "/queue/jack.inbox"));
	cr_assert_not(may(f.db, jack, ACL_SUBSCRIBE, "/queue/rose"));
	cr_assert_not(may(f.db, jack, ACL_SUBSCRIBE, "/topic/x"), "no defaults once rules exist");
	cr_assert(may(f.db, rose, ACL_SUBSCRIBE, "/queue/jack"));
	cr_assert_not(may(f.db, rose, ACL_SEND, "/queue/jack"));
	auth_authorize(f.db, rose, ACL_SUBSCRIBE, "/queue/jack", 11, &v);
	cr_assert_eq(v.rule_line, 3);
	auth_identity_destroy(jack);
	auth_identity_destroy(rose);
	fx_fini(&f);
	drop_file(rules);
}

/* A token's herald_sub/herald_send replace the rules for that action. */
Test(auth, token_scopes_replace_the_rules)
{
	struct fx f;
	struct auth_settings s = { .jwt_hs256_secret = TEST_SECRET };
	struct auth_result r;
	char *tok = th_hs256("{\"sub\":\"jack\",\"exp\":1800000000,"
			     "\"herald_sub\":[\"/queue/{user}\",\"/topic/room.42\"]}");
	struct auth_request rq = req(NULL, tok, "/", &REMOTE, 0);
	struct auth_verdict v;
	bool slow;

	fx_init(&f, NULL, 0, &s);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK);
	cr_assert(may(f.db, r.identity, ACL_SUBSCRIBE, "/queue/jack"));
	cr_assert(may(f.db, r.identity, ACL_SUBSCRIBE, "/topic/room.42"));
	cr_assert_not(may(f.db, r.identity, ACL_SUBSCRIBE, "/topic/room.43"));
	auth_authorize(f.db, r.identity, ACL_SUBSCRIBE, "/topic/#", 8, &v);
	cr_assert_str_eq(v.why, "not in the token's herald_sub claim");
	/* no herald_send: the rules (defaults) decide sends */
	cr_assert(may(f.db, r.identity, ACL_SEND, "/queue/jack"));
	cr_assert_not(may(f.db, r.identity, ACL_SEND, "/queue/rose"));
	auth_identity_destroy(r.identity);
	free(tok);
	fx_fini(&f);
}

/* ---- client-certificate login (RabbitMQ's ssl_cert_login) ---- */

static struct auth_request cert_req(const char *cn, const char *login, const char *pass,
				    const struct sockaddr_in *peer)
{
	struct auth_request rq = req(login, pass, "/", peer, 0);

	rq.cert_name = cn;
	return rq;
}

Test(auth, certificate_name_logs_in_an_existing_user_without_password)
{
	const char *specs[] = { "jack:pw:service" };
	struct fx f;
	struct auth_result r;
	struct auth_request rq = cert_req("jack", NULL, NULL, &REMOTE);

	fx_init(&f, specs, 1, NULL);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_OK, "%s", r.detail);	/* at once: no password to check */
	cr_assert_str_eq(r.identity->user, "jack");
	cr_assert_eq(r.identity->method, AUTH_METHOD_CERT);
	cr_assert_eq(r.identity->tag_bits, USERS_TAG_SERVICE);
	auth_identity_destroy(r.identity);
	fx_fini(&f);
}

Test(auth, certificate_naming_no_user_is_refused_and_counted)
{
	struct fx f;
	struct auth_result r;
	struct auth_request rq = cert_req("mallory", NULL, NULL, &REMOTE);

	fx_init(&f, NULL, 0, NULL);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_DENIED);
	cr_assert_eq(f.as.logins_failed, 1);
	rq = cert_req("bad name\n", NULL, NULL, &REMOTE);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_DENIED);
	fx_fini(&f);
}

Test(auth, certificate_login_keeps_loopback_only_users_on_loopback)
{
	struct fx f;
	struct auth_result r;
	struct auth_request rq = cert_req("guest", NULL, NULL, &REMOTE);

	fx_init(&f, NULL, 0, NULL);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_DENIED);
	rq = cert_req("guest", NULL, NULL, &LOOPBACK);
	auth_connect(f.db, &f.as, &rq, &r);
	cr_assert_eq(r.status, AUTH_OK, "%s", r.detail);
	auth_identity_destroy(r.identity);
	fx_fini(&f);
}

Test(auth, a_login_header_means_a_password_login_even_with_a_certificate)
{
	const char *specs[] = { "jack:pw" };
	struct fx f;
	struct auth_result r;
	struct auth_request rq = cert_req("jack", "jack", "wrong", &REMOTE);
	bool slow;

	fx_init(&f, specs, 1, NULL);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_DENIED);
	rq = cert_req("jack", "jack", "pw", &REMOTE);
	cr_assert_eq(login(f.db, &f.as, &rq, &r, &slow), AUTH_OK, "%s", r.detail);
	cr_assert_eq(r.identity->method, AUTH_METHOD_PASSWORD);
	auth_identity_destroy(r.identity);
	fx_fini(&f);
}
