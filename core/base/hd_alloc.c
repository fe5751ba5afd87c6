/*
 * core/base/hd_alloc.c - jemalloc-backed allocation that aborts on failure.
 * Under a sanitizer build jemalloc is not linked and libc malloc is used instead.
 */
#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HD_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

static void *oom(size_t size)
{
	fprintf(stderr, "herald: out of memory allocating %zu bytes\n", size);
	abort();
}

void *hd_alloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	return HD_LIKELY(p) ? p : oom(size);
}

void *hd_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	return HD_LIKELY(p) ? p : oom(n * size);
}

void *hd_realloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);

	return HD_LIKELY(q) ? q : oom(size);
}

char *hd_strndup(const char *s, size_t len)
{
	char *p = hd_alloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void hd_bytes_append(char **buf, uint32_t *len, uint32_t *cap, const void *p, size_t n)
{
	if (*len + n > *cap) {
		uint32_t c = *cap ? *cap : 1024;

		while (c < *len + n)
			c *= 2;
		*buf = hd_realloc(*buf, c);
		*cap = c;
	}
	memcpy(*buf + *len, p, n);
	*len += (uint32_t)n;
}

void hd_free(void *p)
{
	free(p);
}

int hd_alloc_bind_thread_arena(void)
{
#ifdef HD_HAVE_JEMALLOC
	unsigned arena;
	size_t sz = sizeof(arena);

	if (mallctl("arenas.create", &arena, &sz, NULL, 0))
		return -1;
	if (mallctl("thread.arena", NULL, NULL, &arena, sizeof(arena)))
		return -1;
	return (int)arena;
#else
	return -1;
#endif
}

size_t hd_alloc_allocated_bytes(void)
{
#ifdef HD_HAVE_JEMALLOC
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	size_t allocated = 0;

	/* stats are cached per epoch; bumping it refreshes them */
	mallctl("epoch", &epoch, &sz, &epoch, sz);
	sz = sizeof(allocated);
	if (mallctl("stats.allocated", &allocated, &sz, NULL, 0))
		return 0;
	return allocated;
#else
	return 0;
#endif
}
