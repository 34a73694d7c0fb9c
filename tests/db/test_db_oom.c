/* Fault injection for db/: let N allocations succeed and fail the next, for
 * every N until a whole sequence of calls (open and migrate a new file,
 * create, start, record epochs and progress, read the leaderboard and the
 * lists, finish) goes through. Both SQLite's allocator (sqlite3_config) and
 * db/'s own malloc/calloc/realloc/strdup (linker --wrap) are counted. Every
 * failure must come back as a negative code with a message; nothing may
 * crash or leak (run under ASan or valgrind). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "db/db.h"

static long countdown = -1; /* allocations left before one fails; < 0: never */
static long failures;

static int should_fail(void)
{
    if (countdown < 0)
        return 0;
    if (countdown == 0) {
        failures++;
        countdown = -1; /* one failure per try, as SQLite's own tests do */
        return 1;
    }
    countdown--;
    return 0;
}

/* db/'s own allocations (linked with -Wl,--wrap=...) */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { return should_fail() ? NULL : __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }

/* SQLite's allocations, through the default allocator */
static sqlite3_mem_methods base;
static void *m_malloc(int n) { return should_fail() ? NULL : base.xMalloc(n); }
static void *m_realloc(void *p, int n) { return should_fail() ? NULL : base.xRealloc(p, n); }
static void m_free(void *p) { base.xFree(p); }
static int m_size(void *p) { return base.xSize(p); }
static int m_roundup(int n) { return base.xRoundup(n); }
static int m_init(void *a) { return base.xInit(a); }
static void m_shutdown(void *a) { base.xShutdown(a); }

static char dir[256];

/* The sequence; returns 0 if every call succeeded, else the first failing
 * call's code, having checked that it carries a message. */
static int sequence(const char *path)
{
    db *d = NULL;
    int rc;
    db_clear_error();
#define STEP(call)                                                      \
    do {                                                                \
        if ((rc = (call)) != DB_OK) {                                   \
            assert_true(rc < 0);                                        \
            if (!*db_last_error())                                      \
                fail_msg("%s failed (%d) without a message", #call, rc); \
            goto out;                                                   \
        }                                                               \
    } while (0)
    STEP(db_open(path, DB_OPEN_CREATE, &d));
    db_run_new n = {.name = "oom", .spec_path = "x.yaml", .spec_sha256 = "ab", .spec = "name: oom\n",
                    .template_name = "mlp", .epochs_planned = 2, .sweep = "{\"k\":1}"};
    int64_t id, id2;
    STEP(db_run_create(d, &n, &id));
    STEP(db_run_start(d, id, "cpu", 42));
    STEP(db_run_progress(d, id, &(db_progress){.epoch = 1, .fraction = 0.5, .images_per_sec = 10}));
    STEP(db_begin(d));
    db_epoch e = {.run_id = id, .epoch = 1, .train_loss = 1, .train_acc = 0.5, .test_loss = 1, .test_acc = 0.5,
                  .lr = 0.1, .seconds = 1, .samples_per_sec = 10};
    rc = db_epoch_put(d, &e);
    if (rc == DB_OK)
        rc = db_run_set_checkpoint(d, id, "ck", 1);
    if (rc != DB_OK) {
        assert_true(*db_last_error());
        db_rollback(d);
        goto out;
    }
    STEP(db_commit(d));
    STEP(db_run_create_invalid(d, &n, "x.yaml:1:1: bad", &id2));
    db_board *b = NULL;
    STEP(db_leaderboard(d, NULL, &b));
    assert_int_equal(b->n, 2);
    db_board_free(b);
    db_run_list *l = NULL;
    const char *pat[] = {"o*"};
    db_filter f = {.names = pat, .n_names = 1};
    STEP(db_runs_list(d, &f, DB_ORDER_RECENT, &l));
    db_run_list_free(l);
    db_run *r = NULL;
    STEP(db_run_get(d, id, &r));
    db_run_free(r);
    db_epoch *ev = NULL;
    size_t ne = 0;
    STEP(db_epochs_get(d, id, &ev, &ne));
    free(ev);
    STEP(db_run_finish(d, id, DB_DONE, NULL));
out:
    countdown = -1; /* closing is not under test */
    db_close(d);
    return rc;
#undef STEP
}

static void test_every_allocation_failure(void **state)
{
    (void)state;
    long n;
    int reported = 0;
    /* Every point among the first ones (opening, the pragmas, the start of
     * the migration), then every 37th: the whole sequence has about 18,000
     * (parsing the schema dominates), and each try builds a new file. */
    long tried = 0;
    for (n = 0; n < 1000000; n += n < 400 ? 1 : 37, tried++) {
        char path[512];
        snprintf(path, sizeof path, "%s/oom-%ld.db", dir, n);
        long before = failures;
        countdown = n;
        int rc = sequence(path);
        int injected = failures > before;
        if (!injected) {
            assert_int_equal(rc, DB_OK); /* nothing failed, so everything worked */
            break;
        }
        reported += rc != DB_OK;
        /* an injected failure SQLite recovered from is fine; a reported one is too */
        unlink(path);
        char side[600];
        snprintf(side, sizeof side, "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", path);
        unlink(side);
    }
    printf("db oom: %ld of %ld allocation points tried, %d failures reported as errors\n", tried, n, reported);
    assert_true(tried > 50);   /* the sequence allocates; we did try */
    assert_true(reported > 0); /* and failures were reported, not swallowed */
}

int main(void)
{
    sqlite3_mem_methods mine;
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &base) != SQLITE_OK)
        return 1;
    mine = base;
    mine.xMalloc = m_malloc;
    mine.xRealloc = m_realloc;
    mine.xFree = m_free;
    mine.xSize = m_size;
    mine.xRoundup = m_roundup;
    mine.xInit = m_init;
    mine.xShutdown = m_shutdown;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mine) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0) != SQLITE_OK)
        return 1;
    /* many files are created: tmpfs if there is one (fsync is free there) */
    snprintf(dir, sizeof dir, "%s/epochd-test-oom-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_allocation_failure)};
    int rc = cmocka_run_group_tests_name("db_oom", tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}
