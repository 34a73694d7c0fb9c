/* precision bf16 on the CPU backend.
 *
 * - Matrix products and convolutions (forward, dx, dw, db), on oneDNN and on
 *   our own kernels (EPOCHD_KERNELS forces each): within 1e-5 (relative L2)
 *   of a double-precision reference computed from the inputs rounded to bf16
 *   (round to nearest even, written here with frexp/rint, apart from the
 *   engine's bit trick) - so the products are exactly those of bf16 inputs
 *   with float32 accumulation - and at least 1e-4 but at most 1e-2 from the
 *   reference on the unrounded inputs, so rounding did happen and costs only
 *   what bf16 costs (2^-9 per input).
 * - Every other operation is float32 at either precision: the same bits.
 * - The seed's mixers (PyTorch 1.13's CPU autocast cannot run them, so
 *   epochd fp32 is the reference): three Adam steps of mlp_mixer_S4 and
 *   mlp_mixer_B4 in bf16 against fp32 from the same start: logits within
 *   1e-2 (relative L2; bf16 costs about 3e-3 here), losses within 1e-3,
 *   the parameter changes within 2e-1 on their own scale (Adam divides by
 *   each element's own gradient size, see tests/parity/cases_bf16.json;
 *   about 4e-2 here), and 15 steps on one batch bring the loss down as
 *   fp32 does (final loss within 10% of fp32's, both far below the
 *   first).
 *
 * Run as is, and again under ONEDNN_MAX_CPU_ISA=AVX2 / AVX512_CORE with
 * EPOCHD_CPU_ISA lowered (meson tests bf16_avx2, bf16_avx512): a machine
 * without AVX512-BF16, where oneDNN refuses bf16 (AVX2: our rounding path
 * computes) or emulates it; test_info checks the simulation took effect. */
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
#include "engine/model.h"
#include "engine/optim.h"
#include "tests/common/seed_models.h"

static eng_backend *B32;  /* fp32, kernels chosen as usual */
static eng_backend *Bown; /* bf16 on our kernels */
static eng_backend *Bdn;  /* bf16 on oneDNN where it serves the shape */
static eng_backend *Bauto; /* bf16, kernels chosen as usual */

/* ---- helpers ---- */

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static double urand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) * (1.0 / 9007199254740992.0);
}

static float *frand(int64_t n)
{
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(2.0 * urand() - 1.0);
    return p;
}

static float *fzero(int64_t n)
{
    float *p = calloc((size_t)(n ? n : 1), sizeof *p);
    assert_non_null(p);
    return p;
}

/* bf16 rounding (8 significant bits, ties to even) by frexp and rint. */
static double round_bf16(double x)
{
    int e;
    double m = frexp(x, &e); /* |m| in [0.5, 1) */
    return ldexp(rint(m * 256.0) / 256.0, e);
}

/* x's bf16 storage: the top half of round_bf16(x) as a float (exact: it has
 * 8 significant bits), for finite x in float's normal range */
static uint16_t bf16_bits_ref(float x)
{
    const float r = (float)round_bf16(x);
    uint32_t u;
    memcpy(&u, &r, sizeof u);
    assert_true((u & 0xFFFFu) == 0);
    return (uint16_t)(u >> 16);
}

/* bf16_bits_ref for every float: a NaN keeps its top half with the quiet
 * bit set, infinities stay, denormals round to bf16's denormal grid
 * (2^-133 apart), the largest floats round up to infinity */
static uint16_t bf16_bits_edge_ref(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (isnan(x))
        return (uint16_t)((u >> 16) | 0x40u);
    if (isinf(x))
        return (uint16_t)(u >> 16);
    const float r = (float)(fabs(x) < 0x1p-126 ? ldexp(rint(ldexp(x, 133)), -133) : round_bf16(x));
    memcpy(&u, &r, sizeof u);
    assert_true((u & 0xFFFFu) == 0);
    return (uint16_t)(u >> 16);
}

/* where element i of a tensor of `rows` rows of L values lies in its
 * token-major bf16 copy (backend.h: tb; 0 = the same place) */
static int64_t token_pos(int64_t i, int64_t L, int64_t rows, int64_t tb)
{
    if (!tb)
        return i;
    const int64_t r = i / L, M = rows / tb;
    return ((r % M) * tb + r / M) * L + i % L;
}

static double *to_d(const float *f, int64_t n, bool rounded)
{
    double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    assert_non_null(d);
    for (int64_t i = 0; i < n; i++)
        d[i] = rounded ? round_bf16(f[i]) : f[i];
    return d;
}

static double rel_l2(const float *a, const double *b, int64_t n)
{
    double d2 = 0.0, b2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        d2 += d * d;
        b2 += b[i] * b[i];
    }
    return isnan(d2) ? INFINITY : sqrt(d2) / fmax(sqrt(b2), 1e-30);
}

/* Checks a bf16 result against the references from rounded (r) and exact (x) inputs. */
static void check_bf16(const char *what, const float *got, const double *ref_r, const double *ref_x, int64_t n)
{
    const double er = rel_l2(got, ref_r, n), ex = rel_l2(got, ref_x, n);
    print_message("    %-44s vs rounded inputs %.2e, vs exact %.2e\n", what, er, ex);
    if (!(er <= 1e-5))
        fail_msg("%s: %.3e from the product of bf16-rounded inputs (tolerance 1e-5)", what, er);
    if (!(ex >= 1e-4 && ex <= 1e-2))
        fail_msg("%s: %.3e from the exact product (expected bf16's cost, 1e-4 .. 1e-2)", what, ex);
}

