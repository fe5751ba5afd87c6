/*
 * cluster/sim/repl_sim.c - `repl-sim`: a deterministic simulation of queue replication and
 * failover (docs/replication.md, core/replica.c), checked against its invariants.
 *
 * A MODEL, not the real code: core/replica.c, dest.c and route_queue.c need shards, xrings
 * and the route thread, so this file restates their replication logic over one event loop:
 *   - hosts (3..5) whose processes crash and restart as new members, pause (SIGSTOP: links
 *     stay open, everything sent to them waits in their inbox) and are partitioned;
 *   - the controller as Raft gives it: one totally ordered list of views (epoch, members);
 *     only a side holding a majority of the latest view's members changes it, one member per
 *     entry, after a detection delay; each node applies views when the leader's heartbeat
 *     reaches it;
 *   - per-pair FIFO links with latency and per-frame transmission time; a crash or a
 *     partition breaks a link (what is in flight is lost); a link that comes back makes
 *     each owner stream a snapshot to that node (RESYNC) and consumers register again;
 *   - placement: rendezvous order of each queue over the members of the node's view;
 *   - the owner side (rseq numbering, REPL_SEND, DELIVERED, REMOVE, RESET + snapshot +
 *     MARK, receipts once every backup's acknowledged rseq covers them), the backup side
 *     (one replica per queue, switched to whichever owner streams it, promoted when this
 *     node owns the queue and the streaming owner left the placement, dropped on a planned
 *     move or when this node no longer holds the queue), hand-overs of a queue whose owner
 *     changed to a node that was not its backup;
 *   - clients: producers sending receipted SENDs one at a time through a node (resending
 *     the same message id after an ERROR or a timeout), consumers with client-individual
 *     acks, some of which crash.
 * By default the model adds what docs/replication.md designs on top of the code: replication
 * frames carry the view epoch and a backup refuses older ones (invariant 2); an owner
 * delivers only under leases from every backup, a new owner waits L (invariant 3); a node
 * without controller contact for L stops delivering and acknowledging (invariant 5);
 * placement by process, not name (a restarted process owns nothing until the view lists
 * it); members join before they are active (stage 4: snapshots, then "in sync", then
 * active; a planned move promotes the joiner's copy and the old owner keeps a replica);
 * a process taken out hands back only what no replica of its last view still holds.
 * `--no-leases` models the code as it is (none of these); `--fix-handback` replaces the
 * last rule by "hand back unless an in-sync copy survived" (see the findings).
 *
 * After each run (faults, then every fault healed and the queues drained) the checker
 * proves: (1) every receipted message was delivered at least once, unless every member
 * that ever held it crashed ("lost to R failures"; losses where a live holder dropped its
 * copy by the hand-back rule are classed apart, and fail only with --strict); (2) no two
 * owners of a queue dispatched in overlapping intervals; (3) duplicates are counted by
 * cause (a delivered-unacked message redelivered, marked or not; a producer's resend; a
 * MESSAGE that arrived after its ACK because its consumer's node was paused); (4) no owner
 * dispatches a message whose ACK every backup applied. A run whose controller ends without
 * a full view (no majority of the view's members left: a restarted process is a new
 * member) is "stuck": its undelivered messages are counted as unavailable, not judged.
 *
 * One thread, virtual time in microseconds, one event heap ordered by (time, sequence) and
 * one seeded PRNG: a run is a function of its seed and options, so `--seed S --trace`
 * replays a failure event by event.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOSTS 5
#define MAX_QUEUES 3
#define MAX_MEMBERS 64		/* process incarnations per run (holders are a 64-bit mask) */
#define MAX_BACKUPS 4
#define MAX_PRODUCERS 3
#define MAX_CONSUMERS 24	/* consumer clients per run, replacements included */
#define NONE (-1)

#define MS ((uint64_t)1000)	/* time is in microseconds */
#define SEC (1000 * MS)
#define LEASE_US (1 * SEC)	/* L of docs/replication.md */
#define TICK_US (50 * MS)	/* node and controller timers */
#define PING_EVERY 5		/* lease pings every 5 ticks (L / 4) */
#define RECEIPT_TIMEOUT_US (2 * SEC)
#define FAULTS_FROM_US (2 * SEC)
#define FAULTS_UNTIL_US (24 * SEC)
#define PRODUCE_UNTIL_US (26 * SEC)
#define HEAL_AT_US (27 * SEC)
#define RUN_US (60 * SEC)
#define TRACE_LINES 400

/* ---- frames: what nodes and clients send each other ---- */

enum frame_kind {
	F_SEND,		/* producer -> node -> owner: msg, q, client, attempt, origin */
	F_DONE,		/* owner -> origin node -> producer: RECEIPT (err 0) or ERROR */
	F_REPL_SEND,	/* owner -> backup: one message of the stream or a snapshot */
	F_REPL_OP,	/* owner <-> backup: op below */
	F_DELIVER,	/* owner -> consumer's node -> consumer: MESSAGE */
	F_ACK,		/* consumer -> node -> the owner that delivered */
	F_CONS_ADD,	/* consumer's node -> owner: register */
	F_CONS_DEL,	/* consumer's node -> owner: unregister (unacked go back) */
	F_DROPPED,	/* owner -> consumer's node: not here (any more), register by placement */
	F_HANDOVER,	/* old owner -> new owner: a held message */
};

enum repl_op { OP_DELIVERED, OP_REMOVE, OP_RESET, OP_MARK, OP_ACK, OP_PING };


struct frame {
	uint8_t kind;		/* enum frame_kind */
	uint8_t op;		/* enum repl_op */
	uint8_t q;
	bool redelivered;
	bool delivered;		/* REPL_SEND of a snapshot: the message is out, unacked */
	int8_t err;		/* DONE: 0 receipt, 1 error */
	int8_t origin;		/* SEND/DONE: the node the producer is on */
	uint32_t copy;		/* one enqueued SEND attempt (dup accounting) */
	uint32_t msg;		/* the producer's message id */
	uint32_t client;	/* producer or consumer id */
	uint32_t attempt;	/* the producer's try of msg */
	uint32_t tenure;	/* DELIVER/ACK: which life of the queue at the owner */
	uint64_t rseq;
	uint64_t tag;		/* DELIVER/ACK: the delivery */
	uint64_t epoch;		/* replication: the sender's view epoch (design fence) */
	uint64_t sent_us;	/* replication: when the owner sent it (acks echo it: lease) */
};

enum ev_kind {
	EV_FRAME,	/* node -> node over the link (to, from, gen) */
	EV_LINK_DOWN,	/* a node learns its link to `from` broke */
	EV_LINK_UP,	/* a node learns its link to `from` is (re)established */
	EV_HB,		/* the controller leader's heartbeat reaches a node: views up to f.epoch */
	EV_NODE_TICK,
	EV_CTRL_TICK,
	EV_TO_CLIENT,	/* node -> client (client id in f.client, connection gen in gen) */
	EV_TO_NODE,	/* client -> node (gen: the client's connection) */
	EV_PRODUCER,	/* producer timer (to = producer) */
	EV_CONSUMER_ACK,	/* a consumer acks what it got (f) */
	EV_FAULT,	/* to = index in the fault list */
	EV_RESUME,	/* a paused node runs again */
	EV_RESTART,	/* a crashed host starts a new process */
	EV_HEAL,	/* a partition ends */
	EV_CONSUMER_NEW,	/* a consumer (re)connects to a node */
	EV_LINK_DIAL,	/* hosts `to` and `from` (re)establish their link */
	EV_HEAL_ALL,	/* the end of the faults: everything heals, restarts, resumes */
	EV_HOOK,	/* a hooked fault: effect f.op on the transfer from `from` to `to` */
};

struct event {
	uint64_t at;
	uint64_t seq;		/* tie-break: equal times run in creation order */
	uint8_t kind;
	int8_t to;
	int8_t from;
	uint32_t gen;		/* link or client connection generation at sending */
	struct frame f;
};

/* ---- state ---- */

/* A queue entry at an owner (ready or unacked) or in a replica. */
struct qent {
	uint32_t copy;
	uint64_t rseq;
	uint64_t tag;		/* unacked: its delivery tag */
	int32_t consumer;	/* unacked: the consumer it went to */
	bool redelivered;
	bool delivered;		/* replica: DELIVERED seen */
};

struct qvec {
	struct qent *v;
	uint32_t n, cap;
};

struct wait {			/* a receipt waiting for the backups */
	uint64_t rseq;
	uint32_t msg, client, attempt;
	int origin;
};

/* Owner side of one queue on one node (dest_queue + repl_owner). */
struct oqueue {
	bool live;
	uint32_t tenure;
	struct qvec ready, unacked;
	uint32_t handed_in;
	uint64_t next_tag;
	bool has_repl;
	uint64_t next_rseq;
	bool unplaced;
	int nbackups;
	int backup[MAX_BACKUPS];
	uint64_t acked[MAX_BACKUPS];
	uint64_t lease_until[MAX_BACKUPS];
	uint64_t mark[MAX_HOSTS];	/* design: rseq a backup's copy is complete at */
	struct wait *wait;
	uint32_t nwait, wait_cap;
	uint64_t deliver_from;	/* design: a new owner waits out the old one's lease */
	uint32_t cons[MAX_CONSUMERS];
	int cons_host[MAX_CONSUMERS];
	uint32_t ncons, rr;
};

/* Backup side of one queue on one node. */
struct replica {
	bool live;
	int owner;		/* host streaming it */
	uint64_t max_rseq;
	struct qvec msgs;	/* rseq ascending */
};

struct parked {			/* a hand-over waiting for a link */
	int q;
	uint32_t copy, msg;
	bool redelivered;
};

struct node {
	bool up;
	bool paused;
	int member;		/* incarnation, NONE when down */
	int group;		/* partition side */
	uint64_t epoch;		/* view applied, 0 none yet */
	uint32_t members;	/* placement: hosts of that view */
	uint32_t last_hosts;	/* design: the last view this process was active in */
	uint64_t ctrl_contact;	/* last heartbeat from a leader */
	uint64_t up_since;
	uint64_t last_ack_sent[MAX_QUEUES];	/* design: replication acks to anyone */
	bool link_ok[MAX_HOSTS];		/* this node's belief */
	struct oqueue q[MAX_QUEUES];
	struct replica rep[MAX_QUEUES];
	int reg[MAX_CONSUMERS];		/* local consumers: owner host registered at */
	bool local[MAX_CONSUMERS];	/* the consumer is connected here */
	struct event *inbox;
	uint32_t ninbox, inbox_cap;
	struct parked *outbox;
	uint32_t noutbox, outbox_cap;
	uint32_t ticks;
	/* --gossip-placement: this node's failure detector (SWIM, as a delay) */
	uint64_t unresp_since[MAX_HOSTS];
	uint64_t detect_us[MAX_HOSTS];
	uint32_t swim_dead;	/* hosts it calls dead: out of its placement */
};

struct view {
	uint64_t epoch;
	uint32_t hosts;			/* bit per host */
	uint32_t joining;		/* design: hosts not active yet (subset of hosts) */
	int member[MAX_HOSTS];		/* which incarnation, NONE */
	uint64_t commit_us;
};

struct msg {
	uint8_t q;
	uint32_t sends;		/* attempts that reached an owner's queue (copies) */
	bool receipted;
	bool dropped_for_survivor;	/* a live holder dropped it: "another replica holds it" */
	uint64_t holders;	/* members that ever held a copy (queue or replica) */
	uint32_t deliveries;
	uint32_t first_copy_delivered;	/* copy + 1 of its first delivery, 0 none */
};

struct copy {
	uint32_t msg;
	uint32_t deliveries;
	bool ack_applied;	/* an owner applied the consumer's ACK */
	bool durable;		/* ... and every backup applied the REMOVE */
	uint32_t ack_need, ack_got;
};

struct tenure {			/* one life of a queue at one owner: its delivery interval */
	int host;
	int q;
	uint64_t first_us, last_us;
	uint32_t dispatches;
};

struct producer {
	int host;
	uint32_t conn;
	bool busy;
	uint32_t msg, attempt;
	uint64_t deadline;
	uint32_t sent;
};

