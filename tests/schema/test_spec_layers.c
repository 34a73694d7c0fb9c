/* The sequential layers beyond spec v1 (transpose, mean, patches, reshape,
 * pad_channels, mixer, residual's post): every key into its field, defaults,
 * and bad values and shape mismatches located at their key (exact line:col).
 * And every kind the engine names (layer, template, activation, dataset) is a
 * name a spec may write. */
#include "helpers.h"

#define SYNTH "data: {dataset: synthetic, synthetic: {shape: [3, 8, 8], classes: 4}}\n"
#define SEQ SYNTH "model:\n  template: sequential\n  layers:\n"

/* ---- every key into its field ---- */

static void test_new_layers_parse(void **state)
{
    (void)state;
    /* the per-layer comments give the shape after each */
    spec_file *f = load(SEQ "    - pad_channels: {out: 4}\n"
                 "    - residual:\n"
                 "        post: relu\n"
                 "        layers:\n"
                 "          - conv2d: {out: 4, kernel: 3, padding: 1}\n"
                 "          - batchnorm: {}\n"
                 "    - patches: {size: 4}\n"
                 "    - reshape: {shape: [8, 32]}\n"
                 "    - linear: {out: 6}\n"
                 "    - mixer: {}\n"
                 "    - transpose: {}\n"
                 "    - residual: {post: none, layers: [{layernorm: {}}, {linear: {out: 8}}]}\n"
                 "    - mean: {dim: 0}\n"
                 "    - reshape: {shape: [2, 4]}\n"
                 "    - mean:\n"
                 "    - linear: {out: 4}\n");
    assert_diags(f, "");
    assert_true(spec_file_valid(f));
    const spec *s = f->entries[0].spec;
    const eng_model_desc *m = &s->model;
    assert_int_equal(m->n_layers, 12);
    const eng_layer_desc *l = m->layers;
    assert_int_equal(l[0].kind, ENG_LAYER_PAD_CHANNELS);
    assert_int_equal(l[0].out, 4);
    assert_int_equal(l[1].kind, ENG_LAYER_RESIDUAL);
    assert_int_equal(l[1].post, ENG_ACT_RELU);
    assert_int_equal(l[1].n_layers, 2);
    assert_int_equal(l[1].layers[0].kind, ENG_LAYER_CONV2D);
    assert_int_equal(l[1].layers[1].kind, ENG_LAYER_BATCHNORM);
    assert_int_equal(l[2].kind, ENG_LAYER_PATCHES);
    assert_int_equal(l[2].patch_size, 4);
    assert_int_equal(l[3].kind, ENG_LAYER_RESHAPE);
    assert_int_equal(l[3].shape.ndim, 2);
    assert_int_equal(l[3].shape.d[0], 8);
    assert_int_equal(l[3].shape.d[1], 32);
    assert_int_equal(l[4].kind, ENG_LAYER_LINEAR);
    assert_int_equal(l[5].kind, ENG_LAYER_MIXER);
    assert_int_equal(l[6].kind, ENG_LAYER_TRANSPOSE);
    assert_int_equal(l[7].kind, ENG_LAYER_RESIDUAL);
    assert_int_equal(l[7].post, ENG_ACT_NONE);
    assert_int_equal(l[8].kind, ENG_LAYER_MEAN);
    assert_int_equal(l[8].dim, 0);
    assert_int_equal(l[9].kind, ENG_LAYER_RESHAPE);
    assert_int_equal(l[9].shape.ndim, 2);
    assert_int_equal(l[9].shape.d[0], 2);
    assert_int_equal(l[9].shape.d[1], 4);
    assert_int_equal(l[10].kind, ENG_LAYER_MEAN);
    assert_int_equal(l[10].dim, -1); /* default: the last dimension */
    assert_int_equal(l[11].kind, ENG_LAYER_LINEAR);
    /* conv 4->4 3x3 148, batchnorm 8, linear 32->6 198, mixer on (8, 6):
     * LN_S 16 + 2 x (64 + 8) + LN_C 12 + 2 x (36 + 6) = 256, layernorm(8) 16
     * and linear 8->8 72 in the second residual, linear 2->4 12 */
    assert_int_equal(s->params, 148 + 8 + 198 + 256 + 16 + 72 + 12);
    spec_file_free(f);

    /* residual's post defaults to none; a 3-d reshape and mean over the middle */
    f = load(SEQ "    - residual: {layers: [{relu: {}}]}\n"
                 "    - reshape: {shape: [3, 4, 16]}\n"
                 "    - mean: {dim: -2}\n"
                 "    - flatten: {}\n"
                 "    - linear: {out: 4}\n");
    assert_diags(f, "");
    l = f->entries[0].spec->model.layers;
    assert_int_equal(l[0].post, ENG_ACT_NONE);
    assert_int_equal(l[1].shape.ndim, 3);
    assert_int_equal(l[1].shape.d[2], 16);
    assert_int_equal(l[2].dim, -2);
    assert_int_equal(f->entries[0].spec->params, 3 * 16 * 4 + 4);
    spec_file_free(f);
}

