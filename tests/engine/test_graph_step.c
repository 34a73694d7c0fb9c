/* The trainer's captured training step (CUDA graphs) on the CPU, behind the
 * recording backend of rec_backend.h: trained with capture and replay, a
 * model ends bit for bit where the same run op by op on the plain CPU
 * backend ends (epoch metrics, parameters, running statistics), the step is
 * captured once and replayed for every later full batch, partial batches and
 * evaluation run op by op, nothing that allocates or waits on the host
 * happens inside the captured step or between replays, and every reason not
 * to capture (dropout, EPOCHD_NO_GRAPHS, a failed capture) falls back to
 * the same numbers. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/error.h"
#include "engine/model.h"
#include "engine/train.h"
#include "rec_backend.h"

#define THREADS 2
#define MAX_EPOCHS 4

/* ---- settings ---- */

typedef struct setting {
    eng_data_desc data;
    eng_model_desc model;
    eng_train_desc train;
    int64_t units[2], channels[3];
    eng_layer_desc layers[6];
    int epochs;
} setting;

/* 1x8x8 synthetic images, 4 classes; 250 training samples in batches of 32:
 * 7 full batches and a partial one of 26. Warm-up over the first epoch, then
 * cosine, and clipping: the learning rate and the step change every step. */
static void base(setting *s)
{
    memset(s, 0, sizeof *s);
    eng_data_desc_default(&s->data);
    s->data.dataset = ENG_DATASET_SYNTHETIC;
    s->data.synth_shape = eng_shape3(1, 8, 8);
    s->data.synth_classes = 4;
    s->data.synth_train = 250;
    s->data.synth_test = 70;
    s->data.batch_size = 32;
    s->data.eval_batch_size = 24; /* evaluation ends with a partial batch too */
    s->data.drop_last = false;
    eng_model_desc_default(&s->model);
    eng_train_desc_default(&s->train);
    s->train.seed = 11;
    s->train.warmup_epochs = 1;
    s->train.schedule = ENG_SCHED_COSINE;
    s->train.min_lr = 1e-4f;
    s->train.grad_clip = 0.5f;
    s->epochs = 3;
    s->train.epochs = s->epochs;
}

/* MLP with batch norm and Adam. */
static void mlp_adam(setting *s)
{
    base(s);
    s->model.template_kind = ENG_TEMPLATE_MLP;
    s->units[0] = 32;
    s->units[1] = 4;
    s->model.units = s->units;
    s->model.n_units = 2;
    s->model.bias = true;
    s->model.batch_norm = true;
}

/* CNN on 2-channel images with crop and flip, SGD with Nesterov momentum and
 * weight decay, the last partial batch dropped. */
static void cnn_sgd(setting *s)
{
    base(s);
    s->data.synth_shape = eng_shape3(2, 8, 8);
    s->data.crop_padding = 1;
    s->data.hflip = true;
    s->data.drop_last = true;
    s->model.template_kind = ENG_TEMPLATE_CNN;
    s->channels[0] = 4;
    s->channels[1] = ENG_POOL_ENTRY;
    s->channels[2] = 6;
    s->model.channels = s->channels;
    s->model.n_channels = 3;
    s->train.optimizer = ENG_OPT_SGD;
    s->train.lr = 0.05f;
    s->train.momentum = 0.9f;
    s->train.nesterov = true;
    s->train.weight_decay = 1e-3f;
}

/* MLP-Mixer (patchify, layer norm, transposes, GELU) with AdamW. */
static void mixer_adamw(setting *s)
{
    base(s);
    s->model.template_kind = ENG_TEMPLATE_MLP_MIXER;
    s->model.patch_size = 4;
    s->model.hidden = 8;
    s->model.depth = 1;
    s->model.patching = ENG_PATCHING_PATCHES;
    s->train.optimizer = ENG_OPT_ADAMW;
    s->train.weight_decay = 0.05f;
    s->epochs = 2;
}

