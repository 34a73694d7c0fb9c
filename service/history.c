/* The worker's epoch history and checkpoint bookkeeping for exact resumes. */
#include "service/history.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/file.h"
#include "service/error.h"

#define HISTORY "epochs.jsonl"
#define MAX_HEADER (64u << 20)

int svc_checkpoint_meta(const char *path, int64_t *epoch, char sha[65])
{
    /* the state folder is input too: a FIFO, a device or a link there must not block or feed the worker */
    int fd;
    if (eng_file_open(path, ENG_FILE_NOFOLLOW, &fd, NULL) < 0)
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

/* One line of the file as kept in memory: its epoch and its text. */
typedef struct hline {
    int64_t epoch;
    char *text;
} hline;

static void free_lines(hline *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].text);
    free(v);
}

/* Reads the history: the last well-formed line of each epoch wins; a torn
 * last line (the worker died while writing it) is dropped. The file is the
 * worker's own, but a state folder is still input: lines that are not epoch
 * events are skipped, and memory grows with the lines, never with the
 * numbers in them. *v gets the epochs in ascending order. */
static int load(svc_history *h, hline **v, size_t *n)
{
    *v = NULL;
    *n = 0;
    char p[1200];
    path_in(h, HISTORY, p, sizeof p);
    FILE *f = fopen(p, "rb");
    if (!f)
        return errno == ENOENT ? 0 : svc_error(SVC_EIO, "cannot read %s: %s", p, strerror(errno));
    char *line = NULL;
    size_t cap = 0, vcap = 0;
    ssize_t len;
    int rc = 0;
    svc_event e;
    while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n')
            break;
        line[--len] = '\0';
        if (svc_event_parse(line, (size_t)len, &e) < 0 || e.kind != SVC_EV_EPOCH)
            continue;
        char *text = strdup(line);
        size_t i = *n;
        while (i > 0 && (*v)[i - 1].epoch > e.epoch)
            i--;
        if (!text) {
            rc = svc_error(SVC_ENOMEM, "out of memory reading %s", p);
        } else if (i > 0 && (*v)[i - 1].epoch == e.epoch) {
            free((*v)[i - 1].text); /* a later line of the same epoch */
            (*v)[i - 1].text = text;
        } else {
            if (*n == vcap) {
                size_t nc = vcap ? 2 * vcap : 16;
                hline *nv = realloc(*v, nc * sizeof *nv);
                if (!nv) {
                    free(text);
                    rc = svc_error(SVC_ENOMEM, "out of memory reading %s", p);
                    break;
                }
                *v = nv;
                vcap = nc;
            }
            memmove(*v + i + 1, *v + i, (*n - i) * sizeof **v);
            (*v)[i] = (hline){e.epoch, text};
            (*n)++;
        }
    }
    free(line);
    fclose(f);
    if (rc < 0) {
        free_lines(*v, *n);
        *v = NULL;
        *n = 0;
    }
    return rc;
}

/* Formats an epoch for the file: one line with its newline, no checkpoint. */
static char *history_line(const svc_event *epoch, size_t *len)
{
    svc_event e = *epoch;
    e.checkpoint[0] = '\0';
    e.replayed = false;
    char *s = svc_event_format(&e);
    if (!s)
        return NULL;
    *len = strlen(s);
    char *l = realloc(s, *len + 2);
    if (!l) {
        free(s);
        return NULL;
    }
    l[(*len)++] = '\n';
    l[*len] = '\0';
    return l;
}

