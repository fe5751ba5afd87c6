/*
 * proto/http_upgrade.h - the HTTP/1.1 request head that opens a WebSocket connection
 * (RFC 6455 section 4.2: the opening handshake; RFC 9112 for the message syntax), and the
 * responses the server sends back: 101 Switching Protocols, an error, or a small page.
 * Pure: no I/O, no allocation, no globals; libcrypto computes SHA-1 for the accept key.
 * One parser per connection, used by the thread that owns the connection.
 *
 * Contract (picohttpparser's): the caller keeps the head's bytes contiguous from the
 * first one and calls again with the same start and more bytes; the parser remembers how
 * far it scanned, so a head fed in pieces costs O(head) and the limits are enforced before
 * the head completes. Views in struct http_request point into the caller's buffer.
 *
 *	ssize_t n = http_upgrade_parse(&p, buf, len, &req);
 *	n == 0	-> read more (the limits already hold for what is buffered)
 *	n < 0	-> send http_response_error(-n, p.reason), close after the write
 *	UPGRADE	-> send http_response_101(&req); bytes from buf + n on are WebSocket frames
 *	PLAIN_GET -> serve req.path ("/" = the page) or http_response_error(404), then close
 */
#ifndef PROTO_HTTP_UPGRADE_H
#define PROTO_HTTP_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A parse error is minus the HTTP status to answer with (RFC 9110 section 15). */
enum http_upgrade_err {
	HTTP_E_BAD_REQUEST = -400,	  /* syntax, a missing/duplicate header, bad key */
	HTTP_E_FORBIDDEN = -403,	  /* Origin not in the allow-list (RFC 6455 4.2.2) */
	HTTP_E_NOT_FOUND = -404,	  /* upgrade for another path than the configured one */
	HTTP_E_METHOD_NOT_ALLOWED = -405, /* a known method other than GET */
	HTTP_E_URI_TOO_LONG = -414,	  /* request line over max_request_line */
	HTTP_E_UPGRADE_REQUIRED = -426,	  /* WebSocket version not 13, or GET ws path plain */
	HTTP_E_HEADERS_TOO_LARGE = -431,  /* over max_headers or max_head */
	HTTP_E_NOT_IMPLEMENTED = -501,	  /* unknown method, Transfer-Encoding */
	HTTP_E_VERSION = -505,		  /* not HTTP/1.x */
};

enum http_kind {
	HTTP_KIND_UPGRADE = 1,	/* a valid WebSocket opening handshake for our path */
	HTTP_KIND_PLAIN_GET,	/* a GET without Upgrade: websocket, for another path */
};

/* WebSocket subprotocols we speak, worst to best (RabbitMQ Web-STOMP's names). */
enum http_ws_proto {
	HTTP_WS_PROTO_NONE = 0,	/* the client offered none we know: no header in the 101 */
	HTTP_WS_PROTO_STOMP,	/* "stomp": version left to CONNECT's accept-version */
	HTTP_WS_PROTO_V10,	/* "v10.stomp" */
	HTTP_WS_PROTO_V11,	/* "v11.stomp" */
	HTTP_WS_PROTO_V12,	/* "v12.stomp" */
};

/* A run of bytes inside the caller's buffer. */
struct http_view {
	const char *ptr;
	size_t len;
};

struct http_header {
	struct http_view name;
	struct http_view value;		/* leading and trailing whitespace trimmed */
};

/* Hard ceiling on header lines; http_upgrade_config.max_headers may be lower. */
#define HTTP_HEADERS_CAP 64

struct http_upgrade_config {
	const char *path;		/* WebSocket path, e.g. "/ws"; compared byte for byte */
	const char *const *origins;	/* allowed Origin values (case-insensitive), or NULL */
	size_t norigins;		/* 0: any Origin, and requests without one, are fine */
	size_t max_request_line;	/* bytes of "GET /ws HTTP/1.1" without CRLF */
	size_t max_headers;		/* header lines, at most HTTP_HEADERS_CAP */
	size_t max_head;		/* bytes from the request line to the blank line */
};

