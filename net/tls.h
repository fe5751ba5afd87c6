/*
 * net/tls.h - TLS (1.2 and 1.3, OpenSSL) under a loop's connections, for listeners added
 * with net_loop_add_tls_listener. The user above (a session) never sees it: on_data gets
 * plaintext, net_conn_out_* queues plaintext. OpenSSL runs on memory BIOs, so the loop's
 * own receives feed it and its own sendmsg writes what it produced: no socket is touched
 * by OpenSSL and nothing blocks the loop.
 *
 * A context (certificate, key, optional CA for the peer's certificate) is refcounted: a
 * loop takes the newest one for each connection it accepts or adopts and a connection
 * keeps the one it started with, so certificates are replaced (SIGHUP) without touching
 * live connections. Accepted connections are the TLS server, connections adopted with
 * net_loop_adopt_tls (an outbound dial) the client; both present the context's certificate
 * (a client only when the server asks for one).
 *
 * Threads: net_tls_ctx_create/ref/unref from any thread; the rest on the loop's thread.
 */
#ifndef NET_TLS_H
#define NET_TLS_H

#include "core/base/hd_compiler.h"

#include <stdbool.h>
#include <stddef.h>

struct net_conn;
struct net_tls_ctx;

/* Time a client gets to finish its handshake before the connection is closed, unless the
 * loop's configuration says otherwise (net_loop_config.tls_handshake_ms). */
#define NET_TLS_HANDSHAKE_MS 10000
/* Longest client-certificate common name kept (X.509's upper bound for a CN). */
#define NET_TLS_NAME_MAX 64

struct net_tls_config {
	const char *cert_file;		/* PEM chain, server certificate first */
	const char *key_file;		/* PEM private key */
	const char *ca_file;		/* PEM CAs peer certificates must chain to; NULL or "":
					 * clients are asked for none, servers are not checked */
	bool require_client_cert;	/* with ca_file: a client without one is refused */
};

/* Loads the files into a new context (one reference, the caller's). Returns 0, or
 * -1 with a reason (file and OpenSSL's words, no key material) in err. */
HD_MUST_CHECK int net_tls_ctx_create(const struct net_tls_config *cfg, struct net_tls_ctx **out,
				     char *err, size_t cap);
struct net_tls_ctx *net_tls_ctx_ref(struct net_tls_ctx *ctx);
/* Drops a reference (NULL: nothing); connections using it keep their own. */
void net_tls_ctx_unref(struct net_tls_ctx *ctx);

/* True when c runs TLS (came through a TLS listener, or net_loop_adopt_tls). */
bool net_conn_is_tls(const struct net_conn *c);
/* The common name of the certificate c's peer presented and the CA file verified, or
 * NULL (plain connection, no CA, no certificate asked or given, handshake not finished).
 * Valid while c is open. */
const char *net_conn_tls_peer_name(const struct net_conn *c);
/* "TLSv1.3" or "TLSv1.2" once c's handshake is done; NULL for a plain connection or before.
 * Static storage. */
const char *net_conn_tls_version(const struct net_conn *c);

#endif
