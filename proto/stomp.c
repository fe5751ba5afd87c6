/*
 * proto/stomp.c - the STOMP vocabulary: command names and their lookup, version names,
 * default limits (STOMP 1.2 spec, "STOMP Frames", "Size Limits").
 * Pure: constant tables only; any thread may call these.
 */
#include "proto/stomp.h"

#include <string.h>

struct cmd_name {
	const char *name;
	size_t len;
};

#define CMD(s) { s, sizeof(s) - 1 }
static const struct cmd_name cmd_names[STOMP_CMD_COUNT] = {
	[STOMP_CMD_NONE] = CMD(""),
	[STOMP_CMD_CONNECT] = CMD("CONNECT"),
	[STOMP_CMD_STOMP] = CMD("STOMP"),
	[STOMP_CMD_SEND] = CMD("SEND"),
	[STOMP_CMD_SUBSCRIBE] = CMD("SUBSCRIBE"),
	[STOMP_CMD_UNSUBSCRIBE] = CMD("UNSUBSCRIBE"),
	[STOMP_CMD_ACK] = CMD("ACK"),
	[STOMP_CMD_NACK] = CMD("NACK"),
	[STOMP_CMD_BEGIN] = CMD("BEGIN"),
	[STOMP_CMD_COMMIT] = CMD("COMMIT"),
	[STOMP_CMD_ABORT] = CMD("ABORT"),
	[STOMP_CMD_DISCONNECT] = CMD("DISCONNECT"),
	[STOMP_CMD_CONNECTED] = CMD("CONNECTED"),
	[STOMP_CMD_MESSAGE] = CMD("MESSAGE"),
	[STOMP_CMD_RECEIPT] = CMD("RECEIPT"),
	[STOMP_CMD_ERROR] = CMD("ERROR"),
};
#undef CMD

void stomp_limits_default(struct stomp_limits *l)
{
	l->max_frame = 1u << 20;
	l->max_headers = 64;
	l->max_header_line = 8192;
	l->max_body = 1u << 20;
	l->max_command = 16;
}

const char *stomp_cmd_name(enum stomp_cmd cmd)
{
	if ((unsigned)cmd >= STOMP_CMD_COUNT || !cmd_names[cmd].name)
		return "";
	return cmd_names[cmd].name;
}

/*
 * Called once per parsed frame, so it must be cheap: the first byte and the length pick
 * the only candidate, and one memcmp confirms it.
 */
enum stomp_cmd stomp_cmd_lookup(const char *name, size_t len)
{
	enum stomp_cmd c;

	if (len == 0)
		return STOMP_CMD_NONE;
	switch (name[0]) {
	case 'A':
		c = len == 3 ? STOMP_CMD_ACK : STOMP_CMD_ABORT;
		break;
	case 'B':
		c = STOMP_CMD_BEGIN;
		break;
	case 'C':
		c = len == 6 ? STOMP_CMD_COMMIT
		    : len == 7 ? STOMP_CMD_CONNECT
			       : STOMP_CMD_CONNECTED;
		break;
	case 'D':
		c = STOMP_CMD_DISCONNECT;
		break;
	case 'E':
		c = STOMP_CMD_ERROR;
		break;
	case 'M':
		c = STOMP_CMD_MESSAGE;
		break;
	case 'N':
		c = STOMP_CMD_NACK;
		break;
	case 'R':
		c = STOMP_CMD_RECEIPT;
		break;
	case 'S':
		c = len == 4 ? STOMP_CMD_SEND : len == 5 ? STOMP_CMD_STOMP : STOMP_CMD_SUBSCRIBE;
		break;
	case 'U':
		c = STOMP_CMD_UNSUBSCRIBE;
		break;
	default:
		return STOMP_CMD_NONE;
	}
	if (cmd_names[c].len != len || memcmp(cmd_names[c].name, name, len) != 0)
		return STOMP_CMD_NONE;
	return c;
}

const char *stomp_version_name(enum stomp_version v)
{
	static const char *const names[] = {
		[STOMP_V10] = "1.0",
		[STOMP_V11] = "1.1",
		[STOMP_V12] = "1.2",
	};

	if ((unsigned)v > STOMP_V12)
		return "";
	return names[v];
}
