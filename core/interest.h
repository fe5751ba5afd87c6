/*
 * core/interest.h - who wants which topics: for each topic key and each pattern, a count
 * per column and the mask of columns with any. A shard's columns are the node's shards
 * plus its route endpoint (any other node wants it); the route thread keeps one table with
 * the shards as columns (this node's interest, what it advertises to peers) and one with
 * the peer nodes as columns (what each peer asked for). Columns: 64 at most (the mask).
 *
 * Topic names are internal keys ("/topic/a.b", vhost-scoped); patterns are stored without
 * "/topic/" (as topic_match_scoped takes them).
 *
 * Thread: the table's owner only.
 */
#ifndef CORE_INTEREST_H
#define CORE_INTEREST_H

#include "core/strmap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INTEREST_MAX_COLUMNS 64

struct interest;

struct interest_table {
	struct strmap topics;		/* key -> struct interest */
	struct strmap patterns;		/* pattern -> struct interest */
	struct interest **pattern_list;	/* the same patterns, for matching */
	uint32_t npatterns;
	uint32_t ncolumns;
};

void interest_table_init(struct interest_table *t, uint32_t ncolumns);
void interest_table_fini(struct interest_table *t);

/* Applies delta (+1 / -1) to column's count for a topic or pattern. Returns the name's
 * column mask after; *before (if non-NULL) gets the mask before. A name whose mask falls
 * to 0 is forgotten. */
uint64_t interest_apply(struct interest_table *t, bool pattern, const char *name, size_t len,
			uint32_t column, int delta, uint64_t *before);

/* True when column wants exactly this topic or pattern. */
bool interest_has(const struct interest_table *t, bool pattern, const char *name, size_t len,
		  uint32_t column);

/* The columns that want a message to topic key `key`: its own mask and the masks of every
 * pattern matching it. */
uint64_t interest_match(const struct interest_table *t, const char *key, size_t len);

/* Calls fn for every topic and pattern whose mask has a bit of `columns`. */
void interest_each(const struct interest_table *t, uint64_t columns,
		   void (*fn)(void *arg, bool pattern, const char *name, size_t len), void *arg);

/* Drops `column` from every name (a peer went away); fn (if non-NULL) hears each name
 * whose mask became 0 by it, before it is forgotten. */
void interest_drop_column(struct interest_table *t, uint32_t column,
			  void (*fn)(void *arg, bool pattern, const char *name, size_t len),
			  void *arg);

#endif
