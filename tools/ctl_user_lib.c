/*
 * tools/ctl_user_lib.c - heraldctl's copy of the users-file code: the server's own
 * core/users.c compiled into the tool, so `heraldctl user` reads and writes exactly the
 * format the server parses while tools keep off the server libraries (STYLE.md section 2:
 * tools use base and proto; users.c needs only libc, libsodium and hd_alloc).
 *
 * If the build ever lists core/users.c among heraldctl's sources (or links a library that
 * holds it), delete this file, or the symbols are defined twice.
 */
#include "core/users.c"
