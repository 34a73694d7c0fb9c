/* The fetch record, DIR/.epochd-fetched (record.h). */
#include "datasets/record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/error.h"
#include "datasets/fsutil.h"
#include "datasets/sha256.h"

void ds_record_free(ds_record *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_downloads; i++) {
        free(r->downloads[i].name);
        free(r->downloads[i].url);
    }
    for (int i = 0; i < r->n_files; i++)
        free(r->files[i].name);
    free(r->downloads);
    free(r->files);
    free(r->dataset);
    free(r->manifest);
    free(r);
}

/* ---- listing the folder's files (relative paths, sorted) ---- */

typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

static int add_name(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return ds_error(DS_ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return ds_error(DS_ENOMEM, "out of memory");
    l->n++;
    return 0;
}

static int list_files(const char *root, const char *rel, name_list *l, int depth)
{
    char path[DS_PATH_MAX];
    int rc = rel[0] ? ds_path_join(path, sizeof path, root, rel) : (snprintf(path, sizeof path, "%s", root), 0);
    if (rc)
        return rc;
    if (depth > 32)
        return ds_error(DS_EFORMAT, "%s: folders nested too deep", path);
    DIR *d = opendir(path);
    if (!d)
        return ds_errno_error(errno, "list", path);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, DS_RECORD_NAME))
            continue;
        char sub[DS_PATH_MAX], full[DS_PATH_MAX];
        if (rel[0] ? ds_path_join(sub, sizeof sub, rel, de->d_name)
                   : (snprintf(sub, sizeof sub, "%s", de->d_name), 0)) {
            rc = DS_EINVAL;
            break;
        }
        if ((rc = ds_path_join(full, sizeof full, root, sub)))
            break;
        struct stat st;
        if (lstat(full, &st) != 0) {
            rc = ds_errno_error(errno, "stat", full);
            break;
        }
        if (strchr(de->d_name, '\t') || strchr(de->d_name, '\n')) {
            rc = ds_error(DS_EFORMAT, "%s: a tab or newline in a file name is not supported", full);
            break;
        }
        if (S_ISDIR(st.st_mode))
            rc = list_files(root, sub, l, depth + 1);
        else if (S_ISREG(st.st_mode))
            rc = add_name(l, sub);
        if (rc)
            break;
    }
    closedir(d);
    return rc;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct hash_progress {
    int (*fn)(void *ctx, int64_t done);
    void *ctx;
    int64_t base;
} hash_progress;

static int hashed(void *ctx, int64_t done)
{
    hash_progress *h = ctx;
    return h->fn ? h->fn(h->ctx, h->base + done) : 0;
}

int ds_record_write(const char *dir, const ds_record *r, int (*progress)(void *ctx, int64_t done), void *ctx)
{
    name_list l = {0};
    int rc = list_files(dir, "", &l, 0);
    char path[DS_PATH_MAX], tmp[DS_PATH_MAX + 8];
    FILE *f = NULL;
    if (rc || (rc = ds_path_join(path, sizeof path, dir, DS_RECORD_NAME)))
        goto done;
    if (l.n > 1)
        qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_names);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "w"))) {
        rc = ds_errno_error(errno, "create", tmp);
        goto done;
    }
    fprintf(f, "epochd-fetched 1\ndataset\t%s\nmanifest\t%s\nfetched\t%s\n", r->dataset, r->manifest, r->fetched);
    for (int i = 0; i < r->n_downloads; i++)
        fprintf(f, "download\t%s\t%lld\t%s\t%s\n", r->downloads[i].name, (long long)r->downloads[i].size,
                r->downloads[i].sha256, r->downloads[i].url ? r->downloads[i].url : "");
    hash_progress hp = {progress, ctx, 0};
    for (int i = 0; i < l.n; i++) {
        char full[DS_PATH_MAX], hex[65];
        struct stat st;
        if ((rc = ds_path_join(full, sizeof full, dir, l.v[i])))
            goto done;
        if (stat(full, &st) != 0) {
            rc = ds_errno_error(errno, "stat", full);
            goto done;
        }
        if ((rc = ds_sha256_file(full, hex, hashed, &hp)))
            goto done;
        hp.base += (int64_t)st.st_size;
        fprintf(f, "file\t%s\t%lld\t%s\n", l.v[i], (long long)st.st_size, hex);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = ds_errno_error(errno, "write", tmp);
        goto done;
    }
    if (fclose(f) != 0) {
        f = NULL;
        rc = ds_errno_error(errno, "write", tmp);
        goto done;
    }
    f = NULL;
    if (rename(tmp, path) != 0)
        rc = ds_errno_error(errno, "rename", tmp);
