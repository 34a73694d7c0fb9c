/* Unit tests of the service's pure parts: the worker protocol parser and
 * line buffer, device placement, the config loader, the watcher's file-name
 * rule, the sd_notify sender, and the log line format. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "service/error.h"
#include "service/linebuf.h"
#include "service/log.h"
#include "service/notify.h"
#include "service/config.h"
#include "service/slots.h"
#include "service/map.h"
#include "service/plan.h"
#include "service/protocol.h"
#include "service/run_spec.h"
#include "service/watch.h"

/* ---- protocol ---- */

/* The parser's code, with its message copied into err. */
static int parse(const char *line, svc_event *e, char *err)
{
    int rc = svc_event_parse(line, strlen(line), e);
    snprintf(err, 256, "%s", rc ? svc_last_error() : "");
    return rc;
}

static void test_proto_events(void **state)
{
    (void)state;
    svc_event e;
    char err[256];
    assert_int_equal(parse("{\"event\":\"started\",\"pid\":42,\"device\":\"cpu\",\"params\":2176,\"epochs\":3,"
                           "\"steps_per_epoch\":8,\"train_samples\":256,\"test_samples\":64,\"resumed_epoch\":1,"
                           "\"threads\":2}", &e, err), 0);
    assert_int_equal(e.kind, SVC_EV_STARTED);
    assert_int_equal(e.pid, 42);
    assert_string_equal(e.device, "cpu");
    assert_int_equal(e.params, 2176);
    assert_int_equal(e.epochs, 3);
    assert_int_equal(e.train_samples, 256);
    assert_int_equal(e.resumed_epoch, 1);
    /* 17 significant digits come back as the very same double */
    assert_int_equal(parse("{\"event\":\"epoch\",\"epoch\":2,\"train_loss\":1.3889717382035305,\"train_acc\":0.421875,"
                           "\"test_loss\":null,\"test_acc\":0.265625,\"lr\":0.0010000000474974513,\"seconds\":1,"
                           "\"samples_per_sec\":5.5e4,\"best_epoch\":2,\"checkpoint\":\"/s/runs/1/last.safetensors\"}",
                           &e, err), 0);
    assert_int_equal(e.kind, SVC_EV_EPOCH);
    assert_int_equal(e.epoch, 2);
    assert_true(e.train_loss == 1.3889717382035305);
    assert_true(e.lr == 0.0010000000474974513);
    assert_true(isnan(e.test_loss)); /* null: a diverged value */
    assert_true(e.seconds == 1.0);   /* an integer where a number is expected */
    assert_true(e.samples_per_sec == 55000.0);
    assert_string_equal(e.checkpoint, "/s/runs/1/last.safetensors");
    assert_false(e.replayed);
    assert_int_equal(parse("{\"event\":\"epoch\",\"epoch\":1,\"replayed\":true,\"extra\":[1,2]}", &e, err), 0);
    assert_true(e.replayed);
    assert_string_equal(e.checkpoint, "");
    assert_int_equal(parse("{\"event\":\"progress\",\"epoch\":1,\"step\":4,\"steps\":8,\"loss\":0.5}", &e, err), 0);
    assert_int_equal(e.step, 4);
    assert_true(isnan(e.acc));
    assert_int_equal(parse("{\"event\":\"failed\",\"error\":\"disk full\",\"code\":74,\"retryable\":true}", &e, err), 0);
    assert_string_equal(e.error, "disk full");
    assert_int_equal(e.code, 74);
    assert_true(e.retryable);
    assert_int_equal(parse("{\"event\":\"failed\",\"error\":\"x\"}", &e, err), 0);
    assert_int_equal(e.code, 70);
    assert_false(e.retryable);
    assert_int_equal(parse("{\"event\":\"done\",\"epochs\":3,\"best_test_acc\":0.5,\"best_epoch\":2}", &e, err), 0);
    assert_int_equal(e.epochs_done, 3);
    assert_int_equal(parse("{\"event\":\"interrupted\",\"epochs\":1}", &e, err), 0);
    assert_int_equal(e.kind, SVC_EV_INTERRUPTED);
}

