/*
 * auth/users.c - users table: entries in an array (insertion order, for listing and
 * rewriting) plus an open-addressing index keyed with SipHash under a random per-table
 * key, so a users file or a login cannot be crafted to collide the index.
 */
#include "auth/users.h"

#include "core/base/hd_alloc.h"
#include "core/base/hd_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct users_table {
	struct users_entry **entries;	/* insertion order; each one allocation with its strings */
	size_t n;
	size_t cap;
	uint32_t *index;		/* slot -> entries index + 1; 0 empty */
	size_t index_cap;		/* power of two, at least 2 * n */
	uint8_t key[crypto_shorthash_KEYBYTES];
};

static void ensure_sodium(void)
{
	/* idempotent and thread-safe; -1 only when the kernel gives no randomness */
	if (sodium_init() < 0) {
		fprintf(stderr, "users: libsodium failed to initialize\n");
		abort();
	}
}

struct users_table *users_table_create(void)
{
	struct users_table *t = hd_calloc(1, sizeof(*t));

	ensure_sodium();
	randombytes_buf(t->key, sizeof(t->key));
	return t;
}

void users_table_destroy(struct users_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		/* the hash is not secret, but a wiped free list is cheap hygiene */
		sodium_memzero(t->entries[i], sizeof(*t->entries[i]));
		hd_free(t->entries[i]);
	}
	hd_free(t->entries);
	hd_free(t->index);
	hd_free(t);
}

/* ---- validation ---- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '@' || c == '+' || c == '-';
}

bool users_name_is_valid(const char *s, size_t len)
{
	if (len == 0 || len > USERS_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!name_char(s[i]))
			return false;
	}
	return true;
}

bool users_tag_is_valid(const char *s, size_t len)
{
	if (len == 0 || len > USERS_TAG_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool users_vhost_is_valid(const char *s, size_t len)
{
	if (len == 0 || len > USERS_VHOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || strchr(":,*#[]", c))
			return false;
	}
	return true;
}

/* Reads a decimal of 1..7 digits at *p, advancing it. */
static bool read_param(const char **p, const char *end, uint32_t *out)
{
	uint32_t v = 0;
	int digits = 0;

	while (*p < end && **p >= '0' && **p <= '9' && digits < 8) {
		v = v * 10 + (uint32_t)(**p - '0');
		(*p)++;
		digits++;
	}
	*out = v;
	return digits > 0 && digits < 8;
}

static bool expect(const char **p, const char *end, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(end - *p) < n || memcmp(*p, lit, n))
		return false;
	*p += n;
	return true;
}

/* base64 (standard alphabet, no padding) of at least min characters, then `stop`. */
static bool b64_run(const char **p, const char *end, size_t min, char stop)
{
	const char *start = *p;

	while (*p < end && **p != stop) {
		char c = **p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return false;
		(*p)++;
	}
	return (size_t)(*p - start) >= min;
}

bool users_hash_is_valid(const char *s, size_t len)
{
	const char *p = s;
	const char *end = s + len;
	uint32_t m;
	uint32_t t;
	uint32_t par;

	if (len > USERS_HASH_MAX)
		return false;
	if (!expect(&p, end, "$argon2id$v=19$m=") || !read_param(&p, end, &m) ||
	    !expect(&p, end, ",t=") || !read_param(&p, end, &t) || !expect(&p, end, ",p=") ||
	    !read_param(&p, end, &par) || !expect(&p, end, "$"))
		return false;
	if (m < 8 || m > USERS_ARGON2_MAX_KIB || t < 1 || t > USERS_ARGON2_MAX_T || par != 1)
		return false;
	if (!b64_run(&p, end, 11, '$') || !expect(&p, end, "$"))	/* salt: 8+ bytes */
		return false;
	return b64_run(&p, end, 22, '\0') && p == end;	/* hash: 16+ bytes */
}

