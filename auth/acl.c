/*
 * auth/acl.c - rules table and destination pattern matching. The built-in defaults are
 * parsed from their own rules-file text, so they and a configured file take one path.
 *
 * Word matching is glob matching over dot-separated words, `#` being the sequence
 * wildcard and `*` the single-word one; the classic two-pointer walk that backtracks only
 * to the latest `#` keeps it O(n*m) for any input. Containment (a wildcard subscription
 * inside a pattern) uses the same walk with a stricter word test: a pattern `*` covers a
 * literal word or `*`, never `#`; a literal covers only the same literal.
 */
#include "auth/acl.h"

#include "auth/users.h"
#include "core/base/hd_alloc.h"
#include "core/base/hd_compiler.h"
#include "core/base/hd_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum who_kind { WHO_ANY, WHO_USER, WHO_TAG };

struct acl_rule {
	bool allow;
	uint8_t actions;		/* enum acl_action bits */
	uint8_t who_kind;		/* enum who_kind */
	uint8_t npat;
	uint32_t line;			/* 0: built-in */
	char who[USERS_NAME_MAX + 1];	/* user name or tag */
	char vhost[USERS_VHOST_MAX + 1];	/* "*": every vhost */
	char *pat[ACL_RULE_PATTERNS_MAX];
};

struct acl_rules {
	struct acl_rule *rules;
	size_t n;
	size_t cap;
};

static const char default_rules[] =
	"[vhost *]\n"
	"allow send tag:service #\n"
	"allow subscribe,send * /queue/{user}\n"
	"allow subscribe * /topic/#\n";

/* ---- patterns ---- */

static size_t word_end(const char *s, size_t len, size_t i)
{
	const char *dot = memchr(s + i, '.', len - i);

	return dot ? (size_t)(dot - s) : len;
}

static bool word_is(const char *s, size_t i, size_t e, char c)
{
	return e - i == 1 && s[i] == c;
}

/* Does pattern word p[pi..pe) cover destination word d[di..de)? (`#` is handled apart.) */
static bool word_covers(const char *p, size_t pi, size_t pe, const char *d, size_t di, size_t de)
{
	if (word_is(p, pi, pe, '*'))
		return !word_is(d, di, de, '#');
	return pe - pi == de - di && !memcmp(p + pi, d + di, pe - pi);
}

/* Positions are word starts; a position past the end (len + 1) means "no words left". As
 * in core/topic_match.c (and RabbitMQ), an empty name has no words, so `*` does not match
 * it and `#` does; "a..b" has three words, the middle one empty. */
static bool words_cover(const char *p, size_t pl, const char *d, size_t dl)
{
	size_t i = pl ? 0 : 1;
	size_t j = dl ? 0 : 1;
	size_t star_i = SIZE_MAX;	/* pattern position after the latest `#` */
	size_t star_j = 0;		/* destination position that `#` has absorbed up to */

	while (j <= dl) {
		if (i <= pl) {
			size_t pe = word_end(p, pl, i);
			size_t de = word_end(d, dl, j);

			if (word_is(p, i, pe, '#')) {
				star_i = pe + 1;
				star_j = j;
				i = pe + 1;
				continue;
			}
			if (word_covers(p, i, pe, d, j, de)) {
				i = pe + 1;
				j = de + 1;
				continue;
			}
		}
		if (star_i == SIZE_MAX)
			return false;
		star_j = word_end(d, dl, star_j) + 1;	/* `#` takes one more word */
		i = star_i;
		j = star_j;
	}
	for (; i <= pl; i = word_end(p, pl, i) + 1) {
		if (!word_is(p, i, word_end(p, pl, i), '#'))
			return false;
	}
	return true;
}

static bool pattern_char(unsigned char c)
{
	return c > ' ' && c < 0x7f;
}

