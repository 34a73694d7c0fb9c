/* Tests of the safetensors writer and reader and of the strict JSON reader.
 *
 * Modes (argv[1]): none runs the self-contained tests; "torch" exchanges
 * files with PyTorch through st_torch.py (a file written by Python is read
 * here, a file written here is checked by Python), exiting 77 when
 * $EPOCHD_TORCH_PYTHON (default /usr/bin/python3) cannot import torch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/json_reader.h"
#include "engine/safetensors.h"
#include "tests/common/tmpdir.h"

static char base_dir[512];

static int make_base_dir(void **state)
{
    (void)state;
    return test_tmpdir_make(base_dir, sizeof base_dir, "epochd-test-st");
}

static int remove_base_dir(void **state)
{
    (void)state;
    return test_tmpdir_remove(base_dir);
}

static void path_in(char *out, size_t len, const char *name)
{
    int n = snprintf(out, len, "%s/%s", base_dir, name);
    assert_true(n > 0 && (size_t)n < len);
}

static bool has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        print_error("message \"%s\" lacks \"%s\"\n", hay, needle);
        return false;
    }
    return true;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* IEEE half and bfloat16 to float, written out independently of any library. */
static float half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp(mant + 1024, exp - 25);
    return (float)(sign ? -v : v);
}

static float bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------------ the fixture shared with st_torch.py */

static const char ODD_NAME[] = "layer.0/\"odd\" \\ name\t\xc3\xb1 \xe2\x98\x83 \xf0\x9d\x84\x9e";
static const char NOTE[] = "tab\there \"quoted\" \xe2\x9c\x93";

typedef struct fixture {
    float f32[24];
    double f64[6];
    int64_t i64[5];
    int32_t i32[6];
    int16_t i16[10];
    int8_t i8[4];
    uint8_t u8[25];
    uint8_t boolean[5];
    float scalar;
    float transposed[12];
    float odd[2];
    uint16_t f16[10], bf16[8];
} fixture;

static void make_fixture(fixture *x)
{
    for (int i = 0; i < 24; i++)
        x->f32[i] = (float)i * 0.5f - 3.0f;
    for (int i = 0; i < 6; i++)
        x->f64[i] = i / 3.0;
    const int64_t i64[5] = {-(1LL << 40), -1, 0, 7, 1LL << 62};
    memcpy(x->i64, i64, sizeof i64);
    for (int i = 0; i < 6; i++)
        x->i32[i] = i - 3;
    for (int i = 0; i < 10; i++)
        x->i16[i] = (int16_t)((i - 5) * 1000);
    const int8_t i8[4] = {-128, -1, 0, 127};
    memcpy(x->i8, i8, sizeof i8);
    for (int i = 0; i < 25; i++)
        x->u8[i] = (uint8_t)(i * 10);
    const uint8_t b[5] = {1, 0, 0, 1, 1};
    memcpy(x->boolean, b, sizeof b);
    x->scalar = 3.25f;
    for (int r = 0; r < 4; r++) /* arange(12).reshape(3, 4).t() */
        for (int c = 0; c < 3; c++)
            x->transposed[r * 3 + c] = (float)(c * 4 + r);
    x->odd[0] = 1.0f;
    x->odd[1] = -2.0f;
    /* f16: i * 0.25 - 1 and bf16: i * 1.5 - 4, encoded by hand (all exact) */
    for (int i = 0; i < 10; i++) {
        float v = (float)i * 0.25f - 1.0f;
        uint16_t h = 0;
        if (v != 0.0f) {
            int e;
            double m = frexp(fabs(v), &e); /* v = m * 2^e, m in [0.5, 1) */
            h = (uint16_t)(((v < 0) << 15) | ((e - 1 + 15) << 10) | ((int)ldexp(m * 2 - 1, 10) & 0x3FF));
        }
        x->f16[i] = h;
        assert_true(half_to_float(h) == v);
    }
    for (int i = 0; i < 8; i++) {
        float v = (float)i * 1.5f - 4.0f;
        uint32_t u;
        memcpy(&u, &v, sizeof u);
        x->bf16[i] = (uint16_t)(u >> 16);
        assert_true(bf16_to_float(x->bf16[i]) == v);
    }
}

static void expect_tensor(const eng_st_file *f, const char *name, eng_st_dtype dt, int ndim, const int64_t *shape,
                          const void *data, size_t nbytes)
{
    const eng_st_tensor *t = eng_st_find(f, name);
    if (!t)
        fail_msg("tensor '%s' not found", name);
    assert_string_equal(t->name, name);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->ndim, ndim);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        assert_int_equal(t->shape[i], shape[i]);
        numel *= shape[i];
    }
    assert_int_equal(t->numel, numel);
    assert_int_equal(t->nbytes, nbytes);
    if (nbytes)
        assert_memory_equal(t->data, data, nbytes);
    else
        assert_null(t->data);
}

