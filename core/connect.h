/*
 * core/connect.h - CONNECT (and STOMP) and heart-beat negotiation for one session: version,
 * heart-beat header, the login (checked on the shard or on the auth thread), CONNECTED;
 * then heart-beats both ways, token expiry and the CONNECT deadline (session_tick, in
 * core/session.h). Spec: STOMP 1.2 "Connecting", "Heart-beating".
 *
 * Thread: the session's shard.
 */
#ifndef CORE_CONNECT_H
#define CORE_CONNECT_H

#include "proto/stomp_parse.h"

struct session;
struct shard;

/* The CONNECT/STOMP frame handler. */
void connect_on_connect(struct shard *sh, struct session *s, const struct stomp_frame *f);

/* The shard's heart-beat watch list: sessions with heart-beats, a token expiry or a
 * CONNECT still to come. session_tick walks it. */
void session_hb_list_add(struct shard *sh, struct session *s);
void session_hb_list_remove(struct shard *sh, struct session *s);

/* Frees what CONNECT left while its login was decided (wiped: it held a password). */
void connect_pending_free(struct session *s);

#endif
