/*
 * bench/bench_raw.c - the raw-ceiling relay (see bench_raw.h).
 *
 * --threads threads (default 2, as many as Herald's shards here), each with its own epoll
 * set and its own SO_REUSEPORT listener on the same port, owning the connections it
 * accepted. SEND to /topic/X goes to every subscriber of X; SEND to /queue/X to one
 * subscriber of X in turn (dropped when there is none). Each delivery is the MESSAGE a
 * broker would write: a per-subscriber head (proto's stomp_encode_message_head) and the
 * tail encoded once per SEND, copied into the subscriber's pending buffer under its owner
 * thread's lock; the owner swaps that buffer out and writes it with one write(2) per pass.
 * CONNECT gets CONNECTED 1.2, a frame with a receipt header gets its RECEIPT, ACK/NACK are
 * ignored. A subscriber more than 64 MiB behind is closed. No queues are held, nothing is
 * acknowledged, no limits: the kernel's share of the work plus the least a relay must do.
 *
 * Locks: the destination table is a rwlock (read for SEND, write for SUBSCRIBE and close);
 * each thread's mutex guards its connections' pending output and its dirty list. A thread
 * holds at most one thread mutex at a time, always inside the table lock.
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_CAP (4u << 20)
#define OUT_LIMIT (64u << 20)
#define MAX_EVENTS 256
#define RAW_THREADS_MAX 16

struct rconn;
struct rthread;

struct rsub {
	struct rconn *c;
	char id[64];
	uint32_t id_len;
};

struct rdest {
	char *name;		/* NULL: free slot */
	uint32_t name_len;
	bool is_queue;
	uint32_t total;		/* subscribers over all threads */
	_Atomic uint32_t rr;	/* queues: next subscriber */
	struct rsub *subs[RAW_THREADS_MAX];	/* by owner thread */
	uint32_t nsubs[RAW_THREADS_MAX];
};

struct rconn {
	struct rthread *owner;
	int fd;
	bool dirty;		/* on owner->dirty (owner->lock) */
	bool closing;		/* DISCONNECT seen: close once the output is written */
	bool out_armed;		/* EPOLLOUT registered (owner) */
	struct rconn *dirty_next;	/* owner->lock */
	struct rconn *flush_next;	/* the batch being written (owner) */
	struct rconn *grave_next;
	struct stomp_parser parser;
	char scratch[512];
	char *part;		/* partial frame (owner) */
	uint32_t part_len;
	/* pending output, appended by any thread under owner->lock */
	char *out;
	size_t out_len;
	size_t out_cap;
	/* being written (owner only) */
	char *wbuf;
	size_t w_off;
	size_t w_len;
	size_t w_cap;
	struct rdest **dests;	/* subscribed to (table write lock) */
	uint32_t ndests;
};

struct relay {
	pthread_rwlock_t tab_lock;
	struct rdest *tab;	/* open addressing, power-of-two size */
	uint32_t tab_cap;
	uint32_t tab_used;
	uint32_t nthreads;
	struct rthread *t;
	_Atomic int quit;	/* set by the main thread once *stop is seen */
};

struct rthread {
	struct relay *r;
	uint32_t idx;
	pthread_t thread;
	int epfd;
	int lfd;
	int evfd;		/* wakes this thread when others queued output for it */
	pthread_mutex_t lock;
	struct rconn *dirty;	/* connections with output to write (lock) */
	bool wake_pending;	/* evfd written, not yet read (lock) */
	struct rconn *grave;	/* closed this pass, freed at its end (owner) */
	char *rbuf;
	struct stomp_frame frame;
	char *tail;
	size_t tail_cap;
	uint64_t msg_seq;
};

/* ---- destination table (tab_lock held) ---- */

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return h;
}

static struct rdest *dest_find(struct relay *r, const char *name, size_t len, bool create);

