/*
 * bench/bench_cfg.c - herald-bench option table, defaults per workload, URL parsing.
 * An option table (name, kind, field, help) rather than a switch ladder: --help prints it.
 */
#include "bench/bench_cfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_kind { OPT_STR, OPT_U32, OPT_U64, OPT_DBL, OPT_FLAG, OPT_PIDS, OPT_ACK };

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t off;
	const char *help;
};

#define F(field) offsetof(struct bench_cfg, field)

static const struct opt opts[] = {
	{ "url", OPT_STR, F(url), "stomp://HOST:PORT, ws://HOST:PORT/PATH or nats://HOST:PORT (stomp://127.0.0.1:61613)" },
	{ "pub-url", OPT_STR, F(pub_url), "publishers' server, e.g. one node of a cluster (--url)" },
	{ "sub-url", OPT_STR, F(sub_urls), "subscribers' servers URL[,URL...], taken round-robin (--url)" },
	{ "login", OPT_STR, F(login), "CONNECT login (guest)" },
	{ "passcode", OPT_STR, F(passcode), "CONNECT passcode (guest)" },
	{ "vhost", OPT_STR, F(vhost), "CONNECT host header, the virtual host (/)" },
	{ "publishers", OPT_U32, F(publishers), "fanout/latency publishers (1); queues producers (4)" },
	{ "producers", OPT_U32, F(publishers), "same as --publishers" },
	{ "subscribers", OPT_U32, F(subscribers), "subscribers on the topic (fanout 100, latency 10)" },
	{ "users", OPT_U32, F(users), "queues: consumers, one per /queue/user-<i> (1000)" },
	{ "connections", OPT_U32, F(connections), "connections: connections to hold (1000)" },
	{ "topic", OPT_STR, F(topic), "fanout/latency destination (/topic/bench)" },
	{ "queue-prefix", OPT_STR, F(queue_prefix), "queues/connections: destination prefix (/queue/user-)" },
	{ "queue-file", OPT_STR, F(queue_file), "queues/connections: destinations one a line, user i gets line i (--users: all lines)" },
	{ "receipts", OPT_FLAG, F(receipts), "queues: every SEND asks for a RECEIPT; reports its latency (receipt_latency_us)" },
	{ "ack", OPT_ACK, F(ack), "subscriptions' ack mode: auto or client-individual (auto)" },
	{ "prefetch", OPT_U32, F(prefetch), "prefetch-count on SUBSCRIBE (0: not sent)" },
	{ "body", OPT_U32, F(body), "bytes per message body, >= 56 (100)" },
	{ "duration", OPT_DBL, F(duration_s), "seconds of publishing after the warm-up (10)" },
	{ "count", OPT_U64, F(count), "messages per publisher (instead of --duration)" },
	{ "warmup", OPT_DBL, F(warmup_s), "seconds published but not measured (1)" },
	{ "settle", OPT_DBL, F(settle_s), "seconds between set-up and publishing, for a cluster's interest to spread (0)" },
	{ "rate", OPT_DBL, F(rate), "latency: messages/s over all publishers (1000); queues: paced at this rate instead of --window (0: saturate)" },
	{ "window", OPT_U32, F(window), "saturating: deliveries published and not yet received (10000)" },
	{ "batch", OPT_U32, F(batch), "frames per publisher per loop pass (64)" },
	{ "hold", OPT_DBL, F(hold_s), "connections: seconds to hold them (2)" },
	{ "threads", OPT_U32, F(threads), "worker threads per process (2)" },
	{ "procs", OPT_U32, F(procs), "worker processes (0: enough for --conns-per-proc)" },
	{ "conns-per-proc", OPT_U32, F(conns_per_proc), "connections per worker process (18000)" },
	{ "conns-per-addr", OPT_U32, F(conns_per_addr), "connections per source address 127.0.0.n (2000)" },
	{ "connect-concurrency", OPT_U32, F(connect_concurrency), "handshakes in progress at once (256)" },
	{ "setup-timeout", OPT_DBL, F(setup_timeout_s), "seconds allowed for connecting and subscribing (120)" },
	{ "drain-timeout", OPT_DBL, F(drain_timeout_s), "seconds to wait for in-flight deliveries (10)" },
	{ "server-pid", OPT_PIDS, F(server_pids), "server PID[,PID...]: CPU-seconds and RSS over the run, summed" },
	{ "json", OPT_STR, F(json_path), "also write the result as JSON to FILE ('-': stdout only)" },
	{ "label", OPT_STR, F(label), "name for this run in the report (e.g. herald, rabbitmq)" },
	{ "quiet", OPT_FLAG, F(quiet), "no live progress line" },
	{ "ws-binary", OPT_FLAG, F(ws_binary), "ws://: send binary frames (default text, as stomp.js)" },
	{ "tls", OPT_FLAG, F(tls), "connect over TLS (stomp:// to a TLS port, ws:// as wss://)" },
	{ "tls-ca", OPT_STR, F(tls_ca), "--tls: PEM CA the server certificate must chain to (default: not verified)" },
	{ "bind", OPT_STR, F(raw_bind), "raw-server: address to listen on (127.0.0.1)" },
	{ "port", OPT_U32, F(raw_port), "raw-server: port (0: pick one)" },
};