static void test_proto_errors(void **state)
{
    (void)state;
    svc_event e;
    char err[256];
    static const struct {
        const char *line, *frag;
    } bad[] = {
        {"hello", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"pid\":1}", "no \"event\""},
        {"{\"event\":\"exploded\"}", "unknown event \"exploded\""},
        {"{\"event\":\"epoch\"}", "\"epoch\" is missing"},
        {"{\"event\":\"epoch\",\"epoch\":0}", "must be >= 1"},
        {"{\"event\":\"epoch\",\"epoch\":1.5}", "not an integer"},
        {"{\"event\":\"epoch\",\"epoch\":1,\"train_loss\":\"low\"}", "not a number"},
        {"{\"event\":\"progress\",\"epoch\":1,\"step\":9,\"steps\":8}", "outside [0, steps]"},
        {"{\"event\":\"started\",\"device\":\"cpu\",\"epochs\":0}", "must be >= 1"},
        {"{\"event\":\"started\",\"epochs\":2}", "\"device\" is missing"},
        {"{\"event\":\"failed\"}", "\"error\" is missing"},
        {"{\"event\":\"failed\",\"error\":\"x\",\"code\":300}", "not an exit status"},
        {"{\"event\":\"done\",\"event\":\"done\"}", "not JSON"}, /* duplicate keys */
        {"{\"event\":\"epoch\",\"epoch\":1} trailing", "not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_int_equal(parse(bad[i].line, &e, err), SVC_EPROTO);
        if (!strstr(err, bad[i].frag)) {
            print_error("line %s: message '%s' lacks '%s'\n", bad[i].line, err, bad[i].frag);
            fail();
        }
    }
    /* a NUL byte inside a line (jansson would take what comes before it, and
     * the history keeps lines as C strings): found by scripts/fuzz history */
    static const char with_nul[] = "{\"event\":\"epoch\",\"epoch\":1}\0{\"x\":1}";
    assert_int_equal(svc_event_parse(with_nul, sizeof with_nul - 1, &e), SVC_EPROTO);
    assert_non_null(strstr(svc_last_error(), "a NUL byte at column 28"));
}

/* What the worker writes is what the service reads: every event kind with
 * every member set (non-finite numbers become null, and NaN on the way back). */
static void test_proto_round_trip(void **state)
{
    (void)state;
    svc_event in, out;
    char err[256];
    for (int k = SVC_EV_STARTED; k <= SVC_EV_INTERRUPTED; k++) {
        svc_event_init(&in, (svc_event_kind)k);
        in.pid = 4711;
        snprintf(in.device, sizeof in.device, "cuda:0");
        in.params = 2176;
        in.epochs = 3;
        in.steps_per_epoch = 8;
        in.train_samples = 256;
        in.test_samples = 64;
        in.resumed_epoch = 1;
        in.threads = 2;
        in.epoch = 2;
        in.step = 5;
        in.steps = 8;
        in.loss = 0.1 + 0.2; /* a double with 17 significant digits */
        in.acc = 1.0 / 3.0;
        in.images_per_sec = 12345.678901234567;
        in.elapsed = 1e-300;
        in.train_loss = NAN; /* diverged */
        in.train_acc = 0.5;
        in.test_loss = INFINITY;
        in.test_acc = 0.25;
        in.lr = 1e-3f;
        in.seconds = 2.5;
        in.samples_per_sec = 5.5e4;
        in.best_epoch = 2;
        snprintf(in.checkpoint, sizeof in.checkpoint, "/s/runs/1/last.safetensors");
        in.replayed = true;
        in.epochs_done = 2;
        in.best_test_acc = 0.75;
        snprintf(in.error, sizeof in.error, "disk \"full\"\nline two");
        in.code = 74;
        in.retryable = true;
        char *line = svc_event_format(&in);
        assert_non_null(line);
        assert_null(strchr(line, '\n')); /* one line, whatever the strings hold */
        assert_int_equal(parse(line, &out, err), 0);
        free(line);
        assert_int_equal(out.kind, k);
        switch (k) {
        case SVC_EV_STARTED:
            assert_int_equal(out.pid, 4711);
            assert_string_equal(out.device, "cuda:0");
            assert_int_equal(out.params + out.epochs + out.steps_per_epoch, 2176 + 3 + 8);
            assert_int_equal(out.train_samples + out.test_samples + out.resumed_epoch + out.threads, 256 + 64 + 1 + 2);
            break;
        case SVC_EV_PROGRESS:
            assert_int_equal(out.epoch * 100 + out.step * 10 + out.steps, 258);
            assert_true(out.loss == in.loss && out.acc == in.acc && out.images_per_sec == in.images_per_sec);
            assert_true(out.elapsed == in.elapsed);
            break;
        case SVC_EV_EPOCH:
            assert_true(isnan(out.train_loss) && isnan(out.test_loss));
            assert_true(out.train_acc == 0.5 && out.test_acc == 0.25 && out.lr == in.lr);
            assert_true(out.seconds == 2.5 && out.samples_per_sec == 5.5e4);
            assert_int_equal(out.best_epoch, 2);
            assert_string_equal(out.checkpoint, in.checkpoint);
            assert_true(out.replayed);
            break;
        case SVC_EV_DONE:
            assert_int_equal(out.epochs_done, 2);
            assert_true(out.best_test_acc == 0.75);
            assert_int_equal(out.best_epoch, 2);
            break;
        case SVC_EV_FAILED:
            assert_string_equal(out.error, in.error);
            assert_int_equal(out.code, 74);
            assert_true(out.retryable);
            break;
        case SVC_EV_INTERRUPTED: assert_int_equal(out.epochs_done, 2); break;
        }
    }
    /* optional members left empty are left out */
    svc_event_init(&in, SVC_EV_EPOCH);
    in.epoch = 1;
    char *line = svc_event_format(&in);
    assert_non_null(line);
    assert_null(strstr(line, "checkpoint"));
    assert_null(strstr(line, "replayed"));
    free(line);
}

typedef struct lines {
    char got[16][64];
    int n;
} lines;

static int collect(void *ctx, const char *line, size_t len)
{
    lines *l = ctx;
    assert_int_equal(strlen(line), len); /* NUL-terminated at len */
    snprintf(l->got[l->n++], 64, "%s", line);
    return 0;
}

static void test_linebuf(void **state)
{
    (void)state;
    svc_linebuf b;
    lines l = {0};
    svc_linebuf_init(&b, 8, false);
    /* partial lines are kept until their newline arrives */
    assert_int_equal(svc_linebuf_feed(&b, "ab", 2, collect, &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(svc_linebuf_feed(&b, "c\nde\n\nfg", 8, collect, &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.got[0], "abc");
    assert_string_equal(l.got[1], "de");
    assert_string_equal(l.got[2], "");
    assert_int_equal(svc_linebuf_feed(&b, "h", 1, collect, &l), 0);
    assert_int_equal(svc_linebuf_finish(&b, collect, &l), 0);
    assert_string_equal(l.got[3], "fgh");
    /* exactly max bytes is fine, one more is an error */
    assert_int_equal(svc_linebuf_feed(&b, "12345678\n", 9, collect, &l), 0);
    assert_string_equal(l.got[4], "12345678");
    assert_int_equal(svc_linebuf_feed(&b, "1234", 4, collect, &l), 0);
    assert_int_equal(svc_linebuf_feed(&b, "56789\n", 6, collect, &l), SVC_EPROTO);
    svc_linebuf_free(&b);
    /* truncating mode: pieces of max bytes */
    lines t = {0};
    svc_linebuf_init(&b, 4, true);
    assert_int_equal(svc_linebuf_feed(&b, "abcdefghij\nk\n", 13, collect, &t), 0);
    assert_int_equal(t.n, 4);
    assert_string_equal(t.got[0], "abcd");
    assert_string_equal(t.got[1], "efgh");
    assert_string_equal(t.got[2], "ij");
    assert_string_equal(t.got[3], "k");
    svc_linebuf_free(&b);
}

/* ---- devices ---- */

static void test_devices_parse(void **state)
{
    (void)state;
    svc_device_filter f;

    assert_int_equal(svc_devices_parse("auto", &f), 0);
    assert_true(f.all);
    assert_int_equal(svc_devices_parse("cpu", &f), 0);
    assert_false(f.all);
    assert_int_equal(f.n, 0);
    assert_int_equal(svc_devices_parse("0, 2", &f), 0);
    assert_int_equal(f.n, 2);
    assert_int_equal(f.ordinals[1], 2);
    assert_int_equal(svc_devices_parse("cpu,1", &f), 0);
    assert_int_equal(f.n, 1);
    assert_int_equal(svc_devices_parse("1,1", &f), SVC_EUSAGE);
    assert_non_null(strstr(svc_last_error(), "twice"));
    assert_int_equal(svc_devices_parse("gpu0", &f), SVC_EUSAGE);
    assert_int_equal(svc_devices_parse("0,", &f), SVC_EUSAGE);
    assert_int_equal(svc_devices_parse("-1", &f), SVC_EUSAGE);
}

static void test_placement(void **state)
{
    (void)state;
    svc_device_filter f;
    char warn[256], note[256];
    svc_slots s;
    svc_placement p;
    /* no GPU: cpu runs, cuda waits with a reason, auto takes the CPU */
    svc_devices_parse("auto", &f);
    svc_slots_init(&s, 0, &f, 1, 1, warn, sizeof warn);
    assert_int_equal(svc_slots_place(&s, "cuda", &p, note, sizeof note), SVC_PLACE_NEVER);
    assert_string_equal(note, "waiting: no cuda device on this host");
    assert_int_equal(svc_slots_place(&s, "cuda:3", &p, note, sizeof note), SVC_PLACE_NEVER);
    assert_string_equal(note, "waiting: no cuda device 3 on this host");
    assert_int_equal(svc_slots_place(&s, "auto", &p, note, sizeof note), SVC_PLACE_OK);
    assert_string_equal(p.device, "cpu");
    svc_slots_take(&s, &p);
    assert_int_equal(svc_slots_place(&s, "cpu", &p, note, sizeof note), SVC_PLACE_BUSY);
    assert_string_equal(note, "waiting for a free CPU slot");
    assert_int_equal(svc_slots_place(&s, NULL, &p, note, sizeof note), SVC_PLACE_BUSY);
    svc_slots_release(&s, &(svc_placement){.gpu = -1, .ordinal = -1});
    assert_int_equal(svc_slots_place(&s, "cpu", &p, note, sizeof note), SVC_PLACE_OK);

    /* two GPUs with two slots each, restricted to GPU 1 */
    svc_devices_parse("1,5", &f);
    svc_slots_init(&s, 2, &f, 1, 2, warn, sizeof warn);
    assert_non_null(strstr(warn, "cuda:5 is listed in devices but this host has 2 GPUs"));
    assert_int_equal(s.n_gpus, 1);
    assert_int_equal(svc_slots_place(&s, "cuda:0", &p, note, sizeof note), SVC_PLACE_NEVER);
    assert_non_null(strstr(note, "cuda:0 is not enabled"));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(svc_slots_place(&s, "auto", &p, note, sizeof note), SVC_PLACE_OK);
        assert_string_equal(p.device, "cuda:1");
        assert_int_equal(p.ordinal, 1);
        svc_slots_take(&s, &p);
    }
    /* GPU full: auto falls back to the CPU, cuda:1 waits */
    assert_int_equal(svc_slots_place(&s, "auto", &p, note, sizeof note), SVC_PLACE_OK);
    assert_string_equal(p.device, "cpu");
    assert_int_equal(svc_slots_place(&s, "cuda:1", &p, note, sizeof note), SVC_PLACE_BUSY);
    assert_string_equal(note, "waiting for a free slot on cuda:1");
    assert_int_equal(svc_slots_place(&s, "cuda", &p, note, sizeof note), SVC_PLACE_BUSY);
    /* reconfigured to both GPUs: the busy slots stay counted */
    svc_devices_parse("auto", &f);
    svc_slots_reconfigure(&s, &f, 0, 2, warn, sizeof warn);
    assert_int_equal(svc_slots_place(&s, "cuda", &p, note, sizeof note), SVC_PLACE_OK);
    assert_string_equal(p.device, "cuda:0");
    assert_int_equal(svc_slots_place(&s, "cpu", &p, note, sizeof note), SVC_PLACE_NEVER);
    assert_non_null(strstr(note, "cpu_slots is 0"));
    /* least loaded GPU first */
    assert_int_equal(svc_slots_place(&s, "auto", &p, note, sizeof note), SVC_PLACE_OK);
    assert_string_equal(p.device, "cuda:0");
    svc_slots_take(&s, &p);
    assert_int_equal(svc_slots_place(&s, "auto", &p, note, sizeof note), SVC_PLACE_OK);
    assert_string_equal(p.device, "cuda:0");
    svc_slots_take(&s, &p);
    assert_int_equal(svc_slots_place(&s, "auto", &p, note, sizeof note), SVC_PLACE_BUSY);
    assert_int_equal(svc_slots_place(&s, "tpu", &p, note, sizeof note), SVC_PLACE_NEVER);
}

/* ---- config ---- */

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

static void test_config_ok(void **state)
{
    (void)state;
    const char *p = write_file("ok.yaml", "experiments: specs\n"
                                          "db: /abs/e.db\n"
                                          "state_dir: st\n"
                                          "devices: [0, 1]\n"
                                          "data_roots: [/data, rel]\n"
                                          "cpu_slots: 2\n"
                                          "gpu_slots: 3\n"
                                          "max_attempts: 5\n"
                                          "worker_threads: 4\n"
                                          "settle_ms: 250\n"
                                          "stop_timeout_s: 7\n"
                                          "cancel_poll_ms: 300\n"
                                          "rescan_interval_s: 0\n"
                                          "log_level: debug\n"
                                          "worker_prefix: [nice, -n, \"10\"]\n"
                                          "placement: first_free\n"
                                          "limits: {spec_bytes: 64KiB, params: 1000, memory: 2GiB, yaml_depth: 8,\n"
                                          "         yaml_nodes: 500, sweep_combinations: 16}\n");
    svc_config c;
    spec_diags d = {0};
    svc_overrides o = {.config = p, .db_path = "cli.db"};
    assert_int_equal(svc_config_build(&c, &o, &d), 0);
    assert_int_equal(d.n, 0);
    char want[600];
    snprintf(want, sizeof want, "%s/specs", tmpdir);
    assert_string_equal(c.experiments, want); /* relative to the config's folder */
    assert_string_equal(c.db_path, "cli.db"); /* the command line wins */
    snprintf(want, sizeof want, "%s/st", tmpdir);
    assert_string_equal(c.state_dir, want);
    assert_string_equal(c.devices, "0,1");
    assert_int_equal(c.n_data_roots, 2);
    assert_string_equal(c.data_roots[0], "/data");
    snprintf(want, sizeof want, "%s/rel", tmpdir);
    assert_string_equal(c.data_roots[1], want);
    assert_int_equal(c.cpu_slots, 2);
    assert_int_equal(c.gpu_slots, 3);
    assert_int_equal(c.max_attempts, 5);
    assert_int_equal(svc_config_threads(&c), 4);
    assert_int_equal(c.settle_ms, 250);
    assert_int_equal(c.stop_timeout_ms, 7000);
    assert_int_equal(c.cancel_poll_ms, 300);
    assert_int_equal(c.rescan_interval_ms, 0);
    assert_int_equal(c.log_level, SVC_LOG_DEBUG);
    assert_int_equal(c.placement, SVC_POLICY_FIRST_FREE);
    assert_int_equal(c.n_worker_prefix, 3);
    assert_string_equal(c.worker_prefix[0], "nice");
    assert_string_equal(c.worker_prefix[2], "10");
    assert_int_equal(c.max_spec_bytes, 65536);
    assert_int_equal(c.max_params, 1000);
    assert_int_equal(c.max_memory_bytes, 2147483648u);
    spec_options so;
    svc_config_spec_options(&c, &so);
    assert_int_equal(so.max_file_bytes, 65536);
    assert_int_equal(so.max_depth, 8);
    assert_int_equal(so.max_nodes, 500);
    assert_int_equal(so.max_combinations, 16);
    assert_int_equal(so.n_data_roots, 2);
    svc_config_free(&c);

    /* defaults without a file */
    svc_overrides none = {0};
    assert_int_equal(svc_config_build(&c, &none, &d), 0);
    assert_string_equal(c.experiments, "experiments");
    assert_int_equal(c.cpu_slots, 1);
    assert_int_equal(c.gpu_slots, 1);
    assert_int_equal(c.max_attempts, 3);
    assert_int_equal(c.placement, SVC_POLICY_EARLIEST_FINISH);
    assert_int_equal(c.settle_ms, 500);
    svc_config_free(&c);
    /* an empty file is all defaults */
    o.config = write_file("empty.yaml", "# nothing\n");
    assert_int_equal(svc_config_build(&c, &o, &d), 0);
    svc_config_free(&c);
}

static void test_config_errors(void **state)
{
    (void)state;
    const char *p = write_file("bad.yaml", "experiments: exp\n"
                                           "cpu_slot: 2\n"
                                           "gpu_slots: -1\n"
                                           "devices: gpu\n"
                                           "log_level: loud\n"
                                           "limits:\n"
                                           "  memory: 3 bananas\n"
                                           "  paramz: 5\n"
                                           "settle_ms: \"100\"\n"
                                           "cpu_slots: 1\n"
                                           "cpu_slots: 2\n"
                                           "worker_prefix: [nice, {a: 1}]\n"
                                           "placement: fastest\n");
    svc_config c;
    spec_diags d = {0};
    svc_overrides o = {.config = p};
    assert_int_equal(svc_config_build(&c, &o, &d), SVC_EUSAGE);
    char *all = spec_diags_join(&d);
    static const char *const want[] = {
        "bad.yaml:2:1: cpu_slot: unknown key (did you mean 'cpu_slots'?)",
        "bad.yaml:3:12: gpu_slots: expected an integer from 0 to 64, found -1",
        "bad.yaml:4:10: devices: bad GPU number 'gpu'",
        "bad.yaml:5:12: log_level: expected error, warning, notice, info or debug, found loud",
        "bad.yaml:7:11: limits.memory: unknown unit 'bananas'",
        "bad.yaml:8:3: limits.paramz: unknown key (did you mean 'params'?)",
        "bad.yaml:9:12: settle_ms: expected an integer, found 100",
        "bad.yaml:11:1: cpu_slots: duplicate key",
        "bad.yaml:12:23: worker_prefix: expected a word, found a collection",
        "bad.yaml:13:12: placement: expected earliest_finish or first_free, found fastest",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(all, want[i])) {
            print_error("missing '%s' in:\n%s\n", want[i], all);
            fail();
        }
    assert_int_equal(d.n, (int)(sizeof want / sizeof *want));
    free(all);
    spec_diags_clear(&d);
    /* not YAML, located */
    o.config = write_file("broken.yaml", "a: [1, 2\nb: 3\n");
    assert_int_equal(svc_config_build(&c, &o, &d), SVC_EUSAGE);
    assert_int_equal(d.n, 1);
    assert_true(d.v[0].line >= 1);
    spec_diags_clear(&d);
    o.config = write_file("list.yaml", "- 1\n- 2\n");
    assert_int_equal(svc_config_build(&c, &o, &d), SVC_EUSAGE);
    assert_non_null(strstr(d.v[0].message, "expected a mapping"));
    spec_diags_clear(&d);
    o.config = "/nonexistent/epochd.yaml";
    assert_int_equal(svc_config_build(&c, &o, &d), SVC_EUSAGE);
    assert_non_null(strstr(d.v[0].message, "cannot read"));
    spec_diags_clear(&d);
}

/* ---- file names ---- */

static void test_names(void **state)
{
    (void)state;
    const char *ok[] = {"a.yaml", "b.yml", "x.y.yaml", "4913.yaml"};
    const char *no[] = {".a.yaml", ".#a.yaml", "a.yaml~", "#a.yaml#", ".a.yaml.swp", "a.yaml.swp", "4913",
                        "a.tmp", "a.yaml.tmp", "a.YAML.part", "yaml", ".yaml", "a.json", ""};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        assert_true(svc_watch_name_ok(ok[i]));
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (svc_watch_name_ok(no[i])) {
            print_error("'%s' should be ignored\n", no[i]);
            fail();
        }
}

/* ---- map ---- */

static void test_map(void **state)
{
    (void)state;
    svc_map m;
    svc_map_init(&m);
    int vals[300];
    char k[32];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "key%d", i);
        assert_int_equal(svc_map_put(&m, k, &vals[i]), 0);
    }
    assert_int_equal(m.n, 300);
    assert_ptr_equal(svc_map_get(&m, "key123"), &vals[123]);
    assert_null(svc_map_get(&m, "key300"));
    /* deleting while iterating */
    int seen = 0;
    for (svc_map_iter it = svc_map_begin(&m); svc_map_next(&it);) {
        int i = (int)((int *)it.value - vals);
        seen++;
        if (i % 2) {
            snprintf(k, sizeof k, "%s", it.key);
            assert_ptr_equal(svc_map_del(&m, k), it.value);
        }
    }
    assert_int_equal(seen, 300);
    assert_int_equal(m.n, 150);
    assert_null(svc_map_get(&m, "key123"));
    assert_ptr_equal(svc_map_get(&m, "key124"), &vals[124]);
    svc_map_free(&m);
}

/* ---- sd_notify ---- */

static void test_notify(void **state)
{
    (void)state;
    char path[100];
    snprintf(path, sizeof path, "%.80s/notify.sock", tmpdir);
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(svc_notify("READY=1"), 0); /* not under systemd: nothing to do */
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(svc_notify("READY=1"), 1);
    assert_int_equal(svc_notifyf("STATUS=%d queued", 3), 1);
    char buf[128];
    ssize_t n = recv(s, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "READY=1");
    n = recv(s, buf, sizeof buf - 1, 0);
    buf[n] = '\0';
    assert_string_equal(buf, "STATUS=3 queued");
    close(s);
    svc_notify_close();
    /* abstract socket */
    char name[64];
    snprintf(name, sizeof name, "epochd-unit-%d", (int)getpid());
    s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un ab = {.sun_family = AF_UNIX};
    memcpy(ab.sun_path + 1, name, strlen(name));
    assert_int_equal(bind(s, (struct sockaddr *)&ab, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                                                              strlen(name))), 0);
    char env[80];
    snprintf(env, sizeof env, "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);
    assert_int_equal(svc_notify("WATCHDOG=1"), 1);
    n = recv(s, buf, sizeof buf - 1, 0);
    buf[n] = '\0';
    assert_string_equal(buf, "WATCHDOG=1");
    close(s);
    svc_notify_close();
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_true(svc_notify("READY=1") < 0);
    unsetenv("NOTIFY_SOCKET");
    /* watchdog settings */
    uint64_t us = 0;
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "3000000", 1);
    assert_true(svc_notify_watchdog(&us));
    assert_int_equal(us, 3000000);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_true(svc_notify_watchdog(&us));
    setenv("WATCHDOG_PID", "1", 1);
    assert_false(svc_notify_watchdog(&us));
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "soon", 1);
    assert_false(svc_notify_watchdog(&us));
    unsetenv("WATCHDOG_USEC");
    assert_false(svc_notify_watchdog(&us));
}

