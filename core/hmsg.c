/*
 * core/hmsg.c - message buffer lifetime. Any thread may drop a reference.
 */
#include "core/hmsg.h"

#include "core/base/hd_alloc.h"

#include <string.h>

struct hmsg *hmsg_create(uint16_t home_shard, const char *dest, size_t dest_len, size_t tail_cap)
{
	struct hmsg *m = hd_alloc(sizeof(*m) + dest_len + 1 + tail_cap);

	atomic_init(&m->refs, 1);
	m->home_shard = home_shard;
	m->flags = 0;
	m->dest_len = (uint32_t)dest_len;
	memcpy(m->bytes, dest, dest_len);
	m->bytes[dest_len] = '\0';
	m->tail_off = (uint32_t)dest_len + 1;
	m->tail_len = 0;
	m->msgid_off = m->tail_off;
	m->msgid_len = 0;
	m->body_len = 0;
	m->tail10_off = 0;
	m->tail10_len = 0;
	m->tail11_off = 0;
	m->tail11_len = 0;
	return m;
}

void hmsg_unref(struct hmsg *m)
{
	/* acq_rel: every holder's reads of the bytes happen before the free by the last one */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		hd_free(m);
}

void hmsg_release_cb(void *arg)
{
	hmsg_unref(arg);
}
