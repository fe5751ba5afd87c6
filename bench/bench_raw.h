/*
 * bench/bench_raw.h - the raw ceiling for herald-bench: a trivial single-threaded STOMP
 * relay (epoll, plain batched write(2)s, no queues, acks, limits or persistence) that puts
 * the same MESSAGE bytes as a broker on the same number of sockets. Run against it, a
 * workload shows what the kernel allows on this machine; Herald's figures are read as a
 * fraction of it.
 */
#ifndef BENCH_RAW_H
#define BENCH_RAW_H

#include <signal.h>

struct bench_cfg;

/* Listens on cfg->raw_bind:cfg->raw_port, logs "listening proto=stomp addr=IP:PORT" on
 * stderr (as herald does) and relays until *stop is non-zero. Returns the exit code. */
int bench_raw_run(const struct bench_cfg *cfg, volatile sig_atomic_t *stop);

#endif
