/*
 * tests/unit/core/test_dest.c - core/dest.c, the owner side of topics and queues, driven
 * through real shards without threads: shard_create_all(2) gives two shards and the four
 * xrings between them; each test calls the dest_on_* handlers on the owning shard with the
 * xmsgs a connection's shard would send (as session.c builds them), then publishes the
 * owner's out-rings and pops the other end to see what it sent.
 *
 * Rules (issue 3 and the comment at the top of dest.c, RabbitMQ's STOMP plugin where they
 * leave room): a topic publish costs one XMSG_TOPIC_DELIVER per interested shard, never one
 * per subscriber; a queue holds messages in order until a consumer comes, serves consumers
 * round robin within prefetch-count and the credit window, and puts NACKed and orphaned
 * unacked messages back at the front, marked redelivered, ahead of newer ones.
 *
 * Reference counts are checked, not assumed: every message a test makes carries one extra
 * reference owned by the test, and finish() (called at the end of each test) destroys the
 * shards and then requires that each message is back to exactly that one reference, so a
 * missing unref (leak) and an extra one (premature free, also caught by ASan) both fail.
 */
#include "core/config.h"
#include "core/dest.h"
#include "core/hmsg.h"
#include "core/session.h"
#include "core/shard.h"
#include "core/base/hd_alloc.h"
#include "tests/support/leak_check.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSH 2
#define MAX_TRACKED 2048
#define CONN_REF 0x0000000700000003ull	/* some connection on the sending shard */

static struct herald_config cfg;
static struct shard **sh;
static struct hmsg *tracked[MAX_TRACKED];
static uint32_t ntracked;

/* What a reload does (shard_publish_limits), without the loop that would take it. */
static void set_max_queue_length(uint32_t n)
{
	for (uint32_t i = 0; i < NSH; i++)
		sh[i]->limits.max_queue_length = n;
}

static void setup(void)
{
	config_defaults(&cfg);
	sh = shard_create_all(NSH, &cfg, NULL);
	ntracked = 0;
}

TestSuite(dest_topic, .init = setup);
TestSuite(dest_queue, .init = setup);

static uint32_t refs_of(const struct hmsg *m)
{
	return atomic_load(&((struct hmsg *)m)->refs);
}

/* Frees everything still held (queues, in-flight xmsgs), then checks every message the test
 * made is down to the test's own reference, and that nothing else leaked (ASan builds). */
static void finish(void)
{
	for (uint32_t i = 0; i < NSH; i++) {
		for (uint32_t to = 0; to < NSH; to++)
			xring_publish(sh[i]->out[to]);
	}
	shard_destroy_all(sh, NSH);
	sh = NULL;
	for (uint32_t i = 0; i < ntracked; i++) {
		cr_assert_eq(refs_of(tracked[i]), 1, "message %u holds %u references after teardown",
			     i + 1, refs_of(tracked[i]));
		hmsg_unref(tracked[i]);
	}
	ntracked = 0;
	cr_assert(leak_check_clean(), "leaks (LeakSanitizer's report is above)");
}

/* ---- building what a connection's shard would send ---- */

static uint32_t owner_of(const char *dest)
{
	return dest_owner(sh[0], dest, strlen(dest));
}

static struct xname *xname_new(const char *name)
{
	size_t len = strlen(name);
	struct xname *n = hd_alloc(sizeof(*n) + len + 1);

	n->len = (uint32_t)len;
	memcpy(n->name, name, len + 1);
	return n;
}

/* Message number `id` to dest, tail "m<id>"; the test keeps a reference (see finish). */
static struct hmsg *msg_new(const char *dest, uint32_t id)
{
	struct hmsg *m = hmsg_create(0, dest, strlen(dest), 16);

	m->tail_len = (uint32_t)snprintf(hmsg_tail_mut(m), 16, "m%u", id);
	hmsg_ref(m, 1);
	cr_assert_lt(ntracked, MAX_TRACKED);
	tracked[ntracked++] = m;
	return m;
}

static uint32_t msg_id(const struct hmsg *m)
{
	return (uint32_t)strtoul(hmsg_tail(m) + 1, NULL, 10);
}

/* SEND of message `id` from a connection on shard `from`; seq != 0 asks for a receipt. */
static struct hmsg *publish(uint32_t from, const char *dest, uint32_t id, uint32_t seq)
{
	struct hmsg *m = msg_new(dest, id);
	struct xmsg x = { .kind = XMSG_PUBLISH, .from = (uint16_t)from, .a = CONN_REF, .u32 = seq,
			  .ptr = m };

	dest_on_publish(sh[owner_of(dest)], &x);
	return m;
}

/* A shard's first subscription to a topic (+1) or its last one leaving (-1). */
static void topic_interest(uint32_t from, const char *topic, int delta)
{
	struct xmsg x = { .kind = XMSG_TOPIC_INTEREST, .from = (uint16_t)from, .u32 = delta > 0,
			  .ptr = xname_new(topic) };

	dest_on_topic_interest(sh[owner_of(topic)], &x, 0);
}

