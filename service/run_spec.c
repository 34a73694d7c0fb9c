/* A run's spec text: stored, or derived from its sweep file (run_spec.h). */
#include "service/run_spec.h"

#include <stdlib.h>
#include <string.h>

#include "service/error.h"

int svc_run_spec_text(db *d, const db_run *r, const spec_options *opt, char **out, size_t *len)
{
    *out = NULL;
    if (len)
        *len = 0;
    if (r->spec) {
        size_t n = strlen(r->spec);
        if (!(*out = malloc(n + 1)))
            return svc_error(SVC_ENOMEM, "out of memory copying run %lld's spec", (long long)r->id);
        memcpy(*out, r->spec, n + 1);
        if (len)
            *len = n;
        return 0;
    }
    if (!r->spec_file_sha256)
        return 0;
    if (!r->sweep)
        return svc_error(SVC_EINVAL, "run %lld names a spec file but no sweep values", (long long)r->id);
    char *file = NULL;
    size_t file_len = 0;
    int rc = db_spec_text_get(d, r->spec_file_sha256, &file, &file_len);
    if (rc < 0)
        return svc_error(svc_from_db(rc), "run %lld: its sweep file's text: %s", (long long)r->id, db_last_error());
    char err[600], sha[65];
    size_t n = 0;
    rc = spec_sweep_combination(r->spec_path, file, file_len, r->sweep, opt, out, &n, err, sizeof err);
    free(file);
    if (rc == SPEC_ENOMEM)
        return svc_error(SVC_ENOMEM, "out of memory deriving run %lld's spec from its sweep file", (long long)r->id);
    if (rc)
        return svc_error(SVC_EINVAL, "run %lld: its sweep file does not give its combination: %s", (long long)r->id,
                         err);
    spec_sha256_hex(*out, n, sha);
    if (r->spec_sha256 && strcmp(sha, r->spec_sha256) != 0) {
        free(*out);
        *out = NULL;
        return svc_error(SVC_EINVAL,
                         "run %lld: the spec derived from its sweep file has SHA-256 %.12s..., not its identity "
                         "%.12s... (the file was expanded differently when it was queued)",
                         (long long)r->id, sha, r->spec_sha256);
    }
    if (len)
        *len = n;
    return 0;
}
