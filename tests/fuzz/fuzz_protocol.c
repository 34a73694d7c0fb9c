/* Fuzz target: the worker protocol as the service reads it - a worker's
 * stdout split into lines (service/linebuf.c) and each line parsed as an
 * event (service/protocol.c).
 *
 * The first input byte sets the chunk size the bytes arrive in (a pipe
 * delivers any split); the rest is the stream. Properties: the lines do not
 * depend on how the stream was split; no line is longer than the limit; an
 * event that parses is formatted back into one line that parses to the same
 * event (the worker's writer and the service's reader agree on everything
 * the reader accepts). Built as a fuzzer with -Dfuzz=true (scripts/fuzz
 * protocol); otherwise tests/fuzz/replay.c runs it over
 * tests/fuzz/corpus/protocol. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/linebuf.h"
#include "service/protocol.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_protocol: property failed: %s (line %d)\n", #cond, __LINE__);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_LINE 4096 /* small, so that the fuzzer reaches the limit */

typedef struct lines {
    char *all; /* every line, each followed by '\n' */
    size_t len, cap;
    size_t n;
} lines;

static int collect(void *ctx, const char *line, size_t len)
{
    lines *l = ctx;
    CHECK(len <= MAX_LINE && line[len] == '\0');
    if (l->len + len + 1 > l->cap) {
        size_t cap = (l->len + len + 1) * 2;
        char *a = realloc(l->all, cap);
        CHECK(a);
        l->all = a;
        l->cap = cap;
    }
    memcpy(l->all + l->len, line, len);
    l->len += len;
    l->all[l->len++] = '\n';
    l->n++;
    return 0;
}

/* Splits the stream in chunks of `chunk` bytes; the feed's result. */
static int split(const uint8_t *data, size_t size, size_t chunk, lines *out)
{
    svc_linebuf b;
    svc_linebuf_init(&b, MAX_LINE, false);
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        rc = svc_linebuf_feed(&b, (const char *)data + off, n, collect, out);
    }
    svc_linebuf_free(&b);
    return rc;
}

static void same_number(double a, double b)
{
    CHECK((isnan(a) && isnan(b)) || a == b);
}

static void same_event(const svc_event *a, const svc_event *b)
{
    CHECK(a->kind == b->kind);
    CHECK(a->pid == b->pid && a->params == b->params && a->epochs == b->epochs);
    CHECK(a->steps_per_epoch == b->steps_per_epoch && a->train_samples == b->train_samples);
    CHECK(a->test_samples == b->test_samples && a->resumed_epoch == b->resumed_epoch && a->threads == b->threads);
    CHECK(a->epoch == b->epoch && a->step == b->step && a->steps == b->steps);
    CHECK(a->best_epoch == b->best_epoch && a->epochs_done == b->epochs_done && a->code == b->code);
    CHECK(a->replayed == b->replayed && a->retryable == b->retryable);
    CHECK(!strcmp(a->device, b->device) && !strcmp(a->checkpoint, b->checkpoint) && !strcmp(a->error, b->error));
    const double *x[] = {&a->loss, &a->acc, &a->images_per_sec, &a->elapsed, &a->train_loss, &a->train_acc,
                         &a->test_loss, &a->test_acc, &a->lr, &a->seconds, &a->samples_per_sec, &a->best_test_acc};
    const double *y[] = {&b->loss, &b->acc, &b->images_per_sec, &b->elapsed, &b->train_loss, &b->train_acc,
                         &b->test_loss, &b->test_acc, &b->lr, &b->seconds, &b->samples_per_sec, &b->best_test_acc};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        same_number(*x[i], *y[i]);
}

static void check_event(const char *line, size_t len)
{
    svc_event e, again;
    if (svc_event_parse(line, len, &e) < 0)
        return;
    char *text = svc_event_format(&e);
    CHECK(text);
    CHECK(!strchr(text, '\n'));
    CHECK(svc_event_parse(text, strlen(text), &again) == 0);
    /* the writer prints every member of the kind; infinities become null (NaN) */
    const double *v[] = {&e.loss, &e.acc, &e.images_per_sec, &e.elapsed, &e.train_loss, &e.train_acc,
                         &e.test_loss, &e.test_acc, &e.lr, &e.seconds, &e.samples_per_sec, &e.best_test_acc};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (!isfinite(*v[i]))
            *(double *)v[i] = NAN;
    same_event(&e, &again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = 1 + data[0] % 64;
    data++;
    size--;
    lines whole = {0}, pieces = {0};
    int rc_whole = split(data, size, size ? size : 1, &whole);
    int rc_pieces = split(data, size, chunk, &pieces);
    /* the same lines, whatever the split, up to where a line broke the limit */
    CHECK((rc_whole == 0) == (rc_pieces == 0));
    CHECK(whole.n == pieces.n && whole.len == pieces.len);
    CHECK(whole.len == 0 || !memcmp(whole.all, pieces.all, whole.len));
    for (size_t off = 0; off < whole.len;) {
        char *nl = memchr(whole.all + off, '\n', whole.len - off);
        CHECK(nl);
        *nl = '\0';
        check_event(whole.all + off, (size_t)(nl - (whole.all + off)));
        off = (size_t)(nl - whole.all) + 1;
    }
    free(whole.all);
    free(pieces.all);
    return 0;
}
