/* The experiments folder watcher: uv_fs_event per folder, debounced
 * folder rescans, full rescans, and the settle stage before a file is read. */
#include "service/watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/error.h"
#include "service/log.h"
#include "service/map.h"

#define DEBOUNCE_MS 50
#define RETRY_MS 1000
#define MAX_DEPTH 64
#define TICK_BUDGET_NS 100000000u /* reading and recording files, per settle tick */

typedef struct wsig {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns, ctime_ns;
} wsig;

typedef struct wfile {
    char *path;     /* absolute */
    char *dir;      /* the folder, relative to the root ("" for the root) */
    wsig sig;       /* as last seen */
    wsig done_sig;  /* as when handed on */
    bool handed;    /* handed on at least once */
    bool pending;   /* waiting to settle */
    bool busy_logged;
    uint64_t since; /* when sig last changed (loop ms) */
    uint64_t retry_at;
    unsigned gen;
} wfile;

typedef struct wdir {
    svc_watch *w;
    uv_fs_event_t h;
    char *rel;      /* "" for the root */
    char *parent;   /* NULL for the root */
    dev_t dev;
    ino_t ino;
    unsigned gen;
    bool dirty;
} wdir;

struct svc_watch {
    uv_loop_t *loop;
    char *root;
    size_t root_len;
    svc_watch_opts o;
    svc_watch_cbs cb;
    svc_map files; /* absolute path -> wfile */
    svc_map dirs;  /* relative path -> wdir */
    uv_timer_t debounce, settle, rescan;
    unsigned gen;
    bool full_wanted;
    bool rehand;      /* the next full rescan hands every file on again */
    size_t n_pending;
    int open_handles;
    bool closing;
    bool lease_warned, watch_warned;
    void (*done)(void *ctx);
    void *done_ctx;
};

bool svc_watch_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || name[0] == '.' || name[0] == '#' || name[n - 1] == '~' || name[n - 1] == '#')
        return false;
    if (n > 5 && !strcmp(name + n - 5, ".yaml"))
        return true;
    if (n > 4 && !strcmp(name + n - 4, ".yml"))
        return true;
    return false; /* "4913", "x.swp", "x.tmp", "x.yaml.part" ... */
}

static wsig sig_of(const struct stat *st)
{
    wsig s = {.dev = st->st_dev, .ino = st->st_ino, .size = st->st_size,
              .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
              .ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec};
    return s;
}

static bool sig_eq(const wsig *a, const wsig *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
           a->ctime_ns == b->ctime_ns;
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    size_t o = la;
    if (la && lb)
        p[o++] = '/';
    memcpy(p + o, b, lb + 1);
    return p;
}

const char *svc_watch_root(const svc_watch *w) { return w->root; }

bool svc_watch_covers(const svc_watch *w, const char *path)
{
    return path && !strncmp(path, w->root, w->root_len) && path[w->root_len] == '/';
}

bool svc_watch_has(const svc_watch *w, const char *path)
{
    return path && svc_map_get(&w->files, path) != NULL;
}

size_t svc_watch_pending(const svc_watch *w) { return w->n_pending; }

static void file_free(wfile *f);

static void handle_closed(uv_handle_t *h)
{
    svc_watch *w = h->data;
    if (h->type == UV_FS_EVENT) {
        wdir *d = (wdir *)((char *)h - offsetof(wdir, h));
        free(d->rel);
        free(d->parent);
        free(d);
    }
    if (--w->open_handles == 0 && w->closing) {
        void (*done)(void *) = w->done;
        void *ctx = w->done_ctx;
        for (svc_map_iter it = svc_map_begin(&w->files); svc_map_next(&it);)
            file_free(it.value);
        svc_map_free(&w->files);
        svc_map_free(&w->dirs);
        free(w->root);
        free(w);
        if (done)
            done(ctx);
    }
}

/* ---- files ---- */

static void settle_start(svc_watch *w);

static void file_free(wfile *f)
{
    free(f->path);
    free(f->dir);
    free(f);
}

static void file_remove(svc_watch *w, wfile *f)
{
    svc_map_del(&w->files, f->path);
    if (f->pending)
        w->n_pending--;
    if (f->handed && w->cb.file_gone && !w->closing)
        w->cb.file_gone(w->cb.ctx, f->path);
    svc_log(SVC_LOG_DEBUG, "%s: gone", f->path);
    file_free(f);
}