/* ---- logging ---- */

static void test_log(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/log.txt", tmpdir);
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    dup2(fileno(f), 2);
    svc_log_set_level(SVC_LOG_INFO);
    svc_log(SVC_LOG_ERR, "broken %d", 1);
    svc_log_run(SVC_LOG_WARNING, 12, "two\nlines");
    svc_log(SVC_LOG_DEBUG, "hidden at info");
    svc_log_set_level(SVC_LOG_DEBUG);
    svc_log(SVC_LOG_DEBUG, "shown at debug");
    dup2(saved, 2);
    close(saved);
    rewind(f);
    char text[512] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_string_equal(text, "<3>epochd: broken 1\n"
                              "<4>epochd[run 12]: two\n"
                              "<4>epochd[run 12]: lines\n"
                              "<7>epochd: shown at debug\n");
    assert_int_equal(svc_log_level_parse("warning"), SVC_LOG_WARNING);
    assert_int_equal(svc_log_level_parse("chatty"), -1);
    svc_log_set_level(SVC_LOG_INFO);
}

/* ---- the watcher ---- */

typedef struct {
    svc_watch *w;
    int ready, closed;
} close_in_cb;

static int close_on_first_file(void *ctx, const char *path, const char *buf, size_t len)
{
    (void)path, (void)buf, (void)len;
    close_in_cb *c = ctx;
    c->ready++;
    svc_watch_close(c->w, NULL, NULL); /* what svc_fatal does from ingest */
    svc_watch_close(c->w, NULL, NULL); /* and a second closer is harmless */
    return 0;
}

