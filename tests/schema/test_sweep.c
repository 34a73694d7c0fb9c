/* Sweeps: matrix/include expansion, names, per-combination validation and
 * locations, identities that only change with the combination, limits. */
#include <errno.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "helpers.h"

static spec_file *load_fixture(const char *name)
{
    spec_options o = test_opts();
    spec_file *f = NULL;
    assert_int_equal(spec_file_load(fixture(name), &o, &f), 0);
    return f;
}

static void test_expansion(void **state)
{
    (void)state;
    spec_file *f = load_fixture("sweep.yaml");
    assert_true(f->is_sweep);
    assert_int_equal(f->file_diags.n, 0);
    assert_int_equal(f->n_entries, 5);
    static const char *const names[] = {"mixer_p4_c128", "mixer_p4_c192", "mixer_p5_c128", "mixer_p5_c192",
                                        "mixer_p8_c256"};
    static const char *const json[] = {
        "{\"model.patch_size\":4,\"model.hidden\":128}", "{\"model.patch_size\":4,\"model.hidden\":192}",
        "{\"model.patch_size\":5,\"model.hidden\":128}", "{\"model.patch_size\":5,\"model.hidden\":192}",
        "{\"model.patch_size\":8,\"model.hidden\":256,\"train.optimizer.lr\":0.01}"};
    static const int64_t patch[] = {4, 4, 5, 5, 8}, hidden[] = {128, 192, 128, 192, 256};
    for (int i = 0; i < 5; i++) {
        const spec_entry *e = &f->entries[i];
        assert_string_equal(e->name, names[i]);
        assert_string_equal(e->sweep_json, json[i]);
        if (patch[i] == 5) {
            assert_null(e->spec);
            continue;
        }
        assert_non_null(e->spec);
        assert_string_equal(e->spec->name, names[i]);
        assert_string_equal(e->spec->sweep_json, json[i]);
        assert_int_equal(e->spec->model.patch_size, patch[i]);
        assert_int_equal(e->spec->model.hidden, hidden[i]);
        assert_int_equal(e->spec->model.depth, 2);
        assert_true(e->spec->train.lr == (i == 4 ? 0.01f : 1.0e-3f));
        assert_int_equal(e->spec->train.epochs, 5);
        assert_true(e->spec->params > 0);
        /* the identity is the SHA-256 of the stored effective YAML */
        char sha[65];
        spec_sha256_hex(e->spec->text, e->spec->text_len, sha);
        assert_string_equal(e->spec->sha256, sha);
        assert_string_equal(e->sha256, sha);
        assert_string_not_equal(sha, f->sha256);
        assert_null(strstr(e->spec->text, "matrix"));
        assert_null(strstr(e->spec->text, "include"));
    }
    /* the invalid combinations: located at the matrix value, with their values */
    char expect[2048];
    const char *p = fixture("sweep.yaml");
    snprintf(expect, sizeof expect,
             "%s:11:25: model.patch_size: expected a divisor of the 32x32 input, found 5 [model.patch_size=5, "
             "model.hidden=128]\n"
             "%s:11:25: model.patch_size: expected a divisor of the 32x32 input, found 5 [model.patch_size=5, "
             "model.hidden=192]\n",
             p, p);
    assert_diags(f, expect);
    assert_false(spec_file_valid(f));
    spec_file_free(f);
}

