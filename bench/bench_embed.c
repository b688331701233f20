/*
 * bench_embed — sentence-embedding throughput in the all-MiniLM-L6-v2 shape.
 *
 *   bench_embed [-t THREADS] [-r REPS] [-n SENTENCES] [--types F16,Q8_0,Q4_0,Q4_K_M] [--dir DIR]
 *
 * The model: arch bert, 384 hidden, 6 layers, 12 heads, ffn 1536, vocab
 * 30522, context 512, mean pooling, random weights from our writer
 * (gguf/testmodel.c) in F32, then converted by our quantizer with
 * llama.cpp's per-tensor mix (gguf/quantize.h; for Q4_K_M the 384-wide rows
 * fall back Q4_K -> Q5_0 and Q6_K -> Q8_0 exactly as llama-quantize does,
 * only ffn_down, 1536 wide, is Q4_K/Q6_K). Input: SENTENCES (default 500)
 * random sentences of 3-letter words from the vocabulary, 60-64 words, so
 * 62-66 tokens with [CLS] and [SEP] (~64). One embedder_embed call per rep
 * embeds them all (packed runs, THREADS threads, default 2); reported:
 * the median over REPS (default 3) of sentences/s and tokens/s, the CPU
 * share the threads got, and sentences per CPU-second (on a busy machine
 * wall time is not CPU time; with perfect scaling THREADS x sent/cpu-s is
 * what an idle machine would give).
 *
 * Reference numbers (issue 12): llama.cpp's llama-embedding b4748 on an
 * AMD EPYC host of this kind, 2 threads, same workload: 48 (F16), 62 (Q8_0),
 * 67 (Q4_0), 63 (Q4_K_M) sentences/s.
 */
#include "base/base.h"
#include "gguf/quantize.h"
#include "gguf/testmodel.h"
#include "kernels/quant.h"
#include "model/embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x243f6a8885a308d3ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 3, n = 500;
    const char *types = "F16,Q8_0,Q4_0,Q4_K_M", *dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: bench_embed [-t THREADS] [-r REPS] [-n SENTENCES] [--types LIST] [--dir DIR]\n");
            return 2;
        }
        if (!strcmp(a, "-t"))
            threads = atoi(v);
        else if (!strcmp(a, "-r"))
            reps = atoi(v);
        else if (!strcmp(a, "-n"))
            n = atoi(v);
        else if (!strcmp(a, "--types"))
            types = v;
        else if (!strcmp(a, "--dir"))
            dir = v;
        else {
            fprintf(stderr, "bench_embed: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (threads < 1 || reps < 1 || reps > 100 || n < 1 || n > 100000) {
        fprintf(stderr, "bench_embed: bad -t/-r/-n\n");
        return 2;
    }
    kernels_init();
    char f32[1024];
    snprintf(f32, sizeof f32, "%s/bench_embed_minilm_%d.f32.gguf", dir, (int)getpid());
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.arch = "bert";
    p.n_vocab = 30522;
    p.n_embd = 384;
    p.n_layer = 6;
    p.n_head = 12;
    p.n_ff = 1536;
    p.n_ctx = 512;
    p.name = "minilm-l6-shape";
    if (gguf_testmodel_write(f32, &p) != CAIRN_OK) {
        fprintf(stderr, "bench_embed: %s\n", cairn_last_error());
        return 1;
    }
    /* sentences of 3-letter words: "\u2581xyz" pieces, one token each */
    char **texts = calloc((size_t)n, sizeof *texts);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    for (int i = 0; i < n; i++) {
        int words = 60 + (int)rnd(5);
        texts[i] = malloc((size_t)words * 4 + 1);
        int o = 0;
        for (int w = 0; w < words; w++) {
            for (int c = 0; c < 3; c++)
                texts[i][o++] = "etaoinshrdlucmfwypvbgkjqxz"[rnd(26)];
            texts[i][o++] = ' ';
        }
        texts[i][o] = 0;
        lens[i] = (size_t)o;
    }
    printf("bench_embed: all-MiniLM-L6-v2 shape (384 x 6 layers, 12 heads, ffn 1536, vocab 30522), %d sentences, "
           "%d threads, kernels %s, median of %d\n", n, threads, kernels_isa(), reps);
    printf("%-8s %10s %12s %12s %8s %14s %10s\n", "type", "tok/sent", "sentences/s", "tokens/s", "cpu%",
           "sent/cpu-s", "file MiB");
    char list[256];
    snprintf(list, sizeof list, "%s", types);
    int rc = 0;
    for (char *tk = strtok(list, ","); tk; tk = strtok(NULL, ",")) {
        gguf_quant_mode mode;
        if (!gguf_quantize_mode_by_name(tk, &mode)) {
            fprintf(stderr, "bench_embed: unknown type %s\n", tk);
            rc = 2;
            continue;
        }
        char path[1100];
        snprintf(path, sizeof path, "%s/bench_embed_minilm_%d.%s.gguf", dir, (int)getpid(), tk);
        gguf_quantize_params qp = {.mode = mode, .n_threads = 2};
        gguf_quantize_stats qs;
        cairn_embedder *e = NULL;
        embed_opts eo = {threads};
        if (gguf_quantize_file(f32, path, &qp, &qs) != CAIRN_OK || embedder_load(path, &eo, &e) != CAIRN_OK) {
            fprintf(stderr, "bench_embed: %s: %s\n", tk, cairn_last_error());
            rc = 1;
            remove(path);
            continue;
        }
        float *out = malloc((size_t)n * (size_t)embedder_dim(e) * sizeof(float));
        double sps[100], tps[100], cpu[100], spc[100];
        embed_stats st = {0};
        /* warm-up: page the weights in, size the scratch */
        embedder_embed(e, NULL, (const char *const *)texts, lens, CAIRN_MIN(n, 32), out, NULL);
        for (int r = 0; r < reps; r++) {
            double c0 = cpu_s();
            if (embedder_embed(e, NULL, (const char *const *)texts, lens, n, out, &st) != CAIRN_OK) {
                fprintf(stderr, "bench_embed: %s\n", cairn_last_error());
                rc = 1;
                break;
            }
            double c1 = cpu_s();
            sps[r] = (double)n * 1000.0 / st.ms;
            tps[r] = (double)st.n_tokens * 1000.0 / st.ms;
            cpu[r] = 100.0 * (c1 - c0) / (st.ms / 1000.0) / threads;
            spc[r] = (double)n / (c1 - c0);
        }
        printf("%-8s %10.1f %12.1f %12.0f %8.0f %14.1f %10.1f\n", tk, (double)st.n_tokens / n, median(sps, reps),
               median(tps, reps), median(cpu, reps), median(spc, reps), (double)qs.out_file_size / (1 << 20));
        fflush(stdout);
        free(out);
        embedder_free(e);
        remove(path);
    }
    remove(f32);
    for (int i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    return rc;
}
