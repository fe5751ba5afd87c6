/*
 * core/destname.h - destination names as clients write them and as the shards key them:
 * which kinds exist (/queue/, /topic/), what a valid one is (control bytes, length), and the
 * internal key that gives each virtual host its own namespace.
 * Spec: STOMP 1.2 leaves names to the server; RabbitMQ's prefixes are the model.
 *
 * Thread: any shard (pure, but for the shard's key scratch in destname_key).
 */
#ifndef CORE_DESTNAME_H
#define CORE_DESTNAME_H

#include "proto/stomp_parse.h"

#include <stdbool.h>
#include <stddef.h>

#define DESTNAME_QUEUE "/queue/"
#define DESTNAME_QUEUE_LEN (sizeof(DESTNAME_QUEUE) - 1)
#define DESTNAME_TOPIC "/topic/"
#define DESTNAME_TOPIC_LEN (sizeof(DESTNAME_TOPIC) - 1)

struct session;
struct shard;
struct xname;

/* Is v "/queue/<at least one byte>" / "/topic/<...>"? */
bool destname_is_queue(struct stomp_view v);
bool destname_is_topic(struct stomp_view v);
/* The same test on an internal key (name, or name + separator + vhost). */
bool destname_key_is_queue(const char *key, size_t len);

/* Validates a frame's destination header d (present, a known kind, no control bytes, at
 * most max-destination-bytes); on failure refuses the frame (ERROR) and returns false. */
bool destname_check(struct shard *sh, struct session *s, const struct stomp_frame *f,
		    const struct stomp_view *d);

/* The internal key of destination d for s's virtual host: d itself in vhost "/",
 * "<d>\x1f<vhost>" in any other. Valid until the next call on this shard. */
struct stomp_view destname_key(struct shard *sh, const struct session *s, struct stomp_view d);

/* A name to send across an xring: one allocation the receiver frees. */
struct xname *xname_create(const char *name, size_t len);

#endif
