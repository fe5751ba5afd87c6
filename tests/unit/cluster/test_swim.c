/*
 * tests/unit/cluster/test_swim.c - cluster/swim.c on a fake clock and an in-memory network
 * (memberlist's MockNetwork): membership rules of SWIM (sections 3-4) and Lifeguard
 * (section IV), one Test per rule. The network delivers each datagram 1 ms after it is
 * sent unless the link is cut or a filter drops it; push-pull is an instant exchange.
 */
#include "cluster/swim.h"
#include "core/base/hd_alloc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES 8
#define MAX_PKTS 8192
#define PERIOD 1000

struct pkt {
	uint64_t at_ms;
	int from;
	int to;
	size_t len;
	uint8_t buf[WIRE_UDP_MAX];
};

struct net;

struct endpoint {
	struct net *net;
	int id;
};

struct net {
	struct swim *node[MAX_NODES];
	struct endpoint ep[MAX_NODES];
	int n;
	bool down[MAX_NODES];
	bool cut[MAX_NODES][MAX_NODES];	/* datagrams from -> to dropped */
	uint64_t now_ms;
	struct pkt *q;
	int nq;
	bool key;
	/* recorded by the filter hook */
	bool (*drop)(struct net *net, int from, int to, const uint8_t *buf, size_t len);
	int seen_suspect_in_ping;
	int pushes;
	uint64_t mark_ms;		/* for filters that look at a time window */
};

static struct net *global;

static struct wire_addr addr_of(int id)
{
	return (struct wire_addr){ .family = 4, .ip = { 10, 0, 0, (uint8_t)id }, .port = 7946 };
}

static void net_send(void *arg, const struct wire_addr *to, const uint8_t *buf, size_t len)
{
	struct endpoint *ep = arg;
	struct net *net = ep->net;
	int dst = to->ip[3];
	struct pkt *p;

	cr_assert(len <= WIRE_UDP_MAX);
	if (dst >= net->n || net->down[ep->id] || net->cut[ep->id][dst])
		return;
	if (net->drop && net->drop(net, ep->id, dst, buf, len))
		return;
	cr_assert(net->nq < MAX_PKTS);
	p = &net->q[net->nq++];
	p->at_ms = net->now_ms + 1;
	p->from = ep->id;
	p->to = dst;
	p->len = len;
	memcpy(p->buf, buf, len);
}

static void exchange(struct net *net, int a, int b)
{
	uint8_t *sa;
	uint8_t *sb;
	size_t la;
	size_t lb;

	if (net->down[a] || net->down[b])
		return;
	la = swim_encode_state(net->node[a], false, &sa);
	cr_assert_eq(swim_merge_state(net->node[b], net->now_ms, sa, la, NULL), 0);
	lb = swim_encode_state(net->node[b], false, &sb);
	cr_assert_eq(swim_merge_state(net->node[a], net->now_ms, sb, lb, NULL), 0);
	hd_free(sa);
	hd_free(sb);
	net->pushes++;
}

static void net_push_pull(void *arg, const struct wire_addr *to)
{
	struct endpoint *ep = arg;

	if (to->ip[3] < ep->net->n)
		exchange(ep->net, ep->id, to->ip[3]);
}

static const uint8_t test_key[WIRE_KEY_LEN] = "k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-k";

static struct swim *make_node(struct net *net, int id, const char *name, uint64_t seed)
{
	struct swim_config cfg;
	struct swim_io io = {
		.arg = &net->ep[id],
		.send = net_send,
		.push_pull = net_push_pull,
	};

	swim_config_defaults(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	strcpy(cfg.cluster, "test");
	cfg.addr = addr_of(id);
	cfg.seed = seed;
	cfg.push_pull_interval_ms = 0;	/* tests call exchange() when they want one */
	cfg.reconnect_interval_ms = 0;
	if (net->key) {
		cfg.has_key = true;
		memcpy(cfg.key, test_key, WIRE_KEY_LEN);
	}
	net->ep[id] = (struct endpoint){ .net = net, .id = id };
	return swim_create(&cfg, &io, net->now_ms);
}

static char node_name_buf[MAX_NODES][16];

static const char *name_of(int id)
{
	snprintf(node_name_buf[id], sizeof(node_name_buf[id]), "n%d", id);
	return node_name_buf[id];
}

/* n nodes that already know each other (as after a settled join). */
static struct net *net_create(int n, bool key)
{
	struct net *net = calloc(1, sizeof(*net));

