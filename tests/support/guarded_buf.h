/*
 * tests/support/guarded_buf.h - test buffers that end flush against a PROT_NONE page, so
 * code that reads or writes one byte past the end crashes instead of passing silently
 * (picohttpparser's test.c does the same). Linked into every unit test; tests only.
 */
#ifndef TESTS_SUPPORT_GUARDED_BUF_H
#define TESTS_SUPPORT_GUARDED_BUF_H

#include <stddef.h>

struct guarded_buf {
	char *ptr;		/* first usable byte; ptr + len is the guard page's first byte */
	size_t len;		/* usable bytes */
	void *map;		/* the whole mapping, for munmap */
	size_t map_len;		/* bytes mapped, guard page included */
};

/* Maps len writable bytes ending right before an inaccessible page and copies data (when
 * not NULL) into them. Returns g->ptr; aborts the test process if mmap fails. */
char *guarded_buf_init(struct guarded_buf *g, const void *data, size_t len);

/* Unmaps g; g->ptr is dangling afterwards. */
void guarded_buf_fini(struct guarded_buf *g);

#endif