/* A pattern subscription reaches every shard, named without "/topic/" (session.c). */
static void pattern_interest(uint32_t from, const char *pattern, int delta)
{
	for (uint32_t i = 0; i < NSH; i++) {
		struct xmsg x = { .kind = XMSG_PATTERN_INTEREST, .from = (uint16_t)from,
				  .u32 = delta > 0, .ptr = xname_new(pattern) };

		dest_on_topic_interest(sh[i], &x, 1);
	}
}

static uint64_t consumer_key(uint32_t shard, uint32_t sub)
{
	return xmsg_consumer_key(XMSG_NODE_SELF, shard, 5, 9, sub);
}

static void consumer_add_seq(uint64_t key, const char *queue, enum session_ack_mode mode,
			     uint32_t prefetch, uint32_t seq)
{
	size_t len = strlen(queue);
	struct xconsumer *xc = hd_alloc(sizeof(*xc) + len + 1);
	struct xmsg x = { .kind = XMSG_QUEUE_CONSUMER_ADD, .from = (uint16_t)xmsg_key_shard(key),
			  .ptr = xc };

	xc->key = key;
	xc->conn_ref = CONN_REF;
	xc->seq = seq;
	xc->prefetch = prefetch;
	xc->ack_mode = (uint8_t)mode;
	xc->epoch = 0;	/* the ACKs below name registration epoch 0 */
	xc->len = (uint32_t)len;
	memcpy(xc->name, queue, len + 1);
	dest_on_consumer_add(sh[owner_of(queue)], &x);
}

static void consumer_add(uint64_t key, const char *queue, enum session_ack_mode mode,
			 uint32_t prefetch)
{
	consumer_add_seq(key, queue, mode, prefetch, 0);
}

static void consumer_del(uint64_t key, const char *queue)
{
	struct xmsg x = { .kind = XMSG_QUEUE_CONSUMER_DEL, .from = (uint16_t)xmsg_key_shard(key),
			  .a = key, .ptr = xname_new(queue) };

	dest_on_consumer_del(sh[owner_of(queue)], &x);
}

static void ack(uint64_t key, const char *queue, uint32_t mode, uint64_t tag)
{
	struct xmsg x = { .kind = XMSG_QUEUE_ACK, .from = (uint16_t)xmsg_key_shard(key), .a = key,
			  .b = tag, .u32 = mode, .ptr = xname_new(queue) };

	dest_on_ack(sh[owner_of(queue)], &x);
}

/* ---- what the owner sent ---- */

struct got {
	uint16_t kind;
	uint32_t u32;
	uint64_t a;
	uint64_t b;
	struct hmsg *m;		/* deliveries: the message (its delivery reference dropped) */
	uint32_t id;		/* deliveries: msg_id(m) */
};

#define MAX_GOT 1024
static struct got got[MAX_GOT];

/* Pops everything shard `from` sent shard `to` into got[] and returns the count. A delivery's
 * reference is dropped at once, as the receiving shard would after writing it out; the test's
 * own reference keeps the message readable. */
static uint32_t take(uint32_t from, uint32_t to)
{
	struct xmsg x;
	uint32_t n = 0;

	xring_publish(sh[from]->out[to]);
	while (xring_pop(sh[to]->in[from], &x, 1)) {
		cr_assert_lt(n, MAX_GOT);
		got[n] = (struct got){ .kind = x.kind, .u32 = x.u32, .a = x.a, .b = x.b };
		if (x.kind == XMSG_TOPIC_DELIVER || x.kind == XMSG_QUEUE_DELIVER) {
			got[n].m = x.ptr;
			got[n].id = msg_id(x.ptr);
			hmsg_unref(x.ptr);
		}
		n++;
	}
	return n;
}

/* What a queue's owner sent shard `to`, which must all be deliveries. */
static uint32_t take_deliveries(const char *queue, uint32_t to)
{
	uint32_t n = take(owner_of(queue), to);

	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(got[i].kind, XMSG_QUEUE_DELIVER, "xmsg %u is kind %u", i, got[i].kind);
	return n;
}

static uint32_t nothing_sent_by(uint32_t owner)
{
	uint32_t n = 0;

	for (uint32_t to = 0; to < NSH; to++)
		n += take(owner, to);
	return n;
}

#define TOPIC "/topic/news.uk"
#define QUEUE "/queue/work"

/* ===== topics ===== */

Test(dest_topic, publish_with_no_interest_sends_nothing)
{
	struct hmsg *m = publish(0, TOPIC, 1, 0);

	cr_assert_eq(nothing_sent_by(owner_of(TOPIC)), 0);
	cr_assert_eq(refs_of(m), 1, "the owner dropped the publisher's reference");
	finish();
}

Test(dest_topic, one_deliver_per_interested_shard_not_per_subscription)
{
	uint32_t o = owner_of(TOPIC);
	struct hmsg *m;

	for (int i = 0; i < 3; i++)
		topic_interest(1, TOPIC, +1);
	topic_interest(0, TOPIC, +1);
	m = publish(0, TOPIC, 1, 0);
	cr_assert_eq(refs_of(m), 1 + NSH, "one shard reference per delivery");
	for (uint32_t s = 0; s < NSH; s++) {
		cr_assert_eq(take(o, s), 1, "shard %u", s);
		cr_assert_eq(got[0].kind, XMSG_TOPIC_DELIVER);
		cr_assert_eq(got[0].m, m);
	}
	cr_assert_eq(refs_of(m), 1);
	finish();
}