/* A sequential MLP with dropout. */
static void dropout_mlp(setting *s)
{
    base(s);
    s->model.template_kind = ENG_TEMPLATE_SEQUENTIAL;
    s->layers[0] = (eng_layer_desc){.kind = ENG_LAYER_FLATTEN};
    s->layers[1] = (eng_layer_desc){.kind = ENG_LAYER_LINEAR, .out = 16, .bias = true};
    s->layers[2] = (eng_layer_desc){.kind = ENG_LAYER_RELU};
    s->layers[3] = (eng_layer_desc){.kind = ENG_LAYER_DROPOUT, .p = 0.25f};
    s->layers[4] = (eng_layer_desc){.kind = ENG_LAYER_LINEAR, .out = 4, .bias = true};
    s->model.layers = s->layers;
    s->model.n_layers = 5;
    s->epochs = 2;
}

/* ---- one run and its results ---- */

typedef struct result {
    eng_epoch_stats st[MAX_EPOCHS];
    float *params, *buffers;
    int64_t np, nb, tracked;
    eng_graph_stats graph;
} result;

static void result_free(result *r)
{
    free(r->params);
    free(r->buffers);
}

static void snapshot(eng_trainer *t, eng_backend *b, result *r)
{
    eng_model *m = eng_trainer_model(t);
    r->np = eng_model_param_count(m);
    r->nb = eng_model_buffer_count(m);
    r->params = malloc((size_t)(r->np ? r->np : 1) * sizeof(float));
    r->buffers = malloc((size_t)(r->nb ? r->nb : 1) * sizeof(float));
    assert_non_null(r->params);
    assert_non_null(r->buffers);
    assert_int_equal(b->ops->download(b, r->params, eng_model_param_data(m), (size_t)r->np * sizeof(float)), 0);
    assert_int_equal(b->ops->download(b, r->buffers, eng_model_buffer_data(m), (size_t)r->nb * sizeof(float)), 0);
    r->tracked = eng_model_batches_tracked(m);
    eng_trainer_graph_stats(t, &r->graph);
}

static void train_on(const setting *s, eng_backend *b, const eng_train_hooks *hooks, result *r)
{
    memset(r, 0, sizeof *r);
    eng_trainer *t = NULL;
    int rc = eng_trainer_new(&s->data, &s->model, &s->train, b, &t);
    if (rc < 0)
        fail_msg("trainer: %s", eng_last_error());
    for (int e = 0; e < s->epochs; e++) {
        rc = eng_trainer_run_epoch(t, hooks, &r->st[e]);
        if (rc < 0)
            fail_msg("epoch %d: %s", e + 1, eng_last_error());
    }
    snapshot(t, b, r);
    eng_trainer_free(t);
}

/* The reference: op by op on the plain CPU backend. */
static void train_eager(const setting *s, result *r)
{
    eng_backend *b = NULL;
    assert_int_equal(eng_cpu_backend_new(THREADS, &b), 0);
    train_on(s, b, NULL, r);
    assert_false(r->graph.captured);
    assert_non_null(strstr(r->graph.off_reason, "cannot capture"));
    eng_backend_free(b);
}

static void assert_same(const setting *s, const result *a, const result *r)
{
    for (int e = 0; e < s->epochs; e++) {
        assert_memory_equal(&a->st[e].train_loss, &r->st[e].train_loss, sizeof(double));
        assert_memory_equal(&a->st[e].train_acc, &r->st[e].train_acc, sizeof(double));
        assert_memory_equal(&a->st[e].test_loss, &r->st[e].test_loss, sizeof(double));
        assert_memory_equal(&a->st[e].test_acc, &r->st[e].test_acc, sizeof(double));
        assert_memory_equal(&a->st[e].lr, &r->st[e].lr, sizeof(double));
        assert_int_equal(a->st[e].train_samples, r->st[e].train_samples);
    }
    assert_int_equal(a->np, r->np);
    assert_int_equal(a->nb, r->nb);
    assert_memory_equal(a->params, r->params, (size_t)a->np * sizeof(float));
    assert_memory_equal(a->buffers, r->buffers, (size_t)a->nb * sizeof(float));
    assert_int_equal(a->tracked, r->tracked);
}

