/*
 * test_kernels_simd.c — every AVX2 / AVX-512 kernel against the scalar
 * reference (quant_ref.c) on random data, with odd and even block counts.
 * Only the levels this CPU supports run; the test prints which.
 *
 * Tolerances:
 *  - to_float: bit-exact.
 *  - vec_dot of quantized types: the integer block sums are exact, only the
 *    float accumulation order differs: |simd - ref| <= 1e-5 * sum|x_i*y_i|.
 *  - vec_dot of float types: reordered float sums over n terms:
 *    |simd - ref| <= (n * 2^-23 + 1e-6) * sum|x_i*y_i|.
 *  - quantize_act (Q8_0/Q8_1/Q8_K, F16, BF16): SIMD rounds half to even
 *    where the reference rounds half away from zero, so a quant may differ
 *    by 1, in at most 1% of the values; scales (d) bit-exact for Q8_0/Q8_K
 *    and the Q8_1 sum within one fp16 ulp of rounding.
 *  - gemm (tile kernels): as vec_dot, per output element, for every tile
 *    shape from 1x1 to gemm_nr x gemm_nc.
 *  - gemv (multi-row decode kernels): as vec_dot per row, for row counts
 *    1..GV_ROWS and strides with padding; each row's result bit-identical
 *    whichever slice of rows it was computed in, nothing written past nr.
 */
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "t.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
/* uniform in [-1, 1) */
static float rnd_f(void) { return (float)rnd_u32() / 2147483648.0f - 1.0f; }

/* Random weights with varying scale per block and a few outliers. */
static void fill(float *x, int64_t n, int block)
{
    float scale = 1.0f;
    for (int64_t i = 0; i < n; i++) {
        if (i % block == 0)
            scale = 0.01f + 2.0f * (float)(rnd_u32() % 1000) / 1000.0f;
        x[i] = scale * rnd_f();
        if (rnd_u32() % 97 == 0)
            x[i] *= 6.0f;
    }
}

typedef struct { uint32_t type; int block; } tcase;

static const tcase weight_types[] = {
    {QT_F32, 1}, {QT_F16, 1}, {QT_BF16, 1}, {QT_Q4_0, QK}, {QT_Q4_1, QK}, {QT_Q5_0, QK},
    {QT_Q5_1, QK}, {QT_Q8_0, QK}, {QT_Q2_K, QK_K}, {QT_Q3_K, QK_K}, {QT_Q4_K, QK_K},
    {QT_Q5_K, QK_K}, {QT_Q6_K, QK_K},
};
static const int block_counts[] = {1, 2, 3, 4, 7, 8, 16, 17, 33};

static bool is_float_type(uint32_t t) { return t == QT_F32 || t == QT_F16 || t == QT_BF16; }

static const char *level_names[] = {"default", "scalar", "avx2", "avx512"};
static int levels_tested;

static double abs_dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
    return s;
}

/* A row of n values of type t from floats, with the reference quantizer. */
static void *quant_row(uint32_t t, const float *x, int64_t n)
{
    const qtype_traits *r = qtype_get_ref(t);
    void *q = cairn_malloc(qtype_row_size(t, n) + 64);
    r->from_float(x, q, n);
    return q;
}