Test(dest_topic, delivers_only_to_shards_with_interest)
{
	uint32_t o = owner_of(TOPIC);

	topic_interest(1, TOPIC, +1);
	publish(0, TOPIC, 1, 0);
	cr_assert_eq(take(o, 0), 0);
	cr_assert_eq(take(o, 1), 1);
	finish();
}

Test(dest_topic, shard_keeps_its_interest_until_its_last_subscription_leaves)
{
	uint32_t o = owner_of(TOPIC);

	topic_interest(1, TOPIC, +1);
	topic_interest(1, TOPIC, +1);
	topic_interest(1, TOPIC, -1);
	publish(0, TOPIC, 1, 0);
	cr_assert_eq(take(o, 1), 1, "one subscription is left");
	topic_interest(1, TOPIC, -1);
	publish(0, TOPIC, 2, 0);
	cr_assert_eq(take(o, 1), 0, "none is left");
	cr_assert_null(strmap_get(&sh[o]->dests.interest.topics, TOPIC, strlen(TOPIC)),
		       "a topic nobody wants holds no memory");
	finish();
}

Test(dest_topic, interest_never_goes_below_zero)
{
	uint32_t o = owner_of(TOPIC);

	topic_interest(1, TOPIC, -1);	/* unknown topic */
	topic_interest(1, TOPIC, +1);
	topic_interest(1, TOPIC, -1);
	topic_interest(1, TOPIC, -1);	/* one too many */
	topic_interest(1, TOPIC, +1);
	publish(0, TOPIC, 1, 0);
	cr_assert_eq(take(o, 1), 1, "a single +1 after the extra -1 is interest again");
	topic_interest(1, TOPIC, -1);
	publish(0, TOPIC, 2, 0);
	cr_assert_eq(take(o, 1), 0);
	finish();
}

Test(dest_topic, pattern_interest_delivers_matching_topics_only)
{
	static const char *const topics[] = { "/topic/news.uk", "/topic/news",
					      "/topic/news.uk.london", "/topic/sport.uk" };
	static const uint32_t want[] = { 1, 0, 0, 0 };

	pattern_interest(1, "news.*", +1);
	for (uint32_t i = 0; i < 4; i++) {
		publish(0, topics[i], i + 1, 0);
		cr_assert_eq(take(owner_of(topics[i]), 1), want[i], "%s", topics[i]);
	}
	finish();
}

Test(dest_topic, exact_and_pattern_interest_of_one_shard_deliver_once)
{
	uint32_t o = owner_of(TOPIC);

	topic_interest(1, TOPIC, +1);
	pattern_interest(1, "news.*", +1);
	pattern_interest(1, "#", +1);
	pattern_interest(1, "news.#", +1);
	publish(0, TOPIC, 1, 0);
	cr_assert_eq(take(o, 1), 1);
	cr_assert_eq(take(o, 0), 0);
	finish();
}

Test(dest_topic, same_pattern_from_two_shards_delivers_to_both)
{
	const char *t = "/topic/alerts";
	uint32_t o = owner_of(t);

	pattern_interest(0, "alerts.#", +1);
	pattern_interest(1, "alerts.#", +1);
	publish(1, t, 1, 0);
	cr_assert_eq(take(o, 0), 1);
	cr_assert_eq(take(o, 1), 1);
	finish();
}

Test(dest_topic, removing_one_pattern_keeps_the_others)
{
	static const char *const pats[] = { "a.*", "b.*", "c.*", "d.*" };

	for (uint32_t i = 0; i < 4; i++)
		pattern_interest(1, pats[i], +1);
	pattern_interest(1, "a.*", -1);
	pattern_interest(1, "c.*", -1);
	for (uint32_t i = 0; i < 4; i++) {
		char t[32];

		snprintf(t, sizeof(t), "/topic/%c.x", 'a' + i);
		publish(0, t, i + 1, 0);
		cr_assert_eq(take(owner_of(t), 1), i == 1 || i == 3, "%s", t);
	}
	for (uint32_t s = 0; s < NSH; s++)
		cr_assert_eq(sh[s]->dests.interest.npatterns, 2, "shard %u", s);
	finish();
}

Test(dest_topic, receipt_is_answered_after_the_deliveries)
{
	uint32_t o = owner_of(TOPIC);

	topic_interest(1, TOPIC, +1);
	publish(1, TOPIC, 1, 42);
	cr_assert_eq(take(o, 1), 2);
	cr_assert_eq(got[0].kind, XMSG_TOPIC_DELIVER);
	cr_assert_eq(got[1].kind, XMSG_DONE);
	cr_assert_eq(got[1].u32, 42);
	cr_assert_eq(got[1].a, CONN_REF);
	cr_assert_eq(got[1].b, XERR_OK);
	finish();
}

