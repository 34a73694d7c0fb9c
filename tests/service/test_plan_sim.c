/* The placement planner (service/plan.c) replayed on traces of runs with
 * known per-device durations: an event-driven simulation in simulated time
 * (nothing here reads a clock) calls svc_plan_make at every arrival and
 * every end, starts what it says to start, and measures the makespan and
 * the mean completion time (finish - arrival) of each policy against lower
 * bounds:
 *   makespan >= max(the latest arrival-plus-fastest-duration of a run,
 *                   the first arrival + the fractional optimum of total
 *                   work over total speed: the LP relaxation, exact for
 *                   the two device classes (GPU slots, CPU slots) used here)
 *   mean completion >= the mean of each run's fastest duration.
 * The estimates the planner gets are the true durations, so the comparison
 * is of the policies, not of the estimates (tests/service/test_serve_placement.py
 * checks the estimates). first_free knows nothing of GPU memory: a run it
 * starts where its memory does not fit fails after FAIL_SECONDS (out of
 * memory) and is queued again, as the service would retry it.
 *
 * Asserted: earliest_finish is never worse than first_free (makespan and
 * mean completion) on any trace, and the seed comparison on one GPU ends
 * within 10 % of its lower bound. The table goes to stdout. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "service/plan.h"
#include "service/slots.h"

#define MAX_DEV (SVC_MAX_GPUS + 1)
#define FAIL_SECONDS 60.0
#define GIB (1024ll * 1024 * 1024)

typedef struct sim_job {
    double arrival;
    int64_t priority;
    const char *req;
    int64_t memory;
    double gpu_s, cpu_s;  /* true duration on any GPU, on the CPU (INFINITY: cannot) */
    /* state */
    bool started, done, failing;
    int device;
    double start, end;
} sim_job;

typedef struct sim_cfg {
    const char *name;
    int n_gpus, gpu_slots, cpu_slots;
    int64_t gpu_memory; /* per GPU; 0: not limited */
} sim_cfg;

typedef struct sim_result {
    double makespan, mean_completion;
    long plans;
} sim_result;

/* ---- a deterministic generator (splitmix64) ---- */

static uint64_t rng_state;
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(void) { return (double)(rng_next() >> 11) / 9007199254740992.0; }
static int rng_int(int n) { return (int)(rng_unit() * n); }

/* ---- the simulation ---- */

static double duration_on(const sim_cfg *c, const sim_job *j, int d)
{
    return d == c->n_gpus ? j->cpu_s : j->gpu_s;
}

