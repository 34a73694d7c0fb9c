/* Tests of the CPU backend (engine/cpu/): every operation of backend.h
 * against the naive double-precision references of cpu_ref.c; every
 * backward pass against central finite differences of those references;
 * optimiser steps against steps computed by hand; dropout against
 * eng_philox_uniform; determinism (repeat runs, and thread counts where the
 * backend promises independence).
 *
 * Tolerances. Central differences in double with h = 1e-5 on inputs of
 * order 1 are accurate to about 1e-9 of the gradient's scale (truncation
 * h^2 f''' ~ 1e-10, rounding 1e-16 |L| / h ~ 1e-10). The backend computes
 * in float32 (unit roundoff 6e-8); a gradient entry sums at most a few
 * hundred products here, so its error stays around 1e-6 of the gradient's
 * scale. We therefore allow 1e-5 for elementwise ops and 1e-4 for ops that
 * reduce (conv, GEMM, norms, softmax), errors normalised by the largest
 * reference entry. Forward values are compared per element, relative to
 * max(|ref|, 5% of the largest |ref|) so that near-zero sums of random terms
 * do not dominate.
 *
 * Run one group only: test_cpu_ops PATTERN (cmocka test filter), e.g. for
 * valgrind: test_cpu_ops 'test_pool*'. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ref.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/rng.h"

static eng_backend *B;  /* 2 threads */
static eng_backend *B1; /* 1 thread */

/* ---- test data: a small xorshift generator, independent of engine/rng ---- */

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static void rseed(uint64_t s) { rs = s * 0x2545F4914F6CDD1Dull + 1; }
static double urand(void)
{
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return (double)((rs * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- buffers: backend memory and host doubles, freed after each test ---- */

#define MAX_BUFS 512
static void *bk_bufs[MAX_BUFS], *host_bufs[MAX_BUFS];
static int n_bk, n_host;

static float *fbuf(int64_t n)
{
    float *p = NULL;
    assert_int_equal(eng_alloc_floats(B, n, &p), 0);
    assert_true(n_bk < MAX_BUFS);
    bk_bufs[n_bk++] = p;
    return p;
}

static void *hbuf(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    assert_non_null(p);
    assert_true(n_host < MAX_BUFS);
    host_bufs[n_host++] = p;
    return p;
}

static double *dbuf(int64_t n) { return hbuf((size_t)n * sizeof(double)); }

/* n random doubles in [lo, hi), rounded to float so that the reference and
 * the backend see the same inputs. */
static double *drand_buf(int64_t n, double lo, double hi)
{
    double *d = dbuf(n);
    for (int64_t i = 0; i < n; i++)
        d[i] = (double)(float)(lo + (hi - lo) * urand());
    return d;
}

static float *to_f(const double *d, int64_t n)
{
    float *f = fbuf(n);
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)d[i];
    return f;
}

static double *to_d(const float *f, int64_t n)
{
    double *d = dbuf(n);
    for (int64_t i = 0; i < n; i++)
        d[i] = f[i];
    return d;
}

static int teardown_bufs(void **state)
{
    (void)state;
    for (int i = 0; i < n_bk; i++)
        B->ops->free(B, bk_bufs[i]);
    for (int i = 0; i < n_host; i++)
        free(host_bufs[i]);
    n_bk = n_host = 0;
    return 0;
}

static int setup_seed(void **state)
{
    (void)state;
    rseed(12345);
    return 0;
}

/* ---- comparisons ---- */

static double max_abs(const double *r, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(r[i]));
    return m;
}

/* max_i |got_i - ref_i| / max(|ref_i|, floor_frac * max|ref|) */
static double rel_err_floor(const float *got, const double *ref, int64_t n, double floor_frac)
{
    const double fl = fmax(floor_frac * max_abs(ref, n), 1e-30);
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - ref[i]) / fmax(fabs(ref[i]), fl);
        if (!(d <= e)) /* also catches NaN */
            e = isnan(d) ? INFINITY : d;
    }
    return e;
}

static double rel_err(const float *got, const double *ref, int64_t n) { return rel_err_floor(got, ref, n, 0.05); }

#define CHECK_CLOSE(what, got, ref, n, tol)                                                                       \
    do {                                                                                                          \
        const double e_ = rel_err((got), (ref), (n));                                                             \
        print_message("    %-40s err %.2e\n", (what), e_);                                                        \
        if (!(e_ <= (tol)))                                                                                       \
            fail_msg("%s: relative error %.3e exceeds %.1e", (what), e_, (double)(tol));                          \
    } while (0)

/* ---- central differences of double references ---- */

#define FD_H 1e-5

typedef void (*ref_fwd)(void *ctx, double *out);

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Checks got[0..nv) = dL/dv for L = sum r * f(ctx), f reading v through
 * ctx, by central differences on all entries, or on `max` random ones.
 * Returns the error normalised by the largest difference quotient. */
static double grad_err(ref_fwd f, void *ctx, double *v, int64_t nv, const double *r, int64_t nout, const float *got,
                       int64_t max)
{
    double *out = malloc((size_t)nout * sizeof *out);
    int64_t *idx = malloc((size_t)nv * sizeof *idx);
    double *g = malloc((size_t)nv * sizeof *g);
    assert_true(out && idx && g);
    int64_t m = 0;
    for (int64_t j = 0; j < nv; j++)
        idx[m++] = j;
    if (m > max) { /* a random subset, without repeats */
        for (int64_t j = 0; j < max; j++) {
            const int64_t k = j + (int64_t)(urand() * (double)(m - j));
            const int64_t t = idx[j];
            idx[j] = idx[k];
            idx[k] = t;
        }
        m = max;
    }
    double scale = 0.0, e = 0.0;
    for (int64_t t = 0; t < m; t++) {
        const int64_t j = idx[t];
        const double save = v[j];
        v[j] = save + FD_H;
        f(ctx, out);
        const double lp = dot(r, out, nout);
        v[j] = save - FD_H;
        f(ctx, out);
        const double lm = dot(r, out, nout);
        v[j] = save;
        g[t] = (lp - lm) / (2.0 * FD_H);
        scale = fmax(scale, fabs(g[t]));
    }
    for (int64_t t = 0; t < m; t++) {
        const double d = fabs((double)got[idx[t]] - g[t]);
        e = isnan(d) ? INFINITY : fmax(e, d);
    }
    free(out);
    free(idx);
    free(g);
    return e / fmax(scale, 1e-12);
}

#define CHECK_GRAD(what, f, ctx, v, nv, r, nout, got, max, tol)                                                   \
    do {                                                                                                          \
        const double e_ = grad_err((f), (ctx), (v), (nv), (r), (nout), (got), (max));                            \
        print_message("    %-40s grad err %.2e\n", (what), e_);                                                   \
        if (!(e_ <= (tol)))                                                                                       \
            fail_msg("%s: gradient error %.3e exceeds %.1e", (what), e_, (double)(tol));                          \
    } while (0)

/* =========================== backend basics =========================== */

static void test_backend_basics(void **state)
{
    (void)state;
    const eng_backend_ops *o = B->ops;
    const void *fns[] = {
        (void *)o->destroy, (void *)o->alloc, (void *)o->free, (void *)o->upload, (void *)o->download,
        (void *)o->copy, (void *)o->fill, (void *)o->sync, (void *)o->gemm, (void *)o->bias_add,
        (void *)o->bias_grad, (void *)o->add, (void *)o->copy_2d, (void *)o->transpose,
        (void *)o->mean_lastdim_forward, (void *)o->mean_lastdim_backward, (void *)o->conv2d_workspace, (void *)o->conv2d_keep, (void *)o->conv2d_blocked, (void *)o->pool_blocked, (void *)o->pool_keep,
        (void *)o->conv2d_forward, (void *)o->conv2d_backward, (void *)o->pool_forward, (void *)o->pool_backward,
        (void *)o->batchnorm_forward_train, (void *)o->batchnorm_forward_eval, (void *)o->batchnorm_backward,
        (void *)o->layernorm_forward, (void *)o->layernorm_backward, (void *)o->act_forward,
        (void *)o->act_backward, (void *)o->softmax_forward, (void *)o->softmax_backward, (void *)o->xent,
        (void *)o->dropout, (void *)o->patchify_forward, (void *)o->patchify_backward, (void *)o->batch_gather,
        (void *)o->adam_step, (void *)o->sgd_step, (void *)o->sumsq, (void *)o->clip_by_norm,
        (void *)o->kernels_record, (void *)o->kernels_restore, (void *)o->bias_act, (void *)o->bias_residual,
        (void *)o->batchnorm_relu_forward_train, (void *)o->batchnorm_relu_forward_eval,
        (void *)o->batchnorm_relu_backward, (void *)o->pool_relu_backward, (void *)o->layernorm_backward_add, (void *)o->act_bias_backward, (void *)o->layernorm_forward_bf16,
        (void *)o->bias_act_bf16, (void *)o->act_bias_backward_bf16, (void *)o->bias_grad_bf16,
    };
    _Static_assert(sizeof fns / sizeof fns[0] == sizeof(eng_backend_ops) / sizeof(void (*)(void)),
                   "every operation is listed");
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        assert_non_null(fns[i]);
    assert_int_equal(B->kind, ENG_DEVICE_CPU);
    assert_string_equal(B->name, "cpu");
    assert_int_equal(B->threads, 2);
    assert_int_equal(B1->threads, 1);

    /* alloc: aligned, zeroed; 0 bytes still gives a pointer */
    for (size_t bytes = 0; bytes < 3000; bytes += 999) {
        unsigned char *p = NULL;
        assert_int_equal(o->alloc(B, bytes, (void **)&p), 0);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 64, 0);
        for (size_t i = 0; i < bytes; i++)
            assert_int_equal(p[i], 0);
        o->free(B, p);
    }
    o->free(B, NULL);

    /* upload / copy / download / fill / sync */
    float host[100], back[100];
    for (int i = 0; i < 100; i++)
        host[i] = (float)i * 0.5f - 7.0f;
    float *a = fbuf(100), *c = fbuf(100);
    assert_int_equal(o->upload(B, a, host, sizeof host), 0);
    assert_int_equal(o->copy(B, c, a, sizeof host), 0);
    assert_int_equal(o->download(B, back, c, sizeof back), 0);
    assert_memory_equal(host, back, sizeof host);
    assert_int_equal(o->fill(B, c + 10, 80, 3.25f), 0);
    for (int i = 0; i < 100; i++)
        assert_true(c[i] == (i >= 10 && i < 90 ? 3.25f : host[i]));
    float *big = fbuf(200000);
    assert_int_equal(o->fill(B, big, 200000, -1.5f), 0);
    for (int i = 0; i < 200000; i++)
        assert_true(big[i] == -1.5f);
    assert_int_equal(o->sync(B), 0);

    /* eng_alloc_floats and eng_backend_free */
    float *z = NULL;
    assert_int_equal(eng_alloc_floats(B, 1000, &z), 0);
    for (int i = 0; i < 1000; i++)
        assert_true(z[i] == 0.0f);
    o->free(B, z);
    eng_clear_error();
    assert_int_equal(eng_alloc_floats(B, -1, &z), ENG_EINVAL);
    assert_null(z);
    assert_non_null(strstr(eng_last_error(), "negative"));
    eng_backend_free(NULL);
    eng_backend *all = NULL;
    assert_int_equal(eng_cpu_backend_new(0, &all), 0); /* all cores */
    assert_true(all->threads >= 1);
    eng_backend_free(all);
    assert_int_equal(eng_cpu_backend_new(1, NULL), ENG_EINVAL);
}

/* Bad arguments are reported as ENG_EINVAL with a message naming the op. */
static void test_argument_checks(void **state)
{
    (void)state;
    const eng_backend_ops *o = B->ops;
    float *x = fbuf(64), *y = fbuf(64);
#define EXPECT_EINVAL(call)                                                                                       \
    do {                                                                                                          \
        eng_clear_error();                                                                                        \
        assert_int_equal((call), ENG_EINVAL);                                                                     \
        assert_non_null(strstr(eng_last_error(), "cpu"));                                                         \
    } while (0)
    EXPECT_EINVAL(o->fill(B, x, -1, 0.0f));
    EXPECT_EINVAL(o->fill(B, NULL, 5, 0.0f));
    eng_gemm_desc gd = {.m = -1, .n = 2, .k = 2, .lda = 2, .ldb = 2, .ldc = 2, .batch = 1, .alpha = 1};
    EXPECT_EINVAL(o->gemm(B, &gd, x, x, y));
    gd = (eng_gemm_desc){.m = 2, .n = 4, .k = 3, .lda = 2, .ldb = 4, .ldc = 4, .batch = 1, .alpha = 1};
    EXPECT_EINVAL(o->gemm(B, &gd, x, x, y)); /* lda < k */
    eng_conv_desc cd = {.n = 1, .c = 1, .h = 5, .w = 5, .k = 1, .kh = 3, .kw = 3, .stride = 1, .pad = 1,
                        .oh = 4, .ow = 5};
    EXPECT_EINVAL(o->conv2d_forward(B, &cd, x, x, NULL, y, y)); /* oh should be 5 */
    eng_pool_desc pd = {.mode = ENG_POOL_MAX, .n = 1, .c = 1, .h = 5, .w = 5, .kh = 2, .kw = 2, .stride = 1, .pad = 2,
                        .oh = 8, .ow = 8};
    EXPECT_EINVAL(o->pool_forward(B, &pd, x, y)); /* pad > kernel / 2 */
    EXPECT_EINVAL(o->act_forward(B, (eng_act)99, 0.0f, 4, x, y));
    EXPECT_EINVAL(o->act_backward(B, ENG_ACT_GELU, 0.0f, 4, NULL, y, x, y)); /* gelu needs x */
    int32_t lab[2] = {0, 7};
    double acc[2] = {0, 0};
    eng_xent_desc xd = {.rows = 2, .classes = 4, .k = 1, .scale = 1};
    EXPECT_EINVAL(o->xent(B, &xd, x, lab, NULL, acc));
    assert_true(acc[0] == 0.0 && acc[1] == 0.0);
    EXPECT_EINVAL(o->dropout(B, 4, 1.5f, 1, 0, x, y));
    EXPECT_EINVAL(o->patchify_forward(B, 1, 1, 6, 6, 4, x, y));
    eng_norm_desc nd = {.outer = 1, .n = 3, .inner = 1, .eps = 1e-5f, .momentum = 0.1f};
    EXPECT_EINVAL(o->batchnorm_forward_train(B, &nd, x, NULL, NULL, y, NULL, NULL, NULL, NULL)); /* 1 value */
    EXPECT_EINVAL(o->transpose(B, 1, 4, 4, x, x));
    eng_adam_args aa = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = 0};
    EXPECT_EINVAL(o->adam_step(B, 4, x, x, y, y, &aa));
#undef EXPECT_EINVAL
}

/* ================================ GEMM ================================ */

static void gemm_case(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t pad, int64_t batch, float alpha,
                      float beta, double tol)
{
    const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const int64_t arows = ta ? k : m, brows = tb ? n : k;
    const int64_t sa = arows * lda + 3, sb = brows * ldb + 1, sc = m * ldc + 2;
    double *A = drand_buf(sa * batch, -1, 1), *Bm = drand_buf(sb * batch, -1, 1), *C = drand_buf(sc * batch, -1, 1);
    float *fA = to_f(A, sa * batch), *fB = to_f(Bm, sb * batch), *fC = to_f(C, sc * batch);
    if (beta == 0.0f) /* beta 0: C is not read, NaN must not leak */
        for (int64_t i = 0; i < sc * batch; i++)
            fC[i] = NAN;
    eng_gemm_desc d = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc,
                       .batch = batch, .stride_a = sa, .stride_b = sb, .stride_c = sc, .alpha = alpha, .beta = beta};
    assert_int_equal(B->ops->gemm(B, &d, fA, fB, fC), 0);
    double *want = dbuf(m * n);
    double worst = 0.0;
    for (int64_t i = 0; i < batch; i++) {
        double *Ci = dbuf(m * ldc);
        memcpy(Ci, C + i * sc, (size_t)(m * ldc) * sizeof(double));
        ref_gemm(ta, tb, m, n, k, alpha, A + i * sa, lda, Bm + i * sb, ldb, beta, Ci, ldc);
        float *gf = fbuf(m * n);
        for (int64_t r = 0; r < m; r++)
            for (int64_t c = 0; c < n; c++) {
                want[r * n + c] = Ci[r * ldc + c];
                gf[r * n + c] = fC[i * sc + r * ldc + c];
            }
        worst = fmax(worst, rel_err(gf, want, m * n));
        /* the padding columns of C are untouched */
        for (int64_t r = 0; r < m; r++)
            for (int64_t c = n; c < ldc; c++) {
                const float v = fC[i * sc + r * ldc + c];
                assert_true(beta == 0.0f ? isnan(v) : v == (float)C[i * sc + r * ldc + c]);
            }
    }
    char what[96];
    snprintf(what, sizeof what, "gemm ta%d tb%d %lldx%lldx%lld batch %lld", ta, tb, (long long)m, (long long)n,
             (long long)k, (long long)batch);
    print_message("    %-40s err %.2e\n", what, worst);
    if (!(worst <= tol))
        fail_msg("%s: error %.3e", what, worst);
}

