/*
 * auth/jwt_json.c - recursive descent over RFC 8259's grammar. Recursion is bounded by
 * JWT_JSON_MAX_DEPTH, tokens by the caller's array, input by JWT_JSON_MAX_LEN; every loop
 * advances the position, so time is linear in the input. The whole document is checked as
 * UTF-8 first, so string scanning only has to care about ASCII.
 */
#include "auth/jwt_json.h"

#include "proto/utf8.h"

#include <string.h>

struct parser {
	struct jwt_json *j;
	const char *s;
	size_t len;
	size_t pos;
	unsigned depth;
};

static int parse_value(struct parser *p);

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->s[p->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		p->pos++;
	}
}

static int new_tok(struct parser *p, enum jwt_json_type type, uint32_t *idx)
{
	struct jwt_json_tok *t;

	if (p->j->n >= p->j->cap)
		return JWT_JSON_E_TOKENS;
	*idx = p->j->n++;
	t = &p->j->toks[*idx];
	t->type = (uint8_t)type;
	t->start = (uint32_t)p->pos;
	t->len = 0;
	t->count = 0;
	t->next = *idx + 1;
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads the 4 hex digits of a \u escape at s[0..4). Returns the code unit or -1. */
static int32_t read_u16(const char *s, size_t avail)
{
	int32_t v = 0;

	if (avail < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hex_value(s[i]);

		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

static bool is_high_surrogate(int32_t u)
{
	return u >= 0xd800 && u <= 0xdbff;
}

static bool is_low_surrogate(int32_t u)
{
	return u >= 0xdc00 && u <= 0xdfff;
}

/* s[pos] is the backslash. Advances past the escape, a surrogate pair as one. */
static int scan_escape(struct parser *p)
{
	int32_t u;

	if (p->pos + 1 >= p->len)
		return JWT_JSON_E_SYNTAX;
	if (strchr("\"\\/bfnrt", p->s[p->pos + 1]) && p->s[p->pos + 1] != '\0') {
		p->pos += 2;
		return 0;
	}
	if (p->s[p->pos + 1] != 'u')
		return JWT_JSON_E_SYNTAX;
	u = read_u16(p->s + p->pos + 2, p->len - p->pos - 2);
	if (u < 0)
		return JWT_JSON_E_SYNTAX;
	p->pos += 6;
	if (is_low_surrogate(u))
		return JWT_JSON_E_UTF8;
	if (!is_high_surrogate(u))
		return 0;
	if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
		return JWT_JSON_E_UTF8;
	u = read_u16(p->s + p->pos + 2, p->len - p->pos - 2);
	if (!is_low_surrogate(u))
		return u < 0 ? JWT_JSON_E_SYNTAX : JWT_JSON_E_UTF8;
	p->pos += 6;
	return 0;
}

static int parse_string(struct parser *p)
{
	uint32_t idx;
	size_t start;
	int err = new_tok(p, JWT_JSON_STRING, &idx);

	if (err)
		return err;
	start = ++p->pos;	/* past the opening quote */
	while (p->pos < p->len) {
		unsigned char c = (unsigned char)p->s[p->pos];

		if (c == '"') {
			p->j->toks[idx].start = (uint32_t)start;
			p->j->toks[idx].len = (uint32_t)(p->pos - start);
			p->pos++;
			return 0;
		}
		if (c < 0x20)
			return JWT_JSON_E_SYNTAX;
		if (c == '\\') {
			err = scan_escape(p);
			if (err)
				return err;
			continue;
		}
		p->pos++;
	}
	return JWT_JSON_E_SYNTAX;
}

static size_t scan_digits(struct parser *p)
{
	size_t n = 0;

	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
		p->pos++;
		n++;
	}
	return n;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(struct parser *p)
{
	uint32_t idx;
	size_t start = p->pos;
	int err = new_tok(p, JWT_JSON_NUMBER, &idx);

	if (err)
		return err;
	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '0')
		p->pos++;
	else if (scan_digits(p) == 0)
		return JWT_JSON_E_SYNTAX;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (scan_digits(p) == 0)
			return JWT_JSON_E_SYNTAX;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (scan_digits(p) == 0)
			return JWT_JSON_E_SYNTAX;
	}
	p->j->toks[idx].len = (uint32_t)(p->pos - start);
	return 0;
}

static int parse_literal(struct parser *p, const char *word, enum jwt_json_type type)
{
	size_t n = strlen(word);
	uint32_t idx;
	int err;

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n))
		return JWT_JSON_E_SYNTAX;
	err = new_tok(p, type, &idx);
	if (err)
		return err;
	p->j->toks[idx].len = (uint32_t)n;
	p->pos += n;
	return 0;
}

