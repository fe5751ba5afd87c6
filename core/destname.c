/*
 * core/destname.c - destination names and keys (see destname.h).
 *
 * Thread: the calling shard.
 */
#include "core/destname.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"
#include "core/receipt.h"
#include "core/session_state.h"
#include "core/shard.h"
#include "core/topic_match.h"
#include "core/xmsg.h"
#include "proto/utf8.h"

#include <stdio.h>
#include <string.h>

static bool has_prefix(struct stomp_view v, const char *prefix, size_t plen)
{
	return v.len > plen && !memcmp(v.ptr, prefix, plen);
}

bool destname_is_queue(struct stomp_view v)
{
	return has_prefix(v, DESTNAME_QUEUE, DESTNAME_QUEUE_LEN);
}

bool destname_key_is_queue(const char *key, size_t len)
{
	return has_prefix((struct stomp_view){ key, len }, DESTNAME_QUEUE, DESTNAME_QUEUE_LEN);
}

bool destname_is_topic(struct stomp_view v)
{
	return has_prefix(v, DESTNAME_TOPIC, DESTNAME_TOPIC_LEN);
}

/* Validates a destination header; on failure sends ERROR and returns false. */
bool destname_check(struct shard *sh, struct session *s, const struct stomp_frame *f,
		       const struct stomp_view *d)
{
	char detail[512];

	if (!d) {
		session_fail_frame(sh, s, f, "missing destination header",
			   "This frame requires a 'destination' header");
		return false;
	}
	if (memchr(d->ptr, TOPIC_SCOPE_SEP, d->len)) {
		session_fail_frame(sh, s, f, "invalid destination", "Destination names may not hold control bytes");
		return false;
	}
	if (!destname_is_queue(*d) && !destname_is_topic(*d)) {
		snprintf(detail, sizeof(detail),
			 "Unknown destination '%.*s'. Valid destinations are /queue/<name> and "
			 "/topic/<name>",
			 (int)utf8_trim_partial(d->ptr, HD_MIN(d->len, 256)), d->ptr);
		session_fail_frame(sh, s, f, "unknown destination", detail);
		return false;
	}
	if (d->len > sh->cfg->limits.max_destination_bytes) {
		/* topic patterns are matched word by word against every published name: long
		 * names with thousands of words would let one SEND stall every shard */
		snprintf(detail, sizeof(detail),
			 "Destination names may be at most %u bytes long (max-destination-bytes)",
			 sh->cfg->limits.max_destination_bytes);
		session_fail_frame(sh, s, f, "destination too long", detail);
		return false;
	}
	return true;
}

/* The internal key of a destination: the name itself in the default virtual host,
 * "<name>\x1f<vhost>" in any other, so each vhost is its own namespace. Valid until the
 * next call on this shard. */
struct stomp_view destname_key(struct shard *sh, const struct session *s, struct stomp_view d)
{
	size_t vlen;

	if (s->vhost[0] == '/' && !s->vhost[1])
		return d;
	vlen = strlen(s->vhost);
	if (d.len + 1 + vlen > sh->sessions.key_cap) {
		sh->sessions.key_cap = d.len + 1 + vlen;
		sh->sessions.key_buf = hd_realloc(sh->sessions.key_buf, sh->sessions.key_cap);
	}
	memcpy(sh->sessions.key_buf, d.ptr, d.len);
	sh->sessions.key_buf[d.len] = TOPIC_SCOPE_SEP;
	memcpy(sh->sessions.key_buf + d.len + 1, s->vhost, vlen);
	return (struct stomp_view){ sh->sessions.key_buf, d.len + 1 + vlen };
}

struct xname *xname_create(const char *name, size_t len)
{
	struct xname *n = hd_alloc(sizeof(*n) + len + 1);

	n->len = (uint32_t)len;
	memcpy(n->name, name, len);
	n->name[len] = '\0';
	return n;
}
