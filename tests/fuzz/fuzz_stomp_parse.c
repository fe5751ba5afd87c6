/*
 * tests/fuzz/fuzz_stomp_parse.c - libFuzzer target for proto/stomp_parse.c (and, through
 * the round trip, stomp_encode.c). Built with clang -fsanitize=fuzzer,address,undefined,
 * and as a plain replay binary under gcc + ASan/UBSan over corpus/fuzz_stomp_parse/.
 *
 * Input: byte 0 picks the version and the scratch size, bytes 1-2 the limits, byte 3
 * seeds the chunk sizes; the rest is the byte stream a client sent. Checked:
 *   - every returned frame is well formed (views inside the input or scratch, counts and
 *     sizes within the limits, body followed by its NUL, errors with a reason, sticky);
 *   - the stream fed in random pieces, each call given a fresh exact-size copy of the
 *     unconsumed bytes (so the partial frame moves and over-reads hit ASan), yields the
 *     same frames, heart-beat total and ending as the stream fed whole;
 *   - each frame re-encoded with stomp_encode_frame parses back to the same frame.
 * A broken invariant aborts, which libFuzzer reports as a crash.
 */
#include "proto/stomp_encode.h"
#include "proto/stomp_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_stomp_parse: check failed at line %d: %s\n", \
				__LINE__, #cond);                                          \
			abort();                                                           \
		}                                                                          \
	} while (0)

struct config {
	enum stomp_version version;
	struct stomp_limits limits;
	size_t scratch_cap;
	uint32_t seed;
};

/* Frames flattened (length-prefixed fields), heart-beats counted, how the stream ended. */
struct outcome {
	char *dump;
	size_t dump_len;
	size_t dump_cap;
	uint64_t heartbeats;
	int err;
	size_t consumed;
};

static void dump_bytes(struct outcome *o, const void *p, size_t len)
{
	size_t need = o->dump_len + sizeof(len) + len;

	if (need > o->dump_cap) {
		o->dump_cap = need * 2;
		o->dump = realloc(o->dump, o->dump_cap);
		CHECK(o->dump);
	}
	memcpy(o->dump + o->dump_len, &len, sizeof(len));
	if (len)
		memcpy(o->dump + o->dump_len + sizeof(len), p, len);
	o->dump_len = need;
}

static void dump_frame(struct outcome *o, const struct stomp_frame *f)
{
	const char *name = stomp_cmd_name(f->cmd);

	dump_bytes(o, name, strlen(name));
	for (uint32_t i = 0; i < f->nheaders; i++) {
		dump_bytes(o, f->headers[i].name.ptr, f->headers[i].name.len);
		dump_bytes(o, f->headers[i].value.ptr, f->headers[i].value.len);
	}
	dump_bytes(o, f->body.ptr, f->body.len);
}

static bool view_inside(struct stomp_view v, const char *lo, const char *hi)
{
	return v.ptr >= lo && v.ptr <= hi && v.len <= (size_t)(hi - v.ptr);
}

/* stomp_frame_header finds the first header of each name (names with NUL can't be asked). */
static void check_first_wins(const struct stomp_frame *f)
{
	char name[256];

	for (uint32_t i = 0; i < f->nheaders; i++) {
		const struct stomp_view *n = &f->headers[i].name;
		const struct stomp_view *v;
		uint32_t first = 0;

		if (n->len >= sizeof(name) || memchr(n->ptr, '\0', n->len))
			continue;
		memcpy(name, n->ptr, n->len);
		name[n->len] = '\0';
		while (!stomp_view_eq(f->headers[first].name, n->ptr, n->len))
			first++;
		v = stomp_frame_header(f, name);
		CHECK(v == &f->headers[first].value);
	}
}

