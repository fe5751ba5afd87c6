/*
 * tests/unit/net/test_tls.c - net/tls.c under a real loop (epoll backend, loopback): an
 * OpenSSL client in the same thread, driven in turns with the loop. What the user above
 * the loop must see: plaintext in, plaintext out (big queued output intact, its entries
 * released, the queue back at zero), refusals (plaintext to a TLS listener, a stalled
 * handshake) closing the connection, close_notify after the last queued bytes. And the
 * client side (net_loop_adopt_tls, as node links dial): a dialled connection handshakes
 * with a TLS listener on the same loop, both ends verifying the other against a CA, and
 * one that meets a plaintext peer is closed.
 */
#include "net/listen.h"
#include "net/loop.h"
#include "net/tls.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TURNS 4000	/* bound on every pumping loop */

struct fx {
	struct net_loop loop;
	struct net_tls_ctx *ctx;
	uint16_t port;
	struct net_conn *conn;		/* the server side, while open */
	char got[1 << 16];		/* plaintext the user received */
	size_t got_len;
	int closed;
	int drained;
	SSL_CTX *cctx;
	SSL *cli;
	int cfd;
	char cert_path[64];
	char key_path[64];
};

static void on_accept(void *ctx, struct net_conn *c)
{
	((struct fx *)ctx)->conn = c;
}

static size_t on_data(void *ctx, struct net_conn *c, const char *buf, size_t len)
{
	struct fx *f = ctx;

	(void)c;
	cr_assert_leq(f->got_len + len, sizeof(f->got));
	memcpy(f->got + f->got_len, buf, len);
	f->got_len += len;
	return len;
}

static void on_close(void *ctx, struct net_conn *c)
{
	struct fx *f = ctx;

	(void)c;
	f->closed++;
	f->conn = NULL;
}

static void on_drain(void *ctx, struct net_conn *c)
{
	(void)c;
	((struct fx *)ctx)->drained++;
}

static const struct net_callbacks cbs = {
	.on_accept = on_accept, .on_data = on_data, .on_close = on_close, .on_drain = on_drain,
};

/* A self-signed EC certificate for 127.0.0.1, as PEM files. */
static void make_cert(struct fx *f)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);
	FILE *out;

	cr_assert(pkey && x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1",
				   -1, -1, 0);
	X509_set_issuer_name(x, name);
	cr_assert(X509_sign(x, pkey, EVP_sha256()));
	snprintf(f->cert_path, sizeof(f->cert_path), "/tmp/herald-test-tls-%d.crt", getpid());
	snprintf(f->key_path, sizeof(f->key_path), "/tmp/herald-test-tls-%d.key", getpid());
	out = fopen(f->cert_path, "w");
	cr_assert(out && PEM_write_X509(out, x));
	fclose(out);
	out = fopen(f->key_path, "w");
	cr_assert(out && PEM_write_PrivateKey(out, pkey, NULL, NULL, 0, NULL, NULL));
	fclose(out);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

