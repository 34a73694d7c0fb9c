/* Spec loading and validation: every key into its field, defaults, templates,
 * and located errors (exact line:col), limits, fault injection. */
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "schema/alloc.h"
#include "tests/common/tmpdir.h"

static const char *const MLP = "data: {dataset: fashion_mnist}\nmodel: {template: mlp, units: [10]}\n";

/* ---- every key ---- */

static void test_full_spec_every_key(void **state)
{
    (void)state;
    spec_options o = test_opts();
    spec_file *f = NULL;
    assert_int_equal(spec_file_load(fixture("full.yaml"), &o, &f), 0);
    assert_diags(f, "");
    assert_true(spec_file_valid(f));
    assert_false(f->is_sweep);
    assert_int_equal(f->n_entries, 1);
    const spec *s = f->entries[0].spec;
    assert_string_equal(s->name, "full_spec");
    assert_string_equal(s->path, fixture("full.yaml"));
    assert_int_equal(s->train.seed, 42);
    assert_int_equal(s->device, SPEC_DEVICE_CUDA);
    assert_int_equal(s->device_index, 1);
    assert_int_equal(s->priority, 7);
    /* the stored text is the file, byte for byte, and the identity its SHA-256 */
    size_t len;
    char *text = read_text(fixture("full.yaml"), &len);
    assert_int_equal(s->text_len, len);
    assert_memory_equal(s->text, text, len);
    char sha[65];
    spec_sha256_hex(text, len, sha);
    assert_string_equal(s->sha256, sha);
    assert_string_equal(f->sha256, sha);
    assert_string_equal(f->entries[0].sha256, sha);
    assert_null(s->sweep_json);
    free(text);

    const eng_data_desc *d = &s->data;
    assert_int_equal(d->dataset, ENG_DATASET_CIFAR100);
    char root[2048];
    snprintf(root, sizeof root, "%s/data/cifar-100-binary", SCHEMA_FIXTURES);
    assert_string_equal(d->root, root);
    assert_int_equal(d->batch_size, 128);
    assert_int_equal(d->eval_batch_size, 1000);
    assert_false(d->shuffle);
    assert_false(d->drop_last);
    assert_true(d->normalize);
    assert_int_equal(d->n_norm, 3);
    assert_true(d->mean[0] == 0.5071f && d->mean[1] == 0.4865f && d->mean[2] == 0.4409f);
    assert_true(d->std[0] == 0.2673f && d->std[1] == 0.2564f && d->std[2] == 0.2762f);
    assert_int_equal(d->crop_padding, 4);
    assert_true(d->hflip);
    assert_int_equal(d->limit_train, 10000);
    assert_int_equal(d->limit_test, 2000);

    const eng_model_desc *m = &s->model;
    assert_int_equal(m->template_kind, ENG_TEMPLATE_CNN);
    snprintf(root, sizeof root, "%s/weights/start.safetensors", SCHEMA_FIXTURES);
    assert_string_equal(m->init_from, root);
    static const int64_t ch[] = {16, 16, ENG_POOL_ENTRY, 32, 32, ENG_POOL_ENTRY, 64};
    assert_int_equal(m->n_channels, 7);
    assert_memory_equal(m->channels, ch, sizeof ch);
    assert_int_equal(m->activation, ENG_ACT_GELU);
    assert_false(m->batch_norm);
    assert_int_equal(m->pool_kernel, 2);
    assert_int_equal(m->pool_stride, 2);
    assert_int_equal(m->head, ENG_HEAD_SOFTMAX);

    const eng_train_desc *t = &s->train;
    assert_int_equal(t->epochs, 30);
    assert_int_equal(t->optimizer, ENG_OPT_SGD);
    assert_true(t->lr == 0.1f);
    assert_true(t->weight_decay == 5.0e-4f);
    assert_true(t->momentum == 0.9f);
    assert_true(t->nesterov);
    assert_true(t->grad_clip == 1.0f);
    assert_true(t->warmup_epochs == 2.5f);
    assert_int_equal(t->schedule, ENG_SCHED_STEP);
    assert_int_equal(t->step_epochs, 10);
    assert_true(t->gamma == 0.2f);
    assert_int_equal(t->top_k, 5);
    assert_int_equal(t->precision, ENG_PREC_BF16);
    assert_int_equal(t->checkpoint_every, 3);
    assert_false(t->keep_best);
    assert_false(t->stop_on_nonfinite);
    /* Conv 3->16->16, pool, 16->32->32, pool, 32->64 (3x3, bias), Linear(64*8*8, 100) */
    int64_t want = (3 * 16 * 9 + 16) + (16 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (32 * 32 * 9 + 32) +
                   (32 * 64 * 9 + 64) + (64 * 8 * 8 * 100 + 100);
    assert_int_equal(s->params, want);
    spec_file_free(f);
}

static void test_defaults(void **state)
{
    (void)state;
    spec_file *f = NULL;
    spec_options o = test_opts();
    assert_int_equal(spec_file_load_buffer("exp/quick.yml", MLP, strlen(MLP), &o, &f), 0);
    assert_diags(f, "");
    const spec *s = f->entries[0].spec;
    assert_string_equal(s->name, "quick");
    assert_int_equal(s->device, SPEC_DEVICE_AUTO);
    assert_int_equal(s->device_index, -1);
    assert_int_equal(s->priority, 0);
    const eng_data_desc *d = &s->data;
    assert_string_equal(d->root, "/usr/share/datasets/fashion-mnist");
    assert_int_equal(d->batch_size, 500);
    assert_int_equal(d->eval_batch_size, 500);
    assert_true(d->shuffle && d->drop_last);
    assert_false(d->normalize || d->hflip);
    assert_int_equal(d->crop_padding + d->limit_train + d->limit_test, 0);
    const eng_model_desc *m = &s->model;
    assert_int_equal(m->template_kind, ENG_TEMPLATE_MLP);
    assert_int_equal(m->n_units, 1);
    assert_int_equal(m->units[0], 10);
    assert_int_equal(m->activation, ENG_ACT_RELU);
    assert_int_equal(m->head, ENG_HEAD_LOGITS);
    assert_true(m->batch_norm);
    assert_false(m->bias);
    assert_string_equal(m->init_from, "");
    const eng_train_desc *t = &s->train;
    assert_int_equal(t->seed, 0);
    assert_int_equal(t->epochs, 600);
    assert_int_equal(t->optimizer, ENG_OPT_ADAM);
    assert_true(t->lr == 1.0e-3f && t->beta1 == 0.9f && t->beta2 == 0.999f && t->eps == 1.0e-8f);
    assert_true(t->weight_decay == 1.0e-4f && t->momentum == 0.0f && !t->nesterov);
    assert_true(t->grad_clip == 0.0f && t->warmup_epochs == 0.0f);
    assert_int_equal(t->schedule, ENG_SCHED_CONSTANT);
    assert_int_equal(t->top_k, 1);
    assert_int_equal(t->precision, ENG_PREC_FP32);
    assert_int_equal(t->checkpoint_every, 1);
    assert_true(t->keep_best);
    assert_true(t->stop_on_nonfinite);
    /* Linear(784, 10, bias=False) then BatchNorm1d(10, affine=False) */
    assert_int_equal(s->params, 7840);
    spec_file_free(f);

    /* mnist's default root; a relative root resolves against the file's directory */
    f = load("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n");
    assert_string_equal(f->entries[0].spec->data.root, "/usr/share/datasets/mnist");
    spec_file_free(f);
    f = load("data: {dataset: mnist, root: ../m}\nmodel: {template: mlp, units: [10]}\n");
    assert_string_equal(f->entries[0].spec->data.root, "/m"); /* stored resolved */
    spec_file_free(f);
}

static void test_name_from_file(void **state)
{
    (void)state;
    spec_options o = test_opts();
    spec_file *f = NULL;
    assert_int_equal(spec_file_load_buffer("/x/y/normal_cnn.yaml", MLP, strlen(MLP), &o, &f), 0);
    assert_string_equal(f->entries[0].name, "normal_cnn");
    spec_file_free(f);
    assert_int_equal(spec_file_load_buffer("/x/my run.yaml", MLP, strlen(MLP), &o, &f), 0);
    assert_diags(f, "/x/my run.yaml:1:1: name: the file name 'my run' is not a valid run name (1 to 128 of A-Z "
                    "a-z 0-9 _ - . + =, not starting with - or .): add a name: key\n");
    spec_file_free(f);
}

/* ---- templates ---- */

static void test_template_mlp(void **state)
{
    (void)state;
    spec_file *f = load("data: {dataset: mnist}\n"
                        "model: {template: mlp, units: [256, 128, 10], activation: tanh, last_activation: sigmoid,\n"
                        "        batch_norm: false, bias: true}\n");
    assert_diags(f, "");
    const eng_model_desc *m = &f->entries[0].spec->model;
    static const int64_t u[] = {256, 128, 10};
    assert_int_equal(m->n_units, 3);
    assert_memory_equal(m->units, u, sizeof u);
    assert_int_equal(m->activation, ENG_ACT_TANH);
    assert_int_equal(m->head, ENG_HEAD_SIGMOID);
    assert_false(m->batch_norm);
    assert_true(m->bias);
    assert_int_equal(f->entries[0].spec->params, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    spec_file_free(f);
    f = load("data: {dataset: mnist}\nmodel: {template: mlp, units: [10], last_activation: softmax, "
             "activation: leaky_relu}\n");
    assert_int_equal(f->entries[0].spec->model.head, ENG_HEAD_SOFTMAX);
    assert_int_equal(f->entries[0].spec->model.activation, ENG_ACT_LEAKY_RELU);
    spec_file_free(f);
}

/* The seed's models, with their PyTorch parameter counts (README.md, experiments/seed/). */
static void test_seed_templates(void **state)
{
    (void)state;
    static const struct {
        const char *model;
        int64_t params;
    } cases[] = {
        {"{template: cnn, channels: [16, 16, p, 32, 32, p, 64, 64, p, 128, 128, p, 256, 256], head: softmax}",
         1183322},
        {"{template: resnet, channels: [32, 32, 64, 64, 64, 64, 128, 128, 128], block: small, head: softmax}",
         1134026},
        {"{template: mlp_mixer, patch_size: 4, hidden: 128, depth: 6, patching: reshape, head: softmax}", 273674},
        {"{template: mlp_mixer, patch_size: 2, hidden: 128, depth: 6, patching: reshape, head: softmax}", 1062026},
        {"{template: mlp_mixer, patch_size: 4, hidden: 192, depth: 8, patching: patches}", 698186},
        {"{template: mlp_mixer, patch_size: 2, hidden: 192, depth: 8}", 1756106},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "data: {dataset: cifar10, root: /srv/c10}\nmodel: %s\n", cases[i].model);
        spec_file *f = load(yaml);
        assert_diags(f, "");
        assert_int_equal(f->entries[0].spec->params, cases[i].params);
        spec_file_free(f);
    }
    spec_file *f = load("data: {dataset: cifar10, root: /c}\n"
                        "model: {template: resnet, channels: [32, 64], block: big, head: logits}\n");
    assert_diags(f, "");
    const eng_model_desc *m = &f->entries[0].spec->model;
    assert_int_equal(m->block, ENG_BLOCK_BIG);
    assert_int_equal(m->head, ENG_HEAD_LOGITS);
    assert_int_equal(m->n_channels, 2);
    spec_file_free(f);
    f = load("data: {dataset: cifar10, root: /c}\nmodel: {template: mlp_mixer}\n");
    m = &f->entries[0].spec->model;
    assert_int_equal(m->patch_size, 4);
    assert_int_equal(m->hidden, 128);
    assert_int_equal(m->depth, 6);
    assert_int_equal(m->patching, ENG_PATCHING_PATCHES);
    assert_int_equal(m->head, ENG_HEAD_LOGITS);
    spec_file_free(f);
}

static void test_template_sequential(void **state)
{
    (void)state;
    spec_options o = test_opts();
    spec_file *f = NULL;
    assert_int_equal(spec_file_load(fixture("synthetic.yaml"), &o, &f), 0);
    assert_diags(f, "");
    const spec *s = f->entries[0].spec;
    assert_string_equal(s->name, "synthetic");
    assert_int_equal(s->data.dataset, ENG_DATASET_SYNTHETIC);
    assert_string_equal(s->data.root, "");
    assert_int_equal(s->data.synth_shape.ndim, 3);
    assert_int_equal(s->data.synth_shape.d[0], 2);
    assert_int_equal(s->data.synth_shape.d[1], 8);
    assert_int_equal(s->data.synth_shape.d[2], 8);
    assert_int_equal(s->data.synth_classes, 3);
    assert_int_equal(s->data.synth_train, 200);
    assert_int_equal(s->data.synth_test, 40);
    assert_int_equal(s->data.n_norm, 1);
    assert_true(s->data.mean[0] == 0.5f && s->data.std[0] == 0.25f);
    assert_int_equal(s->train.schedule, ENG_SCHED_COSINE);
    assert_true(s->train.min_lr == 1.0e-5f);
    assert_int_equal(s->train.optimizer, ENG_OPT_ADAMW);
    assert_true(s->train.beta1 == 0.8f && s->train.beta2 == 0.99f && s->train.eps == 1.0e-6f);
    assert_true(s->train.lr == 3.0e-4f && s->train.weight_decay == 0.05f);

    const eng_model_desc *m = &s->model;
    assert_int_equal(m->template_kind, ENG_TEMPLATE_SEQUENTIAL);
    assert_int_equal(m->n_layers, 12);
    const eng_layer_desc *l = m->layers;
    assert_int_equal(l[0].kind, ENG_LAYER_CONV2D);
    assert_int_equal(l[0].out, 4);
    assert_int_equal(l[0].kernel, 3);
    assert_int_equal(l[0].stride, 1);
    assert_int_equal(l[0].padding, 1);
    assert_false(l[0].bias);
    assert_int_equal(l[1].kind, ENG_LAYER_BATCHNORM);
    assert_false(l[1].affine);
    assert_int_equal(l[2].kind, ENG_LAYER_LEAKY_RELU);
    assert_true(l[2].slope == 0.2f);
    assert_int_equal(l[3].kind, ENG_LAYER_RESIDUAL);
    assert_int_equal(l[3].n_layers, 4);
    const eng_layer_desc *r = l[3].layers;
    assert_int_equal(r[0].kind, ENG_LAYER_CONV2D);
    assert_int_equal(r[0].stride, 1);  /* default */
    assert_true(r[0].bias);            /* default */
    assert_int_equal(r[1].kind, ENG_LAYER_LAYERNORM);
    assert_false(r[1].affine);
    assert_int_equal(r[1].dims, 2);
    assert_int_equal(r[2].kind, ENG_LAYER_GELU);
    assert_int_equal(r[3].kind, ENG_LAYER_RESIDUAL);
    assert_int_equal(r[3].n_layers, 2);
    assert_int_equal(r[3].layers[0].kind, ENG_LAYER_TANH);
    assert_int_equal(r[3].layers[1].kind, ENG_LAYER_DROPOUT);
    assert_true(r[3].layers[1].p == 0.25f);
    assert_int_equal(l[4].kind, ENG_LAYER_MAXPOOL);
    assert_int_equal(l[4].kernel, 2);
    assert_int_equal(l[4].stride, 2); /* PyTorch: the kernel size */
    assert_int_equal(l[4].padding, 0);
    assert_int_equal(l[5].kind, ENG_LAYER_AVGPOOL);
    assert_int_equal(l[5].stride, 1);
    assert_int_equal(l[5].padding, 1);
    assert_int_equal(l[6].kind, ENG_LAYER_SIGMOID);
    assert_int_equal(l[7].kind, ENG_LAYER_GLOBAL_AVGPOOL);
    assert_int_equal(l[8].kind, ENG_LAYER_FLATTEN);
    assert_int_equal(l[9].kind, ENG_LAYER_LINEAR);
    assert_int_equal(l[9].out, 3);
    assert_false(l[9].bias);
    assert_int_equal(l[10].kind, ENG_LAYER_RELU);
    assert_int_equal(l[11].kind, ENG_LAYER_SOFTMAX);
    /* conv 2->4 (no bias) 72, residual conv 4->4 with bias 148, linear 4->3 (no bias) 12 */
    assert_int_equal(s->params, 72 + 148 + 12);
    spec_file_free(f);

    f = load("data: {dataset: mnist}\nmodel:\n  template: sequential\n  layers:\n"
             "    - flatten:\n    - dropout: {}\n    - layernorm: {}\n    - linear: {out: 10}\n");
    assert_diags(f, "");
    l = f->entries[0].spec->model.layers;
    assert_true(l[1].p == 0.5f);
    assert_true(l[2].affine);
    assert_int_equal(l[2].dims, 1);
    assert_true(l[3].bias);
    spec_file_free(f);
}

static void test_device_and_schedules(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        spec_device_kind dev;
        int index;
        eng_schedule_kind sched;
    } cases[] = {
        {"device: cpu", SPEC_DEVICE_CPU, -1, ENG_SCHED_CONSTANT},
        {"device: cuda", SPEC_DEVICE_CUDA, -1, ENG_SCHED_CONSTANT},
        {"device: cuda:12\ntrain: {schedule: cosine}", SPEC_DEVICE_CUDA, 12, ENG_SCHED_COSINE},
        {"device: auto\ntrain: {schedule: {name: constant}}", SPEC_DEVICE_AUTO, -1, ENG_SCHED_CONSTANT},
        {"train: {schedule: {name: step, step_epochs: 3}}", SPEC_DEVICE_AUTO, -1, ENG_SCHED_STEP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "%s%s\n", MLP, cases[i].yaml);
        spec_file *f = load(yaml);
        assert_diags(f, "");
        const spec *s = f->entries[0].spec;
        assert_int_equal(s->device, cases[i].dev);
        assert_int_equal(s->device_index, cases[i].index);
        assert_int_equal(s->train.schedule, cases[i].sched);
        if (cases[i].sched == ENG_SCHED_STEP) {
            assert_int_equal(s->train.step_epochs, 3);
            assert_true(s->train.gamma == 0.1f);
        }
        spec_file_free(f);
    }
}

