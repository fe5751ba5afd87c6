/*
 * core/main.c - the `herald` binary: configuration, listeners, shards, the cluster thread,
 * signals. Wiring only: every behaviour lives in the modules it starts.
 *
 * Main thread: parses config, opens one SO_REUSEPORT listener per shard and port, starts the
 * shards and the cluster thread, then waits for signals (SIGTERM/SIGINT: graceful stop).
 */
#include "cluster/cluster.h"
#include "cluster/controller.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"
#include "auth/auth.h"
#include "core/adminauth.h"
#include "core/authsvc.h"
#include "core/config.h"
#include "core/placement.h"
#include "core/route.h"
#include "core/shard.h"
#include "core/tlsconf.h"
#include "net/listen.h"
#include "net/loop.h"
#include "net/tls.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

static struct shard **shards;
static uint32_t nshards;

static void raise_nofile_limit(void)
{
	struct rlimit rl;
	rlim_t soft;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	soft = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		rl.rlim_cur = soft;
	hd_log_info("open files limit: soft %llu (was %llu), hard %llu",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)soft,
		    (unsigned long long)rl.rlim_max);
}

/* One listener per shard on the same port (SO_REUSEPORT spreads accepts across them). */
static int open_listeners(const char *proto, const char *addr, uint16_t *port, uint8_t kind)
{
	for (uint32_t i = 0; i < nshards; i++) {
		uint16_t bound;
		int fd = net_listen_open(addr, *port, 4096, &bound);

		if (fd < 0) {
			hd_log_err("cannot listen for %s on %s:%u: %s", proto, addr, *port, strerror(-fd));
			return fd;
		}
		*port = bound;	/* port 0: later shards join the port the first one got */
		shard_add_listener(shards[i], fd, kind);
	}
	hd_log_info("listening proto=%s addr=%s:%u", proto, addr, *port);
	return 0;
}

/* The auth thread's work as the admin endpoint shows it: totals, and the per-address
 * in-flight high-water mark of the busiest shard (each shard limits its own). Relaxed,
 * like the load: plain counters, nothing else is read through them. */
static void sum_auth(struct admin_auth *out)
{
	for (uint32_t i = 0; i < nshards; i++) {
		const struct shard_stats_pub *p = &shards[i]->pub;
		uint64_t in_flight_max;

		out->slow_checks +=
			atomic_load_explicit(&p->auth_slow_checks, memory_order_relaxed);
		out->check_waits +=
			atomic_load_explicit(&p->auth_check_waits, memory_order_relaxed);
		in_flight_max =
			atomic_load_explicit(&p->auth_checks_in_flight_max, memory_order_relaxed);
		out->checks_in_flight_max = HD_MAX(out->checks_in_flight_max, in_flight_max);
	}
}

static void sum_load(void *arg, struct cluster_load *out)
{
	static uint64_t last_published;
	static uint64_t last_ms;
	uint64_t published = 0;
	struct timespec ts;
	uint64_t now_ms;

	(void)arg;
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < nshards; i++) {
		out->connections += atomic_load_explicit(&shards[i]->pub.connections, memory_order_relaxed);
		out->subscriptions += atomic_load_explicit(&shards[i]->pub.subscriptions, memory_order_relaxed);
		published += atomic_load_explicit(&shards[i]->pub.published, memory_order_relaxed);
	}
	sum_auth(&out->auth);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (last_ms && now_ms > last_ms)
		out->msgs_per_s = (published - last_published) * 1000 / (now_ms - last_ms);
	last_published = published;
	last_ms = now_ms;
}

static struct users_table *static_users;

static void auth_settings_from(const struct herald_config *cfg, struct auth_settings *as)
{
	memset(as, 0, sizeof(*as));
	as->vhosts = cfg->vhosts;
	as->users_file = cfg->users_file;
	as->rules_file = cfg->rules_file;
	as->static_users = static_users;
	as->jwt_hs256_secret_file = cfg->jwt_hs256_secret_file;
	as->jwt_rs256_key_file = cfg->jwt_rs256_key_file;
	as->jwt_es256_key_file = cfg->jwt_es256_key_file;
	as->jwt_audience = cfg->jwt_audience;
	as->jwt_issuer = cfg->jwt_issuer;
	as->jwt_leeway_s = cfg->jwt_leeway_s;
}

