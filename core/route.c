/*
 * core/route.c - the route thread: node links (see route.h).
 *
 * Links. The node whose name sorts lower dials (one link per pair however both sides
 * learn of each other); the other accepts. Both sides send HELLO (a fresh nonce, the
 * cluster and node names) at once, then AUTH: HMAC-SHA256 with the cluster key over a
 * label, the peer's nonce, its own nonce and both names, so a recorded AUTH is worthless
 * on any other connection. Nothing else is accepted before the peer's AUTH checks out.
 * A link lives while the member is alive; a closed one is re-dialled with backoff.
 * With --route-tls (cfg.tls_ctx) each link is TLS first, the dialler as client: the loop
 * runs it under us (net/tls.h), so HELLO and AUTH simply travel inside it, and a failed
 * TLS handshake is a closed link like any other (logged by net/tls.c, re-dialled).
 *
 * Interest. local: this node's shards as columns; a name whose mask goes 0 -> non-0 is an
 * ADD to every up peer, non-0 -> 0 a DEL, each with a sequence number. remote: the peers
 * as columns; a name whose mask goes 0 -> non-0 is a +1 from the route endpoint to every
 * shard, non-0 -> 0 a -1. A peer acknowledges (ACK seq) only after a SYNC round through all
 * its shards, so an acknowledged ADD is in force where publishes are routed.
 *
 * Backpressure. A link with more than LINK_HIGH_WATER bytes unsent stops the route from
 * taking more work from the shards: their rings fill, they park and stop reading their
 * publishers, as between shards. A link that stays that full for LINK_STALL_MS is dropped
 * (its in-flight topic messages are lost, as NATS and RabbitMQ lose them) and re-dialled;
 * the fresh link starts with a full interest exchange.
 */
#include "core/route.h"
#include "core/route_state.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"
#include "core/destname.h"
#include "core/hmsg.h"
#include "core/interest.h"
#include "core/shard.h"
#include "core/xring.h"
#include "net/listen.h"
#include "net/loop.h"
#include "net/tls.h"
#include "proto/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define ROUTE_KIND_IN 1		/* accepted on the route port */
#define ROUTE_KIND_OUT 2	/* dialled by us */
#define LINK_HIGH_WATER (8u << 20)	/* unsent bytes on a link before the route stops taking work */
#define LINK_STALL_MS 5000	/* that full for this long: drop the link, re-sync */
#define HANDSHAKE_MS 5000	/* HELLO + AUTH must be done by then */
#define DIAL_TIMEOUT_MS 3000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define DRAIN_BATCH 256
#define DRAIN_BUDGET 4096
#define STATS_EVERY_MS 100
#define LINK_MAX_SLACK 65536	/* a MESSAGE frame's headers past max-frame-bytes */
static const char MAC_LABEL[] = "herald-link-1";

static const char *const state_names[] = { "down", "connecting", "up" };

/* ---- xrings to the shards (parking as shard_send does) ---- */

void route_forward_to_shard(struct route *r, uint32_t to, const struct xmsg *m)
{
	r->nparked += xpark_send(&r->parked[to], r->out[to], m);
}

void route_send_to_shard(struct route *r, uint32_t to, const struct xmsg *m)
{
	struct xmsg copy = *m;

	copy.from = (uint16_t)r->endpoint;
	route_forward_to_shard(r, to, &copy);
}

static void publish_outbound(struct route *r)
{
	for (uint32_t to = 0; to < r->nshards; to++) {
		r->nparked -= xpark_flush(&r->parked[to], r->out[to]);
		xring_publish(r->out[to]);
	}
}

static void broadcast_interest(struct route *r, bool pattern, const char *name, size_t len, bool add)
{
	for (uint32_t to = 0; to < r->nshards; to++) {
		struct xmsg m = { .kind = pattern ? XMSG_PATTERN_INTEREST : XMSG_TOPIC_INTEREST,
				  .u32 = add, .ptr = xname_create(name, len) };

		route_send_to_shard(r, to, &m);
	}
}

/* ---- link output ---- */

void route_link_write(struct route *r, struct peer *p, struct net_conn *c, const uint8_t *buf,
		       size_t len)
{
	net_conn_write_copy(&r->loop, c, (const char *)buf, len);
	if (p)
		p->bytes_out += len;
}

static void send_interest(struct route *r, struct peer *p, bool pattern, const char *name,
			  size_t len, bool add)
{
	struct link_interest in = { .op = add ? LINK_ADD : LINK_DEL,
				    .kind = pattern ? LINK_PATTERN : LINK_TOPIC,
				    .seq = ++p->seq_sent, .name = name, .name_len = (uint32_t)len };
	uint8_t small[512];
	size_t need = LINK_INTEREST_HDR + len;
	uint8_t *buf = need <= sizeof(small) ? small : hd_alloc(need);

	route_link_write(r, p, p->conn, buf, link_encode_interest(buf, need, &in));
	if (buf != small)
		hd_free(buf);
}

static void send_interest_all(struct route *r, bool pattern, const char *name, size_t len, bool add)
{
	for (int i = 0; i < ROUTE_MAX_PEERS; i++)
		if (r->peers[i].state == PEER_UP)
			send_interest(r, &r->peers[i], pattern, name, len, add);
}

void route_message_view(const struct hmsg *m, struct link_message *out)
{
	uint32_t end = m->tail_off + m->tail_len;

	end = HD_MAX(end, m->tail10_off + m->tail10_len);
	end = HD_MAX(end, m->tail11_off + m->tail11_len);
	*out = (struct link_message){
		.flags = m->flags, .dest_len = m->dest_len, .tail_off = m->tail_off,
		.tail_len = m->tail_len, .msgid_off = m->msgid_off, .msgid_len = m->msgid_len,
		.body_len = m->body_len, .tail10_off = m->tail10_off, .tail10_len = m->tail10_len,
		.tail11_off = m->tail11_off, .tail11_len = m->tail11_len,
		.bytes = (const uint8_t *)m->bytes, .bytes_len = end,
	};
}

void route_link_write_message(struct route *r, struct peer *p, const uint8_t *head,
			      size_t head_len, struct hmsg *m, uint32_t bytes_len)
{
	/* the frame head inline, the message's own buffer after it: no copy of the body */
	struct net_out *o = net_conn_out_reserve(&r->loop, p->conn);

	HD_ASSERT(head_len <= sizeof(o->head));
	memcpy(o->head, head, head_len);
	o->head_len = (uint16_t)head_len;
	o->tail = m->bytes;
	o->tail_len = bytes_len;
	hmsg_ref(m, 1);
	o->release = hmsg_release_cb;
	o->release_arg = m;
	net_conn_out_commit(&r->loop, p->conn, o);
	p->msgs_out++;
	p->bytes_out += head_len + bytes_len;
}

