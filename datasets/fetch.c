/* Fetching a dataset: lock, download with retries and resume, verify,
 * unpack into a staging folder, record, install (fetch.h). */
#include "datasets/fetch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datasets/error.h"
#include "datasets/http.h"
#include "datasets/record.h"
#include "datasets/sha256.h"
#include "datasets/state.h"
#include "datasets/unpack.h"

void ds_fetch_opts_default(ds_fetch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->retries = 3;
    o->backoff_s = 1.0;
    o->connect_timeout_s = 30.0;
    o->stall_timeout_s = 60.0;
}

typedef struct fctx {
    const ds_fetch_opts *o;
    ds_progress p;
    char **used; /* per file: the URL it came from (for the record) */
    /* the download rate: bytes and time at the start of the current window */
    double win_t;
    int64_t win_bytes;
} fctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int report(fctx *c) { return c->o->progress && c->o->progress(c->o->ctx, &c->p) ? DS_EINTR : 0; }

static int on_download(void *ctx, int64_t done, int64_t total)
{
    fctx *c = ctx;
    double t = now_s();
    if (c->win_t == 0.0) {
        c->win_t = t;
        c->win_bytes = done;
    } else if (t - c->win_t >= 1.0) {
        double r = (double)(done - c->win_bytes) / (t - c->win_t);
        c->p.rate = c->p.rate > 0 ? 0.5 * c->p.rate + 0.5 * r : r;
        c->win_t = t;
        c->win_bytes = done;
    }
    c->p.done = done;
    c->p.total = total;
    return report(c) ? 1 : 0;
}

static int on_bytes(void *ctx, int64_t done)
{
    fctx *c = ctx;
    c->p.done = done;
    return report(c) ? 1 : 0;
}

static int on_unpack(void *ctx, int64_t done, int64_t total)
{
    fctx *c = ctx;
    c->p.done = done;
    c->p.total = total;
    return report(c) ? 1 : 0;
}

/* Sleeps for s seconds, reporting (and so noticing a cancel) every 0.2 s. */
static int pause_for(fctx *c, double s)
{
    double end = now_s() + s;
    while (now_s() < end) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (report(c))
            return ds_error(DS_EINTR, "%s: cancelled", c->p.dataset);
    }
    return 0;
}

/* The dataset's lock: taken at once, or after waiting for whoever holds it. */
static int take_lock(fctx *c, const char *dir, int *fd_out)
{
    char path[DS_PATH_MAX];
    int rc = ds_path_join(path, sizeof path, dir, ".lock");
    if (rc)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return ds_errno_error(errno, "create", path);
    char why[DS_PATH_MAX + 64];
    snprintf(why, sizeof why, "another fetch of %s holds %s", c->p.dataset, path);
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(fd);
            return ds_errno_error(e, "lock", path);
        }
        c->p.phase = DS_PHASE_WAIT;
        c->p.message = why;
        if ((rc = pause_for(c, 0.2))) {
            close(fd);
            return rc;
        }
    }
    c->p.message = NULL;
    *fd_out = fd;
    return 0;
}

/* Removes staging folders an interrupted fetch left (ROOT/.DIR.tmp-*). */
static void clean_stale_stages(const char *root, const char *dir)
{
    char prefix[DS_PATH_MAX];
    snprintf(prefix, sizeof prefix, ".%s.tmp-", dir);
    DIR *d = opendir(root);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[DS_PATH_MAX];
        if (!strncmp(de->d_name, prefix, strlen(prefix)) && !ds_path_join(p, sizeof p, root, de->d_name))
            ds_remove_tree(p);
    }
    closedir(d);
}

static int64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void appendf(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
    size_t u = strlen(buf);
    if (u < len)
        snprintf(buf + u, len - u, fmt, a, b);
}

