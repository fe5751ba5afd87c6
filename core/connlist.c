/*
 * core/connlist.c - listing and closing client connections for an administrator (see
 * connlist.h).
 */
#include "core/connlist.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/receipt.h"
#include "core/session_state.h"
#include "core/shard.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RECENT_MS 800		/* a request this recent makes the next one's snapshots count:
				 * what a list shows is at most this old */
#define ID_SHARD_SHIFT 40
#define MAX_CLOSES 256

static _Atomic uint64_t requested_ms;	/* the last request for a list */
static pthread_mutex_t closes_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t closes[MAX_CLOSES];
static _Atomic uint32_t ncloses;	/* read without the lock by every shard's tick */

void connlist_init(struct conn_snapshot *cs)
{
	memset(cs, 0, sizeof(*cs));
	pthread_mutex_init(&cs->mu, NULL);
}

void connlist_fini(struct conn_snapshot *cs)
{
	hd_free(cs->c);
	pthread_mutex_destroy(&cs->mu);
}

static uint64_t conn_id(const struct shard *sh, const struct net_conn *c)
{
	return (uint64_t)sh->id << ID_SHARD_SHIFT | (c->id & ((1ull << ID_SHARD_SHIFT) - 1));
}

static void take(struct shard *sh, uint64_t now_ms)
{
	struct net_loop *l = &sh->loop;
	struct conn_info *c = hd_alloc((l->nopen + 1) * sizeof(*c));
	uint32_t n = 0;

	for (uint32_t i = 0; i < l->nconns_cap && n < l->nopen; i++) {
		struct net_conn *nc = l->conns[i];
		struct session *s = nc && nc->state == NET_CONN_OPEN ? nc->user : NULL;
		char ip[INET_ADDRSTRLEN] = "?";

		if (!s)
			continue;
		inet_ntop(AF_INET, &nc->peer.sin_addr, ip, sizeof(ip));
		c[n] = (struct conn_info){
			.id = conn_id(sh, nc), .websocket = s->ws != NULL,
			.subscriptions = s->nsubs, .bytes_in = nc->rx_total, .bytes_out = nc->tx_total,
			.connected_ms = now_ms - s->accepted_ms,
		};
		snprintf(c[n].user, sizeof(c[n].user), "%s", s->state == SESSION_CONNECTED ? s->user : "");
		snprintf(c[n].vhost, sizeof(c[n].vhost), "%s", s->vhost);
		snprintf(c[n].address, sizeof(c[n].address), "%s:%u", ip, ntohs(nc->peer.sin_port));
		n++;
	}
	pthread_mutex_lock(&sh->conns_snap.mu);
	hd_free(sh->conns_snap.c);
	sh->conns_snap.c = c;
	sh->conns_snap.n = n;
	sh->conns_snap.taken_ms = now_ms;
	pthread_mutex_unlock(&sh->conns_snap.mu);
}

static void apply_closes(struct shard *sh)
{
	uint64_t mine[MAX_CLOSES];
	uint32_t n = 0, kept = 0;

	pthread_mutex_lock(&closes_mu);
	for (uint32_t i = 0; i < ncloses; i++) {
		if (closes[i] >> ID_SHARD_SHIFT == sh->id)
			mine[n++] = closes[i];
		else
			closes[kept++] = closes[i];
	}
	atomic_store_explicit(&ncloses, kept, memory_order_relaxed);
	pthread_mutex_unlock(&closes_mu);
	for (uint32_t k = 0; k < n; k++) {
		for (uint32_t i = 0; i < sh->loop.nconns_cap; i++) {
			struct net_conn *nc = sh->loop.conns[i];
			struct session *s = nc && nc->state == NET_CONN_OPEN ? nc->user : NULL;

			if (s && conn_id(sh, nc) == mine[k]) {
				hd_log_conn(HD_LOG_INFO, nc->id, "closed by an administrator");
				session_fail(sh, s, "closed by an administrator",
					     "An administrator closed this connection (heraldctl "
					     "connections close)", NULL);
				break;
			}
		}
	}
}

void connlist_tick(struct shard *sh, uint64_t now_ms)
{
	if (sh->conns_snap.taken_ms < atomic_load_explicit(&requested_ms, memory_order_relaxed))
		take(sh, now_ms);
	if (atomic_load_explicit(&ncloses, memory_order_relaxed))
		apply_closes(sh);
}

bool connlist_want(struct shard **shards, uint32_t n, uint64_t now_ms)
{
	uint64_t prev = atomic_exchange_explicit(&requested_ms, now_ms, memory_order_relaxed);
	bool fresh = prev && now_ms - prev < RECENT_MS;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t one = 1;

		/* a snapshot counts when taken since the request before this one */
		pthread_mutex_lock(&shards[i]->conns_snap.mu);
		fresh = fresh && shards[i]->conns_snap.taken_ms >= prev;
		pthread_mutex_unlock(&shards[i]->conns_snap.mu);
		/* an idle shard sleeps up to a second: wake it so the list comes sooner */
		if (write(shards[i]->wake.eventfd, &one, sizeof(one)) < 0)
			hd_log_warn("cannot wake shard %u", i);
	}
	return fresh;
}

void connlist_each(struct shard **shards, uint32_t n,
		   void (*fn)(void *ctx, const struct conn_info *c), void *ctx)
{
	for (uint32_t i = 0; i < n; i++) {
		struct conn_snapshot *cs = &shards[i]->conns_snap;

		pthread_mutex_lock(&cs->mu);
		for (uint32_t k = 0; k < cs->n; k++)
			fn(ctx, &cs->c[k]);
		pthread_mutex_unlock(&cs->mu);
	}
}

bool connlist_close(struct shard **shards, uint32_t n, uint64_t id)
{
	uint32_t shard = (uint32_t)(id >> ID_SHARD_SHIFT);
	bool listed = false;
	uint64_t one = 1;

	if (shard >= n)
		return false;
	pthread_mutex_lock(&shards[shard]->conns_snap.mu);
	for (uint32_t k = 0; k < shards[shard]->conns_snap.n && !listed; k++)
		listed = shards[shard]->conns_snap.c[k].id == id;
	pthread_mutex_unlock(&shards[shard]->conns_snap.mu);
	if (!listed)
		return false;
	pthread_mutex_lock(&closes_mu);
	if (ncloses < MAX_CLOSES) {
		closes[ncloses] = id;
		atomic_store_explicit(&ncloses, ncloses + 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&closes_mu);
	if (write(shards[shard]->wake.eventfd, &one, sizeof(one)) < 0)
		hd_log_warn("cannot wake shard %u", shard);
	return true;
}
