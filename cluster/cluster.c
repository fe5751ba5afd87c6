/*
 * cluster/cluster.c - the cluster thread: gossip sockets, push-pull and admin connections,
 * and the clock that drive the swim state machine (swim.h).
 *
 * Owns: the UDP gossip socket, the TCP listener on the same port (push-pull), the admin
 * HTTP listener, up to MAX_CONNS non-blocking TCP connections, and the swim instance. Only
 * the cluster thread touches any of them after cluster_start returns; main talks to it
 * through `stopping` and an eventfd. Nothing here blocks: a slow peer or admin client costs
 * a connection slot, never a delayed ack (issue 6: data-plane load must not delay acks).
 *
 * One loop: poll (until swim's next deadline or 1 s), read every datagram, advance
 * connections, run due swim timers, retry joins, refresh our metadata. An admin request
 * whose credentials are being checked (argon2id, on the login hook's own thread) waits in
 * PH_LOGIN and is asked about again every LOGIN_POLL_MS: the loop never waits for a check.
 */
#include "cluster/cluster.h"

#include "cluster/admin.h"
#include "cluster/controller.h"
#include "cluster/meta.h"
#include "cluster/swim.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CONNS 32			/* push-pull and admin connections at once */
#define CONN_TIMEOUT_MS 5000		/* a whole push-pull or admin exchange */
#define ADMIN_REQ_MAX 8192		/* request head, bytes */
#define JOIN_RETRY_MS 2000		/* seeds unreachable: try again this often */
#define LOAD_SAMPLE_MS 1000		/* how often we read our own load */
#define LEAVE_WAIT_MS 3000		/* bound on spreading our LEFT */
#define UDP_BATCH 256			/* datagrams read per wake-up */
#define LOG_EVERY_MS 10000		/* rate limit of peer-caused warnings */
#define LOGIN_POLL_MS 5			/* how often a request waiting for its login asks */

enum conn_kind { CONN_PP_OUT, CONN_PP_IN, CONN_ADMIN };
enum conn_phase {
	PH_CONNECTING, PH_WRITING, PH_READING,
	PH_LOGIN,			/* ADMIN: its password is being checked elsewhere */
};

struct conn {
	int fd;				/* -1: free slot */
	enum conn_kind kind;
	enum conn_phase phase;
	bool join;			/* PP_OUT to a seed */
	bool close_after_write;		/* PP_IN, ADMIN: the answer ends the exchange */
	bool from_loopback;		/* ADMIN: the client's address is a loopback one */
	uint64_t deadline_ms;
	uint8_t *rbuf;
	size_t rlen;			/* bytes used */
	size_t rcap;			/* bytes owned */
	uint8_t *wbuf;
	size_t wlen;			/* bytes to write */
	size_t woff;			/* bytes written */
	char peer[64];
};

struct seed {
	char spec[128];			/* "host:port" as given */
	struct wire_addr addr;		/* resolved; family 0 until then */
};

struct cluster {
	struct cluster_config cfg;
	struct cluster_hooks hooks;
	struct swim *swim;
	int family;			/* AF_INET or AF_INET6, of every socket */
	int udp_fd;
	int tcp_fd;
	int admin_fd;
	bool admin_auth;		/* admin requests need an administrator's credentials */
	int wake_fd;			/* eventfd: main asks the thread to leave */
	pthread_t thread;
	/* Set by main before writing wake_fd; the thread reads it after waking. Relaxed
	 * is enough: the eventfd write/read pair orders them (and poll times out anyway). */
	atomic_bool stopping;
	atomic_bool not_ready;		/* draining: GET /ready answers 503 */
	struct conn conns[MAX_CONNS];
	struct seed seeds[CLUSTER_MAX_JOIN];
	int nseeds;
	bool joined;			/* a push-pull with a seed succeeded */
	uint64_t next_join_ms;
	uint64_t next_load_ms;
	uint64_t next_meta_ms;		/* earliest next metadata gossip */
	struct node_meta meta;		/* what we advertise; load part sampled */
	struct admin_auth auth;		/* sampled with the load; admin endpoint only */
	uint64_t last_warn_ms;
	uint64_t refutes_logged;	/* swim's refute count when we last logged one */
	uint64_t conflicts_logged;	/* swim's name-conflict count when we last logged */
	char gossip_str[80];		/* our gossip address, for logs */
	struct ctl *ctl;		/* the view through Raft (controller.h) */
};

/* ---- addresses ---- */

static void to_wire_addr(const struct sockaddr *sa, struct wire_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		out->family = 4;
		memcpy(out->ip, &in->sin_addr, 4);
		out->port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		out->family = 6;
		memcpy(out->ip, &in6->sin6_addr, 16);
		out->port = ntohs(in6->sin6_port);
	}
}

/* 127.0.0.0/8, ::1, or ::ffff:127.x.y.z. */
static bool wire_addr_is_loopback(const struct wire_addr *a)
{
	static const uint8_t v6_loopback[16] = { [15] = 1 };
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (a->family == 4)
		return a->ip[0] == 127;
	return !memcmp(a->ip, v6_loopback, 16) ||
	       (!memcmp(a->ip, v4_mapped, 12) && a->ip[12] == 127);
}

static socklen_t to_sockaddr(const struct wire_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, a->ip, 4);
		in->sin_port = htons(a->port);
		return sizeof(*in);
	}
	if (a->family == 6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, a->ip, 16);
		in6->sin6_port = htons(a->port);
		return sizeof(*in6);
	}
	return 0;
}

