/*
 * core/adminauth.h - who may use the admin endpoint: HTTP Basic logins of administrator
 * users (the `administrator` tag of the users file or --user), checked without stalling the
 * thread that asks (docs/operations.md "Admin endpoint credentials").
 *
 * argon2id takes tens of milliseconds, and the cluster thread that serves the admin endpoint
 * must keep answering gossip meanwhile, so adminauth_check never verifies a password
 * itself: it answers from what it remembers, or queues the check for its own thread (which
 * may block) and answers ADMINAUTH_PENDING; the caller asks again a little later. A login
 * that passed is remembered for ADMINAUTH_REMEMBER_MS as a keyed BLAKE2b digest of name and
 * password (never the password), a refused one for ADMINAUTH_REFUSED_MS; a reload
 * (adminauth_set_db) forgets both.
 *
 * Threads: main creates, sets the db (start, SIGHUP) and destroys; any one thread (the
 * cluster thread) calls adminauth_check; the checker thread runs argon2id. One mutex, held
 * for table look-ups only, never across a password check.
 */
#ifndef CORE_ADMINAUTH_H
#define CORE_ADMINAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADMINAUTH_REMEMBER_MS 60000	/* a good login is not checked again for this long */
#define ADMINAUTH_REFUSED_MS 2000	/* nor a refused one (a retry loop costs no argon2id) */
#define ADMINAUTH_SLOTS 16		/* logins remembered or being checked at once */

enum adminauth_verdict {
	ADMINAUTH_OK = 0,		/* an administrator */
	ADMINAUTH_FORBIDDEN,		/* a user, not an administrator: 403 */
	ADMINAUTH_DENIED,		/* wrong name or password: 401 */
	ADMINAUTH_PENDING,		/* being checked: ask again in a few milliseconds */
	ADMINAUTH_BUSY,			/* too many different logins being checked: 503 */
};

struct adminauth;
struct auth_db;

/* Starts the checker thread. Returns 0 with *out, or a negative errno. Main thread. */
int adminauth_create(struct adminauth **out);
/* Stops the checker thread and frees everything (NULL is ignored). Main thread. */
void adminauth_destroy(struct adminauth *a);

/* The users checked from now on (takes its own reference to db); forgets every remembered
 * login, since passwords and tags may have changed. Main thread (start and SIGHUP). */
void adminauth_set_db(struct adminauth *a, struct auth_db *db);

/* The verdict on name[0..name_len) with password pass[0..pass_len) from a client at a
 * loopback address or not (a loopback-only user, the default one, is denied elsewhere).
 * Never blocks on a password check. now_ms: monotonic. */
enum adminauth_verdict adminauth_check(struct adminauth *a, const char *name, size_t name_len,
				       const char *pass, size_t pass_len, bool from_loopback,
				       uint64_t now_ms);

#endif
