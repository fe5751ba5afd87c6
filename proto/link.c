/*
 * proto/link.c - the node-link wire codec (proto/link.h; docs/cluster.md, "Node links").
 * Pure: no I/O, no allocation, no globals; any thread may call it on its own buffers.
 *
 * The frame and its body come from another node, which may be broken or hostile, so every
 * read goes through a cursor that refuses to pass the body's end, and every sum of two
 * peer-supplied u32s is done in 64 bits so that it cannot wrap back inside the buffer.
 * Decoders check that the frame has their type; link_frame_next does not look at it.
 */
#include "proto/link.h"

#include <assert.h>
#include <string.h>

/* link_frame_next returns 4 + a u32 length as a long. */
static_assert(sizeof(long) > sizeof(uint32_t), "long must hold 4 + UINT32_MAX");

#define LINK_LEN_BYTES 4	/* the u32 length prefix, without the type byte */
#define MESSAGE_FIELDS_LEN (LINK_MESSAGE_HDR - LINK_FRAME_HDR)

/* ---- reading a body ---- */

struct cursor {
	const uint8_t *p;	/* next unread byte */
	uint32_t left;		/* bytes of the body not read yet */
};

static struct cursor cursor_of(const struct link_frame *f)
{
	return (struct cursor){ f->body, f->body_len };
}

/* Points *out at the next n bytes and steps over them; false when fewer are left. */
static bool take(struct cursor *c, uint32_t n, const uint8_t **out)
{
	if (n > c->left)
		return false;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return true;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool take_u8(struct cursor *c, uint8_t *v)
{
	const uint8_t *p;

	if (!take(c, 1, &p))
		return false;
	*v = p[0];
	return true;
}

static bool take_u16(struct cursor *c, uint16_t *v)
{
	const uint8_t *p;

	if (!take(c, 2, &p))
		return false;
	*v = (uint16_t)(p[0] << 8 | p[1]);
	return true;
}

static bool take_u32(struct cursor *c, uint32_t *v)
{
	const uint8_t *p;

	if (!take(c, 4, &p))
		return false;
	*v = get_u32(p);
	return true;
}

/* A HELLO name: str16 of 1..LINK_NAME_MAX bytes. */
static bool take_name(struct cursor *c, const char **name, uint16_t *len)
{
	const uint8_t *p;

	if (!take_u16(c, len) || *len == 0 || *len > LINK_NAME_MAX || !take(c, *len, &p))
		return false;
	*name = (const char *)p;
	return true;
}

/* ---- writing a frame ---- */

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t n)
{
	if (n)	/* memcpy from NULL is undefined even for 0 bytes */
		memcpy(p, src, n);
	return p + n;
}

/* Whether a frame with a body of body_len bytes fits in cap bytes and in the u32 length
 * prefix. Both sums are 64-bit, so a body near UINT32_MAX is refused, not wrapped. */
static bool frame_fits(uint64_t body_len, size_t cap)
{
	return body_len + 1 <= UINT32_MAX && LINK_LEN_BYTES + 1 + body_len <= cap;
}

static uint8_t *put_frame_hdr(uint8_t *out, enum link_type type, uint64_t body_len)
{
	out = put_u32(out, (uint32_t)(body_len + 1));
	*out = (uint8_t)type;
	return out + 1;
}

/* ---- frames ---- */

long link_frame_next(const uint8_t *buf, size_t len, uint32_t max_body, struct link_frame *f)
{
	uint32_t frame_len;

	if (len < LINK_LEN_BYTES)
		return 0;
	frame_len = get_u32(buf);
	if (frame_len == 0)	/* not even a type byte */
		return LINK_ERR_MALFORMED;
	/* Judged on the prefix alone, so a peer cannot make us buffer a huge frame first. */
	if (frame_len - 1 > max_body)
		return LINK_ERR_TOO_BIG;
	if (len - LINK_LEN_BYTES < frame_len)
		return 0;
	f->type = buf[LINK_LEN_BYTES];
	f->body = buf + LINK_FRAME_HDR;
	f->body_len = frame_len - 1;
	return LINK_LEN_BYTES + (long)frame_len;
}

/* ---- HELLO ---- */