/* Parses a numeric address into *out with the given port. Returns 0 or -EINVAL. */
static int parse_ip(const char *host, uint16_t port, struct wire_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->port = port;
	if (inet_pton(AF_INET, host, out->ip) == 1) {
		out->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, out->ip) == 1) {
		out->family = 6;
		return 0;
	}
	return -EINVAL;
}

/* "host:port" or "[v6]:port" -> host and port. Returns 0 or -EINVAL. */
static int split_host_port(const char *spec, char *host, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(spec, ':');
	const char *h = spec;
	size_t hlen;
	char *end;
	unsigned long p;

	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - spec);
	if (h[0] == '[' && hlen >= 2 && colon[-1] == ']') {
		h++;
		hlen -= 2;
	}
	if (!hlen || hlen >= cap)
		return -EINVAL;
	p = strtoul(colon + 1, &end, 10);
	if (*end || !p || p > 65535)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/* Resolves a seed in our socket family. May block on DNS: only called from cluster_start
 * and, until the first join succeeds, from the join retry. */
static int resolve(struct cluster *c, const char *spec, struct wire_addr *out)
{
	struct addrinfo hints = { .ai_family = c->family, .ai_socktype = SOCK_DGRAM };
	struct addrinfo *res;
	char host[128];
	char port_str[8];
	uint16_t port;
	int rc;

	if (split_host_port(spec, host, sizeof(host), &port))
		return -EINVAL;
	snprintf(port_str, sizeof(port_str), "%u", port);
	rc = getaddrinfo(host, port_str, &hints, &res);
	if (rc)
		return -EHOSTUNREACH;
	to_wire_addr(res->ai_addr, out);
	freeaddrinfo(res);
	return 0;
}

static bool is_wildcard(const struct wire_addr *a)
{
	static const uint8_t zero[16];

	return !memcmp(a->ip, zero, a->family == 4 ? 4 : 16);
}

/* Where peers should send to us: the bind address, or for a wildcard bind the first
 * non-loopback interface address of our family (memberlist's GetPrivateIP), else loopback. */
static void pick_advertise(struct cluster *c, const struct wire_addr *bound, struct wire_addr *out)
{
	struct ifaddrs *ifs;

	*out = *bound;
	if (c->cfg.gossip_advertise[0]) {
		if (parse_ip(c->cfg.gossip_advertise, bound->port, out) == 0)
			return;
		hd_log_warn("cluster: gossip advertise address %s is not numeric; ignored",
			    c->cfg.gossip_advertise);
		*out = *bound;
	}
	if (!is_wildcard(bound))
		return;
	parse_ip(c->family == AF_INET ? "127.0.0.1" : "::1", bound->port, out);
	if (getifaddrs(&ifs))
		return;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		struct wire_addr a;

		if (!i->ifa_addr || i->ifa_addr->sa_family != c->family ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		to_wire_addr(i->ifa_addr, &a);
		a.port = bound->port;
		*out = a;
		break;
	}
	freeifaddrs(ifs);
}

/* ---- sockets ---- */

static int open_socket(int family, int type, const struct wire_addr *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(addr, &ss);
	int one = 1;
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err;

	if (fd < 0)
		return -errno;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) ||
	    (type == SOCK_STREAM && listen(fd, 128))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct wire_addr a;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return 0;
	to_wire_addr((struct sockaddr *)&ss, &a);
	return a.port;
}

/* UDP and TCP on one port; with port 0, retry until both get the same free port. */
static int open_gossip(struct cluster *c, struct wire_addr *addr)
{
	for (int tries = 0; tries < 32; tries++) {
		struct wire_addr a = *addr;

		c->udp_fd = open_socket(c->family, SOCK_DGRAM, &a);
		if (c->udp_fd < 0)
			return c->udp_fd;
		a.port = bound_port(c->udp_fd);
		c->tcp_fd = open_socket(c->family, SOCK_STREAM, &a);
		if (c->tcp_fd >= 0) {
			*addr = a;
			return 0;
		}
		close(c->udp_fd);
		c->udp_fd = -1;
		if (addr->port)
			return c->tcp_fd;	/* a fixed port is taken: say so */
	}
	return -EADDRINUSE;
}

/* ---- the gossip key ---- */

/* The key is SHA-256 of the file's contents (trailing whitespace trimmed), so any secret
 * of 16 bytes or more works, e.g. `head -c 32 /dev/urandom | base64 > gossip.key`. */
int cluster_load_key(const char *path, uint8_t key[WIRE_KEY_LEN])
{
	uint8_t buf[4096];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (!fstat(fd, &st) && (st.st_mode & 077))
		hd_log_warn("cluster: gossip key file %s is readable by others", path);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -EIO;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n < 16) {
		hd_log_err("cluster: gossip key file %s holds under 16 bytes", path);
		return -EINVAL;
	}
	crypto_hash_sha256(key, buf, (unsigned long long)n);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

/* ---- connections ---- */

static struct conn *conn_alloc(struct cluster *c, int fd, enum conn_kind kind, uint64_t now_ms)
{
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *k = &c->conns[i];

		if (k->fd >= 0)
			continue;
		memset(k, 0, sizeof(*k));
		k->fd = fd;
		k->kind = kind;
		k->deadline_ms = now_ms + CONN_TIMEOUT_MS;
		return k;
	}
	return NULL;
}

static void conn_close(struct conn *k)
{
	close(k->fd);
	if (k->rbuf)
		sodium_memzero(k->rbuf, k->rcap);	/* an admin request's credentials */
	hd_free(k->rbuf);
	hd_free(k->wbuf);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
}

