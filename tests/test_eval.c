/* test_eval.c — trec_eval-style metrics on hand-computed cases, qrels and
 * JSONL parsing, and the direct eval driver on a tiny synthetic collection. */
#include "t.h"
#include "search/eval.h"

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    fputs(s, f);
    fclose(f);
}

static void test_metrics(void)
{
    const char *dir = t_tmpdir("eval_metrics");
    char p[1200];
    snprintf(p, sizeof p, "%s/qrels.tsv", dir);
    write_file(p, "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq1\td3\t0\nq1\td4\t1\nq2\tx\t1\n");
    eval_qrels *q;
    CHECK_OK(eval_qrels_load(p, &q));
    CHECK_EQ_INT(eval_qrels_n_queries(q), 2);
    CHECK(eval_qrels_has_query(q, "q1") && !eval_qrels_has_query(q, "q3"));
    const char *ranked[] = {"d3", "d1", "d5", "d4"};
    eval_scores s;
    eval_score(q, "q1", ranked, 4, 10, 100, 10, &s);
    /* DCG = 2/log2(3) + 1/log2(5); IDCG = 2 + 1/log2(3) + 1/log2(4) */
    double dcg = 2 / log2(3) + 1 / log2(5), idcg = 2 + 1 / log2(3) + 0.5;
    CHECK_NEAR(s.ndcg, dcg / idcg, 1e-9);
    CHECK_NEAR(s.recall, 2.0 / 3, 1e-9);
    CHECK_NEAR(s.mrr, 0.5, 1e-9);
    CHECK_NEAR(s.ap, (1.0 / 2 + 2.0 / 4) / 3, 1e-9);
    /* cutoffs */
    eval_score(q, "q1", ranked, 4, 2, 2, 1, &s);
    CHECK_NEAR(s.ndcg, (2 / log2(3)) / (2 + 1 / log2(3)), 1e-9);
    CHECK_NEAR(s.recall, 1.0 / 3, 1e-9);
    CHECK_NEAR(s.mrr, 0, 1e-12);
    /* perfect ranking */
    const char *best[] = {"d1", "d2", "d4"};
    eval_score(q, "q1", best, 3, 10, 100, 10, &s);
    CHECK_NEAR(s.ndcg, 1, 1e-12);
    CHECK_NEAR(s.ap, 1, 1e-12);
    /* empty ranking */
    eval_score(q, "q2", NULL, 0, 10, 100, 10, &s);
    CHECK(s.ndcg == 0 && s.recall == 0 && s.mrr == 0 && s.ap == 0);
    eval_qrels_free(q);
    /* TREC qrels layout (qid 0 docid rel) */
    write_file(p, "7 0 a 1\n7 0 b 0\n");
    CHECK_OK(eval_qrels_load(p, &q));
    const char *r2[] = {"b", "a"};
    eval_score(q, "7", r2, 2, 10, 100, 10, &s);
    CHECK_NEAR(s.mrr, 0.5, 1e-12);
    eval_qrels_free(q);
    /* malformed */
    write_file(p, "q1\td1\n");
    CHECK(eval_qrels_load(p, &q) == CAIRN_ERR_INVALID);
    write_file(p, "header\tx\ty\nq1\td1\tlots\n");
    CHECK(eval_qrels_load(p, &q) == CAIRN_ERR_INVALID);
    CHECK(strstr(cairn_last_error(), ":2:") != NULL);
}

static cairn_status count_rec(void *ctx, const beir_record *r)
{
    (*(int *)ctx)++;
    return r->id[0] ? CAIRN_OK : CAIRN_ERR_INVALID;
}