/* ---- bad values, located by the validator ---- */

static void test_new_layers_bad_values(void **state)
{
    (void)state;
    assert_yaml_diags(SEQ "    - patches: {}\n"
                          "    - patches: {size: 0}\n"
                          "    - patches:\n"
                          "    - reshape: {shape: 12}\n"
                          "    - reshape: {shape: [4, 0, x]}\n"
                          "    - reshape: {shape: [1, 1, 1, 1, 3]}\n"
                          "    - reshape: {}\n"
                          "    - pad_channels: {}\n"
                          "    - pad_channels: {out: -1}\n"
                          "    - mean: {dim: x}\n"
                          "    - mean: {dim: -5}\n"
                          "    - residual: {layers: [{relu: {}}], post: gelu}\n"
                          "    - transpose: {dim: 1}\n"
                          "    - mixer: {hidden: 4}\n"
                          "    - patches: {size: 2, stride: 2}\n",
                      "/t/t.yaml:5:16: model.layers[0].patches.size: missing required key (p of the p x p patches)\n"
                      "/t/t.yaml:6:23: model.layers[1].patches.size: expected an integer in [1, 1024], found 0\n"
                      "/t/t.yaml:7:15: model.layers[2].patches: expected a map of patches settings, found nothing\n"
                      "/t/t.yaml:8:24: model.layers[3].reshape.shape: expected a list of sizes, like [64, 48], "
                      "found 12\n"
                      "/t/t.yaml:9:28: model.layers[4].reshape.shape[1]: expected an integer in [1, 16777216], "
                      "found 0\n"
                      "/t/t.yaml:9:31: model.layers[4].reshape.shape[2]: expected an integer in [1, 16777216], "
                      "found x\n"
                      "/t/t.yaml:10:24: model.layers[5].reshape.shape: expected 1 to 4 sizes, found 5\n"
                      "/t/t.yaml:11:16: model.layers[6].reshape.shape: missing required key (the per-sample shape "
                      "after the reshape, like [64, 48])\n"
                      "/t/t.yaml:12:21: model.layers[7].pad_channels.out: missing required key (the channel count "
                      "after padding)\n"
                      "/t/t.yaml:13:27: model.layers[8].pad_channels.out: expected an integer in [1, 16777216], "
                      "found -1\n"
                      "/t/t.yaml:14:19: model.layers[9].mean.dim: expected an integer in [-4, 3], found x\n"
                      "/t/t.yaml:15:19: model.layers[10].mean.dim: expected an integer in [-4, 3], found -5\n"
                      "/t/t.yaml:16:46: model.layers[11].residual.post: expected none or relu, found gelu (did you "
                      "mean 'relu'?)\n"
                      "/t/t.yaml:17:19: model.layers[12].transpose.dim: unknown key\n"
                      "/t/t.yaml:18:15: model.layers[13].mixer.hidden: unknown key here (hidden belongs under model:)\n"
                      "/t/t.yaml:19:26: model.layers[14].patches.stride: unknown key\n");
    /* a misspelt new layer type is suggested like the others */
    assert_yaml_diags(SEQ "    - transpos: {}\n    - pad_channel: {out: 4}\n",
                      "/t/t.yaml:5:7: model.layers[0]: unknown layer type 'transpos' (did you mean 'transpose'?)\n"
                      "/t/t.yaml:6:7: model.layers[1]: unknown layer type 'pad_channel' (did you mean "
                      "'pad_channels'?)\n");
}

/* ---- shape mismatches, found by building the model, located at their key ---- */

