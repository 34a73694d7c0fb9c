/* Pieces every template shares. */
#include <stdio.h>

#include "engine/error.h"
#include "engine/template.h"

int eng_template_head(eng_head head, eng_module *root, const char *name)
{
    switch (head) {
    case ENG_HEAD_LOGITS: return 0;
    case ENG_HEAD_SOFTMAX: return eng_seq_append(root, eng_softmax_new(name, &root->out));
    case ENG_HEAD_SIGMOID: return eng_seq_append(root, eng_activation_new(name, &root->out, ENG_ACT_SIGMOID, 0.0f));
    }
    return eng_error(ENG_EINVAL, "unknown head %d", (int)head);
}