struct consumer {
	bool alive;
	int host;
	int q;
	uint32_t conn;
	uint32_t got;
};

enum fault_kind { FK_CRASH, FK_PAUSE, FK_PARTITION, FK_DOUBLE_CRASH, FK_HOOK_SNAPSHOT,
		  FK_HOOK_HANDOVER, FK_CONSUMER_CRASH, FK_FLAP };

struct fault {
	uint8_t kind;
	uint64_t at, len;
};

struct opts {
	bool leases;		/* design fences: epochs on frames, leases, controller contact */
	bool trace;
	bool check;
	bool quiet;		/* no line per failing seed (--check's second half) */
	bool fix_handback;	/* --fix-handback: survivors are in-sync copies, not placement */
	bool gossip_placement;	/* --gossip-placement: the code's "view and gossip-alive" */
	uint64_t seed, start;
	uint32_t seeds;
	int nodes;		/* 0: from the seed */
	int replicas;		/* 0: from the seed */
};

struct sim {
	const struct opts *o;
	uint64_t now;
	uint64_t rng;
	struct event *heap;
	size_t nheap, heap_cap;
	uint64_t ev_seq;
	int n, r;
	struct node node[MAX_HOSTS];
	bool member_crashed[MAX_MEMBERS];
	int nmembers;
	/* links: state and generation per unordered pair, FIFO arrival per ordered pair */
	bool link_up[MAX_HOSTS][MAX_HOSTS];
	uint32_t link_gen[MAX_HOSTS][MAX_HOSTS];
	uint64_t link_last[MAX_HOSTS][MAX_HOSTS];
	bool partitioned;
	/* controller */
	struct view *views;
	uint32_t nviews, views_cap;
	int leader;
	uint64_t leader_ready;
	uint64_t unresp_since[MAX_HOSTS];
	uint64_t detect_us[MAX_HOSTS];
	/* clients */
	struct producer prod[MAX_PRODUCERS];
	int nprod;
	struct consumer cons[MAX_CONSUMERS];
	int ncons;
	uint32_t next_msg;
	/* faults */
	struct fault faults[16];
	int nfaults;
	int hook_snapshot, hook_handover;	/* armed: which effect, NONE */
	/* checker */
	struct msg *msgs;
	uint32_t nmsgs_cap;
	struct copy *copies;
	uint32_t ncopies, copies_cap;
	struct tenure *tenures;
	uint32_t ntenures, tenures_cap;
	uint64_t dup_redelivered, dup_unmarked, dup_resend, acked_again, late_after_ack;
	bool keep_trace;	/* fill the ring (a rerun of a failing seed) */
	char trace[TRACE_LINES][160];
	uint32_t ntrace;
};

static struct sim *S;
static bool S_strict;	/* --strict: the hand-back losses fail too */

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "repl-sim: out of memory\n");
		exit(3);
	}
	return q;
}

#define GROW(arr, n, cap)                                                                  \
	do {                                                                               \
		if ((n) == (cap)) {                                                        \
			(cap) = (cap) ? (cap) * 2 : 16;                                    \
			(arr) = xrealloc((arr), (size_t)(cap) * sizeof(*(arr)));          \
		}                                                                          \
	} while (0)