/* ---- located errors ---- */

static void test_error_unknown_key(void **state)
{
    (void)state;
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\ntrian: {epochs: 1}\n",
                      "/t/t.yaml:3:1: trian: unknown key (did you mean 'train'?)\n");
    assert_yaml_diags("data:\n  dataset: mnist\n  batchsize: 5\nmodel: {template: mlp, units: [10]}\n",
                      "/t/t.yaml:3:3: data.batchsize: unknown key (did you mean 'batch_size'?)\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\ntrain: {lr: 0.1, foo: 1}\n",
                      "/t/t.yaml:3:9: train.lr: unknown key here (lr belongs under train.optimizer:)\n"
                      "/t/t.yaml:3:18: train.foo: unknown key\n");
    assert_yaml_diags("epochs: 3\ndata: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n",
                      "/t/t.yaml:1:1: epochs: unknown key here (epochs belongs under train:)\n");
    /* a key of another template says which */
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: cnn, channels: [8], units: [10], block: big}\n",
                      "/t/t.yaml:2:39: model.units: not a key of template cnn (it belongs to mlp)\n"
                      "/t/t.yaml:2:52: model.block: not a key of template cnn (it belongs to resnet)\n");
}

static void test_error_wrong_type(void **state)
{
    (void)state;
    assert_yaml_diags("data:\n  dataset: mnist\n  batch_size: \"64\"\nmodel: {template: mlp, units: [10]}\n",
                      "/t/t.yaml:3:15: data.batch_size: expected an integer in [1, 1048576], found the string "
                      "\"64\"\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\ntrain: {epochs: 2.5}\n",
                      "/t/t.yaml:3:17: train.epochs: expected an integer in [1, 1000000], found 2.5 (not a whole "
                      "number)\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\ntrain: {optimizer: [adam]}\n",
                      "/t/t.yaml:3:20: train.optimizer: expected a map {name: adam, lr: 1.0e-3, ...}, found a "
                      "list\n");
    assert_yaml_diags("data: [mnist]\nmodel: {template: mlp, units: 10}\n",
                      "/t/t.yaml:1:7: data: expected a map (dataset, root, batch_size, ...), found a list\n"
                      "/t/t.yaml:2:31: model.units: expected a list of layer widths (the last is the class count), "
                      "found 10\n");
    assert_yaml_diags("data: {dataset: mnist, shuffle: 1}\nmodel: {template: mlp, units: [10]}\n",
                      "/t/t.yaml:1:33: data.shuffle: expected true or false, found 1\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\ntrain: {grad_clip: ~}\n",
                      "/t/t.yaml:3:20: train.grad_clip: expected a number >= 0, found nothing\n");
    assert_yaml_diags("- data\n- model\n",
                      "/t/t.yaml:1:1: expected a map of spec keys (data, model, train, ...), found a list\n");
}