/* A combination's text is a spec of its own that means the same. */
static void test_text_roundtrip(void **state)
{
    (void)state;
    const char *files[] = {"sweep.yaml", "seed_compare.yaml"};
    for (int k = 0; k < 2; k++) {
        spec_file *f = load_fixture(files[k]);
        for (int i = 0; i < f->n_entries; i++) {
            const spec *s = f->entries[i].spec;
            if (!s)
                continue;
            spec_options o = test_opts();
            spec_file *g = NULL;
            assert_int_equal(spec_file_load_buffer(fixture("x.yaml"), s->text, s->text_len, &o, &g), 0);
            assert_diags(g, "");
            assert_false(g->is_sweep);
            const spec *t = g->entries[0].spec;
            assert_string_equal(t->name, s->name);
            assert_string_equal(t->sha256, s->sha256); /* the bytes are the same */
            assert_memory_equal(&t->data, &s->data, sizeof s->data);
            assert_memory_equal(&t->train, &s->train, sizeof s->train);
            assert_int_equal(t->model.template_kind, s->model.template_kind);
            assert_int_equal(t->model.patch_size, s->model.patch_size);
            assert_int_equal(t->model.hidden, s->model.hidden);
            assert_int_equal(t->model.n_channels, s->model.n_channels);
            if (s->model.n_channels)
                assert_memory_equal(t->model.channels, s->model.channels, (size_t)s->model.n_channels * 8);
            assert_int_equal(t->model.head, s->model.head);
            assert_int_equal(t->params, s->params);
            spec_file_free(g);
        }
        spec_file_free(f);
    }
}

/* The seed's six experiments as one file, with the seed's PyTorch parameter counts (README.md). */
static void test_seed_comparison(void **state)
{
    (void)state;
    spec_file *f = load_fixture("seed_compare.yaml");
    assert_diags(f, "");
    assert_true(spec_file_valid(f));
    static const char *const names[] = {"normal_cnn",   "residual_cnn", "mlp_mixer_S4",
                                        "mlp_mixer_S2", "mlp_mixer_B4", "mlp_mixer_B2"};
    static const int64_t params[] = {1183322, 1134026, 273674, 1062026, 698186, 1756106};
    assert_int_equal(f->n_entries, 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(f->entries[i].spec->name, names[i]);
        assert_int_equal(f->entries[i].spec->params, params[i]);
        assert_int_equal(f->entries[i].spec->train.epochs, 600);
        assert_true(f->entries[i].spec->train.warmup_epochs == 2.0f);
    }
    spec_file_free(f);
}

static const char *const BASE = "# base\n"
                                "data: {dataset: cifar10, root: /c}\n"
                                "model: {template: mlp_mixer, patch_size: 4, hidden: 32, depth: 2}\n"
                                "train: {epochs: 5}\n";

static spec_file *load_sweep(const char *base, const char *sweep)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "%s%s", base, sweep);
    spec_options o = test_opts();
    spec_file *f = NULL;
    assert_int_equal(spec_file_load_buffer("/t/s.yaml", yaml, strlen(yaml), &o, &f), 0);
    return f;
}

static const char *sha_of(const spec_file *f, const char *json)
{
    for (int i = 0; i < f->n_entries; i++)
        if (!strcmp(f->entries[i].sweep_json, json))
            return f->entries[i].sha256;
    fail_msg("no combination %s", json);
    return NULL;
}