static void check_vec_dot(kernels_level lvl)
{
    for (size_t ti = 0; ti < CAIRN_ARRAY_LEN(weight_types); ti++) {
        uint32_t t = weight_types[ti].type;
        const qtype_traits *ref = qtype_get_ref(t), *sim = qtype_get_level(t, lvl);
        CHECK(ref && sim);
        if (!ref || !sim)
            continue;
        CHECK_EQ_INT(sim->vec_dot_type, ref->vec_dot_type);
        int bs = is_float_type(t) ? (t == QT_F32 ? 1 : 1) : weight_types[ti].block;
        for (size_t ki = 0; ki < CAIRN_ARRAY_LEN(block_counts); ki++) {
            int64_t n = is_float_type(t) ? block_counts[ki] * 37 : (int64_t)block_counts[ki] * bs;
            if (is_float_type(t) && ki == 0) n = 1;
            float *w = cairn_malloc((size_t)n * 4), *a = cairn_malloc((size_t)n * 4);
            float *wd = cairn_malloc((size_t)n * 4), *ad = cairn_malloc((size_t)n * 4);
            fill(w, n, is_float_type(t) ? 32 : bs);
            fill(a, n, 32);
            void *qw = quant_row(t, w, n), *qa = quant_row(ref->vec_dot_type, a, n);
            ref->to_float(qw, wd, n);
            qtype_get_ref(ref->vec_dot_type)->to_float(qa, ad, n);
            float s_ref = 0, s_sim = 0;
            ref->vec_dot((int)n, &s_ref, qw, qa);
            sim->vec_dot((int)n, &s_sim, qw, qa);
            double mag = abs_dot(wd, ad, n);
            double tol = is_float_type(t) ? ((double)n * 0x1p-23 + 1e-6) * mag : 1e-5 * mag;
            CHECKF(fabs((double)s_sim - s_ref) <= tol + 1e-30, "%s %s n=%lld: simd %.9g ref %.9g tol %.3g",
                   level_names[lvl], ref->name, (long long)n, s_sim, s_ref, tol);
            /* to_float bit-exact */
            float *wd2 = cairn_malloc((size_t)n * 4);
            sim->to_float(qw, wd2, n);
            CHECKF(memcmp(wd, wd2, (size_t)n * 4) == 0, "%s %s to_float n=%lld not bit-exact",
                   level_names[lvl], ref->name, (long long)n);
            cairn_free(wd2);
            cairn_free(qw);
            cairn_free(qa);
            cairn_free(w);
            cairn_free(a);
            cairn_free(wd);
            cairn_free(ad);
        }
    }
}

/* Activation quantizers: compare with the reference quantizer block by block. */
static void check_quantize_act(kernels_level lvl)
{
    static const uint32_t act_types[] = {QT_Q8_0, QT_Q8_1, QT_Q8_K, QT_F16, QT_BF16};
    for (size_t ti = 0; ti < CAIRN_ARRAY_LEN(act_types); ti++) {
        uint32_t t = act_types[ti];
        const qtype_traits *ref = qtype_get_ref(t), *sim = qtype_get_level(t, lvl);
        CHECK(ref && sim);
        if (!ref || !sim)
            continue;
        for (size_t ki = 0; ki < CAIRN_ARRAY_LEN(block_counts); ki++) {
            int64_t n = (int64_t)block_counts[ki] * (t == QT_Q8_K ? QK_K : t == QT_F16 || t == QT_BF16 ? 13 : QK);
            float *a = cairn_malloc((size_t)n * 4);
            fill(a, n, 32);
            if (ki == 1) /* an all-zero block and a tie on the largest magnitude */
                for (int64_t i = 0; i < n / 2; i++) a[i] = 0.0f;
            if (ki == 2) { a[3] = -4.0f; a[5] = 4.0f; }
            size_t sz = qtype_row_size(t, n);
            uint8_t *q1 = cairn_calloc(1, sz), *q2 = cairn_calloc(1, sz);
            ref->from_float(a, q1, n);
            sim->quantize_act(a, q2, n);
            if (t == QT_F16 || t == QT_BF16) {
                CHECKF(memcmp(q1, q2, sz) == 0, "%s %s quantize_act n=%lld not exact", level_names[lvl], ref->name, (long long)n);
            } else {
                int64_t diffs = 0, big = 0, dbad = 0;
                int nb = (int)(n / ref->block_size);
                for (int b = 0; b < nb; b++) {
                    const int8_t *qs1, *qs2;
                    int len;
                    if (t == QT_Q8_K) {
                        const block_q8_K *x1 = (const block_q8_K *)q1 + b, *x2 = (const block_q8_K *)q2 + b;
                        qs1 = x1->qs; qs2 = x2->qs; len = QK_K;
                        dbad += x1->d != x2->d;
                        int bsum_ok = 1;
                        for (int j = 0; j < QK_K / 16; j++) {
                            int s = 0;
                            for (int l = 0; l < 16; l++) s += x2->qs[16 * j + l];
                            bsum_ok &= s == x2->bsums[j];
                        }
                        CHECK(bsum_ok);
                    } else if (t == QT_Q8_0) {
                        const block_q8_0 *x1 = (const block_q8_0 *)q1 + b, *x2 = (const block_q8_0 *)q2 + b;
                        qs1 = x1->qs; qs2 = x2->qs; len = QK;
                        dbad += x1->d != x2->d;
                    } else {
                        const block_q8_1 *x1 = (const block_q8_1 *)q1 + b, *x2 = (const block_q8_1 *)q2 + b;
                        qs1 = x1->qs; qs2 = x2->qs; len = QK;
                        dbad += x1->d != x2->d;
                        int s = 0;
                        for (int l = 0; l < QK; l++) s += x2->qs[l];
                        float want = fp16_to_fp32(x2->d) * (float)s;
                        /* s is stored as fp16 of d_float * sum: within half an fp16 ulp plus d's rounding */
                        CHECKF(fabsf(fp16_to_fp32(x2->s) - want) <= 2e-3f * fabsf(want) + 1e-6f,
                               "q8_1 s %g vs %g", fp16_to_fp32(x2->s), want);
                    }
                    for (int l = 0; l < len; l++) {
                        int dq = qs1[l] - qs2[l];
                        diffs += dq != 0;
                        big += dq > 1 || dq < -1;
                    }
                }
                CHECKF(dbad == 0, "%s %s: %lld block scales differ", level_names[lvl], ref->name, (long long)dbad);
                CHECKF(big == 0 && diffs * 100 <= n, "%s %s n=%lld: %lld quants differ (%lld by more than 1)",
                       level_names[lvl], ref->name, (long long)n, (long long)diffs, (long long)big);
            }
            cairn_free(q1);
            cairn_free(q2);
            cairn_free(a);
        }
    }
}

