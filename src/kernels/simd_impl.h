/*
 * simd_impl.h — the 256-bit kernel bodies shared by quant_avx2.c and
 * quant_avx512.c. Included (never compiled alone) after defining
 *     SIMD_SFX(name)   -> name##_avx2 / name##_avx512
 * The AVX-512 build compiles the same source with AVX-512 VL + VNNI enabled,
 * so the byte dot products below become vpdpbusd (one instruction instead of
 * vpmaddubsw + vpmaddwd + vpaddd); wider 512-bit kernels live in the
 * including file where they pay.
 *
 * Block math (see blocks.h): every kernel computes, per block, an exact
 * integer dot product of the quants and applies the float scales once per
 * block (or sub-block), accumulating in float. Only the summation order
 * differs from quant_ref.c.
 */
#include "kernels/blocks.h"
#include "kernels/dispatch.h"
#include <immintrin.h>
#include <string.h>

/* Dequantization must be bit-exact with the reference (separate multiply and
 * subtract): never let the compiler fuse them. Fused multiply-adds in the dot
 * products are written explicitly. */
#pragma GCC optimize("fp-contract=off")

#define SIMD_STATIC static inline __attribute__((always_inline))

/* ---- small helpers ---- */

SIMD_STATIC float s_fp16(fp16_t h) { return _cvtsh_ss(h); }

SIMD_STATIC float hsum_ps8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SIMD_STATIC int hsum_i32x8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* acc + per-int32-lane sums of 4 products u8 * s8. u must be <= 128 for the
 * AVX2 path (vpmaddubsw saturates int16 pair sums otherwise). */
SIMD_STATIC __m256i dot_us8(__m256i acc, __m256i u, __m256i s)
{
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    __m256i p = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/* Per-lane sums of 4 products s8 * s8 (x, y in [-127, 127] or x == -128 with |y| <= 127). */
SIMD_STATIC __m256i dot_ss8(__m256i x, __m256i y)
{
    return dot_us8(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* 16 packed nibbles -> 32 bytes: low nibbles in bytes 0..15, high in 16..31. */
SIMD_STATIC __m256i nibbles32(const uint8_t *p)
{
    __m128i q = _mm_loadu_si128((const __m128i *)p);
    __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

/* 32 bits -> 32 bytes, byte j = 0xff when bit j is set, else 0. */
SIMD_STATIC __m256i bits32_to_bytes(uint32_t bits)
{
    __m256i v = _mm256_set1_epi32((int)bits);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    v = _mm256_shuffle_epi8(v, shuf);
    const __m256i bit = _mm256_set1_epi64x((long long)0x7fbfdfeff7fbfdfeULL);
    v = _mm256_or_si256(v, bit);
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

/* Round-to-nearest-even float -> int8 of 32 floats already scaled, packed in order. */
SIMD_STATIC __m256i pack_i8x32(__m256i i0, __m256i i1, __m256i i2, __m256i i3)
{
    __m256i a = _mm256_packs_epi32(i0, i1);   /* 0..3 8..11 | 4..7 12..15 (in 128 lanes) */
    __m256i b = _mm256_packs_epi32(i2, i3);
    __m256i c = _mm256_packs_epi16(a, b);
    /* packs interleave the 128-bit lanes: fix the dword order */
    return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* ---- quantize activations ---- */

SIMD_STATIC float amax_ps32(const float *x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 16)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 24)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Quantize 32 floats with inverse scale id; returns the int8s, *sum = sum of them. */
SIMD_STATIC __m256i quant32(const float *x, float id, int *sum)
{
    __m256 vid = _mm256_set1_ps(id);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), vid));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), vid));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), vid));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), vid));
    if (sum)
        *sum = hsum_i32x8(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    return pack_i8x32(i0, i1, i2, i3);
}

