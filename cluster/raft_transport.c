/*
 * cluster/raft_transport.c - C-Raft's transport with the cluster key proved both ways
 * (protocol in raft_transport.h).
 */
#include "cluster/raft_transport.h"

#include "core/base/hd_bytes.h"
#include "core/base/hd_log.h"

#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HELLO_LEN 128
#define HELLO_MAGIC "HRFT"
#define HELLO_VERSION 1
#define HELLO_ADDR_OFF 32
#define HELLO_ADDR_MAX (HELLO_LEN - HELLO_ADDR_OFF)
#define NONCE_LEN 16
#define PROOF_LEN crypto_auth_hmacsha256_BYTES
#define HANDSHAKE_TIMEOUT_MS 3000

struct rt;

/* One connection between connect/accept and the hand-over to Raft. Freed once its handles
 * are closed (libuv calls pending request callbacks before the close callback). */
struct handshake {
	struct rt *rt;
	struct handshake *next, *prev;
	uv_tcp_t *tcp;			/* raft_malloc'd: Raft frees it after the hand-over */
	uv_timer_t timer;
	uv_connect_t connect_req;
	uv_write_t write_hello, write_proof;
	struct raft_uv_connect *req;	/* dialler: Raft's request, answered once */
	raft_id dialled_id;
	bool dialler;
	bool tcp_handed;		/* Raft owns tcp now */
	bool proof_written;		/* dialler: our PROOF's write completed */
	bool proof_checked;		/* dialler: theirs checked out, waiting for our write */
	int handles_open;
	uint8_t mine[HELLO_LEN], theirs[HELLO_LEN];
	uint8_t proof_in[PROOF_LEN], proof_out[PROOF_LEN];
	size_t got;			/* bytes of the message being read */
	bool reading_proof;
	raft_id peer_id;
	char peer_addr[HELLO_ADDR_MAX + 1];
};

struct rt {
	uv_loop_t *loop;
	uint8_t key[RAFT_TRANSPORT_KEY_LEN];
	raft_id id;
	char addr[HELLO_ADDR_MAX + 1];
	uv_tcp_t listener;
	uint16_t port;
	raft_uv_accept_cb accept_cb;
	struct handshake *pending;
	raft_uv_transport_close_cb close_cb;
	struct raft_uv_transport *t;
	int handles_open;		/* listener + every handshake's handles */
	bool closing;
};

static void maybe_closed(struct rt *rt)
{
	if (rt->closing && rt->handles_open == 0 && rt->close_cb) {
		raft_uv_transport_close_cb cb = rt->close_cb;

		rt->close_cb = NULL;
		cb(rt->t);
	}
}

/* ---- handshake life ---- */

static void handshake_handle_closed(uv_handle_t *h)
{
	struct handshake *hs = h->data;
	struct rt *rt = hs->rt;

	if (h == (uv_handle_t *)hs->tcp)
		raft_free(hs->tcp);
	rt->handles_open--;
	if (--hs->handles_open == 0) {
		free(hs);
		maybe_closed(rt);
	}
}

static void handshake_unlink(struct handshake *hs)
{
	if (hs->prev)
		hs->prev->next = hs->next;
	else if (hs->rt->pending == hs)
		hs->rt->pending = hs->next;
	if (hs->next)
		hs->next->prev = hs->prev;
	hs->next = hs->prev = NULL;
}

/* Ends a handshake: on success the stream now belongs to Raft; otherwise it is closed and
 * a dialler's request answered with `status`. */
static void handshake_end(struct handshake *hs, int status)
{
	handshake_unlink(hs);
	uv_timer_stop(&hs->timer);
	uv_close((uv_handle_t *)&hs->timer, handshake_handle_closed);
	if (hs->tcp_handed) {
		hs->tcp = NULL;
		hs->handles_open--;
		hs->rt->handles_open--;
		return;
	}
	if (hs->req) {
		struct raft_uv_connect *req = hs->req;

		hs->req = NULL;
		req->cb(req, NULL, status);
	}
	if (!uv_is_closing((uv_handle_t *)hs->tcp))
		uv_close((uv_handle_t *)hs->tcp, handshake_handle_closed);
}

