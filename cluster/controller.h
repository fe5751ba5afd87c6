/*
 * cluster/controller.h - the cluster's view, agreed through C-Raft (docs/replication.md).
 *
 * The view is an epoch number and the list of members placement may use, each `joining` or
 * `active`. It is the state machine of a Raft group made of the nodes themselves (up to
 * CTL_MAX_VOTERS voters, the rest standbys); only the group's leader changes it, one entry
 * per change, taking SWIM's verdicts as input: a member gossip calls alive with a Raft port
 * is added to the group and then to the view; a member gossip calls dead or left is taken
 * out of the view and then out of the group. Every node applies the entries in log order,
 * so every node sees the same views in the same order.
 *
 * Raft's log lives in a private directory made at start (on tmpfs when there is one) and
 * removed at exit: a restarted process is a new member with a new Raft id, never the one
 * that died pretending to remember its votes. The node started without --join founds the
 * group (a single-voter configuration with itself); the others wait to be added.
 *
 * Threads: the controller thread runs libuv and C-Raft and owns everything here;
 * ctl_member, ctl_status_json and the accessors are the calls other threads make (through
 * a mutex), and the view callback runs on the controller thread.
 */
#ifndef CLUSTER_CONTROLLER_H
#define CLUSTER_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_MAX_MEMBERS 64
#define CTL_MAX_VOTERS 5
#define CTL_NAME_MAX 127

enum ctl_member_state {
	CTL_JOINING = 1,	/* in the group, not yet placing queues */
	CTL_ACTIVE = 2,		/* placement counts it */
};

struct ctl_view_member {
	char name[CTL_NAME_MAX + 1];
	uint64_t raft_id;
	uint8_t state;		/* enum ctl_member_state */
	uint64_t since_ms;	/* this node's clock when it applied that state (not agreed) */
};

/* How long a member stays joining before the leader makes it active: while joining, the
 * owners of the queues it will hold stream it copies (snapshot, then the tail), so when
 * it takes them over it has them already (docs/replication.md, "Rejoin"). A copy not
 * complete by then is completed by the hand-over. */
#define CTL_JOIN_SYNC_MS 1000

/* One view: every node applies the same sequence of them. */
struct ctl_view {
	uint64_t epoch;
	uint32_t n;
	struct ctl_view_member m[CTL_MAX_MEMBERS];
};

/* Called on the controller thread after each view change is applied. */
typedef void (*ctl_view_fn)(void *arg, const struct ctl_view *v);
/* Called on the controller thread about every 100 ms: this node may act on the view it has
 * until until_ms (hd_now_ms's clock): CTL_LEASE_MS after its last contact with a Raft leader
 * (or, leading, with a majority); 0 while it has none (docs/replication.md, invariant 3). */
typedef void (*ctl_lease_fn)(void *arg, uint64_t until_ms);
#define CTL_LEASE_MS 600

struct ctl_config {
	char node_name[CTL_NAME_MAX + 1];
	char bind_addr[64];		/* numeric IPv4: the gossip bind address */
	char advertise_addr[64];	/* what peers dial; the bind address when "" */
	uint16_t port;			/* Raft port; 0: pick a free one */
	uint8_t key[32];		/* the cluster key both sides of a Raft connection prove */
	bool founder;			/* no --join: found the group */
	char dir_base[256];		/* where the private log directory is made; "": tmpfs
					 * (/dev/shm) when present, else $TMPDIR or /tmp */
	uint32_t election_timeout_ms;	/* 0: 300 */
	ctl_view_fn on_view;		/* may be NULL */
	void *on_view_arg;
	ctl_lease_fn on_lease;		/* may be NULL */
	void *on_lease_arg;
	/* Whether this node's data link to member `name` is up (controller thread). A member
	 * enters the view only once the leader can reach it: one that cannot link (a foreign
	 * CA, --route-tls on one side only) would own queues nobody can send to. NULL: every
	 * member counts as linked (a node without links). */
	bool (*is_linked)(void *arg, const char *name);
	void *is_linked_arg;
};

struct ctl;

/* Binds the Raft port, makes the log directory, starts the controller thread (and, for
 * the founder, the single-voter group). 0 or a negative errno (logged). Main thread. */
int ctl_start(struct ctl **out, const struct ctl_config *cfg);
/* The Raft port and this process's Raft id (advertised in the membership metadata). */
uint16_t ctl_port(const struct ctl *c);
uint64_t ctl_raft_id(const struct ctl *c);

/* Gossip's news about another member (any thread): alive (suspect or not) with its Raft
 * port and id, or dead/left. Repeats are harmless. A member suspect for CTL_SUSPECT_MS
 * leaves the view before gossip's verdict (Lifeguard's suspicion timeout is made for
 * gossip's correctness and runs to seconds more; a member taken out too early is added
 * back when it answers again, and its queues' backups had every receipted message). */
#define CTL_SUSPECT_MS 2000
void ctl_member(struct ctl *c, const char *name, const char *host, uint16_t raft_port,
		uint64_t raft_id, bool alive, bool suspect);

/* What this node's link probe found about member `name` (any thread): gone (its link
 * closed and its port refuses connections: the process is gone) or running. A gone member
 * leaves the view at once, without waiting for gossip's verdict (docs/replication.md,
 * "Who decides"); news of it as another process (a new Raft id) clears the mark. */
void ctl_member_probe(struct ctl *c, const char *name, bool gone);

/* Appends this node's controller state as a JSON object to buf[0..cap) (any thread):
 * {"role", "leader", "epoch", "voters", "view": [{"name", "state"}]}. Returns the length
 * written (0 when it does not fit). */
size_t ctl_status_json(struct ctl *c, char *buf, size_t cap);

/* Stops the thread (Raft closed, the log directory removed), frees. Main thread. */
void ctl_stop_and_destroy(struct ctl *c);

#endif
