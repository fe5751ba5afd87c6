/*
 * core/xmsg.h - every message kind that travels on an xring, in one list.
 * An xmsg is 32 bytes copied by value; `ptr`, when set, points to memory that belongs to
 * the receiving thread once pushed (it frees or keeps it). Kinds are append-only.
 *
 * A "conn ref" (a) names a connection on the sending shard: slot << 32 | generation, so a
 * reply for a connection that has since closed (and whose slot was reused) is recognised.
 * A "consumer key" names one queue subscription: shard, conn ref and subscription index.
 */
#ifndef CORE_XMSG_H
#define CORE_XMSG_H

#include <stdint.h>

enum xmsg_kind {
	XMSG_NONE = 0,
	/* connection shard -> destination owner */
	XMSG_PUBLISH = 1,	/* ptr: hmsg (one shard ref); a: conn ref; u32: receipt seq or 0;
				 * b: origin (route only; returned in XMSG_DONE), | XPUBLISH_RESENT */
	XMSG_TOPIC_INTEREST = 2,/* ptr: struct xname; u32: +1 / -1 shard interest in a topic */
	XMSG_PATTERN_INTEREST = 3,/* ptr: struct xname (pattern); u32: +1 / -1 */
	XMSG_QUEUE_CONSUMER_ADD = 4,/* ptr: struct xconsumer; b: origin (route only) */
	XMSG_QUEUE_CONSUMER_DEL = 5,/* ptr: struct xname (queue); a: consumer key; u32:
				 * XDEL_MOVING | epoch << XDELIVER_EPOCH_SHIFT when the consumer
				 * moves on: only an owner that has it under that epoch drops it,
				 * nobody forwards it (so it never undoes a newer registration) */
	XMSG_QUEUE_ACK = 6,	/* ptr: struct xname (queue); a: consumer key; b: tag; u32: XACK_*
				 * | the delivery's registration epoch << XDELIVER_EPOCH_SHIFT */
	XMSG_QUEUE_RETURN = 7,	/* ptr: hmsg; a: consumer key; b: tag; u32: the consumer's ack
				 * mode (undelivered: the consumer was gone when it arrived) */
	XMSG_QUEUE_FLOW = 8,	/* ptr: struct xname (queue); a: consumer key; u32: 1 pause, 0 resume */
	XMSG_SYNC = 9,		/* a: conn ref; u32: receipt seq; owner answers XMSG_DONE in order */
	/* destination owner -> connection shard */
	XMSG_DONE = 10,		/* a: conn ref; u32: receipt seq (0: none); b: XERR_* */
	XMSG_TOPIC_DELIVER = 11,/* ptr: hmsg (one shard ref) */
	XMSG_QUEUE_DELIVER = 12,/* ptr: hmsg (one shard ref); a: consumer key; b: tag;
				 * u32: XDELIVER_* flags | ack mode << XDELIVER_ACK_MODE_SHIFT
				 * | the consumer's registration epoch << XDELIVER_EPOCH_SHIFT */
	/* main -> shard */
	XMSG_STOP = 13,		/* begin graceful shutdown */
	/* shard <-> auth thread */
	XMSG_AUTH_JOB = 14,	/* ptr: struct auth_job (cookie: conn ref); run there, sent back */
	/* route <-> shards: queues across nodes (core/route.h) */
	XMSG_PLACEMENT = 15,	/* route -> shard; ptr: struct placement (one ref): who owns queues now */
	XMSG_QUEUE_HANDOVER = 16,/* ptr: hmsg; u32: redelivered; a: its rseq at the node handing
				 * it over; b: that node (placement hash). A held message moving
				 * to the queue's new owner (old owner -> route -> new owner) */
	XMSG_QUEUE_DROPPED = 17,/* owner -> consumer's shard; ptr: struct xname (queue); a: consumer
				 * key; b: the owner's node (placement hash). The owner let the
				 * consumer go (the queue moved): register again, if it is still
				 * the owner the consumer registered with */
	/* queue replication (docs/replication.md, core/replica.h): owner shard <-> route <->
	 * the backups' shards */
	XMSG_REPL_SEND = 18,	/* ptr: hmsg; a: rseq; b: the other node (target on the way out,
				 * streaming owner on the way in); u32: XREPL_F_* flags | the
				 * sender's view epoch << XREPL_EPOCH_SHIFT */
	XMSG_REPL_OP = 19,	/* ptr: struct xrepl_op; a: rseq; b: the other node, as above;
				 * u32: XREPL_* | the sender's view epoch << XREPL_EPOCH_SHIFT */
};

