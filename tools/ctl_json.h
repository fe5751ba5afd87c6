/*
 * tools/ctl_json.h - a small JSON reader (RFC 8259) for what heraldctl reads back from the
 * admin endpoint: parse into a tree, then look fields up by name. Not a general library:
 * depth and size are bounded, duplicate keys keep the first. Single-threaded.
 */
#ifndef TOOLS_CTL_JSON_H
#define TOOLS_CTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ctl_json_type {
	CTL_JSON_NULL,
	CTL_JSON_BOOL,
	CTL_JSON_NUMBER,
	CTL_JSON_STRING,
	CTL_JSON_ARRAY,
	CTL_JSON_OBJECT,
};

struct ctl_json {
	enum ctl_json_type type;
	bool boolean;
	double num;
	uint64_t u64;			/* exact value of a non-negative integer number */
	bool is_u64;
	char *str;			/* STRING: decoded UTF-8, NUL-terminated */
	struct ctl_json **items;	/* ARRAY, OBJECT: n values */
	char **keys;			/* OBJECT: n keys */
	size_t n;
};

/* Parses text[0..len) (one value, whitespace around it allowed). Returns the tree (free
 * with ctl_json_free) or NULL with a reason in err. */
struct ctl_json *ctl_json_parse(const char *text, size_t len, char *err, size_t err_cap);
void ctl_json_free(struct ctl_json *j);

/* The value under key in an object, or NULL (also when j is not an object). */
const struct ctl_json *ctl_json_get(const struct ctl_json *j, const char *key);
/* Typed lookups with a default when missing or of another type. */
const char *ctl_json_get_str(const struct ctl_json *j, const char *key, const char *dflt);
uint64_t ctl_json_get_u64(const struct ctl_json *j, const char *key, uint64_t dflt);

#endif