static void test_gemm(void **state)
{
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_case(ta, tb, 7, 5, 9, 3, 1, 0.7f, 0.3f, 1e-5);
            gemm_case(ta, tb, 6, 4, 5, 0, 3, 1.0f, 0.0f, 1e-5); /* batched, threaded BLAS */
        }
    gemm_case(false, true, 8, 8, 8, 1, 12, 1.0f, 1.0f, 1e-5);   /* many small: one per thread */
    gemm_case(true, false, 64, 48, 300, 0, 1, 1.0f, 0.0f, 1e-4); /* long reduction */
    /* the AVX-512 long-reduction form (cpu_gemm_tn.c; v3 and v2 run
     * OpenBLAS): rows past its 6-row blocks, a column tail past 16 and
     * padded rows; a mixer channel weight gradient's shape */
    gemm_case(true, false, 13, 37, 3001, 3, 1, 0.7f, 0.3f, 1e-4);
    gemm_case(true, false, 128, 128, 8192, 0, 1, 1.0f, 0.0f, 1e-4);
    gemm_case(true, false, 20, 70, 4099, 5, 1, 1.0f, 1.0f, 1e-4);
    /* k = 0: C = beta C */
    float *C = fbuf(6);
    for (int i = 0; i < 6; i++)
        C[i] = (float)i;
    eng_gemm_desc d = {.m = 2, .n = 3, .k = 0, .lda = 1, .ldb = 3, .ldc = 3, .batch = 1, .alpha = 1, .beta = 0.5f};
    assert_int_equal(B->ops->gemm(B, &d, NULL, NULL, C), 0);
    for (int i = 0; i < 6; i++)
        assert_true(C[i] == 0.5f * (float)i);
}

/* A shared matrix (stride 0) and the batch-reducing form. */
static void gemm_batch_form(bool ta, bool tb, bool reduce, int64_t m, int64_t n, int64_t k, int64_t batch,
                            float alpha, float beta)
{
    const int64_t lda = ta ? m : k, ldb = tb ? k : n, sa = reduce ? m * k : 0, sb = k * n;
    double *A = drand_buf(reduce ? sa * batch : m * k, -1, 1), *Bm = drand_buf(sb * batch, -1, 1);
    const int64_t nc = reduce ? m * n : m * n * batch;
    double *C = drand_buf(nc, -1, 1), *want = dbuf(nc);
    float *fA = to_f(A, reduce ? sa * batch : m * k), *fB = to_f(Bm, sb * batch), *fC = to_f(C, nc);
    eng_gemm_desc d = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = n, .batch = batch,
                       .stride_a = sa, .stride_b = sb, .stride_c = reduce ? 0 : m * n, .alpha = alpha,
                       .beta = beta, .reduce_batch = reduce};
    assert_int_equal(B->ops->gemm(B, &d, fA, fB, fC), 0);
    if (reduce) {
        double *acc = dbuf(m * n), *one = dbuf(m * n);
        for (int64_t i = 0; i < batch; i++) {
            ref_gemm(ta, tb, m, n, k, 1.0, A + i * sa, lda, Bm + i * sb, ldb, 0.0, one, n);
            for (int64_t j = 0; j < m * n; j++)
                acc[j] += one[j];
        }
        for (int64_t j = 0; j < m * n; j++)
            want[j] = alpha * acc[j] + beta * C[j];
    } else {
        for (int64_t i = 0; i < batch; i++) {
            memcpy(want + i * m * n, C + i * m * n, (size_t)(m * n) * sizeof(double));
            ref_gemm(ta, tb, m, n, k, alpha, A, lda, Bm + i * sb, ldb, beta, want + i * m * n, n);
        }
    }
    char what[96];
    snprintf(what, sizeof what, "gemm %s ta%d tb%d %lldx%lldx%lld batch %lld", reduce ? "reduce_batch" : "shared A",
             ta, tb, (long long)m, (long long)n, (long long)k, (long long)batch);
    CHECK_CLOSE(what, fC, want, nc, 1e-4);
}

static void test_gemm_batch_forms(void **state)
{
    (void)state;
    gemm_batch_form(false, false, false, 5, 6, 7, 9, 1.0f, 0.0f);
    gemm_batch_form(true, false, false, 24, 16, 24, 40, 1.0f, 0.5f); /* the mixer's token matmul, W^T */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_batch_form(ta, tb, true, 5, 4, 3, 7, 0.7f, 0.5f);     /* small: summed in turn */
            gemm_batch_form(ta, tb, true, 32, 32, 64, 13, 0.7f, 0.5f); /* partial sums per thread */
        }
    gemm_batch_form(false, true, true, 32, 32, 64, 13, 1.0f, 0.0f);
    /* the AVX-512 lane-sum form (cpu_gemm_reduce.c; v3 and v2 run OpenBLAS):
     * rows of A and B past its 6 x 4 blocks and a column tail past 16, and
     * a mixer token weight gradient's shape */
    gemm_batch_form(false, true, true, 13, 7, 37, 200, 0.7f, 0.5f);
    gemm_batch_form(false, true, true, 64, 64, 128, 9, 1.0f, 0.5f);
    /* reduce_batch is deterministic and, with beta 0, ignores what C held */
    const int64_t m = 16, n = 16, k = 40, batch = 20;
    float *A = to_f(drand_buf(m * k * batch, -1, 1), m * k * batch);
    float *Bm = to_f(drand_buf(k * n * batch, -1, 1), k * n * batch);
    float *C1 = fbuf(m * n), *C2 = fbuf(m * n);
    for (int64_t i = 0; i < m * n; i++)
        C2[i] = NAN;
    eng_gemm_desc d = {.tb = true, .m = m, .n = n, .k = k, .lda = k, .ldb = k, .ldc = n, .batch = batch,
                       .stride_a = m * k, .stride_b = k * n, .alpha = 1.0f, .reduce_batch = true};
    assert_int_equal(B->ops->gemm(B, &d, A, Bm, C1), 0);
    assert_int_equal(B->ops->gemm(B, &d, A, Bm, C2), 0);
    assert_memory_equal(C1, C2, (size_t)(m * n) * sizeof(float));
    /* overlapping outputs without reduce_batch are refused */
    d.reduce_batch = false;
    d.stride_c = 0;
    eng_clear_error();
    assert_int_equal(B->ops->gemm(B, &d, A, Bm, C1), ENG_EINVAL);
}

/* ===================== bias, add, copy, transpose, mean ===================== */

typedef struct bias_ctx {
    int64_t outer, n, inner;
    const double *y0;
    double *bias;
} bias_ctx;

static void bias_fwd(void *c, double *out)
{
    bias_ctx *k = c;
    ref_bias_add(k->outer, k->n, k->inner, k->y0, k->bias, out);
}

static void test_bias(void **state)
{
    (void)state;
    const int64_t shapes[][3] = {{5, 7, 1}, {3, 4, 9}, {40, 16, 100}};
    for (size_t s = 0; s < 3; s++) {
        const int64_t outer = shapes[s][0], n = shapes[s][1], inner = shapes[s][2], tot = outer * n * inner;
        double *y0 = drand_buf(tot, -1, 1), *bias = drand_buf(n, -1, 1), *want = dbuf(tot), *r = drand_buf(tot, -1, 1);
        float *y = to_f(y0, tot), *fb = to_f(bias, n), *fr = to_f(r, tot), *db = fbuf(n);
        assert_int_equal(B->ops->bias_add(B, outer, n, inner, y, fb), 0);
        ref_bias_add(outer, n, inner, y0, bias, want);
        CHECK_CLOSE("bias_add", y, want, tot, 1e-6);
        for (int64_t j = 0; j < n; j++)
            db[j] = 99.0f; /* overwritten, not accumulated */
        assert_int_equal(B->ops->bias_grad(B, outer, n, inner, fr, db), 0);
        bias_ctx ctx = {outer, n, inner, y0, bias};
        CHECK_GRAD("bias_grad (backward of bias_add)", bias_fwd, &ctx, bias, n, r, tot, db, n, 1e-5);
    }
}

static void test_add_copy2d(void **state)
{
    (void)state;
    const int64_t n = 70001;
    double *a = drand_buf(n, -1, 1), *c = drand_buf(n, -1, 1), *want = dbuf(n);
    for (int64_t i = 0; i < n; i++)
        want[i] = (double)((float)a[i] + (float)c[i]);
    float *fa = to_f(a, n), *fc = to_f(c, n), *y = fbuf(n);
    assert_int_equal(B->ops->add(B, n, fa, fc, y), 0);
    CHECK_CLOSE("add", y, want, n, 0.0);
    assert_int_equal(B->ops->add(B, n, fa, fc, fa), 0); /* y aliases a */
    CHECK_CLOSE("add in place (y = a)", fa, want, n, 0.0);
    float *fa2 = to_f(a, n);
    assert_int_equal(B->ops->add(B, n, fa2, fc, fc), 0); /* y aliases c */
    CHECK_CLOSE("add in place (y = c)", fc, want, n, 0.0);

    const int64_t rows = 5, cols = 7, lds = 10, ldd = 12;
    float *src = fbuf(rows * lds), *dst = fbuf(rows * ldd);
    for (int64_t i = 0; i < rows * lds; i++)
        src[i] = (float)i;
    for (int64_t i = 0; i < rows * ldd; i++)
        dst[i] = -1.0f;
    assert_int_equal(B->ops->copy_2d(B, rows, cols, src, lds, dst, ldd), 0);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < ldd; k++)
            assert_true(dst[r * ldd + k] == (k < cols ? src[r * lds + k] : -1.0f));
}

typedef struct tr_ctx {
    int64_t batch, rows, cols;
    double *x;
} tr_ctx;

static void tr_fwd(void *c, double *out)
{
    tr_ctx *k = c;
    ref_transpose(k->batch, k->rows, k->cols, k->x, out);
}

static void test_transpose(void **state)
{
    (void)state;
    const int64_t shapes[][3] = {{3, 37, 45}, {4, 100, 128}, {2, 1, 9}};
    for (size_t s = 0; s < 3; s++) {
        const int64_t bt = shapes[s][0], rows = shapes[s][1], cols = shapes[s][2], tot = bt * rows * cols;
        double *x = drand_buf(tot, -1, 1), *want = dbuf(tot), *r = drand_buf(tot, -1, 1);
        float *fx = to_f(x, tot), *y = fbuf(tot), *fr = to_f(r, tot), *back = fbuf(tot);
        assert_int_equal(B->ops->transpose(B, bt, rows, cols, fx, y), 0);
        ref_transpose(bt, rows, cols, x, want);
        CHECK_CLOSE("transpose", y, want, tot, 0.0);
        /* backward = transpose back: the adjoint, <T x, r> = <x, T' r> */
        assert_int_equal(B->ops->transpose(B, bt, cols, rows, fr, back), 0);
        double l1 = 0.0, l2 = 0.0;
        for (int64_t i = 0; i < tot; i++) {
            l1 += (double)y[i] * r[i];
            l2 += x[i] * (double)back[i];
        }
        assert_true(fabs(l1 - l2) <= 1e-12 * (fabs(l1) + 1.0));
        tr_ctx ctx = {bt, rows, cols, x};
        CHECK_GRAD("transpose backward", tr_fwd, &ctx, x, tot, r, tot, back, 200, 1e-5);
        assert_int_equal(B->ops->transpose(B, bt, cols, rows, y, back), 0);
        assert_memory_equal(back, fx, (size_t)tot * sizeof(float));
    }
}

typedef struct mean_ctx {
    int64_t rows, n;
    double *x;
} mean_ctx;

static void mean_fwd(void *c, double *out)
{
    mean_ctx *k = c;
    ref_mean_lastdim(k->rows, k->n, k->x, out);
}

static void test_mean_lastdim(void **state)
{
    (void)state;
    const int64_t rows = 33, n = 17;
    double *x = drand_buf(rows * n, -1, 1), *want = dbuf(rows), *r = drand_buf(rows, -1, 1);
    float *fx = to_f(x, rows * n), *y = fbuf(rows), *fr = to_f(r, rows), *dx = fbuf(rows * n);
    assert_int_equal(B->ops->mean_lastdim_forward(B, rows, n, fx, y), 0);
    ref_mean_lastdim(rows, n, x, want);
    CHECK_CLOSE("mean_lastdim forward", y, want, rows, 1e-6);
    assert_int_equal(B->ops->mean_lastdim_backward(B, rows, n, fr, dx), 0);
    mean_ctx ctx = {rows, n, x};
    CHECK_GRAD("mean_lastdim backward", mean_fwd, &ctx, x, rows * n, r, rows, dx, 1 << 30, 1e-5);
}

/* ================================ conv2d ================================ */

typedef struct conv_ctx {
    int64_t n, c, h, w, k, kh, stride, pad;
    double *x, *wt, *bias;
} conv_ctx;

static void conv_fwd(void *cp, double *out)
{
    conv_ctx *k = cp;
    ref_conv2d(k->n, k->c, k->h, k->w, k->k, k->kh, k->kh, k->stride, k->pad, k->x, k->wt, k->bias, out);
}

typedef struct conv_case {
    int64_t n, c, h, w, k, kh, stride, pad;
    bool bias;
} conv_case;

/* On backend B, or on Bconv where set (oneDNN's kernels forced). */
static eng_backend *Bconv;

static void conv_run(const conv_case *cc, int64_t fd_max)
{
    eng_backend *const Bk = Bconv ? Bconv : B;
    eng_conv_desc d = {.n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w, .k = cc->k, .kh = cc->kh, .kw = cc->kh,
                       .stride = cc->stride, .pad = cc->pad};
    d.oh = ref_out_size(cc->h, cc->kh, cc->stride, cc->pad);
    d.ow = ref_out_size(cc->w, cc->kh, cc->stride, cc->pad);
    const int64_t nx = d.n * d.c * d.h * d.w, nw = d.k * d.c * d.kh * d.kw, ny = d.n * d.k * d.oh * d.ow;
    double *x = drand_buf(nx, -1, 1), *wt = drand_buf(nw, -1, 1), *bias = cc->bias ? drand_buf(d.k, -1, 1) : NULL;
    double *want = dbuf(ny), *r = drand_buf(ny, -1, 1);
    float *fx = to_f(x, nx), *fw = to_f(wt, nw), *fbias = bias ? to_f(bias, d.k) : NULL, *y = fbuf(ny);
    float *fr = to_f(r, ny), *dx = fbuf(nx), *dw = fbuf(nw), *db = fbuf(d.k);
    const size_t wsb = Bk->ops->conv2d_workspace(Bk, &d);
    assert_true(wsb > 0);
    void *ws = NULL;
    assert_int_equal(Bk->ops->alloc(Bk, wsb, &ws), 0);
    bk_bufs[n_bk++] = ws;

    char what[128];
    snprintf(what, sizeof what, "conv n%lld c%lld %lldx%lld k%lld %lldx%lld s%lld p%lld%s", (long long)d.n,
             (long long)d.c, (long long)d.h, (long long)d.w, (long long)d.k, (long long)d.kh, (long long)d.kw,
             (long long)d.stride, (long long)d.pad, bias ? " bias" : "");
    print_message("  %s\n", what);
    assert_int_equal(Bk->ops->conv2d_forward(Bk, &d, fx, fw, fbias, y, ws), 0);
    ref_conv2d(d.n, d.c, d.h, d.w, d.k, d.kh, d.kw, d.stride, d.pad, x, wt, bias, want);
    CHECK_CLOSE("forward", y, want, ny, 1e-4);

    for (int64_t i = 0; i < nx; i++)
        dx[i] = 1234.0f; /* overwritten */
    assert_int_equal(Bk->ops->conv2d_backward(Bk, &d, fx, fw, fr, dx, dw, bias ? db : NULL, ws), 0);
    conv_ctx ctx = {d.n, d.c, d.h, d.w, d.k, d.kh, d.stride, d.pad, x, wt, bias};
    CHECK_GRAD("dx", conv_fwd, &ctx, x, nx, r, ny, dx, fd_max, 1e-4);
    CHECK_GRAD("dw", conv_fwd, &ctx, wt, nw, r, ny, dw, fd_max, 1e-4);
    if (bias)
        CHECK_GRAD("db", conv_fwd, &ctx, bias, d.k, r, ny, db, fd_max, 1e-4);

    /* dx NULL: the weight and bias gradients are the same bits */
    float *dw2 = fbuf(nw), *db2 = fbuf(d.k);
    assert_int_equal(Bk->ops->conv2d_backward(Bk, &d, fx, fw, fr, NULL, dw2, bias ? db2 : NULL, ws), 0);
    assert_memory_equal(dw2, dw, (size_t)nw * sizeof(float));
    if (bias)
        assert_memory_equal(db2, db, (size_t)d.k * sizeof(float));

    /* the workspace of this batch also serves a smaller one */
    if (d.n > 1) {
        eng_conv_desc d1 = d;
        d1.n = d.n - 1;
        assert_true(Bk->ops->conv2d_workspace(Bk, &d1) <= wsb);
        assert_int_equal(Bk->ops->conv2d_forward(Bk, &d1, fx, fw, fbias, y, ws), 0);
        CHECK_CLOSE("forward, batch n-1 in the same workspace", y, want, ny * d1.n / d.n, 1e-4);
    }
}