static uint64_t rnd(void)
{
	uint64_t z = (S->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_range(uint64_t lo, uint64_t hi)	/* [lo, hi] */
{
	return lo + rnd() % (hi - lo + 1);
}

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Always kept (a ring of the last lines): a failure prints its tail without a rerun. */
static void trace(const char *fmt, ...)
{
	char *line;
	int len;
	va_list ap;

	if (!S->keep_trace && !S->o->trace)
		return;
	line = S->trace[S->ntrace++ % TRACE_LINES];
	len = snprintf(line, 160, "%9.3f ", (double)S->now / 1000.0);
	va_start(ap, fmt);
	vsnprintf(line + len, 160 - (size_t)len, fmt, ap);
	va_end(ap);
	if (S->o->trace)
		printf("%s\n", line);
}

/* ---- event heap ---- */

static bool ev_before(const struct event *a, const struct event *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void push(struct event ev)
{
	size_t i;

	GROW(S->heap, S->nheap, S->heap_cap);
	ev.seq = S->ev_seq++;
	i = S->nheap++;
	while (i && ev_before(&ev, &S->heap[(i - 1) / 2])) {
		S->heap[i] = S->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	S->heap[i] = ev;
}

static struct event pop(void)
{
	struct event top = S->heap[0];
	struct event last = S->heap[--S->nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= S->nheap)
			break;
		if (c + 1 < S->nheap && ev_before(&S->heap[c + 1], &S->heap[c]))
			c++;
		if (!ev_before(&S->heap[c], &last))
			break;
		S->heap[i] = S->heap[c];
		i = c;
	}
	if (S->nheap)
		S->heap[i] = last;
	return top;
}

static void at(uint64_t when, uint8_t kind, int to, int from, const struct frame *f)
{
	push((struct event){ .at = when, .kind = kind, .to = (int8_t)to, .from = (int8_t)from,
			     .f = f ? *f : (struct frame){ 0 } });
}

/* ---- queue vectors ---- */

static void qv_insert(struct qvec *v, uint32_t i, struct qent e)
{
	GROW(v->v, v->n, v->cap);
	memmove(&v->v[i + 1], &v->v[i], (v->n - i) * sizeof(e));
	v->v[i] = e;
	v->n++;
}

static void qv_remove(struct qvec *v, uint32_t i)
{
	memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof(v->v[0]));
	v->n--;
}

static void qv_free(struct qvec *v)
{
	free(v->v);
	memset(v, 0, sizeof(*v));
}

/* ---- placement: rendezvous over the hosts of a view ---- */

static uint64_t score(int q, int host)
{
	uint64_t z = (uint64_t)(q * 131 + host + 1) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	return z ^ (z >> 27);
}

/* The first `want` hosts of `hosts` in q's rendezvous order; removing one host never
 * reorders the others. Returns how many. */
static int replicas_of(uint32_t hosts, int q, int want, int out[MAX_HOSTS])
{
	int n = 0;

	for (int h = 0; h < S->n; h++) {
		int i;

		if (!(hosts & 1u << h))
			continue;
		for (i = n; i > 0 && score(q, out[i - 1]) < score(q, h); i--)
			out[i] = out[i - 1];
		out[i] = h;
		n++;
	}
	return n < want ? n : want;
}

static int owner_of(const struct node *nd, int q)
{
	int idx[MAX_HOSTS];

	return replicas_of(nd->members, q, S->r, idx) ? idx[0] : NONE;
}

static int self_of(const struct node *nd)
{
	return (int)(nd - S->node);
}

static bool in_view(const struct node *nd)
{
	return nd->members & 1u << self_of(nd);
}

/* Design, stage 4: this process is in the view, not active yet (it takes copies in). */
static bool is_joining(const struct node *nd)
{
	const struct view *v = &S->views[nd->epoch];
	int self = self_of(nd);

	return S->o->leases && nd->epoch && v->member[self] == nd->member &&
	       (v->joining & 1u << self);
}

/* Whether q will be held by `host` once it is active over `hosts`. */
static bool will_hold(uint32_t hosts, int q, int host)
{
	int idx[MAX_HOSTS];
	int k = replicas_of(hosts | 1u << host, q, S->r, idx);

	while (k-- > 0)
		if (idx[k] == host)
			return true;
	return false;
}

/* Design: a process taken out of the view keeps nothing that a replica of its last view
 * still holds in the current one (invariant 4); what no such replica holds it hands to
 * the current owner ("every replica on the minority side"). */
static bool survivor_holds(const struct node *nd, int q)
{
	int idx[MAX_HOSTS];
	int k = replicas_of(nd->last_hosts, q, S->r, idx);

	if (!nd->last_hosts)
		return true;	/* never active: all it has are copies of active members' */
	for (int i = 0; i < k; i++)
		if (idx[i] != self_of(nd) && (nd->members & 1u << idx[i]))
			return true;
	return false;
}

/* ---- links ---- */

static int lo(int a, int b)
{
	return a < b ? a : b;
}

static int hi(int a, int b)
{
	return a < b ? b : a;
}

static bool hosts_can_talk(int a, int b)
{
	return S->node[a].up && S->node[b].up && S->node[a].group == S->node[b].group;
}

/* Sends f from host `from` to `to` (not itself) on their link: lost when the link is
 * down; FIFO per direction (arrival never before the previous frame's), 0.2-1 ms latency,
 * 20 us per frame on the wire (a snapshot of many messages takes a while). */
static void link_send(int from, int to, const struct frame *f)
{
	uint64_t t = S->now + rnd_range(200, 1000);

	if (!S->link_up[lo(from, to)][hi(from, to)])
		return;
	if (t < S->link_last[from][to])
		t = S->link_last[from][to];
	t += 20;
	S->link_last[from][to] = t;
	push((struct event){ .at = t, .kind = EV_FRAME, .to = (int8_t)to, .from = (int8_t)from,
			     .gen = S->link_gen[lo(from, to)][hi(from, to)], .f = *f });
}

static void on_frame(struct node *nd, int from, const struct frame *f);

/* Sends f to host `to`, which may be this node itself (handled at once, as a shard's
 * message to itself would be after this one). */
static void node_send(struct node *nd, int to, const struct frame *f)
{
	int self = self_of(nd);

	if (to == self) {
		at(S->now, EV_FRAME, to, self, f);
		return;
	}
	if (nd->link_ok[to])
		link_send(self, to, f);
}

static void to_client(struct node *nd, const struct frame *f, uint32_t conn)
{
	push((struct event){ .at = S->now + rnd_range(50, 300), .kind = EV_TO_CLIENT,
			     .to = (int8_t)self_of(nd), .gen = conn, .f = *f });
}

static void link_break(int a, int b)
{
	if (!S->link_up[lo(a, b)][hi(a, b)])
		return;
	S->link_up[lo(a, b)][hi(a, b)] = false;
	S->link_gen[lo(a, b)][hi(a, b)]++;
	trace("link %d-%d breaks", a, b);
	at(S->now, EV_LINK_DOWN, a, b, NULL);
	at(S->now, EV_LINK_DOWN, b, a, NULL);
}

/* Re-dials every pair that can talk and has no link (100-400 ms, as the route's backoff). */
static void links_reconnect(void)
{
	for (int a = 0; a < S->n; a++)
		for (int b = a + 1; b < S->n; b++)
			if (!S->link_up[a][b] && hosts_can_talk(a, b))
				at(S->now + rnd_range(100 * MS, 400 * MS), EV_LINK_DIAL, a, b, NULL);
}

/* ---- checker bookkeeping ---- */

static void held_by(const struct node *nd, uint32_t copy)
{
	S->msgs[S->copies[copy].msg].holders |= 1ull << nd->member;
}

static uint32_t new_copy(uint32_t msg)
{
	GROW(S->copies, S->ncopies, S->copies_cap);
	S->copies[S->ncopies] = (struct copy){ .msg = msg };
	S->msgs[msg].sends++;
	return S->ncopies++;
}

static uint32_t new_tenure(int host, int q)
{
	GROW(S->tenures, S->ntenures, S->tenures_cap);
	S->tenures[S->ntenures] = (struct tenure){ .host = host, .q = q };
	return S->ntenures++;
}

static void tenure_dispatched(uint32_t t)
{
	struct tenure *te = &S->tenures[t];

	if (!te->dispatches++)
		te->first_us = S->now;
	te->last_us = S->now;
}

/* A live process drops these copies on the rule that a surviving replica holds them (the
 * hand-back rule); a loss of such a message is classed apart (docs/replication.md, "What
 * the simulation found"). */
static void dropped_for_survivor(const struct qvec *v)
{
	for (uint32_t i = 0; i < v->n; i++)
		S->msgs[S->copies[v->v[i].copy].msg].dropped_for_survivor = true;
}

/* ---- owner side (core/replica.c, dest.c) ---- */

static void send_op(struct node *nd, int to, int q, uint8_t op, uint64_t rseq)
{
	struct frame f = { .kind = F_REPL_OP, .op = op, .q = (uint8_t)q, .rseq = rseq,
			   .epoch = nd->epoch, .sent_us = S->now };

	node_send(nd, to, &f);
}

static void send_message(struct node *nd, int to, int q, const struct qent *e, bool delivered)
{
	struct frame f = { .kind = F_REPL_SEND, .q = (uint8_t)q, .copy = e->copy,
			   .msg = S->copies[e->copy].msg, .rseq = e->rseq,
			   .redelivered = e->redelivered, .delivered = delivered,
			   .epoch = nd->epoch, .sent_us = S->now };

	node_send(nd, to, &f);
}

/* backups_of(): the queue's backups under this node's placement; *ours false when this
 * node does not own it there. */
static int backups_of(const struct node *nd, int q, int out[MAX_BACKUPS], bool *ours)
{
	int idx[MAX_HOSTS];
	int n = replicas_of(nd->members, q, S->r, idx);

	*ours = true;
	if (S->r <= 1)
		return 0;
	if (n == 0 || idx[0] != self_of(nd)) {
		*ours = false;
		return 0;
	}
	for (int i = 1; i < n; i++)
		out[i - 1] = idx[i];
	n--;
	/* design, stage 4: a joining member that will hold q gets the stream (and a
	 * snapshot) before it is made active */
	for (int j = 0; S->o->leases && nd->epoch && j < S->n; j++) {
		if ((S->views[nd->epoch].joining & 1u << j) && n < MAX_BACKUPS &&
		    will_hold(nd->members, q, j))
			out[n++] = j;
	}
	return n;
}

static struct oqueue *owner_state(struct node *nd, int q)
{
	struct oqueue *oq = &nd->q[q];
	bool ours;

	if (!oq->has_repl) {
		oq->has_repl = true;
		oq->next_rseq = S->now << 12;	/* never reused by an earlier life */
		oq->nbackups = backups_of(nd, q, oq->backup, &ours);
		oq->unplaced = !ours;
		for (int i = 0; i < oq->nbackups; i++) {
			oq->acked[i] = 0;
			oq->lease_until[i] = 0;
			oq->mark[oq->backup[i]] = oq->next_rseq;
			send_op(nd, oq->backup[i], q, OP_RESET, 0);
		}
	}
	return oq;
}

static struct oqueue *queue_get(struct node *nd, int q)
{
	struct oqueue *oq = &nd->q[q];

	if (!oq->live) {
		memset(oq, 0, sizeof(*oq));
		oq->live = true;
		oq->tenure = new_tenure(self_of(nd), q);
		oq->next_tag = S->now << 12;
	}
	return oq;
}

static void enqueued(struct node *nd, int q, struct qent *e)
{
	struct oqueue *oq = owner_state(nd, q);

	e->rseq = ++oq->next_rseq;
	held_by(nd, e->copy);
	for (int i = 0; i < oq->nbackups; i++)
		send_message(nd, oq->backup[i], q, e, false);
}

static void answer(struct node *nd, const struct wait *w, int err)
{
	struct frame f = { .kind = F_DONE, .msg = w->msg, .client = w->client,
			   .attempt = w->attempt, .err = (int8_t)err, .origin = (int8_t)w->origin };

	node_send(nd, w->origin, &f);
}

static uint64_t min_acked(const struct oqueue *oq)
{
	uint64_t m = UINT64_MAX;

	for (int i = 0; i < oq->nbackups; i++)
		if (oq->acked[i] < m)
			m = oq->acked[i];
	return m;
}

static void release(struct node *nd, struct oqueue *oq)
{
	uint64_t upto = min_acked(oq);
	uint32_t k = 0;

	while (k < oq->nwait && oq->wait[k].rseq <= upto)
		answer(nd, &oq->wait[k++], 0);
	memmove(oq->wait, oq->wait + k, (oq->nwait - k) * sizeof(*oq->wait));
	oq->nwait -= k;
}

static void queue_gone(struct node *nd, struct oqueue *oq, int err)
{
	for (uint32_t i = 0; i < oq->nwait; i++)
		answer(nd, &oq->wait[i], err);
	free(oq->wait);
	oq->wait = NULL;
	oq->nwait = oq->wait_cap = 0;
	oq->has_repl = false;
}

static void op_to_backups(struct node *nd, struct oqueue *oq, int q, uint8_t op, uint64_t rseq)
{
	for (int i = 0; oq->has_repl && i < oq->nbackups; i++)
		send_op(nd, oq->backup[i], q, op, rseq);
}

static int by_rseq(const void *a, const void *b)
{
	uint64_t x = ((const struct qent *)a)->rseq, y = ((const struct qent *)b)->rseq;

	return x < y ? -1 : x > y;
}

static void snapshot_to(struct node *nd, int q, int to);

/* The hook faults: a crash or a partition of one end while a snapshot or a hand-over is
 * on the wire. */
static void hook_fire(int *hook, int a, int b);

static void snapshot_to(struct node *nd, int q, int to)
{
	struct oqueue *oq = &nd->q[q];
	uint32_t k = 0, n = oq->ready.n + oq->unacked.n;
	struct qent *all = xrealloc(NULL, (n + 1) * sizeof(*all));

	for (uint32_t i = 0; i < oq->ready.n; i++) {
		all[k] = oq->ready.v[i];
		all[k++].delivered = false;
	}
	for (uint32_t i = 0; i < oq->unacked.n; i++) {
		all[k] = oq->unacked.v[i];
		all[k++].delivered = true;
	}
	qsort(all, k, sizeof(*all), by_rseq);
	trace("n%d q%d snapshot of %u to n%d", self_of(nd), q, k, to);
	send_op(nd, to, q, OP_RESET, 0);
	for (uint32_t i = 0; i < k; i++)
		send_message(nd, to, q, &all[i], all[i].delivered);
	send_op(nd, to, q, OP_MARK, oq->next_rseq);
	oq->mark[to] = oq->next_rseq;
	free(all);
	if (k)
		hook_fire(&S->hook_snapshot, self_of(nd), to);
}

static void queue_placed(struct node *nd, int q)
{
	struct oqueue *oq = owner_state(nd, q);
	int now[MAX_BACKUPS];
	uint64_t acked[MAX_BACKUPS], lease[MAX_BACKUPS];
	bool ours;
	int n = backups_of(nd, q, now, &ours);

	for (int i = 0; i < n; i++) {
		int j = 0;

		while (j < oq->nbackups && oq->backup[j] != now[i])
			j++;
		if (j < oq->nbackups) {
			acked[i] = oq->acked[j];
			lease[i] = oq->lease_until[j];
		} else {
			acked[i] = 0;
			lease[i] = 0;
			snapshot_to(nd, q, now[i]);
		}
	}
	memcpy(oq->backup, now, (size_t)n * sizeof(now[0]));
	memcpy(oq->acked, acked, (size_t)n * sizeof(acked[0]));
	memcpy(oq->lease_until, lease, (size_t)n * sizeof(lease[0]));
	oq->nbackups = n;
	oq->unplaced = !ours;
	if (!oq->unplaced)
		release(nd, oq);
}

/* Design invariants 3 and 5: may this owner hand out messages now? Only the owner of its
 * own view (a process outside it - removed, or restarted under a listed name - holds
 * what others send it, but delivers nothing), under every backup's lease, and past the
 * wait of a new owner. */
static bool may_deliver(const struct node *nd, const struct oqueue *oq, int q)
{
	if (!S->o->leases)
		return true;
	if (owner_of(nd, q) != self_of(nd))
		return false;
	if (S->now < oq->deliver_from || S->now > nd->ctrl_contact + LEASE_US)
		return false;
	for (int i = 0; i < oq->nbackups; i++)
		if (oq->lease_until[i] <= S->now)
			return false;
	return true;
}

static void queue_maybe_drop(struct node *nd, int q)
{
	struct oqueue *oq = &nd->q[q];

	if (!oq->live || oq->ncons || oq->nwait || oq->ready.n || oq->unacked.n)
		return;
	queue_gone(nd, oq, 0);
	qv_free(&oq->ready);
	qv_free(&oq->unacked);
	oq->live = false;
}

static void dispatch(struct node *nd, int q)
{
	struct oqueue *oq = &nd->q[q];

	while (oq->live && oq->ready.n && oq->ncons && may_deliver(nd, oq, q)) {
		uint32_t c = oq->rr++ % oq->ncons;
		struct qent e = oq->ready.v[0];
		struct frame f = { .kind = F_DELIVER, .q = (uint8_t)q, .copy = e.copy,
				   .msg = S->copies[e.copy].msg, .client = oq->cons[c],
				   .redelivered = e.redelivered, .tenure = oq->tenure,
				   .origin = (int8_t)self_of(nd) };

		qv_remove(&oq->ready, 0);
		if (oq->handed_in)
			oq->handed_in--;
		if (S->copies[e.copy].durable) {
			S->acked_again++;
			trace("VIOLATION: n%d q%d delivers m%u (copy %u) again after its ack was "
			      "replicated", self_of(nd), q, f.msg, e.copy);
		}
		e.tag = ++oq->next_tag;
		e.consumer = (int32_t)oq->cons[c];
		f.tag = e.tag;
		op_to_backups(nd, oq, q, OP_DELIVERED, e.rseq);
		qv_insert(&oq->unacked, oq->unacked.n, e);
		tenure_dispatched(oq->tenure);
		trace("n%d q%d delivers m%u (copy %u%s) to c%u", self_of(nd), q, f.msg, e.copy,
		      e.redelivered ? ", redelivered" : "", f.client);
		node_send(nd, oq->cons_host[c], &f);
	}
}

/* A consumer leaves: what it had not acked goes back to the front, redelivered, in order. */
static void requeue_consumer(struct oqueue *oq, uint32_t cid)
{
	for (uint32_t i = oq->unacked.n; i > 0; i--) {
		struct qent e = oq->unacked.v[i - 1];

		if (e.consumer != (int32_t)cid)
			continue;
		qv_remove(&oq->unacked, i - 1);
		e.redelivered = true;
		qv_insert(&oq->ready, 0, e);
		if (oq->handed_in)
			oq->handed_in++;
	}
}

static void consumer_del(struct node *nd, int q, uint32_t cid)
{
	struct oqueue *oq = &nd->q[q];

	if (!oq->live)
		return;
	for (uint32_t i = 0; i < oq->ncons; i++) {
		if (oq->cons[i] != cid)
			continue;
		oq->cons[i] = oq->cons[--oq->ncons];
		oq->cons_host[i] = oq->cons_host[oq->ncons];
		requeue_consumer(oq, cid);
		break;
	}
	dispatch(nd, q);
	queue_maybe_drop(nd, q);
}

static void park(struct node *nd, int q, uint32_t copy, bool redelivered)
{
	GROW(nd->outbox, nd->noutbox, nd->outbox_cap);
	nd->outbox[nd->noutbox++] = (struct parked){ .q = q, .copy = copy,
						     .msg = S->copies[copy].msg,
						     .redelivered = redelivered };
}

/* A hand-over goes to q's owner by this node's placement, or waits for the link. */
static void hand_over(struct node *nd, int q, uint32_t copy, bool redelivered)
{
	int to = owner_of(nd, q);
	struct frame f = { .kind = F_HANDOVER, .q = (uint8_t)q, .copy = copy,
			   .msg = S->copies[copy].msg, .redelivered = redelivered };

	if (to == NONE || to == self_of(nd) || !nd->link_ok[to]) {
		park(nd, q, copy, redelivered);
		return;
	}
	node_send(nd, to, &f);
	hook_fire(&S->hook_handover, self_of(nd), to);
}

static void outbox_flush(struct node *nd)
{
	struct parked *held = nd->outbox;
	uint32_t n = nd->noutbox;

	nd->outbox = NULL;
	nd->noutbox = nd->outbox_cap = 0;
	for (uint32_t i = 0; i < n; i++)
		if (owner_of(nd, held[i].q) == self_of(nd)) {
			at(S->now, EV_FRAME, self_of(nd), self_of(nd),
			   &(struct frame){ .kind = F_HANDOVER, .q = (uint8_t)held[i].q,
					    .copy = held[i].copy, .msg = held[i].msg,
					    .redelivered = held[i].redelivered });
		} else {
			hand_over(nd, held[i].q, held[i].copy, held[i].redelivered);
		}
	free(held);
}

/* repl_new_owner_has_copy(): leaving, and the new owner is one of q's backups. */
static bool new_owner_has_copy(const struct node *nd, const struct oqueue *oq, int q)
{
	int owner = owner_of(nd, q);

	if (in_view(nd) || !oq->has_repl || owner == NONE)
		return false;
	for (int i = 0; i < oq->nbackups; i++)
		if (oq->backup[i] == owner)
			return true;
	return false;
}

static struct replica *replica_get(struct node *nd, int q, int owner, bool create);

enum move { MOVE_HAND_OVER, MOVE_DROP, MOVE_TO_REPLICA };

/* The proposed fix: an owner taken out drops q only when a backup that acknowledged its
 * snapshot's MARK (so holds everything receipted) is still in the view. */
static bool insync_backup_survives(const struct node *nd, int q)
{
	const struct oqueue *oq = &nd->q[q];

	if (!nd->last_hosts)
		return true;
	for (int b = 0; oq->has_repl && b < oq->nbackups; b++)
		if ((nd->members & 1u << oq->backup[b]) && oq->mark[oq->backup[b]] &&
		    oq->acked[b] >= oq->mark[oq->backup[b]])
			return true;
	return false;
}

/* What the old owner does with q's messages. The code: hands them over, unless leaving
 * with copies on the new owner. The design: a member that stays keeps them as a replica
 * when it still holds q (a planned move: the new owner was synced as a joiner and
 * promotes its copy), else drops them; a process taken out drops them when a replica of
 * its last view survived, else hands them over. */
static enum move move_kind(const struct node *nd, int q)
{
	int idx[MAX_HOSTS];
	int k;

	if (!S->o->leases)
		return new_owner_has_copy(nd, &nd->q[q], q) ? MOVE_DROP : MOVE_HAND_OVER;
	if (is_joining(nd))
		return MOVE_HAND_OVER;
	if (!in_view(nd) && S->o->fix_handback)
		return insync_backup_survives(nd, q) ? MOVE_DROP : MOVE_HAND_OVER;
	if (!in_view(nd))
		return survivor_holds(nd, q) ? MOVE_DROP : MOVE_HAND_OVER;
	k = replicas_of(nd->members, q, S->r, idx);
	while (k-- > 0)
		if (idx[k] == self_of(nd))
			return MOVE_TO_REPLICA;
	return MOVE_DROP;
}

/* Design: the queue becomes this node's replica of the new owner's stream (it will
 * stream a snapshot over it); delivered-unacked messages keep their mark. */
static void keep_as_replica(struct node *nd, int q)
{
	struct oqueue *oq = &nd->q[q];
	struct replica *r = &nd->rep[q];

	/* the new owner's stream may have come first: it is newer than this queue */
	if (r->live && r->owner == owner_of(nd, q))
		return;
	r = replica_get(nd, q, owner_of(nd, q), true);
	r->msgs.n = 0;
	for (uint32_t i = 0; i < oq->ready.n + oq->unacked.n; i++) {
		struct qent e = i < oq->ready.n ? oq->ready.v[i] : oq->unacked.v[i - oq->ready.n];
		uint32_t at_i;

		e.delivered = i >= oq->ready.n;
		for (at_i = r->msgs.n; at_i > 0 && r->msgs.v[at_i - 1].rseq > e.rseq; at_i--)
			;
		qv_insert(&r->msgs, at_i, e);
	}
	r->max_rseq = oq->next_rseq;
	oq->unacked.n = 0;
}

/* queue_move_away(): consumers told to go (their unacked requeued), receipts failed, the
 * messages handed over, dropped or kept as a replica (move_kind). */
static void move_away(struct node *nd, int q)
{
	struct oqueue *oq = &nd->q[q];
	enum move kind = move_kind(nd, q);
	static const char *const how[] = { "hands over", "drops", "keeps as a replica" };

	trace("n%d q%d moves away (%u ready, %u unacked): %s", self_of(nd), q, oq->ready.n,
	      oq->unacked.n, how[kind]);
	if (kind == MOVE_TO_REPLICA)
		keep_as_replica(nd, q);
	while (oq->ncons) {
		uint32_t cid = oq->cons[--oq->ncons];
		struct frame f = { .kind = F_DROPPED, .q = (uint8_t)q, .client = cid };

		requeue_consumer(oq, cid);
		node_send(nd, oq->cons_host[oq->ncons], &f);
	}
	queue_gone(nd, oq, 1);
	if (kind == MOVE_DROP)
		dropped_for_survivor(&oq->ready);
	for (uint32_t i = 0; kind == MOVE_HAND_OVER && i < oq->ready.n; i++)
		hand_over(nd, q, oq->ready.v[i].copy, oq->ready.v[i].redelivered);
	oq->ready.n = 0;
	oq->handed_in = 0;
	queue_maybe_drop(nd, q);
}

/* ---- backup side ---- */

static struct replica *replica_get(struct node *nd, int q, int owner, bool create)
{
	struct replica *r = &nd->rep[q];

	if (r->live && r->owner != owner && create) {
		trace("n%d q%d replica switches owner n%d -> n%d (%u dropped)", self_of(nd), q,
		      r->owner, owner, r->msgs.n);
		r->msgs.n = 0;
		r->owner = owner;
		r->max_rseq = 0;
	}
	if (r->live || !create)
		return r->live && r->owner == owner ? r : NULL;
	memset(r, 0, sizeof(*r));
	r->live = true;
	r->owner = owner;
	return r;
}

static void replica_free(struct node *nd, int q)
{
	qv_free(&nd->rep[q].msgs);
	nd->rep[q].live = false;
}

static void ack_to_owner(struct node *nd, int q, int owner, uint64_t rseq, uint64_t echo)
{
	struct frame f = { .kind = F_REPL_OP, .op = OP_ACK, .q = (uint8_t)q, .rseq = rseq,
			   .epoch = nd->epoch, .sent_us = echo };

	nd->last_ack_sent[q] = S->now;
	node_send(nd, owner, &f);
}

/* Design invariant 2 and 5: a frame from an older epoch, or any while this node has lost
 * the controller, is refused (not applied, not acknowledged). */
static bool refuses(const struct node *nd, const struct frame *f)
{
	if (!S->o->leases)
		return false;
	return f->epoch < nd->epoch || S->now > nd->ctrl_contact + LEASE_US;
}

static void replica_on_send(struct node *nd, int from, const struct frame *f)
{
	struct replica *r;
	struct qent e = { .copy = f->copy, .rseq = f->rseq, .redelivered = f->redelivered,
			  .delivered = f->delivered };
	uint32_t i;

	if (refuses(nd, f))
		return;
	r = replica_get(nd, f->q, from, true);
	for (i = r->msgs.n; i > 0 && r->msgs.v[i - 1].rseq > e.rseq; i--)
		;
	qv_insert(&r->msgs, i, e);
	held_by(nd, e.copy);
	if (e.rseq > r->max_rseq)
		r->max_rseq = e.rseq;
	ack_to_owner(nd, f->q, from, e.rseq, f->sent_us);
}

static int64_t find_rseq(const struct qvec *v, uint64_t rseq)
{
	for (uint32_t i = 0; i < v->n; i++)
		if (v->v[i].rseq == rseq)
			return i;
	return -1;
}

static void owner_on_ack(struct node *nd, int from, const struct frame *f)
{
	struct oqueue *oq = &nd->q[f->q];

	if (!oq->live || !oq->has_repl)
		return;
	for (int i = 0; i < oq->nbackups; i++) {
		if (oq->backup[i] != from)
			continue;
		if (f->rseq > oq->acked[i])
			oq->acked[i] = f->rseq;
		if (f->sent_us + LEASE_US > oq->lease_until[i])
			oq->lease_until[i] = f->sent_us + LEASE_US;
	}
	if (!oq->unplaced)
		release(nd, oq);
	dispatch(nd, f->q);
	if (!oq->nwait)
		queue_maybe_drop(nd, f->q);
}

static void removed_at_backup(uint32_t copy)
{
	struct copy *c = &S->copies[copy];

	if (c->ack_applied && !c->durable && ++c->ack_got >= c->ack_need)
		c->durable = true;
}

static void replica_on_op(struct node *nd, int from, const struct frame *f)
{
	struct replica *r;
	int64_t i;

	if (f->op == OP_ACK) {
		owner_on_ack(nd, from, f);
		return;
	}
	if (refuses(nd, f))
		return;
	switch (f->op) {
	case OP_PING:
		ack_to_owner(nd, f->q, from, 0, f->sent_us);
		break;
	case OP_RESET:
		r = replica_get(nd, f->q, from, true);
		r->msgs.n = 0;
		break;
	case OP_MARK:
		r = replica_get(nd, f->q, from, true);
		if (f->rseq > r->max_rseq)
			r->max_rseq = f->rseq;
		ack_to_owner(nd, f->q, from, f->rseq, f->sent_us);
		if (!r->msgs.n)
			replica_free(nd, f->q);
		break;
	case OP_DELIVERED:
	case OP_REMOVE:
		r = replica_get(nd, f->q, from, false);
		if (!r || (i = find_rseq(&r->msgs, f->rseq)) < 0)
			break;
		if (f->op == OP_DELIVERED) {
			r->msgs.v[i].delivered = true;
			break;
		}
		removed_at_backup(r->msgs.v[i].copy);
		qv_remove(&r->msgs, (uint32_t)i);
		if (!r->msgs.n)
			replica_free(nd, f->q);
		break;
	default:
		break;
	}
}

/* The replica becomes the queue: delivered-unacked first (redelivered), then the rest. */
static void promote(struct node *nd, int q)
{
	struct replica *r = &nd->rep[q];
	struct oqueue *oq = queue_get(nd, q);
	uint32_t front = 0;

	trace("n%d q%d promoted with %u message(s) from n%d's copy", self_of(nd), q, r->msgs.n,
	      r->owner);
	for (uint32_t i = 0; i < r->msgs.n; i++) {
		struct qent e = r->msgs.v[i];

		if (e.delivered) {
			e.redelivered = true;
			e.delivered = false;
			qv_insert(&oq->ready, front++, e);
		} else {
			qv_insert(&oq->ready, oq->ready.n, e);
		}
	}
	owner_state(nd, q);
	if (oq->next_rseq < r->max_rseq)
		oq->next_rseq = r->max_rseq;
	oq->nbackups = 0;
	replica_free(nd, q);
	queue_placed(nd, q);
	dispatch(nd, q);
}

/* The design's rules for a replica on a new placement (true: handled): a joiner keeps
 * what it will hold; a process taken out hands over what no survivor holds; the owner
 * promotes its copy even when the old owner is still there (a planned move: it was
 * synced before it was made active, and the old owner keeps a replica). */
static bool replica_design(struct node *nd, int q)
{
	struct replica *r = &nd->rep[q];

	if (is_joining(nd)) {
		if (!will_hold(nd->members, q, self_of(nd)))
			replica_free(nd, q);
		return true;
	}
	if (!in_view(nd)) {
		/* the proposed fix: a backup's in-sync peer is the owner that streamed it */
		if (S->o->fix_handback ? !(nd->members & 1u << r->owner) || !nd->last_hosts :
					 !survivor_holds(nd, q)) {
			trace("n%d q%d hands its copy of %u over: no survivor holds it",
			      self_of(nd), q, r->msgs.n);
			for (uint32_t i = 0; i < r->msgs.n; i++)
				hand_over(nd, q, r->msgs.v[i].copy,
					  r->msgs.v[i].redelivered || r->msgs.v[i].delivered);
		} else {
			dropped_for_survivor(&r->msgs);
		}
		replica_free(nd, q);
		return true;
	}
	if (owner_of(nd, q) == self_of(nd)) {
		promote(nd, q);
		return true;
	}
	return false;
}

static void replica_on_placement(struct node *nd)
{
	for (int q = 0; q < MAX_QUEUES; q++) {
		struct replica *r = &nd->rep[q];
		int idx[MAX_HOSTS];
		int k;
		bool holder = false;

		if (!r->live)
			continue;
		if (S->o->leases && replica_design(nd, q))
			continue;
		k = replicas_of(nd->members, q, S->r, idx);
		for (int j = 0; j < k; j++)
			holder |= idx[j] == self_of(nd);
		if (k && idx[0] == self_of(nd) && in_view(nd)) {
			if (nd->members & 1u << r->owner) {
				trace("n%d q%d replica dropped: planned move from n%d", self_of(nd),
				      q, r->owner);
				dropped_for_survivor(&r->msgs);
				replica_free(nd, q);
			} else {
				promote(nd, q);
			}
		} else if (!holder || !in_view(nd)) {
			dropped_for_survivor(&r->msgs);
			replica_free(nd, q);
		}
	}
}

/* ---- consumers' registrations (session.c and the route, as the model needs them) ---- */

static void consumer_register(struct node *nd, uint32_t cid)
{
	int q = S->cons[cid].q;
	int owner = owner_of(nd, q);
	struct frame f = { .kind = F_CONS_ADD, .q = (uint8_t)q, .client = cid };

	if (owner == NONE || (owner != self_of(nd) && !nd->link_ok[owner]))
		return;		/* the tick tries again */
	nd->reg[cid] = owner;
	trace("n%d registers c%u (q%d) with n%d", self_of(nd), cid, q, owner);
	node_send(nd, owner, &f);
}

static void consumer_unregister(struct node *nd, uint32_t cid)
{
	struct frame f = { .kind = F_CONS_DEL, .q = (uint8_t)S->cons[cid].q, .client = cid };

	if (nd->reg[cid] != NONE)
		node_send(nd, nd->reg[cid], &f);
	nd->reg[cid] = NONE;
}

static void on_cons_add(struct node *nd, int from, const struct frame *f)
{
	struct oqueue *oq;

	if (owner_of(nd, f->q) != self_of(nd) && in_view(nd)) {
		node_send(nd, from, &(struct frame){ .kind = F_DROPPED, .q = f->q,
						     .client = f->client });
		return;
	}
	oq = queue_get(nd, f->q);
	for (uint32_t i = 0; i < oq->ncons; i++)
		if (oq->cons[i] == f->client)
			return;
	oq->cons[oq->ncons] = f->client;
	oq->cons_host[oq->ncons++] = from;
	dispatch(nd, f->q);
}

/* ---- the node's message handlers ---- */

static bool hold_receipt(struct oqueue *oq, const struct frame *f)
{
	if (!oq->has_repl || (!oq->nbackups && !oq->unplaced))
		return false;
	GROW(oq->wait, oq->nwait, oq->wait_cap);
	oq->wait[oq->nwait++] = (struct wait){ .rseq = oq->next_rseq, .msg = f->msg,
					       .client = f->client, .attempt = f->attempt,
					       .origin = f->origin };
	return true;
}

/* After an operation: a queue this node does not own moves on, unless this node is outside
 * the view (others' newer view may have it in: it waits for its own to catch up). */
static void settle(struct node *nd, int q)
{
	if (nd->q[q].live && owner_of(nd, q) != self_of(nd) && in_view(nd))
		move_away(nd, q);
}

static void publish(struct node *nd, const struct frame *f)
{
	struct oqueue *oq = queue_get(nd, f->q);
	struct qent e = { .copy = new_copy(f->msg) };
	struct wait w = { .msg = f->msg, .client = f->client, .attempt = f->attempt,
			  .origin = f->origin };

	enqueued(nd, f->q, &e);
	qv_insert(&oq->ready, oq->ready.n, e);
	trace("n%d q%d takes m%u (copy %u, rseq %" PRIu64 ", %d backup(s)%s)", self_of(nd),
	      f->q, f->msg, e.copy, e.rseq, oq->nbackups, oq->unplaced ? ", unplaced" : "");
	if (!hold_receipt(oq, f))
		answer(nd, &w, 0);
	dispatch(nd, f->q);
	settle(nd, f->q);
}

static void on_handover(struct node *nd, const struct frame *f)
{
	struct oqueue *oq = queue_get(nd, f->q);
	struct qent e = { .copy = f->copy, .redelivered = f->redelivered };

	enqueued(nd, f->q, &e);
	qv_insert(&oq->ready, oq->handed_in++, e);
	dispatch(nd, f->q);
	settle(nd, f->q);
}

static void on_ack(struct node *nd, const struct frame *f)
{
	struct oqueue *oq = &nd->q[f->q];
	struct copy *c;

	if (!oq->live || oq->tenure != f->tenure)
		return;
	for (uint32_t i = 0; i < oq->unacked.n; i++) {
		struct qent e = oq->unacked.v[i];

		if (e.tag != f->tag || e.consumer != (int32_t)f->client)
			continue;
		qv_remove(&oq->unacked, i);
		op_to_backups(nd, oq, f->q, OP_REMOVE, e.rseq);
		c = &S->copies[e.copy];
		c->ack_applied = true;
		c->ack_need = oq->has_repl ? (uint32_t)oq->nbackups : 0;
		c->ack_got = 0;
		c->durable = !c->ack_need;
		break;
	}
	dispatch(nd, f->q);
	queue_maybe_drop(nd, f->q);
}

static void on_frame(struct node *nd, int from, const struct frame *f)
{
	switch (f->kind) {
	case F_SEND:
		publish(nd, f);
		break;
	case F_DONE:
		to_client(nd, f, (uint32_t)f->tag);
		break;
	case F_REPL_SEND:
		replica_on_send(nd, from, f);
		break;
	case F_REPL_OP:
		replica_on_op(nd, from, f);
		break;
	case F_DELIVER:
		if (S->cons[f->client].alive && nd->local[f->client])
			to_client(nd, f, S->cons[f->client].conn);
		break;
	case F_ACK:
		on_ack(nd, f);
		break;
	case F_CONS_ADD:
		on_cons_add(nd, from, f);
		break;
	case F_CONS_DEL:
		consumer_del(nd, f->q, f->client);
		break;
	case F_DROPPED:
		if (nd->local[f->client] && nd->reg[f->client] == from)
			nd->reg[f->client] = NONE;	/* the tick registers it by placement */
		break;
	case F_HANDOVER:
		on_handover(nd, f);
		break;
	default:
		break;
	}
}

/* ---- placement changes: views, and gossip before the first view ---- */

/* The hosts this node places queues over. The code: the view's member names (a restarted
 * process has its predecessor's name, so it counts as in the view), and before its first
 * view every host it has a link to. The design: only members of an applied view; this
 * process is in only if the view lists this incarnation. */
static uint32_t placement_hosts(const struct node *nd)
{
	const struct view *v;
	int self = self_of(nd);
	uint32_t hosts = 0;

	if (!nd->epoch) {
		if (S->o->leases)
			return 0;
		for (int h = 0; h < S->n; h++)
			if (h == self || nd->link_ok[h])
				hosts |= 1u << h;
		return hosts & ~nd->swim_dead;
	}
	v = &S->views[nd->epoch];
	hosts = v->hosts;
	if (S->o->leases)
		hosts &= ~v->joining;
	if (S->o->leases && v->member[self] != nd->member)
		hosts &= ~(1u << self);
	return hosts & ~nd->swim_dead;
}

static void on_placement(struct node *nd)
{
	uint32_t before = nd->members;
	int owner_before[MAX_QUEUES];

	for (int q = 0; q < MAX_QUEUES; q++)
		owner_before[q] = owner_of(nd, q);
	nd->members = placement_hosts(nd);
	if (nd->members == before && !S->o->leases)
		return;	/* (the design: joiners come and go without changing placement) */
	trace("n%d placement %#x -> %#x (epoch %" PRIu64 ")", self_of(nd), before, nd->members,
	      nd->epoch);
	for (int q = 0; q < MAX_QUEUES; q++) {
		/* design: a new owner delivers once the old one's lease ran out: L after its
		 * last acknowledgement to it (a backup), or L after the view (not a replica) */
		if (S->o->leases && owner_of(nd, q) == self_of(nd) &&
		    owner_before[q] != self_of(nd)) {
			uint64_t from = nd->rep[q].live ? nd->last_ack_sent[q] :
							  S->views[nd->epoch].commit_us;

			if (nd->last_ack_sent[q] > from)
				from = nd->last_ack_sent[q];
			nd->q[q].deliver_from = from + LEASE_US;
		}
	}
	replica_on_placement(nd);
	for (int q = 0; q < MAX_QUEUES; q++) {
		if (!nd->q[q].live)
			continue;
		if (owner_of(nd, q) != self_of(nd))
			move_away(nd, q);
		else
			queue_placed(nd, q);
	}
	for (uint32_t c = 0; c < MAX_CONSUMERS; c++) {
		if (!nd->local[c] || nd->reg[c] == NONE)
			continue;
		if (nd->reg[c] != owner_of(nd, S->cons[c].q)) {
			consumer_unregister(nd, c);
			consumer_register(nd, c);
		}
	}
	outbox_flush(nd);
	if (in_view(nd))
		nd->last_hosts = nd->members;
}

static void on_hb(struct node *nd, uint64_t epoch)
{
	nd->ctrl_contact = S->now;
	while (nd->up && nd->epoch < epoch) {
		nd->epoch++;
		on_placement(nd);
	}
}

/* ---- links as a node sees them ---- */

static void on_link_down(struct node *nd, int peer)
{
	if (!nd->link_ok[peer])
		return;
	nd->link_ok[peer] = false;
	/* its consumers of our queues leave: their unacked messages go back */
	for (int q = 0; q < MAX_QUEUES; q++) {
		struct oqueue *oq = &nd->q[q];

		for (uint32_t i = oq->live ? oq->ncons : 0; i > 0; i--)
			if (oq->cons_host[i - 1] == peer)
				consumer_del(nd, q, oq->cons[i - 1]);
	}
	for (uint32_t c = 0; c < MAX_CONSUMERS; c++)
		if (nd->local[c] && nd->reg[c] == peer)
			nd->reg[c] = NONE;
	if (!nd->epoch)
		on_placement(nd);
}

static void on_link_up(struct node *nd, int peer)
{
	nd->link_ok[peer] = true;
	if (!nd->epoch)
		on_placement(nd);
	outbox_flush(nd);
	/* RESYNC: streams to it may have lost their tail with the old link */
	for (int q = 0; q < MAX_QUEUES; q++) {
		struct oqueue *oq = &nd->q[q];

		for (int b = 0; oq->live && oq->has_repl && b < oq->nbackups; b++)
			if (oq->backup[b] == peer)
				snapshot_to(nd, q, peer);
	}
}

/* --gossip-placement: the route places over members SWIM calls alive (or suspect), so a
 * peer this node has not heard for its detection delay leaves its placement before any
 * view change, and comes back when heard again. */
static void swim_tick(struct node *nd)
{
	uint32_t dead = 0;
	int self = self_of(nd);

	for (int h = 0; h < S->n; h++) {
		bool heard = h == self || (hosts_can_talk(self, h) && !S->node[h].paused);

		if (heard) {
			nd->unresp_since[h] = 0;
			continue;
		}
		if (!nd->unresp_since[h]) {
			nd->unresp_since[h] = S->now;
			nd->detect_us[h] = rnd_range(1500 * MS, 3000 * MS);
		}
		if (S->now - nd->unresp_since[h] >= nd->detect_us[h])
			dead |= 1u << h;
	}
	if (dead == nd->swim_dead)
		return;
	trace("n%d: gossip calls %#x dead", self, dead);
	nd->swim_dead = dead;
	on_placement(nd);
}

static void node_tick(struct node *nd)
{
	nd->ticks++;
	if (S->o->gossip_placement)
		swim_tick(nd);
	for (uint32_t c = 0; c < MAX_CONSUMERS; c++)
		if (nd->local[c] && nd->reg[c] == NONE && S->cons[c].alive)
			consumer_register(nd, c);
	for (int q = 0; q < MAX_QUEUES; q++) {
		struct oqueue *oq = &nd->q[q];

		if (!oq->live)
			continue;
		if (S->o->leases && oq->has_repl && nd->ticks % PING_EVERY == 0)
			op_to_backups(nd, oq, q, OP_PING, 0);
		dispatch(nd, q);
	}
}

/* ---- clients ---- */

static int random_up_host(void)
{
	int up[MAX_HOSTS], n = 0;

	for (int h = 0; h < S->n; h++)
		if (S->node[h].up)
			up[n++] = h;
	return n ? up[rnd() % (uint64_t)n] : NONE;
}

static void client_to_node(int host, uint32_t conn, const struct frame *f)
{
	push((struct event){ .at = S->now + rnd_range(50, 300), .kind = EV_TO_NODE,
			     .to = (int8_t)host, .gen = conn, .f = *f });
}

static void producer_send(uint32_t p)
{
	struct producer *pr = &S->prod[p];
	struct frame f = { .kind = F_SEND, .msg = pr->msg, .q = S->msgs[pr->msg].q,
			   .client = p, .attempt = ++pr->attempt, .origin = (int8_t)pr->host,
			   .tag = pr->conn };

	pr->deadline = S->now + RECEIPT_TIMEOUT_US;
	if (pr->host != NONE)
		client_to_node(pr->host, pr->conn, &f);
}

static void producer_reconnect(uint32_t p)
{
	S->prod[p].host = random_up_host();
	S->prod[p].conn++;
}

static void on_producer(uint32_t p)
{
	struct producer *pr = &S->prod[p];

	if (pr->busy && S->now >= pr->deadline) {
		trace("p%u resends m%u (try %u)", p, pr->msg, pr->attempt + 1);
		producer_reconnect(p);
		producer_send(p);
	} else if (!pr->busy && S->now < PRODUCE_UNTIL_US) {
		GROW(S->msgs, S->next_msg, S->nmsgs_cap);
		pr->msg = S->next_msg++;
		S->msgs[pr->msg] = (struct msg){ .q = (uint8_t)(rnd() % MAX_QUEUES) };
		pr->attempt = 0;
		pr->busy = true;
		producer_send(p);
	}
	if (pr->busy || S->now < PRODUCE_UNTIL_US)
		at(S->now + rnd_range(5 * MS, 40 * MS), EV_PRODUCER, (int)p, 0, NULL);
}

static void on_done(const struct frame *f)
{
	struct producer *pr = &S->prod[f->client];

	if (!pr->busy || pr->msg != f->msg || pr->attempt != f->attempt)
		return;
	if (f->err) {
		pr->deadline = S->now + 50 * MS;	/* an ERROR: try again soon */
		return;
	}
	S->msgs[f->msg].receipted = true;
	pr->busy = false;
	pr->sent++;
	trace("p%u has the receipt for m%u", f->client, f->msg);
}

static void consumer_connect(uint32_t cid)
{
	struct consumer *c = &S->cons[cid];
	struct node *nd;

	c->host = random_up_host();
	c->conn++;
	trace("c%u (q%d) connects to n%d", cid, c->q, c->host);
	if (c->host == NONE)
		return;
	nd = &S->node[c->host];
	nd->local[cid] = true;
	nd->reg[cid] = NONE;
	if (!nd->paused)
		consumer_register(nd, cid);
}

static void record_delivery(const struct frame *f)
{
	struct copy *c = &S->copies[f->copy];
	struct msg *m = &S->msgs[c->msg];

	/* a MESSAGE the owner sent before the ACK, arriving late (its consumer's node was
	 * paused meanwhile): counted, not a violation - the owner could not know */
	if (c->durable)
		S->late_after_ack++;
	if (c->deliveries)
		f->redelivered ? S->dup_redelivered++ : S->dup_unmarked++;
	else if (m->deliveries)
		S->dup_resend++;
	c->deliveries++;
	m->deliveries++;
}

static void on_to_client(const struct event *ev)
{
	const struct frame *f = &ev->f;

	if (f->kind == F_DONE) {
		if (S->prod[f->client].host == ev->to && S->prod[f->client].conn == ev->gen)
			on_done(f);
		return;
	}
	if (!S->cons[f->client].alive || S->cons[f->client].conn != ev->gen)
		return;
	record_delivery(f);
	S->cons[f->client].got++;
	push((struct event){ .at = S->now + rnd_range(1 * MS, 30 * MS), .kind = EV_CONSUMER_ACK,
			     .to = ev->to, .from = ev->from, .gen = ev->gen, .f = *f });
}

static void on_consumer_ack(const struct event *ev)
{
	struct consumer *c = &S->cons[ev->f.client];
	struct frame f = ev->f;

	if (!c->alive || c->conn != ev->gen)
		return;
	f.kind = F_ACK;
	client_to_node(c->host, c->conn, &f);
}

/* A frame from a client reaches its node: a SEND goes to the owner by this node's
 * placement, an ACK to the owner that delivered. */
static void on_client_frame(struct node *nd, const struct frame *f)
{
	int owner;

	if (f->kind == F_ACK) {
		if (nd->local[f->client])
			node_send(nd, f->origin, f);
		return;
	}
	owner = owner_of(nd, f->q);
	if (owner == NONE || (owner != self_of(nd) && !nd->link_ok[owner])) {
		struct frame e = { .kind = F_DONE, .msg = f->msg, .client = f->client,
				   .attempt = f->attempt, .err = 1, .tag = f->tag };

		to_client(nd, &e, (uint32_t)f->tag);
		return;
	}
	node_send(nd, owner, f);
}

/* ---- the controller: what Raft gives ---- */

static struct view *latest(void)
{
	return &S->views[S->nviews - 1];
}

static void commit(struct view v, const char *what, int host)
{
	GROW(S->views, S->nviews, S->views_cap);
	v.epoch = S->nviews;
	v.commit_us = S->now;
	S->views[S->nviews++] = v;
	trace("controller: epoch %" PRIu64 " %s n%d, hosts %#x", v.epoch, what, host, v.hosts);
}

/* Design, stage 4: every owner of a queue the joiner will hold streamed it a snapshot and
 * it acknowledged the MARK (the owners' "in sync" reports, read here directly). */
static bool joiner_synced(int j)
{
	const struct view *v = &S->views[S->nviews - 1];
	uint32_t active = v->hosts & ~v->joining;

	for (int q = 0; q < MAX_QUEUES; q++) {
		int idx[MAX_HOSTS];
		const struct node *own;
		const struct oqueue *oq;
		int b;

		if (!will_hold(active, q, j) || !replicas_of(active, q, S->r, idx))
			continue;
		own = &S->node[idx[0]];
		oq = &own->q[q];
		if (!own->up || own->member != v->member[idx[0]])
			return false;	/* its owner is gone: it is made active after that */
		if (!oq->live || (!oq->ready.n && !oq->unacked.n))
			continue;
		if (own->epoch != v->epoch)
			return false;
		for (b = 0; b < oq->nbackups && oq->backup[b] != j; b++)
			;
		if (b == oq->nbackups || oq->acked[b] < oq->mark[j])
			return false;
	}
	return true;
}

static bool responsive(int h)
{
	const struct node *nd = &S->node[h];

	return nd->up && !nd->paused && nd->member == latest()->member[h];
}

/* The side holding a majority of the latest view's members elects a leader (300-600 ms);
 * the leader takes out a member it has not heard for the detection delay (1.5-3 s; 300 ms
 * when another process of that name is up), then adds processes not in the view, one
 * entry at a time; its heartbeats carry the views to every node it reaches. */
static void ctrl_tick(void)
{
	const struct view *v = latest();
	int count[2] = { 0 }, nview = 0, side = NONE, lead = NONE;

	for (int h = 0; h < S->n; h++) {
		if (!(v->hosts & 1u << h))
			continue;
		nview++;
		if (responsive(h))
			count[S->node[h].group]++;
	}
	for (int g = 0; g < 2; g++)
		if (2 * count[g] > nview)
			side = g;
	at(S->now + TICK_US, EV_CTRL_TICK, 0, 0, NULL);
	if (side == NONE) {
		S->leader = NONE;
		return;
	}
	if (S->leader == NONE || !responsive(S->leader) || S->node[S->leader].group != side ||
	    !(v->hosts & 1u << S->leader)) {
		for (int h = S->n - 1; h >= 0; h--)
			if ((v->hosts & 1u << h) && responsive(h) && S->node[h].group == side)
				lead = h;
		S->leader = lead;
		S->leader_ready = S->now + rnd_range(300 * MS, 600 * MS);
		trace("controller: n%d leads", lead);
	}
	if (S->now < S->leader_ready)
		return;
	for (int h = 0; h < S->n; h++) {
		bool ok = responsive(h) && S->node[h].group == side;

		if (!(v->hosts & 1u << h) || ok) {
			S->unresp_since[h] = 0;
			continue;
		}
		if (!S->unresp_since[h]) {
			S->unresp_since[h] = S->now;
			S->detect_us[h] = S->node[h].up && !S->node[h].paused ?
					  (S->node[h].member != v->member[h] ? 300 * MS :
					   rnd_range(1500 * MS, 3000 * MS)) :
					  rnd_range(1500 * MS, 3000 * MS);
		}
		if (S->now - S->unresp_since[h] >= S->detect_us[h]) {
			struct view nv = *v;

			nv.hosts &= ~(1u << h);
			nv.member[h] = NONE;
			S->unresp_since[h] = 0;
			commit(nv, "removes", h);
			goto heartbeat;
		}
	}
	for (int h = 0; h < S->n; h++) {
		const struct node *nd = &S->node[h];

		if ((v->hosts & 1u << h) || !nd->up || nd->paused || nd->group != side ||
		    S->now < nd->up_since + 300 * MS)
			continue;
		struct view nv = *v;

		nv.hosts |= 1u << h;
		nv.member[h] = nd->member;
		if (S->o->leases)
			nv.joining |= 1u << h;
		commit(nv, S->o->leases ? "adds (joining)" : "adds", h);
		goto heartbeat;
	}
	for (int h = 0; h < S->n; h++) {
		if (!(v->joining & 1u << h) || !responsive(h) || S->node[h].group != side ||
		    !joiner_synced(h))
			continue;
		struct view nv = *v;

		nv.joining &= ~(1u << h);
		commit(nv, "makes active", h);
		break;
	}
heartbeat:
	for (int h = 0; h < S->n; h++)
		if (S->node[h].up && S->node[h].group == side)
			at(S->now + rnd_range(300, 2 * MS), EV_HB, h, S->leader,
			   &(struct frame){ .epoch = latest()->epoch });
}

/* ---- faults ---- */

static void node_wipe(struct node *nd)
{
	for (int q = 0; q < MAX_QUEUES; q++) {
		qv_free(&nd->q[q].ready);
		qv_free(&nd->q[q].unacked);
		free(nd->q[q].wait);
		qv_free(&nd->rep[q].msgs);
	}
	free(nd->inbox);
	free(nd->outbox);
	memset(nd, 0, sizeof(*nd));
	for (int c = 0; c < MAX_CONSUMERS; c++)
		nd->reg[c] = NONE;
	nd->member = NONE;
}

static void crash(int h)
{
	struct node *nd = &S->node[h];
	int group = nd->group;

	if (!nd->up)
		return;
	trace("FAULT: n%d crashes (member %d)", h, nd->member);
	S->member_crashed[nd->member] = true;
	nd->up = false;
	for (int b = 0; b < S->n; b++)
		if (b != h)
			link_break(h, b);
	node_wipe(nd);
	nd->group = group;
	for (int p = 0; p < S->nprod; p++)
		if (S->prod[p].host == h)
			producer_reconnect((uint32_t)p);	/* its receipt times out: resent */
	for (int c = 0; c < S->ncons; c++)
		if (S->cons[c].alive && S->cons[c].host == h)
			at(S->now + rnd_range(100 * MS, 500 * MS), EV_CONSUMER_NEW, c, 0, NULL);
	if (S->now < HEAL_AT_US)
		at(S->now + rnd_range(300 * MS, 4 * SEC), EV_RESTART, h, 0, NULL);
}

static void restart(int h)
{
	struct node *nd = &S->node[h];

	if (nd->up || S->nmembers >= MAX_MEMBERS)
		return;
	nd->up = true;
	nd->member = S->nmembers++;
	nd->up_since = S->now;
	nd->members = placement_hosts(nd);
	trace("n%d restarts as member %d", h, nd->member);
	links_reconnect();
	push((struct event){ .at = S->now + TICK_US, .kind = EV_NODE_TICK, .to = (int8_t)h,
			     .gen = (uint32_t)nd->member });
}

static void partition(uint32_t side_hosts)
{
	S->partitioned = true;
	for (int h = 0; h < S->n; h++)
		S->node[h].group = (side_hosts >> h) & 1;
	trace("FAULT: partition %#x | rest", side_hosts);
	for (int a = 0; a < S->n; a++)
		for (int b = a + 1; b < S->n; b++)
			if (S->node[a].group != S->node[b].group)
				link_break(a, b);
}

static void heal(void)
{
	if (!S->partitioned)
		return;
	S->partitioned = false;
	for (int h = 0; h < S->n; h++)
		S->node[h].group = 0;
	trace("partition heals");
	links_reconnect();
}

static void pause_node(int h, uint64_t len)
{
	if (!S->node[h].up || S->node[h].paused)
		return;
	S->node[h].paused = true;
	trace("FAULT: n%d paused for %" PRIu64 " ms", h, len / MS);
	at(S->now + len, EV_RESUME, h, 0, NULL);
}

/* A host to hit: the owner of queue 0 in the latest view more often than not. */
static int target(void)
{
	int idx[MAX_HOSTS];

	if (rnd() % 3 && replicas_of(latest()->hosts, 0, S->r, idx) && S->node[idx[0]].up)
		return idx[rnd() % 2 ? 0 : (S->r > 1 ? 1 : 0)];
	return random_up_host();
}

static uint32_t minority_with(int h)
{
	uint32_t side = 1u << h;
	int k = (int)rnd_range(1, (uint64_t)(S->n - 1) / 2);

	while (__builtin_popcount(side) < k)
		side |= 1u << (rnd() % (uint64_t)S->n);
	return side;
}

/* Armed by a fault, fired by the next snapshot or hand-over: the effect lands while the
 * transfer is on the wire (up to a few ms after it started). */
static void hook_fire(int *hook, int a, int b)
{
	if (*hook == NONE)
		return;
	at(S->now + rnd_range(0, 3 * MS), EV_HOOK, b, a, &(struct frame){ .op = (uint8_t)*hook });
	*hook = NONE;
}

static void hook_effect(int effect, int a, int b)
{
	trace("FAULT: hooked on a transfer n%d -> n%d (effect %d)", a, b, effect);
	switch (effect) {
	case 0:
		crash(a);
		break;
	case 1:
		crash(b);
		break;
	default:	/* the sender cut off for long: the transfer stops midway */
		if (!S->partitioned) {
			partition(minority_with(a) & ~(1u << b));
			at(S->now + rnd_range(3 * SEC, 6 * SEC), EV_HEAL, 0, 0, NULL);
		}
		break;
	}
}

static void fault(const struct fault *ft)
{
	int h = target();

	if (h == NONE)
		return;
	switch (ft->kind) {
	case FK_CRASH:
		crash(h);
		break;
	case FK_DOUBLE_CRASH: {
		int other = random_up_host();

		crash(h);
		if (other != NONE)
			crash(other);
		break;
	}
	case FK_PAUSE:
		pause_node(h, ft->len);
		break;
	case FK_PARTITION:
		if (S->partitioned)
			break;
		/* the target on the minority side, or (one time in three) on the majority */
		partition(rnd() % 3 ? minority_with(h) : (~minority_with(h) & ((1u << S->n) - 1)));
		at(S->now + ft->len, EV_HEAL, 0, 0, NULL);
		break;
	case FK_FLAP:	/* shorter than detection: only RESYNC snapshots follow */
		if (S->partitioned)
			break;
		partition(1u << h);
		at(S->now + rnd_range(20 * MS, 300 * MS), EV_HEAL, 0, 0, NULL);
		break;
	case FK_HOOK_SNAPSHOT:
		S->hook_snapshot = (int)(rnd() % 3);
		break;
	case FK_HOOK_HANDOVER:
		S->hook_handover = (int)(rnd() % 3);
		break;
	case FK_CONSUMER_CRASH: {
		uint32_t c = (uint32_t)(rnd() % (uint64_t)S->ncons);

		if (!S->cons[c].alive)
			break;
		trace("FAULT: consumer c%u crashes", c);
		S->cons[c].alive = false;
		if (S->cons[c].host != NONE && S->node[S->cons[c].host].up) {
			struct node *nd = &S->node[S->cons[c].host];

			consumer_unregister(nd, c);
			nd->local[c] = false;
		}
		if (S->ncons < MAX_CONSUMERS) {
			S->cons[S->ncons] = (struct consumer){ .alive = true, .q = S->cons[c].q };
			at(S->now + 200 * MS, EV_CONSUMER_NEW, S->ncons++, 0, NULL);
		}
		break;
	}
	}
}

/* ---- the event loop ---- */

static void node_event(struct node *nd, const struct event *ev)
{
	switch (ev->kind) {
	case EV_FRAME:
		on_frame(nd, ev->from, &ev->f);
		break;
	case EV_LINK_DOWN:
		on_link_down(nd, ev->from);
		break;
	case EV_LINK_UP:
		on_link_up(nd, ev->from);
		break;
	case EV_HB:
		on_hb(nd, ev->f.epoch);
		break;
	case EV_TO_NODE:
		if (ev->f.kind == F_SEND ? S->prod[ev->f.client].conn == ev->gen :
					   S->cons[ev->f.client].conn == ev->gen)
			on_client_frame(nd, &ev->f);
		break;
	default:
		break;
	}
}

/* What reaches a node: dropped when it is down or the link it came on broke; kept in its
 * inbox while it is paused (its sockets still take bytes in). */
static void to_node(const struct event *ev)
{
	struct node *nd = &S->node[ev->to];

	if (!nd->up)
		return;
	if (ev->kind == EV_FRAME && ev->from != ev->to &&
	    (!S->link_up[lo(ev->from, ev->to)][hi(ev->from, ev->to)] ||
	     S->link_gen[lo(ev->from, ev->to)][hi(ev->from, ev->to)] != ev->gen))
		return;
	if (ev->kind == EV_HB && !hosts_can_talk(ev->from, ev->to))
		return;
	if (nd->paused) {
		GROW(nd->inbox, nd->ninbox, nd->inbox_cap);
		nd->inbox[nd->ninbox++] = *ev;
		return;
	}
	node_event(nd, ev);
}

static void resume(int h)
{
	struct node *nd = &S->node[h];
	struct event *box = nd->inbox;
	uint32_t n = nd->ninbox;

	if (!nd->up || !nd->paused)
		return;
	trace("n%d resumes (%u frame(s) waiting)", h, n);
	nd->paused = false;
	nd->inbox = NULL;
	nd->ninbox = nd->inbox_cap = 0;
	for (uint32_t i = 0; i < n && nd->up && !nd->paused; i++)
		node_event(nd, &box[i]);
	free(box);
	links_reconnect();
}

static void link_dial(int a, int b)
{
	if (S->link_up[lo(a, b)][hi(a, b)] || !hosts_can_talk(a, b))
		return;
	if (S->node[a].paused || S->node[b].paused) {	/* the handshake needs both */
		at(S->now + 100 * MS, EV_LINK_DIAL, a, b, NULL);
		return;
	}
	S->link_up[lo(a, b)][hi(a, b)] = true;
	S->link_gen[lo(a, b)][hi(a, b)]++;
	trace("link %d-%d up", a, b);
	at(S->now, EV_LINK_UP, a, b, NULL);
	at(S->now, EV_LINK_UP, b, a, NULL);
}

static void heal_all(void)
{
	trace("faults end: heal, resume, restart");
	S->hook_snapshot = S->hook_handover = NONE;
	heal();
	for (int h = 0; h < S->n; h++) {
		resume(h);
		restart(h);
	}
}

static void step(const struct event *ev)
{
	switch (ev->kind) {
	case EV_FRAME:
	case EV_LINK_DOWN:
	case EV_LINK_UP:
	case EV_HB:
	case EV_TO_NODE:
		to_node(ev);
		break;
	case EV_NODE_TICK: {
		struct node *nd = &S->node[ev->to];

		if (!nd->up || nd->member != (int)ev->gen)
			break;	/* a tick of a process that is gone */
		if (!nd->paused)
			node_tick(nd);
		push((struct event){ .at = S->now + TICK_US, .kind = EV_NODE_TICK, .to = ev->to,
				     .gen = (uint32_t)nd->member });
		break;
	}
	case EV_CTRL_TICK:
		ctrl_tick();
		break;
	case EV_TO_CLIENT:
		on_to_client(ev);
		break;
	case EV_PRODUCER:
		on_producer((uint32_t)ev->to);
		break;
	case EV_CONSUMER_ACK:
		on_consumer_ack(ev);
		break;
	case EV_FAULT:
		if (S->now < HEAL_AT_US)
			fault(&S->faults[ev->to]);
		break;
	case EV_RESUME:
		resume(ev->to);
		break;
	case EV_RESTART:
		restart(ev->to);
		break;
	case EV_HEAL:
		heal();
		break;
	case EV_CONSUMER_NEW:
		if (S->cons[ev->to].alive)
			consumer_connect((uint32_t)ev->to);
		break;
	case EV_LINK_DIAL:
		link_dial(ev->to, ev->from);
		break;
	case EV_HEAL_ALL:
		heal_all();
		break;
	case EV_HOOK:
		if (S->now < HEAL_AT_US)
			hook_effect(ev->f.op, ev->from, ev->to);
		break;
	default:
		break;
	}
}

/* ---- one run ---- */

struct result {
	int n, r;
	uint64_t receipted, delivered, lost_r, lost_dropped, lost, overlap, acked_again, stuck;
	uint64_t no_quorum;	/* stuck with no leader: a majority of the view's members gone */
	uint64_t unavailable;	/* receipted, undelivered, in a stuck run (not judged) */
	uint64_t dup_redelivered, dup_unmarked, dup_resend, late_after_ack;
};

static const uint8_t fault_weights[] = {
	[FK_CRASH] = 25, [FK_PAUSE] = 18, [FK_PARTITION] = 20, [FK_DOUBLE_CRASH] = 7,
	[FK_HOOK_SNAPSHOT] = 12, [FK_HOOK_HANDOVER] = 6, [FK_CONSUMER_CRASH] = 7, [FK_FLAP] = 5,
};

static void plan_faults(void)
{
	uint32_t total = 0;

	for (size_t k = 0; k < sizeof(fault_weights); k++)
		total += fault_weights[k];
	S->nfaults = (int)rnd_range(2, 5);
	for (int i = 0; i < S->nfaults; i++) {
		uint32_t pick = (uint32_t)(rnd() % total);
		uint8_t kind = 0;

		while (pick >= fault_weights[kind])
			pick -= fault_weights[kind++];
		S->faults[i] = (struct fault){ .kind = kind,
					       .at = rnd_range(FAULTS_FROM_US, FAULTS_UNTIL_US),
					       .len = rnd_range(300 * MS, 6 * SEC) };
		at(S->faults[i].at, EV_FAULT, i, 0, NULL);
	}
	at(HEAL_AT_US, EV_HEAL_ALL, 0, 0, NULL);
}

static void setup(uint64_t seed)
{
	struct view v0 = { 0 }, v1 = { .epoch = 1 };

	S->rng = seed * 0x2545f4914f6cdd1dull + 1;
	S->n = S->o->nodes ? S->o->nodes : (int)rnd_range(3, 5);
	S->r = S->o->replicas ? S->o->replicas : (int)rnd_range(2, 3);
	S->hook_snapshot = S->hook_handover = NONE;
	for (int h = 0; h < S->n; h++) {
		v0.member[h] = v1.member[h] = NONE;
		v1.hosts |= 1u << h;
		v1.member[h] = h;
	}
	GROW(S->views, S->nviews, S->views_cap);
	S->views[S->nviews++] = v0;
	GROW(S->views, S->nviews, S->views_cap);
	S->views[S->nviews++] = v1;
	S->nmembers = S->n;
	S->leader = 0;
	for (int a = 0; a < S->n; a++)
		for (int b = a + 1; b < S->n; b++)
			S->link_up[a][b] = true;
	for (int h = 0; h < S->n; h++) {
		struct node *nd = &S->node[h];

		node_wipe(nd);
		nd->up = true;
		nd->member = h;
		nd->epoch = 1;
		for (int b = 0; b < S->n; b++)
			nd->link_ok[b] = b != h;
		nd->members = placement_hosts(nd);
		nd->last_hosts = nd->members;
		push((struct event){ .at = TICK_US, .kind = EV_NODE_TICK, .to = (int8_t)h,
				     .gen = (uint32_t)h });
	}
	at(TICK_US, EV_CTRL_TICK, 0, 0, NULL);
	for (int q = 0; q < MAX_QUEUES; q++) {
		int k = (int)rnd_range(1, 2);

		for (int i = 0; i < k; i++) {
			S->cons[S->ncons] = (struct consumer){ .alive = true, .q = q };
			at(rnd_range(0, 20 * MS), EV_CONSUMER_NEW, S->ncons++, 0, NULL);
		}
	}
	S->nprod = MAX_PRODUCERS;
	for (int p = 0; p < S->nprod; p++) {
		S->prod[p].host = random_up_host();
		at(rnd_range(0, 20 * MS), EV_PRODUCER, p, 0, NULL);
	}
	plan_faults();
}

static void sim_free(void)
{
	for (int h = 0; h < S->n; h++)
		node_wipe(&S->node[h]);
	free(S->heap);
	free(S->views);
	free(S->msgs);
	free(S->copies);
	free(S->tenures);
	free(S);
	S = NULL;
}

/* Two owners of one queue whose delivery intervals overlap (invariant "one deliverer"). */
static uint64_t overlaps(void)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < S->ntenures; i++) {
		const struct tenure *a = &S->tenures[i];

		for (uint32_t j = i + 1; a->dispatches && j < S->ntenures; j++) {
			const struct tenure *b = &S->tenures[j];

			if (!b->dispatches || b->q != a->q || b->host == a->host)
				continue;
			if (a->first_us <= b->last_us && b->first_us <= a->last_us) {
				n++;
				trace("VIOLATION: q%d delivered by n%d [%.3f, %.3f] and n%d "
				      "[%.3f, %.3f] ms", a->q, a->host, (double)a->first_us / 1e3,
				      (double)a->last_us / 1e3, b->host, (double)b->first_us / 1e3,
				      (double)b->last_us / 1e3);
			}
		}
	}
	return n;
}

