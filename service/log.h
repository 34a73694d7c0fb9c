/* Service logging: one line per message on stderr, each prefixed with its
 * syslog priority ("<6>epochd[run 12]: ...") so that journald files it under
 * the right level (sd-daemon(3)'s SD_INFO etc.). */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include <stdint.h>

enum {
    SVC_LOG_ERR = 3,
    SVC_LOG_WARNING = 4,
    SVC_LOG_NOTICE = 5,
    SVC_LOG_INFO = 6,
    SVC_LOG_DEBUG = 7,
};

/* Messages above this priority number are dropped (default SVC_LOG_INFO). */
void svc_log_set_level(int level);
int svc_log_level(void);
/* "error", "warning", "notice", "info", "debug" -> level; -1 if unknown. */
int svc_log_level_parse(const char *name);
const char *svc_log_level_name(int level);

/* Logs one message; a message with several lines gives several prefixed
 * lines. Each line is written with a single write() so that lines from
 * several sources never interleave. */
void svc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for one run: "<6>epochd[run 12]: ...". */
void svc_log_run(int level, int64_t run_id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