/* Frames a swim state (u32 length + packet) as the bytes to write. */
static void conn_set_state(struct cluster *c, struct conn *k, bool join)
{
	uint8_t *state;
	size_t len = swim_encode_state(c->swim, join, &state);

	k->wbuf = hd_alloc(len + 4);
	k->wbuf[0] = (uint8_t)(len >> 24);
	k->wbuf[1] = (uint8_t)(len >> 16);
	k->wbuf[2] = (uint8_t)(len >> 8);
	k->wbuf[3] = (uint8_t)len;
	memcpy(k->wbuf + 4, state, len);
	hd_free(state);
	k->wlen = len + 4;
	k->woff = 0;
}

static bool rate_ok(struct cluster *c, uint64_t now_ms)
{
	if (now_ms - c->last_warn_ms < LOG_EVERY_MS && c->last_warn_ms)
		return false;
	c->last_warn_ms = now_ms;
	return true;
}

static void push_pull_start(struct cluster *c, const struct wire_addr *to, bool join,
			    uint64_t now_ms)
{
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(to, &ss);
	int fd = socket(c->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct conn *k;

	if (fd < 0)
		return;
	k = conn_alloc(c, fd, CONN_PP_OUT, now_ms);
	if (!k) {
		close(fd);
		return;
	}
	k->join = join;
	wire_addr_format(to, k->peer, sizeof(k->peer));
	if (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS) {
		hd_log_debug("cluster: push-pull to %s: %s", k->peer, strerror(errno));
		conn_close(k);
		return;
	}
	k->phase = PH_CONNECTING;
	conn_set_state(c, k, join);
}

static void io_push_pull(void *arg, const struct wire_addr *to)
{
	struct cluster *c = arg;

	push_pull_start(c, to, false, hd_now_ms());
}

/* Reads what is available; returns 1 at EOF, 0 to wait, negative on error or overflow. */
static int conn_read(struct conn *k, size_t limit)
{
	for (;;) {
		ssize_t n;

		if (k->rlen + 1 >= k->rcap) {
			if (k->rcap >= limit + 1)
				return -EMSGSIZE;
			k->rcap = k->rcap ? HD_MIN(k->rcap * 2, limit + 1) : 4096;
			k->rbuf = hd_realloc(k->rbuf, k->rcap);
		}
		n = recv(k->fd, k->rbuf + k->rlen, k->rcap - k->rlen - 1, 0);
		if (n > 0) {
			k->rlen += (size_t)n;
			k->rbuf[k->rlen] = 0;	/* admin requests are parsed as strings */
			continue;
		}
		if (n == 0)
			return 1;
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	}
}

/* A complete framed state in rbuf: its length, or 0 while incomplete. */
static size_t framed_len(const struct conn *k)
{
	size_t len;

	if (k->rlen < 4)
		return 0;
	len = (size_t)k->rbuf[0] << 24 | (size_t)k->rbuf[1] << 16 | (size_t)k->rbuf[2] << 8 |
	      k->rbuf[3];
	return k->rlen >= len + 4 ? len : 0;
}

static int merge(struct cluster *c, struct conn *k, size_t len, uint64_t now_ms)
{
	bool is_join = false;
	int rc = swim_merge_state(c->swim, now_ms, k->rbuf + 4, len, &is_join);

	if (rc < 0) {
		if (rate_ok(c, now_ms))
			hd_log_warn("cluster: push-pull with %s dropped: %s", k->peer,
				    wire_strerror(rc));
		return rc;
	}
	if (is_join)
		hd_log_info("cluster: %s joins through us", k->peer);
	if (k->join && !c->joined) {
		c->joined = true;
		hd_log_info("cluster: joined through %s (%zu members known)", k->peer,
			    swim_member_count(c->swim));
	}
	return 0;
}

static int conn_write(struct conn *k)
{
	while (k->woff < k->wlen) {
		ssize_t n = send(k->fd, k->wbuf + k->woff, k->wlen - k->woff, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		k->woff += (size_t)n;
	}
	return 1;
}

/* The login of an admin request: OK when none is needed (loopback without --admin-auth
 * always, /health, /ready). */
static enum admin_login admin_login(struct cluster *c, struct conn *k, uint64_t now_ms)
{
	const char *req = (const char *)k->rbuf;
	char buf[ADMIN_REQ_MAX];
	const char *user, *pass;
	size_t ulen, plen;
	enum admin_login v = ADMIN_LOGIN_DENIED;

	if (!c->admin_auth || admin_path_is_open(req, k->rlen))
		return ADMIN_LOGIN_OK;
	if (!admin_basic_credentials(req, k->rlen, buf, sizeof(buf), &user, &ulen, &pass, &plen))
		v = c->hooks.login.check(c->hooks.login.arg, user, ulen, pass, plen,
					 k->from_loopback, now_ms);
	sodium_memzero(buf, sizeof(buf));
	return v;
}

static void admin_answer(struct cluster *c, struct conn *k, uint64_t now_ms)
{
	struct admin_buf out = { 0 };
	enum admin_login login = admin_login(c, k, now_ms);
	char controller[4096];
	struct admin_local local = { .self_load = &c->meta, .auth = &c->auth,
				     .links = c->hooks.links.get ? &c->hooks.links : NULL,
				     .queues = c->hooks.queues, .queues_arg = c->hooks.queues_arg,
				     .metrics = c->hooks.metrics, .metrics_arg = c->hooks.metrics_arg,
				     .drain = c->hooks.drain, .drain_arg = c->hooks.drain_arg,
				     .conns = c->hooks.conns.list ? &c->hooks.conns : NULL,
				     .not_ready = atomic_load_explicit(&c->not_ready,
								       memory_order_relaxed) };
	int code;

	if (login == ADMIN_LOGIN_PENDING) {
		k->phase = PH_LOGIN;	/* run_once asks again until it is decided */
		return;
	}
	if (login != ADMIN_LOGIN_OK) {
		code = admin_respond_refused(login, &out);
	} else {
		if (c->ctl && ctl_status_json(c->ctl, controller, sizeof(controller)))
			local.controller_json = controller;
		code = admin_respond((const char *)k->rbuf, k->rlen, c->swim, now_ms,
				     c->cfg.cluster_name, &local, &out);
	}
	if ((code == 401 || code == 403) && rate_ok(c, now_ms))
		hd_log_warn("cluster: admin request from %s refused (%d)", k->peer, code);
	hd_log_debug("cluster: admin %s -> %d", k->peer, code);
	k->wbuf = (uint8_t *)out.ptr;	/* admin_buf memory is hd_alloc'd: conn_close frees */
	k->wlen = out.len;
	k->woff = 0;
	k->phase = PH_WRITING;
	k->close_after_write = true;
}

/* Advances one connection as far as it goes without blocking. Returns false to close it. */
static bool conn_step(struct cluster *c, struct conn *k, short revents, uint64_t now_ms)
{
	int rc;
	size_t len;

	if (k->phase == PH_LOGIN)
		return !(revents & (POLLERR | POLLHUP));	/* the client gave up waiting */
	if (k->phase == PH_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);

		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return true;
		if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el) || err)
			return false;
		k->phase = PH_WRITING;
	}
	if (k->phase == PH_WRITING) {
		rc = conn_write(k);
		if (rc <= 0)
			return rc == 0;
		if (k->close_after_write)
			return false;
		k->phase = PH_READING;
		return true;
	}
	if (k->kind == CONN_ADMIN) {
		rc = conn_read(k, ADMIN_REQ_MAX);
		if (rc < 0 || (rc == 1 && !strstr((char *)k->rbuf, "\r\n\r\n")))
			return false;
		if (k->rbuf && strstr((char *)k->rbuf, "\r\n\r\n"))
			admin_answer(c, k, now_ms);
		return k->phase == PH_WRITING ? conn_step(c, k, POLLOUT, now_ms) : true;
	}
	rc = conn_read(k, WIRE_TCP_MAX + 4);
	len = rc < 0 ? 0 : framed_len(k);
	if (!len)
		return rc == 0;
	if (merge(c, k, len, now_ms) || k->kind == CONN_PP_OUT)
		return false;
	conn_set_state(c, k, false);	/* answer an inbound push-pull with our state */
	k->phase = PH_WRITING;
	k->close_after_write = true;
	return conn_step(c, k, POLLOUT, now_ms);
}

