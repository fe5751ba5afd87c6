/*
 * cluster/swim.c - the SWIM + Lifeguard state machine (see swim.h for the protocol).
 *
 * Owns the member table (array in probe order + name hash), the current probe, relays for
 * indirect probes we run for others, the suspect list and the piggyback queue. Invariants:
 * - self is always in the table; its state is ALIVE, or LEFT once we leave;
 * - a member is in the suspect list exactly when its state is SUSPECT, and then owns a
 *   suspicion;
 * - an update is applied only with an incarnation at least the member's (strictly higher
 *   for ALIVE), so old gossip never undoes new (SWIM section 4.2);
 * - every accepted update is queued for dissemination, keyed by member name, so a newer
 *   update about a node replaces an older one still waiting.
 * Rules follow SWIM and Lifeguard as memberlist applies them (state.go: aliveNode,
 * suspectNode, deadNode, refute, mergeState).
 */
#include "cluster/swim.h"

#include "cluster/awareness.h"
#include "cluster/broadcast.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_RELAYS 64		/* indirect probes we run for others at once */
#define LEAVE_TRANSMITS 3	/* LEFT sent this often before a leave is spread */
#define PUSH_PULL_SCALE_AT 32	/* nodes before push-pull slows down */

/* An indirect probe we run for another node: our ping's seq and whom to answer. */
struct relay {
	bool active;
	bool want_nack;
	uint32_t seq;			/* our ping to the target */
	uint32_t req_seq;		/* the requester's probe */
	struct wire_addr requester;
	uint64_t deadline_ms;		/* nack (if wanted) and forget after this */
};

/* Our current probe; target NULL when none is running. */
struct probe {
	struct swim_member *target;
	uint32_t seq;
	uint64_t timeout_ms;		/* no ack by then: ask others (ping-req) */
	bool acked;
	bool indirect_sent;
	uint32_t expected_nacks;
	uint32_t nacks;
};

struct swim {
	struct swim_config cfg;
	struct swim_io io;
	struct swim_member *self;
	struct swim_member **members;	/* probe order; shuffled at each wrap */
	size_t nmembers;
	size_t members_cap;
	size_t probe_idx;		/* next member to consider for probing */
	struct swim_member **htab;	/* name hash -> chain */
	size_t hcap;			/* power of two */
	struct swim_member **suspects;
	size_t nsuspects;
	size_t suspects_cap;
	uint32_t count[SWIM_LEFT + 1];	/* members per state */
	struct probe probe;
	struct swim_member *recheck;	/* a lone suspicion to probe next (expire_suspicions) */
	struct relay relays[MAX_RELAYS];
	uint32_t seq;			/* last probe sequence number used */
	uint64_t next_probe_ms;
	uint64_t next_gossip_ms;
	uint64_t next_push_pull_ms;
	uint64_t next_reconnect_ms;
	struct awareness health;
	struct broadcast_queue bq;
	uint64_t rng;			/* splitmix64 state */
	bool leaving;
	struct swim_stats stats;
};

/* ---- helpers ---- */

