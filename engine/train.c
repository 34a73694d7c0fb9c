/* The training loop: batches from the resident dataset, forward, softmax
 * cross-entropy, backward, clipping and the optimizer step - captured once
 * and replayed where the backend can (train.h) - and evaluation. */
#include "engine/train.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/checked.h"
#include "engine/dataset.h"
#include "engine/error.h"
#include "engine/file.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "engine/train_internal.h"
#include "engine/weights.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A split resident on the backend. */
static int upload_split(eng_backend *b, const eng_dataset *ds, eng_split_dev *out)
{
    size_t bytes = eng_size_bytes(eng_size_mul(ds->n, eng_shape_numel(&ds->shape)), ds->f32 ? sizeof(float) : 1);
    out->n = ds->n;
    out->f32 = ds->f32;
    ENG_TRY(b->ops->alloc(b, bytes ? bytes : 1, (void **)&out->images));
    ENG_TRY(b->ops->upload(b, out->images, ds->images, bytes));
    ENG_TRY(b->ops->alloc(b, (size_t)(ds->n ? ds->n : 1) * sizeof(int32_t), (void **)&out->labels));
    return b->ops->upload(b, out->labels, ds->labels, (size_t)ds->n * sizeof(int32_t));
}

static void free_split(eng_backend *b, eng_split_dev *s)
{
    b->ops->free(b, s->images);
    b->ops->free(b, s->labels);
}

/* Whether the full-batch step may be captured; if not, why. */
static void graph_decide(eng_trainer *t)
{
    const eng_graph_ops *o = t->b->graph;
    const char *env = getenv("EPOCHD_NO_GRAPHS");
    t->graph_allowed = false;
    if (!o || !o->begin || !o->end || !o->launch || !o->free) {
        snprintf(t->graph_off, sizeof t->graph_off, "the %s backend cannot capture a step", t->b->name);
        return;
    }
    if (env && env[0] && strcmp(env, "0") != 0) {
        snprintf(t->graph_off, sizeof t->graph_off, "EPOCHD_NO_GRAPHS is set");
        return;
    }
    /* a captured step would replay the dropout masks of the step it was
     * captured at (their key is an argument, derived from the step) */
    const eng_layer_info *layers;
    int nl = eng_model_layers(t->model, &layers);
    for (int i = 0; i < nl; i++)
        if (!strcmp(layers[i].type, "dropout")) {
            snprintf(t->graph_off, sizeof t->graph_off, "the model has dropout (%s), whose masks change every step",
                     layers[i].name);
            return;
        }
    t->graph_off[0] = '\0';
    t->graph_allowed = true;
}

