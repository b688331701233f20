/* ops_avx2.c — element-wise ops of the forward pass in AVX2 + FMA (picked at run time). */
#include "infer/ops.h"
#include "infer/simd_exp.h"

void swiglu_avx2(float *g, const float *u, size_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256 e = exp_neg_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x));
        __m256 silu = _mm256_div_ps(x, _mm256_add_ps(one, e));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        float e = _mm256_cvtss_f32(exp_neg_avx2(_mm256_set1_ps(-g[i])));
        g[i] = g[i] / (1.0f + e) * u[i];
    }
}
