/*
 * proto/ws_frame.c - RFC 6455 frame decoder (client to server) and encoder (server to
 * client). Pure: no I/O, no allocation, no globals beyond constant tables. The thread that
 * owns the connection owns its decoder.
 *
 * The decoder is a state machine over three nested things: the frame header (gathered in
 * d->hdr[] because it may straddle two reads), the frame payload (data: unmasked in place
 * and returned as a span; control: gathered in d->ctl[]), and the message (open from its
 * first data frame to the frame with FIN; control frames may come between its fragments,
 * 5.4). Every rule that a header can break is checked when the header is complete, before
 * any payload byte of that frame is handed out.
 */
#include "proto/ws_frame.h"

#include <errno.h>
#include <string.h>

enum decoder_state {
	ST_HEADER,	/* gathering a frame header */
	ST_DATA,	/* inside a text/binary/continuation payload */
	ST_CONTROL,	/* inside a close/ping/pong payload */
	ST_CLOSED,	/* the peer's close arrived: ignore the rest */
	ST_FAILED,	/* a rule was broken: d->err forever */
};

static const struct {
	uint16_t close_code;
	const char *reason;
} errors[] = {
	[-WS_E_UNMASKED] = { WS_CLOSE_PROTOCOL_ERROR, "client frame not masked" },
	[-WS_E_RESERVED_BITS] = { WS_CLOSE_PROTOCOL_ERROR, "reserved bits set" },
	[-WS_E_BAD_OPCODE] = { WS_CLOSE_PROTOCOL_ERROR, "unknown opcode" },
	[-WS_E_CONTROL_TOO_LONG] = { WS_CLOSE_PROTOCOL_ERROR, "control frame over 125 bytes" },
	[-WS_E_CONTROL_FRAGMENTED] = { WS_CLOSE_PROTOCOL_ERROR, "fragmented control frame" },
	[-WS_E_BAD_LENGTH] = { WS_CLOSE_PROTOCOL_ERROR, "payload length high bit set" },
	[-WS_E_UNEXPECTED_CONTINUATION] = { WS_CLOSE_PROTOCOL_ERROR,
					    "continuation frame without a message" },
	[-WS_E_EXPECTED_CONTINUATION] = { WS_CLOSE_PROTOCOL_ERROR,
					  "new message before the last one ended" },
	[-WS_E_BAD_CLOSE_PAYLOAD] = { WS_CLOSE_PROTOCOL_ERROR, "close payload of one byte" },
	[-WS_E_BAD_CLOSE_CODE] = { WS_CLOSE_PROTOCOL_ERROR, "invalid close code" },
	[-WS_E_BAD_CLOSE_REASON] = { WS_CLOSE_INVALID_PAYLOAD, "close reason not UTF-8" },
	[-WS_E_BAD_UTF8] = { WS_CLOSE_INVALID_PAYLOAD, "text message not UTF-8" },
	[-WS_E_TOO_BIG] = { WS_CLOSE_MESSAGE_TOO_BIG, "message too big" },
};

#define NERRORS (sizeof(errors) / sizeof(errors[0]))

static bool is_control(uint8_t op)
{
	return op & 0x8;
}

