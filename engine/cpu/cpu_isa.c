/* The instruction-set level our own CPU kernels run at, chosen once at
 * start: x86-64-v4 (AVX-512) where the CPU and the OS support it, else v3
 * (AVX2, FMA) or the v2 baseline the project is built for - one build for
 * any x86-64 machine, as OpenBLAS does. EPOCHD_CPU_ISA=v2|v3|v4 lowers it
 * (a level the CPU lacks is not taken), to test the fallbacks on a machine
 * that has more. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

int cpu_isa_level_current = 2;
bool cpu_isa_bf16_current = false;
static int detected = 2;
static bool detected_bf16 = false;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int parse_level(const char *s)
{
    if (!s || !*s)
        return 0;
    if (!strncmp(s, "x86-64-", 7))
        s += 7;
    if (!strcmp(s, "v2"))
        return 2;
    if (!strcmp(s, "v3"))
        return 3;
    if (!strcmp(s, "v4"))
        return 4;
    return 0;
}

static void detect(void)
{
#if CPU_MULTIVERSION
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4"))
        detected = 4;
    else if (__builtin_cpu_supports("x86-64-v3"))
        detected = 3;
    detected_bf16 = detected == 4 && __builtin_cpu_supports("avx512bf16");
#endif
    int want = parse_level(getenv("EPOCHD_CPU_ISA"));
    cpu_isa_level_current = want && want < detected ? want : detected;
    cpu_isa_bf16_current = detected_bf16 && cpu_isa_level_current == 4;
}

void cpu_isa_init(void) { pthread_once(&once, detect); }

int cpu_isa_detected(void)
{
    cpu_isa_init();
    return detected;
}

const char *cpu_isa_name(void)
{
    cpu_isa_init();
    return cpu_isa_level_current >= 4 ? "x86-64-v4" : cpu_isa_level_current == 3 ? "x86-64-v3" : "x86-64-v2";
}

int eng_cpu_set_isa(const char *level)
{
    cpu_isa_init();
    int want = parse_level(level);
    if (!want)
        return eng_error(ENG_EINVAL, "unknown instruction-set level '%s' (expected v2, v3 or v4)",
                         level ? level : "(null)");
    if (want > detected)
        return eng_error(ENG_ENOTSUP, "this CPU runs x86-64-v%d at most, not %s", detected, level);
    cpu_isa_level_current = want;
    cpu_isa_bf16_current = detected_bf16 && want == 4;
    return 0;
}
