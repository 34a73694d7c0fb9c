/* Properties of every spec load (see spec_props.h): each problem is located
 * in the file; a valid plain spec stores the input bytes and their SHA-256;
 * the stored text of every valid sweep combination loads again, as a plain
 * spec, into the same name, identity, descriptions and parameter count. */
#include "spec_props.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz spec: property failed: %s (line %d)\n", #cond, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

void fuzz_spec_options(spec_options *o)
{
    spec_options_default(o);
    o->check_files = false;     /* no file-system dependence */
    o->max_combinations = 64;   /* keep each input fast */
    o->max_nodes = 20000;
    o->max_memory_bytes = (size_t)1 << 30;
}

static void check_diags(const spec_diags *d)
{
    for (int i = 0; i < d->n; i++) {
        CHECK(!strcmp(d->v[i].file, FUZZ_FILE_NAME));
        CHECK(d->v[i].line >= 0 && d->v[i].col >= 0);
        CHECK((d->v[i].line == 0) == (d->v[i].col == 0));
        CHECK(d->v[i].message[0] != '\0');
    }
}

/* A combination's text read back as a plain spec means the same. */
static void check_roundtrip(const spec *s, const spec_options *o)
{
    spec_file *g = NULL;
    if (spec_file_load_buffer(FUZZ_FILE_NAME, s->text, s->text_len, o, &g))
        return; /* out of memory */
    CHECK(!g->is_sweep);
    CHECK(spec_file_valid(g));
    const spec *t = g->entries[0].spec;
    CHECK(!strcmp(t->name, s->name));
    CHECK(!strcmp(t->sha256, s->sha256));
    CHECK(!memcmp(&t->data, &s->data, sizeof s->data));
    CHECK(!memcmp(&t->train, &s->train, sizeof s->train));
    CHECK(t->model.template_kind == s->model.template_kind);
    CHECK(t->model.n_units == s->model.n_units && t->model.n_channels == s->model.n_channels);
    CHECK(t->model.n_layers == s->model.n_layers);
    CHECK(t->params == s->params);
    CHECK(t->device == s->device && t->device_index == s->device_index && t->priority == s->priority);
    spec_file_free(g);
}

spec_file *fuzz_spec_check(const uint8_t *data, size_t size, const spec_options *o)
{
    spec_file *f = NULL;
    if (spec_file_load_buffer(FUZZ_FILE_NAME, (const char *)data, size, o, &f))
        return NULL; /* out of memory is a result, not a bug */
    char sha[65];
    spec_sha256_hex(data, size, sha);
    CHECK(!strcmp(f->sha256, sha));
    check_diags(&f->file_diags);
    CHECK(f->file_diags.n == 0 || f->n_entries == 0);
    CHECK(f->n_entries <= o->max_combinations);
    bool all = f->file_diags.n == 0 && f->n_entries > 0;
    for (int i = 0; i < f->n_entries; i++) {
        const spec_entry *e = &f->entries[i];
        check_diags(&e->diags);
        CHECK(e->name && e->text);
        CHECK((e->spec != NULL) == (e->diags.n == 0));
        spec_sha256_hex(e->text, e->text_len, sha);
        CHECK(!strcmp(e->sha256, sha));
        all &= e->spec != NULL;
        if (!e->spec)
            continue;
        CHECK(!strcmp(e->spec->sha256, e->sha256));
        CHECK(!strcmp(e->spec->name, e->name));
        if (!f->is_sweep) {
            CHECK(e->text_len == size && !memcmp(e->text, data, size));
            CHECK(e->sweep_json == NULL);
        } else {
            CHECK(e->sweep_json && e->sweep_json[0] == '{');
            check_roundtrip(e->spec, o);
        }
    }
    CHECK(all == spec_file_valid(f));
    return f;
}
