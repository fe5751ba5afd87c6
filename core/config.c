/*
 * core/config.c - one table of options serves the INI file, the flags and --help, so a
 * setting cannot exist in one and not the others.
 */
#include "core/config.h"

#include "core/base/hd_log.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_STR, OPT_U16, OPT_U32, OPT_U64, OPT_BOOL, OPT_LOG, OPT_JOIN, OPT_USER };

struct opt {
	const char *name;	/* flag --name; INI key name in any section */
	enum opt_type type;
	size_t off;		/* into struct herald_config */
	size_t size;		/* for strings */
	const char *help;
};

#define C(field) offsetof(struct herald_config, field), sizeof(((struct herald_config *)0)->field)
static const struct opt opts[] = {
	{ "bind", OPT_STR, C(bind_addr), "address for client listeners" },
	{ "stomp-port", OPT_U16, C(stomp_port), "STOMP over TCP port (0: pick a free one)" },
	{ "ws-port", OPT_U16, C(ws_port), "STOMP over WebSocket port (0: pick a free one)" },
	{ "ws-path", OPT_STR, C(ws_path), "WebSocket endpoint path" },
	{ "ws-origins", OPT_STR, C(ws_origins),
	  "comma-separated Origins allowed to open WebSockets (e.g. https://app.example); empty: any" },
	{ "shards", OPT_U32, C(shards), "shard threads (0: one per online CPU)" },
	{ "node-name", OPT_STR, C(node_name), "node name (default: hostname:stomp-port)" },
	{ "log-level", OPT_LOG, C(log_level), "error, warn, info or debug" },
	{ "vhosts", OPT_STR, C(vhosts), "comma-separated virtual hosts (CONNECT's host header)" },
	{ "users-file", OPT_STR, C(users_file), "users file written by `heraldctl user` (docs/auth.md)" },
	{ "rules-file", OPT_STR, C(rules_file), "authorization rules file (docs/auth.md); none: built-in defaults" },
	{ "user", OPT_USER, C(users), "NAME:PASSWORD[:TAG,...] quick-start user (repeatable)" },
	{ "jwt-hs256-secret-file", OPT_STR, C(jwt_hs256_secret_file), "file with the HS256 secret: passcodes may be JWTs" },
	{ "jwt-rs256-key-file", OPT_STR, C(jwt_rs256_key_file), "PEM public key for RS256 JWTs" },
	{ "jwt-es256-key-file", OPT_STR, C(jwt_es256_key_file), "PEM public key for ES256 JWTs" },
	{ "jwt-audience", OPT_STR, C(jwt_audience), "required JWT aud" },
	{ "jwt-issuer", OPT_STR, C(jwt_issuer), "required JWT iss" },
	{ "jwt-leeway-s", OPT_U32, C(jwt_leeway_s), "clock skew allowed on JWT exp/nbf, seconds" },
	{ "default-user", OPT_STR, C(default_user), "built-in user (loopback only)" },
	{ "default-pass", OPT_STR, C(default_pass), "built-in user's password" },
	{ "heartbeat-min-ms", OPT_U32, C(limits.heartbeat_min_ms), "shortest heart-beat interval honoured" },
	{ "max-frame-bytes", OPT_U64, C(limits.max_frame_bytes), "largest STOMP frame" },
	{ "max-headers", OPT_U32, C(limits.max_headers), "header lines per frame" },
	{ "max-header-line", OPT_U32, C(limits.max_header_line), "bytes per header line" },
	{ "max-body-bytes", OPT_U64, C(limits.max_body_bytes), "largest frame body" },
	{ "max-outbound-bytes", OPT_U64, C(limits.max_outbound_bytes),
	  "send backlog per connection before a topic subscriber is dropped as slow" },
	{ "max-queue-length", OPT_U32, C(limits.max_queue_length), "ready messages per queue" },
	{ "max-connections", OPT_U32, C(limits.max_connections), "connections per node" },
	{ "max-subscriptions", OPT_U32, C(limits.max_subscriptions), "subscriptions per connection" },
	{ "memory-high-water", OPT_U64, C(limits.memory_high_water),
	  "allocated bytes above which SENDs are refused" },
	{ "max-tx-frames", OPT_U32, C(limits.max_tx_frames), "frames held in one transaction" },
	{ "max-transactions", OPT_U32, C(limits.max_transactions),
	  "open transactions per connection" },
	{ "max-destination-bytes", OPT_U32, C(limits.max_destination_bytes),
	  "longest destination name (RabbitMQ's limit is 255 too)" },
	{ "connect-timeout-ms", OPT_U32, C(limits.connect_timeout_ms), "time to send CONNECT" },
	{ "cluster", OPT_BOOL, C(cluster_enabled), "run the gossip membership layer" },
	{ "cluster-name", OPT_STR, C(cluster.cluster_name), "cluster name (gossip is refused across names)" },
	{ "gossip-port", OPT_U16, C(cluster.gossip_port), "gossip port, UDP and TCP (0: pick)" },
	{ "gossip-bind", OPT_STR, C(cluster.bind_addr), "gossip bind address" },
	{ "gossip-advertise", OPT_STR, C(cluster.gossip_advertise),
	  "address peers should use for our gossip port (default: the bind address)" },
	{ "gossip-interval", OPT_U32, C(cluster.gossip_interval_ms), "gossip protocol period, ms" },
	{ "gossip-key", OPT_STR, C(cluster.key_file), "file holding the shared gossip key" },
	{ "join", OPT_JOIN, C(cluster.join), "host:port[,host:port...] seeds to join" },
	{ "admin-bind", OPT_STR, C(cluster.admin_bind), "admin HTTP address" },
	{ "admin-port", OPT_U16, C(cluster.admin_port), "admin HTTP port (0: pick)" },
};
#undef C

