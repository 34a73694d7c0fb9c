/* A fresh temporary folder for a test program, and its removal. */
#include "tests/common/tmpdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

int test_tmpdir_make(char *dir, size_t len, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, len, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    return n > 0 && (size_t)n < len && mkdtemp(dir) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int test_tmpdir_remove(const char *dir) { return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }
