/*
 * bench/bench_conn.c - herald-bench connections: connect, upgrade, batched output, framed
 * input (see bench_conn.h). Reads go into the worker's shared buffer; only the tail of a
 * partial frame is copied back into the connection, so idle connections cost no buffer.
 */
#include "bench/bench_conn.h"

#include "bench/bench_cfg.h"
#include "bench/bench_nats.h"
#include "bench/bench_tls.h"
#include "core/base/hd_alloc.h"
#include "proto/stomp_encode.h"
#include "proto/ws_frame.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS_GAP WS_HEADER_MAX	/* bytes reserved in front of a WS frame's payload */
#define NO_WS_FRAME UINT32_MAX
#define TLS_HANDSHAKE_MS 5000
#define READS_PER_CALL 4	/* fairness: other connections wait while one is read */

void bconn_init(struct bconn *c, const struct bench_cfg *cfg, const struct bench_target *tgt,
		uint32_t gid)
{
	uint64_t x = (uint64_t)gid * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;

	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->tgt = tgt;
	c->fd = -1;
	c->gid = gid;
	c->ws = cfg->ws;
	c->nats = cfg->nats;
	c->ws_binary = cfg->ws_binary;
	c->ws_open = NO_WS_FRAME;
	x ^= x >> 29;
	memcpy(c->mask, &x, 4);
	stomp_parser_init(&c->parser, NULL, c->scratch, sizeof(c->scratch));
}

int bconn_start(struct bconn *c, int epfd, unsigned src_host)
{
	const struct sockaddr_in *server = &c->tgt->addr;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	int one = 1;
	int fd;
	int err;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (src_host > 1) {
		struct sockaddr_in src = { .sin_family = AF_INET };

		/* the port is picked at connect time, per destination: each source address
		 * gives the whole ephemeral range again */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		src.sin_addr.s_addr = htonl(0x7f000000u | (src_host & 0xffffffu));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src))) {
			err = -errno;
			goto err_close_fd;
		}
	}
	if (connect(fd, (const struct sockaddr *)server, sizeof(*server)) &&
	    errno != EINPROGRESS) {
		err = -errno;
		goto err_close_fd;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) {
		err = -errno;
		goto err_close_fd;
	}
	c->fd = fd;
	c->out_armed = true;
	c->state = BC_TCP;
	return 0;

err_close_fd:
	close(fd);
	return err;
}

/* Room for n raw bytes (no WS framing): the upgrade request, control frames. */
static char *out_reserve_raw(struct bconn *c, size_t n)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;

		/* drop what was written before growing, so the buffer stays small */
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			if (c->ws_open != NO_WS_FRAME)
				c->ws_open -= c->out_off;
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (c->out_len + n > cap)
			cap *= 2;
		if (cap != c->out_cap) {
			c->out = hd_realloc(c->out, cap);
			c->out_cap = (uint32_t)cap;
		}
	}
	return c->out + c->out_len;
}

char *bconn_out_reserve(struct bconn *c, size_t n)
{
	if (c->ws && c->ws_open == NO_WS_FRAME) {
		out_reserve_raw(c, WS_GAP + n);
		c->ws_open = c->out_len;
		c->out_len += WS_GAP;
	}
	return out_reserve_raw(c, n);
}

/* Closes the WS frame being filled: header in front of the payload, payload masked. */
static void ws_close_frame(struct bconn *c)
{
	uint32_t start = c->ws_open;
	uint32_t pay = start + WS_GAP;
	uint32_t plen = c->out_len - pay;
	uint32_t hlen = (uint32_t)ws_header_len(plen, true);
	uint32_t hdr = pay - hlen;

	c->ws_open = NO_WS_FRAME;
	ws_encode_header((uint8_t *)c->out + hdr, hlen, c->ws_binary ? WS_OP_BINARY : WS_OP_TEXT,
			 true, plen, c->mask);
	ws_mask_apply((uint8_t *)c->out + pay, plen, c->mask, 0);
	if (c->out_off == start) {
		c->out_off = hdr;	/* nothing unsent before it: skip the unused gap */
		return;
	}
	memmove(c->out + start, c->out + hdr, hlen + plen);
	c->out_len -= WS_GAP - hlen;
}

