/*
 * net/loop_uring.c - the io_uring backend, as liburing's examples do it: multishot accept
 * and receive over a provided buffer ring (re-armed when a completion lacks
 * IORING_CQE_F_MORE; -ENOBUFS means refill then re-arm), one sendmsg per connection per
 * loop turn, user_data packing op kind, slot and generation so a completion for a reused
 * slot is recognised (liburing's proxy.h packs its fields).
 *
 * Owner: the loop's thread (IORING_SETUP_SINGLE_ISSUER). Invariant: a connection's memory
 * (outbound blocks, rx buffer) is freed only when no operation of it is in flight.
 */
#include "net/loop_backend.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"
#include "net/uring_compat.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum uring_op {
	OP_ACCEPT = 1,
	OP_RECV,
	OP_SEND,
	OP_EVENTFD,
	OP_CANCEL,	/* completions of cancel requests: ignored */
};

#define BGID 0

struct net_uring {
	struct io_uring ring;
	struct io_uring_buf_ring *br;	/* provided receive buffers, registered by hand */
	char *bufs;
	uint32_t br_pending;		/* buffers re-added, not yet advanced */
	uint64_t eventfd_val;
};

static inline uint64_t pack_ud(enum uring_op op, uint32_t slot, uint32_t gen)
{
	return (uint64_t)op << 56 | (uint64_t)(slot & 0xffffff) << 32 | gen;
}

static inline enum uring_op ud_op(uint64_t ud) { return (enum uring_op)(ud >> 56); }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xffffff; }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)ud; }

static struct io_uring_sqe *get_sqe(struct net_loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->uring->ring);

	if (HD_UNLIKELY(!sqe)) {
		/* SQ full: hand the batch to the kernel and take a fresh slot */
		io_uring_submit(&l->uring->ring);
		sqe = io_uring_get_sqe(&l->uring->ring);
		HD_ASSERT(sqe);
	}
	return sqe;
}

static int bufring_setup(struct net_loop *l)
{
	struct net_uring *u = l->uring;
	size_t ring_bytes = l->cfg.buf_count * sizeof(struct io_uring_buf);
	struct io_uring_buf_reg reg = { 0 };
	int err;

	u->br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (u->br == MAP_FAILED)
		return -errno;
	u->bufs = hd_alloc((size_t)l->cfg.buf_count * l->cfg.buf_size);
	reg.ring_addr = (unsigned long)u->br;
	reg.ring_entries = l->cfg.buf_count;
	reg.bgid = BGID;
	err = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (err) {
		munmap(u->br, ring_bytes);
		hd_free(u->bufs);
		return err;
	}
	io_uring_buf_ring_init(u->br);
	for (uint32_t i = 0; i < l->cfg.buf_count; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * l->cfg.buf_size, l->cfg.buf_size,
				      (unsigned short)i, io_uring_buf_ring_mask(l->cfg.buf_count), (int)i);
	io_uring_buf_ring_advance(u->br, (int)l->cfg.buf_count);
	return 0;
}

static void bufring_return(struct net_loop *l, uint32_t bid)
{
	struct net_uring *u = l->uring;

	io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * l->cfg.buf_size, l->cfg.buf_size,
			      (unsigned short)bid, io_uring_buf_ring_mask(l->cfg.buf_count),
			      (int)u->br_pending);
	u->br_pending++;
}

static int uring_init(struct net_loop *l)
{
	struct io_uring_params p = { 0 };
	struct net_uring *u = hd_calloc(1, sizeof(*u));
	int err;

	l->uring = u;
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	p.flags |= IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
	err = io_uring_queue_init_params(l->cfg.ring_entries, &u->ring, &p);
	if (err) {
		/* older kernels: fall back to a plain ring */
		memset(&p, 0, sizeof(p));
		err = io_uring_queue_init_params(l->cfg.ring_entries, &u->ring, &p);
	}
	if (!err) {
		err = bufring_setup(l);
		if (err)
			io_uring_queue_exit(&u->ring);
	}
	if (err) {
		hd_free(u);
		l->uring = NULL;
	}
	return err;
}

static void uring_fini(struct net_loop *l)
{
	struct net_uring *u = l->uring;

	io_uring_queue_exit(&u->ring);
	munmap(u->br, l->cfg.buf_count * sizeof(struct io_uring_buf));
	hd_free(u->bufs);
	hd_free(u);
	l->uring = NULL;
}

static void uring_arm_recv(struct net_loop *l, struct net_conn *c)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, pack_ud(OP_RECV, c->slot, c->gen));
	c->recv_armed = true;
}

/* The multishot receive ends with a completion (-ECANCELED) that clears recv_armed. */
static void uring_cancel_recv(struct net_loop *l, struct net_conn *c)
{
	struct io_uring_sqe *sqe;

	if (!c->recv_armed)
		return;
	sqe = get_sqe(l);
	io_uring_prep_cancel64(sqe, pack_ud(OP_RECV, c->slot, c->gen), 0);
	io_uring_sqe_set_data64(sqe, pack_ud(OP_CANCEL, 0, 0));
}

