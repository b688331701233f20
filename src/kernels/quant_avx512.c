/*
 * quant_avx512.c — AVX-512 (F/BW/VL/DQ + VNNI) kernels (compiled with those flags by
 * filename suffix). Only reachable through kernels_register_avx512() (dispatch.h), which
 * dispatch.c calls after checking the CPU and OS.
 */
#define SIMD_SFX(name) name##_avx512
#include "kernels/simd_impl.h"

void gemm_register_avx512(qtype_traits *t);   /* gemm_avx512.c */
void gemm_amx_register(qtype_traits *t);      /* gemm_amx_avx512.c */

void kernels_register_avx512(qtype_traits *t)
{
    t[QT_F32].vec_dot = vec_dot_f32_f32_avx512;
    t[QT_F16].vec_dot = vec_dot_f16_f32_avx512;
    t[QT_F16].to_float = dequantize_row_f16_avx512;
    t[QT_F16].quantize_act = quantize_row_f16_avx512;
    t[QT_BF16].vec_dot = vec_dot_bf16_f32_avx512;
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
    gemm_register_avx512(t);
    gemm_amx_register(t);   /* overrides where the CPU has AMX */
}
