/* `epochd check` end to end: exit codes, stdout lines, located problems on stderr.
 * argv[1] is the epochd binary. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static const char *epochd;
static char tmpdir[256];

typedef struct result {
    int code;
    char out[16384], err[16384];
} result;

static void slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, cap - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
}

/* Runs epochd with args (NULL-terminated), capturing stdout and stderr. */
static void run(result *r, const char *const *args)
{
    char out[512], err[512];
    snprintf(out, sizeof out, "%s/out", tmpdir);
    snprintf(err, sizeof err, "%s/err", tmpdir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        const char *argv[32] = {epochd};
        int n = 1;
        for (; args[n - 1] && n < 31; n++)
            argv[n] = args[n - 1];
        argv[n] = NULL;
        execv(epochd, (char *const *)argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    r->code = WEXITSTATUS(st);
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
}

static const char *fx(const char *name, char *buf)
{
    snprintf(buf, 1024, "%s/%s", SCHEMA_FIXTURES, name);
    return buf;
}

static void test_five_mistakes(void **state)
{
    (void)state;
    result r;
    char p[1024], want[4096];
    run(&r, (const char *[]){"check", fx("five_mistakes.yaml", p), NULL});
    assert_int_equal(r.code, 65);
    assert_string_equal(r.out, "");
    snprintf(want, sizeof want,
             "%s:4:1: datta: unknown key (did you mean 'data'?)\n"
             "%s:7:15: data.batch_size: expected an integer in [1, 1048576], found -5\n"
             "%s:10:21: model.units[2]: expected the last entry to be the output size 10 (the dataset's class "
             "count), found 100\n"
             "%s:13:21: train.optimizer.name: expected adam, adamw or sgd, found adamm (did you mean 'adam'?)\n"
             "%s:14:14: train.keep_best: expected true or false, found yes (YAML 1.1 booleans are not accepted)\n",
             p, p, p, p, p);
    assert_string_equal(r.err, want);
}

static void test_valid_and_exit_codes(void **state)
{
    (void)state;
    result r;
    char p[1024], q[1024], want[4096];
    run(&r, (const char *[]){"check", fx("synthetic.yaml", p), NULL});
    assert_int_equal(r.code, 0);
    snprintf(want, sizeof want, "%s: ok (232 params)\n", p);
    assert_string_equal(r.out, want);
    assert_string_equal(r.err, "");
    /* a missing file: 66, also next to a valid one */
    run(&r, (const char *[]){"check", fx("synthetic.yaml", p), fx("nope.yaml", q), NULL});
    assert_int_equal(r.code, 66);
    snprintf(want, sizeof want, "%s: No such file or directory\n", q);
    assert_string_equal(r.err, want);
    /* valid and invalid together: 65, and the valid one still says ok */
    run(&r, (const char *[]){"check", "--no-files", fx("synthetic.yaml", p), fx("five_mistakes.yaml", q), NULL});
    assert_int_equal(r.code, 65);
    snprintf(want, sizeof want, "%s: ok (232 params)\n", p);
    assert_string_equal(r.out, want);
    /* usage */
    run(&r, (const char *[]){"check", NULL});
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "usage: epochd check"));
    run(&r, (const char *[]){"check", "--frobnicate", p, NULL});
    assert_int_equal(r.code, 64);
    assert_non_null(strstr(r.err, "unknown option '--frobnicate'"));
    run(&r, (const char *[]){"check", p, "--data-root", NULL});
    assert_int_equal(r.code, 64);
    run(&r, (const char *[]){"check", "--help", NULL});
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "usage: epochd check"));
}