static uint64_t hash_name(const char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a, as broadcast.c */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t rng_next(struct swim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);	/* splitmix64 */

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(struct swim *s, uint64_t n)
{
	return n ? rng_next(s) % n : 0;
}

static struct wire_str view(const char *cstr)
{
	return (struct wire_str){ .ptr = cstr, .len = strlen(cstr) };
}

static uint64_t scaled(const struct swim *s, uint64_t ms)
{
	return awareness_scale_ms(&s->health, ms);
}

const char *swim_state_name(enum swim_state st)
{
	static const char *const names[] = { "alive", "suspect", "dead", "left" };

	return (unsigned)st < HD_ARRAY_LEN(names) ? names[st] : "unknown";
}

void swim_config_defaults(struct swim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->probe_interval_ms = 1000;
	cfg->probe_timeout_ms = 500;
	cfg->indirect_checks = 3;
	cfg->suspicion_mult = 4;
	cfg->suspicion_max_mult = 6;
	cfg->retransmit_mult = 4;
	cfg->awareness_max = 8;
	cfg->gossip_interval_ms = 200;
	cfg->gossip_nodes = 3;
	cfg->gossip_to_dead_ms = 30000;
	cfg->push_pull_interval_ms = 30000;
	cfg->reconnect_interval_ms = 30000;
	cfg->reap_ms = 15 * 60 * 1000;
	cfg->max_members = 65536;
	cfg->max_packet = WIRE_UDP_MAX;
	cfg->seed = 1;
}

/* ---- member table ---- */

static struct swim_member *member_find(const struct swim *s, const char *name, size_t len)
{
	uint64_t h = hash_name(name, len);
	struct swim_member *m = s->htab[h & (s->hcap - 1)];

	for (; m; m = m->hnext)
		if (m->name_hash == h && !strncmp(m->name, name, len) && !m->name[len])
			return m;
	return NULL;
}

static struct swim_member *find_view(const struct swim *s, struct wire_str name)
{
	return member_find(s, name.ptr, name.len);
}

static void hash_insert(struct swim *s, struct swim_member *m)
{
	struct swim_member **head = &s->htab[m->name_hash & (s->hcap - 1)];

	m->hnext = *head;
	*head = m;
}

static void hash_remove(struct swim *s, struct swim_member *m)
{
	struct swim_member **link = &s->htab[m->name_hash & (s->hcap - 1)];

	while (*link != m)
		link = &(*link)->hnext;
	*link = m->hnext;
}

static void hash_grow(struct swim *s)
{
	hd_free(s->htab);
	s->hcap *= 2;
	s->htab = hd_calloc(s->hcap, sizeof(*s->htab));
	for (size_t i = 0; i < s->nmembers; i++)
		hash_insert(s, s->members[i]);
}

static void set_meta(struct swim_member *m, const void *meta, size_t len)
{
	hd_free(m->meta);
	m->meta = len ? hd_alloc(len) : NULL;
	if (len)
		memcpy(m->meta, meta, len);
	m->meta_len = (uint16_t)len;
}

static bool meta_eq(const struct swim_member *m, struct wire_str meta)
{
	return m->meta_len == meta.len && (!meta.len || !memcmp(m->meta, meta.ptr, meta.len));
}

/* Adds a member in a random place of the probe order (so a newcomer is probed within one
 * round, memberlist's aliveNode). Returns NULL at max_members. */
static struct swim_member *member_add(struct swim *s, uint64_t now_ms, struct wire_str name,
				      const struct wire_addr *addr, uint32_t incarnation)
{
	struct swim_member *m;
	size_t pos;

	if (s->nmembers >= s->cfg.max_members) {
		s->stats.members_refused++;
		return NULL;
	}
	if (s->nmembers == s->members_cap) {
		s->members_cap = s->members_cap ? s->members_cap * 2 : 16;
		s->members = hd_realloc(s->members, s->members_cap * sizeof(*s->members));
	}
	if (s->nmembers >= s->hcap)
		hash_grow(s);
	m = hd_calloc(1, sizeof(*m));
	m->name = hd_strndup(name.ptr, name.len);
	m->name_hash = hash_name(name.ptr, name.len);
	m->addr = *addr;
	m->state = SWIM_ALIVE;
	m->incarnation = incarnation;
	m->state_change_ms = now_ms;
	pos = rng_below(s, s->nmembers + 1);
	s->members[s->nmembers] = s->members[pos];
	s->members[pos] = m;
	s->nmembers++;
	hash_insert(s, m);
	s->count[SWIM_ALIVE]++;
	return m;
}

static void member_free(struct swim_member *m)
{
	hd_free(m->suspicion);
	hd_free(m->meta);
	hd_free(m->name);
	hd_free(m);
}

static void suspect_list_add(struct swim *s, struct swim_member *m)
{
	if (s->nsuspects == s->suspects_cap) {
		s->suspects_cap = s->suspects_cap ? s->suspects_cap * 2 : 16;
		s->suspects = hd_realloc(s->suspects, s->suspects_cap * sizeof(*s->suspects));
	}
	m->suspect_idx = s->nsuspects;
	s->suspects[s->nsuspects++] = m;
}

static void suspect_list_remove(struct swim *s, struct swim_member *m)
{
	struct swim_member *last = s->suspects[--s->nsuspects];

	HD_ASSERT(s->suspects[m->suspect_idx] == m);
	s->suspects[m->suspect_idx] = last;
	last->suspect_idx = m->suspect_idx;
	hd_free(m->suspicion);
	m->suspicion = NULL;
}

/* Moves m to state st, keeping the per-state counts and the suspect list in step. */
static void set_state(struct swim *s, struct swim_member *m, enum swim_state st, uint64_t now_ms)
{
	if (m->state == SWIM_SUSPECT)
		suspect_list_remove(s, m);
	s->count[m->state]--;
	s->count[st]++;
	if (m->state != st)
		m->state_change_ms = now_ms;
	m->state = st;
}

static void notify(struct swim *s, const struct swim_member *m, int old_state)
{
	if (s->io.on_change)
		s->io.on_change(s->io.arg, m, old_state);
}

/* Drops dead and left members past reap_ms; runs once per probe round. */
static void reap(struct swim *s, uint64_t now_ms)
{
	size_t kept = 0;

	for (size_t i = 0; i < s->nmembers; i++) {
		struct swim_member *m = s->members[i];
		bool gone = (m->state == SWIM_DEAD || m->state == SWIM_LEFT) && m != s->self &&
			    now_ms - m->state_change_ms >= s->cfg.reap_ms;

		if (!gone) {
			s->members[kept++] = m;
			continue;
		}
		HD_ASSERT(s->probe.target != m);
		if (s->recheck == m)
			s->recheck = NULL;
		hash_remove(s, m);
		s->count[m->state]--;
		member_free(m);
	}
	s->nmembers = kept;
}

static void shuffle(struct swim *s)
{
	for (size_t i = s->nmembers; i > 1; i--) {
		size_t j = rng_below(s, i);
		struct swim_member *t = s->members[i - 1];

		s->members[i - 1] = s->members[j];
		s->members[j] = t;
	}
}

/* ---- sending ---- */

static uint32_t retransmit_limit(const struct swim *s)
{
	return broadcast_limit(s->cfg.retransmit_mult, swim_num_live(s));
}

/* Sends primary (and extra), filling the rest of the packet with queued updates. Either
 * message may be NULL; with neither, sends only when an update fits. */
static void send_packet(struct swim *s, const struct wire_addr *to, const struct wire_msg *primary,
			const struct wire_msg *extra)
{
	uint8_t buf[WIRE_UDP_MAX];
	struct wire_writer w;
	size_t cap = s->cfg.max_packet < sizeof(buf) ? s->cfg.max_packet : sizeof(buf);
	size_t len;
	size_t nb;

	if (wire_begin(&w, buf, cap, s->cfg.cluster, s->cfg.has_key))
		return;
	if (primary && wire_put(&w, primary))
		return;
	if (extra && wire_put(&w, extra))
		extra = NULL;	/* the buddy suspicion is a courtesy: send without it */
	nb = broadcast_fill(&s->bq, &w, retransmit_limit(s));
	if (!primary && !extra && !nb)
		return;
	len = wire_finish(&w, s->cfg.has_key ? s->cfg.key : NULL);
	s->stats.pkts_out++;
	s->stats.bytes_out += len;
	s->io.send(s->io.arg, to, buf, len);
}

static void queue_msg(struct swim *s, const char *key, const struct wire_msg *m)
{
	uint8_t buf[WIRE_UDP_MAX];
	size_t len = wire_encode_msg(m, buf, sizeof(buf));

	HD_ASSERT(len);
	broadcast_push(&s->bq, key, buf, len);
}

static void queue_alive(struct swim *s, const struct swim_member *m)
{
	struct wire_msg msg = {
		.type = WIRE_ALIVE,
		.incarnation = m->incarnation,
		.node = view(m->name),
		.addr = m->addr,
		.meta = { .ptr = (const char *)m->meta, .len = m->meta_len },
	};

	queue_msg(s, m->name, &msg);
}

/* ---- membership updates (SWIM 4.2, Lifeguard IV) ---- */

/* Someone says we are suspect, dead, or other than we are: outbid them. */
static void refute(struct swim *s, uint32_t accused_incarnation)
{
	struct swim_member *me = s->self;
	uint32_t inc = me->incarnation + 1;

	if (accused_incarnation >= inc)
		inc = accused_incarnation + 1;
	me->incarnation = inc;
	/* Being accused hints that we are the slow one (Lifeguard IV-A). */
	awareness_apply_delta(&s->health, 1);
	s->stats.refutes++;
	queue_alive(s, me);
	notify(s, me, SWIM_ALIVE);
}

/* An accusation of an incarnation we already outbid: its sender missed our refutation,
 * which may have run out of retransmits. Gossip our current ALIVE again (once at a time),
 * so it rides on our answer to that node and reaches whoever else is behind. */
static void reassert(struct swim *s, uint32_t accused_incarnation)
{
	struct swim_member *me = s->self;

	if (s->leaving || accused_incarnation >= me->incarnation ||
	    broadcast_transmits(&s->bq, me->name) >= 0)
		return;
	queue_alive(s, me);
}

/* quiet: a member new to us is added without gossiping it (push-pull records, seeds). */
static void on_alive(struct swim *s, uint64_t now_ms, const struct wire_msg *msg, bool quiet)
{
	struct swim_member *m = find_view(s, msg->node);
	int old;

	if (m == s->self) {
		if (s->leaving || msg->incarnation < m->incarnation)
			return;
		if (msg->incarnation == m->incarnation && wire_addr_eq(&msg->addr, &m->addr) &&
		    meta_eq(m, msg->meta))
			return;
		refute(s, msg->incarnation);
		return;
	}
	if (!m) {
		m = member_add(s, now_ms, msg->node, &msg->addr, msg->incarnation);
		if (!m)
			return;
		set_meta(m, msg->meta.ptr, msg->meta.len);
		if (!quiet)
			queue_alive(s, m);
		notify(s, m, -1);
		return;
	}
	if (msg->incarnation <= m->incarnation)
		return;
	if (!wire_addr_eq(&msg->addr, &m->addr) &&
	    (m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT)) {
		/* Two live nodes share a name: keep the one we know until it dies. */
		s->stats.conflicts++;
		return;
	}
	old = m->state;
	m->incarnation = msg->incarnation;
	m->addr = msg->addr;
	if (!meta_eq(m, msg->meta))
		set_meta(m, msg->meta.ptr, msg->meta.len);
	set_state(s, m, SWIM_ALIVE, now_ms);
	queue_alive(s, m);
	notify(s, m, old);
}

static void start_suspicion(struct swim *s, struct swim_member *m, uint64_t from_hash,
			    uint64_t now_ms)
{
	uint32_t n = swim_num_live(s);
	uint32_t k = s->cfg.suspicion_mult > 2 ? s->cfg.suspicion_mult - 2 : 0;
	uint64_t min_ms = suspicion_min_ms(s->cfg.suspicion_mult, n, s->cfg.probe_interval_ms);

	if (n < k + 2)
		k = 0;	/* too few nodes to expect independent confirmations */
	m->suspicion = hd_alloc(sizeof(*m->suspicion));
	suspicion_init(m->suspicion, from_hash, k, min_ms, min_ms * s->cfg.suspicion_max_mult,
		       now_ms);
	suspect_list_add(s, m);
}

static void queue_confirmation(struct swim *s, const struct swim_member *m,
			       const struct wire_msg *msg)
{
	char key[2 * WIRE_NAME_MAX + 2];

	/* a space never occurs in a name (wire.c), so no member name looks like this key */
	snprintf(key, sizeof(key), "%s %.*s", m->name, (int)msg->from.len, msg->from.ptr);
	queue_msg(s, key, msg);
}

static void on_suspect(struct swim *s, uint64_t now_ms, const struct wire_msg *msg)
{
	struct swim_member *m = find_view(s, msg->node);
	uint64_t from_hash = hash_name(msg->from.ptr, msg->from.len);
	int old;

	if (m == s->self && msg->incarnation < m->incarnation)
		reassert(s, msg->incarnation);
	if (!m || msg->incarnation < m->incarnation)
		return;
	if (m->state == SWIM_DEAD || m->state == SWIM_LEFT)
		return;
	if (m == s->self) {
		refute(s, msg->incarnation);
		return;
	}
	if (m->state == SWIM_SUSPECT) {
		/* Another accuser: a shorter timer, and worth telling others (Lifeguard IV-B).
		 * Queued beside the first accusation, not over it, so every node hears every
		 * independent accuser; the next ALIVE or DEAD makes these stale. */
		if (suspicion_confirm(m->suspicion, from_hash))
			queue_confirmation(s, m, msg);
		return;
	}
	old = m->state;
	m->incarnation = msg->incarnation;
	set_state(s, m, SWIM_SUSPECT, now_ms);
	start_suspicion(s, m, from_hash, now_ms);
	s->stats.suspicions++;
	queue_msg(s, m->name, msg);
	notify(s, m, old);
}

/* DEAD (an accusation) or LEFT (the node's own goodbye). */
static void on_dead(struct swim *s, uint64_t now_ms, const struct wire_msg *msg)
{
	struct swim_member *m = find_view(s, msg->node);
	bool left = msg->type == WIRE_LEFT;
	int old;

	if (m == s->self && msg->incarnation < m->incarnation)
		reassert(s, msg->incarnation);
	if (!m || msg->incarnation < m->incarnation)
		return;
	if (m->state == SWIM_DEAD || m->state == SWIM_LEFT)
		return;
	if (m == s->self) {
		refute(s, msg->incarnation);	/* leaving self is LEFT: returned above */
		return;
	}
	old = m->state;
	m->incarnation = msg->incarnation;
	set_state(s, m, left ? SWIM_LEFT : SWIM_DEAD, now_ms);
	queue_msg(s, m->name, msg);
	notify(s, m, old);
}

/* Our own probe failed: accuse the target (counts as a confirmation if already suspect). */
static void suspect_from_self(struct swim *s, uint64_t now_ms, struct swim_member *m)
{
	struct wire_msg msg = {
		.type = WIRE_SUSPECT,
		.incarnation = m->incarnation,
		.node = view(m->name),
		.from = view(s->self->name),
	};

	on_suspect(s, now_ms, &msg);
}

/* ---- probing (SWIM 3.1, 4.3; Lifeguard IV-A) ---- */

static bool is_probe_target(const struct swim *s, const struct swim_member *m)
{
	return m != s->self && (m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT);
}

static struct swim_member *next_target(struct swim *s, uint64_t now_ms)
{
	for (size_t tries = 0; tries <= s->nmembers; tries++) {
		struct swim_member *m;

		if (s->probe_idx >= s->nmembers) {
			reap(s, now_ms);
			shuffle(s);
			s->probe_idx = 0;
		}
		m = s->members[s->probe_idx++];
		if (is_probe_target(s, m))
			return m;
	}
	return NULL;
}

typedef bool (*member_filter)(const struct swim *s, const struct swim_member *m,
			      const void *arg, uint64_t now_ms);

/* Picks up to k distinct members passing filter, at random (memberlist's kRandomNodes). */
static size_t pick_random(struct swim *s, struct swim_member **out, size_t k, member_filter ok,
			  const void *arg, uint64_t now_ms)
{
	size_t got = 0;

	for (size_t tries = 0; got < k && tries < 3 * s->nmembers + 3; tries++) {
		struct swim_member *m = s->members[rng_below(s, s->nmembers)];
		bool dup = false;

		if (!ok(s, m, arg, now_ms))
			continue;
		for (size_t i = 0; i < got; i++)
			dup |= out[i] == m;
		if (!dup)
			out[got++] = m;
	}
	return got;
}

static bool ok_helper(const struct swim *s, const struct swim_member *m, const void *target,
		      uint64_t now_ms)
{
	(void)now_ms;
	return m != s->self && m != target && m->state == SWIM_ALIVE;
}

static bool ok_gossip(const struct swim *s, const struct swim_member *m, const void *arg,
		      uint64_t now_ms)
{
	(void)arg;
	if (m == s->self || m->state == SWIM_LEFT)
		return false;
	/* The recently dead too: a node cut off by a partition learns it must refute. */
	return m->state != SWIM_DEAD || now_ms - m->state_change_ms < s->cfg.gossip_to_dead_ms;
}

static bool ok_state(const struct swim *s, const struct swim_member *m, const void *state,
		     uint64_t now_ms)
{
	(void)now_ms;
	return m != s->self && m->state == *(const enum swim_state *)state;
}

static struct swim_member *pick_target(struct swim *s, uint64_t now_ms)
{
	struct swim_member *r = s->recheck;

	s->recheck = NULL;
	if (s->leaving)
		return NULL;
	if (r && r->state == SWIM_SUSPECT)
		return r;
	return next_target(s, now_ms);
}

static void start_probe(struct swim *s, uint64_t now_ms)
{
	struct swim_member *t = pick_target(s, now_ms);
	struct wire_msg ping = { .type = WIRE_PING, .from = view(s->self->name) };
	struct wire_msg buddy = { .type = WIRE_SUSPECT, .from = view(s->self->name) };

	s->next_probe_ms = now_ms + scaled(s, s->cfg.probe_interval_ms);
	if (!t)
		return;
	ping.seq = ++s->seq;
	ping.node = view(t->name);
	/* Lifeguard's buddy system: tell a suspect directly so it can refute at once. */
	buddy.incarnation = t->incarnation;
	buddy.node = ping.node;
	send_packet(s, &t->addr, &ping, t->state == SWIM_SUSPECT ? &buddy : NULL);
	s->probe = (struct probe){
		.target = t,
		.seq = ping.seq,
		.timeout_ms = now_ms + scaled(s, s->cfg.probe_timeout_ms),
	};
	s->stats.probes++;
}

static void send_indirect(struct swim *s)
{
	struct swim_member *helpers[16];
	struct probe *p = &s->probe;
	size_t k = HD_MIN(s->cfg.indirect_checks, HD_ARRAY_LEN(helpers));
	struct wire_msg req = {
		.type = WIRE_PING_REQ,
		.seq = p->seq,
		.node = view(p->target->name),
		.addr = p->target->addr,
		.from = view(s->self->name),
		.flag = true,
	};

	p->indirect_sent = true;
	k = pick_random(s, helpers, k, ok_helper, p->target, 0);
	for (size_t i = 0; i < k; i++)
		send_packet(s, &helpers[i]->addr, &req, NULL);
	p->expected_nacks = (uint32_t)k;
	s->stats.indirect_sent += k;
}

static void finish_probe(struct swim *s, uint64_t now_ms)
{
	struct probe *p = &s->probe;
	struct swim_member *t = p->target;
	int delta = 1;

	if (!t)
		return;
	p->target = NULL;
	if (p->acked)
		return;
	/* Missing nacks mean our own links or CPU are failing us, not the target's. */
	if (p->expected_nacks)
		delta = (int)p->expected_nacks - (int)HD_MIN(p->nacks, p->expected_nacks);
	awareness_apply_delta(&s->health, delta);
	s->stats.probes_failed++;
	if (is_probe_target(s, t))
		suspect_from_self(s, now_ms, t);
}

/* ---- packet handling ---- */

static void on_ping(struct swim *s, uint64_t now_ms, const struct wire_addr *from,
		    const struct wire_msg *msg)
{
	struct wire_msg ack = { .type = WIRE_ACK, .seq = msg->seq };
	struct swim_member *sender;

	if (!wire_str_eq(msg->node, s->self->name)) {
		/* For a previous owner of this address: silence lets it be found dead. */
		s->stats.dropped_misdirected++;
		return;
	}
	send_packet(s, from, &ack, NULL);
	sender = find_view(s, msg->from);
	if (sender)
		sender->last_contact_ms = now_ms;
}

static void on_ping_req(struct swim *s, uint64_t now_ms, const struct wire_addr *from,
			const struct wire_msg *msg)
{
	struct wire_msg ping = {
		.type = WIRE_PING,
		.node = msg->node,
		.from = view(s->self->name),
	};

	for (size_t i = 0; i < MAX_RELAYS; i++) {
		struct relay *r = &s->relays[i];

		if (r->active)
			continue;
		ping.seq = ++s->seq;
		*r = (struct relay){
			.active = true,
			.want_nack = msg->flag,
			.seq = ping.seq,
			.req_seq = msg->seq,
			.requester = *from,
			/* 80% of the timeout (Lifeguard IV-A), so the nack beats the end of the
			 * requester's probe period */
			.deadline_ms = now_ms + s->cfg.probe_timeout_ms * 4 / 5,
		};
		send_packet(s, &msg->addr, &ping, NULL);
		return;
	}
	/* All relays busy: stay silent; the requester counts a missing nack against itself
	 * only a little, and we are evidently busy. */
}

static void on_ack(struct swim *s, uint64_t now_ms, const struct wire_msg *msg)
{
	struct probe *p = &s->probe;

	if (p->target && msg->seq == p->seq) {
		if (!p->acked)
			awareness_apply_delta(&s->health, -1);
		p->acked = true;
		p->target->last_contact_ms = now_ms;
		return;
	}
	for (size_t i = 0; i < MAX_RELAYS; i++) {
		struct relay *r = &s->relays[i];
		struct wire_msg ack = { .type = WIRE_ACK };

		if (!r->active || r->seq != msg->seq)
			continue;
		ack.seq = r->req_seq;
		r->active = false;
		send_packet(s, &r->requester, &ack, NULL);
		return;
	}
}

static void on_nack(struct swim *s, const struct wire_msg *msg)
{
	if (s->probe.target && msg->seq == s->probe.seq)
		s->probe.nacks++;
}

static bool is_gossip(enum wire_type t)
{
	return t == WIRE_ALIVE || t == WIRE_SUSPECT || t == WIRE_DEAD || t == WIRE_LEFT;
}

static void apply_gossip(struct swim *s, uint64_t now_ms, const struct wire_msg *msg)
{
	if (msg->type == WIRE_ALIVE)
		on_alive(s, now_ms, msg, false);
	else if (msg->type == WIRE_SUSPECT)
		on_suspect(s, now_ms, msg);
	else
		on_dead(s, now_ms, msg);
}

static void apply_probe_msg(struct swim *s, uint64_t now_ms, const struct wire_addr *from,
			    const struct wire_msg *msg)
{
	switch (msg->type) {
	case WIRE_PING:
		on_ping(s, now_ms, from, msg);
		break;
	case WIRE_PING_REQ:
		on_ping_req(s, now_ms, from, msg);
		break;
	case WIRE_ACK:
		on_ack(s, now_ms, msg);
		break;
	case WIRE_NACK:
		on_nack(s, msg);
		break;
	default:
		break;	/* push-pull records have no business in a datagram */
	}
}

/* Checks the whole packet first, so a malformed tail drops it entirely. */
static int validate(const uint8_t *body, size_t len)
{
	const uint8_t *pos = body;
	struct wire_msg msg;
	int rc;

	while ((rc = wire_next(&pos, body + len, &msg)) > 0)
		;
	return rc;
}

int swim_on_packet(struct swim *s, uint64_t now_ms, const struct wire_addr *from,
		   const uint8_t *buf, size_t len)
{
	const uint8_t *body;
	const uint8_t *pos;
	size_t body_len;
	struct wire_msg msg;
	int rc;

	s->stats.pkts_in++;
	s->stats.bytes_in += len;
	rc = wire_open(buf, len, s->cfg.cluster, s->cfg.has_key ? s->cfg.key : NULL, &body,
		       &body_len);
	if (!rc)
		rc = validate(body, body_len);
	if (rc < 0) {
		s->stats.dropped[-rc]++;
		return rc;
	}
	/* Updates first, so a refutation triggered by this packet rides on our answer. */
	for (pos = body; wire_next(&pos, body + body_len, &msg) > 0;)
		if (is_gossip(msg.type))
			apply_gossip(s, now_ms, &msg);
	for (pos = body; wire_next(&pos, body + body_len, &msg) > 0;)
		if (!is_gossip(msg.type))
			apply_probe_msg(s, now_ms, from, &msg);
	return 0;
}

/* ---- timers ---- */

static void expire_relays(struct swim *s, uint64_t now_ms)
{
	for (size_t i = 0; i < MAX_RELAYS; i++) {
		struct relay *r = &s->relays[i];
		struct wire_msg nack = { .type = WIRE_NACK };

		if (!r->active || now_ms < r->deadline_ms)
			continue;
		r->active = false;
		if (!r->want_nack)
			continue;
		nack.seq = r->req_seq;
		s->stats.nacks_sent++;
		send_packet(s, &r->requester, &nack, NULL);
	}
}

/* A suspicion too few confirmed has likely outlived a refutation we missed (each update
 * reaches each node with probability about 1 - e^-(sends), so over many updates a few
 * nodes miss one): once the minimum timeout has passed short of k confirmations, probe the
 * suspect ourselves before its timer runs out. The ping carries the suspicion (buddy
 * system), so a live suspect answers with its current ALIVE on the ack; a dead one fails
 * the probe, which confirms the suspicion. */
static uint64_t recheck_ms(const struct suspicion *sp)
{
	return sp->n < sp->k ? sp->start_ms + sp->min_ms : UINT64_MAX;
}

static void expire_suspicions(struct swim *s, uint64_t now_ms)
{
	/* Backwards: declaring one dead swaps the last suspect into its slot. */
	for (size_t i = s->nsuspects; i-- > 0;) {
		struct swim_member *m = s->suspects[i];
		struct wire_msg dead = {
			.type = WIRE_DEAD,
			.from = view(s->self->name),
		};

		if (now_ms >= recheck_ms(m->suspicion) && !m->suspicion->rechecked && !s->recheck) {
			m->suspicion->rechecked = true;
			s->recheck = m;
		}
		if (now_ms < m->suspicion->deadline_ms)
			continue;
		dead.incarnation = m->incarnation;
		dead.node = view(m->name);
		hd_log_info("cluster: member %s dead after suspicion timeout (%u confirmations)",
			    m->name, m->suspicion->n);
		s->stats.declared_dead++;
		on_dead(s, now_ms, &dead);
	}
}

static void gossip(struct swim *s, uint64_t now_ms)
{
	struct swim_member *to[16];
	size_t k = HD_MIN(s->cfg.gossip_nodes, HD_ARRAY_LEN(to));

	s->next_gossip_ms = now_ms + s->cfg.gossip_interval_ms;
	if (!s->bq.count)
		return;
	k = pick_random(s, to, k, ok_gossip, NULL, now_ms);
	for (size_t i = 0; i < k && s->bq.count; i++)
		send_packet(s, &to[i]->addr, NULL, NULL);
}

/* Past 32 nodes the interval grows with N: a state is O(N) bytes, so each node's share of
 * anti-entropy traffic stays flat (memberlist grows it with log N only); the cluster as a
 * whole still runs one exchange per interval/32. */
static uint64_t push_pull_interval(const struct swim *s)
{
	uint32_t n = swim_num_live(s);
	uint64_t ms = s->cfg.push_pull_interval_ms;

	return n <= PUSH_PULL_SCALE_AT ? ms : ms * n / PUSH_PULL_SCALE_AT;
}

static void push_pull_with(struct swim *s, enum swim_state st, uint64_t now_ms)
{
	struct swim_member *m;

	if (!s->io.push_pull || !pick_random(s, &m, 1, ok_state, &st, now_ms))
		return;
	s->io.push_pull(s->io.arg, &m->addr);
}

void swim_tick(struct swim *s, uint64_t now_ms)
{
	struct probe *p = &s->probe;

	if (p->target && !p->acked && !p->indirect_sent && now_ms >= p->timeout_ms)
		send_indirect(s);
	if (now_ms >= s->next_probe_ms) {
		finish_probe(s, now_ms);
		start_probe(s, now_ms);
	}
	expire_relays(s, now_ms);
	expire_suspicions(s, now_ms);
	if (s->cfg.gossip_interval_ms && now_ms >= s->next_gossip_ms)
		gossip(s, now_ms);
	if (s->cfg.push_pull_interval_ms && now_ms >= s->next_push_pull_ms) {
		/* Jittered (0.5x..1.5x), so exchanges do not fall into step. */
		s->next_push_pull_ms = now_ms + push_pull_interval(s) / 2 +
				       rng_below(s, push_pull_interval(s) + 1);
		if (!s->leaving)
			push_pull_with(s, SWIM_ALIVE, now_ms);
	}
	if (s->cfg.reconnect_interval_ms && now_ms >= s->next_reconnect_ms) {
		s->next_reconnect_ms = now_ms + s->cfg.reconnect_interval_ms;
		if (!s->leaving && s->count[SWIM_DEAD])
			push_pull_with(s, SWIM_DEAD, now_ms);
	}
}

uint64_t swim_next_deadline_ms(const struct swim *s)
{
	const struct probe *p = &s->probe;
	uint64_t t = s->next_probe_ms;

	if (p->target && !p->acked && !p->indirect_sent)
		t = HD_MIN(t, p->timeout_ms);
	for (size_t i = 0; i < MAX_RELAYS; i++)
		if (s->relays[i].active)
			t = HD_MIN(t, s->relays[i].deadline_ms);
	for (size_t i = 0; i < s->nsuspects; i++) {
		const struct suspicion *sp = s->suspects[i]->suspicion;

		t = HD_MIN(t, sp->deadline_ms);
		if (!sp->rechecked && !s->recheck)
			t = HD_MIN(t, recheck_ms(sp));
	}
	/* An idle gossip timer need not wake us; the next update is sent at once. */
	if (s->cfg.gossip_interval_ms && s->bq.count)
		t = HD_MIN(t, s->next_gossip_ms);
	if (s->cfg.push_pull_interval_ms)
		t = HD_MIN(t, s->next_push_pull_ms);
	if (s->cfg.reconnect_interval_ms && s->count[SWIM_DEAD])
		t = HD_MIN(t, s->next_reconnect_ms);
	return t;
}

/* ---- push-pull (memberlist's mergeRemoteState) ---- */

size_t swim_encode_state(struct swim *s, bool join, uint8_t **out)
{
	size_t per = WIRE_MSG_HDR + 4 + 1 + 1 + WIRE_NAME_MAX + 19 + 1 + WIRE_META_MAX;
	size_t cap = HD_MIN(64 + 2 * WIRE_NAME_MAX + WIRE_MAC_LEN + s->nmembers * per,
			    (size_t)WIRE_TCP_MAX);
	uint8_t *buf = hd_alloc(cap);
	struct wire_writer w;
	struct wire_msg hdr = {
		.type = WIRE_PUSH_PULL,
		.flag = join,
		.count = (uint32_t)s->nmembers,
		.from = view(s->self->name),
	};
	int rc = wire_begin(&w, buf, cap, s->cfg.cluster, s->cfg.has_key);

	HD_ASSERT(!rc);
	rc = wire_put(&w, &hdr);
	HD_ASSERT(!rc);
	for (size_t i = 0; i < s->nmembers; i++) {
		const struct swim_member *m = s->members[i];
		struct wire_msg rec = {
			.type = WIRE_STATE,
			.incarnation = m->incarnation,
			.state = (uint8_t)m->state,
			.node = view(m->name),
			.addr = m->addr,
			.meta = { .ptr = (const char *)m->meta, .len = m->meta_len },
		};

		if (wire_put(&w, &rec))
			break;	/* past WIRE_TCP_MAX: the rest travels by gossip */
	}
	*out = buf;
	return wire_finish(&w, s->cfg.has_key ? s->cfg.key : NULL);
}

static void merge_record(struct swim *s, uint64_t now_ms, const struct wire_msg *rec,
			 struct wire_str sender)
{
	struct wire_msg msg = *rec;
	bool is_sender = rec->node.len == sender.len &&
			 !memcmp(rec->node.ptr, sender.ptr, sender.len);

	switch (rec->state) {
	case WIRE_ST_ALIVE:
		msg.type = WIRE_ALIVE;
		/* New members other than the sender are old news to the sender's side. */
		on_alive(s, now_ms, &msg, !is_sender);
		break;
	case WIRE_ST_LEFT:
		msg.type = WIRE_LEFT;
		on_dead(s, now_ms, &msg);
		break;
	default:
		/* Someone else's "dead" is only a suspicion to us: we run our own timer. */
		msg.type = WIRE_SUSPECT;
		msg.from = sender;
		on_suspect(s, now_ms, &msg);
		break;
	}
}

int swim_merge_state(struct swim *s, uint64_t now_ms, const uint8_t *buf, size_t len,
		     bool *is_join)
{
	const uint8_t *body;
	const uint8_t *pos;
	size_t body_len;
	struct wire_msg hdr;
	struct wire_msg rec;
	int rc;

	rc = wire_open(buf, len, s->cfg.cluster, s->cfg.has_key ? s->cfg.key : NULL, &body,
		       &body_len);
	if (!rc)
		rc = validate(body, body_len);
	pos = body;
	if (!rc && (wire_next(&pos, body + body_len, &hdr) <= 0 || hdr.type != WIRE_PUSH_PULL))
		rc = -WIRE_E_MSG;
	if (rc < 0) {
		s->stats.dropped[-rc]++;
		return rc;
	}
	if (is_join)
		*is_join = hdr.flag;
	for (uint32_t i = 0; i < hdr.count && wire_next(&pos, body + body_len, &rec) > 0; i++)
		if (rec.type == WIRE_STATE)
			merge_record(s, now_ms, &rec, hdr.from);
	s->stats.push_pulls++;
	return 0;
}

/* ---- lifecycle and queries ---- */

struct swim *swim_create(const struct swim_config *cfg, const struct swim_io *io,
			 uint64_t now_ms)
{
	struct swim *s;
	struct wire_str name = view(cfg->name);

	if (!name.len || name.len > WIRE_NAME_MAX || strlen(cfg->cluster) > WIRE_CLUSTER_MAX ||
	    cfg->meta_len > WIRE_META_MAX || !io->send || !cfg->probe_interval_ms)
		return NULL;
	s = hd_calloc(1, sizeof(*s));
	s->cfg = *cfg;
	s->io = *io;
	if (!s->cfg.max_packet || s->cfg.max_packet > WIRE_UDP_MAX)
		s->cfg.max_packet = WIRE_UDP_MAX;
	if (!s->cfg.max_members)
		s->cfg.max_members = 1;
	s->rng = cfg->seed;
	s->hcap = 16;
	s->htab = hd_calloc(s->hcap, sizeof(*s->htab));
	awareness_init(&s->health, (int)cfg->awareness_max);
	broadcast_init(&s->bq);
	s->self = member_add(s, now_ms, name, &cfg->addr, 0);
	HD_ASSERT(s->self);
	set_meta(s->self, cfg->meta, cfg->meta_len);
	queue_alive(s, s->self);
	/* Random phases, so nodes started together do not probe in lockstep. */
	s->next_probe_ms = now_ms + rng_below(s, cfg->probe_interval_ms);
	s->next_gossip_ms = now_ms + rng_below(s, cfg->gossip_interval_ms + 1);
	s->next_push_pull_ms = now_ms + rng_below(s, cfg->push_pull_interval_ms + 1);
	s->next_reconnect_ms = now_ms + cfg->reconnect_interval_ms;
	return s;
}

void swim_destroy(struct swim *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nmembers; i++)
		member_free(s->members[i]);
	hd_free(s->members);
	hd_free(s->htab);
	hd_free(s->suspects);
	broadcast_fini(&s->bq);
	hd_free(s);
}

