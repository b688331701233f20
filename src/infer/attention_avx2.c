/* attention_avx2.c — AVX2+FMA dot and axpy for attention (picked at run time). */
#include "infer/attention.h"
#include "infer/simd_exp.h"
#include "kernels/fdot_avx2.h"
#include <immintrin.h>
#include <math.h>

float attn_dot_avx2(const float *a, const float *b, int n)
{
    return fdot_f32_avx2(a, b, (size_t)n);
}

void attn_axpy_avx2(float *y, float a, const float *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* Same accumulation order as attn_dot_avx2 on the converted values, so the
 * direct F16 path and the dequantize-then-dot path give identical results. */
float attn_dot_f16_avx2(const float *a, const uint16_t *b, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i)));
        __m256 b1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i + 8)));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), b0, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), b1, s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i))), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; i < n; i++)
        s += a[i] * _cvtsh_ss(b[i]);
    return s;
}

void attn_axpy_f16_avx2(float *y, float a, const uint16_t *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++)
        y[i] += a * _cvtsh_ss(x[i]);
}

static inline float hsum(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* One token, one K/V head, `rep` query heads (see attention.h). Each cached
 * row is converted once and used by all rep heads. */
void attn_group_f16_avx2(const float *q, int rep, int hd, const uint16_t *k, const uint16_t *v, size_t stride,
                         int n_see, float scale, bool round, float *sc, float *out)
{
    const int nv = hd / 8;          /* hd % 8 == 0 is checked by the caller */
    /* scores (rep, n_see): four positions at a time, their four sums
     * reduced together and stored as one vector */
    int p4 = 0;
    for (; p4 + 4 <= n_see; p4 += 4) {
        const uint16_t *k0 = k + (size_t)p4 * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        for (int r = 0; r < rep; r++) {
            const float *qr = q + (size_t)r * hd;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            for (int i = 0; i < nv; i++) {
                __m256 qv = _mm256_loadu_ps(qr + 8 * i);
                a0 = _mm256_fmadd_ps(qv, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k0 + 8 * i))), a0);
                a1 = _mm256_fmadd_ps(qv, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k1 + 8 * i))), a1);
                a2 = _mm256_fmadd_ps(qv, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k2 + 8 * i))), a2);
                a3 = _mm256_fmadd_ps(qv, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k3 + 8 * i))), a3);
            }
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            _mm_storeu_ps(sc + (size_t)r * n_see + p4, _mm_mul_ps(s4, _mm_set1_ps(scale)));
        }
    }
    for (int p = p4; p < n_see; p++) {
        const uint16_t *kr = k + (size_t)p * stride;
        for (int r = 0; r < rep; r++) {
            const float *qr = q + (size_t)r * hd;
            __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
            int i = 0;
            for (; i + 2 <= nv; i += 2) {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + 8 * i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + 8 * i))), s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + 8 * i + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + 8 * i + 8))), s1);
            }
            if (i < nv)
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + 8 * i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + 8 * i))), s0);
            sc[(size_t)r * n_see + p] = hsum(_mm256_add_ps(s0, s1)) * scale;
        }
    }
    /* softmax per head; probabilities optionally rounded to F16 */
    for (int r = 0; r < rep; r++) {
        float *s = sc + (size_t)r * n_see;
        __m256 mx8 = _mm256_set1_ps(-INFINITY);
        int p = 0;
        for (; p + 8 <= n_see; p += 8)
            mx8 = _mm256_max_ps(mx8, _mm256_loadu_ps(s + p));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx8), _mm256_extractf128_ps(mx8, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float mx = _mm_cvtss_f32(m4);
        for (; p < n_see; p++)
            mx = s[p] > mx ? s[p] : mx;
        __m256 vmx = _mm256_set1_ps(mx), sum8 = _mm256_setzero_ps();
        for (p = 0; p + 8 <= n_see; p += 8) {
            __m256 e = exp_neg_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + p), vmx));
            _mm256_storeu_ps(s + p, e);
            sum8 = _mm256_add_ps(sum8, e);
        }
        float sum = hsum(sum8);
        for (; p < n_see; p++) {
            float e = _mm256_cvtss_f32(exp_neg_avx2(_mm256_set1_ps(s[p] - mx)));
            s[p] = e;
            sum += e;
        }
        __m256 inv = _mm256_set1_ps(1.0f / sum);
        for (p = 0; p + 8 <= n_see; p += 8) {
            __m256 w = _mm256_mul_ps(_mm256_loadu_ps(s + p), inv);
            if (round)
                w = _mm256_cvtph_ps(_mm256_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT));
            _mm256_storeu_ps(s + p, w);
        }
        for (; p < n_see; p++) {
            float w = s[p] * (1.0f / sum);
            s[p] = round ? _cvtsh_ss(_cvtss_sh(w, _MM_FROUND_TO_NEAREST_INT)) : w;
        }
    }
    /* out (rep, hd) = probabilities . V: accumulators stay in registers
     * over all positions, 32 values (4 vectors) of one head at a time */
    for (int r = 0; r < rep; r++) {
        const float *w = sc + (size_t)r * n_see;
        float *o = out + (size_t)r * hd;
        int i = 0;
        for (; i + 4 <= nv; i += 4) {
            __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps(), c3 = _mm256_setzero_ps();
            const uint16_t *vp = v + 8 * i;
            for (int p = 0; p < n_see; p++, vp += stride) {
                __m256 wp = _mm256_broadcast_ss(w + p);
                c0 = _mm256_fmadd_ps(wp, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)vp)), c0);
                c1 = _mm256_fmadd_ps(wp, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vp + 8))), c1);
                c2 = _mm256_fmadd_ps(wp, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vp + 16))), c2);
                c3 = _mm256_fmadd_ps(wp, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vp + 24))), c3);
            }
            _mm256_storeu_ps(o + 8 * i, c0);
            _mm256_storeu_ps(o + 8 * i + 8, c1);
            _mm256_storeu_ps(o + 8 * i + 16, c2);
            _mm256_storeu_ps(o + 8 * i + 24, c3);
        }
        for (; i < nv; i++) {
            __m256 c0 = _mm256_setzero_ps();
            const uint16_t *vp = v + 8 * i;
            for (int p = 0; p < n_see; p++, vp += stride)
                c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + p), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)vp)), c0);
            _mm256_storeu_ps(o + 8 * i, c0);
        }
    }
}