int link_decode_hello(const struct link_frame *f, struct link_hello *out)
{
	struct cursor c = cursor_of(f);

	if (f->type != LINK_HELLO || !take_u8(&c, &out->version))
		return LINK_ERR_MALFORMED;
	/* Before the rest: another version may lay its HELLO out differently, and the caller
	 * should say "wrong version", not "garbage". */
	if (out->version != LINK_VERSION)
		return LINK_ERR_VERSION;
	if (!take(&c, LINK_NONCE_LEN, &out->nonce) ||
	    !take_name(&c, &out->cluster, &out->cluster_len) ||
	    !take_name(&c, &out->node, &out->node_len) || c.left)
		return LINK_ERR_MALFORMED;
	return 0;
}

static bool is_name_len_ok(size_t len)
{
	return len >= 1 && len <= LINK_NAME_MAX;
}

size_t link_encode_hello(uint8_t *out, size_t cap, const uint8_t nonce[LINK_NONCE_LEN],
			 const char *cluster, size_t cluster_len, const char *node, size_t node_len)
{
	uint64_t body_len = 1 + LINK_NONCE_LEN + 2 + cluster_len + 2 + node_len;
	uint8_t *p;

	/* The names first: with them bounded, body_len above cannot have wrapped. */
	if (!is_name_len_ok(cluster_len) || !is_name_len_ok(node_len) ||
	    !frame_fits(body_len, cap))
		return 0;
	p = put_frame_hdr(out, LINK_HELLO, body_len);
	*p++ = LINK_VERSION;
	p = put_bytes(p, nonce, LINK_NONCE_LEN);
	p = put_u16(p, (uint16_t)cluster_len);
	p = put_bytes(p, cluster, cluster_len);
	p = put_u16(p, (uint16_t)node_len);
	p = put_bytes(p, node, node_len);
	return (size_t)(p - out);
}

/* ---- AUTH ---- */

int link_decode_auth(const struct link_frame *f, const uint8_t **mac)
{
	if (f->type != LINK_AUTH || f->body_len != LINK_MAC_LEN)
		return LINK_ERR_MALFORMED;
	*mac = f->body;
	return 0;
}

size_t link_encode_auth(uint8_t *out, size_t cap, const uint8_t mac[LINK_MAC_LEN])
{
	uint8_t *p;

	if (!frame_fits(LINK_MAC_LEN, cap))
		return 0;
	p = put_frame_hdr(out, LINK_AUTH, LINK_MAC_LEN);
	p = put_bytes(p, mac, LINK_MAC_LEN);
	return (size_t)(p - out);
}

/* ---- INTEREST ---- */

static bool is_interest_ok(uint8_t op, uint8_t kind)
{
	return (op == LINK_ADD || op == LINK_DEL) && (kind == LINK_TOPIC || kind == LINK_PATTERN);
}

int link_decode_interest(const struct link_frame *f, struct link_interest *out)
{
	struct cursor c = cursor_of(f);
	const uint8_t *name;

	if (f->type != LINK_INTEREST || !take_u8(&c, &out->op) || !take_u8(&c, &out->kind) ||
	    !is_interest_ok(out->op, out->kind) || !take_u32(&c, &out->seq) ||
	    !take_u32(&c, &out->name_len) || !take(&c, out->name_len, &name) || c.left)
		return LINK_ERR_MALFORMED;
	out->name = (const char *)name;
	return 0;
}

size_t link_encode_interest(uint8_t *out, size_t cap, const struct link_interest *in)
{
	uint64_t body_len = LINK_INTEREST_HDR - LINK_FRAME_HDR + (uint64_t)in->name_len;
	uint8_t *p;

	/* Never write what link_decode_interest would refuse. */
	if (!is_interest_ok(in->op, in->kind) || !frame_fits(body_len, cap))
		return 0;
	p = put_frame_hdr(out, LINK_INTEREST, body_len);
	*p++ = in->op;
	*p++ = in->kind;
	p = put_u32(p, in->seq);
	p = put_u32(p, in->name_len);
	p = put_bytes(p, in->name, in->name_len);
	return (size_t)(p - out);
}

/* ---- ACK ---- */