static void send_message(struct route *r, struct peer *p, struct hmsg *m)
{
	struct link_message lm;
	uint8_t head[LINK_MESSAGE_HDR];

	route_message_view(m, &lm);
	route_link_write_message(r, p, head, link_encode_message_head(head, sizeof(head), &lm), m,
				 lm.bytes_len);
}

/* ---- pending receipts ---- */

static bool sync_ready(struct route *r, const struct pending_sync *ps)
{
	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		const struct peer *p = &r->peers[i];

		if (!ps->need[i])
			continue;
		/* a link that went away no longer holds the receipt back */
		if (p->state == PEER_UP && p->link_gen == ps->gen[i] && p->seq_acked < ps->need[i])
			return false;
	}
	return true;
}

static void answer_sync(struct route *r, uint16_t to, uint64_t conn_ref, uint32_t seq)
{
	struct xmsg d = { .kind = XMSG_DONE, .a = conn_ref, .u32 = seq, .b = XERR_OK };

	route_send_to_shard(r, to, &d);
}

static void check_syncs(struct route *r)
{
	struct pending_sync **pp = &r->syncs;

	while (*pp) {
		struct pending_sync *ps = *pp;

		if (sync_ready(r, ps)) {
			*pp = ps->next;
			answer_sync(r, ps->from, ps->conn_ref, ps->seq);
			hd_free(ps);
		} else {
			pp = &ps->next;
		}
	}
}

static void on_shard_sync(struct route *r, const struct xmsg *m)
{
	struct pending_sync *ps = hd_calloc(1, sizeof(*ps));

	ps->from = m->from;
	ps->seq = m->u32;
	ps->conn_ref = m->a;
	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		const struct peer *p = &r->peers[i];

		if (p->state == PEER_UP && p->seq_acked < p->seq_sent) {
			ps->need[i] = p->seq_sent;
			ps->gen[i] = p->link_gen;
		}
	}
	if (sync_ready(r, ps)) {
		answer_sync(r, ps->from, ps->conn_ref, ps->seq);
		hd_free(ps);
		return;
	}
	ps->next = r->syncs;
	r->syncs = ps;
}

/* ---- peers ---- */

static int peer_find(struct route *r, const char *name, size_t len)
{
	for (int i = 0; i < ROUTE_MAX_PEERS; i++)
		if (r->peers[i].used && strlen(r->peers[i].name) == len &&
		    !memcmp(r->peers[i].name, name, len))
			return i;
	return -1;
}

static int peer_slot(struct route *r, const char *name, size_t len)
{
	int i = peer_find(r, name, len);

	if (i >= 0)
		return i;
	for (i = 0; i < ROUTE_MAX_PEERS; i++) {
		struct peer *p = &r->peers[i];

		if (!p->used) {
			memset(p, 0, sizeof(*p));
			p->used = true;
			p->dial_fd = p->probe_fd = -1;
			memcpy(p->name, name, len);
			p->name[len] = '\0';
			p->node_hash = placement_node_hash(name, len);
			return i;
		}
	}
	hd_log_warn("route: more than %d peers; no link for %.*s", ROUTE_MAX_PEERS, (int)len, name);
	return -1;
}

/* The lower name dials: one link per pair whoever hears of whom first. */
static bool we_dial(const struct route *r, const struct peer *p)
{
	return strcmp(r->cfg.node_name, p->name) < 0;
}

static void on_remote_unwanted(void *arg, bool pattern, const char *name, size_t len)
{
	struct route *r = arg;

	broadcast_interest(r, pattern, name, len, false);
}

#define PROBE_AGAIN_MS 50
#define PROBE_RETRIES 3

static void probe_stop(struct peer *p)
{
	if (p->probe_fd >= 0)
		close(p->probe_fd);
	p->probe_fd = -1;
}

static void probe_report(struct route *r, struct peer *p, bool gone)
{
	route_probe_fn fn;
	void *arg;

	probe_stop(p);
	pthread_mutex_lock(&r->mu);
	fn = r->on_probe;
	arg = r->on_probe_arg;
	pthread_mutex_unlock(&r->mu);
	if (gone)
		hd_log_info("route: %s refuses connections: its process is gone", p->name);
	if (fn)
		fn(arg, p->name, gone);
}

/* One connect to a member whose link just closed (route.h, route_set_probe_hook). */
/* A non-blocking connect to host:port (IPv4): the socket (connected, or the connect in
 * progress), or -1 with *err the errno (EINVAL: host is not IPv4) and *no_socket true when
 * no socket could be made (out of descriptors) rather than the connect failing. Dials and
 * probes both start here, and see how it ended with connect_result. */
static int connect_start(const char *host, uint16_t port, int *err, bool *no_socket)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd;

	*no_socket = false;
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		*err = EINVAL;
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno;
		*no_socket = true;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

#define CONNECT_PENDING (-1)

/* How a connect from connect_start ended: CONNECT_PENDING (not yet), 0 (connected) or its
 * errno. */
static int connect_result(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t elen = sizeof(err);

	if (poll(&pfd, 1, 0) <= 0)
		return CONNECT_PENDING;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen))
		return errno;
	return err;
}

static void probe_start(struct route *r, struct peer *p)
{
	int fd, err;
	bool no_socket;

	if (p->probe_fd >= 0 || !p->port)
		return;
	fd = connect_start(p->host, p->port, &err, &no_socket);
	if (fd < 0) {
		if (err == ECONNREFUSED)
			probe_report(r, p, true);
		return;
	}
	p->probe_fd = fd;
	p->probe_deadline_ms = r->now_ms + DIAL_TIMEOUT_MS;
}

/* Probes that finished: refused, accepted (closed at once), or out of time. */
static void probes_step(struct route *r)
{
	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		struct peer *p = &r->peers[i];
		int err;

		if (p->probe_again_ms && r->now_ms >= p->probe_again_ms) {
			p->probe_again_ms = 0;
			if (p->alive && p->state != PEER_UP)
				probe_start(r, p);
			continue;
		}
		if (p->probe_fd < 0)
			continue;
		err = connect_result(p->probe_fd);
		if (err == CONNECT_PENDING) {
			if (r->now_ms > p->probe_deadline_ms)
				probe_stop(p);
			continue;
		}
		if (err == ECONNREFUSED) {
			probe_report(r, p, true);
		} else if (!err && p->probes_left && p->state != PEER_UP) {
			/* a dying process closes its sockets one by one: its listener may still
			 * have taken this connect after the link closed; ask again shortly */
			probe_stop(p);
			p->probes_left--;
			p->probe_again_ms = r->now_ms + PROBE_AGAIN_MS;
		} else if (!err) {
			probe_report(r, p, false);
		} else {
			probe_stop(p);
		}
	}
}

