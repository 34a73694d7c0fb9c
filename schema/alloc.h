/* Allocation for schema/, with a hook for fault-injection tests (internal). */
#ifndef SPEC_ALLOC_H
#define SPEC_ALLOC_H

#include <stddef.h>

void *spec_malloc(size_t n);
void *spec_calloc(size_t n, size_t size);
void *spec_realloc(void *p, size_t n);
char *spec_strdup(const char *s);
char *spec_strndup(const char *s, size_t n);

/* Tests: let the next n allocations succeed and fail every one after them
 * (on this thread); n < 0 turns failures off. Returns the allocations made
 * since the last call, so a test can count how many a load needs. */
long spec_alloc_fail_after(long n);

#endif
