/* Fuzz target: sweep expansion. The input is the sweep part of a spec -
 * matrix:, include:, a name template - appended to a fixed valid base, so
 * that nearly every input exercises the expansion rather than the YAML
 * parser (fuzz_spec covers that).
 *
 * Properties: those of spec_props.c (every combination's stored text loads
 * back to the same spec), and for a sweep: at most max_combinations entries,
 * no two with the same name or identity, and each valid one's values in
 * sweep_json. Built as a fuzzer with -Dfuzz=true (scripts/fuzz sweep);
 * otherwise tests/fuzz/replay.c runs it over tests/fuzz/corpus/sweep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec_props.h"

static const char base[] =
    "name: \"s_{seed}\"\n"
    "data: {dataset: synthetic, synthetic: {shape: [1, 4, 4], classes: 3, train: 8, test: 8}, batch_size: 4}\n"
    "model: {template: mlp, units: [8, 3]}\n"
    "train: {epochs: 1}\n";

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_sweep: property failed: %s (line %d)\n", #cond, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = sizeof base - 1 + size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return 0;
    memcpy(buf, base, sizeof base - 1);
    if (size)
        memcpy(buf + sizeof base - 1, data, size);
    spec_options o;
    fuzz_spec_options(&o);
    spec_file *f = fuzz_spec_check(buf, n, &o);
    if (f && f->is_sweep) {
        for (int i = 0; i < f->n_entries; i++) {
            const spec_entry *a = &f->entries[i];
            for (int j = i + 1; a->spec && j < f->n_entries; j++) {
                const spec_entry *b = &f->entries[j];
                if (!b->spec)
                    continue;
                CHECK(strcmp(a->name, b->name) != 0);
                CHECK(strcmp(a->sha256, b->sha256) != 0);
            }
        }
    }
    spec_file_free(f);
    free(buf);
    return 0;
}