static void SIMD_SFX(quantize_row_q8_0)(const float *x, void *vy, int64_t n)
{
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        float amax = amax_ps32(x);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = _cvtss_sh(d, 0);
        _mm256_storeu_si256((__m256i *)y[i].qs, quant32(x, id, NULL));
    }
}

static void SIMD_SFX(quantize_row_q8_1)(const float *x, void *vy, int64_t n)
{
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK; i++, x += QK) {
        float amax = amax_ps32(x);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum;
        _mm256_storeu_si256((__m256i *)y[i].qs, quant32(x, id, &sum));
        y[i].d = _cvtss_sh(d, 0);
        y[i].s = _cvtss_sh((float)sum * d, 0);
    }
}

/* Q8_K: scale from the value of largest magnitude (first one on ties, as the
 * reference), q = nearest(x * -127/max) clamped to 127, bsums per 16. */
static void SIMD_SFX(quantize_row_q8_K)(const float *x, void *vy, int64_t n)
{
    block_q8_K *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8)
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        s = _mm_max_ss(s, _mm_movehdup_ps(s));
        float amax = _mm_cvtss_f32(s);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = 0.0f;
        __m256 va = _mm256_set1_ps(amax);
        for (int j = 0; j < QK_K; j += 8) {
            int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), va, _CMP_EQ_OQ));
            if (mask) { max = x[j + __builtin_ctz((unsigned)mask)]; break; }
        }
        const float iscale = -127.0f / max;
        __m256 vis = _mm256_set1_ps(iscale);
        const __m256i q127 = _mm256_set1_epi32(127);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i i0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), vis)), q127);
            __m256i i1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), vis)), q127);
            __m256i i2 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 16), vis)), q127);
            __m256i i3 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 24), vis)), q127);
            y[i].bsums[j / 16] = (int16_t)hsum_i32x8(_mm256_add_epi32(i0, i1));
            y[i].bsums[j / 16 + 1] = (int16_t)hsum_i32x8(_mm256_add_epi32(i2, i3));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), pack_i8x32(i0, i1, i2, i3));
        }
        y[i].d = 1.0f / iscale;
    }
}

static void SIMD_SFX(quantize_row_f16)(const float *x, void *vy, int64_t n)
{
    fp16_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), 0));
    for (; i < n; i++)
        y[i] = _cvtss_sh(x[i], 0);
}

/* ---- legacy quants x Q8_0 / Q8_1 ---- */

static void SIMD_SFX(vec_dot_q4_0_q8_0)(int n, float *s, const void *vx, const void *vy)
{
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const __m256i eight = _mm256_set1_epi8(8);
    int i = 0;
    for (; i + 1 < nb; i += 2) {
        /* decode streams weights from DRAM: ask for them ~1 KB ahead (the
         * next row of the chunk follows this one in memory) */
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);
        __m256i q0 = _mm256_sub_epi8(nibbles32(x[i].qs), eight);
        __m256i q1 = _mm256_sub_epi8(nibbles32(x[i + 1].qs), eight);
        __m256i p0 = dot_ss8(q0, _mm256_loadu_si256((const __m256i *)y[i].qs));
        __m256i p1 = dot_ss8(q1, _mm256_loadu_si256((const __m256i *)y[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(s_fp16(x[i].d) * s_fp16(y[i].d)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(s_fp16(x[i + 1].d) * s_fp16(y[i + 1].d)), acc1);
    }
    for (; i < nb; i++) {
        __m256i q0 = _mm256_sub_epi8(nibbles32(x[i].qs), eight);
        __m256i p0 = dot_ss8(q0, _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(s_fp16(x[i].d) * s_fp16(y[i].d)), acc0);
    }
    *s = hsum_ps8(_mm256_add_ps(acc0, acc1));
}

static void SIMD_SFX(vec_dot_q4_1_q8_1)(int n, float *s, const void *vx, const void *vy)
{
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    const int nb = n / QK;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);   /* see vec_dot_q4_0_q8_0 */
        __m256i p = dot_us8(_mm256_setzero_si256(), nibbles32(x[i].qs), _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s_fp16(x[i].d) * s_fp16(y[i].d)), acc);
        summ += s_fp16(x[i].m) * s_fp16(y[i].s);
    }
    *s = hsum_ps8(acc) + summ;
}