static eng_backend *open_with(eng_precision p, const char *kernels)
{
    if (kernels)
        setenv("EPOCHD_KERNELS", kernels, 1);
    else
        unsetenv("EPOCHD_KERNELS");
    eng_backend *b = NULL;
    assert_int_equal(eng_cpu_backend_open(2, p, &b), 0);
    unsetenv("EPOCHD_KERNELS");
    return b;
}

static int setup(void **state)
{
    (void)state;
    setenv("EPOCHD_KERNEL_FILE", "off", 1); /* every choice made here, none from earlier runs */
    B32 = open_with(ENG_PREC_FP32, NULL);
    Bown = open_with(ENG_PREC_BF16, "own");
    Bdn = open_with(ENG_PREC_BF16, "onednn");
    Bauto = open_with(ENG_PREC_BF16, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    eng_backend_free(B32);
    eng_backend_free(Bown);
    eng_backend_free(Bdn);
    eng_backend_free(Bauto);
    return 0;
}

/* ---- what runs here ---- */

static void test_info(void **state)
{
    (void)state;
    eng_cpu_info in;
    assert_int_equal(eng_cpu_info_get(&in), 0);
    print_message("    cpu %s, own kernels %s (at most %s), oneDNN %s %s, bf16 native %s, AMX %s\n", in.model, in.isa,
                  in.isa_max, in.onednn_version, in.onednn_isa, in.bf16_native ? "yes" : "no", in.amx ? "yes" : "no");
    assert_true(!strncmp(in.isa, "x86-64-v", 8));
    const char *max_isa = getenv("ONEDNN_MAX_CPU_ISA");
    if (max_isa && !strcmp(max_isa, "AVX2")) {
        assert_string_equal(in.onednn_isa, "avx2");
        assert_false(in.bf16_native);
    } else if (max_isa && !strcmp(max_isa, "AVX512_CORE")) {
        assert_string_equal(in.onednn_isa, "avx512_core");
        assert_false(in.bf16_native);
    }
    const char *own = getenv("EPOCHD_CPU_ISA");
    if (own) {
        char want[16];
        snprintf(want, sizeof want, "x86-64-%s", own);
        if (strcmp(in.isa_max, want) >= 0) /* v2 < v3 < v4 as strings */
            assert_string_equal(in.isa, want);
    }
}

/* ---- matrix products ---- */

typedef struct gemm_case {
    bool ta, tb;
    int64_t m, n, k, batch;
    bool shared_a, reduce;
} gemm_case;

static void gemm_ref(const gemm_case *g, const double *A, const double *B, double *C)
{
    const int64_t sa = g->shared_a ? 0 : g->m * g->k, sb = g->k * g->n, sc = g->reduce ? 0 : g->m * g->n;
    const int64_t lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
    memset(C, 0, (size_t)((g->reduce ? 1 : g->batch) * g->m * g->n) * sizeof *C);
    for (int64_t i = 0; i < g->batch; i++)
        ref_gemm(g->ta, g->tb, g->m, g->n, g->k, 1.0, A + i * sa, lda, B + i * sb, ldb, 1.0, C + i * sc, g->n);
}

static void gemm_one(eng_backend *b, const char *side, const gemm_case *g)
{
    const int64_t na = (g->shared_a ? 1 : g->batch) * g->m * g->k, nb = g->batch * g->k * g->n;
    const int64_t nc = (g->reduce ? 1 : g->batch) * g->m * g->n;
    float *A = frand(na), *Bm = frand(nb), *C = fzero(nc), *C32 = fzero(nc);
    eng_gemm_desc d = {.ta = g->ta, .tb = g->tb, .m = g->m, .n = g->n, .k = g->k, .lda = g->ta ? g->m : g->k,
                       .ldb = g->tb ? g->k : g->n, .ldc = g->n, .batch = g->batch,
                       .stride_a = g->shared_a ? 0 : g->m * g->k, .stride_b = g->k * g->n,
                       .stride_c = g->m * g->n, .alpha = 1.0f, .reduce_batch = g->reduce};
    assert_int_equal(b->ops->gemm(b, &d, A, Bm, C), 0);
    assert_int_equal(B32->ops->gemm(B32, &d, A, Bm, C32), 0);
    double *Ar = to_d(A, na, true), *Br = to_d(Bm, nb, true), *Ax = to_d(A, na, false), *Bx = to_d(Bm, nb, false);
    double *Rr = malloc((size_t)nc * sizeof *Rr), *Rx = malloc((size_t)nc * sizeof *Rx);
    assert_non_null(Rr);
    assert_non_null(Rx);
    gemm_ref(g, Ar, Br, Rr);
    gemm_ref(g, Ax, Bx, Rx);
    char what[128];
    snprintf(what, sizeof what, "%s gemm %c%c %lldx%lldx%lld b%lld%s%s", side, g->ta ? 't' : 'n', g->tb ? 't' : 'n',
             (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->batch, g->shared_a ? " shared" : "",
             g->reduce ? " sum" : "");
    check_bf16(what, C, Rr, Rx, nc);
    assert_true(rel_l2(C32, Rx, nc) <= 1e-6); /* the exact reference itself is right */

    /* operands stored in bf16 (packed here with the rounding written in
     * this file): the same bits as from the float32 operands, A, B or both */
    uint16_t *A16 = malloc((size_t)na * sizeof *A16), *B16 = malloc((size_t)nb * sizeof *B16);
    float *C16 = fzero(nc);
    assert_true(A16 && B16);
    for (int64_t i = 0; i < na; i++)
        A16[i] = bf16_bits_ref(A[i]);
    for (int64_t i = 0; i < nb; i++)
        B16[i] = bf16_bits_ref(Bm[i]);
    for (int which = 1; which <= 3; which++) {
        eng_gemm_desc d16 = d;
        d16.a_bf16 = which & 1;
        d16.b_bf16 = (which & 2) != 0;
        memset(C16, 0xff, (size_t)nc * sizeof *C16);
        assert_int_equal(b->ops->gemm(b, &d16, d16.a_bf16 ? (const float *)(const void *)A16 : A,
                                      d16.b_bf16 ? (const float *)(const void *)B16 : Bm, C16),
                         0);
        print_message("    %-44s bit for bit\n", which == 1 ? "A stored in bf16" : which == 2 ? "B stored in bf16"
                                                                                          : "A and B stored in bf16");
        assert_memory_equal(C16, C, (size_t)nc * sizeof *C);
    }
    /* a float32 backend has no use for them */
    d.a_bf16 = true;
    assert_int_equal(B32->ops->gemm(B32, &d, (const float *)(const void *)A16, Bm, C32), ENG_EINVAL);
    free(A16), free(B16), free(C16);
    free(A), free(Bm), free(C), free(C32), free(Ar), free(Br), free(Ax), free(Bx), free(Rr), free(Rx);
}

static void test_gemm(void **state)
{
    (void)state;
    static const gemm_case cases[] = {
        {false, true, 64, 48, 40, 1, false, false},  /* a linear layer's forward */
        {true, false, 33, 17, 129, 1, false, false}, /* its weight gradient */
        {false, false, 20, 30, 50, 1, false, false}, /* its input gradient */
        {false, false, 16, 12, 16, 5, true, false},  /* token mixing: one weight, per-sample inputs */
        {true, false, 16, 12, 16, 5, true, false},
        {false, true, 16, 16, 12, 6, false, true},   /* token mixing's weight gradient, summed over the batch */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gemm_one(Bown, "own", &cases[i]);
        gemm_one(Bdn, "onednn", &cases[i]);
    }
}

/* ---- convolutions ---- */

typedef struct conv_case {
    int64_t n, c, h, w, k, kh, stride, pad;
} conv_case;

/* dx, dw, db of a convolution in double from x, w and dy. */
static void conv_grads_ref(const eng_conv_desc *d, const double *x, const double *w, const double *dy, double *dx,
                           double *dw, double *db)
{
    memset(dx, 0, (size_t)(d->n * d->c * d->h * d->w) * sizeof *dx);
    memset(dw, 0, (size_t)(d->k * d->c * d->kh * d->kw) * sizeof *dw);
    memset(db, 0, (size_t)d->k * sizeof *db);
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t k = 0; k < d->k; k++)
            for (int64_t oy = 0; oy < d->oh; oy++)
                for (int64_t ox = 0; ox < d->ow; ox++) {
                    const double g = dy[((n * d->k + k) * d->oh + oy) * d->ow + ox];
                    db[k] += g;
                    for (int64_t c = 0; c < d->c; c++)
                        for (int64_t i = 0; i < d->kh; i++)
                            for (int64_t j = 0; j < d->kw; j++) {
                                const int64_t y = oy * d->stride - d->pad + i, xx = ox * d->stride - d->pad + j;
                                if (y < 0 || y >= d->h || xx < 0 || xx >= d->w)
                                    continue;
                                const int64_t xi = ((n * d->c + c) * d->h + y) * d->w + xx;
                                const int64_t wi = ((k * d->c + c) * d->kh + i) * d->kw + j;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                }
}

static void conv_one(eng_backend *b, const char *side, const conv_case *cc)
{
    eng_conv_desc d = {.n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w, .k = cc->k, .kh = cc->kh, .kw = cc->kh,
                       .stride = cc->stride, .pad = cc->pad};
    d.oh = ref_out_size(d.h, d.kh, d.stride, d.pad);
    d.ow = ref_out_size(d.w, d.kw, d.stride, d.pad);
    const int64_t nx = d.n * d.c * d.h * d.w, nw = d.k * d.c * d.kh * d.kw, ny = d.n * d.k * d.oh * d.ow;
    float *x = frand(nx), *w = frand(nw), *bias = frand(d.k), *dy = frand(ny);
    float *y = fzero(ny), *dx = fzero(nx), *dw = fzero(nw), *db = fzero(d.k);
    void *ws = NULL;
    assert_int_equal(b->ops->alloc(b, b->ops->conv2d_workspace(b, &d), &ws), 0);
    assert_int_equal(b->ops->conv2d_forward(b, &d, x, w, bias, y, ws), 0);
    assert_int_equal(b->ops->conv2d_backward(b, &d, x, w, dy, dx, dw, db, ws), 0);
    b->ops->free(b, ws);

    double *xr = to_d(x, nx, true), *wr = to_d(w, nw, true), *dyr = to_d(dy, ny, true);
    double *xx = to_d(x, nx, false), *wx = to_d(w, nw, false), *dyx = to_d(dy, ny, false), *bd = to_d(bias, d.k, false);
    double *yr = malloc((size_t)ny * sizeof *yr), *yx = malloc((size_t)ny * sizeof *yx);
    double *dxr = malloc((size_t)nx * sizeof *dxr), *dxx = malloc((size_t)nx * sizeof *dxx);
    double *dwr = malloc((size_t)nw * sizeof *dwr), *dwx = malloc((size_t)nw * sizeof *dwx);
    double *dbr = malloc((size_t)d.k * sizeof *dbr), *dbx = malloc((size_t)d.k * sizeof *dbx);
    assert_true(yr && yx && dxr && dxx && dwr && dwx && dbr && dbx);
    ref_conv2d(d.n, d.c, d.h, d.w, d.k, d.kh, d.kw, d.stride, d.pad, xr, wr, bd, yr);
    ref_conv2d(d.n, d.c, d.h, d.w, d.k, d.kh, d.kw, d.stride, d.pad, xx, wx, bd, yx);
    conv_grads_ref(&d, xr, wr, dyr, dxr, dwr, dbr);
    conv_grads_ref(&d, xx, wx, dyx, dxx, dwx, dbx);
    char what[128];
    snprintf(what, sizeof what, "%s conv n%lld c%lld %lldx%lld k%lld %lldx%lld s%lld p%lld", side, (long long)d.n,
             (long long)d.c, (long long)d.h, (long long)d.w, (long long)d.k, (long long)d.kh, (long long)d.kw,
             (long long)d.stride, (long long)d.pad);
    print_message("  %s\n", what);
    check_bf16("forward", y, yr, yx, ny);
    check_bf16("dx", dx, dxr, dxx, nx);
    check_bf16("dw", dw, dwr, dwx, nw);
    /* db sums dy: bf16 rounding of dy alone, which a sum of many averages out */
    const double ebr = rel_l2(db, dbr, d.k), ebx = rel_l2(db, dbx, d.k);
    print_message("    %-44s vs rounded inputs %.2e, vs exact %.2e\n", "db", ebr, ebx);
    assert_true(ebr <= 1e-5);
    assert_true(ebx <= 1e-2);
    free(x), free(w), free(bias), free(dy), free(y), free(dx), free(dw), free(db);
    free(xr), free(wr), free(dyr), free(xx), free(wx), free(dyx), free(bd), free(yr), free(yx);
    free(dxr), free(dxx), free(dwr), free(dwx), free(dbr), free(dbx);
}

static void test_conv(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        {2, 3, 9, 7, 4, 3, 1, 1},    /* a first layer */
        {3, 8, 8, 8, 16, 3, 1, 1},   /* the seed CNN's inner layers */
        {2, 16, 5, 5, 16, 3, 2, 0},  /* stride 2 */
        {2, 3, 12, 12, 8, 7, 2, 3},  /* residual_cnn's stem */
        {4, 16, 1, 1, 8, 3, 1, 1},   /* a 1x1 image */
        /* small planes, whose weights gradient on oneDNN's side is products
         * over shifted views (cpu_conv_wgrad.c): residual_cnn's 3x3, a 4x4,
         * a kernel wider than the image, no padding on a non-square one */
        {5, 20, 3, 3, 24, 3, 1, 1},
        {3, 8, 4, 4, 16, 3, 1, 1},
        {2, 6, 3, 3, 5, 5, 1, 2},
        {3, 4, 4, 3, 6, 3, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conv_one(Bown, "own", &cases[i]);
        conv_one(Bdn, "onednn", &cases[i]);
    }
}

/* The small-plane weights gradient (cpu_conv_wgrad.c) turns x and dy
 * sample-innermost in bf16 in 16 x 16 tiles, in AVX-512 registers on an
 * x86-64-v4 CPU and in scalar loops elsewhere: the same bits either way,
 * on batches with whole tiles and tails, with ties, NaN, infinities,
 * denormals and -0 among the values (no bias: its sum has per-level
 * forms of its own). */
static void test_conv_wgrad_levels(void **state)
{
    (void)state;
    eng_cpu_info in;
    assert_int_equal(eng_cpu_info_get(&in), 0);
    const char *was = !strcmp(in.isa, "x86-64-v4") ? "v4" : !strcmp(in.isa, "x86-64-v3") ? "v3" : "v2";
    if (strcmp(in.isa_max, "x86-64-v4")) {
        print_message("  not an x86-64-v4 CPU: one form only, nothing to compare\n");
        return;
    }
    static const conv_case cases[] = {{40, 20, 3, 3, 24, 3, 1, 1}, {33, 16, 4, 4, 16, 3, 1, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *cc = &cases[i];
        eng_conv_desc d = {.n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w, .k = cc->k, .kh = cc->kh, .kw = cc->kh,
                           .stride = cc->stride, .pad = cc->pad};
        d.oh = ref_out_size(d.h, d.kh, d.stride, d.pad);
        d.ow = ref_out_size(d.w, d.kw, d.stride, d.pad);
        const int64_t nx = d.n * d.c * d.h * d.w, nw = d.k * d.c * d.kh * d.kw, ny = d.n * d.k * d.oh * d.ow;
        float *x = frand(nx), *w = frand(nw), *dy = frand(ny);
        const float special[] = {NAN, INFINITY, -INFINITY, -0.0f, 1e-40f, 1.0f + 1.0f / 256.0f, 1.0f + 3.0f / 256.0f};
        for (size_t k = 0; k < sizeof special / sizeof special[0]; k++) {
            x[(int64_t)(k * 131 + 7) % nx] = special[k];
            dy[(int64_t)(k * 97 + 3) % ny] = special[k];
        }
        float *dx[2] = {fzero(nx), fzero(nx)}, *dw[2] = {fzero(nw), fzero(nw)};
        void *ws = NULL;
        assert_int_equal(Bdn->ops->alloc(Bdn, Bdn->ops->conv2d_workspace(Bdn, &d), &ws), 0);
        for (int l = 0; l < 2; l++) {
            assert_int_equal(eng_cpu_set_isa(l ? "v3" : "v4"), 0);
            assert_int_equal(Bdn->ops->conv2d_backward(Bdn, &d, x, w, dy, dx[l], dw[l], NULL, ws), 0);
        }
        assert_int_equal(eng_cpu_set_isa(was), 0); /* the level the other tests run at */
        Bdn->ops->free(Bdn, ws);
        assert_memory_equal(dw[0], dw[1], (size_t)nw * sizeof(float));
        assert_memory_equal(dx[0], dx[1], (size_t)nx * sizeof(float));
        print_message("  conv n%lld c%lld %lldx%lld k%lld: v4 and v3 the same bits\n", (long long)d.n,
                      (long long)d.c, (long long)d.h, (long long)d.w, (long long)d.k);
        free(x);
        free(w);
        free(dy);
        for (int l = 0; l < 2; l++) {
            free(dx[l]);
            free(dw[l]);
        }
    }
}

/* The forward's reordered x, kept for the weights gradient (d.keep): the
 * same bits as reordering again; really read (a damaged copy changes dw);
 * not read for another x, nor after a forward that did not fill it. */
static void test_conv_keep(void **state)
{
    (void)state;
    eng_backend *sides[] = {Bdn, open_with(ENG_PREC_FP32, "onednn")};
    for (int s = 0; s < 2; s++) {
        eng_backend *b = sides[s];
        eng_conv_desc d = {.n = 6, .c = 16, .h = 9, .w = 9, .k = 16, .kh = 3, .kw = 3, .stride = 1, .pad = 1,
                           .oh = 9, .ow = 9};
        const int64_t nx = d.n * d.c * d.h * d.w, nw = d.k * d.c * 9, ny = d.n * d.k * d.oh * d.ow;
        const size_t kb = b->ops->conv2d_keep(b, &d);
        print_message("  %s: %zu bytes kept\n", s ? "fp32" : "bf16", kb);
        eng_cpu_info in;
        assert_int_equal(eng_cpu_info_get(&in), 0);
        if (s == 0 && in.bf16_native)
            assert_true(kb >= (size_t)nx * 2); /* bf16 on oneDNN's kernels reorders x */
        if (kb == 0)
            continue; /* oneDNN refuses bf16 here (AVX2: our kernels keep nothing), or reads x as it is */
        float *x = frand(nx), *x2 = malloc((size_t)nx * sizeof *x2), *w = frand(nw), *bias = frand(d.k);
        float *dy = frand(ny), *y = fzero(ny), *dx = fzero(nx), *dw[4] = {fzero(nw), fzero(nw), fzero(nw), fzero(nw)};
        float *db = fzero(d.k);
        unsigned char *keep = malloc(kb);
        void *ws = NULL;
        assert_true(x2 && keep);
        memcpy(x2, x, (size_t)nx * sizeof *x);
        assert_int_equal(b->ops->alloc(b, b->ops->conv2d_workspace(b, &d), &ws), 0);
        assert_int_equal(b->ops->conv2d_forward(b, &d, x, w, bias, y, ws), 0);
        assert_int_equal(b->ops->conv2d_backward(b, &d, x, w, dy, dx, dw[0], db, ws), 0); /* nothing kept */
        eng_conv_desc dk = d;
        dk.keep = keep;
        dk.keep_bytes = kb;
        assert_int_equal(b->ops->conv2d_forward(b, &dk, x, w, bias, y, ws), 0);
        assert_int_equal(b->ops->conv2d_backward(b, &dk, x, w, dy, dx, dw[1], db, ws), 0);
        assert_memory_equal(dw[0], dw[1], (size_t)nw * sizeof(float));
        memset(keep + kb - (size_t)nx, 0x3f, (size_t)nx); /* the stage's end: x now reads as other values */
        assert_int_equal(b->ops->conv2d_backward(b, &dk, x2, w, dy, dx, dw[2], db, ws), 0);
        assert_memory_equal(dw[0], dw[2], (size_t)nw * sizeof(float)); /* another x: reordered again */
        assert_int_equal(b->ops->conv2d_backward(b, &dk, x, w, dy, dx, dw[3], db, ws), 0);
        assert_memory_not_equal(dw[0], dw[3], (size_t)nw * sizeof(float)); /* x: the damaged copy was read */
        assert_int_equal(Bown->ops->conv2d_forward(Bown, &dk, x, w, bias, y, ws), 0); /* own kernels: forgotten */
        assert_int_equal(b->ops->conv2d_backward(b, &dk, x, w, dy, dx, dw[3], db, ws), 0);
        assert_memory_equal(dw[0], dw[3], (size_t)nw * sizeof(float));
        b->ops->free(b, ws);
        free(x), free(x2), free(w), free(bias), free(dy), free(y), free(dx), free(db), free(keep);
        for (int i = 0; i < 4; i++)
            free(dw[i]);
    }
    eng_backend_free(sides[1]);
}

/* ---- everything else is float32 at either precision ---- */

static void same_bits(const char *what, const float *a, const float *b, int64_t n)
{
    print_message("    %s: the same bits in fp32 and bf16\n", what);
    assert_memory_equal(a, b, (size_t)n * sizeof *a);
}

/* The passes that write a tensor's bf16 storage: the float32 operation's
 * bits, rounded (layer norm: rows and slices; bias + activation: per row
 * and per slice, every activation) - and the float32 outputs unchanged. */
static void test_bf16_outputs(void **state)
{
    (void)state;
    static const int64_t shapes[][3] = {{37, 192, 1}, {5, 64, 96}, {2, 3, 70001}, {3, 40000, 1}, {24, 64, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int token_major = 0; token_major < 2; token_major++) {
            eng_norm_desc d = {.outer = shapes[s][0], .n = shapes[s][1], .inner = shapes[s][2], .eps = 1e-5f};
            const int64_t n = d.n, tot = d.outer * n * d.inner, nst = d.outer * d.inner;
            /* the bf16 outputs' layout: as the float32 tensor, or token-major
             * with the rows in blocks of the outer dimension (of 4 rows where
             * the rows are the outer dimension) */
            const int64_t L = d.inner > 1 ? d.inner : n, rows = tot / L;
            const int64_t tb = !token_major ? 0 : d.inner > 1 ? d.outer : rows % 4 == 0 ? 4 : rows;
#define P(i) token_pos((i), L, rows, tb)
            float *x = frand(tot), *g = frand(n), *bt = frand(n), *y = fzero(tot);
            float *m32 = fzero(nst), *r32 = fzero(nst), *m16 = fzero(nst), *r16 = fzero(nst);
            uint16_t *y16 = malloc((size_t)tot * sizeof *y16);
            assert_non_null(y16);
            assert_int_equal(Bauto->ops->layernorm_forward(Bauto, &d, x, g, bt, y, m32, r32), 0);
            assert_int_equal(Bauto->ops->layernorm_forward_bf16(Bauto, &d, x, g, bt, y16, tb, m16, r16), 0);
            for (int64_t i = 0; i < tot; i++)
                if (y16[P(i)] != bf16_bits_ref(y[i]))
                    fail_msg("layernorm_forward_bf16 %lldx%lldx%lld: element %lld is %#x, not %#x", (long long)d.outer,
                             (long long)n, (long long)d.inner, (long long)i, y16[P(i)], bf16_bits_ref(y[i]));
            assert_memory_equal(m16, m32, (size_t)nst * sizeof *m16);
            assert_memory_equal(r16, r32, (size_t)nst * sizeof *r16);
            print_message("    layernorm_forward_bf16 %lldx%lldx%lld%s: the float32 bits, rounded\n",
                          (long long)d.outer, (long long)n, (long long)d.inner, tb ? ", token-major" : "");
            if (token_major) /* a layout the rows do not split into */
                assert_int_equal(Bauto->ops->layernorm_forward_bf16(Bauto, &d, x, g, bt, y16, rows + 1, m16, r16),
                                 ENG_EINVAL);

            float *h1 = fzero(tot), *h2 = fzero(tot), *o1 = fzero(tot), *o2 = fzero(tot);
            for (int kind = ENG_ACT_NONE; kind <= ENG_ACT_TANH; kind++) {
                memcpy(h1, x, (size_t)tot * sizeof *x);
                memcpy(h2, x, (size_t)tot * sizeof *x);
                assert_int_equal(Bauto->ops->bias_act(Bauto, d.outer, n, d.inner, h1, bt, (eng_act)kind, 0.1f, o1), 0);
                assert_int_equal(
                    Bauto->ops->bias_act_bf16(Bauto, d.outer, n, d.inner, h2, bt, (eng_act)kind, 0.1f, o2, y16, tb), 0);
                assert_memory_equal(h1, h2, (size_t)tot * sizeof *h1);
                assert_memory_equal(o1, o2, (size_t)tot * sizeof *o1);
                for (int64_t i = 0; i < tot; i++)
                    if (y16[P(i)] != bf16_bits_ref(o1[i]))
                        fail_msg("bias_act_bf16 (activation %d): element %lld is %#x, not %#x", kind, (long long)i,
                                 y16[P(i)], bf16_bits_ref(o1[i]));
            }
            /* activation backward with its bias gradient, dx in bf16 only */
            float *db1 = fzero(n), *db2 = fzero(n);
            for (int kind = ENG_ACT_NONE; kind <= ENG_ACT_TANH; kind++) {
                assert_int_equal(Bauto->ops->act_forward(Bauto, (eng_act)kind, 0.1f, tot, x, o1), 0);
                /* the layer norm's output y serves as the incoming gradient */
                assert_int_equal(
                    Bauto->ops->act_bias_backward(Bauto, (eng_act)kind, 0.1f, d.outer, n, d.inner, x, o1, y, h2, db1),
                    0);
                assert_int_equal(Bauto->ops->act_bias_backward_bf16(Bauto, (eng_act)kind, 0.1f, d.outer, n, d.inner, x,
                                                                    o1, y, y16, tb, db2),
                                 0);
                assert_memory_equal(db1, db2, (size_t)n * sizeof *db1);
                for (int64_t i = 0; i < tot; i++)
                    if (y16[P(i)] != bf16_bits_ref(h2[i]))
                        fail_msg("act_bias_backward_bf16 (activation %d): element %lld is %#x, not %#x", kind,
                                 (long long)i, y16[P(i)], bf16_bits_ref(h2[i]));
            }
            print_message("    act_bias_backward_bf16 %lldx%lldx%lld: the float32 bits, rounded\n", (long long)d.outer,
                          (long long)n, (long long)d.inner);

            /* layer norm backward + bypass, with dx's bf16 form too */
            assert_int_equal(
                Bauto->ops->layernorm_backward_add(Bauto, &d, x, o1, g, m32, r32, h1, h2, y16, tb, db1, db2), 0);
            for (int64_t i = 0; i < tot; i++)
                if (y16[P(i)] != bf16_bits_ref(h2[i]))
                    fail_msg("layernorm_backward_add's dx16: element %lld is %#x, not %#x", (long long)i, y16[P(i)],
                             bf16_bits_ref(h2[i]));
            assert_int_equal(B32->ops->layernorm_backward_add(B32, &d, x, o1, g, m32, r32, h1, h2, y16, tb, db1, db2),
                             ENG_ENOTSUP);

            /* bias gradient with dy's bf16 copy: bias_grad's bits, dy rounded */
            assert_int_equal(Bauto->ops->bias_grad(Bauto, d.outer, n, d.inner, x, db1), 0);
            assert_int_equal(Bauto->ops->bias_grad_bf16(Bauto, d.outer, n, d.inner, x, db2, y16, tb), 0);
            assert_memory_equal(db1, db2, (size_t)n * sizeof *db1);
            for (int64_t i = 0; i < tot; i++)
                if (y16[P(i)] != bf16_bits_ref(x[i]))
                    fail_msg("bias_grad_bf16's dy16: element %lld is %#x, not %#x", (long long)i, y16[P(i)],
                             bf16_bits_ref(x[i]));
            assert_int_equal(B32->ops->bias_grad_bf16(B32, d.outer, n, d.inner, x, db2, y16, tb), ENG_ENOTSUP);
            print_message("    bias_grad_bf16 %lldx%lldx%lld: bias_grad's bits, dy rounded\n", (long long)d.outer,
                          (long long)n, (long long)d.inner);
            if (s == 0 && !token_major) {
                /* the rounding at its edges: NaNs (quiet, signalling, negative),
                 * infinities, denormals, ties either way, the largest floats;
                 * 96 values, so that whole vectors with and without a denormal
                 * and a tail all pass through the packing */
                static const uint32_t edge[] = {0x7fc00000u, 0x7f800001u, 0xffbfffffu, 0x7f800000u, 0xff800000u,
                                                0x00000001u, 0x807fffffu, 0x00400000u, 0x3f808000u, 0x3f818000u,
                                                0x3f808001u, 0x7f7fffffu, 0xff7f8000u, 0x00800000u, 0x80000000u};
                float *e = fzero(96), *eg = fzero(1);
                uint16_t *e16 = malloc(96 * sizeof *e16);
                assert_non_null(e16);
                for (int i = 0; i < 96; i++) {
                    union {
                        uint32_t u;
                        float f;
                    } v = {.u = i < 32 ? 0x3f800000u + 0x1000u * (uint32_t)i : edge[(i - 32) % 15]};
                    if (i >= 64 && i < 80)
                        v.u = i % 2 ? 0x40408000u : 0xc0418000u; /* ties only: a vector without denormals */
                    e[i] = v.f;
                }
                assert_int_equal(Bauto->ops->bias_grad_bf16(Bauto, 96, 1, 1, e, eg, e16, 0), 0);
                for (int i = 0; i < 96; i++)
                    if (e16[i] != bf16_bits_edge_ref(e[i]))
                        fail_msg("bias_grad_bf16's dy16 of %#x is %#x, not %#x", ((const uint32_t *)(const void *)e)[i],
                                 e16[i], bf16_bits_edge_ref(e[i]));
                free(e), free(eg), free(e16);
            }
            free(db1), free(db2);
            free(x), free(g), free(bt), free(y), free(m32), free(r32), free(m16), free(r16), free(y16);
            free(h1), free(h2), free(o1), free(o2);
#undef P
        }
}

static void test_other_ops_unchanged(void **state)
{
    (void)state;
    eng_backend *bs[2] = {B32, Bauto};
    const int64_t N = 4, C = 6, H = 5, W = 5, n = N * C * H * W;
    float *x = frand(n), *dy = frand(n), *g = frand(C), *be = frand(C), *lg = frand(H * W), *lb = frand(H * W);
    float *out[2][8];
    for (int i = 0; i < 2; i++) {
        eng_backend *b = bs[i];
        for (int j = 0; j < 8; j++)
            out[i][j] = fzero(n);
        float rm[6] = {0}, rv[6] = {1, 1, 1, 1, 1, 1}, sm[6], si[6], dg[6], db[6];
        eng_norm_desc bn = {.outer = N, .n = C, .inner = H * W, .eps = 1e-5f, .momentum = 0.1f};
        assert_int_equal(b->ops->batchnorm_forward_train(b, &bn, x, g, be, out[i][0], rm, rv, sm, si), 0);
        assert_int_equal(b->ops->batchnorm_backward(b, &bn, x, dy, g, sm, si, out[i][1], dg, db), 0);
        eng_norm_desc ln = {.outer = N * C, .n = H * W, .inner = 1, .eps = 1e-5f};
        float *lm = fzero(N * C), *lr = fzero(N * C), *dlg = fzero(H * W), *dlb = fzero(H * W);
        assert_int_equal(b->ops->layernorm_forward(b, &ln, x, lg, lb, out[i][2], lm, lr), 0);
        assert_int_equal(b->ops->layernorm_backward(b, &ln, x, dy, lg, lm, lr, out[i][3], dlg, dlb), 0);
        assert_int_equal(b->ops->act_forward(b, ENG_ACT_GELU, 0.0f, n, x, out[i][4]), 0);
        assert_int_equal(b->ops->act_backward(b, ENG_ACT_GELU, 0.0f, n, x, out[i][4], dy, out[i][5]), 0);
        eng_pool_desc pd = {.mode = ENG_POOL_MAX, .n = N, .c = C, .h = H, .w = W, .kh = 3, .kw = 3, .stride = 2,
                            .pad = 1, .oh = 3, .ow = 3};
        assert_int_equal(b->ops->pool_forward(b, &pd, x, out[i][6]), 0);
        float *m = fzero(n), *v = fzero(n);
        memcpy(out[i][7], x, (size_t)n * sizeof(float));
        eng_adam_args aa = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f,
                            .step = 1};
        assert_int_equal(b->ops->adam_step(b, n, out[i][7], dy, m, v, &aa), 0);
        free(lm), free(lr), free(dlg), free(dlb), free(m), free(v);
    }
    static const char *const names[8] = {"batchnorm forward", "batchnorm backward", "layernorm forward",
                                         "layernorm backward", "gelu forward", "gelu backward", "max pool",
                                         "adam step"};
    for (int j = 0; j < 8; j++) {
        same_bits(names[j], out[0][j], out[1][j], n);
        free(out[0][j]);
        free(out[1][j]);
    }
    free(x), free(dy), free(g), free(be), free(lg), free(lb);
}

/* ---- the mixers against epochd fp32 ---- */

typedef struct mixer_run {
    eng_model *m;
    eng_optimizer *opt;
    float *x;
    int32_t *labels;
    float *dlogits;
    double *acc;
} mixer_run;

static void mixer_open(eng_backend *b, const char *name, int64_t batch, mixer_run *r)
{
    eng_model_desc md;
    seed_model_desc(seed_model_find(name), ENG_HEAD_LOGITS, &md);
    const eng_shape in = eng_shape3(3, 32, 32);
    assert_int_equal(eng_model_build(&md, &in, 10, NULL, NULL, &r->m), 0);
    assert_int_equal(eng_model_bind(r->m, b, batch), 0);
    assert_int_equal(eng_model_init_params(r->m, 7), 0);
    eng_train_desc td;
    eng_train_desc_default(&td);
    td.grad_clip = 1.0f;
    assert_int_equal(eng_optimizer_new(&td, b, eng_model_param_count(r->m), &r->opt), 0);
    rs = 0x1234567ull; /* the same batch for both precisions */
    r->x = frand(batch * 3 * 32 * 32);
    r->labels = malloc((size_t)batch * sizeof *r->labels);
    r->dlogits = fzero(batch * 10);
    r->acc = calloc(2, sizeof *r->acc);
    assert_true(r->labels && r->acc);
    for (int64_t i = 0; i < batch; i++)
        r->labels[i] = (int32_t)(urand() * 10.0) % 10;
}

static double mixer_step(eng_backend *b, mixer_run *r, int64_t batch, float *out)
{
    const float *logits;
    assert_int_equal(eng_model_forward(r->m, r->x, batch, true, 0, &logits), 0);
    if (out)
        memcpy(out, logits, (size_t)(batch * 10) * sizeof *out);
    r->acc[0] = r->acc[1] = 0.0;
    eng_xent_desc xd = {.rows = batch, .classes = 10, .k = 1, .scale = 1.0f / (float)batch};
    assert_int_equal(b->ops->xent(b, &xd, logits, r->labels, r->dlogits, r->acc), 0);
    assert_int_equal(eng_model_backward(r->m, r->dlogits), 0);
    assert_int_equal(eng_optimizer_step(r->opt, eng_model_param_data(r->m), eng_model_grad_data(r->m), 1e-3f), 0);
    return r->acc[0] / (double)batch;
}

static void mixer_close(mixer_run *r)
{
    eng_optimizer_free(r->opt);
    eng_model_free(r->m);
    free(r->x), free(r->labels), free(r->dlogits), free(r->acc);
}

static void mixer_against_fp32(const char *name, int64_t batch)
{
    mixer_run a, h; /* fp32, bf16 */
    mixer_open(B32, name, batch, &a);
    mixer_open(Bauto, name, batch, &h);
    const int64_t np = eng_model_param_count(a.m);
    float *p0 = malloc((size_t)np * sizeof *p0), *oa = fzero(batch * 10), *oh = fzero(batch * 10);
    assert_non_null(p0);
    memcpy(p0, eng_model_param_data(a.m), (size_t)np * sizeof *p0);
    assert_memory_equal(p0, eng_model_param_data(h.m), (size_t)np * sizeof *p0);
    print_message("  %s, batch %lld\n", name, (long long)batch);
    for (int s = 0; s < 3; s++) {
        const double la = mixer_step(B32, &a, batch, oa), lh = mixer_step(Bauto, &h, batch, oh);
        double *da = to_d(oa, batch * 10, false);
        const double eo = rel_l2(oh, da, batch * 10), el = fabs(lh - la) / la;
        print_message("    step %d: loss fp32 %.6f bf16 %.6f (rel %.2e), logits rel %.2e\n", s + 1, la, lh, el, eo);
        assert_true(el <= 1e-3);
        assert_true(eo <= 1e-2);
        assert_true(eo > 0.0); /* bf16 did round something */
        free(da);
    }
    /* the parameter changes after three steps, on their own scale */
    const float *pa = eng_model_param_data(a.m), *ph = eng_model_param_data(h.m);
    double d2 = 0.0, u2 = 0.0;
    for (int64_t i = 0; i < np; i++) {
        const double ua = (double)pa[i] - p0[i], uh = (double)ph[i] - p0[i];
        d2 += (uh - ua) * (uh - ua);
        u2 += ua * ua;
    }
    const double eu = sqrt(d2 / u2);
    print_message("    parameter changes after 3 steps: rel %.2e\n", eu);
    assert_true(eu <= 2e-1);
    /* and it trains: 12 more steps on the batch */
    double first = 0.0, la = 0.0, lh = 0.0;
    for (int s = 0; s < 12; s++) {
        la = mixer_step(B32, &a, batch, NULL);
        lh = mixer_step(Bauto, &h, batch, NULL);
        if (s == 0)
            first = la;
    }
    print_message("    loss after 15 steps: fp32 %.4f, bf16 %.4f (step 4: %.4f)\n", la, lh, first);
    assert_true(la < 0.5 * first && lh < 0.5 * first);
    assert_true(fabs(lh - la) <= 0.1 * la + 0.02);
    free(p0), free(oa), free(oh);
    mixer_close(&a);
    mixer_close(&h);
}

static void test_mixers_against_fp32(void **state)
{
    (void)state;
    mixer_against_fp32("mlp_mixer_S4", 4);
    mixer_against_fp32("mlp_mixer_B4", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_conv_keep),
        cmocka_unit_test(test_conv_wgrad_levels),
        cmocka_unit_test(test_bf16_outputs),
        cmocka_unit_test(test_other_ops_unchanged),
        cmocka_unit_test(test_mixers_against_fp32),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
