/* The sequential layers beyond spec v1 (transpose, mean, patches, reshape,
 * pad_channels, mixer, residual with post relu) on the CPU backend:
 * - the seed's MLP-Mixers and residual CNN written by hand as `sequential`
 *   have the templates' parameter counts and shapes, and, given the
 *   template's weights by position, the same outputs, gradients and running
 *   statistics bit for bit;
 * - transpose and mean forward against naive double-precision references;
 * - every parameter gradient of small models built from the new layers
 *   against central differences of the loss (the modules' backward wiring;
 *   the ops themselves are checked in test_cpu_ops.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/backend.h"
#include "engine/desc.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/rng.h"

/* ---- layer descriptions ---- */

static eng_layer_desc L(eng_layer_kind k) { return (eng_layer_desc){.kind = k}; }
static eng_layer_desc Lin(int64_t out) { return (eng_layer_desc){.kind = ENG_LAYER_LINEAR, .out = out, .bias = true}; }
static eng_layer_desc Conv(int64_t out, int64_t k, int64_t stride, int64_t pad)
{
    return (eng_layer_desc){.kind = ENG_LAYER_CONV2D, .out = out, .kernel = k, .stride = stride, .padding = pad,
                            .bias = true};
}
static eng_layer_desc Pool(int64_t k, int64_t stride, int64_t pad)
{
    return (eng_layer_desc){.kind = ENG_LAYER_MAXPOOL, .kernel = k, .stride = stride, .padding = pad};
}
static eng_layer_desc BN(void) { return (eng_layer_desc){.kind = ENG_LAYER_BATCHNORM, .affine = true}; }
static eng_layer_desc LN(int64_t dims)
{
    return (eng_layer_desc){.kind = ENG_LAYER_LAYERNORM, .affine = true, .dims = dims};
}
static eng_layer_desc Mean(int64_t dim) { return (eng_layer_desc){.kind = ENG_LAYER_MEAN, .dim = dim}; }
static eng_layer_desc Reshape(eng_shape s) { return (eng_layer_desc){.kind = ENG_LAYER_RESHAPE, .shape = s}; }
static eng_layer_desc Patches(int64_t p) { return (eng_layer_desc){.kind = ENG_LAYER_PATCHES, .patch_size = p}; }
static eng_layer_desc Pad(int64_t c) { return (eng_layer_desc){.kind = ENG_LAYER_PAD_CHANNELS, .out = c}; }
static eng_layer_desc Res(eng_layer_desc *inner, int64_t n, eng_act post)
{
    return (eng_layer_desc){.kind = ENG_LAYER_RESIDUAL, .layers = inner, .n_layers = n, .post = post};
}

#define MAX_SEQ 256

/* Storage of a hand-written model's layer lists. */
typedef struct seq_buf {
    eng_layer_desc top[MAX_SEQ];
    eng_layer_desc inner[MAX_SEQ];
    int ntop, ninner;
} seq_buf;

static void push(seq_buf *s, eng_layer_desc l)
{
    assert_true(s->ntop < MAX_SEQ);
    s->top[s->ntop++] = l;
}

static eng_layer_desc *inner_list(seq_buf *s, const eng_layer_desc *l, int n)
{
    assert_true(s->ninner + n <= MAX_SEQ);
    eng_layer_desc *at = &s->inner[s->ninner];
    memcpy(at, l, (size_t)n * sizeof *l);
    s->ninner += n;
    return at;
}

static eng_model_desc seq_desc(seq_buf *s)
{
    eng_model_desc m;
    eng_model_desc_default(&m);
    m.template_kind = ENG_TEMPLATE_SEQUENTIAL;
    m.layers = s->top;
    m.n_layers = s->ntop;
    return m;
}

static eng_model_desc mixer_template(int64_t p, int64_t hidden, int64_t depth, eng_patching patching, eng_head head)
{
    eng_model_desc m;
    eng_model_desc_default(&m);
    m.template_kind = ENG_TEMPLATE_MLP_MIXER;
    m.patch_size = p;
    m.hidden = hidden;
    m.depth = depth;
    m.patching = patching;
    m.head = head;
    return m;
}