void swim_seed_member(struct swim *s, uint64_t now_ms, const char *name,
		      const struct wire_addr *addr, const uint8_t *meta, size_t meta_len)
{
	struct wire_msg msg = {
		.type = WIRE_ALIVE,
		.node = view(name),
		.addr = *addr,
		.meta = { .ptr = (const char *)meta, .len = HD_MIN(meta_len, WIRE_META_MAX) },
	};

	on_alive(s, now_ms, &msg, true);
}

void swim_leave(struct swim *s, uint64_t now_ms)
{
	struct wire_msg left = {
		.type = WIRE_LEFT,
		.incarnation = s->self->incarnation,
		.node = view(s->self->name),
	};

	if (s->leaving)
		return;
	s->leaving = true;
	s->probe.target = NULL;
	set_state(s, s->self, SWIM_LEFT, now_ms);
	queue_msg(s, s->self->name, &left);
	gossip(s, now_ms);	/* start spreading it now, not at the next tick */
}

bool swim_leave_spread(const struct swim *s)
{
	int sent = broadcast_transmits(&s->bq, s->self->name);

	if (s->count[SWIM_ALIVE] + s->count[SWIM_SUSPECT] == 0)
		return true;	/* nobody left to tell */
	return sent < 0 || (uint32_t)sent >= HD_MIN(LEAVE_TRANSMITS, retransmit_limit(s) - 1);
}