static void test_error_out_of_range(void **state)
{
    (void)state;
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n"
                      "train:\n  optimizer: {lr: 0, betas: [0.9, 1.0], eps: -1, weight_decay: -0.1}\n",
                      "/t/t.yaml:4:19: train.optimizer.lr: expected a number > 0, found 0\n"
                      "/t/t.yaml:4:35: train.optimizer.betas[1]: expected a number in [0, 1), found 1.0\n"
                      "/t/t.yaml:4:46: train.optimizer.eps: expected a number > 0, found -1\n"
                      "/t/t.yaml:4:64: train.optimizer.weight_decay: expected a number >= 0, found -0.1\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel:\n  template: sequential\n  layers:\n"
                      "    - conv2d: {out: 8, kernel: 0}\n    - dropout: {p: 1}\n    - maxpool: {kernel: 2, padding: 2}\n",
                      "/t/t.yaml:5:32: model.layers[0].conv2d.kernel: expected an integer in [1, 1024], found 0\n"
                      "/t/t.yaml:6:20: model.layers[1].dropout.p: expected a number in [0, 1), found 1\n"
                      "/t/t.yaml:7:37: model.layers[2].maxpool.padding: expected at most half the kernel (1), "
                      "found 2\n");
    assert_yaml_diags("seed: -1\npriority: 1e3\ndata: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n"
                      "train: {top_k: 11}\n",
                      "/t/t.yaml:1:7: seed: expected an integer >= 0, found -1\n"
                      "/t/t.yaml:2:11: priority: expected an integer, found 1e3 (not a whole number)\n"
                      "/t/t.yaml:5:16: train.top_k: expected at most the class count (10), found 11\n");
}

