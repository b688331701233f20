/*
 * bench_kernels_simd — microbenchmarks of the compute kernels, one thread.
 *
 *   bench_kernels_simd [dot|matvec|gemm|quant|all] [reps] [TYPE]
 *
 * dot:    ns per block of vec_dot (weight row . activation row, 4096 values,
 *         L1/L2 resident), scalar vs AVX2 vs AVX-512, per type.
 * matvec: decode matrix x vector, 2048 x 5632 (rows x cols), GB/s of weights
 *         read (the matrix fits in this machine's L3, so this is the kernel
 *         speed, not DRAM bandwidth).
 * gemm:   prompt-processing tiles: 1024 x 2048 weights x 256 tokens: one
 *         vec_dot per output (AVX2, AVX-512) vs the AVX-512 VNNI tile kernel
 *         vs the AMX tile kernel (when the CPU has AMX); GOP/s counting a
 *         multiply-add as 2 ops; "best x" = fastest tile kernel over the
 *         AVX-512 vec_dot loop.
 * quant:  activation quantization (quantize_act) ns per block.
 * Every number is the median of `reps` (default 7) timed runs, timed in
 * thread CPU time (CLOCK_THREAD_CPUTIME_ID) so that other processes on a
 * shared machine do not count; cache contention still does.
 */
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng = 88172645463325252ULL;
static float rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

static const struct { uint32_t t; } types[] = {
    {QT_F32}, {QT_F16}, {QT_BF16}, {QT_Q8_0}, {QT_Q4_0}, {QT_Q4_1}, {QT_Q5_0}, {QT_Q5_1},
    {QT_Q2_K}, {QT_Q3_K}, {QT_Q4_K}, {QT_Q5_K}, {QT_Q6_K},
};
static const kernels_level levels[] = {KERNELS_SCALAR, KERNELS_AVX2, KERNELS_AVX512};
static int reps = 7;
static const char *only;   /* optional type filter (argv[3]) */
static int skip(uint32_t t) { return only && strcasecmp(only, qtype_get_ref(t)->name) != 0; }
static volatile float sink;

static void *make_rows(uint32_t t, int64_t rows, int64_t n)
{
    const qtype_traits *r = qtype_get_ref(t);
    size_t rs = qtype_row_size(t, n);
    uint8_t *q = cairn_malloc_aligned(rs * (size_t)rows + 64, 64);
    float *f = cairn_malloc((size_t)n * 4);
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = 0; j < n; j++) f[j] = rnd();
        r->from_float(f, q + rs * (size_t)i, n);
    }
    cairn_free(f);
    return q;
}

static void bench_dot(void)
{
    const int64_t n = 4096;
    printf("vec_dot, ns per block (n=%lld, 1 thread; float types: per 32 values)\n", (long long)n);
    printf("%-6s %10s %10s %10s %8s %8s\n", "type", "scalar", "avx2", "avx512", "x avx2", "x avx512");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        if (skip(types[ti].t)) continue;
        const qtype_traits *r = qtype_get_ref(types[ti].t);
        void *w = make_rows(types[ti].t, 1, n), *a = make_rows(r->vec_dot_type, 1, n);
        int bs = r->block_size == 1 ? 32 : r->block_size;
        double res[3] = {0, 0, 0};
        for (int li = 0; li < 3; li++) {
            const qtype_traits *k = qtype_get_level(types[ti].t, levels[li]);
            if (!k) continue;
            int iters = li == 0 ? 200 : 4000;
            double v[64];
            for (int rr = 0; rr < reps; rr++) {
                double t0 = now_s();
                float s = 0;
                for (int it = 0; it < iters; it++) {
                    k->vec_dot((int)n, &s, w, a);
                    sink += s;
                }
                v[rr] = (now_s() - t0) / iters / (double)(n / bs) * 1e9;
            }
            res[li] = median(v, reps);
        }
        printf("%-6s %10.2f %10.2f %10.2f %8.1f %8.1f\n", r->name, res[0], res[1], res[2],
               res[1] > 0 ? res[0] / res[1] : 0, res[2] > 0 ? res[0] / res[2] : 0);
        cairn_free_aligned(w);
        cairn_free_aligned(a);
    }
}