bool users_list_has(const char *list, const char *item, size_t len)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == len && !memcmp(p, item, len))
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

int users_normalize_list(const char *in, size_t len, bool vhosts, char *out, size_t cap,
			 const char **reason)
{
	size_t max = vhosts ? USERS_VHOSTS_MAX : USERS_TAGS_MAX;
	size_t o = 0;
	size_t items = 0;
	size_t i = 0;

	if (cap == 0)
		return -EINVAL;
	out[0] = '\0';
	if (vhosts && len == 1 && in[0] == '*') {
		if (cap < 2)
			return -EINVAL;
		memcpy(out, "*", 2);
		return 1;
	}
	while (i < len) {
		const char *item = in + i;
		const char *comma = memchr(item, ',', len - i);
		size_t n = comma ? (size_t)(comma - item) : len - i;
		bool ok = vhosts ? users_vhost_is_valid(item, n) : users_tag_is_valid(item, n);

		if (!ok) {
			*reason = vhosts ? "invalid virtual host name (or `*` mixed with names)"
					 : "invalid tag (1-32 of a-z 0-9 _ -)";
			return -EINVAL;
		}
		if (users_list_has(out, item, n)) {
			*reason = vhosts ? "virtual host listed twice" : "tag listed twice";
			return -EINVAL;
		}
		if (++items > max || o + n + 2 > cap) {
			*reason = vhosts ? "too many virtual hosts" : "too many tags";
			return -EINVAL;
		}
		if (o)
			out[o++] = ',';
		memcpy(out + o, item, n);
		o += n;
		out[o] = '\0';
		i += n + (comma != NULL);
		if (comma && i == len) {
			*reason = "empty item at the end of a list";
			return -EINVAL;
		}
	}
	return (int)o;
}

uint32_t users_tag_bits(const char *tags)
{
	uint32_t bits = 0;

	if (users_list_has(tags, "administrator", 13))
		bits |= USERS_TAG_ADMINISTRATOR;
	if (users_list_has(tags, "service", 7))
		bits |= USERS_TAG_SERVICE;
	return bits;
}

bool users_entry_allows_vhost(const struct users_entry *e, const char *vhost, size_t len)
{
	return strcmp(e->vhosts, "*") == 0 || users_list_has(e->vhosts, vhost, len);
}

/* ---- the table ---- */

static uint64_t name_hash(const struct users_table *t, const char *name, size_t len)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, (const uint8_t *)name, len, t->key);
	memcpy(&v, h, sizeof(v));
	return v;
}

/* Slot holding name, or the empty slot where it would go. */
static size_t find_slot(const struct users_table *t, const char *name, size_t len)
{
	size_t mask = t->index_cap - 1;
	size_t i = (size_t)name_hash(t, name, len) & mask;

	for (;;) {
		uint32_t e = t->index[i];

		if (e == 0)
			return i;
		if (strlen(t->entries[e - 1]->name) == len && !memcmp(t->entries[e - 1]->name, name, len))
			return i;
		i = (i + 1) & mask;
	}
}

static void rebuild_index(struct users_table *t, size_t cap)
{
	hd_free(t->index);
	t->index = hd_calloc(cap, sizeof(*t->index));
	t->index_cap = cap;
	for (size_t k = 0; k < t->n; k++) {
		const char *name = t->entries[k]->name;

		t->index[find_slot(t, name, strlen(name))] = (uint32_t)(k + 1);
	}
}

const struct users_entry *users_table_find(const struct users_table *t, const char *name,
					   size_t len)
{
	uint32_t e;

	if (t->n == 0 || len > USERS_NAME_MAX)
		return NULL;
	e = t->index[find_slot(t, name, len)];
	return e ? t->entries[e - 1] : NULL;
}

size_t users_table_count(const struct users_table *t)
{
	return t->n;
}

const struct users_entry *users_table_at(const struct users_table *t, size_t i)
{
	return i < t->n ? t->entries[i] : NULL;
}

