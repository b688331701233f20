/*
 * embed.h — sentence embeddings and cross-encoder scores from BERT-family
 * GGUF encoders ("bert": absolute positions, token types, post-LayerNorm,
 * GELU; "nomic-bert": RoPE, SwiGLU).
 *
 * This is the contract the vector index (src/index/), hybrid search
 * (src/search/), `cairn embed` and the server's /v1/embeddings and
 * /v1/rerank are written against. An embedder is read-only after load and
 * may be shared by threads only through separate embed_ctx scratch (one per
 * calling thread); embedder_embed with a NULL ctx uses an internal one and
 * is then not thread-safe.
 *
 * Vectors are pooled as the model's metadata says (mean, CLS, last) and L2
 * normalised, so a dot product is the cosine. The same text gives the same
 * vector (bit for bit) whether it is embedded alone or in any batch.
 */
#ifndef CAIRN_EMBED_H
#define CAIRN_EMBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn.h"

typedef struct cairn_embedder cairn_embedder;
typedef struct embed_ctx embed_ctx;

typedef enum { EMBED_POOL_NONE, EMBED_POOL_MEAN, EMBED_POOL_CLS, EMBED_POOL_LAST, EMBED_POOL_RANK } embed_pooling;

typedef struct embed_opts {
    int n_threads;      /* 0 or 1 = the calling thread only */
} embed_opts;

typedef struct embed_stats {
    uint64_t n_texts;       /* texts embedded */
    uint64_t n_tokens;      /* tokens run through the encoder (after truncation) */
    uint64_t n_truncated;   /* texts cut to the model's context: counted, never silent */
    double ms;              /* wall time of the call */
} embed_stats;

cairn_status embedder_load(const char *path, const embed_opts *opts, cairn_embedder **out);
void embedder_free(cairn_embedder *e);

int embedder_dim(const cairn_embedder *e);            /* length of one vector */
int embedder_n_ctx(const cairn_embedder *e);          /* most tokens per text, special tokens included */
embed_pooling embedder_pooling(const cairn_embedder *e);
const char *embedder_arch(const cairn_embedder *e);   /* "bert", "nomic-bert" */
/* A stable identity of the model (name + a hash of the file's tensor data
 * layout), stored with the vectors so a changed model is noticed. */
const char *embedder_id(const cairn_embedder *e);
/* Prefixes implied by the model's metadata or name ("query: " / "passage: "
 * for e5-style models, "search_query: " / "search_document: " for nomic),
 * "" when none. A store's config may override them. */
const char *embedder_query_prefix(const cairn_embedder *e);
const char *embedder_doc_prefix(const cairn_embedder *e);

/* Embed n texts (texts[i] of lens[i] bytes, UTF-8) into out (n * dim floats,
 * row i for text i). Texts of different lengths share batches without
 * padding and without attending across each other. st may be NULL. */
cairn_status embedder_embed(cairn_embedder *e, embed_ctx *ctx, const char *const *texts, const size_t *lens,
                            int n, float *out, embed_stats *st);

/* Cross-encoders (pooling RANK, a classification head): one relevance score
 * per (query, docs[i]) pair, higher is more relevant. CAIRN_ERR_UNSUPPORTED
 * for a model without the head. */
cairn_status embedder_rerank(cairn_embedder *e, embed_ctx *ctx, const char *query, size_t query_len,
                             const char *const *docs, const size_t *lens, int n, float *scores,
                             embed_stats *st);

cairn_status embed_ctx_new(const cairn_embedder *e, embed_ctx **out);
void embed_ctx_free(embed_ctx *c);

#endif
