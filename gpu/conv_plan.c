/* Convolution plan table and algorithm choice (library-neutral). */
#include "gpu/conv_plan.h"

#include <limits.h>
#include <string.h>

#include "engine/error.h"

static bool qualifies(const gpu_algo_perf *p, const gpu_algo_rules *r, bool honour_excluded)
{
    if (!p->ok)
        return false;
    if (r->require_deterministic && !p->deterministic)
        return false;
    if (r->required_math >= 0 && p->math != r->required_math)
        return false;
    if (r->refused_math >= 0 && p->math == r->refused_math)
        return false;
    if (p->memory > r->ws_limit)
        return false;
    if (honour_excluded && p->algo >= 0 && p->algo < 32 && (r->excluded >> p->algo & 1u))
        return false;
    return true;
}

int gpu_algo_pick(const gpu_algo_perf *p, int n, const gpu_algo_rules *r)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if (qualifies(&p[i], r, pass == 0))
                return i;
    return -1;
}

int gpu_conv_desc_check(const eng_conv_desc *d)
{
    if (d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1 || d->k < 1 || d->kh < 1 || d->kw < 1 || d->stride < 1 ||
        d->pad < 0)
        return eng_error(ENG_EINVAL,
                         "conv2d: bad shape n=%lld c=%lld h=%lld w=%lld k=%lld kernel=%lldx%lld stride=%lld pad=%lld",
                         (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w, (long long)d->k,
                         (long long)d->kh, (long long)d->kw, (long long)d->stride, (long long)d->pad);
    const int64_t lim = INT_MAX;
    if (d->n > lim || d->c > lim || d->h > lim / 2 || d->w > lim / 2 || d->k > lim || d->kh > lim ||
        d->kw > lim || d->stride > lim || d->pad > lim / 4)
        return eng_error(ENG_EINVAL, "conv2d: a dimension exceeds cuDNN's int range");
    if (d->kh > d->h + 2 * d->pad || d->kw > d->w + 2 * d->pad)
        return eng_error(ENG_EINVAL, "conv2d: kernel %lldx%lld larger than the padded %lldx%lld input",
                         (long long)d->kh, (long long)d->kw, (long long)(d->h + 2 * d->pad),
                         (long long)(d->w + 2 * d->pad));
    int64_t oh = (d->h + 2 * d->pad - d->kh) / d->stride + 1;
    int64_t ow = (d->w + 2 * d->pad - d->kw) / d->stride + 1;
    if (oh != d->oh || ow != d->ow)
        return eng_error(ENG_EINVAL, "conv2d: output %lldx%lld given, the shape gives %lldx%lld", (long long)d->oh,
                         (long long)d->ow, (long long)oh, (long long)ow);
    /* element counts of x, y and w must fit the 64-bit index math with room */
    if (d->c * d->h * d->w > INT64_MAX / d->n / 4 || d->k * d->oh * d->ow > INT64_MAX / d->n / 4)
        return eng_error(ENG_EINVAL, "conv2d: tensor too large");
    return 0;
}

bool gpu_conv_same_geometry(const eng_conv_desc *a, const eng_conv_desc *b)
{
    return a->c == b->c && a->h == b->h && a->w == b->w && a->k == b->k && a->kh == b->kh && a->kw == b->kw &&
           a->stride == b->stride && a->pad == b->pad && a->oh == b->oh && a->ow == b->ow;
}

bool gpu_conv_same(const eng_conv_desc *a, const eng_conv_desc *b)
{
    return a->n == b->n && gpu_conv_same_geometry(a, b);
}

gpu_conv_plan *gpu_conv_plans_find(gpu_conv_plans *t, const eng_conv_desc *d)
{
    for (int i = 0; i < t->n; i++)
        if (gpu_conv_same(&t->v[i].key, d))
            return &t->v[i];
    return NULL;
}

int gpu_conv_plans_add(gpu_conv_plans *t, const eng_conv_desc *d, gpu_conv_plan **out)
{
    *out = NULL;
    if (t->n >= GPU_CONV_PLANS_MAX)
        return eng_error(ENG_ELIMIT, "conv2d: more than %d distinct convolution shapes", GPU_CONV_PLANS_MAX);
    gpu_conv_plan *p = &t->v[t->n++];
    memset(p, 0, sizeof *p);
    p->key = *d;
    for (int i = 0; i < 3; i++)
        p->algo[i] = -1;
    *out = p;
    return 0;
}

size_t gpu_conv_plan_workspace(const gpu_conv_plan *p)
{
    size_t m = p->ws[0];
    if (p->ws[1] > m)
        m = p->ws[1];
    if (p->ws[2] > m)
        m = p->ws[2];
    return m;
}

size_t gpu_conv_plans_budget(const gpu_conv_plans *t, const eng_conv_desc *d)
{
    size_t m = 0;
    for (int i = 0; i < t->n; i++) {
        const gpu_conv_plan *p = &t->v[i];
        if (p->sized && gpu_conv_same_geometry(&p->key, d)) {
            size_t w = gpu_conv_plan_workspace(p);
            if (w > m)
                m = w;
        }
    }
    return m;
}
