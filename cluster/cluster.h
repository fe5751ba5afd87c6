/*
 * cluster/cluster.h - the cluster layer's face to the `herald` binary: start the membership
 * thread (SWIM gossip + Lifeguard, admin HTTP endpoint), feed it the node's load summary,
 * leave gracefully. The cluster thread owns the membership table; nobody else touches it.
 * main.c is the only caller.
 */
#ifndef CLUSTER_CLUSTER_H
#define CLUSTER_CLUSTER_H

#include "cluster/admin.h"

#include <stdbool.h>
#include <stdint.h>

#define CLUSTER_MAX_JOIN 16

struct ctl_view;

struct cluster_config {
	char node_name[128];		/* default: hostname + ":" + STOMP port */
	char cluster_name[64];		/* default "herald" */
	char bind_addr[64];		/* gossip bind address (numeric); "" by default: main
					 * picks 127.0.0.1 without a key, else the client bind */
	uint16_t gossip_port;		/* UDP + TCP push-pull; 0 = pick a free one */
	char join[CLUSTER_MAX_JOIN][128];/* "host:port" seeds */
	int njoin;
	char key_file[256];		/* shared gossip key; "" = unauthenticated */
	char admin_bind[64];		/* default "127.0.0.1" */
	uint16_t admin_port;		/* default 15672; 0 = pick a free one */
	bool admin_auth_always;		/* credentials even on loopback (else: only off it) */
	uint32_t gossip_interval_ms;	/* protocol period, default 1000 */
	char gossip_advertise[64];	/* numeric address peers reach our gossip port at; "":
					 * the bind address, or for 0.0.0.0 the first
					 * non-loopback interface address */
	/* metadata this node advertises */
	char advertise_addr[64];	/* client-facing address */
	uint16_t stomp_port;
	uint16_t ws_port;
	uint16_t nshards;
	uint16_t route_port;		/* node links (0: none) */
	uint16_t raft_port;		/* the controller's Raft port; 0 = pick a free one */
};

/* The node's load summary, advertised in membership metadata; auth is shown by our admin
 * endpoint only. */
struct cluster_load {
	uint64_t connections;
	uint64_t subscriptions;
	uint64_t msgs_per_s;
	struct admin_auth auth;
};

/* Called on the cluster thread whenever it refreshes metadata; must be thread-safe
 * (main sums relaxed atomic counters the shards publish). */
typedef void (*cluster_load_fn)(void *arg, struct cluster_load *out);

/* Membership news for the node links (core/route.h), called on the cluster thread: member
 * `name` (never ourselves) is alive or suspect at host (its gossip address) with route port
 * route_port, or dead or gone (alive false). Called on every change; repeats happen. */
typedef void (*cluster_member_fn)(void *arg, const char *name, const char *host,
				  uint16_t route_port, bool alive);

/* What the `herald` binary plugs into the cluster thread; any field may be NULL. */
struct cluster_hooks {
	cluster_load_fn load;
	void *load_arg;
	cluster_member_fn member;
	void *member_arg;
	struct admin_links links;	/* .get NULL: the node has no links */
	admin_queues_fn queues;		/* this node's queues, for GET /api/queues */
	void *queues_arg;
	admin_metrics_fn metrics;	/* this node's counters, for GET /metrics */
	void *metrics_arg;
	void (*drain)(void *arg);	/* POST /api/drain (heraldctl drain) */
	void *drain_arg;
	struct admin_conns conns;	/* /api/connections (.list NULL: none) */
	struct admin_login_hook login;	/* admin credentials; needed when they are asked for */
	/* each view the controller applies (cluster/controller.h), on the controller thread */
	void (*view)(void *arg, const struct ctl_view *v);
	void *view_arg;
	void (*lease)(void *arg, uint64_t until_ms);	/* ctl_lease_fn */
	void *lease_arg;
};

struct cluster;

/* The 32-byte key of key file `path` (SHA-256 of its contents, trailing whitespace
 * trimmed, at least 16 bytes): the gossip MAC key, and what node links prove. 0 or a
 * negative errno (logged). */
int cluster_load_key(const char *path, uint8_t key[32]);

/* Without a key (key_file ""), cluster traffic must stay on loopback: a gossip bind or a
 * --join seed elsewhere is refused (logged with how to make a key: heraldctl cluster
 * keygen) with -EPERM. 0 otherwise. Main calls it before any listener opens; cluster_start
 * checks again. */
int cluster_check_exposure(const struct cluster_config *cfg);

/* Fills defaults (node_name left empty: main derives it). */
void cluster_config_defaults(struct cluster_config *cfg);

/* Binds the gossip and admin sockets (logging "listening proto=gossip addr=A:P" and
 * "listening proto=admin addr=A:P" with the real ports), starts the cluster thread and
 * joins the seeds. Returns 0 and *out, or a negative errno (bind failure, bad key file). */
int cluster_start(struct cluster **out, const struct cluster_config *cfg,
		  const struct cluster_hooks *hooks);

/* What a node-link probe found (core/route.h, route_set_probe_hook): member `name`'s
 * process is gone (its port refuses connections) or runs. Any thread. */
void cluster_member_probe(struct cluster *c, const char *name, bool gone);

/* Whether the node accepts clients: GET /ready answers 503 once false (main says so when
 * a drain starts). Any thread. */
void cluster_set_ready(struct cluster *c, bool ready);

/* Gossips `left`, waits briefly for it to spread (bounded), stops the thread, frees. */
void cluster_leave_and_destroy(struct cluster *c);

#endif