static int64_t full_steps(const setting *s) { return s->data.synth_train / s->data.batch_size; }
static int64_t all_steps(const setting *s)
{
    return s->data.drop_last ? full_steps(s) : (s->data.synth_train + s->data.batch_size - 1) / s->data.batch_size;
}

/* Captured and replayed vs op by op: the same bits, one capture, a replay
 * for every full batch after the first. */
static void check_graph_matches_eager(setting *s, eng_device_kind kind)
{
    result eager, graph;
    train_eager(s, &eager);

    eng_backend *b = NULL;
    rec_options o = {.kind = kind};
    assert_int_equal(rec_backend_new(THREADS, &o, &b), 0);
    train_on(s, b, NULL, &graph);
    const rec_stats *st = rec_backend_stats(b);
    print_message("    captured %lld operations (%lld optimiser step), %lld replays, %lld steps op by op\n",
                  (long long)st->recorded, (long long)st->optimiser_ops, (long long)st->launches,
                  (long long)graph.graph.eager_steps);
    assert_same(s, &eager, &graph);

    int64_t full = full_steps(s) * s->epochs, partial = (all_steps(s) - full_steps(s)) * s->epochs;
    assert_true(graph.graph.captured);
    assert_string_equal(graph.graph.off_reason, "");
    assert_int_equal(graph.graph.replays, full - 1);          /* the first full step runs op by op */
    assert_int_equal(graph.graph.eager_steps, 1 + partial);
    assert_int_equal(st->begins, 1);
    assert_int_equal(st->ends, 1);
    assert_int_equal(st->failed_captures, 0);
    assert_int_equal(st->refused, 0);
    assert_int_equal(st->launches, full - 1);
    assert_int_equal(st->optimiser_ops, 1);
    assert_true(st->recorded > 5);
    assert_int_equal(st->replayed_ops, st->recorded * st->launches);
    assert_int_equal(st->graphs_live, 0); /* freed with the trainer */
    assert_int_equal(st->frees, 1);
    eng_backend_free(b);
    result_free(&eager);
    result_free(&graph);
}

static void test_mlp_adam(void **state)
{
    (void)state;
    setting s;
    mlp_adam(&s);
    check_graph_matches_eager(&s, ENG_DEVICE_CPU);
}

static void test_cnn_sgd_augmented(void **state)
{
    (void)state;
    setting s;
    cnn_sgd(&s);
    check_graph_matches_eager(&s, ENG_DEVICE_CPU);
}

static void test_mixer_adamw(void **state)
{
    (void)state;
    setting s;
    mixer_adamw(&s);
    check_graph_matches_eager(&s, ENG_DEVICE_CPU);
}

/* ---- no host work between replays ---- */

typedef struct progress_log {
    int calls;
    int nan_reports;
} progress_log;

static void on_progress(void *ctx, const eng_progress *p)
{
    progress_log *l = ctx;
    l->calls++;
    if (p->loss != p->loss && p->acc != p->acc)
        l->nan_reports++;
}

/* Acting as a GPU (device kind CUDA, a progress report after every step):
 * each epoch is uploads of the plan and the zeroed accumulators, then only
 * gathers, replays and op-by-op steps, then one download (the metrics), then
 * evaluation (one upload, one download). */
