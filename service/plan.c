/* The placement planner (plan.h): list scheduling on the devices' slots,
 * simulated forward from now with the estimated durations.
 *
 * A device has k slots ("servers"), each free from some time on; a job
 * placed on a device takes the slot where it can start first and holds it
 * for its duration (no insertion into gaps: a plan is built in queue
 * order). On a GPU with a memory limit and more than one slot a job also
 * waits until its memory fits beside every job that overlaps it there. */
#include "service/plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/error.h"

#define DEFAULT_BUDGET 200000L
#define UNKNOWN_SECONDS 3600.0 /* a job of unknown cost, when no job has a known one there */
#define EPS 1e-9

const char *svc_policy_name(svc_policy p)
{
    return p == SVC_POLICY_FIRST_FREE ? "first_free" : "earliest_finish";
}

int svc_policy_parse(const char *s, svc_policy *out)
{
    if (s && !strcmp(s, "earliest_finish")) {
        *out = SVC_POLICY_EARLIEST_FINISH;
        return 0;
    }
    if (s && !strcmp(s, "first_free")) {
        *out = SVC_POLICY_FIRST_FREE;
        return 0;
    }
    return svc_error(SVC_EUSAGE, "expected earliest_finish or first_free, found %s", s ? s : "nothing");
}

void svc_plan_device_name(const svc_slots *s, int device, char *buf, size_t len)
{
    if (device >= 0 && device < s->n_gpus)
        snprintf(buf, len, "cuda:%d", s->gpu_ordinal[device]);
    else
        snprintf(buf, len, "cpu");
}

/* ---- device state during a simulation ---- */

typedef struct ivl {
    double a, b;  /* [a, b) */
    int64_t mem;
} ivl;

typedef struct dev_state {
    int k;           /* slots */
    double *free_at; /* k: when each slot is free */
    int64_t cap;     /* bytes for our jobs; < 0: not limited */
    bool track;      /* memory is checked over time (cap >= 0 and k > 1) */
    ivl *iv;         /* what holds memory there, when tracked */
    size_t n_iv;
} dev_state;

typedef struct plan_ctx {
    const svc_plan_input *in;
    const svc_slots *s;
    int nd;                /* devices: n_gpus + 1 */
    size_t n;              /* jobs */
    unsigned char *elig;   /* n x nd: the job may run there (request and memory) */
    double *dur;           /* n x nd: durations used (unknown ones replaced) */
    bool *unknown;         /* the job's duration is unknown on a device it may use */
    bool *never;           /* svc_slots_place says no device here can take it */
    bool *mem_excluded;    /* a GPU its request allows was left out for memory */
    int *cls;              /* priority class, 0 = highest */
    int n_cls;
    dev_state *base, *work; /* nd each: the state at time 0, and a scratch copy */
    long budget;
} plan_ctx;

typedef struct candidate {
    int *assign;     /* n: device per job, -1: none */
    double *start, *finish;
    bool *mem_wait;  /* a slot was free at 0 but memory made it wait */
    double *obj;     /* n_cls sums, then the makespan */
} candidate;

static bool may_run(const plan_ctx *c, size_t j, int d) { return c->elig[j * (size_t)c->nd + (size_t)d]; }
static double dur_of(const plan_ctx *c, size_t j, int d) { return c->dur[j * (size_t)c->nd + (size_t)d]; }

static void state_copy(const plan_ctx *c, dev_state *dst, const dev_state *src)
{
    for (int d = 0; d < c->nd; d++) {
        memcpy(dst[d].free_at, src[d].free_at, (size_t)src[d].k * sizeof *src[d].free_at);
        if (src[d].track)
            memcpy(dst[d].iv, src[d].iv, src[d].n_iv * sizeof *src[d].iv);
        dst[d].n_iv = src[d].n_iv;
    }
}

/* Peak memory held in [a, b) by the intervals there (the peak is at a or
 * at the start of one of them). */
static int64_t peak_memory(const dev_state *ds, double a, double b)
{
    int64_t peak = 0;
    for (size_t p = 0; p <= ds->n_iv; p++) {
        double t = p == ds->n_iv ? a : ds->iv[p].a;
        if (p < ds->n_iv && !(t > a && t < b))
            continue;
        int64_t sum = 0;
        for (size_t i = 0; i < ds->n_iv; i++)
            if (ds->iv[i].a <= t + EPS && ds->iv[i].b > t + EPS)
                sum += ds->iv[i].mem;
        if (sum > peak)
            peak = sum;
    }
    return peak;
}

