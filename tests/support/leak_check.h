/*
 * tests/support/leak_check.h - ask LeakSanitizer, mid-test, whether anything allocated so far
 * is unreachable. Criterion ends its workers with _Exit, so LSan's own check at exit either
 * never runs or runs after the test was already counted as passed; call this at the end of
 * a test body instead: cr_assert(leak_check_clean()). Tests only.
 */
#ifndef TESTS_SUPPORT_LEAK_CHECK_H
#define TESTS_SUPPORT_LEAK_CHECK_H

#include <stdbool.h>

/* True when LeakSanitizer finds no leak (it prints what it found to stderr), and always
 * true in builds without ASan/LSan. */
bool leak_check_clean(void);

#endif
