/*
 * quant_ref.c — scalar reference kernels for the float types and the legacy
 * 32-value block quants (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1).
 *
 * Semantics follow ggml bit for bit: dequantization is exact, and the
 * quantizers reproduce ggml's reference quantizers (Q4_0 and Q8_0 are
 * byte-identical to ../shared/tools/ggufio.py). Rounding is spelled out
 * where it matters: Q8 uses roundf (half away from zero); Q4/Q5 add a bias
 * and truncate through an int8 cast.
 *
 * All `n` are value counts and must be multiples of the block size
 * (callers check with qtype_row_size).
 */
#include "kernels/quant_ref.h"

/* ---------------------------------------------------------------- fp16 / bf16 */

float fp16_to_fp32(uint16_t h) { return fp16_decode(h); }

/* Round to nearest even, like F16C's vcvtps2ph with imm 0: overflow goes to
 * inf, results below half the smallest subnormal to (signed) zero, NaN stays a
 * quiet NaN keeping the top payload bits. */
uint16_t fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)                        /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u)                       /* >= 65520: rounds to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) {                     /* normal half (>= 2^-14) */
        uint32_t r = ax - (112u << 23);
        r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;   /* carry into exponent is correct */
        return (uint16_t)(sign | r);
    }
    uint32_t e = ax >> 23;
    if (e < 102)                                 /* < 2^-25: rounds to zero */
        return sign;
    /* subnormal half: value = m * 2^(e-150) = (m >> shift) units of 2^-24 */
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;                    /* 14..24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return (uint16_t)(sign | q);
}

float bf16_to_fp32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t fp32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)         /* NaN: force quiet */
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* ---------------------------------------------------------------- float types */

void dequant_f32_ref(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }
void quant_f32_ref(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

void dequant_f16_ref(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = fp16_decode(h[i]);
}

void quant_f16_ref(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = fp32_to_fp16(src[i]);
}

void dequant_bf16_ref(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = bf16_to_fp32(h[i]);
}

void quant_bf16_ref(const float *src, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = fp32_to_bf16(src[i]);
}

/* Float dots accumulate in double: the reference is the yardstick. */
void vec_dot_f32_f32_ref(int n, float *s, const void *x, const void *y)
{
    const float *a = x, *b = y;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)a[i] * b[i];
    *s = (float)sum;
}

void vec_dot_f16_f32_ref(int n, float *s, const void *x, const void *y)
{
    const uint16_t *a = x;
    const float *b = y;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)fp16_decode(a[i]) * b[i];
    *s = (float)sum;
}

void vec_dot_bf16_f32_ref(int n, float *s, const void *x, const void *y)
{
    const uint16_t *a = x;
    const float *b = y;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)bf16_to_fp32(a[i]) * b[i];
    *s = (float)sum;
}

/* ---------------------------------------------------------------- legacy quants: dequantize */

