/*
 * tools/ctl_queues.h - `heraldctl queues`: every queue in the cluster with its owner node,
 * held messages and consumers. Asks the node named by --node for the members, then each
 * alive member's admin endpoint (its gossip address, the admin port it advertises) for
 * GET /api/queues (the queues it owns), and merges the answers.
 */
#ifndef TOOLS_CTL_QUEUES_H
#define TOOLS_CTL_QUEUES_H

#include "tools/ctl_cluster.h"

/* Returns the exit code: 0, or 1 when the node asked first is unreachable or answers
 * nonsense (a member that does not answer is reported on stderr and skipped). */
int ctl_queues(const struct ctl_opts *o);

#endif