/* XMSG_REPL_OP operations; XMSG_REPL_SEND flags */
enum {
	XREPL_DELIVERED = 1,	/* the message went to a consumer that has not acked it (the
				 * op names the consumer: a new owner applies its ACKs) */
	XREPL_REMOVE = 2,	/* acked (or auto-acked on delivery, or dropped): gone */
	XREPL_RESET = 3,	/* a snapshot follows: forget the replica */
	XREPL_MARK = 4,		/* the end of a snapshot: acknowledge rseq */
	XREPL_ACK = 5,		/* backup -> owner: holds everything sent up to rseq */
	XREPL_RESYNC = 6,	/* route -> every shard (no name): the link to node b came up
				 * again; send each queue it backs a snapshot */
	XREPL_PROMOTE = 7,	/* old owner -> the backup placement made the queue's owner:
				 * "I stopped delivering; take your copy over" (a planned move:
				 * a node that joined takes its queues back whole) */
};
enum { XREPL_F_REDELIVERED = 1, XREPL_F_DELIVERED = 2 };
/* the low 8 bits: the op or flags; above them the low 24 bits of the sender's view epoch
 * (a backup refuses a stream from a node its newer view no longer calls the owner) */
#define XREPL_EPOCH_SHIFT 8
#define XREPL_LOW(u32) ((u32) & 0xffu)
#define XREPL_EPOCH(u32) ((u32) >> XREPL_EPOCH_SHIFT)

/* XMSG_QUEUE_ACK modes */
enum {
	XACK_ONE = 0,		/* b: tag acknowledged */
	XACK_UPTO = 1,		/* b: every unacked tag <= b acknowledged (STOMP client mode) */
	XNACK_ONE = 2,		/* b: tag requeued, redelivered */
	XNACK_UPTO = 3,		/* b: every unacked tag <= b requeued */
	XNACK_DROP_ONE = 4,	/* b: tag dropped (NACK with requeue:false) */
	XACK_CREDIT = 5,	/* b: deliveries the connection has taken off the wire queue */
};
/* XMSG_QUEUE_ACK u32 bit: a node the queue had moved away from sent it on to the owner
 * (never sent on twice: views that disagree for a moment must not bounce it) */
#define XACK_F_FORWARDED (1u << 8)
/* XMSG_QUEUE_DELIVER flags; the consumer's ack mode rides in bits 8..15 so a delivery that
 * comes back (XMSG_QUEUE_RETURN) says whether the owner already requeued it */
enum { XDELIVER_REDELIVERED = 1, XDELIVER_ACK_MODE_SHIFT = 8, XDELIVER_EPOCH_SHIFT = 16 };
#define XEPOCH_MASK 0xffffu	/* registration epochs travel in 16 bits */
enum { XDEL_MOVING = 1 };
/* XMSG_DONE results, in b's low 8 bits; the bits above carry back the request's own b (an
 * origin the route thread put there for a request from another node; 0 otherwise) */
enum { XERR_OK = 0, XERR_QUEUE_FULL = 1, XERR_MEMORY = 2, XERR_UNAVAILABLE = 3,
       XERR_UNREPLICATED = 4 };
#define XDONE_ERR(b) ((uint32_t)((b) & 0xff))
/* XMSG_PUBLISH b: a SEND the route sent again because the link it went out on broke before
 * its owner answered - the owner may have taken it in already, so it is delivered marked
 * redelivered (b's top bit; shifted out where b travels back as an origin) */
#define XPUBLISH_RESENT (1ull << 63)
#define XDONE_ORIGIN(b) ((b) >> 8)

