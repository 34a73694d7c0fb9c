/* Template builders: each turns an eng_model_desc into modules appended to
 * the model's root chain, reporting problems by spec key path (internal). */
#ifndef ENG_TEMPLATE_H
#define ENG_TEMPLATE_H

#include "engine/desc.h"
#include "engine/model.h"
#include "engine/module.h"

typedef struct eng_diag {
    eng_diag_fn fn;
    void *ctx;
    int count;
} eng_diag;

void eng_diag_report(eng_diag *d, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Each returns 0, ENG_EINVAL after reporting problems, or ENG_ENOMEM. */
int eng_template_mlp(const eng_model_desc *md, const eng_shape *in, int64_t classes, eng_diag *d, eng_module *root);
int eng_template_cnn(const eng_model_desc *md, const eng_shape *in, int64_t classes, eng_diag *d, eng_module *root);
int eng_template_resnet(const eng_model_desc *md, const eng_shape *in, int64_t classes, eng_diag *d,
                        eng_module *root);
int eng_template_mixer(const eng_model_desc *md, const eng_shape *in, int64_t classes, eng_diag *d,
                       eng_module *root);
int eng_template_sequential(const eng_model_desc *md, const eng_shape *in, int64_t classes, eng_diag *d,
                            eng_module *root);

/* Appends the head every template shares: softmax or sigmoid when asked. */
int eng_template_head(eng_head head, eng_module *root, const char *name);

#endif
