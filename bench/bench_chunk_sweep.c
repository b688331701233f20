/* bench_chunk_sweep.c — choose chunk size and overlap by measurement.
 *
 *   bench_chunk_sweep squad SQUAD_DIR [EVERY]   (default EVERY = 4: every 4th question)
 *   bench_chunk_sweep beir  BEIR_DIR
 *
 * For each (size, overlap) in the grid, ingests the corpus into a fresh
 * store through the real pipeline (parse, chunk, store) and the BM25 index,
 * then runs the queries.
 *
 * squad: SQuAD paragraphs are regrouped into whole articles (one Markdown
 * file per article, paragraphs as paragraphs), so the chunker has to cut
 * them. A retrieved chunk is a hit when it contains the gold answer together
 * with its context in the gold paragraph (the answer +- 40 bytes, at word
 * boundaries, whitespace-normalized): the chunk holds the passage a reader
 * needs, not a stray number. Reports Hit@1/5/10, MRR@10, the mean tokens
 * of the top 5 chunks (the context a RAG prompt pays for), and Hit within a
 * context budget of 1024 / 2048 tokens (as many top chunks as fit): the
 * fair comparison between small and large chunks.
 *
 * beir: corpus.jsonl records are documents; chunks rank documents by their
 * best chunk; reports nDCG@10 and Recall@100 (trec_eval definitions).
 */
#include "ingest/pipeline.h"
#include "search/eval.h"
#include "search/search.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const size_t sizes[] = {64, 128, 192, 256, 384, 512};
static const double overlaps[] = {0.0, 0.125, 0.25};

/* ---- helpers ---- */
static char *read_all(const char *path, size_t *len)
{
    char *d;
    if (cairn_file_read_all(path, (size_t)1 << 30, &d, len) != CAIRN_OK) {
        fprintf(stderr, "%s\n", cairn_last_error());
        exit(1);
    }
    return d;
}

/* Lowercase, whitespace runs to one space. */
static char *norm(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n + 1), *q = o;
    bool sp = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isspace(c)) {
            if (!sp)
                *q++ = ' ';
            sp = true;
        } else {
            *q++ = (char)tolower(c);
            sp = false;
        }
    }
    if (q > o && q[-1] == ' ')
        q--;
    *q = 0;
    return o;
}

typedef struct para { char *id, *title, *text; } para;
typedef struct question { char *text, *needle; } question;   /* needle: normalized answer in context */

static para *paras;
static size_t n_paras;
static question *qs;
static size_t n_qs;

static const para *find_para(const char *id)
{
    for (size_t i = 0; i < n_paras; i++)
        if (!strcmp(paras[i].id, id))
            return &paras[i];
    return NULL;
}

/* The answer with up to `ctx` bytes of context each side, cut at spaces. */
static char *needle_for(const char *para_norm, const char *ans_norm, size_t ctx)
{
    const char *a = strstr(para_norm, ans_norm);
    if (!a)
        return NULL;
    size_t pl = strlen(para_norm), al = strlen(ans_norm);
    size_t s = (size_t)(a - para_norm), e = s + al;
    size_t lo = s > ctx ? s - ctx : 0, hi = e + ctx < pl ? e + ctx : pl;
    while (lo > 0 && lo < s && para_norm[lo - 1] != ' ')
        lo++;   /* move forward to a word start */
    while (hi < pl && hi > e && para_norm[hi] != ' ')
        hi--;   /* back to a word end */
    return strndup(para_norm + lo, hi - lo);
}

static void load_squad(const char *dir, int every)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/corpus.jsonl", dir);
    size_t len;
    char *data = read_all(path, &len);
    size_t cap = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (!j)
            continue;
        if (n_paras == cap) {
            cap = cap ? cap * 2 : 1024;
            paras = realloc(paras, cap * sizeof *paras);
        }
        paras[n_paras].id = strdup(cJSON_GetObjectItem(j, "_id")->valuestring);
        paras[n_paras].title = strdup(cJSON_GetObjectItem(j, "title")->valuestring);
        paras[n_paras].text = strdup(cJSON_GetObjectItem(j, "text")->valuestring);
        n_paras++;
        cJSON_Delete(j);
    }
    cairn_free(data);
    snprintf(path, sizeof path, "%s/answers.jsonl", dir);
    data = read_all(path, &len);
    cap = 0;
    int k = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        if (k++ % every)
            continue;
        cJSON *j = cJSON_Parse(line);
        if (!j)
            continue;
        const para *p = find_para(cJSON_GetObjectItem(j, "gold_doc")->valuestring);
        cJSON *answers = cJSON_GetObjectItem(j, "answers");
        char *needle = NULL;
        if (p && cJSON_GetArraySize(answers) > 0) {
            char *pn = norm(p->text), *an = norm(cJSON_GetArrayItem(answers, 0)->valuestring);
            needle = needle_for(pn, an, 40);
            free(pn);
            free(an);
        }
        if (needle) {
            if (n_qs == cap) {
                cap = cap ? cap * 2 : 1024;
                qs = realloc(qs, cap * sizeof *qs);
            }
            qs[n_qs].text = strdup(cJSON_GetObjectItem(j, "question")->valuestring);
            qs[n_qs].needle = needle;
            n_qs++;
        }
        cJSON_Delete(j);
    }
    cairn_free(data);
}

