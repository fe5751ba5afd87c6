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
/* RabbitMQ's spellings: /amq/queue/X is /queue/X; /reply-queue/X (SEND only) is the reply
 * queue X a /temp-queue/ in reply-to made; /temp-queue/X is valid only in reply-to */
#define DESTNAME_AMQ_QUEUE "/amq/queue/"
#define DESTNAME_AMQ_QUEUE_LEN (sizeof(DESTNAME_AMQ_QUEUE) - 1)
#define DESTNAME_REPLY_QUEUE "/reply-queue/"
#define DESTNAME_REPLY_QUEUE_LEN (sizeof(DESTNAME_REPLY_QUEUE) - 1)
#define DESTNAME_TEMP_QUEUE "/temp-queue/"
#define DESTNAME_TEMP_QUEUE_LEN (sizeof(DESTNAME_TEMP_QUEUE) - 1)
/* queue names the server makes (reply queues) start so; clients may not use them */
#define DESTNAME_SERVER_PREFIX "amq."
#define DESTNAME_SERVER_PREFIX_LEN (sizeof(DESTNAME_SERVER_PREFIX) - 1)

/* A destination header, checked and normalised. */
struct destname {
	struct stomp_view name;		/* what subscribers see: /queue/X or /topic/X (the
					 * header itself, or the shard's name scratch: valid
					 * until the next destname_check on this shard) */
	bool existing_queue_only;	/* a reply queue: deliver to it only while it lives,
					 * never make it; no access rule applies (its name is
					 * an unguessable capability, as on RabbitMQ) */
};

struct session;
struct shard;
struct xname;
struct xrepl_op;

/* Is v "/queue/<at least one byte>" / "/topic/<...>"? */
bool destname_is_queue(struct stomp_view v);
bool destname_is_topic(struct stomp_view v);
/* The same test on an internal key (name, or name + separator + vhost). */
bool destname_key_is_queue(const char *key, size_t len);
bool destname_key_is_topic(const char *key, size_t len);

/* Is this internal key a server-made (reply) queue's? Such a queue lives only while its
 * connection's subscription does. */
bool destname_key_is_server_queue(const char *key, size_t len);

/* Validates frame f's destination header d (SEND or SUBSCRIBE): present, a known kind, no
 * control bytes, not a server-made (amq.) queue name, at most max-destination-bytes once
 * normalised into *out. On failure refuses the frame (ERROR) and returns false. */
bool destname_check(struct shard *sh, struct session *s, const struct stomp_frame *f,
		    const struct stomp_view *d, struct destname *out);

/* True when reply_to is a /temp-queue/ destination; *name is what follows the prefix. */
bool destname_temp_queue_name(struct stomp_view reply_to, struct stomp_view *name);
/* A temp queue name must be one or more characters, none of them '/'. */
bool destname_temp_queue_name_ok(struct stomp_view name);

/* The internal key of destination d for s's virtual host: d itself in vhost "/",
 * "<d>\x1f<vhost>" in any other. Valid until the next call on this shard. */
struct stomp_view destname_key(struct shard *sh, const struct session *s, struct stomp_view d);

/* A name to send across an xring: one allocation the receiver frees. */
struct xname *xname_create(const char *name, size_t len);
/* A replication operation for queue `name` (core/xmsg.h), its consumer fields zero. */
struct xrepl_op *xrepl_op_create(const char *name, size_t len);

#endif