static void handshake_fail(struct handshake *hs, const char *why)
{
	if (why)
		hd_log_warn("controller: raft connection %s %s refused: %s",
			    hs->dialler ? "to" : "from",
			    hs->peer_addr[0] ? hs->peer_addr : "a peer", why);
	handshake_end(hs, RAFT_NOCONNECTION);
}

static void on_handshake_timeout(uv_timer_t *timer)
{
	handshake_fail(timer->data, "no handshake within 3 s");
}

static struct handshake *handshake_new(struct rt *rt, bool dialler)
{
	struct handshake *hs = calloc(1, sizeof(*hs));

	if (!hs)
		return NULL;
	hs->tcp = raft_malloc(sizeof(*hs->tcp));
	if (!hs->tcp) {
		free(hs);
		return NULL;
	}
	hs->rt = rt;
	hs->dialler = dialler;
	uv_tcp_init(rt->loop, hs->tcp);
	hs->tcp->data = hs;
	uv_timer_init(rt->loop, &hs->timer);
	hs->timer.data = hs;
	hs->handles_open = 2;
	rt->handles_open += 2;
	uv_timer_start(&hs->timer, on_handshake_timeout, HANDSHAKE_TIMEOUT_MS, 0);
	hs->next = rt->pending;
	if (rt->pending)
		rt->pending->prev = hs;
	rt->pending = hs;
	/* our HELLO */
	memcpy(hs->mine, HELLO_MAGIC, 4);
	hs->mine[4] = HELLO_VERSION;
	hs->mine[5] = (uint8_t)strlen(rt->addr);
	hd_put_be64(hs->mine + 8, rt->id);
	randombytes_buf(hs->mine + 16, NONCE_LEN);
	memcpy(hs->mine + HELLO_ADDR_OFF, rt->addr, strlen(rt->addr));
	return hs;
}

/* ---- the messages ---- */

static void compute_proof(const struct handshake *hs, bool of_dialler, uint8_t out[PROOF_LEN])
{
	static const char dial_label[] = "herald-raft-dial", listen_label[] = "herald-raft-listen";
	const uint8_t *dialler_hello = hs->dialler ? hs->mine : hs->theirs;
	const uint8_t *listener_hello = hs->dialler ? hs->theirs : hs->mine;
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, hs->rt->key, RAFT_TRANSPORT_KEY_LEN);
	if (of_dialler)
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)dial_label,
					      sizeof(dial_label) - 1);
	else
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)listen_label,
					      sizeof(listen_label) - 1);
	crypto_auth_hmacsha256_update(&st, dialler_hello + 16, NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, listener_hello + 16, NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, dialler_hello + 8, 8);
	crypto_auth_hmacsha256_update(&st, listener_hello + 8, 8);
	crypto_auth_hmacsha256_final(&st, out);
}

/* Reads their HELLO; false (and the reason) when it is not one of ours. */
static bool parse_hello(struct handshake *hs, const char **why)
{
	size_t alen = hs->theirs[5];

	if (memcmp(hs->theirs, HELLO_MAGIC, 4)) {
		*why = "not a Herald controller";
		return false;
	}
	if (hs->theirs[4] != HELLO_VERSION) {
		*why = "unknown handshake version";
		return false;
	}
	if (alen == 0 || alen > HELLO_ADDR_MAX) {
		*why = "bad address length";
		return false;
	}
	memcpy(hs->peer_addr, hs->theirs + HELLO_ADDR_OFF, alen);
	hs->peer_addr[alen] = '\0';
	hs->peer_id = hd_get_be64(hs->theirs + 8);
	if (hs->peer_id == 0) {
		*why = "raft id 0";
		return false;
	}
	if (hs->dialler && hs->peer_id != hs->dialled_id) {
		*why = "another raft id answered";
		return false;
	}
	return true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct handshake *hs = h->data;

	(void)suggested;
	/* exactly what the current message still lacks: never read past it */
	if (hs->reading_proof)
		*buf = uv_buf_init((char *)hs->proof_in + hs->got, (unsigned)(PROOF_LEN - hs->got));
	else
		*buf = uv_buf_init((char *)hs->theirs + hs->got, (unsigned)(HELLO_LEN - hs->got));
}

static void on_wrote(uv_write_t *w, int status);

