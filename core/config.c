/*
 * core/config.c - one table of options serves the INI file, the flags and --help, so a
 * setting cannot exist in one and not the others. Main adds the tables of the modules core
 * does not know (the cluster's) through config_load's `extra`.
 */
#include "core/config.h"

#include "core/base/hd_log.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An option found by name, with the struct it writes into. */
struct found_opt {
	const struct config_option *o;
	void *base;
};

#define C(field) offsetof(struct herald_config, field), sizeof(((struct herald_config *)0)->field)
static const struct config_option opts[] = {
	{ "bind", CONFIG_STR, C(bind_addr), "address for client listeners", NULL },
	{ "stomp-port", CONFIG_U16, C(stomp_port), "STOMP over TCP port (0: pick a free one)", NULL },
	{ "ws-port", CONFIG_U16, C(ws_port), "STOMP over WebSocket port (0: pick a free one)", NULL },
	{ "ws-path", CONFIG_STR, C(ws_path), "WebSocket endpoint path", NULL },
	{ "ws-origins", CONFIG_STR, C(ws_origins),
	  "comma-separated Origins allowed to open WebSockets (e.g. https://app.example); empty: any", NULL },
	{ "tls-cert", CONFIG_STR, C(tls_cert),
	  "PEM certificate chain for the TLS listeners (with --tls-key: turns them on)", NULL },
	{ "tls-key", CONFIG_STR, C(tls_key), "PEM private key of --tls-cert", NULL },
	{ "tls-ca", CONFIG_STR, C(tls_ca),
	  "PEM CA file: clients may present a certificate, which must chain to it", NULL },
	{ "tls-require-client-cert", CONFIG_BOOL, C(tls_require_client_cert),
	  "with --tls-ca: refuse TLS clients without a certificate", NULL },
	{ "tls-cert-login", CONFIG_BOOL, C(tls_cert_login),
	  "CONNECT without login over TLS: the client certificate's CN is the user", NULL },
	{ "tls-port", CONFIG_U16, C(tls_port), "STOMP over TLS port (0: pick a free one)", NULL },
	{ "wss-port", CONFIG_U16, C(wss_port),
	  "STOMP over secure WebSocket port (0: pick a free one)", NULL },
	{ "io", CONFIG_STR, C(io),
	  "I/O backend: io_uring, epoll, or auto (io_uring when the kernel and seccomp allow it)", NULL },
	{ "shards", CONFIG_U32, C(shards), "shard threads (0: one per online CPU)", NULL },
	{ "node-name", CONFIG_STR, C(node_name), "node name (default: hostname:stomp-port)", NULL },
	{ "log-level", CONFIG_LOG, C(log_level), "error, warn, info or debug", NULL },
	{ "vhosts", CONFIG_STR, C(vhosts), "comma-separated virtual hosts (CONNECT's host header)", NULL },
	{ "users-file", CONFIG_STR, C(users_file), "users file written by `heraldctl user` (docs/auth.md)", NULL },
	{ "rules-file", CONFIG_STR, C(rules_file), "authorization rules file (docs/auth.md); none: built-in defaults", NULL },
	{ "user", CONFIG_USER, C(users), "NAME:PASSWORD[:TAG,...] quick-start user (repeatable)", NULL },
	{ "jwt-hs256-secret-file", CONFIG_STR, C(jwt_hs256_secret_file), "file with the HS256 secret: passcodes may be JWTs", NULL },
	{ "jwt-rs256-key-file", CONFIG_STR, C(jwt_rs256_key_file), "PEM public key for RS256 JWTs", NULL },
	{ "jwt-es256-key-file", CONFIG_STR, C(jwt_es256_key_file), "PEM public key for ES256 JWTs", NULL },
	{ "jwt-audience", CONFIG_STR, C(jwt_audience), "required JWT aud", NULL },
	{ "jwt-issuer", CONFIG_STR, C(jwt_issuer), "required JWT iss", NULL },
	{ "jwt-leeway-s", CONFIG_U32, C(jwt_leeway_s), "clock skew allowed on JWT exp/nbf, seconds", NULL },
	{ "default-user", CONFIG_STR, C(default_user), "built-in user (loopback only)", NULL },
	{ "default-pass", CONFIG_STR, C(default_pass), "built-in user's password", NULL },
	{ "heartbeat-min-ms", CONFIG_U32, C(limits.heartbeat_min_ms), "shortest heart-beat interval honoured", NULL },
	{ "max-frame-bytes", CONFIG_U64, C(limits.max_frame_bytes), "largest STOMP frame", NULL },
	{ "max-headers", CONFIG_U32, C(limits.max_headers), "header lines per frame", NULL },
	{ "max-header-line", CONFIG_U32, C(limits.max_header_line), "bytes per header line", NULL },
	{ "max-body-bytes", CONFIG_U64, C(limits.max_body_bytes), "largest frame body", NULL },
	{ "max-outbound-bytes", CONFIG_U64, C(limits.max_outbound_bytes),
	  "send backlog per connection before a topic subscriber is dropped as slow", NULL },
	{ "queue-replicas", CONFIG_U32, C(queue_replicas),
	  "nodes that hold each queue's messages (owner + backups; fewer while the cluster has "
	  "fewer nodes; 1: no copies)", NULL },
	{ "max-queue-length", CONFIG_U32, C(limits.max_queue_length), "ready messages per queue", NULL },
	{ "max-connections", CONFIG_U32, C(limits.max_connections), "connections per node", NULL },
	{ "max-subscriptions", CONFIG_U32, C(limits.max_subscriptions), "subscriptions per connection", NULL },
	{ "memory-high-water", CONFIG_U64, C(limits.memory_high_water),
	  "allocated bytes above which SENDs are refused", NULL },
	{ "max-tx-frames", CONFIG_U32, C(limits.max_tx_frames), "frames held in one transaction", NULL },
	{ "max-transactions", CONFIG_U32, C(limits.max_transactions),
	  "open transactions per connection", NULL },
	{ "max-destination-bytes", CONFIG_U32, C(limits.max_destination_bytes),
	  "longest destination name (RabbitMQ's limit is 255 too)", NULL },
	{ "connect-timeout-ms", CONFIG_U32, C(limits.connect_timeout_ms), "time to send CONNECT", NULL },
};
#undef C

