/*
 * bench_matmul — matmul speed per tensor type, kernel level and shape.
 *
 *   bench_matmul [-t THREADS] [-r REPS] [-p PROMPT_TOKENS] [-w WS_MIB]
 *                [--types Q4_0,Q8_0,...] [--levels scalar,avx2,avx512]
 *                [--shapes 1536x576,...] [--4k] [--stream on|off]
 *
 * Shapes are ROWSxCOLS of W (default: the SmolLM-135M FFN 1536x576 and
 * 576x1536, the TinyLlama-1.1B FFN 5632x2048 and 2048x5632).
 *   decode: y = W x for one token. Weights rotate through WS_MIB (default
 *           768 MiB, above this machine's L3) of copies so every call
 *           reads them from memory, as a real model's layers do; reported
 *           as GB/s of weight bytes and µs per call. The weights sit on
 *           2 MiB transparent huge pages as a loaded model's do (--4k:
 *           4 KiB pages, as when the model is read from its mapping).
 *           Decode kernels read one row at a time (matmul_ctx.stream) when
 *           the copies exceed the last-level cache; --stream on|off forces it.
 *   prompt: PROMPT_TOKENS (default 512; 0 = decode only) tokens at once; GFLOP/s = 2 rows
 *           cols tokens / time.
 * Alongside: a two-thread read-bandwidth test (the decode bound) and the
 * cost of an empty pool job. Medians of REPS (default 5) runs.
 * On a busy machine, `cpu%` (share of wall time the threads had a CPU) and
 * `GF/cpu-s` (prompt GFLOP per CPU-second, robust to preemption) and
 * `GB/cpu-s` (decode weight bytes per CPU-second; with -w 1 the weights stay
 * in cache, so this is the kernel's own speed) tell how far the wall-clock
 * columns are from the hardware's.
 */
#include "base/base.h"
#include "base/pool.h"
#include "kernels/matmul.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

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
static double now_s(void) { return (double)cairn_mono_ns() * 1e-9; }
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static float rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* ---- memory bandwidth: each thread sums its half of a large buffer ---- */
typedef struct { const uint64_t *p; size_t n; uint64_t sink[64]; } bw_job;
static void bw_read(void *arg, int ith, int nth)
{
    bw_job *j = arg;
    size_t per = j->n / (size_t)nth, lo = per * (size_t)ith;
    const uint64_t *p = j->p + lo;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= per; i += 4) {
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    j->sink[ith % 64] = a + b + c + d;
}

static void nop(void *arg, int ith, int nth) { (void)arg; (void)ith; (void)nth; }

static double bandwidth_gbs(cairn_pool *pool, int reps)
{
    size_t bytes = (size_t)1 << 30;
    uint64_t *buf = cairn_malloc_aligned(bytes, 64);
    if (!buf)
        return 0;
    memset(buf, 1, bytes);
    bw_job j = {.p = buf, .n = bytes / 8};
    double t[16];
    reps = CAIRN_MIN(reps, 16);
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        cairn_pool_run(pool, bw_read, &j);
        t[r] = now_s() - t0;
    }
    cairn_free_aligned(buf);
    return (double)bytes / median(t, reps) * 1e-9;
}

typedef struct { int64_t rows, cols; } shape;

