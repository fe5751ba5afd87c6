/*
 * core/session.h - what the rest of core sees of STOMP sessions (STOMP 1.0/1.1/1.2): the
 * net callbacks that feed a connection's bytes in, the xmsg handlers for what owners send
 * back (receipts' DONE, topic and queue deliveries, auth results), the per-shard timers,
 * and the shard's local topic table (topic -> this shard's subscribers) that a
 * XMSG_TOPIC_DELIVER fans out to. The session itself is split by concern: session.c
 * (connection life, command table), connect.c, publish.c, subscription.c, delivery.c,
 * ack.c, transaction.c, receipt.c; message.c builds messages, destname.c names them.
 *
 * Thread: the shard that accepted the connection, for the session's whole life.
 */
#ifndef CORE_SESSION_H
#define CORE_SESSION_H

#include "core/strmap.h"
#include "core/xmsg.h"
#include "proto/stomp_parse.h"

#include <stdbool.h>
#include <stdint.h>

struct shard;
struct net_conn;
struct hmsg;

enum session_ack_mode { SESSION_ACK_AUTO = 0, SESSION_ACK_CLIENT, SESSION_ACK_INDIVIDUAL };

/* This shard's subscribers of the topics and patterns it has subscriptions for. */
struct local_table {
	struct strmap topics;		/* "/topic/x" -> struct local_topic */
	struct sub *patterns;		/* pattern subscriptions on this shard */
	uint32_t npatterns;
};

/* What the session layer keeps per shard (struct shard embeds it; the session files alone
 * touch it). */
struct session_shard {
	struct local_table local;
	struct session *hb_list;	/* sessions with heart-beats or awaiting CONNECT */
	uint32_t npaused;		/* sessions not read while xrings are backlogged */
	uint64_t *closing;		/* conn refs to close after this batch */
	uint32_t nclosing;
	uint32_t closing_cap;
	/* scratch for one frame at a time */
	struct stomp_frame *frame;	/* the frame being handled */
	char *parse_scratch;		/* unescaped header copies */
	size_t parse_scratch_cap;
	struct header_set *header_set;	/* message_build's: the headers a MESSAGE keeps */
	char *key_buf;			/* vhost-scoped destination keys */
	size_t key_cap;
	char *name_buf;			/* destination names normalised (/amq/queue/X -> /queue/X) */
	size_t name_cap;
	char *enc_buf;			/* encoder scratch for ERROR/RECEIPT/CONNECTED */
	size_t enc_cap;
	uint64_t msg_seq;		/* message-id counter */
	/* queue consumers to register again a little later: their owner let them go while
	 * this node still thinks it owns the queue (views differ for a moment) */
	struct consumer_retry *retry;
	uint32_t nretry;
	uint32_t retry_cap;
	uint64_t mem_checked_ms;
	bool mem_over;			/* allocator above the memory high-water mark */
	uint32_t limits_gen;		/* bumped when the shard's limits change (SIGHUP) */
};

/* Sets up / frees ss for a shard whose frames are limited by `limits`. */
struct hd_limits;
void session_shard_init(struct session_shard *ss, const struct hd_limits *limits);
void session_shard_fini(struct session_shard *ss);
/* The shard's limits (sh->limits) were just replaced: grows the parse scratch if the new
 * header-line limit needs more, and has each session take the new limits before its next
 * frame. Limits checked when something happens (queue length, subscriptions, outbound
 * bytes...) apply at once; heart-beat and CONNECT-timeout ones at the next connection. */
void session_shard_limits_changed(struct shard *sh);

/* net callbacks, called by the shard's loop */
void session_on_accept(struct shard *sh, struct net_conn *c);
size_t session_on_data(struct shard *sh, struct net_conn *c, const char *buf, size_t len);
void session_on_close(struct shard *sh, struct net_conn *c);
void session_on_drain(struct shard *sh, struct net_conn *c);

/* xmsg handlers for the connection side */
void session_on_done(struct shard *sh, const struct xmsg *m);
/* The node's placement changed (sh->placement is the new one): queue subscriptions whose
 * queue another node owns now register there. */
void session_on_placement(struct shard *sh);
/* XMSG_QUEUE_DROPPED: the consumer registers again with its queue's owner (after a short
 * wait when that is the owner that just let it go). */
void session_on_consumer_dropped(struct shard *sh, const struct xmsg *m);
/* Registers the consumers whose wait is over (the shard's tick). */
void session_retry_consumers(struct shard *sh, uint64_t now_ms);
void session_on_topic_deliver(struct shard *sh, const struct xmsg *m);
void session_on_queue_deliver(struct shard *sh, const struct xmsg *m);
/* An auth job came back from the auth thread (XMSG_AUTH_JOB). */
void session_on_auth_done(struct shard *sh, const struct xmsg *m);

/* Heart-beats, CONNECT timeouts. Call every few milliseconds with the current time. */
void session_tick(struct shard *sh, uint64_t now_ms);

/* Resumes reading on the sessions paused while xrings were backlogged (none parked now). */
void session_resume_paused(struct shard *sh);

/* Closes the sessions marked for closing outside session_on_data. Shard loop, each turn. */
void session_reap_closing(struct shard *sh);

/* For wsconn: STOMP bytes unwrapped from WebSocket messages; returns bytes consumed. */
struct session;
size_t session_stomp_input(struct shard *sh, struct session *s, const char *buf, size_t len);

/* True (and reading paused until the output drains) when more than max-outbound-bytes wait
 * to be written to s: a client that does not read what its own frames make us write
 * (receipts, errors, pongs) is not read either, instead of being queued for without bound. */
bool session_output_full(struct shard *sh, struct session *s);

/* The client half-closed (FIN). True keeps the connection to write the receipts still owed
 * for its earlier frames, then close it; false: close now. */
bool session_on_eof(struct shard *sh, struct net_conn *c);
/* For wsconn: the WebSocket layer closed (now: drop output; else after flush). */
void session_ws_closed(struct shard *sh, struct session *s, bool now);

/* Graceful stop: send each session an ERROR ("server shutting down") and close after flush. */
void session_close_all(struct shard *sh);

#endif
