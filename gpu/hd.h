/* GPU_HD marks functions compiled for both the host and the device, so the
 * per-element arithmetic of a kernel can be run and tested on the CPU.
 * GPU_FMUL/GPU_FADD are a float multiply and add that nvcc must not fuse
 * into an FMA, where a kernel is meant to round exactly as the CPU backend
 * does (which is built without FMA contraction). */
#ifndef GPU_HD_H
#define GPU_HD_H

#ifdef __CUDACC__
#define GPU_HD __host__ __device__ __forceinline__
#else
#define GPU_HD static inline
#endif

#ifdef __CUDA_ARCH__
#define GPU_FMUL(a, b) __fmul_rn((a), (b))
#define GPU_FADD(a, b) __fadd_rn((a), (b))
#else
#define GPU_FMUL(a, b) ((a) * (b))
#define GPU_FADD(a, b) ((a) + (b))
#endif

#endif
