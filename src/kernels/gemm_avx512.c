/*
 * gemm_avx512.c — tile kernels for prompt processing (compute bound), AVX-512
 * VNNI. Reached only through kernels_register_avx512() (quant_avx512.c).
 *
 * Idea. A dot product of quantized blocks is an exact integer sum per block
 * (vpdpbusd: 64 u8 x s8 products into 16 int32 lanes) followed by a float
 * scale per block. Done naively on the GGUF layout, every vpdpbusd is
 * followed by a convert and an FMA for its two blocks, so the int8 unit
 * idles two thirds of the time. Here each call first repacks its nr weight
 * rows and nc activation rows into a common "panel" format where int32 lane
 * l of step k holds bytes 4k..4k+3 of group l (a group = the values sharing
 * one scale: 32, or 16 for Q2_K/Q3_K/Q6_K). Then 16 groups take G/4
 * vpdpbusd per (row, column) pair and a single convert + FMA: the scale work
 * drops from 2 ops per vpdpbusd to about 0.3. Packing costs O(nr + nc) per
 * group against O(nr * nc) products, so tiles are large (GEMM_NR x GEMM_NC).
 *
 * Panel format (per row, ngc = ceil(groups / 16) chunks, zero padded):
 *   bytes  ngc * S * 64, S = G / 4 steps per chunk
 *   weights: unsigned u with value = a * (u - o) + b, o a per-type constant
 *            (Q4_0: 8, Q8_0: 128 via x ^ 0x80, Q5_0: 16, Q6_K: 32, Q3_K: 4,
 *            min types 0 and b = -dmin * m), floats a[16 ngc], b[16 ngc];
 *   activations: int8 as quantized; dy[16 ngc] (the block scale),
 *            corr[16 ngc] = -o * sum(q) (int32, starts the accumulator),
 *            ysf[16 ngc] = dy * sum(q) (for the b term).
 * The integer sums are exact, so results equal vec_dot up to float
 * summation order.
 */
#include "kernels/blocks.h"
#include "kernels/dispatch.h"
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define GEMM_NR 128   /* weight rows per call */
#define GEMM_NC 128   /* activation rows per call */
#define MR 4         /* micro tile: weight rows */
#define NR 3         /* micro tile: activation rows */

#pragma GCC optimize("fp-contract=off")


/* ---- weight unpackers: one row -> natural-order u8 groups + a, b ---- */

typedef struct wfmt {
    int G;          /* values per group: 32 or 16 */
    int o;          /* value = a * (u - o) + b */
    bool has_min;   /* b != 0 */
    /* unpack `n` values of one row into u[n], a[n / G], b[n / G] (b only if has_min) */
    void (*unpack)(const void *row, int n, uint8_t *u, float *a, float *b);
    /* activation type: Q8_0 / Q8_1 (groups of 32 = blocks) or Q8_K */
    uint32_t act;
    qt_vec_dot_fn dot;   /* fallback when scratch cannot be allocated (set at registration) */
} wfmt;

static inline float h2f(fp16_t h) { return _cvtsh_ss(h); }

static inline __m256i nib32(const uint8_t *p)
{
    __m128i q = _mm_loadu_si128((const __m128i *)p);
    __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

static inline __m256i bits_to_bytes(uint32_t bits)
{
    __m256i v = _mm256_set1_epi32((int)bits);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    v = _mm256_shuffle_epi8(v, shuf);
    v = _mm256_or_si256(v, _mm256_set1_epi64x((long long)0x7fbfdfeff7fbfdfeULL));
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

static void unpack_q4_0(const void *row, int n, uint8_t *u, float *a, float *b)
{
    const block_q4_0 *x = row;
    for (int i = 0; i < n / QK; i++) {
        _mm256_storeu_si256((__m256i *)(u + 32 * i), nib32(x[i].qs));
        a[i] = h2f(x[i].d);
    }
}

static void unpack_q4_1(const void *row, int n, uint8_t *u, float *a, float *b)
{
    const block_q4_1 *x = row;
    for (int i = 0; i < n / QK; i++) {
        _mm256_storeu_si256((__m256i *)(u + 32 * i), nib32(x[i].qs));
        a[i] = h2f(x[i].d);
        b[i] = h2f(x[i].m);
    }
}

static void unpack_q5_0(const void *row, int n, uint8_t *u, float *a, float *b)
{
    const block_q5_0 *x = row;
    for (int i = 0; i < n / QK; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        __m256i v = _mm256_or_si256(nib32(x[i].qs), _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)));
        _mm256_storeu_si256((__m256i *)(u + 32 * i), v);
        a[i] = h2f(x[i].d);
    }
}

static void unpack_q5_1(const void *row, int n, uint8_t *u, float *a, float *b)
{
    const block_q5_1 *x = row;
    for (int i = 0; i < n / QK; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        __m256i v = _mm256_or_si256(nib32(x[i].qs), _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)));
        _mm256_storeu_si256((__m256i *)(u + 32 * i), v);
        a[i] = h2f(x[i].d);
        b[i] = h2f(x[i].m);
    }
}

static void unpack_q8_0(const void *row, int n, uint8_t *u, float *a, float *b)
{
    const block_q8_0 *x = row;
    for (int i = 0; i < n / QK; i++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)x[i].qs);
        _mm256_storeu_si256((__m256i *)(u + 32 * i), _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)));
        a[i] = h2f(x[i].d);
    }
}