/* The mlp_mixer template by hand: tokens, embed, mixers, norm, mean, head. */
static eng_model_desc mixer_by_hand(seq_buf *s, const eng_shape *in, int64_t classes, int64_t p, int64_t hidden,
                                    int64_t depth, eng_patching patching, eng_head head)
{
    memset(s, 0, sizeof *s);
    int64_t S = (in->d[1] / p) * (in->d[2] / p), D = in->d[0] * p * p;
    push(s, patching == ENG_PATCHING_RESHAPE ? Reshape(eng_shape2(S, D)) : Patches(p));
    push(s, Lin(hidden));
    for (int64_t i = 0; i < depth; i++)
        push(s, L(ENG_LAYER_MIXER));
    push(s, LN(2));
    push(s, Mean(-1));
    push(s, Lin(classes));
    if (head == ENG_HEAD_SOFTMAX)
        push(s, L(ENG_LAYER_SOFTMAX));
    return seq_desc(s);
}

static eng_model_desc resnet_template(int64_t *channels, int64_t n, eng_block block, eng_head head)
{
    eng_model_desc m;
    eng_model_desc_default(&m);
    m.template_kind = ENG_TEMPLATE_RESNET;
    m.channels = channels;
    m.n_channels = n;
    m.block = block;
    m.head = head;
    return m;
}

/* The resnet template by hand: stem, residual blocks with post relu, padding
 * blocks as maxpool + pad_channels, flatten, linear, head. */
static eng_model_desc resnet_by_hand(seq_buf *s, const int64_t *channels, int64_t n, eng_block block, int64_t classes,
                                     eng_head head)
{
    memset(s, 0, sizeof *s);
    push(s, Conv(channels[0], 7, 2, 3));
    push(s, Pool(3, 2, 1));
    for (int64_t i = 0; i < n; i++) {
        int64_t c = channels[i];
        if (i + 1 < n && channels[i + 1] != c) {
            push(s, Pool(3, 2, 0));
            push(s, Pad(channels[i + 1]));
            continue;
        }
        if (block == ENG_BLOCK_SMALL) {
            eng_layer_desc b[] = {Conv(c, 3, 1, 1), BN(), L(ENG_LAYER_RELU), Conv(c, 3, 1, 1), BN()};
            push(s, Res(inner_list(s, b, 5), 5, ENG_ACT_RELU));
        } else {
            eng_layer_desc b[] = {Conv(c / 4, 1, 1, 0), BN(), L(ENG_LAYER_RELU), Conv(c / 4, 3, 1, 1), BN(),
                                  L(ENG_LAYER_RELU), Conv(c, 1, 1, 0), BN()};
            push(s, Res(inner_list(s, b, 8), 8, ENG_ACT_RELU));
        }
    }
    push(s, L(ENG_LAYER_FLATTEN));
    push(s, Lin(classes));
    if (head == ENG_HEAD_SOFTMAX)
        push(s, L(ENG_LAYER_SOFTMAX));
    return seq_desc(s);
}

/* ---- (1) parameter counts and shapes of the seed's models ---- */

static void diag_print(void *ctx, const char *path, const char *message)
{
    (void)ctx;
    print_message("    %s: %s\n", path, message);
}

static eng_model *build(const eng_model_desc *d, eng_shape in, int64_t classes)
{
    eng_model *m = NULL;
    assert_int_equal(eng_model_build(d, &in, classes, diag_print, NULL, &m), 0);
    return m;
}

/* Same tensors in the same order: count, shapes, offsets (names differ). */
static void assert_same_layout(const eng_model *a, const eng_model *b)
{
    assert_int_equal(eng_model_param_count(a), eng_model_param_count(b));
    assert_int_equal(eng_model_buffer_count(a), eng_model_buffer_count(b));
    for (int which = 0; which < 2; which++) {
        const eng_tensor_info *ta, *tb;
        int na = which ? eng_model_buffers(a, &ta) : eng_model_params(a, &ta);
        int nb = which ? eng_model_buffers(b, &tb) : eng_model_params(b, &tb);
        assert_int_equal(na, nb);
        for (int i = 0; i < na; i++) {
            if (!eng_shape_equal(&ta[i].shape, &tb[i].shape) || ta[i].offset != tb[i].offset) {
                char sa[64], sb[64];
                print_message("    tensor %d: %s %s at %lld vs %s %s at %lld\n", i, ta[i].name,
                              eng_shape_str(&ta[i].shape, sa, sizeof sa), (long long)ta[i].offset, tb[i].name,
                              eng_shape_str(&tb[i].shape, sb, sizeof sb), (long long)tb[i].offset);
                fail();
            }
        }
    }
}

