/* Shared helpers of the schema tests: loading YAML text and comparing diagnostics. */
#ifndef TEST_SCHEMA_HELPERS_H
#define TEST_SCHEMA_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "schema/spec.h"

#ifndef SCHEMA_FIXTURES
#error "SCHEMA_FIXTURES must name tests/schema"
#endif

/* Time bounds catch work that grows out of proportion; under valgrind
 * everything is some 50-100 times slower. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TEST_TIME_SCALE (RUNNING_ON_VALGRIND ? 100.0 : 1.0)
#endif
#endif
#ifndef TEST_TIME_SCALE
#define TEST_TIME_SCALE 1.0
#endif

/* The path of the fixture file `name` (valid until the next call). */
static inline const char *fixture(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", SCHEMA_FIXTURES, name);
    return buf;
}

static inline spec_options test_opts(void)
{
    spec_options o;
    spec_options_default(&o);
    o.check_files = false;
    return o;
}

/* Loads yaml as if it were the file /t/t.yaml (relative paths resolve under /t). */
static inline spec_file *load_opts(const char *yaml, const spec_options *o)
{
    spec_file *f = NULL;
    assert_int_equal(spec_file_load_buffer("/t/t.yaml", yaml, strlen(yaml), o, &f), 0);
    assert_non_null(f);
    return f;
}

static inline spec_file *load(const char *yaml)
{
    spec_options o = test_opts();
    return load_opts(yaml, &o);
}

/* Every diagnostic of the file, one a line, file-level first. */
static inline char *all_diags(const spec_file *f)
{
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    const spec_diags *lists[1 + 4096];
    int nl = 0;
    lists[nl++] = &f->file_diags;
    for (int i = 0; i < f->n_entries && nl < 4097; i++)
        lists[nl++] = &f->entries[i].diags;
    for (int l = 0; l < nl; l++)
        for (int i = 0; i < lists[l]->n; i++) {
            int w = spec_diag_format(&lists[l]->v[i], s + n, cap - n - 1);
            assert_true(w > 0 && (size_t)w < cap - n - 1);
            n += (size_t)w;
            s[n++] = '\n';
            s[n] = '\0';
        }
    return s;
}

/* The file's diagnostics are exactly `expected` (lines ending in \n). */
#define assert_diags(f, expected)                                                                                     \
    do {                                                                                                              \
        char *got_ = all_diags(f);                                                                                    \
        if (strcmp(got_, (expected)))                                                                                 \
            fprintf(stderr, "--- expected:\n%s--- got:\n%s---\n", (expected), got_);                                  \
        assert_string_equal(got_, (expected));                                                                        \
        free(got_);                                                                                                   \
    } while (0)

/* Loads yaml and checks its diagnostics are exactly `expected`. */
#define assert_yaml_diags(yaml, expected)                                                                             \
    do {                                                                                                              \
        spec_file *f_ = load(yaml);                                                                                   \
        assert_diags(f_, expected);                                                                                   \
        assert_false(spec_file_valid(f_));                                                                            \
        spec_file_free(f_);                                                                                           \
    } while (0)

static inline char *read_text(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 21);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 21) - 1, fp);
    buf[*len] = '\0';
    fclose(fp);
    return buf;
}

#endif