	net->q = calloc(MAX_PKTS, sizeof(*net->q));
	net->n = n;
	net->key = key;
	net->now_ms = 1000;
	global = net;
	for (int i = 0; i < n; i++) {
		net->node[i] = make_node(net, i, name_of(i), (uint64_t)i + 1);
		cr_assert(net->node[i]);
	}
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < n; j++) {
			struct wire_addr a = addr_of(j);

			if (i != j)
				swim_seed_member(net->node[i], net->now_ms, name_of(j), &a, NULL, 0);
		}
	}
	return net;
}

static void net_destroy(struct net *net)
{
	for (int i = 0; i < net->n; i++)
		swim_destroy(net->node[i]);
	free(net->q);
	free(net);
}

/* Advances the clock 1 ms at a time: deliver what is due, run due timers. */
static void run(struct net *net, uint64_t ms)
{
	uint64_t end = net->now_ms + ms;

	while (net->now_ms < end) {
		int kept = 0;
		int nq = net->nq;

		net->now_ms++;
		for (int i = 0; i < nq; i++) {
			struct pkt p = net->q[i];

			if (p.at_ms > net->now_ms) {
				net->q[kept++] = p;
				continue;
			}
			if (!net->down[p.to]) {
				struct wire_addr from = addr_of(p.from);

				swim_on_packet(net->node[p.to], net->now_ms, &from, p.buf, p.len);
			}
		}
		/* packets sent while delivering were appended past nq: keep them */
		memmove(&net->q[kept], &net->q[nq], (size_t)(net->nq - nq) * sizeof(*net->q));
		net->nq = kept + (net->nq - nq);
		for (int i = 0; i < net->n; i++)
			if (!net->down[i] && swim_next_deadline_ms(net->node[i]) <= net->now_ms)
				swim_tick(net->node[i], net->now_ms);
	}
}

static enum swim_state state_at(struct net *net, int observer, int node)
{
	const struct swim_member *m = swim_find(net->node[observer], name_of(node));

	cr_assert(m, "n%d does not know n%d", observer, node);
	return m->state;
}

static uint32_t inc_at(struct net *net, int observer, int node)
{
	return swim_find(net->node[observer], name_of(node))->incarnation;
}

/* Sends one hand-made message to a node as if from `from`. */
static void inject(struct net *net, int from, int to, const struct wire_msg *m)
{
	uint8_t buf[WIRE_UDP_MAX];
	struct wire_writer w;
	struct wire_addr a = addr_of(from);
	size_t len;

	cr_assert_eq(wire_begin(&w, buf, sizeof(buf), "test", net->key), 0);
	cr_assert_eq(wire_put(&w, m), 0);
	len = wire_finish(&w, net->key ? test_key : NULL);
	swim_on_packet(net->node[to], net->now_ms, &a, buf, len);
}

#define VIEW(s) ((struct wire_str){ (s), strlen(s) })

/* ---- SWIM section 3: failure detection ---- */

Test(swim, healthy_cluster_stays_alive)
{
	struct net *net = net_create(5, false);

	run(net, 60 * PERIOD);
	for (int i = 0; i < 5; i++) {
		for (int j = 0; j < 5; j++)
			cr_assert_eq(state_at(net, i, j), SWIM_ALIVE, "n%d on n%d", i, j);
		cr_assert_eq(swim_get_stats(net->node[i])->suspicions, 0);
		cr_assert(swim_get_stats(net->node[i])->probes >= 50);
	}
	net_destroy(net);
}

Test(swim, crashed_node_becomes_suspect_then_dead_everywhere)
{
	struct net *net = net_create(5, false);

	run(net, 5 * PERIOD);
	net->down[4] = true;
	run(net, 10 * PERIOD);
	for (int i = 0; i < 4; i++)
		cr_assert_neq(state_at(net, i, 4), SWIM_ALIVE, "n%d still trusts n4", i);
	/* 5 nodes: min timeout 4 periods; with k = 2 confirmations expected, max 24 */
	run(net, 30 * PERIOD);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(state_at(net, i, 4), SWIM_DEAD, "n%d on n4", i);
	net_destroy(net);
}

