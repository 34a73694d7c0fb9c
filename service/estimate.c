/* Run costs from specs and device speeds learned from recorded epochs
 * (estimate.h). */
#include "service/estimate.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/model.h"
#include "schema/spec.h"
#include "service/error.h"

/* The standard size of a split of a dataset kind; -1 when only its files know. */
static int64_t standard_samples(const eng_data_desc *d, bool train)
{
    int64_t n, limit = train ? d->limit_train : d->limit_test;
    switch (d->dataset) {
    case ENG_DATASET_CIFAR10:
    case ENG_DATASET_CIFAR100: n = train ? 50000 : 10000; break;
    case ENG_DATASET_MNIST:
    case ENG_DATASET_FASHION_MNIST: n = train ? 60000 : 10000; break;
    case ENG_DATASET_SYNTHETIC: n = train ? d->synth_train : d->synth_test; break;
    default: return -1;
    }
    return limit > 0 && limit < n ? limit : n;
}

int svc_cost_of_spec(const char *text, const char *path, db_cost *out)
{
    *out = (db_cost){-1, -1, -1, -1};
    if (!text)
        return svc_error(SVC_EINVAL, "the run has no spec text");
    spec_options opt;
    spec_options_default(&opt);
    opt.check_files = false; /* the cost needs the spec, not the data */
    opt.max_params = INT64_MAX;
    opt.max_memory_bytes = SIZE_MAX;
    opt.max_file_bytes = SIZE_MAX / 2;
    spec_file *sf = NULL;
    if (spec_file_load_buffer(path, text, strlen(text), &opt, &sf) < 0)
        return svc_error(SVC_ENOMEM, "out of memory reading a spec");
    if (sf->n_entries != 1 || !sf->entries[0].spec) {
        spec_file_free(sf);
        return svc_error(SVC_EINVAL, "%s: the spec does not validate on its own", path ? path : "spec");
    }
    const spec *s = sf->entries[0].spec;
    eng_shape shape;
    int64_t classes;
    eng_model *m = NULL;
    int rc = eng_dataset_geometry(&s->data, &shape, &classes);
    if (rc == 0)
        rc = eng_model_build(&s->model, &shape, classes, NULL, NULL, &m);
    if (rc < 0) {
        rc = rc == ENG_ENOMEM ? svc_error(SVC_ENOMEM, "out of memory building a model")
                              : svc_error(SVC_EINVAL, "%s: %s", path ? path : "spec", eng_last_error());
        spec_file_free(sf);
        return rc;
    }
    out->flops_per_sample = eng_model_flops(m);
    out->train_samples = standard_samples(&s->data, true);
    out->test_samples = standard_samples(&s->data, false);
    int64_t batch = s->data.batch_size > s->data.eval_batch_size ? s->data.batch_size : s->data.eval_batch_size;
    int64_t engine = (int64_t)eng_model_memory_estimate(m, batch);
    if (out->train_samples >= 0 && out->test_samples >= 0) {
        /* the trainer keeps both splits on the device (uint8 pixels, int32
         * labels) and per training sample an index and three augmentation draws */
        int64_t numel = eng_shape_numel(&shape);
        int64_t data = (out->train_samples + out->test_samples) * (numel + 4) + out->train_samples * 10;
        out->memory_bytes = engine + data + SVC_GPU_OVERHEAD_BYTES;
    }
    eng_model_free(m);
    spec_file_free(sf);
    return 0;
}

double svc_epoch_work(const db_cost *c)
{
    if (c->flops_per_sample <= 0 || c->train_samples < 0)
        return -1;
    double test = c->test_samples > 0 ? (double)c->test_samples : 0;
    return (double)c->flops_per_sample * (3.0 * (double)c->train_samples + test);
}

int svc_size_class(int64_t flops)
{
    return flops > 0 ? (int)floor(2.0 * log10((double)flops)) : -1;
}

double svc_estimate_seconds(const db_cost *c, double epochs, double speed)
{
    double w = svc_epoch_work(c);
    if (w < 0 || !(speed > 0) || !(epochs >= 0))
        return NAN;
    return epochs * w / speed;
}

double svc_speed_guess_cpu(int threads)
{
    return SVC_GUESS_CPU_FLOPS_PER_THREAD * (threads > 0 ? threads : 1);
}

double svc_speed_guess_gpu(int multiprocessors)
{
    return multiprocessors > 0 ? SVC_GUESS_GPU_FLOPS_PER_SM * multiprocessors : SVC_GUESS_GPU_FLOPS;
}

/* ---- learning ---- */

void svc_speeds_clear(svc_speeds *t)
{
    free(t->cells);
    memset(t, 0, sizeof *t);
}

