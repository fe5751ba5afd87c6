/*
 * core/shard.c - shard threads: creation, pinning, the loop, xmsg dispatch, parking.
 *
 * Every xring has exactly one producer (the shard `from`) and one consumer (`to`); main
 * only creates them and, to stop a shard, sets stop_requested and writes its eventfd.
 */
#include "core/shard.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"
#include "core/hmsg.h"
#include "core/placement.h"
#include "core/replica.h"
#include "net/tls.h"

#include <errno.h>
#include <sched.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define DRAIN_BATCH 256		/* xmsgs popped at a time */
#define DRAIN_BUDGET 4096	/* xmsgs per inbound ring per loop turn */
#define GATHER_ROUNDS 8		/* read/drain rounds per turn at most before writing */
#define GATHER_MIN 32		/* completions + xmsgs in a round that count as "busy" */
#define TICK_MS 20		/* heart-beat and timeout granularity */
#define STOP_GRACE_MS 5000	/* SIGTERM: time allowed to flush before exiting anyway */
#define RING_ENTRIES 4096	/* io_uring submission queue entries */
#define RECV_BUFS 512		/* provided receive buffers (a power of two) ... */
#define RECV_BUF_BYTES 8192	/* ... of this size each */
#define RX_PARTIAL_SLACK 65536	/* a kept partial input may pass max-frame-bytes by this */

_Atomic uint64_t shard_total_connections;
_Atomic uint64_t shard_queue_lease_until_ms = UINT64_MAX;
uint32_t shard_node_epoch;
uint32_t shard_node_tag;
static _Thread_local struct shard *self;

struct shard *shard_self(void)
{
	return self;
}

/* ---- xmsg dispatch: one handler per kind ---- */

static void on_sync(struct shard *sh, const struct xmsg *m)
{
	struct xmsg r = { .kind = XMSG_DONE, .a = m->a, .u32 = m->u32, .b = XERR_OK };

	shard_send(sh, m->from, &r);
}

static void on_topic_interest(struct shard *sh, const struct xmsg *m)
{
	dest_on_topic_interest(sh, m, 0);
}

static void on_pattern_interest(struct shard *sh, const struct xmsg *m)
{
	dest_on_topic_interest(sh, m, 1);
}

static void on_placement(struct shard *sh, const struct xmsg *m)
{
	struct placement *old = sh->placement;

	sh->placement = m->ptr;
	/* queues that moved away go to their new owners; consumers follow their queues */
	dest_on_placement(sh);
	session_on_placement(sh);
	placement_unref(old);
}

static void on_stop_msg(struct shard *sh, const struct xmsg *m)
{
	(void)m;
	atomic_store_explicit(&sh->stop_requested, 1, memory_order_relaxed);
}

typedef void (*xmsg_handler)(struct shard *sh, const struct xmsg *m);

static const xmsg_handler xmsg_handlers[] = {
	[XMSG_PUBLISH] = dest_on_publish,
	[XMSG_TOPIC_INTEREST] = on_topic_interest,
	[XMSG_PATTERN_INTEREST] = on_pattern_interest,
	[XMSG_QUEUE_CONSUMER_ADD] = dest_on_consumer_add,
	[XMSG_QUEUE_CONSUMER_DEL] = dest_on_consumer_del,
	[XMSG_QUEUE_ACK] = dest_on_ack,
	[XMSG_QUEUE_RETURN] = dest_on_return,
	[XMSG_SYNC] = on_sync,
	[XMSG_DONE] = session_on_done,
	[XMSG_TOPIC_DELIVER] = session_on_topic_deliver,
	[XMSG_QUEUE_DELIVER] = session_on_queue_deliver,
	[XMSG_STOP] = on_stop_msg,
	[XMSG_AUTH_JOB] = session_on_auth_done,
	[XMSG_PLACEMENT] = on_placement,
	[XMSG_QUEUE_HANDOVER] = dest_on_handover,
	[XMSG_QUEUE_DROPPED] = session_on_consumer_dropped,
	[XMSG_REPL_SEND] = replica_on_send,
	[XMSG_REPL_OP] = replica_on_op,
};

/* ---- sending and parking ---- */