/* In the AVX-512 files; callable anywhere, their kernels only after the CPU check. */
bool simd_amx_available(void);
qt_gemm_fn simd_gemm_vnni(uint32_t type, int *nr, int *nc);
qt_gemm_fn simd_gemm_amx(uint32_t type, int *nr, int *nc);
qt_gemm_fn simd_gemm_amx_q(uint32_t type, int *nr, int *nc);

typedef struct { const char *label; qt_gemm_fn fn; int nr, nc; } gemm_kernel;

/* Tile kernels: many shapes up to the maximum, against the reference vec_dot. */
static void check_gemm_one(const char *label, uint32_t t, qt_gemm_fn gemm, int R, int C);

static void check_gemm(kernels_level lvl)
{
    for (size_t ti = 0; ti < CAIRN_ARRAY_LEN(weight_types); ti++) {
        uint32_t t = weight_types[ti].type;
        const qtype_traits *sim = qtype_get_level(t, lvl);
        gemm_kernel ks[4];
        int nk = 0;
        if (sim && sim->gemm) {
            CHECK(sim->gemm_nr >= 1 && sim->gemm_nc >= 1);
            ks[nk++] = (gemm_kernel){"table", sim->gemm, sim->gemm_nr, sim->gemm_nc};
        }
        if (lvl == KERNELS_AVX512) {
            int nr, nc;
            qt_gemm_fn f = simd_gemm_vnni(t, &nr, &nc);
            if (f && !(nk && ks[0].fn == f)) ks[nk++] = (gemm_kernel){"vnni", f, nr, nc};
            f = simd_amx_available() ? simd_gemm_amx(t, &nr, &nc) : NULL;
            if (f && !(nk && ks[0].fn == f)) ks[nk++] = (gemm_kernel){"amx", f, nr, nc};
            f = simd_amx_available() ? simd_gemm_amx_q(t, &nr, &nc) : NULL;
            if (f && !(nk && ks[0].fn == f)) ks[nk++] = (gemm_kernel){"amx-int8", f, nr, nc};
        }
        for (int k = 0; k < nk; k++) {
            char label[64];
            snprintf(label, sizeof label, "%s %s", level_names[lvl], ks[k].label);
            fprintf(stderr, "  gemm %-5s %s %dx%d\n", qtype_get_ref(t)->name, label, ks[k].nr, ks[k].nc);
            check_gemm_one(label, t, ks[k].fn, ks[k].nr, ks[k].nc);
        }
    }
}

