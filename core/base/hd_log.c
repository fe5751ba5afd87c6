/*
 * core/base/hd_log.c - line logger. The level is one relaxed atomic (main changes it on
 * SIGHUP while shards log); the shard tag is thread-local, so logging takes no lock.
 */
#include "core/base/hd_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* relaxed: only this value is read through it, and a line more or less around a change
 * of level does not matter */
static _Atomic int log_threshold = HD_LOG_INFO;
static _Thread_local int log_shard = -1;

void hd_log_set_level(enum hd_log_level level)
{
	atomic_store_explicit(&log_threshold, (int)level, memory_order_relaxed);
}

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int hd_log_level_parse(const char *name)
{
	for (int i = 0; i < (int)HD_ARRAY_LEN(level_names); i++)
		if (!strcmp(name, level_names[i]))
			return i;
	return -1;
}

const char *hd_log_level_name(int level)
{
	return level >= 0 && level < (int)HD_ARRAY_LEN(level_names) ? level_names[level] : "?";
}

void hd_log_set_thread_shard(int shard_id)
{
	log_shard = shard_id;
}

void __attribute__((noreturn)) hd_assert_fail(const char *expr, const char *file, int line)
{
	hd_log_write(HD_LOG_ERR, 0, "assertion failed: %s at %s:%d", expr, file, line);
	abort();
}

void hd_log_write(enum hd_log_level level, uint64_t conn_id, const char *fmt, ...)
{
	static const char *const tags[] = { "ERR", "WRN", "INF", "DBG" };
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if ((int)level > atomic_load_explicit(&log_threshold, memory_order_relaxed))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - n, ".%03ldZ %s", ts.tv_nsec / 1000000, tags[level]);
	if (log_shard >= 0)
		n += snprintf(line + n, sizeof(line) - n, " s%d", log_shard);
	if (conn_id)
		n += snprintf(line + n, sizeof(line) - n, " c%llu", (unsigned long long)conn_id);
	line[n++] = ' ';
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (n > sizeof(line) - 1)
		n = sizeof(line) - 1;
	line[n++] = '\n';
	/* one write per line: lines from different shards never interleave */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
