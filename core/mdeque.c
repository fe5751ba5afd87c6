/*
 * core/mdeque.c - growable double-ended ring of message references (see mdeque.h).
 */
#include "core/mdeque.h"

#include "core/base/hd_alloc.h"
#include "core/hmsg.h"

#include <string.h>

static void grow(struct mdeque *d)
{
	uint32_t cap = d->cap ? d->cap * 2 : 8;
	struct mentry *e = hd_alloc(cap * sizeof(*e));

	for (uint32_t i = 0; i < d->n; i++)
		e[i] = *mdeque_at(d, i);
	hd_free(d->e);
	d->e = e;
	d->cap = cap;
	d->head = 0;
}

void mdeque_push_back(struct mdeque *d, struct mentry x)
{
	if (d->n == d->cap)
		grow(d);
	d->e[(d->head + d->n) & (d->cap - 1)] = x;
	d->n++;
}

void mdeque_push_front(struct mdeque *d, struct mentry x)
{
	if (d->n == d->cap)
		grow(d);
	d->head = (d->head - 1) & (d->cap - 1);
	d->e[d->head] = x;
	d->n++;
}

struct mentry mdeque_pop_front(struct mdeque *d)
{
	struct mentry x = d->e[d->head];

	d->head = (d->head + 1) & (d->cap - 1);
	d->n--;
	return x;
}

void mdeque_insert_at(struct mdeque *d, uint32_t i, struct mentry x)
{
	/* room at the front, then slide the first i entries one step towards it */
	mdeque_push_front(d, x);
	for (uint32_t k = 0; k < i; k++)
		*mdeque_at(d, k) = *mdeque_at(d, k + 1);
	*mdeque_at(d, i) = x;
}

int64_t mdeque_find_tag(struct mdeque *d, uint64_t tag)
{
	uint32_t lo = 0;
	uint32_t hi = d->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (mdeque_at(d, mid)->tag < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->n && mdeque_at(d, lo)->tag == tag ? (int64_t)lo : -1;
}

void mdeque_remove_at(struct mdeque *d, uint32_t i)
{
	for (; i + 1 < d->n; i++)
		*mdeque_at(d, i) = *mdeque_at(d, i + 1);
	d->n--;
}

void mdeque_free(struct mdeque *d)
{
	for (uint32_t i = 0; i < d->n; i++)
		hmsg_unref(mdeque_at(d, i)->m);
	hd_free(d->e);
	memset(d, 0, sizeof(*d));
}
