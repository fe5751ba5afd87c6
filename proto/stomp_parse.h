/*
 * proto/stomp_parse.h - incremental, zero-copy STOMP 1.0/1.1/1.2 frame parser
 * (spec: stomp.github.io/stomp-specification-1.2.html, "Frames", "Value Encoding",
 * "Heart-beating"). Pure: no I/O, no allocation, no globals. One parser per connection.
 *
 * Contract: the caller keeps the bytes of a partial frame contiguous and calls again with
 * the same start and more bytes; the parser remembers how far it scanned, so feeding a frame
 * one byte at a time costs O(frame) overall and yields exactly the frames a single call would.
 */
#ifndef PROTO_STOMP_PARSE_H
#define PROTO_STOMP_PARSE_H

#include "proto/stomp.h"

#include <sys/types.h>

/* Errors: each limit and each syntax fault has its own code and reason string. */
enum stomp_parse_err {
	STOMP_E_FRAME_TOO_LARGE = -1,
	STOMP_E_TOO_MANY_HEADERS = -2,
	STOMP_E_HEADER_LINE_TOO_LONG = -3,
	STOMP_E_BODY_TOO_LARGE = -4,
	STOMP_E_COMMAND_TOO_LONG = -5,
	STOMP_E_UNKNOWN_COMMAND = -6,
	STOMP_E_BAD_HEADER = -7,	/* header line without ':' or with an empty name */
	STOMP_E_BAD_ESCAPE = -8,	/* undefined escape sequence (1.1+) */
	STOMP_E_BAD_CONTENT_LENGTH = -9,/* not a non-negative decimal */
	STOMP_E_MISSING_NUL = -10,	/* byte after content-length body is not NUL */
	STOMP_E_SCRATCH_FULL = -11,	/* unescaped headers outgrew the caller's scratch */
};

struct stomp_frame {
	enum stomp_cmd cmd;		/* STOMP_CMD_NONE: this "frame" is only heart-beat EOLs */
	uint32_t heartbeats;		/* EOLs consumed before this frame (liveness) */
	uint32_t nheaders;
	bool has_content_length;
	struct stomp_header headers[STOMP_HEADERS_CAP];	/* in wire order, duplicates kept */
	struct stomp_view body;		/* points into the input */
};

struct stomp_parser {
	struct stomp_limits limits;
	enum stomp_version version;	/* escaping rule for frames other than CONNECT/CONNECTED */
	char *scratch;			/* caller memory for unescaped header bytes */
	size_t scratch_cap;
	const char *reason;		/* set with a negative return: fit for ERROR's message */
	/* scan state for the partial frame at the start of the caller's buffer */
	size_t scan_off;
	uint32_t state;
	size_t body_start;
	size_t content_length;
	size_t scratch_used;
};

/* Prepares p. `scratch` (caller-owned, lives as long as p) receives unescaped copies of
 * header names/values that contained escapes; max_header_line * max_headers bytes always
 * suffices, less is fine in practice (overflow is STOMP_E_SCRATCH_FULL). Version starts
 * at STOMP_V12 for escaping purposes; the session sets it after CONNECT. */
void stomp_parser_init(struct stomp_parser *p, const struct stomp_limits *limits,
		       char *scratch, size_t scratch_cap);

/* Sets the negotiated version (affects escaping of frames parsed after this call). */
void stomp_parser_set_version(struct stomp_parser *p, enum stomp_version v);

/* Parses one frame from buf[0..len), buf starting at a frame boundary (after the previous
 * frame's NUL). Leading EOLs (LF or CRLF) are heart-beats: a call whose input starts with
 * EOLs and holds no complete frame after them returns the EOL bytes with
 * out->cmd == STOMP_CMD_NONE and out->heartbeats set; when a complete frame follows, the
 * EOLs are counted in out->heartbeats and consumed with it.
 * Returns bytes consumed (> 0) once a whole frame (or EOL run) is in *out; 0 when more input
 * is needed (p keeps its scan position: call again with the same start and more bytes); or a
 * negative STOMP_E_* with p->reason set (the connection should send ERROR and close).
 * Header views in *out point into buf or p->scratch and die with the next call. */
ssize_t stomp_parse(struct stomp_parser *p, const char *buf, size_t len, struct stomp_frame *out);

/* First header named `name` (the spec: a repeated header, the first one wins), or NULL. */
const struct stomp_view *stomp_frame_header(const struct stomp_frame *f, const char *name);

/* Reason string for a STOMP_E_* code. */
const char *stomp_parse_strerror(int err);

#endif
