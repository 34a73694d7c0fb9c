/* Service logging with syslog priority prefixes on stderr. */
#include "service/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int max_level = SVC_LOG_INFO;

static const char *const level_names[8] = {
    [SVC_LOG_ERR] = "error", [SVC_LOG_WARNING] = "warning", [SVC_LOG_NOTICE] = "notice",
    [SVC_LOG_INFO] = "info", [SVC_LOG_DEBUG] = "debug",
};

void svc_log_set_level(int level)
{
    if (level >= SVC_LOG_ERR && level <= SVC_LOG_DEBUG)
        max_level = level;
}

int svc_log_level(void) { return max_level; }

int svc_log_level_parse(const char *name)
{
    for (int i = SVC_LOG_ERR; i <= SVC_LOG_DEBUG; i++)
        if (name && !strcmp(name, level_names[i]))
            return i;
    return -1;
}

const char *svc_log_level_name(int level)
{
    return level >= SVC_LOG_ERR && level <= SVC_LOG_DEBUG ? level_names[level] : "?";
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report it */
        p += w;
        n -= (size_t)w;
    }
}

static void vlog(int level, int64_t run_id, const char *fmt, va_list ap)
{
    if (level > max_level)
        return;
    char msg[8192];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char prefix[64];
    if (run_id > 0)
        snprintf(prefix, sizeof prefix, "<%d>epochd[run %lld]: ", level, (long long)run_id);
    else
        snprintf(prefix, sizeof prefix, "<%d>epochd: ", level);
    const char *p = msg;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > 0 || !nl) {
            char line[8192 + 64 + 2];
            size_t pl = strlen(prefix);
            if (n > sizeof line - pl - 1)
                n = sizeof line - pl - 1;
            memcpy(line, prefix, pl);
            memcpy(line + pl, p, n);
            line[pl + n] = '\n';
            write_all(line, pl + n + 1);
        }
        if (!nl || !nl[1])
            break;
        p = nl + 1;
    }
}

void svc_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, 0, fmt, ap);
    va_end(ap);
}

void svc_log_run(int level, int64_t run_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, run_id, fmt, ap);
    va_end(ap);
}