Test(dest_topic, publish_without_receipt_gets_no_done)
{
	publish(1, TOPIC, 1, 0);
	cr_assert_eq(nothing_sent_by(owner_of(TOPIC)), 0);
	finish();
}

Test(dest_topic, receipt_is_answered_even_with_no_subscribers)
{
	publish(0, TOPIC, 1, 7);
	cr_assert_eq(take(owner_of(TOPIC), 0), 1);
	cr_assert_eq(got[0].kind, XMSG_DONE);
	cr_assert_eq(got[0].u32, 7);
	finish();
}

/* ===== queues ===== */

Test(dest_queue, messages_wait_in_order_for_the_first_consumer)
{
	uint64_t c = consumer_key(1, 0);
	uint32_t n;

	for (uint32_t i = 1; i <= 5; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(nothing_sent_by(owner_of(QUEUE)), 0, "nobody to send to yet");
	consumer_add(c, QUEUE, SESSION_ACK_AUTO, 0);
	n = take_deliveries(QUEUE, 1);
	cr_assert_eq(n, 5);
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_eq(got[i].id, i + 1, "delivery %u", i);
		cr_assert_eq(got[i].a, c);
		cr_assert_eq(got[i].u32 & XDELIVER_REDELIVERED, 0);
		if (i)
			cr_assert_gt(got[i].b, got[i - 1].b, "tags increase");
	}
	finish();
}

Test(dest_queue, delivery_goes_to_the_consumers_shard)
{
	uint64_t c = consumer_key(0, 3);

	consumer_add(c, QUEUE, SESSION_ACK_AUTO, 0);
	publish(1, QUEUE, 1, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 0);
	cr_assert_eq(take_deliveries(QUEUE, 0), 1);
	cr_assert_eq(got[0].a, c);
	finish();
}

Test(dest_queue, consumers_are_served_round_robin)
{
	uint64_t keys[3] = { consumer_key(0, 0), consumer_key(1, 0), consumer_key(1, 1) };
	struct got all[6];
	uint32_t n = 0;

	for (uint32_t i = 0; i < 3; i++)
		consumer_add(keys[i], QUEUE, SESSION_ACK_AUTO, 0);
	for (uint32_t i = 1; i <= 6; i++)
		publish(0, QUEUE, i, 0);
	for (uint32_t s = 0; s < NSH; s++) {
		uint32_t k = take_deliveries(QUEUE, s);

		for (uint32_t i = 0; i < k && n < 6; i++)
			all[n++] = got[i];
	}
	cr_assert_eq(n, 6);
	/* in dispatch (tag) order, each message goes to the next consumer in turn */
	for (uint32_t i = 0; i < 6; i++)
		for (uint32_t j = i + 1; j < 6; j++)
			if (all[j].b < all[i].b) {
				struct got t = all[i];

				all[i] = all[j];
				all[j] = t;
			}
	for (uint32_t i = 0; i < 6; i++) {
		cr_assert_eq(all[i].id, i + 1, "FIFO by tag");
		cr_assert_eq(all[i].a, keys[i % 3], "message %u went to the wrong consumer", i + 1);
	}
	finish();
}

Test(dest_queue, prefetch_limits_unacked_deliveries)
{
	uint64_t c = consumer_key(1, 0);

	consumer_add(c, QUEUE, SESSION_ACK_INDIVIDUAL, 2);
	for (uint32_t i = 1; i <= 5; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 2);
	cr_assert_eq(got[0].id, 1);
	cr_assert_eq(got[1].id, 2);
	ack(c, QUEUE, XACK_ONE, got[0].b);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1, "one ack frees one slot");
	cr_assert_eq(got[0].id, 3);
	finish();
}

Test(dest_queue, prefetch_counts_in_client_mode_until_a_cumulative_ack)
{
	uint64_t c = consumer_key(1, 0);

	consumer_add(c, QUEUE, SESSION_ACK_CLIENT, 3);
	for (uint32_t i = 1; i <= 6; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 3);
	ack(c, QUEUE, XACK_UPTO, got[1].b);
	cr_assert_eq(take_deliveries(QUEUE, 1), 2, "acking up to the second frees two slots");
	cr_assert_eq(got[0].id, 4);
	cr_assert_eq(got[1].id, 5);
	finish();
}

/* RabbitMQ applies prefetch (basic.qos) to manual acknowledgement only. */
Test(dest_queue, auto_ack_consumer_ignores_prefetch)
{
	consumer_add(consumer_key(1, 0), QUEUE, SESSION_ACK_AUTO, 1);
	for (uint32_t i = 1; i <= 5; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 5);
	finish();
}

Test(dest_queue, credit_window_bounds_deliveries_in_flight)
{
	uint64_t c = consumer_key(1, 0);

	consumer_add(c, QUEUE, SESSION_ACK_AUTO, 0);
	for (uint32_t i = 1; i <= DEST_CREDIT_WINDOW + 10; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), DEST_CREDIT_WINDOW);
	cr_assert_eq(got[DEST_CREDIT_WINDOW - 1].id, DEST_CREDIT_WINDOW);
	ack(c, QUEUE, XACK_CREDIT, 4);
	cr_assert_eq(take_deliveries(QUEUE, 1), 4, "credit for 4 lets 4 more go");
	cr_assert_eq(got[0].id, DEST_CREDIT_WINDOW + 1);
	ack(c, QUEUE, XACK_CREDIT, 100000);
	cr_assert_eq(take_deliveries(QUEUE, 1), 6, "excess credit is not a debt");
	finish();
}

