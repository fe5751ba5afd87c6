/*
 * core/xring.h - single-producer/single-consumer rings between threads (one per ordered
 * pair of shards, Seastar's _qs[from][to]), plus the wake-up that lets a consumer sleep.
 *
 * Ownership: exactly one producer thread calls xring_push/xring_publish, exactly one
 * consumer thread calls xring_pop. What an item's ptr points to belongs to the consumer
 * once pushed. Head and tail sit on separate cache lines; the producer publishes a batch
 * with one release store, the consumer frees slots with one release store per batch.
 */
#ifndef CORE_XRING_H
#define CORE_XRING_H

#include "core/base/hd_compiler.h"
#include "core/xmsg.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Sleep/wake handshake of one consumer thread, shared by all rings that feed it. */
struct xwake {
	_Atomic uint32_t sleeping;	/* 1 while the consumer may block in its loop's wait */
	int eventfd;			/* written by a producer only when sleeping == 1 */
	_Atomic uint64_t wakes;		/* eventfd writes made (stats) */
};

struct xring {
	/* producer side */
	HD_ALIGNED_CACHELINE _Atomic uint32_t tail;	/* next slot to fill (published) */
	uint32_t tail_local;				/* filled, not yet published */
	uint32_t head_cache;				/* producer's last view of head */
	/* consumer side */
	HD_ALIGNED_CACHELINE _Atomic uint32_t head;	/* next slot to read */
	uint32_t tail_cache;				/* consumer's last view of tail */
	/* immutable */
	HD_ALIGNED_CACHELINE uint32_t mask;		/* capacity - 1 */
	struct xwake *consumer;
	struct xwake *producer;				/* woken by pops, or NULL (most rings) */
	struct xmsg *slots;
};

/* Prepares r with `capacity` slots (a power of two). Not thread-safe; call before threads. */
void xring_init(struct xring *r, uint32_t capacity, struct xwake *consumer);
void xring_fini(struct xring *r);

/* Lets pops wake the producer, so a producer that can neither park an item nor drop it
 * (the auth thread handing back a finished login) can block until there is space: it
 * announces with xwake_sleep(producer), re-checks xring_space, then blocks on producer's
 * eventfd. Each pop batch then costs a fence. Not thread-safe; call before threads. */
void xring_set_producer(struct xring *r, struct xwake *producer);

/* Copies `m` into the ring (unpublished until xring_publish). Returns -EAGAIN when full:
 * the caller still owns it and parks it, never spins or drops. Producer thread only. */
HD_MUST_CHECK int xring_push(struct xring *r, const struct xmsg *m);

/* Makes every pushed item visible to the consumer and wakes it if it is asleep.
 * Producer thread only; call once per batch (per loop turn). */
void xring_publish(struct xring *r);

/* Pops up to `max` items into out[], waking a waiting producer (xring_set_producer).
 * Consumer thread only. Returns the count. */
uint32_t xring_pop(struct xring *r, struct xmsg *out, uint32_t max);

/* True when a published item is waiting (consumer thread, before sleeping). */
bool xring_has_items(struct xring *r);

/* Free slots as the producer sees them now (producer thread). */
uint32_t xring_space(struct xring *r);

/* xmsgs waiting for room in a full xring, in order (the producer's own queue: a full ring
 * never blocks or drops; once something is parked, everything after it parks too). */
struct xpark {
	struct xmsg *q;
	uint32_t head;
	uint32_t n;
	uint32_t cap;
};

/* Appends m to the park (grows as needed). Producer thread. */
void xpark_push(struct xpark *p, const struct xmsg *m);
/* Sends m to r, or parks it when r is full or something is parked already (order holds:
 * once something is parked, everything after it parks too). Returns 1 when it parked. */
uint32_t xpark_send(struct xpark *p, struct xring *r, const struct xmsg *m);
/* Moves parked xmsgs into r, in order, while it has room; returns how many moved. */
uint32_t xpark_flush(struct xpark *p, struct xring *r);

/* Consumer side of the sleep handshake: announce sleep, then re-check every ring that
 * feeds you (xring_has_items) before blocking; xwake_awake once you are running again. */
void xwake_init(struct xwake *w, int eventfd);
void xwake_sleep(struct xwake *w);
void xwake_awake(struct xwake *w);

#endif
