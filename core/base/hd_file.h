/*
 * core/base/hd_file.h - whole-file reads for configuration files (users, rules, keys).
 * Any thread; blocking I/O, so never on a shard.
 */
#ifndef HD_FILE_H
#define HD_FILE_H

#include <stddef.h>

/* Reads the regular file at path, at most max bytes, into a new NUL-terminated buffer
 * (*out, freed with hd_free; *len bytes before the NUL). Returns 0, -EINVAL when path is
 * not a regular file, -EFBIG when it is larger than max, or another negative errno. */
int hd_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
