/*
 * dense.h — dense retrieval over a store: chunk embeddings kept fresh with
 * the store, the vector index derived from them, and queries.
 *
 * Where things live (STORE_DIR = the .cairn directory):
 *   STORE_DIR/vectors.db   SQLite (WAL): the embeddings, the expensive part,
 *                          committed batch by batch so a killed run resumes
 *                          where it stopped:
 *                            vecs(chunk_id INTEGER PRIMARY KEY, v BLOB)   dim float32
 *                            vec_state(key, value): model (embedder id), dim,
 *                              mark (every live chunk with id <= mark has a
 *                              vector), del_seq (store deletion log applied)
 *   STORE_DIR/vectors.idx  the HNSW index (index/vec.h, format in vec_file.c),
 *                          derived from vectors.db: it records the highest
 *                          chunk id and the deletion-log position it covers
 *                          and the model, catches up on open, and is rebuilt
 *                          from vectors.db (no re-embedding) when it is
 *                          missing, damaged, or of another model or dimension.
 * Both are derived data: deleting them costs only time.
 *
 * Freshness follows the BM25 rule: chunk ids are monotonic and a changed
 * chunk gets a new id, so "embed chunks with id > mark" embeds new and
 * changed chunks only; deletions come from the store's deletion log (this
 * part is the log consumer "vec"). Catching up the index (every search)
 * applies deletions to vectors.db and the index before any vector is read,
 * so a deleted chunk is never returned.
 *
 * Settings (.cairn/config):
 *   [embed]  model = PATH          GGUF encoder (relative to the project root);
 *                                  absent = no dense retrieval
 *            query_prefix = TEXT   default: what the model implies (embed.h)
 *            doc_prefix = TEXT
 *            threads = 1           embedding threads (1..64)
 *            batch = 64            chunks per embedding batch (= per commit)
 *   [vector] M = 16, ef_construction = 200, ef_search = 64
 */
#ifndef CAIRN_SEARCH_DENSE_H
#define CAIRN_SEARCH_DENSE_H

#include "index/vec.h"
#include "model/embed.h"
#include "store/store.h"

typedef struct dense_settings {
    char *model;                /* absolute path, NULL = dense retrieval off */
    char *query_prefix, *doc_prefix;    /* NULL = the model's */
    int threads;
    uint32_t batch;
    vec_params params;
} dense_settings;

cairn_status dense_settings_load(store *s, dense_settings *out);
void dense_settings_free(dense_settings *d);

/* Progress of an embedding run: done of total chunks. */
typedef void (*dense_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct dense_stats {
    uint64_t embedded;          /* chunks embedded now */
    uint64_t to_embed;          /* chunks that needed a vector at the start */
    uint64_t truncated;         /* chunks cut to the model's context */
    uint64_t deleted;           /* vectors removed (deleted chunks) */
    bool model_changed;         /* everything was re-embedded */
    bool index_rebuilt;         /* the index was rebuilt from vectors.db */
    bool busy;                  /* another process holds the index lock: in-memory only */
} dense_stats;

/* Embed the chunks that have no vector (e = the store's model, loaded by
 * the caller), then bring the index up to date. A changed model id
 * re-embeds everything and says so (a warning) before it starts. */
cairn_status dense_catch_up(store *s, const dense_settings *set, cairn_embedder *e, dense_progress_fn fn,
                            void *fn_ctx, dense_stats *st);

/* ---- queries ---- */
typedef struct dense_engine dense_engine;

/* Load the store's model and its index, caught up with the store (no
 * embedding: chunks not embedded yet are not found until the next add/sync). */
cairn_status dense_open(store *s, dense_engine **out);
/* Same with an already loaded model (borrowed; must outlive d). */
cairn_status dense_open_with(store *s, const dense_settings *set, cairn_embedder *e, dense_engine **out);
void dense_close(dense_engine *d);
cairn_embedder *dense_embedder(dense_engine *d);
vec_index *dense_index(dense_engine *d);

/* Top k chunks by cosine with the query (embedded with the query prefix),
 * among `allowed` (NULL = all): never fewer than k because of a filter. */
cairn_status dense_search(dense_engine *d, const char *query, const bm25_allowed *allowed, size_t k, vec_hit *out,
                          size_t *n_out);

/* ---- status ---- */
typedef struct dense_status {
    bool enabled;               /* a model is configured */
    char model[128];            /* embedder id of the stored vectors ("" = none yet) */
    uint64_t embedded;          /* vectors stored */
    uint64_t index_vectors;     /* live vectors in the index file */
    uint64_t db_bytes, index_bytes;
} dense_status;

cairn_status dense_get_status(store *s, dense_status *out);

#endif
