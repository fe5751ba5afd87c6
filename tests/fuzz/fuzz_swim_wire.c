/*
 * tests/fuzz/fuzz_swim_wire.c - libFuzzer target for the gossip packet decoder
 * (cluster/wire.c) and the state machine that consumes its output (cluster/swim.c):
 * gossip packets and push-pull states come from the network, so any bytes must be refused
 * or applied without a crash, an over-read, or a broken invariant. Built with clang
 * -fsanitize=fuzzer,address,undefined, and as a plain replay binary under gcc + ASan/UBSan
 * over corpus/fuzz_swim_wire/.
 *
 * Input: byte 0 picks the mode, the rest is the payload:
 *   mode % 4 == 0  payload is a whole datagram: wire_open (cluster "fuzz", no key) + decode
 *   mode % 4 == 1  the same with a key (so only the MAC check runs past the header)
 *   mode % 4 == 2  payload is a message area: a valid header is put in front and it is
 *                  decoded; with FUZZ_SWIM_STATE it is also fed to a 4-member swim instance
 *                  (swim_on_packet), whose timers then run for a minute of simulated time
 *   mode % 4 == 3  the same as a push-pull state (swim_merge_state)
 * Checked: every decoded view lies inside the input; every re-encoded message decodes to
 * the same fields; swim keeps its counts consistent (members per state add up).
 *
 * tests/fuzz/CMakeLists.txt links hd_cluster (and libm), so every mode is built.
 */
#define FUZZ_SWIM_STATE 1

#include "cluster/wire.h"
#include "cluster/swim.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_swim_wire: check failed at line %d: %s\n",   \
				__LINE__, #cond);                                          \
			abort();                                                           \
		}                                                                          \
	} while (0)

static const uint8_t fuzz_key[WIRE_KEY_LEN] = "fuzz-fuzz-fuzz-fuzz-fuzz-fuzz-fu";

static bool inside(struct wire_str s, const uint8_t *lo, const uint8_t *hi)
{
	return !s.len || ((const uint8_t *)s.ptr >= lo && (const uint8_t *)s.ptr + s.len <= hi);
}

static bool same_str(struct wire_str a, struct wire_str b)
{
	return a.len == b.len && (!a.len || !memcmp(a.ptr, b.ptr, a.len));
}

/* Re-encodes m and decodes it again: the fields must survive. */
static void check_round_trip(const struct wire_msg *m)
{
	uint8_t buf[WIRE_MSG_HDR + 65536];
	size_t n = wire_encode_msg(m, buf, sizeof(buf));
	const uint8_t *pos = buf;
	struct wire_msg again;

	CHECK(n > 0);
	CHECK(wire_next(&pos, buf + n, &again) == 1);
	CHECK(pos == buf + n);
	CHECK(again.type == m->type && again.seq == m->seq && again.count == m->count);
	CHECK(again.incarnation == m->incarnation && again.flag == m->flag);
	CHECK(again.state == m->state);
	CHECK(same_str(again.node, m->node) && same_str(again.from, m->from));
	CHECK(same_str(again.meta, m->meta));
	CHECK(!m->addr.family || wire_addr_eq(&again.addr, &m->addr));
}

static void decode_area(const uint8_t *body, size_t len)
{
	const uint8_t *pos = body;
	struct wire_msg m;
	int rc;

	while ((rc = wire_next(&pos, body + len, &m)) > 0) {
		CHECK(pos > body && pos <= body + len);
		CHECK(inside(m.node, body, body + len) && inside(m.from, body, body + len));
		CHECK(inside(m.meta, body, body + len));
		CHECK(m.node.len <= WIRE_NAME_MAX && m.from.len <= WIRE_NAME_MAX);
		CHECK(m.meta.len <= WIRE_META_MAX);
		check_round_trip(&m);
	}
	CHECK(rc == 0 || rc == -WIRE_E_MSG);
}

static void decode_packet(const uint8_t *data, size_t size, const uint8_t *key)
{
	const uint8_t *body;
	size_t blen;
	int rc = wire_open(data, size, "fuzz", key, &body, &blen);

	CHECK(rc <= 0 && rc >= -WIRE_E_MSG);
	if (rc == 0) {
		CHECK(body >= data && body + blen <= data + size);
		decode_area(body, blen);
	}
}

#ifdef FUZZ_SWIM_STATE
static void no_send(void *arg, const struct wire_addr *to, const uint8_t *buf, size_t len)
{
	(void)arg;
	(void)to;
	CHECK(len <= WIRE_UDP_MAX);
	CHECK(wire_open(buf, len, "fuzz", NULL, &(const uint8_t *){ 0 }, &(size_t){ 0 }) == 0);
}

static void check_counts(const struct swim *s)
{
	uint32_t sum = 0;

	for (int st = SWIM_ALIVE; st <= SWIM_LEFT; st++)
		sum += swim_num_in_state(s, (enum swim_state)st);
	CHECK(sum == swim_member_count(s));
	CHECK(swim_self(s)->state == SWIM_ALIVE);
}

static void feed_swim(const uint8_t *area, size_t len, bool as_state)
{
	static const char *const peers[] = { "a", "b", "c" };
	uint8_t *pkt = malloc(len + 64);
	struct swim_config cfg;
	struct swim_io io = { .send = no_send };
	struct wire_writer w;
	struct wire_addr from = { .family = 4, .ip = { 10, 0, 0, 1 }, .port = 7946 };
	struct swim *s;
	size_t plen;

	swim_config_defaults(&cfg);
	strcpy(cfg.name, "self");
	strcpy(cfg.cluster, "fuzz");
	cfg.addr = from;
	s = swim_create(&cfg, &io, 0);
	CHECK(s);
	for (size_t i = 0; i < 3; i++)
		swim_seed_member(s, 0, peers[i], &from, NULL, 0);
	CHECK(wire_begin(&w, pkt, len + 64, "fuzz", false) == 0);
	if (wire_put_raw(&w, area, len) == 0) {
		plen = wire_finish(&w, NULL);
		if (as_state)
			(void)swim_merge_state(s, 10, pkt, plen, NULL);
		else
			(void)swim_on_packet(s, 10, &from, pkt, plen);
		check_counts(s);
		for (uint64_t t = 20; t < 60000; t = HD_MAX(t + 1, swim_next_deadline_ms(s)))
			swim_tick(s, t);
		check_counts(s);
	}
	swim_destroy(s);
	free(pkt);
}
#else
static void feed_swim(const uint8_t *area, size_t len, bool as_state)
{
	(void)as_state;
	decode_area(area, len);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode;

	if (size < 1)
		return 0;
	mode = data[0] % 4;
	data++;
	size--;
	if (mode == 0)
		decode_packet(data, size, NULL);
	else if (mode == 1)
		decode_packet(data, size, fuzz_key);
	else if (size <= 65536)
		feed_swim(data, size, mode == 3);
	return 0;
}
