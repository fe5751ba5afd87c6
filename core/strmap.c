/*
 * core/strmap.c - linear probing with tombstones; grows at 70% load (tombstones counted).
 */
#include "core/strmap.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"

#include <string.h>
#include <xxhash.h>

#define TOMB ((const char *)1)

uint64_t hd_hash(const char *s, size_t len)
{
	uint64_t h = XXH64(s, len, HD_HASH_SEED);

	return h ? h : 1;	/* 0 marks an empty slot */
}

void strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof(*m));
}

void strmap_fini(struct strmap *m)
{
	hd_free(m->slots);
	memset(m, 0, sizeof(*m));
}

static struct strmap_slot *find(const struct strmap *m, uint64_t h, const char *key, size_t len)
{
	uint32_t mask = m->cap - 1;

	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		struct strmap_slot *s = &m->slots[i];

		if (!s->hash)
			return NULL;
		if (s->hash == h && s->key != TOMB && s->key_len == len && !memcmp(s->key, key, len))
			return s;
	}
}

void *strmap_get(const struct strmap *m, const char *key, size_t len)
{
	struct strmap_slot *s;

	if (!m->count)
		return NULL;
	s = find(m, hd_hash(key, len), key, len);
	return s ? s->val : NULL;
}

static void grow(struct strmap *m)
{
	struct strmap old = *m;
	uint32_t cap = m->cap ? m->cap : 8;

	if ((m->count + 1) * 10 >= cap * 7)
		cap *= 2;
	m->slots = hd_calloc(cap, sizeof(*m->slots));
	m->cap = cap;
	m->count = 0;
	m->tombs = 0;
	for (uint32_t i = 0; i < old.cap; i++)
		if (old.slots[i].hash && old.slots[i].key != TOMB)
			strmap_put(m, old.slots[i].key, old.slots[i].key_len, old.slots[i].val);
	hd_free(old.slots);
}

void strmap_put(struct strmap *m, const char *key, size_t len, void *val)
{
	uint64_t h = hd_hash(key, len);
	struct strmap_slot *s;
	uint32_t mask;

	if (m->count && (s = find(m, h, key, len))) {
		s->val = val;
		return;
	}
	if (!m->cap || (m->count + m->tombs + 1) * 10 >= m->cap * 7)
		grow(m);
	mask = m->cap - 1;
	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		s = &m->slots[i];
		if (!s->hash || s->key == TOMB) {
			if (s->key == TOMB)
				m->tombs--;
			*s = (struct strmap_slot){ h, key, (uint32_t)len, val };
			m->count++;
			return;
		}
	}
}

void *strmap_del(struct strmap *m, const char *key, size_t len)
{
	struct strmap_slot *s;
	void *val;

	if (!m->count)
		return NULL;
	s = find(m, hd_hash(key, len), key, len);
	if (!s)
		return NULL;
	val = s->val;
	s->key = TOMB;	/* hash stays non-zero so probes continue past it */
	s->val = NULL;
	m->count--;
	m->tombs++;
	return val;
}
