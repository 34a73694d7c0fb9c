/* The seed's six models (experiments/seed/, their PyTorch parameter counts in
 * README.md) as engine descriptions, for the tests and the benchmark. */
#ifndef TEST_SEED_MODELS_H
#define TEST_SEED_MODELS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/desc.h"

typedef struct seed_model {
    const char *name;     /* "normal_cnn", "residual_cnn", "mlp_mixer_S4", ... */
    eng_template kind;
    int64_t patch, hidden, depth; /* mixers */
    int64_t params;       /* the seed's published parameter count */
} seed_model;

#define SEED_MODEL_COUNT 6
extern const seed_model seed_models[SEED_MODEL_COUNT];

/* The model exactly as the seed builds it on CIFAR-10 (relu, batch norm,
 * pooling 3/2, small blocks, the mixers' plain reshape) with the given head.
 * The channel lists are static: the description stays valid. */
void seed_model_desc(const seed_model *s, eng_head head, eng_model_desc *out);

/* The entry called `name`, or NULL. */
const seed_model *seed_model_find(const char *name);

/* True when `name` is one of the comma-separated names in `list` (NULL or
 * empty: every name). */
bool seed_model_wanted(const char *list, const char *name);

#endif