/* Invariants of one successful call that consumed r bytes of buf[0..len). */
static void check_frame(const struct stomp_parser *p, const struct stomp_frame *f,
			const char *buf, size_t len, ssize_t r)
{
	const char *end = buf + r;

	CHECK((size_t)r <= len);
	CHECK(f->cmd >= STOMP_CMD_NONE && f->cmd < STOMP_CMD_COUNT);
	if (f->cmd == STOMP_CMD_NONE) {
		CHECK(f->heartbeats > 0 && f->nheaders == 0);
		CHECK((size_t)r >= f->heartbeats && (size_t)r <= 2 * (size_t)f->heartbeats);
		return;
	}
	CHECK(f->nheaders <= p->limits.max_headers);
	CHECK(f->body.len <= p->limits.max_body);
	CHECK((size_t)r <= p->limits.max_frame + 2 * (size_t)f->heartbeats);
	CHECK(view_inside(f->body, buf, end) && f->body.ptr + f->body.len + 1 == end);
	CHECK(f->body.ptr[f->body.len] == '\0');
	if (!f->has_content_length)
		CHECK(!memchr(f->body.ptr, '\0', f->body.len));
	for (uint32_t i = 0; i < f->nheaders; i++) {
		const struct stomp_header *h = &f->headers[i];
		const char *s_end = p->scratch + p->scratch_cap;

		CHECK(h->name.len > 0);
		CHECK(view_inside(h->name, buf, f->body.ptr) ||
		      (p->scratch && view_inside(h->name, p->scratch, s_end)));
		CHECK(view_inside(h->value, buf, f->body.ptr) ||
		      (p->scratch && view_inside(h->value, p->scratch, s_end)));
	}
	check_first_wins(f);
}

static void check_error(struct stomp_parser *p, ssize_t r)
{
	struct stomp_frame f;

	CHECK(r >= STOMP_E_NUL_IN_HEADER && r <= STOMP_E_FRAME_TOO_LARGE);
	CHECK(p->reason && p->reason[0]);
	CHECK(stomp_parse(p, "SEND\n\n", 7, &f) == r);
}

static void parser_for(struct stomp_parser *p, const struct config *c, char *scratch)
{
	stomp_parser_init(p, &c->limits, scratch, c->scratch_cap);
	stomp_parser_set_version(p, c->version);
}

/* Can stomp_encode_frame carry this frame so it parses back the same? Not a CR ending a
 * name or value unless 1.2 escaping applies (the parser strips a CR before LF). */
static bool encodable(const struct stomp_frame *f, enum stomp_version v)
{
	bool escaped = v == STOMP_V12 && f->cmd != STOMP_CMD_CONNECT &&
		       f->cmd != STOMP_CMD_STOMP && f->cmd != STOMP_CMD_CONNECTED;

	for (uint32_t i = 0; i < f->nheaders && !escaped; i++) {
		const struct stomp_header *h = &f->headers[i];

		if (h->name.ptr[h->name.len - 1] == '\r')
			return false;
		if (h->value.len && h->value.ptr[h->value.len - 1] == '\r')
			return false;
	}
	return true;
}

/* Re-encodes f (its own content-length header, if any, sizes the body again) and parses
 * it back with generous limits: the same frame must come out. */
static void check_round_trip(const struct stomp_frame *f, const struct outcome *want_one,
			     enum stomp_version v)
{
	static char scratch[1 << 16];
	struct stomp_limits big = { 1 << 20, STOMP_HEADERS_CAP, 1 << 16, 1 << 20, 16 };
	struct stomp_parser p;
	struct stomp_frame back;
	struct outcome got = { 0 };
	size_t cap;
	char *buf;
	ssize_t n;

	if (!encodable(f, v))
		return;
	cap = 64 + f->body.len;
	for (uint32_t i = 0; i < f->nheaders; i++)
		cap += 2 * (f->headers[i].name.len + f->headers[i].value.len) + 2;
	buf = malloc(cap);
	CHECK(buf);
	n = stomp_encode_frame(buf, cap, v, f->cmd, f->headers, f->nheaders, f->body.ptr,
			       f->body.len, false);
	CHECK(n > 0);
	stomp_parser_init(&p, &big, scratch, sizeof(scratch));
	stomp_parser_set_version(&p, v);
	CHECK(stomp_parse(&p, buf, (size_t)n, &back) == n);
	dump_frame(&got, &back);
	CHECK(got.dump_len == want_one->dump_len);
	CHECK(memcmp(got.dump, want_one->dump, got.dump_len) == 0);
	free(got.dump);
	free(buf);
}