void shard_forward(struct shard *sh, uint32_t to, const struct xmsg *m)
{
	sh->nparked += xpark_send(&sh->parked[to], sh->out[to], m);
}

void shard_send(struct shard *sh, uint32_t to, const struct xmsg *m)
{
	struct xmsg copy = *m;

	copy.from = (uint16_t)sh->id;
	shard_forward(sh, to, &copy);
}

void xmsg_drop(const struct xmsg *m)
{
	switch (m->kind) {
	case XMSG_PUBLISH:
	case XMSG_TOPIC_DELIVER:
	case XMSG_QUEUE_DELIVER:
	case XMSG_QUEUE_RETURN:
	case XMSG_QUEUE_HANDOVER:
	case XMSG_REPL_SEND:
		hmsg_unref(m->ptr);
		break;
	case XMSG_PLACEMENT:
		placement_unref(m->ptr);
		break;
	default:
		hd_free(m->ptr);	/* names, consumers, auth jobs (NULL for the rest) */
		break;
	}
}

static void unpark_all(struct shard *sh)
{
	for (uint32_t to = 0; to < sh->nendpoints; to++)
		sh->nparked -= xpark_flush(&sh->parked[to], sh->out[to]);
}

/* ---- the loop ---- */

static void cb_accept(void *ctx, struct net_conn *c)
{
	struct shard *sh = ctx;

	sh->now_ms = sh->loop.now_ms;
	session_on_accept(sh, c);
}

static size_t cb_data(void *ctx, struct net_conn *c, const char *buf, size_t len)
{
	struct shard *sh = ctx;

	sh->now_ms = sh->loop.now_ms;
	return session_on_data(sh, c, buf, len);
}

static void cb_close(void *ctx, struct net_conn *c)
{
	session_on_close(ctx, c);
}

static bool cb_eof(void *ctx, struct net_conn *c)
{
	return session_on_eof(ctx, c);
}

static void cb_drain(void *ctx, struct net_conn *c)
{
	session_on_drain(ctx, c);
}

static void cb_wake(void *ctx)
{
	(void)ctx;	/* the loop drains every inbound xring after each wait anyway */
}

static const struct net_callbacks shard_net_callbacks = {
	.on_accept = cb_accept,
	.on_data = cb_data,
	.on_close = cb_close,
	.on_drain = cb_drain,
	.on_eof = cb_eof,
	.on_wake = cb_wake,
};

static bool inbound_pending(struct shard *sh)
{
	if (sh->auth_in && xring_has_items(sh->auth_in))
		return true;
	for (uint32_t i = 0; i < sh->nendpoints; i++)
		if (xring_has_items(sh->in[i]))
			return true;
	return false;
}

bool shard_send_auth(struct shard *sh, const struct xmsg *m)
{
	struct xmsg copy = *m;

	copy.from = (uint16_t)sh->id;
	return sh->auth_out && !xring_push(sh->auth_out, &copy);
}

/* Something was handed over: the shard takes it at its next loop turn, now if asleep. */
static void wake_for_hand_over(struct shard *sh)
{
	uint64_t one = 1;

	if (write(sh->wake.eventfd, &one, sizeof(one)) < 0)
		hd_log_warn("cannot wake shard %u", sh->id);
}

void shard_publish_auth_db(struct shard **shards, uint32_t n, struct auth_db *db)
{
	for (uint32_t i = 0; i < n; i++) {
		struct auth_db *old;

		/* release: the db's contents are visible before the shard sees the pointer */
		old = atomic_exchange_explicit(&shards[i]->auth_db_next, auth_db_ref(db),
					       memory_order_acq_rel);
		auth_db_unref(old);	/* a newer one replaced it before the shard took it */
		wake_for_hand_over(shards[i]);
	}
}

void shard_publish_limits(struct shard **shards, uint32_t n, const struct hd_limits *limits)
{
	for (uint32_t i = 0; i < n; i++) {
		struct hd_limits *copy = hd_alloc(sizeof(*copy));

		*copy = *limits;
		/* release: the copy's contents are visible before the shard sees the pointer */
		hd_free(atomic_exchange_explicit(&shards[i]->limits_next, copy,
						 memory_order_acq_rel));
		wake_for_hand_over(shards[i]);
	}
}