/* Verifies path against sha; on a mismatch moves it aside and says so. */
static int verify(fctx *c, const ds_file *f, const char *path, const char *from)
{
    char hex[65];
    c->p.phase = DS_PHASE_VERIFY;
    c->p.done = 0;
    c->p.total = file_size(path);
    int rc = ds_sha256_file(path, hex, on_bytes, c);
    if (rc)
        return rc == DS_EINTR ? ds_error(DS_EINTR, "%s: cancelled", c->p.dataset) : rc;
    if (!strcmp(hex, f->sha256))
        return 0;
    char aside[DS_PATH_MAX + 32];
    char *dot = strrchr(path, '.');
    size_t base = dot && !strcmp(dot, ".part") ? (size_t)(dot - path) : strlen(path);
    snprintf(aside, sizeof aside, "%.*s.bad-%.8s", (int)base, path, hex);
    if (rename(path, aside) != 0)
        return ds_errno_error(errno, "move aside", path);
    return ds_error(DS_ECHECKSUM,
                    "%s: SHA-256 mismatch: expected %s, got %s (%lld bytes); the "
                    "download is kept aside as %s and "
                    "not used",
                    from, f->sha256, hex, (long long)file_size(aside), aside);
}

/* Downloads file i into dl/NAME (verified), from the mirror or its URLs. */
static int fetch_file(fctx *c, const ds_entry *e, int i, const char *dl, ds_fetch_result *r)
{
    const ds_file *f = &e->files[i];
    const ds_fetch_opts *o = c->o;
    char final[DS_PATH_MAX], part[DS_PATH_MAX + 8];
    int rc = ds_path_join(final, sizeof final, dl, f->name);
    if (rc)
        return rc;
    snprintf(part, sizeof part, "%s.part", final);
    c->p.file = f->name;
    c->p.file_index = i + 1;
    if (file_size(final) >= 0) {
        /* verified by an earlier fetch that did not finish unpacking: check again
         */
        rc = verify(c, f, final, final);
        if (rc == 0 && !(c->used[i] = strdup("(an earlier download, verified again)")))
            return ds_error(DS_ENOMEM, "out of memory");
        if (rc != DS_ECHECKSUM)
            return rc;
    }

    /* the sources: the mirror, then the manifest's URLs */
    int n_src = f->n_urls + (o->mirror ? 1 : 0);
    char mirror_url[DS_PATH_MAX];
    if (o->mirror) {
        size_t ml = strlen(o->mirror);
        snprintf(mirror_url, sizeof mirror_url, "%s%s%s/%s", o->mirror, ml && o->mirror[ml - 1] == '/' ? "" : "/",
                 e->name, f->name);
    }
    char errors[4096] = "";
    int last_rc = DS_ENET;
    int64_t resumed = 0; /* the most a partial file held when an attempt resumed it */
    for (int s = 0; s < n_src; s++) {
        const char *url = o->mirror ? (s == 0 ? mirror_url : f->urls[s - 1]) : f->urls[s];
        int attempts = 1 + (o->retries > 0 ? o->retries : 0);
        double wait = o->backoff_s > 0 ? o->backoff_s : 1.0;
        for (int a = 1; a <= attempts; a++) {
            int64_t have = file_size(part);
            if (f->size >= 0) {
                int64_t need = f->size - (have > 0 ? have : 0), free_b = ds_free_bytes(dl);
                if (free_b >= 0 && need > free_b) {
                    char nb[32], fb[32];
                    ds_format_bytes((double)need, nb, sizeof nb);
                    ds_format_bytes((double)free_b, fb, sizeof fb);
                    return ds_error(DS_ENOSPC, "%s: %s needs %s more, only %s free there", dl, f->name, nb, fb);
                }
            }
            c->p.phase = DS_PHASE_DOWNLOAD;
            c->p.url = url;
            c->p.attempt = a;
            c->p.attempts = attempts;
            c->p.rate = 0;
            c->win_t = 0;
            ds_http_opts ho = {.connect_timeout_s = o->connect_timeout_s,
                               .stall_timeout_s = o->stall_timeout_s,
                               .max_bytes = f->size,
                               .progress = on_download,
                               .ctx = c};
            ds_http_result hr;
            r->attempts++;
            double t0 = now_s();
            rc = ds_http_fetch(url, part, &ho, &hr);
            r->download_seconds += now_s() - t0;
            r->downloaded += hr.received;
            if (hr.resumed_from > resumed)
                resumed = hr.resumed_from;
            if (rc == 0) {
                rc = verify(c, f, part, url);
                if (rc == 0) {
                    r->resumed += resumed;
                    if (!(c->used[i] = strdup(url)))
                        return ds_error(DS_ENOMEM, "out of memory");
                    if (rename(part, final) != 0)
                        return ds_errno_error(errno, "rename", part);
                    return ds_fsync_path(dl);
                }
                if (rc != DS_ECHECKSUM)
                    return rc;
                /* wrong bytes from this source: the next one, from the start */
                last_rc = rc;
                appendf(errors, sizeof errors, "%s%s", errors[0] ? "; " : "", ds_last_error());
                break;
            }
            if (rc == DS_EINTR || rc == DS_ENOSPC || rc == DS_EIO || rc == DS_ENOMEM) {
                int64_t kept = file_size(part);
                if (kept > 0) {
                    char msg[2048];
                    snprintf(msg, sizeof msg, "%s", ds_last_error());
                    return ds_error(rc,
                                    "%s; the partial download (%lld bytes) is kept in %s "
                                    "for the next fetch to "
                                    "resume",
                                    msg, (long long)kept, part);
                }
                return rc;
            }
            last_rc = rc;
            if (!hr.retryable || a == attempts) {
                appendf(errors, sizeof errors, "%s%s", errors[0] ? "; " : "", ds_last_error());
                break;
            }
            c->p.phase = DS_PHASE_RETRY;
            c->p.message = ds_last_error();
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", ds_last_error());
            c->p.message = msg;
            if ((rc = pause_for(c, wait)))
                return rc;
            c->p.message = NULL;
            wait *= 2;
        }
    }
    int64_t kept = file_size(part);
    char tail[DS_PATH_MAX + 128] = "";
    if (kept > 0)
        snprintf(tail, sizeof tail,
                 "; the partial download (%lld bytes) is kept in %s for the next "
                 "fetch to resume",
                 (long long)kept, part);
    return ds_error(last_rc, "%s: %s%s", f->name, errors, tail);
}

