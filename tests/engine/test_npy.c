/* dataset: npy against files numpy wrote (gen_npy.py): every supported
 * form loads with the values gen_npy.py's formulas give, the files numpy
 * can write but epochd refuses are refused with a message naming the file
 * and the reason, and the CPU gather of float32 data against a hand
 * computation. Skipped (77) without /usr/bin/python3 and numpy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/backend.h"
#include "engine/dataset.h"
#include "engine/error.h"

static char base[256];

static int run_generator(void **state)
{
    (void)state;
    snprintf(base, sizeof base, "/tmp/epochd-npy-XXXXXX");
    if (!mkdtemp(base))
        return -1;
    const char *src = getenv("EPOCHD_TEST_SRCDIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/gen_npy.py %s", src ? src : "tests/engine", base);
    return system(cmd) == 0 ? 0 : -1;
}

static int remove_base(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static void dir_of(const char *name, char *buf, size_t len) { snprintf(buf, len, "%s/%s", base, name); }

static int u8_value(int64_t i, int64_t c, int64_t y, int64_t x, int s)
{
    return (int)((7 * i + 31 * c + 3 * y + 5 * x + 11 * s) % 256);
}

static eng_data_desc npy_desc(const char *name, eng_layout layout)
{
    eng_data_desc d;
    eng_data_desc_default(&d);
    d.dataset = ENG_DATASET_NPY;
    d.layout = layout;
    dir_of(name, d.root, sizeof d.root);
    return d;
}

/* Loads both splits and compares every value and label with the formulas. */
static void check_case(const char *name, eng_layout layout, eng_shape want, bool f32, bool in_place)
{
    eng_data_desc d = npy_desc(name, layout);
    eng_npy_info info;
    int rc = eng_dataset_npy_info(d.root, d.layout, 0, &info);
    if (rc)
        fail_msg("%s: %s", name, eng_last_error());
    assert_true(eng_shape_equal(&info.shape, &want));
    assert_int_equal(info.f32, f32);
    assert_int_equal(info.n[0], 50);
    assert_int_equal(info.n[1], 13);
    assert_int_equal(info.classes, 4);
    d.file_shape = info.shape;
    d.file_classes = info.classes;
    for (int s = 0; s < 2; s++) {
        eng_dataset *ds;
        rc = eng_dataset_load(&d, (eng_split)s, 0, &ds);
        if (rc)
            fail_msg("%s: %s", name, eng_last_error());
        assert_int_equal(ds->n, s ? 13 : 50);
        assert_int_equal(ds->classes, 4);
        assert_int_equal(ds->f32, f32);
        assert_int_equal(ds->images_borrowed, in_place);
        int64_t c = want.ndim == 3 ? want.d[0] : 1, h = want.ndim == 3 ? want.d[1] : 1,
                w = want.ndim == 3 ? want.d[2] : want.d[0];
        for (int64_t i = 0; i < ds->n; i++) {
            assert_int_equal(ds->labels[i], (3 * i + s) % 4);
            for (int64_t k = 0; k < c; k++)
                for (int64_t y = 0; y < h; y++)
                    for (int64_t x = 0; x < w; x++) {
                        int64_t at = ((i * c + k) * h + y) * w + x;
                        int v = u8_value(i, k, y, x, s);
                        if (f32)
                            assert_true(((const float *)(const void *)ds->images)[at] == (float)v / 4.0f - 10.0f);
                        else
                            assert_int_equal(ds->images[at], v);
                    }
        }
        eng_dataset_free(ds);
    }
    /* a limit keeps the first samples */
    d.limit_train = 7;
    eng_dataset *ds;
    assert_int_equal(eng_dataset_load(&d, ENG_SPLIT_TRAIN, 0, &ds), 0);
    assert_int_equal(ds->n, 7);
    eng_dataset_free(ds);
}

static void test_u8_nchw_npz(void **state)
{
    (void)state;
    check_case("u8_nchw_npz", ENG_LAYOUT_NCHW, eng_shape3(3, 5, 7), false, true);
}

static void test_f32_nhwc_compressed(void **state)
{
    (void)state;
    check_case("f32_nhwc_npzc", ENG_LAYOUT_NHWC, eng_shape3(2, 5, 7), true, false);
}

static void test_u8_nhw_npy(void **state)
{
    (void)state;
    check_case("u8_nhw_npy", ENG_LAYOUT_NCHW, eng_shape3(1, 6, 4), false, true);
}

static void test_f32_flat_npy(void **state)
{
    (void)state;
    check_case("f32_flat_npy", ENG_LAYOUT_NCHW, eng_shape1(9), true, true);
}

/* The probe fails with a message naming the file and containing `want`. */
static void refused(const char *name, const char *file, const char *want)
{
    eng_data_desc d = npy_desc(name, ENG_LAYOUT_NCHW);
    char msg[1024];
    int rc = eng_dataset_probe(&d, msg, sizeof msg);
    if (rc == 0)
        fail_msg("%s: accepted", name);
    if (!strstr(msg, want) || !strstr(msg, file))
        fail_msg("%s: message '%s' lacks '%s' or '%s'", name, msg, want, file);
    /* loading says the same */
    eng_dataset *ds = NULL;
    assert_true(eng_dataset_load(&d, ENG_SPLIT_TRAIN, 0, &ds) < 0 || strcmp(name, "bad_test_shape") == 0);
    eng_dataset_free(ds);
}

