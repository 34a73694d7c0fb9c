/* Whole tensors between NCHW and the blocked layout ENG_BLOCK16
 * (backend.h), for our own convolutions, which compute in NCHW, where
 * oneDNN's (which compute blocked) would otherwise have taken the blocked
 * tensors of a chain conv -> batchnorm -> conv as they lie.
 *
 * A tile is 16 channels of up to 16 consecutive pixels. In NCHW they are
 * 16 rows of the plain tensor, hw apart; in the blocked layout, and in a
 * tile t, pixel p's 16 channels lie together at t + 16 p. On AVX-512 a tile
 * is transposed in registers (16 loads, 64 shuffles, 16 stores); elsewhere
 * element by element. Either way every value is moved, never computed:
 * the bits are the same at every level. */
#include "engine/cpu/cpu_internal.h"

#if CPU_MULTIVERSION
#include <immintrin.h>

/* r[i] row i of a 16 x 16 tile -> r[i] column i. */
CPU_TARGET_V4 static inline __attribute__((always_inline)) void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* r[4i + m], 128-bit lane k: rows 4i .. 4i+3 of column 4k + m */
    for (int j = 0; j < 4; j++) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
        r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
    }
}

CPU_TARGET_V4 static void tile_from_plain_v4(const float *plain, int64_t hw, int64_t np, float *t)
{
    const __mmask16 m = (__mmask16)((1u << np) - 1u);
    __m512 r[16];
    for (int l = 0; l < 16; l++)
        r[l] = _mm512_maskz_loadu_ps(m, plain + l * hw);
    transpose16(r);
    for (int64_t p = 0; p < np; p++)
        _mm512_storeu_ps(t + 16 * p, r[p]);
}

CPU_TARGET_V4 static void tile_to_plain_v4(const float *t, int64_t np, float *plain, int64_t hw)
{
    const __mmask16 m = (__mmask16)((1u << np) - 1u);
    __m512 r[16];
    for (int p = 0; p < 16; p++)
        r[p] = p < np ? _mm512_loadu_ps(t + 16 * p) : _mm512_setzero_ps();
    transpose16(r);
    for (int l = 0; l < 16; l++)
        _mm512_mask_storeu_ps(plain + l * hw, m, r[l]);
}
#endif

/* t[16 p + l] = plain[l hw + p] for p < np <= 16, l < 16: a tile of 16
 * channels (rows hw apart in NCHW) and np pixels, turned around */
static void tile16_from_plain(const float *plain, int64_t hw, int64_t np, float *t)
{
#if CPU_MULTIVERSION
    if (cpu_isa_level_current >= 4) {
        tile_from_plain_v4(plain, hw, np, t);
        return;
    }
#endif
    for (int64_t p = 0; p < np; p++)
        for (int l = 0; l < 16; l++)
            t[16 * p + l] = plain[l * hw + p];
}

/* the reverse: plain[l hw + p] = t[16 p + l] */
static void tile16_to_plain(const float *t, int64_t np, float *plain, int64_t hw)
{
#if CPU_MULTIVERSION
    if (cpu_isa_level_current >= 4) {
        tile_to_plain_v4(t, np, plain, hw);
        return;
    }
#endif
    for (int l = 0; l < 16; l++)
        for (int64_t p = 0; p < np; p++)
            plain[l * hw + p] = t[16 * p + l];
}

/* One (sample, block of 16 channels) pair at a time, split over the team. */
void cpu_block16_pack(eng_backend *b, int64_t n, int64_t c, int64_t hw, const float *plain, float *blocked)
{
    const int64_t blocks = n * (c / 16);
#pragma omp parallel for num_threads(cpu_team(b, n * c * hw)) schedule(static)
    for (int64_t k = 0; k < blocks; k++)
        for (int64_t p0 = 0; p0 < hw; p0 += 16)
            tile16_from_plain(plain + k * 16 * hw + p0, hw, hw - p0 < 16 ? hw - p0 : 16,
                                  blocked + (k * hw + p0) * 16);
}

void cpu_block16_unpack(eng_backend *b, int64_t n, int64_t c, int64_t hw, const float *blocked, float *plain)
{
    const int64_t blocks = n * (c / 16);
#pragma omp parallel for num_threads(cpu_team(b, n * c * hw)) schedule(static)
    for (int64_t k = 0; k < blocks; k++)
        for (int64_t p0 = 0; p0 < hw; p0 += 16)
            tile16_to_plain(blocked + (k * hw + p0) * 16, hw - p0 < 16 ? hw - p0 : 16, plain + k * 16 * hw + p0,
                                hw);
}