static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Unpacks the verified downloads into a staging folder, checks, records and
 * installs it. */
static int install(fctx *c, const ds_entry *e, const ds_manifest *m, const char *root, const char *dl,
                   const char *target)
{
    char stage[DS_PATH_MAX];
    if (snprintf(stage, sizeof stage, "%s/.%s.tmp-XXXXXX", root, e->dir) >= (int)sizeof stage)
        return ds_error(DS_EINVAL, "path too long: %s", root);
    if (!mkdtemp(stage))
        return ds_errno_error(errno, "create the staging folder", stage);
    chmod(stage, 0755);
    int rc = 0;
    ds_record rec = {.dataset = e->name,
                     .manifest = c->o->manifest_name ? (char *)c->o->manifest_name : m->source,
                     .n_downloads = e->n_files};
    rec.downloads = calloc((size_t)e->n_files, sizeof *rec.downloads);
    if (!rec.downloads) {
        rc = ds_error(DS_ENOMEM, "out of memory");
        goto done;
    }
    utc_now(rec.fetched, sizeof rec.fetched);
    for (int i = 0; i < e->n_files && !rc; i++) {
        const ds_file *f = &e->files[i];
        char path[DS_PATH_MAX];
        if ((rc = ds_path_join(path, sizeof path, dl, f->name)))
            break;
        c->p.file = f->name;
        c->p.file_index = i + 1;
        c->p.phase = DS_PHASE_UNPACK;
        c->p.done = 0;
        c->p.total = file_size(path);
        if ((rc = report(c))) {
            rc = ds_error(DS_EINTR, "%s: cancelled", e->name);
            break;
        }
        rc = f->unpack == DS_UNPACK_ARCHIVE ? ds_unpack_archive(path, stage, f->strip, on_unpack, c)
                                            : ds_unpack_copy(path, stage, f->name);
        if (rc && rc != DS_EINTR) {
            char msg[2048];
            snprintf(msg, sizeof msg, "%s", ds_last_error());
            if (rc == DS_EFORMAT)
                rc = ds_error(rc, "unpacking %s: %s (nothing was put in place)", f->name, msg);
            else
                rc = ds_error(rc,
                              "unpacking %s: %s (nothing was put in place; the verified download stays in %s "
                              "and the next fetch unpacks it)",
                              f->name, msg, dl);
        }
        rec.downloads[i] =
            (ds_record_item){.name = f->name, .size = file_size(path), .url = c->used[i] ? c->used[i] : f->urls[0]};
        memcpy(rec.downloads[i].sha256, f->sha256, 65);
    }
    char msg[1024];
    if (!rc && (rc = ds_loader_check(e, stage, msg, sizeof msg)))
        rc = ds_error(DS_EFORMAT, "%s: unpacked, but %s (%s)", e->name, msg,
                      strcmp(e->loader, "none") ? "the loader refuses it" : "an expected file is missing");
    c->p.file = "";
    c->p.phase = DS_PHASE_VERIFY;
    c->p.done = 0;
    c->p.total = -1;
    if (!rc)
        rc = ds_record_write(stage, &rec, on_bytes, c);
    if (!rc)
        rc = ds_install_dir(stage, target);
done:
    if (rc)
        ds_remove_tree(stage);
    free(rec.downloads);
    return rc;
}

