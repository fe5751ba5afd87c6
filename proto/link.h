/*
 * proto/link.h - the node-link wire format: how two Herald nodes talk over a route TCP
 * connection (docs/cluster.md, "Node links"). Pure: no I/O, no allocation, no globals, no
 * crypto (the caller computes and checks the handshake MACs).
 *
 * Every frame: u32 length (big-endian, counts type + body) | u8 type | body.
 * Integers are big-endian; str16 = u16 length + bytes; str32 = u32 length + bytes.
 *
 *   HELLO     1  u8 version (LINK_VERSION) | 32-byte nonce | str16 cluster | str16 node
 *   AUTH      2  32-byte MAC
 *   INTEREST  3  u8 op (LINK_ADD | LINK_DEL) | u8 kind (LINK_TOPIC | LINK_PATTERN)
 *                | u32 seq | str32 name
 *   ACK       4  u32 seq (every INTEREST up to seq is in force on the sender's shards)
 *   MESSAGE   5  u16 flags | u32 dest_len | u32 tail_off | u32 tail_len | u32 msgid_off
 *                | u32 msgid_len | u32 body_len | u32 tail10_off | u32 tail10_len
 *                | u32 tail11_off | u32 tail11_len | bytes (to the frame's end)
 *   QUEUE     6  u8 op | u16 shard | u32 seq | u32 arg | u64 key | u64 conn | u64 tag
 *                | str32 name | for SEND, DELIVER, RETURN and HANDOVER (whose message
 *                names the queue, so name is empty): the MESSAGE fields and bytes
 *
 *   BYE       7  (empty) this node is leaving: own none of its queues from now on (the
 *                hand-over of what it held follows on the same link)
 *
 * QUEUE carries one queue operation between a client's node and the queue's owner node
 * (core/route.c says what each field means for each op); its name is never empty when it
 * has no message.
 *
 * MESSAGE carries a message buffer as built once by its publisher's node (core/hmsg.h):
 * `bytes` is the destination key, a NUL, the message id (and a NUL), then the encoded
 * MESSAGE tail(s); the offsets are into `bytes`. The decoder checks every offset and length
 * against the frame, so a peer cannot make the receiver read outside it.
 *
 * Types are append-only; a receiver refuses a type it does not know (the link is
 * versioned by HELLO, so an unknown type is a broken or hostile peer).
 */
#ifndef PROTO_LINK_H
#define PROTO_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINK_VERSION 1
#define LINK_NONCE_LEN 32
#define LINK_MAC_LEN 32
#define LINK_NAME_MAX 127		/* cluster and node names */
#define LINK_FRAME_HDR 5		/* u32 length + u8 type */
#define LINK_MESSAGE_HDR (LINK_FRAME_HDR + 2 + 10 * 4)	/* a MESSAGE frame before bytes */
#define LINK_INTEREST_HDR (LINK_FRAME_HDR + 1 + 1 + 4 + 4)	/* before the name */
#define LINK_QUEUE_HDR (LINK_FRAME_HDR + 1 + 2 + 4 + 4 + 3 * 8 + 4)	/* before the name */
#define LINK_QUEUE_MESSAGE_HDR (LINK_QUEUE_HDR + 2 + 10 * 4)	/* a QUEUE with a message, before its bytes */

enum link_type {
	LINK_HELLO = 1,
	LINK_AUTH = 2,
	LINK_INTEREST = 3,
	LINK_ACK = 4,
	LINK_MESSAGE = 5,
	LINK_QUEUE = 6,
	LINK_BYE = 7,
};

/* QUEUE ops */
enum {
	LINK_Q_SEND = 1,	/* a message for the queue's owner */
	LINK_Q_DONE = 2,	/* the owner's answer to a receipted SEND or consumer (arg: error) */
	LINK_Q_ADD = 3,		/* a consumer (arg: prefetch; tag: ack mode | epoch << 8) */
	LINK_Q_DEL = 4,		/* a consumer left */
	LINK_Q_ACK = 5,		/* ACK/NACK/credit (arg: mode; tag) */
	LINK_Q_DELIVER = 6,	/* a delivery to a consumer (arg: flags, ack mode, epoch; tag) */
	LINK_Q_RETURN = 7,	/* a delivery its consumer was gone for (arg: ack mode; tag) */
	LINK_Q_HANDOVER = 8,	/* a held message moving to the queue's new owner (arg: redelivered) */
	LINK_Q_DROPPED = 9,	/* the owner let a consumer go (the queue moved): register again */
	LINK_Q_REPL_SEND = 10,	/* a message for a queue's backup (key: rseq; arg: flags) */
	LINK_Q_REPL = 11,	/* a replication operation (key: rseq; arg: op), or its ACK */
};

enum { LINK_DEL = 0, LINK_ADD = 1 };
enum { LINK_TOPIC = 0, LINK_PATTERN = 1 };

/* Decoder results (negative); 0 from link_frame_next means "need more bytes". */
enum {
	LINK_ERR_TOO_BIG = -1,		/* the length prefix passes the caller's limit */
	LINK_ERR_MALFORMED = -2,	/* a body that does not parse, or an unknown type */
	LINK_ERR_VERSION = -3,		/* HELLO of another link version */
};

