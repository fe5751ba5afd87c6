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

#endif
