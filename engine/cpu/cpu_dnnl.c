/* oneDNN convolutions and matrix products for the CPU backend (cpu_dnnl.h).
 *
 * A plan is one primitive for one shape plus, for each of its tensors (an
 * "operand"), how the caller's plain float32 tensor becomes what the
 * primitive reads or writes: directly when the layouts agree, else through
 * a reorder into (or out of) a scratch buffer. Plans are created on first
 * use and kept for the backend's life; a shape oneDNN cannot serve well is
 * remembered as refused. */
#include "engine/cpu/cpu_dnnl.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

#define DN_MAX_OPS 4
#define DN_KEY_N 24

typedef enum dn_kind { DN_CONV_FWD = 1, DN_CONV_BWD_DATA, DN_CONV_BWD_WEIGHTS, DN_MATMUL, DN_MATMUL_REDUCE } dn_kind;

/* One tensor of a primitive. */
typedef struct dn_operand {
    int arg;                  /* DNNL_ARG_* */
    bool out;                 /* written by the primitive */
    dnnl_memory_t user;       /* the caller's float32 tensor */
    dnnl_memory_t stage;      /* its reordered copy in scratch; NULL: the primitive uses user */
    dnnl_memory_t prim;       /* what the primitive is given: user, stage, or stage seen with other dims */
    dnnl_primitive_t reorder; /* user -> stage for inputs, stage -> user for outputs */
    size_t bytes;             /* of the stage */
} dn_operand;

typedef struct dn_plan {
    int64_t key[DN_KEY_N];
    int status; /* 0: usable; ENG_ENOTSUP: refused */
    dnnl_primitive_t prim;
    dn_operand op[DN_MAX_OPS];
    int nop;
    int slot0; /* scratch slots slot0 + i hold the operands' stages */
    char impl[80];
} dn_plan;

struct cpu_dnnl {
    dnnl_engine_t eng;
    dnnl_stream_t st;
    dn_plan **plans;
    int nplans, cap;
    void *scratch[2 * DN_MAX_OPS]; /* plans use slots slot0 .. slot0 + 3 */
    size_t scratch_n[2 * DN_MAX_OPS];
    const char *last_impl;
};

/* ---- the library ---- */

cpu_dnnl *cpu_dnnl_new(void)
{
    cpu_dnnl *c = calloc(1, sizeof *c);
    if (!c) {
        eng_error(ENG_ENOMEM, "oneDNN: out of memory");
        return NULL;
    }
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->st, c->eng, dnnl_stream_default_flags) != dnnl_success) {
        eng_error(ENG_EDEVICE, "oneDNN: cannot create its CPU engine");
        cpu_dnnl_free(c);
        return NULL;
    }
    c->last_impl = "";
    return c;
}

static void operand_free(dn_operand *o)
{
    if (o->reorder)
        dnnl_primitive_destroy(o->reorder);
    if (o->prim && o->prim != o->user && o->prim != o->stage)
        dnnl_memory_destroy(o->prim);
    if (o->stage)
        dnnl_memory_destroy(o->stage);
    if (o->user)
        dnnl_memory_destroy(o->user);
}

static void plan_free(dn_plan *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nop; i++)
        operand_free(&p->op[i]);
    if (p->prim)
        dnnl_primitive_destroy(p->prim);
    free(p);
}

void cpu_dnnl_free(cpu_dnnl *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nplans; i++)
        plan_free(c->plans[i]);
    free(c->plans);
    for (int i = 0; i < 2 * DN_MAX_OPS; i++)
        free(c->scratch[i]);
    if (c->st)
        dnnl_stream_destroy(c->st);
    if (c->eng)
        dnnl_engine_destroy(c->eng);
    free(c);
}

