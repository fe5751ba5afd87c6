/*
 * auth/auth.c - the auth database (users, rules, JWT keys, vhosts) as one immutable,
 * refcounted snapshot; the CONNECT decision split into a shard-side fast path and an
 * auth-thread slow path; SUBSCRIBE/SEND decisions. Nothing here blocks a shard: argon2id
 * runs only in auth_job_run(), and file reading only in auth_db_create() on main.
 */
#include "auth/auth.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"
#include "core/base/hd_file.h"
#include "proto/utf8.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MAX_KEY_FILE (64 * 1024)

/* An argon2id hash of 32 random bytes nobody kept, at the interactive cost: unknown users
 * are checked against it so that they take as long to refuse as known ones. */
static const char dummy_hash[] =
	"$argon2id$v=19$m=65536,t=2,p=1$Sjf7aiqou/mmUs16rOsPbA$"
	"zvzzWNpTxtZtLbJdgzsGILOqFaXWrZ6oL7JrpmhwYfo";

static const char login_failed[] =
	"Login failed: wrong login or passcode, or this user may not connect from this address";

struct auth_db {
	_Atomic uint32_t refs;
	uint64_t generation;
	struct users_table *users;	/* default, file and --user users, merged */
	struct acl_rules *rules;
	struct jwt_keys *jwt;		/* NULL: no JWT key configured, passcodes are passwords */
	char vhosts[USERS_VHOSTS_MAX * (USERS_VHOST_MAX + 1)];
};

struct auth_job {
	struct auth_db *db;		/* a reference: the users the password is checked against */
	uint64_t cookie;
	bool known;			/* the user exists (else: dummy hash, always refused) */
	bool ok;			/* auth_job_run's answer */
	bool has_peer;
	bool inflight;			/* digest is in its shard's inflight list */
	uint8_t digest[crypto_generichash_BYTES];
	struct sockaddr_storage peer;
	char user[USERS_NAME_MAX + 1];
	char vhost[USERS_VHOST_MAX + 2];	/* one byte over the limit marks "too long" */
	size_t vhost_len;
	char hash[USERS_HASH_MAX + 1];
	size_t pass_len;
	char pass[];			/* wiped by auth_job_destroy */
};

static _Atomic uint64_t next_generation = 1;

/* ---- small helpers ---- */

static int failf(char *err, size_t cap, int rc, const char *fmt, const char *a, const char *b)
{
	if (cap)
		snprintf(err, cap, fmt, a, b);
	return rc;
}

/* Copies s[0..len) for a message: at most max bytes, whole UTF-8 characters, and control
 * characters (which could end a header line) as '?'. */
