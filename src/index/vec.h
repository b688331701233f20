/*
 * vec.h — cairn's vector index: HNSW over int8-quantized vectors with float
 * rescoring, plus an exact (flat, SIMD) path, with strict pre-filtering by
 * the same allowed-chunk bitset as BM25 (bm25_allowed).
 *
 * Vectors are compared by inner product (the embedder L2-normalises, so it
 * is the cosine); a hit's score is the float dot product, higher is better.
 *
 * Memory: each vector is kept as dim int8 codes (padded to 8) + one float
 * scale (per-vector symmetric quantization) + its 8-byte id: 1.08 bytes per
 * dimension at d = 100, plus the graph (level 0: 2M+1 u32 per vector).
 * The float copy used for rescoring and exact search is read from the
 * index file's mapping (file-backed, touched only for rescored candidates)
 * when the index was loaded; an index built in memory holds it on the heap.
 *
 * Incremental: vec_index_add inserts into the graph; vec_index_delete
 * tombstones (a deleted node still routes searches but is never returned);
 * vec_index_compact rebuilds the graph from the live vectors.
 *
 * Persistence (vec_file.c describes the format): one file, written whole
 * (temp, fsync, rename, directory fsync), checksummed, memory-mapped
 * read-only on load; the first mutation copies it to the heap.
 *
 * Threads: searches use scratch owned by the index: one search at a time
 * per vec_index (open one per thread).
 */
#ifndef CAIRN_INDEX_VEC_H
#define CAIRN_INDEX_VEC_H

#include "base/base.h"
#include "index/bm25.h"

/* ---- distance kernels (vec_dist.c scalar reference, vec_dist_avx2.c) ----
 * n: floats for f32, bytes for i8 (any n; the index pads codes with zeros
 * to a multiple of 8, which the AVX2 kernel covers without a scalar tail). */
float vec_dot_f32_ref(const float *a, const float *b, size_t n);
int32_t vec_dot_i8_ref(const int8_t *a, const int8_t *b, size_t n);
float vec_dot_f32_avx2(const float *a, const float *b, size_t n);
int32_t vec_dot_i8_avx2(const int8_t *a, const int8_t *b, size_t n);
/* The best kernel for this CPU (CAIRN_KERNELS=scalar forces the reference). */
typedef float (*vec_dot_f32_fn)(const float *, const float *, size_t);
typedef int32_t (*vec_dot_i8_fn)(const int8_t *, const int8_t *, size_t);
vec_dot_f32_fn vec_dot_f32_best(void);
vec_dot_i8_fn vec_dot_i8_best(void);
/* Symmetric int8 quantization of x[0..dim) into q[0..dpad) (zero padded):
 * q = round(x / s), s = max|x| / 127; returns s (0 for a zero vector). */
float vec_quantize_i8(const float *x, size_t dim, int8_t *q, size_t dpad);

/* ---- the index ---- */
typedef struct vec_params {
    uint32_t M;                 /* links per node above level 0 (16); level 0 has 2M */
    uint32_t ef_construction;   /* 200 */
    uint32_t ef_search;         /* default search beam (64); raised to k */
    uint32_t exact_below;       /* 0 = automatic (sqrt(ef*2M*n)): filtered searches whose allowed set
                                   has at most this many vectors scan it exactly */
    uint64_t seed;              /* level generator */
} vec_params;

void vec_params_default(vec_params *p);

typedef struct vec_index vec_index;

/* An empty index of dimension dim (1..4096). */
cairn_status vec_index_new(uint32_t dim, const vec_params *p, vec_index **out);
void vec_index_free(vec_index *ix);

uint32_t vec_index_dim(const vec_index *ix);
uint64_t vec_index_count(const vec_index *ix);      /* live vectors */
uint64_t vec_index_nodes(const vec_index *ix);      /* nodes incl. tombstoned */
bool vec_index_contains(const vec_index *ix, uint64_t id);   /* live */
const vec_params *vec_index_params(const vec_index *ix);
/* Bytes held now: quantized vectors (codes + scales), the graph (links,
 * and per node its id, level, upper-level offset, tombstone bit) and the
 * float copies. */
void vec_index_memory(const vec_index *ix, uint64_t *vector_bytes, uint64_t *graph_bytes, uint64_t *float_bytes);

/* Insert vector v (dim floats) under id. An id already live is
 * CAIRN_ERR_INVALID; a non-finite component is CAIRN_ERR_INVALID. */
cairn_status vec_index_add(vec_index *ix, uint64_t id, const float *v);
/* Tombstone id; *found (may be NULL) says whether it was live. */
cairn_status vec_index_delete(vec_index *ix, uint64_t id, bool *found);
/* Rebuild the graph from the live vectors (drops tombstones). */
cairn_status vec_index_compact(vec_index *ix);
/* Fraction of nodes tombstoned. */
double vec_index_dead_ratio(const vec_index *ix);

typedef enum { VEC_SEARCH_AUTO, VEC_SEARCH_GRAPH, VEC_SEARCH_EXACT } vec_search_mode;

typedef struct vec_search_opts {
    uint32_t ef;                    /* 0 = the index's ef_search */
    const bm25_allowed *allowed;    /* NULL = all */
    vec_search_mode mode;
} vec_search_opts;

typedef struct vec_hit {
    uint64_t id;
    float score;        /* float inner product */
} vec_hit;

typedef struct vec_search_stats {
    uint64_t dist_i8, dist_f32;     /* distance computations */
    bool exact;                     /* answered by the exact scan */
    bool fallback;                  /* graph search fell back to exact (budget or < k found) */
} vec_search_stats;

/* Top k live vectors among `allowed` by inner product with q (dim floats).
 * *n_out < k only when fewer than k allowed live vectors exist. Hits in
 * descending score, ties by ascending id. Graph mode: HNSW on int8 codes,
 * the ef best allowed candidates rescored with floats. A selective filter
 * (AUTO) or a graph search that cannot find k allowed vectors within its
 * budget answers by the exact scan over the allowed set. */
cairn_status vec_index_search(vec_index *ix, const float *q, size_t k, const vec_search_opts *o, vec_hit *out,
                              size_t *n_out, vec_search_stats *st);

/* ---- persistence (vec_file.c) ---- */
typedef struct vec_file_info {
    uint64_t hwm;           /* highest chunk id covered */
    uint64_t del_hwm;       /* store deletion-log position applied */
    char model[128];        /* embedder id the vectors came from */
} vec_file_info;

/* Write the index to `path` atomically. */
cairn_status vec_index_save(vec_index *ix, const char *path, const vec_file_info *info);
/* Load `path` (mmap, checksum verified). CAIRN_ERR_NOT_FOUND when absent;
 * CAIRN_ERR_CORRUPT (with a detail naming the problem) for a truncated,
 * damaged or foreign file. */
cairn_status vec_index_load(const char *path, vec_index **out, vec_file_info *info);
/* Size of the index file as loaded or last saved (0 = never). */
uint64_t vec_index_file_bytes(const vec_index *ix);

#endif