/* Rewrites the history with the epochs up to `upto` (atomically). */
static int rewrite(svc_history *h, const hline *v, size_t n, int64_t upto)
{
    char p[1200], tmp[1300];
    path_in(h, HISTORY, p, sizeof p);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return svc_error(SVC_EIO, "cannot rewrite %s: %s", p, strerror(errno));
    bool bad = false;
    for (size_t i = 0; i < n && v[i].epoch <= upto && !bad; i++)
        bad = fputs(v[i].text, f) < 0 || fputc('\n', f) == EOF;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, p) < 0) {
        int rc = svc_error(SVC_EIO, "cannot rewrite %s: %s", p, strerror(errno));
        unlink(tmp);
        return rc;
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

/* The last checkpoint (epoch ck) got ahead of the history (epochs up to
 * hmax): the worker died between writing it and recording its epoch. Goes
 * back to committed.safetensors, the newest checkpoint whose epochs are all
 * recorded, or starts afresh. Returns the epoch to resume after. */
static int64_t roll_back(svc_history *h, const char *committed, const char *last, const char *spec_sha256,
                         int64_t ck, int64_t hmax)
{
    int64_t c = -1;
    char csha[65];
    if (svc_checkpoint_meta(committed, &c, csha) == 0 && !strcmp(csha, spec_sha256) && c <= hmax &&
        rename(committed, last) == 0) {
        fprintf(stderr, "epochd worker: checkpoint of epoch %lld is ahead of the recorded epochs; "
                        "resuming from epoch %lld\n", (long long)ck, (long long)c);
        return c;
    }
    fprintf(stderr, "epochd worker: checkpoint of epoch %lld is ahead of the recorded epochs and no "
                    "earlier one is kept; starting afresh\n", (long long)ck);
    fresh(h);
    return 0;
}

int svc_history_open(svc_history *h, const char *dir, const char *spec_sha256, bool resume)
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
    snprintf(h->dir, sizeof h->dir, "%s", dir);
    char last[1200], committed[1200];
    path_in(h, "last.safetensors", last, sizeof last);
    path_in(h, "committed.safetensors", committed, sizeof committed);
    int64_t ck = 0;
    hline *v = NULL;
    size_t nv = 0;
    int rc;
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
        } else if ((rc = load(h, &v, &nv)) < 0) {
            return rc;
        } else if (nv && !(h->replay = calloc(nv, sizeof *h->replay))) {
            free_lines(v, nv);
            return svc_error(SVC_ENOMEM, "out of memory reading the history");
        } else {
            int64_t hmax = nv ? v[nv - 1].epoch : 0;
            if (ck > hmax)
                ck = roll_back(h, committed, last, spec_sha256, ck, hmax);
        }
        rc = rewrite(h, v, nv, ck);
        /* what the service may have missed: epochs 1..ck, reported again after `started` */
        for (size_t i = 0; rc == 0 && i < nv && v[i].epoch <= ck; i++) {
            h->replay[h->n_replay++] = v[i].text;
            v[i].text = NULL;
        }
        free_lines(v, nv);
        if (rc < 0)
            return rc;
    }
    char p[1200];
    path_in(h, HISTORY, p, sizeof p);
    h->fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (h->fd < 0) {
        rc = svc_error(SVC_EIO, "cannot open %s: %s", p, strerror(errno));
        svc_history_close(h);
        return rc;
    }
    return 0;
}

int svc_history_append(svc_history *h, const svc_event *epoch, const char *ck)
{
    size_t n;
    char *s = history_line(epoch, &n);
    if (!s)
        return svc_error(SVC_ENOMEM, "out of memory recording the epoch");
    size_t off = 0;
    int rc = 0;
    while (off < n) { /* one write per line, so a torn line is the last one */
        ssize_t w = write(h->fd, s + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = svc_error(SVC_EIO, "cannot append to %s/%s: %s", h->dir, HISTORY, strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    free(s);
    if (rc == 0 && fdatasync(h->fd) < 0)
        rc = svc_error(SVC_EIO, "cannot sync %s/%s: %s", h->dir, HISTORY, strerror(errno));
    if (rc == 0 && ck) {
        char committed[1200], tmp[1300];
        path_in(h, "committed.safetensors", committed, sizeof committed);
        snprintf(tmp, sizeof tmp, "%s.tmp", committed);
        unlink(tmp);
        if (link(ck, tmp) < 0 || rename(tmp, committed) < 0) {
            rc = svc_error(SVC_EIO, "cannot link %s to %s: %s", ck, committed, strerror(errno));
            unlink(tmp);
        }
    }
    return rc;
}

size_t svc_history_replay_count(const svc_history *h, int64_t upto)
{
    size_t n = 0;
    svc_event e;
    while (n < h->n_replay && svc_event_parse(h->replay[n], strlen(h->replay[n]), &e) == 0 && e.epoch <= upto)
        n++;
    return n;
}

int svc_history_replayed(const svc_history *h, size_t i, svc_event *e)
{
    int rc = svc_event_parse(h->replay[i], strlen(h->replay[i]), e);
    e->replayed = true;
    e->checkpoint[0] = '\0';
    return rc;
}

void svc_history_close(svc_history *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    for (size_t i = 0; i < h->n_replay; i++)
        free(h->replay[i]);
    free(h->replay);
    h->replay = NULL;
    h->n_replay = 0;
}