static void accept_all(struct cluster *c, int lfd, enum conn_kind kind, uint64_t now_ms)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *k;
		struct wire_addr a;

		if (fd < 0)
			return;
		k = conn_alloc(c, fd, kind, now_ms);
		if (!k) {
			close(fd);	/* full: the peer retries later */
			continue;
		}
		to_wire_addr((struct sockaddr *)&ss, &a);
		wire_addr_format(&a, k->peer, sizeof(k->peer));
		k->from_loopback = wire_addr_is_loopback(&a);
		k->phase = PH_READING;
	}
}

/* ---- gossip I/O ---- */

static void io_send(void *arg, const struct wire_addr *to, const uint8_t *buf, size_t len)
{
	struct cluster *c = arg;
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(to, &ss);

	/* Best effort, like the network under it: a full socket buffer drops the datagram. */
	if (sl)
		(void)sendto(c->udp_fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl);
}

static void read_datagrams(struct cluster *c)
{
	uint8_t buf[WIRE_UDP_MAX + 64];

	for (int i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t n = recvfrom(c->udp_fd, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&ss, &sl);
		struct wire_addr from;
		uint64_t now_ms;
		int rc;

		if (n < 0)
			return;
		to_wire_addr((struct sockaddr *)&ss, &from);
		now_ms = hd_now_ms();
		rc = swim_on_packet(c->swim, now_ms, &from, buf, (size_t)n);
		if (rc < 0 && rate_ok(c, now_ms)) {
			char a[64];

			hd_log_warn("cluster: gossip packet from %s dropped: %s (further drops "
				    "counted, logged at most every %ds)",
				    wire_addr_format(&from, a, sizeof(a)), wire_strerror(rc),
				    LOG_EVERY_MS / 1000);
		}
	}
}

/* The node links follow membership: alive and suspect members keep theirs (suspicion is a
 * hint, not a verdict), dead and left ones lose it. */
static void tell_route(struct cluster *c, const struct swim_member *m)
{
	struct node_meta meta;
	char host[INET6_ADDRSTRLEN] = "";
	bool alive = m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT;

	meta_decode(m->meta, m->meta_len, &meta);
	inet_ntop(m->addr.family == 6 ? AF_INET6 : AF_INET, m->addr.ip, host, sizeof(host));
	if (c->hooks.member)
		c->hooks.member(c->hooks.member_arg, m->name, host, meta.route_port, alive);
	if (c->ctl)
		ctl_member(c->ctl, m->name, host, meta.raft_port, meta.raft_id, alive,
			   m->state == SWIM_SUSPECT);
}