Test(swim, indirect_probe_saves_a_node_behind_one_broken_link)
{
	struct net *net = net_create(4, false);

	/* n0 and n1 cannot talk directly; n2 and n3 relay (SWIM section 3.1, ping-req) */
	net->cut[0][1] = net->cut[1][0] = true;
	run(net, 60 * PERIOD);
	cr_assert_eq(state_at(net, 0, 1), SWIM_ALIVE);
	cr_assert_eq(state_at(net, 1, 0), SWIM_ALIVE);
	cr_assert_eq(swim_get_stats(net->node[0])->suspicions, 0);
	cr_assert(swim_get_stats(net->node[0])->indirect_sent > 0);
	net_destroy(net);
}

Test(swim, failed_probe_sends_ping_req_to_k_members)
{
	struct net *net = net_create(6, false);

	net->down[5] = true;
	run(net, 10 * PERIOD);
	/* every failed probe of n5 asked 3 helpers (all alive and not n5) */
	for (int i = 0; i < 5; i++) {
		const struct swim_stats *st = swim_get_stats(net->node[i]);

		cr_assert_eq(st->indirect_sent % 3, 0, "n%d", i);
		cr_assert_geq(st->indirect_sent, 3 * st->probes_failed, "n%d", i);
	}
	net_destroy(net);
}

/* ---- SWIM section 4.2: suspicion and incarnations ---- */

Test(swim, suspected_node_refutes_with_a_higher_incarnation)
{
	struct net *net = net_create(3, false);
	struct wire_msg sus = {
		.type = WIRE_SUSPECT, .incarnation = 0, .node = VIEW("n2"), .from = VIEW("n0"),
	};

	inject(net, 0, 1, &sus);
	cr_assert_eq(state_at(net, 1, 2), SWIM_SUSPECT);
	run(net, 5 * PERIOD);
	cr_assert_eq(swim_self(net->node[2])->incarnation, 1);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(state_at(net, i, 2), SWIM_ALIVE, "n%d", i);
		cr_assert_eq(inc_at(net, i, 2), 1, "n%d", i);
	}
	cr_assert_eq(swim_get_stats(net->node[2])->refutes, 1);
	net_destroy(net);
}

Test(swim, refutation_outbids_the_accusation)
{
	struct net *net = net_create(2, false);
	struct wire_msg dead = {
		.type = WIRE_DEAD, .incarnation = 7, .node = VIEW("n1"), .from = VIEW("n0"),
	};

	inject(net, 0, 1, &dead);
	cr_assert_eq(swim_self(net->node[1])->incarnation, 8);
	cr_assert_eq(swim_self(net->node[1])->state, SWIM_ALIVE);
	net_destroy(net);
}

Test(swim, old_incarnation_never_undoes_a_newer_state)
{
	struct net *net = net_create(3, false);
	struct wire_msg sus = {
		.type = WIRE_SUSPECT, .incarnation = 3, .node = VIEW("n2"), .from = VIEW("n1"),
	};
	struct wire_msg alive = {
		.type = WIRE_ALIVE, .incarnation = 3, .node = VIEW("n2"), .addr = addr_of(2),
	};

	net->down[2] = true;
	inject(net, 1, 0, &sus);
	cr_assert_eq(state_at(net, 0, 2), SWIM_SUSPECT);
	inject(net, 1, 0, &alive);	/* same incarnation: no refutation */
	cr_assert_eq(state_at(net, 0, 2), SWIM_SUSPECT);
	alive.incarnation = 2;
	inject(net, 1, 0, &alive);
	cr_assert_eq(state_at(net, 0, 2), SWIM_SUSPECT);
	alive.incarnation = 4;
	inject(net, 1, 0, &alive);
	cr_assert_eq(state_at(net, 0, 2), SWIM_ALIVE);
	sus.incarnation = 3;
	inject(net, 1, 0, &sus);	/* an older suspicion is ignored */
	cr_assert_eq(state_at(net, 0, 2), SWIM_ALIVE);
	net_destroy(net);
}

