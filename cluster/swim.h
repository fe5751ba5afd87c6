/*
 * cluster/swim.h - SWIM membership with the Lifeguard refinements, as a pure state machine.
 *
 * Fed time and packets, it answers with packets through a send callback: no sockets, no
 * clocks, no threads inside, so the same code runs on the cluster thread (cluster.c), in
 * the deterministic simulator (cluster/sim) and in the unit tests on a fake clock.
 *
 * Protocol (Das, Gupta, Motivala 2002, "SWIM"; Dadgar et al. 2017, "Lifeguard"):
 * - every probe period ping the next member of a shuffled round-robin; with no ack within
 *   the probe timeout, ask `indirect_checks` others to ping it (they nack when they get
 *   nothing); with still no ack by the end of the period, suspect it;
 * - a suspicion turns into dead after a timeout that scales with log N and shrinks as
 *   independent accusers confirm it (suspicion.h); the suspect refutes by gossiping a
 *   higher incarnation; a suspect target gets the suspicion in its ping (buddy system);
 * - the local health score (awareness.h) stretches our own timeouts while we miss acks;
 * - updates ride on every packet (broadcast.h) and on small gossip packets to a few random
 *   members every gossip interval; push-pull exchanges full state over the transport's
 *   stream channel (join, anti-entropy, reconnecting to dead members after a partition).
 *
 * One instance per node; every call on the same thread (the cluster thread), with a
 * now_ms that never goes backwards. Member pointers stay valid until the next call.
 */
#ifndef CLUSTER_SWIM_H
#define CLUSTER_SWIM_H

#include "cluster/suspicion.h"
#include "cluster/wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum swim_state {
	SWIM_ALIVE = WIRE_ST_ALIVE,
	SWIM_SUSPECT = WIRE_ST_SUSPECT,
	SWIM_DEAD = WIRE_ST_DEAD,
	SWIM_LEFT = WIRE_ST_LEFT,
};

struct swim_config {
	char name[WIRE_NAME_MAX + 1];		/* this node's name, unique in the cluster */
	char cluster[WIRE_CLUSTER_MAX + 1];	/* packets of other clusters are dropped */
	struct wire_addr addr;			/* our gossip address as peers should use it */
	uint8_t meta[WIRE_META_MAX];		/* opaque metadata carried in ALIVE */
	size_t meta_len;
	bool has_key;				/* authenticate packets with key */
	uint8_t key[WIRE_KEY_LEN];
	uint32_t probe_interval_ms;		/* protocol period, default 1000 */
	uint32_t probe_timeout_ms;		/* direct ack wait, default 500 */
	uint32_t indirect_checks;		/* k helpers for ping-req, default 3 */
	uint32_t suspicion_mult;		/* min timeout = mult*log10(N)*period, default 4 */
	uint32_t suspicion_max_mult;		/* max timeout = this * min, default 6 */
	uint32_t retransmit_mult;		/* sends per update = mult*ceil(log10(N+1)), 4 */
	uint32_t awareness_max;			/* local health multiplier cap, default 8 */
	uint32_t gossip_interval_ms;		/* extra gossip packets; 0 = piggyback only, 200 */
	uint32_t gossip_nodes;			/* members per gossip round, default 3 */
	uint32_t gossip_to_dead_ms;		/* keep gossiping to the dead this long, 30000 */
	uint32_t push_pull_interval_ms;		/* anti-entropy (scaled up past 32 nodes); 0 = off */
	uint32_t reconnect_interval_ms;		/* push-pull with a random dead member; 0 = off */
	uint32_t reap_ms;			/* forget dead/left members after this, 15 min */
	uint32_t max_members;			/* table limit (hostile packets), default 65536 */
	uint32_t max_packet;			/* UDP payload budget, default WIRE_UDP_MAX */
	uint64_t seed;				/* PRNG seed (shuffles, random picks) */
};

struct swim_member {
	char *name;			/* owned, NUL-terminated */
	uint64_t name_hash;
	struct wire_addr addr;
	enum swim_state state;
	uint32_t incarnation;
	uint8_t *meta;			/* owned; meta_len bytes */
	uint16_t meta_len;
	uint64_t state_change_ms;	/* local time of the last state change */
	uint64_t last_contact_ms;	/* last direct sign of life (ack, ping); 0 = never */
	struct suspicion *suspicion;	/* while SUSPECT */
	size_t suspect_idx;		/* position in the suspect list while SUSPECT */
	struct swim_member *hnext;	/* name hash chain */
};