static bool stuck(void)
{
	for (int h = 0; h < S->n; h++)
		if (!(latest()->hosts & 1u << h) || latest()->member[h] != S->node[h].member)
			return true;
	return false;
}

static struct result check(void)
{
	struct result res = { .n = S->n, .r = S->r, .dup_redelivered = S->dup_redelivered,
			      .dup_unmarked = S->dup_unmarked, .dup_resend = S->dup_resend,
			      .late_after_ack = S->late_after_ack,
			      .acked_again = S->acked_again };
	uint64_t crashed = 0;

	for (int m = 0; m < S->nmembers; m++)
		if (S->member_crashed[m])
			crashed |= 1ull << m;
	res.stuck = stuck();
	res.no_quorum = S->leader == NONE;
	for (uint32_t i = 0; i < S->next_msg; i++) {
		const struct msg *m = &S->msgs[i];

		if (!m->receipted)
			continue;
		res.receipted++;
		if (m->deliveries) {
			res.delivered++;
		} else if (!(m->holders & ~crashed)) {
			res.lost_r++;
		} else if (m->dropped_for_survivor) {
			res.lost_dropped++;
			trace("LOST: m%u (q%d) was receipted, never delivered: live holders dropped it "
			      "for a replica that did not have it; held by members %#" PRIx64
			      ", crashed %#" PRIx64, i, m->q, m->holders, crashed);
		} else {
			res.lost++;
			trace("VIOLATION: m%u (q%d) was receipted, never delivered; held by "
			      "members %#" PRIx64 ", crashed %#" PRIx64, i, m->q, m->holders,
			      crashed);
		}
	}
	res.overlap = overlaps();
	return res;
}