void config_defaults(struct herald_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->bind_addr, "0.0.0.0");
	cfg->stomp_port = 61613;
	cfg->ws_port = 15674;
	strcpy(cfg->ws_path, "/ws");
	cfg->tls_port = 61614;
	cfg->wss_port = 15673;
	strcpy(cfg->io, "auto");
	cfg->log_level = HD_LOG_INFO;
	cfg->queue_replicas = 2;
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

static int set_opt(struct herald_config *cfg, const struct found_opt *f, const char *val)
{
	const struct config_option *o = f->o;
	char *field = (char *)f->base + o->off;
	uint64_t v;
	int lvl;

	switch (o->type) {
	case CONFIG_STR:
		if (strlen(val) >= o->size)
			return -1;
		strcpy(field, val);
		return 0;
	case CONFIG_U16:
		if (parse_u64(val, UINT16_MAX, &v))
			return -1;
		*(uint16_t *)field = (uint16_t)v;
		return 0;
	case CONFIG_U32:
		if (parse_u64(val, UINT32_MAX, &v))
			return -1;
		*(uint32_t *)field = (uint32_t)v;
		return 0;
	case CONFIG_U64:
		if (parse_u64(val, UINT64_MAX, &v))
			return -1;
		*(uint64_t *)field = v;
		return 0;
	case CONFIG_BOOL:
		if (!strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "yes"))
			*(bool *)field = true;
		else if (!strcmp(val, "false") || !strcmp(val, "0") || !strcmp(val, "no"))
			*(bool *)field = false;
		else
			return -1;
		return 0;
	case CONFIG_LOG:
		lvl = hd_log_level_parse(val);
		if (lvl < 0)
			return -1;
		*(int *)field = lvl;
		return 0;
	case CONFIG_CALL:
		return o->set(f->base, val);
	case CONFIG_USER:
		if (cfg->nusers == HD_ARRAY_LEN(cfg->users) || strlen(val) >= sizeof(cfg->users[0]))
			return -1;
		strcpy(cfg->users[cfg->nusers++], val);
		return 0;
	}
	return -1;
}

