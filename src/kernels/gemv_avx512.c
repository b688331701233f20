/*
 * gemv_avx512.c — decode kernels (one activation row times many weight rows,
 * the `gemv` hook of quant.h), AVX-512 VNNI, on the GGUF layout as stored.
 * Reached only through kernels_register_avx512() (quant_avx512.c).
 *
 * Why not vec_dot per row. Decode streams every weight byte once, so a
 * kernel only has to keep up with memory, but the single-row 256-bit
 * vec_dot of a Q4_0 block spends ~18 uops (nibble unpack, sign trick, two
 * scalar fp16 converts, a broadcast, convert, FMA): ~10 GB/s per core, below
 * a core's share of DRAM and far below L3 (small models stay in L3). Here:
 *  - several blocks per 512-bit register (Q8_0: 2, Q4_0: 4, K-quants: a
 *    128-value half of a super-block), so one convert + FMA serves them; the
 *    fp16 weight scales of a step come from one load + vpermw + vcvtph2ps;
 *  - 8 weight rows per pass share everything that depends only on the
 *    activations (arranged activation registers, scale vector, offset
 *    correction), computed once per step, not per row;
 *  - unsigned x signed bytes without the sign trick: Q4_0 nibbles are used
 *    as they are (u = q + 8), Q8_0 weights as x ^ 0x80 (u = x + 128), Q6_K
 *    as u = q + 32; the "- o * sum(y)" term is a vpdpbusd of the constant o
 *    with the activations (or the bsums), shared by the rows, that starts
 *    each row's integer accumulator;
 *  - K-quant sub-scales are applied in integers (vpdpbusd lane sums fit
 *    int16: pack + vpdpwssd with the scales), one float FMA per super-block;
 *  - one horizontal sum per row at the end; software prefetch GV_AHEAD bytes
 *    ahead in the order the pass reads (gv_ahead), 8 streams in flight;
 *  - when the weights stream from memory (`stream`, a model larger than the
 *    last-level cache) the quantized kernels take one row per pass instead:
 *    the reads become one sequential stream per thread, which the hardware
 *    and software prefetch sustain near the full bandwidth, while 8 rows side
 *    by side keep only ~16 lines in flight per core (the L1 fill buffers).
 *    TinyLlama tg, 8 rows -> 1 row: Q8_0 +5%, Q4_0 +8%, Q4_K_M +16%; F16
 *    -8% (its rows are whole 4 KiB pages already), so F16 keeps 8. From
 *    cache (SmolLM) 1 row loses up to 28% (Q4_0).
 * Measured (bench_matmul -t 1 -p 0 -w 1, in L2, GB/s of weights per core,
 * vec_dot -> gemv): Q4_0 10.7 -> 24, Q8_0 25 -> 29-34, Q4_K 15 -> 20,
 * Q6_K 18 -> 28, F16 56 -> 65.
 * Each row's arithmetic is the same whatever the pass size (8, 4 or 1
 * rows), so results do not depend on how matmul cuts the rows into chunks.
 * Integer block sums are exact; only the float summation order differs from
 * the reference (test bound as for vec_dot).
 */
#include "kernels/blocks.h"
#include "kernels/dispatch.h"
#include <immintrin.h>
#include <string.h>

#pragma GCC optimize("fp-contract=off")

#define GV_INLINE static inline __attribute__((always_inline))
/* Prefetch distance: GV_AHEAD bytes of weights ahead in the order a pass
 * consumes them, i.e. GV_AHEAD / R bytes further in each of its R rows, or,
 * near the end of the rows, at the start of the next pass's rows (which
 * follow in memory R rows later): rows of a few hundred bytes (576 or 2048
 * columns of Q4_0) are shorter than the distance, so prefetching inside the
 * row would only touch lines the neighbouring row's stream already loads. */
#define GV_AHEAD 4096
/* One row per pass (`stream`): GV_AHEAD1 bytes ahead in the row or the rows
 * after it. bench_matmul -p 0, TinyLlama shapes, 2048/3072/4096: Q4_K and
 * Q6_K lose ~15% at 4096, Q4_0 and Q8_0 ~5% at 2048; Q6_K is best at 2048. */