struct http_request {
	enum http_kind kind;
	uint8_t minor_version;		/* HTTP/1.<minor> */
	struct http_view method;
	struct http_view target;	/* as sent: path, query and all */
	struct http_view path;		/* the target's path: no query, no scheme/authority */
	struct http_view query;		/* after '?', without it; len 0 when none */
	struct http_view host;
	struct http_view origin;	/* len 0 when absent */
	struct http_view key;		/* Sec-WebSocket-Key: 24 base64 chars (UPGRADE only) */
	enum http_ws_proto proto;	/* the subprotocol chosen for the 101 */
	uint32_t nheaders;
	struct http_header headers[HTTP_HEADERS_CAP];	/* in wire order */
};

struct http_upgrade_parser {
	const struct http_upgrade_config *cfg;
	const char *reason;		/* set with a negative return: fit for the error body */
	/* scan state over the caller's buffer, which keeps its first byte between calls */
	size_t scan_off;		/* bytes already scanned for line ends */
	size_t line_start;		/* where the line being scanned starts */
	size_t head_start;		/* bytes of leading empty lines skipped (RFC 9112 2.2) */
	uint32_t lines;			/* complete lines of the head so far */
	int err;			/* the error already returned, returned again */
};

/* Fills cfg with the defaults: path "/ws", no Origin check, 8 KiB request line,
 * HTTP_HEADERS_CAP headers, 16 KiB head (browsers send ~0.5-2 KiB, cookies included). */
void http_upgrade_config_default(struct http_upgrade_config *cfg);

/* Prepares p for a new connection. cfg (and the strings it points to) must outlive p. */
void http_upgrade_parser_init(struct http_upgrade_parser *p,
			      const struct http_upgrade_config *cfg);

/* Parses a request head from buf[0..len). Returns the head's length in bytes (through its
 * blank line) once it is complete and valid, with *req filled in: bytes after it are not
 * the parser's (after a 101 they are WebSocket frames). Returns 0 when more bytes are
 * needed: call again with the same start and more bytes. Returns a negative HTTP_E_*
 * (minus the HTTP status) with p->reason set when the request must be refused; answer
 * with http_response_error(-ret, p->reason) and close. A parser that returned non-zero
 * is done: init it again for another request. */
ssize_t http_upgrade_parse(struct http_upgrade_parser *p, const char *buf, size_t len,
			   struct http_request *req);

/* First header named `name` (case-insensitive), or NULL. */
const struct http_view *http_request_header(const struct http_request *req, const char *name);

/* "v12.stomp" for HTTP_WS_PROTO_V12 ...; "" for HTTP_WS_PROTO_NONE. */
const char *http_ws_proto_name(enum http_ws_proto proto);

/* RFC 6455 4.2.2: base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) into
 * out[0..28] (28 chars and a NUL). Returns 0, or -EIO if libcrypto fails. */
int http_ws_accept_key(const char *key, size_t key_len, char out[29]);

/* Writes "101 Switching Protocols" for req (an HTTP_KIND_UPGRADE): Upgrade, Connection,
 * Sec-WebSocket-Accept, and Sec-WebSocket-Protocol when req->proto is not NONE.
 * Returns bytes written, -ENOSPC, or -EIO (libcrypto). 256 bytes always suffice. */
ssize_t http_response_101(char *out, size_t cap, const struct http_request *req);

/* Writes an error response for `status` (a value of -HTTP_E_*, or 500/503) with a
 * text/plain body of `reason` and a newline, Content-Length and "Connection: close";
 * 426 adds "Upgrade: websocket" and "Sec-WebSocket-Version: 13" (RFC 6455 4.4), 405 adds
 * "Allow: GET". Returns bytes written, -ENOSPC, or -EINVAL for a status not listed. */
ssize_t http_response_error(char *out, size_t cap, int status, const char *reason);

/* Writes a "200 OK" head with Content-Type, Content-Length: body_len and
 * "Connection: close"; when body != NULL the body follows it in out, otherwise the caller
 * sends the body as a second iovec (a static page needs no copy). Returns bytes written
 * or -ENOSPC. */
ssize_t http_response_200(char *out, size_t cap, const char *content_type, const void *body,
			  size_t body_len);

#endif