static void test_conv2d(void **state)
{
    (void)state;
    const conv_case cases[] = {
        {1, 3, 7, 7, 4, 3, 1, 1, true},    /* batch 1 */
        {2, 2, 9, 8, 3, 3, 2, 0, false},   /* stride 2, no padding, odd sizes */
        {2, 3, 9, 7, 2, 3, 2, 1, true},    /* stride 2, pad 1, odd */
        {2, 3, 8, 8, 2, 7, 2, 3, true},    /* the resnet stem's 7x7 s2 p3 */
        {3, 4, 5, 5, 5, 1, 1, 0, true},    /* 1x1: grouped images */
        {2, 3, 32, 32, 4, 1, 1, 0, false}, /* 1x1 on a large image: direct, no im2col */
        {5, 2, 23, 23, 3, 3, 1, 1, true},  /* batch larger than the image group (2 per group) */
        {64, 3, 3, 3, 4, 3, 1, 1, true},   /* 3x3 images: large groups */
        {6, 2, 1, 1, 3, 3, 1, 1, false},   /* 1x1 images through a 3x3 kernel, as the seed CNN's last convs */
        {5, 48, 1, 1, 40, 3, 1, 1, true},  /* the same on two threads: slices of 16 + 24 and 16 + 32 channels */
        {200, 3, 7, 7, 6, 3, 2, 1, true},  /* im2col: 4 groups of 64 images, 2 per thread, the last partial */
        /* stride 1 with rows of 12+ pixels: the direct kernels */
        {3, 3, 13, 17, 5, 3, 1, 1, true},  /* 5 output channels: a partial block of 4; 17 = 16 + 1 pixels */
        {2, 2, 14, 12, 6, 5, 1, 2, false}, /* 5x5 */
        {2, 5, 12, 20, 3, 3, 1, 0, true},  /* no padding */
        {3, 2, 16, 16, 4, 7, 1, 3, true},  /* 7x7, taps in chunks of 3 */
        {1, 3, 12, 12, 8, 3, 1, 1, true},  /* batch 1 */
        /* stride 1 with short rows and 8+ output channels: channel-vectorised */
        {4, 5, 7, 7, 16, 3, 1, 1, true},   /* dx has 5 channels of a 16-block */
        {3, 8, 3, 3, 20, 3, 1, 1, false},  /* 20 = 16 + 4 output channels */
        {2, 3, 6, 5, 9, 5, 1, 2, true},    /* 5x5 on 6x5 */
        {70, 3, 4, 4, 10, 3, 1, 1, true},  /* 6 groups of up to 12 images over the threads */
        {3, 6, 5, 5, 16, 1, 1, 0, true},   /* 1x1 kernel on small images */
        {1, 4, 6, 6, 8, 3, 1, 0, true},    /* batch 1, no padding */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        conv_run(&cases[i], 60);
    /* again on oneDNN's kernels, which the measured choice may not pick here */
    setenv("EPOCHD_KERNELS", "onednn", 1);
    assert_int_equal(eng_cpu_backend_new(2, &Bconv), 0);
    unsetenv("EPOCHD_KERNELS");
    print_message("  on oneDNN's kernels:\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        conv_run(&cases[i], 60);
    eng_backend_free(Bconv);
    Bconv = NULL;
}

/* ================================ pooling ================================ */

typedef struct pool_ctx {
    bool is_max, incl;
    int64_t n, c, h, w, k, stride, pad;
    double *x;
} pool_ctx;

static void pool_fwd(void *cp, double *out)
{
    pool_ctx *k = cp;
    ref_pool(k->is_max, k->incl, k->n, k->c, k->h, k->w, k->k, k->k, k->stride, k->pad, k->x, out);
}

static void pool_run(bool is_max, bool incl, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s,
                     int64_t p)
{
    eng_pool_desc d = {.mode = is_max ? ENG_POOL_MAX : ENG_POOL_AVG, .count_include_pad = incl, .n = n, .c = c,
                       .h = h, .w = w, .kh = k, .kw = k, .stride = s, .pad = p};
    d.oh = ref_out_size(h, k, s, p);
    d.ow = ref_out_size(w, k, s, p);
    const int64_t nx = n * c * h * w, ny = n * c * d.oh * d.ow;
    /* distinct values 0.01 apart (a shuffled grid): no ties, so max pooling
     * is differentiable at x with margin far above the FD step */
    double *x = dbuf(nx);
    for (int64_t i = 0; i < nx; i++)
        x[i] = (double)i;
    for (int64_t i = nx - 1; i > 0; i--) {
        const int64_t j = (int64_t)(urand() * (double)(i + 1));
        const double t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    for (int64_t i = 0; i < nx; i++)
        x[i] = (x[i] - (double)nx / 2) * 0.01;
    double *want = dbuf(ny), *r = drand_buf(ny, -1, 1);
    float *fx = to_f(x, nx), *y = fbuf(ny), *fr = to_f(r, ny), *dx = fbuf(nx);
    char what[128];
    snprintf(what, sizeof what, "%s pool %lldx%lld k%lld s%lld p%lld%s", is_max ? "max" : "avg", (long long)h,
             (long long)w, (long long)k, (long long)s, (long long)p,
             is_max ? "" : (incl ? " count_include_pad" : " exclude_pad"));
    print_message("  %s\n", what);
    assert_int_equal(B->ops->pool_forward(B, &d, fx, y), 0);
    ref_pool(is_max, incl, n, c, h, w, k, k, s, p, x, want);
    CHECK_CLOSE("forward", y, want, ny, 1e-6);
    for (int64_t i = 0; i < nx; i++)
        dx[i] = 77.0f;
    assert_int_equal(B->ops->pool_backward(B, &d, fx, y, fr, dx), 0);
    pool_ctx ctx = {is_max, incl, n, c, h, w, k, s, p, x};
    CHECK_GRAD("backward", pool_fwd, &ctx, x, nx, r, ny, dx, 1 << 30, 1e-5);
    if (is_max) { /* without the forward output, which it then finds again */
        float *dx2 = fbuf(nx);
        assert_int_equal(B->ops->pool_backward(B, &d, fx, NULL, fr, dx2), 0);
        assert_memory_equal(dx2, dx, (size_t)nx * sizeof *dx);
    }
}

static void test_pool(void **state)
{
    (void)state;
    pool_run(true, false, 2, 3, 9, 9, 3, 2, 0);  /* the seed CNN's pool (fast path) */
    pool_run(true, false, 5, 7, 7, 7, 3, 2, 0);  /* small planes pooled in groups, the last one short */
    pool_run(true, false, 3, 100, 3, 3, 3, 2, 0); /* 3x3 -> 1x1, as the seed CNN's last pool */
    pool_run(true, false, 2, 3, 8, 7, 3, 2, 1);  /* the resnet stem's pool, padded */
    pool_run(true, false, 1, 2, 7, 7, 2, 2, 0);
    pool_run(true, false, 1, 2, 6, 5, 2, 1, 1);
    pool_run(false, true, 2, 3, 8, 7, 3, 2, 1);
    pool_run(false, false, 2, 3, 8, 7, 3, 2, 1);
    pool_run(false, false, 1, 2, 5, 6, 2, 1, 1);
    pool_run(false, true, 1, 2, 9, 9, 3, 3, 0);
}

/* Ties: the gradient goes to the first maximum in row-major window order. */
static void test_pool_ties(void **state)
{
    (void)state;
    for (int pad = 0; pad <= 1; pad++) { /* pad 0: fast path; pad 1: general path */
        const int64_t H = 5, W = 5;
        eng_pool_desc d = {.mode = ENG_POOL_MAX, .n = 1, .c = 1, .h = H, .w = W, .kh = 3, .kw = 3, .stride = 2,
                           .pad = pad};
        d.oh = ref_out_size(H, 3, 2, pad);
        d.ow = d.oh;
        float *x = fbuf(H * W), *y = fbuf(d.oh * d.ow), *dy = fbuf(d.oh * d.ow), *dx = fbuf(H * W);
        for (int64_t i = 0; i < H * W; i++)
            x[i] = 0.0f;
        /* the window of output (0, 0) covers rows and columns 0..2 without
         * padding, 0..1 with pad 1; its maximum 5 appears three times and the
         * first in row-major order is (0, 2), respectively (0, 1) */
        int64_t first;
        if (pad == 0) {
            x[1 * W + 0] = 5.0f;
            x[0 * W + 2] = 5.0f;
            x[2 * W + 2] = 5.0f;
            first = 0 * W + 2;
        } else {
            x[1 * W + 0] = 5.0f;
            x[0 * W + 1] = 5.0f;
            x[1 * W + 1] = 5.0f;
            first = 0 * W + 1;
        }
        const int64_t oy0 = 0;
        for (int64_t i = 0; i < d.oh * d.ow; i++)
            dy[i] = 0.0f;
        dy[oy0 * d.ow + oy0] = 1.0f;
        assert_int_equal(B->ops->pool_forward(B, &d, x, y), 0);
        assert_true(y[oy0 * d.ow + oy0] == 5.0f);
        assert_int_equal(B->ops->pool_backward(B, &d, x, y, dy, dx), 0);
        for (int64_t i = 0; i < H * W; i++)
            assert_true(dx[i] == (i == first ? 1.0f : 0.0f));
    }
}

/* -inf everywhere: the gradient goes to the window's first in-bounds
 * element (not into the padding); a NaN wins the window and gets the
 * gradient. */
static void test_pool_special_values(void **state)
{
    (void)state;
    eng_pool_desc d = {.mode = ENG_POOL_MAX, .n = 1, .c = 1, .h = 4, .w = 4, .kh = 3, .kw = 3, .stride = 2,
                       .pad = 1, .oh = 2, .ow = 2};
    float *x = fbuf(16), *y = fbuf(4), *dy = fbuf(4), *dx = fbuf(16);
    for (int i = 0; i < 16; i++)
        x[i] = -INFINITY;
    x[2 * 4 + 3] = NAN; /* only in the window of output (1, 1) */
    for (int i = 0; i < 4; i++)
        dy[i] = (float)(i + 1);
    assert_int_equal(B->ops->pool_forward(B, &d, x, y), 0);
    assert_true(y[0] == -INFINITY && y[1] == -INFINITY && y[2] == -INFINITY && isnan(y[3]));
    assert_int_equal(B->ops->pool_backward(B, &d, x, y, dy, dx), 0);
    /* output (0,0): window rows/cols -1..1 -> first in-bounds (0,0); (0,1): rows -1..1,
     * cols 1..3 -> (0,1); (1,0): rows 1..3, cols -1..1 -> (1,0); (1,1): the NaN at (2,3) */
    float want[16] = {0};
    want[0] = 1.0f;
    want[1] = 2.0f;
    want[4] = 3.0f;
    want[2 * 4 + 3] = 4.0f;
    assert_memory_equal(dx, want, sizeof want);
}

/* A 3x3 max pool at stride 2 over planes {n, c, h, w} with padding pad. */
static eng_pool_desc max_pool_3s2(const int64_t shape[5])
{
    eng_pool_desc d = {.mode = ENG_POOL_MAX, .n = shape[0], .c = shape[1], .h = shape[2], .w = shape[3], .kh = 3,
                       .kw = 3, .stride = 2, .pad = shape[4]};
    d.oh = ref_out_size(d.h, 3, 2, d.pad);
    d.ow = ref_out_size(d.w, 3, 2, d.pad);
    return d;
}

/* The AVX-512 kernel of the 3x3 stride-2 max pool (cpu_pool_s2.c) against
 * the general kernel (x86-64-v2), bit for bit: outputs, and the gradients
 * from either level's kept taps, with and without the relu before the
 * pool. The data has many ties (a few levels), +0 and -0, -inf and NaN,
 * over planes of 8x8 to 32x32, square and not, padded and not, several
 * planes a call (the kernel masks only at a plane's ends). */
static void test_pool_levels(void **state)
{
    (void)state;
    eng_cpu_info info;
    assert_int_equal(eng_cpu_info_get(&info), 0);
    if (strcmp(info.isa_max, "x86-64-v4") != 0)
        skip(); /* no AVX-512 here: the kernel cannot run */
    char was[16];
    snprintf(was, sizeof was, "v%c", info.isa[8]);
    static const int64_t shapes[][5] = {{2, 3, 32, 32, 0}, {1, 5, 31, 29, 0}, {3, 2, 24, 27, 1}, {2, 3, 8, 8, 0},
                                        {1, 3, 9, 17, 1},  {1, 2, 16, 16, 1}, {2, 2, 25, 32, 1}, {1, 4, 32, 24, 0},
                                        {1, 3, 30, 30, 1}, {2, 1, 11, 8, 0}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t n = shapes[si][0], c = shapes[si][1], h = shapes[si][2], w = shapes[si][3];
        const eng_pool_desc d = max_pool_3s2(shapes[si]);
        const int64_t nx = n * c * h * w, ny = n * c * d.oh * d.ow;
        float *x = fbuf(nx), *g = fbuf(ny);
        for (int64_t i = 0; i < nx; i++) {
            const double u = urand();
            x[i] = u < 0.02 ? NAN : u < 0.05 ? -INFINITY : u < 0.15 ? -0.0f : (float)((int)(urand() * 7) - 2) * 0.5f;
        }
        for (int64_t i = 0; i < ny; i++)
            g[i] = (float)(urand() * 2 - 1);
        float *y[2], *dx[2][2];
        const size_t kb = B->ops->pool_keep(B, &d);
        assert_true(kb >= (size_t)ny);
        for (int l = 0; l < 2; l++) { /* v2 (the general kernel), then v4 */
            assert_int_equal(eng_cpu_set_isa(l ? "v4" : "v2"), 0);
            eng_pool_desc dk = d;
            dk.keep = hbuf(kb);
            dk.keep_bytes = kb;
            y[l] = fbuf(ny);
            assert_int_equal(B->ops->pool_forward(B, &dk, x, y[l]), 0);
            for (int relu = 0; relu < 2; relu++) {
                dx[l][relu] = fbuf(nx);
                for (int64_t i = 0; i < nx; i++)
                    dx[l][relu][i] = 77.0f; /* every element is written */
                assert_int_equal((relu ? B->ops->pool_relu_backward : B->ops->pool_backward)(B, &dk, x, y[l], g,
                                                                                           dx[l][relu]),
                                 0);
            }
        }
        print_message("  max pool %lldx%lld pad %lld, %lld planes: AVX-512 == general\n", (long long)h, (long long)w,
                      (long long)d.pad, (long long)(n * c));
        assert_memory_equal(y[0], y[1], (size_t)ny * sizeof(float));
        assert_memory_equal(dx[0][0], dx[1][0], (size_t)nx * sizeof(float));
        assert_memory_equal(dx[0][1], dx[1][1], (size_t)nx * sizeof(float));
        int64_t nan = 0, got = 0;
        for (int64_t i = 0; i < ny; i++)
            nan += isnan(y[1][i]);
        for (int64_t i = 0; i < nx; i++)
            got += dx[1][1][i] != 0.0f;
        assert_true(nan > 0 && nan < ny && got > 0); /* the data reached both paths */
    }
    assert_int_equal(eng_cpu_set_isa(was), 0);
}

/* ============================== batchnorm ============================== */

typedef struct bn_ctx {
    int64_t outer, n, inner;
    double eps;
    double *x, *gamma, *beta;
} bn_ctx;

static void bn_fwd(void *cp, double *out)
{
    bn_ctx *k = cp;
    ref_batchnorm_train(k->outer, k->n, k->inner, k->eps, k->x, k->gamma, k->beta, out, NULL, NULL);
}

static void bn_run(int64_t outer, int64_t n, int64_t inner, bool affine, bool fd)
{
    const int64_t tot = outer * n * inner;
    const double eps = 1e-5, mom = 0.1;
    eng_norm_desc d = {.outer = outer, .n = n, .inner = inner, .eps = (float)eps, .momentum = (float)mom};
    double *x = drand_buf(tot, -2, 3), *gamma = affine ? drand_buf(n, 0.5, 1.5) : NULL;
    double *beta = affine ? drand_buf(n, -1, 1) : NULL;
    double *rm0 = drand_buf(n, -1, 1), *rv0 = drand_buf(n, 0.5, 2), *want = dbuf(tot), *mean = dbuf(n), *var = dbuf(n);
    float *fx = to_f(x, tot), *fg = affine ? to_f(gamma, n) : NULL, *fb = affine ? to_f(beta, n) : NULL;
    float *rm = to_f(rm0, n), *rv = to_f(rv0, n), *sm = fbuf(n), *si = fbuf(n), *y = fbuf(tot);
    print_message("  batchnorm (%lld, %lld, %lld)%s\n", (long long)outer, (long long)n, (long long)inner,
                  affine ? " affine" : "");
    assert_int_equal(B->ops->batchnorm_forward_train(B, &d, fx, fg, fb, y, rm, rv, sm, si), 0);
    ref_batchnorm_train(outer, n, inner, eps, x, gamma, beta, want, mean, var);
    CHECK_CLOSE("train forward", y, want, tot, 1e-5);
    double *w_rm = dbuf(n), *w_rv = dbuf(n), *w_si = dbuf(n);
    const double cnt = (double)(outer * inner);
    for (int64_t j = 0; j < n; j++) {
        w_rm[j] = (1 - mom) * rm0[j] + mom * mean[j];
        w_rv[j] = (1 - mom) * rv0[j] + mom * var[j] * cnt / (cnt - 1); /* unbiased */
        w_si[j] = 1.0 / sqrt(var[j] + eps);
    }
    CHECK_CLOSE("save_mean", sm, mean, n, 1e-5);
    CHECK_CLOSE("save_invstd", si, w_si, n, 1e-5);
    CHECK_CLOSE("running_mean", rm, w_rm, n, 1e-5);
    CHECK_CLOSE("running_var (unbiased)", rv, w_rv, n, 1e-5);

    /* eval with the running statistics */
    assert_int_equal(B->ops->batchnorm_forward_eval(B, &d, fx, fg, fb, rm, rv, y), 0);
    double *drm = to_d(rm, n), *drv = to_d(rv, n);
    ref_batchnorm_eval(outer, n, inner, eps, x, gamma, beta, drm, drv, want);
    CHECK_CLOSE("eval forward", y, want, tot, 1e-5);

    if (!fd)
        return;
    double *r = drand_buf(tot, -1, 1);
    float *fr = to_f(r, tot), *dx = fbuf(tot), *dg = fbuf(n), *dbt = fbuf(n);
    assert_int_equal(B->ops->batchnorm_backward(B, &d, fx, fr, fg, sm, si, dx, dg, dbt), 0);
    bn_ctx ctx = {outer, n, inner, eps, x, gamma, beta};
    CHECK_GRAD("dx", bn_fwd, &ctx, x, tot, r, tot, dx, 200, 1e-4);
    if (affine) {
        CHECK_GRAD("dgamma", bn_fwd, &ctx, gamma, n, r, tot, dg, n, 1e-4);
        CHECK_GRAD("dbeta", bn_fwd, &ctx, beta, n, r, tot, dbt, n, 1e-4);
        /* dx NULL (a model's first layer): the same parameter gradients */
        float *dg2 = fbuf(n), *dbt2 = fbuf(n);
        assert_int_equal(B->ops->batchnorm_backward(B, &d, fx, fr, fg, sm, si, NULL, dg2, dbt2), 0);
        assert_memory_equal(dg2, dg, (size_t)n * sizeof(float));
        assert_memory_equal(dbt2, dbt, (size_t)n * sizeof(float));
    }
}

static void test_batchnorm(void **state)
{
    (void)state;
    bn_run(3, 4, 6, true, true);     /* BatchNorm2d: (N, C, H*W), small planes (run flat) */
    bn_run(3, 4, 6, false, true);
    bn_run(3, 4, 17, true, true);    /* planes of 17 and more: per channel */
    bn_run(3000, 5, 9, true, false); /* flat, many reduction chunks */
    bn_run(7, 5, 1, true, true);     /* BatchNorm1d: (B, F, 1) */
    bn_run(9, 5, 1, false, true);
    bn_run(300, 3, 50, true, false); /* many reduction chunks */
    bn_run(500, 16, 1, true, false);
    /* a channel whose mean is large against its spread */
    const int64_t outer = 64, n = 2, inner = 10, tot = outer * n * inner;
    double *x = drand_buf(tot, 999, 1001), *want = dbuf(tot);
    float *fx = to_f(x, tot), *y = fbuf(tot), *sm = fbuf(n), *si = fbuf(n);
    eng_norm_desc d = {.outer = outer, .n = n, .inner = inner, .eps = 1e-5f, .momentum = 0.1f};
    assert_int_equal(B->ops->batchnorm_forward_train(B, &d, fx, NULL, NULL, y, NULL, NULL, sm, si), 0);
    ref_batchnorm_train(outer, n, inner, 1e-5, x, NULL, NULL, want, NULL, NULL);
    CHECK_CLOSE("forward, mean 1000 spread 1", y, want, tot, 1e-5);
}

/* ============================ blocked layout ============================ */

/* An (n, c, hw) NCHW tensor in the layout ENG_BLOCK16, placed by the
 * layout's formula (backend.h), and back. */
static float *to_blocked(const float *p, int64_t n, int64_t c, int64_t hw)
{
    float *q = fbuf(n * c * hw);
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t px = 0; px < hw; px++)
                q[((i * (c / 16) + ch / 16) * hw + px) * 16 + ch % 16] = p[(i * c + ch) * hw + px];
    return q;
}

static float *from_blocked(const float *q, int64_t n, int64_t c, int64_t hw)
{
    float *p = fbuf(n * c * hw);
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t px = 0; px < hw; px++)
                p[(i * c + ch) * hw + px] = q[((i * (c / 16) + ch / 16) * hw + px) * 16 + ch % 16];
    return p;
}

/* max |a - b| over max |b|: the blocked kernels sum the statistics in
 * another order, so their floats may differ from NCHW's in the last bit */
static void check_near(const char *what, const float *a, const float *b, int64_t n, double tol)
{
    double e = 0.0, scale = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        e = isnan(d) ? INFINITY : fmax(e, d);
        scale = fmax(scale, fabs((double)b[i]));
    }
    print_message("    %-40s blocked against NCHW %.2e\n", what, e / scale);
    if (!(e / scale <= tol))
        fail_msg("%s: blocked differs from NCHW by %.3e (tolerance %.1e)", what, e / scale, tol);
}

