/*
 * bench_answers.c — extractive answers measured on SQuAD-style data: for
 * every question of answers.jsonl ({_id, question, answers[], gold_doc}),
 * against a store holding the paragraphs (corpus.jsonl added with
 * `cairn add`, so each paragraph is a document keyed by its _id):
 *
 *   hit@k     the gold paragraph among the retrieved chunks (retrieval)
 *   in ctx    the gold paragraph among the context passages (after the budget)
 *   S1        the answer's first sentence contains a gold answer
 *   S3        one of its first three sentences does
 *   oracle    some sentence of the context contains a gold answer
 *
 * "Contains" compares SQuAD-normalized text (lower case, punctuation and
 * articles removed, whitespace collapsed) on word boundaries.
 *
 *   bench_answers STORE_DIR ANSWERS.jsonl [--k N] [--budget N] [--limit N]
 *                 [--decay X] [--proximity X] [--json]
 * bench/bench_answers.sh builds the store and prints the table.
 */
#include "rag/rag.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SQuAD normalization into out (padded with spaces for word-boundary search). */
static void normalize(const char *s, size_t n, cairn_buf *out)
{
    cairn_buf_reset(out);
    cairn_buf_putc(out, ' ');
    size_t i = 0;
    while (i < n) {
        while (i < n && !isalnum((unsigned char)s[i]) && !((unsigned char)s[i] & 0x80))
            i++;
        size_t w = i;
        while (i < n && (isalnum((unsigned char)s[i]) || ((unsigned char)s[i] & 0x80) || s[i] == '\''))
            i++;
        if (i == w)
            continue;
        char word[256];
        size_t wl = 0;
        for (size_t k = w; k < i && wl < sizeof word - 1; k++)
            if (s[k] != '\'')
                word[wl++] = (char)tolower((unsigned char)s[k]);
        word[wl] = '\0';
        if (!strcmp(word, "a") || !strcmp(word, "an") || !strcmp(word, "the") || !wl)
            continue;
        cairn_buf_puts(out, word);
        cairn_buf_putc(out, ' ');
    }
}

typedef struct gold { char **a; size_t n; } gold;

