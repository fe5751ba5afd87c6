/*
 * core/interest.c - interest tables (see interest.h).
 */
#include "core/interest.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"
#include "core/destname.h"
#include "core/topic_match.h"

#include <string.h>

struct interest {
	uint64_t mask;		/* columns with count > 0 */
	uint32_t *counts;	/* per column */
	uint32_t index;		/* patterns: place in pattern_list */
	uint32_t len;
	char name[];
};

void interest_table_init(struct interest_table *t, uint32_t ncolumns)
{
	HD_ASSERT(ncolumns >= 1 && ncolumns <= INTEREST_MAX_COLUMNS);
	memset(t, 0, sizeof(*t));
	strmap_init(&t->topics);
	strmap_init(&t->patterns);
	t->ncolumns = ncolumns;
}

static void interest_free(struct interest *in)
{
	hd_free(in->counts);
	hd_free(in);
}

void interest_table_fini(struct interest_table *t)
{
	for (uint32_t i = 0; i < t->topics.cap; i++) {
		struct strmap_slot *s = &t->topics.slots[i];

		if (s->hash && s->val)
			interest_free(s->val);
	}
	for (uint32_t i = 0; i < t->npatterns; i++)
		interest_free(t->pattern_list[i]);
	hd_free(t->pattern_list);
	strmap_fini(&t->topics);
	strmap_fini(&t->patterns);
}

static struct interest *get(struct interest_table *t, bool pattern, const char *name, size_t len,
			    bool create)
{
	struct strmap *map = pattern ? &t->patterns : &t->topics;
	struct interest *in = strmap_get(map, name, len);

	if (in || !create)
		return in;
	in = hd_alloc(sizeof(*in) + len + 1);
	in->mask = 0;
	in->counts = hd_calloc(t->ncolumns, sizeof(*in->counts));
	in->index = 0;
	in->len = (uint32_t)len;
	memcpy(in->name, name, len);
	in->name[len] = '\0';
	strmap_put(map, in->name, len, in);
	if (pattern) {
		t->pattern_list = hd_realloc(t->pattern_list, (t->npatterns + 1) * sizeof(in));
		in->index = t->npatterns;
		t->pattern_list[t->npatterns++] = in;
	}
	return in;
}

static void forget(struct interest_table *t, bool pattern, struct interest *in)
{
	strmap_del(pattern ? &t->patterns : &t->topics, in->name, in->len);
	if (pattern) {
		t->pattern_list[in->index] = t->pattern_list[--t->npatterns];
		t->pattern_list[in->index]->index = in->index;
	}
	interest_free(in);
}

uint64_t interest_apply(struct interest_table *t, bool pattern, const char *name, size_t len,
			uint32_t column, int delta, uint64_t *before)
{
	struct interest *in = get(t, pattern, name, len, delta > 0);
	uint64_t after;

	HD_ASSERT(column < t->ncolumns);
	if (before)
		*before = in ? in->mask : 0;
	if (!in)
		return 0;
	if (delta > 0)
		in->counts[column]++;
	else if (in->counts[column])
		in->counts[column]--;
	if (in->counts[column])
		in->mask |= 1ull << column;
	else
		in->mask &= ~(1ull << column);
	after = in->mask;
	if (!after)
		forget(t, pattern, in);
	return after;
}

bool interest_has(const struct interest_table *t, bool pattern, const char *name, size_t len,
		  uint32_t column)
{
	const struct interest *in = strmap_get(pattern ? &t->patterns : &t->topics, name, len);

	return in && (in->mask & (1ull << column));
}

uint64_t interest_match(const struct interest_table *t, const char *key, size_t len)
{
	const struct interest *exact = strmap_get(&t->topics, key, len);
	uint64_t mask = exact ? exact->mask : 0;
	const size_t plen = DESTNAME_TOPIC_LEN;

	for (uint32_t i = 0; i < t->npatterns; i++) {
		const struct interest *p = t->pattern_list[i];

		/* a pattern is matched only when it could add a column */
		if ((p->mask & ~mask) && len >= plen &&
		    topic_match_scoped(p->name, p->len, key + plen, len - plen))
			mask |= p->mask;
	}
	return mask;
}

void interest_each(const struct interest_table *t, uint64_t columns,
		   void (*fn)(void *arg, bool pattern, const char *name, size_t len), void *arg)
{
	for (uint32_t i = 0; i < t->topics.cap; i++) {
		const struct strmap_slot *s = &t->topics.slots[i];
		const struct interest *in = s->hash ? s->val : NULL;

		if (in && (in->mask & columns))
			fn(arg, false, in->name, in->len);
	}
	for (uint32_t i = 0; i < t->npatterns; i++) {
		const struct interest *in = t->pattern_list[i];

		if (in->mask & columns)
			fn(arg, true, in->name, in->len);
	}
}

static void drop_in(struct interest_table *t, bool pattern, struct interest *in, uint32_t column,
		    void (*fn)(void *arg, bool pattern, const char *name, size_t len), void *arg)
{
	in->counts[column] = 0;
	in->mask &= ~(1ull << column);
	if (in->mask)
		return;
	if (fn)
		fn(arg, pattern, in->name, in->len);
	forget(t, pattern, in);
}

void interest_drop_column(struct interest_table *t, uint32_t column,
			  void (*fn)(void *arg, bool pattern, const char *name, size_t len),
			  void *arg)
{
	const uint64_t bit = 1ull << column;

	/* forget() deletes from the map being walked: collect first */
	struct interest **hit = hd_alloc((t->topics.count + 1) * sizeof(*hit));
	uint32_t n = 0;

	for (uint32_t i = 0; i < t->topics.cap; i++) {
		struct strmap_slot *s = &t->topics.slots[i];
		struct interest *in = s->hash ? s->val : NULL;

		if (in && (in->mask & bit))
			hit[n++] = in;
	}
	for (uint32_t i = 0; i < n; i++)
		drop_in(t, false, hit[i], column, fn, arg);
	hd_free(hit);
	/* patterns: the list shrinks from the back as entries go; walk it backwards */
	for (uint32_t i = t->npatterns; i-- > 0;) {
		if (i < t->npatterns && (t->pattern_list[i]->mask & bit))
			drop_in(t, true, t->pattern_list[i], column, fn, arg);
	}
}
