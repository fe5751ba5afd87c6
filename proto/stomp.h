/*
 * proto/stomp.h - STOMP vocabulary shared by the parser and the encoder: commands,
 * versions, byte views, headers, limits (STOMP 1.2 spec, stomp.github.io, "Frames").
 * Pure: no I/O, no allocation, no globals beyond constant tables.
 */
#ifndef PROTO_STOMP_H
#define PROTO_STOMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wire-visible order does not matter; values index tables, append only. */
enum stomp_cmd {
	STOMP_CMD_NONE = 0,	/* not a frame: a run of heart-beat EOLs (see stomp_parse) */
	/* client frames */
	STOMP_CMD_CONNECT,
	STOMP_CMD_STOMP,
	STOMP_CMD_SEND,
	STOMP_CMD_SUBSCRIBE,
	STOMP_CMD_UNSUBSCRIBE,
	STOMP_CMD_ACK,
	STOMP_CMD_NACK,
	STOMP_CMD_BEGIN,
	STOMP_CMD_COMMIT,
	STOMP_CMD_ABORT,
	STOMP_CMD_DISCONNECT,
	/* server frames */
	STOMP_CMD_CONNECTED,
	STOMP_CMD_MESSAGE,
	STOMP_CMD_RECEIPT,
	STOMP_CMD_ERROR,
	STOMP_CMD_UNKNOWN,	/* a well-formed frame with a command STOMP does not define
				 * (only when stomp_parser.report_unknown is set) */
	STOMP_CMD_COUNT
};

enum stomp_version {
	STOMP_V10 = 0,	/* no header escaping */
	STOMP_V11,	/* escapes \n \c \\ */
	STOMP_V12,	/* adds \r */
};

/* A run of bytes owned by someone else (the input buffer, or the parser's scratch). */
struct stomp_view {
	const char *ptr;
	size_t len;
};

struct stomp_header {
	struct stomp_view name;
	struct stomp_view value;
};

/* Hard ceiling on headers one frame can carry; stomp_limits.max_headers may be lower. */
#define STOMP_HEADERS_CAP 1024

struct stomp_limits {
	size_t max_frame;	/* bytes: command + headers + body + NUL */
	size_t max_headers;	/* header lines per frame, at most STOMP_HEADERS_CAP */
	size_t max_header_line;	/* bytes in one "name:value" line, escapes counted raw */
	size_t max_body;	/* bytes of body */
	size_t max_command;	/* bytes in the command line */
};

/* Defaults: 1 MiB frame and body, 64 headers, 8 KiB header line, 16-byte command. */
void stomp_limits_default(struct stomp_limits *l);

/* "SEND" for STOMP_CMD_SEND; "" for STOMP_CMD_NONE. */
const char *stomp_cmd_name(enum stomp_cmd cmd);
/* STOMP_CMD_NONE when the bytes name no command (case-sensitive, as the spec says). */
enum stomp_cmd stomp_cmd_lookup(const char *name, size_t len);
/* "1.0", "1.1", "1.2" */
const char *stomp_version_name(enum stomp_version v);

static inline bool stomp_view_eq(struct stomp_view v, const char *s, size_t len)
{
	return v.len == len && (len == 0 || __builtin_memcmp(v.ptr, s, len) == 0);
}
#define STOMP_VIEW_EQ_LIT(v, lit) stomp_view_eq((v), (lit), sizeof(lit) - 1)

#endif
