/* Who may ask what: GET and HEAD only, bounded requests, the Host header
 * of a loopback server naming a loopback host (a web page elsewhere cannot
 * reach the dashboard through DNS rebinding), and the bearer token when one
 * is set - as `Authorization: Bearer TOKEN`, or as the password of HTTP
 * Basic authentication so that a browser can ask for it. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/error.h"
#include "service/log.h"
#include "web/internal.h"

#define MIN_TOKEN 16

int web_guard_load_token(web_server *w, const char *path)
{
    w->token[0] = '\0';
    w->token_len = 0;
    if (!path)
        return 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return svc_error(SVC_EUSAGE, "http.token_file %s: %s", path, strerror(errno));
    struct stat st;
    char buf[sizeof w->token + 1];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return svc_error(SVC_EUSAGE, "http.token_file %s: %s", path,
                         S_ISREG(st.st_mode) ? strerror(e) : "not a regular file");
    if ((size_t)n >= sizeof buf - 1)
        return svc_error(SVC_EUSAGE, "http.token_file %s: longer than %zu bytes", path, sizeof w->token - 1);
    buf[n] = '\0';
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    if (n < MIN_TOKEN)
        return svc_error(SVC_EUSAGE, "http.token_file %s: the token needs at least %d characters (found %zd)", path,
                         MIN_TOKEN, n);
    for (ssize_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)buf[i]))
            return svc_error(SVC_EUSAGE, "http.token_file %s: the token may hold no spaces or control characters",
                             path);
    if (st.st_mode & S_IROTH)
        svc_log(SVC_LOG_WARNING, "http.token_file %s is readable by every user (chmod o-r it)", path);
    memcpy(w->token, buf, (size_t)n + 1);
    w->token_len = (size_t)n;
    return 0;
}

/* Equal in time that does not depend on where they differ. */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < alen && i < blen; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes base64 (with padding) into out; its length, or -1. */
static ssize_t b64_decode(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        int v = b64_value((unsigned char)*s);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= cap)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    while (*s == '=')
        s++;
    if (*s)
        return -1;
    out[n] = '\0';
    return (ssize_t)n;
}

static bool token_ok(web_server *w, const char *auth)
{
    if (!auth)
        return false;
    if (!strncasecmp(auth, "Bearer ", 7)) {
        const char *t = auth + 7;
        while (*t == ' ')
            t++;
        return same_secret(t, strlen(t), w->token, w->token_len);
    }
    if (!strncasecmp(auth, "Basic ", 6)) {
        char dec[2 * sizeof w->token];
        ssize_t n = b64_decode(auth + 6, dec, sizeof dec);
        const char *colon = n > 0 ? memchr(dec, ':', (size_t)n) : NULL;
        if (!colon)
            return false;
        const char *pw = colon + 1; /* any user name: the password is the token */
        return same_secret(pw, (size_t)(dec + n - pw), w->token, w->token_len);
    }
    return false;
}

/* A Host header that names this loopback server: 127.x.y.z, localhost or
 * [::1], with or without a port. */
static bool loopback_host(const char *h)
{
    char name[128];
    size_t n;
    if (h[0] == '[') {
        const char *close = strchr(h, ']');
        if (!close)
            return false;
        n = (size_t)(close - h + 1);
        if (close[1] && close[1] != ':')
            return false;
    } else {
        n = strcspn(h, ":");
    }
    if (n == 0 || n >= sizeof name)
        return false;
    memcpy(name, h, n);
    name[n] = '\0';
    if (!strcasecmp(name, "localhost") || !strcmp(name, "[::1]"))
        return true;
    unsigned a, b, c, d;
    char extra;
    return sscanf(name, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4 && a == 127 && b < 256 && c < 256 && d < 256;
}

static enum MHD_Result count_one(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    (void)key;
    (void)value;
    (*(int *)cls)++;
    return MHD_YES;
}

int web_guard_check(web_server *w, struct MHD_Connection *c, const char *method, const char *url, const char **why)
{
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        *why = "this dashboard only reads: GET and HEAD";
        return MHD_HTTP_METHOD_NOT_ALLOWED;
    }
    if (strlen(url) > WEB_MAX_URL) {
        *why = "the address is too long";
        return MHD_HTTP_URI_TOO_LONG;
    }
    int headers = 0, args = 0;
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_one, &headers);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, count_one, &args);
    if (headers > WEB_MAX_HEADERS) {
        *why = "too many header fields";
        return MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
    }
    if (args > WEB_MAX_ARGS) {
        *why = "too many query arguments";
        return MHD_HTTP_URI_TOO_LONG;
    }
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if ((len && strcmp(len, "0")) || MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding")) {
        *why = "a request to this dashboard has no body";
        return MHD_HTTP_CONTENT_TOO_LARGE;
    }
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (w->listen.loopback && host && !loopback_host(host)) {
        *why = "this dashboard listens on loopback and answers only to localhost, 127.0.0.1 or [::1]";
        return MHD_HTTP_FORBIDDEN;
    }
    if (w->token_len && !token_ok(w, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"))) {
        *why = "a token is needed: Authorization: Bearer TOKEN (or HTTP Basic with the token as password)";
        return MHD_HTTP_UNAUTHORIZED;
    }
    return 0;
}
