/*
 * gemm_amx_avx512.c — prompt-processing tile kernels on Intel AMX (Sapphire
 * Rapids and later). Reached only through kernels_register_avx512(), and
 * only when dispatch.c found AMX in CPUID and XCR0, Linux granted the tile
 * state (arch_prctl ARCH_REQ_XCOMP_PERM) and neither CAIRN_NO_AMX=1 nor
 * CAIRN_AMX=0 turns it off.
 *
 * One TDPBF16PS multiplies a 16x32 bf16 tile by a 32x16 one into 16x16 fp32
 * (8192 multiply-adds in about 16 cycles): some 20x the AVX-512 FMA rate.
 *
 * F16 / BF16 weights x F32 activations, as exact as f32 math: bf16 keeps 8
 * mantissa bits, so every f16 weight is split into w1 + w2 bf16 (exact: f16
 * has 11 bits) and every f32 activation into a1 + a2 + a3 (exact: 24 bits).
 * C += a1 w1 + a1 w2 + a2 w2 + a2 w1 + a3 w1 drops only a3 w2, below 2^-26
 * of the product; the products are exact and TDPBF16PS accumulates in fp32,
 * so results match vec_dot up to summation order (BF16 weights: 3 products).
 *
 * Layout per call (nr weight rows, nc activation rows, K in slabs of KC):
 *   A = activations, natural rows: a1/a2/a3 [ncp][KC] bf16 (A tile: 16 rows x 32 k)
 *   B = weights in the pair-interleaved layout the instruction wants: for
 *       each 16-row block and 32-k step, 16 rows of 64 bytes where row p
 *       holds (w[r][2p], w[r][2p+1]) for r = 0..15 — a 16x16 dword
 *       transpose of the weight rows, done with vpermt2d.
 *   C = fp32 [ncp][nrp] in scratch, accumulated across slabs, then copied
 *       into s (its layout, token-major, is the same).
 */
#include "kernels/blocks.h"
#include "kernels/dispatch.h"
#include <immintrin.h>
#include <string.h>

#pragma GCC target("amx-tile,amx-bf16,amx-int8,avx512bf16")

#define AMX_NR 256   /* weight rows per call */
#define AMX_NC 256   /* activation rows per call */
#define KC 512       /* k per slab */

/* ---- availability (decided in dispatch.c) ---- */

static bool amx_ok;

/* ---- tile configuration: all 8 tiles 16 rows x 64 bytes ---- */

typedef struct {
    uint8_t palette, start_row, reserved0[14];
    uint16_t colsb[8];
    uint8_t reserved1[16];
    uint8_t rows[8];
    uint8_t reserved2[8];
} __attribute__((packed, aligned(64))) tilecfg;

static void tiles_config(void)
{
    tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    _tile_loadconfig(&cfg);
}

/* ---- conversions ---- */