#define GV_AHEAD1 3072
#define GV_AHEAD1_Q6_K 2048   /* Q6_K 2048x5632: 28 GB/s at 2048, 24 at 3072; 32000x2048 the same */
/* Prefetch distance per row for a pass of R rows; `one` when R = 1. */
#define gv_dist(R, one) ((R) == 1 ? (size_t)(one) : (size_t)GV_AHEAD / (R))

/* Cut nr rows into passes and run ROWS(R, r) for each (R rows from row r,
 * R a constant so the pass inlines): one row at a time when the weights
 * stream from memory, else 8, then 4, then 1. */
#define GV_PASSES(stream, nr, ROWS)                  \
    do {                                              \
        int r_ = 0;                                   \
        if (stream)                                   \
            for (; r_ < (nr); r_++)                   \
                ROWS(1, r_);                          \
        for (; r_ + 8 <= (nr); r_ += 8)               \
            ROWS(8, r_);                              \
        for (; r_ + 4 <= (nr); r_ += 4)               \
            ROWS(4, r_);                              \
        for (; r_ < (nr); r_++)                       \
            ROWS(1, r_);                              \
    } while (0)
/* Activation steps arranged once per call (not once per 8-row pass) when the
 * row has at most this many steps: 64 x 256 bytes of stack (n <= 8192 for
 * Q4_0, 4096 for Q8_0); longer rows arrange them per pass. */
#define GV_PRE_MAX 64

/* Byte offset from a row's current position to prefetch: o = offset of the
 * current position in the row, rb = row bytes, d = distance per row, next =
 * R * bx (the same row position one pass later). */
GV_INLINE size_t gv_ahead(size_t o, size_t rb, size_t d, size_t next)
{
    return o + d < rb ? d : next + d - rb;
}

GV_INLINE float gv_fp16(fp16_t h) { return _cvtsh_ss(h); }

/* [a x 8 | b x 8] */
GV_INLINE __m512 gv_pair_ps(float a, float b)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

GV_INLINE __m512i gv_join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

/* Activation pair (blocks j, j+1 of a Q8_0 row; j+1 absent when last = 1):
 * the 64 quants, and the per-lane -o * sum of 4 quants for the offset o
 * given per byte in `ob`. */
typedef struct { __m512i q, corr; __m512 d; } gv_act;

GV_INLINE gv_act gv_act_q8_0(const block_q8_0 *y, int single, __m512i ob, __m512 dmul)
{
    gv_act a;
    __m256i y0 = _mm256_loadu_si256((const __m256i *)y[0].qs);
    __m256i y1 = single ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i *)y[1].qs);
    a.q = gv_join(y0, y1);
    a.corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), ob, a.q));
    a.d = _mm512_mul_ps(gv_pair_ps(gv_fp16(y[0].d), single ? 0.0f : gv_fp16(y[1].d)), dmul);
    return a;
}

/* ---- Q4_0 x Q8_0 ---- */

/* Four blocks per step (72 bytes of a row): the four blocks' 16-byte quants
 * in one register (block k in bytes 16k..16k+15; loads + inserts, or one
 * vpermt2w over two masked loads for the last 1..3 blocks of a row),
 * low nibbles pair with the activations' values 0..15 and high nibbles with
 * 16..31 (two vpdpbusd into the same accumulator, the offset correction
 * starting it), one vpermw + vcvtph2ps gives the four fp16 scales, and one
 * convert + FMA serves four blocks. */
typedef struct { __m512i lo, hi, corr; __m512 d; } gv_act4;

/* Activation blocks y[0..nblk) (nblk 1..4; missing ones zero): values 0..15
 * of each block in `lo`, 16..31 in `hi`, -8 * (lane sums) in corr, scales
 * [d0 x4, d1 x4, d2 x4, d3 x4]. */
