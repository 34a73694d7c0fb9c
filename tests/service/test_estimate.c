/* Unit tests of service/estimate.c: a run's cost from its spec text (FLOPs
 * and sizes worked out by hand), the work of an epoch, and device speeds
 * learned from timed epochs with their fallbacks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/model.h"
#include "service/error.h"
#include "service/estimate.h"

static void assert_near(double a, double b)
{
    if (!(fabs(a - b) <= 1e-9 * (1 + fabs(b))))
        fail_msg("%.17g != %.17g", a, b);
}

static const char mlp_spec[] = "name: tiny\n"
                               "data:\n"
                               "  dataset: synthetic\n"
                               "  batch_size: 32\n"
                               "  synthetic: {shape: [1, 8, 8], classes: 4, train: 256, test: 64}\n"
                               "model: {template: mlp, units: [32, 4]}\n"
                               "train:\n"
                               "  epochs: 2\n";

static void test_cost_of_spec(void **state)
{
    (void)state;
    db_cost c;
    assert_int_equal(svc_cost_of_spec(mlp_spec, "/nowhere/tiny.yaml", &c), 0);
    /* Linear(64, 32): 2*64*32 = 4096; BatchNorm1d(32): 2 per value = 64; ReLU: 32;
     * Linear(32, 4): 2*32*4 = 256; BatchNorm1d(4): 8 -> 4456 per sample */
    assert_int_equal(c.flops_per_sample, 4456);
    assert_int_equal(c.train_samples, 256);
    assert_int_equal(c.test_samples, 64);
    /* on a GPU: the engine's estimate at batch 32, the data (320 samples of
     * 64 pixels + a 4-byte label, 10 bytes per training sample) and the overhead */
    eng_model_desc d;
    eng_model_desc_default(&d);
    d.template_kind = ENG_TEMPLATE_MLP;
    int64_t units[2] = {32, 4};
    d.units = units;
    d.n_units = 2;
    eng_shape in = eng_shape3(1, 8, 8);
    eng_model *m = NULL;
    assert_int_equal(eng_model_build(&d, &in, 4, NULL, NULL, &m), 0);
    int64_t engine = (int64_t)eng_model_memory_estimate(m, 32);
    eng_model_free(m);
    assert_int_equal(c.memory_bytes, engine + 320 * 68 + 2560 + SVC_GPU_OVERHEAD_BYTES);
    /* epoch work: 4456 * (3 * 256 + 64) */
    assert_near(svc_epoch_work(&c), 4456.0 * 832);
    assert_near(svc_estimate_seconds(&c, 10, 4456.0 * 832), 10.0);

    /* CIFAR-10 with a limit, the seed's normal_cnn shape of numbers */
    const char *cifar = "name: c\n"
                        "data: {dataset: cifar10, root: /nowhere, batch_size: 100, limit: {train: 1000}}\n"
                        "model: {template: mlp, units: [10]}\n"
                        "train: {epochs: 1}\n";
    if (svc_cost_of_spec(cifar, "/x/c.yaml", &c) != 0)
        fail_msg("%s", svc_last_error());
    assert_int_equal(c.train_samples, 1000);
    assert_int_equal(c.test_samples, 10000);
    /* Linear(3072, 10, no bias): 2*3072*10 = 61440; BatchNorm1d(10): 20 */
    assert_int_equal(c.flops_per_sample, 61460);

    /* a spec that does not validate */
    assert_int_equal(svc_cost_of_spec("name: x\nmodel: {template: nope}\n", "/x/bad.yaml", &c), SVC_EINVAL);
    assert_int_equal(c.flops_per_sample, -1);
    assert_int_equal(svc_cost_of_spec(NULL, "/x/none.yaml", &c), SVC_EINVAL);
}

static void test_size_class(void **state)
{
    (void)state;
    /* half-decades: 10^6 -> 12, 3.2e6 -> 13, 9.9e6 -> 13, 10^7 -> 14 */
    assert_int_equal(svc_size_class(1000000), 12);
    assert_int_equal(svc_size_class(3200000), 13);
    assert_int_equal(svc_size_class(9900000), 13);
    assert_int_equal(svc_size_class(10000000), 14);
    assert_int_equal(svc_size_class(0), -1);
}

static db_speed_sample sample(const char *name, const char *device, const char *tmpl, int64_t flops, int64_t epochs,
                              double secs)
{
    return (db_speed_sample){.name = (char *)name, .device = (char *)device, .template_name = (char *)tmpl,
                             .cost = {.flops_per_sample = flops, .train_samples = 1000, .test_samples = 0},
                             .epochs = epochs, .seconds = secs};
}

