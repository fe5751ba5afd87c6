/*
 * cluster/controller.c - the view through C-Raft (what and why in controller.h).
 *
 * Log entries (big-endian): u8 op, u8 state, u8 name length, u64 raft id, name.
 *   op PUT: the member is in the view with that state (added, or its state changed);
 *   op REMOVE: the member (name and id) is out.
 * Each entry that changes the view raises the epoch by one. The snapshot is the view:
 * u64 epoch, u32 n, then per member u64 id, u8 state, u8 name length, name.
 */
#include "cluster/controller.h"

#include "cluster/raft_transport.h"
#include "core/base/hd_compiler.h"
#include "core/base/hd_bytes.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"

#include <errno.h>
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <raft.h>
#include <raft/uv.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define OP_PUT 1
#define OP_REMOVE 2
#define ENTRY_HEAD 11
#define RECONCILE_MS 100
#define HEARTBEAT_DIVISOR 5	/* heartbeat = election timeout / 5 */
#define ELECTION_TIMEOUT_DEFAULT_MS 300
#define DIR_PREFIX "herald-raft-"
/* The view's log is tiny: small segments keep a node's directory (memory, on tmpfs) at a
 * few hundred KiB rather than C-Raft's default 8 MiB per preallocated segment. */
#define SEGMENT_BYTES (64 * 1024)
#define BLOCK_BYTES 4096

/* What gossip says of one other member (the controller thread's copy). */
struct gossip_member {
	char name[CTL_NAME_MAX + 1];
	char addr[80];			/* "host:raft_port" */
	uint64_t raft_id;
	bool alive;
	bool gone;			/* its node link closed and its port refuses: the process
					 * is gone, whatever gossip says yet */
	bool suspect;			/* gossip suspects it ... */
	uint64_t suspect_since_ms;	/* ... since (hd_now_ms) */
	bool used;
};

struct ctl {
	struct ctl_config cfg;
	char dir[300];
	char self_addr[80];
	uint64_t raft_id;
	uint16_t port;
	pthread_t thread;
	bool thread_started;

	/* shared with other threads */
	pthread_mutex_t mu;
	struct gossip_member inbox[CTL_MAX_MEMBERS];	/* latest news per name */
	bool inbox_dirty;
	bool stop;
	char status[4096];		/* JSON, rewritten by the controller thread */
	size_t status_len;

	/* the controller thread's */
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t tick;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_fsm fsm;
	struct raft raft;
	struct gossip_member members[CTL_MAX_MEMBERS];
	struct ctl_view view;
	bool busy;			/* one apply or configuration change in flight */
	struct raft_apply apply_req;
	struct raft_change change_req;
	raft_id assign_after_add;	/* raft_add done: give it its role next */
	int last_role_logged;
	uint64_t last_tick_ms;		/* hd_now_ms at the last tick (gaps: a stopped process) */
	uint64_t resumed_ms;		/* when the last gap ended */
};

/* ---- the view (state machine) ---- */

static int view_find(const struct ctl_view *v, const char *name)
{
	for (uint32_t i = 0; i < v->n; i++)
		if (!strcmp(v->m[i].name, name))
			return (int)i;
	return -1;
}

static const char *state_name(uint8_t s)
{
	return s == CTL_ACTIVE ? "active" : s == CTL_JOINING ? "joining" : "?";
}

static void publish_status(struct ctl *c);

