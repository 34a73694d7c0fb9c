/* The recording backend of rec_backend.h: the CPU backend behind a wrapper
 * that records operations while capturing and replays them on launch. */
#include "rec_backend.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

#define REC_ARGS_MAX 192
#define REC_LOG_MAX ((size_t)1 << 20)

/* One recorded operation: its arguments by value and how to run them.
 * s: the launch's step scalars (NULL: run as recorded). */
typedef int (*rec_run_fn)(eng_backend *in, const void *args, const eng_step_scalars *s);

typedef struct rec_call {
    const char *name;
    rec_run_fn run;
    union {
        max_align_t align;
        unsigned char bytes[REC_ARGS_MAX];
    } a;
} rec_call;

typedef struct rec_impl rec_impl;

typedef struct rec_graph {
    rec_impl *owner;
    rec_call *calls;
    int64_t n;
    bool has_optimiser;
} rec_graph;

struct rec_impl {
    eng_backend *in; /* the CPU backend that computes */
    rec_options opt;
    rec_stats st;
    bool capturing;
    int err;         /* first failure of the open capture */
    char msg[512];
    rec_call *calls; /* the open capture */
    int64_t n, cap;
    int64_t optimiser_ops, dropouts;
};

static const eng_backend_ops rec_ops;
static const eng_graph_ops rec_graph_ops;

static rec_impl *impl_of(eng_backend *b) { return (rec_impl *)b->impl; }

static void log_event(rec_impl *r, char c)
{
    if (r->st.log_len + 1 >= REC_LOG_MAX)
        return;
    r->st.log[r->st.log_len++] = c;
    r->st.log[r->st.log_len] = '\0';
}

static int capture_fail(rec_impl *r, const char *name, int rc)
{
    if (!r->err) {
        r->err = rc;
        snprintf(r->msg, sizeof r->msg, "operation %lld (%s): %s", (long long)r->n + 1, name, eng_last_error());
    }
    return rc;
}

/* Records a call while capturing, else runs it on the CPU backend. */
static int dispatch(eng_backend *b, const char *name, rec_run_fn run, const void *args, size_t size)
{
    rec_impl *r = impl_of(b);
    if (!r->capturing) {
        log_event(r, strcmp(name, "batch_gather") == 0 ? 'g' : 'o');
        return run(r->in, args, NULL);
    }
    if (r->opt.fail_op_at > 0 && r->n + 1 == r->opt.fail_op_at)
        return capture_fail(r, name, eng_error(ENG_EDEVICE, "rec backend: injected failure"));
    if (r->n == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 64;
        rec_call *c = realloc(r->calls, (size_t)cap * sizeof *c);
        if (!c)
            return capture_fail(r, name, eng_error(ENG_ENOMEM, "rec backend: out of memory"));
        r->calls = c;
        r->cap = cap;
    }
    rec_call *c = &r->calls[r->n++];
    c->name = name;
    c->run = run;
    memcpy(c->a.bytes, args, size);
    if (!strcmp(name, "adam_step") || !strcmp(name, "sgd_step"))
        r->optimiser_ops++;
    if (!strcmp(name, "dropout"))
        r->dropouts++;
    return 0;
}

/* A host operation: refused while capturing, as on the GPU. */
static int host_op(eng_backend *b, const char *name, char event)
{
    rec_impl *r = impl_of(b);
    if (!r->capturing) {
        log_event(r, event);
        return 0;
    }
    r->st.refused++;
    return capture_fail(r, name, eng_error(ENG_EINVAL, "rec backend: %s is not allowed while capturing", name));
}

/* ---- the operations: argument struct, runner, table entry ---- */

