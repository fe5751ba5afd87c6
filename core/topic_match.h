/*
 * core/topic_match.h - RabbitMQ topic-exchange matching on dot-separated words:
 * `*` matches exactly one word, `#` zero or more. "news.*" matches "news.uk", not "news" or
 * "news.uk.london"; "alerts.#" matches "alerts", "alerts.a", "alerts.a.b". Pure.
 */
#ifndef CORE_TOPIC_MATCH_H
#define CORE_TOPIC_MATCH_H

#include <stdbool.h>
#include <stddef.h>

/* True when the topic name (without "/topic/") has a `*` or `#` word. */
bool topic_is_pattern(const char *name, size_t len);

/* True when topic matches pattern (both without the "/topic/" prefix). */
bool topic_match(const char *pattern, size_t plen, const char *topic, size_t tlen);

/* Destinations outside the default virtual host are keyed "<name>\x1f<vhost>". */
#define TOPIC_SCOPE_SEP '\x1f'

/* topic_match for scoped keys: the scopes (after the last TOPIC_SCOPE_SEP, empty when
 * absent) must be equal, and the names before them must match. */
bool topic_match_scoped(const char *pattern, size_t plen, const char *topic, size_t tlen);

#endif