static const char *const workload_names[] = {
	[BENCH_FANOUT] = "fanout",
	[BENCH_QUEUES] = "queues",
	[BENCH_LATENCY] = "latency",
	[BENCH_CONNECTIONS] = "connections",
	[BENCH_RAW_SERVER] = "raw-server",
};

const char *bench_workload_name(enum bench_workload w)
{
	return workload_names[w];
}

static void usage(FILE *f)
{
	fprintf(f, "usage: herald-bench fanout|queues|latency|connections [--OPTION VALUE ...]\n"
		   "       herald-bench raw-server [--bind ADDR] [--port N]\n\n");
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		fprintf(f, "  --%-20s %s\n", opts[i].name, opts[i].help);
	fprintf(f, "\nfanout:      P publishers -> --topic -> S subscribers, as fast as they keep up\n"
		   "queues:      P producers spread messages over U users' /queue/user-<i>\n"
		   "latency:     fanout at a fixed --rate; latency measured from each message's\n"
		   "             scheduled send time (no coordinated omission)\n"
		   "connections: C connections, each subscribed to its own queue, held --hold s\n"
		   "raw-server:  a trivial relay with batched writes: the raw ceiling\n"
		   "\nnats://: fanout, latency and connections over the NATS client protocol\n"
		   "(--topic is the subject), for nats-server side by side with Herald\n");
}

static void defaults(struct bench_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->url = "stomp://127.0.0.1:61613";
	c->login = "guest";
	c->passcode = "guest";
	c->vhost = "/";
	c->topic = "/topic/bench";
	c->queue_prefix = "/queue/user-";
	c->body = 100;
	c->duration_s = 10;
	c->warmup_s = 1;
	c->rate = -1;		/* not given: latency 1000, queues 0 (saturating) */
	c->window = 10000;
	c->batch = 64;
	c->hold_s = 2;
	c->threads = 2;
	c->conns_per_proc = 18000;
	c->conns_per_addr = 2000;	/* the kernel's port search slows as one address fills */
	c->connect_concurrency = 256;
	c->setup_timeout_s = 120;
	c->drain_timeout_s = 10;
	c->label = "";
	c->raw_bind = "127.0.0.1";
}