/* The peer's link is gone: what it wanted no longer counts, receipts stop waiting for it. */
static void peer_link_down(struct route *r, int idx)
{
	struct peer *p = &r->peers[idx];
	bool was_up = p->state == PEER_UP;

	if (p->state == PEER_UP)
		hd_log_info("route: link to %s down", p->name);
	p->state = PEER_DOWN;
	p->conn = NULL;
	p->link_gen++;
	p->seq_sent = p->seq_acked = p->seq_in = 0;
	p->ack_due = false;
	p->full_since_ms = 0;
	interest_drop_column(&r->remote, (uint32_t)idx, on_remote_unwanted, r);
	check_syncs(r);
	route_queue_link_down(r, idx);
	if (p->alive && we_dial(r, p)) {
		p->backoff_ms = p->backoff_ms ? HD_MIN(p->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
		p->next_dial_ms = r->now_ms + p->backoff_ms;
	}
	if (p->alive && was_up) {
		p->probes_left = PROBE_RETRIES;
		probe_start(r, p);
	}
}

static void link_close(struct route *r, struct link *lk, const char *why)
{
	if (why) {
		char a[INET_ADDRSTRLEN] = "?";

		inet_ntop(AF_INET, &lk->c->peer.sin_addr, a, sizeof(a));
		hd_log_warn("route: link %s %s:%u closed: %s",
			    lk->peer >= 0 ? r->peers[lk->peer].name : "(unnamed)", a,
			    ntohs(lk->c->peer.sin_port), why);
	}
	net_conn_close(&r->loop, lk->c);	/* on_close frees lk */
}

static void dial_stop(struct peer *p)
{
	if (p->dial_fd >= 0)
		close(p->dial_fd);
	p->dial_fd = -1;
}

static void dial(struct route *r, int idx)
{
	struct peer *p = &r->peers[idx];
	int fd, err;
	bool no_socket;

	p->next_dial_ms = 0;
	fd = connect_start(p->host, p->port, &err, &no_socket);
	if (fd < 0 && err == EINVAL) {
		hd_log_warn("route: cannot dial %s: address %s is not IPv4", p->name, p->host);
		return;
	}
	if (fd < 0 && no_socket) {
		hd_log_warn("route: cannot dial %s: %s", p->name, strerror(err));
		p->next_dial_ms = r->now_ms + BACKOFF_MAX_MS;
		return;
	}
	if (fd < 0) {
		p->backoff_ms = p->backoff_ms ? HD_MIN(p->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
		p->next_dial_ms = r->now_ms + p->backoff_ms;
		return;
	}
	p->dial_fd = fd;
	p->dial_deadline_ms = r->now_ms + DIAL_TIMEOUT_MS;
	p->state = PEER_CONNECTING;
}

/* A connected dial becomes a link (on_link_accept runs); over TLS the loop may refuse it
 * (no memory for OpenSSL's state): a failed dial then, re-dialled with backoff. */
static void adopt_dial(struct route *r, int idx)
{
	struct peer *p = &r->peers[idx];
	int fd = p->dial_fd;

	p->dial_fd = -1;	/* the loop owns it now, or closed it */
	if (!r->cfg.tls_ctx)
		net_loop_adopt(&r->loop, fd, ROUTE_KIND_OUT);
	else if (net_loop_adopt_tls(&r->loop, fd, ROUTE_KIND_OUT))
		peer_link_down(r, idx);
}

/* Finished or failed dials; due re-dials. */
static void dials_step(struct route *r)
{
	probes_step(r);
	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		struct peer *p = &r->peers[i];

		if (!p->used || !p->alive)
			continue;
		if (p->dial_fd >= 0) {
			int err = connect_result(p->dial_fd);

			if (err == CONNECT_PENDING) {
				if (r->now_ms > p->dial_deadline_ms) {
					dial_stop(p);
					peer_link_down(r, i);
				}
				continue;
			}
			if (err) {
				dial_stop(p);
				peer_link_down(r, i);
				continue;
			}
			r->adopting = i;
			adopt_dial(r, i);
			r->adopting = -1;
			continue;
		}
		if (p->state == PEER_DOWN && we_dial(r, p) && p->next_dial_ms &&
		    r->now_ms >= p->next_dial_ms)
			dial(r, i);
	}
}

static void apply_update(struct route *r, const struct member_update *u)
{
	int i = u->alive ? peer_slot(r, u->name, strlen(u->name)) : peer_find(r, u->name, strlen(u->name));
	struct peer *p;

	if (i < 0)
		return;
	p = &r->peers[i];
	if (!u->alive) {
		if (!p->alive)
			return;
		hd_log_info("route: member %s gone; dropping its link", p->name);
		p->alive = false;
		dial_stop(p);
		probe_stop(p);
		p->probe_again_ms = 0;
		if (p->conn)
			link_close(r, p->conn->user, NULL);
		else
			peer_link_down(r, i);
		return;
	}
	if (p->alive && p->port == u->port && !strcmp(p->host, u->host))
		return;
	if (p->alive) {
		/* it moved (a restart on another port): start over */
		hd_log_info("route: member %s now at %s:%u", p->name, u->host, u->port);
		dial_stop(p);
		if (p->conn)
			link_close(r, p->conn->user, NULL);
	}
	/* a link it dialled before gossip told us of it stays: it proved the key */
	snprintf(p->host, sizeof(p->host), "%s", u->host);
	p->port = u->port;
	p->alive = true;
	p->backoff_ms = 0;
	if (we_dial(r, p) && p->port && p->state == PEER_DOWN)
		p->next_dial_ms = r->now_ms;
}

/* Which members queues are placed over: alive peers that have links (a route port). */
static uint64_t view_signature(const struct route *r)
{
	uint64_t sig = 0;

	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		const struct peer *p = &r->peers[i];

		if (p->used && p->alive && p->port && !p->leaving)
			sig += p->node_hash * 0x9e3779b97f4a7c15ull + 1;	/* order-free */
	}
	return sig + r->view.epoch * 0xbf58476d1ce4e5b9ull;
}

static void take_updates(struct route *r)
{
	struct member_update batch[MAX_UPDATES];
	uint64_t before = view_signature(r);
	uint32_t n;

	struct route_view views[ROUTE_VIEWS_PENDING];
	uint32_t nviews;

	pthread_mutex_lock(&r->mu);
	n = r->nupdates;
	memcpy(batch, r->updates, n * sizeof(batch[0]));
	r->nupdates = 0;
	nviews = r->nviews_pending;
	memcpy(views, r->views_pending, nviews * sizeof(views[0]));
	r->nviews_pending = 0;
	pthread_mutex_unlock(&r->mu);
	for (uint32_t i = 0; i < n; i++)
		apply_update(r, &batch[i]);
	for (uint32_t i = 0; i < nviews; i++) {
		r->view = views[i];
		if (!r->have_view) {
			r->have_view = true;
			before = ~before;	/* placement follows views from now on */
		}
		if (i + 1 < nviews) {
			route_queue_publish_placement(r);	/* each in turn */
			before = view_signature(r);
		}
	}
	if (view_signature(r) != before)
		route_queue_publish_placement(r);
}