static void test_new_layers_shape_errors(void **state)
{
    (void)state;
    assert_yaml_diags(SEQ "    - patches: {size: 3}\n    - flatten: {}\n    - linear: {out: 4}\n",
                      "/t/t.yaml:5:23: model.layers[0].patches.size: expected a divisor of the 8x8 input, found 3\n");
    assert_yaml_diags(SEQ "    - flatten: {}\n    - patches: {size: 2}\n    - linear: {out: 4}\n",
                      "/t/t.yaml:6:7: model.layers[1]: expected image input [C, H, W] for patches, found [192]\n");
    assert_yaml_diags(SEQ "    - reshape: {shape: [64, 4]}\n    - mean: {}\n    - linear: {out: 4}\n",
                      "/t/t.yaml:5:24: model.layers[0].reshape.shape: expected a shape of 192 values (the input "
                      "[3, 8, 8]), found [64, 4] (256 values)\n");
    assert_yaml_diags(SEQ "    - reshape: {shape: [16, 12]}\n    - mean: {dim: -3}\n    - linear: {out: 4}\n",
                      "/t/t.yaml:6:19: model.layers[1].mean.dim: expected a dimension in [-2, 1] of the input "
                      "[16, 12], found -3\n");
    assert_yaml_diags(SEQ "    - mean: {dim: 3}\n    - flatten: {}\n    - linear: {out: 4}\n",
                      "/t/t.yaml:5:19: model.layers[0].mean.dim: expected a dimension in [-3, 2] of the input "
                      "[3, 8, 8], found 3\n");
    assert_yaml_diags(SEQ "    - pad_channels: {out: 2}\n    - flatten: {}\n    - linear: {out: 4}\n",
                      "/t/t.yaml:5:27: model.layers[0].pad_channels.out: expected at least the input's 3 channels "
                      "(zero padding only widens), found 2\n");
    assert_yaml_diags(SEQ "    - flatten: {}\n    - pad_channels: {out: 4}\n    - linear: {out: 4}\n",
                      "/t/t.yaml:6:7: model.layers[1]: expected image input [C, H, W] for pad_channels, found "
                      "[192]\n");
    assert_yaml_diags(SEQ "    - mixer: {}\n    - flatten: {}\n    - linear: {out: 4}\n",
                      "/t/t.yaml:5:7: model.layers[0]: expected tokens [S, C] for mixer, found [3, 8, 8]\n");
    assert_yaml_diags(SEQ "    - flatten: {}\n    - transpose: {}\n    - linear: {out: 4}\n",
                      "/t/t.yaml:6:7: model.layers[1]: expected at least 2 dimensions for transpose (it swaps the "
                      "last two), found [192]\n");
    /* inside a residual the path goes on through its list */
    assert_yaml_diags(SEQ "    - patches: {size: 4}\n"
                          "    - residual:\n"
                          "        post: relu\n"
                          "        layers:\n"
                          "          - transpose: {}\n"
                          "          - linear: {out: 4}\n"
                          "    - mean: {}\n    - linear: {out: 4}\n",
                      "/t/t.yaml:9:11: model.layers[1].residual.layers: expected the residual's layers to keep the "
                      "shape [4, 48], found [48, 4]\n");
    /* a transpose changes the shape the next layers see */
    assert_yaml_diags(SEQ "    - patches: {size: 4}\n    - transpose: {}\n    - mixer: {}\n    - mean: {dim: 0}\n"
                          "    - linear: {out: 4}\n    - reshape: {shape: [2, 2]}\n",
                      "/t/t.yaml:5:5: model.layers: expected the model's output to be [4] (the dataset's class "
                      "count), found [2, 2]\n");
}

/* ---- sizes past 64 bits: refused with a located message, never wrapped (issue 10, defect 1) ---- */

static void test_sizes_past_64_bits(void **state)
{
    (void)state;
    /* the spec: 34724 * 27905 * 49477 * 384773 = 2^64 + 4 wrapped to
     * the input's 4 values, `check` said ok and `run` crashed in transpose */
    assert_yaml_diags("data: {dataset: synthetic, synthetic: {shape: [4], classes: 2, train: 8, test: 8}}\n"
                      "model:\n  template: sequential\n  layers:\n"
                      "    - reshape: {shape: [34724, 27905, 49477, 384773]}\n"
                      "    - transpose: {}\n    - flatten: {}\n    - linear: {out: 2}\n",
                      "/t/t.yaml:5:24: model.layers[0].reshape.shape: expected a shape of 4 values (the input [4]), "
                      "found [34724, 27905, 49477, 384773] (more than 9223372036854775807 values)\n");
    /* a weight of 2^24 * 2^24 * 1024 * 1024 = 2^68 values wrapped to 0: the
     * parameter limit missed it; now both limits report it */
    spec_options o = test_opts();
    o.max_memory_bytes = (size_t)1 << 30;
    spec_file *f = load_opts("data: {dataset: synthetic, synthetic: {shape: [1, 4, 4], classes: 2}, batch_size: 4}\n"
                             "model:\n  template: sequential\n  layers:\n"
                             "    - conv2d: {out: 16777216, kernel: 1}\n"
                             "    - conv2d: {out: 16777216, kernel: 1024, stride: 1024, padding: 1024}\n"
                             "    - flatten: {}\n    - linear: {out: 2}\n",
                             &o);
    assert_diags(f, "/t/t.yaml:1:83: data.batch_size: the model needs more memory than can be counted (over 8 EiB) at "
                    "batch size 4, more than the limit of 1.0 GiB\n"
                    "/t/t.yaml:3:3: model: the model has more than 9223372036854775807 parameters, more than the "
                    "limit of 1000000000\n");
    spec_file_free(f);
}

