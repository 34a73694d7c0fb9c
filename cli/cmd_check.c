/* epochd check: validates spec files (and expands sweeps) without running them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "schema/spec.h"

static const char usage_text[] =
    "usage: epochd check [--no-files] [--data-root DIR]... SPEC.yaml...\n"
    "  Validates each spec; a sweep (matrix:/include:) is expanded and each\n"
    "  combination validated. Problems go to stderr as file:line:col: key: message.\n"
    "  --no-files       do not look at the dataset's files or init_from\n"
    "  --data-root DIR  data.root and model.init_from must lie under DIR (repeatable)\n"
    "exit: 0 all valid, 65 some spec invalid, 66 a file does not exist, 64 usage\n";

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
                if (e->spec->download_missing)
                    printf("; %s will be fetched", eng_dataset_names[e->spec->data.dataset]);
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
        const spec *sp = f->entries[0].spec;
        if (sp->download_missing) /* valid: the dataset is fetched before the run trains */
            printf("; %s is not in %s yet: it will be fetched (data.download)", eng_dataset_names[sp->data.dataset],
                   sp->data.root);
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
    if (!roots) {
        fprintf(stderr, "epochd check: out of memory\n");
        return EX_SOFTWARE;
    }
    static const struct option opts[] = {
        {"no-files", no_argument, NULL, 'n'},
        {"data-root", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int nroots = 0;
    cli_parser p = cli_parser_start("check", usage_text, argc, argv, "", opts);
    for (int c; (c = cli_next(&p)) != -1;) {
        if (c == 'n')
            opt.check_files = false;
        else if (c == 'r')
            roots[nroots++] = optarg;
    }
    cli_arg_count(&p, 1, -1);
    if (p.done) {
        free(roots);
        return p.status;
    }
    opt.data_roots = roots;
    opt.n_data_roots = nroots;
    bool missing = false, invalid = false, internal = false;
    for (int i = 0; i < p.n_args; i++) {
        int r = check_one(p.args[i], &opt);
        missing |= r == EX_NOINPUT;
        invalid |= r == EX_DATAERR;
        internal |= r == EX_SOFTWARE;
    }
    free(roots);
    return internal ? EX_SOFTWARE : missing ? EX_NOINPUT : invalid ? EX_DATAERR : EX_OK;
}
