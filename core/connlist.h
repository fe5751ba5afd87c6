/*
 * core/connlist.h - client connections as an administrator sees them (heraldctl
 * connections, GET /api/connections) and closing one by its id. A request wakes every
 * shard, which rebuilds a snapshot of its connections at once (never otherwise: a node with
 * 20,000 connections should not pay for a list nobody reads); an answer counts as fresh
 * when every snapshot was taken since the request before it, so a client asks twice, a
 * moment apart. Close requests wait in one list each shard looks at on its tick.
 *
 * Threads: connlist_take and connlist_apply_closes on the shard; the rest from any thread.
 */
#ifndef CORE_CONNLIST_H
#define CORE_CONNLIST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct shard;

struct conn_info {
	uint64_t id;			/* shard << 40 | its loop's connection id */
	char user[64];			/* "" before login */
	char vhost[64];
	char address[48];		/* peer ip:port */
	bool websocket;
	uint32_t subscriptions;
	uint64_t bytes_in, bytes_out;
	uint64_t connected_ms;		/* age */
};

struct conn_snapshot {
	pthread_mutex_t mu;
	struct conn_info *c;
	uint32_t n;
	uint64_t taken_ms;		/* 0: never */
};

void connlist_init(struct conn_snapshot *cs);
void connlist_fini(struct conn_snapshot *cs);

/* Someone wants the list: every shard rebuilds its snapshot. Returns true when every
 * snapshot was taken since the previous request (a recent one). */
bool connlist_want(struct shard **shards, uint32_t n, uint64_t now_ms);
/* Calls fn for each connection of each shard's snapshot. */
void connlist_each(struct shard **shards, uint32_t n,
		   void (*fn)(void *ctx, const struct conn_info *c), void *ctx);
/* Asks the owning shard to close connection `id` (ERROR "closed by an administrator").
 * False when no snapshot lists it. */
bool connlist_close(struct shard **shards, uint32_t n, uint64_t id);

/* The shard's tick: rebuild its snapshot if wanted, close what was asked. */
void connlist_tick(struct shard *sh, uint64_t now_ms);

#endif
