/*
 * cluster/meta.h - what a Herald node advertises in its membership metadata: where clients
 * reach it (address, STOMP and WebSocket ports), its shard count and a small load summary.
 * Carried opaquely by swim (WIRE_META_MAX bytes) and refreshed by gossip with a new
 * incarnation. Pure functions over caller memory; any thread.
 *
 * Layout (big-endian): u8 version (1), u16 stomp_port, u16 ws_port, u16 nshards,
 * u64 connections, u64 subscriptions, u64 msgs_per_s, u8 len + advertise address,
 * u16 route_port, u16 admin_port, u16 raft_port, u64 raft_id (appended later: a node that
 * does not send them has no links, no admin endpoint others may ask, no controller).
 * Decoders accept trailing bytes (a later version appends fields).
 */
#ifndef CLUSTER_META_H
#define CLUSTER_META_H

#include <stddef.h>
#include <stdint.h>

#define META_VERSION 1
#define META_ADDR_MAX 63

struct node_meta {
	char addr[META_ADDR_MAX + 1];	/* client-facing address, NUL-terminated */
	uint16_t stomp_port;
	uint16_t ws_port;
	uint16_t nshards;
	uint64_t connections;
	uint64_t subscriptions;
	uint64_t msgs_per_s;
	uint16_t route_port;		/* node links (core/route.h); 0: none */
	uint16_t admin_port;		/* its admin endpoint (on its gossip address); 0: none */
	uint16_t raft_port;		/* its controller's Raft port (cluster/controller.h); 0: none */
	uint64_t raft_id;		/* its Raft server id: new for every process */
};

/* Encodes m into out[0..cap). Returns the length, or 0 when it does not fit. */
size_t meta_encode(const struct node_meta *m, uint8_t *out, size_t cap);

/* Decodes buf[0..len). Returns 0, or -EINVAL for a short buffer or unknown version (*m is
 * then zeroed: a member whose metadata we cannot read shows no load). */
int meta_decode(const uint8_t *buf, size_t len, struct node_meta *m);

#endif
