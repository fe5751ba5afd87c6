/*
 * net/loop.c - one I/O loop per thread, whichever backend runs it (io_uring: loop_uring.c;
 * epoll: loop_epoll.c): connection slots with generations, input offered to the user with
 * the unconsumed rest kept, outbound queues of inline heads and shared tails sent as one
 * sendmsg per connection per loop turn (NATS's pending-flush list), pausing, and closing
 * (now; after the queue is written; lingering so the last frame is not lost to an RST).
 *
 * Owner: one thread per loop. Invariant: a connection's memory (outbound blocks, rx buffer)
 * is freed only when no operation of it is in flight in the kernel.
 */
#include "net/loop.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"
#include "net/loop_backend.h"
#include "net/tcp_acked.h"
#include "net/tls.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#define LINGER_MS 2000
#define DRAIN_MS 5000		/* a closing peer that reads nothing for this long is dropped */
#define DRAIN_MAX_MS 60000	/* ... and one that reads slowly, after this long */

int net_loop_init(struct net_loop *l, const struct net_loop_config *cfg,
		  const struct net_callbacks *cb, void *ctx)
{
	memset(l, 0, sizeof(*l));
	l->cfg = *cfg;
	l->cb = *cb;
	l->ctx = ctx;
	l->eventfd = -1;
	l->be = cfg->io == NET_IO_EPOLL ? &net_backend_epoll : &net_backend_uring;
	return l->be->init(l);
}

const char *net_loop_backend_name(const struct net_loop *l)
{
	return l->be->name;
}

static void out_release_all(struct net_loop *l, struct net_conn *c);

void net_loop_fini(struct net_loop *l)
{
	if (!l->be)
		return;	/* never initialised (its thread did not start) */
	for (uint32_t i = 0; i < l->nconns_cap; i++) {
		struct net_conn *c = l->conns[i];

		if (!c)
			continue;
		if (c->fd >= 0)
			close(c->fd);
		out_release_all(l, c);
		net_tls_destroy(c->tls);
		hd_free(c->rx);
		hd_free(c->send);
		hd_free(c);
	}
	while (l->block_pool) {
		struct net_outblock *b = l->block_pool;

		l->block_pool = b->next;
		hd_free(b);
	}
	while (l->send_pool) {
		struct net_send_ctx *s = l->send_pool;

		l->send_pool = s->next;
		hd_free(s);
	}
	hd_free(l->conns);
	hd_free(l->free_slots);
	net_tls_ctx_unref(l->tls_ctx);
	hd_free(l->tls_scratch);
	l->be->fini(l);
	l->be = NULL;
}

/* ---- connection slots ---- */

static struct net_conn *conn_alloc(struct net_loop *l, int fd, uint8_t kind)
{
	struct net_conn *c;
	uint32_t slot;

	if (!l->nfree) {
		uint32_t cap = l->nconns_cap ? l->nconns_cap * 2 : 256;

		l->conns = hd_realloc(l->conns, cap * sizeof(*l->conns));
		l->free_slots = hd_realloc(l->free_slots, cap * sizeof(*l->free_slots));
		for (uint32_t i = cap; i > l->nconns_cap; i--) {
			l->conns[i - 1] = NULL;
			l->free_slots[l->nfree++] = i - 1;
		}
		l->nconns_cap = cap;
	}
	slot = l->free_slots[--l->nfree];
	c = l->conns[slot];
	if (!c) {
		c = hd_calloc(1, sizeof(*c));
		l->conns[slot] = c;
		c->slot = slot;
	}
	c->gen++;
	c->fd = fd;
	c->id = ++l->next_id;
	c->kind = kind;
	c->state = NET_CONN_OPEN;
	l->nopen++;
	return c;
}

static void conn_free(struct net_loop *l, struct net_conn *c)
{
	uint32_t gen = c->gen;
	uint32_t slot = c->slot;

	if (c->fd >= 0)
		close(c->fd);
	out_release_all(l, c);
	net_tls_destroy(c->tls);
	hd_free(c->rx);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->slot = slot;
	c->gen = gen + 1;	/* stale completions and xmsg refs no longer match */
	l->free_slots[l->nfree++] = slot;
	l->nopen--;
}

