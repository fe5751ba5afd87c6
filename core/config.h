/*
 * core/config.h - the server's configuration: embedded defaults, an INI file (libinih),
 * then command-line flags, in that order of precedence (last wins). Main thread only;
 * shards get a read-only copy before they start.
 */
#ifndef CORE_CONFIG_H
#define CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default frame limits: what real brokers accept (see config_defaults) */
#define CONFIG_DEFAULT_MAX_BODY (64ull << 20)		/* bytes */
#define CONFIG_DEFAULT_MAX_HEADERS 1000			/* header lines per frame */
#define CONFIG_DEFAULT_MAX_HEADER_LINE (10u << 10)	/* bytes */

struct hd_limits {
	uint64_t max_frame_bytes;	/* whole STOMP frame */
	uint32_t max_headers;		/* header lines per frame */
	uint32_t max_header_line;	/* bytes in one header line */
	uint64_t max_body_bytes;	/* frame body */
	uint64_t max_outbound_bytes;	/* queued for one connection before slow-consumer */
	uint32_t max_queue_length;	/* ready messages per queue; SEND over it: ERROR */
	uint32_t max_connections;	/* per node */
	uint32_t max_subscriptions;	/* per connection */
	uint64_t memory_high_water;	/* bytes allocated; above it SENDs are refused */
	uint32_t max_tx_frames;		/* frames buffered in one transaction */
	uint32_t max_transactions;	/* open transactions per connection */
	uint32_t max_destination_bytes;	/* longest destination name (topic matching cost) */
	uint32_t heartbeat_min_ms;	/* shortest heart-beat interval honoured */
	uint32_t connect_timeout_ms;	/* time allowed between accept and CONNECT */
};

struct herald_config {
	char bind_addr[64];
	uint16_t stomp_port;
	uint16_t ws_port;
	char ws_path[128];
	char ws_origins[1024];		/* comma-separated allowed Origins; "" = any */
	uint32_t shards;		/* 0: online CPUs */
	char node_name[128];
	int log_level;
	char vhosts[512];		/* comma-separated virtual hosts; "/" by default */
	char users_file[256];		/* users file (heraldctl user ...); "" = none */
	char rules_file[256];		/* authorization rules; "" = the built-in defaults */
	char users[16][160];		/* --user NAME:PASSWORD[:TAG,...] (repeatable) */
	uint32_t nusers;
	char jwt_hs256_secret_file[256];
	char jwt_rs256_key_file[256];
	char jwt_es256_key_file[256];
	char jwt_audience[128];
	char jwt_issuer[128];
	uint32_t jwt_leeway_s;
	char default_user[64];		/* guest */
	char default_pass[64];
	bool default_user_loopback_only;
	struct hd_limits limits;
	/* TLS client listeners (core/tlsconf.c): off unless tls_cert and tls_key are set */
	char tls_cert[256];		/* PEM certificate chain */
	char tls_key[256];		/* PEM private key */
	char tls_ca[256];		/* PEM CAs client certificates must chain to; "": none asked */
	bool tls_require_client_cert;	/* with tls_ca: refuse clients without a certificate */
	bool tls_cert_login;		/* CONNECT without login: the certificate's CN logs in */
	uint16_t tls_port;		/* STOMP over TLS (RabbitMQ's stomp.listeners.ssl: 61614) */
	uint16_t wss_port;		/* STOMP over secure WebSocket (Web-STOMP TLS: 15673) */
	char io[16];			/* --io: auto, io_uring or epoll */
	int io_backend;			/* enum net_io main resolved --io to */
	uint32_t queue_replicas;	/* nodes holding each queue (docs/replication.md); 1: no
					 * copies */
};

/* One setting: `--name value` on the command line, `name = value` in the INI file. */
enum config_opt_type {
	CONFIG_STR, CONFIG_U16, CONFIG_U32, CONFIG_U64, CONFIG_BOOL, CONFIG_LOG, CONFIG_USER,
	CONFIG_CALL,		/* set(base, value) parses it */
};

struct config_option {
	const char *name;
	enum config_opt_type type;
	size_t off;		/* of the field in the struct the table writes into */
	size_t size;		/* for strings: the field's size */
	const char *help;
	int (*set)(void *base, const char *value);	/* CONFIG_CALL: 0 or -1 */
};

/* A table of options a module outside core (the cluster) adds, writing into `base`. */
struct config_options {
	const struct config_option *opt;
	size_t n;
	void *base;
};

/* Embedded defaults (RabbitMQ's ports: STOMP 61613, WebSocket 15674 at /ws). The settings
 * of other modules (`extra` in config_load) keep the defaults their owner gave them. */
void config_defaults(struct herald_config *cfg);

/* Applies --config FILE (if given) then every flag, to cfg or, for the names in `extra`
 * (may be NULL), to extra->base. Returns 0, 1 when the caller should exit 0 (--help,
 * --version printed), or -1 after printing an error. Main thread. */
int config_load(struct herald_config *cfg, const struct config_options *extra, int argc,
		char **argv);

/* ---- SIGHUP: load again, compare, apply what may change at run time ---- */

/* True when a change to o applies without a restart: every limit (struct hd_limits), the
 * log level, and the settings authentication reads (users, rules, JWT keys, vhosts).
 * Options of `extra` tables never are. */
bool config_option_is_runtime(const struct config_option *o);

/* Called for one changed option; base_a/base_b: the structs its table writes into. */
typedef void (*config_change_fn)(void *arg, const struct config_option *o, const void *base_a,
				 const void *base_b);

/* Calls fn for every option, the core's and those of the `extra` table config_load was
 * last given, whose value differs between two loads: a (with extra_a, the extra table's
 * base for that load) and b (extra_b). Main thread. */
void config_each_change(const struct herald_config *a, const void *extra_a,
			const struct herald_config *b, const void *extra_b,
			config_change_fn fn, void *arg);

/* o's value in base as text in buf[0..cap) for a log line, or NULL for strings (which may
 * be secrets: default-pass, --user). */
const char *config_format_value(const struct config_option *o, const void *base, char *buf,
				size_t cap);

/* Copies every runtime option's value (config_option_is_runtime) from src into dst. */
void config_take_runtime(struct herald_config *dst, const struct herald_config *src);

/* The FILE of the last `--config FILE` in argv, or NULL. */
const char *config_file_of(int argc, char **argv);

#endif
