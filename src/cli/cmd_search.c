/* cmd_search.c — `cairn search` and `cairn eval`. */
#include "cli/commands.h"
#include "index/bm25.h"
#include "search/eval.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_search(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "cairn search: not built yet\n");
    return 2;
}

/* ---- eval ---- */

static void eval_usage(FILE *f)
{
    fprintf(f,
            "usage: cairn eval DIR [options]\n"
            "  DIR holds corpus.jsonl, queries.jsonl and qrels/test.tsv (BEIR layout)\n"
            "  --k N             nDCG/MRR cutoff (10)\n"
            "  --run FILE        write a TREC run file (qid Q0 docid rank score tag)\n"
            "  --json            print the metrics as one JSON object\n"
            "  --db DIR          use (and keep) the store in DIR instead of a temporary one\n"
            "  --direct          index corpus.jsonl records directly (one chunk per record), no store\n"
            "  --k1 X --b X      BM25 parameters (1.2, 0.6)\n"
            "  --title-weight N  index the title as its own field with weight N (0: title+text as one)\n"
            "  --agg max|sum     document score from its chunks (max)\n"
            "  --rm3 DOCS        pseudo-relevance feedback from the top DOCS chunks (0: off)\n"
            "  --rm3-terms N     expansion terms (10)   --rm3-weight X  original query weight (0.5)\n"
            "  --stemmer NAME --stop none|lucene|english --accents keep|strip   analyzer\n");
}

static bool parse_num(const char *s, double *out)
{
    char *e;
    errno = 0;
    *out = strtod(s, &e);
    return e != s && !*e && !errno;
}

static int rm_rf(const char *dir)
{
    char cmd[4200];
    if (snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= (int)sizeof cmd)
        return -1;
    return system(cmd);
}

int cmd_eval(int argc, char **argv)
{
    eval_options o;
    eval_options_default(&o);
    const char *dir = NULL, *db = NULL;
    bool json = false, direct = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            eval_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--direct")) {
            direct = true;
        } else if (a[0] == '-' && a[1] == '-' && !v) {
            fprintf(stderr, "cairn eval: %s needs a value\n", a);
            return 2;
        } else if (!strcmp(a, "--k") && parse_num(v, &x) && x >= 1 && x <= 64) {
            o.k = (size_t)x, i++;
        } else if (!strcmp(a, "--run")) {
            o.run_path = v, i++;
        } else if (!strcmp(a, "--db")) {
            db = v, i++;
        } else if (!strcmp(a, "--k1") && parse_num(v, &x) && x >= 0 && x <= 100) {
            o.params.k1 = (float)x, i++;
        } else if (!strcmp(a, "--b") && parse_num(v, &x) && x >= 0 && x <= 1) {
            o.params.b = (float)x, i++;
        } else if (!strcmp(a, "--title-weight") && parse_num(v, &x) && x >= 0 && x <= 100) {
            o.title_weight = (uint32_t)x, i++;
        } else if (!strcmp(a, "--agg") && (!strcmp(v, "max") || !strcmp(v, "sum"))) {
            o.agg = !strcmp(v, "max") ? EVAL_AGG_MAX : EVAL_AGG_SUM, i++;
        } else if (!strcmp(a, "--rm3") && parse_num(v, &x) && x >= 0 && x <= 1000) {
            o.fb_docs = (size_t)x, i++;
        } else if (!strcmp(a, "--rm3-terms") && parse_num(v, &x) && x >= 1 && x <= 1000) {
            o.fb_terms = (size_t)x, i++;
        } else if (!strcmp(a, "--rm3-weight") && parse_num(v, &x) && x >= 0 && x <= 1) {
            o.fb_orig_weight = (float)x, i++;
        } else if (!strcmp(a, "--stemmer") || !strcmp(a, "--stop") || !strcmp(a, "--accents")) {
            if (text_config_set(&o.analyzer, a + 2, v) != CAIRN_OK) {
                fprintf(stderr, "cairn eval: %s\n", cairn_last_error());
                return 2;
            }
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "cairn eval: bad option or value: %s %s\n", a, v ? v : "");
            eval_usage(stderr);
            return 2;
        } else if (!dir) {
            dir = a;
        } else {
            fprintf(stderr, "cairn eval: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!dir) {
        eval_usage(stderr);
        return 2;
    }
    char corpus[4096], queries[4096], qrels_path[4096];
    snprintf(corpus, sizeof corpus, "%s/corpus.jsonl", dir);
    snprintf(queries, sizeof queries, "%s/queries.jsonl", dir);
    snprintf(qrels_path, sizeof qrels_path, "%s/qrels/test.tsv", dir);
    eval_qrels *qrels = NULL;
    if (eval_qrels_load(qrels_path, &qrels) != CAIRN_OK) {
        fprintf(stderr, "cairn eval: %s\n", cairn_last_error());
        return 1;
    }
    char tmp[4096] = "";
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/cairn-eval-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "cairn eval: cannot create a temporary directory: %s\n", strerror(errno));
        eval_qrels_free(qrels);
        return 1;
    }
    (void)db;
    (void)direct;
    int rc = 0;
    eval_direct *d = NULL;
    eval_corpus c;
    eval_result r;
    char ixdir[4200];
    snprintf(ixdir, sizeof ixdir, "%s/index", tmp);
    int64_t t0 = cairn_mono_ns();
    cairn_status st = eval_direct_build(corpus, ixdir, &o, &d, &c);
    double build_s = (double)(cairn_mono_ns() - t0) / 1e9;
    if (st == CAIRN_OK)
        st = eval_run(&c, queries, qrels, &o, &r);
    if (st != CAIRN_OK) {
        fprintf(stderr, "cairn eval: %s\n", cairn_last_error());
        rc = 1;
    } else if (json) {
        printf("{\"dataset\": \"%s\", \"queries\": %zu, \"documents\": %zu, \"chunks\": %zu, "
               "\"ndcg@%zu\": %.4f, \"recall@%zu\": %.4f, \"mrr@%zu\": %.4f, \"map\": %.4f, "
               "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"build_s\": %.3f}\n",
               dir, r.n_queries, r.n_docs, r.n_chunks, o.k, r.ndcg, o.k_recall, r.recall, o.k, r.mrr, r.map,
               r.p50_ms, r.p99_ms, build_s);
    } else {
        printf("%s: %zu queries, %zu documents, %zu chunks\n", dir, r.n_queries, r.n_docs, r.n_chunks);
        printf("  nDCG@%zu %.4f  Recall@%zu %.4f  MRR@%zu %.4f  MAP %.4f\n", o.k, r.ndcg, o.k_recall, r.recall,
               o.k, r.mrr, r.map);
        printf("  latency p50 %.3f ms  p99 %.3f ms  (build %.2f s)\n", r.p50_ms, r.p99_ms, build_s);
    }
    eval_direct_free(d);
    eval_qrels_free(qrels);
    rm_rf(tmp);
    return rc;
}