Test(dest_queue, credit_window_applies_to_client_modes_too)
{
	consumer_add(consumer_key(1, 0), QUEUE, SESSION_ACK_INDIVIDUAL, 0);
	for (uint32_t i = 1; i <= DEST_CREDIT_WINDOW + 1; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), DEST_CREDIT_WINDOW);
	finish();
}

Test(dest_queue, consumer_without_credit_is_skipped_for_one_with_credit)
{
	uint64_t slow = consumer_key(0, 0);
	uint64_t fast = consumer_key(1, 0);

	consumer_add(slow, QUEUE, SESSION_ACK_AUTO, 0);
	for (uint32_t i = 1; i <= DEST_CREDIT_WINDOW; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 0), DEST_CREDIT_WINDOW, "the slow one's window is full");
	consumer_add(fast, QUEUE, SESSION_ACK_AUTO, 0);
	for (uint32_t i = 1; i <= 3; i++)
		publish(0, QUEUE, DEST_CREDIT_WINDOW + i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 0), 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 3);
	finish();
}

Test(dest_queue, ack_one_settles_only_that_delivery)
{
	uint64_t c = consumer_key(1, 0);
	uint64_t c2 = consumer_key(1, 1);
	uint64_t tags[3];

	consumer_add(c, QUEUE, SESSION_ACK_INDIVIDUAL, 0);
	for (uint32_t i = 1; i <= 3; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 3);
	for (uint32_t i = 0; i < 3; i++)
		tags[i] = got[i].b;
	ack(c, QUEUE, XACK_ONE, tags[1]);
	consumer_del(c, QUEUE);
	consumer_add(c2, QUEUE, SESSION_ACK_AUTO, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 2, "the acked message is gone");
	cr_assert_eq(got[0].id, 1);
	cr_assert_eq(got[1].id, 3);
	finish();
}

Test(dest_queue, ack_upto_settles_every_delivery_up_to_the_tag)
{
	uint64_t c = consumer_key(1, 0);

	consumer_add(c, QUEUE, SESSION_ACK_CLIENT, 0);
	for (uint32_t i = 1; i <= 4; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 4);
	ack(c, QUEUE, XACK_UPTO, got[1].b);
	consumer_del(c, QUEUE);
	consumer_add(consumer_key(0, 0), QUEUE, SESSION_ACK_AUTO, 0);
	cr_assert_eq(take_deliveries(QUEUE, 0), 2);
	cr_assert_eq(got[0].id, 3);
	cr_assert_eq(got[1].id, 4);
	finish();
}