bool acl_pattern_is_valid(const char *p, size_t len)
{
	const char *slash;

	if (len == 0 || len > ACL_PATTERN_MAX)
		return false;
	if (len == 1 && p[0] == '#')
		return true;
	slash = len > 1 ? memchr(p + 1, '/', len - 1) : NULL;
	if (p[0] != '/' || !slash || slash == p + 1)
		return false;
	for (const char *k = p + 1; k < slash; k++) {
		if (*k == '*' || *k == '#' || *k == '{' || *k == '}')
			return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (!pattern_char((unsigned char)p[i]))
			return false;
		if (p[i] == '{') {
			if (len - i < 6 || memcmp(p + i, "{user}", 6))
				return false;
			i += 5;
		} else if (p[i] == '}') {
			return false;
		}
	}
	return true;
}

/* p with each {user} replaced; returns the length or -1 when it does not fit. */
static ssize_t expand(const char *p, size_t plen, const char *user, char *out, size_t cap)
{
	size_t ulen = strlen(user);
	size_t o = 0;

	for (size_t i = 0; i < plen; i++) {
		if (p[i] == '{' && plen - i >= 6 && !memcmp(p + i, "{user}", 6)) {
			if (cap - o < ulen)
				return -1;
			memcpy(out + o, user, ulen);
			o += ulen;
			i += 5;
			continue;
		}
		if (o == cap)
			return -1;
		out[o++] = p[i];
	}
	return (ssize_t)o;
}

#define OVERLAP_WORDS_MAX 128	/* more words than this: assume an overlap */

/* Splits s[0..len) into words (as words_cover sees them: none for an empty name). Returns
 * the count, or -1 past max. */
static int split_dots(const char *s, size_t len, size_t *start, size_t *end, int max)
{
	int n = 0;

	if (!len)
		return 0;
	for (size_t i = 0; i <= len; i = word_end(s, len, i) + 1) {
		if (n == max)
			return -1;
		start[n] = i;
		end[n++] = word_end(s, len, i);
	}
	return n;
}

/* Could some topic name match both p and d, either of which may hold `*` and `#`? Dynamic
 * programming over word positions from the back: ok[i][j] says p's words from i and d's
 * from j can still meet. A `#` on either side matches nothing or takes one more word. */
static bool words_overlap(const char *p, size_t pl, const char *d, size_t dl)
{
	size_t ps[OVERLAP_WORDS_MAX], pe[OVERLAP_WORDS_MAX], ds[OVERLAP_WORDS_MAX],
		de[OVERLAP_WORDS_MAX];
	int np = split_dots(p, pl, ps, pe, OVERLAP_WORDS_MAX);
	int nd = split_dots(d, dl, ds, de, OVERLAP_WORDS_MAX);
	bool ok[OVERLAP_WORDS_MAX + 1][OVERLAP_WORDS_MAX + 1];	/* 16.6 KB of stack */

	if (np < 0 || nd < 0)
		return true;	/* too many words to tell: assume they meet (deny) */
	for (int i = np; i >= 0; i--) {
		for (int j = nd; j >= 0; j--) {
			bool phash = i < np && word_is(p, ps[i], pe[i], '#');
			bool dhash = j < nd && word_is(d, ds[j], de[j], '#');
			bool v = i == np && j == nd;

			if (phash)
				v = v || ok[i + 1][j] || (j < nd && ok[i][j + 1]);
			if (dhash)
				v = v || ok[i][j + 1] || (i < np && ok[i + 1][j]);
			if (!phash && !dhash && i < np && j < nd) {
				bool pstar = word_is(p, ps[i], pe[i], '*');
				bool dstar = word_is(d, ds[j], de[j], '*');
				bool same = pe[i] - ps[i] == de[j] - ds[j] &&
					    !memcmp(p + ps[i], d + ds[j], pe[i] - ps[i]);

				v = v || ((pstar || dstar || same) && ok[i + 1][j + 1]);
			}
			ok[i][j] = v;
		}
	}
	return ok[0][0];
}