static void test_identity(void **state)
{
    (void)state;
    spec_file *a = load_sweep(BASE, "name: p{model.patch_size}\nmatrix: {model.patch_size: [4, 2]}\n");
    spec_file *b = load_sweep(BASE, "name: p{model.patch_size}\nmatrix: {model.patch_size: [4, 2, 8]}\n");
    spec_file *c = load_sweep(BASE, "matrix:\n  model.patch_size: [2, 4]\nname: 'p{model.patch_size}'\n");
    /* a different layout and comments, the same tree */
    spec_file *d = load_sweep("data:\n  dataset: cifar10  # c\n  root: /c\nmodel:\n  template: mlp_mixer\n"
                              "  patch_size: 16\n  hidden: 32\n  depth: 2\ntrain:\n  epochs: 5\n",
                              "matrix: {model.patch_size: [2, 4]}\nname: p{model.patch_size}\n");
    /* a swept key set to the base's own value changes nothing */
    spec_file *e = load_sweep(BASE, "name: p{model.patch_size}\nmatrix: {model.patch_size: [4, 2], model.depth: [2]}\n");
    /* a changed base changes every combination */
    spec_file *g = load_sweep("data: {dataset: cifar10, root: /c}\n"
                              "model: {template: mlp_mixer, patch_size: 4, hidden: 32, depth: 2}\n"
                              "train: {epochs: 6}\n",
                              "name: p{model.patch_size}\nmatrix: {model.patch_size: [4, 2]}\n");
    /* so does another name */
    spec_file *h = load_sweep(BASE, "name: q{model.patch_size}\nmatrix: {model.patch_size: [4, 2]}\n");
    assert_int_equal(a->n_entries, 2);
    assert_int_equal(b->n_entries, 3);
    const char *j4 = "{\"model.patch_size\":4}", *j2 = "{\"model.patch_size\":2}";
    assert_string_not_equal(sha_of(a, j4), sha_of(a, j2));
    assert_string_equal(sha_of(a, j4), sha_of(b, j4));
    assert_string_equal(sha_of(a, j2), sha_of(b, j2));
    assert_string_equal(sha_of(a, j4), sha_of(c, j4));
    assert_string_equal(sha_of(a, j2), sha_of(c, j2));
    assert_string_equal(sha_of(a, j2), sha_of(d, j2));
    assert_string_equal(sha_of(a, j4), sha_of(d, j4));
    assert_string_equal(sha_of(a, j4), e->entries[0].sha256);
    assert_string_equal(sha_of(a, j2), e->entries[1].sha256);
    assert_string_not_equal(sha_of(a, j4), sha_of(g, j4));
    assert_string_not_equal(sha_of(a, j2), sha_of(g, j2));
    assert_string_not_equal(sha_of(a, j2), sha_of(h, j2));
    /* the file identity itself follows the bytes */
    assert_string_not_equal(a->sha256, b->sha256);
    assert_string_equal(a->entries[0].spec->text,
                        "data:\n  dataset: cifar10\n  root: /c\n"
                        "model:\n  template: mlp_mixer\n  patch_size: 4\n  hidden: 32\n  depth: 2\n"
                        "train:\n  epochs: 5\nname: \"p4\"\n");
    spec_file_free(a);
    spec_file_free(b);
    spec_file_free(c);
    spec_file_free(d);
    spec_file_free(e);
    spec_file_free(g);
    spec_file_free(h);
    /* names: the file name and the values when name: is absent (first in the text) */
    a = load_sweep(BASE, "matrix: {model.patch_size: [4, 2], model.depth: [2]}\n");
    assert_string_equal(a->entries[0].name, "s_patch_size4_depth2");
    assert_string_equal(a->entries[1].name, "s_patch_size2_depth2");
    const char *head = "name: \"s_patch_size2_depth2\"\ndata:\n";
    assert_memory_equal(a->entries[1].text, head, strlen(head));
    spec_file_free(a);
}

