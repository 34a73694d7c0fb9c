/* The worker's epoch history and checkpoint bookkeeping for exact resumes. */
#include "service/history.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HISTORY "epochs.jsonl"
#define MAX_HEADER (64u << 20)

int svc_checkpoint_meta(const char *path, int64_t *epoch, char sha[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned char len8[8];
    int rc = -1;
    char *hdr = NULL;
    if (read(fd, len8, 8) != 8)
        goto out;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | len8[i];
    if (n == 0 || n > MAX_HEADER || !(hdr = malloc(n)))
        goto out;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, hdr + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto out;
        got += (size_t)r;
    }
    json_t *j = json_loadb(hdr, n, 0, NULL);
    json_t *meta = j ? json_object_get(j, "__metadata__") : NULL;
    const char *ep = json_string_value(json_object_get(meta, "epoch"));
    const char *sh = json_string_value(json_object_get(meta, "spec_sha256"));
    char *end;
    if (ep && *ep) {
        long long v = strtoll(ep, &end, 10);
        if (!*end && v >= 0) {
            *epoch = v;
            if (sha)
                snprintf(sha, 65, "%s", sh ? sh : "");
            rc = 0;
        }
    }
    json_decref(j);
out:
    free(hdr);
    close(fd);
    return rc;
}

static void path_in(const svc_history *h, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", h->dir, name);
}

static void remove_in(const svc_history *h, const char *name)
{
    char p[1200];
    path_in(h, name, p, sizeof p);
    if (unlink(p) < 0 && errno != ENOENT)
        fprintf(stderr, "epochd worker: cannot remove %s: %s\n", p, strerror(errno));
}

/* Reads the history: the last well-formed line of each epoch wins; a torn
 * last line (the worker died while writing it) is dropped. */
static int load(svc_history *h, json_t ***by_epoch, int64_t *max_epoch)
{
    *by_epoch = NULL;
    *max_epoch = 0;
    char p[1200];
    path_in(h, HISTORY, p, sizeof p);
    FILE *f = fopen(p, "rb");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    json_t **v = NULL;
    int64_t vcap = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break;
        json_t *o = json_loadb(line, (size_t)n - 1, 0, NULL);
        json_t *e = o ? json_object_get(o, "epoch") : NULL;
        int64_t ep = json_is_integer(e) ? (int64_t)json_integer_value(e) : 0;
        if (ep < 1 || ep > 100000000) {
            json_decref(o);
            continue;
        }
        if (ep > vcap) {
            int64_t nc = vcap ? vcap : 16;
            while (nc < ep)
                nc *= 2;
            json_t **nv = realloc(v, (size_t)(nc + 1) * sizeof *nv);
            if (!nv) {
                json_decref(o);
                break;
            }
            size_t old = v ? (size_t)vcap + 1 : 0;
            memset(nv + old, 0, ((size_t)nc + 1 - old) * sizeof *nv);
            v = nv;
            vcap = nc;
        }
        json_decref(v[ep]);
        v[ep] = o;
        if (ep > *max_epoch)
            *max_epoch = ep;
    }
    free(line);
    fclose(f);
    *by_epoch = v;
    return 0;
}

/* Rewrites the history with epochs 1..upto (atomically). */
static int rewrite(svc_history *h, json_t **v, int64_t upto)
{
    char p[1200], tmp[1300];
    path_in(h, HISTORY, p, sizeof p);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return -1;
    for (int64_t e = 1; e <= upto; e++) {
        if (!v || !v[e])
            continue;
        char *s = json_dumps(v[e], JSON_COMPACT | JSON_REAL_PRECISION(17));
        if (s) {
            fputs(s, f);
            fputc('\n', f);
            free(s);
        }
    }
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, p) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void fresh(svc_history *h)
{
    remove_in(h, "last.safetensors");
    remove_in(h, "best.safetensors");
    remove_in(h, "committed.safetensors");
    remove_in(h, HISTORY);
}