static void on_member_change(void *arg, const struct swim_member *m, int old_state)
{
	struct cluster *c = arg;
	char a[64];

	if (m == swim_self(c->swim)) {
		/* Metadata refreshes raise the incarnation too: log only refutations. */
		if (swim_get_stats(c->swim)->refutes != c->refutes_logged) {
			c->refutes_logged = swim_get_stats(c->swim)->refutes;
			hd_log_info("cluster: refuted a suspicion of this node (incarnation %u)",
				    m->incarnation);
		}
		return;
	}
	tell_route(c, m);
	wire_addr_format(&m->addr, a, sizeof(a));
	if (old_state < 0)
		hd_log_info("cluster: member %s joined at %s", m->name, a);
	else if ((int)m->state != old_state)
		hd_log_info("cluster: member %s %s -> %s (incarnation %u)", m->name,
			    swim_state_name((enum swim_state)old_state), swim_state_name(m->state),
			    m->incarnation);
}

/* ---- joins and metadata ---- */

static void try_join(struct cluster *c, uint64_t now_ms)
{
	int tried = 0;

	if (c->next_join_ms && rate_ok(c, now_ms))
		hd_log_warn("cluster: no seed answered yet; retrying every %d ms", JOIN_RETRY_MS);
	c->next_join_ms = now_ms + JOIN_RETRY_MS;
	for (int i = 0; i < c->nseeds; i++) {
		struct seed *sd = &c->seeds[i];

		if (!sd->addr.family && resolve(c, sd->spec, &sd->addr))
			continue;
		if (wire_addr_eq(&sd->addr, &swim_self(c->swim)->addr))
			continue;	/* ourselves */
		push_pull_start(c, &sd->addr, true, now_ms);
		tried++;
	}
	if (!tried && c->nseeds == 1 && c->seeds[0].addr.family)
		c->joined = true;	/* our only seed is ourselves: we are the first node */
}

static void refresh_meta(struct cluster *c, uint64_t now_ms, bool force)
{
	struct cluster_load load = { 0 };
	struct node_meta gossiped;
	const struct swim_member *me = swim_self(c->swim);
	uint8_t buf[WIRE_META_MAX];
	size_t len;

	c->next_load_ms = now_ms + LOAD_SAMPLE_MS;
	if (c->hooks.load)
		c->hooks.load(c->hooks.load_arg, &load);
	c->meta.connections = load.connections;
	c->meta.subscriptions = load.subscriptions;
	c->meta.msgs_per_s = load.msgs_per_s;
	c->auth = load.auth;
	/* Each change costs a gossip to every node, so the interval grows with N. */
	if (!force && now_ms < c->next_meta_ms)
		return;
	meta_decode(me->meta, me->meta_len, &gossiped);
	if (!force && gossiped.connections == c->meta.connections &&
	    gossiped.subscriptions == c->meta.subscriptions &&
	    gossiped.msgs_per_s == c->meta.msgs_per_s)
		return;
	len = meta_encode(&c->meta, buf, sizeof(buf));
	swim_set_meta(c->swim, now_ms, buf, len);
	c->next_meta_ms = now_ms + HD_MAX(5000, 500 * (uint64_t)swim_num_live(c->swim));
}

/* ---- the thread ---- */

static int fill_pollfds(struct cluster *c, struct pollfd *pfd, int *slot_of)
{
	int n = 0;

	pfd[n++] = (struct pollfd){ .fd = c->wake_fd, .events = POLLIN };
	pfd[n++] = (struct pollfd){ .fd = c->udp_fd, .events = POLLIN };
	pfd[n++] = (struct pollfd){ .fd = c->tcp_fd, .events = POLLIN };
	pfd[n++] = (struct pollfd){ .fd = c->admin_fd, .events = POLLIN };
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *k = &c->conns[i];

		if (k->fd < 0)
			continue;
		slot_of[n] = i;
		pfd[n++] = (struct pollfd){
			.fd = k->fd,
			.events = k->phase == PH_READING ? POLLIN :
				  k->phase == PH_LOGIN ? 0 : POLLOUT,
		};
	}
	return n;
}

/* Admin requests whose login was being checked: answer those decided by now. */
static void admin_logins_again(struct cluster *c, uint64_t now_ms)
{
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *k = &c->conns[i];

		if (k->fd < 0 || k->phase != PH_LOGIN)
			continue;
		admin_answer(c, k, now_ms);
		if (k->phase == PH_WRITING && !conn_step(c, k, POLLOUT, now_ms))
			conn_close(k);
	}
}

static bool logins_waiting(const struct cluster *c)
{
	for (int i = 0; i < MAX_CONNS; i++)
		if (c->conns[i].fd >= 0 && c->conns[i].phase == PH_LOGIN)
			return true;
	return false;
}

static int poll_timeout(struct cluster *c, uint64_t now_ms)
{
	uint64_t next = swim_next_deadline_ms(c->swim);

	next = HD_MIN(next, now_ms + (logins_waiting(c) ? LOGIN_POLL_MS : 1000));
	return next > now_ms ? (int)(next - now_ms) : 0;
}

