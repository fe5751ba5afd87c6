/*
 * bench/herald_bench.c - herald-bench: a STOMP load generator for Herald or any STOMP
 * broker (RabbitMQ included), over TCP or WebSocket, and for nats-server over the NATS
 * client protocol (bench_nats.h), to compare clusters. This file is the coordinator: it
 * forks the worker processes (enough to stay under the open-files limit), steps them
 * through the phases in bench_shared (set-up, run, stop and drain, done), samples the
 * servers' /proc (summed over every --server-pid: all nodes of a cluster), prints the live
 * progress line and the report.
 *
 *	herald-bench fanout --url stomp://127.0.0.1:61613 --subscribers 1000 --server-pid PID
 *	herald-bench fanout --pub-url stomp://127.0.0.1:A --sub-url stomp://127.0.0.1:B \
 *		--settle 1 --server-pid PID_A,PID_B	(cluster: publish on A, receive on B)
 *	herald-bench raw-server --port 0	(the raw ceiling; bench_raw.c)
 *
 * Every run is bounded: --setup-timeout, warm-up + --duration (or --count), then at most
 * --drain-timeout. Only the worker processes it forked are ever signalled.
 */
#include "bench/bench_cfg.h"
#include "bench/bench_raw.h"
#include "bench/bench_report.h"
#include "bench/bench_shared.h"
#include "bench/bench_tls.h"
#include "bench/bench_worker.h"
#include "core/base/hd_time.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_NS 10000000ull		/* coordinator's poll period: 10 ms */
#define DRAIN_IDLE_NS 2000000000ull	/* drain ends after 2 s without a delivery */
#define SETUP_STALL_NS 10000000000ull	/* set-up gives up after 10 s without progress */
#define CLOSE_WAIT_NS 5000000000ull	/* DISCONNECT receipts: at most 5 s */

struct coord {
	const struct bench_cfg *cfg;
	struct bench_shared *sh;
	struct bench_result *r;
	pid_t *kids;
	uint32_t nkids;
	uint32_t total;			/* connections */
	bool tty;
	uint64_t last_progress_ns;
	struct bench_sums last_sums;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted++;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void set_phase(struct coord *co, int phase)
{
	/* release: t_run_ns and t_measure_ns are visible to a worker that sees RUN */
	atomic_store_explicit(&co->sh->phase, phase, memory_order_release);
}

static int fork_workers(struct coord *co)
{
	const struct bench_cfg *cfg = co->cfg;

	fflush(NULL);
	for (uint32_t p = 0; p < co->nkids; p++) {
		uint32_t lo = (uint32_t)((uint64_t)p * co->total / co->nkids);
		uint32_t hi = (uint32_t)((uint64_t)(p + 1) * co->total / co->nkids);
		pid_t pid = fork();

		if (pid < 0) {
			perror("herald-bench: fork");
			return -1;
		}
		if (!pid) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);	/* never outlive the coordinator */
			signal(SIGINT, SIG_IGN);
			signal(SIGTERM, SIG_DFL);
			_exit(bench_worker_run_process(cfg, co->sh, p, lo, hi) ? 1 : 0);
		}
		co->kids[p] = pid;
	}
	return 0;
}

/* True while every worker process is alive. */
static bool kids_alive(struct coord *co)
{
	for (uint32_t p = 0; p < co->nkids; p++) {
		int st;

		if (co->kids[p] > 0 && waitpid(co->kids[p], &st, WNOHANG) == co->kids[p]) {
			co->kids[p] = -1;
			fprintf(stderr, "herald-bench: worker process %u exited early\n", p);
			return false;
		}
	}
	return true;
}

static void reap_kids(struct coord *co)
{
	for (uint32_t p = 0; p < co->nkids; p++)
		if (co->kids[p] > 0)
			waitpid(co->kids[p], NULL, 0);
}

