/*
 * cluster/sim/swim_sim.c - `swim-sim`: the deterministic simulator for cluster/swim.c.
 *
 * Runs the real protocol code for N nodes in one thread on virtual time (ms) over a
 * simulated network: per-packet loss, uniform delay, and partitions (datagrams and
 * push-pull streams between groups dropped). No sockets, no clocks: one event heap
 * (deliveries and node timers) ordered by (time, sequence) and one seeded PRNG, so a run
 * is a function of its arguments and reproduces bit for bit.
 *
 * Nodes start knowing each other (swim_seed_member), as after a settled join. Then:
 *   bytes   steady state at the given loss: bytes and packets per node per period
 *   detect  crash a node (no more packets in or out), time until every live node holds it
 *           suspect and dead, in protocol periods after the crash; several trials
 *   spread  a node gossips a new incarnation (metadata change): periods until every live
 *           node has it; several trials
 *   fp      no crash for the given simulated time: suspicions of live nodes and live nodes
 *           declared dead (false positives)
 *   partition  split the cluster in two, heal it, time until every node sees all alive
 * `--report` runs the standard table (N = 10, 100, 1000; loss 1/5/10% for an hour);
 * `--check` runs a smaller set and exits non-zero when a target of issue 6 is missed.
 */
#include "cluster/swim.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEVER UINT64_MAX

enum ev_kind { EV_TIMER, EV_PACKET, EV_PP_REQ, EV_PP_RESP };

struct event {
	uint64_t at_ms;
	uint64_t seq;		/* tie-break: equal times run in creation order */
	enum ev_kind kind;
	uint32_t to;
	uint32_t from;
	uint8_t *buf;		/* owned copy of the datagram or state */
	size_t len;
};

struct node {
	struct swim *swim;
	struct wire_addr addr;
	char name[16];
	uint32_t id;
	bool up;
	int group;		/* partition side */
	uint64_t timer_ms;	/* the live timer event, NEVER when none */
	uint64_t pp_bytes;	/* push-pull bytes sent */
	/* per-trial observations of the watched node */
	uint64_t seen_suspect_ms;
	uint64_t seen_dead_ms;
	uint64_t seen_inc_ms;
};

struct sim {
	struct node *nodes;
	uint32_t n;
	uint64_t now_ms;
	uint64_t rng;
	double loss;		/* probability a datagram is lost */
	uint32_t delay_min_ms;
	uint32_t delay_max_ms;
	bool partitioned;
	struct event *heap;
	size_t nheap;
	size_t heap_cap;
	uint64_t ev_seq;
	struct swim_config base;	/* shared protocol settings */
	/* what on_change watches */
	int watch;		/* node index, -1 none */
	uint32_t watch_inc;	/* spread: the incarnation awaited */
	uint64_t false_suspect;	/* live member marked suspect (observer, event) */
	uint64_t false_dead;	/* live member marked dead */
	uint64_t left_seen;
};

