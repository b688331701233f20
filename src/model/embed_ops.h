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

/* The dense-product tile (embed_gemm_avx2.c): y (m rows, ldy apart; nc <= 16
 * outputs each) = x (m rows of k, ldx apart) times the panel p (k x 16,
 * k-major, 32-byte aligned: p[kk*16 + j] = weight row j at column kk). Each
 * output is the fused multiply-add chain over kk = 0..k-1 from 0, so the
 * reference and the AVX2 version agree bit for bit. */
void embed_gemm_panel_ref(const float *x, size_t ldx, int m, int k, const float *p, float *y, size_t ldy, int nc);
void embed_gemm_panel_avx2(const float *x, size_t ldx, int m, int k, const float *p, float *y, size_t ldy, int nc);

/* True when the AVX2 steps (and so the float GEMM) are in use. */
bool embed_gemm_fast(void);

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