static void view_changed(struct ctl *c)
{
	char line[1024];
	size_t off = 0;

	c->view.epoch++;
	for (uint32_t i = 0; i < c->view.n && off < sizeof(line) - 1; i++) {
		int w = snprintf(line + off, sizeof(line) - off, "%s%s(%s)", i ? " " : "",
				 c->view.m[i].name, state_name(c->view.m[i].state));

		if (w < 0)
			break;
		off += (size_t)w;
	}
	line[HD_MIN(off, sizeof(line) - 1)] = '\0';
	hd_log_info("controller: view epoch %llu: %s", (unsigned long long)c->view.epoch, line);
	if (c->cfg.on_view)
		c->cfg.on_view(c->cfg.on_view_arg, &c->view);
	publish_status(c);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct ctl *c = fsm->data;
	const uint8_t *p = buf->base;
	char name[CTL_NAME_MAX + 1];
	uint64_t id;
	size_t nlen;
	int at;

	*result = NULL;
	if (buf->len < ENTRY_HEAD || (nlen = p[2]) == 0 || nlen > CTL_NAME_MAX ||
	    buf->len < ENTRY_HEAD + nlen)
		return 0;	/* not ours: ignore (every node ignores it alike) */
	memcpy(name, p + ENTRY_HEAD, nlen);
	name[nlen] = '\0';
	id = hd_get_be64(p + 3);
	at = view_find(&c->view, name);
	if (p[0] == OP_PUT) {
		struct ctl_view_member *m;

		if (at >= 0 && c->view.m[at].raft_id == id && c->view.m[at].state == p[1])
			return 0;
		if (at < 0) {
			if (c->view.n == CTL_MAX_MEMBERS)
				return 0;
			at = (int)c->view.n++;
		}
		m = &c->view.m[at];
		snprintf(m->name, sizeof(m->name), "%s", name);
		m->raft_id = id;
		m->state = p[1];
		m->since_ms = hd_now_ms();
		view_changed(c);
	} else if (p[0] == OP_REMOVE && at >= 0 && c->view.m[at].raft_id == id) {
		c->view.m[at] = c->view.m[--c->view.n];
		view_changed(c);
	}
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct ctl *c = fsm->data;
	size_t len = 12;
	uint8_t *p;

	for (uint32_t i = 0; i < c->view.n; i++)
		len += 10 + strlen(c->view.m[i].name);
	len = (len + 7) & ~(size_t)7;	/* as entries: multiples of 8 */
	*bufs = raft_malloc(sizeof(**bufs));
	if (!*bufs)
		return RAFT_NOMEM;
	p = raft_calloc(1, len);
	if (!p) {
		raft_free(*bufs);
		return RAFT_NOMEM;
	}
	(*bufs)[0].base = p;
	(*bufs)[0].len = len;
	*n_bufs = 1;
	hd_put_be64(p, c->view.epoch);
	p[8] = (uint8_t)(c->view.n >> 24);
	p[9] = (uint8_t)(c->view.n >> 16);
	p[10] = (uint8_t)(c->view.n >> 8);
	p[11] = (uint8_t)c->view.n;
	p += 12;
	for (uint32_t i = 0; i < c->view.n; i++) {
		size_t nlen = strlen(c->view.m[i].name);

		hd_put_be64(p, c->view.m[i].raft_id);
		p[8] = c->view.m[i].state;
		p[9] = (uint8_t)nlen;
		memcpy(p + 10, c->view.m[i].name, nlen);
		p += 10 + nlen;
	}
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct ctl *c = fsm->data;
	const uint8_t *p = buf->base, *end = p + buf->len;
	struct ctl_view v = { 0 };
	uint32_t n;

	if (buf->len < 12) {
		raft_free(buf->base);
		return RAFT_MALFORMED;
	}
	v.epoch = hd_get_be64(p);
	n = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
	p += 12;
	for (uint32_t i = 0; i < n && i < CTL_MAX_MEMBERS; i++) {
		size_t nlen;

		if (end - p < 10 || (nlen = p[9]) > CTL_NAME_MAX || (size_t)(end - p) < 10 + nlen)
			break;
		v.m[v.n].raft_id = hd_get_be64(p);
		v.m[v.n].state = p[8];
		v.m[v.n].since_ms = hd_now_ms();
		memcpy(v.m[v.n].name, p + 10, nlen);
		v.n++;
		p += 10 + nlen;
	}
	raft_free(buf->base);
	c->view = v;
	c->view.epoch--;	/* view_changed counts it back */
	view_changed(c);
	return 0;
}

/* ---- the leader's work: follow gossip, one change at a time ---- */

static void change_done(struct raft_change *req, int status);

static void apply_done(struct raft_apply *req, int status, void *result)
{
	struct ctl *c = req->data;

	(void)result;
	c->busy = false;
	if (status)
		hd_log_warn("controller: view change not applied: %s", raft_strerror(status));
}

