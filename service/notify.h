/* The systemd notification protocol (sd_notify(3)) without libsystemd: one
 * datagram of "KEY=VALUE" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or an abstract name when it starts with '@'). */
#ifndef SVC_NOTIFY_H
#define SVC_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Sends `state` ("READY=1", "STATUS=...\n", "WATCHDOG=1", "STOPPING=1").
 * Returns 1 when sent, 0 when $NOTIFY_SOCKET is not set (nothing to do),
 * or SVC_EUSAGE / SVC_EIO (svc_last_error says why). */
int svc_notify(const char *state);
/* printf-style convenience. */
int svc_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True when systemd asked this process for keep-alive pings: $WATCHDOG_USEC
 * is a positive number and $WATCHDOG_PID, if set, is our pid. *usec gets
 * the interval within which a WATCHDOG=1 must arrive. */
bool svc_notify_watchdog(uint64_t *usec);

/* Closes the cached socket (tests, and before exec). */
void svc_notify_close(void);

#endif
