/*
 * tests/support/tsan_criterion.c - lets Criterion run under ThreadSanitizer
 * (cmake -DHERALD_TSAN=ON). Linked into every unit test; empty in other builds.
 *
 * 1. Criterion 2.4's BoxFort (0.1.x) maps its "inheritable arena" at a random fixed
 *    address 0x2000'0000'0000 + (rand_r() & 0x3fffff) * 16 MiB. Under TSan's x86_64 layout
 *    almost all of that span is shadow or metadata, so TSan refuses the MAP_FIXED mapping and
 *    every test binary dies at start with "Could not initialize inheritable arena"
 *    (Snaipe/Criterion issue 274). This file's rand_r, which the executable exports in place
 *    of libc's, steers the arena into 0x5500'0000'0000..0x5680'0000'0000, the one span of
 *    that range TSan treats as application memory (BoxFort checks each page is free with
 *    msync and moves on when it is not, so each call returns a different slot). Nothing in
 *    Herald calls rand_r.
 * 2. Criterion ends each worker with _Exit(0), so TSan's usual "exit 66 when something was
 *    reported" never happens and a race would pass silently: halt_on_error makes the first
 *    report end the worker, which Criterion counts as a failed test.
 */
#if defined(__SANITIZE_THREAD__)
#define HERALD_TSAN_RUNTIME 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HERALD_TSAN_RUNTIME 1
#endif
#endif

#ifdef HERALD_TSAN_RUNTIME

#include <stdlib.h>

/* TSan reads its defaults from here before TSAN_OPTIONS (which still overrides them). */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "halt_on_error=1:second_deadlock_stack=1";
}

int rand_r(unsigned int *seed)
{
	/* 0x350000..0x368000 spans TSan's PIE window; step by a prime number of slots */
	static unsigned int calls;
	unsigned int n = __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);

	(void)seed;
	return (int)(0x350000u + (0x8000u + n * 0x101u) % 0x18000u);
}

#endif