static void check_gemm_one(const char *label, uint32_t t, qt_gemm_fn gemm, int R, int C)
{
    const qtype_traits *ref = qtype_get_ref(t);
    size_t ti = 0;
    while (weight_types[ti].type != t) ti++;
    {
        int bs = weight_types[ti].block;
        static const int kb[] = {1, 3, 8, 17};
        const size_t n_kb = getenv("CAIRN_SANITIZED") ? 2 : CAIRN_ARRAY_LEN(kb);
        for (size_t ki = 0; ki < n_kb; ki++) {
            int64_t n = (int64_t)kb[ki] * (bs == 1 ? 32 : bs) + (bs == 1 ? ki : 0);
            size_t rw = qtype_row_size(t, n), ra = qtype_row_size(ref->vec_dot_type, n);
            float *f = cairn_malloc((size_t)n * 4);
            uint8_t *W = cairn_malloc(rw * (size_t)R + 64), *A = cairn_malloc(ra * (size_t)C + 64);
            float *wd = cairn_malloc((size_t)n * R * 4), *ad = cairn_malloc((size_t)n * C * 4);
            for (int r = 0; r < R; r++) {
                fill(f, n, bs);
                ref->from_float(f, W + rw * r, n);
                ref->to_float(W + rw * r, wd + n * r, n);
            }
            for (int c = 0; c < C; c++) {
                fill(f, n, 32);
                qtype_get_ref(ref->vec_dot_type)->from_float(f, A + ra * c, n);
                qtype_get_ref(ref->vec_dot_type)->to_float(A + ra * c, ad + n * c, n);
            }
            float *S = cairn_malloc((size_t)R * C * 4 + 4), *want = cairn_malloc((size_t)R * C * 4 + 4);
            double *tol = cairn_malloc((size_t)R * C * sizeof(double) + 8);
            for (int j = 0; j < C; j++) {
                for (int i = 0; i < R; i++) {
                    ref->vec_dot((int)n, &want[j * R + i], W + rw * i, A + ra * j);
                    double mag = abs_dot(wd + n * i, ad + n * j, n);
                    tol[j * R + i] = (is_float_type(t) ? (double)n * 0x1p-23 + 1e-6 : 1e-5) * mag + 1e-30;
                }
            }
            /* shapes: small edges, odd sizes, the full tile (fewer under sanitizers: slow there) */
            const bool quick = getenv("CAIRN_SANITIZED") != NULL;
            const int shapes_r[] = {1, 5, R - 1, R, 2, 3, 4, 7, R / 2 + 1};
            const int shapes_c[] = {1, 3, C, 2, 4, 5, C / 2 + 1, C - 1};
            const size_t n_sr = quick ? 4 : CAIRN_ARRAY_LEN(shapes_r), n_sc = quick ? 3 : CAIRN_ARRAY_LEN(shapes_c);
            int bad = 0;
            for (size_t a = 0; a < n_sr; a++) {
                for (size_t b = 0; b < n_sc; b++) {
                    int nr = shapes_r[a], nc = shapes_c[b];
                    if (nr < 1 || nr > R || nc < 1 || nc > C)
                        continue;
                    for (int i = 0; i < R * C; i++) S[i] = NAN;
                    gemm((int)n, S, (size_t)R, W, rw, A, ra, nr, nc);
                    for (int j = 0; j < C; j++) {
                        for (int i = 0; i < R; i++) {
                            float got = S[j * R + i];
                            if (i >= nr || j >= nc) {
                                bad += !isnan(got);   /* must not write outside the tile */
                                continue;
                            }
                            if (!(fabs((double)got - want[j * R + i]) <= tol[j * R + i])) {
                                if (bad < 5)
                                    fprintf(stderr, "%s %s gemm n=%lld tile %dx%d (%d,%d): %.9g vs %.9g\n",
                                            label, ref->name, (long long)n, nr, nc, i, j, got, want[j * R + i]);
                                bad++;
                            }
                        }
                    }
                }
            }
            cairn_free(want);
            cairn_free(tol);
            CHECKF(bad == 0, "%s %s gemm n=%lld: %d bad elements", label, ref->name, (long long)n, bad);
            cairn_free(S);
            cairn_free(f);
            cairn_free(W);
            cairn_free(A);
            cairn_free(wd);
            cairn_free(ad);
        }
    }
}

