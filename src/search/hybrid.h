/*
 * hybrid.h — search modes over a store: BM25, dense (vector index) and
 * hybrid (both lists fused), with an optional cross-encoder reranking the
 * fused top N.
 *
 * Fusion of two ranked lists (best first):
 *   RRF       score(x) = 2(1 - w) / (rrf_k + rank_bm25(x)) + 2w / (rrf_k + rank_dense(x)),
 *             ranks from 1, a missing item contributing 0 (Cormack et al. 2009;
 *             rrf_k = 60; w = 0.5 is plain RRF);
 *   weighted  each list's scores min-max normalised to [0, 1] (an item
 *             missing from a list gets 0 there), then
 *             (1 - w) * bm25 + w * dense.
 * Ties: the item first seen in the BM25 list, then by id.
 */
#ifndef CAIRN_SEARCH_HYBRID_H
#define CAIRN_SEARCH_HYBRID_H

#include "search/dense.h"
#include "search/fuse.h"
#include "search/search.h"

typedef struct hybrid_opts {
    search_mode mode;
    fuse_opts fuse;
    size_t depth;               /* hits taken from each list before fusing (100; at least k) */
    cairn_embedder *reranker;   /* NULL = no reranking */
    size_t rerank_top;          /* fused results rescored by the reranker (20) */
} hybrid_opts;

void hybrid_opts_default(hybrid_opts *o);
/* [search] fusion = rrf|weighted, rrf_k = N, dense_weight = W, depth = N
 * from the store's config (absent keys keep o's values). */
cairn_status hybrid_opts_from_config(const store_config *c, hybrid_opts *o);

/* Top k chunks for query among `allowed` in the chosen mode (d may be NULL
 * for bm25). With a reranker, the fused top rerank_top are rescored
 * (scores become the reranker's) and the best k kept. */
cairn_status search_run_mode(search_engine *e, dense_engine *d, const char *query, const bm25_allowed *allowed,
                             size_t k, const hybrid_opts *o, search_results *out);

/* Rescore results with a cross-encoder and sort them by its score. */
cairn_status search_rerank(cairn_embedder *reranker, const char *query, search_results *r);

#endif