int link_decode_ack(const struct link_frame *f, uint32_t *seq)
{
	if (f->type != LINK_ACK || f->body_len != 4)
		return LINK_ERR_MALFORMED;
	*seq = get_u32(f->body);
	return 0;
}

size_t link_encode_ack(uint8_t *out, size_t cap, uint32_t seq)
{
	uint8_t *p;

	if (!frame_fits(4, cap))
		return 0;
	p = put_frame_hdr(out, LINK_ACK, 4);
	p = put_u32(p, seq);
	return (size_t)(p - out);
}

/* ---- BYE ---- */

int link_decode_bye(const struct link_frame *f)
{
	return f->type == LINK_BYE && f->body_len == 0 ? 0 : LINK_ERR_MALFORMED;
}

size_t link_encode_bye(uint8_t *out, size_t cap)
{
	if (!frame_fits(0, cap))
		return 0;
	return (size_t)(put_frame_hdr(out, LINK_BYE, 0) - out);
}

/* ---- MESSAGE ---- */

/* Whether [off, off + len) lies inside bytes[0..bytes_len); 64-bit, so no wrap. */
static bool is_inside(uint64_t off, uint64_t len, uint64_t bytes_len)
{
	return off + len <= bytes_len;
}

/* An optional per-version tail: absent (len 0, off not looked at) or inside bytes and
 * past the destination's NUL. */
static bool is_tail_ok(const struct link_message *m, uint32_t off, uint32_t len)
{
	return len == 0 || (off > m->dest_len && is_inside(off, len, m->bytes_len));
}

/* The rules of link.h, in the order a receiver relies on them: every view it will
 * hand to a reader lies inside bytes, and the destination is a C string. */
static bool is_message_ok(const struct link_message *m)
{
	if (m->dest_len >= m->bytes_len || m->bytes[m->dest_len] != 0)
		return false;
	if (m->tail_off <= m->dest_len || !is_inside(m->tail_off, m->tail_len, m->bytes_len))
		return false;
	/* the message id is kept on its own, between the destination and the tail */
	if (m->msgid_off <= m->dest_len || !is_inside(m->msgid_off, m->msgid_len, m->bytes_len))
		return false;
	return m->body_len <= m->tail_len && is_tail_ok(m, m->tail10_off, m->tail10_len) &&
	       is_tail_ok(m, m->tail11_off, m->tail11_len);
}

/* The MESSAGE fields and bytes (to the frame's end) at c; false when they do not parse. */
static bool take_message(struct cursor *c, struct link_message *out)
{
	if (!take_u16(c, &out->flags) ||
	    !take_u32(c, &out->dest_len) || !take_u32(c, &out->tail_off) ||
	    !take_u32(c, &out->tail_len) || !take_u32(c, &out->msgid_off) ||
	    !take_u32(c, &out->msgid_len) || !take_u32(c, &out->body_len) ||
	    !take_u32(c, &out->tail10_off) || !take_u32(c, &out->tail10_len) ||
	    !take_u32(c, &out->tail11_off) || !take_u32(c, &out->tail11_len))
		return false;
	/* bytes run to the frame's end, so there are no trailing bytes to refuse */
	out->bytes = c->p;
	out->bytes_len = c->left;
	return is_message_ok(out);
}

int link_decode_message(const struct link_frame *f, struct link_message *out)
{
	struct cursor c = cursor_of(f);

	if (f->type != LINK_MESSAGE || !take_message(&c, out))
		return LINK_ERR_MALFORMED;
	return 0;
}

static uint8_t *put_message_fields(uint8_t *p, const struct link_message *m)
{
	p = put_u16(p, m->flags);
	p = put_u32(p, m->dest_len);
	p = put_u32(p, m->tail_off);
	p = put_u32(p, m->tail_len);
	p = put_u32(p, m->msgid_off);
	p = put_u32(p, m->msgid_len);
	p = put_u32(p, m->body_len);
	p = put_u32(p, m->tail10_off);
	p = put_u32(p, m->tail10_len);
	p = put_u32(p, m->tail11_off);
	p = put_u32(p, m->tail11_len);
	return p;
}