static void test_jsonl(void)
{
    const char *dir = t_tmpdir("eval_jsonl");
    char p[1200];
    snprintf(p, sizeof p, "%s/c.jsonl", dir);
    write_file(p, "{\"_id\": \"1\", \"title\": \"t\", \"text\": \"x\"}\n\n{\"_id\": 2, \"text\": \"y\"}\r\n{\"id\": \"z\"}");
    int n = 0;
    CHECK_OK(beir_read_jsonl(p, count_rec, &n));
    CHECK_EQ_INT(n, 3);
    write_file(p, "{\"_id\": \"1\"}\n{not json}\n");
    n = 0;
    CHECK(beir_read_jsonl(p, count_rec, &n) == CAIRN_ERR_INVALID);
    CHECK(strstr(cairn_last_error(), ":2:") != NULL);
    write_file(p, "{\"text\": \"no id\"}\n");
    CHECK(beir_read_jsonl(p, count_rec, &n) == CAIRN_ERR_INVALID);
}

static void test_direct_driver(void)
{
    /* Three documents, two queries with known best answers. */
    const char *dir = t_tmpdir("eval_driver");
    char c[1200], qf[1200], qr[1200], ix[1200];
    snprintf(c, sizeof c, "%s/corpus.jsonl", dir);
    snprintf(qf, sizeof qf, "%s/queries.jsonl", dir);
    snprintf(qr, sizeof qr, "%s/qrels.tsv", dir);
    snprintf(ix, sizeof ix, "%s/index", dir);
    write_file(c, "{\"_id\": \"a\", \"title\": \"Pumps\", \"text\": \"centrifugal pumps move water with an impeller\"}\n"
                  "{\"_id\": \"b\", \"title\": \"Bread\", \"text\": \"sourdough bread rises slowly\"}\n"
                  "{\"_id\": \"c\", \"title\": \"Weather\", \"text\": \"clouds bring rain to the valley\"}\n");
    write_file(qf, "{\"_id\": \"1\", \"text\": \"impeller pump\"}\n{\"_id\": \"2\", \"text\": \"rain clouds\"}\n"
                   "{\"_id\": \"3\", \"text\": \"unjudged\"}\n");
    write_file(qr, "query-id\tcorpus-id\tscore\n1\ta\t1\n2\tc\t1\n2\tb\t1\n");
    eval_qrels *q;
    CHECK_OK(eval_qrels_load(qr, &q));
    eval_options o;
    eval_options_default(&o);
    char run[1200];
    snprintf(run, sizeof run, "%s/run.txt", dir);
    o.run_path = run;
    eval_direct *d;
    eval_corpus corp;
    CHECK_OK(eval_direct_build(c, ix, &o, &d, &corp));
    eval_result r;
    CHECK_OK(eval_run(&corp, qf, q, &o, &r));
    CHECK_EQ_INT(r.n_queries, 2);
    CHECK_EQ_INT(r.n_docs, 3);
    /* q1: a at rank 1 -> 1. q2: c at 1, b not retrieved -> recall 1/2 */
    CHECK_NEAR(r.mrr, 1.0, 1e-9);
    CHECK_NEAR(r.recall, (1.0 + 0.5) / 2, 1e-9);
    double ndcg2 = 1.0 / (1 + 1 / log2(3));
    CHECK_NEAR(r.ndcg, (1 + ndcg2) / 2, 1e-6);
    char *txt;
    size_t len;
    CHECK_OK(cairn_file_read_all(run, 1 << 20, &txt, &len));
    CHECK(strncmp(txt, "1 Q0 a 1 ", 9) == 0);
    CHECK(strstr(txt, "\n2 Q0 c 1 ") != NULL);
    cairn_free(txt);
    /* RM3 path runs and keeps the judged answers */
    o.fb_docs = 2;
    o.run_path = NULL;
    CHECK_OK(eval_run(&corp, qf, q, &o, &r));
    CHECK_NEAR(r.mrr, 1.0, 1e-9);
    eval_direct_free(d);
    eval_qrels_free(q);
}

int main(void)
{
    RUN(test_metrics);
    RUN(test_jsonl);
    RUN(test_direct_driver);
    return t_done();
}
