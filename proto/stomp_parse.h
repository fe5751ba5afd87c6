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
	STOMP_E_NUL_IN_HEADER = -12,	/* NUL in a header line: no escape exists for it */
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
	bool report_unknown;		/* unknown command: parse the frame anyway and return it
					 * as STOMP_CMD_UNKNOWN (so an ERROR can name its receipt),
					 * instead of failing with STOMP_E_UNKNOWN_COMMAND */
	/* Scan state for the partial frame at the start of the caller's buffer. Offsets, not
	 * pointers: the caller may move the partial frame between calls. */
	size_t scan_off;		/* bytes of the frame already examined */
	uint32_t state;			/* private to stomp_parse.c */
	size_t body_start;		/* offset of the body, once the blank line is seen */
	size_t content_length;		/* body bytes: from the header, or once the NUL is found */
	size_t scratch_used;		/* scratch bytes holding this frame's unescaped headers */
	size_t headers_start;		/* offset of the first header line */
	size_t line_start;		/* offset of the header line being scanned */
	uint32_t nheaders;		/* header lines accepted so far */
	enum stomp_cmd cmd;		/* command of the frame being scanned */
	bool has_content_length;	/* content_length came from a header */
	bool unescape;			/* this frame's headers are unescaped (1.1+, not CONNECT) */
	int err;			/* the error returned, returned again by later calls */
	char reason_buf[96];		/* reason text with the limit in it */
};

/* Prepares p. `limits` is copied (NULL: stomp_limits_default; max_headers is clamped to
 * STOMP_HEADERS_CAP). `scratch` (caller-owned, lives as long as p) receives unescaped copies
 * of header names/values that contained escapes; max_header_line * max_headers bytes always
 * suffices, less is fine in practice (overflow is STOMP_E_SCRATCH_FULL). Version starts
 * at STOMP_V12 for escaping purposes; the session sets it after CONNECT. */
void stomp_parser_init(struct stomp_parser *p, const struct stomp_limits *limits,
		       char *scratch, size_t scratch_cap);

/* Replaces p's limits and scratch as stomp_parser_init sets them, keeping its scan state.
 * Call between frames (stomp_parser_is_between_frames), so that one frame is judged by one
 * set of limits; the scratch may move at any time (a frame's unescaped headers are rebuilt
 * when it completes). */
void stomp_parser_set_limits(struct stomp_parser *p, const struct stomp_limits *limits,
			     char *scratch, size_t scratch_cap);

/* True when no partial frame is being scanned (the next call starts a new frame). */
bool stomp_parser_is_between_frames(const struct stomp_parser *p);

/* Sets the negotiated version (affects escaping of frames parsed after this call; call it
 * between frames, i.e. after a call that returned > 0). */
void stomp_parser_set_version(struct stomp_parser *p, enum stomp_version v);

/* Parses one frame from buf[0..len), buf starting at a frame boundary (after the previous
 * frame's NUL). Leading EOLs (LF or CRLF) are heart-beats: a call whose input starts with
 * EOLs and holds no complete frame after them returns the EOL bytes with
 * out->cmd == STOMP_CMD_NONE and out->heartbeats set; when a complete frame follows, the
 * EOLs are counted in out->heartbeats and consumed with it.
 * Returns bytes consumed (> 0) once a whole frame (or EOL run) is in *out; 0 when more input
 * is needed (p keeps its scan position: call again with the same start and more bytes; buf
 * may have moved, the bytes must not have changed); or a negative STOMP_E_* with p->reason
 * set (the connection should send ERROR and close; later calls return the same error).
 * *out is written only when the return is > 0. Header views in *out point into buf or
 * p->scratch and die with the next call.
 *
 * Rules beyond the grammar: a CR before LF is stripped from command and header lines in
 * every version; header values are not trimmed and may hold further ':' bytes; STOMP
 * frames, like CONNECT, are never unescaped (both are the connect request). Limits are
 * checked as bytes arrive, so the outcome never depends on how the input was split: a
 * header line or frame that outgrows its limit fails before its end is seen, and a
 * content-length over max_body (or one that cannot fit max_frame) fails at its header. */
ssize_t stomp_parse(struct stomp_parser *p, const char *buf, size_t len, struct stomp_frame *out);

/* First header named `name` (the spec: a repeated header, the first one wins), or NULL. */
const struct stomp_view *stomp_frame_header(const struct stomp_frame *f, const char *name);

/* Reason string for a STOMP_E_* code. */
const char *stomp_parse_strerror(int err);

#endif
