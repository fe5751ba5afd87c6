/*
 * cluster/meta.c - node metadata encode/decode (layout in meta.h).
 */
#include "cluster/meta.h"

#include <errno.h>
#include <string.h>

#define META_FIXED (1 + 2 * 3 + 8 * 3 + 1)
#define META_TAIL (2 + 2 + 2 + 8)	/* route, admin and raft ports, raft id */

static uint8_t *put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t get_be(const uint8_t **p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | *(*p)++;
	return v;
}

size_t meta_encode(const struct node_meta *m, uint8_t *out, size_t cap)
{
	size_t alen = strnlen(m->addr, META_ADDR_MAX);
	uint8_t *p = out;

	if (cap < META_FIXED + alen + META_TAIL)
		return 0;
	*p++ = META_VERSION;
	p = put_be(p, m->stomp_port, 2);
	p = put_be(p, m->ws_port, 2);
	p = put_be(p, m->nshards, 2);
	p = put_be(p, m->connections, 8);
	p = put_be(p, m->subscriptions, 8);
	p = put_be(p, m->msgs_per_s, 8);
	*p++ = (uint8_t)alen;
	memcpy(p, m->addr, alen);
	p += alen;
	p = put_be(p, m->route_port, 2);
	p = put_be(p, m->admin_port, 2);
	p = put_be(p, m->raft_port, 2);
	p = put_be(p, m->raft_id, 8);
	return (size_t)(p - out);
}

int meta_decode(const uint8_t *buf, size_t len, struct node_meta *m)
{
	const uint8_t *p = buf;
	size_t alen;

	memset(m, 0, sizeof(*m));
	if (len < META_FIXED || buf[0] != META_VERSION)
		return -EINVAL;
	p++;
	m->stomp_port = (uint16_t)get_be(&p, 2);
	m->ws_port = (uint16_t)get_be(&p, 2);
	m->nshards = (uint16_t)get_be(&p, 2);
	m->connections = get_be(&p, 8);
	m->subscriptions = get_be(&p, 8);
	m->msgs_per_s = get_be(&p, 8);
	alen = *p++;
	if (alen > META_ADDR_MAX || alen > len - META_FIXED) {
		memset(m, 0, sizeof(*m));
		return -EINVAL;
	}
	memcpy(m->addr, p, alen);
	m->addr[alen] = '\0';
	p += alen;
	if (len - META_FIXED - alen >= 2)
		m->route_port = (uint16_t)get_be(&p, 2);
	if (len - META_FIXED - alen >= 4)
		m->admin_port = (uint16_t)get_be(&p, 2);
	if (len - META_FIXED - alen >= META_TAIL) {
		m->raft_port = (uint16_t)get_be(&p, 2);
		m->raft_id = get_be(&p, 8);
	}
	return 0;
}
