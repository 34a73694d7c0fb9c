/* The worker protocol's events: one member table per event, read by the
 * parser (service side) and the formatter (worker side). */
#include "service/protocol.h"

#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/error.h"

typedef enum mtype { M_INT, M_NUM, M_STR, M_BOOL } mtype;

typedef struct member {
    const char *key;
    mtype type;
    size_t off;      /* of the field in svc_event */
    size_t size;     /* M_STR: the buffer's size */
    bool required;
    bool omit_empty; /* written only when not "" / not false */
    int64_t def;     /* M_INT: the value when absent */
} member;

#define INT(k, f, req, d) {k, M_INT, offsetof(svc_event, f), 0, req, false, d}
#define NUM(k, f) {k, M_NUM, offsetof(svc_event, f), 0, false, false, 0}
#define STR(k, f, req, omit) {k, M_STR, offsetof(svc_event, f), sizeof(((svc_event *)0)->f), req, omit, 0}
#define BOOL(k, f, omit) {k, M_BOOL, offsetof(svc_event, f), 0, false, omit, 0}

static const member started[] = {
    INT("pid", pid, false, 0),
    STR("device", device, true, false),
    INT("params", params, false, -1),
    INT("epochs", epochs, true, 0),
    INT("steps_per_epoch", steps_per_epoch, false, -1),
    INT("train_samples", train_samples, false, -1),
    INT("test_samples", test_samples, false, -1),
    INT("resumed_epoch", resumed_epoch, false, 0),
    INT("threads", threads, false, -1),
};
static const member progress[] = {
    INT("epoch", epoch, true, 0), INT("step", step, true, 0),   INT("steps", steps, true, 0),
    NUM("loss", loss),            NUM("acc", acc),              NUM("images_per_sec", images_per_sec),
    NUM("elapsed", elapsed),
};
static const member epoch[] = {
    INT("epoch", epoch, true, 0),
    NUM("train_loss", train_loss),
    NUM("train_acc", train_acc),
    NUM("test_loss", test_loss),
    NUM("test_acc", test_acc),
    NUM("lr", lr),
    NUM("seconds", seconds),
    NUM("samples_per_sec", samples_per_sec),
    INT("best_epoch", best_epoch, false, 0),
    STR("checkpoint", checkpoint, false, true),
    BOOL("replayed", replayed, true),
};
static const member done[] = {
    INT("epochs", epochs_done, false, -1),
    NUM("best_test_acc", best_test_acc),
    INT("best_epoch", best_epoch, false, 0),
};
static const member failed[] = {
    STR("error", error, true, false),
    INT("code", code, false, 70),
    BOOL("retryable", retryable, false),
};
static const member interrupted[] = {
    INT("epochs", epochs_done, false, -1),
};

#define KIND(k, name, m) [k] = {name, m, sizeof m / sizeof *m}
static const struct {
    const char *name;
    const member *m;
    size_t n;
} kinds[] = {
    KIND(SVC_EV_STARTED, "started", started), KIND(SVC_EV_PROGRESS, "progress", progress),
    KIND(SVC_EV_EPOCH, "epoch", epoch),       KIND(SVC_EV_DONE, "done", done),
    KIND(SVC_EV_FAILED, "failed", failed),    KIND(SVC_EV_INTERRUPTED, "interrupted", interrupted),
};
_Static_assert(sizeof kinds / sizeof *kinds == SVC_EV_INTERRUPTED + 1, "one member table per event");

const char *svc_event_name(svc_event_kind k)
{
    return (unsigned)k <= SVC_EV_INTERRUPTED ? kinds[k].name : "?";
}

void svc_event_init(svc_event *e, svc_event_kind k)
{
    memset(e, 0, sizeof *e);
    e->kind = k;
    for (size_t ki = 0; ki < sizeof kinds / sizeof *kinds; ki++)
        for (size_t i = 0; i < kinds[ki].n; i++) {
            const member *m = &kinds[ki].m[i];
            char *p = (char *)e + m->off;
            if (m->type == M_NUM)
                *(double *)p = NAN;
            else if (m->type == M_INT)
                *(int64_t *)p = m->def;
        }
}

/* ---- reading ---- */

static int bad(const char *event, const char *key, const char *what)
{
    return svc_error(SVC_EPROTO, "%s event: \"%s\" %s", event, key, what);
}

static int read_member(json_t *o, const char *event, const member *m, svc_event *e)
{
    json_t *v = json_object_get(o, m->key);
    char *p = (char *)e + m->off;
    if (!v || (json_is_null(v) && m->type != M_INT && m->type != M_BOOL))
        return m->required ? bad(event, m->key, "is missing") : 0; /* the default stays */
    switch (m->type) {
    case M_INT:
        if (!json_is_integer(v))
            return bad(event, m->key, "is not an integer");
        *(int64_t *)p = (int64_t)json_integer_value(v);
        return 0;
    case M_NUM:
        if (!json_is_number(v))
            return bad(event, m->key, "is not a number");
        *(double *)p = json_number_value(v);
        return 0;
    case M_STR:
        if (!json_is_string(v))
            return bad(event, m->key, "is not a string");
        if (json_string_length(v) >= m->size)
            return bad(event, m->key, "is too long");
        if (strlen(json_string_value(v)) != json_string_length(v))
            return bad(event, m->key, "holds a NUL character");
        memcpy(p, json_string_value(v), json_string_length(v) + 1);
        return 0;
    case M_BOOL:
        if (!json_is_boolean(v))
            return bad(event, m->key, "is not a boolean");
        *(bool *)p = json_is_true(v);
        return 0;
    }
    return 0;
}