/* What the instance asks of its host. All callbacks run inside swim_* calls. */
struct swim_io {
	void *arg;
	/* Sends one datagram; buf is only valid during the call. */
	void (*send)(void *arg, const struct wire_addr *to, const uint8_t *buf, size_t len);
	/* Asks for a push-pull exchange with `to` over the stream channel: send
	 * swim_encode_state's bytes, feed the answer to swim_merge_state. May be NULL. */
	void (*push_pull)(void *arg, const struct wire_addr *to);
	/* A member was added (old_state < 0), changed state or incarnation. May be NULL. */
	void (*on_change)(void *arg, const struct swim_member *m, int old_state);
};

struct swim_stats {
	uint64_t pkts_in;
	uint64_t bytes_in;
	uint64_t pkts_out;
	uint64_t bytes_out;
	uint64_t dropped[WIRE_E_MSG + 1];	/* by WIRE_E_* code */
	uint64_t dropped_misdirected;		/* a ping meant for another node */
	uint64_t probes;
	uint64_t probes_failed;			/* ended in a suspicion */
	uint64_t indirect_sent;			/* ping-reqs we sent */
	uint64_t nacks_sent;
	uint64_t suspicions;			/* members we moved to suspect */
	uint64_t refutes;			/* times we refuted a suspicion of ourselves */
	uint64_t declared_dead;			/* our suspicion timers that fired */
	uint64_t conflicts;			/* ALIVE for a live name at another address */
	uint64_t push_pulls;			/* states merged */
	uint64_t members_refused;		/* new members refused at max_members */
};

struct swim;

/* Fills defaults (name, cluster and addr left empty). */
void swim_config_defaults(struct swim_config *cfg);

/* Creates an instance whose only member is itself (alive, incarnation 0). cfg and io are
 * copied. Returns NULL when cfg is unusable (empty name, name or cluster too long). */
struct swim *swim_create(const struct swim_config *cfg, const struct swim_io *io,
			 uint64_t now_ms);
void swim_destroy(struct swim *s);

/* Handles one datagram from `from`. Returns 0, or the negative WIRE_E_* code it was
 * dropped for (also counted in stats). buf is only read during the call. */
int swim_on_packet(struct swim *s, uint64_t now_ms, const struct wire_addr *from,
		   const uint8_t *buf, size_t len);

/* Runs every timer due at now_ms (probes, indirect probes, suspicion timeouts, gossip,
 * push-pull). Call it at swim_next_deadline_ms or later. */
void swim_tick(struct swim *s, uint64_t now_ms);

/* The earliest time swim_tick has work to do. */
uint64_t swim_next_deadline_ms(const struct swim *s);

/* Encodes our whole member table as a push-pull packet (header, MAC) into a new buffer
 * *out (the caller hd_frees it). Returns its length. */
size_t swim_encode_state(struct swim *s, bool join, uint8_t **out);

/* Merges a peer's push-pull packet. Returns 0, or a negative WIRE_E_* code. *is_join (may
 * be NULL) says whether the peer was joining. */
int swim_merge_state(struct swim *s, uint64_t now_ms, const uint8_t *buf, size_t len,
		     bool *is_join);

/* Adds a member as alive at incarnation 0 with meta[0..meta_len) without gossiping it: for
 * bootstrapping the simulator and tests only (real nodes learn members by push-pull). */
void swim_seed_member(struct swim *s, uint64_t now_ms, const char *name,
		      const struct wire_addr *addr, const uint8_t *meta, size_t meta_len);

/* Starts a graceful leave: gossips LEFT about ourselves and stops probing. Keep ticking
 * and feeding packets until swim_leave_spread (or a deadline) before destroying. */
void swim_leave(struct swim *s, uint64_t now_ms);

/* Whether our LEFT has been sent often enough (or nobody is left to tell). */
bool swim_leave_spread(const struct swim *s);

/* Replaces our metadata and gossips it with a new incarnation. No-op when unchanged. */
void swim_set_meta(struct swim *s, uint64_t now_ms, const uint8_t *meta, size_t len);

/* Member table, ourselves included, in no particular order. */
size_t swim_member_count(const struct swim *s);
const struct swim_member *swim_member_at(const struct swim *s, size_t i);
const struct swim_member *swim_find(const struct swim *s, const char *name);
const struct swim_member *swim_self(const struct swim *s);

/* Members alive or suspect, ourselves included (the N of the log N scalings). */
uint32_t swim_num_live(const struct swim *s);
/* Members in each state, ourselves included. */
uint32_t swim_num_in_state(const struct swim *s, enum swim_state st);

int swim_health_score(const struct swim *s);
const struct swim_stats *swim_get_stats(const struct swim *s);
/* Updates waiting in the piggyback queue. */
size_t swim_pending_broadcasts(const struct swim *s);

/* "alive", "suspect", "dead", "left". */
const char *swim_state_name(enum swim_state st);

#endif