static void test_include_and_new_keys(void **state)
{
    (void)state;
    /* keys the base lacks are created (maps on the way too) */
    spec_file *f = load_sweep(BASE, "include:\n  - {train.optimizer.lr: 0.01, seed: 3}\n  - {data.limit.train: 100}\n");
    assert_diags(f, "");
    assert_int_equal(f->n_entries, 2);
    assert_true(f->entries[0].spec->train.lr == 0.01f);
    assert_int_equal(f->entries[0].spec->train.seed, 3);
    assert_int_equal(f->entries[1].spec->data.limit_train, 100);
    assert_string_equal(f->entries[0].name, "s_lr0.01_seed3");
    assert_string_equal(f->entries[1].name, "s_train100");
    assert_non_null(strstr(f->entries[0].spec->text, "train:\n  epochs: 5\n  optimizer:\n    lr: 0.01\n"));
    spec_file_free(f);
    /* seeds as a sweep */
    f = load_sweep(BASE, "name: \"m{seed}\"\nmatrix: {seed: [1, 2, 3]}\n");
    assert_diags(f, "");
    assert_int_equal(f->n_entries, 3);
    for (int i = 0; i < 3; i++) {
        char n[8];
        snprintf(n, sizeof n, "m%d", i + 1);
        assert_string_equal(f->entries[i].name, n);
        assert_int_equal(f->entries[i].spec->train.seed, (uint64_t)(i + 1));
    }
    spec_file_free(f);
    /* a whole section as a value; a name placeholder from the base */
    f = load_sweep(BASE, "name: \"{data.dataset}_{train.schedule.name}\"\n"
                         "matrix:\n  train.schedule: [{name: cosine}, {name: step, step_epochs: 2}]\n");
    assert_diags(f, "");
    assert_string_equal(f->entries[0].name, "cifar10_cosine");
    assert_string_equal(f->entries[1].name, "cifar10_step");
    assert_string_equal(f->entries[1].sweep_json, "{\"train.schedule\":{\"name\":\"step\",\"step_epochs\":2}}");
    assert_int_equal(f->entries[1].spec->train.schedule, ENG_SCHED_STEP);
    spec_file_free(f);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *sweep, *diags;
    } cases[] = {
        {"matrix: [1, 2]\n", "/t/s.yaml:5:9: matrix: expected a map of key paths to lists of values, like "
                             "{model.patch_size: [4, 2]}, found a list\n"},
        {"matrix: {model.hidden: 128}\n", "/t/s.yaml:5:24: matrix.model.hidden: expected a non-empty list of values, "
                                          "found 128 (write [value] for a single value)\n"},
        {"matrix: {model.hidden: []}\n",
         "/t/s.yaml:5:24: matrix.model.hidden: expected a non-empty list of values, found an empty list\n"},
        {"matrix: {\"model..x\": [1]}\n",
         "/t/s.yaml:5:10: matrix: expected a key path like model.patch_size, found 'model..x'\n"},
        {"matrix: {name: [a, b]}\n",
         "/t/s.yaml:5:10: matrix: name cannot be swept (put placeholders like {model.patch_size} in name: "
         "instead)\n"},
        {"matrix: {model.template.x: [1]}\n",
         "/t/s.yaml:5:10: matrix.model.template.x: cannot set model.template.x: model.template is not a map in "
         "this spec\n"},
        {"matrix: {model: [{template: mlp}], model.hidden: [1]}\n",
         "/t/s.yaml:5:36: matrix.model.hidden: overlaps the swept key model\n"},
        {"matrix: {a: [1,2,3,4,5,6,7,8,9,10,11], b: [1,2,3,4,5,6,7,8,9,10,11], c: [1,2,3,4,5,6,7,8,9,10,11]}\n",
         "/t/s.yaml:5:9: matrix: the sweep has more than 1024 combinations (limit)\n"},
        {"include: [5]\n",
         "/t/s.yaml:5:11: include[0]: expected a map of key paths to values, like {model.patch_size: 8}\n"},
        {"include: {a: 1}\n", "/t/s.yaml:5:10: include: expected a non-empty list of maps of key paths to values, "
                              "like [{model.patch_size: 8, model.hidden: 256}]\n"},
        {"include: [{model.hidden: 8, model: {}}]\n",
         "/t/s.yaml:5:29: include[0]: model overlaps model.hidden\n"},
        /* per combination */
        {"name: \"m_{model.hiden}\"\nmatrix: {model.hidden: [8, 16]}\n",
         "/t/s.yaml:5:7: name: placeholder {model.hiden} is neither a swept key nor a key of the spec (did you "
         "mean {model.hidden}?) [model.hidden=8]\n"
         "/t/s.yaml:5:7: name: placeholder {model.hiden} is neither a swept key nor a key of the spec (did you "
         "mean {model.hidden}?) [model.hidden=16]\n"},
        {"name: \"m_{model.hidden\"\ninclude: [{seed: 1}]\n",
         "/t/s.yaml:5:7: name: a placeholder opened with { is not closed with } [seed=1]\n"},
        {"name: fixed\nmatrix: {model.hidden: [8, 16]}\n",
         "/t/s.yaml:5:7: name: this combination has the name of combination 1 (fixed): put the swept values in "
         "name:, like {model.patch_size}\n"},
        {"matrix: {model.hidden: [8]}\ninclude: [{model.hidden: 8}]\n",
         "/t/s.yaml:6:11: include: this combination repeats combination 1 (s_hidden8)\n"},
        {"matrix: {model.hidden: [8, 0]}\n",
         "/t/s.yaml:5:28: model.hidden: expected an integer in [1, 16777216], found 0 [model.hidden=0]\n"},
        {"include: [{train.epochs.x: 1}]\n",
         "/t/s.yaml:5:12: train.epochs.x: cannot set train.epochs.x: train.epochs is not a map in this spec "
         "[train.epochs.x=1]\n"},
        {"model: {}\nmatrix: {seed: [1]}\n", "/t/s.yaml:5:1: model: duplicate key (first given at line 3, column 1)\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spec_file *f = load_sweep(BASE, cases[i].sweep);
        assert_true(f->is_sweep);
        assert_diags(f, cases[i].diags);
        assert_false(spec_file_valid(f));
        spec_file_free(f);
    }
    /* a limit of 4: 2x2 plus an include is 5 */
    spec_options o = test_opts();
    o.max_combinations = 4;
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "%smatrix: {seed: [1, 2], model.hidden: [8, 16]}\ninclude: [{seed: 9}]\n", BASE);
    spec_file *f = NULL;
    assert_int_equal(spec_file_load_buffer("/t/s.yaml", yaml, strlen(yaml), &o, &f), 0);
    assert_diags(f, "/t/s.yaml:5:9: matrix: the sweep has 5 combinations, more than the limit of 4\n");
    assert_int_equal(f->n_entries, 0);
    spec_file_free(f);
    /* a problem of the base is every combination's problem */
    f = load_sweep("data: {dataset: cifar10, root: /c, batch_size: 0}\nmodel: {template: mlp_mixer}\n",
                   "matrix: {seed: [1, 2]}\n");
    assert_diags(f, "/t/s.yaml:1:48: data.batch_size: expected an integer in [1, 1048576], found 0 [seed=1]\n"
                    "/t/s.yaml:1:48: data.batch_size: expected an integer in [1, 1048576], found 0 [seed=2]\n");
    spec_file_free(f);
}