struct net_conn *net_loop_conn_any(struct net_loop *l, uint32_t slot, uint32_t gen)
{
	struct net_conn *c = slot < l->nconns_cap ? l->conns[slot] : NULL;

	return c && c->gen == gen ? c : NULL;
}

struct net_conn *net_loop_conn(struct net_loop *l, uint32_t slot, uint32_t gen)
{
	struct net_conn *c = net_loop_conn_any(l, slot, gen);

	return c && c->state == NET_CONN_OPEN ? c : NULL;
}

static void maybe_free(struct net_loop *l, struct net_conn *c)
{
	if (c->state == NET_CONN_CLOSING && !c->recv_armed && !c->send)
		conn_free(l, c);
}

void net_loop_maybe_free(struct net_loop *l, struct net_conn *c)
{
	maybe_free(l, c);
}

/* ---- receive ---- */

static void arm_recv(struct net_loop *l, struct net_conn *c)
{
	l->be->arm_recv(l, c);
}

static void cancel_recv(struct net_loop *l, struct net_conn *c)
{
	if (c->recv_armed)
		l->be->cancel_recv(l, c);
}

static void rx_append(struct net_conn *c, const char *buf, size_t len)
{
	hd_bytes_append(&c->rx, &c->rx_len, &c->rx_cap, buf, len);
}

/* Bytes from the wire: counted, decrypted when c runs TLS, offered to the user. */
void net_loop_input(struct net_loop *l, struct net_conn *c, const char *buf, size_t len)
{
	l->bytes_in += len;
	c->rx_total += len;
	if (c->tls)
		net_tls_input(l, c, buf, len);
	else
		net_loop_deliver(l, c, buf, len);
}