/* One frame, its body a view into the caller's buffer. */
struct link_frame {
	uint8_t type;
	const uint8_t *body;
	uint32_t body_len;
};

struct link_hello {
	uint8_t version;
	const uint8_t *nonce;		/* LINK_NONCE_LEN bytes */
	const char *cluster;		/* not NUL-terminated */
	uint16_t cluster_len;
	const char *node;
	uint16_t node_len;
};

struct link_interest {
	uint8_t op;			/* LINK_ADD | LINK_DEL */
	uint8_t kind;			/* LINK_TOPIC | LINK_PATTERN */
	uint32_t seq;
	const char *name;		/* not NUL-terminated */
	uint32_t name_len;
};

/* A MESSAGE's fields; same meaning as struct hmsg's (core/hmsg.h). */
struct link_message {
	uint16_t flags;
	uint32_t dest_len;
	uint32_t tail_off, tail_len;
	uint32_t msgid_off, msgid_len;
	uint32_t body_len;
	uint32_t tail10_off, tail10_len;	/* len 0: none */
	uint32_t tail11_off, tail11_len;	/* len 0: none */
	const uint8_t *bytes;
	uint32_t bytes_len;
};

/* A QUEUE operation. */
struct link_queue {
	uint8_t op;			/* LINK_Q_* */
	uint16_t shard;			/* the client's shard on the client's node */
	uint32_t seq;			/* receipt sequence (0: none) */
	uint32_t arg;			/* per op, see LINK_Q_* */
	uint64_t key;			/* consumer key */
	uint64_t conn;			/* the client's connection ref */
	uint64_t tag;			/* delivery tag, or per op */
	const char *name;		/* queue key (ops without a message), not NUL-terminated */
	uint32_t name_len;
	struct link_message msg;	/* ops with a message */
};

/* True for the ops that carry a message. */
bool link_queue_op_has_message(uint8_t op);

/* The first complete frame in buf[0..len). Returns the bytes it spans (> 0) and fills *f;
 * 0 when buf holds only part of a frame; LINK_ERR_TOO_BIG when its length passes
 * max_body (+1 for the type); LINK_ERR_MALFORMED for a zero length. */
long link_frame_next(const uint8_t *buf, size_t len, uint32_t max_body, struct link_frame *f);

/* Body decoders: 0, or LINK_ERR_MALFORMED (LINK_ERR_VERSION for a HELLO of another
 * version). Each checks every length against the body and refuses trailing bytes, names
 * that are empty or longer than LINK_NAME_MAX (HELLO), and an op or kind out of range. */
int link_decode_hello(const struct link_frame *f, struct link_hello *out);
int link_decode_auth(const struct link_frame *f, const uint8_t **mac);
int link_decode_interest(const struct link_frame *f, struct link_interest *out);
int link_decode_ack(const struct link_frame *f, uint32_t *seq);
int link_decode_bye(const struct link_frame *f);
/* Also checks that dest_len < bytes_len and bytes[dest_len] is NUL, that each tail and the
 * message id lie inside bytes after the destination, and that body_len <= tail_len. A 1.0
 * or 1.1 tail of length 0 is absent: its offset is kept but not checked. bytes run to the
 * frame's end, so a MESSAGE has no trailing bytes to refuse. */
int link_decode_message(const struct link_frame *f, struct link_message *out);
/* A QUEUE: an op in range, a non-empty name and nothing after it for ops without a message;
 * an empty name and a valid MESSAGE part (as link_decode_message checks) for the others. */
int link_decode_queue(const struct link_frame *f, struct link_queue *out);

/* Encoders write one whole frame into out[0..cap) and return its length, or 0 (having
 * written nothing) when it does not fit or its decoder would refuse it: a HELLO name empty
 * or over LINK_NAME_MAX, an INTEREST op or kind out of range. */
size_t link_encode_hello(uint8_t *out, size_t cap, const uint8_t nonce[LINK_NONCE_LEN],
			 const char *cluster, size_t cluster_len, const char *node, size_t node_len);
size_t link_encode_auth(uint8_t *out, size_t cap, const uint8_t mac[LINK_MAC_LEN]);
size_t link_encode_interest(uint8_t *out, size_t cap, const struct link_interest *in);
size_t link_encode_ack(uint8_t *out, size_t cap, uint32_t seq);
size_t link_encode_bye(uint8_t *out, size_t cap);
/* Writes only the LINK_MESSAGE_HDR bytes before `bytes` (whose length m->bytes_len gives),
 * so the caller can send the message's buffer after it without a copy; neither reads
 * m->bytes nor checks the offsets. Returns LINK_MESSAGE_HDR, or 0 when cap is smaller or
 * the frame's length would not fit its u32 prefix. */
size_t link_encode_message_head(uint8_t *out, size_t cap, const struct link_message *m);

/* A QUEUE without a message, whole. */
size_t link_encode_queue(uint8_t *out, size_t cap, const struct link_queue *q);
/* A QUEUE with message m: the LINK_QUEUE_MESSAGE_HDR bytes before m's bytes (which the
 * caller sends after it), as link_encode_message_head. */
size_t link_encode_queue_head(uint8_t *out, size_t cap, const struct link_queue *q,
			      const struct link_message *m);

#endif
