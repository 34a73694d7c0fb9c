/* The init_from files one spec file's load has read: a sweep's combinations
 * share them, so each file is opened (its header read) once per load, not
 * once per combination. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/file.h"
#include "schema/alloc.h"
#include "schema/internal.h"

struct spec_init_cache {
    spec_init_cache *next;
    char *path;
    eng_st_file *f; /* NULL when it could not be read: msg says why */
    char msg[512];
};

const eng_st_file *spec_init_cache_get(spec_init_cache **cache, const char *path, const char **msg)
{
    for (spec_init_cache *e = *cache; e; e = e->next)
        if (!strcmp(e->path, path)) {
            *msg = e->msg;
            return e->f;
        }
    spec_init_cache *e = spec_calloc(1, sizeof *e);
    char *p = spec_strdup(path);
    if (!e || !p) {
        free(e);
        free(p);
        *msg = NULL; /* out of memory */
        return NULL;
    }
    e->path = p;
    /* resolved and confined by the validator: no link followed */
    if (eng_st_open_header(path, ENG_FILE_RESOLVED, &e->f) < 0)
        snprintf(e->msg, sizeof e->msg, "%s", eng_last_error());
    e->next = *cache;
    *cache = e;
    *msg = e->msg;
    return e->f;
}

void spec_init_cache_free(spec_init_cache *cache)
{
    while (cache) {
        spec_init_cache *next = cache->next;
        eng_st_close(cache->f);
        free(cache->path);
        free(cache);
        cache = next;
    }
}