/* Checks every tensor of the fixture; randn is returned for re-writing. */
static void check_fixture(const eng_st_file *f, const fixture *x, bool with_randn)
{
    expect_tensor(f, "f32", ENG_ST_F32, 3, (int64_t[]){2, 3, 4}, x->f32, sizeof x->f32);
    expect_tensor(f, "f64", ENG_ST_F64, 2, (int64_t[]){3, 2}, x->f64, sizeof x->f64);
    expect_tensor(f, "f16", ENG_ST_F16, 1, (int64_t[]){10}, x->f16, sizeof x->f16);
    expect_tensor(f, "bf16", ENG_ST_BF16, 1, (int64_t[]){8}, x->bf16, sizeof x->bf16);
    expect_tensor(f, "i64", ENG_ST_I64, 1, (int64_t[]){5}, x->i64, sizeof x->i64);
    expect_tensor(f, "i32", ENG_ST_I32, 2, (int64_t[]){2, 3}, x->i32, sizeof x->i32);
    expect_tensor(f, "i16", ENG_ST_I16, 1, (int64_t[]){10}, x->i16, sizeof x->i16);
    expect_tensor(f, "i8", ENG_ST_I8, 1, (int64_t[]){4}, x->i8, sizeof x->i8);
    expect_tensor(f, "u8", ENG_ST_U8, 1, (int64_t[]){25}, x->u8, sizeof x->u8);
    expect_tensor(f, "bool", ENG_ST_BOOL, 1, (int64_t[]){5}, x->boolean, sizeof x->boolean);
    expect_tensor(f, "scalar", ENG_ST_F32, 0, NULL, &x->scalar, sizeof x->scalar);
    expect_tensor(f, "empty", ENG_ST_F32, 2, (int64_t[]){0, 3}, NULL, 0);
    expect_tensor(f, "transposed", ENG_ST_F32, 2, (int64_t[]){4, 3}, x->transposed, sizeof x->transposed);
    expect_tensor(f, ODD_NAME, ENG_ST_F32, 1, (int64_t[]){2}, x->odd, sizeof x->odd);
    assert_string_equal(eng_st_metadata(f, "format"), "pt");
    assert_string_equal(eng_st_metadata(f, "note"), NOTE);
    if (with_randn) {
        const eng_st_tensor *r = eng_st_find(f, "randn");
        assert_non_null(r);
        assert_int_equal(r->dtype, ENG_ST_F32);
        assert_int_equal(r->numel, 20);
        double sum = 0;
        for (int i = 0; i < 20; i++) {
            float v;
            memcpy(&v, (const char *)r->data + 4 * i, 4);
            sum += v;
        }
        const char *want = eng_st_metadata(f, "randn_sum");
        assert_non_null(want);
        assert_true(fabs(sum - strtod(want, NULL)) < 1e-9);
        assert_int_equal(eng_st_count(f), 15);
    } else
        assert_int_equal(eng_st_count(f), 14);
}

static void add_fixture(eng_st_writer *w, const fixture *x)
{
    assert_int_equal(eng_st_add(w, "f32", ENG_ST_F32, (int64_t[]){2, 3, 4}, 3, x->f32), 0);
    assert_int_equal(eng_st_add(w, "f64", ENG_ST_F64, (int64_t[]){3, 2}, 2, x->f64), 0);
    assert_int_equal(eng_st_add(w, "f16", ENG_ST_F16, (int64_t[]){10}, 1, x->f16), 0);
    assert_int_equal(eng_st_add(w, "bf16", ENG_ST_BF16, (int64_t[]){8}, 1, x->bf16), 0);
    assert_int_equal(eng_st_add(w, "i64", ENG_ST_I64, (int64_t[]){5}, 1, x->i64), 0);
    assert_int_equal(eng_st_add(w, "i32", ENG_ST_I32, (int64_t[]){2, 3}, 2, x->i32), 0);
    assert_int_equal(eng_st_add(w, "i16", ENG_ST_I16, (int64_t[]){10}, 1, x->i16), 0);
    assert_int_equal(eng_st_add(w, "i8", ENG_ST_I8, (int64_t[]){4}, 1, x->i8), 0);
    assert_int_equal(eng_st_add(w, "u8", ENG_ST_U8, (int64_t[]){25}, 1, x->u8), 0);
    assert_int_equal(eng_st_add(w, "bool", ENG_ST_BOOL, (int64_t[]){5}, 1, x->boolean), 0);
    assert_int_equal(eng_st_add(w, "scalar", ENG_ST_F32, NULL, 0, &x->scalar), 0);
    assert_int_equal(eng_st_add(w, "empty", ENG_ST_F32, (int64_t[]){0, 3}, 2, NULL), 0);
    assert_int_equal(eng_st_add_ref(w, "transposed", ENG_ST_F32, (int64_t[]){4, 3}, 2, x->transposed), 0);
    assert_int_equal(eng_st_add(w, ODD_NAME, ENG_ST_F32, (int64_t[]){2}, 1, x->odd), 0);
    assert_int_equal(eng_st_add_metadata(w, "format", "pt"), 0);
    assert_int_equal(eng_st_add_metadata(w, "note", NOTE), 0);
}

/* ------------------------------------------------------------------ writer and round trip */