size_t link_encode_message_head(uint8_t *out, size_t cap, const struct link_message *m)
{
	uint64_t body_len = MESSAGE_FIELDS_LEN + (uint64_t)m->bytes_len;
	uint8_t *p;

	/* bytes are not written here, but the length prefix must still count them */
	if (cap < LINK_MESSAGE_HDR || body_len + 1 > UINT32_MAX)
		return 0;
	p = put_frame_hdr(out, LINK_MESSAGE, body_len);
	p = put_message_fields(p, m);
	return (size_t)(p - out);
}

/* ---- QUEUE ---- */

#define QUEUE_FIELDS_LEN (1 + 2 + 4 + 4 + 8 + 8 + 8 + 4)	/* through the name's length */

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
	p = put_u32(p, (uint32_t)(v >> 32));
	return put_u32(p, (uint32_t)v);
}

static bool take_u64(struct cursor *c, uint64_t *v)
{
	uint32_t hi, lo;

	if (!take_u32(c, &hi) || !take_u32(c, &lo))
		return false;
	*v = (uint64_t)hi << 32 | lo;
	return true;
}

bool link_queue_op_has_message(uint8_t op)
{
	return op == LINK_Q_SEND || op == LINK_Q_DELIVER || op == LINK_Q_RETURN ||
	       op == LINK_Q_HANDOVER || op == LINK_Q_REPL_SEND;
}

static bool is_queue_op_ok(uint8_t op)
{
	return op >= LINK_Q_SEND && op <= LINK_Q_REPL;
}

int link_decode_queue(const struct link_frame *f, struct link_queue *out)
{
	struct cursor c = cursor_of(f);
	const uint8_t *name;

	if (f->type != LINK_QUEUE || !take_u8(&c, &out->op) || !is_queue_op_ok(out->op) ||
	    !take_u16(&c, &out->shard) || !take_u32(&c, &out->seq) || !take_u32(&c, &out->arg) ||
	    !take_u64(&c, &out->key) || !take_u64(&c, &out->conn) || !take_u64(&c, &out->tag) ||
	    !take_u32(&c, &out->name_len) || !take(&c, out->name_len, &name))
		return LINK_ERR_MALFORMED;
	out->name = (const char *)name;
	if (link_queue_op_has_message(out->op)) {
		/* the message names its queue itself */
		if (out->name_len || !take_message(&c, &out->msg))
			return LINK_ERR_MALFORMED;
		return 0;
	}
	memset(&out->msg, 0, sizeof(out->msg));
	return out->name_len && !c.left ? 0 : LINK_ERR_MALFORMED;
}

static uint8_t *put_queue_fields(uint8_t *p, const struct link_queue *q, uint32_t name_len)
{
	*p++ = q->op;
	p = put_u16(p, q->shard);
	p = put_u32(p, q->seq);
	p = put_u32(p, q->arg);
	p = put_u64(p, q->key);
	p = put_u64(p, q->conn);
	p = put_u64(p, q->tag);
	return put_u32(p, name_len);
}

size_t link_encode_queue(uint8_t *out, size_t cap, const struct link_queue *q)
{
	uint64_t body_len = QUEUE_FIELDS_LEN + (uint64_t)q->name_len;
	uint8_t *p;

	if (!is_queue_op_ok(q->op) || link_queue_op_has_message(q->op) || !q->name_len ||
	    !frame_fits(body_len, cap))
		return 0;
	p = put_frame_hdr(out, LINK_QUEUE, body_len);
	p = put_queue_fields(p, q, q->name_len);
	p = put_bytes(p, q->name, q->name_len);
	return (size_t)(p - out);
}

size_t link_encode_queue_head(uint8_t *out, size_t cap, const struct link_queue *q,
			      const struct link_message *m)
{
	uint64_t body_len = QUEUE_FIELDS_LEN + MESSAGE_FIELDS_LEN + (uint64_t)m->bytes_len;
	uint8_t *p;

	if (!link_queue_op_has_message(q->op) || cap < LINK_QUEUE_MESSAGE_HDR ||
	    body_len + 1 > UINT32_MAX)
		return 0;
	p = put_frame_hdr(out, LINK_QUEUE, body_len);
	p = put_queue_fields(p, q, 0);
	p = put_message_fields(p, m);
	return (size_t)(p - out);
}
