/*
 * cluster/wire.c - gossip packet encode/decode and HMAC (see wire.h for the layout).
 * Pure functions over caller memory; the decoder bounds-checks every field against the
 * message and packet ends and never reads past them.
 *
 * Message bodies (big-endian; str = u8 len + bytes; addr = u8 family 4|6, 4|16 bytes, u16
 * port; meta = u8 len + bytes). A body may carry trailing bytes a newer version added.
 *   PING      seq u32, node str, from str
 *   PING_REQ  seq u32, want_nack u8, node str, addr, from str
 *   ACK/NACK  seq u32
 *   ALIVE     inc u32, node str, addr, meta
 *   SUSPECT   inc u32, node str, from str          DEAD: the same
 *   LEFT      inc u32, node str
 *   PUSH_PULL join u8, count u32, from str
 *   STATE     inc u32, state u8, node str, addr, meta
 */
#include "cluster/wire.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define HDR_FIXED 5	/* magic(2) version flags cluster_len */

_Static_assert(WIRE_MAC_LEN == crypto_auth_hmacsha256_BYTES, "MAC length");
_Static_assert(WIRE_KEY_LEN == crypto_auth_hmacsha256_KEYBYTES, "key length");
_Static_assert(WIRE_NAME_MAX <= 255 && WIRE_META_MAX <= 255, "u8 length prefixes");

/* ---- encoding ---- */

struct out {
	uint8_t *p;
	uint8_t *end;
	bool overflow;
};

static void put_u8(struct out *o, uint8_t v)
{
	if (o->p >= o->end) {
		o->overflow = true;
		return;
	}
	*o->p++ = v;
}

static void put_u16(struct out *o, uint16_t v)
{
	put_u8(o, (uint8_t)(v >> 8));
	put_u8(o, (uint8_t)v);
}

static void put_u32(struct out *o, uint32_t v)
{
	put_u16(o, (uint16_t)(v >> 16));
	put_u16(o, (uint16_t)v);
}

static void put_bytes(struct out *o, const void *src, size_t len)
{
	if ((size_t)(o->end - o->p) < len) {
		o->overflow = true;
		return;
	}
	if (len)	/* an empty view may have a NULL pointer, which memcpy must not see */
		memcpy(o->p, src, len);
	o->p += len;
}

static void put_str(struct out *o, struct wire_str s, size_t max)
{
	if (s.len > max) {
		o->overflow = true;
		return;
	}
	put_u8(o, (uint8_t)s.len);
	put_bytes(o, s.ptr, s.len);
}

static void put_addr(struct out *o, const struct wire_addr *a)
{
	if (a->family != 4 && a->family != 6) {
		o->overflow = true;
		return;
	}
	put_u8(o, a->family);
	put_bytes(o, a->ip, a->family == 4 ? 4 : 16);
	put_u16(o, a->port);
}

static void put_body(struct out *o, const struct wire_msg *m)
{
	switch (m->type) {
	case WIRE_PING:
		put_u32(o, m->seq);
		put_str(o, m->node, WIRE_NAME_MAX);
		put_str(o, m->from, WIRE_NAME_MAX);
		break;
	case WIRE_PING_REQ:
		put_u32(o, m->seq);
		put_u8(o, m->flag);
		put_str(o, m->node, WIRE_NAME_MAX);
		put_addr(o, &m->addr);
		put_str(o, m->from, WIRE_NAME_MAX);
		break;
	case WIRE_ACK:
	case WIRE_NACK:
		put_u32(o, m->seq);
		break;
	case WIRE_ALIVE:
		put_u32(o, m->incarnation);
		put_str(o, m->node, WIRE_NAME_MAX);
		put_addr(o, &m->addr);
		put_str(o, m->meta, WIRE_META_MAX);
		break;
	case WIRE_SUSPECT:
	case WIRE_DEAD:
		put_u32(o, m->incarnation);
		put_str(o, m->node, WIRE_NAME_MAX);
		put_str(o, m->from, WIRE_NAME_MAX);
		break;
	case WIRE_LEFT:
		put_u32(o, m->incarnation);
		put_str(o, m->node, WIRE_NAME_MAX);
		break;
	case WIRE_PUSH_PULL:
		put_u8(o, m->flag);
		put_u32(o, m->count);
		put_str(o, m->from, WIRE_NAME_MAX);
		break;
	case WIRE_STATE:
		put_u32(o, m->incarnation);
		put_u8(o, m->state);
		put_str(o, m->node, WIRE_NAME_MAX);
		put_addr(o, &m->addr);
		put_str(o, m->meta, WIRE_META_MAX);
		break;
	default:
		o->overflow = true;
	}
}