static int send_bytes(struct handshake *hs, uv_write_t *w, uint8_t *bytes, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)bytes, (unsigned)len);

	w->data = hs;
	return uv_write(w, (uv_stream_t *)hs->tcp, &b, 1, on_wrote);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* Their HELLO is in: the dialler proves itself now; the listener answers with its HELLO
 * and waits for the dialler's proof. */
static void hello_received(struct handshake *hs)
{
	const char *why = NULL;

	if (!parse_hello(hs, &why)) {
		handshake_fail(hs, why);
		return;
	}
	hs->got = 0;
	hs->reading_proof = true;
	if (hs->dialler) {
		compute_proof(hs, true, hs->proof_out);
		if (send_bytes(hs, &hs->write_proof, hs->proof_out, PROOF_LEN))
			handshake_fail(hs, "write failed");
	} else if (send_bytes(hs, &hs->write_hello, hs->mine, HELLO_LEN)) {
		handshake_fail(hs, "write failed");
	}
}

/* The dialler gives Raft the stream once the listener's proof checked out and our own
 * write finished (its callback must not find the handshake gone). */
static void dialler_hand_over(struct handshake *hs)
{
	struct raft_uv_connect *req = hs->req;

	hs->req = NULL;
	hs->tcp_handed = true;
	req->cb(req, (uv_stream_t *)hs->tcp, 0);
	handshake_end(hs, 0);
}

static void proof_received(struct handshake *hs)
{
	uint8_t want[PROOF_LEN];

	compute_proof(hs, !hs->dialler, want);
	if (sodium_memcmp(want, hs->proof_in, PROOF_LEN)) {
		handshake_fail(hs, "wrong cluster key");
		return;
	}
	uv_read_stop((uv_stream_t *)hs->tcp);
	if (hs->dialler) {
		hs->proof_checked = true;
		if (hs->proof_written)
			dialler_hand_over(hs);
		return;
	}
	/* listener: prove ourselves; Raft gets the stream once that is written */
	compute_proof(hs, false, hs->proof_out);
	if (send_bytes(hs, &hs->write_proof, hs->proof_out, PROOF_LEN))
		handshake_fail(hs, "write failed");
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct handshake *hs = s->data;
	size_t want = hs->reading_proof ? PROOF_LEN : HELLO_LEN;

	(void)buf;
	if (n == 0)
		return;
	if (n < 0) {
		handshake_fail(hs, n == UV_EOF ? NULL : uv_strerror((int)n));
		return;
	}
	hs->got += (size_t)n;
	if (hs->got < want)
		return;
	if (hs->reading_proof)
		proof_received(hs);
	else
		hello_received(hs);
}

static void on_wrote(uv_write_t *w, int status)
{
	struct handshake *hs = w->data;

	if (status == UV_ECANCELED)
		return;		/* the handshake already ended */
	if (status < 0) {
		handshake_fail(hs, uv_strerror(status));
		return;
	}
	if (w == &hs->write_proof && hs->dialler) {
		hs->proof_written = true;
		if (hs->proof_checked)
			dialler_hand_over(hs);
		return;
	}
	if (w == &hs->write_proof) {
		struct rt *rt = hs->rt;

		hs->tcp_handed = true;
		rt->accept_cb(rt->t, hs->peer_id, hs->peer_addr, (uv_stream_t *)hs->tcp);
		handshake_end(hs, 0);
	}
}

/* ---- the transport's methods ---- */

static int rt_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct rt *rt = t->impl;

	if (strlen(address) > HELLO_ADDR_MAX)
		return RAFT_INVALID;
	rt->id = id;
	snprintf(rt->addr, sizeof(rt->addr), "%s", address);
	return 0;
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct rt *rt = listener->data;
	struct handshake *hs;

	if (status < 0 || rt->closing)
		return;
	hs = handshake_new(rt, false);
	if (!hs)
		return;
	if (uv_accept(listener, (uv_stream_t *)hs->tcp) ||
	    uv_read_start((uv_stream_t *)hs->tcp, on_alloc, on_read))
		handshake_fail(hs, "accept failed");
}