/* Numbers are checked as the 32-bit floats they are used as (issue 10,
 * defect 8): lr 1e39 passed as a double and trained with lr = inf; std, eps
 * and gamma of 1e-46 passed and became 0 (run then failed with 65). */
static void test_error_float_range(void **state)
{
    (void)state;
    assert_yaml_diags("data:\n  dataset: mnist\n  normalize: {mean: [1e39], std: [1e-46]}\n"
                      "model:\n  template: sequential\n  layers:\n"
                      "    - flatten: {}\n    - dropout: {p: 0.99999999999}\n    - linear: {out: 10}\n"
                      "train:\n  optimizer: {lr: 1e39, betas: [0.9, 0.99999999999], eps: 1e-46}\n"
                      "  schedule: {name: step, step_epochs: 1, gamma: 1e-46}\n",
                      "/t/t.yaml:3:22: data.normalize.mean[0]: expected a number in [-1e+30, 1e+30], found 1e39\n"
                      "/t/t.yaml:3:35: data.normalize.std[0]: expected a number in (0, 1e+30], found 1e-46 (as the "
                      "32-bit float it is used as: 0)\n"
                      "/t/t.yaml:8:20: model.layers[1].dropout.p: expected a number in [0, 1), found 0.99999999999 "
                      "(as the 32-bit float it is used as: 1)\n"
                      "/t/t.yaml:11:19: train.optimizer.lr: expected a number > 0, found 1e39 (as the 32-bit float it "
                      "is used as: inf)\n"
                      "/t/t.yaml:11:38: train.optimizer.betas[1]: expected a number in [0, 1), found 0.99999999999 "
                      "(as the 32-bit float it is used as: 1)\n"
                      "/t/t.yaml:11:59: train.optimizer.eps: expected a number > 0, found 1e-46 (as the 32-bit float "
                      "it is used as: 0)\n"
                      "/t/t.yaml:12:49: train.schedule.gamma: expected a number in (0, 1], found 1e-46 (as the 32-bit "
                      "float it is used as: 0)\n");
    /* at the edges of the float range: still fine */
    spec_file *f = load("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n"
                        "train: {optimizer: {lr: 3.0e38, eps: 1.0e-45}, grad_clip: 3.4e38}\n");
    assert_diags(f, "");
    assert_true(f->entries[0].spec->train.lr == 3.0e38f);
    assert_true(f->entries[0].spec->train.eps > 0.0f);
    spec_file_free(f);
}

static void test_error_missing_and_enum(void **state)
{
    (void)state;
    assert_yaml_diags("data:\n  batch_size: 5\n",
                      "/t/t.yaml:1:1: model: missing required key (the model: model: {template: ..., ...})\n"
                      "/t/t.yaml:2:3: data.dataset: missing required key (cifar10, cifar100, mnist, fashion_mnist, "
                      "synthetic, folder or npy)\n");
    assert_yaml_diags("data: {dataset: cifar}\nmodel: {units: [10]}\n",
                      "/t/t.yaml:1:17: data.dataset: expected cifar10, cifar100, mnist, fashion_mnist, "
                      "synthetic, folder or npy, found cifar (did you mean 'cifar10'?)\n"
                      "/t/t.yaml:2:8: model.template: missing required key (mlp, cnn, resnet, mlp_mixer or "
                      "sequential)\n");
    assert_yaml_diags("data: {dataset: cifar10}\nmodel: {template: mlp}\n",
                      "/t/t.yaml:1:7: data.root: missing required key for cifar10 (the directory with "
                      "data_batch_1.bin ... test_batch.bin)\n"
                      "/t/t.yaml:2:8: model.units: missing required key of layer widths (the last is the class "
                      "count)\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: cnn, channels: [8, q], activation: swish, "
                      "head: sigmoid}\n",
                      "/t/t.yaml:2:38: model.channels[1]: expected a channel count >= 1 or p (pooling), found q\n"
                      "/t/t.yaml:2:54: model.activation: expected none, relu, leaky_relu, gelu, sigmoid or tanh, "
                      "found swish\n"
                      "/t/t.yaml:2:67: model.head: expected logits or softmax, found sigmoid\n");
    assert_yaml_diags("device: gpu\ndata: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n"
                      "train: {loss: mse, precision: fp16, schedule: step}\n",
                      "/t/t.yaml:1:9: device: expected auto, cpu, cuda or cuda:N, found gpu\n"
                      "/t/t.yaml:4:15: train.loss: expected cross_entropy, found mse\n"
                      "/t/t.yaml:4:31: train.precision: expected fp32, tf32 or bf16, found fp16\n"
                      "/t/t.yaml:4:47: train.schedule: step needs its settings: {name: step, step_epochs: N, "
                      "gamma: G}\n");
}

static void test_error_cross_key(void **state)
{
    (void)state;
    assert_yaml_diags("device: cpu\ndata: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n"
                      "train:\n  precision: tf32\n",
                      "/t/t.yaml:5:14: train.precision: tf32 needs a GPU, but device is cpu\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n"
                      "train:\n  optimizer: {name: sgd, betas: [0.9, 0.99], nesterov: true}\n",
                      "/t/t.yaml:4:26: train.optimizer.betas: only for adam and adamw, not sgd\n"
                      "/t/t.yaml:4:56: train.optimizer.nesterov: needs momentum > 0 (as torch.optim.SGD)\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n"
                      "train:\n  optimizer: {momentum: 0.9}\n  schedule: {name: cosine, gamma: 0.5, min_lr: 0.01}\n",
                      "/t/t.yaml:4:15: train.optimizer.momentum: only for sgd, not adam\n"
                      "/t/t.yaml:5:28: train.schedule.gamma: only for the step schedule\n"
                      "/t/t.yaml:5:48: train.schedule.min_lr: expected a number below the learning rate (0.001), "
                      "found 0.01\n");
    assert_yaml_diags("data:\n  dataset: cifar10\n  root: /c\n  normalize: {mean: [0.5, 0.5], std: [0.5]}\n"
                      "  synthetic: {classes: 3}\nmodel: {template: mlp, units: [10]}\n",
                      "/t/t.yaml:4:38: data.normalize.std: expected as many numbers as mean (2), found 1\n"
                      "/t/t.yaml:5:3: data.synthetic: only for dataset synthetic, not cifar10\n");
    assert_yaml_diags("data:\n  dataset: cifar10\n  root: /c\n  normalize: {mean: [0.5, 0.5], std: [0.5, 0.5]}\n"
                      "model: {template: mlp, units: [10]}\n",
                      "/t/t.yaml:4:21: data.normalize.mean: expected 1 or 3 numbers (one per channel), found 2\n");
    assert_yaml_diags("data:\n  dataset: synthetic\n  root: /x\n  synthetic: {shape: [5], classes: 2}\n"
                      "  augment: {hflip: true}\nmodel: {template: mlp, units: [2]}\n",
                      "/t/t.yaml:3:3: data.root: not used by dataset synthetic (it has no files)\n"
                      "/t/t.yaml:5:12: data.augment: crop and flip need images (channels, height, width)\n");
    assert_yaml_diags("data:\n  dataset: synthetic\n  synthetic: {shape: [5], classes: 2}\n"
                      "  augment: {hflip: true}\nmodel: {template: mlp, units: [2]}\n",
                      "/t/t.yaml:4:12: data.augment: crop and flip need images (channels, height, width)\n");
}

