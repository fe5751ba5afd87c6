/*
 * tests/support/guarded_buf.c - buffers flush against a PROT_NONE guard page (see the
 * header). One mmap per buffer: the data pages, then the guard page the data ends at.
 */
#include "tests/support/guarded_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

char *guarded_buf_init(struct guarded_buf *g, const void *data, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = (len + page - 1) / page;
	char *guard;

	g->map_len = (data_pages + 1) * page;
	g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (g->map == MAP_FAILED) {
		perror("guarded_buf_init: mmap");
		abort();
	}
	guard = (char *)g->map + data_pages * page;
	if (mprotect(guard, page, PROT_NONE)) {
		perror("guarded_buf_init: mprotect");
		abort();
	}
	g->ptr = guard - len;
	g->len = len;
	if (data && len)
		memcpy(g->ptr, data, len);
	return g->ptr;
}

void guarded_buf_fini(struct guarded_buf *g)
{
	munmap(g->map, g->map_len);
	g->map = NULL;
	g->ptr = NULL;
	g->len = 0;
}