/* The first end of an interval overlapping [a, b) after a; INFINITY if none. */
static double next_end(const dev_state *ds, double a, double b)
{
    double t = INFINITY;
    for (size_t i = 0; i < ds->n_iv; i++)
        if (ds->iv[i].a < b && ds->iv[i].b > a + EPS && ds->iv[i].b < t)
            t = ds->iv[i].b;
    return t;
}

/* When a job of duration `dur` needing `mem` bytes could start on the
 * device at the earliest, and on which slot; *mem_wait says whether memory
 * kept it from a slot that was free earlier. INFINITY if never. */
static double earliest(const dev_state *ds, double dur, int64_t mem, int *slot, bool *mem_wait)
{
    double best = INFINITY, first_free = INFINITY;
    *slot = -1;
    for (int j = 0; j < ds->k; j++) {
        double t = ds->free_at[j] > 0 ? ds->free_at[j] : 0;
        if (t < first_free)
            first_free = t;
        if (t >= best)
            continue;
        if (ds->track && mem > 0)
            while (t < best && peak_memory(ds, t, t + dur) + mem > ds->cap)
                t = next_end(ds, t, t + dur);
        if (t < best) {
            best = t;
            *slot = j;
        }
    }
    *mem_wait = best < INFINITY && best > first_free + EPS;
    return best;
}

static void occupy(dev_state *ds, int slot, double t, double dur, int64_t mem)
{
    ds->free_at[slot] = t + dur;
    if (ds->track && mem > 0)
        ds->iv[ds->n_iv++] = (ivl){t, t + dur, mem};
}

/* ---- building plans ---- */

typedef enum rule { RULE_EFT, RULE_FIRST_START } rule;

static int64_t job_mem(const plan_ctx *c, size_t j) { return c->in->jobs[j].memory > 0 ? c->in->jobs[j].memory : 0; }

/* Places job j on device d (or by `how` when d < 0) into the work state. */
static void place_job(const plan_ctx *c, candidate *x, size_t j, int d, rule how)
{
    int64_t mem = job_mem(c, j);
    int best_d = -1, best_slot = -1;
    double best_t = INFINITY, best_key = INFINITY;
    bool best_wait = false;
    for (int e = 0; e < c->nd; e++) {
        if (d >= 0 ? e != d : !may_run(c, j, e))
            continue;
        if (c->work[e].k <= 0)
            continue;
        int slot;
        bool mw;
        double du = dur_of(c, j, e);
        double t = earliest(&c->work[e], du, mem, &slot, &mw);
        if (t == INFINITY)
            continue;
        /* unknown jobs have no meaningful finish: they take the first start */
        double key = how == RULE_EFT && !c->unknown[j] ? t + du : t;
        if (key < best_key - EPS || (fabs(key - best_key) <= EPS && t < best_t - EPS)) {
            best_key = key;
            best_t = t;
            best_d = e;
            best_slot = slot;
            best_wait = mw;
        }
    }
    x->assign[j] = best_d;
    x->mem_wait[j] = best_wait;
    if (best_d < 0) {
        x->start[j] = x->finish[j] = NAN;
        return;
    }
    double du = dur_of(c, j, best_d);
    occupy(&c->work[best_d], best_slot, best_t, du, mem);
    x->start[j] = best_t;
    x->finish[j] = best_t + du;
}

static void score(const plan_ctx *c, candidate *x)
{
    for (int k = 0; k <= c->n_cls; k++)
        x->obj[k] = 0;
    for (size_t j = 0; j < c->n; j++) {
        if (x->assign[j] < 0)
            continue;
        x->obj[c->cls[j]] += x->finish[j];
        if (x->finish[j] > x->obj[c->n_cls])
            x->obj[c->n_cls] = x->finish[j];
    }
}

static bool better(const plan_ctx *c, const candidate *a, const candidate *b)
{
    for (int k = 0; k <= c->n_cls; k++) {
        double tol = EPS * (fabs(a->obj[k]) + fabs(b->obj[k])) + EPS;
        if (a->obj[k] < b->obj[k] - tol)
            return true;
        if (a->obj[k] > b->obj[k] + tol)
            return false;
    }
    return false;
}

