/* epochd check: validates spec files (and expands sweeps) without running them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "schema/spec.h"

static void check_usage(FILE *f)
{
    fprintf(f, "usage: epochd check [--no-files] [--data-root DIR]... SPEC.yaml...\n"
               "  Validates each spec; a sweep (matrix:/include:) is expanded and each\n"
               "  combination validated. Problems go to stderr as file:line:col: key: message.\n"
               "  --no-files       do not look at the dataset's files or init_from\n"
               "  --data-root DIR  data.root and model.init_from must lie under DIR (repeatable)\n"
               "exit: 0 all valid, 65 some spec invalid, 66 a file does not exist, 64 usage\n");
}

static void print_params(FILE *f, int64_t params)
{
    if (params >= 0)
        fprintf(f, "ok (%lld params)", (long long)params);
    else
        fprintf(f, "ok");
}

/* Checks one file; returns an exit code. */
static int check_one(const char *path, const spec_options *opt)
{
    struct stat st;
    if (stat(path, &st)) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return errno == ENOENT || errno == ENOTDIR ? EX_NOINPUT : EX_DATAERR;
    }
    spec_file *f = NULL;
    if (spec_file_load(path, opt, &f)) {
        fprintf(stderr, "%s: out of memory\n", path);
        return EX_SOFTWARE;
    }
    spec_file_print_diags(stderr, f);
    if (f->is_sweep && f->file_diags.n == 0) {
        int ok = 0;
        printf("%s: sweep of %d combination%s\n", path, f->n_entries, f->n_entries == 1 ? "" : "s");
        for (int i = 0; i < f->n_entries; i++) {
            const spec_entry *e = &f->entries[i];
            printf("  %-24s %s: ", e->name, e->sweep_json ? e->sweep_json : "{}");
            if (e->spec) {
                print_params(stdout, e->spec->params);
                ok++;
            } else {
                printf("invalid (%d problem%s)", e->diags.n, e->diags.n == 1 ? "" : "s");
            }
            printf("\n");
        }
        printf("%s: %d of %d combinations valid\n", path, ok, f->n_entries);
    } else if (spec_file_valid(f)) {
        printf("%s: ", path);
        print_params(stdout, f->entries[0].spec->params);
        printf("\n");
    }
    int rc = spec_file_valid(f) ? EX_OK : EX_DATAERR;
    spec_file_free(f);
    return rc;
}

int cli_cmd_check(int argc, char **argv)
{
    spec_options opt;
    spec_options_default(&opt);
    const char **roots = calloc((size_t)argc + 1, sizeof *roots);
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int nroots = 0, nfiles = 0, rc = EX_OK;
    if (!roots || !files) {
        fprintf(stderr, "epochd check: out of memory\n");
        free(roots);
        free(files);
        return EX_SOFTWARE;
    }
    bool opts = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts && !strcmp(a, "--")) {
            opts = false;
        } else if (opts && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            check_usage(stdout);
            goto done;
        } else if (opts && !strcmp(a, "--no-files")) {
            opt.check_files = false;
        } else if (opts && !strcmp(a, "--data-root")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "epochd check: --data-root needs a directory\n");
                rc = EX_USAGE;
                goto done;
            }
            roots[nroots++] = argv[++i];
        } else if (opts && !strncmp(a, "--data-root=", 12)) {
            roots[nroots++] = a + 12;
        } else if (opts && a[0] == '-' && a[1]) {
            fprintf(stderr, "epochd check: unknown option '%s'\n", a);
            check_usage(stderr);
            rc = EX_USAGE;
            goto done;
        } else {
            files[nfiles++] = a;
        }
    }
    if (!nfiles) {
        check_usage(stderr);
        rc = EX_USAGE;
        goto done;
    }
    opt.data_roots = roots;
    opt.n_data_roots = nroots;
    bool missing = false, invalid = false, internal = false;
    for (int i = 0; i < nfiles; i++) {
        int r = check_one(files[i], &opt);
        missing |= r == EX_NOINPUT;
        invalid |= r == EX_DATAERR;
        internal |= r == EX_SOFTWARE;
    }
    rc = internal ? EX_SOFTWARE : missing ? EX_NOINPUT : invalid ? EX_DATAERR : EX_OK;
done:
    free(roots);
    free(files);
    return rc;
}
