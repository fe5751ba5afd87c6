/*
 * tests/unit/core/test_placement.c - core/placement.c: rendezvous placement of queues over
 * nodes (each queue on the node with the highest xxh64(queue hash, node hash)), and reply
 * queues pinned to the node whose tag their name carries.
 */
#include "core/placement.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define NQUEUES 20000

static struct placement *nodes(uint32_t n)
{
	struct placement *p = placement_create(placement_node_hash("node-0", 6));

	for (uint32_t i = 1; i < n; i++) {
		char name[16];
		int len = snprintf(name, sizeof(name), "node-%u", i);

		placement_add(p, placement_node_hash(name, (size_t)len), (int16_t)i);
	}
	return p;
}

static int owner(const struct placement *p, uint32_t q)
{
	char key[32];
	int len = snprintf(key, sizeof(key), "/queue/q%u", q);

	return placement_queue_node(p, key, (size_t)len);
}

Test(placement, one_node_owns_everything)
{
	struct placement *p = nodes(1);

	for (uint32_t q = 0; q < 100; q++)
		cr_assert_eq(owner(p, q), 0);
	placement_unref(p);
}

Test(placement, spreads_queues_evenly)
{
	struct placement *p = nodes(4);
	uint32_t count[4] = { 0 };

	for (uint32_t q = 0; q < NQUEUES; q++)
		count[owner(p, q)]++;
	for (int i = 0; i < 4; i++)
		cr_assert(count[i] > NQUEUES / 4 * 9 / 10 && count[i] < NQUEUES / 4 * 11 / 10,
			  "node %d owns %u of %u", i, count[i], NQUEUES);
	placement_unref(p);
}

/* A joining node takes only queues that now hash to it; nothing moves between the others. */
Test(placement, a_join_moves_only_to_the_new_node)
{
	struct placement *before = nodes(3);
	struct placement *after = nodes(4);
	uint32_t moved = 0;

	for (uint32_t q = 0; q < NQUEUES; q++) {
		int a = owner(before, q), b = owner(after, q);

		if (a != b) {
			cr_assert_eq(b, 3, "queue %u moved from %d to %d", q, a, b);
			moved++;
		}
	}
	cr_assert(moved > NQUEUES / 4 * 9 / 10 && moved < NQUEUES / 4 * 11 / 10, "moved %u", moved);
	placement_unref(before);
	placement_unref(after);
}

/* Every node computes the same owner whatever order it lists the members in. */
Test(placement, independent_of_member_order)
{
	struct placement *a = placement_create(placement_node_hash("x", 1));
	struct placement *b = placement_create(placement_node_hash("z", 1));

	placement_add(a, placement_node_hash("y", 1), 1);
	placement_add(a, placement_node_hash("z", 1), 2);
	placement_add(b, placement_node_hash("x", 1), 1);
	placement_add(b, placement_node_hash("y", 1), 2);
	for (uint32_t q = 0; q < 1000; q++)
		cr_assert_eq(a->node_hash[owner(a, q)], b->node_hash[owner(b, q)], "queue %u", q);
	placement_unref(a);
	placement_unref(b);
}

/* A reply queue lives on the node its name's tag names, or nowhere once that node left. */
Test(placement, reply_queues_follow_their_tag)
{
	struct placement *p = nodes(3);
	uint64_t h = p->node_hash[2];
	uint32_t tag = (uint32_t)h & PLACEMENT_TAG_MASK;
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char key[64];
	int len = snprintf(key, sizeof(key), "/queue/amq.gen-%c%c%c%cAAAAAAAAAAAAAAAAAA",
			   b64[tag >> 18 & 63], b64[tag >> 12 & 63], b64[tag >> 6 & 63], b64[tag & 63]);
	uint32_t got;
	struct placement *without = nodes(2);

	cr_assert(placement_reply_tag(key, (size_t)len, &got));
	cr_assert_eq(got, tag);
	cr_assert_eq(placement_queue_node(p, key, (size_t)len), 2);
	cr_assert_eq(placement_queue_node(without, key, (size_t)len), PLACEMENT_NONE);
	cr_assert_not(placement_reply_tag("/queue/jobs", 11, &got), "a client's queue has no tag");
	placement_unref(p);
	placement_unref(without);
}

/* Replicas: the owner first, then distinct backups in rendezvous order; taking out the
 * owner makes the first backup the owner and keeps the rest in order (docs/replication.md,
 * invariant 4: the new owner is a replica). */