void swim_set_meta(struct swim *s, uint64_t now_ms, const uint8_t *meta, size_t len)
{
	struct wire_str v = { .ptr = (const char *)meta, .len = len };

	(void)now_ms;
	if (len > WIRE_META_MAX || meta_eq(s->self, v) || s->leaving)
		return;
	set_meta(s->self, meta, len);
	s->self->incarnation++;
	queue_alive(s, s->self);
	notify(s, s->self, SWIM_ALIVE);
}

size_t swim_member_count(const struct swim *s)
{
	return s->nmembers;
}

const struct swim_member *swim_member_at(const struct swim *s, size_t i)
{
	return i < s->nmembers ? s->members[i] : NULL;
}

const struct swim_member *swim_find(const struct swim *s, const char *name)
{
	return member_find(s, name, strlen(name));
}

const struct swim_member *swim_self(const struct swim *s)
{
	return s->self;
}

uint32_t swim_num_live(const struct swim *s)
{
	return s->count[SWIM_ALIVE] + s->count[SWIM_SUSPECT];
}

uint32_t swim_num_in_state(const struct swim *s, enum swim_state st)
{
	return (unsigned)st <= SWIM_LEFT ? s->count[st] : 0;
}

int swim_health_score(const struct swim *s)
{
	return awareness_score(&s->health);
}

const struct swim_stats *swim_get_stats(const struct swim *s)
{
	return &s->stats;
}

size_t swim_pending_broadcasts(const struct swim *s)
{
	return s->bq.count;
}
