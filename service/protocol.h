/* The worker protocol, both directions: the worker formats its events as
 * JSON lines, the service parses them back (docs/worker-protocol.md). One
 * table of members per event serves both, so the two sides cannot drift.
 * Pure functions: no I/O but svc_event_write, no globals. */
#ifndef SVC_PROTOCOL_H
#define SVC_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* One event. Only the members of its kind are meaningful; numbers a worker
 * sent as null (a diverged loss) or left out are NAN, counts left out have
 * the defaults svc_event_init gives. */
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
    int64_t best_epoch;    /* 0: not given */
    char checkpoint[1200]; /* "" when this epoch wrote none */
    bool replayed;         /* re-reported from the worker's history on resume */
    /* done, interrupted: epochs done */
    int64_t epochs_done;
    double best_test_acc;
    /* failed */
    char error[4096];
    int64_t code;          /* the worker's exit status (sysexits) */
    bool retryable;
} svc_event;

const char *svc_event_name(svc_event_kind k);

/* An event of kind k with every member at its default (numbers NAN). */
void svc_event_init(svc_event *e, svc_event_kind k);

/* Parses one line (without its newline). 0, or SVC_EPROTO with the reason
 * in svc_last_error. */
int svc_event_parse(const char *line, size_t len, svc_event *out);

/* The event as one compact JSON line without the newline (malloc'd; NULL
 * when out of memory). Doubles keep 17 significant digits, so the reader
 * gets exactly the values written; non-finite numbers are null. */
char *svc_event_format(const svc_event *e);

/* Formats the event and writes it with its newline, flushed at once.
 * 0, or SVC_ENOMEM / SVC_EIO. */
int svc_event_write(FILE *f, const svc_event *e);

#endif
