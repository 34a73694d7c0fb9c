/* Unit tests of the Slurm executor's pure parts, without a cluster: the
 * config's slurm: section (values and located mistakes), sbatch's command
 * line, the answers of squeue, sacct, sbatch and the jobcomp log (the
 * fixture lines were printed by Slurm 22.05 of Debian 12 on a throwaway
 * cluster), Slurm's local times, the command runner, and where a pid means
 * something (boot id and PID namespace, compared with /proc). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "service/config.h"
#include "service/error.h"
#include "service/process_ns.h"
#include "service/slurm.h"
#include "service/slurm_cmd.h"

static char tmpdir[256];

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* ---- config ---- */

static void test_config_slurm(void **state)
{
    (void)state;
    const char *p = write_file("slurm.yaml", "executor: slurm\n"
                                             "slurm:\n"
                                             "  partition: gpu\n"
                                             "  account: proj_1\n"
                                             "  qos: normal\n"
                                             "  time: \"4:00:00\"\n"
                                             "  extra: [--mem=8G]\n"
                                             "  allowed_extra: [--constraint, --gres]\n"
                                             "  gpu_option: --gpus=1\n"
                                             "  auto_device: cuda\n"
                                             "  max_jobs: 7\n"
                                             "  max_preemptions: 2\n"
                                             "  on_stop: leave\n"
                                             "  requeue: false\n"
                                             "  poll_ms: 500\n");
    svc_config c;
    spec_diags d = {0};
    svc_overrides o = {.config = p};
    assert_int_equal(svc_config_build(&c, &o, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(c.executor, SVC_EXECUTOR_SLURM);
    const svc_slurm_config *s = &c.slurm;
    assert_string_equal(s->partition, "gpu");
    assert_string_equal(s->account, "proj_1");
    assert_string_equal(s->qos, "normal");
    assert_string_equal(s->time, "4:00:00");
    assert_int_equal(s->n_extra, 1);
    assert_string_equal(s->extra[0], "--mem=8G");
    assert_int_equal(s->n_allowed_extra, 2);
    assert_string_equal(s->allowed_extra[1], "--gres");
    assert_string_equal(s->gpu_option, "--gpus=1");
    assert_int_equal(s->auto_gpu, 1);
    assert_int_equal(s->max_jobs, 7);
    assert_int_equal(s->max_preemptions, 2);
    assert_int_equal(s->on_stop, SVC_ON_STOP_LEAVE);
    assert_int_equal(s->requeue, 0);
    assert_int_equal(s->poll_ms, 500);
    /* the spec loader gets the allow-list */
    spec_options so;
    svc_config_spec_options(&c, &so);
    assert_int_equal(so.n_slurm_allowed, 2);
    assert_string_equal(so.slurm_allowed[0], "--constraint");
    svc_config_free(&c);

    /* defaults */
    svc_overrides none = {0};
    assert_int_equal(svc_config_build(&c, &none, &d), 0);
    assert_int_equal(c.executor, SVC_EXECUTOR_LOCAL);
    assert_null(c.slurm.partition);
    assert_string_equal(c.slurm.gpu_option, "--gres=gpu:1");
    assert_int_equal(c.slurm.max_jobs, 100);
    assert_int_equal(c.slurm.on_stop, SVC_ON_STOP_INTERRUPT);
    assert_int_equal(c.slurm.requeue, 1);
    assert_true(c.slurm.n_allowed_extra > 5);
    svc_config_free(&c);

    /* an empty allow-list allows nothing, and says so to the loader */
    o.config = write_file("none.yaml", "slurm: {allowed_extra: []}\n");
    assert_int_equal(svc_config_build(&c, &o, &d), 0);
    svc_config_spec_options(&c, &so);
    assert_non_null(so.slurm_allowed);
    assert_int_equal(so.n_slurm_allowed, 0);
    svc_config_free(&c);
}

static void test_config_slurm_errors(void **state)
{
    (void)state;
    const char *p = write_file("bad-slurm.yaml", "executor: cluster\n"
                                                 "slurm:\n"
                                                 "  partiton: gpu\n"
                                                 "  time: soon\n"
                                                 "  extra: [--output=/x]\n"
                                                 "  allowed_extra: [--mem=1G]\n"
                                                 "  max_jobs: 0\n"
                                                 "  on_stop: never\n"
                                                 "  requeue: yes\n"
                                                 "  account: -a\n");
    svc_config c;
    spec_diags d = {0};
    svc_overrides o = {.config = p};
    assert_int_equal(svc_config_build(&c, &o, &d), SVC_EUSAGE);
    char *all = spec_diags_join(&d);
    static const char *const want[] = {
        "bad-slurm.yaml:1:11: executor: expected local or slurm, found cluster",
        "bad-slurm.yaml:3:3: slurm.partiton: unknown key (did you mean 'partition'?)",
        "bad-slurm.yaml:4:9: slurm.time: expected a Slurm time limit",
        "bad-slurm.yaml:5:10: slurm.extra: --output is set by epochd itself and cannot be changed",
        "bad-slurm.yaml:6:18: slurm.allowed_extra: expected option names such as --constraint, found --mem=1G",
        "bad-slurm.yaml:7:13: slurm.max_jobs: expected an integer from 1 to 100000, found 0",
        "bad-slurm.yaml:8:12: slurm.on_stop: expected interrupt or leave, found never",
        "bad-slurm.yaml:9:12: slurm.requeue: expected true or false, found yes",
        "bad-slurm.yaml:10:12: slurm.account: expected a Slurm name",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(all, want[i])) {
            print_error("missing '%s' in:\n%s\n", want[i], all);
            fail();
        }
    assert_int_equal(d.n, (int)(sizeof want / sizeof *want));
    free(all);
    spec_diags_clear(&d);
}

/* ---- sbatch's command line ---- */

static char *joined(char **v)
{
    static char buf[8192];
    buf[0] = '\0';
    for (size_t i = 0; v[i]; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "", v[i]);
    return buf;
}

static void test_sbatch_argv(void **state)
{
    (void)state;
    svc_slurm_config c;
    assert_int_equal(svc_slurm_config_defaults(&c), 0);
    c.partition = strdup("cpu");
    c.time = strdup("60");
    c.n_extra = 1;
    c.extra = calloc(1, sizeof *c.extra);
    c.extra[0] = strdup("--mem=1G");
    const char *argv[] = {"/usr/bin/epochd", "worker", "--key", "12", NULL};
    svc_placement cpu = {.gpu = -1, .ordinal = -1, .device = "cpu"};
    svc_launch l = {.run_id = 12, .name = "mlp_a", .run_dir = "/st/runs/12", .argv = argv, .place = &cpu, .threads = 3};
    spec_slurm sp = {.time = "2:00:00", .qos = "high"};
    char *extra[] = {"--mem=4G", "--constraint=a100"};
    sp.extra = extra;
    sp.n_extra = 2;
    const char *prefix[] = {"nice", "-n", "5"};
    svc_sbatch_job j = {.launch = &l,
                        .spec = &sp,
                        .cfg = &c,
                        .prefix = prefix,
                        .n_prefix = 3,
                        .state_dir = "/st",
                        .script = "/st/slurm-job.sh"};
    char **v = NULL;
    assert_int_equal(svc_sbatch_argv(&j, &v), 0);
    /* the spec's time and qos win over the service's, its extra words come last (sbatch takes the last) */
    assert_string_equal(joined(v), "sbatch --parsable --job-name=epochd-12-mlp_a --comment=epochd /st "
                                   "--output=/st/runs/12/slurm-%j.log --open-mode=append --requeue --partition=cpu "
                                   "--qos=high --time=2:00:00 --cpus-per-task=3 --mem=1G --mem=4G "
                                   "--constraint=a100 /st/slurm-job.sh /st/runs/12 nice -n 5 /usr/bin/epochd worker "
                                   "--key 12");
    /* the comment is one word of sbatch's argv, whatever the folder holds */
    assert_string_equal(v[3], "--comment=epochd /st");
    svc_strv_free(v);

    /* a GPU run, no spec settings, no requeue, a '%' in the folder */
    c.requeue = 0;
    l.run_dir = "/st/100%/runs/12";
    j.spec = NULL;
    j.gpu = true;
    j.n_prefix = 0;
    assert_int_equal(svc_sbatch_argv(&j, &v), 0);
    assert_string_equal(joined(v), "sbatch --parsable --job-name=epochd-12-mlp_a --comment=epochd /st "
                                   "--output=/st/100%%/runs/12/slurm-%j.log --open-mode=append --no-requeue "
                                   "--partition=cpu --time=60 --gres=gpu:1 --mem=1G /st/slurm-job.sh "
                                   "/st/100%/runs/12 /usr/bin/epochd worker --key 12");
    svc_strv_free(v);
    svc_slurm_config_free(&c);
}

/* The batch script, run by /bin/sh as Slurm runs it: the worker's stdout
 * goes to job-<id>.<restart>.out, and a restart adds --resume. */
static void test_script(void **state)
{
    (void)state;
    const char *script = write_file("job.sh", svc_slurm_script);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && SLURM_JOB_ID=77 /bin/sh %s %s /bin/echo a 'b c' && "
             "SLURM_JOB_ID=77 SLURM_RESTART_COUNT=2 /bin/sh %s %s /bin/echo a",
             tmpdir, script, tmpdir, script, tmpdir);
    assert_int_equal(system(cmd), 0);
    char path[600], line[256];
    snprintf(path, sizeof path, "%s/job-77.0.out", tmpdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "a b c\n");
    snprintf(path, sizeof path, "%s/job-77.2.out", tmpdir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "a --resume\n");
}

/* ---- answers ---- */

static void test_times(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    /* 2026-12-06T12:59:13Z: days from 1970 to 2026-12-06 = 20793, * 86400 + 46753 */
    assert_int_equal(svc_slurm_time("2026-12-06T12:59:13"), 20793LL * 86400 + 12 * 3600 + 59 * 60 + 13);
    /* Slurm prints the controller's local time */
    setenv("TZ", "EST5", 1);
    tzset();
    assert_int_equal(svc_slurm_time("2026-12-06T07:59:13"), 20793LL * 86400 + 12 * 3600 + 59 * 60 + 13);
    setenv("TZ", "UTC", 1);
    tzset();
    assert_int_equal(svc_slurm_time("N/A"), 0);
    assert_int_equal(svc_slurm_time("Unknown"), 0);
    assert_int_equal(svc_slurm_time(""), 0);
}

static void test_squeue(void **state)
{
    (void)state;
    /* squeue -h -t all --Format=SVC_SQUEUE_FORMAT on the throwaway cluster */
    const char *out = "3|CANCELLED|None|2026-12-06T12:59:33|2026-12-06T12:59:34|33280|0|node0|epochd-3-a|epochd /st\n"
                      "5|CANCELLED|Resources|2026-12-06T12:59:34|2026-12-06T12:59:34|0|0||epochd-5-b|epochd /st\n"
                      "1|FAILED|NonZeroExitCode|2026-12-06T12:59:25|2026-12-06T12:59:26|33280|1|node0|x|\n"
                      "4|FAILED|JobLaunchFailure|2026-12-06T12:59:33|2026-12-06T12:59:34|9|0|node0|y|z\n"
                      "6|RUNNING|None|2026-12-06T12:59:39|2026-12-06T13:00:39|0|0|node0|epochd-6-c|epochd /a|b c\n"
                      "7|PENDING|None|N/A|N/A|0|0||epochd-7-d|epochd /st\n"
                      "junk line\n";
    svc_slurm_job *j = NULL;
    size_t n = 0;
    assert_int_equal(svc_squeue_parse(out, &j, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(j[0].job_id, 3);
    assert_string_equal(j[0].state, "CANCELLED");
    assert_string_equal(j[0].reason, "");
    assert_int_equal(j[0].exit_code, 130); /* 33280 = 130 << 8 */
    assert_int_equal(j[0].exit_signal, 0);
    assert_string_equal(j[0].node, "node0");
    assert_string_equal(j[0].comment, "epochd /st");
    assert_int_equal(j[0].start_time, 20793LL * 86400 + 12 * 3600 + 59 * 60 + 33);
    assert_string_equal(j[1].reason, "Resources");
    assert_string_equal(j[1].node, "");
    assert_int_equal(j[2].restarts, 1);
    assert_int_equal(j[3].exit_signal, 9); /* the batch step killed with SIGKILL */
    assert_int_equal(j[3].exit_code, 0);
    assert_string_equal(j[4].comment, "epochd /a|b c"); /* the last field takes the rest */
    assert_int_equal(j[5].start_time, 0);
    free(j);
}

static void test_jobcomp_sacct_config(void **state)
{
    (void)state;
    const char *log = "JobId=1 UserId=root(0) GroupId=root(0) Name=epochd-1-x JobState=PENDING Partition=debug "
                      "TimeLimit=UNLIMITED StartTime=2026-12-06T12:59:13 EndTime=2026-12-06T12:59:14 NodeList=node0 "
                      "NodeCnt=1 ProcCnt=1 WorkDir=/tmp ReservationName= Account= QOS= DerivedExitCode=0:0 "
                      "ExitCode=0:0\n"
                      "JobId=16 UserId=root(0) JobState=COMPLETED StartTime=2026-12-06T12:00:00 NodeList=node0 "
                      "ExitCode=0:0\n"
                      "JobId=1 UserId=root(0) GroupId=root(0) Name=epochd-1-x JobState=FAILED Partition=debug "
                      "TimeLimit=UNLIMITED StartTime=2026-12-06T12:59:25 EndTime=2026-12-06T12:59:26 NodeList=node0 "
                      "NodeCnt=1 DerivedExitCode=0:0 ExitCode=130:0\n";
    svc_slurm_job j;
    assert_int_equal(svc_jobcomp_find(log, 1, &j), 1);
    assert_string_equal(j.state, "FAILED"); /* the last record of a requeued job */
    assert_int_equal(j.exit_code, 130);
    assert_string_equal(j.node, "node0");
    assert_string_equal(j.name, "epochd-1-x");
    assert_int_equal(j.end_time, 20793LL * 86400 + 12 * 3600 + 59 * 60 + 26);
    assert_int_equal(svc_jobcomp_find(log, 6, &j), 0); /* JobId=16 is not JobId=6... */
    assert_int_equal(svc_jobcomp_find(log, 16, &j), 1);
    assert_string_equal(j.state, "COMPLETED");

    const char *sacct = "41|CANCELLED by 0|0:15|2026-12-06T12:00:00|2026-12-06T12:01:00|node3\n"
                        "42|TIMEOUT|0:0|2026-12-06T12:00:00|2026-12-06T12:02:00|node4\n";
    assert_int_equal(svc_sacct_parse(sacct, 41, &j), 1);
    assert_string_equal(j.state, "CANCELLED");
    assert_int_equal(j.exit_signal, 15);
    assert_string_equal(j.node, "node3");
    assert_int_equal(svc_sacct_parse(sacct, 42, &j), 1);
    assert_string_equal(j.state, "TIMEOUT");
    assert_int_equal(svc_sacct_parse("Slurm accounting storage is disabled\n", 42, &j), 0);

    char v[256];
    const char *conf = "JobAcctGatherType       = jobacct_gather/none\n"
                       "JobCompLoc              = /tmp/slx/slurm/log/jobcomp.txt\n"
                       "JobCompType             = jobcomp/filetxt\n";
    assert_int_equal(svc_slurm_config_value(conf, "JobCompType", v, sizeof v), 1);
    assert_string_equal(v, "jobcomp/filetxt");
    assert_int_equal(svc_slurm_config_value(conf, "JobCompLoc", v, sizeof v), 1);
    assert_string_equal(v, "/tmp/slx/slurm/log/jobcomp.txt");
    assert_int_equal(svc_slurm_config_value(conf, "JobComp", v, sizeof v), 0);
}

static void test_sbatch_answers(void **state)
{
    (void)state;
    assert_int_equal(svc_sbatch_job_id("123\n"), 123);
    assert_int_equal(svc_sbatch_job_id("124;cluster2\n"), 124);
    assert_int_equal(svc_sbatch_job_id("Submitted batch job 5\n"), -1);
    assert_int_equal(svc_sbatch_job_id(""), -1);
    assert_int_equal(svc_sbatch_job_id("0"), -1);
    const char *refused = "sbatch: error: Batch job submission failed: Requested node configuration is not available\n";
    char line[256];
    svc_sbatch_error_line(refused, line, sizeof line);
    assert_string_equal(line, "sbatch: error: Batch job submission failed: Requested node configuration is not "
                              "available");
    assert_false(svc_sbatch_transient(refused));
    assert_false(svc_sbatch_transient("sbatch: error: Invalid partition name specified"));
    assert_true(svc_sbatch_transient("sbatch: error: Batch job submission failed: Unable to contact slurm controller "
                                     "(connect failure)"));
    assert_true(svc_sbatch_transient("sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
                                     "(job submit limit, user's size and/or time limits)"));
    svc_sbatch_error_line("sbatch: warning: x\nsbatch: error: first\nsbatch: error: second\nnote\n", line, sizeof line);
    assert_string_equal(line, "sbatch: error: second");
    assert_int_equal(svc_slurm_run_id("epochd-12-mlp_a"), 12);
    assert_int_equal(svc_slurm_run_id("epochd-12"), 0);
    assert_int_equal(svc_slurm_run_id("job.sh"), 0);
    assert_true(svc_slurm_state_ended("TIMEOUT"));
    assert_false(svc_slurm_state_ended("PENDING"));
    assert_true(svc_slurm_state_running("COMPLETING"));
    assert_false(svc_slurm_state_running("CONFIGURING"));
    assert_true(svc_slurm_state_preempted("NODE_FAIL"));
    assert_false(svc_slurm_state_preempted("CANCELLED")); /* by whom decides: the executor knows */
    assert_false(svc_slurm_state_preempted("FAILED"));
}

/* ---- the command runner ---- */

static void test_cmd_run(void **state)
{
    (void)state;
    svc_cmd_result r;
    const char *sh[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    assert_int_equal(svc_cmd_run(sh, NULL, 10000, 1 << 20, &r), 0);
    assert_int_equal(r.status, 3);
    assert_string_equal(r.out, "out\n");
    assert_string_equal(r.err, "err\n");
    svc_cmd_result_free(&r);
    /* output beyond max_out is read and dropped, not left to block the child */
    const char *big[] = {"/bin/sh", "-c", "yes | head -c 1000000; exit 0", NULL};
    assert_int_equal(svc_cmd_run(big, NULL, 10000, 100, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.out_len, 100);
    svc_cmd_result_free(&r);
    /* a command that hangs is killed */
    const char *hang[] = {"/bin/sleep", "30", NULL};
    assert_int_equal(svc_cmd_run(hang, NULL, 200, 100, &r), SVC_EIO);
    assert_int_equal(r.term_signal, 9);
    assert_non_null(strstr(r.error, "did not finish"));
    svc_cmd_result_free(&r);
    const char *none[] = {"/nonexistent/sbatch", NULL};
    assert_int_equal(svc_cmd_run(none, NULL, 1000, 100, &r), SVC_EIO);
    assert_non_null(strstr(r.error, "cannot run /nonexistent/sbatch"));
    svc_cmd_result_free(&r);
    /* the environment given is the child's */
    const char *env[] = {"EPOCHD_X=42", NULL};
    const char *pr[] = {"/bin/sh", "-c", "echo $EPOCHD_X", NULL};
    assert_int_equal(svc_cmd_run(pr, (char *const *)env, 10000, 100, &r), 0);
    assert_string_equal(r.out, "42\n");
    svc_cmd_result_free(&r);
}

static void test_process_ns(void **state)
{
    (void)state;
    char ns[128];
    assert_int_equal(svc_process_ns(ns, sizeof ns), 0);
    char boot[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    assert_non_null(f);
    assert_non_null(fgets(boot, sizeof boot, f));
    fclose(f);
    boot[strcspn(boot, "\n")] = '\0';
    struct stat st;
    assert_int_equal(stat("/proc/self/ns/pid", &st), 0);
    char want[128];
    snprintf(want, sizeof want, "%s:%llu", boot, (unsigned long long)st.st_ino);
    assert_string_equal(ns, want);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/epochd-slurm-units-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_slurm),
        cmocka_unit_test(test_config_slurm_errors),
        cmocka_unit_test(test_sbatch_argv),
        cmocka_unit_test(test_script),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_squeue),
        cmocka_unit_test(test_jobcomp_sacct_config),
        cmocka_unit_test(test_sbatch_answers),
        cmocka_unit_test(test_cmd_run),
        cmocka_unit_test(test_process_ns),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}
