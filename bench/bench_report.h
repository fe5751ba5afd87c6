/*
 * bench/bench_report.h - herald-bench's results: the figures computed by the coordinator
 * after a run, printed as a summary table and/or written as one JSON object.
 * Coordinator thread only.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include "bench/bench_hist.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct bench_cfg;

struct bench_result {
	const struct bench_cfg *cfg;
	uint32_t npub;
	uint32_t nsub;
	uint32_t procs;
	uint32_t threads;		/* per process */
	bool aborted;			/* set-up failed or the run was cut short */
	bool partial;			/* connections: the server took fewer than asked */
	const char *first_error;	/* NULL when none */
	char date[40];			/* UTC, ISO 8601 */
	char host[64];
	/* set-up */
	double setup_s;			/* first connect to last subscription receipt */
	double connect_rate;		/* STOMP sessions (CONNECTED) per second */
	double ready_rate;		/* connections set up (subscribed) per second */
	uint64_t connected;
	uint64_t ready;
	/* the run */
	double measured_s;		/* publishing time after the warm-up */
	double drain_s;			/* from the stop to the last delivery */
	uint64_t published;		/* all, warm-up included */
	uint64_t delivered;
	uint64_t expected;		/* deliveries the publishes should have caused */
	uint64_t lost;			/* expected - delivered, when positive */
	uint64_t extra;			/* delivered - expected, when positive (duplicates) */
	uint64_t m_published;		/* measured window */
	uint64_t m_delivered;
	uint64_t order_errors;
	uint64_t acks;
	uint64_t receipts;		/* --receipts: RECEIPTs for SENDs */
	uint64_t errors;
	uint64_t stale;			/* earlier runs' messages received (acked, not counted) */
	double pub_rate;		/* measured messages/s */
	double del_rate;		/* measured deliveries/s */
	struct bench_hist hist;		/* latency of measured deliveries, from scheduled time */
	struct bench_hist hist_sent;	/* ... from the time the frame was queued */
	struct bench_hist hist_receipt;	/* --receipts: SEND to RECEIPT, from scheduled time */
	/* the server, when --server-pid was given */
	bool have_server;
	double server_cpu_s;		/* over the measured window and the drain */
	double server_wall_s;
	uint64_t rss_base;		/* before the first connection */
	uint64_t rss_start;		/* at the start of the measured window */
	uint64_t rss_end;
	uint64_t rss_peak;		/* highest sample during the run */
	double del_per_cpu_s;		/* measured deliveries per server CPU-second */
	double cpu_s_per_million;	/* server CPU-seconds per million deliveries */
	double rss_per_conn;		/* connections: (rss after set-up - base) / connections */
	double setup_cpu_us_per_conn;	/* connections: server CPU per connection set up */
	double slab_per_conn;		/* connections: kernel slab growth per connection */
};

/* The human-readable summary. */
void bench_report_table(const struct bench_result *r, FILE *f);

/* One JSON object (and a newline). */
void bench_report_json(const struct bench_result *r, FILE *f);

#endif