/* The core's own table, then the caller's (config_load's `extra`). */
static const struct config_options *extra_opts;

static bool find_opt(struct herald_config *cfg, const char *name, struct found_opt *out)
{
	for (size_t i = 0; i < HD_ARRAY_LEN(opts); i++) {
		if (!strcmp(opts[i].name, name)) {
			*out = (struct found_opt){ &opts[i], cfg };
			return true;
		}
	}
	for (size_t i = 0; extra_opts && i < extra_opts->n; i++) {
		if (!strcmp(extra_opts->opt[i].name, name)) {
			*out = (struct found_opt){ &extra_opts->opt[i], extra_opts->base };
			return true;
		}
	}
	return false;
}

static int config_ini_line(void *user, const char *section, const char *name, const char *value)
{
	struct found_opt o;

	(void)section;
	if (!find_opt(user, name, &o)) {
		fprintf(stderr, "herald: config: unknown setting '%s'\n", name);
		return 0;
	}
	if (set_opt(user, &o, value)) {
		fprintf(stderr, "herald: config: bad value for '%s': %s\n", name, value);
		return 0;
	}
	return 1;
}

/* What SIGHUP applies without a restart (config_option_is_runtime): every limit, the log
 * level, and what authentication reads. Certificates join when TLS lands (issue 14). */
static const char *const runtime_names[] = {
	"log-level", "vhosts", "users-file", "rules-file", "user", "jwt-hs256-secret-file",
	"jwt-rs256-key-file", "jwt-es256-key-file", "jwt-audience", "jwt-issuer", "jwt-leeway-s",
	"default-user", "default-pass",
};

static bool is_core_option(const struct config_option *o)
{
	for (size_t i = 0; i < HD_ARRAY_LEN(opts); i++)
		if (o == &opts[i])
			return true;
	return false;
}

bool config_option_is_runtime(const struct config_option *o)
{
	const size_t lim = offsetof(struct herald_config, limits);

	if (!is_core_option(o))
		return false;	/* the cluster's: ports, names, keys, admin endpoint */
	if (o->off >= lim && o->off < lim + sizeof(struct hd_limits))
		return true;
	for (size_t i = 0; i < HD_ARRAY_LEN(runtime_names); i++)
		if (!strcmp(o->name, runtime_names[i]))
			return true;
	return false;
}

static bool option_differs(const struct config_option *o, const void *a, const void *b)
{
	const char *fa = (const char *)a + o->off;
	const char *fb = (const char *)b + o->off;

	if (o->type == CONFIG_STR)
		return strncmp(fa, fb, o->size) != 0;
	if (o->type == CONFIG_USER &&
	    ((const struct herald_config *)a)->nusers != ((const struct herald_config *)b)->nusers)
		return true;
	return memcmp(fa, fb, o->size) != 0;
}

void config_each_change(const struct herald_config *a, const void *extra_a,
			const struct herald_config *b, const void *extra_b,
			config_change_fn fn, void *arg)
{
	for (size_t i = 0; i < HD_ARRAY_LEN(opts); i++)
		if (option_differs(&opts[i], a, b))
			fn(arg, &opts[i], a, b);
	for (size_t i = 0; extra_opts && i < extra_opts->n; i++)
		if (option_differs(&extra_opts->opt[i], extra_a, extra_b))
			fn(arg, &extra_opts->opt[i], extra_a, extra_b);
}

