/*
 * bench/bench_tls.h - TLS for herald-bench connections (--tls): one client context per
 * process, a handshake run when the TCP connect is done, then reads and writes with
 * read(2)/write(2)'s contract so bench_conn.c treats both alike.
 *
 * Threads: bench_tls_configure in main before the workers start; the rest on the worker
 * that owns the connection (the shared context is safe for concurrent handshakes).
 */
#ifndef BENCH_TLS_H
#define BENCH_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct ssl_st;

/* ca_file: PEM CAs the server certificate must chain to; NULL or "": not verified (a load
 * tool against a test certificate). Returns 0 or -1 after printing why. */
int bench_tls_configure(const char *ca_file);

/* Runs the client handshake on connected socket fd (blocking for at most timeout_ms; fd is
 * non-blocking again afterwards). Returns the TLS state, or NULL with why set. */
struct ssl_st *bench_tls_handshake(int fd, unsigned timeout_ms, const char **why);

/* As read(2)/write(2) on a non-blocking socket: bytes, 0 at the peer's end (read), or -1
 * with errno (EAGAIN when it must wait for the socket). */
ssize_t bench_tls_read(struct ssl_st *s, void *buf, size_t n);
ssize_t bench_tls_write(struct ssl_st *s, const void *buf, size_t n);
/* Decrypted bytes held inside the TLS state (epoll will not report them). */
bool bench_tls_pending(struct ssl_st *s);
void bench_tls_free(struct ssl_st *s);

#endif