const char *cpu_dnnl_isa_name(void)
{
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

bool cpu_dnnl_bf16_native(void)
{
    return ((unsigned)dnnl_get_effective_cpu_isa() & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
           (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

bool cpu_dnnl_amx(void)
{
    return ((unsigned)dnnl_get_effective_cpu_isa() & (unsigned)dnnl_cpu_isa_avx512_core_amx) ==
           (unsigned)dnnl_cpu_isa_avx512_core_amx;
}

const char *cpu_dnnl_last_impl(const cpu_dnnl *c) { return c->last_impl; }

static cpu_dnnl *dnnl_of(eng_backend *b) { return ((cpu_state *)b->impl)->dnnl; }

/* ---- plans ---- */

/* A failure while building a plan refuses the shape (the caller falls back
 * to its own kernels); the message says why, for the tests. */
#define DN_TRY(call)                                                                                               \
    do {                                                                                                           \
        dnnl_status_t s_ = (call);                                                                                 \
        if (s_ != dnnl_success)                                                                                    \
            return eng_error(ENG_ENOTSUP, "oneDNN: %s: status %d", #call, (int)s_);                              \
    } while (0)

static int md_plain(dnnl_memory_desc_t *md, int nd, const int64_t *dims, const int64_t *strides, dnnl_data_type_t t)
{
    dnnl_dims_t d, s;
    for (int i = 0; i < nd; i++) {
        d[i] = dims[i];
        s[i] = strides[i];
    }
    DN_TRY(dnnl_memory_desc_init_by_strides(md, nd, d, t, s));
    return 0;
}

static int md_tag(dnnl_memory_desc_t *md, int nd, const int64_t *dims, dnnl_data_type_t t, dnnl_format_tag_t tag)
{
    dnnl_dims_t d;
    for (int i = 0; i < nd; i++)
        d[i] = dims[i];
    DN_TRY(dnnl_memory_desc_init_by_tag(md, nd, d, t, tag));
    return 0;
}

/* Adds an operand: the caller's tensor is user_md; the primitive wants
 * prim_md, which is reached by a reorder into stage_md (the same bytes as
 * prim_md, possibly seen with other dimensions; NULL: prim_md itself). */
static int plan_operand(cpu_dnnl *c, dn_plan *p, int arg, bool out, const dnnl_memory_desc_t *user_md,
                        const dnnl_memory_desc_t *stage_md, const dnnl_memory_desc_t *prim_md)
{
    dn_operand *o = &p->op[p->nop++];
    o->arg = arg;
    o->out = out;
    DN_TRY(dnnl_memory_create(&o->user, user_md, c->eng, DNNL_MEMORY_NONE));
    if (!stage_md && dnnl_memory_desc_equal(user_md, prim_md)) {
        o->prim = o->user;
        return 0;
    }
    if (!stage_md)
        stage_md = prim_md;
    DN_TRY(dnnl_memory_create(&o->stage, stage_md, c->eng, DNNL_MEMORY_NONE));
    if (stage_md != prim_md)
        DN_TRY(dnnl_memory_create(&o->prim, prim_md, c->eng, DNNL_MEMORY_NONE));
    else
        o->prim = o->stage;
    o->bytes = dnnl_memory_desc_get_size(stage_md);
    dnnl_primitive_desc_t rpd = NULL;
    DN_TRY(out ? dnnl_reorder_primitive_desc_create(&rpd, stage_md, c->eng, user_md, c->eng, NULL)
               : dnnl_reorder_primitive_desc_create(&rpd, user_md, c->eng, stage_md, c->eng, NULL));
    dnnl_status_t s = dnnl_primitive_create(&o->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    DN_TRY(s);
    return 0;
}

/* Takes the primitive of pd (which it destroys), refusing oneDNN's
 * reference kernels: far slower than our own. */
static int plan_primitive(dn_plan *p, dnnl_primitive_desc_t pd)
{
    const char *impl = "";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(p->impl, sizeof p->impl, "%s", impl ? impl : "");
    if (strstr(p->impl, "ref")) {
        dnnl_primitive_desc_destroy(pd);
        return eng_error(ENG_ENOTSUP, "oneDNN offers only its reference kernel (%s)", p->impl);
    }
    dnnl_status_t s = dnnl_primitive_create(&p->prim, pd);
    dnnl_primitive_desc_destroy(pd); /* the primitive keeps what it needs */
    DN_TRY(s);
    return 0;
}

static const dnnl_memory_desc_t *pd_md(dnnl_primitive_desc_t pd, dnnl_query_t q)
{
    return dnnl_primitive_desc_query_md(pd, q, 0);
}

/* ---- convolution plans ---- */

static void conv_dims(const eng_conv_desc *d, int64_t src[4], int64_t wei[4], int64_t dst[4])
{
    src[0] = d->n, src[1] = d->c, src[2] = d->h, src[3] = d->w;
    wei[0] = d->k, wei[1] = d->c, wei[2] = d->kh, wei[3] = d->kw;
    dst[0] = d->n, dst[1] = d->k, dst[2] = d->oh, dst[3] = d->ow;
}

/* The forward description (also the hint the backward ones need). The
 * right/bottom padding is what the output size implies (it may be less than
 * pad when the last window does not reach the padding). */
static int conv_fwd_pd(cpu_dnnl *c, const eng_conv_desc *d, bool bf16, bool bias, dnnl_primitive_desc_t *pd)
{
    int64_t sd[4], wd[4], dd[4];
    conv_dims(d, sd, wd, dd);
    const dnnl_data_type_t in = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t s, w, bm, y;
    int rc = md_tag(&s, 4, sd, in, dnnl_format_tag_any);
    if (!rc)
        rc = md_tag(&w, 4, wd, in, dnnl_format_tag_any);
    if (!rc)
        rc = md_tag(&bm, 1, &d->k, dnnl_f32, dnnl_a);
    if (!rc)
        rc = md_tag(&y, 4, dd, dnnl_f32, dnnl_format_tag_any);
    if (rc)
        return rc;
    dnnl_dims_t strides = {d->stride, d->stride}, pl = {d->pad, d->pad};
    dnnl_dims_t pr = {(d->oh - 1) * d->stride + d->kh - d->h - d->pad, (d->ow - 1) * d->stride + d->kw - d->w - d->pad};
    dnnl_convolution_desc_t cd;
    DN_TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &s, &w,
                                              bias ? &bm : NULL, &y, strides, pl, pr));
    DN_TRY(dnnl_primitive_desc_create(pd, &cd, NULL, c->eng, NULL));
    return 0;
}

static int conv_user_mds(const eng_conv_desc *d, dnnl_memory_desc_t *x, dnnl_memory_desc_t *w, dnnl_memory_desc_t *b,
                         dnnl_memory_desc_t *y)
{
    int64_t sd[4], wd[4], dd[4];
    conv_dims(d, sd, wd, dd);
    int rc = md_tag(x, 4, sd, dnnl_f32, d->x_blocked ? dnnl_nChw16c : dnnl_nchw);
    if (!rc)
        rc = md_tag(w, 4, wd, dnnl_f32, dnnl_oihw);
    if (!rc)
        rc = md_tag(b, 1, &d->k, dnnl_f32, dnnl_a);
    if (!rc) /* x, dx, y and dy: NCHW, or blocked as a batchnorm between convolutions takes them */
        rc = md_tag(y, 4, dd, dnnl_f32, d->y_blocked ? dnnl_nChw16c : dnnl_nchw);
    return rc;
}

static int conv_plan_build(cpu_dnnl *c, dn_plan *p, dn_kind kind, const eng_conv_desc *d, bool bf16, bool bias)
{
    dnnl_memory_desc_t ux, uw, ub, uy;
    int rc = conv_user_mds(d, &ux, &uw, &ub, &uy);
    if (rc)
        return rc;
    dnnl_primitive_desc_t fwd = NULL, pd = NULL;
    rc = conv_fwd_pd(c, d, bf16, bias && kind != DN_CONV_BWD_DATA, &fwd);
    if (rc)
        return rc;
    if (kind == DN_CONV_FWD) {
        pd = fwd;
        fwd = NULL;
        rc = plan_operand(c, p, DNNL_ARG_SRC, false, &ux, NULL, pd_md(pd, dnnl_query_src_md));
        if (!rc)
            rc = plan_operand(c, p, DNNL_ARG_WEIGHTS, false, &uw, NULL, pd_md(pd, dnnl_query_weights_md));
        if (!rc && bias)
            rc = plan_operand(c, p, DNNL_ARG_BIAS, false, &ub, NULL,
                              dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1));
        if (!rc)
            rc = plan_operand(c, p, DNNL_ARG_DST, true, &uy, NULL, pd_md(pd, dnnl_query_dst_md));
    } else {
        int64_t sd[4], wd[4], dd[4];
        conv_dims(d, sd, wd, dd);
        const dnnl_data_type_t in = bf16 ? dnnl_bf16 : dnnl_f32;
        dnnl_memory_desc_t s, w, bm, y;
        dnnl_dims_t strides = {d->stride, d->stride}, pl = {d->pad, d->pad};
        dnnl_dims_t pr = {(d->oh - 1) * d->stride + d->kh - d->h - d->pad,
                          (d->ow - 1) * d->stride + d->kw - d->w - d->pad};
        dnnl_convolution_desc_t cd;
        dnnl_status_t s_ = dnnl_success;
        rc = md_tag(&y, 4, dd, in, dnnl_format_tag_any);
        if (!rc)
            rc = md_tag(&bm, 1, &d->k, dnnl_f32, dnnl_a);
        if (!rc && kind == DN_CONV_BWD_DATA) {
            rc = md_tag(&s, 4, sd, dnnl_f32, dnnl_format_tag_any);
            if (!rc)
                rc = md_tag(&w, 4, wd, in, dnnl_format_tag_any);
            if (!rc)
                s_ =
                    dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &s, &w, &y, strides, pl, pr);
        } else if (!rc) {
            rc = md_tag(&s, 4, sd, in, dnnl_format_tag_any);
            if (!rc)
                rc = md_tag(&w, 4, wd, dnnl_f32, dnnl_format_tag_any);
            if (!rc)
                s_ = dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &s, &w,
                                                                 bias ? &bm : NULL, &y, strides, pl, pr);
        }
        if (!rc && s_ != dnnl_success)
            rc = eng_error(ENG_ENOTSUP, "oneDNN: convolution backward description: status %d", (int)s_);
        if (!rc && dnnl_primitive_desc_create(&pd, &cd, NULL, c->eng, fwd) != dnnl_success)
            rc = eng_error(ENG_ENOTSUP, "oneDNN: no convolution backward kernel");
        dnnl_primitive_desc_destroy(fwd);
        fwd = NULL;
        if (rc)
            return rc;
        if (kind == DN_CONV_BWD_DATA) {
            rc = plan_operand(c, p, DNNL_ARG_DIFF_DST, false, &uy, NULL, pd_md(pd, dnnl_query_diff_dst_md));
            if (!rc)
                rc = plan_operand(c, p, DNNL_ARG_WEIGHTS, false, &uw, NULL, pd_md(pd, dnnl_query_weights_md));
            if (!rc)
                rc = plan_operand(c, p, DNNL_ARG_DIFF_SRC, true, &ux, NULL, pd_md(pd, dnnl_query_diff_src_md));
        } else {
            rc = plan_operand(c, p, DNNL_ARG_SRC, false, &ux, NULL, pd_md(pd, dnnl_query_src_md));
            if (!rc)
                rc = plan_operand(c, p, DNNL_ARG_DIFF_DST, false, &uy, NULL, pd_md(pd, dnnl_query_diff_dst_md));
            if (!rc)
                rc = plan_operand(c, p, DNNL_ARG_DIFF_WEIGHTS, true, &uw, NULL,
                                  pd_md(pd, dnnl_query_diff_weights_md));
            if (!rc && bias)
                rc = plan_operand(c, p, DNNL_ARG_DIFF_BIAS, true, &ub, NULL,
                                  dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 1));
        }
    }
    if (rc) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    return plan_primitive(p, pd);
}