static void test_dtypes(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t size;
    } want[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
                {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
    assert_int_equal(sizeof want / sizeof want[0], ENG_ST_DTYPE__COUNT);
    for (int i = 0; i < ENG_ST_DTYPE__COUNT; i++) {
        assert_string_equal(eng_st_dtype_name((eng_st_dtype)i), want[i].name);
        assert_int_equal(eng_st_dtype_size((eng_st_dtype)i), want[i].size);
        eng_st_dtype dt;
        assert_int_equal(eng_st_dtype_parse(want[i].name, &dt), 0);
        assert_int_equal(dt, i);
    }
    eng_st_dtype dt;
    assert_int_equal(eng_st_dtype_parse("f32", &dt), ENG_EINVAL);
    assert_int_equal(eng_st_dtype_parse("F33", &dt), ENG_EINVAL);
    assert_string_equal(eng_st_dtype_name(ENG_ST_DTYPE__COUNT), "?");
    assert_int_equal(eng_st_dtype_size(ENG_ST_DTYPE__COUNT), 0);
}

static void test_round_trip(void **state)
{
    (void)state;
    fixture x;
    make_fixture(&x);
    eng_st_writer *w;
    assert_int_equal(eng_st_writer_new(&w), 0);
    add_fixture(w, &x);
    char path[600], tmp[700];
    path_in(path, sizeof path, "round.safetensors");
    assert_int_equal(eng_st_write_file(w, path), 0);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1); /* renamed away */
    uint8_t *mem;
    size_t mem_len;
    assert_int_equal(eng_st_serialize(w, &mem, &mem_len), 0);
    eng_st_writer_free(w);

    size_t file_len;
    uint8_t *file = read_all(path, &file_len);
    assert_int_equal(file_len, mem_len);
    assert_memory_equal(file, mem, mem_len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | file[i];
    assert_int_equal((8 + hlen) % 8, 0); /* data section aligned in the file */
    assert_int_equal(file[8], '{');
    free(file);

    eng_st_file *f;
    assert_int_equal(eng_st_open(path, &f), 0);
    check_fixture(f, &x, false);
    /* data order = insertion order, offsets contiguous from 0 */
    const char *order[] = {"f32", "f64", "f16", "bf16", "i64", "i32", "i16", "i8", "u8", "bool", "scalar", "empty",
                           "transposed", ODD_NAME};
    size_t at = 0;
    for (int i = 0; i < 14; i++) {
        const eng_st_tensor *t = eng_st_at(f, i);
        assert_non_null(t);
        assert_string_equal(t->name, order[i]);
        assert_int_equal(t->offset, at);
        at += t->nbytes;
    }
    assert_null(eng_st_at(f, 14));
    assert_null(eng_st_at(f, -1));
    assert_null(eng_st_find(f, "nope"));
    assert_null(eng_st_find(f, "f3"));
    assert_null(eng_st_metadata(f, "nope"));
    assert_int_equal((uintptr_t)eng_st_at(f, 0)->data % 64, 0); /* data section 64-byte aligned in memory */
    assert_int_equal(eng_st_metadata_count(f), 2);
    const char *k, *v;
    assert_int_equal(eng_st_metadata_at(f, 1, &k, &v), 0);
    assert_string_equal(k, "note");
    assert_string_equal(v, NOTE);
    assert_int_equal(eng_st_metadata_at(f, 2, &k, &v), ENG_EINVAL);

    /* typed reads */
    float f32[24];
    assert_int_equal(eng_st_read_f32(f, "f32", (int64_t[]){2, 3, 4}, 3, f32), 0);
    assert_memory_equal(f32, x.f32, sizeof f32);
    assert_int_equal(eng_st_read_f32(f, "f32", (int64_t[]){4, 3, 2}, 3, f32), ENG_EFORMAT);
    assert_true(has(eng_last_error(), "tensor 'f32': shape [2, 3, 4] in the file, [4, 3, 2] expected"));
    assert_int_equal(eng_st_read_f32(f, "f64", (int64_t[]){3, 2}, 2, f32), ENG_EFORMAT);
    assert_true(has(eng_last_error(), "tensor 'f64': dtype F64 in the file, F32 expected"));
    assert_int_equal(eng_st_read_f32(f, "fc.weight", (int64_t[]){1}, 1, f32), ENG_ENOENT);
    assert_true(has(eng_last_error(), "tensor 'fc.weight' not in the file"));
    eng_st_close(f);

    /* the same from memory */
    assert_int_equal(eng_st_parse(mem, mem_len, &f), 0);
    check_fixture(f, &x, false);
    eng_st_close(f);
    free(mem);

    /* overwrite atomically with a different file */
    assert_int_equal(eng_st_writer_new(&w), 0);
    assert_int_equal(eng_st_add(w, "only", ENG_ST_U8, (int64_t[]){3}, 1, "abc"), 0);
    assert_int_equal(eng_st_write_file(w, path), 0);
    eng_st_writer_free(w);
    assert_int_equal(eng_st_open(path, &f), 0);
    assert_int_equal(eng_st_count(f), 1);
    assert_int_equal(eng_st_metadata_count(f), 0);
    assert_memory_equal(eng_st_find(f, "only")->data, "abc", 3);
    eng_st_close(f);

    /* an empty file: no tensors, no metadata */
    assert_int_equal(eng_st_writer_new(&w), 0);
    assert_int_equal(eng_st_serialize(w, &mem, &mem_len), 0);
    assert_int_equal(mem_len, 16);
    assert_memory_equal(mem, "\x08\0\0\0\0\0\0\0{}      ", 16);
    assert_int_equal(eng_st_parse(mem, mem_len, &f), 0);
    assert_int_equal(eng_st_count(f), 0);
    eng_st_close(f);
    free(mem);
    eng_st_writer_free(w);
    eng_st_writer_free(NULL);
    eng_st_close(NULL);
}

/* The exact bytes of a small file: the format, not just our own reading of it. */
static void test_exact_bytes(void **state)
{
    (void)state;
    eng_st_writer *w;
    assert_int_equal(eng_st_writer_new(&w), 0);
    const float a[2] = {1.0f, -2.0f};
    const int64_t b = 7;
    assert_int_equal(eng_st_add(w, "a\"\\\n\x01", ENG_ST_F32, (int64_t[]){1, 2}, 2, a), 0);
    assert_int_equal(eng_st_add(w, "b", ENG_ST_I64, NULL, 0, &b), 0);
    assert_int_equal(eng_st_add_metadata(w, "k", "v\t"), 0);
    uint8_t *mem;
    size_t len;
    assert_int_equal(eng_st_serialize(w, &mem, &len), 0);
    eng_st_writer_free(w);
    const char header[] = "{\"__metadata__\":{\"k\":\"v\\t\"},"
                          "\"a\\\"\\\\\\n\\u0001\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}";
    size_t hl = strlen(header), padded = (hl + 8 + 7) / 8 * 8 - 8;
    assert_int_equal(len, 8 + padded + 16);
    assert_int_equal(mem[0], padded & 0xFF);
    assert_int_equal(mem[1], padded >> 8);
    for (int i = 2; i < 8; i++)
        assert_int_equal(mem[i], 0);
    assert_memory_equal(mem + 8, header, hl);
    for (size_t i = hl; i < padded; i++)
        assert_int_equal(mem[8 + i], ' ');
    /* little-endian data */
    const uint8_t data[16] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 7, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(mem + 8 + padded, data, 16);
    free(mem);
}

static void test_writer_errors(void **state)
{
    (void)state;
    eng_st_writer *w;
    assert_int_equal(eng_st_writer_new(&w), 0);
    const float v[4] = {0};
    assert_int_equal(eng_st_add(w, "x", ENG_ST_F32, (int64_t[]){4}, 1, v), 0);
    assert_int_equal(eng_st_add(w, "x", ENG_ST_F32, (int64_t[]){4}, 1, v), ENG_EINVAL);
    assert_true(has(eng_last_error(), "tensor 'x' added twice"));
    assert_int_equal(eng_st_add(w, "__metadata__", ENG_ST_F32, (int64_t[]){4}, 1, v), ENG_EINVAL);
    assert_int_equal(eng_st_add(w, "", ENG_ST_F32, (int64_t[]){4}, 1, v), ENG_EINVAL);
    assert_int_equal(eng_st_add(w, "bad\xff", ENG_ST_F32, (int64_t[]){4}, 1, v), ENG_EINVAL);
    assert_int_equal(eng_st_add(w, "y", ENG_ST_F32, (int64_t[]){-1}, 1, v), ENG_EINVAL);
    assert_int_equal(eng_st_add(w, "y", ENG_ST_F32, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, 9, v), ENG_EINVAL);
    assert_int_equal(eng_st_add(w, "y", ENG_ST_F32, (int64_t[]){INT64_MAX, 4}, 2, v), ENG_EINVAL);
    assert_int_equal(eng_st_add(w, "y", ENG_ST_F32, (int64_t[]){4}, 1, NULL), ENG_EINVAL);
    assert_int_equal(eng_st_add(w, "y", ENG_ST_DTYPE__COUNT, (int64_t[]){4}, 1, v), ENG_EINVAL);
    assert_int_equal(eng_st_add_metadata(w, "k", "v"), 0);
    assert_int_equal(eng_st_add_metadata(w, "k", "w"), ENG_EINVAL);
    assert_int_equal(eng_st_add_metadata(w, "k2", "\xc0\x80"), ENG_EINVAL);
    /* a failed write leaves no temporary file and reports the path */
    char path[700];
    path_in(path, sizeof path, "no-such-dir/x.safetensors");
    assert_int_equal(eng_st_write_file(w, path), ENG_EIO);
    assert_true(has(eng_last_error(), "no-such-dir/x.safetensors.tmp: cannot create"));
    eng_st_writer_free(w);
    eng_st_file *f = (eng_st_file *)1;
    assert_int_equal(eng_st_open(path, &f), ENG_ENOENT);
    assert_null(f);
    assert_true(has(eng_last_error(), "x.safetensors: cannot open"));
    path_in(path, sizeof path, "");
    assert_int_equal(eng_st_open(path, &f), ENG_EIO); /* a directory */
}

/* ------------------------------------------------------------------ malformed files */

/* 8-byte length + header + data_len bytes of data; `declared` overrides the length when nonzero. */
static uint8_t *build(const char *header, size_t hlen, size_t data_len, uint64_t declared, size_t *len)
{
    *len = 8 + hlen + data_len;
    uint8_t *b = calloc(1, *len + 1);
    assert_non_null(b);
    uint64_t n = declared ? declared : hlen;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(n >> (8 * i));
    memcpy(b + 8, header, hlen);
    for (size_t i = 0; i < data_len; i++)
        b[8 + hlen + i] = (uint8_t)i;
    return b;
}

typedef struct bad_case {
    const char *header;
    size_t data_len;
    int code;
    const char *message;
} bad_case;

#define T(name, rest) "\"" name "\":{" rest "}"
#define F32_2 "\"dtype\":\"F32\",\"shape\":[2]"

static const bad_case bad_cases[] = {
    /* not JSON, or not strict JSON */
    {"{ ", 0, ENG_EFORMAT, "not valid JSON: byte 2: expected a string key"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,8],}}", 8, ENG_EFORMAT, "expected a string key"},
    {"{'a':1}", 0, ENG_EFORMAT, "expected a string key"},
    {"{/*c*/}", 0, ENG_EFORMAT, "not valid JSON"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[00,8]}}", 8, ENG_EFORMAT, "leading zero"},
    {"{\"a\":NaN}", 0, ENG_EFORMAT, "unexpected character (expected a value)"},
    {"{\"a\":nul}", 0, ENG_EFORMAT, "invalid literal"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,8]}} x", 8, ENG_EFORMAT, "unexpected text after the JSON value"},
    {"{\"a\tb\":1}", 0, ENG_EFORMAT, "control character in string"},
    {"{\"a\\x\":1}", 0, ENG_EFORMAT, "invalid escape"},
    {"{\"a\\u12\":1}", 0, ENG_EFORMAT, "bad \\u escape"},
    {"{\"a\\ud800\":1}", 0, ENG_EFORMAT, "high surrogate"},
    {"{\"a\\udc00\":1}", 0, ENG_EFORMAT, "unpaired low surrogate"},
    {"{\"a\xff\":1}", 0, ENG_EFORMAT, "invalid UTF-8"},
    {"{\"a\xc0\x80\":1}", 0, ENG_EFORMAT, "invalid UTF-8"},       /* overlong NUL */
    {"{\"a\xed\xa0\x80\":1}", 0, ENG_EFORMAT, "invalid UTF-8"},   /* encoded surrogate */
    {"{\"a\xf4\x90\x80\x80\":1}", 0, ENG_EFORMAT, "invalid UTF-8"}, /* above U+10FFFF */
    {"{\"a\":[[[[[[1]]]]]]}", 0, ENG_ELIMIT, "nesting deeper than"},
    {"{\"a\":\"unterminated}", 0, ENG_EFORMAT, "unterminated string"},
    /* structure */
    {"[]", 0, ENG_EFORMAT, "does not start with '{'"},
    {" {}", 0, ENG_EFORMAT, "does not start with '{'"},
    {"{\"a\":[1]}", 0, ENG_EFORMAT, "tensor 'a': expected an object, found array"},
    {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "tensor 'a': missing 'dtype'"},
    {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "tensor 'a': missing 'shape'"},
    {"{\"a\":{" F32_2 "}}", 8, ENG_EFORMAT, "tensor 'a': missing 'data_offsets'"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,8],\"extra\":1}}", 8, ENG_EFORMAT, "unknown field 'extra'"},
    {"{\"a\":{" F32_2 ",\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "duplicate field 'dtype'"},
    {"{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "unknown dtype 'F33'"},
    {"{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "unknown dtype 'f32'"},
    {"{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "unknown dtype (not a string)"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "shape must be an array"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "non-negative integers"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "non-negative integers"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "non-negative integers"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT,
     "9 dimensions (at most 8"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,8,8]}}", 8, ENG_EFORMAT, "data_offsets must be [begin, end]"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":8}}", 8, ENG_EFORMAT, "data_offsets must be [begin, end]"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[-1,8]}}", 8, ENG_EFORMAT, "data_offsets must be non-negative integers"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,8e0]}}", 8, ENG_EFORMAT, "data_offsets must be non-negative integers"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,99999999999999999999]}}", 8, ENG_EFORMAT,
     "data_offsets must be non-negative integers"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[8,0]}}", 8, ENG_EFORMAT, "begin after end"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,16]}}", 8, ENG_EFORMAT, "beyond the data section (8 bytes)"},
    {"{\"a\":{" F32_2 ",\"data_offsets\":[0,12]}}", 12, ENG_EFORMAT, "F32 shape needs 8 bytes but data_offsets [0, 12] hold 12"},
    {"{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "overflows"},
    /* tiling */
    {"{" T("a", F32_2 ",\"data_offsets\":[0,8]") "," T("b", F32_2 ",\"data_offsets\":[12,20]") "}", 20, ENG_EFORMAT,
     "tensor 'b' starts at data offset 12, expected 8 (a hole)"},
    {"{" T("a", F32_2 ",\"data_offsets\":[0,8]") "," T("b", F32_2 ",\"data_offsets\":[4,12]") "}", 12, ENG_EFORMAT,
     "tensor 'b' starts at data offset 4, expected 8 (an overlap)"},
    {"{" T("a", F32_2 ",\"data_offsets\":[4,12]") "}", 12, ENG_EFORMAT, "starts at data offset 4, expected 0"},
    {"{" T("a", F32_2 ",\"data_offsets\":[0,8]") "}", 12, ENG_EFORMAT,
     "the tensors cover 8 bytes but the data section holds 12"},
    {"{}", 1, ENG_EFORMAT, "the tensors cover 0 bytes but the data section holds 1"},
    /* names and metadata */
    {"{" T("a", F32_2 ",\"data_offsets\":[0,8]") "," T("a", F32_2 ",\"data_offsets\":[8,16]") "}", 16, ENG_EFORMAT,
     "duplicate tensor name 'a'"},
    {"{\"a\\u0000b\":{" F32_2 ",\"data_offsets\":[0,8]}}", 8, ENG_EFORMAT, "NUL character"},
    {"{\"__metadata__\":[]}", 0, ENG_EFORMAT, "__metadata__ must be an object of strings, found array"},
    {"{\"__metadata__\":{\"k\":1}}", 0, ENG_EFORMAT, "__metadata__ 'k': value must be a string, found number"},
    {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, ENG_EFORMAT, "__metadata__: duplicate key 'k'"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, ENG_EFORMAT, "duplicate __metadata__"},
    {"{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0, ENG_EFORMAT, "NUL character"},
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        size_t len;
        uint8_t *b = build(c->header, strlen(c->header), c->data_len, 0, &len);
        eng_st_file *f = (eng_st_file *)1;
        eng_clear_error();
        int rc = eng_st_parse(b, len, &f);
        free(b);
        if (rc != c->code || !strstr(eng_last_error(), c->message))
            fail_msg("case %zu (%s): rc %d \"%s\", expected %d with \"%s\"", i, c->header, rc, eng_last_error(),
                     c->code, c->message);
        assert_null(f);
        assert_true(has(eng_last_error(), "safetensors buffer: "));
    }
    /* framing */
    eng_st_file *f;
    assert_int_equal(eng_st_parse("\x02\0\0\0", 4, &f), ENG_EFORMAT);
    assert_true(has(eng_last_error(), "4 bytes, too short"));
    size_t len;
    uint8_t *b = build("{}", 2, 0, 3, &len);
    assert_int_equal(eng_st_parse(b, len, &f), ENG_EFORMAT);
    assert_true(has(eng_last_error(), "header length 3 exceeds the file (10 bytes)"));
    free(b);
    b = build("{}", 2, 0, 100000001, &len);
    assert_int_equal(eng_st_parse(b, len, &f), ENG_EFORMAT);
    assert_true(has(eng_last_error(), "header length 100000001 outside 2..100000000"));
    free(b);
    b = build("{}", 2, 0, UINT64_MAX, &len);
    assert_int_equal(eng_st_parse(b, len, &f), ENG_EFORMAT);
    free(b);
    b = build("{}", 2, 0, 0, &len);
    b[0] = 0;
    assert_int_equal(eng_st_parse(b, len, &f), ENG_EFORMAT);
    free(b);
    b = build("{}\0\0\0\0\0\0", 8, 0, 0, &len); /* NUL padding is not JSON whitespace */
    assert_int_equal(eng_st_parse(b, len, &f), ENG_EFORMAT);
    free(b);
    /* a file on disk: messages start with the path */
    char path[600];
    path_in(path, sizeof path, "bad.safetensors");
    b = build("{\"a\":1}", 7, 0, 0, &len);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, len, fp), len);
    fclose(fp);
    free(b);
    assert_int_equal(eng_st_open(path, &f), ENG_EFORMAT);
    char want[700];
    snprintf(want, sizeof want, "%s: tensor 'a': expected an object, found number", path);
    assert_string_equal(eng_last_error(), want);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(eng_st_open(path, &f), ENG_EFORMAT);
    assert_true(has(eng_last_error(), "0 bytes, too short"));
}

