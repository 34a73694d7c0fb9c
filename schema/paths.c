/* Resolving spec paths and checking them against the configured data roots. */
#include "schema/paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema/alloc.h"

int spec_resolve_path(const char *dir, const char *p, char *out, size_t len)
{
    int n;
    if (p[0] == '/') {
        n = snprintf(out, len, "%s", p);
    } else if (dir && dir[0] == '/') {
        n = snprintf(out, len, "%s/%s", dir, p);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            snprintf(cwd, sizeof cwd, ".");
        if (dir && dir[0])
            n = snprintf(out, len, "%s/%s/%s", cwd, dir, p);
        else
            n = snprintf(out, len, "%s/%s", cwd, p);
    }
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

char *spec_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return spec_strdup("");
    if (slash == path)
        return spec_strdup("/");
    return spec_strndup(path, (size_t)(slash - path));
}

char *spec_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".yaml"))
        n -= 5;
    else if (n > 4 && !strcmp(base + n - 4, ".yml"))
        n -= 4;
    return spec_strndup(base, n);
}

/* Removes "", "." and ".." components of an absolute path in place. */
static void normalize(char *p)
{
    char *out = p, *s = p;
    while (*s) {
        while (*s == '/')
            s++;
        char *e = s;
        while (*e && *e != '/')
            e++;
        size_t n = (size_t)(e - s);
        if (n == 0 || (n == 1 && s[0] == '.')) {
            /* skip */
        } else if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (out > p && *--out != '/')
                ;
        } else {
            *out++ = '/';
            memmove(out, s, n);
            out += n;
        }
        s = e;
    }
    if (out == p)
        *out++ = '/';
    *out = '\0';
}

/* The real path when it exists; else the realpath of the longest existing
 * prefix of the lexically normalized path, with the rest appended. */
static void canonical(const char *path, char *out)
{
    if (realpath(path, out))
        return;
    char buf[PATH_MAX], head[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    normalize(buf);
    size_t cut = strlen(buf);
    for (;;) {
        char save = buf[cut];
        buf[cut] = '\0';
        bool ok = realpath(cut ? buf : "/", head) != NULL;
        buf[cut] = save;
        if (ok) {
            snprintf(out, PATH_MAX, "%s%s", head, buf + cut);
            normalize(out);
            return;
        }
        if (cut == 0)
            break;
        do
            cut--;
        while (cut > 0 && buf[cut] != '/');
    }
    snprintf(out, PATH_MAX, "%s", buf);
}

int spec_canonical_path(const char *path, char *out, size_t len)
{
    char p[PATH_MAX];
    canonical(path, p);
    int n = snprintf(out, len, "%s", p);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

bool spec_under_roots(const char *path, const char *const *roots, int nroots)
{
    char p[PATH_MAX], r[PATH_MAX];
    canonical(path, p);
    for (int i = 0; i < nroots; i++) {
        char abs[PATH_MAX];
        if (spec_resolve_path("", roots[i], abs, sizeof abs))
            continue;
        canonical(abs, r);
        size_t n = strlen(r);
        if (n == 1 && r[0] == '/')
            return true;
        if (!strncmp(p, r, n) && (p[n] == '\0' || p[n] == '/'))
            return true;
    }
    return false;
}
