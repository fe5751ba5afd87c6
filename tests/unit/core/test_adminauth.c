/*
 * tests/unit/core/test_adminauth.c - core/adminauth.c: admin endpoint logins are decided
 * off the asking thread (PENDING until the checker thread answers), then remembered; a
 * reload forgets them (docs/operations.md "Admin endpoint credentials").
 */
#include "core/adminauth.h"

#include "auth/auth.h"

#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

static struct adminauth *aa;
static struct users_table *users;

/* users "ops" (administrator) and "jack" (none), plus the loopback-only guest */
static struct auth_db *make_db(const char *ops_password)
{
	char ops[64];
	const char *specs[] = { ops, "jack:jackpw" };
	struct auth_settings s = { 0 };
	struct auth_db *db;
	char err[256];

	snprintf(ops, sizeof(ops), "ops:%s:administrator", ops_password);
	users_table_destroy(users);
	cr_assert_eq(auth_static_users_create(specs, 2, "guest", "guest", true, USERS_COST_MIN,
					      &users, err, sizeof(err)), 0, "%s", err);
	s.static_users = users;
	cr_assert_eq(auth_db_create(&s, &db, err, sizeof(err)), 0, "%s", err);
	return db;
}

static void set_users(const char *ops_password)
{
	struct auth_db *db = make_db(ops_password);

	adminauth_set_db(aa, db);
	auth_db_unref(db);
}

static void setup(void)
{
	cr_assert_eq(adminauth_create(&aa), 0);
	set_users("opspw");
}

static void teardown(void)
{
	adminauth_destroy(aa);
	users_table_destroy(users);
	users = NULL;
}

/* Asks until the verdict is not PENDING (bounded: 10 s), as the cluster thread does. */
static enum adminauth_verdict decide(const char *user, const char *pass, bool loopback,
				     int *pending)
{
	struct timespec pause = { 0, 2 * 1000 * 1000 };

	*pending = 0;
	for (int i = 0; i < 5000; i++) {
		enum adminauth_verdict v = adminauth_check(aa, user, strlen(user), pass,
							   strlen(pass), loopback,
							   (uint64_t)i * 2);

		if (v != ADMINAUTH_PENDING)
			return v;
		(*pending)++;
		nanosleep(&pause, NULL);
	}
	cr_assert_fail("no verdict for %s within 10 s", user);
	return ADMINAUTH_PENDING;
}

TestSuite(adminauth, .init = setup, .fini = teardown);

Test(adminauth, a_first_login_is_pending_then_remembered)
{
	int pending;

	cr_assert_eq(decide("ops", "opspw", false, &pending), ADMINAUTH_OK);
	cr_assert_gt(pending, 0, "checked on the asking thread");
	cr_assert_eq(decide("ops", "opspw", false, &pending), ADMINAUTH_OK);
	cr_assert_eq(pending, 0, "the second time it is remembered");
}

Test(adminauth, verdicts)
{
	int pending;

	cr_assert_eq(decide("ops", "wrong", true, &pending), ADMINAUTH_DENIED);
	cr_assert_eq(decide("nobody", "opspw", true, &pending), ADMINAUTH_DENIED);
	cr_assert_eq(decide("jack", "jackpw", true, &pending), ADMINAUTH_FORBIDDEN);
	cr_assert_eq(decide("", "x", true, &pending), ADMINAUTH_DENIED);
	cr_assert_eq(decide("ops", "", true, &pending), ADMINAUTH_DENIED);
}

Test(adminauth, the_default_user_counts_from_loopback_only)
{
	int pending;

	cr_assert_eq(decide("guest", "guest", true, &pending), ADMINAUTH_OK);
	cr_assert_eq(decide("guest", "guest", false, &pending), ADMINAUTH_DENIED);
	cr_assert_eq(pending, 0, "the same remembered check, judged by the address");
}

Test(adminauth, name_and_password_are_not_confused_at_their_boundary)
{
	int pending;

	cr_assert_eq(decide("ops", "opspw", true, &pending), ADMINAUTH_OK);
	cr_assert_eq(decide("op", "sopspw", true, &pending), ADMINAUTH_DENIED);
}

Test(adminauth, a_reload_forgets_remembered_logins)
{
	int pending;

	cr_assert_eq(decide("ops", "opspw", true, &pending), ADMINAUTH_OK);
	set_users("newpw");
	cr_assert_eq(decide("ops", "opspw", true, &pending), ADMINAUTH_DENIED);
	cr_assert_eq(decide("ops", "newpw", true, &pending), ADMINAUTH_OK);
}

Test(adminauth, too_many_logins_at_once_are_busy_not_blocking)
{
	char pass[32];
	enum adminauth_verdict v = ADMINAUTH_PENDING;
	int i;

	for (i = 0; i < ADMINAUTH_SLOTS * 4 && v != ADMINAUTH_BUSY; i++) {
		snprintf(pass, sizeof(pass), "guess-%d", i);
		v = adminauth_check(aa, "ops", 3, pass, strlen(pass), true, 0);
		cr_assert(v == ADMINAUTH_PENDING || v == ADMINAUTH_DENIED || v == ADMINAUTH_BUSY);
	}
	/* the checker may keep up with a cheap hash; with every slot queued it must say BUSY */
	cr_assert(v == ADMINAUTH_BUSY || i == ADMINAUTH_SLOTS * 4);
}