size_t wire_encode_msg(const struct wire_msg *m, uint8_t *out, size_t cap)
{
	struct out o = { .p = out + WIRE_MSG_HDR, .end = out + cap };
	size_t body_len;

	if (cap < WIRE_MSG_HDR)
		return 0;
	put_body(&o, m);
	if (o.overflow)
		return 0;
	body_len = (size_t)(o.p - out) - WIRE_MSG_HDR;
	if (body_len > UINT16_MAX)
		return 0;
	out[0] = (uint8_t)m->type;
	out[1] = (uint8_t)(body_len >> 8);
	out[2] = (uint8_t)body_len;
	return body_len + WIRE_MSG_HDR;
}

int wire_begin(struct wire_writer *w, uint8_t *buf, size_t cap, const char *cluster, bool mac)
{
	size_t clen = strlen(cluster);

	if (clen > WIRE_CLUSTER_MAX || cap < HDR_FIXED + clen + (mac ? WIRE_MAC_LEN : 0))
		return -EMSGSIZE;
	w->buf = buf;
	w->cap = cap - (mac ? WIRE_MAC_LEN : 0);
	w->mac = mac;
	buf[0] = 'H';
	buf[1] = 'G';
	buf[2] = WIRE_VERSION;
	buf[3] = mac ? WIRE_F_MAC : 0;
	buf[4] = (uint8_t)clen;
	memcpy(buf + HDR_FIXED, cluster, clen);
	w->len = HDR_FIXED + clen;
	return 0;
}

int wire_put(struct wire_writer *w, const struct wire_msg *m)
{
	size_t n = wire_encode_msg(m, w->buf + w->len, w->cap - w->len);

	if (!n)
		return -EMSGSIZE;
	w->len += n;
	return 0;
}

int wire_put_raw(struct wire_writer *w, const uint8_t *msg, size_t len)
{
	if (len > w->cap - w->len)
		return -EMSGSIZE;
	memcpy(w->buf + w->len, msg, len);
	w->len += len;
	return 0;
}

size_t wire_room(const struct wire_writer *w)
{
	return w->cap - w->len;
}

size_t wire_finish(struct wire_writer *w, const uint8_t key[WIRE_KEY_LEN])
{
	if (w->mac) {
		HD_ASSERT(key);
		crypto_auth_hmacsha256(w->buf + w->len, w->buf, w->len, key);
		w->len += WIRE_MAC_LEN;
		w->cap += WIRE_MAC_LEN;
		w->mac = false;
	}
	return w->len;
}

/* ---- decoding ---- */

struct in {
	const uint8_t *p;
	const uint8_t *end;
	bool bad;
};

static uint8_t get_u8(struct in *i)
{
	if (i->p >= i->end) {
		i->bad = true;
		return 0;
	}
	return *i->p++;
}

static uint16_t get_u16(struct in *i)
{
	uint16_t hi = get_u8(i);

	return (uint16_t)(hi << 8 | get_u8(i));
}

static uint32_t get_u32(struct in *i)
{
	uint32_t hi = get_u16(i);

	return hi << 16 | get_u16(i);
}

static const uint8_t *get_bytes(struct in *i, size_t len)
{
	const uint8_t *p = i->p;

	if ((size_t)(i->end - i->p) < len) {
		i->bad = true;
		return NULL;
	}
	i->p += len;
	return p;
}

/* Names are printable ASCII without spaces: they end up in logs and JSON. */
static bool is_name(const uint8_t *p, size_t len)
{
	if (!len)
		return false;
	for (size_t k = 0; k < len; k++)
		if (p[k] < 0x21 || p[k] > 0x7e)
			return false;
	return true;
}

static struct wire_str get_name(struct in *i)
{
	size_t len = get_u8(i);
	const uint8_t *p = get_bytes(i, len);
	struct wire_str s = { .ptr = (const char *)p, .len = len };

	if (!p || len > WIRE_NAME_MAX || !is_name(p, len))
		i->bad = true;
	return s;
}

static struct wire_str get_meta(struct in *i)
{
	size_t len = get_u8(i);
	const uint8_t *p = get_bytes(i, len);
	struct wire_str s = { .ptr = (const char *)p, .len = len };

	if (len > WIRE_META_MAX)
		i->bad = true;
	return s;
}

static void get_addr(struct in *i, struct wire_addr *a)
{
	const uint8_t *ip;

	memset(a, 0, sizeof(*a));
	a->family = get_u8(i);
	if (a->family != 4 && a->family != 6) {
		i->bad = true;
		return;
	}
	ip = get_bytes(i, a->family == 4 ? 4 : 16);
	if (ip)
		memcpy(a->ip, ip, a->family == 4 ? 4 : 16);
	a->port = get_u16(i);
}

