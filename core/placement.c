/*
 * core/placement.c - rendezvous placement (see placement.h).
 */
#include "core/placement.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"
#include "core/destname.h"
#include "core/strmap.h"

#include <string.h>

uint64_t placement_node_hash(const char *name, size_t len)
{
	return hd_hash(name, len);
}

struct placement *placement_create(uint64_t self_hash)
{
	struct placement *p = hd_calloc(1, sizeof(*p));

	atomic_init(&p->refs, 1);
	p->n = 1;
	p->node_hash[0] = self_hash;
	p->peer[0] = -1;
	return p;
}

void placement_add(struct placement *p, uint64_t node_hash, int16_t peer)
{
	HD_ASSERT(p->n < PLACEMENT_MAX_NODES);
	p->node_hash[p->n] = node_hash;
	p->peer[p->n++] = peer;
}

void placement_ref(struct placement *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void placement_unref(struct placement *p)
{
	if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		hd_free(p);
}

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

bool placement_reply_tag(const char *key, size_t len, uint32_t *tag)
{
	static const char prefix[] = DESTNAME_QUEUE "amq.gen-";
	const size_t plen = sizeof(prefix) - 1;
	uint32_t v = 0;

	if (!destname_key_is_server_queue(key, len) || len < plen + 4 || memcmp(key, prefix, plen))
		return false;
	/* 4 base64 characters are exactly the first 3 bytes */
	for (size_t i = 0; i < 4; i++) {
		int d = b64url_value(key[plen + i]);

		if (d < 0)
			return false;
		v = v << 6 | (uint32_t)d;
	}
	*tag = v;
	return true;
}

static uint64_t node_score(uint64_t key_hash, uint64_t node_hash)
{
	uint64_t pair[2] = { key_hash, node_hash };

	return hd_hash((const char *)pair, sizeof(pair));
}

/* Whether node i ranks above node j for a key (ties, never seen in practice, go to the
 * larger node hash: every node agrees). */
static bool ranks_above(const struct placement *p, uint64_t si, uint32_t i, uint64_t sj, uint32_t j)
{
	return si > sj || (si == sj && p->node_hash[i] > p->node_hash[j]);
}

/* The best `want` nodes for key_hash in rendezvous order, into out; returns how many. Not
 * this node while it leaves; joining nodes only when asked (they own nothing yet). */
static uint32_t best_nodes(const struct placement *p, uint64_t key_hash, uint32_t want,
			   bool with_joining, int out[PLACEMENT_MAX_REPLICAS])
{
	uint64_t score[PLACEMENT_MAX_REPLICAS];
	uint32_t n = 0;

	/* insertion into the best `want` so far, best first */
	for (uint32_t i = 0; i < p->n; i++) {
		uint64_t s = node_score(key_hash, p->node_hash[i]);
		uint32_t at = n;

		if ((i == 0 && p->leaving) || (p->joining[i] && !with_joining))
			continue;
		while (at > 0 && ranks_above(p, s, i, score[at - 1], (uint32_t)out[at - 1]))
			at--;
		if (at >= want)
			continue;
		if (n < want)
			n++;
		memmove(&out[at + 1], &out[at], (n - 1 - at) * sizeof(out[0]));
		memmove(&score[at + 1], &score[at], (n - 1 - at) * sizeof(score[0]));
		out[at] = (int)i;
		score[at] = s;
	}
	return n;
}

uint32_t placement_queue_replicas(const struct placement *p, const char *key, size_t len,
				  uint32_t want, int out[PLACEMENT_MAX_REPLICAS])
{
	int future[PLACEMENT_MAX_REPLICAS];
	uint64_t key_hash;
	uint32_t n, nf;
	int owner = placement_queue_node(p, key, len);

	if (want > PLACEMENT_MAX_REPLICAS)
		want = PLACEMENT_MAX_REPLICAS;
	if (owner == PLACEMENT_NONE || want == 0)
		return 0;
	if (destname_key_is_server_queue(key, len) || p->n == 1) {
		out[0] = owner;		/* reply queues live and die with their node */
		return 1;
	}
	key_hash = hd_hash(key, len);
	n = best_nodes(p, key_hash, want, false, out);
	if (!n)		/* only joining nodes may hold it (the one active node leaves) */
		return best_nodes(p, key_hash, want, true, out);
	nf = best_nodes(p, key_hash, want, true, future);
	for (uint32_t i = 0; i < nf && n < PLACEMENT_MAX_REPLICAS; i++)
		if (p->joining[future[i]])
			out[n++] = future[i];
	return n;
}

int placement_queue_node(const struct placement *p, const char *key, size_t len)
{
	uint32_t tag;
	uint64_t key_hash;
	int best[PLACEMENT_MAX_REPLICAS];

	if (placement_reply_tag(key, len, &tag)) {
		for (uint32_t i = 0; i < p->n; i++)
			if ((p->node_hash[i] & PLACEMENT_TAG_MASK) == tag)
				return (int)i;
		return PLACEMENT_NONE;
	}
	if (p->n == 1)
		return 0;
	key_hash = hd_hash(key, len);
	if (!best_nodes(p, key_hash, 1, false, best) && !best_nodes(p, key_hash, 1, true, best))
		return 0;	/* nobody may own it, this node leaving alone: as before */
	return best[0];
}