/* Shared by objects and arrays: open, members separated by commas, close. */
static int parse_container(struct parser *p, enum jwt_json_type type)
{
	char close = type == JWT_JSON_OBJECT ? '}' : ']';
	uint32_t idx;
	int err;

	if (p->depth >= JWT_JSON_MAX_DEPTH)
		return JWT_JSON_E_DEPTH;
	err = new_tok(p, type, &idx);
	if (err)
		return err;
	p->depth++;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close)
		goto done;
	for (;;) {
		if (type == JWT_JSON_OBJECT) {
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return JWT_JSON_E_SYNTAX;
			err = parse_string(p);
			if (err)
				return err;
			skip_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':')
				return JWT_JSON_E_SYNTAX;
			p->pos++;
			skip_ws(p);
		}
		err = parse_value(p);
		if (err)
			return err;
		p->j->toks[idx].count++;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == close)
			break;
		if (p->pos >= p->len || p->s[p->pos] != ',')
			return JWT_JSON_E_SYNTAX;
		p->pos++;
		skip_ws(p);
	}
done:
	p->pos++;
	p->depth--;
	p->j->toks[idx].len = (uint32_t)(p->pos - p->j->toks[idx].start);
	p->j->toks[idx].next = p->j->n;
	return 0;
}

static int parse_value(struct parser *p)
{
	if (p->pos >= p->len)
		return JWT_JSON_E_SYNTAX;
	switch (p->s[p->pos]) {
	case '{':
		return parse_container(p, JWT_JSON_OBJECT);
	case '[':
		return parse_container(p, JWT_JSON_ARRAY);
	case '"':
		return parse_string(p);
	case 't':
		return parse_literal(p, "true", JWT_JSON_TRUE);
	case 'f':
		return parse_literal(p, "false", JWT_JSON_FALSE);
	case 'n':
		return parse_literal(p, "null", JWT_JSON_NULL);
	default:
		if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
			return parse_number(p);
		return JWT_JSON_E_SYNTAX;
	}
}

int jwt_json_parse(struct jwt_json *j, struct jwt_json_tok *toks, uint32_t cap, const char *src,
		   size_t len)
{
	struct parser p = { .j = j, .s = src, .len = len };
	int err;

	j->src = src;
	j->toks = toks;
	j->cap = cap;
	j->n = 0;
	if (len > JWT_JSON_MAX_LEN)
		return JWT_JSON_E_TOO_LARGE;
	if (!utf8_is_valid(src, len))
		return JWT_JSON_E_UTF8;
	skip_ws(&p);
	err = parse_value(&p);
	if (err)
		return err;
	skip_ws(&p);
	return p.pos == len ? 0 : JWT_JSON_E_SYNTAX;
}

const char *jwt_json_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case JWT_JSON_E_SYNTAX:
		return "not valid JSON";
	case JWT_JSON_E_DEPTH:
		return "JSON nested too deeply";
	case JWT_JSON_E_TOKENS:
		return "JSON has too many values";
	case JWT_JSON_E_UTF8:
		return "JSON is not valid UTF-8";
	case JWT_JSON_E_TOO_LARGE:
		return "JSON document too large";
	case JWT_JSON_E_TYPE:
		return "JSON value has the wrong type";
	case JWT_JSON_E_SPACE:
		return "JSON string too long";
	case JWT_JSON_E_NUL:
		return "JSON string holds a NUL";
	case JWT_JSON_E_RANGE:
		return "JSON number out of range";
	case JWT_JSON_E_DUPLICATE:
		return "JSON object has a duplicate key";
	default:
		return "JSON error";
	}
}

