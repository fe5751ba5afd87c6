/*
 * bench/bench_report.c - summary table and JSON for a herald-bench run.
 */
#include "bench/bench_report.h"

#include "bench/bench_cfg.h"

#include <string.h>

static const char *human(double v, char *buf, size_t cap)
{
	if (v >= 1e9)
		snprintf(buf, cap, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, cap, "%.2fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, cap, "%.1fk", v / 1e3);
	else
		snprintf(buf, cap, "%.0f", v);
	return buf;
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

/* "PID" or "PIDs A+B+..." for the table. */
static const char *pid_list(const struct bench_cfg *c, char *buf, size_t cap)
{
	size_t used = (size_t)snprintf(buf, cap, "pid%s ", c->nserver_pids > 1 ? "s" : "");

	for (uint32_t i = 0; i < c->nserver_pids && used < cap; i++)
		used += (size_t)snprintf(buf + used, cap - used, "%s%d", i ? "+" : "",
					 (int)c->server_pids[i]);
	return buf;
}

static void targets_line(const struct bench_cfg *c, FILE *f)
{
	if (!c->pub_url && !c->sub_urls)
		return;
	fprintf(f, "  publishers -> %s;  subscribers round-robin over %s\n",
		c->pub_url ? c->pub_url : c->url, c->sub_urls ? c->sub_urls : c->url);
}

static void topology(const struct bench_result *r, FILE *f)
{
	const struct bench_cfg *c = r->cfg;

	switch (c->workload) {
	case BENCH_FANOUT:
	case BENCH_LATENCY:
		fprintf(f, "  %u publisher(s) -> %s -> %u subscribers, body %u B", r->npub, c->topic,
			r->nsub, c->body);
		if (c->workload == BENCH_LATENCY)
			fprintf(f, ", %.0f msgs/s offered (%.0f deliveries/s)", c->rate,
				c->rate * r->nsub);
		break;
	case BENCH_QUEUES:
		fprintf(f, "  %u producer(s) -> %s<0..%u> -> one consumer each, body %u B, ack %s",
			r->npub, c->queue_file ? c->queue_file : c->queue_prefix, r->nsub - 1,
			c->body, c->ack == BENCH_ACK_AUTO ? "auto" : "client-individual");
		if (bench_cfg_paced(c))
			fprintf(f, ", %.0f msgs/s offered", c->rate);
		break;
	default:
		fprintf(f, "  %u connections, each subscribed to %s<i>", r->nsub, c->queue_prefix);
		break;
	}
	fprintf(f, "\n  %u process(es) x %u thread(s)\n", r->procs, r->threads);
	targets_line(c, f);
}

static void latency_line(FILE *f, const char *what, const struct bench_hist *h)
{
	fprintf(f, "  %s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%llu samples)\n", what,
		us(bench_hist_quantile(h, 0.5)), us(bench_hist_quantile(h, 0.9)),
		us(bench_hist_quantile(h, 0.99)), us(bench_hist_quantile(h, 0.999)), us(h->max_ns),
		(unsigned long long)h->count);
}

static void table_run(const struct bench_result *r, FILE *f)
{
	char a[32];
	char b[32];

	fprintf(f, "  measured      %.2f s after %.2f s warm-up; drained in %.2f s\n", r->measured_s,
		r->cfg->count ? 0.0 : r->cfg->warmup_s, r->drain_s);
	fprintf(f, "                %14s %14s\n", "messages", "per second");
	fprintf(f, "  published     %14llu %14s\n", (unsigned long long)r->m_published,
		human(r->pub_rate, a, sizeof(a)));
	fprintf(f, "  delivered     %14llu %14s\n", (unsigned long long)r->m_delivered,
		human(r->del_rate, b, sizeof(b)));
	latency_line(f, "latency (us) ", &r->hist);
	if (bench_cfg_paced(r->cfg))
		latency_line(f, "  from write ", &r->hist_sent);
	if (r->cfg->receipts)
		latency_line(f, "receipt (us) ", &r->hist_receipt);
	fprintf(f, "  checks        lost %llu  duplicates %llu  order violations %llu  errors %llu",
		(unsigned long long)r->lost, (unsigned long long)r->extra,
		(unsigned long long)r->order_errors, (unsigned long long)r->errors);
	if (r->acks)
		fprintf(f, "  acks %llu", (unsigned long long)r->acks);
	if (r->cfg->receipts)
		fprintf(f, "  receipts %llu", (unsigned long long)r->receipts);
	if (r->stale)
		fprintf(f, "  stale %llu", (unsigned long long)r->stale);
	fprintf(f, "\n");
}

void bench_report_table(const struct bench_result *r, FILE *f)
{
	const struct bench_cfg *c = r->cfg;
	char a[32];
	char pids[160];

	fprintf(f, "herald-bench %s%s%s  %s  (%s)\n", bench_workload_name(c->workload),
		*c->label ? "  " : "", c->label, c->pub_url ? c->pub_url : c->url, r->date);
	topology(r, f);
	fprintf(f, "  set-up        %llu connections in %.2f s: %s CONNECTED/s, %s ready/s\n",
		(unsigned long long)r->ready, r->setup_s, human(r->connect_rate, a, sizeof(a)),
		human(r->ready_rate, a + 16, sizeof(a) - 16));
	if (r->partial)
		fprintf(f, "  PARTIAL       the server held %llu of %u connections (%llu failed or hung)\n",
			(unsigned long long)r->ready, r->npub + r->nsub,
			(unsigned long long)(r->npub + r->nsub - r->ready));
	if (c->workload != BENCH_CONNECTIONS)
		table_run(r, f);
	else if (r->errors)
		fprintf(f, "  checks        errors %llu\n", (unsigned long long)r->errors);
	if (r->have_server) {
		fprintf(f, "  server        %s  cpu %.2f s over %.2f s (%.0f%%)  rss %.1f -> %.1f MiB (peak %.1f, base %.1f)\n",
			pid_list(c, pids, sizeof(pids)), r->server_cpu_s, r->server_wall_s,
			r->server_wall_s > 0 ? 100.0 * r->server_cpu_s / r->server_wall_s : 0.0,
			mib(r->rss_start), mib(r->rss_end), mib(r->rss_peak), mib(r->rss_base));
		if (c->workload == BENCH_CONNECTIONS)
			fprintf(f, "  per connection  %.0f bytes of server RSS, %.1f us of server CPU to set up; "
				   "kernel slab +%.0f bytes (both ends)\n",
				r->rss_per_conn, r->setup_cpu_us_per_conn, r->slab_per_conn);
		else
			fprintf(f, "  efficiency    %s deliveries per server CPU-second  (%.3f CPU-s per million)\n",
				human(r->del_per_cpu_s, a, sizeof(a)), r->cpu_s_per_million);
	}
	if (r->first_error)
		fprintf(f, "  first error   %s\n", r->first_error);
	if (r->aborted)
		fprintf(f, "  ABORTED: the run did not complete\n");
}

static void json_str(FILE *f, const char *key, const char *v)
{
	fprintf(f, "\"%s\":\"", key);
	for (; v && *v; v++) {
		if (*v == '"' || *v == '\\')
			fprintf(f, "\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			fprintf(f, "\\u%04x", *v);
		else
			fputc(*v, f);
	}
	fputs("\",", f);
}

#define JU(key, v) fprintf(f, "\"%s\":%llu,", key, (unsigned long long)(v))
#define JD(key, v) fprintf(f, "\"%s\":%.6g,", key, (double)(v))

static void json_hist(FILE *f, const char *key, const struct bench_hist *h)
{
	fprintf(f, "\"%s\":{", key);
	JU("count", h->count);
	JD("min", h->count ? us(h->min_ns) : 0);
	JD("mean", h->count ? us(h->sum_ns / h->count) : 0);
	JD("p50", us(bench_hist_quantile(h, 0.5)));
	JD("p90", us(bench_hist_quantile(h, 0.9)));
	JD("p99", us(bench_hist_quantile(h, 0.99)));
	JD("p999", us(bench_hist_quantile(h, 0.999)));
	fprintf(f, "\"max\":%.6g},", us(h->max_ns));
}

void bench_report_json(const struct bench_result *r, FILE *f)
{
	const struct bench_cfg *c = r->cfg;
	const struct bench_hist *h = &r->hist;

	fputc('{', f);
	json_str(f, "workload", bench_workload_name(c->workload));
	json_str(f, "label", c->label);
	json_str(f, "url", c->pub_url ? c->pub_url : c->url);
	json_str(f, "transport", c->nats ? "nats" : c->ws ? "ws" : "stomp");
	json_str(f, "pub_url", c->pub_url ? c->pub_url : c->url);
	json_str(f, "sub_url", c->sub_urls ? c->sub_urls : c->url);
	JD("settle_s", c->settle_s);
	json_str(f, "date", r->date);
	json_str(f, "host", r->host);
	JU("publishers", r->npub);
	JU("subscribers", r->nsub);
	JU("body", c->body);
	json_str(f, "ack", c->ack == BENCH_ACK_AUTO ? "auto" : "client-individual");
	JD("rate_offered", bench_cfg_paced(c) ? c->rate : 0);
	JD("deliveries_offered", bench_cfg_paced(c) ? c->rate * bench_cfg_fan(c) : 0);
	json_str(f, "queue_file", c->queue_file ? c->queue_file : "");
	JU("procs", r->procs);
	JU("threads", r->threads);
	JU("aborted", r->aborted);
	JU("partial", r->partial);
	JD("setup_s", r->setup_s);
	JD("connect_rate", r->connect_rate);
	JD("ready_rate", r->ready_rate);
	JU("connected", r->connected);
	JU("ready", r->ready);
	JD("warmup_s", c->count ? 0 : c->warmup_s);
	JD("measured_s", r->measured_s);
	JD("drain_s", r->drain_s);
	JU("published", r->published);
	JU("delivered", r->delivered);
	JU("expected", r->expected);
	JU("lost", r->lost);
	JU("duplicates", r->extra);
	JU("order_violations", r->order_errors);
	JU("errors", r->errors);
	JU("acks", r->acks);
	JU("receipts", r->receipts);
	JU("stale", r->stale);
	JU("measured_published", r->m_published);
	JU("measured_delivered", r->m_delivered);
	JD("pub_rate", r->pub_rate);
	JD("del_rate", r->del_rate);
	json_hist(f, "latency_us", h);
	json_hist(f, "latency_from_write_us", &r->hist_sent);
	if (r->cfg->receipts)
		json_hist(f, "receipt_latency_us", &r->hist_receipt);
	if (r->have_server) {
		fprintf(f, "\"server\":{\"pid\":%d,\"pids\":[", (int)c->server_pid);
		for (uint32_t i = 0; i < c->nserver_pids; i++)
			fprintf(f, "%s%d", i ? "," : "", (int)c->server_pids[i]);
		fputs("],", f);
		JD("cpu_s", r->server_cpu_s);
		JD("wall_s", r->server_wall_s);
		JU("rss_base", r->rss_base);
		JU("rss_start", r->rss_start);
		JU("rss_end", r->rss_end);
		fprintf(f, "\"rss_peak\":%llu},", (unsigned long long)r->rss_peak);
		JD("deliveries_per_cpu_s", r->del_per_cpu_s);
		JD("cpu_s_per_million", r->cpu_s_per_million);
		JD("rss_per_conn", r->rss_per_conn);
		JD("setup_cpu_us_per_conn", r->setup_cpu_us_per_conn);
		JD("kernel_slab_per_conn", r->slab_per_conn);
	}
	json_str(f, "first_error", r->first_error ? r->first_error : "");
	fprintf(f, "\"version\":1}\n");
}