/* Expands {user} into buf and checks the pattern's "/kind/" prefix against dest. Returns
 * 1 for the pattern `#` (everything), 0 when the kinds differ, else 2: the pattern's words
 * are then the *pwl bytes at buf + *kind, the destination's those at dest + *kind. */
static int pattern_prepare(const char *p, size_t plen, const char *user, const char *dest,
			   size_t len, char *buf, size_t cap, size_t *pwl, size_t *kind)
{
	ssize_t n;
	const char *slash;

	if (len > ACL_DEST_MAX || plen > ACL_PATTERN_MAX)
		return 0;
	n = expand(p, plen, user, buf, cap);
	if (n == 1 && buf[0] == '#')
		return 1;
	if (n < 2 || buf[0] != '/')
		return 0;
	slash = memchr(buf + 1, '/', (size_t)n - 1);
	if (!slash)
		return 0;
	*kind = (size_t)(slash - buf) + 1;	/* "/queue/" */
	if (len < *kind || memcmp(dest, buf, *kind))
		return 0;
	*pwl = (size_t)n - *kind;
	return 2;
}

bool acl_pattern_covers(const char *p, size_t plen, const char *user, const char *dest,
			size_t len)
{
	char buf[ACL_PATTERN_MAX * 12];	/* each 6-byte {user} grows to at most 63 bytes */
	size_t pwl = 0, kind = 0;
	int r = pattern_prepare(p, plen, user, dest, len, buf, sizeof(buf), &pwl, &kind);

	if (r < 2)
		return r == 1;
	return words_cover(buf + kind, pwl, dest + kind, len - kind);
}

bool acl_pattern_overlaps(const char *p, size_t plen, const char *user, const char *dest,
			  size_t len)
{
	char buf[ACL_PATTERN_MAX * 12];
	size_t pwl = 0, kind = 0;
	int r = pattern_prepare(p, plen, user, dest, len, buf, sizeof(buf), &pwl, &kind);

	if (r < 2)
		return r == 1;
	return words_overlap(buf + kind, pwl, dest + kind, len - kind);
}

/* ---- rules ---- */

size_t acl_rules_count(const struct acl_rules *r)
{
	return r->n;
}

void acl_rules_destroy(struct acl_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		for (unsigned k = 0; k < r->rules[i].npat; k++)
			hd_free(r->rules[i].pat[k]);
	}
	hd_free(r->rules);
	hd_free(r);
}

static int set_error(struct acl_error *err, uint32_t line, const char *fmt, const char *arg)
{
	if (err) {
		err->line = line;
		snprintf(err->msg, sizeof(err->msg), fmt, arg);
	}
	return -EINVAL;
}

static struct acl_rule *push_rule(struct acl_rules *r)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->rules = hd_realloc(r->rules, r->cap * sizeof(*r->rules));
	}
	memset(&r->rules[r->n], 0, sizeof(r->rules[0]));
	return &r->rules[r->n++];
}

