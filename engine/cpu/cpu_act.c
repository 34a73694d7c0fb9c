/* Elementwise activations and their gradients: relu, leaky relu, exact GELU,
 * sigmoid, tanh (none = identity). Each element is independent, so any
 * split over threads gives the same bits. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"
#include "engine/cpu/cpu_math.h"

/* FMA in the AVX2 build: GELU's polynomials run about 30% faster. */
#pragma GCC optimize("fp-contract=fast")

#define ACT_CHUNK ((int64_t)1 << 14)

CPU_KERNEL_BODY void act_fwd_kernel_body(eng_act kind, float slope, int64_t n, const float *x, float *y)
{
    switch (kind) {
    case ENG_ACT_RELU:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? 0.0f : x[i];
        break;
    case ENG_ACT_LEAKY_RELU:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? x[i] * slope : x[i];
        break;
    case ENG_ACT_GELU:
        cpu_gelu_forward(n, x, y);
        break;
    case ENG_ACT_SIGMOID:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = cpu_sigmoidf(x[i]);
        break;
    case ENG_ACT_TANH:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            y[i] = cpu_tanhf(x[i]);
        break;
    case ENG_ACT_NONE:
    default:
        if (x != y)
            memmove(y, x, (size_t)n * sizeof(float));
        break;
    }
}
CPU_DISPATCH_VOID(static, act_fwd_kernel, (eng_act kind, float slope, int64_t n, const float *x, float *y),
                  (kind, slope, n, x, y))

/* dx may alias dy (in place), so no restrict; each iteration touches only
 * index i, which keeps `omp simd` valid. `s` is x for relu, leaky relu and
 * GELU and y for sigmoid and tanh. */
CPU_KERNEL_BODY void act_bwd_kernel_body(eng_act kind, float slope, int64_t n, const float *s, const float *dy,
                                      float *dx)
{
    switch (kind) {
    case ENG_ACT_RELU:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            dx[i] = s[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case ENG_ACT_LEAKY_RELU:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            dx[i] = s[i] > 0.0f ? dy[i] : dy[i] * slope;
        break;
    case ENG_ACT_GELU:
        /* d/dx x Phi(x) = Phi(x) + x phi(x) */
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float v = s[i];
            dx[i] = dy[i] * (cpu_normcdf(v) + v * cpu_normpdf(v));
        }
        break;
    case ENG_ACT_SIGMOID:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * (s[i] * (1.0f - s[i]));
        break;
    case ENG_ACT_TANH:
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * (1.0f - s[i] * s[i]);
        break;
    case ENG_ACT_NONE:
    default:
        if (dx != dy)
            memmove(dx, dy, (size_t)n * sizeof(float));
        break;
    }
}
CPU_DISPATCH_VOID(static, act_bwd_kernel,
                  (eng_act kind, float slope, int64_t n, const float *s, const float *dy, float *dx),
                  (kind, slope, n, s, dy, dx))

static bool act_known(eng_act kind) { return kind >= ENG_ACT_NONE && kind <= ENG_ACT_TANH; }

int cpu_act_forward(eng_backend *b, eng_act kind, float slope, int64_t n, const float *x, float *y)
{
    CPU_CHECK(act_known(kind), "cpu act_forward: unknown activation %d", (int)kind);
    CPU_CHECK(n >= 0, "cpu act_forward: n = %lld is negative", (long long)n);
    if (n == 0)
        return 0;
    CPU_NONNULL("act_forward", x);
    CPU_NONNULL("act_forward", y);
    const int64_t nchunks = (n + ACT_CHUNK - 1) / ACT_CHUNK;
#pragma omp parallel for num_threads(cpu_team(b, kind == ENG_ACT_GELU || kind == ENG_ACT_TANH ? 8 * n : n))     \
    schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t lo = k * ACT_CHUNK, len = lo + ACT_CHUNK < n ? ACT_CHUNK : n - lo;
        act_fwd_kernel(kind, slope, len, x + lo, y + lo);
    }
    return 0;
}