void config_defaults(struct herald_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->bind_addr, "0.0.0.0");
	cfg->stomp_port = 61613;
	cfg->ws_port = 15674;
	strcpy(cfg->ws_path, "/ws");
	cfg->log_level = HD_LOG_INFO;
	strcpy(cfg->vhosts, "/");
	strcpy(cfg->default_user, "guest");
	strcpy(cfg->default_pass, "guest");
	cfg->default_user_loopback_only = true;
	cfg->limits = (struct hd_limits){
		/* what real brokers take: RabbitMQ's own STOMP tests send 16 MiB bodies; ActiveMQ
		 * allows 1,000 headers of 10 KiB. The memory high-water mark protects the node. */
		.max_frame_bytes = CONFIG_DEFAULT_MAX_BODY + CONFIG_DEFAULT_MAX_HEADERS *
							      CONFIG_DEFAULT_MAX_HEADER_LINE,
		.max_headers = CONFIG_DEFAULT_MAX_HEADERS,
		.max_header_line = CONFIG_DEFAULT_MAX_HEADER_LINE,
		.max_body_bytes = CONFIG_DEFAULT_MAX_BODY,
		.max_outbound_bytes = 16u << 20,
		.max_queue_length = 1000000,
		.max_connections = 1000000,
		.max_subscriptions = 1024,
		.memory_high_water = 8ull << 30,
		.max_tx_frames = 10000,
		.max_transactions = 256,
		.max_destination_bytes = 255,
		.heartbeat_min_ms = 50,
		.connect_timeout_ms = 10000,
	};
	cfg->cluster_enabled = true;
	/* cfg->cluster: main fills it with cluster_config_defaults (core never calls cluster) */
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static int set_join(struct herald_config *cfg, const char *val)
{
	char buf[2048];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", val);
	cfg->cluster.njoin = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (cfg->cluster.njoin == CLUSTER_MAX_JOIN)
			return -1;
		snprintf(cfg->cluster.join[cfg->cluster.njoin++], sizeof(cfg->cluster.join[0]), "%s", t);
	}
	return 0;
}

static int set_opt(struct herald_config *cfg, const struct opt *o, const char *val)
{
	char *field = (char *)cfg + o->off;
	uint64_t v;
	int lvl;

	switch (o->type) {
	case OPT_STR:
		if (strlen(val) >= o->size)
			return -1;
		strcpy(field, val);
		return 0;
	case OPT_U16:
		if (parse_u64(val, UINT16_MAX, &v))
			return -1;
		*(uint16_t *)field = (uint16_t)v;
		return 0;
	case OPT_U32:
		if (parse_u64(val, UINT32_MAX, &v))
			return -1;
		*(uint32_t *)field = (uint32_t)v;
		return 0;
	case OPT_U64:
		if (parse_u64(val, UINT64_MAX, &v))
			return -1;
		*(uint64_t *)field = v;
		return 0;
	case OPT_BOOL:
		if (!strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "yes"))
			*(bool *)field = true;
		else if (!strcmp(val, "false") || !strcmp(val, "0") || !strcmp(val, "no"))
			*(bool *)field = false;
		else
			return -1;
		return 0;
	case OPT_LOG:
		lvl = hd_log_level_parse(val);
		if (lvl < 0)
			return -1;
		*(int *)field = lvl;
		return 0;
	case OPT_JOIN:
		return set_join(cfg, val);
	case OPT_USER:
		if (cfg->nusers == HD_ARRAY_LEN(cfg->users) || strlen(val) >= sizeof(cfg->users[0]))
			return -1;
		strcpy(cfg->users[cfg->nusers++], val);
		return 0;
	}
	return -1;
}