static inline __m512 bf16_to_ps(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

/* 32 floats (a: k 0..15, b: k 16..31) -> 32 bf16 hi and 32 bf16 lo (x - hi) */
static inline void split32(__m512 a, __m512 b, __m512i *hi, __m512i *lo)
{
    __m256i ha = (__m256i)_mm512_cvtneps_pbh(a), hb = (__m256i)_mm512_cvtneps_pbh(b);
    __m512 ra = _mm512_sub_ps(a, bf16_to_ps(ha)), rb = _mm512_sub_ps(b, bf16_to_ps(hb));
    *hi = _mm512_inserti64x4(_mm512_castsi256_si512(ha), hb, 1);
    *lo = _mm512_inserti64x4(_mm512_castsi256_si512((__m256i)_mm512_cvtneps_pbh(ra)), (__m256i)_mm512_cvtneps_pbh(rb), 1);
}

/* In-register 16x16 dword transpose: 4 stages, each swapping one bit of the
 * row index with the same bit of the column index. */
static inline void transpose16(__m512i r[16])
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

typedef struct {
    int wtype;   /* QT_F16 or QT_BF16 */
} amx_fmt;

/* Weights rows [0, 16) of a block (row pointers, NULL = zero row), k slab [k0, k0 + kc):
 * B tiles hi (and lo for F16) at bhi/blo, one 1 KiB tile per 32 k. */
static void pack_w16(int wtype, const uint8_t *const rows[16], int n, int k0, int kc, uint8_t *bhi, uint8_t *blo)
{
    for (int kk = 0; kk < kc; kk += 32) {
        const int k = k0 + kk;
        const int left = n - k;
        const __mmask32 m = left >= 32 ? 0xffffffffu : left <= 0 ? 0 : (uint32_t)((1ull << left) - 1);
        __m512i h[16], l[16];
        for (int r = 0; r < 16; r++) {
            if (!rows[r] || !m) {
                h[r] = l[r] = _mm512_setzero_si512();
                continue;
            }
            const uint16_t *src = (const uint16_t *)rows[r] + k;
            __m512i raw = _mm512_maskz_loadu_epi16(m, src);
            if (wtype == QT_BF16) {
                h[r] = raw;
                continue;
            }
            __m512 a = _mm512_cvtph_ps(_mm512_castsi512_si256(raw));
            __m512 b = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(raw, 1));
            split32(a, b, &h[r], &l[r]);
        }
        transpose16(h);
        uint8_t *th = bhi + (size_t)(kk / 32) * 1024;
        for (int p = 0; p < 16; p++)
            _mm512_store_si512((void *)(th + 64 * p), h[p]);
        if (wtype != QT_BF16) {
            transpose16(l);
            uint8_t *tl = blo + (size_t)(kk / 32) * 1024;
            for (int p = 0; p < 16; p++)
                _mm512_store_si512((void *)(tl + 64 * p), l[p]);
        }
    }
}

/* 32 floats -> three bf16 parts a1 + a2 + a3 == x (exact for normal floats) */
static inline void split32x3(__m512 a, __m512 b, __m512i *p1, __m512i *p2, __m512i *p3)
{
    __m256i ha = (__m256i)_mm512_cvtneps_pbh(a), hb = (__m256i)_mm512_cvtneps_pbh(b);
    a = _mm512_sub_ps(a, bf16_to_ps(ha));
    b = _mm512_sub_ps(b, bf16_to_ps(hb));
    *p1 = _mm512_inserti64x4(_mm512_castsi256_si512(ha), hb, 1);
    __m256i ma = (__m256i)_mm512_cvtneps_pbh(a), mb = (__m256i)_mm512_cvtneps_pbh(b);
    a = _mm512_sub_ps(a, bf16_to_ps(ma));
    b = _mm512_sub_ps(b, bf16_to_ps(mb));
    *p2 = _mm512_inserti64x4(_mm512_castsi256_si512(ma), mb, 1);
    *p3 = _mm512_inserti64x4(_mm512_castsi256_si512((__m256i)_mm512_cvtneps_pbh(a)), (__m256i)_mm512_cvtneps_pbh(b), 1);
}

/* One activation row (f32), k slab -> three bf16 rows of kc values. */
static void pack_a(const float *x, int n, int k0, int kc, uint16_t *a1, uint16_t *a2, uint16_t *a3)
{
    for (int kk = 0; kk < kc; kk += 32) {
        const int k = k0 + kk, left = n - k;
        const __mmask16 m0 = left >= 16 ? 0xffff : left <= 0 ? 0 : (uint16_t)((1u << left) - 1);
        const __mmask16 m1 = left >= 32 ? 0xffff : left <= 16 ? 0 : (uint16_t)((1u << (left - 16)) - 1);
        __m512 a = _mm512_maskz_loadu_ps(m0, x + k), b = _mm512_maskz_loadu_ps(m1, x + k + 16);
        __m512i p1, p2, p3;
        split32x3(a, b, &p1, &p2, &p3);
        _mm512_store_si512((void *)(a1 + kk), p1);
        _mm512_store_si512((void *)(a2 + kk), p2);
        _mm512_store_si512((void *)(a3 + kk), p3);
    }
}

