/*
 * proto/ws_frame.h - RFC 6455 framing for the server side: an incremental decoder for
 * client frames (section 5) and an encoder for server frames.
 * Pure: no I/O, no allocation, no globals. One decoder per connection, used by the thread
 * that owns the connection.
 *
 * Decoding never reassembles a message. STOMP over WebSocket is a byte stream, so the
 * payload of text and binary frames is unmasked in place in the caller's buffer and handed
 * back as spans the STOMP parser can eat at once; only frame headers (<= 14 bytes) and
 * control payloads (<= 125 bytes) are copied into the decoder, because they may straddle
 * two receive buffers. The message rules still hold without the message in memory:
 * fragmentation order (5.4), control frames between fragments (5.5), the size limit
 * (1009) from each frame header before its payload arrives, and UTF-8 for text (8.1),
 * checked as bytes pass and once more at FIN (1007). A text prefix may already have gone
 * to STOMP when the check fails; the connection closes with 1007 anyway.
 *
 * Receive loop (bytes arrive in arbitrary pieces; buf is writable):
 *
 *	size_t off = 0;
 *	while (off < len) {
 *		struct ws_event ev;
 *		ssize_t n = ws_decode(&c->ws, buf + off, len - off, &ev);
 *		if (n < 0)	// send ws_encode_close(c->ws.close_code, c->ws.reason), then close
 *			return fail(c);
 *		off += (size_t)n;
 *		switch (ev.kind) {
 *		case WS_EV_NONE:  break;			// everything consumed, need more
 *		case WS_EV_DATA:  stomp_feed(c, ev.data, ev.len); break;
 *		case WS_EV_PING:  queue ws_encode_pong(ev.data, ev.len); break;
 *		case WS_EV_PONG:  break;			// liveness only
 *		case WS_EV_CLOSE: queue ws_encode_close(ev.close_code == WS_CLOSE_NO_STATUS ?
				  0 : ev.close_code, NULL, 0), close after flush; break;
 *		}
 *	}
 */
#ifndef PROTO_WS_FRAME_H
#define PROTO_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/utf8.h"

/* RFC 6455 section 5.2; wire values. */
enum ws_opcode {
	WS_OP_CONTINUATION = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/* RFC 6455 section 7.4.1 (and the IANA registry for 1012..1014); wire values. */
enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL_ERROR = 1002,
	WS_CLOSE_UNSUPPORTED_DATA = 1003,
	WS_CLOSE_NO_STATUS = 1005,	/* never on the wire: the peer's close had no code */
	WS_CLOSE_ABNORMAL = 1006,	/* never on the wire: the TCP connection just ended */
	WS_CLOSE_INVALID_PAYLOAD = 1007,
	WS_CLOSE_POLICY_VIOLATION = 1008,
	WS_CLOSE_MESSAGE_TOO_BIG = 1009,
	WS_CLOSE_MANDATORY_EXTENSION = 1010,
	WS_CLOSE_INTERNAL_ERROR = 1011,
	WS_CLOSE_SERVICE_RESTART = 1012,
	WS_CLOSE_TRY_AGAIN_LATER = 1013,
};

/* Decoder errors: each names one rule; ws_close_code_of() gives the close code to send. */
enum ws_decode_err {
	WS_E_UNMASKED = -1,		/* 5.1: client frames must be masked (1002) */
	WS_E_RESERVED_BITS = -2,	/* 5.2: RSV1-3 set, no extension negotiated (1002) */
	WS_E_BAD_OPCODE = -3,		/* 5.2: opcode 3-7 or B-F (1002) */
	WS_E_CONTROL_TOO_LONG = -4,	/* 5.5: control payload over 125 bytes (1002) */
	WS_E_CONTROL_FRAGMENTED = -5,	/* 5.5: control frame without FIN (1002) */
	WS_E_BAD_LENGTH = -6,		/* 5.2: 64-bit length with the high bit set (1002) */
	WS_E_UNEXPECTED_CONTINUATION = -7, /* 5.4: continuation with no message open (1002) */
	WS_E_EXPECTED_CONTINUATION = -8, /* 5.4: new text/binary while one is open (1002) */
	WS_E_BAD_CLOSE_PAYLOAD = -9,	/* 5.5.1: close payload of exactly one byte (1002) */
	WS_E_BAD_CLOSE_CODE = -10,	/* 7.4: a code an endpoint must not send (1002) */
	WS_E_BAD_CLOSE_REASON = -11,	/* 5.5.1: close reason not UTF-8 (1007) */
	WS_E_BAD_UTF8 = -12,		/* 8.1: text message not UTF-8 (1007) */
	WS_E_TOO_BIG = -13,		/* 10.4: message over the configured limit (1009) */
};

/* Largest control payload (5.5) and longest close reason that fits beside a code. */
#define WS_CONTROL_MAX 125
#define WS_CLOSE_REASON_MAX 123
/* Longest frame header: 2 + 8 bytes of length + 4 of mask. A server header is <= 10. */
#define WS_HEADER_MAX 14

enum ws_event_kind {
	WS_EV_NONE = 0,	/* all input consumed, nothing to report: read more */
	WS_EV_DATA,	/* payload bytes of a text or binary message (see struct ws_event) */
	WS_EV_PING,	/* answer with a pong carrying the same bytes (5.5.2) */
	WS_EV_PONG,	/* unsolicited or answering our ping; no reply (5.5.3) */
	WS_EV_CLOSE,	/* the peer closes (5.5.1): echo its code (none if it sent none),
			 * flush, close TCP; unless our own close went out first (7.1.2) */
};