GV_INLINE gv_act4 gv_act4_q8_0(const block_q8_0 *y, int nblk)
{
    __m128i l[4], h[4];
    float d[4];
    for (int k = 0; k < 4; k++) {
        l[k] = k < nblk ? _mm_loadu_si128((const __m128i *)y[k].qs) : _mm_setzero_si128();
        h[k] = k < nblk ? _mm_loadu_si128((const __m128i *)(y[k].qs + 16)) : _mm_setzero_si128();
        d[k] = k < nblk ? gv_fp16(y[k].d) : 0.0f;
    }
    gv_act4 a;
    a.lo = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(l[0]), l[1], 1), l[2], 2), l[3], 3);
    a.hi = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(h[0]), h[1], 1), h[2], 2), h[3], 3);
    const __m512i eight = _mm512_set1_epi8(8);
    a.corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                              _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, a.lo), eight, a.hi));
    a.d = _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                                _mm512_castps128_ps512(_mm_setr_ps(d[0], d[1], d[2], d[3])));
    return a;
}

/* words of [A = bytes 0..63 | B = bytes 8..71] of four blocks: their quants, then their scales */
static const int16_t q4_0_zidx[32] = {1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17,
                                      19, 20, 21, 22, 23, 24, 25, 26, 56, 57, 58, 59, 60, 61, 62, 63};
static const int16_t q4_0_didx[32] = {0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27};

/* One step of four blocks: z = their 64 quant bytes, A = the 64 bytes at
 * the first block (for the scales). */
GV_INLINE void q4_0_step4(__m512 *acc, __m512i z, __m512i A, const gv_act4 *a, __m512i didx)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m256i dw = _mm512_castsi512_si256(_mm512_permutexvar_epi16(didx, A));
    const __m512i lo = _mm512_and_si512(z, m4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
    const __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(a->corr, lo, a->lo), hi, a->hi);
    const __m512 dd = _mm512_mul_ps(_mm512_cvtph_ps(dw), a->d);
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), dd, *acc);
}

/* The quants of four whole blocks at b: four 16-byte loads (a load + insert
 * measured ~5% faster than one vpermt2w over two loads). */
GV_INLINE __m512i q4_0_quants4(const uint8_t *b)
{
    return _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(
        _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(b + 2))), _mm_loadu_si128((const __m128i *)(b + 20)), 1),
        _mm_loadu_si128((const __m128i *)(b + 38)), 2), _mm_loadu_si128((const __m128i *)(b + 56)), 3);
}

/* Rows r < R of the pass; x points at row 0, rows bx bytes apart. */
GV_INLINE void q4_0_rows4(const int R, int nb, float *s, const uint8_t *x, size_t bx, const block_q8_0 *y, const gv_act4 *pre)
{
    const __m512i zidx = _mm512_loadu_si512(q4_0_zidx), didx = _mm512_loadu_si512(q4_0_didx);
    __m512 acc[8];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    int j = 0;
    for (; j + 4 <= nb; j += 4) {
        const gv_act4 a = pre ? pre[j / 4] : gv_act4_q8_0(y + j, 4);
        const size_t pf = gv_ahead((size_t)j * sizeof(block_q4_0), (size_t)nb * sizeof(block_q4_0), gv_dist(R, GV_AHEAD1), (size_t)R * bx);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const uint8_t *b = x + (size_t)r * bx + (size_t)j * sizeof(block_q4_0);
            _mm_prefetch((const char *)b + pf, _MM_HINT_T0);
            _mm_prefetch((const char *)b + pf + 64, _MM_HINT_T0);
            q4_0_step4(&acc[r], q4_0_quants4(b), _mm512_loadu_si512(b), &a, didx);
        }
    }
    if (j < nb) {   /* 1..3 blocks left: masked loads, the missing blocks zero */
        const int rem = nb - j;
        const gv_act4 a = gv_act4_q8_0(y + j, rem);
        const __mmask64 ma = ((__mmask64)1 << (18 * rem)) - 1, mb = ((__mmask64)1 << (18 * rem - 8)) - 1;
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const uint8_t *b = x + (size_t)r * bx + (size_t)j * sizeof(block_q4_0);
            const __m512i A = _mm512_maskz_loadu_epi8(ma, b);
            q4_0_step4(&acc[r], _mm512_permutex2var_epi16(A, zidx, _mm512_maskz_loadu_epi8(mb, b + 8)), A, &a, didx);
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        s[r] = _mm512_reduce_add_ps(acc[r]);
}

