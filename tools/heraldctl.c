/*
 * tools/heraldctl.c - `heraldctl`, the admin CLI. Talks HTTP/JSON to a node's admin
 * endpoint (loopback by default); never links the server. Commands are a table: add a row
 * for each new one.
 *
 *   heraldctl [--node host:port] [--timeout ms] cluster status [--json]
 *   heraldctl [--node host:port] [--timeout ms] queues [--json]
 *   heraldctl [--node host:port] [--timeout ms] drain
 *   heraldctl [--node host:port] [--timeout ms] connections [--json] | connections close ID
 *
 * An endpoint that asks for credentials (off loopback, or --admin-auth always) gets an
 * administrator's: --user/--password or HERALD_ADMIN_USER/HERALD_ADMIN_PASSWORD.
 *
 * Exit codes: 0 success, 1 node unreachable or bad answer, 2 usage error.
 */
#include "tools/ctl_cluster.h"
#include "tools/ctl_conns.h"
#include "tools/ctl_http.h"
#include "tools/ctl_queues.h"
#include "tools/ctl_user.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_NODE "127.0.0.1:15672"

struct command {
	const char *group;
	const char *verb;
	int (*run)(const struct ctl_opts *o);
	const char *help;
};

static const struct command commands[] = {
	{ "cluster", "status", ctl_cluster_status,
	  "members as this node sees them: name, address, state, incarnation, last contact, load" },
	{ "cluster", "keygen", ctl_cluster_keygen,
	  "print a new cluster key for --gossip-key (nodes on more than one machine need one)" },
	{ "queues", NULL, ctl_queues,
	  "every queue in the cluster: name, vhost, owner node, messages held, consumers" },
	{ "connections", NULL, ctl_connections,
	  "client connections: id, user, vhost, address, protocol, subscriptions, bytes, age" },
	{ "drain", NULL, ctl_drain,
	  "stop the node gracefully: hand its queues over, send its clients elsewhere, exit" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: heraldctl [--node host:port] [--timeout ms] <command> [--json]\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s %-*s %s\n", commands[i].group,
			10 + 7 - (int)strlen(commands[i].group),
			commands[i].verb ? commands[i].verb : "", commands[i].help);
	fprintf(f, "  connections close ID  close one (its client gets an ERROR saying so)\n");
	fprintf(f, "  user ...         users file: add, passwd, set, remove, list (heraldctl user --help)\n");
	fprintf(f, "\noptions:\n"
		   "  --node host:port  admin endpoint of the node to ask (default %s)\n"
		   "  --timeout ms      give up after this long (default 3000)\n"
		   "  --json            print the node's JSON document instead of a table\n"
		   "  --user NAME       an administrator user of the node, for an admin endpoint\n"
		   "                    that asks for credentials (env HERALD_ADMIN_USER)\n"
		   "  --password PASS   its password (better: env HERALD_ADMIN_PASSWORD, which\n"
		   "                    other users cannot read in the process list)\n"
		   "\nexit status: 0 ok, 1 node unreachable or bad answer, 2 usage\n",
		DEFAULT_NODE);
}

/* "host:port" with a non-empty host and a port in 1..65535: a malformed --node is a usage
 * error (exit 2), not an unreachable node (exit 1). */
static bool hostport_is_valid(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s || !colon[1])
		return false;
	port = strtol(colon + 1, &end, 10);
	return !*end && port >= 1 && port <= 65535;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct ctl_opts o = { .node = DEFAULT_NODE, .timeout_ms = 3000 };
	const char *admin_user = getenv("HERALD_ADMIN_USER");
	const char *admin_pass = getenv("HERALD_ADMIN_PASSWORD");
	int c;

	/* `user` has its own options: hand it the arguments before getopt permutes them */
	if (argc > 1 && !strcmp(argv[1], "user"))
		return ctl_user_main(argc - 1, argv + 1);

	/* options may come before or after the command words (getopt permutes) */
	while ((c = getopt_long(argc, argv, "hn:t:j", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			admin_user = optarg;
			break;
		case 'p':
			admin_pass = optarg;
			break;
		case 'n':
			if (!hostport_is_valid(optarg)) {
				fprintf(stderr, "heraldctl: --node wants host:port, not '%s'\n", optarg);
				return 2;
			}
			o.node = optarg;
			break;
		case 't':
			o.timeout_ms = atoi(optarg);
			if (o.timeout_ms <= 0) {
				fprintf(stderr, "heraldctl: --timeout wants a positive number of ms\n");
				return 2;
			}
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (admin_user && *admin_user && ctl_http_set_credentials(admin_user, admin_pass)) {
		fprintf(stderr, "heraldctl: --user must not hold ':' (and the pair must be under "
			"1 KiB)\n");
		return 2;
	}
	if (argc - optind == 3 && !strcmp(argv[optind], "connections") &&
	    !strcmp(argv[optind + 1], "close"))
		return ctl_connections_close(&o, argv[optind + 2]);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *cm = &commands[i];
		int words = cm->verb ? 2 : 1;

		if (argc - optind == words && !strcmp(argv[optind], cm->group) &&
		    (!cm->verb || !strcmp(argv[optind + 1], cm->verb)))
			return cm->run(&o);
	}
	usage(stderr);
	return 2;
}