/* Write lock held. */
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
		memcpy(d, &old[i], sizeof(*d));
		/* subscribers point at their rdest: fix them up */
		for (uint32_t k = 0; k < r->nthreads; k++)
			for (uint32_t s = 0; s < d->nsubs[k]; s++) {
				struct rconn *c = d->subs[k][s].c;

				for (uint32_t j = 0; j < c->ndests; j++)
					if (c->dests[j] == &old[i])
						c->dests[j] = d;
			}
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

/* owner->lock held. */
static void mark_dirty(struct rconn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->dirty_next = c->owner->dirty;
		c->owner->dirty = c;
	}
}

/* owner->lock held: room for n bytes of pending output. */
static char *out_reserve(struct rconn *c, size_t n)
{
	if (c->out_len + n > c->out_cap) {
		while (c->out_len + n > c->out_cap)
			c->out_cap = c->out_cap ? c->out_cap * 2 : 16384;
		c->out = hd_realloc(c->out, c->out_cap);
	}
	mark_dirty(c);
	return c->out + c->out_len;
}

/* A reply to c from its own thread. */
static void send_frame(struct rconn *c, enum stomp_cmd cmd, const struct stomp_header *h, size_t nh)
{
	char *p;
	ssize_t n;

	pthread_mutex_lock(&c->owner->lock);
	p = out_reserve(c, 1024);
	n = stomp_encode_frame(p, 1024, STOMP_V12, cmd, h, nh, NULL, 0, false);
	if (n > 0)
		c->out_len += (size_t)n;
	pthread_mutex_unlock(&c->owner->lock);
}

static void maybe_receipt(struct rconn *c, const struct stomp_frame *f)
{
	const struct stomp_view *v = stomp_frame_header(f, "receipt");
	struct stomp_header h[1];

	if (!v)
		return;
	h[0].name = (struct stomp_view){ "receipt-id", 10 };
	h[0].value = *v;
	send_frame(c, STOMP_CMD_RECEIPT, h, 1);
}

/* ---- frames ---- */

/* The owner's lock of s->c is held. */
static void deliver(struct rthread *t, struct rsub *s, size_t tail_len)
{
	char id[24];
	int id_len = snprintf(id, sizeof(id), "%u-%llu", t->idx, (unsigned long long)++t->msg_seq);
	size_t head_cap = STOMP_MESSAGE_HEAD_MAX(s->id_len, (size_t)id_len, 0);
	char *p = out_reserve(s->c, head_cap + tail_len);
	ssize_t n = stomp_encode_message_head(p, head_cap, STOMP_V12,
					      (struct stomp_view){ s->id, s->id_len },
					      (struct stomp_view){ id, (size_t)id_len },
					      (struct stomp_view){ "", 0 }, false);

	if (n <= 0)
		return;
	memcpy(p + n, t->tail, tail_len);
	s->c->out_len += (size_t)n + tail_len;
}

/* Wakes thread k after output was queued for it (at most one eventfd write per pass). */
static void wake(struct rthread *t, struct rthread *k)
{
	bool was;

	if (k == t)
		return;
	pthread_mutex_lock(&k->lock);
	was = k->wake_pending;
	k->wake_pending = true;
	pthread_mutex_unlock(&k->lock);
	if (!was) {
		uint64_t one = 1;

		if (write(k->evfd, &one, sizeof(one)) < 0)
			return;
	}
}

/* Delivers to subscribers [from, to) of thread k's list for d. */
static void deliver_range(struct rthread *t, struct rdest *d, uint32_t k, uint32_t from,
			  uint32_t to, size_t tail_len)
{
	struct rthread *owner = &t->r->t[k];

	pthread_mutex_lock(&owner->lock);
	for (uint32_t i = from; i < to; i++)
		deliver(t, &d->subs[k][i], tail_len);
	pthread_mutex_unlock(&owner->lock);
	wake(t, owner);
}

/* Table read lock held. */
static void fan_out(struct rthread *t, struct rdest *d, size_t tail_len)
{
	if (d->is_queue) {
		uint32_t n = atomic_fetch_add_explicit(&d->rr, 1, memory_order_relaxed) % d->total;

		for (uint32_t k = 0; k < t->r->nthreads; k++) {
			if (n < d->nsubs[k]) {
				deliver_range(t, d, k, n, n + 1, tail_len);
				return;
			}
			n -= d->nsubs[k];
		}
		return;
	}
	for (uint32_t k = 0; k < t->r->nthreads; k++)
		if (d->nsubs[k])
			deliver_range(t, d, k, 0, d->nsubs[k], tail_len);
}

