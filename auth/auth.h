/*
 * auth/auth.h - who may connect (authentication), to which virtual host, and what they may
 * subscribe and send to (authorization). Formats and defaults: docs/auth.md.
 *
 * Pieces: users.h (users file, argon2id), jwt.h (token logins), acl.h (rules),
 * auth_cache.h (remembered credentials), auth_ratelimit.h (failed-login delays). This file
 * joins them behind the calls the server makes:
 *
 *   main, at start:   auth_static_users_create() once (hashes --user and the default user),
 *                     auth_db_create() -> one auth_db, a reference given to every shard.
 *   main, on SIGHUP:  auth_db_create() again; on success a reference to the new db goes to
 *                     each shard (an xmsg), which swaps its pointer and unrefs the old one.
 *                     On failure the old db stays and the error is logged.
 *   shard, CONNECT:   auth_connect(). AUTH_OK: keep the identity in the session, arm the
 *                     expiry timer if auth_identity_ms_left() >= 0. AUTH_DENIED: send the
 *                     ERROR after delay_ms, then close. AUTH_SLOW: hand result.job to the
 *                     auth thread and stop reading from the connection.
 *   auth thread:      auth_job_run(job) (argon2id, tens of ms), then send the job back.
 *   shard, job back:  auth_job_finish() -> AUTH_OK or AUTH_DENIED as above; if the
 *                     connection went away meanwhile, auth_job_destroy() instead.
 *   shard, SUBSCRIBE and SEND: auth_authorize() with the shard's current db; a denial gets
 *                     an ERROR with auth_verdict_format()'s text, then close.
 *   shard, session end: auth_identity_destroy().
 *
 * Reload and threads: an auth_db is immutable after creation and refcounted; shards, jobs
 * and the main thread each hold references. A session does not pin a db: its identity is a
 * standalone copy (name, vhost, tags, token scopes) fixed at CONNECT, and each frame is
 * checked against the db its shard holds now, so new rules apply to live sessions at their
 * next SUBSCRIBE/SEND while changed passwords or tags apply at the next CONNECT (a reload
 * drops no connection). struct auth_shard is per-shard caller storage, never shared.
 */
#ifndef AUTH_AUTH_H
#define AUTH_AUTH_H

#include "auth/acl.h"
#include "auth/auth_cache.h"
#include "auth/auth_ratelimit.h"
#include "auth/jwt.h"
#include "auth/users.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- configuration ---- */

struct auth_settings {
	const char *vhosts;			/* comma list of virtual hosts; NULL or "": "/" */
	const char *users_file;			/* NULL or "": no users file */
	const char *rules_file;			/* NULL or "": the built-in rules (acl.h) */
	const struct users_table *static_users;	/* auth_static_users_create()'s; may be NULL */
	const char *jwt_hs256_secret;		/* HS256 secret text; NULL or "": see file */
	const char *jwt_hs256_secret_file;	/* file holding it (one trailing newline dropped) */
	const char *jwt_rs256_key_file;		/* PEM public key: RS256 accepted */
	const char *jwt_es256_key_file;		/* PEM public key (P-256): ES256 accepted */
	const char *jwt_audience;		/* when set, tokens' aud must contain it */
	const char *jwt_issuer;			/* when set, tokens' iss must equal it */
	uint32_t jwt_leeway_s;			/* clock skew allowed on exp/nbf (<= 3600) */
};

/* Builds the users that do not come from the users file, hashing each password now
 * (argon2id at `cost`; ~50-100 ms each at USERS_COST_INTERACTIVE, so main thread at start):
 *   specs[0..n): "NAME:PASSWORD[:TAG,...]" from --user; everything between the first ':'
 *     and the last one is the password when there are three fields or more, so a password
 *     holding ':' is written "NAME:PA:SS:" (empty tag list). Vhosts: every vhost.
 *   default_user/default_pass: the built-in user (guest/guest), tag administrator, every
 *     vhost, loopback-only when default_loopback_only; NULL or "" default_user: none.
 * A users-file entry replaces the default user of the same name; a --user entry replaces
 * both. Returns 0 with *out set, or -EINVAL with a reason in err[0..cap) (never the
 * password). */
int auth_static_users_create(const char *const *specs, size_t n, const char *default_user,
			     const char *default_pass, bool default_loopback_only,
			     enum users_cost cost, struct users_table **out, char *err, size_t cap);

/* ---- the database a shard checks against ---- */

struct auth_db;

/* Reads the users and rules files and the JWT keys named by s into a new db holding one
 * reference (the caller's). Does no hashing; main thread. Returns 0 with *out set, or a
 * negative errno with a one-line reason (file, line, what) in err[0..cap). s->static_users
 * is copied; the caller keeps it. */
int auth_db_create(const struct auth_settings *s, struct auth_db **out, char *err, size_t cap);