static bool contains_gold(const char *s, size_t n, const gold *g, cairn_buf *tmp, cairn_buf *ga)
{
    normalize(s, n, tmp);
    for (size_t i = 0; i < g->n; i++) {
        normalize(g->a[i], strlen(g->a[i]), ga);
        if (ga->len > 1 && strstr(tmp->data, ga->data))
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_answers STORE_DIR ANSWERS.jsonl [--k N] [--budget N] [--limit N] "
                        "[--decay X] [--proximity X] [--sentences N] [--json]\n");
        return 2;
    }
    size_t k = 8, budget = 1500, limit = 0, nsent = 3;
    double decay = -1, prox = -1;
    bool json = false;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (!strcmp(a, "--k")) k = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--budget")) budget = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--limit")) limit = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--sentences")) nsent = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--decay")) decay = atof(v);
        else if (!strcmp(a, "--proximity")) prox = atof(v);
        else { fprintf(stderr, "bench_answers: unknown option %s\n", a); return 2; }
        i++;
    }
    store *s = NULL;
    search_engine *e = NULL;
    cairn_status st = store_open(argv[1], &s);
    if (st == CAIRN_OK)
        st = search_open(s, &e);
    if (st != CAIRN_OK) {
        fprintf(stderr, "bench_answers: %s\n", cairn_last_error());
        return 1;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    static char line[1 << 20];
    size_t nq = 0, hit = 0, in_ctx = 0, s1 = 0, s3 = 0, oracle = 0, hit1 = 0;
    double ms = 0;
    cairn_buf tmp, ga;
    cairn_buf_init(&tmp, 0);
    cairn_buf_init(&ga, 0);
    while (fgets(line, sizeof line, f) && (!limit || nq < limit)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *q = cJSON_GetObjectItem(j, "question"), *ans = cJSON_GetObjectItem(j, "answers"),
                    *gd = cJSON_GetObjectItem(j, "gold_doc");
        if (!cJSON_IsString(q) || !cJSON_IsArray(ans) || !cJSON_IsString(gd)) {
            cJSON_Delete(j);
            continue;
        }
        gold g = {0};
        char *av[64];
        g.a = av;
        const cJSON *x;
        cJSON_ArrayForEach(x, ans) if (cJSON_IsString(x) && g.n < 64) av[g.n++] = x->valuestring;
        int64_t t0 = cairn_mono_ns();
        search_results res = {0};
        rag_context ctx = {0};
        rag_sentence *sent = NULL;
        size_t ns = 0;
        char *text = NULL;
        rag_query rq = {.text = q->valuestring, .k = k};
        rag_context_opts co = {.budget_tokens = budget};
        rag_extract_opts eo = {.max_sentences = nsent, .rank_decay = decay, .proximity = prox};
        if ((st = rag_retrieve(s, e, &rq, &res)) != CAIRN_OK || (st = rag_context_build(s, &res, &co, &ctx)) != CAIRN_OK ||
            (st = rag_extract(e, &ctx, q->valuestring, &eo, &sent, &ns, &text)) != CAIRN_OK) {
            fprintf(stderr, "bench_answers: %s\n", cairn_last_error());
            return 1;
        }
        ms += (double)(cairn_mono_ns() - t0) / 1e6;
        nq++;
        for (size_t i = 0; i < res.n; i++)
            if (res.r[i].hit.rkey && !strcmp(res.r[i].hit.rkey, gd->valuestring)) {
                hit++;
                hit1 += i == 0;
                break;
            }
        for (size_t i = 0; i < ctx.n; i++)
            if (!strcmp(ctx.p[i].rkey, gd->valuestring)) {
                in_ctx++;
                break;
            }
        for (size_t i = 0; i < ns && i < 3; i++)
            if (contains_gold(ctx.p[sent[i].passage].text + sent[i].off, sent[i].len, &g, &tmp, &ga)) {
                s1 += i == 0;
                s3++;
                break;
            }
        /* oracle: any sentence of any passage (the extractor's whole candidate set) */
        rag_sentence *all = NULL;
        size_t nall = 0;
        char *t2 = NULL;
        rag_extract_opts eo_all = {.max_sentences = 1000, .rank_decay = decay, .proximity = prox};
        if (rag_extract(e, &ctx, q->valuestring, &eo_all, &all, &nall, &t2) == CAIRN_OK)
            for (size_t i = 0; i < nall; i++)
                if (contains_gold(ctx.p[all[i].passage].text + all[i].off, all[i].len, &g, &tmp, &ga)) {
                    oracle++;
                    break;
                }
        cairn_free(all);
        cairn_free(t2);
        cairn_free(sent);
        cairn_free(text);
        rag_context_free(&ctx);
        search_results_free(&res);
        cJSON_Delete(j);
    }
    fclose(f);
    double n = nq ? (double)nq : 1;
    if (json)
        printf("{\"questions\": %zu, \"k\": %zu, \"budget\": %zu, \"hit@1\": %.4f, \"hit@k\": %.4f, \"in_context\": %.4f, "
               "\"first_sentence\": %.4f, \"first_three\": %.4f, \"oracle\": %.4f, \"ms_per_question\": %.3f}\n",
               nq, k, budget, hit1 / n, hit / n, in_ctx / n, s1 / n, s3 / n, oracle / n, ms / n);
    else
        printf("| %zu | %zu | %zu | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f |\n", nq, k, budget, hit1 / n, hit / n,
               in_ctx / n, s1 / n, s3 / n, oracle / n, ms / n);
    cairn_buf_free(&tmp);
    cairn_buf_free(&ga);
    search_close(e);
    store_close(s);
    return 0;
}