Test(swim, dead_is_final_until_a_higher_alive)
{
	struct net *net = net_create(3, false);
	struct wire_msg dead = {
		.type = WIRE_DEAD, .incarnation = 0, .node = VIEW("n2"), .from = VIEW("n1"),
	};
	struct wire_msg msg = { .type = WIRE_SUSPECT, .incarnation = 5, .node = VIEW("n2"),
				.from = VIEW("n1") };

	net->down[2] = true;
	inject(net, 1, 0, &dead);
	cr_assert_eq(state_at(net, 0, 2), SWIM_DEAD);
	inject(net, 1, 0, &msg);	/* a suspicion does not revive it */
	cr_assert_eq(state_at(net, 0, 2), SWIM_DEAD);
	msg = (struct wire_msg){ .type = WIRE_ALIVE, .incarnation = 1, .node = VIEW("n2"),
				 .addr = addr_of(2) };
	inject(net, 1, 0, &msg);
	cr_assert_eq(state_at(net, 0, 2), SWIM_ALIVE);
	net_destroy(net);
}

Test(swim, unknown_member_learned_from_alive_gossip_and_spread)
{
	struct net *net = net_create(3, false);
	struct wire_msg alive = {
		.type = WIRE_ALIVE, .incarnation = 0, .node = VIEW("newcomer"),
		.addr = { .family = 4, .ip = { 10, 0, 0, 200 }, .port = 7946 },
	};

	inject(net, 1, 0, &alive);
	run(net, 3 * PERIOD);
	for (int i = 0; i < 3; i++)
		cr_assert(swim_find(net->node[i], "newcomer"), "n%d", i);
	net_destroy(net);
}

Test(swim, alive_for_a_live_name_at_another_address_is_a_conflict)
{
	struct net *net = net_create(3, false);
	struct wire_msg alive = {
		.type = WIRE_ALIVE, .incarnation = 9, .node = VIEW("n2"),
		.addr = { .family = 4, .ip = { 10, 9, 9, 9 }, .port = 1 },
	};

	inject(net, 1, 0, &alive);
	cr_assert_eq(inc_at(net, 0, 2), 0);
	cr_assert_eq(swim_get_stats(net->node[0])->conflicts, 1);
	net_destroy(net);
}

/* ---- Lifeguard section IV-B: dynamic suspicion ---- */

Test(swim, independent_confirmations_shorten_the_suspicion)
{
	struct net *net = net_create(6, false);
	struct wire_msg sus = { .type = WIRE_SUSPECT, .incarnation = 0, .node = VIEW("n5") };
	const char *accusers[] = { "n1", "n2", "n3" };

	/* n5 is down; n0 hears accusations and must not wait the full max */
	for (int i = 0; i < 6; i++)
		net->down[i] = i != 0;
	for (int i = 0; i < 3; i++) {
		sus.from = VIEW(accusers[i]);
		inject(net, 1, 0, &sus);
	}
	/* 6 nodes: min 4 s, max 24 s, k = 2: two confirmations bring it to min */
	run(net, 4 * PERIOD + 10);
	cr_assert_eq(state_at(net, 0, 5), SWIM_DEAD);
	net_destroy(net);
}

Test(swim, lone_accusation_waits_the_maximum)
{
	struct net *net = net_create(6, false);
	struct wire_msg sus = {
		.type = WIRE_SUSPECT, .incarnation = 0, .node = VIEW("n5"), .from = VIEW("n1"),
	};
	const struct swim_member *m;

	inject(net, 1, 0, &sus);
	inject(net, 1, 0, &sus);	/* a repeat is no confirmation */
	m = swim_find(net->node[0], "n5");
	cr_assert_eq(m->state, SWIM_SUSPECT);
	/* 6 nodes: min = 4 * max(1, log10 6) periods = 4 s; max = 6 * min */
	cr_assert_eq(m->suspicion->deadline_ms, net->now_ms + 24 * PERIOD);
	cr_assert_eq(m->suspicion->n, 0);
	net_destroy(net);
}

/* ---- Lifeguard section IV-A: local health, nacks, buddy system ---- */

static bool drop_all_acks_to_0(struct net *net, int from, int to, const uint8_t *buf, size_t len)
{
	const uint8_t *body;
	const uint8_t *pos;
	size_t blen;
	struct wire_msg m;

	(void)net;
	(void)from;
	if (to != 0 || wire_open(buf, len, "test", NULL, &body, &blen))
		return false;
	for (pos = body; wire_next(&pos, body + blen, &m) > 0;)
		if (m.type == WIRE_ACK || m.type == WIRE_NACK)
			return true;
	return false;
}

