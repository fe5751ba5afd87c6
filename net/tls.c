/*
 * net/tls.c - TLS on memory BIOs under a loop's connections (see tls.h).
 *
 * Input: the loop hands each received buffer here; it goes into the read BIO, OpenSSL
 * handshakes or decrypts, and the plaintext goes up through net_loop_deliver as plain
 * input would. Output: the connection's queue holds plaintext as for any connection; when
 * the loop starts a send, whole queued messages are gathered into records (up to 16 KiB
 * each, so a turn's small deliveries share one record), encrypted into the write BIO, and
 * moved into the connection's ciphertext buffer, which the kernel reads until the send
 * completes. That buffer is never touched while a send is in flight: what OpenSSL writes
 * meanwhile (alerts, session tickets) waits in the write BIO.
 *
 * c->out_bytes counts, for a TLS connection, the plaintext still queued plus ciphertext not
 * yet written, so backpressure, draining and on_drain work unchanged.
 *
 * Roles: a connection from a TLS listener is the TLS server; one adopted from a dial
 * (net_loop_adopt_tls) is the client and speaks first (its ClientHello goes out at once).
 * Both run on the same context, whose certificate each side presents when asked.
 *
 * Owner: the loop's thread. OpenSSL's own parsers read the handshake; nothing here parses.
 */
#include "net/tls.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"
#include "net/loop.h"
#include "net/loop_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>

#define RECORD_MAX 16384		/* plaintext per TLS record (the protocol's maximum) */
#define ENCRYPT_BUDGET (256u << 10)	/* plaintext encrypted per send, at message ends */
#define CBUF_KEEP (64u << 10)		/* a bigger ciphertext buffer is freed once written */

struct net_tls {
	SSL *ssl;
	BIO *rbio;			/* received ciphertext, owned by ssl */
	BIO *wbio;			/* ciphertext to send, owned by ssl */
	char *cbuf;			/* ciphertext the current or next send writes */
	uint32_t cbuf_len;		/* bytes in cbuf */
	uint32_t cbuf_off;		/* bytes of cbuf already written */
	uint32_t cbuf_cap;
	size_t wbio_counted;		/* bytes in wbio already added to c->out_bytes */
	uint64_t deadline_ms;		/* the handshake must be done by then (hd_now_ms) */
	bool established;
	bool failed;			/* handshake or record error: only the alert goes out */
	bool close_notify_sent;
	bool is_client;			/* we dialled: the peer's certificate is a server's */
	bool got_input;			/* some ciphertext came (the first byte was looked at) */
	bool not_tls;			/* ... and it was no TLS record: a plaintext peer */
	char peer_name[NET_TLS_NAME_MAX + 1];	/* verified peer certificate's CN; "" none */
};

/* ---- server contexts ---- */

static void ossl_reason(char *err, size_t cap, const char *what, const char *file)
{
	unsigned long e = ERR_peek_last_error();
	char why[200];

	ERR_error_string_n(e, why, sizeof(why));
	snprintf(err, cap, "%s %s: %s", what, file, e ? why : "failed");
	ERR_clear_error();
}

/* As server: clients may (or must) present a certificate that chains to the CA. As client
 * (a dialled connection): the server's certificate must chain to it; the "fail if no peer
 * certificate" flag means nothing there, a server always presents one. */
static int ctx_add_peer_ca(SSL_CTX *ctx, const struct net_tls_config *cfg, char *err,
			   size_t cap)
{
	STACK_OF(X509_NAME) *names;

	if (!SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL)) {
		ossl_reason(err, cap, "cannot load CA file", cfg->ca_file);
		return -1;
	}
	names = SSL_load_client_CA_file(cfg->ca_file);
	if (names)
		SSL_CTX_set_client_CA_list(ctx, names);	/* the hint clients choose a cert by */
	/* "may" by default: browsers on the wss port rarely hold a certificate; one that is
	 * presented must verify, or the handshake fails */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
			   (cfg->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
	SSL_CTX_set_verify_depth(ctx, 8);
	return 0;
}