#define RUN(name) static int r_##name(eng_backend *in, const void *args_, const eng_step_scalars *s)
#define A(name) const a_##name *a = args_; (void)s
#define DISPATCH(name, ...)                                                                                      \
    do {                                                                                                         \
        _Static_assert(sizeof(a_##name) <= REC_ARGS_MAX, "arguments too large to record");                      \
        a_##name args_ = __VA_ARGS__;                                                                            \
        return dispatch(b, #name, r_##name, &args_, sizeof args_);                                              \
    } while (0)

typedef struct { float *x; int64_t n; float value; } a_fill;
RUN(fill) { A(fill); return in->ops->fill(in, a->x, a->n, a->value); }
static int w_fill(eng_backend *b, float *x, int64_t n, float value) { DISPATCH(fill, {x, n, value}); }

typedef struct { void *dst; const void *src; size_t bytes; } a_copy;
RUN(copy) { A(copy); return in->ops->copy(in, a->dst, a->src, a->bytes); }
static int w_copy(eng_backend *b, void *dst, const void *src, size_t bytes) { DISPATCH(copy, {dst, src, bytes}); }

typedef struct { eng_gemm_desc d; const float *A, *B; float *C; } a_gemm;
RUN(gemm) { A(gemm); return in->ops->gemm(in, &a->d, a->A, a->B, a->C); }
static int w_gemm(eng_backend *b, const eng_gemm_desc *d, const float *A_, const float *B_, float *C_)
{
    DISPATCH(gemm, {*d, A_, B_, C_});
}

typedef struct { int64_t outer, n, inner; float *y; const float *bias; } a_bias_add;
RUN(bias_add) { A(bias_add); return in->ops->bias_add(in, a->outer, a->n, a->inner, a->y, a->bias); }
static int w_bias_add(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias)
{
    DISPATCH(bias_add, {outer, n, inner, y, bias});
}

typedef struct { int64_t outer, n, inner; const float *dy; float *db; } a_bias_grad;
RUN(bias_grad) { A(bias_grad); return in->ops->bias_grad(in, a->outer, a->n, a->inner, a->dy, a->db); }
static int w_bias_grad(eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db)
{
    DISPATCH(bias_grad, {outer, n, inner, dy, db});
}

typedef struct { int64_t n; const float *a, *c; float *y; } a_add;
RUN(add) { A(add); return in->ops->add(in, a->n, a->a, a->c, a->y); }
static int w_add(eng_backend *b, int64_t n, const float *x, const float *c, float *y) { DISPATCH(add, {n, x, c, y}); }

typedef struct { int64_t rows, cols; const float *src; int64_t ld_src; float *dst; int64_t ld_dst; } a_copy_2d;
RUN(copy_2d) { A(copy_2d); return in->ops->copy_2d(in, a->rows, a->cols, a->src, a->ld_src, a->dst, a->ld_dst); }
static int w_copy_2d(eng_backend *b, int64_t rows, int64_t cols, const float *src, int64_t ld_src, float *dst,
                     int64_t ld_dst)
{
    DISPATCH(copy_2d, {rows, cols, src, ld_src, dst, ld_dst});
}

typedef struct { int64_t batch, rows, cols; const float *x; float *y; } a_transpose;
RUN(transpose) { A(transpose); return in->ops->transpose(in, a->batch, a->rows, a->cols, a->x, a->y); }
static int w_transpose(eng_backend *b, int64_t batch, int64_t rows, int64_t cols, const float *x, float *y)
{
    DISPATCH(transpose, {batch, rows, cols, x, y});
}

typedef struct { int64_t rows, n; const float *x; float *y; } a_mean_lastdim_forward;
RUN(mean_lastdim_forward)
{
    A(mean_lastdim_forward);
    return in->ops->mean_lastdim_forward(in, a->rows, a->n, a->x, a->y);
}
static int w_mean_lastdim_forward(eng_backend *b, int64_t rows, int64_t n, const float *x, float *y)
{
    DISPATCH(mean_lastdim_forward, {rows, n, x, y});
}

typedef struct { int64_t rows, n; const float *dy; float *dx; } a_mean_lastdim_backward;
RUN(mean_lastdim_backward)
{
    A(mean_lastdim_backward);
    return in->ops->mean_lastdim_backward(in, a->rows, a->n, a->dy, a->dx);
}
static int w_mean_lastdim_backward(eng_backend *b, int64_t rows, int64_t n, const float *dy, float *dx)
{
    DISPATCH(mean_lastdim_backward, {rows, n, dy, dx});
}

static size_t w_conv2d_workspace(eng_backend *b, const eng_conv_desc *d)
{
    rec_impl *r = impl_of(b);
    return r->in->ops->conv2d_workspace(r->in, d); /* host-side planning: allowed while capturing */
}

typedef struct { eng_conv_desc d; const float *x, *w, *bias; float *y; void *ws; } a_conv2d_forward;
RUN(conv2d_forward) { A(conv2d_forward); return in->ops->conv2d_forward(in, &a->d, a->x, a->w, a->bias, a->y, a->ws); }
static int w_conv2d_forward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *bias,
                            float *y, void *ws)
{
    DISPATCH(conv2d_forward, {*d, x, w, bias, y, ws});
}

typedef struct { eng_conv_desc d; const float *x, *w, *dy; float *dx, *dw, *db; void *ws; } a_conv2d_backward;
RUN(conv2d_backward)
{
    A(conv2d_backward);
    return in->ops->conv2d_backward(in, &a->d, a->x, a->w, a->dy, a->dx, a->dw, a->db, a->ws);
}
static int w_conv2d_backward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                             float *dx, float *dw, float *db, void *ws)
{
    DISPATCH(conv2d_backward, {*d, x, w, dy, dx, dw, db, ws});
}

typedef struct { eng_pool_desc d; const float *x; float *y; } a_pool_forward;
RUN(pool_forward) { A(pool_forward); return in->ops->pool_forward(in, &a->d, a->x, a->y); }
static int w_pool_forward(eng_backend *b, const eng_pool_desc *d, const float *x, float *y)
{
    DISPATCH(pool_forward, {*d, x, y});
}

typedef struct { eng_pool_desc d; const float *x, *y, *dy; float *dx; } a_pool_backward;
RUN(pool_backward) { A(pool_backward); return in->ops->pool_backward(in, &a->d, a->x, a->y, a->dy, a->dx); }
static int w_pool_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y, const float *dy,
                           float *dx)
{
    DISPATCH(pool_backward, {*d, x, y, dy, dx});
}

