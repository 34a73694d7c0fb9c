/* Unit tests of the placement planner (service/plan.c) on situations small
 * enough to work out by hand (the numbers in the comments), and first_free
 * checked against svc_slots_place itself - today's rule - on thousands of
 * random device states and queues. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service/error.h"
#include "service/plan.h"
#include "service/slots.h"

#define GIB (1024ll * 1024 * 1024)

static svc_slots slots(int gpus, int cpu_slots, int gpu_slots)
{
    svc_device_filter f;
    svc_devices_parse("auto", &f);
    svc_slots s;
    char warn[128];
    svc_slots_init(&s, gpus, &f, cpu_slots, gpu_slots, warn, sizeof warn);
    return s;
}

static void plan(svc_policy pol, const svc_slots *s, const int64_t *mem, const svc_plan_busy *busy, size_t nb,
                 const svc_plan_job *jobs, size_t n, svc_plan_out *out)
{
    svc_plan_input in = {.policy = pol, .slots = s, .gpu_memory = mem, .busy = busy, .n_busy = nb, .jobs = jobs,
                         .n_jobs = n};
    assert_int_equal(svc_plan_make(&in, out), 0);
}

static void assert_near(double a, double b)
{
    if (!(fabs(a - b) <= 1e-9 * (1 + fabs(b))))
        fail_msg("%.17g != %.17g", a, b);
}

/* An auto run waits for the busy GPU when it finishes sooner there. */
static void test_waits_for_gpu(void **state)
{
    (void)state;
    svc_slots s = slots(1, 1, 1);
    s.gpu_used[0] = 1;
    svc_plan_busy b = {.device = 0, .remaining = 100};
    double sec[2] = {50, 1000}; /* GPU, CPU */
    svc_plan_job j = {.id = 1, .requested = "auto", .seconds = sec};
    svc_plan_out o;
    plan(SVC_POLICY_EARLIEST_FINISH, &s, NULL, &b, 1, &j, 1, &o);
    /* GPU: 100 + 50 = 150 < CPU: 0 + 1000 */
    assert_int_equal(o.action, SVC_PLAN_WAIT);
    assert_int_equal(o.device, 0);
    assert_near(o.start, 100);
    assert_near(o.finish, 150);
    assert_near(o.cpu_seconds, 1000);
    assert_string_equal(o.note, "waiting for cuda:0");
    /* first_free takes the free CPU slot, as it always did */
    plan(SVC_POLICY_FIRST_FREE, &s, NULL, &b, 1, &j, 1, &o);
    assert_int_equal(o.action, SVC_PLAN_START);
    assert_string_equal(o.place.device, "cpu");
    assert_near(o.finish, 1000);
    /* a CPU time of 120 beats the GPU's 150: start on the CPU now */
    sec[1] = 120;
    plan(SVC_POLICY_EARLIEST_FINISH, &s, NULL, &b, 1, &j, 1, &o);
    assert_int_equal(o.action, SVC_PLAN_START);
    assert_string_equal(o.place.device, "cpu");
    assert_int_equal(o.place.gpu, -1);
    assert_near(o.finish, 120);
    assert_string_equal(o.note, "");
}

/* Explicit devices keep their meaning; impossible ones get slots.c's notes. */
static void test_explicit_devices(void **state)
{
    (void)state;
    svc_slots s = slots(2, 1, 1);
    double sec[3] = {1, 1, 1000}; /* cuda:0, cuda:1, CPU */
    svc_plan_job j[4] = {{.id = 1, .requested = "cpu", .seconds = sec},
                         {.id = 2, .requested = "cuda:1", .seconds = sec},
                         {.id = 3, .requested = "cuda:7", .seconds = sec},
                         {.id = 4, .requested = "cuda", .seconds = sec}};
    svc_plan_out o[4];
    plan(SVC_POLICY_EARLIEST_FINISH, &s, NULL, NULL, 0, j, 4, o);
    assert_int_equal(o[0].action, SVC_PLAN_START);
    assert_string_equal(o[0].place.device, "cpu"); /* although a GPU would be 1000x faster */
    assert_int_equal(o[1].action, SVC_PLAN_START);
    assert_string_equal(o[1].place.device, "cuda:1");
    assert_int_equal(o[1].place.ordinal, 1);
    assert_int_equal(o[2].action, SVC_PLAN_NEVER);
    assert_string_equal(o[2].note, "waiting: no cuda device 7 on this host");
    assert_int_equal(o[2].device, -1);
    assert_int_equal(o[3].action, SVC_PLAN_START);
    assert_string_equal(o[3].place.device, "cuda:0");
    assert_true(isnan(o[3].cpu_seconds)); /* the CPU is not its choice */
    /* no GPU on the host */
    s = slots(0, 1, 1);
    double one[1] = {5};
    svc_plan_job g = {.id = 5, .requested = "cuda", .seconds = one};
    plan(SVC_POLICY_EARLIEST_FINISH, &s, NULL, NULL, 0, &g, 1, o);
    assert_int_equal(o[0].action, SVC_PLAN_NEVER);
    assert_string_equal(o[0].note, "waiting: no cuda device on this host");
}