/* ---- handshake ---- */

static void link_mac(const struct route *r, const uint8_t *nonce_first, const uint8_t *nonce_second,
		     const char *from, const char *to, uint8_t out[LINK_MAC_LEN])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, r->cfg.key, ROUTE_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)MAC_LABEL, sizeof(MAC_LABEL));
	crypto_auth_hmacsha256_update(&st, nonce_first, LINK_NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, nonce_second, LINK_NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)from, strlen(from) + 1);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)to, strlen(to) + 1);
	crypto_auth_hmacsha256_final(&st, out);
}

static void send_hello(struct route *r, struct link *lk)
{
	uint8_t buf[LINK_FRAME_HDR + 1 + LINK_NONCE_LEN + 4 + 2 * LINK_NAME_MAX];
	size_t n;

	randombytes_buf(lk->nonce, sizeof(lk->nonce));
	n = link_encode_hello(buf, sizeof(buf), lk->nonce, r->cfg.cluster_name,
			      strlen(r->cfg.cluster_name), r->cfg.node_name, strlen(r->cfg.node_name));
	route_link_write(r, NULL, lk->c, buf, n);
}

static bool on_hello(struct route *r, struct link *lk, const struct link_frame *f)
{
	struct link_hello h;
	int rc = link_decode_hello(f, &h);
	uint8_t mac[LINK_MAC_LEN];
	uint8_t buf[LINK_FRAME_HDR + LINK_MAC_LEN];
	int idx;

	if (rc == LINK_ERR_VERSION) {
		link_close(r, lk, "the peer speaks another link version");
		return false;
	}
	if (rc || lk->got_hello) {
		link_close(r, lk, "malformed or repeated HELLO");
		return false;
	}
	if (h.cluster_len != strlen(r->cfg.cluster_name) ||
	    memcmp(h.cluster, r->cfg.cluster_name, h.cluster_len)) {
		link_close(r, lk, "the peer belongs to another cluster");
		return false;
	}
	if (h.node_len == strlen(r->cfg.node_name) && !memcmp(h.node, r->cfg.node_name, h.node_len)) {
		link_close(r, lk, "the peer has our own node name");
		return false;
	}
	idx = lk->peer >= 0 ? lk->peer : peer_slot(r, h.node, h.node_len);
	if (idx < 0) {
		link_close(r, lk, "no room for another peer");
		return false;
	}
	if (lk->peer >= 0 && (h.node_len != strlen(r->peers[idx].name) ||
			      memcmp(h.node, r->peers[idx].name, h.node_len))) {
		link_close(r, lk, "the peer answered with another node's name");
		return false;
	}
	if (lk->c->kind == ROUTE_KIND_IN && we_dial(r, &r->peers[idx])) {
		link_close(r, lk, "the peer dialled, but the lower name dials");
		return false;
	}
	lk->peer = idx;
	lk->got_hello = true;
	memcpy(lk->peer_nonce, h.nonce, LINK_NONCE_LEN);
	link_mac(r, lk->peer_nonce, lk->nonce, r->cfg.node_name, r->peers[idx].name, mac);
	route_link_write(r, NULL, lk->c, buf, link_encode_auth(buf, sizeof(buf), mac));
	return true;
}

struct full_interest {
	struct route *r;
	struct peer *p;
};

static void send_full_interest(void *arg, bool pattern, const char *name, size_t len)
{
	struct full_interest *fi = arg;

	send_interest(fi->r, fi->p, pattern, name, len, true);
}

static void log_link_up(const struct net_conn *c, const struct peer *p)
{
	const char *tls = net_conn_tls_version(c);
	const char *cert = net_conn_tls_peer_name(c);

	hd_log_info("route: link to %s up (%s%s%s%s%s)", p->name,
		    c->kind == ROUTE_KIND_OUT ? "dialled" : "accepted", tls ? ", " : "",
		    tls ? tls : "", cert ? ", certificate CN=" : tls ? ", certificate not checked" : "",
		    cert ? cert : "");
}

static bool on_auth(struct route *r, struct link *lk, const struct link_frame *f)
{
	const uint8_t *mac;
	uint8_t want[LINK_MAC_LEN];
	struct peer *p;

	if (!lk->got_hello || link_decode_auth(f, &mac)) {
		link_close(r, lk, "AUTH out of order or malformed");
		return false;
	}
	p = &r->peers[lk->peer];
	link_mac(r, lk->nonce, lk->peer_nonce, p->name, r->cfg.node_name, want);
	if (sodium_memcmp(mac, want, LINK_MAC_LEN)) {
		link_close(r, lk, "the peer could not prove the cluster key (different --gossip-key?)");
		return false;
	}
	if (p->conn && p->conn != lk->c) {
		/* the peer restarted, or both ends raced: the newest proven link wins */
		struct link *old = p->conn->user;

		p->conn = NULL;
		old->peer = -1;
		net_conn_close(&r->loop, old->c);
		peer_link_down(r, lk->peer);
	}
	dial_stop(p);
	lk->authed = true;
	p->conn = lk->c;
	if (p->leaving) {	/* it came back (a restart): it may own queues again */
		p->leaving = false;
		route_queue_publish_placement(r);
	}
	p->state = PEER_UP;
	p->backoff_ms = 0;
	p->next_dial_ms = 0;
	p->link_gen++;
	log_link_up(lk->c, p);
	/* everything this node wants, as ADDs; the peer's ACKs hold back receipts meanwhile */
	interest_each(&r->local, ~0ull, send_full_interest, &(struct full_interest){ r, p });
	route_queue_link_up(r, lk->peer);
	return true;
}

/* ---- link input ---- */

static bool on_interest(struct route *r, struct link *lk, const struct link_frame *f)
{
	struct link_interest in;
	struct peer *p = &r->peers[lk->peer];
	uint64_t before, after;
	bool pattern;

	if (link_decode_interest(f, &in) || in.name_len == 0) {
		link_close(r, lk, "malformed INTEREST");
		return false;
	}
	pattern = in.kind == LINK_PATTERN;
	if (!pattern && !destname_key_is_topic(in.name, in.name_len)) {
		link_close(r, lk, "INTEREST in a name that is not a topic");
		return false;
	}
	/* a peer says ADD and DEL once per name: its column counts 0 or 1, whatever it repeats */
	if (in.op == LINK_ADD && interest_has(&r->remote, pattern, in.name, in.name_len, (uint32_t)lk->peer)) {
		after = before = 1;
	} else {
		after = interest_apply(&r->remote, pattern, in.name, in.name_len,
				       (uint32_t)lk->peer, in.op == LINK_ADD ? 1 : -1, &before);
	}
	if (!before && after)
		broadcast_interest(r, pattern, in.name, in.name_len, true);
	else if (before && !after)
		broadcast_interest(r, pattern, in.name, in.name_len, false);
	p->seq_in = in.seq;
	p->ack_due = true;
	return true;
}

