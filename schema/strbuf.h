/* A growable NUL-terminated string that remembers running out of memory, so
 * that writers can append freely and check once at the end. */
#ifndef SPEC_STRBUF_H
#define SPEC_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sbuf {
    char *p;      /* NUL-terminated once anything was appended; free() it */
    size_t n, cap;
    bool oom;
} sbuf;

/* Appends n bytes of s (the allocation counts against the loader's limits). */
void sbuf_put(sbuf *b, const char *s, size_t n);
void sbuf_puts(sbuf *b, const char *s);

#endif