static void file_seen(svc_watch *w, const char *path, const char *dir, const struct stat *st, unsigned gen)
{
    wsig s = sig_of(st);
    wfile *f = svc_map_get(&w->files, path);
    uint64_t now = uv_now(w->loop);
    if (!f) {
        f = calloc(1, sizeof *f);
        if (f && (f->path = strdup(path)) && (f->dir = strdup(dir)) && svc_map_put(&w->files, path, f) == 0) {
            f->sig = s;
            f->pending = true;
            f->since = now;
            f->gen = gen;
            w->n_pending++;
            svc_log(SVC_LOG_DEBUG, "%s: found, waiting for it to settle", path);
            settle_start(w);
        } else {
            svc_log(SVC_LOG_ERR, "%s: out of memory noting the file", path);
            if (f)
                file_free(f);
        }
        return;
    }
    f->gen = gen;
    if (w->rehand && !f->pending) {
        f->done_sig.size = -1; /* differs from any file's: read it again */
        f->since = now - (uint64_t)w->o.settle_ms;
    }
    if (f->pending) {
        if (!sig_eq(&s, &f->sig)) {
            f->sig = s;
            f->since = now;
        }
    } else if (!sig_eq(&s, &f->done_sig)) {
        if (!sig_eq(&s, &f->sig) || !w->rehand)
            f->since = now;
        f->sig = s;
        f->pending = true;
        f->busy_logged = false;
        w->n_pending++;
        svc_log(SVC_LOG_DEBUG, "%s: changed, waiting for it to settle", path);
        settle_start(w);
    }
}

/* Opens a spec file for reading. A symbolic link is followed when its
 * target lies under the watched folder, or when the link and its target
 * have the same owner (as a web server's SymLinksIfOwnerMatch): whoever can
 * drop a link into the folder must not make the service copy a file they
 * could not read themselves into the database. -1 with *reason set when the
 * file cannot be read (errno ENOENT/ENOTDIR: it is gone). */
static int open_spec(const svc_watch *w, const char *path, char *reason, size_t len)
{
    const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    int fd = open(path, flags | O_NOFOLLOW);
    if (fd >= 0 || errno != ELOOP) {
        if (fd < 0)
            snprintf(reason, len, "cannot read it: %s", strerror(errno));
        return fd;
    }
    struct stat link_st, st;
    char *target = realpath(path, NULL);
    if (lstat(path, &link_st) < 0 || !target) {
        snprintf(reason, len, "cannot follow its symbolic link: %s", strerror(errno));
        free(target);
        return -1;
    }
    bool inside = svc_watch_covers(w, target);
    free(target);
    fd = open(path, flags);
    if (fd < 0) {
        snprintf(reason, len, "cannot read it: %s", strerror(errno));
        return -1;
    }
    if (!inside && (fstat(fd, &st) < 0 || st.st_uid != link_st.st_uid)) {
        close(fd);
        errno = EPERM;
        snprintf(reason, len, "a symbolic link to a file outside %s owned by another user: not followed", w->root);
        return -1;
    }
    return fd;
}

/* Reads a settled file while holding a read lease when the kernel grants
 * one: a lease is refused (EAGAIN) while anyone has the file open for
 * writing, which catches a writer that pauses longer than the settle
 * interval. Returns 1 when read, 0 to keep waiting, -1 when it vanished,
 * 2 when it cannot be read (*buf is the reason). */