/* Memory: a run waits until it fits beside what a GPU already holds, and
 * one that fits on no GPU goes to the CPU (auto) or waits with a note. */
static void test_memory(void **state)
{
    (void)state;
    svc_slots s = slots(1, 1, 2);
    s.gpu_used[0] = 1;
    int64_t mem[1] = {16 * GIB};
    svc_plan_busy b = {.device = 0, .remaining = 100, .memory = 10 * GIB};
    double sec[2] = {10, 1000};
    svc_plan_job j = {.id = 1, .requested = "auto", .memory = 8 * GIB, .seconds = sec};
    svc_plan_out o;
    /* a second slot is free, but 10 + 8 > 16 GiB: it starts at 100 and ends at 110 */
    plan(SVC_POLICY_EARLIEST_FINISH, &s, mem, &b, 1, &j, 1, &o);
    assert_int_equal(o.action, SVC_PLAN_WAIT);
    assert_int_equal(o.device, 0);
    assert_near(o.start, 100);
    assert_near(o.finish, 110);
    assert_string_equal(o.note, "waiting for memory on cuda:0 (needs 8.0 GiB of the 16.0 GiB usable)");
    /* 6 GiB fits beside the 10: it starts now on the second slot */
    j.memory = 6 * GIB;
    plan(SVC_POLICY_EARLIEST_FINISH, &s, mem, &b, 1, &j, 1, &o);
    assert_int_equal(o.action, SVC_PLAN_START);
    assert_string_equal(o.place.device, "cuda:0");
    /* two of 6 GiB on three slots: the first now; the second would make
     * 6 + 6 + 10 > 16, so it starts when the first ends (10) */
    svc_plan_job two[2] = {j, j};
    two[1].id = 2;
    svc_plan_out o2[2];
    s.gpu_slots = 3;
    plan(SVC_POLICY_EARLIEST_FINISH, &s, mem, &b, 1, two, 2, o2);
    assert_int_equal(o2[0].action, SVC_PLAN_START);
    assert_int_equal(o2[1].action, SVC_PLAN_WAIT);
    assert_near(o2[1].start, 10);
    assert_near(o2[1].finish, 20);
    assert_non_null(strstr(o2[1].note, "waiting for memory on cuda:0"));
    s.gpu_slots = 2;
    /* 20 GiB never fits: auto waits for the CPU, cuda waits with a note */
    j.memory = 20 * GIB;
    s.cpu_used = 1;
    svc_plan_busy both[2] = {b, {.device = 1, .remaining = 50}};
    plan(SVC_POLICY_EARLIEST_FINISH, &s, mem, both, 2, &j, 1, &o);
    assert_int_equal(o.action, SVC_PLAN_WAIT);
    assert_int_equal(o.device, 1);
    assert_near(o.start, 50);
    assert_near(o.finish, 1050);
    assert_string_equal(o.note, "waiting for a CPU slot (needs about 20.0 GiB, more than a GPU has free)");
    j.requested = "cuda";
    plan(SVC_POLICY_EARLIEST_FINISH, &s, mem, both, 2, &j, 1, &o);
    assert_int_equal(o.action, SVC_PLAN_WAIT);
    assert_int_equal(o.device, -1);
    assert_true(isnan(o.start) && isnan(o.finish));
    assert_string_equal(o.note, "waiting: needs about 20.0 GiB of GPU memory, more than cuda:0's 16.0 GiB");
    /* first_free ignores memory, as it always did */
    s.cpu_used = 0;
    j.requested = "auto";
    plan(SVC_POLICY_FIRST_FREE, &s, mem, &b, 1, &j, 1, &o);
    assert_int_equal(o.action, SVC_PLAN_START);
    assert_string_equal(o.place.device, "cuda:0");
}