static inline void k4_unpack_scales(const uint8_t *scales, uint8_t sc[8], uint8_t mn[8])
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

static void unpack_q4_K(const void *row, int n, uint8_t *u, float *a, float *b)
{
    const block_q4_K *x = row;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int i = 0; i < n / QK_K; i++, u += QK_K, a += 8, b += 8) {
        uint8_t sc[8], mn[8];
        k4_unpack_scales(x[i].scales, sc, mn);
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        for (int j = 0; j < 8; j++) {
            a[j] = d * (float)sc[j];
            b[j] = -dmin * (float)mn[j];
        }
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            _mm256_storeu_si256((__m256i *)(u + 64 * c), _mm256_and_si256(q, m4));
            _mm256_storeu_si256((__m256i *)(u + 64 * c + 32), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
        }
    }
}

static void unpack_q5_K(const void *row, int n, uint8_t *u, float *a, float *b)
{
    const block_q5_K *x = row;
    const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    for (int i = 0; i < n / QK_K; i++, u += QK_K, a += 8, b += 8) {
        uint8_t sc[8], mn[8];
        k4_unpack_scales(x[i].scales, sc, mn);
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        for (int j = 0; j < 8; j++) {
            a[j] = d * (float)sc[j];
            b[j] = -dmin * (float)mn[j];
        }
        const __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
            __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
            _mm256_storeu_si256((__m256i *)(u + 64 * c), _mm256_or_si256(_mm256_and_si256(q, m4), hlo));
            _mm256_storeu_si256((__m256i *)(u + 64 * c + 32),
                                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hhi));
        }
    }
}

static void unpack_q6_K(const void *row, int n, uint8_t *u, float *a, float *b)
{
    const block_q6_K *x = row;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(0x03);
    for (int i = 0; i < n / QK_K; i++, u += QK_K, a += 16) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < 16; j++)
            a[j] = d * (float)x[i].scales[j];
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        for (int h = 0; h < 2; h++, ql += 64, qh += 32) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            uint8_t *o = u + 128 * h;
            _mm256_storeu_si256((__m256i *)o, _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4)));
            _mm256_storeu_si256((__m256i *)(o + 32), _mm256_or_si256(_mm256_and_si256(l1, m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4)));
            _mm256_storeu_si256((__m256i *)(o + 64), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4)));
            _mm256_storeu_si256((__m256i *)(o + 96), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4)));
        }
    }
}

static void unpack_q3_K(const void *row, int n, uint8_t *u, float *a, float *b)
{
    const block_q3_K *x = row;
    const __m256i m3 = _mm256_set1_epi8(0x03), one = _mm256_set1_epi8(1);
    for (int i = 0; i < n / QK_K; i++, u += QK_K, a += 16) {
        uint32_t s[3], o[4];
        memcpy(s, x[i].scales, 12);
        const uint32_t m2 = 0x0f0f0f0f, m1 = 0x03030303;
        o[0] = (s[0] & m2) | (((s[2] >> 0) & m1) << 4);
        o[1] = (s[1] & m2) | (((s[2] >> 2) & m1) << 4);
        o[2] = ((s[0] >> 4) & m2) | (((s[2] >> 4) & m1) << 4);
        o[3] = ((s[1] >> 4) & m2) | (((s[2] >> 6) & m1) << 4);
        int8_t sc[16];
        memcpy(sc, o, 16);
        const float d = h2f(x[i].d);
        for (int j = 0; j < 16; j++)
            a[j] = d * (float)(sc[j] - 32);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int sh = 0; sh < 4; sh++) {
                __m256i hb = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + sh), one), 2);
                __m256i v = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * sh), m3), hb);
                _mm256_storeu_si256((__m256i *)(u + 128 * h + 32 * sh), v);
            }
        }
    }
}

static void unpack_q2_K(const void *row, int n, uint8_t *u, float *a, float *b)
{
    const block_q2_K *x = row;
    const __m256i m3 = _mm256_set1_epi8(0x03);
    for (int i = 0; i < n / QK_K; i++, u += QK_K, a += 16, b += 16) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        for (int j = 0; j < 16; j++) {
            a[j] = d * (float)(x[i].scales[j] & 0xf);
            b[j] = -dmin * (float)(x[i].scales[j] >> 4);
        }
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int sh = 0; sh < 4; sh++)
                _mm256_storeu_si256((__m256i *)(u + 128 * h + 32 * sh), _mm256_and_si256(_mm256_srli_epi16(q, 2 * sh), m3));
        }
    }
}

static wfmt fmt_q4_0 = {32, 8, false, unpack_q4_0, QT_Q8_0, NULL};
static wfmt fmt_q4_1 = {32, 0, true, unpack_q4_1, QT_Q8_1, NULL};
static wfmt fmt_q5_0 = {32, 16, false, unpack_q5_0, QT_Q8_0, NULL};
static wfmt fmt_q5_1 = {32, 0, true, unpack_q5_1, QT_Q8_1, NULL};
static wfmt fmt_q8_0 = {32, 128, false, unpack_q8_0, QT_Q8_0, NULL};
static wfmt fmt_q2_K = {16, 0, true, unpack_q2_K, QT_Q8_K, NULL};
static wfmt fmt_q3_K = {16, 4, false, unpack_q3_K, QT_Q8_K, NULL};
static wfmt fmt_q4_K = {32, 0, true, unpack_q4_K, QT_Q8_K, NULL};
static wfmt fmt_q5_K = {32, 0, true, unpack_q5_K, QT_Q8_K, NULL};
static wfmt fmt_q6_K = {16, 32, false, unpack_q6_K, QT_Q8_K, NULL};

