/*
 * embed_gemm_avx2.c — the encoder's dense products as a float GEMM
 * (embed_ops.h: embed_gemm_panel_*): y (m, 16) = x (m, k) P (k, 16) for a
 * panel P of 16 dequantized weight rows, stored k-major (P[k*16 + j] is
 * weight row j, column k).
 *
 * Why a float GEMM: an encoder multiplies every weight matrix by hundreds
 * of tokens at once, so a weight row is dequantized once per panel and
 * reused by every token of the chunk (cost ~1/96 of the products), and the
 * products run on the FMA units at 16 outputs x 6 tokens per step (12
 * accumulators, 2 panel loads and 6 broadcasts per k) instead of one
 * integer dot product per output with its horizontal sum. The activations
 * stay float (no Q8 rounding).
 *
 * Each output is one fused multiply-add chain over k in order, starting at
 * 0, whatever its place in the tile or the tile's height: the scalar
 * reference (fmaf in the same order, embed_ops.c) gives the same bits, and
 * so does every batch composition.
 */
#include "model/embed_ops.h"

#include <immintrin.h>
#include <string.h>

#define MR 6

void embed_gemm_panel_avx2(const float *x, size_t ldx, int m, int k, const float *p, float *y, size_t ldy, int nc)
{
    for (int t0 = 0; t0 < m; t0 += MR) {
        int mr = m - t0 < MR ? m - t0 : MR;
        const float *xr = x + (size_t)t0 * ldx;
        __m256 a0[MR], a1[MR];
        for (int i = 0; i < MR; i++)
            a0[i] = a1[i] = _mm256_setzero_ps();
        if (mr == MR) {
            const float *x0 = xr, *x1 = xr + ldx, *x2 = xr + 2 * ldx, *x3 = xr + 3 * ldx, *x4 = xr + 4 * ldx,
                        *x5 = xr + 5 * ldx;
            for (int kk = 0; kk < k; kk++) {
                __m256 b0 = _mm256_load_ps(p + (size_t)kk * 16), b1 = _mm256_load_ps(p + (size_t)kk * 16 + 8);
                __m256 v;
                v = _mm256_broadcast_ss(x0 + kk); a0[0] = _mm256_fmadd_ps(v, b0, a0[0]); a1[0] = _mm256_fmadd_ps(v, b1, a1[0]);
                v = _mm256_broadcast_ss(x1 + kk); a0[1] = _mm256_fmadd_ps(v, b0, a0[1]); a1[1] = _mm256_fmadd_ps(v, b1, a1[1]);
                v = _mm256_broadcast_ss(x2 + kk); a0[2] = _mm256_fmadd_ps(v, b0, a0[2]); a1[2] = _mm256_fmadd_ps(v, b1, a1[2]);
                v = _mm256_broadcast_ss(x3 + kk); a0[3] = _mm256_fmadd_ps(v, b0, a0[3]); a1[3] = _mm256_fmadd_ps(v, b1, a1[3]);
                v = _mm256_broadcast_ss(x4 + kk); a0[4] = _mm256_fmadd_ps(v, b0, a0[4]); a1[4] = _mm256_fmadd_ps(v, b1, a1[4]);
                v = _mm256_broadcast_ss(x5 + kk); a0[5] = _mm256_fmadd_ps(v, b0, a0[5]); a1[5] = _mm256_fmadd_ps(v, b1, a1[5]);
            }
        } else {
            for (int kk = 0; kk < k; kk++) {
                __m256 b0 = _mm256_load_ps(p + (size_t)kk * 16), b1 = _mm256_load_ps(p + (size_t)kk * 16 + 8);
                for (int i = 0; i < mr; i++) {
                    __m256 v = _mm256_broadcast_ss(xr + (size_t)i * ldx + kk);
                    a0[i] = _mm256_fmadd_ps(v, b0, a0[i]);
                    a1[i] = _mm256_fmadd_ps(v, b1, a1[i]);
                }
            }
        }
        for (int i = 0; i < mr; i++) {
            float *yr = y + (size_t)(t0 + i) * ldy;
            if (nc == 16) {
                _mm256_storeu_ps(yr, a0[i]);
                _mm256_storeu_ps(yr + 8, a1[i]);
            } else {
                float t[16];
                _mm256_storeu_ps(t, a0[i]);
                _mm256_storeu_ps(t + 8, a1[i]);
                memcpy(yr, t, (size_t)nc * sizeof(float));
            }
        }
    }
}
