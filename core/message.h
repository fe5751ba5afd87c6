/*
 * core/message.h - building a message once for all its subscribers: the shared MESSAGE
 * tail (destination, the publisher's headers deduplicated, content-length, body) in one
 * refcounted hmsg, with 1.0 and 1.1 variants when escaping makes them differ. Used for
 * SENDs; knows no session, so anything that holds a frame's parts can build one.
 * Spec: STOMP 1.2 "MESSAGE", "Value Encoding".
 *
 * Thread: any; the header set is the caller's scratch.
 */
#ifndef CORE_MESSAGE_H
#define CORE_MESSAGE_H

#include "proto/stomp_parse.h"

#include <stddef.h>
#include <stdint.h>

struct header_set;
struct hmsg;

/* Scratch for message_build (about 40 KiB; one per thread; free with hd_free). */
struct header_set *message_header_set_create(void);

/* What a message is built from. */
struct message_parts {
	uint16_t home_shard;		/* arena the hmsg comes from */
	struct stomp_view msg_id;	/* message-id */
	struct stomp_view dest;		/* destination subscribers see */
	struct stomp_view key;		/* internal destination key (destname_key) */
	const struct stomp_header *headers;	/* the publisher's, in order; the server's own
						 * (destination, receipt, ...) are skipped */
	size_t nheaders;
	struct stomp_view body;
	struct stomp_view reply_to;	/* when set: the first reply-to header's new value (a
					 * /temp-queue/ rewritten to its reply queue) */
};

/* Builds the hmsg (one shard reference, the caller's). Repeated headers: the first wins. */
struct hmsg *message_build(struct header_set *hs, const struct message_parts *p);

/* Writes "<node epoch hex>-<shard>-<seq>" into out (room for 40 bytes); returns its length. */
size_t message_id_format(char *out, uint32_t node_epoch, uint32_t shard, uint64_t seq);

#endif
