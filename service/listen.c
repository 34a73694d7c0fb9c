/* Parsing a listen address ("ADDR:PORT", "[V6]:PORT", or a port alone). Only
 * numeric addresses and "localhost": a name that resolves through DNS could
 * point anywhere, and the point of the rule is to know what is exposed. */
#include "service/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/error.h"

static int parse_port(const char *s, const char *all, int *port)
{
    char *end = NULL;
    errno = 0;
    long v = *s >= '0' && *s <= '9' ? strtol(s, &end, 10) : -1;
    if (v < 0 || errno || *end || v > 65535)
        return svc_error(SVC_EUSAGE, "'%s': expected a port from 0 to 65535 after the address, found '%s'", all, s);
    *port = (int)v;
    return 0;
}

int svc_listen_parse(const char *s, svc_listen *out)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s)
        return svc_error(SVC_EUSAGE, "expected ADDRESS:PORT, e.g. 127.0.0.1:8080");
    char host[INET6_ADDRSTRLEN + 8];
    const char *port_s;
    const char *colon = strrchr(s, ':');
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host)
            return svc_error(SVC_EUSAGE, "'%s': expected [IPv6 address]:PORT, e.g. [::1]:8080", s);
        snprintf(host, sizeof host, "%.*s", (int)(close - s - 1), s + 1);
        port_s = close + 2;
    } else if (!colon) {
        snprintf(host, sizeof host, "127.0.0.1"); /* a port alone: loopback */
        port_s = s;
    } else {
        if ((size_t)(colon - s) >= sizeof host || colon == s)
            return svc_error(SVC_EUSAGE, "'%s': expected ADDRESS:PORT, e.g. 127.0.0.1:8080", s);
        snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
        if (strchr(host, ':'))
            return svc_error(SVC_EUSAGE, "'%s': write an IPv6 address in brackets, e.g. [::1]:8080", s);
        port_s = colon + 1;
    }
    int rc = parse_port(port_s, s, &out->port);
    if (rc < 0)
        return rc;
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)out->port);
        out->addr_len = sizeof *v4;
        out->loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
        snprintf(out->text, sizeof out->text, "%s:%d", host, out->port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)out->port);
        out->addr_len = sizeof *v6;
        out->loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
        snprintf(out->text, sizeof out->text, "[%s]:%d", host, out->port);
    } else {
        return svc_error(SVC_EUSAGE,
                         "'%s': '%s' is not a numeric IPv4 or IPv6 address (or localhost); "
                         "write e.g. 127.0.0.1:8080, [::1]:8080 or 0.0.0.0:8080",
                         s, host);
    }
    return 0;
}
