/* The data step of a run before the engine loads it (datasets/prepare.h):
 * an image folder is decoded into its cache, or its cache found, and the
 * wait reported on stderr; the class names go into the checkpoints. Kept
 * out of session.c so that the session stays one call away from it. */
#include "service/data_prep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datasets/error.h"
#include "datasets/prepare.h"
#include "service/error.h"

typedef struct prep_ctx {
    const svc_session_job *job;
    double last;
} prep_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int on_decoded(void *ctx, int64_t done, int64_t total)
{
    prep_ctx *p = ctx;
    double t = now_s();
    if (t - p->last >= 5.0 || done == total) {
        fprintf(stderr, "epochd: decoding %s into its cache: %lld of %lld images\n", p->job->spec->data.root,
                (long long)done, (long long)total);
        p->last = t;
    }
    return p->job->stop && *p->job->stop ? 1 : 0;
}

int svc_prepare_data(const svc_session_job *job, eng_data_desc *d, svc_outcome *out)
{
    if (d->dataset != ENG_DATASET_FOLDER)
        return 0;
    char root[1024];
    prep_ctx p = {job, now_s()};
    ds_prepare_info info;
    double t0 = now_s();
    int rc = ds_cache_root(job->state_dir, root, sizeof root);
    if (!rc)
        rc = ds_prepare_data(d, root, on_decoded, &p, &info);
    if (rc) {
        out->retryable = rc == DS_EIO || rc == DS_ENOSPC || rc == DS_ENOMEM;
        out->err = rc == DS_EINTR    ? SVC_EINTR
                   : rc == DS_ENOENT ? SVC_ENOENT
                   : rc == DS_ENOMEM ? SVC_ENOMEM
                   : out->retryable  ? SVC_EIO
                                     : SVC_EINVAL;
        snprintf(out->error, sizeof out->error, "cannot prepare the image folder: %s", ds_last_error());
        return out->err;
    }
    fprintf(stderr, "epochd: image folder %s: %lld images, %lld classes; %s %s in %.3f s\n", d->root,
            (long long)info.images, (long long)info.classes, info.hit ? "cache found at" : "decoded into", info.cache,
            now_s() - t0);
    return 0;
}

char *svc_classes_json(const spec *sp)
{
    if (!sp->n_class_names)
        return NULL;
    size_t len = 3;
    for (int64_t i = 0; i < sp->n_class_names; i++)
        len += 2 * strlen(sp->class_names[i]) + 3;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    *p++ = '[';
    for (int64_t i = 0; i < sp->n_class_names; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        for (const char *c = sp->class_names[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *p++ = '\\';
            *p++ = (unsigned char)*c < 0x20 ? '?' : *c;
        }
        *p++ = '"';
    }
    *p++ = ']';
    *p = '\0';
    return s;
}