static uint64_t sim_rand(struct sim *sim)
{
	uint64_t z = (sim->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double sim_uniform(struct sim *sim)
{
	return (double)(sim_rand(sim) >> 11) / 9007199254740992.0;
}

/* ---- event heap ---- */

static bool ev_before(const struct event *a, const struct event *b)
{
	return a->at_ms < b->at_ms || (a->at_ms == b->at_ms && a->seq < b->seq);
}

static void heap_push(struct sim *sim, struct event ev)
{
	size_t i;

	if (sim->nheap == sim->heap_cap) {
		sim->heap_cap = sim->heap_cap ? sim->heap_cap * 2 : 1024;
		sim->heap = hd_realloc(sim->heap, sim->heap_cap * sizeof(*sim->heap));
	}
	ev.seq = sim->ev_seq++;
	i = sim->nheap++;
	while (i && ev_before(&ev, &sim->heap[(i - 1) / 2])) {
		sim->heap[i] = sim->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	sim->heap[i] = ev;
}

static struct event heap_pop(struct sim *sim)
{
	struct event top = sim->heap[0];
	struct event last = sim->heap[--sim->nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= sim->nheap)
			break;
		if (c + 1 < sim->nheap && ev_before(&sim->heap[c + 1], &sim->heap[c]))
			c++;
		if (!ev_before(&sim->heap[c], &last))
			break;
		sim->heap[i] = sim->heap[c];
		i = c;
	}
	if (sim->nheap)
		sim->heap[i] = last;
	return top;
}

/* ---- network ---- */

static struct wire_addr node_addr(uint32_t id)
{
	struct wire_addr a = { .family = 4, .port = 7946 };

	a.ip[0] = 10;
	a.ip[1] = (uint8_t)(id >> 16);
	a.ip[2] = (uint8_t)(id >> 8);
	a.ip[3] = (uint8_t)id;
	return a;
}

static uint32_t addr_node(const struct wire_addr *a)
{
	return (uint32_t)a->ip[1] << 16 | (uint32_t)a->ip[2] << 8 | a->ip[3];
}

static uint32_t name_node(const char *name)
{
	return (uint32_t)strtoul(name + 1, NULL, 10);
}

static bool reachable(const struct sim *sim, uint32_t a, uint32_t b)
{
	return sim->nodes[a].up && sim->nodes[b].up &&
	       (!sim->partitioned || sim->nodes[a].group == sim->nodes[b].group);
}

static uint64_t delay(struct sim *sim)
{
	uint32_t span = sim->delay_max_ms - sim->delay_min_ms;

	return sim->delay_min_ms + (span ? sim_rand(sim) % (span + 1) : 0);
}


/* The simulation the callbacks belong to: one runs at a time, on one thread. */
static struct sim *cur;

static void reschedule(struct sim *sim, struct node *nd)
{
	uint64_t at;

	if (!nd->up)
		return;
	at = swim_next_deadline_ms(nd->swim);
	if (at < sim->now_ms)
		at = sim->now_ms;
	if (at == nd->timer_ms)
		return;
	/* The older event, if any, stays in the heap and is skipped as stale. */
	nd->timer_ms = at;
	heap_push(sim, (struct event){ .at_ms = at, .kind = EV_TIMER, .to = nd->id });
}

static void net_send(void *arg, const struct wire_addr *to, const uint8_t *buf, size_t len)
{
	struct node *from = arg;
	struct sim *sim = cur;
	uint32_t dst = addr_node(to);
	struct event ev = { .kind = EV_PACKET, .from = from->id, .to = dst, .len = len };

	if (dst >= sim->n || !reachable(sim, from->id, dst))
		return;
	if (sim->loss > 0 && sim_uniform(sim) < sim->loss)
		return;
	ev.at_ms = sim->now_ms + delay(sim);
	ev.buf = hd_alloc(len);
	memcpy(ev.buf, buf, len);
	heap_push(sim, ev);
}

/* A push-pull is a stream: no loss, but partitions and crashes cut it. */
static void send_state(struct sim *sim, struct node *from, uint32_t dst, enum ev_kind kind)
{
	struct event ev = { .kind = kind, .from = from->id, .to = dst };

	ev.len = swim_encode_state(from->swim, false, &ev.buf);
	from->pp_bytes += ev.len + 4;
	ev.at_ms = sim->now_ms + 2 * delay(sim);	/* connect + transfer */
	heap_push(sim, ev);
}

static void net_push_pull(void *arg, const struct wire_addr *to)
{
	struct node *from = arg;
	uint32_t dst = addr_node(to);

	if (dst < cur->n && reachable(cur, from->id, dst))
		send_state(cur, from, dst, EV_PP_REQ);
}

static void on_change(void *arg, const struct swim_member *m, int old_state)
{
	struct node *obs = arg;
	struct sim *sim = cur;
	uint32_t v = name_node(m->name);
	bool victim_up;

	if (v == obs->id || v >= sim->n)
		return;
	victim_up = sim->nodes[v].up;
	if (m->state == SWIM_SUSPECT && old_state != SWIM_SUSPECT && victim_up)
		sim->false_suspect++;
	if (m->state == SWIM_DEAD && old_state != SWIM_DEAD && victim_up)
		sim->false_dead++;
	if (m->state == SWIM_LEFT && old_state != SWIM_LEFT)
		sim->left_seen++;
	if ((int)v != sim->watch)
		return;
	if (m->state != SWIM_ALIVE && obs->seen_suspect_ms == NEVER)
		obs->seen_suspect_ms = sim->now_ms;
	if ((m->state == SWIM_DEAD || m->state == SWIM_LEFT) && obs->seen_dead_ms == NEVER)
		obs->seen_dead_ms = sim->now_ms;
	if (m->state == SWIM_ALIVE && m->incarnation >= sim->watch_inc && obs->seen_inc_ms == NEVER)
		obs->seen_inc_ms = sim->now_ms;
}

static void deliver(struct sim *sim, struct event *ev)
{
	struct node *to = &sim->nodes[ev->to];
	struct wire_addr from = node_addr(ev->from);

	switch (ev->kind) {
	case EV_TIMER:
		if (!to->up || ev->at_ms != to->timer_ms)
			return;	/* stale */
		to->timer_ms = NEVER;
		swim_tick(to->swim, sim->now_ms);
		break;
	case EV_PACKET:
		if (!reachable(sim, ev->from, ev->to))
			break;
		swim_on_packet(to->swim, sim->now_ms, &from, ev->buf, ev->len);
		break;
	case EV_PP_REQ:
		if (!reachable(sim, ev->from, ev->to))
			break;
		if (swim_merge_state(to->swim, sim->now_ms, ev->buf, ev->len, NULL) == 0)
			send_state(sim, to, ev->from, EV_PP_RESP);
		break;
	case EV_PP_RESP:
		if (reachable(sim, ev->from, ev->to))
			(void)swim_merge_state(to->swim, sim->now_ms, ev->buf, ev->len, NULL);
		break;
	}
	hd_free(ev->buf);
	reschedule(sim, to);
}

static void run_until(struct sim *sim, uint64_t end_ms)
{
	while (sim->nheap && sim->heap[0].at_ms <= end_ms) {
		struct event ev = heap_pop(sim);

		sim->now_ms = ev.at_ms;
		deliver(sim, &ev);
	}
	sim->now_ms = end_ms;
}

/* ---- setup ---- */

/* Metadata the size Herald advertises (ports, shard count, load summary, address). */
static size_t sample_meta(uint8_t *out, uint32_t id, uint32_t version)
{
	memset(out, 0, 48);
	memcpy(out, &id, sizeof(id));
	memcpy(out + 4, &version, sizeof(version));
	return 48;
}

static void sim_init(struct sim *sim, uint32_t n, uint64_t seed, const struct swim_config *base)
{
	memset(sim, 0, sizeof(*sim));
	sim->n = n;
	sim->rng = seed;
	sim->base = *base;
	sim->watch = -1;
	sim->delay_min_ms = 1;
	sim->delay_max_ms = 20;
	sim->nodes = hd_calloc(n, sizeof(*sim->nodes));
	cur = sim;
	for (uint32_t i = 0; i < n; i++) {
		struct node *nd = &sim->nodes[i];
		struct swim_config cfg = *base;
		struct swim_io io = {
			.arg = nd,
			.send = net_send,
			.push_pull = net_push_pull,
			.on_change = on_change,
		};

		nd->id = i;
		nd->up = true;
		nd->timer_ms = NEVER;
		nd->addr = node_addr(i);
		snprintf(nd->name, sizeof(nd->name), "n%05u", i);
		snprintf(cfg.name, sizeof(cfg.name), "%s", nd->name);
		snprintf(cfg.cluster, sizeof(cfg.cluster), "sim");
		cfg.addr = nd->addr;
		cfg.meta_len = sample_meta(cfg.meta, i, 0);
		cfg.seed = seed * 0x100000001b3ull + i + 1;
		nd->swim = swim_create(&cfg, &io, 0);
		HD_ASSERT(nd->swim);
	}
	/* A settled cluster: everyone knows everyone, nothing left to gossip. */
	for (uint32_t j = 0; j < n; j++) {
		uint8_t meta[WIRE_META_MAX];
		size_t len = sample_meta(meta, j, 0);

		for (uint32_t i = 0; i < n; i++)
			if (i != j)
				swim_seed_member(sim->nodes[i].swim, 0, sim->nodes[j].name,
						 &sim->nodes[j].addr, meta, len);
	}
	for (uint32_t i = 0; i < n; i++)
		reschedule(sim, &sim->nodes[i]);
}

static void sim_fini(struct sim *sim)
{
	for (uint32_t i = 0; i < sim->n; i++)
		swim_destroy(sim->nodes[i].swim);
	while (sim->nheap) {
		struct event ev = heap_pop(sim);

		hd_free(ev.buf);
	}
	hd_free(sim->heap);
	hd_free(sim->nodes);
	cur = NULL;
}

/* ---- measurements ---- */

struct totals {
	uint64_t bytes;
	uint64_t pkts;
	uint64_t pp_bytes;
	uint64_t probes_failed;
	uint64_t refutes;
	uint64_t declared_dead;
};

static struct totals totals(const struct sim *sim)
{
	struct totals t = { 0 };

	for (uint32_t i = 0; i < sim->n; i++) {
		const struct swim_stats *st = swim_get_stats(sim->nodes[i].swim);

		t.bytes += st->bytes_out;
		t.pkts += st->pkts_out;
		t.pp_bytes += sim->nodes[i].pp_bytes;
		t.probes_failed += st->probes_failed;
		t.refutes += st->refutes;
		t.declared_dead += st->declared_dead;
	}
	return t;
}

static uint32_t live_nodes(const struct sim *sim)
{
	uint32_t live = 0;

	for (uint32_t i = 0; i < sim->n; i++)
		live += sim->nodes[i].up;
	return live;
}

static double period_ms(const struct sim *sim)
{
	return (double)sim->base.probe_interval_ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

struct dist {
	double median;
	double p99;
	double max;
	size_t missing;		/* observers that never saw it */
};

static struct dist distribution(double *v, size_t n, size_t missing)
{
	struct dist d = { .missing = missing };

	if (!n)
		return d;
	qsort(v, n, sizeof(*v), cmp_double);
	d.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	d.p99 = v[(size_t)((double)(n - 1) * 0.99)];
	d.max = v[n - 1];
	return d;
}

static void reset_watch(struct sim *sim, int node)
{
	sim->watch = node;
	for (uint32_t i = 0; i < sim->n; i++) {
		sim->nodes[i].seen_suspect_ms = NEVER;
		sim->nodes[i].seen_dead_ms = NEVER;
		sim->nodes[i].seen_inc_ms = NEVER;
	}
}

static bool all_live_saw(const struct sim *sim, size_t field_off, uint32_t except)
{
	for (uint32_t i = 0; i < sim->n; i++) {
		const struct node *nd = &sim->nodes[i];
		uint64_t seen;

		memcpy(&seen, (const char *)nd + field_off, sizeof(seen));
		if (nd->up && i != except && seen == NEVER)
			return false;
	}
	return true;
}

/* Runs period by period until every live node saw it, or limit periods. */
static void run_until_seen(struct sim *sim, size_t field_off, uint32_t except, uint32_t limit)
{
	uint64_t end = sim->now_ms + (uint64_t)limit * sim->base.probe_interval_ms;

	while (sim->now_ms < end && !all_live_saw(sim, field_off, except))
		run_until(sim, sim->now_ms + sim->base.probe_interval_ms / 10);
}

static uint32_t random_up_node(struct sim *sim)
{
	for (;;) {
		uint32_t i = (uint32_t)(sim_rand(sim) % sim->n);

		if (sim->nodes[i].up)
			return i;
	}
}

struct detect_result {
	struct dist suspect;	/* periods from crash to suspect, over observers and trials */
	struct dist dead;
	struct dist last_dead;	/* per crash: crash to the last live node holding it dead */
	struct dist verdict;	/* per crash: first suspicion to the last node holding it dead */
	double min_timeout;	/* suspicion timeout floor, periods */
	double max_timeout;
	uint64_t false_dead;
};

/* Crashes `trials` nodes one after another; 60 quiet periods between trials. */
static struct detect_result detect(struct sim *sim, int trials)
{
	size_t cap = (size_t)trials * sim->n;
	double *sus = hd_alloc(cap * sizeof(double));
	double *dead = hd_alloc(cap * sizeof(double));
	double *last = hd_alloc((size_t)trials * sizeof(double));
	double *verdict = hd_alloc((size_t)trials * sizeof(double));
	size_t nlast = 0;
	size_t nsus = 0;
	size_t ndead = 0;
	size_t miss_sus = 0;
	size_t miss_dead = 0;
	struct detect_result r = { 0 };
	uint64_t fd0 = sim->false_dead;
	uint32_t live = live_nodes(sim);

	trials = HD_MIN(trials, (int)sim->n / 2);	/* crashed nodes stay down */
	r.min_timeout = (double)suspicion_min_ms(sim->base.suspicion_mult, live,
					 sim->base.probe_interval_ms) / period_ms(sim);
	r.max_timeout = r.min_timeout * sim->base.suspicion_max_mult;
	for (int t = 0; t < trials; t++) {
		uint32_t v = random_up_node(sim);
		uint64_t crash_ms;

		run_until(sim, sim->now_ms + 60 * sim->base.probe_interval_ms);
		reset_watch(sim, (int)v);
		crash_ms = sim->now_ms;
		sim->nodes[v].up = false;
		uint64_t first_sus = NEVER;
		uint64_t last_dead = 0;

		run_until_seen(sim, offsetof(struct node, seen_dead_ms), v,
			       (uint32_t)(r.max_timeout + 100));
		for (uint32_t i = 0; i < sim->n; i++) {
			const struct node *nd = &sim->nodes[i];

			if (!nd->up)
				continue;
			first_sus = HD_MIN(first_sus, nd->seen_suspect_ms);
			last_dead = HD_MAX(last_dead, nd->seen_dead_ms);
			if (nd->seen_suspect_ms == NEVER)
				miss_sus++;
			else
				sus[nsus++] = (double)(nd->seen_suspect_ms - crash_ms) / period_ms(sim);
			if (nd->seen_dead_ms == NEVER)
				miss_dead++;
			else
				dead[ndead++] = (double)(nd->seen_dead_ms - crash_ms) / period_ms(sim);
		}
		if (last_dead != NEVER && first_sus != NEVER) {
			last[nlast] = (double)(last_dead - crash_ms) / period_ms(sim);
			verdict[nlast++] = (double)(last_dead - first_sus) / period_ms(sim);
		}
	}
	sim->watch = -1;
	r.suspect = distribution(sus, nsus, miss_sus);
	r.dead = distribution(dead, ndead, miss_dead);
	r.last_dead = distribution(last, nlast, (size_t)trials - nlast);
	r.verdict = distribution(verdict, nlast, (size_t)trials - nlast);
	r.false_dead = sim->false_dead - fd0;
	hd_free(sus);
	hd_free(dead);
	hd_free(last);
	hd_free(verdict);
	return r;
}

/* A node changes its metadata (new incarnation); periods until every live node has it. */
static struct dist spread(struct sim *sim, int trials)
{
	double *rounds = hd_alloc((size_t)trials * sizeof(double));
	size_t n = 0;
	size_t missing = 0;

	for (int t = 0; t < trials; t++) {
		uint32_t u = random_up_node(sim);
		struct node *nd = &sim->nodes[u];
		uint8_t meta[WIRE_META_MAX];
		uint64_t t0;
		uint64_t last = 0;

		run_until(sim, sim->now_ms + 20 * sim->base.probe_interval_ms);
		reset_watch(sim, (int)u);
		t0 = sim->now_ms;
		swim_set_meta(nd->swim, t0, meta, sample_meta(meta, u, (uint32_t)t + 1));
		sim->watch_inc = swim_self(nd->swim)->incarnation;
		reschedule(sim, nd);
		run_until_seen(sim, offsetof(struct node, seen_inc_ms), u, 100);
		for (uint32_t i = 0; i < sim->n; i++) {
			const struct node *o = &sim->nodes[i];

			if (!o->up || i == u)
				continue;
			if (o->seen_inc_ms == NEVER)
				missing++;
			else if (o->seen_inc_ms - t0 > last)
				last = o->seen_inc_ms - t0;
		}
		rounds[n++] = (double)last / period_ms(sim);
	}
	sim->watch = -1;
	{
		struct dist d = distribution(rounds, n, missing);

		hd_free(rounds);
		return d;
	}
}

struct window {
	double bytes_per_node_period;
	double pkts_per_node_period;
	double pp_bytes_per_node_period;
	uint64_t accusations;	/* failed probes of live nodes (first-hand suspicions) */
	uint64_t suspect_events;	/* observer marked a live node suspect */
	uint64_t refutes;
	uint64_t false_dead;	/* observer marked a live node dead */
	uint64_t declared_dead;	/* suspicion timers that fired on live nodes */
};

/* Runs `periods` with no crash and reports traffic and false positives. */
static struct window steady(struct sim *sim, uint32_t periods)
{
	struct totals a = totals(sim);
	uint64_t fs0 = sim->false_suspect;
	uint64_t fd0 = sim->false_dead;
	struct window w = { 0 };
	struct totals b;
	double denom = (double)live_nodes(sim) * periods;

	run_until(sim, sim->now_ms + (uint64_t)periods * sim->base.probe_interval_ms);
	b = totals(sim);
	w.bytes_per_node_period = (double)(b.bytes - a.bytes) / denom;
	w.pkts_per_node_period = (double)(b.pkts - a.pkts) / denom;
	w.pp_bytes_per_node_period = (double)(b.pp_bytes - a.pp_bytes) / denom;
	w.accusations = b.probes_failed - a.probes_failed;
	w.refutes = b.refutes - a.refutes;
	w.declared_dead = b.declared_dead - a.declared_dead;
	w.suspect_events = sim->false_suspect - fs0;
	w.false_dead = sim->false_dead - fd0;
	return w;
}

/* Splits the cluster in halves for `periods`, heals, and returns the periods until every
 * live node holds every other live node alive again (limit + 1 when never). */
static double partition(struct sim *sim, uint32_t periods, uint32_t limit)
{
	uint64_t heal_ms;

	for (uint32_t i = 0; i < sim->n; i++)
		sim->nodes[i].group = i < sim->n / 2;
	sim->partitioned = true;
	run_until(sim, sim->now_ms + (uint64_t)periods * sim->base.probe_interval_ms);
	sim->partitioned = false;
	heal_ms = sim->now_ms;
	for (uint32_t p = 0; p <= limit * 10; p++) {
		bool whole = true;

		for (uint32_t i = 0; i < sim->n && whole; i++) {
			const struct swim *s = sim->nodes[i].swim;

			whole = swim_num_in_state(s, SWIM_ALIVE) == sim->n;
		}
		if (whole)
			return (double)(sim->now_ms - heal_ms) / period_ms(sim);
		run_until(sim, sim->now_ms + sim->base.probe_interval_ms / 10);
	}
	return limit + 1;
}

/* ---- command line ---- */

struct opts {
	uint32_t nodes[8];
	int nnodes;
	uint64_t seed;
	double losses[8];
	int nlosses;
	double hours;
	int trials;
	uint32_t delay_min_ms;
	uint32_t delay_max_ms;
	const char *scenario;	/* "all", "bytes", "detect", "spread", "fp", "partition" */
	bool check;
	struct swim_config base;
};

static void print_dist(const char *what, struct dist d)
{
	printf("  %-38s median %5.1f  p99 %5.1f  max %5.1f periods", what, d.median, d.p99,
	       d.max);
	if (d.missing)
		printf("  (%zu observers never)", d.missing);
	printf("\n");
}

static struct sim *fresh(struct sim *sim, const struct opts *o, uint32_t n, double loss)
{
	sim_init(sim, n, o->seed, &o->base);
	sim->loss = loss;
	sim->delay_min_ms = o->delay_min_ms;
	sim->delay_max_ms = o->delay_max_ms;
	run_until(sim, 30ull * o->base.probe_interval_ms);	/* let phases spread out */
	return sim;
}

static bool want(const struct opts *o, const char *name)
{
	return !strcmp(o->scenario, "all") || !strcmp(o->scenario, name);
}

/* Returns the number of targets missed (issue 6), checked only where they apply. */
static int run_n(const struct opts *o, uint32_t n)
{
	struct sim sim;
	int missed = 0;

	printf("N=%u  seed=%" PRIu64 "  period=%ums  probe timeout=%ums  k=%u  delay=%u-%ums"
	       "  gossip=%ums x%u\n",
	       n, o->seed, o->base.probe_interval_ms, o->base.probe_timeout_ms,
	       o->base.indirect_checks, o->delay_min_ms, o->delay_max_ms,
	       o->base.gossip_interval_ms, o->base.gossip_nodes);
	if (want(o, "bytes")) {
		struct window w = steady(fresh(&sim, o, n, 0), 1000);

		printf("  steady state, 0%% loss: %.0f B/node/period (%.2f packets), push-pull "
		       "%.0f B/node/period\n",
		       w.bytes_per_node_period, w.pkts_per_node_period,
		       w.pp_bytes_per_node_period);
		sim_fini(&sim);
	}
	if (want(o, "detect")) {
		struct detect_result r = detect(fresh(&sim, o, n, 0), o->trials);

		printf("  crash detection, 0%% loss, %d crashes (suspicion timeout %.1f..%.1f "
		       "periods):\n", HD_MIN(o->trials, (int)n / 2), r.min_timeout, r.max_timeout);
		print_dist("each live node holds it suspect", r.suspect);
		print_dist("each live node holds it dead", r.dead);
		print_dist("per crash: all dead, from the crash", r.last_dead);
		print_dist("  from the first suspicion", r.verdict);
		if (r.suspect.max > 10 || r.suspect.missing) {
			printf("  MISSED: suspect within 10 periods\n");
			missed++;
		}
		if (r.verdict.max > r.min_timeout + 5 || r.dead.missing) {
			printf("  MISSED: dead within suspicion timeout + 5 periods of the suspicion\n");
			missed++;
		}
		if (r.last_dead.max > r.min_timeout + 5)
			printf("  note: %.1f periods from the crash exceed timeout + 5 (the first "
			       "probe of the crashed node came late)\n", r.last_dead.max);
		if (r.false_dead) {
			printf("  MISSED: %" PRIu64 " live nodes marked dead\n", r.false_dead);
			missed++;
		}
		sim_fini(&sim);
	}
	if (want(o, "spread")) {
		struct dist d = spread(fresh(&sim, o, n, 0), o->trials);

		printf("  dissemination, 0%% loss, %d updates:\n", o->trials);
		print_dist("an update reaches every node", d);
		if (d.max > 15 || d.missing) {
			printf("  MISSED: an update reaches every node within 15 periods\n");
			missed++;
		}
		sim_fini(&sim);
	}
	for (int l = 0; want(o, "fp") && l < o->nlosses; l++) {
		uint32_t periods = (uint32_t)(o->hours * 3600.0 * 1000.0 / o->base.probe_interval_ms);
		struct window w = steady(fresh(&sim, o, n, o->losses[l]), periods);

		printf("  %4.1f%% loss, %u periods: %" PRIu64 " failed probes of live nodes, "
		       "%" PRIu64 " suspect marks, %" PRIu64 " refutes, %" PRIu64
		       " false dead marks (%" PRIu64 " timers fired); %.0f B/node/period\n",
		       o->losses[l] * 100, periods, w.accusations, w.suspect_events, w.refutes,
		       w.false_dead, w.declared_dead, w.bytes_per_node_period);
		if (o->losses[l] <= 0.05 && w.false_dead) {
			printf("  MISSED: no live node declared dead at %.0f%% loss\n",
			       o->losses[l] * 100);
			missed++;
		}
		sim_fini(&sim);
	}
	if (want(o, "partition")) {
		double p = partition(fresh(&sim, o, n, 0), 120, 300);

		printf("  partition in halves for 120 periods, healed: whole again after %.1f "
		       "periods\n", p);
		sim_fini(&sim);
	}
	fflush(stdout);
	return missed;
}

static int parse_list_u32(const char *s, uint32_t *out, int cap)
{
	int n = 0;

	while (*s && n < cap) {
		char *end;

		out[n++] = (uint32_t)strtoul(s, &end, 10);
		s = *end == ',' ? end + 1 : end;
		if (end == s && *s)
			return -1;
	}
	return n;
}

static int parse_list_pct(const char *s, double *out, int cap)
{
	int n = 0;

	while (*s && n < cap) {
		char *end;

		out[n++] = strtod(s, &end) / 100.0;
		if (end == s)
			return -1;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: swim-sim [--report | --check] [--nodes 10,100,1000] [--seed S]\n"
		"                [--scenario all|bytes|detect|spread|fp|partition]\n"
		"                [--loss 1,5,10 (percent)] [--hours H] [--trials T]\n"
		"                [--delay MIN-MAX (ms)] [--period MS] [--gossip-interval MS]\n"
		"                [--gossip-nodes K] [--indirect K] [--suspicion-mult M]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "report", no_argument, NULL, 'r' },
		{ "check", no_argument, NULL, 'c' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "scenario", required_argument, NULL, 'S' },
		{ "loss", required_argument, NULL, 'l' },
		{ "hours", required_argument, NULL, 'H' },
		{ "trials", required_argument, NULL, 't' },
		{ "delay", required_argument, NULL, 'd' },
		{ "period", required_argument, NULL, 'p' },
		{ "gossip-interval", required_argument, NULL, 'g' },
		{ "gossip-nodes", required_argument, NULL, 'G' },
		{ "indirect", required_argument, NULL, 'k' },
		{ "suspicion-mult", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = {
		.nodes = { 10, 100, 1000 },
		.nnodes = 3,
		.seed = 1,
		.losses = { 0.01, 0.05, 0.10 },
		.nlosses = 3,
		.hours = 1.0,
		.trials = 10,
		.delay_min_ms = 1,
		.delay_max_ms = 20,
		.scenario = "all",
	};
	int missed = 0;
	int c;

	swim_config_defaults(&o.base);
	o.base.reap_ms = 24u * 3600 * 1000;	/* keep crashed nodes listed for the report */
	hd_log_set_level(HD_LOG_WARN);
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			break;	/* the defaults are the report */
		case 'c':
			o.check = true;
			o.nodes[0] = 10;
			o.nodes[1] = 100;
			o.nnodes = 2;
			o.hours = 0.25;
			o.trials = 5;
			break;
		case 'n':
			o.nnodes = parse_list_u32(optarg, o.nodes, 8);
			break;
		case 's':
			o.seed = strtoull(optarg, NULL, 10);
			break;
		case 'S':
			o.scenario = optarg;
			break;
		case 'l':
			o.nlosses = parse_list_pct(optarg, o.losses, 8);
			break;
		case 'H':
			o.hours = strtod(optarg, NULL);
			break;
		case 't':
			o.trials = atoi(optarg);
			break;
		case 'd':
			if (sscanf(optarg, "%u-%u", &o.delay_min_ms, &o.delay_max_ms) != 2)
				o.nnodes = -1;
			break;
		case 'p':
			o.base.probe_interval_ms = (uint32_t)atoi(optarg);
			o.base.probe_timeout_ms = o.base.probe_interval_ms / 2;
			break;
		case 'g':
			o.base.gossip_interval_ms = (uint32_t)atoi(optarg);
			break;
		case 'G':
			o.base.gossip_nodes = (uint32_t)atoi(optarg);
			break;
		case 'k':
			o.base.indirect_checks = (uint32_t)atoi(optarg);
			break;
		case 'm':
			o.base.suspicion_mult = (uint32_t)atoi(optarg);
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (o.nnodes <= 0 || o.nlosses <= 0 || o.trials <= 0 || o.delay_max_ms < o.delay_min_ms ||
	    o.delay_max_ms >= o.base.probe_timeout_ms / 2) {
		usage();
		return 2;
	}
	for (int i = 0; i < o.nnodes; i++)
		missed += run_n(&o, o.nodes[i]);
	if (o.check)
		printf("%s: %d target(s) missed\n", missed ? "FAIL" : "ok", missed);
	return o.check && missed ? 1 : 0;
}
