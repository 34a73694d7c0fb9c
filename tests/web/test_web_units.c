/* Unit tests of the dashboard's pure parts: listen addresses (what is
 * loopback, what is refused), the per-run ring of worker messages, and the
 * HTML tables (escaping, marks, links). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/text_table.h"
#include "service/config.h"
#include "service/error.h"
#include "service/listen.h"
#include "service/observe.h"
#include "service/observe_hooks.h"
#include "web/internal.h"

static void test_listen(void **state)
{
    (void)state;
    static const struct {
        const char *in, *text;
        int loopback, port;
    } ok[] = {
        {"127.0.0.1:8080", "127.0.0.1:8080", 1, 8080}, {"8080", "127.0.0.1:8080", 1, 8080},
        {"localhost:0", "127.0.0.1:0", 1, 0},          {"127.1.2.3:1", "127.1.2.3:1", 1, 1},
        {"[::1]:9000", "[::1]:9000", 1, 9000},         {"0.0.0.0:8080", "0.0.0.0:8080", 0, 8080},
        {"[::]:80", "[::]:80", 0, 80},                 {"192.168.1.20:65535", "192.168.1.20:65535", 0, 65535},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        svc_listen l;
        if (svc_listen_parse(ok[i].in, &l) != 0)
            fail_msg("%s: %s", ok[i].in, svc_last_error());
        assert_string_equal(l.text, ok[i].text);
        assert_int_equal(l.loopback, ok[i].loopback);
        assert_int_equal(l.port, ok[i].port);
    }
    static const char *const bad[] = {"", "example.com:80", "::1:80", "127.0.0.1:", "127.0.0.1:65536", ":8080",
                                      "127.0.0.1:-1", "127.0.0.1:8o", "[::1]80", "[::1", "1.2.3.4.5:80", "x",
                                      "127.0.0.1:+80", "[fe80::1%eth0]:80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        svc_listen l;
        if (svc_listen_parse(bad[i], &l) != SVC_EUSAGE)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(svc_last_error()) > 0);
    }
}

/* The config's http block: read, paths taken from the file's folder, every
 * problem located. */
static int load_config(const char *text, svc_config *c, char *diag, size_t len)
{
    char path[] = "/tmp/epochd-web-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(svc_config_defaults(c), 0);
    spec_diags d = {0};
    int rc = svc_config_load(c, path, &d);
    diag[0] = '\0';
    if (d.n)
        spec_diag_format(&d.v[0], diag, len);
    spec_diags_clear(&d);
    unlink(path);
    return rc;
}

static void test_config_http(void **state)
{
    (void)state;
    svc_config c;
    char diag[1024];
    assert_int_equal(svc_config_defaults(&c), 0);
    assert_null(c.http_listen); /* off unless configured */
    svc_config_free(&c);

    assert_int_equal(load_config("http: {listen: \"127.0.0.1:8080\", token_file: tok}\n", &c, diag, sizeof diag), 0);
    assert_string_equal(c.http_listen, "127.0.0.1:8080");
    assert_string_equal(c.http_token_file, "/tmp/tok"); /* beside the config file */
    svc_overrides o = {.http_listen = "[::1]:9"};
    assert_int_equal(svc_config_override(&c, &o), 0);
    assert_string_equal(c.http_listen, "[::1]:9");
    svc_config_free(&c);

    assert_int_equal(load_config("cpu_slots: 1\nhttp:\n  listen: example.com:80\n", &c, diag, sizeof diag),
                     SVC_EUSAGE);
    assert_non_null(strstr(diag, ":3:11: http.listen:"));
    assert_non_null(strstr(diag, "not a numeric"));
    svc_config_free(&c);
    assert_int_equal(load_config("http: {lisen: 8080}\n", &c, diag, sizeof diag), SVC_EUSAGE);
    assert_non_null(strstr(diag, "http.lisen: unknown key (did you mean 'listen'?)"));
    svc_config_free(&c);
    assert_int_equal(load_config("http: 8080\n", &c, diag, sizeof diag), SVC_EUSAGE);
    assert_non_null(strstr(diag, "http: expected a mapping"));
    svc_config_free(&c);
}

