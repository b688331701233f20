/*
 * search.h — BM25 search over a store: keeping the derived index caught up,
 * running queries, and assembling results (store rows + snippets).
 *
 * The index lives in STORE_DIR/index (see index/bm25.h). Settings come from
 * the store's config file:
 *
 *   [analyzer]  stemmer = english      any Snowball algorithm, or none
 *               stop = english         none | lucene | english
 *               accents = keep         keep | strip
 *   [bm25]      k1 = 1.5
 *               b = 0.6
 *               title_weight = 2       weight of the document title + heading
 *                                      path field (0 = not indexed)
 *               flush_mb = 64          index builder memory: a segment is
 *                                      written out at this size (4..4096)
 *
 * Changing [analyzer] rebuilds the index on the next catch-up.
 */
#ifndef CAIRN_SEARCH_H
#define CAIRN_SEARCH_H

#include "index/bm25.h"
#include "store/store.h"

typedef struct search_settings {
    text_config analyzer;
    bm25_params params;
    uint32_t title_weight;
    uint32_t flush_mb;      /* 0 = the index default (64) */
} search_settings;

/* Defaults, then the store's [analyzer]/[bm25] sections (errors name the key). */
cairn_status search_settings_load(store *s, search_settings *out);

typedef struct search_catchup_stats {
    size_t added, deleted;
    bool rebuilt;       /* the analyzer changed: index rebuilt from scratch */
    bool busy;          /* another process is writing the index: skipped */
} search_catchup_stats;

/* Bring STORE_DIR/index up to date with the store: tombstone chunks deleted
 * since the index's deletion mark, index chunks above its chunk mark, commit.
 * CAIRN_ERR_BUSY never escapes: stats->busy says the catch-up was skipped. */
cairn_status search_catch_up(store *s, search_catchup_stats *stats);

/* Same with explicit settings and index directory (NULL = STORE_DIR/index);
 * cairn eval uses its own settings and directory. */
cairn_status search_catch_up_with(store *s, const search_settings *set, const char *index_dir,
                                  search_catchup_stats *stats);

/* The derived-index hook for store_set_derived_hook. */
cairn_status search_derived_hook(store *s, void *ctx);

/* ---- queries ---- */
typedef struct search_result {
    store_hit hit;          /* the chunk and its document */
    float score;
    char *snippet;          /* plain text window around the query terms */
    /* highlighted words in snippet: byte spans [hl[2i], hl[2i+1]) */
    size_t *hl;
    size_t n_hl;
    /* search_collapse: other results with the same (or nearly the same)
     * text folded into this one, and their distinct paths (at most
     * SEARCH_MAX_DUP_PATHS) */
    size_t n_dups;
    char **dup_paths;
    size_t n_dup_paths;
} search_result;

#define SEARCH_MAX_DUP_PATHS 50

typedef struct search_results {
    search_result *r;
    size_t n;
    double took_ms;
    bm25_search_stats stats;
    bool only_stop_words;   /* the query has words, but all are stop words: nothing to search for */
} search_results;

void search_results_free(search_results *r);

/* An engine is used by one thread at a time (its analyzer memoizes stems);
 * the index underneath is read-only, so threads may each open an engine. */
typedef struct search_engine search_engine;

/* Catch up (unless busy) and open the index of store s. */
cairn_status search_open(store *s, search_engine **out);
void search_close(search_engine *e);
const bm25_index *search_index(const search_engine *e);
const search_settings *search_get_settings(const search_engine *e);

/* Top k chunks for `query` among `allowed` (NULL = all). */
cairn_status search_run(search_engine *e, const char *query, const bm25_allowed *allowed, size_t k,
                        search_results *out);

/* Top k DOCUMENTS for `query`: each scored by a document-level BM25 over
 * its chunks (bm25_search_groups: tf and length summed over the document's
 * chunks, df and N over documents), shown by its best chunk. Reads every
 * posting of the query's terms; the chunk -> document map is loaded from the
 * store on first use. */
cairn_status search_run_docs(search_engine *e, const char *query, const bm25_allowed *allowed, size_t k,
                             search_results *out);

/* Results for given chunk ids (best first) with their scores: store rows
 * and snippets around the query's terms; chunks deleted meanwhile are
 * skipped; at most k. */
cairn_status search_assemble(search_engine *e, const char *query, const uint64_t *ids, const float *scores,
                             size_t n, size_t k, search_results *out);
store *search_store(const search_engine *e);
/* The BM25 top k chunk ids and scores only (no rows). */
cairn_status search_bm25_hits(search_engine *e, const char *query, const bm25_allowed *allowed, size_t k,
                              bm25_hit *out, size_t *n_out);
/* search_run / search_run_docs with duplicate texts collapsed (dedup.c):
 * fetches up to 3k + 16 (at most k + 300) results, folds identical and
 * near-identical chunk texts into the best-ranked one (n_dups, dup_paths),
 * and returns the first k that remain. */
cairn_status search_run_collapsed(search_engine *e, const char *query, const bm25_allowed *allowed, size_t k,
                                  bool docs, search_results *out);
/* How many results to fetch so that k remain after collapsing. */
size_t search_collapse_fetch(size_t k);
/* The collapsing step alone, on a list already fetched; keeps at most k. */
cairn_status search_collapse(search_results *r, size_t k);

/* Snippet of about `words` words of `text` around the terms of q, with the
 * matching words' spans (relative to the snippet). Caller frees *out, *hl. */
cairn_status search_snippet(text_analyzer *a, const bm25_query *q, const char *text, size_t len, size_t words,
                            char **out, size_t **hl, size_t *n_hl);

/* The same, widened to whole sentences: the window's own sentences plus
 * `sentences` before and after (`cairn search -C N`). */
cairn_status search_snippet_context(text_analyzer *a, const bm25_query *q, const char *text, size_t len,
                                    size_t words, int sentences, char **out, size_t **hl, size_t *n_hl);
/* Snippets of the results from now on carry `sentences` of context (0 = the
 * plain ~40-word window). */
void search_set_context(search_engine *e, int sentences);

#endif