static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static char simple_escape(char c)
{
	switch (c) {
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	default:
		return c;	/* " \ / stand for themselves */
	}
}

/* The parser validated every escape, so this decoder only has to count space. */
ssize_t jwt_json_string(const struct jwt_json *j, uint32_t tok, char *out, size_t cap)
{
	const struct jwt_json_tok *t;
	const char *s;
	size_t o = 0;

	if (tok >= j->n || j->toks[tok].type != JWT_JSON_STRING)
		return JWT_JSON_E_TYPE;
	t = &j->toks[tok];
	s = j->src + t->start;
	for (size_t i = 0; i < t->len;) {
		char buf[4];
		size_t n;

		if (s[i] != '\\') {
			buf[0] = s[i++];
			n = 1;
		} else if (s[i + 1] != 'u') {
			buf[0] = simple_escape(s[i + 1]);
			n = 1;
			i += 2;
		} else {
			uint32_t cp = (uint32_t)read_u16(s + i + 2, 4);

			i += 6;
			if (is_high_surrogate((int32_t)cp)) {
				uint32_t lo = (uint32_t)read_u16(s + i + 2, 4);

				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			}
			n = put_utf8(buf, cp);
		}
		if (n == 1 && buf[0] == '\0')
			return JWT_JSON_E_NUL;
		if (cap - o <= n)
			return JWT_JSON_E_SPACE;
		memcpy(out + o, buf, n);
		o += n;
	}
	if (cap == 0)
		return JWT_JSON_E_SPACE;
	out[o] = '\0';
	return (ssize_t)o;
}

bool jwt_json_string_eq(const struct jwt_json *j, uint32_t tok, const char *s)
{
	char buf[256];
	size_t len = strlen(s);
	ssize_t n;

	if (len >= sizeof(buf))
		return false;
	n = jwt_json_string(j, tok, buf, len + 2);	/* one more than s: longer is unequal */
	return n == (ssize_t)len && memcmp(buf, s, len) == 0;
}

int jwt_json_find(const struct jwt_json *j, uint32_t obj, const char *key, uint32_t *val)
{
	int found = 0;
	uint32_t k;

	if (obj >= j->n || j->toks[obj].type != JWT_JSON_OBJECT)
		return JWT_JSON_E_TYPE;
	k = obj + 1;
	for (uint32_t m = 0; m < j->toks[obj].count; m++) {
		uint32_t v = k + 1;

		if (jwt_json_string_eq(j, k, key)) {
			if (found)
				return JWT_JSON_E_DUPLICATE;
			found = 1;
			*val = v;
		}
		k = j->toks[v].next;
	}
	return found;
}

int jwt_json_seconds(const struct jwt_json *j, uint32_t tok, bool round_up, int64_t *out)
{
	const struct jwt_json_tok *t;
	const char *s;
	size_t i = 0;
	bool neg = false;
	bool frac = false;
	int64_t v = 0;

	if (tok >= j->n || j->toks[tok].type != JWT_JSON_NUMBER)
		return JWT_JSON_E_TYPE;
	t = &j->toks[tok];
	s = j->src + t->start;
	if (s[0] == '-') {
		neg = true;
		i++;
	}
	for (; i < t->len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v >= 100000000000000)	/* a 16th digit: past 10^15 */
			return JWT_JSON_E_RANGE;
		v = v * 10 + (s[i] - '0');
	}
	if (i < t->len && s[i] == '.') {
		for (i++; i < t->len && s[i] >= '0' && s[i] <= '9'; i++)
			frac |= s[i] != '0';
	}
	if (i < t->len)
		return JWT_JSON_E_RANGE;	/* an exponent */
	if (neg)
		v = -v;
	/* the fraction moves toward +inf when rounding up, toward -inf otherwise */
	if (frac && round_up && !neg)
		v++;
	else if (frac && !round_up && neg)
		v--;
	*out = v;
	return 0;
}