static int file_read(svc_watch *w, wfile *f, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    char reason[512];
    int fd = open_spec(w, f->path, reason, sizeof reason);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return -1;
        *buf = strdup(reason);
        return *buf ? 2 : 0;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    wsig s = sig_of(&st);
    uint64_t now = uv_now(w->loop);
    if (!sig_eq(&s, &f->sig)) {
        f->sig = s;
        f->since = now;
        close(fd);
        return 0;
    }
    bool leased = fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
    if (!leased && errno == EAGAIN) {
        if (!f->busy_logged)
            svc_log(SVC_LOG_DEBUG, "%s: still open for writing, waiting", f->path);
        f->busy_logged = true;
        f->since = now;
        close(fd);
        return 0;
    }
    if (!leased && !w->lease_warned) {
        w->lease_warned = true;
        svc_log(SVC_LOG_INFO,
                "cannot take read leases on spec files (%s): a file counts as complete once unchanged for "
                "%lld ms (give the service CAP_LEASE, or write files elsewhere and rename them in)",
                strerror(errno), (long long)w->o.settle_ms);
    }
    size_t cap = (size_t)st.st_size + 1;
    if (cap > w->o.max_bytes + 1)
        cap = w->o.max_bytes + 1;
    char *b = malloc(cap + 1);
    size_t n = 0;
    int rc = 1;
    if (!b) {
        svc_log(SVC_LOG_ERR, "%s: out of memory reading the file", f->path);
        rc = 0;
    }
    while (b && n < cap) {
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            svc_log(SVC_LOG_WARNING, "%s: cannot read: %s", f->path, strerror(errno));
            rc = 0;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (rc == 1 && (fstat(fd, &st) < 0 || (s = sig_of(&st), !sig_eq(&s, &f->sig)))) {
        f->sig = s; /* it changed while we read (no lease): start over */
        f->since = now;
        rc = 0;
    }
    if (leased)
        fcntl(fd, F_SETLEASE, F_UNLCK);
    close(fd);
    if (rc != 1) {
        free(b);
        if (rc == 0)
            f->retry_at = now + RETRY_MS / 4;
        return rc;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 1;
}

static void on_settle(uv_timer_t *t)
{
    svc_watch *w = t->data;
    uint64_t now = uv_now(w->loop), t0 = uv_hrtime();
    for (svc_map_iter it = svc_map_begin(&w->files); svc_map_next(&it);) {
        wfile *f = it.value;
        if (w->closing)
            return;
        if (!f->pending || now < f->retry_at)
            continue;
        /* hundreds of files at once: keep the loop responsive, go on at the next tick */
        if (uv_hrtime() - t0 > TICK_BUDGET_NS)
            break;
        struct stat st;
        if (stat(f->path, &st) < 0 || !S_ISREG(st.st_mode)) {
            file_remove(w, f);
            continue;
        }
        wsig s = sig_of(&st);
        if (!sig_eq(&s, &f->sig)) {
            f->sig = s;
            f->since = now;
            continue;
        }
        if (now - f->since < (uint64_t)w->o.settle_ms)
            continue;
        char *buf;
        size_t len;
        int rc = file_read(w, f, &buf, &len);
        if (rc < 0) {
            file_remove(w, f);
            continue;
        }
        if (rc == 0)
            continue;
        if (rc == 2) /* unreadable: said once per change of the file, not at every tick */
            rc = w->cb.file_unreadable ? w->cb.file_unreadable(w->cb.ctx, f->path, buf) : 0;
        else
            rc = w->cb.file_ready ? w->cb.file_ready(w->cb.ctx, f->path, buf, len) : 0;
        free(buf);
        if (rc < 0) {
            f->retry_at = now + RETRY_MS;
            continue;
        }
        f->pending = false;
        f->handed = true;
        f->done_sig = f->sig;
        w->n_pending--;
    }
    if (w->n_pending == 0)
        uv_timer_stop(&w->settle);
}

static void settle_start(svc_watch *w)
{
    if (w->closing || uv_is_active((uv_handle_t *)&w->settle))
        return;
    uint64_t tick = (uint64_t)(w->o.settle_ms / 4);
    tick = tick < 20 ? 20 : tick > 250 ? 250 : tick;
    uv_timer_start(&w->settle, on_settle, tick, tick);
}

/* ---- folders ---- */

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status);

static void dir_watch(svc_watch *w, wdir *d)
{
    char *abs = join(w->root, d->rel);
    if (!abs)
        return;
    if (uv_is_active((uv_handle_t *)&d->h))
        uv_fs_event_stop(&d->h);
    int rc = uv_fs_event_start(&d->h, on_fs_event, abs, 0);
    if (rc < 0 && !w->watch_warned) {
        w->watch_warned = true;
        svc_log(SVC_LOG_WARNING, "cannot watch %s: %s; changes there are found by the periodic rescan only%s", abs,
                uv_strerror(rc),
                rc == UV_ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
    }
    free(abs);
}

static wdir *dir_add(svc_watch *w, const char *rel, const char *parent, const struct stat *st)
{
    wdir *d = calloc(1, sizeof *d);
    if (!d || !(d->rel = strdup(rel)) || (parent && !(d->parent = strdup(parent)))) {
        if (d) {
            free(d->rel);
            free(d);
        }
        svc_log(SVC_LOG_ERR, "out of memory watching %s/%s", w->root, rel);
        return NULL;
    }
    if (svc_map_put(&w->dirs, rel, d) < 0) {
        free(d->rel);
        free(d->parent);
        free(d);
        svc_log(SVC_LOG_ERR, "out of memory watching %s/%s", w->root, rel);
        return NULL;
    }
    d->w = w;
    d->dev = st->st_dev;
    d->ino = st->st_ino;
    uv_fs_event_init(w->loop, &d->h);
    d->h.data = w;
    w->open_handles++;
    dir_watch(w, d);
    svc_log(SVC_LOG_DEBUG, "watching %s%s%s", w->root, *rel ? "/" : "", rel);
    return d;
}

static bool under(const char *rel, const char *top)
{
    size_t n = strlen(top);
    if (n == 0)
        return true;
    return !strncmp(rel, top, n) && (rel[n] == '\0' || rel[n] == '/');
}

/* Forgets a folder, everything below it, and the files in them. */
static void dir_remove_tree(svc_watch *w, const char *top_in)
{
    char *top = strdup(top_in);
    if (!top)
        return;
    for (svc_map_iter it = svc_map_begin(&w->files); svc_map_next(&it);) {
        wfile *f = it.value;
        if (w->closing)
            break;
        if (under(f->dir, top))
            file_remove(w, f);
    }
    for (svc_map_iter it = svc_map_begin(&w->dirs); svc_map_next(&it);) {
        wdir *d = it.value;
        if (*d->rel && under(d->rel, top)) {
            svc_map_del(&w->dirs, d->rel);
            uv_close((uv_handle_t *)&d->h, handle_closed);
        }
    }
    free(top);
}

static void scan_dir(svc_watch *w, wdir *d, unsigned gen, bool recurse, int depth);

/* One entry of a folder being listed. */
static void scan_entry(svc_watch *w, wdir *d, int dfd, const char *name, unsigned gen, bool recurse, int depth)
{
    struct stat st;
    if (name[0] == '.' || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    char *rel = join(d->rel, name);
    if (!rel)
        return;
    if (S_ISDIR(st.st_mode)) {
        wdir *sub = svc_map_get(&w->dirs, rel);
        if (sub && (sub->ino != st.st_ino || sub->dev != st.st_dev)) {
            /* replaced by another folder of the same name */
            dir_remove_tree(w, rel);
            sub = NULL;
        }
        if (!sub) {
            sub = dir_add(w, rel, d->rel, &st);
            if (sub)
                scan_dir(w, sub, gen, true, depth + 1);
        } else {
            sub->gen = gen;
            if (recurse)
                scan_dir(w, sub, gen, true, depth + 1);
        }
        free(rel);
        return;
    }
    free(rel);
    if (!svc_watch_name_ok(name))
        return;
    if (S_ISLNK(st.st_mode) && fstatat(dfd, name, &st, 0) < 0)
        return; /* a dangling link */
    if (!S_ISREG(st.st_mode))
        return;
    char *dirabs = join(w->root, d->rel);
    char *path = dirabs ? join(dirabs, name) : NULL;
    if (path)
        file_seen(w, path, d->rel, &st, gen);
    free(dirabs);
    free(path);
}

static void scan_dir(svc_watch *w, wdir *d, unsigned gen, bool recurse, int depth)
{
    if (w->closing) /* a callback during this scan closed the watcher */
        return;
    d->gen = gen;
    if (depth > MAX_DEPTH) {
        svc_log(SVC_LOG_WARNING, "%s/%s: folders nested deeper than %d levels are not watched", w->root, d->rel,
                MAX_DEPTH);
        return;
    }
    char *abs = join(w->root, d->rel);
    if (!abs)
        return;
    int dfd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dp = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dp) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        if (e != ENOENT && e != ENOTDIR) {
            /* keep what we know about it rather than call it all deleted */
            svc_log(SVC_LOG_WARNING, "cannot list %s: %s", abs, strerror(e));
            for (svc_map_iter it = svc_map_begin(&w->files); svc_map_next(&it);) {
                wfile *f = it.value;
                if (under(f->dir, d->rel))
                    f->gen = gen;
            }
            for (svc_map_iter it = svc_map_begin(&w->dirs); svc_map_next(&it);) {
                wdir *s = it.value;
                if (under(s->rel, d->rel))
                    s->gen = gen;
            }
        } else if (!*d->rel) {
            svc_log(SVC_LOG_ERR, "the experiments folder %s has gone: %s", abs, strerror(e));
        }
        free(abs);
        return;
    }
    struct stat st;
    if (fstat(dirfd(dp), &st) == 0 && (st.st_ino != d->ino || st.st_dev != d->dev)) {
        /* the folder was replaced (the root, typically): watch the new one */
        d->ino = st.st_ino;
        d->dev = st.st_dev;
        dir_watch(w, d);
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(dp)) != NULL)
        scan_entry(w, d, dirfd(dp), de->d_name, gen, recurse, depth);
    closedir(dp);
    free(abs);
}