/* One Markdown file per article: "# title" then its paragraphs. */
static void write_articles(const char *dir)
{
    mkdir(dir, 0755);
    FILE *f = NULL;
    const char *cur = "";
    for (size_t i = 0; i < n_paras; i++) {
        if (strcmp(paras[i].title, cur)) {
            if (f)
                fclose(f);
            char path[8400];
            snprintf(path, sizeof path, "%s/%s.md", dir, paras[i].title);
            f = fopen(path, "w");
            if (!f) {
                perror(path);
                exit(1);
            }
            cur = paras[i].title;
            fprintf(f, "# ");
            for (const char *c = cur; *c; c++)
                fputc(*c == '_' ? ' ' : *c, f);
            fprintf(f, "\n\n");
        }
        fprintf(f, "%s\n\n", paras[i].text);
    }
    if (f)
        fclose(f);
}

/* ---- building a store for one configuration ---- */
static store *build(const char *root, const char *src, size_t size, size_t overlap, double *secs, size_t *chunks)
{
    char sd[4200], cmd[4300];
    snprintf(sd, sizeof sd, "%s/.cairn", root);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sd);
    if (system(cmd) != 0 || store_create(sd) != CAIRN_OK) {
        fprintf(stderr, "store: %s\n", cairn_last_error());
        exit(1);
    }
    store *s;
    if (store_open(sd, &s) != CAIRN_OK) {
        fprintf(stderr, "store: %s\n", cairn_last_error());
        exit(1);
    }
    pipe_options po = {0};
    ingest_options_default(&po.ingest);
    po.chunk.max_tokens = size;
    po.chunk.overlap_tokens = overlap;
    store_next_sync_gen(s, &po.sync_gen);
    int64_t t0 = cairn_mono_ns();
    pipeline *p;
    cairn_status st = pipeline_new(s, &po, &p);
    if (st == CAIRN_OK)
        st = pipeline_add_path(p, src);
    if (st == CAIRN_OK)
        st = pipeline_finish(p);
    if (st == CAIRN_OK)
        st = search_catch_up(s, NULL);
    if (st != CAIRN_OK) {
        fprintf(stderr, "ingest: %s\n", cairn_last_error());
        exit(1);
    }
    *secs = (double)(cairn_mono_ns() - t0) / 1e9;
    store_stats ss;
    store_get_stats(s, &ss);
    *chunks = (size_t)ss.chunks;
    pipeline_free(p);
    return s;
}

static void sweep_squad(const char *dir, int every)
{
    load_squad(dir, every);
    char root[] = "/tmp/cairn_sweep.XXXXXX";
    if (!mkdtemp(root))
        exit(1);
    char art[4200];
    snprintf(art, sizeof art, "%s/articles", root);
    write_articles(art);
    printf("SQuAD v1.1 dev as %zu paragraphs regrouped into articles; %zu questions (every %d-th)\n\n", n_paras, n_qs,
           every);
    printf("| size | overlap | chunks | Hit@1 | Hit@5 | Hit@10 | MRR@10 | top-5 tokens | Hit@1024 tok | Hit@2048 tok |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t si = 0; si < CAIRN_ARRAY_LEN(sizes); si++) {
        for (size_t oi = 0; oi < CAIRN_ARRAY_LEN(overlaps); oi++) {
            size_t size = sizes[si], ov = (size_t)(sizes[si] * overlaps[oi]);
            double secs;
            size_t chunks;
            store *s = build(root, art, size, ov, &secs, &chunks);
            search_engine *e;
            if (search_open(s, &e) != CAIRN_OK) {
                fprintf(stderr, "search: %s\n", cairn_last_error());
                exit(1);
            }
            double h1 = 0, h5 = 0, h10 = 0, mrr = 0, tok5 = 0, hb1 = 0, hb2 = 0;
            size_t k = 2048 / size * 2 + 2;
            if (k < 10)
                k = 10;
            for (size_t q = 0; q < n_qs; q++) {
                search_results r = {0};
                if (search_run(e, qs[q].text, NULL, k, &r) != CAIRN_OK) {
                    fprintf(stderr, "query: %s\n", cairn_last_error());
                    exit(1);
                }
                size_t first = 0, cum = 0, first_tok = 0;
                for (size_t i = 0; i < r.n; i++) {
                    size_t t = chunk_count_tokens(r.r[i].hit.text, strlen(r.r[i].hit.text));
                    if (i < 5)
                        tok5 += (double)t;
                    cum += t;
                    if (!first) {
                        char *nt = norm(r.r[i].hit.text);
                        if (strstr(nt, qs[q].needle)) {
                            first = i + 1;
                            first_tok = cum;
                        }
                        free(nt);
                    }
                }
                hb1 += first && first_tok <= 1024;
                hb2 += first && first_tok <= 2048;
                if (first > 10)
                    first = 0;   /* rank metrics are @10 */
                if (first) {
                    h1 += first <= 1;
                    h5 += first <= 5;
                    h10 += 1;
                    mrr += 1.0 / (double)first;
                }
                search_results_free(&r);
            }
            double n = (double)n_qs;
            printf("| %zu | %zu | %zu | %.3f | %.3f | %.3f | %.3f | %.0f | %.3f | %.3f |\n", size, ov, chunks, h1 / n,
                   h5 / n, h10 / n, mrr / n, tok5 / n, hb1 / n, hb2 / n);
            (void)secs;
            fflush(stdout);
            search_close(e);
            store_close(s);
        }
    }
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        exit(1);
}

