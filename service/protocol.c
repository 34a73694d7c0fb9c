/* Worker protocol parsing: line splitting and JSON events (jansson). */
#include "service/protocol.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    [SVC_EV_STARTED] = "started", [SVC_EV_PROGRESS] = "progress", [SVC_EV_EPOCH] = "epoch",
    [SVC_EV_DONE] = "done",       [SVC_EV_FAILED] = "failed",     [SVC_EV_INTERRUPTED] = "interrupted",
};
_Static_assert(sizeof kind_names / sizeof *kind_names == SVC_EV_INTERRUPTED + 1, "one name per event");

const char *svc_event_name(svc_event_kind k)
{
    return (unsigned)k <= SVC_EV_INTERRUPTED ? kind_names[k] : "?";
}

/* ---- field readers: each returns 0 or -1 with err set ---- */

typedef struct pctx {
    json_t *o;
    const char *event;
    char *err;
    size_t errlen;
} pctx;

static int bad(pctx *p, const char *key, const char *what)
{
    snprintf(p->err, p->errlen, "%s event: \"%s\" %s", p->event, key, what);
    return -1;
}

/* An integer; absent gives def unless required. */
static int get_int(pctx *p, const char *key, bool required, int64_t def, int64_t *out)
{
    json_t *v = json_object_get(p->o, key);
    if (!v) {
        if (required)
            return bad(p, key, "is missing");
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return bad(p, key, "is not an integer");
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* A number, or null (NAN); absent is NAN. */
static int get_num(pctx *p, const char *key, double *out)
{
    json_t *v = json_object_get(p->o, key);
    if (!v || json_is_null(v)) {
        *out = NAN;
        return 0;
    }
    if (!json_is_number(v))
        return bad(p, key, "is not a number");
    *out = json_number_value(v);
    return 0;
}

static int get_str(pctx *p, const char *key, bool required, char *out, size_t len)
{
    json_t *v = json_object_get(p->o, key);
    out[0] = '\0';
    if (!v || json_is_null(v))
        return required ? bad(p, key, "is missing") : 0;
    if (!json_is_string(v))
        return bad(p, key, "is not a string");
    if (json_string_length(v) >= len)
        return bad(p, key, "is too long");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return bad(p, key, "holds a NUL character");
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_bool(pctx *p, const char *key, bool def, bool *out)
{
    json_t *v = json_object_get(p->o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return bad(p, key, "is not a boolean");
    *out = json_is_true(v);
    return 0;
}

static int parse_started(pctx *p, svc_event *e)
{
    if (get_int(p, "pid", false, 0, &e->pid) || get_str(p, "device", true, e->device, sizeof e->device) ||
        get_int(p, "params", false, -1, &e->params) || get_int(p, "epochs", true, 0, &e->epochs) ||
        get_int(p, "steps_per_epoch", false, -1, &e->steps_per_epoch) ||
        get_int(p, "train_samples", false, -1, &e->train_samples) ||
        get_int(p, "test_samples", false, -1, &e->test_samples) ||
        get_int(p, "resumed_epoch", false, 0, &e->resumed_epoch) || get_int(p, "threads", false, -1, &e->threads))
        return -1;
    if (e->epochs < 1)
        return bad(p, "epochs", "must be >= 1");
    if (e->resumed_epoch < 0 || e->resumed_epoch > e->epochs)
        return bad(p, "resumed_epoch", "is outside [0, epochs]");
    return 0;
}

static int parse_progress(pctx *p, svc_event *e)
{
    if (get_int(p, "epoch", true, 0, &e->epoch) || get_int(p, "step", true, 0, &e->step) ||
        get_int(p, "steps", true, 0, &e->steps) || get_num(p, "loss", &e->loss) || get_num(p, "acc", &e->acc) ||
        get_num(p, "images_per_sec", &e->images_per_sec) || get_num(p, "elapsed", &e->elapsed))
        return -1;
    if (e->epoch < 1)
        return bad(p, "epoch", "must be >= 1");
    if (e->steps < 1 || e->step < 0 || e->step > e->steps)
        return bad(p, "step", "is outside [0, steps]");
    return 0;
}

static int parse_epoch(pctx *p, svc_event *e)
{
    if (get_int(p, "epoch", true, 0, &e->epoch) || get_num(p, "train_loss", &e->train_loss) ||
        get_num(p, "train_acc", &e->train_acc) || get_num(p, "test_loss", &e->test_loss) ||
        get_num(p, "test_acc", &e->test_acc) || get_num(p, "lr", &e->lr) || get_num(p, "seconds", &e->seconds) ||
        get_num(p, "samples_per_sec", &e->samples_per_sec) || get_int(p, "best_epoch", false, 0, &e->best_epoch) ||
        get_str(p, "checkpoint", false, e->checkpoint, sizeof e->checkpoint) ||
        get_bool(p, "replayed", false, &e->replayed))
        return -1;
    if (e->epoch < 1)
        return bad(p, "epoch", "must be >= 1");
    return 0;
}

static int parse_failed(pctx *p, svc_event *e)
{
    int64_t code;
    if (get_str(p, "error", true, e->error, sizeof e->error) || get_int(p, "code", false, 70, &code) ||
        get_bool(p, "retryable", false, &e->retryable))
        return -1;
    if (code < 0 || code > 255)
        return bad(p, "code", "is not an exit status");
    e->code = (int)code;
    if (!e->error[0])
        snprintf(e->error, sizeof e->error, "the worker failed without a message");
    return 0;
}

int svc_event_parse(const char *line, size_t len, svc_event *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, errlen, "not JSON (%s at column %d)", je.text, je.column);
        return -1;
    }
    int rc = -1;
    pctx p = {.o = o, .event = "?", .err = err, .errlen = errlen};
    json_t *ev = json_object_get(o, "event");
    if (!json_is_object(o)) {
        snprintf(err, errlen, "not a JSON object");
        goto out;
    }
    if (!json_is_string(ev)) {
        snprintf(err, errlen, "no \"event\" name");
        goto out;
    }
    const char *name = json_string_value(ev);
    p.event = name;
    int kind = -1;
    for (int k = 0; k <= SVC_EV_INTERRUPTED; k++)
        if (!strcmp(name, kind_names[k]))
            kind = k;
    if (kind < 0) {
        snprintf(err, errlen, "unknown event \"%.64s\"", name);
        goto out;
    }
    out->kind = (svc_event_kind)kind;
    out->loss = out->acc = out->images_per_sec = out->elapsed = NAN;
    out->train_loss = out->train_acc = out->test_loss = out->test_acc = NAN;
    out->lr = out->seconds = out->samples_per_sec = out->best_test_acc = NAN;
    out->epochs_done = -1;
    switch (out->kind) {
    case SVC_EV_STARTED: rc = parse_started(&p, out); break;
    case SVC_EV_PROGRESS: rc = parse_progress(&p, out); break;
    case SVC_EV_EPOCH: rc = parse_epoch(&p, out); break;
    case SVC_EV_DONE:
        rc = get_int(&p, "epochs", false, -1, &out->epochs_done) ||
                     get_num(&p, "best_test_acc", &out->best_test_acc) ||
                     get_int(&p, "best_epoch", false, 0, &out->best_epoch)
                 ? -1
                 : 0;
        break;
    case SVC_EV_FAILED: rc = parse_failed(&p, out); break;
    case SVC_EV_INTERRUPTED: rc = get_int(&p, "epochs", false, -1, &out->epochs_done) ? -1 : 0; break;
    }
out:
    json_decref(o);
    return rc;
}

/* ---- line buffer ---- */

void svc_linebuf_init(svc_linebuf *b, size_t max, bool truncate)
{
    memset(b, 0, sizeof *b);
    b->max = max ? max : SVC_EVENT_MAX_LINE;
    b->truncate = truncate;
}

void svc_linebuf_free(svc_linebuf *b)
{
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}

static int deliver(svc_linebuf *b, size_t n, svc_line_fn fn, void *ctx)
{
    /* the buffer always has room for the NUL (see reserve) */
    char saved = b->buf[n];
    b->buf[n] = '\0';
    int rc = fn(ctx, b->buf, n);
    b->buf[n] = saved;
    return rc;
}

static int reserve(svc_linebuf *b, size_t need)
{
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need + 1)
        cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb)
        return -2;
    b->buf = nb;
    b->cap = cap;
    return 0;
}

