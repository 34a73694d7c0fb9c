/* Which implementation runs each operation shape on the CPU: the backend's
 * own kernels (OpenBLAS, the direct convolutions) or oneDNN.
 *
 * The two give different bits, so the choice is part of a run's identity:
 * - a shape's first use measures both (best of several runs, wall clock)
 *   and keeps the faster;
 * - the choice is appended to this machine's kernel file (one line per
 *   machine signature and shape, first writer wins, under flock), so every
 *   later run on the machine - with the same thread count, instruction
 *   sets and oneDNN - takes the same kernels without measuring: the same
 *   spec gives the same bits however loaded the machine was when it first
 *   measured;
 * - the choices a run used are written into its checkpoints
 *   (cpu_choices_record) and a resumed run takes them back first
 *   (cpu_choices_restore), so it continues bit for bit even on a machine
 *   whose file says otherwise.
 * EPOCHD_KERNELS=own|onednn forces one side where it can serve the shape;
 * EPOCHD_KERNEL_FILE names the file ("off": none), by default
 * $XDG_CACHE_HOME/epochd/cpu-kernels.tsv (~/.cache when unset). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/cpu/cpu_dnnl.h"
#include "engine/cpu/cpu_internal.h"

#define CHOICE_KEY_MAX 120
#define CHOICE_ROUNDS 3

typedef struct cpu_choice {
    uint64_t hash;
    char key[CHOICE_KEY_MAX];
    cpu_impl impl;
    char source; /* 'm' measured here, 'f' the machine's file, 'r' a restored record, 'e' forced, 'n' no oneDNN */
    double own_ms, dnnl_ms;
} cpu_choice;

struct cpu_choices {
    cpu_choice *v;
    int n, cap;
    int force;          /* 0: measure; else the forced cpu_impl */
    char file[1024];    /* "" : no kernel file */
    char sig[384];      /* this machine, as the file knows it */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void default_file(char *out, size_t len)
{
    const char *env = getenv("EPOCHD_KERNEL_FILE");
    out[0] = '\0';
    if (env) {
        if (*env && strcmp(env, "off"))
            snprintf(out, len, "%s", env);
        return;
    }
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[900];
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/epochd", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.cache/epochd", home);
    else
        return;
    /* create the folder (and ~/.cache) if missing; no file when that fails */
    char parent[900];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (mkdir(parent, 0755) < 0 && errno != EEXIST)
            return;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return;
    snprintf(out, len, "%s/cpu-kernels.tsv", dir);
}

struct cpu_choices *cpu_choices_new(const eng_backend *b)
{
    struct cpu_choices *c = calloc(1, sizeof *c);
    if (!c) {
        eng_error(ENG_ENOMEM, "out of memory for the kernel choices");
        return NULL;
    }
    const char *force = getenv("EPOCHD_KERNELS");
    if (force && !strcmp(force, "own"))
        c->force = CPU_IMPL_OWN;
    else if (force && !strcmp(force, "onednn"))
        c->force = CPU_IMPL_DNNL;
    default_file(c->file, sizeof c->file);
    /* the model name alone can be the same for two generations of a CPU;
     * '|' separates the signature's fields and tabs the file's columns */
    cpu_ident id;
    cpu_ident_read(&id);
    for (char *p = id.name; *p; p++)
        if (*p == '\t' || *p == '|')
            *p = ' ';
    snprintf(c->sig, sizeof c->sig, "cpu=%s (family %s model %s)|isa=%s|onednn=%s|openblas=%s|threads=%d", id.name,
             id.family, id.model, cpu_isa_name(), cpu_dnnl_isa_name(), eng_cpu_blas_core(), cpu_threads(b));
    return c;
}

void cpu_choices_free(struct cpu_choices *c)
{
    if (!c)
        return;
    free(c->v);
    free(c);
}

static cpu_choice *find(struct cpu_choices *c, const char *key, uint64_t h)
{
    for (int i = 0; i < c->n; i++)
        if (c->v[i].hash == h && !strcmp(c->v[i].key, key))
            return &c->v[i];
    return NULL;
}

