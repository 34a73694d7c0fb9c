/* Fuzz target: the safetensors reader (and the JSON reader under it) on arbitrary bytes.
 *
 * libFuzzer entry point. Besides "no crash, no leak, no out-of-bounds read"
 * (ASan/UBSan), it checks properties of every file the reader accepts:
 * each tensor's bytes lie inside the input's data section, tensors tile it
 * in data order, lookups by name find the same entry, and writing the
 * accepted contents back with eng_st_serialize and reading that again gives
 * the same names, dtypes, shapes, bytes and metadata. Built as a fuzzer with
 * -Dfuzz=true (clang); otherwise replay.c runs it over the corpus. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json_reader.h"
#include "engine/safetensors.h"

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_safetensors: property failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void same_contents(const eng_st_file *a, const eng_st_file *b)
{
    CHECK(eng_st_count(a) == eng_st_count(b));
    CHECK(eng_st_metadata_count(a) == eng_st_metadata_count(b));
    for (int64_t i = 0; i < eng_st_count(a); i++) {
        const eng_st_tensor *x = eng_st_at(a, i), *y = eng_st_at(b, i);
        CHECK(x && y);
        CHECK(strcmp(x->name, y->name) == 0);
        CHECK(x->dtype == y->dtype && x->ndim == y->ndim && x->nbytes == y->nbytes && x->offset == y->offset);
        CHECK(memcmp(x->shape, y->shape, sizeof x->shape[0] * (size_t)x->ndim) == 0);
        CHECK(x->nbytes == 0 || memcmp(x->data, y->data, x->nbytes) == 0);
    }
    for (int64_t i = 0; i < eng_st_metadata_count(a); i++) {
        const char *k, *v;
        CHECK(eng_st_metadata_at(a, i, &k, &v) == 0);
        const char *w = eng_st_metadata(b, k);
        CHECK(w && strcmp(v, w) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The JSON reader alone, on the bytes after the length prefix. */
    if (size > 8) {
        eng_json_doc *doc = NULL;
        eng_json_limits lim = {.max_depth = 32, .max_nodes = 4096};
        if (eng_json_parse((const char *)data + 8, size - 8, &lim, &doc) == 0)
            CHECK(eng_json_root(doc) != NULL);
        eng_json_doc_free(doc);
    }

    eng_st_file *f = NULL;
    if (eng_st_parse(data, size, &f) != 0) {
        CHECK(f == NULL);
        return 0;
    }
    uint64_t hlen = le64(data);
    CHECK(size >= 8 && hlen <= size - 8);
    size_t data_len = size - 8 - (size_t)hlen;
    const uint8_t *section = data + 8 + hlen;
    size_t at = 0;
    for (int64_t i = 0; i < eng_st_count(f); i++) {
        const eng_st_tensor *t = eng_st_at(f, i);
        CHECK(t != NULL);
        CHECK(t->offset == at && t->offset + t->nbytes <= data_len);
        CHECK(t->nbytes == (size_t)t->numel * eng_st_dtype_size(t->dtype));
        CHECK(t->nbytes == 0 || memcmp(t->data, section + t->offset, t->nbytes) == 0);
        CHECK(eng_st_find(f, t->name) == t);
        at += t->nbytes;
        if (t->dtype == ENG_ST_F32 && t->nbytes <= 4096) {
            float buf[1024];
            CHECK(eng_st_read_f32(f, t->name, t->shape, t->ndim, buf) == 0);
        }
    }
    CHECK(at == data_len);
    CHECK(eng_st_at(f, eng_st_count(f)) == NULL);

    /* Write what was accepted and read it back. */
    eng_st_writer *w = NULL;
    CHECK(eng_st_writer_new(&w) == 0);
    bool writable = true;
    for (int64_t i = 0; i < eng_st_count(f) && writable; i++) {
        const eng_st_tensor *t = eng_st_at(f, i);
        /* the writer refuses empty names, which the reader accepts */
        if (eng_st_add_ref(w, t->name, t->dtype, t->shape, t->ndim, t->data) != 0) {
            CHECK(t->name[0] == '\0');
            writable = false;
        }
    }
    for (int64_t i = 0; i < eng_st_metadata_count(f) && writable; i++) {
        const char *k, *v;
        CHECK(eng_st_metadata_at(f, i, &k, &v) == 0);
        CHECK(eng_st_add_metadata(w, k, v) == 0);
    }
    if (writable) {
        uint8_t *buf = NULL;
        size_t len = 0;
        CHECK(eng_st_serialize(w, &buf, &len) == 0);
        eng_st_file *g = NULL;
        CHECK(eng_st_parse(buf, len, &g) == 0);
        same_contents(f, g);
        eng_st_close(g);
        free(buf);
    }
    eng_st_writer_free(w);
    eng_st_close(f);
    return 0;
}