static int cmp_queue(const void *a, const void *b, void *ctx)
{
    const sim_job *v = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (v[x].priority != v[y].priority)
        return v[x].priority > v[y].priority ? -1 : 1;
    if (v[x].arrival != v[y].arrival)
        return v[x].arrival < v[y].arrival ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* qsort has no context: a small insertion sort (queues are short enough). */
static void sort_queue(size_t *q, size_t n, const sim_job *v)
{
    for (size_t i = 1; i < n; i++) {
        size_t x = q[i], k = i;
        while (k > 0 && cmp_queue(&q[k - 1], &x, (void *)v) > 0) {
            q[k] = q[k - 1];
            k--;
        }
        q[k] = x;
    }
}

static void simulate(const sim_cfg *c, sim_job *jobs, size_t n, svc_policy pol, long budget, sim_result *res)
{
    svc_device_filter f;
    svc_devices_parse("auto", &f);
    svc_slots s;
    char warn[256];
    svc_slots_init(&s, c->n_gpus, &f, c->cpu_slots, c->gpu_slots, warn, sizeof warn);
    int nd = c->n_gpus + 1;
    for (size_t i = 0; i < n; i++) {
        jobs[i].started = jobs[i].done = jobs[i].failing = false;
        jobs[i].device = -1;
    }
    size_t *queue = malloc(n * sizeof *queue);
    svc_plan_job *pj = malloc(n * sizeof *pj);
    svc_plan_out *out = malloc(n * sizeof *out);
    svc_plan_busy *busy = malloc(n * sizeof *busy);
    double *secs = malloc(n * (size_t)nd * sizeof *secs);
    int *prev_dev = malloc(n * sizeof *prev_dev), *prev = malloc(n * sizeof *prev);
    int64_t gmem[SVC_MAX_GPUS];
    assert_non_null(queue && pj && out && busy && secs && prev_dev && prev);
    for (int g = 0; g < c->n_gpus; g++)
        gmem[g] = c->gpu_memory > 0 ? c->gpu_memory : -1;
    for (size_t i = 0; i < n; i++) {
        prev_dev[i] = -1;
        for (int d = 0; d < nd; d++)
            secs[i * (size_t)nd + (size_t)d] = duration_on(c, &jobs[i], d);
    }
    double now = 0;
    size_t done = 0;
    res->plans = 0;
    while (done < n) {
        /* ends */
        for (size_t i = 0; i < n; i++) {
            sim_job *j = &jobs[i];
            if (j->started && !j->done && j->end <= now) {
                svc_placement p = {.gpu = j->device < c->n_gpus ? j->device : -1,
                                   .ordinal = j->device < c->n_gpus ? j->device : -1};
                svc_slots_release(&s, &p);
                if (j->failing) { /* out of memory: queued again */
                    j->started = j->failing = false;
                } else {
                    j->done = true;
                    done++;
                }
            }
        }
        if (done == n)
            break;
        /* the queue and the busy devices now */
        size_t nq = 0, nb = 0;
        for (size_t i = 0; i < n; i++) {
            sim_job *j = &jobs[i];
            if (!j->started && j->arrival <= now)
                queue[nq++] = i;
            else if (j->started && !j->done)
                busy[nb++] = (svc_plan_busy){.device = j->device, .remaining = j->end - now,
                                             .memory = j->failing ? 0 : j->memory};
        }
        sort_queue(queue, nq, jobs);
        for (size_t q = 0; q < nq; q++) {
            size_t i = queue[q];
            pj[q] = (svc_plan_job){.id = (int64_t)i, .requested = jobs[i].req, .priority = jobs[i].priority,
                                   .memory = jobs[i].memory, .seconds = &secs[i * (size_t)nd]};
            prev[q] = prev_dev[i];
        }
        if (nq) {
            svc_plan_input in = {.policy = pol, .slots = &s, .gpu_memory = c->gpu_memory > 0 ? gmem : NULL,
                                 .busy = busy, .n_busy = nb, .jobs = pj, .n_jobs = nq, .previous = prev,
                                 .budget = budget};
            assert_int_equal(svc_plan_make(&in, out), 0);
            res->plans++;
            for (size_t q = 0; q < nq; q++) {
                sim_job *j = &jobs[queue[q]];
                prev_dev[queue[q]] = out[q].device;
                assert_int_not_equal(out[q].action, SVC_PLAN_NEVER);
                if (out[q].action != SVC_PLAN_START)
                    continue;
                int d = out[q].place.gpu >= 0 ? out[q].place.gpu : c->n_gpus;
                /* first_free does not look at memory: an attempt that does not fit fails */
                int64_t used = 0;
                for (size_t b = 0; b < n; b++)
                    if (jobs[b].started && !jobs[b].done && !jobs[b].failing && jobs[b].device == d)
                        used += jobs[b].memory;
                svc_slots_take(&s, &out[q].place);
                j->started = true;
                j->device = d;
                j->failing = d < c->n_gpus && c->gpu_memory > 0 && used + j->memory > c->gpu_memory;
                assert_false(j->failing && pol == SVC_POLICY_EARLIEST_FINISH);
                if (!j->failing)
                    j->start = now;
                j->end = now + (j->failing ? FAIL_SECONDS : duration_on(c, j, d));
            }
        }
        /* the next event */
        double next = INFINITY;
        for (size_t i = 0; i < n; i++) {
            const sim_job *j = &jobs[i];
            if (j->started && !j->done && j->end < next)
                next = j->end;
            if (!j->started && j->arrival > now && j->arrival < next)
                next = j->arrival;
        }
        if (next == INFINITY)
            fail_msg("%s/%s: %zu runs can never start", c->name, svc_policy_name(pol), n - done);
        now = next;
    }
    double sum = 0, mk = 0;
    for (size_t i = 0; i < n; i++) {
        sum += jobs[i].end - jobs[i].arrival;
        if (jobs[i].end > mk)
            mk = jobs[i].end;
    }
    res->makespan = mk;
    res->mean_completion = sum / (double)n;
    free(queue);
    free(pj);
    free(out);
    free(busy);
    free(secs);
    free(prev_dev);
    free(prev);
}

/* ---- lower bounds ---- */

typedef struct lp_item {
    double g, c; /* durations on a GPU slot and a CPU slot */
} lp_item;

static int cmp_ratio(const void *a, const void *b)
{
    const lp_item *x = a, *y = b;
    /* most worth putting on a GPU first: the smallest g / c */
    double rx = isinf(x->c) ? -1 : x->g / x->c, ry = isinf(y->c) ? -1 : y->g / y->c;
    if (isinf(x->g))
        rx = INFINITY;
    if (isinf(y->g))
        ry = INFINITY;
    return rx < ry ? -1 : rx > ry;
}

/* Is a fractional assignment with every slot busy at most T possible? Fill
 * the GPU slots with the best-suited work first; the rest to the CPU. */
static bool lp_feasible(const lp_item *v, size_t n, double mg, double mc, double T)
{
    double gcap = mg * T, cload = 0;
    for (size_t i = 0; i < n; i++) {
        double x = 0; /* fraction on a GPU */
        if (!isinf(v[i].g) && mg > 0)
            x = isinf(v[i].c) || mc <= 0 ? 1.0 : fmin(1.0, gcap / v[i].g);
        if (x > 0) {
            if (x * v[i].g > gcap + 1e-9 * T)
                return false;
            gcap -= x * v[i].g;
        }
        if (x < 1.0) {
            if (isinf(v[i].c) || mc <= 0)
                return false;
            cload += (1.0 - x) * v[i].c;
        }
    }
    return cload <= mc * T + 1e-9 * T;
}

static double lower_bound_makespan(const sim_cfg *c, const sim_job *jobs, size_t n)
{
    lp_item *v = malloc(n * sizeof *v);
    assert_non_null(v);
    double first = INFINITY, longest = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        v[i].g = c->n_gpus ? jobs[i].gpu_s : INFINITY;
        v[i].c = c->cpu_slots ? jobs[i].cpu_s : INFINITY;
        double m = fmin(v[i].g, v[i].c);
        longest = fmax(longest, jobs[i].arrival + m);
        first = fmin(first, jobs[i].arrival);
        total += isinf(v[i].c) ? v[i].g : v[i].c;
    }
    qsort(v, n, sizeof *v, cmp_ratio);
    double mg = (double)c->n_gpus * c->gpu_slots, mc = c->cpu_slots, lo = 0, hi = total + 1;
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi);
        if (lp_feasible(v, n, mg, mc, mid))
            hi = mid;
        else
            lo = mid;
    }
    free(v);
    return fmax(longest, first + hi);
}

