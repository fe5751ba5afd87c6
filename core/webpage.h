/*
 * core/webpage.h - the small page served at http://host:15674/ : the seed's scenario
 * (connect with login/passcode/host, subscribe to /queue/<you>, send, see messages with
 * timestamps) with a STOMP-over-WebSocket client of our own writing inside it.
 */
#ifndef CORE_WEBPAGE_H
#define CORE_WEBPAGE_H

#include <stddef.h>

extern const char herald_page_html[];
extern const size_t herald_page_len;

#endif