static void test_messages_ring(void **state)
{
    (void)state;
    svc_messages *m;
    assert_int_equal(svc_messages_new(&m), 0);
    char line[64];
    for (int i = 0; i < SVC_MESSAGE_LINES + 10; i++) {
        int n = snprintf(line, sizeof line, "line %d", i);
        svc_messages_add(m, 7, line, (size_t)n);
    }
    char **lines;
    size_t n;
    assert_int_equal(svc_messages_get(m, 7, &lines, &n), 0);
    assert_int_equal(n, SVC_MESSAGE_LINES); /* the last 50, oldest first */
    for (size_t i = 0; i < n; i++) {
        snprintf(line, sizeof line, "line %zu", i + 10);
        assert_string_equal(lines[i], line);
        free(lines[i]);
    }
    free(lines);
    assert_int_equal(svc_messages_get(m, 8, &lines, &n), 0);
    assert_int_equal(n, 0);
    assert_null(lines);

    /* a long line keeps its start */
    char *longl = malloc(5000);
    assert_non_null(longl);
    memset(longl, 'x', 5000);
    svc_messages_add(m, 9, longl, 5000);
    assert_int_equal(svc_messages_get(m, 9, &lines, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(lines[0]), SVC_MESSAGE_BYTES - 1);
    free(lines[0]);
    free(lines);
    free(longl);

    /* past SVC_MESSAGE_RUNS runs the one written longest ago makes room; run 7 was first */
    for (int64_t r = 100; r < 100 + SVC_MESSAGE_RUNS - 1; r++)
        svc_messages_add(m, r, "x", 1);
    assert_int_equal(svc_messages_get(m, 7, &lines, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(svc_messages_get(m, 9, &lines, &n), 0); /* written after 7: kept */
    assert_int_equal(n, 1);
    free(lines[0]);
    free(lines);
    svc_messages_add(m, 0, "no run", 6); /* ignored */
    assert_int_equal(svc_messages_get(m, 0, &lines, &n), 0);
    assert_int_equal(n, 0);
    svc_messages_free(m);
    svc_messages_free(NULL);
}

/* Writers and readers at once: every copy is a whole line (run under ASan). */
static void *writer(void *arg)
{
    svc_messages *m = arg;
    char line[64];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(line, sizeof line, "line %08d end", i);
        svc_messages_add(m, 1 + i % 3, line, (size_t)n);
    }
    return NULL;
}

static void test_messages_threads(void **state)
{
    (void)state;
    svc_messages *m;
    assert_int_equal(svc_messages_new(&m), 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, writer, m), 0);
    for (int k = 0; k < 2000; k++) {
        char **lines;
        size_t n;
        assert_int_equal(svc_messages_get(m, 1 + k % 3, &lines, &n), 0);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(strlen(lines[i]), strlen("line 00000000 end"));
            assert_int_equal(strncmp(lines[i], "line ", 5), 0);
            free(lines[i]);
        }
        free(lines);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    svc_messages_free(m);
}

static void test_cache(void **state)
{
    (void)state;
    web_cache *c;
    assert_int_equal(web_cache_new(&c), 0);
    char *body;
    size_t len;
    int status;
    const char *type;
    assert_false(web_cache_get(c, "/", &body, &len, &status, &type));
    web_cache_put(c, "/", "hello", 5, 200, "text/plain");
    assert_true(web_cache_get(c, "/", &body, &len, &status, &type));
    assert_int_equal(len, 5);
    assert_memory_equal(body, "hello", 5);
    assert_int_equal(status, 200);
    assert_string_equal(type, "text/plain");
    free(body);
    assert_false(web_cache_get(c, "/?a=1", &body, &len, &status, &type)); /* another key */
    /* the bound on all bodies together: five answers of 8 MiB keep the newest (the oldest go) */
    size_t big = 8u << 20;
    char *blob = calloc(1, big);
    assert_non_null(blob);
    char key[16];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "/big%d", i);
        blob[0] = (char)('0' + i);
        web_cache_put(c, key, blob, big, 200, "text/plain");
    }
    /* 32 MiB at most: "/" went with the fourth, big0 with the fifth */
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "/big%d", i);
        bool hit = web_cache_get(c, key, &body, &len, &status, &type);
        assert_int_equal(hit, i > 0);
        if (hit) {
            assert_int_equal(body[0], '0' + i);
            free(body);
        }
    }
    assert_false(web_cache_get(c, "/", &body, &len, &status, &type));
    web_cache_put(c, "/huge", blob, (8u << 20) + 1, 200, "text/plain"); /* too large: not kept */
    assert_false(web_cache_get(c, "/huge", &body, &len, &status, &type));
    free(blob);
    /* an answer is fresh for WEB_CACHE_MS at most */
    web_cache_put(c, "/old", "x", 1, 200, "text/plain");
    usleep((WEB_CACHE_MS + 100) * 1000);
    assert_false(web_cache_get(c, "/old", &body, &len, &status, &type));
    web_cache_free(c);
    web_cache_free(NULL);
}

static const char *link_name(void *ctx, size_t row, size_t col, char *buf, size_t len)
{
    (void)ctx;
    if (col != 1)
        return NULL;
    snprintf(buf, len, "/runs/%zu?x=\"<a>\"&y", row + 1);
    return buf;
}

static void test_html_table(void **state)
{
    (void)state;
    cli_table *t = cli_table_new(3);
    assert_non_null(t);
    assert_int_equal(cli_table_column(t, 0, "id", 1), 0);
    assert_int_equal(cli_table_column(t, 1, "<name>", 0), 0);
    assert_int_equal(cli_table_column(t, 2, "acc", 1), 0);
    assert_int_equal(cli_table_row(t), 0);
    assert_int_equal(cli_table_set(t, 0, "1", 0), 0);
    assert_int_equal(cli_table_set(t, 1, "<script>alert('x')</script> & \"q\"", 0), 0);
    assert_int_equal(cli_table_set(t, 2, "0.9152", 1), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(cli_table_print_html(t, f, link_name, NULL), 0);
    fclose(f);
    const char *want =
        "<table class=\"data sortable\">\n"
        "<thead><tr><th class=\"num\">id</th><th>&lt;name&gt;</th><th class=\"num\">acc</th></tr></thead>\n"
        "<tbody>\n"
        "<tr><td class=\"num\">1</td><td><a href=\"/runs/1?x=&quot;&lt;a&gt;&quot;&amp;y\">"
        "&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt; &amp; &quot;q&quot;</a></td>"
        "<td class=\"num best\"><strong>0.9152</strong></td></tr>\n"
        "</tbody>\n</table>\n";
    assert_string_equal(buf, want);
    free(buf);
    cli_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_config_http),
        cmocka_unit_test(test_messages_ring),
        cmocka_unit_test(test_messages_threads),
        cmocka_unit_test(test_html_table),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
