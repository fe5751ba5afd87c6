/*
 * core/tlsconf.c - the node's certificates for its TLS listeners and node links (see
 * tlsconf.h). The context itself, and everything TLS does on a connection, is net/tls.c's.
 */
#include "core/tlsconf.h"

#include "core/base/hd_log.h"
#include "core/shard.h"
#include "net/tls.h"

bool tlsconf_enabled(const struct herald_config *cfg)
{
	return cfg->tls_cert[0] || cfg->tls_key[0];
}

int tlsconf_load(const struct herald_config *cfg, struct shard **shards, uint32_t n)
{
	struct net_tls_config tc = {
		.cert_file = cfg->tls_cert,
		.key_file = cfg->tls_key,
		.ca_file = cfg->tls_ca,
		.require_client_cert = cfg->tls_require_client_cert,
	};
	struct net_tls_ctx *ctx;
	char err[400];

	if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
		hd_log_err("tls: --tls-cert and --tls-key go together (one of them is missing)");
		return -1;
	}
	if (cfg->tls_require_client_cert && !cfg->tls_ca[0]) {
		hd_log_err("tls: --tls-require-client-cert needs --tls-ca to check certificates");
		return -1;
	}
	if (net_tls_ctx_create(&tc, &ctx, err, sizeof(err))) {
		hd_log_err("tls: %s", err);
		return -1;
	}
	shard_publish_tls_ctx(shards, n, ctx);
	net_tls_ctx_unref(ctx);
	hd_log_info("tls: certificate %s, client certificates %s%s", cfg->tls_cert,
		    !cfg->tls_ca[0] ? "not asked for" :
		    cfg->tls_require_client_cert ? "required, CA " : "optional, CA ", cfg->tls_ca);
	return 0;
}

int tlsconf_route_ctx(const struct herald_config *cfg, struct net_tls_ctx **out)
{
	struct net_tls_config tc = {
		.cert_file = cfg->tls_cert,
		.key_file = cfg->tls_key,
		.ca_file = cfg->tls_ca,
		/* a node always has a certificate: with a CA, a link without one is refused */
		.require_client_cert = cfg->tls_ca[0] != '\0',
	};
	char err[400];

	if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
		hd_log_err("route tls: --route-tls needs this node's certificate: --tls-cert and "
			   "--tls-key");
		return -1;
	}
	if (net_tls_ctx_create(&tc, out, err, sizeof(err))) {
		hd_log_err("route tls: %s", err);
		return -1;
	}
	if (cfg->tls_ca[0])
		hd_log_info("route tls: certificate %s, peers' certificates checked against CA %s",
			    cfg->tls_cert, cfg->tls_ca);
	else
		hd_log_info("route tls: certificate %s, peers' certificates not checked (no "
			    "--tls-ca): links are encrypted against eavesdropping, the cluster key "
			    "alone proves membership", cfg->tls_cert);
	return 0;
}