/* ---- BEIR ---- */
typedef struct qrec { char *id, *text; } qrec;
static qrec *bq;
static size_t n_bq, cap_bq;

static cairn_status on_query(void *ctx, const beir_record *r)
{
    const eval_qrels *qr = ctx;
    if (!eval_qrels_has_query(qr, r->id))
        return CAIRN_OK;
    if (n_bq == cap_bq) {
        cap_bq = cap_bq ? cap_bq * 2 : 256;
        bq = realloc(bq, cap_bq * sizeof *bq);
    }
    bq[n_bq].id = strdup(r->id);
    bq[n_bq].text = strdup(r->text);
    n_bq++;
    return CAIRN_OK;
}

static void sweep_beir(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/qrels/test.tsv", dir);
    eval_qrels *qr;
    if (eval_qrels_load(path, &qr) != CAIRN_OK) {
        fprintf(stderr, "%s\n", cairn_last_error());
        exit(1);
    }
    snprintf(path, sizeof path, "%s/queries.jsonl", dir);
    if (beir_read_jsonl(path, on_query, qr) != CAIRN_OK) {
        fprintf(stderr, "%s\n", cairn_last_error());
        exit(1);
    }
    char root[] = "/tmp/cairn_sweep.XXXXXX";
    if (!mkdtemp(root))
        exit(1);
    char corpus[4200], cmd[4400];
    snprintf(corpus, sizeof corpus, "%s/corpus.jsonl", root);
    snprintf(cmd, sizeof cmd, "cp '%s/corpus.jsonl' '%s'", dir, corpus);
    if (system(cmd) != 0)
        exit(1);
    printf("%s: %zu judged queries\n\n| size | overlap | chunks | nDCG@10 | Recall@100 | MRR@10 |\n|---:|---:|---:|---:|---:|---:|\n",
           dir, n_bq);
    size_t ranked_cap = 1000;
    const char **ranked = malloc(ranked_cap * sizeof *ranked);
    for (size_t si = 0; si < CAIRN_ARRAY_LEN(sizes); si++) {
        for (size_t oi = 0; oi < 2; oi++) {
            size_t size = sizes[si], ov = (size_t)(sizes[si] * overlaps[oi * 2]);
            double secs;
            size_t chunks;
            store *s = build(root, corpus, size, ov, &secs, &chunks);
            search_engine *e;
            if (search_open(s, &e) != CAIRN_OK) {
                fprintf(stderr, "search: %s\n", cairn_last_error());
                exit(1);
            }
            double nd = 0, rc = 0, mr = 0;
            for (size_t q = 0; q < n_bq; q++) {
                search_results r = {0};
                if (search_run(e, bq[q].text, NULL, 300, &r) != CAIRN_OK) {
                    fprintf(stderr, "query: %s\n", cairn_last_error());
                    exit(1);
                }
                size_t n = 0;
                for (size_t i = 0; i < r.n && n < ranked_cap; i++) {
                    bool dup = false;
                    for (size_t k = 0; k < n && !dup; k++)
                        dup = !strcmp(ranked[k], r.r[i].hit.rkey);
                    if (!dup)
                        ranked[n++] = r.r[i].hit.rkey;
                }
                eval_scores sc;
                eval_score(qr, bq[q].id, ranked, n, 10, 100, 10, &sc);
                nd += sc.ndcg;
                rc += sc.recall;
                mr += sc.mrr;
                search_results_free(&r);
            }
            double n = (double)n_bq;
            printf("| %zu | %zu | %zu | %.4f | %.4f | %.4f |\n", size, ov, chunks, nd / n, rc / n, mr / n);
            fflush(stdout);
            search_close(e);
            store_close(s);
        }
    }
    free(ranked);
    eval_qrels_free(qr);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "squad") && strcmp(argv[1], "beir"))) {
        fprintf(stderr, "usage: bench_chunk_sweep squad SQUAD_DIR [EVERY] | beir BEIR_DIR\n");
        return 2;
    }
    if (!strcmp(argv[1], "squad"))
        sweep_squad(argv[2], argc > 3 ? atoi(argv[3]) : 4);
    else
        sweep_beir(argv[2]);
    return 0;
}
