/*
 * core/publish.h - SEND: checks (destination, access, user-id, memory high-water), the
 * message built once, then routed: a queue message to its owner shard, a topic message
 * straight from here to every interested shard. Spec: STOMP 1.2 "SEND".
 *
 * Thread: the session's shard.
 */
#ifndef CORE_PUBLISH_H
#define CORE_PUBLISH_H

#include "proto/stomp_parse.h"

#include <stdint.h>

struct hmsg;
struct session;
struct shard;

/* The frame handler. */
void publish_on_send(struct shard *sh, struct session *s, const struct stomp_frame *f);

/* Routes message m (one shard reference, which it takes) for s; receipt `seq` (0: none)
 * waits for the owner to hold it. Also used by COMMIT for a transaction's SENDs. */
void publish_route(struct shard *sh, struct session *s, struct hmsg *m, uint32_t seq);

#endif