static void test_error_duplicate_key(void **state)
{
    (void)state;
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\ndata: {dataset: cifar10}\n",
                      "/t/t.yaml:3:1: data: duplicate key (first given at line 1, column 1)\n");
    assert_yaml_diags("data: {dataset: mnist, batch_size: 5, batch_size: 6}\nmodel: {template: mlp, units: [10]}\n",
                      "/t/t.yaml:1:39: data.batch_size: duplicate key (first given at line 1, column 24)\n");
}

static void test_error_yaml_syntax(void **state)
{
    (void)state;
    assert_yaml_diags("data: {dataset: mnist\nmodel: {template: mlp}\n",
                      "/t/t.yaml:2:6: data: not valid YAML: did not find expected ',' or '}' (while parsing a flow "
                      "mapping at line 1, column 7)\n");
    assert_yaml_diags("data:\n  dataset: mnist\n batch_size: 5\n",
                      "/t/t.yaml:3:2: not valid YAML: did not find expected key (while parsing a block mapping at "
                      "line 1, column 1)\n");
    assert_yaml_diags("data:\n\tdataset: mnist\n",
                      "/t/t.yaml:2:1: data: not valid YAML: found character that cannot start any token (while scanning "
                      "for the next token at line 2, column 1)\n");
    assert_yaml_diags("a: 1\n---\nb: 2\n", "/t/t.yaml:2:1: a spec is one YAML document, found a second one ('---')\n");
    assert_yaml_diags("data: !!map {dataset: mnist}\n",
                      "/t/t.yaml:1:7: data: YAML tags are not supported, found 'tag:yaml.org,2002:map'\n");
    assert_yaml_diags("name: \"a\\0b\"\n", "/t/t.yaml:1:7: name: NUL characters are not allowed in values\n");
    assert_yaml_diags("name: a\xff\n", "/t/t.yaml:1:8: not valid YAML: invalid leading UTF-8 octet\n");
    assert_yaml_diags("data: *nowhere\n", "/t/t.yaml:1:7: data: undefined alias '*nowhere'\n");
    assert_yaml_diags("", "/t/t.yaml: the file is empty (a spec needs at least data: and model:)\n");
    assert_yaml_diags("# only a comment\n", "/t/t.yaml: the file is empty (a spec needs at least data: and model:)\n");
}

static void test_error_layers(void **state)
{
    (void)state;
    assert_yaml_diags("data: {dataset: mnist}\nmodel:\n  template: sequential\n  layers:\n"
                      "    - flatten: {}\n    - conv3d: {out: 3}\n    - {relu: {}, gelu: {}}\n    - linear\n"
                      "    - residual: {layers: [{dense: {}}]}\n    - linear: {out: 10, kernel: 3}\n"
                      "    - relu: {slope: 1}\n",
                      "/t/t.yaml:6:7: model.layers[1]: unknown layer type 'conv3d' (did you mean 'conv2d'?)\n"
                      "/t/t.yaml:7:7: model.layers[2]: expected one layer as a map with one key, like {conv2d: {out: "
                      "32, kernel: 3}} or {relu: {}}, found a map with several keys (each layer is its own list "
                      "entry: '- relu: {}')\n"
                      "/t/t.yaml:8:7: model.layers[3]: expected one layer as a map with one key, like {conv2d: {out: "
                      "32, kernel: 3}} or {relu: {}}, found linear\n"
                      "/t/t.yaml:9:28: model.layers[4].residual.layers[0]: unknown layer type 'dense' (expected one "
                      "of conv2d, linear, batchnorm, layernorm, maxpool, avgpool, global_avgpool, flatten, dropout, "
                      "relu, leaky_relu, gelu, sigmoid, tanh, softmax, residual, transpose, mean, patches, reshape, "
                      "pad_channels, mixer)\n"
                      "/t/t.yaml:10:25: model.layers[5].linear.kernel: unknown key\n"
                      "/t/t.yaml:11:14: model.layers[6].relu.slope: unknown key\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel: {template: sequential, layers: [{conv2d: }, {linear: {}}]}\n",
                      "/t/t.yaml:2:49: model.layers[0].conv2d: expected a map of conv2d settings, found nothing\n"
                      "/t/t.yaml:2:61: model.layers[1].linear.out: missing required key (the number of output "
                      "features or channels)\n");
}

/* Consistency problems the engine finds, located at the key they concern. */
static void test_error_engine_consistency(void **state)
{
    (void)state;
    assert_yaml_diags("data: {dataset: mnist}\nmodel:\n  template: mlp\n  units: [256, 128, 100]\n",
                      "/t/t.yaml:4:21: model.units[2]: expected the last entry to be the output size 10 (the "
                      "dataset's class count), found 100\n");
    assert_yaml_diags("data: {dataset: cifar10, root: /c}\nmodel:\n  template: mlp_mixer\n  patch_size: 5\n",
                      "/t/t.yaml:4:15: model.patch_size: expected a divisor of the 32x32 input, found 5\n");
    /* a default that does not fit is located at the section that left it out */
    assert_yaml_diags("data: {dataset: synthetic, synthetic: {shape: [3, 30, 30]}}\nmodel:\n  template: mlp_mixer\n"
                      "  hidden: 64\n",
                      "/t/t.yaml:3:3: model.patch_size: expected a divisor of the 30x30 input, found 4\n");
    spec_file *f = load("data: {dataset: mnist}\nmodel: {template: cnn, channels: [8, p, p, p, p]}\n");
    char *d = all_diags(f);
    /* 28 -> 13 -> 6 -> 2 -> 0 with the seed's pool (3, stride 2): the fourth p */
    assert_non_null(strstr(d, "/t/t.yaml:2:47: model.channels[4]: "));
    assert_non_null(strstr(d, "1x1"));
    free(d);
    spec_file_free(f);
    assert_yaml_diags("data: {dataset: mnist}\nmodel:\n  template: sequential\n  layers:\n"
                      "    - flatten: {}\n    - conv2d: {out: 4, kernel: 3}\n    - linear: {out: 10}\n",
                      "/t/t.yaml:6:7: model.layers[1]: expected image input [C, H, W] for conv2d, found [784]\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel:\n  template: sequential\n  layers:\n"
                      "    - residual:\n        layers:\n          - conv2d: {out: 4, kernel: 3, padding: 1}\n"
                      "    - flatten: {}\n    - linear: {out: 10}\n",
                      "/t/t.yaml:7:11: model.layers[0].residual.layers: expected the residual's layers to keep the "
                      "shape [1, 28, 28], found [4, 28, 28]\n");
    assert_yaml_diags("data: {dataset: mnist}\nmodel:\n  template: sequential\n  layers: [{flatten: {}}]\n",
                      "/t/t.yaml:4:11: model.layers: expected the model's output to be [10] (the dataset's class "
                      "count), found [784]\n");
}

static void test_limits_params_memory(void **state)
{
    (void)state;
    spec_options o = test_opts();
    o.max_params = 7839;
    spec_file *f = load_opts(MLP, &o);
    assert_diags(f, "/t/t.yaml:2:8: model: the model has 7840 parameters, more than the limit of 7839\n");
    spec_file_free(f);
    o = test_opts();
    o.max_memory_bytes = 1 << 20;
    f = load_opts("data: {dataset: fashion_mnist, batch_size: 4096}\nmodel: {template: mlp, units: [10]}\n", &o);
    char *d = all_diags(f);
    assert_non_null(strstr(d, "/t/t.yaml:1:44: data.batch_size: the model needs about "));
    assert_non_null(strstr(d, " at batch size 4096, more than the limit of 1.0 MiB\n"));
    free(d);
    spec_file_free(f);
}