/* ---- matrix product plans ---- */

/* op(A[i]) as a (batch, m, k) tensor and op(B[i]) as (batch, k, n), float32
 * with the caller's strides. */
static void gemm_views(const eng_gemm_desc *d, int64_t ad[3], int64_t as[3], int64_t bd[3], int64_t bs[3])
{
    ad[0] = d->batch, ad[1] = d->m, ad[2] = d->k;
    as[0] = d->stride_a, as[1] = d->ta ? 1 : d->lda, as[2] = d->ta ? d->lda : 1;
    bd[0] = d->batch, bd[1] = d->k, bd[2] = d->n;
    bs[0] = d->stride_b, bs[1] = d->tb ? 1 : d->ldb, bs[2] = d->tb ? d->ldb : 1;
}

/* A matmul description of pa x pb -> uc whose kernel is not oneDNN's
 * reference one; NULL with the error recorded otherwise. */
static dnnl_primitive_desc_t matmul_pd(cpu_dnnl *c, const dnnl_memory_desc_t *pa, const dnnl_memory_desc_t *pb,
                                       const dnnl_memory_desc_t *uc)
{
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_matmul_desc_init(&md, pa, pb, NULL, uc) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &md, NULL, c->eng, NULL) != dnnl_success) {
        eng_error(ENG_ENOTSUP, "oneDNN: no matmul for these layouts");
        return NULL;
    }
    const char *impl = "";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    if (impl && strstr(impl, "ref")) {
        dnnl_primitive_desc_destroy(pd);
        eng_error(ENG_ENOTSUP, "oneDNN offers only its reference kernel (%s)", impl);
        return NULL;
    }
    return pd;
}

