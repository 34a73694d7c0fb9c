/* Device slots and placement of runs on them. */
#include "service/slots.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/error.h"

int svc_devices_parse(const char *s, svc_device_filter *f)
{
    memset(f, 0, sizeof *f);
    if (!s || !*s || !strcmp(s, "auto")) {
        f->all = true;
        return 0;
    }
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && *p == ' ') {
            p++;
            n--;
        }
        while (n && p[n - 1] == ' ')
            n--;
        if (n == 3 && !strncmp(p, "cpu", 3)) {
            /* the CPU is always there (cpu_slots decides) */
        } else {
            char num[16];
            char *end;
            if (n == 0 || n >= sizeof num) {
                return svc_error(SVC_EUSAGE, "bad device list '%s' (expected auto, cpu or GPU numbers like 0,1)", s);
            }
            memcpy(num, p, n);
            num[n] = '\0';
            errno = 0;
            long v = strtol(num, &end, 10);
            if (errno || *end || v < 0 || v >= SVC_MAX_GPUS) {
                return svc_error(SVC_EUSAGE, "bad GPU number '%s' in '%s' (expected 0 to %d)", num, s, SVC_MAX_GPUS - 1);
            }
            for (int i = 0; i < f->n; i++)
                if (f->ordinals[i] == (int)v) {
                    return svc_error(SVC_EUSAGE, "GPU %ld listed twice in '%s'", v, s);
                }
            f->ordinals[f->n++] = (int)v;
        }
        if (!comma)
            break;
        p = comma + 1;
        if (!*p) {
            return svc_error(SVC_EUSAGE, "bad device list '%s' (ends with a comma)", s);
        }
    }
    return 0;
}

static void select_gpus(svc_slots *s, const svc_device_filter *f, char *warn, size_t warnlen)
{
    if (warn && warnlen)
        warn[0] = '\0';
    int old_n = s->n_gpus, old_ord[SVC_MAX_GPUS], old_used[SVC_MAX_GPUS];
    memcpy(old_ord, s->gpu_ordinal, sizeof old_ord);
    memcpy(old_used, s->gpu_used, sizeof old_used);
    s->n_gpus = 0;
    if (f->all) {
        for (int i = 0; i < s->n_host_gpus && i < SVC_MAX_GPUS; i++)
            s->gpu_ordinal[s->n_gpus++] = i;
    } else {
        for (int i = 0; i < f->n; i++) {
            if (f->ordinals[i] < s->n_host_gpus) {
                s->gpu_ordinal[s->n_gpus++] = f->ordinals[i];
            } else if (warn && warnlen) {
                size_t l = strlen(warn);
                snprintf(warn + l, warnlen - l, "%scuda:%d is listed in devices but this host has %d GPU%s",
                         l ? "; " : "", f->ordinals[i], s->n_host_gpus, s->n_host_gpus == 1 ? "" : "s");
            }
        }
    }
    /* slots in use stay counted on the GPU they are on (even one no longer listed) */
    for (int i = 0; i < s->n_gpus; i++) {
        s->gpu_used[i] = 0;
        for (int j = 0; j < old_n; j++)
            if (old_ord[j] == s->gpu_ordinal[i])
                s->gpu_used[i] = old_used[j];
    }
}

void svc_slots_init(svc_slots *s, int n_host_gpus, const svc_device_filter *f, int cpu_slots, int gpu_slots,
                    char *warn, size_t warnlen)
{
    memset(s, 0, sizeof *s);
    s->n_host_gpus = n_host_gpus < 0 ? 0 : n_host_gpus > SVC_MAX_GPUS ? SVC_MAX_GPUS : n_host_gpus;
    s->cpu_slots = cpu_slots;
    s->gpu_slots = gpu_slots;
    select_gpus(s, f, warn, warnlen);
}

void svc_slots_reconfigure(svc_slots *s, const svc_device_filter *f, int cpu_slots, int gpu_slots, char *warn,
                           size_t warnlen)
{
    s->cpu_slots = cpu_slots;
    s->gpu_slots = gpu_slots;
    select_gpus(s, f, warn, warnlen);
}

static int find_gpu(const svc_slots *s, int ordinal)
{
    for (int i = 0; i < s->n_gpus; i++)
        if (s->gpu_ordinal[i] == ordinal)
            return i;
    return -1;
}