done:
    if (f) {
        fclose(f);
        unlink(tmp);
    }
    for (int i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return rc;
}

/* ---- reading ---- */

static int push_item(ds_record_item **v, int *n, ds_record_item it)
{
    ds_record_item *nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
    if (!nv)
        return ds_error(DS_ENOMEM, "out of memory");
    nv[(*n)++] = it;
    *v = nv;
    return 0;
}

int ds_record_read(const char *dir, ds_record **out)
{
    *out = NULL;
    char path[DS_PATH_MAX];
    int rc = ds_path_join(path, sizeof path, dir, DS_RECORD_NAME);
    if (rc)
        return rc;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? ds_error(DS_ENOENT, "%s: no fetch record", dir) : ds_errno_error(errno, "read", path);
    ds_record *r = calloc(1, sizeof *r);
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    if (!r) {
        rc = ds_error(DS_ENOMEM, "out of memory");
        goto done;
    }
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (lineno == 1) {
            if (strcmp(line, "epochd-fetched 1") != 0) {
                rc = ds_error(DS_EFORMAT, "%s: not an epochd fetch record", path);
                goto done;
            }
            continue;
        }
        char *f1 = line, *f2 = NULL, *f3 = NULL, *f4 = NULL, *f5 = NULL;
        char **fields[] = {&f2, &f3, &f4, &f5};
        char *p = line;
        for (int k = 0; k < 4 && (p = strchr(p, '\t')); k++) {
            *p++ = '\0';
            *fields[k] = p;
        }
        if (!f2)
            goto bad;
        if (!strcmp(f1, "dataset")) {
            free(r->dataset);
            r->dataset = strdup(f2);
        } else if (!strcmp(f1, "manifest")) {
            free(r->manifest);
            r->manifest = strdup(f2);
        } else if (!strcmp(f1, "fetched")) {
            snprintf(r->fetched, sizeof r->fetched, "%s", f2);
        } else if (!strcmp(f1, "download") || !strcmp(f1, "file")) {
            bool dl = f1[0] == 'd';
            if (!f4 || strlen(f4) != 64 || (dl && !f5))
                goto bad;
            ds_record_item it = {.name = strdup(f2), .size = strtoll(f3, NULL, 10), .url = dl ? strdup(f5) : NULL};
            memcpy(it.sha256, f4, 65);
            if (!it.name || (dl && !it.url) ||
                push_item(dl ? &r->downloads : &r->files, dl ? &r->n_downloads : &r->n_files, it)) {
                free(it.name);
                free(it.url);
                rc = ds_error(DS_ENOMEM, "out of memory");
                goto done;
            }
        }
        continue;
    bad:
        rc = ds_error(DS_EFORMAT, "%s:%d: damaged fetch record", path, lineno);
        goto done;
    }
    if (!r->dataset || !r->manifest)
        rc = ds_error(DS_EFORMAT, "%s: damaged fetch record (no dataset or manifest line)", path);
done:
    free(line);
    fclose(f);
    if (rc) {
        ds_record_free(r);
        return rc;
    }
    *out = r;
    return 0;
}
