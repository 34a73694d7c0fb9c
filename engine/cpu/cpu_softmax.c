/* Softmax over the last dimension of (rows, n), with max subtraction; the
 * normalising sum is accumulated in double. */
#include "engine/cpu/cpu_internal.h"
#include "engine/cpu/cpu_math.h"

/* y may alias x (in place). */
CPU_KERNEL_BODY void softmax_row_body(int64_t n, const float *x, float *y)
{
    float m = x[0];
    for (int64_t j = 1; j < n; j++)
        m = x[j] > m ? x[j] : m;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) {
        const float e = cpu_expf(x[j] - m);
        y[j] = e;
        s += (double)e;
    }
    const float inv = (float)(1.0 / s);
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        y[j] *= inv;
}
CPU_DISPATCH_VOID(static, softmax_row, (int64_t n, const float *x, float *y), (n, x, y))

int cpu_softmax_forward(eng_backend *b, int64_t rows, int64_t n, const float *x, float *y)
{
    CPU_CHECK(rows >= 0 && n >= 1, "cpu softmax_forward: bad size (rows %lld, n %lld)", (long long)rows,
              (long long)n);
    if (rows == 0)
        return 0;
    CPU_NONNULL("softmax_forward", x);
    CPU_NONNULL("softmax_forward", y);
#pragma omp parallel for num_threads(cpu_team(b, 4 * rows * n)) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        softmax_row(n, x + r * n, y + r * n);
    return 0;
}

/* dx = y * (dy - sum(dy * y)); dx may alias dy. */
CPU_KERNEL_BODY void softmax_back_row_body(int64_t n, const float *restrict y, const float *dy, float *dx)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++)
        s += (double)dy[j] * (double)y[j];
    const float dot = (float)s;
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        dx[j] = y[j] * (dy[j] - dot);
}
CPU_DISPATCH_VOID(static, softmax_back_row, (int64_t n, const float *restrict y, const float *dy, float *dx),
                  (n, y, dy, dx))

int cpu_softmax_backward(eng_backend *b, int64_t rows, int64_t n, const float *y, const float *dy, float *dx)
{
    CPU_CHECK(rows >= 0 && n >= 1, "cpu softmax_backward: bad size (rows %lld, n %lld)", (long long)rows,
              (long long)n);
    if (rows == 0)
        return 0;
    CPU_NONNULL("softmax_backward", y);
    CPU_NONNULL("softmax_backward", dy);
    CPU_NONNULL("softmax_backward", dx);
    CPU_CHECK(dx != y, "cpu softmax_backward: dx cannot overwrite y");
#pragma omp parallel for num_threads(cpu_team(b, 2 * rows * n)) schedule(static)
    for (int64_t r = 0; r < rows; r++)
        softmax_back_row(n, y + r * n, dy + r * n, dx + r * n);
    return 0;
}