/* What the tables cannot say: ranges and relations between members. */
static int check(svc_event *e)
{
    const char *ev = kinds[e->kind].name;
    switch (e->kind) {
    case SVC_EV_STARTED:
        if (e->epochs < 1)
            return bad(ev, "epochs", "must be >= 1");
        if (e->resumed_epoch < 0 || e->resumed_epoch > e->epochs)
            return bad(ev, "resumed_epoch", "is outside [0, epochs]");
        return 0;
    case SVC_EV_PROGRESS:
        if (e->epoch < 1)
            return bad(ev, "epoch", "must be >= 1");
        if (e->steps < 1 || e->step < 0 || e->step > e->steps)
            return bad(ev, "step", "is outside [0, steps]");
        return 0;
    case SVC_EV_EPOCH: return e->epoch < 1 ? bad(ev, "epoch", "must be >= 1") : 0;
    case SVC_EV_FAILED:
        if (e->code < 0 || e->code > 255)
            return bad(ev, "code", "is not an exit status");
        if (!e->error[0])
            snprintf(e->error, sizeof e->error, "the worker failed without a message");
        return 0;
    case SVC_EV_DONE:
    case SVC_EV_INTERRUPTED: return 0;
    }
    return 0;
}

int svc_event_parse(const char *line, size_t len, svc_event *out)
{
    svc_event_init(out, SVC_EV_STARTED);
    /* jansson may stop at a NUL byte and accept what came before it, while
     * the history keeps lines as C strings: a line with one is not a line */
    const char *nul = memchr(line, '\0', len);
    if (nul)
        return svc_error(SVC_EPROTO, "a NUL byte at column %zu", (size_t)(nul - line) + 1);
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return svc_error(SVC_EPROTO, "not JSON (%s at column %d)", je.text, je.column);
    int rc = 0;
    json_t *ev = json_object_get(o, "event");
    int kind = -1;
    if (!json_is_object(o)) {
        rc = svc_error(SVC_EPROTO, "not a JSON object");
    } else if (!json_is_string(ev)) {
        rc = svc_error(SVC_EPROTO, "no \"event\" name");
    } else {
        for (int k = 0; k <= SVC_EV_INTERRUPTED; k++)
            if (!strcmp(json_string_value(ev), kinds[k].name))
                kind = k;
        if (kind < 0)
            rc = svc_error(SVC_EPROTO, "unknown event \"%.64s\"", json_string_value(ev));
    }
    if (rc == 0) {
        out->kind = (svc_event_kind)kind;
        for (size_t i = 0; i < kinds[kind].n && rc == 0; i++)
            rc = read_member(o, kinds[kind].name, &kinds[kind].m[i], out);
        if (rc == 0)
            rc = check(out);
    }
    json_decref(o);
    return rc;
}

/* ---- writing ---- */

static json_t *member_value(const member *m, const svc_event *e)
{
    const char *p = (const char *)e + m->off;
    switch (m->type) {
    case M_INT: return json_integer((json_int_t) * (const int64_t *)p);
    case M_NUM: {
        double v = *(const double *)p;
        return isfinite(v) ? json_real(v) : json_null(); /* JSON has no NaN: a diverged loss is null */
    }
    case M_STR: return m->omit_empty && !*p ? NULL : json_string(p);
    case M_BOOL: return m->omit_empty && !*(const bool *)p ? NULL : json_boolean(*(const bool *)p);
    }
    return NULL;
}

char *svc_event_format(const svc_event *e)
{
    if ((unsigned)e->kind > SVC_EV_INTERRUPTED)
        return NULL;
    json_t *o = json_object();
    bool ok = o && json_object_set_new(o, "event", json_string(kinds[e->kind].name)) == 0;
    for (size_t i = 0; ok && i < kinds[e->kind].n; i++) {
        const member *m = &kinds[e->kind].m[i];
        json_t *v = member_value(m, e);
        bool omitted = !v && m->omit_empty;
        ok = omitted || (v && json_object_set_new(o, m->key, v) == 0);
    }
    char *line = ok ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    return line;
}

int svc_event_write(FILE *f, const svc_event *e)
{
    char *line = svc_event_format(e);
    if (!line)
        return svc_error(SVC_ENOMEM, "out of memory formatting a %s event", svc_event_name(e->kind));
    int bad_write = fputs(line, f) < 0 || fputc('\n', f) == EOF || fflush(f) != 0;
    free(line);
    return bad_write ? svc_error(SVC_EIO, "cannot write a %s event", svc_event_name(e->kind)) : 0;
}
