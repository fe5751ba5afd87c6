/*
 * cluster/wire.h - gossip packet format: versioned header, cluster name, a run of
 * length-prefixed messages, and an optional HMAC-SHA256 trailer (libsodium).
 *
 * Pure: no sockets, clocks or allocation. Decoding never copies: string views point into
 * the packet and die with it. Every length is checked against the packet end, so any
 * byte string is safe input (tests/fuzz/fuzz_swim_wire.c). Any thread may call these.
 *
 * Packet (all integers big-endian):
 *
 *   0  u8  'H'          magic
 *   1  u8  'G'
 *   2  u8  version      WIRE_VERSION; other versions are dropped
 *   3  u8  flags        WIRE_F_MAC: the last 32 bytes are HMAC-SHA256(key, bytes before)
 *   4  u8  cluster_len  then cluster_len bytes of cluster name (never NUL-terminated)
 *   .. messages until the end (or the MAC): u8 type, u16 len, len bytes of body
 *
 * A message of unknown type is skipped, so a newer peer may add types (append-only
 * numbering, memberlist's messageType list). Over TCP (push-pull) the same packet is
 * preceded by a u32 length.
 */
#ifndef CLUSTER_WIRE_H
#define CLUSTER_WIRE_H

#include "core/base/hd_compiler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
#define WIRE_F_MAC 0x01
#define WIRE_MAC_LEN 32			/* crypto_auth_hmacsha256_BYTES */
#define WIRE_KEY_LEN 32			/* crypto_auth_hmacsha256_KEYBYTES */
#define WIRE_UDP_MAX 1400		/* UDP payload budget, headers and MAC included */
#define WIRE_TCP_MAX (8u << 20)		/* push-pull packet limit, bytes */
#define WIRE_NAME_MAX 127		/* node name, bytes */
#define WIRE_CLUSTER_MAX 63		/* cluster name, bytes */
#define WIRE_META_MAX 200		/* opaque node metadata, bytes */
#define WIRE_MSG_HDR 3			/* u8 type + u16 len */

/* Message types: explicit and append-only (a number, once used, keeps its meaning). */
enum wire_type {
	WIRE_PING = 1,		/* seq, node = target, from = sender */
	WIRE_PING_REQ = 2,	/* seq, node = target, addr = target's, from, want_nack */
	WIRE_ACK = 3,		/* seq */
	WIRE_NACK = 4,		/* seq */
	WIRE_ALIVE = 5,		/* incarnation, node, addr, meta */
	WIRE_SUSPECT = 6,	/* incarnation, node, from = accuser */
	WIRE_DEAD = 7,		/* incarnation, node, from = accuser */
	WIRE_LEFT = 8,		/* incarnation, node (sent by the node itself) */
	WIRE_PUSH_PULL = 9,	/* push-pull header: join flag, STATE record count, from = sender */
	WIRE_STATE = 10,	/* push-pull record: incarnation, node, addr, state, meta */
};

/* Member states as they travel in WIRE_STATE records (append-only too). */
enum wire_state { WIRE_ST_ALIVE = 0, WIRE_ST_SUSPECT = 1, WIRE_ST_DEAD = 2, WIRE_ST_LEFT = 3 };

/* Negative return codes of the decoder. */
enum wire_err {
	WIRE_E_SHORT = 1,	/* shorter than a header */
	WIRE_E_MAGIC,		/* not a Herald gossip packet */
	WIRE_E_VERSION,		/* unknown version */
	WIRE_E_CLUSTER,		/* another cluster's packet */
	WIRE_E_MAC,		/* bad or missing MAC, or a MAC we have no key for */
	WIRE_E_MSG,		/* malformed message (length past the end, bad field) */
};

/* A network address: IPv4 or IPv6 plus port. family is 4 or 6 (0: none). */
struct wire_addr {
	uint8_t family;
	uint8_t ip[16];		/* 4 bytes used for IPv4 */
	uint16_t port;		/* host order */
};

/* A view into a packet: len bytes at ptr, not NUL-terminated. */
struct wire_str {
	const char *ptr;
	size_t len;
};

/* One decoded (or to-be-encoded) message; which fields count depends on type. */
struct wire_msg {
	enum wire_type type;
	uint32_t seq;			/* PING, PING_REQ, ACK, NACK */
	uint32_t incarnation;		/* ALIVE, SUSPECT, DEAD, LEFT, STATE */
	uint32_t count;			/* PUSH_PULL: STATE records that follow */
	struct wire_str node;		/* target or subject */
	struct wire_str from;		/* sender (PING, PING_REQ, PUSH_PULL) or accuser */
	struct wire_addr addr;		/* PING_REQ target, ALIVE and STATE subject */
	struct wire_str meta;		/* ALIVE, STATE; at most WIRE_META_MAX bytes */
	uint8_t state;			/* STATE: enum wire_state */
	bool flag;			/* PING_REQ: want a nack; PUSH_PULL: this is a join */
};

/* Builds one packet in caller memory. */
struct wire_writer {
	uint8_t *buf;
	size_t cap;		/* bytes owned, MAC room excluded */
	size_t len;		/* bytes used */
	bool mac;		/* a MAC trailer will be appended by wire_finish */
};

/* Starts a packet in buf[0..cap) for `cluster`, reserving MAC room when `mac`.
 * Returns 0, or -EMSGSIZE when the header does not fit or the name is too long. */
HD_MUST_CHECK int wire_begin(struct wire_writer *w, uint8_t *buf, size_t cap, const char *cluster,
			     bool mac);

/* Appends one message. Returns 0, or -EMSGSIZE (nothing written) when it does not fit or
 * a field is over its limit. */
HD_MUST_CHECK int wire_put(struct wire_writer *w, const struct wire_msg *m);

/* Appends a message already encoded by wire_encode_msg. Returns 0 or -EMSGSIZE. */
HD_MUST_CHECK int wire_put_raw(struct wire_writer *w, const uint8_t *msg, size_t len);

/* Bytes still free for messages. */
size_t wire_room(const struct wire_writer *w);

/* Appends the MAC when the writer was begun with one (key must then be non-NULL).
 * Returns the packet length. */
size_t wire_finish(struct wire_writer *w, const uint8_t key[WIRE_KEY_LEN]);

/* Encodes one message (type, len, body) into out[0..cap). Returns its length, or 0 when it
 * does not fit or a field is over its limit. */
size_t wire_encode_msg(const struct wire_msg *m, uint8_t *out, size_t cap);

/* Checks a whole packet: magic, version, cluster name, MAC (required exactly when key is
 * non-NULL). On success returns 0 and the message area in *body / *body_len (pointing into
 * buf); otherwise a negative WIRE_E_* code. */
HD_MUST_CHECK int wire_open(const uint8_t *buf, size_t len, const char *cluster,
			    const uint8_t *key, const uint8_t **body, size_t *body_len);

/* Decodes the next message from *pos (advanced past it), which must stay below end.
 * Returns 1 with *out filled, 0 at the end, or -WIRE_E_MSG. Unknown types are skipped. */
HD_MUST_CHECK int wire_next(const uint8_t **pos, const uint8_t *end, struct wire_msg *out);

/* Short static name of a WIRE_E_* code (positive or negative), for logs. */
const char *wire_strerror(int err);

/* Formats an address as "a.b.c.d:port" or "[v6]:port" into out. Returns out. */
char *wire_addr_format(const struct wire_addr *a, char *out, size_t cap);

bool wire_addr_eq(const struct wire_addr *a, const struct wire_addr *b);

/* Whether a view equals a NUL-terminated string. */
bool wire_str_eq(struct wire_str s, const char *cstr);

#endif
