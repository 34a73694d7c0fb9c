/* Default locations and mkdir -p. */
#include "service/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *svc_default_state_dir(void)
{
    const char *env = getenv("EPOCHD_STATE_DIR");
    return env && *env ? env : "var/state";
}

int svc_mkdirs(const char *path, unsigned mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int svc_run_dir(const char *state_dir, const char *key, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/runs/%s", state_dir, key);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