static void on_send(struct rthread *t, const struct stomp_frame *f)
{
	const struct stomp_view *dv = stomp_frame_header(f, "destination");
	struct relay *r = t->r;
	struct rdest *d;
	size_t need;
	ssize_t n;

	if (!dv)
		return;
	need = f->body.len + 2 * dv->len + 64;
	if (need > t->tail_cap) {
		t->tail_cap = need * 2;
		t->tail = hd_realloc(t->tail, t->tail_cap);
	}
	n = stomp_encode_message_tail(t->tail, t->tail_cap, STOMP_V12, *dv, NULL, 0, f->body.ptr,
				      f->body.len);
	if (n <= 0)
		return;
	pthread_rwlock_rdlock(&r->tab_lock);
	d = dest_find(r, dv->ptr, dv->len, false);
	if (d && d->total)
		fan_out(t, d, (size_t)n);
	pthread_rwlock_unlock(&r->tab_lock);
}

static void on_subscribe(struct rthread *t, struct rconn *c, const struct stomp_frame *f)
{
	const struct stomp_view *dv = stomp_frame_header(f, "destination");
	const struct stomp_view *id = stomp_frame_header(f, "id");
	struct relay *r = t->r;
	struct rdest *d;
	struct rsub *s;
	uint32_t k = t->idx;

	if (!dv)
		return;
	pthread_rwlock_wrlock(&r->tab_lock);
	d = dest_find(r, dv->ptr, dv->len, true);
	d->subs[k] = hd_realloc(d->subs[k], (d->nsubs[k] + 1) * sizeof(*d->subs[k]));
	s = &d->subs[k][d->nsubs[k]++];
	d->total++;
	s->c = c;
	s->id_len = id ? (uint32_t)HD_MIN(id->len, sizeof(s->id)) : 0;
	memcpy(s->id, id ? id->ptr : "", s->id_len);
	c->dests = hd_realloc(c->dests, (c->ndests + 1) * sizeof(*c->dests));
	c->dests[c->ndests++] = d;
	pthread_rwlock_unlock(&r->tab_lock);
}

static void on_frame(struct rthread *t, struct rconn *c, const struct stomp_frame *f)
{
	static const struct stomp_header connected[2] = {
		{ { "version", 7 }, { "1.2", 3 } },
		{ { "heart-beat", 10 }, { "0,0", 3 } },
	};

	switch (f->cmd) {
	case STOMP_CMD_SEND:
		on_send(t, f);
		break;
	case STOMP_CMD_CONNECT:
	case STOMP_CMD_STOMP:
		send_frame(c, STOMP_CMD_CONNECTED, connected, 2);
		stomp_parser_set_version(&c->parser, STOMP_V12);
		break;
	case STOMP_CMD_SUBSCRIBE:
		on_subscribe(t, c, f);
		break;
	case STOMP_CMD_DISCONNECT:
		c->closing = true;
		pthread_mutex_lock(&t->lock);
		mark_dirty(c);
		pthread_mutex_unlock(&t->lock);
		break;
	default:
		break;
	}
	maybe_receipt(c, f);
}

/* ---- connections (owner thread) ---- */

static void conn_close(struct rthread *t, struct rconn *c)
{
	if (c->fd < 0)
		return;
	/* once out of the table no other thread can reach c */
	pthread_rwlock_wrlock(&t->r->tab_lock);
	for (uint32_t i = 0; i < c->ndests; i++) {
		struct rdest *d = c->dests[i];

		for (uint32_t s = 0; s < d->nsubs[t->idx]; s++) {
			if (d->subs[t->idx][s].c == c) {
				d->subs[t->idx][s] = d->subs[t->idx][--d->nsubs[t->idx]];
				d->total--;
				break;
			}
		}
	}
	pthread_rwlock_unlock(&t->r->tab_lock);
	close(c->fd);
	c->fd = -1;
	/* freed after this pass: it may still be on the dirty list */
	c->grave_next = t->grave;
	t->grave = c;
}

