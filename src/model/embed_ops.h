/*
 * embed_ops.h — the per-token and per-head steps of the encoder forward pass
 * (internal to src/model). Each has a plain scalar reference (*_ref, in
 * embed_ops.c) and, where it pays, an AVX2 + FMA version (embed_ops_avx2.c)
 * picked at run time; tests compare the two.
 *
 * Every function computes one row (or one head of one row) from its inputs
 * only, in a fixed order, so results never depend on batch composition or
 * threads.
 */
#ifndef CAIRN_MODEL_EMBED_OPS_H
#define CAIRN_MODEL_EMBED_OPS_H

#include <stdbool.h>
#include <stddef.h>

/* x = LN(x + add + bias) * w + b over d values; add, bias, b may be NULL. */
void embed_layernorm(float *x, const float *add, const float *bias, const float *w, const float *b, int d, float eps);
/* f = gelu(f + b), GELU with the tanh approximation (as ggml); b may be NULL. */
void embed_gelu_bias(float *f, const float *b, int n);
/* g = silu(g) * u (matmul_glu's act for SwiGLU). */
void embed_silu_mul(float *g, const float *u, size_t n);
/* NeoX RoPE on one head: pairs (x[i], x[i + half]) rotated by (cos[i], sin[i]). */
void embed_rope_neox(float *x, const float *cos, const float *sin, int half);
/* out (hd) = softmax(q . k_j * scale) v over the n keys/values k_j = K + j*ld,
 * v_j = V + j*ld; sc: n floats of scratch. */
void embed_attend_row(const float *q, const float *K, const float *V, size_t ld, int n, int hd, float scale,
                      float *sc, float *out);
/* out (d) = mean of the n rows of x (d floats each). */
void embed_mean_rows(const float *x, int n, int d, float *out);

/* Scalar references. */
void embed_layernorm_ref(float *x, const float *add, const float *bias, const float *w, const float *b, int d,
                         float eps);
void embed_gelu_bias_ref(float *f, const float *b, int n);
void embed_silu_mul_ref(float *g, const float *u, size_t n);
void embed_attend_row_ref(const float *q, const float *K, const float *V, size_t ld, int n, int hd, float scale,
                          float *sc, float *out);

/* AVX2 versions (embed_ops_avx2.c); call only when embed_ops_avx2_ok(). */
bool embed_ops_avx2_ok(void);
void embed_layernorm_avx2(float *x, const float *add, const float *bias, const float *w, const float *b, int d,
                          float eps);
void embed_gelu_bias_avx2(float *f, const float *b, int n);
void embed_silu_mul_avx2(float *g, const float *u, size_t n);
void embed_attend_row_avx2(const float *q, const float *K, const float *V, size_t ld, int n, int hd, float scale,
                           float *sc, float *out);

#endif