/* Reads users, rules and keys into a new auth db (*out: the caller's reference). */
static int make_auth_db(const struct herald_config *cfg, struct users_table *users,
			struct auth_db **out)
{
	struct auth_settings as;
	char err[256];
	int rc;

	auth_settings_from(cfg, &as);
	as.static_users = users;
	rc = auth_db_create(&as, out, err, sizeof(err));
	if (rc)
		hd_log_err("auth: %s", err);
	return rc;
}

static struct adminauth *adminauth;	/* admin endpoint logins; NULL without a cluster */

/* Hands db to every shard (and the admin endpoint's checker). */
static void publish_auth(struct auth_db *db)
{
	shard_publish_auth_db(shards, nshards, db);
	if (adminauth)
		adminauth_set_db(adminauth, db);
	hd_log_info("auth: %zu password users, virtual hosts %s", auth_db_user_count(db),
		    auth_db_vhosts(db));
}

static int make_static_users(const struct herald_config *cfg, struct users_table **out)
{
	const char *specs[HD_ARRAY_LEN(cfg->users)];
	char err[256];

	for (uint32_t i = 0; i < cfg->nusers; i++)
		specs[i] = cfg->users[i];
	/* the interactive cost, like users-file hashes and the dummy hash unknown names are
	 * checked against: a wrong password must take as long for every name, or timing
	 * tells which names exist. Each shard then caches a verified login (auth_cache). */
	if (auth_static_users_create(specs, cfg->nusers, cfg->default_user, cfg->default_pass,
				     cfg->default_user_loopback_only, USERS_COST_INTERACTIVE,
				     out, err, sizeof(err))) {
		hd_log_err("auth: %s", err);
		return -1;
	}
	return 0;
}

static int load_auth(const struct herald_config *cfg)
{
	struct auth_db *db;

	if (make_static_users(cfg, &static_users) || make_auth_db(cfg, static_users, &db))
		return -1;
	publish_auth(db);
	auth_db_unref(db);
	return 0;
}

/* The cluster's settings: core's option parser fills them through the table below, core
 * itself never sees them (core does not depend on cluster). */
struct cluster_settings {
	struct cluster_config c;
	bool enabled;
	char route_port[8];		/* "": 7947, or 0 with --gossip-port 0 */
	bool route_tls;			/* node links over TLS with --tls-cert/--tls-key */
	char admin_auth[8];		/* "auto" (off loopback only) or "always" */
	char raft_port[8];		/* "": 7948, or 0 with --gossip-port 0 */
};

static void cluster_settings_defaults(struct cluster_settings *cl)
{
	*cl = (struct cluster_settings){ .enabled = true, .admin_auth = "auto" };
	cluster_config_defaults(&cl->c);
}

#define ROUTE_PORT_DEFAULT 7947
#define RAFT_PORT_DEFAULT 7948
#define HAND_OVER_MS 10000	/* SIGTERM: time allowed to move queues to other nodes */


static int set_join(void *base, const char *val)
{
	struct cluster_config *c = &((struct cluster_settings *)base)->c;
	char buf[2048];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", val);
	c->njoin = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (c->njoin == CLUSTER_MAX_JOIN)
			return -1;
		snprintf(c->join[c->njoin++], sizeof(c->join[0]), "%s", t);
	}
	return 0;
}

