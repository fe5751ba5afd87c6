/*
 * core/session_state.h - the state of one STOMP session, shared by the files that implement
 * it (session.c: connection life and the command table; connect.c, receipt.c, publish.c,
 * subscription.c, delivery.c, ack.c, transaction.c: one concern each). Nothing outside
 * those files includes this; the rest of core sees only core/session.h.
 *
 * Thread: the shard that accepted the connection, for the session's whole life.
 */
#ifndef CORE_SESSION_STATE_H
#define CORE_SESSION_STATE_H

#include "auth/acl.h"
#include "core/xmsg.h"
#include "net/loop.h"
#include "proto/stomp_parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct auth_identity;
struct pending_connect;
struct receipt_wait;
struct shard;
struct sub;
struct tx;
struct wsconn;

enum sub_kind { SUB_TOPIC = 0, SUB_PATTERN, SUB_QUEUE };

enum session_state { SESSION_AWAIT_CONNECT = 0, SESSION_CONNECTED };

enum close_mode { CLOSE_NONE = 0, CLOSE_AFTER_FLUSH, CLOSE_NOW };

struct session {
	struct net_conn *conn;
	struct wsconn *ws;	/* NULL for plain TCP */
	struct stomp_parser parser;
	uint8_t state;
	uint8_t close_mode;
	bool in_data;
	bool on_hb_list;
	bool paused;		/* reading stopped while xrings are backlogged */
	bool disconnecting;	/* DISCONNECT seen or a frame refused: later input is dropped */
	bool out_full;		/* reading stopped until our output to it drains */
	bool close_after_receipts;	/* half-closed by the client: close once none are owed */
	enum stomp_version version;
	uint16_t next_sub_idx;
	uint32_t nsubs;
	struct sub **subs;
	uint32_t hb_send_ms;	/* we send an EOL after this much silence; 0: never */
	uint32_t hb_recv_ms;	/* the client promised to send this often; 0: no check */
	uint64_t last_rx_ms;
	uint64_t last_tx_ms;
	uint64_t connect_deadline_ms;
	struct session *hb_next;
	struct session *hb_prev;
	struct receipt_wait *rw_head;
	struct receipt_wait *rw_tail;
	uint32_t next_seq;
	struct tx *txs;
	char vhost[64];
	char user[64];
	/* authentication */
	struct auth_identity *id;	/* who, fixed at CONNECT */
	struct pending_connect *pc;	/* CONNECT's leftovers while its login is decided */
	uint64_t expires_ms;		/* a token's expiry (monotonic ms); 0: never */
	uint64_t deny_at_ms;		/* a refused login's ERROR goes out then (rate limit) */
	uint64_t retry_at_ms;		/* AUTH_RETRY: ask again then */
	bool auth_pending;		/* the auth thread has our job */
	uint64_t accepted_ms;		/* when its connection was accepted (monotonic) */
	uint32_t limits_gen;		/* the shard's limits_gen its parser was given */
};

/* The conn ref (xmsg.h) that names this session's connection in owner replies. */
static inline uint64_t session_conn_ref(const struct session *s)
{
	return xmsg_conn_ref(s->conn->slot, s->conn->gen);
}

/* A header from two C strings, for the frames the server writes. */
#define HEADER_LIT(n, v) { { n, sizeof(n) - 1 }, { v, strlen(v) } }

/* session.c: writing and closing */

/* Queues bytes to the client (through the WebSocket layer when there is one). */
void session_write_bytes(struct shard *sh, struct session *s, const char *buf, size_t len);
/* Encodes a server frame into the shard's scratch and queues it. */
void session_write_frame(struct shard *sh, struct session *s, enum stomp_cmd cmd,
			 const struct stomp_header *h, size_t nh, const char *body, size_t body_len);
/* Marks s for closing: at the end of session_on_data when inside it, else after the
 * shard's current batch (session_reap_closing), so no caller finds s freed mid-loop. */
void session_close_later(struct shard *sh, struct session *s, enum close_mode mode);
/* The session a conn ref names, or NULL when that connection has gone. */
struct session *session_by_ref(struct shard *sh, uint64_t ref);
/* The open session a consumer key names (its slot and generation), or NULL. */
struct session *session_by_key(struct shard *sh, uint64_t key);
/* Is the session allowed to act on destination d? On a denial: ERROR naming it, close. */
bool session_authorized(struct shard *sh, struct session *s, const struct stomp_frame *f,
			enum acl_action a, const struct stomp_view *d);
/* Reading had stopped (login decided, backlog gone, output drained): take what waited. */
void session_read_again(struct shard *sh, struct session *s);

#endif
