/*
 * proto/stomp_encode.h - STOMP frame encoder for the server's hot path.
 * Pure: writes into caller memory, returns bytes written or -ENOSPC; any thread may call.
 *
 * A MESSAGE to many subscribers is split in two: a small per-subscriber head
 * ("MESSAGE\nsubscription:..\nmessage-id:..\nack:..\n[redelivered:true\n]") and one shared
 * tail ("destination:..\n<publisher headers>\ncontent-length:N\n\n<body>\0") encoded once.
 * Both go out as an iovec pair, so the tail is never copied per subscriber.
 */
#ifndef PROTO_STOMP_ENCODE_H
#define PROTO_STOMP_ENCODE_H

#include "proto/stomp.h"

#include <sys/types.h>
#include <sys/uio.h>

/* Upper bound on a MESSAGE head for ids of the given lengths. */
#define STOMP_MESSAGE_HEAD_MAX(sub_len, id_len, ack_len) \
	(64 + 2 * ((sub_len) + (id_len) + (ack_len)))

/* Escapes `in` for `v` into out (1.0: copied as is; 1.1: \n \c \\; 1.2 adds \r). Returns
 * bytes written or -ENOSPC. `in` may need up to 2x its length. 1.0 cannot carry LF in a
 * header, and 1.0/1.1 cannot carry a CR that ends a name or value (the parser strips a CR
 * before LF): such values do not survive those versions. */
ssize_t stomp_escape(enum stomp_version v, const char *in, size_t len, char *out, size_t cap);

/* True when `s` holds a byte that some version escapes (\n \r : \\); such a tail differs
 * between versions and the caller must encode one per version it serves. */
bool stomp_needs_escape(const char *s, size_t len);

/* Writes a whole frame: command, headers (escaped per `v` unless cmd is CONNECT, STOMP or
 * CONNECTED, which are never escaped), a content-length header when with_content_length
 * (headers must not hold one then), blank line, body, NUL. Returns bytes written, -ENOSPC
 * when cap is too small (out's contents are then unspecified), or -EINVAL for
 * STOMP_CMD_NONE. Without content-length the body must not contain NUL. */
ssize_t stomp_encode_frame(char *out, size_t cap, enum stomp_version v, enum stomp_cmd cmd,
			   const struct stomp_header *headers, size_t nheaders,
			   const char *body, size_t body_len, bool with_content_length);

/* Writes the shared MESSAGE tail: "destination:<dest>\n", the publisher's headers in order
 * (escaped per v), "content-length:<body_len>\n\n", body, NUL. The caller filters out
 * headers the server owns (destination, message-id, subscription, ack, content-length,
 * receipt, transaction). Returns bytes written or -ENOSPC. */
ssize_t stomp_encode_message_tail(char *out, size_t cap, enum stomp_version v,
				  struct stomp_view dest, const struct stomp_header *headers,
				  size_t nheaders, const char *body, size_t body_len);

/* The redelivered header of a MESSAGE: a queue delivery always says true or false (client
 * code reads it, as on RabbitMQ); a topic delivery, which is never redelivered, omits it.
 * OMIT and TRUE keep the values false and true had when this was a bool. */
enum stomp_redelivered {
	STOMP_REDELIVERED_OMIT = 0,
	STOMP_REDELIVERED_TRUE = 1,
	STOMP_REDELIVERED_FALSE = 2,
};

/* Writes a MESSAGE head: "MESSAGE\nsubscription:<sub>\nmessage-id:<id>\n", then
 * "ack:<ack>\n" when ack.len > 0, then "redelivered:true\n" or "redelivered:false\n" as
 * `redelivered` says. Values are escaped per v. Returns bytes written or -ENOSPC. */
ssize_t stomp_encode_message_head(char *out, size_t cap, enum stomp_version v,
				  struct stomp_view sub, struct stomp_view msg_id,
				  struct stomp_view ack, enum stomp_redelivered redelivered);

/* Fills iov[0..2) with head and tail; returns 2. A sender writes both without copying. */
static inline int stomp_message_iov(struct iovec iov[2], const char *head, size_t head_len,
				    const char *tail, size_t tail_len)
{
	iov[0].iov_base = (void *)head;
	iov[0].iov_len = head_len;
	iov[1].iov_base = (void *)tail;
	iov[1].iov_len = tail_len;
	return 2;
}

#endif
