/*
 * tools/ctl_json.c - recursive-descent JSON reader (see ctl_json.h). Depth is capped so a
 * hostile answer cannot overflow the stack.
 */
#include "tools/ctl_json.h"

#include "core/base/hd_alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct reader {
	const char *p;
	const char *end;
	const char *err;
};

static void skip_ws(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static bool eat(struct reader *r, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n))
		return false;
	r->p += n;
	return true;
}

static struct ctl_json *node(enum ctl_json_type t)
{
	struct ctl_json *j = hd_calloc(1, sizeof(*j));

	j->type = t;
	return j;
}

static void put_utf8(char *out, size_t *len, uint32_t cp)
{
	if (cp < 0x80) {
		out[(*len)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*len)++] = (char)(0xc0 | cp >> 6);
		out[(*len)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*len)++] = (char)(0xe0 | cp >> 12);
		out[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*len)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*len)++] = (char)(0xf0 | cp >> 18);
		out[(*len)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*len)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static int hex4(struct reader *r, uint32_t *out)
{
	char buf[5];
	char *end;

	if (r->end - r->p < 4)
		return -1;
	memcpy(buf, r->p, 4);
	buf[4] = '\0';
	*out = (uint32_t)strtoul(buf, &end, 16);
	if (end != buf + 4)
		return -1;
	r->p += 4;
	return 0;
}

static int escape(struct reader *r, char *out, size_t *len)
{
	static const char from[] = "\"\\/bfnrt";
	static const char to[] = "\"\\/\b\f\n\r\t";
	const char *hit;
	uint32_t cp;
	uint32_t lo;

	if (r->p >= r->end)
		return -1;
	hit = memchr(from, *r->p, sizeof(from) - 1);
	if (hit) {
		out[(*len)++] = to[hit - from];
		r->p++;
		return 0;
	}
	if (*r->p++ != 'u' || hex4(r, &cp))
		return -1;
	if (cp >= 0xd800 && cp < 0xdc00) {
		if (!eat(r, "\\u") || hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff)
			return -1;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	put_utf8(out, len, cp);
	return 0;
}

/* At the opening quote; returns the decoded string or NULL. */
static char *string(struct reader *r)
{
	const char *start = ++r->p;
	const char *stop;
	char *out;
	size_t len = 0;

	while (r->p < r->end && *r->p != '"')
		r->p += *r->p == '\\' ? 2 : 1;
	if (r->p >= r->end) {
		r->err = "unterminated string";
		return NULL;
	}
	stop = r->p;
	out = hd_alloc((size_t)(stop - start) + 1);	/* decoding never grows a string */
	for (r->p = start; r->p < stop;) {
		unsigned char c = (unsigned char)*r->p;

		if (c < 0x20) {
			r->err = "control character in string";
			hd_free(out);
			return NULL;
		}
		if (c != '\\') {
			out[len++] = (char)c;
			r->p++;
			continue;
		}
		r->p++;
		if (escape(r, out, &len) || r->p > stop) {
			r->err = "bad escape";
			hd_free(out);
			return NULL;
		}
	}
	r->p++;
	out[len] = '\0';
	return out;
}

static struct ctl_json *value(struct reader *r, int depth);

static struct ctl_json *number(struct reader *r)
{
	char buf[64];
	size_t n = 0;
	char *end;
	struct ctl_json *j;

	while (r->p + n < r->end && n < sizeof(buf) - 1 && strchr("+-0123456789.eE", r->p[n]))
		n++;
	memcpy(buf, r->p, n);
	buf[n] = '\0';
	j = node(CTL_JSON_NUMBER);
	j->num = strtod(buf, &end);
	if (!n || end != buf + n) {
		r->err = "bad number";
		hd_free(j);
		return NULL;
	}
	if (buf[0] != '-' && !strpbrk(buf, ".eE")) {
		errno = 0;
		j->u64 = strtoull(buf, NULL, 10);
		j->is_u64 = errno == 0;
	}
	r->p += n;
	return j;
}

static void append(struct ctl_json *j, char *key, struct ctl_json *v)
{
	j->items = hd_realloc(j->items, (j->n + 1) * sizeof(*j->items));
	if (j->type == CTL_JSON_OBJECT)
		j->keys = hd_realloc(j->keys, (j->n + 1) * sizeof(*j->keys));
	if (key)
		j->keys[j->n] = key;
	j->items[j->n++] = v;
}

/* Array or object after its opening bracket. */
static struct ctl_json *container(struct reader *r, int depth, bool object)
{
	struct ctl_json *j = node(object ? CTL_JSON_OBJECT : CTL_JSON_ARRAY);
	char close = object ? '}' : ']';

	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return j;
	}
	for (;;) {
		char *key = NULL;
		struct ctl_json *v;

		skip_ws(r);
		if (object) {
			if (r->p >= r->end || *r->p != '"' || !(key = string(r)))
				goto fail;
			skip_ws(r);
			if (!eat(r, ":")) {
				hd_free(key);
				goto fail;
			}
		}
		v = value(r, depth + 1);
		if (!v) {
			hd_free(key);
			goto fail;
		}
		append(j, key, v);
		skip_ws(r);
		if (eat(r, ","))
			continue;
		if (r->p < r->end && *r->p == close) {
			r->p++;
			return j;
		}
		goto fail;
	}
fail:
	if (!r->err)
		r->err = object ? "bad object" : "bad array";
	ctl_json_free(j);
	return NULL;
}

