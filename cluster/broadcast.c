/*
 * cluster/broadcast.c - see broadcast.h. Items sit in one list per transmit count, each
 * sorted newest first, so filling a packet walks the lists in order and a transmitted item
 * moves one list down; a hash table on the key finds the item a newer update replaces.
 */
#include "cluster/broadcast.h"

#include "cluster/wire.h"
#include "core/base/hd_alloc.h"

#include <math.h>
#include <string.h>

struct broadcast_item {
	struct broadcast_item *next;	/* in its transmit-count list */
	struct broadcast_item *prev;
	struct broadcast_item *hnext;	/* hash chain */
	uint64_t hash;
	uint64_t id;			/* insertion order */
	uint32_t transmits;
	uint16_t len;			/* bytes of msg */
	char *key;
	uint8_t msg[];
};

static uint64_t hash_key(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 0x100000001b3ull;
	return h;
}

void broadcast_init(struct broadcast_queue *q)
{
	memset(q, 0, sizeof(*q));
	q->table_cap = 64;
	q->table = hd_calloc(q->table_cap, sizeof(*q->table));
}

void broadcast_clear(struct broadcast_queue *q)
{
	for (int t = 0; t < BROADCAST_MAX_TRANSMITS; t++) {
		struct broadcast_item *it = q->bucket[t];

		while (it) {
			struct broadcast_item *next = it->next;

			hd_free(it->key);
			hd_free(it);
			it = next;
		}
		q->bucket[t] = NULL;
	}
	memset(q->table, 0, q->table_cap * sizeof(*q->table));
	q->count = 0;
}

void broadcast_fini(struct broadcast_queue *q)
{
	broadcast_clear(q);
	hd_free(q->table);
	q->table = NULL;
}

/* Inserts into the list for its transmit count, keeping newest first. */
static void list_insert(struct broadcast_queue *q, struct broadcast_item *it)
{
	struct broadcast_item **link = &q->bucket[it->transmits];
	struct broadcast_item *prev = NULL;

	while (*link && (*link)->id > it->id) {
		prev = *link;
		link = &(*link)->next;
	}
	it->next = *link;
	it->prev = prev;
	if (*link)
		(*link)->prev = it;
	*link = it;
}

static void list_remove(struct broadcast_queue *q, struct broadcast_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		q->bucket[it->transmits] = it->next;
	if (it->next)
		it->next->prev = it->prev;
	it->next = it->prev = NULL;
}

static struct broadcast_item **table_slot(const struct broadcast_queue *q, uint64_t hash,
					  const char *key)
{
	struct broadcast_item **link = &q->table[hash & (q->table_cap - 1)];

	while (*link && ((*link)->hash != hash || strcmp((*link)->key, key)))
		link = &(*link)->hnext;
	return link;
}

static void table_grow(struct broadcast_queue *q)
{
	size_t cap = q->table_cap * 2;
	struct broadcast_item **table = hd_calloc(cap, sizeof(*table));

	for (size_t i = 0; i < q->table_cap; i++) {
		struct broadcast_item *it = q->table[i];

		while (it) {
			struct broadcast_item *next = it->hnext;

			it->hnext = table[it->hash & (cap - 1)];
			table[it->hash & (cap - 1)] = it;
			it = next;
		}
	}
	hd_free(q->table);
	q->table = table;
	q->table_cap = cap;
}

/* Unhashes and frees an item already out of its list. */
static void item_release(struct broadcast_queue *q, struct broadcast_item *it)
{
	struct broadcast_item **link = table_slot(q, it->hash, it->key);

	HD_ASSERT(*link == it);
	*link = it->hnext;
	hd_free(it->key);
	hd_free(it);
	q->count--;
}

static void item_free(struct broadcast_queue *q, struct broadcast_item *it)
{
	list_remove(q, it);
	item_release(q, it);
}

/* The most-sent, oldest item: the one least worth keeping. */
static struct broadcast_item *least_useful(const struct broadcast_queue *q)
{
	for (int t = BROADCAST_MAX_TRANSMITS - 1; t >= 0; t--) {
		struct broadcast_item *it = q->bucket[t];

		while (it && it->next)
			it = it->next;
		if (it)
			return it;
	}
	return NULL;
}

void broadcast_push(struct broadcast_queue *q, const char *key, const uint8_t *msg, size_t len)
{
	uint64_t hash = hash_key(key);
	struct broadcast_item **link = table_slot(q, hash, key);
	struct broadcast_item *it;

	HD_ASSERT(len <= UINT16_MAX);
	if (*link)
		item_free(q, *link);
	if (q->count >= BROADCAST_MAX_ITEMS) {
		item_free(q, least_useful(q));
		q->dropped++;
	}
	if (q->count >= q->table_cap)
		table_grow(q);
	it = hd_alloc(sizeof(*it) + len);
	it->hash = hash;
	it->id = q->next_id++;
	it->transmits = 0;
	it->len = (uint16_t)len;
	it->key = hd_strndup(key, strlen(key));
	memcpy(it->msg, msg, len);
	link = &q->table[hash & (q->table_cap - 1)];
	it->hnext = *link;
	*link = it;
	list_insert(q, it);
	q->count++;
}

size_t broadcast_fill(struct broadcast_queue *q, struct wire_writer *w, uint32_t limit)
{
	struct broadcast_item *sent[WIRE_UDP_MAX / WIRE_MSG_HDR];
	size_t nsent = 0;
	int misses = 0;

	if (limit > BROADCAST_MAX_TRANSMITS)
		limit = BROADCAST_MAX_TRANSMITS;
	for (uint32_t t = 0; t < BROADCAST_MAX_TRANSMITS && nsent < HD_ARRAY_LEN(sent); t++) {
		for (struct broadcast_item *it = q->bucket[t]; it; it = it->next) {
			if (wire_room(w) < WIRE_MSG_HDR + 1)
				goto done;
			if (wire_put_raw(w, it->msg, it->len)) {
				/* too big for what is left: try a few smaller ones, not all */
				if (++misses == BROADCAST_MAX_MISSES)
					goto done;
				continue;
			}
			sent[nsent++] = it;
			if (nsent == HD_ARRAY_LEN(sent))
				goto done;
		}
	}
done:
	/* Moving items only now keeps the walk above from meeting an item twice. */
	for (size_t i = 0; i < nsent; i++) {
		struct broadcast_item *it = sent[i];

		list_remove(q, it);
		it->transmits++;
		if (it->transmits >= limit)
			item_release(q, it);
		else
			list_insert(q, it);
	}
	return nsent;
}

int broadcast_transmits(const struct broadcast_queue *q, const char *key)
{
	struct broadcast_item **link = table_slot(q, hash_key(key), key);

	return *link ? (int)(*link)->transmits : -1;
}

uint32_t broadcast_limit(uint32_t mult, uint32_t n)
{
	uint32_t limit = mult * (uint32_t)ceil(log10((double)n + 1.0));

	if (limit < 1)
		limit = 1;
	return limit < BROADCAST_MAX_TRANSMITS ? limit : BROADCAST_MAX_TRANSMITS;
}
