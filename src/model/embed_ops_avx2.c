/*
 * embed_ops_avx2.c — AVX2 + FMA versions of the encoder's row steps
 * (embed_ops.h); compiled with those flags by file name, called only after
 * embed_ops_avx2_ok(). Each is tested against its scalar reference
 * (tests/test_embed_ops.c).
 *
 * Profile that motivated them (MiniLM shape, Q8_0, 64-token sentences, one
 * thread, scalar steps): matmul 55%, attention 21%, GELU's tanhf/expm1f 17%.
 */
#include "model/embed_ops.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

bool embed_ops_avx2_ok(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

/* e^x for 8 floats, x clamped to [-87, 88]: x = n ln2 + r, |r| <= ln2/2,
 * e^r by its degree-6 Taylor-like minimax polynomial, 2^n put into the
 * exponent bits. Relative error ~2 ulp. */
static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);     /* ln2 split in two parts */
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(y), e));
}

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Sums of 8 vectors, one per lane: out[i] = sum of the lanes of v[i]. */
static inline __m256 hsum8x8(const __m256 v[8])
{
    __m256 a = _mm256_hadd_ps(v[0], v[1]), b = _mm256_hadd_ps(v[2], v[3]);
    __m256 c = _mm256_hadd_ps(v[4], v[5]), d = _mm256_hadd_ps(v[6], v[7]);
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    /* ab lanes: [s0 s1 s2 s3 | s0' s1' s2' s3'] (low / high 128-bit halves of v0..v3) */
    __m256 lo = _mm256_permute2f128_ps(ab, cd, 0x20), hi = _mm256_permute2f128_ps(ab, cd, 0x31);
    return _mm256_add_ps(lo, hi);
}

void embed_layernorm_avx2(float *x, const float *add, const float *bias, const float *w, const float *b, int d,
                          float eps)
{
    if (d % 8) {
        embed_layernorm_ref(x, add, bias, w, b, d, eps);
        return;
    }
    __m256 s = _mm256_setzero_ps();
    for (int i = 0; i < d; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (add)
            v = _mm256_add_ps(v, _mm256_loadu_ps(add + i));
        if (bias)
            v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(x + i, v);
        s = _mm256_add_ps(s, v);
    }
    float mean = hsum8(s) / (float)d;
    __m256 m = _mm256_set1_ps(mean), q = _mm256_setzero_ps();
    for (int i = 0; i < d; i += 8) {
        __m256 c = _mm256_sub_ps(_mm256_loadu_ps(x + i), m);
        q = _mm256_fmadd_ps(c, c, q);
    }
    float inv = 1.0f / sqrtf(hsum8(q) / (float)d + eps);
    __m256 vi = _mm256_set1_ps(inv);
    for (int i = 0; i < d; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), vi), _mm256_loadu_ps(w + i));
        if (b)
            y = _mm256_add_ps(y, _mm256_loadu_ps(b + i));
        _mm256_storeu_ps(x + i, y);
    }
}

/* gelu(v) = 0.5 v (1 + tanh(u)) = v / (1 + e^(-2u)), u = sqrt(2/pi) (v + 0.044715 v^3) */
void embed_gelu_bias_avx2(float *f, const float *b, int n)
{
    const __m256 k2 = _mm256_set1_ps(-2.0f * 0.7978845608028654f), c = _mm256_set1_ps(0.044715f);
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(f + i);
        if (b)
            v = _mm256_add_ps(v, _mm256_loadu_ps(b + i));
        __m256 v2 = _mm256_mul_ps(v, v);
        __m256 u = _mm256_mul_ps(_mm256_mul_ps(k2, v), _mm256_fmadd_ps(c, v2, one));
        _mm256_storeu_ps(f + i, _mm256_div_ps(v, _mm256_add_ps(one, exp8(u))));
    }
    if (i < n)
        embed_gelu_bias_ref(f + i, b ? b + i : NULL, n - i);
}

void embed_silu_mul_avx2(float *g, const float *u, size_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(g + i);
        __m256 s = _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, v))));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    if (i < n)
        embed_silu_mul_ref(g + i, u + i, n - i);
}

/* Scores 8 keys at a time (one vector of 8 dot products via hsum8x8), the
 * softmax with exp8, then out = sum p_j v_j with p_j broadcast. Head sizes
 * that are not multiples of 8 take the reference. */
void embed_attend_row_avx2(const float *q, const float *K, const float *V, size_t ld, int n, int hd, float scale,
                           float *sc, float *out)
{
    if (hd % 8 || hd > 256) {
        embed_attend_row_ref(q, K, V, ld, n, hd, scale, sc, out);
        return;
    }
    int nv = hd / 8;
    __m256 qv[32];
    for (int c = 0; c < nv; c++)
        qv[c] = _mm256_mul_ps(_mm256_loadu_ps(q + 8 * c), _mm256_set1_ps(scale));
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 acc[8];
        for (int r = 0; r < 8; r++) {
            const float *k = K + (size_t)(j + r) * ld;
            __m256 a = _mm256_mul_ps(qv[0], _mm256_loadu_ps(k));
            for (int c = 1; c < nv; c++)
                a = _mm256_fmadd_ps(qv[c], _mm256_loadu_ps(k + 8 * c), a);
            acc[r] = a;
        }
        __m256 s = hsum8x8(acc);
        _mm256_storeu_ps(sc + j, s);
        mx = _mm256_max_ps(mx, s);
    }
    float m = -INFINITY;
    {
        float t[8];
        _mm256_storeu_ps(t, mx);
        for (int r = 0; r < 8; r++)
            m = t[r] > m ? t[r] : m;
    }
    for (; j < n; j++) {
        const float *k = K + (size_t)j * ld;
        __m256 a = _mm256_mul_ps(qv[0], _mm256_loadu_ps(k));
        for (int c = 1; c < nv; c++)
            a = _mm256_fmadd_ps(qv[c], _mm256_loadu_ps(k + 8 * c), a);
        sc[j] = hsum8(a);
        m = sc[j] > m ? sc[j] : m;
    }
    __m256 vm = _mm256_set1_ps(m), vs = _mm256_setzero_ps();
    j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 p = exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + j), vm));
        _mm256_storeu_ps(sc + j, p);
        vs = _mm256_add_ps(vs, p);
    }
    float sum = hsum8(vs);
    for (; j < n; j++) {
        __m256 p = exp8(_mm256_set1_ps(sc[j] - m));
        sc[j] = _mm_cvtss_f32(_mm256_castps256_ps128(p));
        sum += sc[j];
    }
    __m256 o[32];
    for (int c = 0; c < nv; c++)
        o[c] = _mm256_setzero_ps();
    for (j = 0; j < n; j++) {
        __m256 p = _mm256_broadcast_ss(sc + j);
        const float *v = V + (size_t)j * ld;
        for (int c = 0; c < nv; c++)
            o[c] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * c), o[c]);
    }
    __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int c = 0; c < nv; c++)
        _mm256_storeu_ps(out + 8 * c, _mm256_mul_ps(o[c], inv));
}