int ds_fetch(const ds_entry *e, const ds_manifest *m, const ds_fetch_opts *o, ds_fetch_result *r)
{
    memset(r, 0, sizeof *r);
    fctx c = {.o = o, .p = {.dataset = e->name, .file = "", .file_count = e->n_files, .total = -1}};
    if (!o->root || !o->root[0])
        return ds_error(DS_EINVAL, "no data root given");
    char dl_top[DS_PATH_MAX], dl[DS_PATH_MAX];
    int rc = ds_mkdirs(o->root, 0755);
    if (rc || (rc = ds_path_join(r->dir, sizeof r->dir, o->root, e->dir)) ||
        (rc = ds_path_join(dl_top, sizeof dl_top, o->root, "downloads")) ||
        (rc = ds_path_join(dl, sizeof dl, dl_top, e->name)) || (rc = ds_mkdirs(dl, 0755)))
        return rc;
    int lock = -1;
    if ((rc = take_lock(&c, dl, &lock)))
        return rc;

    ds_state st;
    if (!o->force && (rc = ds_state_of(e, m, o->root, false, &st)) == 0) {
        if (st.kind == DS_VERIFIED || st.kind == DS_PRESENT) {
            r->already = true;
            r->unverified = st.kind == DS_PRESENT;
            goto done;
        }
        if (st.kind == DS_DAMAGED) {
            rc = ds_error(DS_EFORMAT,
                          "%s is there but damaged: %s (remove it, or fetch again "
                          "with --force)",
                          st.dir, st.detail);
            goto done;
        }
    }
    rc = 0;
    if (!(c.used = calloc((size_t)e->n_files, sizeof *c.used))) {
        rc = ds_error(DS_ENOMEM, "out of memory");
        goto done;
    }
    clean_stale_stages(o->root, e->dir);
    for (int i = 0; i < e->n_files && !rc; i++) {
        rc = fetch_file(&c, e, i, dl, r);
        c.p.url = NULL; /* it may point into fetch_file's frame (the mirror's URL) */
    }
    if (!rc)
        rc = install(&c, e, m, o->root, dl, r->dir);
    if (!rc && !o->keep_downloads)
        for (int i = 0; i < e->n_files; i++) {
            char p[DS_PATH_MAX];
            if (!ds_path_join(p, sizeof p, dl, e->files[i].name))
                unlink(p);
        }
    if (!rc) {
        c.p.phase = DS_PHASE_DONE;
        c.p.file = "";
        report(&c);
    }
done:
    for (int i = 0; c.used && i < e->n_files; i++)
        free(c.used[i]);
    free(c.used);
    close(lock);
    return rc;
}