/* After a listing of `top` (a folder, or "" with full): forgets files and
 * folders that the listing did not see. */
static void sweep(svc_watch *w, const char *top, unsigned gen, bool full)
{
    for (svc_map_iter it = svc_map_begin(&w->files); svc_map_next(&it);) {
        wfile *f = it.value;
        if (w->closing)
            return;
        if (f->gen != gen && (full || !strcmp(f->dir, top)))
            file_remove(w, f);
    }
    /* collect first: dir_remove_tree removes other entries */
    size_t n = 0;
    char **gone = malloc((w->dirs.n + 1) * sizeof *gone);
    if (!gone)
        return;
    for (svc_map_iter it = svc_map_begin(&w->dirs); svc_map_next(&it);) {
        wdir *d = it.value;
        if (d->parent && d->gen != gen && (full || !strcmp(d->parent, top)))
            if ((gone[n] = strdup(d->rel)))
                n++;
    }
    for (size_t i = 0; i < n; i++) {
        if (svc_map_get(&w->dirs, gone[i]))
            dir_remove_tree(w, gone[i]);
        free(gone[i]);
    }
    free(gone);
}

static void full_rescan(svc_watch *w)
{
    w->full_wanted = false;
    unsigned gen = ++w->gen;
    bool rehand = w->rehand;
    wdir *root = svc_map_get(&w->dirs, "");
    if (root)
        scan_dir(w, root, gen, true, 0);
    sweep(w, "", gen, true);
    w->rehand = false;
    if (rehand)
        svc_log(SVC_LOG_DEBUG, "every spec file is read again");
    for (svc_map_iter it = svc_map_begin(&w->dirs); svc_map_next(&it);)
        ((wdir *)it.value)->dirty = false;
    svc_log(SVC_LOG_DEBUG, "rescan of %s: %zu spec files, %zu folders, %zu settling", w->root, w->files.n,
            w->dirs.n, w->n_pending);
    if (w->cb.scan_done)
        w->cb.scan_done(w->cb.ctx);
}