#define C(field) offsetof(struct cluster_settings, field), sizeof(((struct cluster_settings *)0)->field)
static const struct config_option cluster_opts[] = {
	{ "cluster", CONFIG_BOOL, C(enabled), "run the gossip membership layer", NULL },
	{ "cluster-name", CONFIG_STR, C(c.cluster_name), "cluster name (gossip is refused across names)", NULL },
	{ "gossip-port", CONFIG_U16, C(c.gossip_port), "gossip port, UDP and TCP (0: pick)", NULL },
	{ "gossip-bind", CONFIG_STR, C(c.bind_addr),
	  "gossip bind address (default: 127.0.0.1 without --gossip-key, else --bind's)", NULL },
	{ "gossip-advertise", CONFIG_STR, C(c.gossip_advertise),
	  "address peers should use for our gossip port (default: the bind address)", NULL },
	{ "gossip-interval", CONFIG_U32, C(c.gossip_interval_ms), "gossip protocol period, ms", NULL },
	{ "gossip-key", CONFIG_STR, C(c.key_file), "file holding the shared gossip key", NULL },
	{ "join", CONFIG_CALL, C(c.join), "host:port[,host:port...] seeds to join", set_join },
	{ "route-port", CONFIG_STR, C(route_port),
	  "node links port, on the gossip bind address (empty: 7947, or 0 when --gossip-port "
	  "is 0; 0: pick)", NULL },
	{ "route-tls", CONFIG_BOOL, C(route_tls),
	  "node links over TLS with --tls-cert/--tls-key, peers checked against --tls-ca when "
	  "given (every node of a cluster must agree)", NULL },
	{ "raft-port", CONFIG_STR, C(raft_port),
	  "the controller's Raft port, on the gossip bind address (empty: 7948, or 0 when "
	  "--gossip-port is 0; 0: pick)", NULL },
	{ "admin-bind", CONFIG_STR, C(c.admin_bind), "admin HTTP address", NULL },
	{ "admin-port", CONFIG_U16, C(c.admin_port), "admin HTTP port (0: pick)", NULL },
	{ "admin-auth", CONFIG_STR, C(admin_auth),
	  "admin credentials (an administrator user, HTTP Basic): auto (when --admin-bind is not "
	  "loopback) or always", NULL },
};
#undef C

/* Why io_uring_setup said no, in the words an operator can act on. */
static const char *io_uring_refusal(int err)
{
	switch (-err) {
	case EPERM:
		return "blocked by a seccomp profile (Docker's and Kubernetes' default ones block "
		       "it) or by sysctl kernel.io_uring_disabled";
	case ENOSYS:
		return "this kernel has no io_uring";
	case ENOMEM:
		return "the locked-memory limit (ulimit -l) is too low for a ring";
	default:
		return "the kernel refused it";
	}
}

/* Resolves --io to the backend every shard runs on, with one log line saying which and why;
 * --io io_uring where io_uring cannot run is refused here, before any listener opens. */
static int choose_io(struct herald_config *cfg)
{
	int err;

	if (!strcmp(cfg->io, "epoll")) {
		cfg->io_backend = NET_IO_EPOLL;
		hd_log_info("io backend: epoll");
		return 0;
	}
	if (strcmp(cfg->io, "io_uring") && strcmp(cfg->io, "auto")) {
		hd_log_err("--io must be auto, io_uring or epoll, not '%s'", cfg->io);
		return -1;
	}
	err = net_io_uring_probe();
	if (!err) {
		cfg->io_backend = NET_IO_URING;
		hd_log_info("io backend: io_uring");
		return 0;
	}
	if (!strcmp(cfg->io, "io_uring")) {
		hd_log_err("io_uring is not available: io_uring_setup failed: %s (%s); start with "
			   "--io epoll, or --io auto to fall back to it", strerror(-err),
			   io_uring_refusal(err));
		return -1;
	}
	cfg->io_backend = NET_IO_EPOLL;
	hd_log_info("io backend: epoll (io_uring unavailable: %s: %s)", strerror(-err),
		    io_uring_refusal(err));
	return 0;
}

/* Where gossip listens: where the clients do unless told otherwise (--gossip-bind); without
 * a cluster key, on loopback only, and anything wider is refused here, before any listener
 * opens (cluster_check_exposure). */
static int choose_gossip_bind(const struct herald_config *cfg, struct cluster_config *cl)
{
	if (!cl->bind_addr[0]) {
		if (!cl->key_file[0])
			snprintf(cl->bind_addr, sizeof(cl->bind_addr), "127.0.0.1");
		else
			snprintf(cl->bind_addr, sizeof(cl->bind_addr), "%s", cfg->bind_addr);
	}
	return cluster_check_exposure(cl);
}

static void member_news(void *arg, const char *name, const char *host, uint16_t port, bool alive)
{
	route_member(arg, name, host, port, alive);
}

/* The controller's lease (its thread), for the shards' deliveries. */
static void lease_news(void *arg, uint64_t until_ms)
{
	(void)arg;
	atomic_store_explicit(&shard_queue_lease_until_ms, until_ms, memory_order_relaxed);
}