static void conn_free(struct rconn *c)
{
	hd_free(c->dests);
	hd_free(c->part);
	hd_free(c->out);
	hd_free(c->wbuf);
	hd_free(c);
}

static void conn_read(struct rthread *t, struct rconn *c)
{
	size_t have = c->part_len;
	size_t off = 0;
	ssize_t n;

	if (have)
		memcpy(t->rbuf, c->part, have);
	n = read(c->fd, t->rbuf + have, RBUF_CAP - have);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(t, c);
		return;
	}
	n += (ssize_t)have;
	while (off < (size_t)n) {
		ssize_t k = stomp_parse(&c->parser, t->rbuf + off, (size_t)n - off, &t->frame);

		if (k == 0)
			break;
		if (k < 0) {
			conn_close(t, c);
			return;
		}
		off += (size_t)k;
		if (t->frame.cmd != STOMP_CMD_NONE)
			on_frame(t, c, &t->frame);
	}
	if ((size_t)n - off >= RBUF_CAP / 2) {
		conn_close(t, c);	/* a frame this big is not what the relay is for */
		return;
	}
	c->part = hd_realloc(c->part, (size_t)n - off + 1);
	memcpy(c->part, t->rbuf + off, (size_t)n - off);
	c->part_len = (uint32_t)((size_t)n - off);
}

/* t->lock held: takes c's pending output as the buffer to write, when that one is done. */
static void take_output(struct rconn *c)
{
	char *b;
	size_t cap;

	if (c->w_off != c->w_len || !c->out_len)
		return;
	b = c->wbuf;
	cap = c->w_cap;
	c->wbuf = c->out;
	c->w_cap = c->out_cap;
	c->w_len = c->out_len;
	c->w_off = 0;
	c->out = b;
	c->out_cap = cap;
	c->out_len = 0;
}