struct ws_event {
	enum ws_event_kind kind;
	/* DATA: unmasked payload, in place inside the buf given to ws_decode (len may be 0
	 * only when is_final). PING/PONG: the payload. CLOSE: the reason (UTF-8, checked).
	 * Control payloads live in the decoder and die with the next ws_decode call. */
	const uint8_t *data;
	size_t len;
	bool is_text;		/* DATA: the message is text (opcode 1), else binary */
	bool is_final;		/* DATA: the message ends with these bytes, UTF-8 checked */
	uint16_t close_code;	/* CLOSE: the peer's code, WS_CLOSE_NO_STATUS if none */
};

struct ws_decoder {
	uint64_t max_message;	/* bytes per message over all its fragments; 0 = no limit */
	const char *reason;	/* set with a negative return: fit for a close frame */
	uint16_t close_code;	/* set with a negative return: the code to close with */
	int err;		/* first error (WS_E_*); every later call returns it again */
	/* the frame being read */
	uint8_t state;		/* header, data payload, control payload, closed, failed */
	uint8_t hdr_len;	/* header bytes gathered in hdr[] so far */
	uint8_t hdr_need;	/* header bytes this frame needs (2..14), known after 2 */
	uint8_t opcode;		/* enum ws_opcode of the current frame */
	bool fin;
	uint8_t mask_off;	/* payload bytes already unmasked, mod 4 */
	uint8_t ctl_len;	/* control payload bytes gathered in ctl[] */
	uint8_t hdr[WS_HEADER_MAX];
	uint8_t mask[4];
	uint64_t remaining;	/* payload bytes of the current frame not yet seen */
	/* the message being read */
	uint8_t msg_opcode;	/* WS_OP_TEXT or WS_OP_BINARY while one is open, else 0 */
	struct utf8_stream utf8;	/* text messages only */
	uint64_t msg_len;	/* payload bytes of the open message so far, all fragments */
	uint8_t ctl[WS_CONTROL_MAX];
};

/* Prepares d for a new connection. max_message bounds each message (all fragments);
 * 0 means no limit. */
void ws_decoder_init(struct ws_decoder *d, uint64_t max_message);

/* Decodes from buf[0..len), the next bytes of the connection (any split is fine: a frame
 * header or a payload may end anywhere). Unmasks payload bytes in place, so buf must be
 * writable and the unmasked bytes stay there for ev->data to point at.
 * Stops after one event. Returns the bytes consumed (<= len) with *ev filled in; when
 * ev->kind is WS_EV_NONE all of buf was consumed and nothing needs doing. Call again with
 * buf + consumed while bytes remain.
 * Returns a negative WS_E_* with d->close_code and d->reason set when the peer broke a
 * rule: send ws_encode_close(d->close_code, d->reason) and close the connection.
 * After WS_EV_CLOSE the decoder swallows every further byte (7.1.1: nothing may follow a
 * close frame) and reports WS_EV_NONE. */
ssize_t ws_decode(struct ws_decoder *d, uint8_t *buf, size_t len, struct ws_event *ev);

/* XORs p[0..len) with mask, starting at byte `off` of the mask (the payload offset mod 4
 * of p[0]); returns the offset for the byte after p[len-1]. Masking is its own inverse. */
unsigned ws_mask_apply(uint8_t *p, size_t len, const uint8_t mask[4], unsigned off);

/* Close code for a WS_E_* (1002, 1007 or 1009); 1011 for anything else. */
uint16_t ws_close_code_of(int err);
/* Reason string for a WS_E_* code; "" for anything else. */
const char *ws_strerror(int err);

/* True when an endpoint may send `code` in a close frame (7.4.1, 7.4.2): 1000-1003,
 * 1007-1014 and the application range 3000-4999. */
bool ws_close_code_is_valid(uint16_t code);

/* Bytes of a frame header for a payload of payload_len: 2, 4 or 10, plus 4 if masked. */
size_t ws_header_len(uint64_t payload_len, bool masked);

/* Writes a frame header: FIN bit, opcode, the shortest length encoding (5.2) and, when
 * mask != NULL, the masking key (clients and tests; a server passes NULL). Returns bytes
 * written or -ENOSPC; -EINVAL for a control frame with FIN clear or over 125 bytes, or an
 * opcode outside enum ws_opcode. The payload is the caller's to send after it: a server
 * MESSAGE goes out as iovec [header][STOMP head][shared STOMP tail]. */
ssize_t ws_encode_header(uint8_t *out, size_t cap, enum ws_opcode op, bool fin,
			 uint64_t payload_len, const uint8_t mask[4]);

/* Writes a whole unmasked close frame. code 0 sends no status (an empty close, the reply
 * to a close that had none); otherwise code then the reason (UTF-8), cut to 123 bytes at
 * a character boundary. Returns bytes written (<= 2 + 125), -ENOSPC, or -EINVAL for a
 * code that ws_close_code_is_valid() refuses (1005, 1006, 1015 never go on the wire). */
ssize_t ws_encode_close(uint8_t *out, size_t cap, uint16_t code, const char *reason,
			size_t reason_len);

/* Writes a whole unmasked ping or pong frame carrying payload[0..len). Returns bytes
 * written (<= 2 + 125), -ENOSPC, or -EINVAL when len > 125. */
ssize_t ws_encode_ping(uint8_t *out, size_t cap, const uint8_t *payload, size_t len);
ssize_t ws_encode_pong(uint8_t *out, size_t cap, const uint8_t *payload, size_t len);

#endif
