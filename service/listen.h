/* The address a dashboard listens on, as the config and `--http` write it:
 * "127.0.0.1:8080", "[::1]:8080", "localhost:8080", "0.0.0.0:8080", or a
 * port alone ("8080": loopback). Anything but loopback must be written out. */
#ifndef SVC_LISTEN_H
#define SVC_LISTEN_H

#include <stdbool.h>
#include <sys/socket.h>

typedef struct svc_listen {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    bool loopback; /* 127.0.0.0/8 or ::1 */
    int port;      /* 0: any free port (the kernel picks) */
    char text[96]; /* "127.0.0.1:8080", "[::1]:8080" */
} svc_listen;

/* 0, or SVC_EUSAGE with svc_last_error saying what is wrong. */
int svc_listen_parse(const char *s, svc_listen *out);

#endif