static void test_accepted_variants(void **state)
{
    (void)state;
    /* other writers' layouts: whitespace, padding, escapes, key order, zero-size tensors */
    const char *h = " {\n\t\"z\\/\\u00e9\\ud83d\\ude00\" : {\"shape\": [2], \"data_offsets\": [8, 16], \"dtype\": \"F32\"},"
                    " \"e\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [8, 8]},"
                    " \"__metadata__\": {\"k\\\"\": \"\\u2603\"},"
                    " \"a\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [0, 8]}}\r\n  ";
    size_t len;
    uint8_t *b = build(h + 1, strlen(h + 1), 16, 0, &len);
    eng_st_file *f;
    int rc = eng_st_parse(b, len, &f);
    if (rc)
        fail_msg("%s", eng_last_error());
    free(b);
    assert_int_equal(eng_st_count(f), 3);
    assert_string_equal(eng_st_at(f, 0)->name, "a");
    assert_string_equal(eng_st_at(f, 1)->name, "e"); /* zero bytes at 8, before the tensor that starts at 8 */
    const char *odd = "z/\xc3\xa9\xf0\x9f\x98\x80";
    assert_string_equal(eng_st_at(f, 2)->name, odd);
    assert_non_null(eng_st_find(f, odd));
    assert_null(eng_st_at(f, 1)->data);
    const uint8_t want[8] = {8, 9, 10, 11, 12, 13, 14, 15};
    assert_memory_equal(eng_st_find(f, odd)->data, want, 8);
    assert_string_equal(eng_st_metadata(f, "k\""), "\xe2\x98\x83");
    eng_st_close(f);
}