static void test_no_host_work_inside_an_epoch(void **state)
{
    (void)state;
    setting s;
    cnn_sgd(&s);
    s.data.drop_last = false; /* a partial batch too */
    result eager, graph;
    train_eager(&s, &eager);

    eng_backend *b = NULL;
    rec_options o = {.kind = ENG_DEVICE_CUDA};
    assert_int_equal(rec_backend_new(THREADS, &o, &b), 0);
    const rec_stats *st = rec_backend_stats(b);
    progress_log pl = {0};
    eng_train_hooks hooks = {.ctx = &pl, .progress = on_progress, .progress_interval = 0.0};
    eng_trainer *t = NULL;
    assert_int_equal(eng_trainer_new(&s.data, &s.model, &s.train, b, &t), 0);
    regex_t re;
    /* U: order, U: augmentation, U: zeroed accumulators; then the steps; D:
     * the metrics; U g o... D: evaluation. The first epoch also captures. */
    assert_int_equal(regcomp(&re, "^UUU(g[oBEL]+)+DU(go+)+D$", REG_EXTENDED | REG_NOSUB), 0);
    memset(&graph, 0, sizeof graph);
    for (int e = 0; e < s.epochs; e++) {
        size_t from = st->log_len;
        assert_int_equal(eng_trainer_run_epoch(t, &hooks, &graph.st[e]), 0);
        const char *seg = st->log + from;
        print_message("    epoch %d: %.70s%s\n", e + 1, seg, strlen(seg) > 70 ? "..." : "");
        if (regexec(&re, seg, 0, NULL, 0) != 0)
            fail_msg("epoch %d: unexpected events %s", e + 1, seg);
        /* every full step but the very first is one gather and one launch */
        size_t launches = 0;
        for (const char *c = seg; *c; c++)
            launches += *c == 'L';
        assert_int_equal(launches, (size_t)(full_steps(&s) - (e == 0)));
    }
    regfree(&re);
    /* progress was reported after every step, without reading the device */
    assert_int_equal(pl.calls, s.epochs * all_steps(&s));
    assert_int_equal(pl.nan_reports, pl.calls);
    snapshot(t, b, &graph);
    eng_trainer_free(t);
    assert_same(&s, &eager, &graph);
    assert_int_equal(st->refused, 0);
    eng_backend_free(b);
    result_free(&eager);
    result_free(&graph);
}

/* ---- the recording backend is strict, so the checks above can fail ---- */

static void test_fake_refuses_host_work_while_capturing(void **state)
{
    (void)state;
    eng_backend *b = NULL;
    assert_int_equal(rec_backend_new(1, NULL, &b), 0);
    const rec_stats *st = rec_backend_stats(b);
    float *x = NULL, one = 1.0f, back = 0.0f;
    assert_int_equal(eng_alloc_floats(b, 4, &x), 0);

    const char *names[] = {"upload", "download", "sync", "alloc"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(b->graph->begin(b), 0);
        void *p = NULL;
        int rc = i == 0   ? b->ops->upload(b, x, &one, sizeof one)
                 : i == 1 ? b->ops->download(b, &back, x, sizeof back)
                 : i == 2 ? b->ops->sync(b)
                          : b->ops->alloc(b, 16, &p);
        assert_true(rc < 0);
        void *g = (void *)1;
        assert_true(b->graph->end(b, &g) < 0);
        assert_null(g);
        assert_non_null(strstr(eng_last_error(), names[i]));
    }
    assert_int_equal(st->refused, 4);
    assert_int_equal(st->failed_captures, 4);

    /* a recorded operation does not run until launched, and runs at every launch */
    assert_int_equal(b->graph->begin(b), 0);
    assert_int_equal(b->ops->fill(b, x, 4, 3.0f), 0);
    void *g = NULL;
    assert_int_equal(b->graph->end(b, &g), 0);
    assert_non_null(g);
    assert_int_equal(b->ops->download(b, &back, x, sizeof back), 0);
    assert_true(back == 0.0f);
    assert_int_equal(b->graph->launch(b, g, NULL), 0);
    assert_int_equal(b->ops->download(b, &back, x, sizeof back), 0);
    assert_true(back == 3.0f);
    b->graph->free(b, g);

    /* a graph holding an optimiser step needs the step's scalars */
    eng_adam_args a = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = 1};
    float *m = NULL, *v = NULL;
    assert_int_equal(eng_alloc_floats(b, 4, &m), 0);
    assert_int_equal(eng_alloc_floats(b, 4, &v), 0);
    assert_int_equal(b->graph->begin(b), 0);
    assert_int_equal(b->ops->adam_step(b, 4, x, x, m, v, &a), 0);
    assert_int_equal(b->graph->end(b, &g), 0);
    assert_true(b->graph->launch(b, g, NULL) < 0);
    b->graph->free(b, g);
    assert_int_equal(st->graphs_live, 0);
    b->ops->free(b, x);
    b->ops->free(b, m);
    b->ops->free(b, v);
    eng_backend_free(b);
}

