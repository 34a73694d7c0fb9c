/* A fresh temporary folder for a test program, and its removal with
 * everything in it (cmocka group setup and teardown call these). */
#ifndef TEST_TMPDIR_H
#define TEST_TMPDIR_H

#include <stddef.h>

/* Makes $TMPDIR/prefix-XXXXXX (/tmp without TMPDIR); its path into dir. 0 or -1. */
int test_tmpdir_make(char *dir, size_t len, const char *prefix);
/* Removes dir and all it holds. 0 or -1. */
int test_tmpdir_remove(const char *dir);

#endif