static void gemv_q4_0_q8_0(int n, float *s, const void *x, size_t bx, const void *y, int nr, bool stream)
{
    const int nb = n / QK;
    const uint8_t *w = x;
    gv_act4 pre[GV_PRE_MAX];
    const gv_act4 *p = NULL;
    if ((nr > 8 || (stream && nr > 1)) && nb / 4 <= GV_PRE_MAX) {   /* several passes: arrange the activations once */
        for (int q = 0; q < nb / 4; q++)
            pre[q] = gv_act4_q8_0((const block_q8_0 *)y + 4 * q, 4);
        p = pre;
    }
#define Q4_0_ROWS4_PASS(R, r) q4_0_rows4(R, nb, s + (r), w + (size_t)(r) * bx, bx, y, p)
    GV_PASSES(stream, nr, Q4_0_ROWS4_PASS);
#undef Q4_0_ROWS4_PASS
}

/* ---- Q8_0 x Q8_0 ---- */

GV_INLINE void q8_0_rows(const int R, int nb, float *s, const uint8_t *x, size_t bx, const block_q8_0 *y, const gv_act *pre)
{
    const __m512i ob = _mm512_set1_epi8((char)0x80);   /* u = x ^ 0x80 = x + 128 */
    const __m512 dmul = _mm512_set1_ps(1.0f);
    /* the two scales of a pair: words 0 and 17 of the 64 bytes at the first block */
    const __m512i didx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          17, 17, 17, 17, 17, 17, 17, 17, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc[8];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    int j = 0;
    for (; j + 2 <= nb; j += 2) {
        gv_act a = pre ? pre[j / 2] : gv_act_q8_0(y + j, 0, ob, dmul);
        const size_t pf = gv_ahead((size_t)j * sizeof(block_q8_0), (size_t)nb * sizeof(block_q8_0), gv_dist(R, GV_AHEAD1), (size_t)R * bx);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const block_q8_0 *b = (const block_q8_0 *)(x + (size_t)r * bx) + j;
            _mm_prefetch((const char *)b + pf, _MM_HINT_T0);
            _mm_prefetch((const char *)b + pf + 64, _MM_HINT_T0);
            __m512i q = _mm512_xor_si512(gv_join(_mm256_loadu_si256((const __m256i *)b[0].qs),
                                                 _mm256_loadu_si256((const __m256i *)b[1].qs)), ob);
            __m512i dot = _mm512_dpbusd_epi32(a.corr, q, a.q);
            __m512i dw = _mm512_permutexvar_epi16(didx, _mm512_maskz_loadu_epi16(0x3ffff, b));
            __m512 dd = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(dw)), a.d);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), dd, acc[r]);
        }
    }
    if (j < nb) {
        gv_act a = gv_act_q8_0(y + j, 1, ob, dmul);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const block_q8_0 *b = (const block_q8_0 *)(x + (size_t)r * bx) + j;
            __m512i q = _mm512_xor_si512(_mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)b[0].qs)), ob);
            __m512i dot = _mm512_dpbusd_epi32(a.corr, q, a.q);
            __m512i dw = _mm512_permutexvar_epi16(didx, _mm512_maskz_loadu_epi16(1, b));
            __m512 dd = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(dw)), a.d);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), dd, acc[r]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        s[r] = _mm512_reduce_add_ps(acc[r]);
}

static void gemv_q8_0_q8_0(int n, float *s, const void *x, size_t bx, const void *y, int nr, bool stream)
{
    const int nb = n / QK;
    const uint8_t *w = x;
    gv_act pre[GV_PRE_MAX];
    const gv_act *p = NULL;
    if ((nr > 8 || (stream && nr > 1)) && nb / 2 <= GV_PRE_MAX) {   /* several passes: arrange the activations once */
        for (int q = 0; q < nb / 2; q++)
            pre[q] = gv_act_q8_0((const block_q8_0 *)y + 2 * q, 0, _mm512_set1_epi8((char)0x80), _mm512_set1_ps(1.0f));
        p = pre;
    }
#define Q8_0_ROWS_PASS(R, r) q8_0_rows(R, nb, s + (r), w + (size_t)(r) * bx, bx, y, p)
    GV_PASSES(stream, nr, Q8_0_ROWS_PASS);
#undef Q8_0_ROWS_PASS
}

