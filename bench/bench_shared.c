/*
 * bench/bench_shared.c - the shared counter block and the /proc probe of the server.
 */
#include "bench/bench_shared.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct bench_shared *bench_shared_create(uint32_t nthreads)
{
	size_t len = sizeof(struct bench_shared) + nthreads * sizeof(struct bench_tstats);
	struct bench_shared *sh = mmap(NULL, len, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (sh == MAP_FAILED) {
		perror("herald-bench: mmap");
		abort();
	}
	sh->nthreads = nthreads;
	for (uint32_t i = 0; i < nthreads; i++) {
		bench_hist_init(&sh->t[i].hist);
		bench_hist_init(&sh->t[i].hist_sent);
		bench_hist_init(&sh->t[i].hist_receipt);
	}
	return sh;
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void bench_shared_sum(const struct bench_shared *sh, struct bench_sums *o)
{
	memset(o, 0, sizeof(*o));
	for (uint32_t i = 0; i < sh->nthreads; i++) {
		const struct bench_tstats *t = &sh->t[i];
		uint64_t lc = LOAD(t->last_connected_ns);
		uint64_t lr = LOAD(t->last_ready_ns);

		o->published += LOAD(t->published);
		o->delivered += LOAD(t->delivered);
		o->m_published += LOAD(t->m_published);
		o->m_delivered += LOAD(t->m_delivered);
		o->order_errors += LOAD(t->order_errors);
		o->acks += LOAD(t->acks);
		o->receipts += LOAD(t->receipts);
		o->connected += LOAD(t->connected);
		o->ready += LOAD(t->ready);
		o->errors += LOAD(t->errors);
		o->stale += LOAD(t->stale);
		o->open += LOAD(t->open);
		o->last_connected_ns = lc > o->last_connected_ns ? lc : o->last_connected_ns;
		o->last_ready_ns = lr > o->last_ready_ns ? lr : o->last_ready_ns;
	}
}

void bench_tstats_error(struct bench_tstats *t, const char *fmt, ...)
{
	uint32_t expect = 0;

	atomic_fetch_add_explicit(&t->errors, 1, memory_order_relaxed);
	if (atomic_load_explicit(&t->error_set, memory_order_relaxed))
		return;
	{
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(t->last_error, sizeof(t->last_error), fmt, ap);
		va_end(ap);
	}
	/* release: the text is complete before a reader sees error_set */
	atomic_compare_exchange_strong_explicit(&t->error_set, &expect, 1, memory_order_release,
						memory_order_relaxed);
}

const char *bench_shared_first_error(const struct bench_shared *sh)
{
	for (uint32_t i = 0; i < sh->nthreads; i++)
		if (atomic_load_explicit(&sh->t[i].error_set, memory_order_acquire))
			return sh->t[i].last_error;
	return NULL;
}

uint64_t bench_kernel_slab_bytes(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Slab: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

void bench_proc_sample(pid_t pid, struct bench_proc_sample *out)
{
	char path[64];
	char buf[4096];
	FILE *f;
	size_t n;
	unsigned long ut = 0;
	unsigned long st = 0;
	const char *p;

	memset(out, 0, sizeof(*out));
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* fields after the ")" that ends comm: state is field 3, utime 14, stime 15 */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return;
	out->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(buf, sizeof(buf), f)) {
		unsigned long kb;

		if (sscanf(buf, "VmRSS: %lu kB", &kb) == 1) {
			out->rss_bytes = (uint64_t)kb * 1024;
			out->ok = 1;
			break;
		}
	}
	fclose(f);
}