static int64_t res_channels[] = {32, 32, 64, 64, 64, 64, 128, 128, 128};

static void test_seed_layouts(void **state)
{
    (void)state;
    static seq_buf s;
    eng_shape in = eng_shape3(3, 32, 32);
    const struct {
        int64_t p, hidden, depth, params;
    } mixers[] = {{4, 128, 6, 273674}, {2, 128, 6, 1062026}, {4, 192, 8, 698186}, {2, 192, 8, 1756106}};
    for (int i = 0; i < 4; i++) {
        eng_model_desc t = mixer_template(mixers[i].p, mixers[i].hidden, mixers[i].depth, ENG_PATCHING_RESHAPE,
                                          ENG_HEAD_SOFTMAX);
        eng_model_desc h = mixer_by_hand(&s, &in, 10, mixers[i].p, mixers[i].hidden, mixers[i].depth,
                                         ENG_PATCHING_RESHAPE, ENG_HEAD_SOFTMAX);
        eng_model *mt = build(&t, in, 10), *mh = build(&h, in, 10);
        assert_int_equal(eng_model_param_count(mh), mixers[i].params);
        assert_same_layout(mt, mh);
        assert_int_equal(eng_model_flops(mt), eng_model_flops(mh));
        /* a mixer entry's names are the template's blocks.<k>.<j>.* under its index */
        const eng_tensor_info *p;
        int np = eng_model_params(mh, &p);
        assert_string_equal(p[0].name, "1.weight"); /* the embedding (0 is the reshape) */
        assert_string_equal(p[2].name, "2.0.weight");
        assert_string_equal(p[13].name, "2.5.bias");
        assert_string_equal(p[14].name, "3.0.weight");
        char head[32];
        snprintf(head, sizeof head, "%lld.bias", (long long)(mixers[i].depth + 4));
        assert_string_equal(p[np - 1].name, head); /* reshape, embed, the mixers, norm, mean, head */
        (void)np;
        eng_model_free(mt);
        eng_model_free(mh);
    }
    eng_model_desc t = resnet_template(res_channels, 9, ENG_BLOCK_SMALL, ENG_HEAD_SOFTMAX);
    eng_model_desc h = resnet_by_hand(&s, res_channels, 9, ENG_BLOCK_SMALL, 10, ENG_HEAD_SOFTMAX);
    eng_model *mt = build(&t, in, 10), *mh = build(&h, in, 10);
    assert_int_equal(eng_model_param_count(mh), 1134026);
    assert_same_layout(mt, mh);
    assert_int_equal(eng_model_flops(mt), eng_model_flops(mh));
    const eng_tensor_info *p;
    eng_model_params(mh, &p);
    assert_string_equal(p[2].name, "2.layers.0.weight");
    const eng_tensor_info *bf;
    eng_model_buffers(mh, &bf);
    assert_string_equal(bf[0].name, "2.layers.1.running_mean");
    eng_model_free(mt);
    eng_model_free(mh);

    t = resnet_template(res_channels, 9, ENG_BLOCK_BIG, ENG_HEAD_LOGITS);
    h = resnet_by_hand(&s, res_channels, 9, ENG_BLOCK_BIG, 10, ENG_HEAD_LOGITS);
    mt = build(&t, in, 10);
    mh = build(&h, in, 10);
    assert_same_layout(mt, mh);
    eng_model_free(mt);
    eng_model_free(mh);
}

/* ---- (2) the same numbers from the same weights ---- */

typedef struct pair {
    eng_backend *b;
    eng_model *m[2]; /* 0: template, 1: by hand */
    float *x, *dout;
    int64_t batch, classes, nx;
} pair;

static void fill_uniform(float *v, int64_t n, uint64_t seed, float lo, float hi)
{
    eng_rng r;
    eng_rng_init(&r, seed, 3);
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * eng_rng_uniform(&r);
}

/* Downloads n floats of backend memory into a fresh host array. */
static float *host_copy(eng_backend *b, const float *src, int64_t n)
{
    float *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    assert_non_null(h);
    assert_int_equal(b->ops->download(b, h, src, (size_t)n * sizeof *h), 0);
    return h;
}

static void assert_bits_equal(const char *what, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], sizeof a[i])) {
            print_message("    %s differs at %lld: template %.9g, by hand %.9g\n", what, (long long)i, a[i], b[i]);
            fail();
        }
    }
}

