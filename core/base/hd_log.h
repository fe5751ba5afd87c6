/*
 * core/base/hd_log.h - one line per event on stderr, one write(2) per line so threads
 * never interleave. Each line: "<level> [s<shard>] [c<conn>] message". No trailing period,
 * no bodies, no passcodes. Any thread may log; the shard/conn tags are thread-local.
 */
#ifndef HD_LOG_H
#define HD_LOG_H

#include "core/base/hd_compiler.h"

#include <stdint.h>

enum hd_log_level { HD_LOG_ERR, HD_LOG_WARN, HD_LOG_INFO, HD_LOG_DEBUG };

/* Sets the process-wide threshold (lines above it are skipped). Any thread (SIGHUP: main). */
void hd_log_set_level(enum hd_log_level level);
/* Parses "error", "warn", "info", "debug"; returns -1 on an unknown name. */
int hd_log_level_parse(const char *name);
/* The name hd_log_level_parse takes for level ("?" when out of range). */
const char *hd_log_level_name(int level);
/* Tags this thread's lines with its shard id (-1: none). */
void hd_log_set_thread_shard(int shard_id);

void hd_log_write(enum hd_log_level level, uint64_t conn_id, const char *fmt, ...) HD_PRINTF(3, 4);

#define hd_log_err(...) hd_log_write(HD_LOG_ERR, 0, __VA_ARGS__)
#define hd_log_warn(...) hd_log_write(HD_LOG_WARN, 0, __VA_ARGS__)
#define hd_log_info(...) hd_log_write(HD_LOG_INFO, 0, __VA_ARGS__)
#define hd_log_conn(level, conn_id, ...) hd_log_write(level, conn_id, __VA_ARGS__)
#ifdef HD_DEBUG
#define hd_log_debug(...) hd_log_write(HD_LOG_DEBUG, 0, __VA_ARGS__)
#else
#define hd_log_debug(...) ((void)0)
#endif

#endif
