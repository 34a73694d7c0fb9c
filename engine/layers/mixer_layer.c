/* One MLP-Mixer layer on (B, S, C) tokens, fused so that no transpose is
 * ever materialised:
 *   token mixing:   x1 = x + W2 gelu(W1 LN_S(x) + b1) + b2, applied per
 *                   sample as a left multiply on the (S, C) plane (LN_S
 *                   normalises over S for each channel);
 *   channel mixing: y = x1 + gelu(LN_C(x1) W3^T + b3) W4^T + b4.
 * This is the seed's transpose -> LayerNorm(S) -> Linear(S, S) -> GELU ->
 * Linear(S, S) -> transpose back, computed in place. Parameter names follow
 * the reference's ModuleList: 0 = LN_S, 1 = W1, 2 = W2, 3 = LN_C, 4 = W3, 5 = W4.
 *
 * In bf16 the products' inputs are rounded to bf16 anyway, so where the
 * backend can store them so (layernorm_forward_bf16, bias_act_bf16), the
 * norms' outputs t1, t2 are kept in bf16 only and the GELU outputs g, g2 in
 * float32 (GELU's backward reads them) and bf16: each is rounded once, by
 * the pass that writes it, instead of by each of the two products that read
 * it (forward and weight gradient). The same bits, in the same memory. In
 * the backward the GELUs' input gradients (wa) are only ever read by the
 * two products after them, so they are written in bf16 only, and the
 * gradient between the two halves (dx1) in both.
 *
 * The bf16 tensors the token products read (t1, g, dx1 and the token
 * GELU's gradient) are stored token-major, (S, B, C) rather than (B, S, C)
 * (backend.h, tb): each sample's (S, C) plane is then a strided matrix, and
 * a token weight gradient, a sum over the samples, is one product over the
 * (S, B*C) matrices as they lie, where oneDNN otherwise restacks both
 * operands into that form on every call. The same bits. */
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"

#define LN_EPS 1e-5f

enum { P_LN1_W, P_LN1_B, P_W1, P_B1, P_W2, P_B2, P_LN2_W, P_LN2_B, P_W3, P_B3, P_W4, P_B4 };

typedef struct mixer_module {
    eng_module base;
    int64_t S, C;
} mixer_module;

/* Saved tensors, the room of 7 * B*S*C floats, then the two LayerNorms'
 * statistics. float32: t1, h, g, x1, t2, h2, g2. bf16 storage: h, g, x1,
 * h2, g2 in float32, then t1, t2, g, g2 in bf16 (t1 and t2 NULL). */
typedef struct mixer_saved {
    bool bf16;
    float *t1, *h, *g, *x1, *t2, *h2, *g2;
    uint16_t *t1_16, *t2_16, *g_16, *g2_16;
    float *mean1, *rstd1; /* B*C */
    float *mean2, *rstd2; /* B*S */
} mixer_saved;

static bool bf16_storage(const eng_backend *b)
{
    return b->precision == ENG_PREC_BF16 && b->ops->layernorm_forward_bf16 && b->ops->bias_act_bf16 &&
           b->ops->act_bias_backward_bf16 && b->ops->layernorm_backward_add && b->ops->bias_grad_bf16;
}

static mixer_saved saved_views(const mixer_module *mx, const eng_backend *b, float *base, int64_t batch)
{
    int64_t N = batch * mx->S * mx->C;
    mixer_saved s = {.bf16 = bf16_storage(b)};
    if (s.bf16) {
        s.h = base;
        s.g = s.h + N;
        s.x1 = s.g + N;
        s.h2 = s.x1 + N;
        s.g2 = s.h2 + N;
        s.t1_16 = (uint16_t *)(s.g2 + N);
        s.t2_16 = s.t1_16 + N;
        s.g_16 = s.t2_16 + N;
        s.g2_16 = s.g_16 + N;
    } else {
        s.t1 = base;
        s.h = s.t1 + N;
        s.g = s.h + N;
        s.x1 = s.g + N;
        s.t2 = s.x1 + N;
        s.h2 = s.t2 + N;
        s.g2 = s.h2 + N;
    }
    s.mean1 = base + 7 * N;
    s.rstd1 = s.mean1 + batch * mx->C;
    s.mean2 = s.rstd1 + batch * mx->C;
    s.rstd2 = s.mean2 + batch * mx->S;
    return s;
}