/* A backend whose replays kept the captured learning rate and step would be
 * caught: the parameters then differ from the op-by-op run. */
static void test_frozen_scalars_are_caught(void **state)
{
    (void)state;
    setting s;
    mlp_adam(&s);
    s.epochs = 1;
    result eager, graph;
    train_eager(&s, &eager);
    eng_backend *b = NULL;
    rec_options o = {.frozen_scalars = true};
    assert_int_equal(rec_backend_new(THREADS, &o, &b), 0);
    train_on(&s, b, NULL, &graph);
    assert_true(graph.graph.captured);
    assert_memory_not_equal(eager.params, graph.params, (size_t)eager.np * sizeof(float));
    eng_backend_free(b);
    result_free(&eager);
    result_free(&graph);
}

/* ---- reasons not to capture: the same numbers op by op ---- */

static void check_falls_back(const setting *s, const rec_options *o, const char *reason, int64_t begins)
{
    result eager, r;
    train_eager(s, &eager);
    eng_backend *b = NULL;
    assert_int_equal(rec_backend_new(THREADS, o, &b), 0);
    train_on(s, b, NULL, &r);
    const rec_stats *st = rec_backend_stats(b);
    print_message("    not captured: %s\n", r.graph.off_reason);
    assert_same(s, &eager, &r);
    assert_false(r.graph.captured);
    assert_non_null(strstr(r.graph.off_reason, reason));
    assert_int_equal(r.graph.replays, 0);
    assert_int_equal(r.graph.eager_steps, all_steps(s) * s->epochs);
    assert_int_equal(st->begins, begins);
    assert_int_equal(st->launches, 0);
    assert_int_equal(st->graphs_live, 0);
    eng_backend_free(b);
    result_free(&eager);
    result_free(&r);
}

static void test_dropout_is_not_captured(void **state)
{
    (void)state;
    setting s;
    dropout_mlp(&s);
    check_falls_back(&s, &(rec_options){0}, "dropout", 0);
}

static void test_env_switch(void **state)
{
    (void)state;
    setting s;
    mlp_adam(&s);
    s.epochs = 2;
    assert_int_equal(setenv("EPOCHD_NO_GRAPHS", "1", 1), 0);
    check_falls_back(&s, &(rec_options){0}, "EPOCHD_NO_GRAPHS", 0);
    assert_int_equal(unsetenv("EPOCHD_NO_GRAPHS"), 0);
}

/* An operation that fails while capturing: the capture is abandoned (the
 * step it held had not run), the step runs op by op, and so do the rest. */
static void test_failed_capture_falls_back(void **state)
{
    (void)state;
    setting s;
    cnn_sgd(&s);
    s.epochs = 2;
    check_falls_back(&s, &(rec_options){.fail_op_at = 3}, "capture failed", 1);
}

/* ---- checkpoints ---- */

/* A run checkpointed after epoch 1 and resumed, both with captured steps,
 * ends where an op-by-op run that never stopped ends (the optimiser's step
 * and the BatchNorm step count advance with the replays). */
