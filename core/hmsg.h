/*
 * core/hmsg.h - immutable, reference-counted message buffers: one allocation holding the
 * destination name and the MESSAGE frame tail encoded once for every subscriber.
 * Any thread may ref/unref; the bytes never change after hmsg_create returns.
 */
#ifndef CORE_HMSG_H
#define CORE_HMSG_H

#include "proto/stomp.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum {
	HMSG_TAIL_ESCAPED = 1,	/* the tail holds escapes: 1.0/1.1 readers need their own copy */
	HMSG_NOT_UTF8 = 2,	/* a header or the body is not UTF-8: WebSocket sends it as binary */
};

struct hmsg {
	_Atomic uint32_t refs;	/* deliveries and holders; the last unref frees */
	uint16_t home_shard;	/* shard that created it */
	uint16_t flags;		/* HMSG_* */
	uint32_t dest_len;	/* destination name at bytes[0], NUL-terminated */
	uint32_t tail_off;	/* shared frame tail: "message-id:..\ndestination:..\n...\0" */
	uint32_t tail_len;
	uint32_t msgid_off;	/* message-id value, inside the tail */
	uint32_t msgid_len;
	uint32_t body_len;
	uint32_t tail10_off;	/* STOMP 1.0 readers' tail (no escaping), when it differs */
	uint32_t tail10_len;	/* 0: 1.0 readers get the shared tail */
	uint32_t tail11_off;	/* STOMP 1.1 readers' tail (a CR unescaped), when it differs */
	uint32_t tail11_len;	/* 0: 1.1 readers get the shared tail */
	char bytes[];
};

/* Allocates a message with room for a tail of up to tail_cap bytes; the caller fills
 * bytes + tail_off and sets tail_len before publishing it. One reference. */
struct hmsg *hmsg_create(uint16_t home_shard, const char *dest, size_t dest_len, size_t tail_cap);

static inline const char *hmsg_dest(const struct hmsg *m) { return m->bytes; }
static inline const char *hmsg_tail(const struct hmsg *m) { return m->bytes + m->tail_off; }
/* The tail a reader of version v gets: 1.0 has no header escaping (spec 1.0). */
static inline const char *hmsg_tail_for(const struct hmsg *m, enum stomp_version v, uint32_t *len)
{
	if (v == STOMP_V10 && m->tail10_len) {
		*len = m->tail10_len;
		return m->bytes + m->tail10_off;
	}
	if (v == STOMP_V11 && m->tail11_len) {	/* 1.1 has no \r escape */
		*len = m->tail11_len;
		return m->bytes + m->tail11_off;
	}
	*len = m->tail_len;
	return m->bytes + m->tail_off;
}

static inline char *hmsg_tail_mut(struct hmsg *m) { return m->bytes + m->tail_off; }
static inline struct stomp_view hmsg_msgid(const struct hmsg *m)
{
	return (struct stomp_view){ m->bytes + m->msgid_off, m->msgid_len };
}

/* Whether a and b are one message: the same, or the same message-id (a SEND sent again
 * carries the id its first attempt got). */
static inline bool hmsg_same_id(const struct hmsg *a, const struct hmsg *b)
{
	struct stomp_view x = hmsg_msgid(a), y = hmsg_msgid(b);

	return a == b || (x.len && x.len == y.len && !memcmp(x.ptr, y.ptr, x.len));
}

/* Adds n references (relaxed: the caller already holds one, so the object is alive). */
static inline void hmsg_ref(struct hmsg *m, uint32_t n)
{
	atomic_fetch_add_explicit(&m->refs, n, memory_order_relaxed);
}

/* Drops one reference; frees on the last. */
void hmsg_unref(struct hmsg *m);

/* Callback shape for net send completion: arg is the hmsg. */
void hmsg_release_cb(void *arg);

#endif
