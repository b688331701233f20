/*
 * vec_dist_avx2.c — AVX2 distance kernels (compiled with -mavx2 -mfma by
 * filename suffix; only called after vec_dot_*_best's CPU check).
 *
 * int8 x int8: maddubs needs an unsigned operand, so |a| is multiplied by
 * b carrying a's sign (sign_epi8). Codes are in [-127, 127]: a pair sum is at
 * most 2 * 127 * 127 = 32258 and cannot saturate int16.
 */
#include "index/vec.h"
#include "kernels/fdot_avx2.h"
#include <immintrin.h>

float vec_dot_f32_avx2(const float *a, const float *b, size_t n)
{
    return fdot_f32_avx2(a, b, n);
}

int32_t vec_dot_i8_avx2(const int8_t *a, const int8_t *b, size_t n)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(a + i));
        __m256i y = _mm256_loadu_si256((const __m256i *)(b + i));
        __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    const __m128i ones4 = _mm_set1_epi16(1);
    if (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(a + i));
        __m128i y = _mm_loadu_si128((const __m128i *)(b + i));
        h = _mm_add_epi32(h, _mm_madd_epi16(_mm_maddubs_epi16(_mm_sign_epi8(x, x), _mm_sign_epi8(y, x)), ones4));
        i += 16;
    }
    if (i + 8 <= n) {
        __m128i x = _mm_loadl_epi64((const __m128i *)(a + i));
        __m128i y = _mm_loadl_epi64((const __m128i *)(b + i));
        h = _mm_add_epi32(h, _mm_madd_epi16(_mm_maddubs_epi16(_mm_sign_epi8(x, x), _mm_sign_epi8(y, x)), ones4));
        i += 8;
    }
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t s = _mm_cvtsi128_si32(h);
    for (; i < n; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}