static int rt_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct rt *rt = t->impl;

	rt->accept_cb = cb;
	return uv_listen((uv_stream_t *)&rt->listener, 64, on_connection) ? RAFT_IOERR : 0;
}

static void on_connected(uv_connect_t *c, int status)
{
	struct handshake *hs = c->data;

	if (status == UV_ECANCELED)
		return;
	if (status < 0) {
		handshake_fail(hs, NULL);	/* refused or unreachable: Raft retries, quietly */
		return;
	}
	if (send_bytes(hs, &hs->write_hello, hs->mine, HELLO_LEN) ||
	    uv_read_start((uv_stream_t *)hs->tcp, on_alloc, on_read))
		handshake_fail(hs, "write failed");
}

static int rt_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
		      const char *address, raft_uv_connect_cb cb)
{
	struct rt *rt = t->impl;
	char host[HELLO_ADDR_MAX + 1];
	const char *colon = strrchr(address, ':');
	struct sockaddr_in sa;
	struct handshake *hs;

	if (!colon || (size_t)(colon - address) >= sizeof(host))
		return RAFT_NOCONNECTION;
	memcpy(host, address, (size_t)(colon - address));
	host[colon - address] = '\0';
	if (uv_ip4_addr(host, atoi(colon + 1), &sa))
		return RAFT_NOCONNECTION;
	hs = handshake_new(rt, true);
	if (!hs)
		return RAFT_NOMEM;
	req->cb = cb;
	hs->req = req;
	hs->dialled_id = id;
	snprintf(hs->peer_addr, sizeof(hs->peer_addr), "%s", address);
	hs->connect_req.data = hs;
	if (uv_tcp_connect(&hs->connect_req, hs->tcp, (struct sockaddr *)&sa, on_connected)) {
		hs->req = NULL;		/* failing synchronously: Raft sees the return code */
		handshake_end(hs, RAFT_NOCONNECTION);
		return RAFT_NOCONNECTION;
	}
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct rt *rt = h->data;

	rt->handles_open--;
	maybe_closed(rt);
}

static void rt_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct rt *rt = t->impl;

	rt->closing = true;
	rt->close_cb = cb;
	while (rt->pending)
		handshake_end(rt->pending, RAFT_CANCELED);
	uv_close((uv_handle_t *)&rt->listener, on_listener_closed);
	maybe_closed(rt);
}

int raft_transport_init(struct raft_uv_transport *t, uv_loop_t *loop, const char *bind_addr,
			uint16_t port, const uint8_t key[RAFT_TRANSPORT_KEY_LEN])
{
	struct rt *rt = calloc(1, sizeof(*rt));
	struct sockaddr_in sa;
	struct sockaddr_storage got;
	int len = sizeof(got);
	int err;

	if (!rt)
		return -ENOMEM;
	memset(t, 0, sizeof(*t));
	t->impl = rt;
	t->init = rt_init;
	t->listen = rt_listen;
	t->connect = rt_connect;
	t->close = rt_close;
	rt->t = t;
	rt->loop = loop;
	memcpy(rt->key, key, RAFT_TRANSPORT_KEY_LEN);
	uv_tcp_init(loop, &rt->listener);
	rt->listener.data = rt;
	rt->handles_open = 1;
	err = uv_ip4_addr(bind_addr, port, &sa);
	if (!err)
		err = uv_tcp_bind(&rt->listener, (struct sockaddr *)&sa, 0);
	if (!err)
		err = uv_tcp_getsockname(&rt->listener, (struct sockaddr *)&got, &len);
	if (err) {
		hd_log_err("controller: cannot bind raft port %s:%u: %s", bind_addr, port,
			   uv_strerror(err));
		uv_close((uv_handle_t *)&rt->listener, NULL);
		uv_run(loop, UV_RUN_NOWAIT);
		free(rt);
		t->impl = NULL;
		return err;	/* libuv errors are negative errnos */
	}
	rt->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
	return 0;
}

uint16_t raft_transport_port(const struct raft_uv_transport *t)
{
	return ((const struct rt *)t->impl)->port;
}

void raft_transport_fini(struct raft_uv_transport *t)
{
	struct rt *rt = t->impl;

	if (rt)
		sodium_memzero(rt->key, sizeof(rt->key));
	free(rt);
	t->impl = NULL;
}