/* The greedy plan improved by a move: J0 (GPU 10, CPU 12) then J1 and J2
 * (GPU 10, CPU 1000). Greedy puts all three on the GPU: finishes 10, 20, 30
 * (sum 60). J0 on the CPU instead: 12, 10, 20 (sum 42). */
static void test_move_improves(void **state)
{
    (void)state;
    svc_slots s = slots(1, 1, 1);
    double a[2] = {10, 12}, b[2] = {10, 1000};
    svc_plan_job j[3] = {{.id = 1, .seconds = a}, {.id = 2, .seconds = b}, {.id = 3, .seconds = b}};
    svc_plan_out o[3];
    plan(SVC_POLICY_EARLIEST_FINISH, &s, NULL, NULL, 0, j, 3, o);
    assert_int_equal(o[0].action, SVC_PLAN_START);
    assert_string_equal(o[0].place.device, "cpu");
    assert_near(o[0].finish, 12);
    assert_int_equal(o[1].action, SVC_PLAN_START);
    assert_string_equal(o[1].place.device, "cuda:0");
    assert_near(o[1].finish, 10);
    assert_int_equal(o[2].action, SVC_PLAN_WAIT);
    assert_near(o[2].start, 10);
    assert_near(o[2].finish, 20);
}

/* Priorities first: A (priority 1: GPU 100, CPU 150) keeps the GPU although
 * B (priority 0: GPU 10, CPU 1000) would gain more from it. */
static void test_priority_first(void **state)
{
    (void)state;
    svc_slots s = slots(1, 1, 1);
    double a[2] = {100, 150}, b[2] = {10, 1000};
    svc_plan_job j[2] = {{.id = 1, .priority = 1, .seconds = a}, {.id = 2, .priority = 0, .seconds = b}};
    svc_plan_out o[2];
    plan(SVC_POLICY_EARLIEST_FINISH, &s, NULL, NULL, 0, j, 2, o);
    assert_string_equal(o[0].place.device, "cuda:0");
    assert_int_equal(o[1].action, SVC_PLAN_WAIT);
    assert_near(o[1].finish, 110);
    /* with equal priorities the sum decides: A on the CPU (150 + 10 < 100 + 110) */
    j[0].priority = 0;
    plan(SVC_POLICY_EARLIEST_FINISH, &s, NULL, NULL, 0, j, 2, o);
    assert_string_equal(o[0].place.device, "cpu");
    assert_string_equal(o[1].place.device, "cuda:0");
}

/* Runs in flight: more of them than slots (the slots were reduced) free a
 * slot only when enough have ended; an unknown duration is placed by first
 * start and has no finish. */
static void test_busy_and_unknown(void **state)
{
    (void)state;
    svc_slots s = slots(1, 0, 1);
    s.gpu_used[0] = 2;
    svc_plan_busy b[2] = {{.device = 0, .remaining = 5}, {.device = 0, .remaining = 8}};
    double sec[2] = {NAN, NAN}, known[2] = {4, NAN};
    svc_plan_job j[2] = {{.id = 1, .seconds = sec}, {.id = 2, .seconds = known}};
    svc_plan_out o[2];
    plan(SVC_POLICY_EARLIEST_FINISH, &s, NULL, b, 2, j, 2, o);
    assert_int_equal(o[0].action, SVC_PLAN_WAIT);
    assert_near(o[0].start, 8);
    assert_true(isnan(o[0].finish));
    /* the unknown one stands in for the median known duration (4) */
    assert_near(o[1].start, 12);
    assert_near(o[1].finish, 16);
}

static uint64_t rnd_state = 12345;
static int rnd(int n)
{
    rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
    return (int)((rnd_state >> 33) % (uint64_t)n);
}

/* first_free's decisions and notes are exactly svc_slots_place's, taken in
 * queue order on random device tables and queues. */
