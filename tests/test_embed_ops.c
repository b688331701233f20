/*
 * test_embed_ops.c — the AVX2 row steps of the encoder (model/embed_ops.h)
 * against their scalar references on random inputs of several sizes
 * (including sizes that are not multiples of 8, and attention over 1..70
 * keys), and the float GEMM tile bit for bit. Tolerances relative to the largest output magnitude: 1e-5 for
 * layer norm and attention (float summation order), 1e-5 for GELU and SiLU
 * (a polynomial e^x of ~2 ulp against libm). Skipped without AVX2.
 */
#include "model/embed_ops.h"
#include "t.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1ull << 23))) - 1.0f;
}

static double maxdiff(const float *a, const float *b, int n, double *scale)
{
    double m = 0, s = 1e-30;
    for (int i = 0; i < n; i++) {
        m = fmax(m, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    *scale = s;
    return m;
}

static void test_layernorm(void)
{
    static const int D[] = {8, 64, 100, 384, 768};
    float x[768], y[768], add[768], bias[768], w[768], b[768];
    for (size_t k = 0; k < CAIRN_ARRAY_LEN(D); k++) {
        int d = D[k];
        for (int i = 0; i < d; i++) {
            x[i] = y[i] = 3 * frand() + 0.5f;
            add[i] = frand();
            bias[i] = 0.1f * frand();
            w[i] = 1 + 0.1f * frand();
            b[i] = 0.1f * frand();
        }
        embed_layernorm_ref(x, add, bias, w, b, d, 1e-12f);
        embed_layernorm_avx2(y, add, bias, w, b, d, 1e-12f);
        double s, m = maxdiff(y, x, d, &s);
        CHECKF(m <= 1e-5 * s, "d %d: %g", d, m);
    }
}

static void test_gelu_silu(void)
{
    enum { N = 1541 };
    static float a[N], b[N], bias[N], u[N];
    for (int i = 0; i < N; i++) {
        a[i] = b[i] = 12 * frand();
        bias[i] = frand();
        u[i] = 2 * frand();
    }
    a[0] = b[0] = -60;
    a[1] = b[1] = 60;
    embed_gelu_bias_ref(a, bias, N);
    embed_gelu_bias_avx2(b, bias, N);
    double s, m = maxdiff(b, a, N, &s);
    CHECKF(m <= 1e-5 * s, "gelu: %g (scale %g)", m, s);
    for (int i = 0; i < N; i++)
        a[i] = b[i] = 12 * frand();
    embed_silu_mul_ref(a, u, N);
    embed_silu_mul_avx2(b, u, N);
    m = maxdiff(b, a, N, &s);
    CHECKF(m <= 1e-5 * s, "silu: %g (scale %g)", m, s);
}

static void test_attention(void)
{
    static const int HD[] = {8, 16, 32, 64, 128, 12};
    enum { LD = 400, NMAX = 70 };
    static float K[NMAX * LD], V[NMAX * LD], q[128], o1[128], o2[128], sc[NMAX];
    for (int i = 0; i < NMAX * LD; i++) {
        K[i] = 2 * frand();
        V[i] = frand();
    }
    for (size_t h = 0; h < CAIRN_ARRAY_LEN(HD); h++)
        for (int n = 1; n <= NMAX; n += 3) {
            int hd = HD[h];
            for (int i = 0; i < hd; i++)
                q[i] = 2 * frand();
            embed_attend_row_ref(q, K, V, LD, n, hd, 1.0f / sqrtf((float)hd), sc, o1);
            embed_attend_row_avx2(q, K, V, LD, n, hd, 1.0f / sqrtf((float)hd), sc, o2);
            double s, m = maxdiff(o2, o1, hd, &s);
            CHECKF(m <= 1e-5 * s, "hd %d n %d: %g", hd, n, m);
        }
}

/* The GEMM tile: the same fused multiply-add chain per output, so the
 * AVX2 tile equals the reference bit for bit for every height and width. */
static void test_gemm_panel(void)
{
    enum { K = 200, MMAX = 20 };
    static float x[MMAX * (K + 3)], p[K * 16] __attribute__((aligned(32))), y1[MMAX * 19], y2[MMAX * 19];
    for (int i = 0; i < MMAX * (K + 3); i++)
        x[i] = frand();
    for (int i = 0; i < K * 16; i++)
        p[i] = frand();
    int same = 0, runs = 0;
    for (int m = 1; m <= MMAX; m++)
        for (int nc = 1; nc <= 16; nc += 5) {
            memset(y1, 0, sizeof y1);
            memset(y2, 0, sizeof y2);
            embed_gemm_panel_ref(x, K + 3, m, K, p, y1, 19, nc);
            embed_gemm_panel_avx2(x, K + 3, m, K, p, y2, 19, nc);
            same += !memcmp(y1, y2, sizeof y1);
            runs++;
        }
    CHECK_EQ_INT(same, runs);
    double r = 0;
    for (int k = 0; k < K; k++)
        r += (double)x[k] * p[k * 16];
    CHECK_NEAR(y1[0], r, 1e-4);
}

int main(void)
{
    if (!embed_ops_avx2_ok())
        SKIP_ALL("no AVX2 + FMA");
    RUN(test_layernorm);
    RUN(test_gelu_silu);
    RUN(test_attention);
    RUN(test_gemm_panel);
    return t_done();
}
