/* Max pooling with a 3x3 window at stride 2 (padding 0 or 1) over rows of
 * at most 32 on AVX-512: the seed CNNs' pools of 8x8 to 32x32 planes. The
 * general kernel of cpu_pool.c gathers each tap of each window through an
 * index table; at batch 500 its forward of 32x32 planes ran at 4-5 GB/s.
 *
 * Forward, an output row at a time (all its outputs in one vector): each of
 * the window's three input rows is read as 34 consecutive floats (columns
 * 2j, 2j+1 and 2j+2 of output j), split into even and odd columns by two
 * permutes and reduced over kx; the three rows are then reduced over ky.
 * Every reduction keeps the first of equal values and lets a NaN win (as
 * max_first in cpu_pool.c), so the maximum and its tap are the first in
 * row-major window order, exactly what the general kernel's scan over the
 * nine taps finds. Columns and rows in the padding read -inf, as the
 * general kernel's padded view does, so even its taps agree: the output and
 * the kept taps are the same bytes.
 *
 * Backward from the forward's kept taps, an input row at a time: the row's
 * 32 columns start at zero in two registers, each output of the (one or
 * two) output rows whose windows hold it spreads its gradient to the lane
 * of its tap, and the row is stored once. The additions per column come in
 * the general kernel's order (output row by output row; column 2j - P takes
 * output j-1's kx = 2 before output j's kx = 0), so the bits are its bits.
 * Only where no tap can lie in the padding: pad 0, or the relu before the
 * pool, which skips the -inf windows that would route elsewhere.
 *
 * (AMD Zen 5: masked loads and stores that miss the cache, and masks moved
 * through general registers, ran several times slower; hence the plain
 * loads and stores inside the plane and the masks kept in the vector unit.) */
#include <math.h>

#include "engine/cpu/cpu_internal.h"

bool cpu_pool_s2_fits(const eng_pool_desc *d)
{
    /* a row in two vectors and its outputs in one; smaller planes (7x7, 3x3) went 2-6x faster through the
     * general kernel, which sweeps them in groups */
    return CPU_MULTIVERSION && cpu_isa_level_current >= 4 && d->mode == ENG_POOL_MAX && d->kh == 3 && d->kw == 3 &&
           d->stride == 2 && d->pad <= 1 && d->w <= 32 && d->h * d->w >= 64;
}

bool cpu_pool_s2_backward_fits(const eng_pool_desc *d, bool relu)
{
    /* at batch 500, 2 threads: 32x32 planes 4.4 -> 3.1 ms; 16x16 the same as the general kernel's scatter,
     * 15x15 and 8x8 slower */
    return cpu_pool_s2_fits(d) && (d->pad == 0 || relu) && d->w >= 24;
}

#if CPU_MULTIVERSION
#include <immintrin.h>

#define V4 __attribute__((target("arch=x86-64-v4")))

/* Lanes l of a 16-float load at column c that lie in [0, w). */
static inline __mmask16 cols_in(int64_t c, int64_t w)
{
    const int64_t lo = c < 0 ? -c : 0, hi = w - c < 16 ? w - c : 16;
    if (hi <= lo)
        return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* The kernels load and store all 16 lanes wherever those lie inside the
 * plane (which only this thread touches) and mask only at the plane's
 * ends: a load's lanes past a row's end read the next row and are replaced
 * by -inf; a store's write the next row's first columns, whose own store
 * comes later. */

/* A load the compiler may not fold into a masked blend (vblendmps with a
 * memory operand is a masked load too). */
V4 static inline __m512 plain_load(const float *p)
{
    __m512 v = _mm512_loadu_ps(p);
    __asm__("" : "+v"(v));
    return v;
}

/* m, k take v, kv where v is greater or a NaN, unless m already is a NaN. */
V4 static inline void take(__m512 *m, __m512i *k, __m512 v, __m512i kv)
{
    const __mmask16 t = (_mm512_cmp_ps_mask(v, *m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q)) &
                        _mm512_cmp_ps_mask(*m, *m, _CMP_ORD_Q);
    *m = _mm512_mask_mov_ps(*m, t, v);
    *k = _mm512_mask_mov_epi32(*k, t, kv);
}

/* The forward's constants for one plane shape: the columns each of a row's
 * four loads may keep. */
typedef struct s2_shape {
    int64_t H, W, OH, OW, P, HW, OHW;
    __mmask16 a0, a1, b0, b1, live;
} s2_shape;

static s2_shape s2_shape_of(const eng_pool_desc *d)
{
    s2_shape s = {.H = d->h, .W = d->w, .OH = d->oh, .OW = d->ow, .P = d->pad, .HW = d->h * d->w,
                  .OHW = d->oh * d->ow};
    s.a0 = cols_in(-s.P, s.W);
    s.a1 = cols_in(16 - s.P, s.W);
    s.b0 = cols_in(2 - s.P, s.W);
    s.b1 = cols_in(18 - s.P, s.W);
    s.live = (__mmask16)((1u << s.OW) - 1u);
    return s;
}

/* Row iy of the plane x reduced over the window's columns: h[j] the first
 * maximum of columns 2j - P .. 2j - P + 2, k[j] its kx. */
V4 static inline void row_max(const s2_shape *s, const float *x, int64_t iy, __m512 *h, __m512i *k)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const int64_t at = iy * s->W - s->P; /* the row's column -P */
    const float *r = x + at;
    __m512 a0, a1, b0, b1;
    if (at >= 0 && at + 34 <= s->HW) {
        a0 = plain_load(r);
        a1 = plain_load(r + 16);
        b0 = plain_load(r + 2);
        b1 = plain_load(r + 18);
        a0 = _mm512_mask_mov_ps(ninf, s->a0, a0);
        a1 = _mm512_mask_mov_ps(ninf, s->a1, a1);
        b0 = _mm512_mask_mov_ps(ninf, s->b0, b0);
        b1 = _mm512_mask_mov_ps(ninf, s->b1, b1);
    } else { /* the plane's first or last rows: r may lie before the plane where the padding is */
        a0 = _mm512_mask_loadu_ps(ninf, s->a0, r);
        a1 = _mm512_mask_loadu_ps(ninf, s->a1, r + 16);
        b0 = _mm512_mask_loadu_ps(ninf, s->b0, r + 2);
        b1 = _mm512_mask_loadu_ps(ninf, s->b1, r + 18);
    }
    *h = _mm512_permutex2var_ps(a0, even, a1);
    *k = _mm512_setzero_si512();
    take(h, k, _mm512_permutex2var_ps(a0, odd, a1), _mm512_set1_epi32(1));
    take(h, k, _mm512_permutex2var_ps(b0, even, b1), _mm512_set1_epi32(2));
}

