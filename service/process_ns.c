/* This host's boot id and the PID namespace of the calling process, which
 * together say where a pid is meaningful (process_ns.h). */
#include "service/process_ns.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "service/error.h"

int svc_process_ns(char *buf, size_t len)
{
    buf[0] = '\0';
    char boot[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return svc_error(SVC_EIO, "cannot read /proc/sys/kernel/random/boot_id: %s", strerror(errno));
    bool ok = fgets(boot, sizeof boot, f) != NULL;
    fclose(f);
    boot[strcspn(boot, "\n")] = '\0';
    struct stat st;
    if (!ok || !boot[0] || stat("/proc/self/ns/pid", &st) < 0)
        return svc_error(SVC_EIO, "cannot tell this process's PID namespace");
    snprintf(buf, len, "%s:%llu", boot, (unsigned long long)st.st_ino);
    return 0;
}
