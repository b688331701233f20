/*
 * fdot_avx2.h — the one float dot product for AVX2+FMA callers outside the
 * quantized kernels (attention rows, the vector index's float rescoring).
 * Include only from files compiled with the AVX2 flags (`*_avx2.c`).
 * Two 8-lane accumulators, then a fixed horizontal sum, then the scalar
 * tail: the summation order is fixed, so results are reproducible.
 */
#ifndef CAIRN_FDOT_AVX2_H
#define CAIRN_FDOT_AVX2_H

#include <immintrin.h>
#include <stddef.h>

static inline float fdot_f32_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

#endif