typedef struct {
    eng_norm_desc d;
    const float *x, *gamma, *beta;
    float *y, *running_mean, *running_var, *save_mean, *save_invstd;
} a_batchnorm_forward_train;
RUN(batchnorm_forward_train)
{
    A(batchnorm_forward_train);
    return in->ops->batchnorm_forward_train(in, &a->d, a->x, a->gamma, a->beta, a->y, a->running_mean, a->running_var,
                                            a->save_mean, a->save_invstd);
}
static int w_batchnorm_forward_train(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                     const float *beta, float *y, float *running_mean, float *running_var,
                                     float *save_mean, float *save_invstd)
{
    DISPATCH(batchnorm_forward_train, {*d, x, gamma, beta, y, running_mean, running_var, save_mean, save_invstd});
}

typedef struct {
    eng_norm_desc d;
    const float *x, *gamma, *beta, *running_mean, *running_var;
    float *y;
} a_batchnorm_forward_eval;
RUN(batchnorm_forward_eval)
{
    A(batchnorm_forward_eval);
    return in->ops->batchnorm_forward_eval(in, &a->d, a->x, a->gamma, a->beta, a->running_mean, a->running_var, a->y);
}
static int w_batchnorm_forward_eval(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                    const float *beta, const float *running_mean, const float *running_var, float *y)
{
    DISPATCH(batchnorm_forward_eval, {*d, x, gamma, beta, running_mean, running_var, y});
}