static void SIMD_SFX(vec_dot_q5_0_q8_0)(int n, float *s, const void *vx, const void *vy)
{
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK;
    __m256 acc = _mm256_setzero_ps();
    const __m256i b16 = _mm256_set1_epi8(0x10);
    for (int i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);   /* see vec_dot_q4_0_q8_0 */
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        /* value = (nibble | bit << 4) - 16 = nibble - 16 * !bit */
        __m256i hb = _mm256_andnot_si256(bits32_to_bytes(qh), b16);
        __m256i q = _mm256_sub_epi8(nibbles32(x[i].qs), hb);
        __m256i p = dot_ss8(q, _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s_fp16(x[i].d) * s_fp16(y[i].d)), acc);
    }
    *s = hsum_ps8(acc);
}

static void SIMD_SFX(vec_dot_q5_1_q8_1)(int n, float *s, const void *vx, const void *vy)
{
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    const int nb = n / QK;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    const __m256i b16 = _mm256_set1_epi8(0x10);
    for (int i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);   /* see vec_dot_q4_0_q8_0 */
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        __m256i q = _mm256_or_si256(nibbles32(x[i].qs), _mm256_and_si256(bits32_to_bytes(qh), b16));
        __m256i p = dot_us8(_mm256_setzero_si256(), q, _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s_fp16(x[i].d) * s_fp16(y[i].d)), acc);
        summ += s_fp16(x[i].m) * s_fp16(y[i].s);
    }
    *s = hsum_ps8(acc) + summ;
}

static void SIMD_SFX(vec_dot_q8_0_q8_0)(int n, float *s, const void *vx, const void *vy)
{
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    const int nb = n / QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 1 < nb; i += 2) {
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);   /* see vec_dot_q4_0_q8_0 */
        __m256i p0 = dot_ss8(_mm256_loadu_si256((const __m256i *)x[i].qs), _mm256_loadu_si256((const __m256i *)y[i].qs));
        __m256i p1 = dot_ss8(_mm256_loadu_si256((const __m256i *)x[i + 1].qs), _mm256_loadu_si256((const __m256i *)y[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(s_fp16(x[i].d) * s_fp16(y[i].d)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(s_fp16(x[i + 1].d) * s_fp16(y[i + 1].d)), acc1);
    }
    for (; i < nb; i++) {
        __m256i p0 = dot_ss8(_mm256_loadu_si256((const __m256i *)x[i].qs), _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(s_fp16(x[i].d) * s_fp16(y[i].d)), acc0);
    }
    *s = hsum_ps8(_mm256_add_ps(acc0, acc1));
}

/* ---- K-quants x Q8_K ---- */

/* Unpack the 12-byte Q4_K/Q5_K scales: sc[0..7] 6-bit scales, mn[0..7] 6-bit mins. */
SIMD_STATIC void k4_scales(const uint8_t *scales, uint8_t sc[8], uint8_t mn[8])
{
    uint32_t w[3], o[4];
    memcpy(w, scales, 12);
    o[0] = w[0] & 0x3f3f3f3f;
    o[1] = (w[2] & 0x0f0f0f0f) | (((w[0] >> 6) & 0x03030303) << 4);
    o[2] = w[1] & 0x3f3f3f3f;
    o[3] = ((w[2] >> 4) & 0x0f0f0f0f) | (((w[1] >> 6) & 0x03030303) << 4);
    memcpy(sc, o, 8);
    memcpy(mn, o + 2, 8);
}

/* Unpack the 12-byte Q3_K scales into 16 signed 6-bit scales (minus 32). */
SIMD_STATIC void k3_scales(const uint8_t *scales, int8_t out[16])
{
    uint32_t a[3], o[4];
    memcpy(a, scales, 12);
    const uint32_t m2 = 0x0f0f0f0f, m1 = 0x03030303;
    o[0] = (a[0] & m2) | (((a[2] >> 0) & m1) << 4);
    o[1] = (a[1] & m2) | (((a[2] >> 2) & m1) << 4);
    o[2] = ((a[0] >> 4) & m2) | (((a[2] >> 4) & m1) << 4);
    o[3] = ((a[1] >> 4) & m2) | (((a[2] >> 6) & m1) << 4);
    memcpy(out, o, 16);
    for (int j = 0; j < 16; j++) out[j] = (int8_t)(out[j] - 32);
}

/* Two scales for the two 16-value halves of a 32-byte vector, as int16 lanes. */
SIMD_STATIC __m256i scale_pair16(int lo, int hi)
{
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}

/* sum over 16 groups of bsums[j] * m[j] where m is 16 int16 (already expanded) */
SIMD_STATIC __m256i bsums_dot(const int16_t *bsums, __m256i m16)
{
    return _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bsums), m16);
}

