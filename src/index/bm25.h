/*
 * bm25.h — cairn's own BM25 inverted index over chunks.
 *
 * The index is DERIVED from the store: it can always be rebuilt, and it is
 * crash-safe by construction.
 *   - .cairn/index/ holds immutable segment files (segment.c describes the
 *     format) plus a MANIFEST written atomically (temp file, fsync, rename).
 *     A segment only counts once the MANIFEST names it; stray files are
 *     removed on the next write.
 *   - The MANIFEST records the highest chunk id indexed (hwm) and the
 *     position in the store's deletion log applied so far (del_hwm). Catching
 *     up = indexing chunks with id > hwm and tombstoning deletions with
 *     seq > del_hwm. Chunk ids are monotonic, so segments cover disjoint,
 *     ascending id ranges.
 *   - Deleted chunks are tombstones (a bitset over chunk ids) until a merge
 *     rewrites their segment without them.
 *
 * Query execution (query.c) is MaxScore with block-max bounds over
 * 128-posting blocks; bm25_search_exhaustive is the brute-force reference
 * that must return the same top-k. Both take an optional allowed set, and
 * both return the top k AMONG allowed chunks (pre-filtering).
 *
 * Scoring (Lucene-style BM25):
 *   idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5))
 *   score    = sum_t qw(t) * idf(t) * (k1+1) * tf / (tf + k1 * (1 - b + b * dl / avgdl))
 * with N, avgdl and df over all chunks in the segments: tombstoned chunks
 * count until a merge drops them (as in Lucene), so df <= N and every idf is
 * positive (MaxScore's bounds need non-negative term scores). tf and dl are field-weighted:
 * a field with weight w adds w per occurrence (BM25F with integer weights).
 */
#ifndef CAIRN_INDEX_BM25_H
#define CAIRN_INDEX_BM25_H

#include "base/base.h"
#include "text/analyzer.h"

typedef struct bm25_params {
    float k1;   /* default 1.5 */
    float b;    /* default 0.6 */
} bm25_params;

void bm25_params_default(bm25_params *p);

/* A set of allowed chunk ids: bit i of bits[] set = chunk id i allowed; ids
 * >= nbits are not allowed. NULL (as a pointer to the struct) = everything
 * allowed. The filter part builds these; search reads them only. */
typedef struct bm25_allowed {
    const uint64_t *bits;
    uint64_t nbits;
} bm25_allowed;

/* An analyzed query: distinct terms with weights (repeated words add up). */
typedef struct bm25_qterm {
    char *term;
    size_t len;
    float weight;
} bm25_qterm;

typedef struct bm25_query {
    bm25_qterm *terms;
    size_t n, cap;
} bm25_query;

void bm25_query_free(bm25_query *q);
/* Add `weight` to a term (creating it). */
cairn_status bm25_query_add(bm25_query *q, const char *term, size_t len, float weight);
/* Analyze `text` and add each term with weight 1 per occurrence. */
cairn_status bm25_query_parse(bm25_query *q, text_analyzer *a, const char *text, size_t len);

typedef struct bm25_hit {
    uint64_t chunk_id;
    float score;
} bm25_hit;

typedef struct bm25_search_stats {
    uint64_t postings_decoded;  /* postings touched (decode work) */
    uint64_t candidates;        /* documents fully or partly scored */
    bool direct;                /* the allowed set was small: scored directly */
} bm25_search_stats;

/* ---- opening (a read-only snapshot of the MANIFEST) ---- */
typedef struct bm25_index bm25_index;

/* Open the index in `dir`. A missing dir or MANIFEST is an empty index with
 * analyzer `cfg` (not written until the first commit). If the index exists
 * with another analyzer configuration, *mismatch is set (the caller rebuilds
 * with bm25_reset) and the index opens with its own configuration. */
cairn_status bm25_open(const char *dir, const text_config *cfg, bm25_index **out, bool *mismatch);
void bm25_close(bm25_index *ix);

uint64_t bm25_hwm(const bm25_index *ix);       /* highest chunk id covered (0 = none) */
uint64_t bm25_del_hwm(const bm25_index *ix);   /* deletion log position applied */
const text_config *bm25_config(const bm25_index *ix);
uint64_t bm25_n_docs(const bm25_index *ix);    /* live chunks */
uint64_t bm25_total_len(const bm25_index *ix);
size_t bm25_n_segments(const bm25_index *ix);
uint64_t bm25_bytes(const bm25_index *ix);     /* segment file bytes */
bool bm25_is_live(const bm25_index *ix, uint64_t chunk_id);
/* Document frequency of an analyzed term (summed over segments). */
uint64_t bm25_df(const bm25_index *ix, const char *term, size_t len);
/* Field-weighted length of a chunk (0 if absent). */
uint32_t bm25_doclen(const bm25_index *ix, uint64_t chunk_id);
/* Analyzed term frequencies of one chunk are not stored (no forward index);
 * PRF reads chunk text from the store and re-analyzes it. */