/* C[i] = op(A[i]) op(B[i]) as one batched matmul; a zero batch stride is
 * a broadcast (batch dimension 1). bf16: float32 A and B staged dense in
 * bf16; operands already stored in bf16 read as they lie (transposed or
 * strided: oneDNN's bf16 kernels take them, at the same speed as dense,
 * measured), unless no fast kernel does - then staged dense as well. */
static int matmul_plan_build(cpu_dnnl *c, dn_plan *p, const eng_gemm_desc *d, bool bf16)
{
    int64_t ad[3], as[3], bd[3], bs[3], cd[3] = {d->batch, d->m, d->n}, cs[3] = {d->stride_c, d->ldc, 1};
    gemm_views(d, ad, as, bd, bs);
    if (d->batch > 1 && d->stride_a == 0)
        ad[0] = 1, as[0] = d->m * d->k;
    if (d->batch > 1 && d->stride_b == 0)
        bd[0] = 1, bs[0] = d->k * d->n;
    const int nd = d->batch > 1 ? 3 : 2, o = 3 - nd; /* 2-d: drop the batch dimension */
    dnnl_memory_desc_t ua, ub, uc, pa, pb;
    int rc = md_plain(&ua, nd, ad + o, as + o, d->a_bf16 ? dnnl_bf16 : dnnl_f32);
    if (!rc)
        rc = md_plain(&ub, nd, bd + o, bs + o, d->b_bf16 ? dnnl_bf16 : dnnl_f32);
    if (!rc)
        rc = md_plain(&uc, nd, cd + o, cs + o, dnnl_f32);
    if (!rc && bf16) {
        rc = md_tag(&pa, nd, ad + o, dnnl_bf16, nd == 3 ? dnnl_abc : dnnl_ab);
        if (!rc)
            rc = md_tag(&pb, nd, bd + o, dnnl_bf16, nd == 3 ? dnnl_abc : dnnl_ab);
    } else {
        pa = ua, pb = ub;
    }
    if (rc)
        return rc;
    dnnl_primitive_desc_t pd = NULL;
    if (bf16 && (d->a_bf16 || d->b_bf16)) {
        dnnl_memory_desc_t qa = d->a_bf16 ? ua : pa, qb = d->b_bf16 ? ub : pb;
        pd = matmul_pd(c, &qa, &qb, &uc);
        if (pd)
            pa = qa, pb = qb;
        else
            eng_clear_error(); /* the dense stages below */
    }
    if (!pd) {
        dnnl_matmul_desc_t md;
        DN_TRY(dnnl_matmul_desc_init(&md, &pa, &pb, NULL, &uc));
        DN_TRY(dnnl_primitive_desc_create(&pd, &md, NULL, c->eng, NULL));
    }
    rc = plan_operand(c, p, DNNL_ARG_SRC, false, &ua, NULL, &pa);
    if (!rc)
        rc = plan_operand(c, p, DNNL_ARG_WEIGHTS, false, &ub, NULL, &pb);
    if (!rc)
        rc = plan_operand(c, p, DNNL_ARG_DST, true, &uc, NULL, &uc);
    if (rc) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    return plan_primitive(p, pd);
}