static void fx_init_on(struct fx *f, uint32_t handshake_ms, enum net_io io)
{
	struct net_loop_config lc = {
		.io = io, .ring_entries = 64, .buf_count = 64, .buf_size = 8192,
		.max_rx_partial = 1 << 20, .tls_handshake_ms = handshake_ms,
	};
	struct net_tls_config tc = { 0 };
	char err[256];
	int fd;

	memset(f, 0, sizeof(*f));
	make_cert(f);
	tc.cert_file = f->cert_path;
	tc.key_file = f->key_path;
	cr_assert_eq(net_tls_ctx_create(&tc, &f->ctx, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(net_loop_init(&f->loop, &lc, &cbs, f), 0);
	fd = net_listen_open("127.0.0.1", 0, 16, &f->port);
	cr_assert_geq(fd, 0);
	net_loop_set_tls_ctx(&f->loop, f->ctx);
	cr_assert_eq(net_loop_add_tls_listener(&f->loop, fd, 1), 0);
	f->cfd = -1;
}

static void fx_init(struct fx *f, uint32_t handshake_ms)
{
	fx_init_on(f, handshake_ms, NET_IO_EPOLL);
}

static void fx_fini(struct fx *f)
{
	SSL_free(f->cli);
	SSL_CTX_free(f->cctx);
	if (f->cfd >= 0)
		close(f->cfd);
	net_loop_fini(&f->loop);
	net_tls_ctx_unref(f->ctx);
	unlink(f->cert_path);
	unlink(f->key_path);
}

/* A plain TCP socket connected to 127.0.0.1:port (the listener's backlog takes it),
 * non-blocking. */
static int dial(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static int tcp_client(struct fx *f)
{
	return dial(f->port);
}

static void pump(struct net_loop *l)
{
	net_loop_flush(l);
	net_loop_run_once(l, 1);
}

static void turn(struct fx *f)
{
	pump(&f->loop);
}

static void tls_client(struct fx *f)
{
	int turns = 0;

	f->cfd = tcp_client(f);
	f->cctx = SSL_CTX_new(TLS_client_method());
	f->cli = SSL_new(f->cctx);
	SSL_set_fd(f->cli, f->cfd);
	SSL_set_connect_state(f->cli);
	while (SSL_do_handshake(f->cli) != 1) {
		cr_assert_lt(++turns, TURNS, "handshake did not finish");
		turn(f);
	}
	while (!f->conn) {
		cr_assert_lt(++turns, TURNS, "not accepted");
		turn(f);
	}
}

/* Reads what the client can until want bytes are in buf or the stream ended; returns the
 * count, or -1 at close_notify/EOF before that. */
static ssize_t client_read(struct fx *f, char *buf, size_t want, bool *ended)
{
	size_t have = 0;

	*ended = false;
	for (int turns = 0; have < want && turns < TURNS; turns++) {
		size_t n = 0;
		int r = SSL_read_ex(f->cli, buf + have, want - have, &n);

		if (r == 1) {
			have += n;
			continue;
		}
		r = SSL_get_error(f->cli, r);
		if (r != SSL_ERROR_WANT_READ) {
			*ended = true;
			ERR_clear_error();
			break;
		}
		turn(f);
	}
	return (ssize_t)have;
}

static void release_count(void *arg)
{
	(*(int *)arg)++;
}

static void big_output_on(enum net_io io)
{
	static char big[300000];	/* more than one send's encryption budget */
	static char back[4 + sizeof(big) + 400];
	struct fx f;
	int released = 0;
	size_t written;
	bool ended;

	fx_init_on(&f, 0, io);
	tls_client(&f);
	cr_assert(net_conn_is_tls(f.conn));
	cr_assert_null(net_conn_tls_peer_name(f.conn));	/* no CA: no client certificate */
	cr_assert_eq(SSL_write_ex(f.cli, "SEND\n\nhi\0", 9, &written), 1);
	for (int turns = 0; f.got_len < 9 && turns < TURNS; turns++)
		turn(&f);
	cr_assert_eq(f.got_len, 9);
	cr_assert_eq(memcmp(f.got, "SEND\n\nhi\0", 9), 0);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 23);
	/* a head with its tail apart (one message), then small copies */
	{
		struct net_out *o = net_conn_out_reserve(&f.loop, f.conn);

		memcpy(o->head, "HEAD", 4);
		o->head_len = 4;
		o->tail = big;
		o->tail_len = sizeof(big);
		o->release = release_count;
		o->release_arg = &released;
		net_conn_out_commit(&f.loop, f.conn, o);
	}
	for (int i = 0; i < 40; i++)
		net_conn_write_copy(&f.loop, f.conn, "0123456789", 10);
	cr_assert_eq(client_read(&f, back, 4 + sizeof(big) + 400, &ended),
		     (ssize_t)(4 + sizeof(big) + 400));
	cr_assert_eq(memcmp(back, "HEAD", 4), 0);
	cr_assert_eq(memcmp(back + 4, big, sizeof(big)), 0);
	cr_assert_eq(memcmp(back + 4 + sizeof(big), "0123456789", 10), 0);
	for (int turns = 0; f.conn->out_bytes && turns < TURNS; turns++)
		turn(&f);
	cr_assert_eq(released, 1, "the tail is released once it is encrypted");
	cr_assert_eq(f.conn->out_bytes, 0);
	cr_assert_geq(f.drained, 1);
	fx_fini(&f);
}

Test(net_tls, plaintext_goes_up_and_big_queued_output_comes_down_intact_on_epoll)
{
	big_output_on(NET_IO_EPOLL);
}

Test(net_tls, plaintext_goes_up_and_big_queued_output_comes_down_intact_on_io_uring)
{
	if (net_io_uring_probe())
		cr_skip_test("io_uring is not available here");
	big_output_on(NET_IO_URING);
}

Test(net_tls, a_graceful_close_sends_close_notify_after_the_queued_bytes)
{
	struct fx f;
	char buf[16];
	bool ended;

	fx_init(&f, 0);
	tls_client(&f);
	/* the server's side of the handshake ends with the client's first bytes */
	cr_assert_eq(SSL_write(f.cli, "x", 1), 1);
	for (int turns = 0; !f.got_len && turns < TURNS; turns++)
		turn(&f);
	net_conn_write_copy(&f.loop, f.conn, "bye", 3);
	net_conn_close_after_flush(&f.loop, f.conn);
	cr_assert_eq(f.closed, 1);
	cr_assert_eq(client_read(&f, buf, 3, &ended), 3);
	cr_assert_eq(memcmp(buf, "bye", 3), 0);
	client_read(&f, buf, 1, &ended);
	cr_assert(ended);
	cr_assert_eq(SSL_get_shutdown(f.cli) & SSL_RECEIVED_SHUTDOWN, SSL_RECEIVED_SHUTDOWN,
		     "close_notify, not a bare FIN");
	fx_fini(&f);
}

Test(net_tls, plaintext_to_a_tls_listener_closes_that_connection)
{
	static const char stomp[] = "CONNECT\naccept-version:1.2\n\n";
	struct fx f;
	char buf[256];
	ssize_t n = 1;

	fx_init(&f, 0);
	f.cfd = tcp_client(&f);
	cr_assert_eq(write(f.cfd, stomp, sizeof(stomp)), (ssize_t)sizeof(stomp));
	for (int turns = 0; !f.closed && turns < TURNS; turns++)
		turn(&f);
	cr_assert_eq(f.closed, 1);
	cr_assert_eq(f.got_len, 0, "nothing reached the user");
	for (int turns = 0; n != 0 && turns < TURNS; turns++) {
		turn(&f);
		n = read(f.cfd, buf, sizeof(buf));
		if (n > 0)
			cr_assert_neq(buf[0], 'E', "no plaintext ERROR: at most a TLS alert");
		if (n < 0 && errno != EAGAIN)
			break;	/* a reset is a close too */
	}
	fx_fini(&f);
}

Test(net_tls, a_handshake_that_stalls_is_cut_at_its_deadline)
{
	struct fx f;

	fx_init(&f, 1);
	f.cfd = tcp_client(&f);
	cr_assert_eq(write(f.cfd, "\x16\x03\x01", 3), 3);	/* a ClientHello begins */
	for (int turns = 0; !f.conn && turns < TURNS; turns++)
		turn(&f);
	cr_assert_not_null(f.conn);
	usleep(20000);
	net_loop_reap_lingering(&f.loop);
	cr_assert_eq(f.closed, 1);
	fx_fini(&f);
}

/* ---- the client side: a dial adopted with net_loop_adopt_tls ---- */

#define KIND_ACCEPTED 1
#define KIND_DIALLED 2

/* Both ends of one link through the same loop: the accepted (TLS server) and the dialled
 * (TLS client) connection, each with what its user received. */
struct ends {
	struct net_loop loop;
	struct net_tls_ctx *ctx;
	uint16_t port;
	struct net_conn *conn[3];	/* by kind */
	char got[3][64];
	size_t got_len[3];
	int closed[3];
	char cert_path[64];
	char key_path[64];
};

static void ends_accept(void *ctx, struct net_conn *c)
{
	struct ends *e = ctx;

	e->conn[c->kind] = c;
	/* queued before the handshake is done: it waits for it, then goes encrypted */
	if (c->kind == KIND_DIALLED)
		net_conn_write_copy(&e->loop, c, "hello", 5);
}

static size_t ends_data(void *ctx, struct net_conn *c, const char *buf, size_t len)
{
	struct ends *e = ctx;

	cr_assert_leq(e->got_len[c->kind] + len, sizeof(e->got[0]));
	memcpy(e->got[c->kind] + e->got_len[c->kind], buf, len);
	e->got_len[c->kind] += len;
	return len;
}

static void ends_close(void *ctx, struct net_conn *c)
{
	struct ends *e = ctx;

	e->closed[c->kind]++;
	e->conn[c->kind] = NULL;
}

static const struct net_callbacks ends_cbs = {
	.on_accept = ends_accept, .on_data = ends_data, .on_close = ends_close,
};

/* A loop with a TLS listener whose context checks peers against its own self-signed
 * certificate (so both ends of a link to itself verify), as --route-tls --tls-ca does. */
static void ends_init(struct ends *e)
{
	struct net_loop_config lc = {
		.io = NET_IO_EPOLL, .ring_entries = 64, .buf_count = 64, .buf_size = 8192,
		.max_rx_partial = 1 << 20,
	};
	struct net_tls_config tc = { .require_client_cert = true };
	struct fx certs;
	char err[256];
	int fd;

	memset(e, 0, sizeof(*e));
	make_cert(&certs);
	memcpy(e->cert_path, certs.cert_path, sizeof(e->cert_path));
	memcpy(e->key_path, certs.key_path, sizeof(e->key_path));
	tc.cert_file = tc.ca_file = e->cert_path;
	tc.key_file = e->key_path;
	cr_assert_eq(net_tls_ctx_create(&tc, &e->ctx, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(net_loop_init(&e->loop, &lc, &ends_cbs, e), 0);
	fd = net_listen_open("127.0.0.1", 0, 16, &e->port);
	cr_assert_geq(fd, 0);
	net_loop_set_tls_ctx(&e->loop, e->ctx);
	cr_assert_eq(net_loop_add_tls_listener(&e->loop, fd, KIND_ACCEPTED), 0);
}

static void ends_fini(struct ends *e)
{
	net_loop_fini(&e->loop);
	net_tls_ctx_unref(e->ctx);
	unlink(e->cert_path);
	unlink(e->key_path);
}

Test(net_tls, a_dialled_connection_is_the_tls_client_and_both_ends_verify_the_other)
{
	struct ends e;

	ends_init(&e);
	cr_assert_eq(net_loop_adopt_tls(&e.loop, dial(e.port), KIND_DIALLED), 0);
	cr_assert_not_null(e.conn[KIND_DIALLED]);
	cr_assert(net_conn_is_tls(e.conn[KIND_DIALLED]));
	for (int turns = 0; e.got_len[KIND_ACCEPTED] < 5 && turns < TURNS; turns++)
		pump(&e.loop);
	cr_assert_eq(e.got_len[KIND_ACCEPTED], 5, "what the dialler queued early arrives");
	cr_assert_eq(memcmp(e.got[KIND_ACCEPTED], "hello", 5), 0);
	net_conn_write_copy(&e.loop, e.conn[KIND_ACCEPTED], "welcome", 7);
	for (int turns = 0; e.got_len[KIND_DIALLED] < 7 && turns < TURNS; turns++)
		pump(&e.loop);
	cr_assert_eq(memcmp(e.got[KIND_DIALLED], "welcome", 7), 0);
	for (int k = KIND_ACCEPTED; k <= KIND_DIALLED; k++) {
		cr_assert_not_null(net_conn_tls_version(e.conn[k]));
		cr_assert_str_eq(net_conn_tls_peer_name(e.conn[k]), "127.0.0.1",
				 "the peer's certificate, verified against the CA");
	}
	ends_fini(&e);
}

Test(net_tls, a_dialled_tls_connection_that_meets_plaintext_is_closed)
{
	struct ends e;
	uint16_t plain_port;
	int lfd, sfd;
	char hello[8];

	ends_init(&e);
	lfd = net_listen_open("127.0.0.1", 0, 16, &plain_port);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(net_loop_adopt_tls(&e.loop, dial(plain_port), KIND_DIALLED), 0);
	fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) & ~O_NONBLOCK);
	sfd = accept(lfd, NULL, NULL);
	cr_assert_geq(sfd, 0);
	/* the plaintext peer speaks first, as a link's HELLO does */
	cr_assert_eq(write(sfd, "\0\0\0\x05\x01hello", 10), 10);
	for (int turns = 0; !e.closed[KIND_DIALLED] && turns < TURNS; turns++)
		pump(&e.loop);
	cr_assert_eq(e.closed[KIND_DIALLED], 1);
	cr_assert_eq(e.got_len[KIND_DIALLED], 0, "nothing reached the user");
	cr_assert_eq(read(sfd, hello, 1), 1);
	cr_assert_eq(hello[0], 0x16, "the client spoke first: a TLS handshake record");
	close(sfd);
	close(lfd);
	ends_fini(&e);
}
