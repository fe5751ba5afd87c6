/*
 * tools/ctl_cluster.h - `heraldctl cluster ...`: reads a node's admin endpoint
 * (GET /cluster/status, JSON described in cluster/admin.h) and prints it for people (a
 * table and a summary line) or scripts (--json: the object as the node sent it); and makes
 * the shared key that nodes on more than one machine need.
 */
#ifndef TOOLS_CTL_CLUSTER_H
#define TOOLS_CTL_CLUSTER_H

#include <stdbool.h>

struct ctl_opts {
	const char *node;	/* "host:port" of the admin endpoint */
	int timeout_ms;
	bool json;
};

/* `cluster status`. Returns the exit code: 0, or 1 when the node is unreachable or its
 * answer is not the expected JSON. */
int ctl_cluster_status(const struct ctl_opts *o);

/* `drain`: asks the node to stop gracefully (POST /api/drain: as SIGTERM, it stops being
 * ready, hands its queues to the other nodes, tells its clients to reconnect elsewhere and
 * exits). Returns 0 once the node accepted, 1 otherwise. */
int ctl_drain(const struct ctl_opts *o);

/* `cluster keygen`: prints a new random cluster key (32 bytes, base64) for --gossip-key;
 * asks no node. Returns 0, or 1 when it cannot be written. */
int ctl_cluster_keygen(const struct ctl_opts *o);

#endif