static void test_speeds(void **state)
{
    (void)state;
    /* work per epoch = flops * 3000 */
    db_speed_sample v[5] = {
        sample("a", "cuda:0", "cnn", 1000000, 2, 3.0),        /* 2 * 3e9 / 3 s = 2e9 */
        sample("c", "cuda:0", "cnn", 1200000, 1, 1.8),        /* same class (12): + 3.6e9 / 1.8 s */
        sample("m", "cuda:0", "mlp_mixer", 1000000, 4, 24.0), /* 1.2e10 / 24 s = 5e8 */
        sample("a", "cpu", "cnn", 1000000, 1, 30.0),          /* 3e9 / 30 s = 1e8 */
        sample("x", "cpu", "cnn", -1, 1, 5.0),                /* no FLOPs: ignored */
    };
    for (int i = 0; i < 5; i++)
        v[i].run_seconds = NAN;
    /* a's run took 5 s in all for its 3 s of epochs; b's 30 s for 24 */
    v[0].run_seconds = 5.0;
    v[2].run_seconds = 30.0;
    svc_speeds t = {0};
    assert_int_equal(svc_speeds_learn(&t, v, 5), 0);
    /* overheads: cuda:0's runs (2 + 6) / 2 = 4 s; another GPU gets the kind's 4 s; the CPU has none */
    assert_near(svc_overhead_of(&t, "cuda:0"), 4.0);
    assert_near(svc_overhead_of(&t, "cuda:5"), 4.0);
    assert_near(svc_overhead_of(&t, "cpu"), 0.0);
    assert_int_equal(t.n, 4); /* a and c on cuda:0 are two models of one class; a on the CPU */
    svc_speed_basis b;
    /* the same experiment on the device: its own 2e9; with other FLOPs it is another model */
    assert_near(svc_speed_of(&t, "cuda:0", "c", "cnn", 1200000, 7, &b), 2e9);
    assert_int_equal(b, SVC_SPEED_RUN);
    assert_near(svc_speed_of(&t, "cuda:0", "a", "cnn", 1000000, 7, &b), 2e9);
    assert_int_equal(b, SVC_SPEED_RUN);
    /* same device, template, class: (6e9 + 3.6e9) / (3 + 1.8) = 2e9 */
    assert_near(svc_speed_of(&t, "cuda:0", "a", "cnn", 1100000, 7, &b), 9.6e9 / 4.8);
    assert_int_equal(b, SVC_SPEED_SAME);
    /* another class of the template on the device: the template's cells */
    assert_near(svc_speed_of(&t, "cuda:0", NULL, "cnn", 50000000, 7, &b), 9.6e9 / 4.8);
    assert_int_equal(b, SVC_SPEED_TEMPLATE);
    /* another GPU: the kind's cells of that template and class */
    assert_near(svc_speed_of(&t, "cuda:3", NULL, "mlp_mixer", 1000000, 7, &b), 5e8);
    assert_int_equal(b, SVC_SPEED_KIND_SAME);
    assert_near(svc_speed_of(&t, "cuda:3", NULL, "mlp_mixer", 90000000, 7, &b), 5e8);
    assert_int_equal(b, SVC_SPEED_KIND_TEMPLATE);
    /* an unseen template on a seen device: everything measured there */
    assert_near(svc_speed_of(&t, "cuda:0", NULL, "resnet", 1000000, 7, &b), (9.6e9 + 1.2e10) / (4.8 + 24.0));
    assert_int_equal(b, SVC_SPEED_DEVICE);
    assert_near(svc_speed_of(&t, "cuda:2", NULL, NULL, 1000000, 7, &b), (9.6e9 + 1.2e10) / (4.8 + 24.0));
    assert_int_equal(b, SVC_SPEED_KIND);
    assert_near(svc_speed_of(&t, "cpu", NULL, "resnet", 1000000, 7, &b), 1e8);
    assert_int_equal(b, SVC_SPEED_DEVICE);
    /* nothing measured: the guess */
    svc_speeds_clear(&t);
    assert_near(svc_speed_of(&t, "cpu", NULL, "cnn", 1000000, 7, &b), 7);
    assert_int_equal(b, SVC_SPEED_GUESS);
    assert_near(svc_speed_guess_cpu(4), 4 * SVC_GUESS_CPU_FLOPS_PER_THREAD);
    assert_near(svc_speed_guess_gpu(100), 100 * SVC_GUESS_GPU_FLOPS_PER_SM);
    assert_near(svc_speed_guess_gpu(0), SVC_GUESS_GPU_FLOPS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_of_spec),
        cmocka_unit_test(test_size_class),
        cmocka_unit_test(test_speeds),
    };
    return cmocka_run_group_tests_name("estimate", tests, NULL, NULL);
}
