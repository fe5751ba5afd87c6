/*
 * tests/unit/core/test_hmsg.c - core/hmsg.c: the layout hmsg_create promises and the
 * reference count (STYLE.md section 6: immutable once published, the last unref frees).
 *
 * A freed message cannot be observed from a plain build, so the lifetime tests are written
 * for the sanitizer builds: ASan turns a second free or a read after the free into a crash,
 * LeakSanitizer (asked at the end of the test: tests/support/leak_check.h) a missing free
 * into a failure, and TSan (cmake -DHERALD_TSAN=ON) a reader whose reads are not ordered
 * before the last unref's free into a reported race. In every build they check the count
 * itself: concurrent drops lose none.
 */
#include "core/hmsg.h"
#include "tests/support/leak_check.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define DEST "/queue/orders"
#define DEST_LEN (sizeof(DEST) - 1)

static uint32_t refs_of(struct hmsg *m)
{
	return atomic_load(&m->refs);
}

/* ---- layout ---- */

Test(hmsg, create_copies_the_destination_with_a_trailing_nul)
{
	char dest[] = DEST;
	struct hmsg *m = hmsg_create(3, dest, DEST_LEN, 0);

	memset(dest, 'x', DEST_LEN);	/* the message owns its copy */
	cr_assert_eq(m->dest_len, DEST_LEN);
	cr_assert_str_eq(hmsg_dest(m), DEST);
	cr_assert_eq(hmsg_dest(m)[DEST_LEN], '\0');
	cr_assert_eq(m->home_shard, 3);
	cr_assert_eq(m->flags, 0);
	hmsg_unref(m);
}

Test(hmsg, create_starts_with_one_reference_and_an_empty_tail)
{
	struct hmsg *m = hmsg_create(0, DEST, DEST_LEN, 64);

	cr_assert_eq(refs_of(m), 1);
	cr_assert_eq(m->tail_len, 0);
	cr_assert_eq(m->body_len, 0);
	cr_assert_eq(m->msgid_len, 0);
	cr_assert_eq(m->tail10_len, 0);
	cr_assert_eq(m->tail_off, DEST_LEN + 1, "the tail starts right after the name's NUL");
	hmsg_unref(m);
}

/* Under ASan a tail buffer one byte short of tail_cap crashes here. */
Test(hmsg, tail_has_room_for_tail_cap_bytes)
{
	static const char tail[] = "message-id:1\ndestination:/queue/orders\n\nbody\0";
	struct hmsg *m = hmsg_create(0, DEST, DEST_LEN, sizeof(tail));
	uint32_t len;

	memcpy(hmsg_tail_mut(m), tail, sizeof(tail));
	m->tail_len = sizeof(tail);
	cr_assert_eq(memcmp(hmsg_tail(m), tail, sizeof(tail)), 0);
	cr_assert_str_eq(hmsg_dest(m), DEST, "writing the tail leaves the name alone");
	cr_assert_eq(hmsg_tail_for(m, STOMP_V10, &len), hmsg_tail(m), "no 1.0 tail: shared one");
	cr_assert_eq(len, sizeof(tail));
	hmsg_unref(m);
}

Test(hmsg, empty_destination_and_empty_tail_are_allowed)
{
	struct hmsg *m = hmsg_create(0, "", 0, 0);

	cr_assert_str_eq(hmsg_dest(m), "");
	cr_assert_eq(m->tail_off, 1);
	hmsg_unref(m);
}

Test(hmsg, version_1_0_readers_get_their_own_tail_when_set)
{
	struct hmsg *m = hmsg_create(0, DEST, DEST_LEN, 16);
	uint32_t len;

	memcpy(hmsg_tail_mut(m), "escaped\0plain", 13);
	m->tail_len = 7;
	m->tail10_off = m->tail_off + 8;
	m->tail10_len = 5;
	cr_assert_eq(memcmp(hmsg_tail_for(m, STOMP_V10, &len), "plain", 5), 0);
	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(hmsg_tail_for(m, STOMP_V12, &len), "escaped", 7), 0);
	cr_assert_eq(len, 7);
	cr_assert_eq(memcmp(hmsg_tail_for(m, STOMP_V11, &len), "escaped", 7), 0);
	hmsg_unref(m);
}

Test(hmsg, msgid_is_a_view_into_the_tail)
{
	struct hmsg *m = hmsg_create(0, DEST, DEST_LEN, 32);
	struct stomp_view id;

	memcpy(hmsg_tail_mut(m), "message-id:T-42\n", 16);
	m->tail_len = 16;
	m->msgid_off = m->tail_off + 11;
	m->msgid_len = 4;
	id = hmsg_msgid(m);
	cr_assert_eq(id.len, 4);
	cr_assert_eq(memcmp(id.ptr, "T-42", 4), 0);
	cr_assert(id.ptr >= hmsg_tail(m) && id.ptr + id.len <= hmsg_tail(m) + m->tail_len);
	hmsg_unref(m);
}