/* The least loaded GPU with a free slot, or -1. */
static int free_gpu(const svc_slots *s)
{
    int best = -1;
    for (int i = 0; i < s->n_gpus; i++)
        if (s->gpu_used[i] < s->gpu_slots && (best < 0 || s->gpu_used[i] < s->gpu_used[best]))
            best = i;
    return best;
}

static void on_gpu(const svc_slots *s, int i, svc_placement *p)
{
    p->gpu = i;
    p->ordinal = s->gpu_ordinal[i];
    snprintf(p->device, sizeof p->device, "cuda:%d", p->ordinal);
}

static void on_cpu(svc_placement *p)
{
    p->gpu = -1;
    p->ordinal = -1;
    snprintf(p->device, sizeof p->device, "cpu");
}

svc_place_result svc_slots_place(const svc_slots *s, const char *req, svc_placement *p, char *note, size_t notelen)
{
    memset(p, 0, sizeof *p);
    p->gpu = p->ordinal = -1;
    note[0] = '\0';
    bool gpus_usable = s->n_gpus > 0 && s->gpu_slots > 0;
    if (!req || !*req || !strcmp(req, "auto")) {
        int g = free_gpu(s);
        if (g >= 0) {
            on_gpu(s, g, p);
            return SVC_PLACE_OK;
        }
        if (s->cpu_used < s->cpu_slots) {
            on_cpu(p);
            return SVC_PLACE_OK;
        }
        if (!gpus_usable && s->cpu_slots <= 0) {
            snprintf(note, notelen, "waiting: no device takes runs (cpu_slots is 0 and no GPU is usable)");
            return SVC_PLACE_NEVER;
        }
        snprintf(note, notelen, "waiting for a free device slot");
        return SVC_PLACE_BUSY;
    }
    if (!strcmp(req, "cpu")) {
        if (s->cpu_slots <= 0) {
            snprintf(note, notelen, "waiting: the CPU takes no runs (cpu_slots is 0)");
            return SVC_PLACE_NEVER;
        }
        if (s->cpu_used < s->cpu_slots) {
            on_cpu(p);
            return SVC_PLACE_OK;
        }
        snprintf(note, notelen, "waiting for a free CPU slot");
        return SVC_PLACE_BUSY;
    }
    if (!strcmp(req, "cuda")) {
        if (s->n_host_gpus == 0) {
            snprintf(note, notelen, "waiting: no cuda device on this host");
            return SVC_PLACE_NEVER;
        }
        if (!gpus_usable) {
            snprintf(note, notelen, "waiting: no cuda device is enabled (see devices and gpu_slots)");
            return SVC_PLACE_NEVER;
        }
        int g = free_gpu(s);
        if (g >= 0) {
            on_gpu(s, g, p);
            return SVC_PLACE_OK;
        }
        snprintf(note, notelen, "waiting for a free GPU slot");
        return SVC_PLACE_BUSY;
    }
    if (!strncmp(req, "cuda:", 5)) {
        char *end;
        errno = 0;
        long n = strtol(req + 5, &end, 10);
        if (!errno && !*end && end != req + 5 && n >= 0 && n < 1000000) {
            if (n >= s->n_host_gpus) {
                snprintf(note, notelen, "waiting: no cuda device %ld on this host", n);
                return SVC_PLACE_NEVER;
            }
            int g = find_gpu(s, (int)n);
            if (g < 0 || s->gpu_slots <= 0) {
                snprintf(note, notelen, "waiting: cuda:%ld is not enabled (see devices and gpu_slots)", n);
                return SVC_PLACE_NEVER;
            }
            if (s->gpu_used[g] < s->gpu_slots) {
                on_gpu(s, g, p);
                return SVC_PLACE_OK;
            }
            snprintf(note, notelen, "waiting for a free slot on cuda:%ld", n);
            return SVC_PLACE_BUSY;
        }
    }
    snprintf(note, notelen, "waiting: unknown device '%.40s'", req);
    return SVC_PLACE_NEVER;
}

void svc_slots_take(svc_slots *s, const svc_placement *p)
{
    if (p->gpu < 0) {
        s->cpu_used++;
        return;
    }
    int g = find_gpu(s, p->ordinal);
    if (g >= 0)
        s->gpu_used[g]++;
}

void svc_slots_release(svc_slots *s, const svc_placement *p)
{
    if (p->gpu < 0) {
        if (s->cpu_used > 0)
            s->cpu_used--;
        return;
    }
    int g = find_gpu(s, p->ordinal);
    if (g >= 0 && s->gpu_used[g] > 0)
        s->gpu_used[g]--;
}