/* Topology defaults that depend on the workload; 0 means "not given". */
static void workload_defaults(struct bench_cfg *c)
{
	switch (c->workload) {
	case BENCH_FANOUT:
		c->publishers = c->publishers ? c->publishers : 1;
		c->subscribers = c->subscribers ? c->subscribers : 100;
		break;
	case BENCH_LATENCY:
		c->publishers = c->publishers ? c->publishers : 1;
		c->subscribers = c->subscribers ? c->subscribers : 10;
		c->rate = c->rate < 0 ? 1000 : c->rate;
		break;
	case BENCH_QUEUES:
		c->publishers = c->publishers ? c->publishers : 4;
		c->users = c->users ? c->users : c->nqueue_names ? c->nqueue_names : 1000;
		break;
	case BENCH_CONNECTIONS:
		c->connections = c->connections ? c->connections :
				 c->nqueue_names ? c->nqueue_names : 1000;
		break;
	case BENCH_RAW_SERVER:
		break;
	}
	c->rate = c->rate < 0 ? 0 : c->rate;
}

static const char *const schemes[] = { "stomp://", "ws://", "nats://" };

/* One URL, url[0..len), into t. Every URL of a run must have the same scheme: the first
 * one parsed sets c->ws / c->nats (*scheme < 0 until then). */
static int parse_url(struct bench_cfg *c, struct bench_target *t, const char *url, size_t len,
		     int *scheme)
{
	char buf[256];
	const char *p = NULL;
	const char *colon;
	const char *slash;
	size_t hlen;
	int k;

	if (len >= sizeof(buf))
		goto err_url;
	memcpy(buf, url, len);
	buf[len] = 0;
	for (k = 0; k < 3 && !p; k++)
		if (!strncmp(buf, schemes[k], strlen(schemes[k])))
			p = buf + strlen(schemes[k]);
	if (!p) {
		fprintf(stderr, "herald-bench: '%s': not stomp://, ws:// or nats://\n", buf);
		return -1;
	}
	if (*scheme >= 0 && *scheme != k - 1) {
		fprintf(stderr, "herald-bench: '%s': every URL of a run needs one scheme\n", buf);
		return -1;
	}
	*scheme = k - 1;
	c->ws = *scheme == 1;
	c->nats = *scheme == 2;
	colon = strchr(p, ':');
	slash = strchr(p, '/');
	if (!colon || (slash && slash < colon) || colon == p)
		goto err_url;
	hlen = (size_t)(colon - p);
	if (hlen >= sizeof(t->host))
		goto err_url;
	memcpy(t->host, p, hlen);
	t->host[hlen] = 0;
	t->port = (unsigned)strtoul(colon + 1, NULL, 10);
	snprintf(t->path, sizeof(t->path), "%s", slash ? slash : "/ws");
	if (!strcmp(t->host, "localhost"))
		snprintf(t->host, sizeof(t->host), "127.0.0.1");
	t->addr.sin_family = AF_INET;
	t->addr.sin_port = htons((uint16_t)t->port);
	if (!t->port || inet_pton(AF_INET, t->host, &t->addr.sin_addr) != 1)
		goto err_url;
	return 0;

err_url:
	fprintf(stderr, "herald-bench: bad URL '%.*s': needs SCHEME://IPV4:PORT (PORT non-zero)\n",
		(int)len, url);
	return -1;
}

/* --url, then --pub-url and --sub-url, which default to it. */
static int parse_urls(struct bench_cfg *c)
{
	const char *subs = c->sub_urls ? c->sub_urls : c->url;
	const char *pub = c->pub_url ? c->pub_url : c->url;
	int scheme = -1;

	if (parse_url(c, &c->pub_target, pub, strlen(pub), &scheme))
		return -1;
	c->nsub_targets = 0;
	for (const char *p = subs; *p;) {
		size_t len = strcspn(p, ",");

		if (c->nsub_targets == BENCH_SUB_URLS_MAX) {
			fprintf(stderr, "herald-bench: --sub-url takes at most %d URLs\n",
				BENCH_SUB_URLS_MAX);
			return -1;
		}
		if (parse_url(c, &c->sub_targets[c->nsub_targets++], p, len, &scheme))
			return -1;
		p += len + (p[len] == ',');
	}
	if (!c->nsub_targets) {
		fprintf(stderr, "herald-bench: --sub-url is empty\n");
		return -1;
	}
	return 0;
}