/* ---- reference count, one thread ---- */

Test(hmsg, ref_adds_n_references_and_unref_drops_one)
{
	struct hmsg *m = hmsg_create(0, DEST, DEST_LEN, 0);

	hmsg_ref(m, 3);
	cr_assert_eq(refs_of(m), 4);
	hmsg_unref(m);
	cr_assert_eq(refs_of(m), 3);
	hmsg_ref(m, 0);
	cr_assert_eq(refs_of(m), 3, "ref(0) is a no-op");
	hmsg_unref(m);
	hmsg_unref(m);
	cr_assert_eq(refs_of(m), 1);
	cr_assert_str_eq(hmsg_dest(m), DEST, "alive while one reference is left");
	hmsg_unref(m);
	cr_assert(leak_check_clean(), "the last unref frees");
}

Test(hmsg, release_callback_drops_one_reference)
{
	struct hmsg *m = hmsg_create(0, DEST, DEST_LEN, 0);

	hmsg_ref(m, 1);
	hmsg_release_cb(m);
	cr_assert_eq(refs_of(m), 1);
	hmsg_release_cb(m);
	cr_assert(leak_check_clean());
}

/* ---- reference count, many threads ---- */

#define UNREF_THREADS 8
#define REFS_PER_THREAD 20000
#define MSGS_PER_ROUND 64

struct unref_job {
	struct hmsg **msgs;	/* each thread drops REFS_PER_THREAD / nmsgs refs of each */
	uint32_t nmsgs;
	uint32_t drops_each;
	pthread_barrier_t *start;
	uint64_t bad_reads;	/* times the bytes did not read back as written */
};

/* Reads the bytes, then drops the reference: the read must happen before any free. */
static void *unref_worker(void *arg)
{
	struct unref_job *job = arg;

	pthread_barrier_wait(job->start);
	for (uint32_t k = 0; k < job->drops_each; k++) {
		for (uint32_t i = 0; i < job->nmsgs; i++) {
			struct hmsg *m = job->msgs[i];

			if (memcmp(hmsg_dest(m), DEST, DEST_LEN + 1) || hmsg_tail(m)[0] != 'T')
				job->bad_reads++;
			hmsg_unref(m);
		}
	}
	return NULL;
}

/* Creates n messages, each with `extra` references on top of the creator's one. */
static void make_msgs(struct hmsg **msgs, uint32_t n, uint32_t extra)
{
	for (uint32_t i = 0; i < n; i++) {
		msgs[i] = hmsg_create((uint16_t)i, DEST, DEST_LEN, 8);
		memcpy(hmsg_tail_mut(msgs[i]), "Tail", 4);
		msgs[i]->tail_len = 4;
		hmsg_ref(msgs[i], extra);
	}
}

static uint64_t run_unref_threads(struct hmsg **msgs, uint32_t nmsgs, uint32_t drops_each)
{
	pthread_t th[UNREF_THREADS];
	struct unref_job jobs[UNREF_THREADS];
	pthread_barrier_t start;
	uint64_t bad = 0;

	pthread_barrier_init(&start, NULL, UNREF_THREADS);
	for (uint32_t t = 0; t < UNREF_THREADS; t++) {
		jobs[t] = (struct unref_job){ .msgs = msgs, .nmsgs = nmsgs, .drops_each = drops_each,
					      .start = &start };
		cr_assert_eq(pthread_create(&th[t], NULL, unref_worker, &jobs[t]), 0);
	}
	for (uint32_t t = 0; t < UNREF_THREADS; t++) {
		pthread_join(th[t], NULL);
		bad += jobs[t].bad_reads;
	}
	pthread_barrier_destroy(&start);
	return bad;
}

/* The creator keeps its reference: after every thread's drops, exactly it is left. */
Test(hmsg, concurrent_unrefs_lose_no_decrement)
{
	struct hmsg *m;

	make_msgs(&m, 1, UNREF_THREADS * REFS_PER_THREAD);
	cr_assert_eq(run_unref_threads(&m, 1, REFS_PER_THREAD), 0);
	cr_assert_eq(refs_of(m), 1);
	cr_assert_str_eq(hmsg_dest(m), DEST);
	hmsg_unref(m);
	cr_assert(leak_check_clean());
}

/* Every reference is dropped by some worker, racing for the last one: exactly one of them
 * frees (ASan: no double free; LSan: no leak), after every other's reads (TSan). */
Test(hmsg, last_of_concurrent_unrefs_frees_exactly_once, .timeout = 60)
{
	struct hmsg *msgs[MSGS_PER_ROUND];
	const uint32_t rounds = 200;

	for (uint32_t r = 0; r < rounds; r++) {
		make_msgs(msgs, MSGS_PER_ROUND, UNREF_THREADS - 1);
		cr_assert_eq(run_unref_threads(msgs, MSGS_PER_ROUND, 1), 0, "round %u", r);
	}
	cr_assert(leak_check_clean(), "every message was freed");
}
