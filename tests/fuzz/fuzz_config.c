/* Fuzz target: the service's config file (service/config.c on
 * schema/ytree.c). The input is the file. Properties: a rejected file leaves
 * the settings untouched and says why (at least one located message); an
 * accepted one yields settings within the documented ranges. Built as a
 * fuzzer with -Dfuzz=true (scripts/fuzz config); otherwise
 * tests/fuzz/replay.c runs it over tests/fuzz/corpus/config. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/config.h"
#include "service/error.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_config: property failed: %s (line %d)\n", #cond, __LINE__);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char path[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/epochd-fuzz-config-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        close(fd);
    }
    FILE *f = fopen(path, "wb");
    CHECK(f);
    CHECK(fwrite(data, 1, size, f) == size);
    CHECK(fclose(f) == 0);
    svc_config c;
    CHECK(svc_config_defaults(&c) == 0);
    svc_config before = c;
    spec_diags d = {0};
    int rc = svc_config_load(&c, path, &d);
    if (rc == 0) {
        CHECK(d.n == 0);
        CHECK(c.cpu_slots >= 0 && c.cpu_slots <= 1024 && c.gpu_slots >= 0 && c.gpu_slots <= 64);
        CHECK(c.max_attempts >= 1 && c.worker_threads >= 0 && c.settle_ms >= 0 && c.stop_timeout_ms >= 1000);
        CHECK(c.n_data_roots >= 0 && c.n_data_roots <= SVC_MAX_DATA_ROOTS);
        for (int i = 0; i < c.n_data_roots; i++)
            CHECK(c.data_roots[i] && c.data_roots[i][0]);
        CHECK(c.experiments && c.db_path && c.state_dir && c.devices);
        CHECK(svc_config_threads(&c) >= 1);
    } else {
        CHECK(rc == SVC_EUSAGE || rc == SVC_ENOMEM);
        CHECK(rc == SVC_ENOMEM || d.n >= 1);
        CHECK(c.experiments == before.experiments && c.db_path == before.db_path); /* untouched */
    }
    spec_diags_clear(&d);
    svc_config_free(&c);
    return 0;
}