const char *config_format_value(const struct config_option *o, const void *base, char *buf,
				size_t cap)
{
	const char *field = (const char *)base + o->off;

	switch (o->type) {
	case CONFIG_U16: snprintf(buf, cap, "%u", *(const uint16_t *)field); break;
	case CONFIG_U32: snprintf(buf, cap, "%u", *(const uint32_t *)field); break;
	case CONFIG_U64: snprintf(buf, cap, "%llu",
				  (unsigned long long)*(const uint64_t *)field); break;
	case CONFIG_BOOL: snprintf(buf, cap, "%s", *(const bool *)field ? "true" : "false"); break;
	case CONFIG_LOG: snprintf(buf, cap, "%s", hd_log_level_name(*(const int *)field)); break;
	default:
		return NULL;	/* strings may be secrets (default-pass, --user) */
	}
	return buf;
}

void config_take_runtime(struct herald_config *dst, const struct herald_config *src)
{
	for (size_t i = 0; i < HD_ARRAY_LEN(opts); i++) {
		const struct config_option *o = &opts[i];

		if (!config_option_is_runtime(o))
			continue;
		memcpy((char *)dst + o->off, (const char *)src + o->off, o->size);
		if (o->type == CONFIG_USER)
			dst->nusers = src->nusers;
	}
}

const char *config_file_of(int argc, char **argv)
{
	const char *file = NULL;

	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--config"))
			file = argv[i + 1];
	return file;
}

static void print_option(const struct config_option *o, const void *base)
{
	const char *field = (const char *)base + o->off;
	char val[64];

	switch (o->type) {
	case CONFIG_STR: snprintf(val, sizeof(val), "%s", field); break;
	case CONFIG_U16: snprintf(val, sizeof(val), "%u", *(const uint16_t *)field); break;
	case CONFIG_U32: snprintf(val, sizeof(val), "%u", *(const uint32_t *)field); break;
	case CONFIG_U64: snprintf(val, sizeof(val), "%llu",
				  (unsigned long long)*(const uint64_t *)field); break;
	case CONFIG_BOOL: snprintf(val, sizeof(val), "%s", *(const bool *)field ? "true" : "false"); break;
	case CONFIG_LOG: snprintf(val, sizeof(val), "info"); break;
	case CONFIG_CALL: snprintf(val, sizeof(val), "none"); break;
	case CONFIG_USER: snprintf(val, sizeof(val), "none"); break;
	}
	printf("  --%-20s %s (default: %s)\n", o->name, o->help, val[0] ? val : "\"\"");
}

/* Lists every option with its current value (the defaults, plus --config's if it came first). */
static void print_help(const struct herald_config *cur)
{
	printf("usage: herald [--config FILE] [--OPTION VALUE ...] [--version] [--help]\n"
	       "Every option may also be set as `name = value` in the INI config file.\n\n");
	for (size_t i = 0; i < HD_ARRAY_LEN(opts); i++)
		print_option(&opts[i], cur);
	for (size_t i = 0; extra_opts && i < extra_opts->n; i++)
		print_option(&extra_opts->opt[i], extra_opts->base);
}

int config_load(struct herald_config *cfg, const struct config_options *extra, int argc,
		char **argv)
{
	extra_opts = extra;
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
		struct found_opt o;
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
		if (!find_opt(cfg, name, &o)) {
			fprintf(stderr, "herald: unknown option --%s (see --help)\n", name);
			return -1;
		}
		if (eq)
			val = eq + 1;
		else if (o.o->type == CONFIG_BOOL && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)))
			val = "true";
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			fprintf(stderr, "herald: --%s needs a value\n", name);
			return -1;
		}
		if (set_opt(cfg, &o, val)) {
			/* never echo a --user value: it holds a password */
			fprintf(stderr, "herald: bad value for --%s%s%s\n", name, o.o->type == CONFIG_USER ? "" : ": ",
				o.o->type == CONFIG_USER ? "" : val);
			return -1;
		}
	}
	return 0;
}