static double lower_bound_mean(const sim_cfg *c, const sim_job *jobs, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += fmin(c->n_gpus ? jobs[i].gpu_s : INFINITY, c->cpu_slots ? jobs[i].cpu_s : INFINITY);
    return sum / (double)n;
}

/* ---- traces ---- */

/* The seed's six models: images per second on one GPU and on this 2-core
 * CPU (seed-reference.md), CIFAR-10 (50,000 training images; evaluating the
 * 10,000 test images costs about a third of training on them), 600 epochs. */
static const struct {
    const char *name;
    double gpu_ips, cpu_ips;
    int64_t memory;
} seed[6] = {
    {"normal_cnn", 15900, 1360, 3 * GIB},   {"residual_cnn", 19900, 3850, 3 * GIB},
    {"mlp_mixer_S4", 7950, 540, 2 * GIB},   {"mlp_mixer_S2", 2740, 61, 8 * GIB},
    {"mlp_mixer_B4", 4300, 250, 3 * GIB},   {"mlp_mixer_B2", 1410, 27, 12 * GIB},
};

static double seed_seconds(double ips, int64_t epochs) { return (double)epochs * (50000.0 + 10000.0 / 3.0) / ips; }

static size_t seed_trace(sim_job *v)
{
    for (int i = 0; i < 6; i++)
        v[i] = (sim_job){.arrival = 0, .req = "auto", .memory = seed[i].memory,
                         .gpu_s = seed_seconds(seed[i].gpu_ips, 600), .cpu_s = seed_seconds(seed[i].cpu_ips, 600)};
    return 6;
}

/* Mixed runs: a seed model or a small MLP (where a GPU helps only 2-5x),
 * 5 to 200 epochs on a fraction of the data; `arrive_over` spreads the
 * arrivals over about that many seconds (0: all at once); with `prios` a
 * third get priority 1 or 2; with `devices` (the GPU count) some small
 * runs ask for cpu and a tenth for cuda or cuda:N. */
