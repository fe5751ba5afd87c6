/*
 * tests/unit/cluster/test_broadcast.c - cluster/broadcast.c, the piggyback queue (SWIM
 * section 4.1): least-sent first, newest first among equals; a newer update about the same
 * node replaces the queued one; each update goes at most `limit` times; packets never pass
 * their budget and skip what does not fit for what does.
 */
#include "cluster/broadcast.h"
#include "cluster/wire.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* Queues a LEFT message about `node` (any message works; LEFT is short). */
static void push(struct broadcast_queue *q, const char *node, uint32_t inc)
{
	uint8_t buf[256];
	struct wire_msg m = {
		.type = WIRE_LEFT,
		.incarnation = inc,
		.node = { node, strlen(node) },
	};
	size_t n = wire_encode_msg(&m, buf, sizeof(buf));

	cr_assert(n > 0);
	broadcast_push(q, node, buf, n);
}

/* Fills a packet of `cap` bytes and returns the decoded node names in order. */
static int fill(struct broadcast_queue *q, size_t cap, uint32_t limit, char names[][32],
		uint32_t *incs)
{
	uint8_t buf[WIRE_UDP_MAX];
	struct wire_writer w;
	const uint8_t *body;
	const uint8_t *pos;
	size_t blen;
	size_t len;
	struct wire_msg m;
	int n = 0;

	cr_assert_eq(wire_begin(&w, buf, cap, "c", false), 0);
	broadcast_fill(q, &w, limit);
	len = wire_finish(&w, NULL);
	cr_assert(len <= cap);
	cr_assert_eq(wire_open(buf, len, "c", NULL, &body, &blen), 0);
	for (pos = body; wire_next(&pos, body + blen, &m) > 0; n++) {
		snprintf(names[n], 32, "%.*s", (int)m.node.len, m.node.ptr);
		if (incs)
			incs[n] = m.incarnation;
	}
	return n;
}

Test(broadcast, newest_first_among_never_sent)
{
	struct broadcast_queue q;
	char names[16][32];

	broadcast_init(&q);
	push(&q, "a", 1);
	push(&q, "b", 1);
	push(&q, "c", 1);
	cr_assert_eq(fill(&q, WIRE_UDP_MAX, 10, names, NULL), 3);
	cr_assert_str_eq(names[0], "c");
	cr_assert_str_eq(names[1], "b");
	cr_assert_str_eq(names[2], "a");
	broadcast_fini(&q);
}

Test(broadcast, least_sent_goes_first)
{
	struct broadcast_queue q;
	char names[16][32];

	broadcast_init(&q);
	push(&q, "old", 1);
	cr_assert_eq(fill(&q, WIRE_UDP_MAX, 10, names, NULL), 1);	/* old: sent once */
	push(&q, "new", 1);
	cr_assert_eq(fill(&q, WIRE_UDP_MAX, 10, names, NULL), 2);
	cr_assert_str_eq(names[0], "new");
	cr_assert_str_eq(names[1], "old");
	broadcast_fini(&q);
}

Test(broadcast, newer_update_about_a_node_replaces_the_queued_one)
{
	struct broadcast_queue q;
	char names[16][32];
	uint32_t incs[16];

	broadcast_init(&q);
	push(&q, "a", 1);
	push(&q, "a", 2);
	cr_assert_eq(q.count, 1);
	cr_assert_eq(fill(&q, WIRE_UDP_MAX, 10, names, incs), 1);
	cr_assert_eq(incs[0], 2);
	broadcast_fini(&q);
}

Test(broadcast, an_update_is_sent_at_most_limit_times)
{
	struct broadcast_queue q;
	char names[16][32];

	broadcast_init(&q);
	push(&q, "a", 1);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(fill(&q, WIRE_UDP_MAX, 3, names, NULL), 1, "round %d", i);
	cr_assert_eq(q.count, 0);
	cr_assert_eq(fill(&q, WIRE_UDP_MAX, 3, names, NULL), 0);
	broadcast_fini(&q);
}

Test(broadcast, packet_budget_is_never_exceeded)
{
	struct broadcast_queue q;
	char names[64][32];
	char name[32];
	int total = 0;

	broadcast_init(&q);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "node-%03d", i);
		push(&q, name, 1);
	}
	/* header 6 + each LEFT 3+4+1+8 = 16 bytes: 100 bytes hold 5 */
	for (int round = 0; round < 20; round++)
		total += fill(&q, 100, 1, names, NULL);
	cr_assert_eq(total, 100);
	cr_assert_eq(q.count, 0);
	broadcast_fini(&q);
}

Test(broadcast, skips_a_big_update_for_smaller_ones_that_fit)
{
	struct broadcast_queue q;
	char names[16][32];

	broadcast_init(&q);
	push(&q, "small", 1);
	push(&q, "a-much-longer-node-name-that-will-not-fit", 1);
	cr_assert_eq(fill(&q, 6 + 3 + 4 + 1 + 5 + 2, 10, names, NULL), 1);
	cr_assert_str_eq(names[0], "small");
	broadcast_fini(&q);
}

Test(broadcast, transmits_are_reported_per_key)
{
	struct broadcast_queue q;
	char names[16][32];

	broadcast_init(&q);
	cr_assert_eq(broadcast_transmits(&q, "a"), -1);
	push(&q, "a", 1);
	cr_assert_eq(broadcast_transmits(&q, "a"), 0);
	fill(&q, WIRE_UDP_MAX, 10, names, NULL);
	fill(&q, WIRE_UDP_MAX, 10, names, NULL);
	cr_assert_eq(broadcast_transmits(&q, "a"), 2);
	broadcast_fini(&q);
}

Test(broadcast, queue_is_bounded)
{
	struct broadcast_queue q;
	char name[32];

	broadcast_init(&q);
	for (int i = 0; i < BROADCAST_MAX_ITEMS + 10; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		push(&q, name, 1);
	}
	cr_assert_eq(q.count, BROADCAST_MAX_ITEMS);
	cr_assert_eq(q.dropped, 10);
	cr_assert_eq(broadcast_transmits(&q, "n0"), -1, "the oldest went first");
	broadcast_fini(&q);
}

Test(broadcast, retransmit_limit_grows_with_log_n)
{
	cr_assert_eq(broadcast_limit(4, 1), 4);
	cr_assert_eq(broadcast_limit(4, 9), 4);
	cr_assert_eq(broadcast_limit(4, 10), 8);
	cr_assert_eq(broadcast_limit(4, 99), 8);
	cr_assert_eq(broadcast_limit(4, 1000), 16);
	cr_assert_eq(broadcast_limit(100, 1000000), BROADCAST_MAX_TRANSMITS);
}