static uint32_t max_rx_partial(const struct hd_limits *limits)
{
	return (uint32_t)HD_MIN(limits->max_frame_bytes + RX_PARTIAL_SLACK, UINT32_MAX / 2);
}

static void take_limits(struct shard *sh)
{
	/* acquire: pairs with the release in shard_publish_limits */
	struct hd_limits *next = atomic_exchange_explicit(&sh->limits_next, NULL,
							  memory_order_acquire);

	if (!next)
		return;
	sh->limits = *next;
	hd_free(next);
	sh->loop.cfg.max_rx_partial = max_rx_partial(&sh->limits);
	session_shard_limits_changed(sh);
}

void shard_publish_tls_ctx(struct shard **shards, uint32_t n, struct net_tls_ctx *ctx)
{
	for (uint32_t i = 0; i < n; i++) {
		/* release: the context is complete before the shard sees the pointer */
		net_tls_ctx_unref(atomic_exchange_explicit(&shards[i]->tls_ctx_next,
							   net_tls_ctx_ref(ctx),
							   memory_order_acq_rel));
		wake_for_hand_over(shards[i]);
	}
}

static void take_tls_ctx(struct shard *sh)
{
	/* acquire: pairs with the release in shard_publish_tls_ctx */
	struct net_tls_ctx *next = atomic_exchange_explicit(&sh->tls_ctx_next, NULL,
							    memory_order_acquire);

	if (!next)
		return;
	net_loop_set_tls_ctx(&sh->loop, next);
	net_tls_ctx_unref(next);
}

static void take_auth_db(struct shard *sh)
{
	/* acquire: pairs with the release in shard_publish_auth_db */
	struct auth_db *next = atomic_exchange_explicit(&sh->auth_db_next, NULL, memory_order_acquire);

	if (!next)
		return;
	auth_db_unref(sh->auth_db);
	sh->auth_db = next;
}

static uint32_t drain_inbound(struct shard *sh)
{
	struct xmsg batch[DRAIN_BATCH];
	uint32_t total = 0;

	if (sh->auth_in) {
		uint32_t n = xring_pop(sh->auth_in, batch, DRAIN_BATCH);

		for (uint32_t i = 0; i < n; i++)
			session_on_auth_done(sh, &batch[i]);
		total += n;
	}

	for (uint32_t from = 0; from < sh->nendpoints; from++) {
		uint32_t taken = 0;
		uint32_t n;

		/* up to DRAIN_BUDGET per ring per turn: enough that deliveries to one socket
		 * gather into one sendmsg, few enough that input stays responsive */
		while (taken < DRAIN_BUDGET && (n = xring_pop(sh->in[from], batch, DRAIN_BATCH))) {
			for (uint32_t i = 0; i < n; i++) {
				HD_ASSERT(batch[i].kind < HD_ARRAY_LEN(xmsg_handlers) &&
					  xmsg_handlers[batch[i].kind]);
				xmsg_handlers[batch[i].kind](sh, &batch[i]);
			}
			taken += n;
		}
		total += taken;
	}
	return total;
}

static void publish_outbound(struct shard *sh)
{
	if (sh->nparked) {
		unpark_all(sh);
		if (!sh->nparked)
			session_resume_paused(sh);	/* read again at once, not at the next tick */
	}
	for (uint32_t to = 0; to < sh->nendpoints; to++)
		xring_publish(sh->out[to]);
	if (sh->auth_out)
		xring_publish(sh->auth_out);
}