static size_t mixed_trace(sim_job *v, size_t n, uint64_t seed_no, double arrive_over, bool prios, int devices)
{
    rng_state = seed_no;
    static const char *gpu_reqs[] = {"cuda", "cuda:0", "cuda:1", "cuda:2", "cuda:3"};
    double t = 0;
    for (size_t i = 0; i < n; i++) {
        sim_job *j = &v[i];
        memset(j, 0, sizeof *j);
        int64_t epochs = 5 + rng_int(196);
        double frac = 0.1 + 0.9 * rng_unit();
        int kind = rng_int(9);
        if (kind < 6) {
            j->gpu_s = frac * seed_seconds(seed[kind].gpu_ips, epochs);
            j->cpu_s = frac * seed_seconds(seed[kind].cpu_ips, epochs);
            j->memory = seed[kind].memory;
        } else {
            double cpu_ips = 20000 + 40000 * rng_unit(), ratio = 2 + 3 * rng_unit();
            j->cpu_s = frac * seed_seconds(cpu_ips, epochs);
            j->gpu_s = j->cpu_s / ratio;
            j->memory = GIB;
        }
        j->arrival = t;
        t += -log(1.0 - rng_unit()) * arrive_over / (double)n; /* Poisson arrivals */
        j->req = "auto";
        if (devices) {
            int r = rng_int(10);
            if (r == 0 && kind >= 6) /* nobody asks the CPU for a mixer */
                j->req = "cpu";
            else if (r == 1)
                j->req = gpu_reqs[rng_int(devices > 1 ? 5 : 2)];
        }
        if (!strcmp(j->req, "cpu"))
            j->gpu_s = INFINITY; /* only for the bounds: it never runs there */
        else if (strcmp(j->req, "auto"))
            j->cpu_s = INFINITY;
        if (prios && rng_int(3) == 0)
            j->priority = 1 + rng_int(2);
    }
    return n;
}

/* The same runs arriving over `load` times the makespan bound of their
 * all-at-once version: the queue builds up where load < 1. */
static size_t loaded_trace(const sim_cfg *c, sim_job *v, size_t n, uint64_t seed_no, double load, bool prios,
                           int devices)
{
    mixed_trace(v, n, seed_no, 0, prios, devices);
    double lb = lower_bound_makespan(c, v, n);
    return mixed_trace(v, n, seed_no, load * lb, prios, devices);
}

/* Runs that share one GPU when their memory fits: 1 to 14 GiB on 24 GiB. */
static size_t memory_trace(sim_job *v, size_t n)
{
    rng_state = 77;
    for (size_t i = 0; i < n; i++) {
        sim_job *j = &v[i];
        memset(j, 0, sizeof *j);
        j->req = i % 4 == 0 ? "cuda" : "auto";
        j->memory = (1 + rng_int(14)) * GIB;
        j->gpu_s = 300 + 3000 * rng_unit();
        j->cpu_s = j->gpu_s * (3 + 20 * rng_unit());
        if (strcmp(j->req, "auto"))
            j->cpu_s = INFINITY;
        j->arrival = 30.0 * (double)i;
    }
    return n;
}

/* ---- the table ---- */

static void fmt_time(char *buf, size_t len, double s)
{
    if (s >= 86400)
        snprintf(buf, len, "%.2f d", s / 86400);
    else if (s >= 3600)
        snprintf(buf, len, "%.2f h", s / 3600);
    else
        snprintf(buf, len, "%.1f min", s / 60);
}

typedef struct outcome {
    sim_result ef, ff;
    double lb_mk, lb_mean;
} outcome;

static outcome run_trace(const sim_cfg *c, sim_job *jobs, size_t n, long budget)
{
    outcome o;
    o.lb_mk = lower_bound_makespan(c, jobs, n);
    o.lb_mean = lower_bound_mean(c, jobs, n);
    simulate(c, jobs, n, SVC_POLICY_FIRST_FREE, budget, &o.ff);
    simulate(c, jobs, n, SVC_POLICY_EARLIEST_FINISH, budget, &o.ef);
    const sim_result *r[2] = {&o.ff, &o.ef};
    const char *pn[2] = {"first_free", "earliest_finish"};
    for (int k = 0; k < 2; k++) {
        char mk[32], mean[32];
        fmt_time(mk, sizeof mk, r[k]->makespan);
        fmt_time(mean, sizeof mean, r[k]->mean_completion);
        printf("| %-34s | %4zu | %-15s | %10s | %5.3f | %10s | %6.3f |\n", c->name, n, pn[k], mk,
               r[k]->makespan / o.lb_mk, mean, r[k]->mean_completion / o.lb_mean);
    }
    char lb[32], lbm[32];
    fmt_time(lb, sizeof lb, o.lb_mk);
    fmt_time(lbm, sizeof lbm, o.lb_mean);
    printf("| %-34s | %4zu | %-15s | %10s | 1     | %10s | 1      |\n", c->name, n, "lower bound", lb, lbm);
    fflush(stdout);
    /* never worse than first_free */
    if (o.ef.makespan > o.ff.makespan * (1 + 1e-9))
        fail_msg("%s: earliest_finish makespan %.1f s > first_free %.1f s", c->name, o.ef.makespan, o.ff.makespan);
    if (o.ef.mean_completion > o.ff.mean_completion * (1 + 1e-9))
        fail_msg("%s: earliest_finish mean completion %.1f s > first_free %.1f s", c->name, o.ef.mean_completion,
                 o.ff.mean_completion);
    /* and never below the bounds (a broken simulation or bound would show here) */
    assert_true(o.ef.makespan >= o.lb_mk * (1 - 1e-9) && o.ff.makespan >= o.lb_mk * (1 - 1e-9));
    assert_true(o.ef.mean_completion >= o.lb_mean * (1 - 1e-9));
    return o;
}