static void bench_matvec(void)
{
    const int64_t rows = 2048, cols = 5632;
    printf("\ndecode matvec %lldx%lld, 1 thread: GB/s of weights (ms per matvec)\n", (long long)rows, (long long)cols);
    printf("%-6s %8s %16s %16s %16s\n", "type", "MiB", "scalar", "avx2", "avx512");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        if (skip(types[ti].t)) continue;
        const qtype_traits *r = qtype_get_ref(types[ti].t);
        size_t rs = qtype_row_size(types[ti].t, cols);
        uint8_t *w = make_rows(types[ti].t, rows, cols);
        float *x = cairn_malloc((size_t)cols * 4), *y = cairn_malloc((size_t)rows * 4);
        for (int64_t j = 0; j < cols; j++) x[j] = rnd();
        size_t as = qtype_row_size(r->vec_dot_type, cols);
        void *a = cairn_malloc_aligned(as + 64, 64);
        printf("%-6s %8.1f", r->name, (double)(rs * rows) / (1 << 20));
        for (int li = 0; li < 3; li++) {
            const qtype_traits *k = qtype_get_level(types[ti].t, levels[li]);
            const qtype_traits *ka = qtype_get_level(r->vec_dot_type, levels[li]);
            if (!k) { printf(" %16s", "-"); continue; }
            double v[64];
            int iters = li == 0 ? 1 : 5;
            for (int rr = 0; rr < reps; rr++) {
                double t0 = now_s();
                for (int it = 0; it < iters; it++) {
                    ka->quantize_act(x, a, cols);
                    for (int64_t i = 0; i < rows; i++)
                        k->vec_dot((int)cols, y + i, w + rs * (size_t)i, a);
                }
                v[rr] = (now_s() - t0) / iters;
            }
            double t = median(v, reps);
            printf(" %8.2f (%5.2f)", (double)(rs * rows) / t / 1e9, t * 1e3);
        }
        printf("\n");
        cairn_free_aligned(w);
        cairn_free_aligned(a);
        cairn_free(x);
        cairn_free(y);
    }
}

qt_gemm_fn simd_gemm_vnni(uint32_t type, int *nr, int *nc);
qt_gemm_fn simd_gemm_amx_q(uint32_t type, int *nr, int *nc);
bool simd_amx_available(void);