typedef struct {
    eng_norm_desc d;
    const float *x, *dy, *gamma, *save_mean, *save_invstd;
    float *dx, *dgamma, *dbeta;
} a_batchnorm_backward;
RUN(batchnorm_backward)
{
    A(batchnorm_backward);
    return in->ops->batchnorm_backward(in, &a->d, a->x, a->dy, a->gamma, a->save_mean, a->save_invstd, a->dx,
                                       a->dgamma, a->dbeta);
}
static int w_batchnorm_backward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                                const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                float *dgamma, float *dbeta)
{
    DISPATCH(batchnorm_backward, {*d, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta});
}

typedef struct {
    eng_norm_desc d;
    const float *x, *gamma, *beta;
    float *y, *save_mean, *save_rstd;
} a_layernorm_forward;
RUN(layernorm_forward)
{
    A(layernorm_forward);
    return in->ops->layernorm_forward(in, &a->d, a->x, a->gamma, a->beta, a->y, a->save_mean, a->save_rstd);
}
static int w_layernorm_forward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                               const float *beta, float *y, float *save_mean, float *save_rstd)
{
    DISPATCH(layernorm_forward, {*d, x, gamma, beta, y, save_mean, save_rstd});
}

typedef struct {
    eng_norm_desc d;
    const float *x, *dy, *gamma, *save_mean, *save_rstd;
    float *dx, *dgamma, *dbeta;
} a_layernorm_backward;
RUN(layernorm_backward)
{
    A(layernorm_backward);
    return in->ops->layernorm_backward(in, &a->d, a->x, a->dy, a->gamma, a->save_mean, a->save_rstd, a->dx,
                                       a->dgamma, a->dbeta);
}
static int w_layernorm_backward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                                const float *gamma, const float *save_mean, const float *save_rstd, float *dx,
                                float *dgamma, float *dbeta)
{
    DISPATCH(layernorm_backward, {*d, x, dy, gamma, save_mean, save_rstd, dx, dgamma, dbeta});
}

typedef struct { eng_act kind; float slope; int64_t n; const float *x; float *y; } a_act_forward;
RUN(act_forward) { A(act_forward); return in->ops->act_forward(in, a->kind, a->slope, a->n, a->x, a->y); }
static int w_act_forward(eng_backend *b, eng_act kind, float slope, int64_t n, const float *x, float *y)
{
    DISPATCH(act_forward, {kind, slope, n, x, y});
}

typedef struct { eng_act kind; float slope; int64_t n; const float *x, *y, *dy; float *dx; } a_act_backward;
RUN(act_backward)
{
    A(act_backward);
    return in->ops->act_backward(in, a->kind, a->slope, a->n, a->x, a->y, a->dy, a->dx);
}
static int w_act_backward(eng_backend *b, eng_act kind, float slope, int64_t n, const float *x, const float *y,
                          const float *dy, float *dx)
{
    DISPATCH(act_backward, {kind, slope, n, x, y, dy, dx});
}

typedef struct { int64_t rows, n; const float *x; float *y; } a_softmax_forward;
RUN(softmax_forward) { A(softmax_forward); return in->ops->softmax_forward(in, a->rows, a->n, a->x, a->y); }
static int w_softmax_forward(eng_backend *b, int64_t rows, int64_t n, const float *x, float *y)
{
    DISPATCH(softmax_forward, {rows, n, x, y});
}

typedef struct { int64_t rows, n; const float *y, *dy; float *dx; } a_softmax_backward;
RUN(softmax_backward) { A(softmax_backward); return in->ops->softmax_backward(in, a->rows, a->n, a->y, a->dy, a->dx); }
static int w_softmax_backward(eng_backend *b, int64_t rows, int64_t n, const float *y, const float *dy, float *dx)
{
    DISPATCH(softmax_backward, {rows, n, y, dy, dx});
}