Test(swim, node_missing_its_own_acks_and_nacks_raises_its_health_score)
{
	struct net *net = net_create(5, false);

	net->drop = drop_all_acks_to_0;
	run(net, 10 * PERIOD);
	cr_assert(swim_health_score(net->node[0]) >= 3, "score %d",
		  swim_health_score(net->node[0]));
	for (int i = 1; i < 5; i++)
		cr_assert_eq(swim_health_score(net->node[i]), 0, "n%d", i);
	net_destroy(net);
}

Test(swim, helpers_nack_so_a_healthy_prober_keeps_its_score)
{
	struct net *net = net_create(5, false);

	/* n1 is down; n0's helpers answer its ping-reqs with nacks */
	net->down[1] = true;
	run(net, 20 * PERIOD);
	cr_assert(swim_get_stats(net->node[2])->nacks_sent + swim_get_stats(net->node[3])->nacks_sent +
		  swim_get_stats(net->node[4])->nacks_sent > 0);
	cr_assert_eq(swim_health_score(net->node[0]), 0);
	net_destroy(net);
}

static bool see_suspect_in_ping(struct net *net, int from, int to, const uint8_t *buf, size_t len)
{
	const uint8_t *body;
	const uint8_t *pos;
	size_t blen;
	struct wire_msg m;
	bool ping = false;
	bool sus = false;

	(void)from;
	if (to != 2 || wire_open(buf, len, "test", NULL, &body, &blen))
		return false;
	for (pos = body; wire_next(&pos, body + blen, &m) > 0;) {
		ping |= m.type == WIRE_PING && wire_str_eq(m.node, "n2");
		sus |= m.type == WIRE_SUSPECT && wire_str_eq(m.node, "n2");
	}
	net->seen_suspect_in_ping += ping && sus;
	return false;
}

Test(swim, ping_to_a_suspect_carries_the_suspicion)
{
	struct net *net = net_create(3, false);
	struct wire_msg sus = {
		.type = WIRE_SUSPECT, .incarnation = 0, .node = VIEW("n2"), .from = VIEW("n1"),
	};

	net->drop = see_suspect_in_ping;
	inject(net, 1, 0, &sus);
	run(net, 3 * PERIOD);
	cr_assert(net->seen_suspect_in_ping > 0);
	net_destroy(net);
}

Test(swim, ping_for_another_node_is_not_acked)
{
	struct net *net = net_create(2, false);
	struct wire_msg ping = {
		.type = WIRE_PING, .seq = 1, .node = VIEW("someone-else"), .from = VIEW("n0"),
	};

	inject(net, 0, 1, &ping);
	cr_assert_eq(swim_get_stats(net->node[1])->dropped_misdirected, 1);
	net_destroy(net);
}

/* The first ping n0 sends at or after net->mark_ms: its target's name. */
static char first_ping_target[16];

static bool note_first_ping(struct net *net, int from, int to, const uint8_t *buf, size_t len)
{
	const uint8_t *body;
	const uint8_t *pos;
	size_t blen;
	struct wire_msg m;

	(void)to;
	if (from != 0 || first_ping_target[0] || net->now_ms < net->mark_ms ||
	    wire_open(buf, len, "test", NULL, &body, &blen))
		return false;
	for (pos = body; wire_next(&pos, body + blen, &m) > 0;)
		if (m.type == WIRE_PING)
			snprintf(first_ping_target, sizeof(first_ping_target), "%.*s",
				 (int)m.node.len, m.node.ptr);
	return false;
}

Test(swim, unconfirmed_suspicion_is_rechecked_by_probing_the_suspect)
{
	struct net *net = net_create(8, false);
	struct wire_msg sus = {
		.type = WIRE_SUSPECT, .incarnation = 0, .node = VIEW("n7"), .from = VIEW("n1"),
	};

	/* Only n0 runs, so nobody confirms or refutes: n0 holds a lone suspicion of n7.
	 * 8 nodes: min timeout 4 periods (log10 8 < 1), k = 2. Once min has passed, n0's
	 * next probe goes to n7, whatever its round-robin says. */
	for (int i = 1; i < 8; i++)
		net->down[i] = true;
	inject(net, 1, 0, &sus);
	net->mark_ms = net->now_ms + 4 * PERIOD + 1;
	first_ping_target[0] = '\0';
	net->drop = note_first_ping;
	run(net, 20 * PERIOD);
	cr_assert_str_eq(first_ping_target, "n7");
	/* the failed recheck was one confirmation: 24 - 20 * log 2 / log 3 = 11.4 periods,
	 * so n7 is dead long before the 24-period maximum */
	cr_assert_eq(state_at(net, 0, 7), SWIM_DEAD);
	net_destroy(net);
}

