/*
 * quant_avx512.c — AVX-512 (F/BW/VL/DQ + VNNI) kernels (compiled with those flags by
 * filename suffix). Only reachable through kernels_register_avx512() (dispatch.h), which
 * dispatch.c calls after checking the CPU and OS.
 */
#define SIMD_SFX(name) name##_avx512
#include "kernels/simd_impl.h"

/* 512-bit float dots: products of two floats are exact in double and summed
 * in double like the reference; 8 doubles per vector instead of 4. */
static inline __m512d fma8(__m256 x, __m256 y, __m512d acc)
{
    return _mm512_fmadd_pd(_mm512_cvtps_pd(x), _mm512_cvtps_pd(y), acc);
}

#define FLOAT_DOT512(name, T, LOAD16, SCALAR) \
    static void name(int n, float *s, const void *vx, const void *vy) \
    { \
        const T *x = vx; \
        const float *y = vy; \
        __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd(), a2 = _mm512_setzero_pd(), a3 = _mm512_setzero_pd(); \
        int i = 0; \
        for (; i + 32 <= n; i += 32) { \
            __m512 x0 = LOAD16(x + i), x1 = LOAD16(x + i + 16); \
            __m512 y0 = _mm512_loadu_ps(y + i), y1 = _mm512_loadu_ps(y + i + 16); \
            a0 = fma8(_mm512_castps512_ps256(x0), _mm512_castps512_ps256(y0), a0); \
            a1 = fma8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x0), 1)), \
                      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(y0), 1)), a1); \
            a2 = fma8(_mm512_castps512_ps256(x1), _mm512_castps512_ps256(y1), a2); \
            a3 = fma8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x1), 1)), \
                      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(y1), 1)), a3); \
        } \
        double sum = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3))); \
        for (; i < n; i++) sum += (double)SCALAR(x[i]) * y[i]; \
        *s = (float)sum; \
    }

/* F16/BF16 weights are summed in float with 64 independent lanes: decode of
 * 16-bit models is bandwidth-bound and the double path above halves the
 * throughput; with 64 partial sums the rounding error stays ~1e-6 relative
 * on rows of thousands, far inside the model tests' logit tolerances (F32
 * weights keep the double path, which the F32 reference model needs). */
#define FLOAT_DOT512_F32ACC(name, T, LOAD16, SCALAR) \
    static void name(int n, float *s, const void *vx, const void *vy) \
    { \
        const T *x = vx; \
        const float *y = vy; \
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps(); \
        int i = 0; \
        for (; i + 64 <= n; i += 64) { \
            _mm_prefetch((const char *)(x + i) + 2048, _MM_HINT_T0); \
            _mm_prefetch((const char *)(x + i) + 2048 + 64, _MM_HINT_T0); \
            a0 = _mm512_fmadd_ps(LOAD16(x + i), _mm512_loadu_ps(y + i), a0); \
            a1 = _mm512_fmadd_ps(LOAD16(x + i + 16), _mm512_loadu_ps(y + i + 16), a1); \
            a2 = _mm512_fmadd_ps(LOAD16(x + i + 32), _mm512_loadu_ps(y + i + 32), a2); \
            a3 = _mm512_fmadd_ps(LOAD16(x + i + 48), _mm512_loadu_ps(y + i + 48), a3); \
        } \
        for (; i + 16 <= n; i += 16) \
            a0 = _mm512_fmadd_ps(LOAD16(x + i), _mm512_loadu_ps(y + i), a0); \
        double sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))); \
        for (; i < n; i++) sum += (double)SCALAR(x[i]) * y[i]; \
        *s = (float)sum; \
    }

static inline __m512 ld16_f32(const float *p) { return _mm512_loadu_ps(p); }
static inline __m512 ld16_f16(const fp16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline __m512 ld16_bf16(const uint16_t *p)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
static inline float id_f32(float v) { return v; }
FLOAT_DOT512(vec_dot_f32_f32_zmm, float, ld16_f32, id_f32)
FLOAT_DOT512_F32ACC(vec_dot_f16_f32_zmm, fp16_t, ld16_f16, _cvtsh_ss)
FLOAT_DOT512_F32ACC(vec_dot_bf16_f32_zmm, uint16_t, ld16_bf16, s_bf16)

void gemm_register_avx512(qtype_traits *t);   /* gemm_avx512.c */
void gemm_amx_register(qtype_traits *t, bool amx);   /* gemm_amx_avx512.c */
void gemv_register_avx512(qtype_traits *t);   /* gemv_avx512.c */

void kernels_register_avx512(qtype_traits *t, bool amx)
{
    t[QT_F32].vec_dot = vec_dot_f32_f32_zmm;
    t[QT_F16].vec_dot = vec_dot_f16_f32_zmm;
    t[QT_F16].to_float = dequantize_row_f16_avx512;
    t[QT_F16].quantize_act = quantize_row_f16_avx512;
    t[QT_BF16].vec_dot = vec_dot_bf16_f32_zmm;
    (void)vec_dot_f32_f32_avx512;
    (void)vec_dot_f16_f32_avx512;
    (void)vec_dot_bf16_f32_avx512;
    t[QT_BF16].to_float = dequantize_row_bf16_avx512;
    t[QT_BF16].quantize_act = quantize_row_bf16_avx512;
    t[QT_Q4_0].vec_dot = vec_dot_q4_0_q8_0_avx512;
    t[QT_Q4_0].to_float = dequantize_row_q4_0_avx512;
    t[QT_Q4_1].vec_dot = vec_dot_q4_1_q8_1_avx512;
    t[QT_Q5_0].vec_dot = vec_dot_q5_0_q8_0_avx512;
    t[QT_Q5_1].vec_dot = vec_dot_q5_1_q8_1_avx512;
    t[QT_Q8_0].vec_dot = vec_dot_q8_0_q8_0_avx512;
    t[QT_Q8_0].to_float = dequantize_row_q8_0_avx512;
    t[QT_Q8_0].quantize_act = quantize_row_q8_0_avx512;
    t[QT_Q8_1].quantize_act = quantize_row_q8_1_avx512;
    t[QT_Q2_K].vec_dot = vec_dot_q2_K_q8_K_avx512;
    t[QT_Q3_K].vec_dot = vec_dot_q3_K_q8_K_avx512;
    t[QT_Q4_K].vec_dot = vec_dot_q4_K_q8_K_avx512;
    t[QT_Q4_K].to_float = dequantize_row_q4_K_avx512;
    t[QT_Q5_K].vec_dot = vec_dot_q5_K_q8_K_avx512;
    t[QT_Q6_K].vec_dot = vec_dot_q6_K_q8_K_avx512;
    t[QT_Q6_K].to_float = dequantize_row_q6_K_avx512;
    t[QT_Q8_K].quantize_act = quantize_row_q8_K_avx512;
    (void)vec_dot_f16_f16_avx512;
    (void)vec_dot_bf16_bf16_avx512;
    gemm_amx_register(t, amx);  /* AMX F16/BF16 tile kernels, when dispatch.c allows AMX */
    gemm_register_avx512(t);    /* VNNI tile kernels, AMX int8 ones where available */
    gemv_register_avx512(t);    /* multi-row decode kernels */
}