static bool on_ack(struct route *r, struct link *lk, const struct link_frame *f)
{
	uint32_t seq;

	if (link_decode_ack(f, &seq)) {
		link_close(r, lk, "malformed ACK");
		return false;
	}
	r->peers[lk->peer].seq_acked = seq;
	check_syncs(r);
	return true;
}

struct hmsg *route_message_from_link(struct route *r, const struct link_message *lm)
{
	struct hmsg *m = hmsg_create((uint16_t)r->endpoint, (const char *)lm->bytes, lm->dest_len,
				     lm->bytes_len - lm->dest_len - 1);

	memcpy(m->bytes, lm->bytes, lm->bytes_len);
	m->flags = lm->flags;
	m->tail_off = lm->tail_off;
	m->tail_len = lm->tail_len;
	m->msgid_off = lm->msgid_off;
	m->msgid_len = lm->msgid_len;
	m->body_len = lm->body_len;
	m->tail10_off = lm->tail10_off;
	m->tail10_len = lm->tail10_len;
	m->tail11_off = lm->tail11_off;
	m->tail11_len = lm->tail11_len;
	return m;
}

static bool on_message(struct route *r, struct link *lk, const struct link_frame *f)
{
	struct link_message lm;
	struct peer *p = &r->peers[lk->peer];
	struct hmsg *m;
	uint64_t mask;

	if (link_decode_message(f, &lm) || !destname_key_is_topic((const char *)lm.bytes, lm.dest_len)) {
		link_close(r, lk, "malformed MESSAGE");
		return false;
	}
	p->msgs_in++;
	mask = interest_match(&r->local, (const char *)lm.bytes, lm.dest_len);
	if (!mask)
		return true;	/* the last subscriber left while it crossed */
	m = route_message_from_link(r, &lm);
	/* delivered here only: a message from a link is never forwarded again */
	hmsg_ref(m, (uint32_t)__builtin_popcountll(mask));
	for (uint32_t s = 0; mask; s++, mask >>= 1) {
		if (mask & 1) {
			struct xmsg d = { .kind = XMSG_TOPIC_DELIVER, .ptr = m };

			route_send_to_shard(r, s, &d);
		}
	}
	hmsg_unref(m);
	return true;
}

/* Starts a SYNC round through every shard; when all have answered, the peer's ACK goes out
 * (idx -1: the graceful leave learns every shard moved its queues out). */
static void start_ack_round(struct route *r, int idx)
{
	struct ack_round *ar = hd_calloc(1, sizeof(*ar));

	ar->id = ++r->next_round;
	ar->remaining = r->nshards;
	ar->peer = idx;
	if (idx >= 0) {
		ar->link_gen = r->peers[idx].link_gen;
		ar->seq = r->peers[idx].seq_in;
		r->peers[idx].ack_due = false;
	}
	if (r->rounds_tail)
		r->rounds_tail->next = ar;
	else
		r->rounds_head = ar;
	r->rounds_tail = ar;
	for (uint32_t s = 0; s < r->nshards; s++) {
		struct xmsg m = { .kind = XMSG_SYNC, .a = ar->id, .u32 = 0 };

		route_send_to_shard(r, s, &m);
	}
}

static void on_shard_done(struct route *r, const struct xmsg *m)
{
	struct ack_round *ar = r->rounds_head;

	/* shards answer in ring order, and rounds start in order: the head is the oldest */
	for (; ar && ar->id != m->a; ar = ar->next)
		;
	if (!ar || --ar->remaining)
		return;
	while (r->rounds_head && !r->rounds_head->remaining) {
		struct ack_round *done = r->rounds_head;
		struct peer *p = &r->peers[done->peer < 0 ? 0 : done->peer];

		r->rounds_head = done->next;
		if (!r->rounds_head)
			r->rounds_tail = NULL;
		if (done->peer < 0) {
			r->leave_synced = true;	/* every shard moved its queues out */
		} else if (p->state == PEER_UP && p->link_gen == done->link_gen) {
			uint8_t buf[LINK_FRAME_HDR + 4];

			route_link_write(r, p, p->conn, buf, link_encode_ack(buf, sizeof(buf), done->seq));
		}
		hd_free(done);
	}
}

/* A peer said BYE: its queues are ours to place elsewhere now, and what it held follows. */
static void peer_leaving(struct route *r, int idx)
{
	struct peer *p = &r->peers[idx];

	if (p->leaving)
		return;
	hd_log_info("route: %s is leaving; its queues move to the other nodes", p->name);
	p->leaving = true;
	route_queue_publish_placement(r);
}

/* A TLS record (handshake 0x16 or alert 0x15, version 3.x) where a plaintext HELLO (which
 * starts with a zero length byte) should be: the peer runs --route-tls, we do not. */
static bool speaks_tls(const char *buf, size_t len)
{
	return len >= 2 && (buf[0] == 0x16 || buf[0] == 0x15) && buf[1] == 0x03;
}

static size_t on_link_data(void *ctx, struct net_conn *c, const char *buf, size_t len)
{
	struct route *r = ctx;
	struct link *lk = c->user;
	const uint32_t max_body = r->cfg.max_frame_bytes + LINK_MAX_SLACK;
	size_t off = 0;

	r->now_ms = r->loop.now_ms;
	while (off < len) {
		struct link_frame f;
		long n = link_frame_next((const uint8_t *)buf + off, len - off, max_body, &f);
		bool ok;

		if (n == 0)
			break;
		if (n < 0 && !lk->got_hello && speaks_tls(buf + off, len - off)) {
			link_close(r, lk, "the peer speaks TLS: --route-tls is on there and off here "
					  "(every node must agree)");
			return len;
		}
		if (n < 0) {
			link_close(r, lk, n == LINK_ERR_TOO_BIG ? "frame too big" : "malformed frame");
			return len;
		}
		off += (size_t)n;
		if (lk->peer >= 0 && lk->authed)
			r->peers[lk->peer].bytes_in += (uint64_t)n;
		if (!lk->authed) {
			if (f.type == LINK_HELLO)
				ok = on_hello(r, lk, &f);
			else if (f.type == LINK_AUTH)
				ok = on_auth(r, lk, &f);
			else {
				link_close(r, lk, "data before the handshake finished");
				ok = false;
			}
		} else if (f.type == LINK_MESSAGE) {
			ok = on_message(r, lk, &f);
		} else if (f.type == LINK_INTEREST) {
			ok = on_interest(r, lk, &f);
		} else if (f.type == LINK_ACK) {
			ok = on_ack(r, lk, &f);
		} else if (f.type == LINK_BYE) {
			ok = !link_decode_bye(&f);
			if (ok)
				peer_leaving(r, lk->peer);
			else
				link_close(r, lk, "malformed BYE");
		} else if (f.type == LINK_QUEUE) {
			ok = route_queue_from_link(r, lk->peer, &f);
			if (!ok)
				link_close(r, lk, "malformed QUEUE frame");
		} else {
			link_close(r, lk, "unknown frame type");
			ok = false;
		}
		if (!ok)
			return len;
	}
	if (lk->authed && r->peers[lk->peer].ack_due)
		start_ack_round(r, lk->peer);
	return off;
}