static void test_files_and_roots(void **state)
{
    (void)state;
    result r;
    char p[1024], want[4096], root[1024];
    /* the dataset root is looked at unless --no-files */
    run(&r, (const char *[]){"check", fx("full.yaml", p), NULL});
    assert_int_equal(r.code, 65);
    snprintf(want, sizeof want,
             "%s:9:9: data.root: %s/data/cifar-100-binary does not exist (expected the CIFAR-100 binary files: "
             "train.bin, test.bin)\n"
             "%s:20:14: model.init_from: %s/weights/start.safetensors does not exist (expected a safetensors file)\n",
             p, SCHEMA_FIXTURES, p, SCHEMA_FIXTURES);
    assert_string_equal(r.err, want);
    run(&r, (const char *[]){"check", "--no-files", p, NULL});
    assert_int_equal(r.code, 0);
    /* --data-root: paths outside are refused (no files needed for that) */
    snprintf(root, sizeof root, "--data-root=%s/data", SCHEMA_FIXTURES);
    run(&r, (const char *[]){"check", "--no-files", "--data-root", "/srv", root, p, NULL});
    assert_int_equal(r.code, 65);
    snprintf(want, sizeof want,
             "%s:20:14: model.init_from: %s/weights/start.safetensors is not under the configured data roots "
             "(/srv, %s/data)\n",
             p, SCHEMA_FIXTURES, SCHEMA_FIXTURES);
    assert_string_equal(r.err, want);
}

static void test_sweep_expansion(void **state)
{
    (void)state;
    result r;
    char p[1024], want[8192];
    run(&r, (const char *[]){"check", "--no-files", fx("sweep.yaml", p), NULL});
    assert_int_equal(r.code, 65);
    assert_non_null(strstr(r.out, "sweep.yaml: sweep of 5 combinations\n"));
    assert_non_null(strstr(r.out, "\n  mixer_p5_c128            {\"model.patch_size\":5,\"model.hidden\":128}: invalid "
                                  "(1 problem)\n"));
    assert_non_null(strstr(r.out, "\n  mixer_p8_c256            {\"model.patch_size\":8,\"model.hidden\":256,"
                                  "\"train.optimizer.lr\":0.01}: ok ("));
    assert_non_null(strstr(r.out, "sweep.yaml: 3 of 5 combinations valid\n"));
    snprintf(want, sizeof want,
             "%s:11:25: model.patch_size: expected a divisor of the 32x32 input, found 5 [model.patch_size=5, "
             "model.hidden=128]\n"
             "%s:11:25: model.patch_size: expected a divisor of the 32x32 input, found 5 [model.patch_size=5, "
             "model.hidden=192]\n",
             p, p);
    assert_string_equal(r.err, want);
    run(&r, (const char *[]){"check", "--no-files", fx("seed_compare.yaml", p), NULL});
    assert_int_equal(r.code, 0);
    snprintf(want, sizeof want,
             "%s: sweep of 6 combinations\n"
             "  normal_cnn               {\"name\":\"normal_cnn\",\"model\":{\"template\":\"cnn\",\"channels\":[16,16,"
             "\"p\",32,32,\"p\",64,64,\"p\",128,128,\"p\",256,256],\"activation\":\"relu\",\"batch_norm\":true,"
             "\"pool\":{\"kernel\":3,\"stride\":2},\"head\":\"softmax\"}}: ok (1183322 params)\n",
             p);
    assert_memory_equal(r.out, want, strlen(want));
    assert_non_null(strstr(r.out, "  mlp_mixer_B2 "));
    assert_non_null(strstr(r.out, ": ok (1756106 params)\n"));
    assert_non_null(strstr(r.out, "seed_compare.yaml: 6 of 6 combinations valid\n"));
}

/* A shape whose size wraps past 64 bits (issue 10, defect 1): a located 65. */
static void test_size_overflow(void **state)
{
    (void)state;
    result r;
    char p[1024], want[4096];
    run(&r, (const char *[]){"check", fx("reshape_overflow.yaml", p), NULL});
    assert_int_equal(r.code, 65);
    assert_string_equal(r.out, "");
    snprintf(want, sizeof want,
             "%s:12:24: model.layers[0].reshape.shape: expected a shape of 4 values (the input [4]), found [34724, "
             "27905, 49477, 384773] (more than 9223372036854775807 values)\n",
             p);
    assert_string_equal(r.err, want);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_check_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/out", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/err", tmpdir);
    unlink(p);
    return rmdir(tmpdir);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_check EPOCHD\n");
        return 1;
    }
    epochd = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_mistakes),
        cmocka_unit_test(test_valid_and_exit_codes),
        cmocka_unit_test(test_files_and_roots),
        cmocka_unit_test(test_sweep_expansion),
        cmocka_unit_test(test_size_overflow),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
