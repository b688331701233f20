/*
 * vec_dist.c — distance kernels of the vector index: scalar references
 * (the definition the SIMD versions are tested against) and the run-time
 * choice of the best version (the kernels part's CPU check and its
 * CAIRN_KERNELS cap apply).
 */
#include "index/vec.h"
#include "kernels/quant.h"
#include <math.h>

float vec_dot_f32_ref(const float *a, const float *b, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

int32_t vec_dot_i8_ref(const int8_t *a, const int8_t *b, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}

vec_dot_f32_fn vec_dot_f32_best(void)
{
    return kernels_selected() >= KERNELS_AVX2 ? vec_dot_f32_avx2 : vec_dot_f32_ref;
}

vec_dot_i8_fn vec_dot_i8_best(void)
{
    return kernels_selected() >= KERNELS_AVX2 ? vec_dot_i8_avx2 : vec_dot_i8_ref;
}

float vec_quantize_i8(const float *x, size_t dim, int8_t *q, size_t dpad)
{
    float mx = 0;
    for (size_t i = 0; i < dim; i++)
        mx = fmaxf(mx, fabsf(x[i]));
    float s = mx / 127.0f, inv = mx > 0 ? 127.0f / mx : 0;
    for (size_t i = 0; i < dim; i++) {
        long v = lrintf(x[i] * inv);
        q[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    for (size_t i = dim; i < dpad; i++)
        q[i] = 0;
    return s;
}