/* The servers' CPU and RSS, summed over --server-pid's processes; ok only if all were read. */
static void sample_servers(const struct bench_cfg *cfg, struct bench_proc_sample *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < cfg->nserver_pids; i++) {
		struct bench_proc_sample one;

		bench_proc_sample(cfg->server_pids[i], &one);
		if (!one.ok) {
			out->ok = 0;
			return;
		}
		out->cpu_s += one.cpu_s;
		out->rss_bytes += one.rss_bytes;
		out->ok = 1;
	}
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) && errno == EINTR && !interrupted)
		;
}

/* The live line, once a second: rates since the last line, the server's CPU share. */
static void progress(struct coord *co, const char *what, uint64_t now, uint64_t t0)
{
	struct bench_sums s;
	double dt = (double)(now - co->last_progress_ns) / 1e9;
	static struct bench_proc_sample last;
	struct bench_proc_sample ps;

	if (co->cfg->quiet || now - co->last_progress_ns < 1000000000ull)
		return;
	bench_shared_sum(co->sh, &s);
	sample_servers(co->cfg, &ps);
	if (ps.ok && ps.rss_bytes > co->r->rss_peak)
		co->r->rss_peak = ps.rss_bytes;
	fprintf(stderr, "%s[%6.1fs] %-6s conn %llu/%u  pub %.0f/s  del %.0f/s  err %llu", co->tty ? "\r" : "",
		(double)(now - t0) / 1e9, what, (unsigned long long)s.ready, co->total,
		co->last_progress_ns ? (double)(s.published - co->last_sums.published) / dt : 0.0,
		co->last_progress_ns ? (double)(s.delivered - co->last_sums.delivered) / dt : 0.0,
		(unsigned long long)s.errors);
	if (ps.ok && last.ok && co->last_progress_ns)
		fprintf(stderr, "  server cpu %.0f%% rss %.1f MiB", 100.0 * (ps.cpu_s - last.cpu_s) / dt,
			(double)ps.rss_bytes / 1048576.0);
	fprintf(stderr, co->tty ? "   " : "\n");
	last = ps;
	co->last_sums = s;
	co->last_progress_ns = now;
}

static void end_progress(struct coord *co)
{
	if (co->tty && !co->cfg->quiet && co->last_progress_ns)
		fputc('\n', stderr);
}

/* Waits until every connection is set up; false on error, timeout, a stall or interrupt.
 * The connections workload instead settles for the connections the server took (a broker
 * may cap them below the open-files limit) and reports them as partial. */
static bool setup(struct coord *co, uint64_t t0)
{
	struct bench_result *r = co->r;
	bool settle = co->cfg->workload == BENCH_CONNECTIONS;
	uint64_t deadline = t0 + (uint64_t)(co->cfg->setup_timeout_s * 1e9);
	uint64_t last_change = t0;
	uint64_t last_done = 0;
	struct bench_sums s;

	for (;;) {
		uint64_t now = hd_now_ns();
		bool stalled;

		bench_shared_sum(co->sh, &s);
		progress(co, "setup", now, t0);
		if (s.ready == co->total)
			break;
		if (s.ready + s.errors != last_done) {
			last_done = s.ready + s.errors;
			last_change = now;
		}
		stalled = now > deadline || now - last_change > SETUP_STALL_NS;
		if (stalled)
			fprintf(stderr, "herald-bench: set-up %s (%llu of %u ready, %llu failed)\n",
				now > deadline ? "timed out" : "stalled", (unsigned long long)s.ready,
				co->total, (unsigned long long)s.errors);
		if (interrupted || !kids_alive(co) || (!settle && (s.errors || stalled))) {
			r->aborted = true;
			break;
		}
		if (settle && (stalled || s.ready + s.errors == co->total)) {
			r->partial = true;
			r->aborted = !s.ready;
			break;
		}
		sleep_ns(POLL_NS);
	}
	r->connected = s.connected;
	r->ready = s.ready;
	r->setup_s = s.last_ready_ns > t0 ? (double)(s.last_ready_ns - t0) / 1e9 : 0;
	r->connect_rate = s.last_connected_ns > t0 ? (double)s.connected * 1e9 / (double)(s.last_connected_ns - t0) : 0;
	r->ready_rate = r->setup_s > 0 ? (double)s.ready / r->setup_s : 0;
	return !r->aborted;
}