typedef struct { eng_xent_desc d; const float *logits; const int32_t *labels; float *dlogits; double *acc; } a_xent;
RUN(xent) { A(xent); return in->ops->xent(in, &a->d, a->logits, a->labels, a->dlogits, a->acc); }
static int w_xent(eng_backend *b, const eng_xent_desc *d, const float *logits, const int32_t *labels, float *dlogits,
                  double *acc)
{
    DISPATCH(xent, {*d, logits, labels, dlogits, acc});
}

typedef struct { int64_t n; float p; uint64_t key, counter; const float *x; float *y; } a_dropout;
RUN(dropout) { A(dropout); return in->ops->dropout(in, a->n, a->p, a->key, a->counter, a->x, a->y); }
static int w_dropout(eng_backend *b, int64_t n, float p, uint64_t key, uint64_t counter, const float *x, float *y)
{
    DISPATCH(dropout, {n, p, key, counter, x, y});
}

typedef struct { int64_t n, c, h, w, p; const float *x; float *y; } a_patchify_forward;
RUN(patchify_forward)
{
    A(patchify_forward);
    return in->ops->patchify_forward(in, a->n, a->c, a->h, a->w, a->p, a->x, a->y);
}
static int w_patchify_forward(eng_backend *b, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *x,
                              float *y)
{
    DISPATCH(patchify_forward, {n, c, h, w, p, x, y});
}

typedef struct { int64_t n, c, h, w, p; const float *dy; float *dx; } a_patchify_backward;
RUN(patchify_backward)
{
    A(patchify_backward);
    return in->ops->patchify_backward(in, a->n, a->c, a->h, a->w, a->p, a->dy, a->dx);
}
static int w_patchify_backward(eng_backend *b, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *dy,
                               float *dx)
{
    DISPATCH(patchify_backward, {n, c, h, w, p, dy, dx});
}

typedef struct {
    eng_batch_desc d;
    const uint8_t *images;
    const int32_t *all_labels, *idx;
    const int16_t *aug;
    float *x;
    int32_t *labels;
} a_batch_gather;
RUN(batch_gather)
{
    A(batch_gather);
    return in->ops->batch_gather(in, &a->d, a->images, a->all_labels, a->idx, a->aug, a->x, a->labels);
}
static int w_batch_gather(eng_backend *b, const eng_batch_desc *d, const uint8_t *images, const int32_t *all_labels,
                          const int32_t *idx, const int16_t *aug, float *x, int32_t *labels)
{
    DISPATCH(batch_gather, {*d, images, all_labels, idx, aug, x, labels});
}

/* The optimiser steps: a replay takes the launch's scalars, as the GPU's
 * captured kernels read them from the device block. */
typedef struct { int64_t n; float *p; const float *g; float *m, *v; eng_adam_args args; } a_adam_step;
RUN(adam_step)
{
    A(adam_step);
    return in->ops->adam_step(in, a->n, a->p, a->g, a->m, a->v, s ? &s->adam : &a->args);
}
static int w_adam_step(eng_backend *b, int64_t n, float *p, const float *g, float *m, float *v,
                       const eng_adam_args *args)
{
    DISPATCH(adam_step, {n, p, g, m, v, *args});
}

typedef struct { int64_t n; float *p; const float *g; float *buf; eng_sgd_args args; } a_sgd_step;
RUN(sgd_step) { A(sgd_step); return in->ops->sgd_step(in, a->n, a->p, a->g, a->buf, s ? &s->sgd : &a->args); }
static int w_sgd_step(eng_backend *b, int64_t n, float *p, const float *g, float *buf, const eng_sgd_args *args)
{
    DISPATCH(sgd_step, {n, p, g, buf, *args});
}

typedef struct { int64_t n; const float *x; double *sumsq; } a_sumsq;
RUN(sumsq) { A(sumsq); return in->ops->sumsq(in, a->n, a->x, a->sumsq); }
static int w_sumsq(eng_backend *b, int64_t n, const float *x, double *sumsq) { DISPATCH(sumsq, {n, x, sumsq}); }

