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

static bool starts_with(struct stomp_view v, const char *prefix, size_t plen)
{
	return v.len >= plen && !memcmp(v.ptr, prefix, plen);
}

/* A queue name X in /queue/X, /amq/queue/X or /reply-queue/X: RabbitMQ refuses an empty
 * one or one with a '/' for the last two, and so do we for all three spellings' aliases. */
static bool queue_name_ok(struct stomp_view x)
{
	return x.len > 0 && !memchr(x.ptr, '/', x.len);
}

static bool is_server_name(struct stomp_view x)
{
	return starts_with(x, DESTNAME_SERVER_PREFIX, DESTNAME_SERVER_PREFIX_LEN);
}

static struct stomp_view after(struct stomp_view v, size_t n)
{
	return (struct stomp_view){ v.ptr + n, v.len - n };
}

bool destname_is_queue(struct stomp_view v)
{
	return has_prefix(v, DESTNAME_QUEUE, DESTNAME_QUEUE_LEN);
}

bool destname_key_is_queue(const char *key, size_t len)
{
	return destname_is_queue((struct stomp_view){ key, len });
}

bool destname_key_is_topic(const char *key, size_t len)
{
	return destname_is_topic((struct stomp_view){ key, len });
}

bool destname_key_is_server_queue(const char *key, size_t len)
{
	struct stomp_view v = { key, len };

	return destname_key_is_queue(key, len) && is_server_name(after(v, DESTNAME_QUEUE_LEN));
}

bool destname_is_topic(struct stomp_view v)
{
	return has_prefix(v, DESTNAME_TOPIC, DESTNAME_TOPIC_LEN);
}

/* "/queue/" + x in the shard's name scratch. */
static struct stomp_view queue_name(struct shard *sh, struct stomp_view x)
{
	struct session_shard *ss = &sh->sessions;
	size_t len = DESTNAME_QUEUE_LEN + x.len;

	if (len > ss->name_cap) {
		ss->name_cap = len;
		ss->name_buf = hd_realloc(ss->name_buf, ss->name_cap);
	}
	memcpy(ss->name_buf, DESTNAME_QUEUE, DESTNAME_QUEUE_LEN);
	memcpy(ss->name_buf + DESTNAME_QUEUE_LEN, x.ptr, x.len);
	return (struct stomp_view){ ss->name_buf, len };
}

/* Refuses frame f for destination d with RabbitMQ's wording "'<what>' is not a valid ...". */
static bool refuse(struct shard *sh, struct session *s, const struct stomp_frame *f,
		   const char *message, const char *fmt, struct stomp_view what)
{
	char detail[512];

	snprintf(detail, sizeof(detail), fmt,
		 (int)utf8_trim_partial(what.ptr, HD_MIN(what.len, 256)), what.ptr,
		 stomp_cmd_name(f->cmd));
	session_fail_frame(sh, s, f, message, detail);
	return false;
}

/* The RabbitMQ spellings of a queue (/amq/queue/X, /reply-queue/X): out->name is /queue/X. */
static bool check_alias(struct shard *sh, struct session *s, const struct stomp_frame *f,
			struct stomp_view d, bool reply_queue, struct destname *out)
{
	struct stomp_view x = after(d, reply_queue ? DESTNAME_REPLY_QUEUE_LEN : DESTNAME_AMQ_QUEUE_LEN);

	if (!queue_name_ok(x))
		return refuse(sh, s, f, "Invalid destination",
			      "'%.*s' is not a valid queue name (in %s): it must be one or more "
			      "characters, none of them '/'", x);
	if (reply_queue || is_server_name(x)) {
		/* a server-named (reply) queue: only its own connection consumes from it, and
		 * a message for one that is gone is dropped, never held in a new queue */
		if (f->cmd == STOMP_CMD_SUBSCRIBE)
			return refuse(sh, s, f, "access refused",
				      "'%.*s' is a private reply queue, or none: it cannot be "
				      "subscribed to (%s)", d);
		out->existing_queue_only = true;
	}
	out->name = queue_name(sh, x);
	return true;
}

bool destname_check(struct shard *sh, struct session *s, const struct stomp_frame *f,
		    const struct stomp_view *d, struct destname *out)
{
	char detail[512];

	memset(out, 0, sizeof(*out));
	if (!d) {
		session_fail_frame(sh, s, f, "missing destination header",
				   "This frame requires a 'destination' header");
		return false;
	}
	if (memchr(d->ptr, TOPIC_SCOPE_SEP, d->len)) {
		session_fail_frame(sh, s, f, "invalid destination",
				   "Destination names may not hold control bytes");
		return false;
	}
	out->name = *d;
	if (starts_with(*d, DESTNAME_AMQ_QUEUE, DESTNAME_AMQ_QUEUE_LEN)) {
		if (!check_alias(sh, s, f, *d, false, out))
			return false;
	} else if (starts_with(*d, DESTNAME_REPLY_QUEUE, DESTNAME_REPLY_QUEUE_LEN)) {
		if (!check_alias(sh, s, f, *d, true, out))
			return false;
	} else if (starts_with(*d, DESTNAME_TEMP_QUEUE, DESTNAME_TEMP_QUEUE_LEN)) {
		return refuse(sh, s, f, "Invalid destination",
			      "'%.*s' is not a valid destination for '%s': a /temp-queue/ name "
			      "belongs in a SEND's reply-to header", *d);
	} else if (destname_is_queue(*d)) {
		if (is_server_name(after(*d, DESTNAME_QUEUE_LEN)))
			return refuse(sh, s, f, "access refused",
				      "'%.*s': queue names starting with 'amq.' are reserved for "
				      "the server's reply queues (%s)", *d);
	} else if (!destname_is_topic(*d)) {
		snprintf(detail, sizeof(detail),
			 "Unknown destination '%.*s'. Valid destinations are /queue/<name>, "
			 "/topic/<name>, /amq/queue/<name> and (to reply) /reply-queue/<name>",
			 (int)utf8_trim_partial(d->ptr, HD_MIN(d->len, 256)), d->ptr);
		session_fail_frame(sh, s, f, "unknown destination", detail);
		return false;
	}
	if (out->name.len > sh->limits.max_destination_bytes) {
		/* topic patterns are matched word by word against every published name: long
		 * names with thousands of words would let one SEND stall every shard */
		snprintf(detail, sizeof(detail),
			 "Destination names may be at most %u bytes long (max-destination-bytes)",
			 sh->limits.max_destination_bytes);
		session_fail_frame(sh, s, f, "destination too long", detail);
		return false;
	}
	return true;
}

bool destname_temp_queue_name(struct stomp_view reply_to, struct stomp_view *name)
{
	if (!starts_with(reply_to, DESTNAME_TEMP_QUEUE, DESTNAME_TEMP_QUEUE_LEN))
		return false;
	*name = after(reply_to, DESTNAME_TEMP_QUEUE_LEN);
	return true;
}

bool destname_temp_queue_name_ok(struct stomp_view name)
{
	return queue_name_ok(name);
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

struct xrepl_op *xrepl_op_create(const char *name, size_t len)
{
	struct xrepl_op *op = hd_calloc(1, sizeof(*op) + len + 1);

	op->len = (uint32_t)len;
	memcpy(op->name, name, len);
	return op;
}
