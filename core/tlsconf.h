/*
 * core/tlsconf.h - the node's certificates as TLS contexts built from the configuration
 * (--tls-cert, --tls-key, --tls-ca): one for the client TLS listeners, handed to every
 * shard, and with --route-tls one for the node links, handed to the route; both at start
 * and again on SIGHUP (new connections get the new certificates; live ones keep theirs).
 *
 * Main thread.
 */
#ifndef CORE_TLSCONF_H
#define CORE_TLSCONF_H

#include "core/config.h"

#include <stdbool.h>
#include <stdint.h>

struct net_tls_ctx;
struct shard;

/* True when the configuration asks for TLS listeners (a certificate or a key is set). */
bool tlsconf_enabled(const struct herald_config *cfg);

/* Loads the certificate, key and client CA named in cfg and publishes them to the n
 * shards. Returns 0, or -1 after logging why (a missing or unreadable file, a key that does
 * not match, only one of certificate and key): nothing is published then. */
int tlsconf_load(const struct herald_config *cfg, struct shard **shards, uint32_t n);

/* The node links' context (--route-tls): this node's certificate and key, presented as
 * server on accepted links and as client on dialled ones; with --tls-ca the peer's
 * certificate must chain to it on both ends (mutual TLS), without it links are encrypted
 * and only the cluster-key handshake authenticates. Returns 0 with *out holding one
 * reference, or -1 after logging why (no certificate or key, files that do not load). */
int tlsconf_route_ctx(const struct herald_config *cfg, struct net_tls_ctx **out);

#endif