static bool is_known_opcode(uint8_t op)
{
	return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

uint16_t ws_close_code_of(int err)
{
	if (err >= 0 || (size_t)-err >= NERRORS)
		return WS_CLOSE_INTERNAL_ERROR;
	return errors[-err].close_code;
}

const char *ws_strerror(int err)
{
	if (err >= 0 || (size_t)-err >= NERRORS)
		return "";
	return errors[-err].reason;
}

bool ws_close_code_is_valid(uint16_t code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

unsigned ws_mask_apply(uint8_t *p, size_t len, const uint8_t mask[4], unsigned off)
{
	uint8_t key8[8];
	uint64_t key;
	size_t i = 0;

	off &= 3;
	for (unsigned j = 0; j < 8; j++)
		key8[j] = mask[(off + j) & 3];
	memcpy(&key, key8, 8);
	/* Eight bytes at a time: a multiple of four keeps the key's phase (memcpy: p has no
	 * alignment, compilers emit plain unaligned loads and stores). */
	for (; len - i >= 8; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		w ^= key;
		memcpy(p + i, &w, 8);
	}
	for (; i < len; i++)
		p[i] ^= mask[(off + i) & 3];
	return (unsigned)((off + len) & 3);
}

void ws_decoder_init(struct ws_decoder *d, uint64_t max_message)
{
	memset(d, 0, sizeof(*d));
	d->max_message = max_message;
	d->state = ST_HEADER;
	d->hdr_need = 2;
}

static ssize_t fail(struct ws_decoder *d, int err)
{
	d->err = err;
	d->state = ST_FAILED;
	d->close_code = ws_close_code_of(err);
	d->reason = ws_strerror(err);
	return err;
}

/* Rules the first two header bytes decide (5.2, 5.4, 5.5); sets how long the header is. */
static int check_header_start(struct ws_decoder *d)
{
	uint8_t op = d->hdr[0] & 0x0f;
	uint8_t len7 = d->hdr[1] & 0x7f;
	bool fin = d->hdr[0] & 0x80;

	if (d->hdr[0] & 0x70)
		return WS_E_RESERVED_BITS;
	if (!is_known_opcode(op))
		return WS_E_BAD_OPCODE;
	if (!(d->hdr[1] & 0x80))
		return WS_E_UNMASKED;
	if (is_control(op)) {
		if (!fin)
			return WS_E_CONTROL_FRAGMENTED;
		if (len7 > WS_CONTROL_MAX)
			return WS_E_CONTROL_TOO_LONG;
	} else if (op == WS_OP_CONTINUATION) {
		if (!d->msg_opcode)
			return WS_E_UNEXPECTED_CONTINUATION;
	} else if (d->msg_opcode) {
		return WS_E_EXPECTED_CONTINUATION;
	}
	d->hdr_need = 2 + 4 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
	return 0;
}

static uint64_t load_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The header is whole: length, mask, the size limit; enters the payload state. */
static int begin_frame(struct ws_decoder *d)
{
	uint8_t op = d->hdr[0] & 0x0f;
	uint8_t len7 = d->hdr[1] & 0x7f;
	unsigned ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
	uint64_t len = ext ? load_be(d->hdr + 2, ext) : len7;

	if (len >> 63)
		return WS_E_BAD_LENGTH;
	memcpy(d->mask, d->hdr + 2 + ext, 4);
	d->mask_off = 0;
	d->remaining = len;
	d->fin = d->hdr[0] & 0x80;
	d->opcode = op;
	d->hdr_len = 0;
	d->hdr_need = 2;
	if (is_control(op)) {
		d->ctl_len = 0;
		d->state = ST_CONTROL;
		return 0;
	}
	if (op != WS_OP_CONTINUATION) {
		d->msg_opcode = op;
		d->msg_len = 0;
		utf8_stream_init(&d->utf8);
	}
	/* Refused from the header alone, before a byte of an oversized message arrives. */
	if (d->max_message && len > d->max_message - d->msg_len)
		return WS_E_TOO_BIG;
	d->msg_len += len;
	d->state = ST_DATA;
	return 0;
}

/* Gathers header bytes from buf[*off..len). Returns 1 when the header is complete and the
 * frame begun, 0 when buf ran out first, or a WS_E_*. */
static int take_header(struct ws_decoder *d, const uint8_t *buf, size_t len, size_t *off)
{
	int err;

	while (*off < len) {
		d->hdr[d->hdr_len++] = buf[(*off)++];
		if (d->hdr_len == 2) {
			err = check_header_start(d);
			if (err)
				return err;
		}
		if (d->hdr_len == d->hdr_need) {
			err = begin_frame(d);
			return err ? err : 1;
		}
	}
	return 0;
}

/* Unmasks what buf holds of a data payload and reports it. Returns 1 with *ev set, 0 when
 * there is nothing to report (buf empty, or a zero-length non-final frame), or a WS_E_*. */
static int take_data(struct ws_decoder *d, uint8_t *buf, size_t len, size_t *off,
		     struct ws_event *ev)
{
	uint8_t *p = buf + *off;
	size_t n = len - *off;
	bool is_text = d->msg_opcode == WS_OP_TEXT;
	bool is_final;

	if (n > d->remaining)
		n = (size_t)d->remaining;
	if (n == 0 && d->remaining)
		return 0;
	d->mask_off = (uint8_t)ws_mask_apply(p, n, d->mask, d->mask_off);
	d->remaining -= n;
	*off += n;
	if (is_text && utf8_stream_feed(&d->utf8, p, n) == UTF8_INVALID)
		return WS_E_BAD_UTF8;
	is_final = d->fin && !d->remaining;
	if (!d->remaining)
		d->state = ST_HEADER;
	if (is_final) {
		/* 8.1: a text message must not end inside a character */
		if (is_text && utf8_stream_status(&d->utf8) != UTF8_COMPLETE)
			return WS_E_BAD_UTF8;
		d->msg_opcode = 0;
	}
	if (!n && !is_final)
		return 0;
	ev->kind = WS_EV_DATA;
	ev->data = p;
	ev->len = n;
	ev->is_text = is_text;
	ev->is_final = is_final;
	return 1;
}

/* A close frame is whole in d->ctl: 5.5.1 and 7.4 say what its payload may be. */
static int close_event(struct ws_decoder *d, struct ws_event *ev)
{
	ev->kind = WS_EV_CLOSE;
	ev->close_code = WS_CLOSE_NO_STATUS;
	ev->data = d->ctl;
	ev->len = 0;
	if (d->ctl_len == 1)
		return WS_E_BAD_CLOSE_PAYLOAD;
	if (d->ctl_len >= 2) {
		ev->close_code = (uint16_t)load_be(d->ctl, 2);
		if (!ws_close_code_is_valid(ev->close_code))
			return WS_E_BAD_CLOSE_CODE;
		if (!utf8_is_valid(d->ctl + 2, d->ctl_len - 2u))
			return WS_E_BAD_CLOSE_REASON;
		ev->data = d->ctl + 2;
		ev->len = d->ctl_len - 2u;
	}
	d->state = ST_CLOSED;
	return 1;
}

/* Gathers a control payload into d->ctl; reports the frame once it is whole. */
static int take_control(struct ws_decoder *d, const uint8_t *buf, size_t len, size_t *off,
			struct ws_event *ev)
{
	size_t n = len - *off;

	if (n > d->remaining)
		n = (size_t)d->remaining;
	if (n == 0 && d->remaining)
		return 0;
	memcpy(d->ctl + d->ctl_len, buf + *off, n);
	d->mask_off = (uint8_t)ws_mask_apply(d->ctl + d->ctl_len, n, d->mask, d->mask_off);
	d->ctl_len = (uint8_t)(d->ctl_len + n);
	d->remaining -= n;
	*off += n;
	if (d->remaining)
		return 0;
	d->state = ST_HEADER;
	if (d->opcode == WS_OP_CLOSE)
		return close_event(d, ev);
	ev->kind = d->opcode == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
	ev->data = d->ctl;
	ev->len = d->ctl_len;
	return 1;
}

ssize_t ws_decode(struct ws_decoder *d, uint8_t *buf, size_t len, struct ws_event *ev)
{
	size_t off = 0;
	int r = 0;

	memset(ev, 0, sizeof(*ev));
	if (d->state == ST_FAILED)
		return d->err;
	/* A zero-length frame is reported in the call that completes its header, so an
	 * empty call never has anything to say (and buf may be NULL). */
	if (len == 0)
		return 0;
	for (;;) {
		switch (d->state) {
		case ST_HEADER:
			if (off == len)
				return (ssize_t)off;
			r = take_header(d, buf, len, &off);
			break;
		case ST_DATA:
			r = take_data(d, buf, len, &off, ev);
			break;
		case ST_CONTROL:
			r = take_control(d, buf, len, &off, ev);
			break;
		case ST_CLOSED:
			return (ssize_t)len;
		default:
			return d->err;
		}
		if (r < 0)
			return fail(d, r);
		if (ev->kind != WS_EV_NONE)
			return (ssize_t)off;
		/* r == 0 and no event: either buf ran out or a frame ended silently */
		if (r == 0 && off == len && d->state != ST_HEADER)
			return (ssize_t)off;
	}
}

size_t ws_header_len(uint64_t payload_len, bool masked)
{
	size_t n = payload_len < 126 ? 2 : payload_len <= 0xffff ? 4 : 10;

	return masked ? n + 4 : n;
}

static void store_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = n; i-- > 0; v >>= 8)
		p[i] = (uint8_t)v;
}

