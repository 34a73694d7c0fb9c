/* Fuzz target: CIFAR-10 and CIFAR-100 binary records
 * (engine/dataset_cifar.c), as eng_dataset_cifar_parse reads them from
 * memory.
 *
 * The first input byte chooses CIFAR-100 (odd) or CIFAR-10 (even); the rest
 * is the file. Properties, beyond ASan/UBSan: an accepted file is a whole
 * number of records whose labels are in range (CIFAR-100: coarse below 20,
 * fine below 100), and the dataset holds exactly their labels and pixels;
 * a refused one has a partial record or a bad label. Built as a fuzzer with
 * -Dfuzz=true (scripts/fuzz cifar); otherwise tests/fuzz/replay.c runs it
 * over tests/fuzz/corpus/cifar. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dataset.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_cifar: property failed: %s (line %d)\n", #cond, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define PIXELS 3072

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool c100 = data[0] & 1;
    const uint8_t *file = data + 1;
    size_t len = size - 1, rec = (c100 ? 2 : 1) + PIXELS;
    bool whole = len % rec == 0, labels_ok = true;
    for (size_t r = 0; whole && r < len / rec; r++) {
        const uint8_t *p = file + r * rec;
        labels_ok &= c100 ? p[0] < 20 && p[1] < 100 : p[0] < 10;
    }
    eng_dataset *ds = NULL;
    int rc = eng_dataset_cifar_parse(file, len, c100, &ds);
    CHECK((rc == 0) == (whole && labels_ok));
    if (rc != 0) {
        CHECK(ds == NULL);
        return 0;
    }
    CHECK(ds->n == (int64_t)(len / rec));
    CHECK(ds->classes == (c100 ? 100 : 10));
    CHECK(ds->shape.ndim == 3 && ds->shape.d[0] == 3 && ds->shape.d[1] == 32 && ds->shape.d[2] == 32);
    for (int64_t r = 0; r < ds->n; r++) {
        const uint8_t *p = file + (size_t)r * rec;
        CHECK(ds->labels[r] == p[c100 ? 1 : 0]);
        CHECK(!memcmp(ds->images + r * PIXELS, p + (c100 ? 2 : 1), PIXELS));
    }
    eng_dataset_free(ds);
    return 0;
}