static void watch_closed(void *ctx) { ((close_in_cb *)ctx)->closed++; }

/* A callback that closes the watcher while it walks several settled files
 * (the service's fatal stop from inside ingest): no file is handed on after
 * the close, nothing is touched after being freed (ASan would say), and
 * done runs once. */
static void test_watch_close_in_callback(void **state)
{
    (void)state;
    char root[300], path[400];
    snprintf(root, sizeof root, "%s/watch-close", tmpdir);
    assert_int_equal(mkdir(root, 0755), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/spec%d.yaml", root, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs("name: x\n", f);
        fclose(f);
    }
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    close_in_cb c = {0};
    svc_watch_opts o = {.settle_ms = 1, .max_bytes = 4096, .rescan_interval_ms = 0};
    svc_watch_cbs cbs = {.ctx = &c, .file_ready = close_on_first_file};
    assert_int_equal(svc_watch_new(&loop, root, &o, &cbs, &c.w), 0);
    /* the close in the callback has no done: take the watcher's handles down
     * with the loop, then check done through a second watcher closed normally */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c.ready, 1);
    svc_watch *w2;
    assert_int_equal(svc_watch_new(&loop, root, &o, &(svc_watch_cbs){0}, &w2), 0);
    svc_watch_close(w2, watch_closed, &c);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c.closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- a run's spec: stored, or derived from its sweep file (run_spec.h) ---- */

