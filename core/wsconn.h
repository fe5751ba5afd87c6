/*
 * core/wsconn.h - STOMP over WebSocket in front of a session: the HTTP/1.1 upgrade (or a
 * small page for a plain GET), RFC 6455 frames in (unmasked in place, payload fed to the
 * session's STOMP parser as a byte stream), frames out (one WebSocket message per STOMP
 * frame, text unless the body is not UTF-8, decided once per message by hmsg flags).
 *
 * Thread: the shard owning the connection.
 */
#ifndef CORE_WSCONN_H
#define CORE_WSCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wsconn;
struct shard;
struct session;
struct net_conn;
struct net_loop;
struct hmsg;

/* Bytes reserved in front of a MESSAGE head for the WebSocket frame header. */
#define WSCONN_HEAD_ROOM 10

struct http_upgrade_config;

/* cfg (the shard's) must outlive the connection. */
struct wsconn *wsconn_create(const struct http_upgrade_config *cfg);
void wsconn_destroy(struct wsconn *ws);
/* The STOMP frame limit changed (SIGHUP): the WebSocket message limit follows it. */
void wsconn_set_max_frame(struct wsconn *ws, uint64_t max_frame_bytes);

/* Raw bytes from the socket (buf is writable memory: unmasking happens in place).
 * Returns bytes consumed; drives session_stomp_input and session_ws_closed. With len 0 it
 * retries STOMP bytes left over from an earlier call (after a backpressure pause). */
size_t wsconn_input(struct shard *sh, struct wsconn *ws, struct net_conn *c, const char *buf,
		    size_t len, struct session *s);

/* Starts the closing handshake from our side (RFC 6455 7.1.2) when the STOMP session ends
 * (DISCONNECT, ERROR, shutdown): queues a close frame with `code` unless one was sent. */
void wsconn_send_close(struct net_loop *l, struct wsconn *ws, struct net_conn *c, uint16_t code);

/* Writes buf as one text message. */
void wsconn_write_text(struct net_loop *l, struct net_conn *c, const char *buf, size_t len);

/* The connect deadline passed: a connection still in its HTTP upgrade gets 408 and is
 * closed (true); one past it (false) is a STOMP session, for an ERROR frame. */
bool wsconn_http_timeout(struct shard *sh, struct wsconn *ws, struct net_conn *c,
			 struct session *s);

/* head[room..room+head_len) holds a STOMP MESSAGE head to be followed by tail_len bytes of
 * m's tail (the one its reader's version gets: hmsg_tail_for); writes the WebSocket header
 * for head + tail just before it and moves both to head[0]. Returns the new head length. */
size_t wsconn_prefix_head(char *head, size_t room, size_t head_len, const struct hmsg *m,
			  size_t tail_len);

#endif