/* Batchnorm with every tensor blocked against the same on NCHW (which the
 * references above check): training forward with and without the relu,
 * its backward, and the evaluation forward, which computes no statistics
 * and so gives the same bits. */
static void blocked_bn_run(int64_t n, int64_t c, int64_t hw, bool affine, bool relu)
{
    const int64_t tot = n * c * hw;
    eng_norm_desc d = {.outer = n, .n = c, .inner = hw, .eps = 1e-5f, .momentum = 0.1f};
    eng_norm_desc db = d;
    db.blocked = true;
    float *x = to_f(drand_buf(tot, -2, 3), tot), *dy = to_f(drand_buf(tot, -1, 1), tot);
    float *g = affine ? to_f(drand_buf(c, 0.5, 1.5), c) : NULL, *bt = affine ? to_f(drand_buf(c, -1, 1), c) : NULL;
    float *xb = to_blocked(x, n, c, hw), *dyb = to_blocked(dy, n, c, hw);
    float *y[2], *dx[2], *ye[2], *st[2], *dg[2], *dbt[2];
    for (int k = 0; k < 2; k++) {
        const eng_norm_desc *dk = k ? &db : &d;
        const float *xk = k ? xb : x, *dyk = k ? dyb : dy;
        y[k] = fbuf(tot), dx[k] = fbuf(tot), ye[k] = fbuf(tot), dg[k] = fbuf(c), dbt[k] = fbuf(c);
        st[k] = fbuf(6 * c); /* running mean, var; save mean, invstd, apply (2c) */
        for (int64_t j = 0; j < c; j++)
            st[k][j] = 0.1f * (float)j, st[k][c + j] = 1.0f + 0.05f * (float)j;
        float *rm = st[k], *rv = st[k] + c, *sm = st[k] + 2 * c, *si = st[k] + 3 * c, *sa = st[k] + 4 * c;
        if (relu) {
            assert_int_equal(B->ops->batchnorm_relu_forward_train(B, dk, xk, g, bt, y[k], rm, rv, sm, si, sa), 0);
            assert_int_equal(B->ops->batchnorm_relu_backward(B, dk, xk, dyk, g, bt, sm, si, sa, dx[k], dg[k], dbt[k]),
                             0);
            assert_int_equal(B->ops->batchnorm_relu_forward_eval(B, dk, xk, g, bt, rm, rv, ye[k]), 0);
        } else {
            assert_int_equal(B->ops->batchnorm_forward_train(B, dk, xk, g, bt, y[k], rm, rv, sm, si), 0);
            assert_int_equal(B->ops->batchnorm_backward(B, dk, xk, dyk, g, sm, si, dx[k], dg[k], dbt[k]), 0);
            assert_int_equal(B->ops->batchnorm_forward_eval(B, dk, xk, g, bt, rm, rv, ye[k]), 0);
        }
    }
    print_message("  batchnorm (%lld, %lld, %lld)%s%s, blocked\n", (long long)n, (long long)c, (long long)hw,
                  affine ? " affine" : "", relu ? " + relu" : "");
    check_near("train forward", from_blocked(y[1], n, c, hw), y[0], tot, 1e-6);
    check_near("statistics", st[1], st[0], 4 * c, 1e-6);
    check_near("dx", from_blocked(dx[1], n, c, hw), dx[0], tot, 1e-5);
    if (affine) {
        check_near("dgamma", dg[1], dg[0], c, 1e-5);
        check_near("dbeta", dbt[1], dbt[0], c, 1e-5);
    }
    assert_memory_equal(from_blocked(ye[1], n, c, hw), ye[0], (size_t)tot * sizeof(float));
}

/* A convolution with blocked x and/or y against the same on NCHW, on
 * backend bk: the same kernels (bk forces a side) on the same values, so
 * the same bits. A backend that has no blocked layout for the shape must
 * refuse it. */
static void blocked_conv_run(eng_backend *bk, const conv_case *cc, bool xb, bool yb)
{
    eng_conv_desc d = {.n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w, .k = cc->k, .kh = cc->kh, .kw = cc->kh,
                       .stride = cc->stride, .pad = cc->pad};
    d.oh = ref_out_size(cc->h, cc->kh, cc->stride, cc->pad);
    d.ow = ref_out_size(cc->w, cc->kh, cc->stride, cc->pad);
    eng_conv_desc d2 = d;
    d2.x_blocked = xb;
    d2.y_blocked = yb;
    const int64_t hw = d.h * d.w, ohw = d.oh * d.ow;
    const int64_t nx = d.n * d.c * hw, nw = d.k * d.c * d.kh * d.kw, ny = d.n * d.k * ohw;
    float *x = to_f(drand_buf(nx, -1, 1), nx), *w = to_f(drand_buf(nw, -1, 1), nw);
    float *bias = cc->bias ? to_f(drand_buf(d.k, -1, 1), d.k) : NULL, *dy = to_f(drand_buf(ny, -1, 1), ny);
    const size_t wsb = bk->ops->conv2d_workspace(bk, &d2);
    void *ws = NULL;
    assert_int_equal(bk->ops->alloc(bk, wsb, &ws), 0);
    bk_bufs[n_bk++] = ws;
    float *x2 = xb ? to_blocked(x, d.n, d.c, hw) : x, *dy2 = yb ? to_blocked(dy, d.n, d.k, ohw) : dy;
    float *y[2] = {fbuf(ny), fbuf(ny)}, *dx[2] = {fbuf(nx), fbuf(nx)}, *dw[2] = {fbuf(nw), fbuf(nw)};
    float *db[2] = {fbuf(d.k), fbuf(d.k)};
    print_message("  conv n%lld c%lld %lldx%lld k%lld %lldx%lld s%lld,%s%s blocked\n", (long long)d.n,
                  (long long)d.c, (long long)d.h, (long long)d.w, (long long)d.k, (long long)d.kh, (long long)d.kw,
                  (long long)d.stride, xb ? " x" : "", yb ? " y" : "");
    if (!bk->ops->conv2d_blocked(bk, &d2)) {
        print_message("    no blocked layout here: refused\n");
        assert_int_equal(bk->ops->conv2d_forward(bk, &d2, x2, w, bias, y[1], ws), ENG_EINVAL);
        eng_clear_error();
        return;
    }
    for (int k = 0; k < 2; k++) {
        const eng_conv_desc *dk = k ? &d2 : &d;
        assert_int_equal(bk->ops->conv2d_forward(bk, dk, k ? x2 : x, w, bias, y[k], ws), 0);
        assert_int_equal(bk->ops->conv2d_backward(bk, dk, k ? x2 : x, w, k ? dy2 : dy, dx[k], dw[k],
                                                  bias ? db[k] : NULL, ws),
                         0);
    }
    assert_memory_equal(yb ? from_blocked(y[1], d.n, d.k, ohw) : y[1], y[0], (size_t)ny * sizeof(float));
    assert_memory_equal(xb ? from_blocked(dx[1], d.n, d.c, hw) : dx[1], dx[0], (size_t)nx * sizeof(float));
    assert_memory_equal(dw[1], dw[0], (size_t)nw * sizeof(float));
    if (bias)
        assert_memory_equal(db[1], db[0], (size_t)d.k * sizeof(float));
}

/* Max pooling of blocked tensors against the NCHW kernels (which the
 * references check): the same maxima, argmax and gradient sums, so the
 * same bits - with the argmax kept from the forward and found again, and
 * with the relu before the pool taken in the backward. x holds ties (values
 * on a grid of 8) and a NaN. */
static void blocked_pool_run(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t stride)
{
    eng_pool_desc d = {.mode = ENG_POOL_MAX, .n = n, .c = c, .h = h, .w = w, .kh = k, .kw = k, .stride = stride};
    d.oh = ref_out_size(h, k, stride, 0);
    d.ow = ref_out_size(w, k, stride, 0);
    const int64_t hw = h * w, ohw = d.oh * d.ow, nx = n * c * hw, ny = n * c * ohw;
    eng_pool_desc db = d;
    db.blocked = true;
    print_message("  max pool n%lld c%lld %lldx%lld k%lld s%lld, blocked\n", (long long)n, (long long)c, (long long)h,
                  (long long)w, (long long)k, (long long)stride);
    if (!B->ops->pool_blocked(B, &db)) {
        print_message("    no blocked layout here: refused\n");
        assert_int_equal(B->ops->pool_forward(B, &db, fbuf(nx), fbuf(ny)), ENG_EINVAL);
        eng_clear_error();
        return;
    }
    float *x = fbuf(nx), *dy = to_f(drand_buf(ny, -1, 1), ny);
    for (int64_t i = 0; i < nx; i++)
        x[i] = (float)((int64_t)(urand() * 8.0) - 3) * 0.5f;
    x[nx / 3] = NAN;
    float *xb = to_blocked(x, n, c, hw), *dyb = to_blocked(dy, n, c, ohw);
    const size_t kb = B->ops->pool_keep(B, &d);
    for (int kept = 0; kept < 2; kept++)
        for (int relu = 0; relu < 2; relu++) {
            float *y[2] = {fbuf(ny), fbuf(ny)}, *dx[2] = {fbuf(nx), fbuf(nx)};
            for (int t = 0; t < 2; t++) {
                eng_pool_desc dt = t ? db : d;
                if (kept && kb) {
                    dt.keep = fbuf((int64_t)(kb + 3) / 4);
                    dt.keep_bytes = kb;
                }
                const float *xt = t ? xb : x, *dyt = t ? dyb : dy;
                assert_int_equal(B->ops->pool_forward(B, &dt, xt, y[t]), 0);
                if (relu)
                    assert_int_equal(B->ops->pool_relu_backward(B, &dt, xt, y[t], dyt, dx[t]), 0);
                else
                    assert_int_equal(B->ops->pool_backward(B, &dt, xt, y[t], dyt, dx[t]), 0);
            }
            print_message("    %s%s\n", kept && kb ? "argmax kept" : "argmax found again", relu ? ", relu" : "");
            assert_memory_equal(from_blocked(y[1], n, c, ohw), y[0], (size_t)ny * sizeof(float));
            assert_memory_equal(from_blocked(dx[1], n, c, hw), dx[0], (size_t)nx * sizeof(float));
        }
}

