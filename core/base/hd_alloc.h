/*
 * core/base/hd_alloc.h - the one allocator entry point (jemalloc in normal builds).
 * Any thread may call these. Allocation failure aborts (h2o, Redis): limits keep the
 * server far from OOM, and a half-failed allocation path is worse than a clean abort.
 */
#ifndef HD_ALLOC_H
#define HD_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *hd_alloc(size_t size);			/* never NULL */
void *hd_calloc(size_t n, size_t size);		/* zeroed; never NULL */
void *hd_realloc(void *p, size_t size);		/* never NULL */
char *hd_strndup(const char *s, size_t len);	/* NUL-terminated copy; never NULL */
void hd_free(void *p);

/* Appends n bytes of p to the growable buffer (*buf, *len used, *cap owned), doubling the
 * capacity from 1 KiB as needed. */
void hd_bytes_append(char **buf, uint32_t *len, uint32_t *cap, const void *p, size_t n);

/* Creates a jemalloc arena and binds the calling thread to it, so a shard's memory shows in
 * its own arena's stats. Returns the arena index, or -1 where jemalloc is not linked. */
int hd_alloc_bind_thread_arena(void);

/* Bytes the allocator holds for the application (jemalloc "stats.allocated"), 0 if unknown. */
size_t hd_alloc_allocated_bytes(void);

#endif