int net_tls_ctx_create(const struct net_tls_config *cfg, struct net_tls_ctx **out, char *err,
		       size_t cap)
{
	static const unsigned char sid_ctx[] = "herald";
	/* either role: a connection takes its own (SSL_set_accept_state or _connect_state),
	 * so one context serves a node link's accepted and dialled ends */
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (!ctx) {
		ossl_reason(err, cap, "cannot create a TLS context", "");
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	/* Mozilla's "intermediate" suites, AES-128-GCM first: every delivery is encrypted per
	 * subscriber, and it costs about two thirds of AES-256's time (bench/README.md) */
	SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
				      "TLS_CHACHA20_POLY1305_SHA256");
	SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
				     "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
	/* no renegotiation (a client could make us redo handshakes at will); idle connections
	 * give their 34 KiB of record buffers back */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* no TLS 1.3 session tickets after the handshake (RabbitMQ's Erlang TLS sends none
	 * either): clients that read and write one socket from two threads, as stomp.py
	 * does, race inside OpenSSL when a ticket arrives while they send CONNECT, and
	 * corrupt their next record. TLS 1.2 clients can still resume by session id. */
	SSL_CTX_set_num_tickets(ctx, 0);
	/* resumed sessions must know which context verified them (client certificates) */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
		ossl_reason(err, cap, "cannot load certificate", cfg->cert_file);
		goto err_free_ctx;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ossl_reason(err, cap, "cannot load the key (or it does not match the certificate)",
			    cfg->key_file);
		goto err_free_ctx;
	}
	if (cfg->ca_file && cfg->ca_file[0] && ctx_add_peer_ca(ctx, cfg, err, cap))
		goto err_free_ctx;
	*out = (struct net_tls_ctx *)ctx;
	return 0;

err_free_ctx:
	SSL_CTX_free(ctx);
	return -1;
}

struct net_tls_ctx *net_tls_ctx_ref(struct net_tls_ctx *ctx)
{
	if (ctx)
		SSL_CTX_up_ref((SSL_CTX *)ctx);	/* atomic inside OpenSSL */
	return ctx;
}

void net_tls_ctx_unref(struct net_tls_ctx *ctx)
{
	SSL_CTX_free((SSL_CTX *)ctx);	/* NULL-safe; frees on the last reference */
}

/* ---- one connection ---- */

bool net_conn_is_tls(const struct net_conn *c)
{
	return c->tls != NULL;
}

const char *net_conn_tls_peer_name(const struct net_conn *c)
{
	return c->tls && c->tls->established && c->tls->peer_name[0] ? c->tls->peer_name : NULL;
}

struct net_tls *net_tls_create(struct net_loop *l, bool is_client)
{
	struct net_tls *t;

	if (!l->tls_ctx)
		return NULL;
	if (!l->tls_scratch)
		l->tls_scratch = hd_alloc(RECORD_MAX);
	t = hd_calloc(1, sizeof(*t));
	t->ssl = SSL_new((SSL_CTX *)l->tls_ctx);	/* holds its own context reference */
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		hd_free(t);
		ERR_clear_error();
		return NULL;
	}
	/* an empty read BIO means "wait for more", not end of stream */
	BIO_set_mem_eof_return(t->rbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	t->is_client = is_client;
	if (is_client)
		SSL_set_connect_state(t->ssl);
	else
		SSL_set_accept_state(t->ssl);
	t->deadline_ms = hd_now_ms() + (l->cfg.tls_handshake_ms ? l->cfg.tls_handshake_ms :
					NET_TLS_HANDSHAKE_MS);
	return t;
}

void net_tls_destroy(struct net_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	hd_free(t->cbuf);
	hd_free(t);
}

/* Adds what OpenSSL wrote since the last look to c's queued bytes and has it sent. */
static void account_output(struct net_loop *l, struct net_conn *c)
{
	struct net_tls *t = c->tls;
	size_t pending = BIO_ctrl_pending(t->wbio);

	if (pending > t->wbio_counted) {
		c->out_bytes += pending - t->wbio_counted;
		t->wbio_counted = pending;
	}
	if (c->out_bytes)
		net_loop_mark_dirty(l, c);
}

static void peer_desc(const struct net_conn *c, char *buf, size_t cap)
{
	char ip[INET_ADDRSTRLEN] = "?";

	inet_ntop(AF_INET, &c->peer.sin_addr, ip, sizeof(ip));
	snprintf(buf, cap, "%s:%u", ip, ntohs(c->peer.sin_port));
}

/* Refuses c: one log line saying why (`reason`, or what OpenSSL says), then the alert
 * OpenSSL queued goes out and the connection closes (the user's on_close runs now). */