static void set_out_armed(struct bconn *c, int epfd, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };

	if (c->out_armed == on)
		return;
	c->out_armed = on;
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

int bconn_flush(struct bconn *c, int epfd)
{
	ssize_t n;

	if (c->ws_open != NO_WS_FRAME)
		ws_close_frame(c);
	if (c->out_len == c->out_off) {
		set_out_armed(c, epfd, false);
		return 0;
	}
	n = c->tls ? bench_tls_write(c->tls, c->out + c->out_off, c->out_len - c->out_off)
		   : write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		n = 0;
	}
	c->out_off += (uint32_t)n;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	set_out_armed(c, epfd, c->out_off != c->out_len);
	return 0;
}

/* NATS: CONNECT then PING; the PONG stands for CONNECTED. */
static void send_nats_connect(struct bconn *c)
{
	char *p = bconn_out_reserve(c, 256);
	ssize_t n = bench_nats_connect(p, 256);

	if (n > 0)
		bconn_out_commit(c, (size_t)n);
	c->state = BC_STOMP_CONNECT;
}

void bconn_send_connect(struct bconn *c, const struct bench_cfg *cfg)
{
	const struct stomp_header h[] = {
		{ { "accept-version", 14 }, { "1.2", 3 } },
		{ { "host", 4 }, { cfg->vhost, strlen(cfg->vhost) } },
		{ { "login", 5 }, { cfg->login, strlen(cfg->login) } },
		{ { "passcode", 8 }, { cfg->passcode, strlen(cfg->passcode) } },
		{ { "heart-beat", 10 }, { "0,0", 3 } },
	};
	char *p = bconn_out_reserve(c, 1024);
	ssize_t n = stomp_encode_frame(p, 1024, STOMP_V12, STOMP_CMD_CONNECT, h, 5, NULL, 0, false);

	if (n > 0)
		bconn_out_commit(c, (size_t)n);
	c->state = BC_STOMP_CONNECT;
}

static void send_upgrade(struct bconn *c)
{
	char *p;
	ssize_t n;

	c->ws_key = hd_alloc(BENCH_WS_KEY_LEN + 1);
	bench_ws_make_key(c->ws_key, c->gid + 1);
	p = out_reserve_raw(c, 1024);
	n = bench_ws_request(p, 1024, c->tgt->host, c->tgt->port, c->tgt->path, c->ws_key);
	if (n > 0)
		c->out_len += (uint32_t)n;
	c->wsdec = hd_alloc(sizeof(*c->wsdec));
	bench_wsdec_init(c->wsdec);
	c->state = BC_WS_UPGRADE;
}

int bconn_connected(struct bconn *c, const struct bench_cfg *cfg)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	if (err)
		return -err;
	if (cfg->tls) {
		const char *why = NULL;

		c->tls = bench_tls_handshake(c->fd, TLS_HANDSHAKE_MS, &why);
		if (!c->tls) {
			fprintf(stderr, "herald-bench: TLS handshake: %s\n", why);
			return -EPROTO;
		}
	}
	if (c->nats)
		send_nats_connect(c);
	else if (c->ws)
		send_upgrade(c);
	else
		bconn_send_connect(c, cfg);
	return 0;
}

/* Keeps buf[0..len) as the partial frame for the next read. */
static void keep_partial(struct bconn *c, const char *buf, size_t len)
{
	if (len > c->part_cap) {
		size_t cap = c->part_cap ? c->part_cap : 256;

		while (cap < len)
			cap *= 2;
		hd_free(c->part);
		c->part = hd_alloc(cap);
		c->part_cap = (uint32_t)cap;
	}
	if (len)
		memmove(c->part, buf, len);
	c->part_len = (uint32_t)len;
}