struct xmsg {
	uint16_t kind;		/* enum xmsg_kind */
	uint16_t from;		/* sending shard id */
	uint32_t u32;		/* kind-specific, see above */
	uint64_t a;		/* kind-specific */
	uint64_t b;		/* kind-specific */
	void *ptr;		/* owned by the receiver once pushed */
};
_Static_assert(sizeof(struct xmsg) == 32, "xmsg is copied by value on hot paths");

/* A destination name sent across: one allocation, freed by the receiver. */
struct xname {
	uint32_t len;
	char name[];		/* NUL-terminated */
};

/* A replication operation (XMSG_REPL_OP) for one queue. DELIVERED also says who got the
 * message: the consumer key (numbered as the receiving node's shards number consumers),
 * the delivery tag and the registration epoch the consumer's ACK will name, so that a
 * backup taking the queue over applies that ACK instead of delivering the message again
 * (docs/replication.md, "ACKs after a failover"). Zero for the other ops. */
struct xrepl_op {
	uint64_t consumer;
	uint64_t tag;
	uint16_t reg_epoch;
	uint32_t len;
	char name[];		/* the queue, NUL-terminated */
};

/* A new queue consumer, as its connection's shard describes it to the queue's owner. */
struct xconsumer {
	uint64_t key;		/* consumer key */
	uint64_t conn_ref;	/* for the receipt: the owner answers XMSG_DONE(seq) */
	uint32_t seq;		/* receipt seq, 0 = none; answered before any delivery */
	uint32_t prefetch;	/* max unacked, 0 = unlimited */
	uint8_t ack_mode;	/* enum session ack mode: auto / client / client-individual */
	uint16_t epoch;		/* the subscription's owner_epoch: echoed in its deliveries */
	uint32_t len;
	char name[];		/* queue name, NUL-terminated */
};

static inline uint64_t xmsg_conn_ref(uint32_t slot, uint32_t gen)
{
	return (uint64_t)slot << 32 | gen;
}

/*
 * A consumer key names one queue subscription anywhere in the cluster:
 *   node (12 bits) | endpoint (8) | slot (20) | generation (12) | subscription index (12)
 * node: XMSG_NODE_SELF for this node's own connections (a node link will name others);
 * endpoint: the xring endpoint the deliveries go to, a shard id today (the route endpoint,
 * one column past the shards, once links exist); slot and generation: the connection there
 * (a reused slot has a new generation); subscription index: unique among a session's live
 * subscriptions (XMSG_KEY_SUBS at most).
 */
#define XMSG_NODE_SELF 0u
#define XMSG_NODE_UNKNOWN 0xfffu	/* a consumer on a node this one has no link to (a backup
					 * told of it by the queue's owner): counts as gone */
#define XMSG_KEY_NODES (1u << 12)
#define XMSG_KEY_ENDPOINTS (1u << 8)
#define XMSG_KEY_SLOTS (1u << 20)
#define XMSG_KEY_GEN_MASK ((1u << 12) - 1)
#define XMSG_KEY_SUBS (1u << 12)

static inline uint64_t xmsg_consumer_key(uint32_t node, uint32_t endpoint, uint32_t slot,
					 uint32_t gen, uint32_t sub)
{
	return (uint64_t)(node & (XMSG_KEY_NODES - 1)) << 52 |
	       (uint64_t)(endpoint & (XMSG_KEY_ENDPOINTS - 1)) << 44 |
	       (uint64_t)(slot & (XMSG_KEY_SLOTS - 1)) << 24 | (uint64_t)(gen & XMSG_KEY_GEN_MASK) << 12 |
	       (sub & (XMSG_KEY_SUBS - 1));
}
static inline uint32_t xmsg_key_node(uint64_t k) { return (uint32_t)(k >> 52); }
static inline uint32_t xmsg_key_shard(uint64_t k) { return (uint32_t)(k >> 44) & (XMSG_KEY_ENDPOINTS - 1); }
static inline uint32_t xmsg_key_slot(uint64_t k) { return (uint32_t)(k >> 24) & (XMSG_KEY_SLOTS - 1); }
static inline uint32_t xmsg_key_gen(uint64_t k) { return (uint32_t)(k >> 12) & XMSG_KEY_GEN_MASK; }
static inline uint32_t xmsg_key_sub(uint64_t k) { return (uint32_t)k & (XMSG_KEY_SUBS - 1); }

#endif