static void on_link_accept(void *ctx, struct net_conn *c)
{
	struct route *r = ctx;
	struct link *lk = hd_calloc(1, sizeof(*lk));

	lk->r = r;
	lk->c = c;
	lk->peer = c->kind == ROUTE_KIND_OUT ? r->adopting : -1;
	lk->deadline_ms = r->loop.now_ms + HANDSHAKE_MS;
	c->user = lk;
	send_hello(r, lk);
}

static void on_link_close(void *ctx, struct net_conn *c)
{
	struct route *r = ctx;
	struct link *lk = c->user;

	if (lk && lk->peer >= 0) {
		struct peer *p = &r->peers[lk->peer];

		/* a TLS peer closes a plaintext dial without a word (net/tls.c logs it there);
		 * over TLS our own net/tls.c has said why already */
		if (c->kind == ROUTE_KIND_OUT && !lk->got_hello && c->peer_closed && !r->cfg.tls_ctx)
			hd_log_warn("route: link %s closed by the peer before its HELLO (does it run "
				    "--route-tls? every node must agree)", p->name);
		if (p->conn == c)
			peer_link_down(r, lk->peer);
		else if (c->kind == ROUTE_KIND_OUT && p->state == PEER_CONNECTING && !p->conn)
			peer_link_down(r, lk->peer);	/* a dial that failed its handshake */
	}
	hd_free(lk);
	c->user = NULL;
}

static void on_link_wake(void *ctx)
{
	(void)ctx;
}

static const struct net_callbacks link_callbacks = {
	.on_accept = on_link_accept,
	.on_data = on_link_data,
	.on_close = on_link_close,
	.on_wake = on_link_wake,
};

/* ---- from the shards ---- */

static void on_shard_interest(struct route *r, const struct xmsg *m, bool pattern)
{
	struct xname *n = m->ptr;
	uint64_t before;
	uint64_t after = interest_apply(&r->local, pattern, n->name, n->len, m->from,
					m->u32 ? 1 : -1, &before);

	if (!before && after)
		send_interest_all(r, pattern, n->name, n->len, true);
	else if (before && !after)
		send_interest_all(r, pattern, n->name, n->len, false);
	hd_free(n);
}

static void on_shard_deliver(struct route *r, const struct xmsg *m)
{
	struct hmsg *msg = m->ptr;
	uint64_t mask = interest_match(&r->remote, hmsg_dest(msg), msg->dest_len);

	for (int i = 0; mask; i++, mask >>= 1)
		if ((mask & 1) && r->peers[i].state == PEER_UP)
			send_message(r, &r->peers[i], msg);
	hmsg_unref(msg);
}

static void dispatch(struct route *r, const struct xmsg *m)
{
	if (route_queue_from_shard(r, m))
		return;
	switch (m->kind) {
	case XMSG_TOPIC_INTEREST:
		on_shard_interest(r, m, false);
		break;
	case XMSG_PATTERN_INTEREST:
		on_shard_interest(r, m, true);
		break;
	case XMSG_TOPIC_DELIVER:
		on_shard_deliver(r, m);
		break;
	case XMSG_SYNC:
		on_shard_sync(r, m);
		break;
	case XMSG_DONE:
		on_shard_done(r, m);
		break;
	default:
		xmsg_drop(m);	/* nothing else is addressed to the route; never leak it */
		break;
	}
}

/* True while some link is too full to take more: leave the shards' work in their rings. */
static bool links_full(struct route *r)
{
	bool full = false;

	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		struct peer *p = &r->peers[i];

		if (p->state != PEER_UP || p->conn->out_bytes <= LINK_HIGH_WATER) {
			p->full_since_ms = 0;
			continue;
		}
		if (!p->full_since_ms)
			p->full_since_ms = r->now_ms;
		if (r->now_ms - p->full_since_ms > LINK_STALL_MS) {
			hd_log_warn("route: link to %s stayed over %u MiB unsent for %d s: dropping it "
				    "(its topic messages in flight are lost) and re-syncing",
				    p->name, LINK_HIGH_WATER >> 20, LINK_STALL_MS / 1000);
			link_close(r, p->conn->user, NULL);
			continue;
		}
		full = true;
	}
	return full || route_queue_backlogged(r);
}

static uint32_t drain_shards(struct route *r)
{
	struct xmsg batch[DRAIN_BATCH];
	uint32_t total = 0;

	for (uint32_t from = 0; from < r->nshards; from++) {
		uint32_t taken = 0;
		uint32_t n;

		while (taken < DRAIN_BUDGET && (n = xring_pop(r->in[from], batch, DRAIN_BATCH))) {
			for (uint32_t i = 0; i < n; i++)
				dispatch(r, &batch[i]);
			taken += n;
		}
		total += taken;
	}
	return total;
}

static void handshake_timeouts(struct route *r)
{
	for (uint32_t i = 0; i < r->loop.nconns_cap; i++) {
		struct net_conn *c = r->loop.conns[i];
		struct link *lk = c && c->state == NET_CONN_OPEN ? c->user : NULL;

		if (lk && !lk->authed && r->now_ms > lk->deadline_ms)
			link_close(r, lk, "no handshake within 5 s");
	}
}

static void publish_stats(struct route *r)
{
	pthread_mutex_lock(&r->mu);
	r->npublished = 0;
	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		const struct peer *p = &r->peers[i];
		struct published_link *pl;

		if (!p->used)
			continue;
		pl = &r->published[r->npublished++];
		memcpy(pl->name, p->name, sizeof(pl->name));
		pl->node_hash = p->node_hash;
		pl->st = (struct route_link_stats){ .state = state_names[p->state],
						     .msgs_out = p->msgs_out, .bytes_out = p->bytes_out,
						     .msgs_in = p->msgs_in, .bytes_in = p->bytes_in };
	}
	pthread_mutex_unlock(&r->mu);
}

static bool inbound_pending(struct route *r)
{
	for (uint32_t i = 0; i < r->nshards; i++)
		if (xring_has_items(r->in[i]))
			return true;
	return false;
}

static bool any_dialling(const struct route *r)
{
	for (int i = 0; i < ROUTE_MAX_PEERS; i++)
		if (r->peers[i].dial_fd >= 0 || r->peers[i].probe_fd >= 0 ||
		    r->peers[i].probe_again_ms || r->peers[i].next_dial_ms)
			return true;
	return false;
}