/* Splits s at blanks into words (NUL-terminating them in place); returns the count. */
static size_t split_words(char *s, char **w, size_t max)
{
	char *save = NULL;
	size_t n = 0;

	for (char *tok = strtok_r(s, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return max + 1;
		w[n++] = tok;
	}
	return n;
}

static int parse_actions(const char *s, uint8_t *out)
{
	if (!strcmp(s, "all") || !strcmp(s, "subscribe,send") || !strcmp(s, "send,subscribe"))
		*out = ACL_SUBSCRIBE | ACL_SEND;
	else if (!strcmp(s, "subscribe"))
		*out = ACL_SUBSCRIBE;
	else if (!strcmp(s, "send"))
		*out = ACL_SEND;
	else
		return -EINVAL;
	return 0;
}

static int parse_who(struct acl_rule *rule, const char *s)
{
	if (!strcmp(s, "*")) {
		rule->who_kind = WHO_ANY;
		return 0;
	}
	if (!strncmp(s, "user:", 5) && users_name_is_valid(s + 5, strlen(s + 5))) {
		rule->who_kind = WHO_USER;
		strcpy(rule->who, s + 5);
		return 0;
	}
	if (!strncmp(s, "tag:", 4) && users_tag_is_valid(s + 4, strlen(s + 4))) {
		rule->who_kind = WHO_TAG;
		strcpy(rule->who, s + 4);
		return 0;
	}
	return -EINVAL;
}

static int parse_rule(struct acl_rules *r, char **w, size_t nw, const char *vhost,
		      uint32_t line, struct acl_error *err)
{
	struct acl_rule *rule;

	if (nw < 4 || nw > 3 + ACL_RULE_PATTERNS_MAX)
		return set_error(err, line, "expected: allow|deny ACTIONS WHO PATTERN...%s",
				 nw > 4 ? " (at most 16 patterns)" : "");
	if (strcmp(w[0], "allow") && strcmp(w[0], "deny"))
		return set_error(err, line, "rule must start with allow or deny, not '%s'", w[0]);
	if (r->n >= ACL_RULES_MAX)
		return set_error(err, line, "too many rules%s", "");
	rule = push_rule(r);
	rule->allow = w[0][0] == 'a';
	rule->line = line;
	strcpy(rule->vhost, vhost);
	if (parse_actions(w[1], &rule->actions))
		return set_error(err, line, "unknown action '%s' (subscribe, send, all)", w[1]);
	if (parse_who(rule, w[2]))
		return set_error(err, line, "unknown subject '%s' (*, user:NAME, tag:TAG)", w[2]);
	for (size_t i = 3; i < nw; i++) {
		if (!acl_pattern_is_valid(w[i], strlen(w[i])))
			return set_error(err, line,
					 "invalid pattern '%s' (# or /kind/words, {user} only)", w[i]);
		rule->pat[rule->npat++] = hd_strndup(w[i], strlen(w[i]));
	}
	return 0;
}

/* `defaults` inside a section: the built-in rules, bound to that section's vhost. */
static int insert_defaults(struct acl_rules *r, const char *vhost, uint32_t line,
			   struct acl_error *err)
{
	struct acl_rules *d = acl_rules_create_defaults();

	for (size_t i = 0; i < d->n; i++) {
		struct acl_rule *rule;

		if (r->n >= ACL_RULES_MAX) {
			acl_rules_destroy(d);
			return set_error(err, line, "too many rules%s", "");
		}
		rule = push_rule(r);
		*rule = d->rules[i];
		d->rules[i].npat = 0;	/* the patterns move to r */
		strcpy(rule->vhost, vhost);
		rule->line = line;
	}
	acl_rules_destroy(d);
	return 0;
}

static int parse_section(char *s, size_t len, char *vhost, uint32_t line, struct acl_error *err)
{
	char *name;

	if (s[len - 1] != ']' || strncmp(s, "[vhost ", 7))
		return set_error(err, line, "section must be [vhost NAME] or [vhost *]%s", "");
	s[len - 1] = '\0';
	name = s + 7;
	while (*name == ' ' || *name == '\t')
		name++;
	if (strcmp(name, "*") && !users_vhost_is_valid(name, strlen(name)))
		return set_error(err, line, "invalid virtual host name '%s'", name);
	strcpy(vhost, name);
	return 0;
}

static int parse_line(struct acl_rules *r, char *s, size_t len, char *vhost, uint32_t line,
		      struct acl_error *err)
{
	char *w[3 + ACL_RULE_PATTERNS_MAX + 1];
	size_t nw;

	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		s[--len] = '\0';
	while (*s == ' ' || *s == '\t') {
		s++;
		len--;
	}
	if (len == 0 || s[0] == '#')
		return 0;
	if (s[0] == '[')
		return parse_section(s, len, vhost, line, err);
	if (!vhost[0])
		return set_error(err, line, "rule before any [vhost NAME] section%s", "");
	if (!strcmp(s, "defaults"))
		return insert_defaults(r, vhost, line, err);
	nw = split_words(s, w, HD_ARRAY_LEN(w) - 1);
	return parse_rule(r, w, nw, vhost, line, err);
}

int acl_rules_parse(const char *buf, size_t len, struct acl_rules **out, struct acl_error *err)
{
	struct acl_rules *r = hd_calloc(1, sizeof(*r));
	char vhost[USERS_VHOST_MAX + 1] = "";
	char line[ACL_LINE_MAX + 1];
	uint32_t lineno = 0;
	size_t i = 0;
	int rc = 0;

	if (len > ACL_FILE_MAX)
		rc = set_error(err, 0, "rules file larger than 4 MiB%s", "");
	while (!rc && i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;

		lineno++;
		if (n > ACL_LINE_MAX)
			rc = set_error(err, lineno, "line longer than 4096 bytes%s", "");
		else if (memchr(buf + i, '\0', n))
			rc = set_error(err, lineno, "NUL byte in line%s", "");
		if (rc)
			break;
		memcpy(line, buf + i, n);
		line[n] = '\0';
		rc = parse_line(r, line, n, vhost, lineno, err);
		i += n + 1;
	}
	if (rc) {
		acl_rules_destroy(r);
		return rc;
	}
	*out = r;
	return 0;
}

struct acl_rules *acl_rules_create_defaults(void)
{
	struct acl_rules *r = NULL;
	int rc = acl_rules_parse(default_rules, sizeof(default_rules) - 1, &r, NULL);

	HD_ASSERT(rc == 0);
	for (size_t i = 0; i < r->n; i++)
		r->rules[i].line = 0;
	return r;
}

int acl_rules_load(const char *path, struct acl_rules **out, struct acl_error *err)
{
	char *buf;
	size_t len;
	int rc = hd_read_file(path, ACL_FILE_MAX, &buf, &len);

	if (rc) {
		if (err) {
			err->line = 0;
			snprintf(err->msg, sizeof(err->msg), "cannot read rules file %s: %s", path,
				 rc == -EINVAL ? "not a regular file" : strerror(-rc));
		}
		return rc;
	}
	/* a parse error names its line in err already */
	rc = acl_rules_parse(buf, len, out, err);
	hd_free(buf);
	return rc;
}

/* ---- decisions ---- */

static bool subject_matches(const struct acl_rule *rule, const struct acl_subject *s)
{
	switch (rule->who_kind) {
	case WHO_USER:
		return !strcmp(rule->who, s->user);
	case WHO_TAG:
		return users_list_has(s->tags, rule->who, strlen(rule->who));
	default:
		return true;
	}
}

void acl_check(const struct acl_rules *r, const char *vhost, const struct acl_subject *s,
	       enum acl_action a, const char *dest, size_t len, struct acl_decision *d)
{
	d->allowed = false;
	d->line = 0;
	if (users_list_has(s->tags, "administrator", 13)) {
		d->allowed = true;
		d->why = "administrator";
		return;
	}
	if (len > ACL_DEST_MAX) {
		d->why = "destination too long";
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct acl_rule *rule = &r->rules[i];

		if (!(rule->actions & a) || !subject_matches(rule, s) ||
		    (strcmp(rule->vhost, "*") && strcmp(rule->vhost, vhost)))
			continue;
		for (unsigned k = 0; k < rule->npat; k++) {
			const char *pat = rule->pat[k];

			/* allow: the pattern must cover everything the destination names; deny:
			 * it need only share one name with it, or a wildcard subscription
			 * (/topic/#) would reach what the rule denies (/topic/secret.#) */
			if (rule->allow ? !acl_pattern_covers(pat, strlen(pat), s->user, dest, len)
					: !acl_pattern_overlaps(pat, strlen(pat), s->user, dest, len))
				continue;
			d->allowed = rule->allow;
			d->line = rule->line;
			d->why = rule->allow ? "allowed by rule" : "denied by rule";
			return;
		}
	}
	d->why = "no rule allows it";
}