static void publish_stats(struct shard *sh)
{
	atomic_store_explicit(&sh->pub.connections, sh->stats.connections, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.connections_ws, sh->stats.connections_ws, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.connections_total, sh->stats.connections_total,
			      memory_order_relaxed);
	atomic_store_explicit(&sh->pub.frames_in, sh->stats.frames_in, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.errors_sent, sh->stats.errors_sent, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.slow_consumers, sh->stats.slow_consumers, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.refused_sends, sh->stats.refused_sends, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.bytes_in, sh->loop.bytes_in, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.bytes_out, sh->loop.bytes_out, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.logins_ok, sh->auth.logins_ok, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.logins_failed, sh->auth.logins_failed, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.subscriptions, sh->stats.subscriptions, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.published, sh->stats.published, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.delivered, sh->stats.delivered, memory_order_relaxed);
	atomic_store_explicit(&sh->pub.auth_slow_checks, sh->auth.slow_checks,
			      memory_order_relaxed);
	atomic_store_explicit(&sh->pub.auth_check_waits, sh->auth.check_waits,
			      memory_order_relaxed);
	atomic_store_explicit(&sh->pub.auth_checks_in_flight_max, sh->auth.rl.pending_max,
			      memory_order_relaxed);
}

static void begin_stop(struct shard *sh)
{
	sh->stopping = true;
	sh->stop_deadline_ms = sh->now_ms + STOP_GRACE_MS;
	net_loop_stop_accepting(&sh->loop);
	session_close_all(sh);
	session_reap_closing(sh);
}

static bool stop_done(struct shard *sh)
{
	return sh->stopping && ((!sh->loop.nopen && !sh->nparked) || sh->now_ms > sh->stop_deadline_ms);
}