/* --settle: set-up is done on every node the tool talks to, but in a cluster a node may
 * learn of the other nodes' subscribers later; a message published before then would be
 * lost to them, and stay owed in the window for ever. */
static void settle(struct coord *co, uint64_t t0)
{
	uint64_t end = hd_now_ns() + (uint64_t)(co->cfg->settle_s * 1e9);

	while (hd_now_ns() < end && !interrupted && kids_alive(co)) {
		progress(co, "settle", hd_now_ns(), t0);
		sleep_ns(POLL_NS);
	}
}

/* Publishing: until warm-up + duration, or every publisher sent --count. */
static void run(struct coord *co, uint64_t t0, struct bench_proc_sample *s1, uint64_t *t_s1)
{
	const struct bench_cfg *cfg = co->cfg;
	uint64_t t_run = hd_now_ns();
	uint64_t warm = cfg->count ? 0 : (uint64_t)(cfg->warmup_s * 1e9);
	uint64_t t_measure = t_run + warm;
	uint64_t t_end = t_measure + (uint64_t)(cfg->duration_s * 1e9);
	uint64_t want = cfg->count * co->r->npub;

	atomic_store_explicit(&co->sh->t_run_ns, t_run, memory_order_relaxed);
	atomic_store_explicit(&co->sh->t_measure_ns, t_measure, memory_order_relaxed);
	set_phase(co, BENCH_PH_RUN);
	if (!warm) {
		sample_servers(cfg, s1);
		*t_s1 = hd_now_ns();
	}
	for (;;) {
		uint64_t now;
		struct bench_sums s;

		sleep_ns(POLL_NS);
		now = hd_now_ns();
		if (!*t_s1 && now >= t_measure) {
			sample_servers(cfg, s1);
			*t_s1 = now;
		}
		progress(co, "run", now, t0);
		bench_shared_sum(co->sh, &s);
		if (cfg->count ? s.published >= want : now >= t_end)
			break;
		if (interrupted || !kids_alive(co)) {
			co->r->aborted = !interrupted;
			break;
		}
	}
	if (!*t_s1) {
		sample_servers(cfg, s1);
		*t_s1 = hd_now_ns();
	}
	co->r->measured_s = (double)(hd_now_ns() - t_measure) / 1e9;
}

/* After the stop: until every expected delivery arrived, nothing arrived for 2 s, or the
 * drain timeout. */
static void drain(struct coord *co, uint64_t t0)
{
	uint64_t t_stop = hd_now_ns();
	uint64_t deadline = t_stop + (uint64_t)(co->cfg->drain_timeout_s * 1e9);
	uint64_t last_change = t_stop;
	uint64_t last_delivered = 0;

	set_phase(co, BENCH_PH_STOP);
	for (;;) {
		struct bench_sums s;
		uint64_t now = hd_now_ns();

		bench_shared_sum(co->sh, &s);
		if (s.delivered != last_delivered) {
			last_delivered = s.delivered;
			last_change = now;
		}
		/* the workers stored their last publishes before seeing STOP; a pass later the
		 * published total is final */
		if (now - t_stop > 2 * POLL_NS && s.delivered >= s.published * bench_cfg_fan(co->cfg))
			break;
		if (now > deadline || now - last_change > DRAIN_IDLE_NS || interrupted > 1 || !kids_alive(co))
			break;
		progress(co, "drain", now, t0);
		sleep_ns(POLL_NS / 10);
	}
	co->r->drain_s = (double)(last_change - t_stop) / 1e9;
}