static bool any_peer_in_view(const struct route *r)
{
	for (int i = 0; i < ROUTE_MAX_PEERS; i++)
		if (r->peers[i].used && r->peers[i].alive && r->peers[i].port && !r->peers[i].leaving)
			return true;
	return false;
}

/* The graceful leave, step by step: a placement without us (the shards move every queue
 * out), a SYNC round (they have), then every hand-over on the wire. */
static void leave_step(struct route *r)
{
	int want = atomic_load_explicit(&r->leave, memory_order_acquire);

	if (want != LEAVE_ASKED)
		return;
	if (!r->leaving) {
		r->leaving = true;
		if (!any_peer_in_view(r)) {
			atomic_store_explicit(&r->leave, LEAVE_DONE, memory_order_release);
			return;
		}
		/* peers first stop counting us as an owner, then get what we held, in order on
		 * the same links */
		for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
			uint8_t bye[LINK_FRAME_HDR];

			if (r->peers[i].state == PEER_UP)
				route_link_write(r, &r->peers[i], r->peers[i].conn, bye,
						 link_encode_bye(bye, sizeof(bye)));
		}
		route_queue_publish_placement(r);
		start_ack_round(r, -1);
		return;
	}
	if (!r->leave_synced || r->nparked || route_queue_outboxed(r))
		return;
	for (int i = 0; i < ROUTE_MAX_PEERS; i++)
		if (r->peers[i].state == PEER_UP && r->peers[i].conn->out_bytes)
			return;
	atomic_store_explicit(&r->leave, LEAVE_DONE, memory_order_release);
}

/* Certificates a SIGHUP reloaded: links made from now on use them. */
static void take_tls_ctx(struct route *r)
{
	struct net_tls_ctx *ctx;

	pthread_mutex_lock(&r->mu);
	ctx = r->tls_pending;
	r->tls_pending = NULL;
	pthread_mutex_unlock(&r->mu);
	if (!ctx)
		return;
	net_loop_set_tls_ctx(&r->loop, ctx);
	net_tls_ctx_unref(ctx);	/* the loop holds its own */
}

static void *route_main(void *arg)
{
	struct route *r = arg;
	uint64_t last_stats = 0, last_slow = 0;

	hd_alloc_bind_thread_arena();
	r->now_ms = hd_now_ms();
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint32_t timeout = any_dialling(r) || r->nparked || r->leaving ? 10 : 200;
		bool full;

		net_loop_flush(&r->loop);
		publish_outbound(r);
		full = links_full(r);
		xwake_sleep(&r->wake);
		if (!full && inbound_pending(r))
			timeout = 0;
		net_loop_run_once(&r->loop, full ? 5 : timeout);
		xwake_awake(&r->wake);
		r->now_ms = hd_now_ms();
		take_updates(r);
		take_tls_ctx(r);
		if (!links_full(r))
			drain_shards(r);
		dials_step(r);
		leave_step(r);
		if (r->now_ms - last_stats >= STATS_EVERY_MS) {
			last_stats = r->now_ms;
			handshake_timeouts(r);
			publish_stats(r);
		}
		if (r->now_ms - last_slow >= 1000) {
			last_slow = r->now_ms;
			net_loop_reap_lingering(&r->loop);
		}
	}
	for (uint32_t i = 0; i < r->loop.nconns_cap; i++) {
		struct net_conn *c = r->loop.conns[i];

		/* a freed slot reads as OPEN (zeroed) but has no user */
		if (c && c->user && c->state == NET_CONN_OPEN)
			net_conn_close(&r->loop, c);
	}
	for (int i = 0; i < ROUTE_MAX_PEERS; i++) {
		dial_stop(&r->peers[i]);
		probe_stop(&r->peers[i]);
	}
	publish_outbound(r);
	return NULL;
}

/* ---- lifecycle and the cluster thread's calls ---- */

int route_create(struct route **out, const struct route_config *cfg)
{
	struct route *r = hd_calloc(1, sizeof(*r));
	int efd;
	int fd;

	r->cfg = *cfg;
	r->listen_fd = -1;
	r->adopting = -1;
	for (int i = 0; i < ROUTE_MAX_PEERS; i++)
		r->peers[i].dial_fd = r->peers[i].probe_fd = -1;
	pthread_mutex_init(&r->mu, NULL);
	fd = net_listen_open(cfg->bind_addr, cfg->port, 256, &r->port);
	if (fd < 0) {
		hd_log_err("cannot listen for routes on %s:%u: %s", cfg->bind_addr, cfg->port,
			   strerror(-fd));
		net_tls_ctx_unref(cfg->tls_ctx);
		pthread_mutex_destroy(&r->mu);
		hd_free(r);
		return fd;
	}
	r->listen_fd = fd;
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		int err = -errno;

		close(fd);
		net_tls_ctx_unref(cfg->tls_ctx);
		pthread_mutex_destroy(&r->mu);
		hd_free(r);
		return err;
	}
	xwake_init(&r->wake, efd);
	hd_log_info("listening proto=route addr=%s:%u%s", cfg->bind_addr, r->port,
		    cfg->tls_ctx ? " tls" : "");
	*out = r;
	return 0;
}

uint16_t route_port(const struct route *r)
{
	return r->port;
}

struct xwake *route_xwake(struct route *r)
{
	return &r->wake;
}

void route_attach(struct route *r, struct shard **shards, uint32_t nshards)
{
	r->nshards = nshards;
	r->endpoint = nshards;
	r->in = hd_calloc(nshards, sizeof(*r->in));
	r->out = hd_calloc(nshards, sizeof(*r->out));
	r->parked = hd_calloc(nshards, sizeof(*r->parked));
	for (uint32_t i = 0; i < nshards; i++)
		shard_route_rings(shards[i], &r->in[i], &r->out[i]);
	interest_table_init(&r->local, nshards);
	interest_table_init(&r->remote, ROUTE_MAX_PEERS);
	route_queue_init(r);
}

struct start_wait {
	struct route *r;
	sem_t done;
	int err;
};

static void *route_thread(void *arg)
{
	struct start_wait *sw = arg;
	struct route *r = sw->r;
	struct net_loop_config lc = {
		.io = (enum net_io)r->cfg.io_backend,
		.ring_entries = 1024,
		/* big receive buffers: each hands the shards a bigger batch of a link's messages,
		 * so their deliveries gather into fewer sendmsg calls (publisher on A, 100
		 * subscribers on B: 1.19x -> 1.08x one node's CPU per delivery, quiet box) */
		.buf_count = 64,
		.buf_size = 65536,
		.max_rx_partial = r->cfg.max_frame_bytes + 2 * LINK_MAX_SLACK,
	};
	int err = net_loop_init(&r->loop, &lc, &link_callbacks, r);

	/* the loop is made on its own thread (io_uring's single issuer) */
	if (!err)
		err = net_loop_watch_eventfd(&r->loop, r->wake.eventfd);
	if (!err && r->cfg.tls_ctx) {
		net_loop_set_tls_ctx(&r->loop, r->cfg.tls_ctx);
		err = net_loop_add_tls_listener(&r->loop, r->listen_fd, ROUTE_KIND_IN);
	} else if (!err) {
		err = net_loop_add_listener(&r->loop, r->listen_fd, ROUTE_KIND_IN);
	}
	if (!err)
		r->listen_fd = -1;	/* the loop closes it now */
	sw->err = err;
	sem_post(&sw->done);
	if (err)
		return NULL;
	return route_main(r);
}