static void get_body(struct in *i, struct wire_msg *m)
{
	switch (m->type) {
	case WIRE_PING:
		m->seq = get_u32(i);
		m->node = get_name(i);
		m->from = get_name(i);
		break;
	case WIRE_PING_REQ:
		m->seq = get_u32(i);
		m->flag = get_u8(i) != 0;
		m->node = get_name(i);
		get_addr(i, &m->addr);
		m->from = get_name(i);
		break;
	case WIRE_ACK:
	case WIRE_NACK:
		m->seq = get_u32(i);
		break;
	case WIRE_ALIVE:
		m->incarnation = get_u32(i);
		m->node = get_name(i);
		get_addr(i, &m->addr);
		m->meta = get_meta(i);
		break;
	case WIRE_SUSPECT:
	case WIRE_DEAD:
		m->incarnation = get_u32(i);
		m->node = get_name(i);
		m->from = get_name(i);
		break;
	case WIRE_LEFT:
		m->incarnation = get_u32(i);
		m->node = get_name(i);
		break;
	case WIRE_PUSH_PULL:
		m->flag = get_u8(i) != 0;
		m->count = get_u32(i);
		m->from = get_name(i);
		break;
	case WIRE_STATE:
		m->incarnation = get_u32(i);
		m->state = get_u8(i);
		if (m->state > WIRE_ST_LEFT)
			i->bad = true;
		m->node = get_name(i);
		get_addr(i, &m->addr);
		m->meta = get_meta(i);
		break;
	default:
		HD_ASSERT(0);	/* wire_next filters unknown types */
	}
}

static bool is_known_type(unsigned t)
{
	return t >= WIRE_PING && t <= WIRE_STATE;
}

int wire_next(const uint8_t **pos, const uint8_t *end, struct wire_msg *out)
{
	while (*pos < end) {
		struct in hdr = { .p = *pos, .end = end };
		uint8_t type = get_u8(&hdr);
		uint16_t len = get_u16(&hdr);
		struct in body;

		if (hdr.bad || (size_t)(end - hdr.p) < len)
			return -WIRE_E_MSG;
		*pos = hdr.p + len;
		if (!is_known_type(type))
			continue;	/* a newer peer's message: skip it */
		memset(out, 0, sizeof(*out));
		out->type = (enum wire_type)type;
		body = (struct in){ .p = hdr.p, .end = hdr.p + len };
		get_body(&body, out);
		return body.bad ? -WIRE_E_MSG : 1;
	}
	return 0;
}

int wire_open(const uint8_t *buf, size_t len, const char *cluster, const uint8_t *key,
	      const uint8_t **body, size_t *body_len)
{
	size_t clen;
	size_t start;
	bool has_mac;

	if (len < HDR_FIXED)
		return -WIRE_E_SHORT;
	if (buf[0] != 'H' || buf[1] != 'G')
		return -WIRE_E_MAGIC;
	if (buf[2] != WIRE_VERSION)
		return -WIRE_E_VERSION;
	clen = buf[4];
	start = HDR_FIXED + clen;
	has_mac = buf[3] & WIRE_F_MAC;
	if (len < start + (has_mac ? WIRE_MAC_LEN : 0))
		return -WIRE_E_SHORT;
	if (clen != strlen(cluster) || memcmp(buf + HDR_FIXED, cluster, clen))
		return -WIRE_E_CLUSTER;
	if (has_mac != (key != NULL))
		return -WIRE_E_MAC;
	if (has_mac) {
		len -= WIRE_MAC_LEN;
		if (crypto_auth_hmacsha256_verify(buf + len, buf, len, key))
			return -WIRE_E_MAC;
	}
	*body = buf + start;
	*body_len = len - start;
	return 0;
}

const char *wire_strerror(int err)
{
	static const char *const names[] = {
		[WIRE_E_SHORT] = "short packet",
		[WIRE_E_MAGIC] = "bad magic",
		[WIRE_E_VERSION] = "unknown version",
		[WIRE_E_CLUSTER] = "other cluster",
		[WIRE_E_MAC] = "bad mac",
		[WIRE_E_MSG] = "malformed message",
	};

	if (err < 0)
		err = -err;
	if (err <= 0 || err >= (int)HD_ARRAY_LEN(names) || !names[err])
		return "unknown error";
	return names[err];
}

char *wire_addr_format(const struct wire_addr *a, char *out, size_t cap)
{
	if (a->family == 4) {
		snprintf(out, cap, "%u.%u.%u.%u:%u", a->ip[0], a->ip[1], a->ip[2], a->ip[3],
			 a->port);
	} else if (a->family == 6) {
		char hex[40];
		size_t n = 0;

		for (int k = 0; k < 16; k += 2)
			n += (size_t)snprintf(hex + n, sizeof(hex) - n, "%s%x", k ? ":" : "",
					      a->ip[k] << 8 | a->ip[k + 1]);
		snprintf(out, cap, "[%s]:%u", hex, a->port);
	} else {
		snprintf(out, cap, "-");
	}
	return out;
}

bool wire_addr_eq(const struct wire_addr *a, const struct wire_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	       !memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16);
}

bool wire_str_eq(struct wire_str s, const char *cstr)
{
	return strlen(cstr) == s.len && !memcmp(s.ptr, cstr, s.len);
}