Test(placement, replicas_are_the_owner_then_the_next_in_rank)
{
	struct placement *all = nodes(5);

	for (uint32_t q = 0; q < 2000; q++) {
		char key[32];
		int len = snprintf(key, sizeof(key), "/queue/q%u", q);
		int rep[PLACEMENT_MAX_REPLICAS], after[PLACEMENT_MAX_REPLICAS];
		uint32_t n = placement_queue_replicas(all, key, (size_t)len, 3, rep);
		struct placement *without = placement_create(all->node_hash[rep[0] ? 0 : 1]);

		cr_assert_eq(n, 3);
		cr_assert_eq(rep[0], placement_queue_node(all, key, (size_t)len));
		cr_assert(rep[0] != rep[1] && rep[1] != rep[2] && rep[0] != rep[2]);
		/* the same nodes but the owner */
		for (uint32_t i = 0; i < all->n; i++)
			if ((int)i != rep[0] && all->node_hash[i] != without->node_hash[0])
				placement_add(without, all->node_hash[i], (int16_t)i);
		cr_assert_eq(placement_queue_replicas(without, key, (size_t)len, 2, after), 2);
		cr_assert_eq(without->node_hash[after[0]], all->node_hash[rep[1]], "queue %u", q);
		cr_assert_eq(without->node_hash[after[1]], all->node_hash[rep[2]], "queue %u", q);
		placement_unref(without);
	}
	placement_unref(all);
}

Test(placement, replicas_are_fewer_when_nodes_are)
{
	struct placement *two = nodes(2), *one = nodes(1);
	int rep[PLACEMENT_MAX_REPLICAS];

	cr_assert_eq(placement_queue_replicas(two, "/queue/a", 8, 3, rep), 2);
	cr_assert_eq(placement_queue_replicas(one, "/queue/a", 8, 2, rep), 1);
	cr_assert_eq(rep[0], 0);
	cr_assert_eq(placement_queue_replicas(two, "/queue/a", 8, 0, rep), 0);
	placement_unref(two);
	placement_unref(one);
}

/* docs/replication.md, "Rejoin": a joining node owns nothing, and holds a copy of exactly
 * the queues it will hold once active - after the R holders the active nodes give. */
Test(placement, a_joining_node_owns_nothing_but_copies_what_it_will_hold)
{
	struct placement *joining = nodes(4), *active = nodes(4);
	uint32_t copies = 0;

	joining->joining[3] = true;
	for (uint32_t q = 0; q < 2000; q++) {
		char key[32];
		int len = snprintf(key, sizeof(key), "/queue/q%u", q);
		int now[PLACEMENT_MAX_REPLICAS], later[PLACEMENT_MAX_REPLICAS];
		uint32_t n = placement_queue_replicas(joining, key, (size_t)len, 2, now);
		uint32_t m = placement_queue_replicas(active, key, (size_t)len, 2, later);
		bool will_hold = later[0] == 3 || later[1] == 3;

		cr_assert_eq(m, 2);
		cr_assert_neq(placement_queue_node(joining, key, (size_t)len), 3);
		cr_assert_eq(now[0], placement_queue_node(joining, key, (size_t)len));
		cr_assert(now[0] != 3 && now[1] != 3, "the best two are active nodes");
		cr_assert_eq(n, will_hold ? 3u : 2u, "queue %u", q);
		if (will_hold) {
			cr_assert_eq(now[2], 3);
			copies++;
		}
		/* once active, its queues are the ones it had copies of */
		if (later[0] == 3)
			cr_assert_eq(n, 3u);
	}
	cr_assert(copies > 2000 / 4, "the joining node holds a copy of half the queues (%u)", copies);
	placement_unref(joining);
	placement_unref(active);
}

/* Only joining nodes left besides this node, which leaves: they take the queues (before
 * joining existed every other node could). */
Test(placement, a_leaving_node_alone_with_joining_ones_places_on_them)
{
	struct placement *p = nodes(3);
	int rep[PLACEMENT_MAX_REPLICAS];

	p->leaving = true;
	p->joining[1] = p->joining[2] = true;
	for (uint32_t q = 0; q < 200; q++) {
		char key[32];
		int len = snprintf(key, sizeof(key), "/queue/q%u", q);

		cr_assert_neq(placement_queue_node(p, key, (size_t)len), 0);
		cr_assert_eq(placement_queue_replicas(p, key, (size_t)len, 2, rep), 2);
		cr_assert(rep[0] != 0 && rep[1] != 0);
	}
	placement_unref(p);
}