/* A closed link's probe (route thread) is news for the controller. */
static void probe_news(void *arg, const char *name, bool gone)
{
	cluster_member_probe(arg, name, gone);
}

/* The controller's view, as placement counts it: its active members own queues, its
 * joining ones get copies of those they will hold. */
static void view_news(void *arg, const struct ctl_view *v)
{
	struct route_view rv = { .epoch = v->epoch };

	for (uint32_t i = 0; i < v->n && rv.n < ROUTE_VIEW_MAX; i++) {
		rv.joining[rv.n] = v->m[i].state == CTL_JOINING;
		rv.node_hash[rv.n++] = placement_node_hash(v->m[i].name, strlen(v->m[i].name));
	}
	route_view(arg, &rv);
}

static bool link_of(void *arg, const char *name, struct admin_link *out)
{
	struct route_link_stats st;

	if (!route_link_stats(arg, name, &st))
		return false;
	*out = (struct admin_link){ .state = st.state, .msgs_out = st.msgs_out,
				    .bytes_out = st.bytes_out, .msgs_in = st.msgs_in,
				    .bytes_in = st.bytes_in };
	return true;
}

struct queue_emit {
	void (*emit)(void *ctx, const struct admin_queue *q);
	void *ctx;
	struct route *route;
};

static void queue_info(void *arg, const struct dest_queue_info *q)
{
	struct queue_emit *qe = arg;
	const char *sep = memchr(q->key, '\x1f', q->key_len);
	struct admin_queue aq = {
		.name = q->key,
		.name_len = sep ? (size_t)(sep - q->key) : q->key_len,
		.vhost = sep ? sep + 1 : "/",
		.vhost_len = sep ? q->key_len - (size_t)(sep - q->key) - 1 : 1,
		.messages = q->messages,
		.consumers = q->consumers,
		.nbackups = q->nbackups,
		.in_sync = q->in_sync,
	};
	char names[4][128];

	for (uint32_t i = 0; i < q->nbackups && i < 4; i++) {
		if (!qe->route || !route_peer_name(qe->route, q->backup[i], names[i], sizeof(names[i])))
			snprintf(names[i], sizeof(names[i]), "?");
		aq.backups[i] = names[i];
	}
	qe->emit(qe->ctx, &aq);
}

/* The queues this node owns, from each shard's snapshot (the cluster thread asks). */
static void list_queues(void *arg, void (*emit)(void *ctx, const struct admin_queue *q), void *ctx)
{
	struct queue_emit qe = { emit, ctx, arg };

	for (uint32_t i = 0; i < nshards; i++)
		dest_snapshot_each(&shards[i]->dests, queue_info, &qe);
}

static void queue_totals(void *arg, const struct dest_queue_info *q)
{
	struct admin_metrics *m = arg;

	m->queues++;
	m->queue_ready += q->ready;
	m->queue_unacked += q->unacked;
	m->queue_consumers += q->consumers;
}

static uint64_t resident_bytes(void)
{
	unsigned long long pages_total = 0, pages_resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%llu %llu", &pages_total, &pages_resident) != 2)
			pages_resident = 0;
		fclose(f);
	}
	return pages_resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* This node's counters for GET /metrics: what each shard published (relaxed, like the
 * load), the queue snapshots, memory. */
static void node_metrics(void *arg, struct admin_metrics *m)
{
	(void)arg;
	m->nshards = HD_MIN(nshards, ADMIN_MAX_SHARDS);
	for (uint32_t i = 0; i < m->nshards; i++) {
		const struct shard_stats_pub *p = &shards[i]->pub;
		struct admin_metrics_shard *o = &m->shard[i];

#define L(x) atomic_load_explicit(&p->x, memory_order_relaxed)
		*o = (struct admin_metrics_shard){
			.connections = L(connections), .connections_ws = L(connections_ws),
			.connections_total = L(connections_total), .subscriptions = L(subscriptions),
			.frames_in = L(frames_in), .bytes_in = L(bytes_in), .bytes_out = L(bytes_out),
			.published = L(published), .delivered = L(delivered),
			.slow_consumers = L(slow_consumers), .refused_sends = L(refused_sends),
			.errors_sent = L(errors_sent), .logins_ok = L(logins_ok),
			.logins_failed = L(logins_failed),
		};
#undef L
		dest_snapshot_each(&shards[i]->dests, queue_totals, m);
	}
	m->memory_allocated = hd_alloc_allocated_bytes();
	m->memory_resident = resident_bytes();
}