static void test_blocked_layout(void **state)
{
    (void)state;
    blocked_pool_run(3, 16, 32, 32, 3, 2); /* the seed CNN's pools: kept argmax */
    blocked_pool_run(2, 32, 15, 15, 3, 2);
    blocked_pool_run(4, 32, 7, 7, 3, 2);   /* too small to keep the argmax */
    blocked_pool_run(2, 16, 6, 5, 2, 1);   /* overlapping 2x2 windows, stride 1 */
    blocked_pool_run(2, 20, 6, 6, 3, 2);   /* 20 channels: refused */
    blocked_bn_run(5, 32, 9, true, true); /* 3x3 planes: not flat when blocked */
    blocked_bn_run(5, 32, 9, false, false);
    blocked_bn_run(40, 16, 49, true, false); /* several reduction chunks */
    blocked_bn_run(3, 48, 17, false, true);
    const conv_case cases[] = {
        {3, 16, 8, 8, 32, 3, 1, 1, true},   /* conv -> BN -> conv: both sides */
        {2, 32, 5, 5, 16, 3, 1, 1, false},  /* no bias */
        {2, 3, 16, 16, 16, 7, 2, 3, true},  /* the resnet stem: y only (3 input channels) */
        {4, 16, 3, 3, 16, 3, 1, 1, true},   /* 3x3 images */
        {70, 16, 4, 4, 32, 3, 1, 1, true},  /* our kernels' image groups over the threads */
    };
    const char *sides[] = {"own", "onednn"};
    for (int s = 0; s < 2; s++) {
        setenv("EPOCHD_KERNELS", sides[s], 1);
        eng_backend *bk = NULL;
        assert_int_equal(eng_cpu_backend_new(2, &bk), 0);
        unsetenv("EPOCHD_KERNELS");
        print_message(" on %s kernels:\n", sides[s]);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const bool x_ok = cases[i].c % 16 == 0;
            blocked_conv_run(bk, &cases[i], x_ok, true);
            if (x_ok)
                blocked_conv_run(bk, &cases[i], true, false);
        }
        /* what no backend blocks: 20 channels, and 1x1 images (whose blocked layout is NCHW) */
        eng_conv_desc odd = {.n = 2, .c = 16, .h = 4, .w = 4, .k = 20, .kh = 3, .kw = 3, .stride = 1, .pad = 1,
                             .oh = 4, .ow = 4, .y_blocked = true};
        assert_false(bk->ops->conv2d_blocked(bk, &odd));
        odd = (eng_conv_desc){.n = 2, .c = 32, .h = 1, .w = 1, .k = 32, .kh = 3, .kw = 3, .stride = 1, .pad = 1,
                              .oh = 1, .ow = 1, .x_blocked = true};
        assert_false(bk->ops->conv2d_blocked(bk, &odd));
        eng_backend_free(bk);
    }
}

/* ============================== layernorm ============================== */

typedef struct ln_ctx {
    int64_t outer, n, inner;
    double eps;
    double *x, *gamma, *beta;
} ln_ctx;

static void ln_fwd(void *cp, double *out)
{
    ln_ctx *k = cp;
    ref_layernorm(k->outer, k->n, k->inner, k->eps, k->x, k->gamma, k->beta, out, NULL, NULL);
}

static void ln_run(int64_t outer, int64_t n, int64_t inner, bool affine, int64_t fd_max)
{
    const int64_t tot = outer * n * inner, st = outer * inner;
    const double eps = 1e-5;
    eng_norm_desc d = {.outer = outer, .n = n, .inner = inner, .eps = (float)eps};
    double *x = drand_buf(tot, -2, 3), *gamma = affine ? drand_buf(n, 0.5, 1.5) : NULL;
    double *beta = affine ? drand_buf(n, -1, 1) : NULL, *want = dbuf(tot), *mean = dbuf(st), *rstd = dbuf(st);
    float *fx = to_f(x, tot), *fg = affine ? to_f(gamma, n) : NULL, *fb = affine ? to_f(beta, n) : NULL;
    float *y = fbuf(tot), *sm = fbuf(st), *sr = fbuf(st);
    print_message("  layernorm (%lld, %lld, %lld)%s\n", (long long)outer, (long long)n, (long long)inner,
                  affine ? " affine" : "");
    assert_int_equal(B->ops->layernorm_forward(B, &d, fx, fg, fb, y, sm, sr), 0);
    ref_layernorm(outer, n, inner, eps, x, gamma, beta, want, mean, rstd);
    CHECK_CLOSE("forward", y, want, tot, 1e-5);
    CHECK_CLOSE("save_mean", sm, mean, st, 1e-5);
    CHECK_CLOSE("save_rstd", sr, rstd, st, 1e-5);
    if (fd_max == 0)
        return;
    double *r = drand_buf(tot, -1, 1);
    float *fr = to_f(r, tot), *dx = fbuf(tot), *dg = fbuf(n), *dbt = fbuf(n);
    for (int64_t j = 0; j < n; j++)
        dg[j] = dbt[j] = 55.0f; /* overwritten */
    assert_int_equal(B->ops->layernorm_backward(B, &d, fx, fr, fg, sm, sr, dx, dg, dbt), 0);
    ln_ctx ctx = {outer, n, inner, eps, x, gamma, beta};
    CHECK_GRAD("dx", ln_fwd, &ctx, x, tot, r, tot, dx, fd_max, 1e-4);
    if (affine) {
        CHECK_GRAD("dgamma", ln_fwd, &ctx, gamma, n, r, tot, dg, fd_max, 1e-4);
        CHECK_GRAD("dbeta", ln_fwd, &ctx, beta, n, r, tot, dbt, fd_max, 1e-4);
        /* dx NULL (a model's first layer): the same parameter gradients */
        float *dg2 = fbuf(n), *dbt2 = fbuf(n);
        assert_int_equal(B->ops->layernorm_backward(B, &d, fx, fr, fg, sm, sr, NULL, dg2, dbt2), 0);
        assert_memory_equal(dg2, dg, (size_t)n * sizeof(float));
        assert_memory_equal(dbt2, dbt, (size_t)n * sizeof(float));
    }
}

static void test_layernorm(void **state)
{
    (void)state;
    ln_run(5, 7, 1, true, 1000);   /* over the last dim: (rows, n, 1) */
    ln_run(5, 7, 1, false, 1000);
    ln_run(2, 12, 1, true, 1000);  /* the whole (S, C) plane: (B, S*C, 1), gamma S*C */
    ln_run(3, 4, 5, true, 1000);   /* over S of (B, S, C): inner > 1 */
    ln_run(3, 4, 5, false, 1000);
    ln_run(300, 16, 1, true, 60);  /* many chunks for dgamma/dbeta */
    ln_run(40, 6, 33, true, 60);
    ln_run(2, 4096, 1, true, 0);   /* long rows */
    ln_run(7, 2500, 1, true, 60);  /* a long gamma: dgamma/dbeta summed per column block */
    ln_run(3, 1300, 3, true, 60);  /* the same with inner > 1 */
    /* rows and slices whose mean is large against their spread */
    for (int inner = 1; inner <= 7; inner += 6) {
        const int64_t outer = 3, n = 40, tot = outer * n * inner;
        double *x = drand_buf(tot, 999, 1001), *want = dbuf(tot);
        float *fx = to_f(x, tot), *y = fbuf(tot), *sm = fbuf(outer * inner), *sr = fbuf(outer * inner);
        eng_norm_desc d = {.outer = outer, .n = n, .inner = inner, .eps = 1e-5f};
        assert_int_equal(B->ops->layernorm_forward(B, &d, fx, NULL, NULL, y, sm, sr), 0);
        ref_layernorm(outer, n, inner, 1e-5, x, NULL, NULL, want, NULL, NULL);
        CHECK_CLOSE("forward, mean 1000 spread 1", y, want, tot, 1e-5);
    }
}

/* ============================== activations ============================== */