static int propose(struct ctl *c, uint8_t op, uint8_t state, const char *name, uint64_t id)
{
	size_t nlen = strlen(name);
	/* C-Raft's wire and disk encodings want entry lengths in multiples of 8: a batch of
	 * unpadded entries reaches a catching-up follower shifted */
	struct raft_buffer buf = { .len = (ENTRY_HEAD + nlen + 7) & ~(size_t)7 };
	uint8_t *p;
	int rc;

	buf.base = p = raft_calloc(1, buf.len);
	if (!p)
		return RAFT_NOMEM;
	p[0] = op;
	p[1] = state;
	p[2] = (uint8_t)nlen;
	hd_put_be64(p + 3, id);
	memcpy(p + ENTRY_HEAD, name, nlen);
	c->apply_req.data = c;
	c->busy = true;
	rc = raft_apply(&c->raft, &c->apply_req, &buf, 1, apply_done);
	if (rc) {
		c->busy = false;
		raft_free(p);
	}
	return rc;
}

static const struct raft_server *config_find(const struct ctl *c, raft_id id)
{
	for (unsigned i = 0; i < c->raft.configuration.n; i++)
		if (c->raft.configuration.servers[i].id == id)
			return &c->raft.configuration.servers[i];
	return NULL;
}

static unsigned config_voters(const struct ctl *c)
{
	unsigned v = 0;

	for (unsigned i = 0; i < c->raft.configuration.n; i++)
		v += c->raft.configuration.servers[i].role == RAFT_VOTER;
	return v;
}

/* Whether gossip's news lets this member stay in the view. */
static bool member_ok(const struct gossip_member *g, uint64_t now_ms)
{
	return g->used && g->alive && !g->gone &&
	       !(g->suspect && now_ms - g->suspect_since_ms >= CTL_SUSPECT_MS);
}

static const struct gossip_member *gossip_by_id(const struct ctl *c, uint64_t id)
{
	uint64_t now = hd_now_ms();

	for (int i = 0; i < CTL_MAX_MEMBERS; i++)
		if (member_ok(&c->members[i], now) && c->members[i].raft_id == id)
			return &c->members[i];
	return NULL;
}

static void change_done(struct raft_change *req, int status)
{
	struct ctl *c = req->data;

	c->busy = false;
	if (status) {
		hd_log_warn("controller: configuration change failed: %s", raft_strerror(status));
		c->assign_after_add = 0;
	}
}

enum change_kind { CHANGE_ADD, CHANGE_ASSIGN, CHANGE_REMOVE };

/* Starts one change of the group's configuration (one at a time: busy until change_done):
 * add server id at addr, give it role, or remove it. */
static int change(struct ctl *c, enum change_kind kind, raft_id id, int role, const char *addr)
{
	int rc;

	c->change_req.data = c;
	c->busy = true;
	rc = kind == CHANGE_ADD ? raft_add(&c->raft, &c->change_req, id, addr, change_done) :
	     kind == CHANGE_REMOVE ? raft_remove(&c->raft, &c->change_req, id, change_done) :
	     raft_assign(&c->raft, &c->change_req, id, role, change_done);
	if (rc)
		c->busy = false;
	return rc;
}

/* One step towards "the view and the group are the members gossip calls alive": removals
 * first (they start failovers), then additions. */