void dequant_q4_0_ref(const void *src, float *dst, int64_t n)
{
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        float d = fp16_decode(b[i].d);
        for (int j = 0; j < QK / 2; j++) {
            dst[j] = (float)((b[i].qs[j] & 0x0F) - 8) * d;
            dst[j + QK / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequant_q4_1_ref(const void *src, float *dst, int64_t n)
{
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        float d = fp16_decode(b[i].d), m = fp16_decode(b[i].m);
        for (int j = 0; j < QK / 2; j++) {
            dst[j] = (float)(b[i].qs[j] & 0x0F) * d + m;
            dst[j + QK / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

/* 5-bit values: low nibble from qs, 5th bit of value j is bit j of qh. */
static inline void q5_unpack(const uint8_t qs[QK / 2], const uint8_t qh8[4], int q[QK])
{
    uint32_t qh;
    memcpy(&qh, qh8, 4);
    for (int j = 0; j < QK / 2; j++) {
        q[j] = (qs[j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10);
        q[j + QK / 2] = (qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
    }
}

void dequant_q5_0_ref(const void *src, float *dst, int64_t n)
{
    const block_q5_0 *b = src;
    int q[QK];
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        float d = fp16_decode(b[i].d);
        q5_unpack(b[i].qs, b[i].qh, q);
        for (int j = 0; j < QK; j++)
            dst[j] = (float)(q[j] - 16) * d;
    }
}

void dequant_q5_1_ref(const void *src, float *dst, int64_t n)
{
    const block_q5_1 *b = src;
    int q[QK];
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        float d = fp16_decode(b[i].d), m = fp16_decode(b[i].m);
        q5_unpack(b[i].qs, b[i].qh, q);
        for (int j = 0; j < QK; j++)
            dst[j] = (float)q[j] * d + m;
    }
}

void dequant_q8_0_ref(const void *src, float *dst, int64_t n)
{
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        float d = fp16_decode(b[i].d);
        for (int j = 0; j < QK; j++)
            dst[j] = (float)b[i].qs[j] * d;
    }
}

void dequant_q8_1_ref(const void *src, float *dst, int64_t n)
{
    const block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        float d = fp16_decode(b[i].d);
        for (int j = 0; j < QK; j++)
            dst[j] = (float)b[i].qs[j] * d;
    }
}

/* ---------------------------------------------------------------- legacy quants: quantize */

/* The value of largest magnitude, keeping its sign (first one on ties). */
static inline float signed_absmax(const float *x, int n, float *amax_out)
{
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++) {
        float v = fabsf(x[j]);
        if (amax < v) {
            amax = v;
            max = x[j];
        }
    }
    if (amax_out)
        *amax_out = amax;
    return max;
}

static inline void minmax(const float *x, int n, float *mn, float *mx)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

/* Q4_0: d = max / -8 so the extreme value maps to -8 exactly; q = trunc(x/d + 8.5) capped at 15. */
void quant_q4_0_ref(const float *src, void *dst, int64_t n)
{
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        float max = signed_absmax(src, QK, NULL);
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK / 2; j++) {
            int8_t q0 = (int8_t)(src[j] * id + 8.5f), q1 = (int8_t)(src[j + QK / 2] * id + 8.5f);
            uint8_t u0 = (uint8_t)CAIRN_MIN(15, q0), u1 = (uint8_t)CAIRN_MIN(15, q1);
            b[i].qs[j] = (uint8_t)(u0 | (u1 << 4));
        }
    }
}

/* Q4_1: d = (max - min) / 15, m = min; q = trunc((x - min)/d + 0.5) capped at 15. */
void quant_q4_1_ref(const float *src, void *dst, int64_t n)
{
    block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        float mn, mx;
        minmax(src, QK, &mn, &mx);
        float d = (mx - mn) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(mn);
        for (int j = 0; j < QK / 2; j++) {
            int8_t q0 = (int8_t)((src[j] - mn) * id + 0.5f), q1 = (int8_t)((src[j + QK / 2] - mn) * id + 0.5f);
            uint8_t u0 = (uint8_t)CAIRN_MIN(15, q0), u1 = (uint8_t)CAIRN_MIN(15, q1);
            b[i].qs[j] = (uint8_t)(u0 | (u1 << 4));
        }
    }
}

static inline void q5_pack(const uint8_t q[QK], uint8_t qs[QK / 2], uint8_t qh8[4])
{
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0F) | ((q[j + QK / 2] & 0x0F) << 4));
        qh |= (uint32_t)((q[j] & 0x10u) >> 4) << j;
        qh |= (uint32_t)((q[j + QK / 2] & 0x10u) >> 4) << (j + QK / 2);
    }
    memcpy(qh8, &qh, 4);
}

/* Q5_0: d = max / -16; q = trunc(x/d + 16.5) capped at 31. */
void quant_q5_0_ref(const float *src, void *dst, int64_t n)
{
    block_q5_0 *b = dst;
    uint8_t q[QK];
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        float max = signed_absmax(src, QK, NULL);
        float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK; j++) {
            int8_t v = (int8_t)(src[j] * id + 16.5f);
            q[j] = (uint8_t)CAIRN_MIN(31, v);
        }
        q5_pack(q, b[i].qs, b[i].qh);
    }
}

/* Q5_1: d = (max - min) / 31, m = min; q = trunc((x - min)/d + 0.5). */
void quant_q5_1_ref(const float *src, void *dst, int64_t n)
{
    block_q5_1 *b = dst;
    uint8_t q[QK];
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        float mn, mx;
        minmax(src, QK, &mn, &mx);
        float d = (mx - mn) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(mn);
        for (int j = 0; j < QK; j++)
            q[j] = (uint8_t)CAIRN_MIN(31, (uint8_t)((src[j] - mn) * id + 0.5f));
        q5_pack(q, b[i].qs, b[i].qh);
    }
}