struct conn_emit {
	void (*emit)(void *ctx, const struct admin_conn *c);
	void *ctx;
};

static void conn_info_emit(void *arg, const struct conn_info *c)
{
	struct conn_emit *ce = arg;
	struct admin_conn ac = {
		.id = c->id, .user = c->user, .vhost = c->vhost, .address = c->address,
		.websocket = c->websocket, .subscriptions = c->subscriptions,
		.bytes_in = c->bytes_in, .bytes_out = c->bytes_out, .connected_ms = c->connected_ms,
	};

	ce->emit(ce->ctx, &ac);
}

/* heraldctl connections (GET /api/connections, on the cluster thread). */
static bool list_conns(void *arg, void (*emit)(void *ctx, const struct admin_conn *c), void *ctx)
{
	struct conn_emit ce = { emit, ctx };
	bool fresh = connlist_want(shards, nshards, hd_now_ms());

	(void)arg;
	connlist_each(shards, nshards, conn_info_emit, &ce);
	return fresh;
}

static bool close_conn(void *arg, uint64_t id)
{
	(void)arg;
	return connlist_close(shards, nshards, id);
}

/* heraldctl drain (POST /api/drain, on the cluster thread): the same graceful stop as
 * SIGTERM, through the main thread's sigwait. */
static void request_drain(void *arg)
{
	(void)arg;
	hd_log_info("drain requested through the admin endpoint");
	kill(getpid(), SIGTERM);
}

/* The admin endpoint's login hook (the cluster thread asks; adminauth never blocks it). */
static enum admin_login admin_login_check(void *arg, const char *user, size_t user_len,
					  const char *pass, size_t pass_len, bool from_loopback,
					  uint64_t now_ms)
{
	static const enum admin_login as_admin[] = {
		[ADMINAUTH_OK] = ADMIN_LOGIN_OK,
		[ADMINAUTH_FORBIDDEN] = ADMIN_LOGIN_FORBIDDEN,
		[ADMINAUTH_DENIED] = ADMIN_LOGIN_DENIED,
		[ADMINAUTH_PENDING] = ADMIN_LOGIN_PENDING,
		[ADMINAUTH_BUSY] = ADMIN_LOGIN_BUSY,
	};

	return as_admin[adminauth_check(arg, user, user_len, pass, pass_len, from_loopback,
					 now_ms)];
}

static int choose_admin_auth(struct cluster_settings *cl)
{
	if (!cl->admin_auth[0] || !strcmp(cl->admin_auth, "auto"))
		cl->c.admin_auth_always = false;
	else if (!strcmp(cl->admin_auth, "always"))
		cl->c.admin_auth_always = true;
	else {
		hd_log_err("--admin-auth must be auto or always, not '%s'", cl->admin_auth);
		return -1;
	}
	return 0;
}

/* A port next to gossip's: `setting` as given, or when empty `dflt` (0 when the gossip
 * port is 0, so parallel test nodes never collide). */
static int cluster_port_setting(const struct cluster_settings *cl, const char *setting,
				uint16_t dflt, const char *flag, uint16_t *out)
{
	unsigned long port;
	char *end = NULL;

	if (!setting[0])
		port = cl->c.gossip_port ? dflt : 0;
	else
		port = strtoul(setting, &end, 10);
	if (port > UINT16_MAX || (end && *end)) {
		hd_log_err("%s must be 0..65535", flag);
		return -EINVAL;
	}
	*out = (uint16_t)port;
	return 0;
}

/* The node links: on the gossip address, proving the gossip key (or, keyless, a key made
 * of the cluster name: links then stay on loopback, as gossip does). */
static int make_route(const struct herald_config *cfg, struct cluster_settings *cl,
		      struct route **out)
{
	struct route_config rc = { .io_backend = cfg->io_backend };
	uint16_t port;
	int err;