static void compare_same_weights(const eng_model_desc *t, const eng_model_desc *h, eng_shape in, int64_t classes,
                                 int64_t batch, const char *what)
{
    pair P = {.batch = batch, .classes = classes, .nx = batch * eng_shape_numel(&in)};
    assert_int_equal(eng_cpu_backend_new(2, &P.b), 0);
    P.m[0] = build(t, in, classes);
    P.m[1] = build(h, in, classes);
    assert_same_layout(P.m[0], P.m[1]);
    int64_t np = eng_model_param_count(P.m[0]), nb = eng_model_buffer_count(P.m[0]);
    for (int k = 0; k < 2; k++)
        assert_int_equal(eng_model_bind(P.m[k], P.b, batch), 0);
    assert_int_equal(eng_model_init_params(P.m[0], 11), 0);
    /* the template's weights by position; random norm parameters and running
     * statistics so that every term shows */
    float *w = host_copy(P.b, eng_model_param_data(P.m[0]), np);
    const eng_tensor_info *ti;
    int nt = eng_model_params(P.m[0], &ti);
    for (int i = 0; i < nt; i++)
        if (ti[i].shape.ndim == 1 || strstr(ti[i].name, "norm")) /* biases, norms' weights, the (S, C) norm */
            fill_uniform(w + ti[i].offset, ti[i].numel, 100 + (uint64_t)i, 0.5f, 1.5f);
    float *rb = NULL;
    if (nb) {
        rb = malloc((size_t)nb * sizeof *rb);
        assert_non_null(rb);
        fill_uniform(rb, nb, 7, 0.2f, 1.2f);
    }
    for (int k = 0; k < 2; k++) {
        assert_int_equal(P.b->ops->upload(P.b, eng_model_param_data(P.m[k]), w, (size_t)np * sizeof *w), 0);
        if (nb)
            assert_int_equal(P.b->ops->upload(P.b, eng_model_buffer_data(P.m[k]), rb, (size_t)nb * sizeof *rb), 0);
    }
    float *hx = malloc((size_t)P.nx * sizeof *hx), *hd = malloc((size_t)(batch * classes) * sizeof *hd);
    assert_non_null(hx);
    assert_non_null(hd);
    fill_uniform(hx, P.nx, 1, -1.0f, 1.0f);
    fill_uniform(hd, batch * classes, 2, -1.0f, 1.0f);
    assert_int_equal(eng_alloc_floats(P.b, P.nx, &P.x), 0);
    assert_int_equal(eng_alloc_floats(P.b, batch * classes, &P.dout), 0);
    assert_int_equal(P.b->ops->upload(P.b, P.x, hx, (size_t)P.nx * sizeof *hx), 0);
    assert_int_equal(P.b->ops->upload(P.b, P.dout, hd, (size_t)(batch * classes) * sizeof *hd), 0);

    float *out[2], *grad[2], *bufs[2], *eval[2];
    for (int k = 0; k < 2; k++) {
        const float *o;
        assert_int_equal(eng_model_forward(P.m[k], P.x, batch, true, 5, &o), 0);
        out[k] = host_copy(P.b, o, batch * classes);
        assert_int_equal(eng_model_backward(P.m[k], P.dout), 0);
        grad[k] = host_copy(P.b, eng_model_grad_data(P.m[k]), np);
        bufs[k] = host_copy(P.b, eng_model_buffer_data(P.m[k]), nb);
        assert_int_equal(eng_model_forward(P.m[k], P.x, batch, false, 0, &o), 0);
        eval[k] = host_copy(P.b, o, batch * classes);
    }
    double gmax = 0.0;
    for (int64_t i = 0; i < np; i++)
        gmax = fmax(gmax, fabs(grad[0][i]));
    print_message("    %s: %lld parameters, %lld buffers, largest |grad| %.3g: outputs, gradients, running "
                  "statistics and evaluation outputs identical\n",
                  what, (long long)np, (long long)nb, gmax);
    assert_true(gmax > 0.0); /* a gradient that is all zeros would compare equal for nothing */
    assert_bits_equal("training output", out[0], out[1], batch * classes);
    assert_bits_equal("gradient", grad[0], grad[1], np);
    assert_bits_equal("running statistics", bufs[0], bufs[1], nb);
    assert_bits_equal("evaluation output", eval[0], eval[1], batch * classes);
    for (int k = 0; k < 2; k++) {
        free(out[k]);
        free(grad[k]);
        free(bufs[k]);
        free(eval[k]);
        eng_model_free(P.m[k]);
    }
    P.b->ops->free(P.b, P.x);
    P.b->ops->free(P.b, P.dout);
    eng_backend_free(P.b);
    free(w);
    free(rb);
    free(hx);
    free(hd);
}

