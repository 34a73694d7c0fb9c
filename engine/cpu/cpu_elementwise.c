/* Simple tensor ops: bias add and its gradient, add, strided 2-d copy,
 * batched transpose, mean over the last dimension. */
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

#define ELEM_CHUNK ((int64_t)1 << 16)

CPU_KERNEL_BODY void bias_rows_kernel_body(int64_t n, int64_t inner, float *restrict y, const float *restrict bias)
{
    if (inner == 1) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            y[j] += bias[j];
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        const float bj = bias[j];
        float *restrict r = y + j * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++)
            r[i] += bj;
    }
}
CPU_DISPATCH_VOID(static, bias_rows_kernel, (int64_t n, int64_t inner, float *restrict y, const float *restrict bias),
                  (n, inner, y, bias))

int cpu_bias_add(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias)
{
    CPU_CHECK(outer >= 0 && n >= 0 && inner >= 0, "cpu bias_add: negative size");
    if (outer == 0 || n == 0 || inner == 0)
        return 0;
    CPU_NONNULL("bias_add", y);
    CPU_NONNULL("bias_add", bias);
#pragma omp parallel for num_threads(cpu_team(b, outer * n * inner)) schedule(static)
    for (int64_t o = 0; o < outer; o++)
        bias_rows_kernel(n, inner, y + o * n * inner, bias);
    return 0;
}

/* Adds the (n, inner) block at dy to part[0..n) in double. */
CPU_KERNEL_BODY void bias_grad_block_body(int64_t n, int64_t inner, const float *restrict dy, double *restrict part)
{
    if (inner == 1) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            part[j] += (double)dy[j];
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        const float *restrict r = dy + j * inner;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < inner; i++)
            s += (double)r[i];
        part[j] += s;
    }
}
CPU_DISPATCH_VOID(static, bias_grad_block, (int64_t n, int64_t inner, const float *restrict dy, double *restrict part),
                  (n, inner, dy, part))

int cpu_bias_grad_impl(const eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db)
{
    return cpu_bias_grad_after(b, outer, n, inner, dy, db, NULL, NULL);
}

/* bias_grad's order: fixed chunks of `outer`, at most 64 of them, each
 * summed row by row into its own partial sums, which are then added in
 * chunk order. */
int64_t cpu_bias_grad_chunk(int64_t outer, int64_t n, int64_t inner)
{
    const int64_t per_row = n * inner;
    return cpu_chunk_size(outer, (ELEM_CHUNK + per_row - 1) / per_row, 64);
}

void cpu_bias_grad_rows(int64_t rows, int64_t n, int64_t inner, const float *dy, double *part)
{
    for (int64_t o = 0; o < rows; o++)
        bias_grad_block(n, inner, dy + o * n * inner, part);
}

void cpu_bias_grad_combine(int64_t nchunks, int64_t n, const double *part, float *db)
{
    for (int64_t j = 0; j < n; j++) {
        double s = 0.0;
        for (int64_t c = 0; c < nchunks; c++)
            s += part[c * n + j];
        db[j] = (float)s;
    }
}

int cpu_bias_grad_after(const eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db,
                        void (*produce)(void *arg, int64_t o0, int64_t o1), void *arg)
{
    if (n == 0)
        return 0;
    if (outer == 0 || inner == 0) {
        memset(db, 0, (size_t)n * sizeof *db);
        return 0;
    }
    const int64_t per_row = n * inner, chunk = cpu_bias_grad_chunk(outer, n, inner);
    const int64_t nchunks = (outer + chunk - 1) / chunk;
    double *part = calloc((size_t)(nchunks * n), sizeof *part);
    if (!part)
        return eng_error(ENG_ENOMEM, "cpu bias_grad: out of memory");
#pragma omp parallel for num_threads(nchunks > 1 ? cpu_team(b, outer * per_row) : 1) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t lo = c * chunk, hi = lo + chunk < outer ? lo + chunk : outer;
        if (produce)
            produce(arg, lo, hi);
        cpu_bias_grad_rows(hi - lo, n, inner, dy + lo * per_row, part + c * n);
    }
    cpu_bias_grad_combine(nchunks, n, part, db);
    free(part);
    return 0;
}

int cpu_bias_grad(eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db)
{
    CPU_CHECK(outer >= 0 && n >= 0 && inner >= 0, "cpu bias_grad: negative size");
    if (n == 0)
        return 0;
    CPU_NONNULL("bias_grad", db);
    if (outer > 0 && inner > 0)
        CPU_NONNULL("bias_grad", dy);
    return cpu_bias_grad_impl(b, outer, n, inner, dy, db);
}

typedef struct pack_rows_args {
    int64_t per_row;
    const float *dy;
    cpu_bf16_out out;
} pack_rows_args;

static void pack_rows(void *p, int64_t o0, int64_t o1)
{
    const pack_rows_args *a = p;
    cpu_bf16_pack_out(&a->out, o0 * a->per_row, (o1 - o0) * a->per_row, a->dy + o0 * a->per_row);
}

/* bias_grad, and dy rounded to bf16 chunk by chunk as the sums read it: one
 * read of dy where the products after it would each round their own copy. */