/* A tensor a product reads: float32, or bf16 storage (token-major where
 * `tokens`). */
typedef struct operand {
    const void *p;
    bool bf16, tokens;
} operand;

static operand f32(const float *p) { return (operand){p, false, false}; }

/* float32, or bf16 where the layer stores this tensor so */
static operand stored(const float *p32, const uint16_t *p16) { return p16 ? (operand){p16, true, false} : f32(p32); }

/* the same for a tensor the token products read: its bf16 storage is
 * token-major */
static operand stored_tokens(const float *p32, const uint16_t *p16)
{
    return p16 ? (operand){p16, true, true} : f32(p32);
}

/* the token-major layout of the bf16 outputs that only token products read */
static int64_t token_layout(const uint16_t *p16, int64_t batch) { return p16 ? batch : 0; }

/* sample b's (S, C) plane of t: its leading dimension and the distance
 * between samples */
static void plane(operand t, int64_t batch, int64_t S, int64_t C, int64_t *ld, int64_t *stride)
{
    *ld = t.tokens ? batch * C : C;
    *stride = t.tokens ? C : S * C;
}

/* out[b] = W (S x S) @ in[b] (S x C) for every sample b */
static int token_matmul(eng_backend *b, int64_t batch, int64_t S, int64_t C, const float *W, bool transpose_w,
                        operand in, float *out)
{
    eng_gemm_desc g = {.ta = transpose_w, .tb = false, .m = S, .n = C, .k = S, .lda = S, .ldc = C, .batch = batch,
                       .stride_a = 0, .stride_c = S * C, .alpha = 1.0f, .b_bf16 = in.bf16};
    plane(in, batch, S, C, &g.ldb, &g.stride_b);
    return b->ops->gemm(b, &g, W, in.p, out);
}

/* dW (S x S) = sum_b d[b] (S x C) @ in[b]^T */
static int token_weight_grad(eng_backend *b, int64_t batch, int64_t S, int64_t C, operand d, operand in, float *dW)
{
    eng_gemm_desc g = {.ta = false, .tb = true, .m = S, .n = S, .k = C, .ldc = S, .batch = batch, .alpha = 1.0f,
                       .reduce_batch = true, .a_bf16 = d.bf16, .b_bf16 = in.bf16};
    plane(d, batch, S, C, &g.lda, &g.stride_a);
    plane(in, batch, S, C, &g.ldb, &g.stride_b);
    return b->ops->gemm(b, &g, d.p, in.p, dW);
}

/* out (rows x C) = in (rows x C) @ W^T, W is [C_out, C_in] = C x C */
static int channel_matmul(eng_backend *b, int64_t rows, int64_t C, operand in, const float *W, float *out)
{
    eng_gemm_desc g = {.ta = false, .tb = true, .m = rows, .n = C, .k = C, .lda = C, .ldb = C, .ldc = C,
                       .batch = 1, .alpha = 1.0f, .a_bf16 = in.bf16};
    return b->ops->gemm(b, &g, in.p, W, out);
}

/* dW (C x C) = d^T in over the rows x C tensors */
static int channel_weight_grad(eng_backend *b, int64_t rows, int64_t C, operand d, operand in, float *dW)
{
    eng_gemm_desc g = {.ta = true, .tb = false, .m = C, .n = C, .k = rows, .lda = C, .ldb = C, .ldc = C,
                       .batch = 1, .alpha = 1.0f, .a_bf16 = d.bf16, .b_bf16 = in.bf16};
    return b->ops->gemm(b, &g, d.p, in.p, dW);
}

/* dx (rows x C) = d (rows x C) @ W */
static int channel_input_grad(eng_backend *b, int64_t rows, int64_t C, operand d, const float *W, float *dx)
{
    eng_gemm_desc g = {.ta = false, .tb = false, .m = rows, .n = C, .k = C, .lda = C, .ldb = C, .ldc = C,
                       .batch = 1, .alpha = 1.0f, .a_bf16 = d.bf16};
    return b->ops->gemm(b, &g, d.p, W, dx);
}

/* y = layernorm(x), into y or, in bf16 storage, y16 (layout tb) */
static int layernorm_to(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                        const float *beta, float *y, uint16_t *y16, int64_t tb, float *mean, float *rstd)
{
    if (y16)
        return b->ops->layernorm_forward_bf16(b, d, x, gamma, beta, y16, tb, mean, rstd);
    return b->ops->layernorm_forward(b, d, x, gamma, beta, y, mean, rstd);
}