	if (sodium_init() < 0)
		return -ENOSYS;
	err = cluster_port_setting(cl, cl->route_port, ROUTE_PORT_DEFAULT, "--route-port", &port);
	if (err)
		return err;
	err = cluster_port_setting(cl, cl->raft_port, RAFT_PORT_DEFAULT, "--raft-port",
				   &cl->c.raft_port);
	if (err)
		return err;
	if (cl->route_tls && tlsconf_route_ctx(cfg, &rc.tls_ctx))
		return -EINVAL;
	snprintf(rc.cluster_name, sizeof(rc.cluster_name), "%s", cl->c.cluster_name);
	snprintf(rc.bind_addr, sizeof(rc.bind_addr), "%s", cl->c.bind_addr);
	rc.port = port;
	rc.max_frame_bytes = (uint32_t)HD_MIN(cfg->limits.max_frame_bytes, UINT32_MAX / 2);
	if (cl->c.key_file[0]) {
		err = cluster_load_key(cl->c.key_file, rc.key);
		if (err) {
			net_tls_ctx_unref(rc.tls_ctx);
			return err;
		}
	} else {
		crypto_hash_sha256(rc.key, (const unsigned char *)cl->c.cluster_name,
				   strlen(cl->c.cluster_name));
	}
	err = route_create(out, &rc);
	sodium_memzero(&rc, sizeof(rc));
	if (!err)
		cl->c.route_port = route_port(*out);
	return err;
}

static void derive_names(struct herald_config *cfg, struct cluster_config *cl)
{
	char host[100];

	if (!cfg->node_name[0]) {
		if (gethostname(host, sizeof(host)))
			strcpy(host, "herald");
		host[sizeof(host) - 1] = '\0';
		snprintf(cfg->node_name, sizeof(cfg->node_name), "%s:%u", host, cfg->stomp_port);
	}
	snprintf(cl->node_name, sizeof(cl->node_name), "%s", cfg->node_name);
	snprintf(cl->advertise_addr, sizeof(cl->advertise_addr), "%s",
		 strcmp(cfg->bind_addr, "0.0.0.0") ? cfg->bind_addr : "127.0.0.1");
	cl->stomp_port = cfg->stomp_port;
	cl->ws_port = cfg->ws_port;
	cl->nshards = (uint16_t)nshards;
}

/* ---- SIGHUP: the config file again (docs/operations.md "Reloading the configuration") ---- */

/* What the running node was started with, as loaded (before main derived ports and names
 * from it), plus every runtime change since: what a reload compares against. */
static struct herald_config loaded_cfg;
static struct cluster_settings loaded_cl;
static struct route *tls_route;	/* the node links when they run TLS: SIGHUP renews theirs */

/* One line per changed setting, with the values unless they may be secrets. */
static void log_change(void *arg, const struct config_option *o, const void *was,
		       const void *now)
{
	bool *restart_needed = arg;
	char a[32], b[32];
	const char *from = config_format_value(o, was, a, sizeof(a));
	const char *to = config_format_value(o, now, b, sizeof(b));

	if (config_option_is_runtime(o)) {
		hd_log_info("config reload: %s changed%s%s%s%s", o->name, from ? " from " : "",
			    from ? from : "", to ? " to " : "", to ? to : "");
		return;
	}
	*restart_needed = true;
	hd_log_warn("config reload: %s changed%s%s%s%s: needs a restart to take effect (the "
		    "running value stays)", o->name, from ? " from " : "", from ? from : "",
		    to ? " to " : "", to ? to : "");
}

static bool static_users_differ(const struct herald_config *a, const struct herald_config *b)
{
	return a->nusers != b->nusers || memcmp(a->users, b->users, sizeof(a->users)) ||
	       strcmp(a->default_user, b->default_user) || strcmp(a->default_pass, b->default_pass);
}

/* The node links' certificates, read again like the listeners' (new links use them). */
static void reload_route_tls(const struct herald_config *cfg)
{
	struct net_tls_ctx *ctx;

	if (tlsconf_route_ctx(cfg, &ctx))
		hd_log_warn("route tls reload failed: the previous certificates stay in force");
	else
		route_set_tls_ctx(tls_route, ctx);
}