static int set_error(struct users_error *err, uint32_t line, const char *msg)
{
	if (err) {
		err->line = line;
		snprintf(err->msg, sizeof(err->msg), "%s", msg);
	}
	return -EINVAL;
}

/* One allocation: the entry, then name, hash, tags and vhosts with their NULs. */
static struct users_entry *entry_new(const struct users_entry *e, const char *tags,
				     const char *vhosts)
{
	size_t ln = strlen(e->name) + 1;
	size_t lh = strlen(e->hash) + 1;
	size_t lt = strlen(tags) + 1;
	size_t lv = strlen(vhosts) + 1;
	struct users_entry *n = hd_alloc(sizeof(*n) + ln + lh + lt + lv);
	char *p = (char *)(n + 1);

	*n = *e;
	n->name = memcpy(p, e->name, ln);
	n->hash = memcpy(p += ln, e->hash, lh);
	n->tags = memcpy(p += lh, tags, lt);
	n->vhosts = memcpy(p + lt, vhosts, lv);
	n->tag_bits = users_tag_bits(tags);
	return n;
}

static int validate_entry(const struct users_entry *e, char *tags, char *vhosts,
			  struct users_error *err)
{
	const char *reason = NULL;
	const char *t = e->tags ? e->tags : "";
	const char *v = e->vhosts && e->vhosts[0] ? e->vhosts : "/";

	if (!users_name_is_valid(e->name, strlen(e->name)))
		return set_error(err, e->line,
				 "invalid user name (1-63 of A-Z a-z 0-9 . _ @ + -, not starting "
				 "with - or .)");
	if (!users_hash_is_valid(e->hash, strlen(e->hash)))
		return set_error(err, e->line,
				 "password field is not an argon2id hash from crypto_pwhash_str "
				 "(use heraldctl user add)");
	if (users_normalize_list(t, strlen(t), false, tags, USERS_LINE_MAX, &reason) < 0 ||
	    users_normalize_list(v, strlen(v), true, vhosts, USERS_LINE_MAX, &reason) < 0)
		return set_error(err, e->line, reason);
	return 0;
}

static void append_entry(struct users_table *t, struct users_entry *n, size_t slot)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->entries = hd_realloc(t->entries, t->cap * sizeof(*t->entries));
	}
	t->entries[t->n++] = n;
	t->index[slot] = (uint32_t)t->n;
	if (t->n * 2 > t->index_cap)
		rebuild_index(t, t->index_cap * 2);
}

int users_table_add(struct users_table *t, const struct users_entry *e, bool replace,
		    struct users_error *err)
{
	char tags[USERS_LINE_MAX];
	char vhosts[USERS_LINE_MAX];
	struct users_entry *n;
	size_t slot;
	int rc = validate_entry(e, tags, vhosts, err);

	if (rc)
		return rc;
	if (!t->index)
		rebuild_index(t, 32);
	slot = find_slot(t, e->name, strlen(e->name));
	if (t->index[slot] && !replace) {
		char msg[160];

		snprintf(msg, sizeof(msg), "user '%s' is defined twice (first on line %u)", e->name,
			 t->entries[t->index[slot] - 1]->line);
		set_error(err, e->line, msg);
		return -EEXIST;
	}
	if (!t->index[slot] && t->n >= USERS_MAX)
		return set_error(err, e->line, "too many users (100000 at most)");
	n = entry_new(e, tags, vhosts);
	if (t->index[slot]) {
		struct users_entry **old = &t->entries[t->index[slot] - 1];

		sodium_memzero(*old, sizeof(**old));
		hd_free(*old);
		*old = n;
		return 0;
	}
	append_entry(t, n, slot);
	return 0;
}