/* Builds a plan in queue order: a job with fixed[j] >= 0 (fixed may be
 * NULL) on that device if it may run there, the others by `how`. Costs n
 * units of budget. */
static void build(plan_ctx *c, candidate *x, const int *fixed, rule how)
{
    state_copy(c, c->work, c->base);
    for (size_t j = 0; j < c->n; j++) {
        int d = -1;
        if (fixed && fixed[j] >= 0 && fixed[j] < c->nd && may_run(c, j, fixed[j]))
            d = fixed[j];
        bool placeable = false;
        for (int e = 0; e < c->nd && !placeable; e++)
            placeable = may_run(c, j, e);
        if (!placeable) {
            x->assign[j] = -1;
            x->start[j] = x->finish[j] = NAN;
            x->mem_wait[j] = false;
            continue;
        }
        place_job(c, x, j, d, how);
    }
    score(c, x);
    c->budget -= (long)c->n;
}

static void cand_free(candidate *x)
{
    free(x->assign);
    free(x->start);
    free(x->finish);
    free(x->mem_wait);
    free(x->obj);
}

static int cand_new(const plan_ctx *c, candidate *x)
{
    size_t n = c->n ? c->n : 1;
    x->assign = malloc(n * sizeof *x->assign);
    x->start = malloc(n * sizeof *x->start);
    x->finish = malloc(n * sizeof *x->finish);
    x->mem_wait = malloc(n * sizeof *x->mem_wait);
    x->obj = malloc((size_t)(c->n_cls + 1) * sizeof *x->obj);
    if (!x->assign || !x->start || !x->finish || !x->mem_wait || !x->obj) {
        cand_free(x);
        return SVC_ENOMEM;
    }
    return 0;
}

static void cand_copy(const plan_ctx *c, candidate *dst, const candidate *src)
{
    memcpy(dst->assign, src->assign, c->n * sizeof *dst->assign);
    memcpy(dst->start, src->start, c->n * sizeof *dst->start);
    memcpy(dst->finish, src->finish, c->n * sizeof *dst->finish);
    memcpy(dst->mem_wait, src->mem_wait, c->n * sizeof *dst->mem_wait);
    memcpy(dst->obj, src->obj, (size_t)(c->n_cls + 1) * sizeof *dst->obj);
}

/* ---- the inputs ---- */

static int state_new(const plan_ctx *c, dev_state **out)
{
    dev_state *v = calloc((size_t)c->nd, sizeof *v);
    if (!v)
        return SVC_ENOMEM;
    *out = v;
    const svc_slots *s = c->s;
    for (int d = 0; d < c->nd; d++) {
        dev_state *ds = &v[d];
        bool gpu = d < s->n_gpus;
        ds->k = gpu ? s->gpu_slots : s->cpu_slots;
        if (ds->k < 0)
            ds->k = 0;
        ds->cap = gpu && c->in->gpu_memory ? c->in->gpu_memory[d] : -1;
        ds->track = ds->cap >= 0 && ds->k > 1;
        ds->free_at = calloc((size_t)(ds->k ? ds->k : 1), sizeof *ds->free_at);
        if (!ds->free_at)
            return SVC_ENOMEM;
        if (ds->track) {
            ds->iv = malloc((c->in->n_busy + c->n + 1) * sizeof *ds->iv);
            if (!ds->iv)
                return SVC_ENOMEM;
        }
    }
    return 0;
}

