/*
 * tools/ctl_conns.h - `heraldctl connections [--json]` and `heraldctl connections close ID`:
 * a node's client connections (GET /api/connections) and closing one
 * (POST /api/connections/<id>/close). The node keeps the list only while someone asks, so
 * the first answer may come back "not fresh": heraldctl asks again a second later.
 */
#ifndef TOOLS_CTL_CONNS_H
#define TOOLS_CTL_CONNS_H

#include "tools/ctl_cluster.h"

/* Returns the exit code: 0, or 1 when the node is unreachable or answers nonsense. */
int ctl_connections(const struct ctl_opts *o);
/* Returns 0 once the node accepted, 1 when it does not know the id or is unreachable. */
int ctl_connections_close(const struct ctl_opts *o, const char *id);

#endif
