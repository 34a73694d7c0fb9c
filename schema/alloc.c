/* Allocation wrappers for schema/: one place to inject failures in tests. */
#include "schema/alloc.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local long fail_after = -1; /* allocations left before failing; -1: never */
static _Thread_local long count;

static int should_fail(void)
{
    count++;
    if (fail_after < 0)
        return 0;
    if (fail_after == 0)
        return 1;
    fail_after--;
    return 0;
}

long spec_alloc_fail_after(long n)
{
    long c = count;
    fail_after = n;
    count = 0;
    return c;
}

void *spec_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }

void *spec_calloc(size_t n, size_t size) { return should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1); }

void *spec_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }

char *spec_strndup(const char *s, size_t n)
{
    char *d = spec_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *spec_strdup(const char *s) { return spec_strndup(s, strlen(s)); }