static void reconcile(struct ctl *c)
{
	int rc = 0;

	if (c->busy || raft_state(&c->raft) != RAFT_LEADER)
		return;
	/* a member gossip no longer calls alive (or that came back as another process) */
	for (uint32_t i = 0; i < c->view.n; i++) {
		const struct ctl_view_member *m = &c->view.m[i];

		if (m->raft_id == c->raft_id || gossip_by_id(c, m->raft_id))
			continue;
		hd_log_info("controller: taking %s out of the view", m->name);
		rc = propose(c, OP_REMOVE, 0, m->name, m->raft_id);
		goto out;
	}
	for (unsigned i = 0; i < c->raft.configuration.n; i++) {
		raft_id id = c->raft.configuration.servers[i].id;

		if (id == c->raft_id || gossip_by_id(c, id))
			continue;
		rc = change(c, CHANGE_REMOVE, id, 0, NULL);
		goto out;
	}
	/* ourselves first (active at once when founding: there is nothing to copy), then
	 * every alive member with a Raft port, joining */
	if (view_find(&c->view, c->cfg.node_name) < 0) {
		rc = propose(c, OP_PUT, c->view.n ? CTL_JOINING : CTL_ACTIVE, c->cfg.node_name,
			     c->raft_id);
		goto out;
	}
	if (c->assign_after_add) {
		raft_id id = c->assign_after_add;

		c->assign_after_add = 0;
		if (config_find(c, id)) {
			rc = change(c, CHANGE_ASSIGN, id, config_voters(c) < CTL_MAX_VOTERS ?
				    RAFT_VOTER : RAFT_STANDBY, NULL);
			goto out;
		}
	}
	for (int i = 0; i < CTL_MAX_MEMBERS; i++) {
		const struct gossip_member *g = &c->members[i];
		const struct raft_server *s;
		int at;

		if (!member_ok(g, hd_now_ms()) || !g->raft_id)
			continue;
		s = config_find(c, g->raft_id);
		if (!s) {
			rc = change(c, CHANGE_ADD, g->raft_id, 0, g->addr);
			c->assign_after_add = rc ? 0 : g->raft_id;
			goto out;
		}
		if (s->role == RAFT_SPARE ||
		    (s->role == RAFT_STANDBY && config_voters(c) < CTL_MAX_VOTERS)) {
			rc = change(c, CHANGE_ASSIGN, g->raft_id, config_voters(c) < CTL_MAX_VOTERS ?
				    RAFT_VOTER : RAFT_STANDBY, NULL);
			goto out;
		}
		at = view_find(&c->view, g->name);
		if (at >= 0 && c->view.m[at].raft_id != g->raft_id) {
			/* the same name, a new process: the old one goes first */
			rc = propose(c, OP_REMOVE, 0, g->name, c->view.m[at].raft_id);
			goto out;
		}
		if (at < 0 && (!c->cfg.is_linked ||
			       c->cfg.is_linked(c->cfg.is_linked_arg, g->name))) {
			rc = propose(c, OP_PUT, CTL_JOINING, g->name, g->raft_id);
			goto out;
		}
	}
	/* joining members that had their time to take copies become active */
	for (uint32_t i = 0; i < c->view.n; i++) {
		const struct ctl_view_member *m = &c->view.m[i];

		if (m->state == CTL_JOINING && hd_now_ms() - m->since_ms >= CTL_JOIN_SYNC_MS) {
			rc = propose(c, OP_PUT, CTL_ACTIVE, m->name, m->raft_id);
			goto out;
		}
	}
out:
	if (rc)
		hd_log_warn("controller: %s", raft_errmsg(&c->raft));
}

/* ---- status for the admin endpoint ---- */

static const char *leader_name(struct ctl *c)
{
	raft_id id = 0;
	const char *addr = NULL;

	raft_leader(&c->raft, &id, &addr);
	if (!id)
		return "";
	for (uint32_t i = 0; i < c->view.n; i++)
		if (c->view.m[i].raft_id == id)
			return c->view.m[i].name;
	return "?";
}

/* A name as a JSON string's contents: printable ASCII but quote and backslash as they
 * are, the rest as \u00XX. */
static size_t json_name(char *out, size_t cap, const char *name)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p && o + 7 < cap; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
	}
	out[o] = '\0';
	return o;
}

static void publish_status(struct ctl *c)
{
	static const char *const roles[] = { "unavailable", "follower", "candidate", "leader" };
	char buf[sizeof(c->status)];
	char name[CTL_NAME_MAX * 6 + 8];
	int state = raft_state(&c->raft);
	size_t off;
	int w;

	json_name(name, sizeof(name), leader_name(c));
	w = snprintf(buf, sizeof(buf),
		     "{\"role\": \"%s\", \"leader\": \"%s\", \"epoch\": %llu, \"voters\": %u, "
		     "\"view\": [", state >= 0 && state <= 3 ? roles[state] : "?",
		     name, (unsigned long long)c->view.epoch, config_voters(c));
	off = w > 0 ? (size_t)w : 0;
	for (uint32_t i = 0; i < c->view.n && off < sizeof(buf); i++) {
		json_name(name, sizeof(name), c->view.m[i].name);
		w = snprintf(buf + off, sizeof(buf) - off, "%s{\"name\": \"%s\", \"state\": \"%s\"}",
			     i ? ", " : "", name, state_name(c->view.m[i].state));
		off += w > 0 ? (size_t)w : 0;
	}
	if (off < sizeof(buf))
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "]}");
	if (off >= sizeof(buf))
		return;		/* a view this large does not fit: keep the last one */
	pthread_mutex_lock(&c->mu);
	memcpy(c->status, buf, off + 1);
	c->status_len = off;
	pthread_mutex_unlock(&c->mu);
}

