/*
 * tests/unit/core/test_xring.c - core/xring.c: the single-producer/single-consumer rings
 * between shard threads and their eventfd wake-up (STYLE.md section 3).
 *
 * Single-threaded rules first (order, full ring, publish visibility, space, wraparound of
 * slots and of the 32-bit indices, the sleep handshake), then two threaded tests: one
 * producer and one consumer moving millions of sequenced xmsgs through a 64-slot ring with
 * the consumer really blocking on its eventfd when empty, and four threads all-to-all with
 * one ring per ordered pair. Threads never call cr_assert; they record what they saw and
 * the test thread checks it after joining. Every wait is bounded.
 *
 * Also run under ThreadSanitizer (cmake -DHERALD_TSAN=ON), where the threaded tests move
 * fewer items.
 */
#include "core/xring.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* An xmsg whose every field derives from seq, so a torn or stale copy is caught. */
static struct xmsg seq_msg(uint64_t seq)
{
	return (struct xmsg){
		.kind = XMSG_SYNC,
		.from = (uint16_t)(seq * 7),
		.u32 = (uint32_t)(seq * 2654435761u),
		.a = seq,
		.b = ~seq,
		.ptr = (void *)(uintptr_t)(seq * 8 + 1),
	};
}

static bool is_seq_msg(const struct xmsg *m, uint64_t seq)
{
	struct xmsg want = seq_msg(seq);

	return !memcmp(m, &want, sizeof(want));
}