static void test_many_combinations(void **state)
{
    (void)state;
    struct timespec t0, t1; /* CPU time: not inflated by other processes on a loaded machine */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    spec_file *f = load_sweep(BASE, "name: \"r{seed}_{train.epochs}\"\n"
                                    "matrix: {seed: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,"
                                    "24,25,26,27,28,29,30,31], train.epochs: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
                                    "17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32]}\n");
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    assert_diags(f, "");
    assert_int_equal(f->n_entries, 1024);
    assert_string_equal(f->entries[1023].name, "r31_32");
    assert_true((double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec) < 20.0 * TEST_TIME_SCALE);
    spec_file_free(f);
}

/* A sweep's init_from is read once, not once per combination (issue 10,
 * defect 9: a large init_from was read 16 times for 16 combinations). The
 * opens are counted by inotify, outside the code under test; a file that
 * does not fit the model is still reported for every combination. */
static int count_opens(int ino)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int opens = 0;
    for (;;) {
        ssize_t n = read(ino, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            opens += (ev->mask & IN_OPEN) != 0;
            p += sizeof *ev + ev->len;
        }
    }
    return opens;
}

static void write_weights(const char *path, int64_t out_features)
{
    eng_st_writer *w = NULL;
    assert_int_equal(eng_st_writer_new(&w), 0);
    float zero[64] = {0};
    const int64_t ws[2] = {out_features, 4}, bs[1] = {out_features};
    assert_int_equal(eng_st_add(w, "1.weight", ENG_ST_F32, ws, 2, zero), 0);
    assert_int_equal(eng_st_add(w, "1.bias", ENG_ST_F32, bs, 1, zero), 0);
    assert_int_equal(eng_st_write_file(w, path), 0);
    eng_st_writer_free(w);
}

