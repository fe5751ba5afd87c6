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

enum opt_kind { OPT_STR, OPT_U32, OPT_U64, OPT_DBL, OPT_FLAG, OPT_PID, OPT_ACK };

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t off;
	const char *help;
};

#define F(field) offsetof(struct bench_cfg, field)

static const struct opt opts[] = {
	{ "url", OPT_STR, F(url), "stomp://HOST:PORT or ws://HOST:PORT/PATH (stomp://127.0.0.1:61613)" },
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
	{ "ack", OPT_ACK, F(ack), "subscriptions' ack mode: auto or client-individual (auto)" },
	{ "prefetch", OPT_U32, F(prefetch), "prefetch-count on SUBSCRIBE (0: not sent)" },
	{ "body", OPT_U32, F(body), "bytes per message body, >= 56 (100)" },
	{ "duration", OPT_DBL, F(duration_s), "seconds of publishing after the warm-up (10)" },
	{ "count", OPT_U64, F(count), "messages per publisher (instead of --duration)" },
	{ "warmup", OPT_DBL, F(warmup_s), "seconds published but not measured (1)" },
	{ "rate", OPT_DBL, F(rate), "latency: messages/s over all publishers (1000)" },
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
	{ "server-pid", OPT_PID, F(server_pid), "server PID: CPU-seconds and RSS over the run" },
	{ "json", OPT_STR, F(json_path), "also write the result as JSON to FILE ('-': stdout only)" },
	{ "label", OPT_STR, F(label), "name for this run in the report (e.g. herald, rabbitmq)" },
	{ "quiet", OPT_FLAG, F(quiet), "no live progress line" },
	{ "ws-binary", OPT_FLAG, F(ws_binary), "ws://: send binary frames (default text, as stomp.js)" },
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
		   "raw-server:  a trivial relay with batched writes: the raw ceiling\n");
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
	c->rate = 1000;
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
		break;
	case BENCH_QUEUES:
		c->publishers = c->publishers ? c->publishers : 4;
		c->users = c->users ? c->users : 1000;
		break;
	case BENCH_CONNECTIONS:
		c->connections = c->connections ? c->connections : 1000;
		break;
	case BENCH_RAW_SERVER:
		break;
	}
}

static int parse_url(struct bench_cfg *c)
{
	const char *p;
	const char *colon;
	const char *slash;
	size_t hlen;

	if (!strncmp(c->url, "stomp://", 8)) {
		p = c->url + 8;
	} else if (!strncmp(c->url, "ws://", 5)) {
		p = c->url + 5;
		c->ws = true;
	} else {
		fprintf(stderr, "herald-bench: --url must start with stomp:// or ws://\n");
		return -1;
	}
	colon = strchr(p, ':');
	slash = strchr(p, '/');
	if (!colon || (slash && slash < colon) || colon == p) {
		fprintf(stderr, "herald-bench: --url needs HOST:PORT\n");
		return -1;
	}
	hlen = (size_t)(colon - p);
	if (hlen >= sizeof(c->host))
		return -1;
	memcpy(c->host, p, hlen);
	c->host[hlen] = 0;
	c->port = (unsigned)strtoul(colon + 1, NULL, 10);
	snprintf(c->path, sizeof(c->path), "%s", slash ? slash : "/ws");
	if (!strcmp(c->host, "localhost"))
		snprintf(c->host, sizeof(c->host), "127.0.0.1");
	c->server.sin_family = AF_INET;
	c->server.sin_port = htons((uint16_t)c->port);
	if (!c->port || inet_pton(AF_INET, c->host, &c->server.sin_addr) != 1) {
		fprintf(stderr, "herald-bench: --url: HOST must be an IPv4 address, PORT non-zero\n");
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
	case OPT_U32:
	case OPT_PID: {
		unsigned long x = strtoul(v, &end, 10);

		if (o->kind == OPT_PID)
			*(pid_t *)field = (pid_t)x;
		else
			*(uint32_t *)field = (uint32_t)x;
		return *end || errno || x > UINT32_MAX ? -1 : 0;
	}
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
	if (c->workload == BENCH_LATENCY && c->rate <= 0) {
		fprintf(stderr, "herald-bench: latency needs --rate > 0\n");
		return -1;
	}
	if (c->workload != BENCH_CONNECTIONS && (!c->publishers || !bench_cfg_nsub(c))) {
		fprintf(stderr, "herald-bench: need at least one publisher and one subscriber\n");
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
	workload_defaults(c);
	if (c->workload != BENCH_RAW_SERVER && parse_url(c))
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
