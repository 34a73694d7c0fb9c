/* Tests of the spec's `slurm:` section (schema/validate_slurm.c): the values
 * kept, every kind of mistake located as file:line:col: key: message, the
 * service's allow-list of sbatch options, Slurm's time formats (from the
 * sbatch manual), and reading the section back from a stored spec text. */
#include "helpers.h"

#define BASE                                                                                                           \
    "data: {dataset: synthetic, synthetic: {shape: [4], classes: 2, train: 8, test: 4}}\n"                             \
    "model: {template: mlp, units: [2]}\n"

static void test_values_kept(void **state)
{
    (void)state;
    spec_file *f = load(BASE "slurm:\n"
                             "  partition: gpu-a100,gpu\n"
                             "  account: proj_42\n"
                             "  qos: high\n"
                             "  time: 1-12:00:00\n"
                             "  extra: [--constraint=a100, --mem=16G, --exclusive]\n");
    assert_diags(f, "");
    const spec_slurm *s = &f->entries[0].spec->slurm;
    assert_string_equal(s->partition, "gpu-a100,gpu");
    assert_string_equal(s->account, "proj_42");
    assert_string_equal(s->qos, "high");
    assert_string_equal(s->time, "1-12:00:00");
    assert_int_equal(s->n_extra, 3);
    assert_string_equal(s->extra[0], "--constraint=a100");
    assert_string_equal(s->extra[2], "--exclusive");
    spec_file_free(f);

    /* minutes as a plain integer, nothing else */
    f = load(BASE "slurm: {time: 90}\n");
    assert_diags(f, "");
    s = &f->entries[0].spec->slurm;
    assert_string_equal(s->time, "90");
    assert_null(s->partition);
    assert_int_equal(s->n_extra, 0);
    spec_file_free(f);

    /* no section: all NULL */
    f = load(BASE);
    assert_diags(f, "");
    assert_null(f->entries[0].spec->slurm.time);
    spec_file_free(f);
}

/* the fixture with every key of the spec has this section too */
static void test_full_fixture(void **state)
{
    (void)state;
    spec_options o = test_opts();
    spec_file *f = NULL;
    assert_int_equal(spec_file_load(SCHEMA_FIXTURES "/full.yaml", &o, &f), 0);
    assert_diags(f, "");
    const spec_slurm *s = &f->entries[0].spec->slurm;
    assert_string_equal(s->partition, "gpu");
    assert_string_equal(s->account, "proj");
    assert_string_equal(s->qos, "high");
    assert_string_equal(s->time, "1-00:00:00");
    assert_int_equal(s->n_extra, 1);
    assert_string_equal(s->extra[0], "--constraint=a100");
    spec_file_free(f);
}

static void test_mistakes_located(void **state)
{
    (void)state;
    spec_file *f = load(BASE "slurm:\n"
                             "  partiton: gpu\n"
                             "  account: -x\n"
                             "  time: 1:2:3:4\n"
                             "  extra: [--output=/tmp/x, -c4, 5, --Mem=1G]\n");
    assert_diags(f, "/t/t.yaml:4:3: slurm.partiton: unknown key (did you mean 'partition'?)\n"
                    "/t/t.yaml:5:12: slurm.account: expected a Slurm account name (letters, digits and _ . , + -), "
                    "found -x\n"
                    "/t/t.yaml:6:9: slurm.time: expected a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, "
                    "D-HH:MM, D-HH:MM:SS or INFINITE), found 1:2:3:4\n"
                    "/t/t.yaml:7:11: slurm.extra[0]: --output is set by epochd itself and cannot be changed\n"
                    "/t/t.yaml:7:28: slurm.extra[1]: expected an sbatch option as --name or --name=value (letters, "
                    "digits and _.,+-:=/@%), found '-c4'\n"
                    "/t/t.yaml:7:33: slurm.extra[2]: expected an sbatch option as --name or --name=value (letters, "
                    "digits and _.,+-:=/@%), found '5'\n"
                    "/t/t.yaml:7:36: slurm.extra[3]: expected an sbatch option as --name or --name=value (letters, "
                    "digits and _.,+-:=/@%), found '--Mem=1G'\n");
    spec_file_free(f);

    f = load(BASE "slurm: [gpu]\n");
    assert_diags(f, "/t/t.yaml:3:8: slurm: expected a map {partition: ..., time: \"2:00:00\", ...}, found a list\n");
    spec_file_free(f);
}

static void test_allow_list(void **state)
{
    (void)state;
    static const char *const allowed[] = {"--constraint", "--gres"};
    spec_options o = test_opts();
    o.slurm_allowed = allowed;
    o.n_slurm_allowed = 2;
    spec_file *f = load_opts(BASE "slurm: {extra: [--gres=gpu:3, --constraint=a100, --mem=1G]}\n", &o);
    assert_diags(f, "/t/t.yaml:3:50: slurm.extra[2]: --mem is not among the sbatch options the service allows "
                    "(--constraint, --gres)\n");
    spec_file_free(f);
    o.n_slurm_allowed = 0;
    f = load_opts(BASE "slurm: {extra: [--gres=gpu:1]}\n", &o);
    assert_diags(f, "/t/t.yaml:3:17: slurm.extra[0]: --gres is not among the sbatch options the service allows "
                    "(none: slurm.allowed_extra is empty)\n");
    spec_file_free(f);
}

static void test_time_formats(void **state)
{
    (void)state;
    /* sbatch(1), --time: "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
     * "days-hours:minutes" and "days-hours:minutes:seconds" */
    const char *good[] = {"0",    "30",      "30:15",      "1:30:00",  "2-0",
                          "2-12", "2-12:30", "2-12:30:15", "INFINITE", "UNLIMITED"};
    const char *bad[] = {"", "-5", "1:", ":30", "1:2:3:4", "2-", "2-1:2:3:4", "1h", "1.5", "2--3", "1234567"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!spec_slurm_time_ok(good[i]))
            fail_msg("refused the time limit '%s'", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (spec_slurm_time_ok(bad[i]))
            fail_msg("accepted the time limit '%s'", bad[i]);
}

static void test_from_text(void **state)
{
    (void)state;
    const char *text = "name: x\nslurm:\n  qos: low\n  extra:\n    - --gres=gpu:2\n" BASE;
    spec_slurm s;
    char err[512];
    assert_int_equal(spec_slurm_from_text(text, strlen(text), &s, err, sizeof err), 0);
    assert_string_equal(s.qos, "low");
    assert_int_equal(s.n_extra, 1);
    assert_string_equal(s.extra[0], "--gres=gpu:2");
    spec_slurm_clear(&s);
    assert_null(s.qos);

    assert_int_equal(spec_slurm_from_text(BASE, strlen(BASE), &s, err, sizeof err), 0);
    assert_null(s.partition);
    assert_int_equal(spec_slurm_from_text("", 0, &s, err, sizeof err), 0);

    const char *broken = "slurm: {time: soon}\n";
    assert_int_equal(spec_slurm_from_text(broken, strlen(broken), &s, err, sizeof err), 1);
    assert_non_null(strstr(err, "slurm.time: expected a Slurm time limit"));
    assert_null(s.time);
    const char *not_yaml = "slurm: [\n";
    assert_int_equal(spec_slurm_from_text(not_yaml, strlen(not_yaml), &s, err, sizeof err), 1);
    assert_non_null(strstr(err, "not valid YAML"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_kept),      cmocka_unit_test(test_full_fixture),
        cmocka_unit_test(test_mistakes_located), cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_time_formats),     cmocka_unit_test(test_from_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