static bool violates(const struct result *r)
{
	return (r->lost && !r->stuck) || r->overlap || r->acked_again ||
	       (S_strict && r->lost_dropped && !r->stuck);
}

static struct result run_one(const struct opts *o, uint64_t seed, bool keep_trace)
{
	struct result res;

	S = xrealloc(NULL, sizeof(*S));
	memset(S, 0, sizeof(*S));
	S->o = o;
	S->keep_trace = keep_trace;
	setup(seed);
	while (S->nheap && S->heap[0].at <= RUN_US) {
		struct event ev = pop();

		S->now = ev.at;
		step(&ev);
	}
	S->now = RUN_US;
	res = check();
	if (keep_trace && !o->trace) {
		uint32_t n = S->ntrace < 60 ? S->ntrace : 60;

		for (uint32_t i = S->ntrace - n; i < S->ntrace; i++)
			printf("    %s\n", S->trace[i % TRACE_LINES]);
	}
	sim_free();
	return res;
}

/* ---- the table ---- */

static void add(struct result *sum, const struct result *r)
{
	sum->receipted += r->receipted;
	sum->delivered += r->delivered;
	sum->lost_r += r->lost_r;
	sum->lost_dropped += r->stuck ? 0 : r->lost_dropped;
	sum->lost += r->stuck ? 0 : r->lost;
	sum->overlap += r->overlap;
	sum->acked_again += r->acked_again;
	sum->stuck += r->stuck;
	sum->no_quorum += r->no_quorum;
	sum->unavailable += r->stuck ? r->lost + r->lost_dropped : 0;
	sum->dup_redelivered += r->dup_redelivered;
	sum->dup_unmarked += r->dup_unmarked;
	sum->dup_resend += r->dup_resend;
	sum->late_after_ack += r->late_after_ack;
}