/* ---- packing ---- */

/* Natural-order groups u[ng][G] -> panel: chunk c, step k, lane l = dword k of group 16c + l. */
static void transpose_groups(const uint8_t *u, int ng, int G, int ngc, uint8_t *panel)
{
    const int S = G / 4;
    const uint32_t *src = (const uint32_t *)u;
    uint32_t *dst = (uint32_t *)panel;
    for (int c = 0; c < ngc; c++, dst += S * 16) {
        int lmax = ng - 16 * c < 16 ? ng - 16 * c : 16;
        if (lmax == 16 && S == 8) {
            /* 16 groups x 8 dwords: a dword transpose through registers */
            const __m512i idx = _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
            for (int k = 0; k < 8; k++)
                _mm512_store_si512((__m512i *)(dst + 16 * k), _mm512_i32gather_epi32(idx, (const void *)(src + 16 * c * 8 + k), 4));
            continue;
        }
        for (int k = 0; k < S; k++)
            for (int l = 0; l < 16; l++)
                dst[16 * k + l] = l < lmax ? src[(16 * c + l) * S + k] : 0;
    }
}

typedef struct panels {
    int n, G, S, ng, ngc;
    size_t wb_stride, wf_stride, ab_stride, af_stride;   /* per row, bytes / floats */
    uint8_t *wb; float *wa, *wbm;                         /* weights */
    uint8_t *ab; float *ady, *aysf; int32_t *acorr;       /* activations */
} panels;

/* Activation row (vec_dot_type) -> panel bytes, dy, corr, ysf for groups of G. */
static void pack_act(const wfmt *f, const void *row, const panels *p, uint8_t *bytes, float *dy,
                     int32_t *corr, float *ysf, uint8_t *tmp)
{
    const int n = p->n, G = f->G;
    int ng = p->ng;
    /* natural-order bytes and per-group scale / sum */
    if (f->act == QT_Q8_K) {
        const block_q8_K *y = row;
        for (int i = 0; i < n / QK_K; i++) {
            memcpy(tmp + QK_K * i, y[i].qs, QK_K);
            if (G == 16) {
                for (int j = 0; j < 16; j++) {
                    dy[16 * i + j] = y[i].d;
                    corr[16 * i + j] = y[i].bsums[j];
                }
            } else {
                for (int j = 0; j < 8; j++) {
                    dy[8 * i + j] = y[i].d;
                    corr[8 * i + j] = y[i].bsums[2 * j] + y[i].bsums[2 * j + 1];
                }
            }
        }
    } else {
        const size_t bsz = f->act == QT_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q8_1);
        const size_t qoff = f->act == QT_Q8_0 ? offsetof(block_q8_0, qs) : offsetof(block_q8_1, qs);
        const uint8_t *y = row;
        for (int i = 0; i < n / QK; i++, y += bsz) {
            fp16_t d;
            memcpy(&d, y, 2);
            __m256i q = _mm256_loadu_si256((const __m256i *)(y + qoff));
            _mm256_storeu_si256((__m256i *)(tmp + 32 * i), q);
            /* sum of 32 int8: (q ^ 0x80) summed as unsigned with vpsadbw, minus 32 * 128 */
            __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
            __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
            int sum = (int)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
            dy[i] = h2f(d);
            corr[i] = sum;
            if (f->act == QT_Q8_1) {   /* the min term uses the stored s = d * sum, as vec_dot does */
                fp16_t s16;
                memcpy(&s16, y + 2, 2);
                ysf[i] = h2f(s16);
            } else {
                ysf[i] = dy[i] * (float)sum;
            }
        }
    }
    if (f->act == QT_Q8_K)
        for (int g = 0; g < ng; g++)
            ysf[g] = dy[g] * (float)corr[g];
    for (int g = 0; g < ng; g++)
        corr[g] = -f->o * corr[g];
    for (int g = ng; g < 16 * p->ngc; g++) {
        dy[g] = 0.0f;
        ysf[g] = 0.0f;
        corr[g] = 0;
    }
    transpose_groups(tmp, ng, G, p->ngc, bytes);
}

static void pack_weights(const wfmt *f, const void *row, const panels *p, uint8_t *bytes, float *a, float *b, uint8_t *tmp)
{
    f->unpack(row, p->n, tmp, a, b);
    for (int g = p->ng; g < 16 * p->ngc; g++) {
        a[g] = 0.0f;
        if (f->has_min) b[g] = 0.0f;
    }
    transpose_groups(tmp, p->ng, f->G, p->ngc, bytes);
}

/* ---- the micro kernel: MR weight rows x NR activation rows over all chunks ---- */