/* ---- Q4_K x Q8_K ----
 * Per super-block of 256: the 64-byte halves of qs give low nibbles =
 * sub-blocks (4h, 4h+2) and high nibbles = (4h+1, 4h+3), so the shared
 * activation registers are [y of 4h | y of 4h+2] and [y of 4h+1 | y of
 * 4h+3]. The 6-bit sub-scales are applied in integers: the two vpdpbusd
 * results (|lane| <= 4 * 15 * 127, fits int16) are packed to int16 and
 * vpmaddwd'ed with the scales laid out to match the pack's lane order; the
 * mins term (sum of mins * sub-block activation sums from bsums) is one
 * more vpmaddwd. One convert + FMA per super-block for each. */
/* The 12 bytes of Q4_K/Q5_K 6-bit scales -> [sc0..sc7, mn0..mn7] as int16
 * (same unpacking as k4_scales in simd_impl.h, in xmm lanes:
 * w = 3 little-endian words; o0 = w0 & 0x3f.., o2 = w1 & 0x3f..,
 * o1 = (w2 & 0x0f..) | ((w0 >> 6) & 3..) << 4, o3 = ((w2 >> 4) & 0x0f..) | ((w1 >> 6) & 3..) << 4). */
GV_INLINE __m256i q4_K_scales(const uint8_t *scales)
{
    const __m128i v = _mm_maskz_loadu_epi32(0x7, scales);
    const __m128i p = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));   /* w0 w2 w1 w2 */
    const __m128i q = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));   /* .. w0 .. w1 */
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(p, _mm_set_epi32(4, 0, 0, 0)),
                                     _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi32(q, 2), _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
    return _mm256_cvtepu8_epi16(_mm_or_si128(lo, hi));
}

GV_INLINE void q4_K_rows(const int R, int nb, float *s, const uint8_t *x, size_t bx, const block_q8_K *y)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    /* word w of [sc0..sc7, mn0..mn7] for each int16 lane of a packed pair of halves */
    const __m512i idx0 = _mm512_set_epi16(3, 3, 3, 3, 2, 2, 2, 2, 3, 3, 3, 3, 2, 2, 2, 2,
                                          1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i idx1 = _mm512_add_epi16(idx0, _mm512_set1_epi16(4));
    __m512 acc[8];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const int8_t *q8 = y[i].qs;
        const __m512i ylo0 = gv_join(_mm256_loadu_si256((const __m256i *)q8), _mm256_loadu_si256((const __m256i *)(q8 + 64)));
        const __m512i yhi0 = gv_join(_mm256_loadu_si256((const __m256i *)(q8 + 32)), _mm256_loadu_si256((const __m256i *)(q8 + 96)));
        const __m512i ylo1 = gv_join(_mm256_loadu_si256((const __m256i *)(q8 + 128)), _mm256_loadu_si256((const __m256i *)(q8 + 192)));
        const __m512i yhi1 = gv_join(_mm256_loadu_si256((const __m256i *)(q8 + 160)), _mm256_loadu_si256((const __m256i *)(q8 + 224)));
        /* activation sum per 32-value sub-block (|.| <= 32 * 127: int16) */
        const __m128i ys = _mm256_cvtepi32_epi16(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[i].bsums), _mm256_set1_epi16(1)));
        const __m128 dy = _mm_set1_ps(y[i].d);
        const size_t pf = gv_ahead((size_t)i * sizeof(block_q4_K), (size_t)nb * sizeof(block_q4_K), gv_dist(R, GV_AHEAD1), (size_t)R * bx);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const block_q4_K *b = (const block_q4_K *)(x + (size_t)r * bx) + i;
            _mm_prefetch((const char *)b + pf, _MM_HINT_T0);
            _mm_prefetch((const char *)b + pf + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)b + pf + 128, _MM_HINT_T0);
            const __m256i sm = q4_K_scales(b->scales);   /* sc[8], mn[8] as int16 */
            const __m512i smz = _mm512_castsi256_si512(sm);
            const __m512i v0 = _mm512_loadu_si512(b->qs), v1 = _mm512_loadu_si512(b->qs + 64);
            __m512i lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v0, m4), ylo0);
            __m512i hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4), yhi0);
            __m512i isum = _mm512_madd_epi16(_mm512_packs_epi32(lo, hi), _mm512_permutexvar_epi16(idx0, smz));
            lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v1, m4), ylo1);
            hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4), yhi1);
            isum = _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(lo, hi), _mm512_permutexvar_epi16(idx1, smz));
            const __m128i mins = _mm_madd_epi16(_mm256_extracti128_si256(sm, 1), ys);
            uint32_t ddm;
            memcpy(&ddm, &b->d, 4);
            const __m128 dd = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)ddm)), dy);   /* d*dy, dmin*dy */
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_broadcastss_ps(dd), acc[r]);
            acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi128_si512(mins)),
                                      _mm512_broadcastss_ps(_mm_movehdup_ps(dd)), acc[r]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        s[r] = _mm512_reduce_add_ps(acc[r]);
}