/* The tensor act_bwd_kernel reads for `kind` (x or y, whichever the
 * derivative is taken from), or NULL with the error recorded. */
static const float *act_bwd_source(eng_act kind, float slope, const float *x, const float *y, const float *dy)
{
    const float *s = NULL;
    switch (kind) {
    case ENG_ACT_RELU:
        s = x ? x : y; /* y > 0 exactly where x > 0 */
        if (!s)
            eng_error(ENG_EINVAL, "cpu act_backward: relu needs x or y");
        break;
    case ENG_ACT_LEAKY_RELU:
        s = x;
        if (!s && slope > 0.0f)
            s = y; /* sign(y) = sign(x) for a positive slope */
        if (!s)
            eng_error(ENG_EINVAL, "cpu act_backward: leaky_relu needs x");
        break;
    case ENG_ACT_GELU:
        s = x;
        if (!s)
            eng_error(ENG_EINVAL, "cpu act_backward: gelu needs x");
        break;
    case ENG_ACT_SIGMOID:
    case ENG_ACT_TANH:
        s = y;
        if (!s)
            eng_error(ENG_EINVAL, "cpu act_backward: %s needs y", kind == ENG_ACT_TANH ? "tanh" : "sigmoid");
        break;
    case ENG_ACT_NONE:
    default:
        s = dy;
        break;
    }
    return s;
}

/* act backward of elements [lo, lo + len) into out[0, len): GELU from its
 * output where it is given */
static void act_bwd_into(eng_act kind, float slope, int64_t lo, int64_t len, const float *s, const float *x,
                         const float *y, const float *dy, float *out)
{
    if (kind == ENG_ACT_GELU && y)
        cpu_gelu_backward_from_y(len, x + lo, y + lo, dy + lo, out);
    else
        act_bwd_kernel(kind, slope, len, s + lo, dy + lo, out);
}

static void act_bwd_range(eng_act kind, float slope, int64_t lo, int64_t len, const float *s, const float *x,
                          const float *y, const float *dy, float *dx)
{
    act_bwd_into(kind, slope, lo, len, s, x, y, dy, dx + lo);
}

int cpu_act_backward(eng_backend *b, eng_act kind, float slope, int64_t n, const float *x, const float *y,
                     const float *dy, float *dx)
{
    CPU_CHECK(act_known(kind), "cpu act_backward: unknown activation %d", (int)kind);
    CPU_CHECK(n >= 0, "cpu act_backward: n = %lld is negative", (long long)n);
    if (n == 0)
        return 0;
    CPU_NONNULL("act_backward", dy);
    CPU_NONNULL("act_backward", dx);
    const float *s = act_bwd_source(kind, slope, x, y, dy);
    if (!s)
        return ENG_EINVAL;
    const int64_t nchunks = (n + ACT_CHUNK - 1) / ACT_CHUNK;
#pragma omp parallel for num_threads(cpu_team(b, kind == ENG_ACT_GELU ? (y ? 8 : 16) * n : n)) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t lo = k * ACT_CHUNK, len = lo + ACT_CHUNK < n ? ACT_CHUNK : n - lo;
        act_bwd_range(kind, slope, lo, len, s, x, y, dy, dx);
    }
    return 0;
}

typedef struct act_bias_args {
    eng_act kind;
    float slope;
    int64_t per_row;
    const float *s, *x, *y, *dy;
    float *dx;
} act_bias_args;

static void act_bias_produce(void *p, int64_t o0, int64_t o1)
{
    const act_bias_args *a = p;
    act_bwd_range(a->kind, a->slope, o0 * a->per_row, (o1 - o0) * a->per_row, a->s, a->x, a->y, a->dy, a->dx);
}

