/*
 * tools/ctl_http.h - the smallest HTTP/1.1 client heraldctl needs: one GET to a node's
 * admin endpoint over loopback or the admin network, with a deadline, with an
 * administrator's credentials when it was given some. Blocking; the CLI is single-threaded.
 */
#ifndef TOOLS_CTL_HTTP_H
#define TOOLS_CTL_HTTP_H

#include <stddef.h>

struct ctl_http_reply {
	int status;		/* HTTP status code */
	char *body;		/* hd_alloc'd, NUL-terminated; free with ctl_http_reply_free */
	size_t body_len;
};

/* GETs `path` from "host:port" within timeout_ms. Returns 0 with *out filled, or a
 * negative errno (-ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH for an unresolvable host,
 * -EPROTO for a reply that is not HTTP). err (may be NULL) gets a one-line reason. */
int ctl_http_get(const char *hostport, const char *path, int timeout_ms,
		 struct ctl_http_reply *out, char *err, size_t err_cap);

/* The same with another method (e.g. "POST", with no body). */
int ctl_http_request(const char *method, const char *hostport, const char *path, int timeout_ms,
		     struct ctl_http_reply *out, char *err, size_t err_cap);

void ctl_http_reply_free(struct ctl_http_reply *r);

/* Credentials every later request sends (HTTP Basic: an administrator user of the node,
 * docs/operations.md "Admin endpoint credentials"); NULL user: none. Copied. Returns 0, or
 * -EINVAL when the name holds ':' or the pair is too long. */
int ctl_http_set_credentials(const char *user, const char *password);

#endif