static void refuse(struct net_loop *l, struct net_conn *c, const char *what, const char *reason)
{
	struct net_tls *t = c->tls;
	unsigned long e = ERR_peek_last_error();
	long verify = SSL_get_verify_result(t->ssl);
	char why[200];
	char peer[32];

	if (!reason && t->not_tls)
		reason = "the peer does not speak TLS (plaintext?)";
	if (reason)
		snprintf(why, sizeof(why), "%s", reason);
	else if (verify != X509_V_OK)
		snprintf(why, sizeof(why), "%s certificate: %s", t->is_client ? "server" : "client",
			 X509_verify_cert_error_string(verify));
	else if (e)
		ERR_error_string_n(e, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "connection error");
	ERR_clear_error();
	peer_desc(c, peer, sizeof(peer));
	hd_log_conn(HD_LOG_WARN, c->id, "TLS %s %s %s %s: %s", what, t->is_client ? "to" : "from",
		    peer, t->is_client ? "failed" : "refused", why);
	t->failed = true;
	account_output(l, c);
	net_conn_close_after_flush(l, c);
}

static void keep_peer_name(struct net_tls *t)
{
	X509 *cert = SSL_get0_peer_certificate(t->ssl);
	char name[NET_TLS_NAME_MAX + 1];
	int n;

	if (!cert || SSL_get_verify_result(t->ssl) != X509_V_OK)
		return;
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name,
				      sizeof(name));
	/* a CN with a NUL inside, or cut short, names nobody */
	if (n > 0 && (size_t)n == strlen(name) && n <= NET_TLS_NAME_MAX)
		memcpy(t->peer_name, name, (size_t)n + 1);
}

static bool handshake(struct net_loop *l, struct net_conn *c)
{
	struct net_tls *t = c->tls;
	int r = SSL_do_handshake(t->ssl);

	if (r == 1) {
		t->established = true;
		keep_peer_name(t);
		hd_log_conn(HD_LOG_DEBUG, c->id, "TLS %s %s%s%s", SSL_get_version(t->ssl),
			    SSL_get_cipher_name(t->ssl), t->peer_name[0] ? " client " : "",
			    t->peer_name);
		return true;
	}
	if (SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ) {
		account_output(l, c);	/* our part of the handshake goes out */
		return false;
	}
	refuse(l, c, "handshake", NULL);
	return false;
}

void net_tls_start(struct net_loop *l, struct net_conn *c)
{
	if (c->tls->is_client)
		handshake(l, c);	/* the ClientHello: WANT_READ, and it is queued */
}

/* Every TLS connection starts with a handshake record (0x16), or an alert (0x15) from a
 * peer that gives up at once; anything else is a peer that does not speak TLS at all. */
static bool looks_like_tls(const char *buf, size_t len)
{
	return len == 0 || buf[0] == 0x16 || buf[0] == 0x15;
}

void net_tls_input(struct net_loop *l, struct net_conn *c, const char *buf, size_t len)
{
	struct net_tls *t = c->tls;

	if (c->state != NET_CONN_OPEN || t->failed)
		return;	/* closing: what the peer still sends is dropped */
	/* OpenSSL still reads it, to answer with an alert: a plaintext peer that knows TLS
	 * records can say what it got */
	if (!t->got_input)
		t->not_tls = !looks_like_tls(buf, len);
	t->got_input = true;
	if (BIO_write(t->rbio, buf, (int)len) != (int)len) {
		refuse(l, c, "input", NULL);
		return;
	}
	if (!t->established && !handshake(l, c))
		return;
	for (;;) {
		size_t n = 0;
		int r = SSL_read_ex(t->ssl, l->tls_scratch, RECORD_MAX, &n);

		if (r == 1) {
			net_loop_deliver(l, c, l->tls_scratch, n);
			if (c->state != NET_CONN_OPEN)
				return;
			continue;
		}
		r = SSL_get_error(t->ssl, r);
		/* WANT_READ: a partial record waits in rbio; ZERO_RETURN: close_notify, the
		 * TCP FIN that follows ends the connection as for plain TCP */
		if (r != SSL_ERROR_WANT_READ && r != SSL_ERROR_ZERO_RETURN) {
			refuse(l, c, "record", NULL);
			return;
		}
		break;
	}
	account_output(l, c);
}

static void tls_write(struct net_tls *t, const char *p, size_t n)
{
	size_t written;

	/* a memory BIO takes everything: no partial or retried write */
	if (n && SSL_write_ex(t->ssl, p, n, &written) != 1)
		ERR_clear_error();
}

/* Turns up to ENCRYPT_BUDGET of queued plaintext (whole messages) into records in wbio,
 * and releases those entries. */