/* ------------------------------------------------------------------ JSON reader */

static void test_json_reader(void **state)
{
    (void)state;
    const char *text = "[0, -0, 12, -7, 9223372036854775807, -9223372036854775808, 9223372036854775808, 1.5e3, "
                       "-2.25, 1E-2, true, false, null, \"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\", {}, [], "
                       "{\"x\": {\"y\": [1]}}]";
    eng_json_doc *doc;
    assert_int_equal(eng_json_parse(text, strlen(text), NULL, &doc), 0);
    const eng_json *r = eng_json_root(doc);
    assert_int_equal(r->type, ENG_JSON_ARRAY);
    assert_int_equal(r->len, 17);
    const eng_json *v = r->child;
    static const struct {
        bool is_int;
        int64_t i;
        double d;
    } nums[] = {{true, 0, 0},
                {true, 0, 0},
                {true, 12, 12},
                {true, -7, -7},
                {true, INT64_MAX, 9223372036854775807.0},
                {true, INT64_MIN, -9223372036854775808.0},
                {false, 0, 9223372036854775808.0},
                {false, 0, 1500},
                {false, 0, -2.25},
                {false, 0, 0.01}};
    for (int i = 0; i < 10; i++, v = v->next) {
        assert_int_equal(v->type, ENG_JSON_NUMBER);
        assert_int_equal(v->is_int, nums[i].is_int);
        if (nums[i].is_int)
            assert_true(v->integer == nums[i].i);
        assert_true(v->number == nums[i].d);
    }
    assert_int_equal(v->type, ENG_JSON_BOOL);
    assert_true(v->boolean);
    v = v->next;
    assert_int_equal(v->type, ENG_JSON_BOOL);
    assert_false(v->boolean);
    v = v->next;
    assert_int_equal(v->type, ENG_JSON_NULL);
    v = v->next;
    assert_int_equal(v->type, ENG_JSON_STRING);
    assert_string_equal(v->str, "a\"\\/\b\f\n\r\tA\xc3\xa9");
    assert_int_equal(v->len, 12);
    v = v->next;
    assert_int_equal(v->type, ENG_JSON_OBJECT);
    assert_int_equal(v->len, 0);
    v = v->next;
    assert_int_equal(v->type, ENG_JSON_ARRAY);
    v = v->next;
    const eng_json *y = eng_json_member(eng_json_member(v, "x"), "y");
    assert_non_null(y);
    assert_int_equal(y->child->integer, 1);
    assert_null(eng_json_member(v, "y"));
    assert_null(v->next);
    eng_json_doc_free(doc);

    /* a NUL inside a string is kept with its length */
    assert_int_equal(eng_json_parse("\"a\\u0000b\"", 10, NULL, &doc), 0);
    assert_int_equal(eng_json_root(doc)->len, 3);
    assert_memory_equal(eng_json_root(doc)->str, "a\0b", 4);
    eng_json_doc_free(doc);
    /* scalars at top level; surrounding whitespace; no NUL terminator needed */
    assert_int_equal(eng_json_parse(" 42 xx", 4, NULL, &doc), 0);
    assert_int_equal(eng_json_root(doc)->integer, 42);
    eng_json_doc_free(doc);

    /* errors with their byte offsets */
    static const struct {
        const char *text;
        int code;
        const char *msg;
    } bad[] = {
        {"", ENG_EFORMAT, "byte 0: unexpected end of text"},
        {"[1,]", ENG_EFORMAT, "byte 3: unexpected character"},
        {"[1 2]", ENG_EFORMAT, "byte 3: expected ',' or ']'"},
        {"{\"a\" 1}", ENG_EFORMAT, "byte 5: expected ':'"},
        {"-", ENG_EFORMAT, "byte 0: invalid number"},
        {"1.", ENG_EFORMAT, "byte 2: expected a digit after the decimal point"},
        {"1e+", ENG_EFORMAT, "byte 3: expected a digit in the exponent"},
        {"tru", ENG_EFORMAT, "byte 0: invalid literal"},
        {"[1] [2]", ENG_EFORMAT, "byte 4: unexpected text after"},
        {"[[[[", ENG_ELIMIT, "nesting deeper than 3"},
        {"[1,2,3,4,5]", ENG_ELIMIT, "more than 4 JSON values"},
        {"\"\\ud800\\u0041\"", ENG_EFORMAT, "not followed by a low surrogate"},
        {"+1", ENG_EFORMAT, "unexpected character"},
        {".5", ENG_EFORMAT, "unexpected character"},
        {"[1,2", ENG_EFORMAT, "unterminated array"},
    };
    eng_json_limits lim = {.max_depth = 3, .max_nodes = 4};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        doc = (eng_json_doc *)1;
        int rc = eng_json_parse(bad[i].text, strlen(bad[i].text), &lim, &doc);
        if (rc != bad[i].code || !strstr(eng_last_error(), bad[i].msg))
            fail_msg("'%s': rc %d \"%s\", expected %d \"%s\"", bad[i].text, rc, eng_last_error(), bad[i].code,
                     bad[i].msg);
        assert_null(doc);
    }
    assert_true(eng_json_utf8_valid("\xe2\x98\x83", 3));
    assert_false(eng_json_utf8_valid("\xe2\x98", 2));
    assert_true(eng_json_utf8_valid("", 0));
}

