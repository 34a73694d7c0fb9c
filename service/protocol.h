/* The worker protocol as the service reads it: JSON lines from a worker's
 * stdout, split by a bounded line buffer and parsed into events
 * (docs/worker-protocol.md). Pure functions: no I/O, no globals. */
#ifndef SVC_PROTOCOL_H
#define SVC_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest stdout line the service accepts from a worker. */
#define SVC_EVENT_MAX_LINE (64u * 1024u)

typedef enum svc_event_kind {
    SVC_EV_STARTED = 0,
    SVC_EV_PROGRESS,
    SVC_EV_EPOCH,
    SVC_EV_DONE,
    SVC_EV_FAILED,
    SVC_EV_INTERRUPTED,
} svc_event_kind;

/* One event. Only the fields of its kind are set; numbers a worker sent as
 * null (a diverged loss) or left out are NAN, counts left out are -1. */
typedef struct svc_event {
    svc_event_kind kind;
    /* started */
    int64_t pid;
    char device[64];
    int64_t params, epochs, steps_per_epoch, train_samples, test_samples, resumed_epoch, threads;
    /* progress (epoch also for epoch) */
    int64_t epoch, step, steps;
    double loss, acc, images_per_sec, elapsed;
    /* epoch */
    double train_loss, train_acc, test_loss, test_acc, lr, seconds, samples_per_sec;
    int64_t best_epoch;   /* 0: not given */
    char checkpoint[1200]; /* "" when this epoch wrote none */
    bool replayed;        /* re-reported from the worker's history on resume */
    /* done, interrupted: epochs done */
    int64_t epochs_done;
    double best_test_acc;
    /* failed */
    char error[4096];
    int code;             /* the worker's exit code (sysexits) */
    bool retryable;
} svc_event;

const char *svc_event_name(svc_event_kind k);

/* Parses one line (without its newline). 0, or -1 with the reason in err. */
int svc_event_parse(const char *line, size_t len, svc_event *out, char *err, size_t errlen);

/* Splits a byte stream into lines. */
typedef struct svc_linebuf {
    char *buf;
    size_t len, cap;
    size_t max;    /* longest line kept whole */
    bool truncate; /* true: a longer line is delivered in pieces of max bytes; false: an error */
} svc_linebuf;

/* Called per complete line (no newline, NUL-terminated at line[len]);
 * a non-zero return stops svc_linebuf_feed and is returned by it. */
typedef int (*svc_line_fn)(void *ctx, const char *line, size_t len);

void svc_linebuf_init(svc_linebuf *b, size_t max, bool truncate);
void svc_linebuf_free(svc_linebuf *b);
/* Appends n bytes and delivers every complete line. Returns 0, the
 * callback's non-zero value, -1 for a line longer than max (not truncating)
 * or -2 when memory ran out. */
int svc_linebuf_feed(svc_linebuf *b, const char *data, size_t n, svc_line_fn fn, void *ctx);
/* At end of stream: delivers an unterminated last line, if any. */
int svc_linebuf_finish(svc_linebuf *b, svc_line_fn fn, void *ctx);

#endif