ssize_t ws_encode_header(uint8_t *out, size_t cap, enum ws_opcode op, bool fin,
			 uint64_t payload_len, const uint8_t mask[4])
{
	size_t need = ws_header_len(payload_len, mask != NULL);
	size_t pos = 2;

	if (!is_known_opcode((uint8_t)op) || payload_len >> 63)
		return -EINVAL;
	if (is_control((uint8_t)op) && (!fin || payload_len > WS_CONTROL_MAX))
		return -EINVAL;
	if (cap < need)
		return -ENOSPC;
	out[0] = (uint8_t)((fin ? 0x80 : 0) | op);
	if (payload_len < 126) {
		out[1] = (uint8_t)payload_len;
	} else if (payload_len <= 0xffff) {
		out[1] = 126;
		store_be(out + 2, payload_len, 2);
		pos = 4;
	} else {
		out[1] = 127;
		store_be(out + 2, payload_len, 8);
		pos = 10;
	}
	if (mask) {
		out[1] |= 0x80;
		memcpy(out + pos, mask, 4);
	}
	return (ssize_t)need;
}

ssize_t ws_encode_close(uint8_t *out, size_t cap, uint16_t code, const char *reason,
			size_t reason_len)
{
	size_t len = 0;
	ssize_t n;

	if (code && !ws_close_code_is_valid(code))
		return -EINVAL;
	if (code) {
		if (reason_len > WS_CLOSE_REASON_MAX)
			reason_len = utf8_trim_partial(reason, WS_CLOSE_REASON_MAX);
		len = 2 + reason_len;
	}
	n = ws_encode_header(out, cap, WS_OP_CLOSE, true, len, NULL);
	if (n < 0)
		return n;
	if (cap - (size_t)n < len)
		return -ENOSPC;
	if (code) {
		store_be(out + n, code, 2);
		if (reason_len)
			memcpy(out + n + 2, reason, reason_len);
	}
	return n + (ssize_t)len;
}

static ssize_t encode_control(uint8_t *out, size_t cap, enum ws_opcode op,
			      const uint8_t *payload, size_t len)
{
	ssize_t n = ws_encode_header(out, cap, op, true, len, NULL);

	if (n < 0)
		return n;
	if (cap - (size_t)n < len)
		return -ENOSPC;
	if (len)
		memcpy(out + n, payload, len);
	return n + (ssize_t)len;
}

ssize_t ws_encode_ping(uint8_t *out, size_t cap, const uint8_t *payload, size_t len)
{
	return encode_control(out, cap, WS_OP_PING, payload, len);
}

ssize_t ws_encode_pong(uint8_t *out, size_t cap, const uint8_t *payload, size_t len)
{
	return encode_control(out, cap, WS_OP_PONG, payload, len);
}