/* reduce_batch: C = sum_i op(A[i]) op(B[i]) as one product with the batch
 * folded into the inner dimension: A staged as (m, batch*k), B as
 * (batch*k, n) - a copy each, in bf16 or float32. An operand that already
 * lies so - sample i's k values at i*k along the inner dimension, as in the
 * mixer's token-major bf16 storage - in the type the product computes in
 * is read as it lies, a strided 2-d view (unless oneDNN has no fast kernel
 * for that view). */
static int matmul_reduce_plan_build(cpu_dnnl *c, dn_plan *p, const eng_gemm_desc *d, bool bf16)
{
    const dnnl_data_type_t t = bf16 ? dnnl_bf16 : dnnl_f32;
    const int64_t B = d->batch, bk = d->batch * d->k;
    int64_t ad[3], as[3], bd[3], bs[3];
    gemm_views(d, ad, as, bd, bs);
    const int64_t a_stage_s[3] = {d->k, bk, 1}, b_stage_s[3] = {d->k * d->n, d->n, 1};
    const int64_t a2[2] = {d->m, bk}, a2s[2] = {bk, 1}, b2[2] = {bk, d->n}, b2s[2] = {d->n, 1};
    const int64_t cd[2] = {d->m, d->n}, cs[2] = {d->ldc, 1};
    (void)B;
    dnnl_memory_desc_t ua, ub, uc, sa, sb, pa, pb;
    int rc = md_plain(&ua, 3, ad, as, d->a_bf16 ? dnnl_bf16 : dnnl_f32);
    if (!rc)
        rc = md_plain(&ub, 3, bd, bs, d->b_bf16 ? dnnl_bf16 : dnnl_f32);
    if (!rc)
        rc = md_plain(&sa, 3, ad, a_stage_s, t);
    if (!rc)
        rc = md_plain(&sb, 3, bd, b_stage_s, t);
    if (!rc)
        rc = md_plain(&pa, 2, a2, a2s, t);
    if (!rc)
        rc = md_plain(&pb, 2, b2, b2s, t);
    if (!rc)
        rc = md_plain(&uc, 2, cd, cs, dnnl_f32);
    if (rc)
        return rc;
    /* the folded views of A and B where their layouts allow one */
    const bool a_folds = (d->a_bf16 ? dnnl_bf16 : dnnl_f32) == t && as[0] == d->k * as[2];
    const bool b_folds = (d->b_bf16 ? dnnl_bf16 : dnnl_f32) == t && bs[0] == d->k * bs[1];
    const int64_t fa_s[2] = {as[1], as[2]}, fb_s[2] = {bs[1], bs[2]};
    dnnl_memory_desc_t fa = pa, fb = pb;
    if (a_folds)
        rc = md_plain(&fa, 2, a2, fa_s, t);
    if (!rc && b_folds)
        rc = md_plain(&fb, 2, b2, fb_s, t);
    if (rc)
        return rc;
    dnnl_primitive_desc_t pd = NULL;
    if (a_folds || b_folds) {
        pd = matmul_pd(c, &fa, &fb, &uc);
        if (!pd)
            eng_clear_error(); /* staged, below */
    }
    const bool as_is = pd != NULL;
    if (!pd) {
        dnnl_matmul_desc_t md;
        DN_TRY(dnnl_matmul_desc_init(&md, &pa, &pb, NULL, &uc));
        DN_TRY(dnnl_primitive_desc_create(&pd, &md, NULL, c->eng, NULL));
    }
    if (as_is && a_folds)
        rc = plan_operand(c, p, DNNL_ARG_SRC, false, &fa, NULL, &fa);
    else
        rc = plan_operand(c, p, DNNL_ARG_SRC, false, &ua, &sa, &pa);
    if (!rc && as_is && b_folds)
        rc = plan_operand(c, p, DNNL_ARG_WEIGHTS, false, &fb, NULL, &fb);
    else if (!rc)
        rc = plan_operand(c, p, DNNL_ARG_WEIGHTS, false, &ub, &sb, &pb);
    if (!rc)
        rc = plan_operand(c, p, DNNL_ARG_DST, true, &uc, NULL, &uc);
    if (rc) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    return plan_primitive(p, pd);
}

