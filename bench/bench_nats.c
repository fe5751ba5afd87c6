/*
 * bench/bench_nats.c - NATS client protocol for herald-bench (see bench_nats.h). Every
 * operation is one CRLF-ended line; MSG is followed by its payload and another CRLF. The
 * server sends upper case, so the parser does not fold case.
 */
#include "bench/bench_nats.h"

#include <stdio.h>
#include <string.h>

static int line_is(const char *line, size_t len, const char *op)
{
	size_t n = strlen(op);

	return len >= n && !memcmp(line, op, n);
}

/* The last space-separated token of line[0..len) as a byte count, or -1. */
static ssize_t trailing_count(const char *line, size_t len)
{
	size_t end = len;
	size_t start;
	size_t v = 0;

	while (end && line[end - 1] == ' ')
		end--;
	start = end;
	while (start && line[start - 1] >= '0' && line[start - 1] <= '9')
		start--;
	if (start == end || end - start > 9 || !start || line[start - 1] != ' ')
		return -1;
	for (size_t i = start; i < end; i++)
		v = v * 10 + (size_t)(line[i] - '0');
	return (ssize_t)v;
}

ssize_t bench_nats_parse(const char *buf, size_t len, struct bench_nats_msg *out, const char **why)
{
	const char *nl = memchr(buf, '\n', len);
	size_t line_len;
	size_t used;
	ssize_t n;

	if (!nl)
		return 0;
	used = (size_t)(nl - buf) + 1;
	line_len = used - 1 - (nl > buf && nl[-1] == '\r');
	out->payload = NULL;
	out->payload_len = 0;
	out->arg = NULL;
	out->arg_len = 0;
	if (line_is(buf, line_len, "MSG ")) {
		n = trailing_count(buf, line_len);
		if (n < 0) {
			*why = "NATS: bad MSG line";
			return -1;
		}
		if (len < used + (size_t)n + 2)
			return 0;
		if (buf[used + (size_t)n] != '\r' || buf[used + (size_t)n + 1] != '\n') {
			*why = "NATS: MSG payload not followed by CRLF";
			return -1;
		}
		out->op = BENCH_NATS_MSG;
		out->payload = buf + used;
		out->payload_len = (size_t)n;
		return (ssize_t)(used + (size_t)n + 2);
	}
	if (line_is(buf, line_len, "PING")) {
		out->op = BENCH_NATS_PING;
	} else if (line_is(buf, line_len, "PONG")) {
		out->op = BENCH_NATS_PONG;
	} else if (line_is(buf, line_len, "+OK")) {
		out->op = BENCH_NATS_OK;
	} else if (line_is(buf, line_len, "INFO")) {
		out->op = BENCH_NATS_INFO;
	} else if (line_is(buf, line_len, "-ERR")) {
		out->op = BENCH_NATS_ERR;
		out->arg = buf + 4 + (line_len > 4);
		out->arg_len = line_len > 5 ? line_len - 5 : 0;
	} else {
		*why = "NATS: unknown operation from the server";
		return -1;
	}
	return (ssize_t)used;
}

static ssize_t fits(int n, size_t cap)
{
	return n < 0 || (size_t)n >= cap ? -1 : (ssize_t)n;
}

ssize_t bench_nats_connect(char *out, size_t cap)
{
	static const char connect[] =
		"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"herald-bench\","
		"\"lang\":\"c\",\"version\":\"1\"}\r\n" BENCH_NATS_PING_CMD;

	return fits(snprintf(out, cap, "%s", connect), cap);
}

ssize_t bench_nats_sub(char *out, size_t cap, const char *subject, uint32_t sid)
{
	return fits(snprintf(out, cap, "SUB %s %u\r\n" BENCH_NATS_PING_CMD, subject, sid), cap);
}

ssize_t bench_nats_pub_line(char *out, size_t cap, const char *subject, size_t body_len)
{
	return fits(snprintf(out, cap, "PUB %s %zu\r\n", subject, body_len), cap);
}
