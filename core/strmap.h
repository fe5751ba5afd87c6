/*
 * core/strmap.h - open-addressing hash map from byte strings to pointers (xxh64 with the
 * project's fixed seed, so every node hashes alike). Single-threaded: a map belongs to the
 * shard that created it. Keys are borrowed: the value must keep its key alive.
 */
#ifndef CORE_STRMAP_H
#define CORE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#define HD_HASH_SEED 0x68657261ull	/* "hera": fixed, identical on every node */

struct strmap_slot {
	uint64_t hash;		/* 0: empty */
	const char *key;
	uint32_t key_len;
	void *val;
};

struct strmap {
	struct strmap_slot *slots;
	uint32_t cap;		/* power of two */
	uint32_t count;
	uint32_t tombs;
};

uint64_t hd_hash(const char *s, size_t len);

void strmap_init(struct strmap *m);
void strmap_fini(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key, size_t len);
/* Inserts or replaces; the key memory must live as long as the entry. */
void strmap_put(struct strmap *m, const char *key, size_t len, void *val);
/* Removes and returns the value, or NULL. */
void *strmap_del(struct strmap *m, const char *key, size_t len);

#endif