size_t ctl_status_json(struct ctl *c, char *buf, size_t cap)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = c->status_len;
	if (n + 1 > cap)
		n = 0;
	else
		memcpy(buf, c->status, n + 1);
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* ---- the thread ---- */

static void take_inbox(struct ctl *c)
{
	pthread_mutex_lock(&c->mu);
	if (c->inbox_dirty) {
		memcpy(c->members, c->inbox, sizeof(c->members));
		c->inbox_dirty = false;
	}
	pthread_mutex_unlock(&c->mu);
}

static void on_raft_closed(struct raft *r)
{
	struct ctl *c = r->data;

	raft_uv_close(&c->io);
	uv_close((uv_handle_t *)&c->wake, NULL);
	uv_close((uv_handle_t *)&c->tick, NULL);
}

static void on_wake(uv_async_t *a)
{
	struct ctl *c = a->data;
	bool stop;

	pthread_mutex_lock(&c->mu);
	stop = c->stop;
	pthread_mutex_unlock(&c->mu);
	if (stop) {
		uv_timer_stop(&c->tick);
		raft_close(&c->raft, on_raft_closed);
		return;
	}
	take_inbox(c);
	reconcile(c);
}

/* The lease (controller.h, ctl_lease_fn), from the last contact C-Raft counts: a
 * follower's last message from its leader, a leader's last confirmation that a majority
 * hears it (it steps down after an election timeout without one).
 *
 * A process that was stopped (SIGSTOP, a VM pause) finds, when it resumes, messages that
 * waited in its sockets: C-Raft reads them as fresh contact. So after a gap in our own
 * ticks, only contact made RESUME_GRACE_MS after the resume counts - by then what waited
 * has been read, and what comes is new: a member taken out of the group meanwhile hears
 * from no leader, and never gets its lease back. */
#define TICK_GAP_MS (3 * RECONCILE_MS)
#define RESUME_GRACE_MS 150
static void publish_lease(struct ctl *c, int role)
{
	uint64_t now = hd_now_ms(), until = 0, contact = 0;
	raft_time raft_now = c->io.time(&c->io);
	uint64_t since = raft_now > c->raft.election_timer_start ?
			 raft_now - c->raft.election_timer_start : 0;

	if (c->last_tick_ms && now - c->last_tick_ms > TICK_GAP_MS) {
		c->resumed_ms = now;
		hd_log_warn("controller: this node did not run for %llu ms: its lease waits for "
			    "new contact with the leader", (unsigned long long)(now - c->last_tick_ms));
	}
	c->last_tick_ms = now;
	if (role == RAFT_LEADER ||
	    (role == RAFT_FOLLOWER && c->raft.follower_state.current_leader.id))
		contact = now > since ? now - since : 0;
	if (contact && contact >= c->resumed_ms + RESUME_GRACE_MS && contact + CTL_LEASE_MS > now)
		until = contact + CTL_LEASE_MS;
	if (c->cfg.on_lease)
		c->cfg.on_lease(c->cfg.on_lease_arg, until);
}

static void on_tick(uv_timer_t *t)
{
	struct ctl *c = t->data;
	int role = raft_state(&c->raft);

	if (role != c->last_role_logged) {
		if (role == RAFT_LEADER)
			hd_log_info("controller: this node leads the view (epoch %llu)",
				    (unsigned long long)c->view.epoch);
		c->last_role_logged = role;
	}
	reconcile(c);
	publish_status(c);
	publish_lease(c, role);
}

