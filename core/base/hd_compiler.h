/*
 * core/base/hd_compiler.h - compiler helpers and the assertion every module uses.
 * Leaf header: depends on libc only. HD_ASSERT stays on in release builds: a broken
 * invariant aborts with file and line rather than corrupting a shard (Redis serverAssert).
 */
#ifndef HD_COMPILER_H
#define HD_COMPILER_H

#include <stddef.h>

#define HD_MUST_CHECK __attribute__((warn_unused_result))
#define HD_LIKELY(x) __builtin_expect(!!(x), 1)
#define HD_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HD_CACHELINE 64
#define HD_ALIGNED_CACHELINE __attribute__((aligned(HD_CACHELINE)))
#define HD_UNUSED __attribute__((unused))
#define HD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define HD_MAX(a, b) ((a) > (b) ? (a) : (b))
#define HD_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Aborts the process with file and line; never returns. */
__attribute__((noreturn)) void hd_assert_fail(const char *expr, const char *file, int line);

#define HD_ASSERT(x)                                                                       \
	do {                                                                               \
		if (HD_UNLIKELY(!(x)))                                                     \
			hd_assert_fail(#x, __FILE__, __LINE__);                            \
	} while (0)

#endif