/* Another reference (any thread; relaxed atomic increment). Returns db. */
struct auth_db *auth_db_ref(struct auth_db *db);
/* Drops a reference; the last one frees the db (any thread). NULL is ignored. */
void auth_db_unref(struct auth_db *db);

/* Increases with every auth_db_create() in the process. */
uint64_t auth_db_generation(const struct auth_db *db);
/* True when vhost[0..len) is one of the configured virtual hosts. */
bool auth_db_has_vhost(const struct auth_db *db, const char *vhost, size_t len);
/* The configured virtual hosts, a normalized comma list. */
const char *auth_db_vhosts(const struct auth_db *db);
/* Users known by password (users file, --user, default user). */
size_t auth_db_user_count(const struct auth_db *db);

/* ---- per-shard state ---- */

#define AUTH_INFLIGHT_MAX 32

struct auth_shard {
	struct auth_cache cache;	/* credentials verified on this shard */
	struct auth_ratelimit rl;	/* failures per source address seen by this shard */
	/* digests (auth_cache_digest) of known users' credentials on the auth thread now: the
	 * same login arriving meanwhile waits for that answer (AUTH_RETRY) instead of paying
	 * argon2id again, so a reconnect storm costs one slow check per shard */
	uint8_t inflight[AUTH_INFLIGHT_MAX][crypto_generichash_BYTES];
	uint32_t ninflight;
	uint64_t logins_ok;
	uint64_t logins_failed;
	uint64_t slow_checks;		/* jobs handed to the auth thread */
	uint64_t cache_hits;
	uint64_t check_waits;		/* AUTH_RETRY: the address had max_pending checks in
					 * flight (each attempt counts, a waiting login retries) */
};

void auth_shard_init(struct auth_shard *as);
void auth_shard_fini(struct auth_shard *as);

/* ---- CONNECT ---- */

enum auth_method {
	AUTH_METHOD_PASSWORD = 1,
	AUTH_METHOD_JWT = 2,
	AUTH_METHOD_CERT = 3,	/* a verified TLS client certificate's CN (ssl_cert_login) */
};

/* Who a session is, fixed at CONNECT; owned by the session (auth_identity_destroy). */
struct auth_identity {
	char user[USERS_NAME_MAX + 1];
	char vhost[USERS_VHOST_MAX + 1];
	const char *tags;		/* normalized comma list; "" for none */
	uint32_t tag_bits;		/* enum users_tag_bit */
	enum auth_method method;
	int64_t expires_unix_ms;	/* JWT exp (+ leeway) in Unix ms; 0: never */
	/* a JWT's herald_sub / herald_send claims: when present they replace the rules */
	bool sub_scoped;
	bool send_scoped;
	uint8_t nsub;
	uint8_t nsend;
	const char **sub_scope;		/* nsub patterns, in the same allocation */
	const char **send_scope;	/* nsend patterns, in the same allocation */
	/* strings follow in the same allocation */
};

void auth_identity_destroy(struct auth_identity *id);

/* Milliseconds until the identity expires (0 when it already has), or -1 when it never
 * does. The server closes the connection with an ERROR ("Token expired") at that point;
 * Unix time in, so convert once: deadline_ms = now_ms + auth_identity_ms_left(...). */
int64_t auth_identity_ms_left(const struct auth_identity *id, int64_t now_unix_ms);

/* What CONNECT carried. Views into the frame; auth_connect copies what it keeps. */
struct auth_request {
	const char *login;		/* NULL when the header is absent */
	size_t login_len;
	const char *passcode;		/* a password or a JWT; NULL when absent */
	size_t passcode_len;
	const char *vhost;		/* the host header; NULL means "/" */
	size_t vhost_len;
	const struct sockaddr *peer;	/* client address: loopback check and rate limit */
	const char *cert_name;		/* CN of the client certificate TLS verified, when
					 * certificate login is on; else NULL */
	uint64_t now_ms;		/* monotonic (cache expiry, rate limit) */
	int64_t now_unix_ms;		/* wall clock (JWT exp and nbf) */
};

enum auth_status {
	AUTH_OK = 0,		/* logged in: identity set */
	AUTH_DENIED = 1,	/* refused: send ERROR(message, detail) after delay_ms, close */
	AUTH_SLOW = 2,		/* password needs argon2id: run job on the auth thread */
	AUTH_RETRY = 3,		/* this address has max_pending checks in flight already: ask
				 * auth_connect again after delay_ms (a burst of real logins
				 * from one address, e.g. behind NAT, waits; it is not refused) */
};

struct auth_job;