static int trainer_setup(eng_trainer *t)
{
    eng_backend *b = t->b;
    eng_dataset *train = NULL, *test = NULL;
    int rc = eng_dataset_load(&t->data, ENG_SPLIT_TRAIN, t->train.seed, &train);
    if (rc == 0)
        rc = eng_dataset_load(&t->data, ENG_SPLIT_TEST, t->train.seed, &test);
    if (rc == 0 && (train->n < 1 || test->n < 1))
        rc = eng_error(ENG_EINVAL, "the dataset has an empty split (%lld train, %lld test samples)",
                       (long long)train->n, (long long)test->n);
    if (rc == 0) {
        t->shape = train->shape;
        t->classes = train->classes;
        rc = upload_split(b, train, &t->train_dev);
    }
    if (rc == 0)
        rc = upload_split(b, test, &t->test_dev);
    eng_dataset_free(train);
    eng_dataset_free(test);
    if (rc < 0)
        return rc;

    t->batch = t->data.batch_size;
    t->eval_batch = t->data.eval_batch_size > 0 ? t->data.eval_batch_size : t->batch;
    if (t->batch > t->train_dev.n)
        t->batch = t->train_dev.n; /* a limit smaller than one batch still trains */
    t->steps_per_epoch = eng_dataset_batches(t->train_dev.n, t->batch, t->data.drop_last);
    if (t->steps_per_epoch < 1)
        return eng_error(ENG_EINVAL, "no training batch: %lld samples, batch size %lld", (long long)t->train_dev.n,
                         (long long)t->batch);
    int64_t max_batch = t->batch > t->eval_batch ? t->batch : t->eval_batch;

    ENG_TRY(eng_model_build(&t->model_desc, &t->shape, t->classes, NULL, NULL, &t->model));
    ENG_TRY(eng_model_bind(t->model, b, max_batch));
    ENG_TRY(eng_model_init_params(t->model, t->train.seed));
    if (t->model_desc.init_from[0]) {
        /* resolved and confined by the validator: opened without following links */
        eng_st_file *f = NULL;
        ENG_TRY(eng_st_open_flags(t->model_desc.init_from, ENG_FILE_RESOLVED, &f));
        rc = eng_weights_load_file(t->model, f, t->model_desc.init_from, NULL);
        eng_st_close(f);
        if (rc < 0)
            return rc;
    }
    ENG_TRY(eng_optimizer_new(&t->train, b, eng_model_param_count(t->model), &t->opt));

    /* The epoch's order and augmentation draws go to the backend once per
     * epoch; a step only points into them, so it needs no host transfer. */
    int64_t numel = eng_shape_numel(&t->shape), ntrain = t->train_dev.n, ntest = t->test_dev.n;
    t->order = malloc((size_t)ntrain * sizeof *t->order);
    t->aug_host = malloc((size_t)ntrain * 3 * sizeof *t->aug_host);
    int32_t *identity = malloc((size_t)ntest * sizeof *identity);
    if (!t->order || !t->aug_host || !identity) {
        free(identity);
        return eng_error(ENG_ENOMEM, "out of memory for the batch order");
    }
    for (int64_t i = 0; i < ntest; i++)
        identity[i] = (int32_t)i;
    rc = b->ops->alloc(b, (size_t)ntest * sizeof(int32_t), (void **)&t->eval_idx_dev);
    if (rc == 0)
        rc = b->ops->upload(b, t->eval_idx_dev, identity, (size_t)ntest * sizeof(int32_t));
    free(identity);
    if (rc < 0)
        return rc;
    ENG_TRY(b->ops->alloc(b, (size_t)ntrain * sizeof(int32_t), (void **)&t->order_dev));
    ENG_TRY(b->ops->alloc(b, (size_t)ntrain * 3 * sizeof(int16_t), (void **)&t->aug_dev));
    ENG_TRY(b->ops->alloc(b, (size_t)max_batch * sizeof(int32_t), (void **)&t->labels_dev));
    ENG_TRY(eng_alloc_floats(b, eng_size_mul(max_batch, numel), &t->x_dev));
    ENG_TRY(eng_alloc_floats(b, eng_size_mul(max_batch, t->classes), &t->dlogits_dev));
    ENG_TRY(b->ops->alloc(b, 2 * sizeof(double), (void **)&t->acc_dev));
    if (t->train.stop_on_nonfinite)
        ENG_TRY(b->ops->alloc(b, eng_size_bytes(t->steps_per_epoch, sizeof(double)), (void **)&t->loss_trace_dev));
    graph_decide(t);
    return 0;
}