/* Loads the config file and flags again, builds everything the change needs, and only when
 * all of it succeeded applies it: a file that does not parse, or users or rules that do not
 * load, leave the running configuration as it was. */
static void reload_config(struct herald_config *cfg, const struct config_options *extra,
			  int argc, char **argv)
{
	static struct herald_config next;
	static struct cluster_settings next_cl;
	static struct config_options next_extra;	/* config.c keeps a pointer to it */
	struct users_table *users = static_users;
	const char *file = config_file_of(argc, argv);
	bool restart_needed = false;
	struct auth_db *db;

	hd_log_info("SIGHUP: reloading %s%s, users, rules and keys", file ? "config file " : "",
		    file ? file : "command-line settings");
	config_defaults(&next);
	cluster_settings_defaults(&next_cl);
	next_extra = (struct config_options){ extra->opt, extra->n, &next_cl };
	if (config_load(&next, &next_extra, argc, argv)) {
		hd_log_err("config reload failed: %s does not parse (the error is above): the "
			   "running configuration stays", file ? file : "the command line");
		return;
	}
	config_each_change(&loaded_cfg, &loaded_cl, &next, &next_cl, log_change, &restart_needed);
	if (static_users_differ(&loaded_cfg, &next) && make_static_users(&next, &users))
		goto err_keep;
	if (make_auth_db(&next, users, &db))
		goto err_free_users;
	/* the certificate files are read again whatever else changed (renewed in place);
	 * a bad one keeps the certificate in force (tlsconf_load builds the new context
	 * before any shard gets it) */

	if (memcmp(&loaded_cfg.limits, &next.limits, sizeof(next.limits))) {
		shard_publish_limits(shards, nshards, &next.limits);
		if (next.limits.max_frame_bytes != loaded_cfg.limits.max_frame_bytes &&
		    loaded_cl.enabled)
			hd_log_warn("config reload: node links keep the max-frame-bytes they "
				    "started with until a restart");
	}
	config_take_runtime(&loaded_cfg, &next);
	config_take_runtime(cfg, &next);
	if (users != static_users) {
		users_table_destroy(static_users);	/* the db copied it; the old db too */
		static_users = users;
	}
	publish_auth(db);
	auth_db_unref(db);
	if (tlsconf_enabled(cfg) && tlsconf_load(cfg, shards, nshards))
		hd_log_warn("tls reload failed: the previous certificates stay in force");
	if (tls_route)
		reload_route_tls(cfg);
	hd_log_info("config reloaded%s", restart_needed ?
		    "; some changes need a restart (warnings above)" : "");
	/* last, so the lines above still show under the level they were reloaded from */
	hd_log_set_level((enum hd_log_level)next.log_level);
	return;

err_free_users:
	if (users != static_users)
		users_table_destroy(users);
err_keep:
	hd_log_warn("reload failed: the previous configuration, users and rules stay in force");
}