int cpu_bias_grad_bf16(eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db,
                       uint16_t *dy16, int64_t tb)
{
    CPU_CHECK(outer >= 0 && n >= 0 && inner >= 0, "cpu bias_grad_bf16: negative size");
    if (!cpu_bf16(b))
        return eng_error(ENG_ENOTSUP, "cpu bias_grad_bf16: a bf16 copy of dy is for precision bf16");
    if (n == 0)
        return 0;
    CPU_NONNULL("bias_grad_bf16", db);
    if (outer > 0 && inner > 0) {
        CPU_NONNULL("bias_grad_bf16", dy);
        CPU_NONNULL("bias_grad_bf16", dy16);
    }
    pack_rows_args a = {.per_row = n * inner, .dy = dy};
    int rc = cpu_bf16_out_init("bias_grad_bf16", dy16, outer, n, inner, tb, &a.out);
    if (rc < 0)
        return rc;
    return cpu_bias_grad_after(b, outer, n, inner, dy, db, pack_rows, &a);
}

/* y may alias a or c: no restrict, and `omp simd` is still valid because
 * every iteration reads and writes only index i. */
CPU_KERNEL_BODY void add_kernel_body(int64_t n, const float *a, const float *c, float *y)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] + c[i];
}
CPU_DISPATCH_VOID(static, add_kernel, (int64_t n, const float *a, const float *c, float *y), (n, a, c, y))

int cpu_add(eng_backend *b, int64_t n, const float *a, const float *c, float *y)
{
    CPU_CHECK(n >= 0, "cpu add: n = %lld is negative", (long long)n);
    if (n == 0)
        return 0;
    CPU_NONNULL("add", a);
    CPU_NONNULL("add", c);
    CPU_NONNULL("add", y);
    const int64_t nchunks = (n + ELEM_CHUNK - 1) / ELEM_CHUNK;
#pragma omp parallel for num_threads(cpu_team(b, n)) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t lo = k * ELEM_CHUNK, len = lo + ELEM_CHUNK < n ? ELEM_CHUNK : n - lo;
        add_kernel(len, a + lo, c + lo, y + lo);
    }
    return 0;
}

/* y = (y + bias) + res on items [i0, i1), as cpu_bias_act's items; res may
 * not alias y. */
CPU_KERNEL_BODY void bias_residual_items_body(int64_t i0, int64_t i1, int64_t n, int64_t inner, float *restrict y,
                                           const float *restrict bias, const float *restrict res)
{
    if (inner == 1) {
        for (int64_t it = i0; it < i1; it++) {
            float *restrict r = y + it * n;
            const float *restrict q = res + it * n;
#pragma omp simd
            for (int64_t j = 0; j < n; j++)
                r[j] = (r[j] + bias[j]) + q[j];
        }
        return;
    }
    for (int64_t it = i0; it < i1; it++) {
        const float bj = bias[it % n];
        float *restrict r = y + it * inner;
        const float *restrict q = res + it * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++)
            r[i] = (r[i] + bj) + q[i];
    }
}
CPU_DISPATCH_VOID(static, bias_residual_items,
                  (int64_t i0, int64_t i1, int64_t n, int64_t inner, float *restrict y, const float *restrict bias,
                   const float *restrict res),
                  (i0, i1, n, inner, y, bias, res))

/* bias_add then add in one pass: the residual branch of a block. */
int cpu_bias_residual(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias,
                      const float *res)
{
    CPU_CHECK(outer >= 0 && n >= 0 && inner >= 0, "cpu bias_residual: negative size");
    if (outer == 0 || n == 0 || inner == 0)
        return 0;
    CPU_NONNULL("bias_residual", y);
    CPU_NONNULL("bias_residual", bias);
    CPU_NONNULL("bias_residual", res);
    CPU_CHECK(res + outer * n * inner <= y || y + outer * n * inner <= res, "cpu bias_residual: res overlaps y");
    const int64_t items = inner == 1 ? outer : outer * n, len = inner == 1 ? n : inner;
    const int64_t per = len < ELEM_CHUNK ? ELEM_CHUNK / len : 1, nchunks = (items + per - 1) / per;
#pragma omp parallel for num_threads(cpu_team(b, outer * n * inner)) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t i0 = k * per, i1 = i0 + per < items ? i0 + per : items;
        bias_residual_items(i0, i1, n, inner, y, bias, res);
    }
    return 0;
}

int cpu_copy_2d(eng_backend *b, int64_t rows, int64_t cols, const float *src, int64_t ld_src, float *dst,
                int64_t ld_dst)
{
    CPU_CHECK(rows >= 0 && cols >= 0, "cpu copy_2d: negative size");
    if (rows == 0 || cols == 0)
        return 0;
    CPU_CHECK(ld_src >= cols && ld_dst >= cols, "cpu copy_2d: leading dimension (%lld, %lld) < cols %lld",
              (long long)ld_src, (long long)ld_dst, (long long)cols);
    CPU_NONNULL("copy_2d", src);
    CPU_NONNULL("copy_2d", dst);
#pragma omp parallel for num_threads(cpu_team(b, rows * cols)) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        memcpy(dst + r * ld_dst, src + r * ld_src, (size_t)cols * sizeof(float));
    return 0;
}