static size_t rup(size_t v, size_t m) { return (v + m - 1) / m * m; }

static void gemm_amx_float(int wtype, int n, float *s, size_t bs, const void *x, size_t bx,
                           const void *y, size_t by, int nr, int nc, qt_vec_dot_fn fallback)
{
    const int nrp = (int)rup((size_t)nr, 32), ncp = (int)rup((size_t)nc, 32);
    const int kp = (int)rup((size_t)n, 32);
    const int kc_max = kp < KC ? kp : KC;
    const size_t a_bytes = (size_t)ncp * kc_max * 2;            /* each of a1, a2, a3 */
    const size_t b_bytes = (size_t)nrp * kc_max * 2;            /* each of hi, lo */
    const size_t c_bytes = (size_t)ncp * nrp * 4;
    uint8_t *mem = kernels_thread_scratch(3 * a_bytes + 2 * b_bytes + c_bytes);
    if (!mem) {
        /* out of memory: the per-row kernel needs no scratch */
        kernels_gemm_by_dot(fallback, n, s, bs, x, bx, y, by, nr, nc);
        return;
    }
    uint16_t *a1 = (uint16_t *)mem, *a2 = (uint16_t *)(mem + a_bytes), *a3 = (uint16_t *)(mem + 2 * a_bytes);
    uint8_t *bhi = mem + 3 * a_bytes, *blo = bhi + b_bytes;
    float *cbuf = (float *)(blo + b_bytes);
    const bool has_lo = wtype != QT_BF16;

    tiles_config();
    for (int k0 = 0; k0 < kp; k0 += KC) {
        const int kc = kp - k0 < KC ? kp - k0 : KC;
        /* activations */
        for (int t = 0; t < ncp; t++) {
            if (t < nc) {
                pack_a((const float *)((const uint8_t *)y + (size_t)t * by), n, k0, kc,
                       a1 + (size_t)t * kc, a2 + (size_t)t * kc, a3 + (size_t)t * kc);
            } else {
                memset(a1 + (size_t)t * kc, 0, (size_t)kc * 2);
                memset(a2 + (size_t)t * kc, 0, (size_t)kc * 2);
                memset(a3 + (size_t)t * kc, 0, (size_t)kc * 2);
            }
        }
        /* weights, 16 rows at a time: block j at b + j * 16 * kc * 2 */
        for (int j = 0; j < nrp / 16; j++) {
            const uint8_t *rows[16];
            for (int r = 0; r < 16; r++)
                rows[r] = 16 * j + r < nr ? (const uint8_t *)x + (size_t)(16 * j + r) * bx : NULL;
            pack_w16(wtype, rows, n, k0, kc, bhi + (size_t)j * 16 * kc * 2, blo + (size_t)j * 16 * kc * 2);
        }
        /* C[t][r] += A[t][k] . B[k][r]: 2x2 tiles of 16x16 in tmm0..3, A in tmm4/5, B in tmm6/7 */
        const size_t astride = (size_t)kc * 2, cstride = (size_t)nrp * 4;
        for (int t0 = 0; t0 < ncp; t0 += 32) {
            for (int r0 = 0; r0 < nrp; r0 += 32) {
                float *c00 = cbuf + (size_t)t0 * nrp + r0, *c01 = c00 + 16;
                float *c10 = c00 + (size_t)16 * nrp, *c11 = c10 + 16;
                if (k0 == 0) {
                    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                } else {
                    _tile_loadd(0, c00, cstride); _tile_loadd(1, c01, cstride);
                    _tile_loadd(2, c10, cstride); _tile_loadd(3, c11, cstride);
                }
                const uint16_t *p10 = a1 + (size_t)t0 * kc, *p20 = a2 + (size_t)t0 * kc, *p30 = a3 + (size_t)t0 * kc;
                const size_t t16 = (size_t)16 * kc;
                const uint8_t *bh0 = bhi + (size_t)r0 * kc * 2, *bh1 = bh0 + (size_t)16 * kc * 2;
                const uint8_t *bl0 = blo + (size_t)r0 * kc * 2, *bl1 = bl0 + (size_t)16 * kc * 2;
#define DP4() do { _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7); } while (0)
                for (int kk = 0; kk < kc; kk += 32) {
                    /* a1 w1, a1 w2, a2 w2, a2 w1, a3 w1: 12 tile loads for 20 products */
                    const size_t bo = (size_t)(kk / 32) * 1024;
                    _tile_loadd(4, p10 + kk, astride);
                    _tile_loadd(5, p10 + t16 + kk, astride);
                    _tile_loadd(6, bh0 + bo, 64);
                    _tile_loadd(7, bh1 + bo, 64);
                    DP4();
                    if (has_lo) {
                        _tile_loadd(6, bl0 + bo, 64);
                        _tile_loadd(7, bl1 + bo, 64);
                        DP4();
                        _tile_loadd(4, p20 + kk, astride);
                        _tile_loadd(5, p20 + t16 + kk, astride);
                        DP4();
                        _tile_loadd(6, bh0 + bo, 64);
                        _tile_loadd(7, bh1 + bo, 64);
                        DP4();
                    } else {
                        _tile_loadd(4, p20 + kk, astride);
                        _tile_loadd(5, p20 + t16 + kk, astride);
                        DP4();
                    }
                    _tile_loadd(4, p30 + kk, astride);
                    _tile_loadd(5, p30 + t16 + kk, astride);
                    DP4();
                }
#undef DP4
                _tile_stored(0, c00, cstride); _tile_stored(1, c01, cstride);
                _tile_stored(2, c10, cstride); _tile_stored(3, c11, cstride);
            }
        }
    }
    _tile_release();
    for (int t = 0; t < nc; t++)
        memcpy(s + (size_t)t * bs, cbuf + (size_t)t * nrp, (size_t)nr * 4);
}