static void conn_write(struct rthread *t, struct rconn *c)
{
	struct epoll_event ev = { .data.ptr = c };
	ssize_t n = 0;
	bool more;

	if (c->w_off != c->w_len)
		n = write(c->fd, c->wbuf + c->w_off, c->w_len - c->w_off);
	if (n > 0)
		c->w_off += (size_t)n;
	else if (n < 0 && errno != EAGAIN && errno != EINTR)
		c->w_off = c->w_len;	/* broken: reading will see the close */
	more = c->w_off != c->w_len;
	if (c->out_armed != more) {
		c->out_armed = more;
		ev.events = EPOLLIN | (more ? EPOLLOUT : 0);
		epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
	if (more && c->w_len - c->w_off > OUT_LIMIT)
		conn_close(t, c);	/* a slow subscriber */
	else if (c->closing && !more && !c->out_len)
		conn_close(t, c);
}

/* Writes every connection with output: swap buffers under the lock, write outside it. */
static void flush(struct rthread *t)
{
	struct rconn *list = NULL;

	/* once off the dirty list, another thread may put c back on it (dirty_next): the
	 * batch is linked through flush_next, which only this thread touches */
	pthread_mutex_lock(&t->lock);
	for (struct rconn *c = t->dirty; c; c = c->dirty_next) {
		c->dirty = false;
		take_output(c);
		c->flush_next = list;
		list = c;
	}
	t->dirty = NULL;
	pthread_mutex_unlock(&t->lock);
	while (list) {
		struct rconn *c = list;

		list = c->flush_next;
		if (c->fd >= 0)
			conn_write(t, c);
	}
}

static void on_accept(struct rthread *t)
{
	for (;;) {
		int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;
		struct rconn *c;
		struct epoll_event ev = { .events = EPOLLIN };

		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = hd_calloc(1, sizeof(*c));
		c->owner = t;
		c->fd = fd;
		stomp_parser_init(&c->parser, NULL, c->scratch, sizeof(c->scratch));
		ev.data.ptr = c;
		epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

/* One pass: handle what is ready, flush every buffer written, free what was closed. */
static void pass(struct rthread *t)
{
	struct epoll_event ev[MAX_EVENTS];
	int n = epoll_wait(t->epfd, ev, MAX_EVENTS, 100);

	for (int i = 0; i < n; i++) {
		struct rconn *c = ev[i].data.ptr;

		if (c == (struct rconn *)t) {
			on_accept(t);
			continue;
		}
		if (!c) {
			uint64_t v;

			if (read(t->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				continue;
			pthread_mutex_lock(&t->lock);
			t->wake_pending = false;
			pthread_mutex_unlock(&t->lock);
			continue;
		}
		if (c->fd >= 0 && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			conn_read(t, c);
		if (c->fd >= 0 && (ev[i].events & EPOLLOUT)) {
			pthread_mutex_lock(&t->lock);
			mark_dirty(c);
			pthread_mutex_unlock(&t->lock);
		}
	}
	flush(t);
	while (t->grave) {
		struct rconn *c = t->grave;

		t->grave = c->grave_next;
		conn_free(c);
	}
}

static void *thread_main(void *arg)
{
	struct rthread *t = arg;

	while (!atomic_load_explicit(&t->r->quit, memory_order_relaxed))
		pass(t);
	return NULL;
}

/* Listens on addr:port with SO_REUSEPORT (port 0: pick; the others then join it). */
static int open_listener(struct rthread *t, struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = t };
	struct epoll_event evw = { .events = EPOLLIN, .data.ptr = NULL };
	int one = 1;

	t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->lfd < 0)
		return -errno;
	setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(t->lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(t->lfd, (struct sockaddr *)sa, sizeof(*sa)) || listen(t->lfd, 4096) ||
	    getsockname(t->lfd, (struct sockaddr *)sa, &len))
		return -errno;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->lfd, &ev);
	epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &evw);
	return 0;
}

int bench_raw_run(const struct bench_cfg *cfg, volatile sig_atomic_t *stop)
{
	struct relay r = { 0 };
	sigset_t block;
	sigset_t old;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->raw_port) };
	char ip[INET_ADDRSTRLEN];
	uint32_t started = 0;

	r.nthreads = HD_MAX(1u, HD_MIN(cfg->threads, (uint32_t)RAW_THREADS_MAX));
	r.t = hd_calloc(r.nthreads, sizeof(*r.t));
	pthread_rwlock_init(&r.tab_lock, NULL);
	if (inet_pton(AF_INET, cfg->raw_bind, &sa.sin_addr) != 1) {
		fprintf(stderr, "herald-bench raw-server: bad --bind\n");
		return 1;
	}
	for (uint32_t i = 0; i < r.nthreads; i++) {
		struct rthread *t = &r.t[i];
		int err;

		t->r = &r;
		t->idx = i;
		t->rbuf = hd_alloc(RBUF_CAP);
		pthread_mutex_init(&t->lock, NULL);
		err = open_listener(t, &sa);
		if (err) {
			fprintf(stderr, "herald-bench raw-server: listen: %s\n", strerror(-err));
			return 1;
		}
	}
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	fprintf(stderr, "listening proto=stomp addr=%s:%u threads=%u\n", ip, ntohs(sa.sin_port),
		r.nthreads);
	/* signals go to this thread only: it turns them into r.quit */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (; started < r.nthreads; started++)
		if (pthread_create(&r.t[started].thread, NULL, thread_main, &r.t[started]))
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	while (!*stop && started == r.nthreads)
		usleep(50000);
	atomic_store_explicit(&r.quit, 1, memory_order_relaxed);
	for (uint32_t i = 0; i < started; i++)
		pthread_join(r.t[i].thread, NULL);
	for (uint32_t i = 0; i < r.nthreads; i++) {
		close(r.t[i].lfd);
		close(r.t[i].epfd);
		close(r.t[i].evfd);
	}
	return started == r.nthreads ? 0 : 1;
}
