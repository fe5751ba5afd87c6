/*
 * bench/queue_pick.c - herald-queue-pick: prints queue destinations a chosen node owns, for
 * herald-bench --queue-file (benchmarks that want every queue on one node of a cluster).
 *
 *	herald-queue-pick --nodes hb-a,hb-b,hb-c --owner hb-b --count 1000 [--prefix /queue/q-]
 *		[--vhost /]
 *
 * Scans PREFIX0, PREFIX1, ... and prints the first COUNT whose owner among NODES (every
 * member of the cluster, by --node-name) is OWNER. It asks the server's own rendezvous
 * function, core/placement.c's placement_queue_node, so it agrees with the server by
 * construction; the one core internal bench/ links, and only this helper does (herald-bench
 * stays on base, net and proto). heraldctl queues --json shows the owners the running
 * cluster actually used: bench/queues_cluster.sh checks them after every run.
 *
 * Pure: no sockets, no threads. Exit 0, 2 on bad usage.
 */
#include "core/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODES_MAX 64
#define KEY_MAX 512

static void usage(void)
{
	fprintf(stderr, "usage: herald-queue-pick --nodes NAME[,NAME...] --owner NAME --count N\n"
			"                         [--prefix /queue/q-] [--vhost /]\n");
}

/* Splits the comma list into p (this node first: any order scores the same). Returns the
 * index of owner among them, or -1. */
static int build(struct placement **p, char *nodes, const char *owner)
{
	int found = -1;
	int n = 0;

	for (char *name = strtok(nodes, ","); name; name = strtok(NULL, ","), n++) {
		uint64_t h = placement_node_hash(name, strlen(name));

		if (n == NODES_MAX)
			return -1;
		if (!n)
			*p = placement_create(h);
		else
			placement_add(*p, h, (int16_t)n);
		if (!strcmp(name, owner))
			found = n;
	}
	return found;
}

int main(int argc, char **argv)
{
	const char *prefix = "/queue/q-";
	const char *vhost = "/";
	const char *owner = NULL;
	char *nodes = NULL;
	unsigned long count = 0;
	struct placement *p = NULL;
	int want;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--nodes"))
			nodes = argv[i + 1];
		else if (!strcmp(argv[i], "--owner"))
			owner = argv[i + 1];
		else if (!strcmp(argv[i], "--count"))
			count = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--prefix"))
			prefix = argv[i + 1];
		else if (!strcmp(argv[i], "--vhost"))
			vhost = argv[i + 1];
		else
			argc = 0;
	}
	if (argc % 2 == 0 || !nodes || !owner || !count || strncmp(prefix, "/queue/", 7)) {
		usage();
		return 2;
	}
	want = build(&p, nodes, owner);
	if (want < 0) {
		fprintf(stderr, "herald-queue-pick: --owner %s is not in --nodes\n", owner);
		return 2;
	}
	for (unsigned long i = 0, found = 0; found < count; i++) {
		char key[KEY_MAX];
		int dlen = snprintf(key, sizeof(key), "%s%lu", prefix, i);
		int klen = dlen;

		/* the server's key: the destination in vhost "/", "<dest>\x1f<vhost>" elsewhere
		 * (core/destname.h, destname_key) */
		if (strcmp(vhost, "/"))
			klen = snprintf(key, sizeof(key), "%s%lu\x1f%s", prefix, i, vhost);
		if (klen <= 0 || klen >= (int)sizeof(key))
			return 2;
		if (placement_queue_node(p, key, (size_t)klen) == want) {
			printf("%.*s\n", dlen, key);
			found++;
		}
	}
	placement_unref(p);
	return 0;
}
