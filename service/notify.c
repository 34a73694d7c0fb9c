/* sd_notify over a datagram socket, with no dependency on libsystemd. */
#include "service/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "service/error.h"

static int sock_fd = -1;

void svc_notify_close(void)
{
    if (sock_fd >= 0)
        close(sock_fd);
    sock_fd = -1;
}

int svc_notify(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !*name)
        return 0;
    size_t n = strlen(name);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if ((name[0] != '/' && name[0] != '@') || n >= sizeof sa.sun_path)
        return svc_error(SVC_EUSAGE, "NOTIFY_SOCKET=%.200s is not a socket path or an abstract name", name);
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0'; /* Linux abstract namespace: no trailing NUL counted */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/' ? 1 : 0));
    if (sock_fd < 0) {
        sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock_fd < 0)
            return svc_error(SVC_EIO, "cannot create a socket for sd_notify: %s", strerror(errno));
    }
    ssize_t w;
    do
        w = sendto(sock_fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    while (w < 0 && errno == EINTR);
    return w < 0 ? svc_error(SVC_EIO, "cannot notify %s: %s", name, strerror(errno)) : 1;
}

int svc_notifyf(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return svc_notify(buf);
}

bool svc_notify_watchdog(uint64_t *usec)
{
    const char *s = getenv("WATCHDOG_USEC");
    if (!s || !*s)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0)
        return false;
    const char *p = getenv("WATCHDOG_PID");
    if (p && *p) {
        long pid = strtol(p, &end, 10);
        if (*end || pid != (long)getpid())
            return false;
    }
    *usec = v;
    return true;
}