void cpu_pool_s2_forward(const eng_pool_desc *d, int64_t p0, int64_t p1, const float *x, float *y, uint8_t *arg) V4;
void cpu_pool_s2_forward(const eng_pool_desc *d, int64_t p0, int64_t p1, const float *x, float *y, uint8_t *arg)
{
    const s2_shape s = s2_shape_of(d);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *xp = x + pl * s.HW;
        float *yp = y + pl * s.OHW;
        uint8_t *ap = arg ? arg + pl * s.OHW : NULL;
        for (int64_t oy = 0; oy < s.OH; oy++) {
            __m512 m = ninf, h;
            __m512i t = _mm512_setzero_si512(), k;
            for (int64_t ky = 0; ky < 3; ky++) {
                const int64_t iy = 2 * oy - s.P + ky;
                if (iy < 0 || iy >= s.H) { /* a row of padding: -inf, never taken after the first */
                    h = ninf;
                    k = _mm512_setzero_si512();
                } else {
                    row_max(&s, xp, iy, &h, &k);
                }
                if (ky == 0) {
                    m = h;
                    t = k;
                } else {
                    take(&m, &t, h, _mm512_add_epi32(k, _mm512_set1_epi32((int)(3 * ky))));
                }
            }
            const int64_t o = oy * s.OW;
            if (o + 16 <= s.OHW) {
                _mm512_storeu_ps(yp + o, m);
                if (ap)
                    _mm_storeu_si128((__m128i *)(ap + o), _mm512_cvtepi32_epi8(t));
            } else {
                _mm512_mask_storeu_ps(yp + o, s.live, m);
                if (ap)
                    _mm_mask_storeu_epi8(ap + o, s.live, _mm512_cvtepi32_epi8(t));
            }
        }
    }
}

/* Where column lanes take output gradients from: lane l of half h (columns
 * 16 h + l) takes output j = (16 h + l + P - kx) / 2's tap kx where that
 * is a whole number in [0, OW) - the lanes in `lanes` - read through the
 * index vector `from`. */
typedef struct s2_spread {
    __m512i from[3][2];
    __mmask16 lanes[3][2];
} s2_spread;

static void s2_spread_of(const s2_shape *s, s2_spread *sp) V4;
static void s2_spread_of(const s2_shape *s, s2_spread *sp)
{
    for (int kx = 0; kx < 3; kx++)
        for (int h = 0; h < 2; h++) {
            int32_t from[16];
            unsigned lanes = 0;
            for (int l = 0; l < 16; l++) {
                const int64_t v = 16 * h + l + s->P - kx;
                from[l] = (int32_t)((v < 0 ? 0 : v / 2) & 15);
                if (v >= 0 && v % 2 == 0 && v / 2 < s->OW)
                    lanes |= 1u << l;
            }
            sp->from[kx][h] = _mm512_loadu_si512(from);
            sp->lanes[kx][h] = (__mmask16)lanes;
        }
}

/* The gradients of output row oy whose taps lie in input row ky of their
 * window, added to that row's columns 0-15 (*lo) and 16-31 (*hi). Column
 * 2j - P takes output j-1's kx = 2 before output j's kx = 0, as the
 * general kernel adds them. Each lane's tap is compared where it lands
 * (no mask leaves the vector unit: moving masks through general registers
 * ran 3x slower). */