static void test_five_mistakes(void **state)
{
    (void)state;
    spec_options o = test_opts();
    spec_file *f = NULL;
    assert_int_equal(spec_file_load(fixture("five_mistakes.yaml"), &o, &f), 0);
    char expect[4096];
    const char *p = fixture("five_mistakes.yaml");
    snprintf(expect, sizeof expect,
             "%s:4:1: datta: unknown key (did you mean 'data'?)\n"
             "%s:7:15: data.batch_size: expected an integer in [1, 1048576], found -5\n"
             "%s:10:21: model.units[2]: expected the last entry to be the output size 10 (the dataset's class "
             "count), found 100\n"
             "%s:13:21: train.optimizer.name: expected adam, adamw or sgd, found adamm (did you mean 'adam'?)\n"
             "%s:14:14: train.keep_best: expected true or false, found yes (YAML 1.1 booleans are not accepted)\n",
             p, p, p, p, p);
    assert_diags(f, expect);
    assert_false(spec_file_valid(f));
    assert_null(f->entries[0].spec);
    assert_string_equal(f->entries[0].name, "five_mistakes");
    /* joined as the runs table's error column */
    char *j = spec_diags_join(&f->entries[0].diags);
    assert_string_equal(j, expect);
    free(j);
    spec_file_free(f);
}

/* ---- files and data roots ---- */

static char tmpdir[256];

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* Small but valid IDX files: 2 train and 2 test images of 28x28. */
static void write_idx(const char *dir)
{
    static const char *const img[] = {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"};
    static const char *const lab[] = {"train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"};
    unsigned char ibuf[16 + 2 * 784] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
    unsigned char lbuf[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 7};
    char p[512];
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, img[i]);
        write_file(p, ibuf, sizeof ibuf);
        snprintf(p, sizeof p, "%s/%s", dir, lab[i]);
        write_file(p, lbuf, sizeof lbuf);
    }
}

static int setup_tmp(void **state)
{
    (void)state;
    return test_tmpdir_make(tmpdir, sizeof tmpdir, "test_schema");
}

static int teardown_tmp(void **state)
{
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

static spec_file *load_file_check(const char *name, const char *yaml, const char *const *roots, int nroots)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    write_file(path, yaml, strlen(yaml));
    spec_options o;
    spec_options_default(&o);
    o.data_roots = roots;
    o.n_data_roots = nroots;
    spec_file *f = NULL;
    assert_int_equal(spec_file_load(path, &o, &f), 0);
    return f;
}

