/*
 * quant_ref.h — the scalar reference kernels (quant_ref.c, quant_kref.c) and
 * small helpers shared by the kernel files. Internal to src/kernels/.
 *
 * SIMD files may call the reference functions for tails or as building
 * blocks; tests compare every SIMD kernel against them.
 */
#ifndef CAIRN_QUANT_REF_H
#define CAIRN_QUANT_REF_H

#include "kernels/blocks.h"
#include "kernels/quant.h"
#include <math.h>
#include <string.h>

/* Exact IEEE half -> float (inline, for hot loops). */
static inline float fp16_decode(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | (m << 13);          /* inf / nan (payload kept) */
    } else if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else {                                        /* subnormal: m * 2^-24, exact in float */
            float f = (float)m * 0x1p-24f;
            memcpy(&bits, &f, 4);
            bits |= sign;
        }
    } else {
        bits = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Round to nearest, ties to even, for |v| < 2^22 (what the quantizers need):
 * adding 1.5*2^23 puts the integer in the low mantissa bits. */
static inline int nearest_int(float v)
{
    float val = v + 12582912.f;
    int32_t i;
    memcpy(&i, &val, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* Q4_K / Q5_K packed 6-bit scale and min of sub-block j (0..7). */
static inline void k4_scale_min(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q3_K: unpack the 16 6-bit scales (already minus 32). */
void q3k_unpack_scales(const uint8_t packed[12], int8_t out[16]);

/* ---- reference kernels: dequantize (to_float), quantize (from_float), vec_dot ---- */
#define CAIRN_REF_DECL(t) \
    void dequant_##t##_ref(const void *src, float *dst, int64_t n); \
    void quant_##t##_ref(const float *src, void *dst, int64_t n);
CAIRN_REF_DECL(f32)
CAIRN_REF_DECL(f16)
CAIRN_REF_DECL(bf16)
CAIRN_REF_DECL(q4_0)
CAIRN_REF_DECL(q4_1)
CAIRN_REF_DECL(q5_0)
CAIRN_REF_DECL(q5_1)
CAIRN_REF_DECL(q8_0)
CAIRN_REF_DECL(q8_1)
CAIRN_REF_DECL(q2_K)
CAIRN_REF_DECL(q3_K)
CAIRN_REF_DECL(q4_K)
CAIRN_REF_DECL(q5_K)
CAIRN_REF_DECL(q6_K)
CAIRN_REF_DECL(q8_K)
#undef CAIRN_REF_DECL

void vec_dot_f32_f32_ref(int n, float *s, const void *x, const void *y);
void vec_dot_f16_f32_ref(int n, float *s, const void *x, const void *y);
void vec_dot_bf16_f32_ref(int n, float *s, const void *x, const void *y);
void vec_dot_q4_0_q8_0_ref(int n, float *s, const void *x, const void *y);
void vec_dot_q4_1_q8_1_ref(int n, float *s, const void *x, const void *y);
void vec_dot_q5_0_q8_0_ref(int n, float *s, const void *x, const void *y);
void vec_dot_q5_1_q8_1_ref(int n, float *s, const void *x, const void *y);
void vec_dot_q8_0_q8_0_ref(int n, float *s, const void *x, const void *y);
void vec_dot_q2_K_q8_K_ref(int n, float *s, const void *x, const void *y);
void vec_dot_q3_K_q8_K_ref(int n, float *s, const void *x, const void *y);
void vec_dot_q4_K_q8_K_ref(int n, float *s, const void *x, const void *y);
void vec_dot_q5_K_q8_K_ref(int n, float *s, const void *x, const void *y);
void vec_dot_q6_K_q8_K_ref(int n, float *s, const void *x, const void *y);

#endif