int svc_history_open(svc_history *h, const char *dir, const char *spec_sha256, bool resume, char *err,
                     size_t errlen)
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
    snprintf(h->dir, sizeof h->dir, "%s", dir);
    char last[1200], committed[1200];
    path_in(h, "last.safetensors", last, sizeof last);
    path_in(h, "committed.safetensors", committed, sizeof committed);
    int64_t ck = 0, hmax = 0;
    json_t **v = NULL;
    if (!resume) {
        fresh(h);
    } else {
        char sha[65];
        bool have_last = access(last, F_OK) == 0;
        if (have_last && (svc_checkpoint_meta(last, &ck, sha) < 0 || strcmp(sha, spec_sha256))) {
            fprintf(stderr, "epochd worker: %s is not a checkpoint of this spec; starting afresh\n", last);
            fresh(h);
            have_last = false;
            ck = 0;
        }
        if (!have_last) {
            /* nothing to resume from: what the history says would be re-run */
            fresh(h);
        } else if (load(h, &v, &hmax) < 0) {
            snprintf(err, errlen, "cannot read %s/%s: %s", dir, HISTORY, strerror(errno));
            return -1;
        } else if (ck > hmax) {
            /* the last checkpoint got ahead of the history: go back to the
             * newest one whose epochs are all recorded */
            int64_t c = -1;
            char csha[65];
            if (svc_checkpoint_meta(committed, &c, csha) == 0 && !strcmp(csha, spec_sha256) && c <= hmax &&
                rename(committed, last) == 0) {
                fprintf(stderr, "epochd worker: checkpoint of epoch %lld is ahead of the recorded epochs; "
                                "resuming from epoch %lld\n", (long long)ck, (long long)c);
                ck = c;
            } else {
                fprintf(stderr, "epochd worker: checkpoint of epoch %lld is ahead of the recorded epochs and no "
                                "earlier one is kept; starting afresh\n", (long long)ck);
                fresh(h);
                ck = 0;
            }
        }
        if (rewrite(h, v, ck) < 0) {
            snprintf(err, errlen, "cannot rewrite %s/%s: %s", dir, HISTORY, strerror(errno));
            for (int64_t e = 0; v && e <= hmax; e++)
                json_decref(v[e]);
            free(v);
            return -1;
        }
        for (int64_t e = 1; v && e <= hmax; e++) {
            if (e <= ck && v[e]) {
                json_t **nr = realloc(h->replay, (h->n_replay + 1) * sizeof *nr);
                if (nr) {
                    h->replay = nr;
                    h->replay[h->n_replay++] = v[e];
                    continue;
                }
            }
            json_decref(v[e]);
        }
        free(v);
    }
    char p[1200];
    path_in(h, HISTORY, p, sizeof p);
    h->fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (h->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", p, strerror(errno));
        svc_history_close(h);
        return -1;
    }
    return 0;
}

int svc_history_append(svc_history *h, json_t *event, const char *ck, char *err, size_t errlen)
{
    char *s = json_dumps(event, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!s) {
        snprintf(err, errlen, "out of memory recording the epoch");
        return -1;
    }
    size_t n = strlen(s);
    s[n] = '\n'; /* replaces the NUL: written as one line */
    size_t off = 0;
    int rc = 0;
    while (off < n + 1) {
        ssize_t w = write(h->fd, s + off, n + 1 - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(err, errlen, "cannot append to %s/%s: %s", h->dir, HISTORY, strerror(errno));
            rc = -1;
            break;
        }
        off += (size_t)w;
    }
    free(s);
    if (rc == 0 && fdatasync(h->fd) < 0) {
        snprintf(err, errlen, "cannot sync %s/%s: %s", h->dir, HISTORY, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && ck) {
        char committed[1200], tmp[1300];
        path_in(h, "committed.safetensors", committed, sizeof committed);
        snprintf(tmp, sizeof tmp, "%s.tmp", committed);
        unlink(tmp);
        if (link(ck, tmp) < 0 || rename(tmp, committed) < 0) {
            snprintf(err, errlen, "cannot link %s to %s: %s", ck, committed, strerror(errno));
            unlink(tmp);
            rc = -1;
        }
    }
    return rc;
}

size_t svc_history_replay(const svc_history *h, int64_t upto, json_t ***out)
{
    *out = h->replay;
    size_t n = 0;
    while (n < h->n_replay && json_integer_value(json_object_get(h->replay[n], "epoch")) <= upto)
        n++;
    return n;
}

void svc_history_close(svc_history *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    for (size_t i = 0; i < h->n_replay; i++)
        json_decref(h->replay[i]);
    free(h->replay);
    h->replay = NULL;
    h->n_replay = 0;
}