static void print_row(const char *what, uint64_t runs, const struct result *s, uint64_t bad)
{
	printf("%-8s %5" PRIu64 " %9" PRIu64 " %9" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
	       " %5" PRIu64 " %6" PRIu64 " %7" PRIu64 " %5" PRIu64 " %7" PRIu64 " %6" PRIu64
	       " %5" PRIu64 " %5" PRIu64 " %6" PRIu64 " %4" PRIu64 "\n", what, runs, s->receipted,
	       s->delivered, s->dup_redelivered, s->dup_unmarked, s->dup_resend, s->late_after_ack,
	       s->lost_r, s->lost_dropped, s->lost, s->overlap, s->acked_again, s->stuck,
	       s->no_quorum, s->unavailable, bad);
}

static int run_seeds(const struct opts *o)
{
	struct result by[MAX_HOSTS + 1][4] = { 0 }, all = { 0 };
	uint64_t runs[MAX_HOSTS + 1][4] = { 0 }, bad[MAX_HOSTS + 1][4] = { 0 }, nbad = 0;
	uint64_t shown = 0;

	for (uint64_t s = o->start; s < o->start + o->seeds; s++) {
		struct result r = run_one(o, s, false);

		runs[r.n][r.r]++;
		add(&by[r.n][r.r], &r);
		add(&all, &r);
		if (!violates(&r) && !(r.lost_dropped && !r.stuck))
			continue;
		if (o->quiet) {
			bad[r.n][r.r] += violates(&r);
			nbad += violates(&r);
			continue;
		}
		printf("seed %" PRIu64 " (N=%d R=%d): %" PRIu64 " receipted lost (+%" PRIu64
		       " by the hand-back rule), %" PRIu64 " overlapping owners, %" PRIu64
		       " acked delivered again\n", s, r.n, r.r, r.lost, r.lost_dropped, r.overlap,
		       r.acked_again);
		if (!violates(&r))
			continue;
		bad[r.n][r.r]++;
		nbad++;
		if (shown++ < (o->check ? 3u : 1u))
			run_one(o, s, true);	/* the same run again, with its trace */
	}
	printf("\n%s: %" PRIu64 " seed(s) from %" PRIu64 "\n",
	       o->leases ? "the design (leases, epochs, controller contact)" :
			   "the code as it is (--no-leases)", (uint64_t)o->seeds, o->start);
	printf("%-8s %5s %9s %9s %8s %8s %8s %5s %6s %7s %5s %7s %6s %5s %5s %6s %4s\n", "N/R",
	       "runs", "receipted", "delivered", "dup-redl", "dup-unmk", "dup-rsnd", "late",
	       "lost-R", "lost-HB", "LOST", "OVERLAP", "ACKED2", "stuck", "no-q", "unavl",
	       "VIOL");
	for (int n = 3; n <= MAX_HOSTS; n++)
		for (int r = 2; r <= 3; r++) {
			char what[16];

			if (!runs[n][r])
				continue;
			snprintf(what, sizeof(what), "N=%d R=%d", n, r);
			print_row(what, runs[n][r], &by[n][r], bad[n][r]);
		}
	print_row("all", o->seeds, &all, nbad);
	return nbad ? 1 : 0;
}