/* h += bias, g = gelu(h) (and its bf16 copy g16 when set, layout tb):
 * fused where the backend can (same bits) */
static int bias_gelu(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *h, const float *bias, float *g,
                     uint16_t *g16, int64_t tb)
{
    if (g16)
        return b->ops->bias_act_bf16(b, outer, n, inner, h, bias, ENG_ACT_GELU, 0.0f, g, g16, tb);
    if (b->ops->bias_act)
        return b->ops->bias_act(b, outer, n, inner, h, bias, ENG_ACT_GELU, 0.0f, g);
    ENG_TRY(b->ops->bias_add(b, outer, n, inner, h, bias));
    return b->ops->act_forward(b, ENG_ACT_GELU, 0.0f, outer * n * inner, h, g);
}

/* y = (y + bias) + res, fused where the backend can (same bits) */
static int bias_residual(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias,
                         const float *res)
{
    if (b->ops->bias_residual)
        return b->ops->bias_residual(b, outer, n, inner, y, bias, res);
    ENG_TRY(b->ops->bias_add(b, outer, n, inner, y, bias));
    return b->ops->add(b, outer * n * inner, y, res, y);
}

/* dx = LN'(dy) + res (and its bf16 form dx16 when set, layout tb), fused
 * where the backend can (same bits) */
static int layernorm_backward_add(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                                  const float *gamma, const float *mean, const float *rstd, const float *res,
                                  float *dx, uint16_t *dx16, int64_t tb, float *dgamma, float *dbeta)
{
    if (b->ops->layernorm_backward_add)
        return b->ops->layernorm_backward_add(b, d, x, dy, gamma, mean, rstd, res, dx, dx16, tb, dgamma, dbeta);
    ENG_TRY(b->ops->layernorm_backward(b, d, x, dy, gamma, mean, rstd, dx, dgamma, dbeta));
    return b->ops->add(b, d->outer * d->n * d->inner, dx, res, dx);
}

/* wa = gelu'(h) * wa (into wa16, layout tb, instead when it is set), then
 * db = its bias gradient; fused where the backend can (same bits) */
static int gelu_bias_backward(eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *h,
                              const float *g, float *wa, uint16_t *wa16, int64_t tb, float *db)
{
    if (wa16)
        return b->ops->act_bias_backward_bf16(b, ENG_ACT_GELU, 0.0f, outer, n, inner, h, g, wa, wa16, tb, db);
    if (b->ops->act_bias_backward)
        return b->ops->act_bias_backward(b, ENG_ACT_GELU, 0.0f, outer, n, inner, h, g, wa, wa, db);
    ENG_TRY(b->ops->act_backward(b, ENG_ACT_GELU, 0.0f, outer * n * inner, h, g, wa, wa));
    return b->ops->bias_grad(b, outer, n, inner, wa, db);
}

static int mixer_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    mixer_module *mx = (mixer_module *)m;
    eng_backend *b = c->b;
    int64_t B = c->batch, S = mx->S, C = mx->C;
    mixer_saved s = saved_views(mx, b, m->saved, B);
    m->y = m->y_store;

    eng_norm_desc ln1 = {.outer = B, .n = S, .inner = C, .eps = LN_EPS};
    ENG_TRY(layernorm_to(b, &ln1, x, m->w[P_LN1_W], m->w[P_LN1_B], s.t1, s.t1_16, token_layout(s.t1_16, B), s.mean1,
                         s.rstd1));
    ENG_TRY(token_matmul(b, B, S, C, m->w[P_W1], false, stored_tokens(s.t1, s.t1_16), s.h));
    ENG_TRY(bias_gelu(b, B, S, C, s.h, m->w[P_B1], s.g, s.g_16, token_layout(s.g_16, B)));
    ENG_TRY(token_matmul(b, B, S, C, m->w[P_W2], false, stored_tokens(s.g, s.g_16), s.x1));
    ENG_TRY(bias_residual(b, B, S, C, s.x1, m->w[P_B2], x));

    eng_norm_desc ln2 = {.outer = B * S, .n = C, .inner = 1, .eps = LN_EPS};
    ENG_TRY(layernorm_to(b, &ln2, s.x1, m->w[P_LN2_W], m->w[P_LN2_B], s.t2, s.t2_16, 0, s.mean2, s.rstd2));
    ENG_TRY(channel_matmul(b, B * S, C, stored(s.t2, s.t2_16), m->w[P_W3], s.h2));
    ENG_TRY(bias_gelu(b, B * S, C, 1, s.h2, m->w[P_B3], s.g2, s.g2_16, 0));
    ENG_TRY(channel_matmul(b, B * S, C, stored(s.g2, s.g2_16), m->w[P_W4], m->y));
    return bias_residual(b, B * S, C, 1, m->y, m->w[P_B4], s.x1);
}