static void SIMD_SFX(vec_dot_q4_K_q8_K)(int n, float *s, const void *vx, const void *vy)
{
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0.0f;
    for (int i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);   /* see vec_dot_q4_0_q8_0 */
        uint8_t sc[8], mn[8];
        k4_scales(x[i].scales, sc, mn);
        const float d = y[i].d * s_fp16(x[i].d);
        const float dmin = y[i].d * s_fp16(x[i].dmin);
        /* mins: bsums come per 16 values, the mins per 32 */
        __m128i mn8 = _mm_loadl_epi64((const __m128i *)mn);
        __m256i mn16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn8, mn8));
        accm += dmin * (float)hsum_i32x8(bsums_dot(y[i].bsums, mn16));
        const uint8_t *q = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++, q += 32, q8 += 64) {
            __m256i b = _mm256_loadu_si256((const __m256i *)q);
            __m256i lo = _mm256_and_si256(b, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
            __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps8(acc) - accm;
}

static void SIMD_SFX(vec_dot_q5_K_q8_K)(int n, float *s, const void *vx, const void *vy)
{
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0.0f;
    for (int i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);   /* see vec_dot_q4_0_q8_0 */
        uint8_t sc[8], mn[8];
        k4_scales(x[i].scales, sc, mn);
        const float d = y[i].d * s_fp16(x[i].d);
        const float dmin = y[i].d * s_fp16(x[i].dmin);
        __m128i mn8 = _mm_loadl_epi64((const __m128i *)mn);
        __m256i mn16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn8, mn8));
        accm += dmin * (float)hsum_i32x8(bsums_dot(y[i].bsums, mn16));
        const uint8_t *q = x[i].qs;
        const int8_t *q8 = y[i].qs;
        const __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++, q += 32, q8 += 64) {
            __m256i b = _mm256_loadu_si256((const __m256i *)q);
            /* bit 2c of qh[l] is the 5th bit of the low sub-block, bit 2c+1 of the high */
            __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
            __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
            __m256i lo = _mm256_or_si256(_mm256_and_si256(b, m4), hlo);
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), hhi);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
            __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps8(acc) - accm;
}

static void SIMD_SFX(vec_dot_q6_K_q8_K)(int n, float *s, const void *vx, const void *vy)
{
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m3 = _mm256_set1_epi8(0x03);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);   /* see vec_dot_q4_0_q8_0 */
        const float d = y[i].d * s_fp16(x[i].d);
        const int8_t *sc = x[i].scales;
        /* the -32 offset: 32 * sum_j sc[j] * bsums[j] */
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        __m256i off = bsums_dot(y[i].bsums, sc16);
        __m256i sumi = _mm256_setzero_si256();
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, q8 += 128, sc += 8) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            __m256i v0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
            __m256i v1 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4));
            __m256i v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4));
            __m256i v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4));
            __m256i p0 = _mm256_maddubs_epi16(v0, _mm256_loadu_si256((const __m256i *)q8));
            __m256i p1 = _mm256_maddubs_epi16(v1, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
            __m256i p2 = _mm256_maddubs_epi16(v2, _mm256_loadu_si256((const __m256i *)(q8 + 64)));
            __m256i p3 = _mm256_maddubs_epi16(v3, _mm256_loadu_si256((const __m256i *)(q8 + 96)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, scale_pair16(sc[0], sc[1])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, scale_pair16(sc[2], sc[3])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p2, scale_pair16(sc[4], sc[5])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p3, scale_pair16(sc[6], sc[7])));
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps8(acc);
}

