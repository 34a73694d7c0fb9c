/* Default locations, run folders and mkdir -p. */
#include "service/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "service/error.h"

const char *svc_default_state_dir(void)
{
    const char *env = getenv("EPOCHD_STATE_DIR");
    return env && *env ? env : "var/state";
}

static int make_one(const char *dir, unsigned mode, const char *path)
{
    if (mkdir(dir, mode) < 0 && errno != EEXIST)
        return svc_error(SVC_EIO, "cannot create %s: %s", path, strerror(errno));
    return 0;
}

int svc_mkdirs(const char *path, unsigned mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return svc_error(SVC_EINVAL, "cannot create a folder named '%.200s': %s", path,
                         n ? "the path is too long" : "the name is empty");
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = make_one(buf, mode, path);
        if (rc < 0)
            return rc;
        *p = '/';
    }
    return make_one(buf, mode, path);
}

int svc_run_dir(const char *state_dir, const char *key, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/runs/%s", state_dir, key);
    if (n < 0 || (size_t)n >= len)
        return svc_error(SVC_EINVAL, "the run folder of %s under %.200s: the path is too long", key, state_dir);
    return 0;
}

int svc_run_dir_make(const char *state_dir, const char *key, char *out, size_t len)
{
    int rc = svc_run_dir(state_dir, key, out, len);
    return rc < 0 ? rc : svc_mkdirs(out, 0750);
}
