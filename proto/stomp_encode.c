/*
 * proto/stomp_encode.c - STOMP frame encoder (spec "STOMP Frames", "Value Encoding").
 * Pure: writes into caller memory; any thread may call it. This is the delivery hot path:
 * no snprintf, only memcpy of literal runs and one table lookup per value byte.
 *
 * Every writer below works on a cursor `o` and an end `end` and returns the new cursor, or
 * NULL once the output would pass `end`; NULL then falls through the later writers, so a
 * whole frame is written with one check for -ENOSPC at the end.
 */
#include "proto/stomp_encode.h"

#include <errno.h>
#include <string.h>

/* For each byte, the letter that follows '\' when it is escaped, or 0 (Value Encoding). */
static const char escape_v11[256] = {
	['\n'] = 'n',
	[':'] = 'c',
	['\\'] = '\\',
};
static const char escape_v12[256] = {
	['\r'] = 'r',
	['\n'] = 'n',
	[':'] = 'c',
	['\\'] = '\\',
};

/* NULL for 1.0, which has no escaping. */
static const char *escape_table(enum stomp_version v)
{
	if (v == STOMP_V10)
		return NULL;
	return v == STOMP_V11 ? escape_v11 : escape_v12;
}

static char *put(char *o, char *end, const void *s, size_t len)
{
	if (len == 0)	/* s may be NULL then, which memcpy does not allow */
		return o;
	if (!o || (size_t)(end - o) < len)
		return NULL;
	memcpy(o, s, len);
	return o + len;
}

#define PUT_LIT(o, end, lit) put((o), (end), (lit), sizeof(lit) - 1)

static char *put_char(char *o, char *end, char c)
{
	if (!o || o == end)
		return NULL;
	*o = c;
	return o + 1;
}

/* Copies s escaped by `table` (NULL: verbatim), one memcpy per run of plain bytes. */
static char *put_escaped(char *o, char *end, const char *table, const char *s, size_t len)
{
	size_t run = 0;

	if (!table || len == 0)
		return put(o, end, s, len);
	for (size_t i = 0; i < len; i++) {
		char e = table[(unsigned char)s[i]];

		if (!e)
			continue;
		o = put(o, end, s + run, i - run);
		o = put_char(o, end, '\\');
		o = put_char(o, end, e);
		run = i + 1;
	}
	return put(o, end, s + run, len - run);
}

/* Decimal without snprintf: digits are produced backwards into a small buffer. */
static char *put_size(char *o, char *end, size_t v)
{
	char digits[24];
	char *d = digits + sizeof(digits);

	do {
		*--d = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return put(o, end, d, (size_t)(digits + sizeof(digits) - d));
}

static char *put_header(char *o, char *end, const char *table, const struct stomp_header *h)
{
	o = put_escaped(o, end, table, h->name.ptr, h->name.len);
	o = put_char(o, end, ':');
	o = put_escaped(o, end, table, h->value.ptr, h->value.len);
	return put_char(o, end, '\n');
}

static ssize_t written(const char *o, const char *start)
{
	return o ? (ssize_t)(o - start) : -ENOSPC;
}

ssize_t stomp_escape(enum stomp_version v, const char *in, size_t len, char *out, size_t cap)
{
	if (len == 0)
		return 0;
	if (!out)
		return -ENOSPC;
	return written(put_escaped(out, out + cap, escape_table(v), in, len), out);
}

bool stomp_needs_escape(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (escape_v12[(unsigned char)s[i]])
			return true;
	}
	return false;
}

ssize_t stomp_encode_frame(char *out, size_t cap, enum stomp_version v, enum stomp_cmd cmd,
			   const struct stomp_header *headers, size_t nheaders,
			   const char *body, size_t body_len, bool with_content_length)
{
	const char *table = escape_table(v);
	const char *name = stomp_cmd_name(cmd);
	char *end;
	char *o = out;

	if (cmd == STOMP_CMD_NONE || !name[0])
		return -EINVAL;
	if (!out)
		return -ENOSPC;
	end = out + cap;
	/* Value Encoding: CONNECT and CONNECTED (and STOMP, CONNECT's other name) are sent
	 * before a version is agreed, so their headers are never escaped. */
	if (cmd == STOMP_CMD_CONNECT || cmd == STOMP_CMD_STOMP || cmd == STOMP_CMD_CONNECTED)
		table = NULL;
	o = put(o, end, name, strlen(name));
	o = put_char(o, end, '\n');
	for (size_t i = 0; i < nheaders; i++)
		o = put_header(o, end, table, &headers[i]);
	if (with_content_length) {
		o = PUT_LIT(o, end, "content-length:");
		o = put_size(o, end, body_len);
		o = put_char(o, end, '\n');
	}
	o = put_char(o, end, '\n');
	o = put(o, end, body, body_len);
	o = put_char(o, end, '\0');
	return written(o, out);
}

ssize_t stomp_encode_message_tail(char *out, size_t cap, enum stomp_version v,
				  struct stomp_view dest, const struct stomp_header *headers,
				  size_t nheaders, const char *body, size_t body_len)
{
	const char *table = escape_table(v);
	char *end;
	char *o = out;

	if (!out)
		return -ENOSPC;
	end = out + cap;
	o = PUT_LIT(o, end, "destination:");
	o = put_escaped(o, end, table, dest.ptr, dest.len);
	o = put_char(o, end, '\n');
	for (size_t i = 0; i < nheaders; i++)
		o = put_header(o, end, table, &headers[i]);
	o = PUT_LIT(o, end, "content-length:");
	o = put_size(o, end, body_len);
	o = PUT_LIT(o, end, "\n\n");
	o = put(o, end, body, body_len);
	o = put_char(o, end, '\0');
	return written(o, out);
}

ssize_t stomp_encode_message_head(char *out, size_t cap, enum stomp_version v,
				  struct stomp_view sub, struct stomp_view msg_id,
				  struct stomp_view ack, enum stomp_redelivered redelivered)
{
	const char *table = escape_table(v);
	char *end;
	char *o = out;

	if (!out)
		return -ENOSPC;
	end = out + cap;
	o = PUT_LIT(o, end, "MESSAGE\nsubscription:");
	o = put_escaped(o, end, table, sub.ptr, sub.len);
	o = PUT_LIT(o, end, "\nmessage-id:");
	o = put_escaped(o, end, table, msg_id.ptr, msg_id.len);
	o = put_char(o, end, '\n');
	if (ack.len) {
		o = PUT_LIT(o, end, "ack:");
		o = put_escaped(o, end, table, ack.ptr, ack.len);
		o = put_char(o, end, '\n');
	}
	if (redelivered == STOMP_REDELIVERED_TRUE)
		o = PUT_LIT(o, end, "redelivered:true\n");
	else if (redelivered == STOMP_REDELIVERED_FALSE)
		o = PUT_LIT(o, end, "redelivered:false\n");
	return written(o, out);
}