static void pin_to_cpu(uint32_t id)
{
	cpu_set_t set;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	CPU_SET(id % (ncpu > 0 ? (uint32_t)ncpu : 1u), &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		hd_log_warn("cannot pin shard %u to a CPU", id);
}

/* Posted once by each shard thread when its loop is set up (or failed to be). */
static sem_t shards_started;

static int loop_start(struct shard *sh, const struct net_loop_config *lc)
{
	int err = net_loop_init(&sh->loop, lc, &shard_net_callbacks, sh);

	if (err) {
		hd_log_err("%s setup failed: %s", lc->io == NET_IO_EPOLL ? "epoll" : "io_uring",
			   strerror(-err));
		return err;
	}
	err = net_loop_watch_eventfd(&sh->loop, sh->wake.eventfd);
	take_tls_ctx(sh);	/* published before the start */
	for (int i = 0; i < sh->nlisten && !err; i++) {
		uint8_t kind = sh->listen_kinds[i];

		if (kind & CONN_KIND_TLS)
			err = net_loop_add_tls_listener(&sh->loop, sh->listen_fds[i],
							kind & ~CONN_KIND_TLS);
		else
			err = net_loop_add_listener(&sh->loop, sh->listen_fds[i], kind);
	}
	if (err) {
		hd_log_err("cannot start the shard's loop: %s", strerror(-err));
		net_loop_fini(&sh->loop);
	}
	return err;
}

static void *shard_main(void *arg)
{
	struct shard *sh = arg;
	struct net_loop_config lc = {
		.io = (enum net_io)sh->cfg->io_backend,
		.ring_entries = RING_ENTRIES,
		.buf_count = RECV_BUFS,
		.buf_size = RECV_BUF_BYTES,
		.max_rx_partial = max_rx_partial(&sh->limits),
		/* the handshake is part of the time a client has to send CONNECT */
		.tls_handshake_ms = sh->limits.connect_timeout_ms,
	};
	uint64_t last_tick = 0;
	uint64_t last_slow = 0;

	self = sh;
	hd_log_set_thread_shard((int)sh->id);
	pin_to_cpu(sh->id);
	hd_alloc_bind_thread_arena();
	take_auth_db(sh);
	/* the ring must be made on this thread (SINGLE_ISSUER); main waits to hear how it went
	 * and stops the node on a failure: a shard thread never exits the process */
	sh->start_err = loop_start(sh, &lc);
	sem_post(&shards_started);
	if (sh->start_err)
		return NULL;
	sh->now_ms = hd_now_ms();
	while (!stop_done(sh)) {
		uint32_t timeout = sh->sessions.hb_list || sh->sessions.nretry || sh->stopping ||
				   sh->dests.lease_blocked || sh->dests.repl_waits ? TICK_MS : 1000;
		uint32_t busy;

		net_loop_flush(&sh->loop);
		publish_outbound(sh);
		xwake_sleep(&sh->wake);
		if (sh->nparked)
			timeout = 1;	/* a full xring: retry soon, without spinning */
		if (inbound_pending(sh))
			timeout = 0;
		busy = net_loop_run_once(&sh->loop, timeout);
		xwake_awake(&sh->wake);
		busy += drain_inbound(sh);
		/* Under load, gather more before writing: with thousands of consumers a round
		 * carries less than one delivery per socket, so writing after every round would
		 * cost one sendmsg per message. While rounds stay busy (input is backed up, so
		 * latency is queueing anyway) read and drain again, a bounded number of times;
		 * a quiet round writes at once, so light load sees no delay. */
		for (int round = 1; round < GATHER_ROUNDS && busy >= GATHER_MIN; round++) {
			publish_outbound(sh);	/* other shards start on what we routed */
			busy = net_loop_run_once(&sh->loop, 0);
			busy += drain_inbound(sh);
		}
		take_auth_db(sh);
		take_limits(sh);
		take_tls_ctx(sh);
		sh->now_ms = hd_now_ms();
		connlist_tick(sh, sh->now_ms);	/* two relaxed loads unless an admin asked */
		if (sh->sessions.nclosing)
			session_reap_closing(sh);
		if (sh->now_ms - last_tick >= TICK_MS) {
			last_tick = sh->now_ms;
			session_tick(sh, sh->now_ms);
			if (sh->sessions.nretry)
				session_retry_consumers(sh, sh->now_ms);
			if (sh->dests.lease_blocked)
				dest_lease_check(sh);
			repl_tick(sh);
			dest_adopted_tick(sh);
			session_reap_closing(sh);
			publish_stats(sh);
		}
		if (sh->now_ms - last_slow >= 1000) {
			last_slow = sh->now_ms;
			net_loop_reap_lingering(&sh->loop);
			dest_snapshot_take(sh);
		}
		if (!sh->stopping && atomic_load_explicit(&sh->stop_requested, memory_order_relaxed))
			begin_stop(sh);
	}
	net_loop_flush(&sh->loop);
	publish_outbound(sh);
	return NULL;
}

/* ---- lifecycle ---- */

/* Splits cfg->ws_origins into the allow-list every shard's upgrade parser reads. */
static void ws_origins_parse(const struct herald_config *cfg, const char ***out, size_t *n)
{
	static char buf[sizeof(cfg->ws_origins)];
	static const char *list[64];
	char *save = NULL;

	*n = 0;
	snprintf(buf, sizeof(buf), "%s", cfg->ws_origins);
	for (char *t = strtok_r(buf, ", ", &save); t && *n < HD_ARRAY_LEN(list);
	     t = strtok_r(NULL, ", ", &save))
		list[(*n)++] = t;
	*out = list;
}

struct shard **shard_create_all(uint32_t n, const struct herald_config *cfg, struct xwake *route_wake)
{
	const uint32_t nend = n + (route_wake ? 1 : 0);
	const char **origins;
	size_t norigins;
	struct shard **shards = hd_calloc(n, sizeof(*shards));

	HD_ASSERT(n > 0 && n <= SHARD_MAX);
	ws_origins_parse(cfg, &origins, &norigins);
	for (uint32_t i = 0; i < n; i++) {
		struct shard *sh = hd_calloc(1, sizeof(*sh));
		int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

		HD_ASSERT(efd >= 0);
		sh->id = i;
		sh->nshards = n;
		sh->nendpoints = nend;
		sh->cfg = cfg;
		sh->limits = cfg->limits;
		xwake_init(&sh->wake, efd);
		sh->in = hd_calloc(nend, sizeof(*sh->in));
		sh->out = hd_calloc(nend, sizeof(*sh->out));
		sh->parked = hd_calloc(nend, sizeof(*sh->parked));
		dest_table_init(&sh->dests, SHARD_COLUMNS(n));
		session_shard_init(&sh->sessions, &sh->limits);
		connlist_init(&sh->conns_snap);
		auth_shard_init(&sh->auth);
		http_upgrade_config_default(&sh->http_cfg);
		sh->http_cfg.path = cfg->ws_path;
		sh->http_cfg.origins = origins;
		sh->http_cfg.norigins = norigins;
		shards[i] = sh;
	}
	for (uint32_t from = 0; from < n; from++) {
		for (uint32_t to = 0; to < n; to++) {
			struct xring *r = hd_alloc(sizeof(*r));

			xring_init(r, SHARD_XRING_SLOTS, &shards[to]->wake);
			shards[from]->out[to] = r;
			shards[to]->in[from] = r;
		}
	}
	for (uint32_t i = 0; route_wake && i < n; i++) {
		struct xring *to_route = hd_alloc(sizeof(*to_route));
		struct xring *from_route = hd_alloc(sizeof(*from_route));

		xring_init(to_route, SHARD_XRING_SLOTS, route_wake);
		xring_init(from_route, SHARD_XRING_SLOTS, &shards[i]->wake);
		shards[i]->out[n] = to_route;
		shards[i]->in[n] = from_route;
	}
	return shards;
}

void shard_route_rings(struct shard *sh, struct xring **from_shard, struct xring **to_shard)
{
	HD_ASSERT(sh->nendpoints > sh->nshards);
	*from_shard = sh->out[sh->nshards];
	*to_shard = sh->in[sh->nshards];
}

void shard_add_listener(struct shard *sh, int fd, uint8_t kind)
{
	HD_ASSERT(sh->nlisten < (int)HD_ARRAY_LEN(sh->listen_fds));
	sh->listen_fds[sh->nlisten] = fd;
	sh->listen_kinds[sh->nlisten++] = kind;
}

int shard_start_all(struct shard **shards, uint32_t n)
{
	int err = 0;
	uint32_t started = 0;

	sem_init(&shards_started, 0, 0);
	for (; started < n; started++) {
		err = -pthread_create(&shards[started]->thread, NULL, shard_main, shards[started]);
		if (err)
			break;
	}
	for (uint32_t i = 0; i < started; i++) {
		while (sem_wait(&shards_started) && errno == EINTR)
			;
	}
	for (uint32_t i = 0; i < started && !err; i++)
		err = shards[i]->start_err;
	if (err) {
		/* the ones that did start stop again; the failed ones have returned */
		shard_stop_all(shards, started);
	}
	return err;
}

void shard_stop_all(struct shard **shards, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t one = 1;

		atomic_store_explicit(&shards[i]->stop_requested, 1, memory_order_relaxed);
		/* unconditional wake: the shard may be asleep for up to a second */
		if (write(shards[i]->wake.eventfd, &one, sizeof(one)) < 0)
			hd_log_warn("cannot wake shard %u", i);
	}
	for (uint32_t i = 0; i < n; i++)
		pthread_join(shards[i]->thread, NULL);
}