static void consume(svc_linebuf *b, size_t n)
{
    memmove(b->buf, b->buf + n, b->len - n);
    b->len -= n;
}

int svc_linebuf_feed(svc_linebuf *b, const char *data, size_t n, svc_line_fn fn, void *ctx)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        /* never hold more than max + 1 bytes of one line */
        size_t room = b->max - b->len;
        size_t copy = take < room ? take : room;
        if (reserve(b, b->len + copy) < 0)
            return -2;
        memcpy(b->buf + b->len, data, copy);
        b->len += copy;
        if (copy < take) {
            /* the line is longer than max */
            if (!b->truncate)
                return -1;
            int rc = deliver(b, b->len, fn, ctx);
            b->len = 0;
            if (rc)
                return rc;
            data += copy;
            n -= copy;
            continue;
        }
        data += take;
        n -= take;
        if (!nl)
            break;
        data++; /* the newline */
        n--;
        int rc = deliver(b, b->len, fn, ctx);
        consume(b, b->len);
        if (rc)
            return rc;
    }
    return 0;
}

int svc_linebuf_finish(svc_linebuf *b, svc_line_fn fn, void *ctx)
{
    if (b->len == 0)
        return 0;
    int rc = deliver(b, b->len, fn, ctx);
    b->len = 0;
    return rc;
}
