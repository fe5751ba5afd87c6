/*
 * bench/bench_raw.c - the raw-ceiling relay (see bench_raw.h).
 *
 * One thread, one epoll set. SEND to /topic/X goes to every subscriber of X; SEND to
 * /queue/X to one subscriber of X in turn (dropped when there is none). Each delivery is
 * the MESSAGE a broker would write: a per-subscriber head (proto's
 * stomp_encode_message_head) and the tail encoded once per SEND, copied into the
 * subscriber's buffer; every buffer written this pass is flushed with one write(2).
 * CONNECT gets CONNECTED 1.2, any frame with a receipt header gets its RECEIPT, ACK/NACK
 * are ignored. A subscriber more than 64 MiB behind is closed.
 */
#include "bench/bench_raw.h"

#include "bench/bench_cfg.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"
#include "proto/stomp_encode.h"
#include "proto/stomp_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_CAP (4u << 20)
#define OUT_LIMIT (64u << 20)
#define MAX_EVENTS 256

struct rconn;

struct rsub {
	struct rconn *c;
	char id[64];
	uint32_t id_len;
};

struct rdest {
	char *name;		/* NULL: free slot */
	uint32_t name_len;
	bool is_queue;
	struct rsub *subs;
	uint32_t nsubs;
	uint32_t rr;		/* queues: next subscriber */
};

struct rconn {
	int fd;
	bool dirty;
	bool closing;		/* DISCONNECT seen: close once the output is written */
	bool out_armed;		/* EPOLLOUT registered */
	struct rconn *dirty_next;
	struct rconn *grave_next;
	struct stomp_parser parser;
	char scratch[512];
	char *part;
	uint32_t part_len;
	char *out;
	size_t out_off;
	size_t out_len;
	size_t out_cap;
	struct rdest **dests;	/* destinations subscribed to, for clean-up */
	uint32_t ndests;
};

struct relay {
	int epfd;
	int lfd;
	struct rdest *tab;	/* open addressing, power-of-two size */
	uint32_t tab_cap;
	uint32_t tab_used;
	struct rconn *dirty;
	struct rconn *grave;	/* closed this pass, freed at its end */
	char *rbuf;
	struct stomp_frame frame;
	char *tail;
	size_t tail_cap;
	uint64_t msg_id;
};

/* ---- destination table ---- */

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return h;
}

static struct rdest *dest_find(struct relay *r, const char *name, size_t len, bool create);

static void tab_grow(struct relay *r)
{
	struct rdest *old = r->tab;
	uint32_t old_cap = r->tab_cap;

	r->tab_cap = old_cap ? old_cap * 2 : 1024;
	r->tab = hd_calloc(r->tab_cap, sizeof(*r->tab));
	r->tab_used = 0;
	for (uint32_t i = 0; i < old_cap; i++) {
		struct rdest *d;

		if (!old[i].name)
			continue;
		d = dest_find(r, old[i].name, old[i].name_len, true);
		hd_free(d->name);
		*d = old[i];
		/* subscribers point at their rdest: fix them up */
		for (uint32_t k = 0; k < d->nsubs; k++)
			for (uint32_t j = 0; j < d->subs[k].c->ndests; j++)
				if (d->subs[k].c->dests[j] == &old[i])
					d->subs[k].c->dests[j] = d;
	}
	hd_free(old);
}

static struct rdest *dest_find(struct relay *r, const char *name, size_t len, bool create)
{
	uint32_t i;

	if (create && (r->tab_used + 1) * 2 > r->tab_cap)
		tab_grow(r);
	if (!r->tab_cap)
		return NULL;
	for (i = (uint32_t)hash(name, len) & (r->tab_cap - 1);; i = (i + 1) & (r->tab_cap - 1)) {
		struct rdest *d = &r->tab[i];

		if (!d->name)
			break;
		if (d->name_len == len && !memcmp(d->name, name, len))
			return d;
	}
	if (!create)
		return NULL;
	r->tab[i].name = hd_strndup(name, len);
	r->tab[i].name_len = (uint32_t)len;
	r->tab[i].is_queue = len > 7 && !memcmp(name, "/queue/", 7);
	r->tab_used++;
	return &r->tab[i];
}

/* ---- output ---- */

static void mark_dirty(struct relay *r, struct rconn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->dirty_next = r->dirty;
		r->dirty = c;
	}
}

static char *out_reserve(struct relay *r, struct rconn *c, size_t n)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (c->out_len + n > c->out_cap)
			c->out_cap = c->out_cap ? c->out_cap * 2 : 16384;
		c->out = hd_realloc(c->out, c->out_cap);
	}
	mark_dirty(r, c);
	return c->out + c->out_len;
}

