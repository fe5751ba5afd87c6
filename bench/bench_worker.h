/*
 * bench/bench_worker.h - herald-bench's worker threads: each owns an epoll set and a slice
 * of the connections, drives their set-up (connect, CONNECT, SUBSCRIBE with receipt),
 * publishes (flow-controlled by a window of in-flight messages, or paced at a fixed rate),
 * receives and checks MESSAGEs (sequence per publisher, latency from the send stamp in the
 * body), and publishes its running totals into its bench_tstats block once per loop pass.
 *
 * A worker process runs bench_worker_run_process: `threads` workers over its contiguous
 * range of global connection ids, connection i of the range going to worker i % threads.
 * The coordinator (herald_bench.c) drives the phases through bench_shared.
 */
#ifndef BENCH_WORKER_H
#define BENCH_WORKER_H

#include <stdint.h>

struct bench_cfg;
struct bench_shared;

/* Runs the workers of process `proc` (of nprocs) until the phase is DONE or ABORT; they
 * cover global connection ids [lo, hi). Returns 0, or -1 when a thread could not start. */
int bench_worker_run_process(const struct bench_cfg *cfg, struct bench_shared *sh, uint32_t proc,
			     uint32_t lo, uint32_t hi);

#endif