/* "PID[,PID...]" into c->server_pids; server_pid is the first. */
static int parse_pids(struct bench_cfg *c, const char *v)
{
	char *end;

	c->nserver_pids = 0;
	for (;;) {
		unsigned long x;

		errno = 0;
		x = strtoul(v, &end, 10);
		if (errno || end == v || !x || x > INT32_MAX ||
		    c->nserver_pids == BENCH_SERVER_PIDS_MAX)
			return -1;
		c->server_pids[c->nserver_pids++] = (pid_t)x;
		if (!*end)
			break;
		if (*end != ',')
			return -1;
		v = end + 1;
	}
	c->server_pid = c->server_pids[0];
	return 0;
}

/* --queue-file: every non-empty line a destination (trailing CR/LF stripped). */
static int read_queue_file(struct bench_cfg *c)
{
	FILE *f = fopen(c->queue_file, "r");
	uint32_t cap = 0;
	char line[512];

	if (!f) {
		fprintf(stderr, "herald-bench: %s: %s\n", c->queue_file, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\r\n");

		if (!len)
			continue;
		line[len] = 0;
		if (c->nqueue_names == cap) {
			cap = cap ? 2 * cap : 1024;
			c->queue_names = realloc(c->queue_names, cap * sizeof(*c->queue_names));
			if (!c->queue_names)
				abort();
		}
		c->queue_names[c->nqueue_names++] = strdup(line);
	}
	fclose(f);
	if (!c->nqueue_names) {
		fprintf(stderr, "herald-bench: %s: no destinations\n", c->queue_file);
		return -1;
	}
	return 0;
}

static int set_opt(struct bench_cfg *c, const struct opt *o, const char *v)
{
	char *end = NULL;
	void *field = (char *)c + o->off;

	errno = 0;
	switch (o->kind) {
	case OPT_STR:
		*(const char **)field = v;
		return 0;
	case OPT_U32: {
		unsigned long x = strtoul(v, &end, 10);

		*(uint32_t *)field = (uint32_t)x;
		return *end || errno || x > UINT32_MAX ? -1 : 0;
	}
	case OPT_PIDS:
		return parse_pids(c, v);
	case OPT_U64:
		*(uint64_t *)field = strtoull(v, &end, 10);
		return *end || errno ? -1 : 0;
	case OPT_DBL:
		*(double *)field = strtod(v, &end);
		return *end || errno || *(double *)field < 0 ? -1 : 0;
	case OPT_ACK:
		if (!strcmp(v, "auto"))
			*(enum bench_ack *)field = BENCH_ACK_AUTO;
		else if (!strcmp(v, "client-individual"))
			*(enum bench_ack *)field = BENCH_ACK_CLIENT_INDIVIDUAL;
		else
			return -1;
		return 0;
	case OPT_FLAG:
		return -1;
	}
	return -1;
}

static const struct opt *find_opt(const char *name)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (!strcmp(opts[i].name, name))
			return &opts[i];
	return NULL;
}

