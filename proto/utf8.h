/*
 * proto/utf8.h - UTF-8 validation, whole buffers and streams (RFC 3629 section 4; the
 * Unicode Standard's table 3-7 "Well-Formed UTF-8 Byte Sequences").
 * Pure: no I/O, no allocation, no globals beyond constant tables. Any thread.
 *
 * Rejects what RFC 3629 forbids: overlong forms (C0, C1, E0 80..9F, F0 80..8F), UTF-16
 * surrogates (ED A0..BF), code points above U+10FFFF (F4 90.., F5..FF) and stray or
 * missing continuation bytes. U+0000 is valid (a STOMP frame ends with one).
 *
 * Users: ws_frame.c checks text messages across fragments with a struct utf8_stream; the
 * server calls utf8_is_valid once per published message to choose a text or a binary
 * WebSocket frame for it.
 */
#ifndef PROTO_UTF8_H
#define PROTO_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a stream stands after the bytes fed so far. */
enum utf8_status {
	UTF8_COMPLETE = 0,	/* valid, and the last byte ended a code point */
	UTF8_PARTIAL = 1,	/* valid so far, but inside a multi-byte sequence */
	UTF8_INVALID = 2,	/* not UTF-8; stays so whatever follows */
};

/* Validation state for bytes arriving in pieces (one per text message). */
struct utf8_stream {
	uint8_t state;		/* a DFA state of utf8.c; 0 at a code point boundary */
};

static inline void utf8_stream_init(struct utf8_stream *s)
{
	s->state = 0;
}

/* Feeds p[0..len) to s. Fails fast: UTF8_INVALID as soon as a byte cannot continue any
 * valid sequence, not only at the end. A message is valid when its last feed (or the
 * stream's status without more bytes) is UTF8_COMPLETE. */
enum utf8_status utf8_stream_feed(struct utf8_stream *s, const void *p, size_t len);

/* Status of s without feeding more bytes. */
enum utf8_status utf8_stream_status(const struct utf8_stream *s);

/* True when p[0..len) is well-formed UTF-8 as a whole (an empty buffer is). */
bool utf8_is_valid(const void *p, size_t len);

/* Length of the longest prefix of p[0..len) that does not end inside a code point,
 * assuming p itself is valid UTF-8; used to cut a reason string without splitting a
 * character. */
size_t utf8_trim_partial(const void *p, size_t len);

#endif