static void on_recv(struct net_loop *l, struct net_conn *c, struct io_uring_cqe *cqe)
{
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		if (cqe->res > 0)
			net_loop_input(l, c, l->uring->bufs + (size_t)bid * l->cfg.buf_size,
				       (size_t)cqe->res);
		bufring_return(l, bid);
	}
	if (!more)
		c->recv_armed = false;
	if (c->state == NET_CONN_CLOSING) {
		net_loop_maybe_free(l, c);
		return;
	}
	if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED)) {
		net_loop_recv_ended(l, c, cqe->res);
		return;
	}
	/* ended by a cancel (paused), or out of buffers: again, unless paused */
	if (!more && c->state == NET_CONN_OPEN && !c->recv_paused)
		uring_arm_recv(l, c);
}

static void arm_accept(struct net_loop *l, int idx)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	io_uring_prep_multishot_accept(sqe, l->listen_fd[idx], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, pack_ud(OP_ACCEPT, (uint32_t)idx, 0));
}

static void uring_stop_accepting(struct net_loop *l)
{
	for (int i = 0; i < l->nlisten; i++) {
		struct io_uring_sqe *sqe = get_sqe(l);

		io_uring_prep_cancel64(sqe, pack_ud(OP_ACCEPT, (uint32_t)i, 0), 0);
		io_uring_sqe_set_data64(sqe, pack_ud(OP_CANCEL, 0, 0));
	}
}

static void on_accept(struct net_loop *l, uint32_t idx, struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE) && l->accepting)
		arm_accept(l, (int)idx);
	if (!l->accepting && cqe->res >= 0) {
		close(cqe->res);
		return;
	}
	if (cqe->res < 0) {
		if (cqe->res != -ECANCELED)
			hd_log_warn("accept failed: %s", strerror(-cqe->res));
		if (!l->accepting && !(cqe->flags & IORING_CQE_F_MORE))
			close(l->listen_fd[idx]);
		return;
	}
	net_loop_accepted(l, (int)idx, cqe->res);
}

static void uring_start_send(struct net_loop *l, struct net_conn *c, struct net_send_ctx *s)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	io_uring_prep_sendmsg(sqe, c->fd, &s->msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, pack_ud(OP_SEND, c->slot, c->gen));
}

static void arm_eventfd(struct net_loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	io_uring_prep_read(sqe, l->eventfd, &l->uring->eventfd_val, sizeof(l->uring->eventfd_val), 0);
	io_uring_sqe_set_data64(sqe, pack_ud(OP_EVENTFD, 0, 0));
}

static int uring_watch_eventfd(struct net_loop *l)
{
	arm_eventfd(l);
	return 0;
}

static void dispatch(struct net_loop *l, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct net_conn *c;

	switch (ud_op(ud)) {
	case OP_ACCEPT:
		on_accept(l, ud_slot(ud), cqe);
		return;
	case OP_EVENTFD:
		arm_eventfd(l);
		if (l->cb.on_wake)
			l->cb.on_wake(l->ctx);
		return;
	case OP_CANCEL:
		return;
	case OP_RECV:
	case OP_SEND:
		break;
	}
	c = net_loop_conn_any(l, ud_slot(ud), ud_gen(ud));
	if (!c) {
		/* a completion for a freed slot can only be a buffer to hand back */
		if (cqe->flags & IORING_CQE_F_BUFFER)
			bufring_return(l, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		return;
	}
	if (ud_op(ud) == OP_RECV)
		on_recv(l, c, cqe);
	else
		net_loop_sent(l, c, cqe->res);
}

static unsigned uring_run_once(struct net_loop *l, uint32_t timeout_ms)
{
	struct net_uring *u = l->uring;
	struct io_uring_cqe *cqe;
	unsigned head;
	unsigned n = 0;

	if (timeout_ms) {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
		};

		io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
	} else {
		io_uring_submit_and_get_events(&u->ring);
	}
	/* callbacks see the time the wait ended, not the time it began (maybe a second ago) */
	l->now_ms = hd_now_ms();
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		dispatch(l, cqe);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
	if (u->br_pending) {
		io_uring_buf_ring_advance(u->br, (int)u->br_pending);
		u->br_pending = 0;
	}
	return n;
}

const struct net_backend net_backend_uring = {
	.name = "io_uring",
	.init = uring_init,
	.fini = uring_fini,
	.add_listener = arm_accept,
	.stop_accepting = uring_stop_accepting,
	.watch_eventfd = uring_watch_eventfd,
	.arm_recv = uring_arm_recv,
	.cancel_recv = uring_cancel_recv,
	.start_send = uring_start_send,
	.run_once = uring_run_once,
};

int net_io_uring_probe(void)
{
	struct io_uring ring;
	int err = io_uring_queue_init(2, &ring, 0);

	if (!err)
		io_uring_queue_exit(&ring);
	return err;
}