/* ---- the seed's models by hand (the fixtures docs/spec.md shows) ---- */

static const spec *load_fixture(const char *name, spec_file **f)
{
    spec_options o = test_opts();
    assert_int_equal(spec_file_load(fixture(name), &o, f), 0);
    assert_diags(*f, "");
    assert_int_equal((*f)->n_entries, 1);
    return (*f)->entries[0].spec;
}

static void test_seed_models_by_hand(void **state)
{
    (void)state;
    spec_file *f = NULL;
    const spec *s = load_fixture("seq_seed_mixer.yaml", &f);
    assert_int_equal(s->model.template_kind, ENG_TEMPLATE_SEQUENTIAL);
    assert_int_equal(s->model.n_layers, 12);
    assert_int_equal(s->model.layers[0].kind, ENG_LAYER_RESHAPE);
    for (int i = 2; i < 8; i++)
        assert_int_equal(s->model.layers[i].kind, ENG_LAYER_MIXER);
    assert_int_equal(s->params, 273674); /* mlp_mixer_S4 */
    spec_file_free(f);

    s = load_fixture("seq_seed_resnet.yaml", &f);
    assert_int_equal(s->model.n_layers, 16);
    /* the aliased blocks are full copies, each with its post */
    int blocks = 0;
    for (int64_t i = 0; i < s->model.n_layers; i++) {
        const eng_layer_desc *l = &s->model.layers[i];
        if (l->kind != ENG_LAYER_RESIDUAL)
            continue;
        blocks++;
        assert_int_equal(l->post, ENG_ACT_RELU);
        assert_int_equal(l->n_layers, 5);
    }
    assert_int_equal(blocks, 7);
    assert_int_equal(s->params, 1134026); /* residual_cnn */
    spec_file_free(f);
}

/* ---- the engine's names are the spec's ---- */

/* Loads yaml (a printf format with one %s) with each of the n names of a
 * kind: each name is set and distinct, and no diagnostic says `refused`. */
static void check_names(const char *const *names, int n, const char *yaml, const char *refused)
{
    for (int k = 0; k < n; k++) {
        assert_non_null(names[k]);
        for (int j = 0; j < k; j++)
            assert_string_not_equal(names[j], names[k]);
        char text[1024];
        snprintf(text, sizeof text, yaml, names[k]);
        spec_file *f = load(text);
        char *d = all_diags(f);
        if (strstr(d, refused))
            fprintf(stderr, "%s: %s", names[k], d);
        assert_null(strstr(d, refused));
        free(d);
        spec_file_free(f);
    }
}

static void test_engine_names_are_spec_names(void **state)
{
    (void)state;
    for (int k = 0; k < ENG_LAYER__COUNT; k++)
        assert_ptr_equal(eng_layer_kind_name((eng_layer_kind)k), eng_layer_kind_names[k]);
    check_names(eng_layer_kind_names, ENG_LAYER__COUNT, SEQ "    - %s: {}\n", "unknown layer type");
    check_names(eng_template_names, ENG_TEMPLATE__COUNT, SYNTH "model: {template: %s}\n", "model.template:");
    check_names(eng_act_names, ENG_ACT__COUNT, SYNTH "model: {template: mlp, units: [4], activation: %s}\n",
                "model.activation:");
    check_names(eng_dataset_names, ENG_DATASET__COUNT, "data: {dataset: %s}\nmodel: {template: mlp, units: [4]}\n",
                "data.dataset:");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_layers_parse),
        cmocka_unit_test(test_new_layers_bad_values),
        cmocka_unit_test(test_new_layers_shape_errors),
        cmocka_unit_test(test_sizes_past_64_bits),
        cmocka_unit_test(test_seed_models_by_hand),
        cmocka_unit_test(test_engine_names_are_spec_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
