/*
 * embed_ops.c — scalar references of the encoder's row steps (embed_ops.h)
 * and the run-time choice between them and the AVX2 versions.
 *
 * The AVX2 versions are used when the CPU has AVX2 + FMA and the kernels
 * level is not "scalar" (CAIRN_KERNELS=scalar gives the references, as for
 * the matmul kernels).
 */
#include "model/embed_ops.h"
#include "kernels/quant.h"

#include <math.h>
#include <string.h>

void embed_layernorm_ref(float *x, const float *add, const float *bias, const float *w, const float *b, int d,
                         float eps)
{
    double sum = 0;
    for (int i = 0; i < d; i++) {
        float v = x[i];
        if (add)
            v += add[i];
        if (bias)
            v += bias[i];
        x[i] = v;
        sum += v;
    }
    float mean = (float)(sum / d);
    double var = 0;
    for (int i = 0; i < d; i++) {
        float c = x[i] - mean;
        var += (double)c * c;
    }
    float inv = (float)(1.0 / sqrt(var / d + (double)eps));
    for (int i = 0; i < d; i++) {
        float y = (x[i] - mean) * inv * w[i];
        x[i] = b ? y + b[i] : y;
    }
}

void embed_gelu_bias_ref(float *f, const float *b, int n)
{
    const float k = 0.7978845608028654f;   /* sqrt(2 / pi) */
    for (int i = 0; i < n; i++) {
        float v = b ? f[i] + b[i] : f[i];
        f[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

void embed_silu_mul_ref(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void embed_rope_neox(float *x, const float *cs, const float *sn, int half)
{
    for (int i = 0; i < half; i++) {
        float a = x[i], b = x[i + half];
        x[i] = a * cs[i] - b * sn[i];
        x[i + half] = a * sn[i] + b * cs[i];
    }
}

void embed_attend_row_ref(const float *q, const float *K, const float *V, size_t ld, int n, int hd, float scale,
                          float *sc, float *out)
{
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        const float *k = K + (size_t)j * ld;
        float s = 0;
        for (int i = 0; i < hd; i++)
            s += q[i] * k[i];
        sc[j] = s * scale;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    float sum = 0;
    for (int j = 0; j < n; j++) {
        sc[j] = expf(sc[j] - mx);
        sum += sc[j];
    }
    memset(out, 0, (size_t)hd * sizeof *out);
    for (int j = 0; j < n; j++) {
        const float *v = V + (size_t)j * ld;
        float p = sc[j];
        for (int i = 0; i < hd; i++)
            out[i] += p * v[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < hd; i++)
        out[i] *= inv;
}

void embed_mean_rows(const float *x, int n, int d, float *out)
{
    for (int i = 0; i < d; i++) {
        double s = 0;
        for (int t = 0; t < n; t++)
            s += x[(size_t)t * d + i];
        out[i] = (float)(s / n);
    }
}

void embed_gemm_panel_ref(const float *x, size_t ldx, int m, int k, const float *p, float *y, size_t ldy, int nc)
{
    for (int t = 0; t < m; t++)
        for (int j = 0; j < nc; j++) {
            float acc = 0.0f;
            for (int kk = 0; kk < k; kk++)
                acc = fmaf(x[(size_t)t * ldx + kk], p[(size_t)kk * 16 + j], acc);
            y[(size_t)t * ldy + j] = acc;
        }
}

static bool use_avx2(void)
{
    static int v = -1;   /* racy first use writes the same value from every thread */
    if (v < 0)
        v = embed_ops_avx2_ok() && strcmp(kernels_isa(), "scalar") != 0;
    return v;
}

bool embed_gemm_fast(void) { return use_avx2(); }

void embed_layernorm(float *x, const float *add, const float *bias, const float *w, const float *b, int d, float eps)
{
    if (use_avx2())
        embed_layernorm_avx2(x, add, bias, w, b, d, eps);
    else
        embed_layernorm_ref(x, add, bias, w, b, d, eps);
}

void embed_gelu_bias(float *f, const float *b, int n)
{
    if (use_avx2())
        embed_gelu_bias_avx2(f, b, n);
    else
        embed_gelu_bias_ref(f, b, n);
}

void embed_silu_mul(float *g, const float *u, size_t n)
{
    if (use_avx2())
        embed_silu_mul_avx2(g, u, n);
    else
        embed_silu_mul_ref(g, u, n);
}

void embed_attend_row(const float *q, const float *K, const float *V, size_t ld, int n, int hd, float scale,
                      float *sc, float *out)
{
    if (use_avx2())
        embed_attend_row_avx2(q, K, V, ld, n, hd, scale, sc, out);
    else
        embed_attend_row_ref(q, K, V, ld, n, hd, scale, sc, out);
}
