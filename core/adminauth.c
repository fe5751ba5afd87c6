/*
 * core/adminauth.c - admin endpoint logins (see adminauth.h): a small table of logins,
 * each remembered, queued or being checked, and one thread that runs the argon2id checks.
 *
 * A slot is named by a keyed BLAKE2b digest of name and password (the key is random per
 * process), so a remembered login holds no password. A queued slot holds a copy of the
 * password until its check is done, then wipes it. Every field of every slot, the db and its
 * generation are under `mu`; the checker holds it only to take a job and to file its result.
 */
#include "core/adminauth.h"

#include "auth/auth.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_log.h"
#include "core/base/hd_time.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

enum slot_state { SLOT_FREE = 0, SLOT_QUEUED, SLOT_CHECKING, SLOT_DONE };

struct slot {
	uint8_t digest[crypto_generichash_BYTES];
	enum slot_state state;
	enum adminauth_verdict verdict;	/* SLOT_DONE: OK, FORBIDDEN or DENIED */
	bool loopback_only;		/* SLOT_DONE: the user may log in from loopback only */
	uint64_t expires_ms;		/* SLOT_DONE: forgotten then */
	char name[USERS_NAME_MAX + 1];
	size_t name_len;
	char pass[USERS_PASSWORD_MAX];	/* SLOT_QUEUED and SLOT_CHECKING only */
	size_t pass_len;
};

struct adminauth {
	pthread_mutex_t mu;
	pthread_cond_t work;		/* a slot was queued, or stop */
	pthread_t thread;
	bool stop;
	struct auth_db *db;
	uint64_t generation;		/* bumped by adminauth_set_db */
	uint8_t key[crypto_generichash_KEYBYTES];
	struct slot slots[ADMINAUTH_SLOTS];
};

static void slot_free(struct slot *s)
{
	sodium_memzero(s, sizeof(*s));
}

/* The queued slot to check next, or NULL. */
static struct slot *next_queued(struct adminauth *a)
{
	for (size_t i = 0; i < ADMINAUTH_SLOTS; i++)
		if (a->slots[i].state == SLOT_QUEUED)
			return &a->slots[i];
	return NULL;
}

/* Checks one queued slot, with the lock released around argon2id. Called with mu held. */
static void check_one(struct adminauth *a, struct slot *s)
{
	struct auth_db *db = auth_db_ref(a->db);
	uint64_t generation = a->generation;
	char name[sizeof(s->name)];
	char pass[sizeof(s->pass)];
	size_t name_len = s->name_len, pass_len = s->pass_len;
	enum auth_admin r;
	bool loopback_only;

	memcpy(name, s->name, sizeof(name));
	memcpy(pass, s->pass, pass_len);
	s->state = SLOT_CHECKING;
	pthread_mutex_unlock(&a->mu);
	r = auth_check_admin(db, name, name_len, pass, pass_len, &loopback_only);
	sodium_memzero(pass, sizeof(pass));
	auth_db_unref(db);
	pthread_mutex_lock(&a->mu);
	/* a reload frees remembered slots only, so s is still ours */
	if (generation != a->generation) {
		s->state = SLOT_QUEUED;	/* checked against the old users: check again */
		return;
	}
	sodium_memzero(s->pass, sizeof(s->pass));
	s->state = SLOT_DONE;
	s->loopback_only = loopback_only;
	s->verdict = r == AUTH_ADMIN_OK ? ADMINAUTH_OK :
		     r == AUTH_ADMIN_NOT_ADMIN ? ADMINAUTH_FORBIDDEN : ADMINAUTH_DENIED;
	s->expires_ms = hd_now_ms() +
			(s->verdict == ADMINAUTH_DENIED ? ADMINAUTH_REFUSED_MS : ADMINAUTH_REMEMBER_MS);
}

