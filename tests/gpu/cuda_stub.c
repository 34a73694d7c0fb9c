/* A stand-in for the NVIDIA user-space driver (built as libcuda.so.1 for
 * test_gpu_broken_driver.py): a driver that is installed but says it is
 * CUDA 1.0, far older than any runtime, so that CUDA reports
 * cudaErrorInsufficientDriver on a machine where a driver is present. */
int cuDriverGetVersion(int *version);
int cuInit(unsigned int flags);

int cuDriverGetVersion(int *version)
{
    *version = 1000;
    return 0;
}

int cuInit(unsigned int flags)
{
    (void)flags;
    return 35; /* CUDA_ERROR_INSUFFICIENT_DRIVER */
}