static void test_mixer_same_numbers(void **state)
{
    (void)state;
    static seq_buf s;
    eng_shape in = eng_shape3(3, 16, 16);
    eng_model_desc t = mixer_template(4, 12, 2, ENG_PATCHING_RESHAPE, ENG_HEAD_SOFTMAX);
    eng_model_desc h = mixer_by_hand(&s, &in, 10, 4, 12, 2, ENG_PATCHING_RESHAPE, ENG_HEAD_SOFTMAX);
    compare_same_weights(&t, &h, in, 10, 3, "mixer p4 reshape softmax");
    in = eng_shape3(2, 8, 12);
    t = mixer_template(2, 10, 3, ENG_PATCHING_PATCHES, ENG_HEAD_LOGITS);
    h = mixer_by_hand(&s, &in, 5, 2, 10, 3, ENG_PATCHING_PATCHES, ENG_HEAD_LOGITS);
    compare_same_weights(&t, &h, in, 5, 4, "mixer p2 patches logits, 8x12");
}

static void test_resnet_same_numbers(void **state)
{
    (void)state;
    static seq_buf s;
    static int64_t small[] = {4, 4, 8, 8};
    static int64_t big[] = {8, 8, 16, 16, 16};
    eng_shape in = eng_shape3(3, 32, 32);
    eng_model_desc t = resnet_template(small, 4, ENG_BLOCK_SMALL, ENG_HEAD_SOFTMAX);
    eng_model_desc h = resnet_by_hand(&s, small, 4, ENG_BLOCK_SMALL, 10, ENG_HEAD_SOFTMAX);
    compare_same_weights(&t, &h, in, 10, 3, "resnet small [4, 4, 8, 8] softmax");
    in = eng_shape3(2, 24, 24);
    t = resnet_template(big, 5, ENG_BLOCK_BIG, ENG_HEAD_LOGITS);
    h = resnet_by_hand(&s, big, 5, ENG_BLOCK_BIG, 4, ENG_HEAD_LOGITS);
    compare_same_weights(&t, &h, in, 4, 2, "resnet big [8, 8, 16, 16, 16] logits, 24x24");
}

/* ---- (3) transpose and mean forward against naive references ---- */

/* The output of a one-sample-at-a-time forward of `layers` for x. */
static float *forward_of(eng_layer_desc *layers, int n, eng_shape in, int64_t classes, int64_t batch, const float *hx)
{
    eng_model_desc d;
    eng_model_desc_default(&d);
    d.template_kind = ENG_TEMPLATE_SEQUENTIAL;
    d.layers = layers;
    d.n_layers = n;
    eng_backend *b = NULL;
    assert_int_equal(eng_cpu_backend_new(1, &b), 0);
    eng_model *m = build(&d, in, classes);
    assert_int_equal(eng_model_bind(m, b, batch), 0);
    int64_t nx = batch * eng_shape_numel(&in);
    float *x;
    assert_int_equal(eng_alloc_floats(b, nx, &x), 0);
    assert_int_equal(b->ops->upload(b, x, hx, (size_t)nx * sizeof *hx), 0);
    const float *o;
    assert_int_equal(eng_model_forward(m, x, batch, true, 0, &o), 0);
    float *out = host_copy(b, o, batch * classes);
    b->ops->free(b, x);
    eng_model_free(m);
    eng_backend_free(b);
    return out;
}