/* Half away from zero computed as floor(|v| + 0.5) in float, as ggufio.py
 * does (it differs from roundf only when |v| + 0.5 rounds up in float, e.g.
 * v = 0.5 - 2^-25; the shared Q8_0 test files were made that way). */
static inline int8_t round_q8(float v)
{
    float r = floorf(fabsf(v) + 0.5f);
    return (int8_t)(v < 0 ? -r : r);
}

/* Q8_0: d = amax / 127; q = round(x / d). */
void quant_q8_0_ref(const float *src, void *dst, int64_t n)
{
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        float amax;
        signed_absmax(src, QK, &amax);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK; j++)
            b[i].qs[j] = round_q8(src[j] * id);
    }
}

/* Q8_1: as Q8_0, plus s = d * sum(q) (d unrounded, as ggml) for the _1 types' min term. */
void quant_q8_1_ref(const float *src, void *dst, int64_t n)
{
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK; i++, src += QK) {
        float amax;
        signed_absmax(src, QK, &amax);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            b[i].qs[j] = round_q8(src[j] * id);
            sum += b[i].qs[j];
        }
        b[i].d = fp32_to_fp16(d);
        b[i].s = fp32_to_fp16((float)sum * d);
    }
}

/* ---------------------------------------------------------------- legacy quants: dot products */

void vec_dot_q4_0_q8_0_ref(int n, float *s, const void *x, const void *y)
{
    const block_q4_0 *a = x;
    const block_q8_0 *b = y;
    float sum = 0;
    for (int i = 0; i < n / QK; i++) {
        int isum = 0;
        for (int j = 0; j < QK / 2; j++)
            isum += ((a[i].qs[j] & 0x0F) - 8) * b[i].qs[j] + ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK / 2];
        sum += (float)isum * fp16_decode(a[i].d) * fp16_decode(b[i].d);
    }
    *s = sum;
}

void vec_dot_q4_1_q8_1_ref(int n, float *s, const void *x, const void *y)
{
    const block_q4_1 *a = x;
    const block_q8_1 *b = y;
    float sum = 0;
    for (int i = 0; i < n / QK; i++) {
        int isum = 0;
        for (int j = 0; j < QK / 2; j++)
            isum += (a[i].qs[j] & 0x0F) * b[i].qs[j] + (a[i].qs[j] >> 4) * b[i].qs[j + QK / 2];
        sum += (fp16_decode(a[i].d) * fp16_decode(b[i].d)) * (float)isum + fp16_decode(a[i].m) * fp16_decode(b[i].s);
    }
    *s = sum;
}

void vec_dot_q5_0_q8_0_ref(int n, float *s, const void *x, const void *y)
{
    const block_q5_0 *a = x;
    const block_q8_0 *b = y;
    int q[QK];
    float sum = 0;
    for (int i = 0; i < n / QK; i++) {
        q5_unpack(a[i].qs, a[i].qh, q);
        int isum = 0;
        for (int j = 0; j < QK; j++)
            isum += (q[j] - 16) * b[i].qs[j];
        sum += (float)isum * fp16_decode(a[i].d) * fp16_decode(b[i].d);
    }
    *s = sum;
}

void vec_dot_q5_1_q8_1_ref(int n, float *s, const void *x, const void *y)
{
    const block_q5_1 *a = x;
    const block_q8_1 *b = y;
    int q[QK];
    float sum = 0;
    for (int i = 0; i < n / QK; i++) {
        q5_unpack(a[i].qs, a[i].qh, q);
        int isum = 0;
        for (int j = 0; j < QK; j++)
            isum += q[j] * b[i].qs[j];
        sum += (fp16_decode(a[i].d) * fp16_decode(b[i].d)) * (float)isum + fp16_decode(a[i].m) * fp16_decode(b[i].s);
    }
    *s = sum;
}

void vec_dot_q8_0_q8_0_ref(int n, float *s, const void *x, const void *y)
{
    const block_q8_0 *a = x;
    const block_q8_0 *b = y;
    float sum = 0;
    for (int i = 0; i < n / QK; i++) {
        int isum = 0;
        for (int j = 0; j < QK; j++)
            isum += a[i].qs[j] * b[i].qs[j];
        sum += (float)isum * fp16_decode(a[i].d) * fp16_decode(b[i].d);
    }
    *s = sum;
}