static void test_data_root_checks(void **state)
{
    (void)state;
    char dir[512], yaml[1024], expect[2048];
    /* missing directory, located at data.root */
    spec_file *f = load_file_check("a.yaml", "data:\n  dataset: cifar10\n  root: nothere\nmodel: {template: mlp, "
                                             "units: [10]}\n",
                                   NULL, 0);
    snprintf(expect, sizeof expect,
             "%s/a.yaml:3:9: data.root: %s/nothere does not exist (expected the CIFAR-10 binary batches: "
             "data_batch_1.bin ... data_batch_5.bin, test_batch.bin)\n",
             tmpdir, tmpdir);
    assert_diags(f, expect);
    spec_file_free(f);
    /* a file, not a directory */
    f = load_file_check("b.yaml", "data: {dataset: cifar100, root: a.yaml}\nmodel: {template: mlp, units: [100]}\n",
                        NULL, 0);
    snprintf(expect, sizeof expect,
             "%s/b.yaml:1:33: data.root: %s/a.yaml is not a directory (expected the CIFAR-100 binary files: "
             "train.bin, test.bin)\n",
             tmpdir, tmpdir);
    assert_diags(f, expect);
    spec_file_free(f);
    /* an empty directory: the engine's probe names the missing file */
    snprintf(dir, sizeof dir, "%s/fm", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    f = load_file_check("c.yaml", "data: {dataset: fashion_mnist, root: fm}\nmodel: {template: mlp, units: [10]}\n",
                        NULL, 0);
    char *d = all_diags(f);
    snprintf(expect, sizeof expect, "%s/c.yaml:1:38: data.root: %s/fm: missing train-images-idx3-ubyte", tmpdir,
             tmpdir);
    assert_non_null(strstr(d, expect));
    assert_int_equal(f->entries[0].diags.n, 1);
    free(d);
    spec_file_free(f);
    /* with the files there it is valid; under the configured roots too */
    write_idx(dir);
    const char *roots_ok[] = {"/nonexistent", tmpdir};
    f = load_file_check("c.yaml", "data: {dataset: fashion_mnist, root: fm}\nmodel: {template: mlp, units: [10]}\n",
                        roots_ok, 2);
    assert_diags(f, "");
    assert_true(spec_file_valid(f));
    spec_file_free(f);
    /* outside the roots (also through ..) */
    const char *roots_bad[] = {"/usr/share"};
    snprintf(yaml, sizeof yaml, "data: {dataset: fashion_mnist, root: ../%s/fm}\nmodel: {template: mlp, "
                                "units: [10]}\n", tmpdir + 5);
    f = load_file_check("d.yaml", yaml, roots_bad, 1);
    snprintf(expect, sizeof expect,
             "%s/d.yaml:1:38: data.root: %s/..%s/fm is not under the configured data roots (/usr/share)\n", tmpdir,
             tmpdir, tmpdir + 4);
    assert_diags(f, expect);
    spec_file_free(f);
    const char *roots_sub[] = {dir};
    f = load_file_check("e.yaml", "data: {dataset: fashion_mnist, root: fm/../fm/.}\nmodel: {template: mlp, units: "
                                  "[10], init_from: w.safetensors}\n",
                        roots_sub, 1);
    snprintf(expect, sizeof expect,
             "%s/e.yaml:2:48: model.init_from: %s/w.safetensors is not under the configured data roots (%s)\n",
             tmpdir, tmpdir, dir);
    assert_diags(f, expect);
    spec_file_free(f);
    /* init_from must exist */
    f = load_file_check("f.yaml", "data: {dataset: fashion_mnist, root: fm}\nmodel: {template: mlp, units: [10], "
                                  "init_from: fm/w.safetensors}\n",
                        NULL, 0);
    snprintf(expect, sizeof expect,
             "%s/f.yaml:2:48: model.init_from: %s/fm/w.safetensors does not exist (expected a safetensors file)\n",
             tmpdir, tmpdir);
    assert_diags(f, expect);
    spec_file_free(f);
    /* a file that cannot be read at all, and one that does not exist */
    spec_options o;
    spec_options_default(&o);
    assert_int_equal(spec_file_load(tmpdir, &o, &f), 0);
    snprintf(expect, sizeof expect, "%s: not a regular file (a directory)\n", tmpdir);
    assert_diags(f, expect);
    spec_file_free(f);
    /* a FIFO does not block the load */
    snprintf(dir, sizeof dir, "%s/fifo.yaml", tmpdir);
    assert_int_equal(mkfifo(dir, 0644), 0);
    assert_int_equal(spec_file_load(dir, &o, &f), 0);
    snprintf(expect, sizeof expect, "%s: not a regular file (a FIFO)\n", dir);
    assert_diags(f, expect);
    spec_file_free(f);
    unlink(dir);
    snprintf(dir, sizeof dir, "%s/none.yaml", tmpdir);
    assert_int_equal(spec_file_load(dir, &o, &f), 0);
    snprintf(expect, sizeof expect, "%s: cannot read the file: No such file or directory\n", dir);
    assert_diags(f, expect);
    spec_file_free(f);
}

/* init_from and the dataset's files naming a FIFO, a device or a directory
 * (issue 10, defect 2): each one located problem, nothing blocks, and a file
 * reported as not a file is not opened for the weights check after it (that
 * open would block on the FIFO: the alarm in main fails the test). */
static void test_files_not_regular(void **state)
{
    (void)state;
    char fifo[512], expect[2048];
    snprintf(fifo, sizeof fifo, "%s/w.fifo", tmpdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    spec_file *f = load_file_check("g.yaml", "data: {dataset: synthetic}\nmodel: {template: mlp, units: [10], "
                                             "init_from: w.fifo}\n",
                                   NULL, 0);
    snprintf(expect, sizeof expect,
             "%s/g.yaml:2:48: model.init_from: %s/w.fifo is a FIFO, not a regular file (expected a safetensors "
             "file)\n",
             tmpdir, tmpdir);
    assert_diags(f, expect);
    spec_file_free(f);
    f = load_file_check("h.yaml", "data: {dataset: synthetic}\nmodel: {template: mlp, units: [10], "
                                  "init_from: /dev/zero}\n",
                        NULL, 0);
    snprintf(expect, sizeof expect,
             "%s/h.yaml:2:48: model.init_from: /dev/zero is a character device, not a regular file (expected a "
             "safetensors file)\n",
             tmpdir);
    assert_diags(f, expect);
    spec_file_free(f);
    f = load_file_check("i.yaml", "data: {dataset: synthetic}\nmodel: {template: mlp, units: [10], "
                                  "init_from: /tmp}\n",
                        NULL, 0);
    char *all = all_diags(f);
    assert_non_null(strstr(all, "model.init_from: /tmp is a directory, not a regular file"));
    free(all);
    spec_file_free(f);
    /* a FIFO among an MNIST folder's files */
    char d[512], p[600];
    snprintf(d, sizeof d, "%s/fifo_mnist", tmpdir);
    assert_int_equal(mkdir(d, 0755), 0);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", d);
    assert_int_equal(mkfifo(p, 0600), 0);
    f = load_file_check("j.yaml", "data: {dataset: mnist, root: fifo_mnist}\nmodel: {template: mlp, units: [10]}\n",
                        NULL, 0);
    snprintf(expect, sizeof expect,
             "%s/j.yaml:1:30: data.root: %s/fifo_mnist/train-images-idx3-ubyte: not a regular file (a FIFO)\n",
             tmpdir, tmpdir);
    assert_diags(f, expect);
    spec_file_free(f);
    unlink(p);
    rmdir(d);
    unlink(fifo);
}

/* Every path a spec names is confined to the data roots after links are
 * resolved, before anything there is opened (issue 10, defect 3): a file
 * outside the roots is never read, so none of its bytes reach a message
 * (init_from outside the roots used to be parsed anyway: "header length
 * 8386658464824226675" was its first 8 bytes); a link inside the roots is
 * judged by where it leads, and what is stored is the resolved path. */
static void test_paths_confined(void **state)
{
    (void)state;
    char inside[512], outside[512], p[600], q[600], expect[2048], yaml[1024];
    snprintf(inside, sizeof inside, "%s/roots", tmpdir);
    snprintf(outside, sizeof outside, "%s/outside", tmpdir);
    assert_int_equal(mkdir(inside, 0755), 0);
    assert_int_equal(mkdir(outside, 0755), 0);
    snprintf(p, sizeof p, "%s/secret", outside);
    write_file(p, "secretsX-and-more", 17);
    const char *roots[] = {inside};

    /* outside the roots: one problem, and the file is not read */
    spec_file *f = load_file_check("k.yaml", "data: {dataset: synthetic}\nmodel: {template: mlp, units: [10], "
                                             "init_from: outside/secret}\n",
                                   roots, 1);
    snprintf(expect, sizeof expect,
             "%s/k.yaml:2:48: model.init_from: %s/outside/secret is not under the configured data roots (%s)\n",
             tmpdir, tmpdir, inside);
    assert_diags(f, expect);
    spec_file_free(f);

    /* a link inside the roots that leads out: refused, shown as written */
    snprintf(q, sizeof q, "%s/w.safetensors", inside);
    assert_int_equal(symlink(p, q), 0);
    f = load_file_check("l.yaml", "data: {dataset: synthetic}\nmodel: {template: mlp, units: [10], "
                                  "init_from: roots/w.safetensors}\n",
                        roots, 1);
    snprintf(expect, sizeof expect,
             "%s/l.yaml:2:48: model.init_from: %s/roots/w.safetensors is not under the configured data roots (%s)\n",
             tmpdir, tmpdir, inside);
    assert_diags(f, expect);
    spec_file_free(f);

    /* a dataset folder inside the roots whose files are links out of them:
     * refused without being opened (IDX errors would show the magic number,
     * CIFAR errors a label byte) */
    char d[600];
    snprintf(d, sizeof d, "%s/mnist", inside);
    assert_int_equal(mkdir(d, 0755), 0);
    static const char *const names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        snprintf(q, sizeof q, "%s/%s", d, names[i]);
        assert_int_equal(symlink(p, q), 0);
    }
    f = load_file_check("m.yaml", "data: {dataset: mnist, root: roots/mnist}\nmodel: {template: mlp, units: [10]}\n",
                        roots, 1);
    snprintf(expect, sizeof expect,
             "%s/m.yaml:1:30: data.root: %s/roots/mnist/train-images-idx3-ubyte: not a regular file (a symbolic "
             "link)\n",
             tmpdir, tmpdir);
    assert_diags(f, expect);
    char *all = all_diags(f);
    assert_null(strstr(all, "secret"));
    assert_null(strstr(all, "0x73656372")); /* "secr" as the IDX magic number */
    free(all);
    spec_file_free(f);

    /* a link inside the roots to a folder inside them: fine, and the
     * resolved path is what the engine will open */
    char real[600];
    snprintf(real, sizeof real, "%s/real_mnist", inside);
    assert_int_equal(mkdir(real, 0755), 0);
    write_idx(real);
    snprintf(q, sizeof q, "%s/linked", inside);
    assert_int_equal(symlink(real, q), 0);
    snprintf(yaml, sizeof yaml, "data: {dataset: mnist, root: %s}\nmodel: {template: mlp, units: [10]}\n", q);
    f = load_file_check("n.yaml", yaml, roots, 1);
    assert_diags(f, "");
    assert_string_equal(f->entries[0].spec->data.root, real);
    spec_file_free(f);
}

/* ---- limits ---- */

/* This process's CPU time: the limits below must stop work that would
 * otherwise take hours (10^9 alias nodes, 200000 levels), and CPU time does
 * not grow when other processes load the machine, as wall time does. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_limit_file_size(void **state)
{
    (void)state;
    size_t n = (2u << 20) + 5;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '#', n);
    big[n] = '\0';
    char path[512], expect[512];
    snprintf(path, sizeof path, "%s/big.yaml", tmpdir);
    write_file(path, big, n);
    spec_options o = test_opts();
    spec_file *f = NULL;
    double t0 = now();
    assert_int_equal(spec_file_load(path, &o, &f), 0);
    snprintf(expect, sizeof expect, "%s: the file has %zu bytes, more than the limit of 1048576\n", path, n);
    assert_diags(f, expect);
    spec_file_free(f);
    assert_int_equal(spec_file_load_buffer("/t/t.yaml", big, n, &o, &f), 0);
    assert_diags(f, "/t/t.yaml: the file has 2097157 bytes, more than the limit of 1048576\n");
    spec_file_free(f);
    assert_true(now() - t0 < 5.0 * TEST_TIME_SCALE);
    free(big);
}

static void test_limit_nesting(void **state)
{
    (void)state;
    size_t n = 200000;
    char *deep = malloc(2 * n + 16);
    assert_non_null(deep);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    double t0 = now();
    spec_file *f = load(deep);
    assert_diags(f, "/t/t.yaml:1:33: [0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
                    "[0][0][0][0][0][0]: nested deeper than 32 levels (limit)\n");
    spec_file_free(f);
    /* block style too */
    char *p = deep;
    for (int i = 0; i < 40; i++)
        p += sprintf(p, "%*sk%d:\n", 2 * i, "", i);
    f = load(deep);
    char *d = all_diags(f);
    assert_non_null(strstr(d, "/t/t.yaml:32:63: k0.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11.k12.k13.k14.k15.k16.k17.k18."
                              "k19.k20.k21.k22.k23.k24.k25.k26.k27.k28.k29.k30: nested deeper than 32 levels"));
    free(d);
    spec_file_free(f);
    assert_true(now() - t0 < 5.0 * TEST_TIME_SCALE);
    free(deep);
}