typedef struct { int64_t n; float *g; const double *sumsq; float max_norm; } a_clip_by_norm;
RUN(clip_by_norm) { A(clip_by_norm); return in->ops->clip_by_norm(in, a->n, a->g, a->sumsq, a->max_norm); }
static int w_clip_by_norm(eng_backend *b, int64_t n, float *g, const double *sumsq, float max_norm)
{
    DISPATCH(clip_by_norm, {n, g, sumsq, max_norm});
}

/* ---- memory: refused while capturing ---- */

static int w_alloc(eng_backend *b, size_t bytes, void **out)
{
    *out = NULL;
    int rc = host_op(b, "alloc", 'A');
    return rc < 0 ? rc : impl_of(b)->in->ops->alloc(impl_of(b)->in, bytes, out);
}

static void w_free(eng_backend *b, void *p)
{
    if (!p)
        return;
    if (host_op(b, "free", 'F') < 0)
        return; /* the memory stays allocated, the capture fails (as on the GPU) */
    impl_of(b)->in->ops->free(impl_of(b)->in, p);
}

static int w_upload(eng_backend *b, void *dst, const void *src, size_t bytes)
{
    int rc = host_op(b, "upload", 'U');
    return rc < 0 ? rc : impl_of(b)->in->ops->upload(impl_of(b)->in, dst, src, bytes);
}

static int w_download(eng_backend *b, void *dst, const void *src, size_t bytes)
{
    int rc = host_op(b, "download", 'D');
    return rc < 0 ? rc : impl_of(b)->in->ops->download(impl_of(b)->in, dst, src, bytes);
}

static int w_sync(eng_backend *b)
{
    int rc = host_op(b, "sync", 'S');
    return rc < 0 ? rc : impl_of(b)->in->ops->sync(impl_of(b)->in);
}

/* ---- capture ---- */

static int w_graph_begin(eng_backend *b)
{
    rec_impl *r = impl_of(b);
    if (r->capturing)
        return eng_error(ENG_EINVAL, "rec backend: capture already open");
    r->st.begins++;
    log_event(r, 'B');
    r->capturing = true;
    r->err = 0;
    r->msg[0] = '\0';
    r->n = 0;
    r->optimiser_ops = 0;
    return 0;
}

static int w_graph_end(eng_backend *b, void **out)
{
    rec_impl *r = impl_of(b);
    *out = NULL;
    if (!r->capturing)
        return eng_error(ENG_EINVAL, "rec backend: no capture is open");
    r->capturing = false;
    r->st.ends++;
    log_event(r, 'E');
    r->st.dropouts_recorded += r->dropouts;
    r->dropouts = 0;
    if (r->err) {
        r->st.failed_captures++;
        return eng_error(r->err, "rec backend: capture failed at %s", r->msg);
    }
    rec_graph *g = calloc(1, sizeof *g);
    rec_call *calls = malloc((size_t)(r->n ? r->n : 1) * sizeof *calls);
    if (!g || !calls) {
        free(g);
        free(calls);
        r->st.failed_captures++;
        return eng_error(ENG_ENOMEM, "rec backend: out of memory");
    }
    memcpy(calls, r->calls, (size_t)r->n * sizeof *calls);
    *g = (rec_graph){.owner = r, .calls = calls, .n = r->n, .has_optimiser = r->optimiser_ops > 0};
    r->st.recorded = r->n;
    r->st.optimiser_ops = r->optimiser_ops;
    r->st.graphs_live++;
    *out = g;
    return 0;
}

