/*
 * bench/proto_bench.c - micro-benchmark of the STOMP frame library on one core: parse
 * throughput (MB/s, frames/s) for typical ~200-byte SEND frames, and MESSAGE encoding
 * (shared tail once per message, head once per subscriber). A program, not a test:
 *
 *	proto-bench [seconds per case, default 1.5]
 *
 * Each parse case fills a 256 KiB buffer with back-to-back frames (a large socket read)
 * and parses it again and again, the way a shard drains a receive buffer.
 */
#include "core/base/hd_time.h"
#include "proto/stomp_encode.h"
#include "proto/stomp_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_BYTES (256u << 10)

static double seconds_per_case = 1.5;
static volatile size_t sink;	/* keeps the work observable */

/* A JSON-ish body padded to `len` bytes. */
static void make_body(char *body, size_t len)
{
	static const char json[] = "{\"order\":12345,\"sku\":\"AB-778\",\"qty\":3,\"note\":\"";

	memset(body, 'x', len);
	memcpy(body, json, len < sizeof(json) - 1 ? len : sizeof(json) - 1);
	body[len - 2] = '"';
	body[len - 1] = '}';
}

/* Fills buf with copies of one SEND frame of about 200 bytes; returns bytes used. */
static size_t fill_send_frames(char *buf, size_t cap, bool with_length, size_t *frame_len,
			       size_t *nframes)
{
	struct stomp_header h[] = {
		{ { "destination", 11 }, { "/queue/orders.eu-west-1", 23 } },
		{ { "content-type", 12 }, { "application/json", 16 } },
		{ { "receipt", 7 }, { "r-000123", 8 } },
	};
	char body[116];
	char frame[512];
	ssize_t n;
	size_t used = 0;

	make_body(body, sizeof(body));
	n = stomp_encode_frame(frame, sizeof(frame), STOMP_V12, STOMP_CMD_SEND, h, 3, body,
			       sizeof(body), with_length);
	if (n <= 0)
		abort();
	while (used + (size_t)n <= cap) {
		memcpy(buf + used, frame, (size_t)n);
		used += (size_t)n;
	}
	*frame_len = (size_t)n;
	*nframes = used / (size_t)n;
	return used;
}

static void bench_parse(const char *name, bool with_length)
{
	static char scratch[4096];
	static struct stomp_frame f;
	struct stomp_parser p;
	char *buf = malloc(BUF_BYTES);
	size_t frame_len;
	size_t nframes;
	size_t len = fill_send_frames(buf, BUF_BYTES, with_length, &frame_len, &nframes);
	uint64_t start = hd_now_ns();
	uint64_t deadline = start + (uint64_t)(seconds_per_case * 1e9);
	uint64_t elapsed;
	size_t passes = 0;
	size_t frames = 0;

	stomp_parser_init(&p, NULL, scratch, sizeof(scratch));
	do {
		for (size_t off = 0; off < len;) {
			ssize_t r = stomp_parse(&p, buf + off, len - off, &f);

			if (r <= 0)
				abort();
			sink += f.body.len + f.nheaders;
			off += (size_t)r;
			frames++;
		}
		passes++;
	} while (hd_now_ns() < deadline);
	elapsed = hd_now_ns() - start;
	printf("parse  %-34s %4zu B/frame  %8.1f MB/s  %6.2f M frames/s\n", name, frame_len,
	       (double)passes * (double)len / (double)elapsed * 1e3,
	       (double)frames / (double)elapsed * 1e3);
	free(buf);
}

/* One message to `subs` subscribers: the tail once, a head per subscriber. */
static void bench_encode(size_t subs)
{
	static char tail[1024];
	static char head[256];
	struct stomp_header pub[] = {
		{ { "content-type", 12 }, { "application/json", 16 } },
		{ { "x-trace", 7 }, { "7f3a-22c1", 9 } },
	};
	struct stomp_view dest = { "/topic/prices.eu.equities", 25 };
	char body[116];
	char sub_id[16];
	char msg_id[24];
	uint64_t start;
	uint64_t deadline;
	uint64_t elapsed;
	size_t msgs = 0;
	size_t bytes = 0;

	make_body(body, sizeof(body));
	memcpy(msg_id, "node1-0000000000042", 19);
	memcpy(sub_id, "sub-0000", 8);
	start = hd_now_ns();
	deadline = start + (uint64_t)(seconds_per_case * 1e9);
	do {
		for (int batch = 0; batch < 1024; batch++) {
			ssize_t tn = stomp_encode_message_tail(tail, sizeof(tail), STOMP_V12, dest,
							       pub, 2, body, sizeof(body));

			bytes += (size_t)tn;
			msg_id[18] = (char)('0' + msgs % 10);
			for (size_t s = 0; s < subs; s++) {
				ssize_t hn;

				sub_id[7] = (char)('0' + s % 10);
				hn = stomp_encode_message_head(
					head, sizeof(head), STOMP_V12,
					(struct stomp_view){ sub_id, 8 },
					(struct stomp_view){ msg_id, 19 },
					(struct stomp_view){ msg_id, 19 }, false);
				bytes += (size_t)hn;
				sink += (size_t)hn + (size_t)head[hn - 2];
			}
			msgs++;
		}
	} while (hd_now_ns() < deadline);
	elapsed = hd_now_ns() - start;
	printf("encode MESSAGE tail + %3zu head%-15s %8.1f MB/s  %6.2f M msgs/s  %6.2f M heads/s\n",
	       subs, subs == 1 ? "" : "s", (double)bytes / (double)elapsed * 1e3,
	       (double)msgs / (double)elapsed * 1e3,
	       (double)(msgs * subs) / (double)elapsed * 1e3);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		seconds_per_case = atof(argv[1]);
	if (seconds_per_case <= 0)
		seconds_per_case = 1.5;
	bench_parse("SEND, content-length, 3 headers", true);
	bench_parse("SEND, NUL-terminated, 3 headers", false);
	bench_encode(1);
	bench_encode(100);
	return 0;
}