/* DISCONNECT every session and wait (bounded) for the receipts, so the server has
 * processed every ACK: unacked messages would otherwise be requeued into the next run. */
static void close_sessions(struct coord *co)
{
	uint64_t end = hd_now_ns() + CLOSE_WAIT_NS;
	struct bench_sums s;

	set_phase(co, BENCH_PH_CLOSE);
	do {
		sleep_ns(POLL_NS);
		bench_shared_sum(co->sh, &s);
	} while (s.open && hd_now_ns() < end && kids_alive(co));
}

static void hold(struct coord *co, uint64_t t0)
{
	uint64_t end = hd_now_ns() + (uint64_t)(co->cfg->hold_s * 1e9);

	while (hd_now_ns() < end && !interrupted && kids_alive(co)) {
		progress(co, "hold", hd_now_ns(), t0);
		sleep_ns(POLL_NS);
	}
}

static void finish(struct coord *co)
{
	struct bench_result *r = co->r;
	struct bench_sums s;

	bench_shared_sum(co->sh, &s);
	r->published = s.published;
	r->delivered = s.delivered;
	r->m_published = s.m_published;
	r->m_delivered = s.m_delivered;
	r->order_errors = s.order_errors;
	r->acks = s.acks;
	r->receipts = s.receipts;
	r->errors = s.errors;
	r->stale = s.stale;
	r->expected = co->cfg->workload == BENCH_CONNECTIONS ? 0 : s.published * bench_cfg_fan(co->cfg);
	r->lost = r->expected > r->delivered ? r->expected - r->delivered : 0;
	r->extra = r->delivered > r->expected ? r->delivered - r->expected : 0;
	if (r->measured_s > 0) {
		r->pub_rate = (double)r->m_published / r->measured_s;
		r->del_rate = (double)r->m_delivered / r->measured_s;
	}
	bench_hist_init(&r->hist);
	bench_hist_init(&r->hist_sent);
	bench_hist_init(&r->hist_receipt);
	for (uint32_t i = 0; i < co->sh->nthreads; i++) {
		bench_hist_merge(&r->hist, &co->sh->t[i].hist);
		bench_hist_merge(&r->hist_sent, &co->sh->t[i].hist_sent);
		bench_hist_merge(&r->hist_receipt, &co->sh->t[i].hist_receipt);
	}
	r->first_error = bench_shared_first_error(co->sh);
}

static void server_figures(struct coord *co, const struct bench_proc_sample *s1, uint64_t t_s1,
			   const struct bench_proc_sample *s2, uint64_t t_s2)
{
	struct bench_result *r = co->r;

	if (!s1->ok || !s2->ok)
		return;
	r->have_server = true;
	r->server_cpu_s = s2->cpu_s - s1->cpu_s;
	r->server_wall_s = (double)(t_s2 - t_s1) / 1e9;
	r->rss_start = s1->rss_bytes;
	r->rss_end = s2->rss_bytes;
	r->rss_peak = HD_MAX(r->rss_peak, HD_MAX(s1->rss_bytes, s2->rss_bytes));
	if (r->server_cpu_s > 0 && r->m_delivered) {
		r->del_per_cpu_s = (double)r->m_delivered / r->server_cpu_s;
		r->cpu_s_per_million = r->server_cpu_s * 1e6 / (double)r->m_delivered;
	}
}

