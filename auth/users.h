/*
 * auth/users.h - the users file: who may log in with a password, their tags and virtual
 * hosts. A pure parser over a memory buffer, a loader, the argon2id hashing the file
 * holds, and name/tag/vhost validation shared by the server, JWT claims and heraldctl.
 *
 * Format (docs/auth.md), one user per line, `#` starts a comment line:
 *
 *   # name : argon2id hash (crypto_pwhash_str) : tags : virtual hosts
 *   jack:$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g::/
 *   billing:$argon2id$v=19$m=65536,t=2,p=1$...$...:service:/,prod
 *   ops:$argon2id$v=19$m=65536,t=2,p=1$...$...:administrator:*
 *
 * tags and vhosts are comma lists and may be left out (no tags; vhost "/"); vhosts `*`
 * means every configured vhost. Passwords are never stored, only crypto_pwhash_str output.
 *
 * Dependencies: libc, libsodium and core/base/hd_alloc only, so heraldctl can compile this
 * file in without the server (tools/ctl_user_lib.c). Threads: a table is built by one
 * thread, then read-only; readers on any thread. users_verify_password() takes tens of
 * milliseconds and belongs on the auth thread, never a shard.
 */
#ifndef AUTH_USERS_H
#define AUTH_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USERS_NAME_MAX 63		/* bytes of a user name */
#define USERS_HASH_MAX 127		/* bytes of a crypto_pwhash_str string */
#define USERS_TAG_MAX 32		/* bytes of one tag */
#define USERS_TAGS_MAX 16		/* tags per user */
#define USERS_VHOST_MAX 63		/* bytes of one virtual host name */
#define USERS_VHOSTS_MAX 32		/* virtual hosts per user */
#define USERS_LINE_MAX 1024		/* bytes per line, without the newline */
#define USERS_MAX 100000		/* users per table */
#define USERS_FILE_MAX (64u << 20)	/* bytes of a users file */
#define USERS_PASSWORD_MAX 1024		/* bytes of a password (or a passcode we verify) */
#define USERS_ARGON2_MAX_KIB (1u << 20)	/* argon2id m= above 1 GiB is refused */
#define USERS_ARGON2_MAX_T 16		/* argon2id t= above this is refused */

enum users_tag_bit {
	USERS_TAG_ADMINISTRATOR = 1 << 0,	/* may do everything */
	USERS_TAG_SERVICE = 1 << 1,		/* may also SEND to any destination */
};

/* Where an entry came from; a higher source replaces a lower one of the same name. */
enum users_source {
	USERS_SRC_DEFAULT = 0,	/* the built-in default user (guest) */
	USERS_SRC_FILE = 1,	/* the users file */
	USERS_SRC_CLI = 2,	/* --user on the command line */
};

enum users_cost {
	USERS_COST_INTERACTIVE,	/* libsodium's interactive limits: 64 MiB, 2 passes */
	USERS_COST_MODERATE,	/* 256 MiB, 3 passes */
	USERS_COST_MIN,		/* 8 KiB, 1 pass: tests only */
};

struct users_entry {
	const char *name;
	const char *hash;	/* "$argon2id$..." */
	const char *tags;	/* normalized comma list, "" for none */
	const char *vhosts;	/* normalized comma list or "*"; never empty ("/" by default) */
	uint32_t tag_bits;	/* enum users_tag_bit of tags */
	uint32_t line;		/* line in the file it came from, 1-based; 0 otherwise */
	uint8_t source;		/* enum users_source */
	bool loopback_only;	/* may log in from 127.0.0.0/8 or ::1 only (guest) */
};

struct users_error {
	uint32_t line;		/* 1-based; 0 when not about a line */
	char msg[200];
};

struct users_table;

/* An empty table. Aborts on OOM. */
struct users_table *users_table_create(void);
void users_table_destroy(struct users_table *t);

/* Adds every user of the users-file text buf[0..len). Returns 0, or -EINVAL with err set
 * (line and reason) and the table unchanged... except for the users of earlier lines, so
 * parse into a fresh table and drop it on failure. A name defined twice is an error. */
int users_table_parse(struct users_table *t, const char *buf, size_t len, struct users_error *err);

/* Reads and parses the file at path (a regular file of at most USERS_FILE_MAX bytes).
 * Returns 0, -EINVAL (parse error), or -errno from open/read with err->msg naming path. */
int users_table_load(struct users_table *t, const char *path, struct users_error *err);

/* Adds one user after validating every field (tags and vhosts are comma lists, NULL or ""
 * meaning none and "/"). An existing entry of that name is replaced when `replace`, else
 * -EEXIST. Returns 0, -EINVAL or -EEXIST with err set. */
int users_table_add(struct users_table *t, const struct users_entry *e, bool replace,
		    struct users_error *err);

/* The entry named name[0..len), or NULL. */
const struct users_entry *users_table_find(const struct users_table *t, const char *name,
					   size_t len);

size_t users_table_count(const struct users_table *t);
/* Entries in insertion order, i < users_table_count(). */
const struct users_entry *users_table_at(const struct users_table *t, size_t i);

/* 1..63 bytes of [A-Za-z0-9._@+-], not starting with '-' or '.'. Names never hold `*`,
 * `#`, `/`, `{` or `}`, so substituting one into a destination pattern adds no wildcard. */
bool users_name_is_valid(const char *s, size_t len);
/* 1..32 bytes of [a-z0-9_-]. */
bool users_tag_is_valid(const char *s, size_t len);
/* 1..63 printable ASCII bytes other than space, ':', ',', '*', '#', '[', ']'. */
bool users_vhost_is_valid(const char *s, size_t len);
/* "$argon2id$v=19$m=M,t=T,p=1$SALT$HASH" with M <= USERS_ARGON2_MAX_KIB, T <=
 * USERS_ARGON2_MAX_T and base64 salt and hash, at most USERS_HASH_MAX bytes. */
bool users_hash_is_valid(const char *s, size_t len);

/* Checks and normalizes a comma list of tags (`vhosts` false) or vhosts (`vhosts` true,
 * where "*" alone is allowed) into out[0..cap): no empty items, no duplicates, at most
 * USERS_TAGS_MAX / USERS_VHOSTS_MAX items. Returns the length, or -EINVAL with a reason. */
int users_normalize_list(const char *in, size_t len, bool vhosts, char *out, size_t cap,
			 const char **reason);

/* True when the comma list holds item[0..len). */
bool users_list_has(const char *list, const char *item, size_t len);
/* enum users_tag_bit of a normalized tag list. */
uint32_t users_tag_bits(const char *tags);
/* True when e may connect to vhost[0..len) ("*" allows every vhost). */
bool users_entry_allows_vhost(const struct users_entry *e, const char *vhost, size_t len);

/* Hashes pass[0..len) (1..USERS_PASSWORD_MAX bytes) with argon2id and a random salt into
 * out (USERS_HASH_MAX + 1 bytes). Slow by design. Returns 0, -EINVAL or -ENOMEM. */
int users_hash_password(const char *pass, size_t len, enum users_cost cost, char *out);

/* True when pass[0..len) matches the crypto_pwhash_str string hash. Slow (tens of ms):
 * auth thread or tools only. */
bool users_verify_password(const char *hash, const char *pass, size_t len);

/* Writes "name:hash:tags:vhosts\n" with a NUL into buf[0..cap). Returns the length without
 * the NUL, or -ENOSPC. The fields must be valid (users_table_add checks them). */
int users_format_line(const struct users_entry *e, char *buf, size_t cap);

#endif