/* --check: the design's model over a fixed set of seeds must keep every invariant, and
 * the code's model (no fences) over the same seeds must break one - the checker can
 * fail. */
static int run_check(const struct opts *o)
{
	struct opts code = *o;
	int design_bad = run_seeds(o);
	int code_bad;

	code.leases = false;
	code.check = false;
	code.quiet = true;
	printf("\n");
	code_bad = run_seeds(&code);
	printf("\n%s: the design's model %s; the code's model (--no-leases) %s\n",
	       !design_bad && code_bad ? "ok" : "FAIL",
	       design_bad ? "broke an invariant" : "kept every invariant",
	       code_bad ? "broke one, as it should" : "broke none: the checker did not fail");
	return !design_bad && code_bad ? 0 : 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: repl-sim [--seeds N [--start S] | --check | --seed S [--trace]]\n"
		"                [--no-leases] [--strict] [--fix-handback] [--gossip-placement]\n"
		"                [--nodes 3..5] [--replicas 2..3]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seeds", required_argument, NULL, 'n' },
		{ "start", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "check", no_argument, NULL, 'c' },
		{ "trace", no_argument, NULL, 't' },
		{ "no-leases", no_argument, NULL, 'L' },
		{ "strict", no_argument, NULL, 'T' },
		{ "fix-handback", no_argument, NULL, 'F' },
		{ "gossip-placement", no_argument, NULL, 'G' },
		{ "nodes", required_argument, NULL, 'N' },
		{ "replicas", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = { .leases = true, .seeds = 200, .start = 1 };
	bool one = false;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.seeds = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 's':
			o.start = strtoull(optarg, NULL, 10);
			break;
		case 'S':
			o.seed = strtoull(optarg, NULL, 10);
			one = true;
			break;
		case 'c':
			o.check = true;
			o.seeds = 500;
			break;
		case 't':
			o.trace = true;
			break;
		case 'L':
			o.leases = false;
			break;
		case 'T':
			S_strict = true;
			break;
		case 'F':
			o.fix_handback = true;
			break;
		case 'G':
			o.gossip_placement = true;
			break;
		case 'N':
			o.nodes = atoi(optarg);
			break;
		case 'R':
			o.replicas = atoi(optarg);
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if ((o.nodes && (o.nodes < 3 || o.nodes > MAX_HOSTS)) ||
	    (o.replicas && (o.replicas < 2 || o.replicas > 3)) || !o.seeds) {
		usage();
		return 2;
	}
	if (one) {
		struct result r = run_one(&o, o.seed, false);

		printf("seed %" PRIu64 " N=%d R=%d: %" PRIu64 " receipted, %" PRIu64
		       " delivered, %" PRIu64 " lost to R failures, %" PRIu64 " lost by the hand-back "
		       "rule, %" PRIu64 " LOST, %" PRIu64
		       " OVERLAP, %" PRIu64 " ACKED2, dups %" PRIu64 "/%" PRIu64 "/%" PRIu64
		       " (redelivered/unmarked/resend)%s\n", o.seed, r.n, r.r, r.receipted,
		       r.delivered, r.lost_r, r.lost_dropped, r.lost, r.overlap, r.acked_again,
		       r.dup_redelivered, r.dup_unmarked, r.dup_resend,
		       r.stuck ? ", controller stuck" : "");
		return violates(&r) ? 1 : 0;
	}
	return o.check ? run_check(&o) : run_seeds(&o);
}