/* ---- the plan cache and execution ---- */

static void conv_key(int64_t key[DN_KEY_N], dn_kind kind, const eng_conv_desc *d, bool bf16, bool bias)
{
    memset(key, 0, DN_KEY_N * sizeof *key);
    int64_t v[] = {kind, bf16, bias, d->n, d->c, d->h, d->w, d->k, d->kh, d->kw, d->stride, d->pad, d->oh, d->ow,
                   d->x_blocked, d->y_blocked};
    memcpy(key, v, sizeof v);
}

static void gemm_key(int64_t key[DN_KEY_N], dn_kind kind, const eng_gemm_desc *d, bool bf16)
{
    memset(key, 0, DN_KEY_N * sizeof *key);
    int64_t v[] = {kind,   bf16,   d->a_bf16 + 2 * d->b_bf16, d->ta,  d->tb,       d->m,        d->n,        d->k,
                   d->lda, d->ldb, d->ldc, d->batch, d->stride_a, d->stride_b, d->stride_c, d->reduce_batch};
    memcpy(key, v, sizeof v);
}

/* The plan for key, built on first use by build(c, plan, arg...). */
typedef struct dn_build_args {
    dn_kind kind;
    const eng_conv_desc *conv;
    const eng_gemm_desc *gemm;
    bool bf16, bias;
} dn_build_args;

static int plan_get(cpu_dnnl *c, const int64_t key[DN_KEY_N], const dn_build_args *a, dn_plan **out)
{
    *out = NULL;
    for (int i = 0; i < c->nplans; i++)
        if (!memcmp(c->plans[i]->key, key, DN_KEY_N * sizeof *key)) {
            *out = c->plans[i];
            return c->plans[i]->status;
        }
    if (c->nplans == c->cap) {
        int cap = c->cap ? 2 * c->cap : 32;
        dn_plan **pl = realloc(c->plans, (size_t)cap * sizeof *pl);
        if (!pl)
            return eng_error(ENG_ENOMEM, "oneDNN: out of memory for plans");
        c->plans = pl;
        c->cap = cap;
    }
    dn_plan *p = calloc(1, sizeof *p);
    if (!p)
        return eng_error(ENG_ENOMEM, "oneDNN: out of memory for a plan");
    memcpy(p->key, key, DN_KEY_N * sizeof *key);
    p->slot0 = a->kind == DN_CONV_BWD_DATA ? DN_MAX_OPS : 0; /* apart from the weights gradient's, see conv_backward */
    int rc;
    if (a->kind == DN_MATMUL)
        rc = matmul_plan_build(c, p, a->gemm, a->bf16);
    else if (a->kind == DN_MATMUL_REDUCE)
        rc = matmul_reduce_plan_build(c, p, a->gemm, a->bf16);
    else
        rc = conv_plan_build(c, p, a->kind, a->conv, a->bf16, a->bias);
    if (rc < 0) {
        /* keep the refusal (and nothing else) so the shape is not tried again */
        for (int i = 0; i < p->nop; i++)
            operand_free(&p->op[i]);
        if (p->prim)
            dnnl_primitive_destroy(p->prim);
        memset(p->op, 0, sizeof p->op);
        p->nop = 0;
        p->prim = NULL;
        p->status = rc == ENG_ENOMEM ? ENG_ENOMEM : ENG_ENOTSUP;
    }
    c->plans[c->nplans++] = p;
    *out = p;
    return p->status;
}

static void *scratch_get(cpu_dnnl *c, int slot, size_t bytes)
{
    if (bytes <= c->scratch_n[slot])
        return c->scratch[slot];
    free(c->scratch[slot]);
    c->scratch_n[slot] = 0;
    size_t rounded = (bytes + 63) / 64 * 64;
    c->scratch[slot] = aligned_alloc(64, rounded);
    if (!c->scratch[slot]) {
        eng_error(ENG_ENOMEM, "oneDNN: cannot allocate %zu bytes of scratch", bytes);
        return NULL;
    }
    c->scratch_n[slot] = rounded;
    return c->scratch[slot];
}

#define DN_RUN(call, what)                                                                                         \
    do {                                                                                                           \
        dnnl_status_t s_ = (call);                                                                                 \
        if (s_ != dnnl_success)                                                                                    \
            return eng_error(ENG_EDEVICE, "oneDNN: %s failed (status %d)", what, (int)s_);                        \
    } while (0)

/* Runs a plan on the caller's tensors ptr[i] (operand order). Operand
 * `given` (-1: none) has its stage at `given_stage` instead of in scratch:
 * already reordered (by another plan, or kept) when `staged`, else
 * reordered there. */