/* Top-k chunks for q among `allowed` (NULL = all). `out` has room for k;
 * *n_out = number returned (< k only when fewer chunks match). Hits are in
 * descending score, ties by ascending chunk id. */
cairn_status bm25_search(const bm25_index *ix, const bm25_query *q, const bm25_params *p,
                         const bm25_allowed *allowed, size_t k, bm25_hit *out, size_t *n_out,
                         bm25_search_stats *stats);
/* Reference: scores every posting of every term. Same contract. */
cairn_status bm25_search_exhaustive(const bm25_index *ix, const bm25_query *q, const bm25_params *p,
                                    const bm25_allowed *allowed, size_t k, bm25_hit *out, size_t *n_out);

/* ---- document-level ("grouped") scoring ----
 * Chunks grouped into documents (group of chunk id i = of[i], -1 = none).
 * A document is scored by a real document-level BM25: its tf of a term is
 * the sum of its live chunks' (field-weighted) tfs, its length the sum of
 * their lengths, N the number of documents with a live chunk and df the
 * number of documents containing the term; plus chunk_weight x the score of
 * its best chunk (chunk-level BM25). Every posting of the query's terms is
 * read (no pruning): cost ~ bm25_search_exhaustive. */
typedef struct bm25_groups bm25_groups;

typedef struct bm25_group_hit {
    uint32_t group;
    float score;
    uint64_t best_chunk;    /* the group's best-scoring chunk */
} bm25_group_hit;

/* Document lengths and counts from the index as it is now; `of` is borrowed
 * and must outlive g. */
cairn_status bm25_groups_new(const bm25_index *ix, const int32_t *of, uint64_t n_ids, uint32_t n_groups,
                             bm25_groups **out);
void bm25_groups_free(bm25_groups *g);
uint64_t bm25_groups_live(const bm25_groups *g);
/* Top k groups, descending score (ties: lower best chunk id first). A group
 * is returned when one of its allowed chunks matches the query (its best
 * chunk is the best allowed one); its statistics count all its live chunks,
 * and N and df all documents, as the chunk search keeps them global under a
 * filter. g holds scratch space: one query at a time. */
cairn_status bm25_search_groups(const bm25_index *ix, bm25_groups *g, const bm25_query *q, const bm25_params *p,
                                float chunk_weight, const bm25_allowed *allowed, size_t k, bm25_group_hit *out,
                                size_t *n_out);

/* ---- writing (one writer at a time: an flock on dir/LOCK) ---- */
typedef struct bm25_writer bm25_writer;

typedef struct bm25_field {
    const char *text;
    size_t len;
    uint32_t weight;    /* >= 1 */
} bm25_field;

/* Start a writer on `ix` (CAIRN_ERR_BUSY if another process writes). */
cairn_status bm25_writer_open(bm25_index *ix, bm25_writer **out);
/* Add a chunk. Ids must be > bm25_hwm and ascending within a writer. */
cairn_status bm25_writer_add(bm25_writer *w, uint64_t chunk_id, const bm25_field *fields, size_t n_fields);
/* Tombstone a chunk (ignored if not indexed or pending). */
cairn_status bm25_writer_delete(bm25_writer *w, uint64_t chunk_id);
/* Write pending segments, merge if there are many, write the MANIFEST with
 * hwm = max(hwm, added) and del_hwm, and reload `ix` to the new state. */
cairn_status bm25_writer_commit(bm25_writer *w, uint64_t hwm, uint64_t del_hwm);
/* Release the lock; uncommitted work is discarded. */
void bm25_writer_free(bm25_writer *w);
/* Drop everything (e.g. analyzer changed): an empty index with `cfg` on
 * commit. Requires a writer. */
cairn_status bm25_writer_reset(bm25_writer *w, const text_config *cfg);
/* Merge all segments into one, dropping tombstones. */
cairn_status bm25_writer_optimize(bm25_writer *w);

/* Delete the index in `dir` (MANIFEST and segments), under the writer
 * lock: the next catch-up rebuilds it. For a corrupt index. */
cairn_status bm25_destroy(const char *dir);

/* Memory budget of a writer's in-memory segment: at this many bytes
 * (default 64 MB; 0 restores it) it is written out as a segment file, so
 * indexing any amount in one commit holds at most this much; merges stream
 * (segment.c) and need little memory. bm25_set_flush_postings additionally
 * caps the postings per flushed segment (tests; 0 = no cap). */
void bm25_set_flush_bytes(size_t n);
void bm25_set_flush_postings(size_t n);

#endif