/* The fused epilogues promise the separate operations' bits exactly. */
static void test_fused_epilogues(void **state)
{
    (void)state;
    static const int64_t shapes[][3] = {{7, 192, 1}, {3, 40, 96}, {2, 5, 70001}, {1, 70001, 1}, {0, 3, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t outer = shapes[s][0], n = shapes[s][1], inner = shapes[s][2], tot = outer * n * inner;
        float *x = to_f(drand_buf(tot ? tot : 1, -4, 4), tot ? tot : 1), *bias = to_f(drand_buf(n, -1, 1), n);
        float *res = to_f(drand_buf(tot ? tot : 1, -2, 2), tot ? tot : 1);
        float *y1 = fbuf(tot + 1), *y2 = fbuf(tot + 1), *o1 = fbuf(tot + 1), *o2 = fbuf(tot + 1);
        for (int kind = ENG_ACT_NONE; kind <= ENG_ACT_TANH; kind++) {
            memcpy(y1, x, (size_t)tot * sizeof(float));
            memcpy(y2, x, (size_t)tot * sizeof(float));
            assert_int_equal(B->ops->bias_add(B, outer, n, inner, y1, bias), 0);
            assert_int_equal(B->ops->act_forward(B, (eng_act)kind, 0.1f, tot, y1, o1), 0);
            assert_int_equal(B->ops->bias_act(B, outer, n, inner, y2, bias, (eng_act)kind, 0.1f, o2), 0);
            assert_memory_equal(y1, y2, (size_t)tot * sizeof(float));
            assert_memory_equal(o1, o2, (size_t)tot * sizeof(float));
        }
        /* activation backward, then the bias gradient of its result (GELU
         * both from its output and without it) */
        float *db1 = fbuf(n + 1), *db2 = fbuf(n + 1);
        for (int kind = ENG_ACT_NONE; kind <= ENG_ACT_TANH; kind++)
            for (int with_y = 0; with_y < 2; with_y++) {
                if (!with_y && (kind == ENG_ACT_SIGMOID || kind == ENG_ACT_TANH))
                    continue; /* these need y */
                assert_int_equal(B->ops->act_forward(B, (eng_act)kind, 0.1f, tot, x, o1), 0);
                const float *yy = with_y ? o1 : NULL;
                assert_int_equal(B->ops->act_backward(B, (eng_act)kind, 0.1f, tot, x, yy, res, y1), 0);
                assert_int_equal(B->ops->bias_grad(B, outer, n, inner, y1, db1), 0);
                memcpy(y2, res, (size_t)tot * sizeof(float)); /* in place, as the mixer runs it */
                assert_int_equal(B->ops->act_bias_backward(B, (eng_act)kind, 0.1f, outer, n, inner, x, yy, y2, y2,
                                                           db2),
                                 0);
                assert_memory_equal(y1, y2, (size_t)tot * sizeof(float));
                assert_memory_equal(db1, db2, (size_t)n * sizeof(float));
            }
        memcpy(y1, x, (size_t)tot * sizeof(float));
        memcpy(y2, x, (size_t)tot * sizeof(float));
        assert_int_equal(B->ops->bias_add(B, outer, n, inner, y1, bias), 0);
        assert_int_equal(B->ops->add(B, tot, y1, res, y1), 0);
        assert_int_equal(B1->ops->bias_residual(B1, outer, n, inner, y2, bias, res), 0);
        assert_memory_equal(y1, y2, (size_t)tot * sizeof(float));
        /* against the arithmetic itself */
        for (int64_t i = 0; i < tot; i += 997) {
            const float want = (x[i] + bias[inner == 1 ? i % n : (i / inner) % n]) + res[i];
            assert_memory_equal(&y2[i], &want, sizeof want);
        }
    }
    float y = 0, bias = 0;
    assert_int_equal(B->ops->bias_residual(B, 1, 1, 1, &y, &bias, &y), ENG_EINVAL);

    /* max pool backward, then the relu before it: relu'd inputs (three
     * quarters zeros, so that some windows are all zeros, a NaN, -0),
     * unpadded planes in groups and padded */
    static const int64_t pool_shapes[][5] = {{3, 5, 9, 9, 0}, {2, 70, 3, 3, 0}, {2, 3, 9, 8, 1}};
    for (size_t s = 0; s < sizeof pool_shapes / sizeof pool_shapes[0]; s++) {
        const int64_t n = pool_shapes[s][0], c = pool_shapes[s][1], h = pool_shapes[s][2], w = pool_shapes[s][3];
        const eng_pool_desc d = max_pool_3s2(pool_shapes[s]);
        const int64_t nx = n * c * h * w, ny = n * c * d.oh * d.ow;
        float *x = to_f(drand_buf(nx, -3, 1), nx), *py = fbuf(ny), *g = to_f(drand_buf(ny, -1, 1), ny);
        float *dx1 = fbuf(nx), *dx2 = fbuf(nx);
        assert_int_equal(B->ops->act_forward(B, ENG_ACT_RELU, 0.0f, nx, x, x), 0);
        x[5] = NAN;
        x[7] = -0.0f;
        assert_int_equal(B->ops->pool_forward(B, &d, x, py), 0);
        assert_int_equal(B->ops->pool_backward(B, &d, x, py, g, dx1), 0);
        assert_int_equal(B->ops->act_backward(B, ENG_ACT_RELU, 0.0f, nx, x, x, dx1, dx1), 0);
        assert_int_equal(B->ops->pool_relu_backward(B, &d, x, py, g, dx2), 0);
        assert_memory_equal(dx1, dx2, (size_t)nx * sizeof(float));
        int64_t kept = 0; /* the mask did apply somewhere, and not everywhere */
        for (int64_t i = 0; i < nx; i++)
            kept += dx2[i] != 0.0f;
        assert_true(kept > 0 && kept < nx);

        /* the argmax kept by a training forward (pool_keep) gives the same
         * bits as finding it again, with and without the relu */
        const size_t kb = B->ops->pool_keep(B, &d);
        if (h * w < 64) { /* planes this small keep nothing (cpu_pool.c) */
            assert_int_equal(kb, 0);
            continue;
        }
        assert_true(kb >= (size_t)ny);
        eng_pool_desc dk = d;
        dk.keep = malloc(kb);
        dk.keep_bytes = kb;
        assert_non_null(dk.keep);
        float *ky = fbuf(ny), *dx3 = fbuf(nx), *dx4 = fbuf(nx);
        assert_int_equal(B->ops->pool_forward(B, &dk, x, ky), 0);
        assert_memory_equal(py, ky, (size_t)ny * sizeof(float));
        assert_int_equal(B->ops->pool_backward(B, &d, x, py, g, dx3), 0);
        assert_int_equal(B->ops->pool_backward(B, &dk, x, ky, g, dx4), 0);
        assert_memory_equal(dx3, dx4, (size_t)nx * sizeof(float));
        assert_int_equal(B->ops->pool_relu_backward(B, &dk, x, ky, g, dx4), 0);
        assert_memory_equal(dx2, dx4, (size_t)nx * sizeof(float));
        /* it is really read: with x changed behind its back (which the
         * contract forbids) the kept argmax still routes as before, while
         * another x (a copy) has its own found */
        float *xz = fbuf(nx);
        memcpy(xz, x, (size_t)nx * sizeof(float));
        for (int64_t i = 0; i < nx; i++)
            x[i] = (float)(i % 7);
        assert_int_equal(B->ops->pool_backward(B, &dk, x, ky, g, dx4), 0);
        assert_memory_equal(dx3, dx4, (size_t)nx * sizeof(float));
        memcpy(xz, x, (size_t)nx * sizeof(float));
        assert_int_equal(B->ops->pool_backward(B, &dk, xz, ky, g, dx4), 0);
        assert_memory_not_equal(dx3, dx4, (size_t)nx * sizeof(float));
        assert_int_equal(B->ops->pool_backward(B, &d, xz, ky, g, dx3), 0);
        assert_memory_equal(dx3, dx4, (size_t)nx * sizeof(float));
        free(dk.keep);
    }
    eng_pool_desc avgk = {.mode = ENG_POOL_AVG, .n = 1, .c = 1, .h = 3, .w = 3, .kh = 3, .kw = 3, .stride = 2,
                          .oh = 1, .ow = 1};
    assert_int_equal(B->ops->pool_keep(B, &avgk), 0); /* an average pool keeps nothing */
    eng_pool_desc avg = {.mode = ENG_POOL_AVG, .n = 1, .c = 1, .h = 3, .w = 3, .kh = 3, .kw = 3, .stride = 2,
                         .oh = 1, .ow = 1};
    float px[9] = {0}, pdy = 1.0f, pdx[9];
    assert_int_equal(B->ops->pool_relu_backward(B, &avg, px, NULL, &pdy, pdx), ENG_EINVAL);

    /* layer norm backward, then the bypassing gradient added: rows, slices
     * (inner > 1), a long gamma (summed by columns), and without gamma */
    static const int64_t ln_shapes[][3] = {{37, 192, 1}, {5, 64, 96}, {3, 1300, 3}, {9, 33, 1}};
    for (size_t s = 0; s < sizeof ln_shapes / sizeof ln_shapes[0]; s++) {
        eng_norm_desc d = {.outer = ln_shapes[s][0], .n = ln_shapes[s][1], .inner = ln_shapes[s][2], .eps = 1e-5f};
        const int64_t n = d.n, tot = d.outer * n * d.inner, nst = d.outer * d.inner;
        const bool affine = s != 3;
        float *x = to_f(drand_buf(tot, -2, 3), tot), *dy = to_f(drand_buf(tot, -1, 1), tot);
        float *res = to_f(drand_buf(tot, -1, 1), tot), *g = affine ? to_f(drand_buf(n, 0.5, 1.5), n) : NULL;
        float *bt = to_f(drand_buf(n, -1, 1), n), *y1 = fbuf(tot), *mean = fbuf(nst), *rstd = fbuf(nst);
        float *dx1 = fbuf(tot), *dx2 = fbuf(tot), *dg[2] = {fbuf(n), fbuf(n)}, *db[2] = {fbuf(n), fbuf(n)};
        assert_int_equal(B->ops->layernorm_forward(B, &d, x, g, affine ? bt : NULL, y1, mean, rstd), 0);
        assert_int_equal(B->ops->layernorm_backward(B, &d, x, dy, g, mean, rstd, dx1, dg[0], db[0]), 0);
        assert_int_equal(B->ops->add(B, tot, dx1, res, dx1), 0);
        assert_int_equal(
            B->ops->layernorm_backward_add(B, &d, x, dy, g, mean, rstd, res, dx2, NULL, 0, dg[1], db[1]), 0);
        assert_memory_equal(dx1, dx2, (size_t)tot * sizeof(float));
        if (affine) {
            assert_memory_equal(dg[0], dg[1], (size_t)n * sizeof(float));
            assert_memory_equal(db[0], db[1], (size_t)n * sizeof(float));
        }
        /* the residual did arrive: dx2 - res is the plain backward's dx */
        assert_int_equal(B->ops->layernorm_backward(B, &d, x, dy, g, mean, rstd, dx1, dg[0], db[0]), 0);
        for (int64_t i = 0; i < tot; i += 101) {
            const float want = dx1[i] + res[i];
            assert_memory_equal(&dx2[i], &want, sizeof want);
        }
        /* res may not overlap dx */
        assert_int_equal(
            B->ops->layernorm_backward_add(B, &d, x, dy, g, mean, rstd, dx2 + 1, dx2, NULL, 0, dg[1], db[1]),
            ENG_EINVAL);
    }

    /* batchnorm then relu, in training (with the running statistics) and in
     * eval; the backward of both, with and without gamma and beta */
    static const int64_t bn_shapes[][3] = {{33, 70, 1}, {9, 16, 300}, {4, 3, 1025}, {5, 17, 33}, {40, 12, 9}};
    for (size_t s = 0; s < sizeof bn_shapes / sizeof bn_shapes[0]; s++) {
        eng_norm_desc d = {.outer = bn_shapes[s][0], .n = bn_shapes[s][1], .inner = bn_shapes[s][2], .eps = 1e-5f,
                           .momentum = 0.1f};
        const int64_t n = d.n, tot = d.outer * n * d.inner;
        float *x = to_f(drand_buf(tot, -2, 3), tot), *g = to_f(drand_buf(n, 0.5, 1.5), n);
        float *bt = to_f(drand_buf(n, -1, 1), n);
        const bool affine = s != 3;
        if (!affine)
            g = bt = NULL;
        float *y1 = fbuf(tot), *y2 = fbuf(tot), *st[2][4], *apply = fbuf(2 * n);
        for (int k = 0; k < 2; k++)
            for (int q = 0; q < 4; q++) {
                st[k][q] = fbuf(n);
                for (int64_t j = 0; j < n; j++)
                    st[k][q][j] = q == 1 ? 1.0f : 0.0f; /* running var 1, the rest 0 */
            }
        assert_int_equal(B->ops->batchnorm_forward_train(B, &d, x, g, bt, y1, st[0][0], st[0][1], st[0][2], st[0][3]),
                         0);
        assert_int_equal(B->ops->act_forward(B, ENG_ACT_RELU, 0.0f, tot, y1, y1), 0);
        assert_int_equal(B->ops->batchnorm_relu_forward_train(B, &d, x, g, bt, y2, st[1][0], st[1][1], st[1][2],
                                                              st[1][3], apply),
                         0);
        assert_memory_equal(y1, y2, (size_t)tot * sizeof(float));
        for (int q = 0; q < 4; q++)
            assert_memory_equal(st[0][q], st[1][q], (size_t)n * sizeof(float));
        int64_t zeros = 0;
        for (int64_t i = 0; i < tot; i++)
            zeros += y2[i] == 0.0f;
        assert_true(zeros > tot / 5 && zeros < tot - tot / 5); /* the relu did cut, and not everything */
        float *dy = to_f(drand_buf(tot, -1, 1), tot), *dx1 = fbuf(tot), *dx2 = fbuf(tot), *t = fbuf(tot);
        float *dg[2] = {fbuf(n), fbuf(n)}, *db[2] = {fbuf(n), fbuf(n)};
        assert_int_equal(B->ops->act_backward(B, ENG_ACT_RELU, 0.0f, tot, y1, y1, dy, t), 0);
        assert_int_equal(B->ops->batchnorm_backward(B, &d, x, t, g, st[0][2], st[0][3], dx1, dg[0], db[0]), 0);
        assert_int_equal(B->ops->batchnorm_relu_backward(B, &d, x, dy, g, bt, st[1][2], st[1][3], apply, dx2, dg[1],
                                                         db[1]),
                         0);
        assert_memory_equal(dx1, dx2, (size_t)tot * sizeof(float));
        if (affine) {
            assert_memory_equal(dg[0], dg[1], (size_t)n * sizeof(float));
            assert_memory_equal(db[0], db[1], (size_t)n * sizeof(float));
        }
        assert_int_equal(B->ops->batchnorm_forward_eval(B, &d, x, g, bt, st[0][0], st[0][1], y1), 0);
        assert_int_equal(B->ops->act_forward(B, ENG_ACT_RELU, 0.0f, tot, y1, y1), 0);
        assert_int_equal(B1->ops->batchnorm_relu_forward_eval(B1, &d, x, g, bt, st[0][0], st[0][1], y2), 0);
        assert_memory_equal(y1, y2, (size_t)tot * sizeof(float));
    }
}

static const char *act_name(int k)
{
    static const char *names[] = {"none", "relu", "leaky_relu", "gelu", "sigmoid", "tanh"};
    return names[k];
}

static void test_activations(void **state)
{
    (void)state;
    const int64_t n = 40000;
    for (int kind = ENG_ACT_NONE; kind <= ENG_ACT_TANH; kind++) {
        const float slope = 0.1f;
        /* inputs in [-4, 4] kept 1e-3 away from relu's kink at 0 */
        double *x = drand_buf(n, -4, 4);
        for (int64_t i = 0; i < n; i++)
            if (fabs(x[i]) < 1e-3)
                x[i] = 0.5;
        double *want = dbuf(n), *dwant = dbuf(n), *g = drand_buf(n, -1, 1);
        for (int64_t i = 0; i < n; i++) {
            want[i] = ref_act(kind, slope, x[i]);
            const double fd = (ref_act(kind, slope, x[i] + FD_H) - ref_act(kind, slope, x[i] - FD_H)) / (2 * FD_H);
            dwant[i] = g[i] * fd;
        }
        float *fx = to_f(x, n), *y = fbuf(n), *dy = to_f(g, n), *dx = fbuf(n);
        print_message("  %s\n", act_name(kind));
        assert_int_equal(B->ops->act_forward(B, (eng_act)kind, slope, n, fx, y), 0);
        CHECK_CLOSE("forward", y, want, n, 1e-6);
        assert_int_equal(B->ops->act_backward(B, (eng_act)kind, slope, n, fx, y, dy, dx), 0);
        /* elementwise: FD of the double reference per element */
        /* relative to max(|ref|, 1% of the largest): GELU's derivative
         * crosses 0 near x = -0.75 as the difference of two terms near 0.23,
         * where float keeps only ~3e-8 absolute */
        const double e = rel_err_floor(dx, dwant, n, 1e-2);
        print_message("    %-40s grad err %.2e\n", "backward (per element)", e);
        /* sigmoid and tanh differentiate through the float output y, as
         * PyTorch does: 1 - y^2 for y = 0.9993 (x = 4) carries y's rounding
         * 6e-8 as 1.2e-7 absolute, 1.2e-5 against the 1% floor */
        assert_true(e <= (kind == ENG_ACT_SIGMOID || kind == ENG_ACT_TANH ? 5e-5 : 1e-5));
        /* in place (dx == dy) gives the same bits */
        assert_int_equal(B->ops->act_backward(B, (eng_act)kind, slope, n, fx, y, dy, dy), 0);
        assert_memory_equal(dy, dx, (size_t)n * sizeof(float));
    }
}

/* The vectorised exp/erf/tanh over their whole useful range. */
static void test_activation_accuracy(void **state)
{
    (void)state;
    const int64_t n = 200001;
    double *x = dbuf(n);
    for (int64_t i = 0; i < n; i++)
        x[i] = (double)(float)(-10.0 + 20.0 * (double)i / (double)(n - 1));
    float *fx = to_f(x, n), *y = fbuf(n), *dy = fbuf(n), *dx = fbuf(n);
    for (int64_t i = 0; i < n; i++)
        dy[i] = 1.0f;
    const int kinds[] = {ENG_ACT_GELU, ENG_ACT_SIGMOID, ENG_ACT_TANH};
    for (int t = 0; t < 3; t++) {
        const int kind = kinds[t];
        assert_int_equal(B->ops->act_forward(B, (eng_act)kind, 0.0f, n, fx, y), 0);
        double e = 0.0, eg = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const double r = ref_act(kind, 0.0, x[i]);
            e = fmax(e, fabs(y[i] - r) / fmax(fabs(r), 1e-30));
        }
        assert_int_equal(B->ops->act_backward(B, (eng_act)kind, 0.0f, n, fx, y, dy, dx), 0);
        for (int64_t i = 0; i < n; i++) {
            const double xv = x[i];
            double r;
            if (kind == ENG_ACT_GELU)
                r = 0.5 * erfc(-xv / sqrt(2.0)) + xv * exp(-0.5 * xv * xv) / sqrt(2.0 * M_PI);
            else if (kind == ENG_ACT_SIGMOID)
                r = (double)y[i] * (1.0 - (double)y[i]); /* in terms of the float output, as the backend */
            else
                r = 1.0 - (double)y[i] * (double)y[i];
            eg = fmax(eg, fabs(dx[i] - r) / fmax(fabs(r), 1e-2)); /* see test_activations */
        }
        print_message("  %-10s on [-10, 10]: forward rel err %.2e, derivative rel err %.2e\n", act_name(kind), e, eg);
        assert_true(e <= 1e-6);
        assert_true(eg <= 1e-5);
        if (kind == ENG_ACT_GELU) {
            /* with y the backend takes Phi(x) = y / x; without, it computes Phi(x) again */
            float *dx2 = fbuf(n);
            assert_int_equal(B->ops->act_backward(B, (eng_act)kind, 0.0f, n, fx, NULL, dy, dx2), 0);
            double eg2 = 0.0;
            for (int64_t i = 0; i < n; i++) {
                const double xv = x[i];
                const double r = 0.5 * erfc(-xv / sqrt(2.0)) + xv * exp(-0.5 * xv * xv) / sqrt(2.0 * M_PI);
                eg2 = fmax(eg2, fabs(dx2[i] - r) / fmax(fabs(r), 1e-2));
            }
            print_message("  %-10s without y: derivative rel err %.2e\n", act_name(kind), eg2);
            assert_true(eg2 <= 1e-5);
        }
    }
    /* exp's edges: GELU and sigmoid of huge inputs stay finite */
    float ex[6] = {-200.0f, -88.0f, -87.0f, 88.0f, 89.0f, 200.0f}, ey[6];
    float *fex = fbuf(6), *fey = fbuf(6);
    memcpy(fex, ex, sizeof ex);
    assert_int_equal(B->ops->act_forward(B, ENG_ACT_SIGMOID, 0.0f, 6, fex, fey), 0);
    memcpy(ey, fey, sizeof ey);
    for (int i = 0; i < 6; i++)
        assert_true(isfinite(ey[i]) && ey[i] >= 0.0f && ey[i] <= 1.0f);
    assert_true(ey[0] == 0.0f && ey[5] == 1.0f);
    assert_int_equal(B->ops->act_forward(B, ENG_ACT_GELU, 0.0f, 6, fex, fey), 0);
    assert_true(fey[0] == 0.0f && fey[5] == 200.0f && fey[4] == 89.0f);
    /* GELU past its formulas' ranges (caps, reciprocals): infinities, NaN,
     * where Phi underflows, huge and tiny x; the derivative from y too. 17
     * values, so that the vector forms' masked tail runs as well. */
    const float gx[17] = {INFINITY, NAN, -14.0f, -13.5f, -13.0f, -20.5f, 3e38f, -3e38f, 0.0f, -0.0f, 1e-4f, -1e-4f,
                          6.0f, 1e31f, -1e31f, 25.0f, -25.0f};
    float *fgx = fbuf(17), *fgy = fbuf(17), *fgd = fbuf(17), *ones = fbuf(17);
    memcpy(fgx, gx, sizeof gx);
    for (int i = 0; i < 17; i++)
        ones[i] = 1.0f;
    assert_int_equal(B->ops->act_forward(B, ENG_ACT_GELU, 0.0f, 17, fgx, fgy), 0);
    assert_true(fgy[0] == INFINITY && isnan(fgy[1]));
    for (int i = 2; i < 17; i++) {
        const double r = gx[i] * 0.5 * erfc(-(double)gx[i] / sqrt(2.0));
        /* below FLT_MIN the portable form flushes to 0, the AVX-512 one keeps denormals */
        assert_true(fabs(fgy[i] - r) <= 1e-6 * fabs(r) + 1e-37);
    }
    assert_int_equal(B->ops->act_backward(B, ENG_ACT_GELU, 0.0f, 17, fgx, fgy, ones, fgd), 0);
    for (int i = 2; i < 17; i++) {
        const double v = gx[i], r = 0.5 * erfc(-v / sqrt(2.0)) + v * exp(-0.5 * v * v) / sqrt(2.0 * M_PI);
        assert_true(fabs(fgd[i] - r) <= 1e-5 * fmax(fabs(r), 1e-2));
    }
}

/* =============================== softmax =============================== */

typedef struct sm_ctx {
    int64_t rows, n;
    double *x;
} sm_ctx;

static void sm_fwd(void *cp, double *out)
{
    sm_ctx *k = cp;
    ref_softmax(k->rows, k->n, k->x, out);
}