static void test_transpose_mean_forward(void **state)
{
    (void)state;
    enum { B = 2, A = 3, R = 4, C = 5 };
    float x[B * A * R * C];
    fill_uniform(x, B * A * R * C, 9, -2.0f, 2.0f);
#define X(b, a, r, c) x[(((b) * A + (a)) * R + (r)) * C + (c)]

    /* transpose of (A, R, C): y[b, a, c, r] = x[b, a, r, c], exactly */
    eng_layer_desc tl[] = {L(ENG_LAYER_TRANSPOSE), L(ENG_LAYER_FLATTEN)};
    float *y = forward_of(tl, 2, eng_shape3(A, R, C), A * R * C, B, x);
    for (int b = 0; b < B; b++)
        for (int a = 0; a < A; a++)
            for (int r = 0; r < R; r++)
                for (int c = 0; c < C; c++)
                    assert_true(y[((b * A + a) * C + c) * R + r] == X(b, a, r, c));
    free(y);

    /* mean over each dimension of (A, R, C), and over negative ones */
    const int dims[] = {0, 1, 2, -1, -2, -3};
    for (int k = 0; k < 6; k++) {
        int dim = dims[k] < 0 ? dims[k] + 3 : dims[k];
        int64_t size[3] = {A, R, C}, keep = A * R * C / size[dim];
        eng_layer_desc ml[] = {Mean(dims[k]), L(ENG_LAYER_FLATTEN)};
        y = forward_of(ml, 2, eng_shape3(A, R, C), keep, B, x);
        double worst = 0.0;
        for (int b = 0; b < B; b++) {
            int64_t o = 0;
            for (int a = 0; a < (dim == 0 ? 1 : A); a++)
                for (int r = 0; r < (dim == 1 ? 1 : R); r++)
                    for (int c = 0; c < (dim == 2 ? 1 : C); c++, o++) {
                        double sum = 0.0;
                        for (int j = 0; j < size[dim]; j++)
                            sum += X(b, dim == 0 ? j : a, dim == 1 ? j : r, dim == 2 ? j : c);
                        worst = fmax(worst, fabs(y[b * keep + o] - sum / (double)size[dim]));
                    }
        }
        print_message("    mean over dim %d of [%d, %d, %d]: largest error %.2g\n", dims[k], A, R, C, worst);
        assert_true(worst <= 1e-6);
        free(y);
    }
#undef X
}

/* ---- (4) backward wiring against central differences ---- */

#define FD_STEP 3e-3
/* h = 3e-3: the mixer model's truncation error is 7e-4 of the largest gradient at
 * h = 1e-2 and 11 times less here (h^2), float32 loss noise still far below */
#define FD_TOL 3e-4 /* of the model's largest gradient */

typedef struct fd {
    eng_backend *b;
    eng_model *m;
    float *x, *dlogits;
    int32_t *labels;
    double *acc;
    int64_t batch, classes;
} fd;

static double fd_loss(fd *f)
{
    const float *out;
    double zero[2] = {0.0, 0.0}, acc[2];
    assert_int_equal(eng_model_forward(f->m, f->x, f->batch, true, 1, &out), 0);
    assert_int_equal(f->b->ops->upload(f->b, f->acc, zero, sizeof zero), 0);
    eng_xent_desc xd = {.rows = f->batch, .classes = f->classes, .k = 1, .scale = 1.0f / (float)f->batch};
    assert_int_equal(f->b->ops->xent(f->b, &xd, out, f->labels, f->dlogits, f->acc), 0);
    assert_int_equal(f->b->ops->download(f->b, acc, f->acc, sizeof acc), 0);
    return acc[0] / (double)f->batch;
}