/* Each chunk of rows gets its activation gradient and is summed into the
 * bias gradient while it is still in cache: bias_grad's chunks and order,
 * so the same bits as the two operations. */
int cpu_act_bias_backward(eng_backend *b, eng_act kind, float slope, int64_t outer, int64_t n, int64_t inner,
                          const float *x, const float *y, const float *dy, float *dx, float *db)
{
    CPU_CHECK(act_known(kind), "cpu act_bias_backward: unknown activation %d", (int)kind);
    CPU_CHECK(outer >= 0 && n >= 0 && inner >= 0, "cpu act_bias_backward: negative size");
    if (n == 0)
        return 0;
    CPU_NONNULL("act_bias_backward", db);
    const int64_t total = outer * n * inner;
    if (total > 0) {
        CPU_NONNULL("act_bias_backward", dy);
        CPU_NONNULL("act_bias_backward", dx);
    }
    const float *s = total > 0 ? act_bwd_source(kind, slope, x, y, dy) : dy;
    if (total > 0 && !s)
        return ENG_EINVAL;
    act_bias_args a = {kind, slope, n * inner, s, x, y, dy, dx};
    return cpu_bias_grad_after(b, outer, n, inner, dx, db, act_bias_produce, &a);
}

/* bias_add's arithmetic on items [i0, i1) of the (outer, n, inner) view: an
 * item is a row of n floats with the whole bias (inner == 1) or a row of
 * inner floats with one bias entry. */
CPU_KERNEL_BODY void bias_items_body(int64_t i0, int64_t i1, int64_t n, int64_t inner, float *restrict y,
                                  const float *restrict bias)
{
    if (inner == 1) {
        for (int64_t it = i0; it < i1; it++) {
            float *restrict r = y + it * n;
#pragma omp simd
            for (int64_t j = 0; j < n; j++)
                r[j] += bias[j];
        }
        return;
    }
    for (int64_t it = i0; it < i1; it++) {
        const float bj = bias[it % n];
        float *restrict r = y + it * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++)
            r[i] += bj;
    }
}
CPU_DISPATCH_VOID(static, bias_items,
                  (int64_t i0, int64_t i1, int64_t n, int64_t inner, float *restrict y, const float *restrict bias),
                  (i0, i1, n, inner, y, bias))

/* The bias is added to a chunk that the activation then reads while it is
 * still in cache: one trip through memory instead of two, the same bits.
 * With out16 (bias_act_bf16) the chunk just written is also packed to bf16
 * while it is in cache. */
static int bias_act_chunks(eng_backend *b, const char *op, int64_t outer, int64_t n, int64_t inner, float *y,
                           const float *bias, eng_act kind, float slope, float *out, uint16_t *out16, int64_t tb)
{
    CPU_CHECK(act_known(kind), "cpu %s: unknown activation %d", op, (int)kind);
    CPU_CHECK(outer >= 0 && n >= 0 && inner >= 0, "cpu %s: negative size", op);
    if (outer == 0 || n == 0 || inner == 0)
        return 0;
    CPU_NONNULL(op, y);
    CPU_NONNULL(op, bias);
    CPU_NONNULL(op, out);
    const int64_t items = inner == 1 ? outer : outer * n, len = inner == 1 ? n : inner;
    const int64_t per = len < ACT_CHUNK ? ACT_CHUNK / len : 1, nchunks = (items + per - 1) / per;
    const int64_t total = outer * n * inner;
    cpu_bf16_out o16;
    if (out16) {
        int rc = cpu_bf16_out_init(op, out16, outer, n, inner, tb, &o16);
        if (rc < 0)
            return rc;
    }
#pragma omp parallel for num_threads(cpu_team(b, kind == ENG_ACT_GELU || kind == ENG_ACT_TANH ? 8 * total : total)) \
    schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t i0 = k * per, i1 = i0 + per < items ? i0 + per : items;
        bias_items(i0, i1, n, inner, y, bias);
        act_fwd_kernel(kind, slope, (i1 - i0) * len, y + i0 * len, out + i0 * len);
        if (out16)
            cpu_bf16_pack_out(&o16, i0 * len, (i1 - i0) * len, out + i0 * len);
    }
    return 0;
}

