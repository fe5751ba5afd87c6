/*
 * core/xring.c - SPSC rings between shard threads and the eventfd wake-up.
 *
 * Wake-up protocol (the fence pair that makes "no syscall per message" safe):
 *   consumer: sleeping = 1; seq_cst fence; re-check every ring; block in the loop's wait
 *   producer: publish tail (release); seq_cst fence; if sleeping: write eventfd
 * Either the consumer's re-check sees the new tail, or the producer sees sleeping == 1 and
 * writes the eventfd; both fences are needed, otherwise store->load reordering lets each
 * side miss the other (Dekker). A spurious eventfd write costs one extra loop turn.
 * A ring with a producer waker (xring_set_producer) runs the same pair mirrored: the
 * producer announces sleep and re-checks space, the consumer publishes head, fences, and
 * writes the producer's eventfd if it sleeps.
 */
#include "core/xring.h"

#include "core/base/hd_alloc.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

void xring_init(struct xring *r, uint32_t capacity, struct xwake *consumer)
{
	HD_ASSERT(capacity && (capacity & (capacity - 1)) == 0);
	memset(r, 0, sizeof(*r));
	r->mask = capacity - 1;
	r->consumer = consumer;
	r->slots = hd_calloc(capacity, sizeof(*r->slots));
}

void xring_fini(struct xring *r)
{
	hd_free(r->slots);
	r->slots = NULL;
}

void xring_set_producer(struct xring *r, struct xwake *producer)
{
	r->producer = producer;
}

/* Writes w's eventfd if its thread announced sleep. The caller's fence orders its ring
 * store before our load of `sleeping` (see top). */
static void wake_if_sleeping(struct xwake *w)
{
	uint64_t one = 1;

	if (!w || !atomic_load_explicit(&w->sleeping, memory_order_relaxed))
		return;
	/* only a sleeping thread costs a syscall; clear the flag so other threads in the
	 * same window do not write too */
	if (atomic_exchange_explicit(&w->sleeping, 0, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&w->wakes, 1, memory_order_relaxed);
		if (write(w->eventfd, &one, sizeof(one)) < 0)
			HD_ASSERT(errno == EAGAIN);
	}
}

int xring_push(struct xring *r, const struct xmsg *m)
{
	if (r->tail_local - r->head_cache > r->mask) {
		/* acquire: the consumer's reads of the slots it freed happen before we reuse them */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (r->tail_local - r->head_cache > r->mask)
			return -EAGAIN;
	}
	r->slots[r->tail_local & r->mask] = *m;
	r->tail_local++;
	return 0;
}

uint32_t xring_space(struct xring *r)
{
	r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
	return r->mask + 1 - (r->tail_local - r->head_cache);
}

void xring_publish(struct xring *r)
{
	if (r->tail_local == atomic_load_explicit(&r->tail, memory_order_relaxed))
		return;
	/* release: slot contents become visible before the consumer sees the new tail */
	atomic_store_explicit(&r->tail, r->tail_local, memory_order_release);
	/* seq_cst fence: our tail store is ordered before the load of `sleeping` (see top) */
	atomic_thread_fence(memory_order_seq_cst);
	wake_if_sleeping(r->consumer);
}

uint32_t xring_pop(struct xring *r, struct xmsg *out, uint32_t max)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t n;

	if (r->tail_cache == head)
		/* acquire: pairs with the producer's release store of tail */
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
	n = r->tail_cache - head;
	if (n > max)
		n = max;
	for (uint32_t i = 0; i < n; i++)
		out[i] = r->slots[(head + i) & r->mask];
	if (!n)
		return 0;
	/* release: our slot reads complete before the producer may overwrite them */
	atomic_store_explicit(&r->head, head + n, memory_order_release);
	if (r->producer) {
		/* seq_cst fence: our head store is ordered before the load of the producer's
		 * `sleeping` (the mirrored pair, see top) */
		atomic_thread_fence(memory_order_seq_cst);
		wake_if_sleeping(r->producer);
	}
	return n;
}

bool xring_has_items(struct xring *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
	return r->tail_cache != head;
}

void xwake_init(struct xwake *w, int eventfd)
{
	atomic_init(&w->sleeping, 0);
	atomic_init(&w->wakes, 0);
	w->eventfd = eventfd;
}

void xwake_sleep(struct xwake *w)
{
	atomic_store_explicit(&w->sleeping, 1, memory_order_relaxed);
	/* seq_cst fence: the flag store is ordered before the caller's ring re-checks */
	atomic_thread_fence(memory_order_seq_cst);
}

void xwake_awake(struct xwake *w)
{
	atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
}

void xpark_push(struct xpark *p, const struct xmsg *m)
{
	if (p->n == p->cap) {
		uint32_t cap = p->cap ? p->cap * 2 : 64;
		struct xmsg *q = hd_alloc(cap * sizeof(*q));

		for (uint32_t i = 0; i < p->n; i++)
			q[i] = p->q[(p->head + i) % p->cap];
		hd_free(p->q);
		p->q = q;
		p->cap = cap;
		p->head = 0;
	}
	p->q[(p->head + p->n) % p->cap] = *m;
	p->n++;
}

uint32_t xpark_send(struct xpark *p, struct xring *r, const struct xmsg *m)
{
	if (!p->n && !xring_push(r, m))
		return 0;
	xpark_push(p, m);
	return 1;
}

uint32_t xpark_flush(struct xpark *p, struct xring *r)
{
	uint32_t moved = 0;

	while (p->n && !xring_push(r, &p->q[p->head])) {
		p->head = (p->head + 1) % p->cap;
		p->n--;
		moved++;
	}
	return moved;
}