static void stamp_result(struct bench_result *r)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(r->date, sizeof(r->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	gethostname(r->host, sizeof(r->host) - 1);
}

static void report(const struct bench_result *r)
{
	const struct bench_cfg *cfg = r->cfg;

	if (cfg->json_path && !strcmp(cfg->json_path, "-")) {
		bench_report_json(r, stdout);
		return;
	}
	bench_report_table(r, stdout);
	if (cfg->json_path) {
		FILE *f = fopen(cfg->json_path, "w");

		if (!f) {
			fprintf(stderr, "herald-bench: %s: %s\n", cfg->json_path, strerror(errno));
			return;
		}
		bench_report_json(r, f);
		fclose(f);
	}
}

static int coordinate(const struct bench_cfg *cfg)
{
	struct bench_result res = { .cfg = cfg };
	struct coord co = { .cfg = cfg, .r = &res };
	struct bench_proc_sample base;
	struct bench_proc_sample s1 = { 0 };
	struct bench_proc_sample s2;
	uint64_t t_s1 = 0;
	uint64_t t_s2;
	uint64_t t0;
	uint64_t slab0;

	res.npub = bench_cfg_npub(cfg);
	res.nsub = bench_cfg_nsub(cfg);
	co.total = res.npub + res.nsub;
	co.nkids = cfg->procs ? cfg->procs : (co.total + cfg->conns_per_proc - 1) / cfg->conns_per_proc;
	co.nkids = co.nkids ? co.nkids : 1;
	res.procs = co.nkids;
	res.threads = cfg->threads;
	co.tty = isatty(2);
	co.sh = bench_shared_create(co.nkids * cfg->threads);
	co.sh->run_id = (uint32_t)((hd_now_ns() ^ (uint64_t)getpid() << 7) % 0xffff) + 1;
	co.kids = calloc(co.nkids, sizeof(*co.kids));
	stamp_result(&res);
	sample_servers(cfg, &base);
	res.rss_base = base.rss_bytes;
	slab0 = bench_kernel_slab_bytes();
	t0 = hd_now_ns();
	if (fork_workers(&co)) {
		set_phase(&co, BENCH_PH_ABORT);
		reap_kids(&co);
		return 1;
	}
	if (setup(&co, t0) && cfg->workload == BENCH_CONNECTIONS) {
		sample_servers(cfg, &s1);
		t_s1 = hd_now_ns();
		hold(&co, t0);
		if (res.ready)
			res.slab_per_conn = ((double)bench_kernel_slab_bytes() - (double)slab0) / res.ready;
		if (s1.ok && base.ok && res.ready) {
			res.rss_per_conn = ((double)s1.rss_bytes - (double)base.rss_bytes) / res.ready;
			res.setup_cpu_us_per_conn = (s1.cpu_s - base.cpu_s) * 1e6 / res.ready;
		}
	} else if (!res.aborted) {
		settle(&co, t0);
		run(&co, t0, &s1, &t_s1);
		drain(&co, t0);
	}
	sample_servers(cfg, &s2);
	t_s2 = hd_now_ns();
	end_progress(&co);
	if (!res.aborted)
		close_sessions(&co);
	set_phase(&co, res.aborted ? BENCH_PH_ABORT : BENCH_PH_DONE);
	reap_kids(&co);
	finish(&co);
	if (cfg->workload == BENCH_CONNECTIONS && s1.ok) {
		res.have_server = true;
		res.rss_start = s1.rss_bytes;
		res.rss_end = s2.rss_bytes;
		res.rss_peak = HD_MAX(res.rss_peak, HD_MAX(s1.rss_bytes, s2.rss_bytes));
		res.server_cpu_s = s1.cpu_s - base.cpu_s;
		res.server_wall_s = res.setup_s;
	} else {
		server_figures(&co, &s1, t_s1, &s2, t_s2);
	}
	report(&res);
	free(co.kids);
	return res.aborted ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct bench_cfg cfg;
	struct sigaction sa = { .sa_handler = on_signal };

	if (bench_cfg_parse(&cfg, argc, argv)) {
		for (int i = 1; i < argc; i++)
			if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
				return 0;
		return 2;
	}
	if (cfg.tls && bench_tls_configure(cfg.tls_ca))
		return 2;
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (cfg.workload == BENCH_RAW_SERVER)
		return bench_raw_run(&cfg, &interrupted);
	return coordinate(&cfg);
}
