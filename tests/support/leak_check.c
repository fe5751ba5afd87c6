/*
 * tests/support/leak_check.c - see leak_check.h.
 */
#include "tests/support/leak_check.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define HAVE_LSAN 1
#endif
#endif

#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>

bool leak_check_clean(void)
{
	return __lsan_do_recoverable_leak_check() == 0;
}
#else
bool leak_check_clean(void)
{
	return true;
}
#endif
