/*
 * bench_tokenizer — tokenizer throughput (MB/s of UTF-8 input, tokens/s).
 *
 *   bench_tokenizer [-r REPS] [-c CORPUS.jsonl] [VOCAB.gguf ...]
 *
 * Defaults: the SQuAD v1.1 dev paragraphs from ../shared (1.7 MB of English
 * prose, BEIR layout: one {"text": ...} per line) and the gpt-2, llama-spm,
 * bert-bge, deepseek-llm and falcon vocabularies from
 * ../shared/models/llamacpp-vocab. Each document is encoded separately
 * (add_special=false, as a chunker would) and also the whole corpus as one
 * string; the median of REPS runs is reported, in input bytes per second
 * of process CPU time ("cold": the first pass, before the word cache has
 * seen the corpus).
 */
#include "base/base.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Process CPU time: the machine is shared, so wall time measures the
 * neighbours as much as us (the bench is single-threaded). */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int reps = 5;
    const char *corpus = NULL;
    const char *vocabs[32];
    int nv = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-c") && i + 1 < argc)
            corpus = argv[++i];
        else if (nv < 32)
            vocabs[nv++] = argv[i];
    }
    if (reps < 1)
        reps = 1;
    const char *sh = cairn_test_shared_dir();
    static char cpath[1024], vp[8][1024];
    if (!corpus) {
        if (!sh) {
            fprintf(stderr, "no corpus: pass -c FILE (or set CAIRN_TEST_SHARED)\n");
            return 2;
        }
        snprintf(cpath, sizeof cpath, "%s/data/qa/squad-v1.1-dev/corpus.jsonl", sh);
        corpus = cpath;
    }
    if (nv == 0 && sh) {
        const char *names[] = { "gpt-2", "llama-spm", "bert-bge", "deepseek-llm", "falcon" };
        for (int i = 0; i < 5; i++) {
            snprintf(vp[i], sizeof vp[i], "%s/models/llamacpp-vocab/ggml-vocab-%s.gguf", sh, names[i]);
            vocabs[nv++] = vp[i];
        }
    }

    char *raw = NULL;
    size_t rawlen = 0;
    if (cairn_file_read_all(corpus, (size_t)1 << 31, &raw, &rawlen) != CAIRN_OK) {
        fprintf(stderr, "%s: %s\n", corpus, cairn_last_error());
        return 1;
    }
    /* documents: "title\n\ntext" or the raw line when it is not JSON */
    cairn_buf all;
    cairn_buf_init(&all, 0);
    size_t *doff = NULL, *dlen = NULL, nd = 0, cd = 0;
    for (char *p = raw; p < raw + rawlen;) {
        char *nl = memchr(p, '\n', (size_t)(raw + rawlen - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(raw + rawlen - p);
        cJSON *j = cJSON_ParseWithLength(p, l);
        const cJSON *tx = j ? cJSON_GetObjectItem(j, "text") : NULL;
        size_t start = all.len;
        if (cJSON_IsString(tx))
            cairn_buf_puts(&all, tx->valuestring);
        else
            cairn_buf_append(&all, p, l);
        cairn_buf_putc(&all, '\n');
        cJSON_Delete(j);
        if (nd == cd) {
            cd = cd ? cd * 2 : 1024;
            doff = realloc(doff, cd * sizeof *doff);
            dlen = realloc(dlen, cd * sizeof *dlen);
        }
        doff[nd] = start;
        dlen[nd] = all.len - start;
        nd++;
        p += l + 1;
    }
    printf("corpus %s: %zu documents, %.2f MB\n", corpus, nd, all.len / 1e6);
    printf("%-30s %-10s %10s %10s %12s %14s %10s\n", "vocab", "type", "cold MB/s", "docs MB/s", "docs Mtok/s",
           "one-string MB/s", "tokens");

    size_t cap = all.len + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    double *tm = malloc((size_t)reps * sizeof *tm), *tm2 = malloc((size_t)reps * sizeof *tm2);
    for (int v = 0; v < nv; v++) {
        gguf_file *g = NULL;
        cairn_tokenizer *t = NULL;
        if (gguf_open(vocabs[v], &g) != CAIRN_OK || tokenizer_load(g, &t) != CAIRN_OK) {
            printf("%-36s error: %s\n", vocabs[v], cairn_last_error());
            gguf_close(g);
            continue;
        }
        gguf_close(g);
        size_t ntok = 0;
        for (int r = 0; r < reps; r++) {
            int64_t t0 = cpu_ns();
            ntok = 0;
            for (size_t d = 0; d < nd; d++) {
                size_t n = 0;
                if (tokenizer_encode(t, all.data + doff[d], dlen[d], false, false, ids, cap, &n) != CAIRN_OK) {
                    printf("encode failed: %s\n", cairn_last_error());
                    return 1;
                }
                ntok += n;
            }
            tm[r] = (cpu_ns() - t0) / 1e9;
            t0 = cpu_ns();
            size_t n = 0;
            tokenizer_encode(t, all.data, all.len, false, false, ids, cap, &n);
            tm2[r] = (cpu_ns() - t0) / 1e9;
        }
        double cold = tm[0]; /* first pass: empty word cache */
        qsort(tm, (size_t)reps, sizeof *tm, cmp_d);
        qsort(tm2, (size_t)reps, sizeof *tm2, cmp_d);
        double med = tm[reps / 2], med2 = tm2[reps / 2];
        const char *base = strrchr(vocabs[v], '/');
        printf("%-30s %-10.10s %10.2f %10.2f %12.3f %14.2f %10zu\n", base ? base + 1 : vocabs[v],
               tokenizer_type_name(t), all.len / cold / 1e6, all.len / med / 1e6, ntok / med / 1e6,
               all.len / med2 / 1e6, ntok);
        tokenizer_free(t);
    }
    free(ids);
    free(tm);
    free(tm2);
    free(doff);
    free(dlen);
    cairn_buf_free(&all);
    cairn_free(raw);
    return 0;
}