static void state_free(const plan_ctx *c, dev_state *v)
{
    if (!v)
        return;
    for (int d = 0; d < c->nd; d++) {
        free(v[d].free_at);
        free(v[d].iv);
    }
    free(v);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The state at time 0: the runs in flight hold their slots (with more runs
 * than slots, a slot frees only when enough of them have ended: the k
 * latest ends are the slots' free times) and their memory. */
static int base_from_busy(plan_ctx *c)
{
    const svc_plan_input *in = c->in;
    double *ends = malloc((in->n_busy + 1) * sizeof *ends);
    if (!ends)
        return SVC_ENOMEM;
    for (int d = 0; d < c->nd; d++) {
        dev_state *ds = &c->base[d];
        size_t m = 0;
        for (size_t i = 0; i < in->n_busy; i++) {
            const svc_plan_busy *b = &in->busy[i];
            if (b->device != d)
                continue;
            double r = isfinite(b->remaining) && b->remaining > 0 ? b->remaining : 0;
            ends[m++] = r;
            if (ds->track && b->memory > 0)
                ds->iv[ds->n_iv++] = (ivl){-INFINITY, r, b->memory};
        }
        qsort(ends, m, sizeof *ends, cmp_double);
        for (int j = 0; j < ds->k; j++)
            ds->free_at[j] = 0;
        size_t take = m < (size_t)ds->k ? m : (size_t)ds->k;
        for (size_t j = 0; j < take; j++)
            ds->free_at[j] = ends[m - 1 - j];
    }
    free(ends);
    return 0;
}

/* May the request use device d at all (ignoring memory)? */
static bool request_allows(const svc_slots *s, const char *req, int d)
{
    bool cpu = d == s->n_gpus;
    if (!req || !*req || !strcmp(req, "auto"))
        return cpu ? s->cpu_slots > 0 : s->gpu_slots > 0;
    if (!strcmp(req, "cpu"))
        return cpu && s->cpu_slots > 0;
    if (!strcmp(req, "cuda"))
        return !cpu && s->gpu_slots > 0;
    if (!strncmp(req, "cuda:", 5) && !cpu) {
        char *end;
        long n = strtol(req + 5, &end, 10);
        return end != req + 5 && !*end && n == s->gpu_ordinal[d] && s->gpu_slots > 0;
    }
    return false;
}

static int cmp_i64_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x > y ? -1 : x < y;
}

static int setup(plan_ctx *c)
{
    const svc_plan_input *in = c->in;
    const svc_slots *s = c->s;
    size_t n = c->n ? c->n : 1, nd = (size_t)c->nd;
    c->elig = calloc(n * nd, 1);
    c->dur = calloc(n * nd, sizeof *c->dur);
    c->unknown = calloc(n, sizeof *c->unknown);
    c->never = calloc(n, sizeof *c->never);
    c->mem_excluded = calloc(n, sizeof *c->mem_excluded);
    c->cls = calloc(n, sizeof *c->cls);
    int64_t *prios = malloc(n * sizeof *prios);
    if (!c->elig || !c->dur || !c->unknown || !c->never || !c->mem_excluded || !c->cls || !prios) {
        free(prios);
        return SVC_ENOMEM;
    }
    /* priority classes, highest first */
    for (size_t j = 0; j < c->n; j++)
        prios[j] = in->jobs[j].priority;
    qsort(prios, c->n, sizeof *prios, cmp_i64_desc);
    size_t nu = 0;
    for (size_t j = 0; j < c->n; j++)
        if (j == 0 || prios[j] != prios[nu - 1])
            prios[nu++] = prios[j];
    c->n_cls = (int)(nu ? nu : 1);
    for (size_t j = 0; j < c->n; j++)
        for (size_t k = 0; k < nu; k++)
            if (prios[k] == in->jobs[j].priority)
                c->cls[j] = (int)k;
    free(prios);

    for (size_t j = 0; j < c->n; j++) {
        const svc_plan_job *job = &in->jobs[j];
        svc_placement p;
        char note[8];
        c->never[j] = svc_slots_place(s, job->requested, &p, note, sizeof note) == SVC_PLACE_NEVER;
        if (c->never[j])
            continue;
        for (int d = 0; d < c->nd; d++) {
            if (!request_allows(s, job->requested, d))
                continue;
            if (in->policy == SVC_POLICY_EARLIEST_FINISH && d < s->n_gpus && in->gpu_memory &&
                in->gpu_memory[d] >= 0 && job->memory > in->gpu_memory[d]) {
                c->mem_excluded[j] = true;
                continue;
            }
            c->elig[j * nd + (size_t)d] = 1;
            double t = job->seconds ? job->seconds[d] : NAN;
            if (!(isfinite(t) && t >= 0))
                c->unknown[j] = true;
        }
    }
    /* an unknown duration stands in as the median known one on that device */
    double *known = malloc(n * sizeof *known);
    if (!known)
        return SVC_ENOMEM;
    for (int d = 0; d < c->nd; d++) {
        size_t m = 0;
        for (size_t j = 0; j < c->n; j++) {
            double t = in->jobs[j].seconds ? in->jobs[j].seconds[d] : NAN;
            if (isfinite(t) && t >= 0)
                known[m++] = t;
        }
        qsort(known, m, sizeof *known, cmp_double);
        double stand_in = m ? known[m / 2] : UNKNOWN_SECONDS;
        for (size_t j = 0; j < c->n; j++) {
            double t = in->jobs[j].seconds ? in->jobs[j].seconds[d] : NAN;
            c->dur[j * nd + (size_t)d] = isfinite(t) && t >= 0 ? t : stand_in;
        }
    }
    free(known);
    return 0;
}

static void ctx_free(plan_ctx *c)
{
    free(c->elig);
    free(c->dur);
    free(c->unknown);
    free(c->never);
    free(c->mem_excluded);
    free(c->cls);
    state_free(c, c->base);
    state_free(c, c->work);
}

/* ---- the two policies ---- */

/* first_free: today's decisions (svc_slots_place, in queue order, taking
 * slots as it goes); the rest of the plan by first start. */
static int plan_first_free(plan_ctx *c, candidate *x, svc_plan_out *out)
{
    svc_slots now = *c->s;
    int *fixed = malloc((c->n ? c->n : 1) * sizeof *fixed);
    if (!fixed)
        return SVC_ENOMEM;
    for (size_t j = 0; j < c->n; j++) {
        svc_plan_out *o = &out[j];
        fixed[j] = -1;
        svc_place_result r =
            svc_slots_place(&now, c->in->jobs[j].requested, &o->place, o->note, sizeof o->note);
        if (r == SVC_PLACE_OK) {
            svc_slots_take(&now, &o->place);
            o->action = SVC_PLAN_START;
            fixed[j] = o->place.gpu >= 0 ? o->place.gpu : svc_plan_cpu(c->s);
        } else {
            o->action = r == SVC_PLACE_NEVER ? SVC_PLAN_NEVER : SVC_PLAN_WAIT;
        }
    }
    build(c, x, fixed, RULE_FIRST_START);
    free(fixed);
    return 0;
}

static int plan_earliest_finish(plan_ctx *c, candidate *best)
{
    candidate y = {0}, z = {0};
    int rc = cand_new(c, &y);
    if (rc || (rc = cand_new(c, &z))) {
        cand_free(&y);
        return rc;
    }
    /* the previous plan (where still possible), then the greedy and the first-free plans */
    bool have = false;
    if (c->in->previous) {
        build(c, best, c->in->previous, RULE_EFT);
        have = true;
    }
    build(c, &y, NULL, RULE_EFT);
    if (!have || better(c, &y, best)) {
        cand_copy(c, best, &y);
        have = true;
    }
    build(c, &y, NULL, RULE_FIRST_START);
    if (better(c, &y, best))
        cand_copy(c, best, &y);

    /* moves: one job to another device, the jobs after it replanned greedily */
    for (size_t j = 0; j < c->n && c->budget > 0; j++) {
        if (c->unknown[j] || best->assign[j] < 0)
            continue;
        for (int d = 0; d < c->nd && c->budget > 0; d++) {
            if (d == best->assign[j] || !may_run(c, j, d))
                continue;
            memcpy(z.assign, best->assign, c->n * sizeof *z.assign);
            z.assign[j] = d;
            for (size_t k = j + 1; k < c->n; k++)
                z.assign[k] = -1;
            build(c, &y, z.assign, RULE_EFT);
            if (better(c, &y, best))
                cand_copy(c, best, &y);
        }
    }
    cand_free(&y);
    cand_free(&z);
    return 0;
}

/* ---- notes ---- */

static void fmt_gib(char *buf, size_t len, int64_t bytes)
{
    snprintf(buf, len, "%.1f GiB", (double)bytes / (1024.0 * 1024.0 * 1024.0));
}

/* The most memory any GPU the request allows offers, or -1. */
static int64_t best_gpu_memory(const plan_ctx *c, size_t j, int *which)
{
    int64_t m = -1;
    *which = -1;
    for (int d = 0; d < c->s->n_gpus; d++)
        if (request_allows(c->s, c->in->jobs[j].requested, d) && c->in->gpu_memory &&
            c->in->gpu_memory[d] > m) {
            m = c->in->gpu_memory[d];
            *which = d;
        }
    return m;
}

static void ef_note(const plan_ctx *c, const candidate *x, size_t j, svc_plan_out *o)
{
    const svc_plan_job *job = &c->in->jobs[j];
    char dev[32], need[32], have[32];
    int d = x->assign[j];
    fmt_gib(need, sizeof need, job->memory);
    if (d < 0) {
        int w;
        int64_t m = best_gpu_memory(c, j, &w);
        fmt_gib(have, sizeof have, m > 0 ? m : 0);
        svc_plan_device_name(c->s, w, dev, sizeof dev);
        snprintf(o->note, sizeof o->note, "waiting: needs about %s of GPU memory, more than %s's %s", need,
                 w >= 0 ? dev : "any GPU", have);
        return;
    }
    svc_plan_device_name(c->s, d, dev, sizeof dev);
    bool cpu = d == svc_plan_cpu(c->s);
    if (x->mem_wait[j]) {
        fmt_gib(have, sizeof have, c->in->gpu_memory ? c->in->gpu_memory[d] : 0);
        snprintf(o->note, sizeof o->note, "waiting for memory on %s (needs %s of the %s usable)", dev, need, have);
    } else if (cpu && c->mem_excluded[j]) {
        snprintf(o->note, sizeof o->note, "waiting for a CPU slot (needs about %s, more than a GPU has free)",
                 need);
    } else if (cpu) {
        snprintf(o->note, sizeof o->note, "waiting for a CPU slot");
    } else {
        snprintf(o->note, sizeof o->note, "waiting for %s", dev);
    }
}

/* ---- the plan ---- */

int svc_plan_make(const svc_plan_input *in, svc_plan_out *out)
{
    plan_ctx c = {.in = in, .s = in->slots, .nd = in->slots->n_gpus + 1, .n = in->n_jobs,
                  .budget = in->budget > 0 ? in->budget : DEFAULT_BUDGET};
    candidate best = {0};
    int rc = setup(&c);
    if (!rc)
        rc = state_new(&c, &c.base);
    if (!rc)
        rc = state_new(&c, &c.work);
    if (!rc)
        rc = base_from_busy(&c);
    if (!rc)
        rc = cand_new(&c, &best);
    if (rc) {
        ctx_free(&c);
        return svc_error(SVC_ENOMEM, "out of memory planning %zu runs", in->n_jobs);
    }
    memset(out, 0, c.n * sizeof *out);
    if (in->policy == SVC_POLICY_FIRST_FREE)
        rc = plan_first_free(&c, &best, out);
    else
        rc = plan_earliest_finish(&c, &best);
    if (rc) {
        cand_free(&best);
        ctx_free(&c);
        return svc_error(SVC_ENOMEM, "out of memory planning %zu runs", in->n_jobs);
    }

    /* starts now must find a free slot in the table (they do when the busy
     * runs given match it; this keeps a mismatch from overfilling a device) */
    svc_slots now = *c.s;
    for (size_t j = 0; j < c.n; j++) {
        svc_plan_out *o = &out[j];
        const svc_plan_job *job = &in->jobs[j];
        int d = best.assign[j];
        o->device = d;
        o->start = d >= 0 ? best.start[j] : NAN;
        o->finish = d >= 0 && !c.unknown[j] ? best.finish[j] : NAN;
        o->cpu_seconds = NAN;
        int cpu = svc_plan_cpu(c.s);
        if (request_allows(c.s, job->requested, cpu) && job->seconds && isfinite(job->seconds[cpu]))
            o->cpu_seconds = job->seconds[cpu];
        if (in->policy == SVC_POLICY_FIRST_FREE)
            continue; /* the actions and notes are svc_slots_place's */
        if (c.never[j]) {
            o->action = SVC_PLAN_NEVER;
            o->device = -1;
            o->start = o->finish = NAN;
            svc_slots_place(c.s, job->requested, &o->place, o->note, sizeof o->note);
            continue;
        }
        bool slot_free = d >= 0 && (d == cpu ? now.cpu_used < now.cpu_slots : now.gpu_used[d] < now.gpu_slots);
        if (d >= 0 && o->start <= EPS && slot_free) {
            o->action = SVC_PLAN_START;
            o->place.gpu = d == cpu ? -1 : d;
            o->place.ordinal = d == cpu ? -1 : c.s->gpu_ordinal[d];
            svc_plan_device_name(c.s, d, o->place.device, sizeof o->place.device);
            o->start = 0;
            svc_slots_take(&now, &o->place);
            continue;
        }
        o->action = SVC_PLAN_WAIT;
        o->place.gpu = o->place.ordinal = -1;
        ef_note(&c, &best, j, o);
    }
    cand_free(&best);
    ctx_free(&c);
    return 0;
}