static void test_resume_with_graphs(void **state)
{
    (void)state;
    setting s;
    mlp_adam(&s);
    result eager;
    train_eager(&s, &eager);

    char path[] = "/tmp/epochd-graph-ckpt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    eng_backend *b = NULL;
    assert_int_equal(rec_backend_new(THREADS, NULL, &b), 0);
    eng_trainer *t = NULL;
    eng_epoch_stats st;
    assert_int_equal(eng_trainer_new(&s.data, &s.model, &s.train, b, &t), 0);
    assert_int_equal(eng_trainer_run_epoch(t, NULL, &st), 0);
    assert_memory_equal(&st.train_loss, &eager.st[0].train_loss, sizeof(double));
    assert_int_equal(eng_trainer_save(t, path, NULL, 0), 0);
    eng_trainer_free(t);

    result r;
    memset(&r, 0, sizeof r);
    r.st[0] = eager.st[0];
    assert_int_equal(eng_trainer_new(&s.data, &s.model, &s.train, b, &t), 0);
    assert_int_equal(eng_trainer_load(t, path), 0);
    for (int e = 1; e < s.epochs; e++)
        assert_int_equal(eng_trainer_run_epoch(t, NULL, &r.st[e]), 0);
    snapshot(t, b, &r);
    eng_trainer_free(t);
    assert_true(r.graph.captured);
    assert_same(&s, &eager, &r);
    assert_int_equal(rec_backend_stats(b)->begins, 2); /* one per trainer */
    eng_backend_free(b);
    unlink(path);
    result_free(&eager);
    result_free(&r);
}

/* ---- divergence under capture (issue 10, defect 4) ---- */

/* The per-step loss trace is queued outside the captured step, like the
 * gather: replaying the step, a diverging run names the same first step as
 * op by op on the plain CPU backend. */
static void test_divergence_under_capture(void **state)
{
    (void)state;
    setting s;
    mlp_adam(&s);
    s.model.batch_norm = false;
    s.train.optimizer = ENG_OPT_SGD;
    s.train.lr = 1e20f;
    s.train.grad_clip = 0.0f;
    s.train.warmup_epochs = 0.0f;
    s.train.schedule = ENG_SCHED_CONSTANT;
    char want[160] = "";
    for (int graph = 0; graph < 2; graph++) {
        eng_backend *b = NULL;
        if (graph) {
            rec_options o = {.kind = ENG_DEVICE_CUDA};
            assert_int_equal(rec_backend_new(THREADS, &o, &b), 0);
        } else {
            assert_int_equal(eng_cpu_backend_new(THREADS, &b), 0);
        }
        eng_trainer *t = NULL;
        assert_int_equal(eng_trainer_new(&s.data, &s.model, &s.train, b, &t), 0);
        eng_epoch_stats st;
        int rc = 0;
        for (int e = 0; e < MAX_EPOCHS && rc == 0; e++)
            rc = eng_trainer_run_epoch(t, NULL, &st);
        assert_int_equal(rc, ENG_EDIVERGED);
        print_message("    %s: %s\n", graph ? "captured" : "op by op", eng_last_error());
        if (graph) {
            eng_graph_stats gs;
            eng_trainer_graph_stats(t, &gs);
            assert_true(gs.captured);
            assert_string_equal(eng_last_error(), want);
        } else {
            snprintf(want, sizeof want, "%s", eng_last_error());
            assert_non_null(strstr(want, "diverged: train loss is NaN at epoch "));
        }
        eng_trainer_free(t);
        eng_backend_free(b);
    }
}

int main(void)
{
    unsetenv("EPOCHD_NO_GRAPHS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_adam),
        cmocka_unit_test(test_cnn_sgd_augmented),
        cmocka_unit_test(test_mixer_adamw),
        cmocka_unit_test(test_no_host_work_inside_an_epoch),
        cmocka_unit_test(test_fake_refuses_host_work_while_capturing),
        cmocka_unit_test(test_frozen_scalars_are_caught),
        cmocka_unit_test(test_dropout_is_not_captured),
        cmocka_unit_test(test_env_switch),
        cmocka_unit_test(test_failed_capture_falls_back),
        cmocka_unit_test(test_resume_with_graphs),
        cmocka_unit_test(test_divergence_under_capture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
