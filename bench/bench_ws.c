/*
 * bench/bench_ws.c - client-side WebSocket for herald-bench (RFC 6455 4.1, 4.2.2, 5.2).
 * The decoder keeps only a partial header (<= 10 bytes) and a control payload across
 * calls; data payload is moved forward in the caller's buffer, never copied elsewhere.
 */
#include "bench/bench_ws.h"

#include "proto/http_upgrade.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void bench_ws_make_key(char key[BENCH_WS_KEY_LEN + 1], uint64_t seed)
{
	uint8_t raw[18] = { 0 };	/* 16 bytes of key, padded to a multiple of 3 */
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	char *o = key;

	for (int i = 0; i < 16; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		raw[i] = (uint8_t)x;
	}
	for (int i = 0; i < 18; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];

		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = b64[v >> 6 & 63];
		*o++ = b64[v & 63];
	}
	/* 16 bytes encode to 22 characters and "==" */
	key[22] = '=';
	key[23] = '=';
	key[24] = 0;
}

ssize_t bench_ws_request(char *out, size_t cap, const char *host, unsigned port, const char *path,
			 const char *key)
{
	int n = snprintf(out, cap,
			 "GET %s HTTP/1.1\r\n"
			 "Host: %s:%u\r\n"
			 "Upgrade: websocket\r\n"
			 "Connection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n"
			 "Sec-WebSocket-Protocol: v12.stomp\r\n"
			 "\r\n",
			 path, host, port, key);

	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

/* Value of header `name` in head[0..len) (lines end in CRLF), or NULL. */
static const char *find_header(const char *head, size_t len, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *p = memchr(head, '\n', len);

	while (p && (size_t)(p - head) + 1 < len) {
		const char *line = p + 1;
		const char *end = memchr(line, '\n', len - (size_t)(line - head));

		if (!end)
			return NULL;
		if ((size_t)(end - line) > nlen && line[nlen] == ':' && !strncasecmp(line, name, nlen)) {
			const char *v = line + nlen + 1;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(end - v);
			while (*vlen && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' '))
				(*vlen)--;
			return v;
		}
		p = end;
	}
	return NULL;
}

ssize_t bench_ws_response(const char *buf, size_t len, const char *key, const char **why)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	size_t head_len;
	const char *v;
	size_t vlen;
	char want[29];

	if (!end)
		return len > 16384 ? (*why = "upgrade response head too long", -1) : 0;
	head_len = (size_t)(end - buf) + 4;
	if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12)) {
		*why = "server refused the WebSocket upgrade";
		return -1;
	}
	v = find_header(buf, head_len, "Sec-WebSocket-Accept", &vlen);
	if (!v || http_ws_accept_key(key, strlen(key), want) || vlen != 28 || memcmp(v, want, 28)) {
		*why = "bad Sec-WebSocket-Accept";
		return -1;
	}
	return (ssize_t)head_len;
}

void bench_wsdec_init(struct bench_wsdec *d)
{
	memset(d, 0, sizeof(*d));
}

/* Header bytes needed once the first two are known. */
static unsigned header_need(const uint8_t *h)
{
	unsigned l7 = h[1] & 0x7f;

	return l7 == 126 ? 4 : l7 == 127 ? 10 : 2;
}

static int header_done(struct bench_wsdec *d)
{
	const uint8_t *h = d->hdr;
	uint64_t plen = h[1] & 0x7f;

	if (h[1] & 0x80)
		return -1;	/* 5.1: a server must not mask */
	if (plen == 126) {
		plen = (uint64_t)h[2] << 8 | h[3];
	} else if (plen == 127) {
		plen = 0;
		for (int i = 2; i < 10; i++)
			plen = plen << 8 | h[i];
	}
	d->opcode = h[0] & 0x0f;
	if (d->opcode >= 0x8 && plen > sizeof(d->ctl))
		return -1;
	d->remaining = plen;
	d->in_payload = true;
	d->ctl_len = 0;
	return 0;
}

static void control_done(struct bench_wsdec *d, unsigned *events)
{
	if (d->opcode == 0x9)
		*events |= BENCH_WS_EV_PING;
	else if (d->opcode == 0x8)
		*events |= BENCH_WS_EV_CLOSE;
}

ssize_t bench_ws_strip(struct bench_wsdec *d, uint8_t *buf, size_t len, unsigned *events)
{
	size_t in = 0;
	size_t out = 0;

	while (in < len) {
		if (!d->in_payload) {
			d->hdr[d->hdr_len++] = buf[in++];
			if (d->hdr_len < 2 || d->hdr_len < header_need(d->hdr))
				continue;
			d->hdr_len = 0;
			if (header_done(d))
				return -1;
		}
		if (d->remaining) {
			size_t n = len - in < d->remaining ? len - in : (size_t)d->remaining;

			if (d->opcode >= 0x8) {
				memcpy(d->ctl + d->ctl_len, buf + in, n);
				d->ctl_len = (uint8_t)(d->ctl_len + n);
			} else {
				if (out != in)
					memmove(buf + out, buf + in, n);
				out += n;
			}
			in += n;
			d->remaining -= n;
		}
		if (!d->remaining) {
			d->in_payload = false;
			if (d->opcode >= 0x8)
				control_done(d, events);
		}
	}
	return (ssize_t)out;
}