static void test_first_free_is_slots(void **state)
{
    (void)state;
    static const char *reqs[] = {"auto", "cpu", "cuda", "cuda:0", "cuda:1", "cuda:3", NULL, "tpu"};
    for (int round = 0; round < 3000; round++) {
#define RND(n) rnd(n)
        svc_device_filter f;
        svc_devices_parse(RND(4) == 0 ? "0,2" : "auto", &f);
        svc_slots s;
        char warn[128];
        int host = RND(4), cpu = RND(3), per_gpu = RND(3);
        svc_slots_init(&s, host, &f, cpu, per_gpu, warn, sizeof warn);
        for (int g = 0; g < s.n_gpus; g++)
            s.gpu_used[g] = RND(s.gpu_slots + 1);
        s.cpu_used = RND(s.cpu_slots + 1);
        size_t n = 1 + (size_t)RND(8);
        svc_plan_job j[8];
        double sec[8][SVC_MAX_GPUS + 1];
        for (size_t i = 0; i < n; i++) {
            for (int d = 0; d <= s.n_gpus; d++)
                sec[i][d] = 1 + RND(100);
            j[i] = (svc_plan_job){.id = (int64_t)i, .requested = reqs[RND(8)], .seconds = sec[i]};
        }
        svc_plan_out o[8];
        plan(SVC_POLICY_FIRST_FREE, &s, NULL, NULL, 0, j, n, o);
        svc_slots ref = s;
        for (size_t i = 0; i < n; i++) {
            svc_placement p;
            char note[256];
            svc_place_result r = svc_slots_place(&ref, j[i].requested, &p, note, sizeof note);
            if (r == SVC_PLACE_OK)
                svc_slots_take(&ref, &p);
            svc_plan_action want = r == SVC_PLACE_OK      ? SVC_PLAN_START
                                   : r == SVC_PLACE_NEVER ? SVC_PLAN_NEVER
                                                          : SVC_PLAN_WAIT;
            assert_int_equal(o[i].action, want);
            assert_string_equal(o[i].note, note);
            if (r == SVC_PLACE_OK) {
                assert_string_equal(o[i].place.device, p.device);
                assert_int_equal(o[i].place.gpu, p.gpu);
                assert_int_equal(o[i].place.ordinal, p.ordinal);
            }
        }
#undef RND
    }
}

/* The previous plan is kept when nothing is better (no flip-flopping
 * between equal plans): two identical GPUs, the run stays on cuda:1. */
static void test_previous_kept(void **state)
{
    (void)state;
    svc_slots s = slots(2, 0, 1);
    s.gpu_used[0] = s.gpu_used[1] = 1;
    svc_plan_busy b[2] = {{.device = 0, .remaining = 10}, {.device = 1, .remaining = 10}};
    double sec[3] = {5, 5, NAN};
    svc_plan_job j = {.id = 1, .seconds = sec};
    int prev = 1;
    svc_plan_out o;
    svc_plan_input in = {.policy = SVC_POLICY_EARLIEST_FINISH, .slots = &s, .busy = b, .n_busy = 2, .jobs = &j,
                         .n_jobs = 1, .previous = &prev};
    assert_int_equal(svc_plan_make(&in, &o), 0);
    assert_int_equal(o.device, 1);
    assert_string_equal(o.note, "waiting for cuda:1");
    in.previous = NULL;
    assert_int_equal(svc_plan_make(&in, &o), 0);
    assert_int_equal(o.device, 0);
}

static void test_policy_names(void **state)
{
    (void)state;
    svc_policy p;
    assert_int_equal(svc_policy_parse("first_free", &p), 0);
    assert_int_equal(p, SVC_POLICY_FIRST_FREE);
    assert_string_equal(svc_policy_name(p), "first_free");
    assert_int_equal(svc_policy_parse("earliest_finish", &p), 0);
    assert_int_equal(p, SVC_POLICY_EARLIEST_FINISH);
    assert_string_equal(svc_policy_name(p), "earliest_finish");
    assert_int_equal(svc_policy_parse("fastest", &p), SVC_EUSAGE);
    assert_string_equal(svc_last_error(), "expected earliest_finish or first_free, found fastest");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waits_for_gpu),     cmocka_unit_test(test_explicit_devices),
        cmocka_unit_test(test_memory),            cmocka_unit_test(test_move_improves),
        cmocka_unit_test(test_priority_first),    cmocka_unit_test(test_busy_and_unknown),
        cmocka_unit_test(test_first_free_is_slots), cmocka_unit_test(test_previous_kept),
        cmocka_unit_test(test_policy_names),
    };
    return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