/* The upgrade response; returns bytes of WS data after it in buf[*skip..len), or < 0. */
static ssize_t take_upgrade(struct bconn *c, char *buf, size_t len, size_t *skip, const char **why)
{
	ssize_t r = bench_ws_response(buf, len, c->ws_key, why);

	if (r <= 0)
		return r < 0 ? -1 : 0;
	hd_free(c->ws_key);
	c->ws_key = NULL;
	*skip = (size_t)r;
	return 1;
}

/* Queues a masked pong carrying the ping's payload (RFC 6455 5.5.3). */
static void send_pong(struct bconn *c)
{
	uint8_t *p;
	ssize_t h;

	if (c->ws_open != NO_WS_FRAME)
		ws_close_frame(c);
	p = (uint8_t *)out_reserve_raw(c, WS_HEADER_MAX + sizeof(c->wsdec->ctl));
	h = ws_encode_header(p, WS_HEADER_MAX, WS_OP_PONG, true, c->wsdec->ctl_len, c->mask);
	if (h < 0)
		return;
	memcpy(p + h, c->wsdec->ctl, c->wsdec->ctl_len);
	ws_mask_apply(p + h, c->wsdec->ctl_len, c->mask, 0);
	c->out_len += (uint32_t)h + c->wsdec->ctl_len;
}

/* Unwraps WebSocket frames of the new bytes buf[from..len) in place; returns the new
 * length of the STOMP stream, or < 0. */
static ssize_t unwrap_ws(struct bconn *c, char *buf, size_t from, size_t len, const char **why)
{
	unsigned ev = 0;
	ssize_t k = bench_ws_strip(c->wsdec, (uint8_t *)buf + from, len - from, &ev);

	if (k < 0) {
		*why = "bad WebSocket frame from the server";
		return -1;
	}
	if (ev & BENCH_WS_EV_PING)
		send_pong(c);
	if (ev & BENCH_WS_EV_CLOSE) {
		*why = "the server closed the WebSocket";
		return -1;
	}
	return (ssize_t)from + k;
}

/* Splits buf[0..len) into frames; returns the bytes consumed, or < 0. */
static ssize_t parse_frames(struct bconn *c, struct bench_rbuf *rb, const char *buf, size_t len,
			    bconn_frame_fn fn, void *arg, const char **why)
{
	size_t off = 0;

	while (off < len) {
		ssize_t r = stomp_parse(&c->parser, buf + off, len - off, &rb->frame);

		if (r == 0)
			break;
		if (r < 0) {
			*why = c->parser.reason ? c->parser.reason : "unparsable frame";
			return -1;
		}
		off += (size_t)r;
		if (rb->frame.cmd != STOMP_CMD_NONE && fn(arg, c, &rb->frame))
			return -2;
	}
	return (ssize_t)off;
}

/* One NATS operation as the STOMP frame the worker expects (see bench_conn.h); false
 * when there is nothing to hand on. Sets only the fields the worker reads. */
static bool nats_frame(struct bconn *c, const struct bench_nats_msg *m, struct stomp_frame *f)
{
	f->nheaders = 0;
	f->heartbeats = 0;
	f->body.ptr = m->payload;
	f->body.len = m->payload_len;
	switch (m->op) {
	case BENCH_NATS_MSG:
		f->cmd = STOMP_CMD_MESSAGE;
		return true;
	case BENCH_NATS_PONG:
		f->cmd = c->state == BC_STOMP_CONNECT ? STOMP_CMD_CONNECTED : STOMP_CMD_RECEIPT;
		return true;
	case BENCH_NATS_ERR:
		f->cmd = STOMP_CMD_ERROR;
		f->headers[0].name = (struct stomp_view){ "message", 7 };
		f->headers[0].value = (struct stomp_view){ m->arg, m->arg_len };
		f->nheaders = 1;
		return true;
	case BENCH_NATS_PING: {
		char *p = out_reserve_raw(c, sizeof(BENCH_NATS_PONG_CMD) - 1);

		memcpy(p, BENCH_NATS_PONG_CMD, sizeof(BENCH_NATS_PONG_CMD) - 1);
		c->out_len += sizeof(BENCH_NATS_PONG_CMD) - 1;
		return false;
	}
	default:
		return false;
	}
}

