/*
 * eval.h — retrieval evaluation: BEIR-layout loading, relevance judgments,
 * trec_eval-style metrics, and the evaluation driver behind `cairn eval`.
 *
 * Metric definitions follow trec_eval:
 *   nDCG@k   linear gains (the judged level), log2(rank+1) discount, ideal
 *            DCG from the query's judgments sorted by level;
 *   Recall@k relevant (level >= 1) retrieved in the top k / all relevant;
 *   MRR@k    1 / rank of the first relevant document within the top k;
 *   MAP      mean over relevant documents of precision at their rank, over
 *            the whole ranking (up to 1000), divided by all relevant.
 * Every judged query counts (a query with no results scores 0), i.e.
 * trec_eval -c over the judged queries.
 */
#ifndef CAIRN_SEARCH_EVAL_H
#define CAIRN_SEARCH_EVAL_H

#include "base/base.h"
#include "index/bm25.h"
#include "search/fuse.h"

/* ---- judgments ---- */
typedef struct eval_qrels eval_qrels;

cairn_status eval_qrels_load(const char *path, eval_qrels **out);
void eval_qrels_free(eval_qrels *q);
bool eval_qrels_has_query(const eval_qrels *q, const char *qid);
size_t eval_qrels_n_queries(const eval_qrels *q);

typedef struct eval_scores {
    double ndcg, recall, mrr, ap;
} eval_scores;

/* Score one ranked list of document ids for query qid. */
void eval_score(const eval_qrels *q, const char *qid, const char *const *ranked, size_t n,
                size_t k_ndcg, size_t k_recall, size_t k_mrr, eval_scores *out);

/* ---- BEIR JSONL ---- */
typedef struct beir_record {
    const char *id, *title, *text;  /* valid during the callback; title/text may be "" */
} beir_record;
typedef cairn_status (*beir_record_fn)(void *ctx, const beir_record *r);

/* Read a JSONL file of {"_id", "title"?, "text"} records (capped at 1 MiB per line). */
cairn_status beir_read_jsonl(const char *path, beir_record_fn fn, void *ctx);

/* ---- the driver ---- */
/* Document score from its chunks' scores: max, sum, or max + agg_weight *
 * (sum of the others) ("maxsum"); or "doc": a document-level BM25 over the
 * document's chunks (bm25_search_groups) + agg_weight * its best chunk. */
typedef enum { EVAL_AGG_MAX = 0, EVAL_AGG_SUM = 1, EVAL_AGG_MAXSUM = 2, EVAL_AGG_DOC = 3 } eval_agg;

typedef struct eval_options {
    size_t k;               /* nDCG/MRR cutoff (10) */
    size_t k_recall;        /* 100 */
    size_t depth;           /* documents ranked per query (1000) */
    bm25_params params;
    uint32_t title_weight;  /* weight of the title (+ heading path) field (2); direct mode: 0 = title + text as one field */
    size_t chunk_tokens, chunk_overlap;     /* store mode: chunker settings (0 = store config) */
    eval_agg agg;
    float agg_weight;       /* MAXSUM: weight of the other chunks; DOC: of the best chunk; < 0 = 0.1 / 0 */
    text_config analyzer;
    /* RM3-style pseudo-relevance feedback; fb_docs = 0 disables */
    size_t fb_docs, fb_terms;
    float fb_orig_weight;
    const char *run_path;   /* TREC run file, or NULL */
    const char *run_tag;
    /* dense / hybrid (store mode only): each chunk embedded with the model,
     * a document scored by its best chunk's cosine; hybrid fuses the BM25
     * and the dense document rankings */
    search_mode mode;
    fuse_opts fuse;
    const char *embed_model;
    int embed_threads;
} eval_options;

void eval_options_default(eval_options *o);

typedef struct eval_result {
    size_t n_queries, n_docs, n_chunks;
    double ndcg, recall, mrr, map;
    double p50_ms, p99_ms, mean_ms;
    double build_s;
} eval_result;

/* A corpus: documents (ids) made of chunks with text; the index covers the
 * chunks. The store-backed and the direct (in-memory) corpora implement
 * this table. */
typedef struct eval_corpus {
    void *ctx;
    const bm25_index *ix;
    /* document index of a chunk, or -1 if unknown */
    int64_t (*chunk_doc)(void *ctx, uint64_t chunk_id);
    const char *(*doc_id)(void *ctx, int64_t doc);
    size_t n_docs;
    /* the chunk's indexed text (for feedback); *len = 0 if unavailable */
    cairn_status (*chunk_text)(void *ctx, uint64_t chunk_id, const char **text, size_t *len);
    /* dense retrieval: top k chunks by cosine (NULL when not built) */
    cairn_status (*dense)(void *ctx, const char *query, size_t k, bm25_hit *out, size_t *n);
} eval_corpus;

/* Run every judged query of queries.jsonl against the corpus. */
cairn_status eval_run(const eval_corpus *c, const char *queries_path, const eval_qrels *qrels,
                      const eval_options *o, eval_result *res);

/* Direct corpus: load corpus.jsonl into an index at index_dir (one chunk
 * per record: title and text), without the store. */
typedef struct eval_direct eval_direct;
cairn_status eval_direct_build(const char *corpus_path, const char *index_dir, const eval_options *o,
                               eval_direct **out, eval_corpus *c);
void eval_direct_free(eval_direct *d);

/* Store corpus: ingest corpus.jsonl into the store at store_dir (created if
 * missing; an existing store is reused and brought up to date) through the
 * normal pipeline (JSONL parser, chunker), catch the index up with the eval
 * settings, and map chunks to record ids. */
typedef struct eval_store eval_store;
cairn_status eval_store_build(const char *corpus_path, const char *store_dir, const eval_options *o,
                              eval_store **out, eval_corpus *c);
void eval_store_free(eval_store *e);

#endif
