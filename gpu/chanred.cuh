// Per-channel two-stage reductions (see chanred.h for the partitioning).
// F: __device__ void f(int64_t o, int64_t j, int64_t i, int64_t idx, double &a0, double &a1)
//    adds element (o, j, i) (flat index idx) to the two sums;
// G: __device__ void g(int64_t j, double a0, double a1) consumes channel j's totals.
#ifndef GPU_CHANRED_CUH
#define GPU_CHANRED_CUH

#include "gpu/chanred.h"
#include "gpu/common.cuh"

// One thread's share of a strided-kernel block (channel j, split s): thread
// tx of nthreads walks t = b + tx, b + tx + nthreads, ... over the split's
// range of the flattened (o, i), stepping (o, i) without divisions.
// Host and device, so tests can replay every thread of a launch on the CPU.
template <class F>
__host__ __device__ inline void gpu_chan_strided_thread(const F &f, int64_t outer, int64_t n, int64_t inner,
                                                        int64_t splits, int64_t j, int64_t s, int64_t tx,
                                                        int64_t nthreads, double &a0, double &a1)
{
    int64_t b, e;
    gpu_split_range(outer * inner, splits, s, &b, &e);
    int64_t t = b + tx;
    if (t >= e)
        return;
    int64_t o = t / inner, i = t - o * inner;
    const int64_t so = nthreads / inner, si = nthreads - so * inner;
    for (; t < e; t += nthreads) {
        f(o, j, i, (o * n + j) * inner + i, a0, a1);
        o += so;
        i += si;
        if (i >= inner) {
            i -= inner;
            o++;
        }
    }
}

// One thread's share of a column-kernel block: column c = bx*32 + tx of the
// (outer, n*inner) matrix, rows b + ty, b + ty + ny, ... of split s.
template <class F>
__host__ __device__ inline void gpu_chan_cols_thread(const F &f, int64_t outer, int64_t n, int64_t inner,
                                                     int64_t splits, int64_t bx, int64_t s, int64_t tx, int64_t ty,
                                                     int64_t ny, double &a0, double &a1)
{
    const int64_t ncols = n * inner;
    const int64_t c = bx * 32 + tx;
    if (c >= ncols)
        return;
    int64_t b, e;
    gpu_split_range(outer, splits, s, &b, &e);
    const int64_t j = c / inner, i = c - j * inner;
    for (int64_t o = b + ty; o < e; o += ny)
        f(o, j, i, o * ncols + c, a0, a1);
}

template <class F>
__global__ void gpu_chan_partial_strided(F f, int64_t outer, int64_t n, int64_t inner, int64_t splits,
                                         double2 *part)
{
    const int64_t j = blockIdx.x, s = blockIdx.y;
    double a0 = 0.0, a1 = 0.0;
    gpu_chan_strided_thread(f, outer, n, inner, splits, j, s, threadIdx.x, blockDim.x, a0, a1);
    a0 = gpu_block_sum(a0);
    a1 = gpu_block_sum(a1);
    if (threadIdx.x == 0)
        part[j * splits + s] = make_double2(a0, a1);
}

// Block (32, 8): 32 consecutive columns, the split's rows over threadIdx.y;
// the 8 row sums of each column are added in order by threadIdx.y == 0.
template <class F>
__global__ void gpu_chan_partial_cols(F f, int64_t outer, int64_t n, int64_t inner, int64_t splits, double2 *part)
{
    __shared__ double sh0[8][32], sh1[8][32];
    const int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x;
    double a0 = 0.0, a1 = 0.0;
    gpu_chan_cols_thread(f, outer, n, inner, splits, blockIdx.x, blockIdx.y, threadIdx.x, threadIdx.y, blockDim.y,
                         a0, a1);
    sh0[threadIdx.y][threadIdx.x] = a0;
    sh1[threadIdx.y][threadIdx.x] = a1;
    __syncthreads();
    if (threadIdx.y == 0 && c < n * inner) {
        double r0 = 0.0, r1 = 0.0;
        for (int k = 0; k < (int)blockDim.y; k++) {
            r0 += sh0[k][threadIdx.x];
            r1 += sh1[k][threadIdx.x];
        }
        part[c * splits + blockIdx.y] = make_double2(r0, r1);
    }
}

template <class G>
__global__ void gpu_chan_finalize(G g, int64_t n, int64_t per_chan, const double2 *part)
{
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < n; j += (int64_t)gridDim.x * blockDim.x) {
        double a0 = 0.0, a1 = 0.0;
        const double2 *pj = part + j * per_chan;
        for (int64_t q = 0; q < per_chan; q++) {
            a0 += pj[q].x;
            a1 += pj[q].y;
        }
        g(j, a0, a1);
    }
}

// The per-channel result area at the start of the scratch (n pairs) and the
// partials after it.
static inline double2 *gpu_chan_results(gpu_ctx *g) { return (double2 *)g->scratch; }

template <class F, class G>
static int gpu_chan_reduce(gpu_ctx *g, const char *op, int64_t outer, int64_t n, int64_t inner, F f, G fin)
{
    const int64_t pairs = (int64_t)(g->scratch_doubles / 2);
    gpu_chan_plan p;
    if (n >= pairs || gpu_chan_plan_make(&p, outer, n, inner, g->sm_count, pairs - n) < 0)
        return eng_error(ENG_ELIMIT, "%s: shape (%lld, %lld, %lld) needs more reduction scratch than the %zu bytes held",
                         op, (long long)outer, (long long)n, (long long)inner, g->scratch_doubles * sizeof(double));
    double2 *part = (double2 *)g->scratch + n;
    if (p.cols) {
        dim3 grid((unsigned)p.grid_x, (unsigned)p.grid_y), block(32, 8);
        gpu_chan_partial_cols<<<grid, block, 0, g->stream>>>(f, outer, n, inner, p.splits, part);
        GPU_LAUNCHED(gpu_chan_partial_cols);
    } else {
        dim3 grid((unsigned)p.grid_x, (unsigned)p.grid_y);
        gpu_chan_partial_strided<<<grid, GPU_THREADS, 0, g->stream>>>(f, outer, n, inner, p.splits, part);
        GPU_LAUNCHED(gpu_chan_partial_strided);
    }
    gpu_chan_finalize<<<gpu_blocks(n, 128), 128, 0, g->stream>>>(fin, n, p.per_chan, part);
    GPU_LAUNCHED(gpu_chan_finalize);
    return 0;
}

#endif
