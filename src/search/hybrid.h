/*
 * hybrid.h — search modes over a store: BM25, dense (vector index) and
 * hybrid (both lists fused), with an optional cross-encoder reranking the
 * fused top N.
 *
 * Fusion of two ranked lists (best first):
 *   RRF       score(x) = sum over lists of 1 / (rrf_k + rank(x)), ranks from 1
 *             (Cormack et al. 2009; rrf_k = 60 by default);
 *   weighted  each list's scores min-max normalised to [0, 1] (an item
 *             missing from a list gets 0 there), then
 *             (1 - w) * bm25 + w * dense.
 * Ties: the item first seen in the BM25 list, then by id.
 */
#ifndef CAIRN_SEARCH_HYBRID_H
#define CAIRN_SEARCH_HYBRID_H

#include "search/dense.h"
#include "search/search.h"

typedef enum { SEARCH_MODE_BM25, SEARCH_MODE_DENSE, SEARCH_MODE_HYBRID } search_mode;
typedef enum { FUSE_RRF, FUSE_WEIGHTED } fuse_method;

/* "bm25" | "dense" | "hybrid"; "rrf" | "weighted". */
cairn_status search_mode_parse(const char *s, search_mode *out);
cairn_status fuse_method_parse(const char *s, fuse_method *out);
const char *search_mode_name(search_mode m);

typedef struct fuse_item {
    uint64_t id;
    float score;
} fuse_item;

typedef struct fuse_opts {
    fuse_method method;
    float rrf_k;            /* 60 */
    float dense_weight;     /* weighted: w (0.5) */
} fuse_opts;

void fuse_opts_default(fuse_opts *o);

/* Fuse a (BM25) and b (dense), both best first without duplicates, into
 * out (room for na + nb), best first; returns the count. */
cairn_status fuse_lists(const fuse_item *a, size_t na, const fuse_item *b, size_t nb, const fuse_opts *o,
                        fuse_item *out, size_t *n_out);

typedef struct hybrid_opts {
    search_mode mode;
    fuse_opts fuse;
    size_t depth;               /* hits taken from each list before fusing (100; at least k) */
    cairn_embedder *reranker;   /* NULL = no reranking */
    size_t rerank_top;          /* fused results rescored by the reranker (20) */
} hybrid_opts;

void hybrid_opts_default(hybrid_opts *o);

/* Top k chunks for query among `allowed` in the chosen mode (d may be NULL
 * for bm25). With a reranker, the fused top rerank_top are rescored
 * (scores become the reranker's) and the best k kept. */
cairn_status search_run_mode(search_engine *e, dense_engine *d, const char *query, const bm25_allowed *allowed,
                             size_t k, const hybrid_opts *o, search_results *out);

/* Rescore results with a cross-encoder and sort them by its score. */
cairn_status search_rerank(cairn_embedder *reranker, const char *query, search_results *r);

#endif
