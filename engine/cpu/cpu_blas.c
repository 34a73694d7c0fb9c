/* Which of its kernel sets OpenBLAS runs in this process.
 *
 * A DYNAMIC_ARCH OpenBLAS (Debian's) picks its kernels by CPU model when it
 * loads, unless OPENBLAS_CORETYPE names a set. That variable can hold a CPU
 * with AVX-512 to AVX2 kernels: the development machines of this project
 * set OPENBLAS_CORETYPE=Haswell in every shell, and there OpenBLAS
 * multiplies float32 matrices at 195-199 GFLOP/s on 2 cores of a Zen 5
 * where its own choice, "Cooperlake", runs 319-320 (idle; docs/cpu.md).
 * OpenBLAS reads the variable only while it loads, and a user's setting is
 * theirs to keep, so epochd reports it (`epochd devices`, the kernel file's
 * machine signature) rather than overriding it. */
#include <stdlib.h>
#include <strings.h>

#include <cblas.h>

#include "engine/cpu/cpu_internal.h"

/* OpenBLAS's x86 kernel sets built on AVX-512 (0.3.21) */
static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};

const char *eng_cpu_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name && *name ? name : "unknown";
}

bool eng_cpu_blas_core_held_back(void)
{
    if (!getenv("OPENBLAS_CORETYPE") || cpu_isa_detected() < 4)
        return false;
    const char *core = eng_cpu_blas_core();
    for (size_t i = 0; i < sizeof avx512_cores / sizeof *avx512_cores; i++)
        if (!strcasecmp(core, avx512_cores[i]))
            return false;
    return true;
}