static inline __attribute__((always_inline)) void micro(const panels *p, int S, bool has_min, int r0, int c0, float out[MR][NR])
{
    __m512 acc[MR][NR];
    #pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 8
        for (int c = 0; c < NR; c++)
            acc[r][c] = _mm512_setzero_ps();
    const uint8_t *wb[MR];
    const float *wa[MR], *wm[MR];
    const uint8_t *ab[NR];
    const float *ady[NR], *aysf[NR];
    const int32_t *acorr[NR];
    #pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        wb[r] = p->wb + (size_t)(r0 + r) * p->wb_stride;
        wa[r] = p->wa + (size_t)(r0 + r) * p->wf_stride;
        wm[r] = p->wbm + (size_t)(r0 + r) * p->wf_stride;
    }
    #pragma GCC unroll 8
    for (int c = 0; c < NR; c++) {
        ab[c] = p->ab + (size_t)(c0 + c) * p->ab_stride;
        ady[c] = p->ady + (size_t)(c0 + c) * p->af_stride;
        aysf[c] = p->aysf + (size_t)(c0 + c) * p->af_stride;
        acorr[c] = p->acorr + (size_t)(c0 + c) * p->af_stride;
    }
    for (int ch = 0; ch < p->ngc; ch++) {
        __m512i ia[MR][NR];
        #pragma GCC unroll 8
        for (int c = 0; c < NR; c++) {
            __m512i c0v = _mm512_load_si512((const void *)(acorr[c] + 16 * ch));
            #pragma GCC unroll 8
            for (int r = 0; r < MR; r++)
                ia[r][c] = c0v;
        }
        const size_t off = (size_t)ch * S * 64;
        #pragma GCC unroll 8
        for (int k = 0; k < S; k++) {
            __m512i w[MR];
            #pragma GCC unroll 8
            for (int r = 0; r < MR; r++)
                w[r] = _mm512_load_si512((const void *)(wb[r] + off + 64 * k));
            #pragma GCC unroll 8
            for (int c = 0; c < NR; c++) {
                __m512i y = _mm512_load_si512((const void *)(ab[c] + off + 64 * k));
                #pragma GCC unroll 8
                for (int r = 0; r < MR; r++)
                    ia[r][c] = _mm512_dpbusd_epi32(ia[r][c], w[r], y);
            }
        }
        #pragma GCC unroll 8
        for (int c = 0; c < NR; c++) {
            __m512 dy = _mm512_load_ps(ady[c] + 16 * ch);
            #pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                __m512 sc = _mm512_mul_ps(_mm512_load_ps(wa[r] + 16 * ch), dy);
                acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][c]), sc, acc[r][c]);
            }
            if (has_min) {
                __m512 ys = _mm512_load_ps(aysf[c] + 16 * ch);
                #pragma GCC unroll 8
                for (int r = 0; r < MR; r++)
                    acc[r][c] = _mm512_fmadd_ps(_mm512_load_ps(wm[r] + 16 * ch), ys, acc[r][c]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 8
        for (int c = 0; c < NR; c++)
            out[r][c] = _mm512_reduce_add_ps(acc[r][c]);
}

static void micro_s8(const panels *p, int r0, int c0, float out[MR][NR]) { micro(p, 8, false, r0, c0, out); }
static void micro_s8m(const panels *p, int r0, int c0, float out[MR][NR]) { micro(p, 8, true, r0, c0, out); }
static void micro_s4(const panels *p, int r0, int c0, float out[MR][NR]) { micro(p, 4, false, r0, c0, out); }
static void micro_s4m(const panels *p, int r0, int c0, float out[MR][NR]) { micro(p, 4, true, r0, c0, out); }

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

static void gemm_panel(const wfmt *f, int n, float *s, size_t bs, const void *x, size_t bx,
                       const void *y, size_t by, int nr, int nc)
{
    panels p;
    p.n = n;
    p.G = f->G;
    p.S = f->G / 4;
    p.ng = n / f->G;
    p.ngc = (p.ng + 15) / 16;
    const int nrp = (int)round_up((size_t)nr, MR), ncp = (int)round_up((size_t)nc, NR);
    p.wb_stride = p.ab_stride = (size_t)p.ngc * p.S * 64;
    p.wf_stride = p.af_stride = (size_t)p.ngc * 16;
    const size_t fbytes = p.wf_stride * 4;
    size_t need = (size_t)nrp * (p.wb_stride + 2 * fbytes) + (size_t)ncp * (p.ab_stride + 3 * fbytes) +
                  (size_t)p.ngc * 16 * p.G + 64;
    uint8_t *mem = kernels_thread_scratch(need);
    if (!mem) {
        /* out of memory: the per-row kernel needs no scratch */
        kernels_gemm_by_dot(f->dot, n, s, bs, x, bx, y, by, nr, nc);
        return;
    }
    uint8_t *q = mem;
    p.wb = q; q += (size_t)nrp * p.wb_stride;
    p.ab = q; q += (size_t)ncp * p.ab_stride;
    p.wa = (float *)q; q += (size_t)nrp * fbytes;
    p.wbm = (float *)q; q += (size_t)nrp * fbytes;
    p.ady = (float *)q; q += (size_t)ncp * fbytes;
    p.aysf = (float *)q; q += (size_t)ncp * fbytes;
    p.acorr = (int32_t *)q; q += (size_t)ncp * fbytes;
    uint8_t *tmp = q;

    for (int c = 0; c < ncp; c++) {
        if (c < nc) {
            pack_act(f, (const uint8_t *)y + (size_t)c * by, &p, p.ab + c * p.ab_stride, p.ady + c * p.af_stride,
                     p.acorr + c * p.af_stride, p.aysf + c * p.af_stride, tmp);
        } else {   /* padding columns: zero scales, results discarded */
            memset(p.ab + c * p.ab_stride, 0, p.ab_stride);
            memset(p.ady + c * p.af_stride, 0, fbytes);
            memset(p.aysf + c * p.af_stride, 0, fbytes);
            memset(p.acorr + c * p.af_stride, 0, fbytes);
        }
    }
    for (int r = 0; r < nrp; r++) {
        if (r < nr) {
            pack_weights(f, (const uint8_t *)x + (size_t)r * bx, &p, p.wb + r * p.wb_stride, p.wa + r * p.wf_stride,
                         p.wbm + r * p.wf_stride, tmp);
        } else {
            memset(p.wb + r * p.wb_stride, 0, p.wb_stride);
            memset(p.wa + r * p.wf_stride, 0, fbytes);
            memset(p.wbm + r * p.wf_stride, 0, fbytes);
        }
    }
    void (*mk)(const panels *, int, int, float[MR][NR]) =
        p.S == 8 ? (f->has_min ? micro_s8m : micro_s8) : (f->has_min ? micro_s4m : micro_s4);
    for (int r0 = 0; r0 < nrp; r0 += MR) {
        for (int c0 = 0; c0 < ncp; c0 += NR) {
            float out[MR][NR];
            mk(&p, r0, c0, out);
            for (int c = 0; c < NR && c0 + c < nc; c++)
                for (int r = 0; r < MR && r0 + r < nr; r++)
                    s[(size_t)(c0 + c) * bs + r0 + r] = out[r][c];
        }
    }
}

#define GEMM_FN(t) \
    static void gemm_##t(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nr, int nc) \
    { gemm_panel(&fmt_##t, n, s, bs, x, bx, y, by, nr, nc); }
GEMM_FN(q4_0)
GEMM_FN(q4_1)
GEMM_FN(q5_0)
GEMM_FN(q5_1)
GEMM_FN(q8_0)
GEMM_FN(q2_K)
GEMM_FN(q3_K)
GEMM_FN(q4_K)
GEMM_FN(q5_K)
GEMM_FN(q6_K)

/* ---- AMX INT8 tile kernels (Sapphire Rapids and later) ----
 *
 * TDPBSSD multiplies 16 activation rows x G int8 (A: taken straight from the
 * Q8_0/Q8_1/Q8_K blocks, 16 rows at the activation row stride) by G x 16
 * weight int8 (B: rows 4p..4p+3 of each of 16 weight rows, the same dword
 * transpose as the panels above) into 16x16 int32, one group (one scale) at
 * a time. The exact int32 tile goes through memory to AVX-512, which applies
 * the scales: acc[t] += float(C[t][.]) * (a[g][.] * dy[t][g]) (+ b * ysum),
 * so 16 zmm accumulators hold a 16 token x 16 row output block. Weights are
 * unpacked once per call (value = a * q + b with q = u - o as int8), in
 * sub-panels of AMXQ_SUB rows: the activations are packed once per call and
 * every token block runs over one sub-panel before the next is unpacked, so
 * a thread's scratch holds AMXQ_SUB rows of weights, not the whole panel
 * (peak RSS is a target). */
#define AMXQ_SUB 64

bool simd_amx_available(void);   /* gemm_amx_avx512.c */

#pragma GCC push_options
#pragma GCC target("amx-tile,amx-int8")

typedef struct {
    uint8_t palette, start_row, reserved0[14];
    uint16_t colsb[8];
    uint8_t reserved1[16];
    uint8_t rows[8];
    uint8_t reserved2[8];
} __attribute__((packed, aligned(64))) amx_cfg;

/* Address of the G int8 activations of group g in an activation row. */
static inline const int8_t *act_group(const wfmt *f, const uint8_t *row, int g)
{
    if (f->act == QT_Q8_0) return (const int8_t *)(row + (size_t)g * sizeof(block_q8_0) + offsetof(block_q8_0, qs));
    if (f->act == QT_Q8_1) return (const int8_t *)(row + (size_t)g * sizeof(block_q8_1) + offsetof(block_q8_1, qs));
    const int per = QK_K / f->G;
    return (const int8_t *)(row + (size_t)(g / per) * sizeof(block_q8_K) + offsetof(block_q8_K, qs)) + (g % per) * f->G;
}

/* Per-group activation scale and (for min types) scale * sum of the group. */
static void act_info(const wfmt *f, const uint8_t *row, int ng, float *dy, float *ysf)
{
    for (int g = 0; g < ng; g++) {
        if (f->act == QT_Q8_0) {
            const block_q8_0 *b = (const block_q8_0 *)row + g;
            dy[g] = h2f(b->d);
        } else if (f->act == QT_Q8_1) {
            const block_q8_1 *b = (const block_q8_1 *)row + g;
            dy[g] = h2f(b->d);
            ysf[g] = h2f(b->s);
        } else {
            const int per = QK_K / f->G, j = g % per;
            const block_q8_K *b = (const block_q8_K *)row + g / per;
            dy[g] = b->d;
            int sum = f->G == 16 ? b->bsums[j] : b->bsums[2 * j] + b->bsums[2 * j + 1];
            ysf[g] = b->d * (float)sum;
        }
    }
}

/* In-register 16 x 16 dword transpose: 4 stages, each swapping one bit of
 * the row index with the same bit of the column index. */
static inline void transpose16x16(__m512i r[16])
{
    for (int bit = 0; bit < 4; bit++) {
        const int m = 1 << bit;
        int32_t il[16], ih[16];
        for (int c = 0; c < 16; c++) {
            il[c] = (c & m) ? 16 + (c ^ m) : c;
            ih[c] = (c & m) ? 16 + c : (c ^ m);
        }
        const __m512i vl = _mm512_loadu_si512(il), vh = _mm512_loadu_si512(ih);
        for (int i = 0; i < 16; i++) {
            if (i & m) continue;
            __m512i lo = r[i], hi = r[i | m];
            r[i] = _mm512_permutex2var_epi32(lo, vl, hi);
            r[i | m] = _mm512_permutex2var_epi32(lo, vh, hi);
        }
    }
}

/* acc[t] += C_h[t][.] * a[g + h] * dy[t][g + h] (+ b * ysf) for the two groups
 * g, g + 1 whose int32 tiles are at c and c + 256. */
static inline __attribute__((always_inline)) void scale_pair(const wfmt *f, const int32_t *c, int g, int ng,
        const float *pa, const float *pb, const float *dyt, const float *yst, __m512 acc[16])
{
    for (int h = 0; h < 2; h++) {
        const __m512 va = _mm512_load_ps(pa + (size_t)(g + h) * 16);
        const int32_t *cb = c + 256 * h;
#pragma GCC unroll 16
        for (int t = 0; t < 16; t++) {
            __m512 sc = _mm512_mul_ps(va, _mm512_set1_ps(dyt[(size_t)t * ng + g + h]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cb + 16 * t)), sc, acc[t]);
        }
        if (f->has_min) {
            const __m512 vb = _mm512_load_ps(pb + (size_t)(g + h) * 16);
#pragma GCC unroll 16
            for (int t = 0; t < 16; t++)
                acc[t] = _mm512_fmadd_ps(vb, _mm512_set1_ps(yst[(size_t)t * ng + g + h]), acc[t]);
        }
    }
}

static void gemm_amx_q(const wfmt *f, int n, float *s, size_t bs, const void *x, size_t bx,
                       const void *y, size_t by, int nr, int nc)
{
    const int G = f->G, S = G / 4, ng = n / G;
    const int nrp = (nr + 15) & ~15, ncp = (nc + 15) & ~15;
    const int npad = (n + 63) & ~63;
    const int subp = nrp < AMXQ_SUB ? nrp : AMXQ_SUB;         /* rows per sub-panel */
    const size_t wpanel = (size_t)subp * npad;                /* int8, B-tile layout */
    const size_t wscal = (size_t)subp * ng * 4;               /* floats a (and b) */
    const size_t ainfo = (size_t)ncp * ng * 4;                /* floats dy (and ysf) */
    const size_t apk = (size_t)ncp * ng * G;                  /* activations, tile-contiguous */
    size_t need = wpanel + 2 * wscal + 2 * ainfo + apk + (size_t)16 * npad + (size_t)ng * 8 + 4096 + 64 * 8;
    uint8_t *mem = kernels_thread_scratch(need);
    if (!mem) {
        /* out of memory: the per-row kernel needs no scratch */
        kernels_gemm_by_dot(f->dot, n, s, bs, x, bx, y, by, nr, nc);
        return;
    }
    uint8_t *q = mem;
    int8_t *wp = (int8_t *)q; q += (wpanel + 63) & ~(size_t)63;
    float *wa = (float *)q; q += (wscal + 63) & ~(size_t)63;
    float *wb = (float *)q; q += (wscal + 63) & ~(size_t)63;
    float *ady = (float *)q; q += (ainfo + 63) & ~(size_t)63;
    float *aysf = (float *)q; q += (ainfo + 63) & ~(size_t)63;
    int8_t *apack = (int8_t *)q; q += (apk + 63) & ~(size_t)63;
    int32_t *cbuf = (int32_t *)q; q += 4096;   /* two halves of two 16x16 int32 tiles */
    uint8_t *tmp = q; q += (size_t)16 * npad;
    float *ta = (float *)q, *tb = ta + ng;

    /* activation scales, and the int8 groups copied so that each A tile
     * (16 tokens x one group) is 16 * G contiguous bytes: [t / 16][g][t % 16][G] */
    for (int t = 0; t < ncp; t++) {
        int8_t *ap = apack + (size_t)(t / 16) * ng * G * 16 + (size_t)(t % 16) * G;
        if (t < nc) {
            const uint8_t *row = (const uint8_t *)y + (size_t)t * by;
            act_info(f, row, ng, ady + (size_t)t * ng, aysf + (size_t)t * ng);
            if (G == 32)
                for (int g = 0; g < ng; g++)
                    _mm256_store_si256((__m256i *)(ap + (size_t)g * G * 16), _mm256_loadu_si256((const __m256i *)act_group(f, row, g)));
            else
                for (int g = 0; g < ng; g++)
                    _mm_store_si128((__m128i *)(ap + (size_t)g * G * 16), _mm_loadu_si128((const __m128i *)act_group(f, row, g)));
        } else {
            for (int g = 0; g < ng; g++)
                memset(ap + (size_t)g * G * 16, 0, (size_t)G);
            memset(ady + (size_t)t * ng, 0, (size_t)ng * 4);
            memset(aysf + (size_t)t * ng, 0, (size_t)ng * 4);
        }
    }

    amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    cfg.colsb[0] = cfg.colsb[1] = 64; cfg.rows[0] = cfg.rows[1] = 16;          /* C */
    cfg.colsb[2] = cfg.colsb[3] = (uint16_t)G; cfg.rows[2] = cfg.rows[3] = 16;  /* A */
    cfg.colsb[4] = cfg.colsb[5] = 64; cfg.rows[4] = cfg.rows[5] = (uint8_t)S;   /* B */
    cfg.colsb[6] = cfg.colsb[7] = 64; cfg.rows[6] = cfg.rows[7] = 16;          /* C, second set */
    _tile_loadconfig(&cfg);

    const __m512i vo = _mm512_set1_epi8((char)f->o);
    for (int r0 = 0; r0 < nrp; r0 += subp) {
        const int sp = nrp - r0 < subp ? nrp - r0 : subp;
        /* weights: 16-row blocks, per group a G/4 x 64-byte B tile; scales as [g][16].
         * The 16 rows are unpacked to int8 side by side (tmp: 16 x npad), then
         * every 64-byte column slab is a 16 x 16 dword transpose, whose 16 output
         * rows are exactly the B tiles of the 64 / G groups it covers. */
        for (int jb = 0; jb < sp / 16; jb++) {
            int8_t *blk = wp + (size_t)jb * npad * 16;
            float *pa = wa + (size_t)jb * ng * 16, *pb = wb + (size_t)jb * ng * 16;
            for (int rr = 0; rr < 16; rr++) {
                const int r = r0 + 16 * jb + rr;
                uint8_t *tr = tmp + (size_t)rr * npad;
                if (r >= nr) {
                    memset(tr, 0, (size_t)npad);
                    for (int g = 0; g < ng; g++) pa[g * 16 + rr] = pb[g * 16 + rr] = 0.0f;
                    continue;
                }
                f->unpack((const uint8_t *)x + (size_t)r * bx, n, tr, ta, tb);
                for (int k = 0; k < n; k += 32)   /* n is a multiple of 32 */
                    _mm256_storeu_si256((__m256i *)(tr + k), _mm256_sub_epi8(_mm256_loadu_si256((const __m256i *)(tr + k)),
                                                                             _mm512_castsi512_si256(vo)));
                if (npad > n) memset(tr + n, 0, (size_t)(npad - n));
                for (int g = 0; g < ng; g++) {
                    pa[g * 16 + rr] = ta[g];
                    pb[g * 16 + rr] = f->has_min ? tb[g] : 0.0f;
                }
            }
            for (int c = 0; c < npad / 64; c++) {
                __m512i v[16];
                for (int rr = 0; rr < 16; rr++)
                    v[rr] = _mm512_loadu_si512(tmp + (size_t)rr * npad + 64 * c);
                transpose16x16(v);
                for (int p = 0; p < 16; p++)
                    _mm512_store_si512(blk + (size_t)c * 1024 + 64 * p, v[p]);
            }
        }
        /* token blocks outer: 16 tokens' packed activations (16 x n bytes) stay in
         * L1 while the weight panel streams from L2 */
        for (int t0 = 0; t0 < nc; t0 += 16) {
            const int tn = nc - t0 < 16 ? nc - t0 : 16;
            const int8_t *abase = apack + (size_t)(t0 / 16) * ng * G * 16;
            const float *dyt = ady + (size_t)t0 * ng, *yst = aysf + (size_t)t0 * ng;
            for (int jb = 0; jb < sp / 16; jb++) {
                const int8_t *blk = wp + (size_t)jb * npad * 16;
                const float *pa = wa + (size_t)jb * ng * 16, *pb = wb + (size_t)jb * ng * 16;
                __m512 acc[16];
    #pragma GCC unroll 16
                for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
                /* Software pipelined over pairs of groups: the matrix unit works on
                 * pair p (C tiles 0/1 or 6/7 alternately) while AVX-512 scales the
                 * int32 results of pair p - 1, stored in the other half of cbuf. */
    #define ISSUE(c0, c1, gg) do { \
                    _tile_zero(c0); \
                    _tile_zero(c1); \
                    _tile_loadd(2, abase + (size_t)(gg) * G * 16, G); \
                    _tile_loadd(4, blk + (size_t)(gg) * G * 16, 64); \
                    _tile_loadd(3, abase + (size_t)((gg) + 1) * G * 16, G); \
                    _tile_loadd(5, blk + (size_t)((gg) + 1) * G * 16, 64); \
                    _tile_dpbssd(c0, 2, 4); \
                    _tile_dpbssd(c1, 3, 5); \
                } while (0)
                const int np = ng / 2;
                int pending = -1;
                for (int p = 0; p < np; p++) {
                    int32_t *dst = cbuf + 512 * (p & 1);
                    if (p & 1)
                        ISSUE(6, 7, 2 * p);
                    else
                        ISSUE(0, 1, 2 * p);
                    if (pending >= 0)
                        scale_pair(f, cbuf + 512 * (pending & 1), 2 * pending, ng, pa, pb, dyt, yst, acc);
                    if (p & 1) {
                        _tile_stored(6, dst, 64);
                        _tile_stored(7, dst + 256, 64);
                    } else {
                        _tile_stored(0, dst, 64);
                        _tile_stored(1, dst + 256, 64);
                    }
                    pending = p;
                }
                if (pending >= 0)
                    scale_pair(f, cbuf + 512 * (pending & 1), 2 * pending, ng, pa, pb, dyt, yst, acc);
    #undef ISSUE
                int g = 2 * np;
                for (; g < ng; g++) {
                    _tile_zero(0);
                    _tile_loadd(2, abase + (size_t)g * G * 16, G);
                    _tile_loadd(4, blk + (size_t)g * G * 16, 64);
                    _tile_dpbssd(0, 2, 4);
                    _tile_stored(0, cbuf, 64);
                    const __m512 va = _mm512_load_ps(pa + (size_t)g * 16);
    #pragma GCC unroll 16
                    for (int t = 0; t < 16; t++) {
                        __m512 sc = _mm512_mul_ps(va, _mm512_set1_ps(dyt[(size_t)t * ng + g]));
                        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cbuf + 16 * t)), sc, acc[t]);
                    }
                    if (f->has_min) {
                        const __m512 vb = _mm512_load_ps(pb + (size_t)g * 16);
    #pragma GCC unroll 16
                        for (int t = 0; t < 16; t++)
                            acc[t] = _mm512_fmadd_ps(vb, _mm512_set1_ps(yst[(size_t)t * ng + g]), acc[t]);
                    }
                }
                const int rn = nr - r0 - 16 * jb < 16 ? nr - r0 - 16 * jb : 16;
                const __mmask16 m = (__mmask16)((1u << rn) - 1);
                for (int t = 0; t < tn; t++)
                    _mm512_mask_storeu_ps(s + (size_t)(t0 + t) * bs + r0 + 16 * jb, m, acc[t]);
            }
        }
    }
    _tile_release();
}

