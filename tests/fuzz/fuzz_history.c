/* Fuzz target: the files of a run's state folder as a resuming worker
 * reads them (service/history.c) - untrusted input like any other, since
 * anyone with access to the folder can write them.
 *
 * The first input byte chooses what the rest is: even, the run's
 * epochs.jsonl beside a valid last.safetensors of epoch byte/2 % 8; odd, a
 * last.safetensors itself. Properties: nothing blocks, crashes or grows
 * with the numbers in the files; the epochs kept for replay are ascending,
 * unique and within the checkpoint's epoch, each parses back to an epoch
 * event, and the history is rewritten to exactly those lines. Built as a
 * fuzzer with -Dfuzz=true (scripts/fuzz history); otherwise
 * tests/fuzz/replay.c runs it over tests/fuzz/corpus/history. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/safetensors.h"
#include "service/history.h"
#include "service/protocol.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_history: property failed: %s (line %d)\n", #cond, __LINE__);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char sha[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static char dir[256];

static void put(const char *name, const uint8_t *data, size_t size)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    CHECK(f);
    CHECK(fwrite(data, 1, size, f) == size);
    CHECK(fclose(f) == 0);
}

static void checkpoint_of_epoch(int64_t epoch)
{
    eng_st_writer *w = NULL;
    char e[32], p[512];
    snprintf(e, sizeof e, "%lld", (long long)epoch);
    snprintf(p, sizeof p, "%s/last.safetensors", dir);
    float x = 1.0f;
    int64_t shape[1] = {1};
    CHECK(eng_st_writer_new(&w) == 0);
    CHECK(eng_st_add(w, "w", ENG_ST_F32, shape, 1, &x) == 0);
    CHECK(eng_st_add_metadata(w, "epoch", e) == 0 && eng_st_add_metadata(w, "spec_sha256", sha) == 0);
    CHECK(eng_st_write_file(w, p) == 0);
    eng_st_writer_free(w);
}

static void clear(void)
{
    const char *names[] = {"epochs.jsonl", "epochs.jsonl.tmp", "last.safetensors", "best.safetensors",
                           "committed.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
}

/* The epochs.jsonl lines after open: the replayed epochs, in order. */
static void check_rewritten(const svc_history *h, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/epochs.jsonl", dir);
    FILE *f = fopen(p, "rb");
    CHECK(f);
    char *line = NULL;
    size_t cap = 0, i = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        CHECK(line[len - 1] == '\n' && i < n);
        svc_event e, want;
        CHECK(svc_event_parse(line, (size_t)len - 1, &e) == 0);
        CHECK(svc_history_replayed(h, i, &want) == 0);
        CHECK(e.kind == SVC_EV_EPOCH && e.epoch == want.epoch);
        i++;
    }
    CHECK(i == n);
    free(line);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/epochd-fuzz-history-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        CHECK(mkdtemp(dir));
    }
    if (size < 1)
        return 0;
    clear();
    svc_history h;
    if (data[0] & 1) {
        put("last.safetensors", data + 1, size - 1);
        int64_t epoch = -1;
        char s[65];
        if (svc_checkpoint_meta(dir, &epoch, s) == 0) /* a folder is not a checkpoint */
            CHECK(0);
        char p[512];
        snprintf(p, sizeof p, "%s/last.safetensors", dir);
        if (svc_checkpoint_meta(p, &epoch, s) == 0)
            CHECK(epoch >= 0 && strlen(s) <= 64);
        /* a resume with it: either it is this spec's checkpoint, or the run starts afresh */
        if (svc_history_open(&h, dir, sha, true) == 0)
            svc_history_close(&h);
        return 0;
    }
    int64_t ck = (data[0] >> 1) % 8;
    put("epochs.jsonl", data + 1, size - 1);
    checkpoint_of_epoch(ck);
    if (svc_history_open(&h, dir, sha, true) != 0)
        return 0;
    size_t n = svc_history_replay_count(&h, INT64_MAX);
    CHECK(n <= (size_t)ck);
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        svc_event e;
        CHECK(svc_history_replayed(&h, i, &e) == 0);
        CHECK(e.kind == SVC_EV_EPOCH && e.replayed && !e.checkpoint[0]);
        CHECK(e.epoch > prev && e.epoch <= ck);
        prev = e.epoch;
    }
    CHECK(svc_history_replay_count(&h, prev) == n);
    check_rewritten(&h, n);
    svc_history_close(&h);
    return 0;
}
