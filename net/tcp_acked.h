/*
 * net/tcp_acked.h - the bytes a TCP peer has acknowledged: proof that it reads, however
 * slowly, even while our send queue stays full.
 */
#ifndef NET_TCP_ACKED_H
#define NET_TCP_ACKED_H

#include <stdint.h>

/* Sets *out to the bytes the peer of TCP socket fd has acknowledged so far. Returns 0, or a
 * negative errno (-ENOTSUP on kernels without the counter). */
int net_tcp_bytes_acked(int fd, uint64_t *out);

#endif