static void test_limit_alias_bomb(void **state)
{
    (void)state;
    /* "billion laughs": 9 levels of 10 aliases each would be 10^9 nodes */
    char yaml[4096], *p = yaml;
    p += sprintf(p, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++)
        p += sprintf(p, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i - 1,
                     i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    double t0 = now();
    spec_file *f = load(yaml);
    /* a4 is 111111 nodes: the document passes 100000 at the eighth alias of a3 (11111 nodes each) in a4 */
    assert_diags(f, "/t/t.yaml:5:45: a4[7]: the document has more than 100000 nodes once aliases are expanded "
                    "(limit)\n");
    spec_file_free(f);
    assert_true(now() - t0 < 5.0 * TEST_TIME_SCALE);
    /* aliases are fine within the limit, and expand to copies */
    f = load("base: &b {dataset: mnist}\ndata: *b\nmodel: {template: mlp, units: [10]}\n");
    assert_diags(f, "/t/t.yaml:1:1: base: unknown key\n");
    spec_file_free(f);
    f = load("data: &d {dataset: mnist, batch_size: &n 64, eval_batch_size: *n}\nmodel: {template: mlp, units: "
             "[10]}\n");
    assert_diags(f, "");
    assert_int_equal(f->entries[0].spec->data.eval_batch_size, 64);
    spec_file_free(f);
    /* a node cannot contain itself */
    assert_yaml_diags("data: &d {dataset: mnist, x: *d}\n", "/t/t.yaml:1:30: data.x: undefined alias '*d'\n");
    /* deep through aliases */
    p = yaml;
    p += sprintf(p, "l0: &l0 [1]\n");
    for (int i = 1; i < 40; i++)
        p += sprintf(p, "l%d: &l%d [*l%d]\n", i, i, i - 1);
    f = load(yaml);
    char *d = all_diags(f);
    assert_non_null(strstr(d, ": nested deeper than 32 levels once aliases are expanded (limit)\n"));
    free(d);
    spec_file_free(f);
}

static void test_limit_diags(void **state)
{
    (void)state;
    char *yaml = malloc(1 << 20), *p = yaml;
    assert_non_null(yaml);
    p += sprintf(p, "data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n");
    for (int i = 0; i < 20000; i++)
        p += sprintf(p, "k%d: 1\n", i);
    double t0 = now();
    spec_file *f = load(yaml);
    assert_int_equal(f->entries[0].diags.n, 101);
    assert_string_equal(f->entries[0].diags.v[100].message, "19900 more problems not shown (limit 100)");
    spec_file_free(f);
    /* many duplicate keys are found fast */
    p = yaml;
    p += sprintf(p, "data: {dataset: mnist}\nmodel: {template: mlp, units: [10]}\n");
    for (int i = 0; i < 20000; i++)
        p += sprintf(p, "k: %d\n", i);
    f = load(yaml);
    assert_int_equal(f->entries[0].diags.n, 101);
    assert_string_equal(f->entries[0].diags.v[99].message, "duplicate key (first given at line 3, column 1)");
    assert_string_equal(f->entries[0].diags.v[100].message, "19900 more problems not shown (limit 100)");
    spec_file_free(f);
    assert_true(now() - t0 < 5.0 * TEST_TIME_SCALE);
    free(yaml);
}

/* Every allocation failing in turn: either the load reports SPEC_ENOMEM or it
 * succeeds, and nothing leaks (ASan/valgrind watch that). */
static void test_fault_injection(void **state)
{
    (void)state;
    const char *files[] = {"full.yaml", "synthetic.yaml", "five_mistakes.yaml", "sweep.yaml"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        size_t len;
        char *text = read_text(fixture(files[k]), &len);
        spec_options o = test_opts();
        spec_file *ref = NULL;
        spec_alloc_fail_after(-1);
        assert_int_equal(spec_file_load_buffer(fixture(files[k]), text, len, &o, &ref), 0);
        long need = spec_alloc_fail_after(-1);
        assert_true(need > 10);
        char *want = all_diags(ref);
        int fails = 0;
        for (long n = 0; n <= need; n++) {
            spec_file *f = NULL;
            spec_alloc_fail_after(n);
            int rc = spec_file_load_buffer(fixture(files[k]), text, len, &o, &f);
            spec_alloc_fail_after(-1);
            if (rc == SPEC_ENOMEM) {
                assert_null(f);
                fails++;
                continue;
            }
            assert_int_equal(rc, 0);
            char *got = all_diags(f);
            assert_string_equal(got, want);
            assert_int_equal(f->n_entries, ref->n_entries);
            free(got);
            spec_file_free(f);
        }
        assert_int_equal(fails, need); /* every allocation matters: each failure is reported */
        free(want);
        spec_file_free(ref);
        free(text);
    }
}

int main(void)
{
    alarm(100); /* a validator that blocks on a FIFO fails instead of hanging */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_spec_every_key),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_name_from_file),
        cmocka_unit_test(test_template_mlp),
        cmocka_unit_test(test_seed_templates),
        cmocka_unit_test(test_template_sequential),
        cmocka_unit_test(test_device_and_schedules),
        cmocka_unit_test(test_error_unknown_key),
        cmocka_unit_test(test_error_wrong_type),
        cmocka_unit_test(test_error_out_of_range),
        cmocka_unit_test(test_error_float_range),
        cmocka_unit_test(test_error_missing_and_enum),
        cmocka_unit_test(test_error_cross_key),
        cmocka_unit_test(test_error_duplicate_key),
        cmocka_unit_test(test_error_yaml_syntax),
        cmocka_unit_test(test_error_layers),
        cmocka_unit_test(test_error_engine_consistency),
        cmocka_unit_test(test_limits_params_memory),
        cmocka_unit_test(test_five_mistakes),
        cmocka_unit_test(test_data_root_checks),
        cmocka_unit_test(test_files_not_regular),
        cmocka_unit_test(test_paths_confined),
        cmocka_unit_test(test_limit_file_size),
        cmocka_unit_test(test_limit_nesting),
        cmocka_unit_test(test_limit_alias_bomb),
        cmocka_unit_test(test_limit_diags),
        cmocka_unit_test(test_fault_injection),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