static int mixer_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    mixer_module *mx = (mixer_module *)m;
    eng_backend *b = c->b;
    int64_t B = c->batch, S = mx->S, C = mx->C, N = B * S * C;
    mixer_saved s = saved_views(mx, b, m->saved, B);
    size_t one = ((size_t)N * sizeof(float) + 63) & ~(size_t)63;
    float *wa = (float *)m->ws, *wb = (float *)((char *)m->ws + one), *dx1 = (float *)((char *)m->ws + 2 * one);
    /* in bf16 storage: the GELUs' gradients, and dx1, in bf16 */
    uint16_t *wa16 = s.bf16 ? (uint16_t *)((char *)m->ws + 3 * one) : NULL, *dx1_16 = s.bf16 ? wa16 + N : NULL;

    /* channel mixing; in bf16 storage dy's bf16 copy (for its two products)
     * comes from its bias gradient's pass, into wa16, free until the GELU's
     * gradient */
    uint16_t *dy16 = s.bf16 ? wa16 : NULL;
    if (dy16)
        ENG_TRY(b->ops->bias_grad_bf16(b, B * S, C, 1, dy, m->dw[P_B4], dy16, 0));
    else
        ENG_TRY(b->ops->bias_grad(b, B * S, C, 1, dy, m->dw[P_B4]));
    if (b->precision == ENG_PREC_BF16) {
        /* dW4 = (g2^T dy)^T: the product reads g2's bf16 storage transposed
         * as it lies and dy straight, where dy^T would need a transposing
         * bf16 copy of dy; the C x C transpose after it is small. (The same
         * form without bf16 storage, so that storage changes no bit.) */
        float *dw4t = (float *)((char *)m->ws + (s.bf16 ? 4 : 3) * one);
        ENG_TRY(channel_weight_grad(b, B * S, C, stored(s.g2, s.g2_16), stored(dy, dy16), dw4t));
        ENG_TRY(b->ops->transpose(b, 1, C, C, dw4t, m->dw[P_W4]));
    } else {
        ENG_TRY(channel_weight_grad(b, B * S, C, f32(dy), f32(s.g2), m->dw[P_W4]));
    }
    ENG_TRY(channel_input_grad(b, B * S, C, stored(dy, dy16), m->w[P_W4], wa));
    ENG_TRY(gelu_bias_backward(b, B * S, C, 1, s.h2, s.g2, wa, wa16, 0, m->dw[P_B3]));
    ENG_TRY(channel_weight_grad(b, B * S, C, stored(wa, wa16), stored(s.t2, s.t2_16), m->dw[P_W3]));
    ENG_TRY(channel_input_grad(b, B * S, C, stored(wa, wa16), m->w[P_W3], wb));
    eng_norm_desc ln2 = {.outer = B * S, .n = C, .inner = 1, .eps = LN_EPS};
    ENG_TRY(layernorm_backward_add(b, &ln2, s.x1, wb, m->w[P_LN2_W], s.mean2, s.rstd2, dy, dx1, dx1_16,
                                   token_layout(dx1_16, B), m->dw[P_LN2_W], m->dw[P_LN2_B]));

    /* token mixing */
    ENG_TRY(token_weight_grad(b, B, S, C, stored_tokens(dx1, dx1_16), stored_tokens(s.g, s.g_16), m->dw[P_W2]));
    ENG_TRY(b->ops->bias_grad(b, B, S, C, dx1, m->dw[P_B2]));
    ENG_TRY(token_matmul(b, B, S, C, m->w[P_W2], true, stored_tokens(dx1, dx1_16), wa));
    ENG_TRY(gelu_bias_backward(b, B, S, C, s.h, s.g, wa, wa16, token_layout(wa16, B), m->dw[P_B1]));
    ENG_TRY(token_weight_grad(b, B, S, C, stored_tokens(wa, wa16), stored_tokens(s.t1, s.t1_16), m->dw[P_W1]));
    ENG_TRY(token_matmul(b, B, S, C, m->w[P_W1], true, stored_tokens(wa, wa16), wb));
    eng_norm_desc ln1 = {.outer = B, .n = S, .inner = C, .eps = LN_EPS};
    if (dx)
        return layernorm_backward_add(b, &ln1, x, wb, m->w[P_LN1_W], s.mean1, s.rstd1, dx1, dx, NULL, 0,
                                      m->dw[P_LN1_W], m->dw[P_LN1_B]);
    /* the first layer: no input gradient, but LN_S's parameter gradients */
    return b->ops->layernorm_backward(b, &ln1, x, wb, m->w[P_LN1_W], s.mean1, s.rstd1, NULL, m->dw[P_LN1_W],
                                      m->dw[P_LN1_B]);
}

