/*
 * core/mdeque.h - a double-ended ring of message references in order: a queue's ready
 * messages and a consumer's unacked deliveries (dest.c), a subscription's unacked
 * deliveries on its connection's shard (session.c). Grows by doubling; never shrinks
 * until freed. Single-threaded: belongs to the shard of its owner.
 */
#ifndef CORE_MDEQUE_H
#define CORE_MDEQUE_H

#include <stdint.h>

struct hmsg;

struct mentry {
	struct hmsg *m;		/* one reference, held by the deque */
	uint64_t tag;		/* delivery tag, once delivered */
	uint32_t redelivered;
	uint32_t epoch;		/* consumer side: the subscription's owner_epoch when delivered;
				 * a backup's replica: 1 when delivered */
	uint64_t rseq;		/* owner and backups: replication number (core/replica.h) */
};

struct mdeque {
	struct mentry *e;
	uint32_t cap;		/* a power of two, or 0 */
	uint32_t head;
	uint32_t n;
};

void mdeque_push_back(struct mdeque *d, struct mentry x);
void mdeque_push_front(struct mdeque *d, struct mentry x);
struct mentry mdeque_pop_front(struct mdeque *d);
/* Inserts x before entry i (i == n: at the back), keeping the order of the rest (O(i)). */
void mdeque_insert_at(struct mdeque *d, uint32_t i, struct mentry x);
/* Removes entry i, keeping the order of the rest (O(n - i)). */
void mdeque_remove_at(struct mdeque *d, uint32_t i);
/* Index of the entry with `tag` in a deque whose tags ascend (delivery order), or -1.
 * Binary search: an ACK among 200,000 unacked deliveries must not walk them all. */
int64_t mdeque_find_tag(struct mdeque *d, uint64_t tag);
/* Drops every reference it holds and its memory. */
void mdeque_free(struct mdeque *d);

static inline struct mentry *mdeque_at(struct mdeque *d, uint32_t i)
{
	return &d->e[(d->head + i) & (d->cap - 1)];
}

#endif