int main(int argc, char **argv)
{
    int threads = 2, reps = 5, ptok = 512, ws_mib = 768;
    bool small_pages = false;
    int stream_arg = -1;   /* --stream on|off; default: on when the weight copies exceed the LLC */
    const char *types_arg = "F16,BF16,Q8_0,Q4_0,Q4_1,Q5_0,Q5_1,Q2_K,Q3_K,Q4_K,Q5_K,Q6_K";
    const char *levels_arg = "scalar,avx2,avx512";
    const char *shapes_arg = "1536x576,576x1536,5632x2048,2048x5632";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-t") && v) threads = atoi(argv[++i]);
        else if (!strcmp(a, "-r") && v) reps = atoi(argv[++i]);
        else if (!strcmp(a, "-p") && v) ptok = atoi(argv[++i]);
        else if (!strcmp(a, "-w") && v) ws_mib = atoi(argv[++i]);
        else if (!strcmp(a, "--types") && v) types_arg = argv[++i];
        else if (!strcmp(a, "--levels") && v) levels_arg = argv[++i];
        else if (!strcmp(a, "--shapes") && v) shapes_arg = argv[++i];
        else if (!strcmp(a, "--4k")) small_pages = true;
        else if (!strcmp(a, "--stream") && v) stream_arg = !strcmp(argv[++i], "on");
        else {
            fprintf(stderr, "usage: bench_matmul [-t N] [-r REPS] [-p TOKENS] [-w WS_MIB] [--types LIST] [--levels LIST] [--shapes RxC,...] [--4k] [--stream on|off]\n");
            return 2;
        }
    }
    reps = CAIRN_MAX(1, CAIRN_MIN(reps, 64));
    cairn_pool *pool = NULL;
    if (cairn_pool_new(threads, &pool) != CAIRN_OK) {
        fprintf(stderr, "pool: %s\n", cairn_last_error());
        return 1;
    }
    kernels_init();
    printf("kernels selected: %s, threads: %d\n", kernels_isa(), threads);
    printf("memory read bandwidth (%d threads, 1 GiB): %.1f GB/s\n", threads, bandwidth_gbs(pool, reps));
    {
        double t[64];
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            for (int k = 0; k < 10000; k++)
                cairn_pool_run(pool, nop, NULL);
            t[r] = (now_s() - t0) / 10000;
        }
        printf("empty pool job: %.2f us\n", median(t, reps) * 1e6);
    }

    shape shapes[16];
    int ns = 0;
    for (const char *s = shapes_arg; *s && ns < 16;) {
        long long r, c;
        if (sscanf(s, "%lldx%lld", &r, &c) != 2) break;
        shapes[ns++] = (shape){r, c};
        s = strchr(s, ',');
        if (!s) break;
        s++;
    }
    int64_t max_cols = 0, max_rows = 0;
    for (int i = 0; i < ns; i++) {
        max_cols = CAIRN_MAX(max_cols, shapes[i].cols);
        max_rows = CAIRN_MAX(max_rows, shapes[i].rows);
    }
    float *x = malloc((size_t)(max_cols * CAIRN_MAX(ptok, 1)) * sizeof(float));
    float *y = malloc((size_t)(max_rows * CAIRN_MAX(ptok, 1)) * sizeof(float));
    float *wf = malloc((size_t)(max_rows * max_cols) * sizeof(float));
    for (int64_t i = 0; i < max_cols * CAIRN_MAX(ptok, 1); i++) x[i] = rnd();
    for (int64_t i = 0; i < max_rows * max_cols; i++) wf[i] = rnd() * 0.1f;

    printf("\n%-5s %-10s %-7s %9s %9s %9s %11s %5s %9s %9s\n", "type", "shape", "kernels", "dec us", "dec GB/s", "pp GF/s", "pp tok/s*", "cpu%", "GF/cpu-s", "GB/cpu-s");
    char tbuf[256];
    snprintf(tbuf, sizeof tbuf, "%s", types_arg);
    for (char *tn = strtok(tbuf, ","); tn; tn = strtok(NULL, ",")) {
        uint32_t type = QT_COUNT;
        for (uint32_t t = 0; t < QT_COUNT; t++)
            if (qtype_get(t) && !strcasecmp(qtype_get(t)->name, tn)) type = t;
        if (type == QT_COUNT || !qtype_get(type)->vec_dot) {
            printf("%s: unknown type\n", tn);
            continue;
        }
        for (int si = 0; si < ns; si++) {
            int64_t rows = shapes[si].rows, cols = shapes[si].cols;
            size_t rs = qtype_row_size(type, cols), wbytes = rs * (size_t)rows;
            if (!rs) continue;
            size_t copies = CAIRN_MAX((size_t)1, ((size_t)ws_mib << 20) / wbytes);
            /* weights on 2 MiB pages, as a loaded model's (model.h); --4k for 4 KiB pages */
            uint8_t *w = NULL;
            size_t tot = (wbytes * copies + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
            if (posix_memalign((void **)&w, 2u << 20, tot)) w = NULL;
            if (!w) { printf("out of memory\n"); return 1; }
            madvise(w, tot, small_pages ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
            for (int64_t r = 0; r < rows; r++)
                qtype_get_ref(type)->from_float(wf + r * cols, w + (size_t)r * rs, cols);
            for (size_t c = 1; c < copies; c++)
                memcpy(w + c * wbytes, w, wbytes);
            char lbuf[64];
            snprintf(lbuf, sizeof lbuf, "%s", levels_arg);
            char *save = NULL;
            for (char *ln = strtok_r(lbuf, ",", &save); ln; ln = strtok_r(NULL, ",", &save)) {
                kernels_level lv = !strcmp(ln, "scalar") ? KERNELS_SCALAR : !strcmp(ln, "avx2") ? KERNELS_AVX2
                                 : !strcmp(ln, "avx512") ? KERNELS_AVX512 : KERNELS_DEFAULT;
                if (lv == KERNELS_DEFAULT || !kernels_level_supported(lv)) continue;
                /* decode kernels read as a stream when the copies exceed the last-level cache, as a model's do */
                matmul_ctx ctx = {.pool = pool, .level = lv,
                                  .stream = stream_arg >= 0 ? stream_arg == 1 : wbytes * copies > kernels_llc_bytes()};
                double td[64], tp[64], wall0 = now_s(), cpu0 = cpu_s();
                /* decode: one call per weight copy, rotating */
                int calls = (int)CAIRN_MIN(copies, (size_t)2000);
                double tdc[64];
                for (int r = 0; r < reps; r++) {
                    double t0 = now_s(), c0 = cpu_s();
                    for (int k = 0; k < calls; k++) {
                        qmat m = {.type = type, .rows = rows, .cols = cols, .data = w + (size_t)k % copies * wbytes};
                        matmul(&ctx, &m, x, y, 1);
                    }
                    td[r] = (now_s() - t0) / calls;
                    tdc[r] = (cpu_s() - c0) / calls;
                }
                double dec = median(td, reps), deccpu = median(tdc, reps);
                if (ptok <= 0) {    /* -p 0: decode only */
                    char sh[32];
                    snprintf(sh, sizeof sh, "%lldx%lld", (long long)rows, (long long)cols);
                    printf("%-5s %-10s %-7s %9.1f %9.1f %9s %11s %5s %9s %9.1f\n", qtype_get(type)->name, sh, ln, dec * 1e6,
                           (double)wbytes / dec * 1e-9, "-", "-", "-", "-", (double)wbytes / deccpu * 1e-9);
                    fflush(stdout);
                    matmul_ctx_free(&ctx);
                    continue;
                }
                /* prompt: scalar is slow, so fewer reps and tokens there */
                int pt = lv == KERNELS_SCALAR ? CAIRN_MIN(ptok, 64) : ptok;
                int preps = lv == KERNELS_SCALAR ? 1 : reps;
                qmat m = {.type = type, .rows = rows, .cols = cols, .data = w};
                double tc[64], t1 = now_s();
                matmul(&ctx, &m, x, y, pt);             /* warm up; sizes the repeat count */
                int iters = (int)CAIRN_MAX(1.0, CAIRN_MIN(1000.0, 0.02 / CAIRN_MAX(now_s() - t1, 1e-9)));
                for (int r = 0; r < preps; r++) {
                    double t0 = now_s(), c0 = cpu_s();
                    for (int k = 0; k < iters; k++)
                        matmul(&ctx, &m, x, y, pt);
                    tp[r] = (now_s() - t0) / iters;
                    tc[r] = (cpu_s() - c0) / iters;
                }
                double ppcpu = median(tc, preps);
                double pp = median(tp, preps);
                double gflops = 2.0 * (double)rows * (double)cols * pt / pp * 1e-9;
                char sh[32];
                snprintf(sh, sizeof sh, "%lldx%lld", (long long)rows, (long long)cols);
                /* share of the threads' wall time we really had a CPU (low = machine busy) */
                double cpu_pct = 100.0 * (cpu_s() - cpu0) / ((now_s() - wall0) * threads);
                printf("%-5s %-10s %-7s %9.1f %9.1f %9.1f %11.0f %5.0f %9.1f %9.1f\n", qtype_get(type)->name, sh, ln, dec * 1e6,
                       (double)wbytes / dec * 1e-9, gflops, pt / pp, cpu_pct, gflops * pp / ppcpu,
                       (double)wbytes / deccpu * 1e-9);
                fflush(stdout);
                matmul_ctx_free(&ctx);
            }
            free(w);
        }
    }
    printf("\n* pp tok/s: tokens per second through this one matrix (scalar: %d tokens, 1 rep)\n", CAIRN_MIN(ptok, 64));
    free(x); free(y); free(wf);
    cairn_pool_free(pool);
    return 0;
}