/* The derivation gives the full expansion's bytes, checked against the
 * identity; a stored text that no longer gives the combination, or one
 * whose expansion differs from the identity, is an error that says so -
 * never a different spec given to a worker. */
static void test_run_spec_text(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/run_spec.db", tmpdir);
    db *d = NULL;
    assert_int_equal(db_open(path, DB_OPEN_CREATE, &d), 0);
    static const char file[] = "name: \"s{seed}\"\ndata: {dataset: synthetic}\n"
                               "model: {template: mlp, units: [4]}\nmatrix: {seed: [1, 2]}\n";
    spec_options o;
    spec_options_default(&o);
    o.check_files = false;
    spec_file *sf = NULL;
    assert_int_equal(spec_file_load_buffer("/e/s.yaml", file, strlen(file), &o, &sf), 0);
    assert_int_equal(sf->n_entries, 2);
    assert_int_equal(db_spec_text_put(d, sf->sha256, file, strlen(file)), 0);
    int64_t ids[4];
    for (int i = 0; i < 2; i++) {
        db_run_new n = {.name = sf->entries[i].name, .spec_path = "/e/s.yaml", .spec_sha256 = sf->entries[i].sha256,
                        .spec_file_sha256 = sf->sha256, .sweep = sf->entries[i].sweep_json};
        assert_int_equal(db_run_create(d, &n, &ids[i]), 0);
    }
    /* a combination whose identity its file does not give (edited in the database), and one with no values */
    db_run_new bad = {.name = "bad", .spec_path = "/e/s.yaml", .spec_sha256 = "00", .spec_file_sha256 = sf->sha256,
                      .sweep = "{\"seed\":2}"};
    assert_int_equal(db_run_create(d, &bad, &ids[2]), 0);
    db_run_new gone = {.name = "gone", .spec_path = "/e/s.yaml", .spec_sha256 = "00", .spec_file_sha256 = sf->sha256,
                       .sweep = "{\"seed\":3}"};
    assert_int_equal(db_run_create(d, &gone, &ids[3]), 0);
    for (int i = 0; i < 2; i++) {
        db_run *r = NULL;
        assert_int_equal(db_run_get(d, ids[i], &r), 0);
        assert_null(r->spec);
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(svc_run_spec_text(d, r, NULL, &text, &len), 0);
        assert_non_null(text);
        assert_int_equal(len, sf->entries[i].text_len);
        assert_memory_equal(text, sf->entries[i].text, len);
        assert_non_null(strstr(text, i ? "seed: 2" : "seed: 1"));
        free(text);
        db_run_free(r);
    }
    db_run *r = NULL;
    char *text = NULL;
    assert_int_equal(db_run_get(d, ids[2], &r), 0);
    assert_int_equal(svc_run_spec_text(d, r, NULL, &text, NULL), SVC_EINVAL);
    assert_null(text);
    assert_non_null(strstr(svc_last_error(), "not its identity"));
    db_run_free(r);
    assert_int_equal(db_run_get(d, ids[3], &r), 0);
    assert_int_equal(svc_run_spec_text(d, r, NULL, &text, NULL), SVC_EINVAL);
    assert_null(text);
    assert_non_null(strstr(svc_last_error(), "no combination of the sweep has the values {\"seed\":3}"));
    db_run_free(r);
    /* a plain spec's own text; none at all */
    db_run plain = {.id = 9, .spec = "name: p\n"}, none = {.id = 10};
    assert_int_equal(svc_run_spec_text(d, &plain, NULL, &text, NULL), 0);
    assert_string_equal(text, "name: p\n");
    free(text);
    assert_int_equal(svc_run_spec_text(d, &none, NULL, &text, NULL), 0);
    assert_null(text);
    spec_file_free(sf);
    db_close(d);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/epochd-serve-units-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_events), cmocka_unit_test(test_proto_round_trip), cmocka_unit_test(test_proto_errors),
        cmocka_unit_test(test_linebuf),      cmocka_unit_test(test_devices_parse),
        cmocka_unit_test(test_placement),    cmocka_unit_test(test_config_ok),
        cmocka_unit_test(test_config_errors), cmocka_unit_test(test_names),
        cmocka_unit_test(test_map),          cmocka_unit_test(test_notify),
        cmocka_unit_test(test_log),          cmocka_unit_test(test_watch_close_in_callback),
        cmocka_unit_test(test_run_spec_text),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
