/* The config file's keys for datasets that specs ask to download
 * (`data: {download: true}`): where they go (data_root), a mirror to fetch
 * from first (data_mirror), a manifest whose entries replace the built-in
 * ones of the same name (data_manifest: a lab's private copies), and how a
 * failed fetch is retried (data_fetch_attempts, data_retry_s). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/error.h"
#include "datasets/manifest.h"
#include "service/config_read.h"
#include "service/error.h"

void svc_data_config_free(svc_data_config *d)
{
    if (!d)
        return;
    free(d->root);
    free(d->mirror);
    free(d->manifest_path);
    ds_manifest_free(d->manifest);
    memset(d, 0, sizeof *d);
}

int svc_data_config_defaults(svc_data_config *d)
{
    memset(d, 0, sizeof *d);
    const char *env = getenv("EPOCHD_DATA_ROOT");
    d->root = strdup(env && *env ? env : "data");
    d->fetch_attempts = 5;
    d->retry_s = 30;
    if (!d->root)
        return SVC_ENOMEM;
    return 0;
}

int svc_data_config_copy(svc_data_config *dst, const svc_data_config *src)
{
    *dst = *src;
    dst->root = src->root ? strdup(src->root) : NULL;
    dst->mirror = src->mirror ? strdup(src->mirror) : NULL;
    dst->manifest_path = src->manifest_path ? strdup(src->manifest_path) : NULL;
    dst->manifest = NULL;
    bool ok = (!src->root || dst->root) && (!src->mirror || dst->mirror) && (!src->manifest_path || dst->manifest_path);
    /* the file was valid when it was read; read again, it may fail (then none) */
    if (ok && src->manifest && ds_manifest_load(src->manifest_path, &dst->manifest) == DS_ENOMEM)
        ok = false;
    if (!ok) {
        svc_data_config_free(dst);
        return SVC_ENOMEM;
    }
    return 0;
}

static int set_text(svc_cfg_ctx *x, const ynode *v, const char *key, char **out)
{
    const char *s = svc_cfg_scalar(v);
    if (!s || !*s) {
        svc_cfg_error(x, v, key, "expected %s", !strcmp(key, "data_mirror") ? "a URL" : "a path");
        return -1;
    }
    char *p;
    if (strcmp(key, "data_mirror") && s[0] != '/' && x->dir) { /* paths: from the config file's folder */
        size_t len = strlen(x->dir) + strlen(s) + 2;
        if ((p = malloc(len)))
            snprintf(p, len, "%s/%s", x->dir, s);
    } else {
        p = strdup(s);
    }
    if (!p) {
        x->oom = true;
        return -1;
    }
    free(*out);
    *out = p;
    return 0;
}

bool svc_config_load_data_key(svc_cfg_ctx *x, const char *name, const ynode *v, svc_data_config *d)
{
    if (!strcmp(name, "data_root")) {
        set_text(x, v, name, &d->root);
    } else if (!strcmp(name, "data_mirror")) {
        const char *s = svc_cfg_scalar(v);
        if (s && *s && !strstr(s, "://"))
            svc_cfg_error(x, v, name, "expected a URL (http://, https:// or file://), found %s", s);
        else
            set_text(x, v, name, &d->mirror);
    } else if (!strcmp(name, "data_manifest")) {
        if (set_text(x, v, name, &d->manifest_path) == 0) {
            ds_manifest *m = NULL;
            int rc = ds_manifest_load(d->manifest_path, &m);
            if (rc == DS_ENOMEM)
                x->oom = true;
            else if (rc)
                svc_cfg_error(x, v, name, "%s", ds_last_error());
            ds_manifest_free(d->manifest);
            d->manifest = rc ? NULL : m;
        }
    } else if (!strcmp(name, "data_fetch_attempts")) {
        svc_cfg_int(x, v, name, 1, 1000, &d->fetch_attempts);
    } else if (!strcmp(name, "data_retry_s")) {
        svc_cfg_int(x, v, name, 1, 86400, &d->retry_s);
    } else {
        return false;
    }
    return true;
}