/* The whole stream in one buffer: check every frame, round-trip it, record the outcome. */
static void run_whole(const struct config *c, const char *data, size_t len, struct outcome *o)
{
	char *scratch = malloc(c->scratch_cap + 1);
	char *buf = malloc(len + 1);
	struct stomp_parser p;
	struct stomp_frame f;
	ssize_t r;

	CHECK(scratch && buf);
	if (len)
		memcpy(buf, data, len);
	parser_for(&p, c, scratch);
	for (;;) {
		r = stomp_parse(&p, buf + o->consumed, len - o->consumed, &f);
		if (r < 0) {
			check_error(&p, r);
			o->err = (int)r;
			break;
		}
		if (r == 0)
			break;
		check_frame(&p, &f, buf + o->consumed, len - o->consumed, r);
		o->heartbeats += f.heartbeats;
		if (f.cmd != STOMP_CMD_NONE) {
			struct outcome one = { 0 };

			dump_frame(&one, &f);
			check_round_trip(&f, &one, c->version);
			dump_bytes(o, one.dump, one.dump_len);
			free(one.dump);
		}
		o->consumed += (size_t)r;
	}
	free(buf);
	free(scratch);
}

static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* The same stream arriving in random pieces, each call on a fresh exact-size copy. */
static void run_chunked(const struct config *c, const char *data, size_t len, struct outcome *o)
{
	char *scratch = malloc(c->scratch_cap + 1);
	uint32_t rnd = c->seed * 2654435761u + 1;
	struct stomp_parser p;
	struct stomp_frame f;
	size_t avail = 0;
	ssize_t r;

	CHECK(scratch);
	parser_for(&p, c, scratch);
	while (avail < len) {
		uint32_t x = next_rand(&rnd);
		size_t step = x % 4 == 0 ? 1 : x % 4 == 1 ? x % 8 + 1 : x % 64 + 1;

		avail += step < len - avail ? step : len - avail;
		do {
			size_t n = avail - o->consumed;
			char *copy = malloc(n ? n : 1);

			CHECK(copy);
			memcpy(copy, data + o->consumed, n);
			r = stomp_parse(&p, copy, n, &f);
			if (r > 0) {
				check_frame(&p, &f, copy, n, r);
				o->heartbeats += f.heartbeats;
				if (f.cmd != STOMP_CMD_NONE) {
					struct outcome one = { 0 };

					dump_frame(&one, &f);
					dump_bytes(o, one.dump, one.dump_len);
					free(one.dump);
				}
				o->consumed += (size_t)r;
			}
			free(copy);
		} while (r > 0 && o->consumed < avail);
		if (r < 0) {
			check_error(&p, r);
			o->err = (int)r;
			break;
		}
	}
	free(scratch);
}

static void read_config(const uint8_t *d, struct config *c)
{
	static const size_t scratch_caps[] = { 0, 7, 64, 4096 };
	uint8_t a = d[1];
	uint8_t b = d[2];

	c->version = (enum stomp_version)(d[0] % 3);
	c->scratch_cap = scratch_caps[(d[0] >> 2) & 3];
	c->seed = d[3];
	stomp_limits_default(&c->limits);
	if (a & 0x80)
		return;	/* the defaults: nothing in a fuzz input reaches them but counts */
	c->limits.max_frame = 24 + (size_t)(a & 0x0f) * 40;
	c->limits.max_body = (size_t)(a >> 4 & 7) * 24;
	c->limits.max_headers = 1 + (size_t)(b & 7);
	c->limits.max_header_line = 4 + (size_t)(b >> 3 & 7) * 8;
	c->limits.max_command = 3 + (size_t)(b >> 6) * 4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole = { 0 };
	struct outcome chunked = { 0 };
	struct config c;

	if (size < 4)
		return 0;
	read_config(data, &c);
	run_whole(&c, (const char *)data + 4, size - 4, &whole);
	run_chunked(&c, (const char *)data + 4, size - 4, &chunked);
	CHECK(whole.err == chunked.err);
	CHECK(whole.dump_len == chunked.dump_len);
	CHECK(whole.dump_len == 0 || memcmp(whole.dump, chunked.dump, whole.dump_len) == 0);
	if (!whole.err) {
		CHECK(whole.heartbeats == chunked.heartbeats);
		CHECK(whole.consumed == chunked.consumed);
	}
	free(whole.dump);
	free(chunked.dump);
	return 0;
}