static qt_vec_dot_fn dot_f16, dot_bf16;

static void gemm_amx_f16(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nr, int nc)
{
    gemm_amx_float(QT_F16, n, s, bs, x, bx, y, by, nr, nc, dot_f16);
}

static void gemm_amx_bf16(int n, float *s, size_t bs, const void *x, size_t bx, const void *y, size_t by, int nr, int nc)
{
    gemm_amx_float(QT_BF16, n, s, bs, x, bx, y, by, nr, nc, dot_bf16);
}

/* For tests and benches: is AMX in use, and the AMX tile kernel of a type (NULL if none). */
bool simd_amx_available(void);
bool simd_amx_available(void) { return amx_ok; }
qt_gemm_fn simd_gemm_amx(uint32_t type, int *nr, int *nc);
qt_gemm_fn simd_gemm_amx(uint32_t type, int *nr, int *nc)
{
    if (!amx_ok) return NULL;
    *nr = AMX_NR;
    *nc = AMX_NC;
    switch (type) {
    case QT_F16: return gemm_amx_f16;
    case QT_BF16: return gemm_amx_bf16;
    default: return NULL;
    }
}

/* Called from kernels_register_avx512 after the AVX-512 kernels are in the table. */
void gemm_amx_register(qtype_traits *t, bool amx);
void gemm_amx_register(qtype_traits *t, bool amx)
{
    amx_ok = amx;
    if (!amx_ok)
        return;
    dot_f16 = t[QT_F16].vec_dot;
    dot_bf16 = t[QT_BF16].vec_dot;
    t[QT_F16].gemm = gemm_amx_f16;
    t[QT_F16].gemm_nr = AMX_NR;
    t[QT_F16].gemm_nc = AMX_NC;
    t[QT_BF16].gemm = gemm_amx_bf16;
    t[QT_BF16].gemm_nr = AMX_NR;
    t[QT_BF16].gemm_nc = AMX_NC;
}