static void push_ok(struct xring *r, uint64_t seq)
{
	struct xmsg m = seq_msg(seq);

	cr_assert_eq(xring_push(r, &m), 0, "push of item %lu", (unsigned long)seq);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Reads (and so resets) the eventfd counter; 0 when nothing was written. */
static uint64_t eventfd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* ---- order, capacity, visibility ---- */

Test(xring, pops_items_in_push_order)
{
	struct xring r;
	struct xmsg out[8];

	xring_init(&r, 8, NULL);
	for (uint64_t i = 1; i <= 5; i++)
		push_ok(&r, i);
	xring_publish(&r);
	cr_assert_eq(xring_pop(&r, out, 8), 5);
	for (uint64_t i = 1; i <= 5; i++)
		cr_assert(is_seq_msg(&out[i - 1], i), "item %lu", (unsigned long)i);
	cr_assert_eq(xring_pop(&r, out, 8), 0);
	xring_fini(&r);
}

Test(xring, pop_returns_at_most_max_items)
{
	struct xring r;
	struct xmsg out[8];

	xring_init(&r, 8, NULL);
	for (uint64_t i = 1; i <= 6; i++)
		push_ok(&r, i);
	xring_publish(&r);
	cr_assert_eq(xring_pop(&r, out, 4), 4);
	cr_assert(is_seq_msg(&out[3], 4));
	cr_assert_eq(xring_pop(&r, out, 4), 2);
	cr_assert(is_seq_msg(&out[0], 5));
	cr_assert(is_seq_msg(&out[1], 6));
	cr_assert_eq(xring_pop(&r, out, 0), 0);
	xring_fini(&r);
}

Test(xring, empty_ring_pops_nothing_and_has_no_items)
{
	struct xring r;
	struct xmsg out[1];

	xring_init(&r, 4, NULL);
	cr_assert_not(xring_has_items(&r));
	cr_assert_eq(xring_pop(&r, out, 1), 0);
	xring_fini(&r);
}

Test(xring, push_to_full_ring_returns_eagain_and_leaves_the_ring_unchanged)
{
	struct xring r;
	struct xmsg out[8];
	struct xmsg extra = seq_msg(5);

	xring_init(&r, 4, NULL);
	for (uint64_t i = 1; i <= 4; i++)
		push_ok(&r, i);
	cr_assert_eq(xring_push(&r, &extra), -EAGAIN);
	cr_assert_eq(xring_push(&r, &extra), -EAGAIN, "still full when asked again");
	cr_assert(is_seq_msg(&extra, 5), "the refused item is the caller's, untouched");
	xring_publish(&r);
	cr_assert_eq(xring_pop(&r, out, 8), 4, "nothing was dropped or added");
	for (uint64_t i = 1; i <= 4; i++)
		cr_assert(is_seq_msg(&out[i - 1], i));
	xring_fini(&r);
}

Test(xring, full_ring_takes_the_parked_item_once_the_consumer_pops)
{
	struct xring r;
	struct xmsg out[4];
	struct xmsg parked = seq_msg(5);

	xring_init(&r, 4, NULL);
	for (uint64_t i = 1; i <= 4; i++)
		push_ok(&r, i);
	cr_assert_eq(xring_push(&r, &parked), -EAGAIN);
	xring_publish(&r);
	cr_assert_eq(xring_pop(&r, out, 1), 1);
	cr_assert(is_seq_msg(&out[0], 1));
	cr_assert_eq(xring_push(&r, &parked), 0);
	xring_publish(&r);
	/* pop may stop at the consumer's cached tail; a second call picks up the rest */
	for (uint64_t next = 2, n; next <= 5; next += n) {
		n = xring_pop(&r, out, 4);
		cr_assert(n > 0, "item %lu never arrived", (unsigned long)next);
		for (uint64_t i = 0; i < n; i++)
			cr_assert(is_seq_msg(&out[i], next + i), "item %lu", (unsigned long)(next + i));
	}
	xring_fini(&r);
}

Test(xring, unpublished_items_are_invisible_to_the_consumer)
{
	struct xring r;
	struct xmsg out[4];

	xring_init(&r, 4, NULL);
	push_ok(&r, 1);
	push_ok(&r, 2);
	cr_assert_not(xring_has_items(&r));
	cr_assert_eq(xring_pop(&r, out, 4), 0);
	xring_publish(&r);
	cr_assert(xring_has_items(&r));
	push_ok(&r, 3);
	cr_assert_eq(xring_pop(&r, out, 4), 2, "only the published batch");
	cr_assert_not(xring_has_items(&r));
	xring_publish(&r);
	cr_assert_eq(xring_pop(&r, out, 4), 1);
	cr_assert(is_seq_msg(&out[0], 3));
	xring_fini(&r);
}

Test(xring, unpublished_items_still_take_space)
{
	struct xring r;
	struct xmsg out[8];

	xring_init(&r, 8, NULL);
	cr_assert_eq(xring_space(&r), 8);
	for (uint64_t i = 1; i <= 3; i++)
		push_ok(&r, i);
	cr_assert_eq(xring_space(&r), 5, "pushed but unpublished items count");
	xring_publish(&r);
	cr_assert_eq(xring_space(&r), 5);
	cr_assert_eq(xring_pop(&r, out, 2), 2);
	cr_assert_eq(xring_space(&r), 7, "popped slots come back");
	for (uint64_t i = 4; i <= 10; i++)
		push_ok(&r, i);
	cr_assert_eq(xring_space(&r), 0);
	xring_fini(&r);
}

Test(xring, capacity_one_ring_holds_one_item)
{
	struct xring r;
	struct xmsg out[2];
	struct xmsg m = seq_msg(2);

	xring_init(&r, 1, NULL);
	push_ok(&r, 1);
	cr_assert_eq(xring_push(&r, &m), -EAGAIN);
	xring_publish(&r);
	cr_assert_eq(xring_pop(&r, out, 2), 1);
	cr_assert_eq(xring_push(&r, &m), 0);
	xring_publish(&r);
	cr_assert_eq(xring_pop(&r, out, 2), 1);
	cr_assert(is_seq_msg(&out[0], 2));
	xring_fini(&r);
}

/* ---- wraparound ---- */

struct wrap_case {
	uint32_t capacity;
	uint32_t push_batch;	/* pushed per publish */
	uint32_t pop_max;	/* popped per call */
};

ParameterizedTestParameters(xring, keeps_order_across_wraparound)
{
	static struct wrap_case cases[] = {
		{ 1, 1, 1 },	{ 2, 1, 1 },	{ 2, 2, 1 },   { 4, 3, 2 },   { 8, 5, 3 },
		{ 8, 8, 8 },	{ 16, 7, 16 },	{ 64, 63, 5 }, { 64, 1, 64 }, { 128, 100, 33 },
		{ 1024, 1000, 999 },
	};

	return cr_make_param_array(struct wrap_case, cases, sizeof(cases) / sizeof(cases[0]));
}

/* Pushes batches (as many as fit), publishes, pops with a smaller max, for many laps. */
ParameterizedTest(struct wrap_case *c, xring, keeps_order_across_wraparound)
{
	struct xring r;
	struct xmsg out[1024];
	uint64_t next_push = 1;
	uint64_t next_pop = 1;
	const uint64_t total = (uint64_t)c->capacity * 40 + 17;

	xring_init(&r, c->capacity, NULL);
	while (next_pop <= total) {
		uint32_t n;

		for (uint32_t i = 0; i < c->push_batch && next_push <= total; i++) {
			struct xmsg m = seq_msg(next_push);

			if (xring_push(&r, &m))
				break;
			next_push++;
		}
		xring_publish(&r);
		n = xring_pop(&r, out, c->pop_max);
		cr_assert(n > 0 || next_pop > total, "ring stalled at %lu (cap %u)",
			  (unsigned long)next_pop, c->capacity);
		for (uint32_t i = 0; i < n; i++, next_pop++)
			cr_assert(is_seq_msg(&out[i], next_pop), "item %lu (cap %u batch %u pop %u)",
				  (unsigned long)next_pop, c->capacity, c->push_batch, c->pop_max);
	}
	cr_assert_eq(next_push, total + 1);
	xring_fini(&r);
}

/* The head and tail counters are free-running uint32s: start them just below 2^32. */
Test(xring, keeps_order_when_its_indices_wrap_past_uint32_max)
{
	const uint32_t start = UINT32_MAX - 5;
	struct xring r;
	struct xmsg out[8];
	uint64_t next_pop = 1;

	xring_init(&r, 8, NULL);
	atomic_store(&r.tail, start);
	r.tail_local = start;
	r.head_cache = start;
	atomic_store(&r.head, start);
	r.tail_cache = start;
	for (uint64_t seq = 1; seq <= 40;) {
		uint32_t n;

		while (seq <= 40) {
			struct xmsg m = seq_msg(seq);

			if (xring_push(&r, &m)) {
				cr_assert_eq(xring_space(&r), 0, "refused only when full");
				break;
			}
			seq++;
		}
		xring_publish(&r);
		n = xring_pop(&r, out, 3);
		for (uint32_t i = 0; i < n; i++, next_pop++)
			cr_assert(is_seq_msg(&out[i], next_pop), "item %lu", (unsigned long)next_pop);
	}
	while (next_pop <= 40) {
		uint32_t n = xring_pop(&r, out, 8);

		cr_assert(n > 0);
		for (uint32_t i = 0; i < n; i++, next_pop++)
			cr_assert(is_seq_msg(&out[i], next_pop), "item %lu", (unsigned long)next_pop);
	}
	cr_assert(atomic_load(&r.head) < start, "the indices really wrapped");
	xring_fini(&r);
}

/* ---- wake-up handshake ---- */

struct wake_fixture {
	struct xwake w;
	int efd;
};

static struct wake_fixture wf;

static void wake_setup(void)
{
	wf.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cr_assert(wf.efd >= 0);
	xwake_init(&wf.w, wf.efd);
}

static void wake_teardown(void)
{
	close(wf.efd);
}

TestSuite(xwake, .init = wake_setup, .fini = wake_teardown);

Test(xwake, publish_to_an_awake_consumer_writes_no_eventfd)
{
	struct xring r;

	xring_init(&r, 8, &wf.w);
	push_ok(&r, 1);
	xring_publish(&r);
	cr_assert_eq(eventfd_take(wf.efd), 0);
	cr_assert_eq(atomic_load(&wf.w.wakes), 0);
	xring_fini(&r);
}

Test(xwake, publish_after_the_consumer_announced_sleep_writes_the_eventfd_once)
{
	struct xring r;

	xring_init(&r, 8, &wf.w);
	xwake_sleep(&wf.w);
	cr_assert_not(xring_has_items(&r), "the consumer's re-check finds nothing");
	push_ok(&r, 1);
	xring_publish(&r);
	cr_assert_eq(eventfd_take(wf.efd), 1);
	cr_assert_eq(atomic_load(&wf.w.wakes), 1);
	cr_assert_eq(atomic_load(&wf.w.sleeping), 0, "the waking producer clears the flag");
	push_ok(&r, 2);
	xring_publish(&r);
	cr_assert_eq(eventfd_take(wf.efd), 0, "one wake-up per sleep, not per publish");
	xring_fini(&r);
}

Test(xwake, only_the_first_of_several_rings_feeding_a_sleeper_writes)
{
	struct xring a;
	struct xring b;

	xring_init(&a, 8, &wf.w);
	xring_init(&b, 8, &wf.w);
	xwake_sleep(&wf.w);
	push_ok(&a, 1);
	push_ok(&b, 2);
	xring_publish(&a);
	xring_publish(&b);
	cr_assert_eq(eventfd_take(wf.efd), 1);
	cr_assert_eq(atomic_load(&wf.w.wakes), 1);
	cr_assert(xring_has_items(&a));
	cr_assert(xring_has_items(&b));
	xring_fini(&a);
	xring_fini(&b);
}

Test(xwake, publish_with_nothing_pushed_does_not_wake_a_sleeper)
{
	struct xring r;

	xring_init(&r, 8, &wf.w);
	xwake_sleep(&wf.w);
	xring_publish(&r);
	cr_assert_eq(eventfd_take(wf.efd), 0);
	cr_assert_eq(atomic_load(&wf.w.sleeping), 1, "still asleep");
	xring_fini(&r);
}

Test(xwake, awake_consumer_is_not_woken_again)
{
	struct xring r;

	xring_init(&r, 8, &wf.w);
	xwake_sleep(&wf.w);
	xwake_awake(&wf.w);
	push_ok(&r, 1);
	xring_publish(&r);
	cr_assert_eq(eventfd_take(wf.efd), 0);
	cr_assert_eq(atomic_load(&wf.w.wakes), 0);
	xring_fini(&r);
}

/* The other half of the handshake: a publish that happened before the announcement is
 * found by the consumer's re-check, so it need not (and must not) block. */
Test(xwake, recheck_after_announcing_sleep_sees_an_earlier_publish)
{
	struct xring r;

	xring_init(&r, 8, &wf.w);
	push_ok(&r, 1);
	xring_publish(&r);
	xwake_sleep(&wf.w);
	cr_assert(xring_has_items(&r));
	cr_assert_eq(eventfd_take(wf.efd), 0, "the producer saw an awake consumer");
	xwake_awake(&wf.w);
	xring_fini(&r);
}

Test(xwake, each_sleep_gets_its_own_wake_up)
{
	struct xring r;
	struct xmsg out[1];

	xring_init(&r, 8, &wf.w);
	for (uint64_t i = 1; i <= 5; i++) {
		xwake_sleep(&wf.w);
		cr_assert_not(xring_has_items(&r));
		push_ok(&r, i);
		xring_publish(&r);
		cr_assert_eq(eventfd_take(wf.efd), 1, "sleep %lu", (unsigned long)i);
		xwake_awake(&wf.w);
		cr_assert_eq(xring_pop(&r, out, 1), 1);
	}
	cr_assert_eq(atomic_load(&wf.w.wakes), 5);
	xring_fini(&r);
}

/* The mirrored handshake (xring_set_producer): a producer waiting for space on a full
 * ring is woken by the consumer's pop, once; a producer that is not waiting costs the
 * consumer no eventfd write. */
Test(xwake, pop_wakes_a_producer_waiting_for_space_once)
{
	struct xring r;
	struct xmsg out[1];

	xring_init(&r, 2, NULL);
	xring_set_producer(&r, &wf.w);
	push_ok(&r, 1);
	push_ok(&r, 2);
	xring_publish(&r);
	xwake_sleep(&wf.w);
	cr_assert_eq(xring_space(&r), 0, "the producer's re-check finds the ring full");
	cr_assert_eq(xring_pop(&r, out, 1), 1);
	cr_assert_eq(eventfd_take(wf.efd), 1);
	cr_assert_eq(atomic_load(&wf.w.sleeping), 0, "the waking consumer clears the flag");
	cr_assert_eq(xring_space(&r), 1);
	cr_assert_eq(xring_pop(&r, out, 1), 1);
	cr_assert_eq(eventfd_take(wf.efd), 0, "one wake-up per sleep, not per pop");
	cr_assert_eq(atomic_load(&wf.w.wakes), 1);
	xring_fini(&r);
}

/* ---- threads: one producer, one sleeping consumer ---- */

#define STRESS_RING_SLOTS 64
#define STRESS_BATCH 16
#define STRESS_POLL_MS 2000	/* a wake-up later than this counts as lost */
#define STRESS_DEADLINE_S 60

struct stress {
	struct xring ring;
	struct xwake wake;
	int efd;
	uint64_t total;
	uint64_t deadline_ns;
	/* consumer's findings */
	uint64_t received;
	uint64_t first_bad;	/* seq expected where a wrong item arrived, 0: none */
	uint64_t lost_wakeups;	/* polls that timed out with an item published */
	uint64_t sleeps;	/* times the consumer really blocked in poll */
	bool timed_out;
	_Atomic bool failed;	/* the consumer gave up: the producer stops too */
	uint32_t leftover;	/* items still in the ring after both threads ended */
};

static void *stress_producer(void *arg)
{
	struct stress *s = arg;
	uint64_t seq = 1;

	while (seq <= s->total) {
		uint32_t pushed = 0;

		while (pushed < STRESS_BATCH && seq <= s->total) {
			struct xmsg m = seq_msg(seq);

			if (xring_push(&s->ring, &m))
				break;
			seq++;
			pushed++;
		}
		xring_publish(&s->ring);
		if (!pushed) {
			/* full: the consumer is behind; let it run (the test's producer may wait) */
			if (now_ns() > s->deadline_ns || atomic_load(&s->failed))
				break;
			sched_yield();
		}
		/* every so often go quiet so the consumer runs dry and blocks */
		if ((seq & 0x3ffff) < pushed)
			usleep(200);
	}
	return NULL;
}

/* Blocks on the eventfd the way a shard does: announce, re-check, then really wait. */
static void stress_sleep(struct stress *s)
{
	struct pollfd p = { .fd = s->efd, .events = POLLIN };

	xwake_sleep(&s->wake);
	if (!xring_has_items(&s->ring)) {
		s->sleeps++;
		if (poll(&p, 1, STRESS_POLL_MS) == 0 && !eventfd_take(s->efd) &&
		    xring_has_items(&s->ring))
			s->lost_wakeups++;
		(void)eventfd_take(s->efd);
	}
	xwake_awake(&s->wake);
}

static void *stress_consumer(void *arg)
{
	struct stress *s = arg;
	struct xmsg out[STRESS_BATCH * 2];
	uint64_t next = 1;
	uint32_t idle = 0;

	while (next <= s->total) {
		uint32_t n = xring_pop(&s->ring, out, STRESS_BATCH * 2);

		for (uint32_t i = 0; i < n; i++, next++)
			if (!s->first_bad && !is_seq_msg(&out[i], next))
				s->first_bad = next;
		s->received += n;
		if (s->first_bad || s->lost_wakeups)
			break;
		if (n) {
			idle = 0;
			continue;
		}
		if (now_ns() > s->deadline_ns) {
			s->timed_out = true;
			break;
		}
		if (++idle > 4)
			stress_sleep(s);
	}
	if (next <= s->total)
		atomic_store(&s->failed, true);
	return NULL;
}

static void stress_run(struct stress *s, uint64_t total)
{
	pthread_t prod;
	pthread_t cons;
	struct xmsg extra;

	memset(s, 0, sizeof(*s));
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cr_assert(s->efd >= 0);
	xwake_init(&s->wake, s->efd);
	xring_init(&s->ring, STRESS_RING_SLOTS, &s->wake);
	s->total = total;
	s->deadline_ns = now_ns() + (uint64_t)STRESS_DEADLINE_S * 1000000000u;
	cr_assert_eq(pthread_create(&cons, NULL, stress_consumer, s), 0);
	cr_assert_eq(pthread_create(&prod, NULL, stress_producer, s), 0);
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	s->leftover = xring_pop(&s->ring, &extra, 1);
	xring_fini(&s->ring);
	close(s->efd);
}

Test(xring_threads, moves_millions_of_items_in_order_through_a_small_ring_with_sleeps,
     .timeout = STRESS_DEADLINE_S + 30)
{
	struct stress s;
	const uint64_t total = UNDER_TSAN ? 4000000 : 10000000;

	stress_run(&s, total);
	cr_assert_not(s.timed_out, "gave up after %ds with %lu of %lu items", STRESS_DEADLINE_S,
		      (unsigned long)s.received, (unsigned long)total);
	cr_assert_eq(s.first_bad, 0, "wrong item where seq %lu was due", (unsigned long)s.first_bad);
	cr_assert_eq(s.lost_wakeups, 0, "%lu sleeps outlived a publish", (unsigned long)s.lost_wakeups);
	cr_assert_eq(s.received, total, "every item arrives exactly once");
	cr_assert_eq(s.leftover, 0, "nothing left over (no duplicates)");
	cr_assert(s.sleeps > 0, "the consumer never blocked, so the wake-up went untested");
	cr_assert(atomic_load(&s.wake.wakes) > 0);
}

/* ---- threads: all-to-all, one ring per ordered pair (Seastar's _qs[from][to]) ---- */

#define A2A_THREADS 4
#define A2A_SLOTS 32

struct a2a_node;

struct a2a {
	struct a2a_node *nodes;
	struct xring rings[A2A_THREADS][A2A_THREADS];	/* [from][to] */
	uint64_t per_pair;
	uint64_t deadline_ns;
	_Atomic bool failed;	/* some thread saw an error: every thread stops */
};

struct a2a_node {
	struct a2a *all;
	uint32_t id;
	pthread_t thread;
	struct xwake wake;
	int efd;
	uint64_t sent[A2A_THREADS];	/* next seq to send to each, minus one */
	uint64_t got[A2A_THREADS];	/* items received from each */
	uint64_t bad_from;		/* 1 + sender of the first out-of-order item, 0: none */
	uint64_t lost_wakeups;
	bool timed_out;
};

/* seq carries the sender in its top byte so a misrouted item is caught too */
static uint64_t a2a_seq(uint32_t from, uint64_t n)
{
	return (uint64_t)from << 56 | n;
}

static bool a2a_send_some(struct a2a_node *me)
{
	struct a2a *all = me->all;
	bool more = false;

	for (uint32_t to = 0; to < A2A_THREADS; to++) {
		struct xring *r = &all->rings[me->id][to];

		for (uint32_t k = 0; k < 8 && me->sent[to] < all->per_pair; k++) {
			struct xmsg m = seq_msg(a2a_seq(me->id, me->sent[to] + 1));

			if (xring_push(r, &m))
				break;
			me->sent[to]++;
		}
		xring_publish(r);
		more |= me->sent[to] < all->per_pair;
	}
	return more;
}

static uint32_t a2a_drain(struct a2a_node *me)
{
	struct a2a *all = me->all;
	struct xmsg out[16];
	uint32_t total = 0;

	for (uint32_t from = 0; from < A2A_THREADS; from++) {
		uint32_t n = xring_pop(&all->rings[from][me->id], out, 16);

		for (uint32_t i = 0; i < n; i++) {
			me->got[from]++;
			if (!me->bad_from && !is_seq_msg(&out[i], a2a_seq(from, me->got[from])))
				me->bad_from = from + 1;
		}
		total += n;
	}
	return total;
}

static bool a2a_done(const struct a2a_node *me)
{
	for (uint32_t i = 0; i < A2A_THREADS; i++)
		if (me->got[i] < me->all->per_pair)
			return false;
	return true;
}

static void a2a_sleep(struct a2a_node *me)
{
	struct pollfd p = { .fd = me->efd, .events = POLLIN };
	bool pending = false;

	xwake_sleep(&me->wake);
	for (uint32_t from = 0; from < A2A_THREADS; from++)
		pending |= xring_has_items(&me->all->rings[from][me->id]);
	if (!pending) {
		if (poll(&p, 1, STRESS_POLL_MS) == 0 && !eventfd_take(me->efd))
			for (uint32_t from = 0; from < A2A_THREADS; from++)
				if (xring_has_items(&me->all->rings[from][me->id]))
					me->lost_wakeups++;
		(void)eventfd_take(me->efd);
	}
	xwake_awake(&me->wake);
}

static void *a2a_main(void *arg)
{
	struct a2a_node *me = arg;

	while (!a2a_done(me)) {
		bool more = a2a_send_some(me);
		uint32_t n = a2a_drain(me);

		if (me->bad_from || me->lost_wakeups || atomic_load(&me->all->failed))
			break;
		if (now_ns() > me->all->deadline_ns) {
			me->timed_out = true;
			break;
		}
		if (n)
			continue;
		if (more)
			sched_yield();	/* a full out-ring: the shard loop never sleeps then either */
		else
			a2a_sleep(me);
	}
	if (!a2a_done(me))
		atomic_store(&me->all->failed, true);
	/* keep publishing what others still wait for */
	while (a2a_send_some(me) && now_ns() <= me->all->deadline_ns && !atomic_load(&me->all->failed))
		sched_yield();
	return NULL;
}

Test(xring_threads, four_threads_all_to_all_keep_per_sender_order,
     .timeout = STRESS_DEADLINE_S + 30)
{
	static struct a2a all;
	static struct a2a_node nodes[A2A_THREADS];
	struct xmsg extra;

	memset(&all, 0, sizeof(all));
	memset(nodes, 0, sizeof(nodes));
	all.nodes = nodes;
	all.per_pair = UNDER_TSAN ? 200000 : 500000;
	all.deadline_ns = now_ns() + (uint64_t)STRESS_DEADLINE_S * 1000000000u;
	for (uint32_t i = 0; i < A2A_THREADS; i++) {
		nodes[i].all = &all;
		nodes[i].id = i;
		nodes[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		cr_assert(nodes[i].efd >= 0);
		xwake_init(&nodes[i].wake, nodes[i].efd);
	}
	for (uint32_t from = 0; from < A2A_THREADS; from++)
		for (uint32_t to = 0; to < A2A_THREADS; to++)
			xring_init(&all.rings[from][to], A2A_SLOTS, &nodes[to].wake);
	for (uint32_t i = 0; i < A2A_THREADS; i++)
		cr_assert_eq(pthread_create(&nodes[i].thread, NULL, a2a_main, &nodes[i]), 0);
	for (uint32_t i = 0; i < A2A_THREADS; i++)
		pthread_join(nodes[i].thread, NULL);
	for (uint32_t i = 0; i < A2A_THREADS; i++) {
		cr_assert_not(nodes[i].timed_out, "thread %u gave up", i);
		cr_assert_eq(nodes[i].bad_from, 0, "thread %u got an out-of-order item from %lu", i,
			     (unsigned long)nodes[i].bad_from - 1);
		cr_assert_eq(nodes[i].lost_wakeups, 0, "thread %u slept through a publish", i);
	}
	for (uint32_t i = 0; i < A2A_THREADS; i++) {
		for (uint32_t from = 0; from < A2A_THREADS; from++)
			cr_assert_eq(nodes[i].got[from], all.per_pair, "thread %u from %u", i, from);
	}
	for (uint32_t from = 0; from < A2A_THREADS; from++) {
		for (uint32_t to = 0; to < A2A_THREADS; to++) {
			cr_assert_eq(xring_pop(&all.rings[from][to], &extra, 1), 0);
			xring_fini(&all.rings[from][to]);
		}
	}
	for (uint32_t i = 0; i < A2A_THREADS; i++)
		close(nodes[i].efd);
}
