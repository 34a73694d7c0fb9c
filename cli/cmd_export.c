/* epochd export: a run's trained weights as a safetensors file that PyTorch
 * loads with load_state_dict (parameters, BatchNorm buffers and step
 * counters under the summary's names) - its checkpoint without the
 * optimizer state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "service/error.h"
#include "service/run_spec.h"

static const char usage_text[] =
    "usage: epochd export RUN_ID [--db FILE] [--best] -o FILE.safetensors\n"
    "Writes the run's last (or, with --best, best) checkpoint without the optimizer\n"
    "state, under PyTorch's names: torch's load_state_dict(strict=True) takes it.\n";

static int export_file(const char *src, const db_run *r, const char *spec_text, const char *dst)
{
    eng_st_file *f = NULL;
    eng_st_writer *w = NULL;
    int rc = eng_st_open(src, &f);
    if (rc == 0)
        rc = eng_st_writer_new(&w);
    for (int64_t i = 0; rc == 0 && i < eng_st_count(f); i++) {
        const eng_st_tensor *t = eng_st_at(f, i);
        if (!strncmp(t->name, "optimizer.", 10))
            continue;
        rc = eng_st_add_ref(w, t->name, t->dtype, t->shape, t->ndim, t->data);
    }
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)r->id);
    const char *keys[] = {"epoch", "seed", "best_test_acc", "best_epoch", "spec_sha256", "classes"};
    if (rc == 0)
        rc = eng_st_add_metadata(w, "format", "epochd-weights");
    if (rc == 0)
        rc = eng_st_add_metadata(w, "run", id);
    if (rc == 0)
        rc = eng_st_add_metadata(w, "name", r->name);
    for (size_t i = 0; rc == 0 && i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = eng_st_metadata(f, keys[i]);
        if (v)
            rc = eng_st_add_metadata(w, keys[i], v);
    }
    if (rc == 0 && spec_text)
        rc = eng_st_add_metadata(w, "spec", spec_text);
    if (rc == 0)
        rc = eng_st_write_file(w, dst);
    eng_st_writer_free(w);
    eng_st_close(f);
    return rc;
}

int cli_cmd_export(int argc, char **argv)
{
    const char *db_path = NULL, *out = NULL;
    bool best = false;
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'}, {"best", no_argument, NULL, 'b'},
        {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    cli_parser p = cli_parser_start("export", usage_text, argc, argv, "o:", opts);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case 'd': db_path = optarg; break;
        case 'b': best = true; break;
        case 'o': out = optarg; break;
        }
    }
    if (cli_arg_count(&p, 1, 1) && (!out || !*out))
        cli_bad(&p, "no output file: give -o FILE.safetensors");
    char *end = NULL;
    long long id = p.done ? 0 : strtoll(p.args[0], &end, 10);
    if (!p.done && (*end || id < 1))
        cli_bad(&p, "expected a run id, found '%s'", p.args[0]);
    if (p.done)
        return p.status;
    db *d = NULL;
    int rc = db_open(db_path ? db_path : db_default_path(), 0, &d);
    if (rc < 0) {
        fprintf(stderr, "epochd export: %s\n", db_last_error());
        return cli_exit_status_db(rc);
    }
    db_run *r = NULL;
    rc = db_run_get(d, id, &r);
    if (rc < 0) {
        db_close(d);
        fprintf(stderr, "epochd export: run %lld: %s\n", id, db_last_error());
        return rc == DB_ENOTFOUND ? EX_NOINPUT : cli_exit_status_db(rc);
    }
    /* the spec as it ran (a sweep combination's derived from its file) */
    char *spec_text = NULL;
    rc = svc_run_spec_text(d, r, NULL, &spec_text, NULL);
    db_close(d);
    if (rc < 0) {
        fprintf(stderr, "epochd export: %s\n", svc_last_error());
        db_run_free(r);
        return cli_exit_status(rc);
    }
    if (!r->checkpoint) {
        fprintf(stderr, "epochd export: run %lld (%s, %s) has no checkpoint yet\n", id, r->name,
                db_status_name(r->status));
        db_run_free(r);
        free(spec_text);
        return EX_NOINPUT;
    }
    char src[4096];
    snprintf(src, sizeof src, "%s", r->checkpoint);
    if (best) {
        char *slash = strrchr(src, '/');
        size_t dirlen = slash ? (size_t)(slash - src) + 1 : 0;
        snprintf(src + dirlen, sizeof src - dirlen, "best.safetensors");
        if (access(src, R_OK) < 0) {
            fprintf(stderr, "epochd export: run %lld kept no best checkpoint (%s)\n", id, src);
            db_run_free(r);
            free(spec_text);
            return EX_NOINPUT;
        }
    }
    rc = export_file(src, r, spec_text, out);
    free(spec_text);
    if (rc < 0)
        fprintf(stderr, "epochd export: %s\n", eng_last_error());
    else
        printf("exported run %lld (%s) from %s to %s\n", id, r->name, src, out);
    db_run_free(r);
    return rc < 0 ? cli_exit_status(svc_from_engine(rc)) : EX_OK;
}
