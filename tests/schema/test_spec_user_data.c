/* The spec keys of dataset: folder and npy, without files (the files'
 * checks are in tests/datasets/test_user_data.py): defaults, ranges, keys
 * of the other kind located and explained, and that the model waits for
 * the files' shape when they are not looked at. */
#include "helpers.h"

#define CNN "model: {template: cnn, channels: [4, p], pool: {kernel: 2, stride: 2}}\n"

static void test_folder_keys(void **state)
{
    (void)state;
    spec_file *f = load("data:\n  dataset: folder\n  root: imgs\n  size: [24, 32]\n  channels: 1\n"
                        "  split: {test: 0.25, seed: 9}\n" CNN);
    assert_diags(f, "");
    const eng_data_desc *d = &f->entries[0].spec->data;
    assert_int_equal(d->dataset, ENG_DATASET_FOLDER);
    assert_string_equal(d->root, "/t/imgs"); /* relative to the spec file */
    assert_int_equal(d->image_h, 24);
    assert_int_equal(d->image_w, 32);
    assert_int_equal(d->image_c, 1);
    assert_true(d->split_test == 0.25);
    assert_int_equal(d->split_seed, 9);
    /* without the files (--no-files) the class count is unknown: no model is built, no shape error */
    assert_int_equal(f->entries[0].spec->params, -1);
    spec_file_free(f);
    f = load("data: {dataset: folder, root: /x, size: [8, 8]}\n" CNN);
    assert_diags(f, "");
    assert_int_equal(f->entries[0].spec->data.image_c, 3);
    assert_true(f->entries[0].spec->data.split_test == 0.0);
    spec_file_free(f);
}

static void test_folder_errors(void **state)
{
    (void)state;
    assert_yaml_diags("data: {dataset: folder}\n" CNN,
                      "/t/t.yaml:1:7: data.root: missing required key for folder (the image folder: "
                      "ROOT/train/<class>/..., ROOT/test/<class>/...)\n"
                      "/t/t.yaml:1:7: data.size: missing required key for dataset folder ([height, width] the images "
                      "are resized and cropped to)\n");
    assert_yaml_diags("data: {dataset: folder, root: x, size: [8, 0], channels: 2, split: {test: 1.0}}\n" CNN,
                      "/t/t.yaml:1:44: data.size[1]: expected an integer in [1, 4096], found 0\n"
                      "/t/t.yaml:1:58: data.channels: expected 1 (grayscale) or 3 (RGB), found 2\n"
                      "/t/t.yaml:1:75: data.split.test: expected a number in (0, 1), found 1.0\n");
    assert_yaml_diags("data: {dataset: folder, root: x, size: [8], split: {seed: 1}}\n" CNN,
                      "/t/t.yaml:1:40: data.size: expected [height, width], found 1 size\n"
                      "/t/t.yaml:1:52: data.split.test: missing required key (the fraction of each class held out "
                      "for testing, e.g. 0.2)\n");
    assert_yaml_diags("data: {dataset: folder, root: x, size: [8, 8], layout: nhwc, classes: 3}\n" CNN,
                      "/t/t.yaml:1:48: data.layout: only for dataset npy, not folder\n"
                      "/t/t.yaml:1:62: data.classes: only for dataset npy, not folder\n");
}

static void test_npy_keys(void **state)
{
    (void)state;
    spec_file *f = load("data: {dataset: npy, root: arrays, layout: nhwc, classes: 12}\n" CNN);
    assert_diags(f, "");
    const eng_data_desc *d = &f->entries[0].spec->data;
    assert_int_equal(d->dataset, ENG_DATASET_NPY);
    assert_string_equal(d->root, "/t/arrays");
    assert_int_equal(d->layout, ENG_LAYOUT_NHWC);
    assert_int_equal(d->classes, 12);
    spec_file_free(f);
    assert_yaml_diags("data: {dataset: npy}\n" CNN,
                      "/t/t.yaml:1:7: data.root: missing required key for npy (the directory with train.npz and "
                      "test.npz, or train_x.npy ...)\n");
    assert_yaml_diags("data: {dataset: npy, root: a, layout: hwc, classes: 1, size: [4, 4], split: {test: 0.5}}\n" CNN,
                      "/t/t.yaml:1:39: data.layout: expected nchw or nhwc, found hwc (did you mean 'nhwc'?)\n"
                      "/t/t.yaml:1:53: data.classes: expected an integer in [2, 1048576], found 1\n"
                      "/t/t.yaml:1:56: data.size: only for dataset folder, not npy\n"
                      "/t/t.yaml:1:70: data.split: only for dataset folder, not npy\n");
    assert_yaml_diags("data: {dataset: mnist, size: [8, 8]}\nmodel: {template: mlp, units: [10]}\n",
                      "/t/t.yaml:1:24: data.size: only for dataset folder, not mnist\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folder_keys),
        cmocka_unit_test(test_folder_errors),
        cmocka_unit_test(test_npy_keys),
    };
    return cmocka_run_group_tests_name("spec_user_data", tests, NULL, NULL);
}