int eng_trainer_new(const eng_data_desc *data, const eng_model_desc *model, const eng_train_desc *train,
                    eng_backend *b, eng_trainer **out)
{
    *out = NULL;
    eng_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return eng_error(ENG_ENOMEM, "out of memory creating the trainer");
    t->data = *data;
    t->model_desc = *model;
    t->train = *train;
    t->b = b;
    int rc = trainer_setup(t);
    if (rc < 0) {
        eng_trainer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void eng_trainer_free(eng_trainer *t)
{
    if (!t)
        return;
    eng_backend *b = t->b;
    if (t->graph)
        b->graph->free(b, t->graph);
    eng_optimizer_free(t->opt);
    eng_model_free(t->model);
    free_split(b, &t->train_dev);
    free_split(b, &t->test_dev);
    b->ops->free(b, t->order_dev);
    b->ops->free(b, t->eval_idx_dev);
    b->ops->free(b, t->aug_dev);
    b->ops->free(b, t->labels_dev);
    b->ops->free(b, t->x_dev);
    b->ops->free(b, t->dlogits_dev);
    b->ops->free(b, t->acc_dev);
    b->ops->free(b, t->loss_trace_dev);
    free(t->order);
    free(t->aug_host);
    free(t);
}

eng_model *eng_trainer_model(eng_trainer *t) { return t->model; }
int64_t eng_trainer_epochs_done(const eng_trainer *t) { return t->epochs_done; }
int64_t eng_trainer_steps_per_epoch(const eng_trainer *t) { return t->steps_per_epoch; }
int64_t eng_trainer_train_samples(const eng_trainer *t) { return t->train_dev.n; }
int64_t eng_trainer_test_samples(const eng_trainer *t) { return t->test_dev.n; }

void eng_trainer_graph_stats(const eng_trainer *t, eng_graph_stats *out)
{
    *out = (eng_graph_stats){.captured = t->graph != NULL, .replays = t->graph_replays,
                             .eager_steps = t->eager_steps};
    snprintf(out->off_reason, sizeof out->off_reason, "%s", t->graph_off);
}

double eng_trainer_best_acc(const eng_trainer *t, int64_t *epoch)
{
    if (epoch)
        *epoch = t->best_epoch;
    return t->best_acc;
}

/* Gathers samples idx[0..count) (backend memory) of a split into x_dev /
 * labels_dev, with augmentation draws aug (backend memory) for training. */
static int gather(eng_trainer *t, const eng_split_dev *s, const int32_t *idx, int64_t count, bool train,
                  const int16_t *aug)
{
    eng_batch_desc d;
    ENG_TRY(eng_dataset_batch_desc(&t->data, &t->shape, count, train, &d));
    d.f32 = s->f32;
    return t->b->ops->batch_gather(t->b, &d, s->images, s->labels, idx, d.augment ? aug : NULL, t->x_dev,
                                   t->labels_dev);
}

static int read_acc(eng_trainer *t, double acc[2])
{
    return t->b->ops->download(t->b, acc, t->acc_dev, 2 * sizeof(double));
}

static int zero_acc(eng_trainer *t)
{
    const double zero[2] = {0.0, 0.0};
    return t->b->ops->upload(t->b, t->acc_dev, zero, sizeof zero);
}

int eng_trainer_evaluate(eng_trainer *t, double *loss, double *acc)
{
    eng_backend *b = t->b;
    ENG_TRY(zero_acc(t));
    for (int64_t start = 0; start < t->test_dev.n; start += t->eval_batch) {
        int64_t count = t->test_dev.n - start < t->eval_batch ? t->test_dev.n - start : t->eval_batch;
        ENG_TRY(gather(t, &t->test_dev, t->eval_idx_dev + start, count, false, NULL));
        const float *logits;
        ENG_TRY(eng_model_forward(t->model, t->x_dev, count, false, 0, &logits));
        eng_xent_desc xd = {.rows = count, .classes = t->classes, .k = t->train.top_k, .scale = 0.0f};
        ENG_TRY(b->ops->xent(b, &xd, logits, t->labels_dev, NULL, t->acc_dev));
    }
    double a[2];
    ENG_TRY(read_acc(t, a));
    *loss = a[0] / (double)t->test_dev.n;
    *acc = a[1] / (double)t->test_dev.n;
    return 0;
}

/* Forward, loss, backward, clipping and update of the batch in x_dev /
 * labels_dev: what a captured step holds. */
static int step_ops(eng_trainer *t, int64_t count, uint64_t dropout_key, const eng_step_scalars *s)
{
    eng_backend *b = t->b;
    const float *logits;
    ENG_TRY(eng_model_forward(t->model, t->x_dev, count, true, dropout_key, &logits));
    eng_xent_desc xd = {.rows = count, .classes = t->classes, .k = t->train.top_k, .scale = 1.0f / (float)count};
    ENG_TRY(b->ops->xent(b, &xd, logits, t->labels_dev, t->dlogits_dev, t->acc_dev));
    ENG_TRY(eng_model_backward(t->model, t->dlogits_dev));
    return eng_optimizer_apply(t->opt, eng_model_param_data(t->model), eng_model_grad_data(t->model), s);
}

/* Captures the step and replays it once (capture records, it does not run).
 * 1: the capture failed and the step has not run - the caller runs it op by
 * op; the host-side counters the capture advanced are restored. */
static int capture_step(eng_trainer *t, int64_t count, uint64_t dropout_key, float lr)
{
    assert(t->graph_allowed && !t->graph && count == t->batch); /* once, a full batch, where graph_decide allows */
    eng_backend *b = t->b;
    int64_t steps = eng_optimizer_steps(t->opt), tracked = eng_model_batches_tracked(t->model);
    eng_step_scalars s;
    eng_optimizer_next(t->opt, lr, &s);
    int rc = b->graph->begin(b);
    if (rc == 0) {
        int body = step_ops(t, count, dropout_key, &s); /* frozen: only models without dropout get here */
        void *g = NULL;
        rc = b->graph->end(b, &g); /* closes the capture; fails when anything inside did */
        if (rc == 0 && body < 0)
            rc = body; /* a backend that did not carry the failure to end */
        if (rc == 0)
            t->graph = g;
        else if (g)
            b->graph->free(b, g);
    }
    if (rc < 0) {
        snprintf(t->graph_off, sizeof t->graph_off, "capture failed: %s", eng_last_error());
        t->graph_allowed = false;
        eng_optimizer_set_steps(t->opt, steps);
        eng_model_set_batches_tracked(t->model, tracked);
        return 1;
    }
    ENG_TRY(b->graph->launch(b, t->graph, &s));
    t->graph_replays++;
    return 0;
}

/* One training step on the batch in x_dev / labels_dev: a replay of the
 * captured step when there is one and the batch is full, else op by op. */
static int train_step(eng_trainer *t, int64_t count, int64_t global_step, float lr)
{
    eng_backend *b = t->b;
    bool full = count == t->batch;
    eng_step_scalars s;
    uint64_t dropout_key = eng_rng_key(t->train.seed, ENG_RNG_DROPOUT, (uint64_t)global_step);
    if (full && t->graph) {
        eng_optimizer_next(t->opt, lr, &s);
        eng_model_set_batches_tracked(t->model, eng_model_batches_tracked(t->model) + 1); /* as forward counts */
        ENG_TRY(b->graph->launch(b, t->graph, &s));
        t->graph_replays++;
        return 0;
    }
    if (full && t->graph_allowed && t->graph_warm) {
        int rc = capture_step(t, count, dropout_key, lr);
        if (rc <= 0)
            return rc;
    }
    eng_optimizer_next(t->opt, lr, &s);
    ENG_TRY(step_ops(t, count, dropout_key, &s));
    t->eager_steps++;
    if (full)
        t->graph_warm = true;
    return 0;
}

/* The running loss sum turned NaN or infinite in this epoch (it stays so):
 * finds the first step where it did from the per-step trace (read only now,
 * so a GPU step never waits for the host) and stops the run as diverged. */
static int diverged(eng_trainer *t, int64_t epoch, double sum)
{
    int64_t n = t->steps_per_epoch, first = n;
    double *trace = malloc(eng_size_bytes(n ? n : 1, sizeof *trace));
    if (!trace)
        return eng_error(ENG_ENOMEM, "out of memory reading the loss trace");
    int rc = t->b->ops->download(t->b, trace, t->loss_trace_dev, (size_t)n * sizeof *trace);
    for (int64_t s = 0; rc == 0 && s < n; s++)
        if (!isfinite(trace[s])) {
            first = s + 1;
            sum = trace[s];
            break;
        }
    free(trace);
    if (rc < 0)
        return rc;
    return eng_error(ENG_EDIVERGED, "diverged: train loss is %s at epoch %lld step %lld", isnan(sum) ? "NaN" : "inf",
                     (long long)epoch, (long long)first);
}

int eng_trainer_run_epoch(eng_trainer *t, const eng_train_hooks *hooks, eng_epoch_stats *out)
{
    eng_backend *b = t->b;
    int64_t epoch = t->epochs_done + 1; /* 1-based; streams are keyed by it */
    uint64_t seed = t->train.seed;
    double t0 = now_seconds(), last_report = t0;
    int64_t n = t->train_dev.n;
    eng_dataset_epoch_order(n, t->data.shuffle, seed, epoch, t->order);
    ENG_TRY(b->ops->upload(b, t->order_dev, t->order, (size_t)n * sizeof(int32_t)));
    eng_batch_desc probe;
    ENG_TRY(eng_dataset_batch_desc(&t->data, &t->shape, 1, true, &probe));
    if (probe.augment) {
        for (int64_t step = 0; step < t->steps_per_epoch; step++) {
            int64_t start = step * t->batch, count = n - start < t->batch ? n - start : t->batch;
            eng_dataset_augment_draw(&t->data, seed, epoch, step, count, t->aug_host + 3 * start);
        }
        ENG_TRY(b->ops->upload(b, t->aug_dev, t->aug_host, (size_t)n * 3 * sizeof(int16_t)));
    }
    ENG_TRY(zero_acc(t));
    int64_t seen = 0;
    float lr = 0.0f;
    /* reading the running loss waits for the device: only the CPU reports it mid-epoch */
    bool live_metrics = b->kind == ENG_DEVICE_CPU;
    for (int64_t step = 0; step < t->steps_per_epoch; step++) {
        if (hooks && hooks->stop && *hooks->stop)
            return eng_error(ENG_EINTR, "stopped during epoch %lld", (long long)epoch);
        int64_t start = step * t->batch;
        int64_t count = n - start < t->batch ? n - start : t->batch;
        /* the gather points into the epoch's order: queued per step, outside a captured step */
        ENG_TRY(gather(t, &t->train_dev, t->order_dev + start, count, true, t->aug_dev + 3 * start));
        int64_t global_step = (epoch - 1) * t->steps_per_epoch + step;
        lr = eng_schedule_lr(&t->train, global_step, t->steps_per_epoch);
        ENG_TRY(train_step(t, count, global_step, lr));
        if (t->loss_trace_dev) /* queued like the gather: no host wait */
            ENG_TRY(b->ops->copy(b, t->loss_trace_dev + step, t->acc_dev, sizeof(double)));
        seen += count;
        double now = now_seconds();
        bool last = step + 1 == t->steps_per_epoch;
        if (hooks && hooks->progress && (last || now - last_report >= hooks->progress_interval)) {
            double a[2] = {NAN, NAN};
            if (live_metrics)
                ENG_TRY(read_acc(t, a));
            eng_progress p = {.epoch = epoch, .step = step + 1, .steps = t->steps_per_epoch,
                              .loss = a[0] / (double)seen, .acc = a[1] / (double)seen,
                              .samples_per_sec = (double)seen / (now - t0), .elapsed = now - t0};
            hooks->progress(hooks->ctx, &p);
            last_report = now;
        }
    }
    double a[2];
    ENG_TRY(read_acc(t, a));
    if (t->train.stop_on_nonfinite && !isfinite(a[0]))
        return diverged(t, epoch, a[0]); /* the epoch does not count: its test accuracy would mean nothing */
    double t1 = now_seconds();
    eng_epoch_stats s = {.epoch = epoch, .train_loss = a[0] / (double)seen, .train_acc = a[1] / (double)seen,
                         .lr = lr, .train_seconds = t1 - t0, .samples_per_sec = (double)seen / (t1 - t0),
                         .train_samples = seen, .test_samples = t->test_dev.n};
    ENG_TRY(eng_trainer_evaluate(t, &s.test_loss, &s.test_acc));
    s.seconds = now_seconds() - t0;
    t->epochs_done = epoch;
    if (s.test_acc > t->best_acc || t->best_epoch == 0) {
        t->best_acc = s.test_acc;
        t->best_epoch = epoch;
    }
    if (out)
        *out = s;
    return 0;
}