int cpu_bias_act(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias, eng_act kind,
                 float slope, float *out)
{
    return bias_act_chunks(b, "bias_act", outer, n, inner, y, bias, kind, slope, out, NULL, 0);
}

int cpu_bias_act_bf16(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias,
                      eng_act kind, float slope, float *out, uint16_t *out16, int64_t tb)
{
    CPU_NONNULL("bias_act_bf16", out16);
    return bias_act_chunks(b, "bias_act_bf16", outer, n, inner, y, bias, kind, slope, out, out16, tb);
}

/* act_bias_backward with dx kept in bf16 only: each block of rows is
 * computed into the thread's scratch, summed into the bias gradient from
 * there (bias_grad's chunks and order, so its bits) and packed. */
int cpu_act_bias_backward_bf16(eng_backend *b, eng_act kind, float slope, int64_t outer, int64_t n, int64_t inner,
                               const float *x, const float *y, const float *dy, uint16_t *dx16, int64_t tb,
                               float *db)
{
    CPU_CHECK(act_known(kind), "cpu act_bias_backward_bf16: unknown activation %d", (int)kind);
    CPU_CHECK(outer >= 0 && n >= 0 && inner >= 0, "cpu act_bias_backward_bf16: negative size");
    if (n == 0)
        return 0;
    CPU_NONNULL("act_bias_backward_bf16", db);
    const int64_t per_row = n * inner, total = outer * per_row;
    if (total == 0) {
        for (int64_t j = 0; j < n; j++)
            db[j] = 0.0f;
        return 0;
    }
    CPU_NONNULL("act_bias_backward_bf16", dy);
    CPU_NONNULL("act_bias_backward_bf16", dx16);
    const float *s = act_bwd_source(kind, slope, x, y, dy);
    if (!s)
        return ENG_EINVAL;
    cpu_bf16_out o16;
    int rc = cpu_bf16_out_init("act_bias_backward_bf16", dx16, outer, n, inner, tb, &o16);
    if (rc < 0)
        return rc;
    const int64_t chunk = cpu_bias_grad_chunk(outer, n, inner), nchunks = (outer + chunk - 1) / chunk;
    const int64_t sub = per_row < ACT_CHUNK ? ACT_CHUNK / per_row : 1; /* rows per block */
    const int team = nchunks > 1 ? cpu_team(b, kind == ENG_ACT_GELU ? 8 * total : total) : 1;
    double *part = calloc((size_t)(nchunks * n), sizeof *part);
    float *scratch = malloc((size_t)(team * sub * per_row) * sizeof *scratch);
    if (!part || !scratch) {
        free(part);
        free(scratch);
        return eng_error(ENG_ENOMEM, "cpu act_bias_backward_bf16: out of memory");
    }
#pragma omp parallel num_threads(team)
    {
        float *mine = scratch + (int64_t)omp_get_thread_num() * sub * per_row;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < nchunks; c++) {
            const int64_t lo = c * chunk, hi = lo + chunk < outer ? lo + chunk : outer;
            for (int64_t r0 = lo; r0 < hi; r0 += sub) {
                const int64_t r1 = r0 + sub < hi ? r0 + sub : hi, len = (r1 - r0) * per_row;
                act_bwd_into(kind, slope, r0 * per_row, len, s, x, y, dy, mine);
                cpu_bias_grad_rows(r1 - r0, n, inner, mine, part + c * n);
                cpu_bf16_pack_out(&o16, r0 * per_row, len, mine);
            }
        }
    }
    cpu_bias_grad_combine(nchunks, n, part, db);
    free(part);
    free(scratch);
    return 0;
}