static void gemv_q4_K_q8_K(int n, float *s, const void *x, size_t bx, const void *y, int nr, bool stream)
{
    const int nb = n / QK_K;
    const uint8_t *w = x;
#define Q4_K_ROWS_PASS(R, r) q4_K_rows(R, nb, s + (r), w + (size_t)(r) * bx, bx, y)
    GV_PASSES(stream, nr, Q4_K_ROWS_PASS);
#undef Q4_K_ROWS_PASS
}

/* ---- Q6_K x Q8_K ----
 * Per 128-value half h: the 64 bytes of ql give low nibbles = values 0..63
 * and high nibbles = values 64..127 of the half, each OR'ed with 2 bits of
 * qh (one 32-byte load broadcast to both 256-bit halves, shifted per half).
 * The activations of a half are then two plain 64-byte loads. Unsigned
 * u = q + 32 in 0..63: the products' lane sums (|.| <= 4 * 63 * 127) fit
 * int16, so as for Q4_K the signed 8-bit sub-scales (one per 16 values) are
 * applied by pack + vpdpwssd; the -32 offset is sum(scale * bsum) * 32,
 * one more vpdpwssd with the negated bsums. */
GV_INLINE void q6_K_rows(const int R, int nb, float *s, const uint8_t *x, size_t bx, const block_q8_K *y)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    /* qh bits 0-1 (v0, low half) and 2-3 (v1, high half) to bits 4-5; then bits 4-5 (v2) and 6-7 (v3) */
    const __m512i shl = _mm512_set_epi64(0x0002000200020002LL, 0x0002000200020002LL, 0x0002000200020002LL, 0x0002000200020002LL,
                                         0x0004000400040004LL, 0x0004000400040004LL, 0x0004000400040004LL, 0x0004000400040004LL);
    const __m512i shr = _mm512_set_epi64(0x0002000200020002LL, 0x0002000200020002LL, 0x0002000200020002LL, 0x0002000200020002LL, 0, 0, 0, 0);
    const __m512i idx0 = _mm512_set_epi16(7, 7, 7, 7, 3, 3, 3, 3, 6, 6, 6, 6, 2, 2, 2, 2,
                                          5, 5, 5, 5, 1, 1, 1, 1, 4, 4, 4, 4, 0, 0, 0, 0);
    const __m512i idx1 = _mm512_add_epi16(idx0, _mm512_set1_epi16(8));
    __m512 acc[8];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const int8_t *q8 = y[i].qs;
        const __m512i ya0 = _mm512_loadu_si512(q8), yb0 = _mm512_loadu_si512(q8 + 64);
        const __m512i ya1 = _mm512_loadu_si512(q8 + 128), yb1 = _mm512_loadu_si512(q8 + 192);
        const __m512i nbs = _mm512_zextsi256_si512(_mm256_sub_epi16(_mm256_setzero_si256(),
                                                                    _mm256_loadu_si256((const __m256i *)y[i].bsums)));
        const __m512 dy = _mm512_set1_ps(y[i].d);
        const size_t pf = gv_ahead((size_t)i * sizeof(block_q6_K), (size_t)nb * sizeof(block_q6_K), gv_dist(R, GV_AHEAD1_Q6_K), (size_t)R * bx);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const block_q6_K *b = (const block_q6_K *)(x + (size_t)r * bx) + i;
            _mm_prefetch((const char *)b + pf, _MM_HINT_T0);
            _mm_prefetch((const char *)b + pf + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)b + pf + 128, _MM_HINT_T0);
            _mm_prefetch((const char *)b + pf + 192, _MM_HINT_T0);
            const __m512i sc = _mm512_zextsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales)));
            /* -32 * sum_j sc[j] * bsums[j] */
            __m512i isum = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_slli_epi16(sc, 5), nbs);
            _Pragma("GCC unroll 2")
            for (int h = 0; h < 2; h++) {
                const __m512i l = _mm512_loadu_si512(b->ql + 64 * h);
                const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * h)));
                const __m512i ua = _mm512_ternarylogic_epi32(_mm512_and_si512(l, m4), _mm512_sllv_epi16(qh, shl), m30, 0xf8);
                const __m512i ub = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                                             _mm512_srlv_epi16(qh, shr), m30, 0xf8);
                const __m512i da = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ua, h ? ya1 : ya0);
                const __m512i db = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ub, h ? yb1 : yb0);
                isum = _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(da, db), _mm512_permutexvar_epi16(h ? idx1 : idx0, sc));
            }
            const __m512 d = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b->d)), dy);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), d, acc[r]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        s[r] = _mm512_reduce_add_ps(acc[r]);
}