static void *checker_main(void *arg)
{
	struct adminauth *a = arg;

	hd_log_set_thread_shard(-1);
	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		struct slot *s = a->db ? next_queued(a) : NULL;

		if (s)
			check_one(a, s);
		else
			pthread_cond_wait(&a->work, &a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int adminauth_create(struct adminauth **out)
{
	struct adminauth *a;
	int rc;

	if (sodium_init() < 0)
		return -ENOSYS;
	a = hd_calloc(1, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->work, NULL);
	crypto_generichash_keygen(a->key);
	rc = pthread_create(&a->thread, NULL, checker_main, a);
	if (rc) {
		pthread_cond_destroy(&a->work);
		pthread_mutex_destroy(&a->mu);
		hd_free(a);
		return -rc;
	}
	pthread_setname_np(a->thread, "admin-auth");
	*out = a;
	return 0;
}

void adminauth_destroy(struct adminauth *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);	/* at most one check (tens of ms) to finish */
	auth_db_unref(a->db);
	pthread_cond_destroy(&a->work);
	pthread_mutex_destroy(&a->mu);
	sodium_memzero(a, sizeof(*a));
	hd_free(a);
}

void adminauth_set_db(struct adminauth *a, struct auth_db *db)
{
	struct auth_db *old;

	pthread_mutex_lock(&a->mu);
	old = a->db;
	a->db = auth_db_ref(db);
	a->generation++;
	for (size_t i = 0; i < ADMINAUTH_SLOTS; i++)
		if (a->slots[i].state == SLOT_DONE)
			slot_free(&a->slots[i]);	/* queued ones are checked with the new db */
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->mu);
	auth_db_unref(old);
}

static void login_digest(const struct adminauth *a, const char *name, size_t name_len,
			 const char *pass, size_t pass_len, uint8_t out[crypto_generichash_BYTES])
{
	crypto_generichash_state st;
	const unsigned char sep = 0;	/* names hold no NUL: "ab"+"c" and "a"+"bc" differ */

	crypto_generichash_init(&st, a->key, sizeof(a->key), crypto_generichash_BYTES);
	crypto_generichash_update(&st, (const unsigned char *)name, name_len);
	crypto_generichash_update(&st, &sep, 1);
	crypto_generichash_update(&st, (const unsigned char *)pass, pass_len);
	crypto_generichash_final(&st, out, crypto_generichash_BYTES);
}

/* A slot for a new login: a free one, else an expired or the oldest remembered one (so a
 * stream of wrong guesses cannot keep out a good login for long). NULL: all are queued. */
static struct slot *claim_slot(struct adminauth *a, uint64_t now_ms)
{
	struct slot *oldest = NULL;

	for (size_t i = 0; i < ADMINAUTH_SLOTS; i++) {
		struct slot *s = &a->slots[i];

		if (s->state == SLOT_FREE || (s->state == SLOT_DONE && s->expires_ms <= now_ms))
			return s;
		if (s->state == SLOT_DONE && (!oldest || s->expires_ms < oldest->expires_ms))
			oldest = s;
	}
	return oldest;
}

static enum adminauth_verdict verdict_of(const struct slot *s, bool from_loopback)
{
	if (s->state != SLOT_DONE)
		return ADMINAUTH_PENDING;
	if (s->loopback_only && !from_loopback)
		return ADMINAUTH_DENIED;	/* the default user: loopback only, as for STOMP */
	return s->verdict;
}

enum adminauth_verdict adminauth_check(struct adminauth *a, const char *name, size_t name_len,
				       const char *pass, size_t pass_len, bool from_loopback,
				       uint64_t now_ms)
{
	uint8_t digest[crypto_generichash_BYTES];
	enum adminauth_verdict v = ADMINAUTH_BUSY;
	struct slot *s;

	if (!name_len || name_len > USERS_NAME_MAX || !pass_len || pass_len > USERS_PASSWORD_MAX)
		return ADMINAUTH_DENIED;
	login_digest(a, name, name_len, pass, pass_len, digest);
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < ADMINAUTH_SLOTS; i++) {
		s = &a->slots[i];
		if (s->state != SLOT_FREE && !sodium_memcmp(s->digest, digest, sizeof(digest)) &&
		    !(s->state == SLOT_DONE && s->expires_ms <= now_ms)) {
			v = verdict_of(s, from_loopback);
			goto out;
		}
	}
	s = claim_slot(a, now_ms);
	if (!s)
		goto out;
	slot_free(s);
	memcpy(s->digest, digest, sizeof(digest));
	memcpy(s->name, name, name_len);
	s->name_len = name_len;
	memcpy(s->pass, pass, pass_len);
	s->pass_len = pass_len;
	s->state = SLOT_QUEUED;
	pthread_cond_signal(&a->work);
	v = ADMINAUTH_PENDING;
out:
	pthread_mutex_unlock(&a->mu);
	sodium_memzero(digest, sizeof(digest));
	return v;
}
