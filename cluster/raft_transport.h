/*
 * cluster/raft_transport.h - C-Raft's libuv transport (struct raft_uv_transport) over TCP
 * with the cluster key proved both ways before Raft sees a byte: C-Raft's own TCP
 * transport trusts whoever connects, and a Raft port that trusts anyone would let anyone
 * rewrite the cluster's view.
 *
 * Handshake on every connection (the dialler speaks first; fixed sizes, 3 s at most):
 *   dialler  -> HELLO (magic, version, its raft id, its address, nonce)
 *   listener -> HELLO (the same of its own)
 *   dialler  -> PROOF = HMAC-SHA256(key, "herald-raft-dial"   | both nonces | both ids)
 *   listener -> PROOF = HMAC-SHA256(key, "herald-raft-listen" | both nonces | both ids)
 * The listener hands the stream to Raft once the dialler's proof checks out and its own is
 * written; the dialler once the listener's proof checks out. Nothing else is sent until
 * then, so no Raft byte is ever read by the handshake.
 *
 * Thread: the controller thread's libuv loop, as all of C-Raft.
 */
#ifndef CLUSTER_RAFT_TRANSPORT_H
#define CLUSTER_RAFT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>
#include <uv.h>

#define RAFT_TRANSPORT_KEY_LEN 32

/* Binds the listening socket on bind_addr:port (0: pick one) so the real port is known
 * before raft_init; listening starts when C-Raft asks. 0 or a negative errno (logged). */
int raft_transport_init(struct raft_uv_transport *t, uv_loop_t *loop, const char *bind_addr,
			uint16_t port, const uint8_t key[RAFT_TRANSPORT_KEY_LEN]);
/* The port the listener got. */
uint16_t raft_transport_port(const struct raft_uv_transport *t);
/* Frees what raft_transport_init made, after C-Raft closed the transport. */
void raft_transport_fini(struct raft_uv_transport *t);

#endif