static void run_once(struct cluster *c, int timeout_ms)
{
	struct pollfd pfd[4 + MAX_CONNS];
	int slot_of[4 + MAX_CONNS];
	int n = fill_pollfds(c, pfd, slot_of);
	uint64_t now_ms;

	uint64_t drained;

	if (poll(pfd, (nfds_t)n, timeout_ms) < 0 && errno != EINTR)
		hd_log_warn("cluster: poll: %s", strerror(errno));
	if ((pfd[0].revents & POLLIN) && read(c->wake_fd, &drained, sizeof(drained)) < 0)
		hd_log_debug("cluster: eventfd read: %s", strerror(errno));
	if (pfd[1].revents & POLLIN)
		read_datagrams(c);
	now_ms = hd_now_ms();
	if (pfd[2].revents & POLLIN)
		accept_all(c, c->tcp_fd, CONN_PP_IN, now_ms);
	if (pfd[3].revents & POLLIN)
		accept_all(c, c->admin_fd, CONN_ADMIN, now_ms);
	for (int i = 4; i < n; i++) {
		struct conn *k = &c->conns[slot_of[i]];

		if (k->fd >= 0 && pfd[i].revents && !conn_step(c, k, pfd[i].revents, now_ms))
			conn_close(k);
	}
	admin_logins_again(c, now_ms);
	for (int i = 0; i < MAX_CONNS; i++)
		if (c->conns[i].fd >= 0 && now_ms >= c->conns[i].deadline_ms)
			conn_close(&c->conns[i]);
	swim_tick(c->swim, now_ms);
	if (swim_get_stats(c->swim)->conflicts != c->conflicts_logged && rate_ok(c, now_ms)) {
		/* two live nodes gossip one name: only the first is kept, the other is invisible */
		c->conflicts_logged = swim_get_stats(c->swim)->conflicts;
		hd_log_warn("cluster: another node claims the name of a live member (%" PRIu64
			    " conflicts so far); give every node its own --node-name",
			    c->conflicts_logged);
	}
}

static void *cluster_main(void *arg)
{
	struct cluster *c = arg;
	uint64_t now_ms;
	uint64_t leave_deadline_ms;

	hd_log_set_thread_shard(-1);
	while (!atomic_load_explicit(&c->stopping, memory_order_relaxed)) {
		now_ms = hd_now_ms();
		if (!c->joined && c->nseeds && now_ms >= c->next_join_ms)
			try_join(c, now_ms);
		if (now_ms >= c->next_load_ms)
			refresh_meta(c, now_ms, false);
		run_once(c, HD_MIN(poll_timeout(c, now_ms), (int)LOAD_SAMPLE_MS));
	}
	/* Graceful leave: tell peers, keep answering until it has spread (bounded). */
	now_ms = hd_now_ms();
	leave_deadline_ms = now_ms + LEAVE_WAIT_MS;
	swim_leave(c->swim, now_ms);
	while (!swim_leave_spread(c->swim) && (now_ms = hd_now_ms()) < leave_deadline_ms)
		run_once(c, (int)HD_MIN((uint64_t)poll_timeout(c, now_ms),
					leave_deadline_ms - now_ms));
	hd_log_info("cluster: left (%s)", swim_leave_spread(c->swim) ? "announced" :
		    "announcement timed out");
	return NULL;
}

/* ---- public ---- */

void cluster_config_defaults(struct cluster_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->cluster_name, sizeof(cfg->cluster_name), "herald");
	cfg->bind_addr[0] = '\0';	/* main chooses: loopback without a key */
	cfg->gossip_port = 7946;
	snprintf(cfg->admin_bind, sizeof(cfg->admin_bind), "127.0.0.1");
	cfg->admin_port = 15672;
	cfg->gossip_interval_ms = 1000;
}

static void fill_swim_config(const struct cluster *c, const struct wire_addr *adv,
			     const uint8_t *key, struct swim_config *sc)
{
	uint64_t seed;

	swim_config_defaults(sc);
	snprintf(sc->name, sizeof(sc->name), "%s", c->cfg.node_name);
	snprintf(sc->cluster, sizeof(sc->cluster), "%s", c->cfg.cluster_name);
	sc->addr = *adv;
	sc->meta_len = meta_encode(&c->meta, sc->meta, sizeof(sc->meta));
	if (key) {
		sc->has_key = true;
		memcpy(sc->key, key, WIRE_KEY_LEN);
	}
	/* Timing follows the period as memberlist's LAN profile: timeout 1/2, gossip 1/5. */
	sc->probe_interval_ms = c->cfg.gossip_interval_ms;
	sc->probe_timeout_ms = HD_MAX(1u, c->cfg.gossip_interval_ms / 2);
	sc->gossip_interval_ms = HD_MAX(1u, c->cfg.gossip_interval_ms / 5);
	sc->push_pull_interval_ms = 30 * c->cfg.gossip_interval_ms;
	sc->reconnect_interval_ms = 30 * c->cfg.gossip_interval_ms;
	sc->gossip_to_dead_ms = 30 * c->cfg.gossip_interval_ms;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = hd_now_ns() ^ (uint64_t)getpid();
	sc->seed = seed;
}