/* As parse_frames, for NATS operations. */
static ssize_t parse_nats(struct bconn *c, struct bench_rbuf *rb, const char *buf, size_t len,
			  bconn_frame_fn fn, void *arg, const char **why)
{
	size_t off = 0;

	while (off < len) {
		struct bench_nats_msg m;
		ssize_t r = bench_nats_parse(buf + off, len - off, &m, why);

		if (r == 0)
			break;
		if (r < 0)
			return -1;
		off += (size_t)r;
		if (nats_frame(c, &m, &rb->frame) && fn(arg, c, &rb->frame))
			return -2;
	}
	return (ssize_t)off;
}

static int read_once(struct bconn *c, struct bench_rbuf *rb, bconn_frame_fn fn, void *arg,
		     const char **why, bool *more)
{
	size_t have = c->part_len;
	size_t skip = 0;
	ssize_t n;
	ssize_t used;

	if (have >= rb->cap) {
		*why = "frame larger than the read buffer";
		return -1;
	}
	if (have)
		memcpy(rb->buf, c->part, have);
	n = c->tls ? bench_tls_read(c->tls, rb->buf + have, rb->cap - have)
		   : read(c->fd, rb->buf + have, rb->cap - have);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		*why = n == 0 ? "connection closed by the server" : strerror(errno);
		return -1;
	}
	/* decrypted bytes TLS still holds: epoll will not say so */
	*more = (size_t)n == rb->cap - have || (c->tls && bench_tls_pending(c->tls));
	n += (ssize_t)have;
	if (c->state == BC_WS_UPGRADE) {
		ssize_t r = take_upgrade(c, rb->buf, (size_t)n, &skip, why);

		if (r <= 0) {
			keep_partial(c, rb->buf, r < 0 ? 0 : (size_t)n);
			return (int)r;
		}
		bconn_send_connect(c, c->cfg);
		have = 0;
	}
	if (c->ws) {
		n = unwrap_ws(c, rb->buf + skip, have, (size_t)n - skip, why);
		if (n < 0)
			return -1;
	}
	if (c->nats)
		used = parse_nats(c, rb, rb->buf + skip, (size_t)n, fn, arg, why);
	else
		used = parse_frames(c, rb, rb->buf + skip, (size_t)n, fn, arg, why);
	if (used < 0)
		return (int)used;
	keep_partial(c, rb->buf + skip + used, (size_t)n - (size_t)used);
	return 0;
}

int bconn_read(struct bconn *c, struct bench_rbuf *rb, bconn_frame_fn fn, void *arg,
	       const char **why)
{
	for (int i = 0; i < READS_PER_CALL || (c->tls && bench_tls_pending(c->tls)); i++) {
		bool more = false;
		int r = read_once(c, rb, fn, arg, why, &more);

		if (r || !more || c->state == BC_DEAD)
			return r;
	}
	return 0;
}

void bconn_kill(struct bconn *c)
{
	bench_tls_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd);	/* also leaves the epoll set */
	c->fd = -1;
	c->state = BC_DEAD;
	hd_free(c->out);
	hd_free(c->part);
	hd_free(c->wsdec);
	hd_free(c->ws_key);
	c->out = c->part = c->ws_key = NULL;
	c->wsdec = NULL;
	c->out_len = c->out_off = c->out_cap = c->part_len = c->part_cap = 0;
}