static void SIMD_SFX(vec_dot_q2_K_q8_K)(int n, float *s, const void *vx, const void *vy)
{
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(0x03);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0.0f;
    for (int i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);   /* see vec_dot_q4_0_q8_0 */
        const float d = y[i].d * s_fp16(x[i].d);
        const float dmin = y[i].d * s_fp16(x[i].dmin);
        __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0f)));
        accm += dmin * (float)hsum_i32x8(bsums_dot(y[i].bsums, mn16));
        const uint8_t *sc = x[i].scales;
        const uint8_t *q = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++, q += 32, sc += 8) {
            __m256i b = _mm256_loadu_si256((const __m256i *)q);
            for (int sh = 0; sh < 4; sh++, q8 += 32) {
                __m256i v = _mm256_and_si256(_mm256_srli_epi16(b, 2 * sh), m3);
                __m256i p = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)q8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair16(sc[2 * sh] & 0xf, sc[2 * sh + 1] & 0xf)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps8(acc) - accm;
}

static void SIMD_SFX(vec_dot_q3_K_q8_K)(int n, float *s, const void *vx, const void *vy)
{
    const block_q3_K *x = vx;
    const block_q8_K *y = vy;
    const int nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(0x03);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);   /* see vec_dot_q4_0_q8_0 */
        const float d = y[i].d * s_fp16(x[i].d);
        int8_t sc[16];
        k3_scales(x[i].scales, sc);
        /* value = (q2 | hbit << 2) - 4: the -4 goes through bsums */
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        __m256i off = bsums_dot(y[i].bsums, sc16);
        const uint8_t *q = x[i].qs;
        const int8_t *q8 = y[i].qs;
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++, q += 32) {
            __m256i b = _mm256_loadu_si256((const __m256i *)q);
            for (int sh = 0; sh < 4; sh++, q8 += 32) {
                const int bit = 4 * h + sh;
                __m256i hb = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, bit), one), 2);
                __m256i v = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 2 * sh), m3), hb);
                __m256i p = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)q8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair16(sc[8 * h + 2 * sh], sc[8 * h + 2 * sh + 1])));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 2));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps8(acc);
}

/* ---- float types ---- */

/* Float weights: like the reference, products are summed in double (the
 * products of two floats are exact in double), so only the order differs. */
SIMD_STATIC __m256d fma_ps_pd(__m256 x, __m256 y, __m256d acc, __m256d *acc2)
{
    *acc2 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1)), *acc2);
    return _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_castps256_ps128(y)), acc);
}

