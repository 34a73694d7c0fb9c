/* The CPU backend's machine policies:
 * - one thread pool: our loops, OpenBLAS and oneDNN run on libgomp's team
 *   of exactly the backend's thread count (the process's threads counted in
 *   /proc/self/task after each has run), for 1, 2 and 3 threads;
 * - instruction-set dispatch: eng_cpu_set_isa moves our own kernels to each
 *   level the CPU has, refuses the ones it lacks and unknown names;
 *   elementwise kernels give the same bits at every level (no FMA
 *   contraction in C11 mode) and GELU, which asks for FMA, agrees within
 *   float rounding;
 * - the kernel file: the first choice written for a shape wins - a backend
 *   reads it instead of measuring (a line planted in the file decides, even
 *   against what measuring would say) - and EPOCHD_KERNEL_FILE=off keeps
 *   choices in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/backend.h"
#include "engine/error.h"

static int task_count(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static float *buf(eng_backend *b, int64_t n, float v)
{
    float *p = NULL;
    assert_int_equal(eng_alloc_floats(b, n, &p), 0);
    for (int64_t i = 0; i < n; i++)
        p[i] = v * (float)((i % 7) - 3);
    return p;
}

/* A product and a convolution large enough for every library to use its
 * threads, then a loop of ours. */
static void work(eng_backend *b)
{
    const int64_t m = 1024, k = 256, n = 256;
    float *A = buf(b, m * k, 0.01f), *B = buf(b, k * n, 0.02f), *C = buf(b, m * n, 0.0f);
    eng_gemm_desc g = {.m = m, .n = n, .k = k, .lda = k, .ldb = n, .ldc = n, .batch = 1, .alpha = 1.0f};
    assert_int_equal(b->ops->gemm(b, &g, A, B, C), 0);
    eng_conv_desc d = {.n = 32, .c = 16, .h = 16, .w = 16, .k = 16, .kh = 3, .kw = 3, .stride = 1, .pad = 1,
                       .oh = 16, .ow = 16};
    void *ws = NULL;
    assert_int_equal(b->ops->alloc(b, b->ops->conv2d_workspace(b, &d), &ws), 0);
    float *x = buf(b, 32 * 16 * 256, 0.1f), *w = buf(b, 16 * 16 * 9, 0.1f), *y = buf(b, 32 * 16 * 256, 0.0f);
    assert_int_equal(b->ops->conv2d_forward(b, &d, x, w, NULL, y, ws), 0);
    assert_int_equal(b->ops->act_forward(b, ENG_ACT_GELU, 0.0f, 32 * 16 * 256, y, y), 0);
    void *all[] = {A, B, C, ws, x, w, y};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        b->ops->free(b, all[i]);
}

static void test_one_thread_pool(void **state)
{
    (void)state;
    setenv("EPOCHD_KERNEL_FILE", "off", 1);
    static const char *const sides[] = {"own", "onednn"};
    for (int t = 1; t <= 3; t++)
        for (int s = 0; s < 2; s++) {
            setenv("EPOCHD_KERNELS", sides[s], 1);
            eng_backend *b = NULL;
            assert_int_equal(eng_cpu_backend_open(t, ENG_PREC_FP32, &b), 0);
            work(b);
            work(b);
            const int tasks = task_count();
            print_message("    %d threads, %s kernels: %d threads in the process\n", t, sides[s], tasks);
            /* libgomp's team: the main thread plus t - 1 (kept between calls, and the
             * thread counts only grow here); a second pool would add threads */
            assert_int_equal(tasks, t);
            eng_backend_free(b);
        }
    unsetenv("EPOCHD_KERNELS");
}

static void test_isa_dispatch(void **state)
{
    (void)state;
    eng_cpu_info in;
    assert_int_equal(eng_cpu_info_get(&in), 0);
    const int max = in.isa_max[8] - '0';
    print_message("    this CPU: up to %s\n", in.isa_max);
    assert_true(max >= 2 && max <= 4);
    assert_int_equal(eng_cpu_set_isa("v5"), ENG_EINVAL);
    assert_int_equal(eng_cpu_set_isa(NULL), ENG_EINVAL);
    if (max < 4)
        assert_int_equal(eng_cpu_set_isa("v4"), ENG_ENOTSUP);

    eng_backend *b = NULL;
    assert_int_equal(eng_cpu_backend_new(2, &b), 0);
    const int64_t n = 100003;
    float *x = buf(b, n, 0.37f), *g = buf(b, n, 0.011f), *ref = NULL, *ref_gelu = NULL;
    float *y = buf(b, n, 0.0f), *p = buf(b, n, 0.0f), *m = buf(b, n, 0.0f), *v = buf(b, n, 0.0f);
    const eng_adam_args adam = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-2f,
                                .step = 1};
    for (int level = 2; level <= max; level++) {
        char name[8];
        snprintf(name, sizeof name, "v%d", level);
        assert_int_equal(eng_cpu_set_isa(name), 0);
        assert_int_equal(eng_cpu_info_get(&in), 0);
        char want[16];
        snprintf(want, sizeof want, "x86-64-v%d", level);
        assert_string_equal(in.isa, want);
        /* elementwise without contraction: add, then an Adam step */
        assert_int_equal(b->ops->add(b, n, x, g, y), 0);
        memcpy(p, x, (size_t)n * sizeof *p);
        memset(m, 0, (size_t)n * sizeof *m);
        memset(v, 0, (size_t)n * sizeof *v);
        assert_int_equal(b->ops->adam_step(b, n, p, g, m, v, &adam), 0);
            if (!ref) {
            ref = malloc((size_t)2 * n * sizeof *ref);
            assert_non_null(ref);
            memcpy(ref, y, (size_t)n * sizeof *ref);
            memcpy(ref + n, p, (size_t)n * sizeof *ref);
        } else {
            assert_memory_equal(ref, y, (size_t)n * sizeof *ref);
            assert_memory_equal(ref + n, p, (size_t)n * sizeof *ref);
        }
        /* GELU's polynomials use FMA where the level has it (cpu_act.c): within float rounding */
        assert_int_equal(b->ops->act_forward(b, ENG_ACT_GELU, 0.0f, n, x, y), 0);
        if (!ref_gelu) {
            ref_gelu = malloc((size_t)n * sizeof *ref_gelu);
            assert_non_null(ref_gelu);
            memcpy(ref_gelu, y, (size_t)n * sizeof *ref_gelu);
        }
        double worst = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const double d = fabs((double)y[i] - ref_gelu[i]) / fmax(fabs((double)ref_gelu[i]), 1e-30);
            worst = d > worst ? d : worst;
        }
        assert_true(worst <= 1e-6);
        print_message("    %s: add and Adam the same bits as x86-64-v2, GELU within %.1e\n", want, worst);
    }
    free(ref_gelu);
    b->ops->free(b, g);
    b->ops->free(b, p);
    b->ops->free(b, m);
    b->ops->free(b, v);
    free(ref);
    char top[8];
    snprintf(top, sizeof top, "v%d", max);
    assert_int_equal(eng_cpu_set_isa(top), 0);
    b->ops->free(b, x);
    b->ops->free(b, y);
    eng_backend_free(b);
}

