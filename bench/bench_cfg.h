/*
 * bench/bench_cfg.h - herald-bench's command line: the workload, the server URLs (one, or
 * for a cluster the publishers' node and the subscribers' nodes), the topology
 * (publishers, subscribers, users, connections), pacing and reporting options.
 * Parsed once by main before any worker starts; read-only afterwards (workers and child
 * processes only read it).
 */
#ifndef BENCH_CFG_H
#define BENCH_CFG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum bench_workload {
	BENCH_FANOUT = 0,	/* P publishers -> one topic -> S subscribers, saturating */
	BENCH_QUEUES,		/* P producers -> /queue/user-<i> -> U consumers, saturating */
	BENCH_LATENCY,		/* like fanout, at a fixed publish rate */
	BENCH_CONNECTIONS,	/* C idle connections, each subscribed to its own queue */
	BENCH_RAW_SERVER,	/* not a workload: the raw-ceiling relay (bench_raw.c) */
};

enum bench_ack { BENCH_ACK_AUTO = 0, BENCH_ACK_CLIENT_INDIVIDUAL };

#define BENCH_SUB_URLS_MAX 16		/* --sub-url: nodes the subscribers are spread over */
#define BENCH_SERVER_PIDS_MAX 16	/* --server-pid: processes whose CPU is summed */

/* One server address connections are made to (from a --url, --pub-url or --sub-url). */
struct bench_target {
	char host[64];
	unsigned port;
	char path[128];			/* ws:// only */
	struct sockaddr_in addr;
};

struct bench_cfg {
	enum bench_workload workload;
	const char *url;		/* the default for publishers and subscribers */
	const char *pub_url;		/* --pub-url: publishers' server, NULL: url */
	const char *sub_urls;		/* --sub-url: comma-separated, NULL: url */
	bool ws;			/* ws:// (STOMP over WebSocket), else stomp:// (TCP) */
	bool nats;			/* nats:// (NATS client protocol, bench_nats.h) */
	bool ws_binary;			/* send binary frames instead of text (stomp.js: text) */
	bool tls;			/* --tls: every connection runs TLS (bench_tls.h) */
	const char *tls_ca;		/* --tls-ca: verify the server against it; NULL: don't */
	struct bench_target pub_target;
	struct bench_target sub_targets[BENCH_SUB_URLS_MAX];	/* round-robin by subscriber */
	uint32_t nsub_targets;
	const char *login;
	const char *passcode;
	const char *vhost;
	/* topology */
	uint32_t publishers;		/* fanout/latency publishers, queues producers */
	uint32_t subscribers;		/* fanout/latency subscribers */
	uint32_t users;			/* queues: one consumer per /queue/user-<i> */
	uint32_t connections;		/* connections workload */
	const char *topic;		/* fanout/latency destination */
	const char *queue_prefix;	/* queues: destination prefix, "/queue/user-" */
	const char *queue_file;		/* --queue-file: destinations one a line, instead of
					 * queue_prefix<i> (e.g. queues one node owns) */
	char **queue_names;		/* its lines, read once by bench_cfg_parse */
	uint32_t nqueue_names;
	enum bench_ack ack;
	bool receipts;			/* queues: every SEND asks for a RECEIPT */
	uint32_t prefetch;		/* prefetch-count on SUBSCRIBE, 0: none sent */
	/* pacing */
	uint32_t body;			/* bytes per message body, >= BENCH_BODY_MIN */
	double duration_s;		/* publishing time (ignored when count is set) */
	uint64_t count;			/* messages per publisher, 0: use duration */
	double warmup_s;		/* messages sent before this are not measured */
	double settle_s;		/* pause between set-up and publishing (cluster interest) */
	double rate;			/* latency (and queues when > 0): messages/s over all
					 * publishers, on a fixed schedule instead of the window */
	uint32_t window;		/* saturating: deliveries in flight, all publishers */
	uint32_t batch;			/* frames per publisher per loop pass */
	double hold_s;			/* connections: time to hold them open */
	/* processes and threads */
	uint32_t threads;		/* worker threads per process */
	uint32_t procs;			/* worker processes, 0: as many as conns_per_proc needs */
	uint32_t conns_per_proc;
	uint32_t conns_per_addr;	/* then the next source address 127.0.0.<n+1> */
	uint32_t connect_concurrency;	/* handshakes in progress over all workers */
	double setup_timeout_s;
	double drain_timeout_s;
	/* reporting */
	pid_t server_pid;		/* first of server_pids; 0: no server CPU/RSS figures */
	pid_t server_pids[BENCH_SERVER_PIDS_MAX];	/* CPU and RSS are their sums */
	uint32_t nserver_pids;
	const char *json_path;		/* NULL: none; "-": stdout instead of the table */
	const char *label;
	bool quiet;			/* no progress line */
	/* raw-server */
	const char *raw_bind;
	unsigned raw_port;
};

/* Smallest body: it carries "<publisher id:8 hex><seq:16 hex><scheduled send time ns:16 hex>
 * <write time ns:16 hex>" (the two times differ only when a paced publisher runs late). */
#define BENCH_BODY_MIN 56

/* Parses argv into cfg (defaults first, per workload). Returns 0, or -1 after printing
 * the reason (or the usage when asked with --help, then exit code 0 is the caller's). */
int bench_cfg_parse(struct bench_cfg *cfg, int argc, char **argv);

/* Connections of the workload: publishers first (global ids 0..P-1), then subscribers. */
uint32_t bench_cfg_npub(const struct bench_cfg *cfg);
uint32_t bench_cfg_nsub(const struct bench_cfg *cfg);
/* Deliveries each published message should cause (S for a topic, 1 for queues). */
uint32_t bench_cfg_fan(const struct bench_cfg *cfg);

const char *bench_workload_name(enum bench_workload w);

/* Does the workload publish on a fixed schedule (--rate): latency always, queues when
 * --rate was given; otherwise saturating, flow-controlled by --window. */
bool bench_cfg_paced(const struct bench_cfg *cfg);

/* Queue i's destination (queues and connections workloads): line i of --queue-file, or
 * --queue-prefix followed by i. Returns its length (snprintf's contract). */
int bench_cfg_queue_name(const struct bench_cfg *cfg, uint32_t i, char *out, size_t cap);

/* The server a connection goes to: publishers' (is_sub false) or subscriber idx's. */
const struct bench_target *bench_cfg_target(const struct bench_cfg *cfg, bool is_sub, uint32_t idx);

#endif