static void test_init_from_read_once(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_sweep_XXXXXX", path[64], yaml[1024];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    for (int good = 1; good >= 0; good--) {
        write_weights(path, good ? 4 : 3);
        snprintf(yaml, sizeof yaml,
                 "name: \"s{seed}\"\n"
                 "data: {dataset: synthetic, synthetic: {shape: [1, 2, 2], classes: 4, train: 8, test: 8}}\n"
                 "model: {template: sequential, layers: [{flatten: {}}, {linear: {out: 4}}], init_from: %s}\n"
                 "matrix: {seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]}\n",
                 path);
        int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        assert_true(ino >= 0);
        /* closes too: identical successive events (open, open) would be coalesced into one */
        assert_true(inotify_add_watch(ino, path, IN_OPEN | IN_CLOSE_NOWRITE) >= 0);
        spec_options o;
        spec_options_default(&o);
        spec_file *f = load_opts(yaml, &o);
        int opens = count_opens(ino);
        close(ino);
        print_message("    %s init_from: %d combinations, opened %d time(s)\n", good ? "fitting" : "misfit",
                      f->n_entries, opens);
        assert_int_equal(f->n_entries, 16);
        assert_int_equal(opens, 1);
        for (int i = 0; i < f->n_entries; i++) {
            if (good) {
                assert_non_null(f->entries[i].spec);
            } else {
                assert_int_equal(f->entries[i].diags.n, 2); /* the weight's and the bias's shape */
                assert_non_null(strstr(f->entries[i].diags.v[0].message, "expected shape [4, 4], found [3, 4]"));
            }
        }
        spec_file_free(f);
    }
    unlink(path);
    rmdir(dir);
}

/* Every combination derived alone from (file bytes, sweep values) - how the
 * service reads a combination's spec once it stores the file only (issue 10,
 * defect 9) - is byte for byte the text the full expansion gave it, valid
 * or not, named by a template or by the file's stem, with anchors expanded. */
static void check_derived(const char *path, const char *yaml, size_t len, int n_expected)
{
    spec_options o = test_opts();
    spec_file *f = NULL;
    assert_int_equal(spec_file_load_buffer(path, yaml, len, &o, &f), 0);
    assert_int_equal(f->file_diags.n, 0);
    assert_int_equal(f->n_entries, n_expected);
    for (int i = 0; i < f->n_entries; i++) {
        const spec_entry *e = &f->entries[i];
        char *text = NULL, err[512];
        size_t n = 0;
        assert_int_equal(spec_sweep_combination(path, yaml, len, e->sweep_json, NULL, &text, &n, err, sizeof err), 0);
        assert_int_equal(n, e->text_len);
        assert_memory_equal(text, e->text, n);
        assert_int_equal(text[n], '\0');
        char sha[65];
        spec_sha256_hex(text, n, sha);
        assert_string_equal(sha, e->sha256);
        free(text);
    }
    /* a loader told to drop the combinations' texts (the service) keeps the same identities */
    o.drop_combination_texts = true;
    spec_file *g = NULL;
    assert_int_equal(spec_file_load_buffer(path, yaml, len, &o, &g), 0);
    assert_int_equal(g->n_entries, f->n_entries);
    for (int i = 0; i < g->n_entries; i++) {
        assert_null(g->entries[i].text);
        assert_int_equal(g->entries[i].text_len, f->entries[i].text_len);
        assert_string_equal(g->entries[i].sha256, f->entries[i].sha256);
        assert_string_equal(g->entries[i].name, f->entries[i].name);
        assert_int_equal(g->entries[i].diags.n, f->entries[i].diags.n);
        assert_int_equal(!g->entries[i].spec, !f->entries[i].spec);
        if (g->entries[i].spec) {
            assert_null(g->entries[i].spec->text);
            assert_int_equal(g->entries[i].spec->params, f->entries[i].spec->params);
        }
    }
    spec_file_free(g);
    spec_file_free(f);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    return buf;
}