static int plan_run_given(eng_backend *b, cpu_dnnl *c, dn_plan *p, void *const *ptr, int given, void *given_stage,
                          bool staged)
{
    cpu_blas_threads(b); /* oneDNN's OpenMP regions take the calling thread's thread count */
    dnnl_exec_arg_t args[DN_MAX_OPS];
    for (int i = 0; i < p->nop; i++) {
        dn_operand *o = &p->op[i];
        DN_RUN(dnnl_memory_set_data_handle(o->user, ptr[i]), "set_data_handle");
        if (o->stage) {
            void *s = i == given ? given_stage : scratch_get(c, p->slot0 + i, o->bytes);
            if (!s)
                return ENG_ENOMEM;
            DN_RUN(dnnl_memory_set_data_handle(o->stage, s), "set_data_handle");
            if (o->prim != o->stage)
                DN_RUN(dnnl_memory_set_data_handle(o->prim, s), "set_data_handle");
            if (!o->out && !(i == given && staged)) {
                dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, o->user}, {DNNL_ARG_TO, o->stage}};
                DN_RUN(dnnl_primitive_execute(o->reorder, c->st, 2, ra), "reorder");
            }
        }
        args[i] = (dnnl_exec_arg_t){o->arg, o->prim};
    }
    DN_RUN(dnnl_primitive_execute(p->prim, c->st, p->nop, args), p->impl);
    for (int i = 0; i < p->nop; i++) {
        dn_operand *o = &p->op[i];
        if (o->stage && o->out) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, o->stage}, {DNNL_ARG_TO, o->user}};
            DN_RUN(dnnl_primitive_execute(o->reorder, c->st, 2, ra), "reorder");
        }
    }
    DN_RUN(dnnl_stream_wait(c->st), "stream wait");
    c->last_impl = p->impl;
    return 0;
}

static int plan_run(eng_backend *b, cpu_dnnl *c, dn_plan *p, void *const *ptr)
{
    return plan_run_given(b, c, p, ptr, -1, NULL, false);
}

/* ---- kept stages (d->keep) ---- */

/* The head of a keep buffer; the stage follows at DN_KEEP_HEAD. */
typedef struct dn_keep_head {
    uint64_t magic; /* DN_KEEP_MAGIC while a stage is there */
    const void *x;  /* of which tensor */
    dnnl_memory_desc_t md;
} dn_keep_head;
#define DN_KEEP_MAGIC 0x317065656b6e6464ull
#define DN_KEEP_HEAD ((sizeof(dn_keep_head) + 63) / 64 * 64)

void cpu_dnnl_conv_keep_forget(const eng_conv_desc *d)
{
    if (d->keep && d->keep_bytes >= sizeof(dn_keep_head))
        ((dn_keep_head *)d->keep)->magic = 0;
}

/* The stage of operand o in d->keep, if it has one and it fits. */
static void *keep_stage(const eng_conv_desc *d, const dn_operand *o)
{
    if (!d->keep || !o->stage || d->keep_bytes < DN_KEEP_HEAD + o->bytes)
        return NULL;
    return (char *)d->keep + DN_KEEP_HEAD;
}

/* The kept stage when it holds x in o's layout; NULL otherwise. */
static const void *keep_find(const eng_conv_desc *d, const dn_operand *o, const void *x)
{
    void *s = keep_stage(d, o);
    const dn_keep_head *h = d->keep;
    const dnnl_memory_desc_t *md = NULL;
    if (!s || h->magic != DN_KEEP_MAGIC || h->x != x || dnnl_memory_get_memory_desc(o->stage, &md) != dnnl_success ||
        !dnnl_memory_desc_equal(&h->md, md))
        return NULL;
    return s;
}

static void keep_note(const eng_conv_desc *d, const dn_operand *o, const void *x)
{
    dn_keep_head *h = d->keep;
    const dnnl_memory_desc_t *md = NULL;
    if (dnnl_memory_get_memory_desc(o->stage, &md) != dnnl_success)
        return;
    h->x = x;
    h->md = *md;
    h->magic = DN_KEEP_MAGIC;
}

/* ---- the operations ---- */

int cpu_dnnl_conv_forward(eng_backend *b, const eng_conv_desc *d, bool bf16, const float *x, const float *w,
                          const float *bias, float *y)
{
    cpu_dnnl *c = dnnl_of(b);
    if (!c)
        return eng_error(ENG_ENOTSUP, "oneDNN is not available");
    int64_t key[DN_KEY_N];
    conv_key(key, DN_CONV_FWD, d, bf16, bias != NULL);
    dn_build_args a = {.kind = DN_CONV_FWD, .conv = d, .bf16 = bf16, .bias = bias != NULL};
    dn_plan *p;
    int rc = plan_get(c, key, &a, &p);
    if (rc < 0)
        return rc;
    void *with_bias[4] = {(void *)x, (void *)w, (void *)bias, y}, *without[3] = {(void *)x, (void *)w, y};
    cpu_dnnl_conv_keep_forget(d);
    void *kept = keep_stage(d, &p->op[0]); /* operand 0: the source */
    rc = plan_run_given(b, c, p, bias ? with_bias : without, kept ? 0 : -1, kept, false);
    if (rc == 0 && kept)
        keep_note(d, &p->op[0], x);
    return rc;
}