void shard_destroy_all(struct shard **shards, uint32_t n)
{
	struct xmsg m;

	for (uint32_t i = 0; i < n; i++) {
		struct shard *sh = shards[i];

		/* drop what is still in flight between endpoints */
		for (uint32_t from = 0; from < sh->nendpoints; from++) {
			while (xring_pop(sh->in[from], &m, 1))
				xmsg_drop(&m);
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		struct shard *sh = shards[i];

		net_loop_fini(&sh->loop);
		dest_table_fini(&sh->dests);
		session_shard_fini(&sh->sessions);
		connlist_fini(&sh->conns_snap);
		auth_shard_fini(&sh->auth);
		auth_db_unref(sh->auth_db);
		placement_unref(sh->placement);
		net_tls_ctx_unref(atomic_load(&sh->tls_ctx_next));
		auth_db_unref(atomic_load(&sh->auth_db_next));
		hd_free(atomic_load(&sh->limits_next));
		for (uint32_t to = 0; to < sh->nendpoints; to++) {
			xring_fini(sh->out[to]);
			hd_free(sh->out[to]);
			hd_free(sh->parked[to].q);
		}
		if (sh->nendpoints > n) {	/* the route's ring to us */
			xring_fini(sh->in[n]);
			hd_free(sh->in[n]);
		}
		close(sh->wake.eventfd);
		hd_free(sh->in);
		hd_free(sh->out);
		hd_free(sh->parked);
		hd_free(sh);
	}
	hd_free(shards);
}