Test(swim, stale_accusation_makes_the_node_gossip_its_current_alive_again)
{
	struct net *net = net_create(3, false);
	struct wire_msg sus = {
		.type = WIRE_SUSPECT, .incarnation = 0, .node = VIEW("n2"), .from = VIEW("n0"),
	};

	inject(net, 0, 2, &sus);	/* refuted: n2 at incarnation 1 */
	cr_assert_eq(swim_self(net->node[2])->incarnation, 1);
	run(net, 20 * PERIOD);		/* its ALIVE runs out of retransmits */
	cr_assert_eq(swim_pending_broadcasts(net->node[2]), 0);
	inject(net, 0, 2, &sus);	/* someone still accuses incarnation 0 */
	cr_assert_eq(swim_self(net->node[2])->incarnation, 1, "no new incarnation");
	cr_assert_eq(swim_pending_broadcasts(net->node[2]), 1, "but its ALIVE goes out again");
	net_destroy(net);
}

/* ---- leave, join, restart ---- */

Test(swim, graceful_leave_is_left_not_dead)
{
	struct net *net = net_create(4, false);

	run(net, 3 * PERIOD);
	swim_leave(net->node[3], net->now_ms);
	run(net, 500);
	cr_assert(swim_leave_spread(net->node[3]));
	net->down[3] = true;
	run(net, 60 * PERIOD);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(state_at(net, i, 3), SWIM_LEFT, "n%d", i);
	net_destroy(net);
}

Test(swim, push_pull_join_learns_everyone)
{
	struct net *net = net_create(3, false);

	net->node[3] = make_node(net, 3, "n3", 99);
	net->n = 4;
	exchange(net, 3, 0);
	cr_assert_eq(swim_member_count(net->node[3]), 4);
	run(net, 3 * PERIOD);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(state_at(net, i, 3), SWIM_ALIVE, "n%d", i);
	net_destroy(net);
}

Test(swim, restarted_node_comes_back_with_a_higher_incarnation)
{
	struct net *net = net_create(4, false);

	net->down[3] = true;
	run(net, 40 * PERIOD);
	cr_assert_eq(state_at(net, 0, 3), SWIM_DEAD);
	swim_destroy(net->node[3]);
	net->node[3] = make_node(net, 3, "n3", 1234);	/* same name, incarnation 0 */
	net->down[3] = false;
	exchange(net, 3, 0);
	run(net, 5 * PERIOD);
	cr_assert(swim_self(net->node[3])->incarnation >= 1);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(state_at(net, i, 3), SWIM_ALIVE, "n%d", i);
		cr_assert(inc_at(net, i, 3) >= 1, "n%d", i);
	}
	net_destroy(net);
}

Test(swim, push_pull_turns_remote_dead_into_our_own_suspicion)
{
	struct net *net = net_create(4, false);
	struct wire_msg dead = {
		.type = WIRE_DEAD, .incarnation = 0, .node = VIEW("n3"), .from = VIEW("n2"),
	};

	net->down[3] = true;
	inject(net, 2, 1, &dead);
	cr_assert_eq(state_at(net, 1, 3), SWIM_DEAD);
	exchange(net, 1, 0);
	cr_assert_eq(state_at(net, 0, 3), SWIM_SUSPECT);
	net_destroy(net);
}

Test(swim, metadata_change_spreads_with_a_new_incarnation)
{
	struct net *net = net_create(4, false);
	static const uint8_t meta[] = "load:42";
	const struct swim_member *m;

	swim_set_meta(net->node[2], net->now_ms, meta, sizeof(meta));
	run(net, 3 * PERIOD);
	m = swim_find(net->node[0], "n2");
	cr_assert_eq(m->incarnation, 1);
	cr_assert_eq(m->meta_len, sizeof(meta));
	cr_assert(!memcmp(m->meta, meta, sizeof(meta)));
	net_destroy(net);
}