Test(dest_queue, ack_of_an_unknown_tag_or_consumer_changes_nothing)
{
	uint64_t c = consumer_key(1, 0);

	consumer_add(c, QUEUE, SESSION_ACK_INDIVIDUAL, 1);
	publish(0, QUEUE, 1, 0);
	publish(0, QUEUE, 2, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	ack(c, QUEUE, XACK_ONE, got[0].b + 1000);
	ack(consumer_key(0, 7), QUEUE, XACK_ONE, got[0].b);
	ack(c, "/queue/elsewhere", XACK_ONE, got[0].b);
	cr_assert_eq(take_deliveries(QUEUE, 1), 0, "prefetch 1 is still taken");
	finish();
}

Test(dest_queue, nack_requeues_at_the_front_marked_redelivered)
{
	uint64_t c = consumer_key(1, 0);

	consumer_add(c, QUEUE, SESSION_ACK_INDIVIDUAL, 1);
	publish(0, QUEUE, 1, 0);
	publish(0, QUEUE, 2, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	cr_assert_eq(got[0].id, 1);
	ack(c, QUEUE, XNACK_ONE, got[0].b);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	cr_assert_eq(got[0].id, 1, "the NACKed message comes back before the newer one");
	cr_assert(got[0].u32 & XDELIVER_REDELIVERED);
	ack(c, QUEUE, XACK_ONE, got[0].b);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	cr_assert_eq(got[0].id, 2);
	cr_assert_eq(got[0].u32 & XDELIVER_REDELIVERED, 0, "never delivered before");
	finish();
}

Test(dest_queue, nack_upto_requeues_in_order_ahead_of_newer_messages)
{
	uint64_t c = consumer_key(1, 0);

	consumer_add(c, QUEUE, SESSION_ACK_CLIENT, 2);
	for (uint32_t i = 1; i <= 4; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 2);
	ack(c, QUEUE, XNACK_UPTO, got[1].b);
	cr_assert_eq(take_deliveries(QUEUE, 1), 2);
	cr_assert_eq(got[0].id, 1);
	cr_assert_eq(got[1].id, 2);
	cr_assert(got[0].u32 & XDELIVER_REDELIVERED);
	cr_assert(got[1].u32 & XDELIVER_REDELIVERED);
	ack(c, QUEUE, XACK_UPTO, got[1].b);
	cr_assert_eq(take_deliveries(QUEUE, 1), 2);
	cr_assert_eq(got[0].id, 3);
	cr_assert_eq(got[1].id, 4);
	finish();
}

Test(dest_queue, nack_without_requeue_drops_the_message)
{
	uint64_t c = consumer_key(1, 0);
	struct hmsg *m1;

	consumer_add(c, QUEUE, SESSION_ACK_INDIVIDUAL, 0);
	m1 = publish(0, QUEUE, 1, 0);
	publish(0, QUEUE, 2, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 2);
	ack(c, QUEUE, XNACK_DROP_ONE, got[0].b);
	cr_assert_eq(refs_of(m1), 1, "the queue let go of it");
	consumer_del(c, QUEUE);
	consumer_add(consumer_key(1, 1), QUEUE, SESSION_ACK_AUTO, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	cr_assert_eq(got[0].id, 2);
	finish();
}

Test(dest_queue, removed_consumer_requeues_unacked_in_order_ahead_of_ready)
{
	uint64_t c = consumer_key(1, 0);

	consumer_add(c, QUEUE, SESSION_ACK_INDIVIDUAL, 3);
	for (uint32_t i = 1; i <= 5; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 3);
	consumer_del(c, QUEUE);
	consumer_add(consumer_key(0, 0), QUEUE, SESSION_ACK_AUTO, 0);
	cr_assert_eq(take_deliveries(QUEUE, 0), 5);
	for (uint32_t i = 0; i < 5; i++) {
		cr_assert_eq(got[i].id, i + 1, "delivery %u", i);
		cr_assert_eq(!!(got[i].u32 & XDELIVER_REDELIVERED), i < 3, "delivery %u", i);
	}
	finish();
}

Test(dest_queue, removed_consumers_messages_go_to_the_remaining_one_first)
{
	uint64_t a = consumer_key(0, 0);
	uint64_t b = consumer_key(1, 0);

	consumer_add(a, QUEUE, SESSION_ACK_INDIVIDUAL, 1);
	consumer_add(b, QUEUE, SESSION_ACK_INDIVIDUAL, 1);
	for (uint32_t i = 1; i <= 3; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 0), 1);
	cr_assert_eq(got[0].id, 1);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	cr_assert_eq(got[0].id, 2);
	ack(b, QUEUE, XACK_ONE, got[0].b);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	cr_assert_eq(got[0].id, 3);
	consumer_del(a, QUEUE);
	ack(b, QUEUE, XACK_ONE, got[0].b);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	cr_assert_eq(got[0].id, 1, "the orphaned message, redelivered");
	cr_assert(got[0].u32 & XDELIVER_REDELIVERED);
	finish();
}

Test(dest_queue, removing_an_unknown_consumer_changes_nothing)
{
	uint64_t c = consumer_key(1, 0);

	consumer_add(c, QUEUE, SESSION_ACK_AUTO, 0);
	consumer_del(consumer_key(1, 9), QUEUE);
	consumer_del(c, "/queue/other");
	publish(0, QUEUE, 1, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	finish();
}

Test(dest_queue, idle_queue_holds_no_memory)
{
	uint64_t c = consumer_key(1, 0);
	uint32_t o = owner_of(QUEUE);

	consumer_add(c, QUEUE, SESSION_ACK_AUTO, 0);
	publish(0, QUEUE, 1, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	consumer_del(c, QUEUE);
	cr_assert_null(strmap_get(&sh[o]->dests.queues, QUEUE, strlen(QUEUE)));
	finish();
}

/* A delivery that reaches its shard after the consumer left comes back (session.c:
 * XMSG_QUEUE_RETURN with u32 = the delivery's u32 >> 8), after the consumer's removal. */
static void return_delivery(const struct got *d, const char *queue)
{
	struct xmsg r = { .kind = XMSG_QUEUE_RETURN, .from = (uint16_t)xmsg_key_shard(d->a),
			  .ptr = d->m, .a = d->a, .b = d->b, .u32 = d->u32 >> 8 };

	hmsg_ref(d->m, 1);	/* take() dropped the delivery's reference; it travels back */
	dest_on_return(sh[owner_of(queue)], &r);
}

Test(dest_queue, returned_delivery_goes_back_to_the_front)
{
	uint64_t c = consumer_key(1, 0);
	struct got d;

	consumer_add(c, QUEUE, SESSION_ACK_AUTO, 0);
	publish(0, QUEUE, 1, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	d = got[0];
	consumer_del(c, QUEUE);
	publish(0, QUEUE, 2, 0);
	return_delivery(&d, QUEUE);
	consumer_add(consumer_key(0, 0), QUEUE, SESSION_ACK_AUTO, 0);
	cr_assert_eq(take_deliveries(QUEUE, 0), 2);
	cr_assert_eq(got[0].id, 1, "the returned message keeps its place");
	cr_assert_eq(got[1].id, 2);
	finish();
}

/* An auto-ack consumer leaves with several deliveries on their way; each comes back as
 * its own XMSG_QUEUE_RETURN, oldest first. They must be held in their original order,
 * still ahead of what was published since. */
Test(dest_queue, several_returned_deliveries_keep_their_order)
{
	uint64_t c = consumer_key(1, 0);
	struct got d[4];

	for (uint32_t i = 1; i <= 4; i++)
		publish(0, QUEUE, i, 0);
	consumer_add(c, QUEUE, SESSION_ACK_AUTO, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 4);
	memcpy(d, got, sizeof(d));
	consumer_del(c, QUEUE);
	publish(0, QUEUE, 5, 0);
	for (uint32_t i = 0; i < 4; i++)
		return_delivery(&d[i], QUEUE);
	consumer_add(consumer_key(0, 0), QUEUE, SESSION_ACK_AUTO, 0);
	cr_assert_eq(take_deliveries(QUEUE, 0), 5);
	for (uint32_t i = 0; i < 5; i++)
		cr_assert_eq(got[i].id, i + 1, "position %u holds message %u", i, got[i].id);
	finish();
}

/* A client-mode consumer's removal already requeued its unacked messages; a delivery that
 * comes back afterwards (XMSG_QUEUE_RETURN, ack mode taken from the delivery's u32) must not
 * be queued a second time. */
Test(dest_queue, returned_delivery_of_a_client_mode_consumer_is_delivered_once)
{
	enum session_ack_mode modes[] = { SESSION_ACK_CLIENT, SESSION_ACK_INDIVIDUAL };

	for (uint32_t k = 0; k < 2; k++) {
		uint64_t c = consumer_key(1, k);
		uint64_t c2 = consumer_key(0, k);
		struct got d;

		consumer_add(c, QUEUE, modes[k], 0);
		publish(0, QUEUE, k + 1, 0);
		cr_assert_eq(take_deliveries(QUEUE, 1), 1);
		d = got[0];
		consumer_del(c, QUEUE);		/* the connection closed ... */
		return_delivery(&d, QUEUE);	/* ... with the delivery still on its way */
		consumer_add(c2, QUEUE, SESSION_ACK_AUTO, 0);
		cr_assert_eq(take_deliveries(QUEUE, 0), 1, "ack mode %d: delivered more than once",
			     modes[k]);
		cr_assert_eq(got[0].id, k + 1);
		consumer_del(c2, QUEUE);
	}
	finish();
}

Test(dest_queue, full_queue_refuses_the_send_with_queue_full)
{
	struct hmsg *m4;

	set_max_queue_length(3);
	for (uint32_t i = 1; i <= 3; i++) {
		publish(0, QUEUE, i, 10 + i);
		cr_assert_eq(take(owner_of(QUEUE), 0), 1);
		cr_assert_eq(got[0].kind, XMSG_DONE);
		cr_assert_eq(got[0].b, XERR_OK);
	}
	m4 = publish(0, QUEUE, 4, 14);
	cr_assert_eq(take(owner_of(QUEUE), 0), 1);
	cr_assert_eq(got[0].kind, XMSG_DONE);
	cr_assert_eq(got[0].b, XERR_QUEUE_FULL);
	cr_assert_eq(got[0].u32, 14);
	cr_assert_eq(got[0].a, CONN_REF);
	cr_assert_eq(refs_of(m4), 1, "the refused message was let go");
	publish(0, QUEUE, 5, 0);
	cr_assert_eq(take(owner_of(QUEUE), 0), 1, "refused without a receipt: still told");
	cr_assert_eq(got[0].b, XERR_QUEUE_FULL);
	consumer_add(consumer_key(1, 0), QUEUE, SESSION_ACK_AUTO, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 3, "only the accepted three");
	cr_assert_eq(got[2].id, 3);
	finish();
}

Test(dest_queue, queue_length_limit_counts_ready_messages_not_unacked)
{
	uint64_t c = consumer_key(1, 0);

	set_max_queue_length(2);
	consumer_add(c, QUEUE, SESSION_ACK_INDIVIDUAL, 1);
	for (uint32_t i = 1; i <= 3; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1, "one unacked, two ready");
	publish(0, QUEUE, 4, 5);
	cr_assert_eq(take(owner_of(QUEUE), 0), 1);
	cr_assert_eq(got[0].b, XERR_QUEUE_FULL);
	finish();
}

Test(dest_queue, send_receipt_comes_once_the_owner_holds_the_message)
{
	publish(0, QUEUE, 1, 9);
	cr_assert_eq(take(owner_of(QUEUE), 0), 1);
	cr_assert_eq(got[0].kind, XMSG_DONE);
	cr_assert_eq(got[0].u32, 9);
	cr_assert_eq(got[0].a, CONN_REF);
	cr_assert_eq(got[0].b, XERR_OK);
	finish();
}

Test(dest_queue, new_consumers_receipt_comes_before_its_first_delivery)
{
	publish(0, QUEUE, 1, 0);
	publish(0, QUEUE, 2, 0);
	consumer_add_seq(consumer_key(1, 0), QUEUE, SESSION_ACK_AUTO, 0, 77);
	cr_assert_eq(take(owner_of(QUEUE), 1), 3);
	cr_assert_eq(got[0].kind, XMSG_DONE);
	cr_assert_eq(got[0].u32, 77);
	cr_assert_eq(got[0].a, CONN_REF);
	cr_assert_eq(got[0].b, XERR_OK);
	cr_assert_eq(got[1].kind, XMSG_QUEUE_DELIVER);
	cr_assert_eq(got[1].id, 1);
	cr_assert_eq(got[2].id, 2);
	finish();
}

Test(dest_queue, new_consumer_without_receipt_gets_no_done)
{
	consumer_add(consumer_key(1, 0), QUEUE, SESSION_ACK_AUTO, 0);
	cr_assert_eq(nothing_sent_by(owner_of(QUEUE)), 0);
	finish();
}

Test(dest_queue, queued_message_count_follows_ready_and_unacked)
{
	uint32_t o = owner_of(QUEUE);
	uint64_t c = consumer_key(1, 0);
	uint64_t tag2;

	for (uint32_t i = 1; i <= 4; i++)
		publish(0, QUEUE, i, 0);
	cr_assert_eq(sh[o]->dests.queued_msgs, 4);
	consumer_add(c, QUEUE, SESSION_ACK_INDIVIDUAL, 2);
	cr_assert_eq(take_deliveries(QUEUE, 1), 2);
	cr_assert_eq(sh[o]->dests.queued_msgs, 4, "unacked still count");
	tag2 = got[1].b;
	ack(c, QUEUE, XACK_ONE, got[0].b);
	cr_assert_eq(sh[o]->dests.queued_msgs, 3);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1, "message 3 takes the freed slot");
	ack(c, QUEUE, XNACK_DROP_ONE, tag2);
	cr_assert_eq(sh[o]->dests.queued_msgs, 2);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1, "message 4 takes the freed slot");
	consumer_del(c, QUEUE);
	consumer_add(consumer_key(1, 1), QUEUE, SESSION_ACK_AUTO, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 2);
	cr_assert_eq(sh[o]->dests.queued_msgs, 0, "auto-acked deliveries leave the queue");
	finish();
}

Test(dest_queue, queues_with_different_names_are_independent)
{
	const char *q2 = "/queue/other";

	consumer_add(consumer_key(1, 0), QUEUE, SESSION_ACK_AUTO, 0);
	publish(0, q2, 1, 0);
	publish(0, QUEUE, 2, 0);
	cr_assert_eq(take_deliveries(QUEUE, 1), 1);
	cr_assert_eq(got[0].id, 2);
	consumer_add(consumer_key(0, 0), q2, SESSION_ACK_AUTO, 0);
	cr_assert_eq(take_deliveries(q2, 0), 1);
	cr_assert_eq(got[0].id, 1);
	finish();
}

/* ===== ownership ===== */

/* The consumer key has room for a node id and the route endpoint, and gives each field back */
Test(xmsg, consumer_key_fields_round_trip)
{
	uint64_t k = xmsg_consumer_key(XMSG_KEY_NODES - 1, SHARD_COLUMNS(SHARD_MAX) - 1,
				       XMSG_KEY_SLOTS - 1, 0xabc, XMSG_KEY_SUBS - 1);

	cr_assert_eq(xmsg_key_node(k), XMSG_KEY_NODES - 1);
	cr_assert_eq(xmsg_key_shard(k), SHARD_COLUMNS(SHARD_MAX) - 1);
	cr_assert_eq(xmsg_key_slot(k), XMSG_KEY_SLOTS - 1);
	cr_assert_eq(xmsg_key_gen(k), 0xabc);
	cr_assert_eq(xmsg_key_sub(k), XMSG_KEY_SUBS - 1);
	k = xmsg_consumer_key(XMSG_NODE_SELF, 3, 7, 0x1234, 5);	/* generation wraps at 12 bits */
	cr_assert_eq(xmsg_key_node(k), XMSG_NODE_SELF);
	cr_assert_eq(xmsg_key_shard(k), 3);
	cr_assert_eq(xmsg_key_slot(k), 7);
	cr_assert_eq(xmsg_key_gen(k), 0x234);
	cr_assert_eq(xmsg_key_sub(k), 5);
	cr_assert(SHARD_COLUMNS(SHARD_MAX) <= 64, "a shard mask must hold the route column");
}

Test(dest_owner, is_the_seeded_hash_modulo_the_shard_count)
{
	uint32_t seen[4] = { 0 };
	struct shard one = { .nshards = 1 };
	struct shard four = { .nshards = 4 };

	cr_assert_eq(dest_owner(&one, QUEUE, strlen(QUEUE)), 0);
	for (uint32_t i = 0; i < 400; i++) {
		char name[32];
		uint32_t o;

		snprintf(name, sizeof(name), "/queue/q%u", i);
		o = dest_owner(&four, name, strlen(name));
		cr_assert_eq(o, hd_hash(name, strlen(name)) % 4);
		seen[o]++;
	}
	for (uint32_t s = 0; s < 4; s++)
		cr_assert_gt(seen[s], 50, "shard %u owns %u of 400 names", s, seen[s]);
}
