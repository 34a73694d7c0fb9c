/* The state of a dataset under a data root (state.h). */
#include "datasets/state.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/error.h"
#include "datasets/record.h"
#include "datasets/sha256.h"
#include "engine/dataset.h"
#include "engine/desc.h"
#include "engine/error.h"

const char *ds_state_name(ds_state_kind k)
{
    static const char *const names[] = {"absent", "partial", "present", "verified", "damaged"};
    return (unsigned)k < 5 ? names[k] : "?";
}

int ds_loader_check(const ds_entry *e, const char *dir, char *msg, size_t len)
{
    msg[0] = '\0';
    for (int i = 0; i < e->n_expect; i++) {
        char p[DS_PATH_MAX];
        struct stat st;
        if (ds_path_join(p, sizeof p, dir, e->expect[i]) || stat(p, &st) != 0) {
            snprintf(msg, len, "%s: missing %s", dir, e->expect[i]);
            return DS_EFORMAT;
        }
    }
    static const struct {
        const char *name;
        eng_dataset_kind kind;
    } loaders[] = {{"cifar10", ENG_DATASET_CIFAR10},
                   {"cifar100", ENG_DATASET_CIFAR100},
                   {"mnist", ENG_DATASET_MNIST},
                   {"fashion_mnist", ENG_DATASET_FASHION_MNIST},
                   {"npy", ENG_DATASET_NPY}};
    for (size_t i = 0; i < sizeof loaders / sizeof loaders[0]; i++) {
        if (strcmp(e->loader, loaders[i].name))
            continue;
        eng_data_desc d;
        eng_data_desc_default(&d);
        d.dataset = loaders[i].kind;
        if (snprintf(d.root, sizeof d.root, "%s", dir) >= (int)sizeof d.root) {
            snprintf(msg, len, "%s: path too long", dir);
            return DS_EINVAL;
        }
        int rc = eng_dataset_probe(&d, msg, len);
        if (rc == 0)
            return 0;
        if (!msg[0])
            snprintf(msg, len, "%s", eng_last_error());
        return rc == ENG_ENOMEM ? DS_ENOMEM : DS_EFORMAT;
    }
    return 0;
}

/* Bytes of regular files in downloads/NAME (partial and complete downloads). */
static int64_t pending_bytes(const char *root, const ds_entry *e)
{
    char dl[DS_PATH_MAX], sub[DS_PATH_MAX];
    if (ds_path_join(dl, sizeof dl, root, "downloads") || ds_path_join(sub, sizeof sub, dl, e->name))
        return 0;
    DIR *d = opendir(sub);
    if (!d)
        return 0;
    int64_t sum = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[DS_PATH_MAX];
        struct stat st;
        if (!ds_path_join(p, sizeof p, sub, de->d_name) && stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
            !strstr(de->d_name, ".bad-"))
            sum += (int64_t)st.st_size;
    }
    closedir(d);
    return sum;
}

int ds_state_of(const ds_entry *e, const ds_manifest *m, const char *root, bool hash, ds_state *out)
{
    (void)m;
    memset(out, 0, sizeof *out);
    int rc = ds_path_join(out->dir, sizeof out->dir, root, e->dir);
    if (rc)
        return rc;
    struct stat st;
    if (stat(out->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        out->partial_bytes = pending_bytes(root, e);
        out->kind = out->partial_bytes > 0 ? DS_PARTIAL : DS_ABSENT;
        if (out->kind == DS_PARTIAL) {
            char b[32];
            ds_format_bytes((double)out->partial_bytes, b, sizeof b);
            snprintf(out->detail, sizeof out->detail, "%s downloaded so far; `epochd data fetch %s` resumes", b,
                     e->name);
        }
        return 0;
    }
    char loader_msg[768];
    int loader_rc = ds_loader_check(e, out->dir, loader_msg, sizeof loader_msg);
    ds_record *r = NULL;
    rc = ds_record_read(out->dir, &r);
    if (rc == DS_ENOENT) {
        out->kind = loader_rc ? DS_DAMAGED : DS_PRESENT;
        if (loader_rc)
            snprintf(out->detail, sizeof out->detail, "%s", loader_msg);
        else
            snprintf(out->detail, sizeof out->detail, "not fetched by epochd (no record)%s%s",
                     strcmp(e->loader, "none") ? "; the loader accepts it: " : "",
                     strcmp(e->loader, "none") ? e->loader : "");
        return 0;
    }
    if (rc) {
        out->kind = DS_DAMAGED;
        snprintf(out->detail, sizeof out->detail, "%s", ds_last_error());
        return 0;
    }
    snprintf(out->fetched, sizeof out->fetched, "%s", r->fetched);
    out->kind = DS_VERIFIED;
    /* the record must be of this manifest's files */
    for (int i = 0; i < e->n_files && out->kind == DS_VERIFIED; i++) {
        bool same = false;
        for (int j = 0; j < r->n_downloads; j++)
            same |=
                !strcmp(r->downloads[j].name, e->files[i].name) && !strcmp(r->downloads[j].sha256, e->files[i].sha256);
        if (!same) {
            out->kind = DS_DAMAGED;
            snprintf(out->detail, sizeof out->detail,
                     "fetched from other files than the manifest's %s (%s): fetch "
                     "again with --force",
                     e->files[i].name, e->files[i].sha256);
        }
    }
    for (int i = 0; i < r->n_files && out->kind == DS_VERIFIED; i++) {
        char p[DS_PATH_MAX];
        if (ds_path_join(p, sizeof p, out->dir, r->files[i].name))
            continue;
        if (stat(p, &st) != 0) {
            out->kind = DS_DAMAGED;
            snprintf(out->detail, sizeof out->detail, "missing %s", r->files[i].name);
        } else if ((int64_t)st.st_size != r->files[i].size) {
            out->kind = DS_DAMAGED;
            snprintf(out->detail, sizeof out->detail, "%s: %lld bytes, the record says %lld", r->files[i].name,
                     (long long)st.st_size, (long long)r->files[i].size);
        } else if (hash) {
            char hex[65];
            if (ds_sha256_file(p, hex, NULL, NULL) != 0 || strcmp(hex, r->files[i].sha256)) {
                out->kind = DS_DAMAGED;
                snprintf(out->detail, sizeof out->detail, "%s: SHA-256 differs from the record (changed or damaged)",
                         r->files[i].name);
            }
        }
        out->bytes += r->files[i].size;
    }
    if (out->kind == DS_VERIFIED && loader_rc) {
        out->kind = DS_DAMAGED;
        snprintf(out->detail, sizeof out->detail, "%s", loader_msg);
    }
    if (out->kind == DS_VERIFIED)
        snprintf(out->detail, sizeof out->detail, "%d files%s", r->n_files, hash ? ", SHA-256 checked" : "");
    ds_record_free(r);
    return 0;
}
