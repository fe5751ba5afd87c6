/*
 * net/loop_epoll.c - the epoll backend, for where io_uring is blocked (Docker's and
 * Kubernetes' default seccomp profiles, kernel.io_uring_disabled): level-triggered epoll,
 * accept4, recv into one per-loop buffer, sendmsg of the same iovecs the io_uring backend
 * sends. A sendmsg's result is handed back on the next run_once, as a completion would be,
 * so loop.c sees the same order of events from both backends. A connection is registered
 * only while it wants something (input, or room for a blocked send): a paused connection
 * whose peer hung up must not wake the loop on every turn.
 *
 * Owner: the loop's thread.
 */
#include "net/loop_backend.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

enum ep_kind { EP_LISTENER = 1, EP_EVENTFD, EP_CONN };

#define EP_BATCH 256		/* events taken per wait */
#define ACCEPTS_PER_EVENT 64	/* connections accepted per listener event */
#define ACCEPT_RETRY_MS 100	/* out of descriptors: try the listeners again after this */
#define READ_BUF_MIN 65536	/* bytes read per recv at most */

struct net_epoll {
	int epfd;
	char *rbuf;
	size_t rbuf_cap;
	struct net_conn **done;		/* sends finished this turn, handed back in order */
	uint32_t ndone;
	uint32_t done_cap;
	uint64_t listen_retry_ms;	/* listeners off until then (accept ran out of fds) */
	bool listeners_off;
	struct epoll_event events[EP_BATCH];
};

static inline uint64_t pack(enum ep_kind kind, uint32_t slot, uint32_t gen)
{
	return (uint64_t)kind << 56 | (uint64_t)(slot & 0xffffff) << 32 | gen;
}

static inline enum ep_kind tag_kind(uint64_t t) { return (enum ep_kind)(t >> 56); }
static inline uint32_t tag_slot(uint64_t t) { return (uint32_t)(t >> 32) & 0xffffff; }
static inline uint32_t tag_gen(uint64_t t) { return (uint32_t)t; }

static int ctl(struct net_loop *l, int op, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(l->epoll->epfd, op, fd, &ev) ? -errno : 0;
}

/* Registers what c wants now: input while armed, room while a send waits. */
static void conn_update(struct net_loop *l, struct net_conn *c)
{
	uint32_t want = (c->recv_armed ? EPOLLIN | EPOLLRDHUP : 0) |
			(c->send && c->send->waiting ? EPOLLOUT : 0);
	int op;

	if (want == c->poll_events)
		return;
	if (!want)
		op = EPOLL_CTL_DEL;
	else
		op = c->poll_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (ctl(l, op, c->fd, want, pack(EP_CONN, c->slot, c->gen)))
		hd_log_conn(HD_LOG_WARN, c->id, "epoll_ctl: %s", strerror(errno));
	c->poll_events = want;
}

static int epoll_init(struct net_loop *l)
{
	struct net_epoll *e = hd_calloc(1, sizeof(*e));

	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		int err = -errno;

		hd_free(e);
		return err;
	}
	e->rbuf_cap = l->cfg.buf_size > READ_BUF_MIN ? l->cfg.buf_size : READ_BUF_MIN;
	e->rbuf = hd_alloc(e->rbuf_cap);
	l->epoll = e;
	return 0;
}

static void epoll_fini(struct net_loop *l)
{
	struct net_epoll *e = l->epoll;

	close(e->epfd);
	hd_free(e->rbuf);
	hd_free(e->done);
	hd_free(e);
	l->epoll = NULL;
}

/* ---- accept ---- */

static void listener_add(struct net_loop *l, int idx)
{
	if (ctl(l, EPOLL_CTL_ADD, l->listen_fd[idx], EPOLLIN, pack(EP_LISTENER, (uint32_t)idx, 0)))
		hd_log_warn("epoll_ctl listener: %s", strerror(errno));
}

static void listeners_off(struct net_loop *l)
{
	for (int i = 0; i < l->nlisten; i++)
		ctl(l, EPOLL_CTL_DEL, l->listen_fd[i], 0, 0);
	l->epoll->listeners_off = true;
	l->epoll->listen_retry_ms = hd_now_ms() + ACCEPT_RETRY_MS;
}

static void epoll_stop_accepting(struct net_loop *l)
{
	for (int i = 0; i < l->nlisten; i++) {
		if (!l->epoll->listeners_off)
			ctl(l, EPOLL_CTL_DEL, l->listen_fd[i], 0, 0);
		close(l->listen_fd[i]);
	}
	l->epoll->listeners_off = false;
}

static void on_listener(struct net_loop *l, int idx)
{
	for (int n = 0; n < ACCEPTS_PER_EVENT && l->accepting; n++) {
		int fd = accept4(l->listen_fd[idx], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			net_loop_accepted(l, idx, fd);
			continue;
		}
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return;
		hd_log_warn("accept failed: %s", strerror(errno));
		/* out of descriptors or memory: a level-triggered listener would wake us on
		 * every turn, so it rests a moment */
		listeners_off(l);
		return;
	}
}