V4 static inline void row_grad(const s2_shape *s, const s2_spread *sp, const float *y, const float *dy,
                               const uint8_t *arg, bool relu, int64_t oy, int64_t ky, __m512 *lo, __m512 *hi)
{
    const int64_t o = oy * s->OW;
    __m512 g;
    __m512i t;
    if (o + 16 <= s->OHW) {
        g = _mm512_loadu_ps(dy + o);
        t = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(arg + o)));
        if (relu) /* the windows whose maximum the relu zeroed take nothing: tap 255 matches no column */
            t = _mm512_mask_mov_epi32(_mm512_set1_epi32(255),
                                      _mm512_cmp_ps_mask(_mm512_loadu_ps(y + o), _mm512_setzero_ps(), _CMP_GT_OQ), t);
    } else {
        g = _mm512_maskz_loadu_ps(s->live, dy + o);
        t = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(s->live, arg + o));
        if (relu)
            t = _mm512_mask_mov_epi32(_mm512_set1_epi32(255),
                                      _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(s->live, y + o), _mm512_setzero_ps(),
                                                         _CMP_GT_OQ),
                                      t);
    }
    static const int kx_order[3] = {2, 0, 1};
    for (int i = 0; i < 3; i++) {
        const int kx = kx_order[i];
        const __m512i want = _mm512_set1_epi32((int)(3 * ky + kx));
        const __mmask16 ml = _mm512_mask_cmpeq_epi32_mask(sp->lanes[kx][0], _mm512_permutexvar_epi32(sp->from[kx][0], t),
                                                         want);
        const __mmask16 mh = _mm512_mask_cmpeq_epi32_mask(sp->lanes[kx][1], _mm512_permutexvar_epi32(sp->from[kx][1], t),
                                                         want);
        *lo = _mm512_mask_add_ps(*lo, ml, *lo, _mm512_permutexvar_ps(sp->from[kx][0], g));
        *hi = _mm512_mask_add_ps(*hi, mh, *hi, _mm512_permutexvar_ps(sp->from[kx][1], g));
    }
}

void cpu_pool_s2_backward(const eng_pool_desc *d, int64_t p0, int64_t p1, const float *y, const float *dy,
                          const uint8_t *arg, float *dx, bool relu) V4;
void cpu_pool_s2_backward(const eng_pool_desc *d, int64_t p0, int64_t p1, const float *y, const float *dy,
                          const uint8_t *arg, float *dx, bool relu)
{
    const s2_shape s = s2_shape_of(d);
    s2_spread sp;
    s2_spread_of(&s, &sp);
    const __mmask16 cols_lo = cols_in(0, s.W), cols_hi = cols_in(16, s.W);
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *yp = y + pl * s.OHW, *gp = dy + pl * s.OHW;
        const uint8_t *ap = arg + pl * s.OHW;
        float *xp = dx + pl * s.HW;
        for (int64_t iy = 0; iy < s.H; iy++) {
            /* the output rows whose windows hold row iy, in their order: (iy + P) / 2 - 1 at ky = 2 and
             * (iy + P) / 2 at ky = 0, or (iy + P - 1) / 2 at ky = 1 */
            __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
            const int64_t q = iy + s.P;
            if (q % 2 == 0) {
                if (q / 2 - 1 >= 0 && q / 2 - 1 < s.OH)
                    row_grad(&s, &sp, yp, gp, ap, relu, q / 2 - 1, 2, &lo, &hi);
                if (q / 2 < s.OH)
                    row_grad(&s, &sp, yp, gp, ap, relu, q / 2, 0, &lo, &hi);
            } else if ((q - 1) / 2 < s.OH) {
                row_grad(&s, &sp, yp, gp, ap, relu, (q - 1) / 2, 1, &lo, &hi);
            }
            const int64_t at = iy * s.W;
            if (at + 16 <= s.HW)
                _mm512_storeu_ps(xp + at, lo);
            else
                _mm512_mask_storeu_ps(xp + at, cols_lo, lo);
            if (s.W > 16) {
                if (at + 32 <= s.HW)
                    _mm512_storeu_ps(xp + at + 16, hi);
                else
                    _mm512_mask_storeu_ps(xp + at + 16, cols_hi, hi);
            }
        }
    }
}
#else
void cpu_pool_s2_forward(const eng_pool_desc *d, int64_t p0, int64_t p1, const float *x, float *y, uint8_t *arg)
{
    (void)d, (void)p0, (void)p1, (void)x, (void)y, (void)arg;
}
void cpu_pool_s2_backward(const eng_pool_desc *d, int64_t p0, int64_t p1, const float *y, const float *dy,
                          const uint8_t *arg, float *dx, bool relu)
{
    (void)d, (void)p0, (void)p1, (void)y, (void)dy, (void)arg, (void)dx, (void)relu;
}
#endif
