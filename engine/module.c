/* Module allocation, children and tensor declarations. */
#include "engine/module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

eng_module *eng_module_alloc(size_t size, const eng_module_ops *ops, const char *name, const eng_shape *in)
{
    eng_module *m = calloc(1, size);
    if (!m) {
        eng_error(ENG_ENOMEM, "out of memory allocating a %s module", ops->type);
        return NULL;
    }
    m->ops = ops;
    snprintf(m->name, sizeof m->name, "%s", name ? name : "");
    m->in = *in;
    m->out = *in;
    return m;
}

void eng_module_free(eng_module *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nchild; i++)
        eng_module_free(m->child[i]);
    free(m->child);
    if (m->ops->destroy)
        m->ops->destroy(m);
    free(m);
}

int eng_module_add_child(eng_module *m, eng_module *child)
{
    if (!child)
        return ENG_ENOMEM;
    if (m->nchild == m->cap_child) {
        int cap = m->cap_child ? 2 * m->cap_child : 8;
        eng_module **c = realloc(m->child, (size_t)cap * sizeof *c);
        if (!c) {
            eng_module_free(child);
            return eng_error(ENG_ENOMEM, "out of memory adding a module");
        }
        m->child = c;
        m->cap_child = cap;
    }
    m->child[m->nchild++] = child;
    return 0;
}

static int declare(eng_tensor_decl *decl, int *count, int max, const char *name, eng_shape shape, eng_init init,
                   int64_t fan_in)
{
    if (*count >= max)
        return eng_error(ENG_EINVAL, "too many tensors declared by one module");
    eng_tensor_decl *d = &decl[(*count)++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->shape = shape;
    d->init = init;
    d->fan_in = fan_in;
    d->index = -1;
    return *count - 1;
}

int eng_module_add_param(eng_module *m, const char *name, eng_shape shape, eng_init init, int64_t fan_in)
{
    return declare(m->param, &m->nparam, ENG_MODULE_MAX_PARAMS, name, shape, init, fan_in);
}

int eng_module_add_buffer(eng_module *m, const char *name, eng_shape shape, eng_init init)
{
    return declare(m->buffer, &m->nbuffer, ENG_MODULE_MAX_BUFFERS, name, shape, init, 0);
}

int64_t eng_window_out(int64_t size, int64_t kernel, int64_t stride, int64_t pad)
{
    if (stride < 1)
        return 0;
    int64_t span = size + 2 * pad - kernel;
    return span < 0 ? 0 : span / stride + 1;
}