/* ---- receive ---- */

static void epoll_arm_recv(struct net_loop *l, struct net_conn *c)
{
	c->recv_armed = true;
	conn_update(l, c);
}

static void epoll_cancel_recv(struct net_loop *l, struct net_conn *c)
{
	c->recv_armed = false;
	conn_update(l, c);
}

static void on_readable(struct net_loop *l, struct net_conn *c)
{
	struct net_epoll *e = l->epoll;
	ssize_t n = recv(c->fd, e->rbuf, e->rbuf_cap, 0);

	if (n > 0) {
		net_loop_input(l, c, e->rbuf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* the receive is over: the peer's FIN, or an error */
	epoll_cancel_recv(l, c);
	if (c->state == NET_CONN_CLOSING) {
		net_loop_maybe_free(l, c);
		return;
	}
	net_loop_recv_ended(l, c, n < 0 ? -errno : 0);
}

/* ---- send ---- */

static void done_push(struct net_epoll *e, struct net_conn *c)
{
	if (e->ndone == e->done_cap) {
		e->done_cap = e->done_cap ? e->done_cap * 2 : 64;
		e->done = hd_realloc(e->done, e->done_cap * sizeof(*e->done));
	}
	e->done[e->ndone++] = c;
}

static void try_send(struct net_loop *l, struct net_conn *c, struct net_send_ctx *s)
{
	ssize_t n = sendmsg(c->fd, &s->msg, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		s->waiting = true;	/* retried when the socket has room */
		conn_update(l, c);
		return;
	}
	s->res = n < 0 ? -errno : (int)n;
	if (s->waiting) {
		s->waiting = false;
		conn_update(l, c);
	}
	done_push(l->epoll, c);
}

static void epoll_start_send(struct net_loop *l, struct net_conn *c, struct net_send_ctx *s)
{
	try_send(l, c, s);
}

/* The sends that finished, handed back as completions; loop.c may start new ones. */
static unsigned done_flush(struct net_loop *l)
{
	struct net_epoll *e = l->epoll;
	unsigned n = 0;

	for (uint32_t i = 0; i < e->ndone; i++, n++) {
		struct net_conn *c = e->done[i];

		net_loop_sent(l, c, c->send->res);
	}
	e->ndone = 0;
	return n;
}

/* ---- wake-ups and the wait ---- */

static int epoll_watch_eventfd(struct net_loop *l)
{
	return ctl(l, EPOLL_CTL_ADD, l->eventfd, EPOLLIN, pack(EP_EVENTFD, 0, 0));
}

static void on_eventfd(struct net_loop *l)
{
	uint64_t val;

	while (read(l->eventfd, &val, sizeof(val)) < 0 && errno == EINTR)
		;
	if (l->cb.on_wake)
		l->cb.on_wake(l->ctx);
}

static void on_conn_event(struct net_loop *l, uint64_t tag, uint32_t events)
{
	struct net_conn *c = net_loop_conn_any(l, tag_slot(tag), tag_gen(tag));

	if (!c)
		return;	/* freed (and maybe reused) earlier in this batch */
	if (c->send && c->send->waiting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		try_send(l, c, c->send);
	if (c->recv_armed && (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) &&
	    net_loop_conn_any(l, tag_slot(tag), tag_gen(tag)))
		on_readable(l, c);
}

static unsigned epoll_run_once(struct net_loop *l, uint32_t timeout_ms)
{
	struct net_epoll *e = l->epoll;
	int n;

	if (e->ndone)
		timeout_ms = 0;	/* completions are waiting to be handed back */
	if (e->listeners_off && timeout_ms > ACCEPT_RETRY_MS)
		timeout_ms = ACCEPT_RETRY_MS;
	n = epoll_wait(e->epfd, e->events, EP_BATCH, (int)timeout_ms);
	l->now_ms = hd_now_ms();
	for (int i = 0; i < n; i++) {
		uint64_t tag = e->events[i].data.u64;

		switch (tag_kind(tag)) {
		case EP_LISTENER:
			on_listener(l, (int)tag_slot(tag));
			break;
		case EP_EVENTFD:
			on_eventfd(l);
			break;
		case EP_CONN:
			on_conn_event(l, tag, e->events[i].events);
			break;
		}
	}
	if (e->listeners_off && l->accepting && l->now_ms >= e->listen_retry_ms) {
		e->listeners_off = false;
		for (int i = 0; i < l->nlisten; i++)
			listener_add(l, i);
	}
	return (unsigned)(n > 0 ? n : 0) + done_flush(l);
}

const struct net_backend net_backend_epoll = {
	.name = "epoll",
	.init = epoll_init,
	.fini = epoll_fini,
	.add_listener = listener_add,
	.stop_accepting = epoll_stop_accepting,
	.watch_eventfd = epoll_watch_eventfd,
	.arm_recv = epoll_arm_recv,
	.cancel_recv = epoll_cancel_recv,
	.start_send = epoll_start_send,
	.run_once = epoll_run_once,
};
