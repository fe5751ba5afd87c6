/*
 * tools/ctl_cluster.h - `heraldctl cluster ...`: reads a node's admin endpoint
 * (GET /cluster/status, JSON described in cluster/admin.h) and prints it for people (a
 * table and a summary line) or scripts (--json: the object as the node sent it).
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

#endif