static int check(const struct bench_cfg *c)
{
	if (c->workload == BENCH_RAW_SERVER)
		return 0;
	if (c->body < BENCH_BODY_MIN || c->body > (1u << 20)) {
		fprintf(stderr, "herald-bench: --body must be %d..1048576\n", BENCH_BODY_MIN);
		return -1;
	}
	if (!c->threads || !c->window || !c->batch || !c->conns_per_proc || !c->conns_per_addr ||
	    !c->connect_concurrency) {
		fprintf(stderr, "herald-bench: --threads, --window, --batch, --conns-per-* and "
				"--connect-concurrency must be positive\n");
		return -1;
	}
	if (c->nqueue_names && bench_cfg_nsub(c) > c->nqueue_names &&
	    (c->workload == BENCH_QUEUES || c->workload == BENCH_CONNECTIONS)) {
		fprintf(stderr, "herald-bench: --queue-file has %u destinations for %u consumers\n",
			c->nqueue_names, bench_cfg_nsub(c));
		return -1;
	}
	if (c->workload == BENCH_LATENCY && c->rate <= 0) {
		fprintf(stderr, "herald-bench: latency needs --rate > 0\n");
		return -1;
	}
	if (c->workload != BENCH_CONNECTIONS && (!c->publishers || !bench_cfg_nsub(c))) {
		fprintf(stderr, "herald-bench: need at least one publisher and one subscriber\n");
		return -1;
	}
	/* NATS has no per-user queues with acks to compare (its queue groups share one
	 * subject); the topic workloads and idle connections map one to one */
	if (c->nats && (c->workload == BENCH_QUEUES || c->ack != BENCH_ACK_AUTO)) {
		fprintf(stderr, "herald-bench: nats:// runs fanout, latency or connections\n");
		return -1;
	}
	if (c->receipts && c->workload != BENCH_QUEUES) {
		fprintf(stderr, "herald-bench: --receipts is for the queues workload\n");
		return -1;
	}
	return 0;
}

int bench_cfg_parse(struct bench_cfg *c, int argc, char **argv)
{
	int i;

	defaults(c);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return -1;
	}
	for (i = 0; i < (int)(sizeof(workload_names) / sizeof(workload_names[0])); i++)
		if (!strcmp(argv[1], workload_names[i]))
			break;
	if (i == (int)(sizeof(workload_names) / sizeof(workload_names[0]))) {
		fprintf(stderr, "herald-bench: unknown workload '%s'\n", argv[1]);
		usage(stderr);
		return -1;
	}
	c->workload = (enum bench_workload)i;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		const struct opt *o = strncmp(a, "--", 2) ? NULL : find_opt(a + 2);

		if (!strcmp(a, "--help")) {
			usage(stdout);
			return -1;
		}
		if (!o) {
			fprintf(stderr, "herald-bench: unknown option '%s' (see --help)\n", a);
			return -1;
		}
		if (o->kind == OPT_FLAG) {
			*(bool *)((char *)c + o->off) = true;
			continue;
		}
		if (i + 1 >= argc || set_opt(c, o, argv[i + 1])) {
			fprintf(stderr, "herald-bench: bad value for --%s\n", o->name);
			return -1;
		}
		i++;
	}
	if (c->queue_file && read_queue_file(c))
		return -1;
	workload_defaults(c);
	if (c->workload != BENCH_RAW_SERVER && parse_urls(c))
		return -1;
	return check(c);
}

uint32_t bench_cfg_npub(const struct bench_cfg *c)
{
	return c->workload == BENCH_CONNECTIONS ? 0 : c->publishers;
}

uint32_t bench_cfg_nsub(const struct bench_cfg *c)
{
	switch (c->workload) {
	case BENCH_QUEUES:
		return c->users;
	case BENCH_CONNECTIONS:
		return c->connections;
	default:
		return c->subscribers;
	}
}

uint32_t bench_cfg_fan(const struct bench_cfg *c)
{
	return c->workload == BENCH_FANOUT || c->workload == BENCH_LATENCY ? c->subscribers : 1;
}

bool bench_cfg_paced(const struct bench_cfg *c)
{
	return c->workload == BENCH_LATENCY || (c->workload == BENCH_QUEUES && c->rate > 0);
}

int bench_cfg_queue_name(const struct bench_cfg *c, uint32_t i, char *out, size_t cap)
{
	if (c->nqueue_names)
		return snprintf(out, cap, "%s", c->queue_names[i % c->nqueue_names]);
	return snprintf(out, cap, "%s%u", c->queue_prefix, i);
}

const struct bench_target *bench_cfg_target(const struct bench_cfg *c, bool is_sub, uint32_t idx)
{
	return is_sub ? &c->sub_targets[idx % c->nsub_targets] : &c->pub_target;
}