/* wa, wb, dx1 in float32; in bf16 storage wa's and dx1's bf16 forms (half
 * a float32 tensor each); in bf16 dW4's transpose. b is NULL for the
 * estimate made before any backend exists: the largest figure. */
static size_t mixer_workspace(const eng_module *m, eng_backend *b, int64_t batch)
{
    const mixer_module *mx = (const mixer_module *)m;
    int64_t one = eng_size_align64(eng_size_mul(eng_size_mul(batch, eng_size_mul(mx->S, mx->C)), sizeof(float)));
    int64_t n = eng_size_add(eng_size_mul(3, one), !b || bf16_storage(b) ? one : 0);
    if (!b || b->precision == ENG_PREC_BF16)
        n = eng_size_add(n, eng_size_mul(eng_size_mul(mx->C, mx->C), sizeof(float)));
    return (size_t)n;
}

static const eng_module_ops mixer_ops = {
    .type = "mixer_layer",
    .forward = mixer_forward,
    .backward = mixer_backward,
    .workspace = mixer_workspace,
};

eng_module *eng_mixer_layer_new(const char *name, const eng_shape *in)
{
    mixer_module *mx = (mixer_module *)eng_module_alloc(sizeof *mx, &mixer_ops, name, in);
    if (!mx)
        return NULL;
    eng_module *m = &mx->base;
    int64_t S = in->d[0], C = in->d[1];
    mx->S = S;
    mx->C = C;
    eng_module_add_param(m, "0.weight", eng_shape1(S), ENG_INIT_ONES, 0);
    eng_module_add_param(m, "0.bias", eng_shape1(S), ENG_INIT_ZEROS, 0);
    eng_module_add_param(m, "1.weight", eng_shape2(S, S), ENG_INIT_FAN_IN_UNIFORM, S);
    eng_module_add_param(m, "1.bias", eng_shape1(S), ENG_INIT_FAN_IN_UNIFORM, S);
    eng_module_add_param(m, "2.weight", eng_shape2(S, S), ENG_INIT_FAN_IN_UNIFORM, S);
    eng_module_add_param(m, "2.bias", eng_shape1(S), ENG_INIT_FAN_IN_UNIFORM, S);
    eng_module_add_param(m, "3.weight", eng_shape1(C), ENG_INIT_ONES, 0);
    eng_module_add_param(m, "3.bias", eng_shape1(C), ENG_INIT_ZEROS, 0);
    eng_module_add_param(m, "4.weight", eng_shape2(C, C), ENG_INIT_FAN_IN_UNIFORM, C);
    eng_module_add_param(m, "4.bias", eng_shape1(C), ENG_INIT_FAN_IN_UNIFORM, C);
    eng_module_add_param(m, "5.weight", eng_shape2(C, C), ENG_INIT_FAN_IN_UNIFORM, C);
    eng_module_add_param(m, "5.bias", eng_shape1(C), ENG_INIT_FAN_IN_UNIFORM, C);
    int64_t SC = eng_size_mul(S, C);
    m->saved_per_sample = eng_size_add(eng_size_mul(7, SC), eng_size_mul(2, eng_size_add(S, C)));
    m->flops = eng_size_add(eng_size_mul(4, eng_size_mul(SC, eng_size_add(S, C))), eng_size_mul(30, SC));
    return m;
}