/* 127.0.0.0/8, ::1 (numeric, IPv6 maybe in brackets), or "localhost". */
static bool is_loopback(const char *host, size_t len)
{
	char buf[64];
	struct in_addr a;
	struct in6_addr a6;

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, host, len);
	buf[len] = '\0';
	if (!strcmp(buf, "localhost"))
		return true;
	if (inet_pton(AF_INET6, buf, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return inet_pton(AF_INET, buf, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static int refuse_exposure(const char *what, const char *where)
{
	hd_log_err("cluster: %s %s without a cluster key would let anyone who reaches it join "
		   "the cluster (and, once nodes forward messages, read them). Create a key once "
		   "with `heraldctl cluster keygen > cluster.key; chmod 600 cluster.key`, copy it to "
		   "every node and start each with --gossip-key cluster.key; or keep the cluster on "
		   "this machine (--gossip-bind 127.0.0.1, --join 127.0.0.1:PORT)", what, where);
	return -EPERM;
}

/* As RabbitMQ with its Erlang cookie: without a key, cluster traffic stays on loopback.
 * Binding gossip elsewhere, or joining another machine, needs the key. */
int cluster_check_exposure(const struct cluster_config *cfg)
{
	if (cfg->key_file[0])
		return 0;
	if (!is_loopback(cfg->bind_addr, strlen(cfg->bind_addr)))
		return refuse_exposure("gossip bound to", cfg->bind_addr);
	for (int i = 0; i < cfg->njoin; i++) {
		const char *colon = strrchr(cfg->join[i], ':');
		size_t hlen = colon ? (size_t)(colon - cfg->join[i]) : strlen(cfg->join[i]);

		if (!is_loopback(cfg->join[i], hlen))
			return refuse_exposure("joining", cfg->join[i]);
	}
	return 0;
}

static int check_config(const struct cluster_config *cfg)
{
	if (!cfg->node_name[0] || strlen(cfg->node_name) > WIRE_NAME_MAX) {
		hd_log_err("cluster: node name must be 1..%d bytes", WIRE_NAME_MAX);
		return -EINVAL;
	}
	for (const char *p = cfg->node_name; *p; p++) {
		if (*p < 0x21 || *p > 0x7e) {
			hd_log_err("cluster: node name %s: printable ASCII without spaces only",
				   cfg->node_name);
			return -EINVAL;
		}
	}
	if (strlen(cfg->cluster_name) > WIRE_CLUSTER_MAX || cfg->gossip_interval_ms < 10) {
		hd_log_err("cluster: cluster name over %d bytes or gossip interval under 10 ms",
			   WIRE_CLUSTER_MAX);
		return -EINVAL;
	}
	return cluster_check_exposure(cfg);
}

static int open_sockets(struct cluster *c, struct wire_addr *gossip)
{
	struct wire_addr admin;
	char a[80];
	int rc;

	rc = parse_ip(c->cfg.bind_addr, c->cfg.gossip_port, gossip);
	if (rc) {
		hd_log_err("cluster: gossip bind address %s is not numeric", c->cfg.bind_addr);
		return rc;
	}
	c->family = gossip->family == 4 ? AF_INET : AF_INET6;
	rc = open_gossip(c, gossip);
	if (rc) {
		hd_log_err("cluster: cannot bind gossip to %s:%u: %s", c->cfg.bind_addr,
			   c->cfg.gossip_port, strerror(-rc));
		return rc;
	}
	hd_log_info("listening proto=gossip addr=%s", wire_addr_format(gossip, a, sizeof(a)));
	rc = parse_ip(c->cfg.admin_bind, c->cfg.admin_port, &admin);
	if (rc) {
		hd_log_err("cluster: admin bind address %s is not numeric", c->cfg.admin_bind);
		return rc;
	}
	c->admin_fd = open_socket(admin.family == 4 ? AF_INET : AF_INET6, SOCK_STREAM, &admin);
	if (c->admin_fd < 0) {
		hd_log_err("cluster: cannot bind admin to %s:%u: %s", c->cfg.admin_bind,
			   c->cfg.admin_port, strerror(-c->admin_fd));
		return c->admin_fd;
	}
	admin.port = bound_port(c->admin_fd);
	c->meta.admin_port = admin.port;	/* heraldctl asks each member for its queues */
	hd_log_info("listening proto=admin addr=%s", wire_addr_format(&admin, a, sizeof(a)));
	/* off loopback, anyone who reaches the port could drain the node or list its
	 * clients: an administrator's credentials are needed there (docs/operations.md) */
	c->admin_auth = c->cfg.admin_auth_always || !wire_addr_is_loopback(&admin);
	if (c->admin_auth && !c->hooks.login.check) {
		hd_log_err("cluster: the admin endpoint needs credentials but has no way to check "
			   "them");
		return -EINVAL;
	}
	hd_log_info("admin endpoint: %s", c->admin_auth ?
		    "an administrator's credentials are required (HTTP Basic) except for "
		    "/health and /ready" : "open to loopback clients (--admin-auth always asks "
		    "them for credentials too)");
	return 0;
}

static void close_fds(struct cluster *c)
{
	int *fds[] = { &c->udp_fd, &c->tcp_fd, &c->admin_fd, &c->wake_fd };

	for (size_t i = 0; i < HD_ARRAY_LEN(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	for (int i = 0; i < MAX_CONNS; i++)
		if (c->conns[i].fd >= 0)
			conn_close(&c->conns[i]);
}

static void cluster_free(struct cluster *c)
{
	ctl_stop_and_destroy(c->ctl);
	close_fds(c);
	swim_destroy(c->swim);
	sodium_memzero(c, sizeof(*c));
	hd_free(c);
}

static void init_seeds(struct cluster *c)
{
	for (int i = 0; i < c->cfg.njoin && i < CLUSTER_MAX_JOIN; i++) {
		struct seed *sd = &c->seeds[c->nseeds++];

		snprintf(sd->spec, sizeof(sd->spec), "%s", c->cfg.join[i]);
		if (resolve(c, sd->spec, &sd->addr))
			hd_log_warn("cluster: cannot resolve seed %s yet; will retry", sd->spec);
	}
}

/* Whether this node's link to member `name` is up (struct admin_links *arg). */
static bool link_up(void *arg, const char *name)
{
	const struct admin_links *links = arg;
	struct admin_link l;

	return links->get(links->arg, name, &l) && !strcmp(l.state, "up");
}

/* The controller binds its Raft port next to gossip and proves the gossip key (keyless: a
 * key made of the cluster name, as node links do); the node started without seeds founds
 * the Raft group. */
static int start_controller(struct cluster *c, const struct wire_addr *adv, const uint8_t *key)
{
	struct ctl_config cc = { .port = c->cfg.raft_port, .founder = c->cfg.njoin == 0,
				 .on_view = c->hooks.view, .on_view_arg = c->hooks.view_arg,
				 .on_lease = c->hooks.lease, .on_lease_arg = c->hooks.lease_arg,
				 .is_linked = c->hooks.links.get ? link_up : NULL,
				 .is_linked_arg = &c->hooks.links };
	int rc;

	snprintf(cc.node_name, sizeof(cc.node_name), "%s", c->cfg.node_name);
	snprintf(cc.bind_addr, sizeof(cc.bind_addr), "%s", c->cfg.bind_addr);
	inet_ntop(adv->family == 6 ? AF_INET6 : AF_INET, adv->ip, cc.advertise_addr,
		  sizeof(cc.advertise_addr));
	if (key)
		memcpy(cc.key, key, sizeof(cc.key));
	else
		crypto_hash_sha256(cc.key, (const unsigned char *)c->cfg.cluster_name,
				   strlen(c->cfg.cluster_name));
	rc = ctl_start(&c->ctl, &cc);
	sodium_memzero(&cc, sizeof(cc));
	if (rc)
		return rc;
	c->meta.raft_port = ctl_port(c->ctl);
	c->meta.raft_id = ctl_raft_id(c->ctl);
	return 0;
}

int cluster_start(struct cluster **out, const struct cluster_config *cfg,
		  const struct cluster_hooks *hooks)
{
	struct cluster *c;
	struct wire_addr gossip;
	struct wire_addr adv;
	struct swim_config sc;
	uint8_t key[WIRE_KEY_LEN];
	struct swim_io io;
	int rc;

	rc = check_config(cfg);
	if (rc)
		return rc;
	if (sodium_init() < 0)
		return -ENOSYS;
	c = hd_calloc(1, sizeof(*c));
	c->cfg = *cfg;
	c->hooks = *hooks;
	c->udp_fd = c->tcp_fd = c->admin_fd = c->wake_fd = -1;
	for (int i = 0; i < MAX_CONNS; i++)
		c->conns[i].fd = -1;
	if (cfg->key_file[0]) {
		rc = cluster_load_key(cfg->key_file, key);
		if (rc) {
			hd_log_err("cluster: cannot use gossip key %s: %s", cfg->key_file,
				   strerror(-rc));
			goto err_free;
		}
	}
	rc = open_sockets(c, &gossip);
	if (rc)
		goto err_free;
	c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->wake_fd < 0) {
		rc = -errno;
		goto err_free;
	}
	pick_advertise(c, &gossip, &adv);
	wire_addr_format(&adv, c->gossip_str, sizeof(c->gossip_str));
	snprintf(c->meta.addr, sizeof(c->meta.addr), "%s", cfg->advertise_addr);
	c->meta.stomp_port = cfg->stomp_port;
	c->meta.ws_port = cfg->ws_port;
	c->meta.nshards = cfg->nshards;
	c->meta.route_port = cfg->route_port;
	rc = start_controller(c, &adv, cfg->key_file[0] ? key : NULL);
	if (rc)
		goto err_free;
	fill_swim_config(c, &adv, cfg->key_file[0] ? key : NULL, &sc);
	sodium_memzero(key, sizeof(key));
	io = (struct swim_io){
		.arg = c,
		.send = io_send,
		.push_pull = io_push_pull,
		.on_change = on_member_change,
	};
	c->swim = swim_create(&sc, &io, hd_now_ms());
	sodium_memzero(&sc, sizeof(sc));
	if (!c->swim) {
		rc = -EINVAL;
		goto err_free;
	}
	init_seeds(c);
	hd_log_info("cluster: node %s in cluster %s, gossip advertised as %s, %s, %d seed(s)",
		    cfg->node_name, cfg->cluster_name, c->gossip_str,
		    cfg->key_file[0] ? "authenticated" : "unauthenticated", c->nseeds);
	rc = pthread_create(&c->thread, NULL, cluster_main, c);
	if (rc) {
		rc = -rc;
		goto err_free;
	}
	pthread_setname_np(c->thread, "cluster");
	*out = c;
	return 0;

err_free:
	sodium_memzero(key, sizeof(key));
	cluster_free(c);
	return rc;
}

void cluster_member_probe(struct cluster *c, const char *name, bool gone)
{
	if (c && c->ctl)
		ctl_member_probe(c->ctl, name, gone);
}

void cluster_set_ready(struct cluster *c, bool ready)
{
	if (c)
		atomic_store_explicit(&c->not_ready, !ready, memory_order_relaxed);
}

void cluster_leave_and_destroy(struct cluster *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	atomic_store_explicit(&c->stopping, true, memory_order_relaxed);
	if (write(c->wake_fd, &one, sizeof(one)) < 0)
		hd_log_warn("cluster: cannot wake the cluster thread: %s", strerror(errno));
	pthread_join(c->thread, NULL);
	cluster_free(c);
}
