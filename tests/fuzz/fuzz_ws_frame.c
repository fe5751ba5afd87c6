/*
 * tests/fuzz/fuzz_ws_frame.c - libFuzzer target for proto/ws_frame.c (RFC 6455 decoder).
 *
 * Input: byte 0 picks the message size limit, byte 1 seeds the read sizes, the rest is
 * what a client sent. The stream is decoded twice, once whole and once in reads of
 * pseudo-random sizes, each read in its own heap block so ASan sees any over-read, and
 * the two transcripts must agree (a 1007 may let a longer valid prefix out when split).
 * Checked on every event: spans lie inside the read, NONE means all consumed, control
 * payloads fit 125 bytes, a message never exceeds the limit, a finished text message is
 * UTF-8, and the close/pong a server would send back encodes. The raw input also goes
 * through proto/utf8.c, whole and split, against a naive decoder of RFC 3629.
 */
#include "proto/ws_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t limits[8] = { 0, 1, 16, 125, 126, 1000, 65536, 1 << 20 };

struct run {
	uint8_t *out;		/* transcript: data bytes, then markers for each event */
	size_t len;
	size_t cap;
	int err;
	uint64_t msg_len;	/* payload bytes of the open message */
	struct utf8_stream msg_utf8;
};

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_ws_frame: %s\n", what);
		abort();
	}
}

static void out_add(struct run *r, const void *p, size_t n)
{
	check(r->len + n <= r->cap, "transcript overflow");
	if (n)
		memcpy(r->out + r->len, p, n);
	r->len += n;
}

static void on_data(struct run *r, const struct ws_event *ev, uint64_t limit)
{
	check(ev->len > 0 || ev->is_final, "empty non-final span");
	r->msg_len += ev->len;
	check(!limit || r->msg_len <= limit, "message over the limit delivered");
	if (ev->is_text)
		utf8_stream_feed(&r->msg_utf8, ev->data, ev->len);
	out_add(r, ev->data, ev->len);
	if (!ev->is_final)
		return;
	check(!ev->is_text || utf8_stream_status(&r->msg_utf8) == UTF8_COMPLETE,
	      "finished text message is not UTF-8");
	out_add(r, ev->is_text ? "\xffT" : "\xff" "B", 2);
	r->msg_len = 0;
	utf8_stream_init(&r->msg_utf8);
}

static void on_control(struct run *r, const struct ws_event *ev)
{
	uint8_t reply[2 + WS_CONTROL_MAX];
	uint8_t tag[4] = { 0xfe, (uint8_t)ev->kind, (uint8_t)(ev->close_code >> 8),
			   (uint8_t)ev->close_code };

	check(ev->len <= WS_CONTROL_MAX, "control payload over 125");
	if (ev->kind == WS_EV_PING)
		check(ws_encode_pong(reply, sizeof(reply), ev->data, ev->len) ==
			      (ssize_t)(2 + ev->len), "pong does not encode");
	if (ev->kind == WS_EV_CLOSE) {
		uint16_t code = ev->close_code == WS_CLOSE_NO_STATUS ? 0 : ev->close_code;

		check(utf8_is_valid(ev->data, ev->len), "close reason not UTF-8");
		check(ws_encode_close(reply, sizeof(reply), code, (const char *)ev->data,
				      ev->len) > 0, "close echo does not encode");
	}
	out_add(r, tag, sizeof(tag));
	out_add(r, ev->data, ev->len);
}

/* One read: decode buf[0..len) completely, as the server's receive loop does. */
static void feed(struct ws_decoder *d, uint8_t *buf, size_t len, struct run *r,
		 uint64_t limit)
{
	size_t off = 0;

	while (off < len && !r->err) {
		struct ws_event ev;
		ssize_t n = ws_decode(d, buf + off, len - off, &ev);

		if (n < 0) {
			r->err = (int)n;
			check(d->close_code == ws_close_code_of(r->err), "close code mismatch");
			return;
		}
		check((size_t)n <= len - off, "consumed more than given");
		off += (size_t)n;
		if (ev.kind == WS_EV_NONE) {
			check(off == len, "NONE before the end of the read");
			continue;
		}
		if (ev.kind == WS_EV_DATA) {
			check(ev.data >= buf && ev.data + ev.len <= buf + len, "span outside read");
			on_data(r, &ev, limit);
		} else {
			on_control(r, &ev);
		}
	}
}

/* RFC 3629 section 4 decoded the slow way: what the DFA must agree with. */
static bool naive_utf8(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		uint32_t min;
		size_t n;

		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0)
			n = 1, cp = p[i] & 0x1f, min = 0x80;
		else if ((p[i] & 0xf0) == 0xe0)
			n = 2, cp = p[i] & 0x0f, min = 0x800;
		else if ((p[i] & 0xf8) == 0xf0)
			n = 3, cp = p[i] & 0x07, min = 0x10000;
		else
			return false;
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

static void check_utf8(const uint8_t *p, size_t len, uint32_t seed)
{
	bool valid = utf8_is_valid(p, len);
	struct utf8_stream s;
	size_t cut = len ? seed % (len + 1) : 0;

	check(valid == naive_utf8(p, len), "utf8_is_valid disagrees with RFC 3629");
	utf8_stream_init(&s);
	utf8_stream_feed(&s, p, cut);
	check((utf8_stream_feed(&s, p + cut, len - cut) == UTF8_COMPLETE) == valid,
	      "utf8 stream disagrees with utf8_is_valid");
}

static void run_init(struct run *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	r->out = malloc(cap ? cap : 1);
	utf8_stream_init(&r->msg_utf8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ws_decoder d;
	struct run whole;
	struct run split;
	uint64_t limit;
	uint32_t seed;
	size_t len;
	size_t off;
	uint8_t *buf;

	if (size < 2)
		return 0;
	limit = limits[data[0] & 7];
	seed = data[1] * 2654435761u + 1;
	data += 2;
	len = size - 2;
	check_utf8(data, len, seed);
	/* each event adds at most 4 marker bytes and each frame takes >= 2 input bytes */
	run_init(&whole, 3 * len + 16);
	run_init(&split, 3 * len + 16);

	buf = malloc(len ? len : 1);
	memcpy(buf, data, len);
	ws_decoder_init(&d, limit);
	feed(&d, buf, len, &whole, limit);
	free(buf);

	ws_decoder_init(&d, limit);
	for (off = 0; off < len && !split.err;) {
		size_t piece;

		seed = seed * 1103515245u + 12345u;
		piece = 1 + (seed >> 16) % ((seed & 0x100) ? 3 : 40);
		if (piece > len - off)
			piece = len - off;
		buf = malloc(piece);
		memcpy(buf, data + off, piece);
		feed(&d, buf, piece, &split, limit);
		free(buf);
		off += piece;
	}

	check(whole.err == split.err, "split changes the error");
	if (whole.err == WS_E_BAD_UTF8) {
		check(whole.len <= split.len && !memcmp(whole.out, split.out, whole.len),
		      "split changes what came before a 1007");
	} else {
		check(whole.len == split.len && !memcmp(whole.out, split.out, whole.len),
		      "split changes the events");
	}
	free(whole.out);
	free(split.out);
	return 0;
}