static void test_softmax(void **state)
{
    (void)state;
    const int64_t rows = 6, n = 9, tot = rows * n;
    double *x = drand_buf(tot, -3, 3), *want = dbuf(tot), *r = drand_buf(tot, -1, 1);
    float *fx = to_f(x, tot), *y = fbuf(tot), *fr = to_f(r, tot), *dx = fbuf(tot);
    assert_int_equal(B->ops->softmax_forward(B, rows, n, fx, y), 0);
    ref_softmax(rows, n, x, want);
    CHECK_CLOSE("softmax forward", y, want, tot, 1e-6);
    assert_int_equal(B->ops->softmax_backward(B, rows, n, y, fr, dx), 0);
    sm_ctx ctx = {rows, n, x};
    CHECK_GRAD("softmax backward", sm_fwd, &ctx, x, tot, r, tot, dx, 1 << 30, 1e-5);
    /* in place: dx = dy */
    float *fr2 = to_f(r, tot);
    assert_int_equal(B->ops->softmax_backward(B, rows, n, y, fr2, fr2), 0);
    assert_memory_equal(fr2, dx, (size_t)tot * sizeof(float));
    /* large logits: the max is subtracted first (no overflow) */
    for (int64_t i = 0; i < tot; i++)
        x[i] = (double)(float)(x[i] * 200.0);
    float *fx2 = to_f(x, tot);
    assert_int_equal(B->ops->softmax_forward(B, rows, n, fx2, y), 0);
    double mx[9];
    for (int64_t rr = 0; rr < rows; rr++) {
        double m = -INFINITY;
        for (int64_t j = 0; j < n; j++)
            m = fmax(m, x[rr * n + j]);
        for (int64_t j = 0; j < n; j++)
            mx[j] = x[rr * n + j] - m;
        ref_softmax(1, n, mx, want + rr * n);
    }
    CHECK_CLOSE("softmax forward, logits up to 600", y, want, tot, 1e-6);
    /* in place forward */
    assert_int_equal(B->ops->softmax_forward(B, rows, n, fx2, fx2), 0);
    assert_memory_equal(fx2, y, (size_t)tot * sizeof(float));
}

/* ============================ cross-entropy ============================ */

typedef struct xent_ctx {
    int64_t rows, classes;
    double scale;
    double *x;
    const int32_t *labels;
} xent_ctx;

static void xent_fwd(void *cp, double *out)
{
    xent_ctx *k = cp;
    double hits;
    out[0] = k->scale * ref_xent(k->rows, k->classes, 1, k->x, k->labels, &hits);
}

static void test_xent(void **state)
{
    (void)state;
    const int64_t rows = 37, classes = 10, tot = rows * classes;
    double *x = drand_buf(tot, -3, 3);
    int32_t *labels = hbuf((size_t)rows * sizeof *labels);
    for (int64_t r = 0; r < rows; r++)
        labels[r] = (int32_t)(urand() * (double)classes);
    float *fx = to_f(x, tot), *dl = fbuf(tot);
    int32_t *flab = (int32_t *)fbuf(rows);
    memcpy(flab, labels, (size_t)rows * sizeof *labels);
    for (int64_t k = 1; k <= 3; k++) {
        double acc[2] = {1.5, 2.0}; /* accumulates */
        const float scale = 1.0f / (float)rows;
        eng_xent_desc d = {.rows = rows, .classes = classes, .k = k, .scale = scale};
        assert_int_equal(B->ops->xent(B, &d, fx, flab, dl, acc), 0);
        double hits;
        const double loss = ref_xent(rows, classes, k, x, labels, &hits);
        print_message("    xent k=%lld: loss err %.2e, hits %g (reference %g)\n", (long long)k,
                      fabs(acc[0] - 1.5 - loss) / loss, acc[1] - 2.0, hits);
        assert_true(fabs(acc[0] - 1.5 - loss) <= 1e-6 * loss);
        assert_true(acc[1] - 2.0 == hits);
        if (k == 1) {
            double one = 1.0;
            xent_ctx ctx = {rows, classes, scale, x, labels};
            CHECK_GRAD("dlogits = scale (softmax - onehot)", xent_fwd, &ctx, x, tot, &one, 1, dl, 1 << 30, 1e-5);
        }
    }
    /* dlogits NULL */
    double acc[2] = {0, 0};
    eng_xent_desc d = {.rows = rows, .classes = classes, .k = 1, .scale = 1};
    assert_int_equal(B->ops->xent(B, &d, fx, flab, NULL, acc), 0);

    /* ties, by hand: logits [1, 2, 2, 0]; class 1 ranks 0, class 2 ranks 1
     * (equal to class 1, which has the lower index), class 0 ranks 2 */
    float *tx = fbuf(12);
    int32_t *tl = (int32_t *)fbuf(3);
    const float rowv[4] = {1, 2, 2, 0};
    for (int rr = 0; rr < 3; rr++)
        memcpy(tx + 4 * rr, rowv, sizeof rowv);
    tl[0] = 1;
    tl[1] = 2;
    tl[2] = 0;
    const double expect_hits[4] = {0, 1, 2, 3}; /* k = 0 .. 3 */
    for (int64_t k = 0; k <= 3; k++) {
        double a[2] = {0, 0};
        eng_xent_desc td = {.rows = 3, .classes = 4, .k = k, .scale = 1};
        assert_int_equal(B->ops->xent(B, &td, tx, tl, NULL, a), 0);
        assert_true(a[1] == expect_hits[k]);
        /* loss = 3 log(e + 2e^2 + 1) - (2 + 2 + 1) */
        const double lse = log(exp(1.0) + 2.0 * exp(2.0) + 1.0);
        assert_true(fabs(a[0] - (3.0 * lse - 5.0)) <= 1e-6);
    }
    /* huge logits do not overflow */
    float *hx = fbuf(4);
    const float hv[4] = {1000.0f, 999.0f, -1000.0f, 0.0f};
    memcpy(hx, hv, sizeof hv);
    double a[2] = {0, 0};
    eng_xent_desc hd = {.rows = 1, .classes = 4, .k = 1, .scale = 1};
    assert_int_equal(B->ops->xent(B, &hd, hx, tl + 2, NULL, a), 0); /* label 0 */
    assert_true(fabs(a[0] - log(1.0 + exp(-1.0))) <= 1e-6);
    assert_true(a[1] == 1.0);

    /* a diverged model (issue 10, defect 4): a row with a NaN or infinite
     * logit is never a hit (with NaN every comparison is false, which
     * ranked the label first: 100 % accuracy) and its loss is NaN; the
     * finite rows next to it count as before */
    float *nx = fbuf(5 * 4);
    int32_t *nl = (int32_t *)fbuf(5);
    const float nan = NAN, inf = INFINITY;
    const float nv[5][4] = {{nan, nan, nan, nan}, {0, nan, 0, 0}, {inf, 0, 0, 0}, {0, -inf, 1, 0}, {3, 1, 2, 0}};
    memcpy(nx, nv, sizeof nv);
    for (int i = 0; i < 5; i++)
        nl[i] = 0; /* row 2: label 0 holds +inf, row 4: label 0 holds the largest logit */
    for (int64_t k = 1; k <= 4; k++) {
        double na[2] = {0, 0};
        eng_xent_desc nd = {.rows = 5, .classes = 4, .k = k, .scale = 1};
        assert_int_equal(B->ops->xent(B, &nd, nx, nl, NULL, na), 0);
        assert_true(na[1] == 1.0); /* only the finite last row, for every k */
        assert_true(isnan(na[0]));
        double one[2] = {0, 0};
        eng_xent_desc od = {.rows = 1, .classes = 4, .k = k, .scale = 1};
        assert_int_equal(B->ops->xent(B, &od, nx + 16, nl + 4, NULL, one), 0);
        assert_true(isfinite(one[0]) && one[1] == 1.0);
    }
}

/* ================================ dropout ================================ */

static void test_dropout(void **state)
{
    (void)state;
    const int64_t n = 100003;
    const float p = 0.3f;
    const uint64_t key = 0xC0FFEEull, counter = 77;
    double *x = drand_buf(n, -1, 1);
    float *fx = to_f(x, n), *y = fbuf(n), *y2 = fbuf(n), *dy = fbuf(n), *dx = fbuf(n);
    assert_int_equal(B->ops->dropout(B, n, p, key, counter, fx, y), 0);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) {
        const bool keep = eng_philox_uniform(key, counter, i) >= p;
        const float want = (fx[i] * (keep ? 1.0f : 0.0f)) / (1.0f - p);
        assert_memory_equal(&y[i], &want, sizeof want); /* bit for bit */
        kept += keep;
    }
    const double frac = (double)kept / (double)n;
    print_message("    dropout p=0.3: kept %.4f\n", frac);
    assert_true(fabs(frac - 0.7) < 0.01); /* 7 standard deviations */
    /* backward: the same call on dy uses the same mask */
    for (int64_t i = 0; i < n; i++)
        dy[i] = 1.0f;
    assert_int_equal(B->ops->dropout(B, n, p, key, counter, dy, dx), 0);
    for (int64_t i = 0; i < n; i++)
        assert_true((dx[i] != 0.0f) == (eng_philox_uniform(key, counter, i) >= p) &&
                    (dx[i] == 0.0f || dx[i] == 1.0f / (1.0f - p)));
    /* deterministic, also on one thread; another counter draws another mask */
    assert_int_equal(B1->ops->dropout(B1, n, p, key, counter, fx, y2), 0);
    assert_memory_equal(y, y2, (size_t)n * sizeof(float));
    assert_int_equal(B->ops->dropout(B, n, p, key, counter + 1, fx, y2), 0);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; i++)
        differ += (y[i] == 0.0f) != (y2[i] == 0.0f);
    assert_true(differ > n / 5);
    /* p = 0 keeps everything unchanged; p = 1 drops everything */
    assert_int_equal(B->ops->dropout(B, n, 0.0f, key, counter, fx, y2), 0);
    assert_memory_equal(y2, fx, (size_t)n * sizeof(float));
    assert_int_equal(B->ops->dropout(B, n, 1.0f, key, counter, fx, y2), 0);
    for (int64_t i = 0; i < n; i++)
        assert_true(y2[i] == 0.0f);
}

/* =============================== patchify =============================== */

typedef struct patch_ctx {
    int64_t n, c, h, w, p;
    double *x;
} patch_ctx;

static void patch_fwd(void *cp, double *out)
{
    patch_ctx *k = cp;
    ref_patchify(k->n, k->c, k->h, k->w, k->p, k->x, out);
}

static void test_patchify(void **state)
{
    (void)state;
    const int64_t cfg[][5] = {{2, 3, 8, 12, 4}, {3, 3, 8, 8, 2}, {1, 1, 4, 4, 1}};
    for (size_t t = 0; t < 3; t++) {
        const int64_t n = cfg[t][0], c = cfg[t][1], h = cfg[t][2], w = cfg[t][3], p = cfg[t][4], tot = n * c * h * w;
        double *x = drand_buf(tot, -1, 1), *want = dbuf(tot), *r = drand_buf(tot, -1, 1);
        float *fx = to_f(x, tot), *y = fbuf(tot), *fr = to_f(r, tot), *dx = fbuf(tot), *back = fbuf(tot);
        assert_int_equal(B->ops->patchify_forward(B, n, c, h, w, p, fx, y), 0);
        ref_patchify(n, c, h, w, p, x, want);
        CHECK_CLOSE("patchify forward vs explicit patch loop", y, want, tot, 0.0);
        /* backward is the adjoint: <P x, r> = <x, P^T r>, and P^T P = I */
        assert_int_equal(B->ops->patchify_backward(B, n, c, h, w, p, fr, dx), 0);
        double l1 = 0.0, l2 = 0.0;
        for (int64_t i = 0; i < tot; i++) {
            l1 += (double)y[i] * r[i];
            l2 += x[i] * (double)dx[i];
        }
        assert_true(fabs(l1 - l2) <= 1e-12 * (fabs(l1) + 1.0));
        patch_ctx ctx = {n, c, h, w, p, x};
        CHECK_GRAD("patchify backward", patch_fwd, &ctx, x, tot, r, tot, dx, 200, 1e-5);
        assert_int_equal(B->ops->patchify_backward(B, n, c, h, w, p, y, back), 0);
        assert_memory_equal(back, fx, (size_t)tot * sizeof(float));
    }
}

/* ============================= batch gather ============================= */

static void test_batch_gather(void **state)
{
    (void)state;
    const int64_t N = 5, C = 3, H = 6, W = 5, n = 6, pad = 2, per = C * H * W;
    uint8_t *images = (uint8_t *)fbuf(N * per / 4 + 1);
    int32_t *all_labels = (int32_t *)fbuf(N), *idx = (int32_t *)fbuf(n), *labels = (int32_t *)fbuf(n);
    int16_t *aug = (int16_t *)fbuf(3 * n);
    for (int64_t i = 0; i < N * per; i++)
        images[i] = (uint8_t)(urand() * 256.0);
    for (int64_t i = 0; i < N; i++)
        all_labels[i] = (int32_t)(10 + i);
    const int32_t pick[6] = {3, 0, 4, 3, 1, 2};
    memcpy(idx, pick, sizeof pick);
    /* (dy, dx, flip) per sample: edges of the crop range, the centre, flips */
    const int16_t av[18] = {0, 0, 0, 4, 4, 1, 2, 2, 0, 2, 2, 1, 1, 3, 1, 4, 0, 0};
    memcpy(aug, av, sizeof av);
    eng_batch_desc d = {.n = n, .c = C, .h = H, .w = W, .pad = 0, .augment = false,
                        .mean = {0.5f, 0.4f, 0.3f}, .inv_std = {2.0f, 4.0f, 1.0f / 0.3f}};
    float *x = fbuf(n * per);
    double *want = dbuf(n * per);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            d.augment = true;
            d.pad = pad;
        }
        assert_int_equal(B->ops->batch_gather(B, &d, images, all_labels, idx, aug, x, labels), 0);
        for (int64_t i = 0; i < n; i++) {
            assert_int_equal(labels[i], 10 + pick[i]);
            const uint8_t *img = images + pick[i] * per;
            for (int64_t ch = 0; ch < C; ch++) {
                /* an explicit zero-padded, flipped copy of the plane, then the crop */
                const int64_t PH = H + 2 * pad, PW = W + 2 * pad;
                double padded[(6 + 4) * (5 + 4)];
                for (int64_t k = 0; k < PH * PW; k++)
                    padded[k] = 0.0;
                const bool flip = pass == 1 && av[3 * i + 2];
                for (int64_t yy = 0; yy < H; yy++)
                    for (int64_t xx = 0; xx < W; xx++)
                        padded[(yy + d.pad) * PW + xx + d.pad] = img[(ch * H + yy) * W + (flip ? W - 1 - xx : xx)];
                const int64_t oy = pass == 1 ? av[3 * i] : 0, ox = pass == 1 ? av[3 * i + 1] : 0;
                for (int64_t yy = 0; yy < H; yy++)
                    for (int64_t xx = 0; xx < W; xx++) {
                        const double u = padded[(yy + oy) * PW + xx + ox];
                        want[((i * C + ch) * H + yy) * W + xx] =
                            (u / 255.0 - (double)d.mean[ch]) * (double)d.inv_std[ch];
                    }
            }
        }
        CHECK_CLOSE(pass ? "batch_gather, crop + flip" : "batch_gather", x, want, n * per, 1e-6);
    }
}

/* ============================== optimisers ============================== */

/* Adam/AdamW over 3 steps against the header's formula in double. */
static void adam_run(bool decoupled, float wd)
{
    const int64_t n = 7;
    eng_adam_args a = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = wd,
                       .decoupled = decoupled};
    double *p = drand_buf(n, -1, 1), *m = dbuf(n), *v = dbuf(n);
    float *fp = to_f(p, n), *fm = fbuf(n), *fv = fbuf(n);
    for (int64_t t = 1; t <= 3; t++) {
        double *g = drand_buf(n, -1, 1);
        float *fg = to_f(g, n);
        a.step = t;
        assert_int_equal(B->ops->adam_step(B, n, fp, fg, fm, fv, &a), 0);
        const double b1 = a.beta1, b2 = a.beta2, lr = a.lr, eps = a.eps, w = a.weight_decay;
        for (int64_t i = 0; i < n; i++) {
            double gi = g[i];
            if (decoupled)
                p[i] *= 1.0 - lr * w;
            else
                gi += w * p[i];
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            const double mh = m[i] / (1 - pow(b1, (double)t)), vh = v[i] / (1 - pow(b2, (double)t));
            p[i] -= lr * mh / (sqrt(vh) + eps);
        }
    }
    CHECK_CLOSE(decoupled ? "adamw p after 3 steps" : "adam p after 3 steps", fp, p, n, 1e-6);
    CHECK_CLOSE("m", fm, m, n, 1e-6);
    CHECK_CLOSE("v", fv, v, n, 1e-5);
}

