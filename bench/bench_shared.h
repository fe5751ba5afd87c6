/*
 * bench/bench_shared.h - what herald-bench's processes and threads share: the run phase
 * set by the coordinator (the parent process) and one counter block per worker thread,
 * all in one MAP_SHARED mapping made before the worker processes fork.
 *
 * Ownership: a tstats block is written only by its worker thread (relaxed stores of its
 * own running totals, once per loop pass) and read by anyone (the coordinator's progress
 * line, publishers' flow-control window). Its histogram is plain memory, read only after
 * the worker has exited. The phase and the run timestamps are written only by the
 * coordinator; a worker that sees phase >= RUN may read t_measure_ns (release/acquire).
 *
 * Also the server probe: CPU-seconds and RSS of --server-pid from /proc.
 */
#ifndef BENCH_SHARED_H
#define BENCH_SHARED_H

#include "bench/bench_hist.h"
#include "core/base/hd_compiler.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

enum bench_phase {
	BENCH_PH_SETUP = 0,	/* connect, CONNECT, SUBSCRIBE with receipt */
	BENCH_PH_RUN,		/* publish */
	BENCH_PH_STOP,		/* stop publishing; keep receiving (drain) */
	BENCH_PH_CLOSE,		/* DISCONNECT with a receipt, so the server has every ACK */
	BENCH_PH_DONE,		/* close everything and exit */
	BENCH_PH_ABORT,		/* as DONE, after a fatal error */
};

struct bench_tstats {
	/* running totals since the start */
	_Atomic uint64_t published;	/* SENDs written into connection buffers */
	_Atomic uint64_t delivered;	/* MESSAGEs received */
	/* the measured window: messages stamped at or after t_measure_ns */
	_Atomic uint64_t m_published;
	_Atomic uint64_t m_delivered;
	_Atomic uint64_t order_errors;	/* a seq not above the last one from that publisher */
	_Atomic uint64_t acks;		/* ACK frames sent */
	_Atomic uint64_t receipts;	/* RECEIPTs for SENDs (--receipts) */
	_Atomic uint64_t connected;	/* CONNECTED received */
	_Atomic uint64_t ready;		/* set-up finished (subscribed, receipt seen) */
	_Atomic uint64_t errors;	/* ERROR frames, refused or dropped connections */
	_Atomic uint64_t stale;		/* MESSAGEs left over from an earlier run (acked, ignored) */
	_Atomic uint64_t open;		/* connections started and not closed */
	_Atomic uint64_t last_connected_ns;
	_Atomic uint64_t last_ready_ns;
	_Atomic uint32_t error_set;	/* 1 once last_error holds text */
	char last_error[200];
	struct bench_hist hist;		/* latency from the scheduled send time, ns */
	struct bench_hist hist_sent;	/* latency from when the frame was queued, ns */
	struct bench_hist hist_receipt;	/* --receipts: a SEND's RECEIPT, from its scheduled
					 * send time, ns */
} HD_ALIGNED_CACHELINE;

struct bench_shared {
	_Atomic int phase;		/* enum bench_phase, coordinator-written */
	_Atomic uint64_t t_run_ns;	/* publishing started (CLOCK_MONOTONIC) */
	_Atomic uint64_t t_measure_ns;	/* t_run_ns + warmup */
	uint32_t nthreads;		/* worker threads over all processes */
	uint32_t run_id;		/* 16 bits in every stamp: tells this run's messages
					 * from ones an earlier run left in a queue */
	struct bench_tstats t[] HD_ALIGNED_CACHELINE;
};

/* Maps a zeroed shared block for nthreads workers (MAP_SHARED | MAP_ANONYMOUS); aborts on
 * failure. Every histogram starts empty. */
struct bench_shared *bench_shared_create(uint32_t nthreads);

/* Sums of the running totals over every worker. */
struct bench_sums {
	uint64_t published, delivered, m_published, m_delivered, order_errors, acks, receipts;
	uint64_t connected, ready, errors, stale, open, last_connected_ns, last_ready_ns;
};
void bench_shared_sum(const struct bench_shared *sh, struct bench_sums *out);

/* Records a worker's error text, first one wins, and counts it. Any worker thread. */
void bench_tstats_error(struct bench_tstats *t, const char *fmt, ...) HD_PRINTF(2, 3);

/* The first error text recorded by any worker, or NULL. */
const char *bench_shared_first_error(const struct bench_shared *sh);

/* A /proc sample of the server. */
struct bench_proc_sample {
	double cpu_s;		/* utime + stime, seconds */
	uint64_t rss_bytes;	/* VmRSS */
	int ok;			/* 1 when both were read */
};

/* Reads /proc/<pid>/stat and /proc/<pid>/status. */
void bench_proc_sample(pid_t pid, struct bench_proc_sample *out);

/* The kernel's slab memory (/proc/meminfo "Slab:"), bytes; 0 if unknown. Socket structures
 * live there, so its growth over a connections run approximates what the kernel spends per
 * connection (both ends on loopback; anything else on the machine adds noise). */
uint64_t bench_kernel_slab_bytes(void);

#endif