static void on_debounce(uv_timer_t *t)
{
    svc_watch *w = t->data;
    if (w->closing)
        return;
    if (w->full_wanted) {
        full_rescan(w);
        return;
    }
    size_t n = 0;
    char **dirty = malloc((w->dirs.n + 1) * sizeof *dirty);
    if (!dirty) {
        full_rescan(w);
        return;
    }
    for (svc_map_iter it = svc_map_begin(&w->dirs); svc_map_next(&it);) {
        wdir *d = it.value;
        if (d->dirty && (dirty[n] = strdup(d->rel)))
            n++;
        d->dirty = false;
    }
    for (size_t i = 0; i < n; i++) {
        wdir *d = svc_map_get(&w->dirs, dirty[i]);
        if (d) {
            unsigned gen = ++w->gen;
            scan_dir(w, d, gen, false, 0);
            sweep(w, dirty[i], gen, false);
        }
        free(dirty[i]);
    }
    free(dirty);
}

static void debounce(svc_watch *w)
{
    /* not restarted by later events: a steady stream of events must not
     * postpone the rescan forever */
    if (!w->closing && !uv_is_active((uv_handle_t *)&w->debounce))
        uv_timer_start(&w->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)events;
    svc_watch *w = h->data;
    wdir *d = (wdir *)((char *)h - offsetof(wdir, h));
    if (status < 0) {
        svc_log(SVC_LOG_WARNING, "watch of %s%s%s: %s; rescanning", w->root, *d->rel ? "/" : "", d->rel,
                uv_strerror(status));
        w->full_wanted = true;
    } else {
        svc_log(SVC_LOG_DEBUG, "event in %s%s%s: %s", w->root, *d->rel ? "/" : "", d->rel,
                filename ? filename : "(no name)");
        d->dirty = true;
    }
    debounce(w);
}