static void test_adam(void **state)
{
    (void)state;
    adam_run(false, 0.0f);
    adam_run(false, 0.05f);
    adam_run(true, 0.05f);
    /* By hand: p = 1, constant g = 0.5, lr 0.1, betas (0.9, 0.999), eps 1e-8.
     * Bias correction makes m_hat = 0.5 and v_hat = 0.25 at every step, so
     * each step moves p by lr * 0.5 / (0.5 + 1e-8) = 0.1: p = 0.9, 0.8, 0.7.
     * AdamW with weight decay 0.1: p *= 1 - 0.01 first, then the same 0.1:
     * p = 0.89, 0.7811, 0.673289. */
    const double plain[3] = {0.9, 0.8, 0.7}, wdec[3] = {0.89, 0.7811, 0.673289};
    for (int mode = 0; mode < 2; mode++) {
        float *p = fbuf(1), *g = fbuf(1), *m = fbuf(1), *v = fbuf(1);
        p[0] = 1.0f;
        g[0] = 0.5f;
        eng_adam_args a = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                           .weight_decay = mode ? 0.1f : 0.0f, .decoupled = mode == 1};
        for (int t = 1; t <= 3; t++) {
            a.step = t;
            assert_int_equal(B->ops->adam_step(B, 1, p, g, m, v, &a), 0);
            const double *want = mode ? wdec : plain;
            assert_true(fabs(p[0] - want[t - 1]) < 2e-6);
        }
    }
    /* a long buffer (several chunks over both threads) against one element at a time */
    const int64_t n = 100000;
    double *p0 = drand_buf(n, -1, 1), *g0 = drand_buf(n, -1, 1);
    float *pa = to_f(p0, n), *ga = to_f(g0, n), *ma = fbuf(n), *va = fbuf(n);
    float *pb = to_f(p0, n), *mb = fbuf(n), *vb = fbuf(n);
    eng_adam_args a = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f, .step = 1};
    assert_int_equal(B->ops->adam_step(B, n, pa, ga, ma, va, &a), 0);
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(B1->ops->adam_step(B1, 1, pb + i, ga + i, mb + i, vb + i, &a), 0);
    assert_memory_equal(pa, pb, (size_t)n * sizeof(float));
}

static void sgd_run(float momentum, bool nesterov, float wd)
{
    const int64_t n = 7;
    eng_sgd_args a = {.lr = 0.05f, .momentum = momentum, .weight_decay = wd, .nesterov = nesterov};
    double *p = drand_buf(n, -1, 1), *buf = dbuf(n);
    float *fp = to_f(p, n), *fbf = fbuf(n);
    for (int64_t i = 0; i < n; i++)
        fbf[i] = 42.0f; /* must not be read on the first step */
    for (int t = 1; t <= 3; t++) {
        double *g = drand_buf(n, -1, 1);
        float *fg = to_f(g, n);
        a.first = t == 1;
        assert_int_equal(B->ops->sgd_step(B, n, fp, fg, fbf, &a), 0);
        for (int64_t i = 0; i < n; i++) {
            double d = g[i] + (double)a.weight_decay * p[i];
            if (momentum != 0.0f) {
                buf[i] = t == 1 ? d : (double)momentum * buf[i] + d;
                d = nesterov ? d + (double)momentum * buf[i] : buf[i];
            }
            p[i] -= (double)a.lr * d;
        }
    }
    char what[64];
    snprintf(what, sizeof what, "sgd momentum %.1f%s wd %.2f", (double)momentum, nesterov ? " nesterov" : "",
             (double)wd);
    CHECK_CLOSE(what, fp, p, n, 1e-6);
    if (momentum == 0.0f)
        for (int64_t i = 0; i < n; i++)
            assert_true(fbf[i] == 42.0f); /* plain SGD leaves buf alone */
    else
        CHECK_CLOSE("momentum buffer", fbf, buf, n, 1e-6);
}

static void test_sgd(void **state)
{
    (void)state;
    sgd_run(0.0f, false, 0.0f);
    sgd_run(0.0f, false, 0.01f);
    sgd_run(0.9f, false, 0.01f);
    sgd_run(0.9f, true, 0.01f);
    /* By hand: p = 1, g = 0.5, lr 0.1, momentum 0.9.
     * heavy ball: buf = 0.5, 0.95, 1.355 -> p = 0.95, 0.855, 0.7195
     * nesterov:   d = g + 0.9 buf = 0.95, 1.355, 1.7195 -> p = 0.905, 0.7695, 0.59755 */
    const double heavy[3] = {0.95, 0.855, 0.7195}, nest[3] = {0.905, 0.7695, 0.59755};
    for (int mode = 0; mode < 2; mode++) {
        float *p = fbuf(1), *g = fbuf(1), *buf = fbuf(1);
        p[0] = 1.0f;
        g[0] = 0.5f;
        eng_sgd_args a = {.lr = 0.1f, .momentum = 0.9f, .nesterov = mode == 1};
        for (int t = 1; t <= 3; t++) {
            a.first = t == 1;
            assert_int_equal(B->ops->sgd_step(B, 1, p, g, buf, &a), 0);
            const double *want = mode ? nest : heavy;
            assert_true(fabs(p[0] - want[t - 1]) < 1e-6);
        }
    }
    /* plain SGD accepts buf = NULL */
    float *p = fbuf(3), *g = fbuf(3);
    eng_sgd_args a = {.lr = 0.1f};
    assert_int_equal(B->ops->sgd_step(B, 3, p, g, NULL, &a), 0);
}

static void test_sumsq_clip(void **state)
{
    (void)state;
    const int64_t n = 100001;
    double *x = drand_buf(n, -1, 1);
    float *fx = to_f(x, n);
    double want = 0.0;
    for (int64_t i = 0; i < n; i++)
        want += x[i] * x[i];
    double *s = (double *)fbuf(2), s1;
    *s = -1.0; /* overwritten */
    assert_int_equal(B->ops->sumsq(B, n, fx, s), 0);
    assert_true(fabs(*s - want) <= 1e-12 * want);
    assert_int_equal(B1->ops->sumsq(B1, n, fx, &s1), 0);
    assert_memory_equal(&s1, s, sizeof s1); /* the same bits on one thread */

    /* torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied when < 1 */
    const double norm = sqrt(*s);
    float *g = to_f(x, n);
    assert_int_equal(B->ops->clip_by_norm(B, n, g, s, 10.0f), 0);
    const double coef = 10.0 / (norm + 1e-6);
    assert_true(coef < 1.0);
    double *wg = dbuf(n);
    for (int64_t i = 0; i < n; i++)
        wg[i] = x[i] * coef;
    CHECK_CLOSE("clip_by_norm, clipped", g, wg, n, 1e-6);
    float *g2 = to_f(x, n);
    assert_int_equal(B->ops->clip_by_norm(B, n, g2, s, (float)(norm * 2)), 0);
    assert_memory_equal(g2, fx, (size_t)n * sizeof(float)); /* coef >= 1: untouched */
    /* empty */
    assert_int_equal(B->ops->sumsq(B, 0, NULL, s), 0);
    assert_true(*s == 0.0);
}

/* ============================== determinism ============================== */

static void test_determinism(void **state)
{
    (void)state;
    /* conv backward twice: the same bits, on each of the paths (im2col +
     * sgemm, channel-vectorised, pixel-vectorised) */
    const eng_conv_desc cds[3] = {
        {.n = 9, .c = 4, .h = 11, .w = 11, .k = 6, .kh = 3, .kw = 3, .stride = 1, .pad = 1, .oh = 11, .ow = 11},
        {.n = 9, .c = 8, .h = 7, .w = 7, .k = 16, .kh = 3, .kw = 3, .stride = 1, .pad = 1, .oh = 7, .ow = 7},
        {.n = 9, .c = 3, .h = 16, .w = 16, .k = 8, .kh = 3, .kw = 3, .stride = 1, .pad = 1, .oh = 16, .ow = 16},
    };
    for (int v = 0; v < 3; v++) {
        const eng_conv_desc d = cds[v];
        const int64_t nx = d.n * d.c * d.h * d.w, nw = d.k * d.c * 9, ny = d.n * d.k * d.oh * d.ow;
        float *x = to_f(drand_buf(nx, -1, 1), nx), *w = to_f(drand_buf(nw, -1, 1), nw);
        float *dy = to_f(drand_buf(ny, -1, 1), ny);
        float *dx1 = fbuf(nx), *dw1 = fbuf(nw), *db1 = fbuf(d.k), *dx2 = fbuf(nx), *dw2 = fbuf(nw), *db2 = fbuf(d.k);
        float *y1 = fbuf(ny), *y2 = fbuf(ny);
        void *ws = NULL;
        assert_int_equal(B->ops->alloc(B, B->ops->conv2d_workspace(B, &d), &ws), 0);
        bk_bufs[n_bk++] = ws;
        assert_int_equal(B->ops->conv2d_forward(B, &d, x, w, NULL, y1, ws), 0);
        assert_int_equal(B->ops->conv2d_forward(B, &d, x, w, NULL, y2, ws), 0);
        assert_memory_equal(y1, y2, (size_t)ny * sizeof(float));
        assert_int_equal(B->ops->conv2d_backward(B, &d, x, w, dy, dx1, dw1, db1, ws), 0);
        assert_int_equal(B->ops->conv2d_backward(B, &d, x, w, dy, dx2, dw2, db2, ws), 0);
        assert_memory_equal(dx1, dx2, (size_t)nx * sizeof(float));
        assert_memory_equal(dw1, dw2, (size_t)nw * sizeof(float));
        assert_memory_equal(db1, db2, (size_t)d.k * sizeof(float));
        /* our kernels' bias gradient does not depend on the thread count
         * (oneDNN's does: both backends here are held to our kernels) */
        eng_backend *own[2];
        setenv("EPOCHD_KERNELS", "own", 1);
        for (int t = 0; t < 2; t++)
            assert_int_equal(eng_cpu_backend_new(2 - t, &own[t]), 0);
        unsetenv("EPOCHD_KERNELS");
        for (int t = 0; t < 2; t++) {
            void *ws1 = NULL;
            assert_int_equal(own[t]->ops->alloc(own[t], own[t]->ops->conv2d_workspace(own[t], &d), &ws1), 0);
            assert_int_equal(own[t]->ops->conv2d_backward(own[t], &d, x, w, dy, dx2, dw2, t ? db2 : db1, ws1), 0);
            own[t]->ops->free(own[t], ws1);
            eng_backend_free(own[t]);
        }
        assert_memory_equal(db1, db2, (size_t)d.k * sizeof(float));
    }

    /* batchnorm forward twice, and on one thread: the same bits */
    const int64_t outer = 200, n = 8, inner = 49, tot = outer * n * inner;
    eng_norm_desc nd = {.outer = outer, .n = n, .inner = inner, .eps = 1e-5f, .momentum = 0.1f};
    float *bx = to_f(drand_buf(tot, -1, 2), tot), *g = to_f(drand_buf(n, 0.5, 1.5), n);
    float *bb = to_f(drand_buf(n, -1, 1), n);
    float *y[3], *rm[3], *rv[3], *sm[3], *si[3];
    for (int t = 0; t < 3; t++) {
        eng_backend *bk = t < 2 ? B : B1;
        y[t] = fbuf(tot);
        rm[t] = fbuf(n);
        rv[t] = fbuf(n);
        sm[t] = fbuf(n);
        si[t] = fbuf(n);
        assert_int_equal(bk->ops->batchnorm_forward_train(bk, &nd, bx, g, bb, y[t], rm[t], rv[t], sm[t], si[t]), 0);
    }
    for (int t = 1; t < 3; t++) {
        assert_memory_equal(y[0], y[t], (size_t)tot * sizeof(float));
        assert_memory_equal(rm[0], rm[t], (size_t)n * sizeof(float));
        assert_memory_equal(rv[0], rv[t], (size_t)n * sizeof(float));
        assert_memory_equal(sm[0], sm[t], (size_t)n * sizeof(float));
        assert_memory_equal(si[0], si[t], (size_t)n * sizeof(float));
    }
    /* batchnorm and layernorm parameter gradients, bias_grad, xent: thread-count independent */
    float *bdy = to_f(drand_buf(tot, -1, 1), tot), *dxa = fbuf(tot), *dxb = fbuf(tot);
    float *dga = fbuf(n), *dgb = fbuf(n), *dba = fbuf(n), *dbb = fbuf(n);
    assert_int_equal(B->ops->batchnorm_backward(B, &nd, bx, bdy, g, sm[0], si[0], dxa, dga, dba), 0);
    assert_int_equal(B1->ops->batchnorm_backward(B1, &nd, bx, bdy, g, sm[0], si[0], dxb, dgb, dbb), 0);
    assert_memory_equal(dxa, dxb, (size_t)tot * sizeof(float));
    assert_memory_equal(dga, dgb, (size_t)n * sizeof(float));
    assert_memory_equal(dba, dbb, (size_t)n * sizeof(float));
    eng_norm_desc ld = {.outer = outer * inner, .n = n, .inner = 1, .eps = 1e-5f};
    float *ms = fbuf(outer * inner), *rs_ = fbuf(outer * inner);
    assert_int_equal(B->ops->layernorm_forward(B, &ld, bx, g, bb, y[1], ms, rs_), 0);
    assert_int_equal(B->ops->layernorm_backward(B, &ld, bx, bdy, g, ms, rs_, dxa, dga, dba), 0);
    assert_int_equal(B1->ops->layernorm_backward(B1, &ld, bx, bdy, g, ms, rs_, dxb, dgb, dbb), 0);
    assert_memory_equal(dga, dgb, (size_t)n * sizeof(float));
    assert_memory_equal(dba, dbb, (size_t)n * sizeof(float));
    /* a long gamma (summed per column block, not per chunk): the same too */
    eng_norm_desc lw = {.outer = 40, .n = tot / 40, .inner = 1, .eps = 1e-5f};
    float *gw = to_f(drand_buf(lw.n, 0.5, 1.5), lw.n), *bw = to_f(drand_buf(lw.n, -1, 1), lw.n);
    float *dgw[2] = {fbuf(lw.n), fbuf(lw.n)}, *dbw[2] = {fbuf(lw.n), fbuf(lw.n)};
    assert_int_equal(B->ops->layernorm_forward(B, &lw, bx, gw, bw, y[1], ms, rs_), 0);
    assert_int_equal(B->ops->layernorm_backward(B, &lw, bx, bdy, gw, ms, rs_, dxa, dgw[0], dbw[0]), 0);
    assert_int_equal(B1->ops->layernorm_backward(B1, &lw, bx, bdy, gw, ms, rs_, dxb, dgw[1], dbw[1]), 0);
    assert_memory_equal(dxa, dxb, (size_t)tot * sizeof(float));
    assert_memory_equal(dgw[0], dgw[1], (size_t)lw.n * sizeof(float));
    assert_memory_equal(dbw[0], dbw[1], (size_t)lw.n * sizeof(float));
    assert_int_equal(B->ops->bias_grad(B, outer, n, inner, bdy, dga), 0);
    assert_int_equal(B1->ops->bias_grad(B1, outer, n, inner, bdy, dgb), 0);
    assert_memory_equal(dga, dgb, (size_t)n * sizeof(float));
    int32_t *lab = (int32_t *)fbuf(outer * inner);
    for (int64_t i = 0; i < outer * inner; i++)
        lab[i] = (int32_t)(i % n);
    double acc_a[2] = {0, 0}, acc_b[2] = {0, 0};
    eng_xent_desc xd = {.rows = outer * inner, .classes = n, .k = 2, .scale = 1};
    assert_int_equal(B->ops->xent(B, &xd, bx, lab, dxa, acc_a), 0);
    assert_int_equal(B1->ops->xent(B1, &xd, bx, lab, dxb, acc_b), 0);
    assert_memory_equal(acc_a, acc_b, sizeof acc_a);
}

static int group_setup(void **state)
{
    (void)state;
    if (eng_cpu_backend_new(2, &B) != 0 || eng_cpu_backend_new(1, &B1) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    eng_backend_free(B);
    eng_backend_free(B1);
    return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_seed, teardown_bufs)

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        T(test_backend_basics),  T(test_argument_checks), T(test_gemm),
        T(test_gemm_batch_forms), T(test_bias),           T(test_add_copy2d),
        T(test_transpose),       T(test_mean_lastdim),    T(test_conv2d),
        T(test_pool),            T(test_pool_ties),       T(test_pool_special_values), T(test_pool_levels),
        T(test_batchnorm),       T(test_blocked_layout),  T(test_layernorm),
        T(test_activations),     T(test_fused_epilogues),
        T(test_activation_accuracy), T(test_softmax),     T(test_xent),
        T(test_dropout),         T(test_patchify),        T(test_batch_gather),
        T(test_adam),            T(test_sgd),             T(test_sumsq_clip),
        T(test_determinism),
    };
    return cmocka_run_group_tests_name("cpu_ops", tests, group_setup, group_teardown);
}