#define GV_ROWS 21
static void check_gemv(kernels_level lvl)
{
    for (size_t ti = 0; ti < CAIRN_ARRAY_LEN(weight_types); ti++) {
        uint32_t t = weight_types[ti].type;
        const qtype_traits *ref = qtype_get_ref(t), *sim = qtype_get_level(t, lvl);
        if (!sim || !sim->gemv)
            continue;
        fprintf(stderr, "  gemv %s\n", ref->name);
        int bs = weight_types[ti].block;
        static const int kb[] = {1, 2, 3, 7, 16, 17, 33};
        for (size_t ki = 0; ki < CAIRN_ARRAY_LEN(kb); ki++) {
            int64_t n = is_float_type(t) ? kb[ki] * 37 : (int64_t)kb[ki] * bs;
            size_t rs = qtype_row_size(t, n), ra = qtype_row_size(ref->vec_dot_type, n);
            size_t bx = rs + (ki % 2 ? 0 : 14);   /* padded stride too (kept 2-byte aligned: fp16 fields) */
            float *f = cairn_malloc((size_t)n * 4), *wd = cairn_malloc((size_t)n * 4), *ad = cairn_malloc((size_t)n * 4);
            /* the matrix ends exactly at the end of its allocation (no slack to over-read into) */
            uint8_t *W = cairn_malloc(bx * (GV_ROWS - 1) + rs), *A = cairn_malloc(ra);
            fill(f, n, 32);
            qtype_get_ref(ref->vec_dot_type)->from_float(f, A, n);
            qtype_get_ref(ref->vec_dot_type)->to_float(A, ad, n);
            float want[GV_ROWS], all[GV_ROWS + 1];
            double tol[GV_ROWS];
            for (int r = 0; r < GV_ROWS; r++) {
                fill(f, n, is_float_type(t) ? 32 : bs);
                ref->from_float(f, W + bx * r, n);
                ref->to_float(W + bx * r, wd, n);
                ref->vec_dot((int)n, &want[r], W + bx * r, A);
                tol[r] = (is_float_type(t) ? (double)n * 0x1p-23 + 1e-6 : 1e-5) * abs_dot(wd, ad, n) + 1e-30;
            }
            all[GV_ROWS] = NAN;
            sim->gemv((int)n, all, W, bx, A, GV_ROWS, false);
            CHECK(isnan(all[GV_ROWS]));
            int bad = 0;
            for (int r = 0; r < GV_ROWS; r++) {
                if (!(fabs((double)all[r] - want[r]) <= tol[r])) {
                    if (bad++ < 3)
                        fprintf(stderr, "%s %s gemv n=%lld row %d: %.9g vs %.9g\n", level_names[lvl], ref->name,
                                (long long)n, r, all[r], want[r]);
                }
            }
            /* every slice [r0, r0 + nr), read side by side or as a stream:
             * same bits as the full call, nothing written past it */
            for (int r0 = 0; r0 < GV_ROWS; r0 += 3) {
                for (int nr = 1; r0 + nr <= GV_ROWS; nr++) {
                    float part[GV_ROWS + 1];
                    for (int i = 0; i <= GV_ROWS; i++) part[i] = NAN;
                    sim->gemv((int)n, part, W + bx * r0, bx, A, nr, (r0 + nr) % 2 == 1);
                    for (int i = 0; i < nr; i++)
                        bad += memcmp(&part[i], &all[r0 + i], 4) != 0;
                    bad += !isnan(part[nr]);
                }
            }
            CHECKF(bad == 0, "%s %s gemv n=%lld: %d bad", level_names[lvl], ref->name, (long long)n, bad);
            cairn_free(f);
            cairn_free(wd);
            cairn_free(ad);
            cairn_free(W);
            cairn_free(A);
        }
    }
}

static void test_levels(void)
{
    const kernels_level lv[] = {KERNELS_AVX2, KERNELS_AVX512};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(lv); i++) {
        if (!kernels_level_supported(lv[i])) {
            fprintf(stderr, "level %s: not supported by this CPU, not tested\n", level_names[lv[i]]);
            continue;
        }
        fprintf(stderr, "level %s: testing (AMX %s)\n", level_names[lv[i]],
                lv[i] == KERNELS_AVX512 ? (simd_amx_available() ? "available: AMX tile kernels tested too" : "not available") : "n/a");
        levels_tested++;
        check_vec_dot(lv[i]);
        check_quantize_act(lv[i]);
        check_gemm(lv[i]);
        check_gemv(lv[i]);
    }
}

int main(void)
{
    kernels_init();
    RUN(test_levels);
    if (levels_tested == 0)
        SKIP_ALL("no SIMD level supported on this CPU");
    return t_done();
}
