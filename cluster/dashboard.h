/*
 * cluster/dashboard.h - the admin endpoint's live dashboard: one self-contained HTML page
 * (no build step, no framework) that reads the same JSON heraldctl reads (/cluster/status,
 * /api/queues) and /metrics, and draws members, links, connections, rates and queues.
 */
#ifndef CLUSTER_DASHBOARD_H
#define CLUSTER_DASHBOARD_H

#include <stddef.h>

/* The page, and its length. */
extern const char admin_dashboard_html[];
extern const size_t admin_dashboard_html_len;

#endif