SIMD_STATIC double hsum_pd4(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

static void SIMD_SFX(vec_dot_f32_f32)(int n, float *s, const void *vx, const void *vy)
{
    const float *x = vx, *y = vy;
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = fma_ps_pd(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0, &a1);
        a2 = fma_ps_pd(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a2, &a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = fma_ps_pd(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0, &a1);
    double sum = hsum_pd4(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (; i < n; i++) sum += (double)x[i] * y[i];
    *s = (float)sum;
}

SIMD_STATIC __m256 ld_f16x8(const fp16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static void SIMD_SFX(vec_dot_f16_f16)(int n, float *s, const void *vx, const void *vy)
{
    const fp16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(ld_f16x8(x + i), ld_f16x8(y + i), a0);
        a1 = _mm256_fmadd_ps(ld_f16x8(x + i + 8), ld_f16x8(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(ld_f16x8(x + i + 16), ld_f16x8(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(ld_f16x8(x + i + 24), ld_f16x8(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(ld_f16x8(x + i), ld_f16x8(y + i), a0);
    float sum = hsum_ps8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += _cvtsh_ss(x[i]) * _cvtsh_ss(y[i]);
    *s = sum;
}

static void SIMD_SFX(vec_dot_f16_f32)(int n, float *s, const void *vx, const void *vy)
{
    const fp16_t *x = vx;
    const float *y = vy;
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = fma_ps_pd(ld_f16x8(x + i), _mm256_loadu_ps(y + i), a0, &a1);
        a2 = fma_ps_pd(ld_f16x8(x + i + 8), _mm256_loadu_ps(y + i + 8), a2, &a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = fma_ps_pd(ld_f16x8(x + i), _mm256_loadu_ps(y + i), a0, &a1);
    double sum = hsum_pd4(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (; i < n; i++) sum += (double)_cvtsh_ss(x[i]) * y[i];
    *s = (float)sum;
}

/* bf16 -> f32 is a 16-bit shift */
SIMD_STATIC __m256 ld_bf16x8(const uint16_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
SIMD_STATIC float s_bf16(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }

static void SIMD_SFX(vec_dot_bf16_bf16)(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(ld_bf16x8(x + i), ld_bf16x8(y + i), a0);
        a1 = _mm256_fmadd_ps(ld_bf16x8(x + i + 8), ld_bf16x8(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(ld_bf16x8(x + i), ld_bf16x8(y + i), a0);
    float sum = hsum_ps8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += s_bf16(x[i]) * s_bf16(y[i]);
    *s = sum;
}

static void SIMD_SFX(vec_dot_bf16_f32)(int n, float *s, const void *vx, const void *vy)
{
    const uint16_t *x = vx;
    const float *y = vy;
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = fma_ps_pd(ld_bf16x8(x + i), _mm256_loadu_ps(y + i), a0, &a1);
        a2 = fma_ps_pd(ld_bf16x8(x + i + 8), _mm256_loadu_ps(y + i + 8), a2, &a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = fma_ps_pd(ld_bf16x8(x + i), _mm256_loadu_ps(y + i), a0, &a1);
    double sum = hsum_pd4(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (; i < n; i++) sum += (double)s_bf16(x[i]) * y[i];
    *s = (float)sum;
}

/* fp32 -> bf16 round to nearest even, NaN kept quiet (as the reference) */
static void SIMD_SFX(quantize_row_bf16)(const float *x, void *vy, int64_t n)
{
    uint16_t *y = vy;
    int64_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    for (; i + 8 <= n; i += 8) {
        __m256 f = _mm256_loadu_ps(x + i);
        __m256i u = _mm256_castps_si256(f);
        __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
        r = _mm256_srli_epi32(r, 16);
        __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
        __m256i qn = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
        r = _mm256_blendv_epi8(r, qn, nan);
        __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storeu_si128((__m128i *)(y + i), p);
    }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if ((u & 0x7fffffff) > 0x7f800000) y[i] = (uint16_t)((u >> 16) | 64);
        else y[i] = (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }
}

/* ---- dequantize (embedding lookups) ---- */

static void SIMD_SFX(dequantize_row_q4_0)(const void *vx, float *y, int64_t n)
{
    const block_q4_0 *x = vx;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        __m256 d = _mm256_set1_ps(s_fp16(x[i].d));
        __m256i q = _mm256_sub_epi8(nibbles32(x[i].qs), _mm256_set1_epi8(8));
        __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
        _mm256_storeu_ps(y, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
        _mm256_storeu_ps(y + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
        _mm256_storeu_ps(y + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
        _mm256_storeu_ps(y + 24, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
    }
}

static void SIMD_SFX(dequantize_row_q8_0)(const void *vx, float *y, int64_t n)
{
    const block_q8_0 *x = vx;
    for (int64_t i = 0; i < n / QK; i++, y += QK) {
        __m256 d = _mm256_set1_ps(s_fp16(x[i].d));
        for (int j = 0; j < QK; j += 8)
            _mm256_storeu_ps(y + j, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[i].qs + j))))));
    }
}

/* 8 bytes (unsigned) -> 8 floats */
SIMD_STATIC __m256 u8x8_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }

static void SIMD_SFX(dequantize_row_q4_K)(const void *vx, float *y, int64_t n)
{
    const block_q4_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        k4_scales(x[i].scales, sc, mn);
        const float d = s_fp16(x[i].d), dmin = s_fp16(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int c = 0; c < 4; c++, q += 32, y += 64) {
            __m256 d1 = _mm256_set1_ps(d * sc[2 * c]), m1 = _mm256_set1_ps(dmin * mn[2 * c]);
            __m256 d2 = _mm256_set1_ps(d * sc[2 * c + 1]), m2 = _mm256_set1_ps(dmin * mn[2 * c + 1]);
            for (int l = 0; l < 32; l += 8) {
                __m128i b = _mm_loadl_epi64((const __m128i *)(q + l));
                __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0f));
                __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0f));
                _mm256_storeu_ps(y + l, _mm256_sub_ps(_mm256_mul_ps(d1, u8x8_ps(lo)), m1));
                _mm256_storeu_ps(y + 32 + l, _mm256_sub_ps(_mm256_mul_ps(d2, u8x8_ps(hi)), m2));
            }
        }
    }
}

static void SIMD_SFX(dequantize_row_q6_K)(const void *vx, float *y, int64_t n)
{
    const block_q6_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = s_fp16(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l += 8) {
                __m128i a = _mm_loadl_epi64((const __m128i *)(ql + l));
                __m128i b = _mm_loadl_epi64((const __m128i *)(ql + 32 + l));
                __m128i hb = _mm_loadl_epi64((const __m128i *)(qh + l));
                const __m128i m4 = _mm_set1_epi8(0x0f), m3 = _mm_set1_epi8(0x03);
                __m128i v0 = _mm_or_si128(_mm_and_si128(a, m4), _mm_slli_epi16(_mm_and_si128(hb, m3), 4));
                __m128i v1 = _mm_or_si128(_mm_and_si128(b, m4), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 2), m3), 4));
                __m128i v2 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), m4), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 4), m3), 4));
                __m128i v3 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(b, 4), m4), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 6), m3), 4));
                const int is = l / 16;
                const __m256 o32 = _mm256_set1_ps(32.0f);
                _mm256_storeu_ps(y + l, _mm256_mul_ps(_mm256_set1_ps(d * sc[is + 0]), _mm256_sub_ps(u8x8_ps(v0), o32)));
                _mm256_storeu_ps(y + 32 + l, _mm256_mul_ps(_mm256_set1_ps(d * sc[is + 2]), _mm256_sub_ps(u8x8_ps(v1), o32)));
                _mm256_storeu_ps(y + 64 + l, _mm256_mul_ps(_mm256_set1_ps(d * sc[is + 4]), _mm256_sub_ps(u8x8_ps(v2), o32)));
                _mm256_storeu_ps(y + 96 + l, _mm256_mul_ps(_mm256_set1_ps(d * sc[is + 6]), _mm256_sub_ps(u8x8_ps(v3), o32)));
            }
        }
    }
}

static void SIMD_SFX(dequantize_row_f16)(const void *vx, float *y, int64_t n)
{
    const fp16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, ld_f16x8(x + i));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

static void SIMD_SFX(dequantize_row_bf16)(const void *vx, float *y, int64_t n)
{
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, ld_bf16x8(x + i));
    for (; i < n; i++) y[i] = s_bf16(x[i]);
}