static int w_graph_launch(eng_backend *b, void *graph, const eng_step_scalars *s)
{
    rec_impl *r = impl_of(b);
    rec_graph *g = graph;
    if (!g || g->owner != r)
        return eng_error(ENG_EINVAL, "rec backend: not a graph of this backend");
    if (r->capturing)
        return eng_error(ENG_EINVAL, "rec backend: launch while capturing");
    if (g->has_optimiser && !s)
        return eng_error(ENG_EINVAL, "rec backend: the graph holds an optimiser step; launch needs its scalars");
    r->st.launches++;
    log_event(r, 'L');
    for (int64_t i = 0; i < g->n; i++) {
        int rc = g->calls[i].run(r->in, g->calls[i].a.bytes, r->opt.frozen_scalars ? NULL : s);
        if (rc < 0)
            return rc;
        r->st.replayed_ops++;
    }
    return 0;
}

static void w_graph_free(eng_backend *b, void *graph)
{
    rec_graph *g = graph;
    if (!g)
        return;
    impl_of(b)->st.frees++;
    impl_of(b)->st.graphs_live--;
    free(g->calls);
    free(g);
}

static void w_destroy(eng_backend *b)
{
    rec_impl *r = impl_of(b);
    eng_backend_free(r->in);
    free(r->calls);
    free(r->st.log);
    free(r);
    free(b);
}

int rec_backend_new(int threads, const rec_options *opt, eng_backend **out)
{
    *out = NULL;
    eng_backend *b = calloc(1, sizeof *b);
    rec_impl *r = calloc(1, sizeof *r);
    char *log = malloc(REC_LOG_MAX);
    if (!b || !r || !log) {
        free(b);
        free(r);
        free(log);
        return eng_error(ENG_ENOMEM, "rec backend: out of memory");
    }
    int rc = eng_cpu_backend_new(threads, &r->in);
    if (rc < 0) {
        free(b);
        free(r);
        free(log);
        return rc;
    }
    log[0] = '\0';
    r->st.log = log;
    if (opt)
        r->opt = *opt;
    b->ops = &rec_ops;
    b->graph = &rec_graph_ops;
    b->kind = r->opt.kind;
    b->precision = ENG_PREC_FP32;
    b->threads = r->in->threads;
    snprintf(b->name, sizeof b->name, "rec");
    b->impl = r;
    *out = b;
    return 0;
}

const rec_stats *rec_backend_stats(eng_backend *b) { return &impl_of(b)->st; }

static const eng_backend_ops rec_ops = {
    .destroy = w_destroy,
    .alloc = w_alloc,
    .free = w_free,
    .upload = w_upload,
    .download = w_download,
    .copy = w_copy,
    .fill = w_fill,
    .sync = w_sync,
    .gemm = w_gemm,
    .bias_add = w_bias_add,
    .bias_grad = w_bias_grad,
    .add = w_add,
    .copy_2d = w_copy_2d,
    .transpose = w_transpose,
    .mean_lastdim_forward = w_mean_lastdim_forward,
    .mean_lastdim_backward = w_mean_lastdim_backward,
    .conv2d_workspace = w_conv2d_workspace,
    .conv2d_forward = w_conv2d_forward,
    .conv2d_backward = w_conv2d_backward,
    .pool_forward = w_pool_forward,
    .pool_backward = w_pool_backward,
    .batchnorm_forward_train = w_batchnorm_forward_train,
    .batchnorm_forward_eval = w_batchnorm_forward_eval,
    .batchnorm_backward = w_batchnorm_backward,
    .layernorm_forward = w_layernorm_forward,
    .layernorm_backward = w_layernorm_backward,
    .act_forward = w_act_forward,
    .act_backward = w_act_backward,
    .softmax_forward = w_softmax_forward,
    .softmax_backward = w_softmax_backward,
    .xent = w_xent,
    .dropout = w_dropout,
    .patchify_forward = w_patchify_forward,
    .patchify_backward = w_patchify_backward,
    .batch_gather = w_batch_gather,
    .adam_step = w_adam_step,
    .sgd_step = w_sgd_step,
    .sumsq = w_sumsq,
    .clip_by_norm = w_clip_by_norm,
};

static const eng_graph_ops rec_graph_ops = {
    .begin = w_graph_begin, .end = w_graph_end, .launch = w_graph_launch, .free = w_graph_free};