#pragma GCC pop_options

#define AMXQ_FN(t) \
    static void gemm_amx_##t(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nr, int nc) \
    { gemm_amx_q(&fmt_##t, n, s, bs, x, bx, y, by, nr, nc); }
AMXQ_FN(q4_0)
AMXQ_FN(q4_1)
AMXQ_FN(q5_0)
AMXQ_FN(q5_1)
AMXQ_FN(q8_0)
AMXQ_FN(q2_K)
AMXQ_FN(q3_K)
AMXQ_FN(q4_K)
AMXQ_FN(q5_K)
AMXQ_FN(q6_K)

#define AMXQ_NR 256
#define AMXQ_NC 256

qt_gemm_fn simd_gemm_amx_q(uint32_t type, int *nr, int *nc);
qt_gemm_fn simd_gemm_amx_q(uint32_t type, int *nr, int *nc)
{
    if (!simd_amx_available()) return NULL;
    *nr = AMXQ_NR;
    *nc = AMXQ_NC;
    switch (type) {
    case QT_Q4_0: return gemm_amx_q4_0;
    case QT_Q4_1: return gemm_amx_q4_1;
    case QT_Q5_0: return gemm_amx_q5_0;
    case QT_Q5_1: return gemm_amx_q5_1;
    case QT_Q8_0: return gemm_amx_q8_0;
    case QT_Q2_K: return gemm_amx_q2_K;
    case QT_Q3_K: return gemm_amx_q3_K;
    case QT_Q4_K: return gemm_amx_q4_K;
    case QT_Q5_K: return gemm_amx_q5_K;
    case QT_Q6_K: return gemm_amx_q6_K;
    default: return NULL;
    }
}

/* For tests and benches: the AVX-512 VNNI tile kernel of a type (NULL if none),
 * whether or not an AMX kernel replaced it in the table. */
qt_gemm_fn simd_gemm_vnni(uint32_t type, int *nr, int *nc);
qt_gemm_fn simd_gemm_vnni(uint32_t type, int *nr, int *nc)
{
    *nr = GEMM_NR;
    *nc = GEMM_NC;
    switch (type) {
    case QT_Q4_0: return gemm_q4_0;
    case QT_Q4_1: return gemm_q4_1;
    case QT_Q5_0: return gemm_q5_0;
    case QT_Q5_1: return gemm_q5_1;
    case QT_Q8_0: return gemm_q8_0;
    case QT_Q2_K: return gemm_q2_K;
    case QT_Q3_K: return gemm_q3_K;
    case QT_Q4_K: return gemm_q4_K;
    case QT_Q5_K: return gemm_q5_K;
    case QT_Q6_K: return gemm_q6_K;
    default: return NULL;
    }
}

void gemm_register_avx512(qtype_traits *t);
void gemm_register_avx512(qtype_traits *t)
{
/* call after the vec_dot kernels are registered: they are the fallback */
#define REG(T, name) fmt_##name.dot = t[T].vec_dot; t[T].gemm = gemm_##name; t[T].gemm_nr = GEMM_NR; t[T].gemm_nc = GEMM_NC;
    REG(QT_Q4_0, q4_0)
    REG(QT_Q4_1, q4_1)
    REG(QT_Q5_0, q5_0)
    REG(QT_Q5_1, q5_1)
    REG(QT_Q8_0, q8_0)
    REG(QT_Q2_K, q2_K)
    REG(QT_Q3_K, q3_K)
    REG(QT_Q4_K, q4_K)
    REG(QT_Q5_K, q5_K)
    REG(QT_Q6_K, q6_K)
#undef REG
    /* AMX int8 beats VNNI for every quantized type (bench_kernels_simd gemm:
     * 1.3x for the 16-value K-quants, 1.5-2x for the 32-value groups). */
    if (simd_amx_available()) {
        static const uint32_t amx_types[] = {QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q8_0,
                                             QT_Q2_K, QT_Q3_K, QT_Q4_K, QT_Q5_K, QT_Q6_K};
        for (size_t i = 0; i < sizeof amx_types / sizeof amx_types[0]; i++) {
            int nr, nc;
            qt_gemm_fn f = simd_gemm_amx_q(amx_types[i], &nr, &nc);
            if (f) {
                t[amx_types[i]].gemm = f;
                t[amx_types[i]].gemm_nr = nr;
                t[amx_types[i]].gemm_nc = nc;
            }
        }
    }
}