static struct ctl_json *value(struct reader *r, int depth)
{
	struct ctl_json *j;

	if (depth > MAX_DEPTH) {
		r->err = "nested too deep";
		return NULL;
	}
	skip_ws(r);
	if (r->p >= r->end) {
		r->err = "unexpected end";
		return NULL;
	}
	switch (*r->p) {
	case '{':
		return container(r, depth, true);
	case '[':
		return container(r, depth, false);
	case '"':
		j = node(CTL_JSON_STRING);
		j->str = string(r);
		if (!j->str) {
			hd_free(j);
			return NULL;
		}
		return j;
	default:
		break;
	}
	if (eat(r, "true") || eat(r, "false")) {
		j = node(CTL_JSON_BOOL);
		j->boolean = r->p[-1] == 'e' && r->p[-2] == 'u';
		return j;
	}
	if (eat(r, "null"))
		return node(CTL_JSON_NULL);
	return number(r);
}

struct ctl_json *ctl_json_parse(const char *text, size_t len, char *err, size_t err_cap)
{
	struct reader r = { .p = text, .end = text + len };
	struct ctl_json *j = value(&r, 0);

	if (j) {
		skip_ws(&r);
		if (r.p != r.end) {
			r.err = "trailing bytes";
			ctl_json_free(j);
			j = NULL;
		}
	}
	if (!j && err && err_cap)
		snprintf(err, err_cap, "%s at byte %zu", r.err ? r.err : "bad JSON",
			 (size_t)(r.p - text));
	return j;
}

void ctl_json_free(struct ctl_json *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++) {
		ctl_json_free(j->items[i]);
		if (j->keys)
			hd_free(j->keys[i]);
	}
	hd_free(j->items);
	hd_free(j->keys);
	hd_free(j->str);
	hd_free(j);
}

const struct ctl_json *ctl_json_get(const struct ctl_json *j, const char *key)
{
	if (!j || j->type != CTL_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < j->n; i++)
		if (!strcmp(j->keys[i], key))
			return j->items[i];
	return NULL;
}

const char *ctl_json_get_str(const struct ctl_json *j, const char *key, const char *dflt)
{
	const struct ctl_json *v = ctl_json_get(j, key);

	return v && v->type == CTL_JSON_STRING ? v->str : dflt;
}

uint64_t ctl_json_get_u64(const struct ctl_json *j, const char *key, uint64_t dflt)
{
	const struct ctl_json *v = ctl_json_get(j, key);

	return v && v->type == CTL_JSON_NUMBER && v->is_u64 ? v->u64 : dflt;
}