static void bench_gemm(void)
{
    const int64_t rows = 1024, cols = 2048, ntok = 256;
    printf("\nprompt tiles: %lld rows x %lld cols x %lld tokens, 1 thread: GOP/s (ms)\n",
           (long long)rows, (long long)cols, (long long)ntok);
    printf("%-6s %16s %16s %16s %16s %8s\n", "type", "avx2 vec_dot", "avx512 vec_dot", "avx512 vnni gemm",
           "amx gemm", "best x");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        if (skip(types[ti].t)) continue;
        const qtype_traits *r = qtype_get_ref(types[ti].t);
        size_t rs = qtype_row_size(types[ti].t, cols), as = qtype_row_size(r->vec_dot_type, cols);
        uint8_t *w = make_rows(types[ti].t, rows, cols), *a = make_rows(r->vec_dot_type, ntok, cols);
        float *y = cairn_malloc((size_t)rows * ntok * 4);
        double ops = 2.0 * rows * cols * ntok, res[4] = {0, 0, 0, 0};
        printf("%-6s", r->name);
        for (int mode = 0; mode < 4; mode++) {
            const qtype_traits *k = qtype_get_level(types[ti].t, mode == 0 ? KERNELS_AVX2 : KERNELS_AVX512);
            qt_gemm_fn g = NULL;
            int gnr = 0, gnc = 0;
            if (k && mode == 2) g = simd_gemm_vnni(types[ti].t, &gnr, &gnc);
            if (k && mode == 3) {
                g = simd_gemm_amx_q(types[ti].t, &gnr, &gnc);
                if (!g && simd_amx_available() && k->gemm && k->gemm_nr >= 128) { g = k->gemm; gnr = k->gemm_nr; gnc = k->gemm_nc; }
            }
            if (!k || (mode >= 2 && !g)) { printf(" %16s", "-"); continue; }
            double v[64];
            for (int rr = 0; rr < reps; rr++) {
                double t0 = now_s();
                if (mode < 2) {
                    /* the same blocking the driver uses without a tile kernel: 16 rows x all tokens */
                    for (int64_t r0 = 0; r0 < rows; r0 += 16)
                        for (int64_t t = 0; t < ntok; t++)
                            for (int64_t i = r0; i < r0 + 16; i++)
                                k->vec_dot((int)cols, y + t * rows + i, w + rs * (size_t)i, a + as * (size_t)t);
                } else {
                    for (int64_t t = 0; t < ntok; t += gnc)
                        for (int64_t i = 0; i < rows; i += gnr) {
                            int nr = (int)(rows - i < gnr ? rows - i : gnr);
                            int nc = (int)(ntok - t < gnc ? ntok - t : gnc);
                            g((int)cols, y + t * rows + i, (size_t)rows, w + rs * (size_t)i, rs,
                              a + as * (size_t)t, as, nr, nc);
                        }
                }
                v[rr] = now_s() - t0;
            }
            res[mode] = median(v, reps);
            printf(" %7.1f (%6.2f)", ops / res[mode] / 1e9, res[mode] * 1e3);
        }
        double best = res[1];
        for (int m = 2; m < 4; m++) if (res[m] > 0 && res[m] < best) best = res[m];
        printf(" %8.2f\n", best > 0 ? res[1] / best : 0);
        cairn_free_aligned(w);
        cairn_free_aligned(a);
        cairn_free(y);
    }
}

static void bench_quant(void)
{
    const int64_t n = 4096;
    static const uint32_t at[] = {QT_Q8_0, QT_Q8_1, QT_Q8_K, QT_F16, QT_BF16};
    printf("\nquantize_act, ns per block (n=%lld; F16/BF16 per 32 values)\n", (long long)n);
    printf("%-6s %10s %10s %10s\n", "type", "scalar", "avx2", "avx512");
    float *x = cairn_malloc((size_t)n * 4);
    for (int64_t j = 0; j < n; j++) x[j] = rnd();
    void *q = cairn_malloc_aligned((size_t)n * 4 + 64, 64);
    for (size_t ti = 0; ti < sizeof at / sizeof at[0]; ti++) {
        const qtype_traits *r = qtype_get_ref(at[ti]);
        int bs = r->block_size == 1 ? 32 : r->block_size;
        printf("%-6s", r->name);
        for (int li = 0; li < 3; li++) {
            const qtype_traits *k = qtype_get_level(at[ti], levels[li]);
            if (!k) { printf(" %10s", "-"); continue; }
            double v[64];
            for (int rr = 0; rr < reps; rr++) {
                double t0 = now_s();
                for (int it = 0; it < 500; it++) k->quantize_act(x, q, n);
                v[rr] = (now_s() - t0) / 500 / (double)(n / bs) * 1e9;
            }
            printf(" %10.2f", median(v, reps));
        }
        printf("\n");
    }
    cairn_free(x);
    cairn_free_aligned(q);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "all";
    if (argc > 2) reps = atoi(argv[2]);
    if (reps < 1 || reps > 64) reps = 7;
    if (argc > 3) only = argv[3];
    printf("kernels: best level %s; levels available:", kernels_init());
    for (int li = 0; li < 3; li++)
        if (kernels_level_supported(levels[li])) printf(" %s", kernels_level_name(levels[li]));
    printf("\n");
    if (!strcmp(what, "dot") || !strcmp(what, "all")) bench_dot();
    if (!strcmp(what, "matvec") || !strcmp(what, "all")) bench_matvec();
    if (!strcmp(what, "gemm") || !strcmp(what, "all")) bench_gemm();
    if (!strcmp(what, "quant") || !strcmp(what, "all")) bench_quant();
    return 0;
}