/* ---- the file ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* One line without its newline; blanks around it and a trailing CR are ignored. */
static int parse_line(struct users_table *t, const char *s, size_t len, uint32_t lineno,
		      struct users_error *err)
{
	char buf[USERS_LINE_MAX + 1];
	char *field[4] = { 0 };
	struct users_entry e;
	size_t nf = 0;
	char *p = buf;

	while (len && (is_blank(s[len - 1]) || s[len - 1] == '\r'))
		len--;
	while (len && is_blank(*s)) {
		s++;
		len--;
	}
	if (len == 0 || s[0] == '#')
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	while (p) {
		if (nf == 4)
			return set_error(err, lineno, "too many ':' fields (name:hash:tags:vhosts)");
		field[nf++] = p;
		p = strchr(p, ':');
		if (p)
			*p++ = '\0';
	}
	if (nf < 2)
		return set_error(err, lineno, "expected name:hash[:tags[:vhosts]]");
	e = (struct users_entry){ .name = field[0], .hash = field[1], .tags = field[2],
				  .vhosts = field[3], .line = lineno, .source = USERS_SRC_FILE };
	return users_table_add(t, &e, false, err);
}

int users_table_parse(struct users_table *t, const char *buf, size_t len, struct users_error *err)
{
	uint32_t lineno = 0;
	const char *nul;
	size_t i = 0;

	if (len > USERS_FILE_MAX)
		return set_error(err, 0, "users file larger than 64 MiB");
	nul = memchr(buf, '\0', len);
	if (nul) {
		for (const char *q = buf; q < nul; q++)
			lineno += *q == '\n';
		return set_error(err, lineno + 1, "users file holds a NUL byte");
	}
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;
		int rc;

		lineno++;
		if (n > USERS_LINE_MAX)
			return set_error(err, lineno, "line longer than 1024 bytes");
		rc = parse_line(t, buf + i, n, lineno, err);
		if (rc)
			return rc;
		i += n + 1;
	}
	return 0;
}

int users_table_load(struct users_table *t, const char *path, struct users_error *err)
{
	char *buf;
	size_t len;
	int rc = hd_read_file(path, USERS_FILE_MAX, &buf, &len);

	if (rc) {
		if (err) {
			err->line = 0;
			snprintf(err->msg, sizeof(err->msg), "cannot read users file %s: %s", path,
				 rc == -EINVAL ? "not a regular file" : strerror(-rc));
		}
		return rc;
	}
	/* a parse error (bad line, duplicate name) names its lines in err already */
	rc = users_table_parse(t, buf, len, err);
	hd_free(buf);
	return rc;
}

/* ---- passwords ---- */

int users_hash_password(const char *pass, size_t len, enum users_cost cost, char *out)
{
	unsigned long long ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
	size_t mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;

	ensure_sodium();
	if (len == 0 || len > USERS_PASSWORD_MAX)
		return -EINVAL;
	if (cost == USERS_COST_MODERATE) {
		ops = crypto_pwhash_OPSLIMIT_MODERATE;
		mem = crypto_pwhash_MEMLIMIT_MODERATE;
	} else if (cost == USERS_COST_MIN) {
		ops = crypto_pwhash_OPSLIMIT_MIN;
		mem = crypto_pwhash_MEMLIMIT_MIN;
	}
	/* crypto_pwhash_str always writes argon2id (libsodium >= 1.0.15) */
	if (crypto_pwhash_str(out, pass, len, ops, mem))
		return -ENOMEM;
	return 0;
}

bool users_verify_password(const char *hash, const char *pass, size_t len)
{
	if (len == 0 || len > USERS_PASSWORD_MAX || !users_hash_is_valid(hash, strlen(hash)))
		return false;
	return crypto_pwhash_str_verify(hash, pass, len) == 0;
}

int users_format_line(const struct users_entry *e, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s:%s:%s:%s\n", e->name, e->hash, e->tags ? e->tags : "",
			 e->vhosts && e->vhosts[0] ? e->vhosts : "/");

	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}
