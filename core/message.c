/*
 * core/message.c - a message built once for all its subscribers (see message.h).
 *
 * Thread: the caller's.
 */
#include "core/message.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"
#include "core/base/hd_fmt.h"
#include "core/base/hd_log.h"
#include "core/hmsg.h"
#include "core/strmap.h"
#include "proto/stomp_encode.h"
#include "proto/utf8.h"

#include <string.h>

#define VIEW_LIT(s) { s, sizeof(s) - 1 }

/* Headers the server sets on MESSAGE (or that only mean something on SEND). */
static bool header_is_servers(struct stomp_view name)
{
	static const struct stomp_view owned[] = {
		VIEW_LIT("destination"), VIEW_LIT("receipt"), VIEW_LIT("transaction"),
		VIEW_LIT("content-length"), VIEW_LIT("message-id"), VIEW_LIT("subscription"),
		VIEW_LIT("ack"), VIEW_LIT("redelivered"),
	};

	for (size_t i = 0; i < HD_ARRAY_LEN(owned); i++)
		if (name.len == owned[i].len && !memcmp(name.ptr, owned[i].ptr, name.len))
			return true;
	return false;
}

/* The headers a MESSAGE keeps, deduplicated by name (the first occurrence wins). A frame may
 * carry up to STOMP_HEADERS_CAP headers, so names are found through a small hash table, not
 * by comparing each with every other (a million comparisons of long names per frame). */
struct header_set {
	struct stomp_header keep[STOMP_HEADERS_CAP];
	uint16_t slots[2 * STOMP_HEADERS_CAP];	/* index + 1 into keep; 0 = empty */
	size_t n;
};

struct header_set *message_header_set_create(void)
{
	return hd_alloc(sizeof(struct header_set));
}

#define HEADER_SET_LINEAR 16	/* up to this many headers, comparing is cheaper than hashing */

static void header_set_reset(struct header_set *hs, size_t nheaders)
{
	hs->n = 0;
	if (nheaders > HEADER_SET_LINEAR)
		memset(hs->slots, 0, sizeof(hs->slots));
}

static bool header_set_add(struct header_set *hs, const struct stomp_header *h, size_t nheaders)
{
	const size_t mask = HD_ARRAY_LEN(hs->slots) - 1;
	size_t i;

	if (nheaders <= HEADER_SET_LINEAR) {
		for (i = 0; i < hs->n; i++)
			if (stomp_view_eq(hs->keep[i].name, h->name.ptr, h->name.len))
				return false;
		hs->keep[hs->n++] = *h;
		return true;
	}
	for (i = hd_hash(h->name.ptr, h->name.len) & mask; hs->slots[i]; i = (i + 1) & mask) {
		const struct stomp_view *seen = &hs->keep[hs->slots[i] - 1].name;

		if (stomp_view_eq(*seen, h->name.ptr, h->name.len))
			return false;
	}
	hs->keep[hs->n] = *h;
	hs->slots[i] = (uint16_t)++hs->n;
	return true;
}

size_t message_id_format(char *out, uint32_t node_epoch, uint32_t shard, uint64_t seq)
{
	size_t n = hd_fmt_hex32(out, node_epoch);

	out[n++] = '-';
	n += hd_fmt_u64(out + n, shard);
	out[n++] = '-';
	n += hd_fmt_u64(out + n, seq);
	out[n] = '\0';
	return n;
}

struct hmsg *message_build(struct header_set *hs, const struct message_parts *p)
{
	struct stomp_view dest = p->dest;
	size_t cap = dest.len * 2 + p->body.len + 64;
	struct hmsg *m;
	ssize_t n;

	bool escaped = false;
	bool raw_ok = true;
	/* a CR has an escape only in 1.2; 1.1 carries it raw (its lines end at LF alone) */
	bool has_cr = memchr(dest.ptr, '\r', dest.len) != NULL;
	size_t total;
	size_t used;

	header_set_reset(hs, p->nheaders);
	for (size_t i = 0; i < p->nheaders; i++) {
		struct stomp_header rewritten;
		const struct stomp_header *h = &p->headers[i];

		if (p->reply_to.ptr && STOMP_VIEW_EQ_LIT(h->name, "reply-to")) {
			/* only the first one: later ones are dropped as repeats anyway */
			rewritten = (struct stomp_header){ h->name, p->reply_to };
			h = &rewritten;
		}

		if (header_is_servers(h->name) || !header_set_add(hs, h, p->nheaders))
			continue;	/* a repeated header: the first one wins */
		cap += 2 * (h->name.len + h->value.len) + 2;
		if (stomp_needs_escape(h->name.ptr, h->name.len) ||
		    stomp_needs_escape(h->value.ptr, h->value.len)) {
			/* a CR needs an escape, so it is looked for only here, off the common path */
			bool cr = memchr(h->value.ptr, '\r', h->value.len) ||
				  memchr(h->name.ptr, '\r', h->name.len);

			escaped = true;
			has_cr = has_cr || cr;
			raw_ok = raw_ok && !cr && !memchr(h->value.ptr, '\n', h->value.len) &&
				 !memchr(h->name.ptr, ':', h->name.len) &&
				 !memchr(h->name.ptr, '\n', h->name.len);
		}
	}
	/* room for the 1.0 and the 1.1 tails beside the shared one, when they differ */
	total = cap * (1 + (escaped && raw_ok) + has_cr);
	m = hmsg_create(p->home_shard, p->key.ptr, p->key.len, p->msg_id.len + 1 + total);
	m->msgid_off = m->tail_off;
	m->msgid_len = (uint32_t)p->msg_id.len;
	memcpy(m->bytes + m->msgid_off, p->msg_id.ptr, p->msg_id.len);
	m->bytes[m->msgid_off + p->msg_id.len] = '\0';
	m->tail_off = m->msgid_off + m->msgid_len + 1;
	n = stomp_encode_message_tail(hmsg_tail_mut(m), total, STOMP_V12, dest, hs->keep, hs->n,
				      p->body.ptr, p->body.len);
	HD_ASSERT(n > 0);
	m->tail_len = (uint32_t)n;
	used = m->tail_len;
	if (escaped && raw_ok) {
		/* 1.0 readers get the values as sent, unescaped (spec 1.0 has no escaping) */
		m->tail10_off = m->tail_off + (uint32_t)used;
		n = stomp_encode_message_tail(m->bytes + m->tail10_off, total - used, STOMP_V10,
					      dest, hs->keep, hs->n, p->body.ptr, p->body.len);
		HD_ASSERT(n > 0);
		m->tail10_len = (uint32_t)n;
		used += m->tail10_len;
	}
	if (has_cr) {
		m->tail11_off = m->tail_off + (uint32_t)used;
		n = stomp_encode_message_tail(m->bytes + m->tail11_off, total - used, STOMP_V11,
					      dest, hs->keep, hs->n, p->body.ptr, p->body.len);
		HD_ASSERT(n > 0);
		m->tail11_len = (uint32_t)n;
	}
	m->body_len = (uint32_t)p->body.len;
	/* the whole tail, not just the body: a header value with bytes that are not UTF-8 in a
	 * text frame makes a browser close the socket (1007) just as a body would */
	if (!utf8_is_valid(hmsg_tail(m), m->tail_len))
		m->flags |= HMSG_NOT_UTF8;
	return m;
}
