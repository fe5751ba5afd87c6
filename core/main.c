/*
 * core/main.c - the `herald` binary: configuration, listeners, shards, the cluster thread,
 * signals. Wiring only: every behaviour lives in the modules it starts.
 *
 * Main thread: parses config, opens one SO_REUSEPORT listener per shard and port, starts the
 * shards and the cluster thread, then waits for signals (SIGTERM/SIGINT: graceful stop).
 */
#include "cluster/cluster.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/config.h"
#include "core/shard.h"
#include "net/listen.h"

#include <errno.h>
#include <signal.h>
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
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (last_ms && now_ms > last_ms)
		out->msgs_per_s = (published - last_published) * 1000 / (now_ms - last_ms);
	last_published = published;
	last_ms = now_ms;
}

static void derive_names(struct herald_config *cfg)
{
	char host[100];

	if (!cfg->node_name[0]) {
		if (gethostname(host, sizeof(host)))
			strcpy(host, "herald");
		host[sizeof(host) - 1] = '\0';
		snprintf(cfg->node_name, sizeof(cfg->node_name), "%s:%u", host, cfg->stomp_port);
	}
	snprintf(cfg->cluster.node_name, sizeof(cfg->cluster.node_name), "%s", cfg->node_name);
	snprintf(cfg->cluster.advertise_addr, sizeof(cfg->cluster.advertise_addr), "%s",
		 strcmp(cfg->bind_addr, "0.0.0.0") ? cfg->bind_addr : "127.0.0.1");
	cfg->cluster.stomp_port = cfg->stomp_port;
	cfg->cluster.ws_port = cfg->ws_port;
	cfg->cluster.nshards = (uint16_t)nshards;
}

int main(int argc, char **argv)
{
	static struct herald_config cfg;
	struct cluster *cluster = NULL;
	sigset_t sigs;
	int sig;
	int rc;

	config_defaults(&cfg);
	cluster_config_defaults(&cfg.cluster);
	rc = config_load(&cfg, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 2;
	hd_log_set_level((enum hd_log_level)cfg.log_level);
	raise_nofile_limit();
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

	shards = shard_create_all(nshards, &cfg);
	if (open_listeners("stomp", cfg.bind_addr, &cfg.stomp_port, CONN_KIND_STOMP))
		return 1;
	if (open_listeners("ws", cfg.bind_addr, &cfg.ws_port, CONN_KIND_WS))
		return 1;
	derive_names(&cfg);
	hd_log_info("herald %s node %s: %u shards", HERALD_VERSION, cfg.node_name, nshards);
	if (shard_start_all(shards, nshards)) {
		hd_log_err("cannot start shard threads");
		return 1;
	}
	if (cfg.cluster_enabled) {
		rc = cluster_start(&cluster, &cfg.cluster, sum_load, NULL);
		if (rc) {
			hd_log_err("cannot start the cluster layer: %s", strerror(-rc));
			shard_stop_all(shards, nshards);
			return 1;
		}
	}
	for (;;) {
		if (sigwait(&sigs, &sig))
			continue;
		if (sig == SIGHUP) {
			hd_log_info("SIGHUP: nothing to reload yet");
			continue;
		}
		break;
	}
	hd_log_info("signal %d: stopping", sig);
	if (cluster)
		cluster_leave_and_destroy(cluster);
	shard_stop_all(shards, nshards);
	shard_destroy_all(shards, nshards);
	hd_log_info("stopped");
	return 0;
}
