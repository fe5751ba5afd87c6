/*
 * auth/acl.h - authorization: who may SUBSCRIBE to and SEND to which destinations, per
 * virtual host. Rules come from a rules file (format below, docs/auth.md) or, when none is
 * configured, from the built-in defaults:
 *
 *   [vhost *]
 *   allow send           tag:service  #
 *   allow subscribe,send *            /queue/{user}
 *   allow subscribe      *            /topic/#
 *
 * plus: the tag `administrator` may do everything, before any rule is read.
 *
 * Rules file: `#` starts a comment line; `[vhost NAME]` (or `[vhost *]`, every vhost)
 * starts a section; each rule line is
 *
 *   allow|deny  subscribe|send|subscribe,send|all  *|user:NAME|tag:TAG  PATTERN...
 *
 * and a line holding only `defaults` inserts the built-in rules above at that point. For a
 * frame, the rules of its vhost are tried in file order; the first whose action, subject
 * and one pattern match decides; when none matches the answer is deny.
 *
 * Patterns: `#` alone matches every destination. Otherwise `/kind/words`: the kind (queue,
 * topic, ...) must be equal, and the rest is matched word by word (words separated by
 * dots) as RabbitMQ topics are: `*` one word, `#` zero or more. `{user}` stands for the
 * login name (names cannot hold wildcards, so it stays literal). A destination that itself
 * holds `*` or `#` words (a wildcard SUBSCRIBE to /topic/news.#) is allowed only when the
 * pattern covers every topic it can match, so `/topic/news.*` does not let a client
 * subscribe to `/topic/#`.
 *
 * Threads: rules are built on the main thread, then immutable; acl_check() is pure and
 * runs on shards. Cost: O(words(pattern) * words(destination)) per pattern, whatever the
 * input (no backtracking blow-up).
 */
#ifndef AUTH_ACL_H
#define AUTH_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACL_PATTERN_MAX 255		/* bytes of a pattern */
#define ACL_DEST_MAX 1024		/* longer destinations are refused */
#define ACL_RULE_PATTERNS_MAX 16	/* patterns on one rule line */
#define ACL_RULES_MAX 10000		/* rules in a file (after `defaults` expands) */
#define ACL_LINE_MAX 4096		/* bytes per line */
#define ACL_FILE_MAX (4u << 20)		/* bytes of a rules file */

enum acl_action {
	ACL_SUBSCRIBE = 1 << 0,
	ACL_SEND = 1 << 1,
};

/* Who asks: the login name and its tags (a comma list, "" for none). */
struct acl_subject {
	const char *user;
	const char *tags;
};

struct acl_decision {
	bool allowed;
	uint32_t line;		/* rules-file line of the rule that decided; 0 for a built-in rule,
				 * the administrator tag, or when no rule matched */
	const char *why;	/* static text: "administrator", "allowed by rule", ... */
};

struct acl_error {
	uint32_t line;		/* 1-based; 0 when not about a line */
	char msg[200];
};

struct acl_rules;

/* The built-in defaults above. Aborts on OOM. */
struct acl_rules *acl_rules_create_defaults(void);
/* Parses a rules file held in buf[0..len). Returns 0 with *out set, or -EINVAL with err. */
int acl_rules_parse(const char *buf, size_t len, struct acl_rules **out, struct acl_error *err);
/* Reads and parses the rules file at path. Returns 0, -EINVAL or -errno with err set. */
int acl_rules_load(const char *path, struct acl_rules **out, struct acl_error *err);
void acl_rules_destroy(struct acl_rules *r);
/* Rules held (defaults count as 3). */
size_t acl_rules_count(const struct acl_rules *r);

/* Decides whether subject s may perform action a (one of ACL_SUBSCRIBE, ACL_SEND) on
 * dest[0..len) in vhost. Pure; any thread. */
void acl_check(const struct acl_rules *r, const char *vhost, const struct acl_subject *s,
	       enum acl_action a, const char *dest, size_t len, struct acl_decision *d);

/* True when p[0..len) is a valid pattern: `#`, or `/kind/words` of printable ASCII with
 * `{user}` the only braces, at most ACL_PATTERN_MAX bytes. */
bool acl_pattern_is_valid(const char *p, size_t len);

/* True when pattern p (with {user} replaced by user) covers dest[0..len): every
 * destination dest names (itself, or all it matches if it holds wildcards) matches p. */
bool acl_pattern_covers(const char *p, size_t plen, const char *user, const char *dest,
			size_t len);

/* True when pattern p (with {user} replaced by user) and dest[0..len), either of which
 * may hold `*` and `#`, match at least one name in common. A deny rule applies so. */
bool acl_pattern_overlaps(const char *p, size_t plen, const char *user, const char *dest,
			  size_t len);

#endif
