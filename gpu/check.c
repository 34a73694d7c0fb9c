/* Error reports for failed CUDA, cuBLAS and cuDNN calls. */
#include "gpu/check.h"

#include "engine/error.h"

int gpu_report(const char *lib, int code, const char *name, const char *text, const char *call, const char *file,
               int line)
{
    return eng_error(ENG_EDEVICE, "%s:%d: %s failed: %s error %s (%d): %s", file ? file : "?", line,
                     call ? call : "?", lib ? lib : "?", name ? name : "?", code, text ? text : "?");
}

int gpu_fail_cuda(cudaError_t e, const char *call, const char *file, int line)
{
    return gpu_report("CUDA", (int)e, cudaGetErrorName(e), cudaGetErrorString(e), call, file, line);
}

int gpu_fail_cublas(cublasStatus_t s, const char *call, const char *file, int line)
{
    return gpu_report("cuBLAS", (int)s, cublasGetStatusName(s), cublasGetStatusString(s), call, file, line);
}

int gpu_fail_cudnn(cudnnStatus_t s, const char *call, const char *file, int line)
{
    /* cuDNN's error string is the enum's name; the detail is kept per thread */
    char detail[256] = "";
    cudnnGetLastErrorString(detail, sizeof detail);
    return gpu_report("cuDNN", (int)s, cudnnGetErrorString(s), detail[0] ? detail : "no detail", call, file, line);
}
