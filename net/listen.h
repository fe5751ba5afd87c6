/*
 * net/listen.h - listening sockets shared across shards with SO_REUSEPORT.
 * Called from the main thread before shards start.
 */
#ifndef NET_LISTEN_H
#define NET_LISTEN_H

#include "core/base/hd_compiler.h"

#include <stdint.h>

/* Opens a non-blocking TCP listener on addr:port with SO_REUSEPORT (port 0: the kernel
 * picks one; every later call with the chosen port joins the same group). Returns the fd
 * and sets *bound_port, or a negative errno. */
HD_MUST_CHECK int net_listen_open(const char *addr, uint16_t port, int backlog, uint16_t *bound_port);

#endif