struct auth_result {
	enum auth_status status;
	struct auth_identity *identity;	/* AUTH_OK: the caller owns it */
	struct auth_job *job;		/* AUTH_SLOW: the caller owns it (finish or destroy) */
	uint32_t delay_ms;		/* AUTH_DENIED: hold the ERROR back this long */
	const char *log_reason;		/* AUTH_DENIED: for the server log; static, no secrets */
	const char *message;		/* AUTH_DENIED: ERROR `message` header ("Access refused") */
	char detail[200];		/* AUTH_DENIED: ERROR body; names no secret */
};

/* First look at a CONNECT, on its shard; never blocks and never runs argon2id.
 *   - no login header and a cert_name: that user, if it exists, without a password
 *     (RabbitMQ's ssl_cert_login); its tags, virtual hosts and rules apply as for a password
 *     login; an unknown name is AUTH_DENIED and counted as a failure;
 *   - a passcode shaped like a JWT, when a JWT key is configured: verified here
 *     (microseconds), AUTH_OK or AUTH_DENIED;
 *   - a password whose (user, password) this shard verified before: AUTH_OK from the cache;
 *   - a default user refused off loopback, a malformed login, or an address blocked by the
 *     rate limiter for its failures: AUTH_DENIED;
 *   - an address with max_pending checks already in flight: AUTH_RETRY (call again after
 *     delay_ms; nothing counted, the credentials are not looked at further);
 *   - otherwise AUTH_SLOW (also for unknown users, which are checked against a dummy hash so
 *     that the answer takes as long as for a real one).
 * Failures are counted per address in as->rl and delayed accordingly. The virtual host is
 * checked after the credentials: unknown or not allowed gives AUTH_DENIED without delay. */
void auth_connect(const struct auth_db *db, struct auth_shard *as, const struct auth_request *rq,
		  struct auth_result *out);

/* The slow check, on the auth thread: argon2id verify of the job's password. The job holds
 * its own db reference and copies of everything, so it may outlive the session. */
void auth_job_run(struct auth_job *job);

/* Back on the shard that created the job, after auth_job_run: remembers a good password in
 * the cache, counts a bad one, and fills *out (AUTH_OK or AUTH_DENIED) as auth_connect
 * does. Consumes the job. */
void auth_job_finish(struct auth_job *job, struct auth_shard *as, uint64_t now_ms,
		     struct auth_result *out);

/* Drops a job without finishing it (its connection closed meanwhile); any thread that owns
 * the job, but call on its shard if it was begun there (it settles the rate limiter's
 * in-flight count when as is not NULL). Wipes the password copy. */
void auth_job_destroy(struct auth_job *job, struct auth_shard *as, uint64_t now_ms);

/* One word of the caller's, carried by the job (e.g. the connection's slot and generation,
 * to find the session again when the job comes back). */
void auth_job_set_cookie(struct auth_job *job, uint64_t cookie);
uint64_t auth_job_cookie(const struct auth_job *job);

/* ---- the admin endpoint (docs/operations.md "Admin endpoint credentials") ---- */

enum auth_admin {
	AUTH_ADMIN_OK = 0,		/* a password user with the administrator tag */
	AUTH_ADMIN_NOT_ADMIN = 1,	/* right password, no administrator tag */
	AUTH_ADMIN_DENIED = 2,		/* unknown user or wrong password */
};

/* Checks an HTTP Basic login against db's password users (users file, --user, default
 * user): argon2id, tens of milliseconds, so a thread that may block (never a shard or the
 * cluster thread). *loopback_only tells the caller the user may only log in from loopback
 * (the default user), which it checks against the request's address. Any thread. */
enum auth_admin auth_check_admin(const struct auth_db *db, const char *user, size_t user_len,
				 const char *pass, size_t pass_len, bool *loopback_only);

/* ---- SUBSCRIBE and SEND ---- */

struct auth_verdict {
	bool allowed;
	uint32_t rule_line;	/* rules-file line that decided; 0: built-in, token, none */
	const char *why;	/* static: "administrator", "denied by rule", ... */
};

/* May id perform a (ACL_SUBSCRIBE or ACL_SEND) on dest[0..len)? Administrator: yes. A
 * token with herald_sub (herald_send) claims: exactly what they allow. Otherwise the rules
 * of db for id->vhost. Pure; the shard's thread; O(rules * words). Returns v->allowed. */
bool auth_authorize(const struct auth_db *db, const struct auth_identity *id, enum acl_action a,
		    const char *dest, size_t len, struct auth_verdict *v);

/* The ERROR text for a denial: "user 'jack' may not subscribe to '/queue/rose' in virtual
 * host '/' (no rule allows it)"; the destination is cut at 200 bytes (on a UTF-8 boundary)
 * and control characters become '?'. Returns the length written (NUL added). */
size_t auth_verdict_format(const struct auth_verdict *v, const struct auth_identity *id,
			   enum acl_action a, const char *dest, size_t len, char *buf, size_t cap);

#endif