static void encrypt_queue(struct net_loop *l, struct net_conn *c)
{
	struct net_tls *t = c->tls;
	char *stage = l->tls_scratch;
	size_t staged = 0;
	size_t taken = 0;

	for (struct net_outblock *b = c->out_head; b; b = b->next) {
		for (uint32_t i = b->rd; i < b->wr; i++) {
			const struct net_out *o = &b->e[i];
			const char *part[2] = { o->head, o->tail };
			size_t part_len[2] = { o->head_len, o->tail_len };

			for (int k = 0; k < 2; k++) {
				if (!part_len[k])
					continue;
				if (staged + part_len[k] > RECORD_MAX) {
					tls_write(t, stage, staged);
					staged = 0;
				}
				if (part_len[k] >= RECORD_MAX) {
					tls_write(t, part[k], part_len[k]);	/* a big body */
					continue;
				}
				memcpy(stage + staged, part[k], part_len[k]);
				staged += part_len[k];
			}
			taken += o->head_len + (size_t)o->tail_len;
			/* never stop inside a message: net_conn_drop_unsent cuts at message ends,
			 * and what is encrypted here is past cutting */
			if (taken >= ENCRYPT_BUDGET && !(o->flags & NET_OUT_CONTINUES))
				goto done;
		}
	}
done:
	tls_write(t, stage, staged);
	net_loop_out_consume(l, c, taken);
}

/* Moves what OpenSSL wrote into cbuf (empty: no send is in flight). */
static void take_output(struct net_tls *t)
{
	size_t pending = BIO_ctrl_pending(t->wbio);
	int n;

	if (!pending)
		return;
	if (pending > t->cbuf_cap) {
		hd_free(t->cbuf);
		t->cbuf = hd_alloc(pending);
		t->cbuf_cap = (uint32_t)pending;
	}
	n = BIO_read(t->wbio, t->cbuf, (int)pending);
	t->cbuf_len = n > 0 ? (uint32_t)n : 0;
	t->cbuf_off = 0;
	t->wbio_counted = 0;
}

bool net_tls_fill(struct net_loop *l, struct net_conn *c, struct net_send_ctx *s)
{
	struct net_tls *t = c->tls;

	if (t->cbuf_off == t->cbuf_len) {
		t->cbuf_off = t->cbuf_len = 0;
		if (t->cbuf_cap > CBUF_KEEP) {
			hd_free(t->cbuf);
			t->cbuf = NULL;
			t->cbuf_cap = 0;
		}
		if (net_tls_can_send_plain(c) && c->out_head)
			encrypt_queue(l, c);
		account_output(l, c);
		take_output(t);
	}
	if (t->cbuf_off == t->cbuf_len)
		return false;	/* handshake not done: the plaintext waits */
	memset(&s->msg, 0, sizeof(s->msg));
	s->iov[0].iov_base = t->cbuf + t->cbuf_off;
	s->iov[0].iov_len = t->cbuf_len - t->cbuf_off;
	s->msg.msg_iov = s->iov;
	s->msg.msg_iovlen = 1;
	s->res = 0;
	s->waiting = false;
	return true;
}

void net_tls_sent(struct net_conn *c, size_t n)
{
	c->tls->cbuf_off += (uint32_t)n;
	c->out_bytes -= n;
}

bool net_tls_close_notify(struct net_loop *l, struct net_conn *c)
{
	struct net_tls *t = c->tls;

	if (!t->established || t->failed || t->close_notify_sent)
		return false;
	t->close_notify_sent = true;
	if (SSL_shutdown(t->ssl) < 0)
		ERR_clear_error();
	account_output(l, c);
	return c->out_bytes > 0;
}

const char *net_conn_tls_version(const struct net_conn *c)
{
	return c->tls && c->tls->established ? SSL_get_version(c->tls->ssl) : NULL;
}

bool net_tls_handshake_expired(const struct net_conn *c, uint64_t now_ms)
{
	return c->tls && !c->tls->established && !c->tls->failed && now_ms > c->tls->deadline_ms;
}

void net_tls_log_timeout(const struct net_conn *c)
{
	char peer[32];

	peer_desc(c, peer, sizeof(peer));
	hd_log_conn(HD_LOG_WARN, c->id, "TLS handshake %s %s %s: not done in time",
		    c->tls->is_client ? "to" : "from", peer, c->tls->is_client ? "failed" : "refused");
}

bool net_tls_can_send_plain(const struct net_conn *c)
{
	return c->tls->established && !c->tls->failed && !c->tls->close_notify_sent;
}