static char *record_of(eng_backend *b)
{
    char *t = NULL;
    assert_int_equal(b->ops->kernels_record(b, &t), 0);
    return t;
}

static void test_kernel_file(void **state)
{
    (void)state;
    unsetenv("EPOCHD_KERNELS");
    char path[] = "/tmp/epochd-test-kernel-file-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    setenv("EPOCHD_KERNEL_FILE", path, 1);

    /* the first backend measures and writes */
    eng_backend *b1 = NULL;
    assert_int_equal(eng_cpu_backend_open(2, ENG_PREC_FP32, &b1), 0);
    work(b1);
    char *r1 = record_of(b1);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[2048];
    int lines = 0;
    while (fgets(line, sizeof line, f))
        lines++;
    fclose(f);
    print_message("    first backend: %d lines written; its choices: %s\n", lines, r1);
    assert_true(lines >= 2);

    /* a second backend takes them from the file */
    eng_backend *b2 = NULL;
    assert_int_equal(eng_cpu_backend_open(2, ENG_PREC_FP32, &b2), 0);
    work(b2);
    char *r2 = record_of(b2);
    assert_string_equal(r1, r2);

    /* planted lines decide, the first for a key winning: two shapes, each
     * with one side's line and then the other's */
    eng_backend *probe = NULL;
    assert_int_equal(eng_cpu_backend_open(2, ENG_PREC_FP32, &probe), 0);
    float *A = buf(probe, 64 * 32, 0.1f), *B = buf(probe, 32 * 17, 0.1f), *C = buf(probe, 64 * 17, 0.0f);
    eng_gemm_desc g = {.m = 64, .n = 16, .k = 32, .lda = 32, .ldb = 16, .ldc = 16, .batch = 1, .alpha = 1.0f};
    char sig[600] = "";
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    snprintf(sig, sizeof sig, "%.*s", (int)strcspn(line, "\t"), line);
    for (int side = 0; side < 2; side++) {
        const char *want = side ? "own" : "onednn";
        eng_gemm_desc gs = g;
        gs.n = 16 + side; /* a shape per side */
        gs.ldb = gs.ldc = gs.n;
        f = fopen(path, "a");
        assert_non_null(f);
        for (int line_no = 0; line_no < 2; line_no++) /* the first line for a key wins */
            fprintf(f, "%s\tfp32 gemm nn 64x%lldx32 ld 32,%lld,%lld\t%s\t1.0\t1.0\n", sig, (long long)gs.n,
                    (long long)gs.n, (long long)gs.n, line_no ? (side ? "onednn" : "own") : want);
        fclose(f);
        eng_backend *b = NULL;
        assert_int_equal(eng_cpu_backend_open(2, ENG_PREC_FP32, &b), 0);
        assert_int_equal(b->ops->gemm(b, &gs, A, B, C), 0);
        char *r = record_of(b);
        char expect[128];
        snprintf(expect, sizeof expect, "fp32 gemm nn 64x%lldx32 ld 32,%lld,%lld=%s", (long long)gs.n,
                 (long long)gs.n, (long long)gs.n, want);
        print_message("    planted '%s': the backend's record says %s\n", want, r);
        assert_non_null(strstr(r, expect));
        free(r);
        eng_backend_free(b);
    }

    /* off: nothing is read or written */
    setenv("EPOCHD_KERNEL_FILE", "off", 1);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    eng_backend *b3 = NULL;
    assert_int_equal(eng_cpu_backend_open(2, ENG_PREC_FP32, &b3), 0);
    work(b3);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_null(fgets(line, sizeof line, f));
    fclose(f);

    probe->ops->free(probe, A);
    probe->ops->free(probe, B);
    probe->ops->free(probe, C);
    eng_backend_free(probe);
    free(r1);
    free(r2);
    eng_backend_free(b1);
    eng_backend_free(b2);
    eng_backend_free(b3);
    unlink(path);
    unsetenv("EPOCHD_KERNEL_FILE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_thread_pool),
        cmocka_unit_test(test_isa_dispatch),
        cmocka_unit_test(test_kernel_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