static void send_frame(struct relay *r, struct rconn *c, enum stomp_cmd cmd,
		       const struct stomp_header *h, size_t nh)
{
	char *p = out_reserve(r, c, 1024);
	ssize_t n = stomp_encode_frame(p, 1024, STOMP_V12, cmd, h, nh, NULL, 0, false);

	if (n > 0)
		c->out_len += (size_t)n;
}

static void maybe_receipt(struct relay *r, struct rconn *c, const struct stomp_frame *f)
{
	const struct stomp_view *v = stomp_frame_header(f, "receipt");
	struct stomp_header h[1];

	if (!v)
		return;
	h[0].name = (struct stomp_view){ "receipt-id", 10 };
	h[0].value = *v;
	send_frame(r, c, STOMP_CMD_RECEIPT, h, 1);
}

/* ---- frames ---- */

static void deliver(struct relay *r, struct rsub *s, size_t tail_len)
{
	char id[24];
	int id_len = snprintf(id, sizeof(id), "%llu", (unsigned long long)++r->msg_id);
	size_t head_cap = STOMP_MESSAGE_HEAD_MAX(s->id_len, (size_t)id_len, 0);
	char *p = out_reserve(r, s->c, head_cap + tail_len);
	ssize_t n = stomp_encode_message_head(p, head_cap, STOMP_V12,
					      (struct stomp_view){ s->id, s->id_len },
					      (struct stomp_view){ id, (size_t)id_len },
					      (struct stomp_view){ "", 0 }, false);

	if (n <= 0)
		return;
	memcpy(p + n, r->tail, tail_len);
	s->c->out_len += (size_t)n + tail_len;
}

static void on_send(struct relay *r, const struct stomp_frame *f)
{
	const struct stomp_view *dv = stomp_frame_header(f, "destination");
	struct rdest *d = dv ? dest_find(r, dv->ptr, dv->len, false) : NULL;
	size_t need;
	ssize_t n;

	if (!d || !d->nsubs)
		return;
	need = f->body.len + 2 * dv->len + 64;
	if (need > r->tail_cap) {
		r->tail_cap = need * 2;
		r->tail = hd_realloc(r->tail, r->tail_cap);
	}
	n = stomp_encode_message_tail(r->tail, r->tail_cap, STOMP_V12, *dv, NULL, 0, f->body.ptr,
				      f->body.len);
	if (n <= 0)
		return;
	if (d->is_queue) {
		deliver(r, &d->subs[d->rr++ % d->nsubs], (size_t)n);
		return;
	}
	for (uint32_t i = 0; i < d->nsubs; i++)
		deliver(r, &d->subs[i], (size_t)n);
}

static void on_subscribe(struct relay *r, struct rconn *c, const struct stomp_frame *f)
{
	const struct stomp_view *dv = stomp_frame_header(f, "destination");
	const struct stomp_view *id = stomp_frame_header(f, "id");
	struct rdest *d;
	struct rsub *s;

	if (!dv)
		return;
	d = dest_find(r, dv->ptr, dv->len, true);
	d->subs = hd_realloc(d->subs, (d->nsubs + 1) * sizeof(*d->subs));
	s = &d->subs[d->nsubs++];
	s->c = c;
	s->id_len = id ? (uint32_t)HD_MIN(id->len, sizeof(s->id)) : 0;
	memcpy(s->id, id ? id->ptr : "", s->id_len);
	c->dests = hd_realloc(c->dests, (c->ndests + 1) * sizeof(*c->dests));
	c->dests[c->ndests++] = d;
}

static void on_frame(struct relay *r, struct rconn *c, const struct stomp_frame *f)
{
	static const struct stomp_header connected[2] = {
		{ { "version", 7 }, { "1.2", 3 } },
		{ { "heart-beat", 10 }, { "0,0", 3 } },
	};

	switch (f->cmd) {
	case STOMP_CMD_SEND:
		on_send(r, f);
		break;
	case STOMP_CMD_CONNECT:
	case STOMP_CMD_STOMP:
		send_frame(r, c, STOMP_CMD_CONNECTED, connected, 2);
		stomp_parser_set_version(&c->parser, STOMP_V12);
		break;
	case STOMP_CMD_SUBSCRIBE:
		on_subscribe(r, c, f);
		break;
	case STOMP_CMD_DISCONNECT:
		c->closing = true;
		mark_dirty(r, c);
		break;
	default:
		break;
	}
	maybe_receipt(r, c, f);
}

/* ---- connections ---- */

static void conn_close(struct relay *r, struct rconn *c)
{
	if (c->fd < 0)
		return;
	for (uint32_t i = 0; i < c->ndests; i++) {
		struct rdest *d = c->dests[i];

		for (uint32_t k = 0; k < d->nsubs; k++) {
			if (d->subs[k].c == c) {
				d->subs[k] = d->subs[--d->nsubs];
				break;
			}
		}
	}
	close(c->fd);
	c->fd = -1;
	hd_free(c->dests);
	hd_free(c->part);
	hd_free(c->out);
	c->dests = NULL;
	c->part = c->out = NULL;
	c->ndests = 0;
	c->out_len = c->out_off = c->out_cap = 0;
	/* the struct itself is freed after this pass (it may still be on the dirty list) */
	c->grave_next = r->grave;
	r->grave = c;
}