int route_start(struct route *r, const char *node_name)
{
	struct start_wait sw = { .r = r };
	int rc;

	snprintf(r->cfg.node_name, sizeof(r->cfg.node_name), "%s", node_name);
	r->self_hash = placement_node_hash(node_name, strlen(node_name));
	sem_init(&sw.done, 0, 0);
	rc = pthread_create(&r->thread, NULL, route_thread, &sw);
	if (rc)
		return -rc;
	while (sem_wait(&sw.done) && errno == EINTR)
		;
	sem_destroy(&sw.done);
	if (sw.err) {
		pthread_join(r->thread, NULL);
		r->thread = 0;
		hd_log_err("route: cannot start its loop: %s", strerror(-sw.err));
		return sw.err;
	}
	pthread_setname_np(r->thread, "route");
	return 0;
}

void route_stop_and_destroy(struct route *r)
{
	uint64_t one = 1;
	struct xmsg m;

	if (!r)
		return;
	if (r->thread) {
		atomic_store_explicit(&r->stop, true, memory_order_relaxed);
		if (write(r->wake.eventfd, &one, sizeof(one)) < 0)
			hd_log_warn("route: cannot wake the route thread");
		pthread_join(r->thread, NULL);
		net_loop_fini(&r->loop);
	}
	/* what the shards sent that was never taken */
	for (uint32_t i = 0; i < r->nshards; i++) {
		while (xring_pop(r->in[i], &m, 1))
			xmsg_drop(&m);
		for (; r->parked[i].n; r->parked[i].n--) {
			xmsg_drop(&r->parked[i].q[r->parked[i].head]);
			r->parked[i].head = (r->parked[i].head + 1) % r->parked[i].cap;
		}
		hd_free(r->parked[i].q);
	}
	while (r->syncs) {
		struct pending_sync *ps = r->syncs;

		r->syncs = ps->next;
		hd_free(ps);
	}
	while (r->rounds_head) {
		struct ack_round *ar = r->rounds_head;

		r->rounds_head = ar->next;
		hd_free(ar);
	}
	if (r->nshards) {
		interest_table_fini(&r->local);
		interest_table_fini(&r->remote);
		route_queue_fini(r);
	}
	if (r->listen_fd >= 0)
		close(r->listen_fd);
	close(r->wake.eventfd);
	pthread_mutex_destroy(&r->mu);
	hd_free(r->in);
	hd_free(r->out);
	hd_free(r->parked);
	net_tls_ctx_unref(r->cfg.tls_ctx);
	net_tls_ctx_unref(r->tls_pending);
	sodium_memzero(r->cfg.key, sizeof(r->cfg.key));
	hd_free(r);
}

bool route_hand_over(struct route *r, uint32_t timeout_ms)
{
	uint64_t one = 1;
	uint64_t deadline = hd_now_ms() + timeout_ms;

	atomic_store_explicit(&r->leave, LEAVE_ASKED, memory_order_release);
	if (write(r->wake.eventfd, &one, sizeof(one)) < 0)
		hd_log_warn("route: cannot wake the route thread");
	while (atomic_load_explicit(&r->leave, memory_order_acquire) != LEAVE_DONE) {
		if (hd_now_ms() > deadline)
			return false;
		usleep(10000);
	}
	return true;
}

void route_set_probe_hook(struct route *r, route_probe_fn fn, void *arg)
{
	pthread_mutex_lock(&r->mu);
	r->on_probe = fn;
	r->on_probe_arg = arg;
	pthread_mutex_unlock(&r->mu);
}

void route_view(struct route *r, const struct route_view *v)
{
	uint64_t one = 1;

	pthread_mutex_lock(&r->mu);
	if (r->nviews_pending == ROUTE_VIEWS_PENDING) {
		/* far behind (never seen): the oldest goes, the newest must be placed */
		memmove(r->views_pending, r->views_pending + 1,
			(ROUTE_VIEWS_PENDING - 1) * sizeof(r->views_pending[0]));
		r->nviews_pending--;
	}
	r->views_pending[r->nviews_pending++] = *v;
	pthread_mutex_unlock(&r->mu);
	if (write(r->wake.eventfd, &one, sizeof(one)) < 0)
		hd_log_warn("route: cannot wake the route thread");
}

void route_set_tls_ctx(struct route *r, struct net_tls_ctx *ctx)
{
	uint64_t one = 1;
	struct net_tls_ctx *old;

	pthread_mutex_lock(&r->mu);
	old = r->tls_pending;
	r->tls_pending = ctx;
	pthread_mutex_unlock(&r->mu);
	net_tls_ctx_unref(old);
	if (write(r->wake.eventfd, &one, sizeof(one)) < 0)
		hd_log_warn("route: cannot wake the route thread");
}

void route_member(struct route *r, const char *name, const char *host, uint16_t port, bool alive)
{
	uint64_t one = 1;
	struct member_update *u;

	pthread_mutex_lock(&r->mu);
	if (r->nupdates == MAX_UPDATES) {
		/* the route thread is far behind: the oldest news is superseded by gossip anyway */
		memmove(r->updates, r->updates + 1, (MAX_UPDATES - 1) * sizeof(r->updates[0]));
		r->nupdates--;
	}
	u = &r->updates[r->nupdates++];
	snprintf(u->name, sizeof(u->name), "%s", name);
	snprintf(u->host, sizeof(u->host), "%s", host);
	u->port = port;
	u->alive = alive;
	pthread_mutex_unlock(&r->mu);
	if (write(r->wake.eventfd, &one, sizeof(one)) < 0)
		hd_log_warn("route: cannot wake the route thread");
}

bool route_peer_name(struct route *r, uint64_t node_hash, char *out, size_t cap)
{
	bool found = false;

	pthread_mutex_lock(&r->mu);
	for (uint32_t i = 0; i < r->npublished && !found; i++) {
		if (r->published[i].node_hash == node_hash) {
			snprintf(out, cap, "%s", r->published[i].name);
			found = true;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return found;
}

bool route_link_stats(struct route *r, const char *name, struct route_link_stats *out)
{
	bool found = false;

	pthread_mutex_lock(&r->mu);
	for (uint32_t i = 0; i < r->npublished && !found; i++) {
		if (!strcmp(r->published[i].name, name)) {
			*out = r->published[i].st;
			found = true;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return found;
}