/* ------------------------------------------------------------------ PyTorch */

static const char *torch_python(void)
{
    const char *p = getenv("EPOCHD_TORCH_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

static int run(const char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void script_path(char *out, size_t len)
{
    const char *src = getenv("EPOCHD_TEST_SRCDIR");
    snprintf(out, len, "%s/st_torch.py", src && *src ? src : ".");
}

static char script[1024], from_py[600];

static void test_torch_exchange(void **state)
{
    (void)state;
    char from_c[600];
    path_in(from_c, sizeof from_c, "from_c.safetensors");
    /* Python wrote from_py (main), we read it */
    fixture x;
    make_fixture(&x);
    eng_st_file *f;
    int rc = eng_st_open(from_py, &f);
    if (rc)
        fail_msg("%s", eng_last_error());
    check_fixture(f, &x, true);
    /* the reference layout sorts data by alignment: f64 first */
    assert_string_equal(eng_st_at(f, 0)->name, "f64");
    /* we write (our layout, insertion order; randn's bytes copied), Python checks */
    eng_st_writer *w;
    assert_int_equal(eng_st_writer_new(&w), 0);
    add_fixture(w, &x);
    const eng_st_tensor *r = eng_st_find(f, "randn");
    assert_int_equal(eng_st_add(w, "randn", ENG_ST_F32, r->shape, r->ndim, r->data), 0);
    assert_int_equal(eng_st_add_metadata(w, "randn_sum", eng_st_metadata(f, "randn_sum")), 0);
    assert_int_equal(eng_st_write_file(w, from_c), 0);
    eng_st_writer_free(w);
    eng_st_close(f);
    assert_int_equal(run((const char *const[]){torch_python(), script, "check", from_c, NULL}), 0);
    /* and a damaged copy of ours fails Python's check too (the check can fail) */
    size_t len;
    uint8_t *b = read_all(from_c, &len);
    b[len - 1] ^= 0x40;
    FILE *fp = fopen(from_c, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, len, fp), len);
    fclose(fp);
    free(b);
    assert_int_equal(run((const char *const[]){torch_python(), script, "check", from_c, NULL}), 1);
}

/* The header alone (what the validator needs of init_from): the same
 * tensors as a full read, no data read, and the tiling still checked
 * against the file's length. */
static void test_header_only(void **state)
{
    (void)state;
    char path[700];
    path_in(path, sizeof path, "header_only.safetensors");
    eng_st_writer *w = NULL;
    assert_int_equal(eng_st_writer_new(&w), 0);
    static float big[1 << 16];
    const int64_t shape[1] = {1 << 16}, small[1] = {3};
    assert_int_equal(eng_st_add(w, "big", ENG_ST_F32, shape, 1, big), 0);
    assert_int_equal(eng_st_add(w, "small", ENG_ST_F32, small, 1, big), 0);
    assert_int_equal(eng_st_add_metadata(w, "k", "v"), 0);
    assert_int_equal(eng_st_write_file(w, path), 0);
    eng_st_writer_free(w);
    eng_st_file *full = NULL, *head = NULL;
    assert_int_equal(eng_st_open(path, &full), 0);
    assert_int_equal(eng_st_open_header(path, 0, &head), 0);
    assert_int_equal(eng_st_count(head), eng_st_count(full));
    for (int64_t i = 0; i < eng_st_count(full); i++) {
        const eng_st_tensor *a = eng_st_at(full, i), *b = eng_st_at(head, i);
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->nbytes, b->nbytes);
        assert_int_equal(a->offset, b->offset);
        assert_non_null(a->data);
        assert_null(b->data);
    }
    assert_string_equal(eng_st_metadata(head, "k"), "v");
    eng_st_close(full);
    eng_st_close(head);
    /* cut by 4 bytes: the tensors no longer tile the (shorter) data section */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 4), 0);
    assert_int_equal(eng_st_open_header(path, 0, &head), ENG_EFORMAT);
    assert_null(head);
    assert_true(has(eng_last_error(), "beyond the data section"));
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "torch") == 0) {
        /* -Dtorch_tests=enabled: PyTorch was meant to be installed, a skip is a failure */
        const char *req = getenv("EPOCHD_TEST_REQUIRED");
        const int skip = req && !strcmp(req, "1") ? 1 : 77;
        if (access(torch_python(), X_OK) != 0) {
            fprintf(stderr, "%s: absent, %s\n", torch_python(), skip == 77 ? "skipping" : "but required: FAIL");
            return skip;
        }
        if (make_base_dir(NULL) != 0)
            return 1;
        script_path(script, sizeof script);
        path_in(from_py, sizeof from_py, "from_python.safetensors");
        /* st_torch.py exits 77 when it cannot import torch */
        int rc = run((const char *const[]){torch_python(), script, "write", from_py, NULL});
        if (rc != 0) {
            remove_base_dir(NULL);
            fprintf(stderr, "st_torch.py write: exit %d%s\n", rc,
                    rc != 77 ? "" : skip == 77 ? " (no torch), skipping" : " (no torch), but required: FAIL");
            return rc == 77 ? skip : 1;
        }
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_torch_exchange)};
        rc = cmocka_run_group_tests_name("safetensors_torch", tests, NULL, NULL);
        remove_base_dir(NULL);
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_header_only),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_accepted_variants),
        cmocka_unit_test(test_json_reader),
    };
    return cmocka_run_group_tests_name("safetensors", tests, make_base_dir, remove_base_dir);
}
