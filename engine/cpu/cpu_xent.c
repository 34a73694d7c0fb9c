/* Softmax cross-entropy on logits with top-k hits, accumulated into
 * acc[0] (loss sum) and acc[1] (hits); optional gradient
 * dlogits = scale * (softmax - onehot).
 *
 * Per row: loss = log(sum_j e^(x_j - max)) + max - x_label, in double. The
 * label's rank counts the logits above it, and equal logits of a lower class
 * index (a lower index ranks first). A row with a NaN or infinite logit (a
 * diverged model) is never a hit - every comparison with NaN is false, so
 * its rank would be 0 - and its loss is NaN. Rows are summed over fixed
 * chunks whose partials are added in order, so acc does not depend on the
 * thread count. */
#include <math.h>
#include <stdlib.h>

#include "engine/cpu/cpu_internal.h"
#include "engine/cpu/cpu_math.h"

#define XENT_ROWS_PER_CHUNK 64

/* One row; returns its loss, adds its hit to *hits. dx may alias x. */
CPU_KERNEL_BODY double xent_row_body(int64_t n, int64_t k, float scale, const float *x, int32_t label, float *dx,
                                  double *hits)
{
    float m = x[0];
    for (int64_t j = 1; j < n; j++)
        m = x[j] > m ? x[j] : m;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++)
        s += (double)cpu_expf(x[j] - m);
    const double lse = log(s) + (double)m;
    const float xl = x[label];
    int64_t rank = 0, nonfinite = 0;
    for (int64_t j = 0; j < n; j++) {
        rank += x[j] > xl || (x[j] == xl && j < label);
        nonfinite += !isfinite(x[j]);
    }
    if (rank < k && !nonfinite)
        *hits += 1.0;
    if (dx) {
        const float inv = (float)(1.0 / s);
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            dx[j] = scale * (cpu_expf(x[j] - m) * inv);
        dx[label] = scale * (cpu_expf(xl - m) * inv - 1.0f);
    }
    return nonfinite ? (double)NAN : lse - (double)xl;
}
CPU_DISPATCH(static, double, xent_row,
             (int64_t n, int64_t k, float scale, const float *x, int32_t label, float *dx, double *hits),
             (n, k, scale, x, label, dx, hits))

int cpu_xent(eng_backend *b, const eng_xent_desc *d, const float *logits, const int32_t *labels, float *dlogits,
             double *acc)
{
    CPU_NONNULL("xent", d);
    CPU_CHECK(d->rows >= 0 && d->classes >= 1 && d->k >= 0, "cpu xent: bad size (rows %lld, classes %lld, k %lld)",
              (long long)d->rows, (long long)d->classes, (long long)d->k);
    CPU_NONNULL("xent", acc);
    if (d->rows == 0)
        return 0;
    CPU_NONNULL("xent", logits);
    CPU_NONNULL("xent", labels);
    for (int64_t r = 0; r < d->rows; r++)
        CPU_CHECK(labels[r] >= 0 && labels[r] < d->classes, "cpu xent: label %d of row %lld is not in [0, %lld)",
                  (int)labels[r], (long long)r, (long long)d->classes);
    const int64_t nchunks = (d->rows + XENT_ROWS_PER_CHUNK - 1) / XENT_ROWS_PER_CHUNK;
    double *part = calloc((size_t)(2 * nchunks), sizeof *part);
    if (!part)
        return eng_error(ENG_ENOMEM, "cpu xent: out of memory");
    const int64_t n = d->classes;
#pragma omp parallel for num_threads(cpu_team(b, 8 * d->rows * n)) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t r0 = c * XENT_ROWS_PER_CHUNK;
        const int64_t r1 = r0 + XENT_ROWS_PER_CHUNK < d->rows ? r0 + XENT_ROWS_PER_CHUNK : d->rows;
        double loss = 0.0, hits = 0.0;
        for (int64_t r = r0; r < r1; r++)
            loss += xent_row(n, d->k, d->scale, logits + r * n, labels[r], dlogits ? dlogits + r * n : NULL, &hits);
        part[2 * c] = loss;
        part[2 * c + 1] = hits;
    }
    double loss = 0.0, hits = 0.0;
    for (int64_t c = 0; c < nchunks; c++) {
        loss += part[2 * c];
        hits += part[2 * c + 1];
    }
    acc[0] += loss;
    acc[1] += hits;
    free(part);
    return 0;
}