static int put(struct cpu_choices *c, const char *key, cpu_impl impl, char source, cpu_choice **out)
{
    uint64_t h = fnv1a(key);
    cpu_choice *e = find(c, key, h);
    if (!e) {
        if (c->n == c->cap) {
            int cap = c->cap ? 2 * c->cap : 64;
            cpu_choice *v = realloc(c->v, (size_t)cap * sizeof *v);
            if (!v)
                return eng_error(ENG_ENOMEM, "out of memory for the kernel choices");
            c->v = v;
            c->cap = cap;
        }
        e = &c->v[c->n++];
        memset(e, 0, sizeof *e);
        e->hash = h;
        snprintf(e->key, sizeof e->key, "%s", key);
    }
    e->impl = impl;
    e->source = source;
    if (out)
        *out = e;
    return 0;
}

static const char *impl_name(cpu_impl i) { return i == CPU_IMPL_DNNL ? "onednn" : "own"; }

static int impl_parse(const char *s, size_t len, cpu_impl *out)
{
    if (len == 3 && !strncmp(s, "own", 3))
        *out = CPU_IMPL_OWN;
    else if (len == 6 && !strncmp(s, "onednn", 6))
        *out = CPU_IMPL_DNNL;
    else
        return -1;
    return 0;
}

/* ---- the machine's kernel file: "sig \t key \t impl \t own_ms \t onednn_ms" ---- */

/* The file's choice for key under this signature (0 found, 1 not). fd is
 * open and locked by the caller. */
static int file_lookup(struct cpu_choices *c, int fd, const char *key, cpu_impl *impl)
{
    FILE *f = fdopen(dup(fd), "r");
    if (!f)
        return 1;
    rewind(f);
    char line[1024];
    const size_t sl = strlen(c->sig), kl = strlen(key);
    int found = 1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, c->sig, sl) || line[sl] != '\t' || strncmp(line + sl + 1, key, kl) ||
            line[sl + 1 + kl] != '\t')
            continue;
        const char *v = line + sl + 1 + kl + 1;
        if (impl_parse(v, strcspn(v, "\t\n"), impl) == 0) {
            found = 0; /* the first line for a key wins */
            break;
        }
    }
    fclose(f);
    return found;
}