static void sanitize(char *out, size_t cap, const char *s, size_t len, size_t max)
{
	size_t n = HD_MIN(len, HD_MIN(max, cap - 1));

	if (n < len && utf8_is_valid(s, len))
		n = utf8_trim_partial(s, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[n] = '\0';
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_UNIX)
		return true;	/* a local socket: only this host can reach it */
	if (sa->sa_family == AF_INET)
		return ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24 == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

static size_t sockaddr_size(const struct sockaddr *sa)
{
	switch (sa->sa_family) {
	case AF_INET:
		return sizeof(struct sockaddr_in);
	case AF_INET6:
		return sizeof(struct sockaddr_in6);
	default:
		return sizeof(sa->sa_family);
	}
}

/* ---- static users ---- */

static int add_static(struct users_table *t, const char *name, const char *pass, size_t pass_len,
		      const char *tags, uint8_t source, bool loopback_only, enum users_cost cost,
		      char *err, size_t cap)
{
	char hash[USERS_HASH_MAX + 1];
	struct users_error uerr;
	const struct users_entry *old = users_table_find(t, name, strlen(name));
	struct users_entry e = { .name = name, .hash = hash, .tags = tags, .vhosts = "*",
				 .source = source, .loopback_only = loopback_only };

	if (old && old->source == source)
		return failf(err, cap, -EINVAL, "user '%s' given twice%s", name, "");
	if (users_hash_password(pass, pass_len, cost, hash))
		return failf(err, cap, -EINVAL, "user '%s': password empty, over 1024 bytes, "
				"or out of memory for hashing%s", name, "");
	if (users_table_add(t, &e, true, &uerr))
		return failf(err, cap, -EINVAL, "user '%s': %s", name, uerr.msg);
	return 0;
}

/* "NAME:PASSWORD[:TAGS]", the password running to the last ':' when there are tags. */
static int add_spec(struct users_table *t, const char *spec, enum users_cost cost, char *err,
		    size_t cap)
{
	const char *c1 = strchr(spec, ':');
	const char *c2 = c1 ? strrchr(c1 + 1, ':') : NULL;
	char name[USERS_NAME_MAX + 1];
	size_t pass_len;

	if (!c1 || (size_t)(c1 - spec) > USERS_NAME_MAX)
		return failf(err, cap, -EINVAL, "--user wants NAME:PASSWORD[:TAG,...]%s%s", "", "");
	memcpy(name, spec, (size_t)(c1 - spec));
	name[c1 - spec] = '\0';
	pass_len = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
	return add_static(t, name, c1 + 1, pass_len, c2 ? c2 + 1 : "", USERS_SRC_CLI, false, cost,
			  err, cap);
}

int auth_static_users_create(const char *const *specs, size_t n, const char *default_user,
			     const char *default_pass, bool default_loopback_only,
			     enum users_cost cost, struct users_table **out, char *err, size_t cap)
{
	struct users_table *t = users_table_create();
	int rc = 0;

	if (default_user && default_user[0])
		rc = add_static(t, default_user, default_pass ? default_pass : "",
				default_pass ? strlen(default_pass) : 0, "administrator",
				USERS_SRC_DEFAULT, default_loopback_only, cost, err, cap);
	for (size_t i = 0; i < n && !rc; i++)
		rc = add_spec(t, specs[i], cost, err, cap);
	if (rc) {
		users_table_destroy(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* ---- the db ---- */

static bool is_set(const char *s)
{
	return s && s[0];
}

static int load_pem(struct jwt_keys *k, const char *path, bool rsa, char *err, size_t cap)
{
	char msg[128];
	char *pem = NULL;
	size_t len = 0;
	int rc = hd_read_file(path, MAX_KEY_FILE, &pem, &len);

	if (rc)
		return failf(err, cap, rc, "cannot read JWT key %s: %s", path, strerror(-rc));
	rc = rsa ? jwt_keys_set_rs256_pem(k, pem, len, msg, sizeof(msg))
		 : jwt_keys_set_es256_pem(k, pem, len, msg, sizeof(msg));
	hd_free(pem);
	return rc ? failf(err, cap, rc, "%s: %s", path, msg) : 0;
}

static int load_secret(struct jwt_keys *k, const struct auth_settings *s, char *err, size_t cap)
{
	char msg[128];
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (is_set(s->jwt_hs256_secret)) {
		rc = jwt_keys_set_hs256(k, s->jwt_hs256_secret, strlen(s->jwt_hs256_secret), msg,
					sizeof(msg));
		return rc ? failf(err, cap, rc, "JWT secret: %s%s", msg, "") : 0;
	}
	rc = hd_read_file(s->jwt_hs256_secret_file, MAX_KEY_FILE, &buf, &len);
	if (rc)
		return failf(err, cap, rc, "cannot read JWT secret %s: %s",
			     s->jwt_hs256_secret_file, strerror(-rc));
	if (len && buf[len - 1] == '\n')
		len--;
	if (len && buf[len - 1] == '\r')
		len--;
	rc = jwt_keys_set_hs256(k, buf, len, msg, sizeof(msg));
	sodium_memzero(buf, len);
	hd_free(buf);
	return rc ? failf(err, cap, rc, "%s: %s", s->jwt_hs256_secret_file, msg) : 0;
}

static int load_jwt(struct auth_db *db, const struct auth_settings *s, char *err, size_t cap)
{
	char msg[128];
	int rc = 0;

	if (!is_set(s->jwt_hs256_secret) && !is_set(s->jwt_hs256_secret_file) &&
	    !is_set(s->jwt_rs256_key_file) && !is_set(s->jwt_es256_key_file))
		return 0;
	db->jwt = jwt_keys_create();
	if (is_set(s->jwt_hs256_secret) || is_set(s->jwt_hs256_secret_file))
		rc = load_secret(db->jwt, s, err, cap);
	if (!rc && is_set(s->jwt_rs256_key_file))
		rc = load_pem(db->jwt, s->jwt_rs256_key_file, true, err, cap);
	if (!rc && is_set(s->jwt_es256_key_file))
		rc = load_pem(db->jwt, s->jwt_es256_key_file, false, err, cap);
	if (!rc && jwt_keys_set_policy(db->jwt, s->jwt_audience, s->jwt_issuer, s->jwt_leeway_s,
				       msg, sizeof(msg)))
		rc = failf(err, cap, -EINVAL, "%s%s", msg, "");
	return rc;
}

/* Copies the entries of src from `source` into dst, replacing same-named ones. */
static int merge(struct users_table *dst, const struct users_table *src, int source, char *err,
		 size_t cap)
{
	struct users_error uerr;

	for (size_t i = 0; src && i < users_table_count(src); i++) {
		const struct users_entry *e = users_table_at(src, i);

		if (source >= 0 && e->source != source)
			continue;
		if (users_table_add(dst, e, true, &uerr))
			return failf(err, cap, -EINVAL, "user '%s': %s", e->name, uerr.msg);
	}
	return 0;
}

static int load_users(struct auth_db *db, const struct auth_settings *s, char *err, size_t cap)
{
	struct users_table *file = NULL;
	struct users_error uerr;
	int rc;

	db->users = users_table_create();
	rc = merge(db->users, s->static_users, USERS_SRC_DEFAULT, err, cap);
	if (!rc && is_set(s->users_file)) {
		file = users_table_create();
		rc = users_table_load(file, s->users_file, &uerr);
		if (rc && uerr.line && cap)
			snprintf(err, cap, "users file %s line %u: %s", s->users_file, uerr.line,
				 uerr.msg);
		else if (rc && cap)
			snprintf(err, cap, "%s", uerr.msg);
		if (!rc)
			rc = merge(db->users, file, -1, err, cap);
		users_table_destroy(file);
	}
	if (!rc)
		rc = merge(db->users, s->static_users, USERS_SRC_CLI, err, cap);
	return rc;
}

static int load_rules(struct auth_db *db, const struct auth_settings *s, char *err, size_t cap)
{
	struct acl_error aerr;
	int rc;

	if (!is_set(s->rules_file)) {
		db->rules = acl_rules_create_defaults();
		return 0;
	}
	rc = acl_rules_load(s->rules_file, &db->rules, &aerr);
	if (rc && aerr.line && cap)
		snprintf(err, cap, "rules file %s line %u: %s", s->rules_file, aerr.line, aerr.msg);
	else if (rc && cap)
		snprintf(err, cap, "%s", aerr.msg);
	return rc;
}

static void db_destroy(struct auth_db *db)
{
	users_table_destroy(db->users);
	acl_rules_destroy(db->rules);
	jwt_keys_destroy(db->jwt);
	hd_free(db);
}

int auth_db_create(const struct auth_settings *s, struct auth_db **out, char *err, size_t cap)
{
	struct auth_db *db = hd_calloc(1, sizeof(*db));
	const char *vh = is_set(s->vhosts) ? s->vhosts : "/";
	const char *why = NULL;
	int rc = 0;

	atomic_init(&db->refs, 1);
	if (!strcmp(vh, "*") ||
	    users_normalize_list(vh, strlen(vh), true, db->vhosts, sizeof(db->vhosts), &why) < 0)
		rc = failf(err, cap, -EINVAL, "vhosts '%s': %s", vh, why ? why : "`*` is not a name");
	if (!rc)
		rc = load_users(db, s, err, cap);
	if (!rc)
		rc = load_rules(db, s, err, cap);
	if (!rc)
		rc = load_jwt(db, s, err, cap);
	if (rc) {
		db_destroy(db);
		return rc;
	}
	db->generation = atomic_fetch_add_explicit(&next_generation, 1, memory_order_relaxed);
	*out = db;
	return 0;
}

struct auth_db *auth_db_ref(struct auth_db *db)
{
	/* relaxed: the caller already holds a reference, so the db cannot go away under us */
	atomic_fetch_add_explicit(&db->refs, 1, memory_order_relaxed);
	return db;
}

void auth_db_unref(struct auth_db *db)
{
	/* acq_rel: the last owner must see every other owner's reads finished before freeing */
	if (db && atomic_fetch_sub_explicit(&db->refs, 1, memory_order_acq_rel) == 1)
		db_destroy(db);
}

uint64_t auth_db_generation(const struct auth_db *db)
{
	return db->generation;
}

bool auth_db_has_vhost(const struct auth_db *db, const char *vhost, size_t len)
{
	return users_list_has(db->vhosts, vhost, len);
}

const char *auth_db_vhosts(const struct auth_db *db)
{
	return db->vhosts;
}

size_t auth_db_user_count(const struct auth_db *db)
{
	return users_table_count(db->users);
}

/* ---- per shard ---- */

void auth_shard_init(struct auth_shard *as)
{
	memset(as, 0, sizeof(*as));
	auth_cache_init(&as->cache, AUTH_CACHE_DEFAULT_SLOTS, AUTH_CACHE_DEFAULT_TTL_MS);
	auth_ratelimit_init(&as->rl);
}

void auth_shard_fini(struct auth_shard *as)
{
	auth_cache_fini(&as->cache);
}

/* ---- identities ---- */

void auth_identity_destroy(struct auth_identity *id)
{
	hd_free(id);
}

int64_t auth_identity_ms_left(const struct auth_identity *id, int64_t now_unix_ms)
{
	if (id->expires_unix_ms == 0)
		return -1;
	return id->expires_unix_ms > now_unix_ms ? id->expires_unix_ms - now_unix_ms : 0;
}

/* One allocation: the struct, the tags, then (tokens) a copy of the claims' string pool. */
static struct auth_identity *identity_create(const char *user, const char *vhost, size_t vlen,
					     const char *tags, const struct jwt_claims *c)
{
	size_t tlen = strlen(tags) + 1;
	size_t plen = c ? c->pool_len : 0;
	size_t nptr = c ? (size_t)c->subscribe.n + c->send.n : 0;
	/* one allocation: the identity, its scope pointer arrays (sized to the claims: a
	 * password login carries none, which keeps idle sessions small), tags, claim strings */
	struct auth_identity *id = hd_calloc(1, sizeof(*id) + nptr * sizeof(char *) + tlen + plen);
	const char **ptrs = (const char **)(id + 1);
	char *tail = (char *)(ptrs + nptr);

	snprintf(id->user, sizeof(id->user), "%s", user);
	memcpy(id->vhost, vhost, vlen);	/* a configured vhost: vlen <= USERS_VHOST_MAX */
	id->tags = memcpy(tail, tags, tlen);
	id->tag_bits = users_tag_bits(tags);
	id->method = c ? AUTH_METHOD_JWT : AUTH_METHOD_PASSWORD;
	if (!c)
		return id;
	memcpy(tail + tlen, c->pool, plen);
	id->sub_scoped = c->subscribe.present;
	id->send_scoped = c->send.present;
	id->nsub = c->subscribe.n;
	id->nsend = c->send.n;
	id->sub_scope = ptrs;
	id->send_scope = ptrs + c->subscribe.n;
	for (unsigned i = 0; i < c->subscribe.n; i++)
		id->sub_scope[i] = tail + tlen + c->subscribe.off[i];
	for (unsigned i = 0; i < c->send.n; i++)
		id->send_scope[i] = tail + tlen + c->send.off[i];
	return id;
}

/* ---- CONNECT ---- */

static void deny(struct auth_shard *as, const struct sockaddr *peer, uint64_t now_ms, bool count,
		 const char *log_reason, const char *detail, struct auth_result *out)
{
	out->status = AUTH_DENIED;
	out->message = "Access refused";
	out->log_reason = log_reason;
	snprintf(out->detail, sizeof(out->detail), "%s", detail);
	if (!count)
		return;
	as->logins_failed++;
	out->delay_ms = auth_ratelimit_on_failure(&as->rl, peer, now_ms);
}

static void deny_vhost(const char *vhost, size_t len, struct auth_result *out)
{
	char name[USERS_VHOST_MAX + 1];

	sanitize(name, sizeof(name), vhost, len, USERS_VHOST_MAX);
	out->status = AUTH_DENIED;
	out->message = "Access refused";
	out->log_reason = "virtual host unknown or not allowed for this user";
	snprintf(out->detail, sizeof(out->detail),
		 "Virtual host '%s' does not exist or access to it is denied", name);
}

/* Credentials are good: check the vhost, then hand out the identity. */
static void grant(const struct auth_db *db, struct auth_shard *as, const char *user,
		  const char *tags, const char *allowed_vhosts, const char *vhost, size_t vlen,
		  const struct jwt_claims *c, struct auth_result *out)
{
	bool listed = !strcmp(allowed_vhosts, "*") || users_list_has(allowed_vhosts, vhost, vlen);

	if (!auth_db_has_vhost(db, vhost, vlen) || !listed) {
		deny_vhost(vhost, vlen, out);
		return;
	}
	as->logins_ok++;
	out->status = AUTH_OK;
	out->identity = identity_create(user, vhost, vlen, tags, c);
}

static void join_list(const struct jwt_claims *c, const struct jwt_list *l, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < l->n; i++) {
		int n = snprintf(out + o, cap - o, "%s%s", i ? "," : "", jwt_list_at(c, l, i));

		if (n < 0 || (size_t)n >= cap - o)
			return;	/* cannot happen: JWT_LIST_MAX * (JWT_ITEM_MAX + 1) fits */
		o += (size_t)n;
	}
}

static void connect_jwt(const struct auth_db *db, struct auth_shard *as,
			const struct auth_request *rq, const char *vhost, size_t vlen,
			struct auth_result *out)
{
	struct jwt_claims c;
	char detail[160];
	char tags[JWT_POOL_BYTES];
	char vhosts[JWT_POOL_BYTES];
	const char *reason = "";

	if (jwt_verify(db->jwt, rq->passcode, rq->passcode_len, rq->now_unix_ms / 1000, &c,
		       &reason)) {
		snprintf(detail, sizeof(detail), "Login failed: %s", reason);
		deny(as, rq->peer, rq->now_ms, true, reason, detail, out);
		return;
	}
	if (rq->login && rq->login_len &&
	    (rq->login_len != strlen(c.sub) || memcmp(rq->login, c.sub, rq->login_len))) {
		deny(as, rq->peer, rq->now_ms, true, "login differs from the token's sub",
		     "Login failed: login header differs from the token's sub", out);
		return;
	}
	join_list(&c, &c.tags, tags, sizeof(tags));
	join_list(&c, &c.vhosts, vhosts, sizeof(vhosts));
	if (users_list_has(vhosts, "*", 1))
		strcpy(vhosts, "*");
	grant(db, as, c.sub, tags, c.vhosts.present ? vhosts : "/", vhost, vlen, &c, out);
	if (out->status == AUTH_OK)
		out->identity->expires_unix_ms = (c.exp + (int64_t)jwt_keys_leeway(db->jwt)) * 1000;
}

static struct auth_job *job_create(const struct auth_db *db, const struct auth_request *rq,
				   const struct users_entry *e, const char *vhost, size_t vlen)
{
	struct auth_job *job = hd_calloc(1, sizeof(*job) + rq->passcode_len + 1);

	job->db = auth_db_ref((struct auth_db *)db);
	job->known = e != NULL;
	memcpy(job->user, rq->login, rq->login_len);
	snprintf(job->hash, sizeof(job->hash), "%s", e ? e->hash : dummy_hash);
	job->vhost_len = HD_MIN(vlen, sizeof(job->vhost) - 1);
	memcpy(job->vhost, vhost, job->vhost_len);
	memcpy(job->pass, rq->passcode, rq->passcode_len);
	job->pass_len = rq->passcode_len;
	if (rq->peer) {
		job->has_peer = true;
		memcpy(&job->peer, rq->peer, sockaddr_size(rq->peer));
	}
	return job;
}

static int inflight_find(const struct auth_shard *as, const uint8_t *digest)
{
	for (uint32_t i = 0; i < as->ninflight; i++)
		if (!sodium_memcmp(as->inflight[i], digest, crypto_generichash_BYTES))
			return (int)i;
	return -1;
}

static void inflight_remove(struct auth_shard *as, const uint8_t *digest)
{
	int i = inflight_find(as, digest);

	if (i >= 0)
		memcpy(as->inflight[i], as->inflight[--as->ninflight], crypto_generichash_BYTES);
}

static void connect_password(const struct auth_db *db, struct auth_shard *as,
			     const struct auth_request *rq, const char *vhost, size_t vlen,
			     struct auth_result *out)
{
	const struct users_entry *e;
	uint8_t digest[crypto_generichash_BYTES];

	if (!rq->login || !rq->passcode || !users_name_is_valid(rq->login, rq->login_len) ||
	    rq->passcode_len == 0 || rq->passcode_len > USERS_PASSWORD_MAX) {
		deny(as, rq->peer, rq->now_ms, true, "missing or malformed login or passcode",
		     login_failed, out);
		return;
	}
	e = users_table_find(db->users, rq->login, rq->login_len);
	if (e && e->loopback_only && !is_loopback(rq->peer)) {
		deny(as, rq->peer, rq->now_ms, true, "loopback-only user from a remote address",
		     login_failed, out);
		return;
	}
	if (e) {
		struct auth_cache_cred cred = { rq->login, rq->login_len, rq->passcode,
						rq->passcode_len, e->hash, strlen(e->hash) };

		/* one digest serves the cache and the list of checks in flight */
		auth_cache_digest(&as->cache, &cred, digest);
		if (auth_cache_check_digest(&as->cache, digest, rq->now_ms)) {
			as->cache_hits++;
			grant(db, as, e->name, e->tags, e->vhosts, vhost, vlen, NULL, out);
			return;
		}
		if (inflight_find(as, digest) >= 0) {
			out->status = AUTH_RETRY;	/* the same login is being checked now */
			out->delay_ms = 5;
			return;
		}
	}
	if (auth_ratelimit_is_blocked(&as->rl, rq->peer, rq->now_ms)) {
		if (!auth_ratelimit_has_failed_too_often(&as->rl, rq->peer, rq->now_ms)) {
			as->check_waits++;
			out->status = AUTH_RETRY;	/* only busy: wait, do not refuse */
			out->delay_ms = 20;
			return;
		}
		deny(as, rq->peer, rq->now_ms, true, "address blocked after repeated failures",
		     login_failed, out);
		return;
	}
	auth_ratelimit_begin(&as->rl, rq->peer, rq->now_ms);
	as->slow_checks++;
	out->status = AUTH_SLOW;
	out->job = job_create(db, rq, e, vhost, vlen);
	if (e && as->ninflight < AUTH_INFLIGHT_MAX) {
		memcpy(as->inflight[as->ninflight++], digest, sizeof(digest));
		memcpy(out->job->digest, digest, sizeof(digest));
		out->job->inflight = true;
	}
}

/* The TLS layer verified the certificate against the CA; its CN must name a user. */
static void connect_cert(const struct auth_db *db, struct auth_shard *as,
			 const struct auth_request *rq, const char *vhost, size_t vlen,
			 struct auth_result *out)
{
	size_t n = strlen(rq->cert_name);
	const struct users_entry *e = NULL;

	if (users_name_is_valid(rq->cert_name, n))
		e = users_table_find(db->users, rq->cert_name, n);
	if (!e) {
		deny(as, rq->peer, rq->now_ms, true, "client certificate names no known user",
		     login_failed, out);
		return;
	}
	if (e->loopback_only && !is_loopback(rq->peer)) {
		deny(as, rq->peer, rq->now_ms, true, "loopback-only user from a remote address",
		     login_failed, out);
		return;
	}
	grant(db, as, e->name, e->tags, e->vhosts, vhost, vlen, NULL, out);
	if (out->status == AUTH_OK)
		out->identity->method = AUTH_METHOD_CERT;
}

void auth_connect(const struct auth_db *db, struct auth_shard *as, const struct auth_request *rq,
		  struct auth_result *out)
{
	const char *vhost = rq->vhost ? rq->vhost : "/";
	size_t vlen = rq->vhost ? rq->vhost_len : 1;

	memset(out, 0, sizeof(*out));
	if (rq->cert_name && !rq->login)
		connect_cert(db, as, rq, vhost, vlen, out);
	else if (db->jwt && rq->passcode && jwt_looks_like_token(rq->passcode, rq->passcode_len))
		connect_jwt(db, as, rq, vhost, vlen, out);
	else
		connect_password(db, as, rq, vhost, vlen, out);
}

void auth_job_run(struct auth_job *job)
{
	/* the dummy hash is verified too, and then refused: same time either way */
	bool match = users_verify_password(job->hash, job->pass, job->pass_len);

	job->ok = match && job->known;
}

enum auth_admin auth_check_admin(const struct auth_db *db, const char *user, size_t user_len,
				 const char *pass, size_t pass_len, bool *loopback_only)
{
	const struct users_entry *e = users_table_find(db->users, user, user_len);
	/* an unknown name costs the same argon2id check (the dummy hash), then is refused */
	bool match = users_verify_password(e ? e->hash : dummy_hash, pass, pass_len);

	*loopback_only = e && e->loopback_only;
	if (!e || !match)
		return AUTH_ADMIN_DENIED;
	return e->tag_bits & USERS_TAG_ADMINISTRATOR ? AUTH_ADMIN_OK : AUTH_ADMIN_NOT_ADMIN;
}

void auth_job_destroy(struct auth_job *job, struct auth_shard *as, uint64_t now_ms)
{
	if (!job)
		return;
	if (as) {
		auth_ratelimit_end(&as->rl, job->has_peer ? (struct sockaddr *)&job->peer : NULL,
				   now_ms);
		if (job->inflight)
			inflight_remove(as, job->digest);
	}
	sodium_memzero(job->pass, job->pass_len);
	auth_db_unref(job->db);
	hd_free(job);
}

void auth_job_finish(struct auth_job *job, struct auth_shard *as, uint64_t now_ms,
		     struct auth_result *out)
{
	const struct sockaddr *peer = job->has_peer ? (struct sockaddr *)&job->peer : NULL;
	const struct users_entry *e;
	struct auth_cache_cred cred;

	memset(out, 0, sizeof(*out));
	if (!job->ok) {
		deny(as, peer, now_ms, true, job->known ? "wrong password" : "unknown user",
		     login_failed, out);
		auth_job_destroy(job, as, now_ms);
		return;
	}
	e = users_table_find(job->db->users, job->user, strlen(job->user));
	HD_ASSERT(e);	/* job->db is referenced, so the entry it found is still there */
	cred = (struct auth_cache_cred){ job->user, strlen(job->user), job->pass, job->pass_len,
					 job->hash, strlen(job->hash) };
	auth_cache_remember(&as->cache, &cred, now_ms);
	grant(job->db, as, e->name, e->tags, e->vhosts, job->vhost, job->vhost_len, NULL, out);
	auth_job_destroy(job, as, now_ms);
}

void auth_job_set_cookie(struct auth_job *job, uint64_t cookie)
{
	job->cookie = cookie;
}

uint64_t auth_job_cookie(const struct auth_job *job)
{
	return job->cookie;
}

/* ---- SUBSCRIBE and SEND ---- */

static bool scope_allows(const struct auth_identity *id, const char *const *pats, unsigned n,
			 const char *dest, size_t len)
{
	for (unsigned i = 0; i < n; i++) {
		if (acl_pattern_covers(pats[i], strlen(pats[i]), id->user, dest, len))
			return true;
	}
	return false;
}

bool auth_authorize(const struct auth_db *db, const struct auth_identity *id, enum acl_action a,
		    const char *dest, size_t len, struct auth_verdict *v)
{
	bool scoped = a == ACL_SUBSCRIBE ? id->sub_scoped : id->send_scoped;
	struct acl_subject s = { id->user, id->tags };
	struct acl_decision d;

	v->rule_line = 0;
	if (id->tag_bits & USERS_TAG_ADMINISTRATOR) {
		v->why = "administrator";
		return v->allowed = true;
	}
	if (scoped) {
		v->allowed = a == ACL_SUBSCRIBE
				     ? scope_allows(id, id->sub_scope, id->nsub, dest, len)
				     : scope_allows(id, id->send_scope, id->nsend, dest, len);
		v->why = v->allowed ? "allowed by the token"
			 : a == ACL_SUBSCRIBE ? "not in the token's herald_sub claim"
					      : "not in the token's herald_send claim";
		return v->allowed;
	}
	acl_check(db->rules, id->vhost, &s, a, dest, len, &d);
	v->allowed = d.allowed;
	v->rule_line = d.line;
	v->why = d.why;
	return v->allowed;
}

size_t auth_verdict_format(const struct auth_verdict *v, const struct auth_identity *id,
			   enum acl_action a, const char *dest, size_t len, char *buf, size_t cap)
{
	char d[201];
	int n;

	if (cap == 0)
		return 0;
	sanitize(d, sizeof(d), dest, len, 200);
	n = snprintf(buf, cap, "user '%s' may %s%s to '%s%s' in virtual host '%s' (%s)", id->user,
		     v->allowed ? "" : "not ", a == ACL_SUBSCRIBE ? "subscribe" : "send", d,
		     len > 200 ? "..." : "", id->vhost, v->why);
	return n < 0 ? 0 : HD_MIN((size_t)n, cap - 1);
}