static const struct opt *find_opt(const char *name)
{
	for (size_t i = 0; i < HD_ARRAY_LEN(opts); i++)
		if (!strcmp(opts[i].name, name))
			return &opts[i];
	return NULL;
}

static int config_ini_line(void *user, const char *section, const char *name, const char *value)
{
	const struct opt *o = find_opt(name);

	(void)section;
	if (!o) {
		fprintf(stderr, "herald: config: unknown setting '%s'\n", name);
		return 0;
	}
	if (set_opt(user, o, value)) {
		fprintf(stderr, "herald: config: bad value for '%s': %s\n", name, value);
		return 0;
	}
	return 1;
}

/* Lists every option with its current value (the defaults, plus --config's if it came first). */
static void print_help(const struct herald_config *cur)
{
	const struct herald_config d = *cur;
	char val[64];

	printf("usage: herald [--config FILE] [--OPTION VALUE ...] [--version] [--help]\n"
	       "Every option may also be set as `name = value` in the INI config file.\n\n");
	for (size_t i = 0; i < HD_ARRAY_LEN(opts); i++) {
		const struct opt *o = &opts[i];
		const char *field = (const char *)&d + o->off;

		switch (o->type) {
		case OPT_STR: snprintf(val, sizeof(val), "%s", field); break;
		case OPT_U16: snprintf(val, sizeof(val), "%u", *(const uint16_t *)field); break;
		case OPT_U32: snprintf(val, sizeof(val), "%u", *(const uint32_t *)field); break;
		case OPT_U64: snprintf(val, sizeof(val), "%llu",
				       (unsigned long long)*(const uint64_t *)field); break;
		case OPT_BOOL: snprintf(val, sizeof(val), "%s", *(const bool *)field ? "true" : "false"); break;
		case OPT_LOG: snprintf(val, sizeof(val), "info"); break;
		case OPT_JOIN: snprintf(val, sizeof(val), "none"); break;
		case OPT_USER: snprintf(val, sizeof(val), "none"); break;
		}
		printf("  --%-20s %s (default: %s)\n", o->name, o->help, val[0] ? val : "\"\"");
	}
}

int config_load(struct herald_config *cfg, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			print_help(cfg);
			return 1;
		}
		if (!strcmp(argv[i], "--version")) {
			printf("herald %s\n", HERALD_VERSION);
			return 1;
		}
		if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			int line = ini_parse(argv[i + 1], config_ini_line, cfg);

			if (line) {
				fprintf(stderr, "herald: config %s: error at line %d\n", argv[i + 1], line);
				return -1;
			}
		}
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *val;
		const struct opt *o;
		char name[64];
		const char *eq;

		if (strncmp(arg, "--", 2)) {
			fprintf(stderr, "herald: unexpected argument '%s' (see --help)\n", arg);
			return -1;
		}
		eq = strchr(arg, '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq ? eq - arg - 2 : (long)strlen(arg + 2)), arg + 2);
		if (!strcmp(name, "config")) {
			i++;
			continue;
		}
		o = find_opt(name);
		if (!o) {
			fprintf(stderr, "herald: unknown option --%s (see --help)\n", name);
			return -1;
		}
		if (eq)
			val = eq + 1;
		else if (o->type == OPT_BOOL && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)))
			val = "true";
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			fprintf(stderr, "herald: --%s needs a value\n", name);
			return -1;
		}
		if (set_opt(cfg, o, val)) {
			/* never echo a --user value: it holds a password */
			fprintf(stderr, "herald: bad value for --%s%s%s\n", name, o->type == OPT_USER ? "" : ": ",
				o->type == OPT_USER ? "" : val);
			return -1;
		}
	}
	return 0;
}
