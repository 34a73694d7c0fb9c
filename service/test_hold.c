/* The test-only hold between epochs (see test_hold.h): a gate file per run
 * name that a test writes, a position file that the run writes, polling. */
#include "service/test_hold.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "service/error.h"

/* The gate's number: 1 and *allowed when the gate exists (an unreadable or
 * empty one allows nothing yet: a test may be writing it), 0 when it does not. */
static int read_gate(const char *path, int64_t *allowed)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long long v = 0;
    *allowed = fscanf(f, "%lld", &v) == 1 ? (int64_t)v : 0;
    fclose(f);
    return 1;
}

/* Written whole, then renamed, so that a test never reads half a number. */
static void write_position(const char *dir, const char *name, int64_t epoch)
{
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof tmp, "%s/.%s.at.%ld", dir, name, (long)getpid());
    snprintf(path, sizeof path, "%s/%s.at", dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "epochd: EPOCHD_TEST_HOLD: cannot write %s: %s\n", tmp, strerror(errno));
        return;
    }
    fprintf(f, "%lld\n", (long long)epoch);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "epochd: EPOCHD_TEST_HOLD: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
    }
}

int svc_test_hold(const char *name, int64_t epoch, volatile sig_atomic_t *stop)
{
    const char *dir = getenv("EPOCHD_TEST_HOLD");
    if (!dir || !*dir || !name || !*name)
        return 0;
    char gate[4200];
    snprintf(gate, sizeof gate, "%s/%s.gate", dir, name);
    int64_t allowed = 0;
    if (!read_gate(gate, &allowed) || allowed >= epoch)
        return 0;
    fprintf(stderr, "epochd: EPOCHD_TEST_HOLD: %s holds before epoch %lld until %s allows it\n", name,
            (long long)epoch, gate);
    write_position(dir, name, epoch);
    const struct timespec tick = {0, 10 * 1000 * 1000};
    for (;;) {
        if (stop && *stop)
            return svc_error(SVC_EINTR, "stopped while held before epoch %lld (EPOCHD_TEST_HOLD)", (long long)epoch);
        if (!read_gate(gate, &allowed) || allowed >= epoch)
            return 0;
        nanosleep(&tick, NULL); /* a signal cuts it short: the flag is looked at first */
    }
}
