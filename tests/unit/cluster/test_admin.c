/*
 * tests/unit/cluster/test_admin.c - cluster/admin.c's request-head helpers for credentials
 * (docs/operations.md "Admin endpoint credentials"): HTTP Basic decoding (RFC 7617), the
 * paths open to load balancers, the refusals, and cross-origin POSTs.
 */
#include "cluster/admin.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define HEAD(lines) "GET /api/queues HTTP/1.1\r\nHost: 127.0.0.1:15672\r\n" lines "\r\n"

static int creds(const char *req, char *user, char *pass)
{
	char buf[256];
	const char *u, *p;
	size_t ul, pl;
	int rc = admin_basic_credentials(req, strlen(req), buf, sizeof(buf), &u, &ul, &p, &pl);

	if (!rc) {
		memcpy(user, u, ul);
		user[ul] = '\0';
		memcpy(pass, p, pl);
		pass[pl] = '\0';
	}
	return rc;
}

Test(admin_login, decodes_basic_credentials)
{
	char u[64], p[64];

	/* "ops:op:s pw" - the password may hold ':' and spaces, the name may not hold ':' */
	cr_assert_eq(creds(HEAD("Authorization: Basic b3BzOm9wOnMgcHc=\r\n"), u, p), 0);
	cr_assert_str_eq(u, "ops");
	cr_assert_str_eq(p, "op:s pw");
}

Test(admin_login, header_name_and_scheme_are_case_insensitive)
{
	char u[64], p[64];

	cr_assert_eq(creds(HEAD("authorization:basic b3BzOnB3\r\n"), u, p), 0);
	cr_assert_str_eq(u, "ops");
	cr_assert_str_eq(p, "pw");
}

Test(admin_login, missing_or_malformed_credentials_are_refused)
{
	char u[64], p[64];

	cr_assert_eq(creds(HEAD(""), u, p), -ENOENT);
	cr_assert_eq(creds(HEAD("Authorization: Bearer abc\r\n"), u, p), -EINVAL);
	cr_assert_eq(creds(HEAD("Authorization: Basic !!!\r\n"), u, p), -EINVAL);
	cr_assert_eq(creds(HEAD("Authorization: Basic bm9jb2xvbg==\r\n"), u, p), -EINVAL);
	/* a header whose name only starts the same is another header */
	cr_assert_eq(creds(HEAD("Authorization-X: Basic b3BzOnB3\r\n"), u, p), -ENOENT);
}

Test(admin_login, credentials_that_do_not_fit_are_refused)
{
	static char req[4096];
	char small[8];
	const char *u, *p;
	size_t ul, pl;

	snprintf(req, sizeof(req), HEAD("Authorization: Basic b3BzOm9wOnMgcHc=\r\n"));
	cr_assert_eq(admin_basic_credentials(req, strlen(req), small, sizeof(small), &u, &ul, &p,
					     &pl), -EINVAL);
}

Test(admin_login, only_health_and_ready_are_open)
{
	static const char *const open[] = { "GET /health HTTP/1.1\r\n\r\n",
					    "GET /ready?x=1 HTTP/1.1\r\n\r\n" };
	static const char *const closed[] = { "GET /metrics HTTP/1.1\r\n\r\n",
					      "GET / HTTP/1.1\r\n\r\n",
					      "GET /healthz HTTP/1.1\r\n\r\n",
					      "POST /api/drain HTTP/1.1\r\n\r\n" };

	for (size_t i = 0; i < 2; i++)
		cr_assert(admin_path_is_open(open[i], strlen(open[i])), "%s", open[i]);
	for (size_t i = 0; i < 4; i++)
		cr_assert_not(admin_path_is_open(closed[i], strlen(closed[i])), "%s", closed[i]);
}

Test(admin_login, refusals_carry_their_status_and_the_basic_challenge)
{
	struct admin_buf out = { 0 };

	cr_assert_eq(admin_respond_refused(ADMIN_LOGIN_DENIED, &out), 401);
	cr_assert(strstr(out.ptr, "HTTP/1.1 401 ") == out.ptr);
	cr_assert(strstr(out.ptr, "\r\nWWW-Authenticate: Basic realm=\"herald admin\""));
	admin_buf_free(&out);
	cr_assert_eq(admin_respond_refused(ADMIN_LOGIN_FORBIDDEN, &out), 403);
	cr_assert_null(strstr(out.ptr, "WWW-Authenticate"));
	admin_buf_free(&out);
	cr_assert_eq(admin_respond_refused(ADMIN_LOGIN_BUSY, &out), 503);
	cr_assert(strstr(out.ptr, "\r\nRetry-After: 1\r\n"));
	admin_buf_free(&out);
}

/* The status admin_respond gives a POST /api/drain from a page of `origin` (no hooks given:
 * nothing is read from the membership table, and no drain would start). */
static int drain_from(const char *origin)
{
	char req[256];
	struct admin_buf out = { 0 };
	int code;

	snprintf(req, sizeof(req), "POST /api/drain HTTP/1.1\r\nHost: 10.0.0.1:15672\r\n"
		 "Origin: %s\r\n\r\n", origin);
	code = admin_respond(req, strlen(req), NULL, 0, "c", NULL, &out);
	admin_buf_free(&out);
	return code;
}

Test(admin_login, a_post_from_another_origin_is_refused)
{
	cr_assert_eq(drain_from("http://evil.example"), 403);
	cr_assert_eq(drain_from("http://10.0.0.1:15672.evil.example"), 403);
	cr_assert_eq(drain_from("null"), 403);
}

Test(admin_login, a_post_from_its_own_page_is_not_refused_as_cross_origin)
{
	/* no drain hook given: answered as an unknown POST, not refused */
	cr_assert_eq(drain_from("http://10.0.0.1:15672"), 405);
}