static void conn_read(struct relay *r, struct rconn *c)
{
	size_t have = c->part_len;
	size_t off = 0;
	ssize_t n;

	if (have)
		memcpy(r->rbuf, c->part, have);
	n = read(c->fd, r->rbuf + have, RBUF_CAP - have);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(r, c);
		return;
	}
	n += (ssize_t)have;
	while (off < (size_t)n) {
		ssize_t k = stomp_parse(&c->parser, r->rbuf + off, (size_t)n - off, &r->frame);

		if (k == 0)
			break;
		if (k < 0) {
			conn_close(r, c);
			return;
		}
		off += (size_t)k;
		if (r->frame.cmd != STOMP_CMD_NONE)
			on_frame(r, c, &r->frame);
	}
	if ((size_t)n - off >= RBUF_CAP / 2) {
		conn_close(r, c);	/* a frame this big is not what the relay is for */
		return;
	}
	c->part = hd_realloc(c->part, (size_t)n - off + 1);
	memcpy(c->part, r->rbuf + off, (size_t)n - off);
	c->part_len = (uint32_t)((size_t)n - off);
}

static void conn_flush(struct relay *r, struct rconn *c)
{
	struct epoll_event ev = { .data.ptr = c };
	ssize_t n = 0;

	if (c->fd < 0)
		return;
	if (c->out_len != c->out_off)
		n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
	if (n > 0)
		c->out_off += (size_t)n;
	else if (n < 0 && errno != EAGAIN && errno != EINTR)
		c->out_off = c->out_len;	/* broken: reading will see the close */
	if (c->out_armed != (c->out_off != c->out_len)) {
		c->out_armed = !c->out_armed;
		ev.events = EPOLLIN | (c->out_armed ? EPOLLOUT : 0);
		epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
	if (c->out_armed && c->out_len - c->out_off > OUT_LIMIT)
		conn_close(r, c);	/* a slow subscriber */
	else if (c->closing && c->out_len == c->out_off)
		conn_close(r, c);
}

static void on_accept(struct relay *r)
{
	for (;;) {
		int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;
		struct rconn *c;
		struct epoll_event ev = { .events = EPOLLIN };

		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = hd_calloc(1, sizeof(*c));
		c->fd = fd;
		stomp_parser_init(&c->parser, NULL, c->scratch, sizeof(c->scratch));
		ev.data.ptr = c;
		epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

static int open_listener(struct relay *r, const struct bench_cfg *cfg)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->raw_port) };
	socklen_t len = sizeof(sa);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int one = 1;
	char ip[INET_ADDRSTRLEN];

	if (inet_pton(AF_INET, cfg->raw_bind, &sa.sin_addr) != 1)
		return -EINVAL;
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->lfd < 0)
		return -errno;
	setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(r->lfd, 4096) ||
	    getsockname(r->lfd, (struct sockaddr *)&sa, &len))
		return -errno;
	epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->lfd, &ev);
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	fprintf(stderr, "listening proto=stomp addr=%s:%u\n", ip, ntohs(sa.sin_port));
	return 0;
}

/* One pass: handle what is ready, flush every buffer written, free what was closed. */
static void pass(struct relay *r)
{
	struct epoll_event ev[MAX_EVENTS];
	int n = epoll_wait(r->epfd, ev, MAX_EVENTS, 100);

	for (int i = 0; i < n; i++) {
		struct rconn *c = ev[i].data.ptr;

		if (!c) {
			on_accept(r);
			continue;
		}
		if (c->fd >= 0 && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			conn_read(r, c);
		if (c->fd >= 0 && (ev[i].events & EPOLLOUT))
			mark_dirty(r, c);
	}
	while (r->dirty) {
		struct rconn *c = r->dirty;

		r->dirty = c->dirty_next;
		c->dirty = false;
		conn_flush(r, c);
	}
	while (r->grave) {
		struct rconn *c = r->grave;

		r->grave = c->grave_next;
		hd_free(c);
	}
}

int bench_raw_run(const struct bench_cfg *cfg, volatile sig_atomic_t *stop)
{
	struct relay r = { 0 };
	int err;

	r.epfd = epoll_create1(EPOLL_CLOEXEC);
	r.rbuf = hd_alloc(RBUF_CAP);
	err = open_listener(&r, cfg);
	if (err) {
		fprintf(stderr, "herald-bench raw-server: listen: %s\n", strerror(-err));
		return 1;
	}
	while (!*stop)
		pass(&r);
	close(r.lfd);
	close(r.epfd);
	return 0;
}
