/*
 * bench/bench_tls.c - TLS for herald-bench connections (see bench_tls.h). OpenSSL on the
 * socket itself: the load tool has no io_uring loop to keep free, and a blocking handshake
 * at set-up costs nothing that is measured.
 */
#include "bench/bench_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>

static SSL_CTX *client_ctx;

int bench_tls_configure(const char *ca_file)
{
	client_ctx = SSL_CTX_new(TLS_client_method());
	if (!client_ctx)
		return -1;
	SSL_CTX_set_min_proto_version(client_ctx, TLS1_2_VERSION);
	/* the out buffer may move between a write that must wait and its retry */
	SSL_CTX_set_mode(client_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (!ca_file || !ca_file[0])
		return 0;
	if (SSL_CTX_load_verify_locations(client_ctx, ca_file, NULL) != 1) {
		fprintf(stderr, "herald-bench: cannot load --tls-ca %s\n", ca_file);
		return -1;
	}
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
	return 0;
}

static void set_timeouts(int fd, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

struct ssl_st *bench_tls_handshake(int fd, unsigned timeout_ms, const char **why)
{
	int flags = fcntl(fd, F_GETFL);
	SSL *s = client_ctx ? SSL_new(client_ctx) : NULL;
	int ok;

	if (!s || !SSL_set_fd(s, fd)) {
		*why = "cannot set up TLS";
		SSL_free(s);
		return NULL;
	}
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	set_timeouts(fd, timeout_ms);
	ok = SSL_connect(s) == 1;
	set_timeouts(fd, 0);
	fcntl(fd, F_SETFL, flags);
	if (!ok) {
		unsigned long e = ERR_get_error();

		*why = e ? ERR_reason_error_string(e) : "TLS handshake failed";
		ERR_clear_error();
		SSL_free(s);
		return NULL;
	}
	return s;
}

/* -1 with errno for what SSL_read/SSL_write's r means. */
static ssize_t tls_fail(SSL *s, int r)
{
	switch (SSL_get_error(s, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (!errno)
			return 0;	/* EOF without close_notify */
		return -1;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

ssize_t bench_tls_read(struct ssl_st *s, void *buf, size_t n)
{
	size_t got = 0;
	int r = SSL_read_ex(s, buf, n, &got);

	return r == 1 ? (ssize_t)got : tls_fail(s, r);
}

ssize_t bench_tls_write(struct ssl_st *s, const void *buf, size_t n)
{
	size_t put = 0;
	int r = SSL_write_ex(s, buf, n, &put);

	return r == 1 ? (ssize_t)put : tls_fail(s, r);
}

bool bench_tls_pending(struct ssl_st *s)
{
	return SSL_pending(s) > 0;
}

void bench_tls_free(struct ssl_st *s)
{
	SSL_free(s);
}