size_t cpu_dnnl_conv_keep_bytes(eng_backend *b, const eng_conv_desc *d, bool bf16)
{
    cpu_dnnl *c = dnnl_of(b);
    if (!c || (bf16 && cpu_conv_wgrad_gemm_fits(d)))
        return 0; /* (the products over shifted views read x, not oneDNN's copy) */
    int64_t key[DN_KEY_N];
    conv_key(key, DN_CONV_FWD, d, bf16, true); /* the source's layout is the same without a bias */
    dn_build_args a = {.kind = DN_CONV_FWD, .conv = d, .bf16 = bf16, .bias = true};
    dn_plan *p;
    if (plan_get(c, key, &a, &p) < 0) {
        eng_clear_error();
        return 0;
    }
    return p->op[0].stage ? DN_KEEP_HEAD + p->op[0].bytes : 0;
}

int cpu_dnnl_conv_backward(eng_backend *b, const eng_conv_desc *d, bool bf16, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float *db)
{
    cpu_dnnl *c = dnnl_of(b);
    if (!c)
        return eng_error(ENG_ENOTSUP, "oneDNN is not available");
    int64_t key[DN_KEY_N];
    dn_build_args a = {.kind = DN_CONV_BWD_DATA, .conv = d, .bf16 = bf16};
    dn_plan *pw = NULL, *pd = NULL;
    int rc;
    if (bf16 && cpu_conv_wgrad_gemm_fits(d)) {
        /* the weights gradient as products (cpu_conv_wgrad.c); the data
         * gradient stages dy itself */
        if (dx) {
            conv_key(key, DN_CONV_BWD_DATA, d, bf16, false);
            if ((rc = plan_get(c, key, &a, &pd)) < 0)
                return rc;
        }
        if ((rc = cpu_conv_wgrad_gemm(b, d, x, dy, dw, db)) < 0 || !dx)
            return rc;
        void *pd_ptr[3] = {(void *)dy, (void *)w, dx};
        return plan_run(b, c, pd, pd_ptr);
    }
    conv_key(key, DN_CONV_BWD_WEIGHTS, d, bf16, db != NULL);
    a.kind = DN_CONV_BWD_WEIGHTS;
    a.bias = db != NULL;
    rc = plan_get(c, key, &a, &pw);
    if (rc == 0 && dx) {
        conv_key(key, DN_CONV_BWD_DATA, d, bf16, false);
        a.kind = DN_CONV_BWD_DATA;
        a.bias = false;
        rc = plan_get(c, key, &a, &pd);
    }
    if (rc < 0)
        return rc;
    void *pw_ptr[4] = {(void *)x, (void *)dy, dw, db}; /* db last: absent when NULL */
    const void *kept = keep_find(d, &pw->op[0], x); /* the forward's reorder of x */
    rc = plan_run_given(b, c, pw, pw_ptr, kept ? 0 : -1, (void *)kept, true);
    if (rc == 0 && dx) {
        /* dy staged once when both want the same layout: the weights
         * gradient's stage of it (its operand 1) serves the data gradient
         * (operand 0, whose own stages are in other slots) */
        const dn_operand *wdy = &pw->op[1], *ddy = &pd->op[0];
        const dnnl_memory_desc_t *ma = NULL, *mb = NULL;
        const bool share = wdy->stage && ddy->stage && dnnl_memory_get_memory_desc(wdy->stage, &ma) == dnnl_success &&
                           dnnl_memory_get_memory_desc(ddy->stage, &mb) == dnnl_success &&
                           dnnl_memory_desc_equal(ma, mb);
        void *pd_ptr[3] = {(void *)dy, (void *)w, dx};
        rc = plan_run_given(b, c, pd, pd_ptr, share ? 0 : -1, c->scratch[pw->slot0 + 1], true);
    }
    return rc;
}

int cpu_dnnl_gemm(eng_backend *b, const eng_gemm_desc *d, bool bf16, const float *A, const float *B, float *C)
{
    cpu_dnnl *c = dnnl_of(b);
    if (!c)
        return eng_error(ENG_ENOTSUP, "oneDNN is not available");
    if (d->alpha != 1.0f || d->beta != 0.0f || d->k == 0)
        return eng_error(ENG_ENOTSUP, "oneDNN gemm: only alpha = 1, beta = 0 and k > 0 are planned");
    const dn_kind kind = d->reduce_batch && d->batch > 1 ? DN_MATMUL_REDUCE : DN_MATMUL;
    int64_t key[DN_KEY_N];
    gemm_key(key, kind, d, bf16);
    dn_build_args a = {.kind = kind, .gemm = d, .bf16 = bf16};
    dn_plan *p;
    int rc = plan_get(c, key, &a, &p);
    if (rc < 0)
        return rc;
    void *ptr[3] = {(void *)A, (void *)B, C};
    return plan_run(b, c, p, ptr);
}