/* Offers input to the user; keeps what it did not consume. */
void net_loop_deliver(struct net_loop *l, struct net_conn *c, const char *buf, size_t len)
{
	size_t used;

	if (c->recv_paused || c->state != NET_CONN_OPEN) {
		if (c->state == NET_CONN_OPEN)
			rx_append(c, buf, len);
		return;
	}
	if (c->rx_len) {
		rx_append(c, buf, len);
		buf = c->rx;
		len = c->rx_len;
	}
	used = l->cb.on_data(l->ctx, c, buf, len);
	if (c->state != NET_CONN_OPEN)
		return;
	if (buf == c->rx) {
		memmove(c->rx, c->rx + used, len - used);
		c->rx_len = (uint32_t)(len - used);
	} else if (used < len) {
		rx_append(c, buf + used, len - used);
	}
	if (c->rx_len > l->cfg.max_rx_partial) {
		hd_log_conn(HD_LOG_WARN, c->id, "partial input over %u bytes, closing",
			    l->cfg.max_rx_partial);
		net_conn_close(l, c);
	} else if (!c->rx_len && c->rx_cap > 65536) {
		/* a big frame passed through: give the memory back */
		hd_free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
}

void net_loop_recv_ended(struct net_loop *l, struct net_conn *c, int res)
{
	if (c->state == NET_CONN_DRAINING) {
		/* peer closed while we drain: nothing more can be delivered */
		c->peer_closed = true;
		if (!c->send)
			net_conn_close(l, c);
		return;
	}
	if (res == 0 && c->state == NET_CONN_OPEN && l->cb.on_eof && l->cb.on_eof(l->ctx, c))
		return;	/* half-closed: the user writes what it owes, then closes */
	c->peer_closed = true;
	net_conn_close(l, c);
}

void net_conn_pause_recv(struct net_loop *l, struct net_conn *c)
{
	if (c->recv_paused || c->state != NET_CONN_OPEN)
		return;
	c->recv_paused = true;
	cancel_recv(l, c);
}

void net_conn_resume_recv(struct net_loop *l, struct net_conn *c)
{
	if (!c->recv_paused || c->state != NET_CONN_OPEN)
		return;
	c->recv_paused = false;
	if (c->rx_len) {
		/* what arrived while paused is offered first */
		uint32_t n = c->rx_len;
		char *held = hd_alloc(n);

		memcpy(held, c->rx, n);
		c->rx_len = 0;
		net_loop_deliver(l, c, held, n);
		hd_free(held);
		if (c->state != NET_CONN_OPEN || c->recv_paused)
			return;
	}
	if (!c->recv_armed)
		arm_recv(l, c);
}

/* ---- accept ---- */

int net_loop_add_listener(struct net_loop *l, int fd, uint8_t kind)
{
	if (l->nlisten == (int)HD_ARRAY_LEN(l->listen_fd))
		return -ENOSPC;
	l->listen_fd[l->nlisten] = fd;
	l->listen_kind[l->nlisten] = kind;
	l->accepting = true;
	l->be->add_listener(l, l->nlisten);
	l->nlisten++;
	return 0;
}

int net_loop_add_tls_listener(struct net_loop *l, int fd, uint8_t kind)
{
	int err = net_loop_add_listener(l, fd, kind);

	if (!err)
		l->listen_tls[l->nlisten - 1] = true;
	return err;
}

void net_loop_set_tls_ctx(struct net_loop *l, struct net_tls_ctx *ctx)
{
	net_tls_ctx_unref(l->tls_ctx);
	l->tls_ctx = net_tls_ctx_ref(ctx);
}

void net_loop_stop_accepting(struct net_loop *l)
{
	if (!l->accepting)
		return;
	l->accepting = false;
	l->be->stop_accepting(l);
}

enum conn_tls { CONN_PLAIN, CONN_TLS_SERVER, CONN_TLS_CLIENT };

static int conn_start(struct net_loop *l, int fd, uint8_t kind, enum conn_tls tls);

void net_loop_accepted(struct net_loop *l, int idx, int fd)
{
	/* a refused one is logged and closed: the listener goes on */
	(void)conn_start(l, fd, l->listen_kind[idx],
			 l->listen_tls[idx] ? CONN_TLS_SERVER : CONN_PLAIN);
}

void net_loop_adopt(struct net_loop *l, int fd, uint8_t kind)
{
	(void)conn_start(l, fd, kind, CONN_PLAIN);	/* plain: never refused */
}

int net_loop_adopt_tls(struct net_loop *l, int fd, uint8_t kind)
{
	return conn_start(l, fd, kind, CONN_TLS_CLIENT);
}

/* 0, or -ENOMEM when c's TLS state could not be made (fd closed, no on_accept). */
static int conn_start(struct net_loop *l, int fd, uint8_t kind, enum conn_tls tls)
{
	struct net_conn *c;
	socklen_t alen;
	int one = 1;
	struct net_tls *t = NULL;

	if (tls != CONN_PLAIN && !(t = net_tls_create(l, tls == CONN_TLS_CLIENT))) {
		hd_log_warn("TLS connection refused: no TLS context or out of memory");
		close(fd);
		return -ENOMEM;
	}
	c = conn_alloc(l, fd, kind);
	c->tls = t;
	alen = sizeof(c->peer);
	if (getpeername(c->fd, (struct sockaddr *)&c->peer, &alen))
		memset(&c->peer, 0, sizeof(c->peer));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	l->cb.on_accept(l->ctx, c);
	if (c->state != NET_CONN_OPEN) {
		maybe_free(l, c);
		return 0;
	}
	arm_recv(l, c);
	if (t)
		net_tls_start(l, c);
	return 0;
}

/* ---- send ---- */

void net_loop_mark_dirty(struct net_loop *l, struct net_conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = l->dirty;
	l->dirty = c;
}

/* Outbound blocks come from a small per-loop pool: a connection gives its block back each
 * time its queue drains, and fan-out would otherwise free and allocate one per delivery
 * burst (page faults and allocator time showed in profiles). */
static struct net_outblock *block_get(struct net_loop *l)
{
	struct net_outblock *b = l->block_pool;

	if (!b)
		return hd_alloc(sizeof(*b));
	l->block_pool = b->next;
	l->nblock_pool--;
	return b;
}

static void block_put(struct net_loop *l, struct net_outblock *b)
{
	if (l->nblock_pool >= NET_BLOCK_POOL_MAX) {
		hd_free(b);
		return;
	}
	b->next = l->block_pool;
	l->block_pool = b;
	l->nblock_pool++;
}

struct net_out *net_conn_out_reserve(struct net_loop *l, struct net_conn *c)
{
	struct net_outblock *b = c->out_tail;
	struct net_out *o;

	if (!b || b->wr == NET_OUTBLOCK_N) {
		struct net_outblock *nb = block_get(l);

		nb->next = NULL;
		nb->rd = 0;
		nb->wr = 0;
		if (b)
			b->next = nb;
		else
			c->out_head = nb;
		c->out_tail = nb;
		b = nb;
	}
	o = &b->e[b->wr];
	o->head_len = 0;
	o->flags = 0;
	o->tail_len = 0;
	o->tail = NULL;
	o->release = NULL;
	o->release_arg = NULL;
	return o;
}

void net_conn_out_commit(struct net_loop *l, struct net_conn *c, struct net_out *o)
{
	HD_ASSERT(o == &c->out_tail->e[c->out_tail->wr]);
	HD_ASSERT(o->head_len <= NET_OUT_HEAD_CAP);
	c->out_tail->wr++;
	c->out_bytes += o->head_len + o->tail_len;
	net_loop_mark_dirty(l, c);
}

static void release_heap_tail(void *arg)
{
	hd_free(arg);
}

struct net_out *net_conn_write_copy(struct net_loop *l, struct net_conn *c, const char *buf,
				    size_t len)
{
	struct net_out *o = net_conn_out_reserve(l, c);

	if (len <= NET_OUT_HEAD_CAP) {
		memcpy(o->head, buf, len);
		o->head_len = (uint16_t)len;
	} else {
		char *copy = hd_alloc(len);

		memcpy(copy, buf, len);
		o->tail = copy;
		o->tail_len = (uint32_t)len;
		o->release = release_heap_tail;
		o->release_arg = copy;
	}
	net_conn_out_commit(l, c, o);
	return o;
}

void net_conn_drop_unsent(struct net_loop *l, struct net_conn *c)
{
	struct net_outblock *b = NULL;	/* keep entries up to (b, i) inclusive */
	uint32_t i = 0;

	if (c->send && !c->tls) {	/* TLS: what is in flight is ciphertext, off the queue */
		b = c->send->last_block;
		i = c->send->last_index;
	} else if (c->out_head && c->out_head_off) {
		b = c->out_head;
		i = b->rd;
	}
	while (b && (b->e[i].flags & NET_OUT_CONTINUES) && (b->next || i + 1 < b->wr)) {
		if (++i == b->wr && b->next) {
			b = b->next;
			i = b->rd;
		}
	}
	for (struct net_outblock *d = b ? b : c->out_head, *next; d; d = next) {
		uint32_t from = d == b ? i + 1 : d->rd;

		next = d->next;
		for (uint32_t k = from; k < d->wr; k++) {
			c->out_bytes -= d->e[k].head_len + d->e[k].tail_len;
			if (d->e[k].release)
				d->e[k].release(d->e[k].release_arg);
		}
		d->wr = from;
		if (d != b && from == d->rd)
			block_put(l, d);
	}
	if (b) {
		b->next = NULL;
		c->out_tail = b;
	} else {
		c->out_head = c->out_tail = NULL;
		c->out_head_off = 0;
	}
}

static void out_release_all(struct net_loop *l, struct net_conn *c)
{
	struct net_outblock *b = c->out_head;

	while (b) {
		struct net_outblock *next = b->next;

		for (uint32_t i = b->rd; i < b->wr; i++)
			if (b->e[i].release)
				b->e[i].release(b->e[i].release_arg);
		block_put(l, b);
		b = next;
	}
	c->out_head = c->out_tail = NULL;
	c->out_head_off = 0;
	c->out_bytes = 0;
}

void net_send_fill(struct net_conn *c, struct net_send_ctx *s)
{
	uint32_t off = c->out_head_off;
	int n = 0;

	for (struct net_outblock *b = c->out_head; b && n < NET_SEND_IOV_MAX - 1; b = b->next) {
		for (uint32_t i = b->rd; i < b->wr && n < NET_SEND_IOV_MAX - 1; i++) {
			struct net_out *o = &b->e[i];

			s->last_block = b;
			s->last_index = i;
			if (off < o->head_len) {
				s->iov[n].iov_base = o->head + off;
				s->iov[n++].iov_len = o->head_len - off;
				off = 0;
			} else {
				off -= o->head_len;
			}
			if (o->tail_len > off) {
				s->iov[n].iov_base = (char *)o->tail + off;
				s->iov[n++].iov_len = o->tail_len - off;
			}
			off = 0;
		}
	}
	memset(&s->msg, 0, sizeof(s->msg));
	s->msg.msg_iov = s->iov;
	s->msg.msg_iovlen = (size_t)n;
	s->res = 0;
	s->waiting = false;
}

static void start_send(struct net_loop *l, struct net_conn *c)
{
	struct net_send_ctx *s = l->send_pool;

	if (s)
		l->send_pool = s->next;
	else
		s = hd_alloc(sizeof(*s));
	if (c->tls && !net_tls_fill(l, c, s)) {
		s->next = l->send_pool;	/* nothing to write until the handshake is done */
		l->send_pool = s;
		return;
	}
	if (!c->tls)
		net_send_fill(c, s);
	c->send = s;
	l->be->start_send(l, c, s);
}

void net_loop_flush(struct net_loop *l)
{
	struct net_conn *c = l->dirty;

	l->dirty = NULL;
	while (c) {
		struct net_conn *next = c->dirty_next;

		c->dirty = false;
		c->dirty_next = NULL;
		if (!c->send && c->out_bytes && c->state != NET_CONN_CLOSING)
			start_send(l, c);
		c = next;
	}
}

/* Drops `sent` bytes from the front of the queue, releasing finished entries. */
void net_loop_out_consume(struct net_loop *l, struct net_conn *c, size_t sent)
{
	c->out_bytes -= sent;
	sent += c->out_head_off;
	while (c->out_head) {
		struct net_outblock *b = c->out_head;
		struct net_out *o;
		size_t len;

		if (b->rd == b->wr) {
			if (b == c->out_tail) {
				/* queue empty: give the block back, idle connections hold none */
				block_put(l, b);
				c->out_head = c->out_tail = NULL;
				break;
			}
			c->out_head = b->next;
			block_put(l, b);
			continue;
		}
		o = &b->e[b->rd];
		len = (size_t)o->head_len + o->tail_len;
		if (sent < len)
			break;
		sent -= len;
		if (o->release)
			o->release(o->release_arg);
		b->rd++;
		if (b->rd == NET_OUTBLOCK_N) {
			c->out_head = b->next;
			if (!c->out_head)
				c->out_tail = NULL;
			block_put(l, b);
		}
	}
	c->out_head_off = (uint32_t)sent;
}

static void linger_close(struct net_loop *l, struct net_conn *c);

/* True when the peer acknowledged bytes since the last look: it reads, however slowly. (Not
 * the send queue's length: a sendmsg refilling it as the peer reads can hide the progress.) */
static bool peer_read_more(struct net_conn *c)
{
	uint64_t acked;

	if (net_tcp_bytes_acked(c->fd, &acked))
		return false;
	if (acked == c->drain_acked)
		return false;
	c->drain_acked = acked;
	return true;
}

/* A draining peer that reads, however slowly, gets DRAIN_MS more after each write that
 * went out (up to DRAIN_MAX_MS in all): it reads the ERROR that explains the close. One
 * that reads nothing is dropped DRAIN_MS after the close began. */
static void drain_progressed(struct net_conn *c)
{
	uint32_t now = (uint32_t)hd_now_ms();

	if ((int32_t)(now + DRAIN_MS - c->drain_limit_ms) < 0)
		c->close_deadline_ms = now + DRAIN_MS;
}

void net_loop_sent(struct net_loop *l, struct net_conn *c, int res)
{
	struct net_send_ctx *s = c->send;

	if (res > 0) {
		l->bytes_out += (uint64_t)res;
		c->tx_total += (uint64_t)res;
	}
	c->send = NULL;
	s->next = l->send_pool;
	l->send_pool = s;
	if (c->state == NET_CONN_CLOSING) {
		maybe_free(l, c);
		return;
	}
	if (res < 0) {
		if (res == -EAGAIN || res == -EINTR) {
			net_loop_mark_dirty(l, c);
			return;
		}
		c->peer_closed = true;
		net_conn_close(l, c);
		return;
	}
	if (c->tls)
		net_tls_sent(c, (size_t)res);
	else
		net_loop_out_consume(l, c, (size_t)res);
	if (c->state == NET_CONN_DRAINING && res > 0)
		drain_progressed(c);
	if (c->out_bytes) {
		net_loop_mark_dirty(l, c);
		return;
	}
	if (c->state == NET_CONN_DRAINING) {
		if (c->tls && net_tls_close_notify(l, c))
			return;	/* close_notify goes out first (net_tls_close_notify marked c) */
		linger_close(l, c);
		return;
	}
	if (l->cb.on_drain)
		l->cb.on_drain(l->ctx, c);
}

/* ---- close ---- */

void net_conn_close(struct net_loop *l, struct net_conn *c)
{
	bool was_open = c->state == NET_CONN_OPEN;

	if (c->state == NET_CONN_CLOSING)
		return;
	c->state = NET_CONN_CLOSING;
	if (was_open)
		l->cb.on_close(l->ctx, c);
	c->user = NULL;
	cancel_recv(l, c);
	/* wakes an in-flight send or recv so their completions arrive and the slot frees */
	shutdown(c->fd, SHUT_RDWR);
	maybe_free(l, c);
}

void net_conn_close_after_flush(struct net_loop *l, struct net_conn *c)
{
	if (c->state != NET_CONN_OPEN)
		return;
	c->state = NET_CONN_DRAINING;
	c->close_deadline_ms = (uint32_t)hd_now_ms() + DRAIN_MS;
	c->drain_limit_ms = (uint32_t)hd_now_ms() + DRAIN_MAX_MS;
	if (net_tcp_bytes_acked(c->fd, &c->drain_acked))
		c->drain_acked = 0;
	l->cb.on_close(l->ctx, c);
	c->user = NULL;
	if (c->tls && !net_tls_can_send_plain(c))
		net_conn_drop_unsent(l, c);	/* no session to carry it: only an alert goes */
	if (c->tls && !c->send && !c->out_bytes)
		net_tls_close_notify(l, c);	/* queues it, and marks c to send it */
	if (!c->out_bytes && !c->send)
		linger_close(l, c);
	else
		net_loop_mark_dirty(l, c);
}

/* Everything is written: send FIN but keep reading (and discarding) until the peer closes,
 * so unread input does not turn our close into an RST that could destroy the ERROR frame
 * we just sent. The shard's timer closes hard after LINGER_MS (net_loop_reap_lingering). */
static void linger_close(struct net_loop *l, struct net_conn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->state = NET_CONN_CLOSING;
	if (c->peer_closed) {
		maybe_free(l, c);
		return;
	}
	/* reads continue into the bufring and are dropped (state is CLOSING); the peer's
	 * FIN ends the recv, or the linger deadline shuts the socket */
	c->rx_len = 0;
	c->close_deadline_ms = (uint32_t)hd_now_ms() + LINGER_MS;
	/* a paused connection reads again now, only to see the peer's FIN: the completion
	 * that ends that recv is what frees the slot (maybe_free), so one must be armed */
	c->recv_paused = false;
	if (!c->recv_armed)
		arm_recv(l, c);
}

void net_loop_reap_lingering(struct net_loop *l)
{
	uint64_t now64 = hd_now_ms();
	uint32_t now = (uint32_t)now64;

	for (uint32_t i = 0; i < l->nconns_cap; i++) {
		struct net_conn *c = l->conns[i];

		if (c && c->state == NET_CONN_OPEN && net_tls_handshake_expired(c, now64)) {
			net_tls_log_timeout(c);
			net_conn_close(l, c);
			continue;
		}
		if (!c || c->state == NET_CONN_OPEN || c->fd < 0 ||
		    (int32_t)(now - c->close_deadline_ms) <= 0)
			continue;
		if (c->state == NET_CONN_DRAINING && peer_read_more(c)) {
			drain_progressed(c);	/* it reads, only slowly */
			continue;
		}
		if (c->state == NET_CONN_DRAINING) {
			/* the peer does not read what we queued: drop it */
			c->state = NET_CONN_CLOSING;
			cancel_recv(l, c);
			shutdown(c->fd, SHUT_RDWR);
			maybe_free(l, c);
		} else if (c->recv_armed) {
			shutdown(c->fd, SHUT_RDWR);
		}
	}
}

/* ---- wake-ups and the wait ---- */

int net_loop_watch_eventfd(struct net_loop *l, int efd)
{
	l->eventfd = efd;
	return l->be->watch_eventfd(l);
}

unsigned net_loop_run_once(struct net_loop *l, uint32_t timeout_ms)
{
	return l->be->run_once(l, timeout_ms);
}