int svc_speeds_learn(svc_speeds *t, const db_speed_sample *v, size_t n)
{
    t->n = 0;
    for (size_t i = 0; i < n; i++) {
        const db_speed_sample *x = &v[i];
        double w = svc_epoch_work(&x->cost);
        if (w < 0 || !x->device || !(x->seconds > 0) || x->epochs <= 0)
            continue;
        const char *tmpl = x->template_name ? x->template_name : "", *name = x->name ? x->name : "";
        int64_t flops = x->cost.flops_per_sample;
        svc_speed_cell *c = NULL;
        for (size_t k = 0; k < t->n && !c; k++)
            if (!strcmp(t->cells[k].device, x->device) && !strcmp(t->cells[k].name, name) &&
                t->cells[k].flops == flops && !strcmp(t->cells[k].tmpl, tmpl))
                c = &t->cells[k];
        if (!c) {
            if (t->n == t->cap) {
                size_t cap = t->cap ? 2 * t->cap : 16;
                svc_speed_cell *nc = realloc(t->cells, cap * sizeof *nc);
                if (!nc)
                    return svc_error(SVC_ENOMEM, "out of memory learning device speeds");
                t->cells = nc;
                t->cap = cap;
            }
            c = &t->cells[t->n++];
            memset(c, 0, sizeof *c);
            snprintf(c->device, sizeof c->device, "%s", x->device);
            snprintf(c->name, sizeof c->name, "%s", name);
            snprintf(c->tmpl, sizeof c->tmpl, "%s", tmpl);
            c->flops = flops;
            c->cls = svc_size_class(flops);
        }
        c->work += w * (double)x->epochs;
        c->seconds += x->seconds;
        c->epochs += x->epochs;
        if (isfinite(x->run_seconds)) {
            c->overhead += x->run_seconds > x->seconds ? x->run_seconds - x->seconds : 0;
            c->runs_timed++;
        }
    }
    return 0;
}

static bool is_gpu(const char *device) { return !strncmp(device, "cuda", 4); }

double svc_speed_of(const svc_speeds *t, const char *device, const char *name, const char *tmpl, int64_t flops,
                    double guess, svc_speed_basis *basis)
{
    int cls = svc_size_class(flops);
    bool gpu = is_gpu(device);
    if (!tmpl)
        tmpl = "";
    double work[SVC_SPEED_GUESS] = {0}, secs[SVC_SPEED_GUESS] = {0};
    for (size_t k = 0; k < t->n; k++) {
        const svc_speed_cell *c = &t->cells[k];
        bool same_dev = !strcmp(c->device, device), same_kind = is_gpu(c->device) == gpu;
        bool same_tmpl = *tmpl && !strcmp(c->tmpl, tmpl), same_cls = c->cls == cls;
        bool same_run = name && *name && !strcmp(c->name, name) && c->flops == flops;
        bool in[SVC_SPEED_GUESS] = {
            [SVC_SPEED_RUN] = same_dev && same_run,
            [SVC_SPEED_SAME] = same_dev && same_tmpl && same_cls,
            [SVC_SPEED_TEMPLATE] = same_dev && same_tmpl,
            [SVC_SPEED_KIND_SAME] = same_kind && same_tmpl && same_cls,
            [SVC_SPEED_KIND_TEMPLATE] = same_kind && same_tmpl,
            [SVC_SPEED_DEVICE] = same_dev,
            [SVC_SPEED_KIND] = same_kind,
        };
        for (int b = 0; b < SVC_SPEED_GUESS; b++)
            if (in[b]) {
                work[b] += c->work;
                secs[b] += c->seconds;
            }
    }
    for (int b = 0; b < SVC_SPEED_GUESS; b++)
        if (secs[b] > 0 && work[b] > 0) {
            if (basis)
                *basis = (svc_speed_basis)b;
            return work[b] / secs[b];
        }
    if (basis)
        *basis = SVC_SPEED_GUESS;
    return guess;
}

double svc_overhead_of(const svc_speeds *t, const char *device)
{
    bool gpu = is_gpu(device);
    double sum[2] = {0, 0};
    int64_t n[2] = {0, 0};
    for (size_t k = 0; k < t->n; k++) {
        const svc_speed_cell *c = &t->cells[k];
        if (!strcmp(c->device, device)) {
            sum[0] += c->overhead;
            n[0] += c->runs_timed;
        }
        if (is_gpu(c->device) == gpu) {
            sum[1] += c->overhead;
            n[1] += c->runs_timed;
        }
    }
    return n[0] ? sum[0] / (double)n[0] : n[1] ? sum[1] / (double)n[1] : 0.0;
}
