/* epochd summary: the model a spec describes - layers, output shapes,
 * parameter counts and FLOPs - as a table or as JSON. Needs only the spec. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "engine/error.h"
#include "engine/model.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "schema/spec.h"

static json_t *shape_json(const eng_shape *s)
{
    json_t *a = json_array();
    for (int i = 0; a && i < s->ndim; i++)
        json_array_append_new(a, json_integer(s->d[i]));
    return a;
}

static void thousands(int64_t v, char *buf, size_t len)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", (long long)(v < 0 ? -v : v));
    size_t n = strlen(raw), o = 0;
    if (v < 0 && o + 1 < len)
        buf[o++] = '-';
    for (size_t i = 0; i < n && o + 2 < len; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
}

static void print_table(const spec *s, const eng_model *m)
{
    char in[64], sh[64], num[32], fl[32];
    eng_shape input = eng_model_input_shape(m);
    printf("%s: %s on %s %s -> %lld classes\n\n", s->name, eng_template_name(s->model.template_kind),
           eng_dataset_name(s->data.dataset), eng_shape_str(&input, in, sizeof in),
           (long long)eng_model_classes(m));
    printf("%-32s %-16s %-18s %12s %14s\n", "layer", "type", "output shape", "params", "MFLOPs");
    const eng_layer_info *l;
    int n = eng_model_layers(m, &l);
    for (int i = 0; i < n; i++) {
        char name[ENG_NAME_MAX + 40];
        snprintf(name, sizeof name, "%*s%s", 2 * (l[i].depth - 1), "", l[i].name);
        thousands(l[i].params, num, sizeof num);
        snprintf(fl, sizeof fl, "%.3f", (double)l[i].flops / 1e6);
        printf("%-32s %-16s %-18s %12s %14s\n", name, l[i].type, eng_shape_str(&l[i].out, sh, sizeof sh), num, fl);
    }
    thousands(eng_model_param_count(m), num, sizeof num);
    if (s->n_class_names) {
        printf("\nclasses (label: folder):");
        for (int64_t i = 0; i < s->n_class_names; i++)
            printf("%s %lld: %s", i ? "," : "", (long long)i, s->class_names[i]);
        printf("\n");
    }
    printf("\ntrainable parameters: %s\n", num);
    thousands(eng_model_buffer_count(m), num, sizeof num);
    printf("buffers (running statistics): %s\n", num);
    printf("forward: %.2f MFLOPs per sample; training step at batch %lld: about %.2f GFLOPs\n",
           (double)eng_model_flops(m) / 1e6, (long long)s->data.batch_size,
           3.0 * (double)eng_model_flops(m) * (double)s->data.batch_size / 1e9);
}

static int print_json(const spec *s, const eng_model *m)
{
    eng_shape input = eng_model_input_shape(m);
    json_t *root = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I}", "name", s->name, "template",
                             eng_template_name(s->model.template_kind), "dataset", eng_dataset_name(s->data.dataset),
                             "input_shape", shape_json(&input), "classes", (json_int_t)eng_model_classes(m),
                             "params", (json_int_t)eng_model_param_count(m), "buffer_count",
                             (json_int_t)eng_model_buffer_count(m), "flops", (json_int_t)eng_model_flops(m));
    json_t *layers = json_array(), *params = json_array(), *buffers = json_array();
    if (!root || !layers || !params || !buffers) {
        json_decref(root);
        json_decref(layers);
        json_decref(params);
        json_decref(buffers);
        return -1;
    }
    const eng_layer_info *l;
    int n = eng_model_layers(m, &l);
    for (int i = 0; i < n; i++)
        json_array_append_new(layers, json_pack("{s:s, s:s, s:i, s:o, s:I, s:I}", "name", l[i].name, "type",
                                                l[i].type, "depth", l[i].depth, "output_shape",
                                                shape_json(&l[i].out), "params", (json_int_t)l[i].params, "flops",
                                                (json_int_t)l[i].flops));
    const eng_tensor_info *t;
    n = eng_model_params(m, &t);
    for (int i = 0; i < n; i++)
        json_array_append_new(params, json_pack("{s:s, s:o, s:I}", "name", t[i].name, "shape",
                                                shape_json(&t[i].shape), "numel", (json_int_t)t[i].numel));
    n = eng_model_buffers(m, &t);
    for (int i = 0; i < n; i++)
        json_array_append_new(buffers, json_pack("{s:s, s:o, s:I}", "name", t[i].name, "shape",
                                                 shape_json(&t[i].shape), "numel", (json_int_t)t[i].numel));
    if (s->n_class_names) {
        json_t *names = json_array();
        for (int64_t i = 0; names && i < s->n_class_names; i++)
            json_array_append_new(names, json_string(s->class_names[i]));
        json_object_set_new(root, "class_names", names);
    }
    json_object_set_new(root, "layers", layers);
    json_object_set_new(root, "parameters", params);
    json_object_set_new(root, "buffers", buffers);
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(root);
    return rc;
}

static const char usage_text[] =
    "usage: epochd summary [--json] SPEC.yaml\n"
    "The model of each run the spec describes: layers, output shapes, parameter names\n"
    "and counts, FLOPs; --json prints one object per run for scripts.\n";

int cli_cmd_summary(int argc, char **argv)
{
    bool json = false;
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    cli_parser p = cli_parser_start("summary", usage_text, argc, argv, "", opts);
    for (int c; (c = cli_next(&p)) != -1;)
        if (c == 'j')
            json = true;
    cli_arg_count(&p, 1, 1);
    if (p.done)
        return p.status;
    spec_options opt;
    spec_options_default(&opt);
    opt.check_files = false; /* the summary needs the spec, not the data */
    opt.shape_files = true;  /* but folder and npy datasets' shapes and classes are in their files */
    spec_file *sf = NULL;
    if (spec_file_load(p.args[0], &opt, &sf) < 0) {
        fprintf(stderr, "epochd summary: out of memory\n");
        return EX_SOFTWARE;
    }
    if (!spec_file_valid(sf)) {
        spec_file_print_diags(stderr, sf);
        bool missing = sf->n_entries == 0 && sf->sha256[0] == '\0';
        spec_file_free(sf);
        return missing ? EX_NOINPUT : EX_DATAERR;
    }
    int code = EX_OK;
    for (int i = 0; i < sf->n_entries && code == EX_OK; i++) {
        const spec *s = sf->entries[i].spec;
        eng_shape shape;
        int64_t classes;
        eng_model *m = NULL;
        if (eng_dataset_geometry(&s->data, &shape, &classes) < 0 ||
            eng_model_build(&s->model, &shape, classes, NULL, NULL, &m) < 0) {
            fprintf(stderr, "epochd summary: %s\n", eng_last_error());
            code = EX_DATAERR;
            break;
        }
        if (json ? print_json(s, m) < 0 : (print_table(s, m), 0))
            code = EX_IOERR;
        eng_model_free(m);
    }
    spec_file_free(sf);
    return code;
}