/* ---- packets that must be dropped ---- */

Test(swim, packets_of_another_cluster_are_dropped_and_counted)
{
	struct net *net = net_create(2, false);
	uint8_t buf[64];
	struct wire_writer w;
	struct wire_msg dead = { .type = WIRE_DEAD, .node = VIEW("n1"), .from = VIEW("x") };
	struct wire_addr a = addr_of(0);
	size_t len;

	cr_assert_eq(wire_begin(&w, buf, sizeof(buf), "other", false), 0);
	cr_assert_eq(wire_put(&w, &dead), 0);
	len = wire_finish(&w, NULL);
	cr_assert_eq(swim_on_packet(net->node[1], net->now_ms, &a, buf, len), -WIRE_E_CLUSTER);
	cr_assert_eq(swim_get_stats(net->node[1])->dropped[WIRE_E_CLUSTER], 1);
	cr_assert_eq(swim_get_stats(net->node[1])->refutes, 0);
	net_destroy(net);
}

Test(swim, authenticated_cluster_works_and_drops_forged_packets)
{
	struct net *net = net_create(3, true);
	uint8_t buf[128];
	struct wire_writer w;
	struct wire_msg dead = { .type = WIRE_DEAD, .node = VIEW("n1"), .from = VIEW("x") };
	struct wire_addr a = addr_of(0);
	size_t len;

	run(net, 10 * PERIOD);
	cr_assert_eq(state_at(net, 0, 2), SWIM_ALIVE);
	cr_assert_eq(swim_get_stats(net->node[0])->suspicions, 0);
	cr_assert_eq(wire_begin(&w, buf, sizeof(buf), "test", false), 0);
	cr_assert_eq(wire_put(&w, &dead), 0);
	len = wire_finish(&w, NULL);
	cr_assert_eq(swim_on_packet(net->node[1], net->now_ms, &a, buf, len), -WIRE_E_MAC);
	cr_assert_eq(swim_self(net->node[1])->incarnation, 0);
	net_destroy(net);
}

Test(swim, malformed_tail_drops_the_whole_packet)
{
	struct net *net = net_create(2, false);
	uint8_t buf[128];
	struct wire_writer w;
	struct wire_msg sus = { .type = WIRE_SUSPECT, .node = VIEW("n1"), .from = VIEW("x") };
	static const uint8_t bad[] = { WIRE_ACK, 0, 9, 1 };	/* length past the end */
	struct wire_addr a = addr_of(0);
	size_t len;

	cr_assert_eq(wire_begin(&w, buf, sizeof(buf), "test", false), 0);
	cr_assert_eq(wire_put(&w, &sus), 0);
	cr_assert_eq(wire_put_raw(&w, bad, sizeof(bad)), 0);
	len = wire_finish(&w, NULL);
	cr_assert_eq(swim_on_packet(net->node[1], net->now_ms, &a, buf, len), -WIRE_E_MSG);
	cr_assert_eq(swim_get_stats(net->node[1])->refutes, 0, "the suspicion was not applied");
	net_destroy(net);
}

Test(swim, member_table_is_bounded)
{
	struct net *net = net_create(1, false);
	struct swim_config cfg;
	struct swim_io io = { .arg = &net->ep[0], .send = net_send };
	struct swim *s;
	char name[16];

	swim_config_defaults(&cfg);
	strcpy(cfg.name, "small");
	strcpy(cfg.cluster, "test");
	cfg.addr = addr_of(0);
	cfg.max_members = 3;
	s = swim_create(&cfg, &io, 0);
	for (int i = 0; i < 10; i++) {
		struct wire_addr a = addr_of(1);

		snprintf(name, sizeof(name), "m%d", i);
		swim_seed_member(s, 0, name, &a, NULL, 0);
	}
	cr_assert_eq(swim_member_count(s), 3);
	cr_assert_eq(swim_get_stats(s)->members_refused, 8);
	swim_destroy(s);
	net_destroy(net);
}

Test(swim, config_without_a_name_is_refused)
{
	struct swim_config cfg;
	struct swim_io io = { .send = net_send };

	swim_config_defaults(&cfg);
	cr_assert_null(swim_create(&cfg, &io, 0));
}
