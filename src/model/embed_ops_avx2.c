/*
 * embed_ops_avx2.c — AVX2 + FMA versions of the encoder's row steps
 * (embed_ops.h); compiled with those flags by file name. For now the
 * references; vectorised bodies replace them one by one, each tested
 * against its reference.
 */
#include "model/embed_ops.h"

#include <cpuid.h>

bool embed_ops_avx2_ok(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

void embed_layernorm_avx2(float *x, const float *add, const float *bias, const float *w, const float *b, int d,
                          float eps)
{
    embed_layernorm_ref(x, add, bias, w, b, d, eps);
}

void embed_gelu_bias_avx2(float *f, const float *b, int n) { embed_gelu_bias_ref(f, b, n); }

void embed_silu_mul_avx2(float *g, const float *u, size_t n) { embed_silu_mul_ref(g, u, n); }

void embed_attend_row_avx2(const float *q, const float *K, const float *V, size_t ld, int n, int hd, float scale,
                           float *sc, float *out)
{
    embed_attend_row_ref(q, K, V, ld, n, hd, scale, sc, out);
}