static void header(void)
{
    printf("\n| trace | runs | policy | makespan | / bound | mean completion | / bound |\n");
    printf("| --- | ---: | --- | ---: | ---: | ---: | ---: |\n");
}

/* ---- tests ---- */

static void test_seed_one_gpu(void **state)
{
    (void)state;
    sim_job v[6];
    header();
    sim_cfg c = {"seed comparison, 1 GPU + 1 CPU slot", 1, 1, 1, 0};
    outcome o = run_trace(&c, v, seed_trace(v), 0);
    if (o.ef.makespan > 1.10 * o.lb_mk)
        fail_msg("the seed comparison on one GPU ends at %.0f s, more than 10 %% over its bound %.0f s",
                 o.ef.makespan, o.lb_mk);
    /* mlp_mixer_B2 (5 CPU-days) waited for the GPU */
    assert_int_equal(v[5].device, 0);
    sim_cfg c4 = {"seed comparison, 4 GPUs + 2 CPU slots", 4, 1, 2, 0};
    run_trace(&c4, v, seed_trace(v), 0);
    sim_cfg c0 = {"seed comparison, 1 GPU, no CPU slot", 1, 1, 0, 0};
    run_trace(&c0, v, seed_trace(v), 0);
}

static void test_mixed_small(void **state)
{
    (void)state;
    sim_job v[200];
    header();
    sim_cfg cpu = {"40 mixed at once, 0 GPUs + 2 CPU slots", 0, 1, 2, 0};
    run_trace(&cpu, v, mixed_trace(v, 40, 1, 0, false, 0), 0);
    sim_cfg one = {"40 mixed at once, 1 GPU + 1 CPU slot", 1, 1, 1, 0};
    run_trace(&one, v, mixed_trace(v, 40, 2, 0, false, 1), 0);
    sim_cfg one2 = {"60 mixed arriving, 1 GPU + 2 CPU slots", 1, 1, 2, 0};
    run_trace(&one2, v, loaded_trace(&one2, v, 60, 3, 0.8, true, 1), 0);
    sim_cfg four = {"200 mixed arriving, 4 GPUs + 2 CPU slots", 4, 1, 2, 0};
    run_trace(&four, v, loaded_trace(&four, v, 200, 4, 0.8, true, 4), 0);
    sim_cfg four1 = {"200 mixed at once, 4 GPUs + 1 CPU slot", 4, 1, 1, 0};
    run_trace(&four1, v, mixed_trace(v, 200, 5, 0, false, 4), 0);
}

static void test_memory(void **state)
{
    (void)state;
    sim_job v[60];
    header();
    sim_cfg c = {"60 by memory, 1 GPU (24 GiB, 4 slots) + 1 CPU", 1, 4, 1, 24 * GIB};
    run_trace(&c, v, memory_trace(v, 60), 0);
}

static void test_thousand(void **state)
{
    (void)state;
    static sim_job v[1000];
    header();
    sim_cfg c = {"1000 mixed arriving, 4 GPUs + 2 CPU", 4, 1, 2, 0};
    run_trace(&c, v, loaded_trace(&c, v, 1000, 6, 0.8, true, 4), 0);
    sim_cfg c1 = {"1000 mixed arriving, 1 GPU + 2 CPU", 1, 1, 2, 0};
    run_trace(&c1, v, loaded_trace(&c1, v, 1000, 7, 0.8, true, 1), 0);
    sim_cfg c2 = {"1000 mixed at once, 1 GPU + 1 CPU", 1, 1, 1, 0};
    run_trace(&c2, v, mixed_trace(v, 1000, 8, 0, true, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_one_gpu),
        cmocka_unit_test(test_mixed_small),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_thousand),
    };
    return cmocka_run_group_tests_name("plan_sim", tests, NULL, NULL);
}
