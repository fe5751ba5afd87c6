/*
 * core/tlsconf.h - the client TLS listeners' certificates: a server context built from the
 * configuration (--tls-cert, --tls-key, --tls-ca) and handed to every shard, at start and
 * again on SIGHUP (new connections get the new certificates; live ones keep theirs).
 *
 * Main thread.
 */
#ifndef CORE_TLSCONF_H
#define CORE_TLSCONF_H

#include "core/config.h"

#include <stdbool.h>
#include <stdint.h>

struct shard;

/* True when the configuration asks for TLS listeners (a certificate or a key is set). */
bool tlsconf_enabled(const struct herald_config *cfg);

/* Loads the certificate, key and client CA named in cfg and publishes them to the n
 * shards. Returns 0, or -1 after logging why (a missing or unreadable file, a key that does
 * not match, only one of certificate and key): nothing is published then. */
int tlsconf_load(const struct herald_config *cfg, struct shard **shards, uint32_t n);

#endif