static void test_refused(void **state)
{
    (void)state;
    refused("bad_f64", "train_x.npy", "dtype '<f8', expected uint8 (pixels 0..255) or float32");
    refused("bad_be", "train_x.npy", "big-endian dtype '>f4'");
    refused("bad_fortran", "train_x.npy", "Fortran-ordered array");
    refused("bad_count", "train_y.npy", "7 labels for the 8 samples of x");
    refused("bad_neg", "train_y.npy", "label y[5] = -1, expected a class in [0,");
    refused("bad_float_labels", "train_y.npy", "expected integer class labels");
    refused("bad_channels", "train_x.npy",
            "32 channels, at most 4 (is it (N, H, W, C)? then set data.layout: "
            "nhwc)");
    refused("bad_object", "train_x.npy", "unsupported dtype '|O'");
    refused("bad_test_shape", "test_x.npy", "samples of [1, 4, 5] uint8, but the training samples are [1, 4, 4]");
    refused("bad_one_class", "bad_one_class", "at least 2 classes are needed");
    refused("bad_trunc", "train_x.npy", "truncated: ");
    refused("bad_missing_y", "train.npz", "no array 'y' (the archive holds: x.npy, labels.npy)");
    refused("missing", "missing", "missing train.npz (or train_x.npy and train_y.npy)");
    /* a damaged compressed member is found when loading (the probe reads only x's
     * header) */
    eng_data_desc d = npy_desc("bad_crc", ENG_LAYOUT_NCHW);
    eng_dataset *ds = NULL;
    assert_true(eng_dataset_load(&d, ENG_SPLIT_TRAIN, 0, &ds) < 0);
    const char *m = eng_last_error();
    if (!strstr(m, "train.npz") || (!strstr(m, "CRC-32") && !strstr(m, "does not inflate")))
        fail_msg("bad_crc: %s", m);
}

/* A folder dataset is trained from its prepared cache (the npy files
 * datasets/ writes): without one, loading says so; with one, it is the npy loader. */
static void test_folder_cache(void **state)
{
    (void)state;
    eng_data_desc d;
    eng_data_desc_default(&d);
    d.dataset = ENG_DATASET_FOLDER;
    snprintf(d.root, sizeof d.root, "/somewhere/pets");
    eng_dataset *ds = NULL;
    assert_int_equal(eng_dataset_load(&d, ENG_SPLIT_TRAIN, 0, &ds), ENG_EINVAL);
    assert_non_null(strstr(eng_last_error(), "/somewhere/pets: its decoded cache has not been prepared"));
    eng_shape s;
    int64_t classes;
    assert_int_equal(eng_dataset_geometry(&d, &s, &classes), ENG_EINVAL);
    dir_of("u8_nchw_npz", d.cache, sizeof d.cache);
    assert_int_equal(eng_dataset_load(&d, ENG_SPLIT_TEST, 0, &ds), 0);
    assert_int_equal(ds->n, 13);
    eng_dataset_free(ds);
}

static void test_classes_given(void **state)
{
    (void)state;
    char root[512];
    dir_of("u8_nchw_npz", root, sizeof root);
    eng_npy_info info;
    assert_int_equal(eng_dataset_npy_info(root, ENG_LAYOUT_NCHW, 10, &info), 0);
    assert_int_equal(info.classes, 10);
    assert_true(eng_dataset_npy_info(root, ENG_LAYOUT_NCHW, 3, &info) < 0);
    assert_non_null(strstr(eng_last_error(), "expected a class in [0, 3)"));
}

/* The CPU gather of float32 values: crop, flip and normalisation by hand. */
static void test_gather_f32(void **state)
{
    (void)state;
    eng_backend *b = NULL;
    assert_int_equal(eng_cpu_backend_new(1, &b), 0);
    const int64_t N = 3, C = 2, H = 3, W = 4, per = C * H * W;
    float images[3 * 2 * 3 * 4];
    for (int64_t k = 0; k < N * per; k++)
        images[k] = (float)k * 0.25f - 3.0f;
    int32_t all_labels[3] = {2, 0, 1}, idx[2] = {2, 0}, labels[2];
    int16_t aug[6] = {1, 2, 1, 0, 0, 0}; /* sample 0: dy 1, dx 2, flipped; sample 1: shifted by -pad */
    eng_batch_desc d = {.n = 2,
                        .c = C,
                        .h = H,
                        .w = W,
                        .pad = 1,
                        .augment = true,
                        .f32 = true,
                        .mean = {0.5f, -1.0f},
                        .inv_std = {2.0f, 0.5f}};
    float x[2 * 2 * 3 * 4];
    assert_int_equal(b->ops->batch_gather(b, &d, (const uint8_t *)images, all_labels, idx, aug, x, labels), 0);
    for (int64_t i = 0; i < 2; i++) {
        assert_int_equal(labels[i], all_labels[idx[i]]);
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t xx = 0; xx < W; xx++) {
                    int64_t sy = y + aug[3 * i] - 1, sx = xx + aug[3 * i + 1] - 1;
                    float v = 0.0f;
                    if (sy >= 0 && sy < H && sx >= 0 && sx < W) {
                        if (aug[3 * i + 2])
                            sx = W - 1 - sx;
                        v = images[((idx[i] * C + c) * H + sy) * W + sx];
                    }
                    float want = (v - d.mean[c]) * d.inv_std[c];
                    assert_true(x[((i * C + c) * H + y) * W + xx] == want);
                }
    }
    eng_backend_free(b);
}

int main(void)
{
    if (access("/usr/bin/python3", X_OK) != 0 || system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
        printf("skipped: /usr/bin/python3 with numpy is needed\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u8_nchw_npz), cmocka_unit_test(test_f32_nhwc_compressed),
        cmocka_unit_test(test_u8_nhw_npy),  cmocka_unit_test(test_f32_flat_npy),
        cmocka_unit_test(test_refused),     cmocka_unit_test(test_classes_given),
        cmocka_unit_test(test_gather_f32),
        cmocka_unit_test(test_folder_cache),
    };
    return cmocka_run_group_tests_name("npy", tests, run_generator, remove_base);
}