static void check_fd(eng_layer_desc *layers, int n, eng_shape in, int64_t classes, const char *what)
{
    fd f = {.batch = 3, .classes = classes};
    eng_model_desc d;
    eng_model_desc_default(&d);
    d.template_kind = ENG_TEMPLATE_SEQUENTIAL;
    d.layers = layers;
    d.n_layers = n;
    f.m = build(&d, in, classes);
    assert_int_equal(eng_cpu_backend_new(2, &f.b), 0);
    assert_int_equal(eng_model_bind(f.m, f.b, f.batch), 0);
    assert_int_equal(eng_model_init_params(f.m, 3), 0);
    int64_t nx = f.batch * eng_shape_numel(&in), np = eng_model_param_count(f.m);
    assert_int_equal(eng_alloc_floats(f.b, nx, &f.x), 0);
    assert_int_equal(eng_alloc_floats(f.b, f.batch * classes, &f.dlogits), 0);
    assert_int_equal(f.b->ops->alloc(f.b, (size_t)f.batch * sizeof(int32_t), (void **)&f.labels), 0);
    assert_int_equal(f.b->ops->alloc(f.b, 2 * sizeof(double), (void **)&f.acc), 0);
    float *hx = malloc((size_t)nx * sizeof *hx);
    assert_non_null(hx);
    fill_uniform(hx, nx, 4, -1.0f, 1.0f);
    int32_t hl[3] = {0, (int32_t)(classes - 1), (int32_t)(classes / 2)};
    assert_int_equal(f.b->ops->upload(f.b, f.x, hx, (size_t)nx * sizeof *hx), 0);
    assert_int_equal(f.b->ops->upload(f.b, f.labels, hl, sizeof hl), 0);

    fd_loss(&f);
    assert_int_equal(eng_model_backward(f.m, f.dlogits), 0);
    float *g = host_copy(f.b, eng_model_grad_data(f.m), np);
    float *p = eng_model_param_data(f.m);
    float *hp = host_copy(f.b, p, np);
    double gmax = 0.0, worst = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < np; i++)
        gmax = fmax(gmax, fabs(g[i]));
    for (int64_t i = 0; i < np; i++) {
        float v[2] = {hp[i] + (float)FD_STEP, hp[i] - (float)FD_STEP};
        double l[2];
        for (int s = 0; s < 2; s++) {
            assert_int_equal(f.b->ops->upload(f.b, p + i, &v[s], sizeof(float)), 0);
            l[s] = fd_loss(&f);
        }
        assert_int_equal(f.b->ops->upload(f.b, p + i, &hp[i], sizeof(float)), 0);
        double err = fabs((l[0] - l[1]) / ((double)v[0] - (double)v[1]) - g[i]);
        if (err > worst) {
            worst = err;
            at = i;
        }
    }
    print_message("    %s: %lld parameters, largest |grad| %.3g, largest |fd - grad| %.3g (%.2g of it) at %lld\n", what,
                  (long long)np, gmax, worst, worst / gmax, (long long)at);
    assert_true(gmax > 1e-3);
    assert_true(worst <= FD_TOL * gmax);
    free(g);
    free(hp);
    free(hx);
    f.b->ops->free(f.b, f.x);
    f.b->ops->free(f.b, f.dlogits);
    f.b->ops->free(f.b, f.labels);
    f.b->ops->free(f.b, f.acc);
    eng_model_free(f.m);
    eng_backend_free(f.b);
}

static void test_backward_fd(void **state)
{
    (void)state;
    /* transpose between two linears; mean over the first dimension */
    eng_layer_desc a[] = {Lin(5), L(ENG_LAYER_TANH), L(ENG_LAYER_TRANSPOSE), Lin(6), Mean(0)};
    check_fd(a, 5, eng_shape2(4, 3), 6, "linear, transpose, linear, mean dim 0");
    /* mean over a middle dimension (through the transpose in workspace) and the last */
    eng_layer_desc b[] = {Lin(5), L(ENG_LAYER_TANH), Mean(1), L(ENG_LAYER_TRANSPOSE), Lin(3), Mean(-1)};
    check_fd(b, 6, eng_shape3(2, 3, 4), 5, "linear, mean dim 1, transpose, linear, mean dim -1");
    /* an image through pad_channels and patches into a mixer and an explicit
     * token mixing (transposes inside a residual), reshape, linear */
    eng_layer_desc tok[] = {L(ENG_LAYER_TRANSPOSE), LN(1), Lin(4), L(ENG_LAYER_GELU), Lin(4),
                            L(ENG_LAYER_TRANSPOSE)};
    eng_layer_desc c[] = {Conv(2, 3, 1, 1), L(ENG_LAYER_TANH), Pad(3),  Patches(2), Lin(6), L(ENG_LAYER_MIXER),
                          Res(tok, 6, ENG_ACT_NONE),           Reshape(eng_shape1(24)), Lin(3)};
    check_fd(c, 9, eng_shape3(2, 4, 4), 3, "conv, pad_channels, patches, linear, mixer, token mixing, reshape");
    /* residual with post relu (ReLU's kink is met with probability ~0 here) */
    eng_layer_desc inner[] = {Lin(4), L(ENG_LAYER_TANH)};
    eng_layer_desc d[] = {Lin(4), Res(inner, 2, ENG_ACT_RELU), Lin(3)};
    check_fd(d, 3, eng_shape1(5), 3, "linear, residual post relu, linear");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_layouts),
        cmocka_unit_test(test_mixer_same_numbers),
        cmocka_unit_test(test_resnet_same_numbers),
        cmocka_unit_test(test_transpose_mean_forward),
        cmocka_unit_test(test_backward_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
