/* A test-only hook that holds a run between epochs until a test releases
 * it (docs/worker-protocol.md, "Holding a run between epochs"), so that the
 * integration tests act "after epoch k, with the run still running" by
 * construction instead of racing the trainer on a busy machine. It is
 * switched on only by the EPOCHD_TEST_HOLD environment variable, never by
 * anything in a spec or the service's config. */
#ifndef SVC_TEST_HOLD_H
#define SVC_TEST_HOLD_H

#include <signal.h>
#include <stdint.h>

/* Before epoch `epoch` of the run called `name`: when $EPOCHD_TEST_HOLD
 * names a folder DIR and DIR/NAME.gate exists and holds a number below
 * `epoch`, writes `epoch` to DIR/NAME.at and waits until the gate holds a
 * number >= epoch or is removed. 0 to go on; SVC_EINTR when *stop was set
 * while it waited (a signal: the run stops at this epoch boundary). */
int svc_test_hold(const char *name, int64_t epoch, volatile sig_atomic_t *stop);

#endif