static void test_combination_derived(void **state)
{
    (void)state;
    const char *files[] = {"sweep.yaml", "seed_compare.yaml"};
    const int counts[] = {5, 6};
    for (int k = 0; k < 2; k++) {
        size_t len = 0;
        char *buf = read_all(fixture(files[k]), &len);
        check_derived(fixture(files[k]), buf, len, counts[k]);
        free(buf);
    }
    /* no name: (the file's stem names the runs), an anchored block, include: */
    static const char anchored[] =
        "data: {dataset: synthetic, synthetic: {shape: [8], classes: 4, train: 64, test: 32}}\n"
        "model:\n  template: sequential\n  layers:\n"
        "    - residual: &b\n        layers: [{tanh: {}}, {tanh: {}}, {tanh: {}}]\n"
        "    - residual: *b\n    - residual: *b\n    - linear: {out: 4}\n"
        "train: {epochs: 1}\n"
        "matrix: {train.optimizer.lr: [0.1, 0.01], seed: [1, 2]}\n"
        "include: [{train.epochs: 3, name: extra}]\n";
    check_derived("/t/anchored_sweep.yaml", anchored, strlen(anchored), 5);
    /* the stem matters: the same bytes under another name give other names */
    char *a = NULL, *b = NULL, err[512];
    size_t na = 0, nb = 0;
    const char *j = "{\"train.optimizer.lr\":0.1,\"seed\":2}";
    assert_int_equal(spec_sweep_combination("/t/one.yaml", anchored, strlen(anchored), j, NULL, &a, &na, err, 512), 0);
    assert_int_equal(spec_sweep_combination("/t/two.yaml", anchored, strlen(anchored), j, NULL, &b, &nb, err, 512), 0);
    assert_true(!strncmp(a, "name: ", 6) && strstr(a, "one_lr0.1_seed2") && !strstr(a, "two_"));
    assert_true(!strncmp(b, "name: ", 6) && strstr(b, "two_lr0.1_seed2") && !strstr(b, "one_"));
    assert_null(strstr(a, "*b")); /* aliases expanded */
    free(a);
    free(b);

    /* what cannot be derived is said, never guessed */
    char *t = (char *)1;
    size_t nt = 7;
    assert_int_equal(spec_sweep_combination("/t/s.yaml", anchored, strlen(anchored), "{\"seed\":3}", NULL, &t, &nt,
                                            err, sizeof err), 1);
    assert_null(t);
    assert_int_equal(nt, 0);
    assert_string_equal(err, "/t/s.yaml: no combination of the sweep has the values {\"seed\":3}");
    static const char plain[] = "data: {dataset: synthetic}\nmodel: {template: mlp, units: [4]}\n";
    assert_int_equal(spec_sweep_combination("/t/p.yaml", plain, strlen(plain), "{}", NULL, &t, &nt, err, sizeof err), 1);
    assert_string_equal(err, "/t/p.yaml: the file is not a sweep (it has no matrix: or include:)");
    static const char broken[] = "matrix: {seed: [1, 2]\n";
    assert_int_equal(spec_sweep_combination("/t/b.yaml", broken, strlen(broken), "{\"seed\":1}", NULL, &t, &nt, err,
                                            sizeof err), 1);
    assert_non_null(strstr(err, "/t/b.yaml:"));
    assert_null(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expansion),
        cmocka_unit_test(test_text_roundtrip),
        cmocka_unit_test(test_seed_comparison),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_include_and_new_keys),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_many_combinations),
        cmocka_unit_test(test_init_from_read_once),
        cmocka_unit_test(test_combination_derived),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