int main(int argc, char **argv)
{
	static struct herald_config cfg;
	static struct cluster_settings cl;
	const struct config_options extra = { cluster_opts, HD_ARRAY_LEN(cluster_opts), &cl };
	struct cluster *cluster = NULL;
	struct route *route = NULL;
	struct authsvc *authsvc = NULL;
	sigset_t sigs;
	int sig;
	int rc;

	config_defaults(&cfg);
	cluster_settings_defaults(&cl);
	rc = config_load(&cfg, &extra, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 2;
	loaded_cfg = cfg;
	loaded_cl = cl;
	hd_log_set_level((enum hd_log_level)cfg.log_level);
	raise_nofile_limit();
	if (choose_io(&cfg))
		return 1;
	if (cl.enabled && (choose_gossip_bind(&cfg, &cl.c) || choose_admin_auth(&cl)))
		return 1;
	if (getrandom(&shard_node_epoch, sizeof(shard_node_epoch), 0) != sizeof(shard_node_epoch))
		shard_node_epoch = (uint32_t)getpid();
	nshards = cfg.shards ? cfg.shards : (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	if (nshards < 1)
		nshards = 1;
	if (nshards > SHARD_MAX)
		nshards = SHARD_MAX;

	/* signals go to this thread only: block them before any thread starts */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (cl.enabled && adminauth_create(&adminauth)) {
		hd_log_err("cannot start the admin login thread");
		return 1;
	}

	if (cl.enabled && make_route(&cfg, &cl, &route))
		return 1;
	shards = shard_create_all(nshards, &cfg, route ? route_xwake(route) : NULL);
	if (route)
		route_attach(route, shards, nshards);
	if (load_auth(&cfg))
		return 1;
	if (authsvc_start(&authsvc, shards, nshards)) {
		hd_log_err("cannot start the auth thread");
		return 1;
	}
	if (open_listeners("stomp", cfg.bind_addr, &cfg.stomp_port, CONN_KIND_STOMP))
		return 1;
	if (open_listeners("ws", cfg.bind_addr, &cfg.ws_port, CONN_KIND_WS))
		return 1;
	if (tlsconf_enabled(&cfg) &&
	    (tlsconf_load(&cfg, shards, nshards) ||
	     open_listeners("stomps", cfg.bind_addr, &cfg.tls_port, CONN_KIND_STOMP | CONN_KIND_TLS) ||
	     open_listeners("wss", cfg.bind_addr, &cfg.wss_port, CONN_KIND_WS | CONN_KIND_TLS)))
		return 1;
	derive_names(&cfg, &cl.c);
	shard_node_tag = (uint32_t)placement_node_hash(cfg.node_name, strlen(cfg.node_name)) &
			 PLACEMENT_TAG_MASK;
	hd_log_info("herald %s node %s: %u shards", HERALD_VERSION, cfg.node_name, nshards);
	/* a clustered node delivers from replicated queues only under its controller's lease
	 * (none yet) */
	if (cl.enabled)
		atomic_store_explicit(&shard_queue_lease_until_ms, 0, memory_order_relaxed);
	if (shard_start_all(shards, nshards)) {
		hd_log_err("cannot start shard threads");
		return 1;
	}
	if (route && route_start(route, cfg.node_name)) {
		shard_stop_all(shards, nshards);
		return 1;
	}
	if (cl.route_tls)
		tls_route = route;
	if (cl.enabled) {
		struct cluster_hooks hooks = {
			.load = sum_load,
			.member = member_news,
			.member_arg = route,
			.view = view_news,
			.view_arg = route,
			.lease = lease_news,
			.links = { .get = link_of, .arg = route },
			.queues = list_queues,
			.queues_arg = route,
			.metrics = node_metrics,
			.drain = request_drain,
			.conns = { .list = list_conns, .close = close_conn },
			.login = { .check = admin_login_check, .arg = adminauth },
		};

		rc = cluster_start(&cluster, &cl.c, &hooks);
		if (rc) {
			hd_log_err("cannot start the cluster layer: %s", strerror(-rc));
			shard_stop_all(shards, nshards);
			return 1;
		}
		if (route)
			route_set_probe_hook(route, probe_news, cluster);
	}
	for (;;) {
		if (sigwait(&sigs, &sig))
			continue;
		if (sig == SIGHUP) {
			/* live connections stay (docs/operations.md, docs/auth.md) */
			reload_config(&cfg, &extra, argc, argv);
			continue;
		}
		break;
	}
	hd_log_info("signal %d: stopping", sig);
	cluster_set_ready(cluster, false);	/* load balancers stop sending clients here */
	if (route) {
		/* rolling restarts lose nothing: our queues go to their next owners first */
		uint64_t t0 = hd_now_ms();
		bool done = route_hand_over(route, HAND_OVER_MS);

		hd_log_info("queues handed over to the other nodes%s (%llu ms)",
			    done ? "" : ": TIMED OUT, what was left is lost",
			    (unsigned long long)(hd_now_ms() - t0));
	}
	if (route)
		route_set_probe_hook(route, NULL, NULL);	/* the cluster goes first */
	if (cluster)
		cluster_leave_and_destroy(cluster);
	adminauth_destroy(adminauth);	/* after the cluster thread, its only caller */
	shard_stop_all(shards, nshards);
	route_stop_and_destroy(route);	/* after the shards: it drains what they still send */
	authsvc_stop(authsvc);
	shard_destroy_all(shards, nshards);
	users_table_destroy(static_users);
	hd_log_info("stopped");
	return 0;
}