static void *ctl_main(void *arg)
{
	struct ctl *c = arg;

	uv_run(&c->loop, UV_RUN_DEFAULT);
	return NULL;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes the log directories of earlier processes that were killed (no one else would
 * remove them: on tmpfs they are memory). Names carry the process id; a directory whose
 * process still runs, or any other name, is left alone. */
static void sweep_dead(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[600];
		long pid;
		char *end;

		if (strncmp(e->d_name, DIR_PREFIX, strlen(DIR_PREFIX)))
			continue;
		pid = strtol(e->d_name + strlen(DIR_PREFIX), &end, 10);
		if (pid <= 0 || *end != '-' || pid == (long)getpid() ||
		    !(kill((pid_t)pid, 0) && errno == ESRCH))
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		nftw(path, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
	closedir(d);
}

static int make_dir(struct ctl *c)
{
	const char *base = c->cfg.dir_base;
	struct stat st;

	if (!base[0]) {
		base = getenv("TMPDIR");
		if (!stat("/dev/shm", &st) && S_ISDIR(st.st_mode) && !access("/dev/shm", W_OK))
			base = "/dev/shm";
		else if (!base || !base[0])
			base = "/tmp";
	}
	sweep_dead(base);
	snprintf(c->dir, sizeof(c->dir), "%s/" DIR_PREFIX "%ld-XXXXXX", base, (long)getpid());
	if (!mkdtemp(c->dir)) {
		hd_log_err("controller: cannot make a directory in %s: %s", base, strerror(errno));
		c->dir[0] = '\0';
		return -errno;
	}
	return 0;
}

/* Starts Raft on the loop (not yet running). On failure after raft_init, Raft is closed
 * again (its close also closes the wake-up and the tick) and *closed says so. */
static int start_raft(struct ctl *c, bool *closed)
{
	int rc;

	*closed = false;
	c->raft_id = 0;
	while (!c->raft_id)
		randombytes_buf(&c->raft_id, sizeof(c->raft_id));
	/* raft ids print as JSON numbers elsewhere: keep them exact in a double */
	c->raft_id &= (1ull << 53) - 1;
	if (!c->raft_id)
		c->raft_id = 1;
	rc = raft_uv_init(&c->io, &c->loop, c->dir, &c->transport);
	if (rc) {
		hd_log_err("controller: raft_uv_init: %s", c->io.errmsg);
		return -EIO;
	}
	raft_uv_set_block_size(&c->io, BLOCK_BYTES);
	raft_uv_set_segment_size(&c->io, SEGMENT_BYTES);
	c->fsm = (struct raft_fsm){ .version = 1, .data = c, .apply = fsm_apply,
				    .snapshot = fsm_snapshot, .restore = fsm_restore };
	rc = raft_init(&c->raft, &c->io, &c->fsm, c->raft_id, c->self_addr);
	if (rc) {
		hd_log_err("controller: raft_init: %s", raft_errmsg(&c->raft));
		raft_uv_close(&c->io);
		return -EIO;
	}
	c->raft.data = c;
	raft_set_election_timeout(&c->raft, c->cfg.election_timeout_ms);
	raft_set_heartbeat_timeout(&c->raft, c->cfg.election_timeout_ms / HEARTBEAT_DIVISOR);
	raft_set_pre_vote(&c->raft, true);
	raft_set_snapshot_threshold(&c->raft, 256);
	raft_set_snapshot_trailing(&c->raft, 64);
	if (c->cfg.founder) {
		struct raft_configuration conf;

		raft_configuration_init(&conf);
		rc = raft_configuration_add(&conf, c->raft_id, c->self_addr, RAFT_VOTER);
		if (!rc)
			rc = raft_bootstrap(&c->raft, &conf);
		raft_configuration_close(&conf);
		if (rc)
			hd_log_err("controller: raft_bootstrap: %s", raft_strerror(rc));
	}
	if (!rc) {
		rc = raft_start(&c->raft);
		if (rc)
			hd_log_err("controller: raft_start: %s", raft_errmsg(&c->raft));
	}
	if (rc) {
		raft_close(&c->raft, on_raft_closed);
		uv_run(&c->loop, UV_RUN_DEFAULT);
		*closed = true;
		return -EIO;
	}
	return 0;
}

int ctl_start(struct ctl **out, const struct ctl_config *cfg)
{
	struct ctl *c = calloc(1, sizeof(*c));
	bool raft_closed;
	int err;

	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	if (!c->cfg.election_timeout_ms)
		c->cfg.election_timeout_ms = ELECTION_TIMEOUT_DEFAULT_MS;
	pthread_mutex_init(&c->mu, NULL);
	c->last_role_logged = -1;
	snprintf(c->status, sizeof(c->status), "{\"role\": \"unavailable\", \"leader\": \"\", "
		 "\"epoch\": 0, \"voters\": 0, \"view\": []}");
	c->status_len = strlen(c->status);
	err = uv_loop_init(&c->loop);
	if (err) {
		free(c);
		return err;
	}
	err = raft_transport_init(&c->transport, &c->loop, cfg->bind_addr, cfg->port, cfg->key);
	if (err)
		goto fail_loop;
	c->port = raft_transport_port(&c->transport);
	snprintf(c->self_addr, sizeof(c->self_addr), "%s:%u",
		 cfg->advertise_addr[0] ? cfg->advertise_addr : cfg->bind_addr, c->port);
	err = make_dir(c);
	if (err)
		goto fail_transport;
	uv_async_init(&c->loop, &c->wake, on_wake);
	c->wake.data = c;
	uv_timer_init(&c->loop, &c->tick);
	c->tick.data = c;
	err = start_raft(c, &raft_closed);
	if (err && raft_closed)
		goto fail_closed;
	if (err)
		goto fail_handles;
	uv_timer_start(&c->tick, on_tick, RECONCILE_MS, RECONCILE_MS);
	err = -pthread_create(&c->thread, NULL, ctl_main, c);
	if (err) {
		/* the loop has not run: close Raft on this thread instead */
		raft_close(&c->raft, on_raft_closed);
		uv_run(&c->loop, UV_RUN_DEFAULT);
		goto fail_closed;
	}
	c->thread_started = true;
	hd_log_info("listening proto=raft addr=%s:%u", cfg->bind_addr, c->port);
	*out = c;
	return 0;

fail_handles:
	uv_close((uv_handle_t *)&c->wake, NULL);
	uv_close((uv_handle_t *)&c->tick, NULL);
fail_transport:
	c->transport.close(&c->transport, NULL);
	uv_run(&c->loop, UV_RUN_DEFAULT);
fail_closed:
	raft_transport_fini(&c->transport);
	if (c->dir[0])
		nftw(c->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
fail_loop:
	uv_loop_close(&c->loop);
	free(c);
	return err < 0 ? err : -EIO;
}

uint16_t ctl_port(const struct ctl *c)
{
	return c->port;
}

uint64_t ctl_raft_id(const struct ctl *c)
{
	return c->raft_id;
}

void ctl_member(struct ctl *c, const char *name, const char *host, uint16_t raft_port,
		uint64_t raft_id, bool alive, bool suspect)
{
	struct gossip_member *slot = NULL;

	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < CTL_MAX_MEMBERS; i++) {
		struct gossip_member *g = &c->inbox[i];

		if (g->used && !strcmp(g->name, name)) {
			slot = g;
			break;
		}
		if (!g->used && !slot)
			slot = g;
	}
	if (slot) {
		if (!slot->used || slot->raft_id != (raft_port ? raft_id : 0))
			slot->gone = false;	/* another process now */
		slot->used = true;
		snprintf(slot->name, sizeof(slot->name), "%s", name);
		snprintf(slot->addr, sizeof(slot->addr), "%s:%u", host, raft_port);
		slot->raft_id = raft_port ? raft_id : 0;
		slot->alive = alive;
		if (suspect && !slot->suspect)
			slot->suspect_since_ms = hd_now_ms();
		slot->suspect = suspect;
		c->inbox_dirty = true;
	}
	pthread_mutex_unlock(&c->mu);
	uv_async_send(&c->wake);
}

void ctl_member_probe(struct ctl *c, const char *name, bool gone)
{
	bool changed = false;

	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < CTL_MAX_MEMBERS; i++) {
		struct gossip_member *g = &c->inbox[i];

		if (g->used && !strcmp(g->name, name) && g->gone != gone) {
			g->gone = gone;
			c->inbox_dirty = changed = true;
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (changed)
		uv_async_send(&c->wake);
}

void ctl_stop_and_destroy(struct ctl *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_mutex_unlock(&c->mu);
	uv_async_send(&c->wake);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	raft_transport_fini(&c->transport);
	uv_loop_close(&c->loop);
	if (c->dir[0])
		nftw(c->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