static void on_rescan_timer(uv_timer_t *t)
{
    svc_watch *w = t->data;
    w->full_wanted = true;
    debounce(w);
}

void svc_watch_rescan(svc_watch *w, bool all)
{
    w->full_wanted = true;
    w->rehand |= all;
    debounce(w);
}

void svc_watch_set_opts(svc_watch *w, const svc_watch_opts *o)
{
    w->o = *o;
    uv_timer_stop(&w->rescan);
    if (o->rescan_interval_ms > 0)
        uv_timer_start(&w->rescan, on_rescan_timer, (uint64_t)o->rescan_interval_ms,
                       (uint64_t)o->rescan_interval_ms);
    if (w->n_pending) {
        uv_timer_stop(&w->settle);
        settle_start(w);
    }
}

int svc_watch_new(uv_loop_t *loop, const char *root, const svc_watch_opts *o, const svc_watch_cbs *cbs,
                  svc_watch **out)
{
    *out = NULL;
    char *real = realpath(root, NULL);
    if (!real)
        return svc_error(errno == ENOMEM ? SVC_ENOMEM : SVC_ENOENT, "cannot watch %s: %s", root, strerror(errno));
    struct stat st;
    errno = 0;
    if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
        int rc = svc_error(SVC_ENOENT, "cannot watch %s: %s", root, errno ? strerror(errno) : "not a folder");
        free(real);
        return rc;
    }
    svc_watch *w = calloc(1, sizeof *w);
    if (!w) {
        free(real);
        return svc_error(SVC_ENOMEM, "out of memory watching %s", root);
    }
    w->loop = loop;
    w->root = real;
    w->root_len = strlen(real);
    if (w->root_len == 1)
        w->root_len = 0; /* "/": every absolute path is under it */
    w->cb = *cbs;
    svc_map_init(&w->files);
    svc_map_init(&w->dirs);
    uv_timer_t *timers[] = {&w->debounce, &w->settle, &w->rescan};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = w;
        w->open_handles++;
    }
    if (!dir_add(w, "", NULL, &st)) {
        svc_watch_close(w, NULL, NULL);
        return svc_error(SVC_ENOMEM, "out of memory watching %s", root);
    }
    svc_watch_set_opts(w, o);
    svc_watch_rescan(w, false);
    *out = w;
    return 0;
}

void svc_watch_close(svc_watch *w, void (*done)(void *ctx), void *ctx)
{
    if (!w || w->closing)
        return;
    w->closing = true;
    w->done = done;
    w->done_ctx = ctx;
    /* Files are freed with the watcher, once the last handle has closed: a
     * callback (a fatal error in file_ready, say) may close the watcher while
     * on_settle or sweep walks the files, and they must find them intact.
     * Those walks stop at `closing`; nothing is handed on after it. */
    for (svc_map_iter it = svc_map_begin(&w->dirs); svc_map_next(&it);)
        uv_close((uv_handle_t *)&((wdir *)it.value)->h, handle_closed);
    svc_map_free(&w->dirs);
    uv_close((uv_handle_t *)&w->debounce, handle_closed);
    uv_close((uv_handle_t *)&w->settle, handle_closed);
    uv_close((uv_handle_t *)&w->rescan, handle_closed);
}