static void gemv_q6_K_q8_K(int n, float *s, const void *x, size_t bx, const void *y, int nr, bool stream)
{
    const int nb = n / QK_K;
    const uint8_t *w = x;
#define Q6_K_ROWS_PASS(R, r) q6_K_rows(R, nb, s + (r), w + (size_t)(r) * bx, bx, y)
    GV_PASSES(stream, nr, Q6_K_ROWS_PASS);
#undef Q6_K_ROWS_PASS
}

/* ---- F16 x F32 ----
 * Not compute bound (one convert + FMA per 16 values); what the pass of 8
 * rows buys is 8 weight streams in flight and one activation load per 8
 * rows. Two float accumulators (32 partial sums) per row, as in the
 * single-row kernel's float summation (see quant_avx512.c); the ragged end
 * is one masked step into the same accumulators. */
GV_INLINE void f16_rows(const int R, int n, float *s, const uint8_t *x, size_t bx, const float *y)
{
    __m512 a0[8], a1[8];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        a0[r] = a1[r] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 y0 = _mm512_loadu_ps(y + i), y1 = _mm512_loadu_ps(y + i + 16);
        const size_t pf = gv_ahead((size_t)i * 2, (size_t)n * 2, gv_dist(R, GV_AHEAD1), (size_t)R * bx);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const fp16_t *w = (const fp16_t *)(x + (size_t)r * bx) + i;
            _mm_prefetch((const char *)w + pf, _MM_HINT_T0);
            a0[r] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)w)), y0, a0[r]);
            a1[r] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 16))), y1, a1[r]);
        }
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 y0 = _mm512_maskz_loadu_ps(m, y + i);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const fp16_t *w = (const fp16_t *)(x + (size_t)r * bx) + i;
            a0[r] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w)), y0, a0[r]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        s[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
}

static void gemv_f16_f32(int n, float *s, const void *x, size_t bx, const void *y, int nr, bool stream)
{
    const uint8_t *w = x;
    (void)stream;   /* 8 rows side by side either way: see the top of the file */
#define F16_ROWS_PASS(R, r) f16_rows(R, n, s + (r), w + (size_t)(r) * bx, bx, y)
    GV_PASSES(false, nr, F16_ROWS_PASS);
#undef F16_ROWS_PASS
}

void gemv_register_avx512(qtype_traits *t);
void gemv_register_avx512(qtype_traits *t)
{
    t[QT_Q4_0].gemv = gemv_q4_0_q8_0;
    t[QT_Q8_0].gemv = gemv_q8_0_q8_0;
    t[QT_Q4_K].gemv = gemv_q4_K_q8_K;
    t[QT_Q6_K].gemv = gemv_q6_K_q8_K;
    t[QT_F16].gemv = gemv_f16_f32;
}
