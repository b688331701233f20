/* fuse.h — search modes and the fusion of two ranked lists (hybrid.h
 * describes the formulas; fuse_lists is in hybrid.c). No store types, so
 * eval.h can use it. */
#ifndef CAIRN_SEARCH_FUSE_H
#define CAIRN_SEARCH_FUSE_H

#include "base/base.h"

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
    float dense_weight;     /* w: the dense list's share in both methods; < 0 = the method's
                               default: weighted 0.05, rrf 0.5 (plain RRF) */
} fuse_opts;

/* weighted, rrf_k 60, the method's default weight (chosen by cairn eval:
 * docs/vectors.md). */
void fuse_opts_default(fuse_opts *o);
float fuse_weight(const fuse_opts *o);

/* Fuse a (BM25) and b (dense), both best first without duplicates, into
 * out (room for na + nb), best first; returns the count. */
cairn_status fuse_lists(const fuse_item *a, size_t na, const fuse_item *b, size_t nb, const fuse_opts *o,
                        fuse_item *out, size_t *n_out);

#endif