/* One tile of y (cols, rows) = x (rows, cols)^T: reads x rows r0..r1 and
 * columns c0..c1. Tiles keep both sides in L1. */
#define TR_TILE 32
static void transpose_tile(int64_t rows, int64_t cols, const float *restrict x, float *restrict y, int64_t r0,
                           int64_t r1, int64_t c0, int64_t c1)
{
    for (int64_t c = c0; c < c1; c++) {
        float *restrict yr = y + c * rows;
        for (int64_t r = r0; r < r1; r++)
            yr[r] = x[r * cols + c];
    }
}

int cpu_transpose(eng_backend *b, int64_t batch, int64_t rows, int64_t cols, const float *x, float *y)
{
    CPU_CHECK(batch >= 0 && rows >= 0 && cols >= 0, "cpu transpose: negative size");
    if (batch == 0 || rows == 0 || cols == 0)
        return 0;
    CPU_NONNULL("transpose", x);
    CPU_NONNULL("transpose", y);
    CPU_CHECK(x != y || rows == 1 || cols == 1, "cpu transpose: cannot run in place");
    if (rows == 1 || cols == 1) {
        if (x != y)
            memcpy(y, x, (size_t)(batch * rows * cols) * sizeof(float));
        return 0;
    }
    const int64_t rt = (rows + TR_TILE - 1) / TR_TILE, ct = (cols + TR_TILE - 1) / TR_TILE;
    const int64_t tasks = batch * rt;
#pragma omp parallel for num_threads(cpu_team(b, batch * rows * cols)) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t i = t / rt, r0 = (t % rt) * TR_TILE, r1 = r0 + TR_TILE < rows ? r0 + TR_TILE : rows;
        const float *xi = x + i * rows * cols;
        float *yi = y + i * rows * cols;
        for (int64_t k = 0; k < ct; k++) {
            const int64_t c0 = k * TR_TILE, c1 = c0 + TR_TILE < cols ? c0 + TR_TILE : cols;
            transpose_tile(rows, cols, xi, yi, r0, r1, c0, c1);
        }
    }
    return 0;
}

CPU_KERNEL_BODY void mean_rows_kernel_body(int64_t rows, int64_t n, const float *restrict x, float *restrict y)
{
    const double inv = 1.0 / (double)n;
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict xr = x + r * n;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < n; j++)
            s += (double)xr[j];
        y[r] = (float)(s * inv);
    }
}
CPU_DISPATCH_VOID(static, mean_rows_kernel, (int64_t rows, int64_t n, const float *restrict x, float *restrict y),
                  (rows, n, x, y))

int cpu_mean_lastdim_forward(eng_backend *b, int64_t rows, int64_t n, const float *x, float *y)
{
    CPU_CHECK(rows >= 0 && n > 0, "cpu mean_lastdim_forward: bad size (rows %lld, n %lld)", (long long)rows,
              (long long)n);
    if (rows == 0)
        return 0;
    CPU_NONNULL("mean_lastdim_forward", x);
    CPU_NONNULL("mean_lastdim_forward", y);
    const int64_t per = cpu_chunk_size(rows, (ELEM_CHUNK + n - 1) / n, 4096);
    const int64_t nchunks = (rows + per - 1) / per;
#pragma omp parallel for num_threads(cpu_team(b, rows * n)) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t lo = k * per, hi = lo + per < rows ? lo + per : rows;
        mean_rows_kernel(hi - lo, n, x + lo * n, y + lo);
    }
    return 0;
}

CPU_KERNEL_BODY void mean_back_kernel_body(int64_t rows, int64_t n, const float *restrict dy, float *restrict dx)
{
    const float fn = (float)n;
    for (int64_t r = 0; r < rows; r++) {
        const float g = dy[r] / fn;
        float *restrict d = dx + r * n;
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            d[j] = g;
    }
}
CPU_DISPATCH_VOID(static, mean_back_kernel, (int64_t rows, int64_t n, const float *restrict dy, float *restrict dx),
                  (rows, n, dy, dx))

int cpu_mean_lastdim_backward(eng_backend *b, int64_t rows, int64_t n, const float *dy, float *dx)
{
    CPU_CHECK(rows >= 0 && n > 0, "cpu mean_lastdim_backward: bad size (rows %lld, n %lld)", (long long)rows,
              (long long)n);
    if (rows == 0)
        return 0;
    CPU_NONNULL("mean_lastdim_backward", dy);
    CPU_NONNULL("mean_lastdim_backward", dx);
    const int64_t per = cpu_chunk_size(rows, (ELEM_CHUNK + n - 1) / n, 4096);
    const int64_t nchunks = (rows + per - 1) / per;
#pragma omp parallel for num_threads(cpu_team(b, rows * n)) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t lo = k * per, hi = lo + per < rows ? lo + per : rows;
        mean_back_kernel(hi - lo, n, dy + lo, dx + lo * n);
    }
    return 0;
}