static int file_open(struct cpu_choices *c, int lock)
{
    if (!c->file[0])
        return -1;
    int fd = open(c->file, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (flock(fd, lock) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void file_close(int fd)
{
    flock(fd, LOCK_UN);
    close(fd);
}

/* ---- choosing ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Times both sides, alternating, after a warm-up each (oneDNN's warm-up
 * creates its plan), and compares their best times: at least
 * CHOICE_ROUNDS rounds, more (up to CHOICE_ROUNDS_MAX) while a side has
 * run for less than CHOICE_MIN_S in all - so that on a busy machine a
 * short operation still gets some rounds nothing else interrupted.
 * oneDNN refusing the shape chooses our own (returns 1). */
#define CHOICE_ROUNDS_MAX 15
#define CHOICE_MIN_S 0.03
#define CHOICE_MAX_S 1.0
static int measure(eng_backend *b, cpu_trial_fn run, void *args, cpu_impl *impl, double *own_ms, double *dnnl_ms)
{
    *own_ms = *dnnl_ms = 0.0;
    int rc = run(b, args, CPU_IMPL_DNNL);
    if (rc == ENG_ENOTSUP) {
        eng_clear_error();
        *impl = CPU_IMPL_OWN;
        return 1;
    }
    if (rc < 0)
        return rc;
    if ((rc = run(b, args, CPU_IMPL_OWN)) < 0)
        return rc;
    double best[2] = {1e30, 1e30}, total[2] = {0.0, 0.0};
    const double start = now();
    for (int r = 0; r < CHOICE_ROUNDS_MAX; r++) {
        if (r >= CHOICE_ROUNDS &&
            ((total[0] >= CHOICE_MIN_S && total[1] >= CHOICE_MIN_S) || now() - start > CHOICE_MAX_S))
            break;
        for (int side = 0; side < 2; side++) {
            double t = now();
            if ((rc = run(b, args, side ? CPU_IMPL_DNNL : CPU_IMPL_OWN)) < 0)
                return rc;
            t = now() - t;
            total[side] += t;
            if (t < best[side])
                best[side] = t;
        }
    }
    *own_ms = best[0] * 1e3;
    *dnnl_ms = best[1] * 1e3;
    *impl = best[1] < best[0] ? CPU_IMPL_DNNL : CPU_IMPL_OWN;
    return 0;
}

int cpu_choose(eng_backend *b, const char *key, cpu_trial_fn run, void *args, cpu_impl *out)
{
    struct cpu_choices *c = ((cpu_state *)b->impl)->choices;
    const uint64_t h = fnv1a(key);
    cpu_choice *e = find(c, key, h);
    if (e) {
        *out = e->impl;
        return 0;
    }
    if (!((cpu_state *)b->impl)->dnnl) {
        *out = CPU_IMPL_OWN;
        return put(c, key, CPU_IMPL_OWN, 'n', NULL);
    }
    if (c->force) {
        *out = (cpu_impl)c->force;
        return put(c, key, *out, 'e', NULL);
    }
    cpu_impl impl;
    int fd = file_open(c, LOCK_SH);
    if (fd >= 0) {
        int miss = file_lookup(c, fd, key, &impl);
        file_close(fd);
        if (!miss) {
            *out = impl;
            return put(c, key, impl, 'f', NULL);
        }
    }
    double own_ms, dnnl_ms;
    int rc = measure(b, run, args, &impl, &own_ms, &dnnl_ms);
    if (rc < 0)
        return rc;
    const bool refused = rc == 1;
    fd = file_open(c, LOCK_EX);
    if (fd >= 0) {
        cpu_impl theirs;
        if (file_lookup(c, fd, key, &theirs) == 0) {
            impl = theirs; /* another process measured it meanwhile: its choice holds */
        } else {
            char line[1024];
            int len = snprintf(line, sizeof line, "%s\t%s\t%s\t%.4f\t%.4f\n", c->sig, key, impl_name(impl), own_ms,
                               dnnl_ms);
            if (len > 0 && (size_t)len < sizeof line && write(fd, line, (size_t)len) != len) {
                /* a kernel file that cannot grow only costs a measurement next time */
            }
        }
        file_close(fd);
    }
    cpu_choice *ne;
    rc = put(c, key, impl, refused ? 'n' : 'm', &ne);
    if (rc < 0)
        return rc;
    ne->own_ms = own_ms;
    ne->dnnl_ms = dnnl_ms;
    *out = impl;
    return 0;
}

/* ---- records for checkpoints: "key=impl;key=impl" ---- */

int cpu_choices_record(eng_backend *b, char **text)
{
    struct cpu_choices *c = ((cpu_state *)b->impl)->choices;
    *text = NULL;
    size_t len = 1;
    for (int i = 0; i < c->n; i++)
        len += strlen(c->v[i].key) + 8;
    char *s = malloc(len), *p = s;
    if (!s)
        return eng_error(ENG_ENOMEM, "out of memory recording the kernel choices");
    *p = '\0';
    for (int i = 0; i < c->n; i++)
        p += sprintf(p, "%s%s=%s", i ? ";" : "", c->v[i].key, impl_name(c->v[i].impl));
    *text = s;
    return 0;
}

int cpu_choices_restore(eng_backend *b, const char *text)
{
    struct cpu_choices *c = ((cpu_state *)b->impl)->choices;
    const char *p = text;
    while (p && *p) {
        const char *end = strchr(p, ';'), *eq;
        size_t n = end ? (size_t)(end - p) : strlen(p);
        eq = memchr(p, '=', n);
        cpu_impl impl;
        if (!eq || (size_t)(eq - p) >= CHOICE_KEY_MAX || eq == p ||
            impl_parse(eq + 1, n - (size_t)(eq + 1 - p), &impl) < 0)
            return eng_error(ENG_EFORMAT, "kernel record: cannot read '%.*s' (expected key=own or key=onednn)",
                             (int)(n > 80 ? 80 : n), p);
        char key[CHOICE_KEY_MAX];
        memcpy(key, p, (size_t)(eq - p));
        key[eq - p] = '\0';
        int rc = put(c, key, impl, 'r', NULL);
        if (rc < 0)
            return rc;
        p = end ? end + 1 : NULL;
    }
    return 0;
}
