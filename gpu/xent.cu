// Softmax cross-entropy with top-k hits, accumulated into two doubles on the
// device: per-row loss and hit go to the scratch, then one block adds them
// in a fixed order (deterministic) to acc[0] (loss sum) and acc[1] (hits).
// Rank of the label: the classes whose logit is larger, or equal with a
// lower index; a hit when fewer than k rank before it. A label outside
// [0, classes) gives a NaN loss and no hit (a kernel cannot fail the call);
// so does a row with a NaN or infinite logit (a diverged model: every
// comparison with NaN is false, which would rank the label first), as on
// the CPU.
#include <math.h>

#include "gpu/common.cuh"

template <int TPR>
__global__ void gpu_xent_rows(int64_t rows, int64_t classes, int64_t k, float scale, const float *logits,
                              const int32_t *labels, float *dlogits, double *row_loss, double *row_hit)
{
    const int rpb = blockDim.x / TPR;
    const int64_t r = (int64_t)blockIdx.x * rpb + threadIdx.x / TPR;
    const int lane = threadIdx.x % TPR;
    if (r >= rows)
        return;
    const float *x = logits + r * classes;
    const int64_t label = labels[r];
    const bool valid = label >= 0 && label < classes;
    float m = -INFINITY;
    for (int64_t j = lane; j < classes; j += TPR)
        m = fmaxf(m, x[j]);
    m = gpu_row_max<TPR>(m);
    double s = 0.0;
    for (int64_t j = lane; j < classes; j += TPR)
        s += expf(x[j] - m);
    s = gpu_row_sum<TPR>(s);
    const float xl = valid ? x[label] : 0.0f;
    double before = 0.0, nonfinite = 0.0;
    for (int64_t j = lane; j < classes; j += TPR) {
        before += (x[j] > xl || (x[j] == xl && j < label)) ? 1.0 : 0.0;
        nonfinite += isfinite(x[j]) ? 0.0 : 1.0;
    }
    before = gpu_row_sum<TPR>(before);
    nonfinite = gpu_row_sum<TPR>(nonfinite);
    const bool ok = valid && nonfinite == 0.0;
    if (lane == 0) {
        row_loss[r] = ok ? (double)m + log(s) - (double)xl : (double)NAN;
        row_hit[r] = ok && before < (double)k ? 1.0 : 0.0;
    }
    if (dlogits) {
        float *d = dlogits + r * classes;
        const float inv = (float)(1.0 / s);
        for (int64_t j = lane; j < classes; j += TPR)
            d[j] = scale * (expf(x[j] - m) * inv - (j == label ? 1.0f : 0.0f));
    }
}

__global__ void gpu_xent_total(int64_t rows, const double *row_loss, const double *row_hit, double *acc)
{
    double l = 0.0, h = 0.0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
        l += row_loss[r];
        h += row_hit[r];
    }
    l = gpu_block_sum(l);
    h = gpu_block_sum(h);
    if (threadIdx.x == 0) {
        acc[0] += l;
        acc[1] += h;
    }
}

extern "C" int gpu_xent(gpu_ctx *g, const eng_xent_desc *d, const float *logits, const int32_t *labels,
                        float *dlogits, double *acc)
{
    if (!d || d->rows < 0 || d->classes < 1 || d->k < 0 || (d->rows > 0 && (!logits || !labels || !acc)))
        return eng_error(ENG_EINVAL, "xent: bad arguments");
    if (d->rows == 0)
        return 0;
    if ((size_t)(2 * d->rows) > g->scratch_doubles)
        return eng_error(ENG_ELIMIT, "xent: %lld rows exceed the reduction scratch", (long long)d->rows);
    double *row_loss = g->scratch, *row_hit = g->scratch + d->rows;
    if (d->classes <= GPU_WARP_ROW_MAX) {
        gpu_xent_rows<32><<<(unsigned)gpu_ceil_div(d->rows, 8), 256, 0, g->stream>>>(
            d->rows, d->classes, d->k, d->scale, logits, labels, dlogits, row_loss, row_hit);
        GPU_LAUNCHED(gpu_xent_rows<32>);
    } else {
        gpu_xent_rows<256><<<(unsigned)d->rows, 256, 0, g->stream>>>(d->rows, d->classes, d->k, d->scale, logits,
                                                                     labels, dlogits, row_loss, row_hit);
        GPU_LAUNCHED(gpu_xent_rows<256>);
    }
    gpu_xent_total<<<1, 1024, 0, g->stream>>>(d->rows, row_loss, row_hit, acc);
    GPU_LAUNCHED(gpu_xent_total);
    return 0;
}
