/*
 * tools/ctl_http.c - one blocking HTTP GET with a deadline (see ctl_http.h). The admin
 * endpoint closes after each answer, so the body runs to EOF; Content-Length, when given,
 * is checked against it.
 */
#include "tools/ctl_http.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_time.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPLY_MAX (64u << 20)	/* bytes; a cluster of 100k members fits */
#define CRED_MAX 1100		/* bytes of "name:password" (63 + 1 + 1024, the server's limits) */

/* "Authorization: Basic <base64(name:password)>\r\n", or "" (ctl_http_set_credentials) */
static char auth_header[64 + sodium_base64_ENCODED_LEN(CRED_MAX, sodium_base64_VARIANT_ORIGINAL)];
static bool hinted;		/* the 401/403 hint is printed once per run */

int ctl_http_set_credentials(const char *user, const char *password)
{
	char pair[CRED_MAX + 1];
	int n;

	sodium_memzero(auth_header, sizeof(auth_header));
	if (!user)
		return 0;
	n = snprintf(pair, sizeof(pair), "%s:%s", user, password ? password : "");
	if (strchr(user, ':') || n < 0 || (size_t)n >= sizeof(pair))
		return -EINVAL;
	strcpy(auth_header, "Authorization: Basic ");
	sodium_bin2base64(auth_header + strlen(auth_header), sizeof(auth_header) - 64,
			  (const unsigned char *)pair, (size_t)n, sodium_base64_VARIANT_ORIGINAL);
	strcat(auth_header, "\r\n");
	sodium_memzero(pair, sizeof(pair));
	return 0;
}

/* Says once what a refusal of the admin endpoint means and how to pass credentials. */
static void hint_on_refusal(const char *hostport, int status)
{
	if (hinted || (status != 401 && status != 403))
		return;
	hinted = true;
	if (status == 403)
		fprintf(stderr, "heraldctl: %s: the user given is not an administrator (the users "
			"file's `administrator` tag)\n", hostport);
	else
		fprintf(stderr, "heraldctl: %s asks for an administrator's credentials%s: set "
			"HERALD_ADMIN_USER and HERALD_ADMIN_PASSWORD, or pass --user NAME (the "
			"password then comes from HERALD_ADMIN_PASSWORD or --password)\n", hostport,
			auth_header[0] ? " and refused these" : "");
}

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && cap) {
		va_start(ap, fmt);
		vsnprintf(err, cap, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int split(const char *hostport, char *host, size_t cap, char *port, size_t pcap)
{
	const char *colon = strrchr(hostport, ':');
	const char *h = hostport;
	size_t hlen;

	if (!colon || !colon[1] || strlen(colon + 1) >= pcap)
		return -EINVAL;
	hlen = (size_t)(colon - hostport);
	if (hlen >= 2 && h[0] == '[' && colon[-1] == ']') {
		h++;
		hlen -= 2;
	}
	if (!hlen || hlen >= cap)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

/* Waits for fd to become ready for `events` until deadline. Returns 0 or -ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
	for (;;) {
		uint64_t now = hd_now_ms();
		struct pollfd p = { .fd = fd, .events = events };
		int rc;

		if (now >= deadline_ms)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)(deadline_ms - now));
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_to(const struct addrinfo *ai, uint64_t deadline_ms)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	int rc;

	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
		rc = -errno;
		goto err_close;
	}
	rc = wait_fd(fd, POLLOUT, deadline_ms);
	if (rc)
		goto err_close;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
		rc = soerr ? -soerr : -errno;
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return rc;
}

static int send_all(int fd, const char *buf, size_t len, uint64_t deadline_ms)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int rc = wait_fd(fd, POLLOUT, deadline_ms);

			if (rc)
				return rc;
			continue;
		}
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all(int fd, char **out, size_t *out_len, uint64_t deadline_ms)
{
	size_t cap = 16384;
	size_t len = 0;
	char *buf = hd_alloc(cap);

	for (;;) {
		ssize_t n;
		int rc;

		if (len + 1 >= cap) {
			if (cap >= REPLY_MAX) {
				hd_free(buf);
				return -EMSGSIZE;
			}
			cap *= 2;
			buf = hd_realloc(buf, cap);
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			hd_free(buf);
			return rc;
		}
		rc = wait_fd(fd, POLLIN, deadline_ms);
		if (rc) {
			hd_free(buf);
			return rc;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

/* Splits a raw reply into status and body. Returns 0 or -EPROTO. */
static int parse_reply(char *raw, size_t len, struct ctl_http_reply *out)
{
	char *head_end = strstr(raw, "\r\n\r\n");
	char *cl;
	size_t body_off;

	if (strncmp(raw, "HTTP/1.", 7) || len < 12 || !head_end)
		return -EPROTO;
	out->status = atoi(raw + 9);
	*head_end = '\0';
	body_off = (size_t)(head_end - raw) + 4;
	cl = strcasestr(raw, "\r\nContent-Length:");
	if (cl && strtoull(cl + 17, NULL, 10) != len - body_off)
		return -EPROTO;	/* cut short */
	out->body_len = len - body_off;
	out->body = hd_alloc(out->body_len + 1);
	memcpy(out->body, raw + body_off, out->body_len);
	out->body[out->body_len] = '\0';
	return 0;
}

int ctl_http_get(const char *hostport, const char *path, int timeout_ms,
		 struct ctl_http_reply *out, char *err, size_t err_cap)
{
	return ctl_http_request("GET", hostport, path, timeout_ms, out, err, err_cap);
}

int ctl_http_request(const char *method, const char *hostport, const char *path, int timeout_ms,
		     struct ctl_http_reply *out, char *err, size_t err_cap)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	uint64_t deadline_ms = hd_now_ms() + (uint64_t)timeout_ms;
	char host[256];
	char port[8];
	char req[512 + sizeof(auth_header)];
	char *raw = NULL;
	size_t raw_len = 0;
	int fd = -ECONNREFUSED;
	int rc;

	memset(out, 0, sizeof(*out));
	if (split(hostport, host, sizeof(host), port, sizeof(port)))
		return fail(err, err_cap, -EINVAL, "%s is not host:port", hostport);
	if (getaddrinfo(host, port, &hints, &res))
		return fail(err, err_cap, -EHOSTUNREACH, "cannot resolve %s", host);
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
		fd = connect_to(ai, deadline_ms);
	freeaddrinfo(res);
	if (fd < 0)
		return fail(err, err_cap, fd, "cannot connect to %s: %s", hostport, strerror(-fd));
	snprintf(req, sizeof(req),
		 "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n%s"
		 "Content-Length: 0\r\nConnection: close\r\nUser-Agent: heraldctl\r\n\r\n",
		 method, path, hostport, auth_header);
	rc = send_all(fd, req, strlen(req), deadline_ms);
	sodium_memzero(req, sizeof(req));
	if (!rc)
		rc = recv_all(fd, &raw, &raw_len, deadline_ms);
	close(fd);
	if (rc)
		return fail(err, err_cap, rc, "no answer from %s: %s", hostport, strerror(-rc));
	rc = parse_reply(raw, raw_len, out);
	hd_free(raw);
	if (rc)
		return fail(err, err_cap, rc, "%s did not answer in HTTP", hostport);
	hint_on_refusal(hostport, out->status);
	return 0;
}

void ctl_http_reply_free(struct ctl_http_reply *r)
{
	hd_free(r->body);
	memset(r, 0, sizeof(*r));
}
